/* resample.c — multinomial, stratified, systematic and residual resampling.
 *
 * All four work from the running sum of the weights and sorted uniforms, so
 * they are O(N) and deterministic given the Rng.  The sorted uniforms for
 * multinomial come from normalised exponential spacings (no sort needed). */
#include "resample.h"

#include <math.h>
#include <string.h>

#include "../lang/value.h"
#include "engine.h"

static const char *const names[] = {"systematic", "multinomial", "stratified", "residual"};

int resample_scheme(const char *s) {
  for (int i = 0; s && i < 4; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

const char *resample_name(int scheme) {
  return scheme >= 0 && scheme < 4 ? names[scheme] : "unknown";
}

double resample_normalise(int n, const double *lw, double *w) {
  double mx = -INFINITY;
  for (int i = 0; i < n; i++)
    if (lw[i] > mx) mx = lw[i];
  if (!(mx > -INFINITY) || isnan(mx)) {
    for (int i = 0; i < n; i++) w[i] = 1.0 / n;
    return isnan(mx) ? NAN : -INFINITY;
  }
  double s = 0;
  for (int i = 0; i < n; i++) {
    w[i] = isnan(lw[i]) ? 0 : exp(lw[i] - mx);
    s += w[i];
  }
  for (int i = 0; i < n; i++) w[i] /= s;
  return mx + log(s / n);
}

double resample_ess(int n, const double *w) {
  double s = 0;
  for (int i = 0; i < n; i++) s += w[i] * w[i];
  return s > 0 ? 1 / s : 0;
}

/* Ancestors for m sorted points u[0..m) in [0, total): particle i is chosen
 * once for each point inside its slice of the cumulative weight. */
static void from_sorted(int n, const double *w, int m, const double *u, int *anc) {
  double c = w[0];
  int i = 0;
  for (int k = 0; k < m; k++) {
    while (u[k] >= c && i < n - 1) c += w[++i];
    anc[k] = i;
  }
}

/* m sorted uniforms on [0, total) by normalised exponential spacings. */
static void sorted_uniforms(Rng *r, int m, double total, double *u) {
  double s = 0;
  for (int k = 0; k < m; k++) {
    s += rng_exponential(r);
    u[k] = s;
  }
  s += rng_exponential(r);
  for (int k = 0; k < m; k++) u[k] = u[k] / s * total;
}

bool resample(int scheme, int n, const double *w, Rng *r, int *anc) {
  if (n < 1) return false;
  double *u = gc_alloc_atomic(sizeof(double) * (size_t)n);
  switch (scheme) {
  case RESAMPLE_MULTINOMIAL:
    sorted_uniforms(r, n, 1.0, u);
    break;
  case RESAMPLE_STRATIFIED:
    for (int k = 0; k < n; k++) u[k] = (k + rng_uniform(r)) / n;
    break;
  case RESAMPLE_SYSTEMATIC: {
    double v = rng_uniform(r);
    for (int k = 0; k < n; k++) u[k] = (k + v) / n;
    break;
  }
  case RESAMPLE_RESIDUAL: {
    /* floor(N w_i) copies each, then the remainder from the residual weights;
       merged so that the ancestors stay sorted */
    double *res = gc_alloc_atomic(sizeof(double) * (size_t)n);
    int *cnt = gc_alloc_atomic(sizeof(int) * (size_t)n);
    int fixed = 0;
    double rtot = 0;
    for (int i = 0; i < n; i++) {
      double nw = n * w[i];
      cnt[i] = (int)floor(nw);
      if (fixed + cnt[i] > n) cnt[i] = n - fixed; /* rounding guard */
      fixed += cnt[i];
      res[i] = nw - cnt[i] > 0 ? nw - cnt[i] : 0;
      rtot += res[i];
    }
    int m = n - fixed;
    if (m > 0) {
      int *extra = gc_alloc_atomic(sizeof(int) * (size_t)m);
      if (rtot > 0) {
        sorted_uniforms(r, m, rtot, u);
        from_sorted(n, res, m, u, extra);
      } else { /* only possible through rounding: spread uniformly */
        for (int k = 0; k < m; k++) extra[k] = (int)rng_int(r, 0, n - 1);
      }
      for (int k = 0; k < m; k++) cnt[extra[k]]++;
    }
    for (int i = 0, k = 0; i < n; i++)
      for (int j = 0; j < cnt[i]; j++) anc[k++] = i;
    return true;
  }
  default:
    return false;
  }
  from_sorted(n, w, n, u, anc);
  return true;
}
