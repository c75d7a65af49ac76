// kid's score on mother's schooling, IQ and their interaction (posteriordb kidiq-kidscore_interaction)
data { int<lower=0> N; vector[N] kid_score; vector[N] mom_hs; vector[N] mom_iq;
       real mom_hs_new; real mom_iq_new; }
transformed data { vector[N] inter = mom_hs .* mom_iq; }
parameters { vector[4] beta; real<lower=0> sigma; }
model {
  sigma ~ cauchy(0, 2.5);
  kid_score ~ normal(beta[1] + beta[2] * mom_hs + beta[3] * mom_iq + beta[4] * inter, sigma);
}
