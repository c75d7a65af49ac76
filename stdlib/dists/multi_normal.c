/* multi_normal.c — multi_normal(mu, Sigma): the K-variate normal with mean mu
 * and covariance Sigma (symmetric positive definite, checked through its
 * Cholesky factor, which also gives the density):
 *   log p = -K/2 log(2 pi) - 1/2 log det Sigma - 1/2 (y-mu)' Sigma^-1 (y-mu).
 * y may be an array of vectors (independent draws): Sigma is factored once. */
#include <math.h>
#include <stdio.h>

#include "../dist.h"
#include "../linalg.h"

/* Sigma up to this size is factored into the caller's stack buffer: a GP's
   gradient then allocates nothing here (the collector's work grew with every
   factor allocated per gradient). */
#define MVN_STACK_K 24
#define MVN_STACK (MVN_STACK_K * MVN_STACK_K)

/* mu and the Cholesky factor of Sigma (into buf when K <= MVN_STACK_K), or
   false with a message. */
static bool mvn_params(const Value *p, const double **mu, int *K, double **L, double *buf,
                       char *err, size_t errsz) {
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
  *L = *K <= MVN_STACK_K ? buf : gc_alloc_atomic(sizeof(double) * (size_t)(*K * *K + 1));
  if (!la_is_symmetric(*K, S.t->d, 1e-8) || !la_cholesky(*K, S.t->d, *L)) {
    snprintf(err, errsz, "multi_normal: Sigma is not symmetric positive definite");
    return false;
  }
  return true;
}

static bool mvn_check(const Value *p, char *err, size_t errsz) {
  const double *mu;
  double *L, buf[MVN_STACK];
  int K;
  return mvn_params(p, &mu, &K, &L, buf, err, errsz);
}

static bool mvn_lpdf(const Value *p, Value y, double *out, char *err, size_t errsz) {
  const double *mu;
  double *L, buf[MVN_STACK];
  int K;
  if (!mvn_params(p, &mu, &K, &L, buf, err, errsz)) return false;
  double acc = 0;
  if (!la_mvn_sum("multi_normal", mu, K, L, y, &acc, err, errsz)) return false;
  *out = acc;
  return true;
}

static bool mvn_rng(Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  const double *mu;
  double *L, buf[MVN_STACK];
  int K;
  if (!mvn_params(p, &mu, &K, &L, buf, err, errsz)) return false;
  *out = la_mvn_draw(r, mu, K, L);
  return true;
}

/* Gradient: with w = Sigma^-1 (y - mu), d/dy = -w, d/dmu = w and
   d/dSigma = (w w' - Sigma^-1)/2 per draw (symmetric: the partial of an
   off-diagonal pair is split evenly between its two entries).  One Cholesky
   factor serves the check, the density and Sigma^-1 = L^-T L^-1. */
static bool mvn_lpdf_grad(const Value *p, Value y, double *out, double *dx, double *const *dp,
                          char *err, size_t errsz) {
  const double *mu;
  double *L, buf[MVN_STACK];
  int K;
  if (!mvn_params(p, &mu, &K, &L, buf, err, errsz)) return false;
  double acc = 0;
  int ndraws = 0;
  double *dS = dp ? dp[1] : NULL;
  if (!la_mvn_sum_grad("multi_normal", mu, K, L, y, &acc, dx, dp ? dp[0] : NULL, dS, NULL,
                       &ndraws, err, errsz))
    return false;
  if (dS && ndraws > 0 && isfinite(acc)) {
    double sbuf[2 * MVN_STACK];
    double *S = K <= MVN_STACK_K ? sbuf : gc_alloc_atomic(sizeof(double) * 2 * (size_t)K * K);
    la_chol_inverse(K, L, S, S + (size_t)K * K);
    for (size_t e = 0, n = (size_t)K * K; e < n; e++) dS[e] -= 0.5 * ndraws * S[e];
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
