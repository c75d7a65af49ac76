/* test_nuts_core.c — the NUTS and static HMC samplers of nuts.c on analytic
 * targets (no program, no AD: the densities and gradients are written out
 * here), so that a failure points at the sampler or its warmup:
 *
 *   - standard normal in 1 and 100 dimensions, Gaussian with a strongly
 *     correlated 2-d covariance under the dense metric, a normal truncated by
 *     a hard wall (divergences at the wall, still the right answer), static
 *     HMC on a scaled normal: means within 4 MCSE, variances within 4 MCSE
 *     (of the squared deviations) and reasonable ESS;
 *   - tree-building invariants (2^d - 1 <= n_leapfrog < 2^(d+1), depth limit),
 *     mean acceptance statistic near adapt_delta after warmup, the adapted
 *     metric near the target's (co)variance, reproducibility from the seed;
 *   - step-size jitter (steps within the band, still correct) and the given
 *     step size used as it is without warmup.
 *
 * Exact answers are the targets' own moments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/diagnostics.h"
#include "inference/nuts.h"
#include "core/value.h"
#include "stdlib/rng.h"
#include "tests/tap.h"

/* ---- targets ---- */

typedef struct Gauss {
  size_t n;
  const double *prec; /* n*n precision matrix (NULL: diagonal with sd[]) */
  const double *sd;
  double wall;        /* lp = -inf for q[0] > wall (INFINITY: no wall) */
} Gauss;

static bool gauss_fn(void *ctx, const double *q, double *lp, double *g, Diag *d) {
  (void)d;
  const Gauss *t = ctx;
  if (q[0] > t->wall) {
    *lp = -INFINITY;
    for (size_t i = 0; i < t->n; i++) g[i] = 0;
    return true;
  }
  double s = 0;
  for (size_t i = 0; i < t->n; i++) {
    double gi = 0;
    if (t->prec)
      for (size_t j = 0; j < t->n; j++) gi -= t->prec[i * t->n + j] * q[j];
    else
      gi = -q[i] / (t->sd[i] * t->sd[i]);
    g[i] = gi;
    s += gi * q[i];
  }
  *lp = 0.5 * s;
  return true;
}

/* ---- running chains ---- */

typedef struct Run {
  int chains, draws;
  size_t n;
  double **x;   /* [chain * n + i] -> draws of coordinate i */
  double **x2;  /* squared deviations from the exact mean */
  long divergent, leapfrog_bad, depth_over;
  double accept_mean;
  double eps[8];
  const double *inv[8];
  double step_min, step_max; /* stepsize__ over the draws (of the last chain) */
} Run;

static Run run(Gauss *t, const EngineOpts *o, bool nuts, const double *mean) {
  Run r = {.chains = o->chains, .draws = o->draws, .n = t->n};
  r.x = calloc((size_t)o->chains * t->n, sizeof(double *));
  r.x2 = calloc((size_t)o->chains * t->n, sizeof(double *));
  double acc = 0;
  for (int c = 0; c < o->chains; c++) {
    Rng rng;
    rng_seed(&rng, o->seed, (uint64_t)c);
    double *q0 = calloc(t->n, sizeof(double));
    for (size_t i = 0; i < t->n; i++) q0[i] = 2 * (2 * rng_uniform(&rng) - 1);
    if (t->wall < INFINITY && q0[0] > t->wall) q0[0] = t->wall - 1;
    Diag d;
    diag_init(&d);
    Hmc *h = hmc_new(t->n, gauss_fn, t, o, nuts, &rng, q0, &d);
    if (!h) {
      tap_ok(0, "hmc_new: %s", d.msg);
      exit(1);
    }
    HmcStats s;
    for (int w = 0; w < o->warmup; w++) hmc_transition(h, true, &s, &d);
    for (size_t i = 0; i < t->n; i++) {
      r.x[c * t->n + i] = calloc((size_t)o->draws, sizeof(double));
      r.x2[c * t->n + i] = calloc((size_t)o->draws, sizeof(double));
    }
    for (int k = 0; k < o->draws; k++) {
      if (!hmc_transition(h, false, &s, &d)) {
        tap_ok(0, "transition: %s", d.msg);
        exit(1);
      }
      const double *q = hmc_position(h);
      for (size_t i = 0; i < t->n; i++) {
        r.x[c * t->n + i][k] = q[i];
        double dv = q[i] - (mean ? mean[i] : 0);
        r.x2[c * t->n + i][k] = dv * dv;
      }
      acc += s.accept_stat;
      r.divergent += s.divergent;
      if (nuts) {
        long lo = (1L << s.treedepth) - 1, hi = (1L << (s.treedepth + 1)) - 1;
        if (s.n_leapfrog < lo || s.n_leapfrog > hi) r.leapfrog_bad++;
        if (s.treedepth > engine_opt_int(o, "max-depth")) r.depth_over++;
      }
      /* jitter j: the transition's step is the nominal one times
         uniform(1 - j, 1 + j); without it, exactly the nominal one */
      double j = engine_opt_real(o, "stepsize-jitter"), e = hmc_stepsize(h);
      if (j == 0 ? s.stepsize != e : !(s.stepsize >= (1 - j) * e && s.stepsize <= (1 + j) * e))
        r.leapfrog_bad++;
      if (k == 0) r.step_min = r.step_max = s.stepsize;
      r.step_min = fmin(r.step_min, s.stepsize), r.step_max = fmax(r.step_max, s.stepsize);
    }
    if (c < 8) r.eps[c] = hmc_stepsize(h), r.inv[c] = hmc_inv_metric(h);
    free(q0);
  }
  r.accept_mean = acc / (o->chains * o->draws);
  return r;
}

/* draws of coordinate i of every chain */
static const double **coord(const Run *r, double **arr, size_t i) {
  const double **x = malloc(sizeof(double *) * (size_t)r->chains);
  for (int c = 0; c < r->chains; c++) x[c] = arr[c * r->n + i];
  return x;
}

/* Mean within 4 MCSE of want_mean, E[(x - mean)^2] within 4 MCSE of
 * want_var; returns the bulk ESS of the coordinate. */
static double check_moments(const Run *r, size_t i, double want_mean, double want_var,
                            const char *what, bool quiet) {
  const double **x = coord(r, r->x, i), **x2 = coord(r, r->x2, i);
  SummaryStats s, s2;
  diag_summarise(r->chains, r->draws, x, &s);
  diag_summarise(r->chains, r->draws, x2, &s2);
  bool ok_m = fabs(s.mean - want_mean) <= 4 * s.mcse;
  bool ok_v = fabs(s2.mean - want_var) <= 4 * s2.mcse;
  if (!quiet || !ok_m || !ok_v) {
    tap_ok(ok_m, "%s[%zu]: mean %.4f within 4 MCSE (%.4f) of %g", what, i, s.mean, s.mcse,
           want_mean);
    tap_ok(ok_v, "%s[%zu]: variance %.4f within 4 MCSE (%.4f) of %g", what, i, s2.mean, s2.mcse,
           want_var);
  }
  free(x), free(x2);
  return s.ess_bulk;
}

/* A sampler option by name, validated against hmc.c's tables. */
static void set_opt(EngineOpts *o, const char *name, const char *value) {
  Diag d;
  diag_init(&d);
  if (!engine_opts_set(o, name, value, &d)) tap_diag("set_opt: %s", d.msg);
}

static EngineOpts opts(int chains, int warmup, int draws, uint64_t seed) {
  EngineOpts o;
  memset(&o, 0, sizeof o);
  o.chains = chains, o.warmup = warmup, o.draws = draws, o.seed = seed, o.thin = 1;
  /* the sampler's own options (metric, max-depth, ...) keep their table defaults:
     diag, 10, adapt-delta 0.8, stepsize 1, int-time 2 pi */
  return o;
}

static void test_normal_1d(void) {
  double sd[1] = {1};
  Gauss t = {.n = 1, .sd = sd, .wall = INFINITY};
  EngineOpts o = opts(4, 1000, 1000, 11);
  Run r = run(&t, &o, true, NULL);
  double ess = check_moments(&r, 0, 0, 1, "normal 1-d", false);
  tap_ok(ess > 1500, "normal 1-d: bulk ESS %.0f > 1500 of 4000 draws", ess);
  tap_ok(r.leapfrog_bad == 0 && r.depth_over == 0, "normal 1-d: tree invariants hold");
  /* dual averaging aims at 0.8 during warmup; the averaged step kept after
     warmup is smaller, so in low dimensions the realised mean is higher (as in
     Stan, typically about 0.9) but never below the target */
  tap_ok(r.accept_mean > 0.78 && r.accept_mean < 0.99, "normal 1-d: mean accept_stat %.3f in (0.78, 0.99)",
         r.accept_mean);
  tap_ok(r.divergent == 0, "normal 1-d: no divergences");
  /* variance 1: the adapted inverse metric is near 1 */
  tap_ok(fabs(r.inv[0][0] - 1) < 0.3, "normal 1-d: inverse metric %.3f near 1", r.inv[0][0]);
}

static void test_normal_100d(void) {
  enum { N = 100 };
  double sd[N];
  for (int i = 0; i < N; i++) sd[i] = 1;
  Gauss t = {.n = N, .sd = sd, .wall = INFINITY};
  EngineOpts o = opts(2, 1000, 1000, 12);
  Run r = run(&t, &o, true, NULL);
  double min_ess = INFINITY;
  int bad = 0;
  for (size_t i = 0; i < N; i++) {
    int before = tap_failed_;
    double e = check_moments(&r, i, 0, 1, "normal 100-d", true);
    bad += tap_failed_ != before;
    if (e < min_ess) min_ess = e;
  }
  tap_ok(bad == 0, "normal 100-d: every coordinate's mean and variance within 4 MCSE");
  tap_ok(min_ess > 500, "normal 100-d: min bulk ESS %.0f > 500 of 2000 draws", min_ess);
  tap_ok(r.leapfrog_bad == 0 && r.divergent == 0, "normal 100-d: tree invariants, no divergences");
  tap_ok(r.eps[0] > 0.2 && r.eps[0] < 1.2, "normal 100-d: adapted step size %.3f plausible",
         r.eps[0]);
  tap_ok(r.accept_mean > 0.75 && r.accept_mean < 0.92,
         "normal 100-d: mean accept_stat %.3f near adapt_delta 0.8", r.accept_mean);
}

/* sd (1, 3), correlation 0.95: the dense metric must learn the covariance */
static void test_correlated_dense(void) {
  double s1 = 1, s2 = 3, rho = 0.95;
  double cov[4] = {s1 * s1, rho * s1 * s2, rho * s1 * s2, s2 * s2};
  double det = cov[0] * cov[3] - cov[1] * cov[2];
  double prec[4] = {cov[3] / det, -cov[1] / det, -cov[2] / det, cov[0] / det};
  Gauss t = {.n = 2, .prec = prec, .wall = INFINITY};
  EngineOpts o = opts(4, 1000, 1000, 13);
  set_opt(&o, "metric", "dense");
  Run r = run(&t, &o, true, NULL);
  double e0 = check_moments(&r, 0, 0, cov[0], "correlated dense", false);
  double e1 = check_moments(&r, 1, 0, cov[3], "correlated dense", false);
  tap_ok(e0 > 1000 && e1 > 1000, "correlated dense: bulk ESS %.0f, %.0f > 1000 of 4000", e0, e1);
  const double *inv = r.inv[0];
  bool close = true;
  for (int i = 0; i < 4; i++) close = close && fabs(inv[i] - cov[i]) < 0.3 * sqrt(cov[(i / 2) * 3] * cov[(i % 2) * 3]);
  tap_ok(close, "correlated dense: inverse metric [%.2f %.2f; %.2f %.2f] near the covariance",
         inv[0], inv[1], inv[2], inv[3]);
  /* the same target with the diagonal metric is still right, just slower */
  set_opt(&o, "metric", "diag");
  o.seed = 14;
  Run r2 = run(&t, &o, true, NULL);
  check_moments(&r2, 1, 0, cov[3], "correlated diag", false);
}

/* normal truncated at 0 by a wall: mean -sqrt(2/pi), E[x^2] = 1 (the
   squared deviations are taken from 0 here) */
static void test_wall(void) {
  double sd[1] = {1};
  Gauss t = {.n = 1, .sd = sd, .wall = 0};
  EngineOpts o = opts(4, 1000, 1000, 15);
  Run r = run(&t, &o, true, NULL);
  double m = -sqrt(2 / M_PI);
  check_moments(&r, 0, m, 1, "wall", false);
  tap_ok(r.divergent > 0, "wall: %ld divergent transitions detected", r.divergent);
}

static void test_static_hmc(void) {
  double sd[2] = {2, 0.5};
  Gauss t = {.n = 2, .sd = sd, .wall = INFINITY};
  EngineOpts o = opts(4, 1000, 1000, 16);
  Run r = run(&t, &o, false, NULL);
  check_moments(&r, 0, 0, 4, "static hmc", false);
  check_moments(&r, 1, 0, 0.25, "static hmc", false);
  tap_ok(r.accept_mean > 0.78 && r.accept_mean < 0.99, "static hmc: mean accept_stat %.3f in (0.78, 0.99)",
         r.accept_mean);
  tap_ok(fabs(r.inv[0][0] - 4) < 1.2 && fabs(r.inv[0][1] - 0.25) < 0.08,
         "static hmc: diagonal inverse metric %.3f, %.3f near 4, 0.25", r.inv[0][0], r.inv[0][1]);
}

static void test_unit_and_depth(void) {
  double sd[2] = {10, 0.1};
  Gauss t = {.n = 2, .sd = sd, .wall = INFINITY};
  EngineOpts o = opts(1, 200, 300, 17);
  set_opt(&o, "metric", "unit");
  set_opt(&o, "max-depth", "3");
  Run r = run(&t, &o, true, NULL);
  tap_ok(r.depth_over == 0 && r.leapfrog_bad == 0, "unit metric, max depth 3: depth never exceeds 3");
  tap_ok(r.inv[0][0] == 1 && r.inv[0][1] == 1, "unit metric stays unit");
}

static void test_reproducible(void) {
  double sd[3] = {1, 2, 3};
  Gauss t = {.n = 3, .sd = sd, .wall = INFINITY};
  EngineOpts o = opts(1, 150, 50, 99);
  Run a = run(&t, &o, true, NULL), b = run(&t, &o, true, NULL);
  bool same = true;
  for (size_t i = 0; i < 3; i++)
    for (int k = 0; k < 50; k++) same = same && a.x[i][k] == b.x[i][k];
  tap_ok(same, "same seed, same draws");
  o.seed = 100;
  Run c = run(&t, &o, true, NULL);
  tap_ok(c.x[0][49] != a.x[0][49], "another seed, other draws");
}

/* --stepsize-jitter: each transition's step varies around the nominal one
   (checked per draw in run()), and the sampler stays correct. */
static void test_jitter(void) {
  double sd[2] = {1, 3};
  Gauss t = {.n = 2, .sd = sd, .wall = INFINITY};
  EngineOpts o = opts(4, 500, 1000, 21);
  set_opt(&o, "stepsize-jitter", "0.5");
  Run r = run(&t, &o, true, NULL);
  check_moments(&r, 0, 0, 1, "jitter 0.5", false);
  check_moments(&r, 1, 0, 9, "jitter 0.5", false);
  tap_ok(r.leapfrog_bad == 0, "jitter 0.5: every step within [0.5, 1.5] x the nominal one");
  tap_ok(r.step_max / r.step_min > 2, "jitter 0.5: the steps spread (%.3g to %.3g)", r.step_min,
         r.step_max);
  set_opt(&o, "stepsize-jitter", "0");
  Run r0 = run(&t, &o, true, NULL);
  tap_ok(r0.step_min == r0.step_max, "no jitter: one step size after warmup");
}

/* Without warmup the given step size is used as it is (CmdStan with
   adaptation off): no search, no dual averaging. */
static void test_no_warmup_stepsize(void) {
  double sd[1] = {1};
  Gauss t = {.n = 1, .sd = sd, .wall = INFINITY};
  EngineOpts o = opts(1, 0, 20, 22);
  set_opt(&o, "stepsize", "0.0123");
  Run r = run(&t, &o, true, NULL);
  tap_ok(r.step_min == 0.0123 && r.step_max == 0.0123 && r.eps[0] == 0.0123,
         "warmup 0: stepsize__ is --stepsize throughout (%g to %g)", r.step_min, r.step_max);
  o.warmup = 100;
  Run a = run(&t, &o, true, NULL);
  tap_ok(a.eps[0] != 0.0123 && a.eps[0] > 0.1, "with warmup the step adapts away from it (%g)",
         a.eps[0]);
}

static void test_adaptation_text(void) {
  double sd[2] = {1, 2};
  Gauss t = {.n = 2, .sd = sd, .wall = INFINITY};
  EngineOpts o = opts(1, 100, 1, 5);
  Rng rng;
  rng_seed(&rng, 5, 0);
  double q0[2] = {0.1, -0.2};
  Diag d;
  diag_init(&d);
  Hmc *h = hmc_new(2, gauss_fn, &t, &o, true, &rng, q0, &d);
  HmcStats s;
  for (int i = 0; i < 100; i++) hmc_transition(h, true, &s, &d);
  const char *info = hmc_adaptation_info(h);
  char want[256];
  snprintf(want, sizeof want, "Adaptation terminated\nStep size = %g\nDiagonal elements of inverse mass matrix:\n%g, %g",
           hmc_stepsize(h), hmc_inv_metric(h)[0], hmc_inv_metric(h)[1]);
  tap_streq(info, want, "adaptation lines, diagonal metric");
  set_opt(&o, "metric", "dense");
  h = hmc_new(2, gauss_fn, &t, &o, true, &rng, q0, &d);
  for (int i = 0; i < 100; i++) hmc_transition(h, true, &s, &d);
  const double *m = hmc_inv_metric(h);
  snprintf(want, sizeof want, "Adaptation terminated\nStep size = %g\nElements of inverse mass matrix:\n%g, %g\n%g, %g",
           hmc_stepsize(h), m[0], m[1], m[2], m[3]);
  tap_streq(hmc_adaptation_info(h), want, "adaptation lines, dense metric");
  /* the step size used after warmup is the dual-averaging average, fixed */
  double e1 = hmc_stepsize(h);
  hmc_transition(h, false, &s, &d);
  hmc_transition(h, false, &s, &d);
  tap_ok(s.stepsize == e1 && hmc_stepsize(h) == e1, "step size frozen after warmup");
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  gc_init();
  test_normal_1d();
  test_normal_100d();
  test_correlated_dense();
  test_wall();
  test_static_hmc();
  test_unit_and_depth();
  test_reproducible();
  test_adaptation_text();
  test_jitter();
  test_no_warmup_stepsize();
  return tap_done();
}
