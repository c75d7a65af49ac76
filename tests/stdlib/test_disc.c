/* test_disc.c — the discrete families against mpmath reference values
 * (disc_reference.h, from gen_disc_reference.py), their samplers' first two
 * moments against the analytic ones, and their DistFamily records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc_reference.h"
#include "stdlib/dist.h"
#include "stdlib/linalg.h"
#include "stdlib/mathfn.h"
#include "tap.h"

extern const DistFamily dist_bernoulli, dist_bernoulli_logit, dist_binomial,
    dist_binomial_logit, dist_poisson, dist_poisson_log, dist_neg_binomial_2, dist_geometric,
    dist_discrete_uniform;

static const DistFamily *const fams[] = {
    &dist_bernoulli, &dist_bernoulli_logit, &dist_binomial, &dist_binomial_logit,
    &dist_poisson, &dist_poisson_log, &dist_neg_binomial_2, &dist_geometric,
    &dist_discrete_uniform};
#define NFAMS (int)(sizeof fams / sizeof fams[0])

static const DistFamily *fam(const char *name) {
  for (int i = 0; i < NFAMS; i++)
    if (strcmp(fams[i]->name, name) == 0) return fams[i];
  return NULL;
}

/* Relative 1e-10; exact for infinities; absolute 1e-12 only where the true
   value is 0 (tiny tails must keep their relative digits). */
static int near_rel(double got, double want, const char *what, const DiscRef *r) {
  int ok;
  if (want == 0) ok = fabs(got) <= 1e-12;
  else if (isinf(want)) ok = got == want;
  else ok = fabs(got - want) <= 1e-10 * fabs(want);
  tap_ok(ok, "%s %s(%g, %g) at %g", what, r->fam, r->p[0], r->p[1], r->n);
  if (!ok) tap_diag("got %.17g, want %.17g", got, want);
  return ok;
}

static void test_reference(void) {
  for (size_t i = 0; i < sizeof disc_ref / sizeof disc_ref[0]; i++) {
    const DiscRef *r = &disc_ref[i];
    const DistFamily *f = fam(r->fam);
    if (!tap_ok(f != NULL, "family %s exists", r->fam)) continue;
    near_rel(f->lpdf1(r->n, r->p), r->lpmf, "lpmf", r);
    near_rel(f->lcdf1(r->n, r->p), r->lcdf, "lcdf", r);
    near_rel(f->lccdf1(r->n, r->p), r->lccdf, "lccdf", r);
  }
}

/* ---- sampler moments ------------------------------------------------------ */

#define NDRAW 200000

/* mean and variance of n draws within 5 standard errors of the analytic
   values; the variance's standard error comes from the analytic 4th central
   moment m4: Var(s^2) ~ (m4 - var^2)/n. */
static void moments(const DistFamily *f, const double *p, double mean, double var, double m4,
                    uint64_t seed) {
  Rng r;
  rng_seed(&r, seed, 0);
  double s = 0, ss = 0;
  int bad = 0;
  for (int i = 0; i < NDRAW; i++) {
    double x = f->rng1(&r, p);
    double lo = -INFINITY, hi = INFINITY;
    if (f->support) f->support(p, &lo, &hi);
    if (x != floor(x) || x < lo || x > hi) bad++;
    s += x;
    ss += x * x;
  }
  double m = s / NDRAW, v = (ss - NDRAW * m * m) / (NDRAW - 1);
  double se_m = sqrt(var / NDRAW), se_v = sqrt((m4 - var * var) / NDRAW);
  tap_ok(bad == 0, "%s(%g, %g) draws are integers in the support (%d bad)", f->name, p[0], p[1],
         bad);
  tap_ok(fabs(m - mean) <= 5 * se_m, "%s(%g, %g) mean %g vs %g (se %g)", f->name, p[0], p[1], m,
         mean, se_m);
  tap_ok(fabs(v - var) <= 5 * se_v, "%s(%g, %g) variance %g vs %g (se %g)", f->name, p[0], p[1],
         v, var, se_v);
}

static double inv_logit(double a) { return 1 / (1 + exp(-a)); }

/* negative binomial with r successes, success probability q: failures' moments */
static void nb_moments(double r, double q, double *var, double *m4) {
  *var = r * (1 - q) / (q * q);
  *m4 = *var * *var * (3 + 6 / r + q * q / (r * (1 - q)));
}

static void test_moments(void) {
  double p[3], pq, v, m4;

  p[0] = 0.3, pq = 0.3 * 0.7;
  moments(&dist_bernoulli, p, 0.3, pq, pq * (1 - 3 * pq), 11);
  p[0] = -1.2;
  double th = inv_logit(-1.2);
  pq = th * (1 - th);
  moments(&dist_bernoulli_logit, p, th, pq, pq * (1 - 3 * pq), 12);

  /* binomial: small N*p (inversion) and large (rejection) */
  double bin[][2] = {{20, 0.3}, {1000, 0.4}, {7, 0.999}};
  for (int i = 0; i < 3; i++) {
    double N = bin[i][0], t = bin[i][1];
    p[0] = N, p[1] = t, pq = t * (1 - t);
    moments(&dist_binomial, p, N * t, N * pq, N * pq * (1 + 3 * (N - 2) * pq), 13 + i);
  }
  p[0] = 50, p[1] = 0.7, th = inv_logit(0.7), pq = th * (1 - th);
  moments(&dist_binomial_logit, p, 50 * th, 50 * pq, 50 * pq * (1 + 3 * 48 * pq), 17);

  double lams[] = {3.5, 250, 0.05};
  for (int i = 0; i < 3; i++) {
    p[0] = lams[i];
    moments(&dist_poisson, p, lams[i], lams[i], lams[i] * (1 + 3 * lams[i]), 20 + i);
  }
  p[0] = 1.5;
  double lam = exp(1.5);
  moments(&dist_poisson_log, p, lam, lam, lam * (1 + 3 * lam), 24);

  double nb[][2] = {{4, 2.5}, {100, 0.7}, {3, 50}};
  for (int i = 0; i < 3; i++) {
    double mu = nb[i][0], phi = nb[i][1];
    p[0] = mu, p[1] = phi;
    nb_moments(phi, phi / (mu + phi), &v, &m4);
    tap_ok(fabs(v - (mu + mu * mu / phi)) < 1e-9 * v, "neg_binomial_2 variance identity");
    moments(&dist_neg_binomial_2, p, mu, v, m4, 30 + i);
  }

  double geo[] = {0.3, 0.02, 0.9};
  for (int i = 0; i < 3; i++) {
    p[0] = geo[i];
    nb_moments(1, geo[i], &v, &m4);
    moments(&dist_geometric, p, (1 - geo[i]) / geo[i], v, m4, 40 + i);
  }

  p[0] = -3, p[1] = 7;
  double n = 11;
  moments(&dist_discrete_uniform, p, 2, (n * n - 1) / 12, (n * n - 1) * (3 * n * n - 7) / 240,
          50);
}

/* ---- the records themselves ------------------------------------------------ */

static void test_records(void) {
  for (int i = 0; i < NFAMS; i++) {
    const DistFamily *f = fams[i];
    tap_ok(f->discrete && f->vtype.base == TY_INT && f->vtype.ndims == 0 && f->lpdf1 &&
               f->rng1 && f->lcdf1 && f->lccdf1 && f->support && !f->lpdf &&
               f->support_con == CON_NONE,
           "%s is a complete scalar discrete family", f->name);
  }
  double lo, hi, p[2] = {12, 0.4};
  dist_binomial.support(p, &lo, &hi);
  tap_ok(lo == 0 && hi == 12, "binomial support is [0, N]");
  p[0] = -2, p[1] = 5;
  dist_discrete_uniform.support(p, &lo, &hi);
  tap_ok(lo == -2 && hi == 5, "discrete_uniform support is [lower, upper]");
  dist_poisson.support(p, &lo, &hi);
  tap_ok(lo == 0 && hi == INFINITY, "poisson support is [0, inf)");
  tap_ok(dist_binomial.pdom[0] == PD_INT_NONNEG && dist_binomial.pdom[1] == PD_PROB &&
             dist_neg_binomial_2.pdom[0] == PD_POS && dist_neg_binomial_2.pdom[1] == PD_POS &&
             dist_poisson.pdom[0] == PD_NONNEG && dist_geometric.pdom[0] == PD_PROB,
         "parameter domains");
  tap_streq(dist_neg_binomial_2.pnames[1], "phi", "neg_binomial_2 parameter names");

  /* the masses sum to 1 (a check on normalisation independent of mpmath) */
  double s = 0;
  p[0] = 7.3, p[1] = 0.8;
  for (int k = 0; k < 2000; k++) s += exp(dist_neg_binomial_2.lpdf1(k, p));
  tap_ok(fabs(s - 1) < 1e-12, "neg_binomial_2(7.3, 0.8) masses sum to 1 (%.15g)", s);
  s = 0;
  p[0] = 40, p[1] = 0.37;
  for (int k = 0; k <= 40; k++) s += exp(dist_binomial.lpdf1(k, p));
  tap_ok(fabs(s - 1) < 1e-13, "binomial(40, 0.37) masses sum to 1 (%.15g)", s);
  /* the CDF is the running sum of the masses */
  p[0] = 37.5;
  double c = 0;
  int ok = 1;
  for (int k = 0; k < 60; k++) {
    c += exp(dist_poisson.lpdf1(k, p));
    if (fabs(exp(dist_poisson.lcdf1(k, p)) - c) > 1e-13) ok = 0;
  }
  tap_ok(ok, "poisson lcdf is the running sum of the masses");
  tap_ok(dist_poisson.lpdf1(2.5, p) == -INFINITY, "non-integer value has mass 0");
}

/* Up to LA_SMALL_N trials the mass is log C(N, n) + n log p + (N - n) log q
 * with C(N, n) exact: it agrees with Loader's saddle-point form (la_binom_raw,
 * the path beyond) at every count, and binomial_logit's value and derivative
 * with binomial's at theta = inv_logit(alpha). */
static void test_small_n(void) {
  static const double Ns[] = {1, 2, 7, 16, 33, 49, 50};
  static const double ps[] = {1e-9, 0.02, 0.3, 0.5, 0.77, 0.999};
  double worst = 0, worst_l = 0, worst_g = 0;
  for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
    for (size_t b = 0; b < sizeof ps / sizeof *ps; b++) {
      double N = Ns[a], p = ps[b], q = 1 - p, alpha = log(p) - log1p(-p);
      for (double n = 1; n < N; n++) {
        double want = la_binom_raw(n, N - n, p, q), got = la_binom_lpmf(n, N, p, q);
        worst = fmax(worst, fabs(got - want) / fmax(1, fabs(want)));
        double bp[2] = {N, p}, lp[2] = {N, alpha}, dx, dbp[2], dlp[2];
        double lb = dist_lpdf_grad1(&dist_binomial, n, bp, &dx, dbp);
        double ll = dist_lpdf_grad1(&dist_binomial_logit, n, lp, &dx, dlp);
        worst_l = fmax(worst_l, fabs(ll - lb) / fmax(1, fabs(lb)));
        /* d/dalpha = d/dtheta theta (1 - theta) */
        worst_g = fmax(worst_g, fabs(dlp[1] - dbp[1] * p * q) / fmax(1, fabs(dlp[1])));
      }
    }
  tap_ok(worst < 1e-13, "binomial N <= %d: exact log C(N, n) form = Loader's to %.2g", LA_SMALL_N, worst);
  tap_ok(worst_l < 1e-12, "binomial_logit's mass = binomial's at inv_logit(alpha) to %.2g", worst_l);
  tap_ok(worst_g < 1e-9, "and its derivative to %.2g", worst_g);
  double N = 50, k = 25, c = 126410606437752.0; /* C(50, 25), the largest on the way */
  tap_near(la_binom_small(k, N, 0, 0), log(c), 1e-15, "log C(50, 25) from the exact integer");
  double lp[2] = {16, 800}, dx, dp[2];
  tap_ok(dist_lpdf_grad1(&dist_binomial_logit, 16, lp, &dx, dp) == 0 && dp[1] == 0,
         "binomial_logit(16, 800): all successes have mass 1");
  double l15 = dist_lpdf_grad1(&dist_binomial_logit, 15, lp, &dx, dp);
  tap_ok(fabs(l15 - (log(16) - 800)) < 1e-12 && dp[1] == -1,
         "one failure: log 16 - 800 on the log scale (%.17g), not -inf", l15);
}

/* units in the last place between two finite doubles */
static double ulp_dist(double a, double b) {
  if (a == b) return 0;
  if (!isfinite(a) || !isfinite(b)) return INFINITY;
  double u = fmax(nextafter(fabs(a), INFINITY) - fabs(a), nextafter(fabs(b), INFINITY) - fabs(b));
  return fabs(a - b) / u;
}

/* bernoulli_logit's kernel takes log1p(e) as log(1 + e) less the rounding's
   correction and inv_logit as e * (1/u) (bernoulli_logit.c): within 2 ulp
   of libm's log1p and of m_inv_logit for alpha from -745 to 745, at
   fractions of a unit and at 1e-300 .. 1e-1 (where log1p(e) ~ log 2 - ...) */
static void test_bernoulli_logit_ulp(void) {
  double worst_lp = 0, worst_g = 0;
  for (int i = -20000; i <= 20000; i++) {
    for (int s = 0; s < 2; s++) {
      double a = s ? copysign(pow(10.0, -300 + 300.0 * abs(i) / 20000), i) : i * 0.03725;
      for (int y = 0; y <= 1; y++) {
        double p[1] = {a}, dx, dp[1];
        double lp = dist_bernoulli_logit.lpdf_grad1(y, p, &dx, dp);
        double want = y ? -m_log1p_exp(-a) : -m_log1p_exp(a);
        double wg = y ? m_inv_logit(-a) : -m_inv_logit(a);
        worst_lp = fmax(worst_lp, ulp_dist(lp, want));
        worst_g = fmax(worst_g, ulp_dist(dp[0], wg));
        if (lp != dist_bernoulli_logit.lpdf1(y, p)) worst_lp = INFINITY;
      }
    }
  }
  tap_ok(worst_lp <= 2, "bernoulli_logit log mass within 2 ulp of -log1p(exp(.)) (worst %.2g)",
         worst_lp);
  tap_ok(worst_g <= 2, "bernoulli_logit derivative within 2 ulp of inv_logit (worst %.2g)", worst_g);
}

int main(void) {
  gc_init();
  test_bernoulli_logit_ulp();
  test_small_n();
  test_reference();
  test_moments();
  test_records();
  return tap_done();
}
