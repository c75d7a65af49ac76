/* smc_impl.h — engine smc's state, shared by its two ways of advancing the
 * particles: interpreted executions (smc.c) and compiled particle steps
 * (smc_compiled.c, over ir/particle.h).  Private to those two files. */
#ifndef PPL_SMC_IMPL_H
#define PPL_SMC_IMPL_H

#include "../ir/particle.h"
#include "engine.h"
#include "resample.h"
#include "trace.h"

/* Particles per worker below which a round is not spread over threads (one
 * advance costs about a microsecond, a thread wake-up tens). */
#define SMC_GRAIN 64
#define SMC_JUMPS 3.0        /* automatic rounds: accepted moves per particle wanted */
#define SMC_MAX_ROUNDS 30    /* automatic rounds after one resampling, at most */
#define SMC_BLOCK_ACCEPT 0.234
enum { SMC_MV_MOVED = 1, SMC_MV_TRIED = 2, SMC_MV_BLOCK = 4, SMC_MV_SITE = 8 };

/* Population scale of one static choice: per element, the weighted sd of the
 * unconstrained values before resampling. */
typedef struct SmcScale {
  const char *addr;
  int numel;
  double sw;
  double *m1, *m2, *sd;
} SmcScale;

/* Choices made between two events of one lineage; shared by descendants. */
typedef struct Segment {
  const struct Segment *parent;
  int n;
  const TraceChoice *c;
} Segment;

typedef struct Particle {
  InterpState *st;
  const Segment *seg; /* newest segment; NULL = no choices yet */
  long events;        /* events passed (the run is suspended after the last) */
  long nchoices;
  double loglik, logprior;
  double last_inc;    /* untempered log density of its latest event (0 when done) */
  bool done, killed; /* killed: its program failed with a runtime error */
  int eve;
  Rng rng; /* this particle's own stream: its fresh choices */
} Particle;

/* Scratch of one worker thread: the handler and the growing choice buffer
 * every advance records into before its segment is copied out. */
typedef struct SmcWorker {
  TraceHandler th;
  Trace tr;
  TraceChoice *scratch;
  int scap;
  int fatal_at; /* lowest particle whose advance failed internally; -1 = none */
  Diag fatal;
} SmcWorker;

typedef struct SmcState {
  const Interp *in;
  const IrProgram *prog;
  int chain;
  Rng rng;
  EngineOpts o;
  int N;
  int scheme, rejuvenate; /* the options, read once */
  double ess_threshold;
  uint64_t model_seed;
  bool has_gen;
  Particle *p, *q; /* population and resampling scratch */
  double *lw, *w;
  int *anc, *perm;
  int workers;      /* particle worker threads of this chain */
  Pool *pool;       /* during a run */
  SmcWorker *wk;    /* [workers] */
  double *inc;      /* a round's log weight increments, per particle */
  const char **perr;/* a round's runtime errors (killed particles), per particle */
  uint64_t fork_seed;
  MhMover *mover;
  /* resample-move (see the header): on when moves > 0 */
  bool moves_on;
  int nstatic;               /* static latents' names (addresses) */
  const char **static_names;
  double lambda;             /* block step factor, adapted to SMC_BLOCK_ACCEPT */
  int nscale;                /* population scales of the static elements */
  struct SmcScale *scale;
  Trace **tr;                /* moves: each particle's trace, tempered */
  MhMover **movers;          /* [workers]: each worker's copy of mover */
  uint64_t mv_seed;          /* this round's seed of the particles' move streams */
  double mv_beta;            /* this phase's tempering */
  unsigned char *mv_flags;   /* per particle: what its move of this round did */
  MhMoveRec *mv_rec;         /* per particle: its single-site scale to adapt */
  /* the current run */
  double run_logz;
  int next; /* next particle of the current run to emit; N = run exhausted */
  int heavy; /* the current run's heaviest particle */
  /* per chain */
  RunEvidence ev;
  long resamplings, events_max, moves, accepts, killed;
  long block_moves, block_accepts, rounds, move_phases, temper_steps;
  int distinct_min;          /* distinct final histories, fewest over runs */
  double ess_min;
  char first_err[sizeof ((Diag *)0)->msg];
  /* compiled particle steps (smc_compiled.c): the population, or NULL and
     why the run is interpreted */
  PcRun *pcr;
  const char *pc_why;
  int *eve;                  /* compiled: each particle's initial ancestor */
  int *eve2;
  /* the population spread over MPI ranks (smc_mpi.c), or NULL; this rank
     advances the particles [mlo, mhi) */
  struct SmcSplit *split;
  int mlo, mhi;
  /* resample-move on compiled particles (smc_compiled.c) */
  struct SmcMoves *cm;
  double *last_inc, *last_inc2; /* per particle: its latest event's density */
  bool pc_done;                 /* the program has finished */
  long pc_events;               /* events passed */
} SmcState;

/* Compiled particle steps (smc_compiled.c).  smcc_setup compiles the program
 * for particles when the run qualifies (s->pcr set) and otherwise keeps the
 * reason (s->pc_why); smcc_run_pool is smc_run_pool's twin for them and
 * smcc_draw a draw of final particle i. */
/* smc.c, for both kinds of particles: after a round, the weights normalised,
 * the ESS and the evidence updated, and what comes next. */
enum { SMC_FAILED, SMC_GO_ON, SMC_RESAMPLE, SMC_FINISHED };
int smc_weigh(SmcState *s, long events, int alive, double *logz, Diag *d);
/* The end of a run: the fewest distinct particles, the order the draws are
 * handed out in, the heaviest particle (a killed one's stand-in). */
void smc_finish(SmcState *s, int distinct);

void smcc_setup(SmcState *s);

/* Resample-move's pieces both kinds of particles use (smc.c): whether an
 * address is a static parameter's, the block move's scale of a choice (NULL:
 * not moved), the population scales (smc_scale_add each static choice's
 * value with its particle's weight, then smc_scales_end), and the tempered
 * entry of an event (smc_temper: base = the log weights before it).  The
 * compiled twin of resample + moves is smcc_resample_move. */
bool smc_static_name(const SmcState *s, const char *addr);
const SmcScale *smc_block_scale(const SmcState *s, const TraceChoice *c);
void smc_scale_add(SmcState *s, const TraceChoice *c, Value val, double w);
void smc_scales_end(SmcState *s);
bool smc_temper(SmcState *s, double *base, double *logz, int *stages, Diag *d);
bool smcc_resample_move(SmcState *s, double beta, Diag *d);
bool smc_round_end(SmcState *s, const unsigned char *flags, double *jumps);

/* A compiled population spread over MPI ranks (smc_mpi.c).  smcm_setup
 * splits it when the run's communicator has more than one rank and the
 * population can travel (smcm_why_not: NULL, or why not); after each round
 * smcm_share_round gives every rank the whole population's weights and
 * bookkeeping, smcm_exchange brings the ancestors of this rank's offspring
 * before pc_resample, and smcm_gather the final particles to every rank. */
typedef struct SmcSplit SmcSplit;
const char *smcm_why_not(const SmcState *s);
void smcm_setup(SmcState *s);
bool smcm_share_round(SmcState *s, Diag *d);
/* The event's normaliser from every rank's block summaries (smc_weigh), this
 * rank's weights only; the ancestors from every rank's block totals, each
 * rank finding its own ancestors' offspring (systematic, stratified). */
bool smcm_normalise(SmcState *s, double *lz, double *ess, Diag *d);
bool smcm_ancestors(SmcState *s, Diag *d);
bool smcm_exchange(SmcState *s, Diag *d);
bool smcm_gather(SmcState *s, Diag *d);
bool smcc_run_pool(SmcState *s, Diag *d);
void smcc_draw(SmcState *s, int i, Draw *out);

#endif
