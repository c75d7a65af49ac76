/* realnvp.h — the Real NVP normalizing flow (Dinh, Sohl-Dickstein, Bengio
 * 2017) on the tensor tape: one implementation of its coupling math for the
 * variational family of inference/vi_flow.c (`--vi flow`), the flow params
 * of programs (`param flow q = realnvp(D, layers, hidden)`, ir/net.c) and
 * their family `flow(q)` (stdlib/dists/flow.c).
 *
 * x = T(eps) = C_L o ... o C_1 (mu + exp(omega) * eps): an element-wise
 * affine base layer followed by `layers` affine coupling layers.  Coupling k
 * splits the coordinates into two contiguous halves (floor(dim/2) first, ceil
 * after); even layers keep the first half fixed and move the second, odd
 * layers the other way round.  With x_f the fixed half and x_m the moved:
 *
 *     (raw, shift) = MLP_k(x_f)               2 * |x_m| outputs
 *     s = B * tanh(raw / B)                    B = RNVP_SCALE_BOUND
 *     y_m = x_m * exp(s) + shift,   y_f = x_f, log|det| += sum(s)
 *
 * The soft bound keeps one layer from scaling by more than e^B, which keeps
 * early optimisation steps from blowing up; its slope at 0 is 1, so near the
 * identity the layer is the plain Real NVP one.  Each MLP (stdlib/nn.h) has
 * two hidden relu layers of `hidden` units (relu nets extrapolate linearly
 * where tanh nets go flat, which matters for a target's tails); its last layer
 * starts at zero, so every coupling starts as the identity and the whole flow
 * as the base affine, itself the identity (mu = 0, omega = 0).  A 1-D flow
 * has nothing to condition on: it is the base affine alone.
 *
 * A conditional flow (rnvp_make_cond, ctx > 0) models q(x | c) for a context
 * vector c (neural posterior estimation's data summary, inference/npe.c):
 * each coupling MLP reads [x_f, c], and the base affine's mu and omega are
 * mu + A c and omega + B c (one linear layer, starting at zero), since a 1-D
 * flow conditions through its base alone.  The batched functions move B
 * points at once, each with its own row of c: one BLAS product per network
 * layer for the whole batch, which is what training needs.
 *
 * The weights w are one flat vector: mu [dim], omega [dim], for a
 * conditional flow the base's linear layer (A and B as one nn.h layer
 * [ctx, 2 * dim] and its bias), then for each coupling k nn.h's flat layout
 * of MLP k (W0 [in, out] row-major, b0 [out], ...).  The first |x_m| outputs of MLP k are raw scales, the next shifts.
 * Both directions record on the caller's tape: with w a tensor_var (or a
 * tensor_gather of nodes) and points with nodes they are differentiable in
 * both; with constants they record nothing but the networks' arena use.
 */
#ifndef PPL_REALNVP_H
#define PPL_REALNVP_H

#include <stdbool.h>
#include <stddef.h>

#include "dist.h"
#include "nn.h"
#include "rng.h"
#include "tensor.h"

#define RNVP_SCALE_BOUND 3.0
#define RNVP_MAXLAYERS 64
#define RNVP_MAXDIM (1 << 20)
/* A flow param's layers and hidden units when its declaration leaves them
 * out: the defaults of advi's --flow-layers and --flow-hidden. */
#define RNVP_DEFAULT_LAYERS 6
#define RNVP_DEFAULT_HIDDEN 32

typedef struct RnvpLayer {
  int fixed0, nfixed; /* conditioning coordinates [fixed0, fixed0 + nfixed) */
  int moved0, nmoved; /* transformed coordinates */
  NnMlp mlp;          /* nfixed (+ ctx) -> hidden -> hidden -> 2 * nmoved */
  size_t off;         /* offset of the MLP's weights in w */
} RnvpLayer;

typedef struct Rnvp {
  int dim, layers, hidden; /* as asked; layers is kept for a 1-D flow too */
  int ncoupling;           /* coupling layers built (0 for dim 1) */
  int ctx;                 /* context length (0: unconditional) */
  NnMlp base;              /* ctx > 0: c -> (mu shift, omega shift), one linear layer */
  size_t base_off;         /* its weights' offset in w */
  size_t nparams;          /* weights in the flat vector */
  RnvpLayer layer[RNVP_MAXLAYERS];
} Rnvp;

/* Fill f; false with a message (err, errsz bytes) for dim outside
 * [1, RNVP_MAXDIM], layers outside [0, RNVP_MAXLAYERS] or hidden < 1. */
bool rnvp_make(Rnvp *f, int dim, int layers, int hidden, char *err, size_t errsz);
/* The same for a flow conditioned on ctx reals (ctx 0: rnvp_make's flow). */
bool rnvp_make_cond(Rnvp *f, int dim, int ctx, int layers, int hidden, char *err, size_t errsz);
/* Initial weights (f->nparams reals): mu = omega = 0, the base's linear
 * layer 0, and every coupling's MLP from nn_mlp_init with its last layer at
 * zero: the identity map whatever the context. */
void rnvp_init(const Rnvp *f, Rng *r, double *w);
/* x = T(eps) (dim AdNums each); returns log|det dT/deps|.  w is rank 1 with
 * f->nparams elements. */
AdNum rnvp_forward(Tape *t, const Rnvp *f, Tensor w, const AdNum *eps, AdNum *x);
/* eps = T^-1(x); returns log|det dT/deps| at that eps, so that
 * log q(x) = log N(eps; 0, I) - the result. */
AdNum rnvp_inverse(Tape *t, const Rnvp *f, Tensor w, const AdNum *x, AdNum *eps);
/* Batched and conditional: B points, row-major (B * dim AdNums in eps and
 * x), row b conditioned on row b of c ([B, ctx] or, for B = 1, [ctx]; any
 * tensor for an unconditional flow, which ignores it); logdet[b] as the
 * functions above return it.  rnvp_forward and rnvp_inverse are these with
 * B = 1 and no context. */
void rnvp_forward_batch(Tape *t, const Rnvp *f, Tensor w, int B, Tensor c, const AdNum *eps,
                        AdNum *x, AdNum *logdet);
void rnvp_inverse_batch(Tape *t, const Rnvp *f, Tensor w, int B, Tensor c, const AdNum *x,
                        AdNum *eps, AdNum *logdet);

/* rnvp_forward_batch off the tape, for drawing from a trained flow: the
 * same arithmetic in the same order (the same bits as the tape's with
 * constant weights), no tape and no allocation.  w is f->nparams reals, c is
 * [B, ctx] (ignored when unconditional), eps and x B * dim, logdet B; work
 * holds rnvp_work(f, B) doubles. */
size_t rnvp_work(const Rnvp *f, int B);
void rnvp_forward_values(const Rnvp *f, const double *w, int B, const double *c,
                         const double *eps, double *x, double *logdet, double *work);

/* flow(q)'s family (stdlib/dists/flow.c), parameters (weights, D, layers,
 * hidden).  Not in dist_all(): programs reach it only as flow(q) of a flow
 * param, whose layout the lowering passes along. */
extern const DistFamily dist_flow;

#endif
