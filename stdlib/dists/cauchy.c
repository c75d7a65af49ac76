/* cauchy.c — cauchy(mu, sigma): location mu, scale sigma.  The CDF is written
 * as atan(1/|z|)/pi in the tails, so log CDFs keep their digits far out. */
#include <math.h>

#include "../dist.h"
#include "../dist_kernel.h"
#include "../mathfn.h"

/* The log density and its partials, written once (stdlib/dist_kernel.h):
   with z = (x - mu)/sigma, lp = -log(pi) - log(sigma) - log(1 + z^2), the
   last written 2 log|z| past |z| = 1e100 so that z^2 does not overflow; and
   with g = -2z/(1 + z^2), the partials are g/sigma, -g/sigma and
   (-g z - 1)/sigma. */
enum {
  C_D = DK_FIRST, C_Z0, C_Z, C_BIG, C_HUGE, C_LZ, C_TWO, C_L2, C_ZZ, C_L1, C_L, C_NLP, C_LS, C_A,
  C_LP,                                                                  /* density */
  C_ONE, C_DEN, C_M2, C_G0, C_G, C_DX, C_NG, C_DMU, C_NGZ, C_NGZ1, C_DSIG, C_END, /* partials */
};
#define CAUCHY_LP(I)                                                                              \
  I(C_D, SUB, DK_X, DK_P(0), 0, 0)                                                                \
  I(C_Z0, DIV, C_D, DK_P(1), 0, 0)                                                                \
  I(C_Z, ABS, C_Z0, 0, 0, 0)                                                                      \
  I(C_BIG, CONST, 0, 0, 0, 1e100)                                                                 \
  I(C_HUGE, GT, C_Z, C_BIG, 0, 0)                                                                 \
  I(C_LZ, LOG, C_Z, 0, 0, 0)                                                                      \
  I(C_TWO, CONST, 0, 0, 0, 2.0)                                                                   \
  I(C_L2, MUL, C_TWO, C_LZ, 0, 0)                                                                 \
  I(C_ZZ, MUL, C_Z, C_Z, 0, 0)                                                                    \
  I(C_L1, LOG1P, C_ZZ, 0, 0, 0)                                                                   \
  I(C_L, SEL, C_HUGE, C_L2, C_L1, 0)                                                              \
  I(C_NLP, CONST, 0, 0, 0, -PPL_LOG_PI)                                                           \
  I(C_LS, LOG, DK_P(1), 0, 0, 0)                                                                  \
  I(C_A, SUB, C_NLP, C_LS, 0, 0)                                                                  \
  I(C_LP, SUB, C_A, C_L, 0, 0)
#define CAUCHY_GRAD(I)                                                                            \
  I(C_ONE, CONST, 0, 0, 0, 1.0)                                                                   \
  I(C_DEN, ADD, C_ONE, C_ZZ, 0, 0)                                                                \
  I(C_M2, CONST, 0, 0, 0, -2.0)                                                                   \
  I(C_G0, MUL, C_M2, C_Z0, 0, 0)                                                                  \
  I(C_G, DIV, C_G0, C_DEN, 0, 0)                                                                  \
  I(C_DX, DIV, C_G, DK_P(1), 0, 0)                                                                \
  I(C_NG, NEG, C_G, 0, 0, 0)                                                                      \
  I(C_DMU, DIV, C_NG, DK_P(1), 0, 0)                                                              \
  I(C_NGZ, MUL, C_NG, C_Z0, 0, 0)                                                                 \
  I(C_NGZ1, SUB, C_NGZ, C_ONE, 0, 0)                                                              \
  I(C_DSIG, DIV, C_NGZ1, DK_P(1), 0, 0)

static const DkIns cauchy_code[] = {CAUCHY_LP(DK_TABLE) CAUCHY_GRAD(DK_TABLE)};
static const DistKernel cauchy_kernel = {
    .ins = cauchy_code, .n = C_END - DK_FIRST, .nlp = C_LP - DK_FIRST + 1, .np = 2,
    .lp = C_LP, .dx = C_DX, .dp = {C_DMU, C_DSIG, DK_NONE, DK_NONE},
};

static double cauchy_lpdf(double x, const double *p) {
  double r[C_END];
  DK_ARGS(r, x, p, 2);
  CAUCHY_LP(DK_C)
  return r[C_LP];
}

static double cauchy_lpdf_grad(double x, const double *p, double *dx, double *dp) {
  double r[C_END];
  DK_ARGS(r, x, p, 2);
  CAUCHY_LP(DK_C)
  if (!isfinite(r[C_LP])) {
    *dx = dp[0] = dp[1] = 0;
    return r[C_LP];
  }
  CAUCHY_GRAD(DK_C)
  *dx = r[C_DX];
  dp[0] = r[C_DMU];
  dp[1] = r[C_DSIG];
  return r[C_LP];
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
    .lpdf_grad1 = cauchy_lpdf_grad,
    .kernel = &cauchy_kernel,
    .lcdf_grad1 = cauchy_lcdf_grad,
    .lccdf_grad1 = cauchy_lccdf_grad,
};
