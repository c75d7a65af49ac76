/* logistic.c — logistic(mu, s): location mu, scale s. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static double logistic_lpdf(double x, const double *p) {
  double z = (x - p[0]) / p[1];
  /* -z - 2 log(1 + e^-z) is symmetric; use |z| so nothing overflows */
  double az = fabs(z);
  return -az - log(p[1]) - 2.0 * m_log1p_exp(-az);
}

static double logistic_lcdf(double x, const double *p) { return m_log_inv_logit((x - p[0]) / p[1]); }

static double logistic_lccdf(double x, const double *p) { return m_log1m_inv_logit((x - p[0]) / p[1]); }

static double logistic_qf(double u, const double *p) { return p[0] + p[1] * m_logit(u); }

static double logistic_rng(Rng *r, const double *p) { return logistic_qf(rng_uniform(r), p); }

/* Gradients: d/dz of the log density is 1 - 2 inv_logit(z), of log
   inv_logit(z) it is inv_logit(-z), of log(1 - inv_logit(z)) -inv_logit(z). */
static void logistic_chain(double g, double z, double s, double *dx, double *dp) {
  *dx = g / s;
  dp[0] = -g / s;
  dp[1] = -g * z / s;
}
static void logistic_grad(double x, const double *p, double *dx, double *dp) {
  double z = (x - p[0]) / p[1];
  logistic_chain(m_inv_logit(-z) - m_inv_logit(z), z, p[1], dx, dp);
  dp[1] -= 1.0 / p[1];
}
static void logistic_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  double z = (x - p[0]) / p[1];
  logistic_chain(m_inv_logit(-z), z, p[1], dx, dp);
}
static void logistic_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  double z = (x - p[0]) / p[1];
  logistic_chain(-m_inv_logit(z), z, p[1], dx, dp);
}

const DistFamily dist_logistic = {
    .name = "logistic",
    .nparams = 2,
    .pnames = {"mu", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_ANY, PD_POS},
    .vtype = {TY_REAL, 0},
    .lpdf1 = logistic_lpdf,
    .rng1 = logistic_rng,
    .lcdf1 = logistic_lcdf,
    .lccdf1 = logistic_lccdf,
    .qf1 = logistic_qf,
    .grad1 = logistic_grad,
    .lcdf_grad1 = logistic_lcdf_grad,
    .lccdf_grad1 = logistic_lccdf_grad,
};
