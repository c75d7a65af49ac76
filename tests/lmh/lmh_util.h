/* lmh_util.h — what tests/lmh's tests share: a model with data through the
 * public API, a proposal library trained into a temporary directory, the
 * mixture's data, and the binary grid network's data and marginals by
 * enumeration. */
#ifndef LMH_UTIL_H
#define LMH_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

static const char *lmh_dir; /* tests/lmh */

static ppl_model *lmh_model(ppl_context *ctx, const char *name, const char *json) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", lmh_dir, name);
  ppl_model *m = NULL;
  if (ppl_compile_file(ctx, path, &m) != PPL_OK) {
    tap_diag("%s: %s", name, ppl_errmsg(ctx));
    return NULL;
  }
  if (json && ppl_set_data_json(m, json, "data.json") != PPL_OK) {
    tap_diag("%s: data: %s", name, ppl_errmsg(ctx));
    ppl_model_free(m);
    return NULL;
  }
  return m;
}

/* A fresh directory under $TMPDIR. */
static char *lmh_tmpdir(void) {
  const char *t = getenv("TMPDIR");
  char *p = malloc(1024);
  snprintf(p, 1024, "%s/ppl-lmh-XXXXXX", t && *t ? t : "/tmp");
  return mkdtemp(p) ? p : NULL;
}

/* Train the model's motifs into dir: steps 0 keeps the random weights. */
static int lmh_learn(ppl_model *m, const char *dir, long steps, uint64_t seed) {
  ppl_learn_options lo;
  ppl_learn_options_default(&lo);
  lo.out_dir = dir;
  lo.steps = steps;
  lo.seed = seed;
  int n = 0;
  return ppl_learn_proposals(m, &lo, &n) == PPL_OK ? n : -1;
}

/* The data of tests/lmh/mixk.ppl (up to 300 points; the string is static): K components 4 apart with a tight prior around their places, so that the
   means hardly move and each z[n]'s posterior is nearly a categorical of its
   own: then the ESS of the z's measures the z moves.  The points lie at
   offsets -2 ... 2 from their component: those at +-2 are halfway. */
static inline const char *mix_json(int K, int N) {
  static char buf[16384];
  size_t n = (size_t)snprintf(buf, sizeof buf, "{\"N\": %d, \"K\": %d, \"w\": [", N, K);
  for (int k = 0; k < K; k++) n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%.17g", k ? ", " : "", 1.0 / K);
  n += (size_t)snprintf(buf + n, sizeof buf - n, "], \"m0\": [");
  for (int k = 0; k < K; k++) n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", k ? ", " : "", 4 * k);
  n += (size_t)snprintf(buf + n, sizeof buf - n, "], \"y\": [");
  for (int i = 0; i < N; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%.2f", i ? ", " : "", 4.0 * (i % K) - 2 + 0.5 * (i % 9));
  snprintf(buf + n, sizeof buf - n, "]}");
  return buf;
}

/* The R x C grid of tests/lmh/grid_bn.ppl: random tables from seed, y = 1 0 1 ... */
#define GRID_MAX 20
typedef struct Grid {
  int R, C;
  double tab[GRID_MAX][GRID_MAX][4];
  int y[GRID_MAX];
} Grid;

static uint64_t grid_rand(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}

static void grid_make(Grid *g, int R, int C, uint64_t seed) {
  g->R = R, g->C = C;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++)
      for (int k = 0; k < 4; k++)
        g->tab[i][j][k] = 0.05 + 0.9 * (double)grid_rand(&seed) / 9007199254740992.0;
  for (int j = 0; j < C; j++) g->y[j] = (j + 1) % 2;
}

static char *grid_json(const Grid *g) {
  size_t cap = 256 + (size_t)g->R * (size_t)g->C * 128;
  char *s = malloc(cap);
  size_t n = (size_t)snprintf(s, cap, "{\"R\": %d, \"C\": %d, \"tab\": [", g->R, g->C);
  for (int i = 0; i < g->R; i++) {
    n += (size_t)snprintf(s + n, cap - n, "%s[", i ? ", " : "");
    for (int j = 0; j < g->C; j++)
      n += (size_t)snprintf(s + n, cap - n, "%s[%.17g, %.17g, %.17g, %.17g]", j ? ", " : "",
                            g->tab[i][j][0], g->tab[i][j][1], g->tab[i][j][2], g->tab[i][j][3]);
    n += (size_t)snprintf(s + n, cap - n, "]");
  }
  n += (size_t)snprintf(s + n, cap - n, "], \"y\": [");
  for (int j = 0; j < g->C; j++) n += (size_t)snprintf(s + n, cap - n, "%s%d", j ? ", " : "", g->y[j]);
  snprintf(s + n, cap - n, "]}");
  return s;
}

/* P(x[i, j] = 1 | y) by summing over the 2^(R C) states (R C <= 20). */
static inline void grid_marginals(const Grid *g, double *p /* [R * C] */) {
  int n = g->R * g->C;
  double z = 0;
  for (int k = 0; k < n; k++) p[k] = 0;
  for (long s = 0; s < (1L << n); s++) {
    double w = 1;
    for (int i = 0; i < g->R; i++)
      for (int j = 0; j < g->C; j++) {
        int x = (int)(s >> (i * g->C + j)) & 1;
        int up = i > 0 ? (int)(s >> ((i - 1) * g->C + j)) & 1 : 0;
        int left = j > 0 ? (int)(s >> (i * g->C + j - 1)) & 1 : 0;
        double t = g->tab[i][j][up + 2 * left];
        w *= x ? t : 1 - t;
      }
    for (int j = 0; j < g->C; j++) {
      int x = (int)(s >> ((g->R - 1) * g->C + j)) & 1;
      double t = x ? 0.85 : 0.2;
      w *= g->y[j] ? t : 1 - t;
    }
    z += w;
    for (int k = 0; k < n; k++)
      if ((s >> k) & 1) p[k] += w;
  }
  for (int k = 0; k < n; k++) p[k] /= z;
}

/* The same marginals by variable elimination along the raster order: the
   state after cell t is its last C cells (the frontier: cell t - C + 1 is
   bit 0, cell t bit C - 1), whose cell t - C + 1 is the next cell's parent
   above and cell t its left one; forward messages per cell, then the
   backward ones, R C 2^C steps (C <= 16). */
static inline void grid_marginals_frontier(const Grid *g, double *p /* [R * C] */) {
  int R = g->R, C = g->C, n = R * C;
  size_t S = (size_t)1 << C;
  double *al = malloc(sizeof(double) * S * (size_t)(n + 1)), *be = malloc(sizeof(double) * S),
         *nb = malloc(sizeof(double) * S);
  for (size_t s = 0; s < S; s++) al[s] = s == 0; /* before cell 0: no parents (zeros) */
  for (int t = 0; t < n; t++) {
    int i = t / C, j = t % C;
    const double *a = al + S * (size_t)t;
    double *b = al + S * (size_t)(t + 1), z = 0;
    for (size_t s = 0; s < S; s++) b[s] = 0;
    for (size_t s = 0; s < S; s++) {
      if (a[s] == 0) continue;
      int up = i > 0 ? (int)(s & 1) : 0, left = j > 0 ? (int)(s >> (C - 1)) & 1 : 0;
      double th = g->tab[i][j][up + 2 * left];
      for (int x = 0; x < 2; x++) {
        double w = a[s] * (x ? th : 1 - th);
        if (i == R - 1) w *= g->y[j] ? (x ? 0.85 : 0.2) : (x ? 0.15 : 0.8);
        b[(s >> 1) | ((size_t)x << (C - 1))] += w;
      }
    }
    for (size_t s = 0; s < S; s++) z += b[s];
    for (size_t s = 0; s < S; s++) b[s] /= z;
  }
  for (size_t s = 0; s < S; s++) be[s] = 1;
  for (int t = n - 1; t >= 0; t--) {
    /* be: the messages after cell t; the marginal of cell t, bit C - 1 */
    const double *b = al + S * (size_t)(t + 1);
    double num = 0, den = 0;
    for (size_t s = 0; s < S; s++) {
      den += b[s] * be[s];
      if (s >> (C - 1) & 1) num += b[s] * be[s];
    }
    p[t] = num / den;
    int i = t / C, j = t % C;
    const double *a = al + S * (size_t)t;
    double z = 0;
    for (size_t s = 0; s < S; s++) {
      nb[s] = 0;
      if (a[s] == 0) continue;
      int up = i > 0 ? (int)(s & 1) : 0, left = j > 0 ? (int)(s >> (C - 1)) & 1 : 0;
      double th = g->tab[i][j][up + 2 * left];
      for (int x = 0; x < 2; x++) {
        double w = x ? th : 1 - th;
        if (i == R - 1) w *= g->y[j] ? (x ? 0.85 : 0.2) : (x ? 0.15 : 0.8);
        nb[s] += w * be[(s >> 1) | ((size_t)x << (C - 1))];
      }
      z += nb[s];
    }
    for (size_t s = 0; s < S; s++) be[s] = nb[s] / z;
  }
  free(al), free(be), free(nb);
}

/* tests/lmh/grid_bn.ppl with the R x C grid of tables from seed; its exact
   marginals into p (R C reals; NaN when C > 16) unless p is NULL. */
static inline ppl_model *grid_model(ppl_context *ctx, int R, int C, uint64_t seed, double *p) {
  Grid g;
  grid_make(&g, R, C, seed);
  if (p && R * C <= 20) grid_marginals(&g, p);
  else if (p && C <= 16) grid_marginals_frontier(&g, p);
  else if (p) /* the frontier's 2^C states per cell would not fit: no exact marginals */
    for (int k = 0; k < R * C; k++) p[k] = NAN;
  char *js = grid_json(&g);
  ppl_model *m = lmh_model(ctx, "grid_bn.ppl", js);
  free(js);
  return m;
}

/* The acceptance of the learned moves of motif sig in chain 1's note
   ("... finite->normal(mu) 12 blocks, 24000 moves, 99.9% accepted"); NaN if none. */
static inline double lmh_accepted(ppl_result *r, const char *sig) {
  const char *t = ppl_result_summary_text(r), *a = t ? strstr(t, sig) : NULL;
  const char *m = a ? strstr(a, "moves, ") : NULL;
  return m ? atof(m + 7) / 100 : NAN;
}

#endif
