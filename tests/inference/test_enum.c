/* test_enum.c — discrete latents summed out by enumeration (ir/enum.h),
 * through ppl.h as a host sees them: the log density of the naturally
 * written program equals the brute-force sum over every configuration of its
 * discrete latents, computed here from a twin that takes them as data and
 * adds their log probabilities (ppl_log_density once per configuration), to
 * 1e-12 relative, and its gradient equals the configurations' gradients
 * weighted by their posterior probabilities, under the interpreter and the
 * JIT (which must compile the marginalised program); the cases: K = 3, 5
 * mixtures, mix2's element form, a change point, HMM chains (the forward
 * algorithm) with the state in a variable or an array element.  A value of zero
 * probability (a simplex with a zero) leaves the gradient finite.  Then what
 * `ppl check` and the engine selector say, reasons for programs that are not
 * enumerated, and that --engine mh still runs the original program. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

typedef struct Case {
  const char *name;
  const char *natural; /* the program as written */
  const char *twin;    /* the discrete latents as data `zs`, their lpmf added */
  const char *data;    /* JSON members without braces, shared */
  int nz, K;           /* discrete scalars and the support's size */
  int lo;              /* the support's first value */
} Case;

/* K = 3..5 mixtures, local form (scalar in the loop) */
static const char *mix_nat =
    "data { int N; int K; real y[N]; }\n"
    "model {\n"
    "  simplex[K] theta ~ dirichlet(rep_vector(2, K));\n"
    "  vector[K] mu ~ normal(0, 5);\n"
    "  real<lower=0> sigma ~ lognormal(0, 1);\n"
    "  for (n in 1:N) {\n"
    "    int z ~ categorical(theta);\n"
    "    y[n] ~ normal(mu[z], sigma);\n"
    "  }\n"
    "}\n";
static const char *mix_twin =
    "data { int N; int K; real y[N]; int zs[N]; }\n"
    "model {\n"
    "  simplex[K] theta ~ dirichlet(rep_vector(2, K));\n"
    "  vector[K] mu ~ normal(0, 5);\n"
    "  real<lower=0> sigma ~ lognormal(0, 1);\n"
    "  for (n in 1:N) {\n"
    "    target += categorical_lpmf(zs[n] | theta);\n"
    "    y[n] ~ normal(mu[zs[n]], sigma);\n"
    "  }\n"
    "}\n";

/* mix2_enum's element form: int z[N] drawn at once, read as z[n] */
static const char *mix2_nat =
    "data { int N; real y[N]; }\n"
    "model {\n"
    "  real mu1 ~ normal(-2, 1.5);\n"
    "  real mu2 ~ normal(2, 1.5);\n"
    "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
    "  int z[N] ~ bernoulli(p);\n"
    "  for (n in 1:N)\n"
    "    y[n] ~ normal(z[n] == 1 ? mu2 : mu1, 1);\n"
    "}\n";
static const char *mix2_twin =
    "data { int N; real y[N]; int zs[N]; }\n"
    "model {\n"
    "  real mu1 ~ normal(-2, 1.5);\n"
    "  real mu2 ~ normal(2, 1.5);\n"
    "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
    "  target += bernoulli_lpmf(zs | p);\n"
    "  for (n in 1:N)\n"
    "    y[n] ~ normal(zs[n] == 1 ? mu2 : mu1, 1);\n"
    "}\n";

/* a change point, coal-mining style: the top-level scalar form */
static const char *cp_nat =
    "data { int T; int D[T]; }\n"
    "model {\n"
    "  real<lower=0> e ~ exponential(0.5);\n"
    "  real<lower=0> l ~ exponential(0.5);\n"
    "  int s ~ discrete_uniform(1, T);\n"
    "  for (t in 1:T)\n"
    "    D[t] ~ poisson(t < s ? e : l);\n"
    "}\n";
static const char *cp_twin =
    "data { int T; int D[T]; int zs[1]; }\n"
    "model {\n"
    "  real<lower=0> e ~ exponential(0.5);\n"
    "  real<lower=0> l ~ exponential(0.5);\n"
    "  target += discrete_uniform_lpmf(zs[1] | 1, T);\n"
    "  for (t in 1:T)\n"
    "    D[t] ~ poisson(t < zs[1] ? e : l);\n"
    "}\n";

/* the change point with its rates declared after it (moved before it) */
static const char *cpl_nat =
    "data { int T; int D[T]; }\n"
    "model {\n"
    "  int s ~ discrete_uniform(1, T);\n"
    "  real<lower=0> e ~ exponential(0.5);\n"
    "  real r = 2 * e;\n"
    "  real<lower=0> l ~ exponential(0.5);\n"
    "  for (t in 1:T)\n"
    "    D[t] ~ poisson(t < s ? r / 2 : l);\n"
    "}\n";

/* a category of probability zero, and a condition and a factor in the segment */
static const char *zero_nat =
    "data { int N; real y[N]; simplex[3] w; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  for (n in 1:N) {\n"
    "    int z ~ categorical(w);\n"
    "    real m = mu[z];\n"
    "    condition(z != 2 || y[n] > -10);\n"
    "    target += -0.1 * m * m;\n"
    "    y[n] ~ normal(m, 1);\n"
    "  }\n"
    "}\n";
static const char *zero_twin =
    "data { int N; real y[N]; simplex[3] w; int zs[N]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  for (n in 1:N) {\n"
    "    target += categorical_lpmf(zs[n] | w);\n"
    "    real m = mu[zs[n]];\n"
    "    condition(zs[n] != 2 || y[n] > -10);\n"
    "    target += -0.1 * m * m;\n"
    "    y[n] ~ normal(m, 1);\n"
    "  }\n"
    "}\n";

/* a chain (an HMM with unknown emission means): the forward algorithm */
static const char *hmm_nat =
    "data { int T; int K; real y[T]; simplex[K] trans[K]; simplex[K] init; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  real<lower=0> sigma ~ lognormal(0, 0.5);\n"
    "  int z_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    int z ~ categorical(t == 1 ? init : trans[z_prev]);\n"
    "    y[t] ~ normal(mu[z], sigma);\n"
    "    z_prev = z;\n"
    "  }\n"
    "  int z_last = z_prev;\n"
    "}\n";
static const char *hmm_twin =
    "data { int T; int K; real y[T]; simplex[K] trans[K]; simplex[K] init; int zs[T]; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  real<lower=0> sigma ~ lognormal(0, 0.5);\n"
    "  for (t in 1:T) {\n"
    "    target += categorical_lpmf(zs[t] | t == 1 ? init : trans[zs[t - 1]]);\n"
    "    y[t] ~ normal(mu[zs[t]], sigma);\n"
    "  }\n"
    "}\n";

/* the same chain with its state in an array element: z[t] = zt, read as z[t - 1] */
static const char *hmma_nat =
    "data { int T; int K; real y[T]; simplex[K] trans[K]; simplex[K] init; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  real<lower=0> sigma ~ lognormal(0, 0.5);\n"
    "  int z[T] = rep_array(1, T);\n"
    "  for (t in 1:T) {\n"
    "    int zt ~ categorical(t == 1 ? init : trans[z[t - 1]]);\n"
    "    z[t] = zt;\n"
    "    y[t] ~ normal(mu[z[t]], sigma);\n"
    "  }\n"
    "}\n";

/* a chain whose emission reads the previous state too: K x K terms a step */
static const char *hmmp_nat =
    "data { int T; int K; real y[T]; simplex[K] trans[K]; simplex[K] init; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  int z_prev = 1;\n"
    "  for (t in 1:T) {\n"
    "    real m = mu[z_prev];\n"
    "    int z ~ categorical(t == 1 ? init : trans[z_prev]);\n"
    "    y[t] ~ normal(mu[z] + 0.5 * m, 1);\n"
    "    z_prev = z;\n"
    "  }\n"
    "}\n";
static const char *hmmp_twin =
    "data { int T; int K; real y[T]; simplex[K] trans[K]; simplex[K] init; int zs[T]; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  for (t in 1:T) {\n"
    "    real m = mu[t == 1 ? 1 : zs[t - 1]];\n"
    "    target += categorical_lpmf(zs[t] | t == 1 ? init : trans[zs[t - 1]]);\n"
    "    y[t] ~ normal(mu[zs[t]] + 0.5 * m, 1);\n"
    "  }\n"
    "}\n";

/* several discrete latents in one segment (variable elimination): b's
   distribution depends on a, and one likelihood reads both, so b is summed
   inside a's sum (a joint factor of 3 x 3) */
static const char *two_nat =
    "data { int N; real y[N]; simplex[3] w; simplex[3] v[3]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  int a ~ categorical(w);\n"
    "  real<lower=0> sigma ~ lognormal(0, 0.5);\n"
    "  int b ~ categorical(v[a]);\n"
    "  for (n in 1:N) y[n] ~ normal(mu[a] + mu[b], sigma);\n"
    "}\n";
static const char *two_twin =
    "data { int N; real y[N]; simplex[3] w; simplex[3] v[3]; int zs[2]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  real<lower=0> sigma ~ lognormal(0, 0.5);\n"
    "  target += categorical_lpmf(zs[1] | w) + categorical_lpmf(zs[2] | v[zs[1]]);\n"
    "  for (n in 1:N) y[n] ~ normal(mu[zs[1]] + mu[zs[2]], sigma);\n"
    "}\n";
/* independent latents, declared together and observed apart: summed one
   after the other (the second one's statements run after the first's sum) */
static const char *indep_nat =
    "data { int N; real y[N]; real x[N]; simplex[3] w; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  int a ~ categorical(w);\n"
    "  int b ~ categorical(w);\n"
    "  real s = 0;\n"
    "  for (n in 1:N) y[n] ~ normal(mu[a], 1);\n"
    "  for (n in 1:N) x[n] ~ normal(mu[b], 1);\n"
    "  target += -0.5 * s;\n"
    "}\n";
static const char *indep_twin =
    "data { int N; real y[N]; real x[N]; simplex[3] w; int zs[2]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  target += categorical_lpmf(zs[1] | w) + categorical_lpmf(zs[2] | w);\n"
    "  for (n in 1:N) y[n] ~ normal(mu[zs[1]], 1);\n"
    "  for (n in 1:N) x[n] ~ normal(mu[zs[2]], 1);\n"
    "}\n";
/* a chain of three (a -> b -> c), a latent in several observations, and an
   independent one after them */
static const char *three_nat =
    "data { real y; real x; simplex[2] w; simplex[2] v[2]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  int a ~ categorical(w);\n"
    "  int b ~ categorical(v[a]);\n"
    "  int c ~ categorical(v[b]);\n"
    "  int d ~ categorical(v[2]);\n"
    "  y ~ normal(mu[a] - mu[c], 1);\n"
    "  x ~ normal(mu[a], 2);\n"
    "  x ~ normal(mu[d], 1);\n"
    "}\n";
static const char *three_twin =
    "data { real y; real x; simplex[2] w; simplex[2] v[2]; int zs[4]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  target += categorical_lpmf(zs[1] | w) + categorical_lpmf(zs[2] | v[zs[1]]);\n"
    "  target += categorical_lpmf(zs[3] | v[zs[2]]) + categorical_lpmf(zs[4] | v[2]);\n"
    "  y ~ normal(mu[zs[1]] - mu[zs[3]], 1);\n"
    "  x ~ normal(mu[zs[1]], 2);\n"
    "  x ~ normal(mu[zs[4]], 1);\n"
    "}\n";
/* a mixture whose component has a discrete sub-choice, per datapoint */
static const char *sub_nat =
    "data { int N; real y[N]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
    "  for (n in 1:N) {\n"
    "    int z ~ bernoulli(p);\n"
    "    int c ~ bernoulli(z == 1 ? 0.8 : 0.3);\n"
    "    real m = mu[z + 1];\n"
    "    int e ~ bernoulli(0.4);\n"
    "    y[n] ~ normal(m + (c == 1 ? 1 : -1), 1);\n"
    "    y[n] ~ normal(e, 3);\n"
    "  }\n"
    "}\n";
static const char *sub_twin =
    "data { int N; real y[N]; int zs[3 * N]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
    "  for (n in 1:N) {\n"
    "    int z = zs[3 * n - 2];\n"
    "    int c = zs[3 * n - 1];\n"
    "    target += bernoulli_lpmf(z | p) + bernoulli_lpmf(c | z == 1 ? 0.8 : 0.3);\n"
    "    target += bernoulli_lpmf(zs[3 * n] | 0.4);\n"
    "    y[n] ~ normal(mu[z + 1] + (c == 1 ? 1 : -1), 1);\n"
    "    y[n] ~ normal(zs[3 * n], 3);\n"
    "  }\n"
    "}\n";

/* variable elimination in a min-fill order (the groups of enum.h): a chain
   a -> b -> c -> d -> e with each observed apart (K x K per factor, not
   K^5), a tree, a loop (a -> b -> d, a -> c, c and d observed together), and a chain per
   datapoint in a loop */
static const char *chain5_nat =
    "data { real x[5]; simplex[3] w; simplex[3] v[3]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  int a ~ categorical(w);\n"
    "  int b ~ categorical(v[a]);\n"
    "  int c ~ categorical(v[b]);\n"
    "  real<lower=0> s ~ lognormal(0, 0.5);\n"
    "  int d ~ categorical(v[c]);\n"
    "  int e ~ categorical(v[d]);\n"
    "  x[1] ~ normal(mu[a], s);\n"
    "  x[2] ~ normal(mu[b], s);\n"
    "  x[3] ~ normal(mu[c], s);\n"
    "  real m = mu[d] * 0.5;\n"
    "  x[4] ~ normal(m, s);\n"
    "  x[5] ~ normal(mu[e] + m, s);\n"
    "}\n";
static const char *chain5_twin =
    "data { real x[5]; simplex[3] w; simplex[3] v[3]; int zs[5]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  real<lower=0> s ~ lognormal(0, 0.5);\n"
    "  target += categorical_lpmf(zs[1] | w);\n"
    "  for (k in 2:5) target += categorical_lpmf(zs[k] | v[zs[k - 1]]);\n"
    "  x[1] ~ normal(mu[zs[1]], s);\n"
    "  x[2] ~ normal(mu[zs[2]], s);\n"
    "  x[3] ~ normal(mu[zs[3]], s);\n"
    "  x[4] ~ normal(mu[zs[4]] * 0.5, s);\n"
    "  x[5] ~ normal(mu[zs[5]] + mu[zs[4]] * 0.5, s);\n"
    "}\n";
static const char *tree_nat =
    "data { real x[5]; simplex[3] w; simplex[3] v[3]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  int a ~ categorical(w);\n"
    "  int b ~ categorical(v[a]);\n"
    "  int c ~ categorical(v[a]);\n"
    "  int d ~ categorical(v[b]);\n"
    "  int e ~ discrete_uniform(1, 3);\n"
    "  x[1] ~ normal(mu[b] + mu[e], 1);\n"
    "  x[2] ~ normal(mu[c], 1);\n"
    "  x[3] ~ normal(mu[d], 1);\n"
    "}\n";
static const char *tree_twin =
    "data { real x[5]; simplex[3] w; simplex[3] v[3]; int zs[5]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  target += categorical_lpmf(zs[1] | w) + categorical_lpmf(zs[2] | v[zs[1]]);\n"
    "  target += categorical_lpmf(zs[3] | v[zs[1]]) + categorical_lpmf(zs[4] | v[zs[2]]);\n"
    "  target += discrete_uniform_lpmf(zs[5] | 1, 3);\n"
    "  x[1] ~ normal(mu[zs[2]] + mu[zs[5]], 1);\n"
    "  x[2] ~ normal(mu[zs[3]], 1);\n"
    "  x[3] ~ normal(mu[zs[4]], 1);\n"
    "}\n";
static const char *loop_nat =
    "data { real y; real x; simplex[3] w; simplex[3] v[3]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  int a ~ categorical(w);\n"
    "  int b ~ categorical(v[a]);\n"
    "  int c ~ categorical(v[4 - a]);\n"
    "  int d ~ categorical(v[b]);\n"
    "  y ~ normal(mu[a], 1);\n"
    "  x ~ normal(mu[c] - mu[d], 1.5);\n"
    "}\n";
static const char *loop_twin =
    "data { real y; real x; simplex[3] w; simplex[3] v[3]; int zs[4]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  target += categorical_lpmf(zs[1] | w) + categorical_lpmf(zs[2] | v[zs[1]]);\n"
    "  target += categorical_lpmf(zs[3] | v[4 - zs[1]]);\n"
    "  target += categorical_lpmf(zs[4] | v[zs[2]]);\n"
    "  y ~ normal(mu[zs[1]], 1);\n"
    "  x ~ normal(mu[zs[3]] - mu[zs[4]], 1.5);\n"
    "}\n";
static const char *lchain_nat =
    "data { int N; real y[N]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
    "  for (n in 1:N) {\n"
    "    int z ~ bernoulli(p);\n"
    "    int c ~ bernoulli(z == 1 ? 0.8 : 0.3);\n"
    "    int e ~ bernoulli(c == 1 ? 0.6 : 0.1);\n"
    "    y[n] ~ normal(mu[z + 1], 1);\n"
    "    y[n] ~ normal(e - c, 2);\n"
    "  }\n"
    "}\n";
static const char *lchain_twin =
    "data { int N; real y[N]; int zs[3 * N]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
    "  for (n in 1:N) {\n"
    "    int z = zs[3 * n - 2];\n"
    "    int c = zs[3 * n - 1];\n"
    "    int e = zs[3 * n];\n"
    "    target += bernoulli_lpmf(z | p) + bernoulli_lpmf(c | z == 1 ? 0.8 : 0.3);\n"
    "    target += bernoulli_lpmf(e | c == 1 ? 0.6 : 0.1);\n"
    "    y[n] ~ normal(mu[z + 1], 1);\n"
    "    y[n] ~ normal(e - c, 2);\n"
    "  }\n"
    "}\n";

/* a chain inside another latent's sum: a regime r chooses the transition
   matrix (the forward algorithm per value of r), and per-datapoint choices
   inside a top-level choice's sum */
static const char *regime_nat =
    "data { int T; int K; real y[T]; simplex[K] trans[K, K]; simplex[K] init; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  real<lower=0> sigma ~ lognormal(0, 0.5);\n"
    "  int r ~ categorical(init);\n"
    "  int z_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    int z ~ categorical(t == 1 ? init : trans[r, z_prev]);\n"
    "    y[t] ~ normal(mu[z] + 0.3 * r, sigma);\n"
    "    z_prev = z;\n"
    "  }\n"
    "}\n";
static const char *regime_twin =
    "data { int T; int K; real y[T]; simplex[K] trans[K, K]; simplex[K] init; int zs[T + 1]; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  real<lower=0> sigma ~ lognormal(0, 0.5);\n"
    "  int r = zs[1];\n"
    "  target += categorical_lpmf(r | init);\n"
    "  for (t in 1:T) {\n"
    "    target += categorical_lpmf(zs[t + 1] | t == 1 ? init : trans[r, zs[t]]);\n"
    "    y[t] ~ normal(mu[zs[t + 1]] + 0.3 * r, sigma);\n"
    "  }\n"
    "}\n";
/* a chain whose transitions change after the second step: not the same at
   every step after the first, so not made once before the loop */
static const char *tvar_nat =
    "data { int T; int K; real y[T]; simplex[K] trans[K, K]; simplex[K] init; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  int z_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    int z ~ categorical(t == 1 ? init : trans[t > 2 ? 3 : 1, z_prev]);\n"
    "    y[t] ~ normal(mu[z], 1);\n"
    "    z_prev = z;\n"
    "  }\n"
    "}\n";
static const char *tvar_twin =
    "data { int T; int K; real y[T]; simplex[K] trans[K, K]; simplex[K] init; int zs[T]; }\n"
    "model {\n"
    "  vector[K] mu ~ normal(0, 3);\n"
    "  for (t in 1:T) {\n"
    "    target += categorical_lpmf(zs[t] | t == 1 ? init : trans[t > 2 ? 3 : 1, zs[t - 1]]);\n"
    "    y[t] ~ normal(mu[zs[t]], 1);\n"
    "  }\n"
    "}\n";
static const char *inmix_nat =
    "data { int N; real y[N]; simplex[3] w; simplex[3] v[3]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  int s ~ categorical(w);\n"
    "  for (n in 1:N) {\n"
    "    int z ~ categorical(v[s]);\n"
    "    y[n] ~ normal(mu[z], 1);\n"
    "  }\n"
    "}\n";
static const char *inmix_twin =
    "data { int N; real y[N]; simplex[3] w; simplex[3] v[3]; int zs[N + 1]; }\n"
    "model {\n"
    "  vector[3] mu ~ normal(0, 3);\n"
    "  target += categorical_lpmf(zs[1] | w);\n"
    "  for (n in 1:N) {\n"
    "    target += categorical_lpmf(zs[n + 1] | v[zs[1]]);\n"
    "    y[n] ~ normal(mu[zs[n + 1]], 1);\n"
    "  }\n"
    "}\n";
#define REGIME_DATA                                                                          \
  "\"T\": 4, \"K\": 3, \"y\": [-1.9, 0.3, 2.2, 2.5], \"init\": [0.5, 0.3, 0.2], \"trans\": "   \
  "[[[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.0, 0.3, 0.7]], [[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], "  \
  "[0.3, 0.3, 0.4]], [[0.1, 0.1, 0.8], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1]]]"

/* bounded ints: a population size in ymax..Nmax (a truncated poisson; the
   twin renormalises with the family's CDF), a count with only an upper bound
   (its lower end poisson's 0), per datapoint, and a change year whose bounds
   do not cut discrete_uniform's support */
static const char *pop_nat =
    "data { int M; int y[M]; int Nmax; int ymax; }\n"
    "model {\n"
    "  real<lower=0> lambda ~ exponential(0.05);\n"
    "  real<lower=0, upper=1> theta ~ beta(2, 2);\n"
    "  int<lower=ymax, upper=Nmax> N ~ poisson(lambda);\n"
    "  y ~ binomial(N, theta);\n"
    "}\n";
static const char *pop_twin =
    "data { int M; int y[M]; int Nmax; int ymax; int zs[1]; }\n"
    "model {\n"
    "  real<lower=0> lambda ~ exponential(0.05);\n"
    "  real<lower=0, upper=1> theta ~ beta(2, 2);\n"
    "  target += poisson_lpmf(zs[1] | lambda)\n"
    "            - log_diff_exp(poisson_lcdf(Nmax | lambda), poisson_lcdf(ymax - 1 | lambda));\n"
    "  y ~ binomial(zs[1], theta);\n"
    "}\n";
static const char *cnt_nat =
    "data { int N; real y[N]; int U; }\n"
    "model {\n"
    "  real<lower=0> l ~ exponential(0.5);\n"
    "  for (n in 1:N) {\n"
    "    int<upper=U> k ~ poisson(l);\n"
    "    y[n] ~ normal(k, 0.7);\n"
    "  }\n"
    "}\n";
static const char *cnt_twin =
    "data { int N; real y[N]; int U; int zs[N]; }\n"
    "model {\n"
    "  real<lower=0> l ~ exponential(0.5);\n"
    "  for (n in 1:N) {\n"
    "    target += poisson_lpmf(zs[n] | l) - poisson_lcdf(U | l);\n"
    "    y[n] ~ normal(zs[n], 0.7);\n"
    "  }\n"
    "}\n";
static const char *cpb_nat =
    "data { int T; int D[T]; }\n"
    "model {\n"
    "  real<lower=0> e ~ exponential(0.5);\n"
    "  real<lower=0> l ~ exponential(0.5);\n"
    "  int<lower=1, upper=T> s ~ discrete_uniform(1, T);\n"
    "  for (t in 1:T)\n"
    "    D[t] ~ poisson(t < s ? e : l);\n"
    "}\n";

/* structure: a latent under a data-dependent if (the twin's configurations
   where the branch is not taken keep z = 0, the others have probability
   zero), and per-row per-item latents in a loop in a loop */
static const char *br_nat =
    "data { int N; real y[N]; int kind[N]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
    "  for (n in 1:N) {\n"
    "    if (kind[n] == 1) {\n"
    "      real s = 0.5;\n"
    "      int z ~ bernoulli(p);\n"
    "      y[n] ~ normal(mu[z + 1], 1 + s);\n"
    "    } else {\n"
    "      y[n] ~ normal(mu[1], 2);\n"
    "    }\n"
    "  }\n"
    "}\n";
static const char *br_twin =
    "data { int N; real y[N]; int kind[N]; int zs[N]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
    "  for (n in 1:N) {\n"
    "    if (kind[n] == 1) {\n"
    "      target += bernoulli_lpmf(zs[n] | p);\n"
    "      y[n] ~ normal(mu[zs[n] + 1], 1.5);\n"
    "    } else {\n"
    "      condition(zs[n] == 0);\n"
    "      y[n] ~ normal(mu[1], 2);\n"
    "    }\n"
    "  }\n"
    "}\n";
static const char *nl_nat =
    "data { int I; int J; real y[I, J]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  vector<lower=0, upper=1>[I] p ~ beta(2, 2);\n"
    "  for (i in 1:I) {\n"
    "    real m = mu[2] - mu[1];\n"
    "    for (j in 1:J) {\n"
    "      int z ~ bernoulli(p[i]);\n"
    "      y[i, j] ~ normal(mu[1] + z * m, 1);\n"
    "    }\n"
    "  }\n"
    "}\n";
static const char *nl_twin =
    "data { int I; int J; real y[I, J]; int zs[I * J]; }\n"
    "model {\n"
    "  vector[2] mu ~ normal(0, 3);\n"
    "  vector<lower=0, upper=1>[I] p ~ beta(2, 2);\n"
    "  for (i in 1:I)\n"
    "    for (j in 1:J) {\n"
    "      int z = zs[(i - 1) * J + j];\n"
    "      target += bernoulli_lpmf(z | p[i]);\n"
    "      y[i, j] ~ normal(mu[z + 1], 1);\n"
    "    }\n"
    "}\n";

/* a latent in a user function, summed out on the program with its calls
   inlined: the K = 3 mixture's twin */
static const char *fn_nat =
    "functions {\n"
    "  real component(vector theta, vector mu) {\n"
    "    int z ~ categorical(theta);\n"
    "    return mu[z];\n"
    "  }\n"
    "}\n"
    "data { int N; int K; real y[N]; }\n"
    "model {\n"
    "  simplex[K] theta ~ dirichlet(rep_vector(2, K));\n"
    "  vector[K] mu ~ normal(0, 5);\n"
    "  real<lower=0> sigma ~ lognormal(0, 1);\n"
    "  for (n in 1:N) y[n] ~ normal(component(theta, mu), sigma);\n"
    "}\n";

#define VE_DATA                                                                              \
  "\"x\": [0.7, -1.3, 2.2, 0.4, 1.9], \"w\": [0.2, 0.3, 0.5], \"v\": [[0.6, 0.2, 0.2], "         \
  "[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]"

static ppl_model *compile(ppl_context *ctx, const char *src, const char *json) {
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, src, "enum.ppl", &m) != PPL_OK) {
    tap_diag("compile: %s", ppl_errmsg(ctx));
    return NULL;
  }
  if (ppl_set_data_json(m, json, "enum.json") != PPL_OK) {
    tap_diag("data: %s", ppl_errmsg(ctx));
    ppl_model_free(m);
    return NULL;
  }
  return m;
}

static double rnd(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return ((*s >> 8) & 0xffff) / 65536.0;
}

/* natural vs brute force at a few random points */
static void check_case(ppl_context *ctx, ppl_context *tctx, const Case *c, bool jit) {
  char json[4096];
  snprintf(json, sizeof json, "{%s}", c->data);
  ppl_model *nat = compile(ctx, c->natural, json);
  if (!tap_ok(nat != NULL, "%s (%s): compiles", c->name, jit ? "jit" : "interp")) return;
  size_t n = 0;
  ppl_num_unconstrained(nat, &n);
  if (jit)
    tap_ok(ppl_model_llvm_ir(nat) != NULL, "%s: the JIT compiles the marginalised program (%s)",
           c->name, ppl_model_llvm_ir(nat) ? "ok" : ppl_errmsg(ctx));
  long nconf = 1;
  for (int i = 0; i < c->nz; i++) nconf *= c->K;
  ppl_model **tw = calloc((size_t)nconf, sizeof *tw);
  bool ok = true;
  for (long k = 0; k < nconf && ok; k++) { /* one twin per configuration */
    char zs[512];
    size_t len = (size_t)snprintf(zs, sizeof zs, "[");
    long r = k;
    for (int i = 0; i < c->nz; i++, r /= c->K)
      len += (size_t)snprintf(zs + len, sizeof zs - len, "%s%ld", i ? "," : "", c->lo + r % c->K);
    snprintf(zs + len, sizeof zs - len, "]");
    snprintf(json, sizeof json, "{%s, \"zs\": %s}", c->data, zs);
    ok = (tw[k] = compile(tctx, c->twin, json)) != NULL;
  }
  size_t nt = 0;
  if (ok) ppl_num_unconstrained(tw[0], &nt);
  if (!tap_ok(ok && nt == n, "%s: the twin has the same %zu unconstrained parameters", c->name, n))
    goto out;
  unsigned seed = 7;
  double worst = 0, worst_g = 0;
  bool finite = true;
  for (int trial = 0; trial < 4; trial++) {
    double theta[32], g[32], want_g[32] = {0}, gk[32];
    for (size_t i = 0; i < n; i++) theta[i] = 2 * rnd(&seed) - 1;
    double lp;
    if (ppl_log_density_gradient(nat, theta, n, &lp, g) != PPL_OK) {
      tap_diag("%s", ppl_errmsg(ctx));
      finite = false;
      break;
    }
    double *lps = malloc(sizeof(double) * (size_t)nconf), mx = -INFINITY;
    for (long k = 0; k < nconf; k++) {
      ppl_log_density(tw[k], theta, n, &lps[k]);
      if (lps[k] > mx) mx = lps[k];
    }
    double s = 0;
    for (long k = 0; k < nconf; k++) s += exp(lps[k] - mx);
    double want = mx + log(s);
    for (long k = 0; k < nconf; k++) {
      if (lps[k] == -INFINITY) continue;
      double lk;
      ppl_log_density_gradient(tw[k], theta, n, &lk, gk);
      for (size_t i = 0; i < n; i++) want_g[i] += exp(lps[k] - want) * gk[i];
    }
    free(lps);
    double e = fabs(lp - want) / fmax(1, fabs(want));
    if (e > worst) worst = e;
    for (size_t i = 0; i < n; i++) {
      finite = finite && isfinite(g[i]);
      double eg = fabs(g[i] - want_g[i]) / fmax(1, fabs(want_g[i]));
      if (eg > worst_g) worst_g = eg;
    }
  }
  tap_ok(finite, "%s: gradient finite", c->name);
  tap_ok(worst < 1e-12, "%s: log density = brute-force sum over %ld configurations (rel. error %.2g)",
         c->name, nconf, worst);
  tap_ok(worst_g < 1e-10, "%s: gradient = the configurations' weighted gradients (rel. error %.2g)",
         c->name, worst_g);
out:
  for (long k = 0; k < nconf; k++) ppl_model_free(tw[k]);
  free(tw);
  ppl_model_free(nat);
}

static bool contains(const char *s, const char *sub) { return s && strstr(s, sub); }

static void check_text(ppl_context *ctx, const char *src, const char *json, const char *want,
                       const char *what) {
  ppl_model *m = compile(ctx, src, json);
  const char *a = m ? ppl_model_analysis(m) : NULL;
  if (!tap_ok(contains(a, want), "%s", what)) tap_diag("analysis:\n%s", a ? a : "(none)");
  ppl_model_free(m);
}

int main(void) {
  const Case cases[] = {
      {"mixture K=3", mix_nat, mix_twin,
       "\"N\": 4, \"K\": 3, \"y\": [-3.1, 0.2, 2.9, 3.4]", 4, 3, 1},
      {"mixture K=5", mix_nat, mix_twin, "\"N\": 3, \"K\": 5, \"y\": [-3.1, 0.2, 2.9]", 3, 5, 1},
      {"mix2 element form", mix2_nat, mix2_twin,
       "\"N\": 6, \"y\": [-2.5, 1.9, 2.2, -1.7, 0.3, 2.8]", 6, 2, 0},
      {"change point", cp_nat, cp_twin, "\"T\": 7, \"D\": [4, 5, 4, 1, 0, 2, 1]", 1, 7, 1},
      {"change point, rates declared after it", cpl_nat, cp_twin,
       "\"T\": 7, \"D\": [4, 5, 4, 1, 0, 2, 1]", 1, 7, 1},
      {"HMM chain", hmm_nat, hmm_twin,
       "\"T\": 5, \"K\": 3, \"y\": [-1.9, 0.3, 2.2, 2.5, -0.4], \"trans\": [[0.8, 0.1, 0.1], "
       "[0.2, 0.7, 0.1], [0.0, 0.3, 0.7]], \"init\": [0.5, 0.3, 0.2]", 5, 3, 1},
      {"HMM chain, array state", hmma_nat, hmm_twin,
       "\"T\": 5, \"K\": 3, \"y\": [-1.9, 0.3, 2.2, 2.5, -0.4], \"trans\": [[0.8, 0.1, 0.1], "
       "[0.2, 0.7, 0.1], [0.0, 0.3, 0.7]], \"init\": [0.5, 0.3, 0.2]", 5, 3, 1},
      {"HMM chain, emission reads the previous state", hmmp_nat, hmmp_twin,
       "\"T\": 5, \"K\": 3, \"y\": [-1.9, 0.3, 2.2, 2.5, -0.4], \"trans\": [[0.8, 0.1, 0.1], "
       "[0.2, 0.7, 0.1], [0.0, 0.3, 0.7]], \"init\": [0.5, 0.3, 0.2]", 5, 3, 1},
      {"zero-probability category", zero_nat, zero_twin,
       "\"N\": 3, \"y\": [-1.2, 0.4, 2.1], \"w\": [0.5, 0, 0.5]", 3, 3, 1},
      {"two latents, b | a, one likelihood", two_nat, two_twin,
       "\"N\": 3, \"y\": [0.5, 1.2, 2.0], \"w\": [0.2, 0.3, 0.5], \"v\": [[0.6, 0.2, 0.2], "
       "[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]", 2, 3, 1},
      {"two independent latents", indep_nat, indep_twin,
       "\"N\": 3, \"y\": [0.5, 1.2, 2.0], \"x\": [-1, 0.1, -0.5], \"w\": [0.2, 0.3, 0.5]", 2,
       3, 1},
      {"a -> b -> c, a in two observations, d apart", three_nat, three_twin,
       "\"y\": 0.7, \"x\": -1.3, \"w\": [0.35, 0.65], \"v\": [[0.9, 0.1], [0.25, 0.75]]", 4, 2, 1},
      {"mixture with a discrete sub-choice", sub_nat, sub_twin,
       "\"N\": 3, \"y\": [-2.1, 0.3, 2.4]", 9, 2, 0},
      {"bounded int: population size, truncated poisson", pop_nat, pop_twin,
       "\"M\": 4, \"y\": [5, 8, 6, 7], \"Nmax\": 40, \"ymax\": 8", 1, 33, 8},
      {"bounded int: int<upper=U> poisson per datapoint", cnt_nat, cnt_twin,
       "\"N\": 3, \"y\": [0.2, 2.9, 1.4], \"U\": 3", 3, 4, 0},
      {"bounded int: change year int<lower=1, upper=T>", cpb_nat, cp_twin,
       "\"T\": 7, \"D\": [4, 5, 4, 1, 0, 2, 1]", 1, 7, 1},
      {"a latent in a user function (inlined)", fn_nat, mix_twin,
       "\"N\": 4, \"K\": 3, \"y\": [-3.1, 0.2, 2.9, 3.4]", 4, 3, 1},
      {"a latent under a data-dependent if", br_nat, br_twin,
       "\"N\": 4, \"y\": [-2.1, 0.3, 2.4, 3.1], \"kind\": [1, 0, 1, 1]", 4, 2, 0},
      {"per-row per-item latents (a loop in a loop)", nl_nat, nl_twin,
       "\"I\": 2, \"J\": 3, \"y\": [[-2.1, 0.3, 2.4], [3.1, -1, 0.5]]", 6, 2, 0},
      {"elimination: a chain a -> b -> c -> d -> e", chain5_nat, chain5_twin, VE_DATA, 5, 3, 1},
      {"elimination: a tree", tree_nat, tree_twin, VE_DATA, 5, 3, 1},
      {"elimination: a loop a - b - d - c - a", loop_nat, loop_twin,
       "\"y\": 0.7, \"x\": -1.3, \"w\": [0.2, 0.3, 0.5], \"v\": [[0.6, 0.2, 0.2], "
       "[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]", 4, 3, 1},
      {"a chain inside a regime's sum (r chooses the transitions)", regime_nat, regime_twin,
       REGIME_DATA, 5, 3, 1},
      {"HMM chain, transitions that change with t", tvar_nat, tvar_twin, REGIME_DATA, 4, 3, 1},
      {"per-datapoint choices inside a top-level choice's sum", inmix_nat, inmix_twin,
       "\"N\": 3, \"y\": [-2.1, 0.3, 2.4], \"w\": [0.2, 0.3, 0.5], \"v\": [[0.6, 0.2, 0.2], "
       "[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]", 4, 3, 1},
      {"elimination: a chain z -> c -> e per datapoint", lchain_nat, lchain_twin,
       "\"N\": 2, \"y\": [-2.1, 1.3]", 6, 2, 0},
  };
  /* the twins, one per configuration, are the reference: interpreted */
  ppl_config tcfg;
  ppl_config_default(&tcfg);
  tcfg.no_jit = 1;
  ppl_context *tctx = ppl_context_new(&tcfg);
  for (int jit = 0; jit < 2; jit++) {
    ppl_config cfg;
    ppl_config_default(&cfg);
    cfg.no_jit = !jit;
    ppl_context *ctx = ppl_context_new(&cfg);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
      check_case(ctx, tctx, &cases[i], jit);
    ppl_context_free(ctx);
  }
  ppl_context_free(tctx);

  ppl_context *ctx = ppl_context_new(NULL);
  const char *mixd = "{\"N\": 4, \"K\": 3, \"y\": [-3.1, 0.2, 2.9, 3.4]}";
  check_text(ctx, mix_nat, mixd, "enumerated:\n  z  enumerated, factor 3\n",
             "check: 'enumerated:' section with the factor's size");
  check_text(ctx, mix_nat, mixd, "engine: nuts — the discrete latents z are summed out by enumeration (largest factor 3)",
             "check: the engine line says nuts and why");
  check_text(ctx, cp_nat, "{\"T\": 7, \"D\": [4, 5, 4, 1, 0, 2, 1]}",
             "  s  enumerated, factor 7\n", "change point: s enumerated, factor T");
  check_text(ctx, hmm_nat,
             "{\"T\": 5, \"K\": 3, \"y\": [-1.9, 0.3, 2.2, 2.5, -0.4], \"trans\": [[0.8, 0.1, "
             "0.1], [0.2, 0.7, 0.1], [0.0, 0.3, 0.7]], \"init\": [0.5, 0.3, 0.2]}",
             "  z  enumerated, factor 3 x 3 (a chain: forward algorithm)\n",
             "HMM: a chain, factor K x K");
  /* the fused kernel where the transitions are fixed and the emissions do not
     read the previous state; not where they do, nor where the transitions
     change with t (those keep the step-by-step recursion) */
  {
    const char *hd = "{\"T\": 5, \"K\": 3, \"y\": [-1.9, 0.3, 2.2, 2.5, -0.4], \"trans\": [[0.8, 0.1, "
                     "0.1], [0.2, 0.7, 0.1], [0.0, 0.3, 0.7]], \"init\": [0.5, 0.3, 0.2]}";
    const char *fused = "     its density in one call of the fused kernel (hmm_log_marginal)\n";
    check_text(ctx, hmm_nat, hd, fused, "HMM: its density by the fused kernel");
    check_text(ctx, hmma_nat, hd, fused, "HMM, array state: its density by the fused kernel");
    const char *srcs[2] = {hmmp_nat, tvar_nat}, *what[2] = {"emission reads the previous state",
                                                            "transitions change with t"};
    const char *datas[2] = {hd, "{" REGIME_DATA "}"};
    for (int i = 0; i < 2; i++) {
      ppl_model *m = compile(ctx, srcs[i], datas[i]);
      const char *a = m ? ppl_model_analysis(m) : NULL;
      tap_ok(a && contains(a, "(a chain: forward algorithm)") && !contains(a, fused),
             "HMM, %s: a chain, not the fused kernel", what[i]);
      ppl_model_free(m);
    }
  }
  /* not enumerated, with the reason */
  check_text(ctx,
             "data { int T; real y[T]; }\n"
             "model {\n"
             "  real mu ~ normal(0, 1);\n"
             "  int c = 0;\n"
             "  for (t in 1:T) {\n"
             "    int z ~ bernoulli(0.5);\n"
             "    c = c + z;\n"
             "    y[t] ~ normal(mu + c, 1);\n"
             "  }\n"
             "}\n",
             "{\"T\": 3, \"y\": [0.1, 0.2, 0.3]}",
             "  z  not enumerated: enum.ppl:6:9: its segment updates 'c' from its value before the segment",
             "a running count of z: not enumerated, and why");
  check_text(ctx,
             "data { int T; real y[T]; }\n"
             "model {\n"
             "  int s ~ discrete_uniform(1, T);\n"
             "  real mu ~ normal(0, 1);\n"
             "  for (t in 1:T) y[t] ~ normal(t < s ? mu : -mu, 1);\n"
             "}\n",
             "{\"T\": 3, \"y\": [0.1, 0.2, 0.3]}",
             "  s  enumerated, factor 3\n",
             "a continuous latent declared after the discrete one, not depending on it: moved "
             "before it, enumerated");
  check_text(ctx,
             "data { int T; real y[T]; }\n"
             "model {\n"
             "  int s ~ discrete_uniform(1, T);\n"
             "  real mu ~ normal(s, 1);\n"
             "  for (t in 1:T) y[t] ~ normal(t < s ? mu : -mu, 1);\n"
             "}\n",
             "{\"T\": 3, \"y\": [0.1, 0.2, 0.3]}",
             "  s  not enumerated: enum.ppl:3:7: the latent 'mu' (line 4) lies in its segment and "
             "depends on 's'",
             "a continuous latent whose distribution depends on the discrete one: not enumerated, "
             "and why");
  /* bounded ints: the range's size; a bound missing at the open end: not enumerated */
  check_text(ctx, pop_nat, "{\"M\": 4, \"y\": [5, 8, 6, 7], \"Nmax\": 40, \"ymax\": 8}",
             "  N  enumerated, factor 33\n", "bounded int: factor Nmax - ymax + 1");
  check_text(ctx,
             "data { real y; }\n"
             "model {\n"
             "  real mu ~ normal(0, 1);\n"
             "  int<lower=2> k ~ poisson(3);\n"
             "  y ~ normal(mu + k, 1);\n"
             "}\n",
             "{\"y\": 0.5}",
             "  k  not enumerated: enum.ppl:4:16: its family poisson has no finite support within "
             "its declared bounds (declare both: int<lower=a, upper=b>)",
             "a count with only a lower bound: not enumerated, and why");
  /* several latents: the joint factor of nested sums, the elimination order */
  check_text(ctx, two_nat,
             "{\"N\": 3, \"y\": [0.5, 1.2, 2.0], \"w\": [0.2, 0.3, 0.5], \"v\": [[0.6, 0.2, 0.2], "
             "[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]}",
             "  a  enumerated, factor 3\n"
             "  b  enumerated, factor 3 x 3 = 9 (summed out inside the sum over 'a')\n"
             "  elimination order: b, a\n",
             "b | a: b summed inside a's sum, factor 3 x 3, the elimination order");
  check_text(ctx, indep_nat,
             "{\"N\": 3, \"y\": [0.5, 1.2, 2.0], \"x\": [-1, 0.1, -0.5], \"w\": [0.2, 0.3, 0.5]}",
             "enumerated:\n  a  enumerated, factor 3\n  b  enumerated, factor 3\nengines",
             "independent latents: summed one after the other, factor 3 each");
  check_text(ctx, fn_nat, mixd, "  component/z  enumerated, factor 3\n",
             "a latent in a function: enumerated on the inlined program, factor K");
  /* variable elimination: the min-fill order and the largest factor */
  const char *ved = "{" VE_DATA "}";
  check_text(ctx, chain5_nat, ved,
             "  e  enumerated, factor 3 x 3 = 9 (summed out inside the sum over 'd')\n"
             "  elimination order: e, d, c, b, a\n",
             "a chain of five: eliminated from its end, factors 3 x 3 (not 3^5)");
  check_text(ctx, chain5_nat, ved, "summed out by enumeration (largest factor 3 x 3)",
             "a chain of five: the engine line's largest factor is 3 x 3");
  check_text(ctx, loop_nat,
             "{\"y\": 0.7, \"x\": -1.3, \"w\": [0.2, 0.3, 0.5], \"v\": [[0.6, 0.2, 0.2], "
             "[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]}",
             "  d  enumerated, factor 3 x 3 x 3 = 27 (summed out inside the sum over 'b', 'c')\n"
             "  elimination order: d, c, b, a\n",
             "a loop of four: d eliminated with its two neighbours, 27 terms (not 81)");
  check_text(ctx, regime_nat, "{" REGIME_DATA "}",
             "  z  enumerated, factor 3 x 3 x 3 = 27 (summed out inside the sum over 'r')\n",
             "a chain inside a regime's sum: factor K x K per value of r");
  check_text(ctx, tree_nat, ved, "largest factor 3 x 3)",
             "a tree: factors of two latents at most");
  /* nested sums above the limit: the joint factor counts */
  const char *big_src = "data { int K; real y; }\n"
                        "model {\n"
                        "  real mu ~ normal(0, 1);\n"
                        "  int a ~ discrete_uniform(1, K);\n"
                        "  int b ~ discrete_uniform(1, K);\n"
                        "  y ~ normal(mu + a - b, 1);\n"
                        "}\n";
  check_text(ctx, big_src, "{\"K\": 100, \"y\": 0.5}",
             "  b  not enumerated: its factor has 10000 terms, above the limit of 4096\n",
             "nested sums: the joint factor 100 x 100 is above the limit");
  check_text(ctx, big_src, "{\"K\": 100, \"y\": 0.5}",
             "the discrete latents a, b are not summed out: the largest factor has 10000 terms",
             "nested sums above the limit: the engine line says why");
  /* under an if: a value the segment writes read after the branch */
  check_text(ctx,
             "data { int N; real y[N]; int kind[N]; }\n"
             "model {\n"
             "  real mu ~ normal(0, 1);\n"
             "  for (n in 1:N) {\n"
             "    int c = 0;\n"
             "    if (kind[n] == 1) {\n"
             "      int z ~ bernoulli(0.5);\n"
             "      c = z;\n"
             "    }\n"
             "    y[n] ~ normal(mu + c, 1);\n"
             "  }\n"
             "}\n",
             "{\"N\": 2, \"y\": [0.1, 0.2], \"kind\": [1, 0]}",
             "  z  not enumerated: enum.ppl:7:11: 'c', which its segment writes, is read outside its "
             "segment (line 10): only the last value summed over would reach it",
             "under an if: a value read after the branch, not enumerated, and why");
  check_text(ctx, nl_nat, "{\"I\": 2, \"J\": 3, \"y\": [[-2.1, 0.3, 2.4], [3.1, -1, 0.5]]}",
             "  z  enumerated, factor 2\n", "a latent in a loop in a loop: enumerated");
  /* a latent with an infinite support beside a continuous one */
  const char *poisson_src = "data { int T; real y[T]; }\n"
                            "model {\n"
                            "  real mu ~ normal(0, 1);\n"
                            "  int z ~ poisson(3);\n"
                            "  for (t in 1:T) y[t] ~ normal(mu + z, 1);\n"
                            "}\n";
  check_text(ctx, poisson_src,
             "{\"T\": 3, \"y\": [0.1, 0.2, 0.3]}", "its family poisson has no finite support",
             "poisson: not enumerated, infinite support");
  check_text(ctx, poisson_src,
             "{\"T\": 3, \"y\": [0.1, 0.2, 0.3]}", "engine: mh",
             "a program with a latent that is not enumerated keeps its engine");
  check_text(ctx,
             "data { int K; real y; }\n"
             "model {\n"
             "  real mu ~ normal(0, 1);\n"
             "  int z ~ discrete_uniform(1, K);\n"
             "  y ~ normal(mu + z, 1);\n"
             "}\n",
             "{\"K\": 5000, \"y\": 0.5}", "above the limit of 4096",
             "a factor above the limit: the engine line says why it is not summed out");

  /* --engine mh runs the original program: z is a choice of its own there */
  ppl_model *m = compile(ctx, mix_nat, mixd);
  const char *name = NULL, *why = NULL;
  ppl_model_engine(m, "mh", &name, &why);
  tap_streq(why, "mh — chosen with --engine", "--engine mh: the original program");
  ppl_model_engine(m, "nuts", &name, &why);
  tap_ok(contains(why, "summed out by enumeration"), "--engine nuts: the marginalised one (%s)",
         why ? why : "NULL");
  size_t n = 0;
  ppl_num_unconstrained(m, &n);
  tap_ok(n == 2 + 3 + 1, "ppl_num_unconstrained: the continuous latents only (%zu)", n);
  ppl_model_free(m);
  ppl_context_free(ctx);
  return tap_done();
}
