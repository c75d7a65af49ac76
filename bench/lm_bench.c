/* lm_bench.c — tokens per second of the language-model backends through
 * ppl's LmBackend, against llama.cpp's own batch decoding called directly.
 *
 *   lm_bench [-n STATES] [-s STEPS] [-t THREADS] [-c CORPUS] [MODEL.gguf]
 *       (default: 16 states, 64 steps, one thread, the tiny test model that
 *        tests/lm/tiny_gguf.c writes, examples/cascades/english.txt)
 *
 * Each step advances every state by one token in one batch: through ppl,
 * one LmBackend eval (llama_decode, then each state's log-softmax in
 * double); directly, one llama_decode of the same batch (same tokens,
 * positions and sequences, logits at every state's token) and a read of
 * each row of logits.  Both start from BOS in every sequence; the first
 * step is not timed.  Then the n-gram backend's tokens/s with the same
 * shapes.  The ratio ppl / direct is the figure (target: within 10 %).
 *
 * Not a test: it prints a table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stdlib/lm.h"
#include "stdlib/lm_llama.h"
#include "tiny_gguf.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* the token state i is fed at step t: bytes of a fixed text */
static int32_t tok_at(int i, int t) {
  static const char text[] = "the quick brown fox jumps over the lazy dog and runs to the river ";
  return (unsigned char)text[(7 * i + t) % (int)(sizeof text - 1)];
}

/* tokens/s of a backend: n states, steps one-token evals (the first untimed) */
static double through_ppl(LmBackend *b, int n, int steps, bool byte_ids, char *err, size_t errsz) {
  LmState **st = calloc((size_t)n, sizeof *st);
  int32_t *tk = malloc((size_t)n * sizeof *tk);
  const int32_t **tp = malloc((size_t)n * sizeof *tp);
  int *nt = malloc((size_t)n * sizeof *nt);
  float *lp = malloc((size_t)n * (size_t)b->n_vocab * sizeof *lp);
  double t0 = 0, rate = -1;
  for (int i = 0; i < n; i++)
    if (!(st[i] = b->start(b->self, err, errsz))) goto done;
  for (int t = 0; t <= steps; t++) {
    if (t == 1) t0 = now();
    for (int i = 0; i < n; i++) {
      int32_t c = tok_at(i, t);
      if (!byte_ids) b->tokenize(b->self, (char[]){(char)c}, 1, &c, 1, err, errsz);
      tk[i] = c;
      tp[i] = &tk[i];
      nt[i] = 1;
    }
    if (b->eval(b->self, n, st, tp, nt, lp, err, errsz) != 0) goto done;
  }
  rate = (double)n * steps / (now() - t0);
done:
  for (int i = 0; i < n; i++)
    if (st[i]) b->release(b->self, st[i]);
  free(st);
  free(tk);
  free(tp);
  free(nt);
  free(lp);
  return rate;
}

static double direct(const char *model, int n, int steps, int threads, char *err, size_t errsz) {
  LlamaApi a;
  if (!lm_llama_load(&a, err, errsz)) return -1;
  void *m = a.model_load_from_file(model, a.model_default_params());
  LlamaParams cp;
  if (!m || !lm_llama_context_params(&a, &cp, 4096, (uint32_t)n, err, errsz)) return -1;
  void *ctx = a.init_from_model(m, cp);
  if (!ctx) return -1;
  a.set_n_threads(ctx, threads, threads);
  const void *vocab = a.model_get_vocab(m);
  int32_t bos = a.vocab_bos(vocab), nv = a.vocab_n_tokens(vocab);
  LlamaBatch bt = a.batch_init(2 * n, 0, 1);
  double t0 = 0, sum = 0;
  /* step 0, untimed: BOS and the first token of every sequence (as the
     first eval through ppl); then one token each */
  for (int t = 0; t <= steps; t++) {
    if (t == 1) t0 = now();
    bt.n_tokens = 0;
    for (int i = 0; i < n; i++)
      for (int j = t == 0 ? 0 : 1; j < 2; j++) {
        int32_t c = tok_at(i, t);
        if (j == 1) a.tokenize(vocab, (char[]){(char)c}, 1, &c, 1, false, false);
        int k = bt.n_tokens++;
        bt.token[k] = j == 0 ? bos : c;
        bt.pos[k] = j == 0 ? 0 : t + 1;
        bt.n_seq_id[k] = 1;
        bt.seq_id[k][0] = i;
        bt.logits[k] = j == 1;
      }
    if (a.decode(ctx, bt) != 0) {
      snprintf(err, errsz, "llama_decode failed");
      return -1;
    }
    for (int k = 0; k < bt.n_tokens; k++)
      if (bt.logits[k]) sum += a.get_logits_ith(ctx, k)[nv - 1];
  }
  double rate = (double)n * steps / (now() - t0);
  (void)sum;
  a.batch_free(bt);
  a.free(ctx);
  a.model_free(m);
  return rate;
}

int main(int argc, char **argv) {
  int n = 16, steps = 64, threads = 1, opt;
  const char *corpus = "examples/cascades/english.txt";
  while ((opt = getopt(argc, argv, "n:s:t:c:")) != -1) {
    if (opt == 'n') n = atoi(optarg);
    else if (opt == 's') steps = atoi(optarg);
    else if (opt == 't') threads = atoi(optarg);
    else if (opt == 'c') corpus = optarg;
    else {
      fprintf(stderr, "usage: lm_bench [-n STATES] [-s STEPS] [-t THREADS] [-c CORPUS] [MODEL.gguf]\n");
      return 2;
    }
  }
  char err[1024], model[256], spec[512];
  if (optind < argc) snprintf(model, sizeof model, "%s", argv[optind]);
  else {
    snprintf(model, sizeof model, "/tmp/ppl_lm_bench_%d.gguf", (int)getpid());
    if (!tiny_gguf_write(model, 42, err, sizeof err)) {
      fprintf(stderr, "lm_bench: %s\n", err);
      return 1;
    }
  }
  printf("%d states x %d steps, one token each per step, %d thread(s)\n", n, steps, threads);
  printf("%-34s %12s\n", "backend", "tokens/s");
  snprintf(spec, sizeof spec, "llama:%s,states=%d,threads=%d", model, n, threads);
  LmBackend *b;
  double via = -1, dir = -1;
  if (!lm_open(spec, &b, err, sizeof err)) printf("llama.cpp: %s\n", err);
  else {
    /* alternate the two, best of three each: the machine's load varies */
    for (int r = 0; r < 3; r++) {
      double v = through_ppl(b, n, steps, false, err, sizeof err);
      double d = direct(model, n, steps, threads, err, sizeof err);
      if (v < 0 || d < 0) {
        printf("llama.cpp: %s\n", err);
        break;
      }
      via = fmax(via, v);
      dir = fmax(dir, d);
    }
    lm_close(b);
    if (via > 0 && dir > 0) {
      printf("%-34s %12.0f\n", "llama.cpp through ppl (LmBackend)", via);
      printf("%-34s %12.0f\n", "llama.cpp directly (llama_decode)", dir);
      printf("ratio ppl / direct: %.3f\n", via / dir);
    }
  }
  if (optind >= argc) unlink(model);
  snprintf(spec, sizeof spec, "ngram:%s", corpus);
  if (!lm_open(spec, &b, err, sizeof err)) printf("ngram: %s\n", err);
  else {
    double g = through_ppl(b, n, steps * 16, false, err, sizeof err);
    printf("%-34s %12.0f\n", "n-gram (order 4) through ppl", g);
    lm_close(b);
  }
  return 0;
}
