/* linalg.c — Cholesky factorisation, triangular solves, value views and the
 * saddle-point log masses shared by the discrete and multivariate families. */
#include "linalg.h"

#include <math.h>
#include <stdio.h>

#include "mathfn.h"

/* ---- dense linear algebra ---------------------------------------------- */

bool la_is_symmetric(int n, const double *A, double tol) {
  for (int j = 0; j < n; j++)
    for (int i = j + 1; i < n; i++) {
      double a = A[j * n + i], b = A[i * n + j];
      if (!(fabs(a - b) <= tol)) return false; /* also rejects NaN */
    }
  return true;
}

/* Cholesky–Banachiewicz, row by row: each entry needs only earlier rows. */
bool la_cholesky(int n, const double *A, double *L) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < j; i++) L[j * n + i] = 0;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j <= i; j++) {
      double s = A[j * n + i];
      for (int k = 0; k < j; k++) s -= L[k * n + i] * L[k * n + j];
      if (i == j) {
        if (!(s > 0) || !isfinite(s)) return false;
        L[i * n + i] = sqrt(s);
      } else {
        L[j * n + i] = s / L[j * n + j];
      }
    }
  }
  return true;
}

void la_solve_lower(int n, const double *L, const double *b, double *x) {
  for (int i = 0; i < n; i++) {
    double s = b[i];
    for (int k = 0; k < i; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
}

double la_log_diag_sum(int n, const double *L) {
  double s = 0;
  for (int i = 0; i < n; i++) s += log(L[i * n + i]);
  return s;
}

/* ---- values ------------------------------------------------------------- */

const double *la_vec(Value v, int *n) {
  if (v.k == V_VEC || v.k == V_ROWVEC) {
    *n = v.t->rows * v.t->cols;
    return v.t->d;
  }
  if (v.k != V_ARR) return NULL;
  int m = v.a->n;
  double *d = gc_alloc_atomic(sizeof(double) * (size_t)(m > 0 ? m : 1));
  for (int i = 0; i < m; i++) {
    Value e = v.a->e[i];
    if (e.k != V_INT && e.k != V_REAL && e.k != V_BOOL) return NULL;
    d[i] = val_as_real(e);
  }
  *n = m;
  return d;
}

bool la_is_simplex(const double *x, int n, const char *name, char *msg, size_t msgsz) {
  double s = 0;
  for (int i = 0; i < n; i++) {
    if (!(x[i] >= 0)) {
      if (msg) snprintf(msg, msgsz, "%s[%d] = %g is %s", name, i + 1, x[i],
                        isnan(x[i]) ? "not a number" : "negative");
      return false;
    }
    s += x[i];
  }
  if (!(fabs(s - 1) <= 1e-8)) {
    if (msg) snprintf(msg, msgsz, "sums to %.10g", s);
    return false;
  }
  return true;
}

/* ---- saddle-point log masses --------------------------------------------- */

double la_stirlerr(double n) {
  if (n <= 15) /* the cancellation here costs at most ~1e-14 absolute */
    return m_lgamma(n + 1) - (n + 0.5) * log(n) + n - PPL_LOG_SQRT_2PI;
  double z = 1 / (n * n);
  return (1.0 / 12 - z * (1.0 / 360 - z * (1.0 / 1260 - z * (1.0 / 1680 - z * (1.0 / 1188))))) / n;
}

double la_bd0(double x, double m) {
  if (fabs(x - m) < 0.1 * (x + m)) {
    /* x log(x/m) + m - x = (x-m) v + 2x sum_{j>=1} v^(2j+1)/(2j+1),
       v = (x-m)/(x+m): every term is small, nothing cancels */
    double v = (x - m) / (x + m), s = (x - m) * v, ej = 2 * x * v, v2 = v * v;
    for (int j = 1; j < 1000; j++) {
      ej *= v2;
      double s1 = s + ej / (2 * j + 1);
      if (s1 == s) return s1;
      s = s1;
    }
    return s;
  }
  return x * log(x / m) + m - x;
}

double la_binom_raw(double k, double m, double p, double q) {
  double n = k + m;
  double lc = la_stirlerr(n) - la_stirlerr(k) - la_stirlerr(m) - la_bd0(k, n * p) -
              la_bd0(m, n * q);
  return lc - 0.5 * (log(2 * M_PI) + log(k) + log(m) - log(n));
}

double la_pois_raw(double x, double lambda) {
  if (x < 0 || x != floor(x)) return -INFINITY;
  if (lambda == 0) return x == 0 ? 0 : -INFINITY;
  if (x == 0) return -lambda;
  if (lambda < 1) /* no large terms to cancel; avoids x/lambda overflowing */
    return x * log(lambda) - lambda - m_lgamma(x + 1);
  return -la_stirlerr(x) - la_bd0(x, lambda) - 0.5 * log(2 * M_PI * x);
}

/* The two ends use log1p to keep tiny p or q accurate. */
double la_binom_lpmf(double n, double N, double p, double q) {
  if (n < 0 || n > N || n != floor(n)) return -INFINITY;
  if (p == 0) return n == 0 ? 0 : -INFINITY;
  if (q == 0) return n == N ? 0 : -INFINITY;
  if (n == 0) return N * (p < 0.5 ? log1p(-p) : log(q));
  if (n == N) return N * (q < 0.5 ? log1p(-q) : log(p));
  return la_binom_raw(n, N - n, p, q);
}

/* P(X > n) = I_p(n+1, N-n); the log-space incomplete beta gives both tails. */
double la_binom_ltail(double n, double N, double p, double q, bool upper) {
  n = floor(n);
  if (n < 0) return upper ? 0 : -INFINITY;
  if (n >= N || p == 0) return upper ? -INFINITY : 0;
  if (q == 0) return upper ? 0 : -INFINITY;
  double li, lic;
  m_inc_beta_log(n + 1, N - n, p, q, &li, &lic);
  return upper ? li : lic;
}
