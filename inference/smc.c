/* smc.c — sequential Monte Carlo over executions of the program (a particle
 * filter for every program, in the style of Birch and WebPPL's SMC).
 *
 * A particle is a suspended execution (InterpState) plus the choices it made.
 * All particles advance from one observe/factor event to the next; weights take
 * the log density of the event; when ESS / N drops below the threshold the
 * population is resampled.  Resampling forks executions copy-on-write
 * (interp_fork) and shares traces: a particle's choices are a chain of
 * immutable segments (the choices between two events) linked to its ancestor's
 * chain, so offspring share their whole history and only the newest segment is
 * theirs.  A particle whose program has finished (fewer events: dynamic
 * structure) keeps its weight while the others go on, so the k-th target is
 * "the run up to its k-th event, or all of it if it has fewer".
 *
 * Resample-move: with --rejuvenate K each particle gets K single-site MH moves
 * of engine mh after each resampling, re-running its trace up to its current
 * event count (the interpreter is deterministic given the trace).
 *
 * Draws and evidence.  One SMC run with N = --particles particles gives N
 * weighted draws; the driver asks each chain for --draws draws, so a chain runs
 * ceil(draws / N) independent SMC runs and hands out their particles in a
 * random order (a prefix of a run is then an unbiased subset).  Draw log
 * weights are log Z_run + log(N W_i): the weighted posterior over all runs of
 * a chain, and exp(log_weight) averages to Z.  The chain's log evidence is the
 * log of the mean of its runs' Z (each the product of mean incremental
 * weights, unbiased); the driver combines chains.  A within-run relative
 * variance of Z comes from the genealogy (Lee & Whiteley 2018): with
 * normalised final weights W_j, Eve indices E_j (the initial particle each
 * descends from) and m = 1 + number of resamplings,
 *     V = 1 - (N / (N - 1))^m (1 - sum_i (sum_{j: E_j = i} W_j)^2),
 * exact in expectation for multinomial resampling, conservative for the
 * lower-variance schemes; it is reported in the chain notes.
 *
 * The model block's _rng calls: particles start with one seed per chain as in
 * engine mh; forks after resampling get their own streams.  The generated block
 * is run once per emitted draw by replaying the particle's trace.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "resample.h"
#include "trace.h"

/* Choices made between two events of one lineage; shared by descendants. */
typedef struct Segment {
  const struct Segment *parent;
  int n;
  const TraceChoice *c;
} Segment;

typedef struct Particle {
  InterpState *st;
  const Segment *seg; /* newest segment; NULL = no choices yet */
  long events;        /* events passed (the run is suspended after the last) */
  long nchoices;
  double loglik, logprior;
  bool done;
  int eve;
} Particle;

typedef struct SmcState {
  const Interp *in;
  const IrProgram *prog;
  int chain;
  Rng rng;
  EngineOpts o;
  int N;
  uint64_t model_seed;
  bool has_gen;
  Particle *p, *q; /* population and resampling scratch */
  double *lw, *w;
  int *anc, *perm;
  TraceHandler th; /* reused for every advance */
  Trace scratch_tr;
  TraceChoice *scratch;
  int scap;
  MhMover *mover;
  /* the current run */
  double run_logz;
  int next; /* next particle of the current run to emit; N = run exhausted */
  /* per chain */
  int nruns;
  double logz_max, logz_sum; /* sum exp(logz - logz_max) over runs */
  double relvar_sum;         /* Lee–Whiteley relative variances, summed */
  long resamplings, events_max, moves, accepts, killed;
  double ess_min;
  char first_err[sizeof ((Diag *)0)->msg];
} SmcState;

/* ---- particles ---- */

/* Run particle p to its next event; *inc = the event's log density (0 when the
 * program finished instead).  A run the program rejects (a runtime error)
 * kills the particle; internal errors fail the engine. */
static bool smc_advance(SmcState *s, Particle *p, double *inc, Diag *d) {
  TraceHandler *th = &s->th;
  trace_handler_init(th, &s->rng, NULL, NULL, NULL, NULL);
  memset(&s->scratch_tr, 0, sizeof s->scratch_tr);
  th->tr = &s->scratch_tr;
  th->tr->c = s->scratch;
  th->cap = s->scap;
  th->stop_events = 1;
  Diag rd;
  diag_init(&rd);
  RunStatus rs = interp_run(p->st, &th->h, &rd);
  s->scratch = th->tr->c; /* push_choice may have grown it */
  s->scap = th->cap;
  *inc = 0;
  if (rs == RUN_ERROR) {
    if (rd.code == DIAG_INTERNAL) {
      *d = rd;
      return false;
    }
    if (!s->first_err[0]) snprintf(s->first_err, sizeof s->first_err, "%s", rd.msg);
    s->killed++;
    p->done = true;
    *inc = -INFINITY;
    return true;
  }
  int n = th->tr->n;
  if (n > 0) {
    Segment *g = gc_alloc(sizeof(Segment));
    TraceChoice *c = gc_alloc(sizeof(TraceChoice) * (size_t)n);
    memcpy(c, th->tr->c, sizeof(TraceChoice) * (size_t)n);
    g->parent = p->seg;
    g->n = n;
    g->c = c;
    p->seg = g;
    p->nchoices += n;
  }
  p->logprior += th->tr->logprior;
  p->loglik += th->tr->loglik;
  *inc = th->tr->loglik;
  if (rs == RUN_DONE) p->done = true;
  else p->events++;
  return true;
}

/* The particle's choices in execution order as a sealed trace. */
static Trace *smc_trace(const Particle *p) {
  TraceChoice *c = gc_alloc(sizeof(TraceChoice) * (size_t)(p->nchoices > 0 ? p->nchoices : 1));
  long k = p->nchoices;
  for (const Segment *g = p->seg; g; g = g->parent) {
    k -= g->n;
    memcpy(c + k, g->c, sizeof(TraceChoice) * (size_t)g->n);
  }
  return trace_from_choices((int)p->nchoices, c, p->loglik);
}

/* K MH moves on particle p; its weight is unchanged (the moves leave the
 * current target invariant). */
static bool smc_rejuvenate(SmcState *s, Particle *p, Diag *d) {
  if (p->nchoices == 0 || !(p->loglik > -INFINITY)) return true;
  Trace *t = smc_trace(p);
  InterpState *st = p->st;
  bool done = p->done, moved = false;
  for (int k = 0; k < s->o.rejuvenate; k++) {
    bool acc;
    if (!mh_mover_move(s->mover, &t, &st, done ? 0 : p->events, &done, &acc, d)) return false;
    s->moves++;
    s->accepts += acc;
    moved |= acc;
  }
  if (!moved) return true;
  Segment *g = gc_alloc(sizeof(Segment));
  g->n = t->n;
  g->c = t->c;
  p->seg = g;
  p->nchoices = t->n;
  p->st = st;
  p->done = done;
  p->loglik = t->loglik;
  p->logprior = t->logprior;
  return true;
}

/* Replace the population by offspring of anc[]; the first child of each
 * ancestor takes its execution, the others fork it. */
static void smc_resample(SmcState *s) {
  int N = s->N;
  resample(s->o.resample, N, s->w, &s->rng, s->anc);
  for (int k = 0; k < N; k++) {
    const Particle *a = &s->p[s->anc[k]];
    s->q[k] = *a;
    if (k > 0 && s->anc[k] == s->anc[k - 1] && !a->done)
      s->q[k].st = interp_fork(a->st, rng_u64(&s->rng), (uint64_t)k);
  }
  Particle *t = s->p;
  s->p = s->q;
  s->q = t;
  for (int k = 0; k < N; k++) s->lw[k] = 0;
  s->resamplings++;
}

/* One complete SMC run: afterwards s->p holds the final particles, s->lw
 * their log weights since the last resampling and s->run_logz the estimate. */
static bool smc_run(SmcState *s, Diag *d) {
  int N = s->N;
  for (int i = 0; i < N; i++) {
    memset(&s->p[i], 0, sizeof(Particle));
    s->p[i].st = interp_start(s->in, s->model_seed, (uint64_t)s->chain, false);
    s->p[i].eve = i;
    s->lw[i] = 0;
  }
  double logz = 0;
  int stages = 1;
  long events = 0;
  for (;;) {
    int alive = 0;
    for (int i = 0; i < N; i++) {
      Particle *p = &s->p[i];
      if (p->done) continue;
      double inc;
      if (!smc_advance(s, p, &inc, d)) return false;
      s->lw[i] += inc;
      alive += !p->done;
    }
    events++;
    double lz = resample_normalise(N, s->lw, s->w);
    if (!(lz > -INFINITY)) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                 "smc: every particle has zero weight after event %ld%s%s", events,
                 s->first_err[0] ? "; first error: " : "", s->first_err);
      return false;
    }
    if (alive == 0) {
      logz += lz;
      break;
    }
    double ess = resample_ess(N, s->w);
    if (ess < s->ess_min || s->ess_min < 0) s->ess_min = ess;
    if (ess < s->o.ess_threshold * N) {
      logz += lz;
      smc_resample(s);
      stages++;
      for (int i = 0; s->o.rejuvenate > 0 && i < N; i++)
        if (!smc_rejuvenate(s, &s->p[i], d)) return false;
    }
  }
  for (int i = 0; i < N; i++) /* the last round only finished the runs */
    if (s->p[i].events > s->events_max) s->events_max = s->p[i].events;
  s->run_logz = logz;
  /* Lee–Whiteley: weight mass per Eve index */
  double *mass = gc_alloc_atomic(sizeof(double) * (size_t)N);
  for (int j = 0; j < N; j++) mass[s->p[j].eve] += s->w[j];
  double sq = 0;
  for (int i = 0; i < N; i++) sq += mass[i] * mass[i];
  double relvar = N > 1 ? 1 - pow((double)N / (N - 1), stages) * (1 - sq) : NAN;
  s->relvar_sum += relvar;
  if (logz > s->logz_max) {
    s->logz_sum = s->nruns ? s->logz_sum * exp(s->logz_max - logz) : 0;
    s->logz_max = logz;
  }
  s->logz_sum += exp(logz - s->logz_max);
  s->nruns++;
  /* hand out the particles in a random order */
  for (int i = 0; i < N; i++) s->perm[i] = i;
  for (int i = N - 1; i > 0; i--) {
    int j = (int)rng_int(&s->rng, 0, i), t = s->perm[i];
    s->perm[i] = s->perm[j];
    s->perm[j] = t;
  }
  s->next = 0;
  return true;
}

/* ---- the engine ---- */

static void *smc_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  if (o->particles < 1) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--particles must be at least 1 (got %d)", o->particles);
    return NULL;
  }
  if (o->resample < 0 || o->resample > RESAMPLE_RESIDUAL) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "unknown resampling scheme %d", o->resample);
    return NULL;
  }
  if (!(o->ess_threshold >= 0 && o->ess_threshold <= 1)) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--ess-threshold must be in [0, 1] (got %g)",
               o->ess_threshold);
    return NULL;
  }
  if (o->rejuvenate < 0) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--rejuvenate must not be negative");
    return NULL;
  }
  SmcState *s = gc_alloc(sizeof(SmcState));
  s->in = in;
  s->prog = interp_program(in);
  s->chain = chain;
  s->o = *o;
  s->N = o->particles;
  rng_seed(&s->rng, o->seed, (uint64_t)chain);
  s->model_seed = o->seed ^ 0x736d63u;
  s->has_gen = s->prog->gen_b.n > 0;
  size_t N = (size_t)s->N;
  s->p = gc_alloc(sizeof(Particle) * N);
  s->q = gc_alloc(sizeof(Particle) * N);
  s->lw = gc_alloc_atomic(sizeof(double) * N);
  s->w = gc_alloc_atomic(sizeof(double) * N);
  s->anc = gc_alloc_atomic(sizeof(int) * N);
  s->perm = gc_alloc_atomic(sizeof(int) * N);
  s->scap = 64;
  s->scratch = gc_alloc(sizeof(TraceChoice) * (size_t)s->scap);
  if (o->rejuvenate > 0)
    s->mover = mh_mover_new(in, s->model_seed, (uint64_t)chain, o->seed ^ 0x72656au, false);
  s->next = s->N; /* no run yet */
  s->logz_max = -INFINITY;
  s->ess_min = -1;
  return s;
}

static bool smc_step(void *state, bool warmup, Draw *out, Diag *d) {
  SmcState *s = state;
  (void)warmup;
  if (s->next >= s->N && !smc_run(s, d)) return false;
  int i = s->perm[s->next++];
  const Particle *p = &s->p[i];
  InterpState *st = p->st;
  if (s->has_gen) {
    TraceHandler th;
    trace_handler_init(&th, &s->rng, smc_trace(p), NULL, NULL, NULL);
    if (!trace_run(s->in, &th, rng_u64(&s->rng), (uint64_t)s->chain, true, &st, d)) return false;
  }
  out->outputs = interp_outputs(st);
  out->lp = p->logprior + p->loglik;
  out->log_weight = s->w[i] > 0 ? s->run_logz + log(s->N * s->w[i]) : -INFINITY;
  out->stats[0] = out->log_weight;
  return true;
}

static bool smc_log_evidence(void *state, double *est) {
  SmcState *s = state;
  if (s->nruns == 0) return false;
  *est = s->logz_max + log(s->logz_sum / s->nruns);
  return true;
}

static const char *smc_notes(void *state) {
  SmcState *s = state;
  if (s->nruns == 0) return "";
  double se = sqrt(fmax(s->relvar_sum / s->nruns, 0) / s->nruns);
  char *moves = s->moves ? gc_printf(", %ld rejuvenation moves (%.0f%% accepted)", s->moves,
                                     100.0 * (double)s->accepts / (double)s->moves)
                         : "";
  return gc_printf("smc: %d run%s of %d particles (draws = particles per run), up to %ld "
                   "events, %ld %s resamplings, min ESS %.1f%s%s; log evidence %.4f, "
                   "within-run SE %.4f (Lee–Whiteley%s)",
                   s->nruns, s->nruns == 1 ? "" : "s", s->N, s->events_max, s->resamplings,
                   resample_name(s->o.resample), s->ess_min, moves,
                   s->killed ? gc_printf(", %ld particles killed by runtime errors", s->killed)
                             : "",
                   s->logz_max + log(s->logz_sum / s->nruns), se,
                   se > 0 ? "" : "; the estimate was <= 0, clamped");
}

static void smc_free(void *state) { (void)state; /* GC memory */ }

const EngineVT engine_smc = {
    .name = "smc",
    .summary = "sequential Monte Carlo (particle filter over executions), with log evidence",
    .nstats = 1,
    .stat_names = {"log_weight__"},
    .weighted = true,
    .uses_warmup = false,
    .init = smc_init,
    .step = smc_step,
    .free = smc_free,
    .log_evidence = smc_log_evidence,
    .chain_notes = smc_notes,
};
