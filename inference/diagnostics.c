/* diagnostics.c — R-hat, ESS, MCSE and quantiles exactly as R's posterior
 * package (and so cmdstanr, stansummary 2.33) computes them, after Vehtari,
 * Gelman, Simpson, Carpenter and Bürkner (2021), "Rank-normalization,
 * folding, and localization".  Users compare our numbers with posterior's, so
 * every quirk of posterior is kept on purpose and marked where it is (the
 * max_t == 0 sum, the ESS cap, constant input giving NaN).  The definitions
 * are written out in docs/output.md.
 *
 * Draws come as x[c][i] (chain c, draw i).  Work arrays are GC allocations:
 * diagnostics run once per column at the end of a run, never in a hot loop. */
#include "diagnostics.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/value.h"
#include "../stdlib/mathfn.h"

/* ---- small helpers ------------------------------------------------------ */

static double *dg_alloc(size_t n) { return gc_alloc_atomic(sizeof(double) * (n ? n : 1)); }

static bool dg_all_finite(size_t n, const double *x) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return false;
  return true;
}

static bool dg_any_nan(size_t n, const double *x) {
  for (size_t i = 0; i < n; i++)
    if (isnan(x[i])) return true;
  return false;
}

/* posterior's is_constant: range below machine epsilon (absolute). */
static bool dg_is_constant(size_t n, const double *x) {
  double lo = x[0], hi = x[0];
  for (size_t i = 1; i < n; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  return fabs(hi - lo) < DBL_EPSILON;
}

static double dg_mean(size_t n, const double *x) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  return s / (double)n;
}

/* Sample variance (n - 1 denominator), as R's var(); NaN for n < 2. */
static double dg_var(size_t n, const double *x) {
  if (n < 2) return NAN;
  double m = dg_mean(n, x), s = 0;
  for (size_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
  return s / (double)(n - 1);
}

/* The order of x[0..n) (no NaN): ord[k] is the index of the k-th smallest,
 * ties in index order.  An LSD radix sort of keys that order as the doubles
 * do (sign bit flipped for positives, every bit for negatives), 8 bits a
 * pass, skipping the passes where every key has the same byte: a summary
 * sorts every column several times, and qsort's comparator calls were a
 * quarter of a short run's time. */
static void dg_order_to(size_t n, const double *x, size_t *res) {
  if (n <= 32) { /* few draws (a short run, a VI fit's one draw a column): the
                    radix passes' 16 KB of counts would cost more than sorting */
    uint64_t key[32];
    for (size_t i = 0; i < n; i++) {
      uint64_t u, k;
      memcpy(&u, &x[i], sizeof u);
      k = (u >> 63) ? ~u : u | (UINT64_C(1) << 63);
      size_t j = i; /* insertion after equal keys: stable, as the radix sort */
      for (; j > 0 && key[j - 1] > k; j--) key[j] = key[j - 1], res[j] = res[j - 1];
      key[j] = k, res[j] = i;
    }
    return;
  }
  /* The scratch (keys, counts, the other half of the order) is malloc's
     and freed here: on the collector's heap it was most of what the
     summary allocates, and the collections it set off (each scanning every
     library's data, libLLVM's included) cost more than the sorts. */
  size_t scratch = sizeof(uint64_t) * 2 * n + sizeof(size_t) * n + sizeof(size_t[8][256]);
  char *mem = malloc(scratch);
  char *gcmem = mem ? NULL : gc_alloc_atomic(scratch); /* no malloc: as before */
  char *base = mem ? mem : gcmem;
  uint64_t *key = (uint64_t *)base, *key2 = key + n;
  size_t (*count)[256] = (size_t(*)[256])(base + sizeof(uint64_t) * 2 * n);
  size_t *ord = res;
  size_t *ord2 = (size_t *)(base + sizeof(uint64_t) * 2 * n + sizeof(size_t[8][256]));
  memset(count, 0, sizeof(size_t[8][256]));
  for (size_t i = 0; i < n; i++) {
    uint64_t u;
    memcpy(&u, &x[i], sizeof u);
    u = (u >> 63) ? ~u : u | (UINT64_C(1) << 63);
    key[i] = u, ord[i] = i;
    for (int b = 0; b < 8; b++) count[b][(u >> (8 * b)) & 255]++;
  }
  for (int b = 0; b < 8; b++) {
    size_t *c = count[b];
    if (n == 0 || c[(key[0] >> (8 * b)) & 255] == n) continue; /* one byte value: no move */
    size_t sum = 0;
    for (int v = 0; v < 256; v++) {
      size_t t = c[v];
      c[v] = sum, sum += t;
    }
    for (size_t i = 0; i < n; i++) {
      size_t at = c[(key[i] >> (8 * b)) & 255]++;
      key2[at] = key[i], ord2[at] = ord[i];
    }
    uint64_t *tk = key; key = key2, key2 = tk;
    size_t *to = ord; ord = ord2, ord2 = to;
  }
  if (ord != res) memcpy(res, ord, sizeof(size_t) * n);
  free(mem);
}

/* dg_order_to into an order on the collector's heap. */
static size_t *dg_order(size_t n, const double *x) {
  size_t *ord = gc_alloc_atomic(sizeof(size_t) * (n ? n : 1));
  dg_order_to(n, x, ord);
  return ord;
}

static double *dg_sorted_copy(size_t n, const double *x) {
  size_t *ord = dg_order(n, x);
  double *s = dg_alloc(n);
  for (size_t k = 0; k < n; k++) s[k] = x[ord[k]];
  return s;
}

/* Type-7 quantile of already sorted data, in R's arithmetic:
 * index = 1 + (n-1) p, then (1-h) x[lo] + h x[hi]. */
static double dg_quantile_sorted(size_t n, const double *s, double p) {
  if (n == 0 || isnan(p)) return NAN;
  double index = 1 + (double)(n - 1) * p;
  double lo = floor(index), hi = ceil(index);
  double q = s[(size_t)lo - 1];
  double xh = s[(size_t)hi - 1];
  if (index > lo && xh != q) {
    double h = index - lo;
    q = (1 - h) * q + h * xh;
  }
  return q;
}

double diag_quantile(int n, const double *x, double p) {
  if (n <= 0 || p < 0 || p > 1 || dg_any_nan((size_t)n, x)) return NAN;
  return dg_quantile_sorted((size_t)n, dg_sorted_copy((size_t)n, x), p);
}

static double dg_median(size_t n, const double *x) {
  double *s = dg_sorted_copy(n, x);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- split chains and rank normalisation -------------------------------- */

/* A set of M chains of L draws each, stored chain after chain. */
typedef struct Chains {
  int m, l;
  double *v; /* v[c * l + i] */
} Chains;

/* posterior's .split_chains: each chain becomes its first floor(n/2) and its
 * last floor(n/2) draws (the middle draw of an odd chain is dropped); a chain
 * of one draw is left whole. */
static Chains dg_split(int m, int n, const double *const *x) {
  Chains s;
  if (n == 1) {
    s.m = m, s.l = 1;
    s.v = dg_alloc((size_t)m);
    for (int c = 0; c < m; c++) s.v[c] = x[c][0];
    return s;
  }
  int h = n / 2;
  s.m = 2 * m, s.l = h;
  s.v = dg_alloc((size_t)s.m * (size_t)h);
  for (int c = 0; c < m; c++) {
    memcpy(s.v + (size_t)(2 * c) * (size_t)h, x[c], sizeof(double) * (size_t)h);
    memcpy(s.v + (size_t)(2 * c + 1) * (size_t)h, x[c] + (n - h), sizeof(double) * (size_t)h);
  }
  return s;
}

/* z_scale: fractional ranks (ties get their average rank), back-transformed
 * with Blom's offset, (r - 3/8) / (S + 1/4), then through the normal
 * quantile. Callers have excluded NaN. */
static double dg_rank_score(size_t n, double r) {
  return m_std_normal_qf((r - 0.375) / ((double)n + 0.25));
}

double *diag_rank_scores(size_t n) {
  double *z = dg_alloc(n);
  for (size_t a = 0; a < n; a++) z[a] = dg_rank_score(n, (double)(a + 1));
  return z;
}

/* scores: diag_rank_scores(n) or NULL; ties (average ranks) are computed.
 * ord: v's order (dg_order) when the caller has it, else NULL. */
static void dg_rank_normalise_ord(size_t n, double *v, const double *scores, const size_t *ord) {
  if (!ord) ord = dg_order(n, v);
  for (size_t a = 0; a < n;) {
    size_t b = a;
    while (b + 1 < n && v[ord[b + 1]] == v[ord[a]]) b++;
    double r = ((double)(a + 1) + (double)(b + 1)) / 2;
    double z = scores && a == b ? scores[a] : dg_rank_score(n, r);
    for (size_t k = a; k <= b; k++) v[ord[k]] = z;
    a = b + 1;
  }
}

static void dg_rank_normalise(size_t n, double *v, const double *scores) {
  dg_rank_normalise_ord(n, v, scores, NULL);
}

/* ---- R-hat -------------------------------------------------------------- */

/* posterior's .rhat on (already split) chains: NaN for non-finite or
 * constant input, or when a chain has fewer than 2 draws. */
static double dg_rhat_chains(const Chains *s) {
  size_t total = (size_t)s->m * (size_t)s->l;
  if (s->m < 2 || s->l < 2 || !dg_all_finite(total, s->v) || dg_is_constant(total, s->v))
    return NAN;
  double *cmean = dg_alloc((size_t)s->m);
  double wsum = 0;
  for (int c = 0; c < s->m; c++) {
    const double *y = s->v + (size_t)c * (size_t)s->l;
    cmean[c] = dg_mean((size_t)s->l, y);
    wsum += dg_var((size_t)s->l, y);
  }
  double n = s->l;
  double between = n * dg_var((size_t)s->m, cmean);
  double within = wsum / s->m;
  return sqrt((between / within + n - 1) / n);
}

/* Every split chain constant while the draws as a whole are not: the chains
 * are stuck at different values.  B/W is then B/0, which rank normalisation
 * and rounding turn into a huge finite number or NaN (the folded draws of a
 * 2/2 split are constant); the honest answer is +inf.  Here we depart from
 * posterior on purpose. */
static bool dg_stuck_apart(int m, int n, const double *const *x) {
  if (n < 4 || !dg_all_finite((size_t)n, x[0])) return false;
  double lo = x[0][0], hi = x[0][0];
  for (int c = 0; c < m; c++) {
    if (!dg_all_finite((size_t)n, x[c])) return false;
    int h = n / 2;
    if (!dg_is_constant((size_t)h, x[c]) || !dg_is_constant((size_t)h, x[c] + (n - h))) return false;
    for (int i = 0; i < n; i++) {
      if (x[c][i] < lo) lo = x[c][i];
      if (x[c][i] > hi) hi = x[c][i];
    }
  }
  return !(fabs(hi - lo) < DBL_EPSILON);
}

double diag_rhat(int m, int n, const double *const *x) {
  if (m < 1 || n < 1 || (long)m * n < 4) return NAN;
  size_t total = (size_t)m * (size_t)n;
  for (int c = 0; c < m; c++)
    if (dg_any_nan((size_t)n, x[c])) return NAN;
  if (dg_stuck_apart(m, n, x)) return INFINITY;

  Chains bulk = dg_split(m, n, x);
  dg_rank_normalise((size_t)bulk.m * (size_t)bulk.l, bulk.v, NULL);
  double rb = dg_rhat_chains(&bulk);

  /* folded draws |x - median(x)|, median over all draws before splitting */
  double *all = dg_alloc(total);
  for (int c = 0; c < m; c++) memcpy(all + (size_t)c * (size_t)n, x[c], sizeof(double) * (size_t)n);
  double med = dg_median(total, all);
  const double **fx = gc_alloc(sizeof(double *) * (size_t)m);
  for (int c = 0; c < m; c++) {
    double *f = all + (size_t)c * (size_t)n;
    for (int i = 0; i < n; i++) f[i] = fabs(f[i] - med);
    fx[c] = f;
  }
  if (dg_any_nan(total, all)) return NAN;
  Chains tail = dg_split(m, n, fx);
  dg_rank_normalise((size_t)tail.m * (size_t)tail.l, tail.v, NULL);
  double rt = dg_rhat_chains(&tail);
  if (isnan(rb) || isnan(rt)) return NAN; /* R's max() propagates NA */
  return rb > rt ? rb : rt;
}

/* ---- autocovariance by FFT ---------------------------------------------- */

/* In-place iterative radix-2 FFT of length p (a power of two); sign -1 for
 * the forward transform, +1 for the (unnormalised) inverse. cs/sn hold
 * cos/sin(2 pi k / p) for k < p/2, computed directly (no recurrences) to keep
 * rounding at the 1e-16 level. */
static void dg_fft(size_t p, double *re, double *im, int sign, const double *cs, const double *sn) {
  for (size_t i = 1, j = 0; i < p; i++) {
    size_t bit = p >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      double t = re[i]; re[i] = re[j]; re[j] = t;
      t = im[i]; im[i] = im[j]; im[j] = t;
    }
  }
  /* a stage's butterflies are independent: each twiddle is loaded once and
     applied to every block (the same operations as block by block) */
  for (size_t len = 2; len <= p; len <<= 1) {
    size_t half = len / 2, step = p / len;
    for (size_t k = 0; k < half; k++) {
      double wr = cs[k * step], wi = sign * sn[k * step];
      for (size_t a = k; a < p; a += len) {
        size_t b = a + half;
        double tr = re[b] * wr - im[b] * wi;
        double ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr, im[b] = im[a] - ti;
        re[a] += tr, im[a] += ti;
      }
    }
  }
}

/* Biased autocovariances ac[t] = (1/l) sum_i (y_i - ybar)(y_{i+t} - ybar) for
 * t < l, added into acc[] (so the caller can average over chains).  Zero
 * padding to at least 2l makes the circular correlation linear. */
typedef struct FftPlan {
  size_t p;
  double *cs, *sn, *re, *im;
} FftPlan;

static FftPlan dg_fft_plan(size_t l) {
  FftPlan f;
  f.p = 2;
  while (f.p < 2 * l) f.p <<= 1;
  f.cs = dg_alloc(f.p / 2);
  f.sn = dg_alloc(f.p / 2);
  for (size_t k = 0; k < f.p / 2; k++) {
    double a = 2 * M_PI * (double)k / (double)f.p;
    f.cs[k] = cos(a), f.sn[k] = sin(a);
  }
  f.re = dg_alloc(f.p);
  f.im = dg_alloc(f.p);
  return f;
}

/* The autocovariances of y and, if y2 is not NULL, of y2 (both of length l)
 * added into acc: two real sequences go through one complex transform, as
 * re and im, and their spectra are separated by symmetry, which halves the
 * transforms a summary makes. */
static void dg_autocov_add(FftPlan *f, size_t l, const double *y, const double *y2, double *acc) {
  const double *ys[2] = {y, y2};
  double mean[2] = {0, 0};
  bool constant[2] = {true, true};
  for (int k = 0; k < 2; k++) {
    if (!ys[k]) continue;
    mean[k] = dg_mean(l, ys[k]);
    for (size_t i = 0; i < l; i++)
      if (ys[k][i] != ys[k][0]) constant[k] = false;
  }
  for (size_t i = 0; i < f->p; i++) {
    /* a constant sequence has all autocovariances 0 (posterior), as zeros give */
    f->re[i] = i < l && !constant[0] ? y[i] - mean[0] : 0;
    f->im[i] = i < l && y2 && !constant[1] ? y2[i] - mean[1] : 0;
  }
  dg_fft(f->p, f->re, f->im, -1, f->cs, f->sn);
  /* Z = A + iB with A, B the transforms of the two real inputs:
     A_k = (Z_k + conj Z_-k) / 2, B_k = (Z_k - conj Z_-k) / 2i; their power
     spectra are real and even, so one inverse transform of |A|^2 + i|B|^2
     gives both autocovariances, in re and im. */
  for (size_t k = 0; k <= f->p / 2; k++) {
    size_t j = (f->p - k) % f->p;
    double zr = f->re[k], zi = f->im[k], wr = f->re[j], wi = f->im[j];
    double ar = (zr + wr) / 2, ai = (zi - wi) / 2;
    double br = (zi + wi) / 2, bi = (wr - zr) / 2;
    double pa = ar * ar + ai * ai, pb = br * br + bi * bi;
    f->re[k] = f->re[j] = pa;
    f->im[k] = f->im[j] = pb;
  }
  dg_fft(f->p, f->re, f->im, 1, f->cs, f->sn);
  double scale = 1.0 / ((double)f->p * (double)l);
  for (size_t t = 0; t < l; t++) acc[t] += (f->re[t] + (y2 ? f->im[t] : 0)) * scale;
}

/* ---- ESS ---------------------------------------------------------------- */

/* posterior's .ess on (already split) chains: Geyer's initial positive then
 * initial monotone sequence over the multi-chain autocorrelation estimate,
 * with the "improved" last term and the cap ESS <= S log10(S). */
/* Lags are summed directly, DG_LAG_CHUNK at a time as Geyer's sequence asks
 * for them; the sequence of a well-mixing chain ends within a few lags.
 * When it runs on (a chain that mixes slowly, or chains stuck at different
 * levels), one FFT gives the rest, once the direct sums have cost about what
 * the transforms cost (dg_direct_lags): never more than twice the cheaper
 * of the two, without knowing in advance how far the sequence goes. */
#define DG_LAG_CHUNK 8

/* Lags worth summing directly before the FFT takes over: the transforms'
 * cost (ceil(m/2) pairs of two complex transforms of p points, p log2 p
 * butterfly halves each, about DG_FFT_WORK times a direct sum's multiply-add
 * apiece, measured with callgrind) over a lag's m * l multiply-adds. */
#define DG_FFT_WORK 8
static size_t dg_direct_lags(int m, size_t l) {
  size_t p = 2, lg = 1;
  while (p < 2 * l) p <<= 1, lg++;
  double fft = (double)((m + 1) / 2) * 2.0 * (double)p * (double)lg * DG_FFT_WORK;
  double lags = fft / ((double)m * (double)l);
  return lags < 64 ? 64 : lags > (double)l ? l : (size_t)lags;
}

/* Two lanes of doubles: eight lags a pass as four pairs, each lane one lag's
 * sum in the order of that lag alone (the bits of a scalar loop). */
typedef double dg_v2 __attribute__((vector_size(16)));

static inline dg_v2 dg_load2(const double *p) {
  dg_v2 v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* acov[t] for from <= t < to, sum_i y_i y_{i+t} / l averaged over the m
 * chains; cy holds each chain centred by its mean (a constant chain as 0). */
static void dg_autocov_direct(int m, size_t l, const double *cy, size_t from, size_t to,
                              double *acov) {
  for (size_t t = from; t < to; t++) acov[t] = 0;
  for (int c = 0; c < m; c++) {
    const double *y = cy + (size_t)c * l;
    size_t t = from;
    for (; t + 8 <= to; t += 8) {
      dg_v2 a[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
      size_t i = 0;
      for (; i + t + 7 < l; i++) {
        dg_v2 yi = {y[i], y[i]};
        const double *z = y + i + t;
        a[0] += yi * dg_load2(z), a[1] += yi * dg_load2(z + 2);
        a[2] += yi * dg_load2(z + 4), a[3] += yi * dg_load2(z + 6);
      }
      double s[8];
      memcpy(s, a, sizeof s);
      for (; i + t < l; i++) /* the longer lags end first */
        for (size_t k = 0; i + t + k < l && k < 8; k++) s[k] += y[i] * y[i + t + k];
      for (int k = 0; k < 8; k++) acov[t + (size_t)k] += s[k] / (double)l;
    }
    for (; t < to; t++) {
      double a = 0;
      for (size_t i = 0; i + t < l; i++) a += y[i] * y[i + t];
      acov[t] += a / (double)l;
    }
  }
  for (size_t t = from; t < to; t++) acov[t] /= m;
}

/* The lags from `from` on by FFT (the ones before keep their direct sums). */
static void dg_autocov_fft(const Chains *s, size_t from, double *acov) {
  int m = s->m;
  size_t l = (size_t)s->l;
  FftPlan plan = dg_fft_plan(l);
  double *acc = dg_alloc(l);
  memset(acc, 0, sizeof(double) * l);
  for (int c = 0; c < m; c += 2) {
    const double *y = s->v + (size_t)c * l, *y2 = c + 1 < m ? y + l : NULL;
    dg_autocov_add(&plan, l, y, y2, acc);
  }
  for (size_t t = from; t < l; t++) acov[t] = acc[t] / m;
}

/* scratch: dg_ess_words(s) doubles of the caller's, or NULL. */
static size_t dg_ess_words(int m, size_t l) { return 2 * l + (size_t)m + (size_t)m * l; }

static double dg_ess_chains_in(const Chains *s, double *scratch) {
  int m = s->m;
  size_t l = (size_t)s->l, total = (size_t)m * l;
  if (l < 3 || !dg_all_finite(total, s->v) || dg_is_constant(total, s->v)) return NAN;

  /* scratch off the collector's heap, as dg_order's (freed below) */
  size_t words = dg_ess_words(m, l);
  double *mem = scratch ? NULL : malloc(sizeof(double) * words);
  double *base = scratch ? scratch : mem ? mem : dg_alloc(words);
  double *acov = base, *rho = base + l, *cmean = base + 2 * l, *cy = cmean + m;
  memset(base, 0, sizeof(double) * 2 * l); /* rho past max_t is read as 0 */
  for (int c = 0; c < m; c++) {
    const double *y = s->v + (size_t)c * l;
    cmean[c] = dg_mean(l, y);
    bool constant = true;
    for (size_t i = 0; i < l && constant; i++) constant = y[i] == y[0];
    for (size_t i = 0; i < l; i++) cy[(size_t)c * l + i] = constant ? 0 : y[i] - cmean[c];
  }
  size_t direct = dg_direct_lags(m, l);
  size_t have = l < DG_LAG_CHUNK ? l : DG_LAG_CHUNK;
  dg_autocov_direct(m, l, cy, 0, have, acov);

  double n = (double)l;
  double mean_var = acov[0] * n / (n - 1);
  double var_plus = mean_var * (n - 1) / n;
  if (m > 1) var_plus += dg_var((size_t)m, cmean);

  size_t t = 0;
  double even = 1, odd = 1 - (mean_var - acov[1]) / var_plus;
  rho[0] = even, rho[1] = odd;
  while ((long)t < (long)l - 5 && !isnan(even + odd) && even + odd > 0) {
    t += 2;
    if (t + 1 >= have) { /* t + 1 < l: the loop's bound */
      if (have < direct) {
        size_t to = have + DG_LAG_CHUNK < l ? have + DG_LAG_CHUNK : l;
        dg_autocov_direct(m, l, cy, have, to, acov);
        have = to;
      } else {
        dg_autocov_fft(s, have, acov);
        have = l;
      }
    }
    even = 1 - (mean_var - acov[t]) / var_plus;
    odd = 1 - (mean_var - acov[t + 1]) / var_plus;
    if (even + odd >= 0) rho[t] = even, rho[t + 1] = odd;
  }
  size_t max_t = t;
  if (even > 0) rho[max_t] = even;

  for (t = 0; t + 4 <= max_t;) {
    t += 2;
    if (rho[t] + rho[t + 1] > rho[t - 2] + rho[t - 1]) {
      rho[t] = (rho[t - 2] + rho[t - 1]) / 2;
      rho[t + 1] = rho[t];
    }
  }

  double ess = (double)total, sum = 0;
  /* R's sum(rho_hat_t[1:max_t]) with max_t == 0 is sum(rho_hat_t[c(1, 0)]),
     i.e. rho[0]: kept so short chains agree with posterior. */
  if (max_t == 0)
    sum = rho[0];
  else
    for (t = 0; t < max_t; t++) sum += rho[t];
  double tau = -1 + 2 * sum + rho[max_t];
  double bound = 1 / log10(ess);
  if (tau < bound) tau = bound;
  free(mem);
  return ess / tau;
}

static double dg_ess_chains(const Chains *s) { return dg_ess_chains_in(s, NULL); }

static bool dg_any_nonfinite(int m, int n, const double *const *x) {
  for (int c = 0; c < m; c++)
    if (!dg_all_finite((size_t)n, x[c])) return true;
  return false;
}

double diag_ess_basic(int m, int n, const double *const *x) {
  if (m < 1 || n < 1) return NAN;
  Chains s = dg_split(m, n, x);
  return dg_ess_chains(&s);
}

double diag_ess_bulk(int m, int n, const double *const *x) {
  if (m < 1 || n < 1) return NAN;
  for (int c = 0; c < m; c++)
    if (dg_any_nan((size_t)n, x[c])) return NAN;
  Chains s = dg_split(m, n, x);
  dg_rank_normalise((size_t)s.m * (size_t)s.l, s.v, NULL);
  return dg_ess_chains(&s);
}

/* ESS of the indicator x <= quantile(x, p), p in (0, 1). */
static double dg_ess_quantile(int m, int n, const double *const *x, const double *sorted,
                              double p) {
  double q = dg_quantile_sorted((size_t)m * (size_t)n, sorted, p);
  const double **ind = gc_alloc(sizeof(double *) * (size_t)m);
  for (int c = 0; c < m; c++) {
    double *v = dg_alloc((size_t)n);
    for (int i = 0; i < n; i++) v[i] = x[c][i] <= q;
    ind[c] = v;
  }
  Chains s = dg_split(m, n, ind);
  return dg_ess_chains(&s);
}

double diag_ess_tail(int m, int n, const double *const *x) {
  if (m < 1 || n < 1 || dg_any_nonfinite(m, n, x)) return NAN;
  size_t total = (size_t)m * (size_t)n;
  double *all = dg_alloc(total);
  for (int c = 0; c < m; c++) memcpy(all + (size_t)c * (size_t)n, x[c], sizeof(double) * (size_t)n);
  if (dg_is_constant(total, all)) return NAN;
  all = dg_sorted_copy(total, all);
  double e5 = dg_ess_quantile(m, n, x, all, 0.05);
  double e95 = dg_ess_quantile(m, n, x, all, 0.95);
  if (isnan(e5) || isnan(e95)) return NAN;
  return e5 < e95 ? e5 : e95;
}

/* ---- summaries ---------------------------------------------------------- */

/* The order of the folded draws |x - med| from the order of the draws: the
 * sorted draws below the median, read backwards, and those above it, read
 * forwards, are each non-decreasing once folded (rounding is monotone), so
 * one merge gives a sorted order of the folded values without a second sort.
 * Ties may come in another order than a sort's, which rank normalisation
 * does not see: tied values share their average rank. */
static void dg_fold_order(size_t n, const double *sorted, const size_t *ord, double med,
                          size_t *out) {
  size_t lo = n / 2, hi = n / 2, k = 0; /* left: lo - 1 down to 0; right: hi up */
  while (lo > 0 || hi < n) {
    bool left = hi >= n || (lo > 0 && fabs(sorted[lo - 1] - med) <= fabs(sorted[hi] - med));
    out[k++] = left ? ord[--lo] : ord[hi++];
  }
}

/* diag_summarise for the usual case, every draw finite, not all equal, an
 * even number (>= 4) of them per chain: the split chains are then the draws
 * in their order, so one sort of the pooled draws gives the quantiles, the
 * tail ESS's thresholds, the bulk ranks that ESS and R-hat share, and (by a
 * merge) the folded draws' ranks.  The scratch is one malloc block, freed
 * here: a summary's allocations on the collector's heap cost more than its
 * arithmetic. */
static void dg_summarise_even(int m, int n, double *all, const double *scores, SummaryStats *s) {
  size_t total = (size_t)m * (size_t)n;
  size_t ewords = dg_ess_words(2 * m, (size_t)(n / 2));
  size_t bytes = sizeof(size_t) * 2 * total + sizeof(double) * (3 * total + ewords);
  char *mem = malloc(bytes);
  char *base = mem ? mem : gc_alloc_atomic(bytes);
  size_t *ord = (size_t *)base, *ford = ord + total;
  double *sorted = (double *)(ford + total), *z = sorted + total, *ind = z + total;
  double *escr = ind + total;
  dg_order_to(total, all, ord); /* the bulk ranks below sort the same values */
  for (size_t k = 0; k < total; k++) sorted[k] = all[ord[k]];
  s->q5 = dg_quantile_sorted(total, sorted, 0.05);
  s->q50 = dg_quantile_sorted(total, sorted, 0.5);
  s->q95 = dg_quantile_sorted(total, sorted, 0.95);
  Chains split = {2 * m, n / 2, all};
  s->mcse = s->sd / sqrt(dg_ess_chains_in(&split, escr));

  memcpy(z, all, sizeof(double) * total);
  dg_rank_normalise_ord(total, z, scores, ord);
  Chains bulk = {2 * m, n / 2, z};
  s->ess_bulk = dg_ess_chains_in(&bulk, escr);

  double e[2], q[2] = {s->q5, s->q95};
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < total; i++) ind[i] = all[i] <= q[k];
    Chains c = {2 * m, n / 2, ind};
    e[k] = dg_ess_chains_in(&c, escr);
  }
  s->ess_tail = isnan(e[0]) || isnan(e[1]) ? NAN : e[0] < e[1] ? e[0] : e[1];

  const double *x[64], **xp = m <= 64 ? x : gc_alloc(sizeof(double *) * (size_t)m);
  for (int c = 0; c < m; c++) xp[c] = all + (size_t)c * (size_t)n;
  if (m < 2) {
  } else if (dg_stuck_apart(m, n, xp)) {
    s->rhat = INFINITY;
  } else {
    double med = (sorted[total / 2 - 1] + sorted[total / 2]) / 2; /* total is even */
    for (size_t i = 0; i < total; i++) ind[i] = fabs(all[i] - med);
    dg_fold_order(total, sorted, ord, med, ford);
    dg_rank_normalise_ord(total, ind, scores, ford);
    Chains tail = {2 * m, n / 2, ind};
    double rb = dg_rhat_chains(&bulk), rt = dg_rhat_chains(&tail);
    s->rhat = isnan(rb) || isnan(rt) ? NAN : rb > rt ? rb : rt;
  }
  free(mem);
}

void diag_summarise_moments(int m, int n, const double *const *x, SummaryStats *s) {
  s->mean = s->sd = s->mcse = s->q5 = s->q50 = s->q95 = NAN;
  s->ess_bulk = s->ess_tail = s->rhat = NAN;
  if (m < 1 || n < 1) return;
  size_t total = (size_t)m * (size_t)n;
  double *all = dg_alloc(total);
  for (int c = 0; c < m; c++) memcpy(all + (size_t)c * (size_t)n, x[c], sizeof(double) * (size_t)n);
  s->mean = dg_mean(total, all);
  s->sd = sqrt(dg_var(total, all));
  if (dg_any_nan(total, all)) return;
  double *sorted = dg_sorted_copy(total, all);
  s->q5 = dg_quantile_sorted(total, sorted, 0.05);
  s->q50 = dg_quantile_sorted(total, sorted, 0.5);
  s->q95 = dg_quantile_sorted(total, sorted, 0.95);
}

void diag_summarise(int m, int n, const double *const *x, SummaryStats *s) {
  diag_summarise_scores(m, n, x, NULL, s);
}

void diag_summarise_scores(int m, int n, const double *const *x, const double *scores,
                           SummaryStats *s) {
  s->mean = s->sd = s->mcse = s->q5 = s->q50 = s->q95 = NAN;
  s->ess_bulk = s->ess_tail = s->rhat = NAN;
  if (m < 1 || n < 1) return;
  size_t total = (size_t)m * (size_t)n;
  double *all = malloc(sizeof(double) * total); /* freed below, as dg_summarise_even's */
  double *gall = all ? NULL : dg_alloc(total);
  double *pool = all ? all : gall;
  for (int c = 0; c < m; c++) memcpy(pool + (size_t)c * (size_t)n, x[c], sizeof(double) * (size_t)n);
  s->mean = dg_mean(total, pool);
  s->sd = sqrt(dg_var(total, pool));
  if (n >= 4 && n % 2 == 0 && dg_all_finite(total, pool) && !dg_is_constant(total, pool)) {
    dg_summarise_even(m, n, pool, scores, s);
    free(all);
    return;
  }
  if (!dg_any_nan(total, pool)) {
    double *sorted = dg_sorted_copy(total, pool);
    s->q5 = dg_quantile_sorted(total, sorted, 0.05);
    s->q50 = dg_quantile_sorted(total, sorted, 0.5);
    s->q95 = dg_quantile_sorted(total, sorted, 0.95);
  }
  free(all);
  s->ess_bulk = diag_ess_bulk(m, n, x);
  s->ess_tail = diag_ess_tail(m, n, x);
  /* posterior's mcse_mean: sd / sqrt(ess_mean), ess_mean = basic split ESS */
  s->mcse = s->sd / sqrt(diag_ess_basic(m, n, x));
  s->rhat = m > 1 ? diag_rhat(m, n, x) : NAN;
}

/* Normalised weights w_i = exp(lw_i - max lw) (pooled over chains); returns
 * their sum, or NaN when no weight is positive and finite. */
static double dg_weights(int m, int n, const double *const *lw, double *w) {
  double mx = -INFINITY;
  for (int c = 0; c < m; c++)
    for (int i = 0; i < n; i++) {
      if (isnan(lw[c][i])) return NAN;
      if (lw[c][i] > mx) mx = lw[c][i];
    }
  if (!isfinite(mx)) return NAN;
  double sum = 0;
  for (int c = 0; c < m; c++)
    for (int i = 0; i < n; i++) sum += w[(size_t)c * (size_t)n + (size_t)i] = exp(lw[c][i] - mx);
  return sum;
}

typedef struct WItem {
  double x, w;
} WItem;

static int dg_cmp_witem(const void *a, const void *b) {
  double x = ((const WItem *)a)->x, y = ((const WItem *)b)->x;
  return (x > y) - (x < y);
}

/* Weighted quantile: sorted draw k sits at cumulative probability
 * W_{<k} + w_k / 2 (Hazen's plotting position, R's type 5 for equal
 * weights), linear in between, the extreme draws outside. */
static double dg_wquantile(size_t n, const WItem *it, double p) {
  double cum = 0, prev_pos = 0, prev_x = 0;
  for (size_t k = 0; k < n; k++) {
    double pos = cum + it[k].w / 2;
    cum += it[k].w;
    if (p <= pos) {
      if (k == 0 || pos == prev_pos) return it[k].x;
      double h = (p - prev_pos) / (pos - prev_pos);
      return prev_x + h * (it[k].x - prev_x);
    }
    prev_pos = pos, prev_x = it[k].x;
  }
  return it[n - 1].x;
}

/* Kish's ESS 1 / sum W_g^2 over the distinct values g of a column, W_g the
 * total normalised weight of the draws equal to g (it[] sorted by value).
 * Copies of one particle (resampling in SMC) are one draw, however many
 * times they were copied.  A column of whole numbers is left ungrouped: a
 * discrete quantity repeats its values without being a copy. */
static double dg_kish_distinct(size_t n, const WItem *it) {
  bool whole = true;
  for (size_t k = 0; k < n && whole; k++) whole = it[k].x == nearbyint(it[k].x);
  double s2 = 0;
  for (size_t a = 0; a < n;) {
    size_t b = a;
    double g = it[a].w;
    while (!whole && b + 1 < n && it[b + 1].x == it[a].x) g += it[++b].w;
    s2 += g * g;
    a = b + 1;
  }
  return s2 > 0 ? 1 / s2 : NAN;
}

/* Bulk and tail ESS of the importance-resampled draws: each chain is
 * resampled by its own normalised weights with the deterministic systematic
 * scheme (offset 1/2), which keeps the draws' order, so copies are adjacent
 * and lower the ESS through their autocorrelation, and chains stuck at
 * different values lower it through the between-chain variance. NaN when a
 * chain has no positive weight or the resampled draws are constant. */
static void dg_ess_resampled(int m, int n, const double *const *x, const double *const *lw,
                             double *bulk, double *tail) {
  *bulk = *tail = NAN;
  const double **r = gc_alloc(sizeof(double *) * (size_t)m);
  double *w = dg_alloc((size_t)n);
  for (int c = 0; c < m; c++) {
    double sum = dg_weights(1, n, &lw[c], w);
    if (!(sum > 0)) return;
    double *y = dg_alloc((size_t)n), cum = w[0] / sum;
    int j = 0;
    for (int k = 0; k < n; k++) {
      double u = ((double)k + 0.5) / (double)n;
      while (u > cum && j + 1 < n) cum += w[++j] / sum;
      y[k] = x[c][j];
    }
    r[c] = y;
  }
  *bulk = diag_ess_bulk(m, n, r);
  *tail = diag_ess_tail(m, n, r);
}

void diag_summarise_weighted(int m, int n, const double *const *x, const double *const *lw,
                             SummaryStats *s) {
  s->mean = s->sd = s->mcse = s->q5 = s->q50 = s->q95 = NAN;
  s->ess_bulk = s->ess_tail = s->rhat = NAN;
  if (m < 1 || n < 1) return;
  size_t total = (size_t)m * (size_t)n;
  double *w = dg_alloc(total);
  double wsum = dg_weights(m, n, lw, w);
  if (!(wsum > 0)) return;
  WItem *it = gc_alloc_atomic(sizeof(WItem) * total);
  double mean = 0;
  for (int c = 0; c < m; c++)
    for (int i = 0; i < n; i++) {
      size_t k = (size_t)c * (size_t)n + (size_t)i;
      it[k].x = x[c][i];
      it[k].w = w[k] / wsum;
      mean += it[k].w * it[k].x;
    }
  double var = 0;
  for (size_t k = 0; k < total; k++) var += it[k].w * (it[k].x - mean) * (it[k].x - mean);
  s->mean = mean;
  s->sd = sqrt(var);
  bool nan = false;
  for (size_t k = 0; k < total; k++) nan |= isnan(it[k].x);
  if (!nan) {
    qsort(it, total, sizeof(WItem), dg_cmp_witem);
    s->q5 = dg_wquantile(total, it, 0.05);
    s->q50 = dg_wquantile(total, it, 0.5);
    s->q95 = dg_wquantile(total, it, 0.95);
    /* it[] is sorted by value now: what the distinct-value Kish ESS needs */
    double kish = dg_kish_distinct(total, it);
    double eb, et;
    dg_ess_resampled(m, n, x, lw, &eb, &et);
    s->ess_bulk = isnan(eb) || eb > kish ? kish : eb;
    s->ess_tail = isnan(et) || et > kish ? kish : et;
    s->mcse = s->sd / sqrt(s->ess_bulk);
  }
}

double diag_kish_ess(int m, int n, const double *const *lw) {
  if (m < 1 || n < 1) return NAN;
  size_t total = (size_t)m * (size_t)n;
  double *w = dg_alloc(total);
  double sum = dg_weights(m, n, lw, w), s2 = 0;
  if (!(sum > 0)) return NAN;
  for (size_t k = 0; k < total; k++) s2 += (w[k] / sum) * (w[k] / sum);
  return 1 / s2;
}

void diag_log_evidence(int m, int n, const double *const *lw, double *est, double *se) {
  *est = *se = NAN;
  if (m < 1 || n < 1) return;
  size_t total = (size_t)m * (size_t)n;
  double mx = -INFINITY;
  for (int c = 0; c < m; c++)
    for (int i = 0; i < n; i++) {
      if (isnan(lw[c][i])) return;
      if (lw[c][i] > mx) mx = lw[c][i];
    }
  if (mx == -INFINITY) {
    *est = -INFINITY; /* every weight zero: the evidence estimate is 0 */
    return;
  }
  if (!isfinite(mx)) return;
  double *w = dg_alloc(total);
  double sum = 0;
  for (int c = 0; c < m; c++)
    for (int i = 0; i < n; i++) sum += w[(size_t)c * (size_t)n + (size_t)i] = exp(lw[c][i] - mx);
  double mean = sum / (double)total;
  *est = mx + log(mean);
  /* delta method: se(log Zhat) = sd(w) / (sqrt(N) mean(w)); the common
     factor exp(mx) cancels */
  if (total > 1) *se = sqrt(dg_var(total, w)) / (sqrt((double)total) * mean);
}

void diag_evidence_combine(int m, const double *logz, const double *within_se, double *est,
                           double *se) {
  *est = *se = NAN;
  double mx = -INFINITY;
  for (int c = 0; c < m; c++) {
    if (isnan(logz[c])) return;
    if (logz[c] > mx) mx = logz[c];
  }
  if (m < 1 || !isfinite(mx)) {
    if (m >= 1 && mx == -INFINITY) *est = -INFINITY;
    return;
  }
  double s1 = 0, s2 = 0, wv = 0;
  bool have_within = within_se != NULL;
  for (int c = 0; c < m; c++) {
    double z = exp(logz[c] - mx);
    s1 += z;
    s2 += z * z;
    if (have_within && isfinite(within_se[c])) wv += z * z * within_se[c] * within_se[c];
    else have_within = false;
  }
  double mean = s1 / m;
  *est = mx + log(mean);
  /* both on the log scale by the delta method: se(log Zbar) = se(Zbar) / Zbar */
  double between = NAN, within = NAN;
  if (m > 1) {
    double var = (s2 - m * mean * mean) / (m - 1);
    between = sqrt(var > 0 ? var : 0) / (sqrt((double)m) * mean);
  }
  if (have_within) within = sqrt(wv) / (m * mean);
  /* Chains that disagree by more than a unit of log Z make the delta method
     collapse onto the largest estimate (it tops out near 1 however far apart
     they are); the spread of the log estimates, sd(log Z_c) / sqrt(m), keeps
     counting it.  For chains that agree the two are the same to first order. */
  double logsd = NAN;
  if (m > 1) {
    double lm = 0, lv = 0;
    for (int c = 0; c < m; c++) lm += logz[c];
    lm /= m;
    for (int c = 0; c < m; c++) lv += (logz[c] - lm) * (logz[c] - lm);
    logsd = isfinite(lv) ? sqrt(lv / (m - 1)) / sqrt((double)m) : NAN;
  }
  double best = NAN;
  const double cand[3] = {between, within, logsd};
  for (int k = 0; k < 3; k++)
    if (!isnan(cand[k]) && !(cand[k] <= best)) best = cand[k];
  *se = best;
}
