/* test_exact.c — the engines against exact posteriors and exact log evidence
 * (tests/exact/problems: conjugate models, a Kalman filter, an HMM, an enumerated
 * mixture), through the public API as a host would use it.
 *
 * Tolerances come from the estimates' own standard errors: a posterior mean must
 * lie within 4 MCSE of the exact one, a posterior sd within 4 standard errors
 * of the sd estimate (sd / sqrt(2 ESS) for a near-normal posterior), a log
 * evidence within 4 of its standard errors.  So that a stuck sampler cannot
 * pass on a huge MCSE, every checked quantity must also reach a minimum ESS.
 *
 *   test_exact SHARED_EXACT_DIR TESTS_EXACT_DIR [case-filter]
 *
 * PPL_TEST_SCALE (default 1) scales the number of draws and the minimum ESS,
 * for sanitizer builds where every run is many times slower and nothing is
 * collected: the tolerances stay derived from the (larger) standard errors.
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
static double scale = 1;

static int scaled(int n) {
  int k = (int)(n * scale);
  return n == 0 ? 0 : k < 100 ? 100 : k;
}

typedef struct {
  const char *column;  /* summary name of the quantity */
  const char *path;    /* where in exact.json: "mu", "beta#2" (list index), "z_last_probs#1" */
  bool is_prob;        /* the exact value is a probability P(column == 1) or an indicator mean */
  int category;        /* for z_last_probs: the state k whose probability is compared; 0 = none */
} Check;

typedef struct {
  const char *model;
  const char *engine;
  int chains, warmup, draws;
  double min_ess;
  bool evidence;       /* compare the log evidence too */
  Check checks[14];
} Case;

/* exact.json value at "key" or "key#i" (1-based), field "mean" or "sd" (or the number itself) */
static double exact_value(json_t *root, const char *path, const char *field) {
  char key[64];
  int idx = 0;
  const char *hash = strchr(path, '#');
  if (hash) {
    snprintf(key, sizeof key, "%.*s", (int)(hash - path), path);
    idx = atoi(hash + 1);
  } else {
    snprintf(key, sizeof key, "%s", path);
  }
  json_t *v = json_object_get(root, key);
  if (!v) return NAN;
  if (json_is_object(v)) v = json_object_get(v, field);
  else if (field && strcmp(field, "mean")) return NAN;
  if (json_is_array(v)) v = json_array_get(v, (size_t)(idx - 1));
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static void run_case(const Case *c) {
  char model[512], data[512], exact[512];
  snprintf(model, sizeof model, "%s/%s.ppl", models_dir, c->model);
  snprintf(data, sizeof data, "%s/%s/data.json", shared_dir, c->model);
  snprintf(exact, sizeof exact, "%s/%s/exact.json", shared_dir, c->model);
  json_error_t jerr;
  json_t *ex = json_load_file(exact, 0, &jerr);
  if (!tap_ok(ex != NULL, "%s: read %s", c->model, exact)) return;

  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  ppl_result *r = NULL;
  if (!tap_ok(ppl_compile_file(ctx, model, &m) == PPL_OK, "%s: compiles (%s)", c->model,
              ppl_errmsg(ctx)))
    goto out;
  if (!tap_ok(ppl_set_data_file(m, data) == PPL_OK, "%s: data (%s)", c->model, ppl_errmsg(ctx)))
    goto out;
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  /* PPL_TEST_NO_JIT: the same test under the interpreter (meson runs both) */
  ro.no_jit = getenv("PPL_TEST_NO_JIT") != NULL;
  ro.engine = c->engine;
  ro.chains = c->chains;
  ro.warmup = scaled(c->warmup);
  ro.draws = scaled(c->draws);
  ro.seed = 20261128;
  if (!tap_ok(ppl_run(m, &ro, &r) == PPL_OK, "%s/%s: runs (%s)", c->model, c->engine,
              ppl_errmsg(ctx)))
    goto out;

  for (int i = 0; c->checks[i].column; i++) {
    const Check *k = &c->checks[i];
    int col = ppl_result_column_index(r, k->column);
    if (!tap_ok(col >= 0, "%s/%s: column %s exists", c->model, c->engine, k->column)) continue;
    ppl_summary s;
    ppl_result_summary(r, col, &s);
    double want_mean, want_sd = NAN;
    if (k->category || k->is_prob) {
      /* a probability: the mean of an indicator, whose variance p(1-p) is known
         exactly; its MCSE uses the chain's ESS (all draws when the chain never
         moved: then ESS is undefined and the tolerance is the tightest) */
      want_mean = exact_value(ex, k->path, NULL);
      int nch = ppl_result_num_chains(r), nd = ppl_result_num_draws(r);
      double p = s.mean;
      if (k->category) {
        double hits = 0;
        for (int ch = 0; ch < nch; ch++)
          for (int d = 0; d < nd; d++) hits += ppl_result_draw(r, ch, d, col) == k->category;
        p = hits / (nch * nd);
      }
      double n_eff = isfinite(s.ess_bulk) && s.ess_bulk > 0 ? s.ess_bulk : (double)nch * nd;
      double mcse = sqrt(want_mean * (1 - want_mean) / n_eff);
      if (k->category)
        tap_ok(fabs(p - want_mean) <= 4 * mcse, "%s/%s: P(%s == %d) = %.4f, exact %.4f (4 mcse = %.4f)",
               c->model, c->engine, k->column, k->category, p, want_mean, 4 * mcse);
      else
        tap_ok(fabs(p - want_mean) <= 4 * mcse, "%s/%s: P(%s == 1) = %.4f, exact %.4f (4 mcse = %.4f)",
               c->model, c->engine, k->column, p, want_mean, 4 * mcse);
      continue;
    }
    want_mean = exact_value(ex, k->path, "mean");
    want_sd = exact_value(ex, k->path, "sd");
    double min_ess = c->min_ess * scale;
    tap_ok(s.ess_bulk >= min_ess, "%s/%s: %s ess_bulk %.0f >= %.0f", c->model, c->engine,
           k->column, s.ess_bulk, min_ess);
    tap_ok(fabs(s.mean - want_mean) <= 4 * s.mcse, "%s/%s: %s mean %.5f, exact %.5f (4 mcse = %.5f)",
           c->model, c->engine, k->column, s.mean, want_mean, 4 * s.mcse);
    if (!isnan(want_sd)) {
      double se_sd = want_sd / sqrt(2 * s.ess_bulk);
      tap_ok(fabs(s.sd - want_sd) <= 4 * se_sd, "%s/%s: %s sd %.5f, exact %.5f (4 se = %.5f)",
             c->model, c->engine, k->column, s.sd, want_sd, 4 * se_sd);
    }
  }
  if (c->evidence) {
    double est = NAN, se = NAN, want = exact_value(ex, "log_evidence", NULL);
    bool have = ppl_result_log_evidence(r, &est, &se) == PPL_OK;
    tap_ok(have && se > 0 && fabs(est - want) <= 4 * se,
           "%s/%s: log evidence %.4f ± %.4f, exact %.4f", c->model, c->engine, est, se, want);
  }
out:
  json_decref(ex);
  ppl_result_free(r);
  ppl_model_free(m);
  ppl_context_free(ctx);
}

#define MEAN(c, p) {.column = c, .path = p}
#define PROB(c, p) {.column = c, .path = p, .is_prob = true}
#define CAT(c, p, k) {.column = c, .path = p, .category = k}

static const Case cases[] = {
    {.model = "normal_mean", .engine = "is", .chains = 4, .draws = 25000, .min_ess = 400,
     .evidence = true, .checks = {MEAN("mu", "mu")}},
    {.model = "normal_mean", .engine = "mh", .chains = 4, .warmup = 500, .draws = 2000,
     .min_ess = 400, .checks = {MEAN("mu", "mu")}},
    {.model = "beta_binomial", .engine = "is", .chains = 4, .draws = 10000, .min_ess = 400,
     .evidence = true, .checks = {MEAN("theta", "theta")}},
    {.model = "beta_binomial", .engine = "mh", .chains = 4, .warmup = 500, .draws = 2000,
     .min_ess = 400, .checks = {MEAN("theta", "theta")}},
    {.model = "gamma_poisson", .engine = "is", .chains = 4, .draws = 10000, .min_ess = 400,
     .evidence = true, .checks = {MEAN("lambda", "lambda")}},
    {.model = "gamma_poisson", .engine = "mh", .chains = 4, .warmup = 500, .draws = 2000,
     .min_ess = 400, .checks = {MEAN("lambda", "lambda")}},
    {.model = "linreg_known_sigma", .engine = "mh", .chains = 4, .warmup = 1000, .draws = 2000,
     .min_ess = 200,
     .checks = {MEAN("beta[1]", "beta#1"), MEAN("beta[2]", "beta#2"), MEAN("beta[3]", "beta#3"),
                MEAN("beta[4]", "beta#4"), MEAN("beta[5]", "beta#5")}},
    {.model = "kalman", .engine = "mh", .chains = 2, .warmup = 500, .draws = 1000, .min_ess = 100,
     .checks = {MEAN("x_last", "x_last_filter"), MEAN("x_first", "x_first_smooth")}},
    /* nuts: Stan's defaults (4 chains, 1000 warmup + 1000 draws) */
    {.model = "normal_mean", .engine = "nuts", .chains = 4, .warmup = 1000, .draws = 1000,
     .min_ess = 400, .checks = {MEAN("mu", "mu")}},
    {.model = "beta_binomial", .engine = "nuts", .chains = 4, .warmup = 1000, .draws = 1000,
     .min_ess = 400, .checks = {MEAN("theta", "theta")}},
    {.model = "gamma_poisson", .engine = "nuts", .chains = 4, .warmup = 1000, .draws = 1000,
     .min_ess = 400, .checks = {MEAN("lambda", "lambda")}},
    {.model = "linreg_known_sigma", .engine = "nuts", .chains = 4, .warmup = 1000, .draws = 1000,
     .min_ess = 400,
     .checks = {MEAN("beta[1]", "beta#1"), MEAN("beta[2]", "beta#2"), MEAN("beta[3]", "beta#3"),
                MEAN("beta[4]", "beta#4"), MEAN("beta[5]", "beta#5")}},
    {.model = "kalman", .engine = "nuts", .chains = 4, .warmup = 1000, .draws = 1000,
     .min_ess = 400,
     .checks = {MEAN("x_last", "x_last_filter"), MEAN("x_first", "x_first_smooth")}},
    {.model = "hmm3", .engine = "mh", .chains = 2, .warmup = 500, .draws = 2000, .min_ess = 100,
     .checks = {CAT("z_last", "z_last_probs#1", 1), CAT("z_last", "z_last_probs#2", 2),
                CAT("z_last", "z_last_probs#3", 3)}},
    {.model = "mix2_enum", .engine = "is", .chains = 4, .draws = 50000, .evidence = true},
    {.model = "mix2_enum", .engine = "mh", .chains = 4, .warmup = 500, .draws = 2000,
     .checks = {PROB("z[1]", "z_is_second_probs#1"), PROB("z[2]", "z_is_second_probs#2"),
                PROB("z[3]", "z_is_second_probs#3"), PROB("z[6]", "z_is_second_probs#6"),
                PROB("z[12]", "z_is_second_probs#12")}},
    /* smc: --particles 1000 (default), so draws 2000 = two SMC runs per chain;
       hmm3's z_last probabilities are weighted and checked in
       tests/inference/test_smc_exact.c (CAT counts draws unweighted) */
    {.model = "kalman", .engine = "smc", .chains = 8, .draws = 2000, .min_ess = 400,
     .evidence = true, .checks = {MEAN("x_last", "x_last_filter")}},
    {.model = "hmm3", .engine = "smc", .chains = 8, .draws = 2000, .evidence = true},
    /* latents declared in a loop are outputs under their addresses, whatever
       the engine (and both backends under nuts) */
    {.model = "loop_latents", .engine = "nuts", .chains = 4, .warmup = 1000, .draws = 1000,
     .min_ess = 400,
     .checks = {MEAN("h1", "h1"), MEAN("h[2]", "h#2"), MEAN("h[3]", "h#3"), MEAN("h[6]", "h#6")}},
    {.model = "loop_latents", .engine = "mh", .chains = 4, .warmup = 1000, .draws = 2000,
     .min_ess = 200,
     .checks = {MEAN("h1", "h1"), MEAN("h[2]", "h#2"), MEAN("h[3]", "h#3"), MEAN("h[6]", "h#6")}},
    {.model = "loop_latents", .engine = "smc", .chains = 8, .draws = 2000, .min_ess = 400,
     .evidence = true,
     .checks = {MEAN("h1", "h1"), MEAN("h[2]", "h#2"), MEAN("h[3]", "h#3"), MEAN("h[6]", "h#6")}},
    /* mix2_enum's mu1, mu2 and z are static parameters: smc's default moves
       them (resample-move, tempered events), about 1.5 s of CPU per run of
       1000 particles, and each run's evidence is then close (within-run SE
       about 0.1), so two runs per chain suffice */
    {.model = "mix2_enum", .engine = "smc", .chains = 8, .draws = 2000, .evidence = true},
};

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_exact SHARED_EXACT_DIR TESTS_EXACT_DIR [filter]\n");
    return 2;
  }
  shared_dir = argv[1];
  models_dir = argv[2];
  const char *filter = argc > 3 ? argv[3] : NULL;
  const char *env = getenv("PPL_TEST_SCALE");
  if (env && atof(env) > 0 && atof(env) <= 1) scale = atof(env);
  if (scale != 1) tap_diag("PPL_TEST_SCALE=%g: draws and minimum ESS scaled", scale);
  /* Only the gradient engines ever compile: under PPL_TEST_NO_JIT the other
     engines' cases would repeat the JIT run's bytes exactly (same seed, same
     interpreter), so they run once, in `exact`. */
  bool interp_only = getenv("PPL_TEST_NO_JIT") != NULL;
  if (interp_only) tap_diag("PPL_TEST_NO_JIT: the nuts cases only (the other engines never compile)");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (interp_only && strcmp(cases[i].engine, "nuts") && strcmp(cases[i].engine, "hmc")) continue;
    if (!filter || strstr(cases[i].model, filter) || !strcmp(cases[i].engine, filter)) run_case(&cases[i]);
  }
  return tap_done();
}
