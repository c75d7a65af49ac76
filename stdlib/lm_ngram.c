/* lm_ngram.c — the built-in language model: a byte-level interpolated
 * Kneser-Ney n-gram model trained from a text file (`--lm ngram:FILE`,
 * `,order=N`, default 4), so that every example and test of language-model
 * cascades runs offline and fast.
 *
 * Choices (docs/cascades.md, "Backends"):
 *   - One token per byte.  The vocabulary is every byte value that occurs
 *     in the file (so '\n' too when the file has several lines), in
 *     ascending order, then eos.
 *   - The training sequences are the file's lines: a line's bytes, then
 *     eos.  A state's history starts as order-1 beginning-of-line marks
 *     (bos, an internal symbol that is never predicted), so start() is the
 *     beginning of a line; '\n' itself is never a next token in training
 *     and gets only the smoothing's share (the uniform floor).
 *   - Interpolated Kneser-Ney (Chen & Goodman): the highest order uses raw
 *     counts, lower orders continuation counts (the number of distinct
 *     tokens seen before the n-gram), except n-grams starting with bos,
 *     which cannot be extended to the left and keep raw counts; the lowest
 *     order interpolates with the uniform distribution over the vocabulary.
 *     One discount per order, D = n1 / (n1 + 2 n2) from that order's counts
 *     of counts (0.5 where a tiny corpus leaves it undefined).
 * The counts are sorted arrays of packed n-grams (9 bits a token), looked up
 * by binary search: built once, read only afterwards.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_impl.h"

#define NG_MAX_ORDER 6
#define NG_BITS 9

struct LmState {
  int32_t hist[NG_MAX_ORDER]; /* the last order-1 tokens, oldest first; bos-padded */
};

typedef struct NgEntry {
  uint64_t key;
  double a; /* n-grams: the (adjusted) count; contexts: the sum of their n-grams' */
  double types; /* contexts: how many distinct next tokens */
} NgEntry;

typedef struct Ngram {
  int order;
  int nv;              /* vocabulary: bytes, then eos */
  int32_t bos;         /* = nv: never a token */
  int16_t byte2tok[256];
  uint8_t tok2byte[256];
  NgEntry *gram, *ctx;  /* sorted by key */
  size_t ngram, nctx;
  double d[NG_MAX_ORDER + 1]; /* discount of each order */
} Ngram;

/* An n-gram's key: its order in the top bits, then its tokens. */
static uint64_t ng_key(int order, const int32_t *t, int n) {
  uint64_t k = (uint64_t)order << 60;
  for (int i = 0; i < n; i++) k |= (uint64_t)t[i] << (NG_BITS * (n - 1 - i));
  return k;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static const NgEntry *ng_find(const NgEntry *e, size_t n, uint64_t key) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (e[mid].key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && e[lo].key == key ? &e[lo] : NULL;
}

/* Sorted keys with repeats -> entries with their multiplicities in a. */
static NgEntry *ng_unique(uint64_t *keys, size_t n, size_t *out) {
  qsort(keys, n, sizeof *keys, cmp_u64);
  NgEntry *e = malloc((n ? n : 1) * sizeof *e);
  if (!e) return NULL;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m && e[m - 1].key == keys[i]) e[m - 1].a += 1;
    else e[m++] = (NgEntry){keys[i], 1, 0};
  }
  *out = m;
  return e;
}

/* The token of an n-gram key at position i of its n tokens. */
static int32_t key_tok(uint64_t key, int n, int i) {
  return (int32_t)((key >> (NG_BITS * (n - 1 - i))) & ((1u << NG_BITS) - 1));
}

/* The key of an order-k n-gram's history (its first k-1 tokens), tagged k:
   what ng_prob looks up as ng_key(k, h, k - 1). */
static uint64_t ctx_key(uint64_t key) {
  uint64_t k = key >> 60;
  return ((key & ~((uint64_t)15 << 60)) >> NG_BITS) | k << 60;
}

static bool ng_train(Ngram *g, const unsigned char *text, size_t len) {
  int N = g->order;
  size_t nev = len + 1; /* events: a line's bytes and its eos (for '\n') */
  uint64_t *keys = malloc(nev * (size_t)N * sizeof *keys);
  int32_t *seq = malloc((len + (size_t)N + 2) * sizeof *seq);
  if (!keys || !seq) {
    free(keys);
    free(seq);
    return false;
  }
  size_t nk = 0;
  for (size_t start = 0; start <= len;) {
    size_t end = start;
    while (end < len && text[end] != '\n') end++;
    if (end == len && start == len && len > 0 && text[len - 1] == '\n') break; /* after the final newline */
    int n = 0;
    for (int i = 0; i < N - 1; i++) seq[n++] = g->bos;
    for (size_t i = start; i < end; i++) seq[n++] = g->byte2tok[text[i]];
    seq[n++] = g->nv - 1; /* eos */
    for (int i = N - 1; i < n; i++)
      for (int k = 1; k <= N; k++) keys[nk++] = ng_key(k, seq + i - k + 1, k);
    start = end + 1;
  }
  free(seq);
  size_t nraw;
  NgEntry *raw = ng_unique(keys, nk, &nraw);
  if (!raw) {
    free(keys);
    return false;
  }
  /* continuation counts: each distinct (k+1)-gram x g adds one to g */
  nk = 0;
  for (size_t i = 0; i < nraw; i++) {
    int k = (int)(raw[i].key >> 60);
    if (k < 2) continue;
    uint64_t suffix = raw[i].key & ~(~(uint64_t)0 << (NG_BITS * (k - 1))); /* without the first token */
    keys[nk++] = suffix | (uint64_t)(k - 1) << 60;
  }
  size_t ncont;
  NgEntry *cont = ng_unique(keys, nk, &ncont);
  if (!cont) {
    free(raw);
    free(keys);
    return false;
  }
  for (size_t i = 0; i < nraw; i++) {
    int k = (int)(raw[i].key >> 60);
    if (k == N || key_tok(raw[i].key, k, 0) == g->bos) continue;
    const NgEntry *c = ng_find(cont, ncont, raw[i].key);
    raw[i].a = c ? c->a : 0;
  }
  free(cont);
  /* discounts from the counts of counts of each order */
  double n1[NG_MAX_ORDER + 1] = {0}, n2[NG_MAX_ORDER + 1] = {0};
  for (size_t i = 0; i < nraw; i++) {
    int k = (int)(raw[i].key >> 60);
    if (raw[i].a == 1) n1[k]++;
    if (raw[i].a == 2) n2[k]++;
  }
  for (int k = 1; k <= N; k++) {
    double d = n1[k] + 2 * n2[k] > 0 ? n1[k] / (n1[k] + 2 * n2[k]) : 0.5;
    g->d[k] = d > 0 && d < 1 ? d : 0.5;
  }
  /* contexts: the order-k n-grams' sums and types per history */
  nk = 0;
  for (size_t i = 0; i < nraw; i++)
    if (raw[i].a > 0) keys[nk++] = ctx_key(raw[i].key);
  NgEntry *ctx = ng_unique(keys, nk, &g->nctx);
  free(keys);
  if (!ctx) {
    free(raw);
    return false;
  }
  for (size_t i = 0; i < g->nctx; i++) {
    ctx[i].types = ctx[i].a;
    ctx[i].a = 0;
  }
  for (size_t i = 0; i < nraw; i++) {
    if (raw[i].a <= 0) continue;
    NgEntry *c = (NgEntry *)ng_find(ctx, g->nctx, ctx_key(raw[i].key));
    c->a += raw[i].a;
  }
  g->gram = raw;
  g->ngram = nraw;
  g->ctx = ctx;
  return true;
}

/* p(w | hist) for every w (out != NULL: all nv of them, into out) or for
   the one token w (returned): the interpolation from the uniform floor up
   to the full order. */
static double ng_prob(const Ngram *g, const int32_t *hist, int32_t w, double *out) {
  int N = g->order, V = g->nv;
  double p1 = 1.0 / V;
  if (out)
    for (int v = 0; v < V; v++) out[v] = p1;
  int32_t t[NG_MAX_ORDER];
  for (int k = 1; k <= N; k++) {
    const int32_t *h = hist + (N - 1) - (k - 1); /* the last k-1 tokens */
    const NgEntry *c = ng_find(g->ctx, g->nctx, ng_key(k, h, k - 1));
    if (!c) continue; /* an unseen history: this order adds nothing */
    double D = g->d[k], back = D * c->types / c->a;
    memcpy(t, h, (size_t)(k - 1) * sizeof *t);
    for (int v = out ? 0 : w; v < (out ? V : w + 1); v++) {
      t[k - 1] = v;
      const NgEntry *e = ng_find(g->gram, g->ngram, ng_key(k, t, k));
      double a = e ? e->a : 0;
      double lower = out ? out[v] : p1;
      double p = (a > D ? a - D : 0) / c->a + back * lower;
      if (out) out[v] = p;
      else p1 = p;
    }
  }
  return out ? 0 : p1;
}

static void ng_append(const Ngram *g, LmState *s, int32_t tok) {
  memmove(s->hist, s->hist + 1, (size_t)(g->order - 2 > 0 ? g->order - 2 : 0) * sizeof *s->hist);
  if (g->order > 1) s->hist[g->order - 2] = tok;
}

/* ---- the backend's callbacks ---- */

static int ng_tokenize(void *self, const char *text, size_t len, int32_t *out, int max, char *err,
                       size_t errsz) {
  Ngram *g = self;
  if (len > (size_t)INT32_MAX) {
    snprintf(err, errsz, "text of %zu bytes is too long to tokenize", len);
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (g->byte2tok[c] < 0) {
      if (c >= 32 && c < 127)
        snprintf(err, errsz, "the n-gram model has no token for '%c': its corpus never uses it", c);
      else
        snprintf(err, errsz, "the n-gram model has no token for byte 0x%02x: its corpus never uses it",
                 c);
      return -1;
    }
    if ((int)i < max) out[i] = g->byte2tok[c];
  }
  return (int)len;
}

static int ng_token_text(void *self, int32_t tok, char *buf, int cap) {
  Ngram *g = self;
  if (tok < 0 || tok >= g->nv) return -1;
  if (tok == g->nv - 1) return 0;
  if (cap >= 1) buf[0] = (char)g->tok2byte[tok];
  return 1;
}

static LmState *ng_start(void *self, char *err, size_t errsz) {
  Ngram *g = self;
  LmState *s = malloc(sizeof *s);
  if (!s) {
    snprintf(err, errsz, "out of memory");
    return NULL;
  }
  for (int i = 0; i < NG_MAX_ORDER; i++) s->hist[i] = g->bos;
  return s;
}

static LmState *ng_fork(void *self, const LmState *s, char *err, size_t errsz) {
  LmState *d = ng_start(self, err, errsz);
  if (d) *d = *s;
  return d;
}

static void ng_release(void *self, LmState *s) {
  (void)self;
  free(s);
}

static int ng_eval(void *self, int n, LmState *const *states, const int32_t *const *toks,
                   const int *ntoks, float *logp, char *err, size_t errsz) {
  Ngram *g = self;
  double *p = malloc((size_t)g->nv * sizeof *p);
  if (!p) {
    snprintf(err, errsz, "out of memory");
    return -1;
  }
  for (int i = 0; i < n; i++)
    if (!lm_check_tokens(g->nv, toks[i], ntoks[i], err, errsz)) {
      free(p);
      return -1;
    }
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < ntoks[i]; j++) ng_append(g, states[i], toks[i][j]);
    ng_prob(g, states[i]->hist, 0, p);
    for (int v = 0; v < g->nv; v++) logp[(size_t)i * (size_t)g->nv + (size_t)v] = (float)log(p[v]);
  }
  free(p);
  return 0;
}

static int ng_score(void *self, LmState *s, const int32_t *toks, int n, double *lp, char *err,
                    size_t errsz) {
  Ngram *g = self;
  if (!lm_check_tokens(g->nv, toks, n, err, errsz)) return -1;
  for (int i = 0; i < n; i++) {
    *lp += log(ng_prob(g, s->hist, toks[i], NULL));
    ng_append(g, s, toks[i]);
  }
  return 0;
}

static void ng_destroy(void *self) {
  Ngram *g = self;
  if (!g) return;
  free(g->gram);
  free(g->ctx);
  free(g);
}

bool lm_ngram_open(const LmSpec *s, LmBackend *b, char *err, size_t errsz) {
  static const char *const known[] = {"order", NULL};
  long order;
  if (!lm_spec_check(s, "ngram", known, err, errsz) ||
      !lm_spec_int(s, "order", 1, NG_MAX_ORDER, 4, &order, err, errsz))
    return false;
  FILE *f = fopen(s->path, "rb");
  if (!f) {
    snprintf(err, errsz, "--lm %s: cannot open %s: %s", s->spec, s->path, strerror(errno));
    return false;
  }
  size_t cap = 1 << 16, len = 0;
  unsigned char *text = malloc(cap);
  for (size_t k; text && (k = fread(text + len, 1, cap - len, f)) > 0;) {
    len += k;
    if (len == cap) {
      unsigned char *t = realloc(text, cap *= 2);
      if (!t) free(text);
      text = t;
    }
  }
  bool rerr = ferror(f);
  fclose(f);
  Ngram *g = text ? calloc(1, sizeof *g) : NULL;
  if (!g || rerr) {
    snprintf(err, errsz, "--lm %s: %s", s->spec, rerr ? "cannot read the corpus" : "out of memory");
    free(text);
    free(g);
    return false;
  }
  if (len == 0) {
    snprintf(err, errsz, "--lm %s: the corpus %s is empty", s->spec, s->path);
    free(text);
    free(g);
    return false;
  }
  g->order = (int)order;
  bool seen[256] = {0};
  for (size_t i = 0; i < len; i++) seen[text[i]] = true;
  for (int c = 0; c < 256; c++) {
    g->byte2tok[c] = -1;
    if (seen[c]) {
      g->tok2byte[g->nv] = (uint8_t)c;
      g->byte2tok[c] = (int16_t)g->nv++;
    }
  }
  g->nv++; /* eos */
  g->bos = g->nv;
  bool ok = ng_train(g, text, len);
  free(text);
  if (!ok) {
    snprintf(err, errsz, "--lm %s: out of memory", s->spec);
    ng_destroy(g);
    return false;
  }
  b->self = g;
  b->n_vocab = g->nv;
  b->eos = g->nv - 1;
  b->tokenize = ng_tokenize;
  b->token_text = ng_token_text;
  b->start = ng_start;
  b->fork = ng_fork;
  b->release = ng_release;
  b->eval = ng_eval;
  b->score = ng_score;
  b->destroy = ng_destroy;
  return true;
}
