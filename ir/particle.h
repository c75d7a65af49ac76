/* particle.h — compiled particle steps: a whole SMC population advanced from
 * one observation to the next in structure-of-arrays layout.
 *
 * Engine smc's interpreted particles are suspended executions, one at a time.
 * Most sequential models (state-space models, HMMs, time series) carry a
 * fixed set of scalar registers between observations and take the same path
 * through the program in every particle: their control flow depends on the
 * data and loop counters only.  For them, pc_compile classifies main's
 * registers into *uniform* ones (the same in every particle: data, loop
 * variables, what is computed from them) and *varying* ones (depending on a
 * latent: one column of N values across the particles).  Each step walks the
 * program once for the whole population: uniform instructions run once, and
 * each varying instruction becomes one loop over the particles' columns
 * (pc_record), which pc_exec then runs over any range of particles — so the
 * population splits across threads and the result does not depend on how.
 *
 * Same random numbers, same bits.  Each particle draws from its own Rng with
 * the family's own sampler and scores with the family's own density, exactly
 * as the interpreter's trace handler does, and arithmetic follows the
 * interpreter's operations (the fast loops do the same IEEE operations; the
 * others call the interpreter's op_* functions per particle).  Runtime errors
 * kill the particle with the interpreter's message and position.  So compiled
 * and interpreted SMC give bit-identical draws, weights and evidence for the
 * same seed (tests/inference/test_smc_compiled.c).
 *
 * Programs that do not qualify keep the interpreter; pc_compile says why,
 * with the position ("model.ppl:7:5: branch on a latent-dependent
 * condition").  The latents' histories (the CSV's x[1], x[2], ... columns)
 * are kept as one column per choice plus the ancestor indices of every
 * resampling, and a particle's path is read back when it is drawn.
 */
#ifndef PPL_PARTICLE_H
#define PPL_PARTICLE_H

#include "interp.h"

typedef struct PcProg PcProg; /* a program compiled for particles: immutable, shared */
typedef struct PcRun PcRun;   /* one population (N particles) of one chain */

/* The program of in compiled for particles, or NULL with *why (a GC string
 * with the source position where there is one) saying why it does not
 * qualify. */
PcProg *pc_compile(const Interp *in, const char **why);
/* Varying registers (columns per particle), for the backend line. */
int pc_ncolumns(const PcProg *pc);

/* A population of N particles advanced by up to `workers` threads. */
PcRun *pc_run_new(const PcProg *pc, int N, int workers);
const PcProg *pc_run_prog(const PcRun *r);
/* Start a run: every particle at the beginning of the model block, particle
 * i drawing from rng_seed(seed, i) (the interpreted engine's streams). */
void pc_run_start(PcRun *r, uint64_t seed);
/* Walk the uniform part of the program to the next event (observe, factor,
 * condition) and record the varying instructions on the way.  Returns 1 when
 * the segment ends at an event, 0 when the program finishes; -1 only on
 * internal errors (d).  A runtime error of a uniform instruction is every
 * particle's: the segment kills them all with its message. */
int pc_record(PcRun *r, Diag *d);
/* Run the recorded segment for particles [lo, hi) on worker `worker`'s
 * scratch: inc[i] = the event's log density (0 after the program finished or
 * for a particle already dead; -inf for one killed now, with perr[i] its
 * error message).  perr is written only for particles killed now, so the
 * caller keeps it NULL elsewhere and looks at it only when pc_kills has
 * grown (a pass over N pointers a round is memory traffic at 100k). */
void pc_exec(PcRun *r, int worker, int lo, int hi, double *inc, const char **perr);
/* Particles killed by runtime errors so far in this population's runs; the
 * living particles now. */
long pc_kills(const PcRun *r);
int pc_nalive(const PcRun *r);
/* Replace the population by the offspring anc[0..N) (sorted ancestors, as
 * resample() gives them); particle j then draws from
 * rng_seed(fork_seed ^ 0x9E3779B97F4A7C15, j), as the interpreted engine's
 * forks do. */
void pc_resample(PcRun *r, const int *anc, uint64_t fork_seed);
/* The same for the offspring [lo, hi) only (a rank's range under MPI): their
 * columns, log prior and log likelihood and streams; the deaths, roots and
 * histories' lineages of all N, which every rank keeps.  The other
 * offspring's columns are left stale. */
void pc_resample_range(PcRun *r, const int *anc, uint64_t fork_seed, int lo, int hi);

/* Conditioning, for particle Gibbs: when find(ctx, addr, &x, &all) returns
 * true for a latent's address, the latent is not drawn but takes the value
 * x, in particle 0 only (the retained reference path; resampling must keep
 * it at index 0) or, with all set, in every particle (a static parameter).
 * The value is scored under the particle's parameters and, outside their
 * support, drawn afresh: what the trace handler does when it replays a
 * previous trace.  find runs while a segment is recorded (one thread);
 * NULL turns conditioning off. */
typedef bool (*PcReplayFn)(void *ctx, const char *addr, Value *x, bool *all);
void pc_set_replay(PcRun *r, PcReplayFn find, void *ctx);

/* Ancestor sampling (particle Gibbs with PGAS, inference/pgibbs.c) scores
 * the reference path's future continued from every particle's state.
 * pc_lpath(r, i): particle i's log density so far, summed segment by segment
 * (log prior plus log likelihood of each), the order of additions of the
 * interpreted pgibbs particles.  pc_run_continue makes dst (a run of the same
 * program and N) a continuation of src: the same particles at the same point
 * of the program, with pc_lpath restarting from 0, no histories kept, and
 * every latent scored rather than drawn: a replayed value outside its
 * support, or a latent with no replayed value, adds -inf (the interpreted
 * continuation rejects such a candidate).  pc_drop(r, i): particle i takes no
 * further part (not counted as killed).  pc_same_state: particles i and j
 * hold equal values (scalars bit for bit) in every varying register that
 * regs marks; the uniform ones are equal by construction — the compiled form
 * of interp_same_continuation, after which two executions make the same
 * choices with the same densities. */
double pc_lpath(const PcRun *r, int i);
void pc_run_continue(PcRun *dst, const PcRun *src);
void pc_drop(PcRun *r, int i);
bool pc_same_state(const PcRun *r, int i, int j, const bool *regs);

/* Particle i: killed by a runtime error?  Its log prior and log likelihood
 * so far; the identity of the oldest choices of its lineage (0: none), which
 * tells final particles with distinct histories apart. */
bool pc_dead(const PcRun *r, int i);
double pc_logprior(const PcRun *r, int i);
double pc_loglik(const PcRun *r, int i);
uint64_t pc_root(const PcRun *r, int i);
/* After the program finished: particle i's outputs (IrProgram.outputs order,
 * as interp_outputs) and its nested latents by address, in run order (as
 * interp_nested_latents). */
Value *pc_outputs(const PcRun *r, int i);
InterpLatent *pc_latents(const PcRun *r, int i, int *n);
/* Bytes the run holds for its columns and the latents' histories. */
size_t pc_bytes(const PcRun *r);

/* A population spread over the ranks of an MPI job (inference/smc_mpi.c):
 * every rank records the same segments and keeps the whole population's
 * bookkeeping (deaths, lineages, histories), but runs pc_exec on its own
 * range of particles only, so the columns hold its own particles' values.
 * pc_sendable: whether the columns are all numbers (else *why).  A
 * particle's own values (its columns, log prior and log likelihood) are
 * pc_width doubles, read by pc_pack and written by pc_unpack.  The histories
 * the recorded segment extends hold the particles' draws in the pc_seg_paths
 * arrays v[0..n) (one slot per particle; v NULL: only count them).  After
 * pc_exec elsewhere, pc_settle gives particle i what that run decided for
 * everyone: whether it was killed. */
bool pc_sendable(const PcProg *pc, const char **why);
int pc_width(const PcProg *pc);
void pc_pack(const PcRun *r, int i, double *out);
void pc_unpack(PcRun *r, int i, const double *in);
int pc_seg_paths(const PcRun *r, double **v);
void pc_settle(PcRun *r, int i, bool killed);

/* Resample-move on compiled particles (inference/smc_compiled.c).  With
 * pc_keep_choices on, a run keeps every particle's choices in run order:
 * choice k's N values and N log densities (pc_choice_vals, pc_choice_lps;
 * resampling permutes them with the particles, and they are the nested
 * latents' histories pc_latents reads, so a move may rewrite them).  A
 * fixed-structure program makes the same choices in every particle, so
 * choice k is one address for all (pc_choice).
 *
 * pc_replay_moved(r, rx, blk, target, propose, ctx) starts r (a run of the
 * same program, keeping choices) as a replay: each particle i re-runs the
 * program with its own values rx[k][i] for its choices, as the trace
 * handler replays a trace, from its own stream pc_rngs(r)[i] (set by the
 * caller after this call): at target[i] (a choice number, or -1; target
 * may be NULL) the value is propose's, whose log proposal ratio pc_lq
 * keeps; a choice with blk[k] set takes rx whatever its density (a block
 * proposal); any other value outside the support at the particle's
 * parameters is drawn afresh (counted by pc_nfresh).  Its log prior is
 * the running sum over the choices (a trace's order of additions) and
 * each event after pc_set_event_scale(r, b) counts b times (a tempered
 * stop event).  The caller records and executes its segments up to the
 * population's event; particles it pc_drop()s are not replayed.
 * pc_take_moved copies particle i's columns and choices from a replay
 * src into dst (an accepted move); pc_moved_root gives particle i a root
 * of its own from generation gen = pc_new_generation(r) (its history no
 * longer shares its ancestor's oldest choices). */
typedef struct PcChoice {
  const char *addr;
  bool isint, nested; /* nested: drawn inside a loop (a history the CSV shows) */
} PcChoice;
typedef bool (*PcProposeFn)(void *ctx, int i, const DistCall *dc, Value old, Rng *rng,
                            Value *out, double *lq, char *err, size_t errsz);
void pc_keep_choices(PcRun *r, bool on);
int pc_nchoices(const PcRun *r);
const PcChoice *pc_choice(const PcRun *r, int k);
double *pc_choice_vals(PcRun *r, int k);
double *pc_choice_lps(PcRun *r, int k);
Rng *pc_rngs(PcRun *r);
double *pc_logpriors(PcRun *r);
double *pc_logliks(PcRun *r);
void pc_replay_moved(PcRun *r, const double *const *rx, const uint8_t *blk, const int *target,
                     PcProposeFn propose, void *ctx);
void pc_set_event_scale(PcRun *r, double scale);
int pc_nfresh(const PcRun *r, int i);
double pc_lq(const PcRun *r, int i);
void pc_take_moved(PcRun *dst, const PcRun *src, int i);
uint64_t pc_new_generation(PcRun *r);
void pc_moved_root(PcRun *r, int i, uint64_t gen);
/* Why resample-move cannot run on pc's compiled particles (a support that
 * depends on a latent), or NULL. */
const char *pc_moves_why(const PcProg *pc);

#endif
