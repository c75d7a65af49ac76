/* lmh.c — engine lmh: Metropolis–Hastings within Gibbs with learned block
 * proposals (inference/motif.h; Wang, Wu, Moore & Russell 2018).
 *
 * One step: every block of the current trace whose motif has a trained
 * proposal in the library gets one move from its network -- blocks whose
 * Markov blankets do not meet move together, by delayed acceptance on the
 * local log posteriors their K batch runs give (lmh_batch), then one replay
 * and a joint MH check; the proposal's log q enters the ratios, so the chain
 * is exact however poor the network (or the grouping) -- and then
 * engine mh's sweep of single-site moves (its state, warmup adaptation and
 * draw reporting are reused as they are: engine_mh.init / step) moves
 * the continuous latents and the blocks without a proposal (the sweeps
 * draw their sites among the choices the learned moves do not cover).
 * The continuous blocks with proposals move as one group when two runs find
 * their blankets (lmh_cgroup), else one by one (lmh_cmove); a discrete
 * choice whose value changes which choices the program draws (an
 * open-universe mixture's K) gets reversible-jump birth/death moves whose
 * new blocks come from their learned proposals (lmh_jump).
 *
 * The blocks are found per distinct structure of the trace (its addresses)
 * and cached, so programs whose latents change between runs re-detect only
 * when a new structure appears.  A block's move is skipped (a valid kernel
 * choice: it depends on the blanket, which forward and reverse moves share)
 * when its probe finds another signature than the cached one.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "motif.h"
#include "trace.h"

typedef struct LmhBlock {
  const char *addr;
  int elem;
  const char *sig;        /* NULL: not a motif */
  const MotifNet *net;    /* NULL: no trained proposal */
  bool cont;              /* a continuous block (motif_cprobe) */
  int ncell;              /* cells of a discrete block (motif_blocks); 1: addr, elem */
  MotifSite *cells;
  bool absorbed;          /* a cell moved by the block of an earlier entry */
  bool jump;              /* a scalar discrete choice whose value draws new choices:
                             the trans-dimensional move's variable (lmh_jump) */
  double lo;              /* then its support lo .. lo + K - 1 */
  int K;
} LmhBlock;

typedef struct LmhStructure {
  uint64_t key;           /* hash of the trace's addresses and sizes */
  int n;
  LmhBlock *b;
  /* the blocks with trained proposals in groups whose blankets do not meet
     (motif_groups): each group's features come from K runs a step */
  int ngroups;
  int *gsize;             /* per group: its blocks */
  MotifProbe **gprobe;    /* [group][i] */
  int **gidx;             /* [group][i]: index in b */
} LmhStructure;

typedef struct LmhStat {
  const char *sig;
  bool trained;
  long blocks;            /* in the last structure seen */
  long prop, acc;         /* moves after warmup */
} LmhStat;

typedef struct LmhState {
  void *mh;               /* engine mh's state: single-site sweeps and the draw */
  MhMover *mv;
  const Interp *in;
  int chain;
  Rng rng;
  uint64_t model_seed;
  MotifLib *lib;
  const char *dir;
  Tape *tape;
  LmhStructure *st;
  int nst, stcap;
  LmhStat *stats;
  int nstats, statcap;
  int cells;              /* --cells: the most cells of a block (1: single elements) */
  long gmoves, gacc;      /* group moves after warmup, and those the joint check accepted */
  long cgmoves, cgacc;    /* the same for the group of continuous blocks */
  int jumps;              /* --jumps: trans-dimensional moves per step and jump variable */
  long jprop[2], jacc[2]; /* death, birth moves after warmup, and accepted */
  long jnone;             /* moves refused (no learned move for this change) */
  const char *jwhy;       /* the first reason */
  int ngroups;            /* groups of the current structure */
  const char *other;      /* a block that is no motif, and why (for the notes) */
  long nother;
  /* choices whose every element has a learned move: engine mh's sweeps
     leave them out.  Once covered, an address stays covered (in a program
     of fixed structure this is settled at the first step); in a structure
     where it has no learned move, lmh_step gives it single-site moves */
  const char **covered;   /* open addressing; NULL = empty */
  int ccap, cn;
} LmhState;

static uint64_t structure_key(const Trace *t) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < t->n; i++) {
    for (const char *p = t->c[i].addr; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ (uint64_t)(unsigned)t->c[i].numel ^ 0xff00u) * 1099511628211ull;
  }
  return h;
}

static LmhStat *stat_of(LmhState *s, const char *sig) {
  for (int i = 0; i < s->nstats; i++)
    if (!strcmp(s->stats[i].sig, sig)) return &s->stats[i];
  if (s->nstats == s->statcap) {
    s->statcap = s->statcap ? 2 * s->statcap : 4;
    LmhStat *a = gc_alloc(sizeof(LmhStat) * (size_t)s->statcap);
    if (s->nstats) memcpy(a, s->stats, sizeof(LmhStat) * (size_t)s->nstats);
    s->stats = a;
  }
  LmhStat *t = &s->stats[s->nstats++];
  memset(t, 0, sizeof *t);
  t->sig = sig;
  return t;
}

static uint64_t str_hash(const char *p) {
  uint64_t h = 1469598103934665603ull;
  for (; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h;
}

static bool lmh_covers(void *ctx, const char *addr) {
  const LmhState *s = ctx;
  if (!s->ccap) return false;
  size_t mask = (size_t)s->ccap - 1;
  for (size_t j = str_hash(addr) & mask; s->covered[j]; j = (j + 1) & mask)
    if (!strcmp(s->covered[j], addr)) return true;
  return false;
}

static void cover(LmhState *s, const char *addr) {
  if (lmh_covers(s, addr)) return;
  if (2 * (s->cn + 1) > s->ccap) {
    int cap = s->ccap ? 2 * s->ccap : 16;
    const char **t = gc_alloc(sizeof(char *) * (size_t)cap);
    for (int i = 0; i < s->ccap; i++) {
      if (!s->covered[i]) continue;
      size_t j = str_hash(s->covered[i]) & (size_t)(cap - 1);
      while (t[j]) j = (j + 1) & (size_t)(cap - 1);
      t[j] = s->covered[i];
    }
    s->covered = t;
    s->ccap = cap;
  }
  size_t j = str_hash(addr) & (size_t)(s->ccap - 1);
  while (s->covered[j]) j = (j + 1) & (size_t)(s->ccap - 1);
  s->covered[j] = addr;
  s->cn++;
}

/* The continuous blocks of cur (nc candidate sites) appended to ns->b: those
   that are motifs, an element nothing depends on in this trace counting as
   the motif with no children (its children may come with the next
   assignment; its proposal is then near its prior). */
static bool cont_blocks(LmhState *s, const Trace *cur, int nc, const MotifSite *cs,
                        LmhStructure *ns, Diag *d) {
  MotifCProbe *cp = gc_alloc(sizeof(MotifCProbe) * (size_t)(nc + 1));
  for (int i = 0; i < nc; i++)
    if (!motif_cprobe(s->in, s->model_seed, (uint64_t)s->chain, cur, cs[i].addr, cs[i].elem,
                      &s->rng, &cp[i], d))
      return false;
  bool any_cont = false; /* empty blocks join the motif when the trace has it */
  for (int i = 0; i < nc; i++) any_cont |= cp[i].sig && motif_cont_sig(cp[i].sig);
  for (int i = 0; i < nc; i++) {
    const char *sig = cp[i].sig ? cp[i].sig : cp[i].empty && any_cont ? motif_cont_empty_sig() : NULL;
    if (!sig) continue;
    const char *err;
    LmhBlock *b = &ns->b[ns->n++];
    *b = (LmhBlock){.addr = cs[i].addr, .elem = cs[i].elem, .sig = sig, .cont = true};
    b->net = motif_lib_get(s->lib, sig, &err);
    if (err) {
      diag_error(d, DIAG_USAGE, (SrcPos){0}, "lmh: %s", err);
      return false;
    }
    LmhStat *t = stat_of(s, sig);
    t->trained = b->net != NULL;
    t->blocks++;
  }
  return true;
}

/* The blocks of cur's structure, probed once per structure. */
static LmhStructure *structure_of(LmhState *s, const Trace *cur, Diag *d) {
  uint64_t key = structure_key(cur);
  for (int i = 0; i < s->nst; i++)
    if (s->st[i].key == key) return &s->st[i];
  MotifSite *sites, *csites;
  int n = motif_sites(cur, &sites), nc = motif_csites(cur, &csites);
  LmhStructure ns = {.key = key, .n = n, .b = gc_alloc(sizeof(LmhBlock) * (size_t)(n + nc + 1))};
  for (int i = 0; i < s->nstats; i++) s->stats[i].blocks = 0;
  MotifProbe *probes = gc_alloc(sizeof(MotifProbe) * (size_t)(n + 1));
  for (int i = 0; i < n; i++) {
    MotifProbe p;
    if (!motif_probe(s->in, s->model_seed, (uint64_t)s->chain, cur, sites[i].addr, sites[i].elem,
                     &s->rng, &p, d))
      return NULL;
    probes[i] = p;
    LmhBlock *b = &ns.b[i];
    b->addr = sites[i].addr;
    b->elem = sites[i].elem;
    b->ncell = 1;
    b->cells = &sites[i];
    b->sig = p.sig;
    if (!p.sig) {
      const TraceChoice *c = trace_find(cur, b->addr);
      /* its other values add or remove choices (or events: at the top of
         its support no value adds any) */
      b->jump = p.why && (!strncmp(p.why, "the program draws new choices", 29) ||
                          !strncmp(p.why, "the program's events change", 27)) &&
                c && c->numel == 1 && p.K >= 2;
      b->lo = p.lo, b->K = p.K;
      if (!s->other) s->other = gc_printf("%s: %s", b->addr, p.why);
      s->nother++;
      continue;
    }
    const char *err;
    b->net = motif_lib_get(s->lib, p.sig, &err);
    if (err) {
      diag_error(d, DIAG_USAGE, (SrcPos){0}, "lmh: %s", err);
      return NULL;
    }
  }
  /* blocks of several cells with a trained proposal replace their cells */
  int *blk = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  int nblk = s->cells > 1 ? motif_blocks(n, probes, blk, s->cells) : 0;
  for (int k = 0; k < nblk; k++) {
    MotifSite *cells = gc_alloc(sizeof(MotifSite) * MOTIF_MAXCELLS);
    int m = 0, first = -1;
    for (int i = 0; i < n; i++)
      if (blk[i] == k) cells[m++] = sites[i], first = first < 0 ? i : first;
    MotifProbe bp;
    if (!motif_probe_block(s->in, s->model_seed, (uint64_t)s->chain, cur, m, cells, &s->rng, &bp, d))
      return NULL;
    const char *err;
    const MotifNet *net = bp.sig ? motif_lib_get(s->lib, bp.sig, &err) : NULL;
    if (bp.sig && err) {
      diag_error(d, DIAG_USAGE, (SrcPos){0}, "lmh: %s", err);
      return NULL;
    }
    if (!net) continue;
    for (int i = 0; i < n; i++)
      if (blk[i] == k) ns.b[i].net = NULL, ns.b[i].absorbed = true;
    ns.b[first] = (LmhBlock){.addr = cells[0].addr, .elem = cells[0].elem, .sig = bp.sig,
                             .net = net, .ncell = m, .cells = cells};
    probes[first] = bp;
  }
  for (int i = 0; i < n; i++) {
    if (!ns.b[i].sig || ns.b[i].absorbed) continue;
    LmhStat *t = stat_of(s, ns.b[i].sig);
    t->trained = ns.b[i].net != NULL;
    t->blocks++;
  }
  if (s->nst == s->stcap) {
    s->stcap = s->stcap ? 2 * s->stcap : 4;
    LmhStructure *a = gc_alloc(sizeof(LmhStructure) * (size_t)s->stcap);
    if (s->nst) memcpy(a, s->st, sizeof(LmhStructure) * (size_t)s->nst);
    s->st = a;
  }
  /* groups of the blocks with networks, of one K each */
  int nn = 0, *which = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  MotifProbe *keep = gc_alloc(sizeof(MotifProbe) * (size_t)(n + 1));
  for (int i = 0; i < n; i++)
    if (ns.b[i].net) which[nn] = i, keep[nn++] = probes[i];
  int *grp = gc_alloc_atomic(sizeof(int) * (size_t)(nn + 1));
  if (nn) motif_groups(nn, keep, grp);
  /* split each colour by K and values: one batch runs one K */
  ns.gsize = gc_alloc_atomic(sizeof(int) * (size_t)(nn + 1));
  ns.gprobe = gc_alloc(sizeof(MotifProbe *) * (size_t)(nn + 1));
  ns.gidx = gc_alloc(sizeof(int *) * (size_t)(nn + 1));
  int *gcol = gc_alloc_atomic(sizeof(int) * (size_t)(nn + 1));
  for (int i = 0; i < nn; i++) {
    int h = 0;
    while (h < ns.ngroups && !(gcol[h] == grp[i] && ns.gprobe[h][0].K == keep[i].K &&
                               ns.gprobe[h][0].lo == keep[i].lo &&
                               ns.gprobe[h][0].ncell == keep[i].ncell))
      h++;
    if (h == ns.ngroups) {
      ns.gprobe[h] = gc_alloc(sizeof(MotifProbe) * (size_t)(nn + 1));
      ns.gidx[h] = gc_alloc_atomic(sizeof(int) * (size_t)(nn + 1));
      gcol[h] = grp[i];
      ns.ngroups++;
    }
    ns.gprobe[h][ns.gsize[h]] = keep[i];
    ns.gidx[h][ns.gsize[h]++] = which[i];
  }
  if (!cont_blocks(s, cur, nc, csites, &ns, d)) return NULL;
  /* a choice is covered when all its elements have learned discrete moves
     (continuous ones keep mh's random walks beside the learned moves: an
     untrained network then costs runs, never mixing); the decision stays
     with the address (the sweeps' site choice must be a fixed
     function of addresses for the MH ratio to hold) */
  for (int i = 0, j; i < ns.n; i = j) {
    bool all = true;
    for (j = i; j < ns.n && !strcmp(ns.b[j].addr, ns.b[i].addr); j++)
      all = all && (ns.b[j].net || ns.b[j].absorbed) && !ns.b[j].cont;
    const TraceChoice *c = trace_find(cur, ns.b[i].addr);
    if (all && c && j - i == c->numel) cover(s, ns.b[i].addr);
  }
  s->st[s->nst] = ns;
  return &s->st[s->nst++];
}

/* One learned independence move of block b from (*cur, *ist). */
static bool lmh_move(LmhState *s, const LmhBlock *b, bool warmup, Trace **cur, InterpState **ist,
                     Diag *d) {
  MotifProbe p;
  if (!motif_probe_block(s->in, s->model_seed, (uint64_t)s->chain, *cur, b->ncell, b->cells,
                         &s->rng, &p, d))
    return false;
  if (!p.sig || strcmp(p.sig, b->sig)) return true;
  double logq[MOTIF_MAXK];
  if (!motif_net_logq(b->net, s->tape, &p, logq)) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "lmh: %s", tape_error(s->tape));
    return false;
  }
  double u = rng_uniform(&s->rng), c = 0;
  int k = p.K - 1;
  for (int j = 0; j < p.K; j++) {
    c += exp(logq[j]);
    if (u < c) {
      k = j;
      break;
    }
  }
  while (k > 0 && !p.tr[k]) k--; /* rounding at the top end onto an impossible value */
  LmhStat *t = stat_of(s, b->sig);
  bool accepted = true;
  if (k != p.cur && p.tr[k]) {
    TraceBlock blk = motif_probe_at(&p, *cur, k);
    blk.log_q_ratio = logq[p.cur] - logq[k];
    double a = trace_block_log_accept(*cur, p.tr[k], &blk, p.block_seen[k], p.fresh_lp[k]);
    accepted = log(rng_uniform(&s->rng)) < a;
    if (accepted) {
      *cur = p.tr[k];
      *ist = p.st[k];
    }
  }
  if (!warmup) {
    t->prop++;
    t->acc += accepted;
  }
  return true;
}

/* A continuous block's move: x' ~ q(. | blanket), an independence proposal
   given the blanket, vetoed when the blanket seen from the new trace is not
   the same (a symmetric veto), so q(x | blanket) is the reverse proposal. */
typedef struct ContProp {
  LmhState *s;
  const MotifCProbe *p;
  double to, log_q_ratio;
  bool internal;          /* the check's probe failed inside */
  Diag *d;
} ContProp;

static bool cp_propose(void *ctx, const Trace *cur, Rng *r, TraceBlock *b, char *err, size_t errsz) {
  (void)r, (void)err, (void)errsz;
  const ContProp *x = ctx;
  Value v = val_copy(trace_find(cur, x->p->addr)->val);
  trace_value_set(&v, (size_t)x->p->elem, x->to);
  b->n = 1;
  b->addrs = gc_alloc(sizeof(char *));
  b->vals = gc_alloc(sizeof(Value));
  b->addrs[0] = x->p->addr;
  b->vals[0] = v;
  b->log_q_ratio = x->log_q_ratio;
  return true;
}

static bool cp_check(void *ctx, const Trace *old, const Trace *new_, const TraceBlock *b) {
  (void)b;
  ContProp *x = ctx;
  if (structure_key(old) != structure_key(new_)) return false;
  MotifCProbe q;
  if (!motif_cprobe(x->s->in, x->s->model_seed, (uint64_t)x->s->chain, new_, x->p->addr,
                    x->p->elem, &x->s->rng, &q, x->d)) {
    x->internal = true;
    return false;
  }
  return motif_cprobe_same(x->p, &q);
}

static bool lmh_cmove(LmhState *s, const LmhBlock *b, bool warmup, Trace **cur, InterpState **ist,
                      Diag *d) {
  MotifCProbe p;
  if (!motif_cprobe(s->in, s->model_seed, (uint64_t)s->chain, *cur, b->addr, b->elem, &s->rng, &p, d))
    return false;
  if (!(p.empty || (p.sig && !strcmp(p.sig, b->sig)))) {
    /* not this motif in this trace: the single-site move it would have had */
    bool acc;
    return mh_mover_move_at(s->mv, b->addr, warmup, cur, ist, &acc, d);
  }
  MotifMix q;
  if (!motif_net_mix(b->net, s->tape, &p, &q)) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "lmh: %s", tape_error(s->tape));
    return false;
  }
  double to = motif_mix_draw(&q, &s->rng);
  ContProp x = {s, &p, to, motif_mix_logq(&q, p.x) - motif_mix_logq(&q, to), false, d};
  TraceBlockProposal bp = {cp_propose, cp_check, &x};
  bool accepted = false;
  double pa;
  if (isfinite(x.log_q_ratio) &&
      !mh_block_move(s->in, &bp, &s->rng, s->model_seed, (uint64_t)s->chain, cur, ist, &accepted,
                     &pa, d))
    return false;
  if (x.internal) return false;
  if (!warmup) {
    LmhStat *t = stat_of(s, b->sig);
    t->prop++;
    t->acc += accepted;
  }
  return true;
}

/* The continuous blocks with proposals moved together (lmh_cgroup): their
   blankets from two runs (motif_cprobe_group), each block's local step by
   delayed acceptance on its local log posterior, then one replay and the
   joint check. */
typedef struct CGroupProp {
  LmhState *s;
  int n;                  /* blocks */
  const MotifSite *site;
  const MotifCProbe *p;   /* their blankets in the current trace */
  const double *to;       /* new values (NAN: unchanged) */
  double log_q_ratio;
  bool internal;
  Diag *d;
} CGroupProp;

static bool cg_propose(void *ctx, const Trace *cur, Rng *r, TraceBlock *b, char *err, size_t errsz) {
  (void)r, (void)err, (void)errsz;
  const CGroupProp *x = ctx;
  b->n = 0;
  b->addrs = gc_alloc(sizeof(char *) * (size_t)(x->n + 1));
  b->vals = gc_alloc(sizeof(Value) * (size_t)(x->n + 1));
  for (int i = 0; i < x->n; i++) {
    if (isnan(x->to[i])) continue;
    int j = 0;
    while (j < b->n && strcmp(b->addrs[j], x->site[i].addr)) j++;
    if (j == b->n) b->addrs[b->n] = x->site[i].addr, b->vals[b->n++] = val_copy(trace_find(cur, x->site[i].addr)->val);
    trace_value_set(&b->vals[j], (size_t)x->site[i].elem, x->to[i]);
  }
  b->log_q_ratio = x->log_q_ratio;
  return true;
}

/* the same structure and every block's blanket the same seen from the new
   trace (a symmetric veto): then the reverse move has the same kernels */
static bool cg_check(void *ctx, const Trace *old, const Trace *new_, const TraceBlock *b) {
  (void)b;
  CGroupProp *x = ctx;
  if (structure_key(old) != structure_key(new_)) return false;
  MotifCProbe *q = gc_alloc(sizeof(MotifCProbe) * (size_t)x->n);
  bool ok;
  if (!motif_cprobe_group(x->s->in, x->s->model_seed, (uint64_t)x->s->chain, new_, x->n, x->site,
                          &x->s->rng, q, &ok, x->d)) {
    x->internal = true;
    return false;
  }
  for (int i = 0; ok && i < x->n; i++) ok = motif_cprobe_same(&x->p[i], &q[i]);
  return ok;
}

/* log prior + log density of the children at v: the block's local log
   posterior, as its blanket gives it (normal->normal(mu)) */
static double cg_local(const MotifCProbe *p, double v) {
  double z = (v - p->m0) / p->s0, l = -0.5 * z * z;
  for (int j = 0; j < p->n; j++) {
    double r = (p->y[j] - v) / p->sg[j];
    l -= 0.5 * r * r;
  }
  return l;
}

/* The continuous blocks with proposals of structure ls moved as one group;
   *done false when their blankets could not be found in two runs (then
   block by block). */
static bool lmh_cgroup(LmhState *s, LmhStructure *ls, bool warmup, Trace **cur, InterpState **ist,
                       bool *done, Diag *d) {
  *done = false;
  int n = 0;
  for (int i = 0; i < ls->n; i++) n += ls->b[i].cont && ls->b[i].net;
  if (n < 2) return true;
  MotifSite *site = gc_alloc(sizeof(MotifSite) * (size_t)n);
  const LmhBlock **blk = gc_alloc(sizeof(LmhBlock *) * (size_t)n);
  for (int i = 0, k = 0; i < ls->n; i++)
    if (ls->b[i].cont && ls->b[i].net)
      site[k] = (MotifSite){ls->b[i].addr, ls->b[i].elem}, blk[k++] = &ls->b[i];
  MotifCProbe *p = gc_alloc(sizeof(MotifCProbe) * (size_t)n);
  bool ok;
  if (!motif_cprobe_group(s->in, s->model_seed, (uint64_t)s->chain, *cur, n, site, &s->rng, p, &ok, d))
    return false;
  if (!ok) return true;
  *done = true;
  double *to = gc_alloc_atomic(sizeof(double) * (size_t)n), lqr = 0;
  int nch = 0;
  for (int i = 0; i < n; i++) {
    to[i] = NAN;
    MotifMix q;
    if (!motif_net_mix(blk[i]->net, s->tape, &p[i], &q)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "lmh: %s", tape_error(s->tape));
      return false;
    }
    double x = p[i].x, y = motif_mix_draw(&q, &s->rng);
    double L0 = cg_local(&p[i], x), L1 = cg_local(&p[i], y);
    double a = L1 - L0 + motif_mix_logq(&q, x) - motif_mix_logq(&q, y);
    bool kept = isfinite(a) && log(rng_uniform(&s->rng)) < a;
    if (kept) to[i] = y, lqr += L0 - L1, nch++;
    if (!warmup) {
      LmhStat *t = stat_of(s, blk[i]->sig);
      t->prop++;
      t->acc += kept;
    }
  }
  if (nch == 0) return true;
  CGroupProp x = {s, n, site, p, to, lqr, false, d};
  TraceBlockProposal bp = {cg_propose, cg_check, &x};
  bool accepted;
  double pa;
  if (!mh_block_move(s->in, &bp, &s->rng, s->model_seed, (uint64_t)s->chain, cur, ist, &accepted,
                     &pa, d))
    return false;
  if (x.internal) return false;
  if (!warmup) {
    s->cgmoves++;
    s->cgacc += accepted;
    if (!accepted)
      for (int i = 0; i < n; i++)
        if (!isnan(to[i])) stat_of(s, blk[i]->sig)->acc--;
  }
  return true;
}

/* A group's move: every block of the group at its new value at once. */
typedef struct GroupProp {
  int n;
  const MotifProbe **p;
  const int *to;
  double log_q_ratio;
} GroupProp;

static bool gp_propose(void *ctx, const Trace *cur, Rng *r, TraceBlock *b, char *err, size_t errsz) {
  (void)r, (void)err, (void)errsz;
  const GroupProp *x = ctx;
  int m = 0;
  for (int i = 0; i < x->n; i++) m += x->p[i]->ncell;
  b->n = 0;
  b->addrs = gc_alloc(sizeof(char *) * (size_t)m);
  b->vals = gc_alloc(sizeof(Value) * (size_t)m);
  for (int i = 0; i < x->n; i++) { /* blocks that are elements of one choice share its value */
    TraceBlock one = motif_probe_at(x->p[i], cur, x->to[i]);
    for (int c = 0; c < one.n; c++) {
      int j = 0, e = x->p[i]->cell_elem[c];
      while (j < b->n && strcmp(b->addrs[j], one.addrs[c])) j++;
      if (j == b->n) b->addrs[b->n] = one.addrs[c], b->vals[b->n++] = one.vals[c];
      else trace_value_set(&b->vals[j], (size_t)e, trace_value_get(one.vals[c], (size_t)e));
    }
  }
  b->log_q_ratio = x->log_q_ratio;
  return true;
}

/* the same addresses before and after: then the reverse move is this kind */
static bool gp_check(void *ctx, const Trace *old, const Trace *new_, const TraceBlock *b) {
  (void)ctx, (void)b;
  return structure_key(old) == structure_key(new_);
}

/* One step's move of a group from its K batch runs (motif_probe_batch), by
   delayed acceptance (Christen & Fox 2005).  Each block b draws k' ~ q_b and
   keeps it with the Metropolis probability of its local log posterior
   L_b(k) = lprior_b(k) + lloc_b(k) read off the runs -- a kernel P_b that
   depends on nothing in the group, as q_b does not.  The group's new values
   are then one proposal of density prod_b P_b, replayed once and accepted
   with pi(new) Q(old | new) / (pi(old) Q(new | old)); a changed block
   contributes L_b(from) - L_b(to) to log Q(old | new) / Q(new | old) (P_b
   satisfies detailed balance for exp(L_b)), so the ratio is 1 when the
   blankets separate and corrects the local decisions when they do not: the
   move is exact for any program and any grouping.  A group costs K runs and
   one more when some block changes, where block-by-block moves cost one run
   per changed block.  *done false when the batch runs could not be used
   (then block by block). */
static bool lmh_batch(LmhState *s, LmhStructure *ls, int g, bool warmup, Trace **cur,
                      InterpState **ist, bool *done, Diag *d) {
  if (!motif_probe_batch(s->in, s->model_seed, (uint64_t)s->chain, *cur, ls->gsize[g],
                         ls->gprobe[g], &s->rng, done, d))
    return false;
  if (!*done) return true;
  int n = ls->gsize[g], nch = 0;
  const MotifProbe **cp = gc_alloc(sizeof(MotifProbe *) * (size_t)n);
  int *to = gc_alloc_atomic(sizeof(int) * (size_t)n), *who = gc_alloc_atomic(sizeof(int) * (size_t)n);
  double lqr = 0, logq[MOTIF_MAXK];
  for (int i = 0; i < n; i++) {
    const MotifProbe *p = &ls->gprobe[g][i];
    const LmhBlock *b = &ls->b[ls->gidx[g][i]];
    if (!motif_net_logq(b->net, s->tape, p, logq)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "lmh: %s", tape_error(s->tape));
      return false;
    }
    int from = motif_probe_value(p, *cur);
    if (from < 0) continue;
    double u = rng_uniform(&s->rng), acc = 0;
    int k = p->K - 1;
    for (int j = 0; j < p->K; j++)
      if (u < (acc += exp(logq[j]))) {
        k = j;
        break;
      }
    while (k > 0 && !(logq[k] > -INFINITY)) k--;
    bool kept = false;
    if (k != from) {
      double L1 = p->lprior[k] + p->lloc[k], L0 = p->lprior[from] + p->lloc[from];
      double a = L1 - L0 + logq[from] - logq[k];
      kept = isfinite(L1) && isfinite(a) && log(rng_uniform(&s->rng)) < a;
      if (kept) {
        cp[nch] = p, to[nch] = k, who[nch++] = i;
        lqr += L0 - L1;
      }
    }
    if (!warmup) {
      LmhStat *t = stat_of(s, b->sig);
      t->prop++;
      t->acc += k == from || kept;
    }
  }
  if (nch == 0) return true;
  GroupProp x = {nch, cp, to, lqr};
  TraceBlockProposal bp = {gp_propose, gp_check, &x};
  bool accepted;
  double pa;
  if (!mh_block_move(s->in, &bp, &s->rng, s->model_seed, (uint64_t)s->chain, cur, ist, &accepted,
                     &pa, d))
    return false;
  if (!warmup) {
    s->gmoves++;
    s->gacc += accepted;
    if (!accepted) /* the changed blocks' moves were rejected after all */
      for (int c = 0; c < nch; c++) stat_of(s, ls->b[ls->gidx[g][who[c]]].sig)->acc--;
  }
  return true;
}

/* ---- trans-dimensional moves (reversible jump; Green 1995) ----
 *
 * A scalar discrete choice J whose value changes which choices the program
 * draws (the number of components K of an open-universe mixture) moves by
 * birth (J + 1) or death (J - 1), each chosen with probability 1/2.  A
 * birth adds the choices the program draws at J + 1 -- each must be a
 * continuous block of a motif with a trained proposal (a component mean:
 * normal->normal(mu)) -- and draws their values from that proposal
 * conditioned on the points the new block would own: an anchor a among the
 * children of an existing block j of the motif (found by probing), with the
 * children of j nearer a than j's value (a split of j); the proposal is the
 * mixture over every anchor, a tenth of its mass on the proposal given no
 * points (near the prior).  Then every discrete block of the new structure
 * with a proposal (the assignments, whose support changed) is redrawn from
 * its learned proposal given the new values: one group, its K batch runs
 * (motif_probe_batch), each block from q_b, which depends on no value of the
 * group.  A death removes the choices the program no longer draws at J - 1
 * and redraws the discrete blocks alike.  Values are drawn directly (the
 * dimension-matching map is the identity: Jacobian 1), so a birth x -> x'
 * is accepted with
 *   pi(x') q_z(z | x' at J) / (pi(x) q_m(m* | x) q_z(z' | x, J + 1, m*)),
 * the reverse death's redraw evaluated on the trace it would see, and a
 * death with the inverse ratio, q_m evaluated as the reverse birth would (on
 * x').  A change the move cannot account for -- choices redrawn from the
 * prior other than the ones it adds and redraws, discrete blocks in more
 * than one group, an added choice after a redrawn block (its prior could
 * read them) -- is refused, by the same test in both directions: a
 * rejection of a valid kernel.
 */

typedef struct JSet {
  const char *addr;
  int elem;
  double x;
} JSet;

/* base replayed with the values of set (elements of base's choices); a run
   the program rejects gives NULL with *internal false. */
static Trace *jreplay(LmhState *s, const Trace *base, int n, const JSet *set, InterpState **st,
                      bool *internal, Diag *d) {
  TraceChoice *c = gc_alloc(sizeof(TraceChoice) * (size_t)(base->n + 1));
  if (base->n) memcpy(c, base->c, sizeof(TraceChoice) * (size_t)base->n);
  for (int i = 0; i < n; i++) {
    const TraceChoice *o = trace_find(base, set[i].addr);
    if (!o) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "lmh: jump: '%s' is not in the trace", set[i].addr);
      *internal = true;
      return NULL;
    }
    TraceChoice *t = &c[o - base->c];
    t->val = val_copy(t->val);
    trace_value_set(&t->val, (size_t)set[i].elem, set[i].x);
  }
  TraceHandler th;
  trace_handler_init(&th, &s->rng, trace_from_choices(base->n, c, base->loglik), NULL, NULL, NULL);
  Diag rd;
  diag_init(&rd);
  Trace *t = trace_run(s->in, &th, s->model_seed, (uint64_t)s->chain, false, st, &rd);
  if (!t && rd.code == DIAG_INTERNAL) {
    *d = rd;
    *internal = true;
  }
  return t;
}

/* The addresses of b that a has not (*n of them). */
static const char **jadded(const Trace *a, const Trace *b, int *n) {
  const char **r = gc_alloc(sizeof(char *) * (size_t)(b->n + 1));
  *n = 0;
  for (int i = 0; i < b->n; i++)
    if (!trace_find(a, b->c[i].addr)) r[(*n)++] = b->c[i].addr;
  return r;
}

static bool jin(int n, const char **list, const char *addr) {
  for (int i = 0; i < n; i++)
    if (!strcmp(list[i], addr)) return true;
  return false;
}

/* Whether addr is a cell of a block of ls's one group (ngroups <= 1). */
static bool jgroup_has(const LmhStructure *ls, const char *addr) {
  for (int g = 0; g < ls->ngroups; g++)
    for (int i = 0; i < ls->gsize[g]; i++)
      for (int c = 0; c < ls->gprobe[g][i].ncell; c++)
        if (!strcmp(ls->gprobe[g][i].cell_addr[c], addr)) return true;
  return false;
}

/* Every fresh choice of t is added (n of them), a cell of ls's group, or
   certain (a discrete choice of one possible value: categorical(1/K) at
   K = 1), its draw then no part of the proposal. */
static bool jfresh_ok(const Trace *t, int n, const char **added, const LmhStructure *ls) {
  for (int i = 0; i < t->n; i++)
    if (t->c[i].fresh && !(!t->c[i].continuous && t->c[i].lp == 0) &&
        !jin(n, added, t->c[i].addr) && !jgroup_has(ls, t->c[i].addr))
      return false;
  return true;
}

/* The added choices of big (structure ls) are scalar continuous blocks of
   ls with proposals, each drawn before every block of ls's group; their
   blocks in *nb. */
static const char *jadded_ok(const Trace *big, const LmhStructure *ls, int n, const char **added,
                             const LmhBlock **nb) {
  if (ls->ngroups > 1) return "the discrete blocks form more than one group";
  int first = big->n;
  for (int i = 0; i < big->n; i++)
    if (jgroup_has(ls, big->c[i].addr)) {
      first = i;
      break;
    }
  for (int i = 0; i < n; i++) {
    nb[i] = NULL;
    for (int j = 0; j < ls->n; j++)
      if (ls->b[j].cont && ls->b[j].net && !strcmp(ls->b[j].addr, added[i])) nb[i] = &ls->b[j];
    const TraceChoice *c = trace_find(big, added[i]);
    if (!nb[i] || !c || c->numel != 1)
      return gc_printf("'%s' is not a continuous block with a trained proposal", added[i]);
    if (c - big->c > first) return gc_printf("'%s' is drawn after a redrawn block", added[i]);
  }
  return NULL;
}

/* The birth proposal q_m of a block of net with prior pr, from the blocks
   of the same motif in pre: the mixture over anchors (see above). */
typedef struct JumpQ {
  int n;
  MotifMix *mix, none;
  double eps;
} JumpQ;

static bool jump_q(LmhState *s, const Trace *pre, const MotifNet *net, const MotifCProbe *pr,
                   JumpQ *q, Diag *d) {
  LmhStructure *ls = structure_of(s, pre, d);
  if (!ls) return false;
  MotifCProbe o = *pr;
  o.n = 0;
  if (!motif_net_mix(net, s->tape, &o, &q->none)) goto tape;
  q->n = 0;
  int cap = 16, nb = 0;
  q->mix = gc_alloc_atomic(sizeof(MotifMix) * (size_t)cap);
  /* the blocks' children: all in two runs, else one block at a time (each
     a function of pre alone) */
  MotifSite *site = gc_alloc(sizeof(MotifSite) * (size_t)(ls->n + 1));
  for (int i = 0; i < ls->n; i++)
    if (ls->b[i].cont && ls->b[i].net == net) site[nb++] = (MotifSite){ls->b[i].addr, ls->b[i].elem};
  MotifCProbe *all = gc_alloc(sizeof(MotifCProbe) * (size_t)(nb + 1));
  bool ok = false;
  if (nb && !motif_cprobe_group(s->in, s->model_seed, (uint64_t)s->chain, pre, nb, site, &s->rng, all,
                                &ok, d))
    return false;
  for (int i = 0; i < nb; i++) {
    if (!ok && !motif_cprobe(s->in, s->model_seed, (uint64_t)s->chain, pre, site[i].addr,
                             site[i].elem, &s->rng, &all[i], d))
      return false;
    const MotifCProbe cp = all[i];
    if (!cp.sig || !motif_cont_sig(cp.sig)) continue;
    o.y = gc_alloc_atomic(sizeof(double) * (size_t)(cp.n + 1));
    o.sg = gc_alloc_atomic(sizeof(double) * (size_t)(cp.n + 1));
    for (int a = 0; a < cp.n; a++) {
      o.n = 0;
      for (int c = 0; c < cp.n; c++)
        if (fabs(cp.y[c] - cp.y[a]) <= fabs(cp.y[c] - cp.x)) o.y[o.n] = cp.y[c], o.sg[o.n++] = cp.sg[c];
      if (q->n == cap) {
        MotifMix *m = gc_alloc_atomic(sizeof(MotifMix) * (size_t)(2 * cap));
        memcpy(m, q->mix, sizeof(MotifMix) * (size_t)cap);
        q->mix = m, cap *= 2;
      }
      if (!motif_net_mix(net, s->tape, &o, &q->mix[q->n++])) goto tape;
    }
  }
  q->eps = q->n ? 0.1 : 1;
  return true;
tape:
  diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "lmh: %s", tape_error(s->tape));
  return false;
}

static double jq_logq(const JumpQ *q, double x) {
  double l0 = log(q->eps) + motif_mix_logq(&q->none, x), m = l0, t = 0;
  double *l = gc_alloc_atomic(sizeof(double) * (size_t)(q->n + 1));
  for (int i = 0; i < q->n; i++)
    l[i] = log((1 - q->eps) / q->n) + motif_mix_logq(&q->mix[i], x), m = fmax(m, l[i]);
  if (!(m > -INFINITY)) return -INFINITY;
  t = exp(l0 - m);
  for (int i = 0; i < q->n; i++) t += exp(l[i] - m);
  return m + log(t);
}

static double jq_draw(const JumpQ *q, Rng *r) {
  if (q->n == 0 || rng_uniform(r) < q->eps) return motif_mix_draw(&q->none, r);
  int i = (int)(rng_uniform(r) * q->n);
  return motif_mix_draw(&q->mix[i < q->n ? i : q->n - 1], r);
}

/* The discrete blocks of ls's group on t (K batch runs): draw each from its
   proposal (draw: *set gets their cells, *nset of them) or evaluate the
   proposal at the values of at; *lq the sum of log q.  *ok false when the
   batch runs could not be used (then the move is refused). */
static bool jredraw(LmhState *s, LmhStructure *ls, const Trace *t, const Trace *at, JSet **set,
                    int *nset, double *lq, bool *ok, Diag *d) {
  *lq = 0, *nset = 0, *ok = true;
  if (ls->ngroups == 0) return true;
  if (!motif_probe_batch(s->in, s->model_seed, (uint64_t)s->chain, t, ls->gsize[0], ls->gprobe[0],
                         &s->rng, ok, d))
    return false;
  if (!*ok) return true;
  int cells = 0;
  for (int i = 0; i < ls->gsize[0]; i++) cells += ls->gprobe[0][i].ncell;
  if (set) *set = gc_alloc(sizeof(JSet) * (size_t)(cells + 1));
  double logq[MOTIF_MAXK];
  for (int i = 0; i < ls->gsize[0]; i++) {
    const MotifProbe *p = &ls->gprobe[0][i];
    if (!motif_net_logq(ls->b[ls->gidx[0][i]].net, s->tape, p, logq)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "lmh: %s", tape_error(s->tape));
      return false;
    }
    int k;
    if (at) {
      k = motif_probe_value(p, at);
      if (k < 0) {
        *lq = -INFINITY;
        return true;
      }
    } else {
      double u = rng_uniform(&s->rng), acc = 0;
      k = p->K - 1;
      for (int j = 0; j < p->K; j++)
        if (u < (acc += exp(logq[j]))) {
          k = j;
          break;
        }
      while (k > 0 && !(logq[k] > -INFINITY)) k--;
      for (int c = 0; c < p->ncell; c++)
        (*set)[(*nset)++] = (JSet){p->cell_addr[c], p->cell_elem[c],
                                   p->lo + (p->ncell == 1 ? k : (k >> c) & 1)};
    }
    *lq += logq[k];
  }
  return true;
}

static bool jno_fresh(const Trace *t) {
  for (int i = 0; i < t->n; i++)
    if (t->c[i].fresh) return false;
  return true;
}

/* One birth or death move of jump variable jb from (*cur, *ist), whose
   structure is ls. */
static bool lmh_jump(LmhState *s, LmhStructure *ls, const LmhBlock *jb, bool warmup, Trace **cur,
                     InterpState **ist, Diag *d) {
  Trace *x = *cur;
  const TraceChoice *jc = trace_find(x, jb->addr);
  bool birth = rng_uniform(&s->rng) < 0.5, internal = false, accepted = false, ok;
  const char *why = NULL;
  if (!jc) return true;
  double v = trace_value_get(jc->val, 0), to = birth ? v + 1 : v - 1;
  double lq_m = 0, lq_z = 0, lq_zr = 0;
  InterpState *st0 = NULL, *st2 = NULL, *st1 = NULL;
  Trace *T2 = NULL;
  int nadd, nrem, nset;
  JSet *zset;
  if (to < jb->lo || to > jb->lo + jb->K - 1) goto done; /* outside the support: rejected */
  JSet js = {jb->addr, 0, to};
  Trace *T0 = jreplay(s, x, 1, &js, &st0, &internal, d);
  if (!T0) goto done;
  if (birth) {
    const char **added = jadded(x, T0, &nadd);
    jadded(T0, x, &nrem);
    if (nadd == 0 || nrem) {
      why = gc_printf("%s = %g adds no choice or removes some", jb->addr, to);
      goto refuse;
    }
    LmhStructure *lb = structure_of(s, T0, d);
    if (!lb) return false;
    const LmhBlock **nb = gc_alloc(sizeof(LmhBlock *) * (size_t)nadd);
    if ((why = jadded_ok(T0, lb, nadd, added, nb))) goto refuse;
    if (!jfresh_ok(T0, nadd, added, lb)) {
      why = gc_printf("%s = %g redraws other choices", jb->addr, to);
      goto refuse;
    }
    /* the new blocks' values from the learned proposal, given x's points */
    JSet *mset = gc_alloc(sizeof(JSet) * (size_t)nadd);
    for (int i = 0; i < nadd; i++) {
      MotifCProbe pr;
      JumpQ q;
      if (!motif_cprobe(s->in, s->model_seed, (uint64_t)s->chain, T0, added[i], 0, &s->rng, &pr, d) ||
          !jump_q(s, x, nb[i]->net, &pr, &q, d))
        return false;
      mset[i] = (JSet){added[i], 0, jq_draw(&q, &s->rng)};
      lq_m += jq_logq(&q, mset[i].x);
    }
    Trace *T1 = jreplay(s, T0, nadd, mset, &st1, &internal, d);
    if (!T1 || !jno_fresh(T1)) goto done;
    if (!jredraw(s, lb, T1, NULL, &zset, &nset, &lq_z, &ok, d)) return false;
    if (!ok) goto done;
    T2 = jreplay(s, T1, nset, zset, &st2, &internal, d);
    if (!T2 || !jno_fresh(T2) || structure_key(T2) != lb->key) goto done;
    /* the reverse death: J back, the blocks redrawn on the trace it sees */
    InterpState *str;
    Trace *T1r = jreplay(s, T2, 1, &(JSet){jb->addr, 0, v}, &str, &internal, d);
    if (!T1r) goto done;
    int nr, ng;
    const char **radd = jadded(T1r, T2, &nr);
    jadded(T2, T1r, &ng);
    if (ng || nr != nadd || structure_key(T1r) != ls->key || ls->ngroups > 1 ||
        !jfresh_ok(T1r, 0, NULL, ls))
      goto done;
    for (int i = 0; i < nr; i++)
      if (!jin(nadd, added, radd[i])) goto done;
    if (!jredraw(s, ls, T1r, x, NULL, &nset, &lq_zr, &ok, d)) return false;
    if (!ok) goto done;
  } else {
    const char **gone = jadded(T0, x, &nrem);
    jadded(x, T0, &nadd);
    if (nrem == 0 || nadd) {
      why = gc_printf("%s = %g removes no choice or adds some", jb->addr, to);
      goto refuse;
    }
    const LmhBlock **nb = gc_alloc(sizeof(LmhBlock *) * (size_t)nrem);
    if ((why = jadded_ok(x, ls, nrem, gone, nb))) goto refuse;
    LmhStructure *lsm = structure_of(s, T0, d);
    if (!lsm) return false;
    if (lsm->ngroups > 1) {
      why = "the discrete blocks form more than one group";
      goto refuse;
    }
    if (!jfresh_ok(T0, 0, NULL, lsm)) {
      why = gc_printf("%s = %g redraws other choices", jb->addr, to);
      goto refuse;
    }
    if (!jredraw(s, lsm, T0, NULL, &zset, &nset, &lq_z, &ok, d)) return false;
    if (!ok) goto done;
    T2 = jreplay(s, T0, nset, zset, &st2, &internal, d);
    if (!T2 || !jno_fresh(T2) || structure_key(T2) != lsm->key) goto done;
    /* the reverse birth from T2: the removed blocks' values under q_m given
       T2's points, the discrete blocks' redraw at x's values (on x: the
       trace it would see but for the group's values, which its proposal
       does not read) */
    InterpState *str;
    Trace *T0r = jreplay(s, T2, 1, &(JSet){jb->addr, 0, v}, &str, &internal, d);
    if (!T0r) goto done;
    int na, ng;
    const char **radd = jadded(T2, T0r, &na);
    jadded(T0r, T2, &ng);
    if (ng || na != nrem || structure_key(T0r) != ls->key || !jfresh_ok(T0r, nrem, gone, ls))
      goto done;
    for (int i = 0; i < na; i++)
      if (!jin(nrem, gone, radd[i])) goto done;
    for (int i = 0; i < nrem; i++) {
      MotifCProbe pr;
      JumpQ q;
      if (!motif_cprobe(s->in, s->model_seed, (uint64_t)s->chain, T0r, gone[i], 0, &s->rng, &pr, d) ||
          !jump_q(s, T2, nb[i]->net, &pr, &q, d))
        return false;
      lq_m -= jq_logq(&q, trace_value_get(trace_find(x, gone[i])->val, 0));
    }
    if (!jredraw(s, ls, x, x, NULL, &nset, &lq_zr, &ok, d)) return false;
    if (!ok) goto done;
  }
  {
    double a = trace_logjoint(T2) - trace_logjoint(x) + lq_zr - lq_z - lq_m;
    accepted = isfinite(trace_logjoint(T2)) && log(rng_uniform(&s->rng)) < a;
  }
  if (accepted) *cur = T2, *ist = st2;
done:
  if (internal) return false;
  if (!warmup) {
    s->jprop[birth]++;
    s->jacc[birth] += accepted;
  }
  return true;
refuse:
  if (internal) return false;
  if (!s->jwhy) s->jwhy = why;
  if (!warmup) s->jnone++;
  return true;
}

static const char *proposals_dir(const EngineOpts *o) {
  const OptValue *v = opt_set_get(o ? o->set : NULL, "proposals");
  return v && v->path ? v->path : motif_default_dir();
}

static void *lmh_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  LmhState *s = gc_alloc(sizeof(LmhState));
  s->mh = engine_mh.init(in, o, chain, d);
  if (!s->mh) return NULL;
  s->mv = mh_mover_of_state(s->mh);
  s->in = in;
  s->chain = chain;
  rng_seed(&s->rng, o->seed ^ 0x6c6d68u, (uint64_t)chain); /* apart from mh's stream */
  s->dir = proposals_dir(o);
  s->cells = (int)engine_opt_int(o, "cells");
  s->jumps = (int)engine_opt_int(o, "jumps");
  s->lib = motif_lib_open(s->dir);
  s->tape = tape_new();
  mh_mover_set_skip(s->mv, lmh_covers, s);
  return s;
}

static bool lmh_step(void *state, bool warmup, Draw *out, Diag *d) {
  LmhState *s = state;
  Trace *cur;
  InterpState *ist;
  mh_mover_current(s->mv, &cur, &ist, &s->model_seed);
  LmhStructure *ls = structure_of(s, cur, d);
  if (!ls) return false;
  s->ngroups = ls->ngroups;
  /* group by group; a group whose batch runs fail is moved block by block */
  for (int g = 0; g < ls->ngroups; g++) {
    bool done = false;
    if (!lmh_batch(s, ls, g, warmup, &cur, &ist, &done, d)) return false;
    for (int i = 0; i < ls->gsize[g] && !done; i++)
      if (!lmh_move(s, &ls->b[ls->gidx[g][i]], warmup, &cur, &ist, d)) return false;
    if (structure_key(cur) != ls->key) break; /* a new structure: next step */
  }
  bool cdone = false;
  if (structure_key(cur) == ls->key && !lmh_cgroup(s, ls, warmup, &cur, &ist, &cdone, d)) return false;
  for (int i = 0; i < ls->n && !cdone && structure_key(cur) == ls->key; i++)
    if (ls->b[i].cont && ls->b[i].net && !lmh_cmove(s, &ls->b[i], warmup, &cur, &ist, d))
      return false;
  /* a covered address that is no motif in this structure: the sweeps skip
     it, so it gets its single-site moves here (once per element) */
  if (structure_key(cur) == ls->key)
    for (int i = 0; i < ls->n; i++)
      if (!ls->b[i].net && !ls->b[i].absorbed && lmh_covers(s, ls->b[i].addr)) {
        bool acc;
        if (!mh_mover_move_at(s->mv, ls->b[i].addr, warmup, &cur, &ist, &acc, d)) return false;
      }
  /* trans-dimensional moves of each jump variable (the structure found
     afresh before each: an accepted one changes it) */
  for (int r = 0; r < s->jumps; r++) {
    LmhStructure *l0 = structure_of(s, cur, d);
    if (!l0) return false;
    for (int i = 0; i < l0->n; i++) {
      if (!l0->b[i].jump) continue;
      LmhStructure *lc = structure_of(s, cur, d);
      if (!lc) return false;
      for (int j = 0; j < lc->n; j++)
        if (lc->b[j].jump && !strcmp(lc->b[j].addr, l0->b[i].addr)) {
          if (!lmh_jump(s, lc, &lc->b[j], warmup, &cur, &ist, d)) return false;
          break;
        }
    }
  }
  mh_mover_set_current(s->mv, cur, ist);
  return engine_mh.step(s->mh, warmup, out, d);
}

/* "learned proposals (DIR): finite->normal(mu) 12 blocks, 24000 moves, 96.5% accepted; ..." */
static const char *lmh_notes(void *state) {
  LmhState *s = state;
  const char *t = gc_printf("learned proposals (%s):", s->dir ? s->dir : "no library directory");
  if (s->nstats == 0) t = gc_printf("%s no motif found", t);
  for (int i = 0; i < s->nstats; i++) {
    const LmhStat *x = &s->stats[i];
    if (!x->trained)
      t = gc_printf("%s%s %s %ld block%s, no trained proposal (single-site moves)", t,
                    i ? ";" : "", x->sig, x->blocks, x->blocks == 1 ? "" : "s");
    else
      t = gc_printf("%s%s %s %ld block%s, %ld moves, %.1f%% accepted", t, i ? ";" : "", x->sig,
                    x->blocks, x->blocks == 1 ? "" : "s", x->prop,
                    x->prop ? 100.0 * (double)x->acc / (double)x->prop : 0.0);
  }
  if (s->gmoves)
    t = gc_printf("%s; %ld group moves (%d group%s a step), %.1f%% passing the joint check", t,
                  s->gmoves, s->ngroups, s->ngroups == 1 ? "" : "s",
                  100.0 * (double)s->gacc / (double)s->gmoves);
  if (s->cgmoves)
    t = gc_printf("%s; %ld group moves of the continuous blocks, %.1f%% passing the joint check", t,
                  s->cgmoves, 100.0 * (double)s->cgacc / (double)s->cgmoves);
  if (s->jprop[0] + s->jprop[1])
    t = gc_printf("%s; jump moves: %ld births, %.1f%% accepted, %ld deaths, %.1f%% accepted", t,
                  s->jprop[1], s->jprop[1] ? 100.0 * (double)s->jacc[1] / (double)s->jprop[1] : 0.0,
                  s->jprop[0], s->jprop[0] ? 100.0 * (double)s->jacc[0] / (double)s->jprop[0] : 0.0);
  if (s->jnone)
    t = gc_printf("%s; %ld jump move%s refused (%s)", t, s->jnone, s->jnone == 1 ? "" : "s", s->jwhy);
  if (s->nother)
    t = gc_printf("%s; %ld block%s (over the structures seen) no motif (%s)", t, s->nother,
                  s->nother == 1 ? "" : "s", s->other);
  return t;
}

static void lmh_free(void *state) {
  LmhState *s = state;
  if (s && s->mh) engine_mh.free(s->mh);
}

bool lmh_prefers(const Interp *in, const char *dir, const char **why, Diag *d) {
  if (!dir) dir = motif_default_dir();
  if (!dir || access(dir, R_OK) != 0) return false;
  MotifReport r;
  Diag dd;
  diag_init(&dd);
  if (!motif_detect(in, 1, &r, &dd) || r.n == 0) return false; /* then the usual engine */
  MotifLib *lib = motif_lib_open(dir);
  const char *list = "";
  int blocks = 0, nsig = 0;
  for (int i = 0; i < r.n; i++) {
    const char *err;
    if (!motif_lib_get(lib, r.found[i].sig, &err)) {
      if (err) diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s", err);
      /* continuous motifs are optional: their latents have single-site moves */
      if (err || strncmp(r.found[i].sig, "finite->", 8) == 0) return false;
      continue;
    }
    list = gc_printf("%s%s%s", list, *list ? ", " : "", r.found[i].sig);
    blocks += r.found[i].blocks;
    nsig++;
  }
  if (!blocks) return false;
  *why = gc_printf("lmh — %d block%s of motif%s %s with trained proposals in %s: learned block "
                   "proposals within Metropolis–Hastings, single-site moves elsewhere",
                   blocks, blocks == 1 ? "" : "s", nsig == 1 ? "" : "s", list, dir);
  return true;
}

static const OptSpec lmh_options[] = {
    {.name = "proposals", .type = OPT_TEXT, .def = "", .arg = "DIR",
     .help = "lmh: the library of learned proposals ('ppl learn-proposals' writes it); default "
             "$XDG_DATA_HOME/ppl/proposals, else ~/.local/share/ppl/proposals"},
    {.name = "cells", .type = OPT_INT, .def = "1", .ilo = 1, .ihi = MOTIF_MAXCELLS, .arg = "N",
     .help = "lmh: move binary nodes of a network in blocks of up to N cells (a variable with "
             "its children; a grid's 2x2 squares at 4) with the block motif's proposal; 1: "
             "each node alone"},
    {.name = "jumps", .type = OPT_INT, .def = "1", .ilo = 0, .ihi = 64, .arg = "N",
     .help = "lmh: trans-dimensional moves (birth or death with learned proposals) per step of "
             "each discrete choice that changes the program's choices (an open-universe "
             "mixture's K); 0: none"},
    OPT_END,
};

const EngineVT engine_lmh = {
    .name = "lmh",
    .summary = "Metropolis-Hastings within Gibbs with learned block proposals for the "
               "program's motifs (ppl learn-proposals), single-site moves elsewhere",
    .nstats = 1,
    .stat_names = {"accept_stat__"},
    .random_walk = false, /* its acceptance is per motif, in the notes */
    .weighted = false,
    .uses_warmup = true,
    .traits = ENGINE_DISCRETE | ENGINE_DYNAMIC | ENGINE_IMPROPER | ENGINE_INITS,
    .options = {lmh_options},
    .init = lmh_init,
    .step = lmh_step,
    .free = lmh_free,
    .chain_notes = lmh_notes,
};
