/* resample.c — multinomial, stratified, systematic and residual resampling,
 * and the worker pool of the particle engines.
 *
 * All four schemes work from the running sum of the weights and sorted
 * uniforms, so they are O(N) and deterministic given the Rng.  The sorted
 * uniforms for multinomial come from normalised exponential spacings (no sort
 * needed).
 *
 * The pool runs rounds: the engine hands it n independent items (particles to
 * advance to their next event), its threads and the calling thread take
 * chunks from a shared counter, and pool_run returns when all are done.  The
 * threads sleep on a condition variable between rounds, so a round costs two
 * wake-ups, not thread creations (an SMC run has one round per event). */
#include "resample.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "../core/value.h"
#include "engine.h"
#include "psis.h"

const char *const resample_names[] = {"systematic", "multinomial", "stratified", "residual",
                                      NULL};

static const char *const resample_choices[] = {"systematic", "multinomial", "stratified",
                                               "residual",   "never",       NULL};

const OptSpec resample_options[] = {
    {.name = "resample", .type = OPT_ENUM, .def = "systematic", .choices = resample_choices,
     .arg = "SCHEME",
     .help = "the resampling scheme; never: no resampling (importance sampling with the same "
             "code)"},
    OPT_END,
};

const OptSpec particle_options[] = {
    {.name = "particles", .type = OPT_INT, .def = "0", .ilo = 0, .ihi = 100000000, .arg = "N",
     .help = "particles per chain; 0: the engine's choice (smc 1000, pgibbs from the program's "
             "size, see engines.md)"},
    {.name = "ess-threshold", .type = OPT_REAL, .def = "0.5", .rlo = 0, .rhi = 1, .arg = "X",
     .help = "resample when the effective sample size over N falls below X"},
    OPT_END,
};

int resample_scheme(const char *s) {
  for (int i = 0; s && i < 4; i++)
    if (strcmp(s, resample_names[i]) == 0) return i;
  return -1;
}

const char *resample_name(int scheme) {
  if (scheme == RESAMPLE_NEVER) return "never";
  return scheme >= 0 && scheme < 4 ? resample_names[scheme] : "unknown";
}

double resample_normalise(int n, const double *lw, double *w) {
  double mx = -INFINITY;
  for (int i = 0; i < n; i++)
    if (lw[i] > mx) mx = lw[i];
  if (!(mx > -INFINITY) || isnan(mx)) {
    for (int i = 0; i < n; i++) w[i] = 1.0 / n;
    return isnan(mx) ? NAN : -INFINITY;
  }
  double s = 0;
  for (int i = 0; i < n; i++) {
    w[i] = isnan(lw[i]) ? 0 : exp(lw[i] - mx);
    s += w[i];
  }
  for (int i = 0; i < n; i++) w[i] /= s;
  return mx + log(s / n);
}

/* At most this many blocks: enough for as many ranks, few enough that
 * every rank combining all the summaries costs nothing. */
#define RESAMPLE_MAX_BLOCKS 256

int resample_nblocks(int n) {
  int nb = (n + 7) / 8;
  return nb < 1 ? 1 : nb > RESAMPLE_MAX_BLOCKS ? RESAMPLE_MAX_BLOCKS : nb;
}

int resample_block_lo(int n, int b) {
  int nb = resample_nblocks(n), units = (n + 7) / 8;
  if (b >= nb) return n;
  int lo = 8 * (int)((long long)units * b / nb);
  return lo < n ? lo : n;
}

void resample_block(const double *lw, int lo, int hi, WeightBlock *out, double *e) {
  double mx = -INFINITY;
  for (int i = lo; i < hi; i++)
    if (lw[i] > mx) mx = lw[i];
  double s = 0, q = 0;
  for (int i = lo; i < hi; i++) {
    double x = mx > -INFINITY && !isnan(lw[i]) ? exp(lw[i] - mx) : 0;
    s += x;
    q += x * x;
    if (e) e[i] = x;
  }
  *out = (WeightBlock){mx, s, q};
}

double resample_combine(int n, int nb, const WeightBlock *b, double *mx, double *sum, double *ess) {
  double m = -INFINITY;
  for (int k = 0; k < nb; k++)
    if (b[k].max > m) m = b[k].max;
  double s = 0, q = 0;
  if (m > -INFINITY)
    for (int k = 0; k < nb; k++) {
      if (!(b[k].max > -INFINITY)) continue;
      double f = exp(b[k].max - m);
      s += b[k].sum * f;
      q += b[k].sq * f * f;
    }
  *mx = m;
  *sum = s;
  if (!(s > 0)) {
    *ess = n;
    return -INFINITY;
  }
  *ess = s * s / q;
  return m + log(s / n);
}

/* A block's factor exp(max - mx) / sum is computed once: one exp per weight,
 * as in resample_normalise, and the same bits whoever applies it. */
void resample_weights(int n, int b0, int b1, const WeightBlock *blk, double mx, double sum,
                      const double *lw, double *w) {
  for (int b = b0; b < b1; b++) {
    int lo = resample_block_lo(n, b), hi = resample_block_lo(n, b + 1);
    if (!(sum > 0)) {
      for (int i = lo; i < hi; i++) w[i] = 1.0 / n;
      continue;
    }
    double g = blk[b].max > -INFINITY ? exp(blk[b].max - mx) / sum : 0;
    for (int i = lo; i < hi; i++) {
      double x = !lw ? w[i] : g > 0 && !isnan(lw[i]) ? exp(lw[i] - blk[b].max) : 0;
      w[i] = x * g;
    }
  }
}

double resample_normalise_blocked(int n, const double *lw, double *w, double *ess) {
  int nb = resample_nblocks(n);
  WeightBlock *b = gc_alloc_atomic(sizeof(WeightBlock) * (size_t)nb);
  for (int k = 0; k < nb; k++)
    resample_block(lw, resample_block_lo(n, k), resample_block_lo(n, k + 1), &b[k], w);
  double mx, sum;
  double lz = resample_combine(n, nb, b, &mx, &sum, ess);
  resample_weights(n, 0, nb, b, mx, sum, NULL, w);
  return lz;
}

void resample_psis_order(int n, const double *lw, Rng *r, int *order) {
  double *sl = gc_alloc_atomic(sizeof(double) * (size_t)n);
  double *w = gc_alloc_atomic(sizeof(double) * (size_t)n);
  memcpy(sl, lw, sizeof(double) * (size_t)n);
  psis_smooth(n, sl);
  resample_normalise(n, sl, w);
  resample(RESAMPLE_SYSTEMATIC, n, w, r, order);
  for (int i = n - 1; i > 0; i--) {
    int j = (int)rng_int(r, 0, i);
    int t = order[i];
    order[i] = order[j], order[j] = t;
  }
}

double resample_ess(int n, const double *w) {
  double s = 0;
  for (int i = 0; i < n; i++) s += w[i] * w[i];
  return s > 0 ? 1 / s : 0;
}

/* Ancestors for m sorted points u[0..m) in [0, total): particle i is chosen
 * once for each point inside its slice of the cumulative weight. */
static void from_sorted(int n, const double *w, int m, const double *u, int *anc) {
  double c = w[0];
  int i = 0;
  for (int k = 0; k < m; k++) {
    while (u[k] >= c && i < n - 1) c += w[++i];
    anc[k] = i;
  }
}

/* m sorted uniforms on [0, total) by normalised exponential spacings. */
static void sorted_uniforms(Rng *r, int m, double total, double *u) {
  double s = 0;
  for (int k = 0; k < m; k++) {
    s += rng_exponential(r);
    u[k] = s;
  }
  s += rng_exponential(r);
  for (int k = 0; k < m; k++) u[k] = u[k] / s * total;
}

bool resample_blocked(int scheme) {
  return scheme == RESAMPLE_SYSTEMATIC || scheme == RESAMPLE_STRATIFIED;
}

void resample_points(int scheme, int n, Rng *r, double *u, double *v) {
  *v = 0;
  if (scheme == RESAMPLE_SYSTEMATIC) *v = rng_uniform(r);
  else
    for (int k = 0; k < n; k++) u[k] = (k + rng_uniform(r)) / n;
}

void resample_block_totals(int n, const double *w, int b0, int b1, double *T) {
  for (int b = b0; b < b1; b++) {
    double t = 0;
    for (int i = resample_block_lo(n, b), hi = resample_block_lo(n, b + 1); i < hi; i++) t += w[i];
    T[b] = t;
  }
}

static double point_at(int n, const double *u, double v, int k) { return u ? u[k] : (k + v) / n; }

int resample_offspring_lo(int n, const double *T, const double *u, double v, int b) {
  if (b <= 0) return 0;
  if (b >= resample_nblocks(n)) return n;
  double c = 0;
  for (int k = 0; k < b; k++) c += T[k];
  int lo = 0, hi = n; /* the first k with point_at(k) >= c (the points increase) */
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (point_at(n, u, v, mid) >= c) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

void resample_blocks_anc(int n, const double *w, const double *T, const double *u, double v,
                         int b0, int b1, int *anc) {
  double c0 = 0;
  for (int b = 0; b < b0; b++) c0 += T[b];
  int k = resample_offspring_lo(n, T, u, v, b0);
  for (int b = b0; b < b1; b++) {
    int lo = resample_block_lo(n, b), hi = resample_block_lo(n, b + 1);
    int kend = resample_offspring_lo(n, T, u, v, b + 1);
    double c = c0 + w[lo];
    int i = lo;
    for (; k < kend; k++) {
      double x = point_at(n, u, v, k);
      while (x >= c && i < hi - 1) c += w[++i];
      int a = i;
      while (!(w[a] > 0) && a > lo) a--; /* past the block's end by rounding */
      anc[k] = a;
    }
    c0 += T[b];
  }
}

bool resample(int scheme, int n, const double *w, Rng *r, int *anc) {
  if (n < 1) return false;
  double *u = gc_alloc_atomic(sizeof(double) * (size_t)n);
  switch (scheme) {
  case RESAMPLE_MULTINOMIAL:
    sorted_uniforms(r, n, 1.0, u);
    break;
  case RESAMPLE_STRATIFIED:
  case RESAMPLE_SYSTEMATIC: { /* in blocks: what ranks holding slices compute */
    int nb = resample_nblocks(n);
    double v, *T = gc_alloc_atomic(sizeof(double) * (size_t)nb);
    resample_points(scheme, n, r, u, &v);
    resample_block_totals(n, w, 0, nb, T);
    resample_blocks_anc(n, w, T, scheme == RESAMPLE_SYSTEMATIC ? NULL : u, v, 0, nb, anc);
    return true;
  }
  case RESAMPLE_RESIDUAL: {
    /* floor(N w_i) copies each, then the remainder from the residual weights;
       merged so that the ancestors stay sorted */
    double *res = gc_alloc_atomic(sizeof(double) * (size_t)n);
    int *cnt = gc_alloc_atomic(sizeof(int) * (size_t)n);
    int fixed = 0;
    double rtot = 0;
    for (int i = 0; i < n; i++) {
      double nw = n * w[i];
      cnt[i] = (int)floor(nw);
      if (fixed + cnt[i] > n) cnt[i] = n - fixed; /* rounding guard */
      fixed += cnt[i];
      res[i] = nw - cnt[i] > 0 ? nw - cnt[i] : 0;
      rtot += res[i];
    }
    int m = n - fixed;
    if (m > 0) {
      int *extra = gc_alloc_atomic(sizeof(int) * (size_t)m);
      if (rtot > 0) {
        sorted_uniforms(r, m, rtot, u);
        from_sorted(n, res, m, u, extra);
      } else { /* only possible through rounding: spread uniformly */
        for (int k = 0; k < m; k++) extra[k] = (int)rng_int(r, 0, n - 1);
      }
      for (int k = 0; k < m; k++) cnt[extra[k]]++;
    }
    for (int i = 0, k = 0; i < n; i++)
      for (int j = 0; j < cnt[i]; j++) anc[k++] = i;
    return true;
  }
  default:
    return false;
  }
  from_sorted(n, w, n, u, anc);
  return true;
}

/* ---- the worker pool ---- */

/* One round's work.  A thread that wakes late may find a finished round (it
 * then claims nothing) but never a half-reset one: each round has its own. */
typedef struct Round {
  PoolFn fn;
  void *ctx;
  int n, chunk;
  atomic_size_t oom; /* nonzero: a chunk ran out of memory allocating this many bytes */
  atomic_int next; /* first unclaimed item */
  atomic_int done; /* items finished */
} Round;

typedef struct PoolArg {
  struct Pool *p;
  int worker;
} PoolArg;

struct Pool {
  pthread_mutex_t mu;
  pthread_cond_t go, finished;
  int workers;      /* the caller plus the started threads */
  pthread_t *tid;
  PoolArg *args;    /* the threads' arguments: kept reachable for the collector,
                       which does not scan what pthread_create holds */
  atomic_long round;   /* bumped to start a round (after cur is set) */
  _Atomic(Round *) cur;
  atomic_bool quit;
};

int pool_particle_workers(const EngineOpts *o) {
  long t = o->threads;
  if (t <= 0) t = sysconf(_SC_NPROCESSORS_ONLN);
  int chains = o->chains > 0 ? o->chains : 1;
  long w = t / chains;
  return w < 1 ? 1 : w > 256 ? 256 : (int)w;
}

/* Claims and runs chunks until none is left.  The round ends when every item
 * is done, not when every thread has looked in: a thread the scheduler keeps
 * asleep delays a round only if it holds a claimed chunk (hence small
 * chunks), which matters on a machine busy with other work. */
/* One chunk under an out-of-memory guard: a pool thread has no guard of its
 * own, and the round must end (every chunk counted done) even when one fails;
 * pool_run then hands the failure to the waiting thread's guard. */
static void pool_chunk(Round *r, int worker, int lo, int hi) {
  GcGuard g;
  if (!gc_guard_enter(&g, setjmp(g.jb))) {
    atomic_store(&r->oom, *(volatile size_t *)&g.bytes);
    return;
  }
  r->fn(r->ctx, worker, lo, hi);
  gc_guard_leave(&g);
}

static void pool_work(Pool *p, Round *r, int worker) {
  for (;;) {
    int lo = atomic_fetch_add(&r->next, r->chunk);
    if (lo >= r->n) return;
    int hi = lo + r->chunk < r->n ? lo + r->chunk : r->n;
    if (!atomic_load(&r->oom)) pool_chunk(r, worker, lo, hi); /* after a failure: skip */
    if (atomic_fetch_add(&r->done, hi - lo) + (hi - lo) == r->n) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_broadcast(&p->finished);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

/* Between rounds a thread first polls for a while (the engine's sequential
 * part between two rounds is short, and a wake-up from the condition
 * variable can take longer than a whole round on a busy machine), then
 * sleeps. */
#define POOL_SPIN 20000

static void *pool_thread(void *arg) {
  PoolArg *a = arg;
  Pool *p = a->p;
  gc_thread_enter();
  long seen = 0;
  for (;;) {
    for (int k = 0; k < POOL_SPIN && atomic_load(&p->round) == seen && !atomic_load(&p->quit); k++)
      if (k % 64 == 63) sched_yield();
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->round) == seen && !atomic_load(&p->quit))
      pthread_cond_wait(&p->go, &p->mu);
    pthread_mutex_unlock(&p->mu);
    if (atomic_load(&p->quit)) break;
    seen = atomic_load(&p->round);
    pool_work(p, atomic_load(&p->cur), a->worker);
  }
  gc_thread_leave();
  return NULL;
}

Pool *pool_new(int workers) {
  Pool *p = gc_alloc(sizeof(Pool));
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->go, NULL);
  pthread_cond_init(&p->finished, NULL);
  p->workers = 1;
  if (workers > 1) {
    p->tid = gc_alloc_atomic(sizeof(pthread_t) * (size_t)(workers - 1));
    p->args = gc_alloc(sizeof(PoolArg) * (size_t)(workers - 1));
    for (int k = 1; k < workers; k++) {
      PoolArg *a = &p->args[k - 1];
      a->p = p;
      a->worker = p->workers;
      if (pthread_create(&p->tid[p->workers - 1], NULL, pool_thread, a) != 0) break;
      p->workers++;
    }
  }
  return p;
}

int pool_workers(const Pool *p) { return p->workers; }

void pool_run(Pool *p, int n, int grain, PoolFn fn, void *ctx) {
  if (n <= 0) return;
  if (p->workers == 1 || n < 2 * grain) {
    fn(ctx, 0, 0, n);
    return;
  }
  Round *r = gc_alloc(sizeof(Round));
  int chunk = n / (p->workers * 64);
  r->fn = fn;
  r->ctx = ctx;
  r->n = n;
  r->chunk = chunk < 8 ? 8 : chunk;
  atomic_store(&r->oom, 0);
  atomic_store(&r->next, 0);
  atomic_store(&r->done, 0);
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->cur, r);
  atomic_fetch_add(&p->round, 1);
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  pool_work(p, r, 0);
  pthread_mutex_lock(&p->mu);
  while (atomic_load(&r->done) < n) pthread_cond_wait(&p->finished, &p->mu);
  pthread_mutex_unlock(&p->mu);
  size_t oom = atomic_load(&r->oom);
  if (oom) gc_out_of_memory(oom); /* to the chain's guard: the chain fails */
}

void pool_free(Pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->quit, true);
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  for (int k = 0; k < p->workers - 1; k++) pthread_join(p->tid[k], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->go);
  pthread_cond_destroy(&p->finished);
  p->workers = 1;
}

void evidence_init(RunEvidence *e) { *e = (RunEvidence){.logz_max = -INFINITY}; }

void evidence_add(RunEvidence *e, double logz, int n, const double *w, const int *eve,
                  int resamplings) {
  double *mass = gc_alloc_atomic(sizeof(double) * (size_t)n), sq = 0;
  for (int j = 0; j < n; j++) mass[eve[j]] += w[j];
  for (int i = 0; i < n; i++) sq += mass[i] * mass[i];
  e->relvar_sum += n > 1 ? 1 - pow((double)n / (n - 1), 1.0 + resamplings) * (1 - sq) : NAN;
  if (logz > e->logz_max) {
    e->logz_sum = e->nruns ? e->logz_sum * exp(e->logz_max - logz) : 0;
    e->logz_max = logz;
  }
  e->logz_sum += exp(logz - e->logz_max);
  e->nruns++;
}

bool evidence_log(const RunEvidence *e, double *est) {
  if (e->nruns == 0) return false;
  *est = e->logz_max + log(e->logz_sum / e->nruns);
  return true;
}

bool evidence_se(const RunEvidence *e, double *se) {
  if (e->nruns == 0) return false;
  *se = sqrt(fmax(e->relvar_sum / e->nruns, 0) / e->nruns);
  return true;
}
