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
 * Threads.  Between two events the particles are independent, so each round
 * (every particle to its next event) runs on a pool of worker threads
 * (pool_particle_workers: the chain's share of --threads), and so do the forks
 * after a resampling (one ancestor's children per work item: a fork writes to
 * its parent).  Everything order-dependent stays in the chain's thread, in
 * index order: weights, ESS, resampling, rejuvenation, draws.  Each particle
 * draws its choices from its own Rng stream, seeded from the chain's stream
 * when the run starts or the particle is resampled, so the draws, weights and
 * evidence are the same bytes for any number of threads.
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

/* Particles per worker below which a round is not spread over threads (one
 * advance costs about a microsecond, a thread wake-up tens). */
#define SMC_GRAIN 64

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
  bool done, killed; /* killed: its program failed with a runtime error */
  int eve;
  Rng rng; /* this particle's own stream: its fresh choices */
} Particle;

/* Scratch of one worker thread: the handler and the growing choice buffer
 * every advance records into before its segment is copied out. */
typedef struct SmcWorker {
  TraceHandler th;
  Trace tr;
  TraceChoice *scratch;
  int scap;
  int fatal_at; /* lowest particle whose advance failed internally; -1 = none */
  Diag fatal;
} SmcWorker;

typedef struct SmcState {
  const Interp *in;
  const IrProgram *prog;
  int chain;
  Rng rng;
  EngineOpts o;
  int N;
  int scheme, rejuvenate; /* the options, read once */
  double ess_threshold;
  uint64_t model_seed;
  bool has_gen;
  Particle *p, *q; /* population and resampling scratch */
  double *lw, *w;
  int *anc, *perm;
  int workers;      /* particle worker threads of this chain */
  Pool *pool;       /* during a run */
  SmcWorker *wk;    /* [workers] */
  double *inc;      /* a round's log weight increments, per particle */
  const char **perr;/* a round's runtime errors (killed particles), per particle */
  uint64_t fork_seed;
  MhMover *mover;
  /* the current run */
  double run_logz;
  int next; /* next particle of the current run to emit; N = run exhausted */
  int heavy; /* the current run's heaviest particle */
  /* per chain */
  int nruns;
  double logz_max, logz_sum; /* sum exp(logz - logz_max) over runs */
  double relvar_sum;         /* Lee–Whiteley relative variances, summed */
  long resamplings, events_max, moves, accepts, killed;
  double ess_min;
  char first_err[sizeof ((Diag *)0)->msg];
} SmcState;

/* ---- particles ---- */

/* Run particle p to its next event with worker w's scratch; s->inc[i] = the
 * event's log density (0 when the program finished instead).  A run the
 * program rejects (a runtime error) kills the particle (s->perr[i] says why);
 * internal errors go to w->fatal.  Touches only p, slot i and w: safe to run
 * for different particles in different threads. */
static void smc_advance(SmcState *s, SmcWorker *w, Particle *p, int i) {
  TraceHandler *th = &w->th;
  trace_handler_init(th, &p->rng, NULL, NULL, NULL, NULL);
  memset(&w->tr, 0, sizeof w->tr);
  th->tr = &w->tr;
  th->tr->c = w->scratch;
  th->cap = w->scap;
  th->stop_events = 1;
  Diag rd;
  diag_init(&rd);
  RunStatus rs = interp_run(p->st, &th->h, &rd);
  w->scratch = th->tr->c; /* push_choice may have grown it */
  w->scap = th->cap;
  s->inc[i] = 0;
  s->perr[i] = NULL;
  if (rs == RUN_ERROR) {
    if (rd.code == DIAG_INTERNAL) {
      if (w->fatal_at < 0 || i < w->fatal_at) {
        w->fatal_at = i;
        w->fatal = rd;
      }
      return;
    }
    s->perr[i] = gc_strdup(rd.msg);
    p->done = p->killed = true;
    s->inc[i] = -INFINITY;
    return;
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
  s->inc[i] = th->tr->loglik;
  if (rs == RUN_DONE) p->done = true;
  else p->events++;
}

static void smc_advance_fn(void *ctx, int worker, int lo, int hi) {
  SmcState *s = ctx;
  for (int i = lo; i < hi; i++)
    if (!s->p[i].done) smc_advance(s, &s->wk[worker], &s->p[i], i);
}

/* Every live particle to its next event, in parallel; then, in index order,
 * the log weights, the kill count and the first runtime error.  *alive = the
 * particles whose programs have not finished. */
static bool smc_round(SmcState *s, int *alive, Diag *d) {
  int N = s->N;
  for (int k = 0; k < s->workers; k++) s->wk[k].fatal_at = -1;
  for (int i = 0; i < N; i++) {
    s->inc[i] = 0;
    s->perr[i] = NULL;
  }
  pool_run(s->pool, N, SMC_GRAIN, smc_advance_fn, s);
  int bad = -1;
  for (int k = 0; k < s->workers; k++)
    if (s->wk[k].fatal_at >= 0 && (bad < 0 || s->wk[k].fatal_at < s->wk[bad].fatal_at)) bad = k;
  if (bad >= 0) {
    *d = s->wk[bad].fatal;
    return false;
  }
  *alive = 0;
  for (int i = 0; i < N; i++) {
    if (s->perr[i]) {
      if (!s->first_err[0]) snprintf(s->first_err, sizeof s->first_err, "%s", s->perr[i]);
      s->killed++;
    }
    s->lw[i] += s->inc[i];
    *alive += !s->p[i].done;
  }
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
  for (int k = 0; k < s->rejuvenate; k++) {
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

/* The children of one ancestor (a run of equal anc[] starting at k): the
 * first takes its execution, the others fork it.  Ancestors are sorted, so
 * each parent is forked by one worker only. */
static void smc_children_fn(void *ctx, int worker, int lo, int hi) {
  SmcState *s = ctx;
  (void)worker;
  int N = s->N;
  for (int k = lo; k < hi; k++) {
    if (k > 0 && s->anc[k] == s->anc[k - 1]) continue;
    const Particle *a = &s->p[s->anc[k]];
    for (int j = k; j < N && s->anc[j] == s->anc[k]; j++) {
      s->q[j] = *a;
      if (j > k && !a->done)
        s->q[j].st = interp_fork(a->st, s->fork_seed, (uint64_t)j);
      rng_seed(&s->q[j].rng, s->fork_seed ^ 0x9E3779B97F4A7C15ull, (uint64_t)j);
    }
  }
}

/* Replace the population by offspring of anc[]. */
static void smc_resample(SmcState *s) {
  int N = s->N;
  resample(s->scheme, N, s->w, &s->rng, s->anc);
  s->fork_seed = rng_u64(&s->rng);
  pool_run(s->pool, N, SMC_GRAIN, smc_children_fn, s);
  Particle *t = s->p;
  s->p = s->q;
  s->q = t;
  for (int k = 0; k < N; k++) s->lw[k] = 0;
  s->resamplings++;
}

/* One complete SMC run: afterwards s->p holds the final particles, s->lw
 * their log weights since the last resampling and s->run_logz the estimate. */
static bool smc_run_pool(SmcState *s, Diag *d) {
  int N = s->N;
  uint64_t seed = rng_u64(&s->rng);
  for (int i = 0; i < N; i++) {
    memset(&s->p[i], 0, sizeof(Particle));
    s->p[i].st = interp_start(s->in, s->model_seed, (uint64_t)s->chain, false);
    s->p[i].eve = i;
    rng_seed(&s->p[i].rng, seed, (uint64_t)i);
    s->lw[i] = 0;
  }
  double logz = 0;
  int stages = 1;
  long events = 0;
  for (;;) {
    int alive = 0;
    if (!smc_round(s, &alive, d)) return false;
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
    if (ess < s->ess_threshold * N) {
      logz += lz;
      smc_resample(s);
      stages++;
      for (int i = 0; s->rejuvenate > 0 && i < N; i++)
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
  /* A particle killed by a runtime error has no outputs (its run stopped half
     way; re-running its trace for the generated block fails again): its draw
     shows the heaviest particle's values with weight 0, so the CSV keeps its
     columns and every weighted estimate is unchanged. */
  s->heavy = 0;
  for (int j = 1; j < N; j++)
    if (s->w[j] > s->w[s->heavy]) s->heavy = j;
  s->next = 0;
  return true;
}

/* The worker threads live for one run (the driver may never call free). */
static bool smc_run(SmcState *s, Diag *d) {
  s->pool = pool_new(s->workers);
  bool ok = smc_run_pool(s, d);
  pool_free(s->pool);
  s->pool = NULL;
  return ok;
}

/* ---- the engine ---- */

static void *smc_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  /* the options were validated against the tables when they were set */
  SmcState *s = gc_alloc(sizeof(SmcState));
  s->in = in;
  s->prog = interp_program(in);
  s->chain = chain;
  s->o = *o;
  s->N = (int)engine_opt_int(o, "particles");
  s->scheme = engine_opt_enum(o, "resample");
  s->rejuvenate = (int)engine_opt_int(o, "rejuvenate");
  s->ess_threshold = engine_opt_real(o, "ess-threshold");
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
  s->inc = gc_alloc_atomic(sizeof(double) * N);
  s->perr = gc_alloc(sizeof(char *) * N);
  s->workers = pool_particle_workers(o);
  if (s->workers > s->N) s->workers = s->N;
  s->wk = gc_alloc(sizeof(SmcWorker) * (size_t)s->workers);
  for (int k = 0; k < s->workers; k++) {
    s->wk[k].scap = 64;
    s->wk[k].scratch = gc_alloc(sizeof(TraceChoice) * 64);
  }
  if (s->rejuvenate > 0)
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
  if (p->killed) p = &s->p[s->heavy]; /* no outputs of its own (see smc_run_pool) */
  InterpState *st = p->st;
  if (s->has_gen) {
    TraceHandler th;
    trace_handler_init(&th, &s->rng, smc_trace(p), NULL, NULL, NULL);
    if (!trace_run(s->in, &th, rng_u64(&s->rng), (uint64_t)s->chain, true, &st, d)) return false;
  }
  out->outputs = interp_outputs(st);
  out->lp = p->logprior + p->loglik;
  out->log_weight = s->w[i] > 0 && !s->p[i].killed ? s->run_logz + log(s->N * s->w[i]) : -INFINITY;
  out->stats[0] = out->log_weight;
  return true;
}

static bool smc_log_evidence(void *state, double *est) {
  SmcState *s = state;
  if (s->nruns == 0) return false;
  *est = s->logz_max + log(s->logz_sum / s->nruns);
  return true;
}

static bool smc_log_evidence_se(void *state, double *se) {
  SmcState *s = state;
  if (s->nruns == 0) return false;
  *se = sqrt(fmax(s->relvar_sum / s->nruns, 0) / s->nruns);
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
                   resample_name(s->scheme), s->ess_min, moves,
                   s->killed ? gc_printf(", %ld particles killed by runtime errors", s->killed)
                             : "",
                   s->logz_max + log(s->logz_sum / s->nruns), se,
                   se > 0 ? "" : "; the estimate was <= 0, clamped");
}

static void smc_free(void *state) { (void)state; /* GC memory */ }

static const OptSpec smc_options[] = {
    {.name = "resample", .type = OPT_ENUM, .def = "systematic", .choices = resample_names,
     .arg = "SCHEME", .help = "the resampling scheme"},
    {.name = "rejuvenate", .type = OPT_INT, .def = "0", .ilo = 0, .ihi = 1000000, .arg = "K",
     .help = "single-site MH moves per particle after each resampling"},
    OPT_END,
};

const EngineVT engine_smc = {
    .name = "smc",
    .summary = "sequential Monte Carlo (particle filter over executions), with log evidence",
    .nstats = 1,
    .stat_names = {"log_weight__"},
    .weighted = true,
    .uses_warmup = false,
    .traits = ENGINE_DISCRETE | ENGINE_DYNAMIC,
    .options = {particle_options, smc_options},
    .init = smc_init,
    .step = smc_step,
    .free = smc_free,
    .log_evidence = smc_log_evidence,
    .log_evidence_se = smc_log_evidence_se,
    .chain_notes = smc_notes,
};
