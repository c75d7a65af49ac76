/* exponential.c — exponential(beta), beta the rate: density beta e^(-beta x). */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void exponential_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = INFINITY;
}

static double exponential_lpdf(double x, const double *p) {
  if (x < 0.0) return -INFINITY;
  return log(p[0]) - p[0] * x;
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

static void exponential_grad(double x, const double *p, double *dx, double *dp) {
  *dx = -p[0];
  dp[0] = 1.0 / p[0] - x;
}
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
    .lpdf1 = exponential_lpdf,
    .rng1 = exponential_rng,
    .lcdf1 = exponential_lcdf,
    .lccdf1 = exponential_lccdf,
    .qf1 = exponential_qf,
    .grad1 = exponential_grad,
    .lcdf_grad1 = exponential_lcdf_grad,
    .lccdf_grad1 = exponential_lccdf_grad,
};
