/* test_mv.c — categorical, categorical_logit, dirichlet, multi_normal,
 * multi_normal_cholesky and lkj_corr_cholesky: log densities against mpmath
 * (mv_reference.h, from gen_mv_reference.py), parameter errors and their
 * messages, arrays of draws, normalisation, and sampler moments. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mv_reference.h"
#include "stdlib/dist.h"
#include "tap.h"

extern const DistFamily dist_categorical, dist_categorical_logit, dist_dirichlet,
    dist_multi_normal, dist_multi_normal_cholesky, dist_lkj_corr_cholesky;

static const DistFamily *const fams[] = {&dist_categorical, &dist_categorical_logit,
                                         &dist_dirichlet, &dist_multi_normal,
                                         &dist_multi_normal_cholesky, &dist_lkj_corr_cholesky};

static const DistFamily *fam(const char *name) {
  for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
    if (strcmp(fams[i]->name, name) == 0) return fams[i];
  return NULL;
}

static Value vec(int n, const double *d) {
  Value v = val_vec(n);
  for (int i = 0; i < n; i++) v.t->d[i] = d[i];
  return v;
}

static Value mat(int r, int c, const double *colmajor) {
  Value v = val_mat(r, c);
  for (int i = 0; i < r * c; i++) v.t->d[i] = colmajor[i];
  return v;
}

static char err[256];

static void test_reference(void) {
  for (size_t i = 0; i < sizeof mv_ref / sizeof mv_ref[0]; i++) {
    const MvRef *r = &mv_ref[i];
    const DistFamily *f = fam(r->fam);
    int K = r->K;
    Value p[2], x;
    if (!strcmp(r->fam, "categorical") || !strcmp(r->fam, "categorical_logit")) {
      p[0] = vec(K, r->a);
      x = val_int((int64_t)r->x[0]);
    } else if (!strcmp(r->fam, "dirichlet")) {
      p[0] = vec(K, r->a);
      x = vec(K, r->x);
    } else if (!strcmp(r->fam, "lkj_corr_cholesky")) {
      p[0] = val_real(r->a[0]);
      x = mat(K, K, r->x);
    } else {
      p[0] = vec(K, r->a);
      p[1] = mat(K, K, r->b);
      x = vec(K, r->x);
    }
    double got = NAN;
    err[0] = 0;
    bool ok = f->lpdf(p, x, &got, err, sizeof err);
    double want = r->lp;
    int good = ok && (want == 0 ? fabs(got) <= 1e-12
                                : isinf(want) ? got == want
                                              : fabs(got - want) <= 1e-10 * fabs(want));
    tap_ok(good, "%s K=%d reference point %zu", r->fam, K, i);
    if (!good) tap_diag("got %.17g (%s), want %.17g", got, ok ? "ok" : err, want);
  }
}

/* The call fails and its message is exactly want. */
static void expect_err(bool ok, const char *want, const char *what) {
  tap_ok(!ok, "%s fails", what);
  tap_streq(err, want, "%s message", what);
}

static void test_errors(void) {
  double out;
  Value p[2];
  p[0] = vec(3, (double[]){1, 0, 2});
  expect_err(dist_dirichlet.check(p, err, sizeof err), "dirichlet: alpha[2] must be positive, got 0",
             "dirichlet alpha with a zero");
  expect_err(dist_dirichlet.lpdf(p, vec(3, (double[]){.2, .3, .5}), &out, err, sizeof err),
             "dirichlet: alpha[2] must be positive, got 0", "dirichlet lpdf with bad alpha");
  p[0] = vec(2, (double[]){1, 2});
  expect_err(dist_dirichlet.lpdf(p, vec(3, (double[]){.2, .3, .5}), &out, err, sizeof err),
             "dirichlet: sizes do not match: alpha has 2 elements, theta has 3",
             "dirichlet size mismatch");

  p[0] = vec(2, (double[]){0.5, 0.4});
  expect_err(dist_categorical.check(p, err, sizeof err),
             "categorical: theta is not a simplex (sums to 0.9)", "categorical non-simplex");
  p[0] = vec(2, (double[]){1.1, -0.1});
  expect_err(dist_categorical.check(p, err, sizeof err),
             "categorical: theta is not a simplex (theta[2] = -0.1 is negative)",
             "categorical negative entry");
  p[0] = vec(2, (double[]){0.5, 0.5});
  expect_err(dist_categorical.lpdf(p, val_real(1), &out, err, sizeof err),
             "categorical: y must be an int, got real", "categorical real value");
  p[0] = vec(2, (double[]){0.5, INFINITY});
  expect_err(dist_categorical_logit.check(p, err, sizeof err),
             "categorical_logit: beta[2] must be finite, got inf", "categorical_logit inf");

  p[0] = vec(2, (double[]){0, 0});
  p[1] = mat(2, 2, (double[]){1, 2, 2, 1}); /* symmetric, indefinite */
  expect_err(dist_multi_normal.check(p, err, sizeof err),
             "multi_normal: Sigma is not symmetric positive definite", "indefinite Sigma");
  p[1] = mat(2, 2, (double[]){1, 0.5, 0.4, 1}); /* not symmetric */
  expect_err(dist_multi_normal.check(p, err, sizeof err),
             "multi_normal: Sigma is not symmetric positive definite", "asymmetric Sigma");
  p[0] = vec(3, (double[]){0, 0, 0});
  p[1] = mat(3, 3, (double[]){1, 0, 0, 0, 1, 0, 0, 0, 1});
  expect_err(dist_multi_normal.lpdf(p, vec(2, (double[]){1, 2}), &out, err, sizeof err),
             "multi_normal: sizes do not match: mu has 3 elements, y has 2", "mu/y mismatch");
  p[1] = mat(2, 2, (double[]){1, 0, 0, 1});
  expect_err(dist_multi_normal.check(p, err, sizeof err),
             "multi_normal: sizes do not match: mu has 3 elements, Sigma is 2x2",
             "mu/Sigma mismatch");
  p[0] = vec(2, (double[]){0, NAN});
  expect_err(dist_multi_normal.check(p, err, sizeof err), "multi_normal: mu[2] must be finite, got nan",
             "mu with NaN");
  p[0] = vec(2, (double[]){0, 0});
  p[1] = mat(2, 2, (double[]){1, 0.3, 0, -1});
  expect_err(dist_multi_normal_cholesky.check(p, err, sizeof err),
             "multi_normal_cholesky: L[2,2] must be positive and finite, got -1",
             "negative Cholesky diagonal");

  p[0] = val_real(0);
  expect_err(dist_lkj_corr_cholesky.check(p, err, sizeof err),
             "lkj_corr_cholesky: eta must be positive and finite, got 0", "lkj eta = 0");
  p[0] = val_real(2);
  Rng r;
  rng_seed(&r, 1, 0);
  Value v;
  expect_err(dist_lkj_corr_cholesky.rng(&r, p, &v, err, sizeof err),
             "lkj_corr_cholesky: eta does not give the matrix size; declare the value as "
             "cholesky_factor_corr[K]",
             "lkj draw without a size");
  expect_err(dist_lkj_corr_cholesky.lpdf(p, mat(2, 3, (double[]){1, 0, 0, 1, 0, 0}), &out, err,
                                         sizeof err),
             "lkj_corr_cholesky: L must be a square matrix, got 2x3", "lkj non-square");

  /* outside the support: -inf, not an error */
  p[0] = vec(2, (double[]){1, 2});
  tap_ok(dist_dirichlet.lpdf(p, vec(2, (double[]){0.5, 0.6}), &out, err, sizeof err) &&
             out == -INFINITY,
         "dirichlet of a non-simplex is -inf");
  p[0] = val_real(2);
  tap_ok(dist_lkj_corr_cholesky.lpdf(p, mat(2, 2, (double[]){1, 0.5, 0, 0.5}), &out, err,
                                     sizeof err) &&
             out == -INFINITY,
         "lkj of a matrix with non-unit rows is -inf");
}

/* ---- arrays of draws and normalisation ---------------------------------- */

static void test_arrays(void) {
  double out, th[3] = {0.2, 0.5, 0.3};
  Value p[2];
  p[0] = vec(3, th);
  Value ys = val_arr(3);
  ys.a->e[0] = val_int(1), ys.a->e[1] = val_int(3), ys.a->e[2] = val_int(3);
  tap_ok(dist_categorical.lpdf(p, ys, &out, err, sizeof err) &&
             fabs(out - (log(0.2) + 2 * log(0.3))) < 1e-14,
         "categorical over an int array sums the draws");
  tap_ok(dist_categorical_logit.lpdf(p, ys, &out, err, sizeof err) &&
             fabs(out - (0.2 + 0.3 + 0.3 - 3 * log(exp(0.2) + exp(0.5) + exp(0.3)))) < 1e-14,
         "categorical_logit over an int array sums the draws");

  p[0] = vec(2, (double[]){1, -1});
  p[1] = mat(2, 2, (double[]){2, 0.6, 0.6, 1});
  Value y1 = vec(2, (double[]){0.3, 0.2}), y2 = vec(2, (double[]){2.5, -3});
  double a, b;
  dist_multi_normal.lpdf(p, y1, &a, err, sizeof err);
  dist_multi_normal.lpdf(p, y2, &b, err, sizeof err);
  Value yy = val_arr(2);
  yy.a->e[0] = y1, yy.a->e[1] = y2;
  tap_ok(dist_multi_normal.lpdf(p, yy, &out, err, sizeof err) && fabs(out - (a + b)) < 1e-13,
         "multi_normal over an array of vectors sums the draws");

  /* densities integrate to 1 over their free coordinates (midpoint rule) */
  int n = 200000;
  double s = 0;
  p[0] = vec(2, (double[]){2.5, 1.8});
  for (int i = 0; i < n; i++) {
    double t = (i + 0.5) / n;
    dist_dirichlet.lpdf(p, vec(2, (double[]){t, 1 - t}), &out, err, sizeof err);
    s += exp(out) / n;
  }
  tap_ok(fabs(s - 1) < 1e-8, "dirichlet(2.5, 1.8) integrates to 1 (%.12f)", s);
  s = 0;
  p[0] = val_real(1.7);
  for (int i = 0; i < n; i++) {
    double rr = -1 + 2 * (i + 0.5) / n;
    dist_lkj_corr_cholesky.lpdf(p, mat(2, 2, (double[]){1, rr, 0, sqrt(1 - rr * rr)}), &out, err,
                                sizeof err);
    s += exp(out) * 2 / n;
  }
  tap_ok(fabs(s - 1) < 1e-6, "lkj_corr_cholesky K=2 integrates to 1 (%.9f)", s);
}

/* ---- sampler moments ------------------------------------------------------ */

#define NDRAW 200000

static int within(double got, double want, double se, const char *what) {
  return tap_ok(fabs(got - want) <= 5 * se, "%s: %g vs %g (se %g)", what, got, want, se);
}

static void test_categorical_freq(const DistFamily *f, Value p0, const double *prob, int K) {
  Rng r;
  rng_seed(&r, 7, K);
  int cnt[8] = {0}, bad = 0;
  for (int i = 0; i < NDRAW; i++) {
    Value v;
    if (!f->rng(&r, &p0, &v, err, sizeof err) || v.k != V_INT || v.i < 1 || v.i > K) {
      bad++;
      continue;
    }
    cnt[v.i - 1]++;
  }
  tap_ok(bad == 0, "%s draws are ints in 1..%d", f->name, K);
  for (int k = 0; k < K; k++) {
    char what[64];
    snprintf(what, sizeof what, "%s frequency of %d", f->name, k + 1);
    within((double)cnt[k] / NDRAW, prob[k], sqrt(prob[k] * (1 - prob[k]) / NDRAW), what);
  }
}

static void test_dirichlet_moments(const double *alpha, int K, uint64_t seed) {
  Rng r;
  rng_seed(&r, seed, 0);
  Value p = vec(K, alpha);
  double a0 = 0, s[8] = {0}, ss[8] = {0};
  int bad = 0;
  for (int k = 0; k < K; k++) a0 += alpha[k];
  for (int i = 0; i < NDRAW; i++) {
    Value v;
    dist_dirichlet.rng(&r, &p, &v, err, sizeof err);
    double sum = 0;
    for (int k = 0; k < K; k++) {
      double x = v.t->d[k];
      if (!(x >= 0)) bad++;
      sum += x;
      s[k] += x;
      ss[k] += x * x;
    }
    if (fabs(sum - 1) > 1e-12) bad++;
  }
  tap_ok(bad == 0, "dirichlet draws are simplexes (%d bad)", bad);
  for (int k = 0; k < K; k++) {
    /* the marginal is Beta(a, b) */
    double a = alpha[k], b = a0 - a;
    double mean = a / a0, var = a * b / (a0 * a0 * (a0 + 1));
    double kurt = 6 * ((a - b) * (a - b) * (a0 + 1) - a * b * (a0 + 2)) / (a * b * (a0 + 2) * (a0 + 3));
    double m4 = var * var * (3 + kurt);
    double m = s[k] / NDRAW, v = (ss[k] - NDRAW * m * m) / (NDRAW - 1);
    char what[80];
    snprintf(what, sizeof what, "dirichlet alpha[%d]=%g mean", k + 1, a);
    within(m, mean, sqrt(var / NDRAW), what);
    snprintf(what, sizeof what, "dirichlet alpha[%d]=%g variance", k + 1, a);
    within(v, var, sqrt((m4 - var * var) / NDRAW), what);
  }
}

static void test_mvn_moments(bool chol) {
  const DistFamily *f = chol ? &dist_multi_normal_cholesky : &dist_multi_normal;
  double mu[3] = {1, -2, 0.5};
  double S[9] = {2, 0.6, -0.4, 0.6, 1, 0.3, -0.4, 0.3, 0.5}; /* symmetric, col-major */
  /* its Cholesky factor, computed by hand: L L' = S */
  double l11 = sqrt(2), l21 = 0.6 / l11, l31 = -0.4 / l11;
  double l22 = sqrt(1 - l21 * l21), l32 = (0.3 - l31 * l21) / l22;
  double l33 = sqrt(0.5 - l31 * l31 - l32 * l32);
  double L[9] = {l11, l21, l31, 0, l22, l32, 0, 0, l33};
  Value p[2] = {vec(3, mu), mat(3, 3, chol ? L : S)};
  Rng r;
  rng_seed(&r, chol ? 91 : 90, 0);
  double s[3] = {0}, ss[3] = {0}, s01 = 0;
  for (int i = 0; i < NDRAW; i++) {
    Value v;
    f->rng(&r, p, &v, err, sizeof err);
    for (int k = 0; k < 3; k++) {
      s[k] += v.t->d[k];
      ss[k] += v.t->d[k] * v.t->d[k];
    }
    s01 += (v.t->d[0] - mu[0]) * (v.t->d[1] - mu[1]);
  }
  for (int k = 0; k < 3; k++) {
    double var = S[k * 3 + k], m = s[k] / NDRAW, v = (ss[k] - NDRAW * m * m) / (NDRAW - 1);
    char what[80];
    snprintf(what, sizeof what, "%s component %d mean", f->name, k + 1);
    within(m, mu[k], sqrt(var / NDRAW), what);
    snprintf(what, sizeof what, "%s component %d variance", f->name, k + 1);
    within(v, var, sqrt(2 * var * var / NDRAW), what);
  }
  within(s01 / NDRAW, S[1], sqrt((S[0] * S[4] + S[1] * S[1]) / NDRAW), "covariance of 1 and 2");
}

/* Off-diagonal correlations of R = L L' under LKJ(eta): each is 2 Beta(b, b) - 1
   with b = eta - 1 + K/2: mean 0, variance 1/(2 eta + K - 1), E r^4 =
   3/((2b+1)(2b+3)). */
static void test_lkj_moments(int K, double eta, uint64_t seed) {
  Rng r;
  rng_seed(&r, seed, 0);
  Value p = val_real(eta);
  int sizes[2] = {K, K}, bad = 0;
  double s[5][5] = {{0}}, ss[5][5] = {{0}};
  for (int i = 0; i < NDRAW; i++) {
    Value v;
    double lp;
    if (!dist_lkj_corr_cholesky.rng_sized(&r, &p, 2, sizes, &v, err, sizeof err) ||
        v.k != V_MAT || v.t->rows != K) {
      bad++;
      continue;
    }
    if (i < 1000 && (!dist_lkj_corr_cholesky.lpdf(&p, v, &lp, err, sizeof err) || !isfinite(lp)))
      bad++;
    const double *L = v.t->d;
    for (int a = 0; a < K; a++)
      for (int b = 0; b < a; b++) {
        double rab = 0;
        for (int q = 0; q <= b; q++) rab += L[q * K + a] * L[q * K + b];
        s[a][b] += rab;
        ss[a][b] += rab * rab;
      }
  }
  tap_ok(bad == 0, "lkj K=%d draws are Cholesky factors of correlation matrices", K);
  double bb = eta - 1 + K / 2.0, var = 1 / (2 * eta + K - 1);
  double m4 = 3 / ((2 * bb + 1) * (2 * bb + 3));
  tap_ok(fabs(var - 1 / (2 * bb + 1)) < 1e-15, "lkj marginal variance identity");
  for (int a = 0; a < K; a++)
    for (int b = 0; b < a; b++) {
      char what[80];
      snprintf(what, sizeof what, "lkj(K=%d, eta=%g) r[%d,%d] mean", K, eta, a + 1, b + 1);
      within(s[a][b] / NDRAW, 0, sqrt(var / NDRAW), what);
      snprintf(what, sizeof what, "lkj(K=%d, eta=%g) r[%d,%d] variance", K, eta, a + 1, b + 1);
      within(ss[a][b] / NDRAW, var, sqrt((m4 - var * var) / NDRAW), what);
    }
}

static void test_moments(void) {
  double th[4] = {0.1, 0.2, 0.3, 0.4};
  test_categorical_freq(&dist_categorical, vec(4, th), th, 4);
  double beta[3] = {0.5, -1, 2}, z = exp(0.5) + exp(-1) + exp(2);
  double sm[3] = {exp(0.5) / z, exp(-1) / z, exp(2) / z};
  test_categorical_freq(&dist_categorical_logit, vec(3, beta), sm, 3);
  test_dirichlet_moments((double[]){0.3, 1.0, 2.5, 6}, 4, 61);
  test_dirichlet_moments((double[]){0.01, 0.02, 0.005}, 3, 62); /* tiny shapes: log-space draws */
  test_mvn_moments(false);
  test_mvn_moments(true);
  test_lkj_moments(4, 1.5, 71);
  test_lkj_moments(3, 0.7, 72);
  test_lkj_moments(2, 4, 73);
}

static void test_records(void) {
  tap_ok(dist_dirichlet.support_con == CON_SIMPLEX && dist_lkj_corr_cholesky.support_con ==
             CON_CHOL_CORR && dist_multi_normal.support_con == CON_NONE,
         "structured supports");
  tap_ok(dist_categorical.vtype.base == TY_INT && dist_categorical.ptype[0].base == TY_VECTOR &&
             dist_categorical.discrete && dist_categorical_logit.discrete,
         "categorical: int draws, vector parameter");
  tap_ok(dist_multi_normal.ptype[1].base == TY_MATRIX && dist_multi_normal.vtype.base == TY_VECTOR &&
             dist_lkj_corr_cholesky.vtype.base == TY_MATRIX,
         "multivariate types");
  for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
    tap_ok(fams[i]->lpdf && fams[i]->rng && fams[i]->check && !fams[i]->lpdf1,
           "%s is a whole-value family", fams[i]->name);
}

int main(void) {
  gc_init();
  test_reference();
  test_errors();
  test_arrays();
  test_moments();
  test_records();
  return tap_done();
}
