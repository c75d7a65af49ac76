/* amortized_toy.h — the per-datapoint conjugate toy with an encoder guide:
 * z[i] ~ normal(0, 1), x[i] ~ normal(z[i], s), posterior normal(x / (1 + s^2),
 * s / sqrt(1 + s^2)).  The guide form's program of the amortized SBC test
 * (tests/sbc/test_sbc_amortized.c) and of bench/amortized_bench.c.  The
 * likelihood sd is data, so that the SBC's negative control is the same
 * program given a wrong s. */
#ifndef PPL_AMORTIZED_TOY_H
#define PPL_AMORTIZED_TOY_H

static const char toy_src[] =
    "data { int N; vector[N] x; real<lower=0> s; }\n"
    "model {\n"
    "  plate (i in 1:N, batch = 100) {\n"
    "    real z ~ normal(0, 1);\n"
    "    x[i] ~ normal(z, s);\n"
    "  }\n"
    "}\n"
    "guide {\n"
    "  param network enc = mlp(1, [16], 2, relu);\n"
    "  plate (i in 1:N, batch = 100) {\n"
    "    vector[2] h = enc(rep_vector(x[i], 1));\n"
    "    real z ~ normal(h[1], exp(h[2]));\n"
    "  }\n"
    "}\n";

#endif
