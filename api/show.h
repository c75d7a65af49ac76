/* show.h — one draw's values as `ppl exec` prints them (show.c). */
#ifndef PPL_SHOW_H
#define PPL_SHOW_H

#include <stdbool.h>
#include <stdio.h>

#include "ppl.h"

/* Draw 0 of chain 0 of r: lp__ and the model's variables, one line each
 * ("name = value", containers as nested lists in row-major order), or with
 * json one JSON object {"lp__": ..., "mu": ..., "v": [...]} (NaN and
 * infinities as null). */
void show_values(FILE *f, const ppl_result *r, bool json);

#endif
