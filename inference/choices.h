/* choices.h — every random choice of each kept draw, by address, as JSON
 * Lines beside the chain's CSV (out_1.csv -> out_1_choices.jsonl), and a
 * short account of them for the summary.
 *
 * A program whose addresses change between runs (a loop bound or branch that
 * depends on a latent) has no CSV header that fits every draw, so its latents
 * in loops, branches and functions have no columns; this file is where they
 * are, one JSON object a draw, as a Gen choice map or a Pyro trace holds
 * them: {"K": 2, "x[1]": 0.12, "x[2]": -1.1}.  The layout is documented in
 * docs/output.md ("Every choice: the choices file"). */
#ifndef PPL_CHOICES_H
#define PPL_CHOICES_H

#include <stdbool.h>
#include <stdio.h>

#include "../ir/interp.h"

/* "out_1.csv" -> "out_1_choices.jsonl", "out" -> "out_choices.jsonl" (a GC
 * string), as --save-metric names out_1_metric.json. */
char *choices_path(const char *csv_path);

/* One draw as one line: the top-level latents among the outputs (vals[j] of
 * outputs[j], kind OUT_LATENT) and then the nested latents, each under its
 * address; containers as JSON arrays (a matrix as an array of rows), reals
 * with `digits` significant digits, non-finite reals as CmdStan's JSON
 * writes them ("NaN", "Inf", "-Inf").  Flushed; false on a write error. */
bool choices_write(FILE *f, int noutputs, const IrOutput *outputs, const Value *vals, int nlat,
                   const InterpLatent *lat, int digits);

/* One chain's account of its kept draws' choices (GC memory). */
typedef struct ChoiceLog ChoiceLog;

/* For a chain of `ndraws` kept draws. */
ChoiceLog *choices_log_new(int ndraws);

/* Kept draw k's choices into the log: the top-level latents' addresses, and
 * for the nested latents, by base name (the address without its indices:
 * "x[3]" -> "x", "f[2]/z" -> "f/z"), how many there are and their elements'
 * sum. */
void choices_log_draw(ChoiceLog *cl, int k, int noutputs, const IrOutput *outputs, int nlat,
                      const InterpLatent *lat);

/* The summary's lines about the m chains' logs of n draws each (lw: each
 * chain's log weights for a weighted engine, else NULL): how many addresses
 * the files (`where`, e.g. "out_N_choices.jsonl"; NULL: none written) hold,
 * and, when with_table,
 * for each base name of the nested latents the share of draws that have it,
 * how many addresses it has in those draws and its elements' mean (weighted
 * by the importance weights when lw is given); at most 20 names, then how
 * many more.  A GC string ending with a newline. */
char *choices_summary(int m, int n, ChoiceLog *const *logs, const double *const *lw,
                      const char *where, bool with_table);

/* The base name of an address (a GC string), as above. */
char *choices_base(const char *addr);

#endif
