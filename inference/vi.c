/* vi.c — the Gaussian variational families of ADVI (vi.h): mean-field
 * theta = mu + exp(omega) .* eps and full-rank theta = mu + L eps.
 *
 * Both start at the standard normal (omega = 0, L = I), as Stan's ADVI does;
 * the engine then moves mu to the chain's initial point.  Their log-det does
 * not depend on eps (sum omega, sum log|L_ii|), so its gradient is the
 * entropy's: 1 per omega, 1 / L_ii per diagonal entry. */
#include "vi.h"

#include <math.h>
#include <string.h>

#include "../core/value.h"
#include "engine.h"
#include "logdensity.h"
#include "resample.h"

/* The tensors' metadata (names, ranks, shapes) lives beside the family. */
typedef struct ViMeta {
  const char *names[2];
  int ranks[2];
  int shapes[2][4];
} ViMeta;

/* phi = (mu[dim], scale[nparams - dim]): two tensors of rank 1 (the
   full-rank L as its packed lower triangle, row by row). */
static ViFamily *vi_alloc(const char *name, size_t dim, size_t nparams, const char *scale) {
  ViFamily *f = gc_alloc(sizeof *f);
  ViMeta *m = gc_alloc(sizeof *m);
  f->name = name;
  f->dim = dim;
  f->nparams = nparams;
  f->phi = gc_alloc_atomic(sizeof(double) * (nparams ? nparams : 1));
  for (size_t i = 0; i < nparams; i++) f->phi[i] = 0;
  m->names[0] = "mu";
  m->names[1] = scale;
  m->ranks[0] = m->ranks[1] = 1;
  m->shapes[0][0] = (int)dim;
  m->shapes[1][0] = (int)(nparams - dim);
  f->ntensors = 2;
  f->names = m->names;
  f->ranks = m->ranks;
  f->shapes = (const int(*)[4])m->shapes;
  f->impl = m;
  return f;
}

/* ---- mean-field ---- */

static void mf_forward(ViFamily *f, const double *eps, double *theta, double *logdet) {
  size_t n = f->dim;
  const double *mu = f->phi, *omega = f->phi + n;
  double ld = 0;
  for (size_t i = 0; i < n; i++) {
    theta[i] = mu[i] + exp(omega[i]) * eps[i];
    ld += omega[i];
  }
  *logdet = ld;
}

static void mf_backward(ViFamily *f, const double *eps, const double *gtheta, double wlogdet,
                        double *gphi) {
  size_t n = f->dim;
  const double *omega = f->phi + n;
  for (size_t i = 0; i < n; i++) {
    gphi[i] += gtheta[i];
    gphi[n + i] += gtheta[i] * eps[i] * exp(omega[i]) + wlogdet;
  }
}

ViFamily *vi_meanfield_new(size_t dim) {
  ViFamily *f = vi_alloc("meanfield", dim, 2 * dim, "omega");
  f->forward = mf_forward;
  f->backward = mf_backward;
  return f;
}

/* ---- full-rank: L's lower triangle row by row, entry (i, j) at i(i+1)/2 + j ---- */

static void fr_forward(ViFamily *f, const double *eps, double *theta, double *logdet) {
  size_t n = f->dim;
  const double *mu = f->phi, *L = f->phi + n;
  double ld = 0;
  for (size_t i = 0; i < n; i++) {
    const double *row = L + i * (i + 1) / 2;
    double s = mu[i];
    for (size_t j = 0; j <= i; j++) s += row[j] * eps[j];
    theta[i] = s;
    ld += log(fabs(row[i]));
  }
  *logdet = ld;
}

static void fr_backward(ViFamily *f, const double *eps, const double *gtheta, double wlogdet,
                        double *gphi) {
  size_t n = f->dim;
  const double *L = f->phi + n;
  double *gL = gphi + n;
  for (size_t i = 0; i < n; i++) {
    size_t r = i * (i + 1) / 2;
    gphi[i] += gtheta[i];
    for (size_t j = 0; j <= i; j++) gL[r + j] += gtheta[i] * eps[j];
    gL[r + i] += wlogdet / L[r + i];
  }
}

ViFamily *vi_fullrank_new(size_t dim) {
  ViFamily *f = vi_alloc("fullrank", dim, dim + dim * (dim + 1) / 2, "L");
  double *L = f->phi + dim;
  for (size_t i = 0; i < dim; i++) L[i * (i + 1) / 2 + i] = 1;
  f->forward = fr_forward;
  f->backward = fr_backward;
  return f;
}

void vi_family_free(ViFamily *f) { (void)f; /* GC memory */ }

/* ---- Stan's relative-ELBO test ---- */

void vi_reltest_init(ViRelTest *t, int cb) {
  t->cb = cb;
  t->n = t->head = 0;
  t->buf = gc_alloc_atomic(sizeof(double) * 2 * (size_t)cb); /* the buffer, then a sorted copy */
}

void vi_reltest_push(ViRelTest *t, double rel, double *mean, double *median) {
  t->buf[t->head] = rel;
  t->head = (t->head + 1) % t->cb;
  if (t->n < t->cb) t->n++;
  int n = t->n;
  double sum = 0, *s = t->buf + t->cb;
  for (int i = 0; i < n; i++) sum += t->buf[i], s[i] = t->buf[i];
  for (int i = 1; i < n; i++) /* n is small: insertion sort */
    for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
      double x = s[j];
      s[j] = s[j - 1], s[j - 1] = x;
    }
  *mean = sum / n;
  *median = s[n / 2]; /* Stan's: nth_element at n/2, the upper middle of an even count */
}

/* ---- the draws an engine writes from q ---- */

void vi_draws_init(ViDraws *v, size_t dim, ViSample sample, void *ctx) {
  memset(v, 0, sizeof *v);
  v->dim = dim, v->sample = sample, v->ctx = ctx;
  v->theta = gc_alloc_atomic(sizeof(double) * (dim ? dim : 1));
}

static void vi_keep_lw(ViDraws *v, double lw) {
  v->lw = gc_grow(v->lw, v->nlw, &v->caplw, sizeof(double));
  v->lw[v->nlw++] = lw;
}

bool vi_draws_resample(ViDraws *v, int n, Rng *r, Diag *d) {
  v->npool = n;
  v->pool = gc_alloc_atomic(sizeof(double) * v->dim * (size_t)(n ? n : 1));
  v->pool_lp = gc_alloc_atomic(sizeof(double) * (size_t)(n ? n : 1));
  v->pool_lq = gc_alloc_atomic(sizeof(double) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    if (!v->sample(v->ctx, v->pool + v->dim * (size_t)i, &v->pool_lp[i], &v->pool_lq[i], d))
      return false;
    vi_keep_lw(v, v->pool_lp[i] - v->pool_lq[i]);
  }
  v->order = gc_alloc_atomic(sizeof(int) * (size_t)(n ? n : 1));
  resample_psis_order(n, v->lw, r, v->order);
  return true;
}

bool vi_draws_step(ViDraws *v, LdWork *w, Rng *out_rng, int chain, Draw *out, Diag *d) {
  double lp, lq;
  const double *theta = v->theta;
  if (v->pool) {
    int k = v->order[v->next++ % v->npool];
    theta = v->pool + v->dim * (size_t)k;
    lp = v->pool_lp[k], lq = v->pool_lq[k];
  } else {
    if (!v->sample(v->ctx, v->theta, &lp, &lq, d)) return false;
    vi_keep_lw(v, lp - lq);
  }
  InterpLatent *nested;
  out->outputs = ld_draw(w, theta, rng_u64(out_rng), (uint64_t)chain, &nested, &out->nlatents, d);
  if (!out->outputs) return false;
  out->latents = nested;
  out->lp = lp;
  out->log_weight = lp - lq;
  out->stats[0] = lp;
  out->stats[1] = lq;
  return true;
}
