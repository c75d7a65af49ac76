#!/usr/bin/env python3
"""gen_mv_reference.py — reference log densities for the multivariate and
vector-parameter families, computed with mpmath (40 digits) from the
definitions, on the exact double values the C test passes:

  categorical        log theta[y]
  categorical_logit  beta[y] - log sum exp(beta)
  dirichlet          Gamma-function normaliser, product of theta_k^(alpha_k - 1)
  multi_normal       determinant and inverse of Sigma by mpmath's LU
  multi_normal_cholesky  Sigma = L L' then as above
  lkj_corr_cholesky  NOT the closed-form constant the C code uses: L is mapped
                     to its canonical partial correlations z, whose LKJ law is
                     a product of Beta(b_j, b_j) densities on (-1, 1)
                     (b_j = eta + (K - 2 - j)/2, Lewandowski et al. 2009), and
                     the density of L is that over |det dL/dz|, the Jacobian
                     taken by mpmath's numerical differentiation.

Writes mv_reference.h:  python3 gen_mv_reference.py > mv_reference.h
"""
import random
from mpmath import mp, mpf, log, exp, loggamma, beta as Beta, matrix, det, lu_solve, sqrt, \
    tanh, atanh, diff, inf, nstr

mp.dps = 40
MAXK = 5


def F(x):
    return mpf(float(x))


def lg(v):
    return -inf if v == 0 else log(v)


def categorical(theta, y):
    th = [F(t) for t in theta]
    return lg(th[y - 1]) if 1 <= y <= len(th) else -inf


def categorical_logit(b, y):
    b = [F(t) for t in b]
    m = max(b)
    lse = m + log(sum(exp(t - m) for t in b))
    return b[y - 1] - lse if 1 <= y <= len(b) else -inf


def dirichlet(alpha, theta):
    a = [F(t) for t in alpha]
    th = [F(t) for t in theta]
    if any(t < 0 for t in th) or abs(sum(th) - 1) > mpf(10)**-8:
        return -inf
    lp = loggamma(sum(a)) - sum(loggamma(t) for t in a)
    for ak, tk in zip(a, th):
        if ak == 1:
            continue
        if tk == 0:
            return -inf if ak > 1 else inf
        lp += (ak - 1) * log(tk)
    return lp


def mvn(mu, S, y):
    K = len(mu)
    Sm = matrix(K, K)
    for i in range(K):
        for j in range(K):
            Sm[i, j] = F(S[i][j])
    r = matrix([F(y[i]) - F(mu[i]) for i in range(K)])
    sol = lu_solve(Sm, r)
    q = sum(r[i] * sol[i] for i in range(K))
    return -K * log(2 * mp.pi) / 2 - log(det(Sm)) / 2 - q / 2


def mvn_chol(mu, L, y):
    K = len(mu)
    S = [[sum(F(L[i][k]) * F(L[j][k]) for k in range(min(i, j) + 1)) for j in range(K)]
         for i in range(K)]
    return mvn(mu, S, y)


def cpc_to_lower(z, K):
    """strict lower triangle of L (row-major) from CPCs z (row-major)"""
    out, k = [], 0
    for i in range(1, K):
        ss = mpf(0)
        for j in range(i):
            v = z[k] * sqrt(1 - ss)
            out.append(v)
            ss += v * v
            k += 1
    return out


def lower_to_cpc(L, K):
    z = []
    for i in range(1, K):
        ss = mpf(0)
        for j in range(i):
            v = F(L[i][j])
            z.append(v / sqrt(1 - ss))
            ss += v * v
    return z


def lkj(eta, L):
    eta = F(eta)
    K = len(L)
    if K <= 1:
        return mpf(0)
    z = lower_to_cpc(L, K)
    lp, k = mpf(0), 0
    for i in range(1, K):
        for j in range(i):
            b = eta + mpf(K - 2 - j) / 2
            lp += (b - 1) * (log((1 + z[k]) / 2) + log((1 - z[k]) / 2)) - log(2 * Beta(b, b))
            k += 1
    n = len(z)
    J = matrix(n, n)
    for r in range(n):
        for c in range(n):
            J[r, c] = diff(lambda *zz: cpc_to_lower(list(zz), K)[r], z,
                           tuple(1 if q == c else 0 for q in range(n)))
    return lp - log(abs(det(J)))


def random_corr_chol(K, rnd):
    """a Cholesky factor of a correlation matrix, as doubles, from random CPCs"""
    z = [mpf(rnd.uniform(-0.9, 0.9)) for _ in range(K * (K - 1) // 2)]
    low = cpc_to_lower(z, K)
    L = [[0.0] * K for _ in range(K)]
    L[0][0] = 1.0
    k = 0
    for i in range(1, K):
        ss = mpf(0)
        for j in range(i):
            L[i][j] = float(low[k])
            ss += low[k] ** 2
            k += 1
        L[i][i] = float(sqrt(1 - ss))
    return L


def random_spd(K, rnd, scale=1.0):
    A = [[rnd.gauss(0, 1) for _ in range(K)] for _ in range(K)]
    S = [[sum(A[i][k] * A[j][k] for k in range(K)) * scale + (0.5 if i == j else 0)
          for j in range(K)] for i in range(K)]
    return S


def chol_float(S):
    K = len(S)
    L = [[0.0] * K for _ in range(K)]
    for i in range(K):
        for j in range(i + 1):
            s = S[i][j] - sum(L[i][k] * L[j][k] for k in range(j))
            L[i][j] = s ** 0.5 if i == j else s / L[j][j]
    return L


def colmajor(M):
    K = len(M)
    return [M[i][j] for j in range(K) for i in range(K)]


def rows():
    rnd = random.Random(20240601)
    out = []
    th = [0.2, 0.5, 0.3]
    for y in (1, 2, 3, 0, 4):
        out.append(("categorical", 3, th, [], [y], categorical(th, y)))
    out.append(("categorical", 1, [1.0], [], [1], categorical([1.0], 1)))
    out.append(("categorical", 3, [0.0, 0.25, 0.75], [], [1], categorical([0.0, 0.25, 0.75], 1)))
    out.append(("categorical", 2, [1e-200, 1.0], [], [1], categorical([1e-200, 1.0], 1)))
    out.append(("categorical", 5, [0.1, 0.15, 0.2, 0.25, 0.3], [], [4],
                categorical([0.1, 0.15, 0.2, 0.25, 0.3], 4)))
    for b, y in (([1.0, -2.0, 0.5], 1), ([1.0, -2.0, 0.5], 2), ([1.0, -2.0, 0.5], 3),
                 ([1000.0, 0.0], 2), ([0.0], 1), ([-700.0, -700.5, -701.0], 3),
                 ([3.0, 3.0, 3.0, 3.0], 2), ([0.2, 0.1], 3), ([-1.5, 40.0, 2.0, 0.0, 1.0], 5)):
        out.append(("categorical_logit", len(b), b, [], [y], categorical_logit(b, y)))
    for a, t in (([1.0, 1.0, 1.0], [0.2, 0.3, 0.5]), ([0.5, 2.0, 3.5], [0.1, 0.6, 0.3]),
                 ([100.0, 200.0], [0.3, 0.7]), ([0.01, 0.01, 0.01, 0.01], [0.97, 0.01, 0.01, 0.01]),
                 ([2.5], [1.0]), ([1.0, 3.0], [0.0, 1.0]), ([2.0, 3.0], [0.0, 1.0]),
                 ([2.0, 3.0], [0.5, 0.6]), ([1.5, 2.5, 0.7, 4.0, 1.0], [0.1, 0.2, 0.05, 0.4, 0.25]),
                 ([3.0, 4.0], [0.25, 0.75]), ([1e-3, 5e3], [1e-30, 1.0])):
        out.append(("dirichlet", len(a), a, [], t, dirichlet(a, t)))
    for K in (1, 2, 3, 4, 5):
        for rep in range(2):
            S = random_spd(K, rnd, 0.3 if rep else 2.0)
            mu = [rnd.uniform(-2, 2) for _ in range(K)]
            y = [m + rnd.gauss(0, 3 if rep else 1) for m in mu]
            out.append(("multi_normal", K, mu, colmajor(S), y, mvn(mu, S, y)))
            L = chol_float(S)
            out.append(("multi_normal_cholesky", K, mu, colmajor(L), y, mvn_chol(mu, L, y)))
    # an ill-conditioned covariance (correlation 0.999999)
    S = [[1.0, 0.999999], [0.999999, 1.0]]
    out.append(("multi_normal", 2, [0.0, 0.0], colmajor(S), [0.3, 0.31], mvn([0, 0], S, [0.3, 0.31])))
    for K, eta in ((1, 2.0), (2, 1.0), (2, 0.5), (2, 7.0), (3, 1.0), (3, 2.5), (4, 0.8),
                   (4, 1.0), (5, 3.0), (5, 1.0)):
        L = random_corr_chol(K, rnd)
        out.append(("lkj_corr_cholesky", K, [eta], [], colmajor(L), lkj(eta, L)))
    return out


def c(v):
    if v == -inf:
        return "-INFINITY"
    if v == inf:
        return "INFINITY"
    return nstr(v, 20)


def arr(xs):
    return "{" + ", ".join(repr(float(x)) for x in xs) + "}" if xs else "{0}"


def main():
    print("/* mv_reference.h — generated by gen_mv_reference.py (mpmath, 40 digits); do not")
    print(" * edit.  a, b: the parameters (vectors as is, matrices column-major, eta in a[0]);")
    print(" * x: the value (categorical: x[0] = y); lp: its log density/mass. */")
    print(f"#define MV_MAXK {MAXK}")
    print("typedef struct MvRef {\n  const char *fam;\n  int K;\n  double a[MV_MAXK * MV_MAXK], "
          "b[MV_MAXK * MV_MAXK], x[MV_MAXK * MV_MAXK];\n  double lp;\n} MvRef;\n")
    print("static const MvRef mv_ref[] = {")
    for fam, K, a, b, x, lp in rows():
        print(f'  {{"{fam}", {K}, {arr(a)}, {arr(b)}, {arr(x)}, {c(lp)}}},')
    print("};")


if __name__ == "__main__":
    main()
