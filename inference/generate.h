/* generate.h — standalone generated quantities (CmdStan's
 * generate_quantities, `ppl generate`): for each draw of CSV files written by
 * a run, the program is run once with its latents set to the draw's values by
 * a replay handler (sample() returns the draw's value, observations and
 * factors are ignored), so its deterministic statements and its generated
 * block are computed afresh; the output CSV has the draw's columns and the
 * recomputed generated quantities (and the model's derived variables the
 * draws lack). */
#ifndef PPL_GENERATE_H
#define PPL_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/diag.h"
#include "../ir/interp.h"

/* Draws of files[0..nfiles) (one file a chain, read by csvr_read) through
 * the program of `in` (data loaded); chain c's rows go to
 * csv_chain_path(output, c, nfiles), or to stdout when output is "-" (one
 * file only).  Draw i of chain c runs with the *_rng stream (seed, c * 2^32
 * + i): reproducible for the seed.  Latents are matched to columns by their
 * output names (theta, theta.1, m.2.1); only top-level latents can be set.
 * Errors: a program without a generated block, a latent missing from a file
 * (named), a latent inside a loop or function, a value outside its
 * distribution's support (file:line of the row), the program's own runtime
 * errors, unwritable output. */
bool gen_quantities(const Interp *in, int nfiles, const char *const *files, const char *output,
                    uint64_t seed, const char *model_name, Diag *d);

#endif
