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

/* The log mass and its derivative as one description (stdlib/dist_kernel.h):
   with t = -alpha for y = 1 and alpha for y = 0, lp = -log1p_exp(t) and
   d lp/d alpha = +-inv_logit(-t), with one exp and one log1p and no
   cancellation for large |alpha| (the operations of m_log1p_exp and
   m_inv_logit, in their order).  y outside {0, 1} has mass 0. */
enum {
  B_ONE = DK_FIRST, B_ZERO, B_Y1, B_Y0, B_OK, B_NA, B_T, B_POS, B_NT, B_ET, B_E, B_L1, B_TL,
  B_S, B_NEG, B_NINF, B_LP,                                   /* density */
  B_NN, B_EP, B_DEN, B_INV, B_E1, B_EQ, B_PR, B_NPR, B_D, B_DA, /* derivative */
};
#define AT(r) [(r) - DK_FIRST]
static const DkIns bl_code[] = {
    AT(B_ONE) = DK_K(1.0),
    AT(B_ZERO) = DK_K(0.0),
    AT(B_Y1) = DK_2(EQ, DK_X, B_ONE),
    AT(B_Y0) = DK_2(EQ, DK_X, B_ZERO),
    AT(B_OK) = DK_2(OR, B_Y1, B_Y0),
    AT(B_NA) = DK_1(NEG, DK_P(0)),
    AT(B_T) = DK_3(SEL, B_Y1, B_NA, DK_P(0)),
    AT(B_POS) = DK_2(GT, B_T, B_ZERO),
    AT(B_NT) = DK_1(NEG, B_T),
    AT(B_ET) = DK_3(SEL, B_POS, B_NT, B_T),
    AT(B_E) = DK_1(EXP, B_ET),
    AT(B_L1) = DK_1(LOG1P, B_E),
    AT(B_TL) = DK_2(ADD, B_T, B_L1),
    AT(B_S) = DK_3(SEL, B_POS, B_TL, B_L1),
    AT(B_NEG) = DK_1(NEG, B_S),
    AT(B_NINF) = DK_K(-INFINITY),
    AT(B_LP) = DK_3(SEL, B_OK, B_NEG, B_NINF),
    AT(B_NN) = DK_2(GE, B_T, B_ZERO),
    AT(B_EP) = DK_3(SEL, B_POS, B_E, B_ONE),
    AT(B_DEN) = DK_2(ADD, B_ONE, B_EP),
    AT(B_INV) = DK_2(DIV, B_ONE, B_DEN),
    AT(B_E1) = DK_2(ADD, B_ONE, B_E),
    AT(B_EQ) = DK_2(DIV, B_E, B_E1),
    AT(B_PR) = DK_3(SEL, B_NN, B_INV, B_EQ),
    AT(B_NPR) = DK_1(NEG, B_PR),
    AT(B_D) = DK_3(SEL, B_Y1, B_PR, B_NPR),
    AT(B_DA) = DK_3(SEL, B_OK, B_D, B_ZERO),
};
static const DistKernel bl_kernel = {
    .ins = bl_code, .n = B_DA - DK_FIRST + 1, .nlp = B_LP - DK_FIRST + 1, .np = 1,
    .lp = B_LP, .dx = DK_NONE, .dp = {B_DA, DK_NONE, DK_NONE, DK_NONE},
};

static double bl_lpmf(double y, const double *p) { return dk_lpdf(&bl_kernel, y, p); }

static double bl_lpmf_grad(double y, const double *p, double *dx, double *dp) {
  return dk_lpdf_grad(&bl_kernel, y, p, dx, dp);
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
  .lpdf1 = bl_lpmf,
  .rng1 = bl_rng,
  .lcdf1 = bl_lcdf,
  .lccdf1 = bl_lccdf,
  .lpdf_grad1 = bl_lpmf_grad,
  .kernel = &bl_kernel,
  .lcdf_grad1 = bl_lcdf_grad,
  .lccdf_grad1 = bl_lccdf_grad,
};
