/* scalar_rule.h — the value and partial derivatives of each scalar operator
 * and of the scalar builtins the JIT lowers itself, written once.
 *
 * A rule is a list of dist_kernel.h instructions over a = register DK_X and
 * b = register DK_P(0) (unary rules ignore b): the first instructions compute
 * the value (register v), the rest the partials d/da and d/db (registers da,
 * db; DK_NONE for an absent operand).  The partial instructions read only a,
 * b and v, so the tape can take the value it already has and compute the
 * partials alone.  The list expands twice:
 *   - into static inline C (sr_NAME value, sr_NAME_d / sr_NAME_d1 partials),
 *     which the interpreter's arithmetic and the tape's recording call
 *     (ir/interp_ops.c, ir/interp.c, stdlib/ad.c, stdlib/builtins_math.c,
 *     stdlib/builtins_ad.c), inlined: no slower than writing the C by hand;
 *   - into a description (ScalarRule, sr_rules[]) that the JIT emits as LLVM
 *     IR instruction by instruction (ir/jit_native.c, jg_emit_rule) for its
 *     scalar arithmetic, element-wise container arithmetic and the natively
 *     lowered builtins.
 * Each instruction is one IEEE operation or libm call, so both give the same
 * bits (tests/inference/test_scalar_rules holds them to it).  A select
 * computes both arms: an arm may be inf or NaN where it is not chosen.
 *
 * Integer arithmetic is not here: its overflow and division checks stay
 * where they are (interp_ops.c int_binary, jit.c emit_binary_scalar).
 */
#ifndef PPL_SCALAR_RULE_H
#define PPL_SCALAR_RULE_H

#include <math.h>

#include "dist_kernel.h"

#define SR_A DK_X
#define SR_B DK_P(0)
#define SR_R(k) (DK_FIRST + (k)) /* the register instruction k writes */

/* Each rule: R(name, nargs, v, da, db) in SR_RULES, and its instructions in
 * SR_V_name (the value) and SR_D_name (the partials), I(dst, OP, a, b, c, k)
 * as in dist_kernel.h.  The order of SR_RULES is the order of sr_rules[]. */
#define SR_RULES(R)                                   \
  R(add, 2, SR_R(0), SR_R(1), SR_R(1))                \
  R(sub, 2, SR_R(0), SR_R(1), SR_R(2))                \
  R(mul, 2, SR_R(0), SR_B, SR_A)                      \
  R(div, 2, SR_R(0), SR_R(2), SR_R(4))                \
  R(pow, 2, SR_R(0), SR_R(7), SR_R(11))               \
  R(mod, 2, SR_R(0), SR_R(1), SR_R(4))                \
  R(neg, 1, SR_R(0), SR_R(1), DK_NONE)                \
  R(exp, 1, SR_R(0), SR_R(0), DK_NONE)                \
  R(log, 1, SR_R(0), SR_R(2), DK_NONE)                \
  R(log1p, 1, SR_R(0), SR_R(3), DK_NONE)              \
  R(expm1, 1, SR_R(0), SR_R(2), DK_NONE)              \
  R(sqrt, 1, SR_R(0), SR_R(2), DK_NONE)               \
  R(square, 1, SR_R(0), SR_R(2), DK_NONE)             \
  R(inv, 1, SR_R(1), SR_R(4), DK_NONE)                \
  R(inv_sqrt, 1, SR_R(2), SR_R(5), DK_NONE)           \
  R(inv_square, 1, SR_R(2), SR_R(6), DK_NONE)         \
  R(fabs, 1, SR_R(0), SR_R(7), DK_NONE)

/* a + b: 1, 1 */
#define SR_V_add(I) I(SR_R(0), ADD, SR_A, SR_B, 0, 0)
#define SR_D_add(I) I(SR_R(1), CONST, 0, 0, 0, 1)
/* a - b: 1, -1 */
#define SR_V_sub(I) I(SR_R(0), SUB, SR_A, SR_B, 0, 0)
#define SR_D_sub(I) I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), CONST, 0, 0, 0, -1)
/* a * b: b, a */
#define SR_V_mul(I) I(SR_R(0), MUL, SR_A, SR_B, 0, 0)
#define SR_D_mul(I)
/* a / b: 1/b, -(a/b)/b */
#define SR_V_div(I) I(SR_R(0), DIV, SR_A, SR_B, 0, 0)
#define SR_D_div(I)                                                                               \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), DIV, SR_R(1), SR_B, 0, 0)                              \
  I(SR_R(3), NEG, SR_R(0), 0, 0, 0) I(SR_R(4), DIV, SR_R(3), SR_B, 0, 0)
/* a ^ b: b a^(b-1) (0 where b = 0), a^b log a (0 where a = 0) */
#define SR_V_pow(I) I(SR_R(0), POW, SR_A, SR_B, 0, 0)
#define SR_D_pow(I)                                                                               \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), SUB, SR_B, SR_R(1), 0, 0)                              \
  I(SR_R(3), POW, SR_A, SR_R(2), 0, 0) I(SR_R(4), MUL, SR_B, SR_R(3), 0, 0)                       \
  I(SR_R(5), CONST, 0, 0, 0, 0) I(SR_R(6), EQ, SR_B, SR_R(5), 0, 0)                               \
  I(SR_R(7), SEL, SR_R(6), SR_R(5), SR_R(4), 0)                                                   \
  I(SR_R(8), LOG, SR_A, 0, 0, 0) I(SR_R(9), MUL, SR_R(0), SR_R(8), 0, 0)                          \
  I(SR_R(10), EQ, SR_A, SR_R(5), 0, 0) I(SR_R(11), SEL, SR_R(10), SR_R(5), SR_R(9), 0)
/* fmod(a, b) (the '%' of reals): 1, -trunc(a/b) */
#define SR_V_mod(I) I(SR_R(0), FMOD, SR_A, SR_B, 0, 0)
#define SR_D_mod(I)                                                                               \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), DIV, SR_A, SR_B, 0, 0)                                 \
  I(SR_R(3), TRUNC, SR_R(2), 0, 0, 0) I(SR_R(4), NEG, SR_R(3), 0, 0, 0)
/* -a: -1 */
#define SR_V_neg(I) I(SR_R(0), NEG, SR_A, 0, 0, 0)
#define SR_D_neg(I) I(SR_R(1), CONST, 0, 0, 0, -1)
/* exp(a): exp(a) */
#define SR_V_exp(I) I(SR_R(0), EXP, SR_A, 0, 0, 0)
#define SR_D_exp(I)
/* log(a): 1/a */
#define SR_V_log(I) I(SR_R(0), LOG, SR_A, 0, 0, 0)
#define SR_D_log(I) I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), DIV, SR_R(1), SR_A, 0, 0)
/* log1p(a): 1/(1+a) */
#define SR_V_log1p(I) I(SR_R(0), LOG1P, SR_A, 0, 0, 0)
#define SR_D_log1p(I)                                                                             \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), ADD, SR_R(1), SR_A, 0, 0)                              \
  I(SR_R(3), DIV, SR_R(1), SR_R(2), 0, 0)
/* expm1(a): expm1(a) + 1 */
#define SR_V_expm1(I) I(SR_R(0), EXPM1, SR_A, 0, 0, 0)
#define SR_D_expm1(I) I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), ADD, SR_R(0), SR_R(1), 0, 0)
/* sqrt(a): 0.5/sqrt(a) */
#define SR_V_sqrt(I) I(SR_R(0), SQRT, SR_A, 0, 0, 0)
#define SR_D_sqrt(I) I(SR_R(1), CONST, 0, 0, 0, 0.5) I(SR_R(2), DIV, SR_R(1), SR_R(0), 0, 0)
/* square(a) = a*a: 2a */
#define SR_V_square(I) I(SR_R(0), MUL, SR_A, SR_A, 0, 0)
#define SR_D_square(I) I(SR_R(1), CONST, 0, 0, 0, 2) I(SR_R(2), MUL, SR_R(1), SR_A, 0, 0)
/* inv(a) = 1/a: -1/(a a) */
#define SR_V_inv(I) I(SR_R(0), CONST, 0, 0, 0, 1) I(SR_R(1), DIV, SR_R(0), SR_A, 0, 0)
#define SR_D_inv(I)                                                                               \
  I(SR_R(2), CONST, 0, 0, 0, -1) I(SR_R(3), MUL, SR_A, SR_A, 0, 0)                                \
  I(SR_R(4), DIV, SR_R(2), SR_R(3), 0, 0)
/* inv_sqrt(a) = 1/sqrt(a): -0.5 v / a */
#define SR_V_inv_sqrt(I)                                                                          \
  I(SR_R(0), SQRT, SR_A, 0, 0, 0) I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), DIV, SR_R(1), SR_R(0), 0, 0)
#define SR_D_inv_sqrt(I)                                                                          \
  I(SR_R(3), CONST, 0, 0, 0, -0.5) I(SR_R(4), MUL, SR_R(3), SR_R(2), 0, 0)                        \
  I(SR_R(5), DIV, SR_R(4), SR_A, 0, 0)
/* inv_square(a) = 1/(a a): -2/(a a a) */
#define SR_V_inv_square(I)                                                                        \
  I(SR_R(0), MUL, SR_A, SR_A, 0, 0) I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), DIV, SR_R(1), SR_R(0), 0, 0)
#define SR_D_inv_square(I)                                                                        \
  I(SR_R(3), CONST, 0, 0, 0, -2) I(SR_R(4), MUL, SR_A, SR_A, 0, 0)                                \
  I(SR_R(5), MUL, SR_R(4), SR_A, 0, 0) I(SR_R(6), DIV, SR_R(3), SR_R(5), 0, 0)
/* fabs(a) (abs of a real): sign(a), 0 at 0 and NaN */
#define SR_V_fabs(I) I(SR_R(0), ABS, SR_A, 0, 0, 0)
#define SR_D_fabs(I)                                                                              \
  I(SR_R(1), CONST, 0, 0, 0, 0) I(SR_R(2), GT, SR_A, SR_R(1), 0, 0)                               \
  I(SR_R(3), CONST, 0, 0, 0, 1) I(SR_R(4), GT, SR_R(1), SR_A, 0, 0)                               \
  I(SR_R(5), CONST, 0, 0, 0, -1) I(SR_R(6), SEL, SR_R(4), SR_R(5), SR_R(1), 0)                    \
  I(SR_R(7), SEL, SR_R(2), SR_R(3), SR_R(6), 0)

/* The C: per rule NAME,
 *   double sr_NAME(double a, double b)        the value (b unused if unary)
 *   double sr_NAME1(double a)                 the value of a unary rule
 *   void sr_NAME_d(a, b, v, double *da, double *db)   the partials at value v
 *   double sr_NAME_d1(double a, double v)     d/da of a unary rule
 * Registers are an array the compiler keeps in machine registers. */
#define SR_NREG (DK_FIRST + 12)
#define SR_C_FUNCS(name, nargs, v, da, db)                                                        \
  static inline double sr_##name(double a, double b) {                                            \
    double r[SR_NREG];                                                                            \
    r[SR_A] = a;                                                                                  \
    r[SR_B] = b;                                                                                  \
    SR_V_##name(DK_C) return r[v];                                                                \
  }                                                                                               \
  static inline double sr_##name##1(double a) { return sr_##name(a, 0); }                         \
  static inline void sr_##name##_d(double a, double b, double z, double *pa, double *pb) {        \
    double r[SR_NREG];                                                                            \
    r[SR_A] = a;                                                                                  \
    r[SR_B] = b;                                                                                  \
    r[v] = z;                                                                                     \
    SR_D_##name(DK_C) * pa = r[da];                                                               \
    *pb = (db) == DK_NONE ? 0.0 : r[(db) == DK_NONE ? 0 : (db)];                                  \
  }                                                                                               \
  static inline double sr_##name##_d1(double a, double z) {                                       \
    double da_, db_;                                                                              \
    sr_##name##_d(a, 0, z, &da_, &db_);                                                           \
    return da_;                                                                                   \
  }
SR_RULES(SR_C_FUNCS)

/* ---- the description, for the JIT and the tests ---- */

#define SR_ENUM(name, nargs, v, da, db) SR_##name,
typedef enum { SR_RULES(SR_ENUM) SR_NRULES } SrRule;
#undef SR_ENUM

typedef struct ScalarRule {
  const char *name; /* the builtin's name, or the operator's ("add") */
  const DkIns *ins;
  int n;     /* instructions */
  int nv;    /* of which the first nv compute the value */
  int nargs; /* 1 or 2 */
  uint8_t v, da, db; /* db is DK_NONE for unary rules */
} ScalarRule;

extern const ScalarRule sr_rules[SR_NRULES];

/* The rule of a builtin the JIT lowers itself ("exp", "sqrt", "abs" of a
   real ...), NULL if none. */
const ScalarRule *sr_builtin(const char *name);
/* Is partial `which` (0: d/da, 1: d/db) a constant (the instruction that
   gives it is a CONST), and which?  The JIT then saves nothing for it. */
bool sr_partial_const(const ScalarRule *r, int which, double *k);
/* The evaluator of descriptions (dist_kernel.c's, run on a rule): the
   reference the tests hold the C and the JIT to. */
double sr_eval(const ScalarRule *r, double a, double b, double *da, double *db);
/* Well formed: registers read before written, partials reading only a, b,
   v and themselves. */
bool sr_valid(const ScalarRule *r);

#endif
