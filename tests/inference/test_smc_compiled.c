/* test_smc_compiled.c — engine smc's compiled particle steps (ir/particle.h)
 * give the interpreted engine's bits, and programs that do not qualify say
 * why and run interpreted.
 *
 * Compiled particles draw each particle's choices from the same stream with
 * the family's own sampler, score them with the family's own density (its
 * kernel run column by column), and take the same calls on the chain's Rng,
 * so for one seed the draws, lp__, log weights and log evidence must be the
 * bytes of a `--no-jit` run (which keeps the interpreter).  Checked on the
 * shared exact problems SMC runs (kalman, hmm3), a stochastic-volatility
 * model (builtins on latents, a latent scale), a Poisson count series
 * (discrete latents, int arithmetic), a nested loop (addresses x[i,j]),
 * `target +=`, particles killed by runtime errors (a negative scale, an index
 * out of range), every resampling scheme and never, and with 1, 2 and 3
 * particle threads.  The exact values themselves (evidence, posterior
 * moments) are held by test_smc_exact.c, which runs the compiled steps now.
 *
 * Engine pgibbs runs its conditional SMC on the same steps: the chains
 * (static MH moves, the reference path kept and replayed, its resampling
 * and the pick of the next reference) must be the `--no-jit` chains' bytes
 * too, with 1, 2 and 3 particle threads, on the static-a Kalman model, the
 * shared kalman and hmm3, the count series and the nested loops with
 * killed particles; dynamic programs fall back with their reason.
 *
 * Ancestor sampling (PGAS) scores the reference's future from every
 * particle's registers on the same steps: with --ancestor-sampling the
 * chains must again be the `--no-jit` chains' bytes (the weights of the
 * reference's new ancestor are the interpreted continuations' to the bit,
 * or a draw would sooner or later differ), on the same models plus the
 * stochastic-volatility one, and the notes must show that ancestor
 * sampling moved the reference (else the comparison proves little).
 *
 * Resample-move (static parameters moved after each resampling, tempered
 * events, --rejuvenate K) replays the population on the same steps: the
 * runs must again be the `--no-jit` runs' bytes, with 1, 2 and 3 particle
 * threads: a static mean (one tempered event per observation), stochastic
 * volatility with unknown phi and sigma, a Kalman model with unknown noise
 * and one with a static AR coefficient, the shared kalman and hmm3 with
 * --rejuvenate (states and categorical states moved), the count series
 * (discrete latents: uniform and prior proposals), the nested loops
 * whose replays kill particles, statics drawn before and after an
 * observation (one discrete) with a factor, and states that the replays
 * draw afresh (outside their support at the moved static); the notes must
 * show moves accepted.  A
 * latent whose support depends on a latent falls back with its reason.
 *
 *   test_smc_compiled SHARED_EXACT_DIR TESTS_EXACT_DIR
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_compare.h"
#include "smc_models.h"
#include "tap.h"

static const char *sv_data =
    "{\"T\": 12, \"y\": [0.3, -1.2, 0.4, 0.8, -1.9, 0.1, 2.7, -1.1, 0.05, 0.6, -0.3, 1.4],"
    " \"mu\": -0.5, \"phi\": 0.9, \"s\": 0.4}";

/* counts with a latent log rate; int arithmetic on a drawn count */
static const char *pois_src =
    "data { int T; int y[T]; }\n"
    "model {\n"
    "  real l = 0;\n"
    "  int total = 0;\n"
    "  for (t in 1:T) {\n"
    "    real lr ~ normal(0.8 * l, 0.5);\n"
    "    int k ~ poisson(exp(lr));\n"
    "    total = total + k;\n"
    "    y[t] ~ poisson(k + 0.5);\n"
    "    l = lr;\n"
    "  }\n"
    "  int sum_k = total;\n"
    "}\n";
static const char *pois_data = "{\"T\": 8, \"y\": [1, 0, 3, 2, 5, 1, 0, 2]}";

/* a nested loop, a factor, and a scale that goes negative in some particles
 * (normal: sigma must be positive kills them) */
static const char *nest_src =
    "data { int I; int J; real y[I, J]; }\n"
    "model {\n"
    "  real s = 1;\n"
    "  for (i in 1:I) {\n"
    "    for (j in 1:J) {\n"
    "      real x ~ normal(0, 1);\n"
    "      s = s + x / 4;\n"
    "      y[i, j] ~ normal(x, s);\n"
    "      target += -0.1 * x * x;\n"
    "    }\n"
    "  }\n"
    "}\n";
static const char *nest_data = "{\"I\": 3, \"J\": 4, \"y\": [[0.1, 0.5, -0.2, 1.0], [0.3, 0.0, 0.7, -0.5], [1.1, 0.2, 0.4, 0.9]]}";

/* a categorical index read out of range for some particles (z + 1 = 4) */
static const char *idx_src =
    "data { int T; real y[T]; vector[3] m; simplex[3] p; }\n"
    "model {\n"
    "  for (t in 1:T) {\n"
    "    int z ~ categorical(p);\n"
    "    y[t] ~ normal(m[z + 1], 1);\n"
    "  }\n"
    "}\n";
static const char *idx_data = "{\"T\": 5, \"y\": [0.5, 1.5, 1.0, 2.2, 0.9], \"m\": [0, 1, 2], \"p\": [0.5, 0.3, 0.2]}";

/* not qualifying: a branch on a latent; a while loop (dynamic structure) */
static const char *branch_src =
    "data { int T; real y[T]; }\n"
    "model {\n"
    "  real x_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    real x ~ normal(x_prev, 1);\n"
    "    if (x > 0)\n"
    "      y[t] ~ normal(x, 1);\n"
    "    else\n"
    "      y[t] ~ normal(-x, 2);\n"
    "    x_prev = x;\n"
    "  }\n"
    "}\n";
static const char *branch_data = "{\"T\": 4, \"y\": [0.5, 1.5, -1.0, 2.2]}";
static const char *while_src =
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
    "}\n";
static const char *while_data = "{\"K\": 6, \"y\": [1, 0, 1, 1, 0, 1]}";

static const char *pg_data =
    "{\"T\": 25, \"q\": 0.5, \"r\": 1.0, \"y\": [0.3, 1.2, -0.4, 0.8, 1.9, 0.1, 0.7, 1.1, -0.6,"
    " 0.2, 1.4, 0.9, -1.1, -0.3, 0.5, 0.8, 1.6, 2.1, 1.2, 0.4, -0.2, 0.3, 0.9, -0.7, 0.1]}";

static const char *static_src =
    "data { int T; real y[T]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 1);\n"
    "  for (t in 1:T)\n"
    "    y[t] ~ normal(mu, 1);\n"
    "}\n";

static const char *kn_data =
    "{\"T\": 20, \"a\": 0.8, \"y\": [0.3, 1.2, -0.4, 0.8, 1.9, 0.1, 0.7, 1.1, -0.6, 0.2, 1.4, 0.9,"
    " -1.1, -0.3, 0.5, 0.8, 1.6, 2.1, 1.2, 0.4]}";

/* a latent support that moves with a static parameter: moves stay interpreted */
static const char *support_src =
    "data { int T; real y[T]; }\n"
    "model {\n"
    "  real a ~ normal(0, 1);\n"
    "  for (t in 1:T) {\n"
    "    real x ~ uniform(a - 1, a + 1);\n"
    "    y[t] ~ normal(x, 1);\n"
    "  }\n"
    "}\n";

/* statics drawn before and after the first observation, a discrete static,
   a student_t state, a factor: tempered, moved */
static const char *mixed_src =
    "data { int T; real y[T]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 3);\n"
    "  y[1] ~ normal(mu, 1);\n"
    "  real<lower=0> tau ~ gamma(2, 2);\n"
    "  int k ~ poisson(2);\n"
    "  real s = 0;\n"
    "  for (t in 2:T) {\n"
    "    real x ~ student_t(4, mu + 0.1 * k, tau);\n"
    "    s = s + x;\n"
    "    y[t] ~ normal(x, 1);\n"
    "    target += -0.01 * s * s;\n"
    "  }\n"
    "}\n";
static const char *mixed_data =
    "{\"T\": 15, \"y\": [0.3, 1.2, -0.4, 0.8, 1.9, 0.1, 0.7, 1.1, -0.6, 0.2, 1.4, 0.9, -1.1, -0.3, 0.5]}";

/* a state whose probability a moved static sends to 0: the replays draw the
   states outside the support afresh (each such move irreversible: refused) */
static const char *fresh_src =
    "data { int T; int y[T]; }\n"
    "model {\n"
    "  real<lower=0, upper=1> p ~ beta(1, 1);\n"
    "  for (t in 1:T) {\n"
    "    int z ~ bernoulli(fmin(1, fmax(0, 2 * p - 0.5)));\n"
    "    y[t] ~ poisson(z + 0.5);\n"
    "  }\n"
    "}\n";
static const char *fresh_data = "{\"T\": 10, \"y\": [1, 0, 2, 1, 0, 0, 1, 3, 0, 1]}";

typedef RunCfg Cfg;

static RunOut run(Cfg c) {
  c.seed = 77;
  return run_cfg(c);
}

/* Compiled (with 1, 2 and 3 particle threads) against interpreted. */
static void check(const char *what, Cfg c, bool threads) {
  c.no_jit = 1;
  RunOut in = run(c);
  c.no_jit = 0;
  RunOut co = run(c);
  tap_ok(in.ok && co.ok, "%s: both run (%s%s)", what, in.err, co.err);
  const char *eng = c.engine ? c.engine : "smc";
  char want[64];
  snprintf(want, sizeof want, "%s: compiled particle steps", eng);
  tap_ok(strstr(co.backend, want) != NULL, "%s: compiled (%s)", what, co.backend);
  snprintf(want, sizeof want, "%s: interpreted (--no-jit)", eng);
  tap_ok(strstr(in.backend, want) != NULL, "%s: --no-jit interprets (%s)", what, in.backend);
  tap_ok(run_same(&in, &co), "%s: compiled = interpreted, bit for bit (log Z %.6f / %.6f)", what,
         in.logz, co.logz);
  tap_ok(run_varied(&co) && (c.engine || (co.have_logz && isfinite(co.logz))),
         "%s: the draws vary%s", what, c.engine ? "" : " and the evidence is finite");
  if (threads)
    for (int t = 2; t <= 3; t++) {
      c.threads = t;
      RunOut o = run(c);
      tap_ok(run_same(&co, &o), "%s: compiled with %d particle threads = 1 thread", what, t);
      free(o.x);
    }
  free(in.x);
  free(co.x);
}

/* The notes' share of ancestor draws that moved the reference (-1: none). */
static double as_moved(const RunOut *o) {
  const char *p = strstr(o->notes, "ancestor sampling: ");
  long draws = 0;
  double pct = -1;
  if (!p || sscanf(p, "ancestor sampling: %ld draws, %lf%% moved", &draws, &pct) != 2 || draws <= 0)
    return -1;
  return pct;
}

/* check() with ancestor sampling, and the reference moved by it. */
static void check_as(const char *what, Cfg c, bool threads) {
  c.ancestor_sampling = 1;
  check(what, c, threads);
  RunOut o = run(c);
  double m = as_moved(&o);
  tap_ok(o.ok && m > 0, "%s: ancestor sampling moved the reference (%.0f%% of draws)", what, m);
  free(o.x);
}

/* check() on a run with moves: and the notes show moves made and accepted. */
static void check_rm(const char *what, Cfg c, bool threads) {
  check(what, c, threads);
  RunOut o = run(c);
  long rounds = 0, moves = 0;
  double pct = 0;
  const char *p = strstr(o.notes, "resample-move: ");
  bool ok = p && sscanf(p, "resample-move: %ld rounds", &rounds) == 1 &&
            (p = strstr(p, "resamplings")) && sscanf(strchr(p, ',') + 2, "%ld single-site moves (%lf%%", &moves, &pct) == 2;
  tap_ok(o.ok && ok && rounds > 0 && moves > 0 && pct > 0, "%s: moves made and accepted (%ld rounds, %ld moves, %.0f%%)",
         what, rounds, moves, pct);
  free(o.x);
}

static void check_fallback(const char *what, Cfg c, const char *reason) {
  RunOut o = run(c);
  char want[64];
  snprintf(want, sizeof want, "%s: interpreted (", c.engine ? c.engine : "smc");
  tap_ok(o.ok, "%s: runs (%s)", what, o.err);
  tap_ok(strstr(o.backend, want) && strstr(o.backend, reason),
         "%s: interpreted, with the reason '%s' (%s)", what, reason, o.backend);
  free(o.x);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_smc_compiled SHARED_EXACT_DIR TESTS_EXACT_DIR\n");
    return 2;
  }
  char kpath[512], kdata[512], hpath[512], hdata[512];
  snprintf(kpath, sizeof kpath, "%s/kalman.ppl", argv[2]);
  snprintf(kdata, sizeof kdata, "%s/kalman/data.json", argv[1]);
  snprintf(hpath, sizeof hpath, "%s/hmm3.ppl", argv[2]);
  snprintf(hdata, sizeof hdata, "%s/hmm3/data.json", argv[1]);

  check("kalman", (Cfg){.path = kpath, .data_path = kdata, .threads = 1, .chains = 2, .particles = 400,
                        .draws = 400, .rejuvenate = -1}, true);
  check("hmm3", (Cfg){.path = hpath, .data_path = hdata, .threads = 1, .chains = 1, .particles = 300,
                      .draws = 600, .rejuvenate = -1}, true);
  check("stochastic volatility", (Cfg){.src = smc_sv_src, .data = sv_data, .threads = 1, .chains = 1,
                                       .particles = 300, .draws = 300, .rejuvenate = -1}, true);
  check("poisson counts", (Cfg){.src = pois_src, .data = pois_data, .threads = 1, .chains = 1,
                                .particles = 200, .draws = 200, .rejuvenate = -1, .resample = "multinomial"}, false);
  check("nested loops, target +=, killed particles", (Cfg){.src = nest_src, .data = nest_data,
        .threads = 1, .chains = 1, .particles = 300, .draws = 300, .rejuvenate = -1,
        .resample = "residual"}, true);
  check("index out of range kills", (Cfg){.src = idx_src, .data = idx_data, .threads = 1, .chains = 1,
                                          .particles = 200, .draws = 200, .rejuvenate = -1,
                                          .resample = "stratified"}, false);
  check("kalman, --resample never", (Cfg){.path = kpath, .data_path = kdata, .threads = 1, .chains = 1,
                                          .particles = 100, .draws = 100, .rejuvenate = -1,
                                          .resample = "never"}, false);

  /* the killed particles are counted in the notes, as interpreted */
  RunOut o = run((Cfg){.src = nest_src, .data = nest_data, .threads = 1, .chains = 1, .particles = 300,
                    .draws = 300, .rejuvenate = -1, .resample = "residual"});
  tap_ok(o.ok && strstr(o.notes, "particles killed by runtime errors"),
         "nested: the notes count the particles killed by runtime errors");
  free(o.x);

  check_fallback("branch on a latent", (Cfg){.src = branch_src, .data = branch_data, .threads = 1,
                                              .chains = 1, .particles = 100, .draws = 100, .rejuvenate = -1},
                 "model.ppl:6:5: branch on a latent-dependent condition");
  check_fallback("while loop", (Cfg){.src = while_src, .data = while_data, .threads = 1, .chains = 1,
                                      .particles = 100, .draws = 100, .rejuvenate = -1},
                 "model.ppl:5:3: a while loop");
  /* resample-move on compiled particles */
  check_rm("static mean", (Cfg){.src = static_src, .data = branch_data, .threads = 1, .chains = 2,
           .particles = 100, .draws = 100, .rejuvenate = -1}, true);
  check_rm("stochastic volatility, unknown phi and sigma", (Cfg){.src = smc_sv_static_src,
           .data = sv_data, .threads = 1, .chains = 1, .particles = 200, .draws = 200,
           .rejuvenate = -1}, true);
  check_rm("kalman, unknown noise", (Cfg){.src = smc_kalman_noise_src, .data = kn_data, .threads = 1,
           .chains = 1, .particles = 150, .draws = 150, .rejuvenate = -1}, true);
  check_rm("kalman, static AR coefficient", (Cfg){.src = smc_pg_src, .data = pg_data, .threads = 1,
           .chains = 1, .particles = 100, .draws = 100, .rejuvenate = -1,
           .resample = "stratified"}, false);
  check_rm("shared kalman, --rejuvenate 2", (Cfg){.path = kpath, .data_path = kdata, .threads = 1,
           .chains = 1, .particles = 100, .draws = 100, .rejuvenate = 2}, true);
  check_rm("hmm3, --rejuvenate 2", (Cfg){.path = hpath, .data_path = hdata, .threads = 1, .chains = 1,
           .particles = 100, .draws = 100, .rejuvenate = 2}, false);
  check_rm("poisson counts, --rejuvenate 3", (Cfg){.src = pois_src, .data = pois_data, .threads = 1,
           .chains = 1, .particles = 100, .draws = 100, .rejuvenate = 3, .resample = "multinomial"}, true);
  check_rm("nested loops, killed particles, --rejuvenate 2", (Cfg){.src = nest_src, .data = nest_data,
           .threads = 1, .chains = 1, .particles = 150, .draws = 150, .rejuvenate = 2,
           .resample = "residual"}, true);
  check_rm("statics before and after an observation, a discrete static, a factor",
           (Cfg){.src = mixed_src, .data = mixed_data, .threads = 1, .chains = 1, .particles = 150,
                 .draws = 150, .rejuvenate = -1}, true);
  check_rm("states drawn afresh in the replays", (Cfg){.src = fresh_src, .data = fresh_data,
           .threads = 1, .chains = 1, .particles = 150, .draws = 150, .rejuvenate = -1}, true);
  check_fallback("resample-move, a support that depends on a latent",
                 (Cfg){.src = support_src, .data = branch_data, .threads = 1, .chains = 1,
                       .particles = 100, .draws = 100, .rejuvenate = -1},
                 "resample-move: model.ppl:5:10: the support of latent 'x' (uniform) depends on a latent");

  /* particle Gibbs: the conditional SMC on compiled particles (static
     parameters replayed, the reference kept at index 0) gives the
     interpreted chain's bits, MH moves on the statics included */
  check("pgibbs, kalman (static a)", (Cfg){.engine = "pgibbs", .src = smc_pg_src, .data = pg_data,
        .threads = 1, .chains = 2, .particles = 20, .draws = 40, .warmup = 20}, true);
  check("pgibbs, shared kalman (150 particles: rounds spread over threads)",
        (Cfg){.engine = "pgibbs", .path = kpath, .data_path = kdata, .threads = 1, .chains = 1,
              .particles = 150, .draws = 12, .warmup = 4}, true);
  check("pgibbs, hmm3", (Cfg){.engine = "pgibbs", .path = hpath, .data_path = hdata, .threads = 1,
        .chains = 1, .particles = 12, .draws = 30, .warmup = 10}, false);
  check("pgibbs, poisson counts", (Cfg){.engine = "pgibbs", .src = pois_src, .data = pois_data,
        .threads = 1, .chains = 1, .particles = 10, .draws = 30, .warmup = 10}, false);
  check("pgibbs, nested loops, killed particles", (Cfg){.engine = "pgibbs", .src = nest_src,
        .data = nest_data, .threads = 1, .chains = 1, .particles = 80, .draws = 20, .warmup = 5,
        .ess_threshold = 1}, true);

  /* PGAS: the candidates' continuations on compiled particles */
  check_as("pgas, kalman (static a)", (Cfg){.engine = "pgibbs", .src = smc_pg_src, .data = pg_data,
           .threads = 1, .chains = 2, .particles = 10, .draws = 30, .warmup = 10}, true);
  check_as("pgas, shared kalman (100 particles: continuations spread over threads)",
           (Cfg){.engine = "pgibbs", .path = kpath, .data_path = kdata, .threads = 1, .chains = 1,
                 .particles = 100, .draws = 8, .warmup = 2}, true);
  check_as("pgas, hmm3", (Cfg){.engine = "pgibbs", .path = hpath, .data_path = hdata, .threads = 1,
           .chains = 1, .particles = 6, .draws = 30, .warmup = 10}, true);
  check_as("pgas, stochastic volatility", (Cfg){.engine = "pgibbs", .src = smc_sv_src, .data = sv_data,
           .threads = 1, .chains = 1, .particles = 8, .draws = 40, .warmup = 10}, false);
  check_as("pgas, poisson counts", (Cfg){.engine = "pgibbs", .src = pois_src, .data = pois_data,
           .threads = 1, .chains = 1, .particles = 10, .draws = 30, .warmup = 10}, false);
  check_as("pgas, nested loops, killed particles", (Cfg){.engine = "pgibbs", .src = nest_src,
           .data = nest_data, .threads = 1, .chains = 1, .particles = 80, .draws = 20, .warmup = 5,
           .ess_threshold = 1}, true);
  check_fallback("pgas, branch on a latent", (Cfg){.engine = "pgibbs", .src = branch_src,
                 .data = branch_data, .threads = 1, .chains = 1, .particles = 10, .draws = 10,
                 .warmup = 5, .ancestor_sampling = 1},
                 "model.ppl:6:5: branch on a latent-dependent condition");
  check_fallback("pgibbs, branch on a latent", (Cfg){.engine = "pgibbs", .src = branch_src,
                 .data = branch_data, .threads = 1, .chains = 1, .particles = 10, .draws = 10,
                 .warmup = 5}, "model.ppl:6:5: branch on a latent-dependent condition");
  check_fallback("pgas, while loop", (Cfg){.engine = "pgibbs", .src = while_src, .data = while_data,
                 .threads = 1, .chains = 1, .particles = 10, .draws = 10, .warmup = 5,
                 .ancestor_sampling = 1}, "model.ppl:5:3: a while loop");
  return tap_done();
}
