/* warnings.h — the checks every run gets after sampling: R-hat, ESS, E-BFMI,
 * divergences, tree depth, collapsed weights, MH acceptance.  Each problem
 * found becomes one RunWarning with the variables it concerns and one line
 * of advice; the summary table, the summary JSON ("warnings") and the CLI
 * (also under --quiet) show them.  Thresholds are Stan's where Stan has one;
 * docs/output.md lists them. */
#ifndef PPL_WARNINGS_H
#define PPL_WARNINGS_H

#include <stdbool.h>

#include "diagnostics.h"

typedef struct RunWarning {
  const char *kind;    /* "rhat", "ess", "ebfmi", "divergences", "treedepth",
                          "collapse", "acceptance", "evidence", "pareto_k",
                          "rejections", "vi_khat", "vi_converged" */
  int nvars;
  const char **vars;   /* the table's names (theta[1]); chains as "chain 2" */
  const char *message; /* one sentence with the figures */
  const char *advice;  /* one line of what to do */
} RunWarning;

/* What the checks read: the columns of a finished run. */
typedef struct WarnInput {
  int m, n, ncols;                /* chains, draws per chain, columns */
  const char *const *names;       /* CSV names (find the sampler's columns) */
  const char *const *labels;      /* the table's names */
  const double *const *data;      /* data[c][col * n + i] */
  const SummaryStats *stats;      /* per column */
  bool weighted;                  /* the draws carry log weights lw */
  const double *const *lw;
  bool random_walk;               /* accept_stat__ is a random-walk acceptance rate */
  double adapt_delta;             /* the run's --adapt-delta (NaN: none) */
  int max_depth;                  /* the run's --max-depth (0: none) */
  const double *chain_logz;       /* each chain's log evidence estimate, or NULL */
  double pareto_k;                /* weighted: PSIS k-hat of all the weights (NaN: none) */
  long rejecting, transitions;    /* transitions (warmup included) that met a point
                                     the program rejected, of all (EngineVT.rejections) */
  const char *reject_first;       /* the first rejection's message */
  const char *reject_latent;      /* the latent it is about, or NULL */
  /* Variational runs (vi not NULL): k-hat of the draws' weights p / q and
     how many chains' optimisations did not converge. */
  const char *vi_family;
  double vi_khat;
  int vi_unconverged;
} WarnInput;

#define WARN_RHAT 1.01
#define WARN_REJECT_FRACTION 0.01 /* rejected transitions, when no latent is named */
#define WARN_ESS_PER_CHAIN 100
#define WARN_EBFMI 0.3
#define WARN_ACCEPT_LOW 0.05
#define WARN_ACCEPT_HIGH 0.95
#define WARN_KISH_COLLAPSED 10 /* Kish ESS of all the weights below this */
#define WARN_LOGZ_SD 1.0       /* chains' log evidence estimates: sd above this */

/* The warnings of a run (GC array, *n of them; NULL when none). */
RunWarning *warn_collect(const WarnInput *in, int *n);

/* E-BFMI of one chain's energy__ draws, sum (E_i - E_{i-1})^2 / sum (E_i -
 * mean E)^2, as Stan computes it; NaN for fewer than 2 draws or constant E. */
double warn_ebfmi(int n, const double *energy);

/* Whether a column is a sampler statistic (ends in "__", not lp__). */
bool warn_is_sampler_column(const char *name);

#endif
