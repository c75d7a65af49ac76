/* interp.h — the IR interpreter and the handler interface engines implement.
 *
 * The interpreter keeps its whole execution state in an explicit stack
 * (frames, each with its register file and a stack of block cursors), never in
 * C recursion.  That makes an execution a first-class object: it can stop
 * after an observation and resume later, and it can be forked (copy-on-write:
 * containers shared between forks are copied on first write), which is what
 * SMC's particles are.
 *
 * Every random choice, observation and factor goes to a Handler (in the sense of
 * effect handlers: Pyro's poutine, Gen's generative-function interface).  The
 * engines (inference/) are written against this interface only:
 *   - simulate:  sample() draws from dc (dist_call_rng) and records it;
 *   - score:     sample() returns the value stored in a given trace;
 *   - replay with changes: sample() returns stored values except at chosen
 *     addresses (MH), and draws fresh values for addresses not in the trace.
 *
 * Version 2 of the interface (docs/engines.md, "For engine writers") adds,
 * all optional (a handler that ignores them runs programs as before):
 *   - sample() may suspend without a value (HR_SUSPEND): the run stops at the
 *     choice, interp_pending describes it, interp_provide gives its value; so
 *     an engine can batch the choices of many particles (a network or a
 *     language model answering them all at once), and fork at a choice;
 *   - simulate(): observations of data loaded as simulated
 *     (interp_load_data_sim) produce their values, written where the program
 *     reads that data: the joint of latents and data from the program itself;
 *   - param(): the value of a learnable parameter (`param real s;`); NULL
 *     gives its initial value.
 *
 * Addresses: the latent's name, prefixed by the call path and suffixed by the
 * indices of the enclosing `for` loops of its own frame; each call segment
 * carries the loop indices of the caller at the call site:
 *     theta            top-level latent
 *     x[3]             `real x ~ ...` inside for (i in 1:N), iteration i = 3
 *     walk/step[2]/x   x inside step(), called from walk() in its loop
 *                      iteration 2, walk called from the top level
 * If an address repeats within one run (a latent in a while loop, two calls of
 * one function at the same place), the second occurrence gets "#2", the third
 * "#3", ...: "x#2".  Addresses are therefore unique and stable across runs.
 */
#ifndef PPL_INTERP_H
#define PPL_INTERP_H

#include <stdio.h>

#include "../stdlib/builtins.h"
#include "../stdlib/dist.h"
#include "../stdlib/nn.h"
#include "../stdlib/realnvp.h"
#include "../stdlib/rng.h"
#include "ir.h"

/* ---- handlers ---- */

typedef enum {
  HR_CONTINUE = 0, /* go on */
  HR_SUSPEND,      /* observe/factor: stop after this event; interp_run returns
                      RUN_SUSPENDED and a later interp_run resumes.
                      sample: stop *at* this choice without a value (*out is
                      ignored); interp_pending describes the choice and
                      interp_provide gives its value before the next interp_run.
                      simulate/param: stop after it, as observe */
  HR_ERROR,        /* abort the run; the handler has filled the Diag */
} HandlerResult;

/* A learnable parameter (`param real<lower=0> s = 1;`), as the handler's
 * param() sees it. */
typedef struct ParamSpec {
  Type type;          /* declared type */
  int nsizes;         /* sizes: array dims, then vector length / matrix rows, cols */
  int sizes[8];
  ConKind con;        /* CON_NONE, CON_LOWER, CON_UPPER, CON_LOWER_UPPER */
  double lower, upper;/* bounds (-INFINITY / INFINITY when absent) */
  Value init;         /* the initial value: the declaration's, or zero on the
                         unconstrained scale (see IR_PARAM); none for a
                         network's or flow's weights, which thousands of draws
                         make: interp_param_init gives them to a handler that
                         needs them (at the first run) */
  const char *wname;  /* a network's or flow's name: its initial weights' stream */
  const NnMlp *net;   /* a network param (`param network f = mlp(...)`): its
                         layout, and the value is its flat weight vector (type
                         vector, sizes {net->nparams}, no bounds; init from
                         nn_mlp_init, see ir/net.h); NULL otherwise */
  const Rnvp *flow;   /* a flow param (`param flow q = realnvp(...)`): its
                         layout, and the value is its flat weight vector (type
                         vector, sizes {flow->nparams}, no bounds; init from
                         rnvp_init, see ir/net.h); NULL otherwise */
} ParamSpec;

/* ps->init, or for a network's or flow's weights their initial values (a
 * fresh vector: the same for the same name and layout). */
Value interp_param_init(const ParamSpec *ps);

typedef struct Handler Handler;
struct Handler {
  /* A latent choice at address `addr` (a GC string, stable and unique in the run).
     Must set *out to a value of dc's type and sizes. */
  HandlerResult (*sample)(Handler *h, const char *addr, const DistCall *dc, Value *out,
                          SrcPos pos, Diag *d);
  /* An observation of x under dc. */
  HandlerResult (*observe)(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d);
  /* factor(lw) and target += lw; condition(false) arrives as factor(-INFINITY). */
  HandlerResult (*factor)(Handler *h, double lw, SrcPos pos, Diag *d);
  /* An observation of simulated data (interp_load_data_sim) instead of
     observe: must set *out to a value of dc's type and sizes (the observed
     expression's shape), typically a draw from dc.  The interpreter writes
     it where the program reads that data.  NULL: such a run is an error. */
  HandlerResult (*simulate)(Handler *h, const DistCall *dc, Value *out, SrcPos pos, Diag *d);
  /* A learnable parameter at address `addr` (its name): set *out to a value of
     the spec's type and sizes inside its bounds (an optimiser's current
     value).  NULL: the parameter takes spec->init, so engines that know
     nothing of params hold them constant. */
  HandlerResult (*param)(Handler *h, const char *addr, const ParamSpec *spec, Value *out,
                         SrcPos pos, Diag *d);
  /* A plate with a batch size (`plate (i in lo:hi, batch = B)`, named by its
     loop variable) is about to run: set *idx to n indices in [lo, hi] in the
     order to visit them (memory that outlives the loop, e.g. GC) to run it
     over that subset, whose events interp_plate_scale then weighs by
     (hi - lo + 1) / n; leave *idx NULL to run the whole loop.  NULL: every
     plate is an ordinary loop (every engine but svi). */
  HandlerResult (*plate)(Handler *h, const char *name, int64_t lo, int64_t hi, int64_t batch,
                         const int64_t **idx, int64_t *n, SrcPos pos, Diag *d);
};

/* observe and factor for handlers that only replay or set latents (a draw's
 * outputs, standalone generated quantities): the evidence is not scored. */
HandlerResult interp_observe_ignored(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d);
HandlerResult interp_factor_ignored(Handler *h, double lw, SrcPos pos, Diag *d);

/* ---- data ---- */

/* Where IR_DATA gets its values (api/ implements it: the JSON
 * loader, typed arrays from the embedding API). */
typedef struct DataSource DataSource;
struct DataSource {
  /* Produce data variable `name` of type t with the given sizes (array dims,
     then vector length or matrix rows, cols), satisfying the constraint
     (lo/hi are NaN when absent).  Return false and fill d (DIAG_DATA) with
     messages such as 'data.json: "y": expected 8 reals (J = 8), got 7' (the
     caller supplies the "(J = 8)" part in size_desc: a GC string like "J = 8",
     or NULL).  Sizes are 64-bit: a size read from data may exceed int's range,
     and the message about the data must still be the ordinary one. */
  bool (*get)(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
              const char *size_desc, ConKind con, double lo, double hi, Value *out,
              Diag *d);
  /* Optional (NULL: unknown): whether the source has a value named `name`;
     initial values (--init FILE) give some latents and leave the others. */
  bool (*has)(DataSource *src, const char *name);
};

/* ---- the interpreter ---- */

typedef struct Interp Interp;           /* a program with its data loaded: immutable, shared */
typedef struct InterpState InterpState; /* one execution of the model */

typedef enum { RUN_DONE = 0, RUN_SUSPENDED, RUN_ERROR } RunStatus;

/* Create an interpreter for p; `out` receives print() output (NULL = stdout). */
Interp *interp_new(const IrProgram *p, FILE *out);
/* Runs the data block: IR_DATA asks src (which may be NULL if the program has no
 * data declarations; then a data variable is an error "missing data 'J'").
 * Data-block statements are evaluated once here. False + d on error. */
bool interp_load_data(Interp *in, DataSource *src, Diag *d);
/* interp_load_data, with the data variables in names[0..nsim-1] simulated
 * rather than read: src is not asked for them (their sizes still come from
 * their declarations, so sizes such as N must be given), their reals start as
 * NaN, and each observation of one of them, or of an element of one with
 * single indices (`y ~ ...`, `y[n] ~ ...`, `observe(d, y[i, j])`, in the
 * model block itself, loops and ifs included, not inside a user function;
 * y[i][j] and slices are not places), calls the handler's simulate() instead of
 * observe() and stores the value there, for the later statements and the
 * generated block.  The data block itself must not compute with them.  An
 * Interp loaded this way is for simulation (the prior predictive), not for
 * inference.  False + d (DIAG_USAGE) for a name that is no data variable. */
bool interp_load_data_sim(Interp *in, DataSource *src, int nsim, const char *const *names,
                          Diag *d);
/* The simulated data variables (0 when loaded by interp_load_data), their
 * names, and their values in an execution (after RUN_DONE: complete). */
int interp_simulated_count(const Interp *in);
const char *interp_simulated_name(const Interp *in, int i);
Value interp_simulated_value(const InterpState *st, int i);
const IrProgram *interp_program(const Interp *in);
/* main's registers after the data block (read-only; the JIT folds them in). */
const Value *interp_data_regs(const Interp *in);
/* What engines build once per program and data and share between chains (the
 * compiled log density): slot's value, made by make(in, arg) on first use
 * (under a lock: one maker at a time; make may return NULL, then the next
 * call tries again).  make == NULL only reads. */
/* IR_ODE on values (args[i] is the value of ins->args[i]), for the JIT's
 * runtime: the solution, with tape nodes carrying the sensitivities when
 * tape is not NULL and an argument carries nodes.  depth: ODE solves this one
 * is nested in.  Errors in d with ins's position. */
bool interp_ode(const Interp *in, const IrInstr *ins, const Value *args, Tape *tape, int depth,
                Value *result, Diag *d);
/* An ODE right-hand side compiled to native code (ir/jit_ode.c), forward
 * mode: dy = f(t, y, extras) and, when P > 0, the tangents of dy along P
 * directions: lane k < n is d/dy_k, lane n + c is d/d(parameter column c),
 * written as jy[k*n + i] (k < n) and jp[(k-n)*n + i] (ode.h's layout).  The
 * extras come flattened (xv[i]: xlen[i] doubles, ints as doubles) with each
 * element's parameter column (xcol[i][e], -1 for none; xcol[i] NULL: none).
 * work holds nscalar*P + ncont*C*(1 + P) doubles, C = max(n, kmax).
 * Returns 0 where the interpreter would report an error (a domain, an index,
 * a size): the caller re-runs the solve interpreted, which reports it. */
typedef int (*InterpOdeFn)(double t, const double *y, const double *const *xv,
                           const int32_t *const *xcol, const int64_t *xlen, int64_t n,
                           int64_t P, int64_t C, double *dy, double *jy, double *jp,
                           double *work);
typedef struct InterpOdeNative {
  InterpOdeFn fn;
  int nscalar, ncont;
  int64_t kmax;
} InterpOdeNative;
/* interp_ode with the right-hand side nat (NULL: interpreted); the solver,
 * the step sequence and the recorded result are the same either way. */
bool interp_ode_native(const Interp *in, const IrInstr *ins, const Value *args, Tape *tape,
                       const InterpOdeNative *nat, Value *result, Diag *d);
#define INTERP_CACHE_SLOTS 4
void *interp_cache(const Interp *in, int slot, void *(*make)(const Interp *, void *), void *arg);

/* A fresh execution of the model block (and, with gen = true, the generated
 * block after it). The state holds its own Rng (used by *_rng builtins only;
 * handlers bring their own randomness). */
InterpState *interp_start(const Interp *in, uint64_t seed, uint64_t stream, bool gen);
/* A fresh execution of the guide block alone (IrProgram.guide_b), over the
 * data registers: its `~` declarations are the guide's choices, its params
 * go to the handler's param(), as in the model. */
InterpState *interp_start_guide(const Interp *in, uint64_t seed, uint64_t stream);
/* The weight of the events the run is at: the product of N / n over the
 * subsampled plates around the current statement (1 outside them), by which
 * an engine scales a log density so that the subsample's sum estimates the
 * whole loop's without bias. */
double interp_plate_scale(const InterpState *st);
/* Let the handler give an int scalar latent a real value (a continuous
 * relaxation of a discrete choice, engine svi's Gumbel-softmax): the program
 * then computes with the real where it uses the latent arithmetically. */
void interp_set_relaxed(InterpState *st, bool on);

/* Plates of s to run once over their rows instead of row by row (ir/plate_vec.h;
 * engine svi's training): their latents' addresses are NAME[v], one K x B
 * matrix each, and the handler gets one sample() or observe() per statement.
 * NULL (the default): every plate is a loop. */
struct PvSet;
void interp_set_plate_vec(InterpState *st, const struct PvSet *s);
/* Run until the end, a suspension or an error. Runtime errors are DIAG_RUNTIME
 * with the statement's position: "model.ppl:9:3: index 11 out of range for
 * array of size 10". */
RunStatus interp_run(InterpState *st, Handler *h, Diag *d);
/* Copy-on-write fork of a (suspended) execution; the copy gets the given Rng
 * stream for *_rng builtins. */
InterpState *interp_fork(const InterpState *st, uint64_t seed, uint64_t stream);
/* After RUN_DONE: the value of output i (IrProgram.outputs[i]); V_NONE if the
 * variable was never assigned. */
Value interp_output(const InterpState *st, int i);
/* All outputs at once, in IrProgram.outputs order: a new GC array (what an
 * engine puts in Draw.outputs). */
Value *interp_outputs(const InterpState *st);
/* A latent that no output holds: one declared in a loop, a branch or a user
 * function, whose variable is overwritten by the next iteration or call.
 * The run keeps each such value under its address ("h[2]", "f/x"). */
typedef struct InterpLatent {
  const char *addr;
  Value v;
} InterpLatent;
/* Those of this run so far, in execution order: a new GC array of *n. */
InterpLatent *interp_nested_latents(const InterpState *st, int *n);
/* Number of observations (IR_OBSERVE and IR_FACTOR/IR_CONDITION events)
 * executed so far, for SMC's bookkeeping. */
long interp_events(const InterpState *st);
/* Instructions executed so far (a fork keeps its parent's count): the
 * interpreter's share of a run's cost, for deciding whether compiling pays
 * (ld_jit_pays).  Deterministic: the same run counts the same. */
uint64_t interp_steps(const InterpState *st);

/* Reverse-mode AD (stdlib/ad.h): with a tape set, every operation on reals
 * that carry nodes records itself, so values computed from node-carrying
 * latents (a handler gives them nodes) carry nodes too.  Without a tape
 * (the default) nothing is recorded.  The tape must outlive the run. */
void interp_set_tape(InterpState *st, Tape *t);
/* The node of the value of the factor / target += the handler was last
 * called with (0 = constant); handlers read it from inside factor(). */
int32_t interp_factor_node(const InterpState *st);

/* A latent choice the handler suspended (HR_SUSPEND from sample), waiting
 * for its value: what an engine needs to choose it outside the run (batched
 * network or language-model calls over many particles). */
typedef struct InterpChoice {
  const char *addr; /* as the handler's sample saw it */
  DistCall dc;      /* its distribution (parameters snapshotted: keep it freely) */
  SrcPos pos;
} InterpChoice;

/* The choice st waits for, or NULL (not suspended at a choice, or already
 * provided).  A fork of a waiting state waits at the same choice; each copy is
 * given its own value. */
const InterpChoice *interp_pending(const InterpState *st);
/* Give the waiting choice its value (of the DistCall's type and sizes, as
 * sample's *out); the next interp_run goes on from there.  False + d when
 * nothing is waiting or the value has the wrong shape.  interp_run on a state
 * still waiting is a DIAG_USAGE error. */
bool interp_provide(InterpState *st, Value v, Diag *d);
/* interp_provide, then interp_run. */
RunStatus interp_resume_with(InterpState *st, Value v, Handler *h, Diag *d);

/* Will a and b (two suspended executions of one program) run identically from
 * here, given the same handler answers?  True when they are at the same place
 * (frames, loop positions, events), have used the same addresses, and hold
 * the same values in their registers, where main_regs (NULL = all) says which
 * of the main frame's registers matter (particle Gibbs passes the registers a
 * later density, address or branch can depend on).  The model block's _rng
 * streams are not compared.  False negatives are allowed (they only cost the
 * caller time); false positives are not. */
bool interp_same_continuation(const InterpState *a, const InterpState *b, const bool *main_regs);

#endif
