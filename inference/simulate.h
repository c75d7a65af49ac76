/* simulate.h — draws of (latents, data) from a program's prior predictive, made
 * by running the program itself: the training pairs of amortized inference.
 *
 * The Interp is loaded with interp_load_data_sim, naming the data variables to
 * simulate; every latent is drawn from its prior and every observation of a
 * simulated variable from its distribution given the latents drawn before it,
 * so one run is one exact draw from the joint p(latents, data).
 */
#ifndef PPL_SIMULATE_H
#define PPL_SIMULATE_H

#include "trace.h"

typedef struct SimDraw {
  Trace *trace;       /* the latent choices: addresses, values, log densities */
  int ndata;
  const char **names; /* the simulated data variables, in interp_load_data_sim order */
  Value *data;        /* their values in this draw */
  Value *outputs;     /* interp_outputs (model variables, generated quantities) */
  double logjoint;    /* log p(latents, data): the latents' and all observations' densities */
} SimDraw;

/* One draw; rng gives the choices and the run's seed, stream the run's *_rng
 * stream.  False + d when the program fails. */
bool sim_prior_predictive(const Interp *in, Rng *rng, uint64_t stream, SimDraw *out, Diag *d);

#endif
