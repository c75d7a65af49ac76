/* lm.c — the generic layer over language-model backends (lm.h): opening a
 * built-in backend from a spec, a run's set of backends by name, cursors
 * (a state plus the text it holds, so that programs can give contexts as
 * strings while states are reused and forked), scoring and masked
 * sampling.  The backends themselves are lm_ngram.c and lm_llama.c, and
 * hosts' (ppl_register_lm).
 */
#include "lm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_impl.h"

/* ---- specs ------------------------------------------------------------ */

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

static void spec_free(LmSpec *s) {
  free(s->path);
  for (int i = 0; i < s->nopts; i++) {
    free(s->key[i]);
    free(s->val[i]);
  }
}

/* Is text at p an option "key=" (a lower-case word and '=')? */
static bool opt_start(const char *p) {
  const char *q = p;
  while ((*q >= 'a' && *q <= 'z') || *q == '_') q++;
  return q > p && *q == '=';
}

/* rest is "PATH[,key=value...]": a comma starts an option only when a
   "key=" follows it, so paths with commas still open. */
static bool spec_parse(LmSpec *s, const char *spec, const char *rest, char *err, size_t errsz) {
  memset(s, 0, sizeof *s);
  s->spec = spec;
  const char *end = rest + strlen(rest);
  const char *p = rest;
  const char *opts = end;
  for (; *p; p++)
    if (*p == ',' && opt_start(p + 1)) {
      opts = p;
      break;
    }
  s->path = dup_n(rest, (size_t)(opts - rest));
  if (!s->path) goto oom;
  if (!*s->path) {
    snprintf(err, errsz, "--lm %s: no file given (expected %.*s:FILE)", spec, (int)(rest - 1 - spec),
             spec);
    return false;
  }
  for (p = opts; p < end;) {
    p++; /* the comma */
    const char *eq = strchr(p, '=');
    const char *next = p;
    while (*next && !(*next == ',' && opt_start(next + 1))) next++;
    if (!eq || eq > next || eq == p) {
      snprintf(err, errsz, "--lm %s: bad option '%.*s' (expected key=value)", spec, (int)(next - p), p);
      return false;
    }
    if (s->nopts == LM_MAX_OPTS) {
      snprintf(err, errsz, "--lm %s: more than %d options", spec, LM_MAX_OPTS);
      return false;
    }
    s->key[s->nopts] = dup_n(p, (size_t)(eq - p));
    s->val[s->nopts] = dup_n(eq + 1, (size_t)(next - eq - 1));
    s->nopts++;
    if (!s->key[s->nopts - 1] || !s->val[s->nopts - 1]) goto oom;
    p = next;
  }
  return true;
oom:
  snprintf(err, errsz, "--lm %s: out of memory", spec);
  return false;
}

bool lm_spec_check(const LmSpec *s, const char *kind, const char *const *known, char *err,
                   size_t errsz) {
  for (int i = 0; i < s->nopts; i++) {
    bool ok = false;
    for (const char *const *k = known; *k; k++) ok = ok || !strcmp(*k, s->key[i]);
    if (ok) continue;
    char list[256] = "";
    size_t n = 0;
    for (const char *const *k = known; *k && n < sizeof list; k++)
      n += (size_t)snprintf(list + n, sizeof list - n, "%s%s=N", k == known ? "" : ", ", *k);
    snprintf(err, errsz, "--lm %s: unknown option '%s' (%s takes %s)", s->spec, s->key[i], kind,
             *known ? list : "none");
    return false;
  }
  return true;
}

bool lm_spec_int(const LmSpec *s, const char *key, long lo, long hi, long def, long *out, char *err,
                 size_t errsz) {
  *out = def;
  for (int i = 0; i < s->nopts; i++) {
    if (strcmp(s->key[i], key)) continue;
    char *e;
    long v = strtol(s->val[i], &e, 10);
    if (!*s->val[i] || *e || v < lo || v > hi) {
      snprintf(err, errsz, "--lm %s: %s must be an integer in %ld..%ld, got '%s'", s->spec, key, lo,
               hi, s->val[i]);
      return false;
    }
    *out = v;
  }
  return true;
}

bool lm_open(const char *spec, LmBackend **out, char *err, size_t errsz) {
  *out = NULL;
  if (!spec) spec = "";
  static const struct {
    const char *kind;
    bool (*open)(const LmSpec *, LmBackend *, char *, size_t);
  } kinds[] = {{"ngram", lm_ngram_open}, {"llama", lm_llama_open}};
  const char *colon = strchr(spec, ':');
  int k = -1;
  for (int i = 0; colon && i < (int)(sizeof kinds / sizeof *kinds); i++)
    if (strlen(kinds[i].kind) == (size_t)(colon - spec) && !strncmp(spec, kinds[i].kind, (size_t)(colon - spec)))
      k = i;
  if (k < 0) {
    snprintf(err, errsz,
             "--lm %s: unknown language model (expected ngram:FILE[,order=N] or llama:FILE.gguf)",
             spec);
    return false;
  }
  LmSpec s;
  LmBackend *b = calloc(1, sizeof *b);
  bool ok = b && spec_parse(&s, spec, colon + 1, err, errsz);
  if (!b) snprintf(err, errsz, "--lm %s: out of memory", spec);
  if (ok) {
    ok = kinds[k].open(&s, b, err, errsz);
    spec_free(&s);
  } else if (b) {
    spec_free(&s);
  }
  if (!ok) {
    free(b);
    return false;
  }
  b->name = dup_n(spec, strlen(spec));
  if (!b->name) {
    lm_close(b);
    snprintf(err, errsz, "--lm %s: out of memory", spec);
    return false;
  }
  *out = b;
  return true;
}

void lm_close(LmBackend *b) {
  if (!b) return;
  if (b->destroy) b->destroy(b->self);
  free((char *)b->name);
  free(b);
}

LmBackend *lm_set_find(const LmSet *s, const char *name) {
  if (!s) return NULL;
  if (!name) name = "";
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->names[i] ? s->names[i] : "", name)) return s->b[i];
  return NULL;
}

/* ---- cursors ---------------------------------------------------------- */

static bool grow(void **p, int *cap, int need, size_t elt) {
  if (need <= *cap) return true;
  int c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  void *q = realloc(*p, (size_t)c * elt);
  if (!q) return false;
  *p = q;
  *cap = c;
  return true;
}

#define LM_FNV_PRIME 1099511628211ull
#define LM_FNV_BASIS 1469598103934665603ull

/* text_append without the hash (a fork copies its source's) */
static bool text_put(LmCursor *c, const char *s, size_t n) {
  if (c->len + n + 1 > c->cap) {
    size_t cap = c->cap ? c->cap : 64;
    while (cap < c->len + n + 1) cap *= 2;
    char *t = realloc(c->text, cap);
    if (!t) return false;
    c->text = t;
    c->cap = cap;
  }
  memcpy(c->text + c->len, s, n);
  c->len += n;
  c->text[c->len] = 0;
  return true;
}

static bool text_append(LmCursor *c, const char *s, size_t n) {
  if (!text_put(c, s, n)) return false;
  for (size_t k = 0; k < n; k++) c->hash = (c->hash ^ (uint8_t)s[k]) * LM_FNV_PRIME;
  return true;
}

bool lm_cursor_init(LmCursor *c, LmBackend *b, char *err, size_t errsz) {
  memset(c, 0, sizeof *c);
  c->b = b;
  c->hash = LM_FNV_BASIS;
  c->logp = malloc((size_t)b->n_vocab * sizeof *c->logp);
  if (!c->logp || !text_append(c, "", 0)) {
    lm_cursor_free(c);
    snprintf(err, errsz, "%s: out of memory", b->name);
    return false;
  }
  return true;
}

bool lm_cursor_fork(LmCursor *dst, const LmCursor *src, char *err, size_t errsz) {
  if (!lm_cursor_init(dst, src->b, err, errsz)) return false;
  dst->hash = src->hash;
  if (!text_put(dst, src->text, src->len) ||
      !grow((void **)&dst->pend, &dst->pcap, src->npend, sizeof *dst->pend)) {
    lm_cursor_free(dst);
    snprintf(err, errsz, "%s: out of memory", src->b->name);
    return false;
  }
  if (src->npend) memcpy(dst->pend, src->pend, (size_t)src->npend * sizeof *dst->pend);
  dst->npend = src->npend;
  if (src->st && !(dst->st = src->b->fork(src->b->self, src->st, err, errsz))) {
    lm_cursor_free(dst);
    return false;
  }
  memcpy(dst->logp, src->logp, (size_t)src->b->n_vocab * sizeof *dst->logp);
  dst->fresh = src->fresh;
  return true;
}

void lm_cursor_free(LmCursor *c) {
  if (c->st) c->b->release(c->b->self, c->st);
  free(c->text);
  free(c->pend);
  free(c->logp);
  memset(c, 0, sizeof *c);
}

/* Queue the tokens of text[0..n), appended to c's text. */
static bool queue_text(LmCursor *c, const char *text, size_t n, char *err, size_t errsz) {
  if (n == 0) return true;
  LmBackend *b = c->b;
  int room = c->pcap - c->npend;
  int k = b->tokenize(b->self, text, n, c->pend ? c->pend + c->npend : NULL, room > 0 ? room : 0, err, errsz);
  if (k < 0) return false;
  if (k > room) {
    if (!grow((void **)&c->pend, &c->pcap, c->npend + k, sizeof *c->pend)) goto oom;
    k = b->tokenize(b->self, text, n, c->pend + c->npend, k, err, errsz);
    if (k < 0) return false;
  }
  if (!text_append(c, text, n)) goto oom;
  c->npend += k;
  c->fresh = false;
  return true;
oom:
  snprintf(err, errsz, "%s: out of memory", b->name);
  return false;
}

bool lm_cursor_seek(LmCursor *c, const char *text, size_t len, char *err, size_t errsz) {
  if (len >= c->len && memcmp(text, c->text, c->len) == 0)
    return queue_text(c, text + c->len, len - c->len, err, errsz);
  /* not an extension: the state is dropped and the context read anew */
  if (c->st) c->b->release(c->b->self, c->st);
  c->st = NULL;
  c->len = 0;
  c->text[0] = 0;
  c->hash = LM_FNV_BASIS;
  c->npend = 0;
  c->fresh = false;
  return queue_text(c, text, len, err, errsz);
}

bool lm_cursor_push(LmCursor *c, int32_t tok, char *err, size_t errsz) {
  LmBackend *b = c->b;
  char buf[64];
  int n = b->token_text(b->self, tok, buf, (int)sizeof buf);
  char *big = NULL;
  if (n > (int)sizeof buf) {
    if (!(big = malloc((size_t)n))) goto oom;
    n = b->token_text(b->self, tok, big, n);
  }
  if (n < 0) {
    snprintf(err, errsz, "%s: token %d is not in the vocabulary (%d tokens)", b->name, (int)tok,
             b->n_vocab);
    return false;
  }
  bool ok = text_append(c, big ? big : buf, (size_t)n) &&
            grow((void **)&c->pend, &c->pcap, c->npend + 1, sizeof *c->pend);
  free(big);
  if (!ok) goto oom;
  c->pend[c->npend++] = tok;
  c->fresh = false;
  return true;
oom:
  snprintf(err, errsz, "%s: out of memory", b->name);
  return false;
}

bool lm_cursor_eval(LmCursor *const *cs, int n, char *err, size_t errsz) {
  int m = 0;
  for (int i = 0; i < n; i++) m += !cs[i]->fresh;
  if (m == 0) return true;
  LmBackend *b = NULL;
  LmState **st = malloc((size_t)m * sizeof *st);
  const int32_t **toks = malloc((size_t)m * sizeof *toks);
  int *nt = malloc((size_t)m * sizeof *nt);
  float *lp = malloc((size_t)m * sizeof *lp * (size_t)cs[0]->b->n_vocab);
  bool ok = st && toks && nt && lp;
  if (!ok) snprintf(err, errsz, "%s: out of memory", cs[0]->b->name);
  for (int i = 0, j = 0; ok && i < n; i++) {
    LmCursor *c = cs[i];
    if (c->fresh) continue;
    if (b && c->b != b) {
      snprintf(err, errsz, "lm_cursor_eval: cursors of two backends (%s, %s) in one batch", b->name,
               c->b->name);
      ok = false;
      break;
    }
    b = c->b;
    if (!c->st && !(c->st = b->start(b->self, err, errsz))) {
      ok = false;
      break;
    }
    st[j] = c->st;
    toks[j] = c->pend;
    nt[j] = c->npend;
    j++;
  }
  if (ok) ok = b->eval(b->self, m, st, toks, nt, lp, err, errsz) == 0;
  for (int i = 0, j = 0; ok && i < n; i++) {
    LmCursor *c = cs[i];
    if (c->fresh) continue;
    memcpy(c->logp, lp + (size_t)j * (size_t)b->n_vocab, (size_t)b->n_vocab * sizeof *lp);
    c->npend = 0;
    c->fresh = true;
    j++;
  }
  free(st);
  free(toks);
  free(nt);
  free(lp);
  return ok;
}

/* ---- scoring and sampling --------------------------------------------- */

bool lm_score(LmBackend *b, LmState *s, const int32_t *toks, int n, double *lp, char *err,
              size_t errsz) {
  for (int i = 0; i < n; i++)
    if (toks[i] < 0 || toks[i] >= b->n_vocab) {
      snprintf(err, errsz, "%s: token %d is not in the vocabulary (%d tokens)", b->name,
               (int)toks[i], b->n_vocab);
      return false;
    }
  if (b->score) return b->score(b->self, s, toks, n, lp, err, errsz) == 0;
  if (n == 0) return true;
  float *row = malloc((size_t)b->n_vocab * sizeof *row);
  if (!row) {
    snprintf(err, errsz, "%s: out of memory", b->name);
    return false;
  }
  /* each eval appends the token before and scores the one after; the last
     appends the last token (its next-token vector is not needed) */
  bool ok = true;
  for (int i = 0; ok && i <= n; i++) {
    int k = i > 0;
    const int32_t *t = i > 0 ? &toks[i - 1] : toks;
    LmState *const one[1] = {s};
    ok = b->eval(b->self, 1, one, &t, &k, row, err, errsz) == 0;
    if (ok && i < n) *lp += row[toks[i]];
  }
  free(row);
  return ok;
}

bool lm_utf8_valid(const char *text, size_t len, size_t *bad) {
  const unsigned char *u = (const unsigned char *)text;
  for (size_t i = 0; i < len;) {
    unsigned c = u[i];
    size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    bool ok = n > 0 && i + n <= len;
    for (size_t k = 1; ok && k < n; k++) ok = (u[i + k] & 0xc0) == 0x80;
    /* the second byte's range rules out overlong forms, surrogates and
       code points past U+10FFFF */
    if (ok && n > 2) {
      unsigned c1 = u[i + 1];
      ok = c == 0xe0 ? c1 >= 0xa0 : c == 0xed ? c1 <= 0x9f : c == 0xf0 ? c1 >= 0x90
         : c == 0xf4 ? c1 <= 0x8f : true;
    }
    if (!ok) {
      if (bad) *bad = i;
      return false;
    }
    i += n;
  }
  return true;
}

bool lm_check_tokens(int n_vocab, const int32_t *toks, int n, char *err, size_t errsz) {
  for (int i = 0; i < n; i++)
    if (toks[i] < 0 || toks[i] >= n_vocab) {
      snprintf(err, errsz, "token %d is not in the vocabulary (%d tokens)", (int)toks[i], n_vocab);
      return false;
    }
  return true;
}

int32_t lm_sample(const float *logp, int n_vocab, const uint8_t *allow, Rng *r, double *logz) {
  double m = -INFINITY;
  for (int i = 0; i < n_vocab; i++)
    if ((!allow || allow[i]) && logp[i] > m) m = logp[i];
  if (logz) *logz = allow ? -INFINITY : 0;
  if (!(m > -INFINITY) || isnan(m)) return -1;
  double z = 0;
  for (int i = 0; i < n_vocab; i++)
    if (!allow || allow[i]) z += exp((double)logp[i] - m);
  if (logz && allow) *logz = m + log(z);
  double u = rng_uniform(r) * z, acc = 0;
  int32_t last = -1;
  for (int i = 0; i < n_vocab; i++) {
    if ((allow && !allow[i]) || !(logp[i] > -INFINITY)) continue;
    acc += exp((double)logp[i] - m);
    last = i;
    if (u < acc) return i;
  }
  return last; /* rounding left u just above the sum: the last positive one */
}
