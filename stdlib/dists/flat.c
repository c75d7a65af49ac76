/* flat.c — flat(): the improper uniform density on the reals (or on the
 * declared bounds), Stan's implicit prior for a parameter without one:
 * `real beta ~ flat();`, `real<lower=0> sigma ~ flat();`.  The log density is
 * 0 everywhere: declared bounds restrict the value but do NOT renormalise it
 * (it has no finite normaliser), and it has no sampler — dist.c reports
 * "flat: an improper prior cannot be sampled; ..." for draws and engines
 * initialise such latents with dist_call_init_value.  Evidence estimates of a
 * model with a flat prior are meaningless: the prior is not a distribution. */
#include <math.h>

#include "../dist.h"

static double flat_lpdf(double x, const double *p) {
  (void)p;
  return isnan(x) ? NAN : 0.0;
}

/* never called: dist.c refuses to draw from an improper family */
static double flat_rng(Rng *r, const double *p) {
  (void)r, (void)p;
  return NAN;
}

static void flat_grad(double x, const double *p, double *dx, double *dp) {
  (void)x, (void)p, (void)dp;
  *dx = 0.0;
}

const DistFamily dist_flat = {
    .name = "flat",
    .nparams = 0,
    .vtype = {TY_REAL, 0},
    .lpdf1 = flat_lpdf,
    .rng1 = flat_rng,
    .grad1 = flat_grad,
    .improper = true,
};
