/* tensor.h — tensors on the AD tape: one block node per operation.
 *
 * A Tensor is a shape (rank 0..TENSOR_MAXRANK), row-major doubles, and the
 * first tape id of its elements (element i is node node + i; 0 = constant).
 * Each operation computes its value and, when an input carries nodes, records
 * one block node (stdlib/ad.h) whose vector-Jacobian product is written here:
 * a matrix product costs two BLAS calls backwards instead of 2K tape partials
 * per output element.  This is the layer neural networks (variational and
 * amortized inference, learned proposals) are built from.
 *
 * Values and saved state live in the tape's arena until tape_reset, so a
 * repeated recording allocates nothing.  Inputs made with tensor_const and
 * tensor_var borrow the caller's data, which must outlive the recording.
 *
 * Scalars and tensors mix: tensor_at gives element i as an AdNum whose node is
 * the element's own id (no extra node), tensor_gather makes a tensor from
 * scalar nodes anywhere on the tape, and reductions return an AdNum.
 *
 * Errors (shape mismatches) go to tape_fail; the result is then invalid
 * (rank -1), every operation on an invalid tensor returns an invalid tensor,
 * and tape_error(t) says what went wrong first.
 *
 * Matrix products go through cblas (OpenBLAS); before its first product
 * tensor_blas_init sets OpenBLAS to one thread unless OPENBLAS_NUM_THREADS
 * says otherwise, so results do not depend on a thread count and BLAS
 * threads do not compete with the driver's chains.
 */
#ifndef PPL_TENSOR_H
#define PPL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "ad.h"

#define TENSOR_MAXRANK 8

typedef struct Tensor {
  int rank;                   /* -1: invalid (an operation failed) */
  int shape[TENSOR_MAXRANK];
  double *d;                  /* numel doubles, row-major */
  int32_t node;               /* element i is tape node node + i; 0 = constant */
} Tensor;

size_t tensor_numel(Tensor x);
static inline int tensor_ok(Tensor x) { return x.rank >= 0; }

/* ---- making tensors ---- */

/* A constant over the caller's data (no node). */
Tensor tensor_const(int rank, const int *shape, const double *data);
/* Independent variables over the caller's data: one leaf block of numel ids. */
Tensor tensor_var(Tape *t, int rank, const int *shape, const double *data);
/* A tensor whose element i is the scalar node ids[i] (0 = constant) with value
 * vals[i]; both copied.  One block whose rule scatters the adjoints back. */
Tensor tensor_gather(Tape *t, int rank, const int *shape, const double *vals, const int32_t *ids);
/* A copy of x's data in the tape's arena, same nodes (for data that will change). */
Tensor tensor_keep(Tape *t, Tensor x);
/* The same elements and nodes seen with another shape of the same size. */
Tensor tensor_reshape(Tape *t, Tensor x, int rank, const int *shape);
/* Element i (row-major) as a scalar: its node is x.node + i. */
AdNum tensor_at(Tensor x, size_t i);
/* x's elements [off, off + n) (row-major) as a rank-1 tensor over the same
 * data, with their nodes if x has them: a layer's weights within a network's
 * flat vector. */
Tensor tensor_slice(Tensor x, size_t off, size_t n);

/* ---- operations (each records at most one block) ---- */

/* Matrix products: [.., n, K] x [K, m] -> [.., n, m] (leading dims are rows);
 * [.., n, K] x [K] -> [.., n]; [K] x [K, m] -> [m]; and batched
 * [B, n, K] x [B, K, m] -> [B, n, m]. */
Tensor tensor_matmul(Tape *t, Tensor a, Tensor b);
/* As tensor_matmul for 2-D/1-D operands, with the value already computed by
 * the caller into out (numel of the result doubles, row-major): records the
 * node only.  For callers whose forward value must stay bit for bit theirs. */
Tensor tensor_matmul_given(Tape *t, Tensor a, Tensor b, double *out);
/* [n, m] -> [m, n] */
Tensor tensor_transpose(Tape *t, Tensor x);

/* Element-wise a op b for the same shape, or with b's shape equal to the
 * trailing dims of a's (a bias row broadcast over a batch). */
Tensor tensor_add(Tape *t, Tensor a, Tensor b);
Tensor tensor_sub(Tape *t, Tensor a, Tensor b);
Tensor tensor_mul(Tape *t, Tensor a, Tensor b);
/* s * x for a scalar s with its node. */
Tensor tensor_scale(Tape *t, Tensor x, AdNum s);

typedef enum {
  TENSOR_IDENTITY,
  TENSOR_RELU,
  TENSOR_TANH,
  TENSOR_SIGMOID,
  TENSOR_SOFTPLUS, /* log(1 + e^x) */
  TENSOR_ELU,      /* x > 0 ? x : e^x - 1 */
  TENSOR_EXP,
  TENSOR_SQUARE,
} TensorAct;
/* An element-wise function; TENSOR_IDENTITY returns x itself. */
Tensor tensor_act(Tape *t, TensorAct f, Tensor x);

/* Over the last dimension: x - log(sum(exp(x))), computed stably. */
Tensor tensor_log_softmax(Tape *t, Tensor x);
/* [B, C] (or [C]) and one class per row: y[b] = x[b, idx[b]] -> [B] (or []). */
Tensor tensor_pick(Tape *t, Tensor x, const int *idx);

/* Reductions to a scalar on the tape (a one-element block). */
AdNum tensor_sum(Tape *t, Tensor x);
AdNum tensor_mean(Tape *t, Tensor x);

/* y = A x + beta y, or A^T x + beta y when trans, for a row-major m x n A:
 * one BLAS call, for code that keeps no tape (the JIT's matrix products). */
void tensor_gemv(bool trans, int m, int n, const double *A, const double *x, double beta,
                 double *y);
/* C = A B for row-major m x k A (leading dimension lda), k x n B (ldb) and
 * m x n C (ldc): one BLAS call, for code that keeps no tape (the JIT's
 * products of a batch of points, jit_rt_batch_begin). */
void tensor_gemm(int m, int n, int k, const double *A, int lda, const double *B, int ldb,
                 double *C, int ldc);

/* Off the tape, with the tape's arithmetic (the same bits as tensor_matmul
 * and tensor_act of constants): C[N, M] = A[N, K] B[K, M], row-major, the
 * BLAS call tensor_matmul makes for these shapes; and z = f(a) element-wise
 * over n reals (z may be a; TENSOR_IDENTITY copies).  For value-only passes
 * of networks (nn_mlp_eval). */
void tensor_matmul_values(int N, int K, int M, const double *A, const double *B, double *C);
void tensor_act_values(TensorAct f, size_t n, const double *a, double *z);

/* Set OpenBLAS to one thread (deterministic runs, no fight with the driver's
 * threads) and stop its idle server threads, unless OPENBLAS_NUM_THREADS is
 * set.  Idempotent and cheap; ppl_context_new calls it. */
void tensor_blas_init(void);

#endif
