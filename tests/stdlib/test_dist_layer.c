/* test_dist_layer.c — stdlib/dist.c: the family table, type checks,
 * broadcasting, messages for bad sizes and parameters, the effective
 * constraint of a latent, truncation (normalisation checked by numerical
 * integration, truncated draws by Kolmogorov-Smirnov), value shapes of draws. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stdlib/dist.h"
#include "tap.h"

static Value vec(int n, const double *d) {
  Value v = val_vec(n);
  memcpy(v.t->d, d, sizeof(double) * n);
  return v;
}
static Value rarr(int n, const double *d) {
  Value v = val_arr(n);
  for (int i = 0; i < n; i++) v.a->e[i] = val_real(d[i]);
  return v;
}
static Value iarr(int n, const int64_t *d) {
  Value v = val_arr(n);
  for (int i = 0; i < n; i++) v.a->e[i] = val_int(d[i]);
  return v;
}

static char err[256];
static const Type T_VOID = {TY_VOID, 0};

static int lpdf(const char *fam, Value x, int np, const Value *p, double *out) {
  err[0] = 0;
  return dist_lpdf_value(dist_lookup(fam), x, np, p, out, err, sizeof err);
}

static void expect_err(int ok, const char *want, const char *what) {
  if (!tap_ok(!ok && strcmp(err, want) == 0, "%s", what)) tap_diag("got '%s' (ok=%d), want '%s'", err, ok, want);
}

static int init(DistCall *dc, const char *fam, int np, const Value *p, ConKind con, double lo, double hi) {
  err[0] = 0;
  return dist_call_init(dc, dist_lookup(fam), np, p, con, lo, hi, ty_make(TY_REAL, 0), 0, NULL, err, sizeof err);
}

/* integral of exp(truncated lpdf) over [a, b] by composite Simpson */
static double integrate(const DistCall *dc, double a, double b) {
  int n = 200000;
  double h = (b - a) / n, s = 0;
  for (int i = 0; i <= n; i++) {
    double x = i == n ? b : a + i * h, lp; /* a + n h may round past b */
    dist_call_lpdf(dc, val_real(x), &lp, err, sizeof err);
    double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    s += w * exp(lp);
  }
  return s * h / 3;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* truncated draws: inside the bounds, and KS against the truncated CDF
   computed from the family's lcdf (checked against mpmath in test_cont) */
static void trunc_draws(const char *name, const char *fam, int np, const Value *p, ConKind con, double lo, double hi) {
  enum { M = 20000 };
  static double d[M];
  DistCall dc;
  const DistFamily *f = dist_lookup(fam);
  if (!tap_ok(init(&dc, fam, np, p, con, lo, hi) && dc.truncated, "%s: truncated call", name)) {
    tap_diag("%s", err);
    return;
  }
  Rng r;
  rng_seed(&r, 99, 7);
  int inside = 1, ok = 1;
  for (int i = 0; i < M && ok; i++) {
    Value v;
    ok = dist_call_rng(&dc, &r, &v, err, sizeof err);
    if (!ok) break;
    d[i] = v.r;
    inside &= v.k == V_REAL && d[i] >= dc.lower && d[i] <= dc.upper;
  }
  if (!tap_ok(ok && inside, "%s: draws inside [%g, %g]", name, dc.lower, dc.upper)) {
    tap_diag("%s", err);
    return;
  }
  double pp[4];
  for (int i = 0; i < np; i++) pp[i] = val_as_real(p[i]);
  double la = isinf(dc.lower) ? -INFINITY : f->lcdf1(dc.lower, pp);
  double lb = isinf(dc.upper) ? 0.0 : f->lcdf1(dc.upper, pp);
  double sa = isinf(dc.lower) ? 0.0 : f->lccdf1(dc.lower, pp);
  double sb = isinf(dc.upper) ? -INFINITY : f->lccdf1(dc.upper, pp);
  qsort(d, M, sizeof d[0], cmp_d);
  double dmax = 0;
  for (int i = 0; i < M; i++) {
    /* conditional CDF; from the upper tail when the bounds lie above the median */
    double F;
    if (sa < log(0.5)) F = -expm1(f->lccdf1(d[i], pp) - sa) / -expm1(sb - sa);
    else F = (exp(f->lcdf1(d[i], pp)) - exp(la)) / (exp(lb) - exp(la));
    double e1 = fabs(F - (double)i / M), e2 = fabs(F - (double)(i + 1) / M);
    if (e1 > dmax) dmax = e1;
    if (e2 > dmax) dmax = e2;
  }
  if (!tap_ok(sqrt((double)M) * dmax < 2.1, "%s: KS against the truncated CDF", name))
    tap_diag("sqrt(M) D = %.3f", sqrt((double)M) * dmax);
}

int main(void) {
  gc_init();
  /* ---- the table */
  static const char *all[] = {"normal", "std_normal", "student_t", "cauchy", "logistic", "lognormal",
                              "exponential", "gamma", "inv_gamma", "weibull", "beta", "uniform",
                              "bernoulli", "bernoulli_logit", "binomial", "binomial_logit", "poisson",
                              "poisson_log", "neg_binomial_2", "geometric", "discrete_uniform",
                              "categorical", "categorical_logit", "dirichlet", "multi_normal",
                              "multi_normal_cholesky", "lkj_corr_cholesky"};
  int found = 0;
  for (int i = 0; i < 27; i++) {
    const DistFamily *f = dist_lookup(all[i]);
    found += f && strcmp(f->name, all[i]) == 0;
  }
  tap_ok(found == 27, "all 27 families found by name (%d)", found);
  int cnt = 0;
  const DistFamily *const *tab = dist_all();
  while (tab[cnt]) cnt++;
  tap_ok(cnt == 28, "dist_all lists the 27 families and flat (%d)", cnt);
  tap_ok(dist_lookup("nope") == NULL && dist_lookup(NULL) == NULL, "unknown names give NULL");

  /* ---- static type checks */
  const DistFamily *fn = dist_lookup("normal");
  Type ok_args[2] = {ty_make(TY_VECTOR, 0), ty_make(TY_REAL, 1)};
  tap_ok(dist_check_types(fn, 2, ok_args, ty_make(TY_REAL, 2), err, sizeof err), "normal(vector, real[]) on real[,]");
  Type bad_args[2] = {ty_make(TY_REAL, 0), ty_make(TY_STRING, 0)};
  dist_check_types(fn, 2, bad_args, ty_make(TY_REAL, 0), err, sizeof err);
  tap_streq(err, "normal: argument 2 (sigma) must be real or a container of reals, got string", "type message");
  dist_check_types(fn, 1, bad_args, T_VOID, err, sizeof err);
  tap_streq(err, "normal: expected 2 arguments, got 1", "argument count message");
  Type bp[1] = {ty_make(TY_REAL, 0)};
  dist_check_types(dist_lookup("bernoulli"), 1, bp, ty_make(TY_REAL, 1), err, sizeof err);
  tap_streq(err, "bernoulli: y must be int or an array of ints, got real[]", "discrete value type message");
  Type dp[1] = {ty_make(TY_VECTOR, 1)};
  tap_ok(dist_check_types(dist_lookup("dirichlet"), 1, dp, ty_make(TY_VECTOR, 1), err, sizeof err),
         "dirichlet(vector[]) on vector[]");
  Type dq[1] = {ty_make(TY_MATRIX, 0)};
  tap_ok(!dist_check_types(dist_lookup("dirichlet"), 1, dq, ty_make(TY_VECTOR, 0), err, sizeof err),
         "dirichlet(matrix) rejected: %s", err);

  /* ---- broadcasting */
  const double y3[3] = {0.5, -1.0, 2.0}, mu3[3] = {0.0, 1.0, -2.0}, s3[3] = {1.0, 2.0, 0.5};
  double want = 0, got;
  double pp[2];
  for (int i = 0; i < 3; i++) {
    pp[0] = mu3[i];
    pp[1] = s3[i];
    want += fn->lpdf1(y3[i], pp);
  }
  Value p2[2] = {vec(3, mu3), rarr(3, s3)};
  tap_ok(lpdf("normal", vec(3, y3), 2, p2, &got) && fabs(got - want) < 1e-12, "vector y, vector mu, real[] sigma");
  Value ry = rarr(3, y3);
  tap_ok(lpdf("normal", ry, 2, p2, &got) && fabs(got - want) < 1e-12, "real[] y");
  want = 0;
  for (int i = 0; i < 3; i++) {
    pp[0] = 0.25;
    pp[1] = s3[i];
    want += fn->lpdf1(y3[i], pp);
  }
  Value p3[2] = {val_real(0.25), vec(3, s3)};
  tap_ok(lpdf("normal", ry, 2, p3, &got) && fabs(got - want) < 1e-12, "scalar mu broadcast");
  want = 0;
  for (int i = 0; i < 3; i++) {
    pp[0] = mu3[i];
    pp[1] = 2.0;
    want += fn->lpdf1(0.3, pp);
  }
  Value p4[2] = {vec(3, mu3), val_int(2)};
  tap_ok(lpdf("normal", val_real(0.3), 2, p4, &got) && fabs(got - want) < 1e-12, "scalar y against vector mu, int sigma");
  /* a 2x2 array of reals against a 4-vector: flattened in row-major order */
  Value grid = val_arr(2);
  const double r0[2] = {1, 2}, r1[2] = {3, 4}, m4[4] = {1.5, 2.5, 2.5, 3.5};
  grid.a->e[0] = rarr(2, r0);
  grid.a->e[1] = rarr(2, r1);
  Value p5[2] = {vec(4, m4), val_real(1)};
  want = 4 * (-0.5 * 0.25 - 0.91893853320467274178);
  tap_ok(lpdf("normal", grid, 2, p5, &got) && fabs(got - want) < 1e-12, "real[,] y against vector[4] mu");
  const int64_t iy[3] = {0, 1, 2};
  want = 0;
  for (int i = 0; i < 3; i++) {
    pp[0] = mu3[i];
    pp[1] = s3[i];
    want += fn->lpdf1((double)iy[i], pp);
  }
  tap_ok(lpdf("normal", iarr(3, iy), 2, p2, &got) && fabs(got - want) < 1e-12, "int[] y for a continuous family");
  Value empty = val_arr(0);
  Value p6[2] = {val_real(0), val_real(1)};
  tap_ok(lpdf("normal", empty, 2, p6, &got) && got == 0, "empty y sums to 0");
  tap_ok(lpdf("gamma", val_real(-1), 2, (Value[]){val_real(2), val_real(1)}, &got) && got == -INFINITY,
         "outside the support: -inf, not an error");

  /* ---- size and parameter messages */
  const double y4[4] = {1, 2, 3, 4};
  Value p7[2] = {vec(3, mu3), val_real(1)};
  expect_err(lpdf("normal", vec(4, y4), 2, p7, &got), "normal: sizes do not match: mu has 3 elements, y has 4",
             "size mismatch mu/y");
  Value p8[2] = {vec(3, mu3), vec(4, y4)};
  expect_err(lpdf("normal", val_real(0), 2, p8, &got), "normal: sizes do not match: mu has 3 elements, sigma has 4",
             "size mismatch mu/sigma");
  Value p9[2] = {val_real(0), val_real(-1)};
  expect_err(lpdf("normal", val_real(0), 2, p9, &got), "normal: sigma must be positive, got -1", "negative sigma");
  const double sb[3] = {1, 0, 2};
  Value p10[2] = {val_real(0), vec(3, sb)};
  expect_err(lpdf("normal", vec(3, y3), 2, p10, &got), "normal: sigma[2] must be positive, got 0", "zero sigma element");
  Value p11[2] = {val_real(NAN), val_real(1)};
  expect_err(lpdf("normal", val_real(0), 2, p11, &got), "normal: mu must be finite, got nan", "NaN mu");
  Value p12[2] = {val_real(0), val_real(INFINITY)};
  expect_err(lpdf("normal", val_real(0), 2, p12, &got), "normal: sigma must be finite, got inf", "infinite sigma");
  Value p13[2] = {val_real(2), val_real(1)};
  expect_err(lpdf("uniform", val_real(1.5), 2, p13, &got), "uniform: alpha must be less than beta, got 2 and 1",
             "uniform with alpha > beta");
  expect_err(lpdf("normal", val_real(NAN), 2, p6, &got), "normal: y must not be NaN", "NaN y");
  expect_err(lpdf("normal", val_real(0), 1, p6, &got), "normal: expected 2 arguments, got 1", "argument count at run time");
  Value p14[2] = {val_real(0), val_str("a")};
  expect_err(lpdf("normal", val_real(0), 2, p14, &got), "normal: sigma must be numeric, got string", "string sigma");
  const double b01[2] = {1.0, 0.0};
  Value p15[1] = {val_real(0.3)};
  expect_err(lpdf("bernoulli", rarr(2, b01), 1, p15, &got), "bernoulli: y must be an int", "reals for a discrete family");
  const int64_t i01[2] = {1, 0};
  tap_ok(lpdf("bernoulli", iarr(2, i01), 1, p15, &got) && fabs(got - log(0.3 * 0.7)) < 1e-12, "ints for bernoulli");

  /* ---- effective constraints */
  DistCall dc;
  tap_ok(init(&dc, "normal", 2, p6, CON_NONE, -INFINITY, INFINITY) && dc.con == CON_NONE && !dc.truncated,
         "normal, no bounds: unconstrained");
  Value pg[2] = {val_real(2), val_real(1)};
  tap_ok(init(&dc, "gamma", 2, pg, CON_NONE, -INFINITY, INFINITY) && dc.con == CON_LOWER && dc.lower == 0 &&
             !dc.truncated,
         "gamma, no bounds: lower 0 from the support");
  tap_ok(init(&dc, "normal", 2, p6, CON_LOWER, 0, INFINITY) && dc.con == CON_LOWER && dc.lower == 0 && dc.truncated,
         "real<lower=0> ~ normal: truncated");
  tap_ok(init(&dc, "gamma", 2, pg, CON_LOWER, -1, INFINITY) && dc.con == CON_LOWER && dc.lower == 0 && !dc.truncated,
         "real<lower=-1> ~ gamma: lower 0, not truncated");
  tap_ok(init(&dc, "beta", 2, pg, CON_NONE, -INFINITY, INFINITY) && dc.con == CON_LOWER_UPPER && dc.lower == 0 &&
             dc.upper == 1 && !dc.truncated,
         "beta: [0, 1] from the support");
  Value pu[2] = {val_real(-2), val_real(3)};
  tap_ok(init(&dc, "uniform", 2, pu, CON_NONE, -INFINITY, INFINITY) && dc.con == CON_LOWER_UPPER && dc.lower == -2 &&
             dc.upper == 3 && !dc.truncated,
         "uniform(-2, 3): bounds from the parameters");
  Value pe[1] = {val_real(1)};
  tap_ok(init(&dc, "exponential", 1, pe, CON_UPPER, -INFINITY, 2) && dc.con == CON_LOWER_UPPER && dc.lower == 0 &&
             dc.upper == 2 && dc.truncated,
         "real<upper=2> ~ exponential: [0, 2], truncated");
  tap_ok(init(&dc, "normal", 2, p6, CON_ORDERED, -INFINITY, INFINITY) && dc.con == CON_ORDERED && !dc.truncated,
         "ordered ~ normal passes through");
  expect_err(init(&dc, "normal", 2, p6, CON_LOWER_UPPER, 5, 3), "declared bounds [5, 3] are empty", "empty bounds");
  expect_err(init(&dc, "gamma", 2, pg, CON_UPPER, -INFINITY, -1),
             "gamma: declared bounds [-inf, -1] do not meet the support [0, inf]",
             "bounds outside the support");
  const double al[3] = {1, 2, 3};
  Value pd[1] = {vec(3, al)};
  tap_ok(dist_call_init(&dc, dist_lookup("dirichlet"), 1, pd, CON_NONE, -INFINITY, INFINITY, ty_make(TY_VECTOR, 0), 1,
                        (int[]){3}, err, sizeof err) &&
             dc.con == CON_SIMPLEX,
         "dirichlet: simplex from the family");
  Value pp3[1] = {val_real(3)};
  tap_ok(init(&dc, "poisson", 1, pp3, CON_LOWER, 1, INFINITY) && dc.truncated && dc.lower == 1, "int<lower=1> ~ poisson: truncated");

  /* ---- truncation: normalised (numerical integration) */
  struct { const char *fam; int np; double p[3]; ConKind con; double lo, hi, a, b; } tr[] = {
      {"normal", 2, {0, 1}, CON_LOWER, 0, INFINITY, 0, 12},
      {"normal", 2, {1, 2}, CON_LOWER_UPPER, -1, 2, -1, 2},
      {"normal", 2, {0, 1}, CON_LOWER, 10, INFINITY, 10, 12},
      {"normal", 2, {0, 1}, CON_UPPER, -INFINITY, -20, -21.5, -20},
      {"gamma", 2, {2, 1}, CON_UPPER, -INFINITY, 0.5, 0, 0.5},
      {"beta", 2, {2, 3}, CON_LOWER_UPPER, 0.2, 0.3, 0.2, 0.3},
      {"student_t", 3, {3, 0, 1}, CON_LOWER_UPPER, 5, 50, 5, 50},
      {"lognormal", 2, {0, 1}, CON_LOWER_UPPER, 0.5, 3, 0.5, 3},
      {"weibull", 2, {1.5, 2}, CON_LOWER_UPPER, 4, 9, 4, 9},
      {"cauchy", 2, {0, 1}, CON_LOWER_UPPER, -1e3, -10, -1e3, -10},
  };
  for (size_t i = 0; i < sizeof tr / sizeof tr[0]; i++) {
    Value pv[3];
    for (int k = 0; k < tr[i].np; k++) pv[k] = val_real(tr[i].p[k]);
    if (!tap_ok(init(&dc, tr[i].fam, tr[i].np, pv, tr[i].con, tr[i].lo, tr[i].hi) && dc.truncated,
                "%s truncated to [%g, %g]", tr[i].fam, tr[i].lo, tr[i].hi))
      continue;
    double z = integrate(&dc, tr[i].a, tr[i].b);
    if (!tap_ok(fabs(z - 1) < 1e-8, "%s truncated to [%g, %g] integrates to 1", tr[i].fam, tr[i].lo, tr[i].hi))
      tap_diag("integral %.12g", z);
  }
  /* exact: half-normal doubles the density; out of bounds is -inf */
  init(&dc, "normal", 2, p6, CON_LOWER, 0, INFINITY);
  dist_call_lpdf(&dc, val_real(0.7), &got, err, sizeof err);
  tap_ok(fabs(got - (-0.5 * 0.49 - 0.91893853320467274178 + log(2.0))) < 1e-14, "half-normal log density");
  dist_call_lpdf(&dc, val_real(-0.1), &got, err, sizeof err);
  tap_ok(got == -INFINITY, "below the truncation: -inf");
  /* far tail: normal truncated to [40, inf): mass Phi(-40) ~ 3.7e-350 underflows a double */
  init(&dc, "normal", 2, p6, CON_LOWER, 40, INFINITY);
  dist_call_lpdf(&dc, val_real(40), &got, err, sizeof err);
  /* density at the bound / mass = phi(40) / Phi(-40); mpmath: log = 3.68950348054911542 */
  tap_near(got, 3.6895034805491154, 1e-10, "normal truncated at 40: log density at the bound (mpmath)");
  /* discrete: poisson(3) truncated to >= 1 sums to 1 */
  init(&dc, "poisson", 1, pp3, CON_LOWER, 1, INFINITY);
  double sum = 0;
  for (int k = 0; k < 100; k++) {
    dist_call_lpdf(&dc, val_int(k), &got, err, sizeof err);
    sum += exp(got);
  }
  tap_ok(fabs(sum - 1) < 1e-12, "poisson(3) truncated to >= 1 sums to 1 (%.15g)", sum);
  /* vector params: truncation normalised per element */
  const double mus[2] = {0, 3};
  Value pvm[2] = {vec(2, mus), val_real(1)};
  const double yv[2] = {0.5, 0.5};
  err[0] = 0;
  dist_call_init(&dc, fn, 2, pvm, CON_LOWER, 0, INFINITY, ty_make(TY_VECTOR, 0), 1, (int[]){2}, err, sizeof err);
  dist_call_lpdf(&dc, vec(2, yv), &got, err, sizeof err);
  double w2 = 0;
  for (int i = 0; i < 2; i++) {
    pp[0] = mus[i];
    pp[1] = 1;
    w2 += fn->lpdf1(0.5, pp) - fn->lccdf1(0, pp);
  }
  tap_ok(fabs(got - w2) < 1e-12, "per-element truncation with vector mu");

  /* ---- truncated draws */
  trunc_draws("normal [-1, 2] (rejection)", "normal", 2, p6, CON_LOWER_UPPER, -1, 2);
  trunc_draws("normal [3, inf) (quantile)", "normal", 2, p6, CON_LOWER, 3, INFINITY);
  trunc_draws("normal [12, inf) (upper-tail inversion)", "normal", 2, p6, CON_LOWER, 12, INFINITY);
  trunc_draws("normal (-inf, -30]", "normal", 2, p6, CON_UPPER, -INFINITY, -30);
  trunc_draws("gamma(2,1) (0, 1e-3] (bisection)", "gamma", 2, pg, CON_UPPER, -INFINITY, 1e-3);
  trunc_draws("gamma(2,1) [30, 31]", "gamma", 2, pg, CON_LOWER_UPPER, 30, 31);
  Value pc[2] = {val_real(0), val_real(1)};
  trunc_draws("cauchy [1e6, inf)", "cauchy", 2, pc, CON_LOWER, 1e6, INFINITY);
  Value pt[3] = {val_real(4), val_real(0), val_real(1)};
  trunc_draws("student_t(4) [-2, -1.5]", "student_t", 3, pt, CON_LOWER_UPPER, -2, -1.5);
  {
    /* discrete: poisson(3) truncated to >= 12, mean from the pmf */
    init(&dc, "poisson", 1, pp3, CON_LOWER, 12, INFINITY);
    Rng r;
    rng_seed(&r, 5, 0);
    double s = 0, ok = 1, mn = 12;
    for (int i = 0; i < 20000; i++) {
      Value v;
      ok = ok && dist_call_rng(&dc, &r, &v, err, sizeof err) && v.k == V_INT;
      s += (double)v.i;
      if (v.i < mn) mn = (double)v.i;
    }
    double m = 0, z = 0;
    for (int k = 12; k < 80; k++) {
      double pk = exp(k * log(3.0) - 3 - lgamma(k + 1.0));
      m += k * pk;
      z += pk;
    }
    m /= z;
    tap_ok(ok && mn >= 12 && fabs(s / 20000 - m) < 0.02, "poisson(3) truncated to >= 12: mean %.4f vs %.4f", s / 20000, m);
  }

  /* ---- shapes of draws */
  Rng r;
  rng_seed(&r, 1, 1);
  Value out;
  err[0] = 0;
  dist_call_init(&dc, fn, 2, p6, CON_NONE, -INFINITY, INFINITY, ty_make(TY_VECTOR, 0), 1, (int[]){3}, err, sizeof err);
  tap_ok(dist_call_rng(&dc, &r, &out, err, sizeof err) && out.k == V_VEC && out.t->rows == 3, "vector[3] draw");
  dist_call_init(&dc, fn, 2, p6, CON_NONE, -INFINITY, INFINITY, ty_make(TY_REAL, 2), 2, (int[]){2, 3}, err, sizeof err);
  tap_ok(dist_call_rng(&dc, &r, &out, err, sizeof err) && out.k == V_ARR && out.a->n == 2 && out.a->e[1].k == V_ARR &&
             out.a->e[1].a->n == 3 && out.a->e[1].a->e[2].k == V_REAL,
         "real[2,3] draw");
  dist_call_init(&dc, fn, 2, p7, CON_NONE, -INFINITY, INFINITY, ty_make(TY_VECTOR, 0), 1, (int[]){4}, err, sizeof err);
  expect_err(dist_call_rng(&dc, &r, &out, err, sizeof err),
             "normal: sizes do not match: mu has 3 elements, the value has 4", "draw size mismatch");
  dist_call_init(&dc, fn, 2, p7, CON_NONE, -INFINITY, INFINITY, ty_make(TY_VECTOR, 0), 1, (int[]){3}, err, sizeof err);
  tap_ok(dist_call_rng(&dc, &r, &out, err, sizeof err) && fabs(out.t->d[1] - 1.0) < 6 && fabs(out.t->d[2] + 2.0) < 6,
         "vector mu draws element-wise");
  tap_ok(dist_rng_value(fn, &r, 2, p7, &out, err, sizeof err) && out.k == V_ARR && out.a->n == 3 &&
             out.a->e[0].k == V_REAL,
         "normal_rng(vector) is real[3]");
  tap_ok(dist_rng_value(fn, &r, 2, p6, &out, err, sizeof err) && out.k == V_REAL, "normal_rng(real) is real");
  tap_ok(dist_rng_value(dist_lookup("poisson"), &r, 1, pp3, &out, err, sizeof err) && out.k == V_INT,
         "poisson_rng is int");
  const double th[2] = {0.2, 0.9};
  Value pb[1] = {vec(2, th)};
  tap_ok(dist_rng_value(dist_lookup("bernoulli"), &r, 1, pb, &out, err, sizeof err) && out.k == V_ARR &&
             out.a->n == 2 && out.a->e[1].k == V_INT,
         "bernoulli_rng(vector) is int[2]");
  tap_ok(dist_rng_value(dist_lookup("dirichlet"), &r, 1, pd, &out, err, sizeof err) && out.k == V_VEC &&
             out.t->rows == 3 && fabs(out.t->d[0] + out.t->d[1] + out.t->d[2] - 1) < 1e-12,
         "dirichlet_rng is a simplex");
  Value pda = val_arr(2);
  pda.a->e[0] = vec(3, al);
  pda.a->e[1] = vec(3, al);
  Value pd2[1] = {pda};
  tap_ok(dist_rng_value(dist_lookup("dirichlet"), &r, 1, pd2, &out, err, sizeof err) && out.k == V_ARR &&
             out.a->n == 2 && out.a->e[1].k == V_VEC,
         "dirichlet_rng(vector[]) is vector[]");
  /* a whole-value family whose size comes from the declaration (rng_sized) */
  Value pl[1] = {val_real(2)};
  err[0] = 0;
  tap_ok(dist_call_init(&dc, dist_lookup("lkj_corr_cholesky"), 1, pl, CON_NONE, -INFINITY, INFINITY,
                        ty_make(TY_MATRIX, 1), 3, (int[]){2, 3, 3}, err, sizeof err) &&
             dist_call_rng(&dc, &r, &out, err, sizeof err) && out.k == V_ARR && out.a->n == 2 &&
             out.a->e[1].k == V_MAT && out.a->e[1].t->rows == 3 && fabs(out.a->e[1].t->d[0] - 1) < 1e-15,
         "lkj_corr_cholesky draws sized by the declaration, matrix[3,3][2] (%s)", err);
  /* whole-value lpdf over an array of draws is the sum of single draws */
  const double s1[3] = {0.2, 0.3, 0.5}, s2[3] = {0.6, 0.3, 0.1};
  double l1, l2, l12;
  Value xs2 = val_arr(2);
  xs2.a->e[0] = vec(3, s1);
  xs2.a->e[1] = vec(3, s2);
  int okd = lpdf("dirichlet", vec(3, s1), 1, pd, &l1) && lpdf("dirichlet", vec(3, s2), 1, pd, &l2) &&
            lpdf("dirichlet", xs2, 1, pd, &l12);
  tap_ok(okd && fabs(l12 - (l1 + l2)) < 1e-12, "dirichlet over vector[2] sums");
  /* dirichlet(1,2,3) at (0.2,0.3,0.5): log(Gamma(6)/(Gamma(1)Gamma(2)Gamma(3))) + log(0.3) + 2 log(0.5) */
  tap_near(l1, log(60.0) + log(0.3) + 2 * log(0.5), 1e-12, "dirichlet density value through the layer");

  /* empty containers: nothing to score, nothing to draw */
  Value ev = val_vec(0), pev[2] = {val_vec(0), val_real(1)};
  err[0] = 0;
  tap_ok(dist_call_init(&dc, fn, 2, pev, CON_NONE, -INFINITY, INFINITY, ty_make(TY_VECTOR, 0), 1, (int[]){0}, err,
                        sizeof err) &&
             dist_call_lpdf(&dc, ev, &got, err, sizeof err) && got == 0 &&
             dist_call_rng(&dc, &r, &out, err, sizeof err) && out.k == V_VEC && out.t->rows == 0,
         "empty vector mu: lpdf 0, empty draw (%s)", err);
  Value pde[1] = {val_arr(0)};
  tap_ok(dist_lpdf_value(dist_lookup("dirichlet"), val_arr(0), 1, pde, &got, err, sizeof err) && got == 0,
         "dirichlet over an empty array of vectors sums to 0 (%s)", err);

  /* ---- lcdf / lccdf through the layer */
  tap_ok(dist_lcdf_value(fn, vec(3, y3), 2, p2, false, &got, err, sizeof err), "normal_lcdf(vector)");
  want = 0;
  for (int i = 0; i < 3; i++) {
    pp[0] = mu3[i];
    pp[1] = s3[i];
    want += fn->lcdf1(y3[i], pp);
  }
  tap_ok(fabs(got - want) < 1e-12, "normal_lcdf sums elements");
  expect_err(dist_lcdf_value(dist_lookup("dirichlet"), vec(3, s1), 1, pd, false, &got, err, sizeof err),
             "dirichlet: no lcdf is available for this family", "no CDF for whole-value families");
  /* ---- support_reads: every family with a support says which parameters it
     reads (dist.c then evaluates it once for scalar read parameters); the
     support must not move when any other parameter varies, and must move
     with each parameter said to be read */
  {
    static const double vals[][3] = {
        [PD_ANY] = {-2.5, 0, 3},    [PD_POS] = {0.5, 2, 7},       [PD_NONNEG] = {0, 1.5, 9},
        [PD_PROB] = {0, 0.3, 1},    [PD_INT_NONNEG] = {0, 3, 16}, [PD_INT] = {-4, 0, 5},
        [PD_ANY_INF] = {-1, 0, 2.5}, [PD_CUSTOM] = {0, 1, 2}};
    int nsup = 0, stated = 0, steady = 0, moving = 0, nread = 0;
    for (int k = 0; tab[k]; k++) {
      const DistFamily *f = tab[k];
      if (!f->support) continue;
      nsup++;
      if (!tap_ok(f->support_reads & DIST_SUPPORT_STATED, "%s states the parameters its support reads",
                  f->name))
        continue;
      stated++;
      double base[DIST_MAX_PARAMS] = {0}, lo0, hi0;
      for (int i = 0; i < f->nparams; i++) base[i] = vals[f->pdom[i]][0];
      f->support(base, &lo0, &hi0);
      for (int i = 0; i < f->nparams; i++) {
        bool same = true;
        for (int v = 1; v < 3; v++) {
          double p[DIST_MAX_PARAMS], lo, hi;
          memcpy(p, base, sizeof p);
          p[i] = vals[f->pdom[i]][v];
          f->support(p, &lo, &hi);
          same = same && lo == lo0 && hi == hi0;
        }
        if (dist_support_reads(f, i)) {
          nread++;
          if (tap_ok(!same, "%s's support moves with %s, which it says it reads", f->name, f->pnames[i]))
            moving++;
        } else if (tap_ok(same, "%s's support does not move with %s", f->name, f->pnames[i])) {
          steady++;
        }
      }
    }
    tap_ok(nsup >= 16 && stated == nsup, "all %d families with a support state what it reads", nsup);
    tap_diag("support_reads: %d steady parameters, %d of %d read ones move", steady, moving, nread);
    tap_ok(nread >= 4 && moving == nread, "binomial, binomial_logit, uniform, discrete_uniform read theirs");

    /* through dist_call_init: scalar N beside 3 logits takes the one support;
       per-element N still gives the widest bound; an empty support in the
       second element of a vector still fails */
    DistCall sc;
    double a3[3] = {-1, 0.5, 2}, n2[2] = {3, 7};
    Value pbl[2] = {val_int(16), vec(3, a3)};
    tap_ok(dist_call_init(&sc, dist_lookup("binomial_logit"), 2, pbl, CON_NONE, -INFINITY, INFINITY,
                          ty_make(TY_INT, 0), 0, NULL, err, sizeof err) &&
               sc.lower == 0 && sc.upper == 16 && !sc.truncated,
           "binomial_logit(16, vector): support [0, 16] (%s)", err);
    Value pbn[2] = {vec(2, n2), val_real(0.3)};
    tap_ok(dist_call_init(&sc, dist_lookup("binomial"), 2, pbn, CON_NONE, -INFINITY, INFINITY,
                          ty_make(TY_INT, 0), 0, NULL, err, sizeof err) &&
               sc.lower == 0 && sc.upper == 7,
           "binomial([3, 7], 0.3): support [0, 7] over the elements (%s)", err);
    double lo2[2] = {0, 5};
    Value pun[2] = {vec(2, lo2), val_real(3)};
    expect_err(init(&sc, "uniform", 2, pun, CON_NONE, -INFINITY, INFINITY),
               "uniform: alpha must be less than beta, got 5 and 3",
               "uniform([0, 5], 3): the second element's empty support is found");
    /* the same family stating that its support reads nothing is evaluated
       once: the second element is not looked at (the shortcut is taken) */
    DistFamily once = *dist_lookup("uniform");
    once.support_reads = DIST_SUPPORT_READS(0);
    err[0] = 0;
    tap_ok(dist_call_init(&sc, &once, 2, pun, CON_NONE, -INFINITY, INFINITY, ty_make(TY_REAL, 0), 0,
                          NULL, err, sizeof err) &&
               sc.lower == 0 && sc.upper == 3,
           "a support said to read no vector parameter is evaluated for the first element only (%s)", err);
    once.support_reads = 0; /* not stated (a host's family): every element */
    expect_err(dist_call_init(&sc, &once, 2, pun, CON_NONE, -INFINITY, INFINITY, ty_make(TY_REAL, 0), 0,
                              NULL, err, sizeof err),
               "uniform: alpha must be less than beta, got 5 and 3",
               "a support whose reads are not stated is evaluated per element");
  }
  return tap_done();
}
