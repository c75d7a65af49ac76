/* test_lmh_exact.c — engine lmh against exact posteriors, with a trained and
 * with a deliberately untrained (random-weight) proposal: the MH correction
 * must make both exact, the untrained one only slower.
 *
 *   - mix2_enum (tests/exact): P(z[n] = 1) enumerated in exact.json;
 *   - a program whose structure changes (tests/lmh/dynamic.ppl): P(z = 1)
 *     and P(k = 1) in closed form;
 *   - a 3 x 3 binary grid network with random tables: every node's marginal
 *     by enumeration of its 512 states (lmh_util.h), its cells moved in
 *     blocks (a square, a column and a row); the blocks trained on it on an
 *     unseen 4 x 5 grid (marginals by enumeration), mixing better per draw
 *     than untrained blocks and mh;
 *   - continuous blocks (normal->normal(mu)): normal_mean (tests/exact)
 *     against its conjugate posterior, and the open-universe mixture
 *     (tests/lmh/openmix.ppl, K latent) against P(K) and E(mu[1]) summed
 *     over every K and assignment with the means integrated out;
 *   - generalisation: a proposal trained on the K = 3 mixture (mixk.ppl) on
 *     K = 5 and K = 10 mixtures with other data: its moves are accepted
 *     more often, and the uncertain assignments z[n] mix better (ESS per
 *     draw), than with the untrained proposal at the same cost and than
 *     with single-site mh (whose steps cost less: bench/lmh_bench.c
 *     compares per second).
 *
 * Tolerances: a probability within 4 Monte Carlo standard errors,
 * sqrt(p (1 - p) / ESS) with the run's bulk ESS, a mean within 4 sd / sqrt(ESS),
 * an sd within 4 sd / sqrt(2 ESS).  Fixed seeds.
 *
 *   test_lmh_exact TESTS_LMH_DIR TESTS_EXACT_DIR
 */
#include <jansson.h>

#include "lmh_util.h"

static const char *exact_dir;
static ppl_context *the_ctx;

static const char *run_init; /* --init FILE for the next runs, or NULL */
static const char *run_cells; /* lmh's --cells for the next runs, or NULL */
static const char *run_jumps; /* lmh's --jumps, or NULL */

static ppl_result *run(ppl_model *m, const char *engine, const char *lib, int chains, int warmup,
                       int draws, uint64_t seed) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = engine;
  ro.chains = chains;
  ro.warmup = warmup;
  ro.draws = draws;
  ro.seed = seed;
  if (lib) ppl_run_set(&ro, "proposals", lib);
  if (run_init) ppl_run_set(&ro, "init", run_init);
  if (run_cells && !strcmp(engine, "lmh")) ppl_run_set(&ro, "cells", run_cells);
  if (run_jumps && !strcmp(engine, "lmh")) ppl_run_set(&ro, "jumps", run_jumps);
  ppl_result *r = NULL;
  if (ppl_run(m, &ro, &r) != PPL_OK) tap_diag("%s: %s", engine, ppl_errmsg(the_ctx));
  ppl_run_options_free(&ro);
  return r;
}

/* P(col == 1) against want within 4 MCSE. */
static void check_prob(ppl_result *r, const char *what, const char *col, double want) {
  int c = ppl_result_column_index(r, col);
  if (!tap_ok(c >= 0, "%s: column %s", what, col)) return;
  ppl_summary s;
  ppl_result_summary(r, c, &s);
  int n = ppl_result_num_chains(r) * ppl_result_num_draws(r);
  double ess = isfinite(s.ess_bulk) && s.ess_bulk > 0 ? s.ess_bulk : n;
  double mcse = sqrt(want * (1 - want) / ess);
  tap_ok(fabs(s.mean - want) <= 4 * mcse, "%s: P(%s = 1) = %.4f, exact %.4f (4 mcse = %.4f)", what,
         col, s.mean, want, 4 * mcse);
}

/* A mean against want within 4 MCSE (and its sd against want_sd when > 0). */
static void check_mean(ppl_result *r, const char *what, const char *col, double want, double want_sd) {
  int c = ppl_result_column_index(r, col);
  if (!tap_ok(c >= 0, "%s: column %s", what, col)) return;
  ppl_summary s;
  ppl_result_summary(r, c, &s);
  double ess = isfinite(s.ess_bulk) && s.ess_bulk > 0 ? s.ess_bulk : 1;
  double sd = want_sd > 0 ? want_sd : s.sd;
  tap_ok(fabs(s.mean - want) <= 4 * sd / sqrt(ess), "%s: E(%s) = %.4f, exact %.4f (4 mcse = %.4f)",
         what, col, s.mean, want, 4 * sd / sqrt(ess));
  if (want_sd > 0)
    tap_ok(fabs(s.sd - want_sd) <= 4 * want_sd / sqrt(2 * ess), "%s: sd(%s) = %.4f, exact %.4f",
           what, col, s.sd, want_sd);
}

static double mean_ess_z(ppl_result *r, int N);

/* P(col = v) from the draws against want within 4 MCSE (the column's ESS). */
static void check_value_prob(ppl_result *r, const char *what, const char *col, int v, double want) {
  int c = ppl_result_column_index(r, col);
  if (!tap_ok(c >= 0, "%s: column %s", what, col)) return;
  double n1 = 0, n = 0;
  for (int ch = 0; ch < ppl_result_num_chains(r); ch++)
    for (int d = 0; d < ppl_result_num_draws(r); d++) n1 += ppl_result_draw(r, ch, d, c) == v, n++;
  ppl_summary x;
  ppl_result_summary(r, c, &x);
  double ess = isfinite(x.ess_bulk) && x.ess_bulk > 0 ? x.ess_bulk : 1;
  double mcse = sqrt(want * (1 - want) / ess);
  tap_ok(fabs(n1 / n - want) <= 4 * mcse + 1e-12, "%s: P(%s = %d) = %.4f, exact %.4f (4 mcse = %.4f)",
         what, col, v, n1 / n, want, 4 * mcse);
}

/* Problem NAME of tests/exact: its program with its data in *m, and its
   exact.json (NULL, after the failed check, when either does not load). */
static json_t *load_exact(ppl_context *ctx, const char *name, ppl_model **m) {
  char path[1024], data[1024], ex[1024];
  snprintf(path, sizeof path, "%s/%s.ppl", exact_dir, name);
  snprintf(data, sizeof data, "%s/problems/%s/data.json", exact_dir, name);
  snprintf(ex, sizeof ex, "%s/problems/%s/exact.json", exact_dir, name);
  json_error_t je;
  json_t *root = json_load_file(ex, 0, &je);
  if (tap_ok(root && ppl_compile_file(ctx, path, m) == PPL_OK && ppl_set_data_file(*m, data) == PPL_OK,
             "%s loads (%s)", name, ppl_errmsg(ctx)))
    return root;
  json_decref(root);
  return NULL;
}

/* hmm3 (tests/exact): z[t]'s motif has two kinds of children (the next
   state, categorical(theta), and y[t], normal(mu)); P(z_last = k) enumerated. */
static void test_hmm3(ppl_context *ctx, const char *trained, const char *untrained) {
  ppl_model *m = NULL;
  json_t *root = load_exact(ctx, "hmm3", &m);
  if (!root) goto out;
  tap_ok(lmh_learn(m, trained, 1500, 4) == 2 && lmh_learn(m, untrained, 0, 4) == 2,
         "hmm3: trained and untrained proposals for its two motifs (%s)", ppl_errmsg(ctx));
  json_t *probs = json_object_get(root, "z_last_probs");
  for (int t = 0; t < 2; t++) {
    const char *lib = t ? untrained : trained, *what = t ? "hmm3/untrained" : "hmm3/trained";
    ppl_result *r = run(m, "lmh", lib, 4, 200, 1000, 3131);
    if (!tap_ok(r != NULL, "%s runs", what)) continue;
    for (int k = 1; k <= 3; k++)
      check_value_prob(r, what, "z_last", k, json_number_value(json_array_get(probs, (size_t)k - 1)));
    double acc = lmh_accepted(r, "finite->categorical(theta)+normal(mu)");
    tap_diag("%s: the states' learned moves accepted %.3f", what, acc);
    if (t == 0) tap_ok(acc > 0.95, "hmm3/trained: the states' moves accepted %.3f > 0.95", acc);
    ppl_result_free(r);
  }
out:
  json_decref(root);
  ppl_model_free(m);
}

/* hmm3.ppl with K = 4 states and T = 60 steps simulated from seed: an HMM
   of another size than the one the proposals were trained on. */
static char *hmm4_json(void) {
  int K = 4, T = 60;
  uint64_t seed = 99;
  double mu[4] = {-3, -1, 1, 3};
  char *s = malloc(8192);
  size_t n = (size_t)snprintf(s, 8192, "{\"T\": %d, \"K\": %d, \"sigma\": 1, \"mu\": [-3, -1, 1, 3], "
                                       "\"init\": [0.25, 0.25, 0.25, 0.25], \"trans\": [", T, K);
  for (int i = 0; i < K; i++) {
    n += (size_t)snprintf(s + n, 8192 - n, "%s[", i ? ", " : "");
    for (int j = 0; j < K; j++) n += (size_t)snprintf(s + n, 8192 - n, "%s%g", j ? ", " : "", i == j ? 0.85 : 0.05);
    n += (size_t)snprintf(s + n, 8192 - n, "]");
  }
  n += (size_t)snprintf(s + n, 8192 - n, "], \"y\": [");
  int z = 0;
  for (int t = 0; t < T; t++) {
    double u = (double)grid_rand(&seed) / 9007199254740992.0;
    if (u > 0.85) z = (z + 1 + (int)((u - 0.85) / 0.05)) % K;
    double g = 0; /* a rough standard normal: the sum of 12 uniforms less 6 */
    for (int i = 0; i < 12; i++) g += (double)grid_rand(&seed) / 9007199254740992.0;
    n += (size_t)snprintf(s + n, 8192 - n, "%s%.4f", t ? ", " : "", mu[z] + g - 6);
  }
  snprintf(s + n, 8192 - n, "]}");
  return s;
}

/* Proposals trained on hmm3 (3 states, 100 steps) on a 4-state HMM of 60
   steps: accepted more often than untrained ones, and the uncertain states
   mix better than under mh. */
static void test_hmm_generalise(ppl_context *ctx, const char *trained, const char *untrained) {
  char path[1024];
  snprintf(path, sizeof path, "%s/hmm3.ppl", exact_dir);
  ppl_model *m = NULL;
  char *js = hmm4_json();
  if (!tap_ok(ppl_compile_file(ctx, path, &m) == PPL_OK && ppl_set_data_json(m, js, "hmm4.json") == PPL_OK,
              "hmm3.ppl with a 4-state series loads (%s)", ppl_errmsg(ctx))) {
    free(js);
    ppl_model_free(m);
    return;
  }
  free(js);
  ppl_result *rt = run(m, "lmh", trained, 2, 100, 300, 5),
             *ru = run(m, "lmh", untrained, 2, 100, 300, 5), *rm = run(m, "mh", NULL, 2, 100, 300, 5);
  if (tap_ok(rt && ru && rm, "hmm4: lmh trained, untrained and mh run")) {
    const char *sig = "finite->categorical(theta)+normal(mu)";
    double at = lmh_accepted(rt, sig), au = lmh_accepted(ru, sig);
    double et = mean_ess_z(rt, 60), eu = mean_ess_z(ru, 60), em = mean_ess_z(rm, 60);
    tap_diag("hmm4: accepted %.3f trained, %.3f untrained; mean ESS of the uncertain z[t] %.0f "
             "trained, %.0f untrained, %.0f mh (600 draws)", at, au, et, eu, em);
    tap_ok(at > 0.9 && at > au + 0.1, "hmm4: trained on hmm3, the states' moves are accepted %.3f "
           "(untrained %.3f)", at, au);
    tap_ok(et > 1.5 * em, "hmm4: mean ESS of the uncertain states %.0f trained > 1.5 x mh's %.0f", et, em);
  }
  ppl_result_free(rt), ppl_result_free(ru), ppl_result_free(rm);
  ppl_model_free(m);
}

/* normal_mean (tests/exact): mu's conjugate posterior, mu moved only by the
   continuous block's learned moves. */
static void test_normal_mean(ppl_context *ctx, const char *trained, const char *untrained) {
  ppl_model *m = NULL;
  json_t *root = load_exact(ctx, "normal_mean", &m);
  if (!root) goto out;
  tap_ok(lmh_learn(m, trained, 1500, 3) == 1 && lmh_learn(m, untrained, 0, 3) == 1,
         "normal_mean: a trained and an untrained proposal for normal->normal(mu) (%s)", ppl_errmsg(ctx));
  json_t *mu = json_object_get(root, "mu");
  double want = json_number_value(json_object_get(mu, "mean")), sd = json_number_value(json_object_get(mu, "sd"));
  for (int t = 0; t < 2; t++) {
    const char *lib = t ? untrained : trained, *what = t ? "normal_mean/untrained" : "normal_mean/trained";
    ppl_result *r = run(m, "lmh", lib, 4, 200, 1000, 515);
    if (!tap_ok(r != NULL, "%s runs", what)) continue;
    check_mean(r, what, "mu", want, sd);
    double acc = lmh_accepted(r, "normal->normal(mu)");
    tap_diag("%s: learned moves accepted %.3f", what, acc);
    if (t == 0) tap_ok(acc > 0.95, "normal_mean/trained: accepted %.3f > 0.95 (near Gibbs)", acc);
    else tap_ok(acc > 0.01 && acc < 0.95, "normal_mean/untrained: accepted %.3f, below the trained", acc);
    ppl_result_free(r);
  }
out:
  json_decref(root);
  ppl_model_free(m);
}

/* tests/lmh/twomeans.ppl: two means moved as one group (their blankets
   apart) or one by one (shared = 1: a child of both) with the proposals
   trained on normal_mean, against their Gaussian posterior. */
static void test_two_means(ppl_context *ctx, const char *trained, const char *untrained) {
  static const double ya[] = {1.3, 2.1, 0.7, 1.8}, yb[] = {-1.2, -0.4, -2.0};
  const double ys = 0.9;
  for (int shared = 0; shared < 2; shared++) {
    /* precision P and P (mean) = h of (a, b) */
    double P[2][2] = {{0.25 + 4, 0}, {0, 0.25 + 3}}, h[2] = {0, 0.25};
    for (int i = 0; i < 4; i++) h[0] += ya[i];
    for (int i = 0; i < 3; i++) h[1] += yb[i];
    if (shared) P[0][0] += 1, P[1][1] += 1, P[0][1] = P[1][0] = 1, h[0] += ys, h[1] += ys;
    double det = P[0][0] * P[1][1] - P[0][1] * P[1][0];
    double ma = (P[1][1] * h[0] - P[0][1] * h[1]) / det, mb = (P[0][0] * h[1] - P[1][0] * h[0]) / det;
    double sa = sqrt(P[1][1] / det), sb = sqrt(P[0][0] / det);
    char js[256];
    snprintf(js, sizeof js, "{\"Na\": 4, \"Nb\": 3, \"ya\": [1.3, 2.1, 0.7, 1.8], \"yb\": [-1.2, -0.4, "
             "-2.0], \"shared\": %d, \"ys\": %g}", shared, ys);
    ppl_model *m = lmh_model(ctx, "twomeans.ppl", js);
    if (!tap_ok(m != NULL, "twomeans (shared %d) loads", shared)) continue;
    for (int t = 0; t < 2; t++) {
      char what[64];
      snprintf(what, sizeof what, "twomeans shared %d/%s", shared, t ? "untrained" : "trained");
      ppl_result *r = run(m, "lmh", t ? untrained : trained, 4, 300, 2000, 4242);
      if (!tap_ok(r != NULL, "%s runs", what)) continue;
      check_mean(r, what, "a", ma, sa);
      check_mean(r, what, "b", mb, sb);
      const char *txt = ppl_result_summary_text(r);
      bool grouped = txt && strstr(txt, "group moves of the continuous blocks");
      tap_ok(grouped == !shared, "%s: the means %s", what,
             shared ? "move one by one (a child of both)" : "move as one group");
      tap_diag("%s: learned moves accepted %.3f", what, lmh_accepted(r, "normal->normal(mu)"));
      ppl_result_free(r);
    }
    ppl_model_free(m);
  }
}

/* log of the integral over m of prod_i N(y_i; m, 1) N(m; 0, s^2) */
static double log_ml(int n, const double *y, double s) {
  if (n == 0) return 0;
  double prec = 1 / (s * s) + n, S = 0, SS = 0;
  for (int i = 0; i < n; i++) S += y[i], SS += y[i] * y[i];
  return -0.5 * n * log(2 * M_PI) - 0.5 * log(s * s * prec) - 0.5 * (SS - S * S / prec);
}

/* tests/lmh/openmix.ppl's exact P(K = k) (pk[1..Kmax]) and E(mu[1]): every
   K and assignment, the means integrated out (Kmax^N terms). */
static void openmix_exact(int N, const double *y, int Kmax, double s, double *pk, double *m1) {
  double Z = 0, M = 0;
  for (int k = 0; k <= Kmax; k++) pk[k] = 0;
  for (int K = 1; K <= Kmax; K++) {
    long total = 1;
    for (int i = 0; i < N; i++) total *= K;
    for (long code = 0; code < total; code++) {
      int z[16];
      long c = code;
      for (int i = 0; i < N; i++) z[i] = (int)(c % K), c /= K;
      double lw = -log((double)Kmax) - N * log((double)K), mean1 = 0;
      for (int k = 0; k < K; k++) {
        double ys[16];
        int n = 0;
        for (int i = 0; i < N; i++)
          if (z[i] == k) ys[n++] = y[i];
        lw += log_ml(n, ys, s);
        if (k == 0) {
          double S = 0;
          for (int i = 0; i < n; i++) S += ys[i];
          mean1 = S / (1 / (s * s) + n);
        }
      }
      double w = exp(lw);
      Z += w, pk[K] += w, M += w * mean1;
    }
  }
  for (int k = 1; k <= Kmax; k++) pk[k] /= Z;
  *m1 = M / Z;
}

/* The jump moves' acceptance in r's notes ("jump moves: B births, P%
   accepted, D deaths, Q% accepted"): births (0) or deaths (1). */
static double jump_accepted(ppl_result *r, int deaths) {
  const char *t = ppl_result_summary_text(r), *a = t ? strstr(t, "jump moves: ") : NULL;
  long nb, nd;
  double pb, pd;
  if (!a || sscanf(a, "jump moves: %ld births, %lf%% accepted, %ld deaths, %lf%%", &nb, &pb, &nd,
                   &pd) != 4)
    return NAN;
  return (deaths ? pd : pb) / 100;
}

static double col_ess(ppl_result *r, const char *col) {
  ppl_summary x;
  int c = ppl_result_column_index(r, col);
  return c >= 0 && ppl_result_summary(r, c, &x) == PPL_OK ? x.ess_bulk : NAN;
}

/* The open-universe mixture with proposals trained on another program (the
   K = 3 mixture of mixk.ppl), and untrained ones: K's marginal and E(mu[1])
   against the exact sums, K moved by the learned birth/death moves beside
   mh's single-site moves.  Two problems: 5 points with K <= 3, and 7 points
   in three groups with K <= 4 (P(K) spread over 2, 3 and 4); on the second,
   the jump moves give K an ESS per draw well above the chain without them
   (--jumps 0: K moves only by mh's single-site proposals). */
static void test_openmix(ppl_context *ctx, const char *trained, const char *untrained) {
  static const double y5[] = {-2.1, -1.7, 0.3, 2.2, 2.6}, y7[] = {-3.1, -2.4, -0.2, 0.5, 2.9, 3.3, 3.8};
  static const struct {
    int N, Kmax;
    double s;
    const double *y;
  } pb[2] = {{5, 3, 3, y5}, {7, 4, 3, y7}};
  for (int q = 0; q < 2; q++) {
    int N = pb[q].N, Kmax = pb[q].Kmax;
    double pk[8], m1;
    openmix_exact(N, pb[q].y, Kmax, pb[q].s, pk, &m1);
    char js[512];
    size_t n = (size_t)snprintf(js, sizeof js, "{\"N\": %d, \"Kmax\": %d, \"s\": %g, \"y\": [", N,
                                Kmax, pb[q].s);
    for (int i = 0; i < N; i++) n += (size_t)snprintf(js + n, sizeof js - n, "%s%g", i ? ", " : "", pb[q].y[i]);
    snprintf(js + n, sizeof js - n, "]}");
    ppl_model *m = lmh_model(ctx, "openmix.ppl", js);
    if (!tap_ok(m != NULL, "openmix N = %d loads", N)) continue;
    double essk[2] = {NAN, NAN};
    for (int t = 0; t < 3; t++) {
      const char *lib = t == 1 ? untrained : trained;
      char what[64];
      snprintf(what, sizeof what, "openmix N = %d/%s", N,
               t == 0 ? "trained" : t == 1 ? "untrained" : "trained, no jumps");
      run_jumps = t == 2 ? "0" : NULL;
      if (t == 2 && q == 0) continue;
      ppl_result *r = run(m, "lmh", lib, 4, 500, q ? 3000 : 5000, 8080 + (uint64_t)q);
      run_jumps = NULL;
      if (!tap_ok(r != NULL, "%s runs", what)) continue;
      for (int k = 2; k <= Kmax; k++) check_value_prob(r, what, "K", k, pk[k]);
      check_mean(r, what, "mu[1]", m1, 0);
      double ab = jump_accepted(r, 0), ad = jump_accepted(r, 1);
      tap_diag("%s: continuous moves accepted %.3f, discrete %.3f; births %.3f, deaths %.3f; ESS "
               "of K %.0f", what, lmh_accepted(r, "normal->normal(mu)"),
               lmh_accepted(r, "finite->normal(mu)"), ab, ad, col_ess(r, "K"));
      /* the untrained network's redraw of every assignment is far from
         their conditionals: its jumps are rare, but must happen */
      if (t == 0) tap_ok(ab > 0.1 && ad > 0.1, "%s: births (%.3f) and deaths (%.3f) accepted", what, ab, ad);
      if (t == 1) tap_ok(ab > 0 && ad > 0, "%s: births (%.3f) and deaths (%.3f) accepted", what, ab, ad);
      if (t == 2) tap_ok(isnan(ab), "%s: no jump moves with --jumps 0", what);
      if (q == 1 && t != 1) essk[t / 2] = col_ess(r, "K");
      ppl_result_free(r);
    }
    if (q == 1)
      tap_ok(essk[0] > 2 * essk[1], "openmix N = 7: ESS of K %.0f with the jump moves > 2 x %.0f "
             "without", essk[0], essk[1]);
    ppl_model_free(m);
  }
}

static void test_mix2(ppl_context *ctx, const char *trained, const char *untrained) {
  ppl_model *m = NULL;
  json_t *root = load_exact(ctx, "mix2_enum", &m);
  if (!root) goto out;
  tap_ok(lmh_learn(m, trained, 1500, 1) == 2 && lmh_learn(m, untrained, 0, 1) == 2,
         "mix2_enum: a trained and an untrained proposal (%s)", ppl_errmsg(ctx));
  json_t *probs = json_object_get(root, "z_is_second_probs");
  /* the means start in the main mode, as a Stan user would start them: the
     label-swapped mode (0.048% of the mass) holds a chain begun there under
     any local sampler once the means move by their conditionals */
  char init[1100];
  snprintf(init, sizeof init, "%s/init.json", trained);
  FILE *f = fopen(init, "w");
  if (f) fputs("{\"mu1\": -2, \"mu2\": 2}", f), fclose(f);
  run_init = f ? init : NULL;
  for (int t = 0; t < 2; t++) {
    const char *lib = t ? untrained : trained, *what = t ? "mix2/untrained" : "mix2/trained";
    ppl_result *r = run(m, "lmh", lib, 4, 300, 1000, 20261128);
    if (!tap_ok(r != NULL, "%s runs", what)) continue;
    static const int idx[] = {1, 2, 3, 6, 12};
    for (int i = 0; i < 5; i++) {
      char col[16];
      snprintf(col, sizeof col, "z[%d]", idx[i]);
      check_prob(r, what, col, json_number_value(json_array_get(probs, (size_t)idx[i] - 1)));
    }
    double acc = lmh_accepted(r, "finite->normal(mu)");
    tap_diag("%s: learned moves accepted %.3f", what, acc);
    if (t == 0) tap_ok(acc > 0.95, "mix2/trained: the learned moves are accepted %.3f > 0.95 (near Gibbs)", acc);
    ppl_result_free(r);
  }
  run_init = NULL;
out:
  json_decref(root);
  ppl_model_free(m);
}

/* A structure that changes between runs (tests/lmh/dynamic.ppl), with the
   proposal trained for mix2: P(z = 1) and P(k = 1) in closed form. */
static void test_dynamic(ppl_context *ctx, const char *trained) {
  ppl_model *m = lmh_model(ctx, "dynamic.ppl", "{\"y1\": 0.5, \"y2\": 0.3}");
  if (!tap_ok(m != NULL, "dynamic loads")) return;
  double pz, pk;
  double a = 0.3 * exp(-0.5 * 1.5 * 1.5), b = 0.7 * exp(-0.5 * 2.5 * 2.5);
  pz = a / (a + b);
  double c = exp(-0.5 * 0.3 * 0.3 / 2) / sqrt(2 * M_PI * 2);
  pk = c / (c + 1);
  ppl_result *r = run(m, "lmh", trained, 4, 300, 2000, 31);
  if (tap_ok(r != NULL, "dynamic: lmh runs")) {
    check_prob(r, "dynamic", "z", pz);
    check_prob(r, "dynamic", "k", pk);
    double acc = lmh_accepted(r, "finite->normal(mu)");
    tap_ok(acc > 0.9, "dynamic: z's learned moves accepted %.3f in both structures", acc);
  }
  ppl_result_free(r);
  ppl_model_free(m);
}

static const char *grid_what(int blocks, int untrained) {
  static const char *w[2][2] = {{"grid/trained", "grid/untrained"},
                                {"grid/blocks/trained", "grid/blocks/untrained"}};
  return w[blocks][untrained];
}

static void test_grid(ppl_context *ctx, const char *trained, const char *untrained) {
  double p[GRID_MAX * GRID_MAX];
  ppl_model *m = grid_model(ctx, 3, 3, 11, p);
  if (!tap_ok(m != NULL, "grid_bn loads")) return;
  tap_ok(lmh_learn(m, trained, 1500, 1) == 2 && lmh_learn(m, untrained, 0, 1) == 2,
         "grid: a trained and an untrained proposal for the cells and for blocks of cells (%s)",
         ppl_errmsg(ctx));
  /* single cells (the default), then blocks of up to 4 cells (--cells 4) */
  for (int blocks = 0; blocks < 2; blocks++)
    for (int t = 0; t < 2; t++) {
      const char *lib = t ? untrained : trained;
      const char *what = grid_what(blocks, t);
      const char *sig = blocks ? "finite-block->bernoulli(theta)" : "finite->bernoulli(theta)";
      run_cells = blocks ? "4" : NULL;
      ppl_result *r = run(m, "lmh", lib, 4, 200, 1000, 424242);
      run_cells = NULL;
      if (!tap_ok(r != NULL, "%s runs", what)) continue;
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
          char col[16];
          snprintf(col, sizeof col, "x[%d,%d]", i + 1, j + 1);
          check_prob(r, what, col, p[i * 3 + j]);
        }
      double acc = lmh_accepted(r, sig);
      tap_diag("%s: learned moves accepted %.3f", what, acc);
      if (t == 0) tap_ok(acc > 0.95, "%s: the learned moves of %s are accepted %.3f > 0.95", what, sig, acc);
      else tap_ok(acc > 0.2, "%s: the untrained moves of %s are accepted %.3f (> 0.2: they move)", what, sig, acc);
      ppl_result_free(r);
    }
  ppl_model_free(m);
}

/* The mean bulk ESS of the grid's cells whose exact marginal is in [0.02, 0.98]. */
static double mean_ess_cells(ppl_result *r, int R, int C, const double *p) {
  double s = 0;
  int m = 0;
  for (int k = 0; k < R * C; k++) {
    char col[24];
    ppl_summary x;
    snprintf(col, sizeof col, "x[%d,%d]", k / C + 1, k % C + 1);
    int c = ppl_result_column_index(r, col);
    if (c < 0 || ppl_result_summary(r, c, &x) != PPL_OK) return NAN;
    if (p[k] >= 0.02 && p[k] <= 0.98 && isfinite(x.ess_bulk)) s += x.ess_bulk, m++;
  }
  return m ? s / m : NAN;
}

/* Blocks trained on the 3 x 3 grid (test_grid's libraries: a square, a
   column and a row of the edge) on an unseen 4 x 5 grid of other tables:
   exact, and mixing better per draw than the untrained blocks and mh. */
static void test_grid_generalise(ppl_context *ctx, const char *trained, const char *untrained) {
  int R = 4, C = 5;
  double p[GRID_MAX * GRID_MAX];
  ppl_model *m = grid_model(ctx, R, C, 23, p);
  if (!tap_ok(m != NULL, "grid 4x5 loads")) return;
  ppl_result *rt = run(m, "lmh", trained, 2, 100, 500, 99);
  ppl_result *ru = run(m, "lmh", untrained, 2, 100, 500, 99);
  ppl_result *rm = run(m, "mh", NULL, 2, 100, 500, 99);
  run_cells = "4";
  ppl_result *rb = run(m, "lmh", trained, 2, 100, 500, 99);
  run_cells = NULL;
  if (tap_ok(rb != NULL, "grid 4x5: lmh --cells 4 trained on 3x3 runs")) {
    for (int k = 0; k < R * C; k++) {
      char col[24];
      snprintf(col, sizeof col, "x[%d,%d]", k / C + 1, k % C + 1);
      check_prob(rb, "grid 4x5/blocks", col, p[k]);
    }
    double ab = lmh_accepted(rb, "finite-block->bernoulli(theta)");
    tap_diag("grid 4x5: blocks of cells accepted %.3f, mean ESS of the uncertain cells %.0f", ab,
             mean_ess_cells(rb, R, C, p));
    tap_ok(ab > 0.95, "grid 4x5: blocks trained on 3x3 accepted %.3f > 0.95", ab);
  }
  ppl_result_free(rb);
  if (tap_ok(rt && ru && rm, "grid 4x5: lmh trained on 3x3, untrained, and mh run")) {
    for (int t = 0; t < 2; t++)
      for (int k = 0; k < R * C; k++) {
        char col[24];
        snprintf(col, sizeof col, "x[%d,%d]", k / C + 1, k % C + 1);
        check_prob(t ? ru : rt, t ? "grid 4x5/untrained" : "grid 4x5/trained", col, p[k]);
      }
    double at = lmh_accepted(rt, "finite->bernoulli(theta)");
    double au = lmh_accepted(ru, "finite->bernoulli(theta)");
    double et = mean_ess_cells(rt, R, C, p), eu = mean_ess_cells(ru, R, C, p),
           em = mean_ess_cells(rm, R, C, p);
    tap_diag("grid 4x5: cells accepted %.3f trained on 3x3, %.3f untrained; mean ESS of the "
             "uncertain cells %.0f trained, %.0f untrained, %.0f mh (1000 draws)", at, au, et, eu, em);
    tap_ok(at > 0.95 && at > au + 0.2, "grid 4x5: trained on 3x3, the cells' moves are accepted "
           "%.3f (untrained %.3f)", at, au);
    tap_ok(et > 1.5 * eu && et > 1.5 * em, "grid 4x5: mean ESS of the uncertain cells %.0f trained > "
           "1.5 x (%.0f untrained, %.0f mh)", et, eu, em);
  }
  ppl_result_free(rt), ppl_result_free(ru), ppl_result_free(rm);
  ppl_model_free(m);
}

/* The mean bulk ESS of the z[n] whose posterior sd is above 0.1. */
static double mean_ess_z(ppl_result *r, int N) {
  double s = 0;
  int m = 0;
  for (int i = 1; i <= N; i++) {
    char col[16];
    snprintf(col, sizeof col, "z[%d]", i);
    ppl_summary x;
    int c = ppl_result_column_index(r, col);
    if (c < 0 || ppl_result_summary(r, c, &x) != PPL_OK) return NAN;
    if (x.sd > 0.1 && isfinite(x.ess_bulk)) s += x.ess_bulk, m++;
  }
  return m ? s / m : NAN;
}

/* The smallest bulk ESS of mu[1..K]. */
static double min_ess_mu(ppl_result *r, int K) {
  double e = INFINITY;
  for (int k = 1; k <= K; k++) {
    char col[16];
    snprintf(col, sizeof col, "mu[%d]", k);
    ppl_summary x;
    int c = ppl_result_column_index(r, col);
    if (c < 0 || ppl_result_summary(r, c, &x) != PPL_OK) return NAN;
    e = fmin(e, x.ess_bulk);
  }
  return e;
}

static void test_generalise(ppl_context *ctx, const char *trained, const char *untrained) {
  /* train on K = 3 only */
  ppl_model *m3 = lmh_model(ctx, "mixk.ppl", mix_json(3, 12));
  tap_ok(m3 && lmh_learn(m3, trained, 1500, 2) == 2 && lmh_learn(m3, untrained, 0, 2) == 2,
         "mixk K = 3: a trained and an untrained proposal (%s)", ppl_errmsg(ctx));
  ppl_model_free(m3);
  for (int K = 5; K <= 10; K += 5) {
    int N = 12;
    ppl_model *m = lmh_model(ctx, "mixk.ppl", mix_json(K, N));
    if (!tap_ok(m != NULL, "mixk K = %d loads", K)) continue;
    ppl_result *rt = run(m, "lmh", trained, 2, 100, 300, 77);
    ppl_result *ru = run(m, "lmh", untrained, 2, 100, 300, 77);
    ppl_result *rm = run(m, "mh", NULL, 2, 100, 300, 77);
    if (tap_ok(rt && ru && rm, "K = %d: lmh trained, untrained and mh run", K)) {
      double at = lmh_accepted(rt, "finite->normal(mu)"), au = lmh_accepted(ru, "finite->normal(mu)");
      double et = mean_ess_z(rt, N), eu = mean_ess_z(ru, N), em = mean_ess_z(rm, N);
      tap_diag("K = %d: accepted %.3f trained, %.3f untrained; mean ESS of the uncertain z[n] "
               "%.0f trained, %.0f untrained, %.0f mh (600 draws)", K, at, au, et, eu, em);
      tap_ok(at > 0.9 && at > au + 0.2, "K = %d: trained on K = 3, the moves are accepted %.3f "
             "(untrained %.3f)", K, at, au);
      tap_ok(et > 1.5 * eu && et > 1.5 * em, "K = %d: mean ESS of the uncertain z %.0f trained > 1.5 x "
             "(%.0f untrained, %.0f mh)", K, et, eu, em);
      /* the means: the continuous motif, trained on K = 3's three means */
      double ct = lmh_accepted(rt, "normal->normal(mu)"), cu = lmh_accepted(ru, "normal->normal(mu)");
      double mt = min_ess_mu(rt, K), mm = min_ess_mu(rm, K);
      tap_diag("K = %d: the means' moves accepted %.3f trained, %.3f untrained; smallest ESS of "
               "mu %.0f trained, %.0f mh", K, ct, cu, mt, mm);
      tap_ok(ct > 0.95 && ct > cu, "K = %d: the means' learned moves accepted %.3f (untrained %.3f)",
             K, ct, cu);
      tap_ok(mt > 2 * mm, "K = %d: smallest ESS of the means %.0f > 2 x mh's %.0f", K, mt, mm);
    }
    ppl_result_free(rt), ppl_result_free(ru), ppl_result_free(rm);
    ppl_model_free(m);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_lmh_exact TESTS_LMH_DIR TESTS_EXACT_DIR\n");
    return 2;
  }
  lmh_dir = argv[1];
  exact_dir = argv[2];
  const char *only = argc > 3 ? argv[3] : NULL;
  ppl_context *ctx = ppl_context_new(NULL);
  the_ctx = ctx;
  char *dirs[10];
  for (int i = 0; i < 10; i++) dirs[i] = lmh_tmpdir();
  if (!only || !strcmp(only, "mix2")) test_mix2(ctx, dirs[0], dirs[1]);
  if (!only || !strcmp(only, "mix2")) test_dynamic(ctx, dirs[0]);
  if (!only || !strcmp(only, "grid")) test_grid(ctx, dirs[2], dirs[3]);
  if (!only || !strcmp(only, "grid")) test_grid_generalise(ctx, dirs[2], dirs[3]);
  if (!only || !strcmp(only, "mixk")) test_generalise(ctx, dirs[4], dirs[5]);
  if (!only || !strcmp(only, "mixk")) test_openmix(ctx, dirs[4], dirs[5]);
  if (!only || !strcmp(only, "normal")) test_normal_mean(ctx, dirs[6], dirs[7]);
  if (!only || !strcmp(only, "normal")) test_two_means(ctx, dirs[6], dirs[7]);
  if (!only || !strcmp(only, "hmm")) test_hmm3(ctx, dirs[8], dirs[9]);
  if (!only || !strcmp(only, "hmm")) test_hmm_generalise(ctx, dirs[8], dirs[9]);
  ppl_context_free(ctx);
  for (int i = 0; i < 10; i++) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[i]);
    if (system(cmd) != 0) tap_diag("could not remove %s", dirs[i]);
  }
  return tap_done();
}
