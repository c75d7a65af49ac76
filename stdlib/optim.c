/* optim.c — Adam and SGD (momentum, Nesterov), weight decay, gradient-norm
 * clipping and learning-rate schedules (see optim.h).
 *
 * Updates follow PyTorch's conventions so trained numbers compare with what
 * users of Pyro/NumPyro expect: weight decay is L2 added to the gradient
 * before anything else, clipping scales the (decayed) gradient to the norm,
 * Adam's bias correction divides the moments by 1 - beta^t, and SGD's
 * momentum buffer is v = mu v + g (no dampening) with the Nesterov step
 * g + mu v.  Everything is a fixed sequence of double operations per
 * coordinate, so the same inputs give the same bits.
 */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

struct Optim {
  OptimConfig c;
  size_t n;
  long t;     /* steps taken */
  double *m;  /* Adam: first moment; SGD: momentum buffer */
  double *v;  /* Adam: second moment */
};

void optim_config_default(OptimConfig *c, OptimKind kind) {
  *c = (OptimConfig){
      .kind = kind,
      .lr = kind == OPTIM_ADAM ? 1e-3 : 1e-2,
      .beta1 = 0.9,
      .beta2 = 0.999,
      .eps = 1e-8,
      .momentum = kind == OPTIM_SGD ? 0.9 : 0,
      .nesterov = false,
      .weight_decay = 0,
      .clip_norm = 0,
      .sched = OPTIM_SCHED_CONSTANT,
      .gamma = 1,
      .step_every = 1,
      .horizon = 1,
      .lr_min = 0,
  };
}

Optim *optim_new(const OptimConfig *c, size_t n) {
  Optim *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->c = *c;
  o->n = n;
  /* calloc: both moments start at 0, which Adam's bias correction assumes */
  o->m = calloc(n ? n : 1, sizeof *o->m);
  o->v = calloc(n ? n : 1, sizeof *o->v);
  if (!o->m || !o->v) {
    optim_free(o);
    return NULL;
  }
  return o;
}

/* The schedule's rate at step t (0-based: the rate of the (t+1)-th step). */
static double sched_lr(const OptimConfig *c, long t) {
  switch (c->sched) {
  case OPTIM_SCHED_STEP:
    return c->lr * pow(c->gamma, (double)(t / (c->step_every > 0 ? c->step_every : 1)));
  case OPTIM_SCHED_EXP:
    return c->lr * pow(c->gamma, (double)t);
  case OPTIM_SCHED_COSINE: {
    long h = c->horizon > 0 ? c->horizon : 1;
    /* past the horizon the rate stays at lr_min rather than climbing again */
    double s = t >= h ? 1.0 : (double)t / (double)h;
    return c->lr_min + (c->lr - c->lr_min) * (1 + cos(M_PI * s)) / 2;
  }
  case OPTIM_SCHED_CONSTANT:
  default:
    return c->lr;
  }
}

long optim_steps(const Optim *o) { return o->t; }
const double *optim_moment(const Optim *o, int k) { return k ? o->v : o->m; }
size_t optim_size(const Optim *o) { return o->n; }

void optim_restore(Optim *o, long steps, const double *m, const double *v) {
  o->t = steps;
  for (size_t i = 0; i < o->n; i++) o->m[i] = m[i], o->v[i] = v[i];
}
double optim_lr(const Optim *o) { return sched_lr(&o->c, o->t); }

void optim_step(Optim *o, double *x, const double *grad) {
  const OptimConfig *c = &o->c;
  size_t n = o->n;
  double lr = sched_lr(c, o->t);
  o->t++;

  /* The clip factor needs the norm of the whole (decayed) gradient first. */
  double scale = 1;
  if (c->clip_norm > 0) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
      double g = grad[i] + c->weight_decay * x[i];
      ss += g * g;
    }
    double norm = sqrt(ss);
    if (norm > c->clip_norm) scale = c->clip_norm / norm;
  }

  if (c->kind == OPTIM_ADAM) {
    double bc1 = 1 - pow(c->beta1, (double)o->t);
    double bc2 = 1 - pow(c->beta2, (double)o->t);
    for (size_t i = 0; i < n; i++) {
      double g = (grad[i] + c->weight_decay * x[i]) * scale;
      o->m[i] = c->beta1 * o->m[i] + (1 - c->beta1) * g;
      o->v[i] = c->beta2 * o->v[i] + (1 - c->beta2) * g * g;
      double mh = o->m[i] / bc1, vh = o->v[i] / bc2;
      x[i] -= lr * mh / (sqrt(vh) + c->eps);
    }
    return;
  }
  for (size_t i = 0; i < n; i++) {
    double g = (grad[i] + c->weight_decay * x[i]) * scale;
    if (c->momentum != 0) {
      /* PyTorch starts the buffer at the first gradient, which v = mu*0 + g gives */
      o->m[i] = c->momentum * o->m[i] + g;
      g = c->nesterov ? g + c->momentum * o->m[i] : o->m[i];
    }
    x[i] -= lr * g;
  }
}

void optim_free(Optim *o) {
  if (!o) return;
  free(o->m);
  free(o->v);
  free(o);
}
