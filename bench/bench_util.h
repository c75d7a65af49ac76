/* bench_util.h — what the benchmark programs share: a model's source text to
 * an interpreter (parse, check, lower), before its data are loaded. */
#ifndef PPL_BENCH_UTIL_H
#define PPL_BENCH_UTIL_H

#include <string.h>

#include "ir/interp.h"
#include "lang/check.h"
#include "parser/ast.h"

/* NULL with the first error in d. */
static inline Interp *bench_program(const char *src, size_t len, const char *name, Diag *d) {
  Ast *a = src ? parse_string(src, len, name, d) : NULL;
  CheckedProgram *cp = a ? check_program(a, name, 0, NULL, d) : NULL;
  IrProgram *p = cp ? ir_lower(cp, d) : NULL;
  return p ? interp_new(p, NULL) : NULL;
}

#endif
