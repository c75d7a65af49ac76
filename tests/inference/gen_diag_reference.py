#!/usr/bin/env python3
"""gen_diag_reference.py — reference values for tests/inference/test_diag.c.

An independent, plain-Python implementation of the definitions R's posterior
package uses (Vehtari et al. 2021): split chains, rank normalisation with
average ties and Blom's offset through statistics.NormalDist's inverse CDF,
R-hat = max(bulk, folded), Geyer's initial positive / monotone sequence ESS on
directly summed autocovariances (the C code uses an FFT), ESS tail from the 5%
and 95% quantile indicators, type-7 quantiles, and the weighted forms and log
evidence documented in docs/output.md.

Draw sets are generated here with random.Random (fixed seeds) and written,
with the expected values, to diag_reference.h.  Run:
    python3 tests/inference/gen_diag_reference.py > tests/inference/diag_reference.h
No third-party modules.
"""
import math
import random
import statistics

NORMAL = statistics.NormalDist()
EPS = 2.220446049250313e-16
NAN = float("nan")


# ---------------------------------------------------------------- helpers
def mean(v):
    return sum(v) / len(v)


def var(v):
    if len(v) < 2:
        return NAN
    m = mean(v)
    return sum((a - m) ** 2 for a in v) / (len(v) - 1)


def finite(v):
    return all(math.isfinite(a) for a in v)


def constant(v):
    return abs(max(v) - min(v)) < EPS


def quantile7(v, p):
    if any(math.isnan(a) for a in v):
        return NAN
    s = sorted(v)
    n = len(s)
    index = 1 + (n - 1) * p
    lo, hi = math.floor(index), math.ceil(index)
    q = s[lo - 1]
    if index > lo and s[hi - 1] != q:
        h = index - lo
        q = (1 - h) * q + h * s[hi - 1]
    return q


def split(chains):
    n = len(chains[0])
    if n == 1:
        return [list(c) for c in chains]
    h = n // 2
    out = []
    for c in chains:
        out.append(list(c[:h]))
        out.append(list(c[n - h:]))
    return out


def z_scale(chains):
    flat = [a for c in chains for a in c]
    order = sorted(range(len(flat)), key=lambda i: flat[i])
    ranks = [0.0] * len(flat)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and flat[order[j + 1]] == flat[order[i]]:
            j += 1
        r = (i + 1 + j + 1) / 2
        for k in range(i, j + 1):
            ranks[order[k]] = r
        i = j + 1
    S = len(flat)
    z = [NORMAL.inv_cdf((r - 0.375) / (S + 0.25)) for r in ranks]
    L = len(chains[0])
    return [z[c * L:(c + 1) * L] for c in range(len(chains))]


# ---------------------------------------------------------------- R-hat
def rhat_split(chains):
    flat = [a for c in chains for a in c]
    M, L = len(chains), len(chains[0])
    if M < 2 or L < 2 or not finite(flat) or constant(flat):
        return NAN
    means = [mean(c) for c in chains]
    B = L * var(means)
    W = mean([var(c) for c in chains])
    return math.sqrt((B / W + L - 1) / L)


def rhat(chains):
    flat = [a for c in chains for a in c]
    if len(flat) < 4 or any(math.isnan(a) for a in flat):
        return NAN
    rb = rhat_split(z_scale(split(chains)))
    med = statistics.median(flat)
    folded = [[abs(a - med) for a in c] for c in chains]
    if any(math.isnan(a) for c in folded for a in c):
        return NAN
    rt = rhat_split(z_scale(split(folded)))
    if math.isnan(rb) or math.isnan(rt):
        return NAN
    return max(rb, rt)


# ---------------------------------------------------------------- ESS
def ess_chains(chains):
    M, L = len(chains), len(chains[0])
    flat = [a for c in chains for a in c]
    if L < 3 or not finite(flat) or constant(flat):
        return NAN
    centred = []
    for c in chains:
        m = mean(c)
        centred.append([a - m for a in c])
    cache = {}

    def acov(t):  # chain-averaged biased autocovariance, summed directly
        if t not in cache:
            tot = 0.0
            for y in centred:
                if all(a == y[0] for a in y):
                    continue
                tot += sum(y[i] * y[i + t] for i in range(L - t)) / L
            cache[t] = tot / M
        return cache[t]

    mean_var = acov(0) * L / (L - 1)
    var_plus = mean_var * (L - 1) / L
    if M > 1:
        var_plus += var([mean(c) for c in chains])
    rho = [0.0] * L
    t = 0
    even = 1.0
    rho[0] = even
    odd = 1 - (mean_var - acov(1)) / var_plus
    rho[1] = odd
    while t < L - 5 and not math.isnan(even + odd) and even + odd > 0:
        t += 2
        even = 1 - (mean_var - acov(t)) / var_plus
        odd = 1 - (mean_var - acov(t + 1)) / var_plus
        if even + odd >= 0:
            rho[t] = even
            rho[t + 1] = odd
    max_t = t
    if even > 0:
        rho[max_t] = even
    t = 0
    while t <= max_t - 4:
        t += 2
        if rho[t] + rho[t + 1] > rho[t - 2] + rho[t - 1]:
            rho[t] = (rho[t - 2] + rho[t - 1]) / 2
            rho[t + 1] = rho[t]
    S = M * L
    # R: sum(rho_hat_t[1:max_t]); 1:0 is c(1, 0), which selects rho[0]
    s = rho[0] if max_t == 0 else sum(rho[:max_t])
    tau = -1 + 2 * s + rho[max_t]
    tau = max(tau, 1 / math.log10(S))
    return S / tau


def ess_basic(chains):
    return ess_chains(split(chains))


def ess_bulk(chains):
    if any(math.isnan(a) for c in chains for a in c):
        return NAN
    return ess_chains(z_scale(split(chains)))


def ess_tail(chains):
    flat = [a for c in chains for a in c]
    if not finite(flat) or constant(flat):
        return NAN
    out = []
    for p in (0.05, 0.95):
        q = quantile7(flat, p)
        ind = [[1.0 if a <= q else 0.0 for a in c] for c in chains]
        out.append(ess_chains(split(ind)))
    if any(math.isnan(e) for e in out):
        return NAN
    return min(out)


def summarise(chains):
    flat = [a for c in chains for a in c]
    sd = math.sqrt(var(flat)) if len(flat) > 1 else NAN
    return dict(
        mean=mean(flat), sd=sd, mcse=sd / math.sqrt(ess_basic(chains)),
        q5=quantile7(flat, 0.05), q50=quantile7(flat, 0.5), q95=quantile7(flat, 0.95),
        ess_bulk=ess_bulk(chains), ess_tail=ess_tail(chains),
        rhat=rhat(chains) if len(chains) > 1 else NAN)


# ---------------------------------------------------------------- weighted
def wquantile(pairs, p):
    # Hazen positions: cumulative weight before the draw plus half its own
    pairs = sorted(pairs)
    cum = 0.0
    prev = None
    for x, w in pairs:
        pos = cum + w / 2
        cum += w
        if p <= pos:
            if prev is None or pos == prev[0]:
                return x
            h = (p - prev[0]) / (pos - prev[0])
            return prev[1] + h * (x - prev[1])
        prev = (pos, x)
    return pairs[-1][0]


def summarise_weighted(chains, lws):
    x = [a for c in chains for a in c]
    lw = [a for c in lws for a in c]
    mx = max(lw)
    w = [math.exp(a - mx) for a in lw]
    W = sum(w)
    w = [a / W for a in w]
    m = sum(wi * xi for wi, xi in zip(w, x))
    sd = math.sqrt(sum(wi * (xi - m) ** 2 for wi, xi in zip(w, x)))
    ess = 1 / sum(wi * wi for wi in w)
    pairs = list(zip(x, w))
    return dict(mean=m, sd=sd, mcse=sd / math.sqrt(ess), ess=ess,
                q5=wquantile(pairs, 0.05), q50=wquantile(pairs, 0.5),
                q95=wquantile(pairs, 0.95))


def log_evidence(lws):
    lw = [a for c in lws for a in c]
    mx = max(lw)
    w = [math.exp(a - mx) for a in lw]
    m = mean(w)
    return mx + math.log(m), math.sqrt(var(w)) / (math.sqrt(len(w)) * m)


# ---------------------------------------------------------------- draw sets
def ar1(rng, m, n, phi, mu=0.0, offsets=None):
    out = []
    for c in range(m):
        x = rng.gauss(0, 1) / math.sqrt(max(1 - phi * phi, 1e-3))
        chain = []
        for _ in range(n):
            x = phi * x + rng.gauss(0, 1)
            chain.append(mu + (offsets[c] if offsets else 0.0) + x)
        out.append(chain)
    return out


def sticky(rng, m, n, accept):
    """MH-like chains: a proposal is accepted with probability `accept`,
    otherwise the value repeats (many exact ties)."""
    out = []
    for _ in range(m):
        x = rng.gauss(0, 1)
        chain = []
        for _ in range(n):
            if rng.random() < accept:
                x = rng.gauss(0, 1)
            chain.append(x)
        out.append(chain)
    return out


def make_sets():
    rng = random.Random(20240611)
    sets = []
    sets.append(("ar1_phi05", ar1(rng, 4, 500, 0.5), None))
    sets.append(("ar1_phi095", ar1(rng, 4, 1000, 0.95), None))
    sets.append(("different_means", ar1(rng, 4, 300, 0.3, offsets=[0, 0.5, 1.0, 1.5]), None))
    sets.append(("sticky", sticky(rng, 4, 400, 0.2), None))
    st = sticky(rng, 3, 200, 0.3)
    st[1] = [st[1][0]] * 200  # one chain stuck on a single value
    sets.append(("one_chain_stuck", st, None))
    sets.append(("constant", [[3.0] * 50 for _ in range(4)], None))
    sets.append(("single_chain", ar1(rng, 1, 400, 0.7), None))
    sets.append(("odd_length", ar1(rng, 3, 101, 0.2), None))
    sets.append(("discrete", [[float(min(int(rng.expovariate(0.5)), 9)) for _ in range(200)]
                              for _ in range(4)], None))
    sets.append(("antithetic", ar1(rng, 2, 200, -0.7), None))
    sets.append(("short", ar1(rng, 2, 7, 0.1), None))
    sets.append(("heavy_tail", [[rng.gauss(0, 1) / max(abs(rng.gauss(0, 1)), 1e-3)
                                 for _ in range(250)] for _ in range(4)], None))
    # importance sampling: x ~ N(0, 2^2) proposals, weights from N(1, 1) target
    xs, lws = [], []
    for _ in range(2):
        cx, cl = [], []
        for _ in range(300):
            x = rng.gauss(0, 2)
            lp_target = -0.5 * (x - 1) ** 2 - 0.5 * math.log(2 * math.pi)
            lp_prop = -0.5 * (x / 2) ** 2 - math.log(2) - 0.5 * math.log(2 * math.pi)
            cx.append(x)
            cl.append(lp_target - lp_prop - 3.0)
        xs.append(cx)
        lws.append(cl)
    sets.append(("weighted", xs, lws))
    return sets


def c_num(v):
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    return repr(float(v))


def main():
    sets = make_sets()
    print("/* diag_reference.h — generated by gen_diag_reference.py; do not edit. */")
    print("#ifndef DIAG_REFERENCE_H\n#define DIAG_REFERENCE_H\n#include <math.h>\n")
    print("typedef struct DiagRef {\n  const char *name;\n  int m, n;\n"
          "  const double *x, *lw; /* x[c * n + i]; lw NULL unless weighted */\n"
          "  double ess_basic, ess_bulk, ess_tail, rhat;\n"
          "  double mean, sd, mcse, q5, q50, q95, s_ess_bulk, s_ess_tail, s_rhat;\n"
          "  double q25, q975; /* diag_quantile at 0.25 and 0.975 */\n"
          "  double w_mean, w_sd, w_mcse, w_ess, w_q5, w_q50, w_q95, logz, logz_se;\n"
          "} DiagRef;\n")
    for name, chains, lws in sets:
        flat = [a for c in chains for a in c]
        print("static const double ref_%s_x[] = {" % name)
        for k in range(0, len(flat), 4):
            print("  " + ", ".join(c_num(a) for a in flat[k:k + 4]) + ",")
        print("};")
        if lws:
            fl = [a for c in lws for a in c]
            print("static const double ref_%s_lw[] = {" % name)
            for k in range(0, len(fl), 4):
                print("  " + ", ".join(c_num(a) for a in fl[k:k + 4]) + ",")
            print("};")
    print("\nstatic const DiagRef diag_refs[] = {")
    for name, chains, lws in sets:
        flat = [a for c in chains for a in c]
        s = summarise(chains)
        vals = [ess_basic(chains), ess_bulk(chains), ess_tail(chains), rhat(chains),
                s["mean"], s["sd"], s["mcse"], s["q5"], s["q50"], s["q95"],
                s["ess_bulk"], s["ess_tail"], s["rhat"],
                quantile7(flat, 0.25), quantile7(flat, 0.975)]
        if lws:
            w = summarise_weighted(chains, lws)
            lz, lzse = log_evidence(lws)
            vals += [w["mean"], w["sd"], w["mcse"], w["ess"], w["q5"], w["q50"], w["q95"],
                     lz, lzse]
        else:
            vals += [NAN] * 9
        print("  {\"%s\", %d, %d, ref_%s_x, %s," % (name, len(chains), len(chains[0]), name,
                                                   "ref_%s_lw" % name if lws else "NULL"))
        print("   " + ", ".join(c_num(v) for v in vals) + "},")
    print("};\n\n#endif")


if __name__ == "__main__":
    main()
