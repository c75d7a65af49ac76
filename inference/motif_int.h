/* motif_int.h — what the two halves of learned proposals share inside
 * inference/: the events a probing replay records (motif.c), which the
 * discrete blocks (motif.c) and the continuous ones (motif_cont.c) read to
 * find a block's children and their features.  Not part of motif.h's
 * interface. */
#ifndef PPL_MOTIF_INT_H
#define PPL_MOTIF_INT_H

#include "motif.h"
#include "../stdlib/optim.h"

/* One event of a run: a sample, observe or factor, with its distribution's
 * parameters and its value flattened. */
typedef struct MotifEv {
  char kind; /* 's'ample, 'o'bserve, 'f'actor */
  const char *addr;
  const DistFamily *fam;
  int np;
  int pn[DIST_MAX_PARAMS];
  double *p[DIST_MAX_PARAMS];
  int xn;
  double *x;
  double lp;  /* its log density in the run (observations: as the log-likelihood counts it) */
} MotifEv;

/* Replay cur with block b's values (b NULL: unchanged), recording every
 * event into *ev (*nev of them).  The finished trace, or NULL with rd filled
 * (rd->code DIAG_INTERNAL for internal errors, else the program rejected the
 * run); *st (may be NULL) the finished state; *done (may be NULL) the
 * handler after the run (fresh_lp, block_seen). */
Trace *motif_run_events(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                        const TraceBlock *b, Rng *rng, MotifEv **ev, int *nev, InterpState **st,
                        TraceHandler *done, Diag *rd);
/* Parameter q of event e as its element j sees it (a scalar parameter is
 * shared by every element); NaN when e has no such parameter. */
double motif_pv(const MotifEv *e, int q, int j);
/* The same kind of event, family, address and shapes. */
bool motif_same_event(const MotifEv *a, const MotifEv *b);

/* One network's training state, shared by both halves (motif.c): Adam as
 * learn-proposals documents it, the tape, the gradient and its buffers. */
typedef struct MotifFit {
  Optim *opt;
  Tape *t;
  double *grad, *adj;
  size_t adjcap;
  double avg; /* the smoothed loss (-log q), NaN before the first step */
} MotifFit;
/* false: out of memory (*err set); free it with motif_fit_free either way. */
bool motif_fit_init(MotifFit *f, const MotifNet *n, const MotifTrainOpts *o, const char **err);
/* One step maximising ll, the batch's mean log q on f->t, whose weights are
 * the tape's variables from node w_node on; reports progress every 100 steps.
 * false with *err on a tape error or out of memory. */
bool motif_fit_step(MotifFit *f, MotifNet *n, const MotifTrainOpts *o, long step, int32_t w_node,
                    AdNum ll, const char **err);
void motif_fit_free(MotifFit *f);

/* The continuous half (motif_cont.c), for motif.c's network functions. */
bool motif_cont_net_new(MotifNet *n, const char *sig, Rng *r, const char **err);
bool motif_cont_train(MotifNet *n, const MotifTrainOpts *o, const char **err);
const char *motif_cont_layout(void);

#endif
