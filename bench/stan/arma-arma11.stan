// ARMA(1,1) (posteriordb arma-arma11), as examples/posteriordb/arma-arma11.ppl
data { int<lower=1> T; real y[T]; }
parameters { real mu; real phi; real theta; real<lower=0> sigma; }
model {
  vector[T] err;
  real nu = mu + phi * mu;
  mu ~ normal(0, 10);
  phi ~ normal(0, 2);
  theta ~ normal(0, 2);
  sigma ~ cauchy(0, 2.5);
  err[1] = y[1] - nu;
  for (t in 2:T) {
    nu = mu + phi * y[t - 1] + theta * err[t - 1];
    err[t] = y[t] - nu;
  }
  err ~ normal(0, sigma);
}
