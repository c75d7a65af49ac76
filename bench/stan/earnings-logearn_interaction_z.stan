// log earnings on standardised height, sex and their interaction, flat priors
// (posteriordb earnings-logearn_interaction_z), as the .ppl of examples/posteriordb
data { int<lower=0> N; vector[N] earn; vector[N] height; int male[N]; }
transformed data {
  vector[N] log_earn = log(earn);
  vector[N] z_height = (height - mean(height)) / sd(height);
  vector[N] male_v = to_vector(male);
  vector[N] inter = z_height .* male_v;
}
parameters { vector[4] beta; real<lower=0> sigma; }
model {
  log_earn ~ normal(beta[1] + beta[2] * z_height + beta[3] * male_v + beta[4] * inter, sigma);
}
