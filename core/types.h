/* types.h — the static types of the checked program and of the IR, and the
 * declared constraints of variables.
 *
 * A Type is a base (scalar, vector, matrix or string) plus a number of array
 * dimensions.  Sizes are not part of the static type: they are runtime values
 * (checked when a value is declared, read from data or sampled).
 */
#ifndef PPL_TYPES_H
#define PPL_TYPES_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
  TY_VOID = 0,
  TY_INT,
  TY_REAL,
  TY_BOOL,
  TY_STRING,
  TY_VECTOR,
  TY_ROWVEC,
  TY_MATRIX,
  TY_DIST, /* only as the type of a distribution expression inside ~ / observe */
  TY_NETWORK, /* `param network f = mlp(...)`: only called, f(x); its value is the
                 flat weight vector (stdlib/nn.h) */
  TY_FLOW,    /* `param flow q = realnvp(...)`: only drawn from, z ~ flow(q); its
                 value is the flat weight vector (stdlib/realnvp.h) */
} TyBase;

typedef struct Type {
  uint8_t base;  /* TyBase */
  uint8_t ndims; /* 0 = not an array; k = k-dimensional array of `base` */
} Type;

static inline Type ty_make(TyBase b, int ndims) { Type t = {(uint8_t)b, (uint8_t)ndims}; return t; }
static inline bool ty_eq(Type a, Type b) { return a.base == b.base && a.ndims == b.ndims; }
static inline bool ty_is_scalar_num(Type t) {
  return t.ndims == 0 && (t.base == TY_INT || t.base == TY_REAL || t.base == TY_BOOL);
}
/* "real", "vector", "real[,]" (2-d array of real), "vector[]" ... */
const char *ty_name(Type t);

/* Declared constraints.  Scalar bounds use lower/upper; the structured ones come
 * from the type name (simplex[K] ...) and need no bounds. */
typedef enum {
  CON_NONE = 0,
  CON_LOWER,        /* lower bound only */
  CON_UPPER,        /* upper bound only */
  CON_LOWER_UPPER,  /* both */
  CON_SIMPLEX,
  CON_ORDERED,
  CON_POS_ORDERED,
  CON_UNIT_VECTOR,
  CON_CHOL_CORR,
  CON_COV,
  CON_CORR,         /* corr_matrix[K] */
  CON_CHOL_COV,     /* cholesky_factor_cov[K] */
} ConKind;

#endif
