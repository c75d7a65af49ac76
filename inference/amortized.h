/* amortized.h — the engine "amortized" (amortized.c): draws for new data from
 * a parameter file `ppl train` wrote (--load FILE), in one pass, with no
 * further optimisation: the guide form (a file of kind svi) or whole-program
 * amortization (kind npe, npe.h). */
#ifndef PPL_AMORTIZED_H
#define PPL_AMORTIZED_H

#include "engine.h"

extern const EngineVT engine_amortized;

/* The usage error of the engine without its file. */
#define AMORTIZED_NEEDS_LOAD                                                                 \
  "--engine amortized needs --load FILE: the parameter file 'ppl train MODEL.ppl --data "  \
  "train.json --save FILE' wrote for this program"

/* What a run of program p with --load path uses: engine_amortized, with the
 * reason ("amortized — --load model.params holds a guide trained for this
 * program ..."), when the file holds a trained guide (kind svi, and p has a
 * guide block) or a conditional flow (kind npe) for p.  NULL + d otherwise:
 * unreadable (DIAG_IO); truncated, malformed or trained for another program
 * (DIAG_DATA); advi's q or svi params without a guide (DIAG_USAGE). */
const EngineVT *amortized_select(const IrProgram *p, const char *path, const char **why,
                                 Diag *d);

#endif
