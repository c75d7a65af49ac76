/* test_resample.c — the resampling schemes: unbiasedness (the mean offspring
 * count of particle i over many resamplings is N w_i, within 4 standard
 * errors), the structural guarantees of each scheme (sorted ancestors, no
 * zero-weight ancestors, systematic counts within one of N w_i, residual
 * counts at least floor(N w_i)), and the weight helpers.  The expected counts
 * N w_i are exact arithmetic on the test's own weights.  Then the worker pool
 * of the particle engines: every item of every round is run exactly once, by
 * a valid worker, over many back-to-back rounds (a round-reset race would
 * show as a lost or doubled item); small rounds stay in the calling thread;
 * and how --threads is split between chains and particles. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/engine.h"
#include "inference/resample.h"
#include "tests/tap.h"

#define N 7
#define REPS 40000

static const double W[N] = {0.31, 0.0, 0.05, 0.002, 0.228, 0.17, 0.24};

static void test_scheme(int scheme) {
  const char *name = resample_name(scheme);
  Rng r;
  rng_seed(&r, 99, (uint64_t)scheme);
  double sum[N] = {0}, sum2[N] = {0};
  int anc[N];
  bool sorted = true, zero_never = true, bounds = true, ok = true;
  for (int k = 0; k < REPS; k++) {
    ok &= resample(scheme, N, W, &r, anc);
    int cnt[N] = {0};
    for (int j = 0; j < N; j++) {
      if (anc[j] < 0 || anc[j] >= N) {
        ok = false;
        continue;
      }
      cnt[anc[j]]++;
      if (j && anc[j] < anc[j - 1]) sorted = false;
    }
    for (int i = 0; i < N; i++) {
      sum[i] += cnt[i];
      sum2[i] += (double)cnt[i] * cnt[i];
      double nw = N * W[i];
      if (W[i] == 0 && cnt[i]) zero_never = false;
      if ((scheme == RESAMPLE_SYSTEMATIC) && (cnt[i] < floor(nw) || cnt[i] > ceil(nw)))
        bounds = false;
      if (scheme == RESAMPLE_RESIDUAL && cnt[i] < floor(nw)) bounds = false;
    }
  }
  tap_ok(ok, "%s: valid ancestor indices", name);
  tap_ok(sorted, "%s: ancestors in increasing order", name);
  tap_ok(zero_never, "%s: a zero-weight particle is never chosen", name);
  if (scheme == RESAMPLE_SYSTEMATIC)
    tap_ok(bounds, "%s: every count is floor or ceil of N w_i", name);
  if (scheme == RESAMPLE_RESIDUAL) tap_ok(bounds, "%s: every count is at least floor(N w_i)", name);
  bool unbiased = true;
  for (int i = 0; i < N; i++) {
    double m = sum[i] / REPS, v = sum2[i] / REPS - m * m;
    double se = sqrt(fmax(v, 0) / REPS), want = N * W[i];
    /* a deterministic count (variance 0) must be exact */
    bool ok_i = fabs(m - want) <= 4 * se + 1e-12;
    if (!ok_i) tap_diag("%s: particle %d: mean count %.5f, want %.5f (se %.5f)", name, i, m, want, se);
    unbiased &= ok_i;
  }
  tap_ok(unbiased, "%s: mean offspring counts = N w_i", name);
}

/* lower-variance schemes must have lower offspring variance than multinomial */
static double count_var(int scheme) {
  Rng r;
  rng_seed(&r, 7, 1);
  int anc[N];
  double v = 0;
  for (int k = 0; k < 5000; k++) {
    resample(scheme, N, W, &r, anc);
    int cnt[N] = {0};
    for (int j = 0; j < N; j++) cnt[anc[j]]++;
    for (int i = 0; i < N; i++) v += (cnt[i] - N * W[i]) * (cnt[i] - N * W[i]);
  }
  return v / 5000;
}

typedef struct PoolCheck {
  int *count, *worker;
  int round;
} PoolCheck;

static void pool_check_fn(void *ctx, int worker, int lo, int hi) {
  PoolCheck *c = ctx;
  for (int i = lo; i < hi; i++) {
    volatile double x = i; /* some work, so that the other workers join in */
    for (int k = 0; k < 200; k++) x = x * 0.999 + 1;
    c->count[i] += 1;
    c->worker[i] = worker;
  }
}

static void test_pool(void) {
  Pool *p = pool_new(3);
  int W = pool_workers(p), n = 5000, R = 300;
  tap_ok(W >= 1 && W <= 3, "pool of 3 workers has %d", W);
  PoolCheck c = {calloc((size_t)n, sizeof(int)), calloc((size_t)n, sizeof(int)), 0};
  bool once = true, valid = true;
  int used = 0;
  for (int r = 0; r < R; r++) {
    int m = 1000 + (r * 37) % (n - 1000); /* rounds of different sizes */
    memset(c.count, 0, sizeof(int) * (size_t)n);
    pool_run(p, m, 1, pool_check_fn, &c);
    for (int i = 0; i < n; i++) {
      once = once && c.count[i] == (i < m);
      if (i < m) {
        valid = valid && c.worker[i] >= 0 && c.worker[i] < W;
        used |= 1 << c.worker[i];
      }
    }
  }
  tap_ok(once, "%d rounds: every item run exactly once", R);
  tap_ok(valid, "worker numbers in [0, %d)", W);
  tap_diag("workers that ran items: mask %d", used);
  memset(c.worker, 0xff, sizeof(int) * (size_t)n);
  memset(c.count, 0, sizeof(int) * (size_t)n);
  pool_run(p, 100, 64, pool_check_fn, &c);
  bool inline_ok = true;
  for (int i = 0; i < 100; i++) inline_ok = inline_ok && c.count[i] == 1 && c.worker[i] == 0;
  tap_ok(inline_ok, "a round below 2 * grain runs in the calling thread");
  pool_free(p);
  pool_free(NULL);
  free(c.count);
  free(c.worker);

  EngineOpts o;
  engine_opts_default(&o);
  o.threads = 8;
  o.chains = 4;
  int a = pool_particle_workers(&o);
  o.threads = 3;
  int b = pool_particle_workers(&o);
  o.chains = 1;
  int c1 = pool_particle_workers(&o);
  o.threads = 0;
  int d = pool_particle_workers(&o);
  tap_ok(a == 2 && b == 1 && c1 == 3 && d >= 1,
         "--threads split: 8 for 4 chains -> 2 per chain, 3 for 4 -> 1, 3 for 1 -> 3, default %d", d);
}

/* The blocked normaliser: the blocks tile [0, n) in order, each non-empty;
 * it agrees with the sequential one to rounding; summaries computed block by
 * block in any grouping (as ranks holding slices do) combine to the same bits;
 * NaN and -inf weigh nothing; all dead: -inf and uniform weights. */
static void test_blocked(void) {
  int sizes[] = {1, 7, 8, 20, 1000, 2049, 100003};
  bool tiles = true;
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    int n = sizes[k], nb = resample_nblocks(n);
    tiles &= nb >= 1 && nb <= 256 && resample_block_lo(n, 0) == 0 && resample_block_lo(n, nb) == n;
    for (int b = 0; b < nb; b++)
      tiles &= resample_block_lo(n, b) < resample_block_lo(n, b + 1) && resample_block_lo(n, b) % 8 == 0;
  }
  tap_ok(tiles, "blocks tile the population in order, non-empty, at multiples of 8");

  int n = 2049;
  double *lw = malloc(sizeof(double) * (size_t)n), *w = malloc(sizeof(double) * (size_t)n);
  double *w2 = malloc(sizeof(double) * (size_t)n), *w3 = malloc(sizeof(double) * (size_t)n);
  Rng r;
  rng_seed(&r, 5, 5);
  for (int i = 0; i < n; i++) lw[i] = 1.5 * rng_normal(&r) - 700;
  lw[3] = -INFINITY;
  lw[1500] = NAN;
  double ess, lz = resample_normalise_blocked(n, lw, w, &ess);
  double lz0 = resample_normalise(n, lw, w2), ess0 = resample_ess(n, w2);
  double maxd = 0;
  for (int i = 0; i < n; i++) maxd = fmax(maxd, fabs(w[i] - w2[i]));
  tap_ok(fabs(lz - lz0) < 1e-12 && fabs(ess - ess0) < 1e-12 * ess0 && maxd < 1e-14 && w[3] == 0 &&
             w[1500] == 0,
         "blocked = sequential normaliser to rounding (log Z %.6f, ESS %.4f)", lz, ess);
  /* the summaries of "rank 1"'s blocks computed into a separate array, as
     an allgather would deliver them */
  int nb = resample_nblocks(n);
  WeightBlock *mine = malloc(sizeof(WeightBlock) * (size_t)nb);
  WeightBlock *theirs = malloc(sizeof(WeightBlock) * (size_t)nb);
  for (int b = nb - 1; b >= 0; b--) /* any order of computation */
    resample_block(lw, resample_block_lo(n, b), resample_block_lo(n, b + 1), b < nb / 3 ? &mine[b] : &theirs[b],
                   b < nb / 2 ? w3 : NULL);
  for (int b = 0; b < nb / 3; b++) theirs[b] = mine[b];
  double mx, sum, ess2;
  double lz2 = resample_combine(n, nb, theirs, &mx, &sum, &ess2);
  /* the first half from the exps kept, the rest from the log weights */
  resample_weights(n, nb / 2, nb, theirs, mx, sum, lw, w3);
  resample_weights(n, 0, nb / 2, theirs, mx, sum, NULL, w3);
  tap_ok(lz2 == lz && ess2 == ess && !memcmp(w, w3, sizeof(double) * (size_t)n),
         "blocks summarised apart and combined in order: the same bits");
  for (int i = 0; i < n; i++) lw[i] = -INFINITY;
  lw[7] = NAN;
  lz = resample_normalise_blocked(n, lw, w, &ess);
  tap_ok(lz == -INFINITY && w[0] == 1.0 / n && w[n - 1] == 1.0 / n && ess == n,
         "blocked, all dead: -inf, uniform weights, ESS n");
  free(lw), free(w), free(w2), free(w3), free(mine), free(theirs);
}

int main(void) {
  gc_init();
  test_blocked();
  test_pool();
  for (int s = RESAMPLE_SYSTEMATIC; s <= RESAMPLE_RESIDUAL; s++) test_scheme(s);
  double vm = count_var(RESAMPLE_MULTINOMIAL);
  tap_ok(count_var(RESAMPLE_SYSTEMATIC) < vm && count_var(RESAMPLE_STRATIFIED) < vm &&
             count_var(RESAMPLE_RESIDUAL) < vm,
         "systematic, stratified and residual have lower count variance than multinomial (%.3f)", vm);

  tap_ok(resample_scheme("residual") == RESAMPLE_RESIDUAL && resample_scheme("bogus") == -1 &&
             !strcmp(resample_name(RESAMPLE_STRATIFIED), "stratified"),
         "scheme names");
  double lw[3] = {0, log(3.0), -INFINITY}, w[3];
  double lz = resample_normalise(3, lw, w);
  tap_near(lz, log(4.0 / 3), 1e-14, "log mean weight of {1, 3, 0}");
  tap_ok(fabs(w[0] - 0.25) < 1e-15 && fabs(w[1] - 0.75) < 1e-15 && w[2] == 0, "normalised weights");
  tap_near(resample_ess(3, w), 1 / (0.0625 + 0.5625), 1e-14, "ESS = 1 / sum w^2");
  double big[2] = {1000, 1000 + log(0.5)};
  tap_near(resample_normalise(2, big, w), 1000 + log(0.75), 1e-14, "no overflow at large log weights");
  double dead[2] = {-INFINITY, -INFINITY};
  tap_ok(resample_normalise(2, dead, w) == -INFINITY && w[0] == 0.5, "all -inf: -inf, uniform");
  int anc[1];
  Rng r;
  rng_seed(&r, 1, 1);
  tap_ok(!resample(17, 1, w, &r, anc) && !resample(RESAMPLE_SYSTEMATIC, 0, w, &r, anc),
         "unknown scheme or no particles: false");
  return tap_done();
}
