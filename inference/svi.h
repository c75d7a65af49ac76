/* svi.h — the engine "svi" (svi.c): stochastic variational inference with
 * the program's guide block; and, for tests, its stochastic ELBO gradient. */
#ifndef PPL_SVI_H
#define PPL_SVI_H

#include "../stdlib/safetensors.h"
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

/* ---- training once and drawing from the result (`ppl train`, amortized) ---- */

/* Called after each training step with the step (from 1) and its ELBO
 * estimate (of the step's minibatch, scaled to the whole data). */
typedef void (*SviTick)(void *ctx, const Svi *s, long step, double elbo);

/* Train s as the engine svi does (--iter steps, or until --tol-rel-obj),
 * calling tick (NULL: none) after each step; stops before the next step when
 * the run's interrupt is set (EngineOpts.interrupt), keeping what it has.
 * Then the ELBO of the params from --elbo-samples draws over whole plates. */
bool svi_fit(Svi *s, SviTick tick, void *ctx, Diag *d);

/* What the fit did; the data plate is the largest subsampled plate of the
 * last step (false, plate_size 0: none). */
typedef struct SviFitInfo {
  long steps;
  double elbo;
  bool converged, interrupted;
  double seconds;
  int64_t plate_size, batch;
} SviFitInfo;
bool svi_fit_info(const Svi *s, SviFitInfo *out);
/* The data plate of s's last run (after svi_prepare: of its check run), its
 * size and batch; false without a subsampled plate. */
bool svi_data_plate_of(Svi *s, int64_t *size, int64_t *batch);

/* Every param at its fitted (constrained) value into the file `path`
 * (safetensors, kind ST_KIND_SVI, this program's hash). */
bool svi_write_params(Svi *s, const char *path, Diag *d);

/* A ppl parameter file trained for program p, decoded; messages start with
 * opt ("--load: ").  NULL + d: unreadable (DIAG_IO); truncated, malformed,
 * not a ppl file, or another program's (DIAG_DATA). */
StFile *svi_read_params(const char *path, const IrProgram *p, const char *opt, Diag *d);

/* The params of f (read from path, of kind svi, for this program) as the
 * point s starts from: `ppl train --load` resumes a training.  False + d
 * (DIAG_DATA, messages starting with opt): another kind, a tensor missing,
 * of another shape, or outside its param's bounds. */
bool svi_set_params(Svi *s, const StFile *f, const char *path, const char *opt, Diag *d);
/* The optimiser's moments and step count from f, where svi_write_params kept
 * them (a file without them leaves the optimiser fresh), so that a resumed
 * training run (ppl train --load) goes on as if it had not stopped. */
bool svi_resume_optim(Svi *s, const StFile *f, const char *path, Diag *d);

/* A chain of svi with the params of f (read from path, of kind svi) and no
 * optimisation: the engine amortized's guide form, which shares engine_svi's
 * step, free and report hooks. */
void *svi_init_loaded(const Interp *in, const EngineOpts *o, int chain, const StFile *f,
                      const char *path, Diag *d);

#endif
