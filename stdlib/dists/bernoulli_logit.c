/* bernoulli_logit.c — bernoulli_logit(alpha) = bernoulli(inv_logit(alpha)),
 * computed on the log scale so that large |alpha| keeps full precision. */
#include <math.h>

#include "../dist.h"
#include "../dist_kernel.h"
#include "../mathfn.h"

static void bl_support(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = 1;
}

/* The log mass and its derivative, written once (stdlib/dist_kernel.h):
   with t = -alpha for y = 1 and alpha for y = 0, lp = -log1p_exp(t) and
   d lp/d alpha = +-inv_logit(-t), with no cancellation for large |alpha|.
   With e = exp(-|t|) in [0, 1] and u = 1 + e, log1p(e) is log(u) less the
   first-order correction for u's rounding: d = (u - 1) - e (exact) over u,
   with 1/u taken as 2 - u (off by (u - 1)^2 / u, so the correction is off by
   at most d e^2, far below an ulp of the result, which is at least e/2);
   inv_logit(-t) is 1/u or e/u.  So one exp and one log for the density and
   one division for the derivative, where log1p and two divisions cost a
   third more in vector code, where compiled densities spend their time.
   y outside {0, 1} has mass 0. */
enum {
  B_ONE = DK_FIRST, B_ZERO, B_TWO, B_Y1, B_Y0, B_OK, B_NA, B_T, B_POS, B_NT, B_ET, B_E, B_U,
  B_LU, B_UM, B_DU, B_W, B_C, B_L1, B_TL, B_S, B_NEG, B_NINF, B_LP, /* density */
  B_NN, B_R, B_EQ, B_PR, B_NPR, B_D, B_DA, B_END,                   /* derivative */
};
#define BL_LP(I)                                                                                  \
  I(B_ONE, CONST, 0, 0, 0, 1.0)                                                                   \
  I(B_ZERO, CONST, 0, 0, 0, 0.0)                                                                  \
  I(B_TWO, CONST, 0, 0, 0, 2.0)                                                                   \
  I(B_Y1, EQ, DK_X, B_ONE, 0, 0)                                                                  \
  I(B_Y0, EQ, DK_X, B_ZERO, 0, 0)                                                                 \
  I(B_OK, OR, B_Y1, B_Y0, 0, 0)                                                                   \
  I(B_NA, NEG, DK_P(0), 0, 0, 0)                                                                  \
  I(B_T, SEL, B_Y1, B_NA, DK_P(0), 0)                                                             \
  I(B_POS, GT, B_T, B_ZERO, 0, 0)                                                                 \
  I(B_NT, NEG, B_T, 0, 0, 0)                                                                      \
  I(B_ET, SEL, B_POS, B_NT, B_T, 0)                                                               \
  I(B_E, EXP, B_ET, 0, 0, 0)                                                                      \
  I(B_U, ADD, B_ONE, B_E, 0, 0)                                                                   \
  I(B_LU, LOG, B_U, 0, 0, 0)                                                                      \
  I(B_UM, SUB, B_U, B_ONE, 0, 0)                                                                  \
  I(B_DU, SUB, B_UM, B_E, 0, 0)                                                                   \
  I(B_W, SUB, B_TWO, B_U, 0, 0)                                                                  \
  I(B_C, MUL, B_DU, B_W, 0, 0)                                                                    \
  I(B_L1, SUB, B_LU, B_C, 0, 0)                                                                   \
  I(B_TL, ADD, B_T, B_L1, 0, 0)                                                                   \
  I(B_S, SEL, B_POS, B_TL, B_L1, 0)                                                               \
  I(B_NEG, NEG, B_S, 0, 0, 0)                                                                     \
  I(B_NINF, CONST, 0, 0, 0, -INFINITY)                                                            \
  I(B_LP, SEL, B_OK, B_NEG, B_NINF, 0)
/* inv_logit(-t): 1/u where t >= 0 (e = exp(-t); t = 0 gives 1/2), else e/u */
#define BL_GRAD(I)                                                                                \
  I(B_NN, GE, B_T, B_ZERO, 0, 0)                                                                  \
  I(B_R, DIV, B_ONE, B_U, 0, 0)                                                                   \
  I(B_EQ, MUL, B_E, B_R, 0, 0)                                                                    \
  I(B_PR, SEL, B_NN, B_R, B_EQ, 0)                                                                \
  I(B_NPR, NEG, B_PR, 0, 0, 0)                                                                    \
  I(B_D, SEL, B_Y1, B_PR, B_NPR, 0)                                                               \
  I(B_DA, SEL, B_OK, B_D, B_ZERO, 0)

static const DkIns bl_code[] = {BL_LP(DK_TABLE) BL_GRAD(DK_TABLE)};
static const DistKernel bl_kernel = {
    .ins = bl_code, .n = B_END - DK_FIRST, .nlp = B_LP - DK_FIRST + 1, .np = 1,
    .lp = B_LP, .dx = DK_NONE, .dp = {B_DA, DK_NONE, DK_NONE, DK_NONE},
    /* lp = -(B_LU + the rest) where y is 0 or 1, -inf (whatever B_LU) where
       not; u = 1 + exp(-|t|) is in [1, 2] (dist_kernel.h: the JIT's sums
       take one log per block of elements) */
    .lsum = B_LU, .lsum_sign = -1, .lsum_hi = 2,
};

static double bl_lpmf(double y, const double *p) {
  double r[B_END];
  DK_ARGS(r, y, p, 1);
  BL_LP(DK_C)
  return r[B_LP];
}

static double bl_lpmf_grad(double y, const double *p, double *dx, double *dp) {
  double r[B_END];
  DK_ARGS(r, y, p, 1);
  BL_LP(DK_C)
  *dx = 0;
  if (!isfinite(r[B_LP])) {
    dp[0] = 0;
    return r[B_LP];
  }
  BL_GRAD(DK_C)
  dp[0] = r[B_DA];
  return r[B_LP];
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

/* d/dalpha of the log CDFs: -inv_logit(alpha) and inv_logit(-alpha) */
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
  .support_reads = DIST_SUPPORT_READS(0),
  .lpdf1 = bl_lpmf,
  .rng1 = bl_rng,
  .lcdf1 = bl_lcdf,
  .lccdf1 = bl_lccdf,
  .lpdf_grad1 = bl_lpmf_grad,
  .kernel = &bl_kernel,
  .lcdf_grad1 = bl_lcdf_grad,
  .lccdf_grad1 = bl_lccdf_grad,
};
