/* categorical.c — categorical(theta): y in 1..K with P(y = k) = theta[k],
 * theta a simplex.  A whole-value family (vector parameter, int draws); an
 * int array y is a set of independent draws and gets the summed log mass, so
 * `z ~ categorical(theta)` works for one int or for an array. */
#include <math.h>
#include <stdio.h>

#include "../dist.h"
#include "../linalg.h"

static const double *cat_theta(const Value *p, int *K, char *err, size_t errsz) {
  const double *th = la_vec(p[0], K);
  if (!th) {
    snprintf(err, errsz, "categorical: theta must be a vector, got %s",
             val_kind_name((ValKind)p[0].k));
    return NULL;
  }
  if (*K == 0) {
    snprintf(err, errsz, "categorical: theta must have at least one element");
    return NULL;
  }
  char why[96];
  if (!la_is_simplex(th, *K, "theta", why, sizeof why)) {
    snprintf(err, errsz, "categorical: theta is not a simplex (%s)", why);
    return NULL;
  }
  return th;
}

static bool cat_check(const Value *p, char *err, size_t errsz) {
  int K;
  return cat_theta(p, &K, err, errsz) != NULL;
}

/* Sum of log theta[y] over y: one int, or an array (any nesting) of ints. */
static bool cat_sum(const double *th, int K, Value y, double *acc, char *err, size_t errsz) {
  if (y.k == V_ARR) {
    for (int i = 0; i < y.a->n; i++)
      if (!cat_sum(th, K, y.a->e[i], acc, err, errsz)) return false;
    return true;
  }
  if (y.k != V_INT) {
    snprintf(err, errsz, "categorical: y must be an int, got %s", val_kind_name((ValKind)y.k));
    return false;
  }
  *acc += (y.i >= 1 && y.i <= K) ? log(th[y.i - 1]) : -INFINITY;
  return true;
}

static bool cat_lpmf(const Value *p, Value y, double *out, char *err, size_t errsz) {
  int K;
  const double *th = cat_theta(p, &K, err, errsz);
  if (!th) return false;
  double acc = 0;
  if (!cat_sum(th, K, y, &acc, err, errsz)) return false;
  *out = acc;
  return true;
}

/* Inversion; the last category takes whatever rounding leaves over. */
static bool cat_rng(Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  int K;
  const double *th = cat_theta(p, &K, err, errsz);
  if (!th) return false;
  double u = rng_uniform(r), c = 0;
  int k = 0;
  while (k < K - 1 && (c += th[k]) < u) k++;
  *out = val_int(k + 1);
  return true;
}

/* Gradient: each draw y adds 1/theta[y] to d/dtheta[y]. */
static bool cat_grad_sum(const double *th, int K, Value y, double *acc, double *dth, char *err,
                         size_t errsz) {
  if (y.k == V_ARR) {
    for (int i = 0; i < y.a->n; i++)
      if (!cat_grad_sum(th, K, y.a->e[i], acc, dth, err, errsz)) return false;
    return true;
  }
  if (!cat_sum(th, K, y, acc, err, errsz)) return false;
  if (dth && y.i >= 1 && y.i <= K) dth[y.i - 1] += 1 / th[y.i - 1];
  return true;
}

static bool cat_lpmf_grad(const Value *p, Value y, double *out, double *dx, double *const *dp,
                          char *err, size_t errsz) {
  (void)dx;
  int K;
  const double *th = cat_theta(p, &K, err, errsz);
  if (!th) return false;
  double acc = 0;
  if (!cat_grad_sum(th, K, y, &acc, dp ? dp[0] : NULL, err, errsz)) return false;
  *out = acc;
  return true;
}

const DistFamily dist_categorical = {
  .name = "categorical",
  .nparams = 1,
  .pnames = {"theta"},
  .ptype = {{TY_VECTOR, 0}},
  .pdom = {PD_CUSTOM},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .lpdf = cat_lpmf,
  .rng = cat_rng,
  .check = cat_check,
    .lpdf_grad = cat_lpmf_grad,
};
