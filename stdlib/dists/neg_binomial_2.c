/* neg_binomial_2.c — neg_binomial_2(mu, phi): mean mu, variance
 * mu + mu^2/phi (Stan's parameterisation), a gamma–Poisson mixture.
 *
 * With p = phi/(mu+phi) the mass is
 *   Gamma(n+phi)/(Gamma(phi) n!) p^phi (1-p)^n
 *   = phi/(n+phi) * [binomial-like mass with phi "successes", n "failures"],
 * so the saddle-point form of linalg.h applies and large phi or n lose nothing.
 * P(X <= n) = I_p(phi, n+1), used when direct sums of the masses would be
 * too long. */
#include <math.h>

#include "../dist.h"
#include "../linalg.h"
#include "../mathfn.h"

static void nb_support(const double *p, double *lo, double *hi) {
  (void)p;
  *lo = 0;
  *hi = INFINITY;
}

static double nb_lpmf(double n, const double *p) {
  double mu = p[0], phi = p[1];
  if (n < 0 || n != floor(n)) return -INFINITY;
  if (n == 0) return -phi * log1p(mu / phi);
  double pp = phi / (mu + phi), q = mu / (mu + phi);
  return -log1p(n / phi) + la_binom_raw(phi, n, pp, q);
}

/* pmf(k+1)/pmf(k) = (k + phi)/(k + 1) * mu/(mu + phi) */
static double nb_ratio(double k, const double *p) {
  return (k + p[1]) / (k + 1) * (p[0] / (p[0] + p[1]));
}

/* Direct sums of the masses where they converge within 10^5 terms (they
   keep every digit); otherwise the incomplete beta. */
static double nb_tail(double n, const double *p, bool upper) {
  double mu = p[0], phi = p[1], out;
  n = floor(n);
  if (n < 0) return upper ? 0 : -INFINITY;
  if (la_disc_ltail(n, nb_lpmf(n, p), nb_lpmf(n + 1, p), upper, nb_ratio, p, 0, INFINITY,
                    100000, &out))
    return out;
  double li, lic;
  m_inc_beta_log(phi, n + 1, phi / (mu + phi), mu / (mu + phi), &li, &lic);
  return upper ? lic : li;
}

static double nb_lcdf(double n, const double *p) { return nb_tail(n, p, false); }
static double nb_lccdf(double n, const double *p) { return nb_tail(n, p, true); }

static double nb_rng(Rng *r, const double *p) {
  double lambda = rng_gamma(r, p[1]) * (p[0] / p[1]);
  return (double)rng_poisson(r, lambda);
}

/* Gradients: d/dmu = n/mu - (n + phi)/(mu + phi),
   d/dphi = digamma(n + phi) - digamma(phi) - log1p(mu/phi) + (mu - n)/(mu + phi).
   The CDF I_p(phi, n+1), p = phi/(mu + phi): d/dmu F = -(n + phi)/(mu + phi) pmf(n);
   phi numerically (dist.h). */
static void nb_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  double mu = p[0], phi = p[1];
  dp[0] = n / mu - (n + phi) / (mu + phi);
  dp[1] = m_digamma(n + phi) - m_digamma(phi) - log1p(mu / phi) + (mu - n) / (mu + phi);
}
static void nb_cdf_grad(double n, const double *p, double *dp, bool upper) {
  n = floor(n);
  dp[0] = dp[1] = 0;
  if (n < 0) return;
  double lc = nb_tail(n, p, upper);
  double g = (n + p[1]) / (p[0] + p[1]) * exp(nb_lpmf(n, p) - lc);
  dp[0] = upper ? g : -g;
  dp[1] = dist_cdf_dparam(upper ? nb_lccdf : nb_lcdf, n, p, 2, 1);
}
static void nb_lcdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  nb_cdf_grad(n, p, dp, false);
}
static void nb_lccdf_grad(double n, const double *p, double *dx, double *dp) {
  (void)dx;
  nb_cdf_grad(n, p, dp, true);
}

const DistFamily dist_neg_binomial_2 = {
  .name = "neg_binomial_2",
  .nparams = 2,
  .pnames = {"mu", "phi"},
  .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
  .pdom = {PD_POS, PD_POS},
  .vtype = {TY_INT, 0},
  .discrete = true,
  .support = nb_support,
  .support_reads = DIST_SUPPORT_READS(0),
  .lpdf1 = nb_lpmf,
  .rng1 = nb_rng,
  .lcdf1 = nb_lcdf,
  .lccdf1 = nb_lccdf,
    .grad1 = nb_grad,
    .lcdf_grad1 = nb_lcdf_grad,
    .lccdf_grad1 = nb_lccdf_grad,
};
