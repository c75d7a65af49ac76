/* uniform.c — uniform(alpha, beta) on [alpha, beta]; the support depends on
 * the parameters, and dist.c rejects alpha >= beta. */
#include <math.h>

#include "../dist.h"
#include "../mathfn.h"

static void uniform_support(const double *p, double *lo, double *hi) {
  *lo = p[0];
  *hi = p[1];
}

static double uniform_lpdf(double x, const double *p) {
  if (isnan(x)) return NAN;
  if (x < p[0] || x > p[1]) return -INFINITY;
  return -log(p[1] - p[0]);
}

static double uniform_lcdf(double x, const double *p) {
  if (isnan(x)) return NAN;
  if (x <= p[0]) return -INFINITY;
  if (x >= p[1]) return 0.0;
  double w = p[1] - p[0];
  /* near the top, log(1 - (beta - x)/w) keeps the digits that log(t) would lose */
  return x - p[0] > 0.5 * w ? log1p(-(p[1] - x) / w) : log((x - p[0]) / w);
}

static double uniform_lccdf(double x, const double *p) {
  if (isnan(x)) return NAN;
  if (x <= p[0]) return 0.0;
  if (x >= p[1]) return -INFINITY;
  double w = p[1] - p[0];
  return p[1] - x > 0.5 * w ? log1p(-(x - p[0]) / w) : log((p[1] - x) / w);
}

static double uniform_qf(double u, const double *p) {
  double x = p[0] + u * (p[1] - p[0]);
  return x > p[1] ? p[1] : x;
}

static double uniform_rng(Rng *r, const double *p) { return uniform_qf(rng_uniform(r), p); }

static void uniform_grad(double x, const double *p, double *dx, double *dp) {
  (void)x;
  double w = p[1] - p[0];
  *dx = 0.0;
  dp[0] = 1.0 / w;
  dp[1] = -1.0 / w;
}
static void uniform_lcdf_grad(double x, const double *p, double *dx, double *dp) {
  double w = p[1] - p[0];
  *dx = dp[0] = dp[1] = 0.0;
  if (!(x > p[0] && x < p[1])) return;
  *dx = 1.0 / (x - p[0]);
  dp[0] = 1.0 / w - 1.0 / (x - p[0]);
  dp[1] = -1.0 / w;
}
static void uniform_lccdf_grad(double x, const double *p, double *dx, double *dp) {
  double w = p[1] - p[0];
  *dx = dp[0] = dp[1] = 0.0;
  if (!(x > p[0] && x < p[1])) return;
  *dx = -1.0 / (p[1] - x);
  dp[0] = 1.0 / w;
  dp[1] = 1.0 / (p[1] - x) - 1.0 / w;
}

const DistFamily dist_uniform = {
    .name = "uniform",
    .nparams = 2,
    .pnames = {"alpha", "beta"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_ANY, PD_ANY},
    .vtype = {TY_REAL, 0},
    .support = uniform_support,
    .support_reads = DIST_SUPPORT_READS(0x3),
    .lpdf1 = uniform_lpdf,
    .rng1 = uniform_rng,
    .lcdf1 = uniform_lcdf,
    .lccdf1 = uniform_lccdf,
    .qf1 = uniform_qf,
    .grad1 = uniform_grad,
    .lcdf_grad1 = uniform_lcdf_grad,
    .lccdf_grad1 = uniform_lccdf_grad,
};
