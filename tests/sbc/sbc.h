/* sbc.h — the machinery of simulation-based calibration (Talts, Betancourt,
 * Simpson, Vehtari, Gelman 2018) shared by test_sbc.c (the MCMC engines) and
 * test_sbc_amortized.c (the amortized posteriors): a generator of our own,
 * so that the simulations share no code with the engine under test, JSON
 * for the simulated data sets, and the rank histogram with its chi-square
 * uniformity statistic.
 *
 * A rank is the number of the L posterior draws below the prior draw
 * (0..L); if the draws come from the posterior it is uniform on 0..L.  The
 * S ranks are counted in SBC_BINS bins of equal width and compared with the
 * uniform by Pearson's chi-square, whose 0.999 quantile for SBC_BINS - 1
 * degrees of freedom is SBC_CHI2_999 (chi2_threshold.py computes it). */
#ifndef TESTS_SBC_H
#define TESTS_SBC_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "tap.h"

#define SBC_L 19          /* posterior draws per replicate: ranks 0..19 */
#define SBC_BINS 10       /* two adjacent ranks per bin */
#define SBC_CHI2_999 27.877164871256573 /* chi-square, 9 df, 0.999 quantile */

/* ---- splitmix64-seeded xoshiro256** ---- */

typedef struct { uint64_t s[4]; } SbcRng;

static inline uint64_t sbc_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t sbc_next(SbcRng *r) {
  uint64_t *s = r->s, out = sbc_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
  s[2] ^= t; s[3] = sbc_rotl(s[3], 45);
  return out;
}

static inline void sbc_seed(SbcRng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) {
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    r->s[i] = z ^ (z >> 31);
  }
}

static inline double sbc_unif(SbcRng *r) { return ((sbc_next(r) >> 11) + 0.5) * 0x1.0p-53; }

static inline double sbc_normal(SbcRng *r) {
  /* Box–Muller; the second variate is dropped for simplicity. */
  return sqrt(-2 * log(sbc_unif(r))) * cos(2 * M_PI * sbc_unif(r));
}

/* Appends `"name": [v...]` to buf; returns the characters written. */
static inline size_t sbc_vec(char *buf, size_t sz, const char *name, const double *v, int n) {
  size_t k = (size_t)snprintf(buf, sz, "\"%s\": [", name);
  for (int i = 0; i < n && k < sz; i++)
    k += (size_t)snprintf(buf + k, sz - k, "%s%.17g", i ? ", " : "", v[i]);
  if (k < sz) k += (size_t)snprintf(buf + k, sz - k, "]");
  return k;
}

/* ---- ranks ---- */

/* Counts the rank of `truth` among draws[0..SBC_L) into counts[SBC_BINS]. */
static inline void sbc_count(int *counts, double truth, const double *draws) {
  int rank = 0;
  for (int l = 0; l < SBC_L; l++) rank += draws[l] < truth;
  counts[rank * SBC_BINS / (SBC_L + 1)]++;
}

/* Pearson's chi-square of the histogram against the uniform; prints the
 * histogram as a TAP diagnostic under `label`. */
static inline double sbc_chi2(const int *counts, const char *label) {
  int S = 0;
  for (int b = 0; b < SBC_BINS; b++) S += counts[b];
  double expect = (double)S / SBC_BINS, chi2 = 0;
  char line[256];
  size_t k = 0;
  for (int b = 0; b < SBC_BINS; b++) {
    chi2 += (counts[b] - expect) * (counts[b] - expect) / expect;
    k += (size_t)snprintf(line + k, sizeof line - k, " %d", counts[b]);
  }
  tap_diag("%s: rank histogram%s (chi2 %.2f)", label, line, chi2);
  return chi2;
}

#endif
