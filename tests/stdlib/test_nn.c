/* test_nn.c — stdlib/nn.c: MLP forward passes against a hand-written loop
 * (batched and unbatched) and off the tape (nn_mlp_eval, bit for bit), gradients with respect to the weights and the
 * input against central finite differences, initial-weight statistics, the
 * activations' names, bad sizes and shapes, and tape reuse. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/value.h"
#include "stdlib/nn.h"
#include "tap.h"

static double act(NnAct a, double x) {
  switch (a) {
  case TENSOR_RELU: return x > 0 ? x : 0;
  case TENSOR_TANH: return tanh(x);
  case TENSOR_SIGMOID: return 1 / (1 + exp(-x));
  case TENSOR_SOFTPLUS: return log1p(exp(x));
  case TENSOR_ELU: return x > 0 ? x : exp(x) - 1;
  default: return x;
  }
}

/* The network by hand: weights W (in x out, row-major) then b, per layer. */
static void by_hand(const NnMlp *m, const double *w, const double *x, double *y) {
  double h[64], z[64];
  memcpy(h, x, sizeof(double) * (size_t)m->sizes[0]);
  const double *p = w;
  for (int l = 0; l < m->nlayers; l++) {
    int a = m->sizes[l], b = m->sizes[l + 1];
    for (int j = 0; j < b; j++) {
      double s = p[a * b + j];
      for (int k = 0; k < a; k++) s += h[k] * p[k * b + j];
      z[j] = act(l == m->nlayers - 1 ? m->out_act : m->act, s);
    }
    memcpy(h, z, sizeof(double) * (size_t)b);
    p += a * b + b;
  }
  memcpy(y, h, sizeof(double) * (size_t)m->sizes[m->nlayers]);
}

static NnMlp make(int in, int nh, const int *hid, int out, NnAct a, NnAct oa) {
  NnMlp m;
  char err[128];
  if (!nn_mlp_make(&m, in, nh, hid, out, a, oa, err, sizeof err)) tap_diag("make: %s", err);
  return m;
}

static void fill(Rng *r, double *v, size_t n, double s) {
  for (size_t i = 0; i < n; i++) v[i] = s * rng_normal(r);
}

static void test_names(void) {
  static const char *const names[] = {"relu", "tanh", "softplus", "sigmoid", "elu", "identity"};
  int ok = 1;
  for (int i = 0; i < 6; i++) {
    NnAct a;
    ok &= nn_act_parse(names[i], &a) && strcmp(nn_act_name(a), names[i]) == 0;
  }
  tap_ok(ok, "the six activations parse and name back");
  NnAct a;
  tap_ok(!nn_act_parse("exp", &a) && !nn_act_parse("Relu", &a) && !nn_act_parse("", &a),
         "other names are refused (exp is a tensor function, not an activation)");
}

static void test_make(void) {
  NnMlp m;
  char err[128];
  int hid[2] = {128, 128};
  tap_ok(nn_mlp_make(&m, 64, 2, hid, 6, TENSOR_RELU, TENSOR_IDENTITY, err, sizeof err) && m.nlayers == 3 &&
             m.nparams == (size_t)(64 * 128 + 128 + 128 * 128 + 128 + 128 * 6 + 6),
         "mlp(64, [128, 128], 6): 3 layers, nparams");
  tap_ok(nn_mlp_make(&m, 3, 0, NULL, 2, TENSOR_TANH, TENSOR_IDENTITY, err, sizeof err) && m.nlayers == 1 &&
             m.nparams == 8,
         "no hidden layer: one dense layer");
  int zero[1] = {0};
  tap_ok(!nn_mlp_make(&m, 3, 1, zero, 2, TENSOR_TANH, TENSOR_IDENTITY, err, sizeof err) &&
             strcmp(err, "an mlp's hidden size must be at least 1, not 0") == 0,
         "a zero hidden size is refused: %s", err);
  tap_ok(!nn_mlp_make(&m, 0, 0, NULL, 2, TENSOR_TANH, TENSOR_IDENTITY, err, sizeof err) &&
             strstr(err, "input size"),
         "a zero input size is refused: %s", err);
  int many[NN_MAXLAYERS];
  for (int i = 0; i < NN_MAXLAYERS; i++) many[i] = 2;
  tap_ok(!nn_mlp_make(&m, 3, NN_MAXLAYERS, many, 2, TENSOR_TANH, TENSOR_IDENTITY, err, sizeof err),
         "too many layers refused: %s", err);
  int huge[1] = {1 << 20};
  tap_ok(!nn_mlp_make(&m, 1 << 12, 1, huge, 1, TENSOR_TANH, TENSOR_IDENTITY, err, sizeof err),
         "more weights than tape ids refused: %s", err);
}

static void test_forward(void) {
  Rng r;
  rng_seed(&r, 11, 0);
  int hid[2] = {4, 5};
  for (int oa = 0; oa < 2; oa++) {
    NnMlp m = make(3, 2, hid, 2, TENSOR_TANH, oa ? TENSOR_SIGMOID : TENSOR_IDENTITY);
    double w[128], x[4 * 3], y[4 * 2], want[2];
    fill(&r, w, m.nparams, 0.7);
    fill(&r, x, 12, 1);
    Tape *t = tape_new();
    Tensor W = tensor_const(1, (int[]){(int)m.nparams}, w);
    double worst = 0, worstb = 0;
    for (int b = 0; b < 4; b++) {
      Tensor yv = nn_mlp_forward(t, &m, W, tensor_const(1, (int[]){3}, x + 3 * b));
      by_hand(&m, w, x + 3 * b, want);
      for (int j = 0; j < 2; j++) worst = fmax(worst, fabs(yv.d[j] - want[j]));
      if (yv.rank != 1 || yv.shape[0] != 2) worst = INFINITY;
      memcpy(y + 2 * b, want, sizeof want);
    }
    Tensor yb = nn_mlp_forward(t, &m, W, tensor_const(2, (int[]){4, 3}, x));
    for (int i = 0; i < 8; i++) worstb = fmax(worstb, fabs(yb.d[i] - y[i]));
    if (yb.rank != 2 || yb.shape[0] != 4 || yb.shape[1] != 2) worstb = INFINITY;
    tap_ok(worst < 1e-14, "unbatched forward equals the loop (out %s, err %.2g)", oa ? "sigmoid" : "identity",
           worst);
    tap_ok(worstb < 1e-14, "batched forward [4, 3] -> [4, 2] equals the loop (err %.2g)", worstb);
    tap_ok(!tape_error(t) && tape_size(t) == 0, "constant weights record nothing");
  }
  /* every hidden activation through the same comparison */
  int worst_ok = 1;
  for (NnAct a = TENSOR_IDENTITY; a <= TENSOR_ELU; a++) {
    NnMlp m = make(2, 1, (int[]){3}, 2, a, a);
    double w[64], x[2], want[2];
    fill(&r, w, m.nparams, 1);
    fill(&r, x, 2, 1);
    Tape *t = tape_new();
    Tensor y = nn_mlp_forward(t, &m, tensor_const(1, (int[]){(int)m.nparams}, w), tensor_const(1, (int[]){2}, x));
    by_hand(&m, w, x, want);
    for (int j = 0; j < 2; j++) worst_ok &= fabs(y.d[j] - want[j]) < 1e-14;
  }
  tap_ok(worst_ok, "each activation (hidden and output) equals the loop");
}

/* nn_mlp_eval against nn_mlp_forward with constant weights, bit for bit:
 * every activation, one row (the tape's matrix-vector products), several
 * rows, an output of width 1 (another BLAS call), a net with no hidden
 * layer. */
static void test_eval(void) {
  Rng r;
  rng_seed(&r, 29, 0);
  int bad = 0, ncases = 0;
  for (NnAct a = TENSOR_IDENTITY; a <= TENSOR_ELU; a++)
    for (int shape = 0; shape < 3; shape++)
      for (int B = 1; B <= 5; B += 4) {
        int hid[2] = {6, 3}, nh = shape == 2 ? 0 : 2, out = shape == 1 ? 1 : 4;
        NnMlp m = make(3, nh, hid, out, a, shape ? TENSOR_IDENTITY : a);
        double w[128], x[5 * 3], y[5 * 4];
        double *work = malloc(sizeof(double) * (nn_mlp_work(&m, B) + 1));
        fill(&r, w, m.nparams, 0.8);
        fill(&r, x, (size_t)B * 3, 1);
        Tape *t = tape_new();
        Tensor in = B == 1 ? tensor_const(1, (int[]){3}, x) : tensor_const(2, (int[]){B, 3}, x);
        Tensor yt = nn_mlp_forward(t, &m, tensor_const(1, (int[]){(int)m.nparams}, w), in);
        nn_mlp_eval(&m, w, B, x, y, work);
        bad += !tensor_ok(yt) || memcmp(yt.d, y, sizeof(double) * (size_t)B * out) != 0;
        ncases++;
        free(work);
      }
  tap_ok(bad == 0, "the forward pass off the tape gives the tape's bits (%d of %d cases differ)",
         bad, ncases);
}

/* L = sum_i r_i y_i: its gradient is the vector-Jacobian product with r. */
static double loss_plain(const NnMlp *m, const double *w, const double *x, int B, const double *r) {
  Tape *t = tape_new();
  Tensor X = B ? tensor_const(2, (int[]){B, m->sizes[0]}, x) : tensor_const(1, (int[]){m->sizes[0]}, x);
  Tensor y = nn_mlp_forward(t, m, tensor_const(1, (int[]){(int)m->nparams}, w), X);
  double s = 0;
  for (size_t i = 0; i < tensor_numel(y); i++) s += r[i] * y.d[i];
  return s;
}

static void test_gradients(void) {
  Rng r;
  rng_seed(&r, 12, 0);
  for (NnAct a = TENSOR_IDENTITY; a <= TENSOR_ELU; a++) {
    for (int B = 0; B <= 3; B += 3) { /* 0: unbatched */
      NnMlp m = make(3, 2, (int[]){4, 3}, 2, a, a == TENSOR_RELU ? TENSOR_TANH : TENSOR_IDENTITY);
      int rows = B ? B : 1;
      double w[128], x[9], rr[6];
      fill(&r, w, m.nparams, 0.8);
      fill(&r, x, (size_t)rows * 3, 1);
      fill(&r, rr, (size_t)rows * 2, 1);
      Tape *t = tape_new();
      Tensor W = tensor_var(t, 1, (int[]){(int)m.nparams}, w);
      Tensor X = B ? tensor_var(t, 2, (int[]){B, 3}, x) : tensor_var(t, 1, (int[]){3}, x);
      Tensor y = nn_mlp_forward(t, &m, W, X);
      AdNum L = tensor_sum(t, tensor_mul(t, y, tensor_const(y.rank, y.shape, rr)));
      double *adj = calloc(tape_size(t) + 1, sizeof *adj);
      tape_backward(t, L.n, adj);
      double worst = 0;
      const double h = 1e-6;
      for (size_t i = 0; i < m.nparams + (size_t)rows * 3; i++) {
        double *v = i < m.nparams ? &w[i] : &x[i - m.nparams];
        int32_t id = i < m.nparams ? W.node + (int32_t)i : X.node + (int32_t)(i - m.nparams);
        double keep = *v;
        *v = keep + h;
        double up = loss_plain(&m, w, x, B, rr);
        *v = keep - h;
        double dn = loss_plain(&m, w, x, B, rr);
        *v = keep;
        double fd = (up - dn) / (2 * h);
        worst = fmax(worst, fabs(adj[id] - fd) / fmax(1, fabs(fd)));
      }
      tap_ok(worst < 1e-7 && !tape_error(t), "%s, %s: gradient w.r.t. weights and input = finite differences (%.2g)",
             nn_act_name(a), B ? "batch 3" : "unbatched", worst);
      free(adj);
    }
  }
}

static void test_init(void) {
  Rng r;
  rng_seed(&r, 13, 0);
  /* tanh: Glorot; the layer before a relu: He */
  NnMlp m = make(40, 1, (int[]){60}, 30, TENSOR_TANH, TENSOR_IDENTITY);
  double *w = malloc(sizeof(double) * m.nparams);
  nn_mlp_init(&m, &r, 1, w);
  struct { size_t off, n; double s; } L[2] = {{0, 40 * 60, sqrt(6.0 / 100)}, {40 * 60 + 60, 60 * 30, sqrt(6.0 / 90)}};
  for (int l = 0; l < 2; l++) {
    double mx = 0, s1 = 0, s2 = 0;
    for (size_t i = 0; i < L[l].n; i++) {
      double v = w[L[l].off + i];
      mx = fmax(mx, fabs(v));
      s1 += v;
      s2 += v * v;
    }
    double n = (double)L[l].n, var = L[l].s * L[l].s / 3;
    /* U(-s, s): mean 0 (sd sqrt(var/n)), E v^2 = s^2/3 (sd of the mean of
     * v^2 is sqrt((s^4/5 - var^2)/n)); 4.5 standard errors */
    double se_mean = sqrt(var / n), se_sq = sqrt((pow(L[l].s, 4) / 5 - var * var) / n);
    tap_ok(mx <= L[l].s && mx > 0.99 * L[l].s, "layer %d: weights within the Glorot bound %.4f (max %.4f)", l,
           L[l].s, mx);
    tap_ok(fabs(s1 / n) < 4.5 * se_mean, "layer %d: mean %.3g within 4.5 se of 0", l, s1 / n);
    tap_ok(fabs(s2 / n - var) < 4.5 * se_sq, "layer %d: mean square %.4g within 4.5 se of s^2/3 = %.4g", l,
           s2 / n, var);
  }
  int zeros = 1;
  for (int j = 0; j < 60; j++) zeros &= w[40 * 60 + j] == 0;
  for (int j = 0; j < 30; j++) zeros &= w[m.nparams - 30 + j] == 0;
  tap_ok(zeros, "biases start at zero");
  free(w);

  NnMlp mr = make(50, 1, (int[]){20}, 3, TENSOR_RELU, TENSOR_IDENTITY);
  w = malloc(sizeof(double) * mr.nparams);
  nn_mlp_init(&mr, &r, 1, w);
  double mx = 0;
  for (int i = 0; i < 50 * 20; i++) mx = fmax(mx, fabs(w[i]));
  tap_ok(mx <= sqrt(6.0 / 50) && mx > sqrt(6.0 / 70), "before a relu: He bound sqrt(6/fan_in) (max %.4f)", mx);
  free(w);

  NnMlp mz = make(5, 1, (int[]){7}, 4, TENSOR_TANH, TENSOR_IDENTITY);
  w = malloc(sizeof(double) * mz.nparams);
  nn_mlp_init(&mz, &r, 0, w);
  double x[5] = {1, -2, 3, 0.5, 9};
  Tape *t = tape_new();
  Tensor y = nn_mlp_forward(t, &mz, tensor_const(1, (int[]){(int)mz.nparams}, w), tensor_const(1, (int[]){5}, x));
  int zero = 1, nonzero = 0;
  for (int j = 0; j < 4; j++) zero &= y.d[j] == 0;
  for (int i = 0; i < 35; i++) nonzero |= w[i] != 0;
  tap_ok(zero && nonzero, "last_scale 0: output exactly 0, hidden layers still random");
  free(w);

  Rng r1, r2;
  rng_seed(&r1, 99, 3);
  rng_seed(&r2, 99, 3);
  double a[8 * 3 + 3 + 3 * 2 + 2], b[sizeof a / sizeof *a];
  NnMlp ms = make(8, 1, (int[]){3}, 2, TENSOR_ELU, TENSOR_IDENTITY);
  nn_mlp_init(&ms, &r1, 1, a);
  nn_mlp_init(&ms, &r2, 1, b);
  tap_ok(memcmp(a, b, sizeof a) == 0, "same seed, same weights");
}

static void test_errors(void) {
  NnMlp m = make(3, 1, (int[]){4}, 2, TENSOR_TANH, TENSOR_IDENTITY);
  double w[32] = {0}, x[8] = {0};
  Tape *t = tape_new();
  Tensor W = tensor_const(1, (int[]){(int)m.nparams}, w);
  Tensor y = nn_mlp_forward(t, &m, W, tensor_const(2, (int[]){2, 4}, x));
  tap_ok(!tensor_ok(y) && tape_error(t) && strcmp(tape_error(t), "mlp: the input has 4 columns, the network takes 3") == 0,
         "a matrix of the wrong width: %s", tape_error(t) ? tape_error(t) : "(none)");
  tape_reset(t);
  y = nn_mlp_forward(t, &m, W, tensor_const(1, (int[]){2}, x));
  tap_ok(!tensor_ok(y) && tape_error(t) && strcmp(tape_error(t), "mlp: the input has 2 elements, the network takes 3") == 0,
         "a vector of the wrong length: %s", tape_error(t) ? tape_error(t) : "(none)");
  tape_reset(t);
  y = nn_mlp_forward(t, &m, tensor_const(1, (int[]){5}, w), tensor_const(1, (int[]){3}, x));
  tap_ok(!tensor_ok(y) && tape_error(t) && strstr(tape_error(t), "5 weights given, the network has 26"),
         "wrong number of weights: %s", tape_error(t) ? tape_error(t) : "(none)");
}

static void test_reuse(void) {
  Rng r;
  rng_seed(&r, 14, 0);
  NnMlp m = make(16, 2, (int[]){32, 32}, 4, TENSOR_RELU, TENSOR_IDENTITY);
  double *w = malloc(sizeof(double) * m.nparams), x[8 * 16];
  nn_mlp_init(&m, &r, 1, w);
  fill(&r, x, 8 * 16, 1);
  Tape *t = tape_new();
  double *adj = NULL;
  size_t bytes[20], cap = 0;
  double first = 0, last = 0;
  for (int k = 0; k < 20; k++) {
    tape_reset(t);
    Tensor W = tensor_var(t, 1, (int[]){(int)m.nparams}, w);
    AdNum L = tensor_mean(t, nn_mlp_forward(t, &m, W, tensor_const(2, (int[]){8, 16}, x)));
    if (!adj) adj = malloc(sizeof(double) * (cap = tape_size(t) + 1));
    tape_backward(t, L.n, adj);
    *(k ? &last : &first) = adj[W.node + 5];
    bytes[k] = tape_bytes(t);
  }
  int same = 1;
  for (int k = 2; k < 20; k++) same &= bytes[k] == bytes[1];
  tap_ok(same && bytes[1] == bytes[0], "tape reuse allocates nothing (%zu bytes every time)", bytes[1]);
  tap_ok(first == last, "repeated recordings give the same gradient");
  free(adj);
  free(w);
}

int main(void) {
  gc_init();
  test_names();
  test_make();
  test_forward();
  test_eval();
  test_gradients();
  test_init();
  test_errors();
  test_reuse();
  return tap_done();
}
