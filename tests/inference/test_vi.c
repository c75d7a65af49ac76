/* test_vi.c — the Gaussian variational families of inference/vi.h: the
 * gradient of the ELBO estimate with fixed eps, assembled as engine advi
 * assembles it (backward of grad log p, the log-det weighted), against
 * central finite differences of the same estimate; and forward's map and
 * log-det against their definitions.
 *
 * The target is a correlated Gaussian with a non-quadratic term, log p(t) =
 * -1/2 t'At + b't - sum log cosh(t_i), so the gradient is no linear map of
 * theta and a wrong index in backward shows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/value.h"
#include "inference/vi.h"
#include "tests/tap.h"

enum { D = 4, S = 3 };

static const double A[D][D] = {
    {2.0, 0.6, -0.3, 0.1}, {0.6, 1.5, 0.4, 0.0}, {-0.3, 0.4, 1.2, 0.2}, {0.1, 0.0, 0.2, 0.9}};
static const double B[D] = {0.3, -0.7, 0.2, 1.1};

static double logp(const double *t, double *g) {
  double lp = 0;
  for (int i = 0; i < D; i++) {
    double at = 0;
    for (int j = 0; j < D; j++) at += A[i][j] * t[j];
    lp += -0.5 * t[i] * at + B[i] * t[i] - log(cosh(t[i]));
    if (g) g[i] = -at + B[i] - tanh(t[i]);
  }
  return lp;
}

/* (1/S) sum_s [log p(T(eps_s)) + logdet(eps_s)]: the ELBO less a constant. */
static double elbo(ViFamily *f, double eps[S][D]) {
  double s = 0, th[D], ld;
  for (int k = 0; k < S; k++) {
    f->forward(f, eps[k], th, &ld);
    s += logp(th, NULL) + ld;
  }
  return s / S;
}

static void check(ViFamily *f, double eps[S][D]) {
  size_t n = f->nparams;
  double *g = calloc(n, sizeof(double)), th[D], gt[D], ld;
  for (int k = 0; k < S; k++) {
    f->forward(f, eps[k], th, &ld);
    logp(th, gt);
    for (int i = 0; i < D; i++) gt[i] /= S;
    f->backward(f, eps[k], gt, 1.0 / S, g);
  }
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double h = 1e-5, x = f->phi[i];
    f->phi[i] = x + h;
    double up = elbo(f, eps);
    f->phi[i] = x - h;
    double dn = elbo(f, eps);
    f->phi[i] = x;
    double fd = (up - dn) / (2 * h);
    double err = fabs(fd - g[i]) / fmax(1, fabs(fd));
    if (err > worst) worst = err;
  }
  tap_ok(worst < 1e-6, "%s: ELBO gradient of its %zu parameters = central differences (worst "
                       "relative error %.2g)", f->name, n, worst);
  free(g);
}

int main(void) {
  gc_init();
  Rng r;
  rng_seed(&r, 42, 0);
  double eps[S][D];
  for (int k = 0; k < S; k++)
    for (int i = 0; i < D; i++) eps[k][i] = rng_normal(&r);

  ViFamily *mf = vi_meanfield_new(D);
  tap_ok(mf->nparams == 2 * D && mf->ntensors == 2 && !strcmp(mf->names[1], "omega") &&
             mf->shapes[1][0] == D,
         "meanfield: phi = (mu, omega), two tensors of %d", D);
  for (size_t i = 0; i < mf->nparams; i++) mf->phi[i] = 0.3 * rng_normal(&r);
  double th[D], ld, want = 0;
  mf->forward(mf, eps[0], th, &ld);
  bool same = true;
  for (int i = 0; i < D; i++) {
    same &= fabs(th[i] - (mf->phi[i] + exp(mf->phi[D + i]) * eps[0][i])) < 1e-15;
    want += mf->phi[D + i];
  }
  tap_ok(same && fabs(ld - want) < 1e-15, "meanfield: theta = mu + exp(omega) eps, logdet = "
                                          "sum omega");
  check(mf, eps);

  ViFamily *fr = vi_fullrank_new(D);
  size_t tri = D * (D + 1) / 2;
  bool identity = true;
  for (int i = 0; i < D; i++)
    for (int j = 0; j <= i; j++) identity &= fr->phi[D + i * (i + 1) / 2 + j] == (i == j);
  tap_ok(fr->nparams == D + tri && identity && fr->shapes[1][0] == (int)tri,
         "fullrank: phi = (mu, L's lower triangle by rows), L starts at the identity");
  for (size_t i = 0; i < fr->nparams; i++) fr->phi[i] += 0.3 * rng_normal(&r);
  fr->forward(fr, eps[1], th, &ld);
  same = true, want = 0;
  for (int i = 0; i < D; i++) {
    double s = fr->phi[i];
    for (int j = 0; j <= i; j++) s += fr->phi[D + i * (i + 1) / 2 + j] * eps[1][j];
    same &= fabs(th[i] - s) < 1e-14;
    want += log(fabs(fr->phi[D + i * (i + 1) / 2 + i]));
  }
  tap_ok(same && fabs(ld - want) < 1e-14, "fullrank: theta = mu + L eps, logdet = sum log|L_ii|");
  check(fr, eps);
  vi_family_free(mf);
  vi_family_free(fr);
  return tap_done();
}
