/* nuts_peer.h — what bench/nuts_bench and bench/pdb_bench share: a `ppl run`
 * as a child process with its whole CPU time (getrusage of the child: process
 * start, LLVM, compilation, chains, output and summary), the figures read
 * back from its summary JSON and CSV files, gradients per CPU-second through
 * ppl.h, and rstan's figures from bench/stan/stan_peer.R.
 *
 * CPU time, not wall time: the benchmarks run on shared machines. */
#ifndef PPL_NUTS_PEER_H
#define PPL_NUTS_PEER_H

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ppl.h"

extern char **environ;

static double np_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs argv (stdout and stderr to /dev/null); the child's user + system CPU
 * seconds, or -1 when it could not run or failed. */
static double np_child_cpu(char *const argv[]) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return -1;
  return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
         (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

/* The smallest bulk ESS over the outputs of a summary JSON (the engine's
 * columns, ending in "__", left out); NaN if none. */
static double np_min_ess(const char *summary_json) {
  json_error_t err;
  json_t *root = json_load_file(summary_json, 0, &err);
  double best = NAN;
  json_t *vars = root ? json_object_get(root, "variables") : NULL;
  const char *name;
  json_t *v;
  json_object_foreach(vars, name, v) {
    size_t len = strlen(name);
    if (len >= 2 && !strcmp(name + len - 2, "__")) continue;
    json_t *e = json_object_get(v, "ess_bulk");
    double x = json_is_number(e) ? json_number_value(e) : 0; /* null: not estimable */
    if (isnan(best) || x < best) best = x;
  }
  json_decref(root);
  return best;
}

/* Over the CSV files PREFIX_1.csv ... PREFIX_chains.csv (PREFIX.csv for one): the leapfrog steps
 * of their rows (n_leapfrog__) and the chains' CPU seconds (the Elapsed Time
 * trailer: warmup + sampling).  False if a file is missing. */
static inline bool np_csv_stats(const char *prefix, int chains, double *leapfrogs, double *chain_cpu) {
  *leapfrogs = 0, *chain_cpu = 0;
  for (int c = 1; c <= chains; c++) {
    char path[1100], line[65536];
    snprintf(path, sizeof path, chains > 1 ? "%s_%d.csv" : "%s.csv", prefix, c);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    int col = -1;
    while (fgets(line, sizeof line, f)) {
      double w, s;
      if (strstr(line, "(Warm-up)") && sscanf(line, "#  Elapsed Time: %lf", &w) == 1) {
        *chain_cpu += w;
      } else if (strstr(line, "(Sampling)") && sscanf(line, "# %lf", &s) == 1) {
        *chain_cpu += s;
      } else if (line[0] == '#') {
        continue;
      } else if (col < 0) { /* the header */
        int k = 0;
        for (char *t = strtok(line, ",\n"); t; t = strtok(NULL, ",\n"), k++)
          if (!strcmp(t, "n_leapfrog__")) col = k;
        if (col < 0) break;
      } else {
        char *t = strtok(line, ",");
        for (int k = 0; t && k < col; k++) t = strtok(NULL, ",");
        if (t) *leapfrogs += atof(t);
      }
    }
    fclose(f);
  }
  return true;
}

/* A program through ppl.h on one thread (compiled, or interpreted with
 * no_jit), given its data; false if it does not load or has no
 * unconstrained coordinate.  The caller frees *m and *ctx either way. */
static bool np_open(const char *model, const char *data, bool no_jit, ppl_context **ctx,
                    ppl_model **m, size_t *n) {
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = 1;
  cfg.no_jit = no_jit;
  *ctx = ppl_context_new(&cfg);
  *m = NULL;
  return ppl_compile_file(*ctx, model, m) == PPL_OK && ppl_set_data_file(*m, data) == PPL_OK &&
         ppl_num_unconstrained(*m, n) == PPL_OK && *n > 0;
}

/* Gradient evaluations per CPU-second through ppl.h at a fixed point
 * (theta = 0.1 in every unconstrained coordinate), for about `seconds` of
 * CPU; the best of three rounds.  NaN if the program has no gradient there. */
static double np_grad_rate(const char *model, const char *data, bool no_jit, double seconds) {
  ppl_context *ctx;
  ppl_model *m;
  double rate = NAN;
  size_t n = 0;
  if (!np_open(model, data, no_jit, &ctx, &m, &n)) goto done;
  double *theta = malloc(sizeof(double) * n), *g = malloc(sizeof(double) * n), lp;
  for (size_t i = 0; i < n; i++) theta[i] = 0.1;
  if (ppl_log_density_gradient(m, theta, n, &lp, g) == PPL_OK) { /* the first call compiles */
    for (int round = 0; round < 3; round++) {
      long calls = 0;
      double t0 = np_cpu(), t;
      do {
        for (int k = 0; k < 16; k++) ppl_log_density_gradient(m, theta, n, &lp, g);
        calls += 16;
      } while ((t = np_cpu() - t0) < seconds / 3);
      if (isnan(rate) || calls / t > rate) rate = calls / t;
    }
  }
  free(theta);
  free(g);
done:
  ppl_model_free(m);
  ppl_context_free(ctx);
  return rate;
}

/* rstan's figures, one line a program (bench/stan/stan_peer.R). */
typedef struct {
  double ess, chain_cpu, leapfrogs, call_cpu;
  bool ok;
} NpStan;

/* Runs stan_peer.R over `specs` ("NAME=FILE.stan:DATA.json ..."); its output,
 * or NULL without Rscript and rstan. */
static char *np_run_stan(const char *root, unsigned long long seed, int chains, int warmup,
                         int draws, const char *specs) {
  size_t cap = strlen(specs) + 2048;
  char *cmd = malloc(cap);
  snprintf(cmd, cap,
           "Rscript -e 'quit(status = !requireNamespace(\"rstan\", quietly = TRUE))' "
           ">/dev/null 2>&1 && nice Rscript '%s/bench/stan/stan_peer.R' %llu %d %d %d %s 2>/dev/null",
           root, seed, chains, warmup, draws, specs);
  FILE *f = popen(cmd, "r");
  free(cmd);
  if (!f) return NULL;
  size_t len = 0;
  cap = 4096;
  char *buf = malloc(cap);
  size_t k;
  while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += k;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  buf[len] = 0;
  pclose(f);
  return buf;
}

static NpStan np_stan(const char *out, const char *name) {
  NpStan s = {NAN, NAN, NAN, NAN, false};
  char key[256];
  snprintf(key, sizeof key, "stan %s ", name);
  const char *p = out ? strstr(out, key) : NULL;
  s.ok = p && sscanf(p + strlen(key), "%lf %lf %lf %lf", &s.ess, &s.chain_cpu, &s.leapfrogs,
                     &s.call_cpu) == 4;
  return s;
}

static double np_loadavg(void) {
  double l = NAN;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = NAN;
    fclose(f);
  }
  return l;
}

#endif
