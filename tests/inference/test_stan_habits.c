/* test_stan_habits.c — what a Stan user's habits meet, through the public API:
 *
 *   - bools convert to numbers where Stan's comparisons are ints 0/1: the log
 *     density and gradient of a model using (x[n] == 2) as 0/1 and
 *     target += (a > 0) equal the hand-written ones, under the LLVM JIT (which
 *     must take the program: ppl_model_llvm_ir is not NULL) and the
 *     interpreter alike;
 *   - the compile-time warning for an unconstrained latent used as a scale,
 *     and none where the scale cannot be negative;
 *   - errors carry their hint on a second line with its own position;
 *   - the post-run "rejections" warning of nuts names the latent behind the
 *     rejected parameter, also when an element of it is passed (s[2]). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

static const char *bool_model =
    "data { int N; vector[N] x; vector[N] y; }\n"
    "model {\n"
    "  real a ~ normal(0, 1);\n"
    "  real b ~ normal(0, 1);\n"
    "  for (n in 1:N) y[n] ~ normal(a + b * (x[n] == 2), 1);\n"
    "  target += (a > 0) * 0.5;\n"
    "}\n";
static const char *bool_data = "{\"N\": 4, \"x\": [1, 2, 2, 3], \"y\": [0.3, 1.9, 2.4, -0.7]}";
static const double X[4] = {1, 2, 2, 3}, Y[4] = {0.3, 1.9, 2.4, -0.7};

/* The same log density written out: normal(a|0,1) normal(b|0,1)
   prod normal(y|a + b [x == 2], 1) exp(0.5 [a > 0]). */
static double want_lp(double a, double b, double *ga, double *gb) {
  const double c = -0.5 * log(2 * M_PI);
  double lp = 2 * c - 0.5 * a * a - 0.5 * b * b + (a > 0) * 0.5;
  *ga = -a, *gb = -b;
  for (int n = 0; n < 4; n++) {
    double ind = X[n] == 2, r = Y[n] - (a + b * ind);
    lp += c - 0.5 * r * r;
    *ga += r, *gb += r * ind;
  }
  return lp;
}

static void test_bool_backends(void) {
  for (int no_jit = 0; no_jit <= 1; no_jit++) {
    const char *be = no_jit ? "interpreter" : "JIT";
    ppl_config cfg;
    ppl_config_default(&cfg);
    cfg.no_jit = no_jit;
    ppl_context *ctx = ppl_context_new(&cfg);
    ppl_model *m = NULL;
    if (!tap_ok(ppl_compile_string(ctx, bool_model, "bool.ppl", &m) == PPL_OK, "%s: compiles %s",
                be, ppl_errmsg(ctx)) ||
        !tap_ok(ppl_set_data_json(m, bool_data, "bool.json") == PPL_OK, "%s: data %s", be,
                ppl_errmsg(ctx))) {
      ppl_context_free(ctx);
      continue;
    }
    if (!no_jit)
      tap_ok(ppl_model_llvm_ir(m) != NULL, "the JIT compiles the bool conversions (%s)",
             ppl_errmsg(ctx));
    const double pts[3][2] = {{0.4, -0.3}, {-1.2, 0.8}, {0.05, 2.5}};
    for (int k = 0; k < 3; k++) {
      double lp = NAN, g[2] = {NAN, NAN}, ga, gb;
      double want = want_lp(pts[k][0], pts[k][1], &ga, &gb);
      ppl_status st = ppl_log_density_gradient(m, pts[k], 2, &lp, g);
      tap_ok(st == PPL_OK && fabs(lp - want) < 1e-12 && fabs(g[0] - ga) < 1e-12 &&
                 fabs(g[1] - gb) < 1e-12,
             "%s: log density and gradient at point %d: %.15g (want %.15g), %g %g (want %g %g)",
             be, k, lp, want, g[0], g[1], ga, gb);
    }
    ppl_model_free(m);
    ppl_context_free(ctx);
  }
}

/* Warnings of a program, as one string ("" when none). */
static const char *warnings_of(ppl_context *ctx, const char *src, int *n) {
  ppl_model *m = NULL;
  *n = -1;
  if (ppl_compile_string(ctx, src, "w.ppl", &m) != PPL_OK) return ppl_errmsg(ctx);
  *n = ppl_model_num_warnings(m);
  static char buf[2048];
  buf[0] = 0;
  for (int i = 0; i < *n; i++) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s|", ppl_model_warning(m, i));
  ppl_model_free(m);
  return buf;
}

static void test_scale_warning(ppl_context *ctx) {
  int n;
  const char *w = warnings_of(ctx,
                              "data { vector[3] y; }\nmodel {\n  vector[2] s ~ cauchy(0, 1);\n"
                              "  y ~ normal(0, s[2]);\n}\n", &n);
  tap_ok(n == 1 && strstr(w, "w.ppl:4:17: warning: latent 's', the sigma of normal") &&
             strstr(w, "declare it `vector<lower=0>[2] s ~ cauchy(...);`"),
         "an element of an unconstrained latent as a scale is warned: %s", w);
  const char *fine[] = {
      "data { vector[3] y; }\nmodel { real<lower=0> s ~ normal(0, 1); y ~ normal(0, s); }\n",
      "data { vector[3] y; }\nmodel { real s ~ lognormal(0, 1); y ~ normal(0, s); }\n",
      "data { vector[3] y; }\nmodel { real s ~ normal(0, 1); y ~ normal(0, exp(s)); }\n",
      "data { vector[3] y; }\nmodel { real s ~ normal(0, 1); y ~ normal(s, 1); }\n",
  };
  for (int i = 0; i < 4; i++) {
    w = warnings_of(ctx, fine[i], &n);
    tap_ok(n == 0, "no warning where the scale cannot be negative (%d): %s", i, w);
  }
}

static void test_hint_line(ppl_context *ctx) {
  ppl_model *m = NULL;
  ppl_status st = ppl_compile_string(ctx, "model {\n  real mu;\n  mu ~ normal(0, 1);\n}\n", "h.ppl", &m);
  const char *msg = ppl_errmsg(ctx);
  const char *nl = strchr(msg, '\n');
  const char *file = NULL;
  int line = 0, col = 0;
  ppl_errpos(ctx, &file, &line, &col);
  tap_ok(st == PPL_ERR_TYPE && nl && !strncmp(msg, "h.ppl:3:3: 'mu' has no value here", 33) &&
             !strcmp(nl + 1, "h.ppl:2:8: hint: a latent is declared and drawn in one statement: "
                             "`real mu ~ normal(...);` (ppl has no parameters block)") &&
             line == 3 && col == 3,
         "the error's first line, its position, and the hint on the second line: %s", msg);
}

static void test_rejections(ppl_context *ctx) {
  ppl_model *m = NULL;
  if (!tap_ok(ppl_compile_string(ctx,
                                 "data { int N; vector[N] y; }\nmodel {\n  real mu ~ normal(0, 1);\n"
                                 "  vector[2] s ~ normal(0, 1);\n  y ~ normal(mu, s[2]);\n}\n",
                                 "r.ppl", &m) == PPL_OK &&
                  ppl_set_data_json(m, "{\"N\": 3, \"y\": [1, 2, 3]}", "r.json") == PPL_OK,
              "rejection model compiles %s", ppl_errmsg(ctx)))
    return;
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = "nuts";
  ro.chains = 1, ro.warmup = 200, ro.draws = 200;
  ppl_result *r = NULL;
  if (!tap_ok(ppl_run(m, &ro, &r) == PPL_OK, "nuts runs %s", ppl_errmsg(ctx))) return;
  int found = -1;
  for (int i = 0; i < ppl_result_num_warnings(r); i++) {
    const char *kind = NULL, *advice = NULL;
    ppl_result_warning(r, i, &kind, &advice);
    if (!strcmp(kind, "rejections")) found = i;
  }
  const char *kind, *advice = "";
  const char *msg = found >= 0 ? ppl_result_warning(r, found, &kind, &advice) : "";
  tap_ok(found >= 0 && strstr(msg, "r.ppl:5:3: normal: sigma must be positive, got -") &&
             strstr(msg, "(latent 's')") && strstr(advice, "declare 's' with a lower bound of 0") &&
             !strcmp(ppl_result_warning_variable(r, found, 0), "s"),
         "the rejections warning names the latent behind s[2]: %s / %s", msg, advice);
  ppl_result_free(r);
  ppl_model_free(m);
}

int main(void) {
  test_bool_backends();
  ppl_context *ctx = ppl_context_new(NULL);
  test_scale_warning(ctx);
  test_hint_line(ctx);
  test_rejections(ctx);
  ppl_context_free(ctx);
  return tap_done();
}
