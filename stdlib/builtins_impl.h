/* builtins_impl.h — internals shared by stdlib/builtins*.c; not a public interface.
 *
 * The builtins are split by subject (math, linear algebra, strings,
 * distributions); each part exports one table and builtins.c searches them.
 * Most entries describe their overloads as a signature string checked by
 * bi_check_sig, so the type rules read like Stan's function reference.
 */
#ifndef PPL_BUILTINS_IMPL_H
#define PPL_BUILTINS_IMPL_H

#include <stdarg.h>

#include "builtins.h"

/* What a table entry's `data` points to. */
typedef struct BiSpec {
  /* Overloads, e.g. "(vector,vector)real;(real[],real[])real"; types are
     int real bool string vector row_vector matrix with [] / [,] / [,,] */
  const char *sig;
  double (*f1)(double);         /* elementwise kernel */
  double (*f2)(double, double); /* binary kernel */
  int op;                       /* variant selector of a shared evaluator */
  bool (*indom)(double);        /* domain of f1 (NULL = every input) */
  const char *dom;              /* "must be in [0, 1]": message when !indom */
} BiSpec;

#define BI_SPEC(b) ((const BiSpec *)(b)->data)

#define BI_CHECK_ARGS                                                                              \
  const Builtin *b, int nargs, const Type *args, Type *ret, char *err, size_t errsz
#define BI_EVAL_ARGS                                                                               \
  const Builtin *b, BuiltinCtx *ctx, int nargs, const Value *args, Value *out, char *err,          \
      size_t errsz

/* A table entry whose type rule is its signature string. */
#define BI_SIG(nm, sg, ev, opv)                                                                    \
  { nm, bi_check_sig, ev, &(const BiSpec){.sig = sg, .op = opv}, false }

/* The parts' tables, each ending with a NULL name. */
extern const Builtin bi_math_table[];
extern const Builtin bi_linalg_table[];
extern const Builtin bi_str_table[];
extern const Builtin bi_hmm_table[];
/* NAME_rng, NAME_lpdf, ... built on first use from dist_all(). */
const Builtin *bi_dist_lookup(const char *name);
/* Whether b is a family's lcdf, lccdf or cdf builtin, and which (upper: lccdf;
   prob: cdf): a pointer test, so the AD path of every other builtin costs
   nothing here. */
bool bi_dist_cdf_kind(const Builtin *b, bool *upper, bool *prob);
/* NAME_lpdf / NAME_lpmf with derivatives (builtin_eval_ad): *handled is false
   when b is not one of them. */
/* The linear-algebra rules (builtins_adla.c), by name; *handled is false
   when name has none.  *out is the evaluator's (private) result. */
bool bi_ad_linalg(Tape *T, const Builtin *b, int nargs, const Value *args, Value *out,
                  char *err, size_t errsz, bool *handled);
/* hmm_log_marginal's value and rule (builtins_hmm.c) from one forward pass:
   one node over all its inputs. */
bool bi_ad_hmm(Tape *T, const Builtin *b, const Value *args, Value *out, char *err,
               size_t errsz);
bool bi_dist_eval_ad(const Builtin *b, Tape *t, int nargs, const Value *args, Value *out,
                     char *err, size_t errsz, bool *handled);

/* ---- type rules ---- */
bool bi_check_sig(BI_CHECK_ARGS);
/* "(vector, real)" into buf */
const char *bi_types_str(int nargs, const Type *args, char *buf, size_t n);
/* int, real, bool (bool counts as a number, like C) */
bool bi_ty_num(Type t);
/* a number or a container of numbers: arrays of int/real/vector/row_vector/matrix */
bool bi_ty_numlike(Type t);
bool bi_arity_fail(const Builtin *b, int nargs, const char *want, char *err, size_t errsz);

/* ---- errors: all return false ---- */
bool bi_fail(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* prefixed with "NAME: " */
bool bi_efail(const Builtin *b, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool bi_vefail(const Builtin *b, char *err, size_t errsz, const char *fmt, va_list ap);

/* ---- values ---- */
bool bi_is_ten(Value v); /* vector, row_vector or matrix */
bool bi_is_num(Value v); /* int, real or bool */
int64_t bi_int(Value v); /* int (or bool) value */
/* A 1-d sequence of numbers (real[], int[], vector, row_vector; a matrix gives
 * its elements column-major) as doubles; *d may alias the value's storage. */
bool bi_seq(const Builtin *b, Value v, const double **d, int *n, char *err, size_t errsz);
/* A tensor argument of one of the given kinds (bit mask of 1 << V_VEC ...). */
bool bi_ten(const Builtin *b, Value v, unsigned kinds, ValTen **t, char *err, size_t errsz);
Value bi_ten_new(ValKind k, int rows, int cols);
/* A real array of n elements. */
Value bi_real_arr(const double *d, int n);
/* %.15g with no trailing zeros; inf, -inf, nan */
const char *bi_fmt_real(double x, char *buf, size_t n);

#define BI_K(k) (1u << (k))
#define BI_KVEC (BI_K(V_VEC) | BI_K(V_ROWVEC))
#define BI_KTEN (BI_K(V_VEC) | BI_K(V_ROWVEC) | BI_K(V_MAT))

#endif
