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

const DistFamily dist_beta = {
    .name = "beta",
    .nparams = 2,
    .pnames = {"alpha", "beta"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_POS, PD_POS},
    .vtype = {TY_REAL, 0},
    .support = beta_support,
    .lpdf1 = beta_lpdf,
    .rng1 = beta_rng,
    .lcdf1 = beta_lcdf,
    .lccdf1 = beta_lccdf,
};
