/* realnvp.c — the Real NVP flow's layout and its two directions on the tape
 * (see realnvp.h).  The inverse reuses the forward's coupling networks: a
 * coupling's fixed half passes through unchanged, so its MLP sees the same
 * input going back as it saw going forward.
 */
#include "realnvp.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool rnvp_make(Rnvp *f, int dim, int layers, int hidden, char *err, size_t errsz) {
  if (dim < 1 || dim > RNVP_MAXDIM) {
    snprintf(err, errsz, "a flow's dimension must be in [1, %d], got %d", RNVP_MAXDIM, dim);
    return false;
  }
  if (layers < 0 || layers > RNVP_MAXLAYERS) {
    snprintf(err, errsz, "a flow has 0 to %d coupling layers, got %d", RNVP_MAXLAYERS, layers);
    return false;
  }
  if (hidden < 1) {
    snprintf(err, errsz, "a flow's coupling networks need at least 1 hidden unit, got %d", hidden);
    return false;
  }
  f->dim = dim, f->layers = layers, f->hidden = hidden;
  f->ncoupling = dim > 1 ? layers : 0;
  f->nparams = 2 * (size_t)dim;
  int half = dim / 2, hid[2] = {hidden, hidden};
  for (int k = 0; k < f->ncoupling; k++) {
    RnvpLayer *L = &f->layer[k];
    if (k % 2 == 0)
      *L = (RnvpLayer){.fixed0 = 0, .nfixed = half, .moved0 = half, .nmoved = dim - half};
    else
      *L = (RnvpLayer){.fixed0 = half, .nfixed = dim - half, .moved0 = 0, .nmoved = half};
    if (!nn_mlp_make(&L->mlp, L->nfixed, 2, hid, 2 * L->nmoved, TENSOR_RELU, TENSOR_IDENTITY, err,
                     errsz))
      return false;
    if (L->mlp.nparams > (size_t)INT32_MAX - f->nparams) { /* tape ids are int32 */
      snprintf(err, errsz, "a flow with these sizes has more than %d weights", INT32_MAX);
      return false;
    }
    L->off = f->nparams;
    f->nparams += L->mlp.nparams;
  }
  return true;
}

void rnvp_init(const Rnvp *f, Rng *r, double *w) {
  memset(w, 0, sizeof(double) * 2 * (size_t)f->dim);
  for (int k = 0; k < f->ncoupling; k++) nn_mlp_init(&f->layer[k].mlp, r, 0.0, w + f->layer[k].off);
}

/* w's elements [off, off + n) as a rank-1 tensor, with their nodes if w has them. */
static Tensor w_slice(Tensor w, size_t off, size_t n) {
  Tensor s = w;
  s.rank = 1;
  s.shape[0] = (int)n;
  s.d = w.d + off;
  s.node = w.node ? w.node + (int32_t)off : 0;
  return s;
}

/* The moved half's scales s and shifts of layer L at the point x (raw MLP
 * outputs through the soft bound); s[j] and shift[j] for j < nmoved. */
static void coupling(Tape *t, const RnvpLayer *L, Tensor w, const AdNum *x, AdNum *s,
                     AdNum *shift) {
  double *vals = tape_alloc_atomic(t, sizeof(double) * (size_t)L->nfixed);
  int32_t *ids = tape_alloc_atomic(t, sizeof(int32_t) * (size_t)L->nfixed);
  for (int j = 0; j < L->nfixed; j++) {
    vals[j] = x[L->fixed0 + j].v;
    ids[j] = x[L->fixed0 + j].n;
  }
  int shape = L->nfixed;
  Tensor in = tensor_gather(t, 1, &shape, vals, ids);
  Tensor out = nn_mlp_forward(t, &L->mlp, w_slice(w, L->off, L->mlp.nparams), in);
  for (int j = 0; j < L->nmoved; j++) {
    AdNum raw = tensor_at(out, (size_t)j);
    s[j] = ad_scale(t, ad_tanh(t, ad_scale(t, raw, 1 / RNVP_SCALE_BOUND)), RNVP_SCALE_BOUND);
    shift[j] = tensor_at(out, (size_t)(L->nmoved + j));
  }
}

AdNum rnvp_forward(Tape *t, const Rnvp *f, Tensor w, const AdNum *eps, AdNum *x) {
  size_t d = (size_t)f->dim;
  AdNum *s = tape_alloc_atomic(t, sizeof(AdNum) * d), *shift = tape_alloc_atomic(t, sizeof(AdNum) * d);
  for (size_t i = 0; i < d; i++) {
    AdNum omega = tensor_at(w, d + i);
    x[i] = ad_add(t, tensor_at(w, i), ad_mul(t, ad_exp(t, omega), eps[i]));
    s[i] = omega;
  }
  AdNum logdet = ad_sum(t, (int)d, s);
  for (int k = 0; k < f->ncoupling; k++) {
    const RnvpLayer *L = &f->layer[k];
    coupling(t, L, w, x, s, shift);
    for (int j = 0; j < L->nmoved; j++) {
      AdNum *xm = &x[L->moved0 + j];
      *xm = ad_add(t, ad_mul(t, *xm, ad_exp(t, s[j])), shift[j]);
    }
    logdet = ad_add(t, logdet, ad_sum(t, L->nmoved, s));
  }
  return logdet;
}

AdNum rnvp_inverse(Tape *t, const Rnvp *f, Tensor w, const AdNum *x, AdNum *eps) {
  size_t d = (size_t)f->dim;
  AdNum *s = tape_alloc_atomic(t, sizeof(AdNum) * d), *shift = tape_alloc_atomic(t, sizeof(AdNum) * d);
  memcpy(eps, x, sizeof(AdNum) * d); /* the point walks back through the layers in eps */
  AdNum logdet = ad_const(0);
  for (int k = f->ncoupling - 1; k >= 0; k--) {
    const RnvpLayer *L = &f->layer[k];
    coupling(t, L, w, eps, s, shift);
    for (int j = 0; j < L->nmoved; j++) {
      AdNum *xm = &eps[L->moved0 + j];
      *xm = ad_mul(t, ad_sub(t, *xm, shift[j]), ad_exp(t, ad_scale(t, s[j], -1)));
    }
    logdet = ad_add(t, logdet, ad_sum(t, L->nmoved, s));
  }
  for (size_t i = 0; i < d; i++) {
    AdNum omega = tensor_at(w, d + i);
    eps[i] = ad_mul(t, ad_sub(t, eps[i], tensor_at(w, i)), ad_exp(t, ad_scale(t, omega, -1)));
    s[i] = omega;
  }
  return ad_add(t, logdet, ad_sum(t, (int)d, s));
}
