/* test_diag.c — diagnostics (R-hat, ESS bulk/tail/basic, MCSE, quantiles,
 * weighted summaries, log evidence) against diag_reference.h, produced by
 * the independent pure-Python implementation gen_diag_reference.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/diagnostics.h"
#include "core/value.h"
#include "tests/tap.h"

#include "diag_reference.h"

#define TOL 1e-8

static const double **chains_of(const DiagRef *r, const double *flat) {
  const double **x = gc_alloc(sizeof(double *) * (size_t)r->m);
  for (int c = 0; c < r->m; c++) x[c] = flat + (size_t)c * (size_t)r->n;
  return x;
}

static void check_set(const DiagRef *r) {
  const double *const *x = chains_of(r, r->x);
  tap_near(diag_ess_basic(r->m, r->n, x), r->ess_basic, TOL, "%s: ess_basic", r->name);
  tap_near(diag_ess_bulk(r->m, r->n, x), r->ess_bulk, TOL, "%s: ess_bulk", r->name);
  tap_near(diag_ess_tail(r->m, r->n, x), r->ess_tail, TOL, "%s: ess_tail", r->name);
  tap_near(diag_rhat(r->m, r->n, x), r->rhat, TOL, "%s: rhat", r->name);
  tap_near(diag_quantile(r->m * r->n, r->x, 0.25), r->q25, TOL, "%s: quantile 0.25", r->name);
  tap_near(diag_quantile(r->m * r->n, r->x, 0.975), r->q975, TOL, "%s: quantile 0.975", r->name);

  SummaryStats s;
  diag_summarise(r->m, r->n, x, &s);
  tap_near(s.mean, r->mean, TOL, "%s: summary mean", r->name);
  tap_near(s.sd, r->sd, TOL, "%s: summary sd", r->name);
  tap_near(s.mcse, r->mcse, TOL, "%s: summary mcse", r->name);
  tap_near(s.q5, r->q5, TOL, "%s: summary q5", r->name);
  tap_near(s.q50, r->q50, TOL, "%s: summary q50", r->name);
  tap_near(s.q95, r->q95, TOL, "%s: summary q95", r->name);
  tap_near(s.ess_bulk, r->s_ess_bulk, TOL, "%s: summary ess_bulk", r->name);
  tap_near(s.ess_tail, r->s_ess_tail, TOL, "%s: summary ess_tail", r->name);
  tap_near(s.rhat, r->s_rhat, TOL, "%s: summary rhat", r->name);

  if (r->lw) {
    const double *const *lw = chains_of(r, r->lw);
    diag_summarise_weighted(r->m, r->n, x, lw, &s);
    tap_near(s.mean, r->w_mean, TOL, "%s: weighted mean", r->name);
    tap_near(s.sd, r->w_sd, TOL, "%s: weighted sd", r->name);
    tap_near(s.mcse, r->w_mcse, TOL, "%s: weighted mcse", r->name);
    tap_near(s.ess_bulk, r->w_ess, TOL, "%s: weighted ess (Kish)", r->name);
    tap_near(s.ess_tail, r->w_ess, TOL, "%s: weighted ess_tail (Kish)", r->name);
    tap_near(s.q5, r->w_q5, TOL, "%s: weighted q5", r->name);
    tap_near(s.q50, r->w_q50, TOL, "%s: weighted q50", r->name);
    tap_near(s.q95, r->w_q95, TOL, "%s: weighted q95", r->name);
    tap_ok(isnan(s.rhat), "%s: weighted rhat is NaN", r->name);
    double est, se;
    diag_log_evidence(r->m, r->n, lw, &est, &se);
    tap_near(est, r->logz, TOL, "%s: log evidence", r->name);
    tap_near(se, r->logz_se, TOL, "%s: log evidence se", r->name);
  }
}

/* Cases with answers known by hand, independent of the reference script. */
static void check_by_hand(void) {
  double v[] = {4, 1, 3, 2, 5};
  tap_near(diag_quantile(5, v, 0.5), 3, 0, "type-7 median of 1..5");
  tap_near(diag_quantile(5, v, 0.1), 1.4, 1e-15, "type-7 10%% of 1..5 interpolates");
  tap_near(diag_quantile(5, v, 0), 1, 0, "quantile 0 is the minimum");
  tap_near(diag_quantile(5, v, 1), 5, 0, "quantile 1 is the maximum");
  double w[] = {1, NAN, 2};
  tap_ok(isnan(diag_quantile(3, w, 0.5)), "quantile with NaN is NaN");
  /* Up to 32 draws are ordered by insertion, beyond by radix passes: every
     quantile of n = 2..40 draws with ties and negatives against a plain
     sort of the same numbers (the order of values is the same either way). */
  for (int n = 2; n <= 40; n++) {
    double x[40], s[40];
    for (int i = 0; i < n; i++) x[i] = s[i] = (double)((i * 7919) % 13) - 6 + (i % 5 == 0 ? -0.0 : 0.25);
    for (int i = 1; i < n; i++)
      for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
        double t = s[j]; s[j] = s[j - 1]; s[j - 1] = t;
      }
    bool same = true;
    for (int k = 0; k <= 20; k++) {
      double p = k / 20.0, idx = 1 + (n - 1) * p, lo = floor(idx), hi = ceil(idx);
      double q = s[(int)lo - 1], xh = s[(int)hi - 1];
      if (idx > lo && xh != q) q = (1 - (idx - lo)) * q + (idx - lo) * xh;
      same = same && diag_quantile(n, x, p) == q;
    }
    tap_ok(same, "quantiles of %d draws with ties equal a plain sort's", n);
  }

  /* Two chains far apart: R-hat far above 1. */
  double a[] = {0.3, -1.2, 0.8, 2.0, -0.4, 1.1, -0.9, 0.2};
  double b[8];
  for (int i = 0; i < 8; i++) b[i] = a[i] + 100;
  const double *apart[2] = {a, b};
  double r = diag_rhat(2, 8, apart);
  tap_ok(r > 1.5, "chains 100 apart: rank R-hat far above 1 (got %g)", r);

  /* Too few draws: NaN, not a crash. */
  const double *one[1] = {a};
  tap_ok(isnan(diag_rhat(1, 3, one)), "rhat NaN with 3 draws");
  tap_ok(isnan(diag_ess_bulk(1, 5, one)), "ess_bulk NaN when split halves have < 3 draws");

  /* Log evidence of equal weights is that weight, with zero standard error. */
  double lwv[] = {-2.5, -2.5, -2.5, -2.5};
  const double *lw[1] = {lwv};
  double est, se;
  diag_log_evidence(1, 4, lw, &est, &se);
  tap_near(est, -2.5, 1e-15, "log evidence of equal weights");
  tap_near(se, 0, 1e-15, "log evidence se of equal weights");
  double zero[] = {-INFINITY, -INFINITY};
  const double *lz[1] = {zero};
  diag_log_evidence(1, 2, lz, &est, &se);
  tap_ok(est == -INFINITY && isnan(se), "all-zero weights: log evidence -inf, se NaN");

  SummaryStats s;
  const double *xs[1] = {a};
  diag_summarise_weighted(1, 2, xs, lz, &s);
  tap_ok(isnan(s.mean) && isnan(s.q50), "weighted summary with zero weights is NaN");
}

/* Chains each constant at its own value: R-hat +inf whatever the split
 * (posterior gives a huge finite number for 3/1 and NaN for 2/2); constant
 * across all chains stays NaN. */
static void check_stuck_apart(void) {
  double one[10], two[10];
  for (int i = 0; i < 10; i++) one[i] = 1, two[i] = 2;
  const double *split31[4] = {one, one, one, two};
  const double *split22[4] = {one, one, two, two};
  const double *same[4] = {one, one, one, one};
  tap_ok(isinf(diag_rhat(4, 10, split31)) && diag_rhat(4, 10, split31) > 0,
         "constant chains at 1,1,1,2: R-hat +inf");
  tap_ok(isinf(diag_rhat(4, 10, split22)) && diag_rhat(4, 10, split22) > 0,
         "constant chains at 1,1,2,2: R-hat +inf");
  tap_ok(isnan(diag_rhat(4, 10, same)), "all chains constant at one value: R-hat NaN");
  /* a chain that jumps once between its halves is constant per split chain too */
  double jump[10];
  for (int i = 0; i < 10; i++) jump[i] = i < 5 ? 1 : 2;
  const double *jumped[2] = {jump, jump};
  tap_ok(isinf(diag_rhat(2, 10, jumped)), "halves stuck at different values: R-hat +inf");
  /* one moving chain among constant ones: an ordinary (finite) R-hat */
  double mov[10] = {0.3, -1.2, 0.8, 2.0, -0.4, 1.1, -0.9, 0.2, 1.5, -0.1};
  const double *mixed[2] = {one, mov};
  double r = diag_rhat(2, 10, mixed);
  tap_ok(isfinite(r) && r > 1, "one constant chain beside a moving one: finite R-hat (%g)", r);
}

/* The ESS of weighted draws, hand-computed. */
static void check_weighted_ess(void) {
  SummaryStats s;
  /* copies of one particle: values 0.5 x3, 1.5 x1, equal weights; groups
     weigh 3/4 and 1/4, Kish over them 1 / (9/16 + 1/16) = 1.6 (the chain is
     too short for the resampled ESS, which is NaN) */
  double xv[] = {0.5, 0.5, 0.5, 1.5}, eq[] = {0, 0, 0, 0};
  const double *x[1] = {xv}, *lw[1] = {eq};
  diag_summarise_weighted(1, 4, x, lw, &s);
  tap_near(s.ess_bulk, 1.6, 1e-12, "copies count once: Kish over distinct values 1.6");
  tap_near(s.ess_tail, 1.6, 1e-12, "ess_tail too");
  tap_near(s.mcse, s.sd / sqrt(1.6), 1e-12, "mcse = sd / sqrt(ess_bulk)");
  /* whole numbers repeat without being copies: not grouped, Kish = 4 */
  double kv[] = {0, 0, 1, 1};
  const double *k[1] = {kv};
  diag_summarise_weighted(1, 4, k, lw, &s);
  tap_near(s.ess_bulk, 4, 1e-12, "a column of whole numbers is not grouped: Kish 4");
  tap_near(diag_kish_ess(1, 4, lw), 4, 1e-12, "diag_kish_ess of equal weights is N");
  /* unequal weights, distinct values: Kish 1/sum w^2 with w = (1,1,2)/4 */
  double uv[] = {0.1, 0.2, 0.3}, ul[] = {0, 0, log(2.0)};
  const double *u[1] = {uv}, *ulw[1] = {ul};
  diag_summarise_weighted(1, 3, u, ulw, &s);
  tap_near(s.ess_bulk, 1 / (1.0 / 16 + 1.0 / 16 + 4.0 / 16), 1e-12, "Kish of weights 1,1,2: 8/3");
  tap_near(diag_kish_ess(1, 3, ulw), 8.0 / 3, 1e-12, "diag_kish_ess of weights 1,1,2");

  /* equal weights on long chains: the resampled draws are the draws, so the
     ESS is the unweighted bulk / tail ESS whenever that is below Kish's N */
  enum { N = 200 };
  double a[N], b[N], lz[N];
  for (int i = 0; i < N; i++) {
    a[i] = sin(0.05 * i) + 0.3 * cos(1.7 * i * i); /* autocorrelated */
    b[i] = cos(0.04 * i) + 0.3 * sin(2.3 * i * i);
    lz[i] = -1;
  }
  const double *ab[2] = {a, b}, *lzz[2] = {lz, lz};
  diag_summarise_weighted(2, N, ab, lzz, &s);
  double bulk = diag_ess_bulk(2, N, ab), tail = diag_ess_tail(2, N, ab);
  tap_ok(bulk < 2 * N, "the test chains are autocorrelated (bulk ESS %g)", bulk);
  tap_near(s.ess_bulk, bulk, 1e-12, "equal weights: weighted ESS bulk = ESS bulk of the draws");
  tap_near(s.ess_tail, tail < 2 * N ? tail : 2 * N, 1e-12, "equal weights: ESS tail likewise");

  /* one draw carries all the weight: ESS 1, not N */
  double one_w[N];
  for (int i = 0; i < N; i++) one_w[i] = i == 17 ? 0 : -INFINITY;
  const double *ow[1] = {one_w}, *aa[1] = {a};
  diag_summarise_weighted(1, N, aa, ow, &s);
  tap_near(s.ess_bulk, 1, 1e-12, "all weight on one draw: ESS 1");
  tap_near(s.mean, a[17], 1e-12, "and the mean is that draw");

  /* two chains, each a population of copies of its own particle: the
     distinct-value Kish is 2, and the resampled chains (constant, apart)
     say no more */
  double c1[N], c2[N];
  for (int i = 0; i < N; i++) c1[i] = 0.25, c2[i] = 0.75;
  const double *cc[2] = {c1, c2};
  diag_summarise_weighted(2, N, cc, lzz, &s);
  tap_ok(s.ess_bulk <= 2 + 1e-12 && s.ess_bulk > 0, "collapsed populations: ESS <= 2 (got %g)",
         s.ess_bulk);
}

/* Log evidence of several runs, hand-computed: Z = 1 and 3. */
static void check_evidence_combine(void) {
  double lz[2] = {0, log(3.0)}, est, se;
  diag_evidence_combine(2, lz, NULL, &est, &se);
  tap_near(est, log(2.0), 1e-12, "combined estimate: log mean(1, 3) = log 2");
  /* on the natural scale: sd(1, 3) = sqrt 2, se(Zbar) = sqrt 2 / sqrt 2 = 1,
     over Zbar = 2: 0.5; of the logs: sd(0, log 3) = log 3 / sqrt 2, over
     sqrt 2: log 3 / 2 = 0.549, the larger */
  tap_near(se, log(3.0) / 2, 1e-12, "SE from the spread of the logs: log 3 / 2");
  double close[2] = {0, 0.01};
  diag_evidence_combine(2, close, NULL, &est, &se);
  double z1 = exp(0.01), zbar = (1 + z1) / 2;
  tap_near(se, 0.005, 1e-12, "chains that agree: sd of the logs 0.01 / 2");
  tap_near(se, (z1 - 1) / sqrt(2.0) / (sqrt(2.0) * zbar), 1e-5,
           "and the delta method's is the same to first order");
  double apart[4] = {-232.15, -258.63, -199.97, -217.60};
  diag_evidence_combine(4, apart, NULL, &est, &se);
  double lm = (-232.15 - 258.63 - 199.97 - 217.60) / 4, lv = 0;
  for (int c = 0; c < 4; c++) lv += (apart[c] - lm) * (apart[c] - lm);
  tap_near(se, sqrt(lv / 3) / 2, 1e-12, "chains 60 apart in log Z: SE %.1f, not 1", se);
  double small[2] = {0.1, 0.1};
  diag_evidence_combine(2, lz, small, &est, &se);
  tap_near(se, log(3.0) / 2, 1e-12, "small own SEs: the spread's SE stands");
  double big[2] = {2, 2};
  diag_evidence_combine(2, lz, big, &est, &se);
  /* sqrt(1*4 + 9*4) / (2 * 2) */
  tap_near(se, sqrt(40.0) / 4, 1e-12, "large own SEs: sqrt(sum Z^2 se^2) / (m Zbar)");
  double l5[1] = {log(5.0)}, s3[1] = {0.3};
  diag_evidence_combine(1, l5, s3, &est, &se);
  tap_near(se, 0.3, 1e-12, "one run: its own SE");
  diag_evidence_combine(1, l5, NULL, &est, &se);
  tap_ok(isnan(se) && fabs(est - log(5.0)) < 1e-12, "one run without its own SE: NaN");
}

/* The normal scores of ranks computed once for a summary's columns give
 * every statistic bit for bit as computed per column, with and without ties
 * (ties take their average rank, which the table does not hold). */
static void check_rank_scores(void) {
  enum { M = 4, N = 250 };
  static double d[M][N];
  const double *x[M];
  double *z = diag_rank_scores((size_t)M * N);
  for (int ties = 0; ties < 2; ties++) {
    unsigned long long st = 12345;
    for (int c = 0; c < M; c++) {
      for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(st >> 11) * 0x1.0p-53;
        d[c][i] = ties ? floor(20 * u) : u * u + 0.1 * c;
      }
      x[c] = d[c];
    }
    SummaryStats a, b;
    diag_summarise(M, N, x, &a);
    diag_summarise_scores(M, N, x, z, &b);
    tap_ok(memcmp(&a, &b, sizeof a) == 0 && isfinite(b.rhat) && isfinite(b.ess_bulk),
           "rank scores computed once: the same statistics bit for bit (%s; R-hat %.17g, bulk "
           "ESS %.17g)", ties ? "ties" : "no ties", b.rhat, b.ess_bulk);
  }
}

/* posterior's ESS on split chains written out plainly: every autocovariance
 * summed directly, O(L^2).  The library sums the first lags directly and
 * takes the rest from one FFT once Geyer's sequence runs long: the two
 * agree to rounding. */
static double naive_ess(int m, int n, const double *const *x) {
  int h = n / 2, mm = 2 * m, l = h;
  double *y = malloc(sizeof(double) * (size_t)mm * (size_t)l);
  double *acov = calloc((size_t)l, sizeof(double)), *rho = calloc((size_t)l, sizeof(double));
  double *cm = malloc(sizeof(double) * (size_t)mm);
  for (int c = 0; c < m; c++)
    for (int i = 0; i < h; i++) {
      y[(2 * c) * l + i] = x[c][i];
      y[(2 * c + 1) * l + i] = x[c][n - h + i];
    }
  for (int c = 0; c < mm; c++) {
    double *v = y + (size_t)c * (size_t)l, s = 0;
    for (int i = 0; i < l; i++) s += v[i];
    cm[c] = s / l;
    for (int t = 0; t < l; t++) {
      double a = 0;
      for (int i = 0; i + t < l; i++) a += (v[i] - cm[c]) * (v[i + t] - cm[c]);
      acov[t] += a / l / mm;
    }
  }
  double gm = 0, bv = 0;
  for (int c = 0; c < mm; c++) gm += cm[c] / mm;
  for (int c = 0; c < mm; c++) bv += (cm[c] - gm) * (cm[c] - gm) / (mm - 1);
  double mean_var = acov[0] * l / (l - 1), var_plus = mean_var * (l - 1) / l + bv;
  double even = 1, odd = 1 - (mean_var - acov[1]) / var_plus;
  int t = 0;
  rho[0] = even, rho[1] = odd;
  while (t < l - 5 && even + odd > 0) {
    t += 2;
    even = 1 - (mean_var - acov[t]) / var_plus;
    odd = 1 - (mean_var - acov[t + 1]) / var_plus;
    if (even + odd >= 0) rho[t] = even, rho[t + 1] = odd;
  }
  int max_t = t;
  if (even > 0) rho[max_t] = even;
  for (t = 0; t + 4 <= max_t;) {
    t += 2;
    if (rho[t] + rho[t + 1] > rho[t - 2] + rho[t - 1]) rho[t] = rho[t + 1] = (rho[t - 2] + rho[t - 1]) / 2;
  }
  double sum = 0, total = (double)mm * l;
  if (max_t == 0) sum = rho[0];
  for (t = 0; t < max_t; t++) sum += rho[t];
  double tau = -1 + 2 * sum + rho[max_t];
  if (tau < 1 / log10(total)) tau = 1 / log10(total);
  free(y), free(acov), free(rho), free(cm);
  return total / tau;
}

/* Chains whose Geyer sequence runs long (an AR(1) with phi = 0.995) or to
 * the last lag (chains at different levels, as a sampler's treedepth__ is
 * when the chains adapted different step sizes): the direct sums and the
 * FFT that takes over from them give the plain sum's ESS. */
static void check_long_ess(void) {
  enum { M = 4, N = 2000 };
  static double d[M][N];
  const double *x[M];
  for (int kind = 0; kind < 2; kind++) {
    unsigned long long st = 777;
    for (int c = 0; c < M; c++) {
      double a = 0;
      for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(st >> 11) * 0x1.0p-53 - 0.5;
        a = kind == 0 ? 0.995 * a + u : u;
        d[c][i] = kind == 0 ? a : 3 * c + u;
      }
      x[c] = d[c];
    }
    double want = naive_ess(M, N, x), got = diag_ess_basic(M, N, x);
    tap_ok(fabs(got - want) <= 1e-12 * fabs(want),
           "ESS of %s: %.17g, summed plainly %.17g (relative difference %.2g)",
           kind == 0 ? "an AR(1) with phi 0.995" : "chains at different levels", got, want,
           fabs(got - want) / fabs(want));
  }
}

/* The summary ranks the folded draws |x - median| by merging the sorted
 * draws' two halves; diag_rhat sorts them.  The same R-hat, bit for bit,
 * also when values tie across the median (the folded values of -3 and 3),
 * and the same ESS as the per-statistic functions. */
static void check_fold_merge(void) {
  enum { M = 4, N = 300 };
  static double d[M][N];
  const double *x[M];
  for (int kind = 0; kind < 3; kind++) {
    unsigned long long st = 4242;
    for (int c = 0; c < M; c++) {
      for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(st >> 11) * 0x1.0p-53;
        d[c][i] = kind == 0 ? u * u * u + 0.05 * c : kind == 1 ? floor(13 * u) - 6 : (u < 0.5 ? -1 : 1) * floor(4 * u);
      }
      x[c] = d[c];
    }
    SummaryStats s;
    diag_summarise(M, N, x, &s);
    double r = diag_rhat(M, N, x), eb = diag_ess_bulk(M, N, x), et = diag_ess_tail(M, N, x);
    tap_ok(memcmp(&s.rhat, &r, sizeof r) == 0 && isfinite(r),
           "folded ranks by a merge (%s): R-hat %.17g = diag_rhat's %.17g",
           kind == 0 ? "no ties" : kind == 1 ? "ties across the median" : "few values", s.rhat, r);
    tap_ok(memcmp(&s.ess_bulk, &eb, sizeof eb) == 0 &&
               (memcmp(&s.ess_tail, &et, sizeof et) == 0 || (isnan(s.ess_tail) && isnan(et))),
           "and the summary's bulk and tail ESS (%.17g, %.17g) are diag_ess_bulk's and "
           "diag_ess_tail's (%.17g, %.17g)", s.ess_bulk, s.ess_tail, eb, et);
  }
}

int main(void) {
  gc_init();
  for (size_t i = 0; i < sizeof diag_refs / sizeof diag_refs[0]; i++) check_set(&diag_refs[i]);
  check_by_hand();
  check_stuck_apart();
  check_weighted_ess();
  check_evidence_combine();
  check_rank_scores();
  check_long_ess();
  check_fold_merge();
  return tap_done();
}
