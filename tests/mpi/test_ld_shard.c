/* test_ld_shard.c — the log density split by data rows (inference/ld_shard.h,
 * ir/shard.h); TAP.
 *
 * Alone: for a vectorised logistic regression, a loop over rows and a
 * vector[N] declaration, interpreted and compiled, with 1, 4, 7 and the
 * default number of blocks, the sharded log density and gradient equal the
 * unsharded ones (ld_eval_grad) to 1e-12 at several points; the programs
 * whose rows are not independent are refused with the reason and place.
 * Under mpirun (-n R): every rank's sharded density over the R ranks equals,
 * bit for bit, the one computed with every block on one rank; rank 0 prints
 * the TAP lines. */
#include "inference/ld_shard.h"
#include "ir/shard.h"
#include "ppl_config.h"
#include "../inference/test_engines_util.h"

#if PPL_HAVE_MPI
#include <mpi.h>
#endif
#include <stdio.h>

static const char *SRC_LOGIT =
    "data { int<lower=1> N; int K; matrix[N, K] X; int<lower=0, upper=1> y[N]; }\n"
    "model {\n"
    "  real alpha ~ normal(0, 2.5);\n"
    "  vector[K] beta ~ normal(0, 2.5);\n"
    "  y ~ bernoulli_logit(alpha + X * beta);\n"
    "}\n";
static const char *SRC_LOOP =
    "data { int N; vector[N] x; vector[N] y; }\n"
    "model {\n"
    "  real a ~ normal(0, 5);\n"
    "  real b ~ normal(0, 5);\n"
    "  real<lower=0> sigma ~ lognormal(0, 1);\n"
    "  for (n in 1:N) {\n"
    "    real m = a + b * x[n];\n"
    "    y[n] ~ student_t(4, m, sigma);\n"
    "  }\n"
    "}\n";
static const char *SRC_DECL =
    "data { int N; vector[N] x; vector[N] y; }\n"
    "model {\n"
    "  real a ~ normal(0, 5);\n"
    "  real b ~ normal(0, 5);\n"
    "  real<lower=0> sigma ~ exponential(1);\n"
    "  vector[N] mu = a + x * b;\n"
    "  y ~ normal(exp(mu / 10), sigma);\n"
    "}\n";

#define NR 103
#define NK 3

static double lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*s >> 11) / 9007199254740992.0;
}

static Interp *load(const char *src, Diag *d) {
  uint64_t s = 42;
  double x[NR], y[NR];
  int yi[NR];
  Value X = val_mat(NR, NK);
  for (int i = 0; i < NR; i++) {
    x[i] = 4 * lcg(&s) - 2;
    y[i] = 1 + 0.5 * x[i] + lcg(&s);
    yi[i] = lcg(&s) < 0.4;
  }
  for (int k = 0; k < NR * NK; k++) X.t->d[k] = 2 * lcg(&s) - 1;
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(NR));
  tdata_add(&td, "K", val_int(NK));
  tdata_add(&td, "X", X);
  tdata_add(&td, "x", tvec(NR, x));
  tdata_add(&td, "y", src == SRC_LOGIT ? tints(NR, yi) : tvec(NR, y));
  return tcompile(src, &td, d);
}

/* sharded against unsharded, alone */
static void test_equal(const char *name, const char *src) {
  Diag d;
  Interp *in = load(src, &d);
  if (!tap_ok(in != NULL, "%s: compiles", name)) return;
  LogDensity *ld = ld_new(in, &d);
  size_t dim = ld_dim(ld);
  double th[8], lp0, g0[8], lp, g[8];
  static const int blocks[] = {1, 4, 7, 0};
  for (int jit = 0; jit < 2; jit++)
    for (int b = 0; b < 4; b++) {
      const char *why = NULL;
      diag_init(&d);
      LdShard *s = ld_shard_new(in, NULL, blocks[b], jit, &why, &d);
      if (!tap_ok(s != NULL, "%s (%s, %d blocks): sharded (%s)", name, jit ? "JIT" : "interpreted",
                  blocks[b], why ? why : d.msg))
        continue;
      int nb = ld_shard_blocks(s, NULL, NULL);
      double worst = 0, worstg = 0;
      bool ok = true;
      uint64_t seed = 7;
      for (int pt = 0; pt < 4; pt++) {
        for (size_t i = 0; i < dim; i++) th[i] = 2 * lcg(&seed) - 1;
        ok &= ld_eval_grad(ld, th, &lp0, g0, &d) && ld_shard_eval_grad(s, th, &lp, g, &d);
        worst = fmax(worst, fabs(lp - lp0) / fmax(1, fabs(lp0)));
        for (size_t i = 0; i < dim; i++) worstg = fmax(worstg, fabs(g[i] - g0[i]) / fmax(1, fabs(g0[i])));
      }
      tap_ok(ok && worst <= 1e-12 && worstg <= 1e-12,
             "%s (%s, %d blocks): log density and gradient equal the unsharded ones "
             "(largest relative differences %.1e, %.1e)",
             name, jit ? "JIT" : "interpreted", nb, worst, worstg);
      ld_shard_free(s);
    }
}

static void test_refused(const char *src, const char *want, const char *name) {
  Diag d;
  IrProgram *p = tlower(src, &d);
  if (!tap_ok(p != NULL, "%s: compiles (%s)", name, d.msg)) return;
  IrShard *s = ir_shard_plan(p);
  tap_ok(s->why && strstr(s->why, want), "%s: not sharded: %s", name, s->why ? s->why : "(sharded)");
}

static void test_plans(void) {
  Diag d;
  IrShard *s = ir_shard_plan(tlower(SRC_LOGIT, &d));
  tap_streq(ir_shard_print(s),
            "sharded (MPI): the rows of N (X, y) are split between the ranks in 5:3 ~ bernoulli_logit\n",
            "the logistic regression: its observation is sharded");
  s = ir_shard_plan(tlower(SRC_LOOP, &d));
  tap_ok(!s->why && s->nstmts == 1 && !strcmp(s->what[0], "for (n in 1:N)"),
         "the loop over rows is sharded");
  test_refused("data { int N; vector[N] y; }\n"
               "model { real mu ~ normal(0, 1); real t = 0;\n"
               "  for (n in 1:N) { t += y[n]; y[n] ~ normal(mu, 1); }\n"
               "  target += -t; }\n",
               "carries 't' from row to row", "a running sum");
  test_refused("data { int N; vector[N] y; }\n"
               "model { real mu ~ normal(0, 1);\n"
               "  for (n in 1:N) if (n < N) y[n + 1] ~ normal(y[n], exp(mu)); }\n",
               "test.ppl:3:", "y[n + 1]");
  test_refused("data { int N; vector[N] y; }\n"
               "model { real mu ~ normal(0, 1);\n"
               "  for (n in 1:N) y[n] ~ normal(mu * n, 1); }\n",
               "test.ppl:3:35: the row index 'n' is used other than to pick row n", "a trend in n");
  test_refused("data { int N; vector[N] y; }\n"
               "model { vector[N] z ~ normal(0, 1); y ~ normal(z, 1); }\n",
               "a latent has 'N' elements", "a latent per row");
  test_refused("data { int N; vector[N] y; }\n"
               "model { real mu ~ normal(sum(y), 10); y ~ normal(mu, 1); }\n",
               "'y' is used other than row by row", "sum(y)");
  test_refused("data { int N; vector[N] y; }\n"
               "model { real mu ~ normal(0, 10); }\n",
               "no statement sums over the rows of 'N'", "no observation of the rows");
}

int main(int argc, char **argv) {
  const void *comm = NULL;
#if PPL_HAVE_MPI
  MPI_Comm world = MPI_COMM_WORLD;
  int rank = 0;
  if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE")) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(world, &rank);
    comm = &world;
    if (rank != 0 && !freopen("/dev/null", "w", stdout)) return 1;
  }
#endif
  gc_init();
  if (!comm) {
    test_plans();
    test_equal("logistic regression (vectorised)", SRC_LOGIT);
    test_equal("regression (loop over rows)", SRC_LOOP);
    test_equal("vector[N] declaration", SRC_DECL);
  } else {
    MpiComm *c = mpi_comm_new(comm);
    int R = mpi_size(c);
    const char *names[] = {"logistic regression", "loop over rows", "vector[N] declaration"};
    const char *srcs[] = {SRC_LOGIT, SRC_LOOP, SRC_DECL};
    for (int m = 0; m < 3; m++)
      for (int jit = 0; jit < 2; jit++) {
        Diag d;
        Interp *in = load(srcs[m], &d);
        const char *why = NULL;
        LdShard *all = ld_shard_new(in, c, 0, jit, &why, &d);
        LdShard *one = ld_shard_new(in, NULL, 0, jit, &why, &d);
        if (!tap_ok(all && one, "%s: sharded over %d ranks", names[m], R)) continue;
        int first, count;
        ld_shard_blocks(all, &first, &count);
        size_t dim = ld_dim(ld_new(in, &d));
        double th[8], lpa, ga[8], lp1, g1[8];
        bool same = true;
        uint64_t seed = 11;
        for (int pt = 0; pt < 4; pt++) {
          for (size_t i = 0; i < dim; i++) th[i] = 2 * lcg(&seed) - 1;
          same &= ld_shard_eval_grad(all, th, &lpa, ga, &d) && ld_shard_eval_grad(one, th, &lp1, g1, &d) &&
                  memcmp(&lpa, &lp1, sizeof lpa) == 0 && memcmp(ga, g1, sizeof(double) * dim) == 0;
        }
        /* every rank's verdict, on rank 0's line */
        bool bad = !same;
        mpi_allreduce_or(c, &bad);
        tap_ok(!bad, "%s (%s): the density over %d ranks (rank 0: blocks %d..%d) is the one-rank "
               "density bit for bit, on every rank", names[m], jit ? "JIT" : "interpreted", R, first,
               first + count - 1);
      }
  }
  int rc = tap_done();
#if PPL_HAVE_MPI
  if (comm) MPI_Finalize();
#endif
  return rc;
}
