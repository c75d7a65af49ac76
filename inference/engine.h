/* engine.h — the interface every inference engine implements, and the selector.
 *
 * An engine is a kernel over an explicit state: init / step / free.  The state
 * holds the engine's Rng (seeded from the run seed and the chain number), so a
 * given seed reproduces a run bit for bit.  The driver (inference/driver.c)
 * owns chains, threads, output files, progress and the summary; engines never
 * print.
 */
#ifndef PPL_ENGINE_H
#define PPL_ENGINE_H

#include "../ir/interp.h"

typedef struct EngineOpts {
  int chains;       /* independent chains (default 4; 1 for prior) */
  int draws;        /* kept draws per chain (default 1000) */
  int warmup;       /* warmup iterations per chain (default 1000; engines without
                       warmup ignore it) */
  int thin;         /* keep every thin-th draw (default 1) */
  uint64_t seed;
} EngineOpts;

#define ENGINE_MAX_STATS 8

/* One draw of one chain. */
typedef struct Draw {
  Value *outputs;    /* IrProgram.noutputs values (interp_output of the run) */
  double lp;         /* lp__: log joint density of latents and observations
                        (prior: log prior density) */
  double log_weight; /* importance log weight (weighted engines), else 0 */
  double stats[ENGINE_MAX_STATS]; /* engine columns, as named in EngineVT.stat_names */
} Draw;

typedef struct EngineVT {
  const char *name;        /* "prior", "is", "mh" */
  const char *summary;     /* one line for --help and `ppl check` */
  int nstats;
  const char *stat_names[ENGINE_MAX_STATS]; /* CSV columns, e.g. "accept_stat__" */
  bool weighted;           /* draws carry log_weight; log evidence is estimated */
  bool uses_warmup;
  /* chain = 0..chains-1; the state must draw its randomness from
     rng_seed(seed, chain) streams only */
  void *(*init)(const Interp *in, const EngineOpts *o, int chain, Diag *d);
  /* one iteration; warmup = true during warmup (draw not reported) */
  bool (*step)(void *state, bool warmup, Draw *out, Diag *d);
  void (*free)(void *state);
} EngineVT;

const EngineVT *engine_lookup(const char *name);
/* NULL-terminated list of the engines this build has. */
const EngineVT *const *engine_all(void);

/* The default choice for a program, with the reason:
 * "mh — 2 discrete latents; single-site Metropolis-Hastings works for every program". */
const EngineVT *engine_select(const IrAnalysis *a, const char **why);

#endif
