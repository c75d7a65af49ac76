/* start.h — the files a run starts from: initial values by name (--init
 * FILE.json) and an inverse metric with its step size (--metric FILE.json),
 * in CmdStan's formats, read into the engine options. */
#ifndef PPL_START_H
#define PPL_START_H

#include "../inference/engine.h"

/* Reads eo->init_file (a path, or JSON text starting with '{') into
 * eo->init_values, refusing engines without ENGINE_INITS and names that are
 * no latent of the program; and a metric option given as a file into
 * eo->metric_inv / metric_dim (the metric option becomes diag or dense by the
 * file's shape) and, unless stepsize_given, its "stepsize" into the stepsize
 * option.  Sizes and constraints are checked where the chains start.  False
 * with d (DIAG_USAGE, DIAG_IO or DIAG_DATA naming the file). */
bool start_read(const EngineVT *eng, const IrAnalysis *an, bool stepsize_given, EngineOpts *eo,
                Diag *d);

#endif
