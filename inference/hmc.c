/* hmc.c — the engines "nuts" and "hmc": the samplers of nuts.c on the log
 * density of a fixed-structure continuous program (logdensity.h), with
 * Stan's initialisation, per-draw outputs and run notes.
 *
 * Each draw's outputs come from one more run of the program (generated block
 * included) in which every latent takes the draw's constrained value, so
 * transformed and generated quantities are computed exactly as the program
 * states them.  lp__ is the log density on the unconstrained scale with the
 * log-Jacobians, as Stan reports it, except that ppl keeps the normalising
 * constants that Stan drops. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "csv.h"
#include "logdensity.h"
#include "nuts.h"
#include "trace.h"

#define HMC_INIT_TRIES 100
#define HMC_INIT_RADIUS 2.0

typedef struct HmcEngine {
  const Interp *in;
  const LogDensity *ld;
  LdWork *work;     /* this chain's gradient workspace (no allocation per call) */
  size_t dim, xdim;
  int chain;
  bool nuts;
  int max_depth;
  double int_time;  /* static HMC: reported as int_time__, as CmdStan does */
  Rng rng;          /* the sampler's randomness */
  Rng out_rng;      /* seeds of the per-draw output runs */
  Hmc *h;
  double *x;        /* constrained values of the current draw */
  int **perm;       /* per latent: CmdStan position -> val_flatten index */
  long draws, divergent, max_depth_hits;
  Diag last_fail;   /* the last program error met while evaluating */
} HmcEngine;

/* ---- the log density ---- */

/* The density for the sampler: a program error at a point (a failed argument
 * check, an impossible value) makes that point impossible, as in Stan; only
 * errors of ppl itself stop the run. */
static bool engine_density(void *ctx, const double *q, double *lp, double *g, Diag *d) {
  HmcEngine *e = ctx;
  Diag ed;
  diag_init(&ed);
  if (ld_eval_grad_w(e->work, q, lp, g, &ed)) {
    if (isnan(*lp)) *lp = -INFINITY;
    return true;
  }
  if (ed.code == DIAG_INTERNAL) {
    *d = ed;
    return false;
  }
  e->last_fail = ed;
  *lp = -INFINITY;
  for (size_t i = 0; i < e->dim; i++) g[i] = 0;
  return true;
}

/* ---- outputs: one run of the program at the draw's values ---- */

typedef struct ReplayHandler {
  Handler h;
  HmcEngine *e;
  int k;       /* next latent */
  size_t xoff; /* its start in e->x */
} ReplayHandler;

/* CmdStan order -> val_flatten order for a value of this shape: number the
 * elements in flatten order and read them back in CSV column order. */
static int *replay_perm(const DistCall *dc, int *count) {
  Value v = trace_value_new(dc->type, dc->nsizes, dc->sizes);
  int dims[CSV_MAX_DIMS];
  int nd = csv_shape(v, dims);
  long total = 1;
  for (int i = 0; i < nd; i++) total *= dims[i];
  for (long i = 0; i < total; i++) trace_value_set(&v, (size_t)i, (double)i);
  CsvCols cols;
  csv_cols_init(&cols);
  char err[128];
  int n = csv_columns("v", v, &cols, false, err, sizeof err);
  if (n < 0) n = 0;
  int *perm = gc_alloc_atomic(sizeof(int) * (size_t)(n > 0 ? n : 1));
  for (int i = 0; i < n; i++) perm[i] = (int)cols.vals[i];
  *count = n;
  return perm;
}

static HandlerResult replay_sample(Handler *hd, const char *addr, const DistCall *dc, Value *out,
                                   SrcPos pos, Diag *d) {
  ReplayHandler *rh = (ReplayHandler *)hd;
  HmcEngine *e = rh->e;
  int k = rh->k++;
  if (k >= ld_nlatents(e->ld)) {
    diag_error(d, DIAG_RUNTIME, pos, "latent '%s' was not in the first run", addr);
    return HR_ERROR;
  }
  Value v = trace_value_new(dc->type, dc->nsizes, dc->sizes);
  int count;
  if (!e->perm[k]) e->perm[k] = replay_perm(dc, &count);
  int dims[CSV_MAX_DIMS];
  int nd = csv_shape(v, dims);
  long total = 1;
  for (int i = 0; i < nd; i++) total *= dims[i];
  if (rh->xoff + (size_t)total > e->xdim) {
    diag_error(d, DIAG_RUNTIME, pos, "the program's latents changed between runs at '%s'", addr);
    return HR_ERROR;
  }
  for (long i = 0; i < total; i++) trace_value_set(&v, (size_t)e->perm[k][i], e->x[rh->xoff + (size_t)i]);
  rh->xoff += (size_t)total;
  *out = v;
  return HR_CONTINUE;
}

static HandlerResult replay_observe(Handler *hd, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  (void)hd, (void)dc, (void)x, (void)pos, (void)d;
  return HR_CONTINUE;
}

static HandlerResult replay_factor(Handler *hd, double lw, SrcPos pos, Diag *d) {
  (void)hd, (void)lw, (void)pos, (void)d;
  return HR_CONTINUE;
}

static bool engine_outputs(HmcEngine *e, Draw *out, Diag *d) {
  if (!ld_constrain(e->ld, hmc_position(e->h), e->x, d)) return false;
  ReplayHandler rh = {.h = {replay_sample, replay_observe, replay_factor}, .e = e};
  InterpState *st = interp_start(e->in, rng_u64(&e->out_rng), (uint64_t)e->chain, true);
  RunStatus rs;
  do rs = interp_run(st, &rh.h, d);
  while (rs == RUN_SUSPENDED);
  if (rs != RUN_DONE) {
    if (!diag_failed(d)) diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "output run failed");
    return false;
  }
  out->outputs = interp_outputs(st);
  return true;
}

/* ---- the engine ---- */

/* Stan's initialisation: uniform(-2, 2) on every unconstrained coordinate
 * until the log density and its gradient are finite. */
static bool engine_find_init(HmcEngine *e, double *q, Diag *d) {
  double *g = gc_alloc_atomic(sizeof(double) * (e->dim > 0 ? e->dim : 1));
  char reason[sizeof d->msg] = "";
  for (int t = 0; t < HMC_INIT_TRIES; t++) {
    for (size_t i = 0; i < e->dim; i++)
      q[i] = HMC_INIT_RADIUS * (2 * rng_uniform(&e->rng) - 1);
    double lp;
    diag_init(&e->last_fail);
    if (!engine_density(e, q, &lp, g, d)) return false;
    if (diag_failed(&e->last_fail)) {
      snprintf(reason, sizeof reason, "%s", e->last_fail.msg);
      continue;
    }
    if (!(lp > -INFINITY) || !isfinite(lp)) {
      snprintf(reason, sizeof reason, "the log density is %g", lp);
      continue;
    }
    bool finite = true;
    for (size_t i = 0; i < e->dim && finite; i++) finite = isfinite(g[i]);
    if (!finite) {
      snprintf(reason, sizeof reason, "the gradient of the log density is not finite");
      continue;
    }
    return true;
  }
  diag_error(d, DIAG_RUNTIME, (SrcPos){0},
             "could not find an initial point with finite log density and gradient after %d "
             "tries (uniform(-2, 2) on the unconstrained scale): %s",
             HMC_INIT_TRIES, reason);
  return false;
}

static void *engine_init(const Interp *in, const EngineOpts *o, int chain, bool nuts, Diag *d) {
  HmcEngine *e = gc_alloc(sizeof(HmcEngine));
  e->in = in;
  e->chain = chain;
  e->nuts = nuts;
  e->max_depth = o->max_depth > 0 ? o->max_depth : 10;
  e->int_time = o->int_time > 0 ? o->int_time : 2 * M_PI;
  rng_seed(&e->rng, o->seed, (uint64_t)chain);
  rng_seed(&e->out_rng, o->seed ^ 0x6e757473u, (uint64_t)chain);
  LogDensity *ld = ld_new(in, d);
  if (!ld) return NULL;
  e->ld = ld;
  e->work = ld_work_new(ld);
  e->dim = ld_dim(ld);
  e->xdim = ld_num_constrained(ld);
  if (e->dim == 0) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "%s needs at least one continuous latent; this program has none (use --engine prior)",
               nuts ? "nuts" : "hmc");
    return NULL;
  }
  e->x = gc_alloc_atomic(sizeof(double) * e->xdim);
  e->perm = gc_alloc(sizeof(int *) * (size_t)(ld_nlatents(ld) + 1));
  double *q = gc_alloc_atomic(sizeof(double) * e->dim);
  if (!engine_find_init(e, q, d)) return NULL;
  e->h = hmc_new(e->dim, engine_density, e, o, nuts, &e->rng, q, d);
  return e->h ? e : NULL;
}

static void *nuts_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  return engine_init(in, o, chain, true, d);
}

static void *static_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  return engine_init(in, o, chain, false, d);
}

static bool engine_step(void *state, bool warmup, Draw *out, Diag *d) {
  HmcEngine *e = state;
  HmcStats s;
  if (!hmc_transition(e->h, warmup, &s, d)) return false;
  if (!warmup) {
    e->draws++;
    e->divergent += s.divergent;
    e->max_depth_hits += e->nuts && s.treedepth >= e->max_depth;
  }
  if (!engine_outputs(e, out, d)) return false;
  out->lp = s.lp;
  out->log_weight = 0;
  out->stats[0] = s.accept_stat;
  out->stats[1] = s.stepsize;
  if (e->nuts) {
    out->stats[2] = s.treedepth;
    out->stats[3] = s.n_leapfrog;
    out->stats[4] = s.divergent;
    out->stats[5] = s.energy;
  } else {
    out->stats[2] = e->int_time;
    out->stats[3] = s.energy;
  }
  return true;
}

static void engine_free(void *state) { (void)state; /* GC memory */ }

static const char *engine_adaptation(void *state) {
  return hmc_adaptation_info(((HmcEngine *)state)->h);
}

static const char *engine_notes(void *state) {
  HmcEngine *e = state;
  const char *div = "", *depth = "";
  if (e->divergent > 0)
    div = gc_printf("%ld of %ld transitions after warmup diverged; increase --adapt-delta "
                    "towards 0.95 or reparameterise",
                    e->divergent, e->draws);
  if (e->max_depth_hits > 0)
    depth = gc_printf("%ld of %ld transitions after warmup hit the maximum tree depth of %d; "
                      "increase --max-depth or reparameterise",
                      e->max_depth_hits, e->draws, e->max_depth);
  if (!*div && !*depth) return NULL;
  return gc_printf("%s%s%s", div, *div && *depth ? "; " : "", depth);
}

const EngineVT engine_nuts = {
    .name = "nuts",
    .summary = "no-U-turn sampler (Stan's multinomial NUTS with windowed warmup); "
               "fixed-structure continuous programs",
    .nstats = 6,
    .stat_names = {"accept_stat__", "stepsize__", "treedepth__", "n_leapfrog__", "divergent__",
                   "energy__"},
    .weighted = false,
    .uses_warmup = true,
    .init = nuts_init,
    .step = engine_step,
    .free = engine_free,
    .adaptation_info = engine_adaptation,
    .chain_notes = engine_notes,
};

const EngineVT engine_hmc = {
    .name = "hmc",
    .summary = "static Hamiltonian Monte Carlo (integration time 2 pi) with Stan's "
               "warmup; fixed-structure continuous programs",
    .nstats = 4,
    .stat_names = {"accept_stat__", "stepsize__", "int_time__", "energy__"},
    .weighted = false,
    .uses_warmup = true,
    .init = static_init,
    .step = engine_step,
    .free = engine_free,
    .adaptation_info = engine_adaptation,
    .chain_notes = engine_notes,
};
