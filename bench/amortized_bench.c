/* amortized_bench.c — once trained, how much faster than NUTS is an amortized
 * posterior for a new data set, and how close is it?  For each program: train
 * once (timed, reported), then on the same program and new data, wall time
 * to 1,000 draws of one chain of the amortized draws and of nuts (1,000
 * warmup + 1,000 draws, Stan's default), measured three times: the chain
 * itself (its CSV's "Elapsed Time", warmup and sampling: the engine's work),
 * the run (ppl_run through ppl.h, the program compiled and its data set
 * beforehand: with the setup, the summary and its diagnostics; the median of
 * several runs) and the whole command (`ppl run ...` in a
 * child process: start-up, parsing, the JIT's compile, the CSV); the last two
 * also in CPU time (the least of the repetitions, the commands interleaved),
 * the figure a loaded machine disturbs least.  Accuracy:
 * each latent's mean and sd against nuts's, the mean's difference in nuts's
 * sds, and the sd's ratio (the worst and the median over the latents).
 *
 *   amortized_bench PPL_BINARY SOURCE_ROOT [collinear|all] [KEEP_DIR]   (e.g. build/ppl .)
 *   amortized_bench PPL_BINARY SOURCE_ROOT profile KEEP_DIR [ROUNDS]
 *
 * (`profile`: only the host's amortized draws for new data sets, with the
 * collinear file already trained in KEEP_DIR; under
 * `valgrind --tool=callgrind --toggle-collect=ab_new_set` the instructions
 * of the sets, each its data as typed arrays and 1,000 draws; ROUNDS
 * repeats the sets, each set's least CPU time printed, for a sampling
 * profiler)
 *
 * (with `collinear`, only the program where nuts takes seconds; with a
 * KEEP_DIR, the trained files are written there and, when they are already
 * there, read instead of training again: the collinear training takes
 * minutes, the draws milliseconds)
 *
 * Programs: the per-datapoint conjugate toy of tests/sbc/test_sbc_amortized.c
 * with an encoder guide (trained by ppl_train, svi's loop, on 2,000 simulated
 * points, drawn for 100 new ones), and npe on tests/exact's normal_mean and
 * linreg_known_sigma (ppl_train with --amortize: 4,000 simulations and 30
 * epochs, the exact test's budget, drawn for the problems' data), and a
 * program where nuts takes seconds: linreg_known_sigma's program on a
 * larger regression with collinear predictors (N = 1,000, K = 5, each
 * pair of predictors correlated 0.999: a posterior elongated along their
 * sum, whose condition number (about 5,000) makes nuts's trees deep with
 * a diagonal metric; npe trained on 2,000 simulations for 10 epochs, for
 * the training's sake: the data are 1,000 rows), trained once and then, as
 * amortization is used, asked
 * for 1,000 draws for several new data sets by a host through ppl.h (the
 * data given as typed arrays, ppl_data_real; each ppl_run reads the trained
 * file again, about 200 kB), beside nuts on the same data sets (ab_host).
 *
 * The target is 1,000x faster than nuts once trained.  Not a test:
 * it prints a table; the figures are in docs/engines.md ("amortized"). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ppl.h"
#include "amortized_toy.h"
#include "sbc.h"

#define AB_DRAWS 1000
#define AB_REPEAT 5

static double ab_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU seconds of this process, all its threads: on a shared machine the
   figure that other jobs slow least */
static double ab_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double ab_min(const double *v, int n) {
  double m = v[0];
  for (int i = 1; i < n; i++) m = fmin(m, v[i]);
  return m;
}

static int ab_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double ab_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, ab_cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static bool ab_write(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return false;
  bool ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok;
}

/* Runs argv (NULL-terminated) with stdout and stderr to /dev/null; the wall
   time, or -1 when it failed; *cpu gets the child's CPU time (user + sys). */
static double ab_command(char *const *argv, double *cpu) {
  fflush(stdout);
  double t0 = ab_now();
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (pid < 0 || wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
    return -1;
  *cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
         (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
  return ab_now() - t0;
}

/* One program: how to draw from its amortized posterior. */
typedef struct AbCase {
  const char *name;
  char model[1024], train_data[1024], data[1024], params[1024];
  const char *engine;   /* the amortized draws' engine */
  const char *load_opt; /* its option naming the trained file */
  const char *train_engine; /* ppl_train's: NULL (svi, a guide) or "amortized" (npe) */
  const char *train_opts[12]; /* its options: name, value pairs, NULL-ended */
  bool keep; /* params is in the KEEP_DIR: trained only when not there yet */
} AbCase;

/* One chain of 1,000 draws; csv (or NULL) gets the draws; no_jit: the log
   density interpreted. */
static ppl_status ab_run_jit(ppl_model *m, const char *engine, const char *load_opt,
                             const char *params, const char *csv, bool no_jit, ppl_result **r) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.no_jit = no_jit;
  ro.engine = engine;
  ro.chains = 1;
  ro.draws = AB_DRAWS;
  ro.seed = 7;
  ro.output_csv = csv;
  ppl_status st = load_opt ? ppl_run_set(&ro, load_opt, params) : PPL_OK;
  if (st == PPL_OK) st = ppl_run(m, &ro, r);
  ppl_run_options_free(&ro);
  return st;
}

/* One chain of 1,000 draws; csv (or NULL) gets the draws. */
static ppl_status ab_run(ppl_model *m, const char *engine, const char *load_opt,
                         const char *params, const char *csv, ppl_result **r) {
  return ab_run_jit(m, engine, load_opt, params, csv, false, r);
}

/* The chain's own time, warmup and sampling, from the CSV's "Elapsed Time"
   comments (CmdStan's): the engine's work without the run's setup, summary
   and diagnostics; -1 when not found. */
static double ab_elapsed(const char *csv) {
  FILE *f = fopen(csv, "r");
  char line[256];
  double total = -1;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, "seconds (Total)")) total = atof(line + 1);
  if (f) fclose(f);
  return total;
}

static void ab_case(ppl_context *ctx, const char *ppl, const char *dir, const AbCase *c) {
  ppl_model *m = NULL;
  ppl_result *ra = NULL, *rn = NULL;
  printf("\n%s\n", c->name);
  if (ppl_compile_file(ctx, c->model, &m) != PPL_OK) goto fail;

  /* training, once */
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = c->train_engine;
  ro.seed = 1;
  ppl_status st = ppl_set_data_file(m, c->train_data);
  for (int i = 0; st == PPL_OK && c->train_opts[i]; i += 2)
    st = ppl_run_set(&ro, c->train_opts[i], c->train_opts[i + 1]);
  double t0 = ab_now();
  bool kept = c->keep && access(c->params, R_OK) == 0;
  if (st == PPL_OK && !kept) st = ppl_train(m, &ro, c->params, NULL);
  double train_s = ab_now() - t0;
  ppl_run_options_free(&ro);
  if (st != PPL_OK) goto fail;
  if (kept) printf("  training: the file trained earlier, %s\n", c->params);
  else printf("  training (ppl_train, once): %.2f s\n", train_s);

  /* the run itself */
  if (ppl_set_data_file(m, c->data) != PPL_OK) goto fail;
  double ta[AB_REPEAT], tn[AB_REPEAT], ca[AB_REPEAT], cn[AB_REPEAT];
  for (int k = 0; k < AB_REPEAT; k++) {
    ppl_result_free(ra);
    ra = NULL;
    t0 = ab_now();
    double c0 = ab_cpu();
    if (ab_run(m, c->engine, c->load_opt, c->params, NULL, &ra) != PPL_OK) goto fail;
    ta[k] = ab_now() - t0, ca[k] = ab_cpu() - c0;
  }
  int nrep = 3;
  for (int k = 0; k < nrep; k++) {
    ppl_result_free(rn);
    rn = NULL;
    t0 = ab_now();
    double c0 = ab_cpu();
    if (ab_run(m, "nuts", NULL, NULL, NULL, &rn) != PPL_OK) goto fail;
    tn[k] = ab_now() - t0, cn[k] = ab_cpu() - c0;
  }
  double a = ab_median(ta, AB_REPEAT), n = ab_median(tn, nrep);
  double acpu = ab_min(ca, AB_REPEAT), ncpu = ab_min(cn, nrep);
  char csv_a[1100], csv_n[1100];
  snprintf(csv_a, sizeof csv_a, "%s/a.csv", dir);
  snprintf(csv_n, sizeof csv_n, "%s/n.csv", dir);
  ppl_result *tmp = NULL;
  double ea = -1, en = -1;
  if (ab_run(m, c->engine, c->load_opt, c->params, csv_a, &tmp) == PPL_OK) ea = ab_elapsed(csv_a);
  ppl_result_free(tmp);
  tmp = NULL;
  if (ab_run(m, "nuts", NULL, NULL, csv_n, &tmp) == PPL_OK) en = ab_elapsed(csv_n);
  ppl_result_free(tmp);
  tmp = NULL;
  printf("  the chain itself:      amortized %.4f s   nuts %.4f s (warmup and draws)   "
         "nuts/amortized %.1fx\n", ea, en, en / ea);
  printf("  ppl_run, 1,000 draws:  amortized %.4f s   nuts %.4f s   nuts/amortized %.1fx\n", a,
         n, n / a);
  printf("    its CPU time (least): amortized %.4f s   nuts %.4f s   nuts/amortized %.1fx\n", acpu,
         ncpu, ncpu / acpu);
  printf("  (nuts's backend: %s)\n", ppl_result_backend(rn));

  /* a new data set before each run, as amortization is used: the data
     are set again (the same values) so that nothing of the last run's is
     reused, with the log density compiled and interpreted */
  for (int jit = 0; jit < 2; jit++) {
    for (int k = 0; k < AB_REPEAT; k++) {
      ppl_result_free(tmp);
      tmp = NULL;
      t0 = ab_now();
      if (ppl_set_data_file(m, c->data) != PPL_OK ||
          ab_run_jit(m, c->engine, c->load_opt, c->params, NULL, jit == 1, &tmp) != PPL_OK)
        goto fail;
      ta[k] = ab_now() - t0;
    }
    printf("  new data each run:     amortized %.4f s (%s)\n", ab_median(ta, AB_REPEAT),
           jit ? "--no-jit" : "log density compiled");
  }
  ppl_result_free(tmp);
  tmp = NULL;

  /* the whole command */
  char *common[] = {(char *)ppl, "run", (char *)c->model, "--data", (char *)c->data, "--chains",
                    "1", "--draws", "1000", "--seed", "7", "--quiet", "--output", "/dev/null"};
  enum { NC = sizeof common / sizeof *common };
  char *argv_a[NC + 6], *argv_n[NC + 3];
  memcpy(argv_a, common, sizeof common);
  memcpy(argv_n, common, sizeof common);
  char load_flag[64];
  snprintf(load_flag, sizeof load_flag, "--%s", c->load_opt);
  argv_a[NC] = "--engine", argv_a[NC + 1] = (char *)c->engine;
  argv_a[NC + 2] = load_flag, argv_a[NC + 3] = (char *)c->params, argv_a[NC + 4] = NULL;
  argv_n[NC] = "--engine", argv_n[NC + 1] = "nuts", argv_n[NC + 2] = NULL;
  /* interleaved, so that a change in the machine's load falls on both */
  bool failed = false;
  for (int k = 0; k < AB_REPEAT; k++) {
    ta[k] = ab_command(argv_a, &ca[k]);
    if (k < nrep) tn[k] = ab_command(argv_n, &cn[k]), failed |= tn[k] < 0;
    failed |= ta[k] < 0;
  }
  if (failed) printf("  ppl run: a command failed\n");
  else {
    a = ab_median(ta, AB_REPEAT), n = ab_median(tn, nrep);
    acpu = ab_min(ca, AB_REPEAT), ncpu = ab_min(cn, nrep);
    printf("  ppl run, 1,000 draws:  amortized %.4f s   nuts %.4f s   nuts/amortized %.1fx\n", a,
           n, n / a);
    printf("    its CPU time (least): amortized %.4f s   nuts %.4f s   nuts/amortized %.1fx\n",
           acpu, ncpu, ncpu / acpu);
  }

  /* accuracy: every output column the two share, but the engines' own */
  int ncols = ppl_result_num_columns(ra), nlat = 0;
  double *dm = malloc(sizeof(double) * (size_t)ncols), *rs = malloc(sizeof(double) * (size_t)ncols);
  for (int col = 0; col < ncols; col++) {
    const char *name = ppl_result_column_name(ra, col);
    size_t len = strlen(name);
    if (len > 2 && name[len - 1] == '_' && name[len - 2] == '_') continue;
    int ci = ppl_result_column_index(rn, name);
    if (ci < 0) continue;
    ppl_summary sa, sn;
    ppl_result_summary(ra, col, &sa);
    ppl_result_summary(rn, ci, &sn);
    dm[nlat] = fabs(sa.mean - sn.mean) / sn.sd;
    rs[nlat] = sa.sd / sn.sd;
    nlat++;
  }
  if (nlat) {
    double worst_ratio = 1;
    for (int i = 0; i < nlat; i++)
      if (fabs(log(rs[i])) > fabs(log(worst_ratio))) worst_ratio = rs[i];
    double worst_dm = 0;
    for (int i = 0; i < nlat; i++) worst_dm = fmax(worst_dm, dm[i]);
    printf("  accuracy over %d latents against nuts: |mean difference| / nuts sd median %.3f, "
           "worst %.3f; sd ratio median %.3f, worst %.3f\n",
           nlat, ab_median(dm, nlat), worst_dm, ab_median(rs, nlat), worst_ratio);
    printf("  (nuts's own Monte Carlo error in a mean: about 1/sqrt(ESS) = %.3f nuts sd at "
           "ESS 1000)\n", 1 / sqrt(1000.0));
  }
  free(dm);
  free(rs);
  goto out;
fail:
  printf("  failed: %s\n", ppl_errmsg(ctx));
out:
  ppl_result_free(ra);
  ppl_result_free(rn);
  ppl_model_free(m);
}

/* ---- a host asking for posteriors for several new data sets ---- */

#define CL_N 1000
#define CL_K 5
#define CL_RHO 0.999
#define CL_SETS 5

/* The collinear regression's fixed design: x_k = f + s e_k with one common
   factor f, so that corr(x_j, x_k) = 1 / (1 + s^2) = CL_RHO. */
static void cl_design(double *X) {
  SbcRng rng;
  sbc_seed(&rng, 23);
  double s = sqrt(1 / CL_RHO - 1);
  for (int i = 0; i < CL_N; i++) {
    double f = sbc_normal(&rng);
    for (int k = 0; k < CL_K; k++) X[i * CL_K + k] = (f + s * sbc_normal(&rng)) / sqrt(1 + s * s);
  }
}

/* y for data set `set`: beta from the program's prior normal(0, 10), y = X
   beta + normal(0, sigma = 1) noise. */
static void cl_response(const double *X, int set, double *y) {
  SbcRng rng;
  sbc_seed(&rng, 1000 + (uint64_t)set);
  double beta[CL_K];
  for (int k = 0; k < CL_K; k++) beta[k] = 10 * sbc_normal(&rng);
  for (int i = 0; i < CL_N; i++) {
    double m = 0;
    for (int k = 0; k < CL_K; k++) m += X[i * CL_K + k] * beta[k];
    y[i] = m + sbc_normal(&rng);
  }
}

static ppl_status cl_set_data(ppl_model *m, const double *X, const double *y) {
  int64_t n = CL_N, k = CL_K;
  double sigma = 1;
  ppl_status st = ppl_data_int(m, "N", &n, 0, NULL);
  if (st == PPL_OK) st = ppl_data_int(m, "K", &k, 0, NULL);
  if (st == PPL_OK) st = ppl_data_real(m, "X", X, 2, (int[]){CL_N, CL_K});
  if (st == PPL_OK) st = ppl_data_real(m, "y", y, 1, (int[]){CL_N});
  if (st == PPL_OK) st = ppl_data_real(m, "sigma", &sigma, 0, NULL);
  return st == PPL_OK ? ppl_data_commit(m) : st;
}

/* The JSON of data set 0 (training's fixed inputs, and the commands'). */
static bool cl_json(const char *path, const double *X, const double *y) {
  FILE *f = fopen(path, "w");
  if (!f) return false;
  fprintf(f, "{\"N\": %d, \"K\": %d, \"sigma\": 1,\n\"X\": [", CL_N, CL_K);
  for (int i = 0; i < CL_N; i++) {
    fprintf(f, "%s[", i ? ",\n" : "");
    for (int k = 0; k < CL_K; k++) fprintf(f, "%s%.17g", k ? ", " : "", X[i * CL_K + k]);
    fprintf(f, "]");
  }
  fprintf(f, "],\n\"y\": [");
  for (int i = 0; i < CL_N; i++) fprintf(f, "%s%.17g", i ? ", " : "", y[i]);
  fprintf(f, "]}\n");
  return fclose(f) == 0;
}

/* The amortized use: the trained file, then for each new data set its data
   as typed arrays and 1,000 draws (wall and CPU time of the two calls), and
   nuts on the same data sets; the accuracy against nuts per data set. */
static void ab_host(ppl_context *ctx, const AbCase *c, const double *X) {
  ppl_model *m = NULL;
  printf("\n  a host through ppl.h: %d new data sets, each set as typed arrays and 1,000 draws\n",
         CL_SETS);
  if (ppl_compile_file(ctx, c->model, &m) != PPL_OK) {
    printf("  failed: %s\n", ppl_errmsg(ctx));
    return;
  }
  double y[CL_N], ta[CL_SETS], ca[CL_SETS], tn[CL_SETS], cn[CL_SETS], cd[CL_SETS];
  double worst_dm = 0, worst_rs = 1;
  int warned = 0;
  for (int set = 1; set <= CL_SETS; set++) {
    ppl_result *ra = NULL, *rn = NULL;
    cl_response(X, set, y);
    double t0 = ab_now(), c0 = ab_cpu();
    ppl_status st = cl_set_data(m, X, y);
    cd[set - 1] = ab_cpu() - c0;
    if (st == PPL_OK) st = ab_run(m, c->engine, c->load_opt, c->params, NULL, &ra);
    ta[set - 1] = ab_now() - t0, ca[set - 1] = ab_cpu() - c0;
    t0 = ab_now(), c0 = ab_cpu();
    if (st == PPL_OK) st = cl_set_data(m, X, y);
    if (st == PPL_OK) st = ab_run(m, "nuts", NULL, NULL, NULL, &rn);
    tn[set - 1] = ab_now() - t0, cn[set - 1] = ab_cpu() - c0;
    if (st != PPL_OK) {
      printf("  failed: %s\n", ppl_errmsg(ctx));
      ppl_result_free(ra), ppl_result_free(rn), ppl_model_free(m);
      return;
    }
    warned += sbc_khat_warned(ra);
    for (int k = 1; k <= CL_K; k++) {
      char name[32];
      snprintf(name, sizeof name, "beta[%d]", k);
      int ia = ppl_result_column_index(ra, name), in = ppl_result_column_index(rn, name);
      ppl_summary sa, sn;
      if (ia < 0 || in < 0 || ppl_result_summary(ra, ia, &sa) != PPL_OK ||
          ppl_result_summary(rn, in, &sn) != PPL_OK)
        continue;
      worst_dm = fmax(worst_dm, fabs(sa.mean - sn.mean) / sn.sd);
      if (fabs(log(sa.sd / sn.sd)) > fabs(log(worst_rs))) worst_rs = sa.sd / sn.sd;
    }
    printf("    set %d: amortized %.4f s (CPU %.4f, of which setting the data %.4f)   nuts %.3f s "
           "(CPU %.3f)   nuts/amortized %.0fx (CPU %.0fx)\n",
           set, ta[set - 1], ca[set - 1], cd[set - 1], tn[set - 1], cn[set - 1],
           tn[set - 1] / ta[set - 1], cn[set - 1] / ca[set - 1]);
    printf("      amortized backend: %s\n", ppl_result_backend(ra));
    ppl_result_free(ra), ppl_result_free(rn);
  }
  double a = ab_median(ta, CL_SETS), n = ab_median(tn, CL_SETS);
  double acpu = ab_min(ca, CL_SETS), ncpu = ab_min(cn, CL_SETS);
  printf("  in-process, per new data set: amortized %.4f s   nuts %.3f s   nuts/amortized %.0fx "
         "(medians)\n", a, n, n / a);
  printf("    its CPU time (least): amortized %.4f s   nuts %.3f s   nuts/amortized %.0fx\n", acpu,
         ncpu, ncpu / acpu);
  printf("  accuracy over the sets against nuts: worst |mean difference| / nuts sd %.3f, worst "
         "sd ratio %.3f; the k-hat warning (q does not fit) on %d of %d sets\n",
         worst_dm, worst_rs, warned, CL_SETS);
  ppl_model_free(m);
}

/* ---- callgrind's view of a new data set ---- */

/* One new data set as the host gives it: the typed arrays, then 1,000
   amortized draws.  Not inlined: callgrind --toggle-collect=ab_new_set counts
   exactly this (what `profile` mode prints the command for). */
__attribute__((noinline)) static ppl_status ab_new_set(ppl_model *m, const AbCase *c,
                                                       const double *X, const double *y,
                                                       ppl_result **r) {
  ppl_status st = cl_set_data(m, X, y);
  return st == PPL_OK ? ab_run(m, c->engine, c->load_opt, c->params, NULL, r) : st;
}

/* The amortized side of ab_host alone, for a profiler and for the CPU time
   of a new data set without nuts beside it: data set 0 first (it compiles
   the log density; later sets reuse the code), then sets 1..CL_SETS through
   ab_new_set, each set's CPU time printed, and the least. */
static int ab_profile(ppl_context *ctx, const AbCase *c, const double *X, int rounds) {
  ppl_model *m = NULL;
  static double y[CL_N];
  if (ppl_compile_file(ctx, c->model, &m) != PPL_OK) goto fail;
  ppl_result *r = NULL;
  cl_response(X, 0, y);
  if (cl_set_data(m, X, y) != PPL_OK ||
      ab_run(m, c->engine, c->load_opt, c->params, NULL, &r) != PPL_OK)
    goto fail;
  ppl_result_free(r);
  double cpu[CL_SETS];
  for (int k = 0; k < rounds; k++)
    for (int set = 1; set <= CL_SETS; set++) {
      r = NULL;
      cl_response(X, set, y);
      double c0 = ab_cpu();
      if (ab_new_set(m, c, X, y, &r) != PPL_OK) goto fail;
      double t = ab_cpu() - c0;
      cpu[set - 1] = k ? fmin(cpu[set - 1], t) : t;
      if (k == rounds - 1)
        printf("  set %d: amortized %.5f s of CPU, backend %s\n", set, cpu[set - 1],
               ppl_result_backend(r));
      ppl_result_free(r);
    }
  printf("  a new data set: %.5f s of CPU (least of %d)\n", ab_min(cpu, CL_SETS), CL_SETS);
  ppl_model_free(m);
  return 0;
fail:
  printf("  failed: %s\n", ppl_errmsg(ctx));
  ppl_model_free(m);
  return 1;
}

/* ---- the programs ---- */

/* The toy (amortized_toy.h) with its encoder guide: trained on 2,000
   simulated points, drawn for 100 new ones. */

static bool toy_files(const char *dir, AbCase *c) {
  static char json[2000 * 26 + 128];
  double z[2000], x[2000];
  SbcRng rng;
  sbc_seed(&rng, 11);
  snprintf(c->model, sizeof c->model, "%s/toy.ppl", dir);
  snprintf(c->train_data, sizeof c->train_data, "%s/toy_train.json", dir);
  snprintf(c->data, sizeof c->data, "%s/toy_new.json", dir);
  snprintf(c->params, sizeof c->params, "%s/toy.params", dir);
  if (!ab_write(c->model, toy_src)) return false;
  for (int pass = 0; pass < 2; pass++) {
    int n = pass ? 100 : 2000;
    for (int i = 0; i < n; i++) {
      z[i] = sbc_normal(&rng);
      x[i] = z[i] + 0.5 * sbc_normal(&rng);
    }
    size_t k = (size_t)snprintf(json, sizeof json, "{\"N\": %d, \"s\": 0.5, ", n);
    k += sbc_vec(json + k, sizeof json - k, "x", x, n);
    snprintf(json + k, sizeof json - k, "}\n");
    if (!ab_write(pass ? c->data : c->train_data, json)) return false;
  }
  return true;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: amortized_bench PPL_BINARY SOURCE_ROOT [collinear|profile] [KEEP_DIR]\n");
    return 2;
  }
  char tmpl[] = "/tmp/amortized_bench_XXXXXX";
  const char *keep = argc > 4 ? argv[4] : NULL; /* the trained files and the data stay there */
  if (keep) mkdir(keep, 0777);
  const char *dir = keep ? keep : mkdtemp(tmpl);
  if (!dir) return 1;
  ppl_context *ctx = ppl_context_new(NULL);
  printf("amortized posteriors against nuts (one chain, 1,000 draws; nuts 1,000 warmup)\n");

  bool profile = argc > 3 && !strcmp(argv[3], "profile");
  bool only_slow = profile || (argc > 3 && !strcmp(argv[3], "collinear"));
  AbCase toy = {.name = "conjugate toy, guide form: 100 new points, 100 latents z[i]",
                .engine = "amortized",
                .load_opt = "load",
                .train_opts = {"iter", "6000", "lr", "0.01", "lr-schedule", "cosine", NULL},
                .keep = keep != NULL};
  if (!only_slow && toy_files(dir, &toy)) ab_case(ctx, argv[1], dir, &toy);
  else if (!only_slow) printf("could not write the toy's files in %s\n", dir);

  /* whole-program amortization on tests/exact's conjugate cases: trained on
     simulations given the problem's fixed inputs, drawn for its data */
  static const char *const names[] = {"normal_mean", "linreg_known_sigma"};
  /* the budget of tests/exact/test_exact_amortized.c, with which normal_mean
     reaches the exact posterior and linreg does not (docs/engines.md) */
  static const char *const sims[] = {"4000", "4000"}, *const epochs[] = {"30", "30"};
  for (int i = 0; i < 2 && !only_slow; i++) {
    AbCase c = {.engine = "amortized", .load_opt = "load", .train_engine = "amortized",
                .train_opts = {"simulations", sims[i], "epochs", epochs[i], NULL},
                .keep = keep != NULL};
    char title[160];
    snprintf(title, sizeof title,
             "%s (tests/exact), npe: ppl train --amortize --simulations %s --epochs %s", names[i],
             sims[i], epochs[i]);
    c.name = title;
    snprintf(c.model, sizeof c.model, "%s/tests/exact/%s.ppl", argv[2], names[i]);
    snprintf(c.data, sizeof c.data, "%s/tests/exact/problems/%s/data.json", argv[2], names[i]);
    snprintf(c.train_data, sizeof c.train_data, "%s", c.data);
    snprintf(c.params, sizeof c.params, "%s/%s.params", dir, names[i]);
    ab_case(ctx, argv[1], dir, &c);
  }

  /* a program where nuts takes seconds: the collinear regression */
  static double X[CL_N * CL_K], y0[CL_N];
  cl_design(X);
  cl_response(X, 0, y0);
  AbCase cl = {.engine = "amortized", .load_opt = "load", .train_engine = "amortized",
               .train_opts = {"simulations", "2000", "epochs", "10", NULL},
               .keep = keep != NULL,
               .name = "collinear regression N=1000 K=5 (linreg_known_sigma's program, predictors "
                       "correlated 0.999), npe: ppl train --amortize --simulations 2000 --epochs 10"};
  snprintf(cl.model, sizeof cl.model, "%s/tests/exact/linreg_known_sigma.ppl", argv[2]);
  snprintf(cl.data, sizeof cl.data, "%s/collinear.json", dir);
  snprintf(cl.train_data, sizeof cl.train_data, "%s", cl.data);
  snprintf(cl.params, sizeof cl.params, "%s/collinear.params", dir);
  if (profile) {
    if (access(cl.params, R_OK) != 0) {
      printf("profile: no trained file %s (run the bench with `collinear %s` once)\n", cl.params,
             dir);
      return 1;
    }
    int rc = ab_profile(ctx, &cl, X, argc > 5 ? atoi(argv[5]) > 0 ? atoi(argv[5]) : 1 : 1);
    ppl_context_free(ctx);
    return rc;
  }
  if (cl_json(cl.data, X, y0)) {
    ab_case(ctx, argv[1], dir, &cl);
    ab_host(ctx, &cl, X);
  } else {
    printf("could not write the collinear regression's data in %s\n", dir);
  }

  ppl_context_free(ctx);
  if (keep) return 0;
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
