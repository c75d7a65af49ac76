/* test_ode.c — the Dormand–Prince solver of stdlib/ode.c on its own.
 *
 * References are independent of the code under test: closed forms
 * (exponential decay, the harmonic oscillator, with their derivatives), and
 * the Lotka-Volterra system with all its sensitivities integrated by mpmath's
 * Taylor-series solver at 30 digits (ode_reference.h, from
 * gen_ode_reference.py).  Also: tolerances are honoured and cost what they
 * should, states do not depend on whether sensitivities ride along, and
 * every failure has a clear message.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "core/value.h"
#include "ode_reference.h"
#include "stdlib/ode.h"

/* ---- test systems ----------------------------------------------------------- */

typedef struct Sys {
  double p[4];
  long calls;
  int fail_at; /* fail on this call (0 = never) */
} Sys;

/* y' = -k y (one state); p[0] = k */
static bool decay(void *ctx, double t, const double *y, double *dy, double *jy, double *jp,
                  char *err, size_t errsz) {
  Sys *s = ctx;
  s->calls++;
  dy[0] = -s->p[0] * y[0];
  if (jy) {
    jy[0] = -s->p[0];
    jp[0] = -y[0];
  }
  return true;
}

/* y1' = y2, y2' = -w^2 y1; p[0] = w */
static bool oscillator(void *ctx, double t, const double *y, double *dy, double *jy, double *jp,
                       char *err, size_t errsz) {
  Sys *s = ctx;
  s->calls++;
  double w = s->p[0];
  dy[0] = y[1];
  dy[1] = -w * w * y[0];
  if (jy) {
    jy[0] = 0, jy[1] = -w * w, jy[2] = 1, jy[3] = 0; /* column-major */
    jp[0] = 0, jp[1] = -2 * w * y[0];
  }
  return true;
}

/* Lotka-Volterra, p = (a, b, c, d) */
static bool lotka(void *ctx, double t, const double *y, double *dy, double *jy, double *jp,
                  char *err, size_t errsz) {
  Sys *s = ctx;
  s->calls++;
  if (s->fail_at && s->calls == s->fail_at) {
    snprintf(err, errsz, "rhs failed on purpose");
    return false;
  }
  double a = s->p[0], b = s->p[1], c = s->p[2], d = s->p[3], u = y[0], v = y[1];
  dy[0] = (a - b * v) * u;
  dy[1] = (-c + d * u) * v;
  if (jy) {
    jy[0] = a - b * v, jy[1] = d * v, jy[2] = -b * u, jy[3] = -c + d * u;
    double J[8] = {u, 0, -u * v, 0, 0, -v, 0, u * v};
    memcpy(jp, J, sizeof J);
  }
  return true;
}

/* y' = y^2, y(0) = 1: y = 1 / (1 - t) blows up at t = 1 */
static bool blowup(void *ctx, double t, const double *y, double *dy, double *jy, double *jp,
                   char *err, size_t errsz) {
  dy[0] = y[0] * y[0];
  return true;
}

static OdeOptions opts(double rtol, double atol, long max_steps) {
  OdeOptions o = {rtol, atol, max_steps};
  return o;
}

/* ---- closed forms ----------------------------------------------------------- */

static void test_decay(void) {
  Sys s = {{0.7}, 0, 0};
  double ts[] = {0.5, 1, 3, 10}, y0 = 2;
  /* sensitivities to k (forced by jp column 0) and to y0 (S(0) = 1) */
  double s0[2] = {0, 1};
  int pcol[2] = {0, -1};
  OdeSystem sys = {1, decay, &s, 1, 2, s0, pcol};
  double y[4], S[8];
  char err[256];
  OdeOptions o = opts(1e-10, 1e-10, 100000);
  bool ok = ode_rk45_solve(&sys, &y0, 0, 4, ts, &o, y, S, err, sizeof err);
  tap_ok(ok, "decay: solves (%s)", ok ? "" : err);
  double worst = 0, worst_s = 0;
  for (int k = 0; k < 4; k++) {
    double e = exp(-0.7 * ts[k]);
    worst = fmax(worst, fabs(y[k] - 2 * e) / (2 * e));
    worst_s = fmax(worst_s, fabs(S[k * 2 + 0] - (-ts[k] * 2 * e)) / (ts[k] * 2 * e));
    worst_s = fmax(worst_s, fabs(S[k * 2 + 1] - e) / e);
  }
  /* at t = 10, y = 2e-3: atol 1e-10 alone allows 5e-8 relative per step */
  tap_ok(worst < 1e-7, "decay: y within 1e-7 of 2 exp(-k t) at tol 1e-10 (worst %.2g)", worst);
  tap_ok(worst_s < 1e-7, "decay: dy/dk and dy/dy0 within 1e-7 of the closed forms (worst %.2g)",
         worst_s);
}

/* max relative error of the oscillator at t = 1..20 for a tolerance, and its cost */
static double oscillator_error(double tol, long *calls) {
  Sys s = {{1.3}, 0, 0};
  double ts[20], y[40], y0[2] = {1, 0};
  for (int k = 0; k < 20; k++) ts[k] = k + 1;
  OdeSystem sys = {2, oscillator, &s, 1, 0, NULL, NULL};
  OdeOptions o = opts(tol, tol, 1000000);
  char err[256];
  if (!ode_rk45_solve(&sys, y0, 0, 20, ts, &o, y, NULL, err, sizeof err)) return INFINITY;
  double worst = 0;
  for (int k = 0; k < 20; k++) {
    worst = fmax(worst, fabs(y[2 * k] - cos(1.3 * ts[k])));
    worst = fmax(worst, fabs(y[2 * k + 1] + 1.3 * sin(1.3 * ts[k])) / 1.3);
  }
  *calls = s.calls;
  return worst;
}

static void test_oscillator(void) {
  long c6, c9, c12;
  double e6 = oscillator_error(1e-6, &c6), e9 = oscillator_error(1e-9, &c9),
         e12 = oscillator_error(1e-12, &c12);
  tap_diag("oscillator to t = 20: tol 1e-6: error %.2g, %ld calls; 1e-9: %.2g, %ld; 1e-12: %.2g, "
           "%ld", e6, c6, e9, c9, e12, c12);
  tap_ok(e6 < 1e-4 && e9 < 1e-7 && e12 < 1e-10,
         "oscillator: global error follows the tolerance (%.2g, %.2g, %.2g)", e6, e9, e12);
  tap_ok(e9 < e6 / 100 && e12 < e9 / 100, "oscillator: tighter tolerances converge");
  /* fifth order: a 1000x tighter tolerance costs about 1000^(1/5) ~ 4x the steps */
  tap_ok(c6 < 2000 && c9 < 4 * c6 && c12 < 4 * c9,
         "oscillator: cost grows like tol^(-1/5) (%ld, %ld, %ld right-hand sides)", c6, c9, c12);
}

/* ---- Lotka-Volterra against mpmath ------------------------------------------------ */

static void test_lotka(void) {
  for (size_t r = 0; r < sizeof ode_ref / sizeof ode_ref[0]; r++) {
    const OdeRef *ref = &ode_ref[r];
    Sys s = {{ref->p[0], ref->p[1], ref->p[2], ref->p[3]}, 0, 0};
    /* p = (a, b, c, d, u0, v0): four forced columns, then S(0) = I for y0 */
    double s0[12] = {0}, y[16], S[96];
    s0[2 * 4 + 0] = 1;
    s0[2 * 5 + 1] = 1;
    int pcol[6] = {0, 1, 2, 3, -1, -1};
    OdeSystem sys = {2, lotka, &s, 4, 6, s0, pcol};
    OdeOptions o = opts(1e-11, 1e-11, 1000000);
    char err[256];
    bool ok = ode_rk45_solve(&sys, &ref->p[4], 0, ref->nts, ref->ts, &o, y, S, err, sizeof err);
    if (!tap_ok(ok, "lotka %s: solves (%s)", ref->name, ok ? "" : err)) continue;
    double wy = 0, ws = 0;
    for (int k = 0; k < ref->nts; k++) {
      for (int i = 0; i < 2; i++)
        wy = fmax(wy, fabs(y[2 * k + i] - ref->y[k][i]) / fabs(ref->y[k][i]));
      /* sensitivities relative to the largest of their column at that time */
      for (int j = 0; j < 6; j++) {
        double scale = fmax(fabs(ref->y[k][2 + 2 * j]), fabs(ref->y[k][3 + 2 * j]));
        for (int i = 0; i < 2; i++)
          ws = fmax(ws, fabs(S[(k * 6 + j) * 2 + i] - ref->y[k][2 + 2 * j + i]) / scale);
      }
    }
    tap_ok(wy < 1e-8, "lotka %s: states within 1e-8 of mpmath at rtol 1e-11 (worst %.2g)",
           ref->name, wy);
    tap_ok(ws < 1e-7, "lotka %s: 12 sensitivities within 1e-7 of mpmath (worst %.2g)", ref->name,
           ws);

    /* Stan's default tolerances: still a few digits, at a modest cost */
    double y2[16], S2[96];
    s.calls = 0;
    o = opts(ODE_RK45_RTOL, ODE_RK45_ATOL, ODE_RK45_MAX_STEPS);
    ok = ode_rk45_solve(&sys, &ref->p[4], 0, ref->nts, ref->ts, &o, y2, S2, err, sizeof err);
    double wy2 = 0;
    for (int k = 0; k < ref->nts && ok; k++)
      for (int i = 0; i < 2; i++)
        wy2 = fmax(wy2, fabs(y2[2 * k + i] - ref->y[k][i]) / fabs(ref->y[k][i]));
    tap_ok(ok && wy2 < 1e-4 && s.calls < 3000,
           "lotka %s: default tolerances give %.2g relative error in %ld right-hand sides",
           ref->name, wy2, s.calls);

    /* the states do not depend on whether sensitivities are computed */
    double y3[16];
    OdeSystem plain = {2, lotka, &s, 4, 0, NULL, NULL};
    ok = ode_rk45_solve(&plain, &ref->p[4], 0, ref->nts, ref->ts, &o, y3, NULL, err, sizeof err);
    tap_ok(ok && memcmp(y2, y3, sizeof(double) * 2 * (size_t)ref->nts) == 0,
           "lotka %s: states bit for bit the same with and without sensitivities", ref->name);
  }
}

/* ---- edge cases and errors ---------------------------------------------------------- */

static bool has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static void test_errors(void) {
  Sys s = {{0.55, 0.028, 0.8, 0.024}, 0, 0};
  OdeSystem sys = {2, lotka, &s, 4, 0, NULL, NULL};
  double y0[2] = {34, 5.9}, y[8];
  char err[256];
  OdeOptions o = opts(1e-6, 1e-6, 1000);

  double same[] = {1, 1, 2};
  bool ok = ode_rk45_solve(&sys, y0, 0, 3, same, &o, y, NULL, err, sizeof err);
  tap_ok(ok && y[0] == y[2] && y[1] == y[3], "repeated output times give the same state");
  tap_ok(ode_rk45_solve(&sys, y0, 0, 0, same, &o, y, NULL, err, sizeof err),
         "no output times: nothing to do");

  double late[] = {1, 2};
  ok = ode_rk45_solve(&sys, y0, 1, 2, late, &o, y, NULL, err, sizeof err);
  tap_ok(!ok && has(err, "initial time 1 must be less than the first output time ts[1] = 1"),
         "t0 = ts[1] is an error: %s", err);
  double unsorted[] = {1, 3, 2};
  ok = ode_rk45_solve(&sys, y0, 0, 3, unsorted, &o, y, NULL, err, sizeof err);
  tap_ok(!ok && has(err, "sorted: ts[3] = 2 < ts[2] = 3"), "unsorted times: %s", err);
  double nan_t[] = {1, NAN};
  ok = ode_rk45_solve(&sys, y0, 0, 2, nan_t, &o, y, NULL, err, sizeof err);
  tap_ok(!ok && has(err, "ts[2] must be finite"), "NaN time: %s", err);
  double ybad[2] = {34, INFINITY};
  ok = ode_rk45_solve(&sys, ybad, 0, 1, late, &o, y, NULL, err, sizeof err);
  tap_ok(!ok && has(err, "y0[2] must be finite"), "infinite initial state: %s", err);
  OdeOptions bad = opts(0, 1e-6, 10);
  ok = ode_rk45_solve(&sys, y0, 0, 1, late, &bad, y, NULL, err, sizeof err);
  tap_ok(!ok && has(err, "relative tolerance must be positive"), "rtol 0: %s", err);
  bad = opts(1e-6, NAN, 10);
  ok = ode_rk45_solve(&sys, y0, 0, 1, late, &bad, y, NULL, err, sizeof err);
  tap_ok(!ok && has(err, "absolute tolerance must be positive"), "atol NaN: %s", err);
  bad = opts(1e-6, 1e-6, 0);
  ok = ode_rk45_solve(&sys, y0, 0, 1, late, &bad, y, NULL, err, sizeof err);
  tap_ok(!ok && has(err, "max_num_steps must be positive"), "max_num_steps 0: %s", err);

  double far[] = {1, 20};
  bad = opts(1e-8, 1e-8, 5);
  ok = ode_rk45_solve(&sys, y0, 0, 2, far, &bad, y, NULL, err, sizeof err);
  tap_ok(!ok && has(err, "max_num_steps (5) reached between t = 0 and t = "),
         "too many steps: %s", err);

  s.calls = 0;
  s.fail_at = 40;
  ok = ode_rk45_solve(&sys, y0, 0, 2, far, &o, y, NULL, err, sizeof err);
  tap_ok(!ok && strcmp(err, "rhs failed on purpose") == 0,
         "a failing right-hand side stops the solve with its message");

  OdeSystem up = {1, blowup, NULL, 0, 0, NULL, NULL};
  double one = 1, two[] = {2};
  o = opts(1e-6, 1e-6, 1000000);
  ok = ode_rk45_solve(&up, &one, 0, 1, two, &o, y, NULL, err, sizeof err);
  const char *at = strstr(err, "step size underflow at t = ");
  double t_stop = at ? atof(at + strlen("step size underflow at t = ")) : NAN;
  tap_ok(!ok && fabs(t_stop - 1) < 1e-5, "blow-up at t = 1 stops there: %s", err);
  double before[] = {0.9};
  ok = ode_rk45_solve(&up, &one, 0, 1, before, &o, y, NULL, err, sizeof err);
  tap_ok(ok && fabs(y[0] - 10) < 1e-3, "y' = y^2 before the blow-up: y(0.9) = %.8g (10)", y[0]);
}

int main(void) {
  gc_init();
  test_decay();
  test_oscillator();
  test_lotka();
  test_errors();
  return tap_done();
}
