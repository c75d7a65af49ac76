/* test_host_grad.c — host functions with vector arguments and their own
 * derivative (ppl_register_function_ex), through the public API as a host
 * uses them: the gradient of a model calling one equals the gradient of the
 * same model written with built-ins (to 1e-8), the host's partials are what
 * the gradient used (counted), NUTS gives the exact posterior under the JIT
 * and the interpreter, and without the host's derivative the gradient is
 * numerical and still close.
 *
 * sqdist(v, c) = sum_i (v_i - c)^2, registered as "vr" (a vector, a real). */
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

typedef struct Counts {
  atomic_long value_calls; /* grad == NULL */
  atomic_long grad_calls;  /* grad != NULL */
  atomic_int bad_lens;     /* a call whose lens were not {3, 1} */
} Counts;

static double sqdist(void *ud, int nargs, const int *lens, const double *x, double *grad, int *err) {
  Counts *c = ud;
  if (nargs != 2 || lens[1] != 1 || lens[0] != 3) {
    atomic_fetch_add(&c->bad_lens, 1);
    *err = 1;
    return 0;
  }
  atomic_fetch_add(grad ? &c->grad_calls : &c->value_calls, 1);
  int n = lens[0];
  double cc = x[n], s = 0, dc = 0;
  for (int i = 0; i < n; i++) {
    double d = x[i] - cc;
    s += d * d;
    if (grad) grad[i] = 2 * d;
    dc -= 2 * d;
  }
  if (grad) grad[n] = dc;
  return s;
}

static const char *host_src =
    "model {\n"
    "  vector[3] v ~ normal(0, 1);\n"
    "  real c ~ normal(1, 1);\n"
    "  target += -0.5 * sqdist(v, c);\n"
    "}\n";
static const char *numeric_src =
    "model {\n"
    "  vector[3] v ~ normal(0, 1);\n"
    "  real c ~ normal(1, 1);\n"
    "  target += -0.5 * sqdist_num(v, c);\n"
    "}\n";
static const char *builtin_src =
    "model {\n"
    "  vector[3] v ~ normal(0, 1);\n"
    "  real c ~ normal(1, 1);\n"
    "  target += -0.5 * dot_self(v - c);\n"
    "}\n";

static ppl_model *compile(ppl_context *ctx, const char *src, const char *name) {
  ppl_model *m = NULL;
  if (!tap_ok(ppl_compile_string(ctx, src, name, &m) == PPL_OK && ppl_data_commit(m) == PPL_OK,
              "%s compiles (%s)", name, ppl_errmsg(ctx)))
    return NULL;
  return m;
}

/* The gradients of a and b at a few points; the largest difference. */
static double max_grad_diff(ppl_model *a, ppl_model *b) {
  static const double pts[4][4] = {
      {0.1, -0.3, 0.7, 0.4}, {-1.2, 0.5, 2.0, -0.8}, {0, 0, 0, 0}, {3.1, -2.2, 0.9, 1.7}};
  double worst = 0;
  for (int p = 0; p < 4; p++) {
    double ga[4], gb[4], la, lb;
    if (ppl_log_density_gradient(a, pts[p], 4, &la, ga) != PPL_OK ||
        ppl_log_density_gradient(b, pts[p], 4, &lb, gb) != PPL_OK)
      return INFINITY;
    worst = fmax(worst, fabs(la - lb));
    for (int k = 0; k < 4; k++) worst = fmax(worst, fabs(ga[k] - gb[k]));
  }
  return worst;
}

static void test_gradient(ppl_context *ctx, Counts *cnt, Counts *num) {
  ppl_model *h = compile(ctx, host_src, "host.ppl");
  ppl_model *n = compile(ctx, numeric_src, "numeric.ppl");
  ppl_model *b = compile(ctx, builtin_src, "builtin.ppl");
  if (!h || !n || !b) goto out;
  max_grad_diff(h, b); /* the first call also discovers the latents: a run without gradient */
  long g0 = atomic_load(&cnt->grad_calls), v0 = atomic_load(&cnt->value_calls);
  double d = max_grad_diff(h, b);
  tap_ok(d <= 1e-8, "host derivative: log density and gradient equal the built-in model's (max diff %.3g)", d);
  long g1 = atomic_load(&cnt->grad_calls), v1 = atomic_load(&cnt->value_calls);
  tap_ok(g1 - g0 >= 4, "the gradients called the host's derivative (%ld calls with grad)", g1 - g0);
  tap_ok(v1 == v0, "and never its value alone for differences (%ld value calls)", v1 - v0);
  tap_ok(atomic_load(&cnt->bad_lens) == 0, "lens are {3, 1} in every call");

  long nv0 = atomic_load(&num->value_calls);
  d = max_grad_diff(n, b);
  tap_ok(d <= 1e-6, "no host derivative: numerical gradient close to the built-in's (max diff %.3g)", d);
  tap_ok(atomic_load(&num->grad_calls) == 0 && atomic_load(&num->value_calls) - nv0 >= 4 * 16,
         "numerical: grad always NULL, 4 value calls per coordinate (%ld calls)",
         atomic_load(&num->value_calls) - nv0);

  /* the value on a row_vector and a real[] argument, and a bad argument */
  ppl_model *m = NULL;
  const char *rv_src = "model { real c ~ normal(0, 1); }\n"
                       "generated { row_vector[3] r = [1, 2, 3]; real a[3] = {1, 2, 3};\n"
                       "  real d1 = sqdist(r, 1); real d2 = sqdist(a, 2); }\n";
  tap_ok(ppl_compile_string(ctx, rv_src, "rv.ppl", &m) == PPL_OK, "row_vector and real[] arguments accepted (%s)",
         ppl_errmsg(ctx));
  ppl_model_free(m);
  m = NULL;
  tap_ok(ppl_compile_string(ctx, "model { real c ~ normal(0, 1); target += sqdist(c, c); }", "bad.ppl",
                            &m) == PPL_ERR_TYPE &&
             strstr(ppl_errmsg(ctx), "bad.ppl:1:49: argument 1 of 'sqdist' must be a vector of reals "
                                     "(vector, row_vector or real[]), got real"),
         "a real where a vector is declared: %s", ppl_errmsg(ctx));
  ppl_model_free(m);
out:
  ppl_model_free(h);
  ppl_model_free(n);
  ppl_model_free(b);
}

/* NUTS with the host's derivative: the exact posterior (Gaussian: c = 0.4,
   v_i = 0.2, sd(c) = 1/sqrt(2.5 * 4/2.5 ...) from the precision matrix) under
   both backends, and the derivative was what it used. */
static void test_nuts(ppl_context *ctx, Counts *cnt, int no_jit) {
  ppl_model *h = compile(ctx, host_src, "host.ppl");
  if (!h) return;
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "nuts";
  ro.chains = 2;
  ro.draws = 1000;
  ro.warmup = 500;
  ro.seed = 11;
  ro.no_jit = no_jit;
  long g0 = atomic_load(&cnt->grad_calls);
  ppl_result *r = NULL;
  const char *be = no_jit ? "interpreter" : "JIT";
  if (tap_ok(ppl_run(h, &ro, &r) == PPL_OK, "nuts (%s) runs (%s)", be, ppl_errmsg(ctx))) {
    /* precision [[2I, -1], [-1', 4]]: mean c = 0.4, v_i = 0.2 */
    const char *cols[2] = {"c", "v[1]"};
    const double want[2] = {0.4, 0.2};
    for (int k = 0; k < 2; k++) {
      ppl_summary s;
      int col = ppl_result_column_index(r, cols[k]);
      bool ok = col >= 0 && ppl_result_summary(r, col, &s) == PPL_OK;
      tap_ok(ok && fabs(s.mean - want[k]) <= 4 * s.mcse && s.ess_bulk > 300,
             "nuts (%s): mean of %s %.4f, exact %.1f (4 mcse %.4f, ess %.0f)", be, cols[k],
             ok ? s.mean : NAN, want[k], ok ? 4 * s.mcse : NAN, ok ? s.ess_bulk : NAN);
    }
    tap_ok(atomic_load(&cnt->grad_calls) - g0 > 1000, "nuts (%s) used the host's derivative (%ld calls)", be,
           atomic_load(&cnt->grad_calls) - g0);
    const char *backend = ppl_result_backend(r);
    tap_ok(backend && (strstr(backend, "LLVM JIT") != NULL) == !no_jit, "nuts (%s): backend %s", be,
           backend ? backend : "(none)");
  }
  ppl_result_free(r);
  ppl_model_free(h);
}

int main(void) {
  static Counts cnt, num;
  ppl_context *ctx = ppl_context_new(NULL);
  tap_ok(ppl_register_function_ex(ctx, "sqdist", "vr", sqdist, 1, &cnt) == PPL_OK &&
             ppl_register_function_ex(ctx, "sqdist_num", "vr", sqdist, 0, &num) == PPL_OK,
         "registered with and without a derivative (%s)", ppl_errmsg(ctx));
  tap_ok(ppl_register_function_ex(ctx, "f", "rx", sqdist, 1, NULL) == PPL_ERR_USAGE &&
             !strcmp(ppl_errmsg(ctx), "ppl_register_function_ex: args of 'f' must be letters 'r' "
                                      "(real) and 'v' (vector), got \"rx\""),
         "a bad argument kind: %s", ppl_errmsg(ctx));
  test_gradient(ctx, &cnt, &num);
  test_nuts(ctx, &cnt, 0);
  test_nuts(ctx, &cnt, 1);
  ppl_context_free(ctx);
  return tap_done();
}
