/* binomial.c — binomial(N, theta): successes in N trials.  The mass uses the
 * saddle-point form (linalg.h) so it stays accurate for large N; the CDFs are
 * regularised incomplete beta functions evaluated in log space. */
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
  return (double)rng_binomial(r, (int64_t)p[0], p[1]);
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
  .lpdf1 = binom_lpmf,
  .rng1 = binom_rng,
  .lcdf1 = binom_lcdf,
  .lccdf1 = binom_lccdf,
};
