/* test_vi_flow.c — the Real NVP family (inference/vi_flow.c) against
 * numbers computed without it: its phi-gradient against central finite
 * differences of gtheta . T(eps) + w * logdet, its log-determinant against the
 * log|det| of a finite-difference Jacobian, its inverse, its starting point
 * (the identity, then exactly the base affine), its parameter layout.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../inference/vi_flow.h"
#include "../../stdlib/rng.h"
#include "tap.h"

/* log|det A| of an n x n row-major matrix by LU with partial pivoting (A is destroyed). */
static double logabsdet(int n, double *A) {
  double ld = 0;
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
    if (p != c)
      for (int k = 0; k < n; k++) {
        double tmp = A[c * n + k];
        A[c * n + k] = A[p * n + k];
        A[p * n + k] = tmp;
      }
    double piv = A[c * n + c];
    ld += log(fabs(piv));
    for (int r = c + 1; r < n; r++) {
      double m = A[r * n + c] / piv;
      for (int k = c; k < n; k++) A[r * n + k] -= m * A[c * n + k];
    }
  }
  return ld;
}

static double objective(ViFamily *f, const double *eps, const double *g, double w) {
  double theta[16], ld;
  f->forward(f, eps, theta, &ld);
  double v = w * ld;
  for (size_t i = 0; i < f->dim; i++) v += g[i] * theta[i];
  return v;
}

/* Move phi away from the identity start so that every path of the map matters. */
static void perturb(ViFamily *f, Rng *r, double sd) {
  for (size_t i = 0; i < f->nparams; i++) f->phi[i] += sd * rng_normal(r);
}

static void check_gradient(size_t dim, int layers, int hidden, uint64_t seed) {
  Rng r;
  rng_seed(&r, seed, 0);
  ViFamily *f = vi_flow_new(dim, layers, hidden, &r);
  perturb(f, &r, 0.4);
  double eps[16], g[16], w = 0.7;
  for (size_t i = 0; i < dim; i++) {
    eps[i] = 1.5 * rng_normal(&r);
    g[i] = rng_normal(&r);
  }
  double *gphi = calloc(f->nparams, sizeof(double));
  /* backward adds: start from 1 and take it off again */
  for (size_t i = 0; i < f->nparams; i++) gphi[i] = 1;
  f->backward(f, eps, g, w, gphi);
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < f->nparams; i++) {
    double keep = f->phi[i], h = 1e-5;
    f->phi[i] = keep + h;
    double up = objective(f, eps, g, w);
    f->phi[i] = keep - h;
    double dn = objective(f, eps, g, w);
    f->phi[i] = keep;
    double fd = (up - dn) / (2 * h), ad = gphi[i] - 1;
    double err = fabs(ad - fd) / fmax(1, fabs(fd));
    if (err > worst) worst = err, worst_i = i;
  }
  tap_ok(worst < 1e-7, "dim %zu layers %d hidden %d: d(g.T + w logdet)/dphi matches central differences "
         "over %zu params (worst rel err %.2g at %zu)", dim, layers, hidden, f->nparams, worst, worst_i);
  free(gphi);
}

static void check_logdet_and_inverse(size_t dim, int layers, uint64_t seed) {
  Rng r;
  rng_seed(&r, seed, 1);
  ViFamily *f = vi_flow_new(dim, layers, 6, &r);
  perturb(f, &r, 0.3);
  double eps[16], theta[16], ld;
  for (size_t i = 0; i < dim; i++) eps[i] = rng_normal(&r);
  f->forward(f, eps, theta, &ld);
  double J[256], tp[16], tm[16], e2[16], l2;
  for (size_t j = 0; j < dim; j++) {
    double h = 1e-5;
    memcpy(e2, eps, sizeof(double) * dim);
    e2[j] = eps[j] + h;
    f->forward(f, e2, tp, &l2);
    e2[j] = eps[j] - h;
    f->forward(f, e2, tm, &l2);
    for (size_t i = 0; i < dim; i++) J[i * dim + j] = (tp[i] - tm[i]) / (2 * h);
  }
  double fd = logabsdet((int)dim, J);
  tap_near(ld, fd, 1e-7, "dim %zu layers %d: logdet %.6f is log|det| of the FD Jacobian", dim, layers, ld);
  double back[16], lback;
  vi_flow_inverse(f, theta, back, &lback);
  double err = 0;
  for (size_t i = 0; i < dim; i++) err = fmax(err, fabs(back[i] - eps[i]));
  tap_ok(err < 1e-10, "dim %zu layers %d: inverse(forward(eps)) = eps (max err %.2g)", dim, layers, err);
  tap_near(lback, ld, 1e-10, "dim %zu layers %d: inverse reports forward's logdet", dim, layers);
}

static void check_start(size_t dim, int layers) {
  Rng r;
  rng_seed(&r, 42, 2);
  ViFamily *f = vi_flow_new(dim, layers, 8, &r);
  double eps[16], theta[16], ld;
  for (size_t i = 0; i < dim; i++) eps[i] = rng_normal(&r);
  f->forward(f, eps, theta, &ld);
  int same = ld == 0;
  for (size_t i = 0; i < dim; i++) same = same && theta[i] == eps[i];
  tap_ok(same, "dim %zu layers %d: a new flow is the identity (logdet 0)", dim, layers);
  /* mu, omega only: the flow is exactly mean-field's map */
  double sum = 0;
  for (size_t i = 0; i < dim; i++) {
    f->phi[i] = 0.3 * (double)i - 1;
    f->phi[dim + i] = 0.2 * (double)i - 0.5;
    sum += f->phi[dim + i];
  }
  f->forward(f, eps, theta, &ld);
  double err = fabs(ld - sum);
  for (size_t i = 0; i < dim; i++) err = fmax(err, fabs(theta[i] - (f->phi[i] + exp(f->phi[dim + i]) * eps[i])));
  tap_ok(err < 1e-14, "dim %zu layers %d: with coupling nets at zero it is mu + exp(omega) eps", dim, layers);
}

static void check_layout(size_t dim, int layers, int hidden) {
  Rng r;
  rng_seed(&r, 7, 3);
  ViFamily *f = vi_flow_new(dim, layers, hidden, &r);
  size_t total = 0;
  int ok = f->ntensors >= 2 && strcmp(f->names[0], "mu") == 0 && strcmp(f->names[1], "omega") == 0;
  for (int i = 0; i < f->ntensors; i++) {
    size_t n = 1;
    for (int k = 0; k < f->ranks[i]; k++) n *= (size_t)f->shapes[i][k];
    total += n;
    for (int j = 0; j < i; j++) ok = ok && strcmp(f->names[i], f->names[j]) != 0;
  }
  /* per coupling: (in*H + H) + (H*H + H) + (H*2m + 2m) */
  size_t want = 2 * dim;
  for (int k = 0; k < (dim > 1 ? layers : 0); k++) {
    size_t in = k % 2 ? dim - dim / 2 : dim / 2, m = dim - in, H = (size_t)hidden;
    want += in * H + H + H * H + H + H * 2 * m + 2 * m;
  }
  tap_ok(ok && total == f->nparams && f->nparams == want,
         "dim %zu layers %d hidden %d: %d named tensors cover phi's %zu reals (want %zu)", dim, layers,
         hidden, f->ntensors, total, want);
  Rng r2;
  rng_seed(&r2, 7, 3);
  ViFamily *g = vi_flow_new(dim, layers, hidden, &r2);
  tap_ok(memcmp(f->phi, g->phi, sizeof(double) * f->nparams) == 0, "dim %zu: same seed, same initial phi", dim);
}

int main(void) {
  check_gradient(2, 1, 4, 11);
  check_gradient(2, 4, 8, 12);
  check_gradient(3, 3, 5, 13);
  check_gradient(5, 4, 6, 14);
  check_gradient(1, 4, 8, 15);
  check_logdet_and_inverse(2, 4, 21);
  check_logdet_and_inverse(3, 3, 22);
  check_logdet_and_inverse(6, 5, 23);
  check_logdet_and_inverse(1, 2, 24);
  check_start(2, 4);
  check_start(5, 3);
  check_start(1, 4);
  check_layout(2, 4, 8);
  check_layout(5, 3, 7);
  check_layout(1, 4, 8);
  Rng r;
  rng_seed(&r, 1, 0);
  tap_ok(vi_flow_new(0, 4, 8, &r) == NULL && vi_flow_new(2, 4, 0, &r) == NULL,
         "dim 0 or hidden 0: no family");
  return tap_done();
}
