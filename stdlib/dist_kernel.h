/* dist_kernel.h — a scalar family's log density and its partials written
 * once, as data, for both backends.
 *
 * A kernel is straight-line code over doubles: register 0 holds the value x,
 * registers 1..4 the parameters, and instruction k writes
 * register DK_FIRST + k.  The first `nlp` instructions compute the log
 * density (register `lp`); the rest compute the partials (registers `dx`,
 * `dp[i]`).  The same list of instructions becomes the family's C kernels
 * (lpdf1 / lpdf_grad1, which the interpreter and the JIT's runtime call) and
 * the JIT's inline code, scalar and over 2/4/8 lanes with libmvec's exp, log
 * and log1p (ir/jit_native.c).  So a family's formula lives in its family
 * file only, and the backends cannot drift apart.
 *
 * Each instruction is one IEEE operation, so the C kernels and the JIT's
 * scalar code give the same bits; the vector code differs only by libmvec's
 * error (tests/inference/test_jit_kernels.c states the bound).  The JIT's
 * selects compute both arms (no branches): an arm may be inf or NaN where it
 * is not chosen.
 */
#ifndef PPL_DIST_KERNEL_H
#define PPL_DIST_KERNEL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "mathfn.h"

#define DK_X 0     /* the value */
#define DK_P(i) (1 + (i)) /* parameter i */
#define DK_FIRST 5 /* 1 + 4 (a kernel has at most four parameters): the first instruction's register */
#define DK_MAXREG 64
#define DK_NONE 0xff /* an output that is identically 0 */

typedef enum {
  DK_CONST, /* k */
  DK_ADD, DK_SUB, DK_MUL, DK_DIV, DK_NEG, DK_ABS,
  DK_LOG, DK_EXP, DK_LOG1P,
  /* comparisons give a truth value (1 or 0 in the evaluator, i1 in LLVM),
     used only by DK_OR and as DK_SEL's condition */
  DK_EQ, DK_GT, DK_GE,
  DK_OR,
  DK_SEL, /* a ? b : c */
  /* libm's pow, sqrt, expm1, trunc, fmod: used by the scalar rules
     (scalar_rule.h); the JIT emits them per lane in vector code */
  DK_POW, DK_SQRT, DK_EXPM1, DK_TRUNC, DK_FMOD,
  /* a C function of one or two doubles (DK_FN1 / DK_FN2 below, k its index):
     libm's and mathfn.h's special functions, which the JIT calls as they are
     (lane by lane in vector code), so both give the same bits */
  DK_CALL1, DK_CALL2,
  DK_FMA, /* fma(a, b, c), rounded once */
  DK_NOPS
} DkOp;

typedef struct DkIns {
  uint8_t op, a, b, c;
  double k;
} DkIns;

/* How a family file writes its kernel: once, as a list of instructions
 *
 *   #define NORMAL_LP(I) I(N_D, SUB, DK_X, DK_P(0), 0, 0) I(N_Z, DIV, N_D, DK_P(1), 0, 0) ...
 *
 * (I(dst, OP, a, b, c, k): dst = OP(a, b, c), k for CONST), expanded twice:
 * with DK_TABLE into the description (DkIns array) that the JIT emits, and
 * with DK_C into straight-line C over a local array `double r[...]` holding
 * x and the parameters (DK_ARGS), which is the family's lpdf1 / lpdf_grad1
 * and runs at the speed of hand-written C.  One list, so the two cannot
 * differ; each DK_C statement is the IEEE operation of its instruction
 * (built without FMA contraction, as the JIT's code is), and
 * test_jit_kernels holds all of them to the same bits. */
#define DK_TABLE(dst, op, a, b, c, k) [(dst) - DK_FIRST] = {DK_##op, (a), (b), (c), (k)},
#define DK_C(dst, op, a, b, c, k) r[dst] = DKC_##op(r[a], r[b], r[c], (k));
#define DK_ARGS(r, x, p, np)                                                                      \
  do {                                                                                            \
    (r)[DK_X] = (x);                                                                              \
    for (int i_ = 0; i_ < (np); i_++) (r)[DK_P(i_)] = (p)[i_];                                    \
  } while (0)
#define DKC_CONST(a, b, c, k) (k)
#define DKC_ADD(a, b, c, k) ((a) + (b))
#define DKC_SUB(a, b, c, k) ((a) - (b))
#define DKC_MUL(a, b, c, k) ((a) * (b))
#define DKC_DIV(a, b, c, k) ((a) / (b))
#define DKC_NEG(a, b, c, k) (-(a))
#define DKC_ABS(a, b, c, k) fabs(a)
#define DKC_LOG(a, b, c, k) log(a)
#define DKC_EXP(a, b, c, k) exp(a)
#define DKC_LOG1P(a, b, c, k) log1p(a)
#define DKC_EQ(a, b, c, k) ((a) == (b) ? 1.0 : 0.0)
#define DKC_GT(a, b, c, k) ((a) > (b) ? 1.0 : 0.0)
#define DKC_GE(a, b, c, k) ((a) >= (b) ? 1.0 : 0.0)
#define DKC_OR(a, b, c, k) ((a) != 0 || (b) != 0 ? 1.0 : 0.0)
#define DKC_SEL(a, b, c, k) ((a) != 0 ? (b) : (c))
#define DKC_POW(a, b, c, k) pow(a, b)
#define DKC_SQRT(a, b, c, k) sqrt(a)
#define DKC_EXPM1(a, b, c, k) expm1(a)
#define DKC_TRUNC(a, b, c, k) trunc(a)
#define DKC_FMOD(a, b, c, k) fmod(a, b)
#define DKC_CALL1(a, b, c, k) dk_call1((int)(k), a)
#define DKC_CALL2(a, b, c, k) dk_call2((int)(k), a, b)
#define DKC_FMA(a, b, c, k) fma(a, b, c)

/* The functions DK_CALL1 and DK_CALL2 call, by index (the instruction's k):
   X(ENUM, c_function).  An instruction names one as I(dst, CALL1, x, 0, 0,
   DKF_LGAMMA). */
#define DK_FN1(X)                                                                                 \
  X(SIN, sin) X(COS, cos) X(TAN, tan) X(ASIN, asin) X(ACOS, acos) X(ATAN, atan)                   \
  X(SINH, sinh) X(COSH, cosh) X(TANH, tanh) X(ASINH, asinh) X(ACOSH, acosh) X(ATANH, atanh)       \
  X(ERF, erf) X(ERFC, erfc) X(LGAMMA, m_lgamma) X(DIGAMMA, m_digamma) X(TRIGAMMA, m_trigamma)
#define DK_FN2(X) X(LBETA, m_lbeta) X(LCHOOSE, m_lchoose) X(FMIN, fmin) X(FMAX, fmax)
#define DK_FN_ENUM(e, f) DKF_##e,
enum { DK_FN1(DK_FN_ENUM) DKF_N1 };
enum { DK_FN2(DK_FN_ENUM) DKF_N2 };
#undef DK_FN_ENUM
#define DK_FN_CASE1(e, f) case DKF_##e: return f(a);
#define DK_FN_CASE2(e, f) case DKF_##e: return f(a, b);
/* with a constant k (every expansion of a list), the switch folds to one call */
static inline double dk_call1(int k, double a) {
  switch (k) { DK_FN1(DK_FN_CASE1) default: return NAN; }
}
static inline double dk_call2(int k, double a, double b) {
  switch (k) { DK_FN2(DK_FN_CASE2) default: return NAN; }
}
#undef DK_FN_CASE1
#undef DK_FN_CASE2
/* their addresses and names, by index (the JIT calls them; ppl ir --llvm) */
extern double (*const dk_fn1[DKF_N1])(double);
extern double (*const dk_fn2[DKF_N2])(double, double);
extern const char *const dk_fn1_name[DKF_N1], *const dk_fn2_name[DKF_N2];

typedef struct DistKernel {
  const DkIns *ins;
  int n;    /* instructions */
  int nlp;  /* of which the first nlp compute the log density */
  int np;   /* parameters read (the family's nparams) */
  uint8_t lp, dx;
  uint8_t dp[4]; /* one per parameter (at most four); DK_NONE past the family's parameters */
  /* A log the JIT may take of a product instead (0: none): the register of
     a DK_LOG instruction whose value enters the log density as lsum_sign
     times itself and nowhere else (not in the partials), so that lp is what
     the kernel gives with that register 0 plus lsum_sign log(a), and whose
     argument a lies in [1, lsum_hi] wherever the parameters are in their
     domain.  A vectorised sum of the density over many elements then
     multiplies the arguments together, lane by lane, and takes one log per
     block of them (ir/jit_native.c, dens_loop): bernoulli_logit's
     log(1 + exp(-|t|)), a log per element, becomes one per 128 elements
     (products of up to 128 numbers in [1, 2] stay far from overflow; the
     product's rounding, 128 ulps at most, is 3e-14 of the log at most).  The
     C kernels and the per-element lp keep the log as written. */
  uint8_t lsum;
  int8_t lsum_sign;
  double lsum_hi;
} DistKernel;

/* The evaluator of descriptions (the reference the tests hold the DK_C
 * functions and the JIT's code to): the log density at x (the first nlp
 * instructions), and with dk_lpdf_grad, where it is finite, its partials
 * (*dx, dp[0..k->np)); where it is not, the partials are 0 (as the tape
 * records none: the DK_C functions must do the same). */
double dk_lpdf(const DistKernel *k, double x, const double *p);
double dk_lpdf_grad(const DistKernel *k, double x, const double *p, double *dx, double *dp);
/* dk_lpdf_grad with other implementations of the three functions (NULL =
   libm's): what the JIT's vector code computes lane by lane with libmvec's,
   so tests can hold that code to the description bit for bit. */
typedef struct DkMath {
  double (*log)(double);
  double (*exp)(double);
  double (*log1p)(double);
} DkMath;
double dk_lpdf_grad_math(const DistKernel *k, const DkMath *m, double x, const double *p,
                         double *dx, double *dp);
/* Run instructions [from, to) of a list on registers r (the evaluator of
   descriptions; scalar_rule.c runs the scalar rules with it). */
void dk_run(const DkIns *ins, const DkMath *m, int from, int to, double *r);
/* Does the density take the log of parameter i (normal's log(sigma))?  The
   JIT then computes the logs of a data container given for it once per data
   set, not per evaluation. */
bool dk_logs_param(const DistKernel *k, int i);
/* Is the kernel well formed: registers read before written, outputs in
   range?  (For tests; a family's kernel is fixed data.) */
bool dk_valid(const DistKernel *k);
/* Registers an instruction reads (0..3), -1 for an unknown op. */
int dk_nargs(int op);
/* A call names a function there is (always true for other instructions). */
bool dk_fn_ok(const DkIns *in);

#endif
