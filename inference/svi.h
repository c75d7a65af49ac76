/* svi.h — the engine "svi" (svi.c): stochastic variational inference with
 * the program's guide block; and, for tests, its stochastic ELBO gradient. */
#ifndef PPL_SVI_H
#define PPL_SVI_H

#include "engine.h"

extern const EngineVT engine_svi;

/* One chain's fit before training: the guide and the model checked against
 * each other, every param found (NULL + d on error). */
typedef struct Svi Svi;
Svi *svi_prepare(const Interp *in, const EngineOpts *o, int chain, Diag *d);
/* The params' unconstrained reals, in the order the runs first met them
 * (guide first): svi_dim of them, writable. */
size_t svi_dim(const Svi *s);
double *svi_values(Svi *s);
/* A --grad-samples estimate of the ELBO and its gradient with respect to
 * svi_values, from noise seeded by seed (the same seed, the same noise);
 * subsample false runs every plate whole. */
bool svi_gradient(Svi *s, uint64_t seed, bool subsample, double *elbo, double *grad, Diag *d);

#endif
