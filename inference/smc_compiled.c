/* smc_compiled.c — engine smc on compiled particle steps (ir/particle.h).
 *
 * When a program's control flow is the same in every particle (state-space
 * models, HMMs, most time series), its population advances as columns, one
 * per latent-dependent register, instead of as N suspended executions.  This
 * file is smc_run_pool's twin for such runs: the same rounds, weights,
 * resampling, evidence and draws, and the same calls on the chain's Rng in
 * the same order, so that a compiled run gives the interpreted run's bits
 * (tests/inference/test_smc_compiled.c).  Resample-move (static parameters,
 * --rejuvenate) replays traces through the interpreter, so runs with moves
 * stay interpreted, and so does everything `--no-jit` asks to interpret.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "smc_impl.h"

void smcc_setup(SmcState *s) {
  s->pcr = NULL;
  if (s->moves_on) {
    s->pc_why = "resample-move: the moves replay traces";
    return;
  }
  if (s->o.no_jit) {
    s->pc_why = "--no-jit";
    return;
  }
  const PcProg *pc = pc_compile(s->in, &s->pc_why);
  if (!pc) return;
  s->pcr = pc_run_new(pc, s->N, s->workers);
  s->eve = gc_alloc_atomic(sizeof(int) * (size_t)s->N);
  s->eve2 = gc_alloc_atomic(sizeof(int) * (size_t)s->N);
  smcm_setup(s);
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
  return true;
}

static bool smcc_resample(SmcState *s, Diag *d) {
  int N = s->N;
  if (!s->split) resample(s->scheme, N, s->w, &s->rng, s->anc);
  else if (!smcm_ancestors(s, d)) return false;
  s->fork_seed = rng_u64(&s->rng);
  if (s->split && !smcm_exchange(s, d)) return false;
  pc_resample_range(s->pcr, s->anc, s->fork_seed, s->mlo, s->mhi); /* all N when not split */
  for (int j = 0; j < N; j++) s->eve2[j] = s->eve[s->anc[j]];
  int *t = s->eve;
  s->eve = s->eve2;
  s->eve2 = t;
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
  double logz = 0;
  int stages = 1;
  long events = 0;
  for (;;) {
    int alive = 0;
    if (!smcc_round(s, &alive, d)) return false;
    events++;
    engine_progress(&s->o, s->chain, events, s->ev.nruns ? s->events_max + 1 : 0, "event");
    int w = smc_weigh(s, events, alive, &logz, d);
    if (w == SMC_FAILED) return false;
    if (w == SMC_FINISHED) break;
    if (w == SMC_RESAMPLE) {
      if (!smcc_resample(s, d)) return false;
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
