/* test_plate_vec.c — the vectorised plate (ir/plate_vec.h, svi's training):
 * a plate whose body does the same to every row, run once over the
 * minibatch, gives the row loop's ELBO and gradient (the same noise, sums in
 * another order: within 1e-12), on four programs — a VAE (networks in the
 * model and the guide, binomial pixels, a per-row store), a per-row
 * regression with an encoder (scalar latents, element-wise arithmetic with
 * data, a network's output indexed), a random-effects plate with no
 * network (params indexed by row, global latents outside the plate), and a
 * regression with covariates (x[i] * beta, dot_product, sum, W * x[i]:
 * one matrix product over the rows) — with
 * minibatches and with whole plates; its gradient against central
 * differences; the same seed giving the same bits; a fit of 30 steps the row
 * loop's; and the plates that keep the row loop, with the reason
 * (pv_program's report).
 *
 *   test_plate_vec
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/data.h"
#include "inference/svi.h"
#include "ir/plate_vec.h"
#include "test_engines_util.h"

static IrProgram *lower(const char *src, Diag *d) {
  diag_init(d);
  Ast *a = parse_string(src, strlen(src), "m.ppl", d);
  CheckedProgram *cp = a ? check_program(a, "m.ppl", 0, NULL, d) : NULL;
  return cp ? ir_lower(cp, d) : NULL;
}

static Interp *compile(const char *src, const char *json, Diag *d) {
  IrProgram *p = lower(src, d);
  if (!p) return NULL;
  Interp *in = interp_new(p, NULL);
  DataSource *ds = json ? data_json_string(json, strlen(json), "data.json", d) : data_empty();
  return ds && interp_load_data(in, ds, d) ? in : NULL;
}

/* ---- the programs ---- */

static const char *vae_src =
    "data { int N; int<lower=0, upper=4> x[N, 6]; }\n"
    "model {\n"
    "  param network dec = mlp(2, [5], 6, tanh);\n"
    "  vector[2] zs[N];\n"
    "  plate (i in 1:N, batch = 5) {\n"
    "    vector[2] z ~ normal(0, 1);\n"
    "    x[i] ~ binomial_logit(4, dec(z));\n"
    "    zs[i] = z;\n"
    "  }\n"
    "}\n"
    "guide {\n"
    "  param network enc = mlp(6, [5], 4, tanh);\n"
    "  plate (i in 1:N, batch = 5) {\n"
    "    vector[4] h = enc(to_vector(x[i]) / 4.0);\n"
    "    vector[2] z ~ normal(h[1:2], exp(h[3:4]));\n"
    "  }\n"
    "}\n";

static const char *vae_data(void) {
  static char buf[2048];
  size_t k = (size_t)snprintf(buf, sizeof buf, "{\"N\": 12, \"x\": [");
  for (int i = 0; i < 12; i++) {
    k += (size_t)snprintf(buf + k, sizeof buf - k, "%s[", i ? ", " : "");
    for (int j = 0; j < 6; j++)
      k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", j ? ", " : "", (i * 7 + j * 3) % 5);
    k += (size_t)snprintf(buf + k, sizeof buf - k, "]");
  }
  snprintf(buf + k, sizeof buf - k, "]}");
  return buf;
}

static const char *reg_src =
    "data { int N; vector[3] x[N]; real y[N]; }\n"
    "model {\n"
    "  param network f = mlp(3, [4], 1, tanh);\n"
    "  real<lower=0> sigma ~ lognormal(0, 1);\n"
    "  plate (i in 1:N, batch = 4) {\n"
    "    real u ~ normal(0, 1);\n"
    "    y[i] ~ normal(f(x[i])[1] + 0.5 * u, sigma);\n"
    "  }\n"
    "}\n"
    "guide {\n"
    "  param real ls = 0.1;\n"
    "  param real<lower=0> ss = 0.3;\n"
    "  param network enc = mlp(3, [6], 2, tanh);\n"
    "  real sigma ~ lognormal(ls, ss);\n"
    "  plate (i in 1:N, batch = 4) {\n"
    "    vector[2] h = enc(x[i]);\n"
    "    real u ~ normal(h[1] + 0.5 * y[i] - 2 / (1 + y[i] * y[i]), exp(-h[2]));\n"
    "  }\n"
    "}\n";

static const char *reg_data =
    "{\"N\": 10, \"x\": [[0.1, -0.4, 1.2], [1.1, 0.3, -0.2], [-0.7, 0.8, 0.5], [0.0, 0.2, -1.0], "
    "[0.9, -0.9, 0.4], [-1.3, 0.1, 0.7], [0.6, 0.6, 0.6], [-0.2, -1.1, 0.3], [1.4, 0.5, -0.8], "
    "[-0.5, -0.3, -0.1]], \"y\": [0.3, 1.2, -0.4, 0.8, 2.1, -1.5, 0.9, 0.0, 1.7, -0.6]}";

static const char *re_src =
    "data { int N; vector[N] y; }\n"
    "model {\n"
    "  real mu ~ normal(0, 5);\n"
    "  real<lower=0> tau ~ lognormal(0, 1);\n"
    "  plate (i in 1:N, batch = 3) {\n"
    "    real theta ~ student_t(4, mu, tau);\n"
    "    y[i] ~ normal(theta, 1);\n"
    "  }\n"
    "}\n"
    "guide {\n"
    "  param real mm = 0.2;\n"
    "  param real<lower=0> ms = 0.5;\n"
    "  param real lt = -0.1;\n"
    "  param real<lower=0> st = 0.4;\n"
    "  param vector[N] m = rep_vector(0.1, N);\n"
    "  param vector<lower=0>[N] s = rep_vector(0.7, N);\n"
    "  real mu ~ normal(mm, ms);\n"
    "  real tau ~ lognormal(lt, st);\n"
    "  plate (i in 1:N, batch = 3) {\n"
    "    real theta ~ normal(m[i] + mu / 10, s[i]);\n"
    "  }\n"
    "}\n";

static const char *re_data = "{\"N\": 8, \"y\": [1.2, -0.3, 2.5, 0.7, 1.9, -1.1, 0.4, 3.0]}";

static const char *glm_src =
    "data { int N; int K; row_vector[K] x[N]; vector[N] y; }\n"
    "model {\n"
    "  vector[K] beta ~ normal(0, 1);\n"
    "  real<lower=0> sigma ~ lognormal(0, 1);\n"
    "  plate (i in 1:N, batch = 4) {\n"
    "    real u ~ normal(0, 0.5);\n"
    "    y[i] ~ normal(x[i] * beta + u, sigma);\n"
    "  }\n"
    "}\n"
    "guide {\n"
    "  param vector[K] bm = rep_vector(0, K);\n"
    "  param vector<lower=0>[K] bs = rep_vector(0.5, K);\n"
    "  param real ls = 0;\n"
    "  param real<lower=0> ss = 0.3;\n"
    "  param vector[K] w = rep_vector(0.1, K);\n"
    "  param matrix[2, K] W = [[0.3, -0.2, 0.1], [0.05, 0.4, -0.3]];\n"
    "  vector[K] beta ~ normal(bm, bs);\n"
    "  real sigma ~ lognormal(ls, ss);\n"
    "  plate (i in 1:N, batch = 4) {\n"
    "    vector[2] h = tanh(W * to_vector(x[i]));\n"
    "    real u ~ normal(dot_product(w, x[i]) + 0.1 * sum(x[i]) - 0.2 * y[i] + h[1], 0.4 + "
    "exp(h[2]));\n"
    "  }\n"
    "}\n";

static const char *glm_data =
    "{\"N\": 9, \"K\": 3, \"x\": [[0.1, -0.4, 1.2], [1.1, 0.3, -0.2], [-0.7, 0.8, 0.5], "
    "[0.0, 0.2, -1.0], [0.9, -0.9, 0.4], [-1.3, 0.1, 0.7], [0.6, 0.6, 0.6], [-0.2, -1.1, 0.3], "
    "[1.4, 0.5, -0.8]], \"y\": [0.3, 1.2, -0.4, 0.8, 2.1, -1.5, 0.9, 0.0, 1.7]}";

typedef struct Prog {
  const char *name, *src, *data;
  int nplates; /* plates with a batch size, all of which must run over the minibatch */
} Prog;

/* Two preparations of one program, by the minibatch (vec) and row by row,
   at the same params moved off their initial values. */
static bool prepare_pair(const Prog *pg, const char *grad_samples, Interp **in, Svi **sv, Svi **sr,
                         Diag *d) {
  *in = compile(pg->src, pg->data, d);
  if (!*in) return false;
  EngineOpts ov = topts((const char *const[]){"grad-samples", grad_samples, NULL});
  EngineOpts orow = topts((const char *const[]){"grad-samples", grad_samples, "plate-rows", "true",
                                                NULL});
  EngineOpts *pv = gc_alloc(sizeof ov), *pr = gc_alloc(sizeof orow); /* they hold the collector's pointers (o.set) */
  *pv = ov, *pr = orow;
  *sv = svi_prepare(*in, pv, 0, d);
  *sr = *sv ? svi_prepare(*in, pr, 0, d) : NULL;
  if (!*sv || !*sr) return false;
  size_t n = svi_dim(*sv);
  double *xv = svi_values(*sv), *xr = svi_values(*sr);
  for (size_t j = 0; j < n; j++) xv[j] = xr[j] = xr[j] + 0.2 * sin(1.7 * (double)j + 0.3);
  return true;
}

static double rel(double a, double b, double scale) { return fabs(a - b) / fmax(1, scale); }

static void test_same_as_rows(const Prog *pg) {
  Diag d;
  Interp *in = NULL;
  Svi *sv = NULL, *sr = NULL;
  if (!tap_ok(prepare_pair(pg, "2", &in, &sv, &sr, &d), "%s: prepared", pg->name)) {
    tap_diag("%s", d.msg);
    return;
  }
  const char *rep = "";
  pv_program(interp_program(in), &rep);
  int once = 0;
  for (const char *p = rep; (p = strstr(p, "one pass over the minibatch")); p++) once++;
  if (!tap_ok(once == pg->nplates, "%s: %d plates run over the minibatch (%d)", pg->name,
              pg->nplates, once))
    tap_diag("%s", rep);
  size_t n = svi_dim(sv);
  double *gv = calloc(n, sizeof(double)), *gr = calloc(n, sizeof(double));
  for (int sub = 1; sub >= 0; sub--) {
    double worst_e = 0, worst_g = 0;
    bool ok = true;
    for (uint64_t seed = 1; seed <= 5 && ok; seed++) {
      double ev, er;
      ok = svi_gradient(sv, seed, sub, &ev, gv, &d) && svi_gradient(sr, seed, sub, &er, gr, &d);
      double scale = 0;
      for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs(gr[j]));
      worst_e = fmax(worst_e, rel(ev, er, fabs(er)));
      for (size_t j = 0; j < n; j++) worst_g = fmax(worst_g, rel(gv[j], gr[j], scale));
      if (!isfinite(ev) || !isfinite(er)) ok = false;
    }
    if (!tap_ok(ok, "%s (%s): both gradients computed", pg->name, sub ? "minibatch" : "whole")) {
      tap_diag("%s", d.msg);
      continue;
    }
    tap_ok(worst_e < 1e-12, "%s (%s): ELBO equals the row loop's (worst relative difference %.2g "
           "over 5 seeds)", pg->name, sub ? "minibatch" : "whole", worst_e);
    tap_ok(worst_g < 1e-12, "%s (%s): gradient equals the row loop's, %zu partials (worst "
           "difference %.2g of the largest)", pg->name, sub ? "minibatch" : "whole", n, worst_g);
  }
  /* the same seed, the same bits */
  double e1, e2, *g2 = calloc(n, sizeof(double));
  bool ok = svi_gradient(sv, 77, true, &e1, gv, &d) && svi_gradient(sv, 77, true, &e2, g2, &d);
  tap_ok(ok && e1 == e2 && !memcmp(gv, g2, sizeof(double) * n),
         "%s: the same seed gives the same ELBO and gradient, bit for bit", pg->name);
  /* central differences of the minibatch pass's own ELBO */
  double worst = tsvi_fd_worst(sv, 9, 1e-5, gv, &d);
  if (!tap_ok(worst >= 0 && worst < 1e-6, "%s: every partial matches central differences of the "
              "minibatch pass's ELBO (worst %.2g)", pg->name, worst))
    tap_diag("%s", d.msg);
  free(gv), free(gr), free(g2);
}

/* 30 Adam steps: the fit's params equal the row loop's (the steps' small
   differences in the last bits stay small), and a second fit's bit for bit. */
static void test_fit(const Prog *pg) {
  Diag d;
  Interp *in;
  Svi *sv, *sr, *sv2;
  const char *kv[] = {"iter", "30", "plate-rows", "false", NULL};
  const char *kr[] = {"iter", "30", "plate-rows", "true", NULL};
  in = compile(pg->src, pg->data, &d);
  EngineOpts *ov = gc_alloc(sizeof(EngineOpts)), *orow = gc_alloc(sizeof(EngineOpts));
  *ov = topts(kv), *orow = topts(kr);
  sv = in ? svi_prepare(in, ov, 0, &d) : NULL;
  sv2 = sv ? svi_prepare(in, ov, 0, &d) : NULL;
  sr = sv2 ? svi_prepare(in, orow, 0, &d) : NULL;
  bool ok = sr && svi_fit(sv, NULL, NULL, &d) && svi_fit(sv2, NULL, NULL, &d) &&
            svi_fit(sr, NULL, NULL, &d);
  if (!tap_ok(ok, "%s: three fits of 30 steps", pg->name)) {
    tap_diag("%s", d.msg);
    return;
  }
  size_t n = svi_dim(sv);
  double worst = 0;
  for (size_t j = 0; j < n; j++)
    worst = fmax(worst, fabs(svi_values(sv)[j] - svi_values(sr)[j]) / fmax(1, fabs(svi_values(sr)[j])));
  tap_ok(worst < 1e-9, "%s: the fitted params equal the row loop's (worst relative difference "
         "%.2g)", pg->name, worst);
  tap_ok(!memcmp(svi_values(sv), svi_values(sv2), sizeof(double) * n),
         "%s: the same seed fits the same params, bit for bit", pg->name);
}

/* Plates that keep the row loop, and why. */
static void test_reasons(void) {
  static const struct {
    const char *body, *why;
  } cases[] = {
      {"real t ~ normal(0, 1); if (y[i] > 0) y[i] ~ normal(t, 1); else y[i] ~ normal(-t, 1);",
       "an if in the plate's body"},
      {"real t ~ normal(0, 1); y[i] ~ normal(t * i, 1);",
       "the loop variable i is used other than to pick row i"},
      {"real t ~ normal(0, 1); y[i] ~ normal(t + y[1], 1); acc = acc + t;",
       "a value carried from one row to the next ('acc')"},
      {"real t ~ normal(0, 1); y[i] ~ normal(dot_self([t, t]), 1);", "a literal built from per-row values"},
      {"vector[2] t ~ multi_normal(rep_vector(0, 2), diag_matrix(rep_vector(1, 2))); y[i] ~ normal(t[1], 1);",
       "the multi_normal distribution"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char src[1024];
    snprintf(src, sizeof src, "data { int N; vector[N] y; }\nmodel {\n  real acc = 0;\n"
             "  plate (i in 1:N, batch = 2) {\n    %s\n  }\n}\n", cases[k].body);
    Diag d;
    IrProgram *p = lower(src, &d);
    if (!tap_ok(p != NULL, "reasons %zu: compiled", k)) {
      tap_diag("%s", d.msg);
      continue;
    }
    const char *rep = "";
    PvSet *s = pv_program(p, &rep);
    if (!tap_ok(s->n == 0 && strstr(rep, "row by row: ") && strstr(rep, cases[k].why) &&
                strstr(rep, "m.ppl:"), "reasons %zu: row by row, \"%s\" with its place", k,
                cases[k].why))
      tap_diag("%s", rep);
  }
  /* plates of one name agree: a guide plate that qualifies keeps the row loop
     when the model's of that name does not */
  Diag d;
  IrProgram *p = lower("data { int N; vector[N] y; }\n"
                       "model { plate (i in 1:N, batch = 2) { real t ~ normal(0, 1); "
                       "y[i] ~ normal(t * i, 1); } }\n"
                       "guide { plate (i in 1:N, batch = 2) { real t ~ normal(0, 1); } }\n", &d);
  const char *rep = "";
  PvSet *s = p ? pv_program(p, &rep) : NULL;
  if (!tap_ok(s && s->n == 0 && strstr(rep, "runs row by row"),
              "reasons: the guide's plate follows the model's plate of the same name"))
    tap_diag("%s", p ? rep : d.msg);
  /* the model's plate draws latents the guide draws in a plain loop (a batch
     of all the rows): the row loop, whose addresses z[1], z[2], ... the
     guide's match; training works */
  const char *src = "data { int N; vector[N] y; }\n"
                    "model { plate (i in 1:N, batch = 10) { real z ~ normal(0, 1); "
                    "y[i] ~ normal(z, 1); } }\n"
                    "guide { param vector[N] m = rep_vector(0, N); "
                    "for (i in 1:N) { real z ~ normal(m[i], 1); } }\n";
  p = lower(src, &d);
  s = p ? pv_program(p, &rep) : NULL;
  if (!tap_ok(s && s->n == 0 && strstr(rep, "its latents are not drawn in a plate i of the guide"),
              "reasons: latents the guide draws outside a plate of the same name keep the row loop"))
    tap_diag("%s", p ? rep : d.msg);
  Interp *in = compile(src, "{\"N\": 4, \"y\": [1, 2, 3, 4]}", &d);
  EngineOpts *o = gc_alloc(sizeof(EngineOpts));
  *o = topts(NULL);
  Svi *sv = in ? svi_prepare(in, o, 0, &d) : NULL;
  double e, g[4];
  if (!tap_ok(sv && svi_gradient(sv, 3, true, &e, g, &d) && isfinite(e),
              "reasons: ... and its gradient is computed row by row"))
    tap_diag("%s", d.msg);
}

int main(void) {
  gc_init();
  const Prog progs[] = {
      {"vae", vae_src, vae_data(), 2},
      {"regression+encoder", reg_src, reg_data, 2},
      {"random effects", re_src, re_data, 2},
      {"regression with covariates", glm_src, glm_data, 2},
  };
  for (size_t k = 0; k < sizeof progs / sizeof progs[0]; k++) test_same_as_rows(&progs[k]);
  for (size_t k = 0; k < sizeof progs / sizeof progs[0]; k++) test_fit(&progs[k]);
  test_reasons();
  return tap_done();
}
