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
 * Resample-move with tempering (Chopin 2002; Del Moral, Doucet, Jasra 2006).
 * Latents drawn outside every loop (static parameters, from the analysis)
 * would otherwise keep only the values of the few initial particles that
 * survive resampling.  So, when the program has them (or --rejuvenate K > 0),
 * (1) an event whose weights would push the ESS below the threshold is
 * entered in tempered steps: the k-th target becomes
 * p(x) L_1..L_{k-1} L_k^beta, beta raised from 0 to 1 by bisection so that
 * each step's ESS is the threshold, at most SMC_TEMPER_ESS (one event of 200
 * observations, as in a vectorised regression, becomes as many steps as it
 * needs); and (2) after
 * every resampling each particle gets rounds of MH moves that leave the
 * current (tempered) target invariant: a joint Gaussian random walk over its
 * static continuous choices on the unconstrained scale, per element scaled by
 * the weighted population's sd before resampling (times a factor adapted to
 * the acceptance rate), then one single-site move of engine mh over all its
 * choices.  Every move re-runs the particle's trace up to its current event
 * (the interpreter is deterministic given the trace) and scores everything
 * seen so far.  --rejuvenate K gives K rounds; the default (-1) adapts the
 * number of rounds until particles have made SMC_JUMPS accepted moves on
 * average (at most SMC_MAX_ROUNDS), and does nothing for programs without
 * static parameters (a particle filter, as before).  On compiled particles
 * (smc_compiled.c) the same rounds of moves run as replays of the whole
 * population, with these bits.
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
 * its parent), and so does each round of resample-move's moves (each
 * particle's from its own stream, seeded from the round's seed and its index,
 * with the scales fixed for the round).  Everything order-dependent stays in
 * the chain's thread, in index order: weights, ESS, resampling, the moves'
 * adaptation between rounds, draws.  Each particle draws its choices from its
 * own Rng stream, seeded from the chain's stream when the run starts or the
 * particle is resampled, so the draws, weights and evidence are the same
 * bytes for any number of threads.
 *
 * The model block's _rng calls: particles start with one seed per chain as in
 * engine mh; forks after resampling get their own streams.  The generated block
 * is run once per emitted draw by replaying the particle's trace.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stdlib/transform.h"
#include "smc_impl.h"

#define SMC_PARTICLES 1000   /* --particles 0 (the default) */
#define SMC_MAX_TEMPER 1000  /* tempering steps of one event, at most */
#define SMC_TEMPER_ESS 0.8   /* tempering steps aim at most at this ESS / N */
#define SMC_MOVE_GRAIN 2     /* a move re-runs a trace: worth a thread from few particles */

/* ---- particles ---- */

/* Killed by a runtime error: a compiled population's or an execution. */
static bool smc_killed(const SmcState *s, int i) { return s->pcr ? pc_dead(s->pcr, i) : s->p[i].killed; }

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
  p->last_inc = rs == RUN_DONE ? 0 : th->tr->loglik;
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

/* The particle's trace scored for a target whose latest event counts beta
 * times (its loglik keeps the whole event). */
static Trace *smc_trace_at(const Particle *p, double beta) {
  Trace *t = smc_trace(p);
  if (beta != 1 && !p->done) t->loglik = p->loglik - (1 - beta) * p->last_inc;
  return t;
}

bool smc_static_name(const SmcState *s, const char *addr) {
  for (int k = 0; k < s->nstatic; k++)
    if (!strcmp(s->static_names[k], addr)) return true;
  return false;
}

/* The choices the block move proposes for: static, continuous, scalar bounds. */
const SmcScale *smc_block_scale(const SmcState *s, const TraceChoice *c) {
  if (!c->continuous || c->structured || c->type.base == TY_STRING) return NULL;
  for (int k = 0; k < s->nscale; k++)
    if (!strcmp(s->scale[k].addr, c->addr)) return s->scale[k].numel == c->numel ? &s->scale[k] : NULL;
  return NULL;
}

/* s->scale from the weighted population (s->p, s->w) about to be resampled. */
static void smc_scales(SmcState *s) {
  s->nscale = 0;
  for (int i = 0; i < s->N; i++) {
    const Particle *p = &s->p[i];
    if (!(s->w[i] > 0) || p->killed) continue;
    for (const Segment *g = p->seg; g; g = g->parent)
      for (int j = 0; j < g->n; j++) smc_scale_add(s, &g->c[j], g->c[j].val, s->w[i]);
  }
  smc_scales_end(s);
}

void smc_scale_add(SmcState *s, const TraceChoice *c, Value val, double w) {
  if (!c->continuous || c->structured || c->type.base == TY_STRING ||
      !smc_static_name(s, c->addr))
    return;
  SmcScale *e = NULL;
  for (int k = 0; k < s->nscale && !e; k++)
    if (!strcmp(s->scale[k].addr, c->addr)) e = &s->scale[k];
  if (!e) {
    if (s->nscale == s->nstatic) return;
    e = &s->scale[s->nscale++];
    e->addr = c->addr;
    e->numel = c->numel;
    e->sw = 0;
    e->m1 = gc_alloc_atomic(sizeof(double) * (size_t)(3 * c->numel + 1));
    e->m2 = e->m1 + c->numel;
    e->sd = e->m2 + c->numel;
    memset(e->m1, 0, sizeof(double) * (size_t)(3 * c->numel));
  }
  if (e->numel != c->numel) return;
  e->sw += w;
  for (int k = 0; k < c->numel; k++) {
    double x = trace_value_get(val, (size_t)k), u;
    if (!tf_unconstrain(c->con, c->lower, c->upper, 1, &x, &u)) u = 0;
    e->m1[k] += w * u;
    e->m2[k] += w * u * u;
  }
}

void smc_scales_end(SmcState *s) {
  for (int k = 0; k < s->nscale; k++) {
    SmcScale *e = &s->scale[k];
    for (int j = 0; j < e->numel; j++) {
      double m = e->m1[j] / e->sw, v = e->m2[j] / e->sw - m * m;
      /* a collapsed population still moves (the factor adapts upwards) */
      e->sd[j] = v > 1e-18 ? sqrt(v) : 1e-9;
    }
  }
}

/* Do old and new_ have the same block choices (addresses in order, bounds,
 * sizes)?  Then the reverse move is the same proposal: symmetric veto. */
static bool smc_same_block(const SmcState *s, const Trace *old, const Trace *new_) {
  int i = 0, j = 0;
  for (;;) {
    while (i < old->n && !smc_block_scale(s, &old->c[i])) i++;
    while (j < new_->n && !smc_block_scale(s, &new_->c[j])) j++;
    if (i == old->n || j == new_->n) return i == old->n && j == new_->n;
    const TraceChoice *a = &old->c[i++], *b = &new_->c[j++];
    if (strcmp(a->addr, b->addr) || a->con != b->con || a->lower != b->lower ||
        a->upper != b->upper)
      return false;
  }
}

/* One joint random-walk move over particle i's static continuous choices,
 * for the target tempered by beta, drawn from stream r.  *tried = there were
 * any.  Reads s->lambda and s->scale only: safe in parallel. */
static bool smc_block_move(SmcState *s, int i, Rng *r, double beta, bool *tried, bool *acc,
                           Diag *d) {
  Particle *p = &s->p[i];
  const Trace *t = s->tr[i];
  *tried = *acc = false;
  int n = 0;
  long elems = 0;
  for (int k = 0; k < t->n; k++)
    if (smc_block_scale(s, &t->c[k])) {
      n++;
      elems += t->c[k].numel;
    }
  if (n == 0 || elems == 0) return true;
  *tried = true;
  TraceBlock b = {0};
  b.addrs = gc_alloc(sizeof(char *) * (size_t)n);
  b.vals = gc_alloc(sizeof(Value) * (size_t)n);
  double f = s->lambda * 2.38 / sqrt((double)elems);
  for (int k = 0; k < t->n; k++) {
    const TraceChoice *c = &t->c[k];
    const SmcScale *e = smc_block_scale(s, c);
    if (!e) continue;
    Value v = val_copy(c->val);
    for (int j = 0; j < c->numel; j++) {
      double x = trace_value_get(v, (size_t)j), u, xn;
      if (!tf_unconstrain(c->con, c->lower, c->upper, 1, &x, &u)) return true; /* rejected */
      double lj_old = tf_constrain(c->con, c->lower, c->upper, 1, &u, &xn);
      u += f * e->sd[j] * rng_normal(r);
      double lj_new = tf_constrain(c->con, c->lower, c->upper, 1, &u, &xn);
      trace_value_set(&v, (size_t)j, xn);
      b.log_q_ratio += lj_new - lj_old;
    }
    b.addrs[b.n] = c->addr;
    b.vals[b.n++] = v;
  }
  TraceHandler th;
  char err[256] = "";
  trace_handler_init(&th, r, t, NULL, NULL, NULL);
  if (!trace_handler_set_block(&th, &b, err, sizeof err)) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "smc: %s", err);
    return false;
  }
  th.stop_events = p->done ? 0 : p->events;
  th.stop_scale = beta;
  Diag rd;
  diag_init(&rd);
  InterpState *nst = NULL;
  bool ndone = true;
  Trace *nt = trace_run_until(s->in, &th, s->model_seed, (uint64_t)s->chain, false, &nst,
                              &ndone, &rd);
  double a = -INFINITY;
  if (!nt) {
    if (rd.code == DIAG_INTERNAL) { /* a run the program rejects is a rejected move */
      *d = rd;
      return false;
    }
  } else if (smc_same_block(s, t, nt)) {
    a = trace_block_log_accept(t, nt, &b, th.block_seen, th.fresh_lp);
  }
  *acc = log(rng_uniform(r)) < a;
  if (*acc) {
    s->tr[i] = nt;
    p->st = nst;
    p->done = ndone;
    p->last_inc = ndone ? 0 : th.stop_lp;
  }
  return true;
}

/* One single-site move of engine mh on particle i (all its choices) with
 * worker mover m, drawn from stream r; the site's scale adaptation is left in
 * *rec for the end of the round. */
static bool smc_site_move(SmcState *s, MhMover *m, int i, Rng *r, bool *acc, MhMoveRec *rec,
                          Diag *d) {
  Particle *p = &s->p[i];
  Trace *t = s->tr[i];
  InterpState *st = p->st;
  bool done = p->done;
  if (!mh_mover_move(m, r, &t, &st, done ? 0 : p->events, &done, acc, rec, d)) return false;
  if (*acc) {
    s->tr[i] = t;
    p->st = st;
    p->done = done;
    p->last_inc = done ? 0 : mh_mover_stop_lp(m);
  }
  return true;
}

/* One round's moves of particles [lo, hi) on worker w: each particle's block
 * then single-site move, drawn from its own stream (the round's seed, its
 * index), with the scales fixed for the round; what each did is left in
 * s->mv_* for smc_moves to add up in particle order. */
static void smc_move_fn(void *ctx, int worker, int lo, int hi) {
  SmcState *s = ctx;
  SmcWorker *w = &s->wk[worker];
  for (int i = lo; i < hi; i++) {
    s->mv_flags[i] = 0;
    s->mv_rec[i].addr = NULL;
    if (!s->tr[i] || !(trace_logjoint(s->tr[i]) > -INFINITY)) continue;
    Rng r;
    rng_seed(&r, s->mv_seed, (uint64_t)i);
    bool tried, acc, sacc;
    Diag d;
    diag_init(&d);
    if (!smc_block_move(s, i, &r, s->mv_beta, &tried, &acc, &d) ||
        !smc_site_move(s, s->movers[worker], i, &r, &sacc, &s->mv_rec[i], &d)) {
      if (w->fatal_at < 0 || i < w->fatal_at) {
        w->fatal_at = i;
        w->fatal = d;
      }
      return;
    }
    s->mv_flags[i] = SMC_MV_MOVED | (tried ? SMC_MV_TRIED : 0) | (acc ? SMC_MV_BLOCK : 0) |
                     (sacc ? SMC_MV_SITE : 0);
  }
}

/* A round of moves ends (interpreted or compiled): its flags a particle
 * counted, the movers' scales and the block factor adapted (towards the random
 * walk's optimal acceptance), and the round's accepted moves per moving
 * particle added to *jumps (what the rounds' stop counts).  False when no
 * particle could move: the rounds end. */
bool smc_round_end(SmcState *s, const unsigned char *flags, double *jumps) {
  int N = s->N;
  long bt = 0, ba = 0, sa = 0, moved = 0;
  for (int i = 0; i < N; i++) {
    int f = flags[i];
    bt += (f & SMC_MV_TRIED) != 0;
    ba += (f & SMC_MV_BLOCK) != 0;
    sa += (f & SMC_MV_SITE) != 0;
    moved += (f & SMC_MV_MOVED) != 0;
  }
  mh_mover_adapt_round(s->mover, s->mv_rec, N);
  if (moved == 0) return false;
  s->rounds++;
  s->block_moves += bt;
  s->block_accepts += ba;
  s->moves += moved;
  s->accepts += sa;
  if (bt > 0) {
    s->lambda *= exp((double)ba / (double)bt - SMC_BLOCK_ACCEPT);
    if (s->lambda < 1e-4) s->lambda = 1e-4;
    if (s->lambda > 1e4) s->lambda = 1e4;
  }
  *jumps += (double)(ba + sa) / (double)moved;
  return true;
}

/* Rounds of moves on the freshly resampled population, for the target whose
 * latest event counts beta times: --rejuvenate K rounds, or (automatic) until
 * the particles have made SMC_JUMPS accepted moves on average.  Within a
 * round the particles move independently (own streams, the round's scales),
 * in parallel; between rounds the block factor adapts to the round's
 * acceptance rate and each single-site scale to its moves' mean acceptance.  So the
 * moves give the same bytes for any number of threads. */
static bool smc_moves(SmcState *s, double beta, Diag *d) {
  int N = s->N;
  Trace **orig = gc_alloc(sizeof(Trace *) * (size_t)N);
  for (int i = 0; i < N; i++)
    orig[i] = s->tr[i] = s->p[i].killed || s->p[i].nchoices == 0 ? NULL : smc_trace_at(&s->p[i], beta);
  mh_mover_set_stop_scale(s->mover, beta);
  s->mv_beta = beta;
  double jumps = 0;
  for (int r = 0;; r++) {
    if (s->rejuvenate > 0 ? r >= s->rejuvenate : r >= SMC_MAX_ROUNDS || jumps >= SMC_JUMPS)
      break;
    s->mv_seed = rng_u64(&s->rng);
    for (int k = 0; k < s->workers; k++) {
      s->wk[k].fatal_at = -1;
      mh_mover_sync(s->movers[k], s->mover);
    }
    pool_run(s->pool, N, SMC_MOVE_GRAIN, smc_move_fn, s);
    int bad = -1;
    for (int k = 0; k < s->workers; k++)
      if (s->wk[k].fatal_at >= 0 && (bad < 0 || s->wk[k].fatal_at < s->wk[bad].fatal_at)) bad = k;
    if (bad >= 0) {
      *d = s->wk[bad].fatal;
      return false;
    }
    if (!smc_round_end(s, s->mv_flags, &jumps)) break;
  }
  for (int i = 0; i < N; i++) {
    Particle *p = &s->p[i];
    Trace *t = s->tr[i];
    if (t == orig[i]) continue;
    Segment *g = gc_alloc(sizeof(Segment));
    g->n = t->n;
    g->c = t->c;
    p->seg = g;
    p->nchoices = t->n;
    p->logprior = t->logprior;
    p->loglik = beta == 1 || p->done ? t->loglik : t->loglik + (1 - beta) * p->last_inc;
  }
  s->move_phases++;
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

/* Resample, with moves for the target tempered by beta when they are on. */
static bool smc_resample_move(SmcState *s, double beta, Diag *d) {
  if (s->pcr) return smcc_resample_move(s, beta, d);
  if (s->moves_on) smc_scales(s);
  smc_resample(s);
  return !s->moves_on || smc_moves(s, beta, d);
}

/* Log weights base + delta * (each particle's latest event), normalised into
 * s->w; returns the ESS. */
static double smc_weights_at(SmcState *s, const double *base, double delta) {
  for (int i = 0; i < s->N; i++) {
    if (s->pcr) /* compiled: every living particle at the same point */
      s->lw[i] = pc_dead(s->pcr, i) ? -INFINITY : s->pc_done ? base[i] : base[i] + delta * s->last_inc[i];
    else {
      const Particle *p = &s->p[i];
      s->lw[i] = p->killed ? -INFINITY : p->done ? base[i] : base[i] + delta * p->last_inc;
    }
  }
  resample_normalise(s->N, s->lw, s->w);
  return resample_ess(s->N, s->w);
}

/* Enter the latest event (its densities are the particles' last_inc; base =
 * the log weights before it) in tempered steps while taking it whole would
 * bring the ESS below the threshold: each step's fraction is found by
 * bisection so that its ESS is the threshold, then the population is
 * resampled and moved.  Leaves s->lw with the rest of the event added. */
bool smc_temper(SmcState *s, double *base, double *logz, int *stages, Diag *d) {
  int N = s->N;
  /* a threshold near 1 would make every step tiny */
  double target = fmin(s->ess_threshold, SMC_TEMPER_ESS) * N, beta = 0;
  for (int i = 0; i < N; i++)
    if (smc_killed(s, i)) base[i] = -INFINITY;
  for (int step = 0;; step++) {
    double rest = 1 - beta;
    if (step >= SMC_MAX_TEMPER || smc_weights_at(s, base, rest) >= target) return true;
    double lo = 0, hi = rest;
    for (int k = 0; k < 50; k++) {
      double mid = 0.5 * (lo + hi);
      if (smc_weights_at(s, base, mid) >= target) lo = mid;
      else hi = mid;
    }
    double delta = lo > 0 ? lo : hi / 1024;
    smc_weights_at(s, base, delta);
    double lz = resample_normalise(N, s->lw, s->w);
    if (!(lz > -INFINITY)) return true; /* the caller reports it */
    double ess = resample_ess(N, s->w);
    if (ess < s->ess_min || s->ess_min < 0) s->ess_min = ess;
    *logz += lz;
    beta += delta;
    if (beta > 1 - 1e-12) beta = 1;
    s->temper_steps++;
    (*stages)++;
    if (!smc_resample_move(s, beta, d)) return false;
    for (int i = 0; i < N; i++) base[i] = smc_killed(s, i) ? -INFINITY : 0;
    if (beta == 1) {
      smc_weights_at(s, base, 0);
      return true;
    }
  }
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* Final particles with weight whose histories differ: offspring share their
 * oldest segment until a move replaces it. */
static int smc_distinct(const SmcState *s) {
  uintptr_t *root = gc_alloc_atomic(sizeof(uintptr_t) * (size_t)s->N);
  int n = 0;
  for (int i = 0; i < s->N; i++) {
    if (!(s->w[i] > 0)) continue;
    const Segment *g = s->p[i].seg;
    while (g && g->parent) g = g->parent;
    root[n++] = (uintptr_t)g;
  }
  qsort(root, (size_t)n, sizeof *root, cmp_ptr);
  int k = 0;
  for (int i = 0; i < n; i++) k += i == 0 || root[i] != root[i - 1];
  return k;
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
  double *base = s->moves_on ? gc_alloc_atomic(sizeof(double) * (size_t)N) : NULL;
  for (;;) {
    int alive = 0;
    if (base) memcpy(base, s->lw, sizeof(double) * (size_t)N);
    if (!smc_round(s, &alive, d)) return false;
    events++;
    /* the events of a run are known once one run has finished */
    engine_progress(&s->o, s->chain, events, s->ev.nruns ? s->events_max + 1 : 0, "event");
    if (base && !smc_temper(s, base, &logz, &stages, d)) return false;
    int w = smc_weigh(s, events, alive, &logz, d);
    if (w == SMC_FAILED) return false;
    if (w == SMC_FINISHED) break;
    if (w == SMC_RESAMPLE) {
      if (!smc_resample_move(s, 1, d)) return false;
      stages++;
    }
  }
  for (int i = 0; i < N; i++) /* the last round only finished the runs */
    if (s->p[i].events > s->events_max) s->events_max = s->p[i].events;
  s->run_logz = logz;
  int *eve = gc_alloc_atomic(sizeof(int) * (size_t)N);
  for (int j = 0; j < N; j++) eve[j] = s->p[j].eve;
  evidence_add(&s->ev, logz, N, s->w, eve, stages - 1);
  smc_finish(s, smc_distinct(s));
  return true;
}

int smc_weigh(SmcState *s, long events, int alive, double *logz, Diag *d) {
  int N = s->N;
  /* in fixed blocks, the partial sums that slices of the population on
     several ranks would combine (resample_normalise_blocked) */
  double ess, lz;
  if (!s->split) lz = resample_normalise_blocked(N, s->lw, s->w, &ess);
  else if (!smcm_normalise(s, &lz, &ess, d)) return SMC_FAILED; /* this rank's weights */
  if (!(lz > -INFINITY)) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "smc: every particle has zero weight after event %ld%s%s",
               events, s->first_err[0] ? "; first error: " : "", s->first_err);
    return SMC_FAILED;
  }
  if (alive == 0) {
    *logz += lz;
    return SMC_FINISHED;
  }
  if (ess < s->ess_min || s->ess_min < 0) s->ess_min = ess;
  if (ess >= s->ess_threshold * N) return SMC_GO_ON;
  *logz += lz;
  return SMC_RESAMPLE;
}

void smc_finish(SmcState *s, int distinct) {
  int N = s->N;
  if (s->distinct_min < 0 || distinct < s->distinct_min) s->distinct_min = distinct;
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
}

/* The worker threads live for one run (the driver may never call free). */
static bool smc_run(SmcState *s, Diag *d) {
  s->pool = pool_new(s->workers);
  bool ok = s->pcr ? smcc_run_pool(s, d) : smc_run_pool(s, d);
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
  if (s->N == 0) s->N = SMC_PARTICLES; /* the default */
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
  /* static parameters: latents drawn outside every loop and function */
  IrAnalysis *an = ir_analyze(s->prog);
  s->static_names = gc_alloc(sizeof(char *) * (size_t)(an->nlatents + 1));
  for (int k = 0; k < an->nlatents; k++)
    if (!an->latents[k].in_loop && !an->latents[k].in_function)
      s->static_names[s->nstatic++] = an->latents[k].name;
  s->scale = gc_alloc(sizeof(SmcScale) * (size_t)(s->nstatic + 1));
  s->tr = gc_alloc(sizeof(Trace *) * N);
  s->lambda = 1;
  s->distinct_min = -1;
  s->moves_on = s->rejuvenate > 0 || (s->rejuvenate < 0 && s->nstatic > 0);
  if (s->scheme == RESAMPLE_NEVER) { /* importance sampling: no resampling, so no moves */
    s->ess_threshold = 0;
    s->moves_on = false;
  }
  if (s->moves_on) {
    s->mover = mh_mover_new(in, s->model_seed, (uint64_t)chain, o->seed ^ 0x72656au, false);
    s->movers = gc_alloc(sizeof(MhMover *) * (size_t)s->workers);
    for (int k = 0; k < s->workers; k++) s->movers[k] = mh_mover_worker(s->mover);
    s->mv_flags = gc_alloc_atomic(sizeof(unsigned char) * N);
    s->mv_rec = gc_alloc(sizeof(MhMoveRec) * N);
  }
  s->next = s->N; /* no run yet */
  evidence_init(&s->ev);
  s->ess_min = -1;
  smcc_setup(s);
  return s;
}

static bool smc_step(void *state, bool warmup, Draw *out, Diag *d) {
  SmcState *s = state;
  (void)warmup;
  if (s->next >= s->N && !smc_run(s, d)) return false;
  int i = s->perm[s->next++];
  if (s->pcr) {
    smcc_draw(s, i, out);
    return true;
  }
  const Particle *p = &s->p[i];
  if (p->killed) p = &s->p[s->heavy]; /* no outputs of its own (see smc_run_pool) */
  InterpState *st = p->st;
  if (s->has_gen) {
    TraceHandler th;
    trace_handler_init(&th, &s->rng, smc_trace(p), NULL, NULL, NULL);
    if (!trace_run(s->in, &th, rng_u64(&s->rng), (uint64_t)s->chain, true, &st, d)) return false;
  }
  engine_draw_outputs(out, st);
  out->lp = p->logprior + p->loglik;
  out->log_weight = s->w[i] > 0 && !s->p[i].killed ? s->run_logz + log(s->N * s->w[i]) : -INFINITY;
  out->stats[0] = out->log_weight;
  return true;
}

static bool smc_log_evidence(void *state, double *est) {
  return evidence_log(&((SmcState *)state)->ev, est);
}

static bool smc_log_evidence_se(void *state, double *se) {
  return evidence_se(&((SmcState *)state)->ev, se);
}

static const char *smc_notes(void *state) {
  SmcState *s = state;
  double logz, se;
  if (!evidence_log(&s->ev, &logz) || !evidence_se(&s->ev, &se)) return "";
  char *moves = "";
  if (s->temper_steps)
    moves = gc_printf(", %ld tempering steps", s->temper_steps);
  if (s->move_phases)
    moves = gc_printf("%s, resample-move: %ld rounds after %ld resamplings (%s), %ld single-site "
                      "moves (%.0f%% accepted)",
                      moves, s->rounds, s->move_phases,
                      s->rejuvenate > 0 ? "--rejuvenate" : "automatic", s->moves,
                      s->moves ? 100.0 * (double)s->accepts / (double)s->moves : 0.0);
  if (s->block_moves)
    moves = gc_printf("%s, %ld block moves of the static parameters (%.0f%% accepted)", moves,
                      s->block_moves, 100.0 * (double)s->block_accepts / (double)s->block_moves);
  char *distinct = "";
  if (s->distinct_min >= 0 && s->N >= 10 && s->distinct_min < s->N / 10)
    distinct = gc_printf("; DEGENERATE: only %d of %d final particles have distinct histories, so "
                         "latents drawn early (and static ones) rest on few values%s",
                         s->distinct_min, s->N,
                         s->moves_on ? "; use more --particles or --rejuvenate K"
                                     : s->nstatic ? "" : " (path degeneracy of a long series: "
                                                         "late states and the evidence are fine)");
  else if (s->distinct_min >= 0)
    distinct = gc_printf("; %d of %d final particles distinct", s->distinct_min, s->N);
  return gc_printf("smc: %d run%s of %d particles (draws = particles per run), up to %ld "
                   "events, %ld %s resamplings, min ESS %.1f%s%s; log evidence %.4f, "
                   "within-run SE %.4f (Lee–Whiteley%s)%s",
                   s->ev.nruns, s->ev.nruns == 1 ? "" : "s", s->N, s->events_max, s->resamplings,
                   resample_name(s->scheme), s->ess_min, moves,
                   s->killed ? gc_printf(", %ld particles killed by runtime errors", s->killed)
                             : "",
                   logz, se,
                   se > 0 ? "" : "; the estimate was <= 0, clamped", distinct);
}

static void smc_free(void *state) { (void)state; /* GC memory */ }

/* How the particles advance: "compiled particle steps ..." or "interpreted
   (why)", for the summary's backend line. */
static const char *smc_backend(void *state) {
  SmcState *s = state;
  if (s->pcr)
    return gc_printf("smc: compiled particle steps (%d registers per particle in columns)",
                     pc_ncolumns(pc_run_prog(s->pcr)));
  return gc_printf("smc: interpreted (%s)", s->pc_why ? s->pc_why : "not compiled");
}

static const OptSpec smc_options[] = {
    {.name = "rejuvenate", .type = OPT_INT, .def = "-1", .ilo = -1, .ihi = 1000000, .arg = "K",
     .help = "rounds of MH moves per particle after each resampling, with tempered events; -1: "
             "as many as needed when the program has static parameters, 0: none"},
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
    .options = {particle_options, resample_options, smc_options},
    .init = smc_init,
    .step = smc_step,
    .free = smc_free,
    .log_evidence = smc_log_evidence,
    .log_evidence_se = smc_log_evidence_se,
    .chain_notes = smc_notes,
    .backend = smc_backend,
};
