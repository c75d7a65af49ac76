/* test_interp_e2e.c — the interpreter on programs written in the language:
 * source text -> parse -> check -> lower -> interp, with data from JSON.
 *
 * The handler draws latents from their distribution (dist_call_rng) and sums
 * observation log densities, like the prior/IS engines do.  Expected values are
 * worked out by hand next to each program; log densities of the normal come
 * from the closed form -(x-mu)^2/(2 s^2) - log s - log sqrt(2 pi).
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

typedef struct Sim {
  Handler h;
  Rng rng;
  double loglik;
  int nsample, nobs;
  const char *addr[256];
  double fixed; /* when not NaN: every real latent takes this value */
  bool suspend; /* suspend after every observation */
} Sim;

static HandlerResult sim_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                SrcPos pos, Diag *d) {
  Sim *s = (Sim *)h;
  if (s->nsample < 256) s->addr[s->nsample] = addr;
  s->nsample++;
  char err[256];
  if (!isnan(s->fixed) && dc->type.ndims == 0 && dc->type.base == TY_REAL) {
    *out = val_real(s->fixed);
    return HR_CONTINUE;
  }
  if (!dist_call_rng(dc, &s->rng, out, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  return HR_CONTINUE;
}
static HandlerResult sim_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  Sim *s = (Sim *)h;
  char err[256];
  double lp;
  if (!dist_call_lpdf(dc, x, &lp, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  s->loglik += lp;
  s->nobs++;
  return s->suspend ? HR_SUSPEND : HR_CONTINUE;
}
static HandlerResult sim_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  Sim *s = (Sim *)h;
  s->loglik += lw;
  s->nobs++;
  return HR_CONTINUE;
}

typedef struct E2E {
  IrProgram *ir;
  Interp *in;
  InterpState *st;
  RunStatus rs;
  Diag d;
  Sim sim;
  char *out;
  size_t outlen;
} E2E;

/* Compile src, load json (may be NULL), run once. rs = RUN_ERROR with d set
   on any failure (compile errors included). */
static E2E *run_src(const char *src, const char *json, bool gen, double fixed) {
  E2E *e = calloc(1, sizeof(E2E));
  diag_init(&e->d);
  e->sim.h.sample = sim_sample;
  e->sim.h.observe = sim_observe;
  e->sim.h.factor = sim_factor;
  e->sim.fixed = fixed;
  rng_seed(&e->sim.rng, 42, 0);
  e->rs = RUN_ERROR;
  Ast *ast = parse_string(src, strlen(src), "m.ppl", &e->d);
  if (!ast) return e;
  CheckedProgram *cp = check_program(ast, "m.ppl", 0, NULL, &e->d);
  if (!cp) return e;
  e->ir = ir_lower(cp, &e->d);
  if (!e->ir) return e;
  FILE *mem = open_memstream(&e->out, &e->outlen);
  e->in = interp_new(e->ir, mem);
  DataSource *ds = json ? data_json_string(json, strlen(json), "data.json", &e->d) : data_empty();
  if (!ds) return e;
  if (!interp_load_data(e->in, ds, &e->d)) return e;
  e->st = interp_start(e->in, 1, 0, gen);
  e->rs = interp_run(e->st, &e->sim.h, &e->d);
  fflush(mem);
  return e;
}

static Value out(const E2E *e, const char *name) {
  if (!e->st) return val_none();
  for (int i = 0; i < e->ir->noutputs; i++)
    if (strcmp(e->ir->outputs[i].name, name) == 0) return interp_output(e->st, i);
  return val_none();
}
static double outr(const E2E *e, const char *name) { return val_as_real(out(e, name)); }
static const char *outs(const E2E *e, const char *name) { return val_to_string(out(e, name)); }

static const char *addrs(const E2E *e) {
  const char *s = "";
  for (int i = 0; i < e->sim.nsample && i < 256; i++) s = gc_printf("%s%s%s", s, i ? " " : "", e->sim.addr[i]);
  return s;
}

#define OKRUN(e, name) tap_ok((e)->rs == RUN_DONE, "%s runs (%s)", name, (e)->d.msg)

static const double LOG_SQRT_2PI = 0.91893853320467274178;

static void test_eight_schools(void) {
  const char *src =
      "data {\n"
      "  int J;\n"
      "  real y[J];\n"
      "  real<lower=0> sigma[J];\n"
      "}\n"
      "model {\n"
      "  real mu ~ normal(0, 5);\n"
      "  real<lower=0> tau ~ normal(0, 5);\n"
      "  vector[J] eta ~ normal(0, 1);\n"
      "  vector[J] theta = mu + tau * eta;\n"
      "  y ~ normal(theta, sigma);\n"
      "}\n"
      "generated {\n"
      "  real s = sum(theta);\n"
      "}\n";
  const char *json = "{\"J\": 3, \"y\": [1, 2, 3], \"sigma\": [1, 1, 2]}";
  E2E *e = run_src(src, json, true, NAN);
  OKRUN(e, "eight schools (3 schools)");
  tap_streq(addrs(e), "mu tau eta", "latents: mu, tau, eta (one vector site)");
  Value mu = out(e, "mu"), tau = out(e, "tau"), eta = out(e, "eta"), th = out(e, "theta");
  tap_ok(tau.k == V_REAL && tau.r > 0, "tau drawn from the half-normal (> 0)");
  tap_ok(eta.k == V_VEC && eta.t->rows == 3 && th.k == V_VEC && th.t->rows == 3, "eta and theta are vectors of 3");
  double ll = 0, s = 0, y[3] = {1, 2, 3}, sg[3] = {1, 1, 2}, maxerr = 0;
  for (int i = 0; i < 3; i++) {
    double t = mu.r + tau.r * eta.t->d[i];
    maxerr = fmax(maxerr, fabs(t - th.t->d[i]));
    s += t;
    ll += -0.5 * pow((y[i] - t) / sg[i], 2) - log(sg[i]) - LOG_SQRT_2PI;
  }
  tap_ok(maxerr < 1e-12, "theta = mu + tau * eta");
  tap_near(e->sim.loglik, ll, 1e-12, "log likelihood of y given theta");
  tap_near(outr(e, "s"), s, 1e-12, "generated s = sum(theta)");
}

static void test_control_and_functions(void) {
  const char *src =
      "int fib(int n) {\n"
      "  if (n < 2) return n;\n"
      "  return fib(n - 1) + fib(n - 2);\n"
      "}\n"
      "real sq(real x) { return x * x; }\n"
      "model {\n"
      "  int f = fib(15);\n"
      "  int total = 0;\n"
      "  for (i in 1:10) {\n"
      "    if (i % 3 == 0) continue;\n"
      "    if (i > 8) break;\n"
      "    total += i;\n"
      "  }\n"
      "  int n = 0;\n"
      "  while (n * n < 50) n += 1;\n"
      "  real q = sq(3);\n"
      "  real arr[3] = {1.5, 2.5, 3.5};\n"
      "  real acc = 0;\n"
      "  for (a in arr) acc += a;\n"
      "  vector[3] v = [1, 2, 3]';\n"
      "  v[2] = 20;\n"
      "  matrix[2, 2] M = [[1, 2], [3, 4]];\n"
      "  vector[2] Mv = M * v[1:2];\n"
      "  string greeting = \"hello, \" + \"world\";\n"
      "  bool both = n > 3 && total < 100;\n"
      "  print(\"f = \", f, \" total = \", total);\n"
      "}\n";
  E2E *e = run_src(src, NULL, false, NAN);
  OKRUN(e, "control flow program");
  tap_ok(out(e, "f").k == V_INT && out(e, "f").i == 610, "fib(15) = 610");
  /* i = 1..8 without 3, 6: 1+2+4+5+7+8 = 27 */
  tap_ok(out(e, "total").i == 27, "for with continue and break: 27 (got %s)", outs(e, "total"));
  tap_ok(out(e, "n").i == 8, "while: smallest n with n^2 >= 50 is 8");
  tap_ok(outr(e, "q") == 9, "sq(3) = 9");
  tap_ok(outr(e, "acc") == 7.5, "for over an array: 7.5");
  tap_streq(outs(e, "v"), "[1, 20, 3]", "vector element assignment");
  tap_streq(outs(e, "Mv"), "[41, 83]", "M * v[1:2] = [1+40, 3+80]");
  tap_streq(outs(e, "greeting"), "hello, world", "string concatenation");
  tap_ok(out(e, "both").k == V_BOOL && out(e, "both").b, "&& short-circuit lowering");
  tap_streq(e->out, "f = 610 total = 27\n", "print output");
}

static void test_errors(void) {
  E2E *e = run_src("model {\n  real x[3];\n  int k = 4;\n  x[k] = 1;\n}\n", NULL, false, NAN);
  tap_ok(e->rs == RUN_ERROR && e->d.code == DIAG_RUNTIME, "index out of range is a runtime error");
  tap_streq(e->d.msg, "m.ppl:4:3: index 4 out of range for array of size 3", "index error message with position");

  e = run_src("real f(int n) { return f(n + 1); }\nmodel {\n  real x = f(0);\n}\n", NULL, false, NAN);
  tap_ok(e->rs == RUN_ERROR && strstr(e->d.msg, "stack overflow: recursion deeper than 10000 calls"),
         "infinite recursion: %s", e->d.msg);

  e = run_src("model {\n  int n = 3;\n  vector[n] v;\n  v = [1, 2]';\n}\n", NULL, false, NAN);
  tap_ok(e->rs == RUN_ERROR && strstr(e->d.msg, "size mismatch: assigning vector of 2 to 'v' declared with size 3"),
         "assignment size check: %s", e->d.msg);

  /* an unsized local may change size between loop iterations; a sized one may not */
  e = run_src("real g(int m) {\n  real t = 0;\n  for (i in 1:m) {\n    vector b = rep_vector(1, i);\n"
              "    t += sum(b);\n  }\n  return t;\n}\nmodel {\n  real t = g(4);\n}\n", NULL, false, NAN);
  tap_ok(e->rs == RUN_DONE && outr(e, "t") == 10, "unsized local resized in a loop: 1+2+3+4 = 10 (%s)", e->d.msg);
  e = run_src("model {\n  for (i in 1:3) {\n    vector[i] w = rep_vector(2, i);\n  }\n}\n", NULL, false, NAN);
  tap_ok(e->rs == RUN_DONE, "sized declaration inside a loop is re-declared each iteration (%s)", e->d.msg);
  e = run_src("model {\n  vector[2] v = [1, 2]';\n  v = v * 3;\n  v += [1, 1]';\n}\n", NULL, false, NAN);
  tap_streq(outs(e, "v"), "[4, 7]", "compound assignment on a sized vector");
  e = run_src("model {\n  int big = 4611686018427387904;\n  int x = big * 4;\n}\n", NULL, false, NAN);
  tap_ok(e->rs == RUN_ERROR && strstr(e->d.msg, "integer overflow"), "integer overflow: %s", e->d.msg);

  e = run_src("model {\n  reject(\"n is \", 3);\n}\n", NULL, false, NAN);
  tap_streq(e->d.msg, "m.ppl:2:3: reject: n is 3", "reject message");

  e = run_src("data { int N; }\nmodel { }\n", "{}", false, NAN);
  tap_ok(e->rs == RUN_ERROR && e->d.code == DIAG_DATA && strstr(e->d.msg, "missing data \"N\""),
         "missing data: %s", e->d.msg);

  e = run_src("data { int N; real y[N]; }\nmodel { }\n", "{\"N\": 3, \"y\": [1, 2]}", false, NAN);
  tap_ok(e->rs == RUN_ERROR && e->d.code == DIAG_DATA && strstr(e->d.msg, "(N = 3)"),
         "data size error names the size: %s", e->d.msg);

  e = run_src("model {\n  real s = -1;\n  real x ~ normal(0, s);\n}\n", NULL, false, NAN);
  tap_ok(e->rs == RUN_ERROR && strncmp(e->d.msg, "m.ppl:3:", 8) == 0 && strstr(e->d.msg, "normal: sigma must be positive"),
         "bad distribution parameter at the declaration: %s", e->d.msg);
}

static void test_addresses(void) {
  const char *src =
      "void stepf(real prev) {\n"
      "  real x ~ normal(prev, 1);\n"
      "}\n"
      "void walk(int n) {\n"
      "  for (t in 1:n) stepf(0);\n"
      "}\n"
      "model {\n"
      "  real mu ~ normal(0, 1);\n"
      "  for (i in 1:2) {\n"
      "    for (j in 1:2) {\n"
      "      real z ~ normal(mu, 1);\n"
      "    }\n"
      "  }\n"
      "  walk(2);\n"
      "  int k = 0;\n"
      "  while (k < 3) {\n"
      "    real w ~ normal(0, 1);\n"
      "    k += 1;\n"
      "  }\n"
      "}\n";
  E2E *e = run_src(src, NULL, false, NAN);
  OKRUN(e, "address program");
  tap_streq(addrs(e), "mu z[1,1] z[1,2] z[2,1] z[2,2] walk/stepf[1]/x walk/stepf[2]/x w w#2 w#3",
            "addresses from source: loops, call path, while duplicates");
}

static void test_observe_condition(void) {
  const char *src =
      "data { int N; int y[N]; }\n"
      "model {\n"
      "  real<lower=0, upper=1> p ~ uniform(0, 1);\n"
      "  y ~ bernoulli(p);\n"
      "  observe(normal(0, 1), 0.5);\n"
      "  factor(-1.25);\n"
      "  condition(p > 2);\n"
      "}\n";
  E2E *e = run_src(src, "{\"N\": 4, \"y\": [1, 0, 1, 1]}", false, 0.25);
  OKRUN(e, "observe/factor/condition program");
  /* 3 log(0.25) + log(0.75) - 0.125 - log sqrt(2 pi) - 1.25 + (-inf) */
  tap_ok(isinf(e->sim.loglik) && e->sim.loglik < 0, "condition(false) gives -inf");
  tap_ok(e->sim.nobs == 4 && interp_events(e->st) == 4, "4 events: observe, observe, factor, condition");
  e = run_src("data { int N; int y[N]; }\nmodel {\n  real<lower=0, upper=1> p ~ uniform(0, 1);\n"
              "  y ~ bernoulli(p);\n  observe(normal(0, 1), 0.5);\n  factor(-1.25);\n  condition(p < 2);\n}\n",
              "{\"N\": 4, \"y\": [1, 0, 1, 1]}", false, 0.25);
  double want = 3 * log(0.25) + log(0.75) - 0.125 - LOG_SQRT_2PI - 1.25;
  tap_near(e->sim.loglik, want, 1e-12, "log weight: bernoulli + normal + factor");
}

static Interp *compile(const char *src, const char *json, Diag *d) {
  Ast *ast = parse_string(src, strlen(src), "m.ppl", d);
  CheckedProgram *cp = ast ? check_program(ast, "m.ppl", 0, NULL, d) : NULL;
  IrProgram *ir = cp ? ir_lower(cp, d) : NULL;
  if (!ir) return NULL;
  Interp *in = interp_new(ir, NULL);
  DataSource *ds = json ? data_json_string(json, strlen(json), "data.json", d) : data_empty();
  return ds && interp_load_data(in, ds, d) ? in : NULL;
}

static Value out_of(const Interp *in, const InterpState *st, const char *name) {
  const IrProgram *p = interp_program(in);
  for (int i = 0; i < p->noutputs; i++)
    if (strcmp(p->outputs[i].name, name) == 0) return interp_output(st, i);
  return val_none();
}

static void sim_init(Sim *s, double fixed, bool suspend) {
  memset(s, 0, sizeof *s);
  s->h.sample = sim_sample;
  s->h.observe = sim_observe;
  s->h.factor = sim_factor;
  s->fixed = fixed;
  s->suspend = suspend;
  rng_seed(&s->rng, 1, 0);
}

/* Particles the way SMC uses them: stop after each observation, fork, go on. */
static void test_particles(void) {
  const char *src =
      "data { int T; real y[T]; }\n"
      "model {\n"
      "  real xs[T];\n"
      "  real prev = 0;\n"
      "  for (t in 1:T) {\n"
      "    real x ~ normal(prev, 1);\n"
      "    y[t] ~ normal(x, 1);\n"
      "    xs[t] = x;\n"
      "    prev = x;\n"
      "  }\n"
      "}\n";
  Diag d;
  diag_init(&d);
  Interp *in = compile(src, "{\"T\": 4, \"y\": [0.5, 1, 1.5, 2]}", &d);
  tap_ok(in != NULL, "state-space model compiles (%s)", d.msg);
  if (!in) return;
  InterpState *st = interp_start(in, 1, 0, false);
  Sim a;
  sim_init(&a, 1.0, true);
  RunStatus r1 = interp_run(st, &a.h, &d), r2 = interp_run(st, &a.h, &d);
  tap_ok(r1 == RUN_SUSPENDED && r2 == RUN_SUSPENDED && interp_events(st) == 2, "two steps, suspended at y[2]");
  InterpState *ch = interp_fork(st, 1, 7);
  Sim b;
  sim_init(&b, 5.0, false);
  RunStatus rc = interp_run(ch, &b.h, &d);
  a.suspend = false;
  RunStatus rp = interp_run(st, &a.h, &d);
  tap_ok(rc == RUN_DONE && rp == RUN_DONE && interp_events(ch) == 4 && interp_events(st) == 4,
         "parent and particle both finish with 4 events (%s)", d.msg);
  tap_streq(val_to_string(out_of(in, st, "xs")), "[1, 1, 1, 1]", "parent's trajectory");
  tap_streq(val_to_string(out_of(in, ch, "xs")), "[1, 1, 5, 5]", "particle's trajectory: shared past, own future");
  tap_ok(b.nsample == 2 && strcmp(b.addr[0], "x[3]") == 0 && strcmp(b.addr[1], "x[4]") == 0,
         "the particle's latents keep their loop addresses x[3], x[4]");
  /* x[3] = 5 | x[2] = 1: y[3] = 1.5 and y[4] = 2 given x = 5 */
  double ll = -0.5 * (3.5 * 3.5) - LOG_SQRT_2PI - 0.5 * 9 - LOG_SQRT_2PI;
  tap_near(b.loglik, ll, 1e-12, "the particle's likelihood of y[3], y[4]");
}

/* *_rng builtins draw from the state's own stream: reproducible per (seed, stream). */
static void test_rng_streams(void) {
  Diag d;
  diag_init(&d);
  Interp *in = compile("model { }\ngenerated {\n  real r = normal_rng(0, 1);\n}\n", NULL, &d);
  tap_ok(in != NULL, "generated program compiles (%s)", d.msg);
  if (!in) return;
  double v[3];
  uint64_t streams[3] = {0, 0, 1};
  for (int k = 0; k < 3; k++) {
    InterpState *st = interp_start(in, 11, streams[k], true);
    Sim s;
    sim_init(&s, NAN, false);
    interp_run(st, &s.h, &d);
    v[k] = val_as_real(out_of(in, st, "r"));
  }
  tap_ok(v[0] == v[1] && isfinite(v[0]), "same seed and stream, same draw");
  tap_ok(v[0] != v[2], "another stream, another draw");
  InterpState *st = interp_start(in, 11, 0, true);
  InterpState *f1 = interp_fork(st, 11, 1);
  Sim s;
  sim_init(&s, NAN, false);
  interp_run(f1, &s.h, &d);
  tap_ok(val_as_real(out_of(in, f1, "r")) == v[2], "a fork draws from the stream it was given");
}

int main(void) {
  gc_init();
  test_eight_schools();
  test_control_and_functions();
  test_errors();
  test_addresses();
  test_observe_condition();
  test_particles();
  test_rng_streams();
  return tap_done();
}
