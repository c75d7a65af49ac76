/* lognormal.c — lognormal(mu, sigma): log(x) ~ normal(mu, sigma), x > 0. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void lognormal_support(const double *p, double *lo, double *hi) {
  *lo = 0.0;
  *hi = INFINITY;
}

static double lognormal_lpdf(double x, const double *p) {
  if (!(x > 0.0) || isinf(x)) return isnan(x) ? NAN : -INFINITY;
  double lx = log(x), z = (lx - p[0]) / p[1];
  return -0.5 * z * z - log(p[1]) - PPL_LOG_SQRT_2PI - lx;
}

static double lognormal_rng(Rng *r, const double *p) { return exp(p[0] + p[1] * rng_normal(r)); }

static double lognormal_lcdf(double x, const double *p) {
  if (x <= 0.0) return -INFINITY;
  return m_std_normal_lcdf((log(x) - p[0]) / p[1]);
}

static double lognormal_lccdf(double x, const double *p) {
  if (x <= 0.0) return 0.0;
  return m_std_normal_lccdf((log(x) - p[0]) / p[1]);
}

static double lognormal_qf(double u, const double *p) { return exp(p[0] + p[1] * m_std_normal_qf(u)); }

/* Gradients: z = (log x - mu)/sigma; the -log x term adds -1/x to d/dx. */
static void lognormal_grad(double x, const double *p, double *dx, double *dp) {
  double z = (log(x) - p[0]) / p[1];
  *dx = (-z / p[1] - 1.0) / x;
  dp[0] = z / p[1];
  dp[1] = (z * z - 1.0) / p[1];
}
static void lognormal_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  if (!(x > 0.0)) {
    *dx = dp[0] = dp[1] = 0.0;
    return;
  }
  double z = (log(x) - p[0]) / p[1];
  double g = upper ? -m_std_normal_dlcdf(-z) : m_std_normal_dlcdf(z);
  *dx = g / (p[1] * x);
  dp[0] = -g / p[1];
  dp[1] = -g * z / p[1];
}
static void lognormal_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  lognormal_cdf_grad(x, p, dx, dp, false);
}
static void lognormal_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  lognormal_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_lognormal = {
    .name = "lognormal",
    .nparams = 2,
    .pnames = {"mu", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_ANY, PD_POS},
    .vtype = {TY_REAL, 0},
    .support = lognormal_support,
    .lpdf1 = lognormal_lpdf,
    .rng1 = lognormal_rng,
    .lcdf1 = lognormal_lcdf,
    .lccdf1 = lognormal_lccdf,
    .qf1 = lognormal_qf,
    .grad1 = lognormal_grad,
    .lcdf_grad1 = lognormal_lcdf_grad,
    .lccdf_grad1 = lognormal_lccdf_grad,
};
