/* host.c — a host program embedding libppl through ppl.h: registers a C
 * function callable from the model, compiles a model from a string, passes
 * data as typed arrays, runs inference, reads the summary and evaluates the
 * log density; then runs two independent contexts in two threads at once.
 * Built and run by the test suite (it exits non-zero if anything is off). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ppl.h"

/* A host function: the model calls it as shifted(x, s). */
static double shifted(void *ud, const double *args, int nargs, int *err) {
  (void)nargs;
  double offset = *(const double *)ud;
  if (!isfinite(args[0])) {
    *err = 1;
    return 0;
  }
  return args[0] + args[1] + offset;
}

static const char *model_src =
    "data { int N; vector[N] y; }\n"
    "model {\n"
    "  real mu ~ normal(0, 10);\n"
    "  y ~ normal(shifted(mu, 0.5), 1);\n"
    "}\n";

static int fail(ppl_context *ctx, const char *what) {
  fprintf(stderr, "host: %s failed: %s\n", what, ppl_errmsg(ctx));
  return 1;
}

/* Compile, give data, run; return the posterior mean of mu in *mean. */
static int run_once(unsigned seed, double *mean, int verbose) {
  double offset = -0.5; /* shifted(mu, 0.5) = mu */
  ppl_context *ctx = ppl_context_new(NULL);
  if (!ctx) return 1;
  ppl_model *m = NULL;
  ppl_result *r = NULL;
  int rc = 1;
  if (ppl_register_function(ctx, "shifted", 2, shifted, &offset) != PPL_OK) {
    rc = fail(ctx, "ppl_register_function");
    goto out;
  }
  if (ppl_compile_string(ctx, model_src, "embedded.ppl", &m) != PPL_OK) {
    rc = fail(ctx, "ppl_compile_string");
    goto out;
  }
  int64_t n = 20;
  double y[20];
  for (int i = 0; i < 20; i++) y[i] = 3.0 + 0.1 * (i - 9.5); /* mean 3 */
  int dims[1] = {20};
  if (ppl_data_int(m, "N", &n, 0, NULL) != PPL_OK || ppl_data_real(m, "y", y, 1, dims) != PPL_OK ||
      ppl_data_commit(m) != PPL_OK) {
    rc = fail(ctx, "data");
    goto out;
  }
  /* log density at mu = 3 on the unconstrained scale (mu is unconstrained) */
  size_t dim = 0;
  double theta = 3.0, lp = 0;
  if (ppl_num_unconstrained(m, &dim) != PPL_OK || dim != 1 ||
      ppl_log_density(m, &theta, 1, &lp) != PPL_OK) {
    rc = fail(ctx, "ppl_log_density");
    goto out;
  }
  /* by hand: normal(3 | 0, 10) + sum normal(y_i | 3, 1) */
  double want = -0.5 * 0.09 - log(10.0) - 0.5 * log(2 * M_PI);
  for (int i = 0; i < 20; i++) want += -0.5 * (y[i] - 3) * (y[i] - 3) - 0.5 * log(2 * M_PI);
  if (fabs(lp - want) > 1e-10 * fabs(want)) {
    fprintf(stderr, "host: log density %.15g, expected %.15g\n", lp, want);
    goto out;
  }
  /* its gradient: d/dmu = -mu/100 + sum (y_i - mu) */
  double grad = 0, lp2 = 0, want_grad = -3.0 / 100;
  for (int i = 0; i < 20; i++) want_grad += y[i] - 3;
  if (ppl_log_density_gradient(m, &theta, 1, &lp2, &grad) != PPL_OK) {
    rc = fail(ctx, "ppl_log_density_gradient");
    goto out;
  }
  if (fabs(grad - want_grad) > 1e-9 || fabs(lp2 - lp) > 1e-12 * fabs(lp)) {
    fprintf(stderr, "host: gradient %.15g, expected %.15g\n", grad, want_grad);
    goto out;
  }
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "mh";
  ro.chains = 2;
  ro.warmup = 300;
  ro.draws = 1000;
  ro.seed = seed;
  if (ppl_run(m, &ro, &r) != PPL_OK) {
    rc = fail(ctx, "ppl_run");
    goto out;
  }
  int col = ppl_result_column_index(r, "mu");
  ppl_summary s;
  if (col < 0 || ppl_result_summary(r, col, &s) != PPL_OK) {
    rc = fail(ctx, "ppl_result_summary");
    goto out;
  }
  /* exact posterior: precision 1/100 + 20, mean 20*3/(20.01) */
  double post_sd = 1 / sqrt(0.01 + 20), post_mean = 60 / 20.01;
  if (fabs(s.mean - post_mean) > 4 * s.mcse + 1e-3 * post_sd) {
    fprintf(stderr, "host: posterior mean %g (mcse %g), expected %g\n", s.mean, s.mcse, post_mean);
    goto out;
  }
  if (verbose)
    printf("mu: mean %.3f (exact %.3f), sd %.3f (exact %.3f), engine %s\n", s.mean, post_mean, s.sd,
           post_sd, ppl_result_engine(r));
  *mean = s.mean;
  rc = 0;
out:
  ppl_result_free(r);
  ppl_model_free(m);
  ppl_context_free(ctx);
  return rc;
}

typedef struct {
  unsigned seed;
  double mean;
  int rc;
} Job;

static void *worker(void *arg) {
  Job *j = arg;
  j->rc = run_once(j->seed, &j->mean, 0);
  return NULL;
}

int main(void) {
  if (ppl_version() != PPL_VERSION_NUMBER) {
    fprintf(stderr, "host: header %d, library %d\n", PPL_VERSION_NUMBER, ppl_version());
    return 1;
  }
  printf("libppl %s\n", ppl_version_string());
  double mean;
  if (run_once(11, &mean, 1)) return 1;

  /* errors come back as a status and a positioned message, never an exit */
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  ppl_status st = ppl_compile_string(ctx, "model { real x ~ normal(0, 1) }", "bad.ppl", &m);
  const char *file;
  int line, col;
  ppl_errpos(ctx, &file, &line, &col);
  printf("error: %s (status %s, line %d)\n", ppl_errmsg(ctx), ppl_status_name(st), line);
  ppl_context_free(ctx);
  if (st != PPL_ERR_SYNTAX || m != NULL || line != 1) return 1;

  /* two contexts in two threads at once; each matches the single-thread result */
  Job jobs[2] = {{11, 0, 1}, {11, 0, 1}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, &jobs[i]);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 2; i++) {
    if (jobs[i].rc || jobs[i].mean != mean) {
      fprintf(stderr, "host: thread %d: rc %d, mean %.17g vs %.17g\n", i, jobs[i].rc, jobs[i].mean, mean);
      return 1;
    }
  }
  printf("two threads: same results\n");
  return 0;
}
