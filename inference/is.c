/* is.c — importance sampling with the prior as proposal (likelihood weighting):
 * each step is one forward run, weighted by the likelihood of the observations
 * and factors it met.  Works for every program and gives an unbiased evidence
 * estimate; efficient only when the prior is not much wider than the posterior. */
#include "engine.h"
#include "trace.h"

typedef struct IsState {
  const Interp *in;
  int chain;
  Rng rng;
} IsState;

static void *is_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  IsState *s = gc_alloc(sizeof(IsState));
  s->in = in;
  s->chain = chain;
  rng_seed(&s->rng, o->seed, (uint64_t)chain);
  return s;
}

static bool is_step(void *state, bool warmup, Draw *out, Diag *d) {
  IsState *s = state;
  Trace *t = prior_run(s->in, &s->rng, s->chain, out, d);
  if (!t) return false;
  out->lp = trace_logjoint(t);
  out->log_weight = t->loglik;
  out->stats[0] = t->loglik;
  return true;
}

static void is_free(void *state) { (void)state; /* GC memory */ }

const EngineVT engine_is = {
    .name = "is",
    .summary = "importance sampling from the prior (likelihood weighting), with log evidence",
    .nstats = 1,
    .stat_names = {"log_weight__"},
    .weighted = true,
    .uses_warmup = false,
    .traits = ENGINE_DISCRETE | ENGINE_DYNAMIC,
    .init = is_init,
    .step = is_step,
    .free = is_free,
};
