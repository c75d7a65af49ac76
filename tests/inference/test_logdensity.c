/* test_logdensity.c — the log density on the unconstrained vector: values
 * against log densities written out by hand in gen_engines_reference.py
 * (Jacobians of the log, logit and stick-breaking maps included), the
 * constrain/unconstrain round trip, CmdStan element names and order, errors
 * for dynamic and discrete programs and for failed parameter checks,
 * concurrent evaluation from two threads, ld_jit_pays's choice, and
 * batches of points (ld_eval_batch) against one point at a time. */
#include <pthread.h>

#include "engines_reference.h"
#include "inference/logdensity.h"
#include "test_engines_util.h"

static const char *SRC_G =
    "data { int N; vector[N] y; }\n"
    "model {\n"
    "  real mu ~ normal(1, 2);\n"
    "  real<lower=0> sigma ~ lognormal(0, 1);\n"
    "  y ~ normal(mu, sigma);\n"
    "}\n";

/* Model G with the n points y. */
static Interp *model_g(int n, const double *y, Diag *d) {
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(n));
  tdata_add(&td, "y", tvec(n, y));
  return tcompile(SRC_G, &td, d);
}

static void test_normal_model(LogDensity **keep) {
  Diag d;
  Interp *in = model_g(5, A_y, &d);
  if (!tap_ok(in != NULL, "model G compiles")) return;
  LogDensity *ld = ld_new(in, &d);
  if (!tap_ok(ld != NULL, "ld_new: %s", d.msg)) return;
  *keep = ld;
  tap_ok(ld_dim(ld) == 2 && ld_num_constrained(ld) == 2, "dims 2 and 2");
  const char *const *names = ld_param_names(ld);
  tap_streq(names[0], "mu", "name 1");
  tap_streq(names[1], "sigma", "name 2");
  for (int k = 0; k < 3; k++) {
    double lp = NAN;
    diag_init(&d);
    bool ok = ld_eval(ld, G_theta + 2 * k, &lp, &d);
    tap_ok(ok, "ld_eval point %d %s", k, d.msg);
    tap_near(lp, G_lp[k], 1e-11, "log density with Jacobian at point %d", k);
  }
  double x[2], th[2];
  ld_constrain(ld, G_theta + 2, x, &d);
  tap_near(x[0], -1.0, 1e-15, "constrain: mu unchanged");
  tap_near(x[1], exp(0.5), 1e-14, "constrain: sigma = exp(theta)");
  tap_ok(ld_unconstrain(ld, x, th, &d), "unconstrain");
  tap_near(th[1], 0.5, 1e-14, "round trip sigma");
  double bad[2] = {0, -1};
  diag_init(&d);
  tap_ok(!ld_unconstrain(ld, bad, th, &d) && strstr(d.msg, "sigma") != NULL,
         "unconstrain outside the constraint: %s", d.msg);
}

static void test_simplex_and_bounds(void) {
  TData td;
  tdata_init(&td);
  tdata_add(&td, "alpha", tvec(3, F_alpha));
  Diag d;
  Interp *in = tcompile("data { vector[3] alpha; }\n"
                        "model {\n"
                        "  real<lower=-1, upper=2> a ~ uniform(-1, 2);\n"
                        "  simplex[3] th ~ dirichlet(alpha);\n"
                        "}\n",
                        &td, &d);
  if (!tap_ok(in != NULL, "model H compiles")) return;
  LogDensity *ld = ld_new(in, &d);
  if (!tap_ok(ld != NULL, "ld_new: %s", d.msg)) return;
  tap_ok(ld_dim(ld) == 3 && ld_num_constrained(ld) == 4, "simplex[3] has 2 free coordinates");
  const char *const *names = ld_param_names(ld);
  tap_streq(names[1], "th.1", "simplex names th.1");
  tap_streq(names[3], "th.3", "simplex names th.3");
  for (int k = 0; k < 2; k++) {
    double lp = NAN, x[4], th[3];
    diag_init(&d);
    ld_eval(ld, H_theta + 3 * k, &lp, &d);
    tap_near(lp, H_lp[k], 1e-11, "lower-upper + simplex log density at point %d %s", k, d.msg);
    ld_constrain(ld, H_theta + 3 * k, x, &d);
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= fabs(x[i] - H_x[4 * k + i]) < 1e-13;
    tap_ok(ok, "constrain point %d: a = %g, th = (%g, %g, %g)", k, x[0], x[1], x[2], x[3]);
    ld_unconstrain(ld, H_x + 4 * k, th, &d);
    ok = 1;
    for (int i = 0; i < 3; i++) ok &= fabs(th[i] - H_theta[3 * k + i]) < 1e-10;
    tap_ok(ok, "unconstrain round trip point %d", k);
  }
}

static void test_order_and_loops(void) {
  Diag d;
  Interp *in = tcompile("model {\n"
                        "  real w[2, 3] ~ normal(0, 1);\n"
                        "  for (i in 1:2) { real z ~ normal(0, 1); }\n"
                        "}\n",
                        NULL, &d);
  if (!tap_ok(in != NULL, "array model compiles")) return;
  LogDensity *ld = ld_new(in, &d);
  if (!tap_ok(ld != NULL, "ld_new: %s", d.msg)) return;
  tap_ok(ld_dim(ld) == 8 && ld_num_constrained(ld) == 8, "8 reals");
  const char *const *nm = ld_param_names(ld);
  const char *want[8] = {"w.1.1", "w.2.1", "w.1.2", "w.2.2", "w.1.3", "w.2.3", "z.1", "z.2"};
  int ok = 1;
  for (int i = 0; i < 8; i++) ok &= strcmp(nm[i], want[i]) == 0;
  tap_ok(ok, "CmdStan names, first index fastest; loop addresses z[1] -> z.1 (%s %s %s)", nm[1],
         nm[2], nm[6]);
  double theta[8] = {0, 1, 2, 3, 4, 5, 6, 7}, x[8], back[8];
  ld_constrain(ld, theta, x, &d);
  const double xw[8] = {0, 3, 1, 4, 2, 5, 6, 7};
  ok = 1;
  for (int i = 0; i < 8; i++) ok &= x[i] == xw[i];
  tap_ok(ok, "theta row-major, x column-major: x = %g %g %g %g %g %g", x[0], x[1], x[2], x[3],
         x[4], x[5]);
  ld_unconstrain(ld, x, back, &d);
  tap_ok(memcmp(back, theta, sizeof theta) == 0, "round trip through x");
  double lp;
  ld_eval(ld, theta, &lp, &d);
  double want_lp = 0;
  for (int i = 0; i < 8; i++) want_lp += -0.91893853320467274178 - theta[i] * theta[i] / 2;
  tap_near(lp, want_lp, 1e-12, "log density sums all eight");
}

static void test_errors(void) {
  Diag d;
  TData te;
  tdata_init(&te);
  tdata_add(&te, "y", val_real(E_Y));
  Interp *in = tcompile("data { real y; }\n"
                        "model {\n"
                        "  int K = 1;\n"
                        "  int go = 1;\n"
                        "  while (go == 1) { int c ~ bernoulli(0.4); go = c; K = K + c; }\n"
                        "  real s = 0;\n"
                        "  for (i in 1:K) { real x ~ normal(0, 1); s = s + x; }\n"
                        "  y ~ normal(s, 1);\n"
                        "}\n",
                        &te, &d);
  if (in) {
    diag_init(&d);
    tap_ok(ld_new(in, &d) == NULL &&
               strncmp(d.msg,
                       "log density on an unconstrained vector needs a fixed-structure program: ",
                       72) == 0,
           "dynamic program refused: %s", d.msg);
  }
  in = tcompile("model { int z ~ bernoulli(0.3); real m ~ normal(z, 1); }\n", NULL, &d);
  if (in) {
    diag_init(&d);
    tap_ok(ld_new(in, &d) == NULL &&
               strstr(d.msg, "needs continuous latents: 'z' is discrete") != NULL,
           "discrete latent refused: %s", d.msg);
  }
  in = tcompile("model { real s ~ normal(0, 1); real x ~ normal(0, s); }\n", NULL, &d);
  if (in) {
    diag_init(&d);
    LogDensity *ld = ld_new(in, &d);
    double theta[2] = {-1, 0}, lp;
    diag_init(&d);
    tap_ok(ld && !ld_eval(ld, theta, &lp, &d) && d.code == DIAG_RUNTIME &&
               strstr(d.msg, "sigma") != NULL,
           "failed parameter check is an error: %s", d.msg);
  }
}

/* ld_eval_batch against ld_eval point by point: a GLM whose X * beta the
   compiled batch makes as one matrix product (70 points: two batches of 32
   and a remainder), points where the scale's check fails among them (-inf,
   the message kept), interpreted (the same bits) and compiled (to 1e-12). */
static void test_batch(void) {
  enum { N = 300, K = 20, S = 70 };
  Diag d;
  TData td;
  tdata_init(&td);
  Value X = val_mat(N, K), y = val_vec(N);
  uint64_t st = 0x5eed;
  for (int i = 0; i < N * K; i++) {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    X.t->d[i] = (double)(st >> 11) * 0x1.0p-53 - 0.5;
  }
  for (int i = 0; i < N; i++) y.t->d[i] = 0.01 * (i % 17) - 0.08;
  tdata_add(&td, "N", val_int(N));
  tdata_add(&td, "K", val_int(K));
  tdata_add(&td, "X", X);
  tdata_add(&td, "y", y);
  const char *src = "data { int N; int K; matrix[N, K] X; vector[N] y; }\n"
                    "model {\n"
                    "  real alpha ~ normal(0, 2);\n"
                    "  vector[K] beta ~ normal(0, 1);\n"
                    "  real s ~ normal(1, 1);\n"
                    "  y ~ normal(alpha + X * beta, s);\n"
                    "}\n";
  for (int jit = 0; jit < 2; jit++) {
    Interp *in = tcompile(src, &td, &d);
    LogDensity *ld = in ? ld_new(in, &d) : NULL;
    if (!tap_ok(ld != NULL, "batch model: %s", d.msg)) return;
    if (jit && !ld_use_jit(ld, false)) {
      tap_diag("batch: not compiled, %s", ld_backend(ld));
      continue;
    }
    size_t n = ld_dim(ld);
    double *th = gc_alloc_atomic(sizeof(double) * n * S), lp[S], one[S];
    for (int p = 0; p < S; p++)
      for (size_t i = 0; i < n; i++)
        th[(size_t)p * n + i] = i + 1 < n ? 0.2 * sin(1.7 * (double)p + 0.9 * (double)i)
                                          : 0.5 + 0.1 * (double)(p % 5); /* s */
    th[5 * n + n - 1] = -0.5, th[40 * n + n - 1] = -1; /* s < 0: its check fails */
    Diag fail, e;
    diag_init(&fail);
    diag_init(&d);
    bool ok = ld_eval_batch(ld_work_new(ld), S, th, lp, &fail, &d);
    double worst = 0;
    int agree = 0, failed = 0;
    for (int p = 0; p < S && ok; p++) {
      diag_init(&e);
      if (!ld_eval(ld, th + (size_t)p * n, &one[p], &e)) {
        failed += lp[p] == -INFINITY;
        continue;
      }
      double r = fabs(lp[p] - one[p]) / fmax(1, fabs(one[p]));
      worst = fmax(worst, r);
      agree += jit ? r <= 1e-12 : memcmp(&lp[p], &one[p], sizeof(double)) == 0;
    }
    tap_ok(ok && agree == S - 2 && failed == 2,
           "%s: %d points as one batch agree with one at a time (%d of %d; worst %.2g), the "
           "2 failed checks are -inf (%d)",
           jit ? "compiled" : "interpreted", S, agree, S - 2, worst, failed);
    tap_ok(fail.code == DIAG_RUNTIME && strstr(fail.msg, "normal") != NULL,
           "%s: the failed check's message is kept: %s", jit ? "compiled" : "interpreted",
           fail.msg);
  }
}

typedef struct ThreadArg {
  const LogDensity *ld;
  double sum;
} ThreadArg;

static void eval_loop(ThreadArg *a) {
  for (int i = 0; i < 300; i++) {
    double th[2] = {0.01 * i, -0.005 * i}, lp = 0;
    Diag d;
    diag_init(&d);
    ld_eval(a->ld, th, &lp, &d);
    a->sum += lp;
  }
}

static void *eval_thread(void *p) {
  gc_thread_enter();
  eval_loop(p);
  gc_thread_leave();
  return NULL;
}

static void test_threads(const LogDensity *ld) {
  if (!ld) return;
  ThreadArg serial = {ld, 0}, a = {ld, 0}, b = {ld, 0};
  eval_loop(&serial);
  pthread_t t1, t2;
  pthread_create(&t1, NULL, eval_thread, &a);
  pthread_create(&t2, NULL, eval_thread, &b);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  tap_ok(a.sum == serial.sum && b.sum == serial.sum,
         "two threads evaluating at once agree with the serial result");
}

/* ld_jit_pays: a small vectorised program is not worth compiling for a
   thousand evaluations but is for a million; a loop of 2,000 statements is
   worth it for a thousand; the estimate sees the data's size. */
static void test_jit_pays(void) {
  Diag d;
  Interp *in = model_g(5, A_y, &d);
  LogDensity *ld = in ? ld_new(in, &d) : NULL;
  if (!tap_ok(ld != NULL, "model G for ld_jit_pays")) return;
  tap_ok(!ld_jit_pays(ld, 1000), "a small vectorised program: 1,000 evaluations interpreted");
  tap_ok(ld_jit_pays(ld, 1e6), "... a million compiled");
  in = tcompile("model { real x ~ normal(0, 1); for (i in 1:2000) target += -0.5 * x * x; }\n",
                NULL, &d);
  ld = in ? ld_new(in, &d) : NULL;
  if (!tap_ok(ld != NULL, "loop program for ld_jit_pays")) return;
  tap_ok(ld_jit_pays(ld, 1000), "a loop of 2,000 statements: 1,000 evaluations compiled");
  tap_ok(!ld_jit_pays(ld, 10), "... 10 interpreted");
  double *y = calloc(100000, sizeof *y);
  in = model_g(100000, y, &d);
  ld = in ? ld_new(in, &d) : NULL;
  free(y);
  if (!tap_ok(ld != NULL, "model G with 100,000 points")) return;
  tap_ok(ld_jit_pays(ld, 1000), "100,000 data points: 1,000 evaluations compiled");
}

int main(void) {
  gc_init();
  test_jit_pays();
  LogDensity *ld = NULL;
  test_normal_model(&ld);
  test_simplex_and_bounds();
  test_order_and_loops();
  test_errors();
  test_batch();
  test_threads(ld);
  return tap_done();
}
