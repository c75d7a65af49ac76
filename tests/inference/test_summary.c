/* test_summary.c — the stansummary-like table (exact text) and the JSON
 * summary (parsed back with jansson: shape, names, nulls). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "inference/summary.h"
#include "core/value.h"
#include "tests/tap.h"

static const char *labels[] = {"lp__", "theta[1]", "m[1,2]"};
#define STATS(mean_, mcse_, sd_, q5_, q50_, q95_, eb_, et_, rh_) \
  {.mean = mean_, .sd = sd_, .mcse = mcse_, .q5 = q5_, .q50 = q50_, .q95 = q95_, \
   .ess_bulk = eb_, .ess_tail = et_, .rhat = rh_}
static SummaryStats stats[3] = {
    STATS(-7.2734, 0.021, 0.7163, -8.712, -6.991, -6.748, 1620.4, 2000.6, 1.0021),
    STATS(0.25123, 0.00312, 0.1212, 0.0781, 0.2381, 0.4712, 1540.2, 1880.9, 1.0008),
    STATS(3.0, NAN, 0.0, 3.0, 3.0, 3.0, NAN, NAN, NAN),
};

static void test_table(void) {
  SummaryRun run = {.model_name = "coin", .engine = "mh",
                    .engine_reason = "mh — 1 continuous latent, fixed structure",
                    .chains = 4, .draws = 1000, .warmup = 1000, .thin = 1,
                    .log_evidence = NAN, .log_evidence_se = NAN};
  char *t = summary_table(&run, 3, labels, stats);
  const char *want =
      "Inference for ppl model: coin\n"
      "engine: mh — 1 continuous latent, fixed structure\n"
      "4 chains, 1000 draws each after 1000 warmup iterations: 4000 draws in total\n"
      "\n"
      "              Mean      MCSE    StdDev        5%       50%       95%  ESS_bulk  ESS_tail  R_hat\n"
      "lp__         -7.27     0.021     0.716     -8.71     -6.99     -6.75      1620      2001  1.002\n"
      "theta[1]     0.251    0.0031     0.121    0.0781     0.238     0.471      1540      1881  1.001\n"
      "m[1,2]           3         -         0         3         3         3         -         -      -\n"
      "\n";
  int same = strncmp(t, want, strlen(want)) == 0;
  tap_ok(same, "table text");
  if (!same) tap_diag("got:\n%s", t ? t : "(null)");
  tap_ok(strstr(t, "log evidence") == NULL, "no log evidence line when not estimated");

  run.engine_reason = "chosen with --engine";
  run.log_evidence = -108.6132;
  run.log_evidence_se = 0.0213;
  run.weighted = true;
  run.chains = 1, run.draws = 500, run.warmup = 0, run.thin = 3;
  t = summary_table(&run, 3, labels, stats);
  tap_ok(strstr(t, "engine: mh — chosen with --engine\n") != NULL, "reason without the engine name gets it");
  tap_ok(strstr(t, "1 chain, 500 draws each (thin 3): 500 draws in total\n") != NULL, "one chain, thin, no warmup");
  tap_ok(strstr(t, "\nlog evidence: -108.613 ± 0.021\n") != NULL, "log evidence line");
  tap_ok(strstr(t, "Kish") != NULL, "weighted runs explain ESS");
  run.log_evidence_se = 0.2;
  t = summary_table(&run, 3, labels, stats);
  tap_ok(strstr(t, "\nlog evidence: -108.61 ± 0.20\n") != NULL, "log evidence with two decimals");
}

static json_t *parse(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  if (!j) tap_diag("JSON error line %d: %s", e.line, e.text);
  return j;
}

static void test_json(void) {
  SummaryRun run = {.model_name = "coin", .engine = "mh", .engine_reason = NULL,
                    .chains = 4, .draws = 1000, .warmup = 1000, .thin = 1,
                    .log_evidence = NAN, .log_evidence_se = NAN};
  json_t *j = parse(summary_json(&run, 3, labels, stats));
  tap_ok(j && json_is_object(j), "JSON parses to an object");
  if (!j) return;
  tap_streq(json_string_value(json_object_get(j, "engine")), "mh", "engine");
  tap_ok(json_is_null(json_object_get(j, "log_evidence")), "log_evidence null when not estimated");
  tap_ok(json_integer_value(json_object_get(j, "chains")) == 4, "chains");
  json_t *vars = json_object_get(j, "variables");
  tap_ok(json_is_object(vars) && json_object_size(vars) == 3, "three variables");
  const char *key;
  json_t *val;
  int i = 0, order_ok = 1;
  json_object_foreach(vars, key, val) {
    if (i >= 3 || strcmp(key, labels[i])) order_ok = 0;
    i++;
  }
  tap_ok(order_ok, "variables in column order with summary names");
  json_t *th = json_object_get(vars, "theta[1]");
  static const char *fields[] = {"mean", "sd", "mcse", "q5", "q50", "q95", "ess_bulk", "ess_tail", "rhat"};
  int all = 1;
  for (int k = 0; k < 9; k++) all &= json_is_real(json_object_get(th, fields[k]));
  tap_ok(all && json_object_size(th) == 9, "theta[1] has the nine numeric fields");
  tap_ok(json_real_value(json_object_get(th, "mean")) == 0.25123, "mean kept at full precision");
  json_t *m = json_object_get(vars, "m[1,2]");
  tap_ok(json_is_null(json_object_get(m, "rhat")) && json_is_null(json_object_get(m, "ess_bulk")) &&
             json_is_null(json_object_get(m, "mcse")),
         "NaN fields are null");
  tap_ok(json_real_value(json_object_get(m, "sd")) == 0, "zero sd stays 0");
  json_decref(j);

  run.log_evidence = -3.5, run.log_evidence_se = 0.125;
  j = parse(summary_json(&run, 3, labels, stats));
  json_t *le = j ? json_object_get(j, "log_evidence") : NULL;
  tap_ok(le && json_real_value(json_object_get(le, "estimate")) == -3.5 &&
             json_real_value(json_object_get(le, "se")) == 0.125,
         "log_evidence object");
  json_decref(j);

  Diag d;
  diag_init(&d);
  tap_ok(!summary_write_json("/nonexistent-dir/s.json", &run, 3, labels, stats, &d) &&
             d.code == DIAG_IO && strstr(d.msg, "/nonexistent-dir/s.json"),
         "unwritable JSON path is DIAG_IO naming the file: %s", d.msg);
}

int main(void) {
  gc_init();
  test_table();
  test_json();
  return tap_done();
}
