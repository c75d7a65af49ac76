/* multi_normal.c — multi_normal(mu, Sigma): the K-variate normal with mean mu
 * and covariance Sigma (symmetric positive definite, checked through its
 * Cholesky factor, which also gives the density):
 *   log p = -K/2 log(2 pi) - 1/2 log det Sigma - 1/2 (y-mu)' Sigma^-1 (y-mu).
 * y may be an array of vectors (independent draws): Sigma is factored once. */
#include <math.h>
#include <stdio.h>

#include "../dist.h"
#include "../linalg.h"

/* mu and the Cholesky factor of Sigma, or false with a message. */
static bool mvn_params(const Value *p, const double **mu, int *K, double **L, char *err,
                       size_t errsz) {
  *mu = la_mvn_mu("multi_normal", p[0], K, err, errsz);
  if (!*mu) return false;
  Value S = p[1];
  if (S.k != V_MAT) {
    snprintf(err, errsz, "multi_normal: Sigma must be a matrix, got %s",
             val_kind_name((ValKind)S.k));
    return false;
  }
  if (S.t->rows != *K || S.t->cols != *K) {
    snprintf(err, errsz, "multi_normal: sizes do not match: mu has %d elements, Sigma is %dx%d",
             *K, S.t->rows, S.t->cols);
    return false;
  }
  *L = gc_alloc_atomic(sizeof(double) * (size_t)(*K * *K + 1));
  if (!la_is_symmetric(*K, S.t->d, 1e-8) || !la_cholesky(*K, S.t->d, *L)) {
    snprintf(err, errsz, "multi_normal: Sigma is not symmetric positive definite");
    return false;
  }
  return true;
}

static bool mvn_check(const Value *p, char *err, size_t errsz) {
  const double *mu;
  double *L;
  int K;
  return mvn_params(p, &mu, &K, &L, err, errsz);
}

static bool mvn_lpdf(const Value *p, Value y, double *out, char *err, size_t errsz) {
  const double *mu;
  double *L;
  int K;
  if (!mvn_params(p, &mu, &K, &L, err, errsz)) return false;
  double acc = 0;
  if (!la_mvn_sum("multi_normal", mu, K, L, y, &acc, err, errsz)) return false;
  *out = acc;
  return true;
}

static bool mvn_rng(Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  const double *mu;
  double *L;
  int K;
  if (!mvn_params(p, &mu, &K, &L, err, errsz)) return false;
  *out = la_mvn_draw(r, mu, K, L);
  return true;
}

/* Gradient: with w = Sigma^-1 (y - mu), d/dy = -w, d/dmu = w and
   d/dSigma = (w w' - Sigma^-1)/2 per draw (symmetric: the partial of an
   off-diagonal pair is split evenly between its two entries). */
static bool mvn_lpdf_grad(const Value *p, Value y, double *out, double *dx, double *const *dp,
                          char *err, size_t errsz) {
  const double *mu;
  double *L;
  int K;
  if (!mvn_params(p, &mu, &K, &L, err, errsz)) return false;
  double acc = 0;
  int ndraws = 0;
  double *dS = dp ? dp[1] : NULL;
  if (!la_mvn_sum_grad("multi_normal", mu, K, L, y, &acc, dx, dp ? dp[0] : NULL, dS, NULL,
                       &ndraws, err, errsz))
    return false;
  if (dS && ndraws > 0 && isfinite(acc)) {
    /* -ndraws/2 Sigma^-1, Sigma^-1 = L^-T L^-1 column by column */
    double *e = gc_alloc_atomic(sizeof(double) * (size_t)K);
    for (int j = 0; j < K; j++) {
      for (int i = 0; i < K; i++) e[i] = i == j;
      la_solve_lower(K, L, e, e);
      la_solve_lower_t(K, L, e, e);
      for (int i = 0; i < K; i++) dS[j * K + i] -= 0.5 * ndraws * e[i];
    }
  }
  *out = acc;
  return true;
}

const DistFamily dist_multi_normal = {
  .name = "multi_normal",
  .nparams = 2,
  .pnames = {"mu", "Sigma"},
  .ptype = {{TY_VECTOR, 0}, {TY_MATRIX, 0}},
  .pdom = {PD_CUSTOM, PD_CUSTOM},
  .vtype = {TY_VECTOR, 0},
  .lpdf = mvn_lpdf,
  .rng = mvn_rng,
  .check = mvn_check,
  .lpdf_grad = mvn_lpdf_grad,
  .checked_by_density = true, /* mvn_params: one Cholesky factor per call */
};
