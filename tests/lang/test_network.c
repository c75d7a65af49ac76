/* test_network.c — network values in the language (`param network f =
 * mlp(...)`, f(x)) through the interpreter: the param() handler's view (the
 * layout and a flat weight vector), the values of f(vector), f(row_vector)
 * and f(matrix) against a loop written here, the initial weights without a
 * handler, and the gradient of the program's log density through f with
 * respect to the handler's weights (consecutive and scattered tape ids) and
 * to a latent input, against central finite differences; the model hash;
 * training as an engine would (tape ids from param(), Adam from optim.h); and
 * net_apply's memo of consecutive weight nodes (ir/net.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/data.h"
#include "ir/interp.h"
#include "ir/net.h"
#include "lang/check.h"
#include "parser/ast.h"
#include "stdlib/ad.h"
#include "stdlib/optim.h"
#include "tests/tap.h"

enum { N = 3, D = 2, H1 = 5, H2 = 4, OUT = 2 };
#define NW (D * H1 + H1 + H1 * H2 + H2 + H2 * OUT + OUT)

static const char *const SRC =
    "data { int N; int D; matrix[N, D] X; vector[N] y; }\n"
    "model {\n"
    "  param network enc = mlp(D, [5, 4], 2, tanh, softplus);\n"
    "  vector[D] u ~ normal(0, 1);\n"
    "  vector[2] h = enc(u);\n"
    "  vector[2] r = enc(X[2]);\n"
    "  matrix[N, 2] Z = enc(X);\n"
    "  y ~ normal(Z[:, 1] + h[1] * r[2], Z[:, 2] + 0.5);\n"
    "}\n";
static const char *const DATA = "{\"N\": 3, \"D\": 2, \"X\": [[0.3, -1.2], [1.5, 0.4], [-0.7, 0.9]], "
                                "\"y\": [0.2, -0.4, 1.1]}";
static const double X[N][D] = {{0.3, -1.2}, {1.5, 0.4}, {-0.7, 0.9}};
static double U[D] = {0.8, -0.35}; /* the latent input (the finite differences move it) */

/* Gives the weights W (with nodes on a tape: consecutive, or scattered when
   `scatter`), u = U (with nodes when `ad`), and sums the observations'
   log densities (their nodes too). */
typedef struct NH {
  Handler h;
  Tape *t;
  double w[NW];
  bool scatter, given;
  int32_t wnode[NW], unode[D];
  double lp;
  int32_t obs[8];
  int nobs;
  ParamSpec spec;
  const char *addr;
} NH;

static HandlerResult nh_param(Handler *h, const char *addr, const ParamSpec *ps, Value *out, SrcPos pos,
                              Diag *d) {
  NH *s = (NH *)h;
  s->spec = *ps;
  s->addr = addr;
  Value v = val_vec(NW);
  memcpy(v.t->d, s->w, sizeof s->w);
  if (s->t) {
    v.t->ad = gc_alloc_atomic(sizeof(int32_t) * NW);
    if (s->scatter) { /* every other id, in reverse: a gather block */
      for (int i = NW - 1; i >= 0; i--) {
        v.t->ad[i] = tape_var(s->t, s->w[i]);
        tape_var(s->t, 0);
      }
    } else {
      int32_t first = tape_block(s->t, NW, NULL, NULL);
      for (int i = 0; i < NW; i++) v.t->ad[i] = first + i;
    }
    memcpy(s->wnode, v.t->ad, sizeof s->wnode);
  }
  *out = v;
  return HR_CONTINUE;
}

static HandlerResult nh_sample(Handler *h, const char *addr, const DistCall *dc, Value *out, SrcPos pos,
                               Diag *d) {
  NH *s = (NH *)h;
  Value v = val_vec(D);
  memcpy(v.t->d, U, sizeof U);
  if (s->t) {
    v.t->ad = gc_alloc_atomic(sizeof(int32_t) * D);
    for (int i = 0; i < D; i++) v.t->ad[i] = s->unode[i] = tape_var(s->t, U[i]);
  }
  *out = v;
  return HR_CONTINUE;
}

static HandlerResult nh_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  NH *s = (NH *)h;
  char err[256];
  double lp;
  int32_t node = 0;
  bool ok = s->t ? dist_call_lpdf_ad(dc, s->t, x, &lp, &node, err, sizeof err)
                 : dist_call_lpdf(dc, x, &lp, err, sizeof err);
  if (!ok) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  s->lp += lp;
  if (node && s->nobs < 8) s->obs[s->nobs++] = node;
  return HR_CONTINUE;
}

static Interp *compile(const char *src, const char *json, Diag *d) {
  Ast *ast = parse_string(src, strlen(src), "m.ppl", d);
  CheckedProgram *cp = ast ? check_program(ast, "m.ppl", 0, NULL, d) : NULL;
  IrProgram *ir = cp ? ir_lower(cp, d) : NULL;
  if (!ir) return NULL;
  Interp *in = interp_new(ir, NULL);
  DataSource *ds = data_json_string(json, strlen(json), "data.json", d);
  return ds && interp_load_data(in, ds, d) ? in : NULL;
}

static Value out_of(const Interp *in, const InterpState *st, const char *name) {
  const IrProgram *p = interp_program(in);
  for (int i = 0; i < p->noutputs; i++)
    if (strcmp(p->outputs[i].name, name) == 0) return interp_output(st, i);
  return val_none();
}

/* The network by hand: W (in x out, row-major) then b, per layer. */
static void by_hand(const double *w, const double *x, double *y) {
  static const int sz[4] = {D, H1, H2, OUT};
  double h[8], z[8];
  memcpy(h, x, sizeof(double) * D);
  const double *p = w;
  for (int l = 0; l < 3; l++) {
    int a = sz[l], b = sz[l + 1];
    for (int j = 0; j < b; j++) {
      double s = p[a * b + j];
      for (int k = 0; k < a; k++) s += h[k] * p[k * b + j];
      z[j] = l < 2 ? tanh(s) : log1p(exp(s));
    }
    memcpy(h, z, sizeof(double) * (size_t)b);
    p += a * b + b;
  }
  memcpy(y, h, sizeof(double) * OUT);
}

/* One run: its log density (observations), with gradients when t is set. */
static double run(Interp *in, NH *s, Tape *t, Diag *d) {
  s->t = t;
  s->lp = 0;
  s->nobs = 0;
  if (t) tape_reset(t);
  InterpState *st = interp_start(in, 7, 0, false);
  if (t) interp_set_tape(st, t);
  if (interp_run(st, &s->h, d) != RUN_DONE) return NAN;
  return s->lp;
}

static void test_values(Interp *in) {
  NH s;
  memset(&s, 0, sizeof s);
  s.h.sample = nh_sample;
  s.h.observe = nh_observe;
  s.h.factor = interp_factor_ignored;
  s.h.param = nh_param;
  Rng r;
  rng_seed(&r, 3, 0);
  for (int i = 0; i < NW; i++) s.w[i] = 0.6 * rng_normal(&r);
  Diag d;
  diag_init(&d);
  InterpState *st = interp_start(in, 1, 0, true);
  tap_ok(interp_run(st, &s.h, &d) == RUN_DONE, "runs with a param handler (%s)", d.msg);
  tap_ok(strcmp(s.addr, "enc") == 0 && s.spec.net && s.spec.net->nlayers == 3 && s.spec.net->sizes[0] == D &&
             s.spec.net->sizes[1] == H1 && s.spec.net->sizes[2] == H2 && s.spec.net->sizes[3] == OUT &&
             s.spec.net->act == TENSOR_TANH && s.spec.net->out_act == TENSOR_SOFTPLUS,
         "param(): address 'enc', the layout mlp(2, [5, 4], 2, tanh, softplus)");
  tap_ok(s.spec.type.base == TY_VECTOR && s.spec.type.ndims == 0 && s.spec.nsizes == 1 && s.spec.sizes[0] == NW &&
             s.spec.net->nparams == NW && interp_param_init(&s.spec).k == V_VEC &&
             interp_param_init(&s.spec).t->rows == NW && isinf(s.spec.lower) && isinf(s.spec.upper),
         "param(): a vector of %d weights, unbounded, with its initial value", NW);
  tap_ok(s.spec.init.k == V_NONE, "param(): the initial weights are not drawn unless asked for");
  double want[OUT];
  Value h = out_of(in, st, "h"), rr = out_of(in, st, "r"), Z = out_of(in, st, "Z");
  by_hand(s.w, U, want);
  tap_ok(h.k == V_VEC && fabs(h.t->d[0] - want[0]) < 1e-14 && fabs(h.t->d[1] - want[1]) < 1e-14,
         "enc(vector) equals the loop");
  by_hand(s.w, X[1], want);
  tap_ok(rr.k == V_VEC && fabs(rr.t->d[0] - want[0]) < 1e-14 && fabs(rr.t->d[1] - want[1]) < 1e-14,
         "enc(row_vector) equals the loop, as a vector");
  double worst = Z.k == V_MAT && Z.t->rows == N && Z.t->cols == OUT ? 0 : INFINITY;
  for (int i = 0; i < N && isfinite(worst); i++) {
    by_hand(s.w, X[i], want);
    for (int j = 0; j < OUT; j++) worst = fmax(worst, fabs(Z.t->d[j * N + i] - want[j])); /* column-major */
  }
  tap_ok(worst < 1e-14, "enc(matrix): row i is enc(X[i]) (err %.2g)", worst);

  /* without a param() handler: the initial weights, the same in every state */
  NH s0 = s;
  s0.h.param = NULL;
  InterpState *a = interp_start(in, 1, 0, true), *b = interp_start(in, 99, 5, true);
  tap_ok(interp_run(a, &s0.h, &d) == RUN_DONE && interp_run(b, &s0.h, &d) == RUN_DONE,
         "runs without a param handler");
  Value za = out_of(in, a, "Z"), zb = out_of(in, b, "Z");
  tap_ok(memcmp(za.t->d, zb.t->d, sizeof(double) * N * OUT) == 0, "initial weights: the same for any run seed");
  Value w0 = interp_param_init(&s.spec);
  by_hand(w0.t->d, X[0], want);
  tap_ok(fabs(za.t->d[0] - want[0]) < 1e-14 && fabs(za.t->d[N] - want[1]) < 1e-14,
         "... and they are the spec's init");
  int nonzero = 0, zero_bias = 1;
  for (int i = 0; i < D * H1; i++) nonzero += w0.t->d[i] != 0;
  for (int i = 0; i < H1; i++) zero_bias &= w0.t->d[D * H1 + i] == 0;
  tap_ok(nonzero == D * H1 && zero_bias, "init: random weights, zero biases");
}

static void test_gradient(Interp *in, bool scatter) {
  NH s;
  memset(&s, 0, sizeof s);
  s.h.sample = nh_sample;
  s.h.observe = nh_observe;
  s.h.factor = interp_factor_ignored;
  s.h.param = nh_param;
  s.scatter = scatter;
  Rng r;
  rng_seed(&r, 4, 0);
  for (int i = 0; i < NW; i++) s.w[i] = 0.7 * rng_normal(&r);
  Diag d;
  diag_init(&d);
  Tape *t = tape_new();
  double lp = run(in, &s, t, &d);
  tap_ok(isfinite(lp) && s.nobs == 1, "%s: an AD run (%s)", scatter ? "scattered ids" : "consecutive ids", d.msg);
  double *adj = calloc(tape_size(t) + 1, sizeof *adj);
  for (int k = 0; k < s.nobs; k++) adj[s.obs[k]] += 1;
  tape_backward_seeded(t, adj);
  double gw[NW], gu[D];
  for (int i = 0; i < NW; i++) gw[i] = adj[s.wnode[i]];
  for (int i = 0; i < D; i++) gu[i] = adj[s.unode[i]];
  free(adj);
  tap_ok(!tape_error(t), "no tape error");

  const double h = 1e-6;
  double worst = 0, plain = run(in, &s, NULL, &d);
  /* equal up to rounding: BLAS may take other kernels for the copies the tape makes */
  tap_near(plain, lp, 1e-13, "the AD run's log density equals the plain run's");
  for (int i = 0; i < NW; i++) {
    double keep = s.w[i];
    s.w[i] = keep + h;
    double up = run(in, &s, NULL, &d);
    s.w[i] = keep - h;
    double dn = run(in, &s, NULL, &d);
    s.w[i] = keep;
    double fd = (up - dn) / (2 * h);
    worst = fmax(worst, fabs(gw[i] - fd) / fmax(1, fabs(fd)));
  }
  tap_ok(worst < 1e-6, "%s: d log density / d weights = finite differences (worst %.2g, %d weights)",
         scatter ? "scattered ids" : "consecutive ids", worst, NW);
  if (scatter) return;
  /* d/du: u is a latent whose nodes the sample handler gave */
  double *uu = U, worstu = 0;
  for (int i = 0; i < D; i++) {
    double keep = uu[i];
    uu[i] = keep + h;
    double up = run(in, &s, NULL, &d);
    uu[i] = keep - h;
    double dn = run(in, &s, NULL, &d);
    uu[i] = keep;
    worstu = fmax(worstu, fabs(gu[i] - (up - dn) / (2 * h)));
  }
  tap_ok(worstu < 1e-6 && (gu[0] != 0 || gu[1] != 0), "d log density / d input = finite differences (%.2g)",
         worstu);
}

/* A trained file's model hash sees the network's layout: another activation
   or size is another program, a comment is not. */
static void test_hash(void) {
  Diag d;
  diag_init(&d);
  const char *a = "data { int D; vector[D] x; }\nmodel { param network f = mlp(D, [4], 1, tanh); "
                  "vector[1] z = f(x); }\n";
  const char *b = "data { int D; vector[D] x; }  // the same\nmodel {\n  param network f = mlp(D, [4], 1, tanh);\n"
                  "  vector[1] z = f(x);\n}\n";
  const char *c = "data { int D; vector[D] x; }\nmodel { param network f = mlp(D, [4], 1, relu); "
                  "vector[1] z = f(x); }\n";
  const char *e = "data { int D; vector[D] x; }\nmodel { param network f = mlp(D, [5], 1, tanh); "
                  "vector[1] z = f(x); }\n";
  uint64_t h[4];
  const char *src[4] = {a, b, c, e};
  for (int i = 0; i < 4; i++) {
    Ast *ast = parse_string(src[i], strlen(src[i]), "m.ppl", &d);
    CheckedProgram *cp = ast ? check_program(ast, "m.ppl", 0, NULL, &d) : NULL;
    IrProgram *ir = cp ? ir_lower(cp, &d) : NULL;
    h[i] = ir ? ir_program_hash(ir) : (uint64_t)i;
  }
  tap_ok(h[0] == h[1], "hash: layout and comments do not count");
  tap_ok(h[0] != h[2] && h[0] != h[3] && h[2] != h[3], "hash: another activation or hidden size is another program");
}

/* A trainer's handler: the weights th.w (owned by the optimiser) with one
   block of tape ids when a tape is set; the observation's log density and
   its node. */
typedef struct TH {
  Handler h;
  Tape *t;
  double *w;
  int np;
  int32_t first, node;
  double lp;
} TH;

static HandlerResult th_param(Handler *h, const char *addr, const ParamSpec *ps, Value *out, SrcPos pos,
                              Diag *d) {
  TH *s = (TH *)h;
  if (!s->w) { /* the first run: take the program's initial weights */
    s->np = ps->sizes[0];
    s->w = gc_alloc_atomic(sizeof(double) * (size_t)s->np);
    memcpy(s->w, interp_param_init(ps).t->d, sizeof(double) * (size_t)s->np);
  }
  Value v = val_vec(s->np);
  memcpy(v.t->d, s->w, sizeof(double) * (size_t)s->np);
  if (s->t) {
    s->first = tape_block(s->t, (size_t)s->np, NULL, NULL);
    v.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)s->np);
    for (int i = 0; i < s->np; i++) v.t->ad[i] = s->first + i;
  }
  *out = v;
  return HR_CONTINUE;
}

static HandlerResult nh_observe_t(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  TH *s = (TH *)h;
  char err[256];
  if (!(s->t ? dist_call_lpdf_ad(dc, s->t, x, &s->lp, &s->node, err, sizeof err)
             : dist_call_lpdf(dc, x, &s->lp, err, sizeof err))) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  return HR_CONTINUE;
}

/* What a training engine does, with the pieces of stdlib: the handler gives
   the weights tape nodes, one backward sweep gives the log likelihood's
   gradient, Adam (optim.h) steps.  The network must learn sin on [-3, 3]. */
static void test_training(void) {
  enum { NT = 40 };
  const char *src = "data { int N; matrix[N, 1] X; vector[N] y; }\n"
                    "model {\n"
                    "  param network f = mlp(1, [16], 1, tanh);\n"
                    "  matrix[N, 1] Z = f(X);\n"
                    "  y ~ normal(Z[:, 1], 0.1);\n"
                    "}\n";
  char json[4096];
  size_t k = (size_t)snprintf(json, sizeof json, "{\"N\": %d, \"X\": [", NT);
  double xs[NT];
  for (int i = 0; i < NT; i++) {
    xs[i] = -3 + 6.0 * i / (NT - 1);
    k += (size_t)snprintf(json + k, sizeof json - k, "%s[%.17g]", i ? ", " : "", xs[i]);
  }
  k += (size_t)snprintf(json + k, sizeof json - k, "], \"y\": [");
  for (int i = 0; i < NT; i++) k += (size_t)snprintf(json + k, sizeof json - k, "%s%.17g", i ? ", " : "", sin(xs[i]));
  snprintf(json + k, sizeof json - k, "]}");
  Diag d;
  diag_init(&d);
  Interp *in = compile(src, json, &d);
  if (!tap_ok(in != NULL, "training: the regression compiles (%s)", d.msg)) return;
  TH th;
  memset(&th, 0, sizeof th);
  th.h.observe = nh_observe_t;
  th.h.factor = interp_factor_ignored;
  th.h.param = th_param;
  /* start from the program's own initial weights */
  InterpState *st = interp_start(in, 1, 0, false);
  th.w = NULL;
  if (!tap_ok(interp_run(st, &th.h, &d) == RUN_DONE && th.np == 49, "training: 49 weights (%s)", d.msg)) return;
  OptimConfig c;
  optim_config_default(&c, OPTIM_ADAM);
  c.lr = 0.02;
  c.sched = OPTIM_SCHED_COSINE;
  c.horizon = 3000;
  c.lr_min = 1e-4;
  Optim *o = optim_new(&c, (size_t)th.np);
  Tape *t = tape_new();
  double *g = calloc((size_t)th.np, sizeof *g), first = NAN, last = NAN;
  size_t cap = 0;
  double *adj = NULL;
  for (int it = 0; it < 3000; it++) {
    tape_reset(t);
    th.t = t;
    th.lp = 0;
    th.node = 0;
    st = interp_start(in, 1, 0, false);
    interp_set_tape(st, t);
    if (interp_run(st, &th.h, &d) != RUN_DONE) break;
    if (tape_size(t) + 1 > cap) {
      free(adj);
      adj = malloc(sizeof(double) * (cap = tape_size(t) + 1));
    }
    tape_backward(t, th.node, adj);
    for (int i = 0; i < th.np; i++) g[i] = -adj[th.first + i]; /* minimise -log likelihood */
    optim_step(o, th.w, g);
    if (it == 0) first = th.lp;
    last = th.lp;
  }
  /* the fit: residuals of the trained network on the data */
  th.t = NULL;
  st = interp_start(in, 1, 0, false);
  bool ran = interp_run(st, &th.h, &d) == RUN_DONE;
  const IrProgram *p = interp_program(in);
  Value Z = val_none();
  for (int i = 0; i < p->noutputs; i++)
    if (strcmp(p->outputs[i].name, "Z") == 0) Z = interp_output(st, i);
  double ss = 0;
  for (int i = 0; ran && Z.k == V_MAT && i < NT; i++) ss += pow(Z.t->d[i] - sin(xs[i]), 2);
  double rms = ran && Z.k == V_MAT ? sqrt(ss / NT) : INFINITY;
  tap_ok(isfinite(first) && last > first, "training: the log likelihood rises (%.1f -> %.1f)", first, last);
  double m = 0, v = 0;
  for (int i = 0; i < NT; i++) m += sin(xs[i]) / NT;
  for (int i = 0; i < NT; i++) v += pow(sin(xs[i]) - m, 2) / NT;
  /* a network that learned nothing leaves about the data's sd */
  tap_ok(rms < 0.05, "training: Adam through param() fits sin: residual rms %.3g (the data's sd %.2f)", rms,
         sqrt(v));
  free(g);
  free(adj);
  optim_free(o);
}


/* The weights' gradient of sum(f(x)) from one net_apply call on tape t;
   false when the call fails. */
static bool memo_call(Tape *t, NetMemo *memo, const NnMlp *m, Value w, Value x, double *g) {
  char err[128];
  Value y;
  if (!net_apply(t, NULL, memo, m, w, x, &y, err, sizeof err)) return false;
  AdNum sum = ad_const(0);
  for (int i = 0; i < y.t->rows * y.t->cols; i++) sum = ad_add(t, sum, (AdNum){y.t->d[i], y.t->ad[i]});
  double *adj = calloc(tape_size(t) + 1, sizeof(double));
  tape_backward(t, sum.n, adj);
  for (int i = 0; i < (int)m->nparams; i++) g[i] = adj[w.t->ad[i]];
  free(adj);
  return true;
}

/* A memo set by consecutive weights must not pass for other weights: the
   same values with their nodes in reverse order (their first node the same
   run's last) give the gradient permuted, element by element, and a memo
   shared by two networks' weights gives each its own. */
static void test_memo(void) {
  NnMlp m;
  char err[128];
  int hid[1] = {H1};
  tap_ok(nn_mlp_make(&m, D, 1, hid, OUT, TENSOR_TANH, TENSOR_IDENTITY, err, sizeof err), "memo: layout");
  int np = (int)m.nparams;
  Tape *t = tape_new();
  Value w = net_initial(&m, "memo"), wr = net_initial(&m, "memo");
  w.t->ad = calloc((size_t)np, sizeof(int32_t));
  wr.t->ad = calloc((size_t)np, sizeof(int32_t));
  for (int i = 0; i < np; i++) w.t->ad[i] = tape_var(t, w.t->d[i]);
  for (int i = 0; i < np; i++) wr.t->ad[i] = w.t->ad[np - 1 - i], wr.t->d[i] = w.t->d[np - 1 - i];
  Value x = val_vec(D);
  x.t->d[0] = 0.4, x.t->d[1] = -1.1;
  double *g = calloc((size_t)np, sizeof(double)), *gr = calloc((size_t)np, sizeof(double)),
         *g2 = calloc((size_t)np, sizeof(double));
  NetMemo memo = {0};
  bool ok = memo_call(t, &memo, &m, w, x, g);
  tap_ok(ok && memo.ad == w.t->ad && memo.np == np, "memo: consecutive weights are remembered");
  /* wr's values are w's reversed: f(x) with wr's layout differs, so compare
     with a call without memo on a fresh tape */
  ok = ok && memo_call(t, &memo, &m, wr, x, gr);
  tap_ok(ok && memo.ad == w.t->ad, "memo: scattered weights are gathered, the memo kept");
  Tape *t2 = tape_new();
  Value wr2 = wr;
  ValTen ten2 = *wr.t;
  wr2.t = &ten2;
  ten2.ad = calloc((size_t)np, sizeof(int32_t));
  for (int i = 0; i < np; i++) ten2.ad[i] = tape_var(t2, wr.t->d[i]);
  ok = ok && memo_call(t2, NULL, &m, wr2, x, g2);
  double diff = 0;
  for (int i = 0; i < np; i++) diff = fmax(diff, fabs(gr[i] - g2[i]));
  tap_ok(ok && diff == 0, "memo: the scattered call's gradient is the one without a memo (max diff %g)", diff);
  ok = ok && memo_call(t, &memo, &m, w, x, g2);
  diff = 0;
  for (int i = 0; i < np; i++) diff = fmax(diff, fabs(g[i] - g2[i]));
  tap_ok(ok && diff == 0, "memo: the consecutive weights again, the same gradient (max diff %g)", diff);
  free(g), free(gr), free(g2);
}

int main(void) {
  gc_init();
  Diag d;
  diag_init(&d);
  Interp *in = compile(SRC, DATA, &d);
  tap_ok(in != NULL, "the network program compiles (%s)", d.msg);
  if (!in) return tap_done();
  test_values(in);
  test_gradient(in, false);
  test_gradient(in, true);
  test_hash();
  test_training();
  test_memo();
  return tap_done();
}
