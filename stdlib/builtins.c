/* builtins.c — lookup of the functions a model can call, and the helpers the
 * builtins_*.c parts share: signature-string type rules, messages, and
 * access to argument values.
 *
 * The tables are static and immutable; only the distribution builtins are
 * created at run time (once, under pthread_once, in builtins_dist.c), so
 * lookups are safe from any thread.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "builtins_impl.h"

static const Builtin *const bi_tables[] = {bi_math_table, bi_linalg_table, bi_str_table,
                                             bi_hmm_table};

const Builtin *builtin_lookup(const char *name) {
  if (!name) return NULL;
  for (size_t t = 0; t < sizeof bi_tables / sizeof bi_tables[0]; t++)
    for (const Builtin *b = bi_tables[t]; b->name; b++)
      if (strcmp(b->name, name) == 0) return b;
  return bi_dist_lookup(name);
}

/* ---- errors ---------------------------------------------------------------- */

bool bi_fail(char *err, size_t errsz, const char *fmt, ...) {
  if (err && errsz) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
  }
  return false;
}

bool bi_vefail(const Builtin *b, char *err, size_t errsz, const char *fmt, va_list ap) {
  if (!err || !errsz) return false;
  int n = snprintf(err, errsz, "%s: ", b->name);
  if (n >= 0 && (size_t)n < errsz) vsnprintf(err + n, errsz - (size_t)n, fmt, ap);
  return false;
}

bool bi_efail(const Builtin *b, char *err, size_t errsz, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bi_vefail(b, err, errsz, fmt, ap);
  va_end(ap);
  return false;
}

bool bi_arity_fail(const Builtin *b, int nargs, const char *want, char *err, size_t errsz) {
  return bi_fail(err, errsz, "%s expects %s, got %d", b->name, want, nargs);
}

/* ---- type names ------------------------------------------------------------ */

const char *bi_types_str(int nargs, const Type *args, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i <= nargs && used < n; i++) {
    const char *piece = i == nargs ? ")" : ty_name(args[i]);
    int k = snprintf(buf + used, n - used, "%s%s", i == 0 ? "(" : (i == nargs ? "" : ", "), piece);
    if (k < 0) break;
    used += (size_t)k;
  }
  return buf;
}

bool bi_ty_num(Type t) {
  return t.ndims == 0 && (t.base == TY_INT || t.base == TY_REAL || t.base == TY_BOOL);
}

bool bi_ty_numlike(Type t) {
  switch (t.base) {
  case TY_INT:
  case TY_REAL:
  case TY_BOOL:
  case TY_VECTOR:
  case TY_ROWVEC:
  case TY_MATRIX: return true;
  default: return false;
  }
}

/* ---- signature strings ------------------------------------------------------- */

static const char *parse_base(const char *s, int *base) {
  static const struct {
    const char *w;
    int base;
  } words[] = {{"row_vector", TY_ROWVEC}, {"vector", TY_VECTOR}, {"matrix", TY_MATRIX},
               {"real", TY_REAL},         {"int", TY_INT},       {"bool", TY_BOOL},
               {"string", TY_STRING},     {"void", TY_VOID}};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t n = strlen(words[i].w);
    if (strncmp(s, words[i].w, n) == 0) {
      *base = words[i].base;
      return s + n;
    }
  }
  *base = -1;
  return s;
}

/* One type of a signature string: a base word, then optional [] / [,] ... */
static const char *parse_type(const char *s, Type *t) {
  int base;
  s = parse_base(s, &base);
  if (base < 0) return NULL;
  int nd = 0;
  if (*s == '[') {
    nd = 1;
    for (s++; *s == ','; s++)
      nd++;
    if (*s++ != ']') return NULL;
  }
  *t = ty_make((TyBase)base, nd);
  return s;
}

/* A parsed overload: up to 8 parameters. */
typedef struct {
  int n;
  Type p[8];
  Type ret;
} Sig;

/* Parses the overload at *s and advances past it; false at the end. */
static bool next_sig(const char **s, Sig *g) {
  const char *p = *s;
  if (!p || !*p) return false;
  if (*p == ';') p++;
  if (*p++ != '(') return false;
  g->n = 0;
  while (*p && *p != ')') {
    if (g->n == 8) return false;
    p = parse_type(p, &g->p[g->n++]);
    if (!p) return false;
    if (*p == ',') p++;
  }
  if (*p++ != ')') return false;
  p = parse_type(p, &g->ret);
  if (!p) return false;
  *s = p;
  return true;
}

/* int (and bool) promote to real, bool to int, with the same array dims. */
static bool ty_accepts(Type param, Type arg, bool promote) {
  if (ty_eq(param, arg)) return true;
  if (!promote || param.ndims != arg.ndims) return false;
  if (param.base == TY_REAL) return arg.base == TY_INT || arg.base == TY_BOOL;
  if (param.base == TY_INT) return arg.base == TY_BOOL;
  return false;
}

bool bi_check_sig(BI_CHECK_ARGS) {
  const char *sigs = BI_SPEC(b)->sig;
  /* exact matches first, so (int,int)int wins over (real,real)real */
  for (int pass = 0; pass < 2; pass++) {
    const char *s = sigs;
    Sig g;
    while (next_sig(&s, &g)) {
      if (g.n != nargs) continue;
      int i = 0;
      while (i < nargs && ty_accepts(g.p[i], args[i], pass == 1))
        i++;
      if (i == nargs) {
        *ret = g.ret;
        return true;
      }
    }
  }
  /* Either no overload of this arity ("expects 2 arguments") or a list of them. */
  unsigned arities = 0;
  const char *s = sigs;
  Sig g;
  while (next_sig(&s, &g))
    arities |= 1u << g.n;
  if (nargs < 0 || nargs >= 32 || !(arities & (1u << nargs))) {
    char want[64] = "";
    size_t used = 0;
    int count = 0, total = __builtin_popcount(arities);
    for (int k = 0; k < 32; k++) {
      if (!(arities & (1u << k))) continue;
      count++;
      const char *sep = count == 1 ? "" : (count == total ? " or " : ", ");
      used += (size_t)snprintf(want + used, sizeof want - used, "%s%d", sep, k);
      if (used >= sizeof want) break;
    }
    return bi_fail(err, errsz, "%s expects %s argument%s, got %d", b->name, want,
                   arities == 2 ? "" : "s", nargs);
  }
  char list[512] = "", got[256];
  size_t used = 0;
  int count = 0;
  s = sigs;
  while (next_sig(&s, &g) && used < sizeof list) {
    if (g.n != nargs) continue;
    char one[256];
    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", count++ ? " or " : "",
                             bi_types_str(g.n, g.p, one, sizeof one));
  }
  return bi_fail(err, errsz, "%s expects %s, got %s", b->name, list,
                 bi_types_str(nargs, args, got, sizeof got));
}

/* ---- values -------------------------------------------------------------------- */

bool bi_is_ten(Value v) { return v.k == V_VEC || v.k == V_ROWVEC || v.k == V_MAT; }
bool bi_is_num(Value v) { return v.k == V_INT || v.k == V_REAL || v.k == V_BOOL; }

int64_t bi_int(Value v) {
  switch (v.k) {
  case V_INT: return v.i;
  case V_BOOL: return v.b;
  case V_REAL: return isfinite(v.r) && fabs(v.r) < 9.2e18 ? (int64_t)v.r : 0;
  default: return 0;
  }
}

Value bi_ten_new(ValKind k, int rows, int cols) {
  if (k == V_VEC) return val_vec(rows);
  if (k == V_ROWVEC) return val_rowvec(cols);
  return val_mat(rows, cols);
}

Value bi_real_arr(const double *d, int n) {
  Value a = val_arr(n);
  for (int i = 0; i < n; i++)
    a.a->e[i] = val_real(d[i]);
  return a;
}

bool bi_ten(const Builtin *b, Value v, unsigned kinds, ValTen **t, char *err, size_t errsz) {
  if (v.k >= 32 || !(kinds & BI_K(v.k)) || !v.t)
    return bi_efail(b, err, errsz, "unexpected %s argument", val_kind_name((ValKind)v.k));
  *t = v.t;
  return true;
}

bool bi_seq(const Builtin *b, Value v, const double **d, int *n, char *err, size_t errsz) {
  if (bi_is_ten(v)) {
    *d = v.t->d;
    *n = v.t->rows * v.t->cols;
    return true;
  }
  if (v.k == V_ARR) {
    double *buf = gc_alloc_atomic(sizeof(double) * (size_t)(v.a->n ? v.a->n : 1));
    for (int i = 0; i < v.a->n; i++) {
      if (!bi_is_num(v.a->e[i]))
        return bi_efail(b, err, errsz, "expected an array of numbers, got an array of %s",
                        val_kind_name((ValKind)v.a->e[i].k));
      buf[i] = val_as_real(v.a->e[i]);
    }
    *d = buf;
    *n = v.a->n;
    return true;
  }
  return bi_efail(b, err, errsz, "expected a container of numbers, got %s",
                  val_kind_name((ValKind)v.k));
}

const char *bi_fmt_real(double x, char *buf, size_t n) {
  if (isnan(x))
    snprintf(buf, n, "nan");
  else if (isinf(x))
    snprintf(buf, n, x > 0 ? "inf" : "-inf");
  else
    snprintf(buf, n, "%.15g", x);
  return buf;
}
