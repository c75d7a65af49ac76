/* interp.c — the resumable, forkable IR interpreter (see interp.h).
 *
 * An execution is data, not a C call stack: an InterpState holds frames (one
 * per active user-function call: its register file and a stack of block
 * cursors), so a run can stop after any observation, be resumed later, or be
 * forked into independent copies (SMC particles).  Control flow and calls never
 * recurse in C; recursion of user functions is bounded by INTERP_MAX_FRAMES.
 *
 * Copy-on-write: each frame has one "owned" bit per register.  A register is
 * owned when its value (the whole container tree) is referenced from nowhere
 * else, and only then is IR_STORE allowed to write into it in place; otherwise
 * the store first deep-copies.  Moves, calls, data, handler results and forks
 * share containers and clear the bits, so forking costs one pass over the
 * registers, never over the containers.
 *
 * A second bit marks registers of variables declared with sizes (IR_DECL,
 * IR_SAMPLE, IR_DATA): any later container written into them must keep that
 * shape, as in Stan.  Unsized locals (function code) may change size.
 */
#include "interp.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../stdlib/ode.h"
#include "interp_ops.h"
#include "net.h"
#include "plate_vec.h"

#define INTERP_MAX_FRAMES 10000
#define ERRSZ 512

typedef enum { CK_BLOCK, CK_FOR, CK_WCOND, CK_WBODY } CursorKind;

/* Where a frame is in one (nested) block; loops keep their state here. */
typedef struct Cursor {
  const IrBlock *blk;
  int pc;                /* next instruction */
  uint8_t kind;          /* CursorKind */
  const IrInstr *loop;   /* the IR_FOR / IR_WHILE owning this cursor */
  int64_t i, hi;         /* for: current index and inclusive bound */
  /* a subsampled plate: its indices sub[0..nsub) (i = sub[k]), and the
     factor N / nsub its events are scaled by (interp_plate_scale) */
  const int64_t *sub;
  int64_t k, nsub;
  double scale;
  bool vec;              /* a plate run once over its minibatch: addresses show
                            the loop variable's name, not an index */
} Cursor;

typedef struct Frame {
  const IrFunc *fn;
  Value *regs;
  uint8_t *flags;        /* per register: F_OWNED, F_SIZED */
  int regcap;            /* capacity of regs/flags (buffers are reused by later calls) */
  SrcPos call_pos;       /* position of the call that made this frame */
  int ret_dst;           /* caller's register for the result, -1 if none */
  Cursor *cur;
  int ncur, capcur;
  const char *prefix;    /* address prefix "walk/step[2]/", NULL until first needed */
} Frame;

/* Addresses used so far in a run: address -> number of occurrences, as a
   persistent hash trie (16 children per level on the key's 64-bit hash).  A
   fork shares the whole trie; an insertion copies only the nodes on its path
   that the state does not own, so SMC's memory grows with the particles'
   distinct histories, not N * T.  Nodes carry the epoch of the state that
   made them: a state updates its own nodes in place (a run without forks
   allocates one node per new address, like a hash table), and a fork gives
   both sides fresh epochs, so neither writes to what they now share. */
typedef struct AddrLeaf {
  bool leaf; /* true */
  uint64_t epoch;
  uint64_t h;
  const char *key;
  int count;
  struct AddrLeaf *next; /* other keys with the same full hash */
} AddrLeaf;

typedef struct AddrBranch {
  bool leaf; /* false */
  uint64_t epoch;
  void *child[16];
} AddrBranch;

typedef struct AddrSet {
  void *root;     /* AddrLeaf, AddrBranch or NULL */
  uint64_t epoch; /* nodes with this epoch belong to this state alone */
} AddrSet;

/* Epochs only need to be distinct: a process-wide counter hands them out. */
static _Atomic uint64_t addr_epochs = 1;
static uint64_t epoch_new(void) { return atomic_fetch_add(&addr_epochs, 1); }

static AddrSet *addrs_new(void *root) {
  AddrSet *a = gc_alloc(sizeof(AddrSet));
  a->root = root;
  a->epoch = epoch_new();
  return a;
}

struct Interp {
  const IrProgram *p;
  FILE *out;
  Value *data_regs;      /* main's registers after the data block */
  pthread_mutex_t cache_mu; /* guards cache: what engines build once per program and data */
  void *cache[INTERP_CACHE_SLOTS];
  /* simulated data (interp_load_data_sim): names, main registers (-1 until
     the data block declares them), and per main register whether it is one */
  int nsim;
  const char **sim_names;
  int *sim_reg;
  bool *sim_mask;
};

/* PH_CALL: a state that runs one function for ode_rk45's solver */
enum { PH_DATA, PH_MODEL, PH_GEN, PH_DONE, PH_ERROR, PH_CALL };

enum {
  F_OWNED = 1, /* the value is referenced from nowhere else: writable in place */
  F_SIZED = 2, /* a variable declared with sizes: its shape is fixed */
};

struct InterpState {
  const Interp *in;
  Rng rng;
  Frame *frames;
  int nframes, capframes;
  uint8_t phase;
  bool gen;
  bool relaxed;      /* a handler may give an int scalar latent a real (interp_set_relaxed) */
  AddrSet *addrs;
  long events;
  Tape *tape;        /* AD runs: operations on node-carrying reals are recorded */
  int32_t factor_ad; /* node of the last factor passed to the handler */
  int ode_depth;     /* ode_rk45 calls this state runs inside of (nested solves) */
  Tape *net_scratch; /* networks' arena in runs without a tape; not shared by forks */
  NetMemo net_memo;  /* the weights' nodes last found consecutive (net.h) */
  const PvSet *pv;   /* plates to run once over their rows (interp_set_plate_vec) */
  /* A choice whose handler suspended (HR_SUSPEND from sample): the run waits
     for interp_provide.  The record is a value, so a fork copies it and each
     copy can be given its own value. */
  bool pending;
  bool provided;        /* interp_provide has filled the destination */
  InterpChoice pend;
  const IrInstr *pend_ins;
  int pend_n;           /* sizes of the pending value */
  int64_t pend_sz[8];
  /* Latents no output register holds (in loops, branches, functions): newest
     first, a persistent list, so a fork shares it and appends privately. */
  const struct LatNode *nested;
  int nnested;
  uint64_t steps;       /* instructions executed (interp_steps) */
};

typedef struct LatNode {
  const struct LatNode *next;
  InterpLatent l;
} LatNode;

/* ---- frames and cursors ---------------------------------------------------- */

static Cursor *push_cursor(Frame *f, const IrBlock *b, CursorKind k) {
  if (f->ncur == f->capcur) {
    int cap = f->capcur ? 2 * f->capcur : 8;
    Cursor *c = gc_alloc(sizeof(Cursor) * (size_t)cap);
    if (f->ncur) memcpy(c, f->cur, sizeof(Cursor) * (size_t)f->ncur);
    f->cur = c;
    f->capcur = cap;
  }
  Cursor *c = &f->cur[f->ncur++];
  c->blk = b;
  c->pc = 0;
  c->kind = (uint8_t)k;
  c->loop = NULL;
  c->i = c->hi = 0;
  c->sub = NULL;
  c->k = c->nsub = 0;
  c->scale = 1;
  c->vec = false;
  return c;
}

/* A new frame for fn on top of the stack, its registers unset. */
static Frame *push_frame(InterpState *st, const IrFunc *fn, int ret_dst) {
  if (st->nframes == st->capframes) {
    int cap = st->capframes ? 2 * st->capframes : 16;
    Frame *fr = gc_alloc(sizeof(Frame) * (size_t)cap);
    if (st->nframes) memcpy(fr, st->frames, sizeof(Frame) * (size_t)st->nframes);
    st->frames = fr;
    st->capframes = cap;
  }
  Frame *f = &st->frames[st->nframes++];
  int n = fn->nregs;
  if (f->regcap < n || !f->regs) {
    f->regcap = n;
    f->regs = gc_alloc(sizeof(Value) * (size_t)(n ? n : 1));
    f->flags = gc_alloc_atomic((size_t)(n ? n : 1));
  } else {
    memset(f->regs, 0, sizeof(Value) * (size_t)n);
    memset(f->flags, 0, (size_t)n);
  }
  f->fn = fn;
  f->ret_dst = ret_dst;
  f->ncur = 0;
  f->prefix = NULL;
  push_cursor(f, &fn->body, CK_BLOCK);
  return f;
}

/* ---- addresses ------------------------------------------------------------- */

/* "[2,5]" for the enclosing for loops of frame f (outermost first), "" if none. */
/* "[i,j]" of the enclosing for loops' indices into buf (256 bytes), its
   length returned; "" outside loops.  Written by hand, not by snprintf: an
   address is made at every choice, and printf's formatting was a third of an
   amortized draw (the encoder's guide, bench/amortized_bench.c).  An index
   list too long for buf stops at the last index that fits, as it did. */
enum { LOOP_SUFFIX_CAP = 256 };
static size_t loop_suffix_to(const Frame *f, char *buf) {
  size_t k = 0;
  int nloops = 0;
  for (int i = 0; i < f->ncur; i++) {
    if (f->cur[i].kind != CK_FOR) continue;
    if (f->cur[i].vec) { /* NAME[i]: every row of a plate run at once */
      const char *nm = f->cur[i].loop->name;
      size_t w = strlen(nm);
      if (w + 1 >= LOOP_SUFFIX_CAP - k) break;
      buf[k++] = nloops ? ',' : '[';
      memcpy(buf + k, nm, w);
      k += w;
      nloops++;
      continue;
    }
    char digits[24];
    long long v = f->cur[i].i;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    int nd = 0;
    do digits[nd++] = (char)('0' + u % 10); while ((u /= 10) != 0);
    size_t w = 1 + (v < 0) + (size_t)nd;
    if (w >= LOOP_SUFFIX_CAP - k) break;
    buf[k++] = nloops ? ',' : '[';
    if (v < 0) buf[k++] = '-';
    while (nd) buf[k++] = digits[--nd];
    nloops++;
  }
  if (!nloops) k = 0;
  else if (k + 2 <= LOOP_SUFFIX_CAP) buf[k++] = ']';
  buf[k] = 0;
  return k;
}

static const char *loop_suffix(const Frame *f) {
  char buf[LOOP_SUFFIX_CAP];
  return loop_suffix_to(f, buf) ? gc_strdup(buf) : "";
}

/* Prefix of frame k: the caller's prefix, the callee's name and the caller's
   loop indices at the call site.  Frames below are suspended at their call, so
   their cursors still describe the call site. */
static const char *frame_prefix(InterpState *st, int k) {
  int j = k;
  while (j > 0 && !st->frames[j].prefix) j--;
  if (!st->frames[j].prefix) st->frames[j].prefix = "";
  for (int m = j + 1; m <= k; m++) {
    const Frame *caller = &st->frames[m - 1];
    st->frames[m].prefix =
        gc_printf("%s%s%s/", caller->prefix, st->frames[m].fn->name, loop_suffix(caller));
  }
  return st->frames[k].prefix;
}

static uint64_t str_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

/* Occurrences of key (hash h) in the trie rooted at n. */
static int addrs_count(const void *n, uint64_t h, const char *key) {
  for (int depth = 0; n; depth++) {
    if (((const AddrLeaf *)n)->leaf) {
      for (const AddrLeaf *l = n; l; l = l->next)
        if (l->h == h && !strcmp(l->key, key)) return l->count;
      return 0;
    }
    n = ((const AddrBranch *)n)->child[(h >> (4 * depth)) & 15];
  }
  return 0;
}

static AddrLeaf *leaf_new(uint64_t e, uint64_t h, const char *key, int count, AddrLeaf *next) {
  AddrLeaf *l = gc_alloc(sizeof(AddrLeaf));
  *l = (AddrLeaf){true, e, h, key, count, next};
  return l;
}

/* The trie n with key's count set to `count`: nodes of epoch e are updated in
   place, others copied. */
static void *addrs_put(void *n, uint64_t e, int depth, uint64_t h, const char *key, int count) {
  if (!n) return leaf_new(e, h, key, count, NULL);
  if (((AddrLeaf *)n)->leaf) {
    AddrLeaf *l = n;
    if (l->h == h || depth >= 16) {
      /* same full hash: the (short) chain, with the key set */
      for (AddrLeaf *x = l; x; x = x->next)
        if (x->h == h && !strcmp(x->key, key) && x->epoch == e) {
          x->count = count;
          return l;
        }
      AddrLeaf *chain = NULL;
      bool found = false;
      for (AddrLeaf *x = l; x; x = x->next) {
        bool hit = x->h == h && !strcmp(x->key, key);
        found = found || hit;
        chain = leaf_new(e, x->h, x->key, hit ? count : x->count, chain);
      }
      return found ? chain : leaf_new(e, h, key, count, chain);
    }
    /* two different hashes: push the old leaf one level down */
    AddrBranch *b = gc_alloc(sizeof(AddrBranch));
    b->leaf = false;
    b->epoch = e;
    b->child[(l->h >> (4 * depth)) & 15] = l;
    return addrs_put(b, e, depth, h, key, count);
  }
  AddrBranch *b = n;
  if (b->epoch != e) {
    AddrBranch *c = gc_alloc(sizeof(AddrBranch));
    *c = *b;
    c->epoch = e;
    b = c;
  }
  int k = (int)((h >> (4 * depth)) & 15);
  b->child[k] = addrs_put(b->child[k], e, depth + 1, h, key, count);
  return b;
}

/* The unique address of the next occurrence of `base` in this run. */
static const char *addr_unique(InterpState *st, const char *base) {
  uint64_t h = str_hash(base);
  int k = addrs_count(st->addrs->root, h, base) + 1;
  st->addrs->root = addrs_put(st->addrs->root, st->addrs->epoch, 0, h, base, k);
  return k == 1 ? base : gc_printf("%s#%d", base, k);
}

static const char *sample_address(InterpState *st, const char *name) {
  const char *prefix = frame_prefix(st, st->nframes - 1);
  char loops[LOOP_SUFFIX_CAP];
  size_t nl = loop_suffix_to(&st->frames[st->nframes - 1], loops);
  if (!*prefix && !nl) return addr_unique(st, name);
  size_t np = strlen(prefix), nn = strlen(name);
  char *base = gc_alloc_atomic(np + nn + nl + 1);
  memcpy(base, prefix, np);
  memcpy(base + np, name, nn);
  memcpy(base + np + nn, loops, nl + 1);
  return addr_unique(st, base);
}

/* ---- the interpreter object ------------------------------------------------ */

Interp *interp_new(const IrProgram *p, FILE *out) {
  Interp *in = gc_alloc(sizeof(Interp));
  in->p = p;
  in->out = out;
  in->data_regs = gc_alloc(sizeof(Value) * (size_t)(p->main.nregs ? p->main.nregs : 1));
  pthread_mutex_init(&in->cache_mu, NULL);
  return in;
}

void *interp_cache(const Interp *in, int slot, void *(*make)(const Interp *, void *), void *arg) {
  Interp *m = (Interp *)in; /* the cache is the only mutable part, under its lock */
  if (slot < 0 || slot >= INTERP_CACHE_SLOTS) return NULL;
  pthread_mutex_lock(&m->cache_mu);
  if (!m->cache[slot] && make) m->cache[slot] = make(in, arg);
  void *v = m->cache[slot];
  pthread_mutex_unlock(&m->cache_mu);
  return v;
}

const IrProgram *interp_program(const Interp *in) { return in->p; }

static InterpState *state_new(const Interp *in, uint64_t seed, uint64_t stream) {
  InterpState *st = gc_alloc(sizeof(InterpState));
  st->in = in;
  rng_seed(&st->rng, seed, stream);
  st->addrs = addrs_new(NULL);
  return st;
}

/* The main frame over a shared copy of the data registers (nothing owned). */
static void start_main(InterpState *st, const IrBlock *first) {
  const IrFunc *m = &st->in->p->main;
  Frame *f = push_frame(st, m, -1);
  memcpy(f->regs, st->in->data_regs, sizeof(Value) * (size_t)m->nregs);
  f->cur[0].blk = first;
}

InterpState *interp_start_guide(const Interp *in, uint64_t seed, uint64_t stream) {
  InterpState *st = state_new(in, seed, stream);
  st->phase = PH_MODEL;
  start_main(st, &in->p->guide_b);
  return st;
}

void interp_set_relaxed(InterpState *st, bool on) { st->relaxed = on; }

double interp_plate_scale(const InterpState *st) {
  double s = 1;
  for (int j = 0; j < st->nframes; j++)
    for (int i = 0; i < st->frames[j].ncur; i++)
      if (st->frames[j].cur[i].kind == CK_FOR) s *= st->frames[j].cur[i].scale;
  return s;
}

InterpState *interp_start(const Interp *in, uint64_t seed, uint64_t stream, bool gen) {
  InterpState *st = state_new(in, seed, stream);
  st->gen = gen;
  st->phase = PH_MODEL;
  start_main(st, &in->p->model_b);
  return st;
}

/* The parent is logically const, but its containers become shared with the
   fork, so its owned bits are cleared too (through the frames' flag arrays):
   its next store into a shared container copies it.  Fork one state from one
   thread at a time. */
InterpState *interp_fork(const InterpState *st, uint64_t seed, uint64_t stream) {
  InterpState *c = gc_alloc(sizeof(InterpState));
  *c = *st;
  c->net_scratch = NULL; /* forks may run in other threads */
  rng_seed(&c->rng, seed, stream);
  c->capframes = st->nframes ? st->nframes : 1;
  c->frames = gc_alloc(sizeof(Frame) * (size_t)c->capframes);
  for (int k = 0; k < st->nframes; k++) {
    const Frame *f = &st->frames[k];
    Frame *g = &c->frames[k];
    int n = f->fn->nregs;
    *g = *f;
    g->regcap = n;
    g->regs = gc_alloc(sizeof(Value) * (size_t)(n ? n : 1));
    memcpy(g->regs, f->regs, sizeof(Value) * (size_t)n);
    g->flags = gc_alloc_atomic((size_t)(n ? n : 1));
    for (int r = 0; r < n; r++) { /* both share every container from now on */
      f->flags[r] &= (uint8_t)~F_OWNED;
      g->flags[r] = f->flags[r];
    }
    g->capcur = f->ncur ? f->ncur : 1;
    g->cur = gc_alloc(sizeof(Cursor) * (size_t)g->capcur);
    memcpy(g->cur, f->cur, sizeof(Cursor) * (size_t)f->ncur);
  }
  /* both sides share the trie; neither may write to it in place any more */
  c->addrs = addrs_new(st->addrs->root);
  st->addrs->epoch = epoch_new();
  return c;
}

Value interp_output(const InterpState *st, int i) {
  const IrProgram *p = st->in->p;
  if (i < 0 || i >= p->noutputs || st->nframes < 1) return val_none();
  int r = p->outputs[i].reg;
  if (r < 0 || r >= p->main.nregs) return val_none();
  return st->frames[0].regs[r];
}

Value *interp_outputs(const InterpState *st) {
  int n = st->in->p->noutputs;
  Value *v = gc_alloc(sizeof(Value) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; i++) v[i] = interp_output(st, i);
  return v;
}

InterpLatent *interp_nested_latents(const InterpState *st, int *n) {
  *n = st->nnested;
  InterpLatent *a = gc_alloc(sizeof(InterpLatent) * (size_t)(st->nnested ? st->nnested : 1));
  int k = st->nnested;
  for (const LatNode *p = st->nested; p && k > 0; p = p->next) a[--k] = p->l;
  return a;
}

long interp_events(const InterpState *st) { return st->events; }
uint64_t interp_steps(const InterpState *st) { return st->steps; }

void interp_set_tape(InterpState *st, Tape *t) { st->tape = t; }
int32_t interp_factor_node(const InterpState *st) { return st->factor_ad; }

/* ---- helpers of the run loop ----------------------------------------------- */

static int64_t reg_int(const Value *R, int r) {
  Value v = R[r];
  return v.k == V_INT ? v.i : v.k == V_BOOL ? v.b : (int64_t)val_as_real(v);
}

/* The first `max` size registers of ins, as ints. */
static int eval_sizes(const IrInstr *ins, const Value *R, int64_t *out, int max) {
  int n = ins->nsizes < max ? ins->nsizes : max;
  for (int i = 0; i < n; i++) out[i] = reg_int(R, ins->sizes[i]);
  return n;
}

static double bound_of(const Value *R, int r, double absent) {
  return r < 0 ? absent : val_as_real(R[r]);
}

/* On a tape, bounds computed from parameters keep their nodes where they bind. */
static void bound_nodes(const IrInstr *ins, const Value *R, DistCall *dc) {
  if (ins->con.lower >= 0 && R[ins->con.lower].k == V_REAL && dc->lower == R[ins->con.lower].r)
    dc->lower_ad = R[ins->con.lower].ad;
  if (ins->con.upper >= 0 && R[ins->con.upper].k == V_REAL && dc->upper == R[ins->con.upper].r)
    dc->upper_ad = R[ins->con.upper].ad;
}

/* A register now holding a value shared with another place. */
static inline void share(Frame *f, int r) { f->flags[r] &= (uint8_t)~F_OWNED; }
static inline void set_owned(Frame *f, int r, bool own) {
  f->flags[r] = (uint8_t)((f->flags[r] & ~F_OWNED) | (own ? F_OWNED : 0));
}
static inline bool owned(const Frame *f, int r) { return f->flags[r] & F_OWNED; }

static bool is_container(Value v) { return v.k >= V_ARR; }

/* Concatenated print form of the arguments (print, reject). */
static char *join_args(const IrInstr *ins, const Value *R) {
  size_t len = 0, cap = 64;
  char *buf = gc_alloc_atomic(cap);
  for (int i = 0; i < ins->nargs; i++) {
    Value v = R[ins->args[i]];
    const char *s = v.k == V_STR ? v.s->data : val_to_string(v);
    size_t n = strlen(s);
    if (len + n + 1 > cap) {
      while (len + n + 1 > cap) cap *= 2;
      char *b = gc_alloc_atomic(cap);
      memcpy(b, buf, len);
      buf = b;
    }
    memcpy(buf + len, s, n);
    len += n;
  }
  buf[len] = 0;
  return buf;
}

/* "J = 8, K = 3" from the named size registers of an IR_DATA, or NULL. */
static const char *size_desc(const IrFunc *fn, const IrInstr *ins, const Value *R) {
  const char *desc = NULL;
  for (int i = 0; i < ins->nsizes; i++) {
    int r = ins->sizes[i];
    const char *nm = fn->regnames ? fn->regnames[r] : NULL;
    if (!nm) continue;
    const char *item = gc_printf("%s = %lld", nm, (long long)reg_int(R, r));
    desc = desc ? gc_printf("%s, %s", desc, item) : item;
  }
  return desc;
}

static const char *sizes_text(int n, const int64_t *sz) {
  const char *s = "";
  for (int i = 0; i < n; i++) s = gc_printf("%s%s%lld", s, i ? "x" : "", (long long)sz[i]);
  return s;
}

/* ---- instructions with handlers or data ------------------------------------ */

static bool exec_data(InterpState *st, Frame *f, const IrInstr *ins, DataSource *src, Diag *d) {
  const Value *R = f->regs;
  int64_t sz64[8];
  int n = eval_sizes(ins, R, sz64, 8);
  for (int i = 0; i < n; i++) {
    if (sz64[i] < 0) {
      diag_error(d, DIAG_DATA, ins->pos, "size of data '%s' must be non-negative, got %lld",
                 ins->name, (long long)sz64[i]);
      return false;
    }
  }
  Type t = f->fn->regtypes[ins->dst];
  Interp *in = (Interp *)st->in; /* loading data is the one time it is written */
  for (int k = 0; k < in->nsim; k++) {
    if (strcmp(in->sim_names[k], ins->name) != 0) continue;
    /* simulated: declared at its sizes (reals NaN) until an observation fills it */
    char err[ERRSZ];
    Value v;
    if (!op_decl(t, n, sz64, &v, err, ERRSZ)) {
      diag_error(d, DIAG_DATA, ins->pos, "%s", err);
      return false;
    }
    f->regs[ins->dst] = v;
    f->flags[ins->dst] = F_SIZED;
    in->sim_reg[k] = ins->dst;
    in->sim_mask[ins->dst] = true;
    return true;
  }
  if (!src) {
    diag_error(d, DIAG_DATA, ins->pos, "missing data \"%s\"", ins->name);
    return false;
  }
  Value v = val_none();
  if (!src->get(src, ins->name, t, n, sz64, size_desc(f->fn, ins, R), (ConKind)ins->con.kind,
                bound_of(R, ins->con.lower, NAN), bound_of(R, ins->con.upper, NAN), &v, d)) {
    if (!diag_failed(d)) diag_error(d, DIAG_DATA, ins->pos, "could not read data \"%s\"", ins->name);
    return false;
  }
  bool fresh;
  v = op_convert(v, t, &fresh);
  if (!op_shape_ok(v, t, n, sz64)) {
    diag_error(d, DIAG_INTERNAL, ins->pos, "data source returned %s for '%s' of type %s [%s]",
               op_shape_desc(v), ins->name, ty_name(t), sizes_text(n, sz64));
    return false;
  }
  f->regs[ins->dst] = v;
  f->flags[ins->dst] = F_SIZED;
  return true;
}

HandlerResult interp_observe_ignored(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  (void)h, (void)dc, (void)x, (void)pos, (void)d;
  return HR_CONTINUE;
}

HandlerResult interp_factor_ignored(Handler *h, double lw, SrcPos pos, Diag *d) {
  (void)h, (void)lw, (void)pos, (void)d;
  return HR_CONTINUE;
}

static HandlerResult handler_failed(Diag *d, SrcPos pos, const char *what) {
  if (!diag_failed(d)) diag_error(d, DIAG_RUNTIME, pos, "%s failed", what);
  return HR_ERROR;
}

/* The parameters of a distribution, snapshotted for the handler: the values
   are shared (their registers lose ownership) and the array outlives the
   call, so a handler may keep the DistCall. */
static const Value *dist_params(Frame *f, const IrDist *ds) {
  Value *p = gc_alloc(sizeof(Value) * (size_t)(ds->nparams ? ds->nparams : 1));
  for (int k = 0; k < ds->nparams; k++) {
    p[k] = f->regs[ds->params[k]];
    share(f, ds->params[k]);
  }
  return p;
}

/* x[z] for a relaxed category z (engine svi's Concrete relaxation: z holds a
   point y of the simplex): sum_k y_k x[k], recorded on the tape when there is
   one.  x must hold as many reals as y has components. */
static bool soft_index(Tape *t, Value x, Value y, Value *out, char *err, size_t errsz) {
  int k = y.t->rows * y.t->cols;
  bool vec = x.k == V_VEC || x.k == V_ROWVEC, ok = vec ? x.t->rows * x.t->cols == k : x.k == V_ARR && x.a->n == k;
  for (int j = 0; ok && !vec && j < k; j++) ok = x.a->e[j].k == V_REAL || x.a->e[j].k == V_INT;
  if (!ok) {
    snprintf(err, errsz, "a relaxed category (svi --relax) of %d can only index a vector or an "
             "array of %d reals, not %s; drop --relax", k, k, op_shape_desc(x));
    return false;
  }
  double v = 0, *part = gc_alloc_atomic(sizeof(double) * 2 * (size_t)k);
  int32_t *par = gc_alloc_atomic(sizeof(int32_t) * 2 * (size_t)k);
  for (int j = 0; j < k; j++) {
    double xj = vec ? x.t->d[j] : val_as_real(x.a->e[j]);
    v += y.t->d[j] * xj;
    par[j] = y.t->ad ? y.t->ad[j] : 0, part[j] = xj;
    par[k + j] = vec ? (x.t->ad ? x.t->ad[j] : 0) : x.a->e[j].k == V_REAL ? x.a->e[j].ad : 0;
    part[k + j] = y.t->d[j];
  }
  *out = val_real(v);
  if (t) out->ad = tape_push(t, 2 * k, par, part);
  return true;
}

/* The value of latent `addr` (instruction ins of the top frame) into its
   register, checked against the declared shape. */
static bool put_sample(InterpState *st, const IrInstr *ins, const char *addr, Value v, int n,
                       const int64_t *sz64, Diag *d) {
  Frame *f = &st->frames[st->nframes - 1];
  Type t = f->fn->regtypes[ins->dst];
  if (t.ndims == 0 && t.base == TY_REAL && v.k == V_INT) v = val_real((double)v.i);
  /* relaxed: a real (binary Concrete) or a point of the simplex (Concrete) */
  bool relaxed = st->relaxed && t.ndims == 0 && t.base == TY_INT && (v.k == V_REAL || v.k == V_VEC);
  if (!relaxed && !op_shape_ok(v, t, n, sz64)) {
    diag_error(d, DIAG_INTERNAL, ins->pos, "handler returned %s for latent '%s' of type %s [%s]",
               op_shape_desc(v), addr, ty_name(t), sizes_text(n, sz64));
    return false;
  }
  f->regs[ins->dst] = v;
  f->flags[ins->dst] = F_SIZED;
  /* a latent of the model block's own statement list is an output register;
     any other is overwritten by its next iteration or call: keep its value */
  if (st->nframes > 1 || f->ncur > 1) {
    LatNode *node = gc_alloc(sizeof(LatNode));
    node->next = st->nested;
    node->l = (InterpLatent){addr, v};
    st->nested = node;
    st->nnested++;
  }
  return true;
}

/* A draw the handler made inline from a proposal other than the family's
   density (the lm families' masks, stdlib/lm_family.h): its importance
   weight, log density - log proposal, enters the run as a factor, so every
   engine targets the density.  A value an engine provides (interp_provide)
   gets none: that engine weighs its own proposals. */
static HandlerResult draw_weight(InterpState *st, const DistCall *dc, Value v, const IrInstr *ins,
                                 Handler *h, char *err, Diag *d) {
  if (!dc->fam->draw_weight_ctx) return HR_CONTINUE;
  double w;
  if (!dist_call_draw_weight(dc, v, &w, err, ERRSZ)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "%s", err);
    return HR_ERROR;
  }
  if (w == 0) return HR_CONTINUE;
  if (!h->factor) {
    diag_error(d, DIAG_INTERNAL, ins->pos, "factor reached without a handler");
    return HR_ERROR;
  }
  st->events++;
  st->factor_ad = 0;
  HandlerResult hr = h->factor(h, w, ins->pos, d);
  return hr == HR_ERROR ? handler_failed(d, ins->pos, "factor") : hr;
}

static HandlerResult exec_sample(InterpState *st, Frame *f, const IrInstr *ins, Handler *h,
                                 char *err, Diag *d) {
  const Value *R = f->regs;
  int64_t sz64[8];
  int sizes[8];
  int n = eval_sizes(ins, R, sz64, 8);
  for (int i = 0; i < n; i++) {
    if (sz64[i] < 0) {
      diag_error(d, DIAG_RUNTIME, ins->pos, "size must be non-negative, got %lld", (long long)sz64[i]);
      return HR_ERROR;
    }
    sizes[i] = (int)sz64[i];
  }
  Type t = f->fn->regtypes[ins->dst];
  DistCall dc;
  const Value *p = dist_params(f, &ins->dist);
  if (!dist_call_init(&dc, ins->dist.fam, ins->dist.nparams, p, (ConKind)ins->con.kind,
                      bound_of(R, ins->con.lower, -INFINITY), bound_of(R, ins->con.upper, INFINITY),
                      t, n, sizes, err, ERRSZ)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "%s", err);
    return HR_ERROR;
  }
  if (st->tape) bound_nodes(ins, R, &dc);
  if (!h || !h->sample) {
    diag_error(d, DIAG_INTERNAL, ins->pos, "latent '%s' reached without a handler", ins->name);
    return HR_ERROR;
  }
  const char *addr = sample_address(st, ins->name);
  Value v = val_none();
  HandlerResult hr = h->sample(h, addr, &dc, &v, ins->pos, d);
  if (hr == HR_ERROR) return handler_failed(d, ins->pos, "sample");
  if (hr == HR_SUSPEND) { /* the value comes later, from interp_provide */
    st->pending = true;
    st->provided = false;
    st->pend = (InterpChoice){addr, dc, ins->pos};
    st->pend_ins = ins;
    st->pend_n = n;
    memcpy(st->pend_sz, sz64, sizeof(int64_t) * (size_t)n);
    return HR_SUSPEND;
  }
  if (!put_sample(st, ins, addr, v, n, sz64, d)) return HR_ERROR;
  return draw_weight(st, &dc, v, ins, h, err, d);
}

/* An observation of simulated data: the handler's simulate() produces the
   value, which is written where the program reads the data (the variable, or
   its element), so later statements and the generated block see it. */
static HandlerResult exec_simulate(InterpState *st, Frame *f, const IrInstr *ins, Handler *h,
                                   char *err, Diag *d) {
  Value x = f->regs[ins->args[0]];
  Type t = f->fn->regtypes[ins->args[0]];
  int sizes[8];
  int64_t sz64[8];
  int n = op_shape_sizes(x, sizes, 8);
  for (int i = 0; i < n; i++) sz64[i] = sizes[i];
  DistCall dc;
  const Value *p = dist_params(f, &ins->dist);
  if (!dist_call_init(&dc, ins->dist.fam, ins->dist.nparams, p, CON_NONE, -INFINITY, INFINITY, t,
                      n, sizes, err, ERRSZ)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "%s", err);
    return HR_ERROR;
  }
  const char *name = f->fn->regnames[ins->var] ? f->fn->regnames[ins->var] : "?";
  if (!h || !h->simulate) {
    diag_error(d, DIAG_RUNTIME, ins->pos,
               "observation of simulated data '%s' reached a handler without simulate", name);
    return HR_ERROR;
  }
  st->events++;
  Value v = val_none();
  HandlerResult hr = h->simulate(h, &dc, &v, ins->pos, d);
  if (hr == HR_ERROR) return handler_failed(d, ins->pos, "simulate");
  if (t.ndims == 0 && t.base == TY_REAL && v.k == V_INT) v = val_real((double)v.i);
  if (!op_shape_ok(v, t, n, sz64)) {
    diag_error(d, DIAG_INTERNAL, ins->pos, "handler simulated %s for '%s', expected %s [%s]",
               op_shape_desc(v), name, ty_name(t), sizes_text(n, sz64));
    return HR_ERROR;
  }
  int r = ins->var;
  if (ins->nidx == 0) {
    f->regs[r] = v;
    f->flags[r] = F_SIZED; /* shared with the handler */
    return hr;
  }
  if (!owned(f, r)) { /* copy on write, as IR_STORE */
    f->regs[r] = val_copy(f->regs[r]);
    set_owned(f, r, true);
  }
  if (!op_store(&f->regs[r], ins->nidx, ins->idx, f->regs, v, (TyBase)f->fn->regtypes[r].base,
                err, ERRSZ)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "%s", err);
    return HR_ERROR;
  }
  f->regs[ins->args[0]] = v;
  share(f, ins->args[0]);
  return hr;
}

/* Every real of v inside [lo, hi]? */
static bool within(Value v, double lo, double hi) {
  switch (v.k) {
  case V_REAL: return v.r >= lo && v.r <= hi;
  case V_INT: return (double)v.i >= lo && (double)v.i <= hi;
  case V_ARR:
    for (int i = 0; i < v.a->n; i++)
      if (!within(v.a->e[i], lo, hi)) return false;
    return true;
  case V_VEC: case V_ROWVEC: case V_MAT:
    for (size_t i = 0; i < (size_t)v.t->rows * (size_t)v.t->cols; i++)
      if (!(v.t->d[i] >= lo && v.t->d[i] <= hi)) return false;
    return true;
  default: return true;
  }
}

/* Every real of v (fresh, owned) set to x. */
static void fill_reals(Value *v, double x) {
  switch (v->k) {
  case V_REAL: v->r = x; break;
  case V_ARR:
    for (int i = 0; i < v->a->n; i++) fill_reals(&v->a->e[i], x);
    break;
  case V_VEC: case V_ROWVEC: case V_MAT:
    for (size_t i = 0; i < (size_t)v->t->rows * (size_t)v->t->cols; i++) v->t->d[i] = x;
    break;
  default: break;
  }
}

/* The layout of network instruction ins (IR_PARAM or IR_NET) from its size
   registers; a runtime error naming the network when a size is below 1. */
static bool net_of(const Value *R, const IrInstr *ins, const int *regs, int n, const char *name,
                   NnMlp *m, Diag *d) {
  int64_t sz[NN_MAXLAYERS + 1];
  char err[ERRSZ];
  for (int i = 0; i < n && i <= NN_MAXLAYERS; i++) sz[i] = reg_int(R, regs[i]);
  if (net_layout(sz, n, (int)ins->imm.i, m, err, sizeof err)) return true;
  diag_error(d, DIAG_RUNTIME, ins->pos, "network '%s': %s", name, err);
  return false;
}

Value interp_param_init(const ParamSpec *ps) {
  if (ps->init.k != V_NONE) return ps->init;
  if (ps->net) return net_initial(ps->net, ps->wname);
  if (ps->flow) return net_flow_initial(ps->flow, ps->wname);
  return ps->init;
}

/* A param whose value is a flat weight vector (a network's or a flow's): the
   handler's value, else the initial weights.  These are made only when
   needed: a handler with param() usually has its own after the first run.
   `what` names the kind in messages. */
static HandlerResult exec_param_weights(InterpState *st, const IrInstr *ins, Handler *h,
                                        ParamSpec *ps, size_t nweights, const char *what,
                                        Diag *d) {
  ps->type = ty_make(TY_VECTOR, 0);
  ps->nsizes = 1;
  ps->sizes[0] = (int)nweights;
  ps->con = CON_NONE;
  ps->lower = -INFINITY;
  ps->upper = INFINITY;
  Value v = val_none();
  HandlerResult hr = HR_CONTINUE;
  const char *addr = sample_address(st, ins->name);
  if (!h || !h->param) v = interp_param_init(ps);
  else {
    hr = h->param(h, addr, ps, &v, ins->pos, d);
    if (hr == HR_ERROR) return handler_failed(d, ins->pos, "param");
    if (v.k != V_VEC || (size_t)v.t->rows != nweights) {
      diag_error(d, DIAG_INTERNAL, ins->pos,
                 "handler returned %s for %s '%s' (a vector of %zu weights)", op_shape_desc(v),
                 what, addr, nweights);
      return HR_ERROR;
    }
  }
  Frame *f = &st->frames[st->nframes - 1];
  f->regs[ins->dst] = v;
  f->flags[ins->dst] = F_SIZED;
  return hr;
}

/* `param network f = mlp(...)` */
static HandlerResult exec_param_net(InterpState *st, Frame *f, const IrInstr *ins, Handler *h,
                                    Diag *d) {
  NnMlp *m = gc_alloc_atomic(sizeof *m);
  if (!net_of(f->regs, ins, ins->sizes, ins->nsizes, ins->name, m, d)) return HR_ERROR;
  ParamSpec ps = {.net = m, .init = val_none(), .wname = ins->name};
  return exec_param_weights(st, ins, h, &ps, m->nparams, "network", d);
}

/* `param flow q = realnvp(D, layers, hidden)` */
static HandlerResult exec_param_flow(InterpState *st, Frame *f, const IrInstr *ins, Handler *h,
                                     Diag *d) {
  Rnvp *fl = gc_alloc_atomic(sizeof *fl);
  char err[ERRSZ];
  int64_t sz[3];
  for (int i = 0; i < 3; i++) sz[i] = reg_int(f->regs, ins->sizes[i]);
  if (!net_flow_layout(sz, fl, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "flow '%s': %s", ins->name, err);
    return HR_ERROR;
  }
  ParamSpec ps = {.flow = fl, .init = val_none(), .wname = ins->name};
  return exec_param_weights(st, ins, h, &ps, fl->nparams, "flow", d);
}

static HandlerResult exec_param(InterpState *st, Frame *f, const IrInstr *ins, Handler *h,
                                char *err, Diag *d) {
  const Value *R = f->regs;
  Type t = f->fn->regtypes[ins->dst];
  if (t.base == TY_NETWORK) return exec_param_net(st, f, ins, h, d);
  if (t.base == TY_FLOW) return exec_param_flow(st, f, ins, h, d);
  ParamSpec ps = {.type = t, .con = (ConKind)ins->con.kind};
  ps.lower = bound_of(R, ins->con.lower, -INFINITY);
  ps.upper = bound_of(R, ins->con.upper, INFINITY);
  int64_t sz64[8];
  int n = eval_sizes(ins, R, sz64, 8);
  Value init;
  if (ins->nargs) {
    bool fresh;
    init = op_convert(R[ins->args[0]], t, &fresh);
    share(f, ins->args[0]);
    if (ins->nsizes == 0) { /* `param vector m = e;`: e gives the sizes */
      int sz[8];
      n = op_shape_sizes(init, sz, 8);
      for (int i = 0; i < n; i++) sz64[i] = sz[i];
    }
  } else {
    if (!op_decl(t, n, sz64, &init, err, ERRSZ)) {
      diag_error(d, DIAG_RUNTIME, ins->pos, "%s", err);
      return HR_ERROR;
    }
    double lo = ps.lower, hi = ps.upper; /* zero on the unconstrained scale */
    double z = isfinite(lo) && isfinite(hi) ? lo + 0.5 * (hi - lo)
               : isfinite(lo)               ? lo + 1
               : isfinite(hi)               ? hi - 1
                                            : 0;
    fill_reals(&init, z);
  }
  ps.nsizes = n;
  for (int i = 0; i < n; i++) ps.sizes[i] = (int)sz64[i];
  if (!op_shape_ok(init, t, n, sz64)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "param '%s': initial value %s does not have its "
               "declared size %s", ins->name, op_shape_desc(init), sizes_text(n, sz64));
    return HR_ERROR;
  }
  ps.init = init;
  Value v = init;
  HandlerResult hr = HR_CONTINUE;
  const char *addr = sample_address(st, ins->name);
  if (h && h->param) {
    v = val_none();
    hr = h->param(h, addr, &ps, &v, ins->pos, d);
    if (hr == HR_ERROR) return handler_failed(d, ins->pos, "param");
    if (t.ndims == 0 && t.base == TY_REAL && v.k == V_INT) v = val_real((double)v.i);
    if (!op_shape_ok(v, t, n, sz64)) {
      diag_error(d, DIAG_INTERNAL, ins->pos, "handler returned %s for param '%s' of type %s [%s]",
                 op_shape_desc(v), addr, ty_name(t), sizes_text(n, sz64));
      return HR_ERROR;
    }
  }
  if (!within(v, ps.lower, ps.upper)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "param '%s' is %s, outside its bounds [%g, %g]", addr,
               val_to_string(v), ps.lower, ps.upper);
    return HR_ERROR;
  }
  f = &st->frames[st->nframes - 1];
  f->regs[ins->dst] = v;
  f->flags[ins->dst] = F_SIZED; /* shared with the handler or the initial value */
  return hr;
}

static HandlerResult exec_observe(InterpState *st, Frame *f, const IrInstr *ins, Handler *h,
                                  char *err, Diag *d) {
  if (st->in->sim_mask && st->nframes == 1 && ins->var >= 0 && st->in->sim_mask[ins->var])
    return exec_simulate(st, f, ins, h, err, d);
  Value x = f->regs[ins->args[0]];
  if (st->in->sim_mask && !within(x, -INFINITY, INFINITY)) {
    /* NaN: most likely simulated data reaching an observation that is no place */
    diag_error(d, DIAG_RUNTIME, ins->pos,
               "observed value is NaN; simulated data can only be observed in the model block "
               "itself, as a variable or an element of one (y, y[n], y[i, j])");
    return HR_ERROR;
  }
  share(f, ins->args[0]);
  int sizes[8];
  int n = op_shape_sizes(x, sizes, 8);
  DistCall dc;
  const Value *p = dist_params(f, &ins->dist);
  if (!dist_call_init(&dc, ins->dist.fam, ins->dist.nparams, p, CON_NONE, -INFINITY, INFINITY,
                      f->fn->regtypes[ins->args[0]], n, sizes, err, ERRSZ)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "%s", err);
    return HR_ERROR;
  }
  if (!h || !h->observe) {
    diag_error(d, DIAG_INTERNAL, ins->pos, "observation reached without a handler");
    return HR_ERROR;
  }
  st->events++;
  HandlerResult hr = h->observe(h, &dc, x, ins->pos, d);
  return hr == HR_ERROR ? handler_failed(d, ins->pos, "observe") : hr;
}

static HandlerResult exec_factor(InterpState *st, Frame *f, const IrInstr *ins, Handler *h, Diag *d) {
  Value v = f->regs[ins->args[0]];
  double lw = ins->op == IR_CONDITION ? (op_truthy(v) ? 0.0 : -INFINITY) : val_as_real(v);
  st->factor_ad = ins->op == IR_CONDITION || v.k != V_REAL ? 0 : v.ad;
  if (isnan(lw) || lw == INFINITY) { /* as for densities (stdlib/dist.c): no engine can use it */
    diag_error(d, DIAG_RUNTIME, ins->pos, "the log density term is %s",
               isnan(lw) ? "NaN" : "+inf");
    return HR_ERROR;
  }
  if (!h || !h->factor) {
    diag_error(d, DIAG_INTERNAL, ins->pos, "factor reached without a handler");
    return HR_ERROR;
  }
  st->events++;
  HandlerResult hr = h->factor(h, lw, ins->pos, d);
  return hr == HR_ERROR ? handler_failed(d, ins->pos, "factor") : hr;
}

/* ---- ode_rk45 ------------------------------------------------------------------

   The solver (stdlib/ode.c) calls the user's right-hand side synchronously:
   each call is a nested run of the function on a private InterpState of the
   same Interp, whose frame 0 is a one-register stub that receives the result
   (the function's own return does the rest, as for IR_CALL).  No handler is
   needed: the checker makes sure the function has no random choices.

   Gradients: with a tape, the parameters are y0's node-carrying elements and
   the extra arguments' node-carrying reals.  Each right-hand side call then
   runs on a private tape where y and those reals are fresh variables, and one
   backward sweep per component of f gives a row of J_y and J_p; the solver
   integrates the sensitivities dy/dp, which become the partials of the
   result's nodes on the outer tape.

   The JIT passes a right-hand side compiled to native code (ir/jit_ode.c),
   which gives f and its Jacobians in one forward-mode pass from the same
   scalar rules, so f is the same bit for bit and the solver takes the same
   steps; no InterpState or private tape is made then. */

#define ODE_MAX_NESTING 8

typedef struct OdeCall {
  InterpState *sub; /* runs the function */
  const IrFunc *fn;
  IrFunc stub;      /* frame 0 of sub: one register for the result */
  Type ret;         /* its type */
  SrcPos pos;
  int n;            /* states */
  int nargs;        /* t, y, then the extra arguments */
  Value *args;
  Tape *tape;       /* private tape; NULL without sensitivities */
  int njp;          /* parameters on the private tape: nodes n+1 .. n+njp */
  double *adj;
  size_t adjcap;
  Diag *d;
  /* a native right-hand side (else NULL): its operands, made once a solve */
  const InterpOdeNative *nat;
  const double **xv;
  const int32_t **xcol;
  int64_t *xlen;
  int64_t P, C;
  double *work;
  bool nat_failed; /* it refused a point: solve again interpreted */
} OdeCall;

static RunStatus run(InterpState *st, Handler *h, DataSource *src, Diag *d);
static bool put(Frame *f, int r, Value v, bool own, SrcPos pos, Diag *d);

/* fn(args) on the private state; the result in *out. */
static bool ode_call_fn(OdeCall *oc, Value *out) {
  InterpState *sub = oc->sub;
  sub->nframes = 0;
  sub->phase = PH_CALL;
  push_frame(sub, &oc->stub, -1);
  Frame *nf = push_frame(sub, oc->fn, 0);
  nf->call_pos = oc->pos;
  for (int i = 0; i < oc->nargs; i++) {
    bool fresh;
    nf->regs[i] = op_convert(oc->args[i], oc->fn->regtypes[i], &fresh);
    set_owned(nf, i, fresh);
  }
  if (run(sub, NULL, NULL, oc->d) != RUN_DONE) return false;
  *out = sub->frames[0].regs[0];
  return true;
}

/* The solver's callback (OdeRhsFn). */
static bool ode_rhs(void *ctx, double t, const double *y, double *dy, double *jy, double *jp,
                    char *err, size_t errsz) {
  OdeCall *oc = ctx;
  int n = oc->n;
  Value yv = val_vec(n);
  memcpy(yv.t->d, y, sizeof(double) * (size_t)n);
  if (jy) {
    tape_reset(oc->tape);
    yv.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) yv.t->ad[i] = tape_var(oc->tape, y[i]);
    for (int k = 0; k < oc->njp; k++) tape_var(oc->tape, 0); /* the extras' nodes */
  }
  oc->args[0] = val_real(t);
  oc->args[1] = yv;
  Value r;
  if (!ode_call_fn(oc, &r)) {
    snprintf(err, errsz, "%s", oc->d->msg);
    return false;
  }
  if (r.k != V_VEC || r.t->rows != n) {
    snprintf(err, errsz, "the ODE function '%s' returned %s, but the state y0 is a vector of %d",
             oc->fn->name, op_shape_desc(r), n);
    return false;
  }
  memcpy(dy, r.t->d, sizeof(double) * (size_t)n);
  if (!jy) return true;
  memset(jy, 0, sizeof(double) * (size_t)n * (size_t)n);
  memset(jp, 0, sizeof(double) * (size_t)n * (size_t)oc->njp);
  size_t need = tape_size(oc->tape) + 1;
  if (oc->adjcap < need) {
    oc->adjcap = 2 * need;
    oc->adj = gc_alloc_atomic(sizeof(double) * oc->adjcap);
  }
  for (int i = 0; i < n; i++) {
    int32_t node = r.t->ad ? r.t->ad[i] : 0;
    if (!node) continue; /* a constant component: its row is zero */
    tape_backward(oc->tape, node, oc->adj);
    for (int j = 0; j < n; j++) jy[(size_t)j * (size_t)n + i] = oc->adj[1 + j];
    for (int k = 0; k < oc->njp; k++) jp[(size_t)k * (size_t)n + i] = oc->adj[1 + n + k];
  }
  return true;
}

/* The solver's callback with a native right-hand side. */
static bool ode_rhs_native(void *ctx, double t, const double *y, double *dy, double *jy,
                           double *jp, char *err, size_t errsz) {
  OdeCall *oc = ctx;
  if (oc->nat->fn(t, y, oc->xv, (const int32_t *const *)oc->xcol, oc->xlen, oc->n,
                  jy ? oc->P : 0, oc->C, dy, jy, jp, oc->work))
    return true;
  oc->nat_failed = true;
  snprintf(err, errsz, "the compiled right-hand side refused a point");
  return false;
}

/* A native right-hand side's operands: the extras flattened, each element's
   parameter column (ode_params gave the active ones nodes n+1+column on the
   private tape's numbering), and its workspace. */
static void ode_native_setup(OdeCall *oc, const OdeSystem *sys) {
  int n = oc->n, nx = oc->nargs - 2;
  size_t nn = (size_t)(nx ? nx : 1);
  oc->xv = gc_alloc(sizeof(double *) * nn);
  oc->xcol = gc_alloc(sizeof(int32_t *) * nn);
  oc->xlen = gc_alloc_atomic(sizeof(int64_t) * nn);
  for (int i = 0; i < nx; i++) {
    bool fresh;
    Value v = op_convert(oc->args[2 + i], oc->fn->regtypes[2 + i], &fresh);
    size_t m = val_numel(v);
    double *x = gc_alloc_atomic(sizeof(double) * (m ? m : 1));
    val_flatten(v, x);
    oc->xv[i] = x;
    oc->xlen[i] = (int64_t)m;
    oc->xcol[i] = NULL;
    if (!builtin_has_nodes(v)) continue;
    int32_t *c = gc_alloc_atomic(sizeof(int32_t) * (m ? m : 1));
    val_flatten_nodes(v, c);
    for (size_t e = 0; e < m; e++) c[e] = c[e] ? c[e] - (n + 1) : -1;
    oc->xcol[i] = c;
  }
  oc->P = sys->nsens ? n + sys->njp : 0;
  oc->C = n > oc->nat->kmax ? n : oc->nat->kmax;
  size_t w = (size_t)oc->nat->nscalar * (size_t)oc->P +
             (size_t)oc->nat->ncont * (size_t)oc->C * (size_t)(1 + oc->P);
  oc->work = gc_alloc_atomic(sizeof(double) * (w ? w : 1));
}

/* Tape nodes of v's numeric scalars in val_flatten order (0 = constant). */
static void ode_nodes(Value v, int32_t *out, size_t *k) {
  switch (v.k) {
  case V_ARR:
    for (int i = 0; i < v.a->n; i++) ode_nodes(v.a->e[i], out, k);
    break;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    size_t m = (size_t)v.t->rows * (size_t)v.t->cols;
    for (size_t i = 0; i < m; i++) out[(*k)++] = v.t->ad ? v.t->ad[i] : 0;
    break;
  }
  case V_REAL: out[(*k)++] = v.ad; break;
  case V_INT:
  case V_BOOL: out[(*k)++] = 0; break;
  default: break;
  }
}

/* The gradient parameters of a solve on a tape: y0's node-carrying elements
   (their sensitivities start as unit vectors), then the node-carrying reals of
   the extra arguments (forced through J_p), which get private-tape nodes in
   copies of those arguments.  Fills sys's sensitivity part and returns the
   outer nodes, one per parameter (sys->nsens of them; none: no tape needed). */
static int32_t *ode_params(OdeCall *oc, Value y0, OdeSystem *sys) {
  int n = oc->n, nextra = oc->nargs - 2;
  size_t total = (size_t)n;
  for (int i = 0; i < nextra; i++) total += val_numel(oc->args[2 + i]);
  int32_t *pnode = gc_alloc_atomic(sizeof(int32_t) * (total ? total : 1));
  int *pcol = gc_alloc_atomic(sizeof(int) * (total ? total : 1));
  int np = 0;
  for (int i = 0; i < n; i++)
    if (y0.t->ad && y0.t->ad[i]) {
      pcol[np] = -1;
      pnode[np++] = y0.t->ad[i];
    }
  int ny0 = np;
  for (int i = 0; i < nextra; i++) {
    Value v = oc->args[2 + i];
    if (!builtin_has_nodes(v)) continue;
    size_t m = val_numel(v), k = 0;
    int32_t *outer = gc_alloc_atomic(sizeof(int32_t) * (m ? m : 1));
    int32_t *local = gc_alloc_atomic(sizeof(int32_t) * (m ? m : 1));
    ode_nodes(v, outer, &k);
    for (size_t s = 0; s < k; s++) {
      if (!outer[s]) continue;
      local[s] = (int32_t)(n + 1 + oc->njp);
      pcol[np] = oc->njp++;
      pnode[np++] = outer[s];
    }
    Value c = val_copy(v);
    k = 0;
    val_set_nodes(&c, local, &k);
    oc->args[2 + i] = c;
  }
  if (np == 0) return pnode;
  double *s0 = gc_alloc_atomic(sizeof(double) * (size_t)n * (size_t)np);
  for (int j = 0, i = 0; j < ny0; j++, i++) {
    while (!y0.t->ad[i]) i++;
    s0[(size_t)j * (size_t)n + i] = 1;
  }
  sys->nsens = np;
  sys->njp = oc->njp;
  sys->s0 = s0;
  sys->pcol = pcol;
  if (!oc->nat) { /* the native code takes the columns from the extras' nodes */
    oc->tape = tape_new();
    oc->sub->tape = oc->tape;
  }
  return pnode;
}

static bool ode_solve(const Interp *in, const IrInstr *ins, const Value *args, Tape *tape,
                      int depth, const InterpOdeNative *nat, Value *result, Diag *d) {
  const char *name = ins->sub ? "ode_rk45_tol" : "ode_rk45";
  char err[ERRSZ];
  Value y0 = args[0], tsv = args[2];
  if (y0.k != V_VEC || tsv.k != V_ARR) {
    diag_error(d, DIAG_INTERNAL, ins->pos, "%s: unexpected argument kinds", name);
    return false;
  }
  if (depth >= ODE_MAX_NESTING) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "%s: ODE solves nested deeper than %d", name,
               ODE_MAX_NESTING);
    return false;
  }
  int n = y0.t->rows, nts = tsv.a->n, nextra = ins->nargs - 6;
  double *ts = gc_alloc_atomic(sizeof(double) * (size_t)(nts ? nts : 1));
  bool time_nodes = args[1].k == V_REAL && args[1].ad;
  for (int k = 0; k < nts; k++) {
    ts[k] = val_as_real(tsv.a->e[k]);
    time_nodes |= tsv.a->e[k].k == V_REAL && tsv.a->e[k].ad;
  }
  if (tape && time_nodes) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "%s: gradients with respect to the times t0 and ts "
                                          "are not supported; they must not depend on latents",
               name);
    return false;
  }
  OdeOptions opt = {val_as_real(args[3]), val_as_real(args[4]), (long)(args[5].k == V_INT ? args[5].i : (int64_t)val_as_real(args[5]))};

  OdeCall oc = {.fn = &in->p->funcs[ins->callee], .pos = ins->pos, .n = n, .d = d};
  oc.stub.name = "ode";
  oc.stub.nregs = 1;
  oc.ret = oc.fn->ret;
  oc.stub.regtypes = &oc.ret;
  oc.nat = nat;
  if (!nat) {
    oc.sub = state_new(in, 0, 0);
    oc.sub->ode_depth = depth + 1;
  }
  oc.nargs = 2 + nextra;
  oc.args = gc_alloc(sizeof(Value) * (size_t)oc.nargs);
  for (int i = 0; i < nextra; i++) oc.args[2 + i] = args[6 + i];

  OdeSystem sys = {.n = n, .rhs = nat ? ode_rhs_native : ode_rhs, .ctx = &oc};
  int32_t *pnode = tape ? ode_params(&oc, y0, &sys) : NULL;
  if (nat) ode_native_setup(&oc, &sys);

  double *yout = gc_alloc_atomic(sizeof(double) * (size_t)n * (size_t)(nts ? nts : 1));
  double *sout = sys.nsens ? gc_alloc_atomic(sizeof(double) * (size_t)n * (size_t)nts *
                                             (size_t)sys.nsens)
                           : NULL;
  err[0] = 0;
  if (!ode_rk45_solve(&sys, y0.t->d, val_as_real(args[1]), nts, ts, &opt, yout, sout, err,
                      ERRSZ)) {
    if (oc.nat_failed) return ode_solve(in, ins, args, tape, depth, NULL, result, d);
    if (!diag_failed(d)) diag_error(d, DIAG_RUNTIME, ins->pos, "%s: %s", name, err);
    return false;
  }

  Value out = val_arr(nts);
  double *part = sys.nsens ? gc_alloc_atomic(sizeof(double) * (size_t)sys.nsens) : NULL;
  for (int k = 0; k < nts; k++) {
    Value v = val_vec(n);
    memcpy(v.t->d, yout + (size_t)k * (size_t)n, sizeof(double) * (size_t)n);
    if (sys.nsens) {
      v.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)(n ? n : 1));
      for (int i = 0; i < n; i++) {
        for (int j = 0; j < sys.nsens; j++)
          part[j] = sout[((size_t)k * (size_t)sys.nsens + (size_t)j) * (size_t)n + i];
        v.t->ad[i] = tape_push(tape, sys.nsens, pnode, part);
      }
    }
    out.a->e[k] = v;
  }
  *result = out;
  return true;
}

bool interp_ode(const Interp *in, const IrInstr *ins, const Value *args, Tape *tape, int depth,
                Value *result, Diag *d) {
  return ode_solve(in, ins, args, tape, depth, NULL, result, d);
}

bool interp_ode_native(const Interp *in, const IrInstr *ins, const Value *args, Tape *tape,
                       const InterpOdeNative *nat, Value *result, Diag *d) {
  return ode_solve(in, ins, args, tape, 0, nat, result, d);
}

/* f(x) for a network f: one BLAS product per layer, on the run's tape when
   the weights or the input carry nodes. */
static bool exec_net(InterpState *st, Frame *f, const IrInstr *ins, Diag *d) {
  const Value *R = f->regs;
  const char *name = f->fn->regnames[ins->args[0]] ? f->fn->regnames[ins->args[0]] : "?";
  NnMlp m;
  if (!net_of(R, ins, ins->args + 2, ins->nargs - 2, name, &m, d)) return false;
  if (!st->net_scratch) st->net_scratch = tape_new();
  char err[ERRSZ];
  Value out;
  if (!net_apply(st->tape, st->net_scratch, &st->net_memo, &m, R[ins->args[0]], R[ins->args[1]], &out, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, ins->pos, "network '%s' %s", name, err);
    return false;
  }
  return put(f, ins->dst, out, true, ins->pos, d);
}

static bool exec_ode(InterpState *st, Frame *f, const IrInstr *ins, Diag *d) {
  Value argv[32];
  Value *av = ins->nargs <= 32 ? argv : gc_alloc(sizeof(Value) * (size_t)ins->nargs);
  for (int i = 0; i < ins->nargs; i++) av[i] = f->regs[ins->args[i]];
  Value out;
  if (!interp_ode(st->in, ins, av, st->tape, st->ode_depth, &out, d)) return false;
  f = &st->frames[st->nframes - 1];
  return put(f, ins->dst, out, true, ins->pos, d);
}

/* ---- the vectorised plate (ir/plate_vec.h) ---------------------------------- */

void interp_set_plate_vec(InterpState *st, const PvSet *s) { st->pv = s; }

/* The value of register r in a lifted run: its lifted value if it differs
   by row, else the frame's. */
#define PV_VAL(r) (lv[r] == PV_LIFTED ? L[r] : R[r])

/* Register r lifted (a uniform value repeated for every row). */
static bool pv_lift(const uint8_t *lv, const Value *L, const Value *R, const Type *T, int r, int B,
                    Value *out, char *err) {
  if (lv[r] == PV_LIFTED) {
    *out = L[r];
    return true;
  }
  return pv_repeat(R[r], B, T[r], out, err, ERRSZ);
}

/* The body of plate pl run once over its rows idx[0..B): the plate's cursor
   (marked vec) is on top of f's stack, so addresses read NAME[i] and the
   densities weigh N / B (interp_plate_scale) as in the row loop.  Each
   instruction runs once on lifted values (plate_vec.h); at the end the
   per-row registers hold the last row's values, as after the row loop. */
static HandlerResult exec_plate_vec(InterpState *st, Frame *f, const PvPlan *pl,
                                    const int64_t *idx, int B, Handler *h, Diag *d) {
  const IrInstr *plate = pl->plate;
  const IrFunc *fn = f->fn;
  const Type *T = fn->regtypes;
  const uint8_t *lv = pl->lifted;
  Value *R = f->regs;
  Value *L = gc_alloc(sizeof(Value) * (size_t)(fn->nregs + 1));
  for (int r = 0; r < fn->nregs; r++) L[r] = val_none();
  Tape *tape = st->tape;
  int var = plate->var;
  char err[ERRSZ];
  err[0] = 0;
  SrcPos at = plate->pos;
  for (int k = 0; k < plate->body.n; k++) {
    const IrInstr *ins = &plate->body.ins[k];
    const int *A = ins->args;
    bool ldst = ins->dst >= 0 && ins->op != IR_STORE && lv[ins->dst] == PV_LIFTED;
    bool rl = false; /* r below is lifted */
    at = ins->pos;
    st->steps++;
    Value r = val_none();
    if (ldst && pv_is_row_product(fn, lv, ins)) { /* one matrix product over the rows */
      bool sum = ins->nargs == 1;
      int li = sum || lv[A[0]] == PV_LIFTED ? 0 : 1;
      Value x = L[A[li]], u;
      if (sum) {
        u = val_rowvec(x.t->rows);
        for (int j = 0; j < x.t->rows; j++) u.t->d[j] = 1;
      } else {
        u = pv_as_row(R[A[1 - li]]);
      }
      if (!(tape ? op_binary_ad(tape, OP_MUL, u, x, &r, err, ERRSZ)
                 : op_binary(OP_MUL, u, x, &r, err, ERRSZ)))
        goto error;
      r.k = V_MAT; /* the 1 x B row of the rows' values */
      L[ins->dst] = r;
      continue;
    }
    if (ldst && pv_is_mat_vec(fn, lv, ins)) { /* W * x[i]: W times the K x B matrix */
      if (!(tape ? op_binary_ad(tape, OP_MUL, R[A[0]], L[A[1]], &r, err, ERRSZ)
                 : op_binary(OP_MUL, R[A[0]], L[A[1]], &r, err, ERRSZ)))
        goto error;
      L[ins->dst] = r;
      continue;
    }
    switch ((IrOpcode)ins->op) {
    case IR_CONST:
      if (ldst && !pv_repeat(ins->imm, B, T[ins->dst], &L[ins->dst], err, ERRSZ)) goto error;
      if (!ldst) {
        R[ins->dst] = ins->imm;
        share(f, ins->dst);
      }
      continue;
    case IR_DECL: {
      if (ldst) continue; /* written before it is read (pv_analyze) */
      int64_t sz[260];
      int n = eval_sizes(ins, R, sz, 260);
      if (!op_decl(T[ins->dst], n, sz, &r, err, ERRSZ)) goto error;
      R[ins->dst] = r;
      f->flags[ins->dst] = F_OWNED | F_SIZED;
      continue;
    }
    case IR_MOVE:
      if (lv[A[0]] == PV_LIFTED) {
        r = L[A[0]];
        rl = true;
      } else {
        bool fresh;
        r = op_convert(R[A[0]], T[ins->dst], &fresh);
        if (is_container(r) && !fresh) r = val_copy(r);
      }
      break;
    case IR_UNARY: {
      Value a = PV_VAL(A[0]);
      rl = lv[A[0]] == PV_LIFTED;
      if (!(tape ? op_unary_ad(tape, ins->sub, a, &r, err, ERRSZ)
                 : op_unary(ins->sub, a, &r, err, ERRSZ)))
        goto error;
      break;
    }
    case IR_BINARY: {
      Value a = PV_VAL(A[0]), b = PV_VAL(A[1]);
      int op = ins->sub;
      rl = lv[A[0]] == PV_LIFTED || lv[A[1]] == PV_LIFTED;
      if (rl) {
        /* a uniform container or a product of per-row scalars: element-wise
           over the K x B matrices */
        bool sa = ty_is_scalar_num(T[A[0]]), sb = ty_is_scalar_num(T[A[1]]);
        bool both = (lv[A[0]] == PV_LIFTED || !sa) && (lv[A[1]] == PV_LIFTED || !sb);
        if (both) {
          if (!pv_lift(lv, L, R, T, A[0], B, &a, err) || !pv_lift(lv, L, R, T, A[1], B, &b, err))
            goto error;
          if (op == OP_MUL) op = OP_EMUL;
          if (op == OP_DIV) op = OP_EDIV;
        } else if (op == OP_DIV && lv[A[1]] == PV_LIFTED) { /* scalar / per-row */
          if (!pv_fill_like(a, b, &a)) {
            snprintf(err, ERRSZ, "a number divided by a per-row value of another kind");
            goto error;
          }
          op = OP_EDIV;
        }
      }
      if (!(tape ? op_binary_ad(tape, op, a, b, &r, err, ERRSZ)
                 : op_binary(op, a, b, &r, err, ERRSZ)))
        goto error;
      if (!rl) {
        bool fresh;
        r = op_convert(r, T[ins->dst], &fresh);
      }
      break;
    }
    case IR_BUILTIN: {
      if (ins->nargs == 1 && lv[A[0]] == PV_LIFTED && !strcmp(ins->builtin->name, "to_vector")) {
        if (!pv_to_vector(L[A[0]], T[A[0]], B, &r, err, ERRSZ)) goto error;
        rl = true;
        break;
      }
      Value argv[16];
      Value *av = ins->nargs <= 16 ? argv : gc_alloc(sizeof(Value) * (size_t)ins->nargs);
      bool ad = false;
      for (int i = 0; i < ins->nargs; i++) {
        av[i] = PV_VAL(A[i]);
        rl |= lv[A[i]] == PV_LIFTED;
        if (tape && !ad) ad = builtin_has_nodes(av[i]);
      }
      BuiltinCtx ctx = {&st->rng, st->in->out ? st->in->out : stdout};
      if (!(ad ? builtin_eval_ad(ins->builtin, &ctx, tape, ins->nargs, av, &r, err, ERRSZ)
               : ins->builtin->eval(ins->builtin, &ctx, ins->nargs, av, &r, err, ERRSZ))) {
        if (!err[0]) snprintf(err, ERRSZ, "%s failed", ins->builtin->name);
        goto error;
      }
      if (ins->dst < 0) continue;
      if (!rl) {
        bool fresh;
        r = op_convert(r, T[ins->dst], &fresh);
        if (is_container(r) && !fresh) r = val_copy(r);
      }
      break;
    }
    case IR_INDEX: {
      if (ins->idx[0].kind == IX_SINGLE && ins->idx[0].lo == var) { /* row i of x: gather */
        Value *rows = gc_alloc(sizeof(Value) * (size_t)B);
        Value x = R[A[0]];
        for (int b = 0; b < B; b++) {
          R[var] = val_int(idx[b]);
          if (ins->nidx == 1 && x.k == V_ARR && idx[b] >= 1 && idx[b] <= x.a->n)
            rows[b] = x.a->e[idx[b] - 1];
          else if (!op_index_view(x, ins->nidx, ins->idx, R, &rows[b], err, ERRSZ))
            goto error;
          Type t = T[ins->dst];
          bool same = t.base == TY_INT || (t.ndims == 0 && ((t.base == TY_REAL && rows[b].k == V_REAL) ||
                                                            (t.base == TY_VECTOR && rows[b].k == V_VEC) ||
                                                            (t.base == TY_ROWVEC && rows[b].k == V_ROWVEC)));
          bool fresh;
          if (!same) rows[b] = op_convert(rows[b], t, &fresh);
        }
        if (!pv_stack(rows, B, T[ins->dst], &r, err, ERRSZ)) goto error;
        rl = true;
        break;
      }
      if (lv[A[0]] == PV_LIFTED) { /* v[k] or v[a:b] of every row's vector */
        Value x = L[A[0]];
        const IrIndex *ix = &ins->idx[0];
        int64_t lo = ix->lo >= 0 ? reg_int(R, ix->lo) : 1;
        int64_t hi = ix->kind == IX_SINGLE ? lo : ix->hi >= 0 ? reg_int(R, ix->hi) : x.t->rows;
        if (!pv_rows(x, lo, hi, &r, err, ERRSZ)) goto error;
        rl = true;
        break;
      }
      if (!op_index(R[A[0]], ins->nidx, ins->idx, R, &r, err, ERRSZ)) goto error;
      bool fresh;
      r = op_convert(r, T[ins->dst], &fresh);
      break;
    }
    case IR_STORE: {
      int dst = ins->dst;
      if (!owned(f, dst)) { /* copy on write */
        R[dst] = val_copy(R[dst]);
        set_owned(f, dst, true);
      }
      for (int b = 0; b < B; b++) {
        Value row = lv[A[0]] == PV_LIFTED ? pv_row(L[A[0]], T[A[0]], b) : R[A[0]];
        R[var] = val_int(idx[b]);
        if (!op_store(&R[dst], ins->nidx, ins->idx, R, row, (TyBase)T[dst].base, err, ERRSZ))
          goto error;
      }
      continue;
    }
    case IR_NET: {
      if (lv[A[1]] != PV_LIFTED) {
        if (!exec_net(st, f, ins, d)) return HR_ERROR;
        if (ldst && !pv_repeat(R[ins->dst], B, T[ins->dst], &L[ins->dst], err, ERRSZ)) goto error;
        continue;
      }
      const char *name = fn->regnames[A[0]] ? fn->regnames[A[0]] : "?";
      NnMlp m;
      if (!net_of(R, ins, A + 2, ins->nargs - 2, name, &m, d)) return HR_ERROR;
      if (!st->net_scratch) st->net_scratch = tape_new();
      Value out; /* the rows as a [B, K] batch: one product per layer */
      if (!net_apply(tape, st->net_scratch, &st->net_memo, &m, R[A[0]], pv_transpose(L[A[1]]), &out,
                     err, ERRSZ)) {
        diag_error(d, DIAG_RUNTIME, ins->pos, "network '%s' %s", name, err);
        return HR_ERROR;
      }
      r = pv_transpose(out);
      rl = true;
      break;
    }
    case IR_SAMPLE: {
      int64_t sz64[8];
      int n = eval_sizes(ins, R, sz64, 8);
      int64_t K = 1;
      for (int i = 0; i < n; i++) {
        if (sz64[i] < 0) {
          snprintf(err, ERRSZ, "size must be non-negative, got %lld", (long long)sz64[i]);
          goto error;
        }
        K *= sz64[i];
      }
      int sizes[2] = {(int)K, B};
      Value *p = gc_alloc(sizeof(Value) * (size_t)(ins->dist.nparams + 1));
      for (int q = 0; q < ins->dist.nparams; q++) {
        p[q] = PV_VAL(ins->dist.params[q]);
        share(f, ins->dist.params[q]);
      }
      DistCall dc;
      if (!dist_call_init(&dc, ins->dist.fam, ins->dist.nparams, p, (ConKind)ins->con.kind,
                          bound_of(R, ins->con.lower, -INFINITY),
                          bound_of(R, ins->con.upper, INFINITY), ty_make(TY_MATRIX, 0), 2, sizes,
                          err, ERRSZ))
        goto error;
      if (tape) bound_nodes(ins, R, &dc);
      if (!h || !h->sample) {
        diag_error(d, DIAG_INTERNAL, ins->pos, "latent '%s' reached without a handler", ins->name);
        return HR_ERROR;
      }
      const char *addr = sample_address(st, ins->name);
      HandlerResult hr = h->sample(h, addr, &dc, &r, ins->pos, d);
      if (hr == HR_ERROR) return handler_failed(d, ins->pos, "sample");
      if (hr == HR_SUSPEND || r.k != V_MAT || r.t->rows != (int)K || r.t->cols != B) {
        diag_error(d, DIAG_INTERNAL, ins->pos, "handler gave %s for '%s', a %lld x %d matrix of "
                   "the minibatch's rows", hr == HR_SUSPEND ? "no value" : op_shape_desc(r), addr,
                   (long long)K, B);
        return HR_ERROR;
      }
      rl = true;
      break;
    }
    case IR_OBSERVE: {
      Value y = PV_VAL(A[0]);
      Value *p = gc_alloc(sizeof(Value) * (size_t)(ins->dist.nparams + 1));
      for (int q = 0; q < ins->dist.nparams; q++) {
        p[q] = PV_VAL(ins->dist.params[q]);
        share(f, ins->dist.params[q]);
      }
      int sizes[8];
      int n = op_shape_sizes(y, sizes, 8);
      Type yt = pv_matrix_form(T[A[0]]) ? ty_make(TY_MATRIX, 0)
                                        : ty_make((TyBase)T[A[0]].base, T[A[0]].ndims + 1);
      DistCall dc;
      if (!dist_call_init(&dc, ins->dist.fam, ins->dist.nparams, p, CON_NONE, -INFINITY, INFINITY,
                          yt, n, sizes, err, ERRSZ))
        goto error;
      if (!h || !h->observe) {
        diag_error(d, DIAG_INTERNAL, ins->pos, "observation reached without a handler");
        return HR_ERROR;
      }
      st->events++;
      HandlerResult hr = h->observe(h, &dc, y, ins->pos, d);
      if (hr == HR_ERROR) return handler_failed(d, ins->pos, "observe");
      continue;
    }
    default: /* pv_analyze admits nothing else */
      diag_error(d, DIAG_INTERNAL, ins->pos, "IR opcode %d in a vectorised plate", ins->op);
      return HR_ERROR;
    }
    if (ins->dst < 0) continue;
    if (ldst) {
      if (!rl && !pv_repeat(r, B, T[ins->dst], &r, err, ERRSZ)) goto error;
      L[ins->dst] = r;
    } else {
      R[ins->dst] = r;
      set_owned(f, ins->dst, true);
    }
  }
  /* the registers after the loop: its last row's values */
  for (int r = 0; r < fn->nregs; r++)
    if (lv[r] == PV_LIFTED && L[r].k != V_NONE) {
      R[r] = pv_row(L[r], T[r], B - 1);
      share(f, r);
    }
  R[var] = val_int(idx[B - 1]);
  return HR_CONTINUE;
error:
  diag_error(d, DIAG_RUNTIME, at, "%s", err);
  return HR_ERROR;
}

/* ---- the run loop ----------------------------------------------------------- */

/* Write v into register r (own: v is referenced from nowhere else).  A
   variable declared with sizes keeps its shape: "size mismatch: assigning
   vector of 3 to 'theta' declared with size 4". */
static bool put(Frame *f, int r, Value v, bool own, SrcPos pos, Diag *d) {
  Value old = f->regs[r];
  if ((f->flags[r] & F_SIZED) && is_container(v) && is_container(old) && !op_same_shape(old, v)) {
    int sz[8];
    int64_t sz64[8];
    int n = op_shape_sizes(old, sz, 8);
    for (int i = 0; i < n; i++) sz64[i] = sz[i];
    const char *name = f->fn->regnames && f->fn->regnames[r] ? f->fn->regnames[r] : "?";
    diag_error(d, DIAG_RUNTIME, pos, "size mismatch: assigning %s to '%s' declared with size %s",
               op_shape_desc(v), name, sizes_text(n, sz64));
    return false;
  }
  f->regs[r] = v;
  set_owned(f, r, own);
  return true;
}

/* Move the result of a finished call into the caller's register. */
static bool return_to_caller(InterpState *st, Value rv, bool own, Diag *d) {
  const Frame *callee = &st->frames[st->nframes - 1];
  int dst = callee->ret_dst;
  SrcPos pos = callee->call_pos;
  bool fresh = false;
  if (rv.k != V_NONE) rv = op_convert(rv, callee->fn->ret, &fresh);
  st->nframes--;
  if (dst < 0) return true;
  return put(&st->frames[st->nframes - 1], dst, rv, own || fresh, pos, d);
}

static RunStatus fail(InterpState *st) {
  st->phase = PH_ERROR;
  return RUN_ERROR;
}

/* The main frame finished a block: go on with the next program block or stop. */
static bool main_block_done(InterpState *st) {
  Frame *f = &st->frames[0];
  if (st->phase == PH_MODEL && st->gen && st->in->p->gen_b.n > 0) {
    st->phase = PH_GEN;
    push_cursor(f, &st->in->p->gen_b, CK_BLOCK);
    return false;
  }
  st->phase = PH_DONE;
  return true;
}

/* The run loop is compiled twice (AD a constant): without a tape every AD
   test folds away, so plain runs execute exactly the code they did before AD
   existed; with a tape, operations on node-carrying values record. */
static inline __attribute__((always_inline)) RunStatus run_loop(InterpState *st, Handler *h,
                                                                 DataSource *src, Diag *d,
                                                                 const bool AD) {
  const Interp *in = st->in;
  const IrProgram *prog = in->p;
  char err[ERRSZ];
  for (;;) {
    Frame *f = &st->frames[st->nframes - 1];
    Cursor *c = &f->cur[f->ncur - 1];
    Value *R = f->regs;

    if (c->pc >= c->blk->n) { /* end of a block: loop back, leave it, or return */
      switch (c->kind) {
      case CK_FOR:
        if (c->sub) {
          if (++c->k < c->nsub) {
            c->i = c->sub[c->k];
            R[c->loop->var] = val_int(c->i);
            c->pc = 0;
            continue;
          }
          f->ncur--;
          continue;
        }
        if (c->i < c->hi) {
          c->i++;
          R[c->loop->var] = val_int(c->i);
          c->pc = 0;
          continue;
        }
        f->ncur--;
        continue;
      case CK_WCOND:
        if (op_truthy(R[c->loop->cond])) {
          c->kind = CK_WBODY;
          c->blk = &c->loop->body;
        } else {
          f->ncur--;
        }
        c->pc = 0;
        continue;
      case CK_WBODY:
        c->kind = CK_WCOND;
        c->blk = &c->loop->cond_b;
        c->pc = 0;
        continue;
      default:
        if (--f->ncur > 0) continue;
        if (st->nframes == 1) {
          if (st->phase == PH_DATA || main_block_done(st)) {
            st->phase = PH_DONE;
            return RUN_DONE;
          }
          continue;
        }
        if (f->fn->ret.base != TY_VOID) {
          diag_error(d, DIAG_RUNTIME, f->fn->pos, "function '%s' ended without returning a value",
                     f->fn->name);
          return fail(st);
        }
        return_to_caller(st, val_none(), false, d);
        continue;
      }
    }

    const IrInstr *ins = &c->blk->ins[c->pc++];
    const int *A = ins->args;
    st->steps++;
    switch ((IrOpcode)ins->op) {
    case IR_CONST:
      R[ins->dst] = ins->imm;
      share(f, ins->dst);
      break;

    case IR_MOVE: {
      Value v = R[A[0]];
      Type t = f->fn->regtypes[ins->dst];
      bool fresh = false;
      if (v.k == V_INT && t.ndims == 0 && t.base == TY_REAL) {
        R[ins->dst] = val_real((double)v.i);
        break;
      }
      if (!is_container(v)) {
        R[ins->dst] = v.k == V_STR ? v : op_convert(v, t, &fresh);
        break;
      }
      v = op_convert(v, t, &fresh);
      if (!put(f, ins->dst, v, fresh, ins->pos, d)) return fail(st);
      if (!fresh) share(f, A[0]);
      break;
    }

    case IR_UNARY: {
      Value a = R[A[0]];
      if (a.k == V_REAL && ins->sub == OP_NEG && !(AD && a.ad)) {
        R[ins->dst] = val_real(sr_neg1(a.r));
        break;
      }
      Value r;
      if (!(AD ? op_unary_ad(st->tape, ins->sub, a, &r, err, ERRSZ)
               : op_unary(ins->sub, a, &r, err, ERRSZ)))
        goto runtime_error;
      bool fresh;
      if (!put(f, ins->dst, op_convert(r, f->fn->regtypes[ins->dst], &fresh), true, ins->pos, d))
        return fail(st);
      break;
    }

    case IR_BINARY: {
      Value a = R[A[0]], b = R[A[1]];
      if (a.k == V_REAL && b.k == V_REAL && !(AD && (a.ad | b.ad))) { /* the hot path: no calls */
        double x = a.r, y = b.r;
        switch (ins->sub) {
        case OP_ADD: R[ins->dst] = val_real(sr_add(x, y)); continue;
        case OP_SUB: R[ins->dst] = val_real(sr_sub(x, y)); continue;
        case OP_MUL: case OP_EMUL: R[ins->dst] = val_real(sr_mul(x, y)); continue;
        case OP_DIV: case OP_EDIV: R[ins->dst] = val_real(sr_div(x, y)); continue;
        case OP_LT: R[ins->dst] = val_bool(x < y); continue;
        case OP_GT: R[ins->dst] = val_bool(x > y); continue;
        default: break;
        }
      } else if (a.k == V_INT && b.k == V_INT) {
        int64_t x = a.i, y = b.i, z;
        switch (ins->sub) {
        case OP_ADD:
          if (__builtin_add_overflow(x, y, &z)) break;
          R[ins->dst] = val_int(z);
          goto int_done;
        case OP_SUB:
          if (__builtin_sub_overflow(x, y, &z)) break;
          R[ins->dst] = val_int(z);
          goto int_done;
        case OP_LT: R[ins->dst] = val_bool(x < y); continue;
        case OP_LE: R[ins->dst] = val_bool(x <= y); continue;
        case OP_EQ: R[ins->dst] = val_bool(x == y); continue;
        default: break;
        }
      }
      {
        Value r;
        if (!(AD ? op_binary_ad(st->tape, ins->sub, a, b, &r, err, ERRSZ)
                 : op_binary(ins->sub, a, b, &r, err, ERRSZ)))
          goto runtime_error;
        if (!put(f, ins->dst, r, true, ins->pos, d)) return fail(st);
      }
    int_done: {
        Type t = f->fn->regtypes[ins->dst];
        Value r = R[ins->dst];
        if (t.ndims == 0 && (r.k == V_INT || r.k == V_BOOL) && t.base != (r.k == V_INT ? TY_INT : TY_BOOL)) {
          bool fresh;
          R[ins->dst] = op_convert(r, t, &fresh);
        }
      }
      break;
    }

    case IR_INDEX: {
      Value r, xv = R[A[0]];
      if (ins->nidx == 1 && ins->idx[0].kind == IX_SINGLE && R[ins->idx[0].lo].k == V_INT) {
        int64_t i = R[ins->idx[0].lo].i; /* x[i] on a vector or an array of scalars */
        if ((xv.k == V_VEC || xv.k == V_ROWVEC) && i >= 1 && i <= (int64_t)xv.t->rows * xv.t->cols) {
          R[ins->dst] = val_real(xv.t->d[i - 1]);
          if (AD && xv.t->ad) R[ins->dst].ad = xv.t->ad[i - 1];
          break;
        }
        if (xv.k == V_ARR && i >= 1 && i <= xv.a->n && !is_container(xv.a->e[i - 1]) &&
            (xv.a->e[i - 1].k != V_INT || f->fn->regtypes[ins->dst].base == TY_INT)) {
          R[ins->dst] = xv.a->e[i - 1];
          break;
        }
      }
      if (st->relaxed && ins->nidx == 1 && ins->idx[0].kind == IX_SINGLE &&
          R[ins->idx[0].lo].k == V_VEC) { /* x[z], z a relaxed category */
        if (!soft_index(st->tape, xv, R[ins->idx[0].lo], &r, err, ERRSZ)) goto runtime_error;
        R[ins->dst] = r;
        break;
      }
      /* x shared (the data, an argument): x[i] may be a view of it, shared as
         well, so that reading a row copies nothing; an owned x is written in
         place, so its rows are copied out */
      bool view = !owned(f, A[0]);
      if (!(view ? op_index_view : op_index)(R[A[0]], ins->nidx, ins->idx, R, &r, err, ERRSZ))
        goto runtime_error;
      bool fresh;
      r = op_convert(r, f->fn->regtypes[ins->dst], &fresh);
      if (!put(f, ins->dst, r, !view || fresh, ins->pos, d)) return fail(st);
      break;
    }

    case IR_STORE: {
      int r = ins->dst;
      if (!owned(f, r)) { /* copy on write */
        R[r] = val_copy(R[r]);
        set_owned(f, r, true);
      }
      if (!op_store(&R[r], ins->nidx, ins->idx, R, R[A[0]], (TyBase)f->fn->regtypes[r].base, err,
                    ERRSZ))
        goto runtime_error;
      break;
    }

    case IR_ARRAY: {
      Type t = f->fn->regtypes[ins->dst];
      Type et = ty_make((TyBase)t.base, t.ndims > 0 ? t.ndims - 1 : 0);
      Value arr = val_arr(ins->nargs);
      for (int i = 0; i < ins->nargs; i++) {
        bool fresh;
        Value e = op_convert(R[A[i]], et, &fresh);
        if (!fresh) e = val_copy(e);
        if (i > 0 && !op_same_shape(arr.a->e[0], e)) {
          snprintf(err, ERRSZ, "array literal elements differ in size: %s and %s",
                   op_shape_desc(arr.a->e[0]), op_shape_desc(e));
          goto runtime_error;
        }
        arr.a->e[i] = e;
      }
      if (!put(f, ins->dst, arr, true, ins->pos, d)) return fail(st);
      break;
    }

    case IR_ROWVEC: {
      Type t = f->fn->regtypes[ins->dst];
      Value r;
      if (t.base == TY_MATRIX || (ins->nargs > 0 && R[A[0]].k == V_ROWVEC)) {
        int cols = ins->nargs ? (int)val_numel(R[A[0]]) : 0;
        r = val_mat(ins->nargs, cols);
        for (int i = 0; i < ins->nargs; i++) {
          Value row = R[A[i]];
          if ((row.k != V_ROWVEC && row.k != V_VEC) || (int)val_numel(row) != cols) {
            snprintf(err, ERRSZ, "matrix literal rows differ in size: row 1 is %s, row %d is %s",
                     op_shape_desc(R[A[0]]), i + 1, op_shape_desc(row));
            goto runtime_error;
          }
          for (int j = 0; j < cols; j++) r.t->d[(size_t)j * ins->nargs + i] = row.t->d[j];
          if (row.t->ad) {
            if (!r.t->ad) r.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)(ins->nargs * cols));
            for (int j = 0; j < cols; j++) r.t->ad[(size_t)j * ins->nargs + i] = row.t->ad[j];
          }
        }
      } else {
        r = val_rowvec(ins->nargs);
        for (int i = 0; i < ins->nargs; i++) {
          Value e = R[A[i]];
          r.t->d[i] = val_as_real(e);
          if (e.k == V_REAL && e.ad) {
            if (!r.t->ad) r.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)ins->nargs);
            r.t->ad[i] = e.ad;
          }
        }
      }
      if (!put(f, ins->dst, r, true, ins->pos, d)) return fail(st);
      break;
    }

    case IR_DECL: {
      int64_t sz[260];
      int n = eval_sizes(ins, R, sz, 260);
      Value v;
      if (!op_decl(f->fn->regtypes[ins->dst], n, sz, &v, err, ERRSZ)) goto runtime_error;
      R[ins->dst] = v;
      f->flags[ins->dst] = F_OWNED | F_SIZED;
      break;
    }

    case IR_DATA:
      if (st->phase != PH_DATA) {
        diag_error(d, DIAG_INTERNAL, ins->pos, "data variable '%s' read outside the data block",
                   ins->name);
        return fail(st);
      }
      if (!exec_data(st, f, ins, src, d)) return fail(st);
      break;

    case IR_SAMPLE:
    case IR_OBSERVE:
    case IR_FACTOR:
    case IR_CONDITION:
    case IR_PARAM: {
      HandlerResult hr = ins->op == IR_SAMPLE    ? exec_sample(st, f, ins, h, err, d)
                         : ins->op == IR_OBSERVE ? exec_observe(st, f, ins, h, err, d)
                         : ins->op == IR_PARAM   ? exec_param(st, f, ins, h, err, d)
                                                 : exec_factor(st, f, ins, h, d);
      if (hr == HR_ERROR) return fail(st);
      if (hr == HR_SUSPEND) return RUN_SUSPENDED;
      break;
    }

    case IR_IF: {
      const IrBlock *b = op_truthy(R[A[0]]) ? &ins->then_b : &ins->else_b;
      if (b->n > 0) push_cursor(f, b, CK_BLOCK);
      break;
    }

    case IR_FOR: {
      int64_t lo = reg_int(R, A[0]), hi = reg_int(R, A[1]);
      if (lo > hi) break;
      const int64_t *sub = NULL;
      int64_t nsub = 0;
      if (ins->nargs == 3 && h && h->plate) { /* a plate with a batch size */
        HandlerResult hr = h->plate(h, ins->name, lo, hi, reg_int(R, A[2]), &sub, &nsub,
                                    ins->pos, d);
        if (hr == HR_ERROR) {
          handler_failed(d, ins->pos, "plate");
          return fail(st);
        }
        if (sub && nsub <= 0) break;
      }
      const PvPlan *pl = st->pv && ins->nargs == 3 && !in->sim_mask ? pv_find(st->pv, ins) : NULL;
      if (pl && hi - lo < INT_MAX) { /* the body once over the rows (plate_vec.h) */
        if (!sub) {
          int64_t *all = gc_alloc_atomic(sizeof(int64_t) * (size_t)(hi - lo + 1));
          for (int64_t j = lo; j <= hi; j++) all[j - lo] = j;
          sub = all, nsub = hi - lo + 1;
        }
        Cursor *vc = push_cursor(f, &ins->body, CK_FOR);
        vc->loop = ins;
        vc->vec = true;
        vc->i = sub[0];
        vc->hi = hi;
        vc->sub = sub;
        vc->nsub = nsub;
        vc->scale = (double)(hi - lo + 1) / (double)nsub;
        HandlerResult hr = exec_plate_vec(st, f, pl, sub, (int)nsub, h, d);
        f->ncur--;
        if (hr == HR_ERROR) return fail(st);
        break;
      }
      Cursor *fc = push_cursor(f, &ins->body, CK_FOR);
      fc->loop = ins;
      fc->i = sub ? sub[0] : lo;
      fc->hi = hi;
      if (sub) {
        fc->sub = sub;
        fc->nsub = nsub;
        fc->scale = (double)(hi - lo + 1) / (double)nsub;
      }
      R[ins->var] = val_int(fc->i);
      break;
    }

    case IR_WHILE: {
      Cursor *wc = push_cursor(f, &ins->cond_b, CK_WCOND);
      wc->loop = ins;
      break;
    }

    case IR_BREAK:
      while (f->ncur > 1) {
        uint8_t k = f->cur[--f->ncur].kind;
        if (k != CK_BLOCK) break;
      }
      break;

    case IR_CONTINUE:
      while (f->ncur > 1 && f->cur[f->ncur - 1].kind == CK_BLOCK) f->ncur--;
      f->cur[f->ncur - 1].pc = f->cur[f->ncur - 1].blk->n;
      break;

    case IR_RETURN: {
      if (st->nframes == 1) {
        diag_error(d, DIAG_INTERNAL, ins->pos, "return outside a function");
        return fail(st);
      }
      Value rv = ins->nargs ? R[A[0]] : val_none();
      bool own = ins->nargs ? owned(f, A[0]) : false;
      if (!return_to_caller(st, rv, own, d)) return fail(st);
      break;
    }

    case IR_CALL: {
      const IrFunc *fn = &prog->funcs[ins->callee];
      if (st->nframes >= INTERP_MAX_FRAMES) {
        diag_error(d, DIAG_RUNTIME, ins->pos, "stack overflow: recursion deeper than %d calls",
                   INTERP_MAX_FRAMES);
        return fail(st);
      }
      int caller = st->nframes - 1;
      Frame *nf = push_frame(st, fn, ins->dst);
      Frame *cf = &st->frames[caller];
      nf->call_pos = ins->pos;
      for (int i = 0; i < ins->nargs && i < fn->nparams; i++) {
        bool fresh;
        nf->regs[i] = op_convert(cf->regs[A[i]], fn->regtypes[i], &fresh);
        set_owned(nf, i, fresh);
        if (!fresh) share(cf, A[i]);
      }
      break;
    }

    case IR_BUILTIN: {
      Value argv[16];
      Value *av = ins->nargs <= 16 ? argv : gc_alloc(sizeof(Value) * (size_t)ins->nargs);
      for (int i = 0; i < ins->nargs; i++) av[i] = R[A[i]];
      BuiltinCtx ctx = {&st->rng, in->out ? in->out : stdout};
      Value r = val_none();
      err[0] = 0;
      bool ad = false;
      if (AD)
        for (int i = 0; i < ins->nargs && !ad; i++) ad = builtin_has_nodes(av[i]);
      if (!(ad ? builtin_eval_ad(ins->builtin, &ctx, st->tape, ins->nargs, av, &r, err, ERRSZ)
               : ins->builtin->eval(ins->builtin, &ctx, ins->nargs, av, &r, err, ERRSZ))) {
        if (!err[0]) snprintf(err, ERRSZ, "%s failed", ins->builtin->name);
        goto runtime_error;
      }
      if (ins->dst >= 0) {
        bool fresh;
        /* the result may alias an argument: none of them is exclusive any more */
        if (is_container(r))
          for (int i = 0; i < ins->nargs; i++) share(f, A[i]);
        if (!put(f, ins->dst, op_convert(r, f->fn->regtypes[ins->dst], &fresh), false, ins->pos, d))
          return fail(st);
      }
      break;
    }

    case IR_PRINT: {
      FILE *out = in->out ? in->out : stdout;
      fputs(join_args(ins, R), out);
      fputc('\n', out);
      fflush(out);
      break;
    }

    case IR_REJECT:
      snprintf(err, ERRSZ, "reject: %s", join_args(ins, R));
      goto runtime_error;

    case IR_ODE:
      if (!exec_ode(st, f, ins, d)) return fail(st);
      break;

    case IR_NET:
      if (!exec_net(st, f, ins, d)) return fail(st);
      break;

    default:
      diag_error(d, DIAG_INTERNAL, ins->pos, "unknown IR opcode %d", ins->op);
      return fail(st);
    }
    continue;

  runtime_error:
    diag_error(d, DIAG_RUNTIME, ins->pos, "%s", err);
    return fail(st);
  }
}

static RunStatus run(InterpState *st, Handler *h, DataSource *src, Diag *d) {
  return st->tape ? run_loop(st, h, src, d, true) : run_loop(st, h, src, d, false);
}

RunStatus interp_run(InterpState *st, Handler *h, Diag *d) {
  if (st->phase == PH_DONE) return RUN_DONE;
  if (st->phase == PH_ERROR) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "interp_run: this execution already failed");
    return RUN_ERROR;
  }
  if (st->pending) {
    if (!st->provided) {
      diag_error(d, DIAG_USAGE, st->pend.pos,
                 "interp_run: latent '%s' is waiting for a value (interp_provide)",
                 st->pend.addr);
      return RUN_ERROR;
    }
    st->pending = st->provided = false;
  }
  return run(st, h, NULL, d);
}

const InterpChoice *interp_pending(const InterpState *st) {
  return st->pending && !st->provided ? &st->pend : NULL;
}

bool interp_provide(InterpState *st, Value v, Diag *d) {
  if (!st->pending || st->provided) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "interp_provide: no latent is waiting for a value");
    return false;
  }
  if (!put_sample(st, st->pend_ins, st->pend.addr, v, st->pend_n, st->pend_sz, d)) return false;
  st->provided = true;
  return true;
}

RunStatus interp_resume_with(InterpState *st, Value v, Handler *h, Diag *d) {
  return interp_provide(st, v, d) ? interp_run(st, h, d) : RUN_ERROR;
}

bool interp_load_data(Interp *in, DataSource *src, Diag *d) {
  InterpState *st = state_new(in, 0, 0);
  st->phase = PH_DATA;
  start_main(st, &in->p->data_b);
  if (run(st, NULL, src, d) != RUN_DONE) return false;
  in->data_regs = st->frames[0].regs;
  return true;
}

bool interp_load_data_sim(Interp *in, DataSource *src, int nsim, const char *const *names,
                          Diag *d) {
  in->nsim = nsim > 0 ? nsim : 0;
  in->sim_names = gc_alloc(sizeof(char *) * (size_t)(in->nsim + 1));
  in->sim_reg = gc_alloc_atomic(sizeof(int) * (size_t)(in->nsim + 1));
  in->sim_mask = gc_alloc_atomic(sizeof(bool) * (size_t)(in->p->main.nregs + 1));
  for (int k = 0; k < in->nsim; k++) {
    in->sim_names[k] = gc_strdup(names[k]);
    in->sim_reg[k] = -1;
  }
  if (!interp_load_data(in, src, d)) return false;
  for (int k = 0; k < in->nsim; k++)
    if (in->sim_reg[k] < 0) {
      diag_error(d, DIAG_USAGE, (SrcPos){0}, "cannot simulate '%s': no such data variable",
                 in->sim_names[k]);
      return false;
    }
  return true;
}

int interp_simulated_count(const Interp *in) { return in->nsim; }
const char *interp_simulated_name(const Interp *in, int i) {
  return i >= 0 && i < in->nsim ? in->sim_names[i] : NULL;
}
Value interp_simulated_value(const InterpState *st, int i) {
  const Interp *in = st->in;
  if (i < 0 || i >= in->nsim || st->nframes < 1 || in->sim_reg[i] < 0) return val_none();
  return st->frames[0].regs[in->sim_reg[i]];
}

const Value *interp_data_regs(const Interp *in) { return in->data_regs; }

/* ---- comparing executions (particle Gibbs with ancestor sampling) ---------- */

/* Equal tries; false may be a false negative (collision chains compared in
   order), which only costs the caller a longer run. */
static bool addrs_same(const void *a, const void *b) {
  if (a == b) return true;
  if (!a || !b) return false;
  const AddrLeaf *la = a, *lb = b;
  if (la->leaf != lb->leaf) return false;
  if (la->leaf) {
    for (; la && lb; la = la->next, lb = lb->next)
      if (la->h != lb->h || la->count != lb->count || strcmp(la->key, lb->key)) return false;
    return !la && !lb;
  }
  const AddrBranch *ba = a, *bb = b;
  for (int k = 0; k < 16; k++)
    if (!addrs_same(ba->child[k], bb->child[k])) return false;
  return true;
}

/* Same value for the rest of a run: scalars bit for bit (NaN = NaN), shared
   containers, or equal ones. */
static bool reg_same(Value a, Value b) {
  if (a.k != b.k) return false;
  switch (a.k) {
  case V_NONE: return true;
  case V_INT: return a.i == b.i;
  case V_REAL: return memcmp(&a.r, &b.r, sizeof(double)) == 0;
  case V_BOOL: return a.b == b.b;
  default: return a.s == b.s || val_equal(a, b);
  }
}

bool interp_same_continuation(const InterpState *a, const InterpState *b, const bool *main_regs) {
  if (a->in != b->in || a->phase != b->phase || a->gen != b->gen || a->nframes != b->nframes ||
      a->events != b->events || a->tape || b->tape || a->pending || b->pending)
    return false;
  for (int k = 0; k < a->nframes; k++) {
    const Frame *f = &a->frames[k], *g = &b->frames[k];
    if (f->fn != g->fn || f->ret_dst != g->ret_dst || f->ncur != g->ncur) return false;
    for (int c = 0; c < f->ncur; c++) {
      const Cursor *x = &f->cur[c], *y = &g->cur[c];
      if (x->blk != y->blk || x->pc != y->pc || x->kind != y->kind || x->loop != y->loop ||
          x->i != y->i || x->hi != y->hi)
        return false;
    }
    for (int r = 0; r < f->fn->nregs; r++) {
      if (k == 0 && main_regs && !main_regs[r]) continue;
      if ((f->flags[r] & F_SIZED) != (g->flags[r] & F_SIZED) || !reg_same(f->regs[r], g->regs[r]))
        return false;
    }
  }
  return addrs_same(a->addrs->root, b->addrs->root);
}
