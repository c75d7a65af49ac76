/* dist.c — the generic distribution layer: the family table, argument type
 * checks, broadcasting of scalar kernels over containers, parameter domain
 * checks, truncation to declared bounds and the effective constraint of a
 * latent.
 *
 * Families only supply kernels for ONE value (dists/NAME.c); everything that
 * is the same for all of them lives here, so that a message such as
 * "normal: sigma must be positive, got -1" reads the same for every family
 * and every engine.  Truncated log densities are normalised with log CDFs
 * chosen to stay accurate in either tail.
 */
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ad.h"
#include "mathfn.h"
#include "transform.h"

/* ---- the family table ------------------------------------------------------ */

extern const DistFamily dist_normal, dist_std_normal, dist_student_t, dist_cauchy,
    dist_logistic, dist_lognormal, dist_exponential, dist_gamma, dist_inv_gamma, dist_weibull,
    dist_beta, dist_uniform, dist_bernoulli, dist_bernoulli_logit, dist_binomial,
    dist_binomial_logit, dist_poisson, dist_poisson_log, dist_neg_binomial_2, dist_geometric,
    dist_discrete_uniform, dist_categorical, dist_categorical_logit, dist_dirichlet,
    dist_multi_normal, dist_multi_normal_cholesky, dist_lkj_corr_cholesky, dist_flat;

static const DistFamily *const dist_table[] = {
    &dist_normal,        &dist_std_normal,       &dist_student_t,
    &dist_cauchy,        &dist_logistic,         &dist_lognormal,
    &dist_exponential,   &dist_gamma,            &dist_inv_gamma,
    &dist_weibull,       &dist_beta,             &dist_uniform,
    &dist_bernoulli,     &dist_bernoulli_logit,  &dist_binomial,
    &dist_binomial_logit, &dist_poisson,         &dist_poisson_log,
    &dist_neg_binomial_2, &dist_geometric,       &dist_discrete_uniform,
    &dist_categorical,   &dist_categorical_logit, &dist_dirichlet,
    &dist_multi_normal,  &dist_multi_normal_cholesky, &dist_lkj_corr_cholesky,
    &dist_flat,
    NULL,
};

const DistFamily *dist_find(const DistRegistry *reg, const char *name) {
  if (!name) return NULL;
  for (int i = 0; reg && i < reg->n; i++)
    if (strcmp(reg->fam[i]->name, name) == 0) return reg->fam[i];
  return dist_lookup(name);
}

bool dist_registry_add(DistRegistry *reg, const DistFamily *f) {
  if (!f || !f->name || dist_find(reg, f->name)) return false;
  reg->fam = gc_grow(reg->fam, reg->n, &reg->cap, sizeof(const DistFamily *));
  reg->fam[reg->n++] = f;
  return true;
}

double dist_lpdf_grad1(const DistFamily *f, double x, const double *p, double *dx, double *dp) {
  if (f->lpdf_grad1) return f->lpdf_grad1(x, p, dx, dp);
  if (f->lpdf_grad1_ctx) return f->lpdf_grad1_ctx(f->ctx, x, p, dx, dp);
  double lp = dist_lpdf1(f, x, p);
  *dx = 0;
  for (int i = 0; i < f->nparams; i++) dp[i] = 0;
  if (isfinite(lp)) f->grad1(x, p, dx, dp);
  return lp;
}

const DistFamily *dist_lookup(const char *name) {
  if (!name) return NULL;
  for (int i = 0; dist_table[i]; i++)
    if (dist_table[i]->name && strcmp(dist_table[i]->name, name) == 0) return dist_table[i];
  return NULL;
}

const DistFamily *const *dist_all(void) { return dist_table; }

/* ---- small helpers ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static bool dist_fail(char *err, size_t errsz,
                                                            const char *fmt, ...) {
  if (err && errsz) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
  }
  return false;
}

/* A scalar family has per-value kernels; dist.c broadcasts them. */
static bool dist_is_scalar(const DistFamily *f) { return dist_scalar_family(f); }

/* "-inf", "inf", "nan" or %g: messages print bounds and parameter values. */
static const char *dist_num(double v, char *buf, size_t n) {
  if (isnan(v)) snprintf(buf, n, "nan");
  else if (isinf(v)) snprintf(buf, n, v > 0 ? "inf" : "-inf");
  else snprintf(buf, n, "%g", v);
  return buf;
}

/* ---- type checks -------------------------------------------------------------- */

static bool dist_real_like(Type t) {
  return t.base == TY_INT || t.base == TY_REAL || t.base == TY_BOOL || t.base == TY_VECTOR ||
         t.base == TY_ROWVEC || t.base == TY_MATRIX;
}

static bool dist_int_like(Type t) { return t.base == TY_INT || t.base == TY_BOOL; }

/* whole-value families: the declared type, or an array of it (int promotes) */
static bool dist_whole_ok(Type want, Type got) {
  bool base_ok = got.base == want.base ||
                 (want.base == TY_REAL && (got.base == TY_INT || got.base == TY_BOOL));
  return base_ok && (got.ndims == want.ndims || got.ndims == want.ndims + 1);
}

bool dist_check_types(const DistFamily *f, int nargs, const Type *args, Type x, char *err,
                      size_t errsz) {
  if (nargs != f->nparams)
    return dist_fail(err, errsz, "%s: expected %d argument%s, got %d", f->name, f->nparams,
                     f->nparams == 1 ? "" : "s", nargs);
  for (int i = 0; i < nargs; i++) {
    Type want = f->ptype[i], got = args[i];
    if (dist_is_scalar(f)) {
      if (want.base == TY_INT && !dist_int_like(got))
        return dist_fail(err, errsz, "%s: argument %d (%s) must be int or an array of ints, got %s",
                         f->name, i + 1, f->pnames[i], ty_name(got));
      if (want.base != TY_INT && !dist_real_like(got))
        return dist_fail(err, errsz, "%s: argument %d (%s) must be real or a container of reals, got %s",
                         f->name, i + 1, f->pnames[i], ty_name(got));
    } else if (!dist_whole_ok(want, got)) {
      return dist_fail(err, errsz, "%s: argument %d (%s) must be %s or an array of them, got %s",
                       f->name, i + 1, f->pnames[i], ty_name(want),
                       ty_name(got));
    }
  }
  if (x.base == TY_VOID) return true; /* no value to check (NAME_rng) */
  if (dist_is_scalar(f)) {
    if (f->discrete && !dist_int_like(x))
      return dist_fail(err, errsz, "%s: y must be int or an array of ints, got %s", f->name,
                       ty_name(x));
    if (!f->discrete && !dist_real_like(x))
      return dist_fail(err, errsz, "%s: y must be real or a container of reals, got %s", f->name,
                       ty_name(x));
  } else if (!dist_whole_ok(f->vtype, x)) {
    return dist_fail(err, errsz, "%s: y must be %s or an array of them, got %s", f->name,
                     ty_name(f->vtype), ty_name(x));
  }
  return true;
}

/* ---- flat numeric views of arguments -------------------------------------------- */

/* One argument seen as n doubles; a scalar broadcasts to any count. */
typedef struct DArg {
  const double *d;
  size_t n;
  bool scalar;
  double one; /* storage for a scalar */
} DArg;

static bool dist_numeric_leaves(Value v) {
  switch (v.k) {
  case V_INT: case V_REAL: case V_BOOL: case V_VEC: case V_ROWVEC: case V_MAT: return true;
  case V_ARR:
    for (int i = 0; i < v.a->n; i++) {
      ValKind k = v.a->e[i].k; /* scalars without a call each */
      if (k != V_INT && k != V_REAL && !dist_numeric_leaves(v.a->e[i])) return false;
    }
    return true;
  default: return false;
  }
}

static bool dist_int_leaves(Value v) {
  if (v.k == V_INT || v.k == V_BOOL) return true;
  if (v.k != V_ARR) return false;
  for (int i = 0; i < v.a->n; i++)
    if (v.a->e[i].k != V_INT && !dist_int_leaves(v.a->e[i])) return false;
  return true;
}

/* Vectors and matrices are viewed in place; arrays are flattened once. */
static bool darg_make(DArg *a, Value v) {
  switch (v.k) {
  case V_INT: case V_REAL: case V_BOOL:
    a->one = val_as_real(v);
    a->d = &a->one;
    a->n = 1;
    a->scalar = true;
    return true;
  case V_VEC: case V_ROWVEC: case V_MAT:
    a->d = v.t->d;
    a->n = (size_t)v.t->rows * (size_t)v.t->cols;
    a->scalar = false;
    return true;
  case V_ARR: {
    if (!dist_numeric_leaves(v)) return false;
    size_t n = val_numel(v);
    double *buf = gc_alloc_atomic(sizeof(double) * (n ? n : 1));
    val_flatten(v, buf);
    a->d = buf;
    a->n = n;
    a->scalar = false;
    return true;
  }
  default: return false;
  }
}

static inline double darg_at(const DArg *a, size_t j) { return a->scalar ? a->d[0] : a->d[j]; }

/* Broadcast count of the non-scalar arguments; names the first mismatch. */
static bool dist_common_size(const DistFamily *f, int np, const DArg *args, const DArg *x,
                             size_t *n, char *err, size_t errsz) {
  size_t cnt = 1;
  int who = -1; /* -1: none yet, np: y, i < np: parameter i */
  for (int i = 0; i <= np; i++) {
    const DArg *a = i == np ? x : &args[i];
    if (!a || a->scalar) continue;
    if (who < 0) {
      cnt = a->n;
      who = i;
    } else if (a->n != cnt) {
      return dist_fail(err, errsz, "%s: sizes do not match: %s has %zu element%s, %s has %zu",
                       f->name, who == np ? "y" : f->pnames[who], cnt, cnt == 1 ? "" : "s",
                       i == np ? "y" : f->pnames[i], a->n);
    }
  }
  *n = cnt;
  return true;
}

/* ---- parameter checks ------------------------------------------------------------- */

/* The domains as data (dist.h): the JIT emits its checks from this table. */
static const DistDomain dist_domains[] = {
    [PD_ANY] = {-INFINITY, INFINITY, false, false, true, false, false},
    [PD_POS] = {0, INFINITY, true, false, true, false, false},
    [PD_NONNEG] = {0, INFINITY, false, false, true, false, false},
    [PD_PROB] = {0, 1, false, false, false, false, false},
    [PD_INT_NONNEG] = {0, INFINITY, false, false, true, true, false},
    [PD_INT] = {-INFINITY, INFINITY, false, false, true, true, false},
    [PD_ANY_INF] = {-INFINITY, INFINITY, false, false, false, false, false},
    [PD_CUSTOM] = {-INFINITY, INFINITY, false, false, false, false, true},
};

const DistDomain *dist_domain(int pd) {
  return pd >= 0 && pd <= PD_CUSTOM ? &dist_domains[pd] : &dist_domains[PD_CUSTOM];
}

static inline bool dist_in_domain(const DistDomain *d, double v) {
  if (d->any) return true;
  if (d->finite && !isfinite(v)) return false;
  if (!(d->lo_open ? v > d->lo : v >= d->lo)) return false;
  if (!(d->hi_open ? v < d->hi : v <= d->hi)) return false;
  return !d->integer || v == floor(v);
}

bool dist_domain_ok(int pd, double v) { return dist_in_domain(dist_domain(pd), v); }

/* ok, and what the message says the value must be */
static bool dist_dom_ok(int dom, double v, const char **what) {
  const DistDomain *d = dist_domain(dom);
  bool inf = isinf(v) && v > 0; /* "must be finite", not "positive" */
  if (d->integer) *what = d->lo == 0 ? "a non-negative integer" : "an integer";
  else if (dom == PD_PROB) *what = "in [0, 1]";
  else if (!d->finite) *what = "a number";
  else if (d->lo == 0 && !inf) *what = d->lo_open ? "positive" : "non-negative";
  else *what = "finite";
  return dist_domain_ok(dom, v);
}

/* How many elements' supports differ at most: 1 when every parameter the
   support reads is a scalar (the same support for all n elements), else n. */
static size_t dist_support_span(const DistFamily *f, int np, const DArg *args, size_t n) {
  if (!f->support) return n ? 1 : 0;
  for (int i = 0; i < np; i++)
    if (!args[i].scalar && dist_support_reads(f, i)) return n;
  return n ? 1 : 0;
}

static bool dist_check_params(const DistFamily *f, int np, const DArg *args, size_t n,
                              char *err, size_t errsz) {
  char nb[32];
  for (int i = 0; i < np; i++) {
    const DArg *a = &args[i];
    /* the domain looked up once a parameter, the message made only on failure */
    const DistDomain *d = dist_domain(f->pdom[i]);
    if (d->any) continue;
    for (size_t j = 0; j < a->n; j++) {
      if (dist_in_domain(d, a->d[j])) continue;
      const char *what = "";
      (void)dist_dom_ok(f->pdom[i], a->d[j], &what);
      if (a->scalar)
        return dist_fail(err, errsz, "%s: %s must be %s, got %s", f->name, f->pnames[i], what,
                         dist_num(a->d[j], nb, sizeof nb));
      return dist_fail(err, errsz, "%s: %s[%zu] must be %s, got %s", f->name, f->pnames[i], j + 1,
                       what, dist_num(a->d[j], nb, sizeof nb));
    }
  }
  /* parameter-dependent supports (uniform) must not be empty */
  if (f->support && np >= 2) {
    double p[DIST_MAX_PARAMS];
    size_t ns = dist_support_span(f, np, args, n);
    for (size_t j = 0; j < ns; j++) {
      for (int i = 0; i < np; i++) p[i] = darg_at(&args[i], j);
      double lo, hi;
      f->support(p, &lo, &hi);
      if (lo > hi || (!f->discrete && lo == hi)) {
        char b2[32];
        return dist_fail(err, errsz, "%s: %s must be less than %s%s, got %s and %s", f->name,
                         f->pnames[0], f->discrete ? "or equal to " : "", f->pnames[1],
                         dist_num(p[0], nb, sizeof nb), dist_num(p[1], b2, sizeof b2));
      }
    }
  }
  return true;
}

static void dist_support(const DistFamily *f, const double *p, double *lo, double *hi) {
  *lo = -INFINITY;
  *hi = INFINITY;
  if (f->support) f->support(p, lo, hi);
}

/* ---- truncation ------------------------------------------------------------------- */

/* log P(lo <= X <= hi), from whichever tail keeps the digits.  For discrete
   families P(X >= lo) = P(X > lo - 1). */
static double dist_log_mass(const DistFamily *f, const double *p, double lo, double hi) {
  if (lo == -INFINITY && hi == INFINITY) return 0.0;
  double a = f->discrete ? lo - 1.0 : lo;
  if (lo == -INFINITY) return f->lcdf1(hi, p);
  if (hi == INFINITY) return f->lccdf1(a, p);
  double lfa = f->lcdf1(a, p), lsa = f->lccdf1(a, p);
  double lfb = f->lcdf1(hi, p), lsb = f->lccdf1(hi, p);
  if (lsa < -PPL_LOG2) return m_log_diff_exp(lsa, lsb); /* both bounds in the upper tail */
  if (lfb < -PPL_LOG2) return m_log_diff_exp(lfb, lfa); /* both in the lower tail */
  return m_log1m_exp(m_log_sum_exp2(lfa, lsb));       /* straddles the median */
}

/* Midpoint that also shrinks brackets spanning many orders of magnitude, so
   deep tails (x ~ 1e-200) take tens of steps, not a thousand. */
static double dist_mid(double a, double b) {
  if (a > 0 && b > 4 * a) return sqrt(a) * sqrt(b);
  if (b < 0 && a < 4 * b) return -sqrt(-a) * sqrt(-b);
  if (a == 0 && b > 1) return b / 16;
  if (b == 0 && a < -1) return a / 16;
  return a + 0.5 * (b - a);
}

/* Solve for the draw by inverting the CDF numerically in log space.
   upper: use the survival function (lower bound already past the median). */
static double dist_invert(const DistFamily *f, const double *p, double lo, double hi,
                          double target, bool upper) {
  bool disc = f->discrete;
  /* pred(x): is the answer <= x ?  (monotone in x) */
#define DIST_PRED(x) (upper ? f->lccdf1((x), p) <= target : f->lcdf1((x), p) >= target)
  double a = disc ? lo - 1.0 : lo, b = hi;
  if (a == -INFINITY) {
    double step = 1.0;
    a = (b < 0 ? b : 0.0) - 1.0;
    while (DIST_PRED(a) && isfinite(a)) {
      a -= step;
      step *= 2;
    }
  }
  if (b == INFINITY) {
    double step = 1.0;
    b = (a > 0 ? a : 0.0) + 1.0;
    while (!DIST_PRED(b) && isfinite(b)) {
      b += step;
      step *= 2;
    }
  }
  for (int it = 0; it < 2200; it++) {
    double m = dist_mid(a, b);
    if (disc) {
      m = floor(m);
      if (b - a <= 1.0) break;
      if (m <= a) m = a + 1.0;
    } else if (!(m > a && m < b)) {
      break;
    }
    if (DIST_PRED(m)) b = m;
    else a = m;
  }
#undef DIST_PRED
  if (disc) return b;
  double x = a + 0.5 * (b - a);
  return x < lo ? lo : x > hi ? hi : x;
}

/* One untruncated draw.  A count family's sampler works in doubles, which hold
 * integers exactly only up to 2^53; past that (poisson_rng(1e300),
 * poisson_log_rng(1000), binomial_rng of a huge n) there is no honest int to
 * return, so the draw is an error, as in Stan, never a wrapped value. */
static bool dist_draw1(const DistFamily *f, Rng *r, const double *p, double *out, char *err,
                       size_t errsz) {
  double x = dist_rng1(f, r, p);
  if (f->discrete) {
    double lo, hi;
    dist_support(f, p, &lo, &hi);
    if (!(fabs(x) <= 9007199254740992.0) || x < lo || x > hi) {
      char msg[160] = "", nb[32];
      size_t used = 0;
      for (int i = 0; i < f->nparams && used < sizeof msg; i++) {
        int k = snprintf(msg + used, sizeof msg - used, "%s%s = %s", i ? ", " : "",
                         f->pnames[i], dist_num(p[i], nb, sizeof nb));
        if (k < 0) break;
        used += (size_t)k;
      }
      return dist_fail(err, errsz,
                       "%s: parameters too large to draw an int (%s): draws are exact up "
                       "to 2^53", f->name, msg);
    }
  }
  *out = x;
  return true;
}

/* One draw from f(p) restricted to [lo, hi] (already clipped to the support). */
static bool dist_trunc_draw(const DistFamily *f, Rng *r, const double *p, double lo, double hi,
                            double *out, char *err, size_t errsz) {
  double lm = dist_log_mass(f, p, lo, hi);
  if (!(lm > -INFINITY)) {
    char b1[32], b2[32];
    return dist_fail(err, errsz, "%s: the bounds [%s, %s] have probability zero", f->name,
                     dist_num(lo, b1, sizeof b1), dist_num(hi, b2, sizeof b2));
  }
  if (lm > log(0.3)) {
    /* most of the mass is inside: plain rejection is exact and cheap */
    for (int t = 0; t < 100; t++) {
      double x = dist_rng1(f, r, p);
      if (x >= lo && x <= hi) {
        *out = x;
        return true;
      }
    }
  }
  double a = f->discrete ? lo - 1.0 : lo;
  double lfa = lo == -INFINITY ? -INFINITY : f->lcdf1(a, p);
  double u = rng_uniform(r);
  bool upper = lfa > -PPL_LOG2;
  if (f->qf1 && !upper) {
    /* p-space is accurate here: F(lo) <= 1/2 */
    double q = exp(m_log_sum_exp2(lfa, log(u) + lm));
    double x = f->qf1(q, p);
    if (x >= lo && x <= hi) {
      *out = x;
      return true;
    }
  }
  double target;
  if (upper) {
    double lsb = hi == INFINITY ? -INFINITY : f->lccdf1(hi, p);
    target = m_log_sum_exp2(lsb, log1p(-u) + lm);
  } else {
    target = m_log_sum_exp2(lfa, log(u) + lm);
  }
  *out = dist_invert(f, p, lo, hi, target, upper);
  return true;
}

/* ---- DistCall ----------------------------------------------------------------------- */

static bool dist_make_args(const DistFamily *f, int np, const Value *p, DArg *args, char *err,
                           size_t errsz) {
  for (int i = 0; i < np; i++)
    if (!darg_make(&args[i], p[i]))
      return dist_fail(err, errsz, "%s: %s must be numeric, got %s", f->name, f->pnames[i],
                       val_kind_name((ValKind)p[i].k));
  return true;
}

/* Nesting depth of arrays around the first leaf. */
static int dist_depth(Value v) {
  int d = 0;
  while (v.k == V_ARR && v.a->n > 0) {
    v = v.a->e[0];
    d++;
  }
  if (v.k == V_ARR) d++; /* empty array */
  return d;
}

/* For whole-value families: how many draws a parameter/value stands for
   (-1: one value, shared by all draws; k >= 0: an array of k). */
static bool dist_whole_count(Value v, Type t, int *cnt) {
  int d = dist_depth(v);
  if (d == t.ndims) *cnt = -1;
  else if (d == t.ndims + 1) *cnt = v.a->n;
  else return false;
  return true;
}

static bool dist_whole_params(const DistFamily *f, int np, const Value *p, int *n, char *err,
                              size_t errsz) {
  int cnt = -1, who = -1;
  for (int i = 0; i < np; i++) {
    int c;
    if (!dist_whole_count(p[i], f->ptype[i], &c)) {
      return dist_fail(err, errsz, "%s: %s must be %s or an array of them", f->name, f->pnames[i],
                       ty_name(f->ptype[i]));
    }
    if (c < 0) continue;
    if (who >= 0 && c != cnt)
      return dist_fail(err, errsz, "%s: sizes do not match: %s has %d elements, %s has %d", f->name,
                       f->pnames[who], cnt, f->pnames[i], c);
    cnt = c;
    who = i;
  }
  *n = cnt;
  return true;
}

/* The parameters of draw j of a whole-value family. */
static void dist_whole_pick(const DistFamily *f, int np, const Value *p, int j, Value *out) {
  for (int i = 0; i < np; i++) {
    int c = -1;
    dist_whole_count(p[i], f->ptype[i], &c);
    out[i] = c >= 0 ? p[i].a->e[j] : p[i];
  }
}

static bool dist_init_whole(DistCall *dc, const DistFamily *f, int np, const Value *p,
                            ConKind con, double lo, double hi, char *err, size_t errsz) {
  int n;
  if (!dist_whole_params(f, np, p, &n, err, errsz)) return false;
  if (f->check && !f->checked_by_density) {
    Value pj[DIST_MAX_PARAMS];
    for (int j = 0; j < (n >= 0 ? n : 1); j++) {
      dist_whole_pick(f, np, p, j, pj);
      if (!f->check(pj, err, errsz)) return false;
    }
  }
  dc->con = f->support_con != CON_NONE ? f->support_con : con;
  /* declared scalar bounds (int<lower=1> z ~ categorical) are kept as they are:
     whole-value densities are not renormalised */
  dc->lower = dc->con == CON_LOWER || dc->con == CON_LOWER_UPPER ? lo : -INFINITY;
  dc->upper = dc->con == CON_UPPER || dc->con == CON_LOWER_UPPER ? hi : INFINITY;
  dc->truncated = false;
  return true;
}

bool dist_call_init(DistCall *dc, const DistFamily *f, int np, const Value *p, ConKind con,
                    double lo, double hi, Type type, int nsizes, const int *sizes, char *err,
                    size_t errsz) {
  char b1[32], b2[32], b3[32], b4[32];
  memset(dc, 0, sizeof *dc);
  dc->fam = f;
  dc->np = np;
  dc->p = p;
  dc->type = type;
  dc->nsizes = nsizes < 0 ? 0 : nsizes > 8 ? 8 : nsizes;
  for (int i = 0; i < dc->nsizes; i++) dc->sizes[i] = sizes[i];
  if (np != f->nparams)
    return dist_fail(err, errsz, "%s: expected %d argument%s, got %d", f->name, f->nparams,
                     f->nparams == 1 ? "" : "s", np);
  if (!dist_is_scalar(f)) return dist_init_whole(dc, f, np, p, con, lo, hi, err, errsz);

  DArg args[DIST_MAX_PARAMS];
  size_t n;
  if (!dist_make_args(f, np, p, args, err, errsz)) return false;
  if (!dist_common_size(f, np, args, NULL, &n, err, errsz)) return false;
  if (!dist_check_params(f, np, args, n, err, errsz)) return false;

  bool scalar_bounds = con == CON_NONE || con == CON_LOWER || con == CON_UPPER ||
                       con == CON_LOWER_UPPER;
  double dlo = con == CON_LOWER || con == CON_LOWER_UPPER ? lo : -INFINITY;
  double dhi = con == CON_UPPER || con == CON_LOWER_UPPER ? hi : INFINITY;
  if (isnan(dlo) || isnan(dhi) || dlo > dhi || (!f->discrete && dlo == dhi))
    return dist_fail(err, errsz, "declared bounds [%s, %s] are empty", dist_num(dlo, b1, sizeof b1),
                     dist_num(dhi, b2, sizeof b2));

  /* the support over all elements (param-dependent only for e.g. uniform) */
  double slo = INFINITY, shi = -INFINITY, pj[DIST_MAX_PARAMS];
  if (n == 0) slo = -INFINITY, shi = INFINITY; /* empty containers: no values to bound */
  size_t ns = dist_support_span(f, np, args, n);
  for (size_t j = 0; j < ns; j++) {
    for (int i = 0; i < np; i++) pj[i] = darg_at(&args[i], j);
    double a, b;
    dist_support(f, pj, &a, &b);
    if (a < slo) slo = a;
    if (b > shi) shi = b;
  }
  if (!scalar_bounds) {
    /* structured constraints (ordered, ...) pass through without truncation */
    dc->con = con;
    dc->lower = slo;
    dc->upper = shi;
    return true;
  }
  double elo = dlo > slo ? dlo : slo, ehi = dhi < shi ? dhi : shi;
  if (f->discrete) {
    elo = ceil(elo);
    ehi = floor(ehi);
  }
  if (elo > ehi || (!f->discrete && elo == ehi))
    return dist_fail(err, errsz, "%s: declared bounds [%s, %s] do not meet the support [%s, %s]",
                     f->name, dist_num(dlo, b1, sizeof b1), dist_num(dhi, b2, sizeof b2),
                     dist_num(slo, b3, sizeof b3), dist_num(shi, b4, sizeof b4));
  dc->lower = elo;
  dc->upper = ehi;
  /* an improper density has no normaliser: the bounds only restrict it */
  dc->truncated = !f->improper && (dlo > slo || dhi < shi);
  if (dc->truncated && (!f->lcdf1 || !f->lccdf1))
    return dist_fail(err, errsz, "%s: cannot truncate to the declared bounds: the family has no CDF",
                     f->name);
  bool has_lo = isfinite(elo), has_hi = isfinite(ehi);
  dc->con = has_lo && has_hi ? CON_LOWER_UPPER : has_lo ? CON_LOWER : has_hi ? CON_UPPER : CON_NONE;
  return true;
}

/* Check and view the value of a scalar family. */
static bool dist_value_arg(const DistFamily *f, Value x, DArg *xa, char *err, size_t errsz) {
  if (f->discrete && !dist_int_leaves(x)) return dist_fail(err, errsz, "%s: y must be an int", f->name);
  if (!darg_make(xa, x)) return dist_fail(err, errsz, "%s: y must be a real or a container of reals", f->name);
  for (size_t j = 0; j < xa->n; j++) {
    if (isnan(xa->d[j])) return dist_fail(err, errsz, "%s: y must not be NaN", f->name);
    /* no family has mass at infinity: an infinite value is a mistake in the
       data (CmdStan JSON's "Infinity"), said here rather than as an
       impossible point later */
    if (isinf(xa->d[j])) {
      char where[48] = "";
      if (xa->n > 1) snprintf(where, sizeof where, " (element %zu)", j + 1);
      return dist_fail(err, errsz, "%s: y must be finite, got %s%s", f->name,
                       xa->d[j] > 0 ? "inf" : "-inf", where);
    }
  }
  return true;
}

/* The sum over the draws of x of the family's log density, or with weight of
   its draw weight (DistFamily.draw_weight_ctx). */
/* A family checked_by_density leaves its check to the density; with no draw
   to score (an empty array of values) the density does not run, so the
   check does. */
static bool dist_whole_check_unscored(const DistCall *dc, int cnt, char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  if (cnt != 0 || !f->checked_by_density || !f->check) return true;
  int n;
  if (!dist_whole_params(f, dc->np, dc->p, &n, err, errsz)) return false;
  Value pj[DIST_MAX_PARAMS];
  for (int j = 0; j < (n >= 0 ? n : 1); j++) {
    dist_whole_pick(f, dc->np, dc->p, j, pj);
    if (!f->check(pj, err, errsz)) return false;
  }
  return true;
}

static bool dist_whole_sum(const DistCall *dc, Value x, bool weight, double *out, char *err,
                           size_t errsz) {
  const DistFamily *f = dc->fam;
  int n, nx;
  if (!dist_whole_params(f, dc->np, dc->p, &n, err, errsz)) return false;
  if (!dist_whole_count(x, f->vtype, &nx)) {
    return dist_fail(err, errsz, "%s: y must be %s or an array of them", f->name,
                     ty_name(f->vtype));
  }
  if (n >= 0 && nx >= 0 && n != nx) {
    int who = 0;
    for (int i = 0; i < dc->np; i++) {
      int c = -1;
      dist_whole_count(dc->p[i], f->ptype[i], &c);
      if (c >= 0) { who = i; break; }
    }
    return dist_fail(err, errsz, "%s: sizes do not match: %s has %d elements, y has %d", f->name,
                     f->pnames[who], n, nx);
  }
  /* an array of values, or a single value scored under each parameter set */
  int cnt = nx >= 0 ? nx : n;
  if (!dist_whole_check_unscored(dc, cnt, err, errsz)) return false;
  double total = 0.0;
  Value pj[DIST_MAX_PARAMS];
  for (int j = 0; j < (cnt >= 0 ? cnt : 1); j++) {
    dist_whole_pick(f, dc->np, dc->p, j, pj);
    double lp;
    Value xj = nx >= 0 ? x.a->e[j] : x;
    bool ok = weight       ? f->draw_weight_ctx(f->ctx, pj, xj, &lp, err, errsz)
              : f->lpdf_ctx ? f->lpdf_ctx(f->ctx, pj, xj, &lp, err, errsz)
                            : f->lpdf(pj, xj, &lp, err, errsz);
    if (!ok) return false;
    total += lp;
  }
  *out = total;
  return true;
}

static bool dist_lpdf_whole(const DistCall *dc, Value x, double *out, char *err, size_t errsz) {
  return dist_whole_sum(dc, x, false, out, err, errsz);
}

bool dist_call_draw_weight(const DistCall *dc, Value x, double *out, char *err, size_t errsz) {
  *out = 0;
  if (!dc->fam->draw_weight_ctx) return true;
  return dist_whole_sum(dc, x, true, out, err, errsz);
}

/* Ordered vectors (ordered[K], positive_ordered[K]) under a scalar family with
   the same parameters for every element are the order statistics of K iid
   draws: their density is K! times the product, so log K! per vector keeps the
   density normalised. (With element-specific parameters the mass of the
   ordered region has no closed form and is left out; docs/constraints.md.) */
static bool dist_is_ordered(const DistCall *dc) {
  return (dc->con == CON_ORDERED || dc->con == CON_POS_ORDERED) && dc->nsizes > 0 &&
         dc->sizes[dc->nsizes - 1] > 1;
}

static double dist_order_norm(const DistCall *dc, bool params_scalar, size_t n) {
  if (!params_scalar || !dist_is_ordered(dc)) return 0.0;
  int k = dc->sizes[dc->nsizes - 1];
  return (double)(n / (size_t)k) * lgamma((double)k + 1.0);
}

static int dist_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Draw ordered vectors: sort iid draws, or (element-specific parameters)
   redraw until ordered. positive_ordered draws are cut to (0, inf) first. */
static bool dist_draw_ordered(const DistCall *dc, Rng *r, const DArg *args, bool params_scalar,
                              size_t count, double *buf, char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  size_t k = (size_t)dc->sizes[dc->nsizes - 1];
  double p[DIST_MAX_PARAMS];
  for (size_t start = 0; start + k <= count; start += k) {
    for (int tries = 0;; tries++) {
      for (size_t j = start; j < start + k; j++) {
        for (int i = 0; i < dc->np; i++) p[i] = darg_at(&args[i], j);
        double lo, hi;
        dist_support(f, p, &lo, &hi);
        if (dc->truncated) {
          if (dc->lower > lo) lo = dc->lower;
          if (dc->upper < hi) hi = dc->upper;
        }
        if (dc->con == CON_POS_ORDERED && lo < 0) lo = 0;
        double slo, shi;
        dist_support(f, p, &slo, &shi);
        if (lo > slo || hi < shi) {
          if (!dist_trunc_draw(f, r, p, lo, hi, &buf[j], err, errsz)) return false;
        } else if (!dist_draw1(f, r, p, &buf[j], err, errsz)) {
          return false;
        }
      }
      if (params_scalar) {
        qsort(buf + start, k, sizeof(double), dist_cmp_double);
        break;
      }
      bool sorted = true;
      for (size_t j = start + 1; j < start + k; j++) sorted = sorted && buf[j - 1] < buf[j];
      if (sorted) break;
      if (tries == 10000)
        return dist_fail(err, errsz,
                         "%s: could not draw an ordered vector of %zu from these parameters "
                         "(10000 tries); give the elements the same distribution", f->name, k);
    }
  }
  return true;
}

static bool call_lpdf(const DistCall *dc, Value x, double *out, char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  if (!dist_is_scalar(f)) return dist_lpdf_whole(dc, x, out, err, errsz);
  DArg args[DIST_MAX_PARAMS], xa;
  size_t n;
  if (!dist_make_args(f, dc->np, dc->p, args, err, errsz)) return false;
  if (!dist_value_arg(f, x, &xa, err, errsz)) return false;
  if (!dist_common_size(f, dc->np, args, &xa, &n, err, errsz)) return false;

  bool params_scalar = true;
  for (int i = 0; i < dc->np; i++) params_scalar = params_scalar && args[i].scalar;
  double p[DIST_MAX_PARAMS], lz = 0.0, total = 0.0;
  if (params_scalar) {
    for (int i = 0; i < dc->np; i++) p[i] = args[i].d[0];
    if (dc->truncated) lz = dist_log_mass(f, p, dc->lower, dc->upper);
  }
  for (size_t j = 0; j < n; j++) {
    double xj = darg_at(&xa, j);
    if (!params_scalar) {
      for (int i = 0; i < dc->np; i++) p[i] = darg_at(&args[i], j);
      if (dc->truncated) lz = dist_log_mass(f, p, dc->lower, dc->upper);
    }
    if ((dc->truncated || f->improper) && (xj < dc->lower || xj > dc->upper)) {
      *out = -INFINITY;
      return true;
    }
    total += dist_lpdf1(f, xj, p) - lz;
  }
  *out = total + (isfinite(total) ? dist_order_norm(dc, params_scalar, n) : 0.0);
  return true;
}

/* ---- drawing values --------------------------------------------------------------------- */

/* Build a value of type t with the given sizes from a flat buffer (the
   flatten order: arrays row-major, matrices column-major). */
static Value dist_build(Type t, int depth, int nsizes, const int *sizes, const double *src,
                        size_t *pos, bool ints) {
  if (depth < t.ndims) {
    int n = depth < nsizes ? sizes[depth] : 0;
    Value a = val_arr(n);
    for (int i = 0; i < n; i++)
      a.a->e[i] = dist_build(t, depth + 1, nsizes, sizes, src, pos, ints);
    return a;
  }
  int r = depth < nsizes ? sizes[depth] : 0, c = depth + 1 < nsizes ? sizes[depth + 1] : 0;
  Value v;
  switch (t.base) {
  case TY_VECTOR: v = val_vec(r); break;
  case TY_ROWVEC: v = val_rowvec(r); break;
  case TY_MATRIX: v = val_mat(r, c); break;
  case TY_INT: return val_int((int64_t)src[(*pos)++]);
  default: /* a discrete family's scalar draw is an int whatever the declared base */
    return ints ? val_int((int64_t)src[(*pos)++]) : val_real(src[(*pos)++]);
  }
  size_t m = (size_t)v.t->rows * (size_t)v.t->cols;
  memcpy(v.t->d, src + *pos, m * sizeof(double));
  *pos += m;
  return v;
}

/* Number of scalars in a value of type t with these sizes. */
static size_t dist_shape_numel(Type t, int nsizes, const int *sizes) {
  int dims = t.ndims + (t.base == TY_VECTOR || t.base == TY_ROWVEC ? 1 : t.base == TY_MATRIX ? 2 : 0);
  size_t n = 1;
  for (int i = 0; i < dims; i++) n *= (size_t)(i < nsizes && sizes[i] > 0 ? sizes[i] : 0);
  return n;
}

static bool dist_draw_scalars(const DistCall *dc, Rng *r, const DArg *args, size_t count,
                              double *buf, char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  double p[DIST_MAX_PARAMS];
  for (size_t j = 0; j < count; j++) {
    for (int i = 0; i < dc->np; i++) p[i] = darg_at(&args[i], j);
    if (dc->truncated) {
      double lo, hi;
      dist_support(f, p, &lo, &hi);
      if (dc->lower > lo) lo = dc->lower;
      if (dc->upper < hi) hi = dc->upper;
      if (!dist_trunc_draw(f, r, p, lo, hi, &buf[j], err, errsz)) return false;
    } else if (!dist_draw1(f, r, p, &buf[j], err, errsz)) {
      return false;
    }
  }
  return true;
}

static bool dist_rng_whole(const DistCall *dc, Rng *r, Value *out, char *err, size_t errsz);

static bool dist_improper_fail(const DistFamily *f, char *err, size_t errsz) {
  return dist_fail(err, errsz,
                   "%s: an improper prior cannot be sampled; give an initial value or use a "
                   "gradient-based or MCMC engine", f->name);
}

bool dist_call_rng(const DistCall *dc, Rng *r, Value *out, char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  if (f->improper) return dist_improper_fail(f, err, errsz);
  if (!dist_is_scalar(f)) return dist_rng_whole(dc, r, out, err, errsz);
  DArg args[DIST_MAX_PARAMS];
  size_t n;
  if (!dist_make_args(f, dc->np, dc->p, args, err, errsz)) return false;
  if (!dist_common_size(f, dc->np, args, NULL, &n, err, errsz)) return false;
  bool params_scalar = true;
  for (int i = 0; i < dc->np; i++) params_scalar = params_scalar && args[i].scalar;

  Type t = dc->type;
  if (t.base == TY_VOID) t = ty_make(f->discrete ? TY_INT : TY_REAL, params_scalar ? 0 : 1);
  int sz1 = (int)n;
  const int *sizes = dc->nsizes ? dc->sizes : &sz1;
  int nsizes = dc->nsizes ? dc->nsizes : (params_scalar ? 0 : 1);
  size_t total = dist_shape_numel(t, nsizes, sizes);
  if (!params_scalar && total != n) {
    int who = 0;
    while (who < dc->np && args[who].scalar) who++;
    return dist_fail(err, errsz, "%s: sizes do not match: %s has %zu elements, the value has %zu",
                     f->name, f->pnames[who], n, total);
  }
  double one;
  double *buf = total <= 1 ? &one : gc_alloc_atomic(sizeof(double) * total);
  if (dist_is_ordered(dc)) {
    if (!dist_draw_ordered(dc, r, args, params_scalar, total, buf, err, errsz)) return false;
  } else if (!dist_draw_scalars(dc, r, args, total, buf, err, errsz)) {
    return false;
  }
  size_t pos = 0;
  *out = dist_build(t, 0, nsizes, sizes, buf, &pos, f->discrete);
  return true;
}

/* whole-value draws; arrays of draws loop over the outer array dimensions */
static bool dist_rng_whole_rec(const DistCall *dc, Rng *r, int depth, int extra, int index,
                               int nparam_draws, Value *out, char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  if (depth < extra) {
    int n = depth < dc->nsizes ? dc->sizes[depth] : nparam_draws;
    if (n < 0) n = 0;
    if (depth == 0 && nparam_draws >= 0 && n != nparam_draws)
      return dist_fail(err, errsz, "%s: sizes do not match: the parameters give %d draws, the value has %d",
                       f->name, nparam_draws, n);
    Value a = val_arr(n);
    for (int i = 0; i < n; i++)
      if (!dist_rng_whole_rec(dc, r, depth + 1, extra, depth == 0 ? i : index, nparam_draws,
                              &a.a->e[i], err, errsz))
        return false;
    *out = a;
    return true;
  }
  Value pj[DIST_MAX_PARAMS];
  dist_whole_pick(f, dc->np, dc->p, nparam_draws >= 0 ? index : 0, pj);
  if (f->rng_sized && dc->nsizes > extra) /* the size comes from the declaration (lkj) */
    return f->rng_sized(r, pj, dc->nsizes - extra, dc->sizes + extra, out, err, errsz);
  bool ok = f->rng_ctx ? f->rng_ctx(f->ctx, r, pj, out, err, errsz) : f->rng(r, pj, out, err, errsz);
  if (!ok) return false;
  /* the declared size of one draw must agree with what the parameters imply */
  if (dc->nsizes > extra && dc->type.base != TY_VOID) {
    Type one = ty_make((TyBase)dc->type.base, 0);
    size_t want = dist_shape_numel(one, dc->nsizes - extra, dc->sizes + extra);
    size_t got = val_numel(*out);
    if (want != got)
      return dist_fail(err, errsz, "%s: the parameters give a draw of %zu elements, the variable has %zu",
                       f->name, got, want);
  }
  return true;
}

static bool dist_rng_whole(const DistCall *dc, Rng *r, Value *out, char *err, size_t errsz) {
  int n;
  if (!dist_whole_params(dc->fam, dc->np, dc->p, &n, err, errsz)) return false;
  int extra = dc->type.base == TY_VOID ? (n >= 0 ? 1 : 0) : dc->type.ndims - dc->fam->vtype.ndims;
  if (extra < 0) extra = 0;
  if (n >= 0 && extra == 0)
    return dist_fail(err, errsz, "%s: array parameters need an array of values", dc->fam->name);
  return dist_rng_whole_rec(dc, r, 0, extra, 0, n, out, err, errsz);
}

/* ---- the language's NAME_rng, NAME_lpdf, NAME_lcdf -------------------------------------- */

bool dist_rng_value(const DistFamily *f, Rng *r, int np, const Value *p, Value *out, char *err,
                    size_t errsz) {
  DistCall dc;
  Type none = ty_make(TY_VOID, 0);
  if (!dist_call_init(&dc, f, np, p, CON_NONE, -INFINITY, INFINITY, none, 0, NULL, err, errsz))
    return false;
  return dist_call_rng(&dc, r, out, err, errsz);
}

bool dist_lpdf_value(const DistFamily *f, Value x, int np, const Value *p, double *out, char *err,
                     size_t errsz) {
  DistCall dc;
  Type none = ty_make(TY_VOID, 0);
  if (!dist_call_init(&dc, f, np, p, CON_NONE, -INFINITY, INFINITY, none, 0, NULL, err, errsz))
    return false;
  return dist_call_lpdf(&dc, x, out, err, errsz);
}

bool dist_lcdf_value(const DistFamily *f, Value x, int np, const Value *p, bool upper_tail,
                     double *out, char *err, size_t errsz) {
  double (*cdf)(double, const double *) = upper_tail ? f->lccdf1 : f->lcdf1;
  if (!dist_is_scalar(f) || !cdf)
    return dist_fail(err, errsz, "%s: no %s is available for this family", f->name,
                     upper_tail ? "lccdf" : "lcdf");
  DistCall dc;
  Type none = ty_make(TY_VOID, 0);
  if (!dist_call_init(&dc, f, np, p, CON_NONE, -INFINITY, INFINITY, none, 0, NULL, err, errsz))
    return false;
  DArg args[DIST_MAX_PARAMS], xa;
  size_t n;
  if (!dist_make_args(f, np, p, args, err, errsz)) return false;
  if (!dist_value_arg(f, x, &xa, err, errsz)) return false;
  if (!dist_common_size(f, np, args, &xa, &n, err, errsz)) return false;
  double pj[DIST_MAX_PARAMS], total = 0.0;
  for (size_t j = 0; j < n; j++) {
    for (int i = 0; i < np; i++) pj[i] = darg_at(&args[i], j);
    total += cdf(darg_at(&xa, j), pj);
  }
  *out = total;
  return true;
}

/* ---- reverse-mode AD -------------------------------------------------------------------- */

/* Numerical d/dp[i] of a log CDF: two central differences combined by
   Richardson extrapolation (error O(h^4)). */
double dist_cdf_dparam(double (*cdf)(double, const double *), double x, const double *p, int np,
                       int i) {
  double q[DIST_MAX_PARAMS];
  for (int k = 0; k < np && k < DIST_MAX_PARAMS; k++) q[k] = p[k];
  double h = 1e-3 * (fabs(p[i]) > 1e-3 ? fabs(p[i]) : 1e-3), d[2];
  for (int s = 0; s < 2; s++) {
    double hs = s ? h / 2 : h;
    q[i] = p[i] + hs;
    double up = cdf(x, q);
    q[i] = p[i] - hs;
    double dn = cdf(x, q);
    d[s] = (up - dn) / (2 * hs);
  }
  double r = (4 * d[1] - d[0]) / 3;
  return isfinite(r) ? r : 0.0;
}

/* Partials of a log CDF with respect to the parameters (dp[0..np)), from the
   family's kernel or numerically. */
static void dist_cdf_grad(const DistFamily *f, bool upper, double x, const double *p,
                          double *dp) {
  void (*g)(double, const double *, double *, double *) = upper ? f->lccdf_grad1 : f->lcdf_grad1;
  double dx;
  for (int i = 0; i < DIST_MAX_PARAMS; i++) dp[i] = 0;
  if (g) {
    g(x, p, &dx, dp);
    return;
  }
  for (int i = 0; i < f->nparams; i++)
    if (f->pdom[i] != PD_INT && f->pdom[i] != PD_INT_NONNEG)
      dp[i] = dist_cdf_dparam(upper ? f->lccdf1 : f->lcdf1, x, p, f->nparams, i);
}

bool dist_implicit_dx(const DistFamily *f, double x, const double *p, double *dxdp) {
  if (f->discrete || !f->lcdf1 || !f->lccdf1 || f->nparams > DIST_MAX_PARAMS) return false;
  double lf = dist_lpdf1(f, x, p);
  if (!isfinite(lf) || !isfinite(x)) return false;
  /* The lower tail while F <= 1/2, the upper (S = 1 - F, dS = -dF) after. */
  double lc = f->lcdf1(x, p);
  bool upper = !(lc < -PPL_LOG2);
  if (upper) lc = f->lccdf1(x, p);
  if (!isfinite(lc)) return false;
  double dl[DIST_MAX_PARAMS], w = (upper ? 1.0 : -1.0) * exp(lc - lf);
  dist_cdf_grad(f, upper, x, p, dl);
  for (int i = 0; i < f->nparams; i++) {
    bool isint = f->pdom[i] == PD_INT || f->pdom[i] == PD_INT_NONNEG;
    dxdp[i] = isint ? 0.0 : w * dl[i];
  }
  return true;
}

/* Partials of lz = dist_log_mass(f, p, lo, hi) with respect to the parameters
   and the two bounds, using the same tail as dist_log_mass. */
static void dist_log_mass_grad(const DistFamily *f, const double *p, double lo, double hi,
                               double lz, double *dp, double *dlo, double *dhi) {
  double ga[DIST_MAX_PARAMS], gb[DIST_MAX_PARAMS];
  int np = f->nparams;
  for (int i = 0; i < DIST_MAX_PARAMS; i++) dp[i] = 0;
  *dlo = *dhi = 0;
  if (lo == -INFINITY && hi == INFINITY) return;
  double a = f->discrete ? lo - 1.0 : lo;
  if (!f->discrete) {
    if (lo != -INFINITY) *dlo = -exp(dist_lpdf1(f, lo, p) - lz);
    if (hi != INFINITY) *dhi = exp(dist_lpdf1(f, hi, p) - lz);
  }
  if (lo == -INFINITY) {
    dist_cdf_grad(f, false, hi, p, dp);
    return;
  }
  if (hi == INFINITY) {
    dist_cdf_grad(f, true, a, p, dp);
    return;
  }
  double lsa = f->lccdf1(a, p);
  bool upper = lsa < -PPL_LOG2;
  double la = upper ? lsa : f->lcdf1(a, p);
  double lb = upper ? f->lccdf1(hi, p) : f->lcdf1(hi, p);
  dist_cdf_grad(f, upper, a, p, ga);
  dist_cdf_grad(f, upper, hi, p, gb);
  /* mass = F(hi) - F(a) = S(a) - S(hi) */
  double wa = la > -INFINITY ? exp(la - lz) : 0.0, wb = lb > -INFINITY ? exp(lb - lz) : 0.0;
  for (int i = 0; i < np; i++)
    dp[i] = upper ? wa * ga[i] - wb * gb[i] : wb * gb[i] - wa * ga[i];
}

/* Tape nodes of v's scalars in val_flatten order; false when none carries a
   node (then nothing is written). */
static bool dist_has_nodes(Value v) {
  switch (v.k) {
  case V_REAL: return v.ad != 0;
  case V_VEC: case V_ROWVEC: case V_MAT: {
    if (!v.t->ad) return false;
    size_t n = (size_t)v.t->rows * (size_t)v.t->cols;
    for (size_t i = 0; i < n; i++)
      if (v.t->ad[i]) return true;
    return false;
  }
  case V_ARR:
    for (int i = 0; i < v.a->n; i++)
      if (dist_has_nodes(v.a->e[i])) return true;
    return false;
  default: return false;
  }
}


/* The nodes of an argument viewed as a DArg: a scalar's node, a tensor's own
   node array (in place), or an array's nodes flattened once; NULL = none. */
typedef struct DAd {
  const int32_t *ad; /* NULL: every element constant */
  int32_t one;
} DAd;

static void dad_make(DAd *a, Value v) {
  a->ad = NULL;
  a->one = 0;
  if (v.k == V_REAL) {
    a->one = v.ad;
    if (v.ad) a->ad = &a->one;
  } else if (v.k == V_VEC || v.k == V_ROWVEC || v.k == V_MAT) {
    a->ad = v.t->ad;
  } else if (v.k == V_ARR && dist_has_nodes(v)) {
    size_t n = val_numel(v);
    int32_t *buf = gc_alloc_atomic(sizeof(int32_t) * (n ? n : 1));
    val_flatten_nodes(v, buf);
    a->ad = buf;
  }
}

/* Parents of the result node, collected in a fixed buffer: when it fills,
   the collected parents become one intermediate node which heads the next
   batch, so any number of elements costs no allocation. */
#define DIST_AD_CHUNK 256

typedef struct DistAdAcc {
  Tape *t;
  int n;
  int32_t par[DIST_AD_CHUNK];
  double part[DIST_AD_CHUNK];
} DistAdAcc;

static void adacc_flush(DistAdAcc *a) {
  int32_t nd = a->n ? tape_push(a->t, a->n, a->par, a->part) : 0;
  a->n = 0;
  if (nd) {
    a->par[0] = nd;
    a->part[0] = 1.0;
    a->n = 1;
  }
}

static inline void adacc_add(DistAdAcc *a, int32_t node, double d) {
  if (!node) return;
  if (a->n == DIST_AD_CHUNK) adacc_flush(a);
  a->par[a->n] = node;
  a->part[a->n++] = d;
}

static int32_t adacc_finish(DistAdAcc *a) {
  return a->n ? tape_push(a->t, a->n, a->par, a->part) : 0;
}

static bool dist_lpdf_whole_ad(const DistCall *dc, Tape *t, Value x, double *lp, int32_t *node,
                               char *err, size_t errsz);

static bool call_lpdf_ad(const DistCall *dc, Tape *t, Value x, double *lp, int32_t *node,
                         char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  *node = 0;
  if (!dist_is_scalar(f)) return dist_lpdf_whole_ad(dc, t, x, lp, node, err, errsz);
  if (!dist_has_grad1(f))
    return dist_fail(err, errsz, "%s: no gradient is available for this family", f->name);
  int np = dc->np;
  DArg args[DIST_MAX_PARAMS], xa;
  DAd pad[DIST_MAX_PARAMS], xad;
  size_t n;
  if (!dist_make_args(f, np, dc->p, args, err, errsz)) return false;
  if (!dist_value_arg(f, x, &xa, err, errsz)) return false;
  if (!dist_common_size(f, np, args, &xa, &n, err, errsz)) return false;
  bool params_scalar = true, any = false;
  for (int i = 0; i < np; i++) {
    params_scalar = params_scalar && args[i].scalar;
    dad_make(&pad[i], dc->p[i]);
    any = any || pad[i].ad;
  }
  dad_make(&xad, x);
  if (f->discrete) xad.ad = NULL;
  any = any || xad.ad;
  /* bounds matter only where they cut the support of the family */
  bool trunc = dc->truncated;
  int32_t lo_ad = trunc && !f->discrete ? dc->lower_ad : 0;
  int32_t hi_ad = trunc && !f->discrete ? dc->upper_ad : 0;
  any = any || lo_ad || hi_ad;

  DistAdAcc acc;
  acc.t = t;
  acc.n = 0;
  /* sums for scalar arguments (one node, many elements) */
  double gp[DIST_MAX_PARAMS] = {0}, gx = 0, glo = 0, ghi = 0;
  double p[DIST_MAX_PARAMS] = {0}, lz = 0.0, total = 0.0;
  double dlz[DIST_MAX_PARAMS] = {0}, dlzlo = 0, dlzhi = 0;
  bool cut_lo = false, cut_hi = false;
  /* per element only the container parameters are reloaded, and the kernel
     is called directly when the family gives lpdf_grad1 (the same values as
     through dist_lpdf_grad1) */
  int vidx[DIST_MAX_PARAMS], nv = 0;
  for (int i = 0; i < np; i++)
    if (!args[i].scalar) vidx[nv++] = i;
  double (*kern)(double, const double *, double *, double *) = any ? f->lpdf_grad1 : NULL;
  for (size_t j = 0; j < n; j++) {
    if (j == 0 || !params_scalar) {
      if (j == 0)
        for (int i = 0; i < np; i++) p[i] = darg_at(&args[i], j);
      else
        for (int k = 0; k < nv; k++) p[vidx[k]] = args[vidx[k]].d[j];
      if (trunc) {
        lz = dist_log_mass(f, p, dc->lower, dc->upper);
        if (any) dist_log_mass_grad(f, p, dc->lower, dc->upper, lz, dlz, &dlzlo, &dlzhi);
        double slo, shi;
        dist_support(f, p, &slo, &shi);
        cut_lo = dc->lower > slo;
        cut_hi = dc->upper < shi;
      }
    }
    double xj = darg_at(&xa, j);
    if ((trunc || f->improper) && (xj < dc->lower || xj > dc->upper)) {
      *lp = -INFINITY;
      return true;
    }
    double dx = 0, dp[DIST_MAX_PARAMS] = {0};
    double lj = kern  ? kern(xj, p, &dx, dp)
                : any ? dist_lpdf_grad1(f, xj, p, &dx, dp)
                      : dist_lpdf1(f, xj, p);
    total += lj - lz;
    if (!any || !isfinite(lj)) continue;
    if (trunc) {
      for (int i = 0; i < np; i++) dp[i] -= dlz[i];
      if (cut_lo) glo -= dlzlo;
      if (cut_hi) ghi -= dlzhi;
    }
    if (xad.ad) {
      if (xa.scalar) gx += dx;
      else adacc_add(&acc, xad.ad[j], dx);
    }
    for (int i = 0; i < np; i++) {
      if (!pad[i].ad) continue;
      if (args[i].scalar) gp[i] += dp[i];
      else adacc_add(&acc, pad[i].ad[j], dp[i]);
    }
  }
  *lp = total + (isfinite(total) ? dist_order_norm(dc, params_scalar, n) : 0.0);
  if (!any || !isfinite(total)) return true;
  if (xad.ad && xa.scalar) adacc_add(&acc, xad.ad[0], gx);
  for (int i = 0; i < np; i++)
    if (pad[i].ad && args[i].scalar) adacc_add(&acc, pad[i].ad[0], gp[i]);
  adacc_add(&acc, lo_ad, glo);
  adacc_add(&acc, hi_ad, ghi);
  *node = adacc_finish(&acc);
  return true;
}

/* Offsets (in flatten order) of the draws of an array value: off[j] is where
   draw j's scalars start. */
static size_t *dist_draw_offsets(Value v, int cnt) {
  size_t *off = gc_alloc_atomic(sizeof(size_t) * (size_t)(cnt + 1));
  off[0] = 0;
  for (int j = 0; j < cnt; j++) off[j + 1] = off[j] + val_numel(v.a->e[j]);
  return off;
}

bool dist_lpdf_whole_grad(const DistCall *dc, Value x, double *lp, double *gx, double *const *gp,
                          char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  int np = dc->np;
  int n, nx;
  if (!dist_whole_params(f, np, dc->p, &n, err, errsz)) return false;
  if (!dist_whole_count(x, f->vtype, &nx)) {
    return dist_fail(err, errsz, "%s: y must be %s or an array of them", f->name,
                     ty_name(f->vtype));
  }
  if (n >= 0 && nx >= 0 && n != nx) {
    int who = 0;
    for (int i = 0; i < np; i++) {
      int c = -1;
      dist_whole_count(dc->p[i], f->ptype[i], &c);
      if (c >= 0) { who = i; break; }
    }
    return dist_fail(err, errsz, "%s: sizes do not match: %s has %d elements, y has %d", f->name,
                     f->pnames[who], n, nx);
  }
  if (!f->lpdf_grad)
    return dist_fail(err, errsz, "%s: no gradient is available for this family", f->name);
  size_t *xoff = NULL, *poff[DIST_MAX_PARAMS] = {NULL};
  if (gx && nx >= 0) xoff = dist_draw_offsets(x, nx);
  for (int i = 0; i < np; i++) {
    int c = -1;
    dist_whole_count(dc->p[i], f->ptype[i], &c);
    if (gp[i] && c >= 0) poff[i] = dist_draw_offsets(dc->p[i], c);
  }
  int cnt = nx >= 0 ? nx : n;
  if (!dist_whole_check_unscored(dc, cnt, err, errsz)) return false;
  double total = 0.0;
  Value pj[DIST_MAX_PARAMS];
  for (int j = 0; j < (cnt >= 0 ? cnt : 1); j++) {
    dist_whole_pick(f, np, dc->p, j, pj);
    double *dxj = gx ? gx + (xoff ? xoff[j] : 0) : NULL, *dpj[DIST_MAX_PARAMS];
    for (int i = 0; i < np; i++)
      dpj[i] = gp[i] ? gp[i] + (poff[i] ? poff[i][j] : 0) : NULL;
    double l;
    if (!f->lpdf_grad(pj, nx >= 0 ? x.a->e[j] : x, &l, dxj, dpj, err, errsz)) return false;
    total += l;
  }
  *lp = total;
  return true;
}

static bool dist_lpdf_whole_ad(const DistCall *dc, Tape *t, Value x, double *lp, int32_t *node,
                               char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  int np = dc->np;
  bool xnodes = !f->discrete && dist_has_nodes(x), pnodes[DIST_MAX_PARAMS], any = xnodes;
  for (int i = 0; i < np; i++) any = (pnodes[i] = dist_has_nodes(dc->p[i])) || any;
  if (!any) return dist_lpdf_whole(dc, x, lp, err, errsz);

  /* gradient buffers over the whole of x and of each parameter */
  double *gx = NULL, *gp[DIST_MAX_PARAMS] = {NULL};
  if (xnodes) gx = gc_alloc_atomic(sizeof(double) * (val_numel(x) + 1));
  for (int i = 0; i < np; i++)
    if (pnodes[i]) gp[i] = gc_alloc_atomic(sizeof(double) * (val_numel(dc->p[i]) + 1));
  if (!dist_lpdf_whole_grad(dc, x, lp, gx, gp, err, errsz)) return false;
  if (!isfinite(*lp)) return true;
  DistAdAcc acc;
  acc.t = t;
  acc.n = 0;
  for (int i = -1; i < np; i++) {
    Value v = i < 0 ? x : dc->p[i];
    double *g = i < 0 ? gx : gp[i];
    if (!g) continue;
    size_t m = val_numel(v);
    int32_t *nodes = gc_alloc_atomic(sizeof(int32_t) * (m + 1));
    val_flatten_nodes(v, nodes);
    for (size_t k = 0; k < m; k++) adacc_add(&acc, nodes[k], g[k]);
  }
  *node = adacc_finish(&acc);
  return true;
}

bool dist_lpdf_value_ad(const DistFamily *f, Tape *t, Value x, int np, const Value *p,
                        double *out, int32_t *node, char *err, size_t errsz) {
  DistCall dc;
  Type none = ty_make(TY_VOID, 0);
  *node = 0;
  if (!dist_call_init(&dc, f, np, p, CON_NONE, -INFINITY, INFINITY, none, 0, NULL, err, errsz))
    return false;
  return dist_call_lpdf_ad(&dc, t, x, out, node, err, errsz);
}

/* ---- Stan's default initialisation --------------------------------------------------------- */

/* Scalars per constrained unit: 1 for elementwise bounds, else one vector
   (last size) or one matrix (last two sizes). */
static int dist_con_unit(ConKind con, Type t, int nsizes, const int *sizes) {
  if (con == CON_NONE || con == CON_LOWER || con == CON_UPPER || con == CON_LOWER_UPPER) return 1;
  if (t.base == TY_MATRIX && nsizes >= 2) return sizes[nsizes - 2] * sizes[nsizes - 1];
  return nsizes >= 1 ? sizes[nsizes - 1] : 1;
}

bool dist_call_init_value(const DistCall *dc, Rng *r, Value *out, char *err, size_t errsz) {
  const DistFamily *f = dc->fam;
  if (f->discrete) {
    if (f->improper) return dist_improper_fail(f, err, errsz);
    return dist_call_rng(dc, r, out, err, errsz);
  }
  Type t = dc->type;
  int nsizes = dc->nsizes;
  const int *sizes = dc->sizes;
  int one = 1;
  if (t.base == TY_VOID) {
    /* no declared shape: the shape a draw would have (scalar families: one
       per parameter element) */
    if (!dist_is_scalar(f)) {
      if (f->improper) return dist_improper_fail(f, err, errsz);
      return dist_call_rng(dc, r, out, err, errsz);
    }
    DArg args[DIST_MAX_PARAMS];
    size_t n;
    if (!dist_make_args(f, dc->np, dc->p, args, err, errsz)) return false;
    if (!dist_common_size(f, dc->np, args, NULL, &n, err, errsz)) return false;
    bool ps = true;
    for (int i = 0; i < dc->np; i++) ps = ps && args[i].scalar;
    t = ty_make(TY_REAL, ps ? 0 : 1);
    one = (int)n;
    sizes = &one;
    nsizes = ps ? 0 : 1;
  } else if (!dist_is_scalar(f) && dc->con == CON_NONE) {
    /* an unconstrained vector/matrix family (multi_normal): a draw from the
       prior is as good a start as any and has the right size */
    return dist_call_rng(dc, r, out, err, errsz);
  }
  size_t total = dist_shape_numel(t, nsizes, sizes);
  int unit = dist_con_unit(dc->con, t, nsizes, sizes);
  if (unit <= 0 || total % (size_t)unit) unit = 1;
  int free = tf_free_size(dc->con, unit);
  if (free < 0) return dist_fail(err, errsz, "%s: cannot initialise a value of this shape", f->name);
  double *buf = gc_alloc_atomic(sizeof(double) * (total + 1));
  double *u = gc_alloc_atomic(sizeof(double) * ((size_t)free + 1));
  for (size_t k = 0; k < total; k += (size_t)unit) {
    for (int i = 0; i < free; i++) u[i] = -2.0 + 4.0 * rng_uniform(r);
    tf_constrain(dc->con, dc->lower, dc->upper, unit, u, buf + k);
  }
  size_t pos = 0;
  *out = dist_build(t, 0, nsizes, sizes, buf, &pos, false);
  return true;
}

/* ---- for compiled code (ir/jit_rt.c) ---- */

double dist_trunc_log_mass(const DistFamily *f, const double *p, double lo, double hi) {
  return dist_log_mass(f, p, lo, hi);
}

void dist_trunc_log_mass_grad(const DistFamily *f, const double *p, double lo, double hi,
                              double lz, double *dp) {
  double dlo, dhi;
  dist_log_mass_grad(f, p, lo, hi, lz, dp, &dlo, &dhi);
}

double dist_ordered_norm(const DistCall *dc, bool params_scalar, size_t n) {
  return dist_order_norm(dc, params_scalar, n);
}

/* ---- the scored density: NaN and +inf are errors ---------------------------------- */

/* A density term that is NaN or +inf has no meaning for any engine (a NaN
 * compares false with everything; +inf makes every other point impossible):
 * the program fails at that statement, which every engine reports the same
 * way (gradient engines and MCMC moves treat a failing point as impossible,
 * as Stan does; at initialisation the message is the reason given). */
static bool dist_lp_defined(const DistCall *dc, double lp, char *err, size_t errsz) {
  if (isnan(lp))
    return dist_fail(err, errsz, "%s: the log density is NaN", dc->fam->name);
  if (lp == INFINITY)
    return dist_fail(err, errsz,
                     "%s: the log density is +inf (the density has no bound at this value)",
                     dc->fam->name);
  return true;
}

bool dist_call_lpdf(const DistCall *dc, Value x, double *out, char *err, size_t errsz) {
  return call_lpdf(dc, x, out, err, errsz) && dist_lp_defined(dc, *out, err, errsz);
}

bool dist_call_lpdf_ad(const DistCall *dc, Tape *t, Value x, double *lp, int32_t *node,
                       char *err, size_t errsz) {
  return call_lpdf_ad(dc, t, x, lp, node, err, errsz) && dist_lp_defined(dc, *lp, err, errsz);
}
