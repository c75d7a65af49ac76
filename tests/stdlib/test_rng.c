/* test_rng.c — stdlib/rng.c: the xoshiro256** core against values computed by
 * an independent Python implementation, stream independence and
 * reproducibility, and the samplers' moments and frequencies (chi-square) for
 * small and large parameters, covering every algorithm branch (inversion,
 * PTRS, BINV, BTRS, Marsaglia-Tsang with and without the shape < 1 boost). */
#include <math.h>
#include <stdint.h>

#include "stdlib/rng.h"
#include "tap.h"

#define N 400000

/* mean and variance within 5 standard errors of the analytic values; mu4 is
   the analytic 4th central moment (the SE of the sample variance needs it) */
static void moments(const char *name, const double *x, int n, double mean, double var, double mu4) {
  double s = 0, s2 = 0;
  for (int i = 0; i < n; i++) s += x[i];
  double m = s / n;
  for (int i = 0; i < n; i++) s2 += (x[i] - m) * (x[i] - m);
  double v = s2 / (n - 1);
  double se_m = sqrt(var / n), se_v = sqrt((mu4 - var * var) / n);
  if (!tap_ok(fabs(m - mean) < 5 * se_m, "%s mean", name)) tap_diag("got %.8g want %.8g (se %.3g)", m, mean, se_m);
  if (!tap_ok(fabs(v - var) < 5 * se_v, "%s variance", name)) tap_diag("got %.8g want %.8g (se %.3g)", v, var, se_v);
}

static double xs[N];

/* chi-square of integer draws against a pmf, cells with expected >= 20 and
   the rest pooled; passes below df + 5 sqrt(2 df) (far beyond the 1e-4 point) */
static void chisq(const char *name, const int64_t *k, int n, double (*lpmf)(int64_t, const double *),
                  const double *p, int64_t lo, int64_t hi) {
  static double obs[4096], expct[4096];
  int cells = (int)(hi - lo + 1);
  for (int c = 0; c < cells; c++) {
    obs[c] = 0;
    expct[c] = n * exp(lpmf(lo + c, p));
  }
  double out_obs = 0, out_exp = n;
  for (int c = 0; c < cells; c++) out_exp -= expct[c];
  for (int i = 0; i < n; i++) {
    if (k[i] >= lo && k[i] <= hi) obs[k[i] - lo]++;
    else out_obs++;
  }
  double stat = 0, pool_o = out_obs, pool_e = out_exp > 0 ? out_exp : 0;
  int df = -1;
  for (int c = 0; c < cells; c++) {
    if (expct[c] >= 20) {
      stat += (obs[c] - expct[c]) * (obs[c] - expct[c]) / expct[c];
      df++;
    } else {
      pool_o += obs[c];
      pool_e += expct[c];
    }
  }
  if (pool_e >= 20) {
    stat += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
    df++;
  } else if (pool_o > 3 * pool_e + 10) {
    stat = INFINITY; /* mass where the pmf has almost none */
  }
  if (!tap_ok(df > 0 && stat < df + 5 * sqrt(2.0 * df), "%s chi-square over %d cells", name, df + 1))
    tap_diag("chi2 = %.1f with df = %d", stat, df);
}

static double pois_lpmf(int64_t k, const double *p) {
  return k < 0 ? -INFINITY : k * log(p[0]) - p[0] - lgamma(k + 1.0);
}
static double binom_lpmf(int64_t k, const double *p) {
  double n = p[0], q = p[1];
  if (k < 0 || k > n) return -INFINITY;
  return lgamma(n + 1) - lgamma(k + 1.0) - lgamma(n - k + 1) + k * log(q) + (n - k) * log1p(-q);
}

static int64_t ks[N];

int main(void) {
  Rng r;
  /* xoshiro256** from state {1,2,3,4}: values from a Python implementation */
  r.s[0] = 1; r.s[1] = 2; r.s[2] = 3; r.s[3] = 4;
  static const uint64_t want[5] = {11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL,
                                   1216172134540287360ULL};
  int core_ok = 1;
  for (int i = 0; i < 5; i++) core_ok &= rng_u64(&r) == want[i];
  tap_ok(core_ok, "xoshiro256** known answers");

  /* reproducible, and distinct across seeds and streams */
  Rng a, b, c, d;
  rng_seed(&a, 7, 0); rng_seed(&b, 7, 0); rng_seed(&c, 7, 1); rng_seed(&d, 8, 0);
  int same = 1, diff_stream = 0, diff_seed = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = rng_u64(&a), y = rng_u64(&b), z = rng_u64(&c), w = rng_u64(&d);
    same &= x == y;
    diff_stream += x != z;
    diff_seed += x != w;
  }
  tap_ok(same, "same seed and stream reproduce bit for bit");
  tap_ok(diff_stream == 1000, "streams 0 and 1 differ at every draw");
  tap_ok(diff_seed == 1000, "seeds 7 and 8 differ at every draw");
  /* first outputs of neighbouring streams must not be correlated */
  double cov = 0;
  for (int s = 0; s < 20000; s++) {
    Rng e, f;
    rng_seed(&e, 1, (uint64_t)s);
    rng_seed(&f, 1, (uint64_t)s + 1);
    cov += (rng_uniform(&e) - 0.5) * (rng_uniform(&f) - 0.5);
  }
  cov /= 20000;
  tap_ok(fabs(cov) < 5 * (1.0 / 12) / sqrt(20000), "first draws of streams s and s+1 uncorrelated (%.2g)", cov);

  rng_seed(&r, 12345, 3);
  int in01 = 1;
  for (int i = 0; i < N; i++) {
    xs[i] = rng_uniform(&r);
    in01 &= xs[i] > 0 && xs[i] < 1;
  }
  tap_ok(in01, "uniform draws lie strictly inside (0, 1)");
  moments("uniform", xs, N, 0.5, 1.0 / 12, 1.0 / 80);

  for (int i = 0; i < N; i++) xs[i] = rng_normal(&r);
  moments("normal", xs, N, 0, 1, 3);
  int tail = 0;
  for (int i = 0; i < N; i++) tail += xs[i] > 2.0;
  double pt = 0.022750131948179195; /* 1 - Phi(2) */
  tap_ok(fabs(tail - N * pt) < 5 * sqrt(N * pt * (1 - pt)), "normal tail P(Z > 2)");
  for (int i = 0; i < N; i++) xs[i] = rng_exponential(&r);
  moments("exponential", xs, N, 1, 1, 9);

  static const double shapes[] = {0.05, 0.3, 1.0, 2.7, 40.0, 1e4};
  for (int j = 0; j < 6; j++) {
    double k = shapes[j];
    for (int i = 0; i < N; i++) xs[i] = rng_gamma(&r, k);
    char nm[64];
    snprintf(nm, sizeof nm, "gamma(%g)", k);
    moments(nm, xs, N, k, k, 3 * k * k + 6 * k);
  }
  tap_ok(isnan(rng_gamma(&r, 0)) && isnan(rng_gamma(&r, -1)), "gamma shape <= 0 is NaN");

  static const double betas[][2] = {{0.5, 0.5}, {2, 5}, {0.05, 0.1}, {300, 700}};
  for (int j = 0; j < 4; j++) {
    double A = betas[j][0], B = betas[j][1];
    int ok01 = 1;
    for (int i = 0; i < N; i++) {
      xs[i] = rng_beta(&r, A, B);
      ok01 &= xs[i] >= 0 && xs[i] <= 1;
    }
    /* raw moments prod (a+r)/(a+b+r) */
    double m[5] = {1, 0, 0, 0, 0};
    for (int q = 1; q <= 4; q++) m[q] = m[q - 1] * (A + q - 1) / (A + B + q - 1);
    double mu = m[1], var = m[2] - mu * mu;
    double mu4 = m[4] - 4 * m[3] * mu + 6 * m[2] * mu * mu - 3 * mu * mu * mu * mu;
    char nm[64];
    snprintf(nm, sizeof nm, "beta(%g, %g)", A, B);
    tap_ok(ok01, "%s in [0, 1]", nm);
    moments(nm, xs, N, mu, var, mu4);
  }

  static const double lams[] = {0.3, 4.5, 9.99, 10.0, 37.0, 1e4, 1e8};
  for (int j = 0; j < 7; j++) {
    double L = lams[j];
    for (int i = 0; i < N; i++) {
      ks[i] = rng_poisson(&r, L);
      xs[i] = (double)ks[i];
    }
    char nm[64];
    snprintf(nm, sizeof nm, "poisson(%g)", L);
    moments(nm, xs, N, L, L, L + 3 * L * L);
    if (L < 100) chisq(nm, ks, N, pois_lpmf, &L, 0, (int64_t)(L + 12 * sqrt(L) + 10));
  }
  tap_ok(rng_poisson(&r, 0) == 0 && rng_poisson(&r, -1) < 0, "poisson edge cases");

  static const double bins[][2] = {{10, 0.3}, {100, 0.05}, {60, 0.9}, {1000, 0.7}, {200, 0.4}, {1000000, 0.5}, {1e9, 2e-9}};
  for (int j = 0; j < 7; j++) {
    double n = bins[j][0], p = bins[j][1], q = 1 - p;
    int inr = 1;
    for (int i = 0; i < N; i++) {
      ks[i] = rng_binomial(&r, (int64_t)n, p);
      inr &= ks[i] >= 0 && ks[i] <= (int64_t)n;
      xs[i] = (double)ks[i];
    }
    double var = n * p * q, mu4 = n * p * q * (1 + 3 * p * q * (n - 2));
    char nm[64];
    snprintf(nm, sizeof nm, "binomial(%g, %g)", n, p);
    tap_ok(inr, "%s in [0, n]", nm);
    moments(nm, xs, N, n * p, var, mu4);
    if (n <= 1000) {
      int64_t lo = (int64_t)fmax(0, n * p - 10 * sqrt(var) - 5), hi = (int64_t)fmin(n, n * p + 10 * sqrt(var) + 5);
      chisq(nm, ks, N, binom_lpmf, bins[j], lo, hi);
    }
  }
  tap_ok(rng_binomial(&r, 0, 0.5) == 0 && rng_binomial(&r, 7, 0) == 0 && rng_binomial(&r, 7, 1) == 7 &&
             rng_binomial(&r, 7, 1.5) < 0,
         "binomial edge cases");

  /* rng_int: uniform on {lo..hi}, no modulo bias, any range */
  int inb = 1;
  double cnt[7] = {0};
  for (int i = 0; i < N; i++) {
    int64_t v = rng_int(&r, -3, 3);
    inb &= v >= -3 && v <= 3;
    if (v >= -3 && v <= 3) cnt[v + 3]++;
  }
  double st = 0;
  for (int c2 = 0; c2 < 7; c2++) st += (cnt[c2] - N / 7.0) * (cnt[c2] - N / 7.0) / (N / 7.0);
  tap_ok(inb && st < 6 + 5 * sqrt(12.0), "rng_int(-3, 3) uniform (chi2 %.1f)", st);
  /* over a range of 3 * 2^62 values, modulo reduction would give the lower
     half of the range 5/8 of the draws instead of 1/2 */
  int64_t lo = INT64_MIN, hi = (int64_t)((uint64_t)INT64_MIN + (3ULL << 62) - 1);
  int lower_half = 0;
  for (int i = 0; i < N; i++) {
    int64_t v = rng_int(&r, lo, hi);
    lower_half += (uint64_t)v - (uint64_t)lo < (3ULL << 61);
  }
  tap_ok(fabs(lower_half - N / 2.0) < 5 * sqrt(N / 4.0), "rng_int without modulo bias (%d of %d)", lower_half, N);
  int full_ok = 1;
  for (int i = 0; i < 1000; i++) (void)rng_int(&r, INT64_MIN, INT64_MAX);
  full_ok &= rng_int(&r, 5, 5) == 5;
  tap_ok(full_ok, "rng_int full range and single value");
  return tap_done();
}
