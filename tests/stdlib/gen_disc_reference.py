#!/usr/bin/env python3
"""gen_disc_reference.py — reference log masses and log CDFs for the discrete
families, computed with mpmath at 50 digits straight from the definitions: masses from
binomial coefficients and Gamma functions, CDFs as direct sums of the masses
(each tail summed separately, so tiny tails keep their digits; the two tails
must add up to 1).  Writes disc_reference.h for test_disc.c; run it again after
changing the points:  python3 gen_disc_reference.py > disc_reference.h
"""
from mpmath import mp, mpf, log, log1p, exp, loggamma, binomial, inf, nstr

mp.dps = 50


def F(x):
    """the exact value of a C double literal"""
    return mpf(float(x))


def lg(v):
    return -inf if v == 0 else log(v)


def inv_logit(a):
    return 1 / (1 + exp(-a))


# Each family: (pmf-ish functions) -> returns (lpmf, lcdf, lccdf) at integer n.
def bernoulli(th, n):
    th = F(th)
    pm = {0: 1 - th, 1: th}.get(n, mpf(0))
    cdf = mpf(0) if n < 0 else (1 - th if n < 1 else mpf(1))
    return lg(pm), lg(cdf), lg(1 - cdf) if n < 1 else -inf


def bernoulli_logit(a, n):
    th, q = inv_logit(F(a)), inv_logit(-F(a))  # q: 1 - th would round to 0 at a = 800
    pm = {0: q, 1: th}.get(n, mpf(0))
    if n < 0:
        return lg(pm), -inf, mpf(0)
    if n < 1:
        return lg(pm), lg(q), lg(th)
    return lg(pm), mpf(0), -inf


def tail_sum(lp0, k0, step, ratio, kmin, kmax):
    """sum of pmf(k) for k = k0, k0+step, ... inside [kmin, kmax], pmf(k0) =
    exp(lp0), successive terms by the exact ratio pmf(k+step)/pmf(k); stops
    once the terms decrease and fall below 1e-45 of the sum (unimodal pmfs)."""
    if k0 < kmin or k0 > kmax:
        return mpf(0)
    t = exp(lp0)
    s, k = t, k0
    while kmin <= k + step <= kmax:
        t1 = t * ratio(k, k + step)
        s += t1
        k += step
        if t1 < t and t1 < s * mpf(10)**-45:
            break
        t = t1
    return s


def tails(lpmf, up_ratio, n, kmin, kmax):
    """(log P(X <= n), log P(X > n)) by direct summation of the masses"""
    if n < kmin:
        return -inf, mpf(0)
    if n >= kmax:
        return mpf(0), -inf

    def ratio(k, k1):
        return up_ratio(k) if k1 > k else 1 / up_ratio(k1)
    lo = tail_sum(lpmf(min(n, kmax)), min(n, kmax), -1, ratio, kmin, kmax) if n >= kmin else mpf(0)
    hi = tail_sum(lpmf(max(n + 1, kmin)), max(n + 1, kmin), 1, ratio, kmin, kmax) if n < kmax else mpf(0)
    assert abs(lo + hi - 1) < mpf(10)**-30, (lo, hi, lo + hi - 1)
    # the larger side from the smaller one: 1 - tiny keeps its digits
    return (lg(lo) if lo < hi else log1p(-hi)), (lg(hi) if hi <= lo else log1p(-lo))


def binom_core(N, th, n, q=None):
    def lpmf(k):
        if k < 0 or k > N:
            return -inf
        if th == 0 or th == 1:
            return mpf(0) if k == (0 if th == 0 else N) else -inf
        return log(binomial(N, k)) + k * log(th) + (N - k) * log(q)
    if q is None:
        q = 1 - th
    if th == 0 or th == 1:
        k = 0 if th == 0 else N
        return lpmf(n), (mpf(0) if n >= k else -inf), (mpf(0) if n < k else -inf)
    lc, lu = tails(lpmf, lambda k: (N - k) / mpf(k + 1) * th / q, n, 0, N)
    return lpmf(n), lc, lu


def binomial_(N, th, n):
    return binom_core(N, F(th), n)


def binomial_logit(N, a, n):
    return binom_core(N, inv_logit(F(a)), n, inv_logit(-F(a)))


def pois_core(lam, n):
    def lpmf(k):
        if k < 0:
            return -inf
        if lam == 0:
            return mpf(0) if k == 0 else -inf
        return k * log(lam) - lam - loggamma(k + 1)
    if lam == 0:
        return lpmf(n), (mpf(0) if n >= 0 else -inf), (mpf(0) if n < 0 else -inf)
    lc, lu = tails(lpmf, lambda k: lam / (k + 1), n, 0, inf)
    return lpmf(n), lc, lu


def poisson(lam, n):
    return pois_core(F(lam), n)


def poisson_log(a, n):
    return pois_core(exp(F(a)), n)


def neg_binomial_2(mu, phi, n):
    mu, phi = F(mu), F(phi)
    q = mu / (mu + phi)

    def lpmf(k):
        if k < 0:
            return -inf
        return (loggamma(k + phi) - loggamma(phi) - loggamma(k + 1) + k * log(mu / (mu + phi))
                + phi * log(phi / (mu + phi)))
    lc, lu = tails(lpmf, lambda k: (k + phi) / (k + 1) * q, n, 0, inf)
    return lpmf(n), lc, lu


def geometric(th, n):
    th = F(th)
    if n < 0:
        return -inf, -inf, mpf(0)
    pm = th * (1 - th)**n
    surv = (1 - th)**(n + 1)  # P(X > n)
    return lg(pm), lg(1 - surv), lg(surv)


def discrete_uniform(lo, hi, n):
    m = hi - lo + 1
    pm = mpf(1) / m if lo <= n <= hi else mpf(0)
    cdf = mpf(0) if n < lo else (mpf(1) if n >= hi else mpf(n - lo + 1) / m)
    return lg(pm), lg(cdf), lg(1 - cdf)


POINTS = [
    ("bernoulli", bernoulli, [(0.3, 0), (0.3, 1), (0.0, 0), (0.0, 1), (1.0, 1), (1.0, 0),
                              (1e-12, 1), (1e-12, 0), (0.3, 2), (0.3, -1)]),
    ("bernoulli_logit", bernoulli_logit, [(0.0, 1), (2.5, 0), (2.5, 1), (-40.0, 1), (-40.0, 0),
                                          (40.0, 0), (800.0, 0), (-3.0, 2), (-3.0, -1),
                                          (1e-9, 1)]),
    ("binomial", binomial_, [(10, 0.3, 3), (10, 0.3, 0), (10, 0.3, 10), (10, 0.0, 0),
                             (10, 1.0, 10), (10, 1.0, 9), (0, 0.4, 0), (1000, 0.01, 0),
                             (1000, 0.5, 480), (1000, 0.5, 400), (100000, 0.3, 30000),
                             (100000, 0.3, 29000), (1000000, 0.3, 300100), (50, 1e-10, 1),
                             (50, 0.999999, 49), (20, 0.3, -1), (20, 0.3, 21)]),
    ("binomial_logit", binomial_logit, [(10, 0.0, 5), (10, -2.0, 0), (10, -2.0, 3),
                                        (10, 30.0, 10), (10, 30.0, 9), (10, -30.0, 1),
                                        (200, 1.5, 150), (200, 1.5, 100), (5, 0.3, 6),
                                        (100000, -1.0, 27000)]),
    ("poisson", poisson, [(3.5, 0), (3.5, 3), (3.5, 20), (0.0, 0), (0.0, 2), (1e-3, 5),
                          (1e-8, 1), (100.0, 100), (100.0, 50), (100.0, 170),
                          (1e6, 1000000), (1e6, 999000), (1e6, 1003000), (2.0, -1)]),
    ("poisson_log", poisson_log, [(0.0, 0), (0.0, 2), (1.2, 3), (-5.0, 0), (-5.0, 3),
                                  (-800.0, 0), (-800.0, 2), (10.0, 22026), (10.0, 21500),
                                  (3.0, -1)]),
    ("neg_binomial_2", neg_binomial_2, [(3.0, 2.0, 0), (3.0, 2.0, 2), (3.0, 2.0, 15),
                                        (10.0, 1e8, 12), (10.0, 1e8, 0), (100.0, 0.5, 0),
                                        (100.0, 0.5, 1000), (0.01, 0.01, 3), (1e4, 50.0, 9000),
                                        (1e4, 50.0, 30000), (2.5, 7.0, -1)]),
    ("geometric", geometric, [(0.3, 0), (0.3, 4), (0.3, 100), (1.0, 0), (1.0, 3),
                              (1e-6, 0), (1e-6, 1000000), (0.999, 2), (0.5, -1), (0.0, 0)]),
    ("discrete_uniform", discrete_uniform, [(1, 6, 1), (1, 6, 3), (1, 6, 6), (1, 6, 0),
                                            (1, 6, 7), (-3, 3, 0), (5, 5, 5), (5, 5, 4),
                                            (0, 1000000, 999999), (-10, -2, -5)]),
]


def c(v):
    if v == -inf:
        return "-INFINITY"
    if v == inf:
        return "INFINITY"
    if abs(v) < mpf(10)**-300:  # below the double range: the C value is 0
        return "0.0"
    return nstr(v, 20, min_fixed=-inf, max_fixed=inf) if v == 0 else nstr(v, 20)


def main():
    print("/* disc_reference.h — generated by gen_disc_reference.py (mpmath, 50 digits);")
    print(" * do not edit.  family, params, n, log mass, log P(X <= n), log P(X > n). */")
    print("typedef struct DiscRef {\n  const char *fam;\n  double p[3];\n  double n;\n"
          "  double lpmf, lcdf, lccdf;\n} DiscRef;\n")
    print("static const DiscRef disc_ref[] = {")
    for name, fn, pts in POINTS:
        for pt in pts:
            *params, n = pt
            lp, lc, lu = fn(*params, n)
            ps = ", ".join(repr(float(p)) for p in params) or "0"
            print(f'  {{"{name}", {{{ps}}}, {n}, {c(lp)}, {c(lc)}, {c(lu)}}},')
    print("};")


if __name__ == "__main__":
    main()
