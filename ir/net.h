/* net.h — network and flow values in the interpreter (`param network f = mlp(...)`,
 * f(x)): between the interpreter's Values (column-major matrices, a node per
 * element) and stdlib/nn.h's row-major tensors on the tape.
 */
#ifndef PPL_IR_NET_H
#define PPL_IR_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/value.h"
#include "../stdlib/nn.h"
#include "../stdlib/realnvp.h"

/* The layout from the sizes (in, hidden..., out: n of them) and the packed
 * activations (act | out_act << 8, IR_PARAM's imm); false with a message. */
bool net_layout(const int64_t *sizes, int n, int acts, NnMlp *m, char *err, size_t errsz);

/* A network's initial weights: nn_mlp_init with an Rng seeded from the
 * param's name alone (FNV-1a 64 of the name, stream 0), so every run,
 * chain, engine and evaluation of a program sees the same network until an
 * engine gives other weights through the handler's param(). */
Value net_initial(const NnMlp *m, const char *name);

/* A flow param's layout from its sizes (D, layers, hidden); false with a
 * message for sizes out of range. */
bool net_flow_layout(const int64_t *sizes, Rnvp *f, char *err, size_t errsz);
/* A flow param's initial weights: rnvp_init with the Rng net_initial seeds
 * from the param's name (the identity map; only the couplings' hidden
 * layers are random). */
Value net_flow_initial(const Rnvp *f, const char *name);

/* The weights a run last found to be one consecutive run of tape nodes (their
 * node array and length): a network called once per datapoint in a plate
 * checks its thousands of weights' nodes at its first call, not at every
 * call.  A run's param values are never written, so the array does not
 * change under it.  Zeroed, it remembers nothing. */
typedef struct NetMemo {
  const int32_t *ad;
  int np;
} NetMemo;

/* f(x): w the weights (a vector of m->nparams), x a vector or row_vector of
 * m's input size (-> a vector) or a matrix with that many columns (-> a
 * matrix, one row per input row).  Records on tape t when w or x carry nodes
 * (t not NULL); otherwise runs on `scratch`, a tape only used for its arena
 * (reset here).  memo, if not NULL, is the caller's NetMemo.  false with a message for a wrong input width ("takes 3
 * inputs, got a vector of 4": the caller names the network). */
bool net_apply(Tape *t, Tape *scratch, NetMemo *memo, const NnMlp *m, Value w, Value x, Value *out, char *err,
               size_t errsz);

#endif
