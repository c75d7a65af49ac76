#!/usr/bin/env python3
"""make_data.py — the simulated data sets of tests/enum (mixtures, HMM), fixed seeds.

Run from tests/enum; rewrites mix3/mix4/mix5.data.json and hmm.data.json byte for
byte (python3's random is stable across versions for a given seed). coal.data.json
is real data and is not made here (see README.md).
"""
import json
import math
import random


def write(name, obj):
    with open(name, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def mixture(K, N, seed):
    rng = random.Random(seed)
    mus = [-6 + 12 * k / (K - 1) for k in range(K)]   # well separated, ordered
    w = [1 / K] * K
    y = []
    for _ in range(N):
        k = rng.choices(range(K), w)[0]
        y.append(round(rng.gauss(mus[k], 1.0), 6))
    write("mix%d.data.json" % K, {"N": N, "K": K, "y": y})


def hmm(T, seed):
    rng = random.Random(seed)
    K = 3
    mus = [-3.0, 0.0, 3.0]
    G = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
    z = rng.randrange(K)
    y = []
    for _ in range(T):
        y.append(round(rng.gauss(mus[z], 1.0), 6))
        z = rng.choices(range(K), G[z])[0]
    write("hmm.data.json", {"T": T, "K": K, "y": y})


for K in (3, 4, 5):
    mixture(K, 100, 1000 + K)
hmm(100, 2026)
