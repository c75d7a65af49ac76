/* ode.c — adaptive Dormand–Prince 5(4) integration for ode_rk45 (see ode.h).
 *
 * The method is the classic embedded pair of Dormand & Prince (1980), the
 * one behind Stan's ode_rk45 (Boost's runge_kutta_dopri5) and MATLAB's
 * ode45: seven stages, the fifth-order solution is propagated, the
 * difference with the embedded fourth-order one estimates the local error,
 * and the last stage is the first of the next step (FSAL).
 *
 * Error control: a step is accepted when every state component has
 * |err_i| <= atol + rtol * max(|y_i|, |y_new_i|) (a max norm, like Boost's).
 * Sensitivities ride along on the same steps but do not steer them: the
 * step sequence, and so every computed state, is then exactly the one of a
 * run without sensitivities, so a log density and its gradient come from the
 * same numbers, and the sensitivities are the exact derivatives of the
 * computed solution for that step sequence (explicit Runge-Kutta commutes
 * with differentiation).  Stan also puts the sensitivities under error
 * control; that makes them closer to the derivative of the exact solution,
 * but then the value computed along with a gradient differs from the value
 * computed without one, by up to the tolerance.  The next step size is the usual h * clamp(0.9 err^(-1/5), 0.2, 5),
 * never growing right after a rejection.  The first step size follows Hairer,
 * Nørsett & Wanner, Solving ODEs I, II.4.  Output times are hit exactly (a
 * step is shortened to land on them; dense output is not needed).
 */
#include "ode.h"

#include <float.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/value.h"

/* Dormand–Prince tableau: nodes c, stage weights a, fifth-order weights b
   (also the last row of a: FSAL), and e = b - b_hat for the error. */
#define C2 (1.0 / 5)
#define C3 (3.0 / 10)
#define C4 (4.0 / 5)
#define C5 (8.0 / 9)
#define A21 (1.0 / 5)
#define A31 (3.0 / 40)
#define A32 (9.0 / 40)
#define A41 (44.0 / 45)
#define A42 (-56.0 / 15)
#define A43 (32.0 / 9)
#define A51 (19372.0 / 6561)
#define A52 (-25360.0 / 2187)
#define A53 (64448.0 / 6561)
#define A54 (-212.0 / 729)
#define A61 (9017.0 / 3168)
#define A62 (-355.0 / 33)
#define A63 (46732.0 / 5247)
#define A64 (49.0 / 176)
#define A65 (-5103.0 / 18656)
#define B1 (35.0 / 384)
#define B3 (500.0 / 1113)
#define B4 (125.0 / 192)
#define B5 (-2187.0 / 6784)
#define B6 (11.0 / 84)
#define E1 (71.0 / 57600)
#define E3 (-71.0 / 16695)
#define E4 (71.0 / 1920)
#define E5 (-17253.0 / 339200)
#define E6 (22.0 / 525)
#define E7 (-1.0 / 40)

#define SAFETY 0.9
#define FAC_MIN 0.2
#define FAC_MAX 5.0

typedef struct Solver {
  const OdeSystem *sys;
  const OdeOptions *opt;
  int n, m;       /* states; size of the augmented state (states + sensitivities) */
  double *jy, *jp; /* Jacobians of the right-hand side (sensitivity runs) */
  double *k[7];   /* stage derivatives; k[0] = f(t, u) */
  double *u, *unew, *tmp;
  char *err;
  size_t errsz;
} Solver;

/* Derivative of the augmented state: f, then J_y S_j + J_p[:, pcol[j]] for
   each sensitivity column S_j. */
static bool deriv(Solver *s, double t, const double *u, double *du) {
  const OdeSystem *sy = s->sys;
  int n = sy->n;
  if (!sy->nsens) return sy->rhs(sy->ctx, t, u, du, NULL, NULL, s->err, s->errsz);
  if (!sy->rhs(sy->ctx, t, u, du, s->jy, s->jp, s->err, s->errsz)) return false;
  for (int j = 0; j < sy->nsens; j++) {
    const double *S = u + (size_t)n * (size_t)(j + 1);
    double *dS = du + (size_t)n * (size_t)(j + 1);
    const double *force = sy->pcol[j] >= 0 ? s->jp + (size_t)sy->pcol[j] * (size_t)n : NULL;
    for (int i = 0; i < n; i++) {
      double acc = force ? force[i] : 0;
      for (int l = 0; l < n; l++) acc += s->jy[(size_t)l * (size_t)n + i] * S[l];
      dS[i] = acc;
    }
  }
  return true;
}

/* One trial step of size h from (t, u), k[0] = f(t, u).  Leaves the new state
   in unew, f(t + h, unew) in k[6] and the error norm in *en (NaN when the
   stages overflowed: the caller rejects the step). */
static bool trial_step(Solver *s, double t, double h, double *en) {
  int m = s->m;
  double *u = s->u, *y = s->tmp, *const *k = s->k;
  for (int i = 0; i < m; i++) y[i] = u[i] + h * A21 * k[0][i];
  if (!deriv(s, t + C2 * h, y, k[1])) return false;
  for (int i = 0; i < m; i++) y[i] = u[i] + h * (A31 * k[0][i] + A32 * k[1][i]);
  if (!deriv(s, t + C3 * h, y, k[2])) return false;
  for (int i = 0; i < m; i++) y[i] = u[i] + h * (A41 * k[0][i] + A42 * k[1][i] + A43 * k[2][i]);
  if (!deriv(s, t + C4 * h, y, k[3])) return false;
  for (int i = 0; i < m; i++)
    y[i] = u[i] + h * (A51 * k[0][i] + A52 * k[1][i] + A53 * k[2][i] + A54 * k[3][i]);
  if (!deriv(s, t + C5 * h, y, k[4])) return false;
  for (int i = 0; i < m; i++)
    y[i] = u[i] + h * (A61 * k[0][i] + A62 * k[1][i] + A63 * k[2][i] + A64 * k[3][i] +
                       A65 * k[4][i]);
  if (!deriv(s, t + h, y, k[5])) return false;
  for (int i = 0; i < m; i++)
    s->unew[i] = u[i] + h * (B1 * k[0][i] + B3 * k[2][i] + B4 * k[3][i] + B5 * k[4][i] +
                             B6 * k[5][i]);
  if (!deriv(s, t + h, s->unew, k[6])) return false;
  double worst = 0;
  for (int i = 0; i < s->n; i++) { /* states only: see the top of the file */
    double e = h * (E1 * k[0][i] + E3 * k[2][i] + E4 * k[3][i] + E5 * k[4][i] + E6 * k[5][i] +
                    E7 * k[6][i]);
    double sc = s->opt->atol + s->opt->rtol * fmax(fabs(u[i]), fabs(s->unew[i]));
    double r = fabs(e) / sc;
    if (!(r <= worst)) worst = r; /* NaN sticks */
  }
  *en = worst;
  return true;
}

static double rms_scaled(const double *x, const double *u, int m, const OdeOptions *o) {
  double acc = 0;
  for (int i = 0; i < m; i++) {
    double r = x[i] / (o->atol + o->rtol * fabs(u[i]));
    acc += r * r;
  }
  return m ? sqrt(acc / m) : 0;
}

/* Hairer's starting step: from the sizes of y, f and an estimate of f's
   derivative after one Euler step, aiming at a local error near 1.  Like
   the error control, it looks at the states only. */
static bool initial_step(Solver *s, double t0, double span, double *h) {
  int m = s->m, n = s->n;
  double d0 = rms_scaled(s->u, s->u, n, s->opt), d1 = rms_scaled(s->k[0], s->u, n, s->opt);
  double h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * d0 / d1;
  h0 = fmin(h0, span);
  for (int i = 0; i < m; i++) s->tmp[i] = s->u[i] + h0 * s->k[0][i];
  if (!deriv(s, t0 + h0, s->tmp, s->k[1])) return false;
  for (int i = 0; i < m; i++) s->tmp[i] = s->k[1][i] - s->k[0][i];
  double d2 = rms_scaled(s->tmp, s->u, n, s->opt) / h0;
  double dm = fmax(d1, d2);
  double h1 = dm <= 1e-15 ? fmax(1e-6, h0 * 1e-3) : pow(0.01 / dm, 0.2);
  *h = fmin(100 * h0, h1);
  if (!(*h > 0) || !isfinite(*h)) *h = 1e-6 * span;
  return true;
}

static bool fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errsz, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
  return false;
}

static bool check_args(const OdeSystem *sys, const double *y0, double t0, int nts,
                       const double *ts, const OdeOptions *o, char *err, size_t errsz) {
  if (!(o->rtol > 0) || !isfinite(o->rtol))
    return fail(err, errsz, "relative tolerance must be positive and finite, got %g", o->rtol);
  if (!(o->atol > 0) || !isfinite(o->atol))
    return fail(err, errsz, "absolute tolerance must be positive and finite, got %g", o->atol);
  if (o->max_steps <= 0)
    return fail(err, errsz, "max_num_steps must be positive, got %ld", o->max_steps);
  if (!isfinite(t0)) return fail(err, errsz, "initial time must be finite, got %g", t0);
  for (int i = 0; i < sys->n; i++)
    if (!isfinite(y0[i]))
      return fail(err, errsz, "initial state y0[%d] must be finite, got %g", i + 1, y0[i]);
  for (int k = 0; k < nts; k++) {
    if (!isfinite(ts[k])) return fail(err, errsz, "ts[%d] must be finite, got %g", k + 1, ts[k]);
    if (k > 0 && ts[k] < ts[k - 1])
      return fail(err, errsz, "output times must be sorted: ts[%d] = %g < ts[%d] = %g", k + 1,
                  ts[k], k, ts[k - 1]);
  }
  if (nts > 0 && !(ts[0] > t0))
    return fail(err, errsz, "initial time %g must be less than the first output time ts[1] = %g",
                t0, ts[0]);
  return true;
}

static void store(const Solver *s, int k, double *y_out, double *s_out) {
  size_t n = (size_t)s->n, ns = (size_t)s->sys->nsens;
  memcpy(y_out + (size_t)k * n, s->u, sizeof(double) * n);
  if (ns && s_out) memcpy(s_out + (size_t)k * ns * n, s->u + n, sizeof(double) * ns * n);
}

bool ode_rk45_solve(const OdeSystem *sys, const double *y0, double t0, int nts, const double *ts,
                    const OdeOptions *opt, double *y_out, double *s_out, char *err,
                    size_t errsz) {
  if (!check_args(sys, y0, t0, nts, ts, opt, err, errsz)) return false;
  if (nts == 0 || sys->n == 0) return true;
  Solver s = {.sys = sys, .opt = opt, .n = sys->n, .err = err, .errsz = errsz};
  s.m = sys->n * (1 + sys->nsens);
  size_t m = (size_t)s.m;
  for (int i = 0; i < 7; i++) s.k[i] = gc_alloc_atomic(sizeof(double) * m);
  s.u = gc_alloc_atomic(sizeof(double) * m);
  s.unew = gc_alloc_atomic(sizeof(double) * m);
  s.tmp = gc_alloc_atomic(sizeof(double) * m);
  if (sys->nsens) {
    s.jy = gc_alloc_atomic(sizeof(double) * (size_t)sys->n * (size_t)sys->n);
    s.jp = gc_alloc_atomic(sizeof(double) * (size_t)sys->n * (size_t)(sys->njp ? sys->njp : 1));
  }
  memcpy(s.u, y0, sizeof(double) * (size_t)sys->n);
  if (sys->nsens)
    memcpy(s.u + sys->n, sys->s0, sizeof(double) * (size_t)sys->n * (size_t)sys->nsens);

  double t = t0, h;
  if (!deriv(&s, t, s.u, s.k[0])) return false;
  if (!initial_step(&s, t0, ts[nts - 1] - t0, &h)) return false;
  bool rejected = false;
  for (int k = 0; k < nts; k++) {
    double target = ts[k], from = t;
    long steps = 0;
    while (t < target) {
      if (steps++ >= opt->max_steps)
        return fail(err, errsz, "max_num_steps (%ld) reached between t = %g and t = %g without "
                                "reaching t = %g", opt->max_steps, from, t, target);
      /* land on the output time; stretch by up to 1% rather than leave a sliver */
      bool clipped = t + 1.01 * h >= target;
      double hs = clipped ? target - t : h, en;
      if (!trial_step(&s, t, hs, &en)) return false;
      if (en <= 1) {
        t = clipped ? target : t + hs;
        double *x = s.u;
        s.u = s.unew;
        s.unew = x;
        x = s.k[0];
        s.k[0] = s.k[6];
        s.k[6] = x;
        double fac = en == 0 ? FAC_MAX : fmin(FAC_MAX, fmax(FAC_MIN, SAFETY * pow(en, -0.2)));
        if (rejected) fac = fmin(fac, 1);
        /* a step shortened to hit an output time says little about the next one */
        h = clipped ? fmax(hs * fac, h) : hs * fac;
        rejected = false;
      } else {
        double fac = isfinite(en) ? fmax(FAC_MIN, SAFETY * pow(en, -0.2)) : FAC_MIN;
        h = hs * fac;
        rejected = true;
        if (h < 16 * DBL_EPSILON * fmax(1, fabs(t)))
          return fail(err, errsz, "step size underflow at t = %.10g: the solution may blow up "
                                  "or the system be too stiff for an explicit method", t);
      }
    }
    store(&s, k, y_out, s_out);
  }
  return true;
}

/* ---- builtin table entries ---------------------------------------------------------- */

bool ode_builtin_check(const Builtin *b, int nargs, const Type *args, Type *ret, char *err,
                       size_t errsz) {
  (void)nargs;
  (void)args;
  (void)ret;
  return fail(err, errsz, "%s: the first argument must be the name of a function", b->name);
}

bool ode_builtin_eval(const Builtin *b, BuiltinCtx *ctx, int nargs, const Value *args,
                      Value *out, char *err, size_t errsz) {
  (void)ctx;
  (void)nargs;
  (void)args;
  (void)out;
  return fail(err, errsz, "%s: the first argument must be the name of a function", b->name);
}
