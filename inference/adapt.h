/* adapt.h — Stan's warmup adaptation for the gradient engines: step size by
 * dual averaging (Hoffman & Gelman 2014, Stan's constants) and the windowed
 * estimation of the inverse metric (diagonal or dense), with the same window
 * schedule, regularisation and restarts as Stan's windowed_adaptation, so that
 * a run warms up the way a CmdStan run would.
 *
 * These are plain values without allocation except the Welford accumulators,
 * so each chain owns its own and no state is shared between threads. */
#ifndef PPL_ADAPT_H
#define PPL_ADAPT_H

#include <stdbool.h>
#include <stddef.h>

/* ---- step size: dual averaging ---- */

typedef struct DualAvg {
  double mu;     /* log(10 * epsilon0): the point the iterates shrink towards */
  double delta;  /* target mean acceptance statistic */
  double gamma, t0, kappa; /* 0.05, 10, 0.75 */
  double counter, s_bar, x_bar;
} DualAvg;

void da_init(DualAvg *a, double delta);
/* Forget the history (keeps mu and the constants). */
void da_restart(DualAvg *a);
void da_set_mu(DualAvg *a, double mu);
/* One update with the last transition's acceptance statistic; returns the next
 * step size. */
double da_learn(DualAvg *a, double accept_stat);
/* The step size to keep after warmup: exp(x_bar). */
double da_final(const DualAvg *a);

/* ---- the window schedule ---- */

typedef struct Windows {
  int num_warmup;      /* 0 when there is no metric adaptation (warmup < 20) */
  int init_buffer, term_buffer, base_window;
  int counter, window_size, next_window;
  bool scaled;         /* the 15% / 75% / 10% split was used */
} Windows;

/* Stan's defaults are 75 / 50 / 25.  Warmups shorter than the three stages
 * are split 15% / 75% / 10%; below 20 iterations the metric is not adapted. */
void win_init(Windows *w, int num_warmup, int init_buffer, int term_buffer, int base_window);
/* Is iteration `counter` (the current one) inside a metric window? */
bool win_in_window(const Windows *w);
/* Does the current window end at this iteration? */
bool win_window_end(const Windows *w);
/* After a window ends: the next, doubled window (the last one stretches to
 * the terminal buffer when the one after it would not fit). */
void win_next(Windows *w);

/* ---- Welford estimators ---- */

typedef struct Welford {
  size_t dim;
  bool dense;
  long n;
  double *mean; /* dim */
  double *m2;   /* dim (diagonal) or dim * dim (dense, row-major) */
} Welford;

void welford_init(Welford *w, size_t dim, bool dense);
void welford_restart(Welford *w);
void welford_add(Welford *w, const double *x);
/* Regularised estimate as Stan computes it: n/(n+5) * sample (co)variance +
 * 1e-3 * 5/(n+5) (times the identity for the dense case). out has dim
 * (diagonal) or dim * dim entries. */
void welford_regularised(const Welford *w, double *out);

/* ---- metric adaptation: the windows and the estimator together ---- */

typedef struct MetricAdapt {
  Windows win;
  Welford est;
} MetricAdapt;

void madapt_init(MetricAdapt *m, size_t dim, bool dense, int num_warmup);
/* Call once per warmup iteration with the state q after the transition (this
 * is Stan's learn_variance / learn_covariance).  Returns true when a window
 * has just ended: inv_metric (dim or dim * dim) then holds the new estimate
 * and the caller re-initialises the step size and restarts dual averaging. */
bool madapt_learn(MetricAdapt *m, const double *q, double *inv_metric);

#endif
