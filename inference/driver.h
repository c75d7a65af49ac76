/* driver.h — runs an engine's chains (in parallel threads), writes each
 * chain's CmdStan CSV as draws are made, and summarises the run.
 *
 * Each chain has its own engine state, seeded from (seed, chain), and writes
 * only its own file and its own slot of the result, so the draws and files
 * are identical whatever the number of threads.  The summary is computed
 * after every chain has finished. */
#ifndef PPL_DRIVER_H
#define PPL_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "../ir/interp.h"
#include "diagnostics.h"
#include "engine.h"
#include "warnings.h"

typedef struct DriverOpts {
  EngineOpts eng;
  const char *output_csv;    /* NULL = no CSV; with several chains "out.csv" is
                                written as out_1.csv, out_2.csv, ... (CmdStan).
                                Not a regular file: "-" is stdout and a FIFO is
                                written as is, one chain only; a character device
                                (/dev/null) is opened as is by every chain */
  const char *summary_json;  /* NULL = no JSON summary */
  FILE *summary_out;         /* NULL = no table printed (it is kept in the result) */
  int progress;              /* ProgressMode (progress.h): per-chain lines on
                                stderr, redrawn in place (PROGRESS_TERMINAL: only
                                when the caller knows stderr is a terminal) or
                                plain lines (PROGRESS_LINES); 0 = none */
  int threads;               /* 0 = min(chains, 2) */
  const char *model_name;    /* for "model = NAME_model"; a path is reduced to its
                                base name without extension; NULL = from model_file */
  const char *model_file, *data_file; /* recorded in the CSV; may be NULL */
  const char *engine_reason; /* "mh — ..." for the table, CSV and JSON; may be NULL */
  const char *include;       /* NULL, or "a,b,...": only these outputs (by their
                                names in the model) get CSV and summary columns;
                                lp__ and the engine's columns always stay */
  const char *exclude;       /* NULL, or "a,b,...": every output but these (not
                                with include); an unknown name is DIAG_USAGE */
  bool mpi_chains;           /* with eng.comm of R > 1 ranks: chain c runs on rank
                              c mod R alone and its draws are sent to the others
                              (CSV files written by rank 0); false: every rank
                              runs every chain with eng.comm (the engine splits
                              its work), and rank 0 alone writes */
  atomic_int *interrupt;     /* NULL, or a flag the host sets (from a signal handler)
                                to stop the run at the next iteration: the draws
                                kept so far are summarised and marked interrupted */
} DriverOpts;

/* chains 4, draws 1000, warmup 1000, thin 1, seed 1; everything else off. */
void driver_opts_default(DriverOpts *o);

typedef struct RunResult RunResult;

/* The run proper, with the program's output list given explicitly:
 * outputs[i] names Draw.outputs[i] (see IrProgram.outputs). */
bool driver_run_outputs(const Interp *in, int noutputs, const IrOutput *outputs,
                        const EngineVT *eng, const DriverOpts *o, RunResult **out, Diag *d);

/* Which outputs the run writes (--include / --exclude): keep[j] for each of
 * the noutputs (GC array).  A name may also be a latent of prog's that no
 * output holds (declared in a loop, a branch or a function; prog NULL:
 * none): it selects every column of that latent's addresses (h -> h.2, h.3,
 * ...).  False with DIAG_USAGE for both lists at once, an empty name, or a
 * name that is neither (the message lists the outputs). */
bool driver_select_outputs(const DriverOpts *o, const IrProgram *prog, int noutputs,
                           const IrOutput *outputs, bool **keep, Diag *d);

/* What driver_run checks before it opens a file or samples: that no output
 * is the model or data file (same device and inode; DIAG_USAGE), that every
 * output can be written (DIAG_IO), that stdout and a FIFO take one chain, and
 * that the draws can fit in physical memory (DIAG_USAGE; a lower bound of the
 * columns here, the exact count at the first kept draw). */
bool driver_check_outputs(const EngineVT *eng, const DriverOpts *o, const IrProgram *prog,
                          int noutputs, const IrOutput *outputs, Diag *d);

/* One more output file of a run (`what`: "params file"): not the model or
 * data file (DIAG_USAGE) and writable without creating it (DIAG_IO). */
bool driver_check_output_file(const DriverOpts *o, const char *path, const char *what, Diag *d);

/* Run eng on the program of `in`. On success *out is the result (GC memory).
 * Before sampling, outputs are checked: an output that is the model or data
 * file (same device and inode) is DIAG_USAGE, an output that cannot be
 * written DIAG_IO, and draws that cannot fit in physical memory DIAG_USAGE.
 * An allocation failure in a chain is DIAG_NOMEM; an interrupt before any
 * draw was kept DIAG_INTERRUPTED.
 * Errors: DIAG_USAGE for bad options, DIAG_IO when a file cannot be written,
 * the engine's Diag when a chain fails (the other chains stop; what was
 * written stays on disk, flushed), DIAG_RUNTIME when an output changes shape
 * between draws or chains (CSV needs fixed columns).  Inline so that only
 * callers depend on the interpreter library. */
static inline bool driver_run(const Interp *in, const EngineVT *eng, const DriverOpts *o,
                              RunResult **out, Diag *d) {
  const IrProgram *p = interp_program(in);
  return driver_run_outputs(in, p->noutputs, p->outputs, eng, o, out, d);
}

/* ---- the result ---- */

/* A finished run's draws, however they were made (the driver's chains, or
 * CSV files read back by csvread.h): what the summary, the warnings and the
 * result are computed from.  The arrays are kept by the result. */
typedef struct DriverDraws {
  const char *engine, *engine_reason, *backend; /* reason, backend may be NULL */
  const char *model_name;    /* short name ("coin"), may be NULL */
  int m, n, ncols;           /* chains, kept draws per chain, columns */
  int warmup, thin;          /* as the table reports them */
  const char **names;        /* CSV names, ncols */
  double **data;             /* data[c][col * n + i] */
  double **lw;               /* weighted draws: log weights lw[c][i]; else NULL */
  const double *chain_logz;  /* the engine's own log evidence per chain, or NULL */
  const double *chain_logz_se; /* and its standard errors, or NULL */
  bool random_walk;          /* accept_stat__ is a random-walk acceptance rate */
  double adapt_delta;        /* NaN: none */
  int max_depth;             /* 0: none */
  int planned_draws, planned_chains; /* interrupted runs: what was asked; else 0 */
  double *warm_s, *samp_s;   /* per chain, or NULL */
  const char **notes;        /* the engine's remark per chain, or NULL */
  int *chain_ids;            /* the chains' numbers for the remarks, or NULL (1..m) */
  long rejecting, transitions; /* transitions that met a point the program rejected,
                                  of all, warmup included (EngineVT.rejections); 0: none */
  const char *reject_first;  /* the first rejection's message, or NULL */
  const char *reject_latent; /* the latent it is about, or NULL */
  const ViReport *vi;        /* variational engines: each chain's fit (m), or NULL */
  int threads;               /* threads for the columns' diagnostics (0 = one per CPU) */
} DriverDraws;

/* Summary, warnings and table of dd (GC memory; never NULL). */
RunResult *driver_result(const DriverDraws *dd);
/* The summary JSON (summary.h) of r written to path; DIAG_IO on failure. */
bool rr_write_summary_json(const RunResult *r, const char *path, Diag *d);


int rr_num_chains(const RunResult *r);
int rr_num_draws(const RunResult *r); /* kept draws per chain */
/* Columns: lp__, the engine's stat columns, then the outputs' elements. */
int rr_num_columns(const RunResult *r);
const char *rr_column_name(const RunResult *r, int col);  /* CmdStan: "theta.1" */
const char *rr_column_label(const RunResult *r, int col); /* summary: "theta[1]" */
/* Column by either name form ("theta.1" or "theta[1]"); -1 if none. */
int rr_column_index(const RunResult *r, const char *name);
double rr_draw(const RunResult *r, int chain, int draw, int col);
/* The rr_num_draws values of one column of one chain, contiguous. */
const double *rr_column_draws(const RunResult *r, int chain, int col);
/* Importance log weights of one chain (weighted engines), else NULL. */
const double *rr_log_weights(const RunResult *r, int chain);
const SummaryStats *rr_summary(const RunResult *r, int col);
/* Weighted engines: the Pareto k-hat of all the draws' importance weights
 * (psis.h); NaN otherwise or when it cannot be estimated. */
double rr_pareto_k(const RunResult *r);
/* Variational runs: the fit and its PSIS diagnostics; NULL otherwise. */
const SummaryVi *rr_vi(const RunResult *r);
/* False when the engine does not estimate it. */
bool rr_log_evidence(const RunResult *r, double *est, double *se);
const char *rr_engine(const RunResult *r);
const char *rr_engine_reason(const RunResult *r); /* may be NULL */
const char *rr_backend(const RunResult *r);       /* EngineVT.backend of chain 1; may be NULL */
/* The summary table (as summary_out receives it). */
const char *rr_summary_text(const RunResult *r);
/* The post-run checks' warnings (warnings.h), in the order the table prints them. */
int rr_num_warnings(const RunResult *r);
const RunWarning *rr_warning(const RunResult *r, int i);
const char *rr_warnings_text(const RunResult *r); /* "" when none */
/* Stopped by DriverOpts.interrupt: the draws kept are fewer than asked for
 * (rr_num_draws, the fewest any chain kept; chains that kept none are left
 * out of the result). */
bool rr_interrupted(const RunResult *r);
/* The choices file (choices.h) chain `chain` of the result wrote, or NULL
 * when the run wrote none. */
const char *rr_choices_path(const RunResult *r, int chain);
/* CPU seconds of a chain's warmup and sampling phases (its thread's). */
double rr_chain_seconds(const RunResult *r, int chain, bool warmup);

#endif
