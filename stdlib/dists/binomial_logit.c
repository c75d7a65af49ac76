/* binomial_logit.c — binomial_logit(N, alpha) = binomial(N, inv_logit(alpha)).
 * theta and 1 - theta both come from inv_logit, so neither loses digits when
 * alpha is far from 0. */
#include <math.h>

#include "../dist.h"
#include "../linalg.h"
#include "../mathfn.h"

static void bl_support(const double *p, double *lo, double *hi) {
  *lo = 0;
  *hi = p[0];
}

/* The log mass and d/dalpha = n - N theta.  Up to LA_SMALL_N trials from log
   theta and log(1 - theta), both -log1p(exp(-|alpha|)) less |alpha| or not:
   one exp and one log1p for the two and for theta. */
static double bl_lpmf_grad(double n, const double *p, double *dx, double *dp) {
  double N = p[0], a = p[1];
  *dx = 0;
  dp[0] = dp[1] = 0;
  if (!(N <= LA_SMALL_N) || isnan(a)) {
    double l = la_binom_lpmf(n, N, m_inv_logit(a), m_inv_logit(-a));
    if (isfinite(l)) dp[1] = n - N * m_inv_logit(a);
    return l;
  }
  if (n < 0 || n > N || n != floor(n)) return -INFINITY;
  double e = exp(-fabs(a)), s = log1p(e);
  double l = la_binom_small(n, N, a > 0 ? -s : a - s, a > 0 ? -a - s : -s);
  if (isfinite(l)) dp[1] = n - N * (a >= 0 ? 1 / (1 + e) : e / (1 + e));
  return l;
}
static double bl_lpmf(double n, const double *p) {
  double dx, dp[2];
  return bl_lpmf_grad(n, p, &dx, dp);
}
static double bl_lcdf(double n, const double *p) {
  return la_binom_ltail(n, p[0], m_inv_logit(p[1]), m_inv_logit(-p[1]), false);
}
static double bl_lccdf(double n, const double *p) {
  return la_binom_ltail(n, p[0], m_inv_logit(p[1]), m_inv_logit(-p[1]), true);
}
static double bl_rng(Rng *r, const double *p) {
  if (!(p[0] <= 9007199254740992.0)) return NAN; /* no exact int draw: dist.c says so */
  return (double)rng_binomial(r, (int64_t)p[0], m_inv_logit(p[1]));
}

/* As binomial's, chained through dtheta/dalpha = theta (1 - theta). */
static void bl_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = 0;
  dp[1] = n - p[0] * m_inv_logit(p[1]);
}
static void bl_cdf_grad(double n, const double *p, double *dp, bool upper) {
  dp[0] = 0;
  dp[1] = 0;
  n = floor(n);
  if (n < 0 || n >= p[0]) return;
  double lc = upper ? bl_lccdf(n, p) : bl_lcdf(n, p);
  double g = (p[0] - n) * m_inv_logit(p[1]) * exp(bl_lpmf(n, p) - lc);
  dp[1] = upper ? g : -g;
}
static void bl_lcdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  bl_cdf_grad(n, p, dp, false);
}
static void bl_lccdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  bl_cdf_grad(n, p, dp, true);
}

const DistFamily dist_binomial_logit = {
  .name = "binomial_logit",
  .nparams = 2,
  .pnames = {"N", "alpha"},
  .ptype = {{TY_INT, 0}, {TY_REAL, 0}},
  .pdom = {PD_INT_NONNEG, PD_ANY},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = bl_support,
  .support_reads = DIST_SUPPORT_READS(0x1),
  .lpdf1 = bl_lpmf,
  .lpdf_grad1 = bl_lpmf_grad,
  .rng1 = bl_rng,
  .lcdf1 = bl_lcdf,
  .lccdf1 = bl_lccdf,
    .grad1 = bl_grad,
    .lcdf_grad1 = bl_lcdf_grad,
    .lccdf_grad1 = bl_lccdf_grad,
};
