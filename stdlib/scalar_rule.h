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
#include <stdbool.h>

#include "dist_kernel.h"

#define SR_A DK_X
#define SR_B DK_P(0)
#define SR_C DK_P(1) /* the third operand of a rule of three (fma, log_mix) */
#define SR_R(k) (DK_FIRST + (k)) /* the register instruction k writes */

/* Each rule: R(name, nargs, v, da, db, dc, ok) in SR_RULES, and its
 * instructions in SR_V_name (the value) and SR_D_name (the partials),
 * I(dst, OP, a, b, c, k) as in dist_kernel.h.  ok, where not DK_NONE, is a
 * truth value the value part computes: false where the builtin reports an
 * error (log_mix's theta outside [0, 1]); the JIT's code then fails, and the
 * interpreter, re-run, reports it.  The order of SR_RULES is the order of
 * sr_rules[]. */
#define SR_RULES(R)                                   \
  R(add, 2, SR_R(0), SR_R(1), SR_R(1), DK_NONE, DK_NONE)                \
  R(sub, 2, SR_R(0), SR_R(1), SR_R(2), DK_NONE, DK_NONE)                \
  R(mul, 2, SR_R(0), SR_B, SR_A, DK_NONE, DK_NONE)                      \
  R(div, 2, SR_R(0), SR_R(2), SR_R(4), DK_NONE, DK_NONE)                \
  R(pow, 2, SR_R(0), SR_R(7), SR_R(11), DK_NONE, DK_NONE)               \
  R(mod, 2, SR_R(0), SR_R(1), SR_R(4), DK_NONE, DK_NONE)                \
  R(neg, 1, SR_R(0), SR_R(1), DK_NONE, DK_NONE, DK_NONE)                \
  R(exp, 1, SR_R(0), SR_R(0), DK_NONE, DK_NONE, DK_NONE)                \
  R(log, 1, SR_R(0), SR_R(2), DK_NONE, DK_NONE, DK_NONE)                \
  R(log1p, 1, SR_R(0), SR_R(3), DK_NONE, DK_NONE, DK_NONE)              \
  R(expm1, 1, SR_R(0), SR_R(2), DK_NONE, DK_NONE, DK_NONE)              \
  R(sqrt, 1, SR_R(0), SR_R(2), DK_NONE, DK_NONE, DK_NONE)               \
  R(square, 1, SR_R(0), SR_R(2), DK_NONE, DK_NONE, DK_NONE)             \
  R(inv, 1, SR_R(1), SR_R(4), DK_NONE, DK_NONE, DK_NONE)                \
  R(inv_sqrt, 1, SR_R(2), SR_R(5), DK_NONE, DK_NONE, DK_NONE)           \
  R(inv_square, 1, SR_R(2), SR_R(6), DK_NONE, DK_NONE, DK_NONE)         \
  R(fabs, 1, SR_R(0), SR_R(7), DK_NONE, DK_NONE, DK_NONE)              \
  SR_MORE_RULES(R)

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

/* ---- the builtins of stdlib/builtins_math.c lowered natively ----
 * Each list is the operations of the C the builtin ran before it had a rule
 * (stdlib/mathfn.c, builtins_math.c, builtins_ad.c), in their order, so
 * values and partials kept their bits.  Shared pieces, at register offset o: */

/* m_inv_logit(x) into SR_R(o + 9): x >= 0 ? 1/(1 + exp(-x)) : e/(1 + e), e = exp(x) */
#define SR_INVLOGIT(I, x, o)                                                                      \
  I(SR_R(o), CONST, 0, 0, 0, 0) I(SR_R(o + 1), GE, x, SR_R(o), 0, 0)                              \
  I(SR_R(o + 2), NEG, x, 0, 0, 0) I(SR_R(o + 3), SEL, SR_R(o + 1), SR_R(o + 2), x, 0)             \
  I(SR_R(o + 4), EXP, SR_R(o + 3), 0, 0, 0) I(SR_R(o + 5), CONST, 0, 0, 0, 1)                     \
  I(SR_R(o + 6), ADD, SR_R(o + 5), SR_R(o + 4), 0, 0)                                             \
  I(SR_R(o + 7), DIV, SR_R(o + 5), SR_R(o + 6), 0, 0)                                             \
  I(SR_R(o + 8), DIV, SR_R(o + 4), SR_R(o + 6), 0, 0)                                             \
  I(SR_R(o + 9), SEL, SR_R(o + 1), SR_R(o + 7), SR_R(o + 8), 0)
/* m_log1p_exp(x) into SR_R(o + 7): x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) */
#define SR_LOG1PEXP(I, x, o)                                                                      \
  I(SR_R(o), CONST, 0, 0, 0, 0) I(SR_R(o + 1), GT, x, SR_R(o), 0, 0)                              \
  I(SR_R(o + 2), NEG, x, 0, 0, 0) I(SR_R(o + 3), SEL, SR_R(o + 1), SR_R(o + 2), x, 0)             \
  I(SR_R(o + 4), EXP, SR_R(o + 3), 0, 0, 0) I(SR_R(o + 5), LOG1P, SR_R(o + 4), 0, 0, 0)           \
  I(SR_R(o + 6), ADD, x, SR_R(o + 5), 0, 0) I(SR_R(o + 7), SEL, SR_R(o + 1), SR_R(o + 6), SR_R(o + 5), 0)
/* log_sum_exp(x, y) into SR_R(o + 22): max + log1p(exp(-|x - y|)), with
   m_log_sum_exp2's cases as selects, the outermost first: NaN, +inf, one
   side -inf (both: -inf) */
#define SR_LSE2(I, x, y, o)                                                                       \
  I(SR_R(o), GT, x, y, 0, 0) I(SR_R(o + 1), SEL, SR_R(o), x, y, 0)                                \
  I(SR_R(o + 2), SUB, y, x, 0, 0) I(SR_R(o + 3), SUB, x, y, 0, 0)                                 \
  I(SR_R(o + 4), SEL, SR_R(o), SR_R(o + 2), SR_R(o + 3), 0) I(SR_R(o + 5), EXP, SR_R(o + 4), 0, 0, 0) \
  I(SR_R(o + 6), LOG1P, SR_R(o + 5), 0, 0, 0) I(SR_R(o + 7), ADD, SR_R(o + 1), SR_R(o + 6), 0, 0) \
  I(SR_R(o + 8), CONST, 0, 0, 0, -INFINITY) I(SR_R(o + 9), EQ, y, SR_R(o + 8), 0, 0)              \
  I(SR_R(o + 10), SEL, SR_R(o + 9), x, SR_R(o + 7), 0) I(SR_R(o + 11), EQ, x, SR_R(o + 8), 0, 0)  \
  I(SR_R(o + 12), SEL, SR_R(o + 11), y, SR_R(o + 10), 0) I(SR_R(o + 13), CONST, 0, 0, 0, INFINITY) \
  I(SR_R(o + 14), EQ, x, SR_R(o + 13), 0, 0) I(SR_R(o + 15), EQ, y, SR_R(o + 13), 0, 0)           \
  I(SR_R(o + 16), OR, SR_R(o + 14), SR_R(o + 15), 0, 0)                                           \
  I(SR_R(o + 17), SEL, SR_R(o + 16), SR_R(o + 13), SR_R(o + 12), 0)                               \
  I(SR_R(o + 18), CONST, 0, 0, 0, NAN) I(SR_R(o + 19), EQ, y, y, 0, 0)                            \
  I(SR_R(o + 20), SEL, SR_R(o + 19), SR_R(o + 17), SR_R(o + 18), 0) I(SR_R(o + 21), EQ, x, x, 0, 0) \
  I(SR_R(o + 22), SEL, SR_R(o + 21), SR_R(o + 20), SR_R(o + 18), 0)
/* f(a) = C function DKF_F of a: the value part of most special functions */
#define SR_CALL1V(I, F) I(SR_R(0), CALL1, SR_A, 0, 0, DKF_##F)

#define SR_MORE_RULES(R)                                                                          \
  R(log1p_exp, 1, SR_R(7), SR_R(17), DK_NONE, DK_NONE, DK_NONE)                                   \
  R(inv_logit, 1, SR_R(9), SR_R(21), DK_NONE, DK_NONE, DK_NONE)                                   \
  R(log_inv_logit, 1, SR_R(9), SR_R(20), DK_NONE, DK_NONE, DK_NONE)                               \
  R(log1m_inv_logit, 1, SR_R(8), SR_R(19), DK_NONE, DK_NONE, DK_NONE)                             \
  R(logit, 1, SR_R(3), SR_R(7), DK_NONE, DK_NONE, DK_NONE)                                        \
  R(log1m, 1, SR_R(1), SR_R(10), DK_NONE, DK_NONE, SR_R(6))                                       \
  R(inv_cloglog, 1, SR_R(3), SR_R(6), DK_NONE, DK_NONE, DK_NONE)                                  \
  R(log_sum_exp, 2, SR_R(22), SR_R(28), SR_R(32), DK_NONE, DK_NONE)                               \
  R(log_mix, 3, SR_R(27), SR_R(40), SR_R(41), SR_R(44), SR_R(35))                                 \
  R(fma, 3, SR_R(0), SR_B, SR_A, SR_R(1), DK_NONE)                                                \
  R(fmin, 2, SR_R(0), SR_R(4), SR_R(5), DK_NONE, DK_NONE)                                         \
  R(fmax, 2, SR_R(0), SR_R(4), SR_R(5), DK_NONE, DK_NONE)                                         \
  R(lgamma, 1, SR_R(0), SR_R(1), DK_NONE, DK_NONE, DK_NONE)                                       \
  R(digamma, 1, SR_R(0), SR_R(1), DK_NONE, DK_NONE, DK_NONE)                                      \
  R(lbeta, 2, SR_R(0), SR_R(4), SR_R(6), DK_NONE, DK_NONE)                                        \
  R(lchoose, 2, SR_R(0), SR_R(7), SR_R(10), DK_NONE, DK_NONE)                                     \
  R(sin, 1, SR_R(0), SR_R(1), DK_NONE, DK_NONE, DK_NONE)                                          \
  R(cos, 1, SR_R(0), SR_R(2), DK_NONE, DK_NONE, DK_NONE)                                          \
  R(tan, 1, SR_R(0), SR_R(3), DK_NONE, DK_NONE, DK_NONE)                                          \
  R(asin, 1, SR_R(0), SR_R(5), DK_NONE, DK_NONE, DK_NONE)                                         \
  R(acos, 1, SR_R(0), SR_R(6), DK_NONE, DK_NONE, DK_NONE)                                         \
  R(atan, 1, SR_R(0), SR_R(4), DK_NONE, DK_NONE, DK_NONE)                                         \
  R(sinh, 1, SR_R(0), SR_R(1), DK_NONE, DK_NONE, DK_NONE)                                         \
  R(cosh, 1, SR_R(0), SR_R(1), DK_NONE, DK_NONE, DK_NONE)                                         \
  R(tanh, 1, SR_R(0), SR_R(3), DK_NONE, DK_NONE, DK_NONE)                                         \
  R(asinh, 1, SR_R(0), SR_R(5), DK_NONE, DK_NONE, DK_NONE)                                        \
  R(acosh, 1, SR_R(0), SR_R(5), DK_NONE, DK_NONE, DK_NONE)                                        \
  R(atanh, 1, SR_R(0), SR_R(4), DK_NONE, DK_NONE, DK_NONE)                                        \
  R(erf, 1, SR_R(0), SR_R(5), DK_NONE, DK_NONE, DK_NONE)                                          \
  R(erfc, 1, SR_R(0), SR_R(5), DK_NONE, DK_NONE, DK_NONE)                                         \
  R(Phi, 1, SR_R(5), SR_R(11), DK_NONE, DK_NONE, DK_NONE)                                         \
  R(Phi_approx, 1, SR_R(16), SR_R(25), DK_NONE, DK_NONE, DK_NONE)

/* log1p_exp(a): inv_logit(a) */
#define SR_V_log1p_exp(I) SR_LOG1PEXP(I, SR_A, 0)
#define SR_D_log1p_exp(I) SR_INVLOGIT(I, SR_A, 8)
/* inv_logit(a): inv_logit(a) inv_logit(-a) */
#define SR_V_inv_logit(I) SR_INVLOGIT(I, SR_A, 0)
#define SR_D_inv_logit(I)                                                                         \
  I(SR_R(10), NEG, SR_A, 0, 0, 0) SR_INVLOGIT(I, SR_R(10), 11) I(SR_R(21), MUL, SR_R(9), SR_R(20), 0, 0)
/* log_inv_logit(a) = -log1p_exp(-a): inv_logit(-a) */
#define SR_V_log_inv_logit(I)                                                                     \
  I(SR_R(0), NEG, SR_A, 0, 0, 0) SR_LOG1PEXP(I, SR_R(0), 1) I(SR_R(9), NEG, SR_R(8), 0, 0, 0)
#define SR_D_log_inv_logit(I) I(SR_R(10), NEG, SR_A, 0, 0, 0) SR_INVLOGIT(I, SR_R(10), 11)
/* log1m_inv_logit(a) = -log1p_exp(a): -inv_logit(a) */
#define SR_V_log1m_inv_logit(I) SR_LOG1PEXP(I, SR_A, 0) I(SR_R(8), NEG, SR_R(7), 0, 0, 0)
#define SR_D_log1m_inv_logit(I) SR_INVLOGIT(I, SR_A, 9) I(SR_R(19), NEG, SR_R(18), 0, 0, 0)
/* logit(a) = log(a) - log1p(-a): 1/(a (1 - a)) */
#define SR_V_logit(I)                                                                             \
  I(SR_R(0), LOG, SR_A, 0, 0, 0) I(SR_R(1), NEG, SR_A, 0, 0, 0) I(SR_R(2), LOG1P, SR_R(1), 0, 0, 0) \
  I(SR_R(3), SUB, SR_R(0), SR_R(2), 0, 0)
#define SR_D_logit(I)                                                                             \
  I(SR_R(4), CONST, 0, 0, 0, 1) I(SR_R(5), SUB, SR_R(4), SR_A, 0, 0)                              \
  I(SR_R(6), MUL, SR_A, SR_R(5), 0, 0) I(SR_R(7), DIV, SR_R(4), SR_R(6), 0, 0)
/* log1m(a) = log1p(-a), a <= 1 (or NaN): -1/(1 - a) */
#define SR_V_log1m(I)                                                                             \
  I(SR_R(0), NEG, SR_A, 0, 0, 0) I(SR_R(1), LOG1P, SR_R(0), 0, 0, 0)                              \
  I(SR_R(2), CONST, 0, 0, 0, 1) I(SR_R(3), GE, SR_R(2), SR_A, 0, 0)                               \
  I(SR_R(4), EQ, SR_A, SR_A, 0, 0) I(SR_R(5), EQ, SR_R(2), SR_R(2), 0, 0)                         \
  I(SR_R(6), SEL, SR_R(4), SR_R(3), SR_R(5), 0)
#define SR_D_log1m(I)                                                                             \
  I(SR_R(7), CONST, 0, 0, 0, -1) I(SR_R(8), CONST, 0, 0, 0, 1) I(SR_R(9), SUB, SR_R(8), SR_A, 0, 0) \
  I(SR_R(10), DIV, SR_R(7), SR_R(9), 0, 0)
/* inv_cloglog(a) = -expm1(-exp(a)): exp(a - exp(a)) */
#define SR_V_inv_cloglog(I)                                                                       \
  I(SR_R(0), EXP, SR_A, 0, 0, 0) I(SR_R(1), NEG, SR_R(0), 0, 0, 0) I(SR_R(2), EXPM1, SR_R(1), 0, 0, 0) \
  I(SR_R(3), NEG, SR_R(2), 0, 0, 0)
#define SR_D_inv_cloglog(I)                                                                       \
  I(SR_R(4), EXP, SR_A, 0, 0, 0) I(SR_R(5), SUB, SR_A, SR_R(4), 0, 0) I(SR_R(6), EXP, SR_R(5), 0, 0, 0)
/* log_sum_exp(a, b): exp(a - v), exp(b - v) (0 for an operand of -inf) */
#define SR_V_log_sum_exp(I) SR_LSE2(I, SR_A, SR_B, 0)
#define SR_D_log_sum_exp(I)                                                                       \
  I(SR_R(23), CONST, 0, 0, 0, -INFINITY) I(SR_R(24), EQ, SR_A, SR_R(23), 0, 0)                    \
  I(SR_R(25), SUB, SR_A, SR_R(22), 0, 0) I(SR_R(26), EXP, SR_R(25), 0, 0, 0)                      \
  I(SR_R(27), CONST, 0, 0, 0, 0) I(SR_R(28), SEL, SR_R(24), SR_R(27), SR_R(26), 0)                \
  I(SR_R(29), SUB, SR_B, SR_R(22), 0, 0) I(SR_R(30), EXP, SR_R(29), 0, 0, 0)                      \
  I(SR_R(31), EQ, SR_B, SR_R(23), 0, 0) I(SR_R(32), SEL, SR_R(31), SR_R(27), SR_R(30), 0)
/* log_mix(t, a, c) = log_sum_exp(log(t) + a, log1p(-t) + c), t in [0, 1]
   (or NaN): with ea = exp(a - v), ec = exp(c - v): ea - ec, t ea, (1 - t) ec */
#define SR_V_log_mix(I)                                                                           \
  I(SR_R(0), LOG, SR_A, 0, 0, 0) I(SR_R(1), ADD, SR_R(0), SR_B, 0, 0)                             \
  I(SR_R(2), NEG, SR_A, 0, 0, 0) I(SR_R(3), LOG1P, SR_R(2), 0, 0, 0)                              \
  I(SR_R(4), ADD, SR_R(3), SR_C, 0, 0) SR_LSE2(I, SR_R(1), SR_R(4), 5)                            \
  I(SR_R(28), CONST, 0, 0, 0, 0) I(SR_R(29), GE, SR_A, SR_R(28), 0, 0)                            \
  I(SR_R(30), CONST, 0, 0, 0, 1) I(SR_R(31), GE, SR_R(30), SR_A, 0, 0)                            \
  I(SR_R(32), SEL, SR_R(29), SR_R(31), SR_R(29), 0) I(SR_R(33), EQ, SR_A, SR_A, 0, 0)             \
  I(SR_R(34), EQ, SR_R(30), SR_R(30), 0, 0) I(SR_R(35), SEL, SR_R(33), SR_R(32), SR_R(34), 0)
#define SR_D_log_mix(I)                                                                           \
  I(SR_R(36), SUB, SR_B, SR_R(27), 0, 0) I(SR_R(37), EXP, SR_R(36), 0, 0, 0)                      \
  I(SR_R(38), SUB, SR_C, SR_R(27), 0, 0) I(SR_R(39), EXP, SR_R(38), 0, 0, 0)                      \
  I(SR_R(40), SUB, SR_R(37), SR_R(39), 0, 0) I(SR_R(41), MUL, SR_A, SR_R(37), 0, 0)               \
  I(SR_R(42), CONST, 0, 0, 0, 1) I(SR_R(43), SUB, SR_R(42), SR_A, 0, 0)                           \
  I(SR_R(44), MUL, SR_R(43), SR_R(39), 0, 0)
/* fma(a, b, c): b, a, 1 */
#define SR_V_fma(I) I(SR_R(0), FMA, SR_A, SR_B, SR_C, 0)
#define SR_D_fma(I) I(SR_R(1), CONST, 0, 0, 0, 1)
/* fmin(a, b): 1 where a <= b, else 0; and the other way */
#define SR_V_fmin(I) I(SR_R(0), CALL2, SR_A, SR_B, 0, DKF_FMIN)
#define SR_D_fmin(I)                                                                              \
  I(SR_R(1), GE, SR_B, SR_A, 0, 0) I(SR_R(2), CONST, 0, 0, 0, 1) I(SR_R(3), CONST, 0, 0, 0, 0)    \
  I(SR_R(4), SEL, SR_R(1), SR_R(2), SR_R(3), 0) I(SR_R(5), SEL, SR_R(1), SR_R(3), SR_R(2), 0)
/* fmax(a, b): 1 where a >= b, else 0; and the other way */
#define SR_V_fmax(I) I(SR_R(0), CALL2, SR_A, SR_B, 0, DKF_FMAX)
#define SR_D_fmax(I)                                                                              \
  I(SR_R(1), GE, SR_A, SR_B, 0, 0) I(SR_R(2), CONST, 0, 0, 0, 1) I(SR_R(3), CONST, 0, 0, 0, 0)    \
  I(SR_R(4), SEL, SR_R(1), SR_R(2), SR_R(3), 0) I(SR_R(5), SEL, SR_R(1), SR_R(3), SR_R(2), 0)
/* lgamma(a): digamma(a); digamma(a): trigamma(a) */
#define SR_V_lgamma(I) SR_CALL1V(I, LGAMMA)
#define SR_D_lgamma(I) I(SR_R(1), CALL1, SR_A, 0, 0, DKF_DIGAMMA)
#define SR_V_digamma(I) SR_CALL1V(I, DIGAMMA)
#define SR_D_digamma(I) I(SR_R(1), CALL1, SR_A, 0, 0, DKF_TRIGAMMA)
/* lbeta(a, b): digamma(a) - digamma(a + b), digamma(b) - digamma(a + b) */
#define SR_V_lbeta(I) I(SR_R(0), CALL2, SR_A, SR_B, 0, DKF_LBETA)
#define SR_D_lbeta(I)                                                                             \
  I(SR_R(1), ADD, SR_A, SR_B, 0, 0) I(SR_R(2), CALL1, SR_R(1), 0, 0, DKF_DIGAMMA)                 \
  I(SR_R(3), CALL1, SR_A, 0, 0, DKF_DIGAMMA) I(SR_R(4), SUB, SR_R(3), SR_R(2), 0, 0)              \
  I(SR_R(5), CALL1, SR_B, 0, 0, DKF_DIGAMMA) I(SR_R(6), SUB, SR_R(5), SR_R(2), 0, 0)
/* lchoose(n, k): digamma(n + 1) - s, s - digamma(k + 1), s = digamma(n - k + 1) */
#define SR_V_lchoose(I) I(SR_R(0), CALL2, SR_A, SR_B, 0, DKF_LCHOOSE)
#define SR_D_lchoose(I)                                                                           \
  I(SR_R(1), SUB, SR_A, SR_B, 0, 0) I(SR_R(2), CONST, 0, 0, 0, 1)                                 \
  I(SR_R(3), ADD, SR_R(1), SR_R(2), 0, 0) I(SR_R(4), CALL1, SR_R(3), 0, 0, DKF_DIGAMMA)           \
  I(SR_R(5), ADD, SR_A, SR_R(2), 0, 0) I(SR_R(6), CALL1, SR_R(5), 0, 0, DKF_DIGAMMA)              \
  I(SR_R(7), SUB, SR_R(6), SR_R(4), 0, 0) I(SR_R(8), ADD, SR_B, SR_R(2), 0, 0)                    \
  I(SR_R(9), CALL1, SR_R(8), 0, 0, DKF_DIGAMMA) I(SR_R(10), SUB, SR_R(4), SR_R(9), 0, 0)
/* the trigonometric and hyperbolic functions and their inverses */
#define SR_V_sin(I) SR_CALL1V(I, SIN)
#define SR_D_sin(I) I(SR_R(1), CALL1, SR_A, 0, 0, DKF_COS)
#define SR_V_cos(I) SR_CALL1V(I, COS)
#define SR_D_cos(I) I(SR_R(1), CALL1, SR_A, 0, 0, DKF_SIN) I(SR_R(2), NEG, SR_R(1), 0, 0, 0)
#define SR_V_tan(I) SR_CALL1V(I, TAN) /* 1 + v^2 */
#define SR_D_tan(I)                                                                               \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), MUL, SR_R(0), SR_R(0), 0, 0) I(SR_R(3), ADD, SR_R(1), SR_R(2), 0, 0)
#define SR_V_asin(I) SR_CALL1V(I, ASIN) /* 1/sqrt(1 - a^2) */
#define SR_D_asin(I)                                                                              \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), MUL, SR_A, SR_A, 0, 0) I(SR_R(3), SUB, SR_R(1), SR_R(2), 0, 0) \
  I(SR_R(4), SQRT, SR_R(3), 0, 0, 0) I(SR_R(5), DIV, SR_R(1), SR_R(4), 0, 0)
#define SR_V_acos(I) SR_CALL1V(I, ACOS) /* -1/sqrt(1 - a^2) */
#define SR_D_acos(I)                                                                              \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), MUL, SR_A, SR_A, 0, 0) I(SR_R(3), SUB, SR_R(1), SR_R(2), 0, 0) \
  I(SR_R(4), SQRT, SR_R(3), 0, 0, 0) I(SR_R(5), CONST, 0, 0, 0, -1) I(SR_R(6), DIV, SR_R(5), SR_R(4), 0, 0)
#define SR_V_atan(I) SR_CALL1V(I, ATAN) /* 1/(1 + a^2) */
#define SR_D_atan(I)                                                                              \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), MUL, SR_A, SR_A, 0, 0) I(SR_R(3), ADD, SR_R(1), SR_R(2), 0, 0) \
  I(SR_R(4), DIV, SR_R(1), SR_R(3), 0, 0)
#define SR_V_sinh(I) SR_CALL1V(I, SINH)
#define SR_D_sinh(I) I(SR_R(1), CALL1, SR_A, 0, 0, DKF_COSH)
#define SR_V_cosh(I) SR_CALL1V(I, COSH)
#define SR_D_cosh(I) I(SR_R(1), CALL1, SR_A, 0, 0, DKF_SINH)
#define SR_V_tanh(I) SR_CALL1V(I, TANH) /* 1 - v^2 */
#define SR_D_tanh(I)                                                                              \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), MUL, SR_R(0), SR_R(0), 0, 0) I(SR_R(3), SUB, SR_R(1), SR_R(2), 0, 0)
#define SR_V_asinh(I) SR_CALL1V(I, ASINH) /* 1/sqrt(a^2 + 1) */
#define SR_D_asinh(I)                                                                             \
  I(SR_R(1), MUL, SR_A, SR_A, 0, 0) I(SR_R(2), CONST, 0, 0, 0, 1) I(SR_R(3), ADD, SR_R(1), SR_R(2), 0, 0) \
  I(SR_R(4), SQRT, SR_R(3), 0, 0, 0) I(SR_R(5), DIV, SR_R(2), SR_R(4), 0, 0)
#define SR_V_acosh(I) SR_CALL1V(I, ACOSH) /* 1/sqrt(a^2 - 1) */
#define SR_D_acosh(I)                                                                             \
  I(SR_R(1), MUL, SR_A, SR_A, 0, 0) I(SR_R(2), CONST, 0, 0, 0, 1) I(SR_R(3), SUB, SR_R(1), SR_R(2), 0, 0) \
  I(SR_R(4), SQRT, SR_R(3), 0, 0, 0) I(SR_R(5), DIV, SR_R(2), SR_R(4), 0, 0)
#define SR_V_atanh(I) SR_CALL1V(I, ATANH) /* 1/(1 - a^2) */
#define SR_D_atanh(I)                                                                             \
  I(SR_R(1), CONST, 0, 0, 0, 1) I(SR_R(2), MUL, SR_A, SR_A, 0, 0) I(SR_R(3), SUB, SR_R(1), SR_R(2), 0, 0) \
  I(SR_R(4), DIV, SR_R(1), SR_R(3), 0, 0)
/* erf(a): 2/sqrt(pi) exp(-a a); erfc(a): -2/sqrt(pi) exp(-a a) */
#define SR_V_erf(I) SR_CALL1V(I, ERF)
#define SR_D_erf(I)                                                                               \
  I(SR_R(1), NEG, SR_A, 0, 0, 0) I(SR_R(2), MUL, SR_R(1), SR_A, 0, 0) I(SR_R(3), EXP, SR_R(2), 0, 0, 0) \
  I(SR_R(4), CONST, 0, 0, 0, M_2_SQRTPI) I(SR_R(5), MUL, SR_R(4), SR_R(3), 0, 0)
#define SR_V_erfc(I) SR_CALL1V(I, ERFC)
#define SR_D_erfc(I)                                                                              \
  I(SR_R(1), NEG, SR_A, 0, 0, 0) I(SR_R(2), MUL, SR_R(1), SR_A, 0, 0) I(SR_R(3), EXP, SR_R(2), 0, 0, 0) \
  I(SR_R(4), CONST, 0, 0, 0, -M_2_SQRTPI) I(SR_R(5), MUL, SR_R(4), SR_R(3), 0, 0)
/* Phi(a) = erfc(-a/sqrt(2))/2: exp(-a^2/2)/sqrt(2 pi) */
#define SR_V_Phi(I)                                                                               \
  I(SR_R(0), NEG, SR_A, 0, 0, 0) I(SR_R(1), CONST, 0, 0, 0, M_SQRT1_2)                            \
  I(SR_R(2), MUL, SR_R(0), SR_R(1), 0, 0) I(SR_R(3), CALL1, SR_R(2), 0, 0, DKF_ERFC)              \
  I(SR_R(4), CONST, 0, 0, 0, 0.5) I(SR_R(5), MUL, SR_R(4), SR_R(3), 0, 0)
#define SR_D_Phi(I)                                                                               \
  I(SR_R(6), CONST, 0, 0, 0, -0.5) I(SR_R(7), MUL, SR_R(6), SR_A, 0, 0)                           \
  I(SR_R(8), MUL, SR_R(7), SR_A, 0, 0) I(SR_R(9), EXP, SR_R(8), 0, 0, 0)                          \
  I(SR_R(10), CONST, 0, 0, 0, 2.50662827463100050242) I(SR_R(11), DIV, SR_R(9), SR_R(10), 0, 0)
/* Phi_approx(a) = inv_logit(0.07056 a^3 + 1.5976 a): v (1 - v) (3 0.07056 a^2 + 1.5976) */
#define SR_V_Phi_approx(I)                                                                        \
  I(SR_R(0), CONST, 0, 0, 0, 0.07056) I(SR_R(1), MUL, SR_R(0), SR_A, 0, 0)                        \
  I(SR_R(2), MUL, SR_R(1), SR_A, 0, 0) I(SR_R(3), MUL, SR_R(2), SR_A, 0, 0)                       \
  I(SR_R(4), CONST, 0, 0, 0, 1.5976) I(SR_R(5), MUL, SR_R(4), SR_A, 0, 0)                         \
  I(SR_R(6), ADD, SR_R(3), SR_R(5), 0, 0) SR_INVLOGIT(I, SR_R(6), 7)
#define SR_D_Phi_approx(I)                                                                        \
  I(SR_R(17), CONST, 0, 0, 0, 1) I(SR_R(18), SUB, SR_R(17), SR_R(16), 0, 0)                       \
  I(SR_R(19), MUL, SR_R(16), SR_R(18), 0, 0) I(SR_R(20), CONST, 0, 0, 0, 3 * 0.07056)             \
  I(SR_R(21), MUL, SR_R(20), SR_A, 0, 0) I(SR_R(22), MUL, SR_R(21), SR_A, 0, 0)                   \
  I(SR_R(23), CONST, 0, 0, 0, 1.5976) I(SR_R(24), ADD, SR_R(22), SR_R(23), 0, 0)                  \
  I(SR_R(25), MUL, SR_R(19), SR_R(24), 0, 0)

/* The C: per rule NAME,
 *   double sr_NAME3(double a, double b, double c)  the value (of the operands it has)
 *   double sr_NAME(double a, double b), sr_NAME1(double a)
 *   bool sr_NAME_ok(a, b, c)                   its ok (true for a rule without one)
 *   void sr_NAME_d3(a, b, c, v, double *da, double *db, double *dc)  the partials at value v
 *   void sr_NAME_d(a, b, v, double *da, double *db), double sr_NAME_d1(double a, double v)
 * Registers are an array the compiler keeps in machine registers. */
#define SR_NREG (DK_FIRST + 48)
#define SR_REG(x) ((x) == DK_NONE ? 0 : (x)) /* (an index the compiler can check) */
#define SR_C_FUNCS(name, nargs, v, da, db, dc, ok)                                                \
  static inline double sr_##name##3(double a, double b, double c) {                               \
    double r[SR_NREG];                                                                            \
    r[SR_A] = a;                                                                                  \
    r[SR_B] = b;                                                                                  \
    r[SR_C] = c;                                                                                  \
    SR_V_##name(DK_C) return r[v];                                                                \
  }                                                                                               \
  static inline double sr_##name(double a, double b) { return sr_##name##3(a, b, 0); }            \
  static inline double sr_##name##1(double a) { return sr_##name##3(a, 0, 0); }                   \
  static inline bool sr_##name##_ok(double a, double b, double c) {                               \
    if ((ok) == DK_NONE) return true;                                                             \
    double r[SR_NREG];                                                                            \
    r[SR_A] = a;                                                                                  \
    r[SR_B] = b;                                                                                  \
    r[SR_C] = c;                                                                                  \
    SR_V_##name(DK_C) return r[SR_REG(ok)] != 0;                                                  \
  }                                                                                               \
  static inline void sr_##name##_d3(double a, double b, double c, double z, double *pa,           \
                                    double *pb, double *pc) {                                     \
    double r[SR_NREG];                                                                            \
    r[SR_A] = a;                                                                                  \
    r[SR_B] = b;                                                                                  \
    r[SR_C] = c;                                                                                  \
    r[v] = z;                                                                                     \
    SR_D_##name(DK_C) * pa = r[da];                                                               \
    *pb = (db) == DK_NONE ? 0.0 : r[SR_REG(db)];                                                  \
    *pc = (dc) == DK_NONE ? 0.0 : r[SR_REG(dc)];                                                  \
  }                                                                                               \
  static inline void sr_##name##_d(double a, double b, double z, double *pa, double *pb) {        \
    double pc_;                                                                                   \
    sr_##name##_d3(a, b, 0, z, pa, pb, &pc_);                                                     \
  }                                                                                               \
  static inline double sr_##name##_d1(double a, double z) {                                       \
    double da_, db_;                                                                              \
    sr_##name##_d(a, 0, z, &da_, &db_);                                                     \
    return da_;                                                                                   \
  }
SR_RULES(SR_C_FUNCS)

/* ---- the description, for the JIT and the tests ---- */

#define SR_ENUM(name, nargs, v, da, db, dc, ok) SR_##name,
typedef enum { SR_RULES(SR_ENUM) SR_NRULES } SrRule;
#undef SR_ENUM

typedef struct ScalarRule {
  const char *name; /* the builtin's name, or the operator's ("add") */
  const DkIns *ins;
  int n;     /* instructions */
  int nv;    /* of which the first nv compute the value */
  int nargs; /* 1, 2 or 3 */
  uint8_t v, da, db, dc; /* db, dc are DK_NONE where there is no such operand */
  uint8_t ok;            /* DK_NONE: defined everywhere */
} ScalarRule;

extern const ScalarRule sr_rules[SR_NRULES];

/* The rule of a builtin the JIT lowers itself ("exp", "sqrt", "abs" of a
   real ...), NULL if none. */
const ScalarRule *sr_builtin(const char *name);
/* Is partial `which` (0: d/da, 1: d/db, 2: d/dc) a constant (the instruction that
   gives it is a CONST), and which?  The JIT then saves nothing for it. */
bool sr_partial_const(const ScalarRule *r, int which, double *k);
/* The evaluator of descriptions (dist_kernel.c's, run on a rule): the
   reference the tests hold the C and the JIT to. */
double sr_eval(const ScalarRule *r, double a, double b, double *da, double *db);
/* ... of a rule of up to three operands, and its ok (true without one) */
double sr_eval3(const ScalarRule *r, double a, double b, double c, double *da, double *db,
                double *dc, bool *ok);
/* Well formed: registers read before written, partials reading only the
   operands, v and themselves, functions called in range. */
bool sr_valid(const ScalarRule *r);

#endif
