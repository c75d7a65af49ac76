// logistic regression of bench/nuts_bench (bench/nuts_bench/logistic.ppl)
data { int<lower=0> N; int<lower=0> K; matrix[N, K] X; int<lower=0, upper=1> y[N]; }
parameters { real alpha; vector[K] beta; }
model {
  alpha ~ normal(0, 5);
  beta ~ normal(0, 1);
  y ~ bernoulli_logit(alpha + X * beta);
}
