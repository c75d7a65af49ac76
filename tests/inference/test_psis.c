/* test_psis.c — the Pareto k-hat of importance weights (inference/psis.c)
 * on weights drawn with known tails.  Weights w = U^-k are Pareto with shape
 * k: their exceedances over any threshold are exactly generalized Pareto
 * with shape k, so k-hat must find k up to its sampling error.  The
 * tolerances are Monte Carlo ones: over R replications the mean k-hat is
 * within 4 standard errors of k (plus the pull of the weakly informative
 * prior towards 0.5, 10 / (M + 10) of the distance), and the spread across
 * replications is near the asymptotic sd (1 + k) / sqrt(M).
 *
 * Beside them: psis_k against the computation written again here from the
 * paper's formulas (Vehtari et al. 2024, appendix; Zhang and Stephens 2009)
 * in long double, and against values of the loo R package (2.5.1, psis()
 * with r_eff = 1) pinned for fixed log weights; and bounded weights whose
 * log range is huge, the case of a proposal far wider than the posterior
 * (the collinear regression's amortized q of docs/engines.md): k-hat is
 * large at a few hundred draws and falls with more, as loo's does — the
 * fitted tail is that of the draws at hand, not the asymptotic one. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/value.h"
#include "inference/psis.h"
#include "stdlib/rng.h"
#include "tests/tap.h"

enum { R = 200, NMAX = 100000 };

static double lw_big[NMAX];

static void check_tail(double k, int n, uint64_t seed) {
  Rng rng;
  rng_seed(&rng, seed, 0);
  double *lw = lw_big, sum = 0, sum2 = 0;
  for (int r = 0; r < R; r++) {
    /* log weights on an arbitrary scale: k-hat must not depend on it */
    for (int i = 0; i < n; i++) lw[i] = -k * log(rng_uniform(&rng)) - 1234.5;
    double kh = psis_k(n, lw);
    sum += kh, sum2 += kh * kh;
  }
  double mean = sum / R, sd = sqrt((sum2 - R * mean * mean) / (R - 1));
  double M = ceil(fmin(0.2 * n, 3 * sqrt((double)n)));
  double pull = 10 / (M + 10) * (0.5 - k);
  double asym = (1 + k) / sqrt(M);
  tap_ok(fabs(mean - (k + pull)) < 4 * sd / sqrt(R) + 0.02,
         "k = %.1f, S = %d: mean k-hat %.3f over %d replications (sd %.3f; prior pull %+.3f)", k, n, mean, R,
         sd, pull);
  tap_ok(sd > 0.5 * asym && sd < 2 * asym, "k = %.1f, S = %d: sd of k-hat %.3f near (1 + k) / sqrt(M) = %.3f",
         k, n, sd, asym);
}

static int ref_cmp(const void *a, const void *b) {
  long double x = *(const long double *)a, y = *(const long double *)b;
  return (x > y) - (x < y);
}

/* k-hat from the paper's formulas, written independently of psis.c: the
 * M = ceil(min(S/5, 3 sqrt(S))) largest weights' exceedances over the
 * (M+1)-th largest, scaled by the largest; theta_j = 1/x_(M) + (1 -
 * sqrt(m / (j - 1/2))) / (3 x*) for j = 1..m, m = 30 + floor(sqrt(M)), x*
 * the first quartile x_(floor(M/4 + 1/2)); l(theta) = M (log(-theta / k) -
 * k - 1) with k = mean log(1 - theta x); theta-hat the mean under weights
 * exp(l); k-hat = (M k + 5) / (M + 10). */
static double ref_k(int n, const double *lw) {
  long double *s = gc_alloc_atomic(sizeof(long double) * (size_t)n);
  for (int i = 0; i < n; i++) s[i] = lw[i];
  qsort(s, (size_t)n, sizeof(long double), ref_cmp);
  int M = (int)ceil(fmin(0.2 * n, 3 * sqrt((double)n)));
  long double *x = gc_alloc_atomic(sizeof(long double) * (size_t)M);
  for (int i = 0; i < M; i++) x[i] = expl(s[n - M + i] - s[n - 1]) - expl(s[n - M - 1] - s[n - 1]);
  int m = 30 + (int)floor(sqrt((double)M));
  long double xstar = x[(int)floor(M / 4.0 + 0.5) - 1], th[128], l[128], lmax = -INFINITY;
  for (int j = 1; j <= m; j++) {
    long double t = 1 / x[M - 1] + (1 - sqrtl((long double)m / (j - 0.5L))) / (3 * xstar), k = 0;
    for (int i = 0; i < M; i++) k += log1pl(-t * x[i]);
    k /= M;
    th[j - 1] = t;
    l[j - 1] = M * (logl(-t / k) - k - 1);
    if (l[j - 1] > lmax) lmax = l[j - 1];
  }
  long double z = 0, t = 0, k = 0;
  for (int j = 0; j < m; j++) z += expl(l[j] - lmax);
  for (int j = 0; j < m; j++) t += th[j] * expl(l[j] - lmax) / z;
  for (int i = 0; i < M; i++) k += log1pl(-t * x[i]);
  k /= M;
  return (double)((M * k + 5) / (M + 10));
}

/* log weights a log u at the n quantiles u = (i + 1/2) / n: weights u^a */
static double *grid(int n, double a) {
  for (int i = 0; i < n; i++) lw_big[i] = a * log((i + 0.5) / n);
  return lw_big;
}

static void check_pinned(int n, double a, double loo) {
  double k = psis_k(n, grid(n, a)), r = ref_k(n, lw_big);
  tap_ok(fabs(k - r) <= 1e-12 * fmax(1, fabs(r)) && fabs(k - loo) <= 1e-9 * fmax(1, fabs(loo)),
         "log weights %g log u on %d quantiles: k-hat %.15g, the formulas' %.15g, loo's %.15g", a, n, k, r,
         loo);
}

static int desc_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

static void check_smooth(int n, double a, double sum, double top, double second, double mth) {
  double *lw = grid(n, a);
  bool ok = psis_smooth(n, lw);
  double z = 0;
  for (int i = 0; i < n; i++) z += exp(lw[i]);
  qsort(lw, (size_t)n, sizeof(double), desc_cmp);
  int M = (int)ceil(fmin(0.2 * n, 3 * sqrt((double)n)));
  double got[4] = {z, lw[0], lw[1], lw[M - 1]}, want[4] = {sum, top, second, mth};
  for (int j = 0; j < 4; j++) ok &= fabs(got[j] - want[j]) <= 1e-9 * fmax(1, fabs(want[j]));
  tap_ok(ok, "psis_smooth of %g log u on %d quantiles as loo's: sum %.12g (%.12g), largest %.12g (%.12g), "
         "second %.12g (%.12g), M-th %.12g (%.12g)", a, n, z, sum, lw[0], top, lw[1], second, lw[M - 1], mth);
}

int main(void) {
  gc_init();
  check_tail(0.3, 4000, 11);
  check_tail(0.8, 4000, 12);
  check_tail(0.3, 600, 13);
  check_tail(0.7, 600, 14);
  check_tail(1.2, 600, 15);
  check_tail(0.7, 4000, 16);
  check_tail(1.2, 4000, 17);

  /* the same numbers as loo 2.5.1: Rscript -e 'library(loo); u <- ((0:599) + 0.5) / 600;
     pareto_k_values(psis(200 * log(u), r_eff = 1))' and so on */
  check_pinned(600, -0.7, 0.66274513753253383);
  check_pinned(600, -1.2, 1.0806320436533554);
  check_pinned(600, 200, 7.2673569310246906);
  check_pinned(600, 5000, 163.59845095555301);
  check_pinned(4000, 200, 2.9672705101460353);
  check_pinned(4000, -0.7, 0.68432202188462032);

  /* psis_smooth's weights as loo's: weights(psis(lw, r_eff = 1), log = TRUE,
     normalize = FALSE) on the same grids, their sum on the natural scale,
     the largest, the second and the M-th largest; with k-hat 7.3 the
     fitted quantiles pass the largest raw weight and are capped there */
  check_smooth(600, -0.7, 1812.2268843908557301, 4.8428765980887771, 4.1120068861803531,
               1.4651254062658707);
  check_smooth(600, 200, 4.61726920064605473, -0.16673614971549061, -0.16673614971549061,
               -23.18778740858012810);
  check_smooth(4000, -1.2, 1.1557625804986092e+05, 1.0541575469362499e+01, 9.2788076589095851e+00,
               3.6564970811041704e+00);

  /* the collinear regression's case, bounded weights u^200 with a log range
     of thousands: the largest of S draws are ~200 M / S nats apart, and
     k-hat says that S is too few; only when that range shrinks below a nat
     (S = 100,000: 200 M / S = 1.9 nats) does the bounded tail show (k < 0;
     -1 in the limit).  Each
     k-hat as the formulas give it, on random draws pooled from 2 and 4
     chains of 300 and 1,000 (one tail for all, as the driver pools them). */
  {
    Rng cr[4];
    double kh[3];
    int sizes[3][2] = {{2, 300}, {4, 1000}, {1, NMAX}};
    bool agree = true;
    for (int c = 0; c < 3; c++) {
      for (int ch = 0; ch < 4; ch++) rng_seed(&cr[ch], 21, (uint64_t)ch);
      int chains = sizes[c][0], per = sizes[c][1];
      for (int ch = 0; ch < chains; ch++)
        for (int i = 0; i < per; i++) lw_big[ch * per + i] = 200 * log(rng_uniform(&cr[ch])) - 1431;
      kh[c] = psis_k(chains * per, lw_big);
      double r = ref_k(chains * per, lw_big);
      agree &= fabs(kh[c] - r) <= 1e-12 * fmax(1, fabs(r));
    }
    tap_ok(agree && kh[0] > 2 && kh[1] > 0.7 && kh[1] < kh[0] && kh[2] < 0,
           "bounded weights u^200: k-hat %.2f (2 x 300), %.2f (4 x 1000), %.2f (%d), as the formulas give",
           kh[0], kh[1], kh[2], NMAX);
  }

  /* light tails: weights of a normal proposal against itself are equal */
  double lw[1000];
  for (int i = 0; i < 1000; i++) lw[i] = 0;
  tap_ok(isnan(psis_k(1000, lw)), "equal weights: no tail, NaN");
  /* too few draws for a tail of 5 */
  tap_ok(isnan(psis_k(20, lw)), "20 draws: NaN");
  /* one weight dominating: k-hat far above 0.7 */
  Rng rng;
  rng_seed(&rng, 3, 0);
  for (int i = 0; i < 1000; i++) lw[i] = rng_normal(&rng) * 6; /* log-normal, sd 6: very heavy */
  double k = psis_k(1000, lw);
  tap_ok(k > 0.7, "log weights with sd 6: k-hat %.2f above 0.7", k);
  for (int i = 0; i < 1000; i++) lw[i] = rng_normal(&rng) * 0.1;
  k = psis_k(1000, lw);
  tap_ok(k < 0.5, "log weights with sd 0.1: k-hat %.2f below 0.5", k);
  lw[7] = NAN;
  tap_ok(isnan(psis_k(1000, lw)), "a NaN weight: NaN");

  /* smoothing a heavy tail: the weights below the tail unchanged, the tail's
     M = 95 replaced in the same order, none above the largest, the largest
     pulled in (its raw value is an outlier of the fitted Pareto) */
  double raw[1000], sm[1000];
  for (int i = 0; i < 1000; i++) raw[i] = sm[i] = rng_normal(&rng) * 3;
  int top = 0;
  for (int i = 1; i < 1000; i++) top = raw[i] > raw[top] ? i : top;
  bool ok = psis_smooth(1000, sm);
  int changed = 0, below_kept = 1, order = 1, capped = 1;
  for (int i = 0; i < 1000; i++) {
    changed += sm[i] != raw[i];
    capped &= sm[i] <= raw[top] + 1e-12;
    for (int j = 0; j < 1000 && order; j++)
      if (raw[i] < raw[j]) order = sm[i] <= sm[j];
  }
  for (int i = 0; i < 1000; i++) {
    int rank = 0;
    for (int j = 0; j < 1000; j++) rank += raw[j] > raw[i];
    if (rank >= 95) below_kept &= sm[i] == raw[i];
  }
  tap_ok(ok && changed > 0 && changed <= 95 && below_kept && order && capped && sm[top] < raw[top],
         "psis_smooth: %d of the 95 tail weights replaced, order kept, none above the largest, "
         "the rest unchanged", changed);
  for (int i = 0; i < 1000; i++) sm[i] = 0;
  tap_ok(!psis_smooth(1000, sm) && sm[0] == 0, "psis_smooth of equal weights: no tail, unchanged");
  lw[7] = -INFINITY; /* a zero weight is fine */
  tap_ok(!isnan(psis_k(1000, lw)), "a zero weight is a weight");
  return tap_done();
}
