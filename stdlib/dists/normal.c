/* normal.c — normal(mu, sigma), sigma the standard deviation (Stan's). */
#include <math.h>

#include "../dist.h"
#include "../dist_kernel.h"
#include "../mathfn.h"

/* The log density and its partials, as one description (stdlib/dist_kernel.h)
   that the interpreter evaluates and the JIT emits inline: with
   z = (x - mu)/sigma, lp = -z^2/2 - log(sigma) - log(sqrt(2 pi)), and the
   partials are -z/sigma, z/sigma and (z^2 - 1)/sigma. */
enum {
  N_D = DK_FIRST, N_Z, N_H, N_HZ, N_Q, N_LS, N_A, N_C, N_LP, /* density */
  N_NZ, N_DX, N_DMU, N_ZZ, N_ONE, N_ZZ1, N_DSIG,             /* partials */
};
#define AT(r) [(r) - DK_FIRST]
static const DkIns normal_code[] = {
    AT(N_D) = DK_2(SUB, DK_X, DK_P(0)),
    AT(N_Z) = DK_2(DIV, N_D, DK_P(1)),
    AT(N_H) = DK_K(-0.5),
    AT(N_HZ) = DK_2(MUL, N_H, N_Z),
    AT(N_Q) = DK_2(MUL, N_HZ, N_Z),
    AT(N_LS) = DK_1(LOG, DK_P(1)),
    AT(N_A) = DK_2(SUB, N_Q, N_LS),
    AT(N_C) = DK_K(PPL_LOG_SQRT_2PI),
    AT(N_LP) = DK_2(SUB, N_A, N_C),
    AT(N_NZ) = DK_1(NEG, N_Z),
    AT(N_DX) = DK_2(DIV, N_NZ, DK_P(1)),
    AT(N_DMU) = DK_2(DIV, N_Z, DK_P(1)),
    AT(N_ZZ) = DK_2(MUL, N_Z, N_Z),
    AT(N_ONE) = DK_K(1.0),
    AT(N_ZZ1) = DK_2(SUB, N_ZZ, N_ONE),
    AT(N_DSIG) = DK_2(DIV, N_ZZ1, DK_P(1)),
};
static const DistKernel normal_kernel = {
    .ins = normal_code, .n = N_DSIG - DK_FIRST + 1, .nlp = N_LP - DK_FIRST + 1, .np = 2,
    .lp = N_LP, .dx = N_DX, .dp = {N_DMU, N_DSIG, DK_NONE, DK_NONE},
};

static double normal_lpdf(double x, const double *p) { return dk_lpdf(&normal_kernel, x, p); }

static double normal_lpdf_grad(double x, const double *p, double *dx, double *dp) {
  return dk_lpdf_grad(&normal_kernel, x, p, dx, dp);
}

static double normal_rng(Rng *r, const double *p) { return p[0] + p[1] * rng_normal(r); }

static double normal_lcdf(double x, const double *p) { return m_std_normal_lcdf((x - p[0]) / p[1]); }

static double normal_lccdf(double x, const double *p) { return m_std_normal_lccdf((x - p[0]) / p[1]); }

static double normal_qf(double u, const double *p) { return p[0] + p[1] * m_std_normal_qf(u); }

/* d/dz of log Phi(+-z), chained through z = (x - mu)/sigma */
static void normal_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  double z = (x - p[0]) / p[1];
  double g = upper ? -m_std_normal_dlcdf(-z) : m_std_normal_dlcdf(z);
  *dx = g / p[1];
  dp[0] = -g / p[1];
  dp[1] = -g * z / p[1];
}
static void normal_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  normal_cdf_grad(x, p, dx, dp, false);
}
static void normal_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  normal_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_normal = {
    .name = "normal",
    .nparams = 2,
    .pnames = {"mu", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_ANY, PD_POS},
    .vtype = {TY_REAL, 0},
    .lpdf1 = normal_lpdf,
    .rng1 = normal_rng,
    .lcdf1 = normal_lcdf,
    .lccdf1 = normal_lccdf,
    .qf1 = normal_qf,
    .lpdf_grad1 = normal_lpdf_grad,
    .kernel = &normal_kernel,
    .lcdf_grad1 = normal_lcdf_grad,
    .lccdf_grad1 = normal_lccdf_grad,
};
