/* multi_normal_cholesky.c — multi_normal_cholesky(mu, L): the normal with
 * covariance L L', L lower triangular (its strict upper triangle is ignored,
 * as in Stan) with a positive diagonal.  Cheaper than multi_normal: no
 * factorisation, log det = 2 sum log L[i,i]. */
#include <math.h>
#include <stdio.h>

#include "../dist.h"
#include "../linalg.h"

static bool mvnc_params(const Value *p, const double **mu, int *K, const double **L, char *err,
                        size_t errsz) {
  *mu = la_mvn_mu("multi_normal_cholesky", p[0], K, err, errsz);
  if (!*mu) return false;
  Value M = p[1];
  if (M.k != V_MAT) {
    snprintf(err, errsz, "multi_normal_cholesky: L must be a matrix, got %s",
             val_kind_name((ValKind)M.k));
    return false;
  }
  int n = *K;
  if (M.t->rows != n || M.t->cols != n) {
    snprintf(err, errsz,
             "multi_normal_cholesky: sizes do not match: mu has %d elements, L is %dx%d", n,
             M.t->rows, M.t->cols);
    return false;
  }
  for (int i = 0; i < n; i++) {
    double d = M.t->d[i * n + i];
    if (!(d > 0) || isinf(d)) {
      snprintf(err, errsz, "multi_normal_cholesky: L[%d,%d] must be positive and finite, got %g",
               i + 1, i + 1, d);
      return false;
    }
    for (int j = 0; j < i; j++)
      if (!isfinite(M.t->d[j * n + i])) {
        snprintf(err, errsz, "multi_normal_cholesky: L[%d,%d] must be finite, got %g", i + 1,
                 j + 1, M.t->d[j * n + i]);
        return false;
      }
  }
  *L = M.t->d;
  return true;
}

static bool mvnc_check(const Value *p, char *err, size_t errsz) {
  const double *mu, *L;
  int K;
  return mvnc_params(p, &mu, &K, &L, err, errsz);
}

static bool mvnc_lpdf(const Value *p, Value y, double *out, char *err, size_t errsz) {
  const double *mu, *L;
  int K;
  if (!mvnc_params(p, &mu, &K, &L, err, errsz)) return false;
  double acc = 0;
  if (!la_mvn_sum("multi_normal_cholesky", mu, K, L, y, &acc, err, errsz)) return false;
  *out = acc;
  return true;
}

static bool mvnc_rng(Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  const double *mu, *L;
  int K;
  if (!mvnc_params(p, &mu, &K, &L, err, errsz)) return false;
  *out = la_mvn_draw(r, mu, K, L);
  return true;
}

/* Gradient: z = L^-1 (y - mu), w = L^-T z: d/dy = -w, d/dmu = w,
   d/dL[i,j] = w_i z_j (i >= j) - [i == j]/L[i,i] per draw. */
static bool mvnc_lpdf_grad(const Value *p, Value y, double *out, double *dx, double *const *dp,
                           char *err, size_t errsz) {
  const double *mu, *L;
  int K;
  if (!mvnc_params(p, &mu, &K, &L, err, errsz)) return false;
  double acc = 0;
  if (!la_mvn_sum_grad("multi_normal_cholesky", mu, K, L, y, &acc, dx, dp ? dp[0] : NULL, NULL,
                       dp ? dp[1] : NULL, NULL, err, errsz))
    return false;
  *out = acc;
  return true;
}

const DistFamily dist_multi_normal_cholesky = {
  .name = "multi_normal_cholesky",
  .nparams = 2,
  .pnames = {"mu", "L"},
  .ptype = {{TY_VECTOR, 0}, {TY_MATRIX, 0}},
  .pdom = {PD_CUSTOM, PD_CUSTOM},
  .vtype = {TY_VECTOR, 0},
  .lpdf = mvnc_lpdf,
  .rng = mvnc_rng,
  .check = mvnc_check,
    .lpdf_grad = mvnc_lpdf_grad,
};
