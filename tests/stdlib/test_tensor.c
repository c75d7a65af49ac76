/* test_tensor.c — block nodes on the AD tape and the tensor operations of
 * stdlib/tensor.h: every operation's vector-Jacobian product against central
 * finite differences over random shapes, graphs that mix scalar and tensor
 * nodes, a two-layer MLP's loss gradient, the block matrix product against
 * the scalar recording it replaces, tanh (libmvec's where built) against
 * libm's, shape errors, and that a reset tape
 * records again without allocating. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl_config.h"
#include "stdlib/ad.h"
#include "stdlib/tensor.h"
#include "tap.h"
#include "core/value.h"

#if PPL_USE_GC
#include <gc/gc.h>
#endif

/* ---- a deterministic RNG ---- */

static uint64_t rng_s = 0x7e2504c0ffee1234ull;
static double unif(void) {
  rng_s = rng_s * 6364136223846793005ull + 1442695040888963407ull;
  return ((rng_s >> 11) + 0.5) * 0x1.0p-53;
}
static int irange(int lo, int hi) { return lo + (int)(unif() * (hi - lo + 1)); }

/* ---- gradient check harness ---- */

/* One test case: a loss of theta built by `f` on the tape. */
typedef struct Case Case;
typedef AdNum (*LossFn)(Tape *t, const double *th, const Case *c);
struct Case {
  LossFn f;
  int op;            /* which operation, for the families of cases */
  int d[6];          /* dims */
  int nin;           /* number of inputs and their sizes: theta = concat */
  size_t size[4];
  bool var[4];       /* input i carries nodes */
  double *w;         /* random weights of the output, so output adjoints differ */
  int *idx;          /* classes for pick */
};

static size_t off(const Case *c, int i) {
  size_t o = 0;
  for (int k = 0; k < i; k++) o += c->size[k];
  return o;
}
static size_t dim_of(const Case *c) { return off(c, c->nin); }

static Tensor input(Tape *t, const double *th, const Case *c, int i, int rank, const int *shape) {
  return c->var[i] ? tensor_var(t, rank, shape, th + off(c, i))
                   : tensor_const(rank, shape, th + off(c, i));
}

/* sum(w .* y): every output element gets its own adjoint */
static AdNum weigh(Tape *t, Tensor y, const double *w) {
  return tensor_sum(t, tensor_mul(t, y, tensor_const(y.rank, y.shape, w)));
}

/* Max relative error of the tape gradient against central differences over
 * the inputs that carry nodes.  The tape's variables are the inputs' blocks
 * in order, so input i's element j is node (first id of input i) + j. */
static double grad_error(const Case *c, double *th, bool *valid_out) {
  Tape *t = tape_new();
  size_t n = dim_of(c);
  AdNum l = c->f(t, th, c);
  *valid_out = tape_error(t) == NULL && isfinite(l.v);
  double *adj = calloc(tape_size(t) + 1, sizeof(double));
  tape_backward(t, l.n, adj);
  /* ids of the inputs: tensor_var blocks are made first, in input order */
  double worst = 0;
  int32_t id = 1;
  for (int i = 0; i < c->nin; i++) {
    for (size_t j = 0; j < c->size[i]; j++) {
      size_t k = off(c, i) + j;
      double g = c->var[i] ? adj[id + (int32_t)j] : 0;
      if (!c->var[i]) continue;
      double x = th[k], h = 1e-6 * fmax(1, fabs(x));
      th[k] = x + h;
      tape_reset(t);
      double up = c->f(t, th, c).v;
      th[k] = x - h;
      tape_reset(t);
      double dn = c->f(t, th, c).v;
      th[k] = x;
      double fd = (up - dn) / (2 * h);
      double e = fabs(g - fd) / fmax(1, fabs(fd));
      if (e > worst) worst = e;
    }
    if (c->var[i]) id += (int32_t)c->size[i];
  }
  free(adj);
  (void)n;
  return worst;
}

static void fill(double *th, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) th[i] = lo + (hi - lo) * unif();
}

/* Away from the kinks of relu and elu, where differences are meaningless. */
static void avoid_zero(double *th, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (fabs(th[i]) < 0.05) th[i] = th[i] < 0 ? -0.3 : 0.3;
}

static void run_case(Case *c, const char *name, double tol) {
  size_t n = dim_of(c);
  double *th = malloc(sizeof(double) * (n ? n : 1));
  fill(th, n, -1.5, 1.5);
  avoid_zero(th, n);
  c->w = malloc(sizeof(double) * 4096);
  fill(c->w, 4096, -1, 1);
  bool ok;
  double e = grad_error(c, th, &ok);
  tap_ok(ok && e < tol, "%s: gradient vs central differences (max rel err %.2g)", name, e);
  free(th);
  free(c->w);
}

/* ---- the operations ---- */

enum { MM_2x2, MM_2x1, MM_1x2, MM_3x2, MM_BATCH };

static AdNum f_matmul(Tape *t, const double *th, const Case *c) {
  const int *d = c->d;
  Tensor a, b;
  switch (c->op) {
  case MM_2x2:
    a = input(t, th, c, 0, 2, (int[]){d[0], d[1]});
    b = input(t, th, c, 1, 2, (int[]){d[1], d[2]});
    break;
  case MM_2x1:
    a = input(t, th, c, 0, 2, (int[]){d[0], d[1]});
    b = input(t, th, c, 1, 1, (int[]){d[1]});
    break;
  case MM_1x2:
    a = input(t, th, c, 0, 1, (int[]){d[1]});
    b = input(t, th, c, 1, 2, (int[]){d[1], d[2]});
    break;
  case MM_3x2:
    a = input(t, th, c, 0, 3, (int[]){d[3], d[0], d[1]});
    b = input(t, th, c, 1, 2, (int[]){d[1], d[2]});
    break;
  default:
    a = input(t, th, c, 0, 3, (int[]){d[3], d[0], d[1]});
    b = input(t, th, c, 1, 3, (int[]){d[3], d[1], d[2]});
    break;
  }
  return weigh(t, tensor_matmul(t, a, b), c->w);
}

static void test_matmul(void) {
  static const char *const name[] = {"[n,K]x[K,m]", "[n,K]x[K]", "[K]x[K,m]", "[B,n,K]x[K,m]",
                                     "[B,n,K]x[B,K,m]"};
  for (int op = MM_2x2; op <= MM_BATCH; op++)
    for (int which = 0; which < 3; which++) { /* both, only a, only b carry nodes */
      Case c = {.f = f_matmul, .op = op, .nin = 2};
      for (int k = 0; k < 4; k++) c.d[k] = irange(1, 7);
      int n = c.d[0], K = c.d[1], m = c.d[2], B = c.d[3];
      c.size[0] = op == MM_1x2 ? (size_t)K : (size_t)n * K * (op >= MM_3x2 ? B : 1);
      c.size[1] = op == MM_2x1 ? (size_t)K : (size_t)K * m * (op == MM_BATCH ? B : 1);
      c.var[0] = which != 2;
      c.var[1] = which != 1;
      char nm[128];
      snprintf(nm, sizeof nm, "matmul %s n=%d K=%d m=%d B=%d (%s)", name[op], n, K, m, B,
               which == 0 ? "both" : which == 1 ? "a" : "b");
      run_case(&c, nm, 1e-7);
    }
}

enum { EW_ADD, EW_SUB, EW_MUL, EW_ADD_BIAS, EW_MUL_BIAS, EW_SCALE, EW_TRANSPOSE };

static AdNum f_elementwise(Tape *t, const double *th, const Case *c) {
  int r = c->d[0], m = c->d[1];
  Tensor a = input(t, th, c, 0, 2, (int[]){r, m});
  Tensor y;
  switch (c->op) {
  case EW_ADD: y = tensor_add(t, a, input(t, th, c, 1, 2, (int[]){r, m})); break;
  case EW_SUB: y = tensor_sub(t, a, input(t, th, c, 1, 2, (int[]){r, m})); break;
  case EW_MUL: y = tensor_mul(t, a, input(t, th, c, 1, 2, (int[]){r, m})); break;
  case EW_ADD_BIAS: y = tensor_add(t, a, input(t, th, c, 1, 1, &m)); break;
  case EW_MUL_BIAS: y = tensor_mul(t, a, input(t, th, c, 1, 1, &m)); break;
  case EW_SCALE: {
    AdNum s = {th[off(c, 1)], c->var[1] ? tape_var(t, th[off(c, 1)]) : 0};
    y = tensor_scale(t, a, s);
    break;
  }
  default: y = tensor_transpose(t, a); break;
  }
  return weigh(t, y, c->w);
}

static void test_elementwise(void) {
  static const char *const name[] = {"add", "sub", "mul", "add bias row", "mul by row",
                                     "scale by a scalar node", "transpose"};
  for (int op = EW_ADD; op <= EW_TRANSPOSE; op++)
    for (int which = 0; which < (op == EW_TRANSPOSE ? 1 : 2); which++) {
      Case c = {.f = f_elementwise, .op = op, .nin = op == EW_TRANSPOSE ? 1 : 2};
      c.d[0] = irange(1, 9), c.d[1] = irange(1, 9);
      c.size[0] = (size_t)c.d[0] * c.d[1];
      c.size[1] = op <= EW_MUL ? c.size[0] : op == EW_SCALE ? 1 : (size_t)c.d[1];
      c.var[0] = true;
      c.var[1] = which == 0;
      char nm[128];
      snprintf(nm, sizeof nm, "%s [%d,%d] (%s)", name[op], c.d[0], c.d[1],
               which == 0 ? "both carry nodes" : "second constant");
      run_case(&c, nm, 1e-7);
    }
}

static const TensorAct acts[] = {TENSOR_IDENTITY, TENSOR_RELU, TENSOR_TANH, TENSOR_SIGMOID,
                                 TENSOR_SOFTPLUS, TENSOR_ELU, TENSOR_EXP, TENSOR_SQUARE};
static const char *const act_name[] = {"identity", "relu", "tanh", "sigmoid",
                                       "softplus", "elu", "exp", "square"};

enum { U_ACT, U_LOGSOFTMAX, U_PICK, U_SUM, U_MEAN };

static AdNum f_unary(Tape *t, const double *th, const Case *c) {
  int r = c->d[0], m = c->d[1];
  Tensor x = input(t, th, c, 0, c->d[2], c->d[2] == 2 ? (int[]){r, m} : (int[]){m});
  switch (c->op) {
  case U_ACT: return weigh(t, tensor_act(t, acts[c->d[3]], x), c->w);
  case U_LOGSOFTMAX: return weigh(t, tensor_log_softmax(t, x), c->w);
  case U_PICK: return weigh(t, tensor_pick(t, x, c->idx), c->w);
  case U_SUM: return ad_mul(t, tensor_sum(t, x), tensor_sum(t, x));
  default: return ad_exp(t, tensor_mean(t, x));
  }
}

static void test_unary(void) {
  for (int a = 0; a < (int)(sizeof acts / sizeof acts[0]); a++) {
    Case c = {.f = f_unary, .op = U_ACT, .nin = 1, .var = {true}};
    c.d[0] = irange(1, 9), c.d[1] = irange(1, 9), c.d[2] = 2, c.d[3] = a;
    c.size[0] = (size_t)c.d[0] * c.d[1];
    char nm[96];
    snprintf(nm, sizeof nm, "%s [%d,%d]", act_name[a], c.d[0], c.d[1]);
    run_case(&c, nm, 1e-7);
  }
  static const char *const name[] = {"", "log_softmax", "pick", "sum", "mean"};
  for (int op = U_LOGSOFTMAX; op <= U_MEAN; op++)
    for (int rank = 1; rank <= 2; rank++) {
      Case c = {.f = f_unary, .op = op, .nin = 1, .var = {true}};
      c.d[0] = rank == 2 ? irange(1, 9) : 1, c.d[1] = irange(1, 9), c.d[2] = rank;
      c.size[0] = (size_t)c.d[0] * c.d[1];
      int idx[16];
      for (int i = 0; i < c.d[0]; i++) idx[i] = irange(0, c.d[1] - 1);
      c.idx = idx;
      char nm[96];
      snprintf(nm, sizeof nm, "%s rank %d [%d,%d]", name[op], rank, c.d[0], c.d[1]);
      run_case(&c, nm, 1e-7);
    }
}

/* ---- scalar and tensor nodes mixed ---- */

/* Scalars computed on the tape are gathered into a matrix (their ids are
 * scattered: every other node), multiplied by a tensor variable, and single
 * elements of the product feed scalar operations again. */
static AdNum f_mixed(Tape *t, const double *th, const Case *c) {
  int n = c->d[0], K = c->d[1];
  Tensor W = tensor_var(t, 2, (int[]){K, 3}, th + off(c, 1));
  double v[64];
  int32_t ids[64];
  for (int i = 0; i < n * K; i++) {
    AdNum x = {th[i], tape_var(t, th[i])};
    AdNum s = i % 3 == 0 ? ad_const(0.25 * (i % 5)) : ad_tanh(t, x); /* some constants */
    v[i] = s.v;
    ids[i] = s.n;
  }
  Tensor X = tensor_gather(t, 2, (int[]){n, K}, v, ids);
  Tensor H = tensor_act(t, TENSOR_SIGMOID, tensor_matmul(t, X, W));
  AdNum acc = ad_const(0);
  for (size_t i = 0; i < tensor_numel(H); i += 2)
    acc = ad_add(t, acc, ad_mul(t, tensor_at(H, i), ad_exp(t, tensor_at(H, i))));
  return ad_add(t, acc, ad_log(t, ad_add(t, ad_const(1), tensor_sum(t, H))));
}

static void test_mixed(void) {
  Case c = {.f = f_mixed, .nin = 2, .var = {true, true}};
  c.d[0] = 4, c.d[1] = 5;
  c.size[0] = 20;
  c.size[1] = 15;
  /* theta[0..20) are the scalars' variables, made one per element between the
   * tanh nodes, so their ids are not 1..20: check by differences directly */
  double th[35];
  fill(th, 35, -1, 1);
  Tape *t = tape_new();
  AdNum l = f_mixed(t, th, &c);
  double *adj = calloc(tape_size(t) + 1, sizeof(double));
  tape_backward(t, l.n, adj);
  /* node ids: W's block is 1..15; then per element a tape_var and maybe a tanh */
  int32_t ids[35];
  for (int k = 0; k < 15; k++) ids[20 + k] = 1 + k;
  int32_t id = 16;
  for (int i = 0; i < 20; i++) {
    ids[i] = id;
    id += i % 3 == 0 ? 1 : 2;
  }
  double worst = 0;
  for (int k = 0; k < 35; k++) {
    double x = th[k], h = 1e-6;
    th[k] = x + h;
    tape_reset(t);
    double up = f_mixed(t, th, &c).v;
    th[k] = x - h;
    tape_reset(t);
    double dn = f_mixed(t, th, &c).v;
    th[k] = x;
    double fd = (up - dn) / (2 * h), e = fabs(adj[ids[k]] - fd) / fmax(1, fabs(fd));
    if (e > 1e-7) tap_diag("k=%d id=%d tape %g differences %g", k, ids[k], adj[ids[k]], fd);
    if (e > worst) worst = e;
  }
  tap_ok(worst < 1e-7, "scalar nodes -> gather -> matmul -> sigmoid -> elements -> scalar ops: "
                       "gradient vs differences (max rel err %.2g)", worst);
  /* a constant element (i % 3 == 0) gets no gradient through the gather */
  tap_ok(adj[ids[0]] == 0, "a constant gathered element passes no adjoint");
  /* the output can be a block element itself */
  tape_reset(t);
  Tensor A = tensor_var(t, 2, (int[]){2, 2}, th);
  Tensor y = tensor_matmul(t, A, tensor_const(1, (int[]){2}, th + 4));
  memset(adj, 0, sizeof(double) * 8);
  tape_backward(t, tensor_at(y, 1).n, adj);
  tap_ok(adj[1] == 0 && adj[2] == 0 && adj[3] == th[4] && adj[4] == th[5],
         "backward from one element of a block: d y[1] / d A = [0 0; b']");
  free(adj);
}

/* ---- a two-layer MLP ---- */

enum { MLP_B = 16, MLP_IN = 6, MLP_H = 8, MLP_OUT = 3 };
#define MLP_NPAR (MLP_IN * MLP_H + MLP_H + MLP_H * MLP_OUT + MLP_OUT)

typedef struct {
  double X[MLP_B * MLP_IN];
  int y[MLP_B];
} MlpData;

static AdNum mlp_loss(Tape *t, const double *p, const MlpData *D, TensorAct act) {
  Tensor X = tensor_const(2, (int[]){MLP_B, MLP_IN}, D->X);
  Tensor W1 = tensor_var(t, 2, (int[]){MLP_IN, MLP_H}, p);
  Tensor b1 = tensor_var(t, 1, (int[]){MLP_H}, p + MLP_IN * MLP_H);
  Tensor W2 = tensor_var(t, 2, (int[]){MLP_H, MLP_OUT}, p + MLP_IN * MLP_H + MLP_H);
  Tensor b2 = tensor_var(t, 1, (int[]){MLP_OUT}, p + MLP_NPAR - MLP_OUT);
  Tensor h = tensor_act(t, act, tensor_add(t, tensor_matmul(t, X, W1), b1));
  Tensor z = tensor_add(t, tensor_matmul(t, h, W2), b2);
  AdNum nll = tensor_mean(t, tensor_pick(t, tensor_log_softmax(t, z), D->y));
  return ad_scale(t, nll, -1);
}

static void test_mlp(void) {
  MlpData D;
  fill(D.X, MLP_B * MLP_IN, -2, 2);
  for (int b = 0; b < MLP_B; b++) D.y[b] = irange(0, MLP_OUT - 1);
  double p[MLP_NPAR];
  fill(p, MLP_NPAR, -0.8, 0.8);
  static const TensorAct mlp_acts[] = {TENSOR_TANH, TENSOR_SOFTPLUS, TENSOR_SIGMOID};
  for (int a = 0; a < 3; a++) {
    Tape *t = tape_new();
    AdNum l = mlp_loss(t, p, &D, mlp_acts[a]);
    size_t nodes = tape_size(t);
    double *adj = calloc(nodes + 1, sizeof(double));
    tape_backward(t, l.n, adj);
    double worst = 0;
    for (int k = 0; k < MLP_NPAR; k++) {
      double x = p[k], h = 1e-6;
      p[k] = x + h;
      tape_reset(t);
      double up = mlp_loss(t, p, &D, mlp_acts[a]).v;
      p[k] = x - h;
      tape_reset(t);
      double dn = mlp_loss(t, p, &D, mlp_acts[a]).v;
      p[k] = x;
      double fd = (up - dn) / (2 * h), e = fabs(adj[1 + k] - fd) / fmax(1, fabs(fd));
      if (e > worst) worst = e;
    }
    tap_ok(worst < 1e-7 && isfinite(l.v) && l.v > 0,
           "MLP %d-%d(%s)-%d, softmax cross-entropy on %d rows: loss %.4f, gradient vs "
           "differences (max rel err %.2g)", MLP_IN, MLP_H, act_name[mlp_acts[a]], MLP_OUT, MLP_B,
           l.v, worst);
    if (a == 0) /* leaves, then per row: H (XW1, +b1, act), OUT (hW2, +b2, log_softmax),
                 * the picked class; then the mean and the sign */
      tap_ok(nodes == MLP_NPAR + (size_t)MLP_B * (3 * MLP_H + 3 * MLP_OUT + 1) + 2,
             "the MLP records one id per tensor element and no per-product partials (%zu ids)",
             nodes);
    free(adj);
  }

  /* steady state: a reset tape records the same graph again without allocating */
  Tape *t = tape_new();
  double *adj = NULL;
  size_t bytes = 0;
#if PPL_USE_GC
  size_t gc0 = 0;
#endif
  bool same = true;
  for (int it = 0; it < 8; it++) {
    if (it == 3) {
      bytes = tape_bytes(t);
#if PPL_USE_GC
      gc0 = GC_get_total_bytes();
#endif
    }
    tape_reset(t);
    AdNum l = mlp_loss(t, p, &D, TENSOR_TANH);
    if (!adj) adj = calloc(tape_size(t) + 1, sizeof(double));
    tape_backward(t, l.n, adj);
    if (it > 3) same = same && tape_bytes(t) == bytes;
  }
  tap_ok(same && bytes > 0, "tape reset and reuse keeps its %zu bytes", bytes);
#if PPL_USE_GC
  size_t grew = GC_get_total_bytes() - gc0;
  tap_ok(grew == 0, "five more MLP gradients allocate nothing on the GC heap (%zu bytes)", grew);
#endif
  free(adj);
}

/* ---- the block product against the scalar recording it replaces ---- */

/* The recording the interpreter made before block nodes: one node per output
 * with the 2K partials of its row of A and column of B. */
static void scalar_matmul(Tape *t, int n, int K, int m, const double *A, const int32_t *ia,
                          const double *B, const int32_t *ib, double *C, int32_t *ic) {
  int32_t par[256];
  double dv[256];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      int np = 0;
      double s = 0;
      for (int k = 0; k < K; k++) {
        s += A[i * K + k] * B[k * m + j];
        par[np] = ia[i * K + k];
        dv[np++] = B[k * m + j];
        par[np] = ib[k * m + j];
        dv[np++] = A[i * K + k];
      }
      C[i * m + j] = s;
      ic[i * m + j] = tape_push(t, np, par, dv);
    }
}

static void test_block_vs_scalar(void) {
  int n = 7, K = 9, m = 5;
  double A[63], B[45], C[35], w[35];
  fill(A, 63, -1, 1);
  fill(B, 45, -1, 1);
  fill(w, 35, -1, 1);
  double ga[2][108];
  double val[2] = {0, 0};
  for (int path = 0; path < 2; path++) {
    Tape *t = tape_new();
    int32_t ia[63], ib[45], ic[35];
    for (int i = 0; i < 63; i++) ia[i] = tape_var(t, A[i]);
    for (int i = 0; i < 45; i++) ib[i] = tape_var(t, B[i]);
    if (path == 0) {
      scalar_matmul(t, n, K, m, A, ia, B, ib, C, ic);
    } else {
      Tensor a = tensor_gather(t, 2, (int[]){n, K}, A, ia), b = tensor_gather(t, 2, (int[]){K, m}, B, ib);
      Tensor c = tensor_matmul(t, a, b);
      for (int i = 0; i < 35; i++) {
        C[i] = c.d[i];
        ic[i] = c.node + i;
      }
    }
    int32_t par[35];
    double dv[35];
    for (int i = 0; i < 35; i++) {
      par[i] = ic[i];
      dv[i] = w[i];
      val[path] += w[i] * C[i];
    }
    int32_t out = tape_push(t, 35, par, dv);
    double *adj = calloc(tape_size(t) + 1, sizeof(double));
    tape_backward(t, out, adj);
    for (int i = 0; i < 108; i++) ga[path][i] = adj[1 + i];
    free(adj);
  }
  double worst = 0;
  for (int i = 0; i < 108; i++) {
    double e = fabs(ga[0][i] - ga[1][i]) / fmax(1e-300, fabs(ga[0][i]));
    if (e > worst) worst = e;
  }
  tap_ok(worst < 1e-12, "block matmul gradient equals the scalar tape's to %.2g relative", worst);
  tap_near(val[1], val[0], 1e-14, "and the same value");
}

/* ---- tanh, which runs on libmvec's vector code where the build has it ---- */

/* distance in units in the last place (same sign, finite) */
static double ulps(double a, double b) {
  if (a == b) return 0;
  if (signbit(a) != signbit(b) || !isfinite(a) || !isfinite(b)) return INFINITY;
  int64_t ia, ib;
  memcpy(&ia, &a, 8), memcpy(&ib, &b, 8);
  return fabs((double)(ia - ib));
}

static void test_tanh(void) {
  /* every length 1..19, so both the vector body and the scalar tail run, over
     values from 1e-300 to 40 of both signs; and the special values */
  enum { N = 19 };
  double worst = 0, x[N + 8];
  Tape *t = tape_new();
  for (int n = 1; n <= N; n++)
    for (int rep = 0; rep < 200; rep++) {
      for (int i = 0; i < n; i++) {
        double m = pow(10, -300 + 301.6 * unif());
        x[i] = (unif() < 0.5 ? -1 : 1) * (unif() < 0.7 ? 6 * unif() : m);
      }
      Tensor y = tensor_act(t, TENSOR_TANH, tensor_const(1, &n, x));
      for (int i = 0; i < n; i++) worst = fmax(worst, ulps(y.d[i], tanh(x[i])));
      tape_reset(t);
    }
  /* libmvec's bound, as the JIT's vector densities are held to (test_jit_kernels) */
  tap_ok(worst <= 4, "tanh of a tensor within 4 ulp of libm's at 38,000 values, every length 1..19 "
                     "(worst %g)", worst);
  double sp[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 20, -20, 1e-310, -1e-310, 710, 0.5};
  int ns = (int)(sizeof sp / sizeof *sp);
  Tensor y = tensor_act(t, TENSOR_TANH, tensor_const(1, &ns, sp));
  bool ok = true;
  for (int i = 0; i < ns; i++) {
    double want = tanh(sp[i]);
    ok &= isnan(want) ? isnan(y.d[i]) : ulps(y.d[i], want) <= 4 && signbit(y.d[i]) == signbit(want);
  }
  tap_ok(ok, "tanh of +-0, +-inf, nan, +-20, subnormals, 710: libm's values, signs kept");
}

/* ---- errors ---- */

static void test_errors(void) {
  Tape *t = tape_new();
  double d[12] = {0};
  Tensor a = tensor_var(t, 2, (int[]){3, 4}, d), b = tensor_var(t, 2, (int[]){3, 4}, d);
  Tensor c = tensor_matmul(t, a, b);
  tap_ok(!tensor_ok(c), "[3,4] x [3,4] is refused");
  tap_streq(tape_error(t), "tensor matmul: shapes [3, 4] and [3, 4] do not fit", "with its message");
  Tensor e = tensor_act(t, TENSOR_TANH, c);
  tap_ok(!tensor_ok(e) && strstr(tape_error(t), "matmul"), "an invalid operand propagates; the first error stays");
  tape_reset(t);
  tap_ok(tape_error(t) == NULL, "tape_reset clears the error");
  a = tensor_var(t, 2, (int[]){3, 4}, d);
  Tensor p = tensor_pick(t, a, (int[]){0, 4, 1});
  tap_ok(!tensor_ok(p) && tape_error(t) && strstr(tape_error(t), "index 4 of row 1"),
         "pick with a class outside the row: %s", tape_error(t) ? tape_error(t) : "(none)");
  tape_reset(t);
  Tensor bias = tensor_const(1, (int[]){3}, d);
  tap_ok(!tensor_ok(tensor_add(t, a, bias)) && tape_error(t),
         "a bias that is not the trailing dims is refused: %s", tape_error(t) ? tape_error(t) : "");
  tape_reset(t);
  tap_ok(tensor_ok(tensor_reshape(t, a, 1, (int[]){12})) && !tensor_ok(tensor_reshape(t, a, 1, (int[]){11})),
         "reshape keeps the number of elements");
}

/* ---- the block API itself ---- */

/* y = [2a, a b, b^2] from two scalar nodes, written by hand */
typedef struct {
  int32_t na, nb;
  double a, b;
} HandCtx;

static void hand_vjp(void *ctx, const double *g, double *adj) {
  const HandCtx *c = ctx;
  adj[c->na] += 2 * g[0] + c->b * g[1];
  adj[c->nb] += c->a * g[1] + 2 * c->b * g[2];
}

static void test_block_api(void) {
  Tape *t = tape_new();
  double a = 0.7, b = -1.9;
  int32_t na = tape_var(t, a), nb = tape_var(t, b);
  HandCtx *c = tape_alloc(t, sizeof *c);
  *c = (HandCtx){na, nb, a, b};
  int32_t y = tape_block(t, 3, hand_vjp, c);
  int32_t z = tape_binary(t, y + 1, 3, y + 2, 1); /* z = 3 ab + b^2, a scalar on block elements */
  tap_ok(y == 3 && z == 6 && tape_size(t) == 6, "a block of 3 takes ids 3..5; the next scalar node is 6");
  /* seeded: adjoints of y[0] and z at once (a vector-valued recording) */
  double adj[8] = {0};
  adj[y] = 1;
  adj[z] = 1;
  tape_backward_seeded(t, adj);
  tap_near(adj[na], 2 + 3 * b, 1e-15, "seeded sweep through a block: d(y0 + z)/da = 2 + 3b");
  tap_near(adj[nb], 3 * a + 2 * b, 1e-15, "and d/db = 3a + 2b");
  tape_backward(t, y + 2, adj);
  tap_ok(adj[na] == 0 && adj[nb] == 2 * b && adj[z] == 0, "backward from the block's last element: d(b^2)");
  /* arena: aligned, rewound by a reset to the same addresses, growing across chunks */
  tape_reset(t);
  void *p1 = tape_alloc(t, 24), *p2 = tape_alloc_atomic(t, 100000), *p3 = tape_alloc(t, 8);
  tape_reset(t);
  void *q1 = tape_alloc(t, 24), *q2 = tape_alloc_atomic(t, 100000), *q3 = tape_alloc(t, 8);
  tap_ok(((uintptr_t)p1 | (uintptr_t)p2 | (uintptr_t)p3) % 16 == 0 && p1 == q1 && p2 == q2 && p3 == q3,
         "tape_alloc memory is 16-byte aligned and reused at the same addresses after a reset");
  tap_ok(tape_block(t, 0, hand_vjp, c) == 0 && tape_size(t) == 0, "an empty block records nothing");
}

static void no_flush(void *ctx, double *adj) { (void)ctx, (void)adj; }

/* tape_mark / tape_rewind: a recording repeated from the same first nodes
   (svi's params, once a step for all its gradient blocks) */
static void test_rewind(void) {
  Tape *t = tape_new();
  double a = 0.7, b = -1.9;
  int32_t na = tape_var(t, a), nb = tape_var(t, b);
  TapeMark k = tape_mark(t);
  double first[8], again[8];
  void *p[2];
  int32_t z[2];
  for (int rep = 0; rep < 2; rep++) {
    if (rep) tap_ok(tape_rewind(t, &k) && tape_size(t) == 2, "rewind: the two variables are left");
    HandCtx *c = tape_alloc(t, sizeof *c);
    *c = (HandCtx){na, nb, a, b};
    p[rep] = c;
    int32_t y = tape_block(t, 3, hand_vjp, c);
    z[rep] = tape_binary(t, y + 1, 3, y + 2, 1);
    tape_backward(t, z[rep], rep ? again : first);
  }
  tap_ok(z[0] == z[1] && p[0] == p[1], "after a rewind the block and its saved state take the same ids "
                                       "and the same arena memory");
  tap_ok(first[na] == again[na] && first[nb] == again[nb] && first[na] == 3 * b &&
         first[nb] == 3 * a + 2 * b, "the repeated recording sweeps to the same adjoints");
  /* a deferred flush pending at the mark: rewinding cannot tell which came after */
  tape_reset(t);
  tape_var(t, 1);
  tap_ok(tape_defer(t, 1, 1, no_flush, NULL), "a flush registered");
  TapeMark kd = tape_mark(t);
  tape_var(t, 2);
  tap_ok(!tape_rewind(t, &kd) && tape_size(t) == 2, "a mark with a flush pending: rewind refuses, nothing changed");
}

/* ---- deferred weight gradients ---- */

/* A square weight matrix W, the first K^2 elements of E = exp(V), shared by 2R
 * vector-times-matrix calls (h = tanh(x_i W), y_i = h W, as a network layer in
 * a plate), plus a scalar node on E's last element, recorded last: W's rank-1
 * updates are summed by one flush, which must run before exp's block reads
 * W's adjoints, though W ends inside that block.  Row R-1's y is left out of
 * the loss, so its flush rows are zero. */
static AdNum f_shared(Tape *t, const double *th, const Case *c) {
  int K = c->d[0], R = c->d[1];
  int n = K * K + 2;
  Tensor V = input(t, th, c, 0, 1, &n);
  Tensor X = input(t, th, c, 1, 2, (int[]){R, K});
  Tensor E = tensor_act(t, TENSOR_EXP, V);
  Tensor W = tensor_reshape(t, tensor_slice(E, 0, (size_t)K * K), 2, (int[]){K, K});
  AdNum l = ad_const(0);
  for (int i = 0; i < R; i++) {
    Tensor x = tensor_reshape(t, tensor_slice(X, (size_t)i * K, (size_t)K), 1, &K);
    Tensor y = tensor_matmul(t, tensor_act(t, TENSOR_TANH, tensor_matmul(t, x, W)), W);
    if (i < R - 1) l = ad_add(t, l, weigh(t, y, c->w + (size_t)i * K));
  }
  return ad_add(t, l, ad_mul(t, tensor_at(E, (size_t)n - 1), tensor_at(W, 1)));
}

static void test_deferred(void) {
  for (int which = 0; which < 2; which++) { /* x constant, x with nodes */
    Case c = {.f = f_shared, .nin = 2, .d = {6, 9}};
    c.size[0] = 38;
    c.size[1] = 54;
    c.var[0] = true;
    c.var[1] = which == 1;
    run_case(&c, which ? "a weight matrix shared by 18 calls (inputs with nodes): gradient"
                       : "a weight matrix shared by 18 calls: gradient",
             1e-7);
  }
  /* a sweep from an output recorded before the last calls: theirs add nothing */
  Tape *t = tape_new();
  double w[6] = {0.5, -1, 2, 0.25, 3, -0.5}, x1[2] = {1, 2}, x2[2] = {-3, 7};
  Tensor W = tensor_var(t, 2, (int[]){2, 3}, w);
  AdNum l1 = tensor_sum(t, tensor_matmul(t, tensor_const(1, (int[]){2}, x1), W));
  AdNum l2 = tensor_sum(t, tensor_matmul(t, tensor_const(1, (int[]){2}, x2), W));
  double adj[64] = {0};
  tap_ok(tape_size(t) < 64, "the tape fits");
  tape_backward(t, l1.n, adj);
  tap_ok(adj[1] == 1 && adj[3] == 1 && adj[4] == 2 && adj[6] == 2,
         "sweep from the first call's output: dW = x1 1' only");
  tape_backward(t, l2.n, adj);
  tap_ok(adj[1] == -3 && adj[2] == -3 && adj[4] == 7 && adj[6] == 7, "and from the second's: x2 1'");
  double seeded[64] = {0};
  seeded[l1.n] = 1;
  seeded[l2.n] = 2;
  tape_backward_seeded(t, seeded);
  tap_ok(seeded[1] == 1 - 6 && seeded[6] == 2 + 14, "seeded with both: x1 1' + 2 x2 1'");
  /* after a reset the same recording flushes again, once */
  tape_reset(t);
  W = tensor_var(t, 2, (int[]){2, 3}, w);
  l1 = tensor_sum(t, tensor_matmul(t, tensor_const(1, (int[]){2}, x1), W));
  tape_backward(t, l1.n, adj);
  tap_ok(adj[1] == 1 && adj[6] == 2, "a reset forgets the flushes of the last recording");
  /* more distinct matrices than TAPE_MAXDEFER, each called twice: the calls
     past the limit add their own updates; every dW_j = (x1 + x2) 1' */
  tape_reset(t);
  enum { NM = TAPE_MAXDEFER + 6 };
  int32_t first[NM];
  AdNum l = ad_const(0);
  for (int j = 0; j < NM; j++) {
    Tensor Wj = tensor_var(t, 2, (int[]){2, 3}, w);
    first[j] = Wj.node;
    for (int k = 0; k < 2; k++)
      l = ad_add(t, l, tensor_sum(t, tensor_matmul(t, tensor_const(1, (int[]){2}, k ? x2 : x1), Wj)));
  }
  double *big = calloc(tape_size(t) + 1, sizeof(double));
  tape_backward(t, l.n, big);
  bool all = true;
  for (int j = 0; j < NM; j++)
    for (int r = 0; r < 2; r++)
      for (int q = 0; q < 3; q++) all &= big[first[j] + 3 * r + q] == x1[r] + x2[r];
  tap_ok(all, "%d matrices past the tape's %d flushes: every gradient still (x1 + x2) 1'", NM, TAPE_MAXDEFER);
  free(big);
}

int main(void) {
  gc_init();
  test_matmul();
  test_elementwise();
  test_unary();
  test_mixed();
  test_mlp();
  test_tanh();
  test_block_vs_scalar();
  test_errors();
  test_block_api();
  test_rewind();
  test_deferred();
  return tap_done();
}
