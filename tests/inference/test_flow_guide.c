/* test_flow_guide.c — Real NVP flows as program values (`param flow q =
 * realnvp(...)`, `z ~ flow(q)`): the family flow(q) (stdlib/dists/flow.c)
 * against the variational family of inference/vi_flow.c that shares its
 * coupling code (stdlib/realnvp.c), its sampler and inverse, its gradient in
 * the value and the weights against finite differences, the ELBO gradient of
 * svi with a flow guide against finite differences, and svi with a flow guide
 * on a banana (examples/banana_flow_guide.ppl) beating a mean-field guide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/data.h"
#include "inference/nuts.h"
#include "inference/svi.h"
#include "inference/trace.h"
#include "inference/vi_flow.h"
#include "stdlib/realnvp.h"
#include "test_engines_util.h"

enum { D = 3, LAYERS = 3, HIDDEN = 5 };

static double log_std_normal(const double *eps, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += -0.5 * eps[i] * eps[i] - 0.91893853320467274178;
  return s;
}

/* flow(q)'s parameters for weights w of the flow (D, LAYERS, HIDDEN). */
static void flow_params(Value *p, Value w) {
  p[0] = w;
  p[1] = val_int(D), p[2] = val_int(LAYERS), p[3] = val_int(HIDDEN);
}

static Value vec_of(const double *x, int n) {
  Value v = val_vec(n);
  memcpy(v.t->d, x, sizeof(double) * (size_t)n);
  return v;
}

/* ---- the family against vi_flow, round trips, the sampler ---- */

static void test_family(void) {
  Rng r;
  rng_seed(&r, 7, 0);
  ViFamily *q = vi_flow_new(D, LAYERS, HIDDEN, &r);
  Rnvp f;
  char err[256];
  bool made = rnvp_make(&f, D, LAYERS, HIDDEN, err, sizeof err);
  if (!tap_ok(q && made && f.nparams == q->nparams, "family: vi_flow and realnvp agree on the "
              "layout (%zu weights)", f.nparams))
    return;
  /* away from the identity: every coupling moves its half */
  for (size_t i = 0; i < q->nparams; i++) q->phi[i] += 0.3 * rng_normal(&r);
  Value w = vec_of(q->phi, (int)q->nparams), p[4];
  err[0] = 0;
  flow_params(p, w);
  tap_ok(dist_flow.check(p, err, sizeof err), "family: the parameters check (%s)", err);
  double worst_lp = 0, worst_eps = 0, worst_ld = 0, moved = 0;
  for (int k = 0; k < 50; k++) {
    double eps[D], theta[D], ld, back[D], ld2, lp;
    for (int i = 0; i < D; i++) eps[i] = rng_normal(&r);
    q->forward(q, eps, theta, &ld);
    for (int i = 0; i < D; i++) moved = fmax(moved, fabs(theta[i] - eps[i]));
    if (!dist_flow.lpdf(p, vec_of(theta, D), &lp, err, sizeof err)) {
      tap_ok(false, "family: lpdf (%s)", err);
      return;
    }
    worst_lp = fmax(worst_lp, fabs(lp - (log_std_normal(eps, D) - ld)));
    vi_flow_inverse(q, theta, back, &ld2);
    for (int i = 0; i < D; i++) worst_eps = fmax(worst_eps, fabs(back[i] - eps[i]));
    worst_ld = fmax(worst_ld, fabs(ld2 - ld));
  }
  tap_ok(moved > 0.1, "family: the flow is not the identity (moves a point by %.3g)", moved);
  tap_ok(worst_lp < 1e-9, "family: log flow(q) at T(eps) is log N(eps) - log|det| of vi_flow's "
         "forward (worst error %.2g)", worst_lp);
  tap_ok(worst_eps < 1e-9 && worst_ld < 1e-9, "family: the inverse of T(eps) is eps (%.2g) "
         "with the same log|det| (%.2g)", worst_eps, worst_ld);

  /* The sampler is T(eps) for eps from the same stream. */
  Rng a, b;
  rng_seed(&a, 99, 3);
  rng_seed(&b, 99, 3);
  int same = 0;
  for (int k = 0; k < 20; k++) {
    Value z;
    double eps[D], theta[D], ld;
    if (!dist_flow.rng(&a, p, &z, err, sizeof err)) break;
    for (int i = 0; i < D; i++) eps[i] = rng_normal(&b);
    q->forward(q, eps, theta, &ld);
    same += z.k == V_VEC && z.t->rows == D && memcmp(z.t->d, theta, sizeof theta) == 0;
  }
  tap_ok(same == 20, "family: its draws are T(eps) with eps ~ N(0, I), bit for bit (%d of 20)",
         same);

  /* Wrong sizes are errors, not crashes. */
  double three[D + 1] = {0.1, 0.2, 0.3, 0.4};
  double lp;
  tap_ok(!dist_flow.lpdf(p, vec_of(three, D + 1), &lp, err, sizeof err) &&
             strcmp(err, "flow: q is a flow over vectors of 3 reals, the value has 4") == 0,
         "family: a value of the wrong size is refused (%s)", err);
  Value bad[4];
  flow_params(bad, vec_of(q->phi, 5));
  tap_ok(!dist_flow.check(bad, err, sizeof err) && strstr(err, "q must be the flow's"),
         "family: weights of the wrong count are refused (%s)", err);
}

/* ---- the gradient of log flow(q)(x) in x and in the weights ---- */

static void test_family_grad(void) {
  Rng r;
  rng_seed(&r, 11, 0);
  Rnvp f;
  char err[256];
  rnvp_make(&f, D, LAYERS, HIDDEN, err, sizeof err);
  size_t n = f.nparams;
  Value w = val_vec((int)n);
  rnvp_init(&f, &r, w.t->d);
  for (size_t i = 0; i < n; i++) w.t->d[i] += 0.3 * rng_normal(&r);
  Value p[4];
  flow_params(p, w);
  double x[D] = {0.4, -1.3, 0.8};
  Value xv = vec_of(x, D);
  double lp, dx[D] = {0}, *dw = calloc(n, sizeof(double));
  err[0] = 0;
  double *const dp[4] = {dw, NULL, NULL, NULL};
  if (!tap_ok(dist_flow.lpdf_grad(p, xv, &lp, dx, dp, err, sizeof err) && isfinite(lp),
              "grad: lpdf_grad runs (%s)", err))
    return;
  double h = 1e-6, worst_x = 0, worst_w = 0, lp2, lp3, norm = 0;
  for (int i = 0; i < D; i++) {
    double x0 = xv.t->d[i];
    xv.t->d[i] = x0 + h;
    dist_flow.lpdf(p, xv, &lp2, err, sizeof err);
    xv.t->d[i] = x0 - h;
    dist_flow.lpdf(p, xv, &lp3, err, sizeof err);
    xv.t->d[i] = x0;
    worst_x = fmax(worst_x, fabs((lp2 - lp3) / (2 * h) - dx[i]) / (1 + fabs(dx[i])));
  }
  for (size_t i = 0; i < n; i++) {
    double w0 = w.t->d[i];
    w.t->d[i] = w0 + h;
    dist_flow.lpdf(p, xv, &lp2, err, sizeof err);
    w.t->d[i] = w0 - h;
    dist_flow.lpdf(p, xv, &lp3, err, sizeof err);
    w.t->d[i] = w0;
    worst_w = fmax(worst_w, fabs((lp2 - lp3) / (2 * h) - dw[i]) / (1 + fabs(dw[i])));
    norm += dw[i] * dw[i];
  }
  tap_ok(worst_x < 1e-6, "grad: d log flow(q)(x) / dx matches central differences (worst "
         "relative error %.2g)", worst_x);
  tap_ok(worst_w < 1e-6 && norm > 1e-2, "grad: the partials in all %zu weights match central "
         "differences (worst relative error %.2g; |grad| %.3g)", n, worst_w, sqrt(norm));
  free(dw);
}

/* ---- programs ---- */

static Interp *compile_ast(Ast *a, const char *file, Diag *d) {
  CheckedProgram *cp = a ? check_program(a, file, 0, NULL, d) : NULL;
  IrProgram *p = cp ? ir_lower(cp, d) : NULL;
  if (!p) return NULL;
  Interp *in = interp_new(p, NULL);
  return interp_load_data(in, data_empty(), d) ? in : NULL;
}

static Interp *compile(const char *src, Diag *d) {
  diag_init(d);
  return compile_ast(parse_string(src, strlen(src), "m.ppl", d), "m.ppl", d);
}

/* examples/banana_flow_guide.ppl: the banana below with a flow guide
   realnvp(2, 4, 16), as users run it. */
static const char *example;

static Interp *compile_example(Diag *d) {
  diag_init(d);
  return compile_ast(parse_file(example, d), example, d);
}

/* ---- what an engine sees: param() with the flow's layout, flow(q)'s call ---- */

typedef struct FH {
  Handler h;
  const char *addr;
  ParamSpec spec;
  Value give;        /* the weights param() returns (none: the initial ones) */
  DistCall dc;
  Value dp[4];       /* dc's parameters, kept */
  Rng rng;
  Value z;
  int nparam, nsample;
} FH;

static HandlerResult fh_param(Handler *h, const char *addr, const ParamSpec *spec, Value *out,
                              SrcPos pos, Diag *d) {
  (void)pos, (void)d;
  FH *f = (FH *)h;
  f->addr = addr, f->spec = *spec, f->nparam++;
  *out = f->give.k == V_VEC ? f->give : interp_param_init(spec);
  return HR_CONTINUE;
}

static HandlerResult fh_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                               SrcPos pos, Diag *d) {
  (void)addr;
  FH *f = (FH *)h;
  char err[256];
  f->dc = *dc, f->nsample++;
  for (int i = 0; i < dc->np && i < 4; i++) f->dp[i] = dc->p[i];
  f->dc.p = f->dp;
  if (!dist_call_rng(dc, &f->rng, out, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  f->z = *out;
  return HR_CONTINUE;
}

static void test_handler_view(void) {
  const char *src =
      "model {\n"
      "  param flow q = realnvp(3, 2, 5);\n"
      "  vector[3] z ~ flow(q);\n"
      "}\n";
  Diag d;
  Interp *in = compile(src, &d);
  FH a, b;
  memset(&a, 0, sizeof a);
  a.h.sample = fh_sample;
  a.h.factor = interp_factor_ignored;
  a.h.param = fh_param;
  rng_seed(&a.rng, 1, 0); /* a zero state would draw zeros forever */
  b = a;
  bool ran = in && interp_run(interp_start(in, 1, 0, true), &a.h, &d) == RUN_DONE &&
             interp_run(interp_start(in, 77, 3, true), &b.h, &d) == RUN_DONE;
  if (!tap_ok(ran && a.nparam == 1 && a.nsample == 1, "view: runs with a param handler")) {
    tap_diag("%s", d.msg);
    return;
  }
  Rnvp f;
  char err[128];
  rnvp_make(&f, 3, 2, 5, err, sizeof err);
  const Rnvp *l = a.spec.flow;
  tap_ok(strcmp(a.addr, "q") == 0 && l && !a.spec.net && l->dim == 3 && l->layers == 2 &&
             l->hidden == 5 && l->nparams == f.nparams && a.spec.type.base == TY_VECTOR &&
             a.spec.nsizes == 1 && a.spec.sizes[0] == (int)f.nparams && isinf(a.spec.lower) &&
             isinf(a.spec.upper),
         "view: param() sees 'q', a vector of %zu weights with the flow's layout", f.nparams);
  /* the initial weights: the identity map, from the name alone */
  Value w0 = interp_param_init(&a.spec), w1 = interp_param_init(&b.spec);
  bool same = w0.k == V_VEC && w1.k == V_VEC && (size_t)w0.t->rows == f.nparams &&
              memcmp(w0.t->d, w1.t->d, sizeof(double) * f.nparams) == 0;
  double base = 0, last = 0, hidden = 0;
  for (int i = 0; same && i < 6; i++) base = fmax(base, fabs(w0.t->d[i]));
  for (int k = 0; same && k < f.ncoupling; k++) {
    const NnMlp *m = &f.layer[k].mlp;
    size_t lastw = (size_t)m->sizes[2] * (size_t)m->sizes[3] + (size_t)m->sizes[3];
    for (size_t i = 0; i < m->nparams; i++) {
      double v = fabs(w0.t->d[f.layer[k].off + i]);
      if (i >= m->nparams - lastw) last = fmax(last, v);
      else hidden = fmax(hidden, v);
    }
  }
  tap_ok(same && base == 0 && last == 0 && hidden > 0,
         "view: the initial weights are the same in every run (name-seeded), mu = omega = 0, "
         "each coupling's last layer zero (hidden layers random: max %.3g)", hidden);
  Value zz = a.z;
  tap_ok(a.dc.fam == &dist_flow && a.dc.np == 4 && a.dc.p[1].k == V_INT && a.dc.p[1].i == 3 &&
             a.dc.p[2].i == 2 && a.dc.p[3].i == 5 && a.dc.p[0].k == V_VEC &&
             memcmp(a.dc.p[0].t->d, w0.t->d, sizeof(double) * f.nparams) == 0 &&
             zz.k == V_VEC && zz.t->rows == 3,
         "view: z ~ flow(q) reaches sample() as flow(weights, 3, 2, 5)");
  /* weights from param() are the ones flow(q) uses */
  FH c = a;
  c.give = val_vec((int)f.nparams);
  for (size_t i = 0; i < f.nparams; i++) c.give.t->d[i] = 0.01 * (double)i;
  tap_ok(interp_run(interp_start(in, 1, 0, true), &c.h, &d) == RUN_DONE &&
             c.dc.p[0].t->d == c.give.t->d,
         "view: the weights param() gives are flow(q)'s parameter");
}

/* The example's banana (that of tests/inference/test_vi_flow_fit.c with a
   vector latent: x1 ~ normal(0, 2), x2 ~ normal(0.5 (x1^2 - 4), 1), so
   log Z = 0) with a mean-field guide. */
static const char *mf_src =
    "model {\n"
    "  vector[2] x ~ std_normal();\n"
    "  factor(normal_lpdf(x[1] | 0, 2) + normal_lpdf(x[2] | 0.5 * (square(x[1]) - 4), 1)\n"
    "         - std_normal_lpdf(x));\n"
    "}\n"
    "guide {\n"
    "  param vector[2] m;\n"
    "  param vector<lower=0>[2] s = rep_vector(1, 2);\n"
    "  vector[2] x ~ normal(m, s);\n"
    "}\n";

/* The ELBO's gradient through the reparameterised flow draw, against central
   differences of the same-noise ELBO. */
static void test_svi_fd(void) {
  Diag d;
  Interp *in = compile_example(&d);
  EngineOpts o = topts((const char *const[]){"grad-samples", "3", NULL});
  Svi *s = in ? svi_prepare(in, &o, 0, &d) : NULL;
  if (!tap_ok(s != NULL, "svi fd: prepared")) {
    tap_diag("%s", d.msg);
    return;
  }
  Rnvp f;
  char err[128];
  rnvp_make(&f, 2, 4, 16, err, sizeof err);
  size_t n = svi_dim(s);
  tap_ok(n == f.nparams, "svi fd: the flow's %zu weights are the params (%zu)", f.nparams, n);
  double *x = svi_values(s), *g = calloc(n, sizeof(double));
  Rng r;
  rng_seed(&r, 5, 0);
  for (size_t j = 0; j < n; j++) x[j] += 0.2 * rng_normal(&r); /* every layer matters */
  double worst = tsvi_fd_worst(s, 42, 1e-6, g, &d), norm = 0;
  bool ok = worst >= 0;
  for (size_t j = 0; j < n; j++) norm += g[j] * g[j];
  if (!tap_ok(ok && worst < 1e-5 && norm > 1e-2, "svi fd: every partial of the ELBO in the "
              "flow's weights matches central differences (worst relative error %.2g, |grad| "
              "%.3g)", worst, sqrt(norm)))
    tap_diag("%s", d.msg);
  free(g);
}

/* One svi fit (chain c) of the banana; the ELBO as the mean of the log
   weights of N draws of the fitted guide, and its standard error. */
static bool banana_fit(const Interp *in, const EngineOpts *o, int c, double *elbo, double *se,
                       Diag *d) {
  enum { N = 4000 };
  void *st = engine_svi.init(in, o, c, d);
  if (!st) return false;
  for (int i = 0; i < N; i++) {
    Draw dr;
    memset(&dr, 0, sizeof dr);
    if (!engine_svi.step(st, false, &dr, d)) return false;
  }
  ViReport rep;
  engine_svi.vi_report(st, &rep);
  double m = 0, v = 0;
  for (int i = 0; i < rep.n; i++) m += rep.lw[i] / rep.n;
  for (int i = 0; i < rep.n; i++) v += (rep.lw[i] - m) * (rep.lw[i] - m) / (rep.n - 1);
  *elbo = m, *se = sqrt(v / rep.n);
  engine_svi.free(st);
  return rep.n == N;
}

static void test_banana(void) {
  enum { S = 4 };
  const char *const kv[] = {"iter", "2000", "lr", "0.003", "grad-samples", "8",
                            "tol-rel-obj", "1e-9", "draws", "4000", NULL};
  EngineOpts o = topts(kv);
  Diag d;
  Interp *fin = compile_example(&d), *min = fin ? compile(mf_src, &d) : NULL;
  double ef[S], em[S], sef[S], sem[S];
  bool ok = fin && min;
  for (int c = 0; c < S && ok; c++)
    ok = banana_fit(fin, &o, c, &ef[c], &sef[c], &d) && banana_fit(min, &o, c, &em[c], &sem[c], &d);
  if (!tap_ok(ok, "banana: %d flow and %d mean-field fits", S, S)) {
    tap_diag("%s", d.msg);
    return;
  }
  double mf = 0, mm = 0, vf = 0, vm = 0, worst_f = -INFINITY, best_m = -INFINITY, over = 0;
  for (int c = 0; c < S; c++) {
    mf += ef[c] / S, mm += em[c] / S;
    worst_f = fmin(worst_f == -INFINITY ? ef[c] : worst_f, ef[c]);
    best_m = fmax(best_m, em[c]);
    over = fmax(over, fmax(ef[c] - 4 * sef[c], em[c] - 4 * sem[c])); /* log Z = 0 bounds them */
    tap_diag("seed %d: flow ELBO %.4f (se %.3f), mean-field %.4f (se %.3f)", c, ef[c], sef[c],
             em[c], sem[c]);
  }
  for (int c = 0; c < S; c++) vf += (ef[c] - mf) * (ef[c] - mf) / (S - 1), vm += (em[c] - mm) * (em[c] - mm) / (S - 1);
  /* The margin is the spread over seeds: the fits' own noise, not the draws'. */
  double margin = 4 * sqrt(vf / S + vm / S);
  tap_ok(over <= 0, "banana: no ELBO exceeds log Z = 0 beyond 4 SE (%.3g)", over);
  tap_ok(mf - mm > margin && worst_f > best_m,
         "banana: the flow guide's ELBO %.4f beats mean-field's %.4f by more than 4 SE of the "
         "seed spread (%.4f), and every flow fit beats every mean-field fit (%.4f > %.4f)",
         mf, mm, margin, worst_f, best_m);
}

/* A flow prior in the model block: nuts runs it (the density through the
   inverse, its gradient in z).  The param keeps its initial weights, the
   identity map, so the prior is N(0, I). */
static void test_nuts_prior(void) {
  const char *src =
      "model {\n"
      "  param flow q = realnvp(2, 2, 8);\n"
      "  vector[2] z ~ flow(q);\n"
      "}\n";
  Diag d;
  Interp *in = compile(src, &d);
  int out[2] = {in ? toutput(in, "z") : -1, in ? toutput(in, "z") : -1}, el[2] = {0, 1};
  TChain c;
  enum { N = 2000 };
  if (!tap_ok(in && trun(&engine_nuts, in, 3, 0, 500, N, 2, out, el, &c, &d),
              "nuts prior: runs a model with a flow prior")) {
    tap_diag("%s", d.msg);
    return;
  }
  int bad = 0;
  for (int j = 0; j < 2; j++) {
    double m = tmean(N, c.x[j]), sd = tsd(N, c.x[j]);
    double sem = tmcse_mean(N, c.x[j]), ses = tmcse_sd(N, c.x[j]);
    if (fabs(m) > 4 * sem || fabs(sd - 1) > 4 * ses) {
      bad++;
      tap_diag("z[%d]: mean %.4f (se %.3f), sd %.4f (se %.3f)", j + 1, m, sem, sd, ses);
    }
  }
  tap_ok(bad == 0, "nuts prior: the initial flow is the identity, so z ~ N(0, I) (means and sds "
                   "within 4 MCSE)");
}

/* ---- a learnable density: `y ~ flow(q)` fitted by maximum likelihood ---- */

/* n banana points, and the held-out log likelihood of the Gaussian fitted to
   train by maximum likelihood (the flow's rival: a flow without couplings). */
static Value banana_data(Rng *r, int n) {
  Value a = val_arr(n);
  for (int i = 0; i < n; i++) {
    double x = 2 * rng_normal(r), y[2] = {x, 0.5 * (x * x - 4) + rng_normal(r)};
    a.a->e[i] = vec_of(y, 2);
  }
  return a;
}

static double gauss_heldout(Value train, Value test) {
  double m[2] = {0}, c[3] = {0}; /* mean; covariance xx, xy, yy */
  int n = train.a->n;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 2; j++) m[j] += train.a->e[i].t->d[j] / n;
  for (int i = 0; i < n; i++) {
    double dx = train.a->e[i].t->d[0] - m[0], dy = train.a->e[i].t->d[1] - m[1];
    c[0] += dx * dx / n, c[1] += dx * dy / n, c[2] += dy * dy / n;
  }
  double det = c[0] * c[2] - c[1] * c[1], ll = 0;
  for (int i = 0; i < test.a->n; i++) {
    double dx = test.a->e[i].t->d[0] - m[0], dy = test.a->e[i].t->d[1] - m[1];
    double qf = (c[2] * dx * dx - 2 * c[1] * dx * dy + c[0] * dy * dy) / det;
    ll += -0.5 * qf - 0.5 * log(det) - 2 * 0.91893853320467274178;
  }
  return ll;
}

/* svi on a program without latents: its ELBO is the model's log likelihood at
   the fitted (or loaded) params, exactly. */
static bool density_run(const char *src, Value y, const char *const *kv, double *ll, Diag *d) {
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(y.a->n));
  tdata_add(&td, "y", y);
  Interp *in = tcompile(src, &td, d);
  EngineOpts o = topts(kv);
  void *st = in ? engine_svi.init(in, &o, 0, d) : NULL;
  if (!st) return false;
  ViReport rep;
  engine_svi.vi_report(st, &rep);
  *ll = rep.elbo;
  engine_svi.free(st);
  return true;
}

static void test_density(void) {
  const char *src =
      "data { int N; array[N] vector[2] y; }\n"
      "model {\n"
      "  param flow q = realnvp(2, 4, 8);\n"
      "  plate (i in 1:N, batch = 50) {\n"
      "    y[i] ~ flow(q);\n"
      "  }\n"
      "}\n";
  enum { NTRAIN = 300, NTEST = 2000 };
  Rng r;
  rng_seed(&r, 2024, 0);
  Value train = banana_data(&r, NTRAIN), test = banana_data(&r, NTEST);
  char tmpl[] = "/tmp/test_flow_guide_XXXXXX";
  const char *dir = mkdtemp(tmpl);
  if (!tap_ok(dir != NULL, "density: temporary directory")) return;
  char *path = gc_printf("%s/q.safetensors", dir);
  Diag d;
  double fit, held, identity;
  bool ok = density_run(src, train, (const char *const[]){"iter", "2000", "lr", "0.01",
                        "tol-rel-obj", "1e-9", "save-params", path, NULL}, &fit, &d) &&
            density_run(src, test, (const char *const[]){"load-params", path, NULL}, &held, &d) &&
            density_run(src, test, (const char *const[]){"iter", "1", "lr", "1e-12", NULL},
                        &identity, &d);
  remove(path);
  rmdir(dir);
  if (!tap_ok(ok, "density: fitted on %d points (minibatches of 50), loaded for %d held-out "
              "points", NTRAIN, NTEST)) {
    tap_diag("%s", d.msg);
    return;
  }
  /* Per point: the banana's entropy is 3.53 nats; the best Gaussian's 4.63. */
  double g = gauss_heldout(train, test) / NTEST, f = held / NTEST, u = identity / NTEST;
  tap_ok(f > g + 0.5 && f < -3.53 + 0.2, "density: the fitted flow's held-out log likelihood "
         "per point %.3f is above the ML Gaussian's %.3f by more than 0.5 (the banana's "
         "entropy: 3.53; fit on the training points %.3f; the untrained flow %.3f)", f, g,
         fit / NTRAIN, u);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_flow_guide examples/banana_flow_guide.ppl\n");
    return 2;
  }
  example = argv[1];
  gc_init();
  test_family();
  test_family_grad();
  test_handler_view();
  test_svi_fd();
  test_nuts_prior();
  test_banana();
  test_density();
  return tap_done();
}
