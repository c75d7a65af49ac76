/* advi_fit_bench.c — the CPU time of ADVI's fit alone (Stan's eta search and
 * the optimisation), in process through ppl.h, on a program and data set:
 * for each seed, ppl_run with --save-params (fit, draws, summary) less
 * ppl_run of the same seed with --load-params (the same draws and summary
 * from the saved q, no fit), the least over rounds; the log density is
 * compiled once before.  vi_bench.R takes the same difference between two
 * processes, at the granularity of their CPU clocks (10 ms); here the
 * clock is the process's own, so fits of tens of milliseconds can be
 * compared on a shared machine.  Not a test.
 *
 *   advi_fit_bench MODEL DATA FAMILY [SEEDS [ROUNDS]]
 *   e.g. advi_fit_bench examples/logistic_regression.ppl logit.json fullrank
 *
 * (logit.json: vi_bench.R's logistic regression, N = 5000, K = 10) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ppl.h"

static double afb_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU seconds of one run, or -1 */
static double afb_run(ppl_model *m, const char *family, int seed, const char *opt, const char *q) {
  ppl_run_options o;
  ppl_run_options_default(&o);
  o.engine = "advi";
  o.chains = 1;
  o.seed = (uint64_t)seed;
  ppl_result *r = NULL;
  ppl_status st = ppl_run_set(&o, "vi", family);
  if (st == PPL_OK) st = ppl_run_set(&o, opt, q);
  double t0 = afb_cpu();
  if (st == PPL_OK) st = ppl_run(m, &o, &r);
  double t = afb_cpu() - t0;
  ppl_run_options_free(&o);
  ppl_result_free(r);
  return st == PPL_OK ? t : -1;
}

static int afb_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: advi_fit_bench MODEL DATA FAMILY [SEEDS [ROUNDS]]\n");
    return 2;
  }
  int nseeds = argc > 4 ? atoi(argv[4]) : 5, rounds = argc > 5 ? atoi(argv[5]) : 3;
  if (nseeds < 1 || nseeds > 100 || rounds < 1) return 2;
  char q[] = "/tmp/advi_fit_bench_XXXXXX";
  int fd = mkstemp(q);
  if (fd < 0) return 1;
  close(fd);
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  int rc = 1;
  double fits[100];
  if (ppl_compile_file(ctx, argv[1], &m) != PPL_OK || ppl_set_data_file(m, argv[2]) != PPL_OK ||
      afb_run(m, argv[3], 1, "save-params", q) < 0)
    goto out;
  for (int s = 1; s <= nseeds; s++) {
    double best = INFINITY;
    for (int k = 0; k < rounds; k++) {
      double a = afb_run(m, argv[3], s, "save-params", q), b = afb_run(m, argv[3], s, "load-params", q);
      if (a < 0 || b < 0) goto out;
      if (a - b < best) best = a - b;
    }
    fits[s - 1] = best;
    printf("%s seed %d: fit %.4f s of CPU\n", argv[3], s, best);
    fflush(stdout);
  }
  qsort(fits, (size_t)nseeds, sizeof *fits, afb_cmp);
  printf("%s: median fit %.4f s of CPU over %d seeds (least of %d rounds each)\n", argv[3],
         fits[nseeds / 2], nseeds, rounds);
  rc = 0;
out:
  if (rc) fprintf(stderr, "advi_fit_bench: %s\n", ppl_errmsg(ctx));
  ppl_model_free(m);
  ppl_context_free(ctx);
  unlink(q);
  return rc;
}
