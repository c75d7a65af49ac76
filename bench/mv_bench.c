/* mv_bench.c — gradients of Gaussian-process programs: the matrix-valued
 * builtins (gp_exp_quad_cov, add_diag, cholesky_decompose) and whole-value
 * families (multi_normal, multi_normal_cholesky), JIT against the
 * interpreter, in gradients per CPU-second measured side by side in one run.
 *
 *   mv_bench [SECONDS]              the table (default 1 s a cell), from the source root
 *   mv_bench --count N MODEL DATA [--no-jit]
 *                                   exactly N gradients after the first (which
 *                                   compiles): run it under callgrind with two
 *                                   N to get instructions per gradient,
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null build/bench/mv_bench --count 2000 ...
 *
 * The models: posteriordb's gp_regr (marginal GP, N = 11), the Poisson GP
 * with a latent f (examples/gp_pois_regr), a marginal GP over points in the
 * plane (examples/gp_2d, N = 20), a centred latent GP (bench/gp/gp_latent). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* its gradient rate and the load average; the rest serves nuts_bench and pdb_bench */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "nuts_peer.h"
#pragma GCC diagnostic pop

static int run_count(const char *model, const char *data, bool no_jit, long count) {
  ppl_context *ctx;
  ppl_model *m;
  size_t n = 0;
  int rc = 1;
  if (!np_open(model, data, no_jit, &ctx, &m, &n)) {
    fprintf(stderr, "mv_bench: %s: cannot load it with %s\n", model, data);
    goto done;
  }
  double *theta = malloc(sizeof(double) * n), *g = malloc(sizeof(double) * n), lp = 0;
  for (size_t i = 0; i < n; i++) theta[i] = 0.1;
  rc = ppl_log_density_gradient(m, theta, n, &lp, g) == PPL_OK ? 0 : 1;
  for (long k = 0; k < count && rc == 0; k++) ppl_log_density_gradient(m, theta, n, &lp, g);
  printf("%s: %ld gradients (%s), lp %.17g\n", model, count, no_jit ? "interpreter" : "JIT", lp);
  free(theta);
  free(g);
done:
  ppl_model_free(m);
  ppl_context_free(ctx);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 5 && !strcmp(argv[1], "--count"))
    return run_count(argv[3], argv[4], argc > 5 && !strcmp(argv[5], "--no-jit"),
                     strtol(argv[2], NULL, 10));
  double secs = argc > 1 ? atof(argv[1]) : 1.0;
  if (!(secs > 0)) secs = 1.0;
  static const char *const models[][2] = {
      {"examples/posteriordb/gp_pois_regr-gp_regr.ppl",
       "examples/posteriordb/gp_pois_regr-gp_regr.data.json"},
      {"examples/gp_pois_regr.ppl", "examples/gp_pois_regr.data.json"},
      {"examples/gp_2d.ppl", "examples/gp_2d.data.json"},
      {"bench/gp/gp_latent.ppl", "bench/gp/gp_latent.data.json"},
  };
  printf("%-48s %12s %12s %8s\n", "program", "grad/s JIT", "grad/s int", "JIT/int");
  for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
    double j = np_grad_rate(models[i][0], models[i][1], false, secs);
    double t = np_grad_rate(models[i][0], models[i][1], true, secs);
    printf("%-48s %12.0f %12.0f %8.2f\n", models[i][0], j, t, j / t);
  }
  printf("\ngradients per CPU-second through ppl.h (one thread; int: --no-jit); load %.1f\n",
         np_loadavg());
  return 0;
}
