/* smc_mpi.h — how engine smc shares one chain's particles among the ranks
 * of an MPI job (smc_mpi.c), for the run's engine line. */
#ifndef PPL_SMC_MPI_H
#define PPL_SMC_MPI_H

#include "engine.h"

/* "MPI: ..." for a run of smc with options o over R > 1 ranks, every chain
 * on every rank: whether the particles are split, or why not.  NULL if the
 * engine cannot start with these options (the run says why). */
const char *smcm_plan(const Interp *in, const EngineOpts *o, int R);

#endif
