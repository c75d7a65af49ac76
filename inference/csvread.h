/* csvread.h — draws read back from CSV files in CmdStan's layout, written by
 * any ppl engine or by CmdStan itself (and rstan's sample_file): what `ppl
 * summary` summarises and `ppl generate` replays.  The comment block gives
 * what the summary and the warnings need besides the draws (the engine, the
 * warmup and thinning, adapt delta and max tree depth, an engine's own log
 * evidence); warmup rows saved with save_warmup are left out, as CmdStan's
 * stansummary leaves them out.  The layout read is docs/output.md's. */
#ifndef PPL_CSVREAD_H
#define PPL_CSVREAD_H

#include <stdbool.h>

#include "../core/diag.h"
#include "driver.h"

typedef struct CsvFile {
  const char *path;
  int ncols, nrows;          /* nrows: the kept draws (warmup rows left out) */
  const char **names;        /* the header: "lp__", "theta.1" */
  double *data;              /* column-major: data[col * nrows + i] */
  int *line;                 /* each kept row's line number in the file */
  /* From the comment block; what a file does not say is NULL, 0 or NaN. */
  const char *model_name;    /* "coin" from "model = coin_model" */
  const char *engine;        /* ppl's engine line; CmdStan's hmc: "nuts" or "hmc" */
  const char *engine_reason; /* ppl's "# engine: ..." line */
  bool from_ppl;             /* has a ppl_version line */
  int num_samples, num_warmup, thin;
  bool save_warmup;
  double adapt_delta;        /* "delta = 0.8" of the adapt block */
  int max_depth;             /* "max_depth = 10" */
  double log_evidence, log_evidence_se; /* smc's trailer (csv_write_evidence) */
  /* advi's fit ("family = ...", "elbo = ...", the ELBO trace); vi.family
     NULL: none.  Its weights come from the log_p__ and log_g__ columns. */
  ViReport vi;
} CsvFile;

/* Read one file.  Errors (false, d set): the file cannot be read or is empty
 * (DIAG_IO), it has no header row, a row has more or fewer values than the
 * header or a value that is not a number ("out.csv:12:9: ..."; DIAG_DATA). */
bool csvr_read(const char *path, CsvFile *out, Diag *d);

/* Files as the chains of one run, one file a chain: their columns must be
 * the same (else DIAG_DATA naming the first that differs); the chains keep
 * the fewest draws any file has, and a file with fewer rows than its
 * num_samples / thin says marks the run interrupted (as the run that wrote
 * it reported).  Fills *out for driver_result. */
bool csvr_draws(int nfiles, const CsvFile *files, DriverDraws *out, Diag *d);

/* Column index of name in f, or -1. */
int csvr_column(const CsvFile *f, const char *name);

#endif
