/* test_warnings.c — the post-run checks (inference/warnings.c) on columns
 * made up to trip each one, and how the table and the JSON show them. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "inference/summary.h"
#include "inference/warnings.h"
#include "core/value.h"
#include "tests/tap.h"

enum { M = 2, N = 200 };

/* A run of M chains of N draws over the columns named; data filled by the
 * caller through col(). */
typedef struct Fake {
  WarnInput in;
  double *data[M];
  SummaryStats stats[8];
} Fake;

static void fake_init(Fake *f, int ncols, const char **names) {
  memset(f, 0, sizeof *f);
  for (int c = 0; c < M; c++) f->data[c] = gc_alloc_atomic(sizeof(double) * (size_t)(ncols * N));
  for (int i = 0; i < ncols; i++)
    f->stats[i] = (SummaryStats){.rhat = 1.0, .ess_bulk = 1000, .ess_tail = 1000};
  f->in = (WarnInput){.m = M, .n = N, .ncols = ncols, .names = names, .labels = names,
                      .data = (const double *const *)f->data, .stats = f->stats,
                      .adapt_delta = NAN, .max_depth = 0};
}

static double *col(Fake *f, int c, int i) { return f->data[c] + (size_t)i * N; }

static const RunWarning *find(const RunWarning *w, int n, const char *kind) {
  for (int i = 0; i < n; i++)
    if (!strcmp(w[i].kind, kind)) return &w[i];
  return NULL;
}

static void test_clean(void) {
  static const char *names[] = {"lp__", "mu"};
  Fake f;
  fake_init(&f, 2, names);
  int n;
  warn_collect(&f.in, &n);
  tap_ok(n == 0, "a good run has no warnings (got %d)", n);
}

static void test_rhat_ess(void) {
  static const char *names[] = {"lp__", "mu", "sigma", "accept_stat__"};
  Fake f;
  fake_init(&f, 4, names);
  f.stats[1].rhat = INFINITY;
  f.stats[2].rhat = 1.05;
  f.stats[2].ess_tail = 150;     /* below 100 per chain with 2 chains */
  f.stats[3].rhat = 5;           /* a sampler column: never flagged */
  f.stats[3].ess_bulk = 3;
  int n;
  RunWarning *w = warn_collect(&f.in, &n);
  const RunWarning *r = find(w, n, "rhat"), *e = find(w, n, "ess");
  tap_ok(r && r->nvars == 2 && !strcmp(r->vars[0], "mu") && !strcmp(r->vars[1], "sigma"),
         "rhat names mu and sigma, not accept_stat__");
  tap_ok(r && strstr(r->message, "mu (inf)") && strstr(r->message, "sigma (1.050)"),
         "rhat message gives the values: %s", r ? r->message : "");
  tap_ok(r && strstr(r->advice, "stuck apart"), "an infinite R-hat gets the stuck-apart advice");
  tap_ok(e && e->nvars == 1 && !strcmp(e->vars[0], "sigma") && strstr(e->message, "(150)"),
         "ess names sigma with its tail ESS: %s", e ? e->message : "");
  f.in.m = 1; /* one chain: no R-hat check, and 100 per chain is 100 */
  w = warn_collect(&f.in, &n);
  tap_ok(!find(w, n, "rhat") && !find(w, n, "ess"), "one chain: ESS 150 is enough, no R-hat");
}

static void test_hmc(void) {
  static const char *names[] = {"lp__", "treedepth__", "divergent__", "energy__", "mu"};
  Fake f;
  fake_init(&f, 5, names);
  for (int c = 0; c < M; c++)
    for (int i = 0; i < N; i++) {
      col(&f, c, 1)[i] = i % 4 == 0 ? 10 : 3;           /* 50 per chain at depth 10 */
      col(&f, c, 2)[i] = c == 1 && i < 3;                /* 3 divergences */
      col(&f, c, 3)[i] = c == 0 ? i : (i % 2 ? 1 : -1);  /* chain 1 drifts: E-BFMI tiny */
    }
  f.in.adapt_delta = 0.8;
  f.in.max_depth = 10;
  int n;
  RunWarning *w = warn_collect(&f.in, &n);
  const RunWarning *d = find(w, n, "divergences"), *t = find(w, n, "treedepth");
  const RunWarning *b = find(w, n, "ebfmi");
  tap_ok(d && strstr(d->message, "3 of 400 transitions"), "divergences counted: %s",
         d ? d->message : "");
  tap_ok(d && strstr(d->advice, "towards 0.95"), "at 0.8: raise --adapt-delta towards 0.95");
  tap_ok(t && strstr(t->message, "100 of 400") && strstr(t->advice, "--max-depth (now 10)"),
         "tree depth saturation counted: %s", t ? t->message : "");
  tap_ok(b && b->nvars == 1 && !strcmp(b->vars[0], "chain 1"), "E-BFMI flags chain 1 only");
  f.in.adapt_delta = 0.95;
  w = warn_collect(&f.in, &n);
  d = find(w, n, "divergences");
  tap_ok(d && !strstr(d->advice, "towards 0.95") && strstr(d->advice, "reparameterise") &&
             strstr(d->advice, "0.99"),
         "at 0.95 the advice is reparameterisation or closer to 1: %s", d ? d->advice : "");
  f.in.adapt_delta = 0.995;
  w = warn_collect(&f.in, &n);
  d = find(w, n, "divergences");
  tap_ok(d && !strstr(d->advice, "0.99)") && strstr(d->advice, "already 0.995"),
         "at 0.995: reparameterise, no higher value suggested");
  /* E-BFMI by hand: E = 0,1,2,3: sum of squared steps 3, of deviations 5 */
  double e4[] = {0, 1, 2, 3};
  tap_near(warn_ebfmi(4, e4), 0.6, 1e-15, "E-BFMI of 0,1,2,3 is 3/5");
  double alt[] = {0, 1, 0, 1};
  tap_near(warn_ebfmi(4, alt), 3, 1e-15, "E-BFMI of 0,1,0,1 is 3");
}

static void test_acceptance(void) {
  static const char *names[] = {"lp__", "accept_stat__", "mu"};
  Fake f;
  fake_init(&f, 3, names);
  for (int i = 0; i < N; i++) {
    col(&f, 0, 1)[i] = i % 50 == 0;   /* 2% accepted */
    col(&f, 1, 1)[i] = i % 3 == 0;    /* 33% */
  }
  int n;
  RunWarning *w = warn_collect(&f.in, &n);
  tap_ok(!find(w, n, "acceptance"), "not a random-walk engine: no acceptance check");
  f.in.random_walk = true;
  w = warn_collect(&f.in, &n);
  const RunWarning *a = find(w, n, "acceptance");
  tap_ok(a && a->nvars == 1 && !strcmp(a->vars[0], "chain 1") && strstr(a->message, "0.020"),
         "MH: chain 1 accepts 2%%: %s", a ? a->message : "");
  tap_ok(a && strstr(a->advice, "rejected"), "low acceptance advice says proposals are rejected");
}

static void test_collapse(void) {
  static const char *names[] = {"lp__", "log_weight__", "mu", "k"};
  Fake f;
  fake_init(&f, 4, names);
  double *lw[M];
  for (int c = 0; c < M; c++) {
    lw[c] = gc_alloc_atomic(sizeof(double) * N);
    for (int i = 0; i < N; i++) {
      lw[c][i] = -3;
      col(&f, c, 2)[i] = c == 0 ? 0.5 + 0.001 * (i % 3) : 0.1 * i + 0.01; /* 3 values */
      col(&f, c, 3)[i] = i % 2;                                          /* whole numbers */
    }
  }
  f.in.weighted = true;
  f.in.lw = (const double *const *)lw;
  int n;
  RunWarning *w = warn_collect(&f.in, &n);
  const RunWarning *c = find(w, n, "collapse");
  tap_ok(c && c->nvars == 1 && !strcmp(c->vars[0], "mu") && strstr(c->message, "3 distinct values"),
         "collapse names mu with 3 distinct values, not the 0/1 k: %s", c ? c->message : "");
  for (int i = 0; i < N; i++) col(&f, 0, 2)[i] = 0.1 * i + 0.02;
  for (int i = 0; i < N; i++) lw[0][i] = lw[1][i] = i == 7 ? 0 : -INFINITY;
  lw[1][9] = -1;
  w = warn_collect(&f.in, &n);
  c = NULL;
  for (int i = 0; i < n; i++)
    if (!strcmp(w[i].kind, "collapse") && w[i].nvars == 0) c = &w[i];
  tap_ok(c && c->nvars == 0 && strstr(c->message, "Kish ESS is 2.6 ") &&
             strstr(c->message, "of 400 draws"),
         "collapsed weights: %s", c ? c->message : "");
  /* Pareto k: a warning above 0.7 only (0.5 to 0.7 is the table's note) */
  f.in.pareto_k = 0.65;
  w = warn_collect(&f.in, &n);
  tap_ok(!find(w, n, "pareto_k"), "Pareto k 0.65: no warning");
  f.in.pareto_k = 0.93;
  w = warn_collect(&f.in, &n);
  c = find(w, n, "pareto_k");
  tap_ok(c && strstr(c->message, "Pareto k is 0.93 (above 0.7)") && strstr(c->advice, "MCMC engine"),
         "Pareto k 0.93: %s", c ? c->message : "");
  f.in.weighted = false;
  w = warn_collect(&f.in, &n);
  tap_ok(!find(w, n, "pareto_k"), "Pareto k: only for weighted draws");
}

/* Variational runs: k-hat above 0.7 and unconverged chains warn; their
 * draws are independent, so no ESS warning, and R-hat's advice is about the
 * fits. */
static void test_vi(void) {
  static const char *names[] = {"lp__", "log_p__", "log_g__", "mu"};
  Fake f;
  fake_init(&f, 4, names);
  f.stats[3].rhat = 1.08;
  f.stats[3].ess_bulk = 40;
  f.in.vi_family = "meanfield";
  f.in.vi_khat = 0.65;
  int n;
  RunWarning *w = warn_collect(&f.in, &n);
  const RunWarning *r = find(w, n, "rhat");
  tap_ok(!find(w, n, "vi_khat") && !find(w, n, "vi_converged") && !find(w, n, "ess"),
         "vi: k-hat 0.65 and converged chains: no vi warning; no ESS warning for independent draws");
  tap_ok(r && strstr(r->advice, "each chain fitted its own approximation"),
         "vi: R-hat's advice is about the fits: %s", r ? r->advice : "");
  f.in.vi_khat = 0.91;
  f.in.vi_unconverged = 1;
  w = warn_collect(&f.in, &n);
  const RunWarning *k = find(w, n, "vi_khat"), *c = find(w, n, "vi_converged");
  tap_ok(k && strstr(k->message, "meanfield approximation's PSIS k-hat is 0.91 (above 0.7)") &&
             strstr(k->advice, "do not use these draws: run --engine nuts"),
         "vi: k-hat 0.91 warns: %s", k ? k->message : "");
  tap_ok(c && strstr(c->message, "1 of 2 chains"), "vi: an unconverged chain warns: %s",
         c ? c->message : "");
  f.in.vi_family = NULL;
  w = warn_collect(&f.in, &n);
  tap_ok(!find(w, n, "vi_khat") && find(w, n, "ess"), "not a vi run: no vi warning, ESS checked");
}

static void test_evidence(void) {
  static const char *names[] = {"lp__", "mu"};
  Fake f;
  fake_init(&f, 2, names);
  double agree[M] = {-10.2, -10.9}, apart[M] = {-232.15, -199.97};
  f.in.chain_logz = agree;
  int n;
  RunWarning *w = warn_collect(&f.in, &n);
  tap_ok(!find(w, n, "evidence"), "chains within a unit of log Z: no warning");
  f.in.chain_logz = apart;
  w = warn_collect(&f.in, &n);
  const RunWarning *e = find(w, n, "evidence");
  /* sd of two values: |a - b| / sqrt 2 = 32.18 / 1.414 = 22.75 */
  tap_ok(e && strstr(e->message, "(sd 22.75): -232.15, -199.97"),
         "chains 32 apart in log Z: %s", e ? e->message : "");
}

static void test_render(void) {
  static const char *labels[] = {"lp__", "log_weight__", "mu"};
  SummaryStats st[3] = {{.mean = -1, .sd = 1, .mcse = 0.1, .ess_bulk = 500, .ess_tail = 500, .rhat = 1},
                        {.mean = -5, .sd = 2, .mcse = 0.1, .ess_bulk = 500, .ess_tail = 500, .rhat = 7},
                        {.mean = 2, .sd = 1, .mcse = 0.1, .ess_bulk = 50, .ess_tail = 50, .rhat = NAN}};
  const char *vars[] = {"mu"};
  RunWarning w[2] = {{"ess", 1, vars, "bulk or tail ESS below 100 per chain", "run more draws"},
                     {"collapse", 0, NULL, "the importance weights collapsed", "use nuts"}};
  SummaryRun run = {.model_name = "m", .engine = "is", .chains = 1, .draws = 400,
                    .weighted = true, .log_evidence = -2113.4, .log_evidence_se = 0.99,
                    .weights_ess = 1.02, .nwarnings = 2, .warnings = w};
  char *t = summary_table(&run, 3, labels, st);
  tap_ok(strstr(t, "\nWarning (ess): bulk or tail ESS below 100 per chain\n  advice: run more draws\n") &&
             strstr(t, "Warning (collapse): the importance weights collapsed\n  advice: use nuts\n"),
         "the table ends with the warnings");
  tap_ok(strstr(t, "log evidence: -2113.40 (unreliable: the weights collapsed onto a Kish ESS of 1.0 draws; no standard error)") != NULL,
         "collapsed weights: no ± SE");
  const char *row = strstr(t, "log_weight__");
  char cells[200] = "";
  if (row) sscanf(row, "log_weight__ %*s %*s %*s %*s %*s %*s %s", cells);
  if (!(row && strstr(row, "         -         -      -\n") && !strcmp(cells, "-"))) tap_diag("%s", t);
  tap_ok(row && strstr(row, "         -         -      -\n") && !strcmp(cells, "-"),
         "log_weight__ has no MCSE, ESS or R-hat");
  tap_streq(summary_warnings_text(0, NULL), "", "no warnings: empty text");

  json_error_t e;
  json_t *j = json_loads(summary_json(&run, 3, labels, st), 0, &e);
  json_t *ws = json_object_get(j, "warnings");
  tap_ok(json_is_array(ws) && json_array_size(ws) == 2, "JSON: warnings array of 2");
  json_t *w0 = json_array_get(ws, 0);
  tap_streq(json_string_value(json_object_get(w0, "kind")), "ess", "JSON warning kind");
  tap_streq(json_string_value(json_array_get(json_object_get(w0, "variables"), 0)), "mu",
            "JSON warning variables");
  tap_streq(json_string_value(json_object_get(w0, "advice")), "run more draws", "JSON warning advice");
  tap_ok(json_is_string(json_object_get(w0, "message")), "JSON warning message");
  json_t *le = json_object_get(j, "log_evidence");
  tap_ok(json_is_null(json_object_get(le, "se")) &&
             fabs(json_real_value(json_object_get(le, "weights_ess")) - 1.02) < 1e-12,
         "JSON: collapsed weights give se null and their Kish ESS");
  tap_ok(json_is_null(json_object_get(json_object_get(json_object_get(j, "variables"), "log_weight__"), "rhat")),
         "JSON: log_weight__ rhat null");
  json_decref(j);
  run.nwarnings = 0;
  j = json_loads(summary_json(&run, 3, labels, st), 0, &e);
  ws = json_object_get(j, "warnings");
  tap_ok(json_is_array(ws) && json_array_size(ws) == 0, "JSON: no warnings is []");
  json_decref(j);
}

int main(void) {
  gc_init();
  test_clean();
  test_rhat_ess();
  test_hmc();
  test_acceptance();
  test_collapse();
  test_evidence();
  test_vi();
  test_render();
  return tap_done();
}
