/* linalg.h — numerical kernels shared by the discrete and multivariate
 * families and the matrix transforms: small dense linear algebra (Cholesky
 * factors, triangular solves), views of vector-like values, and the
 * saddle-point terms that keep binomial/Poisson/negative-binomial log masses
 * accurate for large counts.
 *
 * Matrices are column-major like ValTen: A[j*n + i] is row i, column j.
 * Sizes are small (a covariance of a few dozen dimensions), so plain loops are
 * the right tool; nothing here allocates except la_vec on real[] values. */
#ifndef PPL_LINALG_H
#define PPL_LINALG_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/value.h"
#include "rng.h"

/* ---- dense linear algebra ---------------------------------------------- */

/* |A[i,j] - A[j,i]| <= tol for all i, j (Stan uses an absolute 1e-8). */
bool la_is_symmetric(int n, const double *A, double tol);
/* Lower Cholesky factor L of the symmetric matrix A (only its lower triangle is
 * read); the strict upper triangle of L is set to 0.  False when A is not
 * positive definite (a pivot <= 0 or not finite).  L may not alias A. */
bool la_cholesky(int n, const double *A, double *L);
/* Solve L x = b for lower-triangular L (forward substitution); x may alias b. */
void la_solve_lower(int n, const double *L, const double *b, double *x);
/* sum_i log L[i,i] = 0.5 log det(L L^T). */
double la_log_diag_sum(int n, const double *L);

/* ---- matrix-valued builtins: values and vector-Jacobian products -------- */
/* (linalg_mv.c) */

/* gp_exp_quad_cov's value: K[i,j] = alpha^2 exp(-|x1_i - x2_j|^2 / (2 rho^2))
 * into K (n1 x n2, column-major), point i's d coordinates at x1[i]; x2 NULL:
 * K(x1, x1), one exp per pair.  The evaluator and the JIT's runtime both
 * call it (the same bits). */
void la_gp_exp_quad_cov(int n1, int n2, int d, const double *const *x1, const double *const *x2,
                        double alpha, double rho, double *K);

/* gp_exp_quad_cov: K[i,j] = alpha^2 exp(-|x1_i - x2_j|^2 / (2 rho^2)), n1 x n2,
 * points row-major (point i's d coordinates at x1 + i d).  x2 NULL: K(x1, x1),
 * whose entries (i, j) and (j, i) are one function (both adjoints count).
 * Given K and its adjoint G, ADDS the adjoints of x1, x2, alpha and rho
 * (any may be NULL: not wanted). */
void la_gp_exp_quad_cov_vjp(int n1, int n2, int d, const double *x1, const double *x2,
                            double alpha, double rho, const double *K, const double *G,
                            double *gx1, double *gx2, double *galpha, double *grho);
/* L = cholesky(A) (n x n): given L and its adjoint G (lower triangle read),
 * ADDS the adjoint of A's lower triangle (what the factorisation reads) to
 * gA.  W: n*n doubles of workspace. */
void la_cholesky_vjp(int n, const double *L, const double *G, double *gA, double *W);

/* ---- values ------------------------------------------------------------- */

/* The numbers of a vector-like value (vector, row vector, or a 1-d array of
 * ints/reals/bools) and their count; NULL if v is none of these. */
const double *la_vec(Value v, int *n);
/* Is x (n entries) a simplex: entries >= 0 and |sum - 1| <= 1e-8 (Stan's
 * tolerance)?  On failure, if msg is non-NULL, writes the reason, e.g.
 * "sums to 0.9" or "theta[2] = -0.1 is negative" using name. */
bool la_is_simplex(const double *x, int n, const char *name, char *msg, size_t msgsz);

/* ---- multivariate normal (shared by multi_normal and its Cholesky form) -- */

/* mu: K finite numbers from p (a vector-like value), else false with
 * "FAM: mu must be a vector" / "FAM: mu[2] must be finite, got inf". */
const double *la_mvn_mu(const char *fam, Value p, int *K, char *err, size_t errsz);
/* Adds to *acc the log density of y (a vector, or an array of vectors: each a
 * draw) under N(mu, L L^T), L lower triangular with positive diagonal.
 * Errors: "FAM: sizes do not match: mu has 3 elements, y has 2", NaN in y. */
bool la_mvn_sum(const char *fam, const double *mu, int K, const double *L, Value y, double *acc,
                char *err, size_t errsz);
/* Added by ad-dist: la_mvn_sum with derivatives.  Per draw, with
 * z = L^-1 (y - mu) and w = L^-T z, ADDS -w to dy (flatten order over the
 * draws; may be NULL), w to dmu, w w'/2 to dSigma (the Sigma-side term; the
 * caller adds -ndraws Sigma^-1/2) and w z' - diag(1/L[i,i]) to the lower
 * triangle of dL (the Cholesky form); NULL = not wanted.  *ndraws (may be
 * NULL) gets the number of draws. */
bool la_mvn_sum_grad(const char *fam, const double *mu, int K, const double *L, Value y,
                     double *acc, double *dy, double *dmu, double *dSigma, double *dL,
                     int *ndraws, char *err, size_t errsz);
/* S = (L L^T)^-1 = L^-T L^-1 (K x K, full) from the lower Cholesky factor L,
 * in about K^3/3 multiply-adds; W: K*K doubles of workspace (gets L^-1). */
void la_chol_inverse(int K, const double *restrict L, double *restrict S, double *restrict W);
/* Solve L^T x = b for lower-triangular L (back substitution); x may alias b. */
void la_solve_lower_t(int n, const double *L, const double *b, double *x);
/* A draw mu + L z, z standard normal, as a new vector. */
Value la_mvn_draw(Rng *r, const double *mu, int K, const double *L);

/* ---- saddle-point log masses (Loader 2000) ------------------------------ */

/* log Gamma(n+1) - [(n+1/2) log n - n + log sqrt(2 pi)], for n > 0. */
double la_stirlerr(double n);
/* x log(x/m) + m - x without cancellation when x is close to m (x, m > 0). */
double la_bd0(double x, double m);
/* log [Gamma(k+m+1) / (Gamma(k+1) Gamma(m+1)) p^k q^m] for k, m > 0 and
 * p + q = 1 (p, q passed separately so callers keep both accurate): the
 * binomial log mass with k successes and m failures, also used by the
 * negative binomial.  Accurate in absolute terms for any size of k, m. */
double la_binom_raw(double k, double m, double p, double q);
/* log Poisson(x | lambda) for x >= 0 integral, lambda >= 0. */
double la_pois_raw(double x, double lambda);
/* Tail of a unimodal mass function by direct summation, which keeps full
 * relative accuracy where the incomplete beta's prefix would cancel (large
 * counts, extreme shapes).  ratio(k, p) = pmf(k+1)/pmf(k); ln = log pmf(n),
 * ln1 = log pmf(n+1); support [kmin, kmax].  The side whose masses fall away
 * from n is summed (the other tail is log1m_exp of it).  Sets *out to
 * log P(X <= n) or log P(X > n) and returns true, or returns false when the
 * sum would need more than maxterms terms (the caller falls back to the
 * incomplete functions). */
bool la_disc_ltail(double n, double ln, double ln1, bool upper,
                   double (*ratio)(double k, const double *p), const double *p, double kmin,
                   double kmax, int maxterms, double *out);
/* Binomial(N, p) log mass at n, and log P(X <= n) (upper = false) or
 * log P(X > n) (upper = true), with q = 1 - p given separately (binomial
 * passes 1 - theta, binomial_logit inv_logit(-alpha): both exact). */
double la_binom_lpmf(double n, double N, double p, double q);
/* The same for N <= LA_SMALL_N (integers 0 <= n <= N), from log p and log q:
 * log C(N, n) is the log of the exact integer (every C(N, i) (N - i) on the way
 * is below 2^53), so the mass costs one log and no lgamma; absolute error
 * about 1e-14, as Loader's form. */
#define LA_SMALL_N 50
double la_binom_small(double n, double N, double lp, double lq);
double la_binom_ltail(double n, double N, double p, double q, bool upper);

#endif
