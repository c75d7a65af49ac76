/* test_data_reuse.c — new data for a compiled program, through ppl.h as a
 * host amortizing one program over many data sets uses it: data of the same
 * shapes (and the same ints) take the compiled code of the last data set
 * instead of compiling again (inference/logdensity.h, ld_shared_pass), and
 * give the same bits as a model that compiled for them; other shapes or
 * other ints compile anew, and are as right.
 *
 * Each check compares model A, whose data change from set to set, with a
 * fresh model B given only the data set in question: the backend line says
 * whether the code was reused, the log density and its gradient at fixed
 * points are equal bit for bit, and so are nuts's draws (same seed). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

static const char *src =
    "data {\n"
    "  int<lower=1> N;\n"
    "  int<lower=1> K;\n"
    "  matrix[N, K] X;\n"
    "  vector[N] y;\n"
    "  real<lower=0> s;\n"
    "  int<lower=1> df;\n"
    "}\n"
    "model {\n"
    "  vector[K] b ~ normal(0, 10);\n"
    "  real<lower=0> sigma ~ student_t(df, 0, s);\n"
    "  y ~ normal(X * b, sigma);\n"
    "}\n";

/* data set `seed`: N rows, K = 2 predictors, deterministic numbers */
static const char *data_json(int n, int seed, double s, int df) {
  static char buf[8192];
  size_t k = (size_t)snprintf(buf, sizeof buf, "{\"N\": %d, \"K\": 2, \"s\": %g, \"df\": %d, \"X\": [",
                              n, s, df);
  for (int i = 0; i < n; i++)
    k += (size_t)snprintf(buf + k, sizeof buf - k, "%s[%.6f, %.6f]", i ? ", " : "",
                          sin(1.0 + i * 0.7 + seed), cos(0.3 * i - seed));
  k += (size_t)snprintf(buf + k, sizeof buf - k, "], \"y\": [");
  for (int i = 0; i < n; i++)
    k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%.6f", i ? ", " : "",
                          1.5 * sin(1.0 + i * 0.7 + seed) - 0.5 * cos(0.3 * i - seed) +
                              0.3 * sin(17.0 * i + 3 * seed));
  snprintf(buf + k, sizeof buf - k, "]}");
  return buf;
}

static ppl_status run_nuts(ppl_model *m, ppl_result **r) {
  ppl_run_options o;
  ppl_run_options_default(&o);
  o.engine = "nuts";
  o.chains = 1;
  o.draws = 40;
  o.warmup = 40;
  o.seed = 3;
  /* 80 iterations are too few to repay compiling: the reuse is what is tested */
  if (ppl_run_set(&o, "jit", "true") != PPL_OK) return PPL_ERR_USAGE;
  ppl_status st = ppl_run(m, &o, r);
  ppl_run_options_free(&o);
  return st;
}

/* Model a (data already set) against a fresh model given the same json:
   reused says whether a's backend line should say the code was reused. */
static void compare(ppl_context *ctx, ppl_model *a, const char *json, bool reused,
                    const char *what) {
  ppl_model *b = NULL;
  ppl_result *ra = NULL, *rb = NULL;
  if (!tap_ok(ppl_compile_string(ctx, src, "reuse.ppl", &b) == PPL_OK &&
                  ppl_set_data_json(b, json, "fresh") == PPL_OK,
              "%s: the fresh model (%s)", what, ppl_errmsg(ctx))) {
    ppl_model_free(b);
    return;
  }
  /* the density calls (compiled) at fixed points */
  size_t n = 0;
  ppl_num_unconstrained(a, &n);
  size_t nb = 0;
  ppl_num_unconstrained(b, &nb);
  tap_ok(n == 3 && nb == 3, "%s: 3 unconstrained parameters (%zu, %zu)", what, n, nb);
  int diff = 0, bad = 0;
  for (int k = 0; k < 5 && n == 3 && nb == 3; k++) {
    double th[3] = {0.3 * k - 0.5, 1.1 - 0.4 * k, 0.2 * k - 0.3}, lpa, lpb, ga[3], gb[3];
    if (ppl_log_density_gradient(a, th, 3, &lpa, ga) != PPL_OK ||
        ppl_log_density_gradient(b, th, 3, &lpb, gb) != PPL_OK) {
      bad++;
      continue;
    }
    diff += memcmp(&lpa, &lpb, sizeof lpa) != 0 || memcmp(ga, gb, sizeof ga) != 0;
  }
  tap_ok(bad == 0 && diff == 0, "%s: log density and gradient equal the fresh model's bit for bit "
         "(%d differ, %d failed)", what, diff, bad);
  if (run_nuts(a, &ra) == PPL_OK && run_nuts(b, &rb) == PPL_OK) {
    const char *ba = ppl_result_backend(ra), *bb = ppl_result_backend(rb);
    bool said = ba && strstr(ba, "reused") != NULL;
    tap_ok(said == reused, "%s: the backend line %s the code was reused (%s)", what,
           reused ? "says" : "does not say", ba ? ba : "none");
    tap_ok(bb && strstr(bb, "LLVM JIT") && !strstr(bb, "reused"),
           "%s: the fresh model compiled (%s)", what, bb ? bb : "none");
    int nd = ppl_result_num_draws(ra), nc = ppl_result_num_columns(ra), dd = 0;
    bool same_shape = nd == ppl_result_num_draws(rb) && nc == ppl_result_num_columns(rb);
    for (int i = 0; same_shape && i < nd; i++)
      for (int c = 0; c < nc; c++) {
        const char *name = ppl_result_column_name(ra, c);
        if (strstr(name, "time")) continue;
        double x = ppl_result_draw(ra, 0, i, c), y = ppl_result_draw(rb, 0, i, c);
        dd += memcmp(&x, &y, sizeof x) != 0;
      }
    tap_ok(same_shape && dd == 0, "%s: nuts's draws equal the fresh model's bit for bit (%d differ)",
           what, dd);
  } else {
    tap_ok(false, "%s: nuts ran (%s)", what, ppl_errmsg(ctx));
  }
  ppl_result_free(ra);
  ppl_result_free(rb);
  ppl_model_free(b);
}

int main(void) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *a = NULL;
  if (!tap_ok(ppl_compile_string(ctx, src, "reuse.ppl", &a) == PPL_OK, "compiles (%s)",
              ppl_errmsg(ctx)))
    return tap_done();
  static char json[8192];
  /* the first data set compiles */
  snprintf(json, sizeof json, "%s", data_json(20, 1, 2.0, 4));
  tap_ok(ppl_set_data_json(a, json, "set 1") == PPL_OK, "data set 1");
  compare(ctx, a, json, false, "set 1 (first)");
  /* new values, the same shapes: reused */
  snprintf(json, sizeof json, "%s", data_json(20, 2, 3.5, 4));
  tap_ok(ppl_set_data_json(a, json, "set 2") == PPL_OK, "data set 2");
  compare(ctx, a, json, true, "set 2 (same shapes, other reals)");
  snprintf(json, sizeof json, "%s", data_json(20, 3, 0.7, 4));
  tap_ok(ppl_set_data_json(a, json, "set 3") == PPL_OK, "data set 3");
  compare(ctx, a, json, true, "set 3 (same shapes again)");
  /* other shapes (N is folded into the code): compiled anew */
  snprintf(json, sizeof json, "%s", data_json(31, 4, 2.0, 4));
  tap_ok(ppl_set_data_json(a, json, "set 4") == PPL_OK, "data set 4");
  compare(ctx, a, json, false, "set 4 (N = 31)");
  /* and those shapes are now the ones kept */
  snprintf(json, sizeof json, "%s", data_json(31, 5, 1.0, 4));
  tap_ok(ppl_set_data_json(a, json, "set 5") == PPL_OK, "data set 5");
  compare(ctx, a, json, true, "set 5 (N = 31 again)");
  /* a failed data set leaves no stale code behind: the next one is right */
  tap_ok(ppl_set_data_json(a, "{\"N\": 3}", "bad") != PPL_OK, "an incomplete data set is refused");
  snprintf(json, sizeof json, "%s", data_json(20, 6, 2.0, 4));
  tap_ok(ppl_set_data_json(a, json, "set 6") == PPL_OK, "data set 6 after the refusal");
  compare(ctx, a, json, false, "set 6 (N = 20 after the refusal)");
  /* the same shapes, another int (df: folded into the code): compiled anew */
  snprintf(json, sizeof json, "%s", data_json(20, 7, 2.0, 9));
  tap_ok(ppl_set_data_json(a, json, "set 7") == PPL_OK, "data set 7");
  compare(ctx, a, json, false, "set 7 (N = 20, df = 9)");
  /* typed arrays (ppl_data_real: read without printing JSON) and the same
     numbers as JSON text: the same log density, bit for bit, and reused */
  {
    double X[40], y[20], s = 1.25;
    int64_t n = 20, k = 2, df = 9;
    for (int i = 0; i < 20; i++) {
      X[2 * i] = sin(0.1 * i), X[2 * i + 1] = cos(0.37 * i) / 3;
      y[i] = X[2 * i] - 2 * X[2 * i + 1] + 0.1 * sin(7.0 * i);
    }
    ppl_status st = ppl_data_int(a, "N", &n, 0, NULL);
    if (st == PPL_OK) st = ppl_data_int(a, "K", &k, 0, NULL);
    if (st == PPL_OK) st = ppl_data_int(a, "df", &df, 0, NULL);
    if (st == PPL_OK) st = ppl_data_real(a, "X", X, 2, (int[]){20, 2});
    if (st == PPL_OK) st = ppl_data_real(a, "y", y, 1, (int[]){20});
    if (st == PPL_OK) st = ppl_data_real(a, "s", &s, 0, NULL);
    if (st == PPL_OK) st = ppl_data_commit(a);
    tap_ok(st == PPL_OK, "typed arrays commit (%s)", ppl_errmsg(ctx));
    size_t len = (size_t)snprintf(json, sizeof json, "{\"N\": 20, \"K\": 2, \"df\": 9, \"s\": %.17g, \"X\": [", s);
    for (int i = 0; i < 20; i++)
      len += (size_t)snprintf(json + len, sizeof json - len, "%s[%.17g, %.17g]", i ? ", " : "", X[2 * i],
                              X[2 * i + 1]);
    len += (size_t)snprintf(json + len, sizeof json - len, "], \"y\": [");
    for (int i = 0; i < 20; i++)
      len += (size_t)snprintf(json + len, sizeof json - len, "%s%.17g", i ? ", " : "", y[i]);
    snprintf(json + len, sizeof json - len, "]}");
    compare(ctx, a, json, true, "typed arrays (N = 20, df = 9)");
  }
  ppl_model_free(a);
  ppl_context_free(ctx);
  return tap_done();
}
