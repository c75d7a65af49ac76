/* discrete_uniform.c — discrete_uniform(lower, upper): each integer in
 * lower..upper (inclusive) has mass 1/(upper - lower + 1).  lower > upper
 * leaves an empty support: every mass is 0 (the support callback reports the
 * empty interval so the generic layer can say so). */
#include <math.h>

#include "../dist.h"

static void du_support(const double *p, double *lo, double *hi) {
  *lo = p[0];
  *hi = p[1];
}

static double du_lpmf(double n, const double *p) {
  double lo = p[0], hi = p[1];
  if (n < lo || n > hi || n != floor(n)) return -INFINITY;
  return -log(hi - lo + 1);
}

static double du_lcdf(double n, const double *p) {
  double lo = p[0], hi = p[1];
  n = floor(n);
  if (n < lo || hi < lo) return -INFINITY;
  if (n >= hi) return 0;
  return log((n - lo + 1) / (hi - lo + 1));
}

static double du_lccdf(double n, const double *p) {
  double lo = p[0], hi = p[1];
  n = floor(n);
  if (hi < lo || n >= hi) return -INFINITY;
  if (n < lo) return 0;
  return log((hi - n) / (hi - lo + 1));
}

static double du_rng(Rng *r, const double *p) {
  if (p[1] < p[0]) return p[0]; /* dist.c rejects an empty support before drawing */
  return (double)rng_int(r, (int64_t)p[0], (int64_t)p[1]);
}

/* Both parameters are ints: nothing to differentiate. */
static void du_grad(double n, const double *p, double *dx, double *dp) {
  (void)n, (void)p, (void)dx;
  dp[0] = dp[1] = 0;
}

const DistFamily dist_discrete_uniform = {
  .name = "discrete_uniform",
  .nparams = 2,
  .pnames = {"lower", "upper"},
  .ptype = {{TY_INT, 0}, {TY_INT, 0}},
  .pdom = {PD_INT, PD_INT},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = du_support,
  .support_reads = DIST_SUPPORT_READS(0x3),
  .lpdf1 = du_lpmf,
  .rng1 = du_rng,
  .lcdf1 = du_lcdf,
  .lccdf1 = du_lccdf,
    .grad1 = du_grad,
    .lcdf_grad1 = du_grad,
    .lccdf_grad1 = du_grad,
};
