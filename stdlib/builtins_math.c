/* builtins_math.c — scalar math a model can call: elementwise functions
 * vectorised over arrays, vectors and matrices, binary functions that
 * broadcast a scalar over a container, and reductions (sum, mean, ...).
 *
 * Semantics follow Stan's function reference: NaN in gives NaN out, ints stay
 * ints where Stan's do (abs, min, max, sum, prod of ints), and the few
 * functions Stan rejects out of domain (inv_Phi, log1m, log_mix's theta)
 * report an error instead of returning NaN.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "builtins_impl.h"
#include "mathfn.h"
#include "ode.h"
#include "scalar_rule.h"

/* ---- kernels ------------------------------------------------------------- */

static double k_trigamma(double x) { return m_trigamma(x); }
static double k_inv_Phi(double p) {
  if (p == 0) return -INFINITY;
  if (p == 1) return INFINITY;
  return m_std_normal_qf(p);
}
static double k_log1m_exp(double x) { return x > 0 ? NAN : m_log1m_exp(x); }

static bool in_unit(double x) { return x >= 0 && x <= 1; }
static bool le_one(double x) { return sr_log1m_ok(x, 0, 0); }

static double k_log_diff_exp(double a, double b) {
  if (isnan(a) || isnan(b) || a < b) return NAN;
  if (b == -INFINITY) return a;
  if (a == b) return -INFINITY;
  return m_log_diff_exp(a, b);
}
static double k_lmultiply(double a, double b) { return a == 0 && b == 0 ? 0 : a * log(b); }
static double k_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a < b ? a : b); }
static double k_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a > b ? a : b); }

/* ---- elementwise unary ------------------------------------------------------- */

enum { UV_REAL = 0, UV_ABS, UV_LOG2, UV_LOG10 };

static bool check_uv(BI_CHECK_ARGS) {
  const BiSpec *s = BI_SPEC(b);
  if (nargs == 0 &&
      (s->op == UV_LOG2 || s->op == UV_LOG10)) { /* Stan's constants log2(), log10() */
    *ret = ty_make(TY_REAL, 0);
    return true;
  }
  if (nargs != 1) return bi_arity_fail(b, nargs, "1 argument", err, errsz);
  if (!bi_ty_numlike(args[0])) {
    return bi_fail(err, errsz, "%s expects a real or a container of reals, got %s", b->name,
                   ty_name(args[0]));
  }
  int base = args[0].base;
  if (base == TY_BOOL) base = TY_INT;
  if (base == TY_INT && s->op != UV_ABS) base = TY_REAL;
  *ret = ty_make((TyBase)base, args[0].ndims);
  return true;
}

static bool apply1(const Builtin *b, double x, double *y, char *err, size_t errsz) {
  const BiSpec *s = BI_SPEC(b);
  if (s->indom && !isnan(x) && !s->indom(x)) {
    char xb[40];
    return bi_efail(b, err, errsz, "argument %s, got %s", s->dom, bi_fmt_real(x, xb, sizeof xb));
  }
  *y = s->f1(x);
  return true;
}

static bool map1(const Builtin *b, Value v, Value *out, char *err, size_t errsz) {
  switch (v.k) {
  case V_INT:
  case V_BOOL:
    if (BI_SPEC(b)->op == UV_ABS) {
      int64_t i = bi_int(v);
      if (i == INT64_MIN) return bi_efail(b, err, errsz, "integer overflow");
      *out = val_int(i < 0 ? -i : i);
      return true;
    }
    /* fall through */
  case V_REAL: {
    double y;
    if (!apply1(b, val_as_real(v), &y, err, errsz)) return false;
    *out = val_real(y);
    return true;
  }
  case V_ARR: {
    Value a = val_arr(v.a->n);
    for (int i = 0; i < v.a->n; i++)
      if (!map1(b, v.a->e[i], &a.a->e[i], err, errsz)) return false;
    *out = a;
    return true;
  }
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    Value r = bi_ten_new((ValKind)v.k, v.t->rows, v.t->cols);
    size_t n = (size_t)v.t->rows * (size_t)v.t->cols;
    for (size_t i = 0; i < n; i++)
      if (!apply1(b, v.t->d[i], &r.t->d[i], err, errsz)) return false;
    *out = r;
    return true;
  }
  default:
    return bi_efail(b, err, errsz, "expected a number or a container of numbers, got %s",
                    val_kind_name((ValKind)v.k));
  }
}

static bool eval_uv(BI_EVAL_ARGS) {
  if (nargs == 0) {
    *out = val_real(BI_SPEC(b)->op == UV_LOG2 ? M_LN2 : M_LN10);
    return true;
  }
  return map1(b, args[0], out, err, errsz);
}

#define UV(nm, fn)                                                                                 \
  { nm, check_uv, eval_uv, &(const BiSpec){.f1 = fn}, false }
#define UVD(nm, fn, in, msg)                                                                       \
  { nm, check_uv, eval_uv, &(const BiSpec){.f1 = fn, .indom = in, .dom = msg}, false }
#define UVO(nm, fn, opv)                                                                           \
  { nm, check_uv, eval_uv, &(const BiSpec){.f1 = fn, .op = opv}, false }

/* ---- scalar predicates ------------------------------------------------------- */

static bool eval_pred(BI_EVAL_ARGS) {
  double x = val_as_real(args[0]);
  switch (BI_SPEC(b)->op) {
  case 0: *out = val_real(x < 0 ? 0.0 : 1.0); break; /* step: step(0) = step(NaN) = 1 */
  case 1: *out = val_int(x > 0); break;              /* int_step */
  case 2: *out = val_bool(isinf(x)); break;
  default: *out = val_bool(isnan(x)); break;
  }
  return true;
}

/* ---- binary, broadcasting ----------------------------------------------------- */

/* min and max of two ints stay int */
static bool is_minmax(const Builtin *b) {
  return BI_SPEC(b)->f2 == k_min || BI_SPEC(b)->f2 == k_max;
}

static bool check_bv(BI_CHECK_ARGS) {
  if (nargs != 2) return bi_arity_fail(b, nargs, "2 arguments", err, errsz);
  Type x = args[0], y = args[1];
  bool ok = bi_ty_numlike(x) && bi_ty_numlike(y);
  if (ok && !bi_ty_num(x) && !bi_ty_num(y)) {
    /* two containers: the same shape of type (ints count as reals) */
    int bx = x.base == TY_INT || x.base == TY_BOOL ? TY_REAL : x.base;
    int by = y.base == TY_INT || y.base == TY_BOOL ? TY_REAL : y.base;
    ok = bx == by && x.ndims == y.ndims;
  }
  if (!ok) {
    char got[200];
    return bi_fail(err, errsz,
                   "%s expects (real, real), or a container of reals with a real or with a "
                   "container of the same type, got %s",
                   b->name, bi_types_str(nargs, args, got, sizeof got));
  }
  Type c = bi_ty_num(x) ? y : x;
  if (bi_ty_num(c)) { /* two scalars */
    bool ints = (x.base == TY_INT || x.base == TY_BOOL) && (y.base == TY_INT || y.base == TY_BOOL);
    *ret = ty_make(ints && is_minmax(b) ? TY_INT : TY_REAL, 0);
  } else {
    *ret = ty_make(c.base == TY_INT || c.base == TY_BOOL ? TY_REAL : (TyBase)c.base, c.ndims);
  }
  return true;
}

static bool map2(const Builtin *b, Value x, Value y, Value *out, char *err, size_t errsz) {
  double (*f)(double, double) = BI_SPEC(b)->f2;
  if (bi_is_num(x) && bi_is_num(y)) {
    if (is_minmax(b) && x.k != V_REAL && y.k != V_REAL) {
      int64_t i = bi_int(x), j = bi_int(y);
      bool is_min = f == k_min;
      *out = val_int(is_min ? (i < j ? i : j) : (i > j ? i : j));
    } else {
      *out = val_real(f(val_as_real(x), val_as_real(y)));
    }
    return true;
  }
  Value c = bi_is_num(x) ? y : x;
  if (!bi_is_num(x) && !bi_is_num(y)) {
    bool same = x.k == y.k;
    if (same && x.k == V_ARR)
      same = x.a->n == y.a->n;
    else if (same && bi_is_ten(x))
      same = x.t->rows == y.t->rows && x.t->cols == y.t->cols;
    if (!same) {
      return bi_efail(b, err, errsz, "sizes do not match: %s of %zu elements and %s of %zu",
                      val_kind_name((ValKind)x.k), val_numel(x), val_kind_name((ValKind)y.k),
                      val_numel(y));
    }
  }
  if (c.k == V_ARR) {
    Value a = val_arr(c.a->n);
    for (int i = 0; i < c.a->n; i++) {
      Value xi = x.k == V_ARR ? x.a->e[i] : x, yi = y.k == V_ARR ? y.a->e[i] : y;
      if (!map2(b, xi, yi, &a.a->e[i], err, errsz)) return false;
    }
    /* min/max of two int arrays must still give reals, as the type rule says */
    if (is_minmax(b))
      for (int i = 0; i < a.a->n; i++)
        if (a.a->e[i].k == V_INT) a.a->e[i] = val_real((double)a.a->e[i].i);
    *out = a;
    return true;
  }
  if (bi_is_ten(c)) {
    Value r = bi_ten_new((ValKind)c.k, c.t->rows, c.t->cols);
    size_t n = (size_t)c.t->rows * (size_t)c.t->cols;
    for (size_t i = 0; i < n; i++) {
      double xi = bi_is_ten(x) ? x.t->d[i] : val_as_real(x);
      double yi = bi_is_ten(y) ? y.t->d[i] : val_as_real(y);
      r.t->d[i] = f(xi, yi);
    }
    *out = r;
    return true;
  }
  return bi_efail(b, err, errsz, "expected numbers or containers of numbers, got %s and %s",
                  val_kind_name((ValKind)x.k), val_kind_name((ValKind)y.k));
}

static bool eval_bv(BI_EVAL_ARGS) { return map2(b, args[0], args[1], out, err, errsz); }

#define BV(nm, fn)                                                                                 \
  { nm, check_bv, eval_bv, &(const BiSpec){.f2 = fn}, false }

/* ---- integer and special scalar functions ------------------------------------------- */

static bool eval_choose(BI_EVAL_ARGS) {
  int64_t n = bi_int(args[0]), k = bi_int(args[1]);
  if (n < 0 || k < 0)
    return bi_efail(b, err, errsz, "arguments must be non-negative, got (%lld, %lld)", (long long)n,
                    (long long)k);
  if (k > n) {
    *out = val_int(0);
    return true;
  }
  if (k > n - k) k = n - k;
  /* C(n, i) = C(n, i-1) * (n-k+i) / i stays an exact integer at every step */
  __int128 r = 1;
  for (int64_t i = 1; i <= k; i++) {
    r = r * (n - k + i) / i;
    if (r > INT64_MAX) return bi_efail(b, err, errsz, "result overflows int");
  }
  *out = val_int((int64_t)r);
  return true;
}

static bool eval_special3(BI_EVAL_ARGS) {
  double x = val_as_real(args[0]), y = val_as_real(args[1]), z = val_as_real(args[2]);
  double r;
  switch (BI_SPEC(b)->op) {
  case 0: r = m_inc_beta(x, y, z); break; /* inc_beta(a, b, x) */
  default: r = sr_fma3(x, y, z); break;
  }
  *out = val_real(r);
  return true;
}

static bool eval_special2(BI_EVAL_ARGS) {
  double x = val_as_real(args[0]), y = val_as_real(args[1]);
  *out = val_real(BI_SPEC(b)->op == 0 ? m_gamma_p(x, y) : m_gamma_q(x, y));
  return true;
}

static bool eval_const(BI_EVAL_ARGS) {
  static const double c[] = {M_PI, M_E,      M_SQRT2,   M_LN10,
                             NAN,  INFINITY, -INFINITY, 2.220446049250313e-16};
  *out = val_real(c[BI_SPEC(b)->op]);
  return true;
}

/* ---- log_mix ----------------------------------------------------------------------- */

static bool ty_seq(Type t) {
  return (t.ndims == 0 && (t.base == TY_VECTOR || t.base == TY_ROWVEC)) ||
         (t.ndims == 1 && (t.base == TY_REAL || t.base == TY_INT));
}

static bool check_log_mix(BI_CHECK_ARGS) {
  bool ok = (nargs == 3 && bi_ty_num(args[0]) && bi_ty_num(args[1]) && bi_ty_num(args[2])) ||
            (nargs == 2 && ty_seq(args[0]) && ty_seq(args[1]));
  if (!ok) {
    char got[200];
    return bi_fail(err, errsz,
                   "log_mix expects (real theta, real lp1, real lp2) or (vector theta, vector "
                   "lps), got %s",
                   bi_types_str(nargs, args, got, sizeof got));
  }
  *ret = ty_make(TY_REAL, 0);
  return true;
}

static bool mix_theta(const Builtin *b, double t, char *err, size_t errsz) {
  if (sr_log_mix_ok(t, 0, 0)) return true;
  char tb[40];
  return bi_efail(b, err, errsz, "theta must be in [0, 1], got %s", bi_fmt_real(t, tb, sizeof tb));
}

static bool eval_log_mix(BI_EVAL_ARGS) {
  if (nargs == 3) {
    double t = val_as_real(args[0]), a = val_as_real(args[1]), c = val_as_real(args[2]);
    if (!mix_theta(b, t, err, errsz)) return false;
    *out = val_real(sr_log_mix3(t, a, c));
    return true;
  }
  const double *th, *lp;
  int n, m;
  if (!bi_seq(b, args[0], &th, &n, err, errsz) || !bi_seq(b, args[1], &lp, &m, err, errsz))
    return false;
  if (n != m)
    return bi_efail(b, err, errsz, "sizes do not match: theta has %d elements, lps has %d", n, m);
  if (n == 0) return bi_efail(b, err, errsz, "empty container");
  double acc = -INFINITY;
  for (int i = 0; i < n; i++) {
    if (!mix_theta(b, th[i], err, errsz)) return false;
    acc = sr_log_sum_exp(acc, log(th[i]) + lp[i]);
  }
  *out = val_real(acc);
  return true;
}

/* ---- reductions ---------------------------------------------------------------------- */

enum { R_SUM, R_PROD, R_MEAN, R_VAR, R_SD, R_LSE, R_MIN, R_MAX };

static bool red_keeps_int(int op) {
  return op == R_SUM || op == R_PROD || op == R_MIN || op == R_MAX;
}

static bool check_red(BI_CHECK_ARGS) {
  int op = BI_SPEC(b)->op;
  if (nargs == 2 && (op == R_MIN || op == R_MAX || op == R_LSE)) {
    if (op == R_LSE) { /* log_sum_exp(a, b) is a scalar function */
      if (bi_ty_num(args[0]) && bi_ty_num(args[1])) {
        *ret = ty_make(TY_REAL, 0);
        return true;
      }
      char got[200];
      return bi_fail(err, errsz, "log_sum_exp expects (real, real) or one container, got %s",
                     bi_types_str(nargs, args, got, sizeof got));
    }
    return check_bv(b, nargs, args, ret, err, errsz);
  }
  if (nargs != 1)
    return bi_arity_fail(
        b, nargs, op == R_MIN || op == R_MAX || op == R_LSE ? "1 or 2 arguments" : "1 argument",
        err, errsz);
  if (!bi_ty_numlike(args[0]) || bi_ty_num(args[0])) {
    return bi_fail(err, errsz, "%s expects a container of numbers, got %s", b->name,
                   ty_name(args[0]));
  }
  bool ints = args[0].base == TY_INT || args[0].base == TY_BOOL;
  *ret = ty_make(ints && red_keeps_int(op) ? TY_INT : TY_REAL, 0);
  return true;
}

/* Integer leaves of an int array (any depth), with a count. */
static bool int_leaves(Value v, int64_t *out, size_t *n) {
  if (v.k == V_ARR) {
    for (int i = 0; i < v.a->n; i++)
      if (!int_leaves(v.a->e[i], out, n)) return false;
    return true;
  }
  if (v.k != V_INT && v.k != V_BOOL) return false;
  out[(*n)++] = bi_int(v);
  return true;
}

static bool red_int(const Builtin *b, Value v, int op, Value *out, char *err, size_t errsz) {
  size_t cap = val_numel(v), n = 0;
  int64_t *x = gc_alloc_atomic(sizeof(int64_t) * (cap ? cap : 1));
  if (!int_leaves(v, x, &n)) return bi_efail(b, err, errsz, "expected an array of ints");
  int64_t acc = op == R_PROD ? 1 : 0;
  if ((op == R_MIN || op == R_MAX) && n == 0) return bi_efail(b, err, errsz, "empty container");
  for (size_t i = 0; i < n; i++) {
    bool ovf = false;
    if (op == R_SUM)
      ovf = __builtin_add_overflow(acc, x[i], &acc);
    else if (op == R_PROD)
      ovf = __builtin_mul_overflow(acc, x[i], &acc);
    else if (i == 0 || (op == R_MIN ? x[i] < acc : x[i] > acc))
      acc = x[i];
    if (ovf) return bi_efail(b, err, errsz, "integer overflow");
  }
  *out = val_int(acc);
  return true;
}

static bool eval_red(BI_EVAL_ARGS) {
  int op = BI_SPEC(b)->op;
  if (nargs == 2) {
    if (op == R_LSE) {
      *out = val_real(sr_log_sum_exp(val_as_real(args[0]), val_as_real(args[1])));
      return true;
    }
    return map2(b, args[0], args[1], out, err, errsz);
  }
  Value v = args[0];
  if (v.k == V_ARR && val_numel(v) == 0) {
    /* An empty array does not say whether it holds ints or reals; an int
       answer is safe for both (ints promote), and min/max have no answer. */
    if (op == R_SUM || op == R_PROD) {
      *out = val_int(op == R_PROD);
      return true;
    }
    return bi_efail(b, err, errsz, "empty container");
  }
  if (v.k == V_ARR && red_keeps_int(op)) {
    /* an int array stays int; peek at the first leaf to tell */
    Value leaf = v;
    while (leaf.k == V_ARR && leaf.a->n > 0)
      leaf = leaf.a->e[0];
    if (leaf.k == V_INT || leaf.k == V_BOOL) return red_int(b, v, op, out, err, errsz);
  }
  size_t n = val_numel(v);
  double *x = gc_alloc_atomic(sizeof(double) * (n ? n : 1));
  n = val_flatten(v, x);
  double r = 0;
  switch (op) {
  case R_SUM:
    for (size_t i = 0; i < n; i++)
      r += x[i];
    break;
  case R_PROD:
    r = 1;
    for (size_t i = 0; i < n; i++)
      r *= x[i];
    break;
  case R_MEAN:
  case R_VAR:
  case R_SD: {
    if (n == 0) return bi_efail(b, err, errsz, "empty container");
    double m = 0;
    for (size_t i = 0; i < n; i++)
      m += x[i];
    m /= (double)n;
    if (op == R_MEAN) {
      r = m;
      break;
    }
    double ss = 0; /* two passes: no cancellation from sum of squares minus square of sums */
    for (size_t i = 0; i < n; i++)
      ss += (x[i] - m) * (x[i] - m);
    r = n == 1 ? 0 : ss / (double)(n - 1);
    if (op == R_SD) r = sqrt(r);
    break;
  }
  case R_LSE: {
    if (n == 0) return bi_efail(b, err, errsz, "empty container");
    double mx = -INFINITY;
    bool nan = false;
    for (size_t i = 0; i < n; i++) {
      if (isnan(x[i]))
        nan = true;
      else if (x[i] > mx)
        mx = x[i];
    }
    if (nan)
      r = NAN;
    else if (isinf(mx))
      r = mx; /* all -inf, or some +inf */
    else {
      for (size_t i = 0; i < n; i++)
        r += exp(x[i] - mx);
      r = mx + log(r);
    }
    break;
  }
  case R_MIN:
  case R_MAX:
    r = op == R_MIN ? INFINITY : -INFINITY; /* Stan: min of no reals is +inf */
    for (size_t i = 0; i < n; i++) {
      if (isnan(x[i])) {
        r = NAN;
        break;
      }
      if (op == R_MIN ? x[i] < r : x[i] > r) r = x[i];
    }
    break;
  }
  *out = val_real(r);
  return true;
}

#define RED(nm, opv, fn)                                                                           \
  { nm, check_red, eval_red, &(const BiSpec){.f2 = fn, .op = opv}, false }

/* ---- sizes ----------------------------------------------------------------------------- */

enum { SZ_SIZE, SZ_NUMEL, SZ_LENGTH };

static bool check_size(BI_CHECK_ARGS) {
  int op = BI_SPEC(b)->op;
  if (nargs != 1) return bi_arity_fail(b, nargs, "1 argument", err, errsz);
  Type t = args[0];
  bool ok = t.ndims > 0 || t.base == TY_VECTOR || t.base == TY_ROWVEC || t.base == TY_MATRIX ||
            (op == SZ_LENGTH && t.base == TY_STRING) || (op != SZ_LENGTH && bi_ty_num(t));
  if (!ok) {
    return bi_fail(err, errsz, "%s expects %s, got %s", b->name,
                   op == SZ_LENGTH ? "a string, an array, a vector or a matrix"
                                   : "an array, a vector or a matrix",
                   ty_name(t));
  }
  *ret = ty_make(TY_INT, 0);
  return true;
}

static bool eval_size(BI_EVAL_ARGS) {
  Value v = args[0];
  int op = BI_SPEC(b)->op;
  int64_t n;
  if (v.k == V_STR)
    n = (int64_t)v.s->len;
  else if (op == SZ_NUMEL)
    n = (int64_t)val_numel(v);
  else if (v.k == V_ARR)
    n = v.a->n;
  else if (bi_is_ten(v))
    n = (int64_t)v.t->rows * v.t->cols;
  else
    n = 1;
  *out = val_int(n);
  return true;
}

/* ---- to_int ------------------------------------------------------------------------ */

static bool to_int1(const Builtin *b, Value v, Value *out, char *err, size_t errsz) {
  if (v.k == V_ARR) {
    Value a = val_arr(v.a->n);
    for (int i = 0; i < v.a->n; i++)
      if (!to_int1(b, v.a->e[i], &a.a->e[i], err, errsz)) return false;
    *out = a;
    return true;
  }
  if (!bi_is_num(v))
    return bi_efail(b, err, errsz, "expected a number, got %s", val_kind_name((ValKind)v.k));
  if (v.k != V_REAL) {
    *out = val_int(bi_int(v));
    return true;
  }
  double x = trunc(v.r);
  if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) {
    char xb[40];
    return bi_efail(b, err, errsz, "%s is out of the range of int",
                    bi_fmt_real(v.r, xb, sizeof xb));
  }
  *out = val_int((int64_t)x);
  return true;
}

static bool eval_to_int(BI_EVAL_ARGS) { return to_int1(b, args[0], out, err, errsz); }

/* ---- the table ------------------------------------------------------------------------- */

const Builtin bi_math_table[] = {
    UV("exp", sr_exp1),
    UV("log", sr_log1),
    UVO("log2", log2, UV_LOG2),
    UVO("log10", log10, UV_LOG10),
    UV("log1p", sr_log1p1),
    UV("expm1", sr_expm11),
    UV("sqrt", sr_sqrt1),
    UV("cbrt", cbrt),
    UV("square", sr_square1),
    UV("inv", sr_inv1),
    UV("inv_sqrt", sr_inv_sqrt1),
    UV("inv_square", sr_inv_square1),
    UV("fabs", sr_fabs1),
    UVO("abs", sr_fabs1, UV_ABS),
    UV("floor", floor),
    UV("ceil", ceil),
    UV("round", round),
    UV("trunc", trunc),
    UV("sin", sr_sin1),
    UV("cos", sr_cos1),
    UV("tan", sr_tan1),
    UV("asin", sr_asin1),
    UV("acos", sr_acos1),
    UV("atan", sr_atan1),
    UV("sinh", sr_sinh1),
    UV("cosh", sr_cosh1),
    UV("tanh", sr_tanh1),
    UV("asinh", sr_asinh1),
    UV("acosh", sr_acosh1),
    UV("atanh", sr_atanh1),
    UV("lgamma", sr_lgamma1),
    UV("tgamma", tgamma),
    UV("digamma", sr_digamma1),
    UV("trigamma", k_trigamma),
    UV("erf", sr_erf1),
    UV("erfc", sr_erfc1),
    UV("Phi", sr_Phi1),
    UV("Phi_approx", sr_Phi_approx1),
    UVD("inv_Phi", k_inv_Phi, in_unit, "must be in [0, 1]"),
    UV("logit", sr_logit1),
    UV("inv_logit", sr_inv_logit1),
    UV("log_inv_logit", sr_log_inv_logit1),
    UV("log1m_inv_logit", sr_log1m_inv_logit1),
    UVD("log1m", sr_log1m1, le_one, "must be <= 1"),
    UV("log1p_exp", sr_log1p_exp1),
    UV("log1m_exp", k_log1m_exp),
    UV("inv_cloglog", sr_inv_cloglog1),
    BI_SIG("step", "(real)real", eval_pred, 0),
    BI_SIG("int_step", "(real)int", eval_pred, 1),
    BI_SIG("is_inf", "(real)bool", eval_pred, 2),
    BI_SIG("is_nan", "(real)bool", eval_pred, 3),

    BV("pow", sr_pow),
    BV("fmin", sr_fmin),
    BV("fmax", sr_fmax),
    BV("fmod", sr_mod),
    BV("hypot", hypot),
    BV("atan2", atan2),
    BV("fdim", fdim),
    BV("lbeta", sr_lbeta),
    BV("lchoose", sr_lchoose),
    BV("binomial_coefficient_log", sr_lchoose),
    BV("log_diff_exp", k_log_diff_exp),
    BV("lmultiply", k_lmultiply),
    BV("multiply_log", k_lmultiply),
    BI_SIG("choose", "(int,int)int", eval_choose, 0),
    {"log_mix", check_log_mix, eval_log_mix, &(const BiSpec){0}, false},
    BI_SIG("inc_beta", "(real,real,real)real", eval_special3, 0),
    BI_SIG("fma", "(real,real,real)real", eval_special3, 1),
    BI_SIG("gamma_p", "(real,real)real", eval_special2, 0),
    BI_SIG("gamma_q", "(real,real)real", eval_special2, 1),
    BI_SIG("pi", "()real", eval_const, 0),
    BI_SIG("e", "()real", eval_const, 1),
    BI_SIG("sqrt2", "()real", eval_const, 2),
    BI_SIG("not_a_number", "()real", eval_const, 4),
    BI_SIG("positive_infinity", "()real", eval_const, 5),
    BI_SIG("negative_infinity", "()real", eval_const, 6),
    BI_SIG("machine_precision", "()real", eval_const, 7),
    BI_SIG("to_int", "(real)int;(real[])int[];(real[,])int[,];(real[,,])int[,,]", eval_to_int, 0),

    RED("sum", R_SUM, NULL),
    RED("prod", R_PROD, NULL),
    RED("mean", R_MEAN, NULL),
    RED("variance", R_VAR, NULL),
    RED("sd", R_SD, NULL),
    RED("log_sum_exp", R_LSE, sr_log_sum_exp),
    RED("min", R_MIN, k_min),
    RED("max", R_MAX, k_max),
    {"size", check_size, eval_size, &(const BiSpec){.op = SZ_SIZE}, false},
    {"num_elements", check_size, eval_size, &(const BiSpec){.op = SZ_NUMEL}, false},
    {"length", check_size, eval_size, &(const BiSpec){.op = SZ_LENGTH}, false},
    /* checked by lang/check.c (a function-name argument), run as IR_ODE */
    {"ode_rk45", ode_builtin_check, ode_builtin_eval, NULL, false},
    {"ode_rk45_tol", ode_builtin_check, ode_builtin_eval, NULL, false},
    {NULL, NULL, NULL, NULL, false},
};
