data { int N; vector[N] y; }
parameters { real mu; real<lower=0> sigma; vector[2] z; }
model { mu ~ normal(0, 10); sigma ~ exponential(1); z ~ normal(0, 1); y ~ normal(mu, sigma); }
generated quantities { real mu2 = mu * 2; }
