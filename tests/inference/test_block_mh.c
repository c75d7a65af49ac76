/* test_block_mh.c — block proposals (trace_handler_set_block, mh_block_move,
 * mh_block_rw, engine mh's mh_block option) against exact posteriors:
 *
 *   - a chain of block moves alone (no single-site moves) on a correlated
 *     two-dimensional Gaussian posterior, exact by conjugacy;
 *   - engine mh with block moves on tests/exact's normal_mean, beta_binomial
 *     and mix2_enum (exact means from ../shared/exact);
 *   - a program whose latents appear and disappear (a latent under an if on a
 *     discrete latent), where the block changes with the structure.
 *
 * Means must lie within 4 Monte Carlo standard errors (per-chain ESS summed
 * over chains) of the exact values.
 *
 *   test_block_mh SHARED_EXACT_DIR TESTS_EXACT_DIR
 */
#include <jansson.h>
#include <stdio.h>

#include "inference/trace.h"
#include "api/data.h"
#include "test_engines_util.h"

static const char *shared_dir, *models_dir;

static Interp *compile(const char *src, const char *json, Diag *d) {
  diag_init(d);
  Ast *a = parse_string(src, strlen(src), "m.ppl", d);
  CheckedProgram *cp = a ? check_program(a, "m.ppl", 0, NULL, d) : NULL;
  IrProgram *p = cp ? ir_lower(cp, d) : NULL;
  if (!p) return NULL;
  Interp *in = interp_new(p, NULL);
  DataSource *ds = json ? data_json_string(json, strlen(json), "data.json", d) : data_empty();
  return ds && interp_load_data(in, ds, d) ? in : NULL;
}

/* Mean over chains and its MCSE (ESS summed over chains). */
typedef struct Est {
  double mean, mcse;
} Est;

static Est estimate(int nch, int n, double **x) {
  double s = 0, ess = 0, var = 0;
  for (int c = 0; c < nch; c++) s += tmean(n, x[c]);
  double m = s / nch;
  for (int c = 0; c < nch; c++) {
    ess += tess(n, x[c]);
    for (int i = 0; i < n; i++) var += (x[c][i] - m) * (x[c][i] - m);
  }
  var /= (double)(nch * n - 1);
  Est e = {m, sqrt(var / ess)};
  return e;
}

/* ---- block moves alone ---- */

/* a ~ N(0, 1), b ~ N(a, 0.5), y ~ N(a + b, 0.5): (a, b) jointly Gaussian a
   priori, y linear in them, so the posterior means are Cov(., y) / Var(y) * y. */
static void test_block_only(void) {
  const char *src =
      "data { real y; }\n"
      "model {\n"
      "  real a ~ normal(0, 1);\n"
      "  real b ~ normal(a, 0.5);\n"
      "  y ~ normal(a + b, 0.5);\n"
      "}\n";
  Diag d;
  Interp *in = compile(src, "{\"y\": 1.5}", &d);
  tap_ok(in != NULL, "2-d model compiles (%s)", d.msg);
  if (!in) return;
  double y = 1.5, vy = 1 + (1 + 0.25) + 2 * 1 + 0.25; /* Var a + Var b + 2 Cov + noise */
  double ma = (1 + 1) / vy * y, mb = (1 + 1.25) / vy * y;
  enum { C = 4, N = 4000 };
  double *xa[C], *xb[C];
  long acc = 0, moves = 0;
  bool ok = true;
  for (int c = 0; c < C && ok; c++) {
    Rng rng;
    rng_seed(&rng, 77, (uint64_t)c);
    TraceHandler th;
    trace_handler_init(&th, &rng, NULL, NULL, NULL, NULL);
    InterpState *st = NULL;
    Trace *cur = trace_run(in, &th, 5, (uint64_t)c, false, &st, &d);
    ok = cur != NULL;
    MhBlockRw rw = {-1.5}; /* fixed (not adapted): steps of 0.375, posterior sds ~0.35 */
    TraceBlockProposal bp = mh_block_rw(&rw);
    xa[c] = calloc(N, sizeof(double));
    xb[c] = calloc(N, sizeof(double));
    for (int i = 0; i < 500 + N && ok; i++) {
      bool a;
      double pa;
      ok = mh_block_move(in, &bp, &rng, 5, (uint64_t)c, &cur, &st, &a, &pa, &d);
      if (i < 500) continue;
      acc += a;
      moves++;
      xa[c][i - 500] = val_as_real(trace_find(cur, "a")->val);
      xb[c][i - 500] = val_as_real(trace_find(cur, "b")->val);
    }
  }
  tap_ok(ok, "block-only chains run (%s)", d.msg);
  if (!ok) return;
  double rate = (double)acc / (double)moves;
  tap_ok(rate > 0.1 && rate < 0.9, "block moves are accepted at a sane rate (%.3f)", rate);
  Est ea = estimate(C, N, xa), eb = estimate(C, N, xb);
  tap_near(ea.mean, ma, 4 * ea.mcse, "block moves alone: E[a | y] = %.4f (mcse %.4f)", ma, ea.mcse);
  tap_near(eb.mean, mb, 4 * eb.mcse, "block moves alone: E[b | y] = %.4f (mcse %.4f)", mb, eb.mcse);
}

/* ---- engine mh with block moves ---- */

static bool run_mh(const Interp *in, int nch, int warmup, int n, const char *name, int elem,
                   double **x, Diag *d) {
  int out = toutput(in, name);
  if (out < 0) return false;
  for (int c = 0; c < nch; c++) {
    EngineOpts o;
    engine_opts_default(&o);
    o.seed = 11;
    if (!engine_opts_set(&o, "block", "true", d)) return false;
    void *st = engine_mh.init(in, &o, c, d);
    if (!st) return false;
    x[c] = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < warmup + n; i++) {
      Draw dr;
      memset(&dr, 0, sizeof dr);
      if (!engine_mh.step(st, i < warmup, &dr, d)) return false;
      if (i < warmup) continue;
      double buf[64];
      val_flatten(dr.outputs[out], buf);
      x[c][i - warmup] = buf[elem];
    }
  }
  return true;
}

static json_t *exact_json(const char *model) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/exact.json", shared_dir, model);
  return json_load_file(path, 0, NULL);
}

static Interp *exact_model(const char *model, Diag *d) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.ppl", models_dir, model);
  char *src = read_text(path);
  snprintf(path, sizeof path, "%s/%s/data.json", shared_dir, model);
  char *data = read_text(path);
  if (!src || !data) {
    tap_diag("cannot read %s or its data", model);
    return NULL;
  }
  return compile(src, data, d);
}

static void test_exact_means(void) {
  enum { C = 4, W = 500, N = 2000 };
  const char *conj[][2] = {{"normal_mean", "mu"}, {"beta_binomial", "theta"}};
  for (int k = 0; k < 2; k++) {
    Diag d;
    Interp *in = exact_model(conj[k][0], &d);
    json_t *ex = exact_json(conj[k][0]);
    double *x[C];
    bool ok = in && ex && run_mh(in, C, W, N, conj[k][1], 0, x, &d);
    tap_ok(ok, "%s: mh with block moves runs (%s)", conj[k][0], d.msg);
    if (!ok) continue;
    double want = json_real_value(json_object_get(json_object_get(ex, conj[k][1]), "mean"));
    Est e = estimate(C, N, x);
    tap_near(e.mean, want, 4 * e.mcse, "%s: E[%s] = %.4f (mcse %.4f)", conj[k][0], conj[k][1],
             want, e.mcse);
  }
  Diag d;
  Interp *in = exact_model("mix2_enum", &d);
  json_t *ex = exact_json("mix2_enum");
  json_t *probs = ex ? json_object_get(ex, "z_is_second_probs") : NULL;
  const int zs[] = {1, 2, 6, 12};
  for (int j = 0; j < 4; j++) {
    double *x[C];
    bool ok = in && probs && run_mh(in, C, W, N, "z", zs[j] - 1, x, &d);
    tap_ok(ok, "mix2_enum: mh with block moves runs (%s)", d.msg);
    if (!ok) break;
    double want = json_real_value(json_array_get(probs, (size_t)zs[j] - 1));
    Est e = estimate(C, N, x);
    double tol = 4 * e.mcse > 0.01 ? 4 * e.mcse : 0.01; /* probabilities near 0 or 1 */
    tap_near(e.mean, want, tol, "mix2_enum: P(z[%d] = 1) = %.4f (mcse %.4f)", zs[j], want, e.mcse);
  }
}

/* ---- changing structure ---- */

/* k ~ bernoulli(0.3); x ~ N(0, 1); if k: z ~ N(x, 1) (integrates to 1, so it
   leaves k's and x's posterior alone); y ~ N(x, 1), y = 1: P(k) = 0.3,
   E[x | y] = y / 2, E[z | k = 1, y] = E[x | y].  The block is {x} or {x, z}. */
static void test_dynamic(void) {
  const char *src =
      "data { real y; }\n"
      "model {\n"
      "  int<lower=0, upper=1> k ~ bernoulli(0.3);\n"
      "  real x ~ normal(0, 1);\n"
      "  real zz = 0;\n"
      "  if (k == 1) {\n"
      "    real z ~ normal(x, 1);\n"
      "    zz = z;\n"
      "  }\n"
      "  y ~ normal(x, 1);\n"
      "}\n";
  Diag d;
  Interp *in = compile(src, "{\"y\": 1}", &d);
  tap_ok(in != NULL, "dynamic model compiles (%s)", d.msg);
  if (!in) return;
  enum { C = 4, W = 500, N = 3000 };
  double *xk[C], *xx[C], *xz[C];
  bool ok = run_mh(in, C, W, N, "k", 0, xk, &d) && run_mh(in, C, W, N, "x", 0, xx, &d) &&
            run_mh(in, C, W, N, "zz", 0, xz, &d);
  tap_ok(ok, "mh with block moves runs on a changing structure (%s)", d.msg);
  if (!ok) return;
  Est ek = estimate(C, N, xk), ex = estimate(C, N, xx), ez = estimate(C, N, xz);
  tap_near(ek.mean, 0.3, 4 * ek.mcse, "P(k = 1) = 0.3 (mcse %.4f)", ek.mcse);
  tap_near(ex.mean, 0.5, 4 * ex.mcse, "E[x | y] = 0.5 (mcse %.4f)", ex.mcse);
  /* zz = z when k = 1, else 0: E[zz] = 0.3 * 0.5 */
  tap_near(ez.mean, 0.15, 4 * ez.mcse, "E[k z | y] = 0.15 (mcse %.4f)", ez.mcse);
}

int main(int argc, char **argv) {
  gc_init();
  if (argc < 3) {
    fprintf(stderr, "usage: test_block_mh SHARED_EXACT_DIR TESTS_EXACT_DIR\n");
    return 2;
  }
  shared_dir = argv[1];
  models_dir = argv[2];
  test_block_only();
  test_exact_means();
  test_dynamic();
  return tap_done();
}
