/* net.c — network values in the interpreter (see net.h).
 *
 * The weights Value is the flat vector nn.h lays out; its nodes (when an
 * engine differentiates) are usually one consecutive run, taken as the
 * tensor's own ids (scattered ones go through one gather block).  Inputs are
 * copied into the tape's arena in row-major order: the backward rule of the
 * first product reads them after the program may have written into the
 * variable they came from.
 */
#include "net.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

bool net_layout(const int64_t *sizes, int n, int acts, NnMlp *m, char *err, size_t errsz) {
  int sz[NN_MAXLAYERS + 1];
  if (n < 2 || n > NN_MAXLAYERS + 1) {
    snprintf(err, errsz, "an mlp has at most %d hidden layers", NN_MAXLAYERS - 1);
    return false;
  }
  for (int i = 0; i < n; i++)
    sz[i] = sizes[i] < INT_MIN ? INT_MIN : sizes[i] > INT_MAX ? INT_MAX : (int)sizes[i];
  return nn_mlp_make(m, sz[0], n - 2, sz + 1, sz[n - 1], (NnAct)(acts & 0xff), (NnAct)(acts >> 8),
                     err, errsz);
}

/* The initial weights' stream: FNV-1a 64 of the param's name, stream 0. */
static void net_name_rng(Rng *r, const char *name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char *c = (const unsigned char *)name; *c; c++) h = (h ^ *c) * 0x100000001b3ull;
  rng_seed(r, h, 0);
}

Value net_initial(const NnMlp *m, const char *name) {
  Rng r;
  net_name_rng(&r, name);
  Value v = val_vec((int)m->nparams);
  nn_mlp_init(m, &r, 1, v.t->d);
  return v;
}

bool net_flow_layout(const int64_t *sizes, Rnvp *f, char *err, size_t errsz) {
  int sz[3];
  for (int i = 0; i < 3; i++)
    sz[i] = sizes[i] < INT_MIN ? INT_MIN : sizes[i] > INT_MAX ? INT_MAX : (int)sizes[i];
  return rnvp_make(f, sz[0], sz[1], sz[2], err, errsz);
}

Value net_flow_initial(const Rnvp *f, const char *name) {
  Rng r;
  net_name_rng(&r, name);
  Value v = val_vec((int)f->nparams);
  rnvp_init(f, &r, v.t->d);
  return v;
}

/* The weights as a tensor: their own ids when they are one consecutive run
   (a handler's tape_block), so a call in a loop copies nothing. */
static Tensor weights(Tape *t, NetMemo *memo, Value w, int np, bool ad) {
  Tensor W = tensor_const(1, &np, w.t->d);
  if (!ad || !w.t->ad) return W;
  bool run = memo && memo->ad == w.t->ad && memo->np == np;
  if (!run) {
    run = np > 0 && w.t->ad[0] != 0;
    for (int i = 1; run && i < np; i++) run = w.t->ad[i] == w.t->ad[0] + i;
    if (run && memo) *memo = (NetMemo){w.t->ad, np};
  }
  if (run) {
    W.node = w.t->ad[0];
    return W;
  }
  return tensor_gather(t, 1, &np, w.t->d, w.t->ad);
}

bool net_apply(Tape *t, Tape *scratch, NetMemo *memo, const NnMlp *m, Value w, Value x, Value *out, char *err,
               size_t errsz) {
  int in = m->sizes[0], nout = m->sizes[m->nlayers];
  bool batch = x.k == V_MAT;
  int rows = batch ? x.t->rows : 1, width = batch ? x.t->cols : x.t->rows * x.t->cols;
  if (width != in) {
    if (batch)
      snprintf(err, errsz, "takes %d inputs (a matrix with %d columns), got a matrix with %d columns", in, in,
               width);
    else
      snprintf(err, errsz, "takes %d inputs, got a %s of %d", in, val_kind_name((ValKind)x.k), width);
    return false;
  }
  bool ad = t && (w.t->ad || x.t->ad);
  if (!ad) {
    t = scratch;
    tape_reset(t);
  }
  int np = (int)m->nparams;
  Tensor W = weights(t, memo, w, np, ad);
  size_t n = (size_t)rows * (size_t)in;
  double *xv = tape_alloc_atomic(t, sizeof(double) * (n ? n : 1));
  int32_t *xn = x.t->ad && ad ? tape_alloc_atomic(t, sizeof(int32_t) * (n ? n : 1)) : NULL;
  for (int i = 0; i < rows; i++) /* column-major (i, j) -> row-major */
    for (int j = 0; j < in; j++) {
      size_t src = batch ? (size_t)j * (size_t)rows + (size_t)i : (size_t)j, dst = (size_t)i * (size_t)in + (size_t)j;
      xv[dst] = x.t->d[src];
      if (xn) xn[dst] = x.t->ad[src];
    }
  int shape[2] = {rows, in};
  Tensor X = xn ? tensor_gather(t, batch ? 2 : 1, batch ? shape : shape + 1, xv, xn)
                : tensor_const(batch ? 2 : 1, batch ? shape : shape + 1, xv);
  Tensor Y = nn_mlp_forward(t, m, W, X);
  if (!tensor_ok(Y)) {
    snprintf(err, errsz, "%s", tape_error(t) ? tape_error(t) : "the network failed");
    return false;
  }
  Value v = batch ? val_mat(rows, nout) : val_vec(nout);
  if (Y.node) v.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)rows * (size_t)nout);
  for (int i = 0; i < rows; i++) /* row-major [rows, out] -> column-major */
    for (int j = 0; j < nout; j++) {
      size_t src = (size_t)i * (size_t)nout + (size_t)j, dst = (size_t)j * (size_t)rows + (size_t)i;
      v.t->d[dst] = Y.d[src];
      if (Y.node) v.t->ad[dst] = Y.node + (int32_t)src;
    }
  *out = v;
  return true;
}
