/* psis.c — Pareto k-hat of importance weights (psis.h).
 *
 * The fit is Zhang and Stephens' (2009) empirical Bayes estimator, as PSIS
 * uses it: the profile likelihood of theta = -k / sigma is evaluated on a
 * grid of m = 30 + floor(sqrt(n)) points built from the largest exceedance
 * and the first quartile, and theta is its likelihood-weighted mean; k
 * follows in closed form.  Computing on weights divided by the largest
 * keeps exp() finite whatever the log weights' scale. */
#include "psis.h"

#include <math.h>
#include <stdlib.h>

#include "../core/value.h"

static int ps_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* k(theta) = mean log(1 - theta x): the shape given theta. */
static double ps_k_of(int n, const double *x, double theta) {
  double s = 0;
  for (int i = 0; i < n; i++) s += log1p(-theta * x[i]);
  return s / n;
}

double psis_gpd_fit(int n, const double *x, int wip, double *sigma) {
  if (sigma) *sigma = NAN;
  if (n < 1 || !(x[n - 1] > 0)) return NAN;
  const double prior = 3;
  int m = 30 + (int)floor(sqrt((double)n));
  int q1 = (int)floor(n / 4.0 + 0.5) - 1; /* the first quartile, 0-based */
  double xstar = x[q1 < 0 ? 0 : q1];
  if (!(xstar > 0)) xstar = x[n - 1]; /* ties at zero: any positive scale will do */
  double *theta = gc_alloc_atomic(sizeof(double) * (size_t)m);
  double *l = gc_alloc_atomic(sizeof(double) * (size_t)m);
  double lmax = -INFINITY;
  for (int j = 0; j < m; j++) {
    theta[j] = 1 / x[n - 1] + (1 - sqrt(m / (j + 0.5))) / prior / xstar;
    double k = ps_k_of(n, x, theta[j]);
    /* the profile log likelihood: n (log(-theta / k) - k - 1) */
    l[j] = n * (log(-theta[j] / k) - k - 1);
    if (isnan(l[j])) l[j] = -INFINITY;
    if (l[j] > lmax) lmax = l[j];
  }
  if (!(lmax > -INFINITY)) return NAN;
  double wsum = 0, th = 0;
  for (int j = 0; j < m; j++) wsum += exp(l[j] - lmax);
  for (int j = 0; j < m; j++) th += theta[j] * exp(l[j] - lmax) / wsum;
  double k = ps_k_of(n, x, th);
  if (sigma) *sigma = -k / th;
  if (wip) k = (k * n + 0.5 * 10) / (n + 10);
  return k;
}

double psis_k(int n, const double *lw) {
  if (n < 1) return NAN;
  double *s = gc_alloc_atomic(sizeof(double) * (size_t)n);
  int len = 0;
  for (int i = 0; i < n; i++) {
    if (isnan(lw[i]) || lw[i] == INFINITY) return NAN;
    s[len++] = lw[i];
  }
  qsort(s, (size_t)len, sizeof(double), ps_cmp);
  int tail = (int)ceil(fmin(0.2 * n, 3 * sqrt((double)n)));
  if (tail < 5 || tail >= n) return NAN;
  double mx = s[n - 1], cut = s[n - tail - 1];
  if (!(mx > -INFINITY) || !(cut > -INFINITY && mx > cut)) return NAN;
  double *x = gc_alloc_atomic(sizeof(double) * (size_t)tail);
  double ecut = exp(cut - mx);
  for (int i = 0; i < tail; i++) x[i] = exp(s[n - tail + i] - mx) - ecut;
  return psis_gpd_fit(tail, x, 1, NULL);
}

typedef struct PsPair {
  double v;
  int i;
} PsPair;

static int ps_pair_cmp(const void *a, const void *b) {
  const PsPair *x = a, *y = b;
  if (x->v != y->v) return (x->v > y->v) - (x->v < y->v);
  return (x->i > y->i) - (x->i < y->i); /* ties in a fixed order: deterministic */
}

bool psis_smooth(int n, double *lw) {
  int tail = (int)ceil(fmin(0.2 * n, 3 * sqrt((double)n)));
  if (n < 1 || tail < 5 || tail >= n) return false;
  PsPair *s = gc_alloc_atomic(sizeof(PsPair) * (size_t)n);
  for (int i = 0; i < n; i++) {
    if (isnan(lw[i]) || lw[i] == INFINITY) return false;
    s[i] = (PsPair){lw[i], i};
  }
  qsort(s, (size_t)n, sizeof(PsPair), ps_pair_cmp);
  double mx = s[n - 1].v, cut = s[n - tail - 1].v;
  if (!(mx > -INFINITY) || !(cut > -INFINITY && mx > cut)) return false;
  double *x = gc_alloc_atomic(sizeof(double) * (size_t)tail);
  double ecut = exp(cut - mx);
  for (int i = 0; i < tail; i++) x[i] = exp(s[n - tail + i].v - mx) - ecut;
  double sigma, k = psis_gpd_fit(tail, x, 1, &sigma);
  if (!isfinite(k) || !(sigma > 0)) return false;
  /* the tail's order statistics replaced by the fitted quantiles at
     (j - 1/2) / tail, none above the largest raw weight */
  for (int j = 0; j < tail; j++) {
    double p = (j + 0.5) / tail;
    double qv = fabs(k) < 1e-12 ? -sigma * log1p(-p) : sigma * expm1(-k * log1p(-p)) / k;
    double w = fmin(ecut + qv, 1.0);
    lw[s[n - tail + j].i] = mx + log(w);
  }
  return true;
}
