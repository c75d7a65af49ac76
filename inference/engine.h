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

  /* gradient-based engines (nuts, hmc) */
  int metric;          /* METRIC_DIAG (default), METRIC_DENSE, METRIC_UNIT */
  int max_depth;       /* NUTS tree depth limit (default 10) */
  double adapt_delta;  /* target acceptance statistic (default 0.8) */
  double stepsize;     /* initial step size (default 1) */
  double int_time;     /* static HMC integration time (default 2 pi) */
  double stepsize_jitter; /* each transition's step size is the nominal one times
                             uniform(1 - j, 1 + j), j in [0, 1] (default 0) */
  double init_radius;  /* initial unconstrained values uniform(-R, R) (default 2;
                          0 = every coordinate 0), as CmdStan's init=R */

  /* particle engines (smc, pgibbs) */
  int particles;       /* default 1000 */
  int resample;        /* RESAMPLE_SYSTEMATIC (default), _MULTINOMIAL, _STRATIFIED, _RESIDUAL */
  double ess_threshold;/* resample when ESS / N falls below this (default 0.5) */
  int rejuvenate;      /* MH moves per particle after each resampling (default 0) */
  int threads;         /* the run's worker-thread budget (DriverOpts.threads; 0 =
                          number of CPUs): particle engines advance each chain's
                          particles in max(1, threads / chains) threads */
  bool ancestor_sampling; /* pgibbs: resample the reference's ancestor (PGAS) */
  bool no_jit;         /* gradient-based engines: interpret the log density even
                          where the LLVM JIT could compile it */
  /* mh: after each sweep, one joint random-walk move over all continuous
     choices (mh_block_rw), its scale adapted in warmup (default false) */
  bool mh_block;
} EngineOpts;

enum { METRIC_DIAG = 0, METRIC_DENSE, METRIC_UNIT };
enum { RESAMPLE_SYSTEMATIC = 0, RESAMPLE_MULTINOMIAL, RESAMPLE_STRATIFIED, RESAMPLE_RESIDUAL };

/* Defaults for every field (chains 4, draws 1000, warmup 1000, thin 1, seed 1, ...). */
void engine_opts_default(EngineOpts *o);

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

  /* Optional hooks (NULL = not provided). */
  /* After warmup: the adaptation result as CSV comment lines without the "# "
     prefix, in CmdStan's exact wording, e.g. "Adaptation terminated\nStep size =
     0.813694\nDiagonal elements of inverse mass matrix:\n1.02, 0.98". Written
     after the CSV header, before the first draw. */
  const char *(*adaptation_info)(void *state);
  /* After the last step: this chain's log evidence estimate, for engines whose
     final draw weights do not carry it (SMC: the running product of mean
     incremental weights). The driver combines chains: log mean exp of the
     estimates, with the standard error from their spread. */
  bool (*log_evidence)(void *state, double *est);
  /* After the last step: one line for the summary, e.g. "12 of 1000
     transitions diverged; increase --adapt-delta ..." (NULL or "" = nothing). */
  const char *(*chain_notes)(void *state);
  /* After init: how the log density runs, for the summary ("LLVM JIT
     (compiled in 12 ms)", "interpreter (not compiled: ...)"); NULL = no line. */
  const char *(*backend)(void *state);
} EngineVT;

const EngineVT *engine_lookup(const char *name);
/* NULL-terminated list of the engines this build has. */
const EngineVT *const *engine_all(void);

/* The default choice for a program, with the reason:
 * "mh — 2 discrete latents; single-site Metropolis-Hastings works for every program". */
const EngineVT *engine_select(const IrAnalysis *a, const char **why);

#endif
