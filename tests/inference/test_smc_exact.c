/* test_smc_exact.c — engine smc on the shared exact problems (tests/exact/problems)
 * through the public API: log evidence of kalman, hmm3 and mix2_enum, the
 * filtering mean and sd of kalman's last state, hmm3's posterior state
 * probabilities P(z_last = k) and mix2_enum's P(z[n] = 1) (with resample-move).
 * Kalman again with resample-move (--rejuvenate 1: tempered events, every
 * state moved), once on compiled particles (asserted from the backend line)
 * and once with --no-jit: the evidence and the filtering mean both ways, and
 * the two runs the same bits.
 *
 * SMC draws are weighted: every estimate is self-normalised within a chain (one
 * SMC run), averaged over the chains, with its standard error from their
 * spread; a probability's tolerance is never below that of an ideal sample of
 * all the draws.  Tolerance 4 SE.  Every run has a budget of 2 threads per
 * chain, so the particles advance in 2 threads (the kalman evidence check is
 * the correctness test of the threaded engine).
 *
 *   test_smc_exact SHARED_EXACT_DIR TESTS_EXACT_DIR
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

static const char *shared_dir, *models_dir;
static int no_jit; /* interpret the particles */

/* exact.json: key, or key's field, or element i (1-based) of key's list */
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
  int chains, draws, lwcol;
} Run;

static bool run(Run *R, const char *model, int chains, int particles, int rejuvenate) {
  char path[512], data[512], ex[512];
  snprintf(path, sizeof path, "%s/%s.ppl", models_dir, model);
  snprintf(data, sizeof data, "%s/%s/data.json", shared_dir, model);
  snprintf(ex, sizeof ex, "%s/%s/exact.json", shared_dir, model);
  memset(R, 0, sizeof *R);
  json_error_t jerr;
  R->ex = json_load_file(ex, 0, &jerr);
  if (!tap_ok(R->ex != NULL, "%s: read %s", model, ex)) return false;
  /* two particle threads per chain: results are the same bytes as with one
     (test_smc_threads.c), so these checks also cover the threaded engine */
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
  ro.engine = "smc";
  ro.chains = chains;
  ro.particles = particles;
  ro.draws = particles;
  ro.rejuvenate = rejuvenate;
  ro.seed = 20261128;
  ro.no_jit = no_jit;
  if (!tap_ok(ppl_run(R->m, &ro, &R->r) == PPL_OK, "%s/smc: runs (%s)", model,
              ppl_errmsg(R->ctx)))
    return false;
  R->chains = ppl_result_num_chains(R->r);
  R->draws = ppl_result_num_draws(R->r);
  R->lwcol = ppl_result_column_index(R->r, "log_weight__");
  return tap_ok(R->draws == particles && R->lwcol >= 0, "%s/smc: %d draws per chain, weighted",
                model, R->draws);
}

static void done(Run *R) {
  json_decref(R->ex);
  ppl_result_free(R->r);
  ppl_model_free(R->m);
  ppl_context_free(R->ctx);
}

/* Weighted mean of f(column) per chain; mean and SE over chains. */
static void wmean(const Run *R, const char *column, double (*f)(double, double), double arg,
                  double *est, double *se) {
  int col = ppl_result_column_index(R->r, column);
  double s1 = 0, s2 = 0;
  for (int c = 0; c < R->chains; c++) {
    double mx = -INFINITY, sw = 0, sf = 0;
    for (int i = 0; i < R->draws; i++) mx = fmax(mx, ppl_result_draw(R->r, c, i, R->lwcol));
    for (int i = 0; i < R->draws; i++) {
      double w = exp(ppl_result_draw(R->r, c, i, R->lwcol) - mx);
      sw += w;
      sf += w * f(col >= 0 ? ppl_result_draw(R->r, c, i, col) : NAN, arg);
    }
    s1 += sf / sw;
    s2 += (sf / sw) * (sf / sw);
  }
  int m = R->chains;
  *est = s1 / m;
  *se = sqrt(fmax(s2 / m - *est * *est, 0) * m / (m - 1) / m);
}

static double f_eq(double x, double k) { return x == k; }
static double f_id(double x, double k) { return x; }
static double f_sq(double x, double k) { return (x - k) * (x - k); }

static void check_evidence(const Run *R, const char *model) {
  double est = NAN, se = NAN, want = exact(R->ex, "log_evidence", NULL, 0);
  bool have = ppl_result_log_evidence(R->r, &est, &se) == PPL_OK;
  tap_ok(have && se > 0 && fabs(est - want) <= 4 * se, "%s/smc: log evidence %.4f ± %.4f, exact %.4f",
         model, est, se, want);
}

static void check_prob(const Run *R, const char *model, const char *column, double k,
                       double want) {
  double est, se;
  wmean(R, column, f_eq, k, &est, &se);
  double floor_se = sqrt(want * (1 - want) / (R->chains * (double)R->draws));
  double tol = 4 * fmax(se, floor_se);
  tap_ok(fabs(est - want) <= tol, "%s/smc: P(%s = %g) = %.4f, exact %.4f (tol %.4f)", model,
         column, k, est, want, tol);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_smc_exact SHARED_EXACT_DIR TESTS_EXACT_DIR\n");
    return 2;
  }
  shared_dir = argv[1];
  models_dir = argv[2];
  Run R;

  if (run(&R, "kalman", 16, 1000, 0)) {
    check_evidence(&R, "kalman");
    double m, se, v, sev;
    double want_m = exact(R.ex, "x_last_filter", "mean", 0);
    double want_sd = exact(R.ex, "x_last_filter", "sd", 0);
    wmean(&R, "x_last", f_id, 0, &m, &se);
    tap_ok(fabs(m - want_m) <= 4 * se, "kalman/smc: filtering mean of x_last %.4f ± %.4f, exact %.4f",
           m, se, want_m);
    wmean(&R, "x_last", f_sq, want_m, &v, &sev);
    tap_ok(fabs(sqrt(v) - want_sd) <= 4 * sev / (2 * want_sd),
           "kalman/smc: filtering sd of x_last %.4f, exact %.4f (4 se %.4f)", sqrt(v), want_sd,
           4 * sev / (2 * want_sd));
  }
  done(&R);

  /* resample-move on compiled particles and interpreted */
  double z[2] = {NAN, NAN}, xm[2] = {NAN, NAN};
  for (no_jit = 0; no_jit <= 1; no_jit++) {
    const char *how = no_jit ? "--no-jit" : "compiled";
    if (run(&R, "kalman", 8, 200, 1)) {
      tap_ok(strstr(ppl_result_backend(R.r), no_jit ? "interpreted (--no-jit)" : "compiled particle steps") != NULL,
             "kalman/smc --rejuvenate 1, %s: %s", how, ppl_result_backend(R.r));
      check_evidence(&R, no_jit ? "kalman --rejuvenate 1 --no-jit" : "kalman --rejuvenate 1");
      double se;
      double want_m = exact(R.ex, "x_last_filter", "mean", 0);
      wmean(&R, "x_last", f_id, 0, &xm[no_jit], &se);
      tap_ok(fabs(xm[no_jit] - want_m) <= 4 * se,
             "kalman/smc --rejuvenate 1, %s: filtering mean of x_last %.4f ± %.4f, exact %.4f", how,
             xm[no_jit], se, want_m);
      ppl_result_log_evidence(R.r, &z[no_jit], &se);
    }
    done(&R);
  }
  no_jit = 0;
  tap_ok(z[0] == z[1] && xm[0] == xm[1],
         "kalman/smc --rejuvenate 1: compiled = --no-jit to the bit (log Z %.17g / %.17g)", z[0], z[1]);

  if (run(&R, "hmm3", 16, 1000, 0)) {
    tap_ok(!strcmp(ppl_result_engine(R.r), "smc"), "hmm3: engine smc");
    check_evidence(&R, "hmm3");
    for (int k = 1; k <= 3; k++)
      check_prob(&R, "hmm3", "z_last", k, exact(R.ex, "z_last_probs", NULL, k));
  }
  done(&R);

  if (run(&R, "mix2_enum", 8, 500, 5)) {
    check_evidence(&R, "mix2_enum");
    static const int ns[] = {1, 2, 3, 6, 12};
    for (int i = 0; i < 5; i++) {
      char col[16];
      snprintf(col, sizeof col, "z[%d]", ns[i]);
      check_prob(&R, "mix2_enum", col, 1, exact(R.ex, "z_is_second_probs", NULL, ns[i]));
    }
  }
  done(&R);
  return tap_done();
}
