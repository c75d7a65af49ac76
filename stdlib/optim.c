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

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* Adam's update of every coordinate.  The same operations in the same order
 * for each, two at a time with SSE2 (IEEE arithmetic and square root, no
 * fused multiply-add: the same bits as one at a time), which the compiler
 * would not do by itself (the arrays may overlap as far as it knows, and
 * sqrt may set errno).  A network's ten thousands of weights make this a
 * few percent of a training step. */
static void adam_update(const OptimConfig *c, size_t n, double lr, double scale, double bc1,
                        double bc2, double *x, const double *grad, double *m, double *v) {
  const double b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay, eps = c->eps;
  size_t i = 0;
#ifdef __SSE2__
  const __m128d B1 = _mm_set1_pd(b1), C1 = _mm_set1_pd(1 - b1), B2 = _mm_set1_pd(b2),
                C2 = _mm_set1_pd(1 - b2), WD = _mm_set1_pd(wd), S = _mm_set1_pd(scale),
                BC1 = _mm_set1_pd(bc1), BC2 = _mm_set1_pd(bc2), LR = _mm_set1_pd(lr),
                EPS = _mm_set1_pd(eps);
  for (; i + 2 <= n; i += 2) {
    __m128d xi = _mm_loadu_pd(x + i);
    __m128d g = _mm_mul_pd(_mm_add_pd(_mm_loadu_pd(grad + i), _mm_mul_pd(WD, xi)), S);
    __m128d mi = _mm_add_pd(_mm_mul_pd(B1, _mm_loadu_pd(m + i)), _mm_mul_pd(C1, g));
    __m128d vi = _mm_add_pd(_mm_mul_pd(B2, _mm_loadu_pd(v + i)), _mm_mul_pd(_mm_mul_pd(C2, g), g));
    _mm_storeu_pd(m + i, mi);
    _mm_storeu_pd(v + i, vi);
    __m128d mh = _mm_div_pd(mi, BC1), vh = _mm_div_pd(vi, BC2);
    __m128d step = _mm_div_pd(_mm_mul_pd(LR, mh), _mm_add_pd(_mm_sqrt_pd(vh), EPS));
    _mm_storeu_pd(x + i, _mm_sub_pd(xi, step));
  }
#endif
  for (; i < n; i++) {
    double g = (grad[i] + wd * x[i]) * scale;
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    double mh = m[i] / bc1, vh = v[i] / bc2;
    x[i] -= lr * mh / (sqrt(vh) + eps);
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
    adam_update(c, n, lr, scale, bc1, bc2, x, grad, o->m, o->v);
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
