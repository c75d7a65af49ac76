/* adapt.c — dual averaging of the step size and windowed estimation of the
 * inverse metric, following Stan's stepsize_adaptation, windowed_adaptation,
 * welford_var_estimator / welford_covar_estimator and var_adaptation /
 * covar_adaptation, so warmup behaves like CmdStan's.
 *
 * One deliberate difference: when the warmup is too short for the configured
 * buffers, older Stan releases switched to the 15% / 75% / 10% split but left
 * the window counters of the old configuration in place, so the metric was
 * never updated; here the schedule restarts with the new split, which is what
 * the split is for (and what later Stan releases do). */
#include "adapt.h"

#include <math.h>
#include <string.h>

#include "../core/value.h"

/* ---- dual averaging ---- */

void da_init(DualAvg *a, double delta) {
  memset(a, 0, sizeof *a);
  a->delta = delta;
  a->gamma = 0.05;
  a->t0 = 10;
  a->kappa = 0.75;
  a->mu = log(10.0);
}

void da_restart(DualAvg *a) {
  a->counter = 0;
  a->s_bar = 0;
  a->x_bar = 0;
}

void da_set_mu(DualAvg *a, double mu) { a->mu = mu; }

double da_learn(DualAvg *a, double accept_stat) {
  a->counter += 1;
  if (accept_stat > 1) accept_stat = 1;
  /* running mean of the acceptance shortfall, with t0 damping the start */
  double eta = 1.0 / (a->counter + a->t0);
  a->s_bar = (1 - eta) * a->s_bar + eta * (a->delta - accept_stat);
  double x = a->mu - a->s_bar * sqrt(a->counter) / a->gamma;
  double x_eta = pow(a->counter, -a->kappa);
  a->x_bar = (1 - x_eta) * a->x_bar + x_eta * x;
  return exp(x);
}

double da_final(const DualAvg *a) { return exp(a->x_bar); }

/* ---- windows ---- */

static void win_restart(Windows *w) {
  w->counter = 0;
  w->window_size = w->base_window;
  w->next_window = w->init_buffer + w->window_size - 1;
}

void win_init(Windows *w, int num_warmup, int init_buffer, int term_buffer, int base_window) {
  memset(w, 0, sizeof *w);
  if (num_warmup < 20) {
    /* no window ever opens: counter >= 0 fails "counter < num_warmup - term" */
    w->next_window = -1;
    return;
  }
  w->num_warmup = num_warmup;
  if (init_buffer + base_window + term_buffer > num_warmup) {
    w->init_buffer = (int)(0.15 * num_warmup);
    w->term_buffer = (int)(0.1 * num_warmup);
    w->base_window = num_warmup - (w->init_buffer + w->term_buffer);
    w->scaled = true;
  } else {
    w->init_buffer = init_buffer;
    w->term_buffer = term_buffer;
    w->base_window = base_window;
  }
  win_restart(w);
}

bool win_in_window(const Windows *w) {
  return w->counter >= w->init_buffer && w->counter < w->num_warmup - w->term_buffer &&
         w->counter != w->num_warmup;
}

bool win_window_end(const Windows *w) {
  return w->counter == w->next_window && w->counter != w->num_warmup;
}

void win_next(Windows *w) {
  int last = w->num_warmup - w->term_buffer - 1;
  if (w->next_window == last) return;
  w->window_size *= 2;
  w->next_window = w->counter + w->window_size;
  /* a window that would leave less than twice its size before the terminal
     buffer absorbs the rest instead */
  if (w->next_window != last && w->next_window + 2 * w->window_size >= w->num_warmup - w->term_buffer)
    w->next_window = last;
}

/* ---- Welford ---- */

void welford_init(Welford *w, size_t dim, bool dense) {
  w->dim = dim;
  w->dense = dense;
  size_t n = dim > 0 ? dim : 1;
  w->mean = gc_alloc_atomic(sizeof(double) * n);
  w->m2 = gc_alloc_atomic(sizeof(double) * (dense ? n * n : n));
  welford_restart(w);
}

void welford_restart(Welford *w) {
  w->n = 0;
  memset(w->mean, 0, sizeof(double) * w->dim);
  memset(w->m2, 0, sizeof(double) * (w->dense ? w->dim * w->dim : w->dim));
}

void welford_add(Welford *w, const double *x) {
  w->n++;
  size_t d = w->dim;
  if (!w->dense) {
    for (size_t i = 0; i < d; i++) {
      double delta = x[i] - w->mean[i];
      w->mean[i] += delta / (double)w->n;
      w->m2[i] += delta * (x[i] - w->mean[i]);
    }
    return;
  }
  /* outer product of the old and new deviations: the covariance form of
     Welford's update */
  double *delta = gc_alloc_atomic(sizeof(double) * (d > 0 ? d : 1));
  for (size_t i = 0; i < d; i++) {
    delta[i] = x[i] - w->mean[i];
    w->mean[i] += delta[i] / (double)w->n;
  }
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++) w->m2[i * d + j] += (x[i] - w->mean[i]) * delta[j];
}

void welford_regularised(const Welford *w, double *out) {
  double n = (double)w->n;
  double scale = n / (n + 5.0), shrink = 1e-3 * (5.0 / (n + 5.0));
  double denom = n > 1 ? n - 1 : 1;
  if (!w->dense) {
    for (size_t i = 0; i < w->dim; i++) out[i] = scale * (w->m2[i] / denom) + shrink;
    return;
  }
  for (size_t i = 0; i < w->dim; i++)
    for (size_t j = 0; j < w->dim; j++)
      out[i * w->dim + j] = scale * (w->m2[i * w->dim + j] / denom) + (i == j ? shrink : 0);
}

/* ---- metric adaptation ---- */

void madapt_init(MetricAdapt *m, size_t dim, bool dense, int num_warmup) {
  win_init(&m->win, num_warmup, 75, 50, 25);
  welford_init(&m->est, dim, dense);
}

bool madapt_learn(MetricAdapt *m, const double *q, double *inv_metric) {
  if (win_in_window(&m->win)) welford_add(&m->est, q);
  if (win_window_end(&m->win)) {
    win_next(&m->win);
    welford_regularised(&m->est, inv_metric);
    welford_restart(&m->est);
    m->win.counter++;
    return true;
  }
  m->win.counter++;
  return false;
}
