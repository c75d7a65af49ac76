/* ode.h — the explicit Runge–Kutta ODE solver behind ode_rk45 / ode_rk45_tol.
 *
 * The numerics know nothing about the language: the right-hand side is a C
 * callback (ir/interp.c's adapters: the user's function run by the
 * interpreter on a private tape, or compiled to native code with its
 * Jacobians by the JIT, ir/jit_ode.c; the same steps either way).  For
 * gradients the solver integrates forward sensitivities alongside the state
 * (Stan's approach): with S = dy/dp (n x nsens),
 *     dS/dt = J_y(t, y) S + J_p(t, y),   S(t0) = s0,
 * on the steps the state's error control chooses, so the state comes out
 * bit for bit as without sensitivities and S is the derivative of that
 * computed solution (see ode.c).
 */
#ifndef PPL_ODE_H
#define PPL_ODE_H

#include <stdbool.h>
#include <stddef.h>

#include "builtins.h"

/* dy = f(t, y).  When jy is non-NULL (sensitivity runs) also the Jacobians,
 * column-major: jy[j*n + i] = d f_i / d y_j (n x n) and jp[k*n + i] =
 * d f_i / d p_k (n x njp).  False with a message in err on failure. */
typedef bool (*OdeRhsFn)(void *ctx, double t, const double *y, double *dy, double *jy,
                         double *jp, char *err, size_t errsz);

typedef struct OdeSystem {
  int n;            /* number of states */
  OdeRhsFn rhs;
  void *ctx;
  int njp;          /* columns of jp the callback fills */
  int nsens;        /* sensitivity columns (0: state only) */
  const double *s0; /* n x nsens, column-major: the initial d y / d p_j */
  const int *pcol;  /* per sensitivity column: the jp column forcing it, or -1 */
} OdeSystem;

typedef struct OdeOptions {
  double rtol, atol;
  long max_steps;   /* steps (accepted or not) allowed between two output times */
} OdeOptions;

/* Stan's defaults for ode_rk45. */
#define ODE_RK45_RTOL 1e-6
#define ODE_RK45_ATOL 1e-6
#define ODE_RK45_MAX_STEPS 1000000L

/* Dormand–Prince 5(4) with adaptive steps from t0 to each ts[k] (ts sorted,
 * ts[0] > t0).  y_out[k*n + i] = y_i(ts[k]); with sensitivities
 * s_out[(k*nsens + j)*n + i] = d y_i(ts[k]) / d p_j (s_out may be NULL when
 * nsens is 0).  False with a message (no function-name prefix) on bad
 * arguments, a failing right-hand side, too many steps or a step size that
 * underflows. */
bool ode_rk45_solve(const OdeSystem *sys, const double *y0, double t0, int nts, const double *ts,
                    const OdeOptions *opt, double *y_out, double *s_out, char *err,
                    size_t errsz);

/* Table entries for ode_rk45 and ode_rk45_tol (builtins_math.c).  Their
 * first argument is a function name, which only the checker (lang/check.c)
 * understands; these entries reserve the names and refuse ordinary calls. */
bool ode_builtin_check(const Builtin *b, int nargs, const Type *args, Type *ret, char *err,
                       size_t errsz);
bool ode_builtin_eval(const Builtin *b, BuiltinCtx *ctx, int nargs, const Value *args,
                      Value *out, char *err, size_t errsz);

#endif
