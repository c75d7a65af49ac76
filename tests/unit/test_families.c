/* test_families.c — distribution families registered by the host
 * (ppl_register_family), through the public API only.
 *
 * Two contexts register different families under the same name and a third
 * registers none: each compiles the same model against its own (or fails to
 * know the name), so registrations are per context.  A registered family's
 * log density and gradient equal those of the built-in family it imitates;
 * its draws (from its quantile function) and nuts over it give the right
 * mean; a family without partials is reported as such by gradient calls; and
 * registrations that would be ambiguous or incomplete are refused.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../tap.h"
#include "ppl.h"

/* exponential with rate lam: what the built-in exponential computes */
static double ex_lpdf(void *ud, double x, const double *p) {
  (void)ud;
  return x < 0 ? -INFINITY : log(p[0]) - p[0] * x;
}
static double ex_lpdf_grad(void *ud, double x, const double *p, double *dx, double *dp) {
  double lp = ex_lpdf(ud, x, p);
  *dx = -p[0];
  dp[0] = 1 / p[0] - x;
  return lp;
}
static double ex_quantile(void *ud, double u, const double *p) {
  __atomic_fetch_add((int *)ud, 1, __ATOMIC_RELAXED); /* counts draws: ud reaches the callbacks */
  return -log1p(-u) / p[0];
}

/* the same name in another context: exponential with mean m */
static double em_lpdf(void *ud, double x, const double *p) {
  (void)ud;
  return x < 0 ? -INFINITY : -log(p[0]) - x / p[0];
}
static double em_quantile(void *ud, double u, const double *p) {
  (void)ud;
  return -log1p(-u) * p[0];
}

static double host_fn(void *ud, const double *args, int nargs, int *err) {
  (void)ud, (void)nargs, (void)err;
  return args[0];
}

static const char *model_src =
    "data { int N; vector[N] y; }\n"
    "model {\n"
    "  real<lower=0> lam ~ gamma(2, 1);\n"
    "  y ~ %s(lam);\n"
    "}\n";

static ppl_model *compile(ppl_context *ctx, const char *family) {
  char src[512];
  snprintf(src, sizeof src, model_src, family);
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, src, "fam.ppl", &m) != PPL_OK) return NULL;
  int64_t n = 5;
  double y[5] = {0.3, 1.2, 0.05, 2.5, 0.7};
  int dims[1] = {5};
  if (ppl_data_int(m, "N", &n, 0, NULL) != PPL_OK || ppl_data_real(m, "y", y, 1, dims) != PPL_OK ||
      ppl_data_commit(m) != PPL_OK) {
    ppl_model_free(m);
    return NULL;
  }
  return m;
}

static ppl_family exp_family(const char *name, int *draws) {
  ppl_family f;
  memset(&f, 0, sizeof f);
  f.name = name;
  f.nparams = 1;
  f.param_names[0] = "lambda";
  f.param_kinds[0] = PPL_PARAM_POSITIVE;
  f.support = PPL_SUPPORT_POSITIVE;
  f.lpdf = ex_lpdf;
  f.lpdf_grad = ex_lpdf_grad;
  f.quantile = ex_quantile;
  f.ud = draws;
  return f;
}

int main(void) {
  int draws = 0;
  ppl_context *a = ppl_context_new(NULL), *b = ppl_context_new(NULL), *c = ppl_context_new(NULL);
  ppl_family fa = exp_family("myexp", &draws);
  tap_ok(ppl_register_family(a, &fa) == PPL_OK, "context a registers myexp (%s)", ppl_errmsg(a));
  ppl_family fb = exp_family("myexp", NULL);
  fb.lpdf = em_lpdf;
  fb.lpdf_grad = NULL;
  fb.quantile = em_quantile;
  tap_ok(ppl_register_family(b, &fb) == PPL_OK, "context b registers another myexp (%s)",
         ppl_errmsg(b));

  /* the same model in three contexts */
  ppl_model *ma = compile(a, "myexp"), *mb = compile(b, "myexp"), *mref = compile(a, "exponential");
  tap_ok(ma && mb && mref, "a and b compile the model against their own myexp");
  ppl_model *mc = compile(c, "myexp");
  tap_ok(!mc && strstr(ppl_errmsg(c), "myexp"), "a context without it does not know myexp: %s",
         ppl_errmsg(c));
  if (ma && mb && mref) {
    double theta = log(1.7), la, lb, lr, ga, gr;
    ppl_log_density(ma, &theta, 1, &la);
    ppl_log_density(mb, &theta, 1, &lb);
    ppl_log_density(mref, &theta, 1, &lr);
    tap_near(la, lr, 1e-13, "a's myexp gives the built-in exponential's log density (%.10g)", la);
    /* b's: mean 1.7, i.e. rate 1/1.7 */
    double want = lr, ys = 0.3 + 1.2 + 0.05 + 2.5 + 0.7, l = 1.7;
    want -= 5 * log(l) - l * ys;
    want += -5 * log(l) - ys / l;
    tap_near(lb, want, 1e-12, "b's myexp is b's own (%.10g), not a's", lb);
    tap_ok(ppl_log_density_gradient(ma, &theta, 1, &la, &ga) == PPL_OK &&
               ppl_log_density_gradient(mref, &theta, 1, &lr, &gr) == PPL_OK,
           "gradients through lpdf_grad");
    tap_near(ga, gr, 1e-12, "a's myexp gives the built-in exponential's gradient (%.10g)", ga);
    tap_ok(ppl_log_density_gradient(mb, &theta, 1, &lb, &ga) != PPL_OK &&
               strstr(ppl_errmsg(b), "no gradient is available"),
           "a family without lpdf_grad has no gradient: %s", ppl_errmsg(b));
  }

  /* a latent of a registered family: nuts over it, and draws from the prior */
  ppl_model *ml = NULL;
  tap_ok(ppl_compile_string(a, "model { real x ~ myexp(2); }", "lat.ppl", &ml) == PPL_OK &&
             ppl_data_commit(ml) == PPL_OK,
         "a latent of myexp (%s)", ppl_errmsg(a));
  const char *engines[2] = {"nuts", "prior"};
  for (int e = 0; ml && e < 2; e++) {
    ppl_run_options ro;
    ppl_run_options_default(&ro);
    ro.engine = engines[e];
    ro.chains = 2;
    ppl_result *r = NULL;
    ppl_summary s;
    bool ok = ppl_run(ml, &ro, &r) == PPL_OK &&
              ppl_result_summary(r, ppl_result_column_index(r, "x"), &s) == PPL_OK;
    tap_ok(ok && fabs(s.mean - 0.5) < 0.08, "%s over myexp(2): mean %.3f (0.5)", engines[e],
           ok ? s.mean : NAN);
    if (ok && e == 0) /* compiled: the runtime calls the host's callbacks */
      tap_ok(strstr(ppl_result_backend(r), "LLVM JIT") || strstr(ppl_result_backend(r), "without LLVM"),
             "nuts ran compiled code (where built with LLVM): %s",
             ppl_result_backend(r));
    ppl_result_free(r);
  }
  tap_ok(draws >= 2000, "the prior's draws came from the quantile function with its ud (%d)", draws);
  ppl_model_free(ml);

  /* refusals */
  ppl_family bad = exp_family("myexp", NULL);
  tap_ok(ppl_register_family(a, &bad) == PPL_ERR_USAGE && strstr(ppl_errmsg(a), "already registered"),
         "a name registered twice: %s", ppl_errmsg(a));
  bad.name = "normal";
  tap_ok(ppl_register_family(a, &bad) == PPL_ERR_USAGE && strstr(ppl_errmsg(a), "built-in"),
         "a built-in name: %s", ppl_errmsg(a));
  bad.name = "other";
  bad.quantile = NULL;
  tap_ok(ppl_register_family(a, &bad) == PPL_ERR_USAGE && strstr(ppl_errmsg(a), "quantile"),
         "no quantile: %s", ppl_errmsg(a));
  bad.quantile = ex_quantile;
  bad.nparams = 0;
  tap_ok(ppl_register_family(a, &bad) == PPL_ERR_USAGE && strstr(ppl_errmsg(a), "parameters"),
         "no parameters: %s", ppl_errmsg(a));
  bad.nparams = 1;
  bad.name = "2bad";
  tap_ok(ppl_register_family(a, &bad) == PPL_ERR_USAGE, "an invalid name: %s", ppl_errmsg(a));
  tap_ok(ppl_register_function(a, "myexp", 1, host_fn, NULL) == PPL_ERR_USAGE &&
             strstr(ppl_errmsg(a), "registered family"),
         "a host function cannot take a family's name: %s", ppl_errmsg(a));

  ppl_model_free(ma);
  ppl_model_free(mb);
  ppl_model_free(mref);
  ppl_context_free(a);
  ppl_context_free(b);
  ppl_context_free(c);
  return tap_done();
}
