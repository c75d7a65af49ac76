/* linalg_mv.c — kernels of the matrix-valued builtins over flat arrays:
 * gp_exp_quad_cov's value, and the vector-Jacobian products of
 * gp_exp_quad_cov and cholesky_decompose.
 *
 * Why: a Gaussian-process model's gradient used to be one tape node per
 * matrix entry (gp_exp_quad_cov), or per entry with O(j) parents
 * (cholesky_decompose), plus the bookkeeping of each.  Written as one
 * product of the whole output adjoint with the Jacobian, the backward pass is
 * a single loop over the matrix.  These kernels are the one home of those
 * derivatives: the interpreter records them as one block node each
 * (builtins_adla.c, on stdlib/ad.h's block nodes), and the JIT's runtime runs
 * them with no tape at all (ir/jit_rt.c), so both backends compute the same
 * numbers.  Matrices are column-major, as everywhere in linalg.h. */
#include <math.h>
#include <string.h>

#include "linalg.h"

void la_gp_exp_quad_cov(int n1, int n2, int d, const double *const *x1, const double *const *x2,
                        double alpha, double rho, double *K) {
  bool sym = x2 == NULL;
  if (sym) x2 = x1;
  for (int j = 0; j < n2; j++)
    for (int i = 0; i < n1; i++) {
      size_t ij = (size_t)j * (size_t)n1 + (size_t)i;
      if (sym && i < j) { /* K(x, x) is symmetric: one exp per pair */
        K[ij] = K[(size_t)i * (size_t)n1 + (size_t)j];
        continue;
      }
      double sq = 0;
      for (int k = 0; k < d; k++) sq += (x1[i][k] - x2[j][k]) * (x1[i][k] - x2[j][k]);
      K[ij] = alpha * alpha * exp(-0.5 * sq / (rho * rho));
    }
}

void la_gp_exp_quad_cov_vjp(int n1, int n2, int d, const double *x1, const double *x2,
                            double alpha, double rho, const double *K, const double *G,
                            double *gx1, double *gx2, double *galpha, double *grho) {
  bool sym = x2 == NULL;
  if (sym) x2 = x1;
  double ga = 0, gr = 0, ir2 = 1 / (rho * rho);
  for (int j = 0; j < n2; j++)
    for (int i = sym ? j : 0; i < n1; i++) {
      size_t ij = (size_t)j * (size_t)n1 + (size_t)i;
      /* K(x, x): entries (i, j) and (j, i) are one function of the pair */
      double g = G[ij] + (sym && i != j ? G[(size_t)i * (size_t)n1 + (size_t)j] : 0.0);
      if (g == 0) continue;
      double gk = g * K[ij];
      ga += gk;
      if (sym && i == j) continue; /* the distance is 0: only alpha moves it */
      const double *a = x1 + (size_t)i * (size_t)d, *b = x2 + (size_t)j * (size_t)d;
      double sq = 0;
      for (int k = 0; k < d; k++) sq += (a[k] - b[k]) * (a[k] - b[k]);
      gr += gk * sq;
      if (!gx1 && !gx2) continue;
      for (int k = 0; k < d; k++) {
        double t = gk * (a[k] - b[k]) * ir2; /* dK/da_k = -K (a_k - b_k) / rho^2 */
        if (gx1) gx1[(size_t)i * (size_t)d + (size_t)k] -= t;
        double *gb = sym ? gx1 : gx2;
        if (gb) gb[(size_t)j * (size_t)d + (size_t)k] += t;
      }
    }
  if (galpha) *galpha += 2 * ga / alpha;
  if (grho) *grho += gr / (rho * rho * rho);
}

/* Reverse mode of the unblocked Cholesky factorisation (I. Murray, 2016,
 * "Differentiation of the Cholesky decomposition", algorithm "level 2"),
 * run backwards over the columns of L on the adjoint W = G's lower triangle:
 * at the end W holds the adjoint of A's lower triangle, which is all the
 * factorisation reads. */
void la_cholesky_vjp(int n, const double *L, const double *G, double *gA, double *W) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < n; i++) W[(size_t)j * n + i] = i >= j ? G[(size_t)j * n + i] : 0.0;
#define L_(i, j) L[(size_t)(j) * (size_t)n + (size_t)(i)]
#define W_(i, j) W[(size_t)(j) * (size_t)n + (size_t)(i)]
  for (int j = n - 1; j >= 0; j--) {
    double ljj = L_(j, j), s = 0;
    for (int i = j + 1; i < n; i++) s += L_(i, j) * W_(i, j);
    W_(j, j) -= s / ljj;
    for (int i = j; i < n; i++) W_(i, j) /= ljj;
    for (int k = 0; k < j; k++) {
      double t = 0;
      for (int i = j; i < n; i++) t += W_(i, j) * L_(i, k);
      W_(j, k) -= t;
    }
    for (int k = 0; k < j; k++) {
      double ljk = L_(j, k);
      if (ljk == 0) continue;
      for (int i = j + 1; i < n; i++) W_(i, k) -= W_(i, j) * ljk;
    }
    W_(j, j) *= 0.5;
  }
  for (int j = 0; j < n; j++)
    for (int i = j; i < n; i++) gA[(size_t)j * n + i] += W_(i, j);
#undef L_
#undef W_
}
