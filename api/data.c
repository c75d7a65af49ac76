/* data.c — the CmdStan-JSON data loader behind data_json_string/_file.
 *
 * jansson parses the text; the result is copied at once into a small tree on
 * the GC heap (JNode) and jansson's own tree is released, so a DataSource has
 * no manual memory to manage and can be shared by threads read-only.
 *
 * get() walks the JSON value guided by the declared type and sizes: array
 * dimensions first, then the vector length or the matrix rows and columns.
 * Messages carry the path of the offending element ("y[2, 3]") and the
 * caller's size description ("J = 8"), and the declared constraint is checked
 * element by element once the value is built.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* GNU strerror_r */
#endif
#include "data.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the JSON tree on the GC heap ---- */

typedef enum { JK_NULL, JK_FALSE, JK_TRUE, JK_INT, JK_REAL, JK_STRING, JK_ARRAY, JK_OBJECT } JKind;

typedef struct JNode JNode;
struct JNode {
  JKind kind;
  int n;             /* JK_ARRAY, JK_OBJECT: number of items */
  int64_t i;         /* JK_INT */
  double r;          /* JK_REAL */
  const char *s;     /* JK_STRING */
  size_t slen;
  JNode **items;     /* JK_ARRAY; JK_OBJECT values (top level only) */
  const char **keys; /* JK_OBJECT keys (top level only) */
};

typedef struct JsonSource {
  DataSource base; /* first: a DataSource* is a JsonSource* */
  const char *file;
  JNode *root;     /* JK_OBJECT, or NULL for data_empty */
} JsonSource;

/* Copies a jansson value; nested objects are kept only as "an object" (no
   model type reads one). Depth is bounded by jansson's parser (2048). */
static JNode *jnode_from(json_t *j, bool keep_members) {
  JNode *n = gc_alloc(sizeof(JNode));
  switch (json_typeof(j)) {
  case JSON_NULL: n->kind = JK_NULL; break;
  case JSON_FALSE: n->kind = JK_FALSE; break;
  case JSON_TRUE: n->kind = JK_TRUE; break;
  case JSON_INTEGER:
    n->kind = JK_INT;
    n->i = (int64_t)json_integer_value(j);
    break;
  case JSON_REAL:
    n->kind = JK_REAL;
    n->r = json_real_value(j);
    break;
  case JSON_STRING:
    n->kind = JK_STRING;
    n->slen = json_string_length(j);
    n->s = gc_strndup(json_string_value(j), n->slen);
    break;
  case JSON_ARRAY: {
    n->kind = JK_ARRAY;
    size_t len = json_array_size(j);
    n->n = (int)len;
    n->items = gc_alloc(sizeof(JNode *) * (len ? len : 1));
    for (size_t k = 0; k < len; k++) n->items[k] = jnode_from(json_array_get(j, k), false);
    break;
  }
  case JSON_OBJECT: {
    n->kind = JK_OBJECT;
    if (!keep_members) break;
    size_t len = json_object_size(j);
    n->items = gc_alloc(sizeof(JNode *) * (len ? len : 1));
    n->keys = gc_alloc(sizeof(char *) * (len ? len : 1));
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val) {
      n->keys[n->n] = gc_strdup(key);
      n->items[n->n] = jnode_from(val, false);
      n->n++;
    }
    break;
  }
  }
  return n;
}

static JNode *jnode_member(const JNode *obj, const char *name) {
  for (int k = 0; k < obj->n; k++)
    if (strcmp(obj->keys[k], name) == 0) return obj->items[k];
  return NULL;
}

/* ---- number text ---- */

/* Shortest text that reads back as r: -1, 0.5, 1e+300, inf, nan. */
static const char *fmt_real(double r) {
  if (isnan(r)) return "nan";
  if (isinf(r)) return r > 0 ? "inf" : "-inf";
  char tmp[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, r);
    if (strtod(tmp, NULL) == r) break;
  }
  return gc_strdup(tmp);
}

/* What a JSON value is, for "expected X, got Y": numbers show themselves
   (reals with a '.' so that 3.0 is visibly not an int). */
static const char *jnode_desc(const JNode *n) {
  switch (n->kind) {
  case JK_NULL: return "null";
  case JK_FALSE: return "false";
  case JK_TRUE: return "true";
  case JK_INT: return gc_printf("%lld", (long long)n->i);
  case JK_REAL: {
    const char *t = fmt_real(n->r);
    return strpbrk(t, ".einf") ? t : gc_printf("%s.0", t);
  }
  case JK_STRING: return "a string";
  case JK_ARRAY: return "an array";
  case JK_OBJECT: return "an object";
  }
  return "?";
}

/* ---- reading one variable ---- */

#define MAX_PATH 16

typedef struct Reader {
  const char *file, *name;
  Type t;
  int nsizes;
  const int64_t *sizes;
  const char **desc; /* per size: "J = 8" or NULL */
  Diag *d;
  int idx[MAX_PATH]; /* 1-based indices of the element being read */
  int nidx;
} Reader;

/* "y", "y[2]", "y[2, 3]" */
static const char *rd_path(const Reader *r) {
  if (r->nidx == 0) return r->name;
  const char *p = gc_printf("%s[%d", r->name, r->idx[0]);
  for (int k = 1; k < r->nidx; k++) p = gc_printf("%s, %d", p, r->idx[k]);
  return gc_printf("%s]", p);
}

static bool rd_fail(Reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool rd_fail(Reader *r, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(r->d, DIAG_DATA, (SrcPos){r->file, 0, 0}, "\"%s\": %s", rd_path(r), msg);
  return false;
}

static bool rd_push(Reader *r, int i) {
  if (r->nidx == MAX_PATH) return rd_fail(r, "too many dimensions");
  r->idx[r->nidx++] = i;
  return true;
}

/* " (J = 8)" for size k, or "" */
static const char *rd_desc(const Reader *r, int k) {
  if (k < 0 || k >= r->nsizes || !r->desc || !r->desc[k]) return "";
  return gc_printf(" (%s)", r->desc[k]);
}

/* The size the declaration gives at position k, or -1 if none is known. */
static int64_t rd_size(const Reader *r, int k) { return k < r->nsizes ? r->sizes[k] : -1; }

/* Check that n is an array of the expected length (want < 0: any).
   `one`/`many` name an element ("real"/"reals"); `k` indexes sizes for the
   description; `row` > 0 prefixes "row N: " (matrix rows). */
static bool rd_array(Reader *r, const JNode *n, int64_t want, const char *one, const char *many,
                     int k, int row) {
  const char *where = row > 0 ? gc_printf("row %d: ", row) : "";
  const char *noun = want == 1 ? one : many;
  if (n->kind != JK_ARRAY) {
    if (row > 0) one = "real", many = "reals", noun = want == 1 ? one : many;
    bool scalar = n->kind == JK_INT || n->kind == JK_REAL || n->kind == JK_STRING ||
                  n->kind == JK_TRUE || n->kind == JK_FALSE;
    const char *got = n->kind == JK_INT || n->kind == JK_REAL ? "a number" : jnode_desc(n);
    if (want < 0)
      return rd_fail(r, "%sexpected an array of %s, got %s", where, many, got);
    return rd_fail(r, "%sexpected an array of %lld %s%s, got %s%s", where, (long long)want, noun,
                   rd_desc(r, k), got,
                   want == 1 && scalar ? " (a length-1 array is written [x])" : "");
  }
  if (want >= 0 && n->n != want)
    return rd_fail(r, "%sexpected %lld %s%s, got %d", where, (long long)want, noun, rd_desc(r, k),
                   n->n);
  return true;
}

/* Real from an int, a real, or one of CmdStan's infinity/NaN strings. */
static bool special_real(const char *s, double *out) {
  static const char *const inf[] = {"inf", "infinity", NULL};
  int sign = 1;
  if (*s == '-' || *s == '+') sign = *s++ == '-' ? -1 : 1;
  for (int k = 0; inf[k]; k++)
    if (strcasecmp(s, inf[k]) == 0) {
      *out = sign * INFINITY;
      return true;
    }
  if (strcasecmp(s, "nan") == 0) {
    *out = NAN;
    return true;
  }
  return false;
}

static bool rd_real(Reader *r, const JNode *n, double *out) {
  if (n->kind == JK_INT) *out = (double)n->i;
  else if (n->kind == JK_REAL) *out = n->r;
  else if (n->kind == JK_STRING && special_real(n->s, out)) return true;
  else return rd_fail(r, "expected a real, got %s", jnode_desc(n));
  return true;
}

static bool rd_scalar(Reader *r, const JNode *n, Value *out) {
  switch (r->t.base) {
  case TY_INT:
    if (n->kind != JK_INT) return rd_fail(r, "expected an int, got %s", jnode_desc(n));
    *out = val_int(n->i);
    return true;
  case TY_REAL: {
    double x;
    if (!rd_real(r, n, &x)) return false;
    *out = val_real(x);
    return true;
  }
  case TY_BOOL:
    if (n->kind == JK_TRUE || n->kind == JK_FALSE) *out = val_bool(n->kind == JK_TRUE);
    else if (n->kind == JK_INT && (n->i == 0 || n->i == 1)) *out = val_bool(n->i == 1);
    else return rd_fail(r, "expected a bool (true, false, 0 or 1), got %s", jnode_desc(n));
    return true;
  case TY_STRING:
    if (n->kind != JK_STRING) return rd_fail(r, "expected a string, got %s", jnode_desc(n));
    *out = val_strn(n->s, n->slen);
    return true;
  default:
    return rd_fail(r, "data of this type cannot be read from JSON");
  }
}

/* vector / row_vector: a flat array of reals */
static bool rd_vector(Reader *r, const JNode *n, bool row, Value *out) {
  int k = r->t.ndims;
  if (!rd_array(r, n, rd_size(r, k), "real", "reals", k, 0)) return false;
  Value v = row ? val_rowvec(n->n) : val_vec(n->n);
  for (int i = 0; i < n->n; i++) {
    if (!rd_push(r, i + 1)) return false;
    if (!rd_real(r, n->items[i], &v.t->d[i])) return false;
    r->nidx--;
  }
  *out = v;
  return true;
}

/* matrix: an array of rows, stored column-major */
static bool rd_matrix(Reader *r, const JNode *n, Value *out) {
  int k = r->t.ndims;
  if (!rd_array(r, n, rd_size(r, k), "row", "rows", k, 0)) return false;
  int rows = n->n;
  int64_t cols = rd_size(r, k + 1);
  if (cols < 0) cols = rows > 0 && n->items[0]->kind == JK_ARRAY ? n->items[0]->n : 0;
  if (rows == 0 && cols > INT_MAX) return rd_fail(r, "%lld columns are too many", (long long)cols);
  for (int i = 0; i < rows; i++)
    if (!rd_array(r, n->items[i], cols, "column", "columns", k + 1, i + 1)) return false;
  Value m = val_mat(rows, (int)cols);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) {
      if (!rd_push(r, i + 1) || !rd_push(r, j + 1)) return false;
      if (!rd_real(r, n->items[i]->items[j], &m.t->d[(size_t)j * (size_t)rows + (size_t)i]))
        return false;
      r->nidx -= 2;
    }
  *out = m;
  return true;
}

static const char *elem_plural(Type t, int level) {
  if (level + 1 < t.ndims) return "arrays";
  switch (t.base) {
  case TY_INT: return "ints";
  case TY_REAL: return "reals";
  case TY_BOOL: return "bools";
  case TY_STRING: return "strings";
  case TY_VECTOR: return "vectors";
  case TY_ROWVEC: return "row vectors";
  case TY_MATRIX: return "matrices";
  default: return "values";
  }
}

static const char *elem_singular(Type t, int level) {
  if (level + 1 < t.ndims) return "array";
  switch (t.base) {
  case TY_INT: return "int";
  case TY_REAL: return "real";
  case TY_BOOL: return "bool";
  case TY_STRING: return "string";
  case TY_VECTOR: return "vector";
  case TY_ROWVEC: return "row vector";
  case TY_MATRIX: return "matrix";
  default: return "value";
  }
}

static bool rd_value(Reader *r, const JNode *n, int level, Value *out) {
  if (level < r->t.ndims) {
    if (!rd_array(r, n, rd_size(r, level), elem_singular(r->t, level),
                  elem_plural(r->t, level), level, 0))
      return false;
    Value a = val_arr(n->n);
    for (int i = 0; i < n->n; i++) {
      if (!rd_push(r, i + 1)) return false;
      if (!rd_value(r, n->items[i], level + 1, &a.a->e[i])) return false;
      r->nidx--;
    }
    *out = a;
    return true;
  }
  switch (r->t.base) {
  case TY_VECTOR: return rd_vector(r, n, false, out);
  case TY_ROWVEC: return rd_vector(r, n, true, out);
  case TY_MATRIX: return rd_matrix(r, n, out);
  default: return rd_scalar(r, n, out);
  }
}

/* ---- constraints ---- */

#define CON_TOL 1e-8 /* Stan's CONSTRAINT_TOLERANCE */

typedef struct Con {
  ConKind kind;
  double lo, hi; /* NaN when absent */
} Con;

static const char *num_text(Value v) {
  return v.k == V_INT ? gc_printf("%lld", (long long)v.i) : fmt_real(val_as_real(v));
}

static bool con_scalar(Reader *r, const Con *c, Value v) {
  if (v.k != V_INT && v.k != V_REAL) return true;
  double x = val_as_real(v);
  bool has_lo = !isnan(c->lo), has_hi = !isnan(c->hi);
  if (isnan(x) && (has_lo || has_hi))
    return rd_fail(r, "nan does not satisfy the %s bound %s", has_lo ? "lower" : "upper",
                   fmt_real(has_lo ? c->lo : c->hi));
  if (has_lo && x < c->lo)
    return rd_fail(r, "%s is below the lower bound %s", num_text(v), fmt_real(c->lo));
  if (has_hi && x > c->hi)
    return rd_fail(r, "%s is above the upper bound %s", num_text(v), fmt_real(c->hi));
  return true;
}

static bool con_vector(Reader *r, const Con *c, const ValTen *t) {
  int n = t->rows * t->cols;
  const double *x = t->d;
  switch (c->kind) {
  case CON_SIMPLEX: {
    double sum = 0;
    for (int i = 0; i < n; i++) {
      if (!(x[i] >= 0))
        return rd_fail(r, "is not a simplex: element %d is %s", i + 1, fmt_real(x[i]));
      sum += x[i];
    }
    if (n == 0 || !(fabs(sum - 1) <= CON_TOL))
      return rd_fail(r, "is not a simplex: elements sum to %s", fmt_real(sum));
    return true;
  }
  case CON_ORDERED:
  case CON_POS_ORDERED:
    for (int i = 0; i < n; i++) {
      if (isnan(x[i])) return rd_fail(r, "is not ordered: element %d is nan", i + 1);
      if (c->kind == CON_POS_ORDERED && i == 0 && x[0] < 0)
        return rd_fail(r, "is not positive_ordered: element 1 is %s", fmt_real(x[0]));
      if (i > 0 && !(x[i] > x[i - 1]))
        return rd_fail(r, "is not ordered: element %d (%s) is not greater than element %d (%s)",
                       i + 1, fmt_real(x[i]), i, fmt_real(x[i - 1]));
    }
    return true;
  case CON_UNIT_VECTOR: {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    if (!(fabs(ss - 1) <= CON_TOL))
      return rd_fail(r, "is not a unit vector: squared norm is %s", fmt_real(ss));
    return true;
  }
  default:
    return true;
  }
}

#define M(t, i, j) ((t)->d[(size_t)(j) * (size_t)(t)->rows + (size_t)(i)])

static bool con_matrix(Reader *r, const Con *c, const ValTen *t) {
  int n = t->rows;
  if (c->kind != CON_CHOL_CORR && c->kind != CON_COV && c->kind != CON_CORR &&
      c->kind != CON_CHOL_COV)
    return true;
  const char *what = c->kind == CON_COV    ? "a covariance matrix"
                     : c->kind == CON_CORR ? "a correlation matrix"
                     : c->kind == CON_CHOL_COV
                         ? "a Cholesky factor of a covariance matrix"
                         : "a Cholesky factor of a correlation matrix";
  if (t->rows != t->cols)
    return rd_fail(r, "is not %s: it is %d x %d, not square", what, t->rows, t->cols);
  if (c->kind == CON_CHOL_COV) {
    for (int i = 0; i < n; i++) {
      for (int j = i + 1; j < n; j++)
        if (M(t, i, j) != 0)
          return rd_fail(r, "is not %s: element [%d, %d] above the diagonal is %s", what, i + 1,
                         j + 1, fmt_real(M(t, i, j)));
      if (!(M(t, i, i) > 0))
        return rd_fail(r, "is not %s: diagonal element [%d, %d] is %s, not positive", what,
                       i + 1, i + 1, fmt_real(M(t, i, i)));
    }
    return true;
  }
  if (c->kind == CON_CORR)
    for (int i = 0; i < n; i++)
      if (!(fabs(M(t, i, i) - 1) <= CON_TOL))
        return rd_fail(r, "is not %s: diagonal element [%d, %d] is %s, not 1", what, i + 1,
                       i + 1, fmt_real(M(t, i, i)));
  if (c->kind == CON_CHOL_CORR) {
    for (int i = 0; i < n; i++) {
      double ss = 0;
      for (int j = 0; j < n; j++) {
        double v = M(t, i, j);
        if (j > i && v != 0)
          return rd_fail(r, "is not %s: element [%d, %d] above the diagonal is %s", what, i + 1,
                         j + 1, fmt_real(v));
        if (j <= i) ss += v * v;
      }
      if (!(M(t, i, i) > 0))
        return rd_fail(r, "is not %s: diagonal element [%d, %d] is %s, not positive", what,
                       i + 1, i + 1, fmt_real(M(t, i, i)));
      if (!(fabs(ss - 1) <= CON_TOL))
        return rd_fail(r, "is not %s: row %d has squared norm %s, not 1", what, i + 1,
                       fmt_real(ss));
    }
    return true;
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++)
      if (!(fabs(M(t, i, j) - M(t, j, i)) <= CON_TOL))
        return rd_fail(r, "is not %s: not symmetric ([%d, %d] is %s, [%d, %d] is %s)", what,
                       i + 1, j + 1, fmt_real(M(t, i, j)), j + 1, i + 1, fmt_real(M(t, j, i)));
  /* positive definite iff the Cholesky factorisation succeeds */
  double *l = gc_alloc_atomic(sizeof(double) * (size_t)(n > 0 ? n * n : 1));
  for (int j = 0; j < n; j++) {
    double s = M(t, j, j);
    for (int k = 0; k < j; k++) s -= l[j * n + k] * l[j * n + k];
    if (!(s > 0)) return rd_fail(r, "is not %s: not positive definite", what);
    l[j * n + j] = sqrt(s);
    for (int i = j + 1; i < n; i++) {
      double v = M(t, i, j);
      for (int k = 0; k < j; k++) v -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = v / l[j * n + j];
    }
  }
  return true;
}

/* Walks arrays down to their elements; element paths extend r->idx. */
static bool con_check(Reader *r, const Con *c, Value v) {
  switch (v.k) {
  case V_ARR:
    for (int i = 0; i < v.a->n; i++) {
      if (!rd_push(r, i + 1)) return false;
      if (!con_check(r, c, v.a->e[i])) return false;
      r->nidx--;
    }
    return true;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    if (v.k == V_MAT ? !con_matrix(r, c, v.t) : !con_vector(r, c, v.t)) return false;
    if (isnan(c->lo) && isnan(c->hi)) return true;
    for (int i = 0; i < v.t->rows; i++)
      for (int j = 0; j < v.t->cols; j++) {
        int depth = r->nidx;
        if (v.k != V_ROWVEC && !rd_push(r, i + 1)) return false;
        if (v.k != V_VEC && !rd_push(r, j + 1)) return false;
        if (!con_scalar(r, c, val_real(M(v.t, i, j)))) return false;
        r->nidx = depth;
      }
    return true;
  }
  default:
    return con_scalar(r, c, v);
  }
}

/* ---- the DataSource ---- */

/* Split "J = 8, K = 3" into one description per size.  Items map to sizes by
   position when there is one per size, otherwise by value. */
static const char **split_desc(const char *desc, int nsizes, const int64_t *sizes) {
  if (!desc || nsizes <= 0) return NULL;
  const char **items = gc_alloc(sizeof(char *) * (size_t)(nsizes + 8));
  long long *vals = gc_alloc_atomic(sizeof(long long) * (size_t)(nsizes + 8));
  int n = 0;
  for (const char *p = desc; *p && n < nsizes + 8;) {
    const char *e = strstr(p, ", ");
    size_t len = e ? (size_t)(e - p) : strlen(p);
    items[n] = gc_strndup(p, len);
    const char *eq = strstr(items[n], " = ");
    vals[n] = eq ? strtoll(eq + 3, NULL, 10) : -1;
    n++;
    p += len + (e ? 2 : 0);
  }
  const char **out = gc_alloc(sizeof(char *) * (size_t)nsizes);
  for (int k = 0; k < nsizes; k++) {
    if (n == nsizes) {
      out[k] = items[k];
      continue;
    }
    for (int m = 0; m < n; m++)
      if (vals[m] == sizes[k]) {
        out[k] = items[m];
        break;
      }
  }
  return out;
}

static bool json_get(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
                     const char *size_desc, ConKind con, double lo, double hi, Value *out,
                     Diag *d) {
  JsonSource *js = (JsonSource *)src;
  const JNode *n = js->root ? jnode_member(js->root, name) : NULL;
  if (!n) {
    diag_error(d, DIAG_DATA, (SrcPos){js->file, 0, 0}, "missing data \"%s\"", name);
    return false;
  }
  Reader r = {.file = js->file, .name = name, .t = t, .nsizes = nsizes, .sizes = sizes,
              .desc = split_desc(size_desc, nsizes, sizes), .d = d};
  Value v;
  if (!rd_value(&r, n, 0, &v)) return false;
  Con c = {con, lo, hi};
  if (con == CON_NONE || con == CON_SIMPLEX || con == CON_ORDERED || con == CON_POS_ORDERED ||
      con == CON_UNIT_VECTOR || con == CON_CHOL_CORR || con == CON_COV || con == CON_CORR ||
      con == CON_CHOL_COV)
    c.lo = c.hi = NAN; /* bounds only go with the bound kinds */
  else if (con == CON_LOWER)
    c.hi = NAN;
  else if (con == CON_UPPER)
    c.lo = NAN;
  r.nidx = 0;
  if (!con_check(&r, &c, v)) return false;
  *out = v;
  return true;
}

static bool json_has(DataSource *src, const char *name) {
  JsonSource *js = (JsonSource *)src;
  return js->root && jnode_member(js->root, name) != NULL;
}

DataSource *data_empty(void) {
  JsonSource *js = gc_alloc(sizeof(JsonSource));
  js->base.get = json_get;
  js->base.has = json_has;
  return &js->base;
}

int data_json_keys(DataSource *src, const char *const **keys) {
  JsonSource *js = (JsonSource *)src;
  *keys = js->root ? js->root->keys : NULL;
  return js->root ? js->root->n : 0;
}

int data_json_shape(DataSource *src, const char *name, int64_t *dims) {
  JsonSource *js = (JsonSource *)src;
  const JNode *n = js->root ? jnode_member(js->root, name) : NULL;
  if (!n) return -1;
  int rank = 0;
  for (; n->kind == JK_ARRAY && rank < 2; rank++) {
    dims[rank] = n->n;
    if (n->n == 0) return rank + 1;
    n = n->items[0];
  }
  return rank;
}

/* Python's json module (and so cmdstanpy) writes bare NaN, Infinity and
   -Infinity, which jansson rejects: quote them outside strings.  `shift`
   records where each insertion happened so error positions can be mapped
   back to the original text. */
typedef struct Shift {
  size_t *at; /* offsets in the new text just after each inserted pair of quotes */
  int n;
} Shift;

static bool is_word(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Appends to a growing copy; before the first special nothing is copied
   (out == NULL) and the caller keeps using the original text. */
typedef struct Copy {
  char *out;
  size_t o, cap;
} Copy;

static void copy_reserve(Copy *c, size_t extra) {
  if (c->o + extra <= c->cap) return;
  size_t cap = c->cap ? c->cap * 2 : 256;
  while (cap < c->o + extra) cap *= 2;
  char *n2 = gc_alloc_atomic(cap);
  if (c->o) memcpy(n2, c->out, c->o);
  c->out = n2;
  c->cap = cap;
}

static void shift_add(Shift *sh, int *cap, size_t at) {
  if (sh->n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    size_t *a = gc_alloc_atomic(sizeof(size_t) * (size_t)*cap);
    if (sh->n) memcpy(a, sh->at, sizeof(size_t) * (size_t)sh->n);
    sh->at = a;
  }
  sh->at[sh->n++] = at;
}

static char *quote_specials(const char *s, size_t len, size_t *outlen, Shift *sh) {
  static const char *const words[] = {"-Infinity", "Infinity", "NaN", NULL};
  Copy c = {NULL, 0, 0};
  bool copying = false, in_str = false;
  int shcap = 0;
  sh->n = 0;
  sh->at = NULL;
  for (size_t i = 0; i < len;) {
    size_t step = 1;
    const char *w = NULL;
    if (in_str) {
      if (s[i] == '\\' && i + 1 < len) step = 2;
      else if (s[i] == '"') in_str = false;
    } else if (s[i] == '"') {
      in_str = true;
    } else if (i == 0 || !is_word(s[i - 1])) {
      for (int k = 0; words[k] && !w; k++) {
        size_t l = strlen(words[k]);
        if (i + l <= len && memcmp(s + i, words[k], l) == 0 && (i + l == len || !is_word(s[i + l])))
          w = words[k];
      }
    }
    if (w) {
      if (!copying) { /* first special: copy what came before */
        copying = true;
        copy_reserve(&c, len + 64);
        memcpy(c.out, s, i);
        c.o = i;
      }
      size_t l = strlen(w);
      copy_reserve(&c, l + 2);
      c.out[c.o++] = '"';
      memcpy(c.out + c.o, w, l);
      c.o += l;
      c.out[c.o++] = '"';
      shift_add(sh, &shcap, c.o);
      i += l;
      continue;
    }
    if (copying) {
      copy_reserve(&c, step);
      memcpy(c.out + c.o, s + i, step);
      c.o += step;
    }
    i += step;
  }
  *outlen = c.o;
  return copying ? c.out : NULL; /* NULL: nothing to quote, use s as is */
}

/* Line and column (1-based, columns in characters) of byte offset pos of s,
   pointing at the last character consumed, as jansson reports them. */
static void line_col(const char *s, size_t len, size_t pos, int *line, int *col) {
  int l = 1, c = 0;
  for (size_t i = 0; i < pos && i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\n') l++, c = 0;
    else if ((ch & 0xC0) != 0x80) c++;
  }
  *line = l;
  *col = c > 0 ? c : 1;
}

DataSource *data_json_string(const char *json, size_t len, const char *name, Diag *d) {
  gc_init();
  const char *file = gc_strdup(name ? name : "<data>");
  if (!json) json = "", len = 0;
  Shift sh;
  size_t qlen = 0;
  char *quoted = quote_specials(json, len, &qlen, &sh);
  const char *text = quoted ? quoted : json;
  size_t tlen = quoted ? qlen : len;
  json_error_t err;
  json_t *root = json_loadb(text, tlen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
  if (!root) {
    size_t pos = (size_t)(err.position > 0 ? err.position : 0);
    size_t removed = 0;
    for (int k = 0; k < sh.n && sh.at[k] <= pos; k++) removed += 2;
    int line, col;
    line_col(json, len, pos - removed, &line, &col);
    diag_error(d, DIAG_DATA, (SrcPos){file, line, col}, "invalid JSON: %s", err.text);
    return NULL;
  }
  if (!json_is_object(root)) {
    json_decref(root);
    diag_error(d, DIAG_DATA, (SrcPos){file, 0, 0}, "top level must be an object");
    return NULL;
  }
  DataSource *src = data_json_object(root, file);
  json_decref(root);
  return src;
}

DataSource *data_json_object(struct json_t *root, const char *name) {
  gc_init();
  JsonSource *js = gc_alloc(sizeof(JsonSource));
  js->base.get = json_get;
  js->base.has = json_has;
  js->file = gc_strdup(name ? name : "<data>");
  js->root = jnode_from(root, true);
  return &js->base;
}

DataSource *data_json_file(const char *path, Diag *d) {
  size_t n;
  char *text = diag_read_file(path, &n, d);
  return text ? data_json_string(text, n, path, d) : NULL;
}
