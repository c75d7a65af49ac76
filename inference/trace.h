/* trace.h — the record of one run of a model: its latent choices in execution
 * order with their log densities, plus the log-likelihood and log prior; and the
 * recording/replaying handler that builds traces.
 *
 * A trace is immutable once its run has finished: engines build new traces
 * instead of editing old ones, so later engines (SMC) can share them between
 * particles.  Lightweight MH (Wingate, Stuhlmüller, Goodman 2011) needs, per
 * choice, whether it was reused from the previous trace or drawn fresh, and the
 * number of proposal sites; both are kept here.
 */
#ifndef PPL_TRACE_H
#define PPL_TRACE_H

#include "engine.h"

typedef struct TraceChoice {
  const char *addr;            /* GC string, unique within the run */
  Value val;
  const DistFamily *fam;
  double lp;                   /* log density of val under its DistCall (incl. truncation) */
  bool continuous;             /* real-valued family (not discrete, not string) */
  bool fresh;                  /* drawn from the DistCall, not reused from the previous trace */
  bool structured;             /* con is simplex, ordered, cholesky, cov...: proposals move whole units */
  ConKind con;                 /* effective constraint */
  double lower, upper;         /* effective scalar bounds (+-INFINITY when open) */
  Type type;                   /* declared type and sizes of the value */
  int nsizes;
  int sizes[8];
  int numel;                   /* scalars in val (strings count 1 each) */
  int unit_len;                /* scalars in one draw of the family: 1 for scalar
                                  families, K for a vector draw, K*K for a matrix */
  int nsites;                  /* MH proposal sites of this choice */
} TraceChoice;

typedef struct Trace {
  int n;                       /* choices, in execution order */
  TraceChoice *c;
  int hcap;                    /* hash index: address -> choice + 1 (0 = empty slot) */
  int *hidx;
  double loglik;               /* observations + factors */
  double logprior;             /* sum of the choices' lp */
  long nsites;                 /* sum of the choices' nsites */
  long *site_start;            /* n + 1 prefix sums of nsites */
} Trace;

const TraceChoice *trace_find(const Trace *t, const char *addr);
static inline double trace_logjoint(const Trace *t) { return t->loglik + t->logprior; }
/* The choice holding proposal site s (0 <= s < t->nsites); *local = index of
 * the site inside that choice. */
int trace_site(const Trace *t, long s, int *local);

/* ---- values by shape ---- */

/* A zero-filled value (ints 0, reals 0, strings "") of type t with the sizes in
 * sizes (array dims first, then vector length or matrix rows, cols). */
Value trace_value_new(Type t, int nsizes, const int *sizes);
/* Does v have exactly type t (scalar kinds by base) and these sizes? */
bool trace_value_has_shape(Value v, Type t, int nsizes, const int *sizes);
/* Scalar element e of v in val_flatten order (row-major arrays, column-major
 * matrices); set writes in place (v must be owned; a scalar *v is
 * replaced). */
double trace_value_get(Value v, size_t e);
void trace_value_set(Value *v, size_t e, double x);

/* ---- the recording / replaying handler ---- */

typedef struct TraceHandler TraceHandler;

/* A proposal at the target address: given the DistCall there and the old
 * value, produce the new value and log q(old | new) - log q(new | old).
 * Return false with a message in err to make the run fail. */
typedef bool (*TraceProposeFn)(void *ctx, const DistCall *dc, Value old, Rng *r,
                               Value *out, double *log_q_ratio, char *err, size_t errsz);

/* A block: new values for several addresses of the current trace at once,
 * proposed together (see TraceBlockProposal). */
typedef struct TraceBlock {
  int n;
  const char **addrs;  /* choices of the current trace, each once */
  Value *vals;         /* their proposed values, of the same shapes */
  double log_q_ratio;  /* log q(current values | proposed) - log q(proposed | current) */
} TraceBlock;

struct TraceHandler {
  Handler h;                   /* first: a TraceHandler* is a Handler* */
  Rng *rng;                    /* draws of fresh choices */
  const Trace *prev;           /* values to reuse; NULL = simulate from the prior */
  const char *target;          /* address to propose at, or NULL */
  TraceProposeFn propose;
  void *propose_ctx;
  /* results */
  Trace *tr;                   /* being built; complete after trace_handler_finish */
  int cap;
  bool target_seen;
  double log_q_ratio;          /* from the proposal at the target */
  double fresh_lp;             /* sum of lp over fresh choices (target excluded) */
  /* particle engines: suspend the run at this observe/factor event of this
     handler (1 = the first one it sees); 0 = never */
  long stop_events;
  long events;                 /* observe/factor events seen */
  /* tempering (smc): the stop event's log density counts stop_scale times in
     tr->loglik (1 after trace_handler_init); stop_lp is its untempered value */
  double stop_scale;
  double stop_lp;
  /* block proposals: the block's values replace prev's at its addresses
     (trace_handler_set_block) */
  const TraceBlock *block;
  int *block_at;               /* per choice of prev: index in the block, or -1 */
  int block_seen;              /* block addresses met with a valid shape */
};

/* Replay prev with the block's values at its addresses (after
 * trace_handler_init with prev, no target).  False + err when an address
 * of the block is not in prev. */
bool trace_handler_set_block(TraceHandler *th, const TraceBlock *b, char *err, size_t errsz);

void trace_handler_init(TraceHandler *th, Rng *rng, const Trace *prev, const char *target,
                        TraceProposeFn propose, void *propose_ctx);
/* Seal the trace (hash index, site counts) and return it. */
Trace *trace_handler_finish(TraceHandler *th);

/* One run of the model block (and the generated block when gen) with th;
 * st = interp_start(in, seed, stream, gen).  Returns the finished trace, or NULL
 * with d filled when the program or the handler failed.  *state_out (may be
 * NULL) receives the finished execution, for interp_output. */
Trace *trace_run(const Interp *in, TraceHandler *th, uint64_t seed, uint64_t stream,
                 bool gen, InterpState **state_out, Diag *d);

/* Like trace_run, but the run suspends at event th->stop_events (when > 0):
 * returns the trace so far and the suspended (or finished) state in *state_out,
 * *done telling which.  Used by SMC to re-run a particle's trace up to its
 * current event count after an MH move. */
Trace *trace_run_until(const Interp *in, TraceHandler *th, uint64_t seed, uint64_t stream,
                       bool gen, InterpState **state_out, bool *done, Diag *d);

/* A sealed trace from n choices (copied) and the log-likelihood so far. */
Trace *trace_from_choices(int n, const TraceChoice *c, double loglik);
/* A trace of one choice, `val` at addr with the shape and family of dc: a
 * handler that wants a chosen value at a `sample` passes it as the previous
 * trace of the plain trace handler, which then reuses it. */
Trace *trace_one_choice(const char *addr, const DistCall *dc, Value val);

/* Log-probability of the old trace's choices that the new trace did not reuse
 * (absent there or drawn fresh), the target excluded: the R term of
 * lightweight MH. */
double trace_stale_lp(const Trace *old, const Trace *new_, const char *target);

/* Log acceptance ratio of a lightweight-MH move from old to new_ that proposed
 * at `target` (Wingate et al. 2011, eq. for single-site MH with structure
 * change):  log p(new) - log p(old) + log_q_ratio + log|sites(old)| -
 * log|sites(new)| + R - F, where R = trace_stale_lp and F = fresh_lp (the new
 * trace's fresh choices).  -inf when the new trace has a non-finite log joint
 * or no sites, or when the reverse move could not regenerate the old trace (a
 * choice redrawn because its old value left the support, whose new value
 * would be reused by the reverse move). */
double trace_mh_log_accept(const Trace *old, const Trace *new_, const char *target,
                           double log_q_ratio, double fresh_lp);

/* Log acceptance ratio of a block move from old to new_ (replayed with
 * trace_handler_set_block): log p(new) - log p(old) + b->log_q_ratio + R - F
 * (the fresh and stale corrections of trace_mh_log_accept, no site-count term:
 * the block is chosen by the proposal, not uniformly).  -inf when the new
 * trace is not finite, when an address of the block was not met with its
 * shape (block_seen < b->n), or when the reverse move could not regenerate
 * the old trace. */
double trace_block_log_accept(const Trace *old, const Trace *new_, const TraceBlock *b,
                              int block_seen, double fresh_lp);

/* Number of MH sites of a choice of this shape: one per scalar element, except
 * one per unit for structured constraints and one per string choice. */
int trace_choice_sites(const TraceChoice *c);

/* ---- MH moves for particle engines (mh.c) ---- */

/* The kernels of engine mh as moves on a particle's trace: a uniformly chosen
 * site is proposed and the program re-run (seeded with model_seed, stream) up
 * to event `stop_events` (0 = to the end), with the generated block when gen.
 * Random-walk scales adapt across moves (each move uses the scale chosen
 * before it, so each is an exact MH move). */
typedef struct MhMover MhMover;
MhMover *mh_mover_new(const Interp *in, uint64_t model_seed, uint64_t stream, uint64_t seed,
                      bool gen);
/* One move from (*cur, *st, *done), its randomness drawn from rng (NULL: the
 * mover's own stream); on acceptance they are replaced by the new trace, its
 * state and whether it finished.  With rec != NULL the site's scale is not
 * adapted at once: the move is recorded in *rec, and mh_mover_adapt_round
 * later moves each site's scale once by the round's mean acceptance (smc
 * adapts between rounds, so a round's moves are independent of each other).  False only for internal errors (fatal
 * filled); a run the program rejects is a rejected move. */
typedef struct MhMoveRec {
  const char *addr; /* NULL: nothing to adapt */
  int local;
  double accept_prob;
} MhMoveRec;
bool mh_mover_move(MhMover *m, Rng *rng, Trace **cur, InterpState **st, long stop_events,
                   bool *done, bool *accepted, MhMoveRec *rec, Diag *fatal);
void mh_mover_adapt_round(MhMover *m, const MhMoveRec *rec, int n);
/* A single-site move made outside the mover (smc's compiled resample-move
 * replays a whole population at once): mh_mover_site_kernel picks the
 * kernel for site `local` of choice c from r with m's scales, as a move of
 * m does (the same calls on r); mh_site_propose is its proposal from old
 * under dc (the handler's propose function); mh_site_adapts: a random
 * walk, whose scale the move's MhMoveRec adapts. */
typedef struct MhSiteKernel {
  int k;         /* mh.c's Kernel */
  int local;     /* element (RW_ELEM, UNIFORM, PRIOR_UNIT) or unit (RW_UNIT) */
  int unit_len;
  bool structured;
  double sigma;
  double lower, upper;
} MhSiteKernel;
void mh_mover_site_kernel(MhMover *m, Rng *r, const TraceChoice *c, int local, MhSiteKernel *k);
bool mh_site_propose(const MhSiteKernel *k, const DistCall *dc, Value old, Rng *r, Value *out,
                     double *lq, char *err, size_t errsz);
bool mh_site_adapts(const MhSiteKernel *k);
/* A copy of mover m for another thread's moves (its own scratch: current
 * trace, stop event), and mh_mover_sync giving it m's current scales and
 * tempering; workers only read the scales (moves with rec != NULL). */
MhMover *mh_mover_worker(const MhMover *m);
void mh_mover_sync(MhMover *worker, const MhMover *m);

/* Tempered targets (smc): later moves count the stop event's log density
 * `scale` times (1 = untempered; the traces given must be scored alike), and
 * after an accepted move mh_mover_stop_lp is the new trace's untempered
 * density of that event. */
void mh_mover_set_stop_scale(MhMover *m, double scale);
double mh_mover_stop_lp(const MhMover *m);

/* One move at choice `addr` of a complete trace (a site chosen uniformly
 * within that choice), the program run to the end; step sizes adapt only when
 * adapt.  For particle Gibbs's static parameters. */
bool mh_mover_move_at(MhMover *m, const char *addr, bool adapt, Trace **cur, InterpState **st,
                      bool *accepted, Diag *fatal);

/* Engine mh's chain state (from engine_mh.init) seen as a mover, and its
 * current trace, state and model seed: engine lmh runs its block moves on the
 * trace between mh's sweeps (engine_mh.step). */
MhMover *mh_mover_of_state(void *mh_state);
void mh_mover_current(const MhMover *m, Trace **cur, InterpState **st, uint64_t *model_seed);
void mh_mover_set_current(MhMover *m, Trace *cur, InterpState *st);
/* The sweeps of engine mh's step draw their sites among the choices skip
 * does not claim (a fixed function of the address; the MH ratio carries the
 * eligible site counts). */
void mh_mover_set_skip(MhMover *m, bool (*skip)(void *ctx, const char *addr), void *ctx);

/* ---- block proposals (mh.c) ---- */

/* A proposal over several addresses at once: propose() fills b (addresses of
 * cur, their new values, the log proposal ratio) from the current trace;
 * check() (may be NULL) vetoes a replayed move whose reverse would not be
 * the same kind of proposal -- e.g. when the block's addresses or their bounds
 * differ in the new trace.  The veto must be symmetric (check(old, new) ==
 * check(new, old)); then a vetoed move is a rejection of a valid kernel. */
typedef struct TraceBlockProposal {
  bool (*propose)(void *ctx, const Trace *cur, Rng *r, TraceBlock *b, char *err, size_t errsz);
  bool (*check)(void *ctx, const Trace *old, const Trace *new_, const TraceBlock *b);
  void *ctx;
} TraceBlockProposal;

/* One MH move with a block proposal from the complete trace *cur (state *st):
 * the program is replayed (model block only, seeded with model_seed, stream)
 * with the block's values, reusing the other choices where still valid and
 * drawing new addresses fresh, and accepted with trace_block_log_accept.  On
 * acceptance *cur and *st are replaced.  *accept_prob gets min(1, ratio).
 * False only for internal errors (fatal filled). */
bool mh_block_move(const Interp *in, const TraceBlockProposal *bp, Rng *rng, uint64_t model_seed,
                   uint64_t stream, Trace **cur, InterpState **st, bool *accepted,
                   double *accept_prob, Diag *fatal);

/* The block proposal of engine mh's `block` option: one Gaussian random walk
 * on the unconstrained scale over every element of every continuous choice
 * without a structured constraint (simplex, ordered, ...), step
 * exp(log_sigma) * 2.38 / sqrt(elements).  It vetoes moves after which those
 * choices (addresses, shapes, bounds) are not the same. */
typedef struct MhBlockRw {
  double log_sigma;
} MhBlockRw;
TraceBlockProposal mh_block_rw(MhBlockRw *rw);

/* ---- the trace-based engines (prior.c, is.c, mh.c), listed by engine.c ---- */

extern const EngineVT engine_prior, engine_is, engine_mh, engine_smc, engine_pgibbs, engine_lmh;
/* One forward run of the whole program (latents from the prior, generated
 * block included) filling out->outputs; shared by prior and is.  NULL + d on
 * error. */
Trace *prior_run(const Interp *in, Rng *rng, int chain, Draw *out, Diag *d);

#endif
