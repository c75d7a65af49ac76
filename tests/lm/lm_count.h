/* lm_count.h — a language-model backend that counts what the engine asks of
 * another (eval batches, tokens decoded, states started and forked, the
 * largest batch, bytes tokenised) and forwards every call to it: the steer tests and
 * bench/steer_bench measure prompt sharing and batching with it.  Header
 * only, for tests and benches. */
#ifndef PPL_LM_COUNT_H
#define PPL_LM_COUNT_H

#include "ppl.h"
#include "stdlib/lm.h"

typedef struct LmCount {
  LmBackend *b; /* the counted backend */
  long evals, decoded, starts, forks, maxbatch;
  long tokenized; /* bytes of text tokenised */
} LmCount;

static int lmc_tokenize(void *self, const char *text, size_t len, int32_t *out, int max, char *err,
                        size_t errsz) {
  LmCount *c = self;
  int n = c->b->tokenize(c->b->self, text, len, out, max, err, errsz);
  if (n >= 0 && n <= max) c->tokenized += (long)len; /* not the calls that only count */
  return n;
}
static int lmc_token_text(void *self, int32_t tok, char *buf, int cap) {
  LmCount *c = self;
  return c->b->token_text(c->b->self, tok, buf, cap);
}
static ppl_lm_state *lmc_start(void *self, char *err, size_t errsz) {
  LmCount *c = self;
  c->starts++;
  return (ppl_lm_state *)c->b->start(c->b->self, err, errsz);
}
static ppl_lm_state *lmc_fork(void *self, const ppl_lm_state *s, char *err, size_t errsz) {
  LmCount *c = self;
  c->forks++;
  return (ppl_lm_state *)c->b->fork(c->b->self, (const LmState *)s, err, errsz);
}
static void lmc_release(void *self, ppl_lm_state *s) {
  LmCount *c = self;
  c->b->release(c->b->self, (LmState *)s);
}
static int lmc_eval(void *self, int n, ppl_lm_state *const *states, const int32_t *const *toks,
                    const int *ntoks, float *logp, char *err, size_t errsz) {
  LmCount *c = self;
  c->evals++;
  if (n > c->maxbatch) c->maxbatch = n;
  for (int i = 0; i < n; i++) c->decoded += ntoks[i];
  return c->b->eval(c->b->self, n, (LmState *const *)states, toks, ntoks, logp, err, errsz);
}

/* The public backend over c, for ppl_register_lm. */
__attribute__((unused)) static ppl_lm_backend lm_count_backend(LmCount *c, const char *name) {
  return (ppl_lm_backend){.name = name, .self = c, .n_vocab = c->b->n_vocab, .eos = c->b->eos,
                          .tokenize = lmc_tokenize, .token_text = lmc_token_text,
                          .start = lmc_start, .fork = lmc_fork, .release = lmc_release,
                          .eval = lmc_eval};
}

#endif
