/* cauchy.c — cauchy(mu, sigma): location mu, scale sigma.  The CDF is written
 * as atan(1/|z|)/pi in the tails, so log CDFs keep their digits far out. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static double cauchy_lpdf(double x, const double *p) {
  double z = fabs((x - p[0]) / p[1]);
  /* log(1 + z^2) without overflowing z^2 */
  double l = z > 1e100 ? 2.0 * log(z) : log1p(z * z);
  return -PPL_LOG_PI - log(p[1]) - l;
}

/* log P(Z <= z) for the standard Cauchy; 1/2 + atan(z)/pi would lose the
   lower tail, atan(1/|z|)/pi keeps it */
static double cauchy_lcdf_z(double z) {
  if (isnan(z)) return NAN;
  if (z == 0.0) return -PPL_LOG2;
  if (z < 0.0) return log(atan(-1.0 / z)) - PPL_LOG_PI;
  return log1p(-atan(1.0 / z) / M_PI);
}

static double cauchy_lcdf(double x, const double *p) { return cauchy_lcdf_z((x - p[0]) / p[1]); }

static double cauchy_lccdf(double x, const double *p) { return cauchy_lcdf_z(-(x - p[0]) / p[1]); }

static double cauchy_qf(double u, const double *p) {
  /* tan(pi (u - 1/2)) written so that u near 0 or 1 loses nothing */
  double z = u < 0.5 ? -1.0 / tan(M_PI * u) : 1.0 / tan(M_PI * (1.0 - u));
  return p[0] + p[1] * z;
}

static double cauchy_rng(Rng *r, const double *p) { return cauchy_qf(rng_uniform(r), p); }

/* Gradients: with z = (x - mu)/sigma, d/dz log density = -2z/(1 + z^2). */
static void cauchy_grad(double x, const double *p, double *dx, double *dp) {
  double z = (x - p[0]) / p[1], g = -2.0 * z / (1.0 + z * z);
  *dx = g / p[1];
  dp[0] = -g / p[1];
  dp[1] = (-g * z - 1.0) / p[1];
}

/* d/dz log F(z) = f(z)/F(z), f(z) = 1/(pi (1 + z^2)); the survival side is
   the same at -z */
static void cauchy_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  double z = (x - p[0]) / p[1], zz = upper ? -z : z;
  double g = exp(-PPL_LOG_PI - log1p(zz * zz) - cauchy_lcdf_z(zz)) * (upper ? -1.0 : 1.0);
  *dx = g / p[1];
  dp[0] = -g / p[1];
  dp[1] = -g * z / p[1];
}
static void cauchy_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  cauchy_cdf_grad(x, p, dx, dp, false);
}
static void cauchy_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  cauchy_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_cauchy = {
    .name = "cauchy",
    .nparams = 2,
    .pnames = {"mu", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_ANY, PD_POS},
    .vtype = {TY_REAL, 0},
    .lpdf1 = cauchy_lpdf,
    .rng1 = cauchy_rng,
    .lcdf1 = cauchy_lcdf,
    .lccdf1 = cauchy_lccdf,
    .qf1 = cauchy_qf,
    .grad1 = cauchy_grad,
    .lcdf_grad1 = cauchy_lcdf_grad,
    .lccdf_grad1 = cauchy_lccdf_grad,
};
