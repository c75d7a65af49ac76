/* test_sbc_amortized.c — is an amortized posterior right?  Simulation-based
 * calibration (sbc.h) and exact accuracy on data the network never saw.
 *
 * The guide form (AEVB: an encoder network maps each observation to its
 * latent's posterior) on the per-datapoint conjugate toy
 *
 *     z[i] ~ normal(0, 1);  x[i] ~ normal(z[i], s)
 *     =>  z[i] | x[i] ~ normal(x[i] / (1 + s^2), s / sqrt(1 + s^2)),
 *
 * whose guide, normal(h[1], exp(h[2])) with h = enc(x[i]), contains the exact
 * posterior.  Budget: the encoder (an mlp 1 -> 16 relu -> 2) is trained by
 * ppl_train (`ppl train`, svi's loop) on toy_train (2,000) simulated points for toy_iter (6,000) steps in
 * minibatches of 100, Adam at lr 0.01 on a cosine schedule, once.  Then, with no further optimisation, its draws for TOY_M new points (z*, x*)
 * simulated in C give one SBC replicate each (the guide and the exact
 * posterior factor over the points, so the ranks of the z*[i] among
 * SBC_L draws of z[i] are independent); uniformity at the 0.999 chi-square
 * quantile.  The direct check: for every new point in the central 99% of x's
 * prior predictive (where the training points are; the tails, where a network
 * extrapolates, are reported), the mean and sd of toy_draws (1,000) draws of
 * z[i] within 4 Monte Carlo standard errors plus an allowance of 0.1
 * posterior sd (what an approximate network may be off by) of the exact ones.
 * The diagnostics: no k-hat warning and the log evidence within 4 SE of the
 * exact one for these points; for points simulated with another likelihood
 * sd, the k-hat warning.  The negative control trains the guide on a model with
 * a likelihood sd half the simulator's (an overconfident posterior): its
 * ranks must fail the same test.
 *
 * Whole-program amortization (npe): a conditional flow trained once by ppl_train
 * (`ppl train --amortize`) on the program's own prior-predictive simulations (the
 * budget: npe_budget), then SBC as tests/sbc/test_sbc.c runs it for nuts
 * (sbc_run: S replicates, each a prior draw, a data set simulated in C and
 * SBC_L draws of the engine amortized from the file), on a conjugate
 * program (normal_mean: mu ~ normal(0, 1), ten y ~ normal(mu, 1)) and a
 * hierarchical one (a four-group hierarchy, mu, tau and the groups' means
 * latent), each parameter's ranks at the 0.999 chi-square quantile.  Its
 * negative control: normal_mean's data drawn for by a flow trained for a
 * likelihood sd half the simulator's.
 *
 *   test_sbc_amortized [replicates]
 *
 * PPL_TEST_NO_JIT: the npe part under the interpreter (the guide form always
 * interprets, so it runs only without it).
 * PPL_TEST_SCALE < 1 (sanitizer builds): a smoke run, budget and points cut,
 * nothing tested but that every step runs.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppl.h"
#include "amortized_toy.h"
#include "sbc.h"
#include "tap.h"

/* ---- the guide form: the conjugate toy ---- */

#define TOY_S 0.5         /* the simulator's likelihood sd */
#define TOY_MAXN 2000
static int toy_train = 2000, toy_iter = 6000, toy_m = 1000, toy_draws = 1000;

/* n points (z*, x*) from the prior predictive with likelihood sd s_sim, as
   the program's data (whose s is s_model). */
static void toy_simulate_sd(SbcRng *r, int n, double s_sim, double s_model, double *z, double *x,
                            char *json, size_t jsz) {
  for (int i = 0; i < n; i++) {
    z[i] = sbc_normal(r);
    x[i] = z[i] + s_sim * sbc_normal(r);
  }
  size_t k = (size_t)snprintf(json, jsz, "{\"N\": %d, \"s\": %.17g, ", n, s_model);
  k += sbc_vec(json + k, jsz - k, "x", x, n);
  snprintf(json + k, jsz - k, "}");
}

static void toy_simulate(SbcRng *r, int n, double s_model, double *z, double *x, char *json,
                         size_t jsz) {
  toy_simulate_sd(r, n, TOY_S, s_model, z, x, json, jsz);
}

/* Trains the toy's guide on simulated data (model sd s_model), then draws for
   new points: the SBC chi-square of their ranks into *chi2 and, when exact
   is set, the direct check against the exact posterior.  False on an error. */
static bool toy_run(ppl_context *ctx, const char *dir, double s_model, uint64_t seed, bool smoke,
                    bool exact, double *chi2) {
  static char json[TOY_MAXN * 26 + 128];
  static double z[TOY_MAXN], x[TOY_MAXN];
  char file[1024], label[128];
  snprintf(file, sizeof file, "%s/toy_%g.params", dir, s_model);
  ppl_model *m = NULL;
  ppl_result *r = NULL;
  bool ok = false;
  if (ppl_compile_string(ctx, toy_src, "toy.ppl", &m) != PPL_OK) {
    tap_diag("toy.ppl: %s", ppl_errmsg(ctx));
    return false;
  }
  SbcRng rng;
  sbc_seed(&rng, seed);

  /* training, once (ppl train: svi's loop) */
  toy_simulate(&rng, toy_train, s_model, z, x, json, sizeof json);
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.seed = seed;
  char iter[32];
  snprintf(iter, sizeof iter, "%d", toy_iter);
  if (ppl_set_data_json(m, json, "train.json") != PPL_OK ||
      ppl_run_set(&ro, "iter", iter) != PPL_OK || ppl_run_set(&ro, "lr", "0.01") != PPL_OK ||
      ppl_run_set(&ro, "lr-schedule", "cosine") != PPL_OK ||
      ppl_train(m, &ro, file, NULL) != PPL_OK) {
    tap_diag("toy: training: %s", ppl_errmsg(ctx));
    goto out;
  }
  ppl_run_options_free(&ro);

  /* new points, drawn for with no optimisation */
  toy_simulate(&rng, toy_m, s_model, z, x, json, sizeof json);
  ppl_run_options_default(&ro);
  ro.engine = "amortized";
  ro.chains = 1;
  ro.draws = toy_draws;
  ro.seed = seed + 1;
  if (ppl_set_data_json(m, json, "new.json") != PPL_OK ||
      ppl_run_set(&ro, "load", file) != PPL_OK || ppl_run(m, &ro, &r) != PPL_OK) {
    tap_diag("toy: drawing for new data: %s", ppl_errmsg(ctx));
    goto out;
  }
  /* the exact posterior given x[i] (the simulator's s: under the negative
     control's model it is not what the guide was trained for) */
  double shrink = 1 / (1 + TOY_S * TOY_S), post_sd = TOY_S * sqrt(shrink);
  double worst_mean = 0, worst_sd = 0; /* in units of their tolerances */
  /* the direct check covers the central 99% of the prior predictive of x,
     normal(0, sqrt(1 + s^2)), where the training points are; the tails, where
     a network extrapolates, are reported */
  double bulk = 2.5758 * sqrt(1 + TOY_S * TOY_S), tail_mean = 0, tail_sd = 0;
  int tail_n = 0;
  int counts[SBC_BINS] = {0}, worst_i = 0, worst_j = 0;
  for (int i = 0; i < toy_m; i++) {
    char col_name[32];
    snprintf(col_name, sizeof col_name, "z[%d]", i + 1);
    int col = ppl_result_column_index(r, col_name);
    if (col < 0) {
      tap_diag("toy: no column %s", col_name);
      goto out;
    }
    double draws[SBC_L], sum = 0, sum2 = 0;
    for (int l = 0; l < SBC_L; l++) draws[l] = ppl_result_draw(r, 0, l, col);
    sbc_count(counts, z[i], draws);
    for (int l = 0; l < toy_draws; l++) {
      double v = ppl_result_draw(r, 0, l, col);
      sum += v;
      sum2 += v * v;
    }
    double mean = sum / toy_draws, sd = sqrt((sum2 - toy_draws * mean * mean) / (toy_draws - 1));
    /* 4 MC standard errors (of a mean, of an sd of normal draws) + 0.1 sd */
    double tol_mean = 4 * post_sd / sqrt(toy_draws) + 0.1 * post_sd;
    double tol_sd = 4 * post_sd / sqrt(2.0 * toy_draws) + 0.1 * post_sd;
    double em = fabs(mean - shrink * x[i]) / tol_mean, es = fabs(sd - post_sd) / tol_sd;
    if (fabs(x[i]) > bulk) {
      tail_n++;
      if (em > tail_mean) tail_mean = em;
      if (es > tail_sd) tail_sd = es;
      continue;
    }
    if (em > worst_mean) worst_mean = em, worst_i = i;
    if (es > worst_sd) worst_sd = es, worst_j = i;
  }
  snprintf(label, sizeof label, "toy guide, model sd %g, %d new points", s_model, toy_m);
  *chi2 = sbc_chi2(counts, label);
  if (exact) {
    tap_diag("worst mean at x = %.3f, worst sd at x = %.3f; the %d points beyond |x| = %.2f: "
             "worst mean %.2f, sd %.2f of the tolerance", x[worst_i], x[worst_j], tail_n, bulk,
             tail_mean, tail_sd);
    tap_ok(smoke || worst_mean <= 1,
           "guide form, toy: every new point's (|x| < %.2f) mean within 4 mcse + 0.1 sd of the exact "
           "(worst: %.2f of the tolerance)", bulk, worst_mean);
    tap_ok(smoke || worst_sd <= 1,
           "guide form, toy: every new point's (|x| < %.2f) sd within 4 se + 0.1 sd of the exact %.4f "
           "(worst: %.2f of the tolerance)", bulk, post_sd, worst_sd);

    /* the diagnostics: on these data (the kind it was trained on) no k-hat
       warning and the log evidence, sum log normal(x[i] | 0, sqrt(1 + s^2)),
       within 4 of its standard errors */
    double want = 0, est = NAN, se = NAN;
    for (int i = 0; i < toy_m; i++)
      want += -0.5 * log(2 * M_PI * (1 + TOY_S * TOY_S)) - x[i] * x[i] / (2 * (1 + TOY_S * TOY_S));
    bool have = ppl_result_log_evidence(r, &est, &se) == PPL_OK;
    tap_ok(smoke || !sbc_khat_warned(r), "guide form, toy: no k-hat warning for new data of its kind");
    tap_ok(smoke || (have && fabs(est - want) <= 4 * se),
           "guide form, toy: log evidence %.4f ± %.4f, exact %.4f", est, se, want);

    /* data unlike the training's (likelihood sd 1, not 0.5): the encoder
       still gives 0.8 x and 0.447, the posterior is 0.5 x and 0.707 */
    ppl_result_free(r);
    r = NULL;
    toy_simulate_sd(&rng, toy_m, 1.0, 1.0, z, x, json, sizeof json);
    if (ppl_set_data_json(m, json, "other.json") != PPL_OK || ppl_run(m, &ro, &r) != PPL_OK) {
      tap_diag("toy: drawing for other data: %s", ppl_errmsg(ctx));
      goto out;
    }
    tap_ok(smoke || sbc_khat_warned(r),
           "guide form, toy: data of another likelihood sd: k-hat warns (vi_khat)");
  }
  ok = true;
out:
  ppl_result_free(r);
  ppl_run_options_free(&ro);
  ppl_model_free(m);
  return ok;
}

/* ---- whole-program amortization (npe) ---- */

/* A small hierarchy with simulated data: mu ~ normal(0, 1), tau ~
   lognormal(-0.5, 0.5), theta[j] ~ normal(mu, tau), y[j] ~ normal(theta[j],
   sigma[j]) for J = 4 groups of known sds. */
static void sim_hierarchy(SbcRng *r, double *par, char *json, size_t jsz) {
  static const double sigma[4] = {0.5, 1, 1, 2};
  double theta[4], y[4];
  par[0] = sbc_normal(r);
  par[1] = exp(-0.5 + 0.5 * sbc_normal(r));
  for (int j = 0; j < 4; j++) {
    theta[j] = par[0] + par[1] * sbc_normal(r);
    y[j] = theta[j] + sigma[j] * sbc_normal(r);
  }
  par[2] = theta[0], par[3] = theta[3];
  size_t k = (size_t)snprintf(json, jsz, "{\"J\": 4, ");
  k += sbc_vec(json + k, jsz - k, "sigma", sigma, 4);
  k += (size_t)snprintf(json + k, jsz - k, ", ");
  k += sbc_vec(json + k, jsz - k, "y", y, 4);
  snprintf(json + k, jsz - k, "}");
}

static const SbcModel npe_models[] = {
    {"normal_mean",
     "data { int N; vector[N] y; }\n"
     "model { real mu ~ normal(0, 1); y ~ normal(mu, 1); }\n",
     1, {"mu"}, sbc_sim_normal_mean},
    {"hierarchy",
     "data { int J; vector<lower=0>[J] sigma; vector[J] y; }\n"
     "model {\n"
     "  real mu ~ normal(0, 1);\n"
     "  real<lower=0> tau ~ lognormal(-0.5, 0.5);\n"
     "  vector[J] theta ~ normal(mu, tau);\n"
     "  y ~ normal(theta, sigma);\n"
     "}\n",
     4, {"mu", "tau", "theta[1]", "theta[4]"}, sim_hierarchy},
};

/* The negative control: normal_mean's data, the flow trained for a model
   whose likelihood sd is half the simulator's (an overconfident posterior). */
static const SbcModel npe_wrong = {
    "normal_mean trained with a wrong likelihood sd",
    "data { int N; vector[N] y; }\n"
    "model { real mu ~ normal(0, 1); y ~ normal(mu, 0.5); }\n",
    1, {"mu"}, sbc_sim_normal_mean};

/* The training budget every npe fit of this test states (ppl_run_set
   name, value pairs). */
static const char *npe_budget[] = {"simulations", "4000", "epochs", "30", NULL};

/* Trains sm's flow once (ppl_train, `ppl train --amortize`, on a data set of
   its sizes simulated with seed), then its S replicates: chi2[p] per
   parameter. */
static bool npe_sbc(ppl_context *ctx, const char *dir, const SbcModel *sm, int S, uint64_t seed,
                    double *chi2) {
  char file[1024];
  static char json[8192];
  snprintf(file, sizeof file, "%s/npe_%s.params", dir, sm == &npe_wrong ? "wrong" : sm->name);
  SbcRng rng;
  sbc_seed(&rng, seed ^ 0x5eed);
  double par[SBC_MAXPAR];
  sm->simulate(&rng, par, json, sizeof json);
  ppl_model *m = NULL;
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "amortized";
  ro.seed = seed;
  ro.no_jit = getenv("PPL_TEST_NO_JIT") != NULL;
  ppl_train_info info;
  ppl_status st = ppl_compile_string(ctx, sm->source, sm->name, &m);
  if (st == PPL_OK) st = ppl_set_data_json(m, json, "train.json");
  for (int i = 0; st == PPL_OK && npe_budget[i]; i += 2)
    st = ppl_run_set(&ro, npe_budget[i], npe_budget[i + 1]);
  if (st == PPL_OK) st = ppl_train(m, &ro, file, &info);
  if (st != PPL_OK) tap_diag("%s: training: %s", sm->name, ppl_errmsg(ctx));
  else
    tap_diag("%s: trained in %.1f s (%ld simulations, %.0f epochs, held-out loss %.3f)",
             sm->name, info.seconds, info.steps, info.epochs, info.loss);
  ppl_run_options_free(&ro);
  ppl_model_free(m);
  SbcEngine se = {"amortized", 0, 1, file};
  return st == PPL_OK && sbc_run(ctx, sm, &se, S, seed, chi2);
}

int main(int argc, char **argv) {
  int S = argc > 1 ? atoi(argv[1]) : 400;
  const char *env = getenv("PPL_TEST_SCALE");
  bool smoke = env && atof(env) > 0 && atof(env) < 1;
  if (smoke) {
    toy_train = 200, toy_iter = 50, toy_m = 50, toy_draws = 50, S = SBC_BINS;
    npe_budget[1] = "500";
    tap_diag("PPL_TEST_SCALE=%s: smoke run, nothing tested but that it runs", env);
  }
  char tmpl[] = "/tmp/test_sbc_amortized_XXXXXX";
  const char *dir = mkdtemp(tmpl);
  if (!tap_ok(dir != NULL, "a temporary directory")) return tap_done();
  ppl_context *ctx = ppl_context_new(NULL);

  /* The guide form runs in the interpreter whatever the backend (svi
     interprets both blocks): under PPL_TEST_NO_JIT it would repeat itself. */
  bool interp_only = getenv("PPL_TEST_NO_JIT") != NULL;
  double chi2[SBC_MAXPAR];
  if (!interp_only) {
    bool ran = toy_run(ctx, dir, TOY_S, 20261207, smoke, true, chi2);
    tap_ok(ran && (smoke || chi2[0] < SBC_CHI2_999),
           "guide form, conjugate toy: ranks of z[i] on new points are uniform");
    ran = toy_run(ctx, dir, TOY_S / 2, 20261207, smoke, false, chi2);
    tap_ok(ran && (smoke || chi2[0] > SBC_CHI2_999),
           "guide form, toy trained with half the likelihood sd: ranks are not uniform "
           "(negative control)");
  }

  tap_diag("npe: budget %s %s, %s %s (batch 64), %d replicates", npe_budget[0], npe_budget[1],
           npe_budget[2], npe_budget[3], S);
  for (size_t k = 0; k < sizeof npe_models / sizeof *npe_models; k++) {
    const SbcModel *sm = &npe_models[k];
    bool ran = npe_sbc(ctx, dir, sm, S, 3000 + k, chi2);
    for (int p = 0; p < sm->npar; p++)
      tap_ok(ran && (smoke || chi2[p] < SBC_CHI2_999), "npe, %s: ranks of %s are uniform",
             sm->name, sm->par[p]);
  }
  bool ran = npe_sbc(ctx, dir, &npe_wrong, S, 3000, chi2);
  tap_ok(ran && (smoke || chi2[0] > SBC_CHI2_999), "npe, %s: ranks are not uniform (negative control)",
         npe_wrong.name);

  ppl_context_free(ctx);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) tap_diag("could not remove %s", dir);
  return tap_done();
}
