/* builtins_ad.c — derivative rules of the builtins for reverse-mode AD.
 *
 * builtin_eval_ad computes the value with the builtin's own evaluator, then
 * gives every real of the result its tape node from a rule keyed by the
 * builtin's name:
 *   - elementwise functions: a derivative of one or two scalars, applied
 *     across containers (with a scalar broadcast, as the evaluators do);
 *   - reductions and vector functions (sum, softmax, dot_product ...): their
 *     own rules on the flattened arguments;
 *   - the families' NAME_lcdf, NAME_lccdf and NAME_cdf: their CDF gradients
 *     per element, summed as the builtins sum;
 *   - pure data movement (to_vector, head, append_row, rep_array ...): the
 *     builtin is run a second time on the arguments' node ids in place of
 *     their values, so the result's "values" are exactly the nodes that moved
 *     to each place (constants are 0, and 0 stays 0).
 * A builtin with no rule whose result holds reals fails loudly rather than
 * passing a wrong (zero) derivative on.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "builtins_impl.h"
#include "dist.h"
#include "mathfn.h"
#include "scalar_rule.h"

#define AD_SQRT_2PI 2.50662827463100050242

/* ---- flat views of values ---------------------------------------------------- */

/* values and nodes of every numeric scalar of v, in val_flatten order */
typedef struct Flat {
  int n;
  double *d;
  int32_t *nd;
} Flat;

static void flat_rec(Value v, Flat *f) {
  switch (v.k) {
  case V_ARR:
    for (int i = 0; i < v.a->n; i++) flat_rec(v.a->e[i], f);
    break;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    int m = v.t->rows * v.t->cols;
    memcpy(f->d + f->n, v.t->d, sizeof(double) * (size_t)m);
    if (v.t->ad) memcpy(f->nd + f->n, v.t->ad, sizeof(int32_t) * (size_t)m);
    f->n += m;
    break;
  }
  case V_REAL:
    f->d[f->n] = v.r;
    f->nd[f->n++] = v.ad;
    break;
  case V_INT:
  case V_BOOL:
    f->d[f->n++] = val_as_real(v);
    break;
  default:
    break;
  }
}

static Flat flat_of(Value v) {
  size_t n = val_numel(v);
  Flat f = {0, gc_alloc_atomic(sizeof(double) * (n ? n : 1)),
            gc_alloc_atomic(sizeof(int32_t) * (n ? n : 1))};
  flat_rec(v, &f);
  return f;
}

static void put_nodes(Value *v, const int32_t *nd) {
  size_t k = 0;
  val_set_nodes(v, nd, &k);
}

static bool has_reals(Value v) {
  switch (v.k) {
  case V_REAL:
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: return true;
  case V_ARR:
    for (int i = 0; i < v.a->n; i++)
      if (has_reals(v.a->e[i])) return true;
    return false;
  default: return false;
  }
}

bool builtin_has_nodes(Value v) {
  switch (v.k) {
  case V_REAL: return v.ad != 0;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    if (!v.t->ad) return false;
    size_t m = (size_t)v.t->rows * (size_t)v.t->cols;
    for (size_t i = 0; i < m; i++)
      if (v.t->ad[i]) return true;
    return false;
  }
  case V_ARR:
    for (int i = 0; i < v.a->n; i++)
      if (builtin_has_nodes(v.a->e[i])) return true;
    return false;
  default: return false;
  }
}

/* ---- elementwise rules ---------------------------------------------------------- */

/* dy/dx given x and y = f(x); the functions the JIT lowers natively take
   theirs from their scalar rules (scalar_rule.h: sr_NAME_d1, sr_NAME_d) */
typedef double (*D1)(double x, double y);

static double d_log2(double x, double y) { (void)y; return 1 / (x * PPL_LOG2); }
static double d_log10(double x, double y) { (void)y; return 1 / (x * M_LN10); }
static double d_cbrt(double x, double y) { (void)x; return 1 / (3 * y * y); }
static double d_zero(double x, double y) { (void)x; (void)y; return 0; }
static double d_tgamma(double x, double y) { return y * m_digamma(x); }

/* psi''(x), the derivative of m_trigamma: the same reflection and upward
   recurrence, then the asymptotic series differentiated term by term
   (-1/x^2 - 1/x^3 - sum (2k+1) B_2k / x^(2k+2)), accurate to ~1e-14 from
   x = 10. */
static double ad_tetragamma(double x) {
  if (isnan(x) || x == -INFINITY) return NAN;
  if (x == INFINITY) return 0.0;
  if (x <= 0.0) {
    if (x == floor(x)) return NAN;
    double t = M_PI * (x - floor(x)), sn = sin(t);
    return -2 * M_PI * M_PI * M_PI * cos(t) / (sn * sn * sn) + ad_tetragamma(1.0 - x);
  }
  double r = 0.0;
  for (; x < 10.0; x += 1.0) r -= 2.0 / (x * x * x);
  double z = 1.0 / (x * x);
  double s = 0.5 - z * (1.0 / 6 - z * (1.0 / 6 - z * (3.0 / 10 - z * (5.0 / 6 -
             z * (691.0 / 210 - z * (35.0 / 2))))));
  return r - z - z / x - s * z * z;
}
static double d_trigamma(double x, double y) { (void)y; return ad_tetragamma(x); }
static double d_inv_Phi(double x, double y) { (void)x; return AD_SQRT_2PI * exp(0.5 * y * y); }
static double d_log1m_exp(double x, double y) { (void)y; return -1 / expm1(-x); }

/* dz/dx, dz/dy given x, y and z = f(x, y) */
typedef void (*D2)(double x, double y, double z, double *dx, double *dy);

static void d2_fmin(double x, double y, double z, double *dx, double *dy) {
  (void)z;
  *dx = x <= y;
  *dy = !(x <= y);
}
static void d2_fmax(double x, double y, double z, double *dx, double *dy) {
  (void)z;
  *dx = x >= y;
  *dy = !(x >= y);
}
static void d2_hypot(double x, double y, double z, double *dx, double *dy) {
  *dx = x / z;
  *dy = y / z;
}
static void d2_atan2(double x, double y, double z, double *dx, double *dy) {
  (void)z;
  double r = x * x + y * y;
  *dx = y / r;
  *dy = -x / r;
}
static void d2_fdim(double x, double y, double z, double *dx, double *dy) {
  (void)z;
  *dx = x > y;
  *dy = -(double)(x > y);
}
static void d2_log_diff_exp(double x, double y, double z, double *dx, double *dy) {
  (void)z;
  *dx = -1 / expm1(y - x);
  *dy = y == -INFINITY ? 0 : -1 / expm1(x - y);
}
static void d2_lmultiply(double x, double y, double z, double *dx, double *dy) {
  (void)z;
  *dx = x == 0 && y == 0 ? 0 : log(y);
  *dy = x / y;
}

static bool rule_d1(Tape *T, D1 f, Value a, Value *out) {
  Flat x = flat_of(a), y = flat_of(*out);
  for (int i = 0; i < y.n; i++) y.nd[i] = tape_unary(T, x.nd[i], f(x.d[i], y.d[i]));
  put_nodes(out, y.nd);
  return true;
}

static bool rule_d2(Tape *T, D2 f, Value a, Value b, Value *out) {
  Flat x = flat_of(a), y = flat_of(b), z = flat_of(*out);
  for (int i = 0; i < z.n; i++) {
    int ix = x.n == 1 ? 0 : i, iy = y.n == 1 ? 0 : i;
    double dx, dy;
    f(x.d[ix], y.d[iy], z.d[i], &dx, &dy);
    z.nd[i] = tape_binary(T, x.nd[ix], dx, y.nd[iy], dy);
  }
  put_nodes(out, z.nd);
  return true;
}

/* ---- reductions and vector functions ------------------------------------------------- */

static int32_t push_flat(Tape *T, int n, const int32_t *nd, const double *dv) {
  return tape_push(T, n, nd, dv);
}

static double *dbuf(int n) { return gc_alloc_atomic(sizeof(double) * (size_t)(n ? n : 1)); }

enum { RD_SUM, RD_PROD, RD_MEAN, RD_VAR, RD_SD, RD_LSE, RD_MIN, RD_MAX, RD_DOT_SELF, RD_NORM1,
       RD_NORM2 };

static bool rule_reduce(Tape *T, int op, Value a, Value *out) {
  Flat x = flat_of(a);
  double *dv = dbuf(x.n), z = out->r, mean = 0;
  for (int i = 0; i < x.n; i++) mean += x.d[i];
  mean /= x.n > 0 ? x.n : 1;
  int arg = 0;
  for (int i = 1; i < x.n; i++)
    if (op == RD_MIN ? x.d[i] < x.d[arg] : x.d[i] > x.d[arg]) arg = i;
  for (int i = 0; i < x.n; i++) {
    switch (op) {
    case RD_SUM: dv[i] = 1; break;
    case RD_PROD: {
      double p = 1;
      for (int j = 0; j < x.n; j++)
        if (j != i) p *= x.d[j];
      dv[i] = p;
      break;
    }
    case RD_MEAN: dv[i] = 1.0 / x.n; break;
    case RD_VAR: dv[i] = 2 * (x.d[i] - mean) / (x.n - 1); break;
    case RD_SD: dv[i] = (x.d[i] - mean) / ((x.n - 1) * z); break;
    case RD_LSE: dv[i] = x.d[i] == -INFINITY ? 0 : exp(x.d[i] - z); break;
    case RD_MIN:
    case RD_MAX: dv[i] = i == arg; break;
    case RD_DOT_SELF: dv[i] = 2 * x.d[i]; break;
    case RD_NORM1: dv[i] = x.d[i] > 0 ? 1 : x.d[i] < 0 ? -1 : 0; break;
    default: dv[i] = x.d[i] / z; break;
    }
  }
  out->ad = push_flat(T, x.n, x.nd, dv);
  return true;
}

/* dot_product, squared_distance, distance of two 1-d sequences */
enum { DT_DOT, DT_SQDIST, DT_DIST };
static bool rule_dot(Tape *T, int op, Value a, Value b, Value *out) {
  Flat x = flat_of(a), y = flat_of(b);
  int n = x.n;
  int32_t *nd = gc_alloc_atomic(sizeof(int32_t) * (size_t)(2 * n + 1));
  double *dv = dbuf(2 * n);
  for (int i = 0; i < n; i++) {
    double gx, gy;
    if (op == DT_DOT) {
      gx = y.d[i];
      gy = x.d[i];
    } else {
      gx = 2 * (x.d[i] - y.d[i]);
      if (op == DT_DIST) gx = out->r > 0 ? (x.d[i] - y.d[i]) / out->r : 0;
      gy = -gx;
    }
    nd[2 * i] = x.nd[i];
    dv[2 * i] = gx;
    nd[2 * i + 1] = y.nd[i];
    dv[2 * i + 1] = gy;
  }
  out->ad = tape_push(T, 2 * n, nd, dv);
  return true;
}

static bool rule_softmax(Tape *T, bool logsm, Value a, Value *out) {
  Flat x = flat_of(a), y = flat_of(*out);
  int n = x.n;
  double *s = dbuf(n), *dv = dbuf(n);
  for (int j = 0; j < n; j++) s[j] = logsm ? exp(y.d[j]) : y.d[j];
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++)
      dv[j] = logsm ? (i == j) - s[j] : s[i] * ((i == j) - s[j]);
    y.nd[i] = tape_push(T, n, x.nd, dv);
  }
  put_nodes(out, y.nd);
  return true;
}

static bool rule_cumsum(Tape *T, Value a, Value *out) {
  Flat x = flat_of(a), y = flat_of(*out);
  int32_t prev = 0;
  for (int i = 0; i < y.n; i++) prev = y.nd[i] = tape_binary(T, prev, 1, x.nd[i], 1);
  put_nodes(out, y.nd);
  return true;
}

static bool rule_log_mix(Tape *T, int nargs, const Value *args, Value *out) {
  double z = out->r;
  if (nargs == 3) {
    int32_t nd[3] = {args[0].k == V_REAL ? args[0].ad : 0, args[1].k == V_REAL ? args[1].ad : 0,
                     args[2].k == V_REAL ? args[2].ad : 0};
    double dv[3];
    sr_log_mix_d3(val_as_real(args[0]), val_as_real(args[1]), val_as_real(args[2]), z, &dv[0],
                  &dv[1], &dv[2]);
    out->ad = tape_push(T, 3, nd, dv);
    return true;
  }
  Flat th = flat_of(args[0]), lp = flat_of(args[1]);
  int n = th.n;
  int32_t *nd = gc_alloc_atomic(sizeof(int32_t) * (size_t)(2 * n + 1));
  double *dv = dbuf(2 * n);
  for (int i = 0; i < n; i++) {
    double e = exp(lp.d[i] - z);
    nd[2 * i] = th.nd[i];
    dv[2 * i] = e;
    nd[2 * i + 1] = lp.nd[i];
    dv[2 * i + 1] = th.d[i] * e;
  }
  out->ad = tape_push(T, 2 * n, nd, dv);
  return true;
}

static bool rule_fma(Tape *T, const Value *args, Value *out) {
  int32_t nd[3];
  double dv[3];
  sr_fma_d3(val_as_real(args[0]), val_as_real(args[1]), val_as_real(args[2]), out->r, &dv[0],
            &dv[1], &dv[2]);
  for (int i = 0; i < 3; i++) nd[i] = args[i].k == V_REAL ? args[i].ad : 0;
  out->ad = tape_push(T, 3, nd, dv);
  return true;
}

/* sort_asc / sort_desc: each output takes the node of the input it came from */
typedef struct SortItem {
  double v;
  int32_t n;
} SortItem;
static int sort_cmp(const void *p, const void *q) {
  double a = ((const SortItem *)p)->v, b = ((const SortItem *)q)->v;
  return a < b ? -1 : a > b ? 1 : 0;
}
static bool rule_sort(bool desc, Value a, Value *out) {
  Flat x = flat_of(a);
  SortItem *it = gc_alloc_atomic(sizeof(SortItem) * (size_t)(x.n ? x.n : 1));
  for (int i = 0; i < x.n; i++) it[i] = (SortItem){x.d[i], x.nd[i]};
  qsort(it, (size_t)x.n, sizeof(SortItem), sort_cmp);
  for (int i = 0; i < x.n; i++) x.nd[i] = it[desc ? x.n - 1 - i : i].n;
  put_nodes(out, x.nd);
  return true;
}

/* ---- incomplete gamma and beta -------------------------------------------------------- */

enum { SP_INC_BETA, SP_GAMMA_P, SP_GAMMA_Q };

/* log of the lower (or upper) regularised function at v = (a, b, x) for
   inc_beta, (a, x) for gamma_p / gamma_q */
static double sp_log_tail(int op, bool upper, const double *v) {
  double lo, hi;
  if (op == SP_INC_BETA) m_inc_beta_log(v[0], v[1], v[2], 1 - v[2], &lo, &hi);
  else m_gamma_pq_log(v[0], v[1], &lo, &hi);
  return upper ? hi : lo;
}

/* d/dv[i] of that log by two central differences combined by Richardson
   extrapolation (error O(h^4), ~1e-10 relative), as dist.c does for the
   shape parameters of CDFs: the shape derivatives of the incomplete
   functions have no closed form. The step keeps a positive shape positive. */
static double sp_dlog(int op, bool upper, const double *v, int nv, int i) {
  double w[3] = {v[0], v[1], nv > 2 ? v[2] : 0};
  double h = 1e-3 * fmax(fabs(v[i]), 1e-3), d[2];
  for (int k = 0; k < 2; k++, h /= 2) {
    w[i] = v[i] + h;
    double up = sp_log_tail(op, upper, w);
    w[i] = v[i] - h;
    d[k] = (up - sp_log_tail(op, upper, w)) / (2 * h);
  }
  return (4 * d[1] - d[0]) / 3;
}

/* inc_beta(a, b, x), gamma_p(a, x), gamma_q(a, x): the derivative in x is the
   density of the beta / gamma distribution; those in the shapes come from
   the log of the smaller tail, where the relative accuracy is. */
static bool rule_special(Tape *T, int op, const Value *args, Value *out) {
  int nv = op == SP_INC_BETA ? 3 : 2;
  double v[3] = {0, 0, 0}, dv[3] = {0, 0, 0};
  int32_t nd[3] = {0, 0, 0};
  for (int i = 0; i < nv; i++) {
    v[i] = val_as_real(args[i]);
    nd[i] = args[i].k == V_REAL ? args[i].ad : 0;
  }
  double x = v[nv - 1], sign = op == SP_GAMMA_Q ? -1 : 1; /* Q = 1 - P */
  if (nd[nv - 1]) {
    double lf = op == SP_INC_BETA
                    ? (x > 0 && x < 1 ? (v[0] - 1) * log(x) + (v[1] - 1) * log1p(-x) -
                                            m_lbeta(v[0], v[1])
                                      : -INFINITY)
                    : (x > 0 ? (v[0] - 1) * log(x) - x - m_lgamma(v[0]) : -INFINITY);
    dv[nv - 1] = sign * exp(lf);
  }
  double lo = sp_log_tail(op, false, v), hi = sp_log_tail(op, true, v);
  bool upper = hi < lo; /* differentiate the smaller tail */
  double tail = exp(upper ? hi : lo);
  for (int i = 0; i < nv - 1; i++)
    if (nd[i] && tail > 0) {
      double dlow = (upper ? -tail : tail) * sp_dlog(op, upper, v, nv, i); /* d(lower)/dv[i] */
      dv[i] = sign * (isfinite(dlow) ? dlow : 0);
    }
  out->ad = tape_push(T, nv, nd, dv);
  return true;
}

/* ---- NAME_lcdf, NAME_lccdf, NAME_cdf ----------------------------------------------------- */

/* The family's CDF builtins sum lcdf1 (or lccdf1) over the broadcast
   elements; NAME_cdf is exp of that sum.  Partials per element from the
   family's lcdf_grad1 / lccdf_grad1 (every family with a CDF has them); a
   family without them has no rule. */
static bool rule_dist_cdf(Tape *T, const DistFamily *f, bool upper, bool prob, int nargs,
                          const Value *args, Value *out) {
  int np = f->nparams;
  double (*cdf)(double, const double *) = upper ? f->lccdf1 : f->lcdf1;
  void (*grad)(double, const double *, double *, double *) =
      upper ? f->lccdf_grad1 : f->lcdf_grad1;
  if (nargs != np + 1 || np > DIST_MAX_PARAMS || !cdf || !grad) return false;
  Flat fl[DIST_MAX_PARAMS + 1];
  double *acc[DIST_MAX_PARAMS + 1];
  int n = 1, total = 0;
  for (int i = 0; i < nargs; i++) {
    fl[i] = flat_of(args[i]);
    acc[i] = dbuf(fl[i].n);
    if (fl[i].n != 1) n = fl[i].n;
    total += fl[i].n;
  }
  double scale = prob ? out->r : 1; /* d exp(s) = exp(s) ds */
  for (int j = 0; j < n; j++) {
    double p[DIST_MAX_PARAMS], dp[DIST_MAX_PARAMS], dx = 0;
    int at[DIST_MAX_PARAMS + 1];
    for (int i = 0; i < nargs; i++) at[i] = fl[i].n == 1 ? 0 : j;
    double x = fl[0].d[at[0]];
    for (int i = 0; i < np; i++) p[i] = fl[i + 1].d[at[i + 1]];
    double lc = cdf(x, p);
    if (!isfinite(lc)) continue; /* a flat (or impossible) point: no slope to follow */
    for (int i = 0; i < np; i++) dp[i] = 0;
    grad(x, p, &dx, dp);
    if (!f->discrete) acc[0][at[0]] += scale * dx;
    for (int i = 0; i < np; i++) acc[i + 1][at[i + 1]] += scale * dp[i];
  }
  int32_t *nd = gc_alloc_atomic(sizeof(int32_t) * (size_t)(total ? total : 1));
  double *dv = dbuf(total);
  int k = 0;
  for (int i = 0; i < nargs; i++)
    for (int e = 0; e < fl[i].n; e++, k++) {
      nd[k] = fl[i].nd[e];
      dv[k] = acc[i][e];
    }
  out->ad = tape_push(T, total, nd, dv);
  return true;
}

/* NAME_lcdf / NAME_lccdf / NAME_cdf of a family: its rule, or not handled. */

/* ---- data movement: rerun on node ids ------------------------------------------------ */

/* v with each real replaced by its node id; int containers zeroed (their
   values could otherwise pass for node ids), int scalars kept (sizes and
   indices) unless `data` says they are values that move into the result. */
static Value ids_of(Value v, bool data) {
  switch (v.k) {
  case V_ARR: {
    Value r = val_arr(v.a->n);
    for (int i = 0; i < v.a->n; i++) {
      Value e = v.a->e[i];
      r.a->e[i] = e.k == V_INT ? val_int(0) : e.k == V_BOOL ? val_bool(false) : ids_of(e, data);
    }
    return r;
  }
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    Value r = val_copy(v);
    size_t m = (size_t)v.t->rows * (size_t)v.t->cols;
    for (size_t i = 0; i < m; i++) r.t->d[i] = v.t->ad ? (double)v.t->ad[i] : 0;
    r.t->ad = NULL;
    return r;
  }
  case V_REAL: return val_real((double)v.ad);
  case V_INT: return data ? val_int(0) : v;
  default: return v;
  }
}

static bool rule_move(const Builtin *b, BuiltinCtx *ctx, bool data, int nargs, const Value *args,
                      Value *out, char *err, size_t errsz) {
  Value ib[16];
  Value *ia = nargs <= 16 ? ib : gc_alloc(sizeof(Value) * (size_t)nargs);
  for (int i = 0; i < nargs; i++) ia[i] = ids_of(args[i], data);
  Value r = val_none();
  if (!b->eval(b, ctx, nargs, ia, &r, err, errsz)) return false;
  Flat f = flat_of(r);
  for (int i = 0; i < f.n; i++) f.nd[i] = (int32_t)f.d[i];
  put_nodes(out, f.nd);
  return true;
}

/* ---- host functions ---------------------------------------------------------------- */

/* Functions a host registers through the embedding API come as a function of
   their arguments' reals (BuiltinHost).  With the host's derivative
   (ppl_register_function_ex) one call gives the value and every partial;
   without, the host's code cannot be differentiated, so the partials are
   Richardson-extrapolated central differences: error O(h^4) plus rounding,
   about 1e-10 relative for smooth functions.  `out` holds the value already
   (b->eval) except with the host's derivative, which computes it here. */
const BuiltinHost *builtin_host(const Builtin *b) { return b->check ? NULL : b->data; }

static bool rule_host(const Builtin *b, Tape *T, int nargs, const Value *args, Value *out,
                      char *err, size_t errsz) {
  const BuiltinHost *hb = builtin_host(b);
  if (!hb) return bi_fail(err, errsz, "gradient of '%s' is not implemented", b->name);
  int *lens = gc_alloc_atomic(sizeof(int) * (size_t)(nargs + 1));
  int n = 0;
  for (int i = 0; i < nargs; i++) n += lens[i] = (int)val_numel(args[i]);
  double *x = gc_alloc_atomic(sizeof(double) * (size_t)(n + 1));
  double *g = gc_alloc_atomic(sizeof(double) * (size_t)(n + 1));
  int32_t *nd = gc_alloc_atomic(sizeof(int32_t) * (size_t)(n + 1));
  for (int i = 0, at = 0; i < nargs; at += lens[i++]) {
    Flat f = flat_of(args[i]);
    memcpy(x + at, f.d, sizeof(double) * (size_t)f.n);
    memcpy(nd + at, f.nd, sizeof(int32_t) * (size_t)f.n);
  }
  double val = out->k == V_REAL ? out->r : NAN;
  if (hb->has_grad) {
    if (!hb->eval(hb, nargs, lens, x, &val, g, err, errsz)) return false;
    for (int k = 0; k < n; k++)
      if (!nd[k]) g[k] = 0;
  } else {
    for (int k = 0; k < n; k++) {
      g[k] = 0;
      if (!nd[k]) continue;
      double xk = x[k], h = 1e-3 * fmax(1, fabs(xk)), d[2];
      for (int r = 0; r < 2; r++, h /= 2) {
        double fp, fm;
        x[k] = xk + h;
        if (!hb->eval(hb, nargs, lens, x, &fp, NULL, err, errsz)) return false;
        x[k] = xk - h;
        if (!hb->eval(hb, nargs, lens, x, &fm, NULL, err, errsz)) return false;
        d[r] = (fp - fm) / (2 * h);
      }
      x[k] = xk;
      g[k] = (4 * d[1] - d[0]) / 3;
    }
  }
  *out = val_real(val);
  out->ad = tape_push(T, n, nd, g);
  return true;
}

/* ---- the rule table ------------------------------------------------------------------- */

typedef enum { K_D1, K_D2, K_RED, K_DOT, K_MOVE, K_SOFTMAX, K_LOGSOFTMAX, K_CUMSUM, K_LOGMIX,
               K_FMA, K_SORT_ASC, K_SORT_DESC, K_LSE, K_MINMAX, K_SPECIAL } RuleKind;

typedef struct AdRule {
  const char *name;
  RuleKind kind;
  D1 d1;
  D2 d2;
  int op;
} AdRule;

static const AdRule ad_rules[] = {
    {"exp", K_D1, sr_exp_d1, NULL, 0}, {"log", K_D1, sr_log_d1, NULL, 0},
    {"log2", K_D1, d_log2, NULL, 0}, {"log10", K_D1, d_log10, NULL, 0},
    {"log1p", K_D1, sr_log1p_d1, NULL, 0}, {"expm1", K_D1, sr_expm1_d1, NULL, 0},
    {"sqrt", K_D1, sr_sqrt_d1, NULL, 0}, {"cbrt", K_D1, d_cbrt, NULL, 0},
    {"square", K_D1, sr_square_d1, NULL, 0}, {"inv", K_D1, sr_inv_d1, NULL, 0},
    {"inv_sqrt", K_D1, sr_inv_sqrt_d1, NULL, 0}, {"inv_square", K_D1, sr_inv_square_d1, NULL, 0},
    {"fabs", K_D1, sr_fabs_d1, NULL, 0}, {"abs", K_D1, sr_fabs_d1, NULL, 0},
    {"floor", K_D1, d_zero, NULL, 0}, {"ceil", K_D1, d_zero, NULL, 0},
    {"round", K_D1, d_zero, NULL, 0}, {"trunc", K_D1, d_zero, NULL, 0},
    {"step", K_D1, d_zero, NULL, 0},
    {"sin", K_D1, sr_sin_d1, NULL, 0}, {"cos", K_D1, sr_cos_d1, NULL, 0},
    {"tan", K_D1, sr_tan_d1, NULL, 0}, {"asin", K_D1, sr_asin_d1, NULL, 0},
    {"acos", K_D1, sr_acos_d1, NULL, 0}, {"atan", K_D1, sr_atan_d1, NULL, 0},
    {"sinh", K_D1, sr_sinh_d1, NULL, 0}, {"cosh", K_D1, sr_cosh_d1, NULL, 0},
    {"tanh", K_D1, sr_tanh_d1, NULL, 0}, {"asinh", K_D1, sr_asinh_d1, NULL, 0},
    {"acosh", K_D1, sr_acosh_d1, NULL, 0}, {"atanh", K_D1, sr_atanh_d1, NULL, 0},
    {"lgamma", K_D1, sr_lgamma_d1, NULL, 0}, {"tgamma", K_D1, d_tgamma, NULL, 0},
    {"digamma", K_D1, sr_digamma_d1, NULL, 0}, {"trigamma", K_D1, d_trigamma, NULL, 0},
    {"erf", K_D1, sr_erf_d1, NULL, 0},
    {"erfc", K_D1, sr_erfc_d1, NULL, 0}, {"Phi", K_D1, sr_Phi_d1, NULL, 0},
    {"Phi_approx", K_D1, sr_Phi_approx_d1, NULL, 0}, {"inv_Phi", K_D1, d_inv_Phi, NULL, 0},
    {"logit", K_D1, sr_logit_d1, NULL, 0}, {"inv_logit", K_D1, sr_inv_logit_d1, NULL, 0},
    {"log_inv_logit", K_D1, sr_log_inv_logit_d1, NULL, 0},
    {"log1m_inv_logit", K_D1, sr_log1m_inv_logit_d1, NULL, 0},
    {"log1m", K_D1, sr_log1m_d1, NULL, 0}, {"log1p_exp", K_D1, sr_log1p_exp_d1, NULL, 0},
    {"log1m_exp", K_D1, d_log1m_exp, NULL, 0}, {"inv_cloglog", K_D1, sr_inv_cloglog_d1, NULL, 0},
    {"pow", K_D2, NULL, sr_pow_d, 0}, {"fmin", K_D2, NULL, sr_fmin_d, 0},
    {"fmax", K_D2, NULL, sr_fmax_d, 0}, {"fmod", K_D2, NULL, sr_mod_d, 0},
    {"hypot", K_D2, NULL, d2_hypot, 0}, {"atan2", K_D2, NULL, d2_atan2, 0},
    {"fdim", K_D2, NULL, d2_fdim, 0},
    {"lbeta", K_D2, NULL, sr_lbeta_d, 0}, {"lchoose", K_D2, NULL, sr_lchoose_d, 0},
    {"binomial_coefficient_log", K_D2, NULL, sr_lchoose_d, 0},
    {"log_diff_exp", K_D2, NULL, d2_log_diff_exp, 0},
    {"lmultiply", K_D2, NULL, d2_lmultiply, 0}, {"multiply_log", K_D2, NULL, d2_lmultiply, 0},
    {"sum", K_RED, NULL, NULL, RD_SUM}, {"prod", K_RED, NULL, NULL, RD_PROD},
    {"mean", K_RED, NULL, NULL, RD_MEAN}, {"variance", K_RED, NULL, NULL, RD_VAR},
    {"sd", K_RED, NULL, NULL, RD_SD}, {"log_sum_exp", K_LSE, NULL, sr_log_sum_exp_d, RD_LSE},
    {"min", K_MINMAX, NULL, d2_fmin, RD_MIN}, {"max", K_MINMAX, NULL, d2_fmax, RD_MAX},
    {"dot_self", K_RED, NULL, NULL, RD_DOT_SELF}, {"norm1", K_RED, NULL, NULL, RD_NORM1},
    {"norm2", K_RED, NULL, NULL, RD_NORM2},
    {"dot_product", K_DOT, NULL, NULL, DT_DOT}, {"dot", K_DOT, NULL, NULL, DT_DOT},
    {"squared_distance", K_DOT, NULL, NULL, DT_SQDIST},
    {"distance", K_DOT, NULL, NULL, DT_DIST},
    {"softmax", K_SOFTMAX, NULL, NULL, 0}, {"log_softmax", K_LOGSOFTMAX, NULL, NULL, 0},
    {"cumulative_sum", K_CUMSUM, NULL, NULL, 0}, {"log_mix", K_LOGMIX, NULL, NULL, 0},
    {"fma", K_FMA, NULL, NULL, 0},
    {"inc_beta", K_SPECIAL, NULL, NULL, SP_INC_BETA},
    {"gamma_p", K_SPECIAL, NULL, NULL, SP_GAMMA_P}, {"gamma_q", K_SPECIAL, NULL, NULL, SP_GAMMA_Q},
    {"sort_asc", K_SORT_ASC, NULL, NULL, 0}, {"sort_desc", K_SORT_DESC, NULL, NULL, 0},
    {"rep_vector", K_MOVE, NULL, NULL, 0}, {"rep_row_vector", K_MOVE, NULL, NULL, 0},
    {"rep_matrix", K_MOVE, NULL, NULL, 0}, {"rep_array", K_MOVE, NULL, NULL, 0},
    {"to_vector", K_MOVE, NULL, NULL, 0}, {"to_row_vector", K_MOVE, NULL, NULL, 0},
    {"to_matrix", K_MOVE, NULL, NULL, 0}, {"to_array_1d", K_MOVE, NULL, NULL, 0},
    {"to_array_2d", K_MOVE, NULL, NULL, 0}, {"diag_matrix", K_MOVE, NULL, NULL, 0},
    {"diagonal", K_MOVE, NULL, NULL, 0}, {"transpose", K_MOVE, NULL, NULL, 0},
    /* op 1: int scalars are values here, not sizes */
    {"append_row", K_MOVE, NULL, NULL, 1}, {"append_col", K_MOVE, NULL, NULL, 1},
    {"append_array", K_MOVE, NULL, NULL, 0}, {"block", K_MOVE, NULL, NULL, 0},
    {"col", K_MOVE, NULL, NULL, 0}, {"row", K_MOVE, NULL, NULL, 0},
    {"sub_col", K_MOVE, NULL, NULL, 0}, {"sub_row", K_MOVE, NULL, NULL, 0},
    {"head", K_MOVE, NULL, NULL, 0}, {"tail", K_MOVE, NULL, NULL, 0},
    {"segment", K_MOVE, NULL, NULL, 0}, {"reverse", K_MOVE, NULL, NULL, 0},
    {NULL, K_D1, NULL, NULL, 0},
};

/* The rules sorted by name once (written once, read after: no other global
   state), so that finding one on every call of a builtin in a gradient is a
   binary search rather than a scan of the table. */
#define NRULES (sizeof ad_rules / sizeof ad_rules[0] - 1)
static const AdRule *rules_by_name[NRULES];
static pthread_once_t rules_once = PTHREAD_ONCE_INIT;

static int rule_cmp(const void *a, const void *b) {
  return strcmp((*(const AdRule *const *)a)->name, (*(const AdRule *const *)b)->name);
}

static void rules_sort(void) {
  for (size_t i = 0; i < NRULES; i++) rules_by_name[i] = &ad_rules[i];
  qsort(rules_by_name, NRULES, sizeof rules_by_name[0], rule_cmp);
}

static const AdRule *rule_find(const char *name) {
  pthread_once(&rules_once, rules_sort);
  AdRule key = {.name = name};
  const AdRule *k = &key, *const *r =
      bsearch(&k, rules_by_name, NRULES, sizeof rules_by_name[0], rule_cmp);
  return r ? *r : NULL;
}

bool builtin_eval_ad(const Builtin *b, BuiltinCtx *ctx, Tape *T, int nargs, const Value *args,
                     Value *out, char *err, size_t errsz) {
  bool handled;
  if (T) {
    bool ok = bi_dist_eval_ad(b, T, nargs, args, out, err, errsz, &handled);
    if (handled) return ok;
    if (builtin_host(b) && builtin_host(b)->has_grad) { /* the host's value and partials at once */
      *out = val_none();
      return rule_host(b, T, nargs, args, out, err, errsz);
    }
    /* the value and the partials from one forward pass */
    if (b->eval == bi_hmm_table[0].eval) return bi_ad_hmm(T, b, args, out, err, errsz);
  }
  if (!b->eval(b, ctx, nargs, args, out, err, errsz)) return false;
  if (!T || !has_reals(*out)) return true; /* int, bool and string results have no derivative */
  if (b->uses_rng) return bi_fail(err, errsz, "gradient of '%s' is not implemented", b->name);
  *out = val_copy(*out); /* it may share storage with an argument */
  /* the elementwise rules first: they are the common case, and the names
     of the linear-algebra rules are not among them */
  const AdRule *r = rule_find(b->name);
  if (!r) {
    bool ok = bi_ad_linalg(T, b, nargs, args, out, err, errsz, &handled);
    if (handled) return ok;
    bool upper, prob;
    if (bi_dist_cdf_kind(b, &upper, &prob)) {
      if (rule_dist_cdf(T, b->data, upper, prob, nargs, args, out)) return true;
      return bi_fail(err, errsz, "gradient of '%s' is not implemented", b->name);
    }
    if (builtin_host(b)) return rule_host(b, T, nargs, args, out, err, errsz);
    return bi_fail(err, errsz, "gradient of '%s' is not implemented", b->name);
  }
  switch (r->kind) {
  case K_D1: return rule_d1(T, r->d1, args[0], out);
  case K_D2: return rule_d2(T, r->d2, args[0], args[1], out);
  case K_RED: return rule_reduce(T, r->op, args[0], out);
  case K_LSE:
  case K_MINMAX:
    return nargs == 2 ? rule_d2(T, r->d2, args[0], args[1], out)
                      : rule_reduce(T, r->op, args[0], out);
  case K_DOT: return rule_dot(T, r->op, args[0], args[1], out);
  case K_SOFTMAX: return rule_softmax(T, false, args[0], out);
  case K_LOGSOFTMAX: return rule_softmax(T, true, args[0], out);
  case K_CUMSUM: return rule_cumsum(T, args[0], out);
  case K_LOGMIX: return rule_log_mix(T, nargs, args, out);
  case K_FMA: return rule_fma(T, args, out);
  case K_SPECIAL: return rule_special(T, r->op, args, out);
  case K_SORT_ASC: return rule_sort(false, args[0], out);
  case K_SORT_DESC: return rule_sort(true, args[0], out);
  case K_MOVE: return rule_move(b, ctx, r->op, nargs, args, out, err, errsz);
  }
  return bi_fail(err, errsz, "gradient of '%s' is not implemented", b->name);
}
