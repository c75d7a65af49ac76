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
 *   test_exact SHARED_EXACT_DIR TESTS_EXACT_DIR [case-filter: a model, an engine, or model/engine]
 *
 * Discrete latents under nuts are summed out by enumeration (issue 16): their
 * draws (exact conditional draws given each continuous draw) are checked like
 * mh's, and the Rao-Blackwellised marginals of --enum-marginals (columns
 * pr_NAME.I.K, their mean the posterior probability) within 4 of their MCSE.
 * mix2_enum's exact posterior of mu1 and mu2 is not in exact.json: the test
 * computes it (mix2_exact: a sum over the 2^12 assignments, each conjugate),
 * checking that sum against exact.json's log evidence first.  (0.05% of the
 * posterior mass lies in a label-swapped mode, mu1 > mu2, which no local
 * sampler visits in 4000 draws: a chain would need to cross a barrier whose
 * far side holds 1 draw in 2000.  That mode raises mu1's sd from 0.4318 to
 * 0.4422 and mu2's from 0.3680 to 0.3797, two thirds of the test's 4-se band:
 * a bias of the reference, not of the sampler (a run that never left the main
 * mode failed by it).  The sampler's moments of mu1 and mu2 are therefore
 * compared with the exact moments within the main mode mu1 < mu2, and so are
 * the pr_ columns' means (the swapped labels add about 0.0005 to every
 * P(z[n] = 1), far beyond their tiny MCSE: z_is_second_probs_main); both come
 * from the same sum, whose whole-posterior P(z[n] = 1) and evidence are
 * checked against exact.json first.)
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
  bool marginal;       /* a pr_ column of --enum-marginals: its mean is the probability */
} Check;

typedef struct {
  const char *model;
  const char *engine;
  int chains, warmup, draws;
  double min_ess;
  bool evidence;       /* compare the log evidence too */
  bool enumerated;     /* the analysis's choice, discrete latents summed out */
  bool enum_marginals; /* run with --enum-marginals */
  Check checks[20];
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

/* mix2_enum's exact posterior of mu1 and mu2, added to its exact.json object as
 * "mu1" and "mu2" ({mean, sd}).  Given the assignments z, the two means are
 * independent conjugate normals; the posterior is the mixture over the 2^N
 * assignments weighted by p(z) p(y | z).  The same sum gives the evidence,
 * which must match exact.json's (so the sum is the problem's model). */
static double mix2_group_logml(const double *y, const int *z, int n, int which, double m0,
                               double s0, double *post_mean, double *post_var) {
  double sum = 0, ss = 0;
  int k = 0;
  for (int i = 0; i < n; i++)
    if (z[i] == which) {
      sum += y[i] - m0;
      ss += (y[i] - m0) * (y[i] - m0);
      k++;
    }
  double v0 = s0 * s0, prec = 1 / v0 + k;
  *post_var = 1 / prec;
  *post_mean = (m0 / v0 + sum + k * m0) / prec;
  /* y_group ~ N(m0 1, I + v0 1 1'): determinant 1 + k v0, Sherman-Morrison inverse */
  return -0.5 * k * 1.8378770664093453 /* log 2 pi */ - 0.5 * log(1 + k * v0) -
         0.5 * (ss - v0 * sum * sum / (1 + k * v0));
}

static bool mix2_exact(json_t *ex, const char *data_path) {
  json_error_t jerr;
  json_t *d = json_load_file(data_path, 0, &jerr);
  json_t *jy = d ? json_object_get(d, "y") : NULL;
  int n = (int)json_array_size(jy);
  if (!tap_ok(jy && n > 0 && n <= 16, "mix2_enum: data for the exact posterior of mu")) {
    json_decref(d);
    return false;
  }
  static double y[16], logw[1 << 16], mean[2][1 << 16], var[2][1 << 16];
  int z[16];
  for (int i = 0; i < n; i++) y[i] = json_number_value(json_array_get(jy, (size_t)i));
  json_decref(d);
  int nconf = 1 << n;
  double top = -INFINITY;
  for (int c = 0; c < nconf; c++) {
    for (int i = 0; i < n; i++) z[i] = (c >> i) & 1;
    logw[c] = n * log(0.5) + mix2_group_logml(y, z, n, 0, -2, 1.5, &mean[0][c], &var[0][c]) +
              mix2_group_logml(y, z, n, 1, 2, 1.5, &mean[1][c], &var[1][c]);
    if (logw[c] > top) top = logw[c];
  }
  /* P(z[n] = 1) over the whole posterior, and within its main mode mu1 < mu2
     (given z the means are independent normals: P(mu1 < mu2 | z, y) =
     Phi((m2 - m1) / sqrt(v1 + v2))) */
  double tot = 0, m1[2] = {0, 0}, m2[2] = {0, 0}, pz[16] = {0}, pz_main[16] = {0}, tot_main = 0;
  for (int c = 0; c < nconf; c++) {
    double w = exp(logw[c] - top);
    /* D = mu2 - mu1 ~ N(mD, vD) given z; the main mode is D > 0 */
    double mD = mean[1][c] - mean[0][c], vD = var[0][c] + var[1][c], sD = sqrt(vD), a = -mD / sD;
    double in_main = 0.5 * erfc(a / sqrt(2));
    tot += w;
    tot_main += w * in_main;
    for (int i = 0; i < n; i++)
      if ((c >> i) & 1) {
        pz[i] += w;
        pz_main[i] += w * in_main;
      }
    if (!(in_main > 0)) continue;
    /* mu_j = mean_j + cj (D - mD) + (independent of D), cj = -v1/vD, v2/vD;
       D truncated to D > 0: mean mD + sD lam, variance vD (1 + a lam - lam^2) */
    double lam = exp(-0.5 * a * a) / 2.5066282746310002 /* sqrt(2 pi) */ / in_main;
    for (int j = 0; j < 2; j++) {
      double cj = (j ? var[1][c] : -var[0][c]) / vD;
      double mu = mean[j][c] + cj * sD * lam;
      double v = var[j][c] - cj * cj * vD + cj * cj * vD * (1 + a * lam - lam * lam);
      m1[j] += w * in_main * mu;
      m2[j] += w * in_main * (v + mu * mu);
    }
  }
  bool same = true;
  json_t *main_probs = json_array();
  for (int i = 0; i < n; i++) {
    char path[64];
    snprintf(path, sizeof path, "z_is_second_probs#%d", i + 1);
    same &= fabs(pz[i] / tot - exact_value(ex, path, NULL)) <= 1e-9;
    json_array_append_new(main_probs, json_real(pz_main[i] / tot_main));
  }
  json_object_set_new(ex, "z_is_second_probs_main", main_probs);
  tap_ok(same, "mix2_enum: the sum gives exact.json's P(z[n] = 1); %.4g%% of the mass has mu1 > mu2",
         100 * (1 - tot_main / tot));
  double logev = top + log(tot), want = exact_value(ex, "log_evidence", NULL);
  if (!tap_ok(fabs(logev - want) <= 1e-9 * fabs(want),
              "mix2_enum: the sum over assignments gives the exact log evidence (%.12f, %.12f)",
              logev, want))
    return false;
  for (int j = 0; j < 2; j++) {
    double mu = m1[j] / tot_main, sd = sqrt(m2[j] / tot_main - mu * mu);
    json_t *o = json_pack("{s:f, s:f}", "mean", mu, "sd", sd);
    json_object_set_new(ex, j ? "mu2" : "mu1", o);
    tap_diag("mix2_enum: exact posterior of mu%d within mu1 < mu2: mean %.6f, sd %.6f", j + 1, mu, sd);
  }
  return true;
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
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  if (!tap_ok(ppl_compile_file(ctx, model, &m) == PPL_OK, "%s: compiles (%s)", c->model,
              ppl_errmsg(ctx)))
    goto out;
  if (!tap_ok(ppl_set_data_file(m, data) == PPL_OK, "%s: data (%s)", c->model, ppl_errmsg(ctx)))
    goto out;
  /* PPL_TEST_NO_JIT: the same test under the interpreter (meson runs both) */
  ro.no_jit = getenv("PPL_TEST_NO_JIT") != NULL;
  ro.engine = c->engine;
  ro.chains = c->chains;
  ro.warmup = scaled(c->warmup);
  ro.draws = scaled(c->draws);
  ro.seed = 20261128;
  if (!strcmp(c->model, "mix2_enum") && !strcmp(c->engine, "nuts") && !mix2_exact(ex, data))
    goto out;
  /* the analysis's own choice: nuts, summed out (c->engine says what it must be) */
  if (c->enumerated) ro.engine = NULL;
  /* without the option the run goes on: the pr_ checks then fail alone */
  if (c->enum_marginals)
    tap_ok(ppl_run_set(&ro, "enum-marginals", "true") == PPL_OK, "%s/%s: --enum-marginals (%s)",
           c->model, c->engine, ppl_run_options_errmsg(&ro));
  if (!tap_ok(ppl_run(m, &ro, &r) == PPL_OK, "%s/%s: runs (%s)", c->model, c->engine,
              ppl_errmsg(ctx)))
    goto out;
  if (c->enumerated)
    tap_ok(!strcmp(ppl_result_engine(r), c->engine) &&
               strstr(ppl_result_engine_reason(r), "summed out by enumeration") != NULL,
           "%s/%s: chosen, the discrete latents summed out (%s: %s)", c->model, c->engine,
           ppl_result_engine(r), ppl_result_engine_reason(r));

  for (int i = 0; c->checks[i].column; i++) {
    const Check *k = &c->checks[i];
    int col = ppl_result_column_index(r, k->column);
    if (!tap_ok(col >= 0, "%s/%s: column %s exists", c->model, c->engine, k->column)) continue;
    ppl_summary s;
    ppl_result_summary(r, col, &s);
    double want_mean, want_sd = NAN;
    if (k->marginal) {
      /* a mean of conditional probabilities: unbiased for the marginal, its
         variance below p(1-p), so its own MCSE is the tolerance */
      want_mean = exact_value(ex, k->path, NULL);
      /* a column that never moves (nothing continuous to condition on: the
         probability is the marginal itself) has no MCSE: it must be exact */
      double tol = isfinite(s.mcse) ? 4 * s.mcse + 1e-12 : s.sd <= 1e-12 ? 1e-9 : NAN;
      tap_ok(fabs(s.mean - want_mean) <= tol,
             "%s/%s: mean of %s = %.9f, exact %.9f (tolerance %.2g)", c->model, c->engine,
             k->column, s.mean, want_mean, tol);
      continue;
    }
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
  ppl_run_options_free(&ro);
  json_decref(ex);
  ppl_result_free(r);
  ppl_model_free(m);
  ppl_context_free(ctx);
}

#define MEAN(c, p) {.column = c, .path = p}
#define PROB(c, p) {.column = c, .path = p, .is_prob = true}
#define CAT(c, p, k) {.column = c, .path = p, .category = k}
#define MARG(c, p) {.column = c, .path = p, .marginal = true}

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
    /* every discrete latent enumerable: the analysis picks nuts and sums them
       out (issue 16); Stan's defaults.  The discrete columns hold exact draws
       from their conditional given each continuous draw, and the pr_ columns
       (--enum-marginals) that conditional: pr_z.3.2 = P(z[3] = 1), 1 being
       the second value of bernoulli's support, pr_z.100.k = P(z[100] = k). */
    {.model = "mix2_enum", .engine = "nuts", .chains = 4, .warmup = 1000, .draws = 1000,
     .min_ess = 400, .enumerated = true, .enum_marginals = true,
     .checks = {MEAN("mu1", "mu1"), MEAN("mu2", "mu2"),
                PROB("z[1]", "z_is_second_probs#1"), PROB("z[3]", "z_is_second_probs#3"),
                PROB("z[6]", "z_is_second_probs#6"), PROB("z[12]", "z_is_second_probs#12"),
                MARG("pr_z.1.2", "z_is_second_probs_main#1"), MARG("pr_z.3.2", "z_is_second_probs_main#3"),
                MARG("pr_z.6.2", "z_is_second_probs_main#6"), MARG("pr_z.12.2", "z_is_second_probs_main#12")}},
    /* hmm3 has no continuous latent: once z is summed out (the forward
       algorithm) nothing is left for nuts, and the analysis runs the
       marginalised program forward under prior, each draw of z an exact,
       independent draw by backward sampling (--engine nuts does the same) */
    {.model = "hmm3", .engine = "prior", .chains = 4, .draws = 1000, .enumerated = true,
     .enum_marginals = true,
     .checks = {CAT("z_last", "z_last_probs#1", 1), CAT("z_last", "z_last_probs#2", 2),
                CAT("z_last", "z_last_probs#3", 3), CAT("z[100]", "z_last_probs#2", 2),
                MARG("pr_z.100.1", "z_last_probs#1"), MARG("pr_z.100.2", "z_last_probs#2"),
                MARG("pr_z.100.3", "z_last_probs#3")}},
    /* several discrete latents in one block (variable elimination): b | a
       summed inside a's sum, d after it, and per datapoint z with its
       sub-choice c inside z's sum; is checks the exact evidence on the
       original program.  pr_b and pr_c are conditional on the drawn a and z
       (their means are still the marginals). */
    {.model = "enum_nested", .engine = "is", .chains = 4, .draws = 25000, .evidence = true},
    {.model = "enum_nested", .engine = "nuts", .chains = 4, .warmup = 1000, .draws = 1000,
     .min_ess = 400, .enumerated = true, .enum_marginals = true,
     .checks = {MEAN("mu", "mu"), CAT("a", "a_probs#1", 1), CAT("a", "a_probs#2", 2),
                CAT("b", "b_probs#1", 1), CAT("b", "b_probs#3", 3), CAT("d", "d_probs#1", 1),
                CAT("d", "d_probs#2", 2), PROB("z[1]", "z_is_one_probs#1"),
                PROB("z[4]", "z_is_one_probs#4"), PROB("c[1]", "c_is_one_probs#1"),
                PROB("c[2]", "c_is_one_probs#2"), PROB("c[4]", "c_is_one_probs#4"),
                MARG("pr_a.1", "a_probs#1"), MARG("pr_b.2", "b_probs#2"),
                MARG("pr_d.3", "d_probs#3"), MARG("pr_z.1.2", "z_is_one_probs#1"),
                MARG("pr_c.1.2", "c_is_one_probs#1"), MARG("pr_c.4.2", "c_is_one_probs#4")}},
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
    char both[128]; /* "model/engine" selects one case */
    snprintf(both, sizeof both, "%s/%s", cases[i].model, cases[i].engine);
    if (!filter || strstr(cases[i].model, filter) || !strcmp(cases[i].engine, filter) ||
        !strcmp(both, filter))
      run_case(&cases[i]);
  }
  return tap_done();
}
