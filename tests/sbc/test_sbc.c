/* test_sbc.c — simulation-based calibration (Talts, Betancourt, Simpson,
 * Vehtari, Gelman 2018) of the engines on small models.
 *
 * One replicate: draw the parameters from the prior and simulate a data set
 * from them, here in C with a generator of our own (so the simulation shares
 * no code with the engine under test), fit the model to those data through
 * the public API, keep L thinned posterior draws and record the rank of the
 * prior draw among them (0..L).  If the engine samples the posterior, each
 * rank is uniform on 0..L; a biased or over/under-dispersed sampler piles
 * ranks at one end or at both.  Uniformity is tested by a chi-square over
 * SBC_BINS bins of the S ranks, against the chi-square quantile at 0.999
 * (computed by chi2_threshold.py).  Seeds are fixed, so the outcome is
 * deterministic; the threshold is what keeps an honest test from being
 * tuned to its seed.
 *
 * A negative control fits a deliberately wrong model (likelihood sd half the
 * one that simulated the data: an overconfident posterior) and must FAIL the
 * uniformity test, which shows the test has the power to catch a real bug.
 *
 * The generator, the models' struct, the replicates and the ranks are in sbc.h,
 * which test_sbc_amortized.c shares.
 *
 * Engines: "mh" always; "nuts" as well once it is registered.
 *   test_sbc [replicates]
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "sbc.h"
#include "tap.h"

/* ---- the models: a simulator in C and the ppl program that fits it ---- */

static void sim_normal_scale(SbcRng *r, double *par, char *json, size_t jsz) {
  double y[8];
  par[0] = 2 * sbc_normal(r);
  par[1] = exp(0.5 * sbc_normal(r));
  for (int i = 0; i < 8; i++) y[i] = par[0] + par[1] * sbc_normal(r);
  size_t k = (size_t)snprintf(json, jsz, "{\"N\": 8, ");
  k += sbc_vec(json + k, jsz - k, "y", y, 8);
  snprintf(json + k, jsz - k, "}");
}

static void sim_logistic(SbcRng *r, double *par, char *json, size_t jsz) {
  enum { N = 20 };
  double x[N], y[N];
  par[0] = sbc_normal(r);
  par[1] = sbc_normal(r);
  for (int i = 0; i < N; i++) {
    x[i] = -2 + 4.0 * i / (N - 1);
    double p = 1 / (1 + exp(-(par[0] + par[1] * x[i])));
    y[i] = sbc_unif(r) < p ? 1 : 0;
  }
  size_t k = (size_t)snprintf(json, jsz, "{\"N\": %d, ", N);
  k += sbc_vec(json + k, jsz - k, "x", x, N);
  k += (size_t)snprintf(json + k, jsz - k, ", \"y\": [");
  for (int i = 0; i < N; i++) k += (size_t)snprintf(json + k, jsz - k, "%s%d", i ? ", " : "", (int)y[i]);
  snprintf(json + k, jsz - k, "]}");
}

static const SbcModel sbc_models[] = {
    {"normal_mean",
     "data { int N; vector[N] y; }\n"
     "model { real mu ~ normal(0, 1); y ~ normal(mu, 1); }\n",
     1, {"mu"}, sbc_sim_normal_mean},
    {"normal_scale",
     "data { int N; vector[N] y; }\n"
     "model { real mu ~ normal(0, 2); real sigma ~ lognormal(0, 0.5);\n"
     "        y ~ normal(mu, sigma); }\n",
     2, {"mu", "sigma"}, sim_normal_scale},
    {"logistic",
     "data { int N; vector[N] x; int y[N]; }\n"
     "model { real alpha ~ normal(0, 1); real beta ~ normal(0, 1);\n"
     "        y ~ bernoulli_logit(alpha + beta * x); }\n",
     2, {"alpha", "beta"}, sim_logistic},
};

/* The negative control: the data of normal_mean, fitted with the wrong sd. */
static const SbcModel sbc_wrong = {
    "normal_mean with a wrong likelihood sd",
    "data { int N; vector[N] y; }\n"
    "model { real mu ~ normal(0, 1); y ~ normal(mu, 0.5); }\n",
    1, {"mu"}, sbc_sim_normal_mean};

int main(int argc, char **argv) {
  int S = argc > 1 ? atoi(argv[1]) : 400;
  /* sanitizer builds (PPL_TEST_SCALE < 1, nothing collected): a smoke run of
     every fit without the uniformity tests, which need all the replicates */
  const char *env = getenv("PPL_TEST_SCALE");
  bool smoke = env && atof(env) > 0 && atof(env) < 1;
  if (smoke) {
    S = SBC_BINS;
    tap_diag("PPL_TEST_SCALE=%s: smoke run, uniformity not tested", env);
  }
  if (S < SBC_BINS) S = SBC_BINS;
  ppl_context *ctx = ppl_context_new(NULL);
  const SbcEngine engines[] = {{"mh", 300, 20, NULL}, {"nuts", 300, 5, NULL}};
  double chi2[SBC_MAXPAR];
  for (size_t e = 0; e < sizeof engines / sizeof *engines; e++) {
    const SbcEngine *se = &engines[e];
    for (size_t k = 0; k < sizeof sbc_models / sizeof *sbc_models; k++) {
      const SbcModel *sm = &sbc_models[k];
      bool ran = sbc_run(ctx, sm, se, S, 1000 + k, chi2);
      for (int p = 0; p < sm->npar; p++)
        tap_ok(ran && (smoke || chi2[p] < SBC_CHI2_999), "%s/%s: ranks of %s are uniform",
               sm->name, se->engine, sm->par[p]);
    }
    bool ran = sbc_run(ctx, &sbc_wrong, se, S, 1000, chi2);
    tap_ok(ran && (smoke || chi2[0] > SBC_CHI2_999),
           "%s/%s: ranks are not uniform (negative control)", sbc_wrong.name, se->engine);
  }
  ppl_context_free(ctx);
  return tap_done();
}
