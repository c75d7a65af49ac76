/* advi.h — the engine "advi" (advi.c): Stan's ADVI over a family of vi.h,
 * and the optimisation options variational engines share. */
#ifndef PPL_ADVI_H
#define PPL_ADVI_H

#include "engine.h"

/* iter, grad-samples, elbo-samples, eval-elbo, tol-rel-obj, save-params,
 * load-params: the table advi and svi list first. */
extern const OptSpec vi_options[];
/* psis-resample: what the engines that draw from a fitted q with log weights
 * (advi, svi, amortized) share. */
extern const OptSpec vi_draw_options[];

extern const EngineVT engine_advi;

#endif
