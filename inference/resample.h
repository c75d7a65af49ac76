/* resample.h — what the particle engines (smc, pgibbs) share: the resampling
 * schemes, weight helpers, and the worker pool that advances particles in
 * parallel threads.
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

#include "options.h"

struct EngineOpts;

/* The options of every particle engine (particles, ess-threshold); smc and
 * pgibbs list this table first in their EngineVT.options. */
extern const OptSpec particle_options[];

/* The `resample` option of smc and steer: a scheme, or never (no
 * resampling: importance sampling with the same code). */
extern const OptSpec resample_options[];

/* The schemes' names in RESAMPLE_* order, NULL-terminated. */
extern const char *const resample_names[];
/* The scheme named s ("systematic", ...) as RESAMPLE_* (engine.h); -1 if none. */
int resample_scheme(const char *s);
const char *resample_name(int scheme);

/* Normalise log weights lw[0..n) in place into w[0..n) (sum 1); returns the
 * log of the mean of exp(lw), i.e. the log normalising constant increment.
 * All -inf gives -inf and uniform w. */
double resample_normalise(int n, const double *lw, double *w);
/* Effective sample size 1 / sum w_i^2 of normalised weights. */
double resample_ess(int n, const double *w);

/* The normaliser in fixed blocks, so that ranks holding slices of a
 * population combine partial results into the single process's bits (smc
 * under MPI, docs/scaling.md): a population of n has resample_nblocks(n)
 * blocks whose bounds depend on n only (block b is [resample_block_lo(n, b),
 * resample_block_lo(n, b + 1)), each starting at a multiple of 8); each block
 * is summarised by its (max, sum of exp(lw - max), sum of its squares), and
 * the summaries are combined in block order whoever computed them. */
typedef struct WeightBlock {
  double max, sum, sq;
} WeightBlock;
int resample_nblocks(int n);
int resample_block_lo(int n, int b);
/* The summary of lw[lo..hi) (NaN counts as weight 0); e, unless NULL, gets
 * e[i] = exp(lw[i] - max) for resample_weights. */
void resample_block(const double *lw, int lo, int hi, WeightBlock *out, double *e);
/* Blocks b[0..nb) of a population of n combined in order: the maximum *mx and
 * the sum *sum of exp(lw - mx); returns the log normalising constant increment
 * (as resample_normalise) and sets *ess (1 / sum w_i^2).  All weights zero:
 * -inf, *sum = 0 and *ess = n (uniform weights). */
double resample_combine(int n, int nb, const WeightBlock *b, double *mx, double *sum, double *ess);
/* The normalised weights w[i] = exp(lw[i] - max_b) * (exp(max_b - mx) / sum)
 * of the blocks [b0, b1) (uniform when sum is 0); lw NULL: w[i] already holds
 * resample_block's exp(lw[i] - max_b). */
void resample_weights(int n, int b0, int b1, const WeightBlock *blk, double mx, double sum,
                      const double *lw, double *w);
/* All of the above for the whole population in one process: the blocked
 * twin of resample_normalise + resample_ess. */
double resample_normalise_blocked(int n, const double *lw, double *w, double *ess);

/* Systematic and stratified resampling in the same blocks, which resample()
 * uses for them, so that a rank holding blocks [b0, b1) of the weights finds
 * its ancestors' offspring alone.  The points are u[k] = (k + v) / n
 * (systematic: one v; stratified: u[0..n) drawn) and the cumulative weight at
 * block b's start is the sum of the block totals T[0..b) in order (T[b]: the
 * sum of w over block b in index order).  Offspring k belongs to the block in
 * whose [start, next start) u[k] falls and, inside it, to the first particle
 * whose running cumulative weight passes u[k]. */
bool resample_blocked(int scheme); /* systematic or stratified */
/* The scheme's points from r (the calls resample() makes): *v, or u[0..n). */
void resample_points(int scheme, int n, Rng *r, double *u, double *v);
/* T[b] for the blocks b in [b0, b1). */
void resample_block_totals(int n, const double *w, int b0, int b1, double *T);
/* The first offspring of block b (n for b = resample_nblocks(n)); u NULL for
 * systematic points. */
int resample_offspring_lo(int n, const double *T, const double *u, double v, int b);
/* anc[k] for the offspring of blocks [b0, b1) (only w over those blocks is read). */
void resample_blocks_anc(int n, const double *w, const double *T, const double *u, double v,
                         int b0, int b1, int *anc);

/* Fill anc[0..n) with ancestor indices drawn by `scheme` from the normalised
 * weights w[0..n). False only for an unknown scheme or n < 1. */
bool resample(int scheme, int n, const double *w, Rng *r, int *anc);

/* The log evidence of a particle engine over its independent runs (smc,
 * steer): the mean of the runs' Z, kept as a maximum and a sum of exp(log Z
 * - max) so that no run overflows, and its standard error from each run's
 * relative variance estimated from its genealogy (Lee & Whiteley 2018). */
typedef struct RunEvidence {
  int nruns;
  double logz_max, logz_sum, relvar_sum;
} RunEvidence;
void evidence_init(RunEvidence *e);
/* A run with log Z logz whose n final particles have normalised weights w
 * and initial ancestors eve[0..n), after `resamplings` resampling stages. */
void evidence_add(RunEvidence *e, double logz, int n, const double *w, const int *eve,
                  int resamplings);
/* log of the mean Z, and its standard error (relative to Z); false before
 * the first run. */
bool evidence_log(const RunEvidence *e, double *est);
bool evidence_se(const RunEvidence *e, double *se);

/* --psis-resample of the variational engines (advi, amortized): order[0..n)
 * gets n indices of draws resampled (systematic) by the Pareto-smoothed
 * weights of their log weights lw[0..n), in a random order so that the
 * duplicates are not neighbours. */
void resample_psis_order(int n, const double *lw, Rng *r, int *order);

/* ---- parallel rounds ----
 *
 * A round applies fn to every index of [0, n) in chunks, spread over the
 * pool's workers (the calling thread is worker 0).  Results must not depend
 * on which worker runs which chunk: fn may write only to the slots of its
 * indices and to per-worker scratch (worker = 0..workers-1), so a round gives
 * the same bytes for any number of workers.  Worker threads live from
 * pool_new to pool_free and are registered with the collector. */
typedef struct Pool Pool;
typedef void (*PoolFn)(void *ctx, int worker, int lo, int hi);

/* How many particle workers one chain gets from the run's thread budget
 * (o->threads, 0 = the number of CPUs): chains run in min(threads, chains)
 * threads first, and each chain's particles get max(1, threads / chains). */
int pool_particle_workers(const struct EngineOpts *o);
/* A pool of `workers` workers (workers - 1 threads are started; if a thread
 * cannot be started the pool simply has fewer).  Never NULL. */
Pool *pool_new(int workers);
int pool_workers(const Pool *p);
/* Items cheaper than a thread wake-up are not worth spreading: with fewer
 * than 2 * grain items the caller runs them all itself (worker 0). */
void pool_run(Pool *p, int n, int grain, PoolFn fn, void *ctx);
/* Stops and joins the threads; NULL is allowed. */
void pool_free(Pool *p);

#endif
