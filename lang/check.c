/* check.c — semantic analysis: names, scopes, static types and the rules of `~`.
 *
 * The checker walks the parsed program once, after collecting every function
 * signature (so recursion and mutual recursion need no forward declarations),
 * and annotates the AST in place for the lowering (ir/lower.c):
 *   Ast.ty       static type of every expression; the variable's type on AST_DECL
 *                and AST_PARAM; the loop variable's type on AST_FOR
 *   Ast.ref      AST_VAR -> its AST_DECL / AST_PARAM / AST_FOR, or the
 *                AST_FUNCDEF it names as the first argument of ode_rk45;
 *                AST_CALL of a user function -> its AST_FUNCDEF
 *   Ast.builtin  AST_CALL of a builtin
 *   Ast.dist     AST_CALL used as a distribution (after ~ or inside observe)
 *   Ast.block    AST_DECL: 0 data, 1 model, 2 generated, 3 function body
 * A call with none of ref/builtin/dist set is a host function or one of the
 * special statements (print, reject, factor, condition, observe), told apart by
 * name.
 *
 * Only the first error is reported (later ones are usually consequences), so
 * every checking function returns early once the Diag has failed.
 */
#include <stddef.h> /* before check.h: parser/ast.h uses size_t without it */

#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stdlib/builtins.h"
#include "../stdlib/dist.h"
#include "../stdlib/nn.h"
#include "../stdlib/realnvp.h"
#include "../core/value.h"

enum { BLK_DATA = 0, BLK_MODEL = 1, BLK_GEN = 2, BLK_FUNC = 3, BLK_GUIDE = 4 };

/* What a name stands for; decides where it may be assigned. */
typedef enum {
  SK_DATA_READ, /* top-level data declaration without initialiser: read from data */
  SK_DATA,      /* any other variable of the data block */
  SK_MODEL,     /* variable of the model block */
  SK_LATENT,    /* declared with ~ (model block or function) */
  SK_LEARN,     /* declared with `param` (top level of the model block) */
  SK_GEN,       /* variable of the generated block */
  SK_LOCAL,     /* function local */
  SK_PARAM,     /* function parameter */
  SK_LOOP,      /* loop variable */
} SymKind;

typedef struct Sym {
  const char *name;
  Ast *decl;
  SymKind kind;
  bool assigned; /* some assignment to it (or an element) was checked already */
  struct Sym *next;
} Sym;

typedef struct Scope {
  Sym *syms;
  struct Scope *up;
} Scope;

typedef struct Checker {
  Diag *d;
  CheckedProgram *cp;
  Scope *scope;
  int block;     /* BLK_* of the code being checked */
  Ast *func;     /* function being checked, or NULL */
  int funcidx;   /* its index in cp->funcs */
  int loops;     /* loop nesting depth */
  int depth;     /* statement nesting inside the block (0 = top level) */
  bool *stoch;   /* per function: samples, observes or factors (transitively after closure) */
  bool *rng;     /* per function: calls a *_rng builtin (transitively after closure) */
  bool *calls;   /* nfuncs x nfuncs call matrix, filled while checking bodies */
  bool closed;   /* stoch and rng are final (function bodies are all checked) */
  int nodecalls, capodecalls;
  Ast **odecalls; /* ode_rk45 calls met in function bodies, checked once closed */
} Checker;

#define FAILED(c) diag_failed((c)->d)

static const Type T_VOID = {TY_VOID, 0};
static const Type T_INT = {TY_INT, 0};
static const Type T_REAL = {TY_REAL, 0};
static const Type T_BOOL = {TY_BOOL, 0};

static const char *const special_names[] = {"print", "reject", "factor", "condition",
                                            "observe", NULL};

__attribute__((format(printf, 3, 4))) static void chk_error(Checker *c, SrcPos pos,
                                                            const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(c->d, DIAG_TYPE, pos, fmt, ap);
  va_end(ap);
}

/* A warning goes on the program, never to a stream: the host decides
 * whether to show it.  The same position is warned about once (a function
 * body may be checked again). */
static void chk_warn(Checker *c, SrcPos pos, const char *msg) {
  CheckedProgram *cp = c->cp;
  const char *at = pos.file ? gc_printf("%s:%d:%d: ", pos.file, pos.line, pos.col)
                            : gc_printf("%d:%d: ", pos.line, pos.col);
  const char *w = gc_printf("%swarning: %s", at, msg);
  for (int i = 0; i < cp->nwarnings; i++)
    if (!strcmp(cp->warnings[i], w)) return;
  const char **ws = gc_alloc(sizeof(char *) * (size_t)(cp->nwarnings + 1));
  if (cp->nwarnings) memcpy(ws, cp->warnings, sizeof(char *) * (size_t)cp->nwarnings);
  ws[cp->nwarnings++] = w;
  cp->warnings = ws;
}

/* How an operand reads in a message: a name or a literal as written,
 * anything longer as "..." (the position points at it). */
static const char *chk_operand(const Ast *e) {
  if (e->kind == AST_VAR) return e->name;
  if (e->kind == AST_INT) return gc_printf("%lld", (long long)e->ival);
  return "(...)";
}

/* int / int is integer division, as in Stan and C: 1 / N is 0 for N > 1.
 * Valid, so a warning, not an error; Stan warns about it the same way. */
static void chk_int_division(Checker *c, const Ast *e) {
  const char *l = chk_operand(e->a), *r = chk_operand(e->b);
  const char *real = e->a->kind == AST_INT ? gc_printf("%lld.0 / %s", (long long)e->a->ival, r)
                                           : gc_printf("1.0 * %s / %s", l, r);
  chk_warn(c, e->pos,
           gc_printf("integer division %s / %s rounds toward zero; use %s for real division "
                     "(or %s %%/%% %s if integer division is meant)",
                     l, r, real, l, r));
}

static const char *block_name(int blk) {
  switch (blk) {
  case BLK_DATA: return "data";
  case BLK_MODEL: return "model";
  case BLK_GEN: return "generated";
  case BLK_GUIDE: return "guide";
  default: return "function";
  }
}

/* ---- types ---------------------------------------------------------------- */

static bool is_int(Type t) { return t.ndims == 0 && t.base == TY_INT; }
static bool is_num(Type t) { return t.ndims == 0 && (t.base == TY_INT || t.base == TY_REAL); }
static bool is_truthy(Type t) { return t.ndims == 0 && (t.base == TY_BOOL || t.base == TY_INT); }
static bool is_linalg(Type t) {
  return t.ndims == 0 && (t.base == TY_VECTOR || t.base == TY_ROWVEC || t.base == TY_MATRIX);
}
static bool is_int_array1(Type t) { return t.ndims == 1 && t.base == TY_INT; }

/* Assignment compatibility: equal types, or ints into reals (also int arrays
   into real arrays of the same dimension). */
static bool assignable(Type to, Type from) {
  if (ty_eq(to, from)) return true;
  return to.ndims == from.ndims && to.base == TY_REAL && from.base == TY_INT;
}

/* Why two types do not match, when a conversion function exists. */
static const char *assign_hint(Type to, Type from) {
  if (to.ndims == 0 && from.ndims == 1 && (from.base == TY_REAL || from.base == TY_INT)) {
    if (to.base == TY_VECTOR) return "; use to_vector()";
    if (to.base == TY_ROWVEC) return "; use to_row_vector()";
  }
  if (to.ndims == 1 && to.base == TY_REAL && from.ndims == 0 &&
      (from.base == TY_VECTOR || from.base == TY_ROWVEC))
    return "; use to_array_1d()";
  if (to.ndims == 0 && to.base == TY_INT && from.ndims == 0 && from.base == TY_REAL)
    return "; reals do not convert to ints implicitly";
  return "";
}

/* Stan has no bool: its comparisons are ints 0/1, stored in ints and reals and
   used in arithmetic (`(age[n] == 2) * beta`).  Where a number is expected, a
   bool converts the same way: *slot, when a bool scalar, is wrapped in an
   AST_CONVERT to `to`.  Returns the type *slot has afterwards. */
static Type bool_to(Ast **slot, TyBase to) {
  Ast *e = *slot;
  if (e->ty.ndims != 0 || e->ty.base != TY_BOOL || (to != TY_INT && to != TY_REAL)) return e->ty;
  Ast *cv = ast_new(AST_CONVERT, e->pos);
  cv->a = e;
  cv->ty = ty_make(to, 0);
  *slot = cv;
  return cv->ty;
}

/* A bool where a value of type `want` is expected: converted when want is an
   int or real scalar (assignment, declaration, argument, return). */
static Type bool_to_want(Ast **slot, Type want) {
  return want.ndims == 0 ? bool_to(slot, (TyBase)want.base) : (*slot)->ty;
}

static bool is_bool(Type t) { return t.ndims == 0 && t.base == TY_BOOL; }

static Type type_of_ast(const AstType *at) {
  TyBase b = TY_VOID;
  switch (at->base) {
  case TB_VOID: b = TY_VOID; break;
  case TB_INT: b = TY_INT; break;
  case TB_REAL: b = TY_REAL; break;
  case TB_BOOL: b = TY_BOOL; break;
  case TB_STRING: b = TY_STRING; break;
  case TB_VECTOR: case TB_SIMPLEX: case TB_ORDERED: case TB_POS_ORDERED: case TB_UNIT_VECTOR:
    b = TY_VECTOR; break;
  case TB_ROWVEC: b = TY_ROWVEC; break;
  case TB_MATRIX: case TB_CHOL_CORR: case TB_COV: case TB_CORR: case TB_CHOL_COV:
    b = TY_MATRIX; break;
  case TB_NETWORK: b = TY_NETWORK; break;
  case TB_FLOW: b = TY_FLOW; break;
  }
  return ty_make(b, at->ndims);
}

/* ---- "did you mean" --------------------------------------------------------- */

/* Optimal string alignment distance (transpositions count 1), capped: names
   longer than 63 characters never get suggestions. */
static int edit_distance(const char *a, const char *b) {
  int n = (int)strlen(a), m = (int)strlen(b);
  if (n > 63 || m > 63) return 99;
  int dp[64][64];
  for (int i = 0; i <= n; i++) dp[i][0] = i;
  for (int j = 0; j <= m; j++) dp[0][j] = j;
  for (int i = 1; i <= n; i++)
    for (int j = 1; j <= m; j++) {
      int cost = a[i - 1] != b[j - 1];
      int v = dp[i - 1][j] + 1;
      if (dp[i][j - 1] + 1 < v) v = dp[i][j - 1] + 1;
      if (dp[i - 1][j - 1] + cost < v) v = dp[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          dp[i - 2][j - 2] + 1 < v)
        v = dp[i - 2][j - 2] + 1;
      dp[i][j] = v;
    }
  return dp[n][m];
}

typedef struct Suggest {
  const char *want;
  const char *best;
  int dist;
} Suggest;

static void suggest_try(Suggest *s, const char *cand) {
  if (!cand || strcmp(cand, s->want) == 0) return;
  int dist = edit_distance(s->want, cand);
  int limit = strlen(s->want) <= 3 ? 1 : 2;
  if (dist <= limit && dist < s->dist) {
    s->dist = dist;
    s->best = cand;
  }
}

/* Builtins cannot be enumerated (builtin_lookup only answers names), so probe
   every name one edit away from the misspelling. */
static void suggest_builtins(Suggest *s) {
  static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
  const char *w = s->want;
  size_t n = strlen(w);
  if (n == 0 || n > 40 || s->dist <= 1) return;
  char buf[48];
  for (size_t i = 0; i <= n; i++) {
    for (const char *ch = alpha; *ch; ch++) {
      /* insertion before position i */
      memcpy(buf, w, i);
      buf[i] = *ch;
      memcpy(buf + i + 1, w + i, n - i + 1);
      if (builtin_lookup(buf)) { suggest_try(s, gc_strdup(buf)); return; }
      if (i < n) { /* substitution at i */
        memcpy(buf, w, n + 1);
        buf[i] = *ch;
        if (builtin_lookup(buf)) { suggest_try(s, gc_strdup(buf)); return; }
      }
    }
    if (i < n) { /* deletion at i */
      memcpy(buf, w, i);
      memcpy(buf + i, w + i + 1, n - i);
      if (n > 1 && builtin_lookup(buf)) { suggest_try(s, gc_strdup(buf)); return; }
    }
    if (i + 1 < n) { /* transposition of i, i+1 */
      memcpy(buf, w, n + 1);
      buf[i] = w[i + 1];
      buf[i + 1] = w[i];
      if (builtin_lookup(buf)) { suggest_try(s, gc_strdup(buf)); return; }
    }
  }
}

static void suggest_dists(const Checker *c, Suggest *s, bool derived) {
  const DistRegistry *reg = c->cp->fams;
  for (int i = 0; reg && i < reg->n; i++) suggest_try(s, reg->fam[i]->name);
  const DistFamily *const *all = dist_all();
  for (int i = 0; all && all[i]; i++) {
    const char *nm = all[i]->name;
    suggest_try(s, nm);
    if (derived) {
      suggest_try(s, gc_printf("%s_rng", nm));
      suggest_try(s, gc_printf("%s_%s", nm, all[i]->discrete ? "lpmf" : "lpdf"));
    }
  }
}

static const char *suggestion_text(const Suggest *s) {
  return s->best ? gc_printf("; did you mean '%s'?", s->best) : "";
}

/* ---- scopes ---------------------------------------------------------------- */

static void scope_push(Checker *c) {
  Scope *s = gc_alloc(sizeof *s);
  s->up = c->scope;
  c->scope = s;
}

static void scope_pop(Checker *c) { c->scope = c->scope->up; }

static Sym *sym_find(Checker *c, const char *name) {
  for (Scope *s = c->scope; s; s = s->up)
    for (Sym *y = s->syms; y; y = y->next)
      if (strcmp(y->name, name) == 0) return y;
  return NULL;
}

static int func_index(const Checker *c, const char *name) {
  for (int i = 0; i < c->cp->nfuncs; i++)
    if (strcmp(c->cp->funcs[i]->name, name) == 0) return i;
  return -1;
}

static const HostFunc *host_find(const Checker *c, const char *name) {
  for (int i = 0; i < c->cp->nhost; i++)
    if (strcmp(c->cp->host[i].name, name) == 0) return &c->cp->host[i];
  return NULL;
}

/* Declares `name` in the innermost scope. No shadowing at all (as in Stan):
   a name visible from here, or naming a function, is an error. */
static void sym_declare(Checker *c, const char *name, Ast *decl, SymKind kind) {
  Sym *old = sym_find(c, name);
  if (old) {
    chk_error(c, decl->pos, "'%s' is already declared at line %d", name, old->decl->pos.line);
    return;
  }
  if (func_index(c, name) >= 0 || host_find(c, name)) {
    chk_error(c, decl->pos, "'%s' is the name of a function; choose another name", name);
    return;
  }
  Sym *y = gc_alloc(sizeof *y);
  y->name = name;
  y->decl = decl;
  y->kind = kind;
  y->next = c->scope->syms;
  c->scope->syms = y;
}

/* ---- expressions ----------------------------------------------------------- */

static Type chk_expr(Checker *c, Ast *e);
static Type chk_call(Checker *c, Ast *e, bool stmt);
static const char *type_text_bounds(const AstType *at, const char *bounds);

static Type chk_binop(Checker *c, SrcPos pos, AstOp op, Type a, Type b) {
  const char *o = ast_op_name(op);
  switch (op) {
  case AOP_AND: case AOP_OR:
    if (!is_truthy(a) || !is_truthy(b)) {
      chk_error(c, pos, "operands of '%s' must be bool or int, got %s and %s", o, ty_name(a),
                ty_name(b));
      return T_VOID;
    }
    return T_BOOL;
  case AOP_EQ: case AOP_NE:
    if ((is_num(a) && is_num(b)) || (ty_eq(a, b) && a.ndims == 0 &&
                                     (a.base == TY_STRING || a.base == TY_BOOL)))
      return T_BOOL;
    chk_error(c, pos, "cannot compare %s and %s with '%s'", ty_name(a), ty_name(b), o);
    return T_VOID;
  case AOP_LT: case AOP_LE: case AOP_GT: case AOP_GE:
    if (is_num(a) && is_num(b)) return T_BOOL;
    chk_error(c, pos, "cannot compare %s and %s with '%s'", ty_name(a), ty_name(b), o);
    return T_VOID;
  default: break;
  }
  bool sa = a.ndims == 0 && a.base == TY_STRING, sb = b.ndims == 0 && b.base == TY_STRING;
  if (sa || sb) {
    if (op == AOP_ADD && sa && sb) return a;
    if (op == AOP_ADD && (is_num(a) || is_num(b)))
      chk_error(c, pos, "cannot add %s and %s; use to_string() to convert the number",
                ty_name(a), ty_name(b));
    else
      chk_error(c, pos, "'%s' cannot be applied to %s and %s", o, ty_name(a), ty_name(b));
    return T_VOID;
  }
  if (a.ndims > 0 || b.ndims > 0) {
    chk_error(c, pos, "arithmetic on arrays is not supported; use a vector");
    return T_VOID;
  }
  if (!(is_num(a) || is_linalg(a)) || !(is_num(b) || is_linalg(b))) {
    chk_error(c, pos, "'%s' cannot be applied to %s and %s", o, ty_name(a), ty_name(b));
    return T_VOID;
  }
  if (op == AOP_MOD || op == AOP_IDIV) {
    if (is_int(a) && is_int(b)) return T_INT;
    chk_error(c, pos, "'%s' needs int operands, got %s and %s", o, ty_name(a), ty_name(b));
    return T_VOID;
  }
  if (op == AOP_POW) {
    if (is_num(a) && is_num(b)) return T_REAL;
    chk_error(c, pos, "'^' needs scalar operands, got %s and %s", ty_name(a), ty_name(b));
    return T_VOID;
  }
  if (is_num(a) && is_num(b)) return is_int(a) && is_int(b) ? T_INT : T_REAL;
  if (is_num(a)) { /* scalar op container broadcasts */
    if (op == AOP_DIV || op == AOP_EDIV || op == AOP_MUL || op == AOP_EMUL || op == AOP_ADD ||
        op == AOP_SUB)
      return b;
  }
  if (is_num(b)) return a;
  /* two containers */
  switch (op) {
  case AOP_ADD: case AOP_SUB: case AOP_EMUL: case AOP_EDIV:
    if (a.base == b.base) return a;
    break;
  case AOP_MUL:
    if (a.base == TY_MATRIX && b.base == TY_VECTOR) return b;
    if (a.base == TY_ROWVEC && b.base == TY_VECTOR) return T_REAL;
    if (a.base == TY_VECTOR && b.base == TY_ROWVEC) return ty_make(TY_MATRIX, 0);
    if (a.base == TY_MATRIX && b.base == TY_MATRIX) return a;
    if (a.base == TY_ROWVEC && b.base == TY_MATRIX) return a;
    if (a.base == b.base) {
      chk_error(c, pos, "cannot multiply %s by %s; use '.*' for elementwise products%s",
                ty_name(a), ty_name(b), a.base == TY_VECTOR ? " or dot_product()" : "");
      return T_VOID;
    }
    break;
  case AOP_DIV:
    chk_error(c, pos, "cannot divide %s by %s; use './' for elementwise division", ty_name(a),
              ty_name(b));
    return T_VOID;
  default: break;
  }
  chk_error(c, pos, "'%s' cannot be applied to %s and %s", o, ty_name(a), ty_name(b));
  return T_VOID;
}

static Type chk_unary(Checker *c, Ast *e) {
  Type t = chk_expr(c, e->a);
  if (FAILED(c)) return T_VOID;
  if (e->op == AOP_NEG || e->op == AOP_PLUS) t = bool_to(&e->a, TY_INT);
  switch (e->op) {
  case AOP_NEG: case AOP_PLUS:
    if (is_num(t) || is_linalg(t)) return t;
    if (t.ndims > 0 && (t.base == TY_INT || t.base == TY_REAL)) {
      chk_error(c, e->pos, "arithmetic on arrays is not supported; use a vector");
      return T_VOID;
    }
    chk_error(c, e->pos, "unary '%s' cannot be applied to %s", ast_op_name(e->op), ty_name(t));
    return T_VOID;
  case AOP_NOT:
    if (is_truthy(t)) return T_BOOL;
    chk_error(c, e->pos, "'!' needs a bool or int, got %s", ty_name(t));
    return T_VOID;
  case AOP_TRANSPOSE:
    if (t.ndims == 0 && t.base == TY_VECTOR) return ty_make(TY_ROWVEC, 0);
    if (t.ndims == 0 && t.base == TY_ROWVEC) return ty_make(TY_VECTOR, 0);
    if (t.ndims == 0 && t.base == TY_MATRIX) return t;
    chk_error(c, e->pos, "cannot transpose %s", ty_name(t));
    return T_VOID;
  default:
    chk_error(c, e->pos, "unknown unary operator");
    return T_VOID;
  }
}

/* One position of an index list: 's' single int, 'k' slice or multi-index
   (keeps the dimension). */
static char chk_one_index(Checker *c, Ast *ix) {
  if (ix->kind == AST_SLICE) {
    Ast *ends[2] = {ix->a, ix->b};
    for (int k = 0; k < 2; k++) {
      if (!ends[k]) continue;
      Type t = chk_expr(c, ends[k]);
      if (FAILED(c)) return 0;
      if (!is_int(t)) {
        chk_error(c, ends[k]->pos, "slice bounds must be ints, got %s", ty_name(t));
        return 0;
      }
    }
    ix->ty = T_VOID;
    return 'k';
  }
  Type t = chk_expr(c, ix);
  if (FAILED(c)) return 0;
  if (is_int(t)) return 's';
  if (is_int_array1(t)) return 'k';
  chk_error(c, ix->pos, "index must be an int or an int array, got %s", ty_name(t));
  return 0;
}

/* Type of t indexed by the positions in kinds[0..n): array dimensions first,
   then a vector's element or a matrix's row and column. */
static Type index_result(Checker *c, SrcPos pos, Type t, int n, const char *kinds) {
  int nd = t.ndims, maxix = nd;
  if (t.base == TY_VECTOR || t.base == TY_ROWVEC) maxix += 1;
  if (t.base == TY_MATRIX) maxix += 2;
  if (n > maxix) {
    if (maxix == 0)
      chk_error(c, pos, "cannot index a value of type %s", ty_name(t));
    else
      chk_error(c, pos, "too many indexes for %s: %d given, at most %d allowed", ty_name(t), n,
                maxix);
    return T_VOID;
  }
  int keep = 0, i = 0;
  for (; i < n && i < nd; i++)
    if (kinds[i] != 's') keep++;
  if (i == n) return ty_make((TyBase)t.base, keep + (nd - i));
  int rest = n - i;
  const char *k = kinds + i;
  TyBase b = (TyBase)t.base;
  if (b == TY_VECTOR || b == TY_ROWVEC) {
    b = k[0] == 's' ? TY_REAL : b;
  } else { /* matrix */
    if (rest == 1)
      b = k[0] == 's' ? TY_ROWVEC : TY_MATRIX;
    else if (k[0] == 's')
      b = k[1] == 's' ? TY_REAL : TY_ROWVEC;
    else
      b = k[1] == 's' ? TY_VECTOR : TY_MATRIX;
  }
  return ty_make(b, keep);
}

static Type chk_index(Checker *c, Ast *e) {
  Type t = chk_expr(c, e->a);
  if (FAILED(c)) return T_VOID;
  int n = e->list.n;
  char *kinds = gc_alloc_atomic((size_t)n + 1);
  for (int i = 0; i < n; i++) {
    kinds[i] = chk_one_index(c, e->list.items[i]);
    if (FAILED(c)) return T_VOID;
  }
  return index_result(c, e->pos, t, n, kinds);
}

/* {a, b, c}: all elements of one type, ints promoting to reals. */
static Type chk_array_lit(Checker *c, Ast *e) {
  if (e->list.n == 0) {
    chk_error(c, e->pos, "empty array literal");
    return T_VOID;
  }
  Type el = T_VOID;
  bool nums = false;
  for (int i = 0; i < e->list.n && !FAILED(c); i++) nums |= is_num(chk_expr(c, e->list.items[i]));
  if (FAILED(c)) return T_VOID;
  for (int i = 0; i < e->list.n; i++) {
    Type t = nums ? bool_to(&e->list.items[i], TY_INT) : e->list.items[i]->ty;
    Ast *x = e->list.items[i];
    if (i == 0) el = t;
    else if (assignable(el, t)) { /* keep el */
    } else if (assignable(t, el)) el = t;
    else {
      chk_error(c, x->pos, "array literal elements must have one type: %s and %s", ty_name(el),
                ty_name(t));
      return T_VOID;
    }
  }
  if (el.ndims >= 250) {
    chk_error(c, e->pos, "array literal nested too deeply");
    return T_VOID;
  }
  return ty_make((TyBase)el.base, el.ndims + 1);
}

/* [a, b, c]: a row vector of scalars, or a matrix of row vectors. */
static Type chk_rowvec_lit(Checker *c, Ast *e) {
  if (e->list.n == 0) {
    chk_error(c, e->pos, "empty row vector literal");
    return T_VOID;
  }
  int nscal = 0, nrow = 0;
  for (int i = 0; i < e->list.n; i++) {
    chk_expr(c, e->list.items[i]);
    if (FAILED(c)) return T_VOID;
    Type t = bool_to(&e->list.items[i], TY_REAL);
    Ast *x = e->list.items[i];
    if (is_num(t)) nscal++;
    else if (t.ndims == 0 && t.base == TY_ROWVEC) nrow++;
    else {
      chk_error(c, x->pos, "row vector literal elements must be reals (or row vectors for a "
                           "matrix), got %s", ty_name(t));
      return T_VOID;
    }
    if (nscal && nrow) {
      chk_error(c, x->pos, "matrix literal mixes reals and row vectors");
      return T_VOID;
    }
  }
  return ty_make(nrow ? TY_MATRIX : TY_ROWVEC, 0);
}

static Type chk_ternary(Checker *c, Ast *e) {
  Type ct = chk_expr(c, e->a);
  if (FAILED(c)) return T_VOID;
  if (!is_truthy(ct)) {
    chk_error(c, e->a->pos, "condition must be bool or int, got %s", ty_name(ct));
    return T_VOID;
  }
  Type a = chk_expr(c, e->b);
  if (FAILED(c)) return T_VOID;
  Type b = chk_expr(c, e->c);
  if (FAILED(c)) return T_VOID;
  if (is_num(a) || is_num(b)) {
    a = bool_to(&e->b, TY_INT);
    b = bool_to(&e->c, TY_INT);
  }
  if (assignable(a, b)) return a;
  if (assignable(b, a)) return b;
  chk_error(c, e->pos, "branches of '?:' have different types: %s and %s", ty_name(a),
            ty_name(b));
  return T_VOID;
}

static Type chk_var(Checker *c, Ast *e) {
  Sym *y = sym_find(c, e->name);
  if (!y) {
    Suggest s = {e->name, NULL, 99};
    for (Scope *sc = c->scope; sc; sc = sc->up)
      for (Sym *z = sc->syms; z; z = z->next) suggest_try(&s, z->name);
    if (func_index(c, e->name) >= 0 || host_find(c, e->name) || builtin_lookup(e->name))
      chk_error(c, e->pos, "'%s' is a function; call it with (...)", e->name);
    else
      chk_error(c, e->pos, "unknown variable '%s'%s", e->name, suggestion_text(&s));
    return T_VOID;
  }
  if (y->decl->ty.base == TY_NETWORK) {
    chk_error(c, e->pos, "'%s' is a network: call it, %s(x)", e->name, e->name);
    return T_VOID;
  }
  if (y->decl->ty.base == TY_FLOW) {
    chk_error(c, e->pos, "'%s' is a flow: draw from it, z ~ flow(%s)", e->name, e->name);
    return T_VOID;
  }
  e->ref = y->decl;
  return y->decl->ty;
}

static Type chk_expr(Checker *c, Ast *e) {
  Type t = T_VOID;
  switch (e->kind) {
  case AST_INT: t = T_INT; break;
  case AST_REAL: t = T_REAL; break;
  case AST_BOOL: t = T_BOOL; break;
  case AST_STRING: t = ty_make(TY_STRING, 0); break;
  case AST_VAR: t = chk_var(c, e); break;
  case AST_CALL: t = chk_call(c, e, false); break;
  case AST_INDEX: t = chk_index(c, e); break;
  case AST_UNARY: t = chk_unary(c, e); break;
  case AST_BINARY: {
    Type a = chk_expr(c, e->a);
    if (FAILED(c)) return T_VOID;
    Type b = chk_expr(c, e->b);
    if (FAILED(c)) return T_VOID;
    /* bools are numbers 0/1 in arithmetic and comparisons with numbers */
    bool logic = e->op == AOP_AND || e->op == AOP_OR ||
                 ((e->op == AOP_EQ || e->op == AOP_NE) && is_bool(a) && is_bool(b));
    if (!logic) {
      a = bool_to(&e->a, TY_INT);
      b = bool_to(&e->b, TY_INT);
    }
    t = chk_binop(c, e->pos, e->op, a, b);
    if (e->op == AOP_DIV && t.ndims == 0 && t.base == TY_INT) chk_int_division(c, e);
    break;
  }
  case AST_TERNARY: t = chk_ternary(c, e); break;
  case AST_ARRAY: t = chk_array_lit(c, e); break;
  case AST_ROWVEC: t = chk_rowvec_lit(c, e); break;
  case AST_CONVERT: /* made by an earlier check of the same function body */
    chk_expr(c, e->a);
    t = e->ty;
    break;
  case AST_SLICE:
    chk_error(c, e->pos, "a slice 'a:b' can only be used as an index");
    break;
  default:
    chk_error(c, e->pos, "expected an expression");
    break;
  }
  e->ty = t;
  return t;
}

/* ---- calls ----------------------------------------------------------------- */

static bool chk_args(Checker *c, Ast *e, Type *types) {
  for (int i = 0; i < e->list.n; i++) {
    types[i] = chk_expr(c, e->list.items[i]);
    if (FAILED(c)) return false;
  }
  return true;
}

static bool check_arity(Checker *c, Ast *e, const char *name, int want) {
  if (e->list.n == want) return true;
  chk_error(c, e->pos, "%s expects %d argument%s, got %d", name, want, want == 1 ? "" : "s",
            e->list.n);
  return false;
}

/* ---- named arguments ------------------------------------------------------- */

static bool has_named(const Ast *call) {
  for (int i = 0; i < call->list.n; i++)
    if (call->list.items[i]->kind == AST_NAMED) return true;
  return false;
}

/* The literal a parameter's default stands for (DistFamily.pdefault). */
static Ast *default_arg(const char *text, Type t, SrcPos pos) {
  Ast *a;
  if (t.base == TY_STRING) {
    a = ast_new(AST_STRING, pos);
    a->sval = text;
  } else if (t.base == TY_INT) {
    a = ast_new(AST_INT, pos);
    a->ival = strtoll(text, NULL, 10);
  } else {
    a = ast_new(AST_REAL, pos);
    a->rval = strtod(text, NULL);
  }
  return a;
}

/* A call's arguments in the order of the parameters names[0..n): positional
 * ones first, then named ones (`stop = "\n"`) at their parameter's place,
 * and the defaults (defs[i]: text, NULL where required; defs NULL: none) of
 * the rest.  Rewrites call->list; calls without names or defaults to fill in
 * are left as they are, so their messages stay the arity checks'. */
static bool chk_named(Checker *c, Ast *call, const char *what, int n, const char *const *names,
                      const char *const *defs, const Type *types) {
  bool defaults = false;
  for (int i = 0; defs && i < n; i++) defaults |= defs[i] != NULL;
  if (!has_named(call) && (!defaults || call->list.n >= n)) return true;
  Ast **slot = gc_alloc(sizeof(Ast *) * (size_t)(n + 1));
  const Ast *first_named = NULL;
  int k = 0;
  for (int i = 0; i < call->list.n; i++) {
    Ast *a = call->list.items[i];
    if (a->kind != AST_NAMED) {
      if (first_named) {
        chk_error(c, a->pos, "a positional argument cannot follow the named argument '%s'",
                  first_named->name);
        return false;
      }
      if (k >= n) {
        chk_error(c, a->pos, "%s expects at most %d argument%s, got more", what, n,
                  n == 1 ? "" : "s");
        return false;
      }
      slot[k++] = a;
      continue;
    }
    if (!first_named) first_named = a;
    int j = 0;
    while (j < n && strcmp(names[j], a->name) != 0) j++;
    if (j == n) {
      Suggest sg = {a->name, NULL, 99};
      char list[256];
      size_t len = 0;
      list[0] = 0;
      for (int q = 0; q < n; q++) {
        suggest_try(&sg, names[q]);
        int w = snprintf(list + len, sizeof list - len, "%s%s", q ? ", " : "", names[q]);
        if (w > 0 && (size_t)w < sizeof list - len) len += (size_t)w;
      }
      chk_error(c, a->pos, "%s has no parameter '%s'%s (its parameters: %s)", what, a->name,
                suggestion_text(&sg), list);
      return false;
    }
    if (slot[j]) {
      chk_error(c, a->pos, "argument '%s' of %s is given twice", a->name, what);
      return false;
    }
    slot[j] = a->a;
  }
  AstList l = {0, 0, NULL};
  for (int i = 0; i < n; i++) {
    if (!slot[i] && defs && defs[i]) slot[i] = default_arg(defs[i], types[i], call->pos);
    if (!slot[i]) {
      chk_error(c, call->pos, "%s needs its argument '%s'", what, names[i]);
      return false;
    }
    ast_list_push(&l, slot[i]);
  }
  call->list = l;
  return true;
}

/* Statements that only make sense where the log density is accumulated. */
static bool allowed_in_block(Checker *c, SrcPos pos, const char *what) {
  if (c->block == BLK_DATA || c->block == BLK_GEN || c->block == BLK_GUIDE) {
    chk_error(c, pos, "%s is not allowed in the %s block", what, block_name(c->block));
    return false;
  }
  if (c->func) c->stoch[c->funcidx] = true;
  return true;
}

/* A latent drawn over all reals used directly as a positive parameter
   (`real sigma ~ normal(0, 1); y ~ normal(mu, sigma);`): valid, but every
   point where it is negative is impossible, so NUTS keeps rejecting steps
   there.  Stan users write `real<lower=0> sigma;`: the warning says so. */
static void chk_scale_latents(Checker *c, const Ast *call, const DistFamily *f) {
  for (int i = 0; i < f->nparams && i < call->list.n; i++) {
    if (f->pdom[i] != PD_POS && f->pdom[i] != PD_NONNEG) continue;
    const Ast *arg = call->list.items[i];
    while (arg->kind == AST_INDEX) arg = arg->a;
    Sym *y = arg->kind == AST_VAR ? sym_find(c, arg->name) : NULL;
    if (!y || y->kind != SK_LATENT || !y->decl->type || y->decl->type->lower ||
        y->decl->type->upper || y->decl->b->kind != AST_CALL)
      continue;
    const DistFamily *g = dist_find(c->cp->fams, y->decl->b->name);
    if (!g || g->support || g->discrete || g->vtype.ndims != 0 ||
        (g->vtype.base != TY_REAL && g->vtype.base != TY_VECTOR))
      continue; /* a family of positive values, or not one of all reals */
    chk_warn(c, call->list.items[i]->pos,
             gc_printf("latent '%s', the %s of %s (which must be %s), can be negative under "
                       "its prior %s() and the sampler rejects every step there; declare it "
                       "`%s %s ~ %s(...);` (truncated to the positive half)",
                       y->name, f->pnames[i], f->name,
                       f->pdom[i] == PD_POS ? "positive" : "nonnegative", g->name,
                       type_text_bounds(y->decl->type, "<lower=0>"), y->name, g->name));
  }
}

/* flow(q) for a flow param q (stdlib/dists/flow.c): over vectors, or arrays
   of them (independent draws).  The lowering adds the flow's layout to the
   arguments; the size of a draw is checked at run time. */
static void chk_flow_dist(Checker *c, Ast *call, Type x) {
  if (call->list.n != 1) {
    chk_error(c, call->pos, "flow takes one argument, a flow param (param flow q = realnvp(D)); "
                            "got %d", call->list.n);
    return;
  }
  Ast *a = call->list.items[0];
  Sym *y = a->kind == AST_VAR ? sym_find(c, a->name) : NULL;
  if (!y || y->decl->ty.base != TY_FLOW) {
    const char *what = !y ? NULL : y->decl->ty.base == TY_NETWORK ? "a network"
                                 : gc_printf("a %s", ty_name(y->decl->ty));
    chk_error(c, a->pos, "flow() takes a flow param (param flow q = realnvp(D);)%s",
              what ? gc_printf(", and '%s' is %s", a->name, what)
                   : a->kind == AST_VAR ? gc_printf(", and '%s' is not declared", a->name) : "");
    return;
  }
  if (x.base != TY_VOID && x.base != TY_VECTOR) {
    chk_error(c, call->pos, "flow(%s) draws vectors, not %s", a->name, ty_name(x));
    return;
  }
  a->ref = y->decl;
  a->ty = y->decl->ty;
  call->dist = &dist_flow;
  call->ty = ty_make(TY_DIST, 0);
}

/* `dist(args)` after ~ or inside observe(): x is the type of the value. */
static void chk_dist(Checker *c, Ast *call, Type x) {
  if (call->kind != AST_CALL) {
    chk_error(c, call->pos, "expected a distribution such as normal(0, 1)");
    return;
  }
  if (strcmp(call->name, "flow") == 0 && !dist_find(c->cp->fams, "flow")) {
    chk_flow_dist(c, call, x);
    return;
  }
  const DistFamily *f = dist_find(c->cp->fams, call->name);
  if (!f) {
    Suggest s = {call->name, NULL, 99};
    suggest_dists(c, &s, false);
    chk_error(c, call->pos, "unknown distribution '%s'%s", call->name, suggestion_text(&s));
    return;
  }
  if (!chk_named(c, call, f->name, f->nparams, f->pnames, f->pdefault, f->ptype) ||
      !check_arity(c, call, f->name, f->nparams))
    return;
  Type *types = gc_alloc_atomic(sizeof(Type) * (size_t)(call->list.n + 1));
  if (!chk_args(c, call, types)) return;
  for (int i = 0; i < call->list.n; i++) types[i] = bool_to(&call->list.items[i], TY_INT);
  char err[512];
  err[0] = 0;
  if (!dist_check_types(f, call->list.n, types, x, err, sizeof err)) {
    chk_error(c, call->pos, "%s", err[0] ? err : "invalid distribution arguments");
    return;
  }
  call->dist = f;
  call->ty = ty_make(TY_DIST, 0);
  chk_scale_latents(c, call, f);
}

static Type chk_special(Checker *c, Ast *e, bool stmt) {
  const char *n = e->name;
  if (!stmt) {
    chk_error(c, e->pos, "%s() has no value; use it as a statement", n);
    return T_VOID;
  }
  if (strcmp(n, "print") == 0 || strcmp(n, "reject") == 0) {
    Type *types = gc_alloc_atomic(sizeof(Type) * (size_t)(e->list.n + 1));
    chk_args(c, e, types);
    return T_VOID;
  }
  if (strcmp(n, "factor") == 0) {
    if (!allowed_in_block(c, e->pos, "factor()") || !check_arity(c, e, "factor", 1))
      return T_VOID;
    chk_expr(c, e->list.items[0]);
    Type t = FAILED(c) ? T_VOID : bool_to(&e->list.items[0], TY_REAL);
    if (!FAILED(c) && !is_num(t))
      chk_error(c, e->list.items[0]->pos, "factor() needs a real, got %s%s", ty_name(t),
                t.ndims || is_linalg(t) ? "; use sum()" : "");
    return T_VOID;
  }
  if (strcmp(n, "condition") == 0) {
    if (!allowed_in_block(c, e->pos, "condition()") || !check_arity(c, e, "condition", 1))
      return T_VOID;
    Type t = chk_expr(c, e->list.items[0]);
    if (!FAILED(c) && !is_truthy(t))
      chk_error(c, e->list.items[0]->pos, "condition() needs a bool, got %s", ty_name(t));
    return T_VOID;
  }
  /* observe(dist(args), value) */
  if (!allowed_in_block(c, e->pos, "observe()") || !check_arity(c, e, "observe", 2))
    return T_VOID;
  Ast *dist = e->list.items[0], *val = e->list.items[1];
  if (dist->kind != AST_CALL ||
      (!dist_find(c->cp->fams, dist->name) && strcmp(dist->name, "flow") != 0)) {
    if (dist->kind == AST_CALL) {
      chk_dist(c, dist, T_VOID); /* reports the unknown distribution */
      return T_VOID;
    }
    chk_error(c, dist->pos, "the first argument of observe() must be a distribution such as "
                            "normal(0, 1)");
    return T_VOID;
  }
  Type x = chk_expr(c, val);
  if (FAILED(c)) return T_VOID;
  chk_dist(c, dist, x);
  return T_VOID;
}

static Type chk_user_call(Checker *c, Ast *e, int fi, bool stmt) {
  Ast *f = c->cp->funcs[fi];
  e->ref = f;
  if (c->func) c->calls[c->funcidx * c->cp->nfuncs + fi] = true;
  else if ((c->block == BLK_DATA || c->block == BLK_GEN) && c->stoch[fi]) {
    chk_error(c, e->pos, "function '%s' declares latents or observes; it cannot be called in "
                         "the %s block", f->name, block_name(c->block));
    return T_VOID;
  }
  const char **pn = gc_alloc(sizeof(char *) * (size_t)(f->list.n + 1));
  for (int i = 0; i < f->list.n; i++) pn[i] = f->list.items[i]->name;
  if (!chk_named(c, e, gc_printf("'%s'", f->name), f->list.n, pn, NULL, NULL) ||
      !check_arity(c, e, f->name, f->list.n))
    return T_VOID;
  Type *types = gc_alloc_atomic(sizeof(Type) * (size_t)(e->list.n + 1));
  if (!chk_args(c, e, types)) return T_VOID;
  for (int i = 0; i < e->list.n; i++) {
    Type want = f->list.items[i]->ty;
    types[i] = bool_to_want(&e->list.items[i], want);
    if (!assignable(want, types[i])) {
      chk_error(c, e->list.items[i]->pos, "argument %d of '%s' must be %s, got %s%s", i + 1,
                f->name, ty_name(want), ty_name(types[i]), assign_hint(want, types[i]));
      return T_VOID;
    }
  }
  if (f->ty.base == TY_VOID && !stmt) {
    chk_error(c, e->pos, "function '%s' does not return a value", f->name);
    return T_VOID;
  }
  return f->ty;
}

/* ---- ode_rk45: a function passed by name ----------------------------------- */

static bool is_ode_name(const char *n) {
  return strcmp(n, "ode_rk45") == 0 || strcmp(n, "ode_rk45_tol") == 0;
}

/* "vector f(real, vector, real[])" */
static const char *signature_text(const Ast *f) {
  const char *s = gc_printf("%s %s(", ty_name(f->ty), f->name);
  for (int i = 0; i < f->list.n; i++)
    s = gc_printf("%s%s%s", s, i ? ", " : "", ty_name(f->list.items[i]->ty));
  return gc_printf("%s)", s);
}

/* The right-hand side runs inside the solver, many times per solve: it must
   be a pure function of its arguments. */
static void chk_ode_pure(Checker *c, const Ast *e) {
  const Ast *fa = e->list.items[0];
  int fi = func_index(c, fa->name);
  if (fi < 0) return;
  if (c->stoch[fi])
    chk_error(c, fa->pos, "%s: the ODE function '%s' must be deterministic, but it declares "
                          "latents, observes or adds to the log density (directly or through "
                          "the functions it calls)", e->name, fa->name);
  else if (c->rng[fi])
    chk_error(c, fa->pos, "%s: the ODE function '%s' must be deterministic, but it calls a "
                          "*_rng function (directly or through the functions it calls)",
              e->name, fa->name);
}

/* ode_rk45(f, y0, t0, ts, ...) and ode_rk45_tol(f, y0, t0, ts, rel_tol,
   abs_tol, max_num_steps, ...): the first argument names a user function
   vector f(real t, vector y, ...) whose further parameters take the
   trailing arguments.  The name gets Ast.ref (its AST_FUNCDEF); the call
   itself gets neither ref nor builtin, and the lowering knows it by name. */
static Type chk_ode(Checker *c, Ast *e) {
  const char *n = e->name;
  bool tol = strcmp(n, "ode_rk45_tol") == 0;
  int fixed = tol ? 7 : 4;
  const char *usage = tol ? "ode_rk45_tol(f, y0, t0, ts, rel_tol, abs_tol, max_num_steps, ...)"
                          : "ode_rk45(f, y0, t0, ts, ...)";
  if (e->list.n < fixed) {
    chk_error(c, e->pos, "%s expects at least %d arguments, got %d: %s", n, fixed, e->list.n,
              usage);
    return T_VOID;
  }
  Ast *fa = e->list.items[0];
  int fi = fa->kind == AST_VAR ? func_index(c, fa->name) : -1;
  if (fi < 0) {
    if (fa->kind == AST_VAR && !sym_find(c, fa->name)) {
      Suggest s = {fa->name, NULL, 99};
      for (int i = 0; i < c->cp->nfuncs; i++) suggest_try(&s, c->cp->funcs[i]->name);
      chk_error(c, fa->pos, "%s: unknown function '%s'%s", n, fa->name, suggestion_text(&s));
    } else {
      chk_error(c, fa->pos, "the first argument of %s must be the name of a user function "
                            "vector f(real t, vector y, ...): %s", n, usage);
    }
    return T_VOID;
  }
  Ast *f = c->cp->funcs[fi];
  fa->ref = f;
  fa->ty = T_VOID;
  if (c->func) c->calls[c->funcidx * c->cp->nfuncs + fi] = true;
  int nextra = e->list.n - fixed;
  const Type T_VEC = ty_make(TY_VECTOR, 0);
  Type *types = gc_alloc_atomic(sizeof(Type) * (size_t)(e->list.n + 1));
  for (int i = 1; i < e->list.n; i++) {
    types[i] = chk_expr(c, e->list.items[i]);
    if (FAILED(c)) return T_VOID;
  }
  if (!ty_eq(f->ty, T_VEC) || f->list.n != 2 + nextra || !ty_eq(f->list.items[0]->ty, T_REAL) ||
      !ty_eq(f->list.items[1]->ty, T_VEC)) {
    const char *want = gc_printf("vector %s(real, vector", f->name);
    for (int i = fixed; i < e->list.n; i++) want = gc_printf("%s, %s", want, ty_name(types[i]));
    chk_error(c, fa->pos, "%s: the ODE function must have the form %s) for this call, but it "
                          "is %s", n, want, signature_text(f));
    return T_VOID;
  }
  static const char *const what[] = {NULL, "the initial state y0", "the initial time t0",
                                     "the output times ts", "rel_tol", "abs_tol",
                                     "max_num_steps"};
  Type want[7] = {T_VOID, T_VEC, T_REAL, ty_make(TY_REAL, 1), T_REAL, T_REAL, T_INT};
  for (int i = 1; i < fixed; i++)
    if (!assignable(want[i], types[i])) {
      chk_error(c, e->list.items[i]->pos, "%s: %s must be %s, got %s%s", n, what[i],
                ty_name(want[i]), ty_name(types[i]), assign_hint(want[i], types[i]));
      return T_VOID;
    }
  for (int i = fixed; i < e->list.n; i++) {
    const Ast *p = f->list.items[2 + i - fixed];
    if (!assignable(p->ty, types[i])) {
      chk_error(c, e->list.items[i]->pos, "%s: argument %d is passed to '%s' as '%s', which is "
                                          "%s; got %s%s", n, i + 1, f->name, p->name,
                ty_name(p->ty), ty_name(types[i]), assign_hint(p->ty, types[i]));
      return T_VOID;
    }
  }
  if (c->closed) {
    chk_ode_pure(c, e);
  } else {
    if (c->nodecalls == c->capodecalls) {
      c->capodecalls = c->capodecalls ? 2 * c->capodecalls : 8;
      Ast **o = gc_alloc(sizeof(Ast *) * (size_t)c->capodecalls);
      if (c->nodecalls) memcpy(o, c->odecalls, sizeof(Ast *) * (size_t)c->nodecalls);
      c->odecalls = o;
    }
    c->odecalls[c->nodecalls++] = e;
  }
  return ty_make(TY_VECTOR, 1);
}

/* f(x) for a network param f: a vector or row_vector of its input size gives
   a vector, a matrix with that many columns a matrix (rows are a batch).  The
   sizes are known at run time only, so a wrong width is a runtime error. */
static Type chk_net_call(Checker *c, Ast *e, Sym *y) {
  if (e->list.n != 1) {
    chk_error(c, e->pos, "network '%s' takes one argument (a vector, row_vector or matrix), got %d",
              e->name, e->list.n);
    return T_VOID;
  }
  Type t = chk_expr(c, e->list.items[0]);
  if (FAILED(c)) return T_VOID;
  if (t.ndims != 0 || (t.base != TY_VECTOR && t.base != TY_ROWVEC && t.base != TY_MATRIX)) {
    chk_error(c, e->list.items[0]->pos, "network '%s' takes a vector, row_vector or matrix, got %s",
              e->name, ty_name(t));
    return T_VOID;
  }
  e->ref = y->decl;
  return ty_make(t.base == TY_MATRIX ? TY_MATRIX : TY_VECTOR, 0);
}

static Type chk_call(Checker *c, Ast *e, bool stmt) {
  const char *n = e->name;
  if (has_named(e) && func_index(c, n) < 0) {
    const Ast *a = NULL;
    for (int i = 0; !a; i++)
      if (e->list.items[i]->kind == AST_NAMED) a = e->list.items[i];
    chk_error(c, a->pos, "%s() takes no named arguments ('%s = ...'): only distributions and the "
                         "program's functions do", n, a->name);
    return T_VOID;
  }
  Sym *net = sym_find(c, n);
  if (net && net->decl->ty.base == TY_NETWORK) return chk_net_call(c, e, net);
  if (net && net->decl->ty.base == TY_FLOW) {
    chk_error(c, e->pos, "'%s' is a flow, not a function: draw from it, z ~ flow(%s)", n, n);
    return T_VOID;
  }
  if (strcmp(n, "realnvp") == 0) {
    chk_error(c, e->pos, "realnvp(...) makes a flow only as the initial value of a flow param: "
                         "param flow q = realnvp(D, layers, hidden);");
    return T_VOID;
  }
  if (strcmp(n, "mlp") == 0) {
    chk_error(c, e->pos, "mlp(...) makes a network only as the initial value of a network param: "
                         "param network f = mlp(in, [hidden...], out, activation);");
    return T_VOID;
  }
  for (int i = 0; special_names[i]; i++)
    if (strcmp(n, special_names[i]) == 0) return chk_special(c, e, stmt);
  if (is_ode_name(n)) return chk_ode(c, e);
  int fi = func_index(c, n);
  if (fi >= 0) return chk_user_call(c, e, fi, stmt);
  const HostFunc *h = host_find(c, n);
  if (h) {
    if (!check_arity(c, e, n, h->arity)) return T_VOID;
    Type *types = gc_alloc_atomic(sizeof(Type) * (size_t)(e->list.n + 1));
    if (!chk_args(c, e, types)) return T_VOID;
    if (h->str_fn) { /* a tool on strings: ppl_register_string_function */
      for (int i = 0; i < e->list.n; i++)
        if (types[i].ndims != 0 || types[i].base != TY_STRING) {
          chk_error(c, e->list.items[i]->pos, "argument %d of '%s' must be string, got %s%s",
                    i + 1, n, ty_name(types[i]),
                    is_num(types[i]) ? " (convert numbers with to_string)" : "");
          return T_VOID;
        }
      return ty_make(TY_STRING, 0);
    }
    for (int i = 0; i < e->list.n; i++) {
      bool vec = h->kinds && h->kinds[i] == 'v';
      Type t = vec ? types[i] : (types[i] = bool_to(&e->list.items[i], TY_REAL));
      bool ok = vec ? t.base == TY_VECTOR && t.ndims == 0 ? true
                      : t.base == TY_ROWVEC && t.ndims == 0 ? true
                      : t.ndims == 1 && (t.base == TY_REAL || t.base == TY_INT)
                    : is_num(t);
      if (!ok) {
        chk_error(c, e->list.items[i]->pos, "argument %d of '%s' must be %s, got %s", i + 1, n,
                  vec ? "a vector of reals (vector, row_vector or real[])" : "real", ty_name(t));
        return T_VOID;
      }
    }
    return T_REAL;
  }
  const DistFamily *f = dist_find(c->cp->fams, n);
  if (f) {
    chk_error(c, e->pos, "distribution '%s' can only be used after '~' or in observe(); use "
                         "%s_rng() to draw from it or %s_%s() for its log density",
              n, n, n, f->discrete ? "lpmf" : "lpdf");
    return T_VOID;
  }
  const Builtin *b = builtin_lookup(n);
  if (b) {
    Type *types = gc_alloc_atomic(sizeof(Type) * (size_t)(e->list.n + 1));
    if (!chk_args(c, e, types)) return T_VOID;
    Type ret = T_VOID;
    char err[512];
    err[0] = 0;
    bool ok = b->check && b->check(b, e->list.n, types, &ret, err, sizeof err);
    if (!ok && b->check) { /* a builtin that takes no bool: try bools as ints 0/1 */
      Type *conv = gc_alloc_atomic(sizeof(Type) * (size_t)(e->list.n + 1));
      bool any = false;
      for (int i = 0; i < e->list.n; i++) {
        conv[i] = is_bool(types[i]) ? T_INT : types[i];
        any |= is_bool(types[i]);
      }
      char err2[512];
      if (any && b->check(b, e->list.n, conv, &ret, err2, sizeof err2)) {
        ok = true;
        for (int i = 0; i < e->list.n; i++) bool_to(&e->list.items[i], TY_INT);
      }
    }
    if (!ok) {
      chk_error(c, e->pos, "%s", err[0] ? err : gc_printf("invalid arguments to %s", n));
      return T_VOID;
    }
    e->builtin = b;
    if (b->uses_rng && c->func) c->rng[c->funcidx] = true;
    if (ret.base == TY_VOID && !stmt) {
      chk_error(c, e->pos, "%s() has no value", n);
      return T_VOID;
    }
    return ret;
  }
  Suggest s = {n, NULL, 99};
  for (int i = 0; i < c->cp->nfuncs; i++) suggest_try(&s, c->cp->funcs[i]->name);
  for (int i = 0; i < c->cp->nhost; i++) suggest_try(&s, c->cp->host[i].name);
  for (int i = 0; special_names[i]; i++) suggest_try(&s, special_names[i]);
  suggest_dists(c, &s, true);
  suggest_builtins(&s);
  chk_error(c, e->pos, "unknown function '%s'%s", n, suggestion_text(&s));
  return T_VOID;
}

/* ---- statements ------------------------------------------------------------ */

static void chk_stmt(Checker *c, Ast *s);

static SymKind decl_kind(Checker *c, Ast *s) {
  if (s->is_param) return SK_LEARN;
  if (s->b) return SK_LATENT;
  switch (c->block) {
  case BLK_DATA: return (c->depth == 0 && !s->a) ? SK_DATA_READ : SK_DATA;
  case BLK_MODEL: case BLK_GUIDE: return SK_MODEL;
  case BLK_GEN: return SK_GEN;
  default: return SK_LOCAL;
  }
}

static bool chk_size_expr(Checker *c, Ast *e) {
  Type t = chk_expr(c, e);
  if (FAILED(c)) return false;
  if (!is_int(t)) {
    chk_error(c, e->pos, "sizes must be ints, got %s", ty_name(t));
    return false;
  }
  return true;
}

static bool chk_bounds(Checker *c, const AstType *at) {
  Ast *bnd[2] = {at->lower, at->upper};
  if (!bnd[0] && !bnd[1]) return true;
  bool ok_base = at->base == TB_INT || at->base == TB_REAL || at->base == TB_VECTOR ||
                 at->base == TB_ROWVEC || at->base == TB_MATRIX;
  if (!ok_base) {
    chk_error(c, at->pos, "bounds are not allowed on %s", ast_type_base_name(at->base));
    return false;
  }
  for (int k = 0; k < 2; k++) {
    if (!bnd[k]) continue;
    Type t = chk_expr(c, bnd[k]);
    if (FAILED(c)) return false;
    if (!is_num(t)) {
      chk_error(c, bnd[k]->pos, "bounds must be int or real scalars (container bounds are not "
                                "supported yet), got %s", ty_name(t));
      return false;
    }
    if (at->base == TB_INT && !is_int(t)) {
      chk_error(c, bnd[k]->pos, "bounds of an int variable must be ints, got %s", ty_name(t));
      return false;
    }
  }
  return true;
}

/* `param T x;`: learnable parameters are one fixed set of real values, so
   they live at the top level of the model or guide block and are given,
   never drawn. */
static bool chk_param_decl(Checker *c, Ast *s) {
  AstTypeBase b = s->type->base;
  if (c->block != BLK_MODEL && c->block != BLK_GUIDE) {
    chk_error(c, s->pos, "param '%s' can only be declared in the model or guide block", s->name);
    return false;
  }
  if (c->depth != 0) {
    chk_error(c, s->pos, "param '%s' must be declared at the top level of the %s block",
              s->name, block_name(c->block));
    return false;
  }
  if (s->b) {
    chk_error(c, s->pos, "param '%s' cannot be declared with '~': a param is learned, not drawn "
                         "(give its initial value with '=', or none for zero)", s->name);
    return false;
  }
  if (b != TB_REAL && b != TB_VECTOR && b != TB_ROWVEC && b != TB_MATRIX && b != TB_NETWORK &&
      b != TB_FLOW) {
    chk_error(c, s->pos, "param '%s' must be real, vector, row_vector or matrix (or an array of "
                         "them), not %s", s->name, ast_type_base_name(b));
    return false;
  }
  return true;
}

/* An activation argument of mlp: one of nn.h's names, written bare (relu). */
static bool chk_act(Checker *c, const Ast *a, NnAct *out) {
  if (a->kind == AST_VAR && nn_act_parse(a->name, out)) return true;
  chk_error(c, a->pos, "%s is not an activation (relu, tanh, softplus, sigmoid, elu or identity)",
            a->kind == AST_VAR ? gc_printf("'%s'", a->name) : "this");
  return false;
}

/* `param network f = mlp(in, [hidden...], out, act[, out_act]);`: the sizes are
   int expressions, the activations bare names; their codes go in the call's
   ival (act | out_act << 8) for the lowering. */
static void chk_network_decl(Checker *c, Ast *s) {
  Ast *e = s->a;
  const char *usage = "mlp(in, [hidden...], out, activation[, output activation])";
  if (!e || e->kind != AST_CALL || strcmp(e->name, "mlp") != 0) {
    chk_error(c, e ? e->pos : s->pos, "network param '%s' is made by %s", s->name, usage);
    return;
  }
  if (e->list.n != 4 && e->list.n != 5) {
    chk_error(c, e->pos, "mlp takes 4 or 5 arguments, %s; got %d", usage, e->list.n);
    return;
  }
  Ast **a = e->list.items;
  if (a[1]->kind != AST_ROWVEC) {
    chk_error(c, a[1]->pos, "mlp's second argument lists the hidden layers' sizes in brackets: "
                            "[128, 128]");
    return;
  }
  if (a[1]->list.n + 1 > NN_MAXLAYERS) {
    chk_error(c, a[1]->pos, "an mlp has at most %d hidden layers, not %d", NN_MAXLAYERS - 1,
              a[1]->list.n);
    return;
  }
  if (!chk_size_expr(c, a[0])) return;
  for (int i = 0; i < a[1]->list.n; i++)
    if (!chk_size_expr(c, a[1]->list.items[i])) return;
  if (!chk_size_expr(c, a[2])) return;
  NnAct act, out_act = TENSOR_IDENTITY;
  if (!chk_act(c, a[3], &act) || (e->list.n == 5 && !chk_act(c, a[4], &out_act))) return;
  e->ival = (int64_t)act | (int64_t)out_act << 8;
  e->ty = s->ty = ty_make(TY_NETWORK, 0);
  sym_declare(c, s->name, s, decl_kind(c, s));
}

/* `param flow q = realnvp(D[, layers[, hidden]]);`: int sizes; the missing
   ones are filled with advi's --flow-layers and --flow-hidden defaults, so
   the lowering always sees three. */
static void chk_flow_decl(Checker *c, Ast *s) {
  Ast *e = s->a;
  const char *usage = "realnvp(D, layers, hidden) (layers and hidden optional: "
                      "6 and 32)";
  if (!e || e->kind != AST_CALL || strcmp(e->name, "realnvp") != 0) {
    chk_error(c, e ? e->pos : s->pos, "flow param '%s' is made by %s", s->name, usage);
    return;
  }
  if (e->list.n < 1 || e->list.n > 3) {
    chk_error(c, e->pos, "realnvp takes 1 to 3 arguments, %s; got %d", usage, e->list.n);
    return;
  }
  static const int64_t defaults[3] = {0, RNVP_DEFAULT_LAYERS, RNVP_DEFAULT_HIDDEN};
  for (int i = e->list.n; i < 3; i++) {
    Ast *lit = ast_new(AST_INT, e->pos);
    lit->ival = defaults[i];
    ast_list_push(&e->list, lit);
  }
  for (int i = 0; i < 3; i++)
    if (!chk_size_expr(c, e->list.items[i])) return;
  e->ty = s->ty = ty_make(TY_FLOW, 0);
  sym_declare(c, s->name, s, decl_kind(c, s));
}

static void chk_decl(Checker *c, Ast *s) {
  AstType *at = s->type;
  Type t = type_of_ast(at);
  s->block = c->block;
  if (at->base == TB_VOID) {
    chk_error(c, s->pos, "variables cannot have type void");
    return;
  }
  if (s->is_param && !chk_param_decl(c, s)) return;
  if (at->base == TB_NETWORK) {
    chk_network_decl(c, s);
    return;
  }
  if (at->base == TB_FLOW) {
    chk_flow_decl(c, s);
    return;
  }
  /* sizes: vectors and matrices need them unless an initialiser gives the value */
  bool need1 = at->base != TB_INT && at->base != TB_REAL && at->base != TB_BOOL &&
               at->base != TB_STRING;
  bool need2 = at->base == TB_MATRIX;
  bool missing = (need1 && !at->size1) || (need2 && !at->size2);
  for (int i = 0; i < at->ndims; i++)
    if (!at->dims || !at->dims[i]) missing = true;
  if (missing && !s->a) {
    chk_error(c, s->pos, "declaration of '%s' needs its sizes", s->name);
    return;
  }
  for (int i = 0; i < at->ndims && at->dims; i++)
    if (at->dims[i] && !chk_size_expr(c, at->dims[i])) return;
  if (at->size1 && !chk_size_expr(c, at->size1)) return;
  if (at->size2 && !chk_size_expr(c, at->size2)) return;
  if (!chk_bounds(c, at)) return;
  s->ty = t;
  if (s->a) {
    chk_expr(c, s->a);
    if (FAILED(c)) return;
    Type v = bool_to_want(&s->a, t);
    if (!assignable(t, v)) {
      chk_error(c, s->a->pos, "cannot assign %s to %s%s", ty_name(v), ty_name(t),
                assign_hint(t, v));
      return;
    }
  }
  if (s->b) {
    if (c->block == BLK_DATA || c->block == BLK_GEN) {
      chk_error(c, s->pos, "latent variables can only be declared in the model block or in "
                           "functions");
      return;
    }
    if (c->func) c->stoch[c->funcidx] = true;
    /* observed ints may meet continuous families, but a latent takes the
       family's kind of value */
    const DistFamily *f = s->b->kind == AST_CALL ? dist_find(c->cp->fams, s->b->name) : NULL;
    if (f && f->vtype.base == TY_REAL && t.base == TY_INT) {
      chk_error(c, s->pos, "'%s' is declared int, but %s is a continuous distribution; declare "
                           "it real", s->name, f->name);
      return;
    }
    if (f && f->discrete && t.base != TY_INT) {
      chk_error(c, s->pos, "'%s' is declared %s, but %s is a discrete distribution; declare it "
                           "int", s->name, ty_name(t), f->name);
      return;
    }
    chk_dist(c, s->b, t);
    if (FAILED(c)) return;
  }
  sym_declare(c, s->name, s, decl_kind(c, s));
}

/* Root variable of an lvalue: x, x[i], x[i][j] (inner indexes single only,
   so the chain flattens into one index list). */
static Ast *lvalue_root(Checker *c, Ast *lv) {
  Ast *e = lv;
  bool outer = true;
  while (e->kind == AST_INDEX) {
    if (!outer)
      for (int i = 0; i < e->list.n; i++) {
        Ast *ix = e->list.items[i];
        if (ix->kind == AST_SLICE || !is_int(ix->ty)) {
          chk_error(c, ix->pos, "cannot assign into a slice of a slice; write the indexes "
                                "together, as in a[i, j]");
          return NULL;
        }
      }
    outer = false;
    e = e->a;
  }
  if (e->kind != AST_VAR) {
    chk_error(c, lv->pos, "the left side of an assignment must be a variable");
    return NULL;
  }
  return e;
}

/* A size as written, when short (N, 3, N + 1), else "n". */
static const char *size_text(const Ast *e) {
  if (e->kind == AST_VAR) return e->name;
  if (e->kind == AST_INT) return gc_printf("%lld", (long long)e->ival);
  if (e->kind == AST_BINARY && (e->a->kind == AST_VAR || e->a->kind == AST_INT) &&
      (e->b->kind == AST_VAR || e->b->kind == AST_INT))
    return gc_printf("%s %s %s", size_text(e->a), ast_op_name(e->op), size_text(e->b));
  return "n";
}

/* A declared type as written: real, vector[N], array[N, 2] matrix[K, K],
   with `bounds` ("<lower=0>" or "") in place of the declared ones. */
static const char *type_text_bounds(const AstType *at, const char *bounds) {
  const char *base = gc_printf("%s%s", ast_type_base_name(at->base), bounds);
  const char *t = at->size2   ? gc_printf("%s[%s, %s]", base, size_text(at->size1),
                                          size_text(at->size2))
                  : at->size1 ? gc_printf("%s[%s]", base, size_text(at->size1))
                              : base;
  if (at->ndims == 0 || !at->dims) return t;
  const char *dims = "";
  for (int i = 0; i < at->ndims; i++)
    dims = gc_printf("%s%s%s", dims, i ? ", " : "", at->dims[i] ? size_text(at->dims[i]) : "n");
  return gc_printf("array[%s] %s", dims, t);
}

static const char *type_text(const AstType *at) { return type_text_bounds(at, ""); }

/* `vector[N] a = rep_vector(0, N);`: the declaration of `decl` with a zero
   value, which makes a data variable computed instead of read. */
static const char *decl_with_zero(const Ast *decl) {
  const AstType *at = decl->type;
  const char *zero;
  const char *s1 = at->size1 ? size_text(at->size1) : NULL;
  const char *s2 = at->size2 ? size_text(at->size2) : NULL;
  switch (at->base) {
  case TB_INT: zero = "0"; break;
  case TB_REAL: zero = "0.0"; break;
  case TB_VECTOR: zero = gc_printf("rep_vector(0, %s)", s1 ? s1 : "n"); break;
  case TB_ROWVEC: zero = gc_printf("rep_row_vector(0, %s)", s1 ? s1 : "n"); break;
  case TB_MATRIX:
    zero = gc_printf("rep_matrix(0, %s, %s)", s1 ? s1 : "m", s2 ? s2 : "n");
    break;
  default: return NULL;
  }
  if (at->ndims > 0 && at->dims) {
    const char *counts = "";
    for (int i = 0; i < at->ndims; i++)
      counts = gc_printf("%s, %s", counts, at->dims[i] ? size_text(at->dims[i]) : "n");
    zero = gc_printf("rep_array(%s%s)", zero, counts);
  }
  return gc_printf("`%s %s = %s;`", type_text(at), decl->name, zero);
}

static void chk_assign(Checker *c, Ast *s) {
  Type lt = chk_expr(c, s->a);
  if (FAILED(c)) return;
  Ast *root = lvalue_root(c, s->a);
  if (!root) return;
  Sym *y = sym_find(c, root->name);
  const char *nm = root->name;
  switch (y ? y->kind : SK_LOCAL) {
  case SK_LOOP: chk_error(c, root->pos, "cannot assign to loop variable '%s'", nm); return;
  case SK_LATENT: chk_error(c, root->pos, "cannot assign to latent '%s'", nm); return;
  case SK_LEARN: chk_error(c, root->pos, "cannot assign to param '%s'", nm); return;
  case SK_DATA_READ: {
    chk_error(c, root->pos, "cannot assign to data variable '%s'", nm);
    const char *decl = decl_with_zero(y->decl);
    diag_hint(c->d, root->pos, "'%s' is read from the data file (a data declaration without a "
                               "value); to compute it, declare it with a value in the data block "
                               "and fill it: %s",
              nm, decl ? decl : gc_printf("`%s %s = ...;`",
                                          ast_type_base_name(y->decl->type->base), nm));
    return;
  }
  case SK_DATA:
    if (c->block != BLK_DATA) {
      chk_error(c, root->pos, "cannot assign to data variable '%s'", nm);
      return;
    }
    break;
  case SK_MODEL:
    if (c->block == BLK_GEN) {
      chk_error(c, root->pos, "cannot assign to model variable '%s' in the generated block", nm);
      return;
    }
    break;
  default: break;
  }
  Type rt = chk_expr(c, s->b);
  if (FAILED(c)) return;
  if (y) y->assigned = true;
  if (s->op != AOP_ASSIGN && s->op != AOP_NONE) rt = bool_to(&s->b, TY_INT);
  else rt = bool_to_want(&s->b, lt);
  if (s->op != AOP_ASSIGN && s->op != AOP_NONE) {
    rt = chk_binop(c, s->pos, s->op, lt, rt);
    if (FAILED(c)) return;
  }
  if (!assignable(lt, rt))
    chk_error(c, s->b->pos, "cannot assign %s to %s%s", ty_name(rt), ty_name(lt),
              assign_hint(lt, rt));
}

static void chk_cond(Checker *c, Ast *e) {
  Type t = chk_expr(c, e);
  if (!FAILED(c) && !is_truthy(t))
    chk_error(c, e->pos, "condition must be bool or int, got %s", ty_name(t));
}

/* A branch or loop body is its own scope even without braces. */
static void chk_sub(Checker *c, Ast *s) {
  scope_push(c);
  c->depth++;
  chk_stmt(c, s);
  c->depth--;
  scope_pop(c);
}

static void chk_for(Checker *c, Ast *s) {
  Type vt = T_INT;
  if (s->b) {
    Type a = chk_expr(c, s->a);
    if (FAILED(c)) return;
    Type b = chk_expr(c, s->b);
    if (FAILED(c)) return;
    if (!is_int(a) || !is_int(b)) {
      chk_error(c, s->pos, "loop bounds must be ints, got %s and %s", ty_name(a), ty_name(b));
      return;
    }
    if (s->list.n) { /* plate (i in a:b, batch = e) */
      Type bt = chk_expr(c, s->list.items[0]);
      if (FAILED(c)) return;
      if (!is_int(bt)) {
        chk_error(c, s->list.items[0]->pos, "a plate's batch size must be an int, got %s",
                  ty_name(bt));
        return;
      }
    }
  } else {
    Type a = chk_expr(c, s->a);
    if (FAILED(c)) return;
    if (a.ndims > 0) vt = ty_make((TyBase)a.base, a.ndims - 1);
    else if (a.base == TY_VECTOR || a.base == TY_ROWVEC) vt = T_REAL;
    else {
      chk_error(c, s->a->pos, "cannot iterate over %s%s", ty_name(a),
                a.base == TY_MATRIX ? "; use to_vector() or loop over the indexes" : "");
      return;
    }
  }
  s->ty = vt;
  scope_push(c);
  c->depth++;
  sym_declare(c, s->name, s, SK_LOOP);
  c->loops++;
  if (!FAILED(c)) chk_stmt(c, s->c);
  c->loops--;
  c->depth--;
  scope_pop(c);
}

static void chk_return(Checker *c, Ast *s) {
  if (!c->func) {
    chk_error(c, s->pos, "return is only allowed inside functions");
    return;
  }
  Type want = c->func->ty;
  if (!s->a) {
    if (want.base != TY_VOID)
      chk_error(c, s->pos, "function '%s' must return a value of type %s", c->func->name,
                ty_name(want));
    return;
  }
  chk_expr(c, s->a);
  if (FAILED(c)) return;
  Type t = bool_to_want(&s->a, want);
  if (want.base == TY_VOID) {
    chk_error(c, s->pos, "void function '%s' cannot return a value", c->func->name);
    return;
  }
  if (!assignable(want, t))
    chk_error(c, s->a->pos, "function '%s' returns %s, got %s%s", c->func->name, ty_name(want),
              ty_name(t), assign_hint(want, t));
}

/* Stan declares a parameter and draws it apart (`real mu;` ... `mu ~ normal(0,
   1);` or `target += normal_lpdf(mu | 0, 1);`); in ppl that variable is a
   local without a value (NaN) and the statement observes it.  The error names
   the variable, `what` the statement ("~" or "target +="), and the hint says
   how ppl draws it. */
static bool chk_unvalued(Checker *c, const Ast *e, const char *what, const char *dist) {
  while (e->kind == AST_INDEX) e = e->a;
  if (e->kind != AST_VAR) return true;
  Sym *y = sym_find(c, e->name);
  if (!y || y->assigned || y->decl->kind != AST_DECL || y->decl->a || y->decl->b ||
      (y->kind != SK_MODEL && y->kind != SK_LOCAL))
    return true;
  TyBase b = (TyBase)y->decl->ty.base;
  if (b != TY_REAL && b != TY_VECTOR && b != TY_ROWVEC && b != TY_MATRIX) return true;
  bool tilde = strcmp(what, "~") == 0;
  chk_error(c, e->pos, "'%s' has no value here: it is declared without one and not assigned, "
                       "so %s", e->name, tilde ? "'~' would observe NaN"
                                               : "target += would add the density of NaN");
  diag_hint(c->d, y->decl->pos, "%sa latent is declared and drawn in one statement: `%s %s ~ "
                                "%s(...);` (ppl has no parameters block)",
            tilde ? "" : "target += adds to the log density but draws nothing; ",
            type_text(y->decl->type), e->name, dist);
  return false;
}

/* The family named by a density call: normal for normal_lpdf, NULL otherwise. */
static const char *density_family(const Ast *call) {
  if (call->kind != AST_CALL || call->list.n == 0) return NULL;
  static const char *const suffix[] = {"_lpdf", "_lpmf", "_lupdf", "_lupmf", NULL};
  size_t n = strlen(call->name);
  for (int i = 0; suffix[i]; i++) {
    size_t k = strlen(suffix[i]);
    if (n > k && strcmp(call->name + n - k, suffix[i]) == 0)
      return gc_printf("%.*s", (int)(n - k), call->name);
  }
  return NULL;
}

static void chk_stmt(Checker *c, Ast *s) {
  if (FAILED(c)) return;
  switch (s->kind) {
  case AST_STMTS:
    scope_push(c);
    c->depth++;
    for (int i = 0; i < s->list.n && !FAILED(c); i++) chk_stmt(c, s->list.items[i]);
    c->depth--;
    scope_pop(c);
    break;
  case AST_DECL: chk_decl(c, s); break;
  case AST_ASSIGN: chk_assign(c, s); break;
  case AST_TILDE: {
    if (c->block == BLK_GUIDE) {
      chk_error(c, s->pos, "a guide only draws latents (`real mu ~ normal(m, s);`); observations "
                           "belong in the model block");
      return;
    }
    if (!allowed_in_block(c, s->pos, "'~'")) return;
    if (s->a->kind == AST_VAR) {
      Sym *y = sym_find(c, s->a->name);
      if (y && y->kind == SK_LATENT) {
        const char *tn = y->decl->type ? ast_type_base_name(y->decl->type->base) : "real";
        chk_error(c, s->a->pos, "'~' needs data or a new declaration on its left: '%s' is a "
                                "latent; write '%s %s ~ ...' to declare it, or use observe()",
                  s->a->name, tn, s->a->name);
        return;
      }
    } else if (s->a->kind == AST_INDEX) {
      /* b[1] ~ ... after `vector[2] b ~ ...` would silently add a second
         density term for an element of a latent */
      Ast *base = s->a;
      while (base->kind == AST_INDEX) base = base->a;
      Sym *y = base->kind == AST_VAR ? sym_find(c, base->name) : NULL;
      if (y && y->kind == SK_LATENT) {
        chk_error(c, s->a->pos, "'~' needs data or a new declaration on its left: '%s' is a "
                                "latent, and its elements are given their distribution where it "
                                "is declared; use observe() to add another density term",
                  base->name);
        return;
      }
    }
    Type x = chk_expr(c, s->a);
    if (FAILED(c)) return;
    if (s->b->kind == AST_CALL && !chk_unvalued(c, s->a, "~", s->b->name)) return;
    chk_dist(c, s->b, x);
    break;
  }
  case AST_TARGET: {
    if (!allowed_in_block(c, s->pos, "target +=")) return;
    chk_expr(c, s->a);
    const char *fam = FAILED(c) ? NULL : density_family(s->a);
    if (fam && !chk_unvalued(c, s->a->list.items[0], "target +=", fam)) return;
    Type t = FAILED(c) ? T_VOID : bool_to(&s->a, TY_REAL);
    if (!FAILED(c) && !is_num(t))
      chk_error(c, s->a->pos, "target += needs a real, got %s%s", ty_name(t),
                t.ndims || is_linalg(t) ? "; use sum()" : "");
    break;
  }
  case AST_EXPRSTMT:
    if (s->a->kind != AST_CALL) {
      chk_error(c, s->pos, "expression statement must be a function call");
      return;
    }
    s->a->ty = chk_call(c, s->a, true);
    break;
  case AST_IF:
    chk_cond(c, s->a);
    chk_sub(c, s->b);
    if (s->c) chk_sub(c, s->c);
    break;
  case AST_FOR: chk_for(c, s); break;
  case AST_WHILE:
    chk_cond(c, s->a);
    c->loops++;
    chk_sub(c, s->b);
    c->loops--;
    break;
  case AST_BREAK: case AST_CONTINUE:
    if (c->loops == 0)
      chk_error(c, s->pos, "%s is only allowed inside a loop",
                s->kind == AST_BREAK ? "break" : "continue");
    break;
  case AST_RETURN: chk_return(c, s); break;
  default: chk_error(c, s->pos, "expected a statement"); break;
  }
}

/* ---- functions ------------------------------------------------------------- */

static bool is_const_true(const Ast *e) {
  return (e->kind == AST_BOOL || e->kind == AST_INT) && e->ival != 0;
}

/* Does s contain a break that leaves the loop s belongs to (not an inner one)? */
static bool has_break(const Ast *s) {
  if (!s) return false;
  switch (s->kind) {
  case AST_BREAK: return true;
  case AST_STMTS:
    for (int i = 0; i < s->list.n; i++)
      if (has_break(s->list.items[i])) return true;
    return false;
  case AST_IF: return has_break(s->b) || has_break(s->c);
  default: return false;
  }
}

/* Every path through s ends in return or reject. */
static bool always_returns(const Ast *s) {
  if (!s) return false;
  switch (s->kind) {
  case AST_RETURN: return true;
  case AST_STMTS:
    for (int i = 0; i < s->list.n; i++)
      if (always_returns(s->list.items[i])) return true;
    return false;
  case AST_IF: return s->c && always_returns(s->b) && always_returns(s->c);
  case AST_EXPRSTMT:
    return s->a->kind == AST_CALL && strcmp(s->a->name, "reject") == 0;
  case AST_WHILE: return is_const_true(s->a) && !has_break(s->b);
  default: return false;
  }
}

static void chk_signature(Checker *c, Ast *f, int idx) {
  const char *n = f->name;
  for (int i = 0; i < idx; i++)
    if (strcmp(c->cp->funcs[i]->name, n) == 0) {
      chk_error(c, f->pos, "duplicate function '%s' (first defined at line %d)", n,
                c->cp->funcs[i]->pos.line);
      return;
    }
  for (int i = 0; special_names[i]; i++)
    if (strcmp(n, special_names[i]) == 0) {
      chk_error(c, f->pos, "function '%s' conflicts with a builtin function", n);
      return;
    }
  if (dist_find(c->cp->fams, n)) {
    chk_error(c, f->pos, "function '%s' conflicts with a distribution", n);
    return;
  }
  if (builtin_lookup(n)) {
    chk_error(c, f->pos, "function '%s' conflicts with a builtin function", n);
    return;
  }
  if (host_find(c, n)) {
    chk_error(c, f->pos, "function '%s' conflicts with a host function", n);
    return;
  }
  f->ty = type_of_ast(f->type);
  for (int i = 0; i < f->list.n; i++) {
    Ast *p = f->list.items[i];
    p->ty = type_of_ast(p->type);
    if (p->ty.base == TY_VOID) {
      chk_error(c, p->pos, "parameter '%s' cannot have type void", p->name);
      return;
    }
    for (int j = 0; j < i; j++)
      if (strcmp(f->list.items[j]->name, p->name) == 0) {
        chk_error(c, p->pos, "duplicate parameter '%s'", p->name);
        return;
      }
  }
}

static void chk_body(Checker *c, Ast *f, int idx) {
  c->func = f;
  c->funcidx = idx;
  c->block = BLK_FUNC;
  c->loops = 0;
  c->depth = 0;
  c->scope = NULL;
  scope_push(c);
  for (int i = 0; i < f->list.n && !FAILED(c); i++)
    sym_declare(c, f->list.items[i]->name, f->list.items[i], SK_PARAM);
  if (!FAILED(c)) chk_stmt(c, f->a);
  scope_pop(c);
  if (!FAILED(c) && f->ty.base != TY_VOID && !always_returns(f->a))
    chk_error(c, f->pos, "function '%s' may end without returning a value", f->name);
  c->func = NULL;
}

/* A function is stochastic if it, or anything it calls, samples or observes;
   it draws random numbers if it, or anything it calls, uses a *_rng. */
static void close_over_calls(Checker *c, bool *flag) {
  int n = c->cp->nfuncs;
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n && !flag[i]; j++)
        if (c->calls[i * n + j] && flag[j]) flag[i] = changed = true;
  }
}

static void close_stochastic(Checker *c) {
  close_over_calls(c, c->stoch);
  close_over_calls(c, c->rng);
  c->closed = true;
  for (int i = 0; i < c->nodecalls && !FAILED(c); i++) chk_ode_pure(c, c->odecalls[i]);
}

/* ---- program --------------------------------------------------------------- */

/* Position in the source order data, model, guide, generated. */
static int block_rank(const char *name) {
  static const char *const order[] = {"data", "model", "guide", "generated"};
  for (int r = 0; r < 4; r++)
    if (strcmp(name, order[r]) == 0) return r;
  return -1;
}

static void add_func(Checker *c, Ast *f, int *cap) {
  CheckedProgram *cp = c->cp;
  if (cp->nfuncs == *cap) {
    *cap = *cap ? 2 * *cap : 8;
    Ast **nf = gc_alloc(sizeof(Ast *) * (size_t)*cap);
    if (cp->nfuncs) memcpy(nf, cp->funcs, sizeof(Ast *) * (size_t)cp->nfuncs);
    cp->funcs = nf;
  }
  cp->funcs[cp->nfuncs++] = f;
}

/* Splits the program into functions and blocks, checking their order. */
static void collect(Checker *c, Ast *program) {
  Ast *blocks[4] = {NULL, NULL, NULL, NULL};
  bool seen_block = false;
  int cap = 0;
  for (int i = 0; i < program->list.n && !FAILED(c); i++) {
    Ast *it = program->list.items[i];
    bool fblock = it->kind == AST_BLOCK && it->name && strcmp(it->name, "functions") == 0;
    if (it->kind == AST_FUNCDEF || fblock) {
      if (seen_block) {
        chk_error(c, it->pos, "function definitions must come before the data, model and "
                              "generated blocks");
        return;
      }
      if (fblock) {
        for (int j = 0; j < it->list.n; j++)
          if (it->list.items[j]->kind == AST_FUNCDEF) add_func(c, it->list.items[j], &cap);
      } else {
        add_func(c, it, &cap);
      }
      continue;
    }
    int r = it->kind == AST_BLOCK && it->name ? block_rank(it->name) : -1;
    if (r < 0) {
      chk_error(c, it->pos, "expected a function definition or a data, model or generated "
                            "block");
      return;
    }
    if (blocks[r]) {
      chk_error(c, it->pos, "duplicate '%s' block", it->name);
      return;
    }
    for (int later = r + 1; later < 4; later++)
      if (blocks[later]) {
        chk_error(c, blocks[later]->pos, "'%s' block must come after '%s'",
                  blocks[later]->name, it->name);
        return;
      }
    blocks[r] = it;
    seen_block = true;
  }
  c->cp->data = blocks[0];
  c->cp->model = blocks[1];
  c->cp->guide = blocks[2];
  c->cp->generated = blocks[3];
}

static void chk_block(Checker *c, Ast *b, int blk) {
  if (!b) return;
  c->block = blk;
  c->depth = 0;
  c->loops = 0;
  for (int i = 0; i < b->list.n && !FAILED(c); i++) chk_stmt(c, b->list.items[i]);
}

CheckedProgram *check_program(Ast *program, const char *file, int nhost,
                              const HostFunc *host, Diag *d) {
  return check_program_fams(program, file, nhost, host, NULL, d);
}

CheckedProgram *check_program_fams(Ast *program, const char *file, int nhost,
                                   const HostFunc *host, const DistRegistry *fams, Diag *d) {
  if (!program || program->kind != AST_PROGRAM) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "check_program: not a program");
    return NULL;
  }
  CheckedProgram *cp = gc_alloc(sizeof *cp);
  cp->file = file;
  cp->program = program;
  cp->nhost = nhost;
  cp->host = host;
  cp->fams = fams;
  Checker c = {.d = d, .cp = cp};
  collect(&c, program);
  if (FAILED(&c)) return NULL;
  int n = cp->nfuncs;
  c.stoch = gc_alloc_atomic(sizeof(bool) * (size_t)(n + 1));
  c.rng = gc_alloc_atomic(sizeof(bool) * (size_t)(n + 1));
  c.calls = gc_alloc_atomic(sizeof(bool) * (size_t)(n * n + 1));
  for (int i = 0; i < n && !FAILED(&c); i++) chk_signature(&c, cp->funcs[i], i);
  for (int i = 0; i < n && !FAILED(&c); i++) chk_body(&c, cp->funcs[i], i);
  if (FAILED(&c)) return NULL;
  close_stochastic(&c);
  if (FAILED(&c)) return NULL;
  /* data, model and generated share one top-level scope: later blocks see the
     variables of earlier ones, and a name is declared once across them. */
  c.scope = NULL;
  scope_push(&c);
  chk_block(&c, cp->data, BLK_DATA);
  /* The guide sees the data but not the model: its own scope below the
     data's, so its latents may (and must, to match) reuse the model's names. */
  scope_push(&c);
  chk_block(&c, cp->model, BLK_MODEL);
  Scope *model_scope = c.scope;
  c.scope = model_scope->up;
  scope_push(&c);
  chk_block(&c, cp->guide, BLK_GUIDE);
  c.scope = model_scope;
  chk_block(&c, cp->generated, BLK_GEN);
  if (FAILED(&c)) return NULL;
  return cp;
}
