/* smc_bench.c — speed and memory of engine smc: compiled particle steps
 * (ir/particle.h) against the interpreted particles (--no-jit) and, on the
 * Kalman model, against a hand-written C bootstrap filter; particle Gibbs
 * sweeps per second beside them.
 *
 * Models (simulated data, seed 42):
 *   kalman  x[t] ~ normal(0.9 x[t-1], 0.5), y[t] ~ normal(x[t], 1)
 *           (tests/exact/kalman.ppl without x_first)
 *   hmm3    3-state HMM with Gaussian emissions (tests/exact/hmm3.ppl)
 *   sv      stochastic volatility: h[t] ~ normal(mu + phi (h[t-1] - mu), s),
 *           y[t] ~ normal(0, exp(h[t] / 2))
 * Every configuration runs in its own child process, so its peak resident
 * memory (getrusage) is its own.  "cpu s" is the CPU time of the SMC run
 * alone (CLOCK_PROCESS_CPUTIME_ID: every thread, the collector's included),
 * the fair figure on a shared machine; steps/cpu s = N T / cpu s.  The hand
 * filter does what the compiled one does for this model: one normal draw and
 * one normal log density per particle and step, log-weight normalisation,
 * systematic resampling at ESS < N/2 (the project's resample()) with the
 * state permuted; it keeps no history and draws from one stream.
 *
 *   smc_bench [-t THREADS] [-m kalman|hmm3|sv|pgibbs] [-i] [-c] [-n] [N T]...
 *       default: kalman, N in 1000 10000 100000, T = 1000, one thread;
 *       the interpreter runs N <= 10000 unless -i; -c: compiled only;
 *       -n: no interpreter (hand C and compiled side by side).
 *   -m pgibbs: particle Gibbs sweeps per second on the Kalman model with
 *       static a (N particles, T steps), the conditional SMC on compiled
 *       particles and interpreted (--no-jit) side by side, without and with
 *       ancestor sampling (PGAS), and the ratio of the two; default N in 10
 *       20 30 100 1000, T = 100 (interpreted up to N = 100 unless -i).
 *   -m rm: smc with resample-move (static parameters, so the moves are on:
 *       tempered events, rounds of block and single-site moves after each
 *       resampling), compiled and interpreted (--no-jit) side by side, and
 *       the ratio of their particle-steps per CPU second, on three models:
 *       the Kalman model with static a (kalman), stochastic volatility with
 *       unknown phi and sigma (sv), the Kalman model with unknown noise q,
 *       r (noise); the two runs are the same bits (the log Z column) and
 *       make the same moves (rounds); default N in 100 1000, T = 100.
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
#include "inference/resample.h"
#include "bench_util.h"
#include "../tests/inference/smc_models.h"

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

static const char *hmm3_src =
    "data { int T; int K; real y[T]; vector[K] mu; real<lower=0> sigma;\n"
    "       simplex[K] trans[K]; simplex[K] init; }\n"
    "model {\n"
    "  int z_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    int z ~ categorical(t == 1 ? init : trans[z_prev]);\n"
    "    y[t] ~ normal(mu[z], sigma);\n"
    "    z_prev = z;\n"
    "  }\n"
    "  int z_last = z_prev;\n"
    "}\n";

typedef struct BData {
  DataSource src;
  int T;
  Value y;
} BData;

static Value simplex3(double a, double b, double c) {
  Value v = val_vec(3);
  v.t->d[0] = a;
  v.t->d[1] = b;
  v.t->d[2] = c;
  return v;
}

static bool bdata_get(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
                      const char *size_desc, ConKind con, double lo, double hi, Value *out,
                      Diag *d) {
  (void)t, (void)nsizes, (void)sizes, (void)size_desc, (void)con, (void)lo, (void)hi, (void)d;
  BData *k = (BData *)src;
  if (!strcmp(name, "T")) *out = val_int(k->T);
  else if (!strcmp(name, "y")) *out = val_copy(k->y);
  else if (!strcmp(name, "a")) *out = val_real(0.9);
  else if (!strcmp(name, "q")) *out = val_real(0.5);
  else if (!strcmp(name, "r")) *out = val_real(1.0);
  else if (!strcmp(name, "K")) *out = val_int(3);
  else if (!strcmp(name, "mu") && t.base == TY_VECTOR) *out = simplex3(-2, 0, 2);
  else if (!strcmp(name, "mu")) *out = val_real(-1.0);
  else if (!strcmp(name, "sigma")) *out = val_real(1.0);
  else if (!strcmp(name, "phi")) *out = val_real(0.95);
  else if (!strcmp(name, "s")) *out = val_real(0.25);
  else if (!strcmp(name, "init")) *out = simplex3(1.0 / 3, 1.0 / 3, 1.0 / 3);
  else if (!strcmp(name, "trans")) {
    *out = val_arr(3);
    out->a->e[0] = simplex3(0.8, 0.1, 0.1);
    out->a->e[1] = simplex3(0.1, 0.8, 0.1);
    out->a->e[2] = simplex3(0.1, 0.1, 0.8);
  } else return false;
  return true;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void simulate(const char *model, int T, Value y) {
  Rng r;
  rng_seed(&r, 42, 0);
  double x = rng_normal(&r);
  int z = 0;
  for (int t = 0; t < T; t++) {
    double v;
    if (!strcmp(model, "hmm3")) {
      double u = rng_uniform(&r);
      z = u < 0.8 ? z : u < 0.9 ? (z + 1) % 3 : (z + 2) % 3;
      v = -2.0 + 2.0 * z + rng_normal(&r);
    } else if (!strcmp(model, "sv")) {
      x = t ? -1 + 0.95 * (x + 1) + 0.25 * rng_normal(&r) : -1 + 0.8 * rng_normal(&r);
      v = exp(x / 2) * rng_normal(&r);
    } else {
      if (t) x = 0.9 * x + 0.5 * rng_normal(&r);
      v = x + rng_normal(&r);
    }
    y.a->e[t] = val_real(v);
  }
}

/* The hand-written bootstrap filter of the Kalman model: log evidence. */
static double hand_kalman(int N, int T, const Value y) {
  double *x = malloc(sizeof(double) * (size_t)N), *x2 = malloc(sizeof(double) * (size_t)N);
  double *lw = malloc(sizeof(double) * (size_t)N), *w = malloc(sizeof(double) * (size_t)N);
  int *anc = malloc(sizeof(int) * (size_t)N);
  Rng r;
  rng_seed(&r, 7, 0);
  const double a = 0.9, q = 0.5, lr = log(1.0), c = 0.5 * log(2 * M_PI);
  double logz = 0;
  for (int i = 0; i < N; i++) lw[i] = 0;
  for (int t = 0; t < T; t++) {
    double yt = y.a->e[t].r;
    for (int i = 0; i < N; i++) {
      x[i] = t == 0 ? rng_normal(&r) : a * x[i] + q * rng_normal(&r);
      double z = yt - x[i];
      lw[i] += -0.5 * z * z - lr - c;
    }
    double lz = resample_normalise(N, lw, w);
    if (t == T - 1 || resample_ess(N, w) < 0.5 * N) {
      logz += lz;
      if (t == T - 1) break;
      resample(RESAMPLE_SYSTEMATIC, N, w, &r, anc);
      for (int i = 0; i < N; i++) x2[i] = x[anc[i]];
      double *s = x;
      x = x2;
      x2 = s;
      for (int i = 0; i < N; i++) lw[i] = 0;
    }
  }
  free(x), free(x2), free(lw), free(w), free(anc);
  return logz;
}

#define PG_SWEEPS 200 /* particle Gibbs sweeps timed (warmup ones: no adaptation to time) */

/* mode: 0 compiled, 1 interpreted, 2 hand-written C, 3 particle Gibbs compiled,
   4 particle Gibbs interpreted, 5 and 6 the same with ancestor sampling, 7
   and 8 smc with resample-move, compiled and interpreted.  The CPU seconds
   go to fd out (the parent prints ratios). */
static int bench_one(const char *model, int mode, int N, int T, int threads, int out) {
  BData kd = {.src.get = bdata_get, .T = T, .y = val_arr(T)};
  simulate(model, T, kd.y);
  double t0, logz = NAN;
  const char *backend = "";
  if (mode == 2) {
    t0 = cpu_now();
    logz = hand_kalman(N, T, kd.y);
  } else {
    bool pg = mode >= 3 && mode <= 6, rm = mode >= 7;
    const char *src = rm && !strcmp(model, "sv") ? smc_sv_static_src
                      : rm && !strcmp(model, "noise") ? smc_kalman_noise_src
                      : pg || rm ? smc_pg_src : !strcmp(model, "hmm3") ? hmm3_src
                      : !strcmp(model, "sv") ? smc_sv_src : kalman_src;
    Diag d;
    diag_init(&d);
    Interp *in = bench_program(src, strlen(src), "bench.ppl", &d);
    if (!in || !interp_load_data(in, &kd.src, &d)) {
      fprintf(stderr, "smc_bench: %s\n", d.msg);
      return 1;
    }
    EngineOpts o;
    engine_opts_default(&o);
    o.chains = 1;
    o.draws = pg ? PG_SWEEPS : N;
    o.threads = threads;
    o.no_jit = mode == 1 || mode == 4 || mode == 6 || mode == 8;
    if (!engine_opts_set(&o, "particles", gc_printf("%d", N), &d) ||
        (mode >= 5 && mode <= 6 && !engine_opts_set(&o, "ancestor-sampling", "true", &d))) {
      fprintf(stderr, "smc_bench: %s\n", d.msg);
      return 1;
    }
    const EngineVT *e = engine_lookup(pg ? "pgibbs" : "smc");
    t0 = cpu_now();
    void *st = e->init(in, &o, 0, &d);
    Draw dr;
    memset(&dr, 0, sizeof dr);
    int steps = pg ? PG_SWEEPS : 1;
    for (int k = 0; k < steps; k++)
      if (!st || !e->step(st, false, &dr, &d)) {
        fprintf(stderr, "smc_bench: %s\n", d.msg);
        return 1;
      }
    if (!pg) e->log_evidence(st, &logz);
    if (e->backend) backend = e->backend(st);
    const char *rr = rm ? strstr(e->chain_notes(st), "resample-move: ") : NULL;
    if (rr) backend = gc_printf("%.*s; %s", (int)strcspn(rr + 15, " "), rr + 15, backend);
  }
  double cpu = cpu_now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  static const char *names[] = {"compiled", "interpreted", "hand C", "compiled", "interpreted",
                                "compiled", "interpreted", "compiled", "interpreted"};
  if (out >= 0 && write(out, &cpu, sizeof cpu) != (ssize_t)sizeof cpu) return 1;
  if (mode >= 3 && mode <= 6)
    printf("%-7s %-11s %7d %5d %9.2f %12.1f %9.1f %s\n", mode >= 5 ? "pgas" : "pgibbs",
           names[mode], N, T, cpu, PG_SWEEPS / cpu, ru.ru_maxrss / 1024.0,
           (mode == 3 || mode == 5) && !strstr(backend, "compiled") ? backend : "");
  else if (mode >= 7)
    printf("%-7s %-11s %7d %5d %9.2f %12.0f %9.1f %12.4f %s\n", model, names[mode], N, T, cpu,
           (double)N * T / cpu, ru.ru_maxrss / 1024.0, logz, backend);
  else
    printf("%-7s %-11s %7d %5d %9.2f %12.0f %9.1f %12.4f %s\n", model, names[mode], N, T, cpu,
           (double)N * T / cpu, ru.ru_maxrss / 1024.0, logz, mode == 0 && !strstr(backend, "compiled") ? backend : "");
  fflush(stdout);
  return 0;
}

/* The configuration in a child process; its CPU seconds (NAN: failed). */
static double run_child(const char *model, int mode, int N, int T, int threads) {
  fflush(stdout);
  int fd[2];
  if (pipe(fd) != 0) return NAN;
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    gc_init();
    exit(bench_one(model, mode, N, T, threads, fd[1]));
  }
  close(fd[1]);
  double cpu = NAN;
  if (pid < 0 || read(fd[0], &cpu, sizeof cpu) != (ssize_t)sizeof cpu) cpu = NAN;
  close(fd[0]);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
    fprintf(stderr, "smc_bench: %s N=%d T=%d failed\n", model, N, T);
    cpu = NAN;
  }
  return cpu;
}

int main(int argc, char **argv) {
  int cfg[64][2], n = 0, threads = 1;
  bool interp_all = false, only_compiled = false, no_interp = false;
  const char *model = "kalman";
  int k = 1;
  for (; k < argc && argv[k][0] == '-'; k++) {
    if (!strcmp(argv[k], "-t") && k + 1 < argc) threads = atoi(argv[++k]);
    else if (!strcmp(argv[k], "-m") && k + 1 < argc) model = argv[++k];
    else if (!strcmp(argv[k], "-i")) interp_all = true;
    else if (!strcmp(argv[k], "-c")) only_compiled = true;
    else if (!strcmp(argv[k], "-n")) no_interp = true;
  }
  if (threads < 1) threads = 1;
  for (; k + 1 < argc && n < 64; k += 2, n++) {
    cfg[n][0] = atoi(argv[k]);
    cfg[n][1] = atoi(argv[k + 1]);
  }
  if (n == 0 && !strcmp(model, "rm")) {
    static const int rmN[] = {100, 1000};
    for (int i = 0; i < 2; i++, n++) {
      cfg[n][0] = rmN[i];
      cfg[n][1] = 100;
    }
  } else if (n == 0 && !strcmp(model, "pgibbs")) {
    static const int pgN[] = {10, 20, 30, 100, 1000};
    for (int i = 0; i < 5; i++, n++) {
      cfg[n][0] = pgN[i];
      cfg[n][1] = 100;
    }
  } else if (n == 0) {
    static const int defN[] = {1000, 10000, 100000};
    for (int i = 0; i < 3; i++, n++) {
      cfg[n][0] = defN[i];
      cfg[n][1] = 1000;
    }
  }
  bool pg = !strcmp(model, "pgibbs"), rm = !strcmp(model, "rm");
  if (rm)
    printf("smc with resample-move (static parameters), systematic resampling at ESS < N/2, %d thread%s\n"
           "%-7s %-11s %7s %5s %9s %12s %9s %12s %s\n", threads, threads == 1 ? "" : "s", "model",
           "particles", "N", "T", "cpu s", "steps/cpu s", "peak MiB", "log Z", "rounds; backend");
  else if (pg)
    printf("pgibbs, %d sweeps (static MH moves + conditional SMC, multinomial resampling at ESS < "
           "N/2), %d thread%s\n%-7s %-11s %7s %5s %9s %12s %9s\n", PG_SWEEPS, threads,
           threads == 1 ? "" : "s", "model", "particles", "N", "T", "cpu s", "sweeps/cpu s",
           "peak MiB");
  else
    printf("smc, systematic resampling at ESS < N/2, %d thread%s\n%-7s %-11s %7s %5s %9s %12s %9s %12s\n",
           threads, threads == 1 ? "" : "s", "model", "particles", "N", "T", "cpu s",
           "steps/cpu s", "peak MiB", "log Z");
  for (int i = 0; i < n; i++) {
    int N = cfg[i][0], T = cfg[i][1];
    if (rm) {
      static const char *rmm[] = {"kalman", "sv", "noise"};
      for (int j = 0; j < 3; j++) {
        double c = run_child(rmm[j], 7, N, T, threads);
        if (only_compiled) continue;
        double in = run_child(rmm[j], 8, N, T, threads);
        printf("%-7s %-11s %7d %5d  compiled/interpreted particle-steps per cpu s: %.1fx\n", rmm[j],
               "ratio", N, T, in / c);
      }
      continue;
    }
    if (pg) {
      for (int as = 0; as <= 1; as++) { /* plain, then PGAS */
        double c = run_child("kalman", 3 + 2 * as, N, T, threads);
        if (only_compiled || !(interp_all || N <= 100)) continue;
        double in = run_child("kalman", 4 + 2 * as, N, T, threads);
        printf("%-7s %-11s %7d %5d  compiled/interpreted sweeps per cpu s: %.1fx\n",
               as ? "pgas" : "pgibbs", "ratio", N, T, in / c);
      }
      continue;
    }
    if (!strcmp(model, "kalman") && !only_compiled) run_child(model, 2, N, T, threads);
    run_child(model, 0, N, T, threads);
    if (!only_compiled && !no_interp && (interp_all || N <= 10000)) run_child(model, 1, N, T, threads);
  }
  return 0;
}
