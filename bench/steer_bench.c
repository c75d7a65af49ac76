/* steer_bench.c — what prompt and KV sharing saves in engine steer, and what
 * the engine costs over plain batched sampling.  The backend is the n-gram
 * model of a corpus (default examples/cascades/english.txt) wrapped in a
 * counting backend registered with ppl_register_lm, so every run reports
 * its eval calls (batches), tokens decoded (tokens appended to states) and
 * states started, whichever engine made them.
 *
 *   1. N particles of steer (--resample never) generating one `lm` string
 *      from a shared prompt of P bytes, against N independent generations
 *      (each a fresh cursor that decodes the prompt, one eval a token) and
 *      engine is (one inline generation per draw: the families' pool of
 *      cursors shares the prompt, but each token is its own eval): tokens
 *      decoded, eval calls, wall time, and their ratios.  Target: the
 *      prompt is decoded once (steer decodes P + N x T tokens).
 *   2. steer on a token loop with a condition per token (resampling) against
 *      plain batched sampling of the same number of tokens by the same
 *      backend (the prompt decoded once and forked into N cursors, one
 *      lm_cursor_eval per step, lm_sample): the whole runs' CPU time, and
 *      the CPU time of a token, from runs of T and of 4 tokens (so a run's
 *      fixed costs drop out), each the least of 7 interleaved repetitions.
 *      Target: steering costs at most 1.3x.
 *
 *   steer_bench [N] [CORPUS | ngram:... | llama:M.gguf,threads=1]   (default N = 64)
 * Not a test: it prints a table (docs/cascades.md quotes it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ppl.h"
#include "lm_count.h"
#include "stdlib/lm.h"

/* wall time, or the process's CPU time (part 2: other work on a shared
   machine slows both sides alike) */
static bool cpu_clock;
static double now(void) {
  struct timespec ts;
  clock_gettime(cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *prompt =
    "The old man walked slowly to the shop at the end of the road. The children played in "
    "the garden until it was time for dinner. It rained all night, and in the morning the "
    "streets were wet. We took the train to the city and walked along the river. The teacher "
    "wrote a question on the board and waited for an answer. ";

typedef struct Meas {
  long evals, decoded, drawn;
  double secs;
} Meas;

/* One run of src with engine (and options) on the counting backend. */
static bool run(LmCount *cnt, const char *src, const char *engine, int N, int draws,
                const char *resample, Meas *m) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_lm_backend lb = lm_count_backend(cnt, "counting n-gram");
  ppl_model *mod = NULL;
  ppl_result *r = NULL;
  bool ok = ppl_register_lm(ctx, "", &lb) == PPL_OK &&
            ppl_compile_string(ctx, src, "bench.ppl", &mod) == PPL_OK;
  if (ok) {
    ppl_run_options o;
    ppl_run_options_default(&o);
    o.engine = engine;
    o.chains = 1;
    o.draws = draws;
    o.seed = 5;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", N);
    if (N) ppl_run_set(&o, "particles", buf);
    if (resample) ppl_run_set(&o, "resample", resample);
    LmCount before = *cnt;
    double t0 = now();
    ok = ppl_run(mod, &o, &r) == PPL_OK;
    m->secs = now() - t0;
    m->evals = cnt->evals - before.evals;
    m->decoded = cnt->decoded - before.decoded;
    ppl_run_options_free(&o);
  }
  if (!ok) fprintf(stderr, "steer_bench: %s: %s\n", engine, ppl_errmsg(ctx));
  ppl_result_free(r);
  ppl_context_free(ctx);
  return ok;
}

/* N independent generations of at most T tokens, each from a fresh
 * cursor that decodes the prompt, one eval per token: what sharing saves. */
static bool independent(LmCount *cnt, int N, int T, Meas *m) {
  char err[256];
  /* the counting backend, as LmBackend (ppl.h's struct has the same members
     in the same order: api.c checks it) */
  ppl_lm_backend lb = lm_count_backend(cnt, "counting n-gram");
  LmBackend *b = (LmBackend *)&lb;
  Rng r;
  rng_seed(&r, 5, 0);
  LmCount before = *cnt;
  double t0 = now();
  bool ok = true;
  for (int i = 0; ok && i < N; i++) {
    LmCursor c;
    LmCursor *pc = &c;
    if (!(ok = lm_cursor_init(&c, b, err, sizeof err))) break;
    ok = lm_cursor_seek(&c, prompt, strlen(prompt), err, sizeof err);
    for (int t = 0; ok && t < T; t++) {
      double lz;
      ok = lm_cursor_eval(&pc, 1, err, sizeof err);
      int32_t tok = ok ? lm_sample(c.logp, b->n_vocab, NULL, &r, &lz) : -1;
      if (tok < 0 || tok == b->eos) break;
      ok = lm_cursor_push(&c, tok, err, sizeof err);
    }
    lm_cursor_free(&c);
  }
  m->secs = now() - t0;
  m->evals = cnt->evals - before.evals;
  m->decoded = cnt->decoded - before.decoded;
  if (!ok) fprintf(stderr, "steer_bench: independent: %s\n", err);
  return ok;
}

/* Plain batched sampling: the prompt decoded once and forked into N
 * cursors, then T steps of one eval and one draw each. */
static bool plain(LmCount *cnt, int N, int T, Meas *m) {
  char err[256];
  LmBackend *b = cnt->b;
  LmCursor *cs = calloc((size_t)N, sizeof(LmCursor));
  LmCursor **pc = calloc((size_t)N, sizeof(LmCursor *));
  Rng r;
  rng_seed(&r, 5, 0);
  double t0 = now();
  bool ok = true;
  ok = lm_cursor_init(&cs[0], b, err, sizeof err) &&
       lm_cursor_seek(&cs[0], prompt, strlen(prompt), err, sizeof err);
  pc[0] = &cs[0];
  ok = ok && lm_cursor_eval(pc, 1, err, sizeof err);
  for (int i = 1; ok && i < N; i++) {
    pc[i] = &cs[i];
    ok = lm_cursor_fork(&cs[i], &cs[0], err, sizeof err);
  }
  m->drawn = 0;
  for (int t = 0; ok && t < T; t++) {
    ok = lm_cursor_eval(pc, N, err, sizeof err);
    for (int i = 0; ok && i < N; i++) {
      double lz;
      int32_t tok = lm_sample(cs[i].logp, b->n_vocab, NULL, &r, &lz);
      m->drawn++;
      if (tok == b->eos) tok = 0; /* keep every cursor going: the cost of T tokens */
      ok = lm_cursor_push(&cs[i], tok, err, sizeof err);
    }
  }
  m->secs = now() - t0;
  for (int i = 0; i < N && pc[i]; i++) lm_cursor_free(&cs[i]);
  free(cs);
  free(pc);
  if (!ok) fprintf(stderr, "steer_bench: plain: %s\n", err);
  return ok;
}

int main(int argc, char **argv) {
  int N = argc > 1 ? atoi(argv[1]) : 64;
  const char *corpus = argc > 2 ? argv[2] : "examples/cascades/english.txt";
  char spec[600], err[256];
  if (!strncmp(corpus, "ngram:", 6) || !strncmp(corpus, "llama:", 6))
    snprintf(spec, sizeof spec, "%s", corpus);
  else
    snprintf(spec, sizeof spec, "ngram:%s", corpus);
  LmCount cnt = {0};
  if (!lm_open(spec, &cnt.b, err, sizeof err)) {
    fprintf(stderr, "steer_bench: %s\n", err);
    return 1;
  }
  const int T = 32;
  char src[2048];
  snprintf(src, sizeof src,
           "model {\n  string s ~ lm(\"%s\", max_tokens = %d);\n}\ngenerated {\n"
           "  int n = length(s);\n}\n", prompt, T);
  Meas sh = {0}, ind = {0}, is = {0};
  if (!run(&cnt, src, "steer", N, N, "never", &sh) || !run(&cnt, src, "is", 0, N, NULL, &is) ||
      !independent(&cnt, N, T, &ind))
    return 1;
  size_t P = strlen(prompt);
  printf("1. one lm string (max %d tokens) from a shared prompt of %zu bytes, N = %d\n", T, P, N);
  printf("   %-28s %8s %10s %9s\n", "", "evals", "decoded", "wall s");
  printf("   %-28s %8ld %10ld %9.4f\n", "steer, N particles", sh.evals, sh.decoded, sh.secs);
  printf("   %-28s %8ld %10ld %9.4f\n", "N independent generations", ind.evals, ind.decoded,
         ind.secs);
  printf("   %-28s %8ld %10ld %9.4f\n", "engine is, N draws", is.evals, is.decoded, is.secs);
  printf("   prompt decoded by steer: %s (decoded - generated <= %zu); ratios independent/steer: "
         "decoded %.1fx, evals %.1fx, wall %.1fx\n",
         sh.decoded <= (long)P + (long)N * T ? "once" : "MORE THAN ONCE", P,
         (double)ind.decoded / (double)sh.decoded, (double)ind.evals / (double)sh.evals,
         ind.secs / sh.secs);

  /* 2: the token loop, resampled on a condition per token.  A run's fixed
     costs (setting up the run, the summary's diagnostics, the output) are
     not the tokens': each side is timed at T and at T0 tokens and the
     difference divided by the tokens between, the marginal cost a token. */
  const int T0 = 4, REPS = 7;
  cpu_clock = true;
  Meas st[2] = {{0}}, pl[2] = {{0}};
  /* a run of 64 x 32 tokens is ~15 ms: on a shared machine one measurement
     varies by +-20 %, so each is repeated, the two sides interleaved, and
     the least CPU time of each kept (the run with the least interference) */
  for (int rep = 0; rep < REPS; rep++)
    for (int k = 0; k < 2; k++) {
      int t = k ? T : T0;
      snprintf(src, sizeof src,
               "model {\n  string text = \"\";\n  for (i in 1:%d) {\n"
               "    string tok ~ lm_next(\"%s\" + text);\n"
               "    condition(!contains(tok, \"z\"));\n    text = text + tok;\n  }\n}\n", t, prompt);
      Meas a = {0}, b = {0};
      if (!run(&cnt, src, "steer", N, N, NULL, &a) || !plain(&cnt, N, t, &b)) return 1;
      if (rep == 0 || a.secs < st[k].secs) st[k] = a;
      if (rep == 0 || b.secs < pl[k].secs) pl[k] = b;
    }
  double extra = (double)N * (T - T0);
  double us_st = 1e6 * (st[1].secs - st[0].secs) / extra, us_pl = 1e6 * (pl[1].secs - pl[0].secs) / extra;
  printf("2. %d tokens for each of %d particles (lm_next loop, a condition per token)\n", T, N);
  printf("   whole runs (CPU, least of %d): steer %.4f s, plain batched sampling %.4f s\n", REPS, st[1].secs, pl[1].secs);
  printf("   a token (tokens %d..%d): steer %.2f us, plain %.2f us; steer / plain = %.2fx\n", T0 + 1,
         T, us_st, us_pl, us_st / us_pl);
  lm_close(cnt.b);
  return 0;
}
