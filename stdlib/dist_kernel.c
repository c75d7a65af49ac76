/* dist_kernel.c — the C evaluator of kernel descriptions (dist_kernel.h):
 * what the interpreter and the JIT's runtime run for the families whose
 * density is written as a description; the JIT emits the same instructions
 * as LLVM IR.  One switch per instruction, in order: each case is a single
 * IEEE operation or libm call, so the bits are those of the description. */
#include "dist_kernel.h"

#include <math.h>
#include <stddef.h>

void dk_run(const DkIns *ins, const DkMath *m, int from, int to, double *r) {
  for (int i = from; i < to; i++) {
    const DkIns *in = &ins[i];
    double a = r[in->a], b = r[in->b], v;
    switch (in->op) {
    case DK_CONST: v = in->k; break;
    case DK_ADD: v = a + b; break;
    case DK_SUB: v = a - b; break;
    case DK_MUL: v = a * b; break;
    case DK_DIV: v = a / b; break;
    case DK_NEG: v = -a; break;
    case DK_ABS: v = fabs(a); break;
    case DK_LOG: v = m ? m->log(a) : log(a); break;
    case DK_EXP: v = m ? m->exp(a) : exp(a); break;
    case DK_LOG1P: v = m ? m->log1p(a) : log1p(a); break;
    case DK_EQ: v = a == b; break;
    case DK_GT: v = a > b; break;
    case DK_GE: v = a >= b; break;
    case DK_OR: v = a != 0 || b != 0; break;
    case DK_SEL: v = a != 0 ? b : r[in->c]; break;
    case DK_POW: v = pow(a, b); break;
    case DK_SQRT: v = sqrt(a); break;
    case DK_EXPM1: v = expm1(a); break;
    case DK_TRUNC: v = trunc(a); break;
    case DK_FMOD: v = fmod(a, b); break;
    case DK_CALL1: v = dk_call1((int)in->k, a); break;
    case DK_CALL2: v = dk_call2((int)in->k, a, b); break;
    case DK_FMA: v = fma(a, b, r[in->c]); break;
    default: v = NAN; break;
    }
    r[DK_FIRST + i] = v;
  }
}

#define DK_FN_ADDR(e, f) f,
#define DK_FN_NAME(e, f) #f,
double (*const dk_fn1[DKF_N1])(double) = {DK_FN1(DK_FN_ADDR)};
double (*const dk_fn2[DKF_N2])(double, double) = {DK_FN2(DK_FN_ADDR)};
const char *const dk_fn1_name[DKF_N1] = {DK_FN1(DK_FN_NAME)};
const char *const dk_fn2_name[DKF_N2] = {DK_FN2(DK_FN_NAME)};
#undef DK_FN_ADDR
#undef DK_FN_NAME

static void dk_load(const DistKernel *k, double *r, double x, const double *p) {
  r[DK_X] = x;
  for (int i = 0; i < k->np; i++) r[DK_P(i)] = p[i];
}

double dk_lpdf(const DistKernel *k, double x, const double *p) {
  double r[DK_MAXREG];
  dk_load(k, r, x, p);
  dk_run(k->ins, NULL, 0, k->nlp, r);
  return r[k->lp];
}

double dk_lpdf_grad(const DistKernel *k, double x, const double *p, double *dx, double *dp) {
  return dk_lpdf_grad_math(k, NULL, x, p, dx, dp);
}

double dk_lpdf_grad_math(const DistKernel *k, const DkMath *m, double x, const double *p,
                         double *dx, double *dp) {
  double r[DK_MAXREG];
  int np = k->np;
  dk_load(k, r, x, p);
  dk_run(k->ins, m, 0, k->nlp, r);
  double lp = r[k->lp];
  if (!isfinite(lp)) {
    *dx = 0;
    for (int i = 0; i < np; i++) dp[i] = 0;
    return lp;
  }
  dk_run(k->ins, m, k->nlp, k->n, r);
  *dx = k->dx == DK_NONE ? 0.0 : r[k->dx];
  for (int i = 0; i < np; i++) dp[i] = k->dp[i] == DK_NONE ? 0.0 : r[k->dp[i]];
  return lp;
}

bool dk_logs_param(const DistKernel *k, int i) {
  for (int j = 0; j < k->nlp; j++)
    if (k->ins[j].op == DK_LOG && k->ins[j].a == DK_P(i)) return true;
  return false;
}

int dk_nargs(int op) {
  switch (op) {
  case DK_CONST: return 0;
  case DK_NEG: case DK_ABS: case DK_LOG: case DK_EXP: case DK_LOG1P:
  case DK_SQRT: case DK_EXPM1: case DK_TRUNC: case DK_CALL1: return 1;
  case DK_SEL: case DK_FMA: return 3;
  default: return op >= 0 && op < DK_NOPS ? 2 : -1;
  }
}

bool dk_fn_ok(const DkIns *in) {
  if (in->op == DK_CALL1) return in->k >= 0 && in->k < DKF_N1 && in->k == (int)in->k;
  if (in->op == DK_CALL2) return in->k >= 0 && in->k < DKF_N2 && in->k == (int)in->k;
  return true;
}

bool dk_valid(const DistKernel *k) {
  int np = k->np;
  if (k->n < k->nlp || DK_FIRST + k->n > DK_MAXREG || np > DK_FIRST - 1) return false;
  for (int i = 0; i < k->n; i++) {
    const DkIns *in = &k->ins[i];
    int top = DK_FIRST + i; /* registers below are defined */
    int nargs = dk_nargs(in->op);
    if (nargs < 0 || !dk_fn_ok(in)) return false;
    const uint8_t reg[3] = {in->a, in->b, in->c};
    for (int j = 0; j < nargs; j++) {
      if (reg[j] >= top) return false;
      if (reg[j] > DK_X && reg[j] < DK_FIRST && reg[j] - 1 >= np) return false;
      /* the density part cannot read what the gradient part computes */
      if (i < k->nlp && reg[j] >= DK_FIRST + k->nlp) return false;
    }
  }
  if (k->lp < DK_FIRST || k->lp >= DK_FIRST + k->nlp) return false;
  if (k->dx != DK_NONE && k->dx >= DK_FIRST + k->n) return false;
  for (int i = 0; i < np; i++)
    if (k->dp[i] != DK_NONE && k->dp[i] >= DK_FIRST + k->n) return false;
  return true;
}
