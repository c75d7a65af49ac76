/* test_start.c — where a run starts from, through the public API (ppl.h):
 *
 *   - --init FILE: the latents named start at the file's values (nuts: the
 *     first draw of a run without warmup and with a tiny step is there; mh:
 *     the chain starts next to the value, far from where the prior puts it),
 *     the others as before; a path and JSON text both work; unknown names,
 *     values outside the support or on its boundary, wrong shapes, unreadable
 *     files and engines that cannot take initial values are refused with
 *     messages naming the file and the variable;
 *   - --save-metric then --warmup 0 --metric FILE: the saved file holds the
 *     step size of the CSV's adaptation lines and the adapted diagonal; the
 *     second run reads the same step size, accepts near --adapt-delta and
 *     gets a conjugate posterior right within MCSE; a dense metric given as
 *     JSON text runs as dense_e; a metric of the wrong size is refused;
 *   - arma11 (posteriordb), whose random starts at |theta| > 1 used to leave
 *     chains stuck: 5 seeds x 4 chains, every R-hat below 1.01 and no chain
 *     with a collapsed step size. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppl.h"
#include "tap.h"

static const char *examples; /* the repository's examples/ */

static ppl_model *compile(ppl_context *ctx, const char *src, const char *json) {
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, src, "start.ppl", &m) != PPL_OK) return NULL;
  if (json ? ppl_set_data_json(m, json, "data.json") != PPL_OK : ppl_data_commit(m) != PPL_OK)
    return NULL;
  return m;
}

static double col_draw(const ppl_result *r, int chain, int draw, const char *name) {
  return ppl_result_draw(r, chain, draw, ppl_result_column_index(r, name));
}

/* The text after `key` on the first line of file that has it, or "". */
static const char *line_after(const char *file, const char *key) {
  static char out[4096];
  char line[4096];
  out[0] = 0;
  FILE *f = fopen(file, "r");
  while (f && fgets(line, sizeof line, f)) {
    char *p = strstr(line, key);
    if (!p) continue;
    snprintf(out, sizeof out, "%s", p + strlen(key));
    out[strcspn(out, "\n")] = 0;
    break;
  }
  if (f) fclose(f);
  return out;
}

static const char *init_src =
    "model {\n"
    "  real<lower=0> s ~ gamma(2, 1);\n"
    "  vector[3] v ~ normal(0, 1);\n"
    "  real mu ~ normal(0, 1);\n"
    "  1.0 ~ normal(mu, s);\n"
    "}\n";

/* A run of one draw without warmup and a step of 1e-9: the draw is the start. */
static ppl_status first_draw(ppl_model *m, const char *init, ppl_result **r) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.chains = 1, ro.warmup = 0, ro.draws = 1, ro.seed = 5;
  ro.stepsize = 1e-9;
  ppl_status s = ppl_run_set(&ro, "init", init);
  if (s == PPL_OK) s = ppl_run(m, &ro, r);
  ppl_run_options_free(&ro);
  return s;
}

static void test_init(const char *tmp) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = compile(ctx, init_src, NULL);
  if (!tap_ok(m != NULL, "init model compiles (%s)", ppl_errmsg(ctx))) return;
  ppl_result *r = NULL;
  bool ran = first_draw(m, "{\"s\": 3.5, \"v\": [1, -2, 0.5]}", &r) == PPL_OK;
  tap_ok(ran && fabs(col_draw(r, 0, 0, "s") - 3.5) < 1e-4 && fabs(col_draw(r, 0, 0, "v.1") - 1) < 1e-4 &&
             fabs(col_draw(r, 0, 0, "v.2") + 2) < 1e-4 && fabs(col_draw(r, 0, 0, "v.3") - 0.5) < 1e-4,
         "nuts: the latents named start at the JSON text's values (s %g, v %g %g %g; %s)",
         ran ? col_draw(r, 0, 0, "s") : NAN, ran ? col_draw(r, 0, 0, "v.1") : NAN,
         ran ? col_draw(r, 0, 0, "v.2") : NAN, ran ? col_draw(r, 0, 0, "v.3") : NAN, ppl_errmsg(ctx));
  /* mu is not named: uniform(-2, 2) on its (unconstrained) scale, as before */
  tap_ok(ran && fabs(col_draw(r, 0, 0, "mu")) < 2, "the latent not named starts in (-2, 2): %g",
         ran ? col_draw(r, 0, 0, "mu") : NAN);
  ppl_result_free(r);

  char path[512];
  snprintf(path, sizeof path, "%s/init.json", tmp);
  FILE *f = fopen(path, "w");
  fputs("{\"mu\": -1.25}\n", f);
  fclose(f);
  ran = first_draw(m, path, &r) == PPL_OK;
  tap_ok(ran && fabs(col_draw(r, 0, 0, "mu") + 1.25) < 1e-4, "nuts: a file path works (mu %g; %s)",
         ran ? col_draw(r, 0, 0, "mu") : NAN, ppl_errmsg(ctx));
  ppl_result_free(r);

  struct { const char *init, *msg; } bad[] = {
      {"{\"s\": -1}", "--init: \"s\": -1 is below the lower bound 0"},
      {"{\"s\": 0}", "--init: \"s\": the initial value is on the boundary of the latent's support; it must lie strictly inside"},
      {"{\"v\": [1, 2]}", "--init: \"v\": expected 3 reals, got 2"},
      {"{\"v\": 1}", "--init: \"v\": expected an array of 3 reals, got a number"},
      {"{\"sigma\": 1}", "--init: \"sigma\" is not a latent of this program (its latents: s, v, mu)"},
      {"{\"mu\": 1", "--init:1:8: invalid JSON: '}' expected near end of file"},
      {"./no-such-init.json", "--init './no-such-init.json' is not a radius, and as a file: cannot read ./no-such-init.json: No such file or directory"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    ppl_status s = first_draw(m, bad[k].init, &r);
    tap_ok(s != PPL_OK && !strcmp(ppl_errmsg(ctx), bad[k].msg), "refused: %s", ppl_errmsg(ctx));
  }
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "smc";
  ppl_run_set(&ro, "init", path);
  tap_ok(ppl_run_check(m, &ro) == PPL_ERR_USAGE &&
             !strcmp(ppl_errmsg(ctx), "engine 'smc' cannot start from initial values: --init FILE applies to mh, lmh, nuts, hmc, advi"),
         "an engine without initial values says so: %s", ppl_errmsg(ctx));
  ppl_run_options_free(&ro);
  ppl_model_free(m);

  /* mh: a chain started at 38 stays near it after one sweep; the prior
     (sd 100) would almost never start it there */
  m = compile(ctx, "model { real mu ~ normal(0, 100); 40 ~ normal(mu, 0.5); }\n", NULL);
  ppl_run_options_default(&ro);
  ro.engine = "mh", ro.chains = 2, ro.warmup = 0, ro.draws = 1, ro.seed = 3;
  ppl_run_set(&ro, "init", "{\"mu\": 38}");
  r = NULL;
  ran = m && ppl_run(m, &ro, &r) == PPL_OK;
  tap_ok(ran && fabs(col_draw(r, 0, 0, "mu") - 38) < 3 && fabs(col_draw(r, 1, 0, "mu") - 38) < 3,
         "mh: the chains start at the file's value (%g, %g; %s)", ran ? col_draw(r, 0, 0, "mu") : NAN,
         ran ? col_draw(r, 1, 0, "mu") : NAN, ppl_errmsg(ctx));
  ppl_result_free(r);
  ppl_run_set(&ro, "init", "{\"mu\": [1]}");
  tap_ok(m && ppl_run(m, &ro, &r) != PPL_OK && !strcmp(ppl_errmsg(ctx), "--init: \"mu\": expected a real, got an array"),
         "mh: a wrong shape is refused: %s", ppl_errmsg(ctx));
  ppl_run_options_free(&ro);
  ppl_model_free(m);
  ppl_context_free(ctx);
}

/* y ~ normal(mu, 2) with a normal(0, 10) prior, and nu alone on a scale 40
   times smaller: the adapted diagonal is about [0.25, 0.0025]. */
static const char *conj_src =
    "data { int N; vector[N] y; }\n"
    "model {\n"
    "  real mu ~ normal(0, 10);\n"
    "  real nu ~ normal(3, 0.05);\n"
    "  y ~ normal(mu, 2);\n"
    "}\n";
static const char *conj_data =
    "{\"N\": 16, \"y\": [1.2, 3.1, 0.4, 2.2, 1.9, 2.8, 0.1, 1.7, 2.5, 3.3, 1.1, 0.9, 2.0, 1.4, 2.6, 1.8]}";

static void test_metric(const char *tmp) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = compile(ctx, conj_src, conj_data);
  if (!tap_ok(m != NULL, "conjugate model compiles (%s)", ppl_errmsg(ctx))) return;
  double sum = 1.2 + 3.1 + 0.4 + 2.2 + 1.9 + 2.8 + 0.1 + 1.7 + 2.5 + 3.3 + 1.1 + 0.9 + 2.0 + 1.4 + 2.6 + 1.8;
  double prec = 1.0 / 100 + 16.0 / 4, mean = sum / 4 / prec, sd = sqrt(1 / prec);

  char out1[512], out2[512], csv1[512], csv2[512], met1[512], met2[512];
  snprintf(out1, sizeof out1, "%s/first.csv", tmp);
  snprintf(csv1, sizeof csv1, "%s/first_1.csv", tmp);
  snprintf(met1, sizeof met1, "%s/first_1_metric.json", tmp);
  snprintf(met2, sizeof met2, "%s/first_2_metric.json", tmp);
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.chains = 2, ro.draws = 100, ro.seed = 3, ro.output_csv = out1;
  ppl_run_set(&ro, "save-metric", "true");
  ppl_result *r = NULL;
  bool ran = ppl_run(m, &ro, &r) == PPL_OK;
  ppl_result_free(r);
  ppl_run_options_free(&ro);
  tap_ok(ran && access(met1, R_OK) == 0 && access(met2, R_OK) == 0,
         "--save-metric writes first_1_metric.json and first_2_metric.json (%s)", ppl_errmsg(ctx));
  double eps = strtod(line_after(met1, "\"stepsize\": "), NULL);
  char want[64];
  snprintf(want, sizeof want, "%g", eps);
  char step_line[64];
  snprintf(step_line, sizeof step_line, "%s", line_after(csv1, "# Step size = "));
  tap_ok(eps > 0 && !strcmp(want, step_line), "the file's step size %.17g is the CSV's (%s)", eps, step_line);
  const char *inv = line_after(met1, "\"inv_metric\": [");
  double d0 = strtod(inv, NULL), d1 = strtod(strchr(inv, ',') ? strchr(inv, ',') + 1 : "nan", NULL);
  tap_ok(!strcmp(line_after(met1, "\"metric_type\": "), "\"diag_e\",") && fabs(d0 / (sd * sd) - 1) < 0.3 &&
             fabs(d1 / 0.0025 - 1) < 0.3,
         "diag_e with the posterior variances: %g (%g), %g (0.0025)", d0, sd * sd, d1);

  snprintf(out2, sizeof out2, "%s/again.csv", tmp);
  snprintf(csv2, sizeof csv2, "%s/again.csv", tmp);
  ppl_run_options_default(&ro);
  ro.chains = 1, ro.warmup = 0, ro.draws = 4000, ro.seed = 4, ro.output_csv = out2;
  ppl_run_set(&ro, "metric", met1);
  r = NULL;
  ran = ppl_run(m, &ro, &r) == PPL_OK;
  tap_ok(ran && !strcmp(line_after(csv2, "# Step size = "), step_line) &&
             !strcmp(line_after(csv2, "metric_file = "), met1) &&
             fabs(col_draw(r, 0, 0, "stepsize__") - eps) == 0,
         "--warmup 0 --metric FILE: the same step size (%s), the file in the header (%s)",
         step_line, ppl_errmsg(ctx));
  ppl_summary acc = {0}, mu = {0}, nu = {0};
  if (ran) {
    ppl_result_summary(r, ppl_result_column_index(r, "accept_stat__"), &acc);
    ppl_result_summary(r, ppl_result_column_index(r, "mu"), &mu);
    ppl_result_summary(r, ppl_result_column_index(r, "nu"), &nu);
  }
  tap_ok(ran && acc.mean > 0.65 && acc.mean < 0.97, "the reused adaptation accepts near 0.8: %g", acc.mean);
  tap_ok(ran && fabs(mu.mean - mean) < 4 * mu.mcse && fabs(mu.sd / sd - 1) < 0.1 &&
             fabs(nu.mean - 3) < 4 * nu.mcse && fabs(nu.sd / 0.05 - 1) < 0.1,
         "the posterior: mu %g +- %g (exact %g, sd %g vs %g), nu %g (sd %g vs 0.05)", mu.mean, mu.mcse,
         mean, mu.sd, sd, nu.mean, nu.sd);
  ppl_result_free(r);
  ppl_run_options_free(&ro);

  /* dense, as JSON text; and a file for another program */
  ppl_run_options_default(&ro);
  ro.chains = 1, ro.warmup = 0, ro.draws = 200, ro.output_csv = out2;
  ppl_run_set(&ro, "metric", "{\"inv_metric\": [[0.25, 0.001], [0.001, 0.0025]], \"stepsize\": 0.7}");
  r = NULL;
  ran = ppl_run(m, &ro, &r) == PPL_OK;
  tap_ok(ran && !strcmp(line_after(csv2, "metric = "), "dense_e") &&
             col_draw(r, 0, 0, "stepsize__") == 0.7 &&
             !strcmp(line_after(csv2, "# Elements of inverse mass "), "matrix:"),
         "a dense metric as JSON text runs dense_e with its step size (%s)", ppl_errmsg(ctx));
  ppl_result_free(r);
  ppl_run_set(&ro, "metric", "{\"inv_metric\": [1, 2, 3]}");
  tap_ok(ppl_run(m, &ro, &r) != PPL_OK &&
             !strcmp(ppl_errmsg(ctx), "--metric: \"inv_metric\" is for 3 unconstrained coordinates, but this program has 2 (a metric file fits the program and data it was saved from)"),
         "a metric of the wrong size: %s", ppl_errmsg(ctx));
  ppl_run_set(&ro, "metric", "{\"inv_metric\": [1, 0]}");
  tap_ok(ppl_run(m, &ro, &r) != PPL_OK && strstr(ppl_errmsg(ctx), "diagonal must be positive"),
         "a metric with a zero: %s", ppl_errmsg(ctx));
  ppl_run_options_free(&ro);
  ppl_model_free(m);
  ppl_context_free(ctx);
}

static void test_arma11(void) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  char model[1024], data[1024];
  snprintf(model, sizeof model, "%s/posteriordb/arma-arma11.ppl", examples);
  snprintf(data, sizeof data, "%s/posteriordb/arma-arma11.data.json", examples);
  if (!tap_ok(ppl_compile_file(ctx, model, &m) == PPL_OK && ppl_set_data_file(m, data) == PPL_OK,
              "arma11 compiles (%s)", ppl_errmsg(ctx)))
    return;
  static const char *const vars[] = {"mu", "phi", "theta", "sigma"};
  for (uint64_t seed = 1; seed <= 5; seed++) {
    ppl_run_options ro;
    ppl_run_options_default(&ro);
    ro.seed = seed == 5 ? 1234 : seed; /* 1234 and 1 were the issue's */
    ppl_result *r = NULL;
    bool ran = ppl_run(m, &ro, &r) == PPL_OK;
    double worst = 0, min_step = INFINITY;
    for (int v = 0; ran && v < 4; v++) {
      ppl_summary s;
      ppl_result_summary(r, ppl_result_column_index(r, vars[v]), &s);
      if (!(s.rhat <= worst)) worst = s.rhat;
    }
    int sc = ran ? ppl_result_column_index(r, "stepsize__") : -1;
    for (int c = 0; ran && c < ppl_result_num_chains(r); c++)
      if (ppl_result_draw(r, c, 0, sc) < min_step) min_step = ppl_result_draw(r, c, 0, sc);
    tap_ok(ran && worst < 1.01 && min_step > 0.01,
           "arma11 seed %llu: max R-hat %.4f, smallest adapted step size %g (%s)",
           (unsigned long long)ro.seed, worst, min_step, ppl_errmsg(ctx));
    ppl_result_free(r);
  }
  ppl_model_free(m);
  ppl_context_free(ctx);
}

int main(int argc, char **argv) {
  examples = argc > 1 ? argv[1] : "examples";
  char tmp[] = "/tmp/ppl_start_XXXXXX";
  if (!mkdtemp(tmp)) return 1;
  test_init(tmp);
  test_metric(tmp);
  test_arma11();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) tap_diag("could not remove %s", tmp);
  return tap_done();
}
