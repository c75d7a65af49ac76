/* test_train.c — ppl_train and ppl_run_engine (ppl.h), the API of `ppl
 * train` and of the engine amortized's selection (issue 13), on the
 * conjugate per-datapoint toy of tests/train_cli.pl:
 *
 *   - what ppl_train says it did: 1000 steps of batch 20 over 200 points are
 *     100 epochs of 20000 examples, a finite ELBO, no npe loss; the same seed
 *     trains the same file byte for byte;
 *   - ppl_run_engine: amortized with the option "load", and why; never
 *     without it (ppl_model_engine, ppl_run_engine); the engine amortized
 *     without "load" is PPL_ERR_USAGE; another program's file PPL_ERR_DATA;
 *   - ppl_run with "load": the engine amortized, the draws asked for;
 *   - ppl_interrupt: before ppl_train, 0 steps, PPL_OK, the file written and
 *     loadable, the flag cleared; from another thread during a long training,
 *     it stops early with the steps so far;
 *   - misuse: no save path, an engine that does not train, run options that
 *     do not apply to one fit. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ppl.h"
#include "tap.h"

static const char *toy =
    "data { int N; vector[N] x; }\n"
    "model {\n"
    "  plate (i in 1:N, batch = 20) {\n"
    "    real z ~ normal(0, 1);\n"
    "    x[i] ~ normal(z, 0.5);\n"
    "  }\n"
    "}\n"
    "guide {\n"
    "  param real a;\n"
    "  param real b;\n"
    "  param real<lower=0> s = 1;\n"
    "  plate (i in 1:N, batch = 20) {\n"
    "    real z ~ normal(a * x[i] + b, s);\n"
    "  }\n"
    "}\n";

/* 200 points x[i] = 0.01 i - 1: the values matter less than their count here */
static char *toy_data(void) {
  static char buf[8192];
  size_t len = (size_t)snprintf(buf, sizeof buf, "{\"N\": 200, \"x\": [");
  for (int i = 0; i < 200; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%.2f", i ? ", " : "", 0.01 * i - 1);
  snprintf(buf + len, sizeof buf - len, "]}");
  return buf;
}

static ppl_model *compile(ppl_context *ctx, const char *src, const char *name) {
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, src, name, &m) != PPL_OK ||
      ppl_set_data_json(m, toy_data(), "toy.json") != PPL_OK) {
    tap_diag("%s: %s", name, ppl_errmsg(ctx));
    return NULL;
  }
  return m;
}

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static ppl_status train(ppl_model *m, const char *iter, const char *path, ppl_train_info *info) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.seed = 5;
  ppl_status s = ppl_run_set(&ro, "iter", iter) ? PPL_ERR_USAGE : ppl_train(m, &ro, path, info);
  ppl_run_options_free(&ro);
  return s;
}

typedef struct Later {
  ppl_context *ctx;
  double secs;
} Later;

static void *interrupt_later(void *arg) {
  Later *l = arg;
  struct timespec ts = {(time_t)l->secs, (long)((l->secs - (double)(time_t)l->secs) * 1e9)};
  nanosleep(&ts, NULL);
  ppl_interrupt(l->ctx);
  return NULL;
}

int main(void) {
  char dir[] = "/tmp/ppl_train_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char p1[64], p2[64], p3[64], p4[64];
  snprintf(p1, sizeof p1, "%s/a.params", dir);
  snprintf(p2, sizeof p2, "%s/b.params", dir);
  snprintf(p3, sizeof p3, "%s/c.params", dir);
  snprintf(p4, sizeof p4, "%s/d.params", dir);
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = compile(ctx, toy, "toy.ppl");
  if (!m) return tap_done();

  /* ---- what it did ---- */
  ppl_train_info info;
  memset(&info, 0, sizeof info);
  ppl_status s = train(m, "1000", p1, &info);
  tap_ok(s == PPL_OK && !strcmp(info.method, "svi") && info.steps == 1000 &&
             info.epochs == 100 && info.examples == 20000 && isfinite(info.elbo) &&
             isnan(info.loss) && info.converged && !info.interrupted && info.seconds > 0,
         "ppl_train: svi, 1000 steps, 100 epochs, 20000 examples, ELBO %g (%s)", info.elbo,
         s ? ppl_errmsg(ctx) : "ok");
  size_t n1 = 0, n2 = 0;
  s = train(m, "1000", p2, &info);
  char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
  tap_ok(s == PPL_OK && b1 && b2 && n1 == n2 && n1 > 0 && !memcmp(b1, b2, n1),
         "the same seed trains the same file byte for byte (%zu bytes)", n1);
  tap_ok(b1 && memmem(b1, n1, "\"kind\":\"svi\"", 12), "the file's kind is svi");
  free(b1), free(b2);

  /* ---- resuming: the optimiser's state is in the file and read back ---- */
  char p5[64], p6[64];
  snprintf(p5, sizeof p5, "%s/e.params", dir);
  snprintf(p6, sizeof p6, "%s/f.params", dir);
  b1 = slurp(p1, &n1);
  tap_ok(b1 && memmem(b1, n1, "\"optim_steps\":\"1000\"", 20) && memmem(b1, n1, "\"optim.m\"", 9) &&
             memmem(b1, n1, "\"optim.v\"", 9),
         "the file keeps Adam's moments and its 1000 steps");
  ppl_run_options rr;
  ppl_run_options_default(&rr);
  rr.seed = 5;
  s = ppl_run_set(&rr, "iter", "300") || ppl_run_set(&rr, "load", p1) ? PPL_ERR_USAGE
                                                                        : ppl_train(m, &rr, p5, &info);
  b2 = slurp(p5, &n2);
  tap_ok(s == PPL_OK && b2 && memmem(b2, n2, "\"optim_steps\":\"1300\"", 20),
         "ppl_train with load: 300 more steps go on from the file's 1000 (%s)",
         s ? ppl_errmsg(ctx) : "ok");
  char *at = b1 ? memmem(b1, n1, "\"optim_steps\":\"1000\"", 20) : NULL;
  FILE *f = at ? fopen(p6, "wb") : NULL;
  if (f) { /* the same length, so the header stays valid */
    memcpy(at + 15, "x000", 4);
    fwrite(b1, 1, n1, f);
    fclose(f);
  }
  ppl_run_set(&rr, "load", p6);
  s = ppl_train(m, &rr, p5, &info);
  tap_ok(s == PPL_ERR_DATA && strstr(ppl_errmsg(ctx), "the optimiser's state"), "%s",
         s ? ppl_errmsg(ctx) : "a damaged optim_steps was accepted");
  ppl_run_options_free(&rr);
  free(b1), free(b2);

  /* ---- the selector ---- */
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  const char *name = NULL, *why = NULL;
  s = ppl_run_engine(m, &ro, &name, &why);
  tap_ok(s == PPL_OK && strcmp(name, "amortized") != 0, "no load: not amortized (%s)", name);
  s = ppl_model_engine(m, NULL, &name, &why);
  tap_ok(s == PPL_OK && strcmp(name, "amortized") != 0, "ppl_model_engine: not amortized");
  ro.engine = "amortized";
  s = ppl_run_engine(m, &ro, &name, &why);
  tap_ok(s == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "--engine amortized needs --load FILE"),
         "the engine amortized without load: %s", ppl_errmsg(ctx));
  ro.engine = NULL;
  ppl_run_set(&ro, "load", p1);
  s = ppl_run_engine(m, &ro, &name, &why);
  tap_ok(s == PPL_OK && !strcmp(name, "amortized") &&
             !strncmp(why, "amortized — --load ", strlen("amortized — --load ")) &&
             strstr(why, "holds a guide trained for this program"),
         "load: amortized, because %s", why ? why : ppl_errmsg(ctx));
  ro.chains = 2;
  ro.draws = 300;
  ppl_result *r = NULL;
  s = ppl_run(m, &ro, &r);
  tap_ok(s == PPL_OK && !strcmp(ppl_result_engine(r), "amortized") &&
             ppl_result_num_chains(r) == 2 && ppl_result_num_draws(r) == 300 &&
             ppl_result_column_index(r, "z.200") >= 0,
         "ppl_run with load: amortized, 2 x 300 draws, every z drawn (%s)",
         s ? ppl_errmsg(ctx) : "ok");
  ppl_result_free(r);

  ppl_model *other = compile(ctx, "data { int N; vector[N] x; }\n"
                                  "model { real mu ~ normal(0, 1); x ~ normal(mu, 1); }\n",
                             "other.ppl");
  s = other ? ppl_run_engine(other, &ro, &name, &why) : PPL_ERR_INTERNAL;
  tap_ok(s == PPL_ERR_DATA && strstr(ppl_errmsg(ctx), "trained for another program"),
         "another program's file: PPL_ERR_DATA (%s)", ppl_errmsg(ctx));
  s = other ? ppl_run(other, &ro, &r) : PPL_ERR_INTERNAL;
  tap_ok(s == PPL_ERR_DATA && !r, "ppl_run refuses it too");
  ppl_model_free(other);
  ppl_run_options_free(&ro);

  /* ---- interrupts ---- */
  ppl_interrupt(ctx);
  s = train(m, "1000", p3, &info);
  tap_ok(s == PPL_OK && info.interrupted && info.steps == 0 && access(p3, R_OK) == 0,
         "ppl_interrupt before ppl_train: PPL_OK, 0 steps, the file written");
  s = train(m, "50", p4, &info);
  tap_ok(s == PPL_OK && !info.interrupted && info.steps == 50, "the flag is cleared afterwards");
  ppl_run_options_default(&ro);
  ppl_run_set(&ro, "load", p3);
  ro.chains = 1, ro.draws = 10;
  s = ppl_run(m, &ro, &r);
  tap_ok(s == PPL_OK && ppl_result_num_draws(r) == 10, "the interrupted file loads");
  ppl_result_free(r);
  ppl_run_options_free(&ro);
  pthread_t th;
  Later later = {ctx, 0.3};
  pthread_create(&th, NULL, interrupt_later, &later);
  s = train(m, "100000000", p3, &info);
  pthread_join(th, NULL);
  tap_ok(s == PPL_OK && info.interrupted && info.steps > 0 && info.steps < 100000000 &&
             !info.converged,
         "ppl_interrupt from another thread: stopped after %ld steps", info.steps);

  /* ---- misuse ---- */
  s = ppl_train(m, NULL, NULL, &info);
  tap_ok(s == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "save_path is NULL"), "%s",
         ppl_errmsg(ctx));
  ppl_run_options_default(&ro);
  ro.engine = "nuts";
  s = ppl_train(m, &ro, p4, &info);
  tap_ok(s == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "not 'nuts'"), "%s", ppl_errmsg(ctx));
  ro.engine = NULL;
  ppl_run_set(&ro, "draws", "10");
  s = ppl_train(m, &ro, p4, &info);
  tap_ok(s == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "--draws does not apply"), "%s",
         ppl_errmsg(ctx));
  ppl_run_options_free(&ro);
  ppl_run_options_default(&ro);
  ppl_run_set(&ro, "particles", "10");
  s = ppl_train(m, &ro, p4, &info);
  tap_ok(s == PPL_ERR_USAGE && strstr(ppl_errmsg(ctx), "does not apply to engine 'svi'"), "%s",
         ppl_errmsg(ctx));
  ppl_run_options_free(&ro);

  ppl_model_free(m);
  ppl_context_free(ctx);
  unlink(p1), unlink(p2), unlink(p3), unlink(p4);
  rmdir(dir);
  return tap_done();
}
