/* summary.h — the posterior summary of a run: a stansummary-like table and
 * a JSON file, both over per-column SummaryStats (inference/diagnostics.h).
 * Names are printed as users write them: theta[1], m[1,2] (csv_label).
 * Formats are documented in docs/output.md. */
#ifndef PPL_SUMMARY_H
#define PPL_SUMMARY_H

#include <stdbool.h>
#include <stdio.h>

#include "../core/diag.h"
#include "diagnostics.h"
#include "warnings.h"

/* What a variational engine says of one chain's fit (EngineVT.vi_report). */
typedef struct ViReport {
  const char *family;      /* "meanfield", "fullrank", "flow" */
  double elbo;             /* the fitted approximation's ELBO estimate */
  double eta;              /* the step-size scale used (adapted or given) */
  long iterations;         /* optimisation iterations run */
  bool converged;          /* the relative ELBO change fell below tol-rel-obj */
  bool resampled;          /* the draws are importance-resampled (--psis-resample) */
  double seconds;          /* wall time of the fit (the eta search and the optimisation) */
  const char *loaded;      /* the file the fit was read from (no optimisation in this
                              run: iterations are the file's), or NULL */
  int ntrace;              /* ELBO evaluations: {iteration, ELBO, mean and median */
  const double (*trace)[4];/* relative change}, as Stan prints them */
  int n;                   /* log weights log p(theta) - log q(theta) of the chain's */
  const double *lw;        /* draws from q (or of the pool it resampled) */
} ViReport;

/* A variational run's fit and diagnostics (the table's lines after the
 * columns, the JSON's "vi"). */
typedef struct SummaryVi {
  const char *family;
  double elbo;             /* the mean of the chains' ELBO estimates */
  double khat;             /* PSIS k-hat of every draw's log weight (NaN: none) */
  double log_evidence, log_evidence_se; /* log mean exp of the weights, its SE */
  long iterations;         /* the most iterations a chain ran */
  bool converged;          /* every chain converged */
  bool resampled;          /* the draws are importance-resampled */
  const char *loaded;      /* the first chain's ViReport.loaded */
  int nchains;
  const ViReport *chains;  /* each chain's */
} SummaryVi;

/* What the summary says about the run besides the columns. */
typedef struct SummaryRun {
  const char *model_name;    /* short name ("eight_schools"); may be NULL */
  const char *engine;        /* "mh" */
  const char *engine_reason; /* "mh — 2 discrete latents; ..." or NULL */
  const char *backend;       /* "LLVM JIT (compiled in 12 ms)" or NULL */
  int chains, draws, warmup, thin; /* draws: kept per chain; warmup 0 if none */
  bool weighted;             /* importance-weighted draws (ESS is Kish's) */
  double log_evidence, log_evidence_se; /* NaN when not estimated */
  /* A run stopped by the host (ppl_interrupt): the draws and chains it was
     asked for; 0 when it ran to the end. */
  int planned_draws, planned_chains;
  /* The post-run checks (warnings.h), printed after the table and listed in
     the JSON's "warnings". */
  int nwarnings;
  const RunWarning *warnings;
  /* Weighted runs: Kish's ESS of all the weights (0 or NaN: not known).  Below
     WARN_KISH_COLLAPSED the log evidence is printed without a standard
     error, as unreliable. */
  double weights_ess;
  /* Weighted runs: the Pareto k-hat of the weights (psis.h); NaN: none. */
  double pareto_k;
  /* Variational runs: the fit and its diagnostics; NULL for the others. */
  const SummaryVi *vi;
  /* The engines' remarks per chain (EngineVT.chain_notes; NULL or "" =
     none), in the JSON's "notes" when any chain has one: lmh's acceptance
     rates per motif, for instance. */
  int nnotes;
  const char *const *notes;
  const int *note_chains;    /* their chain numbers (1-based) */
} SummaryRun;

/* The warnings as the table prints them ("" when none): for the CLI to show
 * them on their own under --quiet. */
char *summary_warnings_text(int n, const RunWarning *w);

/* A sampler tuning column (stepsize__, int_time__, log_weight__): constant
 * within a chain or the weights' own, so its MCSE, ESS and R-hat say nothing;
 * the table and the JSON show "-" and the driver does not compute them. */
bool summary_is_tuning(const char *label);

/* The table as text (a GC string), e.g.
 *   Inference for ppl model: coin
 *   engine: mh — ...
 *   4 chains, 1000 draws each after 1000 warmup iterations (thin 1): 4000 draws
 *
 *              Mean    MCSE  StdDev      5%     50%     95%  ESS_bulk  ESS_tail  R_hat
 *   lp__      -7.27   0.021    0.72   -8.71   -6.99   -6.75      1620      2000  1.002
 *   theta      0.25  0.0031    0.12   0.078    0.24    0.47      1540      1880  1.001
 *
 *   log evidence: -108.61 ± 0.02
 * An interrupted run says so under the draws line ("interrupted after 120 of
 * 1000 draws").
 * A "-" marks a statistic that does not apply or cannot be computed (R-hat
 * of one chain or of weighted draws, ESS of a constant, MCSE/ESS/R-hat of
 * stepsize__, int_time__ and log_weight__). The run's warnings end it, as
 * summary_warnings_text gives them. */
char *summary_table(const SummaryRun *run, int ncols, const char *const *labels,
                    const SummaryStats *stats);

/* The JSON document (a GC string):
 *   {"engine": "mh", "engine_reason": ..., "chains": 4, "draws": 1000,
 *    "warmup": 1000, "thin": 1,
 *    "variables": {"theta[1]": {"mean": ..., "sd": ..., "mcse": ..., "q5": ...,
 *                  "q50": ..., "q95": ..., "ess_bulk": ..., "ess_tail": ...,
 *                  "rhat": ...}, ...},
 *    "log_evidence": {"estimate": ..., "se": ..., "weights_ess": ...,
 *                     "pareto_k": ...} or null,
 *    "interrupted": false,   (true for a run the host stopped early)
 *    "warnings": [{"kind": "rhat", "variables": ["theta"], "message": ...,
 *                  "advice": ...}, ...]}
 * Non-finite numbers are null. NULL only if out of memory. */
char *summary_json(const SummaryRun *run, int ncols, const char *const *labels,
                   const SummaryStats *stats);

/* summary_json written to path; DIAG_IO on failure. */
bool summary_write_json(const char *path, const SummaryRun *run, int ncols,
                        const char *const *labels, const SummaryStats *stats, Diag *d);

#endif
