/* inv_gamma.c — inv_gamma(alpha, beta): 1/x ~ gamma(alpha, beta); beta is a
 * scale for x.  P(X <= x) = Q(alpha, beta/x). */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void inv_gamma_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = INFINITY;
}

static double inv_gamma_lpdf(double x, const double *p) {
  double a = p[0], b = p[1];
  if (isnan(x)) return NAN;
  if (x <= 0.0 || x == INFINITY) return -INFINITY;
  return a * log(b) - m_lgamma(a) - (a + 1.0) * log(x) - b / x;
}

static double inv_gamma_rng(Rng *r, const double *p) { return p[1] / rng_gamma(r, p[0]); }

static double inv_gamma_lcdf(double x, const double *p) {
  if (x <= 0.0) return isnan(x) ? NAN : -INFINITY;
  double lp, lq;
  m_gamma_pq_log(p[0], p[1] / x, &lp, &lq);
  return lq;
}

static double inv_gamma_lccdf(double x, const double *p) {
  if (x <= 0.0) return isnan(x) ? NAN : 0.0;
  double lp, lq;
  m_gamma_pq_log(p[0], p[1] / x, &lp, &lq);
  return lp;
}

static void inv_gamma_grad(double x, const double *p, double *dx, double *dp) {
  double a = p[0], b = p[1];
  *dx = -(a + 1.0) / x + b / (x * x);
  dp[0] = log(b) - m_digamma(a) - log(x);
  dp[1] = a / b - 1.0 / x;
}

/* Q(alpha, beta/x): d/dbeta F = -(x/beta) f(x); alpha numerically */
static void inv_gamma_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  if (!(x > 0.0)) {
    *dx = dp[0] = dp[1] = 0.0;
    return;
  }
  double lc = upper ? inv_gamma_lccdf(x, p) : inv_gamma_lcdf(x, p);
  double g = (upper ? -1.0 : 1.0) * exp(inv_gamma_lpdf(x, p) - lc);
  *dx = g;
  dp[1] = -g * x / p[1];
  dp[0] = dist_cdf_dparam(upper ? inv_gamma_lccdf : inv_gamma_lcdf, x, p, 2, 0);
}
static void inv_gamma_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  inv_gamma_cdf_grad(x, p, dx, dp, false);
}
static void inv_gamma_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  inv_gamma_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_inv_gamma = {
    .name = "inv_gamma",
    .nparams = 2,
    .pnames = {"alpha", "beta"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_POS, PD_POS},
    .vtype = {TY_REAL, 0},
    .support = inv_gamma_support,
    .support_reads = DIST_SUPPORT_READS(0),
    .lpdf1 = inv_gamma_lpdf,
    .rng1 = inv_gamma_rng,
    .lcdf1 = inv_gamma_lcdf,
    .lccdf1 = inv_gamma_lccdf,
    .grad1 = inv_gamma_grad,
    .lcdf_grad1 = inv_gamma_lcdf_grad,
    .lccdf_grad1 = inv_gamma_lccdf_grad,
};
