/* test_api_harden.c — the public API (ppl.h) under hostile use (issue 10):
 *
 *   - a run whose draws cannot fit in physical memory is refused before it
 *     starts (PPL_ERR_USAGE, the bytes it needs), both by ppl_run_check and
 *     ppl_run, and also when the columns are known only at the first draw;
 *   - an allocation that fails (address space limited in a child process)
 *     is PPL_ERR_NOMEM "out of memory (allocating N bytes)", in a chain's
 *     thread and in smc's particle threads; the model is retired and the
 *     context still compiles and runs another model;
 *   - ppl_interrupt: before a run it stops the run before any draw
 *     (PPL_ERR_INTERRUPTED); from another thread during a run the result has
 *     fewer draws than asked, says interrupted, and its draws are the first
 *     draws of an uninterrupted run with the same seed; the flag is cleared;
 *   - outputs: an output that is the model file is refused and the file is
 *     untouched; an unwritable summary is refused before the run;
 *   - messages: NULL names are named, not printed as (null); a run without
 *     data speaks the API's words, not the command line's; *lp is NAN after a
 *     failed ppl_log_density / _gradient. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ppl.h"
#include "tap.h"

static const char *simple = "model { real mu ~ normal(0, 1); }\ngenerated { real z = normal_rng(mu, 1); }\n";
static const char *many = "model { real mu ~ normal(0, 1); }\ngenerated { vector[50] z = rep_vector(mu, 50); }\n";
static const char *huge =
    "model { real mu ~ normal(0, 1); }\n"
    "generated { vector[100000000] z = rep_vector(mu, 100000000); real s = sum(z); }\n";

static const char *particles_huge =
    "model { real mu ~ normal(0, 1); 1.0 ~ normal(mu, 1);\n"
    "        vector[100000000] big = rep_vector(mu, 100000000); 1.0 ~ normal(big[1], 1); }\n";

static ppl_model *compile(ppl_context *ctx, const char *src) {
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, src, "t.ppl", &m) != PPL_OK) tap_diag("compile: %s", ppl_errmsg(ctx));
  return m;
}

static void test_memory(ppl_context *ctx) {
  ppl_model *m = compile(ctx, simple);
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "prior";
  ro.chains = 64;
  ro.draws = 100000000;
  tap_ok(ppl_run_check(m, &ro) == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "physical memory") &&
             strstr(ppl_errmsg(ctx), "GB of draws"),
         "64 x 1e8 draws: refused by ppl_run_check (%s)", ppl_errmsg(ctx));
  ppl_result *r = (ppl_result *)1;
  double t0 = (double)clock() / CLOCKS_PER_SEC;
  tap_ok(ppl_run(m, &ro, &r) == PPL_ERR_USAGE && r == NULL && strstr(ppl_errmsg(ctx), "physical memory"),
         "and by ppl_run, with no result");
  tap_ok((double)clock() / CLOCKS_PER_SEC - t0 < 2, "at once");
  ppl_model_free(m);

  /* 50 columns of one vector: known only at the first draw */
  m = compile(ctx, many);
  ro.chains = 4;
  tap_ok(ppl_run_check(m, &ro) == PPL_OK, "4 x 1e8 draws of a vector: the lower bound fits");
  tap_ok(ppl_run(m, &ro, &r) == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "x 52 columns x 8 bytes"),
         "refused at the first draw with the exact columns (%s)", ppl_errmsg(ctx));
  ppl_model_free(m);
}

/* In a child with 700 MB of address space: a vector of 800 MB. */
static int oom_child(void) {
  struct rlimit rl = {700u << 20, 700u << 20};
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 10;
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = 4; /* smc: 4 particle workers for its one chain */
  ppl_context *ctx = ppl_context_new(&cfg);
  if (!ctx) return 11;
  ppl_model *m = compile(ctx, huge);
  if (!m) return 12;
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "prior";
  ro.chains = 2;
  ro.draws = 2;
  ppl_result *r = NULL;
  if (ppl_run(m, &ro, &r) != PPL_ERR_NOMEM || r) return 13;
  if (strcmp(ppl_errmsg(ctx), "out of memory (allocating 800000000 bytes)")) return 14;
  if (ppl_run(m, &ro, &r) != PPL_ERR_USAGE || !strstr(ppl_errmsg(ctx), "ran out of memory in an earlier call"))
    return 15;
  ppl_model_free(m);
  /* smc with particle threads: a pool thread's failure reaches the chain */
  m = compile(ctx, particles_huge);
  if (!m) return 17;
  ro.engine = "smc";
  ro.chains = 1;
  ro.particles = 400;
  if (ppl_run(m, &ro, &r) != PPL_ERR_NOMEM || strcmp(ppl_errmsg(ctx), "out of memory (allocating 800000000 bytes)"))
    return 18;
  ppl_model_free(m);
  ro.engine = "prior";
  ro.chains = 2;
  /* the context goes on */
  ppl_model *m2 = compile(ctx, simple);
  if (!m2 || ppl_run(m2, &ro, &r) != PPL_OK) return 16;
  ppl_result_free(r);
  ppl_model_free(m2);
  ppl_context_free(ctx);
  return 0;
}

static void test_oom(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(oom_child());
  int st = 0;
  waitpid(pid, &st, 0);
  tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
         "out of memory in a chain: PPL_ERR_NOMEM with the bytes, model retired, context usable "
         "(child: %s %d)", WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

typedef struct Later {
  ppl_context *ctx;
  int ms;
} Later;

static void *interrupt_later(void *arg) {
  Later *l = arg;
  struct timespec ts = {l->ms / 1000, (long)(l->ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  ppl_interrupt(l->ctx);
  return NULL;
}

static void test_interrupt(ppl_context *ctx) {
  ppl_model *m = compile(ctx, simple);
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "mh";
  ro.chains = 2;
  ro.warmup = 0;
  ro.draws = 20000;
  ro.thin = 500; /* 1e7 iterations a chain: seconds */
  ppl_result *r = NULL;
  ppl_interrupt(ctx);
  tap_ok(ppl_run(m, &ro, &r) == PPL_ERR_INTERRUPTED && !r &&
             !strcmp(ppl_errmsg(ctx), "interrupted before any draw was kept"),
         "interrupt before the run: no draw, PPL_ERR_INTERRUPTED (%s)", ppl_errmsg(ctx));

  pthread_t t;
  Later l = {ctx, 300};
  pthread_create(&t, NULL, interrupt_later, &l);
  ppl_status s = ppl_run(m, &ro, &r);
  pthread_join(t, NULL);
  int n = r ? ppl_result_num_draws(r) : -1;
  tap_ok(s == PPL_OK && r && ppl_result_interrupted(r) && n > 0 && n < ro.draws,
         "interrupt during the run: %d of %d draws, marked interrupted", n, ro.draws);
  const char *text = r ? ppl_result_summary_text(r) : "";
  char want[64];
  snprintf(want, sizeof want, "interrupted after %d of %d draws", n, ro.draws);
  tap_ok(strstr(text, want) != NULL, "the summary says '%s'", want);

  /* the kept draws are the start of the full run's (same seed) */
  ppl_run_options full = ro;
  full.draws = n;
  ppl_result *rf = NULL;
  tap_ok(ppl_run(m, &full, &rf) == PPL_OK && !ppl_result_interrupted(rf), "the flag was cleared");
  int col = r ? ppl_result_column_index(r, "mu") : -1;
  bool same = r && rf && col >= 0;
  for (int c = 0; same && c < 2; c++)
    for (int i = 0; i < n; i++)
      if (ppl_result_draw(r, c, i, col) != ppl_result_draw(rf, c, i, col)) same = false;
  tap_ok(same, "the %d kept draws of each chain equal the uninterrupted run's", n);
  ppl_result_free(rf);
  ppl_result_free(r);
  ppl_model_free(m);
}

static void test_outputs(ppl_context *ctx) {
  char dir[] = "/tmp/ppl-harden-XXXXXX";
  if (!mkdtemp(dir)) return;
  char path[128], sum[160];
  snprintf(path, sizeof path, "%s/model.ppl", dir);
  FILE *f = fopen(path, "w");
  fputs(simple, f);
  fclose(f);
  ppl_model *m = NULL;
  ppl_compile_file(ctx, path, &m);
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "prior";
  ro.chains = 1;
  ro.draws = 10;
  ro.output_csv = path;
  ppl_result *r = NULL;
  tap_ok(ppl_run(m, &ro, &r) == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "is the run's model file"),
         "output = the model file: refused (%s)", ppl_errmsg(ctx));
  char buf[512] = {0};
  f = fopen(path, "r");
  size_t got = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  tap_ok(got == strlen(simple) && !strcmp(buf, simple), "and the model is intact");
  ro.output_csv = NULL;
  snprintf(sum, sizeof sum, "%s/no-such-dir/s.json", dir);
  ro.summary_json = sum;
  tap_ok(ppl_run_check(m, &ro) == PPL_ERR_IO && strstr(ppl_errmsg(ctx), "cannot write summary"),
         "unwritable summary: refused before the run (%s)", ppl_errmsg(ctx));
  ppl_model_free(m);
  unlink(path);
  rmdir(dir);
}

static void test_messages(ppl_context *ctx) {
  ppl_model *m = compile(ctx, "data { int J; }\nmodel { real mu ~ normal(0, J); }\n");
  double v = 1;
  tap_ok(ppl_data_real(m, NULL, &v, 0, NULL) == PPL_ERR_USAGE &&
             !strcmp(ppl_errmsg(ctx), "ppl_data_real: name is NULL"),
         "NULL data name: %s", ppl_errmsg(ctx));
  tap_ok(ppl_register_function(ctx, NULL, 1, NULL, NULL) == PPL_ERR_USAGE &&
             !strcmp(ppl_errmsg(ctx), "ppl_register_function: name is NULL"),
         "NULL function name: %s", ppl_errmsg(ctx));
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ppl_status s = ppl_run_set(&ro, NULL, "1");
  tap_ok(s == PPL_ERR_USAGE && !strcmp(ppl_run_options_errmsg(&ro), "ppl_run_set: name is NULL"),
         "NULL option name: %s", ppl_run_options_errmsg(&ro));
  ppl_run_options_free(&ro);
  tap_ok(ppl_set_data_json(m, "{\"J\": ", "d.json") == PPL_ERR_DATA, "bad JSON refused");
  ppl_result *r = NULL;
  tap_ok(ppl_run(m, NULL, &r) == PPL_ERR_DATA && !strstr(ppl_errmsg(ctx), "--data") &&
             strstr(ppl_errmsg(ctx), "call ppl_set_data_json/ppl_set_data_file first"),
         "then ppl_run speaks the API: %s", ppl_errmsg(ctx));
  double lp = 0, g = 0, theta = 0;
  tap_ok(ppl_log_density(m, &theta, 1, &lp) != PPL_OK && isnan(lp), "ppl_log_density: lp NAN on error");
  lp = 0;
  tap_ok(ppl_log_density_gradient(m, &theta, 1, &lp, &g) != PPL_OK && isnan(lp),
         "ppl_log_density_gradient: lp NAN on error");
  ppl_model_free(m);
}

int main(void) {
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = 2;
  ppl_context *ctx = ppl_context_new(&cfg);
  test_messages(ctx);
  test_outputs(ctx);
  test_memory(ctx);
  test_interrupt(ctx);
  ppl_context_free(ctx);
  test_oom();
  return tap_done();
}
