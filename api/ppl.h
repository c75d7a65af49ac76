/* ppl.h — the one public header of libppl, the ppl probabilistic programming
 * language.  A host program compiles a model, gives it data, runs an inference
 * engine and reads draws and summaries:
 *
 *     ppl_config cfg;
 *     ppl_config_default(&cfg);
 *     ppl_context *ctx = ppl_context_new(&cfg);
 *     ppl_model *m;
 *     if (ppl_compile_file(ctx, "eight_schools.ppl", &m) != PPL_OK)
 *       fprintf(stderr, "%s\n", ppl_errmsg(ctx));
 *     ppl_set_data_file(m, "eight_schools.data.json");
 *     ppl_run_options ro;
 *     ppl_run_options_default(&ro);
 *     ppl_result *r;
 *     ppl_run(m, &ro, &r);
 *     ...
 *     ppl_result_free(r); ppl_model_free(m); ppl_context_free(ctx);
 *
 * Conventions:
 *  - Handles are opaque.  Every object belongs to the context it was made in and
 *    must be freed before it (ppl_model_free, ppl_result_free, then
 *    ppl_context_free).
 *  - Functions that can fail return ppl_status; on failure the context holds the
 *    message (ppl_errmsg) and the source position (ppl_errpos), e.g.
 *    "model.ppl:12:7: unknown variable 'thta'".  The library never exits, aborts
 *    or prints on its own (print() statements of a model go to
 *    ppl_config.print_out; the progress lines of ppl_run_options.progress and
 *    a CSV output named "-" go to stderr and stdout because the host asked).
 *  - Out of memory is an error like the others (PPL_ERR_NOMEM, "out of memory
 *    (allocating N bytes)"), never an abort; see PPL_ERR_NOMEM for what stays
 *    usable.  ppl_run refuses beforehand a run whose draws cannot fit in
 *    physical memory (PPL_ERR_USAGE, saying how much it needs).
 *  - Strings returned by the library belong to the object they came from and stay
 *    valid until it is freed.  Strings and arrays passed in are copied.
 *  - No global state: contexts are independent; one context may be used by one
 *    thread at a time, and different contexts in different threads at once.
 */
#ifndef PPL_H
#define PPL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ----------------------------------------------------------- */

#define PPL_VERSION_MAJOR 0
#define PPL_VERSION_MINOR 3
#define PPL_VERSION_PATCH 0
#define PPL_VERSION_NUMBER (PPL_VERSION_MAJOR * 10000 + PPL_VERSION_MINOR * 100 + PPL_VERSION_PATCH)

/* The version of the library actually linked (compare with PPL_VERSION_NUMBER). */
int ppl_version(void);
/* "0.3.0"; static storage. */
const char *ppl_version_string(void);

/* ---- status ------------------------------------------------------------ */

typedef enum ppl_status {
  PPL_OK = 0,
  PPL_ERR_USAGE = 1,    /* bad argument or option, API misuse */
  PPL_ERR_SYNTAX = 2,   /* lexical or syntax error in a model */
  PPL_ERR_TYPE = 3,     /* semantic error in a model: names, types, shapes, misuse of ~ */
  PPL_ERR_DATA = 4,     /* data missing, malformed or not matching the data block */
  PPL_ERR_RUNTIME = 5,  /* error while running a model */
  PPL_ERR_IO = 6,       /* a file could not be read or written */
  PPL_ERR_INTERNAL = 7, /* a bug in ppl: please report it */
  PPL_ERR_NOMEM = 8,    /* out of memory: "out of memory (allocating N bytes)".  After it
                           the model of the call must only be freed; the context and
                           its other models stay usable */
  PPL_ERR_INTERRUPTED = 9 /* ppl_interrupt stopped a run before it kept any draw */
} ppl_status;

/* "syntax error", "data error", ...; static storage. */
const char *ppl_status_name(ppl_status s);

/* ---- context ----------------------------------------------------------- */

typedef struct ppl_config {
  FILE *print_out; /* where model print() output goes; default stdout */
  int threads;     /* worker threads; 0 (default) = number of CPUs.  Chains run in
                      min(threads, chains) of them; smc and pgibbs also advance
                      each chain's particles in max(1, threads / chains) */
  int no_jit;      /* nonzero: ppl_log_density* interpret instead of compiling the
                      log density with LLVM (default 0: compile where possible) */
} ppl_config;

/* Fills *cfg with the defaults. */
void ppl_config_default(ppl_config *cfg);

typedef struct ppl_context ppl_context;

/* New context; cfg may be NULL for the defaults. Returns NULL only when out of
 * memory. The caller owns the context and frees it with ppl_context_free. */
ppl_context *ppl_context_new(const ppl_config *cfg);
/* Frees the context. Models and results made from it must be freed first. */
void ppl_context_free(ppl_context *ctx);

/* Ask the running (or the next) ppl_run on ctx to stop at its next iteration:
 * each chain stops between two draws, its CSV keeps whole rows, and ppl_run
 * returns a result of the draws kept so far (the fewest any chain kept;
 * ppl_result_interrupted says so, and the summary text and JSON are marked),
 * or PPL_ERR_INTERRUPTED when no draw was kept yet.  The request is cleared
 * when ppl_run returns.  Async-signal-safe: a host may call it from a SIGINT
 * handler (it only sets an atomic flag of the context). */
void ppl_interrupt(ppl_context *ctx);

/* The message of the last failed call on this context ("" if none): owned by the
 * context, valid until the next call on it.  It may have a second line, a hint
 * with its own position ("model.ppl:3:3: hint: ..."), e.g. for a Stan habit. */
const char *ppl_errmsg(const ppl_context *ctx);
/* The status and source position of the last failed call (file may be NULL,
 * line/col 0 when the error has no position). Any out pointer may be NULL. */
ppl_status ppl_errpos(const ppl_context *ctx, const char **file, int *line, int *col);

/* A host function callable from models by `name` with `arity` real arguments,
 * returning a real. It must be registered before the models that call it are
 * compiled. fn sets *err = 1 (and returns anything) to signal a domain error;
 * it may be called from several threads at once with the same ud.  Its
 * derivatives (NUTS, HMC, ppl_log_density_gradient) are numerical: central
 * differences, Richardson-extrapolated (about 1e-10 relative for smooth
 * functions), four more calls per argument that carries a gradient. */
typedef double (*ppl_host_fn)(void *ud, const double *args, int nargs, int *err);
ppl_status ppl_register_function(ppl_context *ctx, const char *name, int arity, ppl_host_fn fn,
                                 void *ud);

/* The same with vector arguments and, optionally, the host's own derivative.
 * args spells the arguments, one letter each (at most 16): 'r' a real, 'v' a
 * vector of reals (a vector, row_vector or real[] of any length, known at
 * the call).  fn receives the reals of all arguments in order in x, lens[i]
 * of argument i (1 for 'r'), and returns the value; when grad is not NULL it
 * also writes the partial derivative with respect to each x[k] into grad[k]
 * (lens[0] + ... + lens[nargs-1] of them).  has_gradient != 0: gradients use
 * these partials, one call per evaluation; 0: grad is always NULL and the
 * partials are numerical, as for ppl_register_function.  Errors and threads
 * as there. */
typedef double (*ppl_host_grad_fn)(void *ud, int nargs, const int *lens, const double *x,
                                   double *grad, int *err);
ppl_status ppl_register_function_ex(ppl_context *ctx, const char *name, const char *args,
                                    ppl_host_grad_fn fn, int has_gradient, void *ud);

/* A distribution family supplied by the host, for `~` and observe() in the
 * models compiled from this context afterwards (other contexts do not see it;
 * built-in families, host functions and families already registered keep
 * their names).  A scalar family: nparams real parameters, values real (or
 * int when discrete).  Callbacks may run from several threads at once with
 * the same ud. */
typedef enum {
  PPL_SUPPORT_REAL,     /* all reals (discrete: all ints) */
  PPL_SUPPORT_POSITIVE, /* (0, inf) (discrete: ints >= 0) */
  PPL_SUPPORT_UNIT,     /* (0, 1) (discrete: {0, 1}) */
} ppl_support;
typedef enum {
  PPL_PARAM_REAL,     /* finite */
  PPL_PARAM_POSITIVE, /* finite, > 0 */
  PPL_PARAM_UNIT,     /* in [0, 1] */
} ppl_param_kind;
typedef struct ppl_family {
  const char *name;
  int nparams;                       /* 1..4 */
  const char *param_names[4];        /* for messages; NULL: "p1", "p2", ... */
  ppl_param_kind param_kinds[4];     /* checked before any callback runs */
  int discrete;                      /* int values */
  ppl_support support;
  /* log density (mass) at x, normalised; -inf outside the support.  Required. */
  double (*lpdf)(void *ud, double x, const double *params);
  /* the same, and where it is finite its partials d/dx (continuous families)
     and d/dparams[i]: what nuts and hmc need.  NULL: gradient engines report
     "no gradient is available for this family". */
  double (*lpdf_grad)(void *ud, double x, const double *params, double *dx, double *dparams);
  /* the quantile function at u in (0, 1): draws (u from the run's random
     stream, so runs stay reproducible).  Required. */
  double (*quantile)(void *ud, double u, const double *params);
  void *ud;
} ppl_family;
/* Copies *fam (and its strings); ud is kept as given. */
ppl_status ppl_register_family(ppl_context *ctx, const ppl_family *fam);

/* A host function on strings, for language-model cascades' tools (a
 * calculator, a look-up): called from models as `name(a, b, ...)` with
 * `arity` string arguments (numbers are converted with to_string in the
 * program), it returns a string.  fn writes its result to *out, allocated
 * with malloc (ppl frees it), and returns 0; or returns non-zero with a
 * message in err (the run fails with it, at the call's source position).
 * Registered before the models that call it are compiled; threads as for
 * ppl_register_function. */
typedef int (*ppl_host_str_fn)(void *ud, int nargs, const char *const *args, char **out, char *err,
                               size_t errsz);
ppl_status ppl_register_string_function(ppl_context *ctx, const char *name, int arity,
                                        ppl_host_str_fn fn, void *ud);

/* ---- language-model backends (docs/cascades.md) ------------------------ */

/* A language model for the `lm` / `lm_next` families of the models run in
 * this context: tokenize, detokenize, vocabulary, end of sequence, and the
 * full next-token log-probability vector for a context state; states fork
 * (particles share a prompt's KV cache) and are released one by one.  One
 * eval call is one batch over several states.  Every callback receives
 * self; none is called from two threads at once.  Contracts, member by
 * member, as the built-in backends keep them (ngram:, llama:):
 *   tokenize:   text[0..len) -> out[0..max); returns the count (may exceed
 *               max: call again with room) or -1 with a message in err.
 *   token_text: the bytes of token tok into buf[0..cap) (not terminated);
 *               returns their count (may exceed cap), -1 for a bad token.
 *   start:      a new state holding the empty context; NULL + err.
 *   fork:       a new state with s's context; NULL + err.
 *   release:    frees one state.
 *   eval:       for i < n, appends toks[i][0..ntoks[i]) to states[i] and
 *               writes its normalised next-token log-probabilities to
 *               logp + i * n_vocab; 0, or -1 with a message.
 *   score:      optional (NULL: eval is used): appends toks[0..n) to s and
 *               adds their log-probabilities to *lp.
 *   destroy:    optional: frees self; called by ppl_context_free.
 * ppl copies *lm (and name); self stays the host's until destroy. */
typedef struct ppl_lm_state ppl_lm_state;
typedef struct ppl_lm_backend {
  const char *name;
  void *self;
  int n_vocab;
  int32_t eos; /* end-of-sequence token, or -1 */
  int (*tokenize)(void *self, const char *text, size_t len, int32_t *out, int max, char *err,
                  size_t errsz);
  int (*token_text)(void *self, int32_t tok, char *buf, int cap);
  ppl_lm_state *(*start)(void *self, char *err, size_t errsz);
  ppl_lm_state *(*fork)(void *self, const ppl_lm_state *s, char *err, size_t errsz);
  void (*release)(void *self, ppl_lm_state *s);
  int (*eval)(void *self, int n, ppl_lm_state *const *states, const int32_t *const *toks,
              const int *ntoks, float *logp, char *err, size_t errsz);
  int (*score)(void *self, ppl_lm_state *s, const int32_t *toks, int n, double *lp, char *err,
               size_t errsz);
  void (*destroy)(void *self);
} ppl_lm_backend;
/* Register lm under name ("" is the default model, used by `lm(...)` calls
 * that name none; others are chosen with `model = "NAME"`).  A run's
 * `lm` option (`--lm SPEC` or `--lm NAME=SPEC`: ngram:FILE, llama:FILE.gguf)
 * opens a built-in backend instead for that run. */
ppl_status ppl_register_lm(ppl_context *ctx, const char *name, const ppl_lm_backend *lm);

/* ---- models ------------------------------------------------------------ */

typedef struct ppl_model ppl_model;

/* Compile a model from a file, or from source text (`name` is used in messages,
 * e.g. "model.ppl"). On success *out is a new model owned by the caller (free
 * with ppl_model_free); on failure *out is NULL. */
ppl_status ppl_compile_file(ppl_context *ctx, const char *path, ppl_model **out);
ppl_status ppl_compile_string(ppl_context *ctx, const char *source, const char *name,
                              ppl_model **out);
void ppl_model_free(ppl_model *m);
/* The compiler's warnings: the program is valid but probably not what was
 * meant (e.g. "model.ppl:4:15: warning: integer division 1 / N rounds toward
 * zero; ..."), one line each, in source order.  Never printed by the
 * library; NULL if i is out of range.  Owned by the model. */
int ppl_model_num_warnings(const ppl_model *m);
const char *ppl_model_warning(const ppl_model *m, int i);

/* Give the model its data, replacing any data given before. JSON in CmdStan's
 * layout (`name` is used in messages, e.g. "data.json"), or a file. The data are
 * validated against the data block at once. */
ppl_status ppl_set_data_json(ppl_model *m, const char *json, const char *name);
ppl_status ppl_set_data_file(ppl_model *m, const char *path);
/* Data as typed arrays, one variable at a time, then ppl_data_commit to validate
 * them against the data block: `dims` has `ndims` sizes; values are row-major for
 * arrays (first index slowest) and for matrices (row by row, as in JSON). */
ppl_status ppl_data_int(ppl_model *m, const char *name, const int64_t *values, int ndims,
                        const int *dims);
ppl_status ppl_data_real(ppl_model *m, const char *name, const double *values, int ndims,
                         const int *dims);
ppl_status ppl_data_commit(ppl_model *m);

/* The IR listing (`ppl ir`) and the structural analysis (`ppl check`) as text
 * owned by the model. */
const char *ppl_model_ir(ppl_model *m);
const char *ppl_model_analysis(ppl_model *m);
/* The latents' dependency graph (`ppl check --deps`): per latent and
 * observation its parents, children and Markov blanket, as text owned by the
 * model. */
const char *ppl_model_dependencies(ppl_model *m);
/* The model block's log density and gradient compiled by the LLVM JIT, as
 * optimised LLVM IR text (`ppl ir --llvm`), owned by the model; needs the data.
 * NULL on failure (ppl_errmsg says why, e.g. why the JIT refused the program). */
const char *ppl_model_llvm_ir(ppl_model *m);
/* Which statements of the compiled log density still call back into the
 * interpreter's implementations (`ppl run --verbose`): one line per call
 * site, "model.ppl:12:7: log_mix(...): runtime call ...", then their count;
 * owned by the model; needs the data.  NULL on failure, as
 * ppl_model_llvm_ir. */
const char *ppl_model_runtime_calls(ppl_model *m);
/* How engine svi trains each plate with a batch size (`ppl run --verbose`):
 * one line a plate, "svi: plate i (model.ppl:20:3): one pass over the minibatch"
 * or "... row by row: WHY" (ir/plate_vec.h); "" without such plates.  Owned
 * by the model. */
const char *ppl_model_plates(ppl_model *m);

/* ---- log density ------------------------------------------------------- */

/* For fixed-structure programs with data set: the number of unconstrained
 * parameters (0 with an error for dynamic-structure programs). */
ppl_status ppl_num_unconstrained(ppl_model *m, size_t *n);
/* Log density (up to nothing: fully normalised, including the log-Jacobians of
 * the constraining transforms) at the unconstrained point theta[0..n). */
ppl_status ppl_log_density(ppl_model *m, const double *theta, size_t n, double *lp);
/* The same log density and its gradient with respect to theta (grad has n
 * entries), by reverse-mode automatic differentiation. */
ppl_status ppl_log_density_gradient(ppl_model *m, const double *theta, size_t n, double *lp,
                                    double *grad);
/* theta (unconstrained, n) -> the constrained latents in output order
 * (ppl_num_constrained of them), and back. */
ppl_status ppl_num_constrained(ppl_model *m, size_t *n);
ppl_status ppl_constrain(ppl_model *m, const double *theta, double *x);
ppl_status ppl_unconstrain(ppl_model *m, const double *x, double *theta);

/* ---- running ----------------------------------------------------------- */

enum { PPL_PROGRESS_OFF = 0, PPL_PROGRESS_AUTO = 1, PPL_PROGRESS_LINES = 2 };

typedef struct ppl_run_options {
  const char *engine;      /* "prior", "is", "mh", ...; NULL = chosen by analysis */
  int chains;              /* default 4 */
  int draws;               /* per chain, default 1000 */
  int warmup;              /* per chain, default 1000 (engines without warmup ignore it) */
  int thin;                /* default 1 */
  uint64_t seed;           /* default 1 */
  const char *output_csv;  /* CmdStan CSV path, or NULL; several chains write
                              NAME_1.csv, NAME_2.csv, ...  "-" is stdout and a
                              FIFO is written as is (one chain only); a
                              character device (/dev/null) is written as is by
                              every chain.  Refused (PPL_ERR_USAGE) when it is
                              the model or data file.  Beside a regular file,
                              NAME_choices.jsonl (NAME_1_choices.jsonl, ...)
                              holds every random choice of each draw by
                              address, one JSON object a CSV row: always for a
                              program whose addresses change between runs (its
                              latents in loops have no columns), else with
                              ppl_run_set(&o, "choices", "true"); read it as
                              JSON Lines (docs/output.md), its name from
                              ppl_result_choices_file */
  const char *summary_json;/* summary JSON path, or NULL; checked writable (and
                              not an input) before the run starts */
  int progress;            /* progress on stderr, one line per chain (phase, bar,
                              iteration i/N, it/s, time left): 0 none (default);
                              PPL_PROGRESS_AUTO (any other nonzero value) redrawn
                              in place with ANSI codes when stderr is a terminal,
                              else plain lines; PPL_PROGRESS_LINES plain lines at
                              every tenth of a chain (no \r, no escape codes) */
  /* gradient-based engines (nuts, hmc) */
  const char *metric;      /* "diag" (default), "dense", "unit" */
  int max_depth;           /* NUTS tree depth limit, default 10 */
  double adapt_delta;      /* target acceptance statistic in (0, 1), default 0.8 */
  /* particle engines (smc, pgibbs) */
  int particles;           /* default 0: the engine chooses (smc 1000, pgibbs from the
                              program's size) */
  const char *resample;    /* "systematic" (default), "multinomial", "stratified", "residual" */
  double ess_threshold;    /* resample when ESS/N falls below it, in [0, 1], default 0.5 */
  int rejuvenate;          /* rounds of MH moves per particle after each resampling,
                              with tempered events; -1 (default): as many as needed
                              when the program has static parameters; 0: none */
  int ancestor_sampling;   /* pgibbs: nonzero = ancestor sampling (PGAS), default 0 */
  int no_jit;              /* nuts/hmc: nonzero = interpret the log density instead of
                              compiling it with LLVM; smc: advance the particles in the
                              interpreter instead of as compiled particle steps (default 0) */
  /* gradient-based engines, continued (CmdStan's names) */
  double stepsize;         /* initial step size before adaptation, > 0, default 1 */
  double stepsize_jitter;  /* each transition's step size times uniform(1 - j, 1 + j),
                              j in [0, 1], default 0 */
  double int_time;         /* static HMC integration time, > 0, default 2 pi */
  double init_radius;      /* initial values uniform(-R, R) on the unconstrained scale,
                              R >= 0 (0: all zero), default 2.  Initial values by
                              name and a metric to start from: ppl_run_set with
                              "init" / "metric" and a file path (or JSON text
                              starting with '{'), see docs/embedding.md */
  /* Which outputs get CSV and summary columns, by their names in the model
     ("theta,sigma"); lp__ and the engine's columns always stay.  A latent
     declared in a loop, branch or function is named by its name too ("h"
     selects h.2, h.3, ...).  At most one of the two; NULL = every output.  An unknown name is PPL_ERR_USAGE, the
     message listing the model's outputs. */
  const char *include;     /* only these */
  const char *exclude;     /* all but these */
  /* The options given by name with ppl_run_set: private, owned by these
     options (ppl_run_options_free); NULL after ppl_run_options_default. */
  struct ppl_run_named *named;
} ppl_run_options;

/* Fills *o with the defaults (of the engines' option tables). Call
 * ppl_run_options_free first if ppl_run_set was used on *o. */
void ppl_run_options_default(ppl_run_options *o);

/* Set an option by name, as the command line does: `name` is the CLI's
 * spelling without the dashes ("particles", "adapt-delta", "no-jit"), `value`
 * its text ("1000", "0.9", "true"); ppl_engine_options lists them.  The value is
 * validated at once against the option's table; PPL_ERR_USAGE for an unknown
 * name (the message suggests the closest known one) or a bad value ("--particles
 * expects an integer from 1 to 100000000, got 'abc'"), the message then in
 * ppl_run_options_errmsg.  An option with a field above sets that field too.
 * At ppl_run, an option set by name that the run's engine does not have is an
 * error naming the engines that have it (fields set directly are not checked:
 * engines ignore the ones they do not use, as before).
 * "lm" may be given several times ("ngram:corpus.txt", "judge=llama:m.gguf"):
 * each adds a language model to the run (docs/language.md).
 * Memory: the first call allocates a store owned by *o (the strings passed in
 * are not kept); release it with ppl_run_options_free.  Copies of *o share
 * the store: free it once, and only after the last ppl_run with a copy. */
ppl_status ppl_run_set(ppl_run_options *o, const char *name, const char *value);
/* The message of the last failed ppl_run_set on o ("" if none); owned by o,
 * valid until its next ppl_run_set or ppl_run_options_free. */
const char *ppl_run_options_errmsg(const ppl_run_options *o);
/* Frees what ppl_run_set allocated (the typed fields are left as they are);
 * o->named is NULL afterwards. */
void ppl_run_options_free(ppl_run_options *o);
/* MPI (docs/scaling.md): spread the runs with o over the ranks of the host's
 * communicator.  comm points at the host's MPI_Comm, which must stay valid
 * while runs with o go on; every rank calls ppl_run with the same model, data
 * and options, and every rank gets the whole result (rank 0 alone writes the
 * files).  split: "auto" (NULL) runs chain c on rank c mod R when there are
 * at least as many chains as ranks, else every rank runs every chain and the
 * engine splits its work; "chains" or "shard" force either.  The draws are
 * the single-process run's for every R.  PPL_ERR_USAGE when this build has no
 * MPI, MPI is not initialised, or split is none of these. */
ppl_status ppl_run_set_mpi(ppl_run_options *o, const void *comm, const char *split);

/* One option of an engine's table, as ppl_engine_options lists it.  Every
 * string is static storage. */
typedef struct ppl_option_info {
  const char *name;   /* "particles" (--particles on the command line) */
  const char *type;   /* "int", "real", "bool", "enum" or "text" (--lm) */
  const char *def;    /* the default as text: "1000", "0.8", "diag", "false" */
  const char *const *choices; /* enum: the values, NULL-terminated; else NULL */
  int64_t imin, imax; /* int: the inclusive range */
  double min, max;    /* real: the range, finite values only (max may be INFINITY) */
  int min_open;       /* real: nonzero when min itself is excluded (> 0) */
  const char *arg;    /* the value's name in help texts: "N", "X" (NULL for bool) */
  const char *help;   /* one line */
} ppl_option_info;

/* The engines of this build: the i-th one's name ("nuts"), and its one-line
 * summary in *summary if not NULL; NULL past the last.  Static storage. */
const char *ppl_engine_name(int i, const char **summary);
/* The options of `engine` ("smc"), or with engine NULL the common options every
 * engine takes (chains, draws, seed, ...), into out[0..max) (out may be NULL
 * when max is 0).  Returns how many there are (call again with a larger array
 * when that is more than max), or -1 for an unknown engine. */
int ppl_engine_options(const char *engine, ppl_option_info *out, int max);

/* The engine ppl_run would use: `requested` (NULL = let the analysis choose)
 * after validation, and why, e.g. "mh — 10 continuous latents, fixed structure: ...".
 * Strings are owned by the model. */
ppl_status ppl_model_engine(ppl_model *m, const char *requested, const char **name,
                            const char **why);

/* The engine ppl_run(m, o) would use, and why: as ppl_model_engine with
 * o->engine, and the run's other options seen too.  With the option "load"
 * (ppl_run_set(&o, "load", "model.params")) naming a file that ppl_train
 * wrote for this program, no engine requested picks "amortized" ("amortized
 * — --load model.params holds a guide trained for this program ..."); the
 * engine "amortized" without "load" is PPL_ERR_USAGE.  A file trained for
 * another program (or truncated, or not a ppl parameter file) is
 * PPL_ERR_DATA, an unreadable one PPL_ERR_IO.  Strings are owned by the
 * model. */
ppl_status ppl_run_engine(ppl_model *m, const ppl_run_options *o, const char **name,
                          const char **why);

typedef struct ppl_result ppl_result;

/* What ppl_run checks before running, without running: the engine (as
 * ppl_model_engine chooses it) and every option of o, validated against that
 * engine's tables (hosts can report a bad option before starting a long run). */
ppl_status ppl_run_check(ppl_model *m, const ppl_run_options *o);

/* Run inference. On success *out is a new result owned by the caller (free with
 * ppl_result_free). */
ppl_status ppl_run(ppl_model *m, const ppl_run_options *o, ppl_result **out);
void ppl_result_free(ppl_result *r);

/* The engine that ran and why it was chosen (owned by the result). */
const char *ppl_result_engine(const ppl_result *r);
const char *ppl_result_engine_reason(const ppl_result *r);
/* How the engine ran the log density: "LLVM JIT (compiled in 12 ms)",
 * "interpreter (not compiled: ...)"; NULL for engines without one. */
const char *ppl_result_backend(const ppl_result *r);
int ppl_result_num_chains(const ppl_result *r);
int ppl_result_num_draws(const ppl_result *r); /* per chain */
/* Columns: lp__, the engine's columns (accept_stat__, log_weight__, ...) and
 * the model's outputs in CmdStan naming (theta.1, m.1.2). */
int ppl_result_num_columns(const ppl_result *r);
const char *ppl_result_column_name(const ppl_result *r, int col);
/* The same column as the summary table labels it ("theta[1]", "h[2]", "f[1]/x");
 * owned by the result, NULL if col is out of range. */
const char *ppl_result_column_label(const ppl_result *r, int col);
/* Index of a column by CmdStan name ("theta.1") or summary name ("theta[1]"); -1 if none. */
int ppl_result_column_index(const ppl_result *r, const char *name);
double ppl_result_draw(const ppl_result *r, int chain, int draw, int col);

typedef struct ppl_summary {
  double mean, sd, mcse, q5, q50, q95, ess_bulk, ess_tail, rhat; /* NaN when not applicable;
                                                                    rhat +inf: chains each constant
                                                                    at their own value */
} ppl_summary;
ppl_status ppl_result_summary(const ppl_result *r, int col, ppl_summary *out);
/* The stansummary-like table the command line prints (owned by the result). */
const char *ppl_result_summary_text(const ppl_result *r);
/* Nonzero when ppl_interrupt stopped the run early: ppl_result_num_draws is
 * then the draws kept, and chains that kept none are left out. */
int ppl_result_interrupted(const ppl_result *r);
/* The choices file (every random choice of each draw, JSON Lines; see
 * ppl_run_options.output_csv) that chain `chain` (0-based) of the result
 * wrote, or NULL when the run wrote none.  Owned by the result. */
const char *ppl_result_choices_file(const ppl_result *r, int chain);
/* Log evidence and its standard error; PPL_ERR_USAGE if the engine does not estimate it.
 * advi, svi and amortized give the estimate their summary prints, from the
 * draws' log p - log q (trustworthy only with a small PSIS k-hat). */
ppl_status ppl_result_log_evidence(const ppl_result *r, double *estimate, double *se);
/* The warnings of the checks every run gets (R-hat, ESS, E-BFMI, divergences,
 * tree depth, collapsed weights, MH acceptance, points the program rejected;
 * docs/output.md): how many,
 * the i-th one's message (NULL if i is out of range) with its kind ("rhat",
 * ...) and one line of advice, the variables it names (k-th, NULL past the
 * last), and all of them as the summary table prints them ("" when none).
 * Strings are owned by the result. */
int ppl_result_num_warnings(const ppl_result *r);
const char *ppl_result_warning(const ppl_result *r, int i, const char **kind,
                               const char **advice);
const char *ppl_result_warning_variable(const ppl_result *r, int i, int k);
const char *ppl_result_warnings_text(const ppl_result *r);

/* ---- training once, drawing for new data (amortized inference) -------- */

/* What ppl_train did. */
typedef struct ppl_train_info {
  const char *method; /* "svi" (a guide program) or "npe" (whole-program); static storage */
  long steps;         /* svi: optimisation steps taken; npe: simulations kept */
  double epochs;      /* passes over the training data: svi, over the plate that has a
                         batch size (0 without one); npe, over the simulations */
  long examples;      /* svi: the elements of that plate the steps saw (0 without one) */
  double elbo;        /* svi: the ELBO of the saved params on the whole data (--elbo-samples
                         draws); npe: NaN */
  double loss;        /* npe: the last epoch's held-out -log q(latents | data); svi: NaN */
  double seconds;     /* wall time of the training */
  int converged;      /* svi: ran its --iter steps (or met --tol-rel-obj) */
  int interrupted;    /* ppl_interrupt stopped it early: the file holds what it had */
} ppl_train_info;

/* Train the model's params once, with its data, and write them to save_path
 * (safetensors with ppl's metadata: this program's hash and the kind), for
 * ppl_run with ppl_run_set(&o, "load", save_path): the engine "amortized"
 * then draws for new data in one pass, with no further optimisation.
 *   o->engine NULL or "svi": a program with a guide block (encoder networks
 *     mapping each observation to its latent's posterior) and its model's
 *     params are trained jointly with svi's loop and options (iter, lr,
 *     optimizer, grad-samples, lr-schedule, ...); plates with a batch size are
 *     subsampled each step ("epochs" E instead of "iter": E passes over
 *     the plate).  The file's kind is "svi".
 *   o->engine "amortized": whole-program amortization (`ppl train
 *     --amortize`): a conditional flow trained on simulations from the
 *     program's prior predictive (its options: simulations, ...); observed
 *     values missing from the data are fine.  The file's kind is "npe".
 * One fit from the seed (o->seed); the options chains, draws, warmup, thin
 * and the output fields do not apply (PPL_ERR_USAGE when set by name).  With
 * "load" naming a file ppl_train wrote for this program, svi training starts
 * from its params (resuming an interrupted training; the optimiser's moments
 * and the learning-rate schedule start afresh).
 * o->progress: a progress line on stderr (epoch, step, smoothed ELBO,
 * examples/s).  ppl_interrupt stops it before its next step and the file is
 * still written, info->interrupted set (PPL_OK).  Errors: save_path the
 * model or data file (PPL_ERR_USAGE) or not writable (PPL_ERR_IO); a program
 * svi cannot train (no guide for its latents, no param: PPL_ERR_USAGE); the
 * program's errors.  info may be NULL; it is filled on success. */
ppl_status ppl_train(ppl_model *m, const ppl_run_options *o, const char *save_path,
                     ppl_train_info *info);

/* ---- learned MCMC proposals (engine lmh) ------------------------------ */

/* The model's motifs (docs/engines.md, "lmh"): its blocks in one run from the
 * prior, probed, by signature, and whether the library directory dir (NULL:
 * the default, $XDG_DATA_HOME/ppl/proposals or ~/.local/share/ppl/proposals)
 * has a trained proposal for each; lines for `ppl check`:
 *   motifs: 14 blocks
 *     finite->normal(mu): 12 blocks (z[1] ...), trained proposal in DIR
 *     normal->normal(mu): 2 blocks (mu[1] ...), trained proposal in DIR
 * (a program without discrete latents: "motifs: 0 blocks", not run)
 * NULL on failure (ppl_errmsg): the program's errors, an unreadable proposal. */
const char *ppl_model_motifs(ppl_model *m, const char *dir);
/* That default library directory (NULL when neither variable is set). */
const char *ppl_default_proposals_dir(void);

typedef struct ppl_learn_options {
  const char *motif;   /* train this signature only (NULL: every motif of the model) */
  const char *out_dir; /* the library directory written (NULL: the default); made if missing */
  long steps;          /* Adam steps per motif (default 1500; 0 keeps the random weights) */
  int batch;           /* simulated motifs per step (default 64) */
  uint64_t seed;       /* default 1: the same seed writes the same files */
  /* called every 100 steps and at the end of each motif (NULL: none) */
  void (*progress)(void *ctx, const char *motif, long step, long steps, double loss);
  void *progress_ctx;
} ppl_learn_options;
void ppl_learn_options_default(ppl_learn_options *o);
/* Train a proposal network for each motif of the model (or o->motif) on
 * simulations of the motif with parameters from a broad meta-training
 * distribution, and write each to the library (one safetensors file per
 * signature, metadata "kind": "lmh", "signature").  *ntrained (may be NULL)
 * gets how many were written.  Errors: a signature this version cannot
 * train, a model without motifs (PPL_ERR_USAGE), an unwritable directory
 * (PPL_ERR_IO). */
ppl_status ppl_learn_proposals(ppl_model *m, const ppl_learn_options *o, int *ntrained);

/* ---- draws read back from CSV files ------------------------------------ */

/* A result from CSV files in CmdStan's layout, one file a chain, as `ppl
 * summary` reads them: written by any ppl engine (--output) or by CmdStan /
 * rstan.  The summary, its table, the warnings and the draws are then those
 * of ppl_run's result for the run that wrote the files (less the backend line
 * and the engines' chain remarks, which the files do not hold); the engine
 * and its reason come from the files' comment block.  Warmup rows saved by
 * save_warmup are left out.  Errors: PPL_ERR_IO for a missing or empty file,
 * PPL_ERR_DATA for a malformed row ("out.csv:12:9: ...") or files whose
 * columns differ.  On success *out is a new result owned by the caller (free
 * with ppl_result_free); the paths are not kept. */
ppl_status ppl_result_from_csv(ppl_context *ctx, int nfiles, const char *const *paths,
                               ppl_result **out);
/* The summary JSON of r (the document ppl_run_options.summary_json receives)
 * written to path; PPL_ERR_IO if it cannot be written. */
ppl_status ppl_result_write_summary(const ppl_result *r, const char *path);

/* Standalone generated quantities (CmdStan's generate_quantities, `ppl
 * generate`): for each draw of the CSV files (one file a chain, as ppl_run or
 * CmdStan wrote them), the model's latents are set to the draw's values
 * (matched by name: theta, theta.1, m.2.1; a latent in a loop by address, h.2),
 * observations are ignored, and the deterministic statements and the
 * generated block run with a fresh *_rng stream per draw (the same seed
 * gives the same output).  File c's draws go to output (one file) or to
 * output's chain name (NAME_1.csv, ..., as ppl_run names them); "-" is
 * stdout (one file only).  Each output row has the draw's columns (less the
 * model's generated quantities) and the recomputed generated quantities.
 * Needs the data (as ppl_run).  Errors: the model has no generated block
 * (PPL_ERR_USAGE), a latent has no column in a file (PPL_ERR_DATA, naming
 * both), a draw's value outside its latent's support (PPL_ERR_DATA,
 * "out.csv:57: ..."), the files' and the program's own errors.  Nothing is
 * kept: the files are written and closed before it returns. */
ppl_status ppl_generate(ppl_model *m, int nfiles, const char *const *paths, const char *output,
                        uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
