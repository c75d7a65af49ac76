#!/usr/bin/env python3
"""gen_engines_reference.py — exact posterior summaries, evidences and log
densities for the models in test_engines.c and test_logdensity.c, computed
independently of ppl with mpmath (closed forms, exact sums, quadrature).

Writes engines_reference.h next to this script.  Run: python3 gen_engines_reference.py
"""
import os
from mpmath import mp, mpf, sqrt, log, exp, pi, quad, inf, loggamma as lgamma, matrix, det, inverse

mp.dps = 30


def normal_lpdf(x, mu, sd):
    return -log(sd) - log(2 * pi) / 2 - (x - mu) ** 2 / (2 * sd ** 2)


def lognormal_lpdf(x, mu, sd):
    return -log(x) + normal_lpdf(log(x), mu, sd)


def poisson_lpmf(k, lam):
    return k * log(lam) - lam - lgamma(k + 1)


out = []


def define(name, value):
    out.append("#define %s %s" % (name, mp.nstr(value, 20, min_fixed=-30, max_fixed=30)))


def array(ctype, name, values):
    out.append("static const %s %s[] = {%s};" % (ctype, name, ", ".join(
        mp.nstr(mpf(v), 17) if ctype == "double" else str(v) for v in values)))


# ---- A: normal-normal, mu ~ normal(1, 2), y ~ normal(mu, 1.5) ----
A_y = [mpf("0.3"), mpf("2.1"), mpf("1.7"), mpf("-0.4"), mpf("1.2")]
m0, s0, sig = mpf(1), mpf(2), mpf("1.5")
prec = 1 / s0 ** 2 + len(A_y) / sig ** 2
A_mean = (m0 / s0 ** 2 + sum(A_y) / sig ** 2) / prec
A_sd = sqrt(1 / prec)
n = len(A_y)
cov = matrix(n, n)
for i in range(n):
    for j in range(n):
        cov[i, j] = s0 ** 2 + (sig ** 2 if i == j else 0)
r = matrix([y - m0 for y in A_y])
A_logev = -n / 2 * log(2 * pi) - log(det(cov)) / 2 - (r.T * inverse(cov) * r)[0] / 2
array("double", "A_y", A_y)
define("A_POST_MEAN", A_mean)
define("A_POST_SD", A_sd)
define("A_LOG_EVIDENCE", A_logev)
# cross-check the evidence by quadrature over mu
q = quad(lambda mu: exp(normal_lpdf(mu, m0, s0) + sum(normal_lpdf(y, mu, sig) for y in A_y)),
         [-inf, inf])
assert abs(log(q) - A_logev) < mpf("1e-20")

# ---- B: z ~ bernoulli(0.3); y ~ normal(z ? 2 : -1, 1) ----
B_y = [mpf("0.5"), mpf("1.1"), mpf("0.2")]
l1 = log(mpf("0.3")) + sum(normal_lpdf(y, 2, 1) for y in B_y)
l0 = log(mpf("0.7")) + sum(normal_lpdf(y, -1, 1) for y in B_y)
mx = max(l0, l1)
B_logev = mx + log(exp(l0 - mx) + exp(l1 - mx))
array("double", "B_y", B_y)
define("B_P_Z1", exp(l1 - B_logev))
define("B_LOG_EVIDENCE", B_logev)

# ---- C: n ~ poisson(3); y ~ poisson(n + 0.5), y = 7 ----
C_y = 7
w = [exp(poisson_lpmf(k, 3) + poisson_lpmf(C_y, k + mpf("0.5"))) for k in range(200)]
Z = sum(w)
C_mean = sum(k * w[k] for k in range(200)) / Z
C_sd = sqrt(sum(k * k * w[k] for k in range(200)) / Z - C_mean ** 2)
define("C_Y", C_y)
define("C_POST_MEAN", C_mean)
define("C_POST_SD", C_sd)

# ---- D: real<lower=0> s ~ normal(0, 1) (half-normal); y ~ normal(0, s) ----
D_y = [mpf("0.8"), mpf("-1.3"), mpf("0.4")]


def D_unnorm(s):
    return exp(log(2) + normal_lpdf(s, 0, 1) + sum(normal_lpdf(y, 0, s) for y in D_y))


Z = quad(D_unnorm, [0, 1, inf])
D_mean = quad(lambda s: s * D_unnorm(s), [0, 1, inf]) / Z
D_sd = sqrt(quad(lambda s: s * s * D_unnorm(s), [0, 1, inf]) / Z - D_mean ** 2)
array("double", "D_y", D_y)
define("D_POST_MEAN", D_mean)
define("D_POST_SD", D_sd)
define("D_LOG_EVIDENCE", log(Z))

# ---- E: K = 1 + number of successes before the first failure of bernoulli(0.4);
#          K latents x ~ normal(0, 1); y ~ normal(sum x, 1), y = 2.5 ----
E_y = mpf("2.5")
w = [mpf("0.6") * mpf("0.4") ** (k - 1) * exp(normal_lpdf(E_y, 0, sqrt(k + 1)))
     for k in range(1, 300)]
Z = sum(w)
E_mean = sum((k + 1) * w[k] for k in range(len(w))) / Z
E_sd = sqrt(sum((k + 1) ** 2 * w[k] for k in range(len(w))) / Z - E_mean ** 2)
define("E_Y", E_y)
define("E_POST_MEAN_K", E_mean)
define("E_POST_SD_K", E_sd)
define("E_P_K1", w[0] / Z)

# ---- F: simplex[3] th ~ dirichlet(alpha); z ~ categorical(th) ----
F_alpha = [2, 3, 4]
F_z = [1, 3, 3, 2, 3, 1, 3, 3, 2, 3]
post = [F_alpha[i] + sum(1 for z in F_z if z == i + 1) for i in range(3)]
a0 = sum(post)
array("double", "F_alpha", F_alpha)
array("int", "F_z", F_z)
for i in range(3):
    define("F_POST_MEAN_%d" % (i + 1), mpf(post[i]) / a0)
    define("F_POST_SD_%d" % (i + 1), sqrt(mpf(post[i]) * (a0 - post[i]) / (a0 ** 2 * (a0 + 1))))

# ---- T: int<lower=1, upper=5> k ~ poisson(2) (truncated); y ~ poisson(k + 0.5), y = 4 ----
T_y = 4
w = [exp(poisson_lpmf(k, 2) + poisson_lpmf(T_y, k + mpf("0.5"))) for k in range(1, 6)]
Z = sum(w)
T_mean = sum((k + 1) * w[k] for k in range(5)) / Z
define("T_Y", T_y)
define("T_POST_MEAN", T_mean)
define("T_POST_SD", sqrt(sum((k + 1) ** 2 * w[k] for k in range(5)) / Z - T_mean ** 2))

# ---- Q: int z ~ categorical(theta), theta = (0.2, 0.3, 0.5); y ~ normal(z, 1), y = 1.4 ----
Q_theta = [mpf("0.2"), mpf("0.3"), mpf("0.5")]
Q_y = mpf("1.4")
w = [Q_theta[k] * exp(normal_lpdf(Q_y, k + 1, 1)) for k in range(3)]
Z = sum(w)
Q_mean = sum((k + 1) * w[k] for k in range(3)) / Z
array("double", "Q_theta", Q_theta)
define("Q_Y", Q_y)
define("Q_POST_MEAN", Q_mean)
define("Q_POST_SD", sqrt(sum((k + 1) ** 2 * w[k] for k in range(3)) / Z - Q_mean ** 2))

# ---- G (log density): mu ~ normal(1, 2); real<lower=0> sigma ~ lognormal(0, 1);
#      y ~ normal(mu, sigma), y = A_y; theta = (mu, log sigma) ----
G_theta = [(mpf("0.3"), mpf("-0.2")), (mpf("-1.0"), mpf("0.5")), (mpf("2.5"), mpf("1.7"))]
G_lp = []
for mu, u in G_theta:
    s = exp(u)
    G_lp.append(normal_lpdf(mu, 1, 2) + lognormal_lpdf(s, 0, 1) + u +
                sum(normal_lpdf(y, mu, s) for y in A_y))
array("double", "G_theta", [v for t in G_theta for v in t])
array("double", "G_lp", G_lp)


# ---- H (log density): real<lower=-1, upper=2> a ~ uniform(-1, 2);
#      simplex[3] th ~ dirichlet(alpha = F_alpha); theta = (u, y1, y2) ----
def inv_logit(x):
    return 1 / (1 + exp(-x))


H_theta = [(mpf("0.4"), mpf("-0.3"), mpf("1.2")), (mpf("-2.0"), mpf("0.7"), mpf("-0.9"))]
H_lp, H_x = [], []
for u, y1, y2 in H_theta:
    z = inv_logit(u)
    a = -1 + 3 * z
    lp = -log(3) + log(3) + log(z) + log(1 - z)
    K = 3
    xs, rest = [], mpf(1)
    for k, yk in enumerate([y1, y2], start=1):
        zk = inv_logit(yk - log(K - k))
        xk = rest * zk
        lp += log(zk) + log(1 - zk) + log(rest)
        xs.append(xk)
        rest -= xk
    xs.append(rest)
    lp += lgamma(sum(F_alpha)) - sum(lgamma(al) for al in F_alpha)
    lp += sum((al - 1) * log(x) for al, x in zip(F_alpha, xs))
    H_lp.append(lp)
    H_x.append([a] + xs)
array("double", "H_theta", [v for t in H_theta for v in t])
array("double", "H_lp", H_lp)
array("double", "H_x", [v for t in H_x for v in t])

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "engines_reference.h"), "w") as f:
    f.write("/* engines_reference.h — generated by gen_engines_reference.py (mpmath, 30 digits):\n"
            " * exact posterior moments, log evidences and log densities for test_engines.c\n"
            " * and test_logdensity.c.  Do not edit. */\n")
    f.write("#ifndef ENGINES_REFERENCE_H\n#define ENGINES_REFERENCE_H\n")
    f.write("\n".join(out) + "\n#endif\n")
