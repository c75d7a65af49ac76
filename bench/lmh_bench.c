/* lmh_bench.c — engine lmh (learned block proposals) against single-site mh,
 * in one run, on the two families of the issue:
 *
 *   1. binary grid Bayesian networks with random conditional tables
 *      (tests/lmh/grid_bn.ppl, 4 x 4, 10 x 10, 14 x 14, 20 x 20: exact marginals
 *      by enumeration or by elimination along the raster order): the mean
 *      and largest absolute error of the marginals against iterations and
 *      CPU seconds, and the mean bulk ESS per second of the nodes whose
 *      exact marginal is in [0.02, 0.98] (the ESS of a 0/1 column, rank-
 *      normalised as for any column); lmh with single cells (its default),
 *      with blocks of up to 4 cells (--cells 4, "lmh4") and mh;
 *   2. a Gaussian mixture (tests/lmh/mixk.ppl, K = 5, N = 60; assignments
 *      z[n] and component means mu): lmh, mh and nuts (which sums the z out
 *      by enumeration), ESS per CPU second of the component means (the
 *      smallest over k) and of the uncertain assignments;
 *   3. the open-universe Gaussian mixture (tests/lmh/openmix.ppl: K latent,
 *      uniform on 1..8, N = 40 points from 3 components): lmh (its birth/
 *      death moves of K, and without them), mh, pgibbs and smc in one run,
 *      the mean log joint (lp__) over draws 1-10, 11-100 and 101-1000 after
 *      a short warmup, and ESS per CPU second of the first component's mean
 *      and of K, within chains (each chain a run of its own).
 *
 * The proposals are trained once (1500 Adam steps, seed 1) on the K = 3
 * mixture and on the 3 x 3 grid, so both runs reuse proposals trained on
 * other programs.  CPU time of the process (one thread), so other work on a
 * shared machine slows both sides alike.  Not a test: it prints a table
 * (docs/engines.md quotes it).
 *
 *   lmh_bench [SOURCE_ROOT [grid [SIZE]|mix|openmix]]   (default ., every part;
 *                                                    grid SIZE: that square grid alone)
 */
#include <time.h>

#include "lmh/lmh_util.h"

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t bench_seed = 2026;

static ppl_result *run_opt(ppl_model *m, const char *engine, const char *lib, int chains,
                           int warmup, int draws, const char *opt, const char *val, double *secs) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = engine;
  ro.chains = chains;
  ro.warmup = warmup;
  ro.draws = draws;
  ppl_run_set(&ro, "threads", "1");
  ro.seed = bench_seed;
  if (lib) ppl_run_set(&ro, "proposals", lib);
  if (opt) ppl_run_set(&ro, opt, val);
  ppl_result *r = NULL;
  double t0 = cpu_now();
  if (ppl_run(m, &ro, &r) != PPL_OK) fprintf(stderr, "lmh_bench: %s failed\n", engine);
  *secs = cpu_now() - t0;
  ppl_run_options_free(&ro);
  return r;
}

static ppl_result *run(ppl_model *m, const char *engine, const char *lib, int chains, int warmup,
                       int draws, double *secs) {
  return run_opt(m, engine, lib, chains, warmup, draws, NULL, NULL, secs);
}

static double col_stat(ppl_result *r, const char *col, double *mean) {
  ppl_summary s;
  int c = ppl_result_column_index(r, col);
  if (c < 0 || ppl_result_summary(r, c, &s) != PPL_OK) return NAN;
  if (mean) *mean = s.mean;
  return s.ess_bulk;
}

/* One grid size: lmh and mh at growing numbers of draws, interleaved. */
static void bench_grid_size(ppl_context *ctx, const char *lib, int R, int C, int maxdraws) {
  int n = R * C;
  double *p = malloc(sizeof(double) * (size_t)n);
  ppl_model *m = grid_model(ctx, R, C, 5, p);
  if (!m) return;
  if (isnan(p[0])) { /* too wide for the exact marginals: a long reference run of lmh */
    double secs;
    bench_seed = 77;
    ppl_result *r = run(m, "lmh", lib, 2, 200, 4000, &secs);
    bench_seed = 2026;
    if (!r) return;
    for (int k = 0; k < n; k++) {
      char col[24];
      snprintf(col, sizeof col, "x[%d,%d]", k / C + 1, k % C + 1);
      col_stat(r, col, &p[k]);
    }
    ppl_result_free(r);
    printf("\n  (%d x %d: no exact marginals; 'err' is against a reference run of lmh, 2 x 4000 "
           "draws, %.0f CPU s, other seeds)", R, C, secs);
  }
  int ncells = 0;
  for (int k = 0; k < n; k++) ncells += p[k] >= 0.02 && p[k] <= 0.98;
  printf("\n1. grid network %d x %d (%d binary nodes, %d bits seen; %d with exact marginals in "
         "[0.02, 0.98]), 2 chains, warmup 100:\n", R, C, n, C, ncells);
  printf("  %-6s %7s %9s %11s %11s %14s\n", "engine", "draws", "CPU s", "mean |err|", "max |err|",
         "mean ESS/s");
  static const int draws[] = {100, 300, 1000, 3000};
  double esss[3][4] = {{0}};
  int nd = 0;
  static const char *names[] = {"lmh", "lmh4", "mh"};
  for (int d = 0; d < 4 && draws[d] <= maxdraws; d++, nd++)
    for (int e = 0; e < 3; e++) {
      const char *eng = e == 2 ? "mh" : "lmh";
      double secs;
      ppl_result *r = run_opt(m, eng, e == 2 ? NULL : lib, 2, 100, draws[d], e == 1 ? "cells" : NULL,
                              "4", &secs);
      if (!r) continue;
      double err = 0, emax = 0, ess = 0;
      for (int k = 0; k < n; k++) {
        char col[24];
        double mean = NAN;
        snprintf(col, sizeof col, "x[%d,%d]", k / C + 1, k % C + 1);
        double es = col_stat(r, col, &mean);
        if (p[k] >= 0.02 && p[k] <= 0.98) ess += es / ncells;
        err += fabs(mean - p[k]) / n;
        emax = fmax(emax, fabs(mean - p[k]));
      }
      esss[e][d] = ess / secs;
      printf("  %-6s %7d %9.2f %11.4f %11.4f %14.1f\n", names[e], draws[d], secs, err, emax, ess / secs);
      fflush(stdout);
      ppl_result_free(r);
    }
  printf("  ESS/s lmh / mh:");
  for (int d = 0; d < nd; d++) printf(" %.2f (%d draws)%s", esss[0][d] / esss[2][d], draws[d], d + 1 < nd ? "," : "\n");
  printf("  ESS/s lmh --cells 4 / mh:");
  for (int d = 0; d < nd; d++) printf(" %.2f (%d draws)%s", esss[1][d] / esss[2][d], draws[d], d + 1 < nd ? "," : "\n");
  ppl_model_free(m);
  free(p);
}

static void bench_grid(ppl_context *ctx, const char *lib, int only) {
  if (only) { /* lmh_bench ROOT grid SIZE: that size alone */
    bench_grid_size(ctx, lib, only, only, only <= 4 ? 3000 : only <= 10 ? 1000 : 300);
    return;
  }
  bench_grid_size(ctx, lib, 4, 4, 3000);
  bench_grid_size(ctx, lib, 10, 10, 1000);
  bench_grid_size(ctx, lib, 14, 14, 300);
  bench_grid_size(ctx, lib, 20, 20, 300);
}

static void bench_mix(ppl_context *ctx, const char *lib) {
  int K = 5, N = 60;
  ppl_model *m = lmh_model(ctx, "mixk.ppl", mix_json(K, N));
  if (!m) return;
  printf("\n2. Gaussian mixture K = %d, N = %d, 2 chains, warmup 200, 1000 draws:\n", K, N);
  printf("  %-6s %9s %14s %16s %18s\n", "engine", "CPU s", "min ESS mu", "min ESS mu / s",
         "mean ESS z / s");
  double ratio[3][2];
  static const char *engs[] = {"lmh", "mh", "nuts"};
  for (int e = 0; e < 3; e++) {
    const char *eng = engs[e];
    double secs;
    ppl_result *r = run(m, eng, e ? NULL : lib, 2, 200, 1000, &secs);
    if (!r) continue;
    double emu = INFINITY, ez = 0;
    int nz = 0;
    for (int k = 1; k <= K; k++) {
      char col[16];
      snprintf(col, sizeof col, "mu[%d]", k);
      emu = fmin(emu, col_stat(r, col, NULL));
    }
    for (int i = 1; i <= N; i++) {
      char col[16];
      ppl_summary s;
      snprintf(col, sizeof col, "z[%d]", i);
      int c = ppl_result_column_index(r, col);
      if (c >= 0 && ppl_result_summary(r, c, &s) == PPL_OK && s.sd > 0.1 && isfinite(s.ess_bulk))
        ez += s.ess_bulk, nz++;
    }
    ez = nz ? ez / nz : NAN;
    ratio[e][0] = emu / secs, ratio[e][1] = ez / secs;
    printf("  %-6s %9.2f %14.0f %16.0f %18.0f\n", eng, secs, emu, emu / secs, ez / secs);
    ppl_result_free(r);
  }
  printf("  ESS/s lmh / mh: component means %.2f, uncertain assignments %.2f; lmh / nuts (the z "
         "summed out by enumeration, drawn exactly given mu): %.2f, %.2f\n",
         ratio[0][0] / ratio[1][0], ratio[0][1] / ratio[1][1], ratio[0][0] / ratio[2][0],
         ratio[0][1] / ratio[2][1]);
  ppl_model_free(m);
}

/* The mean of column col over draws [a, b) of every chain. */
static double window_mean(ppl_result *r, const char *col, int a, int b) {
  int c = ppl_result_column_index(r, col), n = 0;
  double s = 0;
  for (int ch = 0; c >= 0 && ch < ppl_result_num_chains(r); ch++)
    for (int d = a; d < b && d < ppl_result_num_draws(r); d++) s += ppl_result_draw(r, ch, d, c), n++;
  return n ? s / n : NAN;
}

/* Each chain a run of its own: a mixture's chains may settle on different
   labellings of the same components (mu[1] near -5 in one, near 5 in the
   other), which no move of any engine here crosses, so ESS of mu[1] over
   the chains together says nothing; the ESS within each chain, summed, is
   the effective draws a user gets from either. */
static void bench_openmix(ppl_context *ctx, const char *lib) {
  char js[2048];
  size_t n = (size_t)snprintf(js, sizeof js, "{\"N\": 40, \"Kmax\": 8, \"s\": 5, \"y\": [");
  for (int i = 0; i < 40; i++) /* components at -5, 0, 5; offsets -1 .. 1 */
    n += (size_t)snprintf(js + n, sizeof js - n, "%s%.2f", i ? ", " : "", 5.0 * (i % 3 - 1) + 0.25 * (i % 9) - 1);
  snprintf(js + n, sizeof js - n, "]}");
  ppl_model *m = lmh_model(ctx, "openmix.ppl", js);
  if (!m) return;
  printf("\n3. open-universe Gaussian mixture (K ~ uniform 1..8), N = 40, 2 chains (each a run of "
         "its own: ESS within chains, summed), warmup 100, 1000 draws (smc: 1 run, 1000 "
         "particles):\n");
  printf("  %-9s %8s %11s %11s %11s %11s %11s %9s\n", "engine", "CPU s", "lp 1-10", "lp 11-100",
         "lp 101-1000", "ESS mu1/s", "ESS K/s", "mean K");
  static const char *engs[] = {"lmh", "lmh-nojmp", "mh", "pgibbs", "smc"};
  double ratio[5][2];
  for (int e = 0; e < 5; e++) {
    bool smc = !strcmp(engs[e], "smc"), nojump = e == 1;
    const char *eng = e <= 1 ? "lmh" : engs[e];
    double secs = 0, emu = 0, ek = 0, mk = 0, lp[3] = {0, 0, 0};
    int nch = smc ? 1 : 2, got = 0;
    for (int c = 0; c < nch; c++) {
      double t, mkc = NAN;
      bench_seed = 2026 + (uint64_t)c;
      ppl_result *r = smc ? run_opt(m, "smc", NULL, 1, 0, 1000, "particles", "1000", &t)
                          : run_opt(m, eng, e <= 1 ? lib : NULL, 1, 100, 1000, nojump ? "jumps" : NULL, "0", &t);
      if (!r) continue;
      double ec = col_stat(r, "mu[1]", NULL), kc = col_stat(r, "K", &mkc);
      secs += t, emu += ec, ek += isfinite(kc) ? kc : 0, mk += mkc / nch, got++;
      lp[0] += window_mean(r, "lp__", 0, 10) / nch, lp[1] += window_mean(r, "lp__", 10, 100) / nch;
      lp[2] += window_mean(r, "lp__", smc ? 0 : 100, 1000) / nch;
      ppl_result_free(r);
    }
    bench_seed = 2026;
    if (got < nch) continue;
    ratio[e][0] = emu / secs, ratio[e][1] = ek / secs;
    if (smc)
      printf("  %-9s %8.2f %11s %11s %11.1f %11.0f %11.0f %9.2f\n", engs[e], secs, "-", "-", lp[2],
             emu / secs, ek / secs, mk);
    else
      printf("  %-9s %8.2f %11.1f %11.1f %11.1f %11.0f %11.0f %9.2f\n", engs[e], secs, lp[0], lp[1],
             lp[2], emu / secs, ek / secs, mk);
    fflush(stdout);
  }
  printf("  ESS/s of mu[1], lmh / mh: %.2f, lmh / pgibbs: %.2f; of K, lmh / mh: %.2f, lmh / lmh "
         "without jump moves: %.2f (an ESS is only meaningful for a chain at the posterior: see "
         "lp 101-1000; smc's ESS is its summary's, over weighted particles; nuts: not applicable, "
         "K changes the structure)\n",
         ratio[0][0] / ratio[2][0], ratio[0][0] / ratio[3][0], ratio[0][1] / ratio[2][1],
         ratio[0][1] / ratio[1][1]);
  ppl_model_free(m);
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : ".";
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/lmh", root);
  lmh_dir = dir;
  ppl_context *ctx = ppl_context_new(NULL);
  char *lib = lmh_tmpdir();
  /* proposals trained on other programs: the K = 3 mixture, the 3 x 3 grid */
  double t0 = cpu_now();
  ppl_model *m3 = lmh_model(ctx, "mixk.ppl", mix_json(3, 12));
  ppl_model *g3 = grid_model(ctx, 3, 3, 1, NULL);
  if (!m3 || !g3 || lmh_learn(m3, lib, 1500, 1) != 2 || lmh_learn(g3, lib, 1500, 1) != 2) {
    fprintf(stderr, "lmh_bench: training failed: %s\n", ppl_errmsg(ctx));
    return 1;
  }
  printf("trained the mixture's (K = 3) and the 3 x 3 grid's proposals (1500 steps each) in "
         "%.1f CPU s\n", cpu_now() - t0);
  ppl_model_free(m3), ppl_model_free(g3);
  const char *only = argc > 2 ? argv[2] : NULL; /* grid, mix or openmix: that part alone */
  int size = argc > 3 ? atoi(argv[3]) : 0;
  if (size < 0 || size > GRID_MAX) {
    fprintf(stderr, "lmh_bench: a grid of 1 to %d rows\n", GRID_MAX);
    return 2;
  }
  if (!only || !strcmp(only, "grid")) bench_grid(ctx, lib, size);
  if (!only || !strcmp(only, "mix")) bench_mix(ctx, lib);
  if (!only || !strcmp(only, "openmix")) bench_openmix(ctx, lib);
  ppl_context_free(ctx);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", lib);
  if (system(cmd) != 0) fprintf(stderr, "lmh_bench: could not remove %s\n", lib);
  return 0;
}
