/* test_handler2.c — the second version of the handler interface, on programs
 * written in the language: a sample that suspends and is given its value from
 * outside (interp_pending / interp_provide), forks at a pending choice, and
 * simulated data (interp_load_data_sim, Handler.simulate).
 *
 * Reference runs use the same handler logic without suspending, so "the same"
 * means bit for bit: values, log density, outputs and addresses.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "lang/check.h"
#include "api/data.h"
#include "parser/ast.h"
#include "tests/tap.h"

/* Draws latents from their distribution with its own Rng, scores observations,
   draws simulated data; with `suspend`, every sample is left pending and the
   test's driver provides the value (drawn the same way). */
typedef struct H {
  Handler h;
  Rng rng;
  double lp;
  int nsample;
  char addrs[2048];
  bool suspend;
} H;

static HandlerResult draw(H *s, const DistCall *dc, Value *out, SrcPos pos, Diag *d) {
  char err[256];
  double lp;
  if (!dist_call_rng(dc, &s->rng, out, err, sizeof err) ||
      !dist_call_lpdf(dc, *out, &lp, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  s->lp += lp;
  return HR_CONTINUE;
}
static void note_addr(H *s, const char *addr) {
  size_t n = strlen(s->addrs);
  snprintf(s->addrs + n, sizeof s->addrs - n, "%s%s", n ? " " : "", addr);
}
static HandlerResult h_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                              SrcPos pos, Diag *d) {
  H *s = (H *)h;
  s->nsample++;
  note_addr(s, addr);
  return s->suspend ? HR_SUSPEND : draw(s, dc, out, pos, d);
}
static HandlerResult h_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  H *s = (H *)h;
  char err[256];
  double lp;
  if (!dist_call_lpdf(dc, x, &lp, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  s->lp += lp;
  return HR_CONTINUE;
}
static HandlerResult h_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  ((H *)h)->lp += lw;
  return HR_CONTINUE;
}
static HandlerResult h_simulate(Handler *h, const DistCall *dc, Value *out, SrcPos pos, Diag *d) {
  return draw((H *)h, dc, out, pos, d);
}
static void h_init(H *s, uint64_t seed, bool suspend) {
  memset(s, 0, sizeof *s);
  s->h.sample = h_sample;
  s->h.observe = h_observe;
  s->h.factor = h_factor;
  s->h.simulate = h_simulate;
  s->suspend = suspend;
  rng_seed(&s->rng, seed, 0);
}

static IrProgram *lower_src(const char *src, Diag *d) {
  Ast *ast = parse_string(src, strlen(src), "m.ppl", d);
  CheckedProgram *cp = ast ? check_program(ast, "m.ppl", 0, NULL, d) : NULL;
  return cp ? ir_lower(cp, d) : NULL;
}

static Interp *compile(const char *src, const char *json, int nsim, const char *const *sim,
                       Diag *d) {
  IrProgram *ir = lower_src(src, d);
  if (!ir) return NULL;
  Interp *in = interp_new(ir, NULL);
  DataSource *ds = json ? data_json_string(json, strlen(json), "data.json", d) : data_empty();
  if (!ds) return NULL;
  bool ok = nsim ? interp_load_data_sim(in, ds, nsim, sim, d) : interp_load_data(in, ds, d);
  return ok ? in : NULL;
}

static Value out_of(const Interp *in, const InterpState *st, const char *name) {
  const IrProgram *p = interp_program(in);
  for (int i = 0; i < p->noutputs; i++)
    if (strcmp(p->outputs[i].name, name) == 0) return interp_output(st, i);
  return val_none();
}

static const char *outputs_text(const Interp *in, const InterpState *st) {
  const IrProgram *p = interp_program(in);
  const char *s = "";
  for (int i = 0; i < p->noutputs; i++)
    s = gc_printf("%s%s=%s;", s, p->outputs[i].name, val_to_string(interp_output(st, i)));
  return s;
}

/* Run to the end, providing every pending choice from the handler's Rng. */
static RunStatus run_providing(InterpState *st, H *s, int *npending, Diag *d) {
  for (;;) {
    RunStatus rs = interp_run(st, &s->h, d);
    if (rs != RUN_SUSPENDED) return rs;
    const InterpChoice *c = interp_pending(st);
    if (!c) continue; /* an observation's suspension */
    (*npending)++;
    Value v;
    s->suspend = false; /* draw() is what the non-suspending handler does */
    HandlerResult hr = draw(s, &c->dc, &v, c->pos, d);
    s->suspend = true;
    if (hr != HR_CONTINUE || !interp_provide(st, v, d)) return RUN_ERROR;
  }
}

static const char *MODEL =
    "real shift(real a) {\n"
    "  real b ~ normal(a, 1);\n"
    "  return b;\n"
    "}\n"
    "data { int N; real y[N]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 10);\n"
    "  real<lower=0> s ~ gamma(2, 2);\n"
    "  vector[2] w ~ normal(mu, 1);\n"
    "  for (n in 1:N) {\n"
    "    real z ~ normal(mu, s);\n"
    "    y[n] ~ normal(z, 1);\n"
    "  }\n"
    "  real t = shift(mu);\n"
    "  int k ~ poisson(3);\n"
    "  target += -0.5 * t * t;\n"
    "}\n"
    "generated { real m2 = mu * 2 + k; }\n";
static const char *MODEL_DATA = "{\"N\": 3, \"y\": [0.5, -1, 2]}";

static void test_suspend_same(void) {
  Diag d;
  diag_init(&d);
  Interp *in = compile(MODEL, MODEL_DATA, 0, NULL, &d);
  tap_ok(in != NULL, "model compiles (%s)", d.msg);
  if (!in) return;
  for (uint64_t seed = 1; seed <= 3; seed++) {
    H a, b;
    h_init(&a, seed, false);
    h_init(&b, seed, true);
    InterpState *sa = interp_start(in, 9, 0, true), *sb = interp_start(in, 9, 0, true);
    RunStatus ra = interp_run(sa, &a.h, &d);
    int npend = 0;
    RunStatus rb = run_providing(sb, &b, &npend, &d);
    tap_ok(ra == RUN_DONE && rb == RUN_DONE, "seed %d: both runs finish (%s)", (int)seed, d.msg);
    tap_ok(npend == 8 && a.nsample == 8, "seed %d: 8 choices, each one pending once (%d)",
           (int)seed, npend);
    tap_ok(memcmp(&a.lp, &b.lp, sizeof(double)) == 0,
           "seed %d: same log density bit for bit (%.17g, %.17g)", (int)seed, a.lp, b.lp);
    tap_streq(outputs_text(in, sb), outputs_text(in, sa), "seed %d: same outputs", (int)seed);
    tap_streq(b.addrs, a.addrs, "seed %d: same addresses", (int)seed);
  }
}

/* All particles run to their next choice, the choices are answered in one
   batch, and each particle resumes: the results equal one-by-one runs. */
static void test_batched(void) {
  Diag d;
  diag_init(&d);
  Interp *in = compile(MODEL, MODEL_DATA, 0, NULL, &d);
  if (!in) return;
  enum { P = 6 };
  H hs[P], ref[P];
  InterpState *st[P];
  for (int i = 0; i < P; i++) {
    h_init(&hs[i], 100 + i, true);
    h_init(&ref[i], 100 + i, false);
    st[i] = interp_start(in, 5, (uint64_t)i, true);
  }
  int rounds = 0, live = P;
  bool ok = true;
  while (live > 0 && ok) {
    const InterpChoice *pend[P] = {0};
    live = 0;
    for (int i = 0; i < P; i++) { /* everyone to its next choice */
      RunStatus rs = interp_run(st[i], &hs[i].h, &d);
      if (rs == RUN_ERROR) ok = false;
      if (rs == RUN_SUSPENDED) {
        pend[i] = interp_pending(st[i]);
        live++;
      }
    }
    for (int i = 0; i < P && ok; i++) { /* then the batch of answers */
      if (!pend[i]) continue;
      Value v;
      hs[i].suspend = false;
      ok = draw(&hs[i], &pend[i]->dc, &v, pend[i]->pos, &d) == HR_CONTINUE &&
           interp_provide(st[i], v, &d);
      hs[i].suspend = true;
    }
    if (live) rounds++;
  }
  tap_ok(ok && rounds == 8, "6 particles answered in 8 batched rounds (%d; %s)", rounds, d.msg);
  int same = 0;
  for (int i = 0; i < P; i++) {
    InterpState *r = interp_start(in, 5, (uint64_t)i, true);
    interp_run(r, &ref[i].h, &d);
    same += memcmp(&ref[i].lp, &hs[i].lp, sizeof(double)) == 0 &&
            strcmp(outputs_text(in, r), outputs_text(in, st[i])) == 0;
  }
  tap_ok(same == P, "each batched particle equals its one-by-one run (%d of %d)", same, P);
}

/* Forks of a state waiting at a choice each take their own value. */
static void test_fork_pending(void) {
  const char *src =
      "model {\n"
      "  real a ~ normal(0, 1);\n"
      "  vector[3] v ~ normal(a, 1);\n"
      "  real b ~ normal(a, 1);\n"
      "  real c = a + b + sum(v);\n"
      "}\n"
      "generated { real g = c * 10; }\n";
  Diag d;
  diag_init(&d);
  Interp *in = compile(src, NULL, 0, NULL, &d);
  tap_ok(in != NULL, "fork model compiles (%s)", d.msg);
  if (!in) return;
  H h;
  h_init(&h, 1, true);
  InterpState *st = interp_start(in, 1, 0, true);
  RunStatus rs = interp_run(st, &h.h, &d);
  const InterpChoice *c = interp_pending(st);
  tap_ok(rs == RUN_SUSPENDED && c && strcmp(c->addr, "a") == 0 && c->pos.line == 2,
         "suspended at 'a' (m.ppl:2)");
  tap_ok(interp_provide(st, val_real(1), &d), "a = 1 provided");
  tap_ok(interp_pending(st) == NULL, "nothing pending once provided");
  rs = interp_run(st, &h.h, &d);
  c = interp_pending(st);
  tap_ok(rs == RUN_SUSPENDED && c && strcmp(c->addr, "v") == 0 && c->dc.nsizes == 1 &&
             c->dc.sizes[0] == 3 && val_as_real(c->dc.p[0]) == 1,
         "suspended at 'v': vector of 3, mean a = 1");
  InterpState *fk = interp_fork(st, 1, 1);
  const InterpChoice *cf = interp_pending(fk);
  tap_ok(cf && strcmp(cf->addr, "v") == 0, "the fork waits at the same choice");
  Value v1 = val_vec(3), v2 = val_vec(3);
  for (int i = 0; i < 3; i++) {
    v1.t->d[i] = i + 1;   /* sum 6 */
    v2.t->d[i] = 100;     /* sum 300 */
  }
  tap_ok(interp_provide(fk, v2, &d) && interp_provide(st, v1, &d), "each side gets its own v");
  /* b: parent 2, fork -5 */
  rs = interp_run(st, &h.h, &d);
  RunStatus rf = interp_run(fk, &h.h, &d);
  tap_ok(rs == RUN_SUSPENDED && rf == RUN_SUSPENDED &&
             strcmp(interp_pending(st)->addr, "b") == 0 && strcmp(interp_pending(fk)->addr, "b") == 0,
         "both at 'b'");
  interp_provide(st, val_real(2), &d);
  interp_provide(fk, val_real(-5), &d);
  rs = interp_run(st, &h.h, &d);
  rf = interp_run(fk, &h.h, &d);
  tap_ok(rs == RUN_DONE && rf == RUN_DONE, "both finish (%s)", d.msg);
  tap_ok(val_as_real(out_of(in, st, "c")) == 1 + 2 + 6 && val_as_real(out_of(in, st, "g")) == 90,
         "parent: c = 1 + 2 + 6, g = 90 (%s)", val_to_string(out_of(in, st, "g")));
  tap_ok(val_as_real(out_of(in, fk, "c")) == 1 - 5 + 300 && val_as_real(out_of(in, fk, "g")) == 2960,
         "fork: c = 1 - 5 + 300, g = 2960");
  tap_streq(val_to_string(out_of(in, st, "v")), "[1, 2, 3]", "the parent's v is its own");

  /* misuse */
  InterpState *s2 = interp_start(in, 1, 0, true);
  interp_run(s2, &h.h, &d);
  diag_init(&d);
  tap_ok(interp_run(s2, &h.h, &d) == RUN_ERROR, "running a state still waiting fails");
  tap_streq(d.msg, "m.ppl:2:8: interp_run: latent 'a' is waiting for a value (interp_provide)",
            "... with a message naming the choice");
  InterpState *s3 = interp_start(in, 1, 0, true);
  interp_run(s3, &h.h, &d);
  diag_init(&d);
  tap_ok(!interp_provide(s3, val_vec(2), &d) && strstr(d.msg, "latent 'a'") != NULL,
         "a value of the wrong shape is refused (%s)", d.msg);
  diag_init(&d);
  tap_ok(interp_provide(s3, val_real(0), &d) && !interp_provide(s3, val_real(0), &d) &&
             strcmp(d.msg, "interp_provide: no latent is waiting for a value") == 0,
         "providing twice is refused (%s)", d.msg);
}

/* ---- simulated data ---- */

static const char *SIM =
    "data { int N; real y[N]; real<lower=0> sigma; }\n"
    "model {\n"
    "  real mu ~ normal(1, 2);\n"
    "  for (n in 1:N)\n"
    "    y[n] ~ normal(mu, sigma);\n"
    "}\n"
    "generated { real ybar = mean(y); real first = y[1]; }\n";

static void test_simulate(void) {
  Diag d;
  diag_init(&d);
  const char *names[] = {"y"};
  /* y is absent from the data: N gives its size */
  Interp *in = compile(SIM, "{\"N\": 4, \"sigma\": 0.5}", 1, names, &d);
  tap_ok(in != NULL, "simulating y: loads without y in the data (%s)", d.msg);
  if (!in) return;
  tap_ok(interp_simulated_count(in) == 1 && strcmp(interp_simulated_name(in, 0), "y") == 0,
         "one simulated variable, 'y'");
  H h;
  h_init(&h, 3, false);
  InterpState *st = interp_start(in, 1, 0, true);
  RunStatus rs = interp_run(st, &h.h, &d);
  tap_ok(rs == RUN_DONE, "the run finishes (%s)", d.msg);
  Value y = interp_simulated_value(st, 0);
  tap_ok(y.k == V_ARR && y.a->n == 4, "y has 4 values");
  double sum = 0;
  bool finite = true;
  for (int i = 0; y.k == V_ARR && i < y.a->n; i++) {
    sum += val_as_real(y.a->e[i]);
    finite = finite && isfinite(val_as_real(y.a->e[i]));
  }
  tap_ok(finite, "every element was simulated (%s)", val_to_string(y));
  tap_near(val_as_real(out_of(in, st, "ybar")), sum / 4, 1e-12,
           "the generated block reads the simulated y");
  tap_ok(val_as_real(out_of(in, st, "first")) == val_as_real(y.a->e[0]), "y[1] too");
  double mu = val_as_real(out_of(in, st, "mu"));
  tap_ok(isfinite(mu), "mu drawn");
  /* a second run from the same data is independent of the first (copy on
     write: the loaded data stays unsimulated) */
  H h2;
  h_init(&h2, 4, false);
  InterpState *st2 = interp_start(in, 1, 0, true);
  interp_run(st2, &h2.h, &d);
  Value y2 = interp_simulated_value(st2, 0);
  tap_ok(y2.k == V_ARR && val_as_real(y2.a->e[0]) != val_as_real(y.a->e[0]) &&
             val_as_real(y.a->e[0]) == val_as_real(out_of(in, st, "first")),
         "a second run simulates its own y; the first keeps its values");

  /* whole-variable observation and observe() */
  const char *src2 =
      "data { int N; vector[N] y; int K; int c[K]; }\n"
      "model {\n"
      "  real mu ~ normal(0, 1);\n"
      "  y ~ normal(mu, 1);\n"
      "  for (k in 1:K) observe(poisson(3), c[k]);\n"
      "}\n"
      "generated { real s = sum(y) + sum(c); }\n";
  const char *both[] = {"y", "c"};
  Interp *in2 = compile(src2, "{\"N\": 3, \"K\": 2}", 2, both, &d);
  tap_ok(in2 != NULL, "vector y and int c[K] simulated (%s)", d.msg);
  if (in2) {
    H h3;
    h_init(&h3, 5, false);
    InterpState *s3 = interp_start(in2, 1, 0, true);
    rs = interp_run(s3, &h3.h, &d);
    Value vy = interp_simulated_value(s3, 0), vc = interp_simulated_value(s3, 1);
    tap_ok(rs == RUN_DONE && vy.k == V_VEC && vy.t->rows == 3 && vc.k == V_ARR &&
               vc.a->n == 2 && vc.a->e[0].k == V_INT,
           "a vector and an int array come back (%s)", d.msg);
    double s = 0;
    for (int i = 0; i < 3; i++) s += vy.t->d[i];
    s += (double)(vc.a->e[0].i + vc.a->e[1].i);
    tap_near(val_as_real(out_of(in2, s3, "s")), s, 1e-9, "generated block sees both");
  }

  /* errors */
  diag_init(&d);
  const char *nope[] = {"z"};
  tap_ok(compile(SIM, "{\"N\": 1, \"y\": [0], \"sigma\": 0.5}", 1, nope, &d) == NULL,
         "unknown name refused");
  tap_streq(d.msg, "cannot simulate 'z': no such data variable", "... with its message");
  diag_init(&d);
  in = compile(SIM, "{\"N\": 4, \"sigma\": 0.5}", 1, names, &d);
  H h4;
  h_init(&h4, 1, false);
  h4.h.simulate = NULL;
  st = interp_start(in, 1, 0, true);
  tap_ok(interp_run(st, &h4.h, &d) == RUN_ERROR, "a handler without simulate fails");
  tap_streq(d.msg, "m.ppl:5:5: observation of simulated data 'y' reached a handler without simulate",
            "... with the observation's position");
  /* an observation that is no place (inside a function) cannot simulate */
  const char *fsrc =
      "void obs(real[] v, real m) { v ~ normal(m, 1); }\n"
      "data { int N; real y[N]; }\n"
      "model {\n  real mu ~ normal(0, 1);\n  obs(y, mu);\n}\n";
  diag_init(&d);
  in = compile(fsrc, "{\"N\": 2}", 1, names, &d);
  H h6;
  h_init(&h6, 1, false);
  st = in ? interp_start(in, 1, 0, true) : NULL;
  tap_ok(st && interp_run(st, &h6.h, &d) == RUN_ERROR, "simulated data observed in a function fails");
  tap_streq(d.msg, "m.ppl:1:30: observed value is NaN; simulated data can only be observed in the "
                   "model block itself, as a variable or an element of one (y, y[n], y[i, j])",
            "... and says where it may be observed");
  /* loaded normally, the same program scores y */
  diag_init(&d);
  in = compile(SIM, "{\"N\": 2, \"y\": [1, 2], \"sigma\": 0.5}", 0, NULL, &d);
  H h5;
  h_init(&h5, 1, false);
  h5.h.simulate = NULL;
  st = interp_start(in, 1, 0, true);
  tap_ok(in && interp_run(st, &h5.h, &d) == RUN_DONE && interp_simulated_count(in) == 0,
         "loaded normally: observations are scored, no simulate needed (%s)", d.msg);
}


/* ---- learnable parameters ---- */

/* The message of compiling src, or "" when it compiles. */
static const char *compile_msg(const char *src) {
  Diag d;
  diag_init(&d);
  return lower_src(src, &d) ? "" : gc_strdup(d.msg);
}

static void test_param_front(void) {
  Diag d;
  diag_init(&d);
  const char *src = "model { param real<lower=0> s = 1; param vector[3] m; real x ~ normal(0, s); }";
  Ast *a = parse_string(src, strlen(src), "m.ppl", &d);
  tap_ok(a && strstr(ast_dump(a), "(param real<lower=0> s = 1)") &&
             strstr(ast_dump(a), "(param vector[3] m)"),
         "parser: param declarations (%s)", a ? ast_dump(a) : d.msg);
  tap_streq(compile_msg("data { param real s; }\nmodel { }\n"),
            "m.ppl:1:19: param 's' can only be declared in the model or guide block", "not in data");
  tap_streq(compile_msg("model { }\ngenerated { param real s; }\n"),
            "m.ppl:2:24: param 's' can only be declared in the model or guide block", "not in generated");
  tap_streq(compile_msg("real f() { param real s; return s; }\nmodel { }\n"),
            "m.ppl:1:23: param 's' can only be declared in the model or guide block", "not in functions");
  tap_streq(compile_msg("model {\n  param real s ~ normal(0, 1);\n}\n"),
            "m.ppl:2:14: param 's' cannot be declared with '~': a param is learned, not drawn "
            "(give its initial value with '=', or none for zero)",
            "not with ~");
  tap_streq(compile_msg("model {\n  for (i in 1:3) { param real s; }\n}\n"),
            "m.ppl:2:31: param 's' must be declared at the top level of the model block",
            "not in a loop");
  tap_streq(compile_msg("model {\n  param int k;\n}\n"),
            "m.ppl:2:13: param 'k' must be real, vector, row_vector or matrix (or an array of "
            "them), not int",
            "not int");
  tap_streq(compile_msg("model {\n  param real s;\n  s = 2;\n}\n"),
            "m.ppl:3:3: cannot assign to param 's'", "not assigned");
  tap_streq(compile_msg("model {\n  param real param;\n}\n"),
            "m.ppl:2:14: unexpected 'param', expecting identifier or '[' or '<'",
            "param is a keyword");
  tap_streq(compile_msg("data { int K; }\nmodel {\n  param array[2] vector[K] w;\n"
                        "  param real<lower=-1, upper=1> r = 0.5;\n}\n"),
            "", "arrays of vectors and bounded reals are params");

  IrProgram *ir = lower_src("data { int K; }\nmodel {\n  param real<lower=0> s = 2;\n"
                            "  param vector[K] m;\n  real x ~ normal(sum(m), s);\n}\n", &d);
  const char *txt = ir ? ir_print(ir) : "";
  tap_ok(strstr(txt, "  %3 = param s = %2 : real <lower=%1>\n") &&
             strstr(txt, "  %4 = param m : vector sizes(%0)\n"),
         "lowering: IR_PARAM with its initial value, bounds and sizes");
  tap_ok(strstr(txt, "outputs: s (derived %3), m (derived %4), x (latent") != NULL,
         "params are reported as model variables");
  IrAnalysis *an = ir ? ir_analyze(ir) : NULL;
  tap_ok(an && an->nparams == 2 && an->nlatents == 1 && strcmp(an->params[0].name, "s") == 0 &&
             strcmp(an->params[0].support, "(0, inf)") == 0 && an->params[0].has_init &&
             strcmp(an->params[1].type, "vector") == 0 && !an->params[1].has_init,
         "analysis: params listed apart from the latents");
  const char *chk = an ? ir_analysis_print(ir, an, -1) : "";
  tap_ok(strstr(chk, "params (2, learnable; engine svi fits them, the others hold them at their initial values):\n"
                     "  s  m.ppl:3:23  real    (0, inf)  initial value given\n"
                     "  m  m.ppl:4:19  vector  real      initial value zero (unconstrained)\n") != NULL,
         "ppl check lists them");
}

/* Supplies params: s = 5, m = [1, 2, ...]; records the specs it saw. */
typedef struct PH {
  H base;
  int n;
  ParamSpec spec[8];
  const char *addr[8];
  bool out_of_bounds;
} PH;

static HandlerResult ph_param(Handler *h, const char *addr, const ParamSpec *ps, Value *out,
                              SrcPos pos, Diag *d) {
  PH *p = (PH *)h;
  if (p->n < 8) {
    p->spec[p->n] = *ps;
    p->addr[p->n] = addr;
  }
  p->n++;
  if (ps->type.base == TY_VECTOR) {
    *out = val_vec(ps->sizes[0]);
    for (int i = 0; i < ps->sizes[0]; i++) out->t->d[i] = i + 1;
  } else {
    *out = val_real(p->out_of_bounds ? -1 : isfinite(ps->upper) ? ps->upper - 0.5 : 5);
  }
  return HR_CONTINUE;
}

static void test_param_run(void) {
  const char *src =
      "data { int K; }\n"
      "model {\n"
      "  param real<lower=0> s = 2;\n"
      "  param vector[K] m;\n"
      "  param real<lower=-1, upper=3> u;\n"
      "  param real<upper=4> v;\n"
      "  real x ~ normal(sum(m), s);\n"
      "}\n"
      "generated { real g = s + u + v + sum(m); }\n";
  Diag d;
  diag_init(&d);
  Interp *in = compile(src, "{\"K\": 3}", 0, NULL, &d);
  tap_ok(in != NULL, "param model compiles (%s)", d.msg);
  if (!in) return;
  H h; /* no param(): the initial values */
  h_init(&h, 1, false);
  InterpState *st = interp_start(in, 1, 0, true);
  tap_ok(interp_run(st, &h.h, &d) == RUN_DONE, "runs without a param handler (%s)", d.msg);
  tap_ok(val_as_real(out_of(in, st, "s")) == 2, "s = 2 (its initial value)");
  tap_streq(val_to_string(out_of(in, st, "m")), "[0, 0, 0]", "m = 0 (unbounded zero)");
  tap_ok(val_as_real(out_of(in, st, "u")) == 1, "u = 1 (middle of [-1, 3])");
  tap_ok(val_as_real(out_of(in, st, "v")) == 3, "v = 3 (upper - 1)");
  tap_ok(val_as_real(out_of(in, st, "g")) == 6, "generated block sees them: 2 + 1 + 3 + 0");

  PH ph;
  memset(&ph, 0, sizeof ph);
  h_init(&ph.base, 1, false);
  ph.base.h.param = ph_param;
  st = interp_start(in, 1, 0, true);
  tap_ok(interp_run(st, &ph.base.h, &d) == RUN_DONE && ph.n == 4, "a param handler is asked 4 times");
  tap_ok(strcmp(ph.addr[0], "s") == 0 && strcmp(ph.addr[1], "m") == 0 && ph.spec[0].con == CON_LOWER &&
             ph.spec[0].lower == 0 && isinf(ph.spec[0].upper) && val_as_real(ph.spec[0].init) == 2,
         "spec of s: lower 0, initial value 2");
  tap_ok(ph.spec[1].type.base == TY_VECTOR && ph.spec[1].nsizes == 1 && ph.spec[1].sizes[0] == 3 &&
             ph.spec[1].init.k == V_VEC,
         "spec of m: vector of K = 3, initial value a vector");
  tap_ok(ph.spec[2].con == CON_LOWER_UPPER && ph.spec[2].lower == -1 && ph.spec[2].upper == 3,
         "spec of u: [-1, 3]");
  tap_ok(val_as_real(out_of(in, st, "s")) == 5 && val_as_real(out_of(in, st, "u")) == 2.5 &&
             val_as_real(out_of(in, st, "g")) == 5 + 2.5 + 3.5 + 6,
         "the handler's values are used: g = 5 + 2.5 + 3.5 + (1 + 2 + 3)  (got %s)",
         val_to_string(out_of(in, st, "g")));
  ph.out_of_bounds = true;
  st = interp_start(in, 1, 0, true);
  diag_init(&d);
  tap_ok(interp_run(st, &ph.base.h, &d) == RUN_ERROR, "a value outside the bounds fails");
  tap_streq(d.msg, "m.ppl:3:23: param 's' is -1, outside its bounds [0, inf]", "... with a message");
}

int main(void) {
  gc_init();
  test_suspend_same();
  test_batched();
  test_fork_pending();
  test_simulate();
  test_param_front();
  test_param_run();
  return tap_done();
}
