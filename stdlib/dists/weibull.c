/* weibull.c — weibull(alpha, sigma): shape alpha, scale sigma;
 * P(X > x) = exp(-(x/sigma)^alpha). */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void weibull_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = INFINITY;
}

static double weibull_lpdf(double x, const double *p) {
  double a = p[0], s = p[1];
  if (isnan(x)) return NAN;
  if (x < 0.0 || x == INFINITY) return -INFINITY;
  if (x == 0.0) return a < 1.0 ? INFINITY : a == 1.0 ? -log(s) : -INFINITY;
  double lz = log(x / s);
  return log(a) - log(s) + (a - 1.0) * lz - exp(a * lz);
}

static double weibull_lcdf(double x, const double *p) {
  if (x <= 0.0) return isnan(x) ? NAN : -INFINITY;
  double lt = p[0] * log(x / p[1]); /* log (x/sigma)^alpha */
  /* 1 - e^-t = t (1 - t/2 + ...): for tiny t its log is log t to full precision,
     and t itself may have underflowed */
  if (lt < -40.0) return lt;
  return m_log1m_exp(-exp(lt));
}

static double weibull_lccdf(double x, const double *p) {
  if (x <= 0.0) return isnan(x) ? NAN : 0.0;
  return -exp(p[0] * log(x / p[1]));
}

static double weibull_qf(double u, const double *p) { return p[1] * pow(-log1p(-u), 1.0 / p[0]); }

static double weibull_rng(Rng *r, const double *p) {
  return p[1] * pow(rng_exponential(r), 1.0 / p[0]);
}

/* Gradients, with lz = log(x/sigma) and t = (x/sigma)^alpha. */
static void weibull_grad(double x, const double *p, double *dx, double *dp) {
  double a = p[0], s = p[1], lz = log(x / s), t = exp(a * lz);
  *dx = (a - 1.0 - a * t) / x;
  dp[0] = 1.0 / a + lz * (1.0 - t);
  dp[1] = a * (t - 1.0) / s;
}
/* log P(X > x) = -t; log P(X <= x) = log(1 - e^-t), d/dt = 1/expm1(t) */
static void weibull_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  if (!(x > 0.0)) {
    *dx = dp[0] = dp[1] = 0.0;
    return;
  }
  double a = p[0], s = p[1], lz = log(x / s), t = exp(a * lz);
  *dx = -a * t / x;
  dp[0] = -t * lz;
  dp[1] = a * t / s;
}
static void weibull_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  if (!(x > 0.0)) {
    *dx = dp[0] = dp[1] = 0.0;
    return;
  }
  double a = p[0], s = p[1], lz = log(x / s), t = exp(a * lz);
  double r = m_x_over_expm1(t); /* t/expm1(t): d log(1 - e^-t) = r dt/t = r d log t */
  *dx = r * a / x;
  dp[0] = r * lz;
  dp[1] = -r * a / s;
}

const DistFamily dist_weibull = {
    .name = "weibull",
    .nparams = 2,
    .pnames = {"alpha", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_POS, PD_POS},
    .vtype = {TY_REAL, 0},
    .support = weibull_support,
    .support_reads = DIST_SUPPORT_READS(0),
    .lpdf1 = weibull_lpdf,
    .rng1 = weibull_rng,
    .lcdf1 = weibull_lcdf,
    .lccdf1 = weibull_lccdf,
    .qf1 = weibull_qf,
    .grad1 = weibull_grad,
    .lcdf_grad1 = weibull_lcdf_grad,
    .lccdf_grad1 = weibull_lccdf_grad,
};
