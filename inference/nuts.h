/* nuts.h — the Hamiltonian samplers on a plain log density: the multinomial
 * no-U-turn sampler as Stan runs it and static HMC, each with Stan's warmup
 * (step-size search, dual averaging, windowed metric adaptation).
 *
 * The sampler core knows nothing about programs: it needs the dimension and a
 * function returning the log density and its gradient.  The engines "nuts" and
 * "hmc" (hmc.c) connect it to a program through inference/logdensity.h; tests
 * drive it directly with analytic targets. */
#ifndef PPL_NUTS_H
#define PPL_NUTS_H

#include "engine.h"

/* Log density and gradient at q.  Return false only for errors that must stop
 * the run (a bug); a point outside the support is *lp = -inf and true. */
typedef bool (*HmcDensityFn)(void *ctx, const double *q, double *lp, double *grad, Diag *d);

typedef struct HmcStats {
  double lp;          /* log density at the new state */
  double accept_stat; /* NUTS: mean Metropolis probability over the trajectory */
  double stepsize;
  int treedepth;      /* NUTS only */
  int n_leapfrog;
  bool divergent;     /* NUTS only: energy error above 1000 */
  bool capped;        /* static HMC only: int_time / stepsize exceeded the
                         2^max_depth leapfrog steps a transition may take */
  double energy;      /* Hamiltonian at the new state */
} HmcStats;

typedef struct Hmc Hmc;

/* A sampler at q0, whose log density and gradient must be finite.  Uses the
 * options metric, max-depth, adapt-delta, stepsize, stepsize-jitter and
 * int-time (hmc.c's tables, read with engine_opt_*), the starting inverse
 * metric o->metric_inv (checked against dim: DIAG_USAGE naming the file), and o->warmup (the number of warmup transitions that will be requested: the window
 * schedule depends on it).  rng is used for every random choice and must
 * outlive the sampler.  Performs Stan's initial step-size search when
 * warmup > 0 (without warmup the stepsize option is used as given, as CmdStan does).
 * NULL + d on failure. */
Hmc *hmc_new(size_t dim, HmcDensityFn fn, void *ctx, const EngineOpts *o, bool nuts, Rng *rng,
             const double *q0, Diag *d);
/* One transition.  warmup = true adapts (for the first o->warmup calls);
 * the first call with warmup = false ends the adaptation if it has not ended. */
bool hmc_transition(Hmc *h, bool warmup, HmcStats *s, Diag *d);

const double *hmc_position(const Hmc *h);
double hmc_stepsize(const Hmc *h);
/* dim (diagonal and unit) or dim * dim (dense, row-major) entries. */
const double *hmc_inv_metric(const Hmc *h);
/* "Adaptation terminated\nStep size = ...\n..." as CmdStan writes it (without
 * the "# " prefixes); finishes the adaptation if needed. */
const char *hmc_adaptation_info(Hmc *h);

/* The step size and inverse metric as CmdStan's metric file ({"stepsize",
 * "metric_type", "inv_metric"}), which --metric FILE reads back; finishes the
 * adaptation if needed. */
const char *hmc_metric_json(Hmc *h);

/* The engines built on it (hmc.c), listed by engine.c. */
extern const EngineVT engine_nuts, engine_hmc;

#endif
