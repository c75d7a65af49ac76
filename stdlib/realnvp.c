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
  return rnvp_make_cond(f, dim, 0, layers, hidden, err, errsz);
}

/* Room for n more weights in f (tape ids are int32). */
static bool rnvp_fits(const Rnvp *f, size_t n, char *err, size_t errsz) {
  if (n <= (size_t)INT32_MAX - f->nparams) return true;
  snprintf(err, errsz, "a flow with these sizes has more than %d weights", INT32_MAX);
  return false;
}

bool rnvp_make_cond(Rnvp *f, int dim, int ctx, int layers, int hidden, char *err, size_t errsz) {
  if (dim < 1 || dim > RNVP_MAXDIM) {
    snprintf(err, errsz, "a flow's dimension must be in [1, %d], got %d", RNVP_MAXDIM, dim);
    return false;
  }
  if (ctx < 0 || ctx > RNVP_MAXDIM) {
    snprintf(err, errsz, "a flow's context must have 0 to %d reals, got %d", RNVP_MAXDIM, ctx);
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
  f->dim = dim, f->layers = layers, f->hidden = hidden, f->ctx = ctx;
  f->ncoupling = dim > 1 ? layers : 0;
  f->nparams = 2 * (size_t)dim;
  f->base_off = f->nparams;
  if (ctx > 0) {
    if (!nn_mlp_make(&f->base, ctx, 0, NULL, 2 * dim, TENSOR_IDENTITY, TENSOR_IDENTITY, err,
                     errsz) ||
        !rnvp_fits(f, f->base.nparams, err, errsz))
      return false;
    f->nparams += f->base.nparams;
  }
  int half = dim / 2, hid[2] = {hidden, hidden};
  for (int k = 0; k < f->ncoupling; k++) {
    RnvpLayer *L = &f->layer[k];
    if (k % 2 == 0)
      *L = (RnvpLayer){.fixed0 = 0, .nfixed = half, .moved0 = half, .nmoved = dim - half};
    else
      *L = (RnvpLayer){.fixed0 = half, .nfixed = dim - half, .moved0 = 0, .nmoved = half};
    if (!nn_mlp_make(&L->mlp, L->nfixed + ctx, 2, hid, 2 * L->nmoved, TENSOR_RELU,
                     TENSOR_IDENTITY, err, errsz) ||
        !rnvp_fits(f, L->mlp.nparams, err, errsz))
      return false;
    L->off = f->nparams;
    f->nparams += L->mlp.nparams;
  }
  return true;
}

void rnvp_init(const Rnvp *f, Rng *r, double *w) {
  memset(w, 0, sizeof(double) * 2 * (size_t)f->dim);
  if (f->ctx > 0) memset(w + f->base_off, 0, sizeof(double) * f->base.nparams);
  for (int k = 0; k < f->ncoupling; k++) nn_mlp_init(&f->layer[k].mlp, r, 0.0, w + f->layer[k].off);
}

/* The moved halves' scales s and shifts of layer L at the B points x (raw
 * MLP outputs through the soft bound), each reading its row of the context:
 * s[b * nmoved + j] and shift[b * nmoved + j]. */
static void coupling(Tape *t, const RnvpLayer *L, Tensor w, int B, int ctx, Tensor c,
                     const AdNum *x, int dim, AdNum *s, AdNum *shift) {
  int in = L->nfixed + ctx;
  size_t n = (size_t)B * (size_t)in;
  double *vals = tape_alloc_atomic(t, sizeof(double) * n);
  int32_t *ids = tape_alloc_atomic(t, sizeof(int32_t) * n);
  for (int b = 0; b < B; b++) {
    double *v = vals + (size_t)b * in;
    int32_t *id = ids + (size_t)b * in;
    const AdNum *xb = x + (size_t)b * dim;
    for (int j = 0; j < L->nfixed; j++) {
      v[j] = xb[L->fixed0 + j].v;
      id[j] = xb[L->fixed0 + j].n;
    }
    for (int j = 0; j < ctx; j++) {
      size_t e = (size_t)b * ctx + j;
      v[L->nfixed + j] = c.d[e];
      id[L->nfixed + j] = c.node ? c.node + (int32_t)e : 0;
    }
  }
  /* one point keeps the rank-1 form, whose products are the unbatched ones */
  int shape[2] = {B, in};
  Tensor inp = B == 1 ? tensor_gather(t, 1, &in, vals, ids) : tensor_gather(t, 2, shape, vals, ids);
  Tensor out = nn_mlp_forward(t, &L->mlp, tensor_slice(w, L->off, L->mlp.nparams), inp);
  if (!tensor_ok(out)) { /* tape_fail said why; the values are garbage, not a crash */
    for (size_t e = 0; e < (size_t)B * L->nmoved; e++) s[e] = shift[e] = ad_const(NAN);
    return;
  }
  for (int b = 0; b < B; b++)
    for (int j = 0; j < L->nmoved; j++) {
      size_t o = (size_t)b * 2 * L->nmoved;
      AdNum raw = tensor_at(out, o + (size_t)j);
      s[b * L->nmoved + j] =
          ad_scale(t, ad_tanh(t, ad_scale(t, raw, 1 / RNVP_SCALE_BOUND)), RNVP_SCALE_BOUND);
      shift[b * L->nmoved + j] = tensor_at(out, o + (size_t)(L->nmoved + j));
    }
}

/* The base affine's mu and omega for each point: w's own, plus the linear
 * layer's output at the point's context for a conditional flow. */
static void base_affine(Tape *t, const Rnvp *f, Tensor w, int B, Tensor c, AdNum *mu,
                        AdNum *omega) {
  size_t d = (size_t)f->dim;
  Tensor bo = {.rank = -1};
  if (f->ctx > 0) bo = nn_mlp_forward(t, &f->base, tensor_slice(w, f->base_off, f->base.nparams), c);
  for (int b = 0; b < B; b++)
    for (size_t i = 0; i < d; i++) {
      AdNum m = tensor_at(w, i), o = tensor_at(w, d + i);
      if (f->ctx > 0) {
        AdNum dm = tensor_ok(bo) ? tensor_at(bo, b * 2 * d + i) : ad_const(NAN);
        AdNum dom = tensor_ok(bo) ? tensor_at(bo, b * 2 * d + d + i) : ad_const(NAN);
        m = ad_add(t, m, dm), o = ad_add(t, o, dom);
      }
      mu[b * d + i] = m, omega[b * d + i] = o;
    }
}

void rnvp_forward_batch(Tape *t, const Rnvp *f, Tensor w, int B, Tensor c, const AdNum *eps,
                        AdNum *x, AdNum *logdet) {
  size_t d = (size_t)f->dim, n = (size_t)B * d;
  AdNum *s = tape_alloc_atomic(t, sizeof(AdNum) * n), *shift = tape_alloc_atomic(t, sizeof(AdNum) * n);
  AdNum *mu = tape_alloc_atomic(t, sizeof(AdNum) * n), *omega = tape_alloc_atomic(t, sizeof(AdNum) * n);
  base_affine(t, f, w, B, c, mu, omega);
  for (size_t e = 0; e < n; e++) x[e] = ad_add(t, mu[e], ad_mul(t, ad_exp(t, omega[e]), eps[e]));
  for (int b = 0; b < B; b++) logdet[b] = ad_sum(t, (int)d, omega + b * d);
  for (int k = 0; k < f->ncoupling; k++) {
    const RnvpLayer *L = &f->layer[k];
    coupling(t, L, w, B, f->ctx, c, x, f->dim, s, shift);
    for (int b = 0; b < B; b++) {
      const AdNum *sb = s + (size_t)b * L->nmoved, *hb = shift + (size_t)b * L->nmoved;
      for (int j = 0; j < L->nmoved; j++) {
        AdNum *xm = &x[b * d + (size_t)(L->moved0 + j)];
        *xm = ad_add(t, ad_mul(t, *xm, ad_exp(t, sb[j])), hb[j]);
      }
      logdet[b] = ad_add(t, logdet[b], ad_sum(t, L->nmoved, sb));
    }
  }
}

void rnvp_inverse_batch(Tape *t, const Rnvp *f, Tensor w, int B, Tensor c, const AdNum *x,
                        AdNum *eps, AdNum *logdet) {
  size_t d = (size_t)f->dim, n = (size_t)B * d;
  AdNum *s = tape_alloc_atomic(t, sizeof(AdNum) * n), *shift = tape_alloc_atomic(t, sizeof(AdNum) * n);
  memcpy(eps, x, sizeof(AdNum) * n); /* the points walk back through the layers in eps */
  for (int b = 0; b < B; b++) logdet[b] = ad_const(0);
  for (int k = f->ncoupling - 1; k >= 0; k--) {
    const RnvpLayer *L = &f->layer[k];
    coupling(t, L, w, B, f->ctx, c, eps, f->dim, s, shift);
    for (int b = 0; b < B; b++) {
      const AdNum *sb = s + (size_t)b * L->nmoved, *hb = shift + (size_t)b * L->nmoved;
      for (int j = 0; j < L->nmoved; j++) {
        AdNum *xm = &eps[b * d + (size_t)(L->moved0 + j)];
        *xm = ad_mul(t, ad_sub(t, *xm, hb[j]), ad_exp(t, ad_scale(t, sb[j], -1)));
      }
      logdet[b] = ad_add(t, logdet[b], ad_sum(t, L->nmoved, sb));
    }
  }
  AdNum *mu = tape_alloc_atomic(t, sizeof(AdNum) * n), *omega = tape_alloc_atomic(t, sizeof(AdNum) * n);
  base_affine(t, f, w, B, c, mu, omega);
  for (size_t e = 0; e < n; e++)
    eps[e] = ad_mul(t, ad_sub(t, eps[e], mu[e]), ad_exp(t, ad_scale(t, omega[e], -1)));
  for (int b = 0; b < B; b++)
    logdet[b] = ad_add(t, logdet[b], ad_sum(t, (int)d, omega + b * d));
}

/* ---- off the tape ---- */

/* The widest coupling input and MLP workspace of f's networks. */
static void rnvp_widths(const Rnvp *f, int B, size_t *in, size_t *mlp) {
  *in = 0, *mlp = f->ctx > 0 ? nn_mlp_work(&f->base, B) : 0;
  for (int k = 0; k < f->ncoupling; k++) {
    const RnvpLayer *L = &f->layer[k];
    size_t n = (size_t)B * (size_t)(L->nfixed + f->ctx), m = nn_mlp_work(&L->mlp, B);
    *in = n > *in ? n : *in;
    *mlp = m > *mlp ? m : *mlp;
  }
}

size_t rnvp_work(const Rnvp *f, int B) {
  size_t in, mlp;
  rnvp_widths(f, B, &in, &mlp);
  /* the coupling's input and output (or the base's output), the networks' */
  return in + 2 * (size_t)B * (size_t)f->dim + mlp;
}

void rnvp_forward_values(const Rnvp *f, const double *w, int B, const double *c,
                         const double *eps, double *x, double *logdet, double *work) {
  size_t d = (size_t)f->dim, nin, nmlp;
  int ctx = f->ctx;
  rnvp_widths(f, B, &nin, &nmlp);
  double *inp = work, *out = work + nin, *mw = out + 2 * (size_t)B * d;
  /* the base affine (base_affine, then x = mu + exp(omega) eps) */
  if (ctx > 0) nn_mlp_eval(&f->base, w + f->base_off, B, c, out, mw);
  for (int b = 0; b < B; b++) {
    double ld = 0;
    for (size_t i = 0; i < d; i++) {
      double mu = w[i], om = w[d + i];
      if (ctx > 0) mu = mu + out[b * 2 * d + i], om = om + out[b * 2 * d + d + i];
      x[b * d + i] = mu + exp(om) * eps[b * d + i];
      ld += om;
    }
    logdet[b] = ld;
  }
  /* the couplings (coupling(), then y_m = x_m exp(s) + shift) */
  for (int k = 0; k < f->ncoupling; k++) {
    const RnvpLayer *L = &f->layer[k];
    int in = L->nfixed + ctx, nm = L->nmoved;
    for (int b = 0; b < B; b++) {
      double *v = inp + (size_t)b * in;
      memcpy(v, x + b * d + (size_t)L->fixed0, sizeof(double) * (size_t)L->nfixed);
      if (ctx > 0) memcpy(v + L->nfixed, c + (size_t)b * ctx, sizeof(double) * (size_t)ctx);
    }
    nn_mlp_eval(&L->mlp, w + L->off, B, inp, out, mw);
    for (int b = 0; b < B; b++) {
      const double *o = out + (size_t)b * 2 * nm;
      double ls = 0;
      for (int j = 0; j < nm; j++) {
        double s = RNVP_SCALE_BOUND * tanh(o[j] * (1 / RNVP_SCALE_BOUND));
        double *xm = &x[b * d + (size_t)(L->moved0 + j)];
        *xm = *xm * exp(s) + o[nm + j];
        ls += s;
      }
      logdet[b] = logdet[b] + ls;
    }
  }
}

AdNum rnvp_forward(Tape *t, const Rnvp *f, Tensor w, const AdNum *eps, AdNum *x) {
  AdNum logdet;
  rnvp_forward_batch(t, f, w, 1, (Tensor){.rank = -1}, eps, x, &logdet);
  return logdet;
}

AdNum rnvp_inverse(Tape *t, const Rnvp *f, Tensor w, const AdNum *x, AdNum *eps) {
  AdNum logdet;
  rnvp_inverse_batch(t, f, w, 1, (Tensor){.rank = -1}, x, eps, &logdet);
  return logdet;
}
