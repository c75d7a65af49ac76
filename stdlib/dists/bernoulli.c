/* bernoulli.c — bernoulli(theta): P(y = 1) = theta, P(y = 0) = 1 - theta. */
#include <math.h>

#include "../dist.h"

static void bern_support(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = 1;
}

static double bern_lpmf(double y, const double *p) {
  if (y == 1) return log(p[0]);
  if (y == 0) return log1p(-p[0]);
  return -INFINITY;
}

static double bern_rng(Rng *r, const double *p) { return rng_uniform(r) < p[0] ? 1 : 0; }

static double bern_lcdf(double y, const double *p) {
  if (y < 0) return -INFINITY;
  return y < 1 ? log1p(-p[0]) : 0;
}

static double bern_lccdf(double y, const double *p) {
  if (y < 0) return 0;
  return y < 1 ? log(p[0]) : -INFINITY;
}

/* Gradients with respect to theta (the value is an int: no dx). */
static void bern_grad(double y, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = y == 1 ? 1.0 / p[0] : -1.0 / (1.0 - p[0]);
}
static void bern_lcdf_grad(double y, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = y >= 0 && y < 1 ? -1.0 / (1.0 - p[0]) : 0.0;
}
static void bern_lccdf_grad(double y, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = y >= 0 && y < 1 ? 1.0 / p[0] : 0.0;
}

const DistFamily dist_bernoulli = {
  .name = "bernoulli",
  .nparams = 1,
  .pnames = {"theta"},
  .ptype = {{TY_REAL, 0}},
  .pdom = {PD_PROB},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = bern_support,
  .support_reads = DIST_SUPPORT_READS(0),
  .lpdf1 = bern_lpmf,
  .rng1 = bern_rng,
  .lcdf1 = bern_lcdf,
  .lccdf1 = bern_lccdf,
    .grad1 = bern_grad,
    .lcdf_grad1 = bern_lcdf_grad,
    .lccdf_grad1 = bern_lccdf_grad,
};
