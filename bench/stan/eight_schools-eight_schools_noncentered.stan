// eight schools, non-centred (posteriordb eight_schools-eight_schools_noncentered)
data { int<lower=0> J; real y[J]; real<lower=0> sigma[J]; }
parameters { real mu; real<lower=0> tau; vector[J] theta_std; }
transformed parameters { vector[J] theta = mu + tau * theta_std; }
model {
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
  theta_std ~ normal(0, 1);
  y ~ normal(theta, sigma);
}
