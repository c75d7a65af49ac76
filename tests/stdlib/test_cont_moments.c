/* test_cont_moments.c — the continuous families' samplers: 200000 draws per
 * family (fixed seeds), sample mean and variance against the analytic values
 * within 5 standard errors (SE from the analytic 4th central moment), and a
 * Kolmogorov-Smirnov check of the draws against the family's own CDF, which
 * test_cont checks against mpmath.  Heavy-tailed cases (cauchy, student_t
 * with few degrees of freedom) get quantile checks instead of moments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stdlib/dist.h"
#include "tap.h"

#define N 200000

static double xs[N];

typedef struct {
  const char *fam;
  int np;
  double p[3];
  double m[5]; /* raw moments E[X^k], k = 0..4; m[0] = 0 means "no moments" */
  double central[3]; /* or mean, variance, 4th central moment when central[1] > 0 */
} Case;

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void check_moments(const Case *c) {
  double mu = c->m[1], var = c->m[2] - mu * mu;
  double mu4 = c->m[4] - 4 * c->m[3] * mu + 6 * c->m[2] * mu * mu - 3 * mu * mu * mu * mu;
  if (c->central[1] > 0) {
    mu = c->central[0];
    var = c->central[1];
    mu4 = c->central[2];
  }
  double s = 0, s2 = 0;
  for (int i = 0; i < N; i++) s += xs[i];
  double m = s / N;
  for (int i = 0; i < N; i++) s2 += (xs[i] - m) * (xs[i] - m);
  double v = s2 / (N - 1);
  double se_m = sqrt(var / N), se_v = sqrt((mu4 - var * var) / N);
  if (!tap_ok(fabs(m - mu) < 5 * se_m, "%s(%g, %g, %g) mean", c->fam, c->p[0], c->p[1], c->p[2]))
    tap_diag("got %.8g want %.8g (se %.3g)", m, mu, se_m);
  if (!tap_ok(fabs(v - var) < 5 * se_v, "%s(%g, %g, %g) variance", c->fam, c->p[0], c->p[1], c->p[2]))
    tap_diag("got %.8g want %.8g (se %.3g)", v, var, se_v);
}

/* sqrt(N) * D below 2.1: a false alarm has probability about 3e-4 */
static void check_ks(const DistFamily *f, const Case *c) {
  qsort(xs, N, sizeof xs[0], cmp_d);
  double dmax = 0;
  for (int i = 0; i < N; i++) {
    double F = exp(f->lcdf1(xs[i], c->p));
    double d1 = fabs(F - (double)i / N), d2 = fabs(F - (double)(i + 1) / N);
    if (d1 > dmax) dmax = d1;
    if (d2 > dmax) dmax = d2;
  }
  if (!tap_ok(sqrt((double)N) * dmax < 2.1, "%s(%g, %g, %g) Kolmogorov-Smirnov", c->fam, c->p[0], c->p[1], c->p[2]))
    tap_diag("sqrt(N) D = %.3f", sqrt((double)N) * dmax);
}

/* fraction of draws below the analytic quantile at probability q */
static void check_quantile(const Case *c, double xq, double q) {
  int below = 0;
  for (int i = 0; i < N; i++) below += xs[i] <= xq;
  double se = sqrt(q * (1 - q) / N);
  if (!tap_ok(fabs((double)below / N - q) < 5 * se, "%s(%g, %g, %g) P(X <= %g) = %g", c->fam, c->p[0], c->p[1],
              c->p[2], xq, q))
    tap_diag("got %.6f", (double)below / N);
}

/* symmetric families: mean, variance and 4th central moment directly (raw
   moments would cancel catastrophically for normal(-1000, 0.001)) */
static void set_central(Case *c, double mu, double var, double mu4) {
  c->m[0] = 1;
  c->central[0] = mu;
  c->central[1] = var;
  c->central[2] = mu4;
}

int main(void) {
  gc_init();
  Case cases[40];
  int nc = 0;
#define ADD(F, NP, A, B, C) (cases[nc] = (Case){F, NP, {A, B, C}, {0}, {0}}, &cases[nc++])
  Case *c;
  c = ADD("normal", 2, 1.5, 2.0, 0); set_central(c, 1.5, 4.0, 3 * 16.0);
  c = ADD("normal", 2, -1e3, 1e-3, 0); set_central(c, -1e3, 1e-6, 3e-12);
  c = ADD("std_normal", 0, 0, 0, 0); set_central(c, 0, 1, 3);
  {
    /* student_t(10, 1, 2): variance s^2 nu/(nu-2), mu4 = 3 s^4 nu^2/((nu-2)(nu-4)) */
    double nu = 10, s = 2;
    c = ADD("student_t", 3, nu, 1, s);
    set_central(c, 1, s * s * nu / (nu - 2), 3 * s * s * s * s * nu * nu / ((nu - 2) * (nu - 4)));
  }
  ADD("student_t", 3, 2.5, 0, 1);           /* quantiles only */
  ADD("cauchy", 2, -2, 3, 0);               /* quantiles only */
  {
    /* logistic: variance s^2 pi^2/3, excess kurtosis 6/5 */
    double s = 1.5, v = s * s * M_PI * M_PI / 3;
    c = ADD("logistic", 2, 0.5, s, 0);
    set_central(c, 0.5, v, v * v * (3 + 1.2));
  }
  c = ADD("lognormal", 2, 0.3, 0.4, 0);
  for (int k = 0; k <= 4; k++) c->m[k] = exp(k * 0.3 + k * k * 0.16 / 2);
  c = ADD("exponential", 1, 2.5, 0, 0);
  for (int k = 0; k <= 4; k++) c->m[k] = tgamma(k + 1.0) / pow(2.5, k);
  static const double gam[][2] = {{0.2, 3}, {4.5, 0.5}, {1, 1}, {300, 20}};
  for (int j = 0; j < 4; j++) {
    double a = gam[j][0], b = gam[j][1];
    c = ADD("gamma", 2, a, b, 0);
    c->m[0] = 1;
    for (int k = 1; k <= 4; k++) c->m[k] = c->m[k - 1] * (a + k - 1) / b;
  }
  c = ADD("inv_gamma", 2, 9, 4, 0);
  c->m[0] = 1;
  for (int k = 1; k <= 4; k++) c->m[k] = c->m[k - 1] * 4 / (9 - k);
  static const double wb[][2] = {{0.7, 2}, {3, 0.5}};
  for (int j = 0; j < 2; j++) {
    c = ADD("weibull", 2, wb[j][0], wb[j][1], 0);
    for (int k = 0; k <= 4; k++) c->m[k] = pow(wb[j][1], k) * tgamma(1 + k / wb[j][0]);
  }
  static const double bt[][2] = {{0.3, 0.6}, {2, 7}, {150, 60}};
  for (int j = 0; j < 3; j++) {
    double a = bt[j][0], b = bt[j][1];
    c = ADD("beta", 2, a, b, 0);
    c->m[0] = 1;
    for (int k = 1; k <= 4; k++) c->m[k] = c->m[k - 1] * (a + k - 1) / (a + b + k - 1);
  }
  c = ADD("uniform", 2, -2, 5, 0);
  for (int k = 0; k <= 4; k++) c->m[k] = (pow(5, k + 1) - pow(-2, k + 1)) / ((k + 1) * 7.0);

  for (int i = 0; i < nc; i++) {
    const Case *cs = &cases[i];
    const DistFamily *f = dist_lookup(cs->fam);
    if (!tap_ok(f && f->rng1, "%s has a sampler", cs->fam)) continue;
    Rng r;
    rng_seed(&r, 20240601, (uint64_t)i);
    int finite = 1;
    for (int j = 0; j < N; j++) {
      xs[j] = f->rng1(&r, cs->p);
      finite &= !isnan(xs[j]);
    }
    tap_ok(finite, "%s draws are numbers", cs->fam);
    int in_support = 1;
    if (f->support) {
      double lo, hi;
      f->support(cs->p, &lo, &hi);
      for (int j = 0; j < N; j++) in_support &= xs[j] >= lo && xs[j] <= hi;
    }
    tap_ok(in_support, "%s draws lie in the support", cs->fam);
    if (cs->m[0] != 0) check_moments(cs);
    if (!strcmp(cs->fam, "cauchy")) {
      /* quantiles mu + sigma tan(pi (q - 1/2)) */
      check_quantile(cs, -2.0, 0.5);
      check_quantile(cs, 1.0, 0.75);
      check_quantile(cs, -2.0 - 3.0 * tan(M_PI * 0.49), 0.01);
    }
    if (!strcmp(cs->fam, "student_t") && cs->p[0] == 2.5) {
      check_quantile(cs, 0.0, 0.5);
      /* P(T <= 1) for nu = 2.5 from mpmath: 1 - I_{2.5/3.5}(5/4, 1/2) / 2 */
      check_quantile(cs, 1.0, 0.797969486360863);
    }
    check_ks(f, cs);
  }
  return tap_done();
}
