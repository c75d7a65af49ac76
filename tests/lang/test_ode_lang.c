/* test_ode_lang.c — ode_rk45 / ode_rk45_tol in the language, through the
 * public API: the checker's rules for the function argument (with their
 * messages), the IR listing, runtime errors with positions, values and
 * gradients.
 *
 * Gradient references are independent of the solver: closed forms for
 * exponential decay (also solved from inside another ODE's right-hand side),
 * and central finite differences of ppl_log_density for a Lotka-Volterra
 * model whose right-hand side takes parameters of several types and calls a
 * user function and a builtin, at tight tolerances.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

static ppl_context *ctx;

static ppl_model *compile(const char *src) {
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, src, "ode.ppl", &m) != PPL_OK) return NULL;
  return m;
}

/* The model must be rejected with a message containing `want`. */
static void rejects(const char *what, const char *src, const char *want) {
  ppl_model *m = compile(src);
  const char *msg = m ? "(compiled)" : ppl_errmsg(ctx);
  if (!tap_ok(!m && strstr(msg, want) != NULL, "checker: %s", what))
    tap_diag("got: %s\n# want: ...%s...", msg, want);
  if (m) ppl_model_free(m);
}

#define DECAY "vector decay(real t, vector y, real k) { return -k * y; }\n"

static void test_checker(void) {
  rejects("first argument a variable",
          DECAY "model { real k ~ normal(1, 1); vector[1] y0 = [1]';\n"
                "  vector[1] z[1] = ode_rk45(y0, y0, 0, {1.0}, k); }\n",
          "ode.ppl:3:29: the first argument of ode_rk45 must be the name of a user function");
  rejects("first argument an expression",
          DECAY "model { real k ~ normal(1, 1);\n"
                "  vector[1] z[1] = ode_rk45(1 + 2, [1]', 0, {1.0}, k); }\n",
          "the first argument of ode_rk45 must be the name of a user function");
  rejects("unknown function, with a suggestion",
          DECAY "model { real k ~ normal(1, 1);\n"
                "  vector[1] z[1] = ode_rk45(decy, [1]', 0, {1.0}, k); }\n",
          "ode.ppl:3:29: ode_rk45: unknown function 'decy'; did you mean 'decay'?");
  rejects("wrong return type",
          "real g(real t, vector y) { return 1; }\n"
          "model { vector[1] z[1] = ode_rk45(g, [1]', 0, {1.0}); }\n",
          "ode_rk45: the ODE function must have the form vector g(real, vector) for this call, "
          "but it is real g(real, vector)");
  rejects("missing extra argument",
          DECAY "model { vector[1] z[1] = ode_rk45(decay, [1]', 0, {1.0}); }\n",
          "must have the form vector decay(real, vector) for this call, but it is "
          "vector decay(real, vector, real)");
  rejects("extra argument of the wrong type",
          DECAY "model { vector[1] z[1] = ode_rk45(decay, [1]', 0, {1.0}, [1, 2]'); }\n",
          "ode.ppl:2:64: ode_rk45: argument 5 is passed to 'decay' as 'k', which is real; got "
          "vector");
  rejects("y0 not a vector",
          DECAY "model { vector[1] z[1] = ode_rk45(decay, {1.0}, 0, {1.0}, 2); }\n",
          "ode_rk45: the initial state y0 must be vector, got real[]; use to_vector()");
  rejects("ts not an array",
          DECAY "model { vector[1] z[1] = ode_rk45(decay, [1]', 0, [1]', 2); }\n",
          "ode_rk45: the output times ts must be real[], got vector; use to_array_1d()");
  rejects("max_num_steps not an int",
          DECAY "model { vector[1] z[1] = ode_rk45_tol(decay, [1]', 0, {1.0}, 1e-6, 1e-6, 1e3, 2);"
                " }\n",
          "ode_rk45_tol: max_num_steps must be int, got real");
  rejects("too few arguments",
          DECAY "model { vector[1] z[1] = ode_rk45_tol(decay, [1]', 0, {1.0}, 1e-6); }\n",
          "ode_rk45_tol expects at least 7 arguments, got 5: ode_rk45_tol(f, y0, t0, ts, "
          "rel_tol, abs_tol, max_num_steps, ...)");
  rejects("result is an array of vectors",
          DECAY "model { vector[1] z = ode_rk45(decay, [1]', 0, {1.0}, 2); }\n",
          "cannot assign vector[] to vector");
  rejects("a latent inside the ODE function",
          "vector f(real t, vector y) { real e ~ normal(0, 1); return e * y; }\n"
          "model { vector[1] z[1] = ode_rk45(f, [1]', 0, {1.0}); }\n",
          "ode.ppl:2:35: ode_rk45: the ODE function 'f' must be deterministic, but it declares "
          "latents, observes or adds to the log density");
  rejects("target += in a function the ODE function calls",
          "real g(real x) { target += x; return x; }\n"
          "vector f(real t, vector y) { return g(1) * y; }\n"
          "model { vector[1] z[1] = ode_rk45(f, [1]', 0, {1.0}); }\n",
          "the ODE function 'f' must be deterministic, but it declares latents, observes or "
          "adds to the log density (directly or through the functions it calls)");
  rejects("an ODE in a function, its right-hand side defined later and stochastic",
          "vector[] path(vector y0) { return ode_rk45(f, y0, 0, {1.0}); }\n"
          "vector f(real t, vector y) { y ~ normal(0, 1); return y; }\n"
          "model { vector[1] z[1] = path([1]'); }\n",
          "ode.ppl:1:44: ode_rk45: the ODE function 'f' must be deterministic");
  rejects("an _rng in the ODE function",
          "vector f(real t, vector y) { return normal_rng(0, 1) * y; }\n"
          "model { vector[1] z[1] = ode_rk45(f, [1]', 0, {1.0}); }\n",
          "the ODE function 'f' must be deterministic, but it calls a *_rng function");
  rejects("a user function called ode_rk45",
          "vector ode_rk45(vector y) { return y; }\nmodel { }\n",
          "function 'ode_rk45' conflicts with a builtin function");
}

static void test_ir(void) {
  ppl_model *m = compile(DECAY "model {\n  real<lower=0> k ~ lognormal(0, 1);\n"
                               "  vector[1] a[2] = ode_rk45(decay, [2]', 0, {1, 2}, k);\n"
                               "  vector[1] b[1] = ode_rk45_tol(decay, a[1], 1, {3.0}, 1e-8, "
                               "1e-9, 77, 2 * k);\n}\n");
  if (!tap_ok(m != NULL, "ir: compiles (%s)", m ? "" : ppl_errmsg(ctx))) return;
  const char *ir = ppl_model_ir(m);
  const char *p = strstr(ir, "= ode_rk45 decay(");
  const char *q = strstr(ir, "= ode_rk45_tol decay(");
  tap_ok(p && q && strstr(ir, "const 1e-06 : real") && strstr(ir, "const 1000000 : int") &&
             strstr(ir, "const 77 : int"),
         "ir: IR_ODE listed, default tolerances as constants");
  if (!p || !q) tap_diag("%s", ir);
  /* the solve depends on k, but the structure does not: NUTS can run it */
  const char *an = ppl_model_analysis(m);
  tap_ok(strstr(an, "structure: fixed") && strstr(an, "engine: nuts"),
         "analysis: an ODE model has fixed structure and goes to nuts");
  if (!strstr(an, "engine: nuts")) tap_diag("%s", an);
  ppl_model_free(m);
}

/* lp and gradient at theta against expected values */
static void check_point(const char *what, ppl_model *m, const double *theta, size_t n,
                        double want_lp, const double *want_g, double tol) {
  double lp = NAN, lp2 = NAN, g[16];
  bool ok = ppl_log_density_gradient(m, theta, n, &lp, g) == PPL_OK &&
            ppl_log_density(m, theta, n, &lp2) == PPL_OK;
  if (!tap_ok(ok, "%s: evaluates (%s)", what, ok ? "" : ppl_errmsg(ctx))) return;
  double worst = fabs(lp - want_lp) / fmax(1, fabs(want_lp));
  for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] - want_g[i]) / fmax(1, fabs(want_g[i])));
  tap_ok(worst < tol && lp == lp2,
         "%s: lp %.10g and gradient within %.0e of the closed form (worst %.2g), same lp "
         "without gradient", what, lp, tol, worst);
}

static void test_decay_closed_form(void) {
  /* theta = log k: lp = -log(2 pi)/2 - theta^2/2 + 2 exp(-2k) (the lognormal's
     -log k cancels the Jacobian +theta) */
  ppl_model *m = compile(DECAY "model {\n  real<lower=0> k ~ lognormal(0, 1);\n"
                               "  vector[1] z[2] = ode_rk45_tol(decay, [2]', 0, {1.0, 2.0}, "
                               "1e-10, 1e-10, 100000, k);\n  target += z[2][1];\n}\n");
  if (!tap_ok(m != NULL, "decay: compiles (%s)", m ? "" : ppl_errmsg(ctx))) return;
  for (int i = 0; i < 3; i++) {
    double th = -0.8 + 0.9 * i, k = exp(th);
    double lp = -0.5 * log(2 * M_PI) - th * th / 2 + 2 * exp(-2 * k);
    double g = -th + 2 * exp(-2 * k) * (-2) * k;
    char what[64];
    snprintf(what, sizeof what, "decay at k = %.3g", k);
    check_point(what, m, &th, 1, lp, &g, 1e-8);
  }
  ppl_model_free(m);

  /* the solution of an ODE inside another ODE's right-hand side:
     y' = y (exp(-k) - 1), y(0) = 1, so y(2) = exp(2 (exp(-k) - 1)) */
  m = compile(DECAY "vector outer(real t, vector y, real k) {\n"
                    "  vector[1] w[1] = ode_rk45_tol(decay, y, 0, {1.0}, 1e-11, 1e-11, 100000, k);\n"
                    "  return w[1] - y;\n}\n"
                    "model {\n  real<lower=0> k ~ lognormal(0, 1);\n"
                    "  vector[1] z[1] = ode_rk45_tol(outer, [1]', 0, {2.0}, 1e-10, 1e-10, "
                    "100000, k);\n  target += z[1][1];\n}\n");
  if (!tap_ok(m != NULL, "nested: compiles (%s)", m ? "" : ppl_errmsg(ctx))) return;
  for (int i = 0; i < 2; i++) {
    double th = -0.3 + 0.7 * i, k = exp(th), r = exp(2 * (exp(-k) - 1));
    double lp = -0.5 * log(2 * M_PI) - th * th / 2 + r;
    double g = -th + r * 2 * (-exp(-k)) * k;
    char what[64];
    snprintf(what, sizeof what, "nested ODE at k = %.3g", k);
    check_point(what, m, &th, 1, lp, &g, 1e-7);
  }
  ppl_model_free(m);

  /* an ODE solved once in the data block: a constant of the log density */
  m = compile(DECAY "data {\n  real k0;\n  vector[1] c[1] = ode_rk45(decay, [2]', 0, {1.0}, k0);\n}\n"
                    "model {\n  real x ~ normal(0, 1);\n  target += c[1][1];\n}\n");
  if (!tap_ok(m != NULL, "data block: compiles (%s)", m ? "" : ppl_errmsg(ctx))) return;
  double x = 0.3, lp = NAN;
  bool ok = ppl_set_data_json(m, "{\"k0\": 0.7}", "data.json") == PPL_OK &&
            ppl_log_density(m, &x, 1, &lp) == PPL_OK;
  double want = -0.5 * log(2 * M_PI) - 0.045 + 2 * exp(-0.7);
  tap_ok(ok && fabs(lp - want) < 1e-5, "data block: lp %.8g, want %.8g (default tolerances)", lp,
         want);
  ppl_model_free(m);
}

/* ---- Lotka-Volterra against finite differences ---- */

static const char *lv_src =
    "real rate(real x, real s) { return s * x; }\n"
    "vector lv(real t, vector y, vector ab, real[] cd, real scale, int unused) {\n"
    "  real u = y[1];\n"
    "  real v = y[2];\n"
    "  return [(ab[1] - ab[2] * v) * u, (-cd[1] + rate(u, cd[2])) * v]' * exp(scale - 1);\n"
    "}\n"
    "data { int N; real ts[N]; real y[N, 2]; }\n"
    "model {\n"
    "  real<lower=0> a ~ normal(0.55, 0.1);\n"
    "  real<lower=0> b ~ normal(0.028, 0.005);\n"
    "  real<lower=0> cd[2] ~ normal({0.8, 0.024}, {0.1, 0.005});\n"
    "  vector<lower=0>[2] z0 ~ lognormal(log(30), 0.3);\n"
    "  real scale ~ normal(1, 0.05);\n"
    "  vector[2] z[N] = ode_rk45_tol(lv, 0.5 * z0 + 3, 0, ts, 1e-11, 1e-11, 1000000, [a, b]', "
    "cd, scale, 3);\n"
    "  for (n in 1:N) for (k in 1:2) y[n, k] ~ lognormal(log(z[n][k]), 0.3);\n"
    "}\n";

static const char *lv_data =
    "{\"N\": 6, \"ts\": [1, 2, 3, 5, 8, 12],"
    " \"y\": [[47.2, 6.1], [70.2, 9.8], [77.4, 35.2], [20.6, 41.7], [22, 8.3], [57, 12.3]]}";

static double fd(ppl_model *m, const double *theta, size_t n, size_t i) {
  double t[16], f[4];
  const double off[4] = {2, 1, -1, -2}, h = 1e-4;
  memcpy(t, theta, sizeof(double) * n);
  for (int k = 0; k < 4; k++) {
    t[i] = theta[i] + off[k] * h;
    if (ppl_log_density(m, t, n, &f[k]) != PPL_OK) return NAN;
  }
  return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
}

static void test_lv_gradient(void) {
  ppl_model *m = compile(lv_src);
  if (!tap_ok(m && ppl_set_data_json(m, lv_data, "data.json") == PPL_OK, "lv: compiles (%s)",
              ppl_errmsg(ctx)))
    return;
  size_t n = 0;
  ppl_num_unconstrained(m, &n);
  tap_ok(n == 7, "lv: 7 unconstrained parameters (%zu)", n);
  double x[7] = {0.55, 0.028, 0.8, 0.024, 60, 5, 1}, th0[7];
  ppl_unconstrain(m, x, th0);
  srand(3);
  for (int p = 0; p < 3; p++) {
    double th[7], g[7], lp = NAN, lp2 = NAN;
    for (size_t i = 0; i < n; i++) th[i] = th0[i] + 0.1 * ((double)rand() / RAND_MAX - 0.5);
    bool ok = ppl_log_density_gradient(m, th, n, &lp, g) == PPL_OK &&
              ppl_log_density(m, th, n, &lp2) == PPL_OK;
    if (!tap_ok(ok, "lv point %d: evaluates (%s)", p, ok ? "" : ppl_errmsg(ctx))) continue;
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
      double d = fd(m, th, n, i), e = fabs(g[i] - d) / fmax(1, fabs(d));
      if (!(e <= worst)) worst = e, wi = i;
    }
    tap_ok(worst < 1e-6 && lp == lp2,
           "lv point %d: lp %.8g, 7 partials within 1e-6 of finite differences (worst %.2g at "
           "%zu), same lp without gradient", p, lp, worst, wi);
  }
  ppl_model_free(m);
}

/* ---- runtime errors ---- */

static void fails_at_runtime(const char *what, const char *src, const char *want, bool grad) {
  ppl_model *m = compile(src);
  if (!tap_ok(m != NULL, "%s: compiles (%s)", what, m ? "" : ppl_errmsg(ctx))) return;
  size_t n = 0;
  ppl_num_unconstrained(m, &n);
  double th[4] = {0.1, 0.2, 0.3, 0.4}, g[4], lp;
  ppl_status st = grad ? ppl_log_density_gradient(m, th, n, &lp, g) : ppl_log_density(m, th, n, &lp);
  const char *msg = st == PPL_OK ? "(no error)" : ppl_errmsg(ctx);
  if (!tap_ok(st == PPL_ERR_RUNTIME && strstr(msg, want), "runtime: %s", what))
    tap_diag("got: %s\n# want: ...%s...", msg, want);
  ppl_model_free(m);
}

static void test_runtime_errors(void) {
  fails_at_runtime("f returns the wrong size",
                   "vector f(real t, vector y) { return [1, 2, 3]'; }\n"
                   "model { real x ~ normal(0, 1);\n"
                   "  vector[2] z[1] = ode_rk45(f, [x, 1]', 0, {1.0}); }\n",
                   "ode.ppl:3:20: ode_rk45: the ODE function 'f' returned vector of 3, but the "
                   "state y0 is a vector of 2", false);
  fails_at_runtime("an index error inside f, at its position",
                   "vector f(real t, vector y) {\n  return [y[3], y[1]]';\n}\n"
                   "model { real x ~ normal(0, 1);\n"
                   "  vector[2] z[1] = ode_rk45(f, [x, 1]', 0, {1.0}); }\n",
                   "ode.ppl:2:11: index 3 out of range", true);
  fails_at_runtime("t0 not before ts[1]",
                   DECAY "model { real x ~ normal(0, 1);\n"
                         "  vector[1] z[1] = ode_rk45(decay, [x]', 2, {1.0}, 1); }\n",
                   "ode.ppl:3:20: ode_rk45: initial time 2 must be less than the first output "
                   "time ts[1] = 1", false);
  fails_at_runtime("max_num_steps",
                   DECAY "model { real x ~ normal(0, 1);\n"
                         "  vector[1] z[1] = ode_rk45_tol(decay, [x]', 0, {100.0}, 1e-8, 1e-8, 4, "
                         "1); }\n",
                   "ode_rk45_tol: max_num_steps (4) reached between t = 0 and t = ", true);
  fails_at_runtime("negative tolerance",
                   DECAY "model { real x ~ normal(0, 1);\n"
                         "  vector[1] z[1] = ode_rk45_tol(decay, [x]', 0, {1.0}, -1, 1e-8, 4, 1); }\n",
                   "ode_rk45_tol: relative tolerance must be positive and finite, got -1", false);
  fails_at_runtime("output times that depend on a latent, in a gradient",
                   DECAY "model { real<lower=0> T ~ normal(1, 1);\n"
                         "  vector[1] z[1] = ode_rk45(decay, [1]', 0, {T}, 1);\n"
                         "  target += z[1][1]; }\n",
                   "ode_rk45: gradients with respect to the times t0 and ts are not supported",
                   true);
}

int main(void) {
  ctx = ppl_context_new(NULL);
  test_checker();
  test_ir();
  test_decay_closed_form();
  test_lv_gradient();
  test_runtime_errors();
  ppl_context_free(ctx);
  return tap_done();
}
