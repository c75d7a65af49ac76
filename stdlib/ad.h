/* ad.h — reverse-mode automatic differentiation on a tape.
 *
 * Gradients of the log density come from recording every real-valued operation
 * of one evaluation on a tape (the interpreter, the builtins and the
 * distributions each record their own operations with their local partial
 * derivatives) and sweeping it backwards once.
 *
 * Values carry their tape node: Value.ad for a V_REAL, ValTen.ad[i] for each
 * element of a vector/row_vector/matrix (NULL = every element constant).  Node
 * 0 means "constant": no derivative flows through it.  Ints, bools and strings
 * never carry nodes.
 *
 * A tape belongs to one evaluation in one thread; it is reset and reused
 * between evaluations so that steady-state evaluation allocates nothing.
 */
#ifndef PPL_AD_H
#define PPL_AD_H

#include <stddef.h>
#include <stdint.h>

typedef struct Tape Tape;

Tape *tape_new(void);
/* Forget every node (keeps the memory). */
void tape_reset(Tape *t);
/* Number of nodes recorded so far (ids are 1..tape_size). */
size_t tape_size(const Tape *t);

/* An independent variable with value v (its node id, > 0). */
int32_t tape_var(Tape *t, double v);
/* A node depending on n parents with the given partial derivatives
 * d(node)/d(parent). Parents with id 0 (constants) are skipped; if every parent
 * is constant the result is 0 (no node is created). */
int32_t tape_push(Tape *t, int n, const int32_t *parents, const double *partials);
/* Shorthands for one and two parents. */
int32_t tape_unary(Tape *t, int32_t a, double da);
int32_t tape_binary(Tape *t, int32_t a, double da, int32_t b, double db);

/* Backward sweep from node `out`: adj must have tape_size(t) + 1 entries; on
 * return adj[k] = d(out)/d(node k) (adj[0] is unused). */
void tape_backward(const Tape *t, int32_t out, double *adj);
/* Backward sweep over every node with adj (tape_size(t) + 1 entries) already
 * seeded with the adjoints of the outputs: for a vector-valued recording. */
void tape_backward_seeded(const Tape *t, double *adj);

/* A real with its node, for code that composes several recorded operations
 * (the transforms, the builtins' rules).  Each helper records one node. */
typedef struct AdNum {
  double v;
  int32_t n;
} AdNum;

static inline AdNum ad_const(double v) { return (AdNum){v, 0}; }
AdNum ad_add(Tape *t, AdNum a, AdNum b);
AdNum ad_sub(Tape *t, AdNum a, AdNum b);
AdNum ad_mul(Tape *t, AdNum a, AdNum b);
AdNum ad_div(Tape *t, AdNum a, AdNum b);
AdNum ad_scale(Tape *t, AdNum a, double c); /* c * a */
AdNum ad_exp(Tape *t, AdNum a);
AdNum ad_log(Tape *t, AdNum a);
AdNum ad_log1p(Tape *t, AdNum a);
AdNum ad_sqrt(Tape *t, AdNum a);
AdNum ad_tanh(Tape *t, AdNum a);
AdNum ad_inv_logit(Tape *t, AdNum a);
AdNum ad_log_inv_logit(Tape *t, AdNum a);
AdNum ad_log1m_inv_logit(Tape *t, AdNum a);
/* sum of n numbers as one node */
AdNum ad_sum(Tape *t, int n, const AdNum *a);

#endif
