/* lm_family.h — the `lm` and `lm_next` families: strings drawn from the run's
 * language models (stdlib/lm.h), for language-model cascades.
 *
 *   string s ~ lm(prompt, stop = "", max_tokens = 64, model = "", avoid = "");
 *   string t ~ lm_next(context, model = "", avoid = "");
 *
 * The parameters are the family's, in this order (named arguments are mapped
 * to them by the checker, DistFamily.pdefault gives the defaults): an engine
 * that answers these choices itself (the steering engine, at a suspended
 * choice) reads them with lm_call_args.
 *
 * The families have a context, the run's backends: one LmFamilies per
 * ppl_context, whose families the checker finds in the context's registry;
 * lm_families_bind gives them the LmSet of a run (api/api.c does, around
 * each run) and drops it afterwards.  Without one, a draw fails with the
 * message of lm_families_unbound_msg.  A run uses them from one thread.
 *
 * Sampling inline (every engine but steering) makes a cursor's tokens one by
 * one from the masked, renormalised distribution; the density is the
 * unmasked model's times the mask's indicator, and the draw's importance
 * weight p(x) / q(x) (DistFamily.draw_weight_ctx) enters the run as a
 * factor, so every engine targets the same distribution.  docs/language.md
 * ("Strings from language models") states the density exactly.
 */
#ifndef PPL_LM_FAMILY_H
#define PPL_LM_FAMILY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "lm.h"

typedef struct LmBinding LmBinding; /* lm_family.c: the bound set and its caches */

typedef struct LmFamilies {
  DistFamily lm, lm_next;
  LmBinding *bind;
} LmFamilies;

/* A new pair of families (GC memory, with malloc'd caches freed by unbind
   or lm_families_free). */
LmFamilies *lm_families_new(void);
/* Bind the run's backends (set is kept by pointer until the next call); NULL
   unbinds and frees the caches of the last run. */
void lm_families_bind(LmFamilies *f, const LmSet *set);
void lm_families_free(LmFamilies *f);

/* Is f one of the two families (of any LmFamilies)? */
bool lm_family_is(const DistFamily *f);
/* The LmSet bound to f, one of the two families (NULL: none bound). */
const LmSet *lm_family_set(const DistFamily *f);
/* The message a run without a backend fails with, after "FILE:L:C: ". */
extern const char lm_families_unbound_msg[];

/* The arguments of one call of lm / lm_next (p: that call's parameter values,
 * one draw's). */
typedef struct LmArgs {
  bool next;          /* lm_next: one token */
  const char *prompt; /* the context */
  size_t prompt_len;
  const char *stop;   /* "" none (lm only) */
  size_t stop_len;
  int max_tokens;     /* lm only; >= 1 */
  const char *model;  /* "" the default backend */
  const char *avoid;  /* characters (UTF-8) no token may contain; "" none */
} LmArgs;
void lm_call_args(const DistFamily *f, const Value *p, LmArgs *out);
/* The backend a call names in set, or NULL with a message. */
LmBackend *lm_args_backend(const LmSet *set, const LmArgs *a, char *err, size_t errsz);
/* allow[t] = 1 for tokens whose text has no character of avoid (UTF-8; eos
   always), 0 for the others: the mask of `avoid = "..."`. */
bool lm_avoid_mask(LmBackend *b, const char *avoid, uint8_t *allow, char *err, size_t errsz);

#endif
