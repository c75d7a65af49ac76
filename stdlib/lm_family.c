/* lm_family.c — the `lm` and `lm_next` families (lm_family.h): drawing and
 * scoring strings through the run's language models, one cursor at a time.
 *
 * The density of lm(prompt, stop, max_tokens, ...) at a string x is the
 * probability of x's tokens (x tokenised on its own after the prompt, as a
 * cursor does) followed by the ending: eos, or with a stop string either eos
 * or the stop string's tokens (the two ways a generation ends before
 * max_tokens); nothing when x has max_tokens tokens.  A string containing
 * the stop string, or longer than max_tokens tokens, has density 0.  With
 * avoid, every token of the generation, the ending's included, must be free
 * of those characters (the target is the model times that indicator) and draws
 * come from the masked, renormalised model q: the draw weight is
 * log p(x) - log q(x), with q summed over the same two endings.  lm_next's
 * density at x is the mass of the tokens spelling x ("" is eos), its weight
 * log Z, the mass the mask allows.
 *
 * Scoring costs one pass over the tokens, and an inline draw is scored twice
 * (its density by the handler, its weight by the interpreter): a small memo
 * of the last scores, keyed by the call's arguments and the string, makes
 * that one pass.
 */
#include "lm_family.h"

#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/value.h"

#define LMF_MEMO 16

typedef struct LmMemo {
  char *key; /* malloc'd; NULL: unused */
  size_t keylen;
  double lp, lw;
} LmMemo;

/* The run's cursors, by the text they hold.  A draw pushes the tokens it
   drew (by id) onto a fork of the context's cursor, so the context a
   program builds from them next (`lm_next(prompt + s)`) finds a cursor
   holding exactly its text and tokens, and the context of the draw itself,
   which the handler scores next, still has its own.  A context no cursor
   holds extends the longest one that is its prefix.  The pool is shared by
   every particle and trace of the run (keyed by text, not by who drew), so
   engines that fork runs or revisit old traces (smc, mh) find what they
   left; the least recently used cursor makes room. */
#define LMF_POOL 32

typedef struct LmSlot {
  LmCursor c;
  bool used;
  uint64_t stamp; /* last use */
} LmSlot;

struct LmBinding {
  const LmSet *set;
  LmSlot pool[LMF_POOL];
  uint64_t clock;
  LmBackend *vb; /* the token texts' backend */
  char **tt;     /* token texts (malloc'd), tl their lengths */
  int *tl;
  LmBackend *mb; /* the mask's backend and avoid string */
  char *mavoid;
  uint8_t *mask;
  LmMemo memo[LMF_MEMO];
  int memo_next;
  int32_t *toks; /* scratch for tokenising */
  int tcap;
};

const char lm_families_unbound_msg[] =
    "this program draws from a language model: give one with --lm ngram:FILE or --lm "
    "llama:FILE.gguf";

__attribute__((format(printf, 3, 4))) static bool lmf_fail(char *err, size_t errsz, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
  return false;
}

static bool lmf_oom(char *err, size_t errsz) { return lmf_fail(err, errsz, "lm: out of memory"); }

/* ---- arguments ---------------------------------------------------------- */

static const char *str_of(Value v, size_t *len) {
  if (v.k != V_STR || !v.s) {
    if (len) *len = 0;
    return "";
  }
  if (len) *len = v.s->len;
  return v.s->data;
}

void lm_call_args(const DistFamily *f, const Value *p, LmArgs *a) {
  memset(a, 0, sizeof *a);
  a->next = f->nparams == 3;
  a->prompt = str_of(p[0], &a->prompt_len);
  if (a->next) {
    a->stop = "";
    a->model = str_of(p[1], NULL);
    a->avoid = str_of(p[2], NULL);
    a->max_tokens = 1;
    return;
  }
  a->stop = str_of(p[1], &a->stop_len);
  a->max_tokens = p[2].k == V_INT ? (int)p[2].i : 1;
  a->model = str_of(p[3], NULL);
  a->avoid = str_of(p[4], NULL);
}

LmBackend *lm_args_backend(const LmSet *set, const LmArgs *a, char *err, size_t errsz) {
  LmBackend *b = lm_set_find(set, a->model);
  if (b) return b;
  if (!set || set->n == 0) {
    lmf_fail(err, errsz, "%s", lm_families_unbound_msg);
    return NULL;
  }
  char have[256];
  size_t n = 0;
  have[0] = 0;
  for (int i = 0; i < set->n && n < sizeof have; i++) {
    const char *nm = set->names[i] ? set->names[i] : "";
    int w = *nm ? snprintf(have + n, sizeof have - n, "%s'%s'", i ? ", " : "", nm)
                : snprintf(have + n, sizeof have - n, "%sthe default", i ? ", " : "");
    if (w > 0) n += (size_t)w;
  }
  if (!*a->model)
    lmf_fail(err, errsz, "no default language model: the run has only named ones: %s; give "
                         "model = \"NAME\" or --lm SPEC", have);
  else
    lmf_fail(err, errsz, "no language model named '%s' (the run has: %s); give it with --lm %s=SPEC",
             a->model, have, a->model);
  return NULL;
}

/* ---- per-backend caches ------------------------------------------------- */

static void texts_free(LmBinding *B) {
  if (B->tt)
    for (int i = 0; i < B->vb->n_vocab; i++) free(B->tt[i]);
  free(B->tt);
  free(B->tl);
  B->tt = NULL;
  B->tl = NULL;
  B->vb = NULL;
}

/* Every token's text, read once per backend. */
static bool texts(LmBinding *B, LmBackend *b, char *err, size_t errsz) {
  if (B->vb == b) return true;
  texts_free(B);
  B->tt = calloc((size_t)b->n_vocab, sizeof *B->tt);
  B->tl = calloc((size_t)b->n_vocab, sizeof *B->tl);
  if (!B->tt || !B->tl) {
    free(B->tt);
    free(B->tl);
    B->tt = NULL;
    B->tl = NULL;
    return lmf_oom(err, errsz);
  }
  B->vb = b;
  char buf[64];
  for (int t = 0; t < b->n_vocab; t++) {
    int n = b->token_text(b->self, t, buf, (int)sizeof buf);
    if (n < 0) n = 0;
    char *s = malloc((size_t)n + 1);
    if (!s) return lmf_oom(err, errsz);
    if (n > (int)sizeof buf) b->token_text(b->self, t, s, n);
    else memcpy(s, buf, (size_t)n);
    s[n] = 0;
    B->tt[t] = s;
    B->tl[t] = n;
  }
  return true;
}

static const char *find(const char *h, size_t hn, const char *n, size_t nn);

/* Does s[0..n) contain one of the characters of set (UTF-8: a character is
   its whole byte sequence, so "é" does not forbid every token with a 0xc3)? */
static bool has_char_of(const char *s, size_t n, const char *set) {
  for (const char *c = set; *c;) {
    unsigned char u = (unsigned char)*c;
    size_t k = u < 0x80 ? 1 : u >= 0xf0 ? 4 : u >= 0xe0 ? 3 : u >= 0xc0 ? 2 : 1;
    size_t have = strnlen(c, k);
    if (find(s, n, c, have)) return true;
    c += have;
  }
  return false;
}

bool lm_avoid_mask(LmBackend *b, const char *avoid, uint8_t *allow, char *err, size_t errsz) {
  char buf[64];
  for (int t = 0; t < b->n_vocab; t++) {
    int n = b->token_text(b->self, t, buf, (int)sizeof buf);
    char *big = NULL;
    if (n > (int)sizeof buf) {
      if (!(big = malloc((size_t)n))) return lmf_oom(err, errsz);
      n = b->token_text(b->self, t, big, n);
    }
    allow[t] = t == b->eos || n <= 0 || !has_char_of(big ? big : buf, (size_t)n, avoid);
    free(big);
  }
  return true;
}

/* The mask of avoid for b (NULL when avoid is ""), kept for the next call. */
static bool mask_for(LmBinding *B, LmBackend *b, const char *avoid, const uint8_t **out, char *err,
                     size_t errsz) {
  *out = NULL;
  if (!*avoid) return true;
  if (B->mb == b && B->mavoid && !strcmp(B->mavoid, avoid)) {
    *out = B->mask;
    return true;
  }
  free(B->mask);
  free(B->mavoid);
  B->mb = NULL;
  B->mavoid = strdup(avoid);
  B->mask = malloc((size_t)b->n_vocab);
  if (!B->mavoid || !B->mask) return lmf_oom(err, errsz);
  if (!lm_avoid_mask(b, avoid, B->mask, err, errsz)) return false;
  B->mb = b;
  *out = B->mask;
  return true;
}

static void touch(LmBinding *B, LmSlot *s) { s->stamp = ++B->clock; }

/* A slot to fill, emptied: a free one, else the least recently used but
   keep (which the caller is about to fork). */
static LmSlot *slot_free(LmBinding *B, const LmSlot *keep) {
  LmSlot *v = NULL;
  for (int i = 0; i < LMF_POOL; i++) {
    LmSlot *s = &B->pool[i];
    if (s == keep) continue;
    if (!s->used) return s;
    if (!v || s->stamp < v->stamp) v = s;
  }
  lm_cursor_free(&v->c);
  v->used = false;
  return v;
}

/* A new cursor of the pool: a fork of src (a slot's), or at the empty
   context of b when src is NULL. */
static LmCursor *pool_new(LmBinding *B, LmBackend *b, LmCursor *src, char *err, size_t errsz) {
  LmSlot *from = src ? (LmSlot *)((char *)src - offsetof(LmSlot, c)) : NULL;
  if (from) touch(B, from);
  LmSlot *s = slot_free(B, from);
  if (!(src ? lm_cursor_fork(&s->c, src, err, errsz) : lm_cursor_init(&s->c, b, err, errsz)))
    return NULL;
  s->used = true;
  touch(B, s);
  return &s->c;
}

/* The pool's cursor of backend b standing at text[0..len): the one holding
   that text, or a fork of the longest that is a prefix of it, extended. */
static LmCursor *cursor_at(LmBinding *B, LmBackend *b, const char *text, size_t len, char *err,
                           size_t errsz) {
  LmSlot *best = NULL;
  for (int i = 0; i < LMF_POOL; i++) {
    LmSlot *s = &B->pool[i];
    if (s->used && s->c.b == b && s->c.len <= len && (!best || s->c.len > best->c.len) &&
        !memcmp(s->c.text, text, s->c.len))
      best = s;
  }
  if (best && best->c.len == len) {
    touch(B, best);
    return &best->c;
  }
  LmCursor *c = pool_new(B, b, best ? &best->c : NULL, err, errsz);
  if (!c) return NULL;
  if (!lm_cursor_seek(c, text, len, err, errsz)) {
    LmSlot *s = (LmSlot *)((char *)c - offsetof(LmSlot, c));
    lm_cursor_free(c);
    s->used = false;
    return NULL;
  }
  return c;
}

static bool eval1(LmCursor *c, char *err, size_t errsz) {
  LmCursor *const one[1] = {c};
  return lm_cursor_eval(one, 1, err, errsz);
}

/* log of the mass allow lets through (0 without a mask). */
static double log_mass(const float *logp, int n, const uint8_t *allow) {
  if (!allow) return 0;
  double m = -INFINITY;
  for (int i = 0; i < n; i++)
    if (allow[i] && logp[i] > m) m = logp[i];
  if (!(m > -INFINITY)) return -INFINITY;
  double z = 0;
  for (int i = 0; i < n; i++)
    if (allow[i]) z += exp((double)logp[i] - m);
  return m + log(z);
}

static double log_add(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  double m = a > b ? a : b;
  return m + log(exp(a - m) + exp(b - m));
}

static bool tokenize(LmBinding *B, LmBackend *b, const char *s, size_t n, int *ntok, char *err,
                     size_t errsz) {
  *ntok = 0;
  if (n == 0) return true;
  int k = b->tokenize(b->self, s, n, B->toks, B->tcap, err, errsz);
  if (k < 0) return false;
  if (k > B->tcap) {
    int32_t *t = realloc(B->toks, sizeof *t * (size_t)k);
    if (!t) return lmf_oom(err, errsz);
    B->toks = t;
    B->tcap = k;
    k = b->tokenize(b->self, s, n, B->toks, B->tcap, err, errsz);
    if (k < 0) return false;
  }
  *ntok = k;
  return true;
}


static const char *find(const char *h, size_t hn, const char *n, size_t nn) {
  if (nn == 0 || nn > hn) return NULL;
  for (size_t i = 0; i + nn <= hn; i++)
    if (h[i] == n[0] && !memcmp(h + i, n, nn)) return h + i;
  return NULL;
}

/* ---- scoring ------------------------------------------------------------ */

/* The stop route of an ending: the stop string's tokens after cursor c's
   context (its logp fresh), target and proposal log-probabilities. */
static bool stop_route(LmBinding *B, LmBackend *b, LmCursor *c, const LmArgs *a,
                       const uint8_t *allow, double *ps, double *qs, char *err, size_t errsz) {
  *ps = *qs = 0;
  int ns;
  if (!tokenize(B, b, a->stop, a->stop_len, &ns, err, errsz)) return false;
  int32_t *st = malloc(sizeof *st * (size_t)(ns ? ns : 1));
  if (!st) return lmf_oom(err, errsz);
  memcpy(st, B->toks, sizeof *st * (size_t)ns);
  LmCursor f;
  if (!lm_cursor_fork(&f, c, err, errsz)) {
    free(st);
    return false;
  }
  bool ok = true;
  for (int j = 0; ok && j < ns; j++) {
    if (j > 0) ok = lm_cursor_push(&f, st[j - 1], err, errsz) && eval1(&f, err, errsz);
    if (!ok) break;
    double l = f.logp[st[j]];
    if (allow && !allow[st[j]]) l = -INFINITY;
    *ps += l;
    *qs += l - log_mass(f.logp, b->n_vocab, allow);
    if (*ps == -INFINITY) break;
  }
  lm_cursor_free(&f);
  free(st);
  if (*ps == -INFINITY) *qs = -INFINITY;
  return ok;
}

/* lp: the family's log density at x; lw: the draw weight, lp - log q(x). */
static bool score_lm(LmBinding *B, LmBackend *b, const LmArgs *a, const char *x, size_t xn,
                     double *lp, double *lw, char *err, size_t errsz) {
  *lp = *lw = -INFINITY;
  if (a->stop_len && find(x, xn, a->stop, a->stop_len)) return true;
  const uint8_t *allow;
  int nt;
  if (!mask_for(B, b, a->avoid, &allow, err, errsz) || !tokenize(B, b, x, xn, &nt, err, errsz))
    return false;
  if (nt > a->max_tokens) return true;
  int32_t *xt = malloc(sizeof *xt * (size_t)(nt ? nt : 1));
  if (!xt) return lmf_oom(err, errsz);
  memcpy(xt, B->toks, sizeof *xt * (size_t)nt);
  double p = 0, q = 0;
  /* x's tokens go on a fork: the prompt's cursor stays for the next call */
  LmCursor *pc = cursor_at(B, b, a->prompt, a->prompt_len, err, errsz), c;
  if (!pc || !eval1(pc, err, errsz) || !lm_cursor_fork(&c, pc, err, errsz)) {
    free(xt);
    return false;
  }
  bool ok = true;
  for (int i = 0; ok && i < nt && p > -INFINITY; i++) {
    ok = eval1(&c, err, errsz);
    if (!ok) break;
    double l = allow && !allow[xt[i]] ? -INFINITY : c.logp[xt[i]]; /* the mask, per token */
    p += l;
    q += l - log_mass(c.logp, b->n_vocab, allow);
    ok = lm_cursor_push(&c, xt[i], err, errsz);
  }
  free(xt);
  if (ok && p > -INFINITY && nt < a->max_tokens && (ok = eval1(&c, err, errsz))) {
    double lz = log_mass(c.logp, b->n_vocab, allow);
    double pe = b->eos >= 0 ? c.logp[b->eos] : -INFINITY, qe = pe - lz;
    double ps, qs;
    if (a->stop_len && (ok = stop_route(B, b, &c, a, allow, &ps, &qs, err, errsz))) {
      pe = log_add(pe, ps);
      qe = log_add(qe, qs);
    }
    p += pe;
    q += qe;
  }
  lm_cursor_free(&c);
  if (!ok) return false;
  *lp = p;
  *lw = p > -INFINITY ? p - q : -INFINITY;
  return true;
}

static bool score_next(LmBinding *B, LmBackend *b, const LmArgs *a, const char *x, size_t xn,
                       double *lp, double *lw, char *err, size_t errsz) {
  *lp = *lw = -INFINITY;
  if (has_char_of(x, xn, a->avoid)) return true;
  const uint8_t *allow;
  LmCursor *c;
  if (!mask_for(B, b, a->avoid, &allow, err, errsz) || !texts(B, b, err, errsz) ||
      !(c = cursor_at(B, b, a->prompt, a->prompt_len, err, errsz)) || !eval1(c, err, errsz))
    return false;
  double p = -INFINITY;
  if (xn == 0) {
    p = b->eos >= 0 ? c->logp[b->eos] : -INFINITY;
  } else {
    for (int t = 0; t < b->n_vocab; t++)
      if (t != b->eos && (size_t)B->tl[t] == xn && !memcmp(B->tt[t], x, xn))
        p = log_add(p, c->logp[t]);
  }
  *lp = p;
  *lw = p > -INFINITY ? log_mass(c->logp, b->n_vocab, allow) : -INFINITY;
  return true;
}

/* The memo's key: the arguments and the string, length-prefixed. */
static char *memo_key(const LmArgs *a, const char *x, size_t xn, size_t *len) {
  const char *part[5] = {a->prompt, a->stop, a->model, a->avoid, x};
  size_t plen[5] = {a->prompt_len, a->stop_len, strlen(a->model), strlen(a->avoid), xn};
  size_t n = 2 * sizeof(int);
  for (int i = 0; i < 5; i++) n += sizeof(size_t) + plen[i];
  char *k = malloc(n), *w = k;
  if (!k) return NULL;
  int hdr[2] = {a->next, a->max_tokens};
  memcpy(w, hdr, sizeof hdr);
  w += sizeof hdr;
  for (int i = 0; i < 5; i++) {
    memcpy(w, &plen[i], sizeof(size_t));
    w += sizeof(size_t);
    memcpy(w, part[i], plen[i]);
    w += plen[i];
  }
  *len = n;
  return k;
}

static bool score(LmBinding *B, const Value *p, const DistFamily *f, Value x, double *lp,
                  double *lw, char *err, size_t errsz) {
  LmArgs a;
  lm_call_args(f, p, &a);
  size_t xn;
  const char *xs = str_of(x, &xn);
  if (x.k != V_STR) return lmf_fail(err, errsz, "%s: the value must be a string", f->name);
  LmBackend *b = lm_args_backend(B->set, &a, err, errsz);
  if (!b) return false;
  size_t kl;
  char *key = memo_key(&a, xs, xn, &kl);
  if (!key) return lmf_oom(err, errsz);
  for (int i = 0; i < LMF_MEMO; i++) {
    LmMemo *m = &B->memo[i];
    if (m->key && m->keylen == kl && !memcmp(m->key, key, kl)) {
      free(key);
      *lp = m->lp;
      *lw = m->lw;
      return true;
    }
  }
  bool ok = a.next ? score_next(B, b, &a, xs, xn, lp, lw, err, errsz)
                   : score_lm(B, b, &a, xs, xn, lp, lw, err, errsz);
  if (!ok) {
    free(key);
    return false;
  }
  LmMemo *m = &B->memo[B->memo_next];
  B->memo_next = (B->memo_next + 1) % LMF_MEMO;
  free(m->key);
  *m = (LmMemo){key, kl, *lp, *lw};
  return true;
}

/* ---- the family's kernels ------------------------------------------------ */

static bool lmf_lpdf(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz,
                     const DistFamily *f) {
  double lw;
  return score(ctx, p, f, x, out, &lw, err, errsz);
}

static bool lmf_weight(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz,
                       const DistFamily *f) {
  double lp;
  return score(ctx, p, f, x, &lp, out, err, errsz);
}

/* The text of token t appended to out (a growing malloc'd buffer). */
static bool append_token(LmBackend *b, int32_t t, char **out, size_t *len, size_t *cap, char *err,
                         size_t errsz) {
  char buf[64];
  int n = b->token_text(b->self, t, buf, (int)sizeof buf);
  if (n < 0) return lmf_fail(err, errsz, "%s: token %d is not in the vocabulary", b->name, (int)t);
  if (*len + (size_t)n + 1 > *cap) {
    size_t c = *cap ? *cap : 64;
    while (c < *len + (size_t)n + 1) c *= 2;
    char *s = realloc(*out, c);
    if (!s) return lmf_oom(err, errsz);
    *out = s;
    *cap = c;
  }
  if (n > (int)sizeof buf) b->token_text(b->self, t, *out + *len, n);
  else memcpy(*out + *len, buf, (size_t)n);
  *len += (size_t)n;
  (*out)[*len] = 0;
  return true;
}

static bool lmf_rng(void *ctx, Rng *r, const Value *p, Value *out, char *err, size_t errsz,
                    const DistFamily *f) {
  LmBinding *B = ctx;
  LmArgs a;
  lm_call_args(f, p, &a);
  LmBackend *b = lm_args_backend(B->set, &a, err, errsz);
  const uint8_t *allow;
  LmCursor *pc, *c;
  /* the draw goes on a fork of the prompt's cursor, which stays for the
     handler's scoring of this draw; the fork, holding the drawn token ids,
     is where the program's next context finds them */
  if (!b || !mask_for(B, b, a.avoid, &allow, err, errsz) ||
      !(pc = cursor_at(B, b, a.prompt, a.prompt_len, err, errsz)) || !eval1(pc, err, errsz) ||
      !(c = pool_new(B, b, pc, err, errsz)))
    return false;
  char *s = NULL;
  size_t len = 0, cap = 0;
  bool ok = true;
  for (int n = 0; ok && n < a.max_tokens; n++) {
    ok = eval1(c, err, errsz);
    if (!ok) break;
    double lz;
    int32_t t = lm_sample(c->logp, b->n_vocab, allow, r, &lz);
    if (t < 0 || t == b->eos) break; /* t < 0: nothing allowed is possible; the weight says so */
    size_t before = len;
    ok = append_token(b, t, &s, &len, &cap, err, errsz) && lm_cursor_push(c, t, err, errsz);
    if (ok && a.stop_len) {
      size_t from = before >= a.stop_len ? before - a.stop_len + 1 : 0;
      const char *hit = find(s + from, len - from, a.stop, a.stop_len);
      if (hit) {
        len = (size_t)(hit - s);
        break;
      }
    }
  }
  if (ok) *out = val_strn(s ? s : "", len);
  free(s);
  return ok;
}

/* A kernel receives the binding only, so each family has its own
   trampolines that name it. */
static bool lm_lpdf_k(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz);
static bool lm_rng_k(void *ctx, Rng *r, const Value *p, Value *out, char *err, size_t errsz);
static bool lm_w_k(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz);
static bool next_lpdf_k(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz);
static bool next_rng_k(void *ctx, Rng *r, const Value *p, Value *out, char *err, size_t errsz);
static bool next_w_k(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz);

static bool lm_check(const Value *p, char *err, size_t errsz) {
  if (p[2].k == V_INT && (p[2].i < 1 || p[2].i > 1000000))
    return lmf_fail(err, errsz, "lm: max_tokens must be in 1..1000000, got %lld", (long long)p[2].i);
  return true;
}

static const DistFamily lm_proto = {
    .name = "lm",
    .nparams = 5,
    .pnames = {"prompt", "stop", "max_tokens", "model", "avoid"},
    .ptype = {{TY_STRING, 0}, {TY_STRING, 0}, {TY_INT, 0}, {TY_STRING, 0}, {TY_STRING, 0}},
    .pdom = {PD_CUSTOM, PD_CUSTOM, PD_CUSTOM, PD_CUSTOM, PD_CUSTOM},
    .vtype = {TY_STRING, 0},
    .check = lm_check,
    .lpdf_ctx = lm_lpdf_k,
    .rng_ctx = lm_rng_k,
    .draw_weight_ctx = lm_w_k,
    .pdefault = {NULL, "", "64", "", ""},
};

static const DistFamily next_proto = {
    .name = "lm_next",
    .nparams = 3,
    .pnames = {"context", "model", "avoid"},
    .ptype = {{TY_STRING, 0}, {TY_STRING, 0}, {TY_STRING, 0}},
    .pdom = {PD_CUSTOM, PD_CUSTOM, PD_CUSTOM},
    .vtype = {TY_STRING, 0},
    .lpdf_ctx = next_lpdf_k,
    .rng_ctx = next_rng_k,
    .draw_weight_ctx = next_w_k,
    .pdefault = {NULL, "", ""},
};

static bool lm_lpdf_k(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz) {
  return lmf_lpdf(ctx, p, x, out, err, errsz, &lm_proto);
}
static bool lm_rng_k(void *ctx, Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  return lmf_rng(ctx, r, p, out, err, errsz, &lm_proto);
}
static bool lm_w_k(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz) {
  return lmf_weight(ctx, p, x, out, err, errsz, &lm_proto);
}
static bool next_lpdf_k(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz) {
  return lmf_lpdf(ctx, p, x, out, err, errsz, &next_proto);
}
static bool next_rng_k(void *ctx, Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  return lmf_rng(ctx, r, p, out, err, errsz, &next_proto);
}
static bool next_w_k(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz) {
  return lmf_weight(ctx, p, x, out, err, errsz, &next_proto);
}

bool lm_family_is(const DistFamily *f) {
  return f && (f->rng_ctx == lm_rng_k || f->rng_ctx == next_rng_k);
}

/* ---- binding ------------------------------------------------------------ */

const LmSet *lm_family_set(const DistFamily *f) {
  return lm_family_is(f) && f->ctx ? ((const LmBinding *)f->ctx)->set : NULL;
}

LmFamilies *lm_families_new(void) {
  LmFamilies *f = gc_alloc(sizeof *f);
  f->bind = calloc(1, sizeof *f->bind);
  if (!f->bind) return NULL;
  f->lm = lm_proto;
  f->lm_next = next_proto;
  f->lm.ctx = f->bind;
  f->lm_next.ctx = f->bind;
  return f;
}

static void caches_free(LmBinding *B) {
  for (int i = 0; i < LMF_POOL; i++)
    if (B->pool[i].used) lm_cursor_free(&B->pool[i].c);
  memset(B->pool, 0, sizeof B->pool);
  B->clock = 0;
  texts_free(B);
  free(B->mask);
  free(B->mavoid);
  B->mask = NULL;
  B->mavoid = NULL;
  B->mb = NULL;
  for (int i = 0; i < LMF_MEMO; i++) {
    free(B->memo[i].key);
    B->memo[i].key = NULL;
  }
  B->memo_next = 0;
  free(B->toks);
  B->toks = NULL;
  B->tcap = 0;
}

void lm_families_bind(LmFamilies *f, const LmSet *set) {
  caches_free(f->bind);
  f->bind->set = set;
}

void lm_families_free(LmFamilies *f) {
  if (!f || !f->bind) return;
  caches_free(f->bind);
  free(f->bind);
  f->bind = NULL;
}
