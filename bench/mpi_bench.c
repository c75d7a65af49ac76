/* mpi_bench.c — the log density's gradient split by rows over MPI ranks
 * (inference/ld_shard.h): logistic regression with N rows and K predictors
 * (default 1,000,000 x 100), compiled by the JIT.  Run under
 * `mpirun -n R` (bench/mpi_bench.sh runs R = 1, 2, 4 side by side and
 * prints the ratios); alone it is R = 1.
 *
 *   mpi_bench [N] [K] [REPS] [BLOCKS]
 *
 * BLOCKS (default 0: ld_shard's own number, LD_SHARD_BLOCKS) tries another
 * cut of the rows: smaller blocks stay in cache between the forward pass and
 * the adjoint, at more per-block work (measured in docs/scaling.md).
 *
 * Rank 0 prints one line: the wall time of one gradient (least and median of
 * REPS, all ranks started together), each rank's CPU time per gradient
 * (the largest), the exchange's share (the allgather of the blocks' parts
 * timed alone), and for R = 1 the unsharded gradient's time, the compute
 * per row and the load average.  Every rank makes the same data (a fixed
 * generator), so nothing is read from disk. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "inference/ld_shard.h"
#include "ppl_config.h"
#include "../tests/inference/test_engines_util.h"

#if PPL_HAVE_MPI
#include <mpi.h>
#endif

static const char *SRC =
    "data { int<lower=1> N; int<lower=1> K; matrix[N, K] X; int<lower=0, upper=1> y[N]; }\n"
    "model {\n"
    "  real alpha ~ normal(0, 2.5);\n"
    "  vector[K] beta ~ normal(0, 2.5);\n"
    "  y ~ bernoulli_logit(alpha + X * beta);\n"
    "}\n";

static double wall(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*s >> 11) / 9007199254740992.0;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* all ranks leave together (an allreduce is the only exchange mpi_run.h has) */
static void sync_all(const MpiComm *c) {
  bool f = false;
  mpi_allreduce_or(c, &f);
}

int main(int argc, char **argv) {
  long N = argc > 1 ? atol(argv[1]) : 1000000;
  int K = argc > 2 ? atoi(argv[2]) : 100;
  int reps = argc > 3 ? atoi(argv[3]) : 10;
  int nblocks = argc > 4 ? atoi(argv[4]) : 0; /* 0: ld_shard's own choice */
  const void *world = NULL;
#if PPL_HAVE_MPI
  MPI_Comm w = MPI_COMM_WORLD;
  if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE")) {
    MPI_Init(&argc, &argv);
    world = &w;
  }
#endif
  gc_init();
  const MpiComm *c = mpi_comm_new(world);
  int R = mpi_size(c), rank = mpi_rank(c);

  uint64_t s = 2026;
  Value X = val_mat((int)N, K);
  for (size_t k = 0; k < (size_t)N * (size_t)K; k++) X.t->d[k] = (2 * lcg(&s) - 1) / sqrt((double)K);
  Value y = val_arr((int)N);
  for (long i = 0; i < N; i++) y.a->e[i] = val_int(lcg(&s) < 0.5);
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(N));
  tdata_add(&td, "K", val_int(K));
  tdata_add(&td, "X", X);
  tdata_add(&td, "y", y);
  Diag d;
  Interp *in = tcompile(SRC, &td, &d);
  const char *why = NULL;
  double t0 = wall();
  LdShard *sh = in ? ld_shard_new(in, c, nblocks, true, &why, &d) : NULL;
  double setup = wall() - t0;
  if (!sh) {
    fprintf(stderr, "mpi_bench: %s\n", why ? why : d.msg);
    return 1;
  }
  size_t dim = (size_t)K + 1;
  double *th = gc_alloc_atomic(sizeof(double) * dim), *g = gc_alloc_atomic(sizeof(double) * dim);
  for (size_t i = 0; i < dim; i++) th[i] = 0.1 * sin((double)i);
  double lp;
  for (int k = 0; k < 2; k++) ld_shard_eval_grad(sh, th, &lp, g, &d); /* warm */
  double *t = gc_alloc_atomic(sizeof(double) * (size_t)reps);
  long e0, e1;
  double b0, b1, x0, x1;
  ld_shard_times(sh, &e0, &b0, &x0);
  double c0 = cpu();
  for (int k = 0; k < reps; k++) {
    sync_all(c);
    double a = wall();
    ld_shard_eval_grad(sh, th, &lp, g, &d);
    t[k] = wall() - a;
  }
  double mycpu = (cpu() - c0) / reps, maxcpu = mycpu;
  ld_shard_times(sh, &e1, &b1, &x1);
  double blk = (b1 - b0) / (double)(e1 - e0), maxblk = blk;
  /* the largest CPU time of any rank, all of it and in its blocks */
  {
    double *all = gc_alloc_atomic(sizeof(double) * (size_t)R * 2), mine[2] = {mycpu, blk};
    mpi_allgather(c, mine, 2, all);
    for (int r = 0; r < R; r++) maxcpu = fmax(maxcpu, all[2 * r]), maxblk = fmax(maxblk, all[2 * r + 1]);
  }
  /* the exchange alone: the allgather of the same payload */
  int first, count, nb = ld_shard_blocks(sh, &first, &count);
  int per_rank = (nb + R - 1) / R;
  size_t n = (dim + 2) * (size_t)per_rank;
  double *part = gc_alloc_atomic(sizeof(double) * n), *every = gc_alloc_atomic(sizeof(double) * n * (size_t)R);
  double xg = 1e9;
  for (int k = 0; k < 50; k++) {
    sync_all(c);
    double a = wall();
    mpi_allgather(c, part, n, every);
    xg = fmin(xg, wall() - a);
  }
  double lat = 1e9; /* one double's allreduce: the latency alone */
  for (int k = 0; k < 200; k++) {
    double one = 1;
    double a = wall();
    mpi_allreduce_sum(c, &one, 1);
    lat = fmin(lat, wall() - a);
  }
  qsort(t, (size_t)reps, sizeof(double), cmp_d);
  double plain = NAN;
  if (R == 1) { /* the unsharded compiled gradient, for the overhead of the blocks */
    LogDensity *ld = ld_new(in, &d);
    ld_use_jit(ld, false);
    LdWork *wk = ld_work_new(ld);
    ld_eval_grad_w(wk, th, &lp, g, &d);
    plain = 1e9;
    for (int k = 0; k < reps; k++) {
      double a = wall();
      ld_eval_grad_w(wk, th, &lp, g, &d);
      plain = fmin(plain, wall() - a);
    }
  }
  if (rank == 0) {
    double load[3] = {NAN, NAN, NAN};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
      if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = NAN;
      fclose(f);
    }
    printf("ranks %d  N %ld  K %d  blocks %d  setup %.2f s  gradient wall: least %.2f ms, median %.2f ms"
           "  cpu/rank %.2f ms  blocks-cpu/rank %.2f ms  allgather %.1f us (%zu doubles/rank)"
           "  allreduce(1) %.1f us  lp %.10g",
           R, N, K, nb, setup, 1e3 * t[0], 1e3 * t[reps / 2], 1e3 * maxcpu, 1e3 * maxblk, 1e6 * xg, n,
           1e6 * lat, lp);
    if (R == 1) printf("  unsharded %.2f ms  per row %.1f ns", 1e3 * plain, 1e9 * plain / (double)N);
    printf("  load %.2f\n", load[0]);
  }
  ld_shard_free(sh);
#if PPL_HAVE_MPI
  if (world) MPI_Finalize();
#endif
  return 0;
}
