/* nn.c — multilayer perceptrons on the tensor tape (see nn.h).
 *
 * A layer's W and b are views into the one flat weights tensor: the same data
 * and, when the weights carry nodes, the same ids at the layer's offset, so
 * slicing copies nothing and records nothing.  Each layer is then one
 * tensor_matmul (one BLAS product for a whole batch), one broadcast bias add
 * and one activation: three block nodes per layer.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const act_names[] = {
    [TENSOR_IDENTITY] = "identity", [TENSOR_RELU] = "relu",       [TENSOR_TANH] = "tanh",
    [TENSOR_SIGMOID] = "sigmoid",   [TENSOR_SOFTPLUS] = "softplus", [TENSOR_ELU] = "elu",
};

bool nn_act_parse(const char *name, NnAct *out) {
  for (size_t i = 0; i < sizeof act_names / sizeof *act_names; i++)
    if (act_names[i] && strcmp(name, act_names[i]) == 0) {
      *out = (NnAct)i;
      return true;
    }
  return false;
}

const char *nn_act_name(NnAct a) {
  if ((size_t)a < sizeof act_names / sizeof *act_names && act_names[a]) return act_names[a];
  return "?";
}

bool nn_mlp_make(NnMlp *m, int in, int nhidden, const int *hidden, int out, NnAct act,
                 NnAct out_act, char *err, size_t errlen) {
  if (nhidden < 0 || nhidden + 1 > NN_MAXLAYERS) {
    snprintf(err, errlen, "an mlp has at most %d hidden layers, not %d", NN_MAXLAYERS - 1, nhidden);
    return false;
  }
  memset(m, 0, sizeof *m);
  m->nlayers = nhidden + 1;
  m->sizes[0] = in;
  for (int i = 0; i < nhidden; i++) m->sizes[i + 1] = hidden[i];
  m->sizes[nhidden + 1] = out;
  m->act = act;
  m->out_act = out_act;
  for (int i = 0; i <= m->nlayers; i++) {
    if (m->sizes[i] < 1) {
      const char *what = i == 0 ? "input" : i == m->nlayers ? "output" : "hidden";
      snprintf(err, errlen, "an mlp's %s size must be at least 1, not %d", what, m->sizes[i]);
      return false;
    }
  }
  size_t n = 0;
  for (int l = 0; l < m->nlayers; l++) {
    size_t a = (size_t)m->sizes[l], b = (size_t)m->sizes[l + 1];
    /* tape ids are int32: a network past that could not be differentiated */
    if (a * b + b > (size_t)INT32_MAX - n) {
      snprintf(err, errlen, "an mlp with these sizes has more than %d weights", INT32_MAX);
      return false;
    }
    n += a * b + b;
  }
  m->nparams = n;
  return true;
}

void nn_mlp_init(const NnMlp *m, Rng *r, double last_scale, double *w) {
  size_t off = 0;
  for (int l = 0; l < m->nlayers; l++) {
    int a = m->sizes[l], b = m->sizes[l + 1];
    bool last = l == m->nlayers - 1;
    /* Glorot: U(-s, s) with s = sqrt(6 / (fan_in + fan_out)) keeps the
     * variance of activations and gradients level through tanh/sigmoid layers;
     * He (s = sqrt(6 / fan_in)) does the same for a layer feeding a relu. */
    NnAct next = last ? m->out_act : m->act;
    double s = next == TENSOR_RELU ? sqrt(6.0 / a) : sqrt(6.0 / (a + b));
    if (last) s *= last_scale;
    size_t nw = (size_t)a * (size_t)b;
    for (size_t i = 0; i < nw; i++) w[off + i] = s * (2 * rng_uniform(r) - 1);
    memset(w + off + nw, 0, sizeof(double) * (size_t)b);
    off += nw + (size_t)b;
  }
}

/* Elements [off, off + n) of the weights as a tensor of the given shape. */
static Tensor slice(Tensor w, size_t off, int rank, const int *shape) {
  Tensor v = tensor_const(rank, shape, w.d + off);
  v.node = w.node ? w.node + (int32_t)off : 0;
  return v;
}

Tensor nn_mlp_forward(Tape *t, const NnMlp *m, Tensor w, Tensor x) {
  if (!tensor_ok(w) || !tensor_ok(x)) {
    tape_fail(t, "mlp: an operand is invalid");
    return (Tensor){.rank = -1};
  }
  if (w.rank != 1 || (size_t)w.shape[0] != m->nparams) {
    tape_fail(t, "mlp: %zu weights given, the network has %zu", tensor_numel(w), m->nparams);
    return (Tensor){.rank = -1};
  }
  if ((x.rank != 1 && x.rank != 2) || x.shape[x.rank - 1] != m->sizes[0]) {
    int got = x.rank >= 1 ? x.shape[x.rank - 1] : 0;
    tape_fail(t, "mlp: the input has %d %s, the network takes %d", got,
              x.rank == 2 ? "columns" : "elements", m->sizes[0]);
    return (Tensor){.rank = -1};
  }
  Tensor h = x;
  size_t off = 0;
  for (int l = 0; l < m->nlayers; l++) {
    int a = m->sizes[l], b = m->sizes[l + 1];
    Tensor W = slice(w, off, 2, (int[]){a, b});
    off += (size_t)a * (size_t)b;
    Tensor bias = slice(w, off, 1, &b);
    off += (size_t)b;
    h = tensor_add(t, tensor_matmul(t, h, W), bias);
    h = tensor_act(t, l == m->nlayers - 1 ? m->out_act : m->act, h);
  }
  return h;
}

/* ---- off the tape ---- */

/* The hidden layers' widest output: two such buffers of B rows ping-pong. */
static size_t nn_widest_hidden(const NnMlp *m) {
  size_t h = 0;
  for (int l = 1; l < m->nlayers; l++) h = (size_t)m->sizes[l] > h ? (size_t)m->sizes[l] : h;
  return h;
}

size_t nn_mlp_work(const NnMlp *m, int B) { return 2 * (size_t)B * nn_widest_hidden(m); }

void nn_mlp_eval(const NnMlp *m, const double *w, int B, const double *x, double *out,
                 double *work) {
  const double *h = x;
  double *buf[2] = {work, work + (size_t)B * nn_widest_hidden(m)};
  size_t off = 0;
  for (int l = 0; l < m->nlayers; l++) {
    int a = m->sizes[l], b = m->sizes[l + 1];
    bool last = l == m->nlayers - 1;
    double *y = last ? out : buf[l % 2];
    const double *W = w + off, *bias = w + off + (size_t)a * (size_t)b;
    off += (size_t)a * (size_t)b + (size_t)b;
    tensor_matmul_values(B, a, b, h, W, y);
    NnAct f = last ? m->out_act : m->act;
    /* the bias and a relu in one pass (the tape's two steps, the same
       operations on each element); other activations after the bias */
    for (int r = 0; r < B; r++) {
      double *yr = y + (size_t)r * b;
      if (f == TENSOR_RELU)
        for (int j = 0; j < b; j++) {
          double v = yr[j] + bias[j];
          yr[j] = v > 0 ? v : 0;
        }
      else
        for (int j = 0; j < b; j++) yr[j] = yr[j] + bias[j];
    }
    if (f != TENSOR_RELU) tensor_act_values(f, (size_t)B * (size_t)b, y, y);
    h = y;
  }
}
