/* test_jit_inline.c — the LLVM JIT on programs that call user functions: the
 * calls are inlined (ir/inline.c) before lowering.  For each program: it
 * compiles, and at random points its compiled log density and gradient equal
 * the interpreter's (which runs the original calls) to 1e-12, and a compiled
 * draw equals the interpreted one with the same random numbers.  Covered:
 * vector and matrix arguments, int -> real, nested calls, calls in loops,
 * parameters assigned into, void functions, latents and observations inside
 * functions (also inside loops), calls in the generated block, a while loop
 * inside a function.  And the refusals: recursion in the model block refuses
 * the program; recursion in the generated block only refuses the draws. */
#include <stdio.h>

#include "inference/logdensity.h"
#include "ppl_config.h"
#include "stdlib/rng.h"
#include "test_engines_util.h"

static bool close12(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= 1e-12 * fmax(1, fmax(fabs(a), fabs(b)));
}

static LogDensity *ld_of(const char *what, const char *src, TData *td) {
  Diag d;
  Interp *in = tcompile(src, td, &d);
  if (!tap_ok(in != NULL, "%s: compiles", what)) return NULL;
  LogDensity *ld = ld_new(in, &d);
  if (!tap_ok(ld != NULL, "%s: ld_new (%s)", what, d.msg)) return NULL;
  return ld;
}

static bool same_outputs(const IrProgram *p, const Value *a, const Value *b, int *bad) {
  for (int o = 0; o < p->noutputs; o++) {
    size_t m = val_numel(a[o]);
    if (a[o].k == V_NONE || b[o].k != a[o].k || val_numel(b[o]) != m) {
      *bad = o;
      return false;
    }
    double *x = malloc(sizeof(double) * (m + 1)), *y = malloc(sizeof(double) * (m + 1));
    val_flatten(a[o], x);
    val_flatten(b[o], y);
    bool same = true;
    for (size_t e = 0; e < m && same; e++) same = close12(y[e], x[e]);
    free(x), free(y);
    if (!same) {
      *bad = o;
      return false;
    }
  }
  return true;
}

/* Compiled against interpreted at npoints random points. */
static void jit_agrees(const char *what, const char *src, TData *td, double scale) {
  LogDensity *ld = ld_of(what, src, td);
  if (!ld) return;
  Diag d;
  diag_init(&d);
  LogDensity *lj = ld_new(ld_interp(ld), &d);
  bool used = lj && ld_use_jit(lj, false);
  if (!tap_ok(used, "%s: compiled (%s)", what, lj ? ld_backend(lj) : d.msg)) return;
  LdWork *w = ld_work_new(lj);
  size_t n = ld_dim(ld);
  Rng rng;
  rng_seed(&rng, 17, 5);
  double *theta = malloc(sizeof(double) * (n + 1)), *g = malloc(sizeof(double) * (n + 1));
  double *gj = malloc(sizeof(double) * (n + 1));
  const IrProgram *prog = interp_program(ld_interp(lj));
  for (int p = 0; p < 4; p++) {
    for (size_t i = 0; i < n; i++) theta[i] = scale * rng_normal(&rng);
    double lp = NAN, lpj = NAN;
    diag_init(&d);
    bool ok = ld_eval_grad(ld, theta, &lp, g, &d);
    bool okj = ld_eval_grad_jit(lj, theta, &lpj, gj);
    bool same = ok && okj && close12(lpj, lp) && isfinite(lp);
    size_t wi = 0;
    for (size_t i = 0; i < n && same; i++)
      if (!close12(gj[i], g[i])) {
        same = false;
        wi = i;
      }
    tap_ok(same, "%s: point %d: lp %.17g vs %.17g, %zu partials agree (first difference at %zu: %.17g vs %.17g) %s",
           what, p, lpj, lp, n, wi, n ? gj[wi] : 0, n ? g[wi] : 0, d.msg);
    Value *oj = ld_draw_jit(w, theta, 40 + (uint64_t)p, 2);
    diag_init(&d);
    Value *oi = ld_draw_interp(lj, theta, 40 + (uint64_t)p, 2, &d);
    int bad = -1;
    bool dsame = oj && oi && same_outputs(prog, oi, oj, &bad);
    tap_ok(dsame,
           "%s: point %d: the compiled draw equals the interpreted one (%s%s%s)", what, p,
           oj ? "" : ld_backend(lj), d.msg, bad >= 0 ? prog->outputs[bad].name : "");
    /* what engines call (ld_draw): the latents of loops and functions under
       the interpreter's addresses, whichever backend draws (a function's
       latents: the interpreter, as the backend line says) */
    InterpLatent *nj, *ni;
    int cj = 0, ci = 0;
    diag_init(&d);
    Value *od = ld_draw(w, theta, 40 + (uint64_t)p, 2, &nj, &cj, &d);
    Value *of = ld_draw_full(lj, theta, 40 + (uint64_t)p, 2, &ni, &ci, &d);
    bool nsame = od && of && cj == ci && same_outputs(prog, of, od, &bad);
    for (int k = 0; nsame && k < ci; k++)
      nsame = !strcmp(nj[k].addr, ni[k].addr) && nj[k].v.k == ni[k].v.k &&
              (nj[k].v.k >= V_ARR || val_as_real(nj[k].v) == val_as_real(ni[k].v));
    tap_ok(nsame, "%s: point %d: ld_draw's %d nested latents are the interpreter's %d (%s)", what, p,
           cj, ci, ld_backend(lj));
  }
  ld_free(lj);
  free(theta), free(g), free(gj);
}

static const char *REGRESSION =
    "functions {\n"
    "  real sq(real x) { return x * x; }\n"
    "  vector affine(matrix A, vector x, vector b) { return A * x + b; }\n"
    "  real softmax2(real a, real b) { real m = fmax(a, b); return m + log(exp(a - m) + exp(b - m)); }\n"
    "  matrix sym(matrix M) { return (M + M') / 2; }\n"
    "}\n"
    "data { int N; vector[N] y; vector[N] x1; vector[N] x2; }\n"
    "model {\n"
    "  vector[2] beta ~ normal(0, 1);\n"
    "  real<lower=0> sigma ~ lognormal(0, 1);\n"
    "  matrix[N, 2] X;\n"
    "  X[:, 1] = x1;\n"
    "  X[:, 2] = x2;\n"
    "  y ~ normal(affine(X, beta, rep_vector(sq(2), N)), sigma);\n"   /* int -> real */
    "  target += softmax2(beta[1], sq(beta[2]));\n"
    "  matrix[2, 2] S = sym([[beta[1], beta[2]], [sigma, 1]]);\n"
    "  target += -0.1 * sq(S[1, 2]);\n"
    "}\n"
    "generated {\n"
    "  real s2 = sq(sigma);\n"
    "  vector[N] mu = affine(X, beta, rep_vector(0, N));\n"
    "  real yrep = normal_rng(mu[1], sigma);\n"
    "}\n";

static const char *HIERARCHY =
    "functions {\n"
    "  real draw_group(real mu, real tau) {\n"
    "    real<lower=0> s ~ lognormal(0, 0.5);\n"
    "    real z ~ normal(mu, tau * s);\n"
    "    return z;\n"
    "  }\n"
    "  void obs(vector y, real m, real s) { for (i in 1:rows(y)) y[i] ~ normal(m, s); }\n"
    "  vector bump(vector v, int k) { v[k] = v[k] + 1; return v; }\n"
    "  real dec(real x) { x = x - 1; return x; }\n"
    "  real twice(real x) { return dec(x + 1) * 2; }\n"
    "}\n"
    "data { int N; vector[N] y; vector[N] x1; vector[N] x2; }\n"
    "model {\n"
    "  real mu ~ normal(0, 2);\n"
    "  real<lower=0> tau ~ lognormal(0, 1);\n"
    "  real th[3];\n"
    "  for (j in 1:3) th[j] = draw_group(mu, tau);\n"
    "  obs(y, th[1] + th[2], exp(th[3] / 4));\n"
    "  vector[N] yb = bump(y, 2);\n"
    "  target += -0.01 * dot_self(yb) * twice(tau);\n"
    "  real m2 = mu;\n"
    "  real m3 = dec(m2);\n"
    "  target += -0.5 * (m2 - m3);\n"
    "}\n"
    "generated { real total = twice(th[1]) + sum(bump(yb, 1)); }\n";

static const char *WHILE_GEN =
    "functions {\n"
    "  int halvings(real x) { int n = 0; real y = x; while (y > 1) { y = y / 2; n += 1; } return n; }\n"
    "  real sq(real x) { return x * x; }\n"
    "  void pen(real x) { target += -sq(x) / 2; }\n"
    "}\n"
    "model {\n"
    "  real<lower=0> s ~ gamma(2, 1);\n"
    "  real u ~ normal(0, 10);\n"
    "  pen(u);\n"
    "  for (k in 1:3) pen(u / k);\n"
    "  target += -sq(s);\n"
    "}\n"
    "generated { int h = halvings(s * 100); real r = normal_rng(sq(s), 1); }\n";

static void test_agreement(void) {
  TData td;
  tdata_init(&td);
  const double y[5] = {0.3, -1.2, 2.0, 0.7, 1.1}, x1[5] = {1, 1, 1, 1, 1},
               x2[5] = {-1, 0.5, 2, 0.1, 1.3};
  tdata_add(&td, "N", val_int(5));
  tdata_add(&td, "y", tvec(5, y));
  tdata_add(&td, "x1", tvec(5, x1));
  tdata_add(&td, "x2", tvec(5, x2));
  jit_agrees("regression through functions", REGRESSION, &td, 0.8);
  jit_agrees("latents and observations inside functions", HIERARCHY, &td, 0.8);
  jit_agrees("void functions, a while loop in the generated block", WHILE_GEN, NULL, 0.8);
  /* latents in a loop and under a branch, no function: the compiled draw
     records them (nested latents) under the interpreter's addresses */
  jit_agrees("latents in a loop and a branch",
             "data { int N; vector[N] y; vector[N] x1; vector[N] x2; }\n"
             "model {\n"
             "  real mu ~ normal(0, 2);\n"
             "  for (i in 1:N) {\n"
             "    real th ~ normal(mu, 1);\n"
             "    y[i] ~ normal(th, 1);\n"
             "    if (x2[i] > 0.5) { real e ~ normal(th, 2); target += -e * e / 8; }\n"
             "  }\n"
             "  for (i in 1:2) for (j in 1:2) { real w ~ normal(0, 1); }\n"
             "}\n",
             &td, 0.8);
}

static void test_refusals(void) {
  const char *rec_model =
      "functions {\n"
      "  real shrink(real x, int n) { real r = x; if (n > 0) r = shrink(x, n - 1) / 2; return r; }\n"
      "}\n"
      "model { real mu ~ normal(0, 1); target += shrink(mu, 3); }\n";
  LogDensity *ld = ld_of("recursion in the model block", rec_model, NULL);
  if (ld) {
    bool used = ld_use_jit(ld, false);
    const char *why = ld_jit_refusal(ld);
    tap_ok(!used && why && strcmp(why, "test.ppl:2:59: recursive function 'shrink' cannot be inlined") == 0,
           "recursion in the model block: not compiled (%s)", why ? why : "compiled");
  }
  const char *rec_gen =
      "functions {\n"
      "  real sq(real x) { return x * x; }\n"
      "  int count(int n) { int c = 0; if (n > 0) c = 1 + count(n - 1); return c; }\n"
      "}\n"
      "model { real mu ~ normal(0, 1); target += -sq(mu); }\n"
      "generated { int c = count(4); }\n";
  ld = ld_of("recursion in the generated block", rec_gen, NULL);
  if (ld) {
    bool used = ld_use_jit(ld, false);
    tap_ok(used, "recursion in the generated block: the log density is compiled (%s)", ld_backend(ld));
    double theta[1] = {0.4}, lp = NAN, g[1];
    bool ok = used && ld_eval_grad_jit(ld, theta, &lp, g);
    tap_ok(ok && close12(lp, -0.4 * 0.4 - 0.5 * 0.4 * 0.4 - log(sqrt(2 * M_PI))) && close12(g[0], -3 * 0.4),
           "... and gives lp = -mu^2 + log N(mu | 0, 1) = %.17g, d/dmu = -3 mu = %.17g", lp, g[0]);
    LdWork *w = ld_work_new(ld);
    tap_ok(ld_draw_jit(w, theta, 1, 0) == NULL &&
               strstr(ld_backend(ld), "test.ppl:3:52: recursive function 'count' cannot be inlined"),
           "... while its draws are interpreted, saying why (%s)", ld_backend(ld));
  }
}

int main(void) {
#if !PPL_HAVE_LLVM
  printf("1..0 # SKIP ppl was built without LLVM (-Djit=disabled)\n");
  return 0;
#endif
  test_agreement();
  test_refusals();
  return tap_done();
}
