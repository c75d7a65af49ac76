/* mathfn.c — special functions for the distributions, builtins and gradients.
 *
 * Accuracy targets near machine precision in relative terms, including the far
 * tails that log densities and log CDFs reach: results that would underflow are
 * produced in log space (log Phi, log P(a,x), log I_x(a,b)).  Large-argument
 * cancellations (lbeta, the incomplete gamma prefix) are removed with the
 * Stirling remainder.  Everything is pure: no globals, lgamma_r not lgamma.
 */
#include "mathfn.h"

#include "linalg.h" /* la_stirlerr: the saddle-point prefix of the incomplete beta */

#include <float.h>
#include <math.h>

#define MF_PI 3.14159265358979323846264338327950288
#define MF_SQRT2 1.41421356237309504880168872420969808
#define MF_SQRT_2PI 2.50662827463100050241576528481104525
#define MF_EPS 1e-16
#define MF_TINY 1e-300
#define MF_MAXIT 100000

double m_lgamma(double x) {
  int sign;
  return lgamma_r(x, &sign);
}

/* ---- polygamma ----------------------------------------------------------- */

double m_digamma(double x) {
  if (isnan(x) || x == -INFINITY) return NAN;
  if (x == INFINITY) return INFINITY;
  if (x <= 0.0) {
    if (x == floor(x)) return NAN; /* pole */
    /* reflection; tan has period 1, so reduce first to keep pi*x exact enough */
    double f = x - floor(x);
    return m_digamma(1.0 - x) - MF_PI / tan(MF_PI * f);
  }
  double r = 0.0;
  while (x < 10.0) {
    r -= 1.0 / x;
    x += 1.0;
  }
  double z = 1.0 / (x * x);
  /* log x - 1/(2x) - sum B_2k / (2k x^2k) */
  double s = z * (1.0 / 12 - z * (1.0 / 120 - z * (1.0 / 252 - z * (1.0 / 240 -
             z * (1.0 / 132 - z * (691.0 / 32760 - z * (1.0 / 12)))))));
  return r + log(x) - 0.5 / x - s;
}

double m_trigamma(double x) {
  if (isnan(x) || x == -INFINITY) return NAN;
  if (x == INFINITY) return 0.0;
  if (x <= 0.0) {
    if (x == floor(x)) return INFINITY;
    double sn = sin(MF_PI * (x - floor(x)));
    return MF_PI * MF_PI / (sn * sn) - m_trigamma(1.0 - x);
  }
  double r = 0.0;
  while (x < 10.0) {
    r += 1.0 / (x * x);
    x += 1.0;
  }
  double z = 1.0 / (x * x);
  double s = 1.0 / 6 - z * (1.0 / 30 - z * (1.0 / 42 - z * (1.0 / 30 - z * (5.0 / 66 -
             z * (691.0 / 2730 - z * (7.0 / 6))))));
  return r + 1.0 / x + 0.5 * z + s * z / x;
}

/* lgamma(x) - Stirling's approximation, i.e. the remainder series.  It is what
   cancels when two large lgammas are subtracted, so computing it directly keeps
   lbeta and the incomplete-gamma prefix accurate for large arguments. */
static double mf_stirling_diff(double x) {
  if (x < 10.0) return m_lgamma(x) - (0.5 * log(2 * MF_PI) + (x - 0.5) * log(x) - x);
  double z = 1.0 / (x * x);
  return (1.0 / 12 - z * (1.0 / 360 - z * (1.0 / 1260 - z * (1.0 / 1680 - z * (1.0 / 1188 -
          z * (691.0 / 360360 - z * (1.0 / 156))))))) / x;
}

double m_lbeta(double a, double b) {
  if (isnan(a) || isnan(b)) return NAN;
  if (a < 0.0 || b < 0.0) return NAN;
  double x = a < b ? a : b, y = a < b ? b : a;
  if (x == 0.0) return INFINITY;
  if (isinf(y)) return -INFINITY;
  if (y < 10.0) return m_lgamma(x) + m_lgamma(y) - m_lgamma(x + y);
  double sd, ratio = x / (x + y);
  if (x < 10.0) {
    sd = mf_stirling_diff(y) - mf_stirling_diff(x + y);
    return m_lgamma(x) + sd + (y - 0.5) * log1p(-ratio) + x * (1.0 - log(x + y));
  }
  sd = mf_stirling_diff(x) + mf_stirling_diff(y) - mf_stirling_diff(x + y);
  return 0.5 * log(2 * MF_PI) - 0.5 * log(y) + (x - 0.5) * log(ratio) + y * log1p(-ratio) + sd;
}

double m_lchoose(double n, double k) {
  if (isnan(n) || isnan(k)) return NAN;
  if (k < 0.0 || k > n) return -INFINITY;
  if (k == 0.0 || k == n) return 0.0;
  return -log1p(n) - m_lbeta(n - k + 1.0, k + 1.0);
}

/* ---- log-space helpers ---------------------------------------------------- */

double m_log1p_exp(double x) {
  if (x > 0.0) return x + log1p(exp(-x));
  return log1p(exp(x));
}

double m_log1m_exp(double x) {
  if (isnan(x) || x > 0.0) return NAN;
  if (x == 0.0) return -INFINITY;
  if (x > -PPL_LOG2) return log(-expm1(x));
  return log1p(-exp(x));
}

double m_log_sum_exp2(double a, double b) {
  if (isnan(a) || isnan(b)) return NAN;
  if (a == INFINITY || b == INFINITY) return INFINITY;
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  double m = a > b ? a : b, d = a > b ? b - a : a - b;
  return m + log1p(exp(d));
}

double m_log_diff_exp(double a, double b) {
  if (isnan(a) || isnan(b) || b > a) return NAN;
  if (b == -INFINITY) return a;
  if (a == b) return -INFINITY;
  if (a == INFINITY) return INFINITY;
  return a + m_log1m_exp(b - a);
}

double m_inv_logit(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

double m_logit(double p) { return log(p) - log1p(-p); }

double m_log_inv_logit(double x) { return -m_log1p_exp(-x); }

double m_log1m_inv_logit(double x) { return -m_log1p_exp(x); }

double m_log1pmx(double x) {
  if (isnan(x) || x < -1.0) return NAN;
  if (fabs(x) > 0.25) return log1p(x) - x;
  /* -x^2/2 + x^3/3 - ...: converges fast for |x| <= 1/4 and has no cancellation */
  double term = x, sum = 0.0;
  for (int k = 2; k < 200; k++) {
    term *= -x;
    double t = term / k;
    sum += t;
    if (fabs(t) <= DBL_EPSILON * 0.5 * fabs(sum)) break;
  }
  return sum;
}

/* ---- the normal distribution ---------------------------------------------- */

double m_std_normal_lcdf(double z) {
  if (isnan(z)) return NAN;
  if (z == INFINITY) return 0.0;
  if (z == -INFINITY) return -INFINITY;
  if (z > 0.0) return log1p(-0.5 * erfc(z / MF_SQRT2));
  if (z > -37.5) return log(0.5 * erfc(-z / MF_SQRT2));
  /* erfc is near underflow: Mills-ratio asymptotic series
     Phi(z) = phi(z)/|z| * (1 - 1/z^2 + 3/z^4 - 15/z^6 + ...) */
  double z2 = z * z, t = 1.0, s = 1.0;
  for (int k = 1; k < 60; k++) {
    t *= -(2.0 * k - 1.0) / z2;
    s += t;
    if (fabs(t) < 1e-17) break;
  }
  return -0.5 * z2 - log(-z) - PPL_LOG_SQRT_2PI + log(s);
}

double m_std_normal_lccdf(double z) { return m_std_normal_lcdf(-z); }

/* Acklam's rational approximation (relative error 1.15e-9), refined below. */
static double mf_qf_acklam(double p) {
  static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                              1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                              6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                              -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                              3.754408661907416e+00};
  if (p < 0.02425 || p > 1.0 - 0.02425) {
    double tail = p < 0.5 ? p : 1.0 - p;
    double q = sqrt(-2.0 * log(tail));
    double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    return p < 0.5 ? x : -x;
  }
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

double m_std_normal_qf(double p) {
  if (isnan(p) || p < 0.0 || p > 1.0) return NAN;
  if (p == 0.0) return -INFINITY;
  if (p == 1.0) return INFINITY;
  if (p == 0.5) return 0.0;
  double x = mf_qf_acklam(p);
  if (p > 0.1 && p < 0.9) {
    /* centre: Phi(x) - p = erf(x/sqrt2)/2 - (p - 1/2), with p - 1/2 exact, so the
       correction keeps full relative accuracy even when x is tiny */
    for (int it = 0; it < 2; it++) {
      double e = 0.5 * erf(x / MF_SQRT2) - (p - 0.5);
      double u = e * MF_SQRT_2PI * exp(0.5 * x * x);
      x -= u / (1.0 + 0.5 * x * u);
    }
    return x;
  }
  /* tails: Halley steps on the lower tail in log space (1 - p is exact for
     p > 1/2, and exp(x^2/2) alone would overflow near p = 1e-320) */
  double sign = 1.0, t = p;
  if (p > 0.5) {
    t = 1.0 - p;
    sign = -1.0;
    x = -x;
  }
  double lt = log(t);
  for (int it = 0; it < 2; it++) {
    double r = expm1(m_std_normal_lcdf(x) - lt);
    double u = r * exp(lt + 0.5 * x * x + PPL_LOG_SQRT_2PI);
    x -= u / (1.0 + 0.5 * x * u);
  }
  return sign * x;
}

/* ---- incomplete gamma ------------------------------------------------------ */

/* log(x^a e^-x / Gamma(a)); the large-a form avoids cancelling a*log(x)
   against lgamma(a) by writing it through log1pmx((x-a)/a). */
static double mf_gamma_prefix_log(double a, double x) {
  if (a < 10.0) return a * log(x) - x - m_lgamma(a);
  double t = (x - a) / a;
  /* 1 + t would lose x/a's low digits when x << a: use log(x/a) there */
  double core = fabs(t) < 0.25 ? a * m_log1pmx(t) : a * log(x / a) - x + a;
  return core + 0.5 * log(a) - PPL_LOG_SQRT_2PI - mf_stirling_diff(a);
}

void m_gamma_pq_log(double a, double x, double *log_p, double *log_q) {
  if (isnan(a) || isnan(x) || !(a > 0.0) || x < 0.0 || isinf(a)) {
    *log_p = *log_q = NAN;
    return;
  }
  if (x == 0.0) {
    *log_p = -INFINITY;
    *log_q = 0.0;
    return;
  }
  if (x == INFINITY) {
    *log_p = 0.0;
    *log_q = -INFINITY;
    return;
  }
  double pre = mf_gamma_prefix_log(a, x);
  if (x < a + 1.0) {
    /* P = prefix/a * sum_n x^n / ((a+1)...(a+n)) */
    double sum = 1.0, term = 1.0, ap = a;
    for (int n = 0; n < MF_MAXIT; n++) {
      ap += 1.0;
      term *= x / ap;
      sum += term;
      if (term < sum * MF_EPS * 0.5) break;
    }
    *log_p = pre + log(sum / a);
    *log_q = *log_p < 0.0 ? m_log1m_exp(*log_p) : -INFINITY;
    if (*log_p > 0.0) *log_p = 0.0;
    return;
  }
  /* Q by Legendre's continued fraction, modified Lentz */
  double b = x + 1.0 - a, c = 1.0 / MF_TINY, d = 1.0 / b, h = d;
  for (int i = 1; i < MF_MAXIT; i++) {
    double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (fabs(d) < MF_TINY) d = MF_TINY;
    c = b + an / c;
    if (fabs(c) < MF_TINY) c = MF_TINY;
    d = 1.0 / d;
    double del = d * c;
    h *= del;
    if (fabs(del - 1.0) < MF_EPS) break;
  }
  *log_q = pre + log(h);
  if (*log_q > 0.0) *log_q = 0.0;
  *log_p = m_log1m_exp(*log_q);
}

double m_gamma_p(double a, double x) {
  double lp, lq;
  m_gamma_pq_log(a, x, &lp, &lq);
  return exp(lp);
}

double m_gamma_q(double a, double x) {
  double lp, lq;
  m_gamma_pq_log(a, x, &lp, &lq);
  return exp(lq);
}

/* ---- incomplete beta -------------------------------------------------------- */

/* Continued fraction for I_x(a,b) / prefix (modified Lentz); converges fast
   for x < (a+1)/(a+b+2). */
static double mf_betacf(double a, double b, double x) {
  double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0, d = 1.0 - qab * x / qap;
  if (fabs(d) < MF_TINY) d = MF_TINY;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m < MF_MAXIT; m++) {
    double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (fabs(d) < MF_TINY) d = MF_TINY;
    c = 1.0 + aa / c;
    if (fabs(c) < MF_TINY) c = MF_TINY;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (fabs(d) < MF_TINY) d = MF_TINY;
    c = 1.0 + aa / c;
    if (fabs(c) < MF_TINY) c = MF_TINY;
    d = 1.0 / d;
    double del = d * c;
    h *= del;
    if (fabs(del - 1.0) < MF_EPS) break;
  }
  return h;
}

/* x log(x/m) + m - x given d = x - m computed without rounding: the series in
   v = d/(x + m) near x = m (nothing cancels), log1p(d/m) elsewhere. */
static double mf_bd0d(double x, double m, double d) {
  if (fabs(d) < 0.1 * (x + m)) {
    double v = d / (x + m), s = d * v, ej = 2 * x * v, v2 = v * v;
    for (int j = 1; j < 1000; j++) {
      ej *= v2;
      double s1 = s + ej / (2 * j + 1);
      if (s1 == s) return s1;
      s = s1;
    }
    return s;
  }
  return x * log1p(d / m) - d;
}

/* log[x^a y^b / B(a, b)] - log a for a, b >= 10 in Loader's saddle-point form:
   log-gammas by the Stirling remainder, the powers by bd0 around the mean
   n x.  The deviations a - n x and b - n y are one number (they sum to 0 when
   y = 1 - x) taken from the smaller of x and y, the one given exactly, so that
   rounding in 1 - x does not get multiplied by the large shape. */
static double mf_beta_prefix_sp(double a, double b, double x, double y) {
  double n = a + b, da = x <= y ? a - n * x : n * y - b;
  double lc = la_stirlerr(n) - la_stirlerr(a) - la_stirlerr(b) - mf_bd0d(a, n * x, da) -
              mf_bd0d(b, n * y, -da);
  /* binomial-form mass times ab/(a+b), over a */
  return lc - 0.5 * (log(2 * MF_PI) + log(a) + log(b) - log(n)) + log(b / n);
}

void m_inc_beta_log(double a, double b, double x, double y, double *log_i, double *log_ic) {
  if (isnan(a) || isnan(b) || isnan(x) || isnan(y) || !(a > 0.0) || !(b > 0.0) || isinf(a) ||
      isinf(b)) {
    *log_i = *log_ic = NAN;
    return;
  }
  if (x <= 0.0) {
    *log_i = -INFINITY;
    *log_ic = 0.0;
    return;
  }
  if (y <= 0.0) {
    *log_i = 0.0;
    *log_ic = -INFINITY;
    return;
  }
  if (x > (a + 1.0) / (a + b + 2.0)) {
    m_inc_beta_log(b, a, y, x, log_ic, log_i);
    return;
  }
  /* the prefix log[x^a y^b / (a B(a, b))]: for large shapes its terms are huge
     and cancel, so it is taken from the saddle-point binomial form (Loader),
     x^a y^b / B(a, b) = binomial mass * ab/(a+b), which keeps every digit;
     logs of x and y use log1p of the smaller one so 1 - x loses nothing */
  double pre;
  if (a >= 10.0 && b >= 10.0) {
    pre = mf_beta_prefix_sp(a, b, x, y);
  } else {
    double lx = y < 0.5 ? log1p(-y) : log(x), ly = x < 0.5 ? log1p(-x) : log(y);
    pre = a * lx + b * ly - m_lbeta(a, b) - log(a);
  }
  *log_i = pre + log(mf_betacf(a, b, x));
  if (*log_i > 0.0) *log_i = 0.0;
  *log_ic = m_log1m_exp(*log_i);
}

double m_inc_beta(double a, double b, double x) {
  if (isnan(x) || x < 0.0 || x > 1.0) return NAN;
  double li, lc;
  m_inc_beta_log(a, b, x, 1.0 - x, &li, &lc);
  return exp(li);
}

/* phi(z)/Phi(z) from the log CDF, which stays accurate far into the lower tail
   (where the ratio grows like |z|) and where Phi rounds to 1 (ratio -> phi). */
double m_std_normal_dlcdf(double z) {
  if (isnan(z)) return NAN;
  if (z == INFINITY) return 0.0;
  if (z == -INFINITY) return INFINITY;
  return exp(-0.5 * z * z - PPL_LOG_SQRT_2PI - m_std_normal_lcdf(z));
}

double m_x_over_expm1(double x) {
  if (fabs(x) < 1e-8) return 1.0 - 0.5 * x;
  if (x > 700.0) return x * exp(-x);
  return x / expm1(x);
}
