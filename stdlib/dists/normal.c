/* normal.c — normal(mu, sigma), sigma the standard deviation (Stan's). */
#include <math.h>

#include "../dist.h"
#include "../dist_kernel.h"
#include "../mathfn.h"

/* The log density and its partials, written once (stdlib/dist_kernel.h):
   with z = (x - mu)/sigma, lp = -z^2/2 - log(sigma) - log(sqrt(2 pi)), and
   the partials are -z/sigma, z/sigma and (z^2 - 1)/sigma.  The interpreter
   runs the C this expands to; the JIT emits the same instructions inline. */
enum {
  N_D = DK_FIRST, N_Z, N_H, N_HZ, N_Q, N_LS, N_A, N_C, N_LP, /* density */
  N_NZ, N_DX, N_DMU, N_ZZ, N_ONE, N_ZZ1, N_DSIG, N_END,      /* partials */
};
#define NORMAL_LP(I)                                                                              \
  I(N_D, SUB, DK_X, DK_P(0), 0, 0)                                                                \
  I(N_Z, DIV, N_D, DK_P(1), 0, 0)                                                                 \
  I(N_H, CONST, 0, 0, 0, -0.5)                                                                    \
  I(N_HZ, MUL, N_H, N_Z, 0, 0)                                                                    \
  I(N_Q, MUL, N_HZ, N_Z, 0, 0)                                                                    \
  I(N_LS, LOG, DK_P(1), 0, 0, 0)                                                                  \
  I(N_A, SUB, N_Q, N_LS, 0, 0)                                                                    \
  I(N_C, CONST, 0, 0, 0, PPL_LOG_SQRT_2PI)                                                        \
  I(N_LP, SUB, N_A, N_C, 0, 0)
#define NORMAL_GRAD(I)                                                                            \
  I(N_NZ, NEG, N_Z, 0, 0, 0)                                                                      \
  I(N_DX, DIV, N_NZ, DK_P(1), 0, 0)                                                               \
  I(N_DMU, DIV, N_Z, DK_P(1), 0, 0)                                                               \
  I(N_ZZ, MUL, N_Z, N_Z, 0, 0)                                                                    \
  I(N_ONE, CONST, 0, 0, 0, 1.0)                                                                   \
  I(N_ZZ1, SUB, N_ZZ, N_ONE, 0, 0)                                                                \
  I(N_DSIG, DIV, N_ZZ1, DK_P(1), 0, 0)

static const DkIns normal_code[] = {NORMAL_LP(DK_TABLE) NORMAL_GRAD(DK_TABLE)};
static const DistKernel normal_kernel = {
    .ins = normal_code, .n = N_END - DK_FIRST, .nlp = N_LP - DK_FIRST + 1, .np = 2,
    .lp = N_LP, .dx = N_DX, .dp = {N_DMU, N_DSIG, DK_NONE, DK_NONE},
};

static double normal_lpdf(double x, const double *p) {
  double r[N_END];
  DK_ARGS(r, x, p, 2);
  NORMAL_LP(DK_C)
  return r[N_LP];
}

static double normal_lpdf_grad(double x, const double *p, double *dx, double *dp) {
  double r[N_END];
  DK_ARGS(r, x, p, 2);
  NORMAL_LP(DK_C)
  if (!isfinite(r[N_LP])) {
    *dx = dp[0] = dp[1] = 0;
    return r[N_LP];
  }
  NORMAL_GRAD(DK_C)
  *dx = r[N_DX];
  dp[0] = r[N_DMU];
  dp[1] = r[N_DSIG];
  return r[N_LP];
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
