/* poisson.c — poisson(lambda), lambda >= 0 (lambda = 0 puts all mass on 0).
 * Saddle-point mass for accuracy at large counts; CDFs are regularised
 * incomplete gamma functions: P(X <= n) = Q(n+1, lambda). */
#include <math.h>

#include "../dist.h"
#include "../linalg.h"
#include "../mathfn.h"

static void pois_support(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = INFINITY;
}

static double pois_lpmf(double n, const double *p) { return la_pois_raw(n, p[0]); }

static double pois_tail(double n, double lambda, bool upper) {
  n = floor(n);
  if (n < 0) return upper ? 0 : -INFINITY;
  if (lambda == 0) return upper ? -INFINITY : 0;
  double lp, lq;
  m_gamma_pq_log(n + 1, lambda, &lp, &lq);
  return upper ? lp : lq;
}

static double pois_lcdf(double n, const double *p) { return pois_tail(n, p[0], false); }
static double pois_lccdf(double n, const double *p) { return pois_tail(n, p[0], true); }
static double pois_rng(Rng *r, const double *p) { return (double)rng_poisson(r, p[0]); }

/* d/dlambda: n/lambda - 1; of P(X <= n) = Q(n+1, lambda) it is -pmf(n). */
static void pois_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = n / p[0] - 1;
}
static void pois_cdf_grad(double n, const double *p, double *dp, bool upper) {
  n = floor(n);
  dp[0] = 0;
  if (n < 0 || p[0] == 0) return;
  double lc = pois_tail(n, p[0], upper);
  double g = exp(pois_lpmf(n, p) - lc);
  dp[0] = upper ? g : -g;
}
static void pois_lcdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  pois_cdf_grad(n, p, dp, false);
}
static void pois_lccdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  pois_cdf_grad(n, p, dp, true);
}

const DistFamily dist_poisson = {
  .name = "poisson",
  .nparams = 1,
  .pnames = {"lambda"},
  .ptype = {{TY_REAL, 0}},
  .pdom = {PD_NONNEG},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = pois_support,
  .support_reads = DIST_SUPPORT_READS(0),
  .lpdf1 = pois_lpmf,
  .rng1 = pois_rng,
  .lcdf1 = pois_lcdf,
  .lccdf1 = pois_lccdf,
    .grad1 = pois_grad,
    .lcdf_grad1 = pois_lcdf_grad,
    .lccdf_grad1 = pois_lccdf_grad,
};
