/* svi.h — the engine "svi" (svi.c): stochastic variational inference with
 * the program's guide block. */
#ifndef PPL_SVI_H
#define PPL_SVI_H

#include "engine.h"

extern const EngineVT engine_svi;

#endif
