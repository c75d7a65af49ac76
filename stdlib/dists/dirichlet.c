/* dirichlet.c — dirichlet(alpha) over simplexes theta of K = size(alpha):
 *   log p = lgamma(sum alpha) - sum lgamma(alpha_k) + sum (alpha_k - 1) log theta_k.
 * A value that is not a simplex (Stan's 1e-8 tolerance on the sum) is outside
 * the support: -inf, not an error.  An array of vectors is a set of draws. */
#include <math.h>
#include <stdio.h>

#include "../dist.h"
#include "../linalg.h"
#include "../mathfn.h"

static const double *dir_alpha(const Value *p, int *K, char *err, size_t errsz) {
  const double *a = la_vec(p[0], K);
  if (!a) {
    snprintf(err, errsz, "dirichlet: alpha must be a vector, got %s",
             val_kind_name((ValKind)p[0].k));
    return NULL;
  }
  if (*K == 0) {
    snprintf(err, errsz, "dirichlet: alpha must have at least one element");
    return NULL;
  }
  for (int k = 0; k < *K; k++)
    if (!(a[k] > 0) || isinf(a[k])) {
      snprintf(err, errsz, "dirichlet: alpha[%d] must be %s, got %g", k + 1,
               isinf(a[k]) ? "finite" : "positive", a[k]);
      return NULL;
    }
  return a;
}

static bool dir_check(const Value *p, char *err, size_t errsz) {
  int K;
  return dir_alpha(p, &K, err, errsz) != NULL;
}

static bool dir_one(const double *a, int K, double lnorm, Value x, double *acc, char *err,
                    size_t errsz) {
  if (x.k == V_ARR && x.a->n > 0 && x.a->e[0].k != V_INT && x.a->e[0].k != V_REAL) {
    for (int i = 0; i < x.a->n; i++)
      if (!dir_one(a, K, lnorm, x.a->e[i], acc, err, errsz)) return false;
    return true;
  }
  int n;
  const double *th = la_vec(x, &n);
  if (!th) {
    snprintf(err, errsz, "dirichlet: theta must be a vector, got %s", val_kind_name((ValKind)x.k));
    return false;
  }
  if (n != K) {
    snprintf(err, errsz, "dirichlet: sizes do not match: alpha has %d elements, theta has %d", K,
             n);
    return false;
  }
  if (!la_is_simplex(th, K, "theta", NULL, 0)) {
    *acc = -INFINITY;
    return true;
  }
  double lp = lnorm;
  for (int k = 0; k < K; k++)
    if (a[k] != 1) lp += (a[k] - 1) * log(th[k]); /* alpha = 1 at theta = 0: 0, not NaN */
  *acc += lp;
  return true;
}

static bool dir_lpdf(const Value *p, Value x, double *out, char *err, size_t errsz) {
  int K;
  const double *a = dir_alpha(p, &K, err, errsz);
  if (!a) return false;
  double sum = 0, lnorm = 0;
  for (int k = 0; k < K; k++) {
    sum += a[k];
    lnorm -= m_lgamma(a[k]);
  }
  lnorm += m_lgamma(sum);
  double acc = 0;
  if (!dir_one(a, K, lnorm, x, &acc, err, errsz)) return false;
  *out = acc;
  return true;
}

/* Normalised gammas, in log space: G(a) = G(a+1) U^(1/a) keeps tiny shapes
   (alpha << 1) from underflowing every component to 0. */
static bool dir_rng(Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  int K;
  const double *a = dir_alpha(p, &K, err, errsz);
  if (!a) return false;
  Value v = val_vec(K);
  double *lg = v.t->d, m = -INFINITY, s = 0;
  for (int k = 0; k < K; k++) {
    lg[k] = log(rng_gamma(r, a[k] + 1)) + log(rng_uniform(r)) / a[k];
    if (lg[k] > m) m = lg[k];
  }
  for (int k = 0; k < K; k++) s += exp(lg[k] - m);
  for (int k = 0; k < K; k++) lg[k] = exp(lg[k] - m) / s;
  *out = v;
  return true;
}

/* Gradient, per draw: d/dtheta_k = (alpha_k - 1)/theta_k and
   d/dalpha_k = digamma(sum alpha) - digamma(alpha_k) + log theta_k.  dx
   advances through the draws in flatten order (*pos). */
static bool dir_grad_one(const double *a, int K, double lnorm, Value x, double *acc, double *dx,
                         size_t *pos, double *da, double dsum, char *err, size_t errsz) {
  if (x.k == V_ARR && x.a->n > 0 && x.a->e[0].k != V_INT && x.a->e[0].k != V_REAL) {
    for (int i = 0; i < x.a->n; i++)
      if (!dir_grad_one(a, K, lnorm, x.a->e[i], acc, dx, pos, da, dsum, err, errsz)) return false;
    return true;
  }
  double lp = 0;
  if (!dir_one(a, K, lnorm, x, &lp, err, errsz)) return false;
  *acc += lp;
  int n;
  const double *th = la_vec(x, &n);
  if (isfinite(lp)) {
    for (int k = 0; k < K; k++) {
      if (dx) dx[*pos + (size_t)k] += (a[k] - 1) / th[k];
      if (da) da[k] += dsum - m_digamma(a[k]) + log(th[k]);
    }
  }
  *pos += (size_t)K;
  return true;
}

static bool dir_lpdf_grad(const Value *p, Value x, double *out, double *dx, double *const *dp,
                          char *err, size_t errsz) {
  int K;
  const double *a = dir_alpha(p, &K, err, errsz);
  if (!a) return false;
  double sum = 0, lnorm = 0;
  for (int k = 0; k < K; k++) {
    sum += a[k];
    lnorm -= m_lgamma(a[k]);
  }
  lnorm += m_lgamma(sum);
  double acc = 0;
  size_t pos = 0;
  if (!dir_grad_one(a, K, lnorm, x, &acc, dx, &pos, dp ? dp[0] : NULL, m_digamma(sum), err, errsz))
    return false;
  *out = acc;
  return true;
}

const DistFamily dist_dirichlet = {
  .name = "dirichlet",
  .nparams = 1,
  .pnames = {"alpha"},
  .ptype = {{TY_VECTOR, 0}},
  .pdom = {PD_CUSTOM},
  .vtype = {TY_VECTOR, 0},
  .support_con = CON_SIMPLEX,
  .lpdf = dir_lpdf,
  .rng = dir_rng,
  .check = dir_check,
    .lpdf_grad = dir_lpdf_grad,
};
