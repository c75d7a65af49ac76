/* pgibbs.c — particle Gibbs (Andrieu, Doucet & Holenstein 2010) as an MCMC
 * kernel over traces, for programs that mix static parameters with long
 * latent sequences.
 *
 * The state is one complete trace, the reference.  Its choices split into
 * static ones (addresses with no loop index and no repeat mark: declared
 * outside every loop) and the rest.  One iteration:
 *   1. every site of every static choice gets a single-site MH move of engine
 *      mh, the program re-run with all other choices kept (a Gibbs block for
 *      the statics given the latents);
 *   2. conditional SMC over the rest given the statics: N particles run the
 *      program event by event, reusing the static values and drawing the other
 *      choices from the prior; particle 0 replays the reference exactly and is
 *      never resampled away (its ancestor is itself), the others are
 *      resampled multinomially from all N when ESS / N < --ess-threshold;
 *   3. the new reference is drawn from the final particles by weight.
 * Both steps leave the posterior invariant, so the chain is a valid MCMC
 * sampler with one draw per iteration.  No ancestor resampling: with few
 * particles over very long sequences the early latents mix slowly.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "resample.h"
#include "trace.h"

#define PG_INIT_TRIES 100

typedef struct PgSeg {
  const struct PgSeg *parent;
  int n;
  const TraceChoice *c;
} PgSeg;

typedef struct PgParticle {
  InterpState *st;
  const PgSeg *seg;
  long nchoices;
  double loglik;
  bool done, is_ref;
} PgParticle;

typedef struct PgState {
  const Interp *in;
  const IrProgram *prog;
  int chain, N;
  Rng rng;
  EngineOpts o;
  uint64_t model_seed;
  bool has_gen;
  Trace *ref;
  InterpState *ref_st;
  Trace *statics; /* the reference's static choices */
  MhMover *mover;
  PgParticle *p, *q;
  double *lw, *w;
  int *anc;
  long iters, static_moves, static_accepts;
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
 * the others keep the statics and draw everything else. */
static bool pg_advance(PgState *s, PgParticle *p, double *inc, Diag *d) {
  TraceHandler th;
  trace_handler_init(&th, &s->rng, p->is_ref ? s->ref : s->statics, NULL, NULL, NULL);
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
  *inc = th.tr->loglik;
  if (rs == RUN_DONE) p->done = true;
  return true;
}

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

/* Conditional SMC given the statics; replaces the reference. */
static bool pg_csmc(PgState *s, Diag *d) {
  int N = s->N;
  s->statics = pg_statics(s->ref);
  for (int i = 0; i < N; i++) {
    memset(&s->p[i], 0, sizeof(PgParticle));
    s->p[i].st = interp_start(s->in, s->model_seed, (uint64_t)s->chain, false);
    s->p[i].is_ref = i == 0;
    s->lw[i] = 0;
  }
  for (;;) {
    int alive = 0;
    for (int i = 0; i < N; i++) {
      if (s->p[i].done) continue;
      double inc;
      if (!pg_advance(s, &s->p[i], &inc, d)) return false;
      s->lw[i] += inc;
      alive += !s->p[i].done;
    }
    resample_normalise(N, s->lw, s->w);
    if (alive == 0) break;
    if (resample_ess(N, s->w) < s->o.ess_threshold * N) {
      pg_ancestors(s);
      s->q[0] = s->p[0]; /* the reference keeps its own lineage */
      for (int k = 1; k < N; k++) {
        const PgParticle *a = &s->p[s->anc[k]];
        s->q[k] = *a;
        s->q[k].is_ref = false;
        if (!a->done) s->q[k].st = interp_fork(a->st, rng_u64(&s->rng), (uint64_t)k);
      }
      PgParticle *t = s->p;
      s->p = s->q;
      s->q = t;
      for (int k = 0; k < N; k++) s->lw[k] = 0;
    }
  }
  /* the new reference, by final weight */
  double u = rng_uniform(&s->rng), c = 0;
  int pick = N - 1;
  for (int i = 0; i < N; i++) {
    c += s->w[i];
    if (u < c) {
      pick = i;
      break;
    }
  }
  s->ref = pg_trace(&s->p[pick]);
  s->ref_st = s->p[pick].st;
  return true;
}

static void *pg_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  if (o->particles < 1 || !(o->ess_threshold >= 0 && o->ess_threshold <= 1)) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "pgibbs needs --particles >= 1 and --ess-threshold in [0, 1]");
    return NULL;
  }
  PgState *s = gc_alloc(sizeof(PgState));
  s->in = in;
  s->prog = interp_program(in);
  s->chain = chain;
  s->N = o->particles;
  s->o = *o;
  rng_seed(&s->rng, o->seed, (uint64_t)chain);
  s->model_seed = o->seed ^ 0x7067u;
  s->has_gen = s->prog->gen_b.n > 0;
  s->mover = mh_mover_new(in, s->model_seed, (uint64_t)chain, o->seed ^ 0x70676du, false);
  size_t N = (size_t)s->N;
  s->p = gc_alloc(sizeof(PgParticle) * N);
  s->q = gc_alloc(sizeof(PgParticle) * N);
  s->lw = gc_alloc_atomic(sizeof(double) * N);
  s->w = gc_alloc_atomic(sizeof(double) * N);
  s->anc = gc_alloc_atomic(sizeof(int) * N);
  char reason[sizeof d->msg] = "";
  for (int tries = 0; tries < PG_INIT_TRIES; tries++) {
    TraceHandler th;
    trace_handler_init(&th, &s->rng, NULL, NULL, NULL, NULL);
    Diag rd;
    diag_init(&rd);
    InterpState *st = NULL;
    Trace *t = trace_run(in, &th, s->model_seed, (uint64_t)chain, false, &st, &rd);
    if (!t) snprintf(reason, sizeof reason, "%s", rd.msg);
    else if (!(trace_logjoint(t) > -INFINITY))
      snprintf(reason, sizeof reason, "the log density is %g", trace_logjoint(t));
    else {
      s->ref = t;
      s->ref_st = st;
      return s;
    }
  }
  diag_error(d, DIAG_RUNTIME, (SrcPos){0},
             "could not find an initial point with finite log density after %d tries: %s",
             PG_INIT_TRIES, reason);
  return NULL;
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
  /* 2–3. conditional SMC over the rest */
  if (!pg_csmc(s, d)) return false;
  s->iters++;
  InterpState *st = s->ref_st;
  if (s->has_gen) {
    TraceHandler th;
    trace_handler_init(&th, &s->rng, s->ref, NULL, NULL, NULL);
    if (!trace_run(s->in, &th, rng_u64(&s->rng), (uint64_t)s->chain, true, &st, d)) return false;
  }
  out->outputs = interp_outputs(st);
  out->lp = trace_logjoint(s->ref);
  out->stats[0] = moves ? (double)acc / (double)moves : 1.0;
  return true;
}

static const char *pg_notes(void *state) {
  PgState *s = state;
  return gc_printf("pgibbs: %d particles per conditional SMC sweep, %ld static MH moves "
                   "(%.0f%% accepted)",
                   s->N, s->static_moves,
                   s->static_moves ? 100.0 * (double)s->static_accepts / (double)s->static_moves
                                   : 0.0);
}

static void pg_free(void *state) { (void)state; /* GC memory */ }

const EngineVT engine_pgibbs = {
    .name = "pgibbs",
    .summary = "particle Gibbs: conditional SMC over the latents, MH on the static parameters",
    .nstats = 1,
    .stat_names = {"accept_stat__"},
    .weighted = false,
    .uses_warmup = true,
    .init = pg_init,
    .step = pg_step,
    .free = pg_free,
    .chain_notes = pg_notes,
};
