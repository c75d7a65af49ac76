/* test_smc_threads.c — engine smc gives the same bytes for any number of
 * particle threads.
 *
 * Particles advance between events in parallel worker threads; each particle
 * has its own Rng stream and everything order-dependent (weights, resampling,
 * rejuvenation's adaptation, draws) happens in the chain's thread; a round of
 * resample-move's moves runs in parallel too, each particle's from its own
 * stream with the scales fixed for the round.  So for a given seed the
 * draws, their log weights, lp__ and the log evidence must be bit-identical
 * with 1, 2 and 3 particle threads (the chain's share of the thread budget:
 * ppl_config.threads / chains), on models that exercise the paths a thread
 * could disturb: dynamic structure with runtime errors killing particles,
 * recursion with a generated block, resample-move, and a long Kalman filter
 * with 2 chains sharing the budget, resample-move on compiled particles
 * (its replays of the population spread over the threads); and pgibbs with
 * ancestor sampling, whose
 * candidates are scored in parallel too.  The statistical check with threads > 1
 * (Kalman evidence against the exact value) is in test_smc_exact.c, which runs
 * with 2 particle threads per chain.
 *
 *   test_smc_threads SHARED_EXACT_DIR TESTS_EXACT_DIR
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_compare.h"
#include "tap.h"

/* A while loop of random length; `y[n]` reads past the end of y when the loop
 * runs too long, so some particles die of a runtime error. */
static const char *dyn_src =
    "data { int K; int y[K]; }\n"
    "model {\n"
    "  int n = 0;\n"
    "  int stop = 0;\n"
    "  while (stop == 0) {\n"
    "    n = n + 1;\n"
    "    int z ~ bernoulli(0.3);\n"
    "    y[n] ~ bernoulli(z == 1 ? 0.8 : 0.2);\n"
    "    int s ~ bernoulli(0.3);\n"
    "    stop = s;\n"
    "  }\n"
    "  int len = n;\n"
    "}\n"
    "generated { real u = uniform_rng(0, 1); }\n";
static const char *dyn_data = "{\"K\": 6, \"y\": [1, 0, 1, 1, 0, 1]}";

static const char *geo_src =
    "int flips(real p) {\n"
    "  int head ~ bernoulli(p);\n"
    "  if (head == 1)\n"
    "    return 0;\n"
    "  return 1 + flips(p);\n"
    "}\n"
    "data { int<lower=0> observed; }\n"
    "model {\n"
    "  real<lower=0, upper=1> p ~ beta(1, 1);\n"
    "  int n = flips(p);\n"
    "  observed ~ poisson(n + 0.5);\n"
    "}\n"
    "generated { int tails = n; real noise = normal_rng(0, 1); }\n";
static const char *geo_data = "{\"observed\": 3}";

static const char *seq_src =
    "data { int N; real y[N]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 1);\n"
    "  for (i in 1:N)\n"
    "    y[i] ~ normal(mu, 1);\n"
    "}\n";
/* A regression observed in one statement: tempered steps, block moves of
 * (a, b, sigma) with a constrained sigma, single-site moves. */
static const char *reg_src =
    "data { int N; vector[N] x; vector[N] y; }\n"
    "model {\n"
    "  real a ~ normal(0, 5);\n"
    "  real b ~ normal(0, 5);\n"
    "  real<lower=0> sigma ~ exponential(1);\n"
    "  y ~ normal(a + b * x, sigma);\n"
    "}\n";
static const char *reg_data =
    "{\"N\": 12, \"x\": [0.1, 0.5, 0.9, 1.3, 1.7, 2.1, 2.5, 2.9, 3.3, 3.7, 4.1, 4.5],"
    " \"y\": [1.2, 1.9, 2.1, 3.3, 3.2, 4.4, 5.1, 5.0, 6.3, 6.6, 7.4, 8.1]}";

static const char *seq_data = "{\"N\": 8, \"y\": [0.3, 1.2, -0.4, 0.8, 1.9, 0.1, 0.7, 1.1]}";

/* One run of source (or file) with data (JSON text or file) under a thread
 * budget. */
static RunOut run_engine(const char *engine, const char *src, const char *path, const char *data,
                         const char *data_path, int threads, int chains, int particles, int draws,
                         int rejuvenate, const char *resample) {
  return run_cfg((RunCfg){.engine = engine, .name = "threads.ppl", .src = src, .path = path,
                          .data = data, .data_path = data_path, .threads = threads,
                          .chains = chains, .particles = particles, .draws = draws, .warmup = 5,
                          .rejuvenate = rejuvenate, .resample = resample,
                          .ancestor_sampling = !strcmp(engine, "pgibbs"), .seed = 4242});
}

static RunOut run(const char *src, const char *path, const char *data, const char *data_path,
                  int threads, int chains, int particles, int draws, int rejuvenate,
                  const char *resample) {
  return run_engine("smc", src, path, data, data_path, threads, chains, particles, draws,
                    rejuvenate, resample);
}

/* Runs with 1, 2 and 3 particle threads (chains = 1) must agree bit for bit. */
static void check_threads(const char *what, const char *src, const char *path, const char *data,
                          const char *data_path, int particles, int draws, int rejuvenate,
                          const char *resample) {
  RunOut o[3];
  for (int t = 0; t < 3; t++) {
    o[t] = run(src, path, data, data_path, t + 1, 1, particles, draws, rejuvenate, resample);
    tap_ok(o[t].ok, "%s: runs with %d particle thread%s (%s)", what, t + 1, t ? "s" : "", o[t].err);
  }
  tap_ok(run_same(&o[0], &o[1]), "%s: 2 threads give the same draws, weights and evidence as 1", what);
  tap_ok(run_same(&o[0], &o[2]), "%s: 3 threads give the same draws, weights and evidence as 1", what);
  /* the comparison could pass vacuously if nothing varied */
  tap_ok(run_varied(&o[0]) && o[0].have_logz && isfinite(o[0].logz),
         "%s: the draws vary and the evidence is finite (%.4f)", what, o[0].logz);
  for (int t = 0; t < 3; t++) free(o[t].x);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_smc_threads SHARED_EXACT_DIR TESTS_EXACT_DIR\n");
    return 2;
  }
  char kpath[512], kdata[512];
  snprintf(kpath, sizeof kpath, "%s/kalman.ppl", argv[2]);
  snprintf(kdata, sizeof kdata, "%s/kalman/data.json", argv[1]);

  check_threads("dyn (runtime errors kill particles)", dyn_src, NULL, dyn_data, NULL, 300, 600, 0,
                "systematic");
  check_threads("geometric recursion, generated block", geo_src, NULL, geo_data, NULL, 400, 400, 0,
                "multinomial");
  check_threads("static mean, --rejuvenate 2", seq_src, NULL, seq_data, NULL, 200, 200, 2,
                "residual");
  check_threads("kalman T=100", NULL, kpath, NULL, kdata, 600, 600, 0, "stratified");
  /* resample-move's moves run in parallel too (own streams, scales adapted
     between rounds): automatic rounds on a static parameter with a recursion
     below it, a tempered regression, and dynamic structure with killed
     particles moved twice per resampling */
  check_threads("geometric recursion, automatic resample-move", geo_src, NULL, geo_data, NULL, 400,
                400, -1, "systematic");
  check_threads("regression, tempered resample-move", reg_src, NULL, reg_data, NULL, 300, 300, -1,
                "stratified");
  check_threads("dyn, --rejuvenate 2", dyn_src, NULL, dyn_data, NULL, 300, 300, 2, "multinomial");

  /* a budget of 4 threads for 2 chains: 2 chain threads, 2 particle threads each */
  RunOut a = run(NULL, kpath, NULL, kdata, 1, 2, 300, 300, 0, "systematic");
  RunOut b = run(NULL, kpath, NULL, kdata, 4, 2, 300, 300, 0, "systematic");
  tap_ok(a.ok && b.ok && run_same(&a, &b), "kalman, 2 chains: 4 threads (2 per chain) = 1 thread (%s%s)",
         a.err, b.err);
  tap_ok(a.ok && a.chains == 2 &&
             memcmp(a.x, a.x + (size_t)a.draws * (size_t)a.cols, sizeof(double) * (size_t)a.cols) != 0,
         "kalman, 2 chains: the chains differ");
  free(a.x);
  free(b.x);

  /* resample-move on compiled particles (every state moved, tempered
     events): its replays of the population spread over the particle threads */
  check_threads("kalman, --rejuvenate 1 (compiled moves)", NULL, kpath, NULL, kdata, 150, 150, 1,
                "systematic");
  a = run(NULL, kpath, NULL, kdata, 1, 2, 150, 150, 1, "systematic");
  b = run(NULL, kpath, NULL, kdata, 4, 2, 150, 150, 1, "systematic");
  tap_ok(a.ok && b.ok && run_same(&a, &b) && strstr(a.backend, "compiled particle steps"),
         "kalman --rejuvenate 1 (compiled moves), 2 chains: 4 threads (2 per chain) = 1 thread (%s%s)",
         a.err, b.err);
  free(a.x);
  free(b.x);

  /* pgibbs with ancestor sampling: particles and candidates in 1 or 2 threads
     (130 particles: enough for a round to be spread) */
  a = run_engine("pgibbs", NULL, kpath, NULL, kdata, 1, 1, 130, 15, 0, "systematic");
  b = run_engine("pgibbs", NULL, kpath, NULL, kdata, 2, 1, 130, 15, 0, "systematic");
  tap_ok(a.ok && b.ok && run_same(&a, &b),
         "kalman, pgibbs --ancestor-sampling: 2 threads give the same draws as 1 (%s%s)", a.err,
         b.err);
  free(a.x);
  free(b.x);
  a = run_engine("pgibbs", dyn_src, NULL, dyn_data, NULL, 1, 1, 200, 15, 0, "systematic");
  b = run_engine("pgibbs", dyn_src, NULL, dyn_data, NULL, 3, 1, 200, 15, 0, "systematic");
  tap_ok(a.ok && b.ok && run_same(&a, &b),
         "dyn, pgibbs --ancestor-sampling: 3 threads give the same draws as 1 (%s%s)", a.err,
         b.err);
  free(a.x);
  free(b.x);
  return tap_done();
}
