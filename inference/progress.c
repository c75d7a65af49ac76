/* progress.c — the per-chain progress display of progress.h.
 *
 * Rates and time left are per chain: a chain's iterations so far over its
 * time so far (warmup and sampling steps cost about the same for MCMC), and
 * an engine's own unit over the time since the iteration began.  The
 * terminal display redraws at most five times a second (and at every phase
 * change), so a fast sampler does not spend its time writing escape codes. */
#include "progress.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "../core/value.h"

#define PR_REDRAW_S 0.2 /* terminal: seconds between redraws, at least */
#define PR_QUIET_S 5.0  /* lines: an engine unit of unknown total, at most this often */
#define PR_BAR 24

typedef struct PrChain {
  enum { PR_WAITING, PR_WARMUP, PR_SAMPLING, PR_DONE } phase;
  long done_w, done_s;   /* iterations finished in each phase */
  double t_start, t_samp; /* when the chain and its sampling began (NaN: not yet) */
  /* the engine's unit within the current iteration (unit NULL: none) */
  const char *unit;
  long u_done, u_total;
  double u_start, u_last;
  int shown_tenth;       /* lines: the last tenth of the chain printed */
  int shown_utenth;
} PrChain;

struct Progress {
  FILE *f;
  ProgressMode mode;
  int n;
  long warmup, iters;
  PrChain *ch;
  pthread_mutex_t mu;
  double t0, last_draw;
  bool drawn; /* terminal: the lines are on the screen (redraw moves up) */
};

static double pr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

Progress *progress_new(FILE *f, ProgressMode mode, int nchains, long warmup, long iters) {
  if (mode == PROGRESS_OFF || !f || nchains < 1) return NULL;
  Progress *p = gc_alloc(sizeof *p);
  p->f = f, p->mode = mode, p->n = nchains;
  p->warmup = warmup, p->iters = iters;
  p->ch = gc_alloc(sizeof(PrChain) * (size_t)nchains);
  for (int c = 0; c < nchains; c++) p->ch[c].shown_tenth = p->ch[c].shown_utenth = -1;
  pthread_mutex_init(&p->mu, NULL);
  p->t0 = pr_now();
  p->last_draw = -1;
  return p;
}

/* "1:05:07", "3:07", "0:09" */
static const char *pr_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  long t = (long)(s + 0.5);
  if (t >= 3600) return gc_printf("%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return gc_printf("%ld:%02ld", t / 60, t % 60);
}

static const char *pr_rate(double r) {
  if (!(r > 0)) return "-";
  return r >= 100 ? gc_printf("%.0f", r) : r >= 10 ? gc_printf("%.1f", r) : gc_printf("%.2f", r);
}

/* Seconds left for chain x at time t (NaN: not known yet). */
static double pr_left(const Progress *p, const PrChain *x, double t) {
  long total = p->warmup + p->iters, done = x->done_w + x->done_s;
  double el = t - x->t_start;
  if (done <= 0 || el <= 0) return NAN;
  return (double)(total - done) * el / (double)done;
}

/* What the engine's unit adds: " (event 45/100, 120 events/s)". */
static const char *pr_unit(const PrChain *x, double t) {
  if (!x->unit) return "";
  double el = t - x->u_start;
  const char *rate = el > 0 && x->u_done > 0 ? gc_printf(", %s %ss/s", pr_rate((double)x->u_done / el), x->unit) : "";
  if (x->u_total > 0) return gc_printf(" (%s %ld/%ld%s)", x->unit, x->u_done, x->u_total, rate);
  return gc_printf(" (%s %ld%s)", x->unit, x->u_done, rate);
}

static const char *pr_terminal_line(const Progress *p, const PrChain *x, int c, double t) {
  if (x->phase == PR_WAITING) return gc_printf("chain %d  waiting", c + 1);
  long total = p->warmup + p->iters, done = x->done_w + x->done_s;
  int fill = total > 0 ? (int)((double)PR_BAR * (double)done / (double)total) : PR_BAR;
  char bar[PR_BAR + 1];
  for (int k = 0; k < PR_BAR; k++) bar[k] = k < fill ? '#' : '.';
  bar[PR_BAR] = 0;
  bool warm = x->phase == PR_WARMUP;
  long i = warm ? x->done_w : x->done_s, n = warm ? p->warmup : p->iters;
  double since = warm ? x->t_start : x->t_samp;
  double rate = t > since && i > 0 ? (double)i / (t - since) : NAN;
  const char *tail = x->phase == PR_DONE
                         ? (t - x->t_start < 60 ? gc_printf("done in %.1f s", t - x->t_start)
                                                : gc_printf("done in %s", pr_duration(t - x->t_start)))
                         : gc_printf("%s it/s  %s left", pr_rate(rate), pr_duration(pr_left(p, x, t)));
  return gc_printf("chain %d  %-8s [%s] %*ld/%ld  %s%s", c + 1, warm ? "warmup" : "sampling", bar,
                   (int)snprintf(NULL, 0, "%ld", n), i, n, tail, pr_unit(x, t));
}

/* CmdStan's line, iterations counted over warmup and sampling together. */
static const char *pr_plain_line(const Progress *p, const PrChain *x, int c, double t) {
  long total = p->warmup + p->iters, done = x->done_w + x->done_s;
  int w = (int)snprintf(NULL, 0, "%ld", total);
  double el = t - x->t_start;
  /* no rate from the first few milliseconds */
  const char *rate = el >= 0.01 && done > 0 ? gc_printf("  %s it/s, %s left", pr_rate((double)done / el),
                                                       pr_duration(pr_left(p, x, t)))
                                            : "";
  return gc_printf("Chain %d Iteration: %*ld / %ld [%3d%%]  (%s)%s%s", c + 1, w, done, total,
                   total > 0 ? (int)(100.0 * (double)done / (double)total) : 100,
                   x->phase == PR_WARMUP ? "Warmup" : "Sampling", rate, pr_unit(x, t));
}

const char *progress_line(Progress *p, int c, double now) {
  if (!p || c < 0 || c >= p->n) return "";
  double t = p->t0 + now;
  return p->mode == PROGRESS_TERMINAL ? pr_terminal_line(p, &p->ch[c], c, t)
                                      : pr_plain_line(p, &p->ch[c], c, t);
}

/* Terminal: every chain's line, over the previous ones. */
static void pr_redraw(Progress *p, double t) {
  const char *s = p->drawn ? gc_printf("\033[%dA", p->n) : "";
  for (int c = 0; c < p->n; c++) s = gc_printf("%s\r\033[K%s\n", s, pr_terminal_line(p, &p->ch[c], c, t));
  fputs(s, p->f);
  fflush(p->f);
  p->drawn = true;
  p->last_draw = t;
}

static void pr_plain(Progress *p, int c, double t) {
  fprintf(p->f, "%s\n", pr_plain_line(p, &p->ch[c], c, t));
  fflush(p->f);
}

/* After chain c's state changed (under the lock); `forced`: a phase change. */
static void pr_show(Progress *p, int c, double t, bool forced) {
  PrChain *x = &p->ch[c];
  if (p->mode == PROGRESS_TERMINAL) {
    if (forced || t - p->last_draw >= PR_REDRAW_S) pr_redraw(p, t);
    return;
  }
  long total = p->warmup + p->iters, done = x->done_w + x->done_s;
  int tenth = total > 0 ? (int)(10 * done / total) : 10;
  if (tenth > x->shown_tenth || forced) {
    x->shown_tenth = tenth;
    pr_plain(p, c, t);
  }
}

static void pr_start(Progress *p, PrChain *x, double t) {
  if (x->phase != PR_WAITING) return;
  x->phase = p->warmup > 0 ? PR_WARMUP : PR_SAMPLING;
  x->t_start = x->t_samp = t;
}

void progress_iter(Progress *p, int c, bool warmup, long i) {
  if (!p || c < 0 || c >= p->n) return;
  double t = pr_now();
  pthread_mutex_lock(&p->mu);
  PrChain *x = &p->ch[c];
  pr_start(p, x, t);
  bool forced = false;
  if (warmup) {
    x->done_w = i;
  } else {
    if (x->phase == PR_WARMUP) { /* the first sampling iteration: a new phase */
      x->phase = PR_SAMPLING;
      x->t_samp = t;
      forced = true; /* CmdStan's "(Sampling)" line */
    }
    x->done_s = i;
  }
  x->unit = NULL;
  x->shown_utenth = -1;
  /* the chain's first and last iteration are always shown */
  long total = p->warmup + p->iters;
  forced |= x->done_w + x->done_s == total || (p->mode == PROGRESS_LINES && x->shown_tenth < 0);
  pr_show(p, c, t, forced);
  pthread_mutex_unlock(&p->mu);
}

void progress_unit(Progress *p, int c, long done, long total, const char *unit) {
  if (!p || c < 0 || c >= p->n || !unit) return;
  double t = pr_now();
  pthread_mutex_lock(&p->mu);
  PrChain *x = &p->ch[c];
  pr_start(p, x, t);
  if (!x->unit || strcmp(x->unit, unit) || done < x->u_done) x->u_start = x->u_last = t;
  x->unit = unit, x->u_done = done, x->u_total = total;
  if (p->mode == PROGRESS_TERMINAL) {
    pr_show(p, c, t, false);
  } else {
    /* a tenth of a known total, or now and then */
    int tenth = total > 0 ? (int)(10 * done / total) : -1;
    if ((total > 0 && tenth > x->shown_utenth) || (total <= 0 && t - x->u_last >= PR_QUIET_S)) {
      x->shown_utenth = tenth;
      x->u_last = t;
      pr_plain(p, c, t);
    }
  }
  pthread_mutex_unlock(&p->mu);
}

void progress_chain_end(Progress *p, int c) {
  if (!p || c < 0 || c >= p->n) return;
  pthread_mutex_lock(&p->mu);
  PrChain *x = &p->ch[c];
  if (x->phase != PR_WAITING) {
    x->phase = PR_DONE;
    x->unit = NULL;
    if (p->mode == PROGRESS_TERMINAL) pr_redraw(p, pr_now());
  }
  pthread_mutex_unlock(&p->mu);
}

void progress_end(Progress *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  if (p->mode == PROGRESS_TERMINAL && p->drawn) pr_redraw(p, pr_now());
  pthread_mutex_unlock(&p->mu);
  pthread_mutex_destroy(&p->mu);
}
