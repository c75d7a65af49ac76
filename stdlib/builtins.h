/* builtins.h — the functions a model can call: math, containers, strings,
 * and the distribution functions NAME_rng / NAME_lpdf / NAME_lpmf / NAME_lcdf /
 * NAME_lccdf derived from every family in stdlib/dist.h.
 *
 * Each builtin has a static type rule (used by the checker) and an evaluator
 * (used by the interpreter).  Overloads are resolved inside `check` / `eval` by
 * argument types/kinds, like Stan's function signatures.
 */
#ifndef PPL_BUILTINS_H
#define PPL_BUILTINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../core/types.h"
#include "../core/value.h"
#include "ad.h"
#include "rng.h"

typedef struct BuiltinCtx {
  Rng *rng;          /* for *_rng */
  FILE *out;         /* where print() writes (stdout for the CLI) */
} BuiltinCtx;

typedef struct Builtin {
  const char *name;
  /* Static typing: true and *ret set if the call is valid; otherwise a message
     such as "exp expects (real) or a container of reals, got (string)". */
  bool (*check)(const struct Builtin *b, int nargs, const Type *args, Type *ret,
                char *err, size_t errsz);
  /* Evaluation: false with a message for domain errors ("cholesky_decompose:
     matrix is not positive definite"); the interpreter adds the position. */
  bool (*eval)(const struct Builtin *b, BuiltinCtx *ctx, int nargs, const Value *args,
               Value *out, char *err, size_t errsz);
  const void *data;  /* e.g. the DistFamily of NAME_rng, a libm function pointer */
  bool uses_rng;     /* *_rng: random, not allowed where gradients are needed */
} Builtin;

/* A host's function (ppl_register_function, _ex) is a Builtin without a
 * check (the checker types its calls from the registration) whose data is
 * one of these: the function on its arguments' reals, flattened in order
 * (lens[i] of argument i), giving the value and, when grad is not NULL, the
 * partials with respect to each of x. */
typedef struct BuiltinHost {
  bool (*eval)(const struct BuiltinHost *h, int nargs, const int *lens, const double *x,
               double *val, double *grad, char *err, size_t errsz);
  bool has_grad;   /* eval fills grad: the host's derivative; else gradients
                      take numerical differences of eval */
  const void *reg; /* the registration (the checker's HostFunc) */
} BuiltinHost;
/* b's BuiltinHost, or NULL for a built-in function. */
const BuiltinHost *builtin_host(const Builtin *b);

/* NULL if unknown. Distribution-derived builtins are created on first lookup
 * and cached (thread-safe). */
const Builtin *builtin_lookup(const char *name);

/* Does v (any nesting) hold a real that carries a tape node? */
bool builtin_has_nodes(Value v);
/* b->eval plus the result's nodes on tape t, for calls whose arguments carry
 * nodes (AD runs of the interpreter).  A builtin without a derivative rule
 * whose result has reals is an error: "gradient of 'fdim' is not
 * implemented"; int, bool and string results need no rule. */
bool builtin_eval_ad(const Builtin *b, BuiltinCtx *ctx, Tape *t, int nargs, const Value *args,
                     Value *out, char *err, size_t errsz);

/* ---- block rules: builtins whose derivative is one matrix-valued node ----
 *
 * gp_exp_quad_cov (and cov_exp_quad, both forms), add_diag,
 * cholesky_decompose, diag_pre_multiply, diag_post_multiply, rows_dot_product
 * and columns_dot_product have a
 * vector-Jacobian product over their whole output (stdlib/linalg_mv.c,
 * builtins_adla.c) instead of one tape node per entry.  The interpreter
 * records it as one block node (stdlib/ad.h); the JIT's runtime calls it
 * directly, with no tape.  Both go through these two functions, so they run
 * the same numbers. */
typedef struct BiBlock BiBlock;
typedef void *(*BiAlloc)(void *ud, size_t bytes);
/* Does b have a block rule? */
bool builtin_has_block(const Builtin *b);
/* What b's product needs after the call, copied (the operands may change
 * afterwards) into memory from alloc(ud, bytes): args and out are the
 * evaluator's operands and result.  NULL when b has no block rule. */
BiBlock *builtin_block_save(const Builtin *b, int nargs, const Value *args, Value out,
                            BiAlloc alloc, void *ud);
/* The evaluator's numbers with no allocation, for the JIT's runtime, where
 * the result lives in its own arena: gp_exp_quad_cov, add_diag, diag_pre/post_multiply of valid
 * operands.  builtin_block_shape gives the result's rows and cols, or false
 * (an operation without this form, or operands the evaluator would refuse:
 * the caller then runs the evaluator, which says why); builtin_block_value
 * then writes the result (column-major) into out, through the same kernels
 * as the evaluator, so with the same bits. */
bool builtin_block_shape(const Builtin *b, int nargs, const Value *args, int *rows, int *cols);
void builtin_block_value(const Builtin *b, int nargs, const Value *args, double *out);
/* Given gout, the adjoint of the result (val_flatten order), ADD the
 * adjoint of operand k into gin[k] (val_flatten order; NULL: not wanted). */
void builtin_block_vjp(const BiBlock *s, const double *gout, double *const *gin);

#endif
