/* geometric.c — geometric(theta): the number of failures before the first
 * success in Bernoulli(theta) trials, support 0, 1, 2, ...  (not the number
 * of trials): P(n) = theta (1-theta)^n, mean (1-theta)/theta.  theta = 1 puts
 * all mass on 0; theta = 0 has no distribution (every mass is 0, draws are
 * 2^62). */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void geom_support(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = INFINITY;
}

static double geom_lpmf(double n, const double *p) {
  if (n < 0 || n != floor(n)) return -INFINITY;
  if (n == 0) return log(p[0]);
  return log(p[0]) + n * log1p(-p[0]);
}

/* P(X > n) = (1-theta)^(n+1) */
static double geom_lccdf(double n, const double *p) {
  n = floor(n);
  if (n < 0) return 0;
  if (p[0] == 1) return -INFINITY;
  return (n + 1) * log1p(-p[0]);
}

static double geom_lcdf(double n, const double *p) {
  if (floor(n) < 0) return -INFINITY;
  return m_log1m_exp(geom_lccdf(n, p));
}

/* Inversion: floor(log U / log(1-theta)).  Capped at 2^62 so the caller's
   conversion to int64 stays defined when theta is 0 or astronomically small. */
static double geom_rng(Rng *r, const double *p) {
  if (p[0] == 1) return 0;
  double n = floor(log(rng_uniform(r)) / log1p(-p[0]));
  return n < 0x1p62 ? n : 0x1p62;
}

static void geom_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = 1 / p[0] - (n == 0 ? 0 : n / (1 - p[0]));
}
/* log P(X > n) = (n+1) log(1 - theta); log P(X <= n) = log1m_exp of it */
static void geom_lccdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  n = floor(n);
  dp[0] = n < 0 ? 0 : -(n + 1) / (1 - p[0]);
}
static void geom_lcdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  n = floor(n);
  if (n < 0) {
    dp[0] = 0;
    return;
  }
  double ls = geom_lccdf(n, p); /* d log(1 - e^ls) = -d ls / expm1(-ls) */
  dp[0] = (n + 1) / (1 - p[0]) / expm1(-ls);
}

const DistFamily dist_geometric = {
  .name = "geometric",
  .nparams = 1,
  .pnames = {"theta"},
  .ptype = {{TY_REAL, 0}},
  .pdom = {PD_PROB},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = geom_support,
  .support_reads = DIST_SUPPORT_READS(0),
  .lpdf1 = geom_lpmf,
  .rng1 = geom_rng,
  .lcdf1 = geom_lcdf,
  .lccdf1 = geom_lccdf,
    .grad1 = geom_grad,
    .lcdf_grad1 = geom_lcdf_grad,
    .lccdf_grad1 = geom_lccdf_grad,
};
