/* check.h — semantic analysis: scopes, types, shapes of literals, the rules for
 * `~`, and which names are data, latents, locals or functions.
 *
 * The checker annotates the AST in place (Ast.ty, Ast.ref, Ast.builtin,
 * Ast.dist, Ast.block) and returns the pieces the lowering needs.
 */
#ifndef PPL_CHECK_H
#define PPL_CHECK_H

#include "../parser/ast.h"

/* A function supplied by the host program (ppl_register_function, _ex, or
 * ppl_register_string_function: strings in and out, str_fn): it returns a real; its arguments are reals, or with kinds (one letter each)
 * 'r' a real and 'v' a vector of reals (vector, row_vector or 1-d array). */
typedef struct HostFunc {
  const char *name;
  int arity;
  double (*fn)(void *ud, const double *args, int nargs, int *err);
  void *ud;
  const char *kinds;  /* NULL: arity reals (ppl_register_function) */
  /* ppl_register_function_ex's: the reals of every argument in order
     (lens[i] each), the partials into grad when it is not NULL */
  double (*fn_ex)(void *ud, int nargs, const int *lens, const double *x, double *grad, int *err);
  bool has_grad;      /* fn_ex fills grad (else numerical differences) */
  /* ppl_register_string_function's: arity strings in, a malloc'd string out
     (*out), 0; or non-zero with a message in err.  The call's type is string. */
  int (*str_fn)(void *ud, int nargs, const char *const *args, char **out, char *err,
                size_t errsz);
} HostFunc;

typedef struct CheckedProgram {
  const char *file;
  Ast *program;
  int nfuncs;
  Ast **funcs;      /* AST_FUNCDEF in source order */
  Ast *data, *model, *generated; /* AST_BLOCK or NULL */
  Ast *guide;       /* the `guide` block (variational inference), or NULL */
  int nhost;
  const HostFunc *host;
  const struct DistRegistry *fams; /* the context's families (ppl_register_family), or NULL */
  /* Warnings (the program is valid but probably not what was meant), in
     source order: "model.ppl:3:12: warning: integer division ...". */
  int nwarnings;
  const char **warnings;
} CheckedProgram;

/* Errors (DIAG_TYPE) name the place: "model.ppl:7:12: unknown variable 'thta'",
 * "... '~' needs data or a new declaration on its left: 'mu' is a latent; use
 * observe() or declare a new variable", "... normal expects 2 arguments, got 3",
 * "... cannot assign vector to real", "... function 'f' does not return a value
 * on every path", ... */
CheckedProgram *check_program(Ast *program, const char *file, int nhost,
                              const HostFunc *host, Diag *d);
/* The same, with families registered by the host (stdlib/dist.h): found
   before the built-in ones. */
CheckedProgram *check_program_fams(Ast *program, const char *file, int nhost,
                                   const HostFunc *host, const struct DistRegistry *fams, Diag *d);

#endif
