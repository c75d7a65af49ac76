/* test_lm_llama.c — the llama.cpp backend (stdlib/lm_llama.c) on the tiny
 * GGUF model that tiny_gguf.c writes: loading, tokenizing, normalised
 * next-token vectors, KV forking against recomputation from scratch,
 * batched against one-by-one evaluation, scoring, sequence bookkeeping and
 * errors.  Skips (TAP "1..0 # SKIP") where libllama is not installed
 * (scripts/install-llama.sh).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stdlib/lm.h"
#include "stdlib/lm_llama.h"
#include "tap.h"
#include "tiny_gguf.h"

static char err[1024];
static int V;

static double maxdiff(const float *a, const float *b, int n) {
  double m = 0;
  for (int i = 0; i < n; i++) {
    if (isinf(a[i]) || isinf(b[i])) {
      if (a[i] != b[i]) return INFINITY;
      continue;
    }
    m = fmax(m, fabs((double)a[i] - b[i]));
  }
  return m;
}

/* a fresh state fed text; its next-token vector into out */
static void recompute(LmBackend *b, const char *text, float *out) {
  int32_t t[256];
  int n = b->tokenize(b->self, text, strlen(text), t, 256, err, sizeof err);
  LmState *s = b->start(b->self, err, sizeof err);
  const int32_t *tp = t;
  b->eval(b->self, 1, &s, &tp, &n, out, err, sizeof err);
  b->release(b->self, s);
}

static void test_tokens(LmBackend *b) {
  const char *s = "Hello, world!\nna\xc3\xafve  tabs\there";
  int32_t t[64];
  int n = b->tokenize(b->self, s, strlen(s), t, 64, err, sizeof err);
  tap_ok(n == (int)strlen(s), "byte-level vocabulary: one token a byte (%d for %zu)", n, strlen(s));
  char back[128];
  int m = 0;
  for (int i = 0; i < n && n > 0; i++) m += b->token_text(b->self, t[i], back + m, 128 - m);
  back[m > 0 ? m : 0] = 0;
  tap_streq(back, s, "tokenize / token_text round trip (UTF-8, newline, tab)");
  tap_ok(b->tokenize(b->self, s, strlen(s), t, 3, err, sizeof err) == n, "too little room: the count");
  tap_ok(b->token_text(b->self, b->eos, back, 8) == 0, "eos has no text");
  tap_ok(b->token_text(b->self, TINY_BOS, back, 8) == 0, "bos (a control token) has no text");
  tap_ok(b->token_text(b->self, V, back, 8) == -1, "a token past the vocabulary: -1");
  /* llama.cpp's tokenizer throws (ending the process) on malformed UTF-8,
     which a context built from byte tokens holds: the malformed bytes are
     the vocabulary's byte tokens, the well-formed runs llama.cpp's */
  const char *mal = "A \xda\x41\xc3\xa9\xe2\x82";
  int nm = b->tokenize(b->self, mal, 8, t, 64, err, sizeof err);
  m = 0;
  for (int i = 0; i < nm; i++) m += b->token_text(b->self, t[i], back + m, 128 - m);
  tap_ok(nm == 8 && m == 8 && !memcmp(back, mal, 8),
         "malformed UTF-8: one byte token each, round trip (%d tokens: %s)", nm, nm < 0 ? err : "");
  tap_ok(b->tokenize(b->self, mal, 8, t, 3, err, sizeof err) == 8 &&
             b->tokenize(b->self, mal, 8, NULL, 0, err, sizeof err) == 8,
         "malformed UTF-8, too little room: the count");
}

static void test_eval(LmBackend *b) {
  float *lp = malloc(sizeof(float) * (size_t)V);
  LmState *s = b->start(b->self, err, sizeof err);
  int zero = 0;
  const int32_t *none = NULL;
  tap_ok(b->eval(b->self, 1, &s, &none, &zero, lp, err, sizeof err) == 0, "eval of the empty context (BOS)");
  double z = 0;
  for (int v = 0; v < V; v++) z += exp((double)lp[v]);
  tap_near(z, 1, 1e-5, "next-token probabilities sum to 1 (%.9f)", z);
  tap_ok(isinf(lp[TINY_BOS]) && lp[TINY_BOS] < 0, "the control token bos has probability 0");
  tap_ok(isfinite(lp[TINY_EOS]), "eos keeps its probability (%g)", lp[TINY_EOS]);
  double mx = -INFINITY, mn = INFINITY;
  for (int v = 0; v < 256; v++) mx = fmax(mx, lp[v]), mn = fmin(mn, lp[v]);
  tap_ok(mx - mn > 0.5, "the random model is not uniform (log-probabilities span %g)", mx - mn);
  b->release(b->self, s);
  free(lp);
}

/* forks fed different tokens = fresh states fed their whole contexts;
   also a fork of a fork whose parent is released (resampling) */
static void test_fork(LmBackend *b) {
  const char *prompt = "Once upon a time";
  const char *tails[4] = {" there", " a cat", "", ", in a land far away"};
  int32_t pt[64];
  int np = b->tokenize(b->self, prompt, strlen(prompt), pt, 64, err, sizeof err);
  float *a = malloc(sizeof(float) * (size_t)V * 4), *r = malloc(sizeof(float) * (size_t)V);
  LmState *p = b->start(b->self, err, sizeof err);
  const int32_t *tp = pt;
  b->eval(b->self, 1, &p, &tp, &np, a, err, sizeof err);
  LmState *f[4];
  int32_t tt[4][64];
  const int32_t *tq[4];
  int nt[4];
  for (int i = 0; i < 4; i++) {
    f[i] = i == 0 ? p : b->fork(b->self, p, err, sizeof err);
    nt[i] = b->tokenize(b->self, tails[i], strlen(tails[i]), tt[i], 64, err, sizeof err);
    tq[i] = tt[i];
  }
  tap_ok(b->eval(b->self, 4, f, tq, nt, a, err, sizeof err) == 0, "one batched eval of the parent and three forks");
  double worst = 0;
  for (int i = 0; i < 4; i++) {
    char full[128];
    snprintf(full, sizeof full, "%s%s", prompt, tails[i]);
    recompute(b, full, r);
    worst = fmax(worst, maxdiff(a + (size_t)i * (size_t)V, r, V));
  }
  tap_ok(worst < 1e-5, "each fork's next-token log-probabilities = recomputation from scratch (worst %g)", worst);
  /* resampling: fork the second fork twice, release it and the parent, go on */
  LmState *g[2] = {b->fork(b->self, f[1], err, sizeof err), b->fork(b->self, f[1], err, sizeof err)};
  b->release(b->self, f[1]);
  b->release(b->self, f[0]);
  const char *more[2] = {" sat", " ran away"};
  for (int i = 0; i < 2; i++) {
    nt[i] = b->tokenize(b->self, more[i], strlen(more[i]), tt[i], 64, err, sizeof err);
    tq[i] = tt[i];
  }
  b->eval(b->self, 2, g, tq, nt, a, err, sizeof err);
  worst = 0;
  for (int i = 0; i < 2; i++) {
    char full[128];
    snprintf(full, sizeof full, "%s%s%s", prompt, tails[1], more[i]);
    recompute(b, full, r);
    worst = fmax(worst, maxdiff(a + (size_t)i * (size_t)V, r, V));
  }
  tap_ok(worst < 1e-5, "forks of a released fork = recomputation (worst %g)", worst);
  b->release(b->self, g[0]);
  b->release(b->self, g[1]);
  b->release(b->self, f[2]);
  b->release(b->self, f[3]);
  free(a);
  free(r);
}

/* several states in one eval = each on its own */
static void test_batched(LmBackend *b) {
  const char *texts[5] = {"a", "bb bb", "The quick brown fox", "x", "jumps over the lazy dog"};
  float *a = malloc(sizeof(float) * (size_t)V * 5), *r = malloc(sizeof(float) * (size_t)V);
  LmState *s[5];
  int32_t t[5][64];
  const int32_t *tp[5];
  int n[5];
  for (int i = 0; i < 5; i++) {
    s[i] = b->start(b->self, err, sizeof err);
    n[i] = b->tokenize(b->self, texts[i], strlen(texts[i]), t[i], 64, err, sizeof err);
    tp[i] = t[i];
  }
  tap_ok(b->eval(b->self, 5, s, tp, n, a, err, sizeof err) == 0, "batched eval of 5 states");
  double worst = 0;
  for (int i = 0; i < 5; i++) {
    recompute(b, texts[i], r);
    worst = fmax(worst, maxdiff(a + (size_t)i * (size_t)V, r, V));
  }
  tap_ok(worst < 1e-5, "batched eval = one-by-one eval (worst %g)", worst);
  /* a second step with one token each, and one state with none */
  int32_t one[5] = {'!', ' ', '.', 'y', '\n'};
  for (int i = 0; i < 5; i++) {
    tp[i] = &one[i];
    n[i] = i != 2;
  }
  b->eval(b->self, 5, s, tp, n, a, err, sizeof err);
  worst = 0;
  for (int i = 0; i < 5; i++) {
    char full[128];
    snprintf(full, sizeof full, "%s%s", texts[i], i != 2 ? (char[]){(char)one[i], 0} : "");
    recompute(b, full, r);
    worst = fmax(worst, maxdiff(a + (size_t)i * (size_t)V, r, V));
  }
  tap_ok(worst < 1e-5, "the next step, one token each (one state with none) = recomputation (worst %g)", worst);
  for (int i = 0; i < 5; i++) b->release(b->self, s[i]);
  free(a);
  free(r);
}

static void test_score(LmBackend *b) {
  const char *ctx = "Hello", *x = " there, friend";
  int32_t c[32], t[32];
  int nc = b->tokenize(b->self, ctx, strlen(ctx), c, 32, err, sizeof err);
  int nx = b->tokenize(b->self, x, strlen(x), t, 32, err, sizeof err);
  LmState *s1 = b->start(b->self, err, sizeof err), *s2 = b->start(b->self, err, sizeof err);
  double l1 = 0, l2 = 0;
  const int32_t *cp = c;
  float *lp = malloc(sizeof(float) * (size_t)V);
  b->eval(b->self, 1, &s1, &cp, &nc, lp, err, sizeof err);
  tap_ok(lm_score(b, s1, t, nx, &l1, err, sizeof err), "lm_score (the backend's one-decode score)");
  LmBackend nb = *b;
  nb.score = NULL;
  b->eval(b->self, 1, &s2, &cp, &nc, lp, err, sizeof err);
  tap_ok(lm_score(&nb, s2, t, nx, &l2, err, sizeof err), "lm_score (eval loop)");
  tap_near(l1, l2, 1e-4, "the two agree (%g, %g)", l1, l2);
  /* score from the empty context too: BOS goes first */
  LmState *s3 = b->start(b->self, err, sizeof err);
  double l3 = 0;
  int32_t all[64];
  memcpy(all, c, sizeof(int32_t) * (size_t)nc);
  memcpy(all + nc, t, sizeof(int32_t) * (size_t)nx);
  tap_ok(lm_score(b, s3, all, nc + nx, &l3, err, sizeof err), "score from the empty context");
  double lc = 0;
  LmState *s4 = b->start(b->self, err, sizeof err);
  lm_score(b, s4, c, nc, &lc, err, sizeof err);
  tap_near(l3, lc + l1, 1e-4, "chain rule: log p(ctx x) = log p(ctx) + log p(x | ctx) (%g, %g)", l3, lc + l1);
  float *a = malloc(sizeof(float) * (size_t)V * 2);
  LmState *ss[2] = {s1, s3};
  const int32_t *z[2] = {t, t};
  int nz[2] = {0, 0};
  b->eval(b->self, 2, ss, z, nz, a, err, sizeof err);
  tap_ok(maxdiff(a, a + V, V) < 1e-5, "after scoring, the state holds the scored text");
  b->release(b->self, s1);
  b->release(b->self, s2);
  b->release(b->self, s3);
  b->release(b->self, s4);
  free(lp);
  free(a);
}

static void test_cursor(LmBackend *b) {
  LmCursor c, d, e;
  lm_cursor_init(&c, b, err, sizeof err);
  lm_cursor_seek(&c, "Q: 2+2? A:", 10, err, sizeof err);
  LmCursor *cs[2] = {&c};
  tap_ok(lm_cursor_eval(cs, 1, err, sizeof err), "cursor eval: %s", err);
  lm_cursor_fork(&d, &c, err, sizeof err);
  lm_cursor_push(&d, ' ', err, sizeof err);
  lm_cursor_push(&d, '4', err, sizeof err);
  lm_cursor_init(&e, b, err, sizeof err);
  lm_cursor_seek(&e, d.text, d.len, err, sizeof err);
  cs[0] = &d;
  cs[1] = &e;
  tap_ok(lm_cursor_eval(cs, 2, err, sizeof err), "batched cursor eval");
  tap_streq(d.text, "Q: 2+2? A: 4", "the pushed tokens' text");
  tap_ok(maxdiff(d.logp, e.logp, V) < 1e-5, "forked cursor = fresh cursor on the same text");
  lm_cursor_free(&c);
  lm_cursor_free(&d);
  lm_cursor_free(&e);
}

static void test_states(const char *model) {
  char spec[700];
  snprintf(spec, sizeof spec, "llama:%s,states=3,ctx=64,threads=1", model);
  LmBackend *b;
  if (!tap_ok(lm_open(spec, &b, err, sizeof err), "open with states=3, ctx=64: %s", err)) return;
  LmState *s[3];
  for (int i = 0; i < 3; i++) s[i] = b->start(b->self, err, sizeof err);
  tap_ok(s[2] && !b->start(b->self, err, sizeof err) && strstr(err, "all 3 llama.cpp sequences are in use"),
         "a fourth state is refused: %s", err);
  b->release(b->self, s[1]);
  s[1] = b->fork(b->self, s[0], err, sizeof err);
  tap_ok(s[1] != NULL, "a released sequence is reused");
  /* more tokens than the context holds */
  int32_t t[600]; /* llama.cpp rounds the context up to a multiple of 256 */
  for (int i = 0; i < 600; i++) t[i] = 'a' + i % 26;
  int n = 600;
  const int32_t *tp = t;
  float *lp = malloc(sizeof(float) * (size_t)V);
  tap_ok(b->eval(b->self, 1, &s[2], &tp, &n, lp, err, sizeof err) != 0 && strstr(err, "context is full"),
         "a context overflow is an error: %s", err);
  free(lp);
  for (int i = 0; i < 2; i++) b->release(b->self, s[i]);
  b->release(b->self, s[2]);
  lm_close(b);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  char dir[] = "/tmp/ppl_llama_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char model[600], spec[800];
  snprintf(model, sizeof model, "%s/tiny.gguf", dir);
  if (!tiny_gguf_write(model, 42, err, sizeof err)) {
    printf("Bail out! %s\n", err);
    return 1;
  }
  /* 16 states; one thread: on a loaded machine llama.cpp's spinning workers cost ~100x */
  snprintf(spec, sizeof spec, "llama:%s,states=16,threads=1", model);
  LmBackend *b;
  if (!lm_open(spec, &b, err, sizeof err)) {
    unlink(model);
    rmdir(dir);
    if (strstr(err, "libllama not found")) {
      printf("1..0 # SKIP %s\n", err);
      return 0;
    }
    printf("not ok 1 - open the tiny model: %s\n1..1\n", err);
    return 1;
  }
  V = b->n_vocab;
  tap_ok(V == TINY_VOCAB && b->eos == TINY_EOS, "the tiny model: %d tokens, eos %d", V, (int)b->eos);
  /* the default threads: the processors the load leaves idle, 1..8 */
  tap_ok(lm_llama_default_threads(2, 12.5) == 1 && lm_llama_default_threads(2, 0.3) == 2 &&
             lm_llama_default_threads(4, 1.4) == 3 && lm_llama_default_threads(4, 1.6) == 2 &&
             lm_llama_default_threads(16, 0) == 8 && lm_llama_default_threads(1, 0) == 1 &&
             lm_llama_default_threads(0, 0) == 1,
         "default threads: idle processors (2 at load 12.5: 1; 4 at load 1.4: 3; 16 idle: 8)");
  test_tokens(b);
  test_eval(b);
  test_fork(b);
  test_batched(b);
  test_score(b);
  test_cursor(b);
  lm_close(b);
  test_states(model);
  LmBackend *x;
  tap_ok(!lm_open("llama:/nonexistent/m.gguf", &x, err, sizeof err) &&
             !strcmp(err, "--lm llama:/nonexistent/m.gguf: cannot open /nonexistent/m.gguf: No such file or directory"),
         "a missing model file: %s", err);
  char bad[650];
  snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
  FILE *f = fopen(bad, "wb");
  fputs("this is not a gguf file at all, just text", f);
  fclose(f);
  snprintf(spec, sizeof spec, "llama:%s", bad);
  tap_ok(!lm_open(spec, &x, err, sizeof err) && strstr(err, "llama.cpp could not load"), "a file that is not GGUF: %s", err);
  snprintf(spec, sizeof spec, "llama:%s,states=0", model);
  tap_ok(!lm_open(spec, &x, err, sizeof err) && strstr(err, "states must be an integer in 1..256"), "states=0: %s", err);
  unlink(bad);
  unlink(model);
  rmdir(dir);
  return tap_done();
}
