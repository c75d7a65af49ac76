/* ast.c — construction of AST nodes, operator and type names, and ast_dump.
 *
 * ast_dump writes a tree as one line of S-expressions; the parser tests
 * compare against it, so the format is part of the test contract:
 *
 *   (program ITEM...)                  ITEM: a function or a block
 *   (block data|model|generated STMT...)
 *   (fun RET NAME (TYPE NAME)... BODY) a function definition
 *   (stmts STMT...)                    a braced block; `;` is (stmts)
 *   (decl TYPE NAME [D1,D2])           dims after the name (either syntax)
 *   (decl TYPE NAME = E) (decl TYPE NAME ~ CALL)
 *   (= LV E) (+= LV E) ...             assignments, op as written
 *   (~ E CALL) (target+= E)            tilde, target
 *   (if C S) (if C S S) (while C S)
 *   (for I LO HI S) (for X in E S)     range loop, element loop
 *   (break) (continue) (return) (return E)
 *   CALL                               expression statement: just the call
 * Types print as written, with expressions dumped inside:
 *   real  real<lower=0,upper=(+ a 1)>  vector[K]  matrix[N,K]  real[,] (signatures)
 * Expressions:
 *   3  2.5  2.0  true  "text\n"        literals (reals always show '.', 'e', inf or nan)
 *   x                                  a variable: a bare name
 *   (call f A...)  (index E I...)  (slice LO HI) with _ for a missing bound
 *   (OP A B) (OP A)                    binary and unary, OP as written: + .* %/% && ...
 *   (' E)                              transpose
 *   (? C A B)  (array A...)  (rowvec A...)
 */
#include <stddef.h> /* ast.h uses size_t without including it */

#include "ast.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/value.h"

Ast *ast_new(AstKind kind, SrcPos pos) {
  Ast *a = gc_alloc(sizeof(Ast));
  a->kind = kind;
  a->pos = pos;
  return a;
}

AstType *ast_type_new(AstTypeBase base, SrcPos pos) {
  AstType *t = gc_alloc(sizeof(AstType));
  t->base = base;
  t->pos = pos;
  return t;
}

void ast_list_push(AstList *l, Ast *item) {
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 4;
    Ast **items = gc_alloc(sizeof(Ast *) * (size_t)cap);
    if (l->n) memcpy(items, l->items, sizeof(Ast *) * (size_t)l->n);
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = item;
}

const char *ast_op_name(AstOp op) {
  switch (op) {
  case AOP_NONE: return "?";
  case AOP_ADD: return "+";
  case AOP_SUB: return "-";
  case AOP_MUL: return "*";
  case AOP_DIV: return "/";
  case AOP_MOD: return "%";
  case AOP_POW: return "^";
  case AOP_EMUL: return ".*";
  case AOP_EDIV: return "./";
  case AOP_IDIV: return "%/%";
  case AOP_EQ: return "==";
  case AOP_NE: return "!=";
  case AOP_LT: return "<";
  case AOP_LE: return "<=";
  case AOP_GT: return ">";
  case AOP_GE: return ">=";
  case AOP_AND: return "&&";
  case AOP_OR: return "||";
  case AOP_NEG: return "-";
  case AOP_NOT: return "!";
  case AOP_PLUS: return "+";
  case AOP_TRANSPOSE: return "'";
  case AOP_ASSIGN: return "=";
  }
  return "?";
}

const char *ast_type_base_name(AstTypeBase b) {
  switch (b) {
  case TB_VOID: return "void";
  case TB_INT: return "int";
  case TB_REAL: return "real";
  case TB_BOOL: return "bool";
  case TB_STRING: return "string";
  case TB_VECTOR: return "vector";
  case TB_ROWVEC: return "row_vector";
  case TB_MATRIX: return "matrix";
  case TB_SIMPLEX: return "simplex";
  case TB_ORDERED: return "ordered";
  case TB_POS_ORDERED: return "positive_ordered";
  case TB_UNIT_VECTOR: return "unit_vector";
  case TB_CHOL_CORR: return "cholesky_factor_corr";
  case TB_COV: return "cov_matrix";
  case TB_CORR: return "corr_matrix";
  case TB_CHOL_COV: return "cholesky_factor_cov";
  case TB_NETWORK: return "network";
  case TB_FLOW: return "flow";
  }
  return "?";
}

/* ---- ast_dump ---- */

typedef struct Buf {
  char *s;
  size_t n, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *s2 = gc_alloc_atomic(cap);
    if (b->n) memcpy(s2, b->s, b->n);
    b->s = s2;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_fmt(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(Buf *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Shortest text that reads back as the same double, always marked as real. */
static void dump_real(Buf *b, double r) {
  char tmp[40];
  if (isnan(r)) {
    buf_str(b, "nan");
    return;
  }
  if (isinf(r)) {
    buf_str(b, r > 0 ? "inf" : "-inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, r);
    if (strtod(tmp, NULL) == r) break;
  }
  buf_str(b, tmp);
  if (!strpbrk(tmp, ".e")) buf_str(b, ".0");
}

static void dump_string(Buf *b, const char *s) {
  buf_str(b, "\"");
  for (; *s; s++) {
    switch (*s) {
    case '\n': buf_str(b, "\\n"); break;
    case '\t': buf_str(b, "\\t"); break;
    case '"': buf_str(b, "\\\""); break;
    case '\\': buf_str(b, "\\\\"); break;
    default: buf_put(b, s, 1);
    }
  }
  buf_str(b, "\"");
}

static void dump(Buf *b, const Ast *a);

static void dump_list(Buf *b, const AstList *l) {
  for (int i = 0; i < l->n; i++) {
    buf_str(b, " ");
    dump(b, l->items[i]);
  }
}

/* [e1,e2]; signature dims (NULL entries) print as [] or [,] */
static void dump_dims(Buf *b, int n, Ast *const *dims) {
  buf_str(b, "[");
  for (int i = 0; i < n; i++) {
    if (i) buf_str(b, ",");
    if (dims[i]) dump(b, dims[i]);
  }
  buf_str(b, "]");
}

/* The type without array dimensions (those follow the name in a decl). */
static void dump_type(Buf *b, const AstType *t) {
  buf_str(b, ast_type_base_name(t->base));
  if (t->lower || t->upper) {
    buf_str(b, "<");
    if (t->lower) {
      buf_str(b, "lower=");
      dump(b, t->lower);
    }
    if (t->upper) {
      if (t->lower) buf_str(b, ",");
      buf_str(b, "upper=");
      dump(b, t->upper);
    }
    buf_str(b, ">");
  }
  if (t->size1) {
    Ast *sizes[2] = {t->size1, t->size2};
    dump_dims(b, t->size2 ? 2 : 1, sizes);
  }
}

static void dump_opt(Buf *b, const Ast *a) {
  if (a)
    dump(b, a);
  else
    buf_str(b, "_");
}

static void dump(Buf *b, const Ast *a) {
  if (!a) {
    buf_str(b, "null");
    return;
  }
  switch (a->kind) {
  case AST_PROGRAM:
    buf_str(b, "(program");
    dump_list(b, &a->list);
    buf_str(b, ")");
    break;
  case AST_BLOCK:
    buf_fmt(b, "(block %s", a->name);
    dump_list(b, &a->list);
    buf_str(b, ")");
    break;
  case AST_FUNCDEF:
    buf_str(b, "(fun ");
    dump_type(b, a->type);
    if (a->type->ndims) dump_dims(b, a->type->ndims, a->type->dims);
    buf_str(b, " ");
    buf_str(b, a->name);
    dump_list(b, &a->list);
    buf_str(b, " ");
    dump(b, a->a);
    buf_str(b, ")");
    break;
  case AST_PARAM:
    buf_str(b, "(");
    dump_type(b, a->type);
    if (a->type->ndims) dump_dims(b, a->type->ndims, a->type->dims);
    buf_str(b, " ");
    buf_str(b, a->name);
    buf_str(b, ")");
    break;
  case AST_STMTS:
    buf_str(b, "(stmts");
    dump_list(b, &a->list);
    buf_str(b, ")");
    break;
  case AST_DECL:
    buf_str(b, a->is_param ? "(param " : "(decl ");
    dump_type(b, a->type);
    buf_str(b, " ");
    buf_str(b, a->name);
    if (a->type->ndims) {
      buf_str(b, " ");
      dump_dims(b, a->type->ndims, a->type->dims);
    }
    if (a->a) {
      buf_str(b, " = ");
      dump(b, a->a);
    }
    if (a->b) {
      buf_str(b, " ~ ");
      dump(b, a->b);
    }
    buf_str(b, ")");
    break;
  case AST_ASSIGN:
    buf_fmt(b, "(%s%s ", a->op == AOP_ASSIGN ? "" : ast_op_name(a->op), "=");
    dump(b, a->a);
    buf_str(b, " ");
    dump(b, a->b);
    buf_str(b, ")");
    break;
  case AST_TILDE:
    buf_str(b, "(~ ");
    dump(b, a->a);
    buf_str(b, " ");
    dump(b, a->b);
    buf_str(b, ")");
    break;
  case AST_TARGET:
    buf_str(b, "(target+= ");
    dump(b, a->a);
    buf_str(b, ")");
    break;
  case AST_EXPRSTMT:
    dump(b, a->a);
    break;
  case AST_IF:
    buf_str(b, "(if ");
    dump(b, a->a);
    buf_str(b, " ");
    dump(b, a->b);
    if (a->c) {
      buf_str(b, " ");
      dump(b, a->c);
    }
    buf_str(b, ")");
    break;
  case AST_FOR:
    buf_fmt(b, "(for %s ", a->name);
    if (!a->b) buf_str(b, "in ");
    dump(b, a->a);
    if (a->b) {
      buf_str(b, " ");
      dump(b, a->b);
    }
    buf_str(b, " ");
    dump(b, a->c);
    buf_str(b, ")");
    break;
  case AST_WHILE:
    buf_str(b, "(while ");
    dump(b, a->a);
    buf_str(b, " ");
    dump(b, a->b);
    buf_str(b, ")");
    break;
  case AST_BREAK: buf_str(b, "(break)"); break;
  case AST_CONTINUE: buf_str(b, "(continue)"); break;
  case AST_RETURN:
    buf_str(b, "(return");
    if (a->a) {
      buf_str(b, " ");
      dump(b, a->a);
    }
    buf_str(b, ")");
    break;
  case AST_INT: buf_fmt(b, "%lld", (long long)a->ival); break;
  case AST_REAL: dump_real(b, a->rval); break;
  case AST_BOOL: buf_str(b, a->ival ? "true" : "false"); break;
  case AST_STRING: dump_string(b, a->sval); break;
  case AST_VAR: buf_str(b, a->name); break;
  case AST_CALL:
    buf_str(b, "(call ");
    buf_str(b, a->name);
    dump_list(b, &a->list);
    buf_str(b, ")");
    break;
  case AST_INDEX:
    buf_str(b, "(index ");
    dump(b, a->a);
    dump_list(b, &a->list);
    buf_str(b, ")");
    break;
  case AST_SLICE:
    buf_str(b, "(slice ");
    dump_opt(b, a->a);
    buf_str(b, " ");
    dump_opt(b, a->b);
    buf_str(b, ")");
    break;
  case AST_UNARY:
    buf_fmt(b, "(%s ", ast_op_name(a->op));
    dump(b, a->a);
    buf_str(b, ")");
    break;
  case AST_BINARY:
    buf_fmt(b, "(%s ", ast_op_name(a->op));
    dump(b, a->a);
    buf_str(b, " ");
    dump(b, a->b);
    buf_str(b, ")");
    break;
  case AST_TERNARY:
    buf_str(b, "(? ");
    dump(b, a->a);
    buf_str(b, " ");
    dump(b, a->b);
    buf_str(b, " ");
    dump(b, a->c);
    buf_str(b, ")");
    break;
  case AST_ARRAY:
    buf_str(b, "(array");
    dump_list(b, &a->list);
    buf_str(b, ")");
    break;
  case AST_ROWVEC:
    buf_str(b, "(rowvec");
    dump_list(b, &a->list);
    buf_str(b, ")");
    break;
  case AST_CONVERT:
    buf_fmt(b, "(%s ", ty_name(a->ty));
    dump(b, a->a);
    buf_str(b, ")");
    break;
  case AST_NAMED:
    buf_fmt(b, "(= %s ", a->name);
    dump(b, a->a);
    buf_str(b, ")");
    break;
  }
}

char *ast_dump(const Ast *a) {
  Buf b = {NULL, 0, 0};
  dump(&b, a);
  if (!b.s) return gc_strdup("");
  return b.s;
}
