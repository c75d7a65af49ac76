/* builtins_adla.c — derivative rules of the linear-algebra builtins (see
 * builtins_ad.c for the scheme).  Every output element becomes one tape node
 * whose parents are the input elements it depends on, with the partials of
 * the usual matrix calculus, except
 *  - products: crossprod, tcrossprod, quad_form and
 *    multiply_lower_tri_self_transpose record one block node per product
 *    (stdlib/tensor.h; BLAS in the backward rule);
 *  - the block rules (builtins.h): gp_exp_quad_cov, add_diag and
 *    cholesky_decompose record one block node whose backward rule is the
 *    whole output's vector-Jacobian product (stdlib/linalg_mv.c), the same
 *    function the JIT's runtime calls without a tape.
 * Triangular solves by differentiating the substitution recurrences step by
 * step, inverses, determinants and general solves through
 * dA^-1 = -A^-1 dA A^-1.  Values are the evaluator's; only nodes are added
 * here. */
#include <math.h>
#include <string.h>

#include "builtins_impl.h"
#include "linalg.h"
#include "tensor.h"

/* a strided matrix view: element (i, j) at v[i * si + j * sj] */
typedef struct AM {
  int r, c;
  size_t si, sj;
  const double *v;
  const int32_t *n; /* NULL: constant */
} AM;

static AM am_of(Value v) {
  if (v.k == V_REAL) return (AM){1, 1, 0, 0, &v.r, NULL};
  const ValTen *t = v.t;
  if (v.k == V_ROWVEC) return (AM){1, t->cols, 0, 1, t->d, t->ad};
  return (AM){t->rows, t->cols, 1, (size_t)t->rows, t->d, t->ad};
}
static AM am_t(AM a) {
  AM b = a;
  b.r = a.c;
  b.c = a.r;
  b.si = a.sj;
  b.sj = a.si;
  return b;
}
static inline double av(AM a, int i, int j) { return a.v[(size_t)i * a.si + (size_t)j * a.sj]; }
static inline int32_t an(AM a, int i, int j) {
  return a.n ? a.n[(size_t)i * a.si + (size_t)j * a.sj] : 0;
}

/* A growable list of (parent, partial) for one node. */
typedef struct Parts {
  int n, cap;
  int32_t *p;
  double *d;
} Parts;
static void parts_add(Parts *q, int32_t p, double d) {
  if (!p) return;
  if (q->n == q->cap) {
    int cap = q->cap ? 2 * q->cap : 32;
    int32_t *np = gc_alloc_atomic(sizeof(int32_t) * (size_t)cap);
    double *nd = gc_alloc_atomic(sizeof(double) * (size_t)cap);
    if (q->n) {
      memcpy(np, q->p, sizeof(int32_t) * (size_t)q->n);
      memcpy(nd, q->d, sizeof(double) * (size_t)q->n);
    }
    q->p = np;
    q->d = nd;
    q->cap = cap;
  }
  q->p[q->n] = p;
  q->d[q->n++] = d;
}
static int32_t parts_push(Tape *T, Parts *q) {
  int32_t r = tape_push(T, q->n, q->p, q->d);
  q->n = 0;
  return r;
}

/* A computed matrix with nodes (column-major), for intermediate results. */
typedef struct MN {
  int r, c;
  double *v;
  int32_t *n;
} MN;
static MN mn_new(int r, int c) {
  size_t k = (size_t)r * (size_t)c;
  return (MN){r, c, gc_alloc_atomic(sizeof(double) * (k ? k : 1)),
              gc_alloc_atomic(sizeof(int32_t) * (k ? k : 1))};
}
static AM mn_am(MN m) { return (AM){m.r, m.c, 1, (size_t)m.r, m.v, m.n}; }

/* X's elements in column-major order as a tensor on the tape, i.e. X' as a
 * row-major [c, r] tensor (copied: the product's rule reads it later). */
static Tensor am_tensor(Tape *T, AM X) {
  size_t k = (size_t)X.r * (size_t)X.c;
  double *v = tape_alloc_atomic(T, sizeof(double) * (k ? k : 1));
  int32_t *n = tape_alloc_atomic(T, sizeof(int32_t) * (k ? k : 1));
  for (int j = 0; j < X.c; j++)
    for (int i = 0; i < X.r; i++) {
      v[(size_t)j * X.r + i] = av(X, i, j);
      n[(size_t)j * X.r + i] = an(X, i, j);
    }
  int shape[2] = {X.c, X.r};
  return X.n ? tensor_gather(T, 2, shape, v, n) : tensor_const(2, shape, v);
}

/* C = A B with nodes: one block node (stdlib/tensor.h), recorded as
 * C' = B'A' in row-major terms; the values are the plain loop's. */
static MN am_mul(Tape *T, AM A, AM B, Parts *q) {
  MN C = mn_new(A.r, B.c);
  for (int j = 0; j < B.c; j++)
    for (int i = 0; i < A.r; i++) {
      double s = 0;
      for (int k = 0; k < A.c; k++) s += av(A, i, k) * av(B, k, j);
      C.v[(size_t)j * A.r + i] = s;
    }
  if (!A.n && !B.n) return C;
  Tensor c = tensor_matmul_given(T, am_tensor(T, B), am_tensor(T, A), C.v);
  if (c.node)
    for (size_t e = 0, k = (size_t)A.r * (size_t)B.c; e < k; e++) C.n[e] = c.node + (int32_t)e;
  return C;
}

/* Put a column-major node array (rows x cols of out) into *out. */
static void out_nodes(Value *out, const int32_t *n) {
  if (out->k == V_REAL) {
    out->ad = n[0];
    return;
  }
  size_t k = (size_t)out->t->rows * (size_t)out->t->cols;
  out->t->ad = gc_alloc_atomic(sizeof(int32_t) * (k ? k : 1));
  memcpy(out->t->ad, n, sizeof(int32_t) * k);
}

/* Inverse of the n x n matrix A (column-major) by Gauss-Jordan with partial
   pivoting; false if singular. */
static bool inv_of(AM A, double *X) {
  int n = A.r;
  double *W = gc_alloc_atomic(sizeof(double) * (size_t)(n * n > 0 ? n * n : 1));
  for (int j = 0; j < n; j++)
    for (int i = 0; i < n; i++) {
      W[j * n + i] = av(A, i, j);
      X[j * n + i] = i == j;
    }
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int i = c + 1; i < n; i++)
      if (fabs(W[c * n + i]) > fabs(W[c * n + p])) p = i;
    if (W[c * n + p] == 0) return false;
    if (p != c)
      for (int j = 0; j < n; j++) {
        double t = W[j * n + c];
        W[j * n + c] = W[j * n + p];
        W[j * n + p] = t;
        t = X[j * n + c];
        X[j * n + c] = X[j * n + p];
        X[j * n + p] = t;
      }
    double piv = W[c * n + c];
    for (int j = 0; j < n; j++) {
      W[j * n + c] /= piv;
      X[j * n + c] /= piv;
    }
    for (int i = 0; i < n; i++) {
      if (i == c) continue;
      double f = W[c * n + i];
      if (f == 0) continue;
      for (int j = 0; j < n; j++) {
        W[j * n + i] -= f * W[j * n + c];
        X[j * n + i] -= f * X[j * n + c];
      }
    }
  }
  return true;
}

/* ---- rules ---- */

static bool r_product_like(Tape *T, const char *name, const Value *args, Value *out, Parts *q) {
  AM A = am_of(args[0]);
  MN C;
  if (!strcmp(name, "crossprod")) C = am_mul(T, am_t(A), A, q);
  else if (!strcmp(name, "tcrossprod")) C = am_mul(T, A, am_t(A), q);
  else if (!strcmp(name, "multiply_lower_tri_self_transpose")) {
    MN L = mn_new(A.r, A.c);
    for (int j = 0; j < A.c; j++)
      for (int i = 0; i < A.r; i++) {
        L.v[(size_t)j * A.r + i] = i >= j ? av(A, i, j) : 0;
        L.n[(size_t)j * A.r + i] = i >= j ? an(A, i, j) : 0;
      }
    C = am_mul(T, mn_am(L), am_t(mn_am(L)), q);
  } else { /* quad_form, quad_form_sym: B' A B */
    AM B = am_of(args[1]);
    MN AB = am_mul(T, A, B, q);
    C = am_mul(T, am_t(B), mn_am(AB), q);
    if (!strcmp(name, "quad_form_sym") && C.r > 1)
      for (int j = 0; j < C.c; j++)
        for (int i = j + 1; i < C.r; i++) {
          int32_t s = tape_binary(T, C.n[(size_t)j * C.r + i], 0.5, C.n[(size_t)i * C.r + j], 0.5);
          C.n[(size_t)j * C.r + i] = C.n[(size_t)i * C.r + j] = s;
        }
  }
  out_nodes(out, C.n);
  return true;
}

/* diag_pre_multiply(v, m), diag_post_multiply(m, v), quad_form_diag(m, v) */
static bool r_diag_mult(Tape *T, const char *name, const Value *args, Value *out, Parts *q) {
  bool pre = !strcmp(name, "diag_pre_multiply");
  AM M = am_of(args[pre ? 1 : 0]), v = am_of(args[pre ? 0 : 1]);
  int vs = v.r > 1 ? 0 : 1; /* v is a vector (use i) or row vector (use j) */
  MN C = mn_new(M.r, M.c);
  for (int j = 0; j < M.c; j++)
    for (int i = 0; i < M.r; i++) {
      double m = av(M, i, j);
      double vi = vs ? av(v, 0, i) : av(v, i, 0), vj = vs ? av(v, 0, j) : av(v, j, 0);
      int32_t ni = vs ? an(v, 0, i) : an(v, i, 0), nj = vs ? an(v, 0, j) : an(v, j, 0);
      if (pre) {
        parts_add(q, an(M, i, j), vi);
        parts_add(q, ni, m);
      } else if (!strcmp(name, "diag_post_multiply")) {
        parts_add(q, an(M, i, j), vj);
        parts_add(q, nj, m);
      } else {
        parts_add(q, an(M, i, j), vi * vj);
        parts_add(q, ni, m * vj);
        parts_add(q, nj, vi * m);
      }
      C.n[(size_t)j * M.r + i] = parts_push(T, q);
    }
  out_nodes(out, C.n);
  return true;
}

static bool r_trace(Tape *T, const Value *args, Value *out, Parts *q) {
  AM M = am_of(args[0]);
  for (int i = 0; i < M.r && i < M.c; i++) parts_add(q, an(M, i, i), 1);
  out->ad = parts_push(T, q);
  return true;
}

/* columns_dot_product, rows_dot_product, columns_dot_self, rows_dot_self */
static bool r_rc_dot(Tape *T, bool rows, bool self, const Value *args, Value *out, Parts *q) {
  AM a = am_of(args[0]), b = self ? a : am_of(args[1]);
  if (rows) {
    a = am_t(a);
    b = am_t(b);
  }
  int32_t *n = gc_alloc_atomic(sizeof(int32_t) * (size_t)(a.c ? a.c : 1));
  for (int j = 0; j < a.c; j++) {
    for (int i = 0; i < a.r; i++) {
      parts_add(q, an(a, i, j), av(b, i, j));
      parts_add(q, an(b, i, j), av(a, i, j));
    }
    n[j] = parts_push(T, q);
  }
  out_nodes(out, n);
  return true;
}

static bool r_inverse(Tape *T, const Value *args, Value *out, Parts *q) {
  AM A = am_of(args[0]);
  const double *X = out->t->d;
  int n = A.r;
  int32_t *N = gc_alloc_atomic(sizeof(int32_t) * (size_t)(n * n > 0 ? n * n : 1));
  for (int j = 0; j < n; j++)
    for (int i = 0; i < n; i++) {
      for (int l = 0; l < n; l++)
        for (int k = 0; k < n; k++) parts_add(q, an(A, k, l), -X[k * n + i] * X[j * n + l]);
      N[j * n + i] = parts_push(T, q);
    }
  out_nodes(out, N);
  return true;
}

static bool r_det(Tape *T, bool logd, const Value *args, Value *out, Parts *q, char *err,
                  size_t errsz) {
  AM A = am_of(args[0]);
  int n = A.r;
  double *X = gc_alloc_atomic(sizeof(double) * (size_t)(n * n > 0 ? n * n : 1));
  if (!inv_of(A, X)) return bi_fail(err, errsz, "gradient of a determinant: matrix is singular");
  double s = logd ? 1 : out->r;
  for (int l = 0; l < n; l++)
    for (int k = 0; k < n; k++) parts_add(q, an(A, k, l), s * X[k * n + l]);
  out->ad = parts_push(T, q);
  return true;
}

/* x = A^-1 b (left) or b A^-1 (right), for general and triangular A */
static bool r_mdivide(Tape *T, bool right, bool tri, const Value *args, Value *out, Parts *q,
                      char *err, size_t errsz) {
  AM A = am_of(args[right ? 1 : 0]), b = am_of(args[right ? 0 : 1]);
  if (tri) { /* the triangular solves read only the lower triangle */
    MN L = mn_new(A.r, A.c);
    for (int j = 0; j < A.c; j++)
      for (int i = 0; i < A.r; i++) {
        L.v[(size_t)j * A.r + i] = i >= j ? av(A, i, j) : 0;
        L.n[(size_t)j * A.r + i] = i >= j ? an(A, i, j) : 0;
      }
    A = mn_am(L);
  }
  AM x = am_of(*out);
  int n = A.r;
  double *X = gc_alloc_atomic(sizeof(double) * (size_t)(n * n > 0 ? n * n : 1));
  if (!inv_of(A, X)) return bi_fail(err, errsz, "gradient of a solve: matrix is singular");
  AM Xi = {n, n, 1, (size_t)n, X, NULL};
  int32_t *N = gc_alloc_atomic(sizeof(int32_t) * (size_t)(x.r * x.c > 0 ? x.r * x.c : 1));
  for (int j = 0; j < x.c; j++)
    for (int i = 0; i < x.r; i++) {
      if (!right) { /* x_ij = sum_k Xi_ik b_kj; dx_ij/dA_kl = -Xi_ik x_lj */
        for (int k = 0; k < n; k++) {
          parts_add(q, an(b, k, j), av(Xi, i, k));
          if (A.n)
            for (int l = 0; l < n; l++) parts_add(q, an(A, k, l), -av(Xi, i, k) * av(x, l, j));
        }
      } else { /* x_ij = sum_k b_ik Xi_kj; dx_ij/dA_kl = -x_ik Xi_lj */
        for (int k = 0; k < n; k++) {
          parts_add(q, an(b, i, k), av(Xi, k, j));
          if (A.n)
            for (int l = 0; l < n; l++) parts_add(q, an(A, k, l), -av(x, i, k) * av(Xi, l, j));
        }
      }
      N[(size_t)j * x.r + i] = parts_push(T, q);
    }
  out_nodes(out, N);
  return true;
}

/* ---- block rules (builtins.h): one matrix-valued node per call ---- */

typedef enum { BB_GP, BB_ADD_DIAG, BB_CHOL, BB_DIAG_PRE, BB_DIAG_POST, BB_RCDOT } BbKind;

struct BiBlock {
  BbKind kind;
  int nargs;
  int n1, n2, d;          /* gp: points and coordinates; add_diag, chol: rows, cols */
  double alpha, rho;      /* gp */
  const double *x1, *x2;  /* gp: the points, row-major copies (x2 NULL: K(x1, x1)) */
  const double *out;      /* gp, chol: the result (column-major copy) */
  double *work;           /* chol: n * n */
  /* diag_pre/post_multiply: x1 the matrix, x2 the vector; rows/columns_dot_product:
     x1 and x2 the operands (copies: the VJP of each operand reads the other's
     values) */
  bool bycols;            /* columns_dot_product (else rows_dot_product) */
  bool dvec;              /* add_diag: the diagonal is a vector */
};

static int block_kind(const char *name) {
  if (!strcmp(name, "gp_exp_quad_cov") || !strcmp(name, "cov_exp_quad")) return BB_GP;
  if (!strcmp(name, "add_diag")) return BB_ADD_DIAG;
  if (!strcmp(name, "cholesky_decompose")) return BB_CHOL;
  if (!strcmp(name, "diag_pre_multiply")) return BB_DIAG_PRE;
  if (!strcmp(name, "diag_post_multiply")) return BB_DIAG_POST;
  if (!strcmp(name, "rows_dot_product") || !strcmp(name, "columns_dot_product")) return BB_RCDOT;
  return -1;
}

bool builtin_has_block(const Builtin *b) { return !builtin_host(b) && block_kind(b->name) >= 0; }

/* The points of a GP operand: n, their common size d and a pointer to each
   (into the value itself); false if they are not all reals or all vectors
   of one size, or there are more than cap. */
static bool gp_ptrs(Value x, int cap, const double **p, int *n, int *d) {
  if (x.k != V_ARR || x.a->n > cap) return false;
  *n = x.a->n;
  *d = *n ? (x.a->e[0].k == V_REAL ? 1 : bi_is_ten(x.a->e[0]) ? x.a->e[0].t->rows * x.a->e[0].t->cols : -1) : 1;
  for (int i = 0; i < *n; i++) {
    Value e = x.a->e[i];
    if (e.k == V_REAL && *d == 1 && x.a->e[0].k == V_REAL) p[i] = &x.a->e[i].r;
    else if (bi_is_ten(e) && x.a->e[0].k != V_REAL && e.t->rows * e.t->cols == *d) p[i] = e.t->d;
    else return false;
  }
  return true;
}

#define GP_PTRS 256

bool builtin_block_shape(const Builtin *b, int nargs, const Value *args, int *rows, int *cols) {
  if (builtin_host(b)) return false;
  switch (block_kind(b->name)) {
  case BB_GP: {
    const double *p[GP_PTRS];
    int n1, n2, d1, d2;
    bool cross = nargs == 4;
    if (nargs != 3 && nargs != 4) return false;
    Value va = args[cross ? 2 : 1], vr = args[cross ? 3 : 2];
    if (!bi_is_num(va) || !bi_is_num(vr)) return false;
    double a = val_as_real(va), r = val_as_real(vr);
    if (!(a > 0) || !isfinite(a) || !(r > 0) || !isfinite(r)) return false;
    if (!gp_ptrs(args[0], GP_PTRS, p, &n1, &d1)) return false;
    n2 = n1, d2 = d1;
    if (cross && !gp_ptrs(args[1], GP_PTRS, p, &n2, &d2)) return false;
    if (n1 && n2 && d1 != d2) return false;
    *rows = n1;
    *cols = n2;
    return true;
  }
  case BB_ADD_DIAG: {
    if (nargs != 2 || args[0].k != V_MAT) return false;
    int n = args[0].t->rows < args[0].t->cols ? args[0].t->rows : args[0].t->cols;
    if (bi_is_ten(args[1]) ? args[1].t->rows * args[1].t->cols != n : !bi_is_num(args[1]))
      return false;
    *rows = args[0].t->rows;
    *cols = args[0].t->cols;
    return true;
  }
  case BB_DIAG_PRE: case BB_DIAG_POST: { /* eval_diag_mult's checks */
    bool pre = block_kind(b->name) == BB_DIAG_PRE;
    Value m = args[pre ? 1 : 0], v = args[pre ? 0 : 1];
    if (nargs != 2 || m.k != V_MAT || (v.k != V_VEC && v.k != V_ROWVEC) ||
        v.t->rows * v.t->cols != (pre ? m.t->rows : m.t->cols))
      return false;
    *rows = m.t->rows;
    *cols = m.t->cols;
    return true;
  }
  default: return false;
  }
}

void builtin_block_value(const Builtin *b, int nargs, const Value *args, double *out) {
  switch (block_kind(b->name)) {
  case BB_GP: {
    const double *p1[GP_PTRS], *p2[GP_PTRS];
    int n1, n2, d;
    bool cross = nargs == 4;
    gp_ptrs(args[0], GP_PTRS, p1, &n1, &d);
    if (cross) gp_ptrs(args[1], GP_PTRS, p2, &n2, &d);
    la_gp_exp_quad_cov(n1, cross ? n2 : n1, d, p1, cross ? p2 : NULL,
                       val_as_real(args[cross ? 2 : 1]), val_as_real(args[cross ? 3 : 2]), out);
    break;
  }
  case BB_ADD_DIAG: { /* eval_add_diag's operations: a copy, one addition per diagonal entry */
    const ValTen *m = args[0].t;
    int n = m->rows < m->cols ? m->rows : m->cols;
    memcpy(out, m->d, sizeof(double) * (size_t)m->rows * (size_t)m->cols);
    for (int i = 0; i < n; i++)
      out[(size_t)i * (size_t)m->rows + i] +=
          bi_is_ten(args[1]) ? args[1].t->d[i] : val_as_real(args[1]);
    break;
  }
  case BB_DIAG_PRE: case BB_DIAG_POST: { /* eval_diag_mult's products, so its bits */
    bool pre = block_kind(b->name) == BB_DIAG_PRE;
    const ValTen *m = args[pre ? 1 : 0].t, *v = args[pre ? 0 : 1].t;
    for (int j = 0; j < m->cols; j++)
      for (int i = 0; i < m->rows; i++) {
        size_t e = (size_t)j * (size_t)m->rows + (size_t)i;
        out[e] = (pre ? v->d[i] : v->d[j]) * m->d[e];
      }
    break;
  }
  default: break;
  }
}

static const double *block_copy(Value v, size_t *n, BiAlloc alloc, void *ud) {
  *n = val_numel(v);
  double *d = alloc(ud, sizeof(double) * (*n ? *n : 1));
  val_flatten(v, d);
  return d;
}

BiBlock *builtin_block_save(const Builtin *b, int nargs, const Value *args, Value out,
                            BiAlloc alloc, void *ud) {
  if (builtin_host(b)) return NULL;
  int kind = block_kind(b->name);
  if (kind < 0) return NULL;
  BiBlock *s = alloc(ud, sizeof(BiBlock));
  memset(s, 0, sizeof *s);
  s->kind = (BbKind)kind;
  s->nargs = nargs;
  size_t n;
  switch (s->kind) {
  case BB_GP: {
    bool cross = nargs == 4;
    s->n1 = args[0].a->n;
    s->x1 = block_copy(args[0], &n, alloc, ud);
    s->d = s->n1 ? (int)(n / (size_t)s->n1) : 1;
    s->n2 = cross ? args[1].a->n : s->n1;
    s->x2 = cross ? block_copy(args[1], &n, alloc, ud) : NULL;
    s->alpha = val_as_real(args[cross ? 2 : 1]);
    s->rho = val_as_real(args[cross ? 3 : 2]);
    s->out = block_copy(out, &n, alloc, ud);
    break;
  }
  case BB_ADD_DIAG:
    s->n1 = out.t->rows;
    s->n2 = out.t->cols;
    s->dvec = bi_is_ten(args[1]);
    break;
  case BB_CHOL:
    s->n1 = s->n2 = out.t->rows;
    s->out = block_copy(out, &n, alloc, ud);
    s->work = alloc(ud, sizeof(double) * (n ? n : 1));
    break;
  case BB_RCDOT: /* the value is the evaluator's (a vector or row vector: no shape form) */
    s->n1 = args[0].t->rows;
    s->n2 = args[0].t->cols;
    s->bycols = !strcmp(b->name, "columns_dot_product");
    s->x1 = block_copy(args[0], &n, alloc, ud);
    s->x2 = block_copy(args[1], &n, alloc, ud);
    break;
  case BB_DIAG_PRE: case BB_DIAG_POST: {
    bool pre = s->kind == BB_DIAG_PRE;
    s->n1 = out.t->rows;
    s->n2 = out.t->cols;
    s->x1 = block_copy(args[pre ? 1 : 0], &n, alloc, ud);
    s->x2 = block_copy(args[pre ? 0 : 1], &n, alloc, ud);
    break;
  }
  }
  return s;
}

void builtin_block_vjp(const BiBlock *s, const double *gout, double *const *gin) {
  switch (s->kind) {
  case BB_GP: {
    bool cross = s->nargs == 4;
    la_gp_exp_quad_cov_vjp(s->n1, s->n2, s->d, s->x1, s->x2, s->alpha, s->rho, s->out, gout,
                           gin[0], cross ? gin[1] : NULL, gin[cross ? 2 : 1], gin[cross ? 3 : 2]);
    break;
  }
  case BB_ADD_DIAG: {
    size_t k = (size_t)s->n1 * (size_t)s->n2;
    int m = s->n1 < s->n2 ? s->n1 : s->n2;
    if (gin[0])
      for (size_t e = 0; e < k; e++) gin[0][e] += gout[e];
    if (gin[1])
      for (int i = 0; i < m; i++) gin[1][s->dvec ? i : 0] += gout[(size_t)i * (size_t)s->n1 + i];
    break;
  }
  case BB_CHOL:
    if (gin[0]) la_cholesky_vjp(s->n1, s->out, gout, gin[0], s->work);
    break;
  case BB_DIAG_PRE: case BB_DIAG_POST: { /* C_ij = v_k M_ij, k = i (pre) or j (post) */
    bool pre = s->kind == BB_DIAG_PRE;
    double *gm = gin[pre ? 1 : 0], *gv = gin[pre ? 0 : 1];
    for (int j = 0; j < s->n2; j++)
      for (int i = 0; i < s->n1; i++) {
        size_t e = (size_t)j * (size_t)s->n1 + (size_t)i;
        int k = pre ? i : j;
        if (gm) gm[e] += gout[e] * s->x2[k];
        if (gv) gv[k] += gout[e] * s->x1[e];
      }
    break;
  }
  case BB_RCDOT: /* out_k = sum over row or column k of x_ij y_ij */
    for (int j = 0; j < s->n2; j++)
      for (int i = 0; i < s->n1; i++) {
        size_t e = (size_t)j * (size_t)s->n1 + (size_t)i;
        double go = gout[s->bycols ? j : i];
        if (gin[0]) gin[0][e] += go * s->x2[e];
        if (gin[1]) gin[1][e] += go * s->x1[e];
      }
    break;
  }
}

/* The interpreter's record: the block's saved state, and per operand its
 * nodes and a buffer for its adjoint (allocated once, at the call). */
#define BLK_MAXARGS 4
typedef struct BlkTape {
  const BiBlock *s;
  int nargs;
  size_t n[BLK_MAXARGS];
  int32_t *ids[BLK_MAXARGS]; /* NULL: the operand has no nodes */
  double *gin[BLK_MAXARGS];
} BlkTape;

static void blk_tape_vjp(void *ctx, const double *gout, double *adj) {
  const BlkTape *c = ctx;
  for (int k = 0; k < c->nargs; k++)
    if (c->gin[k]) memset(c->gin[k], 0, sizeof(double) * c->n[k]);
  builtin_block_vjp(c->s, gout, c->gin);
  for (int k = 0; k < c->nargs; k++)
    if (c->ids[k])
      for (size_t e = 0; e < c->n[k]; e++)
        if (c->ids[k][e]) adj[c->ids[k][e]] += c->gin[k][e];
}

static void *blk_tape_alloc(void *ud, size_t bytes) { return tape_alloc((Tape *)ud, bytes); }

static bool r_block(Tape *T, const Builtin *b, int nargs, const Value *args, Value *out) {
  if (nargs > BLK_MAXARGS) return false;
  BlkTape *c = tape_alloc(T, sizeof(BlkTape));
  memset(c, 0, sizeof *c);
  c->nargs = nargs;
  bool any = false;
  for (int k = 0; k < nargs; k++) {
    if (!builtin_has_nodes(args[k])) continue;
    c->n[k] = val_numel(args[k]);
    c->ids[k] = tape_alloc_atomic(T, sizeof(int32_t) * (c->n[k] ? c->n[k] : 1));
    val_flatten_nodes(args[k], c->ids[k]);
    c->gin[k] = tape_alloc_atomic(T, sizeof(double) * (c->n[k] ? c->n[k] : 1));
    any = true;
  }
  if (!any) return true;
  c->s = builtin_block_save(b, nargs, args, *out, blk_tape_alloc, T);
  size_t k = val_numel(*out);
  if (!k) return true;
  int32_t first = tape_block(T, k, blk_tape_vjp, c);
  out->t->ad = gc_alloc_atomic(sizeof(int32_t) * k);
  for (size_t e = 0; e < k; e++) out->t->ad[e] = first + (int32_t)e;
  return true;
}

bool bi_ad_linalg(Tape *T, const Builtin *b, int nargs, const Value *args, Value *out,
                  char *err, size_t errsz, bool *handled) {
  const char *name = b->name;
  Parts q = {0, 0, NULL, NULL};
  *handled = true;
  if (block_kind(name) >= 0) {
    if (!r_block(T, b, nargs, args, out))
      return bi_fail(err, errsz, "gradient of '%s': too many operands", name);
    return true;
  }
  if (!strcmp(name, "crossprod") || !strcmp(name, "tcrossprod") ||
      !strcmp(name, "multiply_lower_tri_self_transpose") || !strcmp(name, "quad_form") ||
      !strcmp(name, "quad_form_sym"))
    return r_product_like(T, name, args, out, &q);
  if (!strcmp(name, "diag_pre_multiply") || !strcmp(name, "diag_post_multiply") ||
      !strcmp(name, "quad_form_diag"))
    return r_diag_mult(T, name, args, out, &q);
  if (!strcmp(name, "trace")) return r_trace(T, args, out, &q);
  if (!strcmp(name, "columns_dot_product")) return r_rc_dot(T, false, false, args, out, &q);
  if (!strcmp(name, "rows_dot_product")) return r_rc_dot(T, true, false, args, out, &q);
  if (!strcmp(name, "columns_dot_self")) return r_rc_dot(T, false, true, args, out, &q);
  if (!strcmp(name, "rows_dot_self")) return r_rc_dot(T, true, true, args, out, &q);
  if (!strcmp(name, "inverse") || !strcmp(name, "inverse_spd")) return r_inverse(T, args, out, &q);
  if (!strcmp(name, "determinant")) return r_det(T, false, args, out, &q, err, errsz);
  if (!strcmp(name, "log_determinant") || !strcmp(name, "log_determinant_spd"))
    return r_det(T, true, args, out, &q, err, errsz);
  if (!strcmp(name, "mdivide_left") || !strcmp(name, "solve") ||
      !strcmp(name, "mdivide_left_spd"))
    return r_mdivide(T, false, false, args, out, &q, err, errsz);
  if (!strcmp(name, "mdivide_left_tri_low"))
    return r_mdivide(T, false, true, args, out, &q, err, errsz);
  if (!strcmp(name, "mdivide_right")) return r_mdivide(T, true, false, args, out, &q, err, errsz);
  if (!strcmp(name, "mdivide_right_tri_low"))
    return r_mdivide(T, true, true, args, out, &q, err, errsz);
  *handled = false;
  return true;
}
