/* prior.c — the prior engine: every step is one independent run of the whole
 * program with every latent drawn from its prior (forward simulation).  Used for
 * programs without latents (pure simulation, generated quantities only) and for
 * prior predictive checks.  Observations are scored but do not weight draws. */
#include "engine.h"
#include "trace.h"

typedef struct PriorState {
  const Interp *in;
  int chain;
  Rng rng;
} PriorState;

static void *prior_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  PriorState *s = gc_alloc(sizeof(PriorState));
  s->in = in;
  s->chain = chain;
  rng_seed(&s->rng, o->seed, (uint64_t)chain);
  return s;
}

Trace *prior_run(const Interp *in, Rng *rng, int chain, Draw *out, Diag *d) {
  TraceHandler th;
  trace_handler_init(&th, rng, NULL, NULL, NULL, NULL);
  InterpState *st = NULL;
  Trace *t = trace_run(in, &th, rng_u64(rng), (uint64_t)chain, true, &st, d);
  if (!t) return NULL;
  engine_draw_outputs(out, st);
  out->log_weight = 0;
  return t;
}

static bool prior_step(void *state, bool warmup, Draw *out, Diag *d) {
  PriorState *s = state;
  Trace *t = prior_run(s->in, &s->rng, s->chain, out, d);
  if (!t) return false;
  out->lp = t->logprior;
  return true;
}

static void prior_free(void *state) { (void)state; /* GC memory */ }

const EngineVT engine_prior = {
    .name = "prior",
    .summary = "independent forward runs with every latent drawn from its prior",
    .nstats = 0,
    .weighted = false,
    .uses_warmup = false,
    .traits = ENGINE_DISCRETE | ENGINE_DYNAMIC,
    .init = prior_init,
    .step = prior_step,
    .free = prior_free,
};
