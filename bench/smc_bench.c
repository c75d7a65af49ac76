/* smc_bench.c — speed and memory of engine smc on the Kalman model
 * (tests/exact/kalman.ppl) with simulated data: particle-steps per second and
 * peak resident memory for N particles over T observations, and how both grow
 * with N and T.  Each configuration runs in its own child process so that its
 * peak RSS (getrusage) is its own.  The last column is what N particles
 * holding private copies of their T-choice traces would take for the traces
 * alone (N T sizeof(TraceChoice)), the cost copy-on-write avoids.  "cpu s" is
 * the process's user + system time (all threads, setup included): on a shared
 * machine it tells contention apart from the engine's own cost.
 *
 *   smc_bench [-t THREADS] [N T]...
 *       (default: one thread; N in 1000 3000 10000, T in 100 300 1000)
 *
 * With -t, the particles of the one SMC run advance in THREADS threads (one
 * chain: the whole budget goes to its particles).
 *
 * Not a test: it prints a table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inference/engine.h"
#include "inference/trace.h"
#include "bench_util.h"

static const char *kalman_src =
    "data { int T; real y[T]; real a; real<lower=0> q; real<lower=0> r; }\n"
    "model {\n"
    "  real x_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    real x ~ normal(t == 1 ? 0.0 : a * x_prev, t == 1 ? 1.0 : q);\n"
    "    y[t] ~ normal(x, r);\n"
    "    x_prev = x;\n"
    "  }\n"
    "  real x_last = x_prev;\n"
    "}\n";

typedef struct KData {
  DataSource src;
  int T;
  Value y;
} KData;

static bool kdata_get(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
                      const char *size_desc, ConKind con, double lo, double hi, Value *out,
                      Diag *d) {
  KData *k = (KData *)src;
  if (!strcmp(name, "T")) *out = val_int(k->T);
  else if (!strcmp(name, "y")) *out = val_copy(k->y);
  else if (!strcmp(name, "a")) *out = val_real(0.9);
  else if (!strcmp(name, "q")) *out = val_real(0.5);
  else if (!strcmp(name, "r")) *out = val_real(1.0);
  else return false;
  return true;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench_one(int N, int T, int threads) {
  KData kd = {.src.get = kdata_get, .T = T, .y = val_arr(T)};
  Rng r;
  rng_seed(&r, 42, 0);
  double x = rng_normal(&r);
  for (int t = 0; t < T; t++) {
    if (t) x = 0.9 * x + 0.5 * rng_normal(&r);
    kd.y.a->e[t] = val_real(x + rng_normal(&r));
  }
  Diag d;
  diag_init(&d);
  Interp *in = bench_program(kalman_src, strlen(kalman_src), "kalman.ppl", &d);
  if (!in || !interp_load_data(in, &kd.src, &d)) {
    fprintf(stderr, "smc_bench: %s\n", d.msg);
    return 1;
  }
  EngineOpts o;
  engine_opts_default(&o);
  o.draws = N;
  o.chains = 1;
  if (!engine_opts_set(&o, "particles", gc_printf("%d", N), &d)) {
    fprintf(stderr, "smc_bench: %s\n", d.msg);
    return 1;
  }
  o.threads = threads;
  double t0 = now();
  void *st = engine_smc.init(in, &o, 0, &d);
  Draw dr;
  memset(&dr, 0, sizeof dr);
  if (!st || !engine_smc.step(st, false, &dr, &d)) {
    fprintf(stderr, "smc_bench: %s\n", d.msg);
    return 1;
  }
  double secs = now() - t0, logz;
  engine_smc.log_evidence(st, &logz);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double steps = (double)N * T;
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec * 1e-6;
  printf("%6d %5d %9.2f %9.2f %12.0f %10.1f %14.1f %12.2f\n", N, T, secs, cpu, steps / secs,
         ru.ru_maxrss / 1024.0, steps * sizeof(TraceChoice) / 1048576.0, logz);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  static const int defN[] = {1000, 3000, 10000}, defT[] = {100, 300, 1000};
  int cfg[64][2], n = 0, threads = 1;
  if (argc > 2 && !strcmp(argv[1], "-t")) {
    threads = atoi(argv[2]);
    argc -= 2;
    argv += 2;
    if (threads < 1) threads = 1;
  }
  if (argc > 2) {
    for (int i = 1; i + 1 < argc && n < 64; i += 2, n++) {
      cfg[n][0] = atoi(argv[i]);
      cfg[n][1] = atoi(argv[i + 1]);
    }
  } else {
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++, n++) {
        cfg[n][0] = defN[i];
        cfg[n][1] = defT[j];
      }
  }
  printf("smc on the Kalman model, systematic resampling at ESS < N/2, %d thread%s\n", threads,
         threads == 1 ? "" : "s");
  printf("%6s %5s %9s %9s %12s %10s %14s %12s\n", "N", "T", "seconds", "cpu s", "steps/s",
         "peak MiB", "N*T copies MiB", "log Z");
  for (int i = 0; i < n; i++) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      gc_init();
      exit(bench_one(cfg[i][0], cfg[i][1], threads));
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
      fprintf(stderr, "smc_bench: configuration N=%d T=%d failed\n", cfg[i][0], cfg[i][1]);
  }
  return 0;
}
