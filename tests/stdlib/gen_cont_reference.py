#!/usr/bin/env python3
"""gen_cont_reference.py — reference log densities and log CDFs for the 12
continuous families, computed with mpmath at 1000 significant digits from the
textbook formulas (Stan's parameterisations), written as cont_reference.h.
Inputs are the exact binary doubles the C test uses.  Run from anywhere:
    python3 tests/stdlib/gen_cont_reference.py
CI does not need mpmath: the generated header is checked in."""
import os
import mpmath as mp

mp.mp.dps = 1000  # log(1 - 1e-301) style tails need more than 300 digits
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cont_reference.h")
INF = mp.inf


def d(x):
    return mp.mpf(float(x))


def log(v):
    return -INF if v == 0 else mp.log(v)


# each family: (lpdf(x, *p), cdf(x, *p), sf(x, *p)) as exact mpmath functions
def normal():
    lp = lambda x, m, s: -((x - m) / s) ** 2 / 2 - mp.log(s) - mp.log(2 * mp.pi) / 2
    return lp, lambda x, m, s: mp.ncdf((x - m) / s), lambda x, m, s: mp.ncdf(-(x - m) / s)


def std_normal():
    lp, c, s = normal()
    return (lambda x: lp(x, 0, 1)), (lambda x: c(x, 0, 1)), (lambda x: s(x, 0, 1))


def student_t():
    def lp(x, nu, m, s):
        z = (x - m) / s
        return (mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2 - mp.log(s)
                - (nu + 1) / 2 * mp.log(1 + z * z / nu))

    def lower(t, nu):  # P(T < t) for t <= 0
        return mp.betainc(nu / 2, mp.mpf(1) / 2, 0, nu / (nu + t * t), regularized=True) / 2

    def cdf(x, nu, m, s):
        t = (x - m) / s
        return lower(t, nu) if t <= 0 else 1 - lower(-t, nu)

    return lp, cdf, lambda x, nu, m, s: cdf(2 * m - x, nu, m, s)


def cauchy():
    lp = lambda x, m, s: -mp.log(mp.pi) - mp.log(s) - mp.log(1 + ((x - m) / s) ** 2)
    cdf = lambda x, m, s: mp.mpf(1) / 2 + mp.atan((x - m) / s) / mp.pi
    return lp, cdf, lambda x, m, s: cdf(2 * m - x, m, s)


def logistic():
    def lp(x, m, s):
        z = (x - m) / s
        return -z - mp.log(s) - 2 * mp.log(1 + mp.exp(-z))
    return (lp, lambda x, m, s: 1 / (1 + mp.exp(-(x - m) / s)),
            lambda x, m, s: 1 / (1 + mp.exp((x - m) / s)))


def lognormal():
    def lp(x, m, s):
        if x <= 0:
            return -INF
        return -((mp.log(x) - m) / s) ** 2 / 2 - mp.log(s) - mp.log(2 * mp.pi) / 2 - mp.log(x)
    cdf = lambda x, m, s: 0 if x <= 0 else mp.ncdf((mp.log(x) - m) / s)
    sf = lambda x, m, s: 1 if x <= 0 else mp.ncdf(-(mp.log(x) - m) / s)
    return lp, cdf, sf


def exponential():
    lp = lambda x, b: -INF if x < 0 else mp.log(b) - b * x
    cdf = lambda x, b: 0 if x <= 0 else -mp.expm1(-b * x)
    sf = lambda x, b: 1 if x <= 0 else mp.exp(-b * x)
    return lp, cdf, sf


def gamma():
    def lp(x, a, b):
        if x < 0:
            return -INF
        if x == 0:
            return INF if a < 1 else (mp.log(b) if a == 1 else -INF)
        return a * mp.log(b) - mp.loggamma(a) + (a - 1) * mp.log(x) - b * x
    cdf = lambda x, a, b: 0 if x <= 0 else mp.gammainc(a, 0, b * x, regularized=True)
    sf = lambda x, a, b: 1 if x <= 0 else mp.gammainc(a, b * x, INF, regularized=True)
    return lp, cdf, sf


def inv_gamma():
    def lp(x, a, b):
        if x <= 0:
            return -INF
        return a * mp.log(b) - mp.loggamma(a) - (a + 1) * mp.log(x) - b / x
    cdf = lambda x, a, b: 0 if x <= 0 else mp.gammainc(a, b / x, INF, regularized=True)
    sf = lambda x, a, b: 1 if x <= 0 else mp.gammainc(a, 0, b / x, regularized=True)
    return lp, cdf, sf


def weibull():
    def lp(x, a, s):
        if x < 0:
            return -INF
        if x == 0:
            return INF if a < 1 else (-mp.log(s) if a == 1 else -INF)
        return mp.log(a) - mp.log(s) + (a - 1) * mp.log(x / s) - (x / s) ** a
    cdf = lambda x, a, s: 0 if x <= 0 else -mp.expm1(-(x / s) ** a)
    sf = lambda x, a, s: 1 if x <= 0 else mp.exp(-(x / s) ** a)
    return lp, cdf, sf


def beta():
    def lp(x, a, b):
        if x < 0 or x > 1:
            return -INF
        if x == 0:
            return INF if a < 1 else (-mp.log(mp.beta(a, b)) if a == 1 else -INF)
        if x == 1:
            return INF if b < 1 else (-mp.log(mp.beta(a, b)) if b == 1 else -INF)
        return (a - 1) * mp.log(x) + (b - 1) * mp.log(1 - x) - mp.log(mp.beta(a, b))
    cdf = lambda x, a, b: 0 if x <= 0 else (1 if x >= 1 else mp.betainc(a, b, 0, x, regularized=True))
    sf = lambda x, a, b: 1 if x <= 0 else (0 if x >= 1 else mp.betainc(a, b, x, 1, regularized=True))
    return lp, cdf, sf


def uniform():
    lp = lambda x, a, b: -mp.log(b - a) if a <= x <= b else -INF
    cdf = lambda x, a, b: 0 if x <= a else (1 if x >= b else (x - a) / (b - a))
    sf = lambda x, a, b: 1 if x <= a else (0 if x >= b else (b - x) / (b - a))
    return lp, cdf, sf


CASES = {
    "normal": (normal, [((0, 1), [0, 1, -1.5, 3, -8, 8, -38, 38, -40, 30, 1e-10]),
                        ((2.5, 0.01), [2.5, 2.49, 2.6]),
                        ((-1e3, 1e3), [0, -5e4])]),
    "std_normal": (std_normal, [((), [0, 0.3, -2, 5, -10, 10, -37.6, -37.4, -45, 12, -1e-8, 1.5, -100, 100, 7])]),
    "student_t": (student_t, [((3, 0, 1), [0, 1, -2.5, 10, -1e3, 1e3, 1e8, -1e30, 1e-6]),
                              ((0.5, 1, 2), [1, -1e6, 50]),
                              ((30, -2, 0.5), [-2.1, 5]),
                              ((1e5, 0, 1), [1.5, -6]), ((2, 0, 1), [-1e150, 1e200])]),
    "cauchy": (cauchy, [((0, 1), [0, 1, -1, 1e-9, -1e10, 1e10, 1e300, 50]),
                        ((3, 0.1), [3, 2.5, 1e5, -1e12]),
                        ((-1, 20), [0, -1e4, -1e300])]),
    "logistic": (logistic, [((0, 1), [0, 1, -3, 30, -30, -700, 700, 40]),
                            ((2, 0.5), [2.2, -100, 100]),
                            ((-10, 3), [-10, 0, -60, 50])]),
    "lognormal": (lognormal, [((0, 1), [1, 0.5, 2, 1e-20, 1e20, 1e-300, 0, -1, 1e300]),
                              ((3, 0.25), [20, 1, 1000]),
                              ((-2, 2), [0.1, 1e-5, 1e5])]),
    "exponential": (exponential, [((1,), [0, 1, 0.5, 1e-12, 30, 700, 800, -1]),
                                  ((0.01,), [1, 1e3, 1e-10]),
                                  ((50,), [0.02, 10, 1e-300, 20])]),
    "gamma": (gamma, [((2, 1), [1, 0.5, 5, 1e-10, 40, 800, 0, -1]),
                      ((0.5, 2), [0.1, 1e-8, 3, 100]),
                      ((1, 3), [0, 1]),
                      ((100, 10), [10, 7, 14, 2]),
                      ((7.5, 0.01), [750, 1e4]), ((1e4, 1), [1e4, 9.5e3, 1.05e4]), ((2, 1), [1e-300])]),
    "inv_gamma": (inv_gamma, [((2, 1), [1, 0.5, 5, 1e-3, 1e4, 0, -1]),
                              ((0.5, 2), [0.1, 1e-3, 1e6, 1e300]),
                              ((50, 40), [0.8, 0.4, 2, 5])]),
    "weibull": (weibull, [((2, 1), [1, 0.5, 3, 1e-10, 30, 0, -1]),
                          ((0.5, 2), [0.1, 1e-8, 1e4, 3]),
                          ((1, 3), [0, 2]),
                          ((5, 10), [10, 2, 20]), ((2, 3), [1e-200, 1e-15])]),
    "beta": (beta, [((2, 3), [0.5, 0.1, 0.9, 1e-10, 1 - 1e-10, 0, 1, -0.1, 1.1]),
                    ((0.5, 0.5), [0.5, 1e-8, 0.999999]),
                    ((1, 1), [0.3, 0]),
                    ((200, 300), [0.4, 0.3, 0.5]),
                    ((0.1, 20), [1e-5, 0.2]), ((1e3, 5e3), [0.1, 0.2, 0.25])]),
    "uniform": (uniform, [((0, 1), [0.5, 0, 1, 1e-12, 1 - 1e-12, -0.5, 2]),
                          ((-3, 7), [-2.99, 6.5, 0, 7]),
                          ((1e-3, 2e-3), [1.5e-3, 1.001e-3]),
                          ((-1e5, 1e5), [0, 99999.5])]),
}


def c(v):
    v = mp.mpf(v)
    if mp.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    return repr(float(v))


rows = []
for fam, (mk, groups) in CASES.items():
    lp, cdf, sf = mk()
    for params, xs in groups:
        ps = [d(p) for p in params]
        for x in xs:
            xx = d(x)
            rows.append((fam, params, x, lp(xx, *ps), log(cdf(xx, *ps)), log(sf(xx, *ps))))

with open(OUT, "w") as f:
    f.write("/* cont_reference.h — generated by gen_cont_reference.py (mpmath, 1000 digits). Do not edit. */\n")
    f.write("typedef struct { const char *fam; int np; double p[3]; double x, lpdf, lcdf, lccdf; } ContRef;\n")
    f.write("static const ContRef cont_ref[] = {\n")
    for fam, params, x, a, b, cc in rows:
        ps = ", ".join(c(d(p)) for p in params) or "0"
        f.write('  {"%s", %d, {%s}, %s, %s, %s, %s},\n' % (fam, len(params), ps, c(d(x)), c(a), c(b), c(cc)))
    f.write("};\n")
print("wrote", len(rows), "rows to", OUT)
