/* interp_ops.c — value operations of the IR interpreter: arithmetic with
 * broadcasting and matrix products, indexing and slicing, indexed stores,
 * declarations and conversions (see interp_ops.h).
 *
 * Scalars never allocate.  Containers are column-major ValTen or ValArr trees;
 * every result built here is fresh, so the interpreter may own it.
 */
#include "interp_ops.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../stdlib/ad.h"
#include "../stdlib/tensor.h"

#define ERR(...) (snprintf(err, errsz, __VA_ARGS__), false)

static const char *op_sym(int op) { return ir_op_name((IrOp)op); }

static bool is_ten(Value v) { return v.k == V_VEC || v.k == V_ROWVEC || v.k == V_MAT; }
static bool is_num(Value v) { return v.k == V_INT || v.k == V_REAL || v.k == V_BOOL; }
static double num(Value v) {
  return v.k == V_REAL ? v.r : v.k == V_INT ? (double)v.i : v.k == V_BOOL ? (double)v.b : NAN;
}
static int64_t inum(Value v) { return v.k == V_INT ? v.i : v.k == V_BOOL ? (int64_t)v.b : (int64_t)num(v); }
static size_t ten_n(const ValTen *t) { return (size_t)t->rows * (size_t)t->cols; }

static Value ten_new(ValKind k, int rows, int cols) {
  return k == V_VEC ? val_vec(rows) : k == V_ROWVEC ? val_rowvec(cols) : val_mat(rows, cols);
}

/* ---- tape nodes of container elements (AD runs only) ---- */

static int32_t *ad_nodes_new(size_t n) { return gc_alloc_atomic(sizeof(int32_t) * (n ? n : 1)); }
static int32_t *ad_nodes_copy(const int32_t *a, size_t n) {
  int32_t *r = ad_nodes_new(n);
  memcpy(r, a, sizeof(int32_t) * n);
  return r;
}
/* Element i's node, 0 for constant tensors. */
static inline int32_t ten_node(const ValTen *t, size_t i) { return t->ad ? t->ad[i] : 0; }
/* Set element i's node, creating the node array on the first non-constant. */
static inline void ten_set_node(ValTen *t, size_t i, int32_t n) {
  if (!t->ad) {
    if (!n) return;
    t->ad = ad_nodes_new(ten_n(t));
  }
  t->ad[i] = n;
}
/* A numeric scalar with its node (ints and bools never carry one). */
static inline int32_t num_node(Value v) { return v.k == V_REAL ? v.ad : 0; }

const char *op_shape_desc(Value v) {
  switch (v.k) {
  case V_VEC: return gc_printf("vector of %d", v.t->rows);
  case V_ROWVEC: return gc_printf("row_vector of %d", v.t->cols);
  case V_MAT: return gc_printf("matrix of %dx%d", v.t->rows, v.t->cols);
  case V_ARR: return gc_printf("array of %d", v.a->n);
  case V_STR: return "string";
  default: return val_kind_name((ValKind)v.k);
  }
}

/* ---- scalar arithmetic ---------------------------------------------------- */

static bool int_binary(int op, int64_t x, int64_t y, Value *out, char *err, size_t errsz) {
  int64_t r;
  switch (op) {
  case OP_ADD:
    if (__builtin_add_overflow(x, y, &r)) return ERR("integer overflow in '+'");
    break;
  case OP_SUB:
    if (__builtin_sub_overflow(x, y, &r)) return ERR("integer overflow in '-'");
    break;
  case OP_MUL:
  case OP_EMUL:
    if (__builtin_mul_overflow(x, y, &r)) return ERR("integer overflow in '*'");
    break;
  case OP_DIV:
  case OP_EDIV:
  case OP_IDIV:
    if (y == 0) return ERR("integer division by zero");
    if (x == INT64_MIN && y == -1) return ERR("integer overflow in '%s'", op_sym(op));
    r = x / y;
    break;
  case OP_MOD:
    if (y == 0) return ERR("integer division by zero in '%%'");
    r = y == -1 ? 0 : x % y;
    break;
  case OP_POW: *out = val_real(sr_pow((double)x, (double)y)); return true;
  case OP_EQ: *out = val_bool(x == y); return true;
  case OP_NE: *out = val_bool(x != y); return true;
  case OP_LT: *out = val_bool(x < y); return true;
  case OP_LE: *out = val_bool(x <= y); return true;
  case OP_GT: *out = val_bool(x > y); return true;
  case OP_GE: *out = val_bool(x >= y); return true;
  case OP_AND: *out = val_bool(x && y); return true;
  case OP_OR: *out = val_bool(x || y); return true;
  default: return ERR("operator '%s' is not defined for int and int", op_sym(op));
  }
  *out = val_int(r);
  return true;
}

/* Real arithmetic for the element-wise operators; comparisons handled by the caller. */
static inline double real_arith(int op, double x, double y) {
  switch (op) {
  case OP_ADD: return sr_add(x, y);
  case OP_SUB: return sr_sub(x, y);
  case OP_MUL:
  case OP_EMUL: return sr_mul(x, y);
  case OP_DIV:
  case OP_EDIV: return sr_div(x, y);
  case OP_POW: return sr_pow(x, y);
  case OP_MOD: return sr_mod(x, y);
  default: return NAN;
  }
}

static bool is_arith(int op) {
  return op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_EMUL || op == OP_DIV ||
         op == OP_EDIV || op == OP_POW || op == OP_MOD;
}

static bool real_binary(int op, double x, double y, Value *out, char *err, size_t errsz) {
  switch (op) {
  case OP_EQ: *out = val_bool(x == y); return true;
  case OP_NE: *out = val_bool(x != y); return true;
  case OP_LT: *out = val_bool(x < y); return true;
  case OP_LE: *out = val_bool(x <= y); return true;
  case OP_GT: *out = val_bool(x > y); return true;
  case OP_GE: *out = val_bool(x >= y); return true;
  case OP_AND: *out = val_bool(x != 0 && y != 0); return true;
  case OP_OR: *out = val_bool(x != 0 || y != 0); return true;
  case OP_IDIV: return ERR("operator '%%/%%' needs integers");
  default:
    if (!is_arith(op)) return ERR("operator '%s' is not defined for real and real", op_sym(op));
    *out = val_real(real_arith(op, x, y));
    return true;
  }
}

static bool str_binary(int op, Value a, Value b, Value *out, char *err, size_t errsz) {
  if (op == OP_ADD) {
    size_t n = a.s->len + b.s->len;
    PplStr *p = gc_alloc_atomic(sizeof(PplStr) + n + 1);
    p->len = n;
    memcpy(p->data, a.s->data, a.s->len);
    memcpy(p->data + a.s->len, b.s->data, b.s->len);
    p->data[n] = 0;
    out->k = V_STR;
    out->ad = 0;
    out->s = p;
    return true;
  }
  size_t m = a.s->len < b.s->len ? a.s->len : b.s->len;
  int c = memcmp(a.s->data, b.s->data, m);
  if (c == 0) c = a.s->len < b.s->len ? -1 : a.s->len > b.s->len ? 1 : 0;
  switch (op) {
  case OP_EQ: *out = val_bool(c == 0); return true;
  case OP_NE: *out = val_bool(c != 0); return true;
  case OP_LT: *out = val_bool(c < 0); return true;
  case OP_LE: *out = val_bool(c <= 0); return true;
  case OP_GT: *out = val_bool(c > 0); return true;
  case OP_GE: *out = val_bool(c >= 0); return true;
  default: return ERR("operator '%s' is not defined for string and string", op_sym(op));
  }
}

/* ---- containers ----------------------------------------------------------- */

static bool mismatch(int op, Value a, Value b, char *err, size_t errsz) {
  return ERR("size mismatch in '%s': %s and %s", op_sym(op), op_shape_desc(a), op_shape_desc(b));
}

static bool undefined(int op, Value a, Value b, char *err, size_t errsz) {
  if (a.k == V_ARR || b.k == V_ARR)
    return ERR("operator '%s': arithmetic on arrays is not supported; use a vector", op_sym(op));
  return ERR("operator '%s' is not defined for %s and %s", op_sym(op),
             val_kind_name((ValKind)a.k), val_kind_name((ValKind)b.k));
}

/* Matrix products with '*': the five shapes of linear algebra. */
static bool ten_product(Value a, Value b, Value *out, char *err, size_t errsz) {
  const ValTen *A = a.t, *B = b.t;
  if (a.k == V_ROWVEC && b.k == V_VEC) {
    if (A->cols != B->rows) return mismatch(OP_MUL, a, b, err, errsz);
    double s = 0;
    for (int i = 0; i < A->cols; i++) s += A->d[i] * B->d[i];
    *out = val_real(s);
    return true;
  }
  if (a.k == V_VEC && b.k == V_ROWVEC) {
    Value r = val_mat(A->rows, B->cols);
    for (int j = 0; j < B->cols; j++)
      for (int i = 0; i < A->rows; i++) r.t->d[(size_t)j * A->rows + i] = A->d[i] * B->d[j];
    *out = r;
    return true;
  }
  ValKind rk;
  if (a.k == V_MAT && b.k == V_VEC) rk = V_VEC;
  else if (a.k == V_MAT && b.k == V_MAT) rk = V_MAT;
  else if (a.k == V_ROWVEC && b.k == V_MAT) rk = V_ROWVEC;
  else
    return ERR("operator '*' is not defined for %s and %s (use .* for element-wise products)",
               val_kind_name((ValKind)a.k), val_kind_name((ValKind)b.k));
  if (A->cols != B->rows) return mismatch(OP_MUL, a, b, err, errsz);
  int n = A->rows, m = B->cols, K = A->cols;
  Value r = ten_new(rk, n, m);
  double *R = r.t->d;
  /* column-major: accumulate scaled columns of A, reading both operands in order */
  for (int j = 0; j < m; j++) {
    double *rc = R + (size_t)j * n;
    for (int k = 0; k < K; k++) {
      double bkj = B->d[(size_t)j * K + k];
      const double *ac = A->d + (size_t)k * n;
      for (int i = 0; i < n; i++) rc[i] += ac[i] * bkj;
    }
  }
  *out = r;
  return true;
}

static bool ten_binary(int op, Value a, Value b, Value *out, char *err, size_t errsz) {
  bool ta = is_ten(a), tb = is_ten(b);
  if (ta && tb) {
    if (op == OP_MUL) return ten_product(a, b, out, err, errsz);
    if (op != OP_ADD && op != OP_SUB && op != OP_EMUL && op != OP_EDIV && op != OP_POW)
      return undefined(op, a, b, err, errsz);
    if (a.k != b.k || a.t->rows != b.t->rows || a.t->cols != b.t->cols)
      return mismatch(op, a, b, err, errsz);
    size_t n = ten_n(a.t);
    Value r = ten_new((ValKind)a.k, a.t->rows, a.t->cols);
    const double *x = a.t->d, *y = b.t->d;
    double *z = r.t->d;
    switch (op) {
    case OP_ADD: for (size_t i = 0; i < n; i++) z[i] = sr_add(x[i], y[i]); break;
    case OP_SUB: for (size_t i = 0; i < n; i++) z[i] = sr_sub(x[i], y[i]); break;
    case OP_EMUL: for (size_t i = 0; i < n; i++) z[i] = sr_mul(x[i], y[i]); break;
    case OP_EDIV: for (size_t i = 0; i < n; i++) z[i] = sr_div(x[i], y[i]); break;
    default: for (size_t i = 0; i < n; i++) z[i] = sr_pow(x[i], y[i]); break;
    }
    *out = r;
    return true;
  }
  /* broadcasting a scalar over a container, on either side */
  if (!(ta ? is_num(b) : is_num(a)) || !is_arith(op) || op == OP_MOD)
    return undefined(op, a, b, err, errsz);
  Value t = ta ? a : b;
  double s = ta ? num(b) : num(a);
  size_t n = ten_n(t.t);
  Value r = ten_new((ValKind)t.k, t.t->rows, t.t->cols);
  const double *x = t.t->d;
  double *z = r.t->d;
  if (ta) {
    switch (op) {
    case OP_ADD: for (size_t i = 0; i < n; i++) z[i] = sr_add(x[i], s); break;
    case OP_SUB: for (size_t i = 0; i < n; i++) z[i] = sr_sub(x[i], s); break;
    case OP_MUL: case OP_EMUL: for (size_t i = 0; i < n; i++) z[i] = sr_mul(x[i], s); break;
    default: for (size_t i = 0; i < n; i++) z[i] = real_arith(op, x[i], s); break;
    }
  } else {
    switch (op) {
    case OP_ADD: for (size_t i = 0; i < n; i++) z[i] = sr_add(s, x[i]); break;
    case OP_SUB: for (size_t i = 0; i < n; i++) z[i] = sr_sub(s, x[i]); break;
    case OP_MUL: case OP_EMUL: for (size_t i = 0; i < n; i++) z[i] = sr_mul(s, x[i]); break;
    default: for (size_t i = 0; i < n; i++) z[i] = real_arith(op, s, x[i]); break;
    }
  }
  *out = r;
  return true;
}

/* ---- recording arithmetic on the tape ------------------------------------ */

static bool has_nodes(Value v) {
  return v.k == V_REAL ? v.ad != 0 : is_ten(v) ? v.t->ad != NULL : false;
}

/* d(x op y)/dx and d(x op y)/dy, given z = x op y: the scalar rules'
   (stdlib/scalar_rule.h), which the JIT emits from the same lists. */
static void arith_partials(int op, double x, double y, double z, double *dx, double *dy) {
  switch (op) {
  case OP_ADD: sr_add_d(x, y, z, dx, dy); break;
  case OP_SUB: sr_sub_d(x, y, z, dx, dy); break;
  case OP_MUL:
  case OP_EMUL: sr_mul_d(x, y, z, dx, dy); break;
  case OP_DIV:
  case OP_EDIV: sr_div_d(x, y, z, dx, dy); break;
  case OP_POW: sr_pow_d(x, y, z, dx, dy); break;
  case OP_MOD: sr_mod_d(x, y, z, dx, dy); break;
  default: *dx = *dy = 0; break;
  }
}

const ScalarRule *op_scalar_rule(int op) {
  switch (op) {
  case OP_ADD: return &sr_rules[SR_add];
  case OP_SUB: return &sr_rules[SR_sub];
  case OP_MUL:
  case OP_EMUL: return &sr_rules[SR_mul];
  case OP_DIV:
  case OP_EDIV: return &sr_rules[SR_div];
  case OP_POW: return &sr_rules[SR_pow];
  case OP_MOD: return &sr_rules[SR_mod];
  case OP_NEG: return &sr_rules[SR_neg];
  default: return NULL;
  }
}

/* An operand of a product as a row-major tensor on the tape: a column-major
 * r x c matrix is the row-major [c, r] one.  Its values are copied into the
 * tape's arena because the product's rule reads them in the backward sweep,
 * after the program may have stored into the register. */
static Tensor product_operand(Tape *T, const ValTen *t, int rank, const int *shape) {
  if (t->ad) return tensor_gather(T, rank, shape, t->d, t->ad);
  return tensor_keep(T, tensor_const(rank, shape, t->d));
}

/* Matrix products.  Those with a matrix operand record one block node
 * (stdlib/tensor.h) whose rule is two BLAS calls, instead of one node per
 * output with the 2K partials of a row of A and a column of B; the value stays
 * the one op_binary computed.  In row-major terms C' = B'A', which is what is
 * recorded. */
static void ad_product(Tape *T, Value a, Value b, Value *out) {
  const ValTen *A = a.t, *B = b.t;
  if (a.k == V_VEC && b.k == V_ROWVEC) {
    for (int j = 0; j < B->cols; j++)
      for (int i = 0; i < A->rows; i++)
        ten_set_node(out->t, (size_t)j * A->rows + i,
                     tape_binary(T, ten_node(A, i), B->d[j], ten_node(B, j), A->d[i]));
    return;
  }
  int n = A->rows, m = B->cols, K = A->cols;
  if (a.k == V_MAT || b.k == V_MAT) {
    Tensor bt = b.k == V_VEC ? product_operand(T, B, 1, (int[]){K})
                             : product_operand(T, B, 2, (int[]){m, K});
    Tensor at = a.k == V_ROWVEC ? product_operand(T, A, 1, (int[]){K})
                                : product_operand(T, A, 2, (int[]){K, n});
    Tensor c = tensor_matmul_given(T, bt, at, out->t->d);
    if (c.node) {
      size_t nc = ten_n(out->t);
      out->t->ad = ad_nodes_new(nc);
      for (size_t i = 0; i < nc; i++) out->t->ad[i] = c.node + (int32_t)i;
    }
    return;
  }
  /* row_vector * vector: one real depending on both */
  int32_t pb[64];
  double db[64];
  int32_t *par = 2 * K <= 64 ? pb : ad_nodes_new((size_t)(2 * K));
  double *dv = 2 * K <= 64 ? db : gc_alloc_atomic(sizeof(double) * (size_t)(2 * K));
  int np = 0;
  for (int k = 0; k < K; k++) {
    if (A->ad && A->ad[k]) {
      par[np] = A->ad[k];
      dv[np++] = B->d[k];
    }
    if (B->ad && B->ad[k]) {
      par[np] = B->ad[k];
      dv[np++] = A->d[k];
    }
  }
  out->ad = tape_push(T, np, par, dv);
}

/* Attach the nodes of a op b to the already computed *out. */
static void ad_binary(Tape *T, int op, Value a, Value b, Value *out) {
  if (!is_arith(op) || op == OP_IDIV) return;
  bool ta = is_ten(a), tb = is_ten(b);
  double dx, dy;
  if (ta && tb && op == OP_MUL) {
    ad_product(T, a, b, out);
    return;
  }
  if (out->k == V_REAL) {
    arith_partials(op, num(a), num(b), out->r, &dx, &dy);
    out->ad = tape_binary(T, num_node(a), dx, num_node(b), dy);
    return;
  }
  if (!is_ten(*out)) return;
  size_t n = ten_n(out->t);
  double sx = ta ? 0 : num(a), sy = tb ? 0 : num(b);
  int32_t nx = ta ? 0 : num_node(a), ny = tb ? 0 : num_node(b);
  for (size_t i = 0; i < n; i++) {
    double x = ta ? a.t->d[i] : sx, y = tb ? b.t->d[i] : sy;
    arith_partials(op, x, y, out->t->d[i], &dx, &dy);
    int32_t node = tape_binary(T, ta ? ten_node(a.t, i) : nx, dx, tb ? ten_node(b.t, i) : ny, dy);
    ten_set_node(out->t, i, node);
  }
}

bool op_binary_ad(Tape *T, int op, Value a, Value b, Value *out, char *err, size_t errsz) {
  if (!op_binary(op, a, b, out, err, errsz)) return false;
  if (has_nodes(a) || has_nodes(b)) ad_binary(T, op, a, b, out);
  return true;
}

bool op_binary(int op, Value a, Value b, Value *out, char *err, size_t errsz) {
  if (a.k == V_REAL && b.k == V_REAL) return real_binary(op, a.r, b.r, out, err, errsz);
  bool ia = a.k == V_INT || a.k == V_BOOL, ib = b.k == V_INT || b.k == V_BOOL;
  if (ia && ib) {
    if (a.k == V_BOOL && b.k == V_BOOL && (op == OP_EQ || op == OP_NE)) {
      *out = val_bool(op == OP_EQ ? a.b == b.b : a.b != b.b);
      return true;
    }
    return int_binary(op, inum(a), inum(b), out, err, errsz);
  }
  if (is_num(a) && is_num(b)) return real_binary(op, num(a), num(b), out, err, errsz);
  if (a.k == V_STR && b.k == V_STR) return str_binary(op, a, b, out, err, errsz);
  if (is_ten(a) || is_ten(b)) return ten_binary(op, a, b, out, err, errsz);
  return undefined(op, a, b, err, errsz);
}

static Value ten_transpose(Value a) {
  const ValTen *t = a.t;
  if (a.k != V_MAT) {
    Value r = a.k == V_VEC ? val_rowvec(t->rows) : val_vec(t->cols);
    memcpy(r.t->d, t->d, sizeof(double) * ten_n(t));
    if (t->ad) r.t->ad = ad_nodes_copy(t->ad, ten_n(t));
    return r;
  }
  Value r = val_mat(t->cols, t->rows);
  for (int j = 0; j < t->cols; j++)
    for (int i = 0; i < t->rows; i++) r.t->d[(size_t)i * t->cols + j] = t->d[(size_t)j * t->rows + i];
  if (t->ad) {
    r.t->ad = ad_nodes_new(ten_n(t));
    for (int j = 0; j < t->cols; j++)
      for (int i = 0; i < t->rows; i++)
        r.t->ad[(size_t)i * t->cols + j] = t->ad[(size_t)j * t->rows + i];
  }
  return r;
}

bool op_unary_ad(Tape *T, int op, Value a, Value *out, char *err, size_t errsz) {
  if (!op_unary(op, a, out, err, errsz)) return false;
  if (op == OP_NEG && has_nodes(a)) {
    if (out->k == V_REAL) out->ad = tape_unary(T, a.ad, sr_neg_d1(a.r, out->r));
    else
      for (size_t i = 0; i < ten_n(a.t); i++)
        ten_set_node(out->t, i, tape_unary(T, a.t->ad[i], sr_neg_d1(a.t->d[i], out->t->d[i])));
  }
  return true;
}

bool op_unary(int op, Value a, Value *out, char *err, size_t errsz) {
  switch (op) {
  case OP_PLUS:
    if (!is_num(a) && !is_ten(a)) break;
    *out = is_ten(a) ? val_copy(a) : a;
    return true;
  case OP_NEG:
    if (a.k == V_INT || a.k == V_BOOL) {
      int64_t x = inum(a);
      if (x == INT64_MIN) return ERR("integer overflow in unary '-'");
      *out = val_int(-x);
      return true;
    }
    if (a.k == V_REAL) { *out = val_real(sr_neg1(a.r)); return true; }
    if (is_ten(a)) {
      Value r = ten_new((ValKind)a.k, a.t->rows, a.t->cols);
      size_t n = ten_n(a.t);
      for (size_t i = 0; i < n; i++) r.t->d[i] = sr_neg1(a.t->d[i]);
      *out = r;
      return true;
    }
    break;
  case OP_NOT:
    if (!is_num(a)) break;
    *out = val_bool(!op_truthy(a));
    return true;
  case OP_TRANSPOSE:
    if (is_ten(a)) { *out = ten_transpose(a); return true; }
    if (is_num(a)) { *out = a; return true; }
    break;
  default:
    break;
  }
  return ERR("operator '%s' is not defined for %s", op_sym(op), val_kind_name((ValKind)a.k));
}

/* ---- indexing ------------------------------------------------------------- */

/* One evaluated index position: a single index, or a selection of n indices
   (a range lo, lo+1, ... or the elements of an int array). */
typedef struct Sel {
  bool single;
  int n;
  int64_t lo;
  const Value *multi;
} Sel;

static inline int64_t sel_at(const Sel *s, int k) { return s->multi ? s->multi[k].i : s->lo + k; }

/* `what` names the dimension in messages: "array of size 10", "matrix with 3 rows". */
static bool range_err(int64_t i, const char *what, int size, char *err, size_t errsz) {
  return ERR("index %lld out of range for %s %d", (long long)i, what, size);
}

static bool sel_make(const IrIndex *ix, const Value *regs, int size, const char *what, Sel *s,
                     char *err, size_t errsz) {
  memset(s, 0, sizeof *s);
  switch (ix->kind) {
  case IX_SINGLE: {
    Value v = regs[ix->lo];
    int64_t i = v.k == V_INT ? v.i : (int64_t)num(v);
    if (i < 1 || i > size) return range_err(i, what, size, err, errsz);
    s->single = true;
    s->lo = i;
    s->n = 1;
    return true;
  }
  case IX_ALL:
    s->lo = 1;
    s->n = size;
    return true;
  case IX_RANGE: {
    int64_t lo = ix->lo >= 0 ? inum(regs[ix->lo]) : 1;
    int64_t hi = ix->hi >= 0 ? inum(regs[ix->hi]) : size;
    if (hi < lo) {
      s->lo = 1;
      s->n = 0;
      return true;
    }
    if (lo < 1 || lo > size) return range_err(lo, what, size, err, errsz);
    if (hi > size) return range_err(hi, what, size, err, errsz);
    s->lo = lo;
    s->n = (int)(hi - lo + 1);
    return true;
  }
  case IX_MULTI: {
    Value m = regs[ix->lo];
    if (m.k != V_ARR) return ERR("multi-index must be an int array, got %s", op_shape_desc(m));
    for (int k = 0; k < m.a->n; k++) {
      if (m.a->e[k].k != V_INT) return ERR("multi-index must be an int array");
      int64_t i = m.a->e[k].i;
      if (i < 1 || i > size) return range_err(i, what, size, err, errsz);
    }
    s->multi = m.a->e;
    s->n = m.a->n;
    return true;
  }
  default:
    return ERR("bad index kind %d", ix->kind);
  }
}

/* Row and column selections of m[i], m[i, j] (a lone row index takes every
   column), shared by indexing and stores. */
static bool mat_sels(const IrIndex *ix, int nidx, const Value *regs, const ValTen *t, Sel *r,
                     Sel *c, char *err, size_t errsz) {
  if (nidx > 2) return ERR("too many indexes for matrix");
  if (!sel_make(ix, regs, t->rows, "matrix with rows", r, err, errsz)) return false;
  if (nidx == 2) return sel_make(ix + 1, regs, t->cols, "matrix with columns", c, err, errsz);
  *c = (Sel){.single = false, .n = t->cols, .lo = 1, .multi = NULL};
  return true;
}

static const char *ten_what(ValKind k) {
  return k == V_VEC ? "vector of size" : k == V_ROWVEC ? "row_vector of size" : "matrix of size";
}

static bool index_rec(Value v, int nidx, const IrIndex *ix, const Value *regs, Value *out,
                      bool view, char *err, size_t errsz) {
  if (nidx == 0) {
    /* an element reached through single indices must not alias, unless asked */
    *out = view ? v : val_copy(v);
    return true;
  }
  Sel s;
  switch (v.k) {
  case V_ARR: {
    if (!sel_make(ix, regs, v.a->n, "array of size", &s, err, errsz)) return false;
    if (s.single) return index_rec(v.a->e[s.lo - 1], nidx - 1, ix + 1, regs, out, view, err, errsz);
    Value r = val_arr(s.n);
    for (int k = 0; k < s.n; k++) /* a fresh array: its elements are copies */
      if (!index_rec(v.a->e[sel_at(&s, k) - 1], nidx - 1, ix + 1, regs, &r.a->e[k], false, err, errsz))
        return false;
    *out = r;
    return true;
  }
  case V_VEC:
  case V_ROWVEC: {
    if (nidx > 1) return ERR("too many indexes for %s", val_kind_name((ValKind)v.k));
    int n = v.k == V_VEC ? v.t->rows : v.t->cols;
    if (!sel_make(ix, regs, n, ten_what((ValKind)v.k), &s, err, errsz)) return false;
    if (s.single) {
      *out = val_real(v.t->d[s.lo - 1]);
      out->ad = ten_node(v.t, (size_t)s.lo - 1);
      return true;
    }
    Value r = v.k == V_VEC ? val_vec(s.n) : val_rowvec(s.n);
    for (int k = 0; k < s.n; k++) r.t->d[k] = v.t->d[sel_at(&s, k) - 1];
    if (v.t->ad)
      for (int k = 0; k < s.n; k++) ten_set_node(r.t, (size_t)k, v.t->ad[sel_at(&s, k) - 1]);
    *out = r;
    return true;
  }
  case V_MAT: {
    const ValTen *t = v.t;
    Sel c;
    if (!mat_sels(ix, nidx, regs, t, &s, &c, err, errsz)) return false;
    if (s.single && c.single) {
      size_t q = (size_t)(c.lo - 1) * t->rows + (size_t)(s.lo - 1);
      *out = val_real(t->d[q]);
      out->ad = ten_node(t, q);
      return true;
    }
    Value r = s.single ? val_rowvec(c.n) : c.single ? val_vec(s.n) : val_mat(s.n, c.n);
    for (int j = 0; j < c.n; j++) {
      size_t col = (size_t)(sel_at(&c, j) - 1) * t->rows;
      for (int i = 0; i < s.n; i++) r.t->d[(size_t)j * s.n + i] = t->d[col + sel_at(&s, i) - 1];
      if (t->ad)
        for (int i = 0; i < s.n; i++)
          ten_set_node(r.t, (size_t)j * s.n + i, t->ad[col + sel_at(&s, i) - 1]);
    }
    *out = r;
    return true;
  }
  default:
    return ERR("cannot index a value of kind %s", val_kind_name((ValKind)v.k));
  }
}

bool op_index(Value v, int nidx, const IrIndex *ix, const Value *regs, Value *out, char *err,
              size_t errsz) {
  return index_rec(v, nidx, ix, regs, out, false, err, errsz);
}

bool op_index_view(Value v, int nidx, const IrIndex *ix, const Value *regs, Value *out, char *err,
                   size_t errsz) {
  return index_rec(v, nidx, ix, regs, out, true, err, errsz);
}

/* ---- conversions ---------------------------------------------------------- */

static Value arr_of_reals(const double *d, const int32_t *ad, int n) {
  Value r = val_arr(n);
  for (int i = 0; i < n; i++) {
    r.a->e[i] = val_real(d[i]);
    if (ad) r.a->e[i].ad = ad[i];
  }
  return r;
}

Value op_convert(Value v, Type t, bool *fresh) {
  *fresh = false;
  if (t.ndims == 0) {
    switch (t.base) {
    case TY_REAL:
      if (v.k == V_INT || v.k == V_BOOL) return val_real(num(v));
      return v;
    case TY_INT:
      if (v.k == V_BOOL) return val_int(v.b);
      return v;
    case TY_BOOL:
      if (v.k == V_INT) return val_bool(v.i != 0);
      return v;
    case TY_VECTOR:
    case TY_ROWVEC: {
      ValKind want = t.base == TY_VECTOR ? V_VEC : V_ROWVEC;
      if (v.k == want) return v;
      Value r;
      if (v.k == V_ARR) {
        r = want == V_VEC ? val_vec(v.a->n) : val_rowvec(v.a->n);
        for (int i = 0; i < v.a->n; i++) {
          r.t->d[i] = num(v.a->e[i]);
          ten_set_node(r.t, (size_t)i, num_node(v.a->e[i]));
        }
      } else if (v.k == V_VEC || v.k == V_ROWVEC) {
        r = ten_transpose(v);
      } else {
        return v;
      }
      *fresh = true;
      return r;
    }
    default:
      return v;
    }
  }
  if (t.ndims == 1 && t.base == TY_REAL && (v.k == V_VEC || v.k == V_ROWVEC)) {
    *fresh = true;
    return arr_of_reals(v.t->d, v.t->ad, (int)ten_n(v.t));
  }
  if (v.k != V_ARR) return v;
  Type et = ty_make((TyBase)t.base, t.ndims - 1);
  Value r = v;
  for (int i = 0; i < v.a->n; i++) {
    bool f;
    Value e = op_convert(v.a->e[i], et, &f);
    if (!f && !*fresh) continue;
    if (!*fresh) { /* first change: the result becomes a fresh deep copy */
      r = val_arr(v.a->n);
      for (int j = 0; j < i; j++) r.a->e[j] = val_copy(v.a->e[j]);
      *fresh = true;
    }
    r.a->e[i] = f ? e : val_copy(e);
  }
  return r;
}

/* ---- stores --------------------------------------------------------------- */

/* Replace a whole slot with a copy of rhs, keeping the slot's shape and scalar kind. */
static bool store_leaf(Value *slot, Value rhs, TyBase base, char *err, size_t errsz) {
  switch (slot->k) {
  case V_REAL:
    if (!is_num(rhs)) break;
    *slot = val_real(num(rhs));
    slot->ad = num_node(rhs);
    return true;
  case V_INT:
    if (rhs.k != V_INT && rhs.k != V_BOOL) break;
    *slot = val_int(inum(rhs));
    return true;
  case V_BOOL:
    if (!is_num(rhs)) break;
    *slot = val_bool(op_truthy(rhs));
    return true;
  case V_STR:
    if (rhs.k != V_STR) break;
    *slot = rhs;
    return true;
  case V_NONE: {
    bool f;
    Value c = op_convert(rhs, ty_make(base, 0), &f);
    *slot = f ? c : val_copy(c);
    return true;
  }
  default: {
    bool f = false;
    Value c = rhs;
    if (slot->k == V_ARR) {
      int depth = 0;
      for (Value e = *slot; e.k == V_ARR && e.a->n > 0; e = e.a->e[0]) depth++;
      c = op_convert(rhs, ty_make(base, depth), &f);
    }
    if (!op_same_shape(*slot, c))
      return ERR("size mismatch in assignment: %s assigned to %s", op_shape_desc(rhs),
                 op_shape_desc(*slot));
    *slot = f ? c : val_copy(c);
    return true;
  }
  }
  return ERR("cannot assign %s to %s", op_shape_desc(rhs), op_shape_desc(*slot));
}

/* The n values of a one-dimensional rhs (vector, row_vector or array of numbers). */
static bool rhs_1d(Value rhs, int n, double *buf, int32_t *nodes, char *err, size_t errsz) {
  int m;
  if (rhs.k == V_VEC || rhs.k == V_ROWVEC) m = (int)ten_n(rhs.t);
  else if (rhs.k == V_ARR) m = rhs.a->n;
  else return ERR("cannot assign %s to a slice of %d elements", op_shape_desc(rhs), n);
  if (m != n)
    return ERR("size mismatch in assignment: %s assigned to a slice of %d elements",
               op_shape_desc(rhs), n);
  for (int i = 0; i < n; i++) {
    if (rhs.k == V_ARR) {
      if (!is_num(rhs.a->e[i])) return ERR("cannot assign %s to a slice of reals", op_shape_desc(rhs));
      buf[i] = num(rhs.a->e[i]);
      nodes[i] = num_node(rhs.a->e[i]);
    } else {
      buf[i] = rhs.t->d[i];
      nodes[i] = ten_node(rhs.t, (size_t)i);
    }
  }
  return true;
}

static bool store_rec(Value *slot, int nidx, const IrIndex *ix, const Value *regs, Value rhs,
                      TyBase base, char *err, size_t errsz) {
  if (nidx == 0) return store_leaf(slot, rhs, base, err, errsz);
  Sel s;
  switch (slot->k) {
  case V_ARR: {
    ValArr *a = slot->a;
    if (!sel_make(ix, regs, a->n, "array of size", &s, err, errsz)) return false;
    if (s.single) return store_rec(&a->e[s.lo - 1], nidx - 1, ix + 1, regs, rhs, base, err, errsz);
    if (rhs.k != V_ARR || rhs.a->n != s.n)
      return ERR("size mismatch in assignment: %s assigned to a slice of %d elements",
                 op_shape_desc(rhs), s.n);
    if (rhs.a == a) rhs = val_copy(rhs); /* x[2:3] = x[1:2] must read the old values */
    for (int k = 0; k < s.n; k++)
      if (!store_rec(&a->e[sel_at(&s, k) - 1], nidx - 1, ix + 1, regs, rhs.a->e[k], base, err,
                     errsz))
        return false;
    return true;
  }
  case V_VEC:
  case V_ROWVEC: {
    if (nidx > 1) return ERR("too many indexes for %s", val_kind_name((ValKind)slot->k));
    ValTen *t = slot->t;
    int n = (int)ten_n(t);
    if (!sel_make(ix, regs, n, ten_what((ValKind)slot->k), &s, err, errsz)) return false;
    if (s.single) {
      if (!is_num(rhs)) return ERR("cannot assign %s to an element of a vector", op_shape_desc(rhs));
      t->d[s.lo - 1] = num(rhs);
      ten_set_node(t, (size_t)s.lo - 1, num_node(rhs));
      return true;
    }
    double *buf = gc_alloc_atomic(sizeof(double) * (size_t)(s.n ? s.n : 1));
    int32_t *nodes = ad_nodes_new((size_t)s.n);
    if (!rhs_1d(rhs, s.n, buf, nodes, err, errsz)) return false;
    for (int k = 0; k < s.n; k++) {
      t->d[sel_at(&s, k) - 1] = buf[k];
      ten_set_node(t, (size_t)sel_at(&s, k) - 1, nodes[k]);
    }
    return true;
  }
  case V_MAT: {
    ValTen *t = slot->t;
    Sel c;
    if (!mat_sels(ix, nidx, regs, t, &s, &c, err, errsz)) return false;
    if (s.single && c.single) {
      if (!is_num(rhs)) return ERR("cannot assign %s to an element of a matrix", op_shape_desc(rhs));
      size_t q = (size_t)(c.lo - 1) * t->rows + (size_t)(s.lo - 1);
      t->d[q] = num(rhs);
      ten_set_node(t, q, num_node(rhs));
      return true;
    }
    size_t total = (size_t)s.n * (size_t)c.n;
    double *buf = gc_alloc_atomic(sizeof(double) * (total ? total : 1));
    int32_t *nodes = ad_nodes_new(total);
    if (s.single || c.single) {
      if (!rhs_1d(rhs, s.single ? c.n : s.n, buf, nodes, err, errsz)) return false;
    } else {
      if (rhs.k != V_MAT || rhs.t->rows != s.n || rhs.t->cols != c.n)
        return ERR("size mismatch in assignment: %s assigned to a block of %dx%d",
                   op_shape_desc(rhs), s.n, c.n);
      memcpy(buf, rhs.t->d, sizeof(double) * total);
      if (rhs.t->ad) memcpy(nodes, rhs.t->ad, sizeof(int32_t) * total);
    }
    for (int j = 0; j < c.n; j++) {
      size_t col = (size_t)(sel_at(&c, j) - 1) * t->rows;
      for (int i = 0; i < s.n; i++) {
        t->d[col + sel_at(&s, i) - 1] = buf[(size_t)j * s.n + i];
        ten_set_node(t, col + sel_at(&s, i) - 1, nodes[(size_t)j * s.n + i]);
      }
    }
    return true;
  }
  default:
    return ERR("cannot index a value of kind %s", val_kind_name((ValKind)slot->k));
  }
}

bool op_store(Value *dst, int nidx, const IrIndex *ix, const Value *regs, Value rhs, TyBase base,
              char *err, size_t errsz) {
  return store_rec(dst, nidx, ix, regs, rhs, base, err, errsz);
}

/* ---- declarations and shapes ---------------------------------------------- */

static Value decl_rec(Type t, int depth, const int64_t *sz, Value empty_str) {
  if (depth < t.ndims) {
    Value a = val_arr((int)sz[depth]);
    for (int i = 0; i < a.a->n; i++) a.a->e[i] = decl_rec(t, depth + 1, sz, empty_str);
    return a;
  }
  Value r;
  switch (t.base) {
  case TY_INT: return val_int(0);
  case TY_BOOL: return val_bool(false);
  case TY_STRING: return empty_str;
  case TY_VECTOR: r = val_vec((int)sz[depth]); break;
  case TY_ROWVEC: r = val_rowvec((int)sz[depth]); break;
  case TY_MATRIX: r = val_mat((int)sz[depth], (int)sz[depth + 1]); break;
  default: return val_real(NAN);
  }
  size_t n = ten_n(r.t);
  for (size_t i = 0; i < n; i++) r.t->d[i] = NAN;
  return r;
}

static int tensor_dims(TyBase b) { return b == TY_MATRIX ? 2 : (b == TY_VECTOR || b == TY_ROWVEC) ? 1 : 0; }

bool op_decl(Type t, int nsizes, const int64_t *sizes, Value *out, char *err, size_t errsz) {
  int64_t sz[260];
  int need = t.ndims + tensor_dims((TyBase)t.base);
  for (int i = 0; i < need; i++) {
    int64_t s = i < nsizes ? sizes[i] : 0;
    if (s < 0) return ERR("size must be non-negative, got %lld", (long long)s);
    if (s > INT_MAX) return ERR("size %lld is too large", (long long)s);
    sz[i] = s;
  }
  if (t.base == TY_MATRIX && sz[t.ndims] * sz[t.ndims + 1] > INT_MAX)
    return ERR("matrix of %lldx%lld is too large", (long long)sz[t.ndims], (long long)sz[t.ndims + 1]);
  *out = decl_rec(t, 0, sz, val_str(""));
  return true;
}

static bool kind_fits(Value v, TyBase b) {
  switch (b) {
  case TY_INT: return v.k == V_INT;
  case TY_REAL: return v.k == V_REAL;
  case TY_BOOL: return v.k == V_BOOL;
  case TY_STRING: return v.k == V_STR;
  case TY_VECTOR: return v.k == V_VEC;
  case TY_ROWVEC: return v.k == V_ROWVEC;
  case TY_MATRIX: return v.k == V_MAT;
  default: return false;
  }
}

static bool shape_rec(Value v, Type t, int depth, int nsizes, const int64_t *sz) {
  if (depth < t.ndims) {
    if (v.k != V_ARR) return false;
    if (depth < nsizes && v.a->n != sz[depth]) return false;
    for (int i = 0; i < v.a->n; i++)
      if (!shape_rec(v.a->e[i], t, depth + 1, nsizes, sz)) return false;
    return true;
  }
  if (!kind_fits(v, (TyBase)t.base)) return false;
  switch (v.k) {
  case V_VEC: return depth >= nsizes || v.t->rows == sz[depth];
  case V_ROWVEC: return depth >= nsizes || v.t->cols == sz[depth];
  case V_MAT:
    return (depth >= nsizes || v.t->rows == sz[depth]) &&
           (depth + 1 >= nsizes || v.t->cols == sz[depth + 1]);
  default: return true;
  }
}

bool op_shape_ok(Value v, Type t, int nsizes, const int64_t *sizes) {
  return shape_rec(v, t, 0, nsizes, sizes);
}

bool op_same_shape(Value a, Value b) {
  for (;;) {
    if (a.k != b.k) return false;
    switch (a.k) {
    case V_ARR:
      if (a.a->n != b.a->n) return false;
      if (a.a->n == 0) return true;
      a = a.a->e[0];
      b = b.a->e[0];
      continue;
    case V_VEC:
    case V_ROWVEC:
    case V_MAT:
      return a.t->rows == b.t->rows && a.t->cols == b.t->cols;
    default:
      return true;
    }
  }
}

int op_shape_sizes(Value v, int *sizes, int max) {
  int n = 0;
  while (v.k == V_ARR) {
    if (n < max) sizes[n] = v.a->n;
    n++;
    if (v.a->n == 0) return n < max ? n : max;
    v = v.a->e[0];
  }
  if (v.k == V_VEC) { if (n < max) sizes[n] = v.t->rows; n++; }
  else if (v.k == V_ROWVEC) { if (n < max) sizes[n] = v.t->cols; n++; }
  else if (v.k == V_MAT) {
    if (n < max) sizes[n] = v.t->rows;
    n++;
    if (n < max) sizes[n] = v.t->cols;
    n++;
  }
  return n < max ? n : max;
}
