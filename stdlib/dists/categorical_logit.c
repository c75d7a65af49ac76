/* categorical_logit.c — categorical_logit(beta): y in 1..K with
 * P(y = k) = softmax(beta)[k], i.e. log mass beta[k] - log_sum_exp(beta).
 * Whole-value family like categorical: an int array y is a set of draws. */
#include <math.h>
#include <stdio.h>

#include "../dist.h"
#include "../linalg.h"

static const double *cl_beta(const Value *p, int *K, char *err, size_t errsz) {
  const double *b = la_vec(p[0], K);
  if (!b) {
    snprintf(err, errsz, "categorical_logit: beta must be a vector, got %s",
             val_kind_name((ValKind)p[0].k));
    return NULL;
  }
  if (*K == 0) {
    snprintf(err, errsz, "categorical_logit: beta must have at least one element");
    return NULL;
  }
  for (int k = 0; k < *K; k++)
    if (!isfinite(b[k])) {
      snprintf(err, errsz, "categorical_logit: beta[%d] must be finite, got %g", k + 1, b[k]);
      return NULL;
    }
  return b;
}

static bool cl_check(const Value *p, char *err, size_t errsz) {
  int K;
  return cl_beta(p, &K, err, errsz) != NULL;
}

static double cl_lse(const double *b, int K) {
  double m = b[0], s = 0;
  for (int k = 1; k < K; k++)
    if (b[k] > m) m = b[k];
  for (int k = 0; k < K; k++) s += exp(b[k] - m);
  return m + log(s);
}

static bool cl_sum(const double *b, int K, double lse, Value y, double *acc, char *err,
                   size_t errsz) {
  if (y.k == V_ARR) {
    for (int i = 0; i < y.a->n; i++)
      if (!cl_sum(b, K, lse, y.a->e[i], acc, err, errsz)) return false;
    return true;
  }
  if (y.k != V_INT) {
    snprintf(err, errsz, "categorical_logit: y must be an int, got %s",
             val_kind_name((ValKind)y.k));
    return false;
  }
  *acc += (y.i >= 1 && y.i <= K) ? b[y.i - 1] - lse : -INFINITY;
  return true;
}

static bool cl_lpmf(const Value *p, Value y, double *out, char *err, size_t errsz) {
  int K;
  const double *b = cl_beta(p, &K, err, errsz);
  if (!b) return false;
  double acc = 0;
  if (!cl_sum(b, K, cl_lse(b, K), y, &acc, err, errsz)) return false;
  *out = acc;
  return true;
}

/* Inversion of the softmax probabilities. */
static bool cl_rng(Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  int K;
  const double *b = cl_beta(p, &K, err, errsz);
  if (!b) return false;
  double lse = cl_lse(b, K), u = rng_uniform(r), c = 0;
  int k = 0;
  while (k < K - 1 && (c += exp(b[k] - lse)) < u) k++;
  *out = val_int(k + 1);
  return true;
}

/* Gradient: each draw y adds 1 to d/dbeta[y] and -softmax(beta) to all. */
static bool cl_grad_sum(const double *b, int K, double lse, Value y, double *acc, double *db,
                        char *err, size_t errsz) {
  if (y.k == V_ARR) {
    for (int i = 0; i < y.a->n; i++)
      if (!cl_grad_sum(b, K, lse, y.a->e[i], acc, db, err, errsz)) return false;
    return true;
  }
  if (!cl_sum(b, K, lse, y, acc, err, errsz)) return false;
  if (db && y.i >= 1 && y.i <= K) {
    db[y.i - 1] += 1;
    for (int k = 0; k < K; k++) db[k] -= exp(b[k] - lse);
  }
  return true;
}

static bool cl_lpmf_grad(const Value *p, Value y, double *out, double *dx, double *const *dp,
                         char *err, size_t errsz) {
  (void)dx;
  int K;
  const double *b = cl_beta(p, &K, err, errsz);
  if (!b) return false;
  double acc = 0;
  if (!cl_grad_sum(b, K, cl_lse(b, K), y, &acc, dp ? dp[0] : NULL, err, errsz)) return false;
  *out = acc;
  return true;
}

const DistFamily dist_categorical_logit = {
  .name = "categorical_logit",
  .nparams = 1,
  .pnames = {"beta"},
  .ptype = {{TY_VECTOR, 0}},
  .pdom = {PD_CUSTOM},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .lpdf = cl_lpmf,
  .rng = cl_rng,
  .check = cl_check,
    .lpdf_grad = cl_lpmf_grad,
};
