/* test_lm_ngram.c — the generic language-model layer (stdlib/lm.c) and the
 * n-gram backend (stdlib/lm_ngram.c): specs and their errors, Kneser-Ney
 * probabilities against a brute-force recomputation of the formula on a
 * tiny corpus, normalisation, forks against recomputation, cursors, scoring
 * and masked sampling.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stdlib/lm.h"
#include "tap.h"

static char err[512];

/* ---- brute-force interpolated Kneser-Ney over padded sequences ---- */

#define BF_BOS 99
enum { BF_MAXSEQ = 16, BF_MAXLEN = 64 };
static int bf_seq[BF_MAXSEQ][BF_MAXLEN], bf_len[BF_MAXSEQ], bf_nseq, bf_N, bf_V;

/* occurrences of g[0..k) ending at an event position (a real token) */
static int bf_count(const int *g, int k) {
  int c = 0;
  for (int s = 0; s < bf_nseq; s++)
    for (int i = bf_N - 1; i < bf_len[s]; i++) {
      if (i - k + 1 < 0) continue;
      int m = 1;
      for (int j = 0; j < k && m; j++) m = bf_seq[s][i - k + 1 + j] == g[j];
      c += m;
    }
  return c;
}

static int bf_adj(const int *g, int k) {
  if (k == bf_N || g[0] == BF_BOS) return bf_count(g, k);
  int x[8], n = 0;
  memcpy(x + 1, g, (size_t)k * sizeof *g);
  for (int v = 0; v <= bf_V; v++) { /* predecessors: every token and bos */
    x[0] = v == bf_V ? BF_BOS : v;
    n += bf_count(x, k + 1) > 0;
  }
  return n;
}

/* D_k from the distinct k-grams seen at event positions */
static double bf_discount(int k) {
  double n1 = 0, n2 = 0;
  int seen[4096][8], ns = 0;
  for (int s = 0; s < bf_nseq; s++)
    for (int i = bf_N - 1; i < bf_len[s]; i++) {
      const int *g = &bf_seq[s][i - k + 1];
      int dup = 0;
      for (int j = 0; j < ns && !dup; j++) dup = !memcmp(seen[j], g, (size_t)k * sizeof *g);
      if (dup) continue;
      memcpy(seen[ns++], g, (size_t)k * sizeof *g);
      int a = bf_adj(g, k);
      n1 += a == 1;
      n2 += a == 2;
    }
  double d = n1 + 2 * n2 > 0 ? n1 / (n1 + 2 * n2) : 0.5;
  return d > 0 && d < 1 ? d : 0.5;
}

/* p(w | h[0..N-1)) */
static double bf_prob(const int *h, int w) {
  double p = 1.0 / bf_V;
  for (int k = 1; k <= bf_N; k++) {
    int g[8];
    memcpy(g, h + (bf_N - 1) - (k - 1), (size_t)(k - 1) * sizeof *g);
    double T = 0, types = 0;
    for (int v = 0; v < bf_V; v++) {
      g[k - 1] = v;
      int a = bf_adj(g, k);
      T += a;
      types += a > 0;
    }
    if (T == 0) continue;
    g[k - 1] = w;
    double a = bf_adj(g, k), D = bf_discount(k);
    p = (a > D ? a - D : 0) / T + D * types / T * p;
  }
  return p;
}

static char *write_tmp(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/ppl_lm_test_XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) return NULL;
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) return NULL;
  close(fd);
  return path;
}

static void test_kn_bruteforce(void) {
  /* vocabulary: '\n' 'a' 'b' 'c' then eos (ids 0..4) */
  const char *corpus = "abab\naab\nbac\n\nab\ncab\n";
  char *path = write_tmp(corpus);
  for (int order = 1; order <= 4; order++) {
    char spec[128];
    snprintf(spec, sizeof spec, "ngram:%s,order=%d", path, order);
    LmBackend *b;
    if (!tap_ok(lm_open(spec, &b, err, sizeof err), "open %s", spec)) {
      tap_diag("%s", err);
      continue;
    }
    tap_ok(b->n_vocab == 5 && b->eos == 4, "order %d: vocabulary '\\n' a b c eos (%d, eos %d)", order,
           b->n_vocab, (int)b->eos);
    bf_N = order;
    bf_V = 5;
    bf_nseq = 0;
    const char *p = corpus;
    while (*p) {
      int n = 0;
      for (int i = 0; i < order - 1; i++) bf_seq[bf_nseq][n++] = BF_BOS;
      for (; *p && *p != '\n'; p++) bf_seq[bf_nseq][n++] = *p - 'a' + 1;
      bf_seq[bf_nseq][n++] = 4;
      bf_len[bf_nseq++] = n;
      if (*p) p++;
    }
    /* every history of up to 3 tokens over a, b, c, eos, '\n', after bos */
    double worst = 0, worst_sum = 0;
    int nh = 0;
    for (int len = 0; len <= 3; len++) {
      int total = 1;
      for (int i = 0; i < len; i++) total *= 5;
      for (int code = 0; code < total; code++) {
        int ctx[3], c = code;
        for (int i = 0; i < len; i++, c /= 5) ctx[i] = c % 5;
        LmState *s = b->start(b->self, err, sizeof err);
        const int32_t t32[3] = {ctx[0], ctx[1], ctx[2]};
        const int32_t *tp = t32;
        float lp[5];
        LmState *const one[1] = {s};
        b->eval(b->self, 1, one, &tp, &len, lp, err, sizeof err);
        int h[8];
        for (int i = 0; i < order - 1; i++) {
          int j = len - (order - 1) + i;
          h[i] = j < 0 ? BF_BOS : ctx[j];
        }
        double sum = 0;
        for (int w = 0; w < 5; w++) {
          double want = bf_prob(h, w);
          LmState *f = b->fork(b->self, s, err, sizeof err);
          double got = 0;
          const int32_t tw = w;
          b->score(b->self, f, &tw, 1, &got, err, sizeof err);
          b->release(b->self, f);
          sum += exp(got);
          double e = fabs(got - log(want));
          if (e > worst) worst = e;
          e = fabs(lp[w] - log(want));
          if (e > 1e-6 * fabs(log(want)) + 1e-7) worst = fmax(worst, 1);
        }
        worst_sum = fmax(worst_sum, fabs(sum - 1));
        b->release(b->self, s);
        nh++;
      }
    }
    tap_ok(worst < 1e-12, "order %d: KN probabilities of %d histories = brute force (worst |dlog| %g)",
           order, nh, worst);
    tap_ok(worst_sum < 1e-9, "order %d: every next-token distribution sums to 1 (worst %g)", order,
           worst_sum);
    lm_close(b);
  }
  unlink(path);
}

static const char *CORPUS;

static void test_open_errors(void) {
  LmBackend *b = NULL;
  tap_ok(!lm_open("gpt:foo", &b, err, sizeof err) && b == NULL, "unknown kind refused");
  tap_streq(err, "--lm gpt:foo: unknown language model (expected ngram:FILE[,order=N] or llama:FILE.gguf)",
            "unknown kind: message");
  tap_ok(!lm_open("corpus.txt", &b, err, sizeof err), "no prefix refused");
  tap_ok(!lm_open("ngram:/nonexistent/corpus.txt", &b, err, sizeof err), "missing corpus refused");
  tap_streq(err, "--lm ngram:/nonexistent/corpus.txt: cannot open /nonexistent/corpus.txt: No such file or directory",
            "missing corpus: message");
  char spec[512];
  snprintf(spec, sizeof spec, "ngram:%s,order=9", CORPUS);
  tap_ok(!lm_open(spec, &b, err, sizeof err) && strstr(err, "order must be an integer in 1..6, got '9'"),
         "order=9 refused: %s", err);
  snprintf(spec, sizeof spec, "ngram:%s,smooth=2", CORPUS);
  tap_ok(!lm_open(spec, &b, err, sizeof err) && strstr(err, "unknown option 'smooth' (ngram takes order=N)"),
         "unknown option refused: %s", err);
  tap_ok(!lm_open("ngram:", &b, err, sizeof err) && strstr(err, "no file given"), "no file: %s", err);
  char *empty = write_tmp("");
  snprintf(spec, sizeof spec, "ngram:%s", empty);
  tap_ok(!lm_open(spec, &b, err, sizeof err) && strstr(err, "is empty"), "empty corpus: %s", err);
  unlink(empty);
}

static void test_tokens(LmBackend *b) {
  const char *s = "The cat sat on the mat.";
  int32_t toks[64];
  int n = b->tokenize(b->self, s, strlen(s), toks, 64, err, sizeof err);
  tap_ok(n == (int)strlen(s), "one token a byte (%d)", n);
  char back[64];
  int m = 0;
  for (int i = 0; i < n; i++) m += b->token_text(b->self, toks[i], back + m, 64 - m);
  back[m] = 0;
  tap_streq(back, s, "tokenize / token_text round trip");
  tap_ok(b->token_text(b->self, b->eos, back, 64) == 0, "eos has no text");
  tap_ok(b->token_text(b->self, b->n_vocab, back, 64) == -1, "token past the vocabulary: -1");
  int k = b->tokenize(b->self, s, strlen(s), toks, 3, err, sizeof err);
  tap_ok(k == n, "too little room: the count is still returned (%d)", k);
  tap_ok(b->tokenize(b->self, "a\x01", 2, toks, 64, err, sizeof err) == -1 &&
             strstr(err, "no token for byte 0x01"),
         "a byte the corpus never uses: %s", err);
}

/* feeding a context at once, token by token, or through a fork gives the
   same next-token vector */
static void test_fork(LmBackend *b) {
  const char *ctx = "the dog ran", *tail1 = " to", *tail2 = ", and";
  int32_t t[64], t1[8], t2[8];
  int n = b->tokenize(b->self, ctx, strlen(ctx), t, 64, err, sizeof err);
  int n1 = b->tokenize(b->self, tail1, strlen(tail1), t1, 8, err, sizeof err);
  int n2 = b->tokenize(b->self, tail2, strlen(tail2), t2, 8, err, sizeof err);
  int V = b->n_vocab;
  float *a = malloc(sizeof(float) * (size_t)V * 4), *c = a + 2 * V;
  LmState *s = b->start(b->self, err, sizeof err);
  const int32_t *tp = t;
  LmState *one[2] = {s};
  b->eval(b->self, 1, one, &tp, &n, a, err, sizeof err);
  LmState *f = b->fork(b->self, s, err, sizeof err);
  one[0] = s;
  one[1] = f;
  const int32_t *tt[2] = {t1, t2};
  int nn[2] = {n1, n2};
  b->eval(b->self, 2, one, tt, nn, a, err, sizeof err);
  /* fresh states fed the whole contexts */
  int32_t w1[80], w2[80];
  memcpy(w1, t, sizeof(int32_t) * (size_t)n);
  memcpy(w1 + n, t1, sizeof(int32_t) * (size_t)n1);
  memcpy(w2, t, sizeof(int32_t) * (size_t)n);
  memcpy(w2 + n, t2, sizeof(int32_t) * (size_t)n2);
  LmState *r1 = b->start(b->self, err, sizeof err), *r2 = b->start(b->self, err, sizeof err);
  LmState *rr[2] = {r1, r2};
  const int32_t *ww[2] = {w1, w2};
  int wn[2] = {n + n1, n + n2};
  b->eval(b->self, 2, rr, ww, wn, c, err, sizeof err);
  int same = 1, differ = 0;
  for (int i = 0; i < 2 * V; i++) same &= a[i] == c[i];
  for (int i = 0; i < V; i++) differ |= a[i] != a[V + i];
  tap_ok(same, "forked states = fresh states fed the whole contexts");
  tap_ok(differ, "the two forks' contexts differ in their next-token vectors");
  b->release(b->self, s);
  b->release(b->self, f);
  b->release(b->self, r1);
  b->release(b->self, r2);
  free(a);
}

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static void test_cursor(LmBackend *b) {
  int V = b->n_vocab;
  LmCursor c, d, e;
  tap_ok(lm_cursor_init(&c, b, err, sizeof err), "cursor init");
  tap_ok(lm_cursor_seek(&c, "the cat", 7, err, sizeof err) && c.npend == 7 && !c.fresh,
         "seek queues the whole context");
  LmCursor *cs[3] = {&c};
  tap_ok(lm_cursor_eval(cs, 1, err, sizeof err) && c.fresh && c.npend == 0, "eval");
  tap_ok(lm_cursor_seek(&c, "the cat sat", 11, err, sizeof err) && c.npend == 4,
         "seek to an extension queues only the new part (%d)", c.npend);
  tap_ok(lm_cursor_fork(&d, &c, err, sizeof err) && d.npend == 4 && !strcmp(d.text, "the cat sat"),
         "fork copies text and pending tokens");
  int32_t on;
  b->tokenize(b->self, " ", 1, &on, 1, err, sizeof err);
  lm_cursor_push(&d, on, err, sizeof err);
  tap_streq(d.text, "the cat sat ", "push appends the token's text");
  tap_ok(lm_cursor_init(&e, b, err, sizeof err) && lm_cursor_seek(&e, "the cat sat ", 12, err, sizeof err),
         "a third cursor fed the same text at once");
  cs[1] = &d;
  cs[2] = &e;
  /* the hash steer groups contexts by: the same for the same text, however
     it was reached (pushed after a fork, fed at once) */
  tap_ok(d.hash == e.hash && d.hash != c.hash && c.hash == fnv(c.text),
         "the cursors' text hashes: pushed + forked = fed at once = FNV-1a of the text");
  tap_ok(lm_cursor_eval(cs, 3, err, sizeof err), "one batched eval of three cursors");
  tap_ok(!memcmp(d.logp, e.logp, sizeof(float) * (size_t)V), "forked + pushed cursor = fresh cursor");
  tap_ok(memcmp(c.logp, d.logp, sizeof(float) * (size_t)V) != 0, "the fork's parent kept its own context");
  /* a context that does not extend the text starts afresh */
  tap_ok(lm_cursor_seek(&d, "a dog", 5, err, sizeof err) && d.npend == 5 && !strcmp(d.text, "a dog"),
         "seek elsewhere restarts");
  LmCursor f;
  lm_cursor_init(&f, b, err, sizeof err);
  lm_cursor_seek(&f, "a dog", 5, err, sizeof err);
  cs[0] = &d;
  cs[1] = &f;
  lm_cursor_eval(cs, 2, err, sizeof err);
  tap_ok(!memcmp(d.logp, f.logp, sizeof(float) * (size_t)V) && d.hash == f.hash &&
             d.hash == fnv("a dog"),
         "restarted cursor = new cursor (its logp and hash)");
  tap_ok(!lm_cursor_seek(&f, "a \x02", 3, err, sizeof err), "seek to untokenisable text fails: %s", err);
  lm_cursor_free(&c);
  lm_cursor_free(&d);
  lm_cursor_free(&e);
  lm_cursor_free(&f);
}

/* lm_score through the backend's score and through the eval loop agree */
static void test_score(LmBackend *b) {
  int32_t t[32];
  int n = b->tokenize(b->self, "she said yes", 12, t, 32, err, sizeof err);
  LmState *s1 = b->start(b->self, err, sizeof err), *s2 = b->start(b->self, err, sizeof err);
  double l1 = 0, l2 = 0;
  tap_ok(lm_score(b, s1, t, n, &l1, err, sizeof err), "lm_score (the backend's score)");
  LmBackend nb = *b;
  nb.score = NULL;
  tap_ok(lm_score(&nb, s2, t, n, &l2, err, sizeof err), "lm_score (eval loop)");
  tap_near(l2, l1, 1e-5, "the two agree to float precision (%g, %g)", l1, l2);
  tap_ok(l1 < 0 && l1 > -60, "a plausible log-probability (%g)", l1);
  /* both states now hold the text: their next-token vectors agree */
  float *a = malloc(sizeof(float) * (size_t)b->n_vocab * 2);
  LmState *ss[2] = {s1, s2};
  const int32_t *tp[2] = {t, t};
  int z[2] = {0, 0};
  b->eval(b->self, 2, ss, tp, z, a, err, sizeof err);
  tap_ok(!memcmp(a, a + b->n_vocab, sizeof(float) * (size_t)b->n_vocab), "lm_score appended the tokens");
  int32_t bad = b->n_vocab + 3;
  tap_ok(!lm_score(b, s1, &bad, 1, &l1, err, sizeof err) && strstr(err, "not in the vocabulary"),
         "a token outside the vocabulary: %s", err);
  free(a);
  b->release(b->self, s1);
  b->release(b->self, s2);
}

static void test_sample(void) {
  float lp[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
  Rng r;
  rng_seed(&r, 7, 0);
  int cnt[4] = {0};
  int N = 200000;
  double lz = 1;
  for (int i = 0; i < N; i++) cnt[lm_sample(lp, 4, NULL, &r, &lz)]++;
  tap_ok(lz == 0, "no mask: logz = 0");
  for (int k = 0; k < 4; k++) {
    double p = 0.1 * (k + 1), se = sqrt(p * (1 - p) / N);
    tap_ok(fabs(cnt[k] / (double)N - p) < 4 * se, "token %d drawn with frequency %g (p %g, 4 se %g)", k,
           cnt[k] / (double)N, p, 4 * se);
  }
  uint8_t allow[4] = {1, 0, 1, 0};
  memset(cnt, 0, sizeof cnt);
  for (int i = 0; i < N; i++) cnt[lm_sample(lp, 4, allow, &r, &lz)]++;
  tap_near(lz, log(0.4), 1e-6, "mask: logz = log of the allowed mass");
  tap_ok(cnt[1] == 0 && cnt[3] == 0, "masked tokens never drawn");
  double se = sqrt(0.25 * 0.75 / N);
  tap_ok(fabs(cnt[0] / (double)N - 0.25) < 4 * se, "renormalised: token 0 with frequency %g (0.25)",
         cnt[0] / (double)N);
  uint8_t none[4] = {0};
  tap_ok(lm_sample(lp, 4, none, &r, &lz) == -1 && isinf(lz) && lz < 0, "nothing allowed: -1, logz -inf");
  float zero[4] = {-INFINITY, logf(1.0f), -INFINITY, -INFINITY};
  uint8_t a2[4] = {1, 0, 1, 1};
  tap_ok(lm_sample(zero, 4, a2, &r, &lz) == -1, "allowed tokens all of probability 0: -1");
  Rng r1, r2;
  rng_seed(&r1, 3, 1);
  rng_seed(&r2, 3, 1);
  int same = 1;
  for (int i = 0; i < 100; i++) same &= lm_sample(lp, 4, NULL, &r1, NULL) == lm_sample(lp, 4, NULL, &r2, NULL);
  tap_ok(same, "deterministic for a seed");
}

static void test_set(LmBackend *b) {
  const char *names[2] = {"", "small"};
  LmBackend *bs[2] = {b, NULL};
  LmSet s = {2, names, bs};
  tap_ok(lm_set_find(&s, NULL) == b && lm_set_find(&s, "") == b, "the default backend");
  tap_ok(lm_set_find(&s, "big") == NULL && lm_set_find(NULL, "") == NULL, "unknown names: NULL");
}

/* lm_utf8_valid: well-formed text, and each malformed kind at its offset */
static void test_utf8(void) {
  static const struct { const char *s; size_t bad; } cases[] = {
      {"plain ascii", (size_t)-1},         {"na\xc3\xafve \xe2\x82\xac \xf0\x9f\x98\x80", (size_t)-1},
      {"ab\x80", 2},                      {"a\xc0\xaf", 1},          /* continuation alone; overlong */
      {"\xe0\x80\xaf", 0},               {"x\xed\xa0\x80", 1},     /* overlong 3-byte; surrogate */
      {"\xf4\x90\x80\x80", 0},           {"ok\xe2\x82", 2},         /* past U+10FFFF; cut short */
  };
  int good = 0;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    size_t bad = (size_t)-1;
    bool v = lm_utf8_valid(cases[k].s, strlen(cases[k].s), &bad);
    good += v == (cases[k].bad == (size_t)-1) && (v || bad == cases[k].bad);
  }
  tap_ok(good == 8, "lm_utf8_valid: 2 well-formed texts and 6 malformed kinds at their offsets (%d of 8)", good);
}

int main(int argc, char **argv) {
  CORPUS = argc > 1 ? argv[1] : "examples/cascades/english.txt";
  test_utf8();
  test_kn_bruteforce();
  test_open_errors();
  char spec[512];
  snprintf(spec, sizeof spec, "ngram:%s", CORPUS);
  LmBackend *b;
  if (!tap_ok(lm_open(spec, &b, err, sizeof err), "open %s", spec)) {
    tap_diag("%s", err);
    return tap_done();
  }
  tap_ok(!strcmp(b->name, spec), "the backend is named by its spec");
  test_tokens(b);
  test_fork(b);
  test_cursor(b);
  test_score(b);
  test_set(b);
  lm_close(b);
  test_sample();
  return tap_done();
}
