/* binomial.c — binomial(N, theta): successes in N trials.  The mass uses the
 * saddle-point form (linalg.h) so it stays accurate for large N; the CDFs are
 * regularised incomplete beta functions evaluated in log space. */
#include <math.h>

#include "../dist.h"
#include "../linalg.h"

static void binom_support(const double *p, double *lo, double *hi) {
  *lo = 0;
  *hi = p[0];
}

static double binom_lpmf(double n, const double *p) {
  return la_binom_lpmf(n, p[0], p[1], 1 - p[1]);
}
static double binom_lcdf(double n, const double *p) {
  return la_binom_ltail(n, p[0], p[1], 1 - p[1], false);
}
static double binom_lccdf(double n, const double *p) {
  return la_binom_ltail(n, p[0], p[1], 1 - p[1], true);
}
static double binom_rng(Rng *r, const double *p) {
  if (!(p[0] <= 9007199254740992.0)) return NAN; /* no exact int draw: dist.c says so */
  return (double)rng_binomial(r, (int64_t)p[0], p[1]);
}

/* Gradients with respect to theta (N is an int).  The CDF's derivative is a
   mass: d/dtheta P(X <= n) = -(N - n) pmf(n) / (1 - theta). */
static void binom_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = 0;
  dp[1] = n / p[1] - (p[0] - n) / (1 - p[1]);
}
static void binom_cdf_grad(double n, const double *p, double *dp, bool upper) {
  dp[0] = 0;
  dp[1] = 0;
  n = floor(n);
  if (n < 0 || n >= p[0]) return;
  double lc = upper ? binom_lccdf(n, p) : binom_lcdf(n, p);
  double g = (p[0] - n) / (1 - p[1]) * exp(binom_lpmf(n, p) - lc);
  dp[1] = upper ? g : -g;
}
static void binom_lcdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  binom_cdf_grad(n, p, dp, false);
}
static void binom_lccdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  binom_cdf_grad(n, p, dp, true);
}

const DistFamily dist_binomial = {
  .name = "binomial",
  .nparams = 2,
  .pnames = {"N", "theta"},
  .ptype = {{TY_INT, 0}, {TY_REAL, 0}},
  .pdom = {PD_INT_NONNEG, PD_PROB},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = binom_support,
  .support_reads = DIST_SUPPORT_READS(0x1),
  .lpdf1 = binom_lpmf,
  .rng1 = binom_rng,
  .lcdf1 = binom_lcdf,
  .lccdf1 = binom_lccdf,
    .grad1 = binom_grad,
    .lcdf_grad1 = binom_lcdf_grad,
    .lccdf_grad1 = binom_lccdf_grad,
};
