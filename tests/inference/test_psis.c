/* test_psis.c — the Pareto k-hat of importance weights (inference/psis.c)
 * on weights drawn with known tails.  Weights w = U^-k are Pareto with shape
 * k: their exceedances over any threshold are exactly generalized Pareto
 * with shape k, so k-hat must find k up to its sampling error.  The
 * tolerances are Monte Carlo ones: over R replications the mean k-hat is
 * within 4 standard errors of k (plus the pull of the weakly informative
 * prior towards 0.5, 10 / (M + 10) of the distance), and the spread across
 * replications is near the asymptotic sd (1 + k) / sqrt(M). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/value.h"
#include "inference/psis.h"
#include "stdlib/rng.h"
#include "tests/tap.h"

enum { R = 200, N = 4000 };

static void check_tail(double k, uint64_t seed) {
  Rng rng;
  rng_seed(&rng, seed, 0);
  double lw[N], sum = 0, sum2 = 0;
  for (int r = 0; r < R; r++) {
    /* log weights on an arbitrary scale: k-hat must not depend on it */
    for (int i = 0; i < N; i++) lw[i] = -k * log(rng_uniform(&rng)) - 1234.5;
    double kh = psis_k(N, lw);
    sum += kh, sum2 += kh * kh;
  }
  double mean = sum / R, sd = sqrt((sum2 - R * mean * mean) / (R - 1));
  double M = ceil(fmin(0.2 * N, 3 * sqrt((double)N)));
  double pull = 10 / (M + 10) * (0.5 - k);
  double asym = (1 + k) / sqrt(M);
  tap_ok(fabs(mean - (k + pull)) < 4 * sd / sqrt(R) + 0.02,
         "k = %.1f: mean k-hat %.3f over %d replications (sd %.3f; prior pull %+.3f)", k, mean, R, sd, pull);
  tap_ok(sd > 0.5 * asym && sd < 2 * asym, "k = %.1f: sd of k-hat %.3f near (1 + k) / sqrt(M) = %.3f", k, sd,
         asym);
}

int main(void) {
  gc_init();
  check_tail(0.3, 11);
  check_tail(0.8, 12);

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
