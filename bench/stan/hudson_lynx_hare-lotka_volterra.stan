// Lotka-Volterra on the log populations, RK45 (posteriordb hudson_lynx_hare-lotka_volterra),
// as examples/posteriordb/hudson_lynx_hare-lotka_volterra.ppl
functions {
  real[] dlogz_dt(real t, real[] logz, real[] theta, real[] x_r, int[] x_i) {
    real u = exp(logz[1]);
    real v = exp(logz[2]);
    return { theta[1] - theta[2] * v, -theta[3] + theta[4] * u };
  }
}
data { int<lower=0> N; real ts[N]; real<lower=0> y_init[2]; real<lower=0> y[N, 2]; }
transformed data { real x_r[0]; int x_i[0]; }
parameters { real<lower=0> theta[4]; vector<lower=0>[2] z_init; real<lower=0> sigma[2]; }
model {
  real logz[N, 2] = integrate_ode_rk45(dlogz_dt, to_array_1d(log(z_init)), 0, ts, theta, x_r, x_i,
                                       1e-6, 1e-6, 1e6);
  theta ~ normal({1, 0.05, 1, 0.05}, {0.5, 0.05, 0.5, 0.05});
  z_init ~ lognormal(log(10), 1);
  sigma ~ lognormal(-1, 1);
  for (k in 1:2) {
    y_init[k] ~ lognormal(log(z_init[k]), sigma[k]);
    for (n in 1:N) y[n, k] ~ lognormal(logz[n, k], sigma[k]);
  }
}
