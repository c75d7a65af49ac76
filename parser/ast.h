/* ast.h — the abstract syntax tree produced by the parser (parser/grammar.y).
 *
 * One node struct for every construct keeps the parser and the checker small;
 * the comment on each AstKind says which fields it uses.  All nodes live on the
 * GC heap and are never freed by hand.
 */
#ifndef PPL_AST_H
#define PPL_AST_H

#include <stddef.h>
#include <stdint.h>

#include "../core/diag.h"
#include "../core/types.h"

typedef struct Ast Ast;

typedef struct AstList {
  int n, cap;
  Ast **items;
} AstList;

/* Base types as written. The constrained vector/matrix kinds carry their
 * constraint in the type name (Stan style). */
typedef enum {
  TB_VOID,   /* function return only */
  TB_INT,
  TB_REAL,
  TB_BOOL,
  TB_STRING,
  TB_VECTOR,
  TB_ROWVEC, /* row_vector[n] */
  TB_MATRIX,
  TB_SIMPLEX,        /* simplex[K]: vector */
  TB_ORDERED,        /* ordered[K]: vector */
  TB_POS_ORDERED,    /* positive_ordered[K]: vector */
  TB_UNIT_VECTOR,    /* unit_vector[K]: vector */
  TB_CHOL_CORR,      /* cholesky_factor_corr[K]: K x K matrix */
  TB_COV,            /* cov_matrix[K]: K x K matrix */
  TB_CORR,           /* corr_matrix[K]: K x K matrix */
  TB_CHOL_COV,       /* cholesky_factor_cov[K]: K x K matrix */
  TB_NETWORK,        /* `param network f = mlp(...)` only */
  TB_FLOW,           /* `param flow q = realnvp(...)` only */
} AstTypeBase;

typedef struct AstType {
  AstTypeBase base;
  SrcPos pos;
  Ast *size1, *size2; /* vector[size1], matrix[size1, size2], simplex[size1], ...;
                         NULL in function parameter and return types */
  Ast *lower, *upper; /* <lower=e, upper=e>, either NULL */
  int ndims;          /* array dimensions: real y[N, M] or array[N, M] real y -> 2 */
  Ast **dims;         /* ndims size expressions; all NULL in function signatures
                         (real[] x, array[,] real x) */
} AstType;

typedef enum {
  /* ---- top level ---- */
  AST_PROGRAM,  /* list: items (AST_FUNCDEF and AST_BLOCK) */
  AST_BLOCK,    /* name: "data" | "model" | "guide" | "generated"; list: statements */
  AST_FUNCDEF,  /* name, type: return type, list: params (AST_PARAM), a: body (AST_STMTS) */
  AST_PARAM,    /* name, type */

  /* ---- statements ---- */
  AST_STMTS,    /* list: statements; a braced block { ... } */
  AST_DECL,     /* name, type, a: initializer expr or NULL, b: distribution (AST_CALL) for
                   `T x ~ dist(...)` or NULL.  At most one of a, b is set. */
  AST_ASSIGN,   /* a: lvalue (AST_VAR or AST_INDEX chain), b: expr, op: '=' or one of
                   AOP_ADD, AOP_SUB, AOP_MUL, AOP_DIV, AOP_EMUL, AOP_EDIV for compound assignment */
  AST_TILDE,    /* a: expr observed, b: distribution (AST_CALL) -- `y ~ normal(mu, s);` */
  AST_TARGET,   /* a: expr -- `target += e;` (same as factor(e)) */
  AST_EXPRSTMT, /* a: expr (a call: print, factor, observe, condition, reject, user fn) */
  AST_IF,       /* a: cond, b: then stmt, c: else stmt or NULL */
  AST_FOR,      /* name: loop variable, a: lower bound, b: upper bound (inclusive), c: body.
                   `for (i in a:b)`; with b == NULL, `for (x in a)` iterates over the
                   elements of array/vector a.  A plate, `plate (i in a:b, batch = e)`,
                   is an AST_FOR with sval "plate" and the batch size e (if given) as
                   list.items[0] */
  AST_WHILE,    /* a: cond, b: body */
  AST_BREAK,
  AST_CONTINUE,
  AST_RETURN,   /* a: expr or NULL */

  /* ---- expressions ---- */
  AST_INT,      /* ival */
  AST_REAL,     /* rval */
  AST_BOOL,     /* ival: 0 or 1 */
  AST_STRING,   /* sval (escapes already decoded) */
  AST_VAR,      /* name */
  AST_CALL,     /* name: function or distribution name, list: args */
  AST_INDEX,    /* a: indexed expr, list: indices (each an expr, or AST_SLICE) */
  AST_SLICE,    /* a: lower or NULL, b: upper or NULL  -- `lo:hi`, `lo:`, `:hi`, `:` */
  AST_UNARY,    /* op: AOP_NEG, AOP_NOT, AOP_PLUS, AOP_TRANSPOSE (postfix '); a: operand */
  AST_BINARY,   /* op, a, b */
  AST_TERNARY,  /* a: cond, b: then, c: else */
  AST_ARRAY,    /* list: elements -- `{a, b, c}` array literal */
  AST_ROWVEC,   /* list: elements -- `[a, b, c]` row vector (of row vectors: a matrix) */
  AST_CONVERT,  /* a: a bool expression; ty: the int or real it converts to.  Made by the
                   checker (never parsed) where Stan would use a comparison as 0/1 */
  AST_NAMED,    /* name, a: value -- a named argument `name = a` in a call's list; the
                   checker replaces it by its position (lang/check.c, chk_named) */
} AstKind;

typedef enum {
  AOP_NONE = 0,
  AOP_ADD, AOP_SUB, AOP_MUL, AOP_DIV, AOP_MOD, AOP_POW, /* + - * / % ^ */
  AOP_EMUL, AOP_EDIV, AOP_IDIV,                      /* .* ./ %/% */
  AOP_EQ, AOP_NE, AOP_LT, AOP_LE, AOP_GT, AOP_GE,
  AOP_AND, AOP_OR,
  AOP_NEG, AOP_NOT, AOP_PLUS, AOP_TRANSPOSE,
  AOP_ASSIGN, /* plain '=' in AST_ASSIGN */
} AstOp;

struct Ast {
  AstKind kind;
  SrcPos pos;       /* start of the construct (for binary ops: the operator) */
  const char *name;
  AstOp op;
  Ast *a, *b, *c;
  AstList list;
  AstType *type;
  int64_t ival;
  double rval;
  const char *sval;

  /* Filled by the checker (lang/check.c): */
  Type ty;            /* expressions: static type; AST_DECL/AST_PARAM: the variable's type */
  Ast *ref;           /* AST_VAR: its declaration (AST_DECL, AST_PARAM or AST_FOR);
                         AST_CALL to a user function: its AST_FUNCDEF */
  const struct Builtin *builtin;    /* AST_CALL to a builtin */
  const struct DistFamily *dist;    /* AST_CALL used as a distribution */
  int block;          /* AST_DECL: 0 data, 1 model, 2 generated, 3 function body */
  bool is_param;      /* AST_DECL: `param T x;` (set by the parser), a learnable parameter */
};

Ast *ast_new(AstKind kind, SrcPos pos);
AstType *ast_type_new(AstTypeBase base, SrcPos pos);
void ast_list_push(AstList *l, Ast *item);
const char *ast_op_name(AstOp op);          /* "+", ".*", "&&", ... */
const char *ast_type_base_name(AstTypeBase); /* "real", "simplex", ... */

/* Parse a whole program. `file` names the source in messages. Returns NULL and
 * fills d (DIAG_SYNTAX, "file:line:col: ...") on the first lexical or syntax error.
 * Messages:  "unexpected '*', expecting ...", "unterminated string",
 * "invalid character '@'", "unexpected end of input, expecting ...". */
Ast *parse_string(const char *src, size_t len, const char *file, Diag *d);
/* Reads the file (DIAG_IO "cannot read FILE: reason" on failure) and parses it. */
Ast *parse_file(const char *path, Diag *d);

/* Debug dump of a tree as an S-expression, for parser tests. */
char *ast_dump(const Ast *a);

#endif
