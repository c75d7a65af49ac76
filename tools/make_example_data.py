#!/usr/bin/env python3
"""Writes the synthetic data sets of examples/ (fixed seed, standard library only).
Run from the repository root: python3 tools/make_example_data.py"""
import json, math, random

rng = random.Random(20261128)

def dump(name, obj):
    with open(f"examples/{name}.data.json", "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")

# linear regression: y = 1 + X b + e
N, K = 100, 3
b = [0.5, -1.0, 2.0]
X = [[round(rng.gauss(0, 1), 4) for _ in range(K)] for _ in range(N)]
y = [round(1.0 + sum(x * bb for x, bb in zip(row, b)) + rng.gauss(0, 0.7), 4) for row in X]
dump("linear_regression", {"N": N, "K": K, "X": X, "y": y})

# logistic regression
N, K = 200, 3
b = [1.0, -0.5, 0.25]
X = [[round(rng.gauss(0, 1), 4) for _ in range(K)] for _ in range(N)]
y = [int(rng.random() < 1 / (1 + math.exp(-(-0.3 + sum(x * bb for x, bb in zip(row, b)))))) for row in X]
dump("logistic_regression", {"N": N, "K": K, "X": X, "y": y})

# two-component mixture
N = 60
y = [round(rng.gauss(-2, 1) if rng.random() < 0.4 else rng.gauss(3, 1), 4) for _ in range(N)]
dump("gaussian_mixture", {"N": N, "y": y})

# AR(1)
T = 100
y = [0.0]
for t in range(1, T):
    y.append(0.3 + 0.7 * y[-1] + rng.gauss(0, 0.5))
dump("ar1", {"T": T, "y": [round(v, 4) for v in y]})

# change point at year 25
T = 40
def poisson(lam):
    L, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p < L:
            return k
        k += 1
counts = [poisson(3.0 if t < 25 else 1.0) for t in range(1, T + 1)]
dump("changepoint", {"T": T, "counts": counts})
