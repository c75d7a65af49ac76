/* steer.h — the SMC-steering engine of language-model programs (steer.c,
 * docs/cascades.md). */
#ifndef PPL_STEER_H
#define PPL_STEER_H

#include "engine.h"

extern const EngineVT engine_steer;

#endif
