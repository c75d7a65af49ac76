/* test_csv_result.c — draws read back from CSV through ppl.h
 * (ppl_result_from_csv, ppl_result_write_summary, ppl_generate):
 *
 *   - files written with sig-figs 17 give back the run's draws bit for bit,
 *     and every column's summary, the table and the warnings of the run
 *     (for nuts, whose table also has chain remarks, the table's start);
 *   - smc's files carry its own evidence estimate: the same log evidence;
 *   - ppl_generate writes per-chain files whose generated quantity is the
 *     deterministic function of the draw it claims to be;
 *   - bad arguments are PPL_ERR_USAGE with a message, never a crash. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppl.h"
#include "tap.h"

static const char *model =
    "model { real mu ~ normal(0, 1); real<lower=0> s ~ exponential(1); 1.5 ~ normal(mu, s); }\n"
    "generated { real z = normal_rng(mu, s); }\n";

/* Run engine with 2 chains into dir/ENGINE.csv at full precision. */
static ppl_result *run(ppl_model *m, const char *engine, const char *dir, char *csv) {
  ppl_run_options o;
  ppl_run_options_default(&o);
  o.engine = engine, o.chains = 2, o.draws = 150, o.warmup = 150, o.particles = 150;
  snprintf(csv, 512, "%s/%s.csv", dir, engine);
  o.output_csv = csv;
  ppl_run_set(&o, "sig-figs", "17");
  ppl_result *r = NULL;
  if (ppl_run(m, &o, &r) != PPL_OK) r = NULL;
  ppl_run_options_free(&o);
  return r;
}

static void same_result(ppl_context *ctx, ppl_model *m, const char *engine, const char *dir) {
  char csv[512], f1[600], f2[600];
  ppl_result *r = run(m, engine, dir, csv);
  snprintf(f1, sizeof f1, "%s/%s_1.csv", dir, engine);
  snprintf(f2, sizeof f2, "%s/%s_2.csv", dir, engine);
  const char *files[] = {f1, f2};
  ppl_result *b = NULL;
  ppl_status st = r ? ppl_result_from_csv(ctx, 2, files, &b) : PPL_ERR_INTERNAL;
  tap_ok(st == PPL_OK && b, "%s: run and ppl_result_from_csv succeed (%s)", engine, ppl_errmsg(ctx));
  if (!b) return;
  int nc = ppl_result_num_columns(r), diff = 0, sdiff = 0;
  tap_ok(ppl_result_num_chains(b) == 2 && ppl_result_num_draws(b) == 150 && ppl_result_num_columns(b) == nc,
         "%s: 2 chains, 150 draws, %d columns", engine, nc);
  for (int col = 0; col < nc; col++) {
    diff += strcmp(ppl_result_column_name(r, col), ppl_result_column_name(b, col)) != 0;
    for (int c = 0; c < 2; c++)
      for (int i = 0; i < 150; i++) diff += ppl_result_draw(r, c, i, col) != ppl_result_draw(b, c, i, col);
    ppl_summary x, y;
    ppl_result_summary(r, col, &x);
    ppl_result_summary(b, col, &y);
    const double *px = &x.mean, *py = &y.mean;
    for (int k = 0; k < 9; k++) sdiff += !(px[k] == py[k] || (isnan(px[k]) && isnan(py[k])));
  }
  tap_ok(diff == 0, "%s: names and draws bit for bit (%d differ)", engine, diff);
  tap_ok(sdiff == 0, "%s: every statistic of every column the same (%d differ)", engine, sdiff);
  tap_ok(ppl_result_num_warnings(b) == ppl_result_num_warnings(r) &&
             !strcmp(ppl_result_warnings_text(b), ppl_result_warnings_text(r)),
         "%s: the same %d warnings", engine, ppl_result_num_warnings(r));
  const char *tr = ppl_result_summary_text(r), *tb = ppl_result_summary_text(b);
  const char *table = strstr(tr, "\n\n"); /* after the header lines (the run's has a backend line) */
  tap_ok(table && strncmp(strstr(tb, "\n\n"), table, strlen(strstr(tb, "\n\n"))) == 0 &&
             !strcmp(ppl_result_engine(b), engine),
         "%s: the table is the run's, and the engine", engine);
  double e1, s1, e2, s2;
  if (ppl_result_log_evidence(r, &e1, &s1) == PPL_OK)
    tap_ok(ppl_result_log_evidence(b, &e2, &s2) == PPL_OK && e1 == e2 && s1 == s2,
           "%s: the same log evidence %.4f ± %.4f", engine, e1, s1);
  char js[600];
  snprintf(js, sizeof js, "%s/%s.json", dir, engine);
  tap_ok(ppl_result_write_summary(b, js) == PPL_OK && access(js, R_OK) == 0, "%s: summary JSON written", engine);
  ppl_result_free(r);
  ppl_result_free(b);
}

static void generate(ppl_context *ctx, ppl_model *m, const char *dir) {
  ppl_model *g = NULL;
  const char *src = "model { real mu ~ normal(0, 1); real<lower=0> s ~ exponential(1); }\n"
                    "generated { real w = mu - 3 * s; }\n";
  ppl_compile_string(ctx, src, "gen.ppl", &g);
  char f1[600], f2[600], out[600], o1[600];
  snprintf(f1, sizeof f1, "%s/mh_1.csv", dir);
  snprintf(f2, sizeof f2, "%s/mh_2.csv", dir);
  snprintf(out, sizeof out, "%s/gq.csv", dir);
  snprintf(o1, sizeof o1, "%s/gq_2.csv", dir);
  const char *files[] = {f1, f2};
  ppl_status st = ppl_generate(g, 2, files, out, 3);
  tap_ok(st == PPL_OK, "ppl_generate over 2 files (%s)", ppl_errmsg(ctx));
  const char *one[] = {o1};
  ppl_result *r = NULL;
  st = ppl_result_from_csv(ctx, 1, one, &r);
  int mu = r ? ppl_result_column_index(r, "mu") : -1, s = r ? ppl_result_column_index(r, "s") : -1;
  int w = r ? ppl_result_column_index(r, "w") : -1, z = r ? ppl_result_column_index(r, "z") : -1;
  int bad = 0;
  for (int i = 0; r && i < ppl_result_num_draws(r); i++)
    bad += ppl_result_draw(r, 0, i, w) != ppl_result_draw(r, 0, i, mu) - 3 * ppl_result_draw(r, 0, i, s);
  tap_ok(st == PPL_OK && w >= 0 && z >= 0 && ppl_result_num_draws(r) == 150 && bad == 0,
         "gq_2.csv: 150 rows, w == mu - 3 s exactly, the old z kept (%d differ)", bad);
  ppl_result_free(r);
  /* no generated block */
  ppl_model *none = NULL;
  ppl_compile_string(ctx, "model { real mu ~ normal(0, 1); }\n", "none.ppl", &none);
  st = ppl_generate(none, 1, files, out, 1);
  tap_ok(st == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "has no generated block"),
         "a model without a generated block: %s", ppl_errmsg(ctx));
  tap_ok(ppl_generate(g, 0, files, out, 1) == PPL_ERR_USAGE && ppl_generate(g, 1, NULL, out, 1) == PPL_ERR_USAGE,
         "ppl_generate: no files is a usage error");
  ppl_model_free(none);
  ppl_model_free(g);
  (void)m;
}

int main(void) {
  char dir[] = "/tmp/ppl_csv_result_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  ppl_compile_string(ctx, model, "m.ppl", &m);
  ppl_data_commit(m);
  same_result(ctx, m, "mh", dir);
  same_result(ctx, m, "is", dir);
  same_result(ctx, m, "smc", dir);
  same_result(ctx, m, "nuts", dir);
  generate(ctx, m, dir);
  ppl_result *r = (ppl_result *)1;
  tap_ok(ppl_result_from_csv(ctx, 0, NULL, &r) == PPL_ERR_USAGE && r == NULL &&
             strstr(ppl_errmsg(ctx), "no files"),
         "no files: PPL_ERR_USAGE, *out NULL (%s)", ppl_errmsg(ctx));
  const char *nul[] = {NULL};
  tap_ok(ppl_result_from_csv(ctx, 1, nul, &r) == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "paths[0] is NULL"),
         "a NULL path is named");
  tap_ok(ppl_result_from_csv(NULL, 1, nul, &r) == PPL_ERR_USAGE && ppl_result_write_summary(NULL, "x") == PPL_ERR_USAGE,
         "NULL context or result: PPL_ERR_USAGE");
  ppl_model_free(m);
  ppl_context_free(ctx);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 1;
  return tap_done();
}
