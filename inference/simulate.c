/* simulate.c — the prior-predictive simulator (see simulate.h): the trace
 * handler with no previous trace draws the latents, and its simulate() draws
 * the simulated data, so this file only collects the results. */
#include "simulate.h"

bool sim_prior_predictive(const Interp *in, Rng *rng, uint64_t stream, SimDraw *out, Diag *d) {
  TraceHandler th;
  trace_handler_init(&th, rng, NULL, NULL, NULL, NULL);
  InterpState *st = NULL;
  Trace *t = trace_run(in, &th, rng_u64(rng), stream, true, &st, d);
  if (!t) return false;
  int n = interp_simulated_count(in);
  out->trace = t;
  out->ndata = n;
  out->names = gc_alloc(sizeof(char *) * (size_t)(n + 1));
  out->data = gc_alloc(sizeof(Value) * (size_t)(n + 1));
  for (int i = 0; i < n; i++) {
    out->names[i] = interp_simulated_name(in, i);
    out->data[i] = interp_simulated_value(st, i);
  }
  out->outputs = interp_outputs(st);
  out->logjoint = trace_logjoint(t);
  return true;
}
