# make_logistic_data.py — writes logistic.data.json for bench/nuts_bench
# (fixed seed; rerun only to change the problem).
import json, math, random
random.seed(20261207)
N, K = 1000, 8
beta = [random.gauss(0, 0.7) for _ in range(K)]
X = [[round(random.gauss(0, 1), 4) for _ in range(K)] for _ in range(N)]
y = []
for row in X:
    eta = 0.3 + sum(b * x for b, x in zip(beta, row))
    y.append(1 if random.random() < 1 / (1 + math.exp(-eta)) else 0)
json.dump({"N": N, "K": K, "X": X, "y": y}, open("logistic.data.json", "w"), separators=(",", ":"))
