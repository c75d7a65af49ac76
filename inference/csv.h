/* csv.h — draws in CmdStan's CSV layout, so ArviZ (from_cmdstan), cmdstanr /
 * posterior (read_cmdstan_csv) and bayesplot read ppl's output unchanged.
 *
 *   # comment block: key = value lines, nested two spaces per level
 *   lp__,accept_stat__,...,theta.1,theta.2,m.1.1,m.2.1,...
 *   one row per kept draw (%.6g; integers exact; nan, inf, -inf)
 *   # elapsed-time trailer
 *
 * Element names are 1-based and column-major over all dimensions (first
 * index fastest), as CmdStan emits them. String values have no CSV column:
 * the comment block lists the string outputs that were left out. The layout
 * is documented for users in docs/output.md. */
#ifndef PPL_CSV_H
#define PPL_CSV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/value.h"

/* Columns accumulated from one or more output values (GC arrays, grown on
 * demand). names is filled only when asked for. */
typedef struct CsvCols {
  int n, cap;
  const char **names; /* "theta.1" */
  double *vals;
  bool *is_int;       /* integer or bool element: written exactly, without exponent */
} CsvCols;

void csv_cols_init(CsvCols *c);

#define CSV_MAX_DIMS 16

/* The shape of v as CmdStan sees it: array dimensions, then the vector length
 * or the matrix rows and cols. Scalars have 0 dims; strings (and arrays of
 * strings) return -1 (no columns). Returns -2 for ragged or too deeply nested
 * arrays. */
int csv_shape(Value v, int dims[CSV_MAX_DIMS]);

/* Append the columns of output `name` with value v: values in CmdStan's
 * column-major order, and with want_names their names. A V_NONE element is
 * NaN. Returns the number of columns appended (0 for strings), or -1 with a
 * message in err for ragged arrays. */
int csv_columns(const char *name, Value v, CsvCols *out, bool want_names, char *err,
                size_t errsz);

/* A latent's address as a column name: the loop indices become CmdStan
 * indices, "x[2,5]" -> "x.2.5", "walk/step[2]/x" -> "walk/step.2/x" (a GC
 * string); its elements then append theirs ("z.2.1"). */
char *csv_address_name(const char *addr);

/* The inverse of csv_columns for one element: set element k (in csv_columns'
 * order) of *v, a value not shared with anything else, to x (ints and bools
 * converted). */
void csv_set_element(Value *v, long k, double x);

/* "theta.1.2" -> "theta[1,2]", "stp.1/x" -> "stp[1]/x" (a GC string); names
 * without indices unchanged. */
char *csv_label(const char *csv_name);

/* What the comment block says about a run. */
typedef struct CsvConfig {
  const char *model_name;   /* written as "model = NAME_model" (NULL: "ppl_model") */
  const char *model_file;   /* may be NULL */
  const char *engine;       /* "mh" */
  const char *engine_reason;/* may be NULL */
  int num_samples;          /* sampling iterations (kept draws * thin) */
  int num_warmup;           /* 0 for engines without warmup */
  bool save_warmup;         /* warmup draws are written before the sampling draws */
  int thin;
  int num_chains;
  int id;                   /* chain number, 1-based */
  uint64_t seed;
  const char *data_file;    /* may be NULL */
  const char *output_file;  /* this chain's file */
  int nskipped;             /* string outputs that have no column */
  const char *const *skipped;
  const char *nested_note;  /* why latents in loops, branches and functions
                               have no column (NULL: they have) */
  /* Gradient engines: hmc_engine "nuts" or "static" writes CmdStan's adapt
     block and "algorithm = hmc" with its settings instead of "algorithm =
     ppl" (NULL: another engine; the fields below are then unused). */
  const char *hmc_engine;
  const char *metric;       /* "diag_e", "dense_e" or "unit_e" */
  const char *metric_file;  /* --metric FILE, or NULL */
  int max_depth;            /* nuts */
  double int_time;          /* static */
  double stepsize, stepsize_jitter;
  bool adapt_engaged;       /* warmup > 0 */
  double adapt_delta;
} CsvConfig;

/* Each returns false when the stream reports an error (the caller reports it
 * with the file name and errno). Rows are flushed as they are written. */
bool csv_write_config(FILE *f, const CsvConfig *c);
bool csv_write_header(FILE *f, int n, const char *const *names);
/* digits: significant digits of the reals (6 as CmdStan; --sig-figs). */
bool csv_write_row(FILE *f, int n, const double *vals, const bool *is_int, int digits);
/* An engine's own estimate of the chain's log evidence (smc), before the
 * timing: "# log_evidence = X" and, unless se is NaN, "# log_evidence_se = S"
 * (%.17g, so a summary of the files gives the run's figures). */
bool csv_write_evidence(FILE *f, double log_evidence, double se);
bool csv_write_timing(FILE *f, double warmup_seconds, double sampling_seconds);

/* One value as the CSV writes it: %.6g, integers exact, nan / inf / -inf.
 * buf must hold 32 bytes; returns buf. */
char *csv_format_value(char *buf, double v, bool is_int);
/* The same with `digits` significant digits for reals (%.17g: exact). */
char *csv_format_digits(char *buf, double v, bool is_int, int digits);

/* The file of chain `chain` (0-based) of nchains: with one chain the path
 * itself; otherwise "out.csv" -> "out_1.csv", "out" -> "out_1" (CmdStan's
 * convention). A GC string. */
char *csv_chain_path(const char *path, int chain, int nchains);

#endif
