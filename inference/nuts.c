/* nuts.c — the multinomial no-U-turn sampler and static HMC on a plain log
 * density, with Stan's warmup, so that ppl's draws behave like CmdStan's.
 *
 * NUTS follows Betancourt (2017) as Stan implements it (base_nuts.hpp since
 * 2.26): the trajectory doubles in a random direction; states are sampled
 * multinomially within a subtree and with biased progressive sampling between
 * the old trajectory and the new subtree; the generalised no-U-turn criterion
 * is checked across each merged tree and, as Stan added, across the joins
 * between subtrees (with the momentum of the neighbouring end added to rho),
 * which stops trajectories that turn back within a subtree boundary.  An
 * energy error above 1000 is a divergence and ends the trajectory.
 *
 * Static HMC integrates for L = int_time / stepsize leapfrog steps and
 * accepts the end point by Metropolis.  With a step-size jitter j, each
 * transition uses the nominal step times uniform(1 - j, 1 + j), as Stan does;
 * adaptation tunes the nominal step.
 *
 * The Hamiltonian is H(q, p) = -log p(q) + p' M^-1 p / 2, with M^-1 the
 * adapted inverse metric (unit, diagonal or dense). */
#include "nuts.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adapt.h"

#define NUTS_MAX_DELTA_H 1000.0

typedef struct Point {
  double *q, *p, *g; /* position, momentum, gradient of log p */
  double lp;
} Point;

/* Scratch of one recursion level of build_tree. */
typedef struct Level {
  Point propose_final;
  double *p_init_end, *ps_init_end, *rho_init;
  double *p_final_beg, *ps_final_beg, *rho_final;
} Level;

struct Hmc {
  size_t n;
  HmcDensityFn fn;
  void *ctx;
  Rng *rng;
  bool nuts;
  int metric;
  int max_depth;
  double int_time;
  double eps;          /* nominal step size (what adaptation tunes) */
  double jitter;       /* the step of a transition is eps * uniform(1 - jitter, 1 + jitter) */
  double step;         /* this transition's step size */
  double *inv;         /* inverse metric: n (unit, diag) or n * n (dense) */
  double *chol;        /* dense: lower Cholesky factor of inv */
  /* adaptation */
  bool adapting;
  int warmup_total, warmup_done;
  DualAvg da;
  MetricAdapt ma;
  /* state and scratch */
  Point z, z_fwd, z_bck, z_sample, z_propose, z_init;
  double *p_fwd_fwd, *ps_fwd_fwd, *p_fwd_bck, *ps_fwd_bck;
  double *p_bck_fwd, *ps_bck_fwd, *p_bck_bck, *ps_bck_bck;
  double *rho, *rho_fwd, *rho_bck, *rho_ext, *tmp;
  Level *lev;
  /* per transition */
  bool divergent;
  int depth;
};

static double *vec_new(size_t n) { return gc_alloc_atomic(sizeof(double) * (n > 0 ? n : 1)); }

/* q, p and g side by side in one block, so that a copy is one memcpy (the
   tree copies points at every leaf and merge). */
static void point_init(Point *z, size_t n) {
  z->q = vec_new(3 * n);
  z->p = z->q + n;
  z->g = z->p + n;
  z->lp = 0;
}

static void point_copy(Point *dst, const Point *src, size_t n) {
  memcpy(dst->q, src->q, sizeof(double) * 3 * n);
  dst->lp = src->lp;
}

static double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* m + log(exp(a - m) + exp(b - m)): for a finite maximum m one of the two
   is exp(0) = 1 exactly, and is not computed (the same bits). */
static double log_sum_exp2(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  double m = a > b ? a : b;
  if (isfinite(m)) return m + log((a > b ? exp(b - m) : exp(a - m)) + 1.0);
  return m + log(exp(a - m) + exp(b - m));
}

/* ---- the metric ---- */

/* out = M^-1 p (the velocity, Stan's dtau_dp or "sharp" momentum) */
static void velocity(const Hmc *h, const double *p, double *out) {
  size_t n = h->n;
  if (h->metric == METRIC_DENSE) {
    for (size_t i = 0; i < n; i++) out[i] = dot(h->inv + i * n, p, n);
  } else {
    for (size_t i = 0; i < n; i++) out[i] = h->inv[i] * p[i];
  }
}

/* H at z, leaving the velocity M^-1 p in v. */
static double hamiltonian_v(Hmc *h, const Point *z, double *v) {
  velocity(h, z->p, v);
  double H = -z->lp + 0.5 * dot(z->p, v, h->n);
  return isnan(H) ? INFINITY : H;
}

static double hamiltonian(Hmc *h, const Point *z) { return hamiltonian_v(h, z, h->tmp); }

/* Lower Cholesky factor of the dense inverse metric; false if it is not
 * positive definite. */
static bool cholesky(const double *a, double *l, size_t n) {
  memset(l, 0, sizeof(double) * n * n);
  for (size_t j = 0; j < n; j++) {
    double s = a[j * n + j];
    for (size_t k = 0; k < j; k++) s -= l[j * n + k] * l[j * n + k];
    if (!(s > 0)) return false;
    l[j * n + j] = sqrt(s);
    for (size_t i = j + 1; i < n; i++) {
      double t = a[i * n + j];
      for (size_t k = 0; k < j; k++) t -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = t / l[j * n + j];
    }
  }
  return true;
}

/* p ~ N(0, M): with M^-1 = L L', p = L'^-1 u for u standard normal. */
static void sample_momentum(Hmc *h, double *p) {
  size_t n = h->n;
  for (size_t i = 0; i < n; i++) p[i] = rng_normal(h->rng);
  if (h->metric == METRIC_DENSE) {
    for (size_t ii = n; ii-- > 0;) { /* back substitution with L' */
      double s = p[ii];
      for (size_t k = ii + 1; k < n; k++) s -= h->chol[k * n + ii] * p[k];
      p[ii] = s / h->chol[ii * n + ii];
    }
  } else {
    for (size_t i = 0; i < n; i++) p[i] /= sqrt(h->inv[i]);
  }
}

/* ---- dynamics ---- */

static bool eval(Hmc *h, Point *z, Diag *d) {
  if (!h->fn(h->ctx, z->q, &z->lp, z->g, d)) return false;
  if (isnan(z->lp)) z->lp = -INFINITY;
  return true;
}

static bool leapfrog(Hmc *h, Point *z, double eps, Diag *d) {
  size_t n = h->n;
  if (h->metric == METRIC_DENSE) {
    for (size_t i = 0; i < n; i++) z->p[i] += 0.5 * eps * z->g[i];
    velocity(h, z->p, h->tmp);
    for (size_t i = 0; i < n; i++) z->q[i] += eps * h->tmp[i];
  } else { /* one pass, the same operations as velocity's */
    for (size_t i = 0; i < n; i++) {
      z->p[i] += 0.5 * eps * z->g[i];
      z->q[i] += eps * (h->inv[i] * z->p[i]);
    }
  }
  if (!eval(h, z, d)) return false;
  for (size_t i = 0; i < n; i++) z->p[i] += 0.5 * eps * z->g[i];
  return true;
}

/* Stan's init_stepsize: double or halve the step until the energy change of
 * one leapfrog step crosses log(0.8), each trial with a fresh momentum. */
static bool init_stepsize(Hmc *h, Diag *d) {
  if (h->eps == 0 || h->eps > 1e7 || isnan(h->eps)) return true;
  Point *z = &h->z, *z0 = &h->z_init;
  point_copy(z0, z, h->n);
  int direction = 0;
  for (;;) {
    point_copy(z, z0, h->n);
    sample_momentum(h, z->p);
    double H0 = hamiltonian(h, z);
    if (!leapfrog(h, z, h->eps, d)) return false;
    double dH = H0 - hamiltonian(h, z);
    if (direction == 0) {
      direction = dH > log(0.8) ? 1 : -1;
    } else if ((direction == 1 && !(dH > log(0.8))) || (direction == -1 && !(dH < log(0.8)))) {
      break;
    } else {
      h->eps = direction == 1 ? 2 * h->eps : 0.5 * h->eps;
    }
    if (h->eps > 1e7) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                 "the step size grew beyond 1e7 while searching for an initial one: "
                 "the posterior is improper (check the model's priors)");
      return false;
    }
    if (h->eps == 0) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                 "no acceptably small step size could be found: the log density may not "
                 "be continuous");
      return false;
    }
  }
  point_copy(z, z0, h->n);
  return true;
}

/* Both dot products in one pass (each summed in index order, as dot does). */
static bool criterion(const double *ps_minus, const double *ps_plus, const double *rho, size_t n) {
  double plus = 0, minus = 0;
  for (size_t i = 0; i < n; i++) plus += ps_plus[i] * rho[i], minus += ps_minus[i] * rho[i];
  return plus > 0 && minus > 0;
}

/* Stan's build_tree: 2^depth leapfrog steps from h->z in direction sign.
 * Returns false when the subtree diverged, turned back, or an evaluation
 * failed (then *fatal is set). */
static bool build_tree(Hmc *h, int depth, Point *z_propose, double *ps_beg, double *ps_end,
                       double *rho, double *p_beg, double *p_end, double H0, double sign,
                       int *n_leapfrog, double *log_sum_weight, double *sum_metro_prob,
                       bool *fatal, Diag *d) {
  size_t n = h->n;
  if (depth == 0) {
    if (!leapfrog(h, &h->z, sign * h->step, d)) {
      *fatal = true;
      return false;
    }
    ++*n_leapfrog;
    double H = hamiltonian_v(h, &h->z, ps_beg); /* the velocity M^-1 p into ps_beg */
    if (H - H0 > NUTS_MAX_DELTA_H) h->divergent = true;
    *log_sum_weight = log_sum_exp2(*log_sum_weight, H0 - H);
    *sum_metro_prob += H0 - H > 0 ? 1 : exp(H0 - H);
    point_copy(z_propose, &h->z, n);
    const double *p = h->z.p;
    for (size_t i = 0; i < n; i++) {
      ps_end[i] = ps_beg[i];
      rho[i] += p[i];
      p_beg[i] = p_end[i] = p[i];
    }
    return !h->divergent;
  }
  Level *L = &h->lev[depth];
  double lsw_init = -INFINITY;
  memset(L->rho_init, 0, sizeof(double) * n);
  if (!build_tree(h, depth - 1, z_propose, ps_beg, L->ps_init_end, L->rho_init, p_beg,
                  L->p_init_end, H0, sign, n_leapfrog, &lsw_init, sum_metro_prob, fatal, d))
    return false;
  double lsw_final = -INFINITY;
  memset(L->rho_final, 0, sizeof(double) * n);
  if (!build_tree(h, depth - 1, &L->propose_final, L->ps_final_beg, ps_end, L->rho_final,
                  L->p_final_beg, p_end, H0, sign, n_leapfrog, &lsw_final, sum_metro_prob,
                  fatal, d))
    return false;
  /* multinomial choice between the two halves */
  double lsw_subtree = log_sum_exp2(lsw_init, lsw_final);
  *log_sum_weight = log_sum_exp2(*log_sum_weight, lsw_subtree);
  if (lsw_final > lsw_subtree || rng_uniform(h->rng) < exp(lsw_final - lsw_subtree))
    point_copy(z_propose, &L->propose_final, n);
  double *rho_sub = h->lev[0].rho_init; /* level 0 scratch is unused by recursion */
  for (size_t i = 0; i < n; i++) {
    rho_sub[i] = L->rho_init[i] + L->rho_final[i];
    rho[i] += rho_sub[i];
  }
  bool persist = criterion(ps_beg, ps_end, rho_sub, n);
  double *ext = h->lev[0].rho_final;
  for (size_t i = 0; i < n; i++) ext[i] = L->rho_init[i] + L->p_final_beg[i];
  persist = persist && criterion(ps_beg, L->ps_final_beg, ext, n);
  for (size_t i = 0; i < n; i++) ext[i] = L->rho_final[i] + L->p_init_end[i];
  persist = persist && criterion(L->ps_init_end, ps_end, ext, n);
  return persist;
}

static bool nuts_transition(Hmc *h, HmcStats *s, Diag *d) {
  size_t n = h->n;
  size_t bytes = sizeof(double) * n;
  sample_momentum(h, h->z.p);
  point_copy(&h->z_fwd, &h->z, n);
  point_copy(&h->z_bck, &h->z, n);
  point_copy(&h->z_sample, &h->z, n);
  point_copy(&h->z_propose, &h->z, n);
  memcpy(h->p_fwd_fwd, h->z.p, bytes);
  velocity(h, h->z.p, h->ps_fwd_fwd);
  memcpy(h->p_fwd_bck, h->z.p, bytes);
  memcpy(h->ps_fwd_bck, h->ps_fwd_fwd, bytes);
  memcpy(h->p_bck_fwd, h->z.p, bytes);
  memcpy(h->ps_bck_fwd, h->ps_fwd_fwd, bytes);
  memcpy(h->p_bck_bck, h->z.p, bytes);
  memcpy(h->ps_bck_bck, h->ps_fwd_fwd, bytes);
  memcpy(h->rho, h->z.p, bytes);
  double log_sum_weight = 0; /* log exp(H0 - H0) */
  double H0 = hamiltonian(h, &h->z);
  int n_leapfrog = 0;
  double sum_metro_prob = 0;
  bool fatal = false;
  h->depth = 0;
  h->divergent = false;
  while (h->depth < h->max_depth) {
    memset(h->rho_fwd, 0, bytes);
    memset(h->rho_bck, 0, bytes);
    double lsw_subtree = -INFINITY;
    bool valid;
    if (rng_uniform(h->rng) > 0.5) {
      /* extend forward: the old trajectory becomes the backward subtree */
      point_copy(&h->z, &h->z_fwd, n);
      memcpy(h->rho_bck, h->rho, bytes);
      memcpy(h->p_bck_fwd, h->p_fwd_bck, bytes);
      memcpy(h->ps_bck_fwd, h->ps_fwd_bck, bytes);
      valid = build_tree(h, h->depth, &h->z_propose, h->ps_fwd_bck, h->ps_fwd_fwd, h->rho_fwd,
                         h->p_fwd_bck, h->p_fwd_fwd, H0, 1, &n_leapfrog, &lsw_subtree,
                         &sum_metro_prob, &fatal, d);
      point_copy(&h->z_fwd, &h->z, n);
    } else {
      point_copy(&h->z, &h->z_bck, n);
      memcpy(h->rho_fwd, h->rho, bytes);
      memcpy(h->p_fwd_bck, h->p_bck_fwd, bytes);
      memcpy(h->ps_fwd_bck, h->ps_bck_fwd, bytes);
      valid = build_tree(h, h->depth, &h->z_propose, h->ps_bck_fwd, h->ps_bck_bck, h->rho_bck,
                         h->p_bck_fwd, h->p_bck_bck, H0, -1, &n_leapfrog, &lsw_subtree,
                         &sum_metro_prob, &fatal, d);
      point_copy(&h->z_bck, &h->z, n);
    }
    if (fatal) return false;
    if (!valid) break;
    ++h->depth;
    /* biased progressive sampling: favour the new subtree */
    if (lsw_subtree > log_sum_weight || rng_uniform(h->rng) < exp(lsw_subtree - log_sum_weight))
      point_copy(&h->z_sample, &h->z_propose, n);
    log_sum_weight = log_sum_exp2(log_sum_weight, lsw_subtree);
    for (size_t i = 0; i < n; i++) h->rho[i] = h->rho_bck[i] + h->rho_fwd[i];
    bool persist = criterion(h->ps_bck_bck, h->ps_fwd_fwd, h->rho, n);
    for (size_t i = 0; i < n; i++) h->rho_ext[i] = h->rho_bck[i] + h->p_fwd_bck[i];
    persist = persist && criterion(h->ps_bck_bck, h->ps_fwd_bck, h->rho_ext, n);
    for (size_t i = 0; i < n; i++) h->rho_ext[i] = h->rho_fwd[i] + h->p_bck_fwd[i];
    persist = persist && criterion(h->ps_bck_fwd, h->ps_fwd_fwd, h->rho_ext, n);
    if (!persist) break;
  }
  point_copy(&h->z, &h->z_sample, n);
  s->accept_stat = n_leapfrog > 0 ? sum_metro_prob / (double)n_leapfrog : 0;
  s->treedepth = h->depth;
  s->n_leapfrog = n_leapfrog;
  s->divergent = h->divergent;
  return true;
}

static bool static_transition(Hmc *h, HmcStats *s, Diag *d) {
  size_t n = h->n;
  /* A trajectory is bounded as NUTS's is, by 2^max_depth leapfrog steps:
     --int-time 1e9 (or a collapsed step size) must not hang the run. */
  double want = h->int_time / h->step;
  int cap = 1 << h->max_depth;
  int steps = want >= cap ? cap : want >= 1 ? (int)want : 1;
  s->capped = want > cap;
  sample_momentum(h, h->z.p);
  point_copy(&h->z_init, &h->z, n);
  double H0 = hamiltonian(h, &h->z);
  for (int i = 0; i < steps; i++)
    if (!leapfrog(h, &h->z, h->step, d)) return false;
  double a = exp(H0 - hamiltonian(h, &h->z));
  if (a < 1 && rng_uniform(h->rng) > a) point_copy(&h->z, &h->z_init, n);
  s->accept_stat = a > 1 ? 1 : a;
  s->treedepth = 0;
  s->n_leapfrog = steps;
  s->divergent = false;
  return true;
}

/* ---- adaptation ---- */

static bool set_dense_factor(Hmc *h, Diag *d) {
  if (h->metric != METRIC_DENSE) return true;
  if (cholesky(h->inv, h->chol, h->n)) return true;
  diag_error(d, DIAG_RUNTIME, (SrcPos){0},
             "the adapted dense inverse metric is not positive definite");
  return false;
}

static void end_adaptation(Hmc *h) {
  if (!h->adapting) return;
  h->adapting = false;
  if (h->warmup_done > 0) h->eps = da_final(&h->da);
}

static bool adapt(Hmc *h, double accept_stat, Diag *d) {
  h->eps = da_learn(&h->da, accept_stat);
  if (h->metric != METRIC_UNIT && madapt_learn(&h->ma, h->z.q, h->inv)) {
    for (size_t i = 0; i < (h->metric == METRIC_DENSE ? h->n * h->n : h->n); i++)
      if (!isfinite(h->inv[i])) {
        diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                   "the adapted inverse metric is not finite: the sampler went astray "
                   "during warmup");
        return false;
      }
    if (!set_dense_factor(h, d) || !init_stepsize(h, d)) return false;
    da_set_mu(&h->da, log(10 * h->eps));
    da_restart(&h->da);
  }
  if (++h->warmup_done >= h->warmup_total) end_adaptation(h);
  return true;
}

/* ---- the public functions ---- */

/* The inverse metric of a metric file (--metric FILE): it must fit the
   program and be a metric (positive diagonal; dense: positive definite). */
static bool start_metric(Hmc *h, const EngineOpts *o, Diag *d) {
  size_t n = h->n;
  bool dense = h->metric == METRIC_DENSE;
  const char *f = o->metric_file ? o->metric_file : "the metric";
  if (o->metric_dim != n) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "%s: \"inv_metric\" is for %zu unconstrained coordinates, but this program has %zu "
               "(a metric file fits the program and data it was saved from)",
               f, o->metric_dim, n);
    return false;
  }
  memcpy(h->inv, o->metric_inv, sizeof(double) * (dense ? n * n : n));
  for (size_t i = 0; i < n; i++) {
    double v = h->inv[dense ? i * n + i : i];
    if (!(v > 0) || !isfinite(v)) {
      diag_error(d, DIAG_USAGE, (SrcPos){0},
                 "%s: \"inv_metric\" has the diagonal element %g at %zu: an inverse metric's "
                 "diagonal must be positive and finite",
                 f, v, i + 1);
      return false;
    }
  }
  if (dense && !cholesky(h->inv, h->chol, n)) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "%s: \"inv_metric\" is not symmetric positive definite", f);
    return false;
  }
  return true;
}

Hmc *hmc_new(size_t dim, HmcDensityFn fn, void *ctx, const EngineOpts *o, bool nuts, Rng *rng,
             const double *q0, Diag *d) {
  Hmc *h = gc_alloc(sizeof(Hmc));
  size_t n = dim;
  h->n = n;
  h->fn = fn;
  h->ctx = ctx;
  h->rng = rng;
  h->nuts = nuts;
  /* the values were validated against hmc.c's tables when they were set */
  h->metric = engine_opt_enum(o, "metric");
  h->max_depth = (int)engine_opt_int(o, "max-depth");
  h->int_time = engine_opt_real(o, "int-time");
  h->eps = engine_opt_real(o, "stepsize");
  h->jitter = engine_opt_real(o, "stepsize-jitter");
  bool dense = h->metric == METRIC_DENSE;
  h->inv = vec_new(dense ? n * n : n);
  for (size_t i = 0; i < n; i++) h->inv[dense ? i * n + i : i] = 1;
  if (dense) h->chol = vec_new(n * n);
  if (o->metric_inv && !start_metric(h, o, d)) return NULL;
  if (dense) cholesky(h->inv, h->chol, n);
  Point *pts[] = {&h->z, &h->z_fwd, &h->z_bck, &h->z_sample, &h->z_propose, &h->z_init};
  for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) point_init(pts[i], n);
  double **vecs[] = {&h->p_fwd_fwd, &h->ps_fwd_fwd, &h->p_fwd_bck, &h->ps_fwd_bck,
                     &h->p_bck_fwd, &h->ps_bck_fwd, &h->p_bck_bck, &h->ps_bck_bck,
                     &h->rho,       &h->rho_fwd,    &h->rho_bck,   &h->rho_ext,
                     &h->tmp};
  for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) *vecs[i] = vec_new(n);
  h->lev = gc_alloc(sizeof(Level) * (size_t)(h->max_depth + 1));
  for (int k = 0; k <= h->max_depth; k++) {
    Level *L = &h->lev[k];
    point_init(&L->propose_final, n);
    double **lv[] = {&L->p_init_end, &L->ps_init_end, &L->rho_init,
                     &L->p_final_beg, &L->ps_final_beg, &L->rho_final};
    for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++) *lv[i] = vec_new(n);
  }
  memcpy(h->z.q, q0, sizeof(double) * n);
  if (!eval(h, &h->z, d)) return NULL;
  if (!(h->z.lp > -INFINITY)) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "the initial point has log density %g", h->z.lp);
    return NULL;
  }
  h->warmup_total = o->warmup;
  h->adapting = o->warmup > 0;
  da_init(&h->da, engine_opt_real(o, "adapt-delta"));
  da_set_mu(&h->da, log(10 * h->eps));
  if (h->metric != METRIC_UNIT) madapt_init(&h->ma, n, dense, o->warmup);
  /* as CmdStan: the step-size search belongs to adaptation; without warmup
     the given step size is used as it is */
  if (o->warmup > 0 && !init_stepsize(h, d)) return NULL;
  return h;
}

bool hmc_transition(Hmc *h, bool warmup, HmcStats *s, Diag *d) {
  if (!warmup) end_adaptation(h);
  memset(s, 0, sizeof *s);
  /* Stan's sample_stepsize: no random draw at all without jitter, so runs
     without it do not depend on it */
  h->step = h->eps;
  if (h->jitter > 0) h->step *= 1 + h->jitter * (2 * rng_uniform(h->rng) - 1);
  s->stepsize = h->step;
  if (!(h->nuts ? nuts_transition(h, s, d) : static_transition(h, s, d))) return false;
  s->lp = h->z.lp;
  s->energy = hamiltonian(h, &h->z);
  if (warmup && h->adapting && !adapt(h, s->accept_stat, d)) return false;
  return true;
}

const double *hmc_position(const Hmc *h) { return h->z.q; }

/* %.17g: the file must give back this step size and metric exactly. */
const char *hmc_metric_json(Hmc *h) {
  end_adaptation(h);
  static const char *const kinds[] = {"diag_e", "dense_e", "unit_e"}; /* METRIC_* order */
  size_t n = h->n;
  bool dense = h->metric == METRIC_DENSE;
  size_t cap = 128 + (dense ? n * n + n : n) * 26;
  char *buf = gc_alloc_atomic(cap);
  size_t len = (size_t)snprintf(buf, cap, "{\n  \"stepsize\": %.17g,\n  \"metric_type\": \"%s\",\n"
                                "  \"inv_metric\": [", h->eps, kinds[h->metric]);
  for (size_t r = 0; r < (dense ? n : 1); r++) {
    if (dense) len += (size_t)snprintf(buf + len, cap - len, "%s\n    [", r ? "," : "");
    for (size_t c = 0; c < n; c++)
      len += (size_t)snprintf(buf + len, cap - len, "%s%.17g", c ? ", " : "",
                              dense ? h->inv[r * n + c] : h->inv[c]);
    if (dense) len += (size_t)snprintf(buf + len, cap - len, "]");
  }
  snprintf(buf + len, cap - len, "%s]\n}\n", dense ? "\n  " : "");
  return buf;
}
double hmc_stepsize(const Hmc *h) { return h->eps; }
const double *hmc_inv_metric(const Hmc *h) { return h->inv; }

/* CmdStan writes these with the stream's default 6 significant digits. */
const char *hmc_adaptation_info(Hmc *h) {
  end_adaptation(h);
  size_t n = h->n;
  size_t cap = 128 + (n + 1) * (h->metric == METRIC_DENSE ? n + 1 : 1) * 16;
  char *buf = gc_alloc_atomic(cap);
  size_t len = (size_t)snprintf(buf, cap, "Adaptation terminated\nStep size = %g\n", h->eps);
  if (h->metric == METRIC_UNIT) {
    snprintf(buf + len, cap - len, "No free parameters for unit metric");
    return buf;
  }
  bool dense = h->metric == METRIC_DENSE;
  len += (size_t)snprintf(buf + len, cap - len, "%s",
                          dense ? "Elements of inverse mass matrix:\n"
                                : "Diagonal elements of inverse mass matrix:\n");
  size_t rows = dense ? n : 1;
  for (size_t r = 0; r < rows; r++) {
    for (size_t c = 0; c < n; c++)
      len += (size_t)snprintf(buf + len, cap - len, "%s%g", c ? ", " : "",
                              dense ? h->inv[r * n + c] : h->inv[c]);
    if (r + 1 < rows) len += (size_t)snprintf(buf + len, cap - len, "\n");
  }
  return buf;
}
