/* lkj_corr_cholesky.c — lkj_corr_cholesky(eta): the LKJ distribution on
 * correlation matrices R (density proportional to det(R)^(eta-1)), expressed
 * on the Cholesky factor L of R.  With the Jacobian of R = L L',
 *   log p(L) = -log c_K(eta) + sum_{i=2..K} (K - i + 2 eta - 2) log L[i,i],
 * where c_K is the LKJ normalising constant (Lewandowski, Kurowicka and Joe
 * 2009):
 *   log c_K = sum_{k=1}^{K-1} k [ (2 eta + k - 2) log 2 + lbeta(b_k, b_k) ],
 *   b_k = eta + (k - 1)/2.
 * The same factorisation gives the sampler: the canonical partial
 * correlations of column j (0-based) are independent 2 Beta(b, b) - 1 with
 * b = eta + (K - 2 - j)/2, and L is built from them row by row.
 *
 * K comes from the value for the density; a draw needs it from outside
 * (rng_sized): eta alone does not say how big the matrix is. */
#include <math.h>
#include <stdio.h>

#include "../dist.h"
#include "../mathfn.h"

static bool lkj_eta(const Value *p, double *eta, char *err, size_t errsz) {
  *eta = val_as_real(p[0]);
  if (!(*eta > 0) || isinf(*eta)) {
    snprintf(err, errsz, "lkj_corr_cholesky: eta must be positive and finite, got %g", *eta);
    return false;
  }
  return true;
}

static bool lkj_check(const Value *p, char *err, size_t errsz) {
  double eta;
  return lkj_eta(p, &eta, err, errsz);
}

static double lkj_log_const(double eta, int K) {
  double c = 0;
  for (int k = 1; k < K; k++) {
    double b = eta + 0.5 * (k - 1);
    c += k * ((2 * eta + k - 2) * PPL_LOG2 + m_lbeta(b, b));
  }
  return c;
}

/* Lower triangular, positive diagonal, unit rows (1e-8): the support. */
static bool lkj_in_support(int K, const double *L) {
  for (int i = 0; i < K; i++) {
    double s = 0;
    for (int j = 0; j < K; j++) {
      double v = L[j * K + i];
      if (j > i) {
        if (!(fabs(v) <= 1e-8)) return false;
      } else {
        if (!isfinite(v)) return false;
        s += v * v;
      }
    }
    if (!(L[i * K + i] > 0) || !(fabs(s - 1) <= 1e-8)) return false;
  }
  return true;
}

static bool lkj_one(double eta, Value x, double *acc, char *err, size_t errsz) {
  if (x.k == V_ARR) {
    for (int i = 0; i < x.a->n; i++)
      if (!lkj_one(eta, x.a->e[i], acc, err, errsz)) return false;
    return true;
  }
  if (x.k != V_MAT || x.t->rows != x.t->cols) {
    if (x.k == V_MAT)
      snprintf(err, errsz, "lkj_corr_cholesky: L must be a square matrix, got %dx%d",
               x.t->rows, x.t->cols);
    else
      snprintf(err, errsz, "lkj_corr_cholesky: L must be a matrix, got %s",
               val_kind_name((ValKind)x.k));
    return false;
  }
  int K = x.t->rows;
  const double *L = x.t->d;
  if (!lkj_in_support(K, L)) {
    *acc = -INFINITY;
    return true;
  }
  double lp = -lkj_log_const(eta, K);
  for (int i = 1; i < K; i++) lp += (K - i + 2 * eta - 3) * log(L[i * K + i]);
  *acc += lp;
  return true;
}

static bool lkj_lpdf(const Value *p, Value x, double *out, char *err, size_t errsz) {
  double eta;
  if (!lkj_eta(p, &eta, err, errsz)) return false;
  double acc = 0;
  if (!lkj_one(eta, x, &acc, err, errsz)) return false;
  *out = acc;
  return true;
}

static bool lkj_rng_sized(Rng *r, const Value *p, int nsizes, const int *sizes, Value *out,
                          char *err, size_t errsz) {
  double eta;
  if (!lkj_eta(p, &eta, err, errsz)) return false;
  if (nsizes < 1 || sizes[nsizes - 1] < 0 ||
      (nsizes >= 2 && sizes[nsizes - 2] != sizes[nsizes - 1])) {
    snprintf(err, errsz, "lkj_corr_cholesky: a draw needs a square size (K x K)");
    return false;
  }
  int K = sizes[nsizes - 1];
  Value v = val_mat(K, K);
  double *L = v.t->d;
  if (K > 0) L[0] = 1;
  for (int i = 1; i < K; i++) {
    double ss = 0; /* sum of squares so far in row i */
    for (int j = 0; j < i; j++) {
      double b = eta + 0.5 * (K - 2 - j);
      double z = 2 * rng_beta(r, b, b) - 1;
      double x = z * sqrt(fmax(0, 1 - ss));
      L[j * K + i] = x;
      ss += x * x;
    }
    L[i * K + i] = sqrt(fmax(0, 1 - ss));
  }
  *out = v;
  return true;
}

static bool lkj_rng(Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  (void)r;
  (void)p;
  (void)out;
  snprintf(err, errsz, "lkj_corr_cholesky: eta does not give the matrix size; declare the "
                       "value as cholesky_factor_corr[K]");
  return false;
}

/* d log c_K / d eta: lbeta(b, b)' = 2 (digamma(b) - digamma(2b)). */
static double lkj_dlog_const(double eta, int K) {
  double c = 0;
  for (int k = 1; k < K; k++) {
    double b = eta + 0.5 * (k - 1);
    c += k * (2 * PPL_LOG2 + 2 * (m_digamma(b) - m_digamma(2 * b)));
  }
  return c;
}

/* Gradient, per draw: d/dL[i,i] = (K - i + 2 eta - 3)/L[i,i] (0-based i >= 1),
   d/deta = -d log c_K/d eta + 2 sum log L[i,i]. */
static bool lkj_grad_one(double eta, Value x, double *acc, double *dx, size_t *pos, double *deta,
                         char *err, size_t errsz) {
  if (x.k == V_ARR) {
    for (int i = 0; i < x.a->n; i++)
      if (!lkj_grad_one(eta, x.a->e[i], acc, dx, pos, deta, err, errsz)) return false;
    return true;
  }
  double lp = 0;
  if (!lkj_one(eta, x, &lp, err, errsz)) return false;
  *acc += lp;
  int K = x.t->rows;
  const double *L = x.t->d;
  if (isfinite(lp)) {
    double s = 0;
    for (int i = 1; i < K; i++) {
      if (dx) dx[*pos + (size_t)(i * K + i)] += (K - i + 2 * eta - 3) / L[i * K + i];
      s += log(L[i * K + i]);
    }
    if (deta) *deta += 2 * s - lkj_dlog_const(eta, K);
  }
  *pos += (size_t)K * (size_t)K;
  return true;
}

static bool lkj_lpdf_grad(const Value *p, Value x, double *out, double *dx, double *const *dp,
                          char *err, size_t errsz) {
  double eta;
  if (!lkj_eta(p, &eta, err, errsz)) return false;
  double acc = 0;
  size_t pos = 0;
  if (!lkj_grad_one(eta, x, &acc, dx, &pos, dp ? dp[0] : NULL, err, errsz)) return false;
  *out = acc;
  return true;
}

const DistFamily dist_lkj_corr_cholesky = {
  .name = "lkj_corr_cholesky",
  .nparams = 1,
  .pnames = {"eta"},
  .ptype = {{TY_REAL, 0}},
  .pdom = {PD_POS},
  .vtype = {TY_MATRIX, 0},
  .support_con = CON_CHOL_CORR,
  .lpdf = lkj_lpdf,
  .rng = lkj_rng,
  .check = lkj_check,
  .rng_sized = lkj_rng_sized,
    .lpdf_grad = lkj_lpdf_grad,
};
