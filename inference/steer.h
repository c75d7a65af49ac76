/* steer.h — the SMC-steering engine (steer.c) and what it reads from the
 * `lm` / `lm_next` families' calls. */
#ifndef PPL_STEER_H
#define PPL_STEER_H

#include "../stdlib/dist.h"
#include "../stdlib/lm.h"
#include "engine.h"

enum { STEER_LM_NEXT = 0, STEER_LM };

/* One suspended lm choice, as the engine answers it. */
typedef struct SteerCall {
  int kind;             /* STEER_LM_NEXT: one token; STEER_LM: a string */
  LmBackend *b;         /* the backend of its `model` in the run's LmSet */
  const char *context;  /* the prompt / context text */
  size_t context_len;
  const char *stop;     /* STEER_LM: the stop string ("" none) */
  size_t stop_len;
  int max_tokens;       /* STEER_LM */
  const char *avoid;    /* characters no token may contain ("" none) */
  const uint8_t *allow; /* the mask of avoid (the engine's), NULL: none */
} SteerCall;

/* Is f one of the language-model families? */
bool steer_is_lm(const DistFamily *f);
/* The call dc of an lm family, its backend found in the run's LmSet; false
   with a message (an unknown model name). */
bool steer_call(const DistCall *dc, SteerCall *out, char *err, size_t errsz);
/* allow[t] = 1 for the tokens of b whose text contains none of the
   characters (UTF-8) of avoid; eos is allowed. */
void steer_avoid_mask(const LmBackend *b, const char *avoid, uint8_t *allow);

extern const EngineVT engine_steer;

#endif
