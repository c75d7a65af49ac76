/* lm_llama.c — llama.cpp's libllama as a language-model backend
 * (`--lm llama:FILE.gguf[,ctx=N,states=N,threads=N]`: KV cells, default
 * 8192; sequences, default and at most 256; threads, default the
 * processors the load leaves idle, 1 to 8), loaded at run time with dlopen so that ppl builds and
 * runs without it (lm_llama.h says which release is pinned and how the
 * library is found).
 *
 * One llama sequence per state, from a free list of n_seq_max ids; the KV
 * cache is one buffer shared by all sequences, so fork copies a sequence
 * with llama_memory_seq_cp (the cells are shared, not duplicated) and
 * release removes it with llama_memory_seq_rm.  eval is one llama_decode
 * of a batch holding every state's new tokens (more than one only when they
 * exceed n_batch), with logits requested at each state's last token; the
 * log-softmax is taken in double, then stored as float.  Each state keeps
 * its last next-token vector, so an eval with no new tokens costs nothing.
 * Control tokens other than eos get probability 0; a model that wants a
 * BOS token gets it as the first token of every state.
 *
 * Everything llama.cpp logs is dropped (a library prints nothing), except
 * that errors while a model loads are kept for the message.
 */
#define _GNU_SOURCE
#include "lm_llama.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lm_impl.h"

#ifndef PPL_LLAMA_DIR
#define PPL_LLAMA_DIR ".llama"
#endif

/* ---- finding and loading the library ---------------------------------- */

enum { LOG_KEEP = 512 };

/* llama.cpp's (and ggml's) logger: drops everything but errors, which it
   appends to the LOG_KEEP-byte buffer ud when there is one. */
static void log_keep(int level, const char *text, void *ud) {
  char *buf = ud;
  if (!buf || level != 4 /* GGML_LOG_LEVEL_ERROR */) return;
  size_t n = strlen(buf);
  snprintf(buf + n, LOG_KEEP - n, "%s", text);
}

static const char *const lib_names[] = {"libllama.v0.5.0.so", "libllama.so"};

static void *open_in(const char *dir, char *path, size_t cap) {
  for (size_t i = 0; i < sizeof lib_names / sizeof *lib_names; i++) {
    snprintf(path, cap, "%s/%s", dir, lib_names[i]);
    if (access(path, R_OK) != 0) continue;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
  }
  return NULL;
}

static bool resolve(LlamaApi *a, void *h, char *err, size_t errsz) {
  static const struct {
    const char *name;
    size_t off;
  } syms[] = {
#define S(f, name) {name, offsetof(LlamaApi, f)}
      S(backend_init, "llama_backend_init"),
      S(log_set, "llama_log_set"),
      S(model_default_params, "llama_model_default_params"),
      S(context_default_params, "llama_context_default_params"),
      S(model_load_from_file, "llama_model_load_from_file"),
      S(model_free, "llama_model_free"),
      S(init_from_model, "llama_init_from_model"),
      S(free, "llama_free"),
      S(model_get_vocab, "llama_model_get_vocab"),
      S(vocab_n_tokens, "llama_vocab_n_tokens"),
      S(vocab_bos, "llama_vocab_bos"),
      S(vocab_eos, "llama_vocab_eos"),
      S(vocab_get_add_bos, "llama_vocab_get_add_bos"),
      S(vocab_is_control, "llama_vocab_is_control"),
      S(tokenize, "llama_tokenize"),
      S(token_to_piece, "llama_token_to_piece"),
      S(get_memory, "llama_get_memory"),
      S(memory_seq_rm, "llama_memory_seq_rm"),
      S(memory_seq_cp, "llama_memory_seq_cp"),
      S(batch_init, "llama_batch_init"),
      S(batch_free, "llama_batch_free"),
      S(decode, "llama_decode"),
      S(get_logits_ith, "llama_get_logits_ith"),
      S(n_ctx, "llama_n_ctx"),
      S(n_ctx_seq, "llama_n_ctx_seq"),
      S(n_batch, "llama_n_batch"),
      S(n_seq_max, "llama_n_seq_max"),
      S(max_parallel_sequences, "llama_max_parallel_sequences"),
      S(set_n_threads, "llama_set_n_threads"),
      S(backend_dev_count, "ggml_backend_dev_count"),
      S(backend_load_all_from_path, "ggml_backend_load_all_from_path"),
#undef S
  };
  for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
    void *p = dlsym(h, syms[i].name);
    if (!p) {
      snprintf(err, errsz,
               "%s lacks %s: ppl needs llama.cpp v0.5.0 (scripts/install-llama.sh installs it)",
               a->path, syms[i].name);
      return false;
    }
    /* POSIX: a data pointer from dlsym converts to a function pointer */
    memcpy((char *)a + syms[i].off, &p, sizeof p);
  }
  return true;
}

bool lm_llama_load(LlamaApi *a, char *err, size_t errsz) {
  memset(a, 0, sizeof *a);
  void *h = NULL;
  const char *env = getenv("PPL_LLAMA_LIB");
  struct stat st;
  if (env && *env) {
    if (stat(env, &st) == 0 && S_ISDIR(st.st_mode)) h = open_in(env, a->path, sizeof a->path);
    else if ((h = dlopen(env, RTLD_NOW | RTLD_LOCAL))) snprintf(a->path, sizeof a->path, "%s", env);
    if (!h) {
      const char *why = dlerror();
      snprintf(err, errsz, "libllama not found at PPL_LLAMA_LIB=%s%s%s", env, why ? ": " : "",
               why ? why : "");
      return false;
    }
  }
  if (!h) h = open_in(PPL_LLAMA_DIR, a->path, sizeof a->path);
  if (!h)
    for (size_t i = 0; !h && i < sizeof lib_names / sizeof *lib_names; i++)
      if ((h = dlopen(lib_names[i], RTLD_NOW | RTLD_LOCAL)))
        snprintf(a->path, sizeof a->path, "%s", lib_names[i]);
  if (!h) {
    snprintf(err, errsz,
             "libllama not found (looked in PPL_LLAMA_LIB (unset), %s, the system's library path): "
             "scripts/install-llama.sh installs it",
             PPL_LLAMA_DIR);
    return false;
  }
  if (!resolve(a, h, err, errsz)) return false;
  Dl_info info;
  if (dladdr((void *)a->decode, &info) && info.dli_fname) snprintf(a->path, sizeof a->path, "%s", info.dli_fname);
  snprintf(a->dir, sizeof a->dir, "%s", a->path);
  char *slash = strrchr(a->dir, '/');
  if (slash) *slash = 0;
  else snprintf(a->dir, sizeof a->dir, ".");
  a->log_set(log_keep, NULL); /* NULL would restore its default: printing to stderr */
  a->backend_init();
  /* ggml's CPU code is a plugin picked for this processor from the folder */
  if (a->backend_dev_count() == 0) a->backend_load_all_from_path(a->dir);
  if (a->backend_dev_count() == 0) {
    snprintf(err, errsz, "%s: no ggml backend could be loaded from %s", a->path, a->dir);
    return false;
  }
  return true;
}

/* Offsets in llama_context_params at v0.5.0, each checked against the
   default the release gives it before it is written. */
enum {
  CP_N_CTX = 0, CP_N_BATCH = 4, CP_N_UBATCH = 8, CP_N_SEQ_MAX = 12, CP_ENUMS = 36, CP_FLASH_ATTN = 52,
  CP_BOOLS = 128, CP_KV_UNIFIED = 133
};

static uint32_t rd32(const LlamaParams *p, int off) {
  uint32_t v;
  memcpy(&v, p->b + off, 4);
  return v;
}

bool lm_llama_context_params(const LlamaApi *a, LlamaParams *p, uint32_t n_ctx, uint32_t n_seq,
                             char *err, size_t errsz) {
  memset(p, 0, sizeof *p);
  *p = a->context_default_params();
  /* defaults: n_ctx 512, n_batch 2048, n_ubatch 512, n_seq_max 1; the enums
     ctx_type 0, then rope_scaling_type, pooling_type, attention_type,
     flash_attn_type all -1; the booleans embeddings, offload_kqv, no_perf,
     op_offload, swa_full, kv_unified = 0 1 1 1 1 0 */
  static const unsigned char bools[6] = {0, 1, 1, 1, 1, 0};
  bool enums = rd32(p, CP_ENUMS) == 0;
  for (int off = CP_ENUMS + 4; off <= CP_FLASH_ATTN; off += 4) enums = enums && rd32(p, off) == UINT32_MAX;
  if (rd32(p, CP_N_CTX) != 512 || rd32(p, CP_N_BATCH) != 2048 || rd32(p, CP_N_UBATCH) != 512 ||
      rd32(p, CP_N_SEQ_MAX) != 1 || !enums || memcmp(p->b + CP_BOOLS, bools, sizeof bools) != 0) {
    snprintf(err, errsz, "%s: llama_context_params is not laid out as in llama.cpp v0.5.0", a->path);
    return false;
  }
  memcpy(p->b + CP_N_CTX, &n_ctx, 4);
  memcpy(p->b + CP_N_SEQ_MAX, &n_seq, 4);
  p->b[CP_KV_UNIFIED] = 1;
  /* no flash attention: on the CPU it accumulates in half precision in
     the order of the cache's cells, so a sequence whose new tokens land in
     cells freed by another (a released particle) would differ from its
     recomputation by ~1e-3; without it they agree to ~1e-6 */
  memset(p->b + CP_FLASH_ATTN, 0, 4);
  return true;
}

/* ---- the backend ------------------------------------------------------- */

typedef struct Llama {
  LlamaApi api;
  void *model, *ctx, *mem;
  const void *vocab;
  int nv;
  int32_t bos, eos;
  bool add_bos;
  uint8_t *masked; /* control tokens other than eos */
  int32_t byte_tok[256]; /* the token whose text is that one byte, or -1 */
  int nseq, nfree;
  int32_t *free_seq;
  int n_batch;
  LlamaBatch batch;
  struct LlState **out_state; /* the batch's outputs: whose, at which index */
  int32_t *out_idx;
  int nout;
  char log[LOG_KEEP]; /* errors logged while the model loads */
} Llama;

typedef struct LlState {
  int32_t seq, n_past;
  bool bos_pending, has_logp;
  float *logp;
} LlState;

/* llama.cpp's tokenizer on a well-formed UTF-8 run (it throws on anything
   else, which would end the host): the count, or -1 with a message. */
static int ll_tokenize_utf8(Llama *L, const char *text, size_t len, int32_t *out, int max,
                            char *err, size_t errsz) {
  if (len == 0) return 0;
  int32_t dummy;
  int32_t r = L->api.tokenize(L->vocab, text, (int32_t)len, out && max > 0 ? out : &dummy,
                              out && max > 0 ? max : 0, false, false);
  if (r == INT32_MIN) {
    snprintf(err, errsz, "llama.cpp could not tokenize a text of %zu bytes", len);
    return -1;
  }
  return r < 0 ? -r : r;
}

/* Text that is not well-formed UTF-8 (a context built from byte tokens
   that split a character, as a byte-level model generates them) is
   tokenised run by run: the well-formed runs by llama.cpp, each malformed
   byte as the vocabulary's token for that byte (byte-level BPE and
   SentencePiece's byte fallback have one for every byte). */
static int ll_tokenize(void *self, const char *text, size_t len, int32_t *out, int max, char *err,
                       size_t errsz) {
  Llama *L = self;
  if (len > (size_t)INT32_MAX / 2) {
    snprintf(err, errsz, "text of %zu bytes is too long to tokenize", len);
    return -1;
  }
  int n = 0;
  for (size_t i = 0; i < len;) {
    size_t bad = len - i;
    bool whole = lm_utf8_valid(text + i, len - i, &bad);
    int k = ll_tokenize_utf8(L, text + i, bad, out ? out + (n < max ? n : max) : NULL,
                             n < max ? max - n : 0, err, errsz);
    if (k < 0) return -1;
    n += k;
    if (whole) break;
    unsigned char u = (unsigned char)text[i + bad];
    if (L->byte_tok[u] < 0) {
      snprintf(err, errsz, "the text has a byte 0x%02x at offset %zu that is not UTF-8 and the "
               "vocabulary has no token for it", u, i + bad);
      return -1;
    }
    if (out && n < max) out[n] = L->byte_tok[u];
    n++;
    i += bad + 1;
  }
  return n;
}

static int ll_token_text(void *self, int32_t tok, char *buf, int cap) {
  Llama *L = self;
  if (tok < 0 || tok >= L->nv) return -1;
  if (tok == L->eos) return 0;
  char dummy;
  int32_t r = L->api.token_to_piece(L->vocab, tok, buf ? buf : &dummy, buf ? cap : 0, 0, false);
  return r < 0 ? -r : r;
}

static LmState *ll_start(void *self, char *err, size_t errsz) {
  Llama *L = self;
  if (L->nfree == 0) {
    snprintf(err, errsz, "all %d llama.cpp sequences are in use (give more with states=N)", L->nseq);
    return NULL;
  }
  LlState *s = calloc(1, sizeof *s);
  if (s) s->logp = malloc((size_t)L->nv * sizeof *s->logp);
  if (!s || !s->logp) {
    if (s) free(s);
    snprintf(err, errsz, "out of memory");
    return NULL;
  }
  s->seq = L->free_seq[--L->nfree];
  s->bos_pending = L->add_bos;
  return (LmState *)s;
}

static void ll_release(void *self, LmState *st) {
  Llama *L = self;
  LlState *s = (LlState *)st;
  if (!s) return;
  L->api.memory_seq_rm(L->mem, s->seq, -1, -1);
  L->free_seq[L->nfree++] = s->seq;
  free(s->logp);
  free(s);
}

static LmState *ll_fork(void *self, const LmState *st, char *err, size_t errsz) {
  Llama *L = self;
  const LlState *s = (const LlState *)st;
  LlState *d = (LlState *)ll_start(self, err, errsz);
  if (!d) return NULL;
  if (s->n_past > 0) L->api.memory_seq_cp(L->mem, s->seq, d->seq, -1, -1);
  d->n_past = s->n_past;
  d->bos_pending = s->bos_pending;
  d->has_logp = s->has_logp;
  if (s->has_logp) memcpy(d->logp, s->logp, (size_t)L->nv * sizeof *d->logp);
  return (LmState *)d;
}

/* The normalised log-probabilities of one row of logits, masked tokens
   -inf: into f (float) and/or, for one token, returned in double. */
static double ll_softmax(const Llama *L, const float *logits, float *f, int32_t tok) {
  double m = -INFINITY;
  for (int v = 0; v < L->nv; v++)
    if (!L->masked[v] && logits[v] > m) m = logits[v];
  double z = 0;
  for (int v = 0; v < L->nv; v++)
    if (!L->masked[v]) z += exp((double)logits[v] - m);
  double lz = m + log(z);
  if (f)
    for (int v = 0; v < L->nv; v++) f[v] = L->masked[v] ? -INFINITY : (float)((double)logits[v] - lz);
  if (tok < 0) return 0;
  return L->masked[tok] ? -INFINITY : (double)logits[tok] - lz;
}

/* Decode what the batch holds; each output's row becomes its state's
   next-token vector (and, when lp is given, the scored token's term). */
static int ll_flush(Llama *L, const int32_t *score_next, double *lp, char *err, size_t errsz) {
  if (L->batch.n_tokens == 0) return 0;
  int32_t r = L->api.decode(L->ctx, L->batch);
  if (r != 0) {
    if (r == 1)
      snprintf(err, errsz, "the llama.cpp context is full (%u cells for all states: give more with ctx=N)",
               L->api.n_ctx(L->ctx));
    else snprintf(err, errsz, "llama_decode failed (%d)", (int)r);
    L->batch.n_tokens = 0;
    L->nout = 0;
    return -1;
  }
  for (int k = 0; k < L->nout; k++) {
    const float *row = L->api.get_logits_ith(L->ctx, L->out_idx[k]);
    if (!row) {
      snprintf(err, errsz, "llama.cpp gave no logits for batch position %d", (int)L->out_idx[k]);
      return -1;
    }
    LlState *s = L->out_state[k];
    int32_t next = score_next ? score_next[k] : -1;
    double t = ll_softmax(L, row, s->logp, next);
    if (lp && next >= 0) *lp += t;
    s->has_logp = true;
  }
  L->batch.n_tokens = 0;
  L->nout = 0;
  return 0;
}

static void ll_add(Llama *L, LlState *s, int32_t tok, bool out) {
  int i = L->batch.n_tokens++;
  L->batch.token[i] = tok;
  L->batch.pos[i] = s->n_past++;
  L->batch.n_seq_id[i] = 1;
  L->batch.seq_id[i][0] = s->seq;
  L->batch.logits[i] = out;
  if (out) {
    L->out_state[L->nout] = s;
    L->out_idx[L->nout++] = i;
  }
  s->has_logp = false;
}

static int ll_eval(void *self, int n, LmState *const *states, const int32_t *const *toks,
                   const int *ntoks, float *logp, char *err, size_t errsz) {
  Llama *L = self;
  for (int i = 0; i < n; i++) {
    const LlState *s = (const LlState *)states[i];
    if (!lm_check_tokens(L->nv, toks[i], ntoks[i], err, errsz)) return -1;
    if (ntoks[i] == 0 && !s->bos_pending && !s->has_logp) {
      snprintf(err, errsz, "the empty context has no next-token distribution (the model takes no BOS token)");
      return -1;
    }
  }
  for (int i = 0; i < n; i++) {
    LlState *s = (LlState *)states[i];
    int k = ntoks[i] + s->bos_pending;
    for (int j = 0; j < k; j++) {
      if (L->batch.n_tokens == L->n_batch && ll_flush(L, NULL, NULL, err, errsz) != 0) return -1;
      int32_t t = s->bos_pending ? L->bos : toks[i][j - (k - ntoks[i])];
      s->bos_pending = false;
      ll_add(L, s, t, j == k - 1);
    }
  }
  if (ll_flush(L, NULL, NULL, err, errsz) != 0) return -1;
  for (int i = 0; i < n; i++)
    memcpy(logp + (size_t)i * (size_t)L->nv, ((LlState *)states[i])->logp, (size_t)L->nv * sizeof *logp);
  return 0;
}

/* All the tokens go in at once, with logits at every position: each one
   scores the token after it, and the last gives the state its new
   next-token vector. */
static int ll_score(void *self, LmState *st, const int32_t *toks, int n, double *lp, char *err,
                    size_t errsz) {
  Llama *L = self;
  LlState *s = (LlState *)st;
  if (!lm_check_tokens(L->nv, toks, n, err, errsz)) return -1;
  if (n == 0) return 0;
  if (!s->bos_pending && !s->has_logp) {
    snprintf(err, errsz, "the empty context has no next-token distribution (the model takes no BOS token)");
    return -1;
  }
  int32_t *next = malloc((size_t)L->n_batch * sizeof *next);
  if (!next) {
    snprintf(err, errsz, "out of memory");
    return -1;
  }
  if (s->has_logp) *lp += s->logp[toks[0]];
  int k = n + s->bos_pending, rc = 0;
  for (int j = 0; j < k && rc == 0; j++) {
    if (L->batch.n_tokens == L->n_batch) rc = ll_flush(L, next, lp, err, errsz);
    int32_t t = s->bos_pending ? L->bos : toks[j - (k - n)];
    int after = j - (k - n) + 1; /* the token this position's logits score */
    s->bos_pending = false;
    next[L->nout] = after < n ? toks[after] : -1;
    ll_add(L, s, t, true);
  }
  if (rc == 0) rc = ll_flush(L, next, lp, err, errsz);
  free(next);
  return rc;
}

static void ll_destroy(void *self) {
  Llama *L = self;
  if (!L) return;
  if (L->batch.token) L->api.batch_free(L->batch);
  if (L->ctx) L->api.free(L->ctx);
  if (L->model) L->api.model_free(L->model);
  free(L->masked);
  free(L->free_seq);
  free(L->out_state);
  free(L->out_idx);
  free(L);
}

int lm_llama_default_threads(long ncpu, double load) {
  long idle = ncpu - (long)floor(load + 0.5);
  return idle < 1 ? 1 : idle > 8 ? 8 : (int)idle;
}

bool lm_llama_open(const LmSpec *s, LmBackend *b, char *err, size_t errsz) {
  static const char *const known[] = {"ctx", "states", "threads", NULL};
  long n_ctx, nseq, threads;
  double load = 0;
  if (getloadavg(&load, 1) < 1) load = 0;
  int def = lm_llama_default_threads(sysconf(_SC_NPROCESSORS_ONLN), load);
  if (!lm_spec_check(s, "llama", known, err, errsz) ||
      !lm_spec_int(s, "ctx", 16, 1 << 20, 8192, &n_ctx, err, errsz) ||
      !lm_spec_int(s, "states", 1, 256, 256, &nseq, err, errsz) ||
      !lm_spec_int(s, "threads", 1, 256, def, &threads, err, errsz))
    return false;
  FILE *f = fopen(s->path, "rb");
  if (!f) {
    snprintf(err, errsz, "--lm %s: cannot open %s: %s", s->spec, s->path, strerror(errno));
    return false;
  }
  fclose(f);
  Llama *L = calloc(1, sizeof *L);
  if (!L) {
    snprintf(err, errsz, "--lm %s: out of memory", s->spec);
    return false;
  }
  char why[768];
  LlamaApi *a = &L->api;
  if (!lm_llama_load(a, why, sizeof why)) {
    snprintf(err, errsz, "--lm %s: %s", s->spec, why);
    free(L);
    return false;
  }
  if ((size_t)nseq > a->max_parallel_sequences()) nseq = (long)a->max_parallel_sequences();
  a->log_set(log_keep, L->log);
  L->model = a->model_load_from_file(s->path, a->model_default_params());
  LlamaParams cp;
  bool ok = L->model != NULL;
  if (!ok) {
    size_t n = strlen(L->log);
    while (n && (L->log[n - 1] == '\n' || L->log[n - 1] == ' ')) L->log[--n] = 0;
    snprintf(err, errsz, "--lm %s: llama.cpp could not load %s%s%s", s->spec, s->path, n ? ": " : "",
             L->log);
  } else if (!lm_llama_context_params(a, &cp, (uint32_t)n_ctx, (uint32_t)nseq, why, sizeof why)) {
    snprintf(err, errsz, "--lm %s: %s", s->spec, why);
    ok = false;
  } else if (!(L->ctx = a->init_from_model(L->model, cp))) {
    snprintf(err, errsz, "--lm %s: llama.cpp could not make a context of %ld cells for %ld states%s%s",
             s->spec, n_ctx, nseq, *L->log ? ": " : "", L->log);
    ok = false;
  }
  a->log_set(log_keep, NULL);
  if (ok && nseq > 1 && a->n_ctx_seq(L->ctx) != a->n_ctx(L->ctx)) {
    snprintf(err, errsz, "--lm %s: llama.cpp did not share the KV cache among sequences", s->spec);
    ok = false;
  }
  if (!ok) {
    ll_destroy(L);
    return false;
  }
  a->set_n_threads(L->ctx, (int32_t)threads, (int32_t)threads);
  L->mem = a->get_memory(L->ctx);
  L->vocab = a->model_get_vocab(L->model);
  L->nv = a->vocab_n_tokens(L->vocab);
  L->bos = a->vocab_bos(L->vocab);
  L->eos = a->vocab_eos(L->vocab);
  L->add_bos = a->vocab_get_add_bos(L->vocab) && L->bos >= 0;
  L->nseq = (int)a->n_seq_max(L->ctx);
  L->n_batch = (int)a->n_batch(L->ctx);
  L->masked = calloc((size_t)L->nv, 1);
  L->free_seq = malloc((size_t)L->nseq * sizeof *L->free_seq);
  L->out_state = malloc((size_t)L->n_batch * sizeof *L->out_state);
  L->out_idx = malloc((size_t)L->n_batch * sizeof *L->out_idx);
  if (L->masked && L->free_seq && L->out_state && L->out_idx) L->batch = a->batch_init(L->n_batch, 0, 1);
  if (!L->batch.token) {
    snprintf(err, errsz, "--lm %s: out of memory", s->spec);
    ll_destroy(L);
    return false;
  }
  for (int v = 0; v < L->nv; v++) L->masked[v] = v != L->eos && a->vocab_is_control(L->vocab, v);
  for (int u = 0; u < 256; u++) L->byte_tok[u] = -1;
  for (int v = 0; v < L->nv; v++) {
    char c[2];
    if (!L->masked[v] && v != L->eos && a->token_to_piece(L->vocab, v, c, 2, 0, false) == 1 &&
        L->byte_tok[(unsigned char)c[0]] < 0)
      L->byte_tok[(unsigned char)c[0]] = v;
  }
  for (int i = 0; i < L->nseq; i++) L->free_seq[i] = L->nseq - 1 - i; /* 0 is handed out first */
  L->nfree = L->nseq;
  b->self = L;
  b->n_vocab = L->nv;
  b->eos = L->eos;
  b->tokenize = ll_tokenize;
  b->token_text = ll_token_text;
  b->start = ll_start;
  b->fork = ll_fork;
  b->release = ll_release;
  b->eval = ll_eval;
  b->score = ll_score;
  b->destroy = ll_destroy;
  return true;
}
