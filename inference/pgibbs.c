/* pgibbs.c — particle Gibbs (Andrieu, Doucet & Holenstein 2010) as an MCMC
 * kernel over traces, for programs that mix static parameters with long
 * latent sequences, with optional ancestor sampling (PGAS: Lindsten, Jordan
 * & Schön 2014).
 *
 * The state is one complete trace, the reference.  Its choices split into
 * static ones (addresses with no loop index and no repeat mark: declared
 * outside every loop) and the rest.  One iteration:
 *   1. every site of every static choice gets a single-site MH move of engine
 *      mh, the program re-run with all other choices kept (a Gibbs block for
 *      the statics given the latents);
 *   2. conditional SMC over the rest given the statics: N particles run the
 *      program event by event, reusing the static values and drawing the other
 *      choices from the prior; particle 0 follows the reference and is never
 *      resampled away; the others are resampled multinomially from all N when
 *      ESS / N < --ess-threshold;
 *   3. the new reference is drawn from the final particles by weight.
 * Both steps leave the posterior invariant, so the chain is a valid MCMC
 * sampler with one draw per iteration.
 *
 * Ancestor sampling (--ancestor-sampling).  Without it particle 0 keeps the
 * reference's own history, and with few particles over long series the early
 * latents hardly move (every other lineage dies out).  With it, at every
 * resampling after event k particle 0 takes a new ancestor i with probability
 * proportional to
 *     w_i * p(x'_{k+1:T}, y_{k+1:T} | x^i_{1:k}),
 * the weight of candidate i times the density of the reference's remaining
 * path (its choices after event k, and every later event) continued from
 * candidate i's history — the exact non-Markovian form of the PGAS weights.
 * The interpreter computes it by forking candidate i's suspended execution and
 * running it to the end while replaying the reference's remaining choices.  The
 * joined path must be a path of the program: every choice the continuation
 * makes must be a remaining reference choice, made between the same two
 * events, all of them used, the same total number of events; otherwise the
 * candidate's weight is 0.  Exact for every program, at a cost of one run of
 * the rest of the program per particle and resampling: O(N T^2) per sweep
 * instead of O(N T) (the candidates run in parallel threads).  Where the
 * reference has already finished (dynamic structure), no ancestor is drawn.
 *
 * Most of those runs can stop early, exactly.  The reference's own
 * continuation is run first, keeping a snapshot of its execution after every
 * event; a candidate's run stops as soon as its execution equals the
 * reference's at the same event (interp_same_continuation), because from there
 * both would make the same choices with the same densities: its weight is what
 * it has accumulated plus the rest of the reference's.  "Equal" ignores the
 * main registers that no later density, address, branch or call can read
 * (pg_relevant: a flow-insensitive backward slice over the model block), such
 * as kalman.ppl's x_first.  For programs that carry their state in a few
 * variables (state-space models, HMMs) candidates merge after one event and a
 * sweep costs O(N T) again.  Programs whose model block calls _rng builtins
 * never merge (their streams differ between particles).
 *
 * Threads: particles advance, and candidates are scored, in the chain's share
 * of --threads (resample.h); each particle has its own Rng stream, and
 * everything order-dependent runs in the chain's thread, so the draws do not
 * depend on the number of threads.
 *
 * Compiled particles.  A program whose control flow is the same in every
 * particle (ir/particle.h: state-space models, HMMs) runs its conditional
 * SMC as columns: the reference and the statics are replayed through
 * pc_set_replay (particle 0 is the reference and stays at index 0 through
 * resampling), and the same calls on the chain's Rng are made in the same
 * order, so the chain is the interpreted one's bit for bit
 * (tests/inference/test_smc_compiled.c).  The chosen path is then replayed
 * once through the interpreter, which gives the new reference its trace
 * (what the MH moves on the statics work on) and its outputs.  Ancestor
 * sampling runs there too (pgc_ref_ancestor): the candidates' continuations
 * are a second compiled population replaying the reference's future from a
 * copy of every particle's registers, joined to the reference's where the
 * registers that matter are equal, summed in the interpreted order — the
 * same weights to the bit.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ir/particle.h"
#include "engine.h"
#include "resample.h"
#include "trace.h"

#define PG_INIT_TRIES 100
/* how far ahead (events) the reference's execution is kept for candidates to
   join it; state-space models join after one or two events */
#define PG_SNAPS 8
/* particles per worker below which a round stays in one thread */
#define PG_GRAIN 64

typedef struct PgSeg {
  const struct PgSeg *parent;
  int n;
  const TraceChoice *c;
} PgSeg;

typedef struct PgParticle {
  InterpState *st;
  const PgSeg *seg;
  long nchoices, events;
  double loglik, lp; /* lp: log density of its whole path so far */
  bool done, is_ref;
  Rng rng;
} PgParticle;

typedef struct PgWorker {
  int fatal_at; /* lowest particle whose advance failed fatally; -1 = none */
  Diag fatal;
} PgWorker;

typedef struct PgState {
  const Interp *in;
  const IrProgram *prog;
  int chain, N;
  double ess_threshold;   /* the options, read once */
  bool ancestor_sampling;
  Rng rng;
  EngineOpts o;
  uint64_t model_seed;
  bool has_gen;
  Trace *ref;
  InterpState *ref_st;
  bool *relevant; /* main registers a later density can depend on; NULL = no merging */
  long *ref_ev;   /* ancestor sampling: events passed before each choice of ref */
  double ref_total; /* log density of the reference path (its history may change) */
  long ref_events;/* events of the whole reference run */
  Trace *statics; /* the reference's static choices */
  MhMover *mover;
  PgParticle *p, *q;
  double *lw, *w, *inc, *cont, *contw;
  int *anc;
  int workers;
  Pool *pool;
  PgWorker *wk;
  uint64_t round_seed;
  /* the reference's remaining path at the current resampling */
  const Trace *suffix;
  const long *suffix_ev;
  long at_event;
  /* the reference's own continuation: its execution after j more events
     (j = 0..nsnap-1), the log density so far and the choices of segment j */
  InterpState **snap;
  double *snap_lp, snap_total;
  long *snap_cnt;
  int nsnap;
  long iters, static_moves, static_accepts, as_draws, as_moved;
  /* compiled particles (the header), or NULL and why not */
  PcRun *pcr;
  const char *pc_why;
  const char **perr;
  /* ancestor sampling on them: the candidates' continuations (pcc, N
     particles), the reference replayed alone (pc1), their scratch */
  PcRun *pcc, *pc1;
  double *cinc, inc1;
  const char **cperr, *perr1;
  uint8_t *open; /* a candidate whose continuation is not known yet */
  bool ref_known; /* ref_total and ref_events are the reference's (no static moved since) */
} PgState;

static bool is_static(const char *addr) { return !strchr(addr, '[') && !strchr(addr, '#'); }

static Trace *pg_statics(const Trace *t) {
  TraceChoice *c = gc_alloc(sizeof(TraceChoice) * (size_t)(t->n > 0 ? t->n : 1));
  int n = 0;
  for (int i = 0; i < t->n; i++)
    if (is_static(t->c[i].addr)) c[n++] = t->c[i];
  return trace_from_choices(n, c, 0);
}

static Trace *pg_trace(const PgParticle *p) {
  TraceChoice *c = gc_alloc(sizeof(TraceChoice) * (size_t)(p->nchoices > 0 ? p->nchoices : 1));
  long k = p->nchoices;
  for (const PgSeg *g = p->seg; g; g = g->parent) {
    k -= g->n;
    memcpy(c + k, g->c, sizeof(TraceChoice) * (size_t)g->n);
  }
  return trace_from_choices((int)p->nchoices, c, p->loglik);
}

/* Advance one particle to its next event: the reference replays its trace,
 * the others keep the statics and draw everything else from their own
 * stream.  Returns false (d filled) for internal errors and a failing
 * reference; a run the program rejects kills the particle. */
static bool pg_advance(PgParticle *p, const Trace *prev, double *inc, Diag *d) {
  TraceHandler th;
  trace_handler_init(&th, &p->rng, prev, NULL, NULL, NULL);
  th.stop_events = 1;
  Diag rd;
  diag_init(&rd);
  RunStatus rs = interp_run(p->st, &th.h, &rd);
  *inc = 0;
  if (rs == RUN_ERROR) {
    if (rd.code == DIAG_INTERNAL || p->is_ref) {
      *d = rd;
      if (p->is_ref && rd.code != DIAG_INTERNAL)
        diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "pgibbs: the reference run failed: %s", rd.msg);
      return false;
    }
    p->done = true;
    *inc = -INFINITY;
    return true;
  }
  if (th.tr->n > 0) {
    PgSeg *g = gc_alloc(sizeof(PgSeg));
    g->parent = p->seg;
    g->n = th.tr->n;
    g->c = th.tr->c;
    p->seg = g;
    p->nchoices += g->n;
  }
  p->loglik += th.tr->loglik;
  p->lp += th.tr->logprior + th.tr->loglik;
  *inc = th.tr->loglik;
  if (rs == RUN_DONE) p->done = true;
  else p->events++;
  return true;
}

static void pg_advance_fn(void *ctx, int worker, int lo, int hi) {
  PgState *s = ctx;
  PgWorker *w = &s->wk[worker];
  for (int i = lo; i < hi; i++) {
    PgParticle *p = &s->p[i];
    s->inc[i] = 0;
    if (p->done) continue;
    Diag d;
    diag_init(&d);
    if (!pg_advance(p, p->is_ref ? s->ref : s->statics, &s->inc[i], &d) &&
        (w->fatal_at < 0 || i < w->fatal_at)) {
      w->fatal_at = i;
      w->fatal = d;
    }
  }
}

/* Runs fn over the particles in the pool; the lowest-numbered fatal error. */
static bool pg_round(PgState *s, PoolFn fn, int grain, Diag *d) {
  for (int k = 0; k < s->workers; k++) s->wk[k].fatal_at = -1;
  pool_run(s->pool, s->N, grain, fn, s);
  int bad = -1;
  for (int k = 0; k < s->workers; k++)
    if (s->wk[k].fatal_at >= 0 && (bad < 0 || s->wk[k].fatal_at < s->wk[bad].fatal_at)) bad = k;
  if (bad >= 0) *d = s->wk[bad].fatal;
  return bad < 0;
}

/* ---- ancestor sampling ---- */

/* The reference replayed event by event: its choices in execution order with
 * the number of events passed before each (s->ref_ev), and its event count. */
static bool pg_index_ref(PgState *s, Diag *d) {
  PgParticle r;
  memset(&r, 0, sizeof r);
  r.st = interp_start(s->in, s->model_seed, (uint64_t)s->chain, false);
  r.is_ref = true;
  long *ev = gc_alloc_atomic(sizeof(long) * (size_t)(s->ref->n + 1));
  while (!r.done) {
    long before = r.nchoices, at = r.events;
    double inc;
    if (!pg_advance(&r, s->ref, &inc, d)) return false;
    if (r.nchoices > s->ref->n) break;
    for (long j = before; j < r.nchoices; j++) ev[j] = at;
  }
  Trace *t = pg_trace(&r);
  if (t->n != s->ref->n) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0},
               "pgibbs: replaying the reference made %d choices instead of %d", t->n, s->ref->n);
    return false;
  }
  s->ref = t;
  s->ref_ev = ev;
  s->ref_events = r.events;
  s->ref_total = r.lp;
  return true;
}

/* ---- which main registers matter for the rest of a run ---- */

typedef struct Slice {
  bool *rel;
  bool changed, rng;
} Slice;

static void slice_mark(Slice *sl, int r) {
  if (r >= 0 && !sl->rel[r]) {
    sl->rel[r] = true;
    sl->changed = true;
  }
}

static void slice_index(Slice *sl, const IrInstr *ins) {
  for (int k = 0; k < ins->nidx; k++) {
    slice_mark(sl, ins->idx[k].lo);
    if (ins->idx[k].kind == IX_RANGE) slice_mark(sl, ins->idx[k].hi);
  }
}

static void slice_block(Slice *sl, const IrBlock *b) {
  for (int j = 0; j < b->n; j++) {
    const IrInstr *ins = &b->ins[j];
    bool all = false; /* every operand matters */
    switch (ins->op) {
    case IR_SAMPLE:
      for (int k = 0; k < ins->dist.nparams; k++) slice_mark(sl, ins->dist.params[k]);
      slice_mark(sl, ins->con.lower);
      slice_mark(sl, ins->con.upper);
      for (int k = 0; k < ins->nsizes; k++) slice_mark(sl, ins->sizes[k]);
      break;
    case IR_OBSERVE:
      for (int k = 0; k < ins->dist.nparams; k++) slice_mark(sl, ins->dist.params[k]);
      all = true;
      break;
    case IR_FACTOR: case IR_CONDITION: case IR_IF: case IR_FOR: case IR_CALL:
      all = true;
      break;
    case IR_WHILE:
      slice_mark(sl, ins->cond);
      break;
    case IR_STORE: case IR_INDEX:
      if (ins->dst >= 0 && sl->rel[ins->dst]) {
        all = true;
        slice_index(sl, ins);
      }
      break;
    case IR_PRINT: case IR_REJECT: case IR_BREAK: case IR_CONTINUE: case IR_RETURN:
      break;
    default: /* computes dst from its operands (and sizes) */
      if (ins->op == IR_BUILTIN && ins->builtin && ins->builtin->uses_rng) sl->rng = true;
      if (ins->dst >= 0 && sl->rel[ins->dst]) {
        all = true;
        for (int k = 0; k < ins->nsizes; k++) slice_mark(sl, ins->sizes[k]);
      }
      break;
    }
    if (all)
      for (int k = 0; k < ins->nargs; k++) slice_mark(sl, ins->args[k]);
    slice_block(sl, &ins->then_b);
    slice_block(sl, &ins->else_b);
    slice_block(sl, &ins->cond_b);
    slice_block(sl, &ins->body);
  }
}

static void slice_rng(Slice *sl, const IrBlock *b) {
  for (int j = 0; j < b->n; j++) {
    const IrInstr *ins = &b->ins[j];
    if (ins->op == IR_BUILTIN && ins->builtin && ins->builtin->uses_rng) sl->rng = true;
    slice_rng(sl, &ins->then_b);
    slice_rng(sl, &ins->else_b);
    slice_rng(sl, &ins->cond_b);
    slice_rng(sl, &ins->body);
  }
}

/* The main registers that a later density, address, branch, loop bound or
 * call of the model block can read (to a fixpoint); NULL when executions
 * must never be merged (the model draws from _rng builtins). */
static bool *pg_relevant(const IrProgram *p) {
  Slice sl = {gc_alloc_atomic((size_t)(p->main.nregs > 0 ? p->main.nregs : 1)), true, false};
  while (sl.changed) {
    sl.changed = false;
    slice_block(&sl, &p->model_b);
  }
  for (int f = 0; f < p->nfuncs; f++) slice_rng(&sl, &p->funcs[f].body);
  return sl.rng ? NULL : sl.rel;
}

/* ---- continuations ---- */

/* Runs st on with the reference's remaining choices, one event at a time,
 * checking that the joined path is a path of the program.  Before the run
 * (j = 0) and after each event j, stop(s, j, st, cnt, lp, &out) sees the
 * execution, the number of choices of the segment just run and the log
 * density so far; returning true ends the run with *out as the result.
 * Returns the log density of the whole continuation, or -inf. */
typedef bool (*PgStopFn)(PgState *s, int j, InterpState *st, long cnt, double lp, double *out);

static double pg_continue(PgState *s, InterpState *st, uint64_t stream, PgStopFn stop) {
  Rng rng; /* a fresh draw rejects the candidate whatever its value */
  rng_seed(&rng, s->round_seed, stream);
  long ev = s->at_event, used = 0;
  double lp = 0, out;
  if (stop && stop(s, 0, st, -1, 0, &out)) return out;
  for (int j = 0;; j++) {
    TraceHandler th;
    trace_handler_init(&th, &rng, s->suffix, NULL, NULL, NULL);
    th.stop_events = 1;
    Diag rd;
    diag_init(&rd);
    RunStatus rs = interp_run(st, &th.h, &rd);
    if (rs == RUN_ERROR) return -INFINITY;
    for (int k = 0; k < th.tr->n; k++) {
      const TraceChoice *c = &th.tr->c[k];
      const TraceChoice *f = c->fresh ? NULL : trace_find(s->suffix, c->addr);
      if (!f || s->suffix_ev[f - s->suffix->c] != ev) return -INFINITY;
    }
    used += th.tr->n;
    lp += th.tr->logprior + th.tr->loglik;
    if (!(lp > -INFINITY)) return -INFINITY;
    if (rs == RUN_DONE) break;
    if (++ev > s->ref_events) return -INFINITY;
    if (stop && stop(s, j + 1, st, th.tr->n, lp, &out)) return out;
  }
  return used == s->suffix->n && ev == s->ref_events ? lp : -INFINITY;
}

/* The reference's continuation: a snapshot of its execution after each event. */
static bool pg_snap(PgState *s, int j, InterpState *st, long cnt, double lp, double *out) {
  (void)out;
  if (j >= s->nsnap) {
    int cap = 2 * s->nsnap + 16;
    InterpState **a = gc_alloc(sizeof(InterpState *) * (size_t)cap);
    double *b = gc_alloc_atomic(sizeof(double) * (size_t)cap);
    long *c = gc_alloc_atomic(sizeof(long) * (size_t)cap);
    if (s->nsnap > 0) { /* the first time there is nothing to copy (and no arrays) */
      memcpy(a, s->snap, sizeof(InterpState *) * (size_t)s->nsnap);
      memcpy(b, s->snap_lp, sizeof(double) * (size_t)s->nsnap);
      memcpy(c, s->snap_cnt, sizeof(long) * (size_t)s->nsnap);
    }
    s->snap = a, s->snap_lp = b, s->snap_cnt = c;
  }
  s->snap[j] = interp_fork(st, s->round_seed, 0);
  s->snap_lp[j] = lp;
  s->snap_cnt[j] = cnt;
  s->nsnap = j + 1;
  return s->nsnap >= PG_SNAPS;
}

/* A candidate stops where its execution joins the reference's. */
static bool pg_join(PgState *s, int j, InterpState *st, long cnt, double lp, double *out) {
  if (j >= s->nsnap || (j > 0 && cnt != s->snap_cnt[j]) ||
      !interp_same_continuation(st, s->snap[j], s->relevant))
    return false;
  *out = lp + (s->snap_total - s->snap_lp[j]);
  return true;
}

/* log p(remaining reference path | candidate i's history), or -inf unless the
 * joined path is a path of the program (see the header comment). */
static double pg_continuation(PgState *s, int i) {
  const PgParticle *p = &s->p[i];
  /* a candidate without weight cannot be drawn: its continuation is not run */
  if (p->done || p->events != s->at_event || !(s->w[i] > 0)) return -INFINITY;
  if (i == 0) return s->snap_total;
  InterpState *st = interp_fork(p->st, s->round_seed, (uint64_t)i);
  return pg_continue(s, st, (uint64_t)i, s->relevant && s->nsnap > 0 ? pg_join : NULL);
}

static void pg_continuation_fn(void *ctx, int worker, int lo, int hi) {
  PgState *s = ctx;
  (void)worker;
  for (int i = lo; i < hi; i++) s->cont[i] = pg_continuation(s, i);
}

/* The reference's new ancestor, drawn with probability proportional to
 * w_i exp(cont_i) (s->cont: the candidates' continuations); both kinds of
 * particles draw it here, with the same call on the chain's Rng. */
static int pg_draw_ancestor(PgState *s) {
  int N = s->N, a0 = 0;
  double mx = -INFINITY;
  for (int i = 0; i < N; i++) {
    s->contw[i] = s->w[i] > 0 ? log(s->w[i]) + s->cont[i] : -INFINITY;
    if (s->contw[i] > mx) mx = s->contw[i];
  }
  if (!(mx > -INFINITY)) return 0; /* cannot happen: the reference continues itself */
  double tot = 0;
  for (int i = 0; i < N; i++) tot += s->contw[i] = exp(s->contw[i] - mx);
  double u = rng_uniform(&s->rng) * tot, c = 0;
  for (int i = 0; i < N; i++) {
    if (!(s->contw[i] > 0)) continue;
    a0 = i; /* u rounded up to tot takes the last candidate with weight */
    c += s->contw[i];
    if (u < c) break;
  }
  s->as_draws++;
  s->as_moved += a0 != 0;
  return a0;
}

/* The reference's new ancestor at a resampling after event k (or 0 = its
 * own history when the reference has finished). */
static bool pg_ref_ancestor(PgState *s, int *a0, Diag *d) {
  *a0 = 0;
  const PgParticle *ref = &s->p[0];
  if (ref->done) return true;
  long k = ref->events, pos = 0;
  while (pos < s->ref->n && s->ref_ev[pos] < k) pos++;
  s->suffix = trace_from_choices((int)(s->ref->n - pos), s->ref->c + pos, 0);
  s->suffix_ev = s->ref_ev + pos;
  s->at_event = k;
  s->round_seed = rng_u64(&s->rng);
  /* The rest of the reference's own path is known (s->ref_total); its
     execution is run only PG_SNAPS events ahead, for the others to join. */
  s->snap_total = s->ref_total - ref->lp;
  s->nsnap = 0;
  if (s->relevant) pg_continue(s, interp_fork(ref->st, s->round_seed, 0), 0, pg_snap);
  /* a candidate that must run to the end is worth a thread on its own */
  if (!pg_round(s, pg_continuation_fn, s->relevant ? PG_GRAIN : 1, d)) return false;
  *a0 = pg_draw_ancestor(s);
  s->ref_total = s->p[*a0].lp + s->cont[*a0];
  return true;
}

/* ---- conditional SMC ---- */

/* Ancestors of particles 1..N-1: independent draws from the weights of all
 * N (binary search on the cumulative weights). */
static void pg_ancestors(PgState *s) {
  int N = s->N;
  double *cum = gc_alloc_atomic(sizeof(double) * (size_t)N);
  double c = 0;
  for (int i = 0; i < N; i++) cum[i] = c += s->w[i];
  for (int k = 1; k < N; k++) {
    double u = rng_uniform(&s->rng) * c;
    int lo = 0, hi = N - 1;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (cum[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    s->anc[k] = lo;
  }
}

static bool pg_resample(PgState *s, Diag *d) {
  int N = s->N, a0 = 0;
  if (s->ancestor_sampling && !pg_ref_ancestor(s, &a0, d)) return false;
  pg_ancestors(s);
  uint64_t seed = rng_u64(&s->rng);
  s->q[0] = s->p[a0];
  s->q[0].is_ref = true;
  if (a0 != 0) s->q[0].st = interp_fork(s->p[a0].st, seed, 0);
  rng_seed(&s->q[0].rng, seed ^ 0x9E3779B97F4A7C15ull, 0);
  for (int k = 1; k < N; k++) {
    const PgParticle *a = &s->p[s->anc[k]];
    s->q[k] = *a;
    s->q[k].is_ref = false;
    if (!a->done) s->q[k].st = interp_fork(a->st, seed, (uint64_t)k);
    rng_seed(&s->q[k].rng, seed ^ 0x9E3779B97F4A7C15ull, (uint64_t)k);
  }
  PgParticle *t = s->p;
  s->p = s->q;
  s->q = t;
  for (int k = 0; k < N; k++) s->lw[k] = 0;
  return true;
}

/* The new reference: a final particle drawn by weight. */
static int pg_pick(PgState *s) {
  double u = rng_uniform(&s->rng), c = 0;
  for (int i = 0; i < s->N; i++) {
    c += s->w[i];
    if (u < c) return i;
  }
  return s->N - 1;
}

/* Conditional SMC given the statics; replaces the reference. */
static bool pg_csmc(PgState *s, Diag *d) {
  int N = s->N;
  if (s->ancestor_sampling && !pg_index_ref(s, d)) return false;
  s->statics = pg_statics(s->ref);
  uint64_t seed = rng_u64(&s->rng);
  for (int i = 0; i < N; i++) {
    memset(&s->p[i], 0, sizeof(PgParticle));
    s->p[i].st = interp_start(s->in, s->model_seed, (uint64_t)s->chain, false);
    s->p[i].is_ref = i == 0;
    rng_seed(&s->p[i].rng, seed, (uint64_t)i);
    s->lw[i] = 0;
  }
  for (;;) {
    if (!pg_round(s, pg_advance_fn, PG_GRAIN, d)) return false;
    int alive = 0;
    for (int i = 0; i < N; i++) {
      s->lw[i] += s->inc[i];
      alive += !s->p[i].done;
    }
    resample_normalise(N, s->lw, s->w);
    if (alive == 0) break;
    if (resample_ess(N, s->w) < s->ess_threshold * N && !pg_resample(s, d)) return false;
  }
  int pick = pg_pick(s); /* the new reference, by final weight */
  s->ref = pg_trace(&s->p[pick]);
  s->ref_st = s->p[pick].st;
  return true;
}

/* ---- conditional SMC on compiled particles ---- */

/* The reference's value at addr for particle 0; a static's for every one. */
static bool pgc_find(void *ctx, const char *addr, Value *x, bool *all) {
  const PgState *s = ctx;
  const TraceChoice *c = trace_find(s->ref, addr);
  if (!c) return false;
  *x = c->val;
  *all = is_static(addr);
  return true;
}

static void pgc_exec_fn(void *ctx, int worker, int lo, int hi) {
  PgState *s = ctx;
  pc_exec(s->pcr, worker, lo, hi, s->inc, s->perr);
}

/* The final particle pick's path, replayed once through the interpreter:
 * the new reference's trace and execution.  Every particle makes the
 * reference's choices (the structure is fixed), so its trace is the
 * template for the path's values. */
static bool pgc_take(PgState *s, int pick, Diag *d) {
  int n;
  InterpLatent *lat = pc_latents(s->pcr, pick, &n);
  TraceChoice *c = gc_alloc(sizeof(TraceChoice) * (size_t)(s->ref->n > 0 ? s->ref->n : 1));
  memcpy(c, s->ref->c, sizeof(TraceChoice) * (size_t)s->ref->n);
  for (int k = 0; k < n; k++) {
    const TraceChoice *t = trace_find(s->ref, lat[k].addr);
    if (!t) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0},
                 "pgibbs: a compiled particle's latent %s is not in the reference", lat[k].addr);
      return false;
    }
    c[t - s->ref->c].val = lat[k].v;
  }
  Trace *path = trace_from_choices(s->ref->n, c, 0);
  Rng none; /* every value is replayed: nothing is drawn */
  rng_seed(&none, 0, 0);
  TraceHandler th;
  trace_handler_init(&th, &none, path, NULL, NULL, NULL);
  InterpState *st = NULL;
  Trace *t = trace_run(s->in, &th, s->model_seed, (uint64_t)s->chain, false, &st, d);
  if (!t) return false;
  s->ref = t;
  s->ref_st = st;
  return true;
}

/* ---- ancestor sampling on compiled particles ---- */

/* Every particle replays the reference's value at addr. */
static bool pgc_find_all(void *ctx, const char *addr, Value *x, bool *all) {
  const PgState *s = ctx;
  const TraceChoice *c = trace_find(s->ref, addr);
  if (!c) return false;
  *x = c->val;
  *all = true;
  return true;
}

/* pg_index_ref's figures from one compiled particle replaying the
 * reference: its events and its log density summed segment by segment, the
 * interpreted replay's bits. */
static bool pgc_index_ref(PgState *s, Diag *d) {
  PcRun *r = s->pc1;
  pc_set_replay(r, pgc_find_all, s);
  pc_run_start(r, 0);
  long events = 0;
  for (;;) {
    int more = pc_record(r, d);
    if (more < 0) return false;
    s->perr1 = NULL;
    pc_exec(r, 0, 0, 1, &s->inc1, &s->perr1);
    if (pc_dead(r, 0)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "pgibbs: the reference run failed: %s",
                 s->perr1 ? s->perr1 : "killed");
      return false;
    }
    if (!more) break;
    events++;
  }
  s->ref_events = events;
  s->ref_total = pc_lpath(r, 0);
  return true;
}

static void pgc_cont_fn(void *ctx, int worker, int lo, int hi) {
  PgState *s = ctx;
  pc_exec(s->pcc, worker, lo, hi, s->cinc, s->cperr);
}

/* pg_ref_ancestor on compiled particles, after event k.  The candidates'
 * continuations run together as one population (pc_run_continue: every
 * particle replays the reference's remaining choices), event by event; the
 * reference's own is particle 0 of it.  As in the interpreted form, a
 * candidate is done when its state equals the reference's after the same
 * number of events j < PG_SNAPS (pc_same_state over pg_relevant's
 * registers): its continuation is what it has accumulated plus the rest of
 * the reference's; the others run to the end, and a failed or impossible
 * continuation is -inf.  The same values in the same order of additions, so
 * the same weights, bit for bit, and the same calls on the chain's Rng. */
static bool pgc_ref_ancestor(PgState *s, int *a0, Diag *d) {
  int N = s->N, open = 0;
  PcRun *r = s->pcr, *c = s->pcc;
  s->round_seed = rng_u64(&s->rng); /* the interpreted continuations' stream: the same calls */
  s->snap_total = s->ref_total - pc_lpath(r, 0);
  pc_run_continue(c, r);
  for (int i = 0; i < N; i++) {
    s->open[i] = 0;
    s->cperr[i] = NULL;
    if (i == 0) s->cont[i] = s->snap_total;
    else if (pc_dead(r, i) || !(s->w[i] > 0)) s->cont[i] = -INFINITY;
    else if (s->relevant && pc_same_state(r, i, 0, s->relevant))
      s->cont[i] = 0 + (s->snap_total - 0.0); /* pg_join at j = 0 */
    else {
      s->open[i] = 1;
      open++;
      continue;
    }
    if (i > 0) pc_drop(c, i);
  }
  for (int j = 0; open > 0; j++) {
    int more = pc_record(c, d);
    if (more < 0) return false;
    pool_run(s->pool, N, PG_GRAIN, pgc_cont_fn, s);
    for (int i = 1; i < N; i++) {
      if (!s->open[i]) continue;
      double lp = pc_lpath(c, i);
      if (pc_dead(c, i) || !(lp > -INFINITY) || !more) {
        /* the whole continuation; its path is the program's (fixed structure) */
        s->cont[i] = pc_dead(c, i) || !(lp > -INFINITY) ? -INFINITY : lp;
        s->open[i] = 0;
        open--;
        pc_drop(c, i);
      }
    }
    if (!more) break;
    if (j + 1 >= PG_SNAPS || pc_dead(c, 0)) continue; /* the reference's snapshots end */
    double snap_lp = pc_lpath(c, 0);
    for (int i = 1; i < N; i++)
      if (s->open[i] && s->relevant && pc_same_state(c, i, 0, s->relevant)) {
        s->cont[i] = pc_lpath(c, i) + (s->snap_total - snap_lp); /* pg_join */
        s->open[i] = 0;
        open--;
        pc_drop(c, i);
      }
  }
  *a0 = pg_draw_ancestor(s);
  s->ref_total = pc_lpath(r, *a0) + s->cont[*a0];
  return true;
}

/* pg_csmc on compiled particles: the same rounds, weights, ancestors, seeds
 * and pick, so the same bits. */
static bool pgc_csmc(PgState *s, Diag *d) {
  int N = s->N;
  /* The reference is the last sweep's pick unless a static has moved: then
     its total is that particle's pc_lpath, the same additions as a replay. */
  if (s->ancestor_sampling && !s->ref_known && !pgc_index_ref(s, d)) return false;
  long events = 0;
  uint64_t seed = rng_u64(&s->rng);
  pc_set_replay(s->pcr, pgc_find, s);
  pc_run_start(s->pcr, seed);
  for (int i = 0; i < N; i++) s->lw[i] = 0;
  for (;;) {
    int more = pc_record(s->pcr, d);
    if (more < 0) return false;
    events += more;
    long kills = pc_kills(s->pcr);
    pool_run(s->pool, N, PG_GRAIN, pgc_exec_fn, s);
    if (pc_dead(s->pcr, 0)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "pgibbs: the reference run failed: %s",
                 s->perr[0] ? s->perr[0] : "killed");
      return false;
    }
    if (pc_kills(s->pcr) != kills)
      for (int i = 0; i < N; i++) s->perr[i] = NULL;
    int alive = more ? pc_nalive(s->pcr) : 0;
    for (int i = 0; i < N; i++) s->lw[i] += s->inc[i];
    resample_normalise(N, s->lw, s->w);
    if (alive == 0) break;
    if (resample_ess(N, s->w) < s->ess_threshold * N) {
      int a0 = 0;
      if (s->ancestor_sampling && !pgc_ref_ancestor(s, &a0, d)) return false;
      pg_ancestors(s);
      s->anc[0] = a0;
      pc_resample(s->pcr, s->anc, rng_u64(&s->rng));
      for (int k = 0; k < N; k++) s->lw[k] = 0;
    }
  }
  int pick = pg_pick(s);
  s->ref_total = pc_lpath(s->pcr, pick);
  s->ref_events = events;
  s->ref_known = true;
  return pgc_take(s, pick, d);
}

/* The particles of the conditional SMC when --particles is 0 (its default),
 * from the size of the reference run: L choices that are not static (what
 * the conditional SMC draws) and T events.  With L = 0 the sweep draws
 * nothing (every latent is a static one, moved by the MH block), so one
 * particle, the reference, is exact and free.  Otherwise N = L, as the
 * theory asks (without ancestor sampling the conditional SMC keeps the
 * early latents of a sequence of L moving only when N grows linearly with
 * L: Andrieu, Doucet & Holenstein 2010; Lindsten, Douc & Moulines 2015),
 * but at most PG_AUTO_BUDGET / T, since a sweep costs N T particle
 * advances (1 to 4 microseconds each, resampling included) and a default
 * run of 4 x 2000 sweeps should take seconds to a minute, not the hour the
 * old default of 1000 particles took on 100 observations; and never fewer
 * than PG_AUTO_MIN.  Less than 4000 / T fails where it matters: on an AR(1)
 * state-space model of T = 100, 10 particles gave R-hat 2.4 and sigma 0.28
 * against NUTS's 0.43, 40 particles the right posterior.  With ancestor
 * sampling a few particles mix well whatever L (Lindsten, Jordan & Schön 2014): at most PG_AUTO_AS. */
#define PG_AUTO_MIN 10
#define PG_AUTO_MAX 1000
#define PG_AUTO_BUDGET 4000
#define PG_AUTO_AS 20

static int pg_auto_particles(long nonstatic, long events, bool ancestor_sampling) {
  if (nonstatic == 0) return 1;
  long n = nonstatic;
  if (events > 0 && n > PG_AUTO_BUDGET / events) n = PG_AUTO_BUDGET / events;
  if (ancestor_sampling && n > PG_AUTO_AS) n = PG_AUTO_AS;
  return (int)(n < PG_AUTO_MIN ? PG_AUTO_MIN : n > PG_AUTO_MAX ? PG_AUTO_MAX : n);
}

static void *pg_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  /* the options were validated against the tables when they were set */
  PgState *s = gc_alloc(sizeof(PgState));
  s->in = in;
  s->prog = interp_program(in);
  s->chain = chain;
  s->ess_threshold = engine_opt_real(o, "ess-threshold");
  s->ancestor_sampling = engine_opt_bool(o, "ancestor-sampling");
  s->o = *o;
  rng_seed(&s->rng, o->seed, (uint64_t)chain);
  s->model_seed = o->seed ^ 0x7067u;
  s->has_gen = s->prog->gen_b.n > 0;
  s->mover = mh_mover_new(in, s->model_seed, (uint64_t)chain, o->seed ^ 0x70676du, false);
  char reason[sizeof d->msg] = "";
  for (int tries = 0; tries < PG_INIT_TRIES && !s->ref; tries++) {
    TraceHandler th;
    trace_handler_init(&th, &s->rng, NULL, NULL, NULL, NULL);
    Diag rd;
    diag_init(&rd);
    InterpState *st = NULL;
    Trace *t = trace_run(in, &th, s->model_seed, (uint64_t)chain, false, &st, &rd);
    if (!t) snprintf(reason, sizeof reason, "%s", rd.msg);
    else if (!(trace_logjoint(t) > -INFINITY))
      snprintf(reason, sizeof reason, "the log density is %g", trace_logjoint(t));
    else s->ref = t, s->ref_st = st;
  }
  if (!s->ref) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0},
               "could not find an initial point with finite log density after %d tries: %s",
               PG_INIT_TRIES, reason);
    return NULL;
  }
  s->N = (int)engine_opt_int(o, "particles");
  if (s->N == 0) {
    long nonstatic = 0;
    for (int i = 0; i < s->ref->n; i++) nonstatic += !is_static(s->ref->c[i].addr);
    s->N = pg_auto_particles(nonstatic, interp_events(s->ref_st), s->ancestor_sampling);
  }
  size_t N = (size_t)s->N;
  s->p = gc_alloc(sizeof(PgParticle) * N);
  s->q = gc_alloc(sizeof(PgParticle) * N);
  s->lw = gc_alloc_atomic(sizeof(double) * N);
  s->w = gc_alloc_atomic(sizeof(double) * N);
  s->inc = gc_alloc_atomic(sizeof(double) * N);
  s->cont = gc_alloc_atomic(sizeof(double) * N);
  s->contw = gc_alloc_atomic(sizeof(double) * N);
  s->anc = gc_alloc_atomic(sizeof(int) * N);
  s->workers = pool_particle_workers(o);
  if (s->workers > s->N) s->workers = s->N;
  s->wk = gc_alloc(sizeof(PgWorker) * (size_t)s->workers);
  if (s->ancestor_sampling) s->relevant = pg_relevant(s->prog);
  if (o->no_jit)
    s->pc_why = "--no-jit";
  else {
    const PcProg *pc = pc_compile(in, &s->pc_why);
    if (pc) {
      s->pcr = pc_run_new(pc, s->N, s->workers);
      s->perr = gc_alloc(sizeof(char *) * N);
      if (s->ancestor_sampling) {
        s->pcc = pc_run_new(pc, s->N, s->workers);
        pc_set_replay(s->pcc, pgc_find_all, s);
        s->pc1 = pc_run_new(pc, 1, 1);
        s->cinc = gc_alloc_atomic(sizeof(double) * N);
        s->cperr = gc_alloc(sizeof(char *) * N);
        s->open = gc_alloc_atomic(N);
      }
    }
  }
  return s;
}

static bool pg_step(void *state, bool warmup, Draw *out, Diag *d) {
  PgState *s = state;
  long moves = 0, acc = 0;
  /* 1. MH on the static choices, each of their sites once */
  for (int i = 0; i < s->ref->n; i++) {
    const TraceChoice *c = &s->ref->c[i];
    if (!is_static(c->addr)) continue;
    const char *addr = c->addr;
    int ns = c->nsites;
    for (int k = 0; k < ns; k++) {
      bool a;
      if (!mh_mover_move_at(s->mover, addr, warmup, &s->ref, &s->ref_st, &a, d)) return false;
      moves++;
      acc += a;
    }
  }
  s->static_moves += moves;
  s->static_accepts += acc;
  if (acc) s->ref_known = false;
  /* 2–3. conditional SMC over the rest; the worker threads live for one sweep
     (the driver may never call free) */
  s->pool = pool_new(s->workers);
  bool ok = s->pcr ? pgc_csmc(s, d) : pg_csmc(s, d);
  pool_free(s->pool);
  s->pool = NULL;
  if (!ok) return false;
  s->iters++;
  InterpState *st = s->ref_st;
  if (s->has_gen) {
    TraceHandler th;
    trace_handler_init(&th, &s->rng, s->ref, NULL, NULL, NULL);
    if (!trace_run(s->in, &th, rng_u64(&s->rng), (uint64_t)s->chain, true, &st, d)) return false;
  }
  engine_draw_outputs(out, st);
  out->lp = trace_logjoint(s->ref);
  out->stats[0] = moves ? (double)acc / (double)moves : 1.0;
  return true;
}

static const char *pg_notes(void *state) {
  PgState *s = state;
  const char *as = s->ancestor_sampling
                       ? gc_printf("; ancestor sampling: %ld draws, %.0f%% moved the reference",
                                   s->as_draws,
                                   s->as_draws ? 100.0 * (double)s->as_moved / (double)s->as_draws
                                               : 0.0)
                       : "";
  return gc_printf("pgibbs: %d particle%s per conditional SMC sweep, %ld static MH moves "
                   "(%.0f%% accepted)%s",
                   s->N, s->N == 1 ? "" : "s", s->static_moves,
                   s->static_moves ? 100.0 * (double)s->static_accepts / (double)s->static_moves
                                   : 0.0,
                   as);
}

static void pg_free(void *state) { (void)state; /* GC memory */ }

/* How the conditional SMC runs, for the summary's backend line. */
static const char *pg_backend(void *state) {
  PgState *s = state;
  if (s->pcr)
    return gc_printf("pgibbs: compiled particle steps (%d registers per particle in columns)",
                     pc_ncolumns(pc_run_prog(s->pcr)));
  return gc_printf("pgibbs: interpreted (%s)", s->pc_why ? s->pc_why : "not compiled");
}

static const OptSpec pg_options[] = {
    {.name = "ancestor-sampling", .type = OPT_BOOL, .def = "false",
     .help = "resample the reference trajectory's ancestor at each step (PGAS)"},
    OPT_END,
};

const EngineVT engine_pgibbs = {
    .name = "pgibbs",
    .summary = "particle Gibbs: conditional SMC over the latents, MH on the static parameters",
    .nstats = 1,
    .stat_names = {"accept_stat__"},
    .weighted = false,
    .uses_warmup = true,
    .traits = ENGINE_DISCRETE | ENGINE_DYNAMIC,
    .options = {particle_options, pg_options},
    .init = pg_init,
    .step = pg_step,
    .free = pg_free,
    .chain_notes = pg_notes,
    .backend = pg_backend,
};
