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
};
