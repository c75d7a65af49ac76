/* psis.h — the Pareto shape k-hat of importance weights (Vehtari, Simpson,
 * Gelman, Yao and Gabry 2024, "Pareto smoothed importance sampling"): how
 * heavy the weights' right tail is, and so whether the weighted estimates
 * and the evidence can be trusted.  Below 0.5 the weights' variance is
 * finite; from 0.5 to 0.7 estimates converge slowly; above 0.7 they are not
 * reliable at any practical number of draws. */
#ifndef PPL_PSIS_H
#define PPL_PSIS_H

#include <stdbool.h>

#define PSIS_K_NOTE 0.5   /* from here: slow convergence, a note */
#define PSIS_K_WARN 0.7   /* above: unreliable, a warning */

/* k-hat of n log weights (any scale; -inf are zero weights): a generalized
 * Pareto fitted to the largest M = ceil(min(n/5, 3 sqrt(n))) weights above
 * the next one, by Zhang and Stephens' (2009) posterior-mean estimator with
 * the weakly informative prior of PSIS (k shrunk towards 0.5 as 10 extra
 * observations).  NaN when there are fewer than 5 tail weights or the tail
 * is flat (all equal: no tail at all). */
double psis_k(int n, const double *lw);

/* Pareto smoothing of n log weights in place (PSIS): the largest M (as
 * psis_k) are replaced by the expected order statistics of the generalized
 * Pareto fitted to them, none above the largest raw weight; the others are
 * unchanged.  False (lw unchanged) when psis_k would be NaN. */
bool psis_smooth(int n, double *lw);

/* Zhang and Stephens' estimate of the shape k of a generalized Pareto from
 * n > 0 exceedances x (sorted ascending, positive), with the weakly
 * informative prior when wip; the sign convention of PSIS (k > 0: heavy
 * tail). *sigma gets the scale if not NULL. */
double psis_gpd_fit(int n, const double *x, int wip, double *sigma);

#endif
