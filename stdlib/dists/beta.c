/* beta.c — beta(alpha, beta) on [0, 1]. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void beta_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = 1.0;
}

/* (a-1) log x with the convention that a == 1 contributes 0 even at x == 0 */
static double beta_term(double a, double lx) { return a == 1.0 ? 0.0 : (a - 1.0) * lx; }

static double beta_lpdf(double x, const double *p) {
  if (isnan(x)) return NAN;
  if (x < 0.0 || x > 1.0) return -INFINITY;
  return beta_term(p[0], log(x)) + beta_term(p[1], log1p(-x)) - m_lbeta(p[0], p[1]);
}

static double beta_rng(Rng *r, const double *p) { return rng_beta(r, p[0], p[1]); }

static double beta_lcdf(double x, const double *p) {
  if (isnan(x)) return NAN;
  if (x <= 0.0) return -INFINITY;
  if (x >= 1.0) return 0.0;
  double li, lc;
  m_inc_beta_log(p[0], p[1], x, 1.0 - x, &li, &lc);
  return li;
}

static double beta_lccdf(double x, const double *p) {
  if (isnan(x)) return NAN;
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return -INFINITY;
  double li, lc;
  m_inc_beta_log(p[0], p[1], x, 1.0 - x, &li, &lc);
  return lc;
}

static void beta_grad(double x, const double *p, double *dx, double *dp) {
  double a = p[0], b = p[1], dab = m_digamma(a + b);
  *dx = (a - 1.0) / x - (b - 1.0) / (1.0 - x);
  dp[0] = log(x) - m_digamma(a) + dab;
  dp[1] = log1p(-x) - m_digamma(b) + dab;
}

/* x through the density; the shapes numerically (dist.h) */
static void beta_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  if (!(x > 0.0 && x < 1.0)) {
    *dx = dp[0] = dp[1] = 0.0;
    return;
  }
  double (*c)(double, const double *) = upper ? beta_lccdf : beta_lcdf;
  *dx = (upper ? -1.0 : 1.0) * exp(beta_lpdf(x, p) - c(x, p));
  dp[0] = dist_cdf_dparam(c, x, p, 2, 0);
  dp[1] = dist_cdf_dparam(c, x, p, 2, 1);
}
static void beta_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  beta_cdf_grad(x, p, dx, dp, false);
}
static void beta_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  beta_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_beta = {
    .name = "beta",
    .nparams = 2,
    .pnames = {"alpha", "beta"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_POS, PD_POS},
    .vtype = {TY_REAL, 0},
    .support = beta_support,
    .support_reads = DIST_SUPPORT_READS(0),
    .lpdf1 = beta_lpdf,
    .rng1 = beta_rng,
    .lcdf1 = beta_lcdf,
    .lccdf1 = beta_lccdf,
    .grad1 = beta_grad,
    .lcdf_grad1 = beta_lcdf_grad,
    .lccdf_grad1 = beta_lccdf_grad,
};
