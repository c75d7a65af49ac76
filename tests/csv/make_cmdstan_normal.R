# How tests/csv/cmdstan_normal_{1,2}.csv were made (once; the tests do not
# need R): rstan 2.21's sample_file writes Stan's CSV layout, with the warmup
# rows before "# Adaptation terminated".  y is cmdstan_normal.json's.
library(rstan)
y <- c(1.2, 0.4, 2.1, 1.7, 0.9, 1.5, 1.1, 0.3)
fit <- sampling(stan_model("cmdstan_normal.stan"), data = list(N = 8, y = y), chains = 2,
  iter = 400, warmup = 200, seed = 7, sample_file = "cmdstan_normal.csv", refresh = 0)
