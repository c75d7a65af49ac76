/* vi.h — variational families over the unconstrained vector theta of a
 * fixed-structure program (inference/logdensity.h), for engine advi.
 *
 * A family is a differentiable map theta = T_phi(eps) from standard normal
 * noise eps (dim reals) with learnable parameters phi (nparams reals, owned by
 * the family, changed in place by the optimiser).  With it the ELBO is
 *
 *     E_eps[ log p(T_phi(eps)) + log|det dT_phi/deps|(eps) ] + H[N(0, I)]
 *
 * so every family is trained by the same reparameterised gradient: the engine
 * evaluates grad log p at theta (ld_eval_grad) and the family turns it into a
 * gradient with respect to phi (backward).  Mean-field and full-rank Gaussians
 * (Stan's ADVI) and the Real NVP flow are families; the flow's log-det
 * depends on eps, the Gaussians' does not.
 */
#ifndef PPL_VI_H
#define PPL_VI_H

#include <stdbool.h>
#include <stddef.h>

#include "../stdlib/rng.h"

typedef struct ViFamily ViFamily;
struct ViFamily {
  const char *name;   /* "meanfield", "fullrank", "flow" */
  size_t dim;         /* length of theta and eps */
  size_t nparams;     /* length of phi */
  double *phi;        /* the parameters, nparams reals (owned by the family) */
  /* theta = T(eps); *logdet = log|det dT/deps| at eps. */
  void (*forward)(ViFamily *f, const double *eps, double *theta, double *logdet);
  /* Add to gphi (nparams reals) the gradient with respect to phi of
     gtheta . T(eps) + wlogdet * logdet(eps), i.e. the vector-Jacobian product
     of the map at eps, with the log-det term weighted by wlogdet. */
  void (*backward)(ViFamily *f, const double *eps, const double *gtheta, double wlogdet,
                   double *gphi);
  /* Parameters as named tensors, for saving (stdlib/safetensors.h) and the
     summary: tensor i is named names[i] with shape shapes[i][0..ranks[i]) and
     takes the next numel reals of phi, in order. */
  int ntensors;
  const char **names;
  const int *ranks;
  const int (*shapes)[4];
  void *impl;
};

/* Mean-field Gaussian: phi = (mu[dim], omega[dim]), theta = mu + exp(omega) * eps. */
ViFamily *vi_meanfield_new(size_t dim);
/* Full-rank Gaussian: phi = (mu[dim], L[dim x dim] lower triangle row by row),
 * theta = mu + L eps. */
ViFamily *vi_fullrank_new(size_t dim);
/* Real NVP (Dinh et al. 2017): `layers` affine coupling layers with
 * alternating masks; each layer's scale and shift come from an MLP
 * (stdlib/nn.h) with `hidden` units in each of its two hidden layers, initialised
 * from r so that the flow starts near the identity. */
ViFamily *vi_flow_new(size_t dim, int layers, int hidden, Rng *r);
void vi_family_free(ViFamily *f);

/* Stan's convergence test of the ELBO (advi and svi): the mean and the median
 * of the last cb relative changes, kept in a circular buffer.  Each engine
 * computes its relative change and its stopping rule from these. */
typedef struct ViRelTest {
  int cb, n, head;
  double *buf;
} ViRelTest;
void vi_reltest_init(ViRelTest *t, int cb);
/* Add a relative change; the buffer's mean and median (Stan's: the upper middle
 * of an even count) into *mean, *median. */
void vi_reltest_push(ViRelTest *t, double rel, double *mean, double *median);

/* ---- the draws an engine writes from q (advi, amortized npe) ---- */

struct Diag;
struct LdWork;
struct Draw;

/* One draw of q: theta (dim reals), log p(theta) and log q(theta). */
typedef bool (*ViSample)(void *ctx, double *theta, double *lp, double *lq, struct Diag *d);

/* Each step's draw is a fresh one of q or, under --psis-resample, the next
 * of a pool of n draws made beforehand and resampled by their
 * Pareto-smoothed importance weights (in a random order, so that duplicates
 * are not neighbours).  The log weights log p - log q of every draw made are
 * kept: the ViReport's n and lw. */
typedef struct ViDraws {
  size_t dim;
  ViSample sample;
  void *ctx;
  double *theta;      /* the current fresh draw */
  double *lw;         /* log weights of every draw made */
  int nlw, caplw;
  double *pool, *pool_lp, *pool_lq;
  int *order, npool, next;
} ViDraws;

void vi_draws_init(ViDraws *v, size_t dim, ViSample sample, void *ctx);
/* The pool of n draws, resampled with r's randomness. */
bool vi_draws_resample(ViDraws *v, int n, Rng *r, struct Diag *d);
/* The next draw written as a Draw: the program's outputs at theta
 * (ld_draw with a seed from out_rng, stream chain), lp__ = log p, the log
 * weight, and the engine columns log_p__ and log_g__. */
bool vi_draws_step(ViDraws *v, struct LdWork *w, Rng *out_rng, int chain, struct Draw *out,
                   struct Diag *d);

#endif
