/* gamma.c — gamma(alpha, beta): shape alpha, rate beta. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void gamma_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = INFINITY;
}

static double gamma_lpdf(double x, const double *p) {
  double a = p[0], b = p[1];
  if (isnan(x)) return NAN;
  if (x < 0.0 || x == INFINITY) return -INFINITY;
  if (x == 0.0) return a < 1.0 ? INFINITY : a == 1.0 ? log(b) : -INFINITY;
  return a * log(b) - m_lgamma(a) + (a - 1.0) * log(x) - b * x;
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

static void gamma_grad(double x, const double *p, double *dx, double *dp) {
  double a = p[0], b = p[1];
  *dx = (a - 1.0) / x - b;
  dp[0] = log(b) - m_digamma(a) + log(x);
  dp[1] = a / b - x;
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
    .lpdf1 = gamma_lpdf,
    .rng1 = gamma_rng,
    .lcdf1 = gamma_lcdf,
    .lccdf1 = gamma_lccdf,
    .grad1 = gamma_grad,
    .lcdf_grad1 = gamma_lcdf_grad,
    .lccdf_grad1 = gamma_lccdf_grad,
};
