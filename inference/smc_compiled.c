/* smc_compiled.c — engine smc on compiled particle steps (ir/particle.h).
 *
 * When a program's control flow is the same in every particle (state-space
 * models, HMMs, most time series), its population advances as columns, one
 * per latent-dependent register, instead of as N suspended executions.  This
 * file is smc_run_pool's twin for such runs: the same rounds, weights,
 * resampling, evidence and draws, and the same calls on the chain's Rng in
 * the same order, so that a compiled run gives the interpreted run's bits
 * (tests/inference/test_smc_compiled.c).  `--no-jit` keeps the interpreter.
 *
 * Resample-move (static parameters, --rejuvenate) runs here too: a round of
 * moves is two replays of the whole population on compiled steps (a second
 * PcRun of the program re-running every particle's choices up to the
 * current event, pc_replay_moved), one for the block move of the static
 * parameters and one for the single-site move, where the interpreted engine
 * re-runs each particle's trace through the interpreter.  Each particle's
 * random numbers (proposal, site and kernel, fresh draws, acceptance) come
 * from its own stream in the same order as the interpreted moves', its
 * trace's log prior is the running sum over its choices and its
 * log-likelihood the events' with the stop event tempered, as a replayed
 * trace's, and the acceptance ratios are the trace functions' expressions:
 * so the moves, and the whole run, are the interpreted run's bits.  The
 * choices' metadata (bounds, kinds) come from one interpreted run of the
 * program at set-up: a program whose latents' supports depend on a latent
 * stays interpreted (pc_moves_why).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../stdlib/transform.h"
#include "smc_impl.h"

/* The compiled moves' state: the replay run and per-particle scratch. */
typedef struct SmcMoves {
  PcRun *mv;               /* the replays */
  TraceChoice *meta;       /* every choice of the program, in run order */
  int nmeta;
  Rng *rng;                /* per particle: its stream of this round */
  double *prior, *lik;     /* per particle: its trace's log prior and (tempered) log-likelihood */
  double *bq;              /* per particle: the block proposal's log q ratio */
  uint8_t *state;          /* per particle: SMC_MV_* of this round, and CM_* */
  uint8_t *changed;        /* per particle: moved in this phase */
  MhSiteKernel *kern;      /* per particle: its site move's kernel */
  int *target;             /* per particle: its site move's choice */
  double **prop;           /* [K]: the block proposals (static choices), N each */
  const double **rx;       /* [K]: the values a replay reads */
  uint8_t *blk;            /* [K]: a block choice */
  int kcap;
  double *inc;             /* a replay's event densities, per particle */
  const char **perr;
} SmcMoves;

enum { CM_GO = 16, CM_REJECTED = 32 }; /* in a replay; block proposal refused */

/* The choices of one interpreted run of the program: their bounds and kinds
 * are every particle's (pc_moves_why), as the moves read them. */
static bool smcc_meta(SmcState *s, SmcMoves *m) {
  for (uint64_t k = 0; k < 16; k++) {
    Rng r;
    rng_seed(&r, s->model_seed ^ 0x6d657461ull, k);
    TraceHandler th;
    trace_handler_init(&th, &r, NULL, NULL, NULL, NULL);
    Diag d;
    diag_init(&d);
    Trace *t = trace_run(s->in, &th, s->model_seed, (uint64_t)s->chain, false, NULL, &d);
    if (t) {
      m->meta = t->c;
      m->nmeta = t->n;
      return true;
    }
  }
  return false;
}

void smcc_setup(SmcState *s) {
  s->pcr = NULL;
  if (s->o.no_jit) {
    s->pc_why = "--no-jit";
    return;
  }
  const PcProg *pc = pc_compile(s->in, &s->pc_why);
  if (!pc) return;
  int N = s->N;
  SmcMoves *m = NULL;
  if (s->moves_on) {
    if ((s->pc_why = pc_moves_why(pc))) {
      s->pc_why = gc_printf("resample-move: %s", s->pc_why);
      return;
    }
    m = gc_alloc(sizeof(SmcMoves));
    if (!smcc_meta(s, m)) {
      s->pc_why = "resample-move: no run of the program without a runtime error to read its choices from";
      return;
    }
    m->mv = pc_run_new(pc, N, s->workers);
    pc_keep_choices(m->mv, true);
    m->rng = gc_alloc_atomic(sizeof(Rng) * (size_t)N);
    m->prior = gc_alloc_atomic(sizeof(double) * (size_t)N);
    m->lik = gc_alloc_atomic(sizeof(double) * (size_t)N);
    m->bq = gc_alloc_atomic(sizeof(double) * (size_t)N);
    m->state = gc_alloc_atomic((size_t)N);
    m->changed = gc_alloc_atomic((size_t)N);
    m->kern = gc_alloc_atomic(sizeof(MhSiteKernel) * (size_t)N);
    m->target = gc_alloc_atomic(sizeof(int) * (size_t)N);
    m->inc = gc_alloc_atomic(sizeof(double) * (size_t)N);
    m->perr = gc_alloc(sizeof(char *) * (size_t)N);
  }
  s->cm = m;
  s->pcr = pc_run_new(pc, N, s->workers);
  s->eve = gc_alloc_atomic(sizeof(int) * (size_t)N);
  s->eve2 = gc_alloc_atomic(sizeof(int) * (size_t)N);
  s->last_inc = gc_alloc_atomic(sizeof(double) * (size_t)N);
  s->last_inc2 = gc_alloc_atomic(sizeof(double) * (size_t)N);
  s->mlo = 0;
  s->mhi = N;
  if (m) pc_keep_choices(s->pcr, true);
  else smcm_setup(s); /* the moves run in one process */
}

static void smcc_exec_fn(void *ctx, int worker, int lo, int hi) {
  SmcState *s = ctx;
  pc_exec(s->pcr, worker, s->mlo + lo, s->mlo + hi, s->inc, s->perr); /* this rank's range */
}

/* Every live particle to its next event; the log weights in index order, as
 * smc_round.  *alive = 0 once the program has finished. */
static bool smcc_round(SmcState *s, int *alive, Diag *d) {
  int N = s->N;
  int more = pc_record(s->pcr, d);
  if (more < 0) return false;
  if (s->split) { /* this rank's range, then every rank learns the others' */
    pool_run(s->pool, s->mhi - s->mlo, SMC_GRAIN, smcc_exec_fn, s);
    if (!smcm_share_round(s, d)) return false;
    *alive = 0;
    for (int i = 0; i < N; i++) {
      if (s->perr[i]) {
        if (!s->first_err[0]) snprintf(s->first_err, sizeof s->first_err, "%s", s->perr[i]);
        s->killed++;
        s->perr[i] = NULL;
      }
      s->lw[i] += s->inc[i];
      *alive += more && !pc_dead(s->pcr, i);
    }
    return true;
  }
  long kills = pc_kills(s->pcr);
  pool_run(s->pool, N, SMC_GRAIN, smcc_exec_fn, s);
  if (pc_kills(s->pcr) != kills)
    for (int i = 0; i < N; i++)
      if (s->perr[i]) {
        if (!s->first_err[0]) snprintf(s->first_err, sizeof s->first_err, "%s", s->perr[i]);
        s->killed++;
        s->perr[i] = NULL;
      }
  for (int i = 0; i < N; i++) s->lw[i] += s->inc[i];
  *alive = more ? pc_nalive(s->pcr) : 0;
  for (int i = 0; i < N; i++) s->last_inc[i] = more ? s->inc[i] : 0;
  s->pc_done = !more;
  s->pc_events += more;
  return true;
}

static bool smcc_resample(SmcState *s, Diag *d) {
  int N = s->N;
  if (!s->split) resample(s->scheme, N, s->w, &s->rng, s->anc);
  else if (!smcm_ancestors(s, d)) return false;
  s->fork_seed = rng_u64(&s->rng);
  if (s->split && !smcm_exchange(s, d)) return false;
  pc_resample_range(s->pcr, s->anc, s->fork_seed, s->mlo, s->mhi); /* all N when not split */
  for (int j = 0; j < N; j++) {
    s->eve2[j] = s->eve[s->anc[j]];
    s->last_inc2[j] = s->last_inc[s->anc[j]];
  }
  int *t = s->eve;
  s->eve = s->eve2;
  s->eve2 = t;
  double *l = s->last_inc;
  s->last_inc = s->last_inc2;
  s->last_inc2 = l;
  for (int k = 0; k < N; k++) s->lw[k] = 0;
  s->resamplings++;
  return true;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Final particles with weight whose oldest choices differ (smc_distinct). */
static int smcc_distinct(const SmcState *s) {
  uint64_t *root = gc_alloc_atomic(sizeof(uint64_t) * (size_t)s->N);
  int n = 0;
  for (int i = 0; i < s->N; i++)
    if (s->w[i] > 0) root[n++] = pc_root(s->pcr, i);
  qsort(root, (size_t)n, sizeof *root, cmp_u64);
  int k = 0;
  for (int i = 0; i < n; i++) k += i == 0 || root[i] != root[i - 1];
  return k;
}

bool smcc_run_pool(SmcState *s, Diag *d) {
  int N = s->N;
  uint64_t seed = rng_u64(&s->rng);
  pc_run_start(s->pcr, seed);
  for (int i = 0; i < N; i++) {
    s->eve[i] = i;
    s->lw[i] = 0;
  }
  s->pc_done = false;
  s->pc_events = 0;
  double logz = 0;
  int stages = 1;
  long events = 0;
  double *base = s->moves_on ? gc_alloc_atomic(sizeof(double) * (size_t)N) : NULL;
  for (;;) {
    int alive = 0;
    if (base) memcpy(base, s->lw, sizeof(double) * (size_t)N);
    if (!smcc_round(s, &alive, d)) return false;
    events++;
    engine_progress(&s->o, s->chain, events, s->ev.nruns ? s->events_max + 1 : 0, "event");
    if (base && !smc_temper(s, base, &logz, &stages, d)) return false;
    int w = smc_weigh(s, events, alive, &logz, d);
    if (w == SMC_FAILED) return false;
    if (w == SMC_FINISHED) break;
    if (w == SMC_RESAMPLE) {
      if (!(s->moves_on ? smcc_resample_move(s, 1, d) : smcc_resample(s, d))) return false;
      stages++;
    }
  }
  if (s->split && !smcm_gather(s, d)) return false;
  if (events - 1 > s->events_max) s->events_max = events - 1; /* the last round only finished */
  s->run_logz = logz;
  evidence_add(&s->ev, logz, N, s->w, s->eve, stages - 1);
  smc_finish(s, smcc_distinct(s));
  return true;
}

void smcc_draw(SmcState *s, int i, Draw *out) {
  bool dead = pc_dead(s->pcr, i);
  int j = dead ? s->heavy : i; /* a killed particle shows the heaviest one's values */
  out->outputs = pc_outputs(s->pcr, j);
  out->latents = pc_latents(s->pcr, j, &out->nlatents);
  out->lp = pc_logprior(s->pcr, j) + pc_loglik(s->pcr, j);
  out->log_weight = s->w[i] > 0 && !dead ? s->run_logz + log(s->N * s->w[i]) : -INFINITY;
  out->stats[0] = out->log_weight;
}

/* ---- resample-move ---- */

/* The population scales (smc_scales) from the kept choices. */
static void smcc_scales(SmcState *s) {
  SmcMoves *m = s->cm;
  PcRun *r = s->pcr;
  int K = pc_nchoices(r);
  s->nscale = 0;
  for (int i = 0; i < s->N; i++) {
    if (!(s->w[i] > 0) || pc_dead(r, i)) continue;
    for (int k = 0; k < K && k < m->nmeta; k++)
      smc_scale_add(s, &m->meta[k], val_real(pc_choice_vals(r, k)[i]), s->w[i]);
  }
  smc_scales_end(s);
}

static bool smcc_propose(void *ctx, int i, const DistCall *dc, Value old, Rng *rng, Value *out,
                         double *lq, char *err, size_t errsz) {
  SmcMoves *m = ctx;
  return mh_site_propose(&m->kern[i], dc, old, rng, out, lq, err, errsz);
}

static void smcc_replay_fn(void *ctx, int worker, int lo, int hi) {
  SmcState *s = ctx;
  pc_exec(s->cm->mv, worker, lo, hi, s->cm->inc, s->cm->perr);
}

/* Replay the particles marked CM_GO up to the population's event, the stop
 * event counting beta times (none after the program finished), each from
 * its stream m->rng[i], with the values rx, block choices blk and targets. */
static bool smcc_replay(SmcState *s, double beta, const uint8_t *blk, const int *target, Diag *d) {
  SmcMoves *m = s->cm;
  PcRun *mv = m->mv;
  int N = s->N;
  pc_replay_moved(mv, m->rx, blk, target, smcc_propose, m);
  Rng *rr = pc_rngs(mv);
  memcpy(rr, m->rng, sizeof(Rng) * (size_t)N);
  for (int i = 0; i < N; i++) {
    m->perr[i] = NULL;
    if (!(m->state[i] & CM_GO)) pc_drop(mv, i);
  }
  for (long e = 1;; e++) {
    int more = pc_record(mv, d);
    if (more < 0) return false;
    bool stop = !s->pc_done && e == s->pc_events;
    if (stop && beta != 1) pc_set_event_scale(mv, beta);
    pool_run(s->pool, N, SMC_GRAIN, smcc_replay_fn, s);
    if (!more || stop) break;
  }
  memcpy(m->rng, rr, sizeof(Rng) * (size_t)N);
  return true;
}

/* Particle i's replay accepted: its columns, choices, trace scores and
 * latest event's density from the replay. */
static void smcc_accept(SmcState *s, int i) {
  SmcMoves *m = s->cm;
  pc_take_moved(s->pcr, m->mv, i);
  m->prior[i] = pc_logpriors(m->mv)[i];
  m->lik[i] = pc_logliks(m->mv)[i];
  s->last_inc[i] = s->pc_done ? 0 : m->inc[i];
  m->changed[i] = 1;
}

/* One round: every particle's block move of its static parameters (one
 * replay of the population), then its single-site move (another), each as
 * smc_block_move and mh_mover_move make them. */
static bool smcc_round_moves(SmcState *s, double beta, Diag *d) {
  SmcMoves *m = s->cm;
  PcRun *r = s->pcr;
  int N = s->N, K = pc_nchoices(r);
  bool any = false;
  /* the block proposals */
  long elems = 0;
  for (int k = 0; k < K; k++) {
    m->blk[k] = smc_block_scale(s, &m->meta[k]) != NULL;
    elems += m->blk[k];
    m->rx[k] = m->blk[k] ? m->prop[k] : pc_choice_vals(r, k);
  }
  double f = elems ? s->lambda * 2.38 / sqrt((double)elems) : 0;
  for (int i = 0; i < N; i++) {
    m->state[i] &= SMC_MV_MOVED; /* eligible this round (smcc_moves) */
    s->mv_rec[i].addr = NULL;
    if (!m->state[i]) continue;
    rng_seed(&m->rng[i], s->mv_seed, (uint64_t)i);
    if (elems == 0) continue;
    m->state[i] |= SMC_MV_TRIED;
    double lq = 0;
    for (int k = 0; k < K; k++) {
      if (!m->blk[k]) continue;
      const TraceChoice *c = &m->meta[k];
      const SmcScale *e = smc_block_scale(s, c);
      double x = pc_choice_vals(r, k)[i], u, xn;
      if (!tf_unconstrain(c->con, c->lower, c->upper, 1, &x, &u)) {
        m->state[i] |= CM_REJECTED;
        break;
      }
      double lj_old = tf_constrain(c->con, c->lower, c->upper, 1, &u, &xn);
      u += f * e->sd[0] * rng_normal(&m->rng[i]);
      double lj_new = tf_constrain(c->con, c->lower, c->upper, 1, &u, &xn);
      m->prop[k][i] = xn;
      lq += lj_new - lj_old;
    }
    m->bq[i] = lq;
    if (!(m->state[i] & CM_REJECTED)) {
      m->state[i] |= CM_GO;
      any = true;
    }
  }
  if (any) {
    if (!smcc_replay(s, beta, m->blk, NULL, d)) return false;
    for (int i = 0; i < N; i++) {
      if (!(m->state[i] & CM_GO)) continue;
      double a = -INFINITY;
      if (!pc_dead(m->mv, i)) { /* a run the program rejects is a rejected move */
        double l1 = pc_logliks(m->mv)[i] + pc_logpriors(m->mv)[i];
        /* every block choice seen (fixed structure); a fresh draw, inside the
           old choice's fixed support, would be reused by the reverse move */
        if (l1 > -INFINITY && pc_nfresh(m->mv, i) == 0) {
          double stale = 0, fresh = 0;
          a = l1 - (m->lik[i] + m->prior[i]) + m->bq[i] + stale - fresh;
          if (isnan(a)) a = -INFINITY;
        }
      }
      if (log(rng_uniform(&m->rng[i])) < a) {
        smcc_accept(s, i);
        m->state[i] |= SMC_MV_BLOCK;
      }
    }
  }
  /* the single-site moves: a site of all the choices, its kernel */
  for (int k = 0; k < K; k++) m->rx[k] = pc_choice_vals(r, k);
  any = false;
  for (int i = 0; i < N; i++) {
    m->state[i] &= (uint8_t)~(CM_GO | CM_REJECTED);
    m->target[i] = -1;
    if (!(m->state[i] & SMC_MV_MOVED)) continue;
    int k = (int)rng_int(&m->rng[i], 0, K - 1);
    mh_mover_site_kernel(s->mover, &m->rng[i], &m->meta[k], 0, &m->kern[i]);
    m->target[i] = k;
    m->state[i] |= CM_GO;
    any = true;
  }
  if (!any) return true;
  if (!smcc_replay(s, beta, NULL, m->target, d)) return false;
  for (int i = 0; i < N; i++) {
    if (!(m->state[i] & CM_GO)) continue;
    double a = -INFINITY;
    if (!pc_dead(m->mv, i)) {
      double l1 = pc_logliks(m->mv)[i] + pc_logpriors(m->mv)[i];
      if (l1 > -INFINITY && pc_nfresh(m->mv, i) == 0) { /* trace_mh_log_accept */
        double stale = 0, fresh = 0;
        a = l1 - (m->lik[i] + m->prior[i]) + pc_lq(m->mv, i) + log((double)K) - log((double)K) +
            stale - fresh;
        if (isnan(a)) a = -INFINITY;
      }
    }
    if (log(rng_uniform(&m->rng[i])) < a) {
      smcc_accept(s, i);
      m->state[i] |= SMC_MV_SITE;
    }
    if (mh_site_adapts(&m->kern[i])) {
      s->mv_rec[i].addr = m->meta[m->target[i]].addr;
      s->mv_rec[i].local = 0;
      s->mv_rec[i].accept_prob = a >= 0 ? 1 : exp(a);
    }
  }
  return true;
}

/* smc_moves on compiled particles: the same rounds, counts and adaptation. */
static bool smcc_moves(SmcState *s, double beta, Diag *d) {
  SmcMoves *m = s->cm;
  PcRun *r = s->pcr;
  int N = s->N, K = pc_nchoices(r);
  if (K > m->nmeta) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "smc: compiled moves: %d choices, the program made %d", K, m->nmeta);
    return false;
  }
  for (int k = 0; k < K; k++)
    if (strcmp(pc_choice(r, k)->addr, m->meta[k].addr)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "smc: compiled moves: choice %d is '%s', not '%s'", k,
                 pc_choice(r, k)->addr, m->meta[k].addr);
      return false;
    }
  if (K > m->kcap) {
    int cap = K + K / 2 + 8;
    m->prop = gc_alloc(sizeof(double *) * (size_t)cap);
    m->rx = gc_alloc(sizeof(double *) * (size_t)cap);
    m->blk = gc_alloc_atomic((size_t)cap);
    for (int k = 0; k < cap; k++) m->prop[k] = NULL;
    m->kcap = cap;
  }
  for (int k = 0; k < K; k++) {
    m->blk[k] = smc_block_scale(s, &m->meta[k]) != NULL;
    if (m->blk[k] && !m->prop[k]) m->prop[k] = gc_alloc_atomic(sizeof(double) * (size_t)N);
  }
  /* each particle's trace as smc_trace_at scores it */
  for (int i = 0; i < N; i++) {
    m->changed[i] = 0;
    m->state[i] = 0;
    if (pc_dead(r, i) || K == 0) continue;
    double lp = 0;
    for (int k = 0; k < K; k++) lp += pc_choice_lps(r, k)[i];
    m->prior[i] = lp;
    m->lik[i] = pc_loglik(r, i);
    if (beta != 1 && !s->pc_done) m->lik[i] = pc_loglik(r, i) - (1 - beta) * s->last_inc[i];
  }
  mh_mover_set_stop_scale(s->mover, beta);
  s->mv_beta = beta;
  double jumps = 0;
  for (int rd = 0;; rd++) {
    if (s->rejuvenate > 0 ? rd >= s->rejuvenate : rd >= SMC_MAX_ROUNDS || jumps >= SMC_JUMPS)
      break;
    s->mv_seed = rng_u64(&s->rng);
    for (int i = 0; i < N; i++)
      m->state[i] = !pc_dead(r, i) && K > 0 && m->lik[i] + m->prior[i] > -INFINITY ? SMC_MV_MOVED : 0;
    if (!smcc_round_moves(s, beta, d)) return false;
    if (!smc_round_end(s, m->state, &jumps)) break;
  }
  uint64_t gen = pc_new_generation(r);
  double *lprior = pc_logpriors(r), *llik = pc_logliks(r);
  for (int i = 0; i < N; i++) {
    if (!m->changed[i]) continue;
    lprior[i] = m->prior[i];
    llik[i] = beta == 1 || s->pc_done ? m->lik[i] : m->lik[i] + (1 - beta) * s->last_inc[i];
    pc_moved_root(r, i, gen);
  }
  s->move_phases++;
  return true;
}

bool smcc_resample_move(SmcState *s, double beta, Diag *d) {
  if (s->moves_on) smcc_scales(s);
  if (!smcc_resample(s, d)) return false;
  return !s->moves_on || smcc_moves(s, beta, d);
}
