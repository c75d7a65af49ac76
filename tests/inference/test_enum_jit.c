/* test_enum_jit.c — the marginalised programs of ir/enum.c run in the JIT
 * itself.  ppl_log_density_gradient falls back to the interpreter when the
 * compiled code stops at a runtime check, with the same result, so a program
 * the JIT compiles but cannot run is only slow (an enumerated chain was, for
 * a session): here each marginalised program's compiled log density and
 * gradient (ld_eval_grad_jit, no fallback) must succeed at random points and
 * equal the interpreter's to 1e-12.  The shapes: a mixture (a latent per
 * datapoint, its log probabilities hoisted out of the loop), the element form,
 * a change point (its rates declared before it and after it), chains with the state in a local and in an array element
 * (the emissions once per state), a chain whose emission reads the previous
 * state (K x K terms), a bernoulli chain (no vector form); several latents in
 * one block (variable elimination), a bounded int, latents under an if and
 * in a loop in a loop; a factorial chain (two chains in one loop).  Each
 * compiled draw (the draws pass) must equal the interpreted one bit for bit. */
#include <stdio.h>
#include <string.h>

#include "inference/logdensity.h"
#include "ir/enum.h"
#include "stdlib/rng.h"
#include "test_engines_util.h"

static bool close12(double a, double b) {
  if (isnan(a) || isnan(b)) return false;
  return fabs(a - b) <= 1e-12 * fmax(1, fmax(fabs(a), fabs(b)));
}

static bool same_bits(Value a, Value b) {
  size_t m = val_numel(a);
  if (a.k != b.k || val_numel(b) != m) return false;
  double x[256], y[256];
  if (m > 256) return false;
  val_flatten(a, x);
  val_flatten(b, y);
  return memcmp(x, y, sizeof(double) * m) == 0;
}

/* The draws pass compiled (ld_draw: the JIT's draw function, which draws the
   enumerated latents and records those of loops and branches) against the
   interpreter's run (ld_draw_full) at the same point with the same seed:
   the same outputs and the same nested latents (addresses, values), bit for
   bit, at several points and seeds. */
static void draws_agree(const char *what, const LogDensity *lj, size_t n) {
  LdWork *w = ld_work_new(lj);
  Rng rng;
  rng_seed(&rng, 29, 2);
  double theta[64];
  const IrProgram *prog = interp_program(ld_interp(lj));
  bool compiled = true, same = true;
  for (int pt = 0; pt < 6 && compiled && same; pt++) {
    for (size_t i = 0; i < n; i++) theta[i] = 0.7 * rng_normal(&rng);
    uint64_t seed = 1000 + (uint64_t)pt;
    compiled = ld_draw_jit(w, theta, seed, 2) != NULL;
    if (!compiled) break;
    Diag d;
    diag_init(&d);
    InterpLatent *lj_, *li;
    int nj, ni;
    Value *oj = ld_draw(w, theta, seed, 2, &lj_, &nj, &d);
    Value *oi = ld_draw_full(lj, theta, seed, 2, &li, &ni, &d);
    same = oj && oi && nj == ni;
    for (int o = 0; same && o < prog->noutputs; o++) same = same_bits(oj[o], oi[o]);
    for (int k = 0; same && k < ni; k++)
      same = strcmp(lj_[k].addr, li[k].addr) == 0 && same_bits(lj_[k].v, li[k].v);
    if (!same)
      tap_diag("%s: point %d: %d nested latents compiled, %d interpreted (%s)", what, pt, nj, ni,
               d.msg);
  }
  tap_ok(compiled, "%s: the draw is compiled (%s)", what, ld_backend(lj));
  tap_ok(compiled && same, "%s: the compiled draw (outputs, nested latents and their addresses) "
         "equals the interpreter's bit for bit", what);
}

static void agrees(const char *what, const char *src, TData *td) {
  Diag d;
  IrProgram *p = tlower(src, &d);
  if (!tap_ok(p != NULL, "%s: compiles (%s)", what, d.msg)) return;
  EnumPlan *pl = enum_plan(p, ir_analyze(p));
  if (!tap_ok(pl && pl->all, "%s: every discrete latent is enumerated (%s)", what,
              pl && pl->n ? (pl->lat[0].why ? pl->lat[0].why : "ok") : "none"))
    return;
  Interp *in = interp_new(pl->prog, NULL);
  diag_init(&d);
  if (!tap_ok(interp_load_data(in, &td->src, &d), "%s: data (%s)", what, d.msg)) return;
  LogDensity *ld = ld_new(in, &d), *lj = ld ? ld_new(in, &d) : NULL;
  bool used = lj && ld_use_jit(lj, false);
  if (!tap_ok(used, "%s: compiled (%s)", what, lj ? ld_backend(lj) : d.msg)) return;
  size_t n = ld_dim(ld);
  Rng rng;
  rng_seed(&rng, 23, 1);
  double theta[64], g[64], gj[64];
  bool all = n < 64;
  for (int pt = 0; pt < 4 && all; pt++) {
    for (size_t i = 0; i < n; i++) theta[i] = 0.7 * rng_normal(&rng);
    double lp = NAN, lpj = NAN;
    diag_init(&d);
    bool ok = ld_eval_grad(ld, theta, &lp, g, &d);
    bool okj = ld_eval_grad_jit(lj, theta, &lpj, gj);
    bool same = ok && okj && close12(lp, lpj);
    for (size_t i = 0; i < n && same; i++) same = close12(g[i], gj[i]);
    if (!same) tap_diag("%s: point %d: interp %d %.17g, jit %d %.17g (%s)", what, pt, ok, lp, okj, lpj, d.msg);
    all = same;
  }
  tap_ok(all, "%s: the compiled log density and gradient run and equal the interpreter's", what);
  draws_agree(what, lj, n);
}

int main(void) {
  const double y[8] = {-2.1, 0.3, 2.4, 2.9, -1.7, 0.2, 1.1, -0.4};
  const int cnt[8] = {4, 5, 4, 1, 0, 2, 1, 3};
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(8));
  tdata_add(&td, "K", val_int(3));
  tdata_add(&td, "y", tvec(8, y));
  tdata_add(&td, "D", tints(8, cnt));
  agrees("mixture",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  simplex[K] theta ~ dirichlet(rep_vector(2, K));\n"
         "  ordered[K] mu ~ normal(0, 5);\n"
         "  real<lower=0> sigma ~ lognormal(0, 1);\n"
         "  for (n in 1:N) {\n"
         "    int z ~ categorical(theta);\n"
         "    y[n] ~ normal(mu[z], sigma);\n"
         "  }\n"
         "}\n",
         &td);
  agrees("mixture, categorical_logit",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  vector[K] a ~ normal(0, 1);\n"
         "  ordered[K] mu ~ normal(0, 5);\n"
         "  for (n in 1:N) {\n"
         "    int z ~ categorical_logit(a);\n"
         "    y[n] ~ normal(mu[z], 1);\n"
         "  }\n"
         "}\n",
         &td);
  agrees("element form",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
         "  vector[2] mu ~ normal(0, 3);\n"
         "  int z[N] ~ bernoulli(p);\n"
         "  for (n in 1:N) y[n] ~ normal(mu[z[n] + 1], 1);\n"
         "}\n",
         &td);
  agrees("change point",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  real<lower=0> e ~ exponential(0.5);\n"
         "  real<lower=0> l ~ exponential(0.5);\n"
         "  int s ~ discrete_uniform(1, N);\n"
         "  for (t in 1:N) D[t] ~ poisson(t < s ? e : l);\n"
         "}\n",
         &td);
  agrees("change point, rates declared after it",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  int s ~ discrete_uniform(1, N);\n"
         "  real<lower=0> e ~ exponential(0.5);\n"
         "  real<lower=0> l ~ exponential(0.5);\n"
         "  for (t in 1:N) D[t] ~ poisson(t < s ? e : l);\n"
         "}\n",
         &td);
  agrees("chain, state in a local",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  simplex[K] rho ~ dirichlet(rep_vector(1, K));\n"
         "  simplex[K] Gamma[K] ~ dirichlet(rep_vector(1, K));\n"
         "  ordered[K] mu ~ normal(0, 5);\n"
         "  int z_prev = 0;\n"
         "  for (t in 1:N) {\n"
         "    int z ~ categorical(t == 1 ? rho : Gamma[z_prev]);\n"
         "    y[t] ~ normal(mu[z], 1);\n"
         "    z_prev = z;\n"
         "  }\n"
         "}\n",
         &td);
  agrees("chain, state in an array",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  simplex[K] rho ~ dirichlet(rep_vector(1, K));\n"
         "  simplex[K] Gamma[K] ~ dirichlet(rep_vector(1, K));\n"
         "  ordered[K] mu ~ normal(0, 5);\n"
         "  int z[N] = rep_array(1, N);\n"
         "  for (t in 1:N) {\n"
         "    int zt ~ categorical(t == 1 ? rho : Gamma[z[t - 1]]);\n"
         "    z[t] = zt;\n"
         "    y[t] ~ normal(mu[z[t]], 1);\n"
         "  }\n"
         "}\n",
         &td);
  agrees("chain, emission reads the previous state",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  simplex[K] Gamma[K] ~ dirichlet(rep_vector(1, K));\n"
         "  ordered[K] mu ~ normal(0, 5);\n"
         "  int z_prev = 1;\n"
         "  for (t in 1:N) {\n"
         "    real m = mu[z_prev];\n"
         "    int z ~ categorical(Gamma[z_prev]);\n"
         "    y[t] ~ normal(mu[z] + 0.5 * m, 1);\n"
         "    z_prev = z;\n"
         "  }\n"
         "}\n",
         &td);
  agrees("bernoulli chain",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  real<lower=0, upper=1> a ~ beta(2, 2);\n"
         "  real<lower=0, upper=1> b ~ beta(2, 2);\n"
         "  int s = 0;\n"
         "  for (t in 1:N) {\n"
         "    int z ~ bernoulli(s == 1 ? a : b);\n"
         "    y[t] ~ normal(2 * z - 1, 1);\n"
         "    s = z;\n"
         "  }\n"
         "}\n",
         &td);
  agrees("factorial chain (two chains in one loop)",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  simplex[K] G1[K] ~ dirichlet(rep_vector(1, K));\n"
         "  simplex[2] G2[2] ~ dirichlet(rep_vector(1, 2));\n"
         "  ordered[K] mu ~ normal(0, 5);\n"
         "  vector[2] nu ~ normal(0, 1);\n"
         "  int a = 1;\n"
         "  int b = 2;\n"
         "  for (t in 1:N) {\n"
         "    int z1 ~ categorical(G1[a]);\n"
         "    real m = mu[z1];\n"
         "    int z2 ~ categorical(G2[b]);\n"
         "    y[t] ~ normal(m + nu[z2], 1);\n"
         "    a = z1;\n"
         "    b = z2;\n"
         "  }\n"
         "}\n",
         &td);
  agrees("b | a summed inside a's sum, d after it",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  simplex[K] Gamma[K] ~ dirichlet(rep_vector(1, K));\n"
         "  ordered[K] mu ~ normal(0, 5);\n"
         "  int a ~ categorical(Gamma[1]);\n"
         "  int b ~ categorical(Gamma[a]);\n"
         "  int d ~ categorical(Gamma[2]);\n"
         "  y ~ normal(mu[a] + mu[b], 1);\n"
         "  y[1] ~ normal(mu[d], 1);\n"
         "}\n",
         &td);
  agrees("a component with a sub-choice, per datapoint",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
         "  vector[2] mu ~ normal(0, 3);\n"
         "  for (n in 1:N) {\n"
         "    int z ~ bernoulli(p);\n"
         "    int c ~ bernoulli(z == 1 ? 0.8 : 0.3);\n"
         "    y[n] ~ normal(mu[z + 1] + c, 1);\n"
         "  }\n"
         "}\n",
         &td);
  agrees("a bounded int (truncated poisson)",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  real<lower=0> lambda ~ exponential(0.1);\n"
         "  real<lower=0, upper=1> theta ~ beta(2, 2);\n"
         "  int<lower=5, upper=30> M ~ poisson(lambda);\n"
         "  D ~ binomial(M, theta);\n"
         "}\n",
         &td);
  agrees("under an if, and in a loop in a loop",
         "data { int N; int K; vector[N] y; int D[N]; }\n"
         "model {\n"
         "  real<lower=0, upper=1> p ~ beta(2, 2);\n"
         "  vector[2] mu ~ normal(0, 3);\n"
         "  for (n in 1:N) {\n"
         "    if (D[n] > 1) {\n"
         "      int z ~ bernoulli(p);\n"
         "      y[n] ~ normal(mu[z + 1], 1);\n"
         "    }\n"
         "    for (j in 1:2) {\n"
         "      int c ~ bernoulli(p);\n"
         "      y[n] ~ normal(mu[c + 1], 3);\n"
         "    }\n"
         "  }\n"
         "}\n",
         &td);
  return tap_done();
}
