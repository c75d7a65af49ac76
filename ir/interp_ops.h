/* interp_ops.h — the value operations of the interpreter (private to ir/).
 *
 * Arithmetic, indexing, indexed stores, declarations and the conversions the
 * IR asks for.  They know nothing about frames or handlers, so the JIT's
 * runtime helpers can reuse them later.  Every operation that can fail returns
 * false with a position-less message in err; the interpreter adds the
 * instruction's position.
 *
 * Results are always fresh (never alias an operand), except op_convert, which
 * says through *fresh whether it allocated.
 */
#ifndef PPL_INTERP_OPS_H
#define PPL_INTERP_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "../stdlib/ad.h"
#include "../stdlib/scalar_rule.h"
#include "ir.h"

/* a op b for every IrOp binary operator (OP_ADD ... OP_OR). */
bool op_binary(int op, Value a, Value b, Value *out, char *err, size_t errsz);
/* op a for OP_NEG, OP_NOT, OP_PLUS, OP_TRANSPOSE */
bool op_unary(int op, Value a, Value *out, char *err, size_t errsz);
/* The same for AD runs: the result's reals get tape nodes (on T) when an
   operand carries nodes.  Indexing, stores, conversions and transposes need
   no tape: they always move the elements' nodes along with their values. */
bool op_binary_ad(Tape *T, int op, Value a, Value b, Value *out, char *err, size_t errsz);
bool op_unary_ad(Tape *T, int op, Value a, Value *out, char *err, size_t errsz);

/* v[ix...]: 1-based, with range checks; index registers are read from regs. */
bool op_index(Value v, int nidx, const IrIndex *ix, const Value *regs, Value *out,
              char *err, size_t errsz);
/* The same, but a container reached through single indices alone is v's own
 * (no copy): for a v that no one writes in place (shared registers, which are
 * copied before a write), so the result can be shared as well. */
bool op_index_view(Value v, int nidx, const IrIndex *ix, const Value *regs, Value *out,
                   char *err, size_t errsz);
/* (*dst)[ix...] = rhs in place; *dst must be exclusively owned by the caller.
   rhs is copied where it lands in the container; ints become reals when the
   slot holds reals (or `base` is TY_REAL for unset slots). */
bool op_store(Value *dst, int nidx, const IrIndex *ix, const Value *regs, Value rhs,
              TyBase base, char *err, size_t errsz);

/* A new value of type t with the given sizes (array dims, then vector length
   or matrix rows, cols): reals NaN, ints 0, bools false, strings "". */
bool op_decl(Type t, int nsizes, const int64_t *sizes, Value *out, char *err, size_t errsz);

/* v converted to type t where the IR asks for it: int -> real (scalars and
   arrays), bool <-> int, real[] <-> vector / row_vector.  Returns v itself
   (*fresh = false) when no conversion is needed. */
Value op_convert(Value v, Type t, bool *fresh);

/* Does v have the kind of type t and exactly the given sizes? */
bool op_shape_ok(Value v, Type t, int nsizes, const int64_t *sizes);
/* Same kind and sizes (arrays are rectangular: the first element stands for all). */
bool op_same_shape(Value a, Value b);
/* Sizes of v in the order of IR sizes (array dims, then vector/matrix dims);
   returns the count, at most max. */
int op_shape_sizes(Value v, int *sizes, int max);
/* "vector of 3", "matrix of 2x3", "array of 4", "real" */
const char *op_shape_desc(Value v);

/* Truth value of a condition: bools, ints (non-zero) and reals (non-zero). */
static inline bool op_truthy(Value v) {
  switch (v.k) {
  case V_BOOL: return v.b;
  case V_INT: return v.i != 0;
  case V_REAL: return v.r != 0;
  default: return false;
  }
}

/* The scalar rule (stdlib/scalar_rule.h) of a real operator: +, -, *, .*,
   /, ./, ^, % and unary -; NULL for others.  The interpreter calls its C,
   the JIT emits its description. */
const ScalarRule *op_scalar_rule(int op);

#endif
