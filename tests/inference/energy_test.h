/* energy_test.h — a two-sample test for 2-D draws (header-only, for tests):
 * the energy distance of Szekely and Rizzo, 2E|X-Y| - E|X-X'| - E|Y-Y'|,
 * with a permutation p-value.  Used where a variational approximation's
 * draws are compared with exact draws of a known target.
 */
#ifndef PPL_ENERGY_TEST_H
#define PPL_ENERGY_TEST_H

#include <math.h>
#include <stdlib.h>

#include "../../stdlib/rng.h"

/* a and b hold n points each (x, y interleaved).  Returns the share of
 * `perms` relabelings of the pooled points whose statistic is at least the
 * observed one (counting the observed labeling, so never 0); *stat gets the
 * observed energy distance. */
static double energy_pvalue(int n, const double *a, const double *b, int perms, Rng *r,
                            double *stat) {
  int N = 2 * n;
  double *D = malloc(sizeof(double) * (size_t)N * N);
  int *lab = malloc(sizeof(int) * N);
  for (int i = 0; i < N; i++) {
    const double *p = i < n ? a + 2 * i : b + 2 * (i - n);
    for (int j = 0; j < N; j++) {
      const double *q = j < n ? a + 2 * j : b + 2 * (j - n);
      D[(size_t)i * N + j] = hypot(p[0] - q[0], p[1] - q[1]);
    }
    lab[i] = i < n;
  }
  double obs = 0;
  int ge = 0;
  for (int perm = 0; perm <= perms; perm++) {
    double xy = 0, xx = 0, yy = 0;
    for (int i = 0; i < N; i++)
      for (int j = 0; j < N; j++) {
        double d = D[(size_t)i * N + j];
        if (lab[i] != lab[j]) xy += d;
        else if (lab[i]) xx += d;
        else yy += d;
      }
    /* sums over ordered pairs: xy / n^2 is 2E|X-Y| */
    double e = (xy - xx - yy) / ((double)n * n);
    if (perm == 0) obs = e;
    else ge += e >= obs;
    for (int i = N - 1; i > 0; i--) { /* Fisher-Yates on the labels */
      int j = (int)rng_int(r, 0, i), t = lab[i];
      lab[i] = lab[j];
      lab[j] = t;
    }
  }
  free(D);
  free(lab);
  *stat = obs;
  return (ge + 1.0) / (perms + 1.0);
}

#endif
