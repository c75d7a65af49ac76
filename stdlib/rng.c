/* rng.c — xoshiro256** and the exact samplers built on it.
 *
 * Every sampler here is exact (no approximations beyond floating point): the
 * polar method for normals, Marsaglia–Tsang for gammas, inversion or Hörmann's
 * transformed rejection (PTRS, BTRS) for Poisson and binomial counts.  All the
 * state lives in the caller's Rng, so two chains or two threads never share it.
 */
#include "rng.h"

#include <math.h>

#include "mathfn.h"

static uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* splitmix64: turns any 64-bit input into well-mixed state words, so nearby
   seeds (1, 2, 3...) give unrelated streams. */
static uint64_t rng_splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void rng_seed(Rng *r, uint64_t seed, uint64_t stream) {
  /* Hash seed and stream separately before combining: every state word then
     depends on both, so even the first outputs of two streams differ. */
  uint64_t a = seed, b = stream ^ 0xD1B54A32D192ED03ULL;
  uint64_t x = rng_splitmix(&a) ^ rng_rotl(rng_splitmix(&b), 17);
  for (int i = 0; i < 4; i++) r->s[i] = rng_splitmix(&x);
  if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1; /* all-zero state is a fixed point */
}

uint64_t rng_u64(Rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rng_rotl(s[3], 45);
  return result;
}

double rng_uniform(Rng *r) {
  /* the centre of one of 2^53 equal cells: never 0, never 1 */
  return ((double)(rng_u64(r) >> 11) + 0.5) * 0x1.0p-53;
}

double rng_normal(Rng *r) {
  /* Marsaglia's polar method; the second variate is dropped because the state
     has no room to keep it (and keeping it would make draws order-dependent). */
  for (;;) {
    double u = 2.0 * rng_uniform(r) - 1.0, v = 2.0 * rng_uniform(r) - 1.0;
    double s = u * u + v * v;
    if (s < 1.0 && s > 0.0) return u * sqrt(-2.0 * log(s) / s);
  }
}

double rng_exponential(Rng *r) { return -log(rng_uniform(r)); }

/* Marsaglia & Tsang (2000) for shape >= 1. */
static double rng_gamma_mt(Rng *r, double shape) {
  double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = rng_normal(r);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    double u = rng_uniform(r), x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) return d * v;
  }
}

/* log of a Gamma(shape, 1) draw; for shape < 1 the draw itself can underflow
   (G(a) = G(a+1) U^(1/a)), and beta draws need the ratio, not the value. */
static double rng_log_gamma(Rng *r, double shape) {
  if (shape >= 1.0) return log(rng_gamma_mt(r, shape));
  return log(rng_gamma_mt(r, shape + 1.0)) + log(rng_uniform(r)) / shape;
}

double rng_gamma(Rng *r, double shape) {
  if (!(shape > 0.0) || isinf(shape)) return NAN;
  if (shape >= 1.0) return rng_gamma_mt(r, shape);
  return exp(rng_log_gamma(r, shape));
}

double rng_beta(Rng *r, double a, double b) {
  if (!(a > 0.0 && b > 0.0) || isinf(a) || isinf(b)) return NAN;
  if (a >= 1.0 && b >= 1.0) {
    double x = rng_gamma_mt(r, a), y = rng_gamma_mt(r, b);
    return x / (x + y);
  }
  /* X/(X+Y) = inv_logit(log X - log Y): stays exact when both gammas underflow */
  double lx = rng_log_gamma(r, a), ly = rng_log_gamma(r, b);
  return m_inv_logit(lx - ly);
}

/* Inversion by sequential search, for small means (expected lambda+1 steps). */
static int64_t rng_poisson_inv(Rng *r, double lambda) {
  for (;;) {
    double u = rng_uniform(r), p = exp(-lambda), s = p;
    int64_t k = 0;
    while (u > s && k < 1000) {
      k++;
      p *= lambda / (double)k;
      s += p;
    }
    if (k < 1000) return k; /* otherwise rounding left s below u: redraw */
  }
}

/* PTRS: Hörmann (1993), transformed rejection with squeeze, lambda >= 10. */
static int64_t rng_poisson_ptrs(Rng *r, double lambda) {
  double slam = sqrt(lambda), loglam = log(lambda);
  double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    double u = rng_uniform(r) - 0.5, v = rng_uniform(r);
    double us = 0.5 - fabs(u);
    double k = floor((2.0 * a / us + b) * u + lambda + 0.43);
    if (us >= 0.07 && v <= vr) return (int64_t)k;
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <= -lambda + k * loglam - m_lgamma(k + 1.0))
      return (int64_t)k;
  }
}

int64_t rng_poisson(Rng *r, double lambda) {
  if (!(lambda >= 0.0) || isinf(lambda)) return -1;
  if (lambda == 0.0) return 0;
  if (lambda > 4e18) return -1; /* beyond int64: no meaningful draw */
  return lambda < 10.0 ? rng_poisson_inv(r, lambda) : rng_poisson_ptrs(r, lambda);
}

/* Inversion (BINV) for n*p < 10, p <= 1/2. */
static int64_t rng_binomial_inv(Rng *r, int64_t n, double p) {
  double q = 1.0 - p, s = p / q, a = ((double)n + 1.0) * s;
  double r0 = exp((double)n * log1p(-p));
  for (;;) {
    double u = rng_uniform(r), pk = r0;
    int64_t k = 0;
    while (u > pk) {
      u -= pk;
      k++;
      if (k > n) break;
      pk *= a / (double)k - s;
    }
    if (k <= n) return k;
  }
}

/* BTRS: Hörmann (1993), transformed rejection, n*p >= 10, p <= 1/2. */
static int64_t rng_binomial_btrs(Rng *r, int64_t n, double p) {
  double dn = (double)n, q = 1.0 - p, spq = sqrt(dn * p * q);
  double b = 1.15 + 2.53 * spq, a = -0.0873 + 0.0248 * b + 0.01 * p, c = dn * p + 0.5;
  double vr = 0.92 - 4.2 / b, alpha = (2.83 + 5.1 / b) * spq, lpq = log(p / q);
  double m = floor((dn + 1.0) * p), h = m_lgamma(m + 1.0) + m_lgamma(dn - m + 1.0);
  for (;;) {
    double u = rng_uniform(r) - 0.5, v = rng_uniform(r);
    double us = 0.5 - fabs(u);
    double k = floor((2.0 * a / us + b) * u + c);
    if (k < 0.0 || k > dn) continue;
    if (us >= 0.07 && v <= vr) return (int64_t)k;
    v = log(v * alpha / (a / (us * us) + b));
    if (v <= h - m_lgamma(k + 1.0) - m_lgamma(dn - k + 1.0) + (k - m) * lpq) return (int64_t)k;
  }
}

int64_t rng_binomial(Rng *r, int64_t n, double p) {
  if (n < 0 || !(p >= 0.0 && p <= 1.0)) return -1;
  if (n == 0 || p == 0.0) return 0;
  if (p == 1.0) return n;
  if (p > 0.5) return n - rng_binomial(r, n, 1.0 - p);
  return (double)n * p < 10.0 ? rng_binomial_inv(r, n, p) : rng_binomial_btrs(r, n, p);
}

int64_t rng_int(Rng *r, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  uint64_t n = (uint64_t)hi - (uint64_t)lo + 1; /* 0 means the full 2^64 range */
  if (n == 0) return (int64_t)rng_u64(r);
  /* Lemire's nearly-divisionless method: reject the low products that would
     make some values one count more likely than others. */
  unsigned __int128 m = (unsigned __int128)rng_u64(r) * n;
  uint64_t l = (uint64_t)m;
  if (l < n) {
    uint64_t t = -n % n;
    while (l < t) {
      m = (unsigned __int128)rng_u64(r) * n;
      l = (uint64_t)m;
    }
  }
  return (int64_t)((uint64_t)lo + (uint64_t)(m >> 64));
}
