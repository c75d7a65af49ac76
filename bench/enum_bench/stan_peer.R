# stan_peer.R — the hand-marginalised Stan programs of bench/enum_bench.c's
# problems (the HMM and the mixture of tests/enum, the same priors as
# hmm_hand.ppl and mix_hand.ppl), fitted by rstan's NUTS with Stan's defaults
# (4 chains x 1000 warmup + 1000 draws, one core).  Prints one line a problem:
#   stan PROBLEM MIN_ESS_BULK SECONDS
# SECONDS: the chains' own time (get_elapsed_time: warmup + sampling; the C++
# compilation is not counted). enum_bench.c runs it and reads these lines.
#
#   Rscript bench/enum_bench/stan_peer.R SOURCE_ROOT [SEED]
suppressMessages({library(rstan); library(jsonlite)})
if (!dir.exists(system.file("include", package = "BH")) && dir.exists("/usr/include/boost"))
  rstan_options(boost_lib = "/usr/include")
args <- commandArgs(trailingOnly = TRUE)
root <- normalizePath(args[1])
seed <- if (length(args) > 1) as.integer(args[2]) else 1
dir <- file.path(root, "tests", "enum")

stan_hmm <- "
data { int<lower=1> T; int<lower=1> K; real y[T]; }
parameters { simplex[K] rho; simplex[K] Gamma[K]; ordered[K] mu; real<lower=0> sigma; }
model {
  vector[K] alpha;
  rho ~ dirichlet(rep_vector(1, K));
  for (j in 1:K) Gamma[j] ~ dirichlet(rep_vector(1, K));
  mu ~ normal(0, 5);
  sigma ~ lognormal(0, 1);
  for (k in 1:K) alpha[k] = log(rho[k]) + normal_lpdf(y[1] | mu[k], sigma);
  for (t in 2:T) {
    vector[K] nxt;
    for (k in 1:K) {
      vector[K] acc;
      for (j in 1:K) acc[j] = alpha[j] + log(Gamma[j][k]);
      nxt[k] = log_sum_exp(acc) + normal_lpdf(y[t] | mu[k], sigma);
    }
    alpha = nxt;
  }
  target += log_sum_exp(alpha);
}
"
stan_mix <- "
data { int<lower=1> N; int<lower=1> K; real y[N]; }
parameters { simplex[K] theta; ordered[K] mu; real<lower=0> sigma; }
model {
  vector[K] log_theta = log(theta);
  theta ~ dirichlet(rep_vector(2, K));
  mu ~ normal(0, 10);
  sigma ~ lognormal(0, 1);
  for (n in 1:N) {
    vector[K] lp = log_theta;
    for (k in 1:K) lp[k] += normal_lpdf(y[n] | mu[k], sigma);
    target += log_sum_exp(lp);
  }
}
"
problems <- list(list(name = "hmm", code = stan_hmm, data = "hmm.data.json"),
                 list(name = "mixture", code = stan_mix, data = "mix3.data.json"))
for (p in problems) {
  sm <- stan_model(model_code = p$code)
  d <- fromJSON(file.path(dir, p$data))
  capture.output(fit <- suppressMessages(suppressWarnings(
    sampling(sm, data = d, chains = 4, iter = 2000, warmup = 1000, seed = seed, cores = 1,
             refresh = 0))))
  a <- as.array(fit)
  pars <- setdiff(dimnames(a)[[3]], "lp__")
  ess <- min(sapply(pars, function(v) ess_bulk(a[, , v])))
  cat(sprintf("stan %s %.1f %.3f\n", p$name, ess, sum(get_elapsed_time(fit))))
}
