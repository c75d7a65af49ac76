/* multi_normal.c — multi_normal(mu, Sigma): the K-variate normal with mean mu
 * and covariance Sigma (symmetric positive definite, checked through its
 * Cholesky factor, which also gives the density):
 *   log p = -K/2 log(2 pi) - 1/2 log det Sigma - 1/2 (y-mu)' Sigma^-1 (y-mu).
 * y may be an array of vectors (independent draws): Sigma is factored once. */
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
};
