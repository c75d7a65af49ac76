/* std_normal.c — std_normal(): the normal with mean 0 and sd 1, no parameters. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static double std_normal_lpdf(double x, const double *p) { return -0.5 * x * x - PPL_LOG_SQRT_2PI; }

static double std_normal_rng(Rng *r, const double *p) { return rng_normal(r); }

static double std_normal_lcdf(double x, const double *p) { return m_std_normal_lcdf(x); }

static double std_normal_lccdf(double x, const double *p) { return m_std_normal_lccdf(x); }

static double std_normal_qf(double u, const double *p) { return m_std_normal_qf(u); }

static void std_normal_grad(double x, const double *p, double *dx, double *dp) {
  (void)p, (void)dp;
  *dx = -x;
}
static void std_normal_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  (void)p, (void)dp;
  *dx = m_std_normal_dlcdf(x);
}
static void std_normal_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  (void)p, (void)dp;
  *dx = -m_std_normal_dlcdf(-x);
}

const DistFamily dist_std_normal = {
    .name = "std_normal",
    .nparams = 0,
    .vtype = {TY_REAL, 0},
    .lpdf1 = std_normal_lpdf,
    .rng1 = std_normal_rng,
    .lcdf1 = std_normal_lcdf,
    .lccdf1 = std_normal_lccdf,
    .qf1 = std_normal_qf,
    .grad1 = std_normal_grad,
    .lcdf_grad1 = std_normal_lcdf_grad,
    .lccdf_grad1 = std_normal_lccdf_grad,
};
