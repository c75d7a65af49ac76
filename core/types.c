/* types.c — the one place that spells a static type for messages and listings.
 *
 * The checker, the builtins, the distributions, the IR printer and the
 * interpreter all name types in their messages; they share this function so
 * that "real[,]" reads the same everywhere. */
#include "types.h"

#include "value.h"

static const char *ty_base_name(int b) {
  switch (b) {
  case TY_VOID: return "void";
  case TY_INT: return "int";
  case TY_REAL: return "real";
  case TY_BOOL: return "bool";
  case TY_STRING: return "string";
  case TY_VECTOR: return "vector";
  case TY_ROWVEC: return "row_vector";
  case TY_MATRIX: return "matrix";
  case TY_DIST: return "distribution";
  case TY_NETWORK: return "network";
  case TY_FLOW: return "flow";
  default: return "?";
  }
}

const char *ty_name(Type t) {
  const char *b = ty_base_name(t.base);
  if (t.ndims == 0) return b;
  char dims[260];
  int n = 0;
  dims[n++] = '[';
  for (int i = 1; i < t.ndims; i++) dims[n++] = ',';
  dims[n++] = ']';
  dims[n] = 0;
  return gc_printf("%s%s", b, dims);
}
