/* vi_flow.c — the Real NVP normalizing flow (Dinh, Sohl-Dickstein, Bengio
 * 2017) as a variational family of inference/vi.h, for `--vi flow`.
 *
 * The flow itself (its layout, the coupling layers and both directions on
 * the tape) is stdlib/realnvp.h's, shared with the flow params of programs
 * (`param flow q = realnvp(...)`, `z ~ flow(q)`); this file adapts it to
 * ViFamily's forward/backward and names its tensors.  On the banana of
 * tests/inference/test_vi_flow_fit.c relu coupling nets gave an ELBO of -0.01
 * where tanh stalled at -0.03, with lower k-hat: hence realnvp.h's relu.
 * The flow starts as the identity map until the engine centres it on the
 * chain's initial point.
 *
 * Forward and backward both record the map on the family's tape: phi as
 * constants for forward (no nodes, plain BLAS), as one tensor_var for
 * backward, whose output adjoints are seeded with gtheta and wlogdet and swept
 * once.  The tape makes a family single-threaded: the engine makes one per
 * chain.
 *
 * phi is realnvp.h's flat weight vector; as the family's named tensors
 * (safetensors order): mu [dim], omega [dim], then for k = 0..layers-1 and
 * each dense layer l of MLP k: "coupling<k>.W<l>" [in, out] (row-major) and
 * "coupling<k>.b<l>" [out].
 */
#include "vi_flow.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/value.h"
#include "../stdlib/ad.h"
#include "../stdlib/nn.h"
#include "../stdlib/realnvp.h"
#include "../stdlib/tensor.h"

typedef struct {
  Rnvp rn;
  Tape *tape;         /* reused by every call: steady state allocates nothing */
  double *adj;        /* adjoints for backward, grown with the tape */
  size_t adjcap;
  AdNum *x, *e;       /* dim each: the point and eps */
} Flow;

static Flow *flow_of(ViFamily *f) { return f->impl; }

/* Record T(eps) on the tape with phi's tensor (constant or variable): the
 * point in fl->x, the log-determinant returned. */
static AdNum flow_record(ViFamily *f, Tensor phi, const double *eps) {
  Flow *fl = flow_of(f);
  for (size_t i = 0; i < f->dim; i++) fl->e[i] = ad_const(eps[i]);
  return rnvp_forward(fl->tape, &fl->rn, phi, fl->e, fl->x);
}

static Tensor phi_const(ViFamily *f) {
  int n = (int)f->nparams;
  return tensor_const(1, &n, f->phi);
}

static void flow_forward(ViFamily *f, const double *eps, double *theta, double *logdet) {
  Flow *fl = flow_of(f);
  tape_reset(fl->tape);
  AdNum ld = flow_record(f, phi_const(f), eps);
  for (size_t i = 0; i < f->dim; i++) theta[i] = fl->x[i].v;
  *logdet = ld.v;
}

static void flow_backward(ViFamily *f, const double *eps, const double *gtheta, double wlogdet,
                          double *gphi) {
  Flow *fl = flow_of(f);
  Tape *t = fl->tape;
  tape_reset(t);
  int n = (int)f->nparams;
  Tensor phi = tensor_var(t, 1, &n, f->phi);
  AdNum ld = flow_record(f, phi, eps);
  size_t need = tape_size(t) + 1;
  if (need > fl->adjcap) {
    fl->adjcap = need * 2;
    fl->adj = gc_alloc_atomic(sizeof(double) * fl->adjcap);
  }
  memset(fl->adj, 0, sizeof(double) * need);
  for (size_t i = 0; i < f->dim; i++) fl->adj[fl->x[i].n] += gtheta[i];
  fl->adj[ld.n] += wlogdet;
  fl->adj[0] = 0; /* seeds of constant outputs (none when phi is variable) */
  tape_backward_seeded(t, fl->adj);
  for (int i = 0; i < n; i++) gphi[i] += fl->adj[phi.node + i];
}

void vi_flow_inverse(ViFamily *f, const double *theta, double *eps, double *logdet) {
  Flow *fl = flow_of(f);
  tape_reset(fl->tape);
  for (size_t i = 0; i < f->dim; i++) fl->x[i] = ad_const(theta[i]);
  AdNum ld = rnvp_inverse(fl->tape, &fl->rn, phi_const(f), fl->x, fl->e);
  for (size_t i = 0; i < f->dim; i++) eps[i] = fl->e[i].v;
  *logdet = ld.v;
}

ViFamily *vi_flow_new(size_t dim, int layers, int hidden, Rng *r) {
  if (dim < 1 || dim > RNVP_MAXDIM) return NULL;
  ViFamily *f = gc_alloc(sizeof *f);
  Flow *fl = gc_alloc(sizeof *fl);
  char err[128];
  if (!rnvp_make(&fl->rn, (int)dim, layers, hidden, err, sizeof err)) return NULL;
  int d = (int)dim;
  f->name = "flow";
  f->dim = dim;
  f->nparams = fl->rn.nparams;
  f->phi = gc_alloc_atomic(sizeof(double) * f->nparams);
  rnvp_init(&fl->rn, r, f->phi);
  f->forward = flow_forward;
  f->backward = flow_backward;

  /* Named tensors: mu, omega, then W and b of every dense layer. */
  int nt = 2;
  for (int k = 0; k < fl->rn.ncoupling; k++) nt += 2 * fl->rn.layer[k].mlp.nlayers;
  const char **names = gc_alloc(sizeof(char *) * (size_t)nt);
  int *ranks = gc_alloc_atomic(sizeof(int) * (size_t)nt);
  int(*shapes)[4] = gc_alloc_atomic(sizeof(int[4]) * (size_t)nt);
  names[0] = "mu";
  names[1] = "omega";
  ranks[0] = ranks[1] = 1;
  shapes[0][0] = shapes[1][0] = d;
  int i = 2;
  for (int k = 0; k < fl->rn.ncoupling; k++) {
    const NnMlp *m = &fl->rn.layer[k].mlp;
    for (int l = 0; l < m->nlayers; l++, i += 2) {
      char *w = gc_alloc_atomic(32), *b = gc_alloc_atomic(32);
      snprintf(w, 32, "coupling%d.W%d", k, l);
      snprintf(b, 32, "coupling%d.b%d", k, l);
      names[i] = w;
      names[i + 1] = b;
      ranks[i] = 2;
      shapes[i][0] = m->sizes[l];
      shapes[i][1] = m->sizes[l + 1];
      ranks[i + 1] = 1;
      shapes[i + 1][0] = m->sizes[l + 1];
    }
  }
  f->ntensors = nt;
  f->names = names;
  f->ranks = ranks;
  f->shapes = (const int(*)[4])shapes;

  fl->tape = tape_new();
  fl->x = gc_alloc_atomic(sizeof(AdNum) * dim);
  fl->e = gc_alloc_atomic(sizeof(AdNum) * dim);
  f->impl = fl;
  return f;
}
