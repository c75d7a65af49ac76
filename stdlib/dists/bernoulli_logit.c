/* bernoulli_logit.c — bernoulli_logit(alpha) = bernoulli(inv_logit(alpha)),
 * computed on the log scale so that large |alpha| keeps full precision. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void bl_support(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = 1;
}

static double bl_lpmf(double y, const double *p) {
  if (y == 1) return m_log_inv_logit(p[0]);
  if (y == 0) return m_log1m_inv_logit(p[0]);
  return -INFINITY;
}

static double bl_rng(Rng *r, const double *p) {
  return rng_uniform(r) < m_inv_logit(p[0]) ? 1 : 0;
}

static double bl_lcdf(double y, const double *p) {
  if (y < 0) return -INFINITY;
  return y < 1 ? m_log1m_inv_logit(p[0]) : 0;
}

static double bl_lccdf(double y, const double *p) {
  if (y < 0) return 0;
  return y < 1 ? m_log_inv_logit(p[0]) : -INFINITY;
}

/* d/dalpha log inv_logit(alpha) = inv_logit(-alpha), and of the other outcome
   -inv_logit(alpha): no cancellation for large |alpha|. */
static void bl_grad(double y, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = y == 1 ? m_inv_logit(-p[0]) : -m_inv_logit(p[0]);
}
static void bl_lcdf_grad(double y, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = y >= 0 && y < 1 ? -m_inv_logit(p[0]) : 0.0;
}
static void bl_lccdf_grad(double y, const double *p, double *dx, double *dp) {
  (void)dx;
  dp[0] = y >= 0 && y < 1 ? m_inv_logit(-p[0]) : 0.0;
}

const DistFamily dist_bernoulli_logit = {
  .name = "bernoulli_logit",
  .nparams = 1,
  .pnames = {"alpha"},
  .ptype = {{TY_REAL, 0}},
  .pdom = {PD_ANY},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = bl_support,
  .lpdf1 = bl_lpmf,
  .rng1 = bl_rng,
  .lcdf1 = bl_lcdf,
  .lccdf1 = bl_lccdf,
    .grad1 = bl_grad,
    .lcdf_grad1 = bl_lcdf_grad,
    .lccdf_grad1 = bl_lccdf_grad,
};
