# eight_schools_tau.py — the exact posterior mean, sd and kurtosis of tau in
# posteriordb's eight_schools_noncentered (mu ~ normal(0, 5), tau ~
# half-Cauchy(0, 5), theta_j = mu + tau * eta_j, y_j ~ normal(theta_j,
# sigma_j)), by one-dimensional quadrature: given tau, y_j ~ normal(mu,
# sigma_j^2 + tau^2) and mu integrates out in closed form.  Used to judge
# whether the sampler's sd of tau (reference 3.198 from posteriordb's draws)
# is biased or noisy; see docs/posteriordb.md.  Prints:
#   E tau 3.5977...  sd tau 3.2200...  kurtosis 9.093...
import mpmath as mp

mp.mp.dps = 30
y = [28, 8, -3, 7, -1, 1, 18, 12]
s = [15, 10, 16, 11, 9, 11, 10, 18]


def post(t):
    """Unnormalised p(tau | y): half-Cauchy prior times the marginal of y."""
    v = [sj * sj + t * t for sj in s]
    prec = mp.mpf(1) / 25 + sum(1 / vj for vj in v)  # mu's posterior precision
    m = sum(yj / vj for yj, vj in zip(y, v)) / prec
    q = sum(yj * yj / vj for yj, vj in zip(y, v)) - m * m * prec
    return (1 / (1 + (t / 5) ** 2) * prec ** -0.5 * mp.fprod([vj ** -0.5 for vj in v])
            * mp.e ** (-q / 2))


cuts = [0, 5, 20, 100, mp.inf]
z = mp.quad(post, cuts)
m1 = mp.quad(lambda t: t * post(t), cuts) / z
m2 = mp.quad(lambda t: t * t * post(t), cuts) / z
var = m2 - m1 * m1
m4 = mp.quad(lambda t: (t - m1) ** 4 * post(t), cuts) / z
print("E tau", mp.nstr(m1, 10), " sd tau", mp.nstr(mp.sqrt(var), 10), " kurtosis",
      mp.nstr(m4 / var ** 2, 6))
