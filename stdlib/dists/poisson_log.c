/* poisson_log.c — poisson_log(alpha) = poisson(exp(alpha)).  For alpha < 0
 * the mass is n alpha - e^alpha - lgamma(n+1) directly (no large terms cancel,
 * and it survives e^alpha underflowing); above, the saddle-point form. */
#include <math.h>

#include "../dist.h"
#include "../linalg.h"
#include "../mathfn.h"

static void pl_support(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = INFINITY;
}

static double pl_lpmf(double n, const double *p) {
  double a = p[0];
  if (n < 0 || n != floor(n)) return -INFINITY;
  if (a < 0) return n == 0 ? -exp(a) : n * a - exp(a) - m_lgamma(n + 1);
  return la_pois_raw(n, exp(a)); /* exp(a) = inf gives -inf: the true value underflows */
}

static double pl_tail(double n, double a, bool upper) {
  n = floor(n);
  if (n < 0) return upper ? 0 : -INFINITY;
  double lambda = exp(a);
  if (lambda < 1e-300) {
    /* P(X > n) = e^-lambda lambda^(n+1)/(n+1)! (1 + lambda/(n+2) + ...): the
       incomplete gamma would see lambda = 0 after underflow */
    double lu = -lambda + (n + 1) * a - m_lgamma(n + 2) + log1p(lambda / (n + 2));
    return upper ? lu : m_log1m_exp(lu);
  }
  double lp, lq;
  m_gamma_pq_log(n + 1, lambda, &lp, &lq);
  return upper ? lp : lq;
}

static double pl_lcdf(double n, const double *p) { return pl_tail(n, p[0], false); }
static double pl_lccdf(double n, const double *p) { return pl_tail(n, p[0], true); }
static double pl_rng(Rng *r, const double *p) { return (double)rng_poisson(r, exp(p[0])); }

/* As poisson's, chained through dlambda/dalpha = lambda. */
static void pl_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = n - exp(p[0]);
}
static void pl_cdf_grad(double n, const double *p, double *dp, bool upper) {
  n = floor(n);
  dp[0] = 0;
  if (n < 0) return;
  double lc = pl_tail(n, p[0], upper);
  double g = exp(pl_lpmf(n, p) + p[0] - lc);
  dp[0] = upper ? g : -g;
}
static void pl_lcdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  pl_cdf_grad(n, p, dp, false);
}
static void pl_lccdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  pl_cdf_grad(n, p, dp, true);
}

const DistFamily dist_poisson_log = {
  .name = "poisson_log",
  .nparams = 1,
  .pnames = {"alpha"},
  .ptype = {{TY_REAL, 0}},
  .pdom = {PD_ANY},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = pl_support,
  .support_reads = DIST_SUPPORT_READS(0),
  .lpdf1 = pl_lpmf,
  .rng1 = pl_rng,
  .lcdf1 = pl_lcdf,
  .lccdf1 = pl_lccdf,
    .grad1 = pl_grad,
    .lcdf_grad1 = pl_lcdf_grad,
    .lccdf_grad1 = pl_lccdf_grad,
};
