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

const DistFamily dist_inv_gamma = {
    .name = "inv_gamma",
    .nparams = 2,
    .pnames = {"alpha", "beta"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_POS, PD_POS},
    .vtype = {TY_REAL, 0},
    .support = inv_gamma_support,
    .lpdf1 = inv_gamma_lpdf,
    .rng1 = inv_gamma_rng,
    .lcdf1 = inv_gamma_lcdf,
    .lccdf1 = inv_gamma_lccdf,
};
