/* nn.h — neural networks on the tensor tape (stdlib/tensor.h): dense layers
 * and multilayer perceptrons whose weights are one flat vector of reals.
 *
 * A network does not own its weights: they live in a flat double vector
 * (an optimiser's parameters, a safetensors file, a `param network` value),
 * laid out layer by layer as W (in x out, row-major) then b (out).  Forward
 * passes record on a tape when the weights tensor carries nodes (training) and
 * run plain BLAS when it does not (drawing after training).
 */
#ifndef PPL_NN_H
#define PPL_NN_H

#include <stdbool.h>
#include <stddef.h>

#include "rng.h"
#include "tensor.h"

#define NN_MAXLAYERS 16

/* The activations of the language's networks (relu, tanh, softplus, sigmoid,
 * elu, identity), as tensor.h's element-wise functions. */
typedef TensorAct NnAct;
/* "relu" -> TENSOR_RELU ...; false for an unknown name. */
bool nn_act_parse(const char *name, NnAct *out);
const char *nn_act_name(NnAct a);

/* An MLP: in -> hidden[0] -> ... -> hidden[nhidden-1] -> out; `act` after each
 * hidden layer, `out_act` after the last (identity for most uses). */
typedef struct NnMlp {
  int nlayers;                 /* dense layers = nhidden + 1 */
  int sizes[NN_MAXLAYERS + 1]; /* in, hidden..., out */
  NnAct act, out_act;
  size_t nparams;              /* sum over layers of in*out + out */
} NnMlp;

/* Fill m; false (with a message in err, errlen bytes) for sizes < 1 or too
 * many layers. */
bool nn_mlp_make(NnMlp *m, int in, int nhidden, const int *hidden, int out, NnAct act,
                 NnAct out_act, char *err, size_t errlen);
/* Initial weights (nparams reals): Glorot-uniform matrices (He-uniform before
 * relu), zero biases; `last_scale` multiplies the last layer's weights (0 makes
 * a network that starts at output 0, as a flow's coupling layers want). */
void nn_mlp_init(const NnMlp *m, Rng *r, double last_scale, double *w);
/* x is [in] or [B, in]; returns [out] or [B, out].  w is the weights tensor
 * (rank 1, nparams elements): tensor_var over the flat vector to differentiate
 * with respect to them, tensor_const to only evaluate. */
Tensor nn_mlp_forward(Tape *t, const NnMlp *m, Tensor w, Tensor x);
/* The same forward pass off the tape, for drawing with fixed weights: B rows
 * x [B, in] row-major into out [B, out], with the products and element-wise
 * steps nn_mlp_forward makes with constant weights (the same bits), no
 * allocation: work holds nn_mlp_work(m, B) doubles. */
size_t nn_mlp_work(const NnMlp *m, int B);
void nn_mlp_eval(const NnMlp *m, const double *w, int B, const double *x, double *out,
                 double *work);

#endif
