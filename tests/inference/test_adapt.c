/* test_adapt.c — Stan's warmup pieces against references computed
 * independently (gen_adapt_reference.py, mpmath): the dual-averaging step
 * sizes for a fixed acceptance sequence, the iterations at which metric
 * windows end for long, short and too-short warmups, and the regularised
 * Welford variance and covariance; plus the MetricAdapt glue (how many states
 * enter the estimator, and that an update happens exactly at a window end). */
#include <math.h>
#include <stdio.h>

#include "inference/adapt.h"
#include "core/value.h"
#include "tests/tap.h"

#include "adapt_reference.h"

static void test_dual_averaging(void) {
  DualAvg a;
  da_init(&a, 0.8);
  da_set_mu(&a, log(10 * 1.0));
  double worst = 0;
  for (int t = 0; t < 60; t++) {
    double e = da_learn(&a, ref_da_accept[t]);
    double rel = fabs(e - ref_da_eps[t]) / ref_da_eps[t];
    if (rel > worst) worst = rel;
  }
  tap_ok(worst < 1e-12, "dual averaging (delta 0.8): 60 step sizes match (worst rel err %g)", worst);
  tap_near(da_final(&a), ref_da_final, 1e-12, "dual averaging: final step size exp(x_bar)");

  da_init(&a, 0.95);
  da_set_mu(&a, log(10 * 0.25));
  worst = 0;
  for (int t = 0; t < 60; t++) {
    double e = da_learn(&a, ref_da_accept[t]);
    double rel = fabs(e - ref_da_eps_095[t]) / ref_da_eps_095[t];
    if (rel > worst) worst = rel;
  }
  tap_ok(worst < 1e-12, "dual averaging (delta 0.95, eps0 0.25): step sizes match (%g)", worst);
  tap_near(da_final(&a), ref_da_final_095, 1e-12, "dual averaging (0.95): final step size");

  /* a restart forgets the history: the next step equals a fresh first step */
  da_restart(&a);
  DualAvg b;
  da_init(&b, 0.95);
  da_set_mu(&b, log(10 * 0.25));
  tap_near(da_learn(&a, 0.3), da_learn(&b, 0.3), 1e-15, "dual averaging: restart == fresh start");
  /* acceptance above target pushes the step size up, below pushes it down */
  da_init(&a, 0.8);
  da_init(&b, 0.8);
  tap_ok(da_learn(&a, 1.0) > da_learn(&b, 0.2), "dual averaging: higher acceptance, larger step");
}

static void test_windows(void) {
  int n = (int)(sizeof ref_win_warmups / sizeof ref_win_warmups[0]);
  for (int k = 0; k < n; k++) {
    Windows w;
    win_init(&w, ref_win_warmups[k], 75, 50, 25);
    int ends[64], ne = 0, used = 0;
    for (int c = 0; c < ref_win_warmups[k]; c++) {
      if (win_in_window(&w)) used++;
      if (win_window_end(&w)) {
        if (ne < 64) ends[ne++] = c;
        win_next(&w);
      }
      w.counter++;
    }
    bool same = ne == ref_win_nends[k];
    for (int i = 0; same && i < ne; i++) same = ends[i] == ref_win_ends[k][i];
    tap_ok(same, "windows for warmup %d: %d window ends as Stan's schedule", ref_win_warmups[k], ne);
    tap_ok(used == ref_win_used[k], "windows for warmup %d: %d adapting iterations (want %d)",
           ref_win_warmups[k], used, ref_win_used[k]);
  }
  /* the schedule everyone knows: 75 | 25 50 100 200 500 | 50 */
  Windows w;
  win_init(&w, 1000, 75, 50, 25);
  tap_ok(w.init_buffer == 75 && w.term_buffer == 50 && w.base_window == 25 && !w.scaled,
         "warmup 1000 keeps 75/25/50");
  win_init(&w, 100, 75, 50, 25);
  tap_ok(w.scaled && w.init_buffer == 15 && w.term_buffer == 10 && w.base_window == 75,
         "warmup 100 splits 15/75/10");
  win_init(&w, 19, 75, 50, 25);
  bool none = true;
  for (int c = 0; c < 19; c++, w.counter++) none = none && !win_in_window(&w) && !win_window_end(&w);
  tap_ok(none, "warmup 19: no metric adaptation");
}

static void test_welford(void) {
  Welford w;
  welford_init(&w, 3, false);
  for (int i = 0; i < 12; i++) welford_add(&w, ref_wf_x[i]);
  double v[3];
  welford_regularised(&w, v);
  for (int i = 0; i < 3; i++) tap_near(v[i], ref_wf_var[i], 1e-12, "regularised variance %d", i);
  welford_init(&w, 3, true);
  for (int i = 0; i < 12; i++) welford_add(&w, ref_wf_x[i]);
  double c[9];
  welford_regularised(&w, c);
  double worst = 0;
  for (int i = 0; i < 9; i++) {
    double e = fabs(c[i] - ref_wf_cov[i]);
    if (e > worst) worst = e;
  }
  tap_ok(worst < 1e-12, "regularised covariance (3x3) matches (worst abs err %g)", worst);
  welford_restart(&w);
  tap_ok(w.n == 0 && w.mean[0] == 0 && w.m2[4] == 0, "restart clears the estimator");
}

/* MetricAdapt on warmup 1000 with x_t = t: the first window (75..99) ends at
 * iteration 99 with the variance of 75..99, regularised with n = 25. */
static void test_metric_adapt(void) {
  MetricAdapt m;
  madapt_init(&m, 1, false, 1000);
  double inv = 1, q;
  int updates = 0, first = -1;
  double first_val = NAN;
  for (int t = 0; t < 1000; t++) {
    q = t;
    if (madapt_learn(&m, &q, &inv)) {
      if (first < 0) first = t, first_val = inv;
      updates++;
    }
  }
  tap_ok(updates == 5 && first == 99, "metric adaptation: 5 updates, the first at 99 (%d, %d)",
         updates, first);
  /* variance of 25 consecutive integers = 25*26/12 */
  double want = 25.0 / 30.0 * (25.0 * 26.0 / 12.0) + 1e-3 * 5.0 / 30.0;
  tap_near(first_val, want, 1e-12, "first window's regularised variance");
  /* last window 450..949: 500 integers */
  double last = 500.0 / 505.0 * (500.0 * 501.0 / 12.0) + 1e-3 * 5.0 / 505.0;
  tap_near(inv, last, 1e-12, "last window's regularised variance");
}

int main(void) {
  gc_init();
  test_dual_averaging();
  test_windows();
  test_welford();
  test_metric_adapt();
  return tap_done();
}
