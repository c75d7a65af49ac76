/* lm_impl.h — what lm.c shares with the built-in backends (lm_ngram.c,
 * lm_llama.c) and nothing else includes: the options of a spec and the
 * backends' constructors.  lm_open parses "KIND:PATH[,key=value...]" once,
 * so every backend reports a bad spec the same way.
 */
#ifndef PPL_LM_IMPL_H
#define PPL_LM_IMPL_H

#include "lm.h"

#define LM_MAX_OPTS 8

typedef struct LmSpec {
  const char *spec; /* the whole spec, for messages */
  char *path;       /* malloc'd */
  int nopts;
  char *key[LM_MAX_OPTS], *val[LM_MAX_OPTS]; /* malloc'd */
} LmSpec;

/* The value of option key as a positive integer (lo..hi), or def when the
   spec does not give it.  False with a message when it is not one. */
bool lm_spec_int(const LmSpec *s, const char *key, long lo, long hi, long def, long *out, char *err,
                 size_t errsz);
/* False with a message naming the first option not in known (a NULL-ended
   list), which the message lists as what kind takes. */
bool lm_spec_check(const LmSpec *s, const char *kind, const char *const *known, char *err,
                   size_t errsz);

/* Each fills *b (name left to lm_open) or returns false with a message. */
bool lm_ngram_open(const LmSpec *s, LmBackend *b, char *err, size_t errsz);
bool lm_llama_open(const LmSpec *s, LmBackend *b, char *err, size_t errsz);

#endif
