/* normal.c — normal(mu, sigma), sigma the standard deviation (Stan's). */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static double normal_lpdf(double x, const double *p) {
  double z = (x - p[0]) / p[1];
  return -0.5 * z * z - log(p[1]) - PPL_LOG_SQRT_2PI;
}

static double normal_rng(Rng *r, const double *p) { return p[0] + p[1] * rng_normal(r); }

static double normal_lcdf(double x, const double *p) { return m_std_normal_lcdf((x - p[0]) / p[1]); }

static double normal_lccdf(double x, const double *p) { return m_std_normal_lccdf((x - p[0]) / p[1]); }

static double normal_qf(double u, const double *p) { return p[0] + p[1] * m_std_normal_qf(u); }

/* Gradients (reverse-mode AD): with z = (x - mu)/sigma, the log density's
   partials are -z/sigma, z/sigma and (z^2 - 1)/sigma. */
static void normal_grad(double x, const double *p, double *dx, double *dp) {
  double z = (x - p[0]) / p[1];
  *dx = -z / p[1];
  dp[0] = z / p[1];
  dp[1] = (z * z - 1.0) / p[1];
}

/* d/dz of log Phi(+-z), chained through z = (x - mu)/sigma */
static void normal_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  double z = (x - p[0]) / p[1];
  double g = upper ? -m_std_normal_dlcdf(-z) : m_std_normal_dlcdf(z);
  *dx = g / p[1];
  dp[0] = -g / p[1];
  dp[1] = -g * z / p[1];
}
static void normal_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  normal_cdf_grad(x, p, dx, dp, false);
}
static void normal_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  normal_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_normal = {
    .name = "normal",
    .nparams = 2,
    .pnames = {"mu", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_ANY, PD_POS},
    .vtype = {TY_REAL, 0},
    .lpdf1 = normal_lpdf,
    .rng1 = normal_rng,
    .lcdf1 = normal_lcdf,
    .lccdf1 = normal_lccdf,
    .qf1 = normal_qf,
    .grad1 = normal_grad,
    .lcdf_grad1 = normal_lcdf_grad,
    .lccdf_grad1 = normal_lccdf_grad,
};
