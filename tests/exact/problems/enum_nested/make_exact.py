#!/usr/bin/env python3
"""make_exact.py -- the exact posterior of enum_nested (model.md): a sum over
all 27 * 4^4 assignments of (a, b, d) and each datapoint's (z, c), each one
conjugate in mu (a normal prior, normal observations of mu plus a shift).
Writes exact.json beside it.  Standard library only."""
import itertools, json, math, os

here = os.path.dirname(os.path.abspath(__file__))
D = json.load(open(os.path.join(here, 'data.json')))
N, y, x, off, w, v = D['N'], D['y'], D['x'], D['off'], D['w'], D['v']
S0 = 2.0  # prior sd of mu

def conj(obs):
    """obs: (value minus shift, sd) pairs.  log evidence, posterior mean, var."""
    prec = 1 / S0 ** 2 + sum(1 / s ** 2 for _, s in obs)
    m = sum(o / s ** 2 for o, s in obs) / prec
    # log N(o | 0, diag(s^2) + S0^2 11'), by the matrix determinant lemma and
    # Sherman-Morrison
    ld = sum(math.log(s ** 2) for _, s in obs) + math.log(S0 ** 2 * prec)
    q = sum(o * o / s ** 2 for o, s in obs) - prec * m * m
    return -0.5 * (len(obs) * math.log(2 * math.pi) + ld + q), m, 1 / prec

def lse(xs):
    mx = max(xs)
    return mx + math.log(sum(math.exp(t - mx) for t in xs))

terms = []  # (log weight, a, b, d, zs, cs, post mean, post var)
for a, b, d in itertools.product(range(3), repeat=3):
    lp0 = math.log(w[a]) + math.log(v[a][b]) + math.log(w[d])
    for zc in itertools.product(range(4), repeat=N):
        zs = [k // 2 for k in zc]
        cs = [k % 2 for k in zc]
        lp = lp0
        obs = [(x - off[a] - off[b], 1.0), (x - off[d], 1.5)]
        for n in range(N):
            pc = 0.8 if zs[n] == 1 else 0.3
            lp += math.log(0.4 if zs[n] == 1 else 0.6) + math.log(pc if cs[n] == 1 else 1 - pc)
            obs.append((y[n] - (2 if zs[n] == 1 else -1) - (0.5 if cs[n] == 1 else -0.5), 1.0))
        le, m, var = conj(obs)
        terms.append((lp + le, a, b, d, zs, cs, m, var))

logZ = lse([t[0] for t in terms])
P = lambda t: math.exp(t[0] - logZ)
mean = sum(P(t) * t[6] for t in terms)
second = sum(P(t) * (t[7] + t[6] ** 2) for t in terms)
out = {
    'log_evidence': logZ,
    'mu': {'mean': mean, 'sd': math.sqrt(second - mean ** 2)},
    'a_probs': [sum(P(t) for t in terms if t[1] == k) for k in range(3)],
    'b_probs': [sum(P(t) for t in terms if t[2] == k) for k in range(3)],
    'd_probs': [sum(P(t) for t in terms if t[3] == k) for k in range(3)],
    'z_is_one_probs': [sum(P(t) for t in terms if t[4][n] == 1) for n in range(N)],
    'c_is_one_probs': [sum(P(t) for t in terms if t[5][n] == 1) for n in range(N)],
}
json.dump(out, open(os.path.join(here, 'exact.json'), 'w'), indent=1)
print(json.dumps(out, indent=1))
