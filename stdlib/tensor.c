/* tensor.c — tensor operations and their vector-Jacobian products on the
 * tape's block nodes (see tensor.h).
 *
 * Each operation computes its value into the tape's arena and, when an input
 * carries nodes, saves pointers to its inputs' values (which live in the
 * arena or are borrowed from the caller for the whole recording) in a small
 * context and records one block.  A rule adds into adj at an input's ids
 * only when that input has nodes; the inputs' ids are contiguous, so the
 * adjoint of an input tensor is the slice adj + node and BLAS writes it in
 * place (beta = 1).
 */
#include "tensor.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "mathfn.h"
#include "ppl_config.h"

/* ---- BLAS set-up ---- */

#if PPL_HAVE_OPENBLAS
/* OpenBLAS's pthread build starts a server thread per core when it loads, and
   each spins in sched_yield for about 2^28 cycles before it sleeps: a fifth
   of a short run's CPU, and a core taken from the chains.  With one BLAS
   thread they never get work, so they are stopped, by the function
   OpenBLAS's own fork handler calls (weak: a BLAS without it is fine). */
extern int blas_thread_shutdown_(void) __attribute__((weak));
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_one_thread(void) {
  if (getenv("OPENBLAS_NUM_THREADS")) return;
  openblas_set_num_threads(1);
  if (blas_thread_shutdown_) blas_thread_shutdown_();
}
void tensor_blas_init(void) { pthread_once(&blas_once, blas_one_thread); }
#else
void tensor_blas_init(void) {}
#endif

/* ---- shapes ---- */

static Tensor bad(void) { return (Tensor){.rank = -1}; }

size_t tensor_numel(Tensor x) {
  if (x.rank < 0) return 0;
  size_t n = 1;
  for (int i = 0; i < x.rank; i++) n *= (size_t)x.shape[i];
  return n;
}

static bool shape_ok(int rank, const int *shape) {
  if (rank < 0 || rank > TENSOR_MAXRANK) return false;
  for (int i = 0; i < rank; i++)
    if (shape[i] < 0) return false;
  return true;
}

static Tensor shaped(int rank, const int *shape) {
  Tensor x = {.rank = rank};
  for (int i = 0; i < rank; i++) x.shape[i] = shape[i];
  return x;
}

static const char *shape_str(Tensor x, char *buf, size_t sz) {
  size_t k = (size_t)snprintf(buf, sz, "[");
  for (int i = 0; i < x.rank && k < sz; i++)
    k += (size_t)snprintf(buf + k, sz - k, "%s%d", i ? ", " : "", x.shape[i]);
  if (k < sz) snprintf(buf + k, sz - k, "]");
  return buf;
}

static bool fail_shapes(Tape *t, const char *op, Tensor a, Tensor b) {
  char x[96], y[96];
  tape_fail(t, "tensor %s: shapes %s and %s do not fit", op, shape_str(a, x, sizeof x),
            shape_str(b, y, sizeof y));
  return false;
}

/* Both operands valid; an invalid one was reported where it was made. */
static bool valid(Tape *t, const char *op, Tensor a, Tensor b) {
  if (tensor_ok(a) && tensor_ok(b)) return true;
  tape_fail(t, "tensor %s: an operand is invalid", op);
  return false;
}

static double *vals(Tape *t, size_t n) { return tape_alloc_atomic(t, sizeof(double) * (n ? n : 1)); }

/* ---- making tensors ---- */

Tensor tensor_const(int rank, const int *shape, const double *data) {
  if (!shape_ok(rank, shape)) return bad();
  Tensor x = shaped(rank, shape);
  x.d = (double *)data;
  return x;
}

Tensor tensor_var(Tape *t, int rank, const int *shape, const double *data) {
  if (!shape_ok(rank, shape)) {
    tape_fail(t, "tensor_var: bad shape (rank %d)", rank);
    return bad();
  }
  Tensor x = tensor_const(rank, shape, data);
  x.node = tape_block(t, tensor_numel(x), NULL, NULL);
  return x;
}

typedef struct {
  size_t n;
  const int32_t *ids;
} GatherCtx;

static void gather_vjp(void *ctx, const double *g, double *adj) {
  const GatherCtx *c = ctx;
  for (size_t i = 0; i < c->n; i++)
    if (c->ids[i]) adj[c->ids[i]] += g[i];
}

Tensor tensor_gather(Tape *t, int rank, const int *shape, const double *v, const int32_t *ids) {
  if (!shape_ok(rank, shape)) {
    tape_fail(t, "tensor_gather: bad shape (rank %d)", rank);
    return bad();
  }
  Tensor x = shaped(rank, shape);
  size_t n = tensor_numel(x);
  x.d = vals(t, n);
  memcpy(x.d, v, sizeof(double) * n);
  size_t live = 0;
  bool run = n > 0 && ids[0] != 0;
  for (size_t i = 0; i < n; i++) {
    live += ids[i] != 0;
    run = run && ids[i] == ids[0] + (int32_t)i;
  }
  if (!live) return x;
  if (run) { /* already consecutive ids: the tensor is those nodes */
    x.node = ids[0];
    return x;
  }
  GatherCtx *c = tape_alloc(t, sizeof *c);
  int32_t *keep = tape_alloc_atomic(t, sizeof(int32_t) * n);
  memcpy(keep, ids, sizeof(int32_t) * n);
  *c = (GatherCtx){n, keep};
  x.node = tape_block(t, n, gather_vjp, c);
  return x;
}

Tensor tensor_keep(Tape *t, Tensor x) {
  if (!tensor_ok(x)) return x;
  size_t n = tensor_numel(x);
  double *d = vals(t, n);
  if (n) memcpy(d, x.d, sizeof(double) * n);
  x.d = d;
  return x;
}

Tensor tensor_reshape(Tape *t, Tensor x, int rank, const int *shape) {
  if (!tensor_ok(x)) return x;
  Tensor y = shape_ok(rank, shape) ? shaped(rank, shape) : bad();
  if (!tensor_ok(y) || tensor_numel(y) != tensor_numel(x)) {
    tape_fail(t, "tensor_reshape: %zu elements cannot take the new shape", tensor_numel(x));
    return bad();
  }
  y.d = x.d;
  y.node = x.node;
  return y;
}

Tensor tensor_slice(Tensor x, size_t off, size_t n) {
  Tensor v = x;
  v.rank = 1;
  v.shape[0] = (int)n;
  v.d = x.d + off;
  v.node = x.node ? x.node + (int32_t)off : 0;
  return v;
}

AdNum tensor_at(Tensor x, size_t i) {
  return (AdNum){x.d[i], x.node ? x.node + (int32_t)i : 0};
}

/* ---- matrix products ---- */

/* The rank-1 updates dB += a' g of vector-times-matrix products with the same
 * B (a network's layer called once per plate iteration), left by their blocks
 * and added at the sweep's flush as one product dB += A' G over the rows
 * saved: the BLAS-3 form of the same sum.  rows holds each call's input (in
 * the tape's arena) and gout the first id of its output. */
typedef struct {
  int K, M, n, cap;
  int32_t nb; /* B's first id */
  const double **rows;
  int32_t *gout;
  double *buf; /* cap * (K + M): the flush's A and G */
} OuterAcc;

static void outer_flush(void *ctx, double *adj) {
  const OuterAcc *o = ctx;
  int K = o->K, M = o->M, n = o->n;
  double *A = o->buf, *G = A + (size_t)n * K;
  /* the calls whose output adjoints are all zero add nothing: leave them out */
  int r = 0;
  for (int i = 0; i < n; i++) {
    const double *g = adj + o->gout[i];
    int j = 0;
    while (j < M && g[j] == 0) j++;
    if (j == M) continue;
    memcpy(A + (size_t)r * K, o->rows[i], sizeof(double) * (size_t)K);
    memcpy(G + (size_t)r * M, g, sizeof(double) * (size_t)M);
    r++;
  }
  if (r == 1) cblas_dger(CblasRowMajor, K, M, 1, A, 1, G, 1, adj + o->nb, M);
  else if (r > 1) cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, M, r, 1, A, K, G, M, 1, adj + o->nb, M);
}

/* Leave this call's dB += a' g to B's accumulator (made at its first call);
 * false when the tape takes no more flushes. */
static bool outer_defer(Tape *t, int K, int M, const double *a, int32_t nb, int32_t gout) {
  int32_t last = nb + (int32_t)((size_t)K * (size_t)M) - 1;
  OuterAcc *o = tape_deferred(t, nb, last, outer_flush);
  if (!o) {
    o = tape_alloc(t, sizeof *o);
    *o = (OuterAcc){K, M, 0, 0, nb, NULL, NULL, NULL};
    if (!tape_defer(t, nb, last, outer_flush, o)) return false;
  }
  if (o->n == o->cap) { /* the old arrays stay in the arena until the reset */
    int cap = o->cap ? 2 * o->cap : 64;
    const double **rows = tape_alloc(t, sizeof(double *) * (size_t)cap);
    int32_t *g = tape_alloc_atomic(t, sizeof(int32_t) * (size_t)cap);
    if (o->n) {
      memcpy(rows, o->rows, sizeof(double *) * (size_t)o->n);
      memcpy(g, o->gout, sizeof(int32_t) * (size_t)o->n);
    }
    o->rows = rows;
    o->gout = g;
    o->buf = tape_alloc_atomic(t, sizeof(double) * (size_t)cap * (size_t)(K + M));
    o->cap = cap;
  }
  o->rows[o->n] = a;
  o->gout[o->n++] = gout;
  return true;
}

/* C[N, M] = A[N, K] B[K, M], nb times with the operands' strides. */
typedef struct {
  int N, K, M, nb;
  const double *A, *B;
  int32_t na, nbn; /* operands' first ids, 0 = constant */
  bool defer;      /* dB is left to an OuterAcc */
} MatmulCtx;

static void gemm_fwd(int N, int K, int M, const double *A, const double *B, double *C) {
  if (M == 1) cblas_dgemv(CblasRowMajor, CblasNoTrans, N, K, 1, A, K, B, 1, 0, C, 1);
  else if (N == 1) cblas_dgemv(CblasRowMajor, CblasTrans, K, M, 1, B, M, A, 1, 0, C, 1);
  else cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, M, K, 1, A, K, B, M, 0, C, M);
}

void tensor_matmul_values(int N, int K, int M, const double *A, const double *B, double *C) {
  tensor_blas_init();
  if (K == 0 || N == 0 || M == 0) memset(C, 0, sizeof(double) * (size_t)N * (size_t)M);
  else gemm_fwd(N, K, M, A, B, C);
}

void tensor_gemv(bool trans, int m, int n, const double *A, const double *x, double beta,
                 double *y) {
  cblas_dgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, m, n, 1, A, n, x, 1, beta, y, 1);
}

void tensor_gemm(int m, int n, int k, const double *A, int lda, const double *B, int ldb,
                 double *C, int ldc) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, A, lda, B, ldb, 0, C, ldc);
}

static void matmul_vjp(void *ctx, const double *G, double *adj) {
  const MatmulCtx *c = ctx;
  int N = c->N, K = c->K, M = c->M;
  for (int b = 0; b < c->nb; b++) {
    const double *A = c->A + (size_t)b * N * K, *B = c->B + (size_t)b * K * M;
    const double *g = G + (size_t)b * N * M;
    if (c->na) { /* dA += G B' */
      double *dA = adj + c->na + (size_t)b * N * K;
      if (M == 1) cblas_dger(CblasRowMajor, N, K, 1, g, 1, B, 1, dA, K);
      else if (N == 1) cblas_dgemv(CblasRowMajor, CblasNoTrans, K, M, 1, B, M, g, 1, 1, dA, 1);
      else cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, K, M, 1, g, M, B, M, 1, dA, K);
    }
    if (c->nbn && !c->defer) { /* dB += A' G */
      double *dB = adj + c->nbn + (size_t)b * K * M;
      if (M == 1) cblas_dgemv(CblasRowMajor, CblasTrans, N, K, 1, A, K, g, 1, 1, dB, 1);
      else if (N == 1) cblas_dger(CblasRowMajor, K, M, 1, A, 1, g, 1, dB, M);
      else cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, M, N, 1, A, K, g, M, 1, dB, M);
    }
  }
}

static Tensor matmul(Tape *t, Tensor a, Tensor b, double *given) {
  if (!valid(t, "matmul", a, b)) return bad();
  tensor_blas_init();
  Tensor y;
  int N, K, M, nb = 1;
  if (a.rank == 3 && b.rank == 3 && !given) { /* batched */
    if (a.shape[0] != b.shape[0] || a.shape[2] != b.shape[1]) goto mismatch;
    nb = a.shape[0], N = a.shape[1], K = a.shape[2], M = b.shape[2];
    y = shaped(3, (int[]){nb, N, M});
  } else if (a.rank >= 2 && (b.rank == 2 || b.rank == 1)) {
    K = a.shape[a.rank - 1];
    if (b.shape[0] != K) goto mismatch;
    M = b.rank == 2 ? b.shape[1] : 1;
    N = (int)(tensor_numel(a) / (K ? (size_t)K : 1));
    if (!K) { /* rows of nothing: count them from the shape */
      N = 1;
      for (int i = 0; i < a.rank - 1; i++) N *= a.shape[i];
    }
    y = shaped(a.rank - 1, a.shape);
    if (b.rank == 2) y.shape[y.rank++] = M;
  } else if (a.rank == 1 && b.rank == 2) {
    N = 1, K = a.shape[0], M = b.shape[1];
    if (b.shape[0] != K) goto mismatch;
    y = shaped(1, &M);
  } else {
    goto mismatch;
  }
  size_t n = tensor_numel(y);
  y.d = given ? given : vals(t, n);
  if (!given) {
    if (K == 0 || n == 0) memset(y.d, 0, sizeof(double) * n);
    else
      for (int i = 0; i < nb; i++)
        gemm_fwd(N, K, M, a.d + (size_t)i * N * K, b.d + (size_t)i * K * M, y.d + (size_t)i * N * M);
  }
  if ((!a.node && !b.node) || n == 0 || K == 0) return y;
  MatmulCtx *c = tape_alloc(t, sizeof *c);
  *c = (MatmulCtx){N, K, M, nb, a.d, b.d, a.node, b.node, false};
  y.node = tape_block(t, n, matmul_vjp, c);
  /* a vector times a matrix of nodes: a rank-1 update of dB, deferred */
  if (b.node && N == 1 && nb == 1 && M > 1) c->defer = outer_defer(t, K, M, a.d, b.node, y.node);
  return y;
mismatch:
  fail_shapes(t, "matmul", a, b);
  return bad();
}

Tensor tensor_matmul(Tape *t, Tensor a, Tensor b) { return matmul(t, a, b, NULL); }
Tensor tensor_matmul_given(Tape *t, Tensor a, Tensor b, double *out) { return matmul(t, a, b, out); }

typedef struct {
  int r, c;
  int32_t nx;
} TransCtx;

static void transpose_vjp(void *ctx, const double *g, double *adj) {
  const TransCtx *c = ctx;
  double *dx = adj + c->nx;
  for (int i = 0; i < c->r; i++)
    for (int j = 0; j < c->c; j++) dx[(size_t)i * c->c + j] += g[(size_t)j * c->r + i];
}

Tensor tensor_transpose(Tape *t, Tensor x) {
  if (!valid(t, "transpose", x, x)) return bad();
  if (x.rank != 2) {
    fail_shapes(t, "transpose", x, x);
    return bad();
  }
  int r = x.shape[0], cols = x.shape[1];
  Tensor y = shaped(2, (int[]){cols, r});
  y.d = vals(t, tensor_numel(y));
  for (int i = 0; i < r; i++)
    for (int j = 0; j < cols; j++) y.d[(size_t)j * r + i] = x.d[(size_t)i * cols + j];
  if (!x.node || !tensor_numel(y)) return y;
  TransCtx *c = tape_alloc(t, sizeof *c);
  *c = (TransCtx){r, cols, x.node};
  y.node = tape_block(t, tensor_numel(y), transpose_vjp, c);
  return y;
}

/* ---- element-wise binary operations, b broadcast over a's leading dims ---- */

enum { EW_ADD, EW_SUB, EW_MUL };

typedef struct {
  int op;
  size_t n, nb; /* numel(a), numel(b); b repeats n / nb times */
  const double *a, *b;
  int32_t na, nbn;
} EwCtx;

static void ew_vjp(void *ctx, const double *g, double *adj) {
  const EwCtx *c = ctx;
  size_t n = c->n, nb = c->nb;
  if (c->na) {
    double *da = adj + c->na;
    if (c->op == EW_MUL)
      for (size_t i = 0; i < n; i++) da[i] += g[i] * c->b[i % nb];
    else
      for (size_t i = 0; i < n; i++) da[i] += g[i];
  }
  if (c->nbn) {
    double *db = adj + c->nbn;
    double s = c->op == EW_SUB ? -1 : 1;
    for (size_t r = 0; r < n; r += nb)
      for (size_t j = 0; j < nb; j++) db[j] += s * g[r + j] * (c->op == EW_MUL ? c->a[r + j] : 1);
  }
}

static Tensor elementwise(Tape *t, int op, Tensor a, Tensor b) {
  static const char *const name[] = {"add", "sub", "mul"};
  if (!valid(t, name[op], a, b)) return bad();
  bool fits = b.rank <= a.rank;
  for (int i = 0; fits && i < b.rank; i++) fits = b.shape[i] == a.shape[a.rank - b.rank + i];
  if (!fits) {
    fail_shapes(t, name[op], a, b);
    return bad();
  }
  size_t n = tensor_numel(a), nb = tensor_numel(b);
  Tensor y = shaped(a.rank, a.shape);
  y.d = vals(t, n);
  if (!nb) return y; /* n is 0 too */
  for (size_t r = 0; r < n; r += nb) {
    const double *x = a.d + r;
    double *z = y.d + r;
    switch (op) {
    case EW_ADD: for (size_t j = 0; j < nb; j++) z[j] = x[j] + b.d[j]; break;
    case EW_SUB: for (size_t j = 0; j < nb; j++) z[j] = x[j] - b.d[j]; break;
    default: for (size_t j = 0; j < nb; j++) z[j] = x[j] * b.d[j]; break;
    }
  }
  if (!a.node && !b.node) return y;
  EwCtx *c = tape_alloc(t, sizeof *c);
  *c = (EwCtx){op, n, nb, a.d, b.d, a.node, b.node};
  y.node = tape_block(t, n, ew_vjp, c);
  return y;
}

Tensor tensor_add(Tape *t, Tensor a, Tensor b) { return elementwise(t, EW_ADD, a, b); }
Tensor tensor_sub(Tape *t, Tensor a, Tensor b) { return elementwise(t, EW_SUB, a, b); }
Tensor tensor_mul(Tape *t, Tensor a, Tensor b) { return elementwise(t, EW_MUL, a, b); }

typedef struct {
  size_t n;
  double s;
  const double *x;
  int32_t ns, nx;
} ScaleCtx;

static void scale_vjp(void *ctx, const double *g, double *adj) {
  const ScaleCtx *c = ctx;
  if (c->nx)
    for (size_t i = 0; i < c->n; i++) adj[c->nx + (int32_t)i] += c->s * g[i];
  if (c->ns) {
    double d = 0;
    for (size_t i = 0; i < c->n; i++) d += g[i] * c->x[i];
    adj[c->ns] += d;
  }
}

Tensor tensor_scale(Tape *t, Tensor x, AdNum s) {
  if (!valid(t, "scale", x, x)) return bad();
  size_t n = tensor_numel(x);
  Tensor y = shaped(x.rank, x.shape);
  y.d = vals(t, n);
  for (size_t i = 0; i < n; i++) y.d[i] = s.v * x.d[i];
  if ((!x.node && !s.n) || !n) return y;
  ScaleCtx *c = tape_alloc(t, sizeof *c);
  *c = (ScaleCtx){n, s.v, x.d, s.n, x.node};
  y.node = tape_block(t, n, scale_vjp, c);
  return y;
}

/* ---- element-wise functions ---- */

#if PPL_HAVE_MVEC_TANH
#include <immintrin.h>
/* glibc's vector tanh (libmvec, within 1 ulp of libm's): 4 lanes with AVX2,
 * else 2 (x86-64's baseline).  Both are ifuncs picking the CPU's best code. */
extern __m128d _ZGVbN2v_tanh(__m128d);
__attribute__((target("avx2"))) extern __m256d _ZGVdN4v_tanh(__m256d);

__attribute__((target("avx2"))) static size_t tanh4(const double *a, double *z, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(z + i, _ZGVdN4v_tanh(_mm256_loadu_pd(a + i)));
  return i;
}

static size_t tanh2(const double *a, double *z, size_t n) {
  size_t i = 0;
  for (; i + 2 <= n; i += 2) _mm_storeu_pd(z + i, _ZGVbN2v_tanh(_mm_loadu_pd(a + i)));
  return i;
}
#endif

/* z = tanh(a) over n elements.  Hidden layers are mostly tanh, and libm's
 * scalar tanh was 9% of a VAE's training step (bench/vae); libmvec's takes a
 * fifth of its time on AVX2.  The lanes past the last full vector, and builds
 * without libmvec, use libm's. */
static void tanh_n(const double *a, double *z, size_t n) {
  size_t i = 0;
#if PPL_HAVE_MVEC_TANH
  i = __builtin_cpu_supports("avx2") ? tanh4(a, z, n) : tanh2(a, z, n);
#endif
  for (; i < n; i++) z[i] = tanh(a[i]);
}

typedef struct {
  TensorAct f;
  size_t n;
  const double *x, *y;
  int32_t nx;
} ActCtx;

static void act_vjp(void *ctx, const double *g, double *adj) {
  const ActCtx *c = ctx;
  const double *x = c->x, *y = c->y;
  double *dx = adj + c->nx;
  size_t n = c->n;
  switch (c->f) {
  case TENSOR_RELU: for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? g[i] : 0; break;
  case TENSOR_TANH: for (size_t i = 0; i < n; i++) dx[i] += g[i] * (1 - y[i] * y[i]); break;
  case TENSOR_SIGMOID: for (size_t i = 0; i < n; i++) dx[i] += g[i] * y[i] * (1 - y[i]); break;
  case TENSOR_SOFTPLUS: for (size_t i = 0; i < n; i++) dx[i] += g[i] * m_inv_logit(x[i]); break;
  case TENSOR_ELU: for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? g[i] : g[i] * (y[i] + 1); break;
  case TENSOR_EXP: for (size_t i = 0; i < n; i++) dx[i] += g[i] * y[i]; break;
  case TENSOR_SQUARE: for (size_t i = 0; i < n; i++) dx[i] += 2 * g[i] * x[i]; break;
  default: for (size_t i = 0; i < n; i++) dx[i] += g[i]; break;
  }
}

/* z = f(a) over n reals; false for an unknown f (z may be a: each element
   is read before it is written) */
static bool act_values(TensorAct f, size_t n, const double *a, double *z) {
  switch (f) {
  case TENSOR_IDENTITY: if (z != a) memmove(z, a, sizeof(double) * n); break;
  case TENSOR_RELU: for (size_t i = 0; i < n; i++) z[i] = a[i] > 0 ? a[i] : 0; break;
  case TENSOR_TANH: tanh_n(a, z, n); break;
  case TENSOR_SIGMOID: for (size_t i = 0; i < n; i++) z[i] = m_inv_logit(a[i]); break;
  case TENSOR_SOFTPLUS: for (size_t i = 0; i < n; i++) z[i] = m_log1p_exp(a[i]); break;
  case TENSOR_ELU: for (size_t i = 0; i < n; i++) z[i] = a[i] > 0 ? a[i] : expm1(a[i]); break;
  case TENSOR_EXP: for (size_t i = 0; i < n; i++) z[i] = exp(a[i]); break;
  case TENSOR_SQUARE: for (size_t i = 0; i < n; i++) z[i] = a[i] * a[i]; break;
  default: return false;
  }
  return true;
}

void tensor_act_values(TensorAct f, size_t n, const double *a, double *z) {
  if (!act_values(f, n, a, z))
    for (size_t i = 0; i < n; i++) z[i] = NAN; /* not a TensorAct: garbage, never a crash */
}

Tensor tensor_act(Tape *t, TensorAct f, Tensor x) {
  if (!valid(t, "activation", x, x)) return bad();
  if (f == TENSOR_IDENTITY) return x;
  size_t n = tensor_numel(x);
  Tensor y = shaped(x.rank, x.shape);
  y.d = vals(t, n);
  if (!act_values(f, n, x.d, y.d)) {
    tape_fail(t, "tensor activation: unknown function %d", (int)f);
    return bad();
  }
  if (!x.node || !n) return y;
  ActCtx *c = tape_alloc(t, sizeof *c);
  *c = (ActCtx){f, n, x.d, y.d, x.node};
  y.node = tape_block(t, n, act_vjp, c);
  return y;
}

/* ---- softmax and friends ---- */

typedef struct {
  size_t rows, cols;
  const double *y;
  int32_t nx;
} LsmCtx;

/* d(log_softmax)'g = g - softmax * sum(g), row by row */
static void lsm_vjp(void *ctx, const double *g, double *adj) {
  const LsmCtx *c = ctx;
  for (size_t r = 0; r < c->rows; r++) {
    const double *gr = g + r * c->cols, *yr = c->y + r * c->cols;
    double *dx = adj + c->nx + r * c->cols, s = 0;
    for (size_t j = 0; j < c->cols; j++) s += gr[j];
    for (size_t j = 0; j < c->cols; j++) dx[j] += gr[j] - exp(yr[j]) * s;
  }
}

Tensor tensor_log_softmax(Tape *t, Tensor x) {
  if (!valid(t, "log_softmax", x, x)) return bad();
  if (x.rank < 1) {
    fail_shapes(t, "log_softmax", x, x);
    return bad();
  }
  size_t n = tensor_numel(x), cols = (size_t)x.shape[x.rank - 1], rows = cols ? n / cols : 0;
  Tensor y = shaped(x.rank, x.shape);
  y.d = vals(t, n);
  for (size_t r = 0; r < rows; r++) {
    const double *a = x.d + r * cols;
    double mx = -INFINITY, s = 0;
    for (size_t j = 0; j < cols; j++) mx = a[j] > mx ? a[j] : mx;
    for (size_t j = 0; j < cols; j++) s += exp(a[j] - mx);
    double lse = mx + log(s);
    for (size_t j = 0; j < cols; j++) y.d[r * cols + j] = a[j] - lse;
  }
  if (!x.node || !n) return y;
  LsmCtx *c = tape_alloc(t, sizeof *c);
  *c = (LsmCtx){rows, cols, y.d, x.node};
  y.node = tape_block(t, n, lsm_vjp, c);
  return y;
}

typedef struct {
  size_t rows, cols;
  const int *idx;
  int32_t nx;
} PickCtx;

static void pick_vjp(void *ctx, const double *g, double *adj) {
  const PickCtx *c = ctx;
  for (size_t r = 0; r < c->rows; r++) adj[c->nx + (int32_t)(r * c->cols + (size_t)c->idx[r])] += g[r];
}

Tensor tensor_pick(Tape *t, Tensor x, const int *idx) {
  if (!valid(t, "pick", x, x)) return bad();
  if (x.rank != 1 && x.rank != 2) {
    fail_shapes(t, "pick", x, x);
    return bad();
  }
  size_t rows = x.rank == 2 ? (size_t)x.shape[0] : 1, cols = (size_t)x.shape[x.rank - 1];
  for (size_t r = 0; r < rows; r++)
    if (idx[r] < 0 || (size_t)idx[r] >= cols) {
      tape_fail(t, "tensor pick: index %d of row %zu is outside 0..%zu", idx[r], r, cols - 1);
      return bad();
    }
  Tensor y = shaped(x.rank - 1, x.shape);
  y.d = vals(t, rows);
  for (size_t r = 0; r < rows; r++) y.d[r] = x.d[r * cols + (size_t)idx[r]];
  if (!x.node || !rows) return y;
  int *keep = tape_alloc_atomic(t, sizeof(int) * rows);
  memcpy(keep, idx, sizeof(int) * rows);
  PickCtx *c = tape_alloc(t, sizeof *c);
  *c = (PickCtx){rows, cols, keep, x.node};
  y.node = tape_block(t, rows, pick_vjp, c);
  return y;
}

/* ---- reductions ---- */

typedef struct {
  size_t n;
  double w;
  int32_t nx;
} SumCtx;

static void sum_vjp(void *ctx, const double *g, double *adj) {
  const SumCtx *c = ctx;
  double d = c->w * g[0];
  double *dx = adj + c->nx;
  for (size_t i = 0; i < c->n; i++) dx[i] += d;
}

static AdNum reduce(Tape *t, Tensor x, bool mean) {
  if (!valid(t, mean ? "mean" : "sum", x, x)) return ad_const(NAN);
  size_t n = tensor_numel(x);
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x.d[i];
  double w = mean ? 1.0 / (double)n : 1;
  AdNum r = ad_const(s * w);
  if (!x.node || !n) return r;
  SumCtx *c = tape_alloc(t, sizeof *c);
  *c = (SumCtx){n, w, x.node};
  r.n = tape_block(t, 1, sum_vjp, c);
  return r;
}

AdNum tensor_sum(Tape *t, Tensor x) { return reduce(t, x, false); }
AdNum tensor_mean(Tape *t, Tensor x) { return reduce(t, x, true); }
