// two-state Gaussian HMM, forward algorithm (posteriordb hmm_example-hmm_example)
data { int<lower=1> N; int<lower=1> K; real y[N]; }
parameters { simplex[2] theta1; simplex[2] theta2; positive_ordered[2] mu; }
model {
  vector[2] g;
  vector[2] nxt;
  vector[2] lt1 = log(theta1);
  vector[2] lt2 = log(theta2);
  theta1 ~ dirichlet(rep_vector(1, 2));
  theta2 ~ dirichlet(rep_vector(1, 2));
  mu[1] ~ normal(3, 1);
  mu[2] ~ normal(10, 1);
  for (k in 1:2) g[k] = normal_lpdf(y[1] | mu[k], 1);
  for (t in 2:N) {
    for (k in 1:2)
      nxt[k] = log_sum_exp(g[1] + lt1[k], g[2] + lt2[k]) + normal_lpdf(y[t] | mu[k], 1);
    g = nxt;
  }
  target += log_sum_exp(g);
}
