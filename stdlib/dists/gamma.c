/* gamma.c — gamma(alpha, beta): shape alpha, rate beta. */
#include <math.h>

#include "../dist.h"
#include "../dist_kernel.h"
#include "../mathfn.h"

static void gamma_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = INFINITY;
}

/* The log density and its partials, written once (stdlib/dist_kernel.h):
   a log(b) - lgamma(a) + (a - 1) log(x) - b x on 0 < x < inf; at x = 0,
   +inf, log(b) or -inf as a < 1, = 1 or > 1; -inf below 0 and at +inf; NaN
   for NaN.  The partials are (a - 1)/x - b, log(b) - digamma(a) + log(x)
   and a/b - x.  The interpreter runs the C this expands to; the JIT emits
   the same instructions inline and vectorised. */
enum {
  G_LB = DK_FIRST, G_ALB, G_LGA, G_S1, G_ONE, G_AM1, G_LX, G_T, G_S2, G_BX, G_V, /* x > 0 */
  G_ZERO, G_INF, G_NINF, G_ALT1, G_AEQ1, G_Z1, G_Z, G_XNEG, G_XINF, G_OUT, G_XZ, G_W1, G_W2,
  G_NOTNAN, G_NANC, G_LP,                                                        /* the edges */
  G_Q, G_DX, G_DIG, G_S, G_DA, G_AB, G_DB, G_END,                                /* partials */
};
#define GAMMA_LP(I)                                                                               \
  I(G_LB, LOG, DK_P(1), 0, 0, 0)                                                                  \
  I(G_ALB, MUL, DK_P(0), G_LB, 0, 0)                                                              \
  I(G_LGA, CALL1, DK_P(0), 0, 0, DKF_LGAMMA)                                                      \
  I(G_S1, SUB, G_ALB, G_LGA, 0, 0)                                                                \
  I(G_ONE, CONST, 0, 0, 0, 1.0)                                                                   \
  I(G_AM1, SUB, DK_P(0), G_ONE, 0, 0)                                                             \
  I(G_LX, LOG, DK_X, 0, 0, 0)                                                                     \
  I(G_T, MUL, G_AM1, G_LX, 0, 0)                                                                  \
  I(G_S2, ADD, G_S1, G_T, 0, 0)                                                                   \
  I(G_BX, MUL, DK_P(1), DK_X, 0, 0)                                                               \
  I(G_V, SUB, G_S2, G_BX, 0, 0)                                                                   \
  I(G_ZERO, CONST, 0, 0, 0, 0.0)                                                                  \
  I(G_INF, CONST, 0, 0, 0, INFINITY)                                                              \
  I(G_NINF, CONST, 0, 0, 0, -INFINITY)                                                            \
  I(G_ALT1, GT, G_ONE, DK_P(0), 0, 0)                                                             \
  I(G_AEQ1, EQ, DK_P(0), G_ONE, 0, 0)                                                             \
  I(G_Z1, SEL, G_AEQ1, G_LB, G_NINF, 0)                                                           \
  I(G_Z, SEL, G_ALT1, G_INF, G_Z1, 0)                                                             \
  I(G_XNEG, GT, G_ZERO, DK_X, 0, 0)                                                               \
  I(G_XINF, EQ, DK_X, G_INF, 0, 0)                                                                \
  I(G_OUT, OR, G_XNEG, G_XINF, 0, 0)                                                              \
  I(G_XZ, EQ, DK_X, G_ZERO, 0, 0)                                                                 \
  I(G_W1, SEL, G_XZ, G_Z, G_V, 0)                                                                 \
  I(G_W2, SEL, G_OUT, G_NINF, G_W1, 0)                                                            \
  I(G_NOTNAN, EQ, DK_X, DK_X, 0, 0)                                                               \
  I(G_NANC, CONST, 0, 0, 0, NAN)                                                                  \
  I(G_LP, SEL, G_NOTNAN, G_W2, G_NANC, 0)
#define GAMMA_GRAD(I)                                                                             \
  I(G_Q, DIV, G_AM1, DK_X, 0, 0)                                                                  \
  I(G_DX, SUB, G_Q, DK_P(1), 0, 0)                                                                \
  I(G_DIG, CALL1, DK_P(0), 0, 0, DKF_DIGAMMA)                                                     \
  I(G_S, SUB, G_LB, G_DIG, 0, 0)                                                                  \
  I(G_DA, ADD, G_S, G_LX, 0, 0)                                                                   \
  I(G_AB, DIV, DK_P(0), DK_P(1), 0, 0)                                                            \
  I(G_DB, SUB, G_AB, DK_X, 0, 0)

static const DkIns gamma_code[] = {GAMMA_LP(DK_TABLE) GAMMA_GRAD(DK_TABLE)};
static const DistKernel gamma_kernel = {
    .ins = gamma_code, .n = G_END - DK_FIRST, .nlp = G_LP - DK_FIRST + 1, .np = 2,
    .lp = G_LP, .dx = G_DX, .dp = {G_DA, G_DB, DK_NONE, DK_NONE},
};

static double gamma_lpdf(double x, const double *p) {
  double r[G_END];
  DK_ARGS(r, x, p, 2);
  GAMMA_LP(DK_C)
  return r[G_LP];
}

static double gamma_lpdf_grad(double x, const double *p, double *dx, double *dp) {
  double r[G_END];
  DK_ARGS(r, x, p, 2);
  GAMMA_LP(DK_C)
  if (!isfinite(r[G_LP])) {
    *dx = dp[0] = dp[1] = 0;
    return r[G_LP];
  }
  GAMMA_GRAD(DK_C)
  *dx = r[G_DX];
  dp[0] = r[G_DA];
  dp[1] = r[G_DB];
  return r[G_LP];
}

static double gamma_rng(Rng *r, const double *p) { return rng_gamma(r, p[0]) / p[1]; }

static double gamma_lcdf(double x, const double *p) {
  if (x <= 0.0) return isnan(x) ? NAN : -INFINITY;
  double lp, lq;
  m_gamma_pq_log(p[0], p[1] * x, &lp, &lq);
  return lp;
}

static double gamma_lccdf(double x, const double *p) {
  if (x <= 0.0) return isnan(x) ? NAN : 0.0;
  double lp, lq;
  m_gamma_pq_log(p[0], p[1] * x, &lp, &lq);
  return lq;
}


/* P(alpha, beta x): x and beta through the density, alpha numerically */
static void gamma_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  if (!(x > 0.0)) {
    *dx = dp[0] = dp[1] = 0.0;
    return;
  }
  double lc = upper ? gamma_lccdf(x, p) : gamma_lcdf(x, p);
  double g = (upper ? -1.0 : 1.0) * exp(gamma_lpdf(x, p) - lc);
  *dx = g;
  dp[1] = g * x / p[1];
  dp[0] = dist_cdf_dparam(upper ? gamma_lccdf : gamma_lcdf, x, p, 2, 0);
}
static void gamma_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  gamma_cdf_grad(x, p, dx, dp, false);
}
static void gamma_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  gamma_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_gamma = {
    .name = "gamma",
    .nparams = 2,
    .pnames = {"alpha", "beta"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_POS, PD_POS},
    .vtype = {TY_REAL, 0},
    .support = gamma_support,
    .support_reads = DIST_SUPPORT_READS(0),
    .lpdf1 = gamma_lpdf,
    .rng1 = gamma_rng,
    .lcdf1 = gamma_lcdf,
    .lccdf1 = gamma_lccdf,
    .lpdf_grad1 = gamma_lpdf_grad,
    .kernel = &gamma_kernel,
    .lcdf_grad1 = gamma_lcdf_grad,
    .lccdf_grad1 = gamma_lccdf_grad,
};
