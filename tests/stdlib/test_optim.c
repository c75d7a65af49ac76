/* test_optim.c — stdlib/optim.c: convergence on a closed-form quadratic, Adam's
 * bias-corrected first steps, SGD momentum / Nesterov / weight decay by hand,
 * gradient clipping, the schedules' rates, bit-for-bit determinism, and
 * Adam's two-at-a-time update against one coordinate at a time. */
#include <math.h>
#include <string.h>

#include "stdlib/optim.h"
#include "tap.h"

#define N 4
/* f = 1/2 (x-c)' A (x-c), A = diag(a): curvatures spanning two decades */
static const double A[N] = {0.5, 2.0, 10.0, 50.0};
static const double C[N] = {1.0, -2.0, 0.25, 3.0};

static void quad_grad(const double *x, double *g) {
  for (int i = 0; i < N; i++) g[i] = A[i] * (x[i] - C[i]);
}

static double max_err(const double *x) {
  double e = 0;
  for (int i = 0; i < N; i++) e = fmax(e, fabs(x[i] - C[i]));
  return e;
}

static void run(const OptimConfig *c, long steps, double *x) {
  Optim *o = optim_new(c, N);
  double g[N];
  for (int i = 0; i < N; i++) x[i] = 0;
  for (long s = 0; s < steps; s++) {
    quad_grad(x, g);
    optim_step(o, x, g);
  }
  optim_free(o);
}

static void test_converge(void) {
  double x[N];
  OptimConfig c;
  optim_config_default(&c, OPTIM_ADAM);
  tap_ok(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8, "adam defaults");
  /* Adam's constant-rate steps hover at a scale of lr around the optimum: an
   * exponential decay lets it settle */
  c.lr = 0.05;
  c.sched = OPTIM_SCHED_EXP;
  c.gamma = 0.999;
  run(&c, 20000, x);
  tap_ok(max_err(x) < 1e-6, "adam reaches c (max err %.3g)", max_err(x));

  optim_config_default(&c, OPTIM_SGD);
  tap_ok(c.lr == 1e-2 && c.momentum == 0.9 && !c.nesterov, "sgd defaults");
  run(&c, 5000, x);
  tap_ok(max_err(x) < 1e-6, "sgd+momentum reaches c (max err %.3g)", max_err(x));
  c.nesterov = true;
  run(&c, 5000, x);
  tap_ok(max_err(x) < 1e-6, "nesterov reaches c (max err %.3g)", max_err(x));
  c.momentum = 0;
  c.nesterov = false;
  c.lr = 0.03; /* < 2/50: stable for the stiffest coordinate */
  run(&c, 20000, x);
  tap_ok(max_err(x) < 1e-6, "plain sgd reaches c (max err %.3g)", max_err(x));
}

static void test_adam_first_steps(void) {
  OptimConfig c;
  optim_config_default(&c, OPTIM_ADAM);
  c.lr = 0.01;
  c.eps = 0;
  Optim *o = optim_new(&c, N);
  double x[N] = {0, 0, 0, 0}, g1[N] = {3.0, -1e-4, 250.0, -7.5}, g2[N] = {-1.0, 2.0, 250.0, 0.5};
  optim_step(o, x, g1);
  int ok = 1;
  for (int i = 0; i < N; i++) ok &= fabs(x[i] - (-0.01 * (g1[i] > 0 ? 1 : -1))) < 1e-17;
  tap_ok(ok, "adam step 1 moves every coordinate by lr * sign(g)");
  tap_ok(optim_steps(o) == 1, "one step counted");
  double x1[N];
  memcpy(x1, x, sizeof x);
  optim_step(o, x, g2);
  ok = 1;
  for (int i = 0; i < N; i++) {
    /* by hand: m2 = .9*.1 g1 + .1 g2, v2 = .999*.001 g1^2 + .001 g2^2,
     * corrected by 1 - .9^2 = .19 and 1 - .999^2 = .001999 */
    double m = 0.09 * g1[i] + 0.1 * g2[i], v = 0.000999 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i];
    double want = x1[i] - 0.01 * (m / 0.19) / sqrt(v / 0.001999);
    ok &= fabs(x[i] - want) <= 1e-14;
  }
  tap_ok(ok, "adam step 2 equals the bias-corrected update");
  optim_free(o);
}

/* Adam's update as optim.c documents it, one coordinate at a time: optim.c
   does two at a time (SSE2) and must give the same bits, the tail included */
static void test_adam_bits(void) {
  enum { M = 37, STEPS = 50 };
  OptimConfig c;
  optim_config_default(&c, OPTIM_ADAM);
  c.lr = 0.02, c.weight_decay = 0.01, c.clip_norm = 3;
  Optim *o = optim_new(&c, M);
  double x[M], y[M], m[M] = {0}, v[M] = {0}, g[M];
  unsigned long long r = 12345;
  for (int i = 0; i < M; i++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = y[i] = (double)(r >> 11) * 0x1.0p-53 - 0.5;
  }
  for (int t = 1; t <= STEPS; t++) {
    double ss = 0;
    for (int i = 0; i < M; i++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      g[i] = ((double)(r >> 11) * 0x1.0p-53 - 0.5) * (i % 5 ? 1 : 1e-12);
      double gd = g[i] + c.weight_decay * y[i];
      ss += gd * gd;
    }
    double scale = sqrt(ss) > c.clip_norm ? c.clip_norm / sqrt(ss) : 1;
    double bc1 = 1 - pow(c.beta1, t), bc2 = 1 - pow(c.beta2, t);
    for (int i = 0; i < M; i++) {
      double gi = (g[i] + c.weight_decay * y[i]) * scale;
      m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi;
      v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi;
      double mh = m[i] / bc1, vh = v[i] / bc2;
      y[i] -= c.lr * mh / (sqrt(vh) + c.eps);
    }
    optim_step(o, x, g);
  }
  bool same = memcmp(x, y, sizeof x) == 0 && memcmp(optim_moment(o, 0), m, sizeof m) == 0 &&
         memcmp(optim_moment(o, 1), v, sizeof v) == 0;
  tap_ok(same, "adam: %d steps of %d coordinates (weight decay, clipping) bit for bit as the "
               "update one coordinate at a time", STEPS, M);
  optim_free(o);
}

static void test_sgd_by_hand(void) {
  OptimConfig c;
  optim_config_default(&c, OPTIM_SGD);
  c.lr = 0.1;
  c.momentum = 0.5;
  c.weight_decay = 0.2;
  Optim *o = optim_new(&c, 1);
  double x = 1.0, g = 3.0;
  optim_step(o, &x, &g); /* g' = 3 + .2*1 = 3.2; v = 3.2; x = 1 - .32 */
  tap_near(x, 0.68, 1e-15, "sgd step 1 with weight decay");
  optim_step(o, &x, &g); /* g' = 3 + .136 = 3.136; v = 1.6 + 3.136 = 4.736 */
  tap_near(x, 0.68 - 0.4736, 1e-14, "sgd step 2: momentum buffer");
  optim_free(o);

  c.nesterov = true;
  c.weight_decay = 0;
  o = optim_new(&c, 1);
  x = 1.0;
  optim_step(o, &x, &g); /* v = 3; step g + .5 v = 4.5 */
  tap_near(x, 1 - 0.45, 1e-15, "nesterov step 1");
  optim_step(o, &x, &g); /* v = 1.5 + 3 = 4.5; step 3 + 2.25 = 5.25 */
  tap_near(x, 0.55 - 0.525, 1e-14, "nesterov step 2");
  optim_free(o);
}

static void test_clip(void) {
  OptimConfig c;
  optim_config_default(&c, OPTIM_SGD);
  c.lr = 1;
  c.momentum = 0;
  c.clip_norm = 1;
  Optim *o = optim_new(&c, 2);
  double x[2] = {0, 0}, g[2] = {3, -4}; /* norm 5 */
  optim_step(o, x, g);
  tap_ok(fabs(hypot(x[0], x[1]) - 1) < 1e-15, "clipped step has norm clip_norm (%.17g)", hypot(x[0], x[1]));
  tap_ok(fabs(x[0] + 0.6) < 1e-15 && fabs(x[1] - 0.8) < 1e-15, "clipping keeps the direction");
  tap_ok(g[0] == 3 && g[1] == -4, "the gradient is not modified");
  double small[2] = {0.3, 0.4}; /* norm .5: under the cap, untouched */
  x[0] = x[1] = 0;
  optim_step(o, x, small);
  tap_ok(x[0] == -0.3 && x[1] == -0.4, "a gradient under the cap is not scaled");
  optim_free(o);
  /* Adam's step-1 size ignores the gradient's scale, so check the moments saw
   * the clipped gradient: step 2 with the same g matches an unclipped run on g/5 */
  optim_config_default(&c, OPTIM_ADAM);
  c.clip_norm = 1;
  Optim *a = optim_new(&c, 2);
  c.clip_norm = 0;
  Optim *b = optim_new(&c, 2);
  double xa[2] = {0, 0}, xb[2] = {0, 0}, g5[2] = {0.6, -0.8}, h[2] = {0.1, 0.1};
  optim_step(a, xa, g);
  optim_step(b, xb, g5);
  optim_step(a, xa, h);
  optim_step(b, xb, h);
  tap_ok(xa[0] == xb[0] && xa[1] == xb[1], "adam's moments use the clipped gradient");
  optim_free(a);
  optim_free(b);
}

static double lr_at(const OptimConfig *c, long t) {
  Optim *o = optim_new(c, 1);
  double x = 0, g = 0;
  for (long s = 0; s < t; s++) optim_step(o, &x, &g);
  double lr = optim_lr(o);
  optim_free(o);
  return lr;
}

static void test_schedules(void) {
  OptimConfig c;
  optim_config_default(&c, OPTIM_SGD);
  c.lr = 0.1;
  tap_ok(lr_at(&c, 0) == 0.1 && lr_at(&c, 77) == 0.1, "constant");
  c.sched = OPTIM_SCHED_STEP;
  c.gamma = 0.5;
  c.step_every = 10;
  tap_ok(lr_at(&c, 0) == 0.1 && lr_at(&c, 9) == 0.1, "step: unchanged before step_every");
  tap_near(lr_at(&c, 10), 0.05, 1e-15, "step: halved at 10");
  tap_near(lr_at(&c, 25), 0.025, 1e-15, "step: quartered at 25");
  c.sched = OPTIM_SCHED_EXP;
  c.gamma = 0.9;
  tap_near(lr_at(&c, 3), 0.1 * 0.729, 1e-15, "exp: gamma^3");
  c.sched = OPTIM_SCHED_COSINE;
  c.horizon = 100;
  c.lr_min = 0.001;
  tap_near(lr_at(&c, 0), 0.1, 1e-15, "cosine: lr at 0");
  tap_near(lr_at(&c, 50), 0.0505, 1e-15, "cosine: midpoint at horizon/2");
  tap_near(lr_at(&c, 25), 0.001 + 0.099 * (1 + sqrt(0.5)) / 2, 1e-14, "cosine: quarter");
  tap_near(lr_at(&c, 100), 0.001, 1e-15, "cosine: lr_min at the horizon");
  tap_near(lr_at(&c, 150), 0.001, 1e-15, "cosine: stays at lr_min after");

  /* the schedule drives the step: SGD without momentum moves by lr * g */
  c.sched = OPTIM_SCHED_STEP;
  c.gamma = 0.5;
  c.momentum = 0;
  Optim *o = optim_new(&c, 1);
  double x = 0, g = 1;
  for (int s = 0; s < 10; s++) optim_step(o, &x, &g);
  double before = x;
  optim_step(o, &x, &g);
  tap_near(before - x, 0.05, 1e-14, "step 11 uses the decayed rate");
  optim_free(o);
}

static void test_determinism(void) {
  OptimConfig c;
  optim_config_default(&c, OPTIM_ADAM);
  c.lr = 0.05;
  c.clip_norm = 3;
  c.weight_decay = 1e-3;
  double a[N], b[N];
  run(&c, 500, a);
  run(&c, 500, b);
  tap_ok(memcmp(a, b, sizeof a) == 0, "adam: same inputs, same bits");
  optim_config_default(&c, OPTIM_SGD);
  c.nesterov = true;
  run(&c, 500, a);
  run(&c, 500, b);
  tap_ok(memcmp(a, b, sizeof a) == 0, "sgd: same inputs, same bits");
}

int main(void) {
  test_converge();
  test_adam_first_steps();
  test_adam_bits();
  test_sgd_by_hand();
  test_clip();
  test_schedules();
  test_determinism();
  return tap_done();
}
