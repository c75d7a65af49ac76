// GP regression with a squared-exponential kernel (posteriordb gp_pois_regr-gp_regr)
data { int<lower=1> N; real x[N]; vector[N] y; int k[N]; }
parameters { real<lower=0> rho; real<lower=0> alpha; real<lower=0> sigma; }
model {
  matrix[N, N] C = add_diag(cov_exp_quad(x, alpha, rho), sigma);
  rho ~ gamma(25, 4);
  alpha ~ normal(0, 2);
  sigma ~ normal(0, 1);
  y ~ multi_normal(rep_vector(0, N), C);
}
