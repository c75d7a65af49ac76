/* optim.h — first-order optimisers for learnable parameters: Adam (with bias
 * correction) and SGD with momentum, gradient-norm clipping and learning-rate
 * schedules.  They minimise: engines that maximise an objective (the ELBO)
 * pass its negated gradient.  Deterministic: no randomness, no threads.
 */
#ifndef PPL_OPTIM_H
#define PPL_OPTIM_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { OPTIM_ADAM, OPTIM_SGD } OptimKind;
typedef enum {
  OPTIM_SCHED_CONSTANT, /* lr */
  OPTIM_SCHED_STEP,     /* lr * gamma^floor(t / step_every) */
  OPTIM_SCHED_EXP,      /* lr * gamma^t */
  OPTIM_SCHED_COSINE,   /* lr_min + (lr - lr_min)(1 + cos(pi t / horizon)) / 2 */
} OptimSched;

typedef struct OptimConfig {
  OptimKind kind;
  double lr;            /* default 1e-3 (Adam), 1e-2 (SGD) */
  double beta1, beta2;  /* Adam: 0.9, 0.999 */
  double eps;           /* Adam: 1e-8 */
  double momentum;      /* SGD: 0.9; 0 = plain SGD */
  bool nesterov;        /* SGD */
  double weight_decay;  /* L2 added to the gradient: 0 */
  double clip_norm;     /* clip the whole gradient to this L2 norm; 0 = off */
  OptimSched sched;
  double gamma;         /* STEP/EXP: decay factor */
  long step_every;      /* STEP */
  long horizon;         /* COSINE: steps to lr_min */
  double lr_min;        /* COSINE */
} OptimConfig;

/* The defaults above for kind. */
void optim_config_default(OptimConfig *c, OptimKind kind);

typedef struct Optim Optim;
/* An optimiser over n parameters; NULL when out of memory. */
Optim *optim_new(const OptimConfig *c, size_t n);
/* One step: x -= update(grad) (grad is not modified). */
void optim_step(Optim *o, double *x, const double *grad);
/* Steps taken so far, and the learning rate of the next step. */
long optim_steps(const Optim *o);
double optim_lr(const Optim *o);
/* The state a later run resumes from (a training file keeps it): the
 * moments (k = 0: Adam's first / SGD's momentum buffer, k = 1: Adam's
 * second; n reals each), and optim_restore to put them back with the step
 * count, so the bias correction and the schedule go on where they were. */
const double *optim_moment(const Optim *o, int k);
size_t optim_size(const Optim *o);
void optim_restore(Optim *o, long steps, const double *m, const double *v);
void optim_free(Optim *o);

#endif
