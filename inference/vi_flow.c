/* vi_flow.c — the Real NVP normalizing flow (Dinh, Sohl-Dickstein, Bengio
 * 2017) as a variational family of inference/vi.h, for `--vi flow`.
 *
 * theta = C_L o ... o C_1 (mu + exp(omega) * eps): an element-wise affine base
 * layer (the mean-field Gaussian, so a flow can start at mean-field's
 * solution) followed by `layers` affine coupling layers.  Coupling layer k
 * splits the coordinates into two contiguous halves (floor(dim/2) first,
 * ceil after); even layers keep the first half fixed and move the second,
 * odd layers the other way round.  With x_f the fixed half and x_m the moved:
 *
 *     (raw, shift) = MLP_k(x_f)               2 * |x_m| outputs
 *     s = B * tanh(raw / B)                    B = FLOW_SCALE_BOUND
 *     y_m = x_m * exp(s) + shift,   y_f = x_f, log|det| += sum(s)
 *
 * The soft bound keeps one layer from scaling by more than e^B, which keeps
 * early ELBO steps from blowing up; its slope at 0 is 1, so near the identity
 * the layer is the plain Real NVP one.  Each MLP (stdlib/nn.h) has two hidden
 * relu layers of `hidden` units (relu nets extrapolate linearly where tanh
 * nets go flat, which matters for a target's tails: on the banana of
 * tests/inference/test_vi_flow_fit.c relu gave an ELBO of -0.01 where tanh
 * stalled at -0.03, with lower k-hat); its last layer starts at zero (last_scale 0)
 * so every coupling starts as the identity and the whole flow starts as the
 * base affine, itself the identity (mu = 0, omega = 0).
 *
 * A 1-D flow has nothing to condition on: a coupling's MLP would see no
 * input and reduce to a constant affine map, which the base layer already is.
 * For dim 1 the flow is therefore the base affine alone (mean-field's
 * family); `layers` is recorded but no coupling layer is built.
 *
 * Forward and backward both record the map on the family's tape: phi as
 * constants for forward (no nodes, plain BLAS), as one tensor_var for
 * backward, whose output adjoints are seeded with gtheta and wlogdet and swept
 * once.  The networks run through the tensor layer (one block node per dense
 * layer); the coupling arithmetic is scalar nodes, a handful per coordinate.
 *
 * phi's layout, as the family's named tensors (safetensors order):
 *   mu [dim], omega [dim], then for k = 0..layers-1 and each dense layer l of
 *   MLP k: "coupling<k>.W<l>" [in, out] (row-major) and "coupling<k>.b<l>"
 *   [out] — exactly nn.h's flat layout of MLP k's weights.
 * The first |x_m| outputs of MLP k are raw scales, the next |x_m| shifts.
 */
#include "vi_flow.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/value.h"
#include "../stdlib/ad.h"
#include "../stdlib/nn.h"
#include "../stdlib/tensor.h"

#define FLOW_SCALE_BOUND 3.0

typedef struct {
  int fixed0, nfixed; /* conditioning coordinates [fixed0, fixed0 + nfixed) */
  int moved0, nmoved; /* transformed coordinates */
  NnMlp mlp;          /* nfixed -> hidden -> hidden -> 2 * nmoved */
  size_t off;         /* offset of the MLP's weights in phi */
} FlowLayer;

typedef struct {
  int nlayers;        /* coupling layers built (0 for dim 1) */
  FlowLayer *layer;
  Tape *tape;         /* reused by every call: steady state allocates nothing */
  double *adj;        /* adjoints for backward, grown with the tape */
  size_t adjcap;
  AdNum *x, *s, *shift; /* dim each: the running point, one layer's scales and shifts */
  double *vals;       /* dim: a half's values and */
  int32_t *ids;       /*      nodes, for tensor_gather */
} Flow;

static Flow *flow_of(ViFamily *f) { return f->impl; }

/* phi's elements [off, off + n) as a rank-1 tensor, with their nodes if phi has them. */
static Tensor phi_slice(Tensor phi, size_t off, size_t n) {
  Tensor w = phi;
  w.rank = 1;
  w.shape[0] = (int)n;
  w.d = phi.d + off;
  w.node = phi.node ? phi.node + (int32_t)off : 0;
  return w;
}

/* The moved half's scales s and shifts of layer L at the point x (raw MLP
 * outputs through the soft bound); s[j] and shift[j] for j < nmoved. */
static void coupling_params(Flow *fl, const FlowLayer *L, Tensor phi, const AdNum *x, AdNum *s,
                            AdNum *shift) {
  Tape *t = fl->tape;
  for (int j = 0; j < L->nfixed; j++) {
    fl->vals[j] = x[L->fixed0 + j].v;
    fl->ids[j] = x[L->fixed0 + j].n;
  }
  int shape = L->nfixed;
  Tensor in = tensor_gather(t, 1, &shape, fl->vals, fl->ids);
  Tensor out = nn_mlp_forward(t, &L->mlp, phi_slice(phi, L->off, L->mlp.nparams), in);
  for (int j = 0; j < L->nmoved; j++) {
    AdNum raw = tensor_at(out, (size_t)j);
    s[j] = ad_scale(t, ad_tanh(t, ad_scale(t, raw, 1 / FLOW_SCALE_BOUND)), FLOW_SCALE_BOUND);
    shift[j] = tensor_at(out, (size_t)(L->nmoved + j));
  }
}

/* Record T(eps) on the tape with phi's tensor (constant or variable): the
 * point in fl->x, the log-determinant returned. */
static AdNum flow_record(ViFamily *f, Tensor phi, const double *eps) {
  Flow *fl = flow_of(f);
  Tape *t = fl->tape;
  size_t d = f->dim;
  AdNum *x = fl->x;
  for (size_t i = 0; i < d; i++) {
    AdNum omega = tensor_at(phi, d + i);
    x[i] = ad_add(t, tensor_at(phi, i), ad_scale(t, ad_exp(t, omega), eps[i]));
    fl->s[i] = omega;
  }
  AdNum logdet = ad_sum(t, (int)d, fl->s);
  AdNum *shift = fl->shift;
  for (int k = 0; k < fl->nlayers; k++) {
    const FlowLayer *L = &fl->layer[k];
    coupling_params(fl, L, phi, x, fl->s, shift);
    for (int j = 0; j < L->nmoved; j++) {
      AdNum *xm = &x[L->moved0 + j];
      *xm = ad_add(t, ad_mul(t, *xm, ad_exp(t, fl->s[j])), shift[j]);
    }
    logdet = ad_add(t, logdet, ad_sum(t, L->nmoved, fl->s));
  }
  return logdet;
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
  Tape *t = fl->tape;
  size_t d = f->dim;
  tape_reset(t);
  Tensor phi = phi_const(f);
  AdNum *x = fl->x;
  for (size_t i = 0; i < d; i++) x[i] = ad_const(theta[i]);
  double ld = 0;
  AdNum *shift = fl->shift;
  /* A coupling's fixed half passes through unchanged, so its MLP sees the
     same input going back as it saw going forward. */
  for (int k = fl->nlayers - 1; k >= 0; k--) {
    const FlowLayer *L = &fl->layer[k];
    coupling_params(fl, L, phi, x, fl->s, shift);
    for (int j = 0; j < L->nmoved; j++) {
      AdNum *xm = &x[L->moved0 + j];
      xm->v = (xm->v - shift[j].v) * exp(-fl->s[j].v);
      ld += fl->s[j].v;
    }
  }
  for (size_t i = 0; i < d; i++) {
    double omega = f->phi[d + i];
    eps[i] = (x[i].v - f->phi[i]) * exp(-omega);
    ld += omega;
  }
  *logdet = ld;
}

ViFamily *vi_flow_new(size_t dim, int layers, int hidden, Rng *r) {
  if (dim < 1 || layers < 0 || hidden < 1 || dim > (size_t)1 << 20) return NULL;
  ViFamily *f = gc_alloc(sizeof *f);
  Flow *fl = gc_alloc(sizeof *fl);
  int d = (int)dim, half = d / 2;
  fl->nlayers = d > 1 ? layers : 0;
  fl->layer = gc_alloc(sizeof(FlowLayer) * (size_t)(fl->nlayers > 0 ? fl->nlayers : 1));
  size_t nparams = 2 * dim;
  int hid[2] = {hidden, hidden};
  for (int k = 0; k < fl->nlayers; k++) {
    FlowLayer *L = &fl->layer[k];
    if (k % 2 == 0)
      *L = (FlowLayer){.fixed0 = 0, .nfixed = half, .moved0 = half, .nmoved = d - half};
    else
      *L = (FlowLayer){.fixed0 = half, .nfixed = d - half, .moved0 = 0, .nmoved = half};
    char err[128];
    if (!nn_mlp_make(&L->mlp, L->nfixed, 2, hid, 2 * L->nmoved, TENSOR_RELU, TENSOR_IDENTITY, err,
                     sizeof err))
      return NULL;
    L->off = nparams;
    nparams += L->mlp.nparams;
  }
  f->name = "flow";
  f->dim = dim;
  f->nparams = nparams;
  f->phi = gc_alloc_atomic(sizeof(double) * nparams); /* mu = omega = 0 */
  for (int k = 0; k < fl->nlayers; k++)
    nn_mlp_init(&fl->layer[k].mlp, r, 0.0, f->phi + fl->layer[k].off);
  f->forward = flow_forward;
  f->backward = flow_backward;

  /* Named tensors: mu, omega, then W and b of every dense layer. */
  int nt = 2;
  for (int k = 0; k < fl->nlayers; k++) nt += 2 * fl->layer[k].mlp.nlayers;
  const char **names = gc_alloc(sizeof(char *) * (size_t)nt);
  int *ranks = gc_alloc_atomic(sizeof(int) * (size_t)nt);
  int(*shapes)[4] = gc_alloc_atomic(sizeof(int[4]) * (size_t)nt);
  names[0] = "mu";
  names[1] = "omega";
  ranks[0] = ranks[1] = 1;
  shapes[0][0] = shapes[1][0] = d;
  int i = 2;
  for (int k = 0; k < fl->nlayers; k++) {
    const NnMlp *m = &fl->layer[k].mlp;
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
  fl->s = gc_alloc_atomic(sizeof(AdNum) * dim);
  fl->shift = gc_alloc_atomic(sizeof(AdNum) * dim);
  fl->vals = gc_alloc_atomic(sizeof(double) * dim);
  fl->ids = gc_alloc_atomic(sizeof(int32_t) * dim);
  f->impl = fl;
  return f;
}
