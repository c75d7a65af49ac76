/* test_pgibbs_exact.c — particle Gibbs with ancestor sampling (PGAS) against
 * the exact posteriors of tests/exact/problems, through the public API.
 *
 * kalman: the smoothing posterior of the first state (x_first: what plain
 * particle Gibbs with few particles cannot move, every lineage but the
 * reference's dying out) and the filtering posterior of the last one; hmm3:
 * the posterior of the last discrete state.  Tolerances as tests/exact: a mean
 * within 4 MCSE, an sd within 4 sd / sqrt(2 ESS), probabilities within 4 MCSE
 * of their indicator series (ESS by Geyer's initial positive sequence), with a
 * minimum ESS so that a stuck chain cannot pass on a huge MCSE.  Then the
 * reason ancestor sampling exists: on kalman with the same particles and
 * iterations, x_first's ESS with it must be several times that without.  Runs
 * with 2 particle threads per chain (draws do not depend on it:
 * test_smc_threads.c).  These programs run their particles compiled
 * (ir/particle.h), ancestor sampling included; the kalman PGAS run is
 * repeated with --no-jit (interpreted particles), which must give the same
 * draws bit for bit (test_smc_compiled.c holds that on more models).
 *
 *   test_pgibbs_exact SHARED_EXACT_DIR TESTS_EXACT_DIR
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/diagnostics.h"
#include "ppl.h"
#include "tap.h"

static const char *shared_dir, *models_dir;

static double exact(json_t *root, const char *key, const char *field, int i) {
  json_t *v = json_object_get(root, key);
  if (v && field) v = json_object_get(v, field);
  if (v && i) v = json_array_get(v, (size_t)(i - 1));
  return json_is_number(v) ? json_number_value(v) : NAN;
}

typedef struct Run {
  json_t *ex;
  ppl_context *ctx;
  ppl_model *m;
  ppl_result *r;
} Run;

static bool run(Run *R, const char *model, int particles, int chains, int warmup, int draws,
                bool as, bool no_jit) {
  char path[512], data[512], ex[512];
  snprintf(path, sizeof path, "%s/%s.ppl", models_dir, model);
  snprintf(data, sizeof data, "%s/%s/data.json", shared_dir, model);
  snprintf(ex, sizeof ex, "%s/%s/exact.json", shared_dir, model);
  memset(R, 0, sizeof *R);
  json_error_t jerr;
  R->ex = json_load_file(ex, 0, &jerr);
  if (!tap_ok(R->ex != NULL, "%s: read %s", model, ex)) return false;
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = 2 * chains;
  R->ctx = ppl_context_new(&cfg);
  if (!tap_ok(ppl_compile_file(R->ctx, path, &R->m) == PPL_OK &&
                  ppl_set_data_file(R->m, data) == PPL_OK,
              "%s: compiles with its data (%s)", model, ppl_errmsg(R->ctx)))
    return false;
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "pgibbs";
  ro.chains = chains;
  ro.particles = particles;
  ro.warmup = warmup;
  ro.draws = draws;
  ro.ancestor_sampling = as;
  ro.no_jit = no_jit;
  ro.seed = 20261128;
  if (!tap_ok(ppl_run(R->m, &ro, &R->r) == PPL_OK, "%s/pgibbs%s%s: runs (%s)", model,
              as ? " --ancestor-sampling" : "", no_jit ? " --no-jit" : "", ppl_errmsg(R->ctx)))
    return false;
  const char *b = ppl_result_backend(R->r);
  return tap_ok(b && strstr(b, no_jit ? "pgibbs: interpreted (--no-jit)" : "pgibbs: compiled particle steps"),
                "%s: particles %s (%s)", model, no_jit ? "interpreted" : "compiled", b ? b : "");
}

static void done(Run *R) {
  json_decref(R->ex);
  ppl_result_free(R->r);
  ppl_model_free(R->m);
  ppl_context_free(R->ctx);
}

/* ESS of one series over all chains: the summary's own estimator (split
   chains, Geyer's initial monotone sequence; inference/diagnostics.c). */
static double ess(int chains, int n, double *const *x) {
  return diag_ess_basic(chains, n, (const double *const *)x);
}

/* Series f(column) per chain (malloc'd), for ess(). */
static double **series(const Run *R, const char *column, double k, bool indicator) {
  int col = ppl_result_column_index(R->r, column);
  int C = ppl_result_num_chains(R->r), n = ppl_result_num_draws(R->r);
  double **x = malloc(sizeof(double *) * (size_t)C);
  for (int c = 0; c < C; c++) {
    x[c] = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
      double v = col >= 0 ? ppl_result_draw(R->r, c, i, col) : NAN;
      x[c][i] = indicator ? (double)(v == k) : v;
    }
  }
  return x;
}

static void free_series(const Run *R, double **x) {
  for (int c = 0; c < ppl_result_num_chains(R->r); c++) free(x[c]);
  free(x);
}

/* Mean and sd of a column against the exact ones; returns its ESS. */
static double check_normal(const Run *R, const char *model, const char *column, double want_m,
                           double want_sd, double min_ess) {
  int C = ppl_result_num_chains(R->r), n = ppl_result_num_draws(R->r);
  double **x = series(R, column, 0, false);
  double e = ess(C, n, x), m = 0, v = 0;
  for (int c = 0; c < C; c++)
    for (int i = 0; i < n; i++) m += x[c][i] / ((double)C * n);
  for (int c = 0; c < C; c++)
    for (int i = 0; i < n; i++) v += (x[c][i] - m) * (x[c][i] - m) / ((double)C * n - 1);
  double sd = sqrt(v), mcse = sd / sqrt(e), sd_se = sd / sqrt(2 * e);
  tap_ok(e >= min_ess && fabs(m - want_m) <= 4 * mcse,
         "%s: mean of %s %.4f, exact %.4f (4 mcse %.4f, ess %.0f >= %.0f)", model, column, m, want_m,
         4 * mcse, e, min_ess);
  tap_ok(fabs(sd - want_sd) <= 4 * sd_se, "%s: sd of %s %.4f, exact %.4f (4 se %.4f)", model,
         column, sd, want_sd, 4 * sd_se);
  free_series(R, x);
  return e;
}

static void check_prob(const Run *R, const char *model, const char *column, int k, double want,
                       double min_ess) {
  int C = ppl_result_num_chains(R->r), n = ppl_result_num_draws(R->r);
  double **x = series(R, column, k, true);
  double e = ess(C, n, x), p = 0;
  for (int c = 0; c < C; c++)
    for (int i = 0; i < n; i++) p += x[c][i] / ((double)C * n);
  /* the indicator's sd from the exact p, so that a run that never visits a
     rare state still gets a tolerance */
  double mcse = sqrt(want * (1 - want) / fmax(e, 1));
  tap_ok(e >= min_ess && fabs(p - want) <= 4 * mcse + 1e-12,
         "%s: P(%s = %d) = %.4f, exact %.4f (4 mcse %.4f, ess %.0f)", model, column, k, p, want,
         4 * mcse, e);
  free_series(R, x);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_pgibbs_exact SHARED_EXACT_DIR TESTS_EXACT_DIR\n");
    return 2;
  }
  shared_dir = argv[1];
  models_dir = argv[2];
  Run R;

  double ess_as = 0, ess_plain = 0;
  double **compiled = NULL;
  int n_compiled = 0;
  if (run(&R, "kalman", 8, 2, 50, 300, true, false)) {
    ess_as = check_normal(&R, "kalman/pgas", "x_first", exact(R.ex, "x_first_smooth", "mean", 0),
                          exact(R.ex, "x_first_smooth", "sd", 0), 60);
    check_normal(&R, "kalman/pgas", "x_last", exact(R.ex, "x_last_filter", "mean", 0),
                 exact(R.ex, "x_last_filter", "sd", 0), 100);
    compiled = series(&R, "x_first", 0, false);
    n_compiled = ppl_result_num_draws(R.r);
  }
  done(&R);
  if (compiled) {
    if (run(&R, "kalman", 8, 2, 50, 300, true, true)) {
      double **x = series(&R, "x_first", 0, false);
      bool same = ppl_result_num_draws(R.r) == n_compiled;
      for (int c = 0; c < 2 && same; c++)
        same = memcmp(x[c], compiled[c], sizeof(double) * (size_t)n_compiled) == 0;
      tap_ok(same, "kalman/pgas: --no-jit gives the compiled chains' x_first bit for bit");
      free_series(&R, x);
    }
    done(&R);
    for (int c = 0; c < 2; c++) free(compiled[c]);
    free(compiled);
  }

  if (run(&R, "kalman", 8, 2, 50, 300, false, false)) {
    double **x = series(&R, "x_first", 0, false);
    ess_plain = ess(2, ppl_result_num_draws(R.r), x);
    free_series(&R, x);
  }
  done(&R);
  tap_ok(ess_as > 5 * ess_plain,
         "kalman: ancestor sampling mixes x_first (ESS %.0f with it, %.1f without, 8 particles)",
         ess_as, ess_plain);

  if (run(&R, "hmm3", 5, 2, 50, 300, true, false))
    for (int k = 2; k <= 3; k++)
      check_prob(&R, "hmm3/pgas", "z_last", k, exact(R.ex, "z_last_probs", NULL, k), 100);
  done(&R);
  return tap_done();
}
