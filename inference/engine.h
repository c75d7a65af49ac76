/* engine.h — the interface every inference engine implements (with its
 * traits and option tables), the registry of options, and the selector.
 *
 * An engine is a kernel over an explicit state: init / step / free.  The state
 * holds the engine's Rng (seeded from the run seed and the chain number), so a
 * given seed reproduces a run bit for bit.  The driver (inference/driver.c)
 * owns chains, threads, output files, progress and the summary; engines never
 * print.
 */
#ifndef PPL_ENGINE_H
#define PPL_ENGINE_H

#include <stdatomic.h>

#include "../ir/interp.h"
#include "mpi_run.h"
#include "options.h"
#include "summary.h"

/* The options of one run.  The common options of every engine (the driver's:
 * chains, draws, ...; the table `engine_common_options`) are fields; an
 * engine's own options (its EngineVT.options tables) are in `set` and read
 * with the engine_opt_* getters, so adding an engine adds no field here. */
typedef struct EngineOpts {
  int chains;       /* independent chains (default 4; 1 for prior) */
  int draws;        /* kept draws per chain (default 1000) */
  int warmup;       /* warmup iterations per chain (default 1000; engines without
                       warmup ignore it) */
  int thin;         /* keep every thin-th draw (default 1) */
  uint64_t seed;
  int threads;         /* the run's worker-thread budget (DriverOpts.threads; 0 =
                          number of CPUs): particle engines advance each chain's
                          particles in max(1, threads / chains) threads */
  double init_radius;  /* initial unconstrained values uniform(-R, R) (default 2;
                          0 = every coordinate 0), as CmdStan's init=R */
  bool no_jit;         /* interpret the log density even where the LLVM JIT
                          could compile it */
  bool jit;            /* compile it even where the run looks too short to
                          repay compiling (nuts, hmc: hmc.c's choice) */
  int sig_figs;        /* significant digits of the CSV's reals (default 6) */
  bool save_warmup;    /* the driver writes warmup draws to the CSV too */
  bool save_metric;    /* write each chain's adapted step size and inverse metric
                          beside its CSV (EngineVT.metric_json) */
  bool choices;        /* the driver writes every draw's random choices beside
                          its CSV (choices.h), also for a fixed structure */
  /* Initial values by name (--init FILE.json): a JSON source whose keys are
     latent addresses, checked when each chain starts (engines with
     ENGINE_INITS); NULL = none.  init_file names it in messages. */
  DataSource *init_values;
  const char *init_file;
  /* The inverse metric to start from (--metric FILE.json, CmdStan's metric
     file; its step size, if any, is put in the stepsize option): metric_dim
     reals (the metric option diag) or a row-major metric_dim x metric_dim
     matrix (dense); NULL = the unit metric.  metric_file names it in messages. */
  const double *metric_inv;
  size_t metric_dim;
  const char *metric_file;
  OptSet *set;         /* the engine's own options given for this run; NULL or
                          missing = the tables' defaults */
  /* Progress within one long step (smc: the events of a run), set by the
     driver; NULL = nobody listens.  Call it through engine_progress. */
  void (*progress)(void *ctx, int chain, long done, long total, const char *unit);
  void *progress_ctx;
  /* The host's stop flag (DriverOpts.interrupt; NULL = none): an engine whose
     init runs long (a training loop) polls it with engine_interrupted and stops
     early, keeping what it has (svi and npe save the params trained so far). */
  atomic_int *interrupt;
  /* The ranks of an MPI job that run this chain together (mpi.h; NULL: this
     process alone).  Every rank runs the chain in step with the same seed;
     an engine may split its work over them (nuts: the log density's rows,
     smc: the particles) as long as its draws do not depend on their number. */
  const MpiComm *comm;
} EngineOpts;

static inline bool engine_interrupted(const EngineOpts *o) {
  return o->interrupt && atomic_load(o->interrupt);
}

/* Chain `chain` has done `done` of `total` (0: not known) `unit`s ("event")
 * of its current step. */
static inline void engine_progress(const EngineOpts *o, int chain, long done, long total,
                                   const char *unit) {
  if (o->progress) o->progress(o->progress_ctx, chain, done, total, unit);
}

enum { METRIC_DIAG = 0, METRIC_DENSE, METRIC_UNIT };
enum { RESAMPLE_SYSTEMATIC = 0, RESAMPLE_MULTINOMIAL, RESAMPLE_STRATIFIED, RESAMPLE_RESIDUAL,
       RESAMPLE_NEVER /* the `resample` option's "never": importance sampling */ };

/* The common options' defaults (chains 4, draws 1000, warmup 1000, thin 1,
 * seed 1, ...: the table's), and no engine options set. */
void engine_opts_default(EngineOpts *o);

/* Set an option by name from text, validated against its table entry: a
 * common one sets its field, an engine's goes to o->set (made on first use).
 * DIAG_USAGE for an unknown name (with a suggestion) or a bad value.  For
 * tests and benchmarks; whether an option applies to the run's engine is
 * the caller's check (engine_option_applies; the API does it at ppl_run). */
bool engine_opts_set(EngineOpts *o, const char *name, const char *value, Diag *d);

/* Set the option of spec to v (already validated): a common one's field, or
 * an engine's in o->set. */
void engine_opts_put(EngineOpts *o, const OptSpec *spec, OptValue v);

/* Engines read their own options with these (at init): the value in o->set,
 * else the default of the table entry with that name.  One name has one entry
 * in all the tables (test_options checks), so the default is well defined. */
int64_t engine_opt_int(const EngineOpts *o, const char *name);
double engine_opt_real(const EngineOpts *o, const char *name);
bool engine_opt_bool(const EngineOpts *o, const char *name);
int engine_opt_enum(const EngineOpts *o, const char *name);

#define ENGINE_MAX_STATS 8

struct CsvConfig; /* csv.h */


/* One draw of one chain. */
typedef struct Draw {
  Value *outputs;    /* IrProgram.noutputs values (interp_output of the run) */
  int nlatents;      /* the latents no output holds, by address, in run order */
  const InterpLatent *latents; /* (interp_nested_latents of the run) */
  double lp;         /* lp__: log joint density of latents and observations
                        (prior: log prior density) */
  double log_weight; /* importance log weight (weighted engines), else 0 */
  double stats[ENGINE_MAX_STATS]; /* engine columns, as named in EngineVT.stat_names */
} Draw;

/* A finished run's outputs and nested latents into out. */
void engine_draw_outputs(Draw *out, const InterpState *st);

typedef struct EngineVT {
  const char *name;        /* "prior", "is", "mh" */
  const char *summary;     /* one line for --help and `ppl check` */
  int nstats;
  const char *stat_names[ENGINE_MAX_STATS]; /* CSV columns, e.g. "accept_stat__" */
  /* Traits: what the engine needs and gives.  The selector, `ppl check` and
     the API decide "can this engine run this program" from these. */
  bool weighted;           /* gives evidence: draws carry log_weight; log
                              evidence is estimated */
  bool uses_warmup;        /* runs warmup iterations before the draws */
  bool random_walk;        /* accept_stat__ is a random-walk acceptance rate: the
                              run warns when its mean is near 0 or 1 */
  unsigned traits;         /* ENGINE_* flags below */
  /* Its own options: up to four tables, each ending with OPT_END; a family's
     shared table (hmc_options, particle_options) first.  NULL = none. */
  const OptSpec *options[4];
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
  /* After the last step: the standard error of that estimate as the run
     itself gauges it (SMC: Lee and Whiteley's), on the log scale.  The
     driver reports the larger of it and the chains' spread. */
  bool (*log_evidence_se)(void *state, double *se);
  /* After the last step: one line for the summary, e.g. "12 of 1000
     transitions diverged; increase --adapt-delta ..." (NULL or "" = nothing). */
  const char *(*chain_notes)(void *state);
  /* After the last step: how many of the *transitions (warmup included) met a
     point the program rejected (a failed parameter check: the point is
     impossible), and the first such message ("model.ppl:5:3: normal: sigma
     must be positive, got -0.3") with the latent that is that parameter
     (*latent "sigma", or NULL when the program computes it otherwise). */
  long (*rejections)(void *state, long *transitions, const char **first, const char **latent);
  /* After init: how the log density runs, for the summary ("LLVM JIT
     (compiled in 12 ms)", "interpreter (not compiled: ...)"); NULL = no line. */
  const char *(*backend)(void *state);
  /* Before the files are opened: the engine's settings in CmdStan's CSV
     header (nuts, hmc: "algorithm = hmc", the metric, the step size, ...). */
  void (*csv_config)(const EngineOpts *o, struct CsvConfig *cfg);
  /* After warmup: the adaptation result as a JSON object in CmdStan's metric
     file format ({"stepsize": ..., "metric_type": "diag_e", "inv_metric":
     [...]}), which the driver writes beside the CSV under --save-metric. */
  const char *(*metric_json)(void *state);
  /* After the last step: a variational engine's fit and the log importance
     weights of its draws from q, from which the driver computes the run's
     PSIS k-hat and log evidence (the summary's "vi"); the draws themselves
     are summarised unweighted, as the approximation gives them. */
  bool (*vi_report)(void *state, ViReport *out);
} EngineVT;

enum {
  ENGINE_GRADIENT = 1 << 0, /* needs the gradient: every latent continuous, a fixed
                               structure and at least one latent */
  ENGINE_DISCRETE = 1 << 1, /* accepts discrete (and string) latents */
  ENGINE_DYNAMIC = 1 << 2,  /* accepts a structure that changes between runs */
  ENGINE_IMPROPER = 1 << 3, /* never draws from the prior, so improper priors
                               (flat()) are fine */
  ENGINE_INITS = 1 << 4,    /* starts from initial values by name (init_values) */
  ENGINE_GUIDE = 1 << 5,    /* draws the latents from the program's guide block, so
                               needs one when the program has latents (svi) */
  ENGINE_LOAD = 1 << 6,     /* draws from a trained parameter file (--load), so runs
                               only with one: never picked by the analysis alone
                               (amortized) */
};

/* Whether e can run a program with this analysis, by its traits; if not,
 * *why_not says why ("it needs every latent continuous, and 'k' is discrete"). */
bool engine_fits(const EngineVT *e, const IrAnalysis *a, const char **why_not);

/* ---- the option registry: the common table and every engine's tables ---- */

/* The options of every run (chains, draws, warmup, thin, seed, threads,
 * init, no-jit), ending with OPT_END. */
const OptSpec *engine_common_options(void);
/* --enum-marginals, an option of the gradient engines (engine.c) */
extern const OptSpec enum_options[];
/* The options of e (NULL: the common ones) in order into out[0..max);
 * returns how many there are. */
int engine_options(const EngineVT *e, const OptSpec **out, int max);
/* The entry named name among the common options and every engine's, or NULL. */
const OptSpec *engine_option_find(const char *name);
/* True if name is a common option or one of e's. */
bool engine_option_applies(const EngineVT *e, const char *name);
/* "smc, pgibbs": the engines that have option name ("" if none). */
const char *engine_option_users(const char *name);
/* The known option name closest to name, if close enough to be a typo; else NULL. */
const char *engine_option_suggest(const char *name);
/* "unknown option '--particle' (did you mean '--particles'?)" */
const char *engine_option_unknown(const char *name);

const EngineVT *engine_lookup(const char *name);
/* NULL-terminated list of the engines this build has. */
const EngineVT *const *engine_all(void);

/* The default choice for a program, with the reason:
 * "mh — 2 discrete latents; single-site Metropolis-Hastings works for every program". */
const EngineVT *engine_select(const IrAnalysis *a, const char **why);

#endif
