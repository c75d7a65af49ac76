/* resample.h — the resampling schemes of the particle engines (smc, pgibbs).
 *
 * Each scheme turns N normalised weights into N ancestor indices such that the
 * expected number of offspring of particle i is N w_i (unbiasedness: the
 * resampled population still estimates the same expectations).  They differ in
 * the variance of the offspring counts: multinomial draws N independent
 * indices; stratified draws one uniform per stratum [k/N, (k+1)/N); systematic
 * uses a single uniform for all strata; residual keeps floor(N w_i) copies
 * deterministically and draws the rest multinomially from the residuals.
 * Ancestors come out in increasing order for every scheme. */
#ifndef PPL_RESAMPLE_H
#define PPL_RESAMPLE_H

#include <stdbool.h>

#include "../stdlib/rng.h"

/* The scheme named s ("systematic", ...) as RESAMPLE_* (engine.h); -1 if none. */
int resample_scheme(const char *s);
const char *resample_name(int scheme);

/* Normalise log weights lw[0..n) in place into w[0..n) (sum 1); returns the
 * log of the mean of exp(lw), i.e. the log normalising constant increment.
 * All -inf gives -inf and uniform w. */
double resample_normalise(int n, const double *lw, double *w);
/* Effective sample size 1 / sum w_i^2 of normalised weights. */
double resample_ess(int n, const double *w);

/* Fill anc[0..n) with ancestor indices drawn by `scheme` from the normalised
 * weights w[0..n). False only for an unknown scheme or n < 1. */
bool resample(int scheme, int n, const double *w, Rng *r, int *anc);

#endif
