/* lognormal.c — lognormal(mu, sigma): log(x) ~ normal(mu, sigma), x > 0. */
#include <math.h>

#include "../dist.h"
#include "../dist_kernel.h"
#include "../mathfn.h"

static void lognormal_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = INFINITY;
}

/* The log density and its partials, written once (stdlib/dist_kernel.h):
   with z = (log x - mu)/sigma, lp = -z^2/2 - log(sigma) - log(sqrt(2 pi))
   - log x on 0 < x < inf (-inf elsewhere, NaN for NaN); the partials are
   (-z/sigma - 1)/x, z/sigma and (z^2 - 1)/sigma.  The interpreter runs the C
   this expands to; the JIT emits the same instructions inline and
   vectorised. */
enum {
  L_LX = DK_FIRST, L_D, L_Z, L_H, L_HZ, L_Q, L_LS, L_A, L_C, L_B, L_V, /* on the support */
  L_ZERO, L_POS, L_INF, L_ISINF, L_NINF, L_OUT, L_NOTNAN, L_NANC, L_BAD, L_LP, /* off it */
  L_NZ, L_T, L_ONE, L_T1, L_DX, L_DMU, L_ZZ, L_ZZ1, L_DSIG, L_END, /* partials */
};
#define LOGNORMAL_LP(I)                                                                           \
  I(L_LX, LOG, DK_X, 0, 0, 0)                                                                     \
  I(L_D, SUB, L_LX, DK_P(0), 0, 0)                                                                \
  I(L_Z, DIV, L_D, DK_P(1), 0, 0)                                                                 \
  I(L_H, CONST, 0, 0, 0, -0.5)                                                                    \
  I(L_HZ, MUL, L_H, L_Z, 0, 0)                                                                    \
  I(L_Q, MUL, L_HZ, L_Z, 0, 0)                                                                    \
  I(L_LS, LOG, DK_P(1), 0, 0, 0)                                                                  \
  I(L_A, SUB, L_Q, L_LS, 0, 0)                                                                    \
  I(L_C, CONST, 0, 0, 0, PPL_LOG_SQRT_2PI)                                                        \
  I(L_B, SUB, L_A, L_C, 0, 0)                                                                     \
  I(L_V, SUB, L_B, L_LX, 0, 0)                                                                    \
  I(L_ZERO, CONST, 0, 0, 0, 0.0)                                                                  \
  I(L_POS, GT, DK_X, L_ZERO, 0, 0)                                                                \
  I(L_INF, CONST, 0, 0, 0, INFINITY)                                                              \
  I(L_ISINF, EQ, DK_X, L_INF, 0, 0)                                                               \
  I(L_NINF, CONST, 0, 0, 0, -INFINITY)                                                            \
  I(L_OUT, SEL, L_ISINF, L_NINF, L_V, 0)                                                          \
  I(L_NOTNAN, EQ, DK_X, DK_X, 0, 0)                                                               \
  I(L_NANC, CONST, 0, 0, 0, NAN)                                                                  \
  I(L_BAD, SEL, L_NOTNAN, L_NINF, L_NANC, 0)                                                      \
  I(L_LP, SEL, L_POS, L_OUT, L_BAD, 0)
#define LOGNORMAL_GRAD(I)                                                                         \
  I(L_NZ, NEG, L_Z, 0, 0, 0)                                                                      \
  I(L_T, DIV, L_NZ, DK_P(1), 0, 0)                                                                \
  I(L_ONE, CONST, 0, 0, 0, 1.0)                                                                   \
  I(L_T1, SUB, L_T, L_ONE, 0, 0)                                                                  \
  I(L_DX, DIV, L_T1, DK_X, 0, 0)                                                                  \
  I(L_DMU, DIV, L_Z, DK_P(1), 0, 0)                                                               \
  I(L_ZZ, MUL, L_Z, L_Z, 0, 0)                                                                    \
  I(L_ZZ1, SUB, L_ZZ, L_ONE, 0, 0)                                                                \
  I(L_DSIG, DIV, L_ZZ1, DK_P(1), 0, 0)

static const DkIns lognormal_code[] = {LOGNORMAL_LP(DK_TABLE) LOGNORMAL_GRAD(DK_TABLE)};
static const DistKernel lognormal_kernel = {
    .ins = lognormal_code, .n = L_END - DK_FIRST, .nlp = L_LP - DK_FIRST + 1, .np = 2,
    .lp = L_LP, .dx = L_DX, .dp = {L_DMU, L_DSIG, DK_NONE, DK_NONE},
};

static double lognormal_lpdf(double x, const double *p) {
  double r[L_END];
  DK_ARGS(r, x, p, 2);
  LOGNORMAL_LP(DK_C)
  return r[L_LP];
}

static double lognormal_lpdf_grad(double x, const double *p, double *dx, double *dp) {
  double r[L_END];
  DK_ARGS(r, x, p, 2);
  LOGNORMAL_LP(DK_C)
  if (!isfinite(r[L_LP])) {
    *dx = dp[0] = dp[1] = 0;
    return r[L_LP];
  }
  LOGNORMAL_GRAD(DK_C)
  *dx = r[L_DX];
  dp[0] = r[L_DMU];
  dp[1] = r[L_DSIG];
  return r[L_LP];
}

static double lognormal_rng(Rng *r, const double *p) { return exp(p[0] + p[1] * rng_normal(r)); }

static double lognormal_lcdf(double x, const double *p) {
  if (x <= 0.0) return -INFINITY;
  return m_std_normal_lcdf((log(x) - p[0]) / p[1]);
}

static double lognormal_lccdf(double x, const double *p) {
  if (x <= 0.0) return 0.0;
  return m_std_normal_lccdf((log(x) - p[0]) / p[1]);
}

static double lognormal_qf(double u, const double *p) { return exp(p[0] + p[1] * m_std_normal_qf(u)); }

static void lognormal_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  if (!(x > 0.0)) {
    *dx = dp[0] = dp[1] = 0.0;
    return;
  }
  double z = (log(x) - p[0]) / p[1];
  double g = upper ? -m_std_normal_dlcdf(-z) : m_std_normal_dlcdf(z);
  *dx = g / (p[1] * x);
  dp[0] = -g / p[1];
  dp[1] = -g * z / p[1];
}
static void lognormal_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  lognormal_cdf_grad(x, p, dx, dp, false);
}
static void lognormal_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  lognormal_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_lognormal = {
    .name = "lognormal",
    .nparams = 2,
    .pnames = {"mu", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_ANY, PD_POS},
    .vtype = {TY_REAL, 0},
    .support = lognormal_support,
    .support_reads = DIST_SUPPORT_READS(0),
    .lpdf1 = lognormal_lpdf,
    .rng1 = lognormal_rng,
    .lcdf1 = lognormal_lcdf,
    .lccdf1 = lognormal_lccdf,
    .qf1 = lognormal_qf,
    .lpdf_grad1 = lognormal_lpdf_grad,
    .kernel = &lognormal_kernel,
    .lcdf_grad1 = lognormal_lcdf_grad,
    .lccdf_grad1 = lognormal_lccdf_grad,
};
