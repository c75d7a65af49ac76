/* test_diag.c — diagnostics (R-hat, ESS bulk/tail/basic, MCSE, quantiles,
 * weighted summaries, log evidence) against diag_reference.h, produced by
 * the independent pure-Python implementation gen_diag_reference.py. */
#include <math.h>
#include <stdio.h>

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

int main(void) {
  gc_init();
  for (size_t i = 0; i < sizeof diag_refs / sizeof diag_refs[0]; i++) check_set(&diag_refs[i]);
  check_by_hand();
  return tap_done();
}
