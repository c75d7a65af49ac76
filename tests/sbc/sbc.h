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
 * degrees of freedom is SBC_CHI2_999 (chi2_threshold.py computes it).
 *
 * sbc_run is one engine on one model: S replicates, each a prior draw, a
 * data set simulated from it in C, a fit through the public API and the
 * ranks of the prior draw's parameters among L thinned posterior draws. */
#ifndef TESTS_SBC_H
#define TESTS_SBC_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

#define SBC_L 19          /* posterior draws per replicate: ranks 0..19 */
#define SBC_BINS 10       /* two adjacent ranks per bin */
#define SBC_CHI2_999 27.877164871256573 /* chi-square, 9 df, 0.999 quantile */
#define SBC_MAXPAR 8

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

/* Whether a variational or amortized run warned that its PSIS k-hat is too
   high (the warning of kind vi_khat: q does not fit these data). */
static inline bool sbc_khat_warned(const ppl_result *r) {
  for (int i = 0; i < ppl_result_num_warnings(r); i++) {
    const char *kind = NULL;
    ppl_result_warning(r, i, &kind, NULL);
    if (kind && !strcmp(kind, "vi_khat")) return true;
  }
  return false;
}

/* ---- the models: a simulator in C and the ppl program that fits it ---- */

typedef struct {
  const char *name;
  const char *source;
  int npar;
  const char *par[SBC_MAXPAR];
  /* Draws the parameters into par and writes the data set as JSON. */
  void (*simulate)(SbcRng *r, double *par, char *json, size_t jsz);
} SbcModel;

/* mu ~ normal(0, 1); y[1..10] ~ normal(mu, 1) */
static inline void sbc_sim_normal_mean(SbcRng *r, double *par, char *json, size_t jsz) {
  double y[10];
  par[0] = sbc_normal(r);
  for (int i = 0; i < 10; i++) y[i] = par[0] + sbc_normal(r);
  size_t k = (size_t)snprintf(json, jsz, "{\"N\": 10, ");
  k += sbc_vec(json + k, jsz - k, "y", y, 10);
  snprintf(json + k, jsz - k, "}");
}

/* ---- running ---- */

typedef struct {
  const char *engine;
  int warmup, stride; /* draws = SBC_L * stride; every stride-th draw is kept */
  const char *load;   /* a trained file for the run's --load (amortized), or NULL */
} SbcEngine;

/* Runs S replicates and fills chi2[p] for each parameter; false on an error. */
static inline bool sbc_run(ppl_context *ctx, const SbcModel *sm, const SbcEngine *se, int S,
                           uint64_t seed, double *chi2) {
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, sm->source, sm->name, &m) != PPL_OK) {
    tap_diag("%s: %s", sm->name, ppl_errmsg(ctx));
    return false;
  }
  int counts[SBC_MAXPAR][SBC_BINS] = {{0}};
  SbcRng rng;
  sbc_seed(&rng, seed);
  static char json[8192];
  bool ok = true;
  for (int s = 0; s < S && ok; s++) {
    double par[SBC_MAXPAR];
    sm->simulate(&rng, par, json, sizeof json);
    ppl_run_options ro;
    ppl_run_options_default(&ro);
    /* PPL_TEST_NO_JIT: the same test under the interpreter (meson runs both) */
    ro.no_jit = getenv("PPL_TEST_NO_JIT") != NULL;
    /* and otherwise compiled, however short the run (hmc.c's choice) */
    if (!ro.no_jit) ppl_run_set(&ro, "jit", "true");
    ro.engine = se->engine;
    ro.chains = 1;
    ro.warmup = se->warmup;
    ro.draws = SBC_L * se->stride;
    ro.seed = seed * 1000003u + (uint64_t)s;
    ppl_result *r = NULL;
    if ((se->load && ppl_run_set(&ro, "load", se->load) != PPL_OK) ||
        ppl_set_data_json(m, json, "sim.json") != PPL_OK || ppl_run(m, &ro, &r) != PPL_OK) {
      tap_diag("%s, replicate %d: %s", sm->name, s, ppl_errmsg(ctx));
      ok = false;
    }
    for (int p = 0; ok && p < sm->npar; p++) {
      int col = ppl_result_column_index(r, sm->par[p]);
      double draws[SBC_L];
      for (int l = 0; l < SBC_L; l++) draws[l] = ppl_result_draw(r, 0, (l + 1) * se->stride - 1, col);
      sbc_count(counts[p], par[p], draws);
    }
    ppl_result_free(r);
    ppl_run_options_free(&ro);
  }
  ppl_model_free(m);
  if (!ok) return false;
  for (int p = 0; p < sm->npar; p++) {
    char label[128];
    snprintf(label, sizeof label, "%s/%s %s", sm->name, se->engine, sm->par[p]);
    chi2[p] = sbc_chi2(counts[p], label);
  }
  return true;
}

#endif
