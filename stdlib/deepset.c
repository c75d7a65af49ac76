/* deepset.c — the deep-set summary network (see deepset.h).  Pooling is one
 * batched product per group: [B, 1, n] of 1/n times the elements' features
 * [B, n, hidden], so it is a block node like the networks' layers. */
#include "deepset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ds_make(DeepSet *s, int ngroups, const int *n, const int *width, int rest, int hidden,
             int out, bool quadratic, char *err, size_t errsz) {
  memset(s, 0, sizeof *s);
  if (ngroups < 0 || ngroups > DS_MAXGROUPS) {
    snprintf(err, errsz, "a summary network takes 0 to %d groups of exchangeable elements, not %d",
             DS_MAXGROUPS, ngroups);
    return false;
  }
  if (rest < 0 || (ngroups == 0 && rest == 0)) {
    snprintf(err, errsz, "a summary network needs some data to summarise");
    return false;
  }
  s->ngroups = ngroups, s->rest = rest, s->hidden = hidden, s->out = out;
  s->quadratic = quadratic;
  s->in = (size_t)rest;
  int hid[1] = {hidden};
  for (int g = 0; g < ngroups; g++) {
    if (n[g] < 1 || width[g] < 1) {
      snprintf(err, errsz, "a group of a summary network needs elements of at least one real");
      return false;
    }
    s->n[g] = n[g], s->width[g] = width[g];
    s->feat[g] = width[g] + (quadratic ? width[g] * (width[g] + 1) / 2 : 0);
    s->in += (size_t)n[g] * (size_t)width[g];
    if (!nn_mlp_make(&s->phi[g], s->feat[g], 1, hid, hidden, TENSOR_RELU, TENSOR_RELU, err, errsz))
      return false;
    s->phi_off[g] = s->nparams;
    s->nparams += s->phi[g].nparams;
  }
  if (!nn_mlp_make(&s->rho, ngroups * hidden + rest, 1, hid, out, TENSOR_RELU, TENSOR_IDENTITY,
                   err, errsz))
    return false;
  s->rho_off = s->nparams;
  s->nparams += s->rho.nparams;
  return true;
}

void ds_init(const DeepSet *s, Rng *r, double *w) {
  for (int g = 0; g < s->ngroups; g++) nn_mlp_init(&s->phi[g], r, 1.0, w + s->phi_off[g]);
  nn_mlp_init(&s->rho, r, 1.0, w + s->rho_off);
}

/* f += the features of el divided by n (ds_features: f zeroed, n = 1). */
static void ds_features_add(const DeepSet *s, int g, const double *el, double n, double *f) {
  int wd = s->width[g];
  for (int j = 0; j < wd; j++) f[j] += el[j] / n;
  for (int j = 0, k = wd; s->quadratic && j < wd; j++)
    for (int l = j; l < wd; l++) f[k++] += el[j] * el[l] / n;
}

void ds_features(const DeepSet *s, int g, const double *el, double *f) {
  memset(f, 0, sizeof(double) * (size_t)s->feat[g]);
  ds_features_add(s, g, el, 1.0, f);
}

int ds_pooled_size(const DeepSet *s) {
  int n = s->rest;
  for (int g = 0; g < s->ngroups; g++) n += s->feat[g];
  return n;
}

void ds_pooled(const DeepSet *s, const double *row, double *out) {
  for (int g = 0; g < s->ngroups; g++) {
    int nf = s->feat[g];
    memset(out, 0, sizeof(double) * (size_t)nf);
    for (int i = 0; i < s->n[g]; i++)
      ds_features_add(s, g, row + (size_t)i * s->width[g], s->n[g], out);
    row += (size_t)s->n[g] * s->width[g];
    out += nf;
  }
  memcpy(out, row, sizeof(double) * (size_t)s->rest);
}

Tensor ds_forward(Tape *t, const DeepSet *s, Tensor w, int B, const double *rows) {
  int rin = s->ngroups * s->hidden + s->rest;
  size_t nr = (size_t)B * (size_t)rin;
  double *vals = tape_alloc_atomic(t, sizeof(double) * nr);
  int32_t *ids = tape_alloc_atomic(t, sizeof(int32_t) * nr);
  size_t col = 0; /* where group g starts in a row */
  for (int g = 0; g < s->ngroups; g++) {
    int n = s->n[g], wd = s->width[g], nf = s->feat[g], h = s->hidden;
    size_t ne = (size_t)n * (size_t)wd;
    double *x = tape_alloc_atomic(t, sizeof(double) * (size_t)B * (size_t)n * (size_t)nf);
    for (int b = 0; b < B; b++)
      for (int i = 0; i < n; i++)
        ds_features(s, g, rows + (size_t)b * s->in + col + (size_t)i * wd, x + ((size_t)b * n + i) * nf);
    col += ne;
    Tensor e = tensor_const(2, (int[]){B * n, nf}, x);
    Tensor feat = nn_mlp_forward(t, &s->phi[g], tensor_slice(w, s->phi_off[g], s->phi[g].nparams), e);
    feat = tensor_reshape(t, feat, 3, (int[]){B, n, h});
    double *avg = tape_alloc_atomic(t, sizeof(double) * (size_t)B * (size_t)n);
    for (size_t i = 0; i < (size_t)B * (size_t)n; i++) avg[i] = 1.0 / n;
    Tensor pool = tensor_matmul(t, tensor_const(3, (int[]){B, 1, n}, avg), feat); /* [B, 1, h] */
    if (!tensor_ok(pool)) return pool;
    for (int b = 0; b < B; b++)
      for (int k = 0; k < h; k++) {
        size_t src = (size_t)b * h + k, dst = (size_t)b * rin + (size_t)g * h + k;
        vals[dst] = pool.d[src];
        ids[dst] = pool.node ? pool.node + (int32_t)src : 0;
      }
  }
  for (int b = 0; b < B; b++)
    for (int k = 0; k < s->rest; k++) {
      size_t dst = (size_t)b * rin + (size_t)s->ngroups * s->hidden + k;
      vals[dst] = rows[(size_t)b * s->in + col + k];
      ids[dst] = 0;
    }
  Tensor in = tensor_gather(t, 2, (int[]){B, rin}, vals, ids);
  return nn_mlp_forward(t, &s->rho, tensor_slice(w, s->rho_off, s->rho.nparams), in);
}

/* ---- off the tape ---- */

size_t ds_work(const DeepSet *s, int B) {
  size_t grp = 0, rin = (size_t)(s->ngroups * s->hidden + s->rest);
  for (int g = 0; g < s->ngroups; g++) {
    size_t ne = (size_t)B * (size_t)s->n[g];
    /* the features, phi's output and workspace, the pooling weights */
    size_t need = ne * (size_t)s->feat[g] + ne * (size_t)s->hidden +
                  nn_mlp_work(&s->phi[g], (int)ne) + (size_t)s->n[g];
    grp = need > grp ? need : grp;
  }
  return (size_t)B * rin + (grp > nn_mlp_work(&s->rho, B) ? grp : nn_mlp_work(&s->rho, B));
}

void ds_eval(const DeepSet *s, const double *w, int B, const double *rows, double *out,
             double *work) {
  int rin = s->ngroups * s->hidden + s->rest, h = s->hidden;
  double *in = work, *scratch = work + (size_t)B * rin;
  size_t col = 0;
  for (int g = 0; g < s->ngroups; g++) {
    int n = s->n[g], wd = s->width[g], nf = s->feat[g];
    size_t ne = (size_t)B * (size_t)n;
    double *x = scratch, *feat = x + ne * nf, *avg = feat + ne * h, *mw = avg + n;
    for (int b = 0; b < B; b++)
      for (int i = 0; i < n; i++)
        ds_features(s, g, rows + (size_t)b * s->in + col + (size_t)i * wd, x + ((size_t)b * n + i) * nf);
    col += (size_t)n * (size_t)wd;
    nn_mlp_eval(&s->phi[g], w + s->phi_off[g], (int)ne, x, feat, mw);
    for (int i = 0; i < n; i++) avg[i] = 1.0 / n;
    for (int b = 0; b < B; b++) /* ds_forward's [1, n] x [n, h] per row */
      tensor_matmul_values(1, n, h, avg, feat + (size_t)b * n * h, in + (size_t)b * rin + (size_t)g * h);
  }
  for (int b = 0; b < B; b++)
    memcpy(in + (size_t)b * rin + (size_t)s->ngroups * h, rows + (size_t)b * s->in + col,
           sizeof(double) * (size_t)s->rest);
  nn_mlp_eval(&s->rho, w + s->rho_off, B, in, out, scratch);
}
