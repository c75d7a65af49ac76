/* test_dist_implicit.c — implicit reparameterisation gradients
 * (dist_implicit_dx, Figurnov et al. 2018), which engine svi uses for guide
 * families without a location-scale form.
 *
 * Two checks per family.  Pointwise: dx/dp at a draw against the derivative
 * of the quantile x(u; p) at fixed u = F(x; p), the quantile found by
 * bisection on the family's own CDF and differenced centrally; this measures
 * the accuracy of the CDF partials (analytic or Richardson differences).  In
 * expectation: the mean over draws of d f(x)/dp, f(x) = x and x^2, against the
 * exact derivative of E f(X) (the closed-form moments), within 4 Monte Carlo
 * standard errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stdlib/dist.h"
#include "stdlib/mathfn.h"
#include "stdlib/rng.h"
#include "tap.h"

/* The quantile at log-probability lu on the lower tail (or log S on the upper
   tail), by bisection of [lo, hi] to the last bit. */
static double quantile(const DistFamily *f, const double *p, double lu, bool upper, double lo,
                       double hi) {
  for (int it = 0; it < 2000 && lo < hi; it++) {
    double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    double c = upper ? -f->lccdf1(mid, p) : f->lcdf1(mid, p);
    if (c < (upper ? -lu : lu)) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/* dx/dp[i] by implicit differentiation done numerically: the quantile of the
   draw's tail probability at p[i] +- h. */
static double dx_numeric(const DistFamily *f, const double *p, double x, int i, double lo,
                         double hi) {
  double lc = f->lcdf1(x, p);
  bool upper = !(lc < -log(2.0));
  double lu = upper ? f->lccdf1(x, p) : lc, q[DIST_MAX_PARAMS];
  memcpy(q, p, sizeof q);
  double h = 1e-5 * p[i];
  q[i] = p[i] + h;
  double up = quantile(f, q, lu, upper, lo, hi);
  q[i] = p[i] - h;
  double dn = quantile(f, q, lu, upper, lo, hi);
  return (up - dn) / (2 * h);
}

typedef struct Case {
  const char *fam;
  double p[2];
  double lo, hi; /* support, for bisection */
  /* exact d E[X] / dp[i] and d E[X^2] / dp[i] */
  void (*moments)(const double *p, double *dm1, double *dm2);
} Case;

static void gamma_m(const double *p, double *d1, double *d2) {
  double a = p[0], b = p[1]; /* E X = a / b, E X^2 = a (a + 1) / b^2 */
  d1[0] = 1 / b, d1[1] = -a / (b * b);
  d2[0] = (2 * a + 1) / (b * b), d2[1] = -2 * a * (a + 1) / (b * b * b);
}

static void beta_m(const double *p, double *d1, double *d2) {
  double a = p[0], b = p[1], s = a + b, t = s * (s + 1); /* E X^2 = a (a + 1) / t */
  d1[0] = b / (s * s), d1[1] = -a / (s * s);
  double dt = 2 * s + 1;
  d2[0] = (2 * a + 1) / t - a * (a + 1) * dt / (t * t);
  d2[1] = -a * (a + 1) * dt / (t * t);
}

static void weibull_m(const double *p, double *d1, double *d2) {
  double k = p[0], s = p[1]; /* E X^n = s^n Gamma(1 + n / k) */
  for (int n = 1; n <= 2; n++) {
    double g = exp(m_lgamma(1 + n / k)), *d = n == 1 ? d1 : d2;
    d[0] = -pow(s, n) * g * m_digamma(1 + n / k) * n / (k * k);
    d[1] = n * pow(s, n - 1) * g;
  }
}

static void inv_gamma_m(const double *p, double *d1, double *d2) {
  double a = p[0], b = p[1]; /* E X = b / (a - 1), E X^2 = b^2 / ((a - 1)(a - 2)) */
  d1[0] = -b / ((a - 1) * (a - 1)), d1[1] = 1 / (a - 1);
  double q = (a - 1) * (a - 2);
  d2[0] = -b * b * (2 * a - 3) / (q * q), d2[1] = 2 * b / q;
}

static void run_case(const Case *c, int seed) {
  const DistFamily *f = dist_lookup(c->fam);
  if (!tap_ok(f != NULL, "%s found", c->fam)) return;
  Rng r;
  rng_seed(&r, (uint64_t)seed, 0);
  enum { N = 200000, NPT = 40 };
  double s1[2] = {0}, q1[2] = {0}, s2[2] = {0}, q2[2] = {0}, worst = 0;
  int refused = 0;
  for (int k = 0; k < N; k++) {
    double x = f->rng1(&r, c->p), g[DIST_MAX_PARAMS];
    if (!dist_implicit_dx(f, x, c->p, g)) {
      refused++;
      continue;
    }
    for (int i = 0; i < 2; i++) {
      double a = g[i], b = 2 * x * g[i];
      s1[i] += a, q1[i] += a * a, s2[i] += b, q2[i] += b * b;
      if (k < NPT) {
        double num = dx_numeric(f, c->p, x, i, c->lo, c->hi);
        double e = fabs(g[i] - num) / (1e-8 + fabs(num));
        if (e > worst) worst = e;
      }
    }
  }
  tap_ok(refused == 0, "%s(%g, %g): every draw has implicit partials (%d refused)", c->fam,
         c->p[0], c->p[1], refused);
  if (!tap_ok(worst < 1e-6, "%s(%g, %g): dx/dp at %d draws matches the quantile's central "
              "difference at fixed u", c->fam, c->p[0], c->p[1], NPT))
    tap_diag("worst relative error %.3g", worst);
  else tap_diag("%s: worst relative error %.2g", c->fam, worst);
  double d1[2], d2[2];
  c->moments(c->p, d1, d2);
  const char *pn[2] = {f->pnames[0], f->pnames[1]};
  for (int i = 0; i < 2; i++) {
    int n = N - refused;
    double m1 = s1[i] / n, se1 = sqrt((q1[i] / n - m1 * m1) / n);
    double m2 = s2[i] / n, se2 = sqrt((q2[i] / n - m2 * m2) / n);
    if (!tap_ok(fabs(m1 - d1[i]) <= 4 * se1, "%s(%g, %g): E[dx/d%s] = dE[X]/d%s within 4 SE",
                c->fam, c->p[0], c->p[1], pn[i], pn[i]))
      tap_diag("got %.6g (se %.2g), exact %.6g", m1, se1, d1[i]);
    if (!tap_ok(fabs(m2 - d2[i]) <= 4 * se2, "%s(%g, %g): E[d x^2/d%s] = dE[X^2]/d%s within 4 SE",
                c->fam, c->p[0], c->p[1], pn[i], pn[i]))
      tap_diag("got %.6g (se %.2g), exact %.6g", m2, se2, d2[i]);
  }
}

/* A point of zero density (a beta draw rounded to 1) and a family without a
   CDF are refused, not given made-up partials. */
static void test_refusals(void) {
  double g[DIST_MAX_PARAMS], p[2] = {0.5, 0.5};
  tap_ok(!dist_implicit_dx(dist_lookup("beta"), 1.0, (double[]){2, 3}, g),
         "beta(2, 3) at x = 1 (density 0) is refused");
  tap_ok(!dist_implicit_dx(dist_lookup("gamma"), -1.0, p, g), "gamma outside its support is refused");
  tap_ok(!dist_implicit_dx(dist_lookup("dirichlet"), 0.5, p, g), "dirichlet (no CDF) is refused");
  tap_ok(!dist_implicit_dx(dist_lookup("poisson"), 2.0, p, g), "poisson (discrete) is refused");
}

int main(void) {
  const Case cases[] = {
      {"gamma", {2.5, 1.5}, 0, 200, gamma_m},
      {"gamma", {0.4, 2.0}, 0, 200, gamma_m},
      {"beta", {2.0, 3.0}, 0, 1, beta_m},
      {"beta", {0.6, 0.8}, 0, 1, beta_m},
      {"weibull", {1.5, 2.0}, 0, 200, weibull_m},
      {"inv_gamma", {6.0, 2.0}, 0, 200, inv_gamma_m},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i], 11 + (int)i);
  test_refusals();
  return tap_done();
}
