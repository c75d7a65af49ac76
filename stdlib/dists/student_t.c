/* student_t.c — student_t(nu, mu, sigma): nu degrees of freedom, location mu,
 * scale sigma.  The normalising constant is written with lbeta, which stays
 * accurate for large nu where lgamma((nu+1)/2) - lgamma(nu/2) cancels. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static double student_t_lpdf(double x, const double *p) {
  double nu = p[0], z = fabs((x - p[1]) / p[2]);
  /* log(1 + z^2/nu), without overflowing z^2 far out */
  double l = z > 1e100 && nu < 1e100 ? 2.0 * log(z) - log(nu) : log1p(z * z / nu);
  return -m_lbeta(0.5 * nu, 0.5) - 0.5 * log(nu) - log(p[2]) - 0.5 * (nu + 1.0) * l;
}

static double student_t_rng(Rng *r, const double *p) {
  double nu = p[0];
  /* N / sqrt(chi2_nu / nu), chi2_nu = 2 G(nu/2) */
  return p[1] + p[2] * rng_normal(r) * sqrt(nu / (2.0 * rng_gamma(r, 0.5 * nu)));
}

/* log of the tail mass beyond |z|: P(T > |z|) = I_{nu/(nu+z^2)}(nu/2, 1/2) / 2,
   and log of the rest.  Both arguments of I are formed directly, never as 1 - x. */
static void student_t_tails(double z, double nu, double *ltail, double *lrest) {
  double az = fabs(z), li, lic;
  if (az > 1e100 && nu < 1e50) {
    /* x = nu/z^2 < 1e-100 (may underflow): I_x(a, 1/2) = x^a / (a B(a, 1/2))
       to within a factor 1 + O(x) */
    double a = 0.5 * nu, lx = log(nu) - 2.0 * log(az);
    li = a * lx - m_lbeta(a, 0.5) - log(a);
  } else {
    double d = nu + az * az;
    m_inc_beta_log(0.5 * nu, 0.5, nu / d, az * az / d, &li, &lic);
  }
  *ltail = li - PPL_LOG2;
  *lrest = log1p(-0.5 * exp(li));
}

static double student_t_lcdf(double x, const double *p) {
  double z = (x - p[1]) / p[2], tail, rest;
  if (isnan(z)) return NAN;
  student_t_tails(z, p[0], &tail, &rest);
  return z < 0.0 ? tail : rest;
}

static double student_t_lccdf(double x, const double *p) {
  double z = (x - p[1]) / p[2], tail, rest;
  if (isnan(z)) return NAN;
  student_t_tails(z, p[0], &tail, &rest);
  return z > 0.0 ? tail : rest;
}

/* Gradients: with z = (x - mu)/sigma and w = (nu + 1)/(nu + z^2),
   d/dx = -w z/sigma, d/dsigma = (w z^2 - 1)/sigma, and d/dnu collects the
   digamma terms of the normalising constant. */
static void student_t_grad(double x, const double *p, double *dx, double *dp) {
  double nu = p[0], s = p[2], z = (x - p[1]) / s, z2 = z * z;
  double w = (nu + 1.0) / (nu + z2);
  *dx = -w * z / s;
  dp[1] = -*dx;
  dp[2] = (w * z2 - 1.0) / s;
  dp[0] = 0.5 * (m_digamma(0.5 * (nu + 1.0)) - m_digamma(0.5 * nu)) - 0.5 / nu -
          0.5 * log1p(z2 / nu) + 0.5 * w * z2 / nu;
}

/* x, mu and sigma through z: d/dz log F = +-f/F; nu numerically (dist.h) */
static void student_t_cdf_grad(double x, const double *p, double *dx, double *dp, bool upper) {
  double lf = student_t_lpdf(x, p);
  double lc = upper ? student_t_lccdf(x, p) : student_t_lcdf(x, p);
  double g = (upper ? -1.0 : 1.0) * exp(lf - lc) * p[2]; /* d/dz */
  double z = (x - p[1]) / p[2];
  *dx = g / p[2];
  dp[1] = -g / p[2];
  dp[2] = -g * z / p[2];
  dp[0] = dist_cdf_dparam(upper ? student_t_lccdf : student_t_lcdf, x, p, 3, 0);
}
static void student_t_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  student_t_cdf_grad(x, p, dx, dp, false);
}
static void student_t_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  student_t_cdf_grad(x, p, dx, dp, true);
}

const DistFamily dist_student_t = {
    .name = "student_t",
    .nparams = 3,
    .pnames = {"nu", "mu", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_POS, PD_ANY, PD_POS},
    .vtype = {TY_REAL, 0},
    .lpdf1 = student_t_lpdf,
    .rng1 = student_t_rng,
    .lcdf1 = student_t_lcdf,
    .lccdf1 = student_t_lccdf,
    .grad1 = student_t_grad,
    .lcdf_grad1 = student_t_lcdf_grad,
    .lccdf_grad1 = student_t_lccdf_grad,
};
