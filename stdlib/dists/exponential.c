/* exponential.c — exponential(beta), beta the rate: density beta e^(-beta x). */
#include <math.h>

#include "../dist.h"
#include "../dist_kernel.h"
#include "../mathfn.h"

static void exponential_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = INFINITY;
}

/* The log density and its partials, written once (stdlib/dist_kernel.h):
   log(beta) - beta x on x >= 0 (-inf below), partials -beta and
   1/beta - x. */
enum {
  E_ZERO = DK_FIRST, E_NEG, E_LB, E_BX, E_A, E_NINF, E_LP, /* density */
  E_DX, E_ONE, E_INV, E_DB, E_END,                         /* partials */
};
#define EXPONENTIAL_LP(I)                                                                         \
  I(E_ZERO, CONST, 0, 0, 0, 0.0)                                                                  \
  I(E_NEG, GT, E_ZERO, DK_X, 0, 0)                                                                \
  I(E_LB, LOG, DK_P(0), 0, 0, 0)                                                                  \
  I(E_BX, MUL, DK_P(0), DK_X, 0, 0)                                                               \
  I(E_A, SUB, E_LB, E_BX, 0, 0)                                                                   \
  I(E_NINF, CONST, 0, 0, 0, -INFINITY)                                                            \
  I(E_LP, SEL, E_NEG, E_NINF, E_A, 0)
#define EXPONENTIAL_GRAD(I)                                                                       \
  I(E_DX, NEG, DK_P(0), 0, 0, 0)                                                                  \
  I(E_ONE, CONST, 0, 0, 0, 1.0)                                                                   \
  I(E_INV, DIV, E_ONE, DK_P(0), 0, 0)                                                             \
  I(E_DB, SUB, E_INV, DK_X, 0, 0)

static const DkIns exponential_code[] = {EXPONENTIAL_LP(DK_TABLE) EXPONENTIAL_GRAD(DK_TABLE)};
static const DistKernel exponential_kernel = {
    .ins = exponential_code, .n = E_END - DK_FIRST, .nlp = E_LP - DK_FIRST + 1, .np = 1,
    .lp = E_LP, .dx = E_DX, .dp = {E_DB, DK_NONE, DK_NONE, DK_NONE},
};

static double exponential_lpdf(double x, const double *p) {
  double r[E_END];
  DK_ARGS(r, x, p, 1);
  EXPONENTIAL_LP(DK_C)
  return r[E_LP];
}

static double exponential_lpdf_grad(double x, const double *p, double *dx, double *dp) {
  double r[E_END];
  DK_ARGS(r, x, p, 1);
  EXPONENTIAL_LP(DK_C)
  if (!isfinite(r[E_LP])) {
    *dx = dp[0] = 0;
    return r[E_LP];
  }
  EXPONENTIAL_GRAD(DK_C)
  *dx = r[E_DX];
  dp[0] = r[E_DB];
  return r[E_LP];
}

static double exponential_rng(Rng *r, const double *p) { return rng_exponential(r) / p[0]; }

static double exponential_lcdf(double x, const double *p) {
  if (x <= 0.0) return isnan(x) ? NAN : -INFINITY;
  return m_log1m_exp(-p[0] * x);
}

static double exponential_lccdf(double x, const double *p) {
  if (x <= 0.0) return isnan(x) ? NAN : 0.0;
  return -p[0] * x;
}

static double exponential_qf(double u, const double *p) { return -log1p(-u) / p[0]; }

/* log(1 - e^-t), t = beta x: d/dt = 1/expm1(t) = (t/expm1(t))/t */
static void exponential_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  if (!(x > 0.0)) {
    *dx = dp[0] = 0.0;
    return;
  }
  double r = m_x_over_expm1(p[0] * x);
  *dx = r / x;
  dp[0] = r / p[0];
}
static void exponential_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  if (!(x > 0.0)) {
    *dx = dp[0] = 0.0;
    return;
  }
  *dx = -p[0];
  dp[0] = -x;
}

const DistFamily dist_exponential = {
    .name = "exponential",
    .nparams = 1,
    .pnames = {"beta"},
    .ptype = {{TY_REAL, 0}},
    .pdom = {PD_POS},
    .vtype = {TY_REAL, 0},
    .support = exponential_support,
    .support_reads = DIST_SUPPORT_READS(0),
    .lpdf1 = exponential_lpdf,
    .rng1 = exponential_rng,
    .lcdf1 = exponential_lcdf,
    .lccdf1 = exponential_lccdf,
    .qf1 = exponential_qf,
    .lpdf_grad1 = exponential_lpdf_grad,
    .kernel = &exponential_kernel,
    .lcdf_grad1 = exponential_lcdf_grad,
    .lccdf_grad1 = exponential_lccdf_grad,
};
