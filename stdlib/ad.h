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
 *
 * Block nodes.  A tensor-valued operation (a matrix product, an activation
 * over a batch; stdlib/tensor.h) records one block node instead of one scalar
 * node per element: the block takes n consecutive ids, one per element of its
 * output, and keeps a vector-Jacobian-product callback with the inputs it
 * saved.  The backward sweep reaches a block once all of its elements' adjoints
 * are final and calls vjp(ctx, adj + first, adj), which reads the output
 * adjoints in place and adds the inputs' adjoints into adj by the inputs' ids.
 * Because a block's elements are ordinary ids, scalar nodes depend on tensor
 * elements with no bridge node (parent first + i), and a block takes scalar
 * nodes as inputs by id (tensor_gather).  Scalar recording is unchanged; the
 * sweep runs its scalar loop between blocks exactly as before.  A block's
 * saved state lives in the tape's arena (tape_alloc), rewound by tape_reset.
 */
#ifndef PPL_AD_H
#define PPL_AD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Tape Tape;

Tape *tape_new(void);
/* Forget every node (keeps the memory). */
void tape_reset(Tape *t);
/* Number of nodes recorded so far (ids are 1..tape_size). */
size_t tape_size(const Tape *t);
/* A point of the recording to come back to: tape_rewind forgets every node,
 * block and saved state recorded after the mark and keeps those before it,
 * so a recording that starts from the same nodes (params) repeats without
 * recording them again.  It refuses (false, nothing changed) when the mark
 * was taken with deferred flushes or an error pending. */
typedef struct TapeMark {
  size_t n, m, mem_used, num_used;
  int nblk, mem_cur, num_cur;
  bool ok;
} TapeMark;
TapeMark tape_mark(const Tape *t);
bool tape_rewind(Tape *t, const TapeMark *k);

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

/* ---- block nodes ---- */

/* Backward rule of a block: gout = adj + first (the block's n output
 * adjoints); add the inputs' adjoints into adj.  Called at most once per sweep,
 * and not at all when every output adjoint is zero. */
typedef void (*TapeVjp)(void *ctx, const double *gout, double *adj);
/* Record a block of n > 0 consecutive ids; returns the first.  vjp NULL makes
 * n independent variables (a tensor of parameters). */
int32_t tape_block(Tape *t, size_t n, TapeVjp vjp, void *ctx);
/* Memory that lives until the next tape_reset, for blocks' saved state and
 * values: tape_alloc may hold pointers, tape_alloc_atomic only numbers.  Not
 * zeroed (it is reused); 16-byte aligned. */
void *tape_alloc(Tape *t, size_t bytes);
void *tape_alloc_atomic(Tape *t, size_t bytes);
/* Bytes the tape holds (nodes, parents, blocks, arena): constant once the
 * recordings repeat, which is how tests see that reuse allocates nothing. */
size_t tape_bytes(const Tape *t);

/* ---- deferred contributions ----
 *
 * Some blocks add into the same ids at every call: a network's weight matrix
 * gets one rank-1 update per call in a plate.  Such a block may leave its share
 * to a flush registered on those ids [first, last]: the sweep calls
 * flush(ctx, adj) once, after every block above the ids (every contributor)
 * and before any node or block that reads an adjoint in [first, last].  The
 * flush can then add all the calls' shares at once (one matrix product instead
 * of one rank-1 update per call).  tape_deferred finds the ctx registered with
 * the same flush and ids (NULL if none), so calls share one. */
typedef void (*TapeFlush)(void *ctx, double *adj);
/* false (nothing registered) once a recording has TAPE_MAXDEFER: then the
 * block adds its share itself, so that many distinct targets (a different
 * matrix at every call) cost no quadratic search. */
#define TAPE_MAXDEFER 64
bool tape_defer(Tape *t, int32_t first, int32_t last, TapeFlush flush, void *ctx);
void *tape_deferred(const Tape *t, int32_t first, int32_t last, TapeFlush flush);
/* The first failure of a recording (a shape mismatch in a tensor operation),
 * NULL if none; cleared by tape_reset.  Operations record the failure here
 * and return an invalid result instead of stopping the program. */
const char *tape_error(const Tape *t);
void tape_fail(Tape *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
