/* train.c — `ppl train`: fit a program's params once and write them to a
 * file for the engine amortized (--load), which then draws for new data with
 * no further optimisation.
 *
 * A program with a guide block trains with svi's loop (svi_fit): the guide's
 * encoder networks and the model's params jointly, plates with a batch size
 * subsampled each step; the file is of kind svi.  With --amortize it trains
 * whole-program amortization instead (npe_train), a file of kind npe.  One
 * fit: chain 0 of the seed, so the same seed trains the same params.
 *
 * While training, one progress line on the host's stream (redrawn in place
 * on a terminal, else a plain line at every tenth of the steps and at least
 * every ten seconds): the epoch
 * over the batched plate, the step, the ELBO averaged over the last steps
 * (one step's estimate is one minibatch's, noisy), and examples (plate
 * elements) a second, or steps a second without a batched plate.  The host's
 * interrupt stops training before the next step, and what was trained is
 * still written: a long fit stopped by Ctrl-C keeps its progress.
 *
 * Under MPI (o->comm) both train data-parallel: every rank computes its share
 * of each step's gradient blocks (svi.c, svi_grad_blocks; npe.c, npe_grad,
 * which also shares out the simulations) and takes the same step, so every
 * rank ends with the same params; rank 0 writes them. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "mpi_run.h"
#include "npe.h"
#include "svi.h"
#include "train.h"

const char *const train_npe_borrowed[] = {"lr", "flow-layers", "flow-hidden", "grad-blocks", NULL};

#define TRAIN_SMOOTH 100 /* steps in the progress line's running ELBO average */

static double train_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The progress line after `step` of `total` steps, `elapsed` seconds in;
   plate_size 0: no batched plate. */
static const char *train_line(long step, long total, double elapsed, double elbo, int64_t plate_size,
                              int64_t batch) {
  double rate = elapsed > 0 ? (double)step / elapsed : 0;
  if (plate_size > 0)
    return gc_printf("epoch %.2f  step %ld/%ld  ELBO %.6g (smoothed)  %.0f examples/s",
                     (double)step * (double)batch / (double)plate_size, step, total, elbo,
                     rate * (double)batch);
  return gc_printf("step %ld/%ld  ELBO %.6g (smoothed)  %.1f steps/s", step, total, elbo, rate);
}

typedef struct TrainShow {
  const TrainOpts *t;
  double t0, last;  /* start, last terminal redraw */
  long total;
  double avg;       /* the running average of the steps' ELBO estimates */
  long shown;       /* the tenth last shown as a plain line */
  bool drawn;       /* a terminal line is up */
  const char *unit; /* npe's current unit ("simulation", "epoch") */
} TrainShow;

/* The line, redrawn in place on a terminal (the caller ends it with a
   newline when training is over: sh->drawn), else a line of its own. */
static void train_show(TrainShow *sh, const char *line) {
  FILE *f = sh->t->progress_out;
  if (sh->t->progress == PROGRESS_TERMINAL) {
    fprintf(f, "\r\033[K%s", line);
    sh->drawn = true;
  } else {
    fprintf(f, "train: %s\n", line);
  }
  fflush(f);
}

static void train_tick(void *ctx, const Svi *s, long step, double elbo) {
  TrainShow *sh = ctx;
  sh->avg += (elbo - sh->avg) / (double)(step < TRAIN_SMOOTH ? step : TRAIN_SMOOTH);
  if (sh->t->progress == PROGRESS_OFF) return;
  double now = train_now();
  long tenth = 10 * step / sh->total;
  bool due = sh->t->progress == PROGRESS_TERMINAL ? now - sh->last >= 0.1 || step == sh->total
                                                  : tenth > sh->shown || now - sh->last >= 10;
  if (!due) return;
  sh->last = now, sh->shown = tenth;
  SviFitInfo fi;
  svi_fit_info(s, &fi);
  train_show(sh, train_line(step, sh->total, now - sh->t0, sh->avg, fi.plate_size, fi.batch));
}

/* --epochs E for svi: o with --iter = ceil(E N / B) of the data plate (N
   elements, batches of B), which the check run of a first svi_prepare finds;
   o itself without --epochs. */
static const EngineOpts *train_epochs(const Interp *in, const EngineOpts *o, Diag *d) {
  const OptValue *ep = opt_set_get(o->set, "epochs");
  if (!ep) return o;
  if (opt_set_get(o->set, "iter")) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "train: give --epochs or --iter, not both");
    return NULL;
  }
  Svi *s = svi_prepare(in, o, 0, d);
  int64_t n, b;
  if (!s) return NULL;
  if (!svi_data_plate_of(s, &n, &b)) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "train: --epochs counts passes over a plate with a "
               "batch size (plate (i in 1:N, batch = B)), and the program has none: give --iter");
    return NULL;
  }
  EngineOpts *eo = gc_alloc(sizeof *eo);
  *eo = *o;
  eo->set = opt_set_new();
  for (int k = 0; k < o->set->n; k++) opt_set_put(eo->set, o->set->spec[k], o->set->val[k]);
  const OptSpec *iter = engine_option_find("iter");
  double steps = ceil((double)ep->i * (double)n / (double)b);
  if (steps > (double)iter->ihi) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "train: --epochs %lld of %lld elements in batches of "
               "%lld are %.0f steps, more than --iter's %lld", (long long)ep->i, (long long)n,
               (long long)b, steps, (long long)iter->ihi);
    return NULL;
  }
  opt_set_put(eo->set, iter, (OptValue){.i = (int64_t)steps});
  return eo;
}

static bool train_svi(const Interp *in, const EngineOpts *o, const TrainOpts *t, TrainInfo *info,
                      Diag *d) {
  if (!(o = train_epochs(in, o, d))) return false;
  Svi *s = svi_prepare(in, o, 0, d);
  if (!s) return false;
  if (t->resume) { /* the params trained so far, and the optimiser's state */
    StFile *f = svi_read_params(t->resume, interp_program(in), "--load", d);
    if (!f || !svi_set_params(s, f, t->resume, "--load", d) ||
        !svi_resume_optim(s, f, t->resume, d))
      return false;
  }
  if (svi_dim(s) == 0) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "train: the program has no param to train "
               "(declare the guide's encoder weights with param or network; docs/language.md)");
    return false;
  }
  TrainShow sh = {.t = t, .t0 = train_now(), .total = (long)engine_opt_int(o, "iter")};
  sh.last = sh.t0;
  bool ok = svi_fit(s, train_tick, &sh, d);
  if (sh.drawn) fputs("\n", t->progress_out);
  if (!ok) return false;
  SviFitInfo fi;
  svi_fit_info(s, &fi);
  *info = (TrainInfo){.method = "svi", .steps = fi.steps, .elbo = fi.elbo, .loss = NAN,
                      .seconds = fi.seconds, .converged = fi.converged,
                      .interrupted = fi.interrupted};
  if (fi.plate_size > 0) {
    info->examples = fi.steps * fi.batch;
    info->epochs = (double)info->examples / (double)fi.plate_size;
  }
  /* under MPI (o->comm) every rank trained the same params: rank 0 writes
     them, and the others learn whether it could */
  bool wrote = mpi_rank(o->comm) != 0 || svi_write_params(s, t->save, d), bad = !wrote;
  if (!mpi_allreduce_or(o->comm, &bad)) bad = true;
  if (bad && wrote)
    diag_error(d, DIAG_IO, (SrcPos){0}, "train: rank 0 could not write %s", t->save);
  return !bad;
}

/* npe's progress (unit "epoch") as the progress line */
static void train_npe_progress(void *ctx, int chain, long done, long total, const char *unit) {
  (void)chain;
  TrainShow *sh = ctx;
  if (sh->t->progress == PROGRESS_OFF) return;
  double now = train_now();
  long tenth = total > 0 ? 10 * done / total : 0;
  if (strcmp(unit, sh->unit ? sh->unit : "") != 0) sh->unit = unit, sh->shown = -1;
  if (sh->t->progress != PROGRESS_TERMINAL && tenth <= sh->shown && now - sh->last < 10) return;
  sh->shown = tenth, sh->last = now;
  train_show(sh, gc_printf("%s %ld/%ld  %.1f s", unit, done, total, now - sh->t0));
}

static bool train_npe(const IrProgram *p, const EngineOpts *o, const TrainOpts *t, TrainInfo *info,
                      Diag *d) {
  TrainShow sh = {.t = t, .t0 = train_now()};
  sh.last = sh.t0;
  EngineOpts eo = *o;
  eo.progress = train_npe_progress, eo.progress_ctx = &sh;
  NpeTrainInfo ni = {0};
  gc_throughput_begin(); /* the simulations' values are garbage by the next batch */
  bool ok = npe_train(p, t->data, &eo, t->save, &ni, d);
  gc_throughput_end();
  if (sh.drawn) fputs("\n", t->progress_out);
  if (!ok) return false;
  *info = (TrainInfo){.method = "npe", .steps = ni.simulations, .epochs = ni.epochs,
                      .examples = ni.simulations * ni.epochs, .elbo = NAN, .loss = ni.loss,
                      .seconds = ni.seconds, .converged = !ni.interrupted,
                      .interrupted = ni.interrupted};
  return true;
}

bool train_run(const IrProgram *p, const Interp *in, const EngineOpts *o, const TrainOpts *t,
               TrainInfo *info, Diag *d) {
  memset(info, 0, sizeof *info);
  return t->amortize ? train_npe(p, o, t, info, d) : train_svi(in, o, t, info, d);
}
