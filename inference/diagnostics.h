/* diagnostics.h — posterior summaries and MCMC diagnostics as R's posterior
 * package and stansummary compute them (Vehtari, Gelman, Simpson, Carpenter,
 * Bürkner 2021): rank-normalised split R-hat (max with folded), bulk and tail
 * ESS, MCSE of the mean, quantiles; and their importance-weighted forms. */
#ifndef PPL_DIAGNOSTICS_H
#define PPL_DIAGNOSTICS_H

#include <stdbool.h>
#include <stddef.h>

/* x[c][i]: chain c (0..m-1), draw i (0..n-1). All chains have n draws. */
double diag_ess_basic(int m, int n, const double *const *x); /* Geyer initial monotone sequence */
double diag_ess_bulk(int m, int n, const double *const *x);
double diag_ess_tail(int m, int n, const double *const *x);
double diag_rhat(int m, int n, const double *const *x);      /* NaN when m*n < 4 */
/* Quantile with type-7 interpolation (R's default, as posterior uses). */
double diag_quantile(int n, const double *x, double p);

typedef struct SummaryStats {
  double mean, sd, mcse, q5, q50, q95, ess_bulk, ess_tail, rhat;
} SummaryStats;

/* Unweighted: all of SummaryStats (rhat NaN with one chain -> reported null). */
void diag_summarise(int m, int n, const double *const *x, SummaryStats *s);
/* The normal scores Phi^-1((r - 3/8) / (n + 1/4)) of the ranks r = 1..n that
 * rank normalisation gives the draws of a column without ties: the same for
 * every column of n draws, so a summary of many columns computes them once. */
double *diag_rank_scores(size_t n);
/* Only the mean, sd and quantiles (the others NaN): for columns whose MCSE,
 * ESS and R-hat mean nothing (summary_is_tuning). */
void diag_summarise_moments(int m, int n, const double *const *x, SummaryStats *s);
/* diag_summarise with the scores of m * n ranks (or NULL): the same bits. */
void diag_summarise_scores(int m, int n, const double *const *x, const double *scores,
                           SummaryStats *s);
/* Weighted (log weights lw, same layout): self-normalised mean, sd, weighted
 * quantiles; each ESS is the smaller of (a) Kish's ESS over the column's
 * distinct values (copies of one particle count once; columns of whole
 * numbers are not grouped) and (b) the bulk / tail ESS of the draws
 * importance-resampled chain by chain (systematic, deterministic), which
 * sees autocorrelation, adjacent copies and chains that disagree;
 * mcse = sd / sqrt(ess_bulk); rhat NaN. docs/output.md has the details. */
void diag_summarise_weighted(int m, int n, const double *const *x,
                             const double *const *lw, SummaryStats *s);
/* Kish's effective sample size (sum w)^2 / sum w^2 of all m*n weights; NaN
 * when no weight is positive. */
double diag_kish_ess(int m, int n, const double *const *lw);
/* Log evidence estimate log mean exp(lw) over all m*n weights and its standard
 * error (delta method: sd(w) / (sqrt(N) mean(w)) computed stably). */
void diag_log_evidence(int m, int n, const double *const *lw, double *est, double *se);
/* The log evidence of m independent runs (chains) with estimates logz[c] and,
 * if within_se is not NULL, their own standard errors (on the log scale):
 * est = log mean exp(logz); se = the largest of the SE from the spread of the
 * chains' estimates, sd(Z_c) / (sqrt(m) mean Z) (m > 1), the spread of their
 * logs, sd(log Z_c) / sqrt(m) (m > 1; the delta method's tops out near 1
 * when one chain dominates), and the SE the runs' own errors imply,
 * sqrt(sum Z_c^2 se_c^2) / (m mean Z).  A run's own SE cannot see a mode it
 * never found; the spread can. */
void diag_evidence_combine(int m, const double *logz, const double *within_se, double *est,
                           double *se);

#endif
