/* train.h — `ppl train` (train.c; the API's ppl_train): fit a program's
 * params once and write them to a file that the engine amortized draws from
 * for new data (--load). */
#ifndef PPL_TRAIN_H
#define PPL_TRAIN_H

#include <stdio.h>

#include "engine.h"
#include "progress.h"

typedef struct TrainOpts {
  const char *save;      /* the file to write */
  bool amortize;         /* whole-program amortization (npe_train) instead of svi */
  const char *resume;    /* svi: a file ppl train wrote to start from (--load), or NULL */
  DataSource *data;      /* the data as given (npe: its sizes and inputs); NULL = none */
  ProgressMode progress; /* the progress line on progress_out */
  FILE *progress_out;
} TrainOpts;

/* The options of other engines' tables that npe_train reads too (lr,
 * flow-layers, flow-hidden: the same meaning as advi's; grad-blocks: svi's):
 * `ppl train --amortize` takes them beside the amortized engine's own. */
extern const char *const train_npe_borrowed[];

/* What a training run did (ppl_train_info's fields). */
typedef struct TrainInfo {
  const char *method;  /* "svi" or "npe" */
  long steps;          /* optimisation steps (svi) or simulations (npe) */
  double epochs;       /* passes over the batched plate (svi; 0: none) or the simulations */
  long examples;       /* plate elements the steps saw (svi with a batched plate; 0 without) */
  double elbo, loss;   /* svi: the saved params' ELBO; npe: held-out -log q (else NaN) */
  double seconds;
  bool converged, interrupted;
} TrainInfo;

/* Train program p, with its data loaded in `in` (svi; npe reads t->data and
 * takes in NULL), (options o: svi's with its
 * --iter, --lr, ..., or npe's; seed, interrupt) as one fit, chain 0 of the
 * seed, and write t->save.  When o->interrupt is set it stops at the next step
 * and still writes what it has (info->interrupted).  False + d: the program
 * has nothing to train, a step failed, or the file cannot be written. */
bool train_run(const IrProgram *p, const Interp *in, const EngineOpts *o, const TrainOpts *t, TrainInfo *info,
               Diag *d);

#endif
