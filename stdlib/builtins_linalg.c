/* builtins_linalg.c — vector, matrix and array functions a model can call
 * (Stan's names): construction, reshaping, slicing, sorting, products and the
 * dense factorisations (Cholesky, LU with partial pivoting) behind inverse,
 * determinant and the solves.
 *
 * Matrices are column-major (A(i, j) = d[j * rows + i]).  Sizes that do not
 * fit and matrices that cannot be factored are errors with the function's
 * name; NaN elements flow through as NaN where Stan's functions let them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins_impl.h"
#include "linalg.h"

#define AT(t, i, j) ((t)->d[(size_t)(j) * (size_t)(t)->rows + (size_t)(i)])

/* ---- small shared helpers --------------------------------------------------- */

static bool nonneg(const Builtin *b, int64_t n, const char *what, char *err, size_t errsz) {
  if (n >= 0 && n <= 100000000) return true;
  return bi_efail(b, err, errsz, "%s must be between 0 and 1e8, got %lld", what, (long long)n);
}

static bool square(const Builtin *b, const ValTen *t, char *err, size_t errsz) {
  if (t->rows == t->cols) return true;
  return bi_efail(b, err, errsz, "matrix is not square (%dx%d)", t->rows, t->cols);
}

static bool symmetric(const Builtin *b, const ValTen *t, char *err, size_t errsz) {
  if (!square(b, t, err, errsz)) return false;
  for (int j = 0; j < t->cols; j++)
    for (int i = 0; i < t->rows; i++) {
      double x = AT(t, i, j), y = AT(t, j, i);
      if (isnan(x))
        return bi_efail(b, err, errsz, "matrix has a NaN element at (%d, %d)", i + 1, j + 1);
      if (i < j && !(fabs(x - y) <= 1e-8 * fmax(1.0, fmax(fabs(x), fabs(y)))))
        return bi_efail(b, err, errsz,
                        "matrix is not symmetric: element (%d, %d) is %g, (%d, %d) is %g", i + 1,
                        j + 1, x, j + 1, i + 1, y);
    }
  return true;
}

/* Any vector-like value viewed as a rows x cols block: a vector is n x 1, a row
 * vector 1 x n, a scalar 1 x 1 (d points at *tmp then). */
typedef struct {
  int rows, cols;
  const double *d;
} View;

static View view_of(Value v, double *tmp) {
  View w = {1, 1, tmp};
  if (bi_is_ten(v)) {
    w.rows = v.t->rows;
    w.cols = v.t->cols;
    w.d = v.t->d;
  } else {
    *tmp = val_as_real(v);
  }
  return w;
}

/* The product of the two viewed blocks, checked. */
static Value matmul(const double *a, int ar, int ac, const double *bb, int bc) {
  Value r = val_mat(ar, bc);
  for (int j = 0; j < bc; j++)
    for (int k = 0; k < ac; k++) {
      double x = bb[(size_t)j * ac + k];
      for (int i = 0; i < ar; i++)
        r.t->d[(size_t)j * ar + i] += a[(size_t)k * ar + i] * x;
    }
  return r;
}

static Value transpose_of(const ValTen *t, ValKind k) {
  Value r = bi_ten_new(k, t->cols, t->rows);
  for (int j = 0; j < t->cols; j++)
    for (int i = 0; i < t->rows; i++)
      AT(r.t, j, i) = AT(t, i, j);
  return r;
}

/* ---- dot products and distances ---------------------------------------------- */

static bool two_seqs(const Builtin *b, const Value *args, const double **x, const double **y,
                     int *n, char *err, size_t errsz) {
  int m;
  if (!bi_seq(b, args[0], x, n, err, errsz) || !bi_seq(b, args[1], y, &m, err, errsz)) return false;
  if (*n != m) return bi_efail(b, err, errsz, "sizes do not match: %d and %d elements", *n, m);
  return true;
}

enum { D_DOT, D_SQDIST, D_DIST };

static bool eval_dot(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  if (bi_is_num(args[0]) && bi_is_num(args[1])) { /* distance(real, real) */
    double d = val_as_real(args[0]) - val_as_real(args[1]);
    *out = val_real(op == D_SQDIST ? d * d : fabs(d));
    return true;
  }
  const double *x, *y;
  int n;
  if (!two_seqs(b, args, &x, &y, &n, err, errsz)) return false;
  double s = 0;
  for (int i = 0; i < n; i++)
    s += op == D_DOT ? x[i] * y[i] : (x[i] - y[i]) * (x[i] - y[i]);
  *out = val_real(op == D_DIST ? sqrt(s) : s);
  return true;
}

enum { N_DOT_SELF, N_NORM1, N_NORM2 };

static bool eval_norm(BI_EVAL_ARGS) {
  const double *x;
  int n;
  if (!bi_seq(b, args[0], &x, &n, err, errsz)) return false;
  double s = 0;
  for (int i = 0; i < n; i++)
    s += BI_SPEC(b)->op == N_NORM1 ? fabs(x[i]) : x[i] * x[i];
  *out = val_real(BI_SPEC(b)->op == N_NORM2 ? sqrt(s) : s);
  return true;
}

/* columns_dot_product / rows_dot_product */
static bool eval_rcdot(BI_EVAL_ARGS) {
  bool cols = BI_SPEC(b)->op == 0;
  ValTen *x, *y;
  if (!bi_ten(b, args[0], BI_KTEN, &x, err, errsz) || !bi_ten(b, args[1], BI_KTEN, &y, err, errsz))
    return false;
  if (x->rows != y->rows || x->cols != y->cols)
    return bi_efail(b, err, errsz, "sizes do not match: %dx%d and %dx%d", x->rows, x->cols, y->rows,
                    y->cols);
  int n = cols ? x->cols : x->rows;
  Value r = cols ? val_rowvec(n) : val_vec(n);
  for (int j = 0; j < x->cols; j++)
    for (int i = 0; i < x->rows; i++)
      r.t->d[cols ? j : i] += AT(x, i, j) * AT(y, i, j);
  *out = r;
  return true;
}

/* ---- sizes and construction ------------------------------------------------- */

static bool eval_rows_cols(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_KTEN, &t, err, errsz)) return false;
  *out = val_int(BI_SPEC(b)->op == 0 ? t->rows : t->cols);
  return true;
}

enum { REP_VEC, REP_ROWVEC, REP_MAT };

static bool eval_rep(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  if (op == REP_MAT && nargs == 2) { /* rep_matrix(vector, n) or rep_matrix(row_vector, m) */
    ValTen *t;
    if (!bi_ten(b, args[0], BI_KVEC, &t, err, errsz)) return false;
    int64_t k = bi_int(args[1]);
    if (!nonneg(b, k, "the number of copies", err, errsz)) return false;
    bool colv = args[0].k == V_VEC;
    int n = t->rows * t->cols;
    Value r = colv ? val_mat(n, (int)k) : val_mat((int)k, n);
    for (int j = 0; j < r.t->cols; j++)
      for (int i = 0; i < r.t->rows; i++)
        AT(r.t, i, j) = t->d[colv ? i : j];
    *out = r;
    return true;
  }
  double x = val_as_real(args[0]);
  int64_t m = bi_int(args[1]), n = op == REP_MAT ? bi_int(args[2]) : 1;
  if (!nonneg(b, m, op == REP_MAT ? "the number of rows" : "the size", err, errsz) ||
      !nonneg(b, n, "the number of columns", err, errsz))
    return false;
  if (m * n > 100000000)
    return bi_efail(b, err, errsz, "result too large (%lldx%lld)", (long long)m, (long long)n);
  Value r = op == REP_VEC      ? val_vec((int)m)
            : op == REP_ROWVEC ? val_rowvec((int)m)
                               : val_mat((int)m, (int)n);
  for (int64_t i = 0; i < m * n; i++)
    r.t->d[i] = x;
  *out = r;
  return true;
}

static bool check_rep_array(BI_CHECK_ARGS) {
  bool ok = nargs >= 2 && nargs <= 4 && args[0].base != TY_VOID && args[0].base != TY_DIST &&
            args[0].ndims + nargs - 1 <= 255;
  for (int i = 1; ok && i < nargs; i++)
    ok = bi_ty_num(args[i]) && args[i].base != TY_REAL;
  if (!ok) {
    char got[200];
    return bi_fail(err, errsz,
                   "rep_array expects (T x, int n), (T x, int m, int n) or (T x, int k, "
                   "int m, int n), got %s",
                   bi_types_str(nargs, args, got, sizeof got));
  }
  *ret = ty_make((TyBase)args[0].base, args[0].ndims + nargs - 1);
  return true;
}

static Value rep_level(Value x, const int64_t *dims, int nd) {
  Value a = val_arr((int)dims[0]);
  for (int i = 0; i < a.a->n; i++)
    a.a->e[i] = nd == 1 ? val_copy(x) : rep_level(x, dims + 1, nd - 1);
  return a;
}

static bool eval_rep_array(BI_EVAL_ARGS) {
  int64_t dims[3], total = 1;
  for (int i = 1; i < nargs; i++) {
    dims[i - 1] = bi_int(args[i]);
    if (!nonneg(b, dims[i - 1], "the size", err, errsz)) return false;
    total *= dims[i - 1] ? dims[i - 1] : 1;
    if (total > 100000000) return bi_efail(b, err, errsz, "result too large");
  }
  *out = rep_level(args[0], dims, nargs - 1);
  return true;
}

enum {
  SZ_IDENTITY,
  SZ_ZEROS_V,
  SZ_ZEROS_RV,
  SZ_ZEROS_A,
  SZ_ZEROS_IA,
  SZ_ONES_V,
  SZ_ONES_RV,
  SZ_ONES_A,
  SZ_ONES_IA,
  SZ_SIMPLEX
};

/* identity_matrix, zeros_*, ones_*, uniform_simplex: a constant of size n */
static bool eval_sized(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  int64_t n = bi_int(args[0]);
  if (!nonneg(b, n, "the size", err, errsz)) return false;
  if (op == SZ_IDENTITY && n > 10000)
    return bi_efail(b, err, errsz, "size %lld is too large", (long long)n);
  int k = (int)n;
  double one = op >= SZ_ONES_V && op <= SZ_ONES_IA ? 1.0 : 0.0;
  if (op == SZ_SIMPLEX) {
    if (k == 0) return bi_efail(b, err, errsz, "the size must be positive");
    one = 1.0 / k;
  }
  switch (op) {
  case SZ_IDENTITY:
    *out = val_mat(k, k);
    for (int i = 0; i < k; i++)
      AT(out->t, i, i) = 1;
    return true;
  case SZ_ZEROS_A:
  case SZ_ONES_A:
  case SZ_ZEROS_IA:
  case SZ_ONES_IA: {
    bool ints = op == SZ_ZEROS_IA || op == SZ_ONES_IA;
    *out = val_arr(k);
    for (int i = 0; i < k; i++)
      out->a->e[i] = ints ? val_int((int64_t)one) : val_real(one);
    return true;
  }
  default:
    *out = op == SZ_ZEROS_RV || op == SZ_ONES_RV ? val_rowvec(k) : val_vec(k);
    for (int i = 0; i < k; i++)
      out->t->d[i] = one;
    return true;
  }
}

enum { LS_VEC, LS_ROWVEC, LS_ARR };

static bool eval_linspaced(BI_EVAL_ARGS) {
  int64_t n = bi_int(args[0]);
  double lo = val_as_real(args[1]), hi = val_as_real(args[2]);
  if (!nonneg(b, n, "the size", err, errsz)) return false;
  if (!(lo <= hi)) return bi_efail(b, err, errsz, "low (%g) must be <= high (%g)", lo, hi);
  double *d = gc_alloc_atomic(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) /* Stan: a single point is `high` */
    d[i] = n == 1 ? hi : (i == n - 1 ? hi : lo + (hi - lo) * (double)i / (double)(n - 1));
  int op = BI_SPEC(b)->op;
  if (op == LS_ARR) {
    *out = bi_real_arr(d, (int)n);
  } else {
    *out = op == LS_VEC ? val_vec((int)n) : val_rowvec((int)n);
    memcpy(out->t->d, d, sizeof(double) * (size_t)n);
  }
  return true;
}

enum { OH_VEC, OH_ROWVEC, OH_ARR, OH_INT_ARR };

static bool eval_one_hot(BI_EVAL_ARGS) {
  int64_t n = bi_int(args[0]), k = bi_int(args[1]);
  if (n < 1 || n > 100000000)
    return bi_efail(b, err, errsz, "the size must be positive, got %lld", (long long)n);
  if (k < 1 || k > n)
    return bi_efail(b, err, errsz, "index %lld out of range for size %lld", (long long)k,
                    (long long)n);
  int op = BI_SPEC(b)->op;
  if (op == OH_ARR || op == OH_INT_ARR) {
    *out = val_arr((int)n);
    for (int i = 0; i < n; i++)
      out->a->e[i] = op == OH_INT_ARR ? val_int(i == k - 1) : val_real(i == k - 1);
  } else {
    *out = op == OH_VEC ? val_vec((int)n) : val_rowvec((int)n);
    out->t->d[k - 1] = 1;
  }
  return true;
}

/* ---- conversions --------------------------------------------------------------- */

enum { TO_VEC, TO_ROWVEC, TO_ARR1 };

static bool eval_to_1d(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  Value v = args[0];
  size_t n = val_numel(v);
  if (n > 100000000) return bi_efail(b, err, errsz, "too many elements");
  if (op == TO_ARR1 && v.k == V_ARR) { /* keeps ints; arrays flatten row-major */
    Value leaf = v;
    while (leaf.k == V_ARR && leaf.a->n > 0)
      leaf = leaf.a->e[0];
    Value r = val_arr((int)n);
    int k = 0;
    Value stack[32];
    int idx[32], depth = 0;
    stack[0] = v;
    idx[0] = 0;
    while (depth >= 0) { /* iterative walk over nested arrays */
      Value cur = stack[depth];
      if (idx[depth] >= cur.a->n) {
        depth--;
        continue;
      }
      Value e = cur.a->e[idx[depth]++];
      if (e.k == V_ARR) {
        if (depth + 1 >= 32) return bi_efail(b, err, errsz, "array nested too deeply");
        stack[++depth] = e;
        idx[depth] = 0;
      } else if ((size_t)k < n) {
        r.a->e[k++] = leaf.k == V_INT ? val_int(bi_int(e)) : val_real(val_as_real(e));
      }
    }
    *out = r;
    return true;
  }
  double *d = gc_alloc_atomic(sizeof(double) * (n ? n : 1));
  n = val_flatten(v, d);
  if (op == TO_ARR1) {
    *out = bi_real_arr(d, (int)n);
  } else {
    *out = op == TO_VEC ? val_vec((int)n) : val_rowvec((int)n);
    memcpy(out->t->d, d, sizeof(double) * n);
  }
  return true;
}

static bool eval_to_matrix(BI_EVAL_ARGS) {
  Value v = args[0];
  if (nargs == 3) {
    int64_t m = bi_int(args[1]), n = bi_int(args[2]);
    if (!nonneg(b, m, "the number of rows", err, errsz) ||
        !nonneg(b, n, "the number of columns", err, errsz))
      return false;
    size_t have = val_numel(v);
    if ((size_t)(m * n) != have)
      return bi_efail(b, err, errsz, "cannot make a %lldx%lld matrix from %zu elements",
                      (long long)m, (long long)n, have);
    Value r = val_mat((int)m, (int)n);
    val_flatten(v, r.t->d); /* column-major fill, as Stan */
    *out = r;
    return true;
  }
  if (bi_is_ten(v)) {
    *out = val_mat(v.t->rows, v.t->cols);
    memcpy(out->t->d, v.t->d, sizeof(double) * (size_t)v.t->rows * (size_t)v.t->cols);
    return true;
  }
  if (v.k != V_ARR)
    return bi_efail(b, err, errsz, "unexpected %s argument", val_kind_name((ValKind)v.k));
  int rows = v.a->n, cols = rows ? (v.a->e[0].k == V_ARR ? v.a->e[0].a->n : -1) : 0;
  if (cols < 0) return bi_efail(b, err, errsz, "expected a 2-dimensional array");
  Value r = val_mat(rows, cols);
  for (int i = 0; i < rows; i++) {
    Value row = v.a->e[i];
    if (row.k != V_ARR || row.a->n != cols)
      return bi_efail(b, err, errsz, "row %d has %d elements, expected %d", i + 1,
                      row.k == V_ARR ? row.a->n : 1, cols);
    for (int j = 0; j < cols; j++)
      AT(r.t, i, j) = val_as_real(row.a->e[j]);
  }
  *out = r;
  return true;
}

static bool eval_to_array_2d(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &t, err, errsz)) return false;
  Value r = val_arr(t->rows);
  for (int i = 0; i < t->rows; i++) {
    r.a->e[i] = val_arr(t->cols);
    for (int j = 0; j < t->cols; j++)
      r.a->e[i].a->e[j] = val_real(AT(t, i, j));
  }
  *out = r;
  return true;
}

/* ---- slices of sequences: head tail segment reverse -------------------------------- */

enum { SQ_HEAD, SQ_TAIL, SQ_SEGMENT, SQ_REVERSE };

static bool check_seqop(BI_CHECK_ARGS) {
  int op = BI_SPEC(b)->op;
  int want = op == SQ_REVERSE ? 1 : op == SQ_SEGMENT ? 3 : 2;
  bool ok = nargs == want &&
            (args[0].ndims > 0 ||
             (args[0].ndims == 0 && (args[0].base == TY_VECTOR || args[0].base == TY_ROWVEC)));
  for (int i = 1; ok && i < nargs; i++)
    ok = bi_ty_num(args[i]) && args[i].base != TY_REAL;
  if (!ok) {
    static const char *forms[] = {"(vector, int), (row_vector, int) or (T[], int)",
                                  "(vector, int), (row_vector, int) or (T[], int)",
                                  "(vector, int, int), (row_vector, int, int) or (T[], int, int)",
                                  "(vector), (row_vector) or (T[])"};
    char got[200];
    return bi_fail(err, errsz, "%s expects %s, got %s", b->name, forms[op],
                   bi_types_str(nargs, args, got, sizeof got));
  }
  *ret = args[0];
  return true;
}

static bool eval_seqop(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  Value v = args[0];
  int n;
  if (v.k == V_ARR)
    n = v.a->n;
  else if (v.k == V_VEC || v.k == V_ROWVEC)
    n = v.t->rows * v.t->cols;
  else
    return bi_efail(b, err, errsz, "unexpected %s argument", val_kind_name((ValKind)v.k));
  int64_t start = 0, len = n; /* 0-based start */
  if (op == SQ_HEAD || op == SQ_TAIL) {
    len = bi_int(args[1]);
    if (len < 0 || len > n)
      return bi_efail(b, err, errsz, "size %lld out of range for %d elements", (long long)len, n);
    start = op == SQ_HEAD ? 0 : n - len;
  } else if (op == SQ_SEGMENT) {
    int64_t i = bi_int(args[1]);
    len = bi_int(args[2]);
    if (i < 1 || len < 0 || i - 1 + len > n)
      return bi_efail(b, err, errsz, "segment from %lld of size %lld out of range for %d elements",
                      (long long)i, (long long)len, n);
    start = i - 1;
  }
  if (v.k == V_ARR) {
    Value r = val_arr((int)len);
    for (int64_t k = 0; k < len; k++)
      r.a->e[k] = val_copy(v.a->e[op == SQ_REVERSE ? n - 1 - k : start + k]);
    *out = r;
  } else {
    Value r = bi_ten_new((ValKind)v.k, (int)len, (int)len);
    for (int64_t k = 0; k < len; k++)
      r.t->d[k] = v.t->d[op == SQ_REVERSE ? n - 1 - k : start + k];
    *out = r;
  }
  return true;
}

/* ---- sorting ------------------------------------------------------------------------ */

typedef struct {
  double v;
  int64_t iv;
  int idx;
} SortItem;

static int cmp_real(const void *pa, const void *pb) {
  const SortItem *a = pa, *b = pb;
  if (a->v != b->v) return a->v < b->v ? -1 : 1;
  return a->idx - b->idx;
}
static int cmp_int(const void *pa, const void *pb) {
  const SortItem *a = pa, *b = pb;
  if (a->iv != b->iv) return a->iv < b->iv ? -1 : 1;
  return a->idx - b->idx;
}

enum { SO_ASC, SO_DESC, SO_IDX_ASC, SO_IDX_DESC };

/* Stable sort of the elements of v (desc: ascending of the negation, ties
 * keep their order). */
static bool sort_items(const Builtin *b, Value v, bool desc, SortItem **items, int *n, bool *ints,
                       char *err, size_t errsz) {
  const double *d;
  if (!bi_seq(b, v, &d, n, err, errsz)) return false;
  *ints = v.k == V_ARR && *n > 0 && v.a->e[0].k == V_INT;
  SortItem *s = gc_alloc_atomic(sizeof(SortItem) * (size_t)(*n ? *n : 1));
  for (int i = 0; i < *n; i++) {
    if (isnan(d[i])) return bi_efail(b, err, errsz, "element %d is NaN", i + 1);
    s[i].idx = i;
    s[i].iv = *ints ? bi_int(v.a->e[i]) : 0;
    s[i].v = desc ? -d[i] : d[i];
    if (desc) s[i].iv = s[i].iv == INT64_MIN ? INT64_MAX : -s[i].iv;
  }
  qsort(s, (size_t)*n, sizeof *s, *ints ? cmp_int : cmp_real);
  *items = s;
  return true;
}

static bool eval_sort(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  SortItem *s = NULL;
  int n;
  bool ints = false;
  if (!sort_items(b, args[0], op == SO_DESC || op == SO_IDX_DESC, &s, &n, &ints, err, errsz))
    return false;
  Value v = args[0];
  if (op == SO_IDX_ASC || op == SO_IDX_DESC) {
    *out = val_arr(n);
    for (int i = 0; i < n; i++)
      out->a->e[i] = val_int(s[i].idx + 1);
  } else if (v.k == V_ARR) {
    *out = val_arr(n);
    for (int i = 0; i < n; i++)
      out->a->e[i] = v.a->e[s[i].idx];
  } else {
    *out = bi_ten_new((ValKind)v.k, n, n);
    for (int i = 0; i < n; i++)
      out->t->d[i] = v.t->d[s[i].idx];
  }
  return true;
}

static bool eval_rank(BI_EVAL_ARGS) {
  const double *d;
  int n;
  if (!bi_seq(b, args[0], &d, &n, err, errsz)) return false;
  int64_t s = bi_int(args[1]);
  if (s < 1 || s > n)
    return bi_efail(b, err, errsz, "index %lld out of range for %d elements", (long long)s, n);
  int64_t r = 0;
  bool ints = args[0].k == V_ARR && args[0].a->e[0].k == V_INT;
  for (int i = 0; i < n; i++)
    r += ints ? bi_int(args[0].a->e[i]) < bi_int(args[0].a->e[s - 1]) : d[i] < d[s - 1];
  *out = val_int(r);
  return true;
}

static bool eval_cumsum(BI_EVAL_ARGS) {
  Value v = args[0];
  if (v.k == V_ARR && v.a->n > 0 && v.a->e[0].k == V_INT) {
    Value r = val_arr(v.a->n);
    int64_t acc = 0;
    for (int i = 0; i < v.a->n; i++) {
      if (__builtin_add_overflow(acc, bi_int(v.a->e[i]), &acc))
        return bi_efail(b, err, errsz, "integer overflow");
      r.a->e[i] = val_int(acc);
    }
    *out = r;
    return true;
  }
  const double *d;
  int n;
  if (!bi_seq(b, v, &d, &n, err, errsz)) return false;
  double *c = gc_alloc_atomic(sizeof(double) * (size_t)(n ? n : 1));
  double acc = 0;
  for (int i = 0; i < n; i++)
    c[i] = acc += d[i];
  if (v.k == V_ARR) {
    *out = bi_real_arr(c, n);
  } else {
    *out = bi_ten_new((ValKind)v.k, n, n);
    memcpy(out->t->d, c, sizeof(double) * (size_t)n);
  }
  return true;
}

static bool eval_softmax(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_K(V_VEC), &t, err, errsz)) return false;
  int n = t->rows;
  if (n == 0) return bi_efail(b, err, errsz, "empty vector");
  double mx = -INFINITY;
  for (int i = 0; i < n; i++)
    if (t->d[i] > mx || isnan(t->d[i])) mx = isnan(mx) ? mx : t->d[i];
  double s = 0;
  for (int i = 0; i < n; i++)
    s += exp(t->d[i] - mx);
  double ls = log(s); /* relative to mx: adding mx first would round away low bits */
  Value r = val_vec(n);
  for (int i = 0; i < n; i++)
    r.t->d[i] = BI_SPEC(b)->op == 0 ? exp(t->d[i] - mx) / s : (t->d[i] - mx) - ls;
  *out = r;
  return true;
}

/* ---- matrix shape functions ------------------------------------------------------- */

static bool eval_diag_matrix(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_KVEC, &t, err, errsz)) return false;
  int n = t->rows * t->cols;
  Value r = val_mat(n, n);
  for (int i = 0; i < n; i++)
    AT(r.t, i, i) = t->d[i];
  *out = r;
  return true;
}

static bool eval_diagonal(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &t, err, errsz)) return false;
  int n = t->rows < t->cols ? t->rows : t->cols;
  Value r = val_vec(n);
  for (int i = 0; i < n; i++)
    r.t->d[i] = AT(t, i, i);
  *out = r;
  return true;
}

static bool eval_transpose(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_KTEN, &t, err, errsz)) return false;
  ValKind k = args[0].k == V_VEC ? V_ROWVEC : args[0].k == V_ROWVEC ? V_VEC : V_MAT;
  *out = transpose_of(t, k);
  return true;
}

static bool eval_append(BI_EVAL_ARGS) {
  bool rows = BI_SPEC(b)->op == 0; /* append_row stacks vertically */
  double ta, tb;
  View x = view_of(args[0], &ta), y = view_of(args[1], &tb);
  if (rows ? x.cols != y.cols : x.rows != y.rows)
    return bi_efail(b, err, errsz, "sizes do not match: %dx%d and %dx%d", x.rows, x.cols, y.rows,
                    y.cols);
  int r = rows ? x.rows + y.rows : x.rows, c = rows ? x.cols : x.cols + y.cols;
  /* a vector stays a vector (append_row), a row vector a row vector (append_col) */
  bool vecs =
      rows ? args[0].k != V_MAT && args[0].k != V_ROWVEC && args[1].k != V_MAT &&
                 args[1].k != V_ROWVEC
           : args[0].k != V_MAT && args[0].k != V_VEC && args[1].k != V_MAT && args[1].k != V_VEC;
  Value o = vecs ? bi_ten_new(rows ? V_VEC : V_ROWVEC, r, c) : val_mat(r, c);
  for (int j = 0; j < c; j++)
    for (int i = 0; i < r; i++) {
      bool first = rows ? i < x.rows : j < x.cols;
      const View *w = first ? &x : &y;
      int ii = rows && !first ? i - x.rows : i, jj = !rows && !first ? j - x.cols : j;
      AT(o.t, i, j) = w->d[(size_t)jj * w->rows + ii];
    }
  *out = o;
  return true;
}

enum { BL_BLOCK, BL_COL, BL_ROW, BL_SUB_COL, BL_SUB_ROW };

static bool eval_block(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &t, err, errsz)) return false;
  int op = BI_SPEC(b)->op;
  int64_t i = 1, j = 1, nr = t->rows, nc = t->cols;
  switch (op) {
  case BL_BLOCK:
    i = bi_int(args[1]);
    j = bi_int(args[2]);
    nr = bi_int(args[3]);
    nc = bi_int(args[4]);
    break;
  case BL_COL:
    j = bi_int(args[1]);
    nc = 1;
    break;
  case BL_ROW:
    i = bi_int(args[1]);
    nr = 1;
    break;
  case BL_SUB_COL:
    i = bi_int(args[1]);
    j = bi_int(args[2]);
    nr = bi_int(args[3]);
    nc = 1;
    break;
  default:
    i = bi_int(args[1]);
    j = bi_int(args[2]);
    nc = bi_int(args[3]);
    nr = 1;
    break;
  }
  if (i < 1 || j < 1 || nr < 0 || nc < 0 || i - 1 + nr > t->rows || j - 1 + nc > t->cols ||
      ((op == BL_ROW || op == BL_SUB_ROW) && i > t->rows) ||
      ((op == BL_COL || op == BL_SUB_COL) && j > t->cols))
    return bi_efail(b, err, errsz,
                    "%lldx%lld block at (%lld, %lld) out of range for a %dx%d matrix",
                    (long long)nr, (long long)nc, (long long)i, (long long)j, t->rows, t->cols);
  ValKind k = op == BL_COL || op == BL_SUB_COL   ? V_VEC
              : op == BL_ROW || op == BL_SUB_ROW ? V_ROWVEC
                                                 : V_MAT;
  Value r = bi_ten_new(k, (int)nr, (int)nc);
  for (int c = 0; c < nc; c++)
    for (int rr = 0; rr < nr; rr++)
      AT(r.t, rr, c) = AT(t, i - 1 + rr, j - 1 + c);
  *out = r;
  return true;
}

/* ---- products ------------------------------------------------------------------------ */

static bool eval_crossprod(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &t, err, errsz)) return false;
  Value tr = transpose_of(t, V_MAT);
  if (BI_SPEC(b)->op == 0)
    *out = matmul(tr.t->d, t->cols, t->rows, t->d, t->cols); /* A'A */
  else
    *out = matmul(t->d, t->rows, t->cols, tr.t->d, t->rows); /* AA' */
  return true;
}

static bool eval_quad_form(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op; /* 0 quad_form, 1 quad_form_sym */
  ValTen *a, *v;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &a, err, errsz) ||
      !bi_ten(b, args[1], BI_K(V_MAT) | BI_K(V_VEC), &v, err, errsz))
    return false;
  if (op == 1 ? !symmetric(b, a, err, errsz) : !square(b, a, err, errsz)) return false;
  if (v->rows != a->rows)
    return bi_efail(b, err, errsz,
                    "sizes do not match: matrix is %dx%d, second argument has %d rows", a->rows,
                    a->cols, v->rows);
  Value av = matmul(a->d, a->rows, a->cols, v->d, v->cols);
  Value vt = transpose_of(v, V_MAT);
  Value r = matmul(vt.t->d, v->cols, v->rows, av.t->d, v->cols);
  if (args[1].k == V_VEC) {
    *out = val_real(r.t->d[0]);
    return true;
  }
  if (op == 1) /* symmetric by construction, exactly */
    for (int j = 0; j < r.t->cols; j++)
      for (int i = 0; i < j; i++)
        AT(r.t, i, j) = AT(r.t, j, i) = 0.5 * (AT(r.t, i, j) + AT(r.t, j, i));
  *out = r;
  return true;
}

/* diag_pre_multiply (op 0), diag_post_multiply (op 1), quad_form_diag (op 2) */
static bool eval_diag_mult(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  ValTen *m, *v;
  int mi = op == 0 ? 1 : 0;
  if (!bi_ten(b, args[mi], BI_K(V_MAT), &m, err, errsz) ||
      !bi_ten(b, args[1 - mi], BI_KVEC, &v, err, errsz))
    return false;
  int n = v->rows * v->cols;
  if (op == 2 && !square(b, m, err, errsz)) return false;
  if ((op == 0 && n != m->rows) || (op != 0 && n != m->cols))
    return bi_efail(b, err, errsz, "sizes do not match: vector has %d elements, matrix is %dx%d", n,
                    m->rows, m->cols);
  Value r = val_mat(m->rows, m->cols);
  for (int j = 0; j < m->cols; j++)
    for (int i = 0; i < m->rows; i++) {
      double f = op == 0 ? v->d[i] : op == 1 ? v->d[j] : v->d[i] * v->d[j];
      AT(r.t, i, j) = f * AT(m, i, j);
    }
  *out = r;
  return true;
}

static bool eval_mlt_self_t(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &t, err, errsz)) return false;
  Value l = val_mat(t->rows, t->cols); /* the lower-triangular part only */
  for (int j = 0; j < t->cols; j++)
    for (int i = j; i < t->rows; i++)
      AT(l.t, i, j) = AT(t, i, j);
  Value lt = transpose_of(l.t, V_MAT);
  *out = matmul(l.t->d, t->rows, t->cols, lt.t->d, t->rows);
  return true;
}

static bool eval_add_diag(BI_EVAL_ARGS) {
  ValTen *m;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &m, err, errsz)) return false;
  int n = m->rows < m->cols ? m->rows : m->cols;
  if (bi_is_ten(args[1]) && args[1].t->rows * args[1].t->cols != n)
    return bi_efail(b, err, errsz,
                    "sizes do not match: the diagonal has %d elements, the vector %d", n,
                    args[1].t->rows * args[1].t->cols);
  Value r = val_copy(args[0]);
  for (int i = 0; i < n; i++)
    AT(r.t, i, i) += bi_is_ten(args[1]) ? args[1].t->d[i] : val_as_real(args[1]);
  *out = r;
  return true;
}

static bool eval_trace(BI_EVAL_ARGS) {
  ValTen *m;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &m, err, errsz)) return false;
  double s = 0;
  for (int i = 0; i < m->rows && i < m->cols; i++)
    s += AT(m, i, i);
  *out = val_real(s);
  return true;
}

/* ---- factorisations --------------------------------------------------------------- */

/* Lower Cholesky factor of the symmetric matrix a; false if not positive definite. */
static bool chol(const ValTen *a, ValTen *l) {
  int n = a->rows;
  for (int j = 0; j < n; j++) {
    double s = AT(a, j, j);
    for (int k = 0; k < j; k++)
      s -= AT(l, j, k) * AT(l, j, k);
    if (!(s > 0)) return false;
    double ljj = sqrt(s);
    AT(l, j, j) = ljj;
    for (int i = j + 1; i < n; i++) {
      double t = AT(a, i, j);
      for (int k = 0; k < j; k++)
        t -= AT(l, i, k) * AT(l, j, k);
      AT(l, i, j) = t / ljj;
    }
  }
  return true;
}

static bool chol_checked(const Builtin *b, Value m, Value *l, char *err, size_t errsz) {
  ValTen *t;
  if (!bi_ten(b, m, BI_K(V_MAT), &t, err, errsz) || !symmetric(b, t, err, errsz)) return false;
  *l = val_mat(t->rows, t->cols);
  if (!chol(t, l->t)) return bi_efail(b, err, errsz, "matrix is not positive definite");
  return true;
}

static bool eval_cholesky(BI_EVAL_ARGS) { return chol_checked(b, args[0], out, err, errsz); }

/* LU with partial pivoting, in place on a copy: returns the factored copy, the
 * row permutation and the sign of the permutation. */
typedef struct {
  Value lu;
  int *piv;
  int sign;
  bool singular;
} Lu;

static Lu lu_factor(const ValTen *a) {
  Lu f = {val_copy((Value){.k = V_MAT, .t = (ValTen *)a}), NULL, 1, false};
  int n = a->rows;
  ValTen *t = f.lu.t;
  f.piv = gc_alloc_atomic(sizeof(int) * (size_t)(n ? n : 1));
  for (int k = 0; k < n; k++) {
    int p = k;
    for (int i = k + 1; i < n; i++)
      if (fabs(AT(t, i, k)) > fabs(AT(t, p, k))) p = i;
    f.piv[k] = p;
    if (p != k) {
      f.sign = -f.sign;
      for (int j = 0; j < n; j++) {
        double tmp = AT(t, k, j);
        AT(t, k, j) = AT(t, p, j);
        AT(t, p, j) = tmp;
      }
    }
    double pv = AT(t, k, k);
    if (pv == 0 || isnan(pv)) {
      f.singular = true;
      continue;
    }
    for (int i = k + 1; i < n; i++) {
      double m = AT(t, i, k) /= pv;
      if (m != 0)
        for (int j = k + 1; j < n; j++)
          AT(t, i, j) -= m * AT(t, k, j);
    }
  }
  return f;
}

/* Solves A X = B in place in x (n x m, column-major) with a factored A. */
static void lu_solve(const Lu *f, double *x, int n, int m) {
  const ValTen *t = f->lu.t;
  for (int c = 0; c < m; c++) {
    double *col = x + (size_t)c * n;
    for (int k = 0; k < n; k++)
      if (f->piv[k] != k) {
        double tmp = col[k];
        col[k] = col[f->piv[k]];
        col[f->piv[k]] = tmp;
      }
    for (int i = 0; i < n; i++)
      for (int k = 0; k < i; k++)
        col[i] -= AT(t, i, k) * col[k];
    for (int i = n - 1; i >= 0; i--) {
      for (int k = i + 1; k < n; k++)
        col[i] -= AT(t, i, k) * col[k];
      col[i] /= AT(t, i, i);
    }
  }
}

static bool eval_det(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &t, err, errsz) || !square(b, t, err, errsz)) return false;
  Lu f = lu_factor(t);
  bool logd = BI_SPEC(b)->op == 1;
  double r = logd ? 0 : f.sign;
  for (int i = 0; i < t->rows; i++) {
    double d = AT(f.lu.t, i, i);
    if (logd)
      r += log(fabs(d));
    else
      r *= d;
  }
  *out = val_real(r);
  return true;
}

static bool eval_log_det_spd(BI_EVAL_ARGS) {
  Value l;
  if (!chol_checked(b, args[0], &l, err, errsz)) return false;
  double r = 0;
  for (int i = 0; i < l.t->rows; i++)
    r += 2 * log(AT(l.t, i, i));
  *out = val_real(r);
  return true;
}

/* A^-1 B (left) for a general square A; B is a vector or matrix. */
static bool solve_general(const Builtin *b, const ValTen *a, Value rhs, Value *out, char *err,
                          size_t errsz) {
  if (!square(b, a, err, errsz)) return false;
  if (rhs.t->rows != a->rows)
    return bi_efail(b, err, errsz,
                    "sizes do not match: matrix is %dx%d, right-hand side has %d rows", a->rows,
                    a->cols, rhs.t->rows);
  Lu f = lu_factor(a);
  if (f.singular) return bi_efail(b, err, errsz, "matrix is singular");
  Value x = val_copy(rhs);
  lu_solve(&f, x.t->d, a->rows, x.t->cols);
  *out = x;
  return true;
}

static bool eval_inverse(BI_EVAL_ARGS) {
  ValTen *t;
  if (!bi_ten(b, args[0], BI_K(V_MAT), &t, err, errsz) || !square(b, t, err, errsz)) return false;
  Value id = val_mat(t->rows, t->rows);
  for (int i = 0; i < t->rows; i++)
    AT(id.t, i, i) = 1;
  if (BI_SPEC(b)->op == 0) return solve_general(b, t, id, out, err, errsz);
  Value l; /* inverse_spd: through the Cholesky factor, then symmetrised */
  if (!chol_checked(b, args[0], &l, err, errsz)) return false;
  int n = t->rows;
  for (int c = 0; c < n; c++) {
    double *x = id.t->d + (size_t)c * n;
    for (int i = 0; i < n; i++) {
      for (int k = 0; k < i; k++)
        x[i] -= AT(l.t, i, k) * x[k];
      x[i] /= AT(l.t, i, i);
    }
    for (int i = n - 1; i >= 0; i--) {
      for (int k = i + 1; k < n; k++)
        x[i] -= AT(l.t, k, i) * x[k];
      x[i] /= AT(l.t, i, i);
    }
  }
  for (int j = 0; j < n; j++)
    for (int i = 0; i < j; i++)
      AT(id.t, i, j) = AT(id.t, j, i) = 0.5 * (AT(id.t, i, j) + AT(id.t, j, i));
  *out = id;
  return true;
}

/* Forward substitution with the lower triangle of l, in place on x (n x m). */
static void tri_low_solve(const ValTen *l, double *x, int n, int m) {
  for (int c = 0; c < m; c++) {
    double *col = x + (size_t)c * n;
    for (int i = 0; i < n; i++) {
      for (int k = 0; k < i; k++)
        col[i] -= AT(l, i, k) * col[k];
      col[i] /= AT(l, i, i);
    }
  }
}

enum { MD_LEFT, MD_RIGHT, MD_LEFT_TRI, MD_RIGHT_TRI, MD_LEFT_SPD };

static bool eval_mdivide(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  bool right = op == MD_RIGHT || op == MD_RIGHT_TRI;
  ValTen *a, *rhs;
  if (!bi_ten(b, args[right ? 1 : 0], BI_K(V_MAT), &a, err, errsz) ||
      !bi_ten(b, args[right ? 0 : 1], BI_KTEN, &rhs, err, errsz) || !square(b, a, err, errsz))
    return false;
  if (right) { /* B A^-1 = (A'^-1 B')' */
    if (rhs->cols != a->rows)
      return bi_efail(b, err, errsz,
                      "sizes do not match: matrix is %dx%d, left-hand side has %d columns", a->rows,
                      a->cols, rhs->cols);
    Value bt = transpose_of(rhs, V_MAT);
    Value at = transpose_of(a, V_MAT);
    Value x;
    if (op == MD_RIGHT) {
      if (!solve_general(b, at.t, bt, &x, err, errsz)) return false;
    } else { /* A' is upper triangular: back substitution */
      x = bt;
      int n = a->rows;
      for (int c = 0; c < x.t->cols; c++) {
        double *col = x.t->d + (size_t)c * n;
        for (int i = n - 1; i >= 0; i--) {
          for (int k = i + 1; k < n; k++)
            col[i] -= AT(a, k, i) * col[k];
          col[i] /= AT(a, i, i);
        }
      }
    }
    *out = transpose_of(x.t, args[0].k == V_ROWVEC ? V_ROWVEC : V_MAT);
    return true;
  }
  if (rhs->rows != a->rows || args[1].k == V_ROWVEC)
    return bi_efail(b, err, errsz,
                    "sizes do not match: matrix is %dx%d, right-hand side has %d rows", a->rows,
                    a->cols, rhs->rows);
  if (op == MD_LEFT) return solve_general(b, a, args[1], out, err, errsz);
  Value l = args[0];
  if (op == MD_LEFT_SPD && !chol_checked(b, args[0], &l, err, errsz)) return false;
  Value x = val_copy(args[1]);
  tri_low_solve(l.t, x.t->d, a->rows, x.t->cols);
  if (op == MD_LEFT_SPD) /* then L' y = x: back substitution with the transpose */
    for (int c = 0; c < x.t->cols; c++) {
      double *col = x.t->d + (size_t)c * a->rows;
      for (int i = a->rows - 1; i >= 0; i--) {
        for (int k = i + 1; k < a->rows; k++)
          col[i] -= AT(l.t, k, i) * col[k];
        col[i] /= AT(l.t, i, i);
      }
    }
  *out = x;
  return true;
}

/* ---- arrays, statistics, kernels ------------------------------------------------- */

static bool eval_self_dot(BI_EVAL_ARGS) {
  Value two[2] = {args[0], args[0]};
  return eval_rcdot(b, ctx, 2, two, out, err, errsz);
}

static bool check_append_array(BI_CHECK_ARGS) {
  bool ok = nargs == 2 && args[0].ndims > 0 && args[0].ndims == args[1].ndims;
  if (ok && args[0].base != args[1].base) {
    int x = args[0].base, y = args[1].base; /* int[] and real[] give real[] */
    ok = (x == TY_INT || x == TY_REAL) && (y == TY_INT || y == TY_REAL);
  }
  if (!ok) {
    char got[200];
    return bi_fail(err, errsz, "append_array expects two arrays of the same type, got %s",
                   bi_types_str(nargs, args, got, sizeof got));
  }
  *ret = args[0].base == args[1].base ? args[0] : ty_make(TY_REAL, args[0].ndims);
  return true;
}

/* Ints become reals at any depth (an int[] appended to a real[]). */
static Value realify(Value v) {
  if (v.k == V_INT || v.k == V_BOOL) return val_real(val_as_real(v));
  if (v.k != V_ARR) return val_copy(v);
  Value a = val_arr(v.a->n);
  for (int i = 0; i < v.a->n; i++)
    a.a->e[i] = realify(v.a->e[i]);
  return a;
}

static Value first_leaf(Value v) {
  while (v.k == V_ARR && v.a->n > 0)
    v = v.a->e[0];
  return v;
}

static bool eval_append_array(BI_EVAL_ARGS) {
  Value x = args[0], y = args[1];
  if (x.k != V_ARR || y.k != V_ARR) return bi_efail(b, err, errsz, "expected two arrays");
  Value lx = first_leaf(x), ly = first_leaf(y);
  bool real = lx.k == V_REAL || ly.k == V_REAL;
  Value r = val_arr(x.a->n + y.a->n);
  for (int i = 0; i < r.a->n; i++) {
    Value e = i < x.a->n ? x.a->e[i] : y.a->e[i - x.a->n];
    r.a->e[i] = real ? realify(e) : val_copy(e);
  }
  *out = r;
  return true;
}

static bool eval_quantile(BI_EVAL_ARGS) {
  const double *d;
  int n;
  if (!bi_seq(b, args[0], &d, &n, err, errsz)) return false;
  double p = val_as_real(args[1]);
  if (n == 0) return bi_efail(b, err, errsz, "empty container");
  if (!(p >= 0 && p <= 1)) return bi_efail(b, err, errsz, "p must be in [0, 1], got %g", p);
  double *x = gc_alloc_atomic(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) {
    if (isnan(d[i])) return bi_efail(b, err, errsz, "element %d is NaN", i + 1);
    x[i] = d[i];
  }
  SortItem *s = gc_alloc_atomic(sizeof(SortItem) * (size_t)n);
  for (int i = 0; i < n; i++)
    s[i] = (SortItem){x[i], 0, i};
  qsort(s, (size_t)n, sizeof *s, cmp_real);
  /* Hyndman and Fan's type 7, as Stan and R's default */
  double h = (n - 1) * p;
  int lo = (int)floor(h);
  double q = s[lo].v;
  if (lo + 1 < n) q += (h - lo) * (s[lo + 1].v - s[lo].v);
  *out = val_real(q);
  return true;
}

/* gp_exp_quad_cov(x, alpha, rho) and the cross covariance (x1, x2, alpha, rho):
 * alpha^2 exp(-|xi - xj|^2 / (2 rho^2)). Points are reals or vectors. */
static bool gp_points(const Builtin *b, Value v, int *n, int *dim, const double ***pts, char *err,
                      size_t errsz) {
  if (v.k != V_ARR) return bi_efail(b, err, errsz, "expected an array of points");
  *n = v.a->n;
  *dim = -1;
  const double **p = gc_alloc(sizeof(double *) * (size_t)(*n ? *n : 1));
  double *reals = NULL; /* scalar points, one block rather than one allocation each */
  for (int i = 0; i < *n; i++) {
    Value e = v.a->e[i];
    int k = 1;
    if (bi_is_ten(e)) {
      k = e.t->rows * e.t->cols;
      p[i] = e.t->d;
    } else {
      if (!reals) reals = gc_alloc_atomic(sizeof(double) * (size_t)*n);
      reals[i] = val_as_real(e);
      p[i] = &reals[i];
    }
    if (*dim >= 0 && k != *dim)
      return bi_efail(b, err, errsz, "points have different sizes (%d and %d)", *dim, k);
    *dim = k;
  }
  *pts = p;
  return true;
}

static bool eval_gp_exp_quad(BI_EVAL_ARGS) {
  bool cross = nargs == 4;
  double alpha = val_as_real(args[cross ? 2 : 1]), rho = val_as_real(args[cross ? 3 : 2]);
  if (!(alpha > 0) || !isfinite(alpha))
    return bi_efail(b, err, errsz, "alpha must be positive, got %g", alpha);
  if (!(rho > 0) || !isfinite(rho))
    return bi_efail(b, err, errsz, "rho must be positive, got %g", rho);
  int n1, n2, d1, d2;
  const double **x1, **x2;
  if (!gp_points(b, args[0], &n1, &d1, &x1, err, errsz)) return false;
  n2 = n1, d2 = d1, x2 = x1;
  if (cross && !gp_points(b, args[1], &n2, &d2, &x2, err, errsz)) return false;
  if (n1 && n2 && d1 != d2)
    return bi_efail(b, err, errsz, "points have different sizes (%d and %d)", d1, d2);
  Value r = val_mat(n1, n2);
  la_gp_exp_quad_cov(n1, n2, d1, x1, cross ? x2 : NULL, alpha, rho, r.t->d);
  *out = r;
  return true;
}

/* ---- dims ----------------------------------------------------------------------------- */

static bool check_dims(BI_CHECK_ARGS) {
  if (nargs != 1 || args[0].base == TY_VOID || args[0].base == TY_DIST) {
    char got[200];
    return bi_fail(err, errsz, "dims expects one value, got %s",
                   bi_types_str(nargs, args, got, sizeof got));
  }
  *ret = ty_make(TY_INT, 1);
  return true;
}

static bool eval_dims(BI_EVAL_ARGS) {
  int64_t d[64];
  int n = 0;
  Value v = args[0];
  while (v.k == V_ARR && n < 62) {
    d[n++] = v.a->n;
    if (v.a->n == 0) break;
    v = v.a->e[0];
  }
  if (v.k == V_VEC || v.k == V_ROWVEC)
    d[n++] = v.t->rows * v.t->cols;
  else if (v.k == V_MAT) {
    d[n++] = v.t->rows;
    d[n++] = v.t->cols;
  }
  *out = val_arr(n);
  for (int i = 0; i < n; i++)
    out->a->e[i] = val_int(d[i]);
  return true;
}

/* ---- the table -------------------------------------------------------------------------- */

#define SEQ_OP(nm, opv)                                                                            \
  { nm, check_seqop, eval_seqop, &(const BiSpec){.op = opv}, false }
#define DOTS                                                                                       \
  "(vector,vector)real;(row_vector,row_vector)real;(vector,row_vector)real;(row_vector,vector)"    \
  "real"

const Builtin bi_linalg_table[] = {
    BI_SIG("dot_product", DOTS ";(real[],real[])real", eval_dot, D_DOT),
    BI_SIG("dot", DOTS ";(real[],real[])real", eval_dot, D_DOT),
    BI_SIG("squared_distance", DOTS ";(real,real)real", eval_dot, D_SQDIST),
    BI_SIG("distance", DOTS ";(real,real)real", eval_dot, D_DIST),
    BI_SIG("dot_self", "(vector)real;(row_vector)real;(real[])real", eval_norm, N_DOT_SELF),
    BI_SIG("norm1", "(vector)real;(row_vector)real;(real[])real", eval_norm, N_NORM1),
    BI_SIG("norm2", "(vector)real;(row_vector)real;(real[])real", eval_norm, N_NORM2),
    BI_SIG("columns_dot_product",
           "(vector,vector)row_vector;(row_vector,row_vector)row_vector;(matrix,matrix)row_vector",
           eval_rcdot, 0),
    BI_SIG("rows_dot_product",
           "(vector,vector)vector;(row_vector,row_vector)vector;(matrix,matrix)vector", eval_rcdot,
           1),
    BI_SIG("rows", "(vector)int;(row_vector)int;(matrix)int", eval_rows_cols, 0),
    BI_SIG("cols", "(vector)int;(row_vector)int;(matrix)int", eval_rows_cols, 1),
    BI_SIG("rep_vector", "(real,int)vector", eval_rep, REP_VEC),
    BI_SIG("rep_row_vector", "(real,int)row_vector", eval_rep, REP_ROWVEC),
    BI_SIG("rep_matrix", "(real,int,int)matrix;(vector,int)matrix;(row_vector,int)matrix", eval_rep,
           REP_MAT),
    {"rep_array", check_rep_array, eval_rep_array, &(const BiSpec){0}, false},
    BI_SIG("identity_matrix", "(int)matrix", eval_sized, SZ_IDENTITY),
    BI_SIG("zeros_vector", "(int)vector", eval_sized, SZ_ZEROS_V),
    BI_SIG("zeros_row_vector", "(int)row_vector", eval_sized, SZ_ZEROS_RV),
    BI_SIG("zeros_array", "(int)real[]", eval_sized, SZ_ZEROS_A),
    BI_SIG("zeros_int_array", "(int)int[]", eval_sized, SZ_ZEROS_IA),
    BI_SIG("ones_vector", "(int)vector", eval_sized, SZ_ONES_V),
    BI_SIG("ones_row_vector", "(int)row_vector", eval_sized, SZ_ONES_RV),
    BI_SIG("ones_array", "(int)real[]", eval_sized, SZ_ONES_A),
    BI_SIG("ones_int_array", "(int)int[]", eval_sized, SZ_ONES_IA),
    BI_SIG("uniform_simplex", "(int)vector", eval_sized, SZ_SIMPLEX),
    BI_SIG("linspaced_vector", "(int,real,real)vector", eval_linspaced, LS_VEC),
    BI_SIG("linspaced_row_vector", "(int,real,real)row_vector", eval_linspaced, LS_ROWVEC),
    BI_SIG("linspaced_array", "(int,real,real)real[]", eval_linspaced, LS_ARR),
    BI_SIG("one_hot_vector", "(int,int)vector", eval_one_hot, OH_VEC),
    BI_SIG("one_hot_row_vector", "(int,int)row_vector", eval_one_hot, OH_ROWVEC),
    BI_SIG("one_hot_array", "(int,int)real[]", eval_one_hot, OH_ARR),
    BI_SIG("one_hot_int_array", "(int,int)int[]", eval_one_hot, OH_INT_ARR),
    BI_SIG("to_vector", "(vector)vector;(row_vector)vector;(matrix)vector;(real[])vector",
           eval_to_1d, TO_VEC),
    BI_SIG("to_row_vector",
           "(vector)row_vector;(row_vector)row_vector;(matrix)row_vector;(real[])row_vector",
           eval_to_1d, TO_ROWVEC),
    BI_SIG("to_array_1d",
           "(vector)real[];(row_vector)real[];(matrix)real[];(int[])int[];(int[,])int[];(int[,,])"
           "int[];"
           "(real[])real[];(real[,])real[];(real[,,])real[]",
           eval_to_1d, TO_ARR1),
    BI_SIG("to_array_2d", "(matrix)real[,]", eval_to_array_2d, 0),
    BI_SIG(
        "to_matrix",
        "(matrix)matrix;(vector)matrix;(row_vector)matrix;(real[,])matrix;(matrix,int,int)matrix;"
        "(vector,int,int)matrix;(row_vector,int,int)matrix;(real[],int,int)matrix",
        eval_to_matrix, 0),
    SEQ_OP("head", SQ_HEAD),
    SEQ_OP("tail", SQ_TAIL),
    SEQ_OP("segment", SQ_SEGMENT),
    SEQ_OP("reverse", SQ_REVERSE),
    BI_SIG("sort_asc", "(vector)vector;(row_vector)row_vector;(int[])int[];(real[])real[]",
           eval_sort, SO_ASC),
    BI_SIG("sort_desc", "(vector)vector;(row_vector)row_vector;(int[])int[];(real[])real[]",
           eval_sort, SO_DESC),
    BI_SIG("sort_indices_asc", "(vector)int[];(row_vector)int[];(int[])int[];(real[])int[]",
           eval_sort, SO_IDX_ASC),
    BI_SIG("sort_indices_desc", "(vector)int[];(row_vector)int[];(int[])int[];(real[])int[]",
           eval_sort, SO_IDX_DESC),
    BI_SIG("rank", "(int[],int)int;(real[],int)int;(vector,int)int;(row_vector,int)int", eval_rank,
           0),
    BI_SIG("cumulative_sum", "(int[])int[];(real[])real[];(vector)vector;(row_vector)row_vector",
           eval_cumsum, 0),
    BI_SIG("softmax", "(vector)vector", eval_softmax, 0),
    BI_SIG("log_softmax", "(vector)vector", eval_softmax, 1),
    BI_SIG("diag_matrix", "(vector)matrix", eval_diag_matrix, 0),
    BI_SIG("diagonal", "(matrix)vector", eval_diagonal, 0),
    BI_SIG("transpose", "(matrix)matrix;(vector)row_vector;(row_vector)vector", eval_transpose, 0),
    BI_SIG("append_row",
           "(matrix,matrix)matrix;(matrix,row_vector)matrix;(row_vector,matrix)matrix;"
           "(row_vector,row_vector)matrix;(vector,vector)vector;(real,vector)vector;(vector,real)"
           "vector",
           eval_append, 0),
    BI_SIG(
        "append_col",
        "(matrix,matrix)matrix;(matrix,vector)matrix;(vector,matrix)matrix;(vector,vector)matrix;"
        "(row_vector,row_vector)row_vector;(real,row_vector)row_vector;(row_vector,real)row_vector",
        eval_append, 1),
    BI_SIG("block", "(matrix,int,int,int,int)matrix", eval_block, BL_BLOCK),
    BI_SIG("col", "(matrix,int)vector", eval_block, BL_COL),
    BI_SIG("row", "(matrix,int)row_vector", eval_block, BL_ROW),
    BI_SIG("sub_col", "(matrix,int,int,int)vector", eval_block, BL_SUB_COL),
    BI_SIG("sub_row", "(matrix,int,int,int)row_vector", eval_block, BL_SUB_ROW),
    BI_SIG("crossprod", "(matrix)matrix", eval_crossprod, 0),
    BI_SIG("tcrossprod", "(matrix)matrix", eval_crossprod, 1),
    BI_SIG("quad_form", "(matrix,matrix)matrix;(matrix,vector)real", eval_quad_form, 0),
    BI_SIG("quad_form_sym", "(matrix,matrix)matrix;(matrix,vector)real", eval_quad_form, 1),
    BI_SIG("quad_form_diag", "(matrix,vector)matrix;(matrix,row_vector)matrix", eval_diag_mult, 2),
    BI_SIG("multiply_lower_tri_self_transpose", "(matrix)matrix", eval_mlt_self_t, 0),
    BI_SIG("diag_pre_multiply", "(vector,matrix)matrix;(row_vector,matrix)matrix", eval_diag_mult,
           0),
    BI_SIG("diag_post_multiply", "(matrix,vector)matrix;(matrix,row_vector)matrix", eval_diag_mult,
           1),
    BI_SIG("add_diag", "(matrix,real)matrix;(matrix,vector)matrix;(matrix,row_vector)matrix",
           eval_add_diag, 0),
    BI_SIG("trace", "(matrix)real", eval_trace, 0),
    BI_SIG("cholesky_decompose", "(matrix)matrix", eval_cholesky, 0),
    BI_SIG("inverse", "(matrix)matrix", eval_inverse, 0),
    BI_SIG("inverse_spd", "(matrix)matrix", eval_inverse, 1),
    BI_SIG("determinant", "(matrix)real", eval_det, 0),
    BI_SIG("log_determinant", "(matrix)real", eval_det, 1),
    BI_SIG("log_determinant_spd", "(matrix)real", eval_log_det_spd, 0),
    BI_SIG("mdivide_left", "(matrix,vector)vector;(matrix,matrix)matrix", eval_mdivide, MD_LEFT),
    BI_SIG("solve", "(matrix,vector)vector;(matrix,matrix)matrix", eval_mdivide, MD_LEFT),
    BI_SIG("mdivide_right", "(row_vector,matrix)row_vector;(matrix,matrix)matrix", eval_mdivide,
           MD_RIGHT),
    BI_SIG("mdivide_left_tri_low", "(matrix,vector)vector;(matrix,matrix)matrix", eval_mdivide,
           MD_LEFT_TRI),
    BI_SIG("mdivide_right_tri_low", "(row_vector,matrix)row_vector;(matrix,matrix)matrix",
           eval_mdivide, MD_RIGHT_TRI),
    BI_SIG("mdivide_left_spd", "(matrix,vector)vector;(matrix,matrix)matrix", eval_mdivide,
           MD_LEFT_SPD),
    {"dims", check_dims, eval_dims, &(const BiSpec){0}, false},
    BI_SIG("columns_dot_self", "(vector)row_vector;(row_vector)row_vector;(matrix)row_vector",
           eval_self_dot, 0),
    BI_SIG("rows_dot_self", "(vector)vector;(row_vector)vector;(matrix)vector", eval_self_dot, 1),
    {"append_array", check_append_array, eval_append_array, &(const BiSpec){0}, false},
    BI_SIG("quantile", "(real[],real)real;(vector,real)real;(row_vector,real)real", eval_quantile,
           0),
    BI_SIG("gp_exp_quad_cov",
           "(real[],real,real)matrix;(vector[],real,real)matrix;(real[],real[],real,real)matrix;"
           "(vector[],vector[],real,real)matrix",
           eval_gp_exp_quad, 0),
    BI_SIG("cov_exp_quad",
           "(real[],real,real)matrix;(vector[],real,real)matrix;(real[],real[],real,real)matrix;"
           "(vector[],vector[],real,real)matrix",
           eval_gp_exp_quad, 0),
    {NULL, NULL, NULL, NULL, false},
};
