/* dist_kernel.h — a scalar family's log density and its partials written
 * once, as data, for both backends.
 *
 * A kernel is straight-line code over doubles: register 0 holds the value x,
 * registers 1..DIST_MAX_PARAMS the parameters, and instruction k writes
 * register DK_FIRST + k.  The first `nlp` instructions compute the log
 * density (register `lp`); the rest compute the partials (registers `dx`,
 * `dp[i]`).  The C evaluator below is the family's lpdf1 / lpdf_grad1 (the
 * interpreter and the JIT's runtime call it); the JIT emits the same
 * instructions as LLVM IR, inline, and over 2/4/8 lanes with libmvec's exp,
 * log and log1p (ir/jit_native.c).  So a family's formula lives in its family
 * file only, and the backends cannot drift apart.
 *
 * Each instruction is one IEEE operation, so the evaluator and the JIT's
 * scalar code give the same bits; the vector code differs only by libmvec's
 * error (tests/inference/test_jit_kernels.c states the bound).  Selects
 * compute both arms (no branches): an arm may be inf or NaN where it is not
 * chosen.
 */
#ifndef PPL_DIST_KERNEL_H
#define PPL_DIST_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#define DK_X 0     /* the value */
#define DK_P(i) (1 + (i)) /* parameter i */
#define DK_FIRST 5 /* 1 + DIST_MAX_PARAMS: the first instruction's register */
#define DK_MAXREG 48
#define DK_NONE 0xff /* an output that is identically 0 */

typedef enum {
  DK_CONST, /* k */
  DK_ADD, DK_SUB, DK_MUL, DK_DIV, DK_NEG,
  DK_LOG, DK_EXP, DK_LOG1P,
  /* comparisons give a truth value (1 or 0 in the evaluator, i1 in LLVM),
     used only by DK_OR and as DK_SEL's condition */
  DK_EQ, DK_GT, DK_GE,
  DK_OR,
  DK_SEL, /* a ? b : c */
} DkOp;

typedef struct DkIns {
  uint8_t op, a, b, c;
  double k;
} DkIns;

/* Instruction builders for family files. */
#define DK_K(v) {DK_CONST, 0, 0, 0, (v)}
#define DK_1(op, a) {DK_##op, (a), 0, 0, 0}
#define DK_2(op, a, b) {DK_##op, (a), (b), 0, 0}
#define DK_3(op, a, b, c) {DK_##op, (a), (b), (c), 0}

typedef struct DistKernel {
  const DkIns *ins;
  int n;    /* instructions */
  int nlp;  /* of which the first nlp compute the log density */
  int np;   /* parameters read (the family's nparams) */
  uint8_t lp, dx;
  uint8_t dp[4]; /* DIST_MAX_PARAMS; DK_NONE past the family's parameters */
} DistKernel;

/* The log density at x (the first nlp instructions). */
double dk_lpdf(const DistKernel *k, double x, const double *p);
/* The log density and, where it is finite, its partials (*dx, dp[0..k->np));
   where it is not, the partials are 0 (as the tape records none). */
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
/* Does the density take the log of parameter i (normal's log(sigma))?  The
   JIT then computes the logs of a data container given for it once per data
   set, not per evaluation. */
bool dk_logs_param(const DistKernel *k, int i);
/* Is the kernel well formed: registers read before written, outputs in
   range?  (For tests; a family's kernel is fixed data.) */
bool dk_valid(const DistKernel *k);

#endif
