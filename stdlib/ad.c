/* ad.c — the reverse-mode tape of stdlib/ad.h.
 *
 * Nodes live in three growing arrays: for node k, its parents and the local
 * partials d(k)/d(parent) occupy [start[k], start[k+1]) of par/dv.  Nothing is
 * allocated per node, a reset only rewinds the counters, and the backward
 * sweep is one pass over the arrays from the output down.
 *
 * Block nodes sit in a fourth array in id order; the sweep runs the scalar
 * loop down to the next block's last id, calls the block's rule, jumps below
 * its first id and goes on.  Their saved state lives in two arenas of chunks
 * (scanned and atomic) that a reset rewinds, so a repeated recording reuses
 * the same chunks. */
#include "ad.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../core/value.h"
#include "mathfn.h"
#include "scalar_rule.h"

typedef struct TapeBlock {
  int32_t first, last; /* its ids */
  TapeVjp vjp;
  void *ctx;
} TapeBlock;

/* A deferred flush; kept sorted by last, highest first (the sweep's order). */
typedef struct TapeDefer {
  int32_t first, last;
  TapeFlush flush;
  void *ctx;
} TapeDefer;

/* Chunks kept across resets; cur is the chunk being filled. */
typedef struct Arena {
  char **chunk;
  size_t *size;
  int n, cap, cur;
  size_t used;
  bool atomic;
} Arena;

struct Tape {
  size_t n, cap;         /* nodes 1..n; start has cap + 2 slots */
  size_t m, mcap;        /* parent entries in par/dv */
  size_t *start;         /* node k's parents: start[k] .. start[k+1] */
  int32_t *par;
  double *dv;
  TapeBlock *blk;        /* blocks in id order */
  int nblk, capblk;
  TapeDefer *dfr;        /* deferred flushes, by last descending */
  int ndfr, capdfr;
  Arena mem, num;        /* tape_alloc, tape_alloc_atomic */
  char err[200];
};

Tape *tape_new(void) {
  Tape *t = gc_alloc(sizeof(Tape));
  t->cap = 256;
  t->mcap = 512;
  t->start = gc_alloc_atomic(sizeof(size_t) * (t->cap + 2));
  t->par = gc_alloc_atomic(sizeof(int32_t) * t->mcap);
  t->dv = gc_alloc_atomic(sizeof(double) * t->mcap);
  t->num.atomic = true;
  return t;
}

void tape_reset(Tape *t) {
  t->n = 0;
  t->m = 0;
  t->start[1] = 0;
  t->nblk = 0;
  t->ndfr = 0;
  t->mem.cur = t->num.cur = 0;
  t->mem.used = t->num.used = 0;
  t->err[0] = 0;
}

size_t tape_size(const Tape *t) { return t->n; }

TapeMark tape_mark(const Tape *t) {
  return (TapeMark){.n = t->n, .m = t->m, .mem_used = t->mem.used, .num_used = t->num.used,
                    .nblk = t->nblk, .mem_cur = t->mem.cur, .num_cur = t->num.cur,
                    .ok = t->ndfr == 0 && !t->err[0]};
}

/* Flushes are kept sorted, not in the order of their recording, so only a
   mark without any can tell which came after it (all of them). */
bool tape_rewind(Tape *t, const TapeMark *k) {
  if (!k->ok || k->n > t->n) return false;
  t->n = k->n, t->m = k->m;
  t->start[t->n + 1] = t->m;
  t->nblk = k->nblk;
  t->ndfr = 0;
  t->mem.cur = k->mem_cur, t->mem.used = k->mem_used;
  t->num.cur = k->num_cur, t->num.used = k->num_used;
  t->err[0] = 0;
  return true;
}

/* Room for one more node with k parents. */
static void tape_grow(Tape *t, size_t k) {
  if (t->n + 1 > t->cap) {
    size_t cap = 2 * t->cap;
    size_t *s = gc_alloc_atomic(sizeof(size_t) * (cap + 2));
    memcpy(s, t->start, sizeof(size_t) * (t->n + 2));
    t->start = s;
    t->cap = cap;
  }
  if (t->m + k > t->mcap) {
    size_t cap = 2 * t->mcap;
    while (cap < t->m + k) cap *= 2;
    int32_t *p = gc_alloc_atomic(sizeof(int32_t) * cap);
    double *d = gc_alloc_atomic(sizeof(double) * cap);
    memcpy(p, t->par, sizeof(int32_t) * t->m);
    memcpy(d, t->dv, sizeof(double) * t->m);
    t->par = p;
    t->dv = d;
    t->mcap = cap;
  }
}

int32_t tape_var(Tape *t, double v) {
  (void)v;
  tape_grow(t, 0);
  t->n++;
  t->start[t->n + 1] = t->m;
  return (int32_t)t->n;
}

int32_t tape_push(Tape *t, int n, const int32_t *parents, const double *partials) {
  int live = 0;
  for (int i = 0; i < n; i++) live += parents[i] != 0;
  if (!live) return 0;
  tape_grow(t, (size_t)live);
  for (int i = 0; i < n; i++) {
    if (!parents[i]) continue;
    t->par[t->m] = parents[i];
    t->dv[t->m] = partials[i];
    t->m++;
  }
  t->n++;
  t->start[t->n + 1] = t->m;
  return (int32_t)t->n;
}

int32_t tape_unary(Tape *t, int32_t a, double da) {
  if (!a) return 0;
  return tape_push(t, 1, &a, &da);
}

int32_t tape_binary(Tape *t, int32_t a, double da, int32_t b, double db) {
  if (!a) return tape_unary(t, b, db);
  if (!b) return tape_unary(t, a, da);
  int32_t p[2] = {a, b};
  double d[2] = {da, db};
  return tape_push(t, 2, p, d);
}

/* The sweep from node `top` down.  Between blocks it is the scalar loop as it
 * always was; a block's rule runs once every id above it is done, and a
 * deferred flush before the first node or block that reads its ids. */
static void sweep(const Tape *t, size_t top, double *adj) {
  int b = t->nblk - 1, d = 0;
  while (b >= 0 && (size_t)t->blk[b].first > top) b--;
  size_t k = top;
  for (;;) {
    while (d < t->ndfr && (size_t)t->dfr[d].last >= k) {
      t->dfr[d].flush(t->dfr[d].ctx, adj);
      d++;
    }
    size_t stop = b >= 0 ? (size_t)t->blk[b].last : 0;
    size_t fl = d < t->ndfr ? (size_t)t->dfr[d].last : 0, lim = stop > fl ? stop : fl;
    for (; k > lim; k--) {
      double a = adj[k];
      if (a == 0) continue;
      for (size_t q = t->start[k]; q < t->start[k + 1]; q++) adj[t->par[q]] += a * t->dv[q];
    }
    if (k > stop) continue; /* at a flush's ids: flush, then go on */
    if (b < 0) return;
    const TapeBlock *B = &t->blk[b--];
    while (d < t->ndfr && t->dfr[d].last >= B->first) {
      t->dfr[d].flush(t->dfr[d].ctx, adj);
      d++;
    }
    if (B->vjp) {
      const double *g = adj + B->first;
      size_t n = (size_t)(B->last - B->first) + 1, i = 0;
      while (i < n && g[i] == 0) i++;
      if (i < n) B->vjp(B->ctx, g, adj);
    }
    k = (size_t)B->first - 1;
  }
}

void tape_backward(const Tape *t, int32_t out, double *adj) {
  memset(adj, 0, sizeof(double) * (t->n + 1));
  if (out <= 0 || (size_t)out > t->n) return;
  adj[out] = 1;
  sweep(t, (size_t)out, adj);
}

/* ---- block nodes ---- */

int32_t tape_block(Tape *t, size_t n, TapeVjp vjp, void *ctx) {
  if (n == 0) return 0;
  if (t->n + n > t->cap) {
    size_t cap = 2 * t->cap;
    while (cap < t->n + n) cap *= 2;
    size_t *s = gc_alloc_atomic(sizeof(size_t) * (cap + 2));
    memcpy(s, t->start, sizeof(size_t) * (t->n + 2));
    t->start = s;
    t->cap = cap;
  }
  t->blk = gc_grow(t->blk, t->nblk, &t->capblk, sizeof(TapeBlock));
  int32_t first = (int32_t)t->n + 1;
  t->blk[t->nblk++] = (TapeBlock){first, first + (int32_t)n - 1, vjp, ctx};
  /* the elements have no scalar parents; only the next node's start is read */
  t->n += n;
  t->start[t->n + 1] = t->m;
  return first;
}

bool tape_defer(Tape *t, int32_t first, int32_t last, TapeFlush flush, void *ctx) {
  if (t->ndfr >= TAPE_MAXDEFER) return false;
  t->dfr = gc_grow(t->dfr, t->ndfr, &t->capdfr, sizeof(TapeDefer));
  int i = t->ndfr++;
  for (; i > 0 && t->dfr[i - 1].last < last; i--) t->dfr[i] = t->dfr[i - 1];
  t->dfr[i] = (TapeDefer){first, last, flush, ctx};
  return true;
}

void *tape_deferred(const Tape *t, int32_t first, int32_t last, TapeFlush flush) {
  for (int i = 0; i < t->ndfr; i++)
    if (t->dfr[i].first == first && t->dfr[i].last == last && t->dfr[i].flush == flush) return t->dfr[i].ctx;
  return NULL;
}

static void *arena_alloc(Arena *a, size_t bytes) {
  bytes = (bytes + 15) & ~(size_t)15;
  for (;;) {
    if (a->cur < a->n && a->used + bytes <= a->size[a->cur]) {
      void *p = a->chunk[a->cur] + a->used;
      a->used += bytes;
      return p;
    }
    if (a->cur + 1 < a->n) { /* the next kept chunk */
      a->cur++;
      a->used = 0;
      continue;
    }
    size_t size = a->n ? 2 * a->size[a->n - 1] : 4096;
    while (size < bytes) size *= 2;
    if (a->n == a->cap) {
      int cap = a->cap ? 2 * a->cap : 8;
      char **c = gc_alloc(sizeof(char *) * (size_t)cap);
      size_t *z = gc_alloc_atomic(sizeof(size_t) * (size_t)cap);
      if (a->n) {
        memcpy(c, a->chunk, sizeof(char *) * (size_t)a->n);
        memcpy(z, a->size, sizeof(size_t) * (size_t)a->n);
      }
      a->chunk = c;
      a->size = z;
      a->cap = cap;
    }
    a->chunk[a->n] = a->atomic ? gc_alloc_atomic(size) : gc_alloc(size);
    a->size[a->n++] = size;
    a->cur = a->n - 1;
    a->used = 0;
  }
}

void *tape_alloc(Tape *t, size_t bytes) { return arena_alloc(&t->mem, bytes); }
void *tape_alloc_atomic(Tape *t, size_t bytes) { return arena_alloc(&t->num, bytes); }

static size_t arena_bytes(const Arena *a) {
  size_t s = 0;
  for (int i = 0; i < a->n; i++) s += a->size[i];
  return s;
}

size_t tape_bytes(const Tape *t) {
  return sizeof(size_t) * (t->cap + 2) + (sizeof(int32_t) + sizeof(double)) * t->mcap +
         sizeof(TapeBlock) * (size_t)t->capblk + sizeof(TapeDefer) * (size_t)t->capdfr + arena_bytes(&t->mem) + arena_bytes(&t->num);
}

const char *tape_error(const Tape *t) { return t->err[0] ? t->err : NULL; }

void tape_fail(Tape *t, const char *fmt, ...) {
  if (t->err[0]) return; /* the first failure is the one to report */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->err, sizeof t->err, fmt, ap);
  va_end(ap);
}

/* ---- composed scalar operations ---- */

/* The value and partials of a scalar rule (scalar_rule.h), recorded. */
#define AD_RULE2(name)                                                                              AdNum ad_##name(Tape *t, AdNum a, AdNum b) {                                                        double z = sr_##name(a.v, b.v), da, db;                                                           sr_##name##_d(a.v, b.v, z, &da, &db);                                                             return (AdNum){z, tape_binary(t, a.n, da, b.n, db)};                                            }
#define AD_RULE1(name)                                                                              AdNum ad_##name(Tape *t, AdNum a) {                                                                 double z = sr_##name##1(a.v);                                                                     return (AdNum){z, tape_unary(t, a.n, sr_##name##_d1(a.v, z))};                                  }
AD_RULE2(add)
AD_RULE2(sub)
AD_RULE2(mul)
AD_RULE2(div)
AD_RULE1(exp)
AD_RULE1(log)
AD_RULE1(log1p)
AD_RULE1(sqrt)
AdNum ad_scale(Tape *t, AdNum a, double c) { return (AdNum){c * a.v, tape_unary(t, a.n, c)}; }
AdNum ad_tanh(Tape *t, AdNum a) {
  double th = tanh(a.v);
  return (AdNum){th, tape_unary(t, a.n, 1 - th * th)};
}
AdNum ad_inv_logit(Tape *t, AdNum a) {
  double p = m_inv_logit(a.v);
  return (AdNum){p, tape_unary(t, a.n, p * m_inv_logit(-a.v))};
}
AdNum ad_log_inv_logit(Tape *t, AdNum a) {
  return (AdNum){m_log_inv_logit(a.v), tape_unary(t, a.n, m_inv_logit(-a.v))};
}
AdNum ad_log1m_inv_logit(Tape *t, AdNum a) {
  return (AdNum){m_log1m_inv_logit(a.v), tape_unary(t, a.n, -m_inv_logit(a.v))};
}

AdNum ad_sum(Tape *t, int n, const AdNum *a) {
  int32_t pb[32];
  double db[32];
  int32_t *p = n <= 32 ? pb : gc_alloc_atomic(sizeof(int32_t) * (size_t)n);
  double *d = n <= 32 ? db : gc_alloc_atomic(sizeof(double) * (size_t)n);
  double s = 0;
  for (int i = 0; i < n; i++) {
    s += a[i].v;
    p[i] = a[i].n;
    d[i] = 1;
  }
  return (AdNum){s, tape_push(t, n, p, d)};
}

void tape_backward_seeded(const Tape *t, double *adj) { sweep(t, t->n, adj); }
