/* smc_models.h — model texts that the SMC tests and bench/smc_bench.c both
 * run, kept in one place so the test checks the program the bench times. */
#ifndef PPL_TEST_SMC_MODELS_H
#define PPL_TEST_SMC_MODELS_H

/* Stochastic volatility: builtins on latents and a latent scale. */
static const char *smc_sv_src =
    "data { int T; real y[T]; real mu; real phi; real<lower=0> s; }\n"
    "model {\n"
    "  real h_prev = mu;\n"
    "  for (t in 1:T) {\n"
    "    real h ~ normal(t == 1 ? mu : mu + phi * (h_prev - mu), t == 1 ? s / sqrt(1 - phi * phi) : s);\n"
    "    y[t] ~ normal(0, exp(h / 2));\n"
    "    h_prev = h;\n"
    "  }\n"
    "  real h_last = h_prev;\n"
    "}\n";

/* Particle Gibbs: the AR coefficient a is static, the states x[t] are not. */
static const char *smc_pg_src =
    "data { int T; real y[T]; real q; real r; }\n"
    "model {\n"
    "  real a ~ uniform(-1, 1);\n"
    "  real x_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    real x ~ normal(t == 1 ? 0.0 : a * x_prev, t == 1 ? 1.0 : q);\n"
    "    y[t] ~ normal(x, r);\n"
    "    x_prev = x;\n"
    "  }\n"
    "}\n";

/* Resample-move: stochastic volatility with unknown persistence and scale
 * (static phi, sigma; a state per step). */
static const char *smc_sv_static_src =
    "data { int T; real y[T]; }\n"
    "model {\n"
    "  real<lower=-1, upper=1> phi ~ uniform(-1, 1);\n"
    "  real<lower=0> sigma ~ normal(0, 1);\n"
    "  real h_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    real h ~ normal(phi * h_prev, sigma);\n"
    "    y[t] ~ normal(0, exp(h / 2));\n"
    "    h_prev = h;\n"
    "  }\n"
    "}\n";

/* Resample-move: a Kalman model with unknown state and observation noise. */
static const char *smc_kalman_noise_src =
    "data { int T; real y[T]; real a; }\n"
    "model {\n"
    "  real q ~ gamma(2, 4);\n"
    "  real r ~ gamma(2, 4);\n"
    "  real x_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    real x ~ normal(t == 1 ? 0.0 : a * x_prev, t == 1 ? 1.0 : q);\n"
    "    y[t] ~ normal(x, r);\n"
    "    x_prev = x;\n"
    "  }\n"
    "}\n";

#endif
