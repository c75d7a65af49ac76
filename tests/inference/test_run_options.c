/* test_run_options.c — engine options through the public API (ppl.h):
 * ppl_run_set, ppl_run_options_errmsg / _free, ppl_run_check, the listing
 * (ppl_engine_name, ppl_engine_options), and that an option set by name
 * reaches the engine exactly as the typed field does.
 *
 *   - defaults of the typed fields are the tables' (ppl_run_options_default);
 *   - a good value sets the typed field too; a bad one is refused with the
 *     CLI's message and leaves the field alone; unknown names get a
 *     suggestion;
 *   - an option set by name that the engine does not have is refused at
 *     ppl_run_check / ppl_run, naming the engines that have it; a typed field
 *     the engine does not use is not (compatibility);
 *   - typed fields out of range are refused with the same words;
 *   - smc with particles set by name gives the same draws, bit for bit, as
 *     with the typed field, and other draws than the default's. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

static const char *cont_src = "model { real mu ~ normal(0, 1); 1.5 ~ normal(mu, 1); }\n";
static const char *seq_src =
    "model {\n"
    "  real x = 0;\n"
    "  for (t in 1:5) {\n"
    "    int z ~ bernoulli(0.3);\n"
    "    x = x + z;\n"
    "    (t % 2 == 0 ? 1.0 : 0.0) ~ normal(x, 1);\n"
    "  }\n"
    "}\n"
    "generated { real xs = x; }\n";

static void test_set(void) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  tap_ok(ro.chains == 4 && ro.draws == 1000 && ro.particles == 0 && !strcmp(ro.metric, "diag") &&
             !strcmp(ro.resample, "systematic") && fabs(ro.int_time - 2 * M_PI) < 1e-15 &&
             ro.init_radius == 2 && ro.adapt_delta == 0.8 && ro.named == NULL,
         "defaults come from the tables");
  tap_ok(ppl_run_set(&ro, "particles", "250") == PPL_OK && ro.particles == 250 && ro.named,
         "particles 250: the typed field follows");
  tap_ok(ppl_run_set(&ro, "metric", "dense") == PPL_OK && !strcmp(ro.metric, "dense"),
         "metric dense: the string field follows");
  tap_ok(ppl_run_set(&ro, "ancestor-sampling", "yes") == PPL_OK && ro.ancestor_sampling == 1,
         "ancestor-sampling yes: the flag field follows");
  tap_ok(ppl_run_set(&ro, "particles", "abc") == PPL_ERR_USAGE && ro.particles == 250 &&
             !strcmp(ppl_run_options_errmsg(&ro),
                     "--particles expects an integer from 0 to 100000000, got 'abc'"),
         "bad int: refused, field unchanged (%s)", ppl_run_options_errmsg(&ro));
  tap_ok(ppl_run_set(&ro, "ess-threshold", "2") == PPL_ERR_USAGE &&
             !strcmp(ppl_run_options_errmsg(&ro), "--ess-threshold expects a number from 0 to 1, got '2'"),
         "real out of range: %s", ppl_run_options_errmsg(&ro));
  tap_ok(ppl_run_set(&ro, "resample", "random") == PPL_ERR_USAGE &&
             !strcmp(ppl_run_options_errmsg(&ro),
                     "--resample expects one of systematic, multinomial, stratified, residual, never, got 'random'"),
         "bad choice: %s", ppl_run_options_errmsg(&ro));
  tap_ok(ppl_run_set(&ro, "no-jit", "2") == PPL_ERR_USAGE &&
             !strcmp(ppl_run_options_errmsg(&ro), "--no-jit expects true or false, got '2'"),
         "bad flag: %s", ppl_run_options_errmsg(&ro));
  tap_ok(ppl_run_set(&ro, "max-dept", "5") == PPL_ERR_USAGE &&
             !strcmp(ppl_run_options_errmsg(&ro), "unknown option '--max-dept' (did you mean '--max-depth'?)"),
         "unknown name with a suggestion: %s", ppl_run_options_errmsg(&ro));
  tap_ok(ppl_run_set(&ro, "threads", "2") == PPL_OK && !*ppl_run_options_errmsg(&ro),
         "an option without a typed field (threads) is kept by name; the message is cleared");
  tap_ok(ppl_run_set(NULL, "chains", "2") == PPL_ERR_USAGE, "NULL options: usage error");
  ppl_run_options_free(&ro);
  tap_ok(ro.named == NULL && ro.particles == 250, "free: the store goes, the fields stay");
  ppl_run_options_free(&ro); /* twice is harmless */
}

/* Every typed field follows its option set by name (the API's table of fields
 * names each option right). */
static void test_fields(void) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  struct { const char *name, *value; } set[] = {
      {"chains", "3"},        {"draws", "7"},           {"warmup", "11"},
      {"thin", "2"},          {"seed", "12345678901"},  {"metric", "unit"},
      {"max-depth", "6"},     {"adapt-delta", "0.95"},  {"particles", "77"},
      {"resample", "stratified"}, {"ess-threshold", "0.25"}, {"rejuvenate", "4"},
      {"ancestor-sampling", "true"}, {"no-jit", "true"}, {"stepsize", "0.5"},
      {"stepsize-jitter", "0.1"}, {"int-time", "3"},    {"init", "0.5"},
  };
  int bad = 0;
  for (size_t k = 0; k < sizeof set / sizeof set[0]; k++)
    if (ppl_run_set(&ro, set[k].name, set[k].value) != PPL_OK) bad++, tap_diag("%s", ppl_run_options_errmsg(&ro));
  tap_ok(bad == 0 && ro.chains == 3 && ro.draws == 7 && ro.warmup == 11 && ro.thin == 2 &&
             ro.seed == 12345678901ull && !strcmp(ro.metric, "unit") && ro.max_depth == 6 &&
             ro.adapt_delta == 0.95 && ro.particles == 77 && !strcmp(ro.resample, "stratified") &&
             ro.ess_threshold == 0.25 && ro.rejuvenate == 4 && ro.ancestor_sampling == 1 &&
             ro.no_jit == 1 && ro.stepsize == 0.5 && ro.stepsize_jitter == 0.1 && ro.int_time == 3 &&
             ro.init_radius == 0.5,
         "each of the 18 typed fields follows its option set by name");
  ppl_run_options_free(&ro);
}

static void test_listing(void) {
  int ne = 0;
  const char *summary = NULL;
  bool summaries = true;
  while (ppl_engine_name(ne, &summary)) summaries &= summary && *summary, ne++;
  tap_ok(ne == 12 && summaries && !strcmp(ppl_engine_name(0, NULL), "prior"),
         "12 engines listed with summaries");
  ppl_option_info info[16];
  int n = ppl_engine_options(NULL, info, 16);
  tap_ok(n == 14 && !strcmp(info[0].name, "chains") && !strcmp(info[0].type, "int") &&
             info[0].imin == 1 && info[0].imax == 1024 && !strcmp(info[0].def, "4"),
         "common options: %d, chains int 1..1024 default 4", n);
  tap_ok(n == 14 && !strcmp(info[13].name, "lm") && !strcmp(info[13].type, "text"),
         "the last common option is lm, a text");
  n = ppl_engine_options("smc", info, 16);
  tap_ok(n == 4 && !strcmp(info[0].name, "particles") && !strcmp(info[2].name, "resample") &&
             !strcmp(info[2].type, "enum") && !strcmp(info[2].choices[3], "residual") &&
             !strcmp(info[2].choices[4], "never") && info[2].choices[5] == NULL,
         "smc: particles, ess-threshold, resample (4 schemes and never), rejuvenate");
  n = ppl_engine_options("nuts", info, 1);
  tap_ok(n == 7 && !strcmp(info[0].name, "metric"), "nuts: 7 options (enum-marginals the last); a short array gets the first");
  tap_ok(ppl_engine_options("mh", info, 8) == 1 && !strcmp(info[0].name, "block") &&
             !strcmp(info[0].type, "bool") && ppl_engine_options("prior", NULL, 0) == 0 &&
             ppl_engine_options("magic", NULL, 0) == -1,
         "mh: its one option (block); prior has none of its own; an unknown engine is -1");
  n = ppl_engine_options("hmc", info, 16);
  bool stepsize_open = false;
  for (int k = 0; k < n; k++)
    if (!strcmp(info[k].name, "stepsize")) stepsize_open = info[k].min_open && info[k].min == 0 && isinf(info[k].max);
  tap_ok(stepsize_open, "hmc stepsize: real > 0, no upper bound");
}

static void test_check(void) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  if (!tap_ok(ppl_compile_string(ctx, cont_src, "cont.ppl", &m) == PPL_OK && ppl_data_commit(m) == PPL_OK,
              "continuous model compiles (%s)", ppl_errmsg(ctx)))
    return;
  const char *an = ppl_model_analysis(m);
  tap_ok(an && strstr(an, "engines that can run it: prior, is, mh, lmh, smc, pgibbs, nuts, hmc, advi, steer\nengine: nuts"),
         "ppl check lists the engines whose traits fit");
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.particles = 5; /* a typed field nuts does not use: ignored, as always */
  tap_ok(ppl_run_check(m, &ro) == PPL_OK, "typed field of another engine: accepted (%s)", ppl_errmsg(ctx));
  ppl_run_set(&ro, "particles", "5");
  tap_ok(ppl_run_check(m, &ro) == PPL_ERR_USAGE &&
             !strcmp(ppl_errmsg(ctx), "option --particles does not apply to engine 'nuts' chosen by "
                                      "the analysis (it applies to smc, pgibbs, steer)"),
         "set by name for the chosen nuts: %s", ppl_errmsg(ctx));
  ro.engine = "hmc";
  ppl_result *r = NULL;
  tap_ok(ppl_run(m, &ro, &r) == PPL_ERR_USAGE && r == NULL &&
             !strcmp(ppl_errmsg(ctx), "option --particles does not apply to engine 'hmc' (it applies to smc, pgibbs, steer)"),
         "ppl_run refuses it too: %s", ppl_errmsg(ctx));
  ro.engine = "smc";
  tap_ok(ppl_run_check(m, &ro) == PPL_OK, "with --engine smc it applies");
  ppl_run_options_free(&ro);
  ppl_run_options_default(&ro);
  ro.chains = 0;
  tap_ok(ppl_run_check(m, &ro) == PPL_ERR_USAGE &&
             !strcmp(ppl_errmsg(ctx), "--chains expects an integer from 1 to 1024, got '0'"),
         "typed field out of range: %s", ppl_errmsg(ctx));
  ro.chains = 1;
  ro.metric = "full";
  tap_ok(ppl_run_check(m, &ro) == PPL_ERR_USAGE &&
             !strcmp(ppl_errmsg(ctx), "--metric expects one of diag, dense, unit, got 'full'"),
         "typed string field not a choice: %s", ppl_errmsg(ctx));
  ppl_model_free(m);
  ppl_context_free(ctx);
}

/* draws of column col of chain 0, or NULL */
static double *column(ppl_model *m, ppl_run_options *ro, const char *col, int n) {
  ppl_result *r = NULL;
  if (ppl_run(m, ro, &r) != PPL_OK) return NULL;
  int c = ppl_result_column_index(r, col);
  static double buf[3][64];
  static int slot;
  double *x = buf[slot++ % 3];
  for (int i = 0; i < n && i < 64; i++) x[i] = c >= 0 ? ppl_result_draw(r, 0, i, c) : NAN;
  ppl_result_free(r);
  return c >= 0 ? x : NULL;
}

static void test_reaches_engine(void) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  if (!tap_ok(ppl_compile_string(ctx, seq_src, "seq.ppl", &m) == PPL_OK && ppl_data_commit(m) == PPL_OK,
              "sequential model compiles (%s)", ppl_errmsg(ctx)))
    return;
  enum { N = 40 };
  ppl_run_options typed, named, dflt;
  ppl_run_options_default(&typed);
  typed.engine = "smc", typed.chains = 1, typed.draws = N, typed.seed = 9;
  dflt = typed;
  typed.particles = N;
  typed.resample = "residual";
  ppl_run_options_default(&named);
  named.engine = "smc";
  bool set = ppl_run_set(&named, "chains", "1") == PPL_OK && ppl_run_set(&named, "draws", "40") == PPL_OK &&
             ppl_run_set(&named, "seed", "9") == PPL_OK && ppl_run_set(&named, "particles", "40") == PPL_OK &&
             ppl_run_set(&named, "resample", "residual") == PPL_OK &&
             ppl_run_set(&named, "threads", "1") == PPL_OK;
  double *a = column(m, &typed, "lp__", N), *b = column(m, &named, "lp__", N),
         *c = column(m, &dflt, "lp__", N);
  tap_ok(set && a && b && !memcmp(a, b, sizeof(double) * N),
         "smc: particles and resample by name give the typed fields' draws bit for bit (%s)",
         ppl_errmsg(ctx));
  tap_ok(a && c && memcmp(a, c, sizeof(double) * N) != 0,
         "and other draws than the default particles and scheme");
  ppl_run_options_free(&named);
  ppl_model_free(m);
  ppl_context_free(ctx);
}

/* The compiler's warnings on the model and the run's warnings on the result
 * (ppl_model_warning, ppl_result_warning...): the library collects them,
 * the host shows them. */
static void test_warnings(void) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  const char *src = "model {\n  real mu ~ normal(0, 10);\n  int k = 7 / 2;\n"
                    "  real h = 7.0 / 2;\n  [3.01, 2.99, 3.0] ~ normal(mu, 0.01);\n}\n";
  if (!tap_ok(ppl_compile_string(ctx, src, "w.ppl", &m) == PPL_OK && ppl_data_commit(m) == PPL_OK,
              "warned model compiles (%s)", ppl_errmsg(ctx)))
    return;
  const char *w = ppl_model_warning(m, 0);
  tap_ok(ppl_model_num_warnings(m) == 1 && w &&
             !strcmp(w, "w.ppl:3:13: warning: integer division 7 / 2 rounds toward zero; use 7.0 / 2 "
                        "for real division (or 7 %/% 2 if integer division is meant)"),
         "one compile-time warning, with its position: %s", w ? w : "(none)");
  tap_ok(ppl_model_warning(m, 1) == NULL && ppl_model_warning(m, -1) == NULL,
         "ppl_model_warning out of range is NULL");
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "is", ro.chains = 2, ro.draws = 300, ro.seed = 4;
  ppl_result *r = NULL;
  if (!tap_ok(ppl_run(m, &ro, &r) == PPL_OK, "is run (%s)", ppl_errmsg(ctx))) return;
  int n = ppl_result_num_warnings(r), collapse = -1;
  for (int i = 0; i < n; i++) {
    const char *kind = NULL, *advice = NULL;
    const char *msg = ppl_result_warning(r, i, &kind, &advice);
    if (msg && kind && advice && !strcmp(kind, "collapse") && strstr(msg, "Kish ESS")) collapse = i;
  }
  tap_ok(collapse >= 0, "the collapsed weights are a warning of the result (%d warnings)", n);
  const char *kind = "x";
  tap_ok(ppl_result_warning(r, n, &kind, NULL) == NULL && kind == NULL,
         "ppl_result_warning out of range is NULL");
  tap_ok(ppl_result_warning_variable(r, collapse, 0) == NULL, "the weights' warning names no variable");
  const char *text = ppl_result_warnings_text(r), *table = ppl_result_summary_text(r);
  tap_ok(text && strstr(text, "Warning (collapse): ") && table && strstr(table, text),
         "the warnings' text ends the summary table");
  double est, se;
  tap_ok(ppl_result_log_evidence(r, &est, &se) == PPL_OK && isfinite(est),
         "log evidence still estimated");
  ppl_result_free(r);
  ppl_model_free(m);
  ppl_context_free(ctx);
}

/* --include / --exclude through ppl.h: which outputs get columns, on a model
 * whose 300-element deterministic local would otherwise be written (and
 * summarised) with every draw. */
static void test_select(void) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  const char *src = "data { int N = 300; }\n"
                    "model {\n  real mu ~ normal(0, 1);\n  vector[N] big = rep_vector(mu, N);\n"
                    "  real twice = 2 * mu;\n}\ngenerated { real gen = mu + 1; }\n";
  if (!tap_ok(ppl_compile_string(ctx, src, "sel.ppl", &m) == PPL_OK && ppl_data_commit(m) == PPL_OK,
              "selection model compiles (%s)", ppl_errmsg(ctx)))
    return;
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "mh", ro.chains = 1, ro.draws = 20, ro.warmup = 20;
  ppl_result *r = NULL;
  int all = ppl_run(m, &ro, &r) == PPL_OK ? ppl_result_num_columns(r) : -1;
  int big1 = r ? ppl_result_column_index(r, "big.1") : -1;
  const char *label = big1 >= 0 ? ppl_result_column_label(r, big1) : NULL;
  tap_ok(label && !strcmp(label, "big[1]") && !strcmp(ppl_result_column_label(r, 0), "lp__") &&
             ppl_result_column_label(r, all) == NULL && ppl_result_column_label(NULL, 0) == NULL,
         "column labels as the summary has them: big.1 is %s; out of range NULL",
         label ? label : "(null)");
  ppl_result_free(r);
  ro.exclude = "big";
  bool ok = ppl_run(m, &ro, &r) == PPL_OK;
  int n = ok ? ppl_result_num_columns(r) : -1;
  tap_ok(ok && all == n + 300 && !strcmp(ppl_result_column_name(r, n - 1), "gen") &&
             !strcmp(ppl_result_column_name(r, n - 2), "twice") && !strcmp(ppl_result_column_name(r, 0), "lp__"),
         "exclude big: its 300 columns are gone, the rest stay (%d of %d columns)", n, all);
  ppl_result_free(r);
  ro.exclude = NULL, ro.include = "gen, mu";
  ok = ppl_run(m, &ro, &r) == PPL_OK;
  n = ok ? ppl_result_num_columns(r) : -1;
  tap_ok(ok && !strcmp(ppl_result_column_name(r, n - 1), "gen") &&
             !strcmp(ppl_result_column_name(r, n - 2), "mu") && !strcmp(ppl_result_column_name(r, 0), "lp__") &&
             !strcmp(ppl_result_column_name(r, 1), "accept_stat__") && n == 4,
         "include gen, mu: lp__, the engine's column, mu and gen in model order (%d columns)", n);
  ppl_result_free(r);
  ro.include = "mu,bgi";
  tap_ok(ppl_run_check(m, &ro) == PPL_ERR_USAGE &&
             !strcmp(ppl_errmsg(ctx), "--include: the model has no output 'bgi' (its outputs: mu, big, twice, gen)"),
         "an unknown name lists the outputs: %s", ppl_errmsg(ctx));
  ro.include = "mu", ro.exclude = "big";
  tap_ok(ppl_run(m, &ro, &r) == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "cannot be used together"),
         "include and exclude together: %s", ppl_errmsg(ctx));
  ro.include = "mu,", ro.exclude = NULL;
  tap_ok(ppl_run_check(m, &ro) == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "an empty name in 'mu,'"),
         "an empty name: %s", ppl_errmsg(ctx));
  ppl_model_free(m);
  ppl_context_free(ctx);
}

/* A dynamic program's run writes a choices file beside each CSV; the result
   names it.  A fixed structure writes one only when asked ("choices"). */
static void test_choices_file(void) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  const char *src = "model {\n  int K ~ poisson(2);\n  for (k in 1:K) { real x ~ normal(0, 1); }\n}\n";
  if (!tap_ok(ppl_compile_string(ctx, src, "dyn.ppl", &m) == PPL_OK && ppl_data_commit(m) == PPL_OK,
              "dynamic model compiles (%s)", ppl_errmsg(ctx)))
    return;
  char dir[] = "/tmp/ppl_choices_XXXXXX";
  if (!tap_ok(mkdtemp(dir) != NULL, "a temporary directory")) return;
  char csv[64], want0[64], want1[64], want[64];
  snprintf(csv, sizeof csv, "%s/d.csv", dir);
  snprintf(want0, sizeof want0, "%s/d_1_choices.jsonl", dir);
  snprintf(want1, sizeof want1, "%s/d_2_choices.jsonl", dir);
  snprintf(want, sizeof want, "%s/d_choices.jsonl", dir);
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "mh", ro.chains = 2, ro.draws = 30, ro.warmup = 30, ro.output_csv = csv;
  ppl_result *r = NULL;
  bool ok = ppl_run(m, &ro, &r) == PPL_OK;
  const char *f0 = ok ? ppl_result_choices_file(r, 0) : NULL, *f1 = ok ? ppl_result_choices_file(r, 1) : NULL;
  FILE *f = f1 ? fopen(f1, "r") : NULL;
  int lines = 0;
  for (int ch; f && (ch = fgetc(f)) != EOF;) lines += ch == '\n';
  if (f) fclose(f);
  tap_ok(f0 && f1 && !strcmp(f0, want0) && !strcmp(f1, want1) && lines == 30 &&
             !ppl_result_choices_file(r, 2),
         "a dynamic program: each chain's choices file, named by the result (%s, %d lines)", f1 ? f1 : "none", lines);
  ppl_result_free(r);
  ppl_model_free(m);
  if (!tap_ok(ppl_compile_string(ctx, cont_src, "cont.ppl", &m) == PPL_OK && ppl_data_commit(m) == PPL_OK,
              "fixed model compiles"))
    return;
  ro.chains = 1;
  ok = ppl_run(m, &ro, &r) == PPL_OK;
  tap_ok(ok && !ppl_result_choices_file(r, 0), "a fixed structure: none unless asked");
  ppl_result_free(r);
  tap_ok(ppl_run_set(&ro, "choices", "true") == PPL_OK && ppl_run(m, &ro, &r) == PPL_OK &&
             ppl_result_choices_file(r, 0) &&
             !strcmp(ppl_result_choices_file(r, 0), want),
         "choices = true: one chain's file beside d.csv");
  ppl_result_free(r);
  ppl_run_options_free(&ro);
  ppl_model_free(m);
  ppl_context_free(ctx);
  const char *names[] = {"d_1.csv", "d_2.csv", "d_1_choices.jsonl", "d_2_choices.jsonl", "d.csv", "d_choices.jsonl"};
  char path[128];
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    remove(path);
  }
  remove(dir);
}

int main(void) {
  test_choices_file();
  test_select();
  test_warnings();
  test_set();
  test_fields();
  test_listing();
  test_check();
  test_reaches_engine();
  return tap_done();
}
