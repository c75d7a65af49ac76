/* test_driver.c — the run driver with fake engines defined here (so the test
 * needs no parser or interpreter): the CSV of a deterministic engine checked
 * line by line, thinning and warmup, result accessors, identical files and
 * draws for 1, 2 and 3 threads, weighted engines (log evidence, weighted
 * summaries, JSON), engine errors (the run stops, what was written stays),
 * outputs that change shape, and bad options / unwritable files. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inference/driver.h"
#include "inference/psis.h"
#include "core/value.h"
#include "stdlib/rng.h"
#include "tests/tap.h"

/* ---- fake engines -------------------------------------------------------- */

typedef struct Fake {
  int chain, kind;
  long t; /* steps taken, warmup included */
  Rng rng;
} Fake;

enum { FK_PLAIN, FK_RANDOM, FK_FAIL, FK_RESHAPE, FK_WEIGHTED };

/* outputs: mu, k, v, m, a, s, flag, x, big */
static IrOutput fake_outputs[9];

static void init_outputs(void) {
  static const char *names[] = {"mu", "k", "v", "m", "a", "s", "flag", "x", "big"};
  Type types[] = {ty_make(TY_REAL, 0), ty_make(TY_INT, 0),    ty_make(TY_VECTOR, 0),
                  ty_make(TY_MATRIX, 0), ty_make(TY_REAL, 2), ty_make(TY_STRING, 0),
                  ty_make(TY_BOOL, 0), ty_make(TY_REAL, 0),   ty_make(TY_REAL, 0)};
  for (int i = 0; i < 9; i++)
    fake_outputs[i] = (IrOutput){.name = names[i], .reg = i, .type = types[i], .kind = OUT_LATENT};
}

static Fake *fake_new(int kind, const EngineOpts *o, int chain) {
  Fake *f = gc_alloc(sizeof *f);
  f->chain = chain, f->kind = kind;
  rng_seed(&f->rng, o->seed, (uint64_t)chain);
  return f;
}

static void *init_plain(const Interp *in, const EngineOpts *o, int c, Diag *d) { return fake_new(FK_PLAIN, o, c); }
static void *init_random(const Interp *in, const EngineOpts *o, int c, Diag *d) { return fake_new(FK_RANDOM, o, c); }
static void *init_fail(const Interp *in, const EngineOpts *o, int c, Diag *d) { return fake_new(FK_FAIL, o, c); }
static void *init_reshape(const Interp *in, const EngineOpts *o, int c, Diag *d) { return fake_new(FK_RESHAPE, o, c); }
static void *init_weighted(const Interp *in, const EngineOpts *o, int c, Diag *d) { return fake_new(FK_WEIGHTED, o, c); }

static bool fake_step(void *state, bool warmup, Draw *out, Diag *d) {
  Fake *f = state;
  long t = f->t++;
  if (f->kind == FK_FAIL && f->chain == 1 && t == 5) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){"fake.ppl", 3, 7}, "boom at step %ld", t);
    return false;
  }
  double mu = f->chain + t / 4.0;
  if (f->kind == FK_RANDOM || f->kind == FK_WEIGHTED) mu = 2 * rng_normal(&f->rng);
  Value *o = gc_alloc(sizeof(Value) * 9);
  o[0] = val_real(mu);
  o[1] = val_int(t * 10);
  int vn = f->kind == FK_RESHAPE && t >= 4 ? 3 : 2;
  o[2] = val_vec(vn);
  for (int i = 0; i < vn; i++) o[2].t->d[i] = i ? -t : t;
  o[3] = val_mat(2, 3);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) o[3].t->d[j * 2 + i] = 10 * (i + 1) + (j + 1) + 100 * t;
  o[4] = val_arr(2);
  for (int i = 0; i < 2; i++) {
    o[4].a->e[i] = val_arr(2);
    for (int j = 0; j < 2; j++) o[4].a->e[i].a->e[j] = val_real(i * 2 + j + t);
  }
  o[5] = val_str("hello");
  o[6] = val_bool(t % 4 == 2);
  o[7] = val_real(t == 2 ? 1e-7 : t == 4 ? INFINITY : NAN);
  o[8] = val_real(123456789.0 + t);
  out->outputs = o;
  out->lp = -t - 0.5;
  out->stats[0] = 0.25;
  if (f->kind == FK_WEIGHTED) {
    out->log_weight = -0.5 * (mu - 1) * (mu - 1) + 0.125 * mu * mu - 2;
    out->stats[1] = out->log_weight;
  }
  return true;
}

static void fake_free(void *state) {}

#define FAKE_VT(var, nm, initf, weighted_) \
  static const EngineVT var = {.name = nm, .summary = "test engine", .nstats = (weighted_) ? 2 : 1, \
                               .stat_names = {"accept_stat__", "log_weight__"},                    \
                               .weighted = weighted_, .uses_warmup = true,                          \
                               .init = initf, .step = fake_step, .free = fake_free}
FAKE_VT(eng_plain, "fake", init_plain, false);
FAKE_VT(eng_random, "fakernd", init_random, false);
FAKE_VT(eng_fail, "fakefail", init_fail, false);
FAKE_VT(eng_reshape, "fakeshape", init_reshape, false);
FAKE_VT(eng_weighted, "fakew", init_weighted, true);

/* ---- helpers ------------------------------------------------------------- */

static char tmpdir[64];

static const char *tmp(const char *name) { return gc_printf("%s/%s", tmpdir, name); }

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *buf = gc_alloc_atomic(1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

/* Lines of text (GC strings, without newlines); *n gets the count. */
static char **lines_of(const char *text, int *n) {
  char **out = gc_alloc(sizeof(char *) * 4096);
  *n = 0;
  for (const char *p = text; p && *p && *n < 4096;) {
    const char *e = strchr(p, '\n');
    if (!e) e = p + strlen(p);
    out[(*n)++] = gc_strndup(p, (size_t)(e - p));
    p = *e ? e + 1 : e;
  }
  return out;
}

/* File contents without the elapsed-time lines (which differ run to run). */
static char *without_times(const char *text) {
  int n;
  char **l = lines_of(text, &n);
  char *s = gc_strdup("");
  for (int i = 0; i < n; i++)
    if (!strstr(l[i], " seconds (")) s = gc_printf("%s%s\n", s, l[i]);
  return s;
}

/* Field i (0-based) of a CSV line. */
static char *field(const char *line, int i) {
  for (; i > 0 && line; i--) {
    line = strchr(line, ',');
    if (line) line++;
  }
  if (!line) return NULL;
  const char *e = strchr(line, ',');
  return e ? gc_strndup(line, (size_t)(e - line)) : gc_strdup(line);
}

static DriverOpts opts(int chains, int draws, int warmup, int thin) {
  DriverOpts o;
  driver_opts_default(&o);
  o.eng.chains = chains, o.eng.draws = draws, o.eng.warmup = warmup, o.eng.thin = thin;
  o.eng.seed = 42;
  o.model_name = "tests/fake.ppl";
  o.model_file = "tests/fake.ppl";
  o.data_file = "fake.json";
  o.engine_reason = "fake — test engine";
  return o;
}

/* ---- tests --------------------------------------------------------------- */

static void test_csv_lines(void) {
  DriverOpts o = opts(1, 3, 2, 2);
  o.output_csv = tmp("plain.csv");
  RunResult *rr;
  Diag d;
  diag_init(&d);
  bool ok = driver_run_outputs(NULL, 9, fake_outputs, &eng_plain, &o, &rr, &d);
  tap_ok(ok, "plain run succeeds %s", d.msg);
  if (!ok) return;
  const char *want[] = {
      "# stan_version_major = 2",
      "# stan_version_minor = 33",
      "# stan_version_patch = 0",
      "# ppl_version = 0.3.0",
      "# model = fake_model",
      "# model_file = tests/fake.ppl",
      "# method = sample",
      "#   sample",
      "#     num_samples = 6",
      "#     num_warmup = 2",
      "#     save_warmup = 0",
      "#     thin = 2",
      "#     algorithm = ppl",
      "#       ppl",
      "#         engine = fake",
      "#     num_chains = 1",
      "# id = 1",
      "# data",
      "#   file = fake.json",
      "# random",
      "#   seed = 42",
      "# output",
      gc_printf("#   file = %s", tmp("plain.csv")),
      "# engine: fake — test engine",
      "# string outputs have no column (CmdStan CSV holds numbers): s",
      "lp__,accept_stat__,mu,k,v.1,v.2,m.1.1,m.2.1,m.1.2,m.2.2,m.1.3,m.2.3,a.1.1,a.2.1,a.1.2,a.2.2,"
      "flag,x,big",
      "-2.5,0.25,0.5,20,2,-2,211,221,212,222,213,223,2,4,3,5,1,1e-07,1.23457e+08",
      "-4.5,0.25,1,40,4,-4,411,421,412,422,413,423,4,6,5,7,0,inf,1.23457e+08",
      "-6.5,0.25,1.5,60,6,-6,611,621,612,622,613,623,6,8,7,9,1,nan,1.23457e+08",
      "# ",
      "#  Elapsed Time: * seconds (Warm-up)",
      "#                * seconds (Sampling)",
      "#                * seconds (Total)",
      "# ",
  };
  int nw = sizeof want / sizeof want[0], n;
  char **got = lines_of(slurp(o.output_csv), &n);
  tap_ok(n == nw, "CSV has %d lines (got %d)", nw, n);
  for (int i = 0; i < nw && i < n; i++) {
    const char *star = strchr(want[i], '*');
    if (star) {
      size_t pre = (size_t)(star - want[i]);
      const char *suf = star + 1;
      size_t gl = strlen(got[i]), sl = strlen(suf);
      tap_ok(strncmp(got[i], want[i], pre) == 0 && gl >= pre + sl &&
                 strcmp(got[i] + gl - sl, suf) == 0 && strtod(got[i] + pre, NULL) >= 0,
             "CSV line %d: %s", i + 1, got[i]);
    } else {
      tap_streq(got[i], want[i], "CSV line %d", i + 1);
    }
  }

  tap_ok(rr_num_chains(rr) == 1 && rr_num_draws(rr) == 3, "result: 1 chain of 3 draws");
  tap_ok(rr_num_columns(rr) == 19, "result: 19 columns (got %d)", rr_num_columns(rr));
  int mu = rr_column_index(rr, "mu"), m12 = rr_column_index(rr, "m[1,2]");
  tap_ok(mu == 2 && m12 == rr_column_index(rr, "m.1.2") && m12 == 8, "column index by either name");
  tap_ok(rr_column_index(rr, "m[1, 2]") == m12 && rr_column_index(rr, "nope") == -1,
         "label with a space; unknown name");
  tap_streq(rr_column_label(rr, 7), "m[2,1]", "label of m.2.1");
  tap_ok(rr_draw(rr, 0, 1, mu) == 1.0 && rr_draw(rr, 0, 2, 0) == -6.5, "draws kept at full precision");
  tap_ok(rr_draw(rr, 0, 1, rr_column_index(rr, "big")) == 123456793.0, "big value not rounded to CSV digits");
  tap_ok(isnan(rr_draw(rr, 1, 0, 0)), "out-of-range draw is NaN");
  const SummaryStats *s = rr_summary(rr, mu);
  tap_ok(s && fabs(s->mean - 1.0) < 1e-15 && isnan(s->rhat), "summary of mu: mean 1, rhat NaN (one chain)");
  double e, se;
  tap_ok(!rr_log_evidence(rr, &e, &se), "unweighted engine has no log evidence");
  tap_ok(strstr(rr_summary_text(rr), "engine: fake — test engine") != NULL, "summary text names the engine");
  tap_ok(strstr(rr_summary_text(rr), "\nm[2,1] ") != NULL, "summary table uses bracket names");
}

/* A run of the random engine; returns the concatenated CSV files and draws. */
static char *run_random(int threads, double *draws_out, FILE *table) {
  DriverOpts o = opts(4, 50, 10, 1);
  o.threads = threads;
  o.output_csv = tmp("rnd.csv");
  o.summary_out = table;
  RunResult *rr;
  Diag d;
  diag_init(&d);
  if (!driver_run_outputs(NULL, 9, fake_outputs, &eng_random, &o, &rr, &d)) {
    tap_diag("random run failed: %s", d.msg);
    return NULL;
  }
  char *all = gc_strdup("");
  for (int c = 0; c < 4; c++) {
    char *f = slurp(gc_printf("%s/rnd_%d.csv", tmpdir, c + 1));
    all = gc_printf("%s%s", all, f ? without_times(f) : "(missing)");
  }
  int mu = rr_column_index(rr, "mu");
  for (int c = 0; c < 4; c++)
    for (int i = 0; i < 50; i++) draws_out[c * 50 + i] = rr_draw(rr, c, i, mu);
  return all;
}

static void test_threads(void) {
  double d1[200], d2[200], d3[200];
  char *tbl = NULL;
  size_t tlen = 0;
  FILE *table = open_memstream(&tbl, &tlen);
  char *f1 = run_random(1, d1, NULL);
  char *f2 = run_random(2, d2, table);
  char *f3 = run_random(3, d3, NULL);
  fclose(table);
  tap_ok(f1 && f2 && f3, "random runs succeed");
  if (!f1 || !f2 || !f3) return;
  tap_ok(strcmp(f1, f2) == 0, "threads 1 and 2 write identical files");
  tap_ok(strcmp(f1, f3) == 0, "threads 1 and 3 write identical files");
  tap_ok(memcmp(d1, d2, sizeof d1) == 0 && memcmp(d1, d3, sizeof d1) == 0, "identical draws");
  tap_ok(d1[0] != d1[50] && d1[50] != d1[100], "chains differ from each other");
  /* chain k's file holds chain k's stream: the first kept mu of chain 2 is
     the 11th draw of rng(42, 1), after 10 warmup steps */
  Rng r;
  rng_seed(&r, 42, 1);
  for (int i = 0; i < 10; i++) rng_normal(&r);
  double want = 2 * rng_normal(&r);
  tap_ok(d1[50] == want, "chain 2 draws from stream (seed, 1) after 10 warmup steps");
  int n;
  char **l = lines_of(slurp(tmp("rnd_2.csv")), &n);
  int header = -1;
  for (int i = 0; i < n; i++)
    if (!strncmp(l[i], "lp__,", 5)) header = i;
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", want);
  tap_streq(header >= 0 ? field(l[header + 1], 2) : NULL, buf, "rnd_2.csv row 1 has chain 2's mu");
  tap_ok(header >= 0 && !strncmp(l[header + 51], "# ", 2), "50 rows after warmup (warmup not saved)");
  tap_ok(tbl && strstr(tbl, "Inference for ppl model: fake") && strstr(tbl, "R_hat"),
         "summary_out receives the table");
}

static void test_weighted(void) {
  DriverOpts o = opts(2, 200, 0, 1);
  o.summary_json = tmp("w.json");
  RunResult *rr;
  Diag d;
  diag_init(&d);
  bool ok = driver_run_outputs(NULL, 9, fake_outputs, &eng_weighted, &o, &rr, &d);
  tap_ok(ok, "weighted run succeeds %s", d.msg);
  if (!ok) return;
  const double *lw[2] = {rr_log_weights(rr, 0), rr_log_weights(rr, 1)};
  tap_ok(lw[0] && lw[1], "log weights kept");
  double e, se, e2, se2;
  tap_ok(rr_log_evidence(rr, &e, &se), "log evidence available");
  diag_log_evidence(2, 200, lw, &e2, &se2);
  /* the SE is the pooled one or, when larger, the one of the chains' own estimates */
  double lz[2], lse[2], e3, se3;
  for (int c = 0; c < 2; c++) diag_log_evidence(1, 200, &lw[c], &lz[c], &lse[c]);
  diag_evidence_combine(2, lz, lse, &e3, &se3);
  tap_ok(e == e2 && se == (se3 > se2 ? se3 : se2) && isfinite(e) && se > 0,
         "log evidence = diag_log_evidence(weights), SE max(pooled, chains')");
  tap_near(e3, e2, 1e-12, "the chains' combined estimate is the pooled one");
  int mu = rr_column_index(rr, "mu"), acc = rr_column_index(rr, "accept_stat__");
  int lwc = rr_column_index(rr, "log_weight__");
  tap_ok(lwc >= 0 && rr_draw(rr, 1, 7, lwc) == lw[1][7], "log_weight__ column equals the weights");
  const double *x[2] = {rr_column_draws(rr, 0, mu), rr_column_draws(rr, 1, mu)};
  SummaryStats want;
  diag_summarise_weighted(2, 200, x, lw, &want);
  const SummaryStats *got = rr_summary(rr, mu);
  tap_ok(got->mean == want.mean && got->q50 == want.q50 && got->ess_bulk == want.ess_bulk &&
             isnan(got->rhat),
         "output columns are summarised with weights");
  const double *a[2] = {rr_column_draws(rr, 0, acc), rr_column_draws(rr, 1, acc)};
  diag_summarise(2, 200, a, &want);
  tap_ok(rr_summary(rr, acc)->mean == want.mean && rr_summary(rr, acc)->sd == 0,
         "sampler columns are summarised without weights");
  tap_ok(strstr(rr_summary_text(rr), "log evidence: ") != NULL, "table has the log evidence line");

  json_error_t je;
  json_t *j = json_load_file(o.summary_json, 0, &je);
  tap_ok(j != NULL, "summary JSON parses");
  if (!j) return;
  json_t *le = json_object_get(j, "log_evidence");
  tap_ok(json_is_object(le) && json_real_value(json_object_get(le, "estimate")) == e &&
             json_real_value(json_object_get(le, "se")) == se,
         "JSON log_evidence has estimate and se");
  tap_streq(json_string_value(json_object_get(j, "engine")), "fakew", "JSON engine");
  tap_ok(fabs(json_real_value(json_object_get(le, "weights_ess")) -
              diag_kish_ess(2, 200, lw)) < 1e-9,
         "JSON log_evidence has the weights' Kish ESS");
  /* the Pareto k of all the weights, pooled over the chains */
  double *pooled = gc_alloc_atomic(sizeof(double) * 400);
  memcpy(pooled, lw[0], sizeof(double) * 200);
  memcpy(pooled + 200, lw[1], sizeof(double) * 200);
  double pk = psis_k(400, pooled);
  tap_ok(isfinite(pk) && rr_pareto_k(rr) == pk && json_real_value(json_object_get(le, "pareto_k")) == pk &&
             strstr(rr_summary_text(rr), gc_printf("Pareto k of the importance weights: %.2f (", pk)),
         "Pareto k %.3f of the pooled weights: result, JSON and table", pk);
  json_t *ws = json_object_get(j, "warnings");
  bool shaped = json_is_array(ws) && json_array_size(ws) == (size_t)rr_num_warnings(rr);
  for (size_t i = 0; shaped && i < json_array_size(ws); i++) {
    json_t *w = json_array_get(ws, i);
    shaped = json_is_string(json_object_get(w, "kind")) && json_is_array(json_object_get(w, "variables")) &&
             json_is_string(json_object_get(w, "message")) && json_is_string(json_object_get(w, "advice")) &&
             !strcmp(json_string_value(json_object_get(w, "kind")), rr_warning(rr, (int)i)->kind);
  }
  tap_ok(shaped, "JSON warnings: the result's, each with kind, variables, message, advice");
  json_t *vars = json_object_get(j, "variables");
  tap_ok(json_object_size(vars) == (size_t)rr_num_columns(rr), "JSON has every column");
  json_t *m21 = json_object_get(vars, "m[2,1]");
  tap_ok(json_is_object(m21) && json_is_null(json_object_get(m21, "rhat")) &&
             json_is_real(json_object_get(m21, "mean")),
         "JSON m[2,1]: mean a number, rhat null");
  tap_ok(json_object_get(vars, "x") && json_is_null(json_object_get(json_object_get(vars, "x"), "mean")),
         "JSON x (NaN draws): mean null");
  json_decref(j);
}

static void test_failure(void) {
  DriverOpts o = opts(2, 10, 2, 1);
  o.threads = 2;
  o.output_csv = tmp("fail.csv");
  RunResult *rr = (RunResult *)&o;
  Diag d;
  diag_init(&d);
  bool ok = driver_run_outputs(NULL, 9, fake_outputs, &eng_fail, &o, &rr, &d);
  tap_ok(!ok && rr == NULL, "engine error stops the run");
  tap_ok(d.code == DIAG_RUNTIME, "with the engine's code");
  tap_streq(d.msg, "fake.ppl:3:7: boom at step 5", "and its message");
  int n;
  char *text = slurp(tmp("fail_2.csv"));
  char **l = lines_of(text, &n);
  int header = -1;
  for (int i = 0; i < n; i++)
    if (!strncmp(l[i], "lp__,", 5)) header = i;
  tap_ok(header >= 0 && n == header + 4, "failed chain's CSV keeps header + 3 rows (%d lines)", n);
  tap_ok(text && text[strlen(text) - 1] == '\n' && !strstr(text, "Elapsed"),
         "rows complete and flushed, no trailer");
}

static void test_reshape(void) {
  DriverOpts o = opts(1, 10, 0, 1);
  RunResult *rr;
  Diag d;
  diag_init(&d);
  bool ok = driver_run_outputs(NULL, 9, fake_outputs, &eng_reshape, &o, &rr, &d);
  tap_ok(!ok && d.code == DIAG_RUNTIME && strstr(d.msg, "output 'v' changed shape") &&
             strstr(d.msg, "2 elements") && strstr(d.msg, "3 at draw 5"),
         "shape change is an error: %s", d.msg);
}

static void test_bad(void) {
  RunResult *rr;
  Diag d;
  DriverOpts o = opts(0, 10, 0, 1);
  diag_init(&d);
  tap_ok(!driver_run_outputs(NULL, 9, fake_outputs, &eng_plain, &o, &rr, &d) && d.code == DIAG_USAGE,
         "chains 0 is a usage error: %s", d.msg);
  o = opts(1, 10, 0, 0);
  diag_init(&d);
  tap_ok(!driver_run_outputs(NULL, 9, fake_outputs, &eng_plain, &o, &rr, &d) && d.code == DIAG_USAGE,
         "thin 0 is a usage error: %s", d.msg);
  o = opts(2, 10, 0, 1);
  o.output_csv = "/nonexistent-dir/out.csv";
  diag_init(&d);
  tap_ok(!driver_run_outputs(NULL, 9, fake_outputs, &eng_plain, &o, &rr, &d) && d.code == DIAG_IO &&
             strstr(d.msg, "cannot write '/nonexistent-dir/out_1.csv'"),
         "unwritable CSV is an I/O error naming the file: %s", d.msg);
  o = opts(1, 10, 0, 1);
  o.summary_json = "/nonexistent-dir/s.json";
  diag_init(&d);
  tap_ok(!driver_run_outputs(NULL, 9, fake_outputs, &eng_plain, &o, &rr, &d) && d.code == DIAG_IO,
         "unwritable summary JSON is an I/O error: %s", d.msg);
}

static void test_no_warmup_engine(void) {
  EngineVT e = eng_plain;
  e.uses_warmup = false;
  DriverOpts o = opts(1, 2, 100, 1);
  o.output_csv = tmp("nowarm.csv");
  RunResult *rr;
  Diag d;
  diag_init(&d);
  bool ok = driver_run_outputs(NULL, 9, fake_outputs, &e, &o, &rr, &d);
  char *text = ok ? slurp(o.output_csv) : NULL;
  tap_ok(text && strstr(text, "#     num_warmup = 0\n") && rr_draw(rr, 0, 0, 0) == -0.5,
         "engine without warmup: no warmup steps, num_warmup = 0");
}

/* --save-warmup: warmup draws (thinned like the others) are rows before the
 * sampling draws, the adaptation comment between them, as CmdStan writes
 * save_warmup=1; the result and its summary hold the sampling draws only. */
static const char *fake_adapt(void *state) {
  (void)state;
  return "Adaptation terminated\nStep size = 1";
}

static void test_save_warmup(void) {
  static const EngineVT eng_adapt = {.name = "fakeadapt", .summary = "test engine", .nstats = 1,
                                     .stat_names = {"accept_stat__"}, .uses_warmup = true,
                                     .init = init_plain, .step = fake_step, .free = fake_free,
                                     .adaptation_info = fake_adapt};
  DriverOpts o = opts(1, 3, 4, 2);
  o.eng.save_warmup = true;
  o.output_csv = tmp("warm.csv");
  RunResult *rr;
  Diag d;
  diag_init(&d);
  bool ok = driver_run_outputs(NULL, 9, fake_outputs, &eng_adapt, &o, &rr, &d);
  if (!tap_ok(ok, "save-warmup run succeeds %s", d.msg)) return;
  int n;
  char **got = lines_of(slurp(o.output_csv), &n);
  int h = -1, sw = -1;
  for (int i = 0; i < n; i++) {
    if (!strncmp(got[i], "lp__,", 5)) h = i;
    if (!strcmp(got[i], "#     save_warmup = 1")) sw = i;
  }
  tap_ok(sw >= 0, "the header says save_warmup = 1");
  /* steps 0..3 are warmup (thin 2: 0 and 2 written), 4..9 sampling (4, 6, 8 kept) */
  const char *want[] = {"-0.5", "-2.5", "# Adaptation terminated", "# Step size = 1", "-4.5", "-6.5", "-8.5", "# "};
  bool same = h >= 0 && h + 8 < n;
  for (int i = 0; same && i < 8; i++) same = !strcmp(want[i][0] == '#' ? got[h + 1 + i] : field(got[h + 1 + i], 0), want[i]);
  tap_ok(same, "two warmup rows, the adaptation comment, three sampling rows");
  tap_ok(rr_num_draws(rr) == 3 && rr_draw(rr, 0, 0, 0) == -4.5 &&
             fabs(rr_summary(rr, 0)->mean - -6.5) < 1e-12,
         "the result and its summary hold the sampling draws only (lp__ mean %g)", rr_summary(rr, 0)->mean);
  /* without the option: no warmup rows, the comment right after the header */
  o.eng.save_warmup = false;
  ok = driver_run_outputs(NULL, 9, fake_outputs, &eng_adapt, &o, &rr, &d);
  got = lines_of(slurp(o.output_csv), &n);
  for (int i = 0; i < n; i++)
    if (!strncmp(got[i], "lp__,", 5)) h = i;
  tap_ok(ok && h + 3 < n && !strcmp(got[h + 1], "# Adaptation terminated") && !strcmp(field(got[h + 3], 0), "-4.5"),
         "without --save-warmup: the header, the comment, the sampling rows");
}

int main(void) {
  gc_init();
  init_outputs();
  strcpy(tmpdir, "/tmp/ppl_test_driver_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    tap_ok(0, "mkdtemp");
    return tap_done();
  }
  test_csv_lines();
  test_threads();
  test_weighted();
  test_failure();
  test_reshape();
  test_bad();
  test_no_warmup_engine();
  test_save_warmup();
  int rc = tap_done();
  if (rc == 0) {
    char *cmd = gc_printf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) tap_diag("could not remove %s", tmpdir);
  }
  return rc;
}
