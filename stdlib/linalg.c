/* linalg.c — Cholesky factorisation and triangular solves for the
 * multivariate families (multi_normal, lkj) and the cov_matrix transform. */
#include "linalg.h"

#include <math.h>

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
