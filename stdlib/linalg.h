/* linalg.h — the small dense linear algebra the multivariate families and the
 * matrix transforms need (Cholesky factors, triangular solves).  Matrices are
 * column-major like ValTen: A[j*n + i] is row i, column j.  Sizes are small
 * (a covariance of a few dozen dimensions), so plain loops are the right tool;
 * nothing here allocates. */
#ifndef PPL_LINALG_H
#define PPL_LINALG_H

#include <stdbool.h>

/* |A[i,j] - A[j,i]| <= tol for all i, j (Stan's absolute 1e-8 tolerance). */
bool la_is_symmetric(int n, const double *A, double tol);
/* Lower Cholesky factor L of the symmetric matrix A (only its lower triangle is
 * read); the strict upper triangle of L is set to 0.  False when A is not
 * positive definite (a pivot <= 0 or not finite).  L may not alias A. */
bool la_cholesky(int n, const double *A, double *L);
/* Solve L x = b for lower-triangular L (forward substitution); x may alias b. */
void la_solve_lower(int n, const double *L, const double *b, double *x);
/* sum_i log L[i,i] = 0.5 log det(L L^T). */
double la_log_diag_sum(int n, const double *L);

#endif
