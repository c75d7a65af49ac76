/* lm.h — language-model backends: the one interface that the `lm` and
 * `lm_next` families, the steering engine (inference/steer.c) and hosts
 * (ppl_register_lm in ppl.h) meet.
 *
 * A backend turns text into tokens and back, and gives the full next-token
 * log-probability vector for a context state.  States fork (so particles
 * share a prompt's KV cache and copy it on resampling) and are released one
 * by one.  One eval call is one batch: every state in it is advanced by its
 * new tokens and scored at once (llama.cpp: one llama_decode with a sequence
 * id per state), which is what lets an engine decode all live particles per
 * step.
 *
 * Built-in backends (opened by lm_open from a spec string):
 *   ngram:PATH[,order=N]  character-level Kneser-Ney n-gram trained from a
 *                         text file (stdlib/lm_ngram.c): offline and fast
 *   llama:PATH.gguf       llama.cpp's libllama loaded at run time with dlopen
 *                         (stdlib/lm_llama.c); ppl builds and runs without it
 * Hosts add their own through ppl_register_lm; the public struct has the
 * same members in the same order.
 *
 * A backend is used from one thread at a time.  Errors are returned (with a
 * message in err), never printed; nothing here exits.
 */
#ifndef PPL_LM_H
#define PPL_LM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

typedef struct LmState LmState; /* the backend's own: its tokens so far (and KV cache) */

typedef struct LmBackend {
  const char *name; /* for messages: "ngram:corpus.txt", or a host's name */
  void *self;       /* the backend's object, passed to every callback */
  int n_vocab;
  int32_t eos;      /* end-of-sequence token, or -1: none */

  /* text[0..len) -> tokens.  Returns the count, which may exceed max (then
     only max were written: call again with room), or -1 with a message. */
  int (*tokenize)(void *self, const char *text, size_t len, int32_t *out, int max, char *err,
                  size_t errsz);
  /* The bytes token tok stands for, written to buf (at most cap, not
     NUL-terminated).  Returns their count (may exceed cap: call again), or -1
     for a token outside the vocabulary.  eos gives 0 bytes. */
  int (*token_text)(void *self, int32_t tok, char *buf, int cap);
  /* A state holding the empty context (the backend feeds its BOS token if
     its model wants one).  NULL with a message when out of room (llama.cpp:
     all sequences in use). */
  LmState *(*start)(void *self, char *err, size_t errsz);
  /* A copy of s sharing what the backend can share (llama.cpp: copies the
     KV cache of s's sequence into a new one). */
  LmState *(*fork)(void *self, const LmState *s, char *err, size_t errsz);
  void (*release)(void *self, LmState *s);
  /* For i < n: append toks[i][0..ntoks[i]) to states[i] (ntoks[i] may be 0),
     then write the normalised next-token log-probabilities of states[i]'s
     whole context to logp + i * n_vocab.  0, or -1 with a message (the
     states are then unchanged or released by the caller). */
  int (*eval)(void *self, int n, LmState *const *states, const int32_t *const *toks,
              const int *ntoks, float *logp, char *err, size_t errsz);
  /* Optional (NULL: lm_score loops over eval): append toks[0..n) to s and
     add to *lp the log-probability of each token given the context before
     it, in double precision where the backend has it. */
  int (*score)(void *self, LmState *s, const int32_t *toks, int n, double *lp, char *err,
               size_t errsz);
  /* Frees self and everything it holds; NULL: nothing to free. */
  void (*destroy)(void *self);
} LmBackend;

/* Open a built-in backend from a spec (see the top of this file).  *out is
 * malloc'd; close it with lm_close.  False with a message naming the spec
 * ("--lm llama:m.gguf: libllama not found (looked in ...)"). */
bool lm_open(const char *spec, LmBackend **out, char *err, size_t errsz);
/* destroy, then free b.  NULL is allowed. */
void lm_close(LmBackend *b);

/* The backends of one run, by name: the default one has the name "" (the
 * run's `--lm SPEC`), others `--lm NAME=SPEC` or ppl_register_lm's names.
 * The set does not own the backends. */
typedef struct LmSet {
  int n;
  const char **names;
  LmBackend **b;
} LmSet;
/* The backend called name ("" or NULL: the default), or NULL. */
LmBackend *lm_set_find(const LmSet *s, const char *name);

/* A context as text: a state together with the text and tokens it holds,
 * and its next-token log-probabilities once evaluated.  A program gives
 * contexts as strings (`lm_next(prompt + so_far)`); seeking a cursor to a
 * string that extends its text queues only the new part, so a particle's
 * state is reused from token to token and forks share the prompt.
 * Tokenisation is piecewise: a token the cursor was given (lm_cursor_push)
 * keeps its id, and text the program appends is tokenised on its own. */
typedef struct LmCursor {
  LmBackend *b;
  LmState *st;       /* NULL until first used */
  char *text;        /* what the state's tokens spell, NUL-terminated */
  size_t len, cap;
  uint64_t hash;     /* FNV-1a of text, kept as it grows: engines that group equal
                        contexts (steer) compare hashes without reading the text */
  int32_t *pend;     /* tokens queued for the next eval */
  int npend, pcap;
  float *logp;       /* n_vocab next-token log-probabilities, valid when fresh */
  bool fresh;
} LmCursor;

bool lm_cursor_init(LmCursor *c, LmBackend *b, char *err, size_t errsz);
/* dst (uninitialised) becomes a copy of src: forked state, same text, same
   pending tokens, same log-probabilities. */
bool lm_cursor_fork(LmCursor *dst, const LmCursor *src, char *err, size_t errsz);
void lm_cursor_free(LmCursor *c);
/* Make c stand for the context text[0..len): queue the tokens of the part
   beyond c's text when text extends it, else start afresh. */
bool lm_cursor_seek(LmCursor *c, const char *text, size_t len, char *err, size_t errsz);
/* Queue token tok (its text is appended to c's). */
bool lm_cursor_push(LmCursor *c, int32_t tok, char *err, size_t errsz);
/* One batched eval of every cursor that is not fresh (all of one backend):
   afterwards each has its logp. */
bool lm_cursor_eval(LmCursor *const *cs, int n, char *err, size_t errsz);

/* log p(toks | context of s), appending them to s: the backend's score, or a
   loop over eval. */
bool lm_score(LmBackend *b, LmState *s, const int32_t *toks, int n, double *lp, char *err,
              size_t errsz);

/* Is text[0..len) well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF)?  When not, *bad is the offset of the first byte
 * that is not.  A backend whose tokenizer takes only UTF-8 (llama.cpp's
 * throws a C++ exception, which would end the host) checks first. */
bool lm_utf8_valid(const char *text, size_t len, size_t *bad);

/* Are toks[0..n) all in [0, n_vocab)?  False with "token T is not in the
 * vocabulary (V tokens)": the backends check what eval and score are given. */
bool lm_check_tokens(int n_vocab, const int32_t *toks, int n, char *err, size_t errsz);

/* Draw a token from logp[0..n_vocab) restricted to the tokens allow[] marks
 * (allow NULL: all).  *logz gets the log of the probability mass allowed
 * (0 without a mask): the importance weight of proposing from the masked,
 * renormalised distribution when the target is the unmasked one times the
 * constraint.  Returns -1 when no allowed token has positive probability. */
int32_t lm_sample(const float *logp, int n_vocab, const uint8_t *allow, Rng *r, double *logz);

#endif
