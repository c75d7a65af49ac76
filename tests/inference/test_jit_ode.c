/* test_jit_ode.c — ode_rk45 under the JIT: the right-hand side compiled to
 * native code with forward-mode Jacobians (ir/jit_ode.c), the solver the
 * interpreter's (stdlib/ode.c).
 *
 *   test_jit_ode EXAMPLES_DIR
 *
 * For each program: the right-hand side is compiled (ppl run --verbose's
 * listing says so); at random points the compiled log density equals the
 * interpreter's bit for bit (the same f, so the same steps and states) and
 * the gradient agrees to 1e-10; the gradient matches 5-point finite
 * differences of the log density (tight solver tolerances, where the step
 * control's reaction to the parameters is below the differences' error).
 * Programs: lotka_volterra of examples/posteriordb with its data (and a
 * tight-tolerance twin), a one-compartment pharmacokinetic model (local
 * vector declared and stored into, an int argument), an SIR model (a loop,
 * element-wise vector arithmetic, real[] and int[] data arguments, the
 * initial state a latent), a right-hand side with an `if` and a builtin of
 * two arguments.  A right-hand side outside what is compiled (a matrix
 * product) stays interpreted with the reason and gives the same numbers; one
 * that fails at some points (an index out of range) fails under the JIT
 * exactly where the interpreter does. */
#include <stdio.h>

#include "api/data.h"
#include "inference/logdensity.h"
#include "ppl_config.h"
#include "stdlib/rng.h"
#include "test_engines_util.h"

static bool close_to(double a, double b, double tol) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= tol * fmax(1, fmax(fabs(a), fabs(b)));
}

/* real x[n] (data arrays of reals) */
static Value treals(int n, const double *x) {
  Value v = val_arr(n);
  for (int i = 0; i < n; i++) v.a->e[i] = val_real(x[i]);
  return v;
}

static LogDensity *ld_from(const char *what, const char *src, DataSource *ds) {
  Diag d;
  diag_init(&d);
  Ast *a = parse_string(src, strlen(src), "test.ppl", &d);
  CheckedProgram *cp = a ? check_program(a, "test.ppl", 0, NULL, &d) : NULL;
  IrProgram *p = cp ? ir_lower(cp, &d) : NULL;
  Interp *in = p ? interp_new(p, NULL) : NULL;
  if (!tap_ok(in && interp_load_data(in, ds, &d), "%s: compiles with its data (%s)", what, d.msg))
    return NULL;
  LogDensity *ld = ld_new(in, &d);
  tap_ok(ld != NULL, "%s: a log density (%s)", what, d.msg);
  return ld;
}

/* 5-point central difference of the log density in coordinate i */
static double fd_partial(const LogDensity *ld, const double *theta, size_t i) {
  size_t n = ld_dim(ld);
  double *th = malloc(sizeof(double) * n), f[4];
  memcpy(th, theta, sizeof(double) * n);
  double h = 1e-3 * fmax(1, fabs(theta[i]));
  const double off[4] = {2, 1, -1, -2};
  for (int k = 0; k < 4; k++) {
    Diag d;
    diag_init(&d);
    th[i] = theta[i] + off[k] * h;
    if (!ld_eval(ld, th, &f[k], &d)) f[k] = NAN;
  }
  free(th);
  return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
}

/* compiled against interpreted at npoints random points (and against finite
   differences when fd_tol > 0); native: the right-hand side must be compiled */
static void ode_agrees(const char *what, const char *src, DataSource *ds, const char *sol_name,
                       double scale, bool native, double fd_tol) {
  LogDensity *ld = ld_from(what, src, ds);
  if (!ld) return;
  Diag d;
  diag_init(&d);
  LogDensity *lj = ld_new(ld_interp(ld), &d);
  bool used = lj && ld_use_jit(lj, false);
  if (!tap_ok(used, "%s: compiled (%s)", what, lj ? ld_backend(lj) : d.msg)) return;
  LdWork *w = ld_work_new(lj);
  const char *calls = ld_runtime_calls(lj);
  bool nat = calls && strstr(calls, "ode_rk45: runtime call (the solver; the right-hand side compiled)");
  tap_ok(nat == native, "%s: the right-hand side %s (%s)", what, native ? "compiled" : "interpreted",
         calls ? calls : "");
  size_t n = ld_dim(ld);
  Rng rng;
  rng_seed(&rng, 23, 3);
  double *theta = malloc(sizeof(double) * (n + 1)), *g = malloc(sizeof(double) * (n + 1));
  double *gj = malloc(sizeof(double) * (n + 1));
  for (int p = 0; p < 4; p++) {
    for (size_t i = 0; i < n; i++) theta[i] = scale * rng_normal(&rng);
    double lp = NAN, lpj = NAN;
    diag_init(&d);
    bool ok = ld_eval_grad(ld, theta, &lp, g, &d);
    bool okj = ld_eval_grad_jit(lj, theta, &lpj, gj);
    size_t wi = 0;
    bool same = ok && okj && close_to(lp, lpj, 1e-12) && isfinite(lp);
    for (size_t i = 0; i < n && same; i++)
      if (!close_to(gj[i], g[i], 1e-10)) {
        same = false;
        wi = i;
      }
    tap_ok(same, "%s: point %d: lp %.17g vs %.17g within 1e-12, %zu partials within 1e-10 "
                 "(first difference at %zu: %.17g vs %.17g) %s",
           what, p, lpj, lp, n, wi, gj[wi], g[wi], d.msg);
    /* the solution itself, an output of the draw (run by the compiled draw
       function, with its own native right-hand side): bit for bit */
    if (!sol_name) goto fd;
    Value *oj = ld_draw_jit(w, theta, 7, 0);
    diag_init(&d);
    Value *oi = ld_draw_interp(lj, theta, 7, 0, &d);
    int sol = toutput(ld_interp(ld), sol_name);
    bool bits = oj && oi && sol >= 0 && val_numel(oj[sol]) == val_numel(oi[sol]);
    if (bits) {
      size_t m = val_numel(oi[sol]);
      double *a = malloc(sizeof(double) * (m + 1)), *b = malloc(sizeof(double) * (m + 1));
      val_flatten(oi[sol], a);
      val_flatten(oj[sol], b);
      bits = memcmp(a, b, sizeof(double) * m) == 0;
      free(a), free(b);
    }
    tap_ok(bits, "%s: point %d: the solution '%s' equals the interpreter's bit for bit (%s)", what,
           p, sol_name, d.msg);
  fd:
    if (fd_tol <= 0 || p >= 2) continue;
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
      double fd = fd_partial(ld, theta, i);
      double e = fabs(fd - gj[i]) / fmax(1, fabs(fd));
      if (!(e <= worst)) {
        worst = e;
        at = i;
      }
    }
    tap_ok(worst <= fd_tol, "%s: point %d: compiled gradient within %g of finite differences "
                            "(worst %.3g at %zu)", what, p, fd_tol, worst, at);
  }
  ld_free(lj);
  free(theta), free(g), free(gj);
}

static const char *LV_TIGHT =
    "functions {\n"
    "  vector dz(real t, vector z, real[] th) {\n"
    "    real u = exp(z[1]);\n"
    "    real v = exp(z[2]);\n"
    "    return [th[1] - th[2] * v, -th[3] + th[4] * u]';\n"
    "  }\n"
    "}\n"
    "data { int N; real ts[N]; real y[N, 2]; }\n"
    "model {\n"
    "  real<lower=0> theta[4] ~ normal({1, 0.05, 1, 0.05}, {0.5, 0.05, 0.5, 0.05});\n"
    "  vector<lower=0>[2] z0 ~ lognormal(log(10), 1);\n"
    "  real<lower=0> sigma ~ lognormal(-1, 1);\n"
    "  vector[2] z[N] = ode_rk45_tol(dz, log(z0), 0, ts, 1e-10, 1e-10, 1000000, theta);\n"
    "  for (n in 1:N) for (k in 1:2) y[n, k] ~ lognormal(z[n][k], sigma);\n"
    "}\n";

/* one-compartment oral dosing: gut a, central c; dose from data */
static const char *PK =
    "functions {\n"
    "  vector pk(real t, vector y, real ka, real ke, int cmt) {\n"
    "    vector[2] dy;\n"
    "    dy[1] = -ka * y[1];\n"
    "    dy[cmt] = ka * y[1] - ke * y[2];\n"
    "    return dy;\n"
    "  }\n"
    "}\n"
    "data { int N; real ts[N]; vector[N] c; real dose; real V; }\n"
    "model {\n"
    "  real<lower=0> ka ~ lognormal(0, 0.5);\n"
    "  real<lower=0> ke ~ lognormal(-1.5, 0.5);\n"
    "  real<lower=0> sigma ~ normal(0, 0.5);\n"
    "  vector[2] y[N] = ode_rk45_tol(pk, [dose, 0]', 0, ts, 1e-10, 1e-10, 100000, ka, ke, 2);\n"
    "  for (n in 1:N) c[n] ~ lognormal(log(y[n][2] / V), sigma);\n"
    "}\n";

/* SIR over a population with a loop over compartments and element-wise
   vector arithmetic; the initial infected fraction is a latent */
static const char *SIR =
    "functions {\n"
    "  vector sir(real t, vector y, real beta, real gamma, real[] x_r, int[] x_i) {\n"
    "    int N = x_i[1];\n"
    "    real force = beta * y[1] * y[2] / N;\n"
    "    vector[3] flow = [force, gamma * y[2], 0]';\n"
    "    vector[3] dy;\n"
    "    for (k in 1:3) {\n"
    "      real loss = flow[k];\n"
    "      real gain = 0;\n"
    "      if (k > 1) gain = flow[k - 1];\n"
    "      dy[k] = gain - loss;\n"
    "    }\n"
    "    return dy * x_r[1] + 0 * y;\n"
    "  }\n"
    "}\n"
    "data { int T; real ts[T]; int cases[T]; int pop[1]; real scale[1]; }\n"
    "model {\n"
    "  real<lower=0> beta ~ lognormal(0, 0.5);\n"
    "  real<lower=0> gamma ~ lognormal(-1, 0.5);\n"
    "  real<lower=0, upper=1> i0 ~ beta(1, 20);\n"
    "  real<lower=0> phi ~ exponential(1);\n"
    "  vector[3] y0 = [pop[1] * (1 - i0), pop[1] * i0, 0]';\n"
    "  vector[3] y[T] = ode_rk45_tol(sir, y0, 0, ts, 1e-10, 1e-8, 100000, beta, gamma, scale, pop);\n"
    "  for (t in 1:T) cases[t] ~ neg_binomial_2(fmax(y[t][2], 1e-6), phi);\n"
    "}\n";

/* a branch and a two-argument builtin in the right-hand side */
static const char *BRANCH =
    "functions {\n"
    "  vector f(real t, vector y, vector k) {\n"
    "    vector[2] d;\n"
    "    real r = fmax(y[1], -10);\n"
    "    if (t < 1.5) d[1] = -k[1] * r; else d[1] = -k[1] * r * (2.5 - t);\n"
    "    d[2] = pow(k[2], 2) * (y[1] - y[2]);\n"
    "    return d;\n"
    "  }\n"
    "}\n"
    "data { real ts[4]; vector[4] obs; }\n"
    "model {\n"
    "  vector<lower=0>[2] k ~ lognormal(0, 0.5);\n"
    "  vector[2] y0 ~ normal(1, 0.2);\n"
    "  vector[2] y[4] = ode_rk45_tol(f, y0, 0, ts, 1e-10, 1e-10, 100000, k);\n"
    "  for (i in 1:4) obs[i] ~ normal(y[i][2], 0.3);\n"
    "}\n";

/* a matrix product is not compiled in a right-hand side: interpreted */
static const char *MATRIX =
    "functions {\n"
    "  vector lin(real t, vector y, matrix A) { return A * y; }\n"
    "}\n"
    "data { real ts[3]; }\n"
    "model {\n"
    "  real<lower=0> a ~ lognormal(0, 0.3);\n"
    "  matrix[2, 2] A = [[-a, 0.1], [0.2, -1]];\n"
    "  vector[2] y[3] = ode_rk45(lin, [1, 2]', 0, ts, A);\n"
    "  target += normal_lpdf(y[3][1] | 0.5, 0.2);\n"
    "}\n";

/* index k from data out of range once k > 2: fails exactly where the
   interpreter does */
static const char *FAILS =
    "functions {\n"
    "  vector f(real t, vector y, real a, int k) {\n"
    "    vector[2] d;\n"
    "    d[1] = -a * y[1];\n"
    "    d[2] = a * y[k];\n"
    "    if (y[1] < 0.5) d[2] = y[k + 1];\n"
    "    return d;\n"
    "  }\n"
    "}\n"
    "data { real ts[2]; }\n"
    "model {\n"
    "  real a ~ normal(0, 1);\n"
    "  vector[2] y[2] = ode_rk45(f, [1, 0]', 0, ts, a, 2);\n"
    "  target += -square(y[2][2]);\n"
    "}\n";

static void test_failures(void) {
  TData td;
  tdata_init(&td);
  const double ts[2] = {1, 2};
  tdata_add(&td, "ts", treals(2, ts));
  LogDensity *ld = ld_from("an index error in the right-hand side", FAILS, &td.src);
  if (!ld) return;
  Diag d;
  diag_init(&d);
  LogDensity *lj = ld_new(ld_interp(ld), &d);
  if (!tap_ok(lj && ld_use_jit(lj, false), "index error: compiled")) return;
  const char *calls = ld_runtime_calls(lj);
  tap_ok(calls && strstr(calls, "the right-hand side compiled"), "index error: the right-hand side compiled");
  /* a > 0 decays y[1] below 0.5 by t = 2 (a > 0.35): the interpreter fails */
  const double as[4] = {-0.3, 0.1, 0.9, 2.0};
  for (int p = 0; p < 4; p++) {
    double th = as[p], lp = NAN, lpj = NAN, g = NAN, gj = NAN;
    diag_init(&d);
    bool ok = ld_eval_grad(ld, &th, &lp, &g, &d);
    bool okj = ld_eval_grad_jit(lj, &th, &lpj, &gj);
    tap_ok(ok == okj && (!ok || (lp == lpj && close_to(g, gj, 1e-10))),
           "index error: a = %g: compiled %s where the interpreter %s (%s)", th,
           okj ? "succeeds" : "fails", ok ? "succeeds" : "fails", d.msg);
    if (!ok)
      tap_ok(strstr(d.msg, "index") != NULL, "index error: a = %g: the interpreter's message (%s)",
             th, d.msg);
    /* ld_eval_grad with the JIT on falls back and reports the same message */
    Diag dj;
    diag_init(&dj);
    bool okf = ld_eval_grad(lj, &th, &lpj, &gj, &dj);
    tap_ok(okf == ok && (ok || strcmp(d.msg, dj.msg) == 0),
           "index error: a = %g: the same message through the JIT (%s)", th, dj.msg);
  }
  ld_free(lj);
}

int main(int argc, char **argv) {
#if !PPL_HAVE_LLVM
  printf("1..0 # SKIP ppl was built without LLVM (-Djit=disabled)\n");
  return 0;
#endif
  if (argc < 2) {
    fprintf(stderr, "usage: test_jit_ode EXAMPLES_DIR\n");
    return 2;
  }
  char model[1024], data[1024];
  snprintf(model, sizeof model, "%s/posteriordb/hudson_lynx_hare-lotka_volterra.ppl", argv[1]);
  snprintf(data, sizeof data, "%s/posteriordb/hudson_lynx_hare-lotka_volterra.data.json", argv[1]);
  char *lv = read_text(model);
  Diag d;
  diag_init(&d);
  DataSource *ds = data_json_file(data, &d);
  if (tap_ok(lv && ds, "read %s and its data (%s)", model, d.msg)) {
    ode_agrees("lotka_volterra", lv, ds, NULL, 0.5, true, 0);
    ode_agrees("lotka_volterra, tolerances 1e-10", LV_TIGHT, ds, "z", 0.3, true, 1e-5);
  }

  TData td;
  tdata_init(&td);
  const double ts[6] = {0.5, 1, 2, 4, 8, 12}, c[6] = {2.1, 3.0, 3.3, 2.4, 1.0, 0.4};
  tdata_add(&td, "N", val_int(6));
  tdata_add(&td, "ts", treals(6, ts));
  tdata_add(&td, "c", tvec(6, c));
  tdata_add(&td, "dose", val_real(100));
  tdata_add(&td, "V", val_real(25));
  ode_agrees("one-compartment PK", PK, &td.src, "y", 0.5, true, 1e-5);

  TData ts2;
  tdata_init(&ts2);
  const double days[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const int cases[8] = {3, 7, 15, 30, 52, 70, 66, 50}, pop[1] = {763};
  const double sc1[1] = {1};
  Value sc = treals(1, sc1);
  tdata_add(&ts2, "T", val_int(8));
  tdata_add(&ts2, "ts", treals(8, days));
  tdata_add(&ts2, "cases", tints(8, cases));
  tdata_add(&ts2, "pop", tints(1, pop));
  tdata_add(&ts2, "scale", sc);
  ode_agrees("SIR", SIR, &ts2.src, "y", 0.3, true, 1e-5);

  TData tb;
  tdata_init(&tb);
  const double tb_ts[4] = {0.5, 1, 2, 3}, obs[4] = {0.3, 0.6, 0.7, 0.5};
  tdata_add(&tb, "ts", treals(4, tb_ts));
  tdata_add(&tb, "obs", tvec(4, obs));
  ode_agrees("a branch and pow", BRANCH, &tb.src, "y", 0.3, true, 1e-5);

  TData tm;
  tdata_init(&tm);
  const double tm_ts[3] = {0.5, 1, 2};
  tdata_add(&tm, "ts", treals(3, tm_ts));
  ode_agrees("a matrix product (interpreted)", MATRIX, &tm.src, "y", 0.3, false, 0);

  test_failures();
  return tap_done();
}
