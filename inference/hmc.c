/* hmc.c — the engines "nuts" and "hmc": the samplers of nuts.c on the log
 * density of a fixed-structure continuous program (logdensity.h), with
 * Stan's initialisation, per-draw outputs and run notes.
 *
 * Each draw's outputs come from one more run of the program (generated block
 * included) in which every latent takes its value constrained from the
 * sampler's position, so transformed and generated quantities are computed
 * exactly as the program states them, without scoring the model again.
 * lp__ is the log density on the unconstrained scale with the log-Jacobians,
 * as Stan reports it, except that ppl keeps the normalising constants that
 * Stan drops. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "csv.h"
#include "ld_shard.h"
#include "logdensity.h"
#include "nuts.h"

#define HMC_INIT_TRIES 100

/* Stan's initialisation takes the first random point where the log density
 * and its gradient are finite.  Some of those points are finite but unusable:
 * in arma11, |theta| > 1 makes the errors grow like theta^T, the log density
 * is -1e100 there and its curvature so extreme that the initial step-size
 * search ends near 1e-50; a chain started there can sit on that ridge for the
 * whole warmup (its steps fall below the positions' rounding), and R-hat is
 * 1.5.  A step below HMC_MIN_INIT_STEP needs 1e8 leapfrog steps to cross the
 * init radius, so such a start is drawn again, up to HMC_INIT_STARTS times
 * (the chain's note says so).  A start with an ordinary step is kept as
 * Stan keeps it and draws nothing more: the runs of models whose starts all
 * have ordinary steps are unchanged draw for draw. */
#define HMC_MIN_INIT_STEP 1e-8
#define HMC_INIT_STARTS 20

/* Compile or interpret, decided before the first chain from counts alone, so
 * that a command line always runs the same backend (and gives the same bits)
 * on every machine and at every load: the run's expected gradients are
 * chains x (warmup + draws) x HMC_EXPECTED_STEPS, a typical trajectory's
 * leapfrog steps (eight schools takes 9, a logistic regression 6; the tree
 * depth adapts, so this is a guess, not a bound).  Fewer than
 * ld_jit_pays asks for: the interpreter, which costs them less than
 * compiling would; fewer than ld_jit_quick's: the quick pipeline; more: the
 * full one.  --no-jit and --jit force the backend, --jit-opt quick|full the
 * pipeline; the 'backend:' line says which ran and why. */
#define HMC_EXPECTED_STEPS 8
enum { JIT_OPT_AUTO, JIT_OPT_QUICK, JIT_OPT_FULL }; /* --jit-opt */

typedef struct HmcEngine {
  const Interp *in;
  const char *backend_why; /* why the run interprets, when hmc chose to */
  const char *draws_why;   /* why a compiled run's draws are interpreted, or NULL */
  const LogDensity *ld;
  LdWork *work;     /* this chain's gradient workspace (no allocation per call) */
  size_t dim;
  int chain;
  bool nuts;
  int max_depth;
  double int_time;  /* static HMC: reported as int_time__, as CmdStan does */
  Rng rng;          /* the sampler's randomness */
  Rng out_rng;      /* seeds of the per-draw output runs */
  Hmc *h;
  double init_radius;
  long draws, capped;
  long warm_it, samp_it; /* transitions so far in warmup / sampling */
  int thin;
  bool save_warmup;
  int restarts;     /* random starts redrawn for their step size (HMC_INIT_STARTS) */
  double bad_step;  /* the last redrawn start's initial step size */
  Diag last_fail;   /* the last program error met while evaluating */
  bool sampling;    /* in a transition (not the search for an initial point) */
  long rejected;    /* points rejected by a program error in transitions */
  long iterations;  /* transitions, warmup included */
  long rejecting;   /* of them, those that met such a point */
  Diag first_reject; /* the first of them */
  const char *reject_latent; /* the latent it names, when the IR can tell */
  LdShard *shard;   /* under MPI, the density split by rows over the ranks (or NULL) */
} HmcEngine;

/* ---- the log density ---- */

/* "model.ppl:5:3: normal: sigma must be positive, got -0.3": the latent
   that is sigma there, when the program passes one directly. */
static const char *rejected_latent(const Interp *in, const Diag *ed) {
  const char *must = strstr(ed->msg, " must be ");
  if (!must) return NULL;
  const char *w = must;
  while (w > ed->msg && w[-1] != ' ' && w[-1] != ':') w--;
  if (w == must) return NULL;
  return ir_param_latent(interp_program(in), ed->pos, gc_strndup(w, (size_t)(must - w)));
}

/* The density for the sampler: a program error at a point (a failed argument
 * check, an impossible value) makes that point impossible, as in Stan; only
 * errors of ppl itself stop the run. */
static bool engine_density(void *ctx, const double *q, double *lp, double *g, Diag *d) {
  HmcEngine *e = ctx;
  Diag ed;
  diag_init(&ed);
  if (e->shard ? ld_shard_eval_grad(e->shard, q, lp, g, &ed) : ld_eval_grad_w(e->work, q, lp, g, &ed)) {
    if (isnan(*lp) || *lp == INFINITY) { /* compiled code does not stop at the term */
      diag_error(&e->last_fail, DIAG_RUNTIME, (SrcPos){0}, "the log density is %s",
                 isnan(*lp) ? "NaN" : "+inf");
      *lp = -INFINITY;
    }
    return true;
  }
  if (ed.code == DIAG_INTERNAL) {
    *d = ed;
    return false;
  }
  e->last_fail = ed;
  if (e->sampling && e->rejected++ == 0) {
    e->first_reject = ed;
    e->reject_latent = rejected_latent(e->in, &ed);
  }
  *lp = -INFINITY;
  for (size_t i = 0; i < e->dim; i++) g[i] = 0;
  return true;
}

/* ---- outputs ---- */

/* One draw: the constrained latents, the model's derived quantities and the
 * generated ones at the sampler's position (ld_draw: compiled where the JIT
 * took the program).  The random numbers of the generated block come from
 * this chain's output stream. */
static bool engine_outputs(HmcEngine *e, Draw *out, Diag *d) {
  InterpLatent *nested = NULL;
  out->nlatents = 0;
  uint64_t seed = rng_u64(&e->out_rng);
  out->outputs = e->draws_why ? ld_draw_full(e->ld, hmc_position(e->h), seed, (uint64_t)e->chain,
                                             &nested, &out->nlatents, d)
                              : ld_draw(e->work, hmc_position(e->h), seed, (uint64_t)e->chain,
                                        &nested, &out->nlatents, d);
  out->latents = nested;
  return out->outputs != NULL;
}

/* ---- the engine ---- */

/* Stan's initialisation: uniform(-R, R) on every unconstrained coordinate
 * (R = --init, default 2) until the log density and its gradient are
 * finite; R = 0 is the single point 0, as CmdStan's init=0. */
static bool engine_find_init(HmcEngine *e, const EngineOpts *o, double *q, Diag *d) {
  double *g = gc_alloc_atomic(sizeof(double) * (e->dim > 0 ? e->dim : 1));
  double *u = gc_alloc_atomic(sizeof(double) * (e->dim > 0 ? e->dim : 1));
  char reason[sizeof d->msg] = "";
  double radius = e->init_radius;
  int tries = radius > 0 ? HMC_INIT_TRIES : 1;
  for (int t = 0; t < tries; t++) {
    for (size_t i = 0; i < e->dim; i++)
      q[i] = radius > 0 ? radius * (2 * rng_uniform(&e->rng) - 1) : 0;
    double lp;
    diag_init(&e->last_fail);
    if (o->init_values) { /* the latents the file names take its values */
      memcpy(u, q, sizeof(double) * e->dim);
      Diag id;
      diag_init(&id);
      if (!ld_init_point(e->ld, o->init_values, o->init_file, u, q, &id)) {
        if (id.code == DIAG_DATA || id.code == DIAG_INTERNAL) { /* no retry helps */
          *d = id;
          return false;
        }
        snprintf(reason, sizeof reason, "%s", id.msg);
        continue;
      }
    }
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
  if (radius > 0)
    diag_error(d, DIAG_RUNTIME, (SrcPos){0},
               "could not find an initial point with finite log density and gradient after %d "
               "tries (uniform(-%g, %g) on the unconstrained scale%s%s): %s",
               HMC_INIT_TRIES, radius, radius, o->init_values ? ", the latents in " : "",
               o->init_values ? gc_printf("%s at its values", o->init_file) : "", reason);
  else
    diag_error(d, DIAG_RUNTIME, (SrcPos){0},
               "the initial point (0 on the unconstrained scale, --init 0) has no finite log "
               "density and gradient: %s",
               reason);
  return false;
}

static void *engine_init(const Interp *in, const EngineOpts *o, int chain, bool nuts, Diag *d) {
  HmcEngine *e = gc_alloc(sizeof(HmcEngine));
  e->in = in;
  e->chain = chain;
  e->nuts = nuts;
  e->max_depth = (int)engine_opt_int(o, "max-depth");
  e->int_time = engine_opt_real(o, "int-time");
  e->thin = o->thin > 0 ? o->thin : 1;
  e->save_warmup = o->save_warmup;
  rng_seed(&e->rng, o->seed, (uint64_t)chain);
  rng_seed(&e->out_rng, o->seed ^ 0x6e757473u, (uint64_t)chain);
  /* one log density for all chains, compiled once (unless --no-jit, a run
     too short to repay it, or the JIT refuses the program: then it
     interprets) */
  if (o->jit && o->no_jit) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--jit and --no-jit contradict each other: give one");
    return NULL;
  }
  LogDensity *ld = ld_shared(in, false, d);
  if (!ld) return NULL;
  double grads = (double)o->chains * ((double)o->warmup + (double)o->draws) * HMC_EXPECTED_STEPS;
  bool jit = !o->no_jit && (o->jit || ld_jit_pays(ld, grads));
  if (jit) {
    int how = engine_opt_enum(o, "jit-opt");
    ld = ld_shared_jit(in, how == JIT_OPT_QUICK || (how == JIT_OPT_AUTO && ld_jit_quick(ld, grads)), d);
    if (!ld) return NULL;
  } else if (!o->no_jit) {
    e->backend_why = gc_printf("interpreter (about %.0f gradients expected: too few to repay "
                               "compiling; --jit compiles)", grads);
  }
  e->ld = ld;
  /* the draw function too is compiled only when the run's kept draws repay
     it (counts, as above): a short run draws by the interpreter, the same
     draws as the compiled function's (test jit) */
  double kept = (double)o->chains * ((double)o->draws + (o->save_warmup ? (double)o->warmup : 0)) /
                (double)e->thin;
  if (jit && !ld_draw_pays(ld, kept))
    e->draws_why = gc_printf("about %.0f draw%s: too few to repay compiling the draw function",
                             kept, kept == 1 ? "" : "s");
  else
    ld_prepare_draw(ld);
  e->work = ld_work_new(ld);
  e->dim = ld_dim(ld);
  if (o->comm) { /* every rank runs this chain: each evaluates its blocks of rows */
    const char *why;
    e->shard = e->dim ? ld_shard_new(in, o->comm, 0, jit, &why, d) : NULL;
    if (!e->shard && diag_failed(d)) return NULL;
  }
  if (e->dim == 0) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "%s needs at least one continuous latent; this program has none (use --engine prior)",
               nuts ? "nuts" : "hmc");
    return NULL;
  }
  e->init_radius = o->init_radius;
  double *q = gc_alloc_atomic(sizeof(double) * e->dim);
  /* A random start whose initial step-size search ends below
     HMC_MIN_INIT_STEP cannot move (see HMC_INIT_STARTS): try another, and
     if none does better, keep the one with the largest step.  Without warmup
     there is no search, and --init 0 is one point. */
  bool retry = o->warmup > 0 && e->init_radius > 0;
  for (int k = 0; k < (retry ? HMC_INIT_STARTS : 1); k++) {
    /* the first start's failures are the run's, as without redrawing; a
       later one that fails leaves the best start so far */
    Diag later;
    diag_init(&later);
    Diag *dk = e->h ? &later : d;
    Hmc *h = engine_find_init(e, o, q, dk)
                 ? hmc_new(e->dim, engine_density, e, o, nuts, &e->rng, q, dk)
                 : NULL;
    if (later.code == DIAG_INTERNAL) *d = later;
    if (!h) return later.code == DIAG_INTERNAL || !e->h ? NULL : e;
    if (!e->h || hmc_stepsize(h) > hmc_stepsize(e->h)) e->h = h;
    if (hmc_stepsize(h) >= HMC_MIN_INIT_STEP) break;
    e->restarts++;
    e->bad_step = hmc_stepsize(h);
  }
  return e;
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
  long rejected = e->rejected;
  e->sampling = true;
  bool ok = hmc_transition(e->h, warmup, &s, d);
  e->sampling = false;
  if (!ok) return false;
  e->iterations++;
  e->rejecting += e->rejected > rejected;
  if (!warmup) {
    e->draws++;
    e->capped += !e->nuts && s.capped;
  }
  /* Only the draws the driver writes need the program's outputs (CmdStan
     runs generated quantities for those alone): warmup without
     --save-warmup and thinned-out iterations skip the run but still take
     its seed, so the kept draws' random numbers are the same either way. */
  long it = warmup ? e->warm_it++ : e->samp_it++;
  if (warmup ? e->save_warmup && it % e->thin == 0 : it % e->thin == 0) {
    if (!engine_outputs(e, out, d)) return false;
  } else {
    rng_u64(&e->out_rng);
  }
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

static long engine_rejections(void *state, long *transitions, const char **first,
                              const char **latent) {
  HmcEngine *e = state;
  *transitions = e->iterations;
  *latent = e->rejecting ? e->reject_latent : NULL;
  *first = e->rejecting ? gc_strdup(e->first_reject.msg) : NULL; /* outlives the state */
  return e->rejecting;
}

static void engine_free(void *state) {
  /* GC memory; the log density is shared, the sharded one the chain's */
  ld_shard_free(((HmcEngine *)state)->shard);
}

static const char *engine_backend(void *state) {
  HmcEngine *e = state;
  return e->backend_why ? e->backend_why
         : e->draws_why ? ld_backend_draws_interpreted(e->ld, e->draws_why)
                        : ld_backend(e->ld);
}

static const char *engine_adaptation(void *state) {
  return hmc_adaptation_info(((HmcEngine *)state)->h);
}

static const char *engine_metric_json(void *state) {
  return hmc_metric_json(((HmcEngine *)state)->h);
}

/* An adapted step far below the usual 0.1-1 means the warmup settled where
   the curvature is extreme: typically a chain stuck on a narrow ridge far
   from the others (arma11 started at |theta| > 1 does this, in Stan too). */
#define HMC_TINY_STEP 1e-4

static const char *engine_notes(void *state) {
  HmcEngine *e = state;
  const char *depth = "", *tiny = "";
  double eps = hmc_stepsize(e->h);
  if (e->draws > 0 && eps < HMC_TINY_STEP)
    tiny = gc_printf("the adapted step size is %g: this chain is probably stuck where the "
                     "curvature is extreme (compare R-hat); a smaller --init radius (e.g. "
                     "--init 0.5) or a reparameterisation may help",
                     eps);
  /* divergences and max-depth hits are the run's warnings (warnings.c), with
     the counts per chain: not repeated here */
  if (e->capped > 0)
    depth = gc_printf("%ld of %ld transitions after warmup were cut at %d leapfrog steps "
                      "(int_time / stepsize = %g); lower --int-time or raise --max-depth",
                      e->capped, e->draws, 1 << e->max_depth, e->int_time / eps);
  if (e->restarts > 0) /* not a problem of the run: said after the others */
    tiny = gc_printf("%s%s%d random start%s redrawn: the initial step size there was %g, "
                     "too small to move", tiny, *tiny ? "; " : "", e->restarts,
                     e->restarts > 1 ? "s" : "", e->bad_step);
  if (!*depth && !*tiny) return NULL;
  return gc_printf("%s%s%s", depth, *depth && *tiny ? "; " : "", tiny);
}

/* ---- options ---- */

static const char *const metrics[] = {"diag", "dense", "unit", NULL}; /* METRIC_* order */
static const char *const jit_opts[] = {"auto", "quick", "full", NULL}; /* JIT_OPT_* order */

/* Shared by nuts and hmc. */
static const OptSpec hmc_options[] = {
    {.name = "metric", .type = OPT_ENUM, .def = "diag", .choices = metrics, .arg = "KIND|FILE",
     .or_file = true,
     .help = "the mass matrix adapted during warmup (unit: the identity, fixed), or FILE, "
             "a metric file (CmdStan's, --save-metric's) to start from, used as is with "
             "--warmup 0; KIND is one of"},
    {.name = "adapt-delta", .type = OPT_REAL, .def = "0.8", .rlo = 1e-6, .rhi = 1 - 1e-9,
     .arg = "X", .help = "target acceptance statistic of the step-size adaptation"},
    {.name = "stepsize", .type = OPT_REAL, .def = "1", .rlo = 0, .rlo_open = true,
     .rhi = INFINITY, .arg = "X", .help = "initial step size, where the warmup's step-size search starts (CmdStan's stepsize)"},
    {.name = "stepsize-jitter", .type = OPT_REAL, .def = "0", .rlo = 0, .rhi = 1, .arg = "X",
     .help = "each transition's step size times uniform(1-X, 1+X) (CmdStan's stepsize_jitter)"},
    {.name = "max-depth", .type = OPT_INT, .def = "10", .ilo = 1, .ihi = 30, .arg = "N",
     .help = "tree depth limit: at most 2^N - 1 leapfrog steps per transition (hmc: a "
             "trajectory is cut at 2^N steps)"},
    {.name = "jit-opt", .type = OPT_ENUM, .def = "auto", .choices = jit_opts, .arg = "HOW",
     .help = "how the JIT optimises the log density: quick (a short pipeline and fast code "
             "generation: half the compile, gradients about a quarter slower), full (LLVM's "
             "O2), or auto: quick when the run's expected gradients would not repay full's "
             "extra compile (the 'backend:' line says which); one of"},
    OPT_END,
};

static const OptSpec static_options[] = {
    {.name = "int-time", .type = OPT_REAL, .def = "6.283185307179586", .rlo = 0,
     .rlo_open = true, .rhi = INFINITY, .arg = "X",
     .help = "integration time of each transition (2 pi; CmdStan's int_time)"},
    OPT_END,
};

/* The sampler settings CmdStan writes for its HMC engines, so readers that
 * look for "algorithm = hmc" and the metric find them. */
static void csv_config(const EngineOpts *o, CsvConfig *cfg, bool nuts) {
  static const char *const cmdstan_metrics[] = {"diag_e", "dense_e", "unit_e"};
  cfg->hmc_engine = nuts ? "nuts" : "static";
  cfg->metric = cmdstan_metrics[engine_opt_enum(o, "metric")];
  cfg->metric_file = o->metric_file;
  cfg->max_depth = (int)engine_opt_int(o, "max-depth");
  cfg->int_time = engine_opt_real(o, "int-time");
  cfg->stepsize = engine_opt_real(o, "stepsize");
  cfg->stepsize_jitter = engine_opt_real(o, "stepsize-jitter");
  cfg->adapt_engaged = o->warmup > 0;
  cfg->adapt_delta = engine_opt_real(o, "adapt-delta");
}

static void nuts_csv_config(const EngineOpts *o, CsvConfig *cfg) { csv_config(o, cfg, true); }
static void static_csv_config(const EngineOpts *o, CsvConfig *cfg) { csv_config(o, cfg, false); }

const EngineVT engine_nuts = {
    .name = "nuts",
    .summary = "no-U-turn sampler (Stan's multinomial NUTS with windowed warmup); "
               "fixed-structure continuous programs",
    .nstats = 6,
    .stat_names = {"accept_stat__", "stepsize__", "treedepth__", "n_leapfrog__", "divergent__",
                   "energy__"},
    .weighted = false,
    .uses_warmup = true,
    .traits = ENGINE_GRADIENT | ENGINE_IMPROPER | ENGINE_INITS,
    .options = {hmc_options, enum_options},
    .csv_config = nuts_csv_config,
    .init = nuts_init,
    .step = engine_step,
    .free = engine_free,
    .adaptation_info = engine_adaptation,
    .metric_json = engine_metric_json,
    .chain_notes = engine_notes,
    .rejections = engine_rejections,
    .backend = engine_backend,
};

const EngineVT engine_hmc = {
    .name = "hmc",
    .summary = "static Hamiltonian Monte Carlo (integration time 2 pi) with Stan's "
               "warmup; fixed-structure continuous programs",
    .nstats = 4,
    .stat_names = {"accept_stat__", "stepsize__", "int_time__", "energy__"},
    .weighted = false,
    .uses_warmup = true,
    .traits = ENGINE_GRADIENT | ENGINE_IMPROPER | ENGINE_INITS,
    .options = {hmc_options, static_options, enum_options},
    .csv_config = static_csv_config,
    .init = static_init,
    .step = engine_step,
    .free = engine_free,
    .adaptation_info = engine_adaptation,
    .metric_json = engine_metric_json,
    .chain_notes = engine_notes,
    .rejections = engine_rejections,
    .backend = engine_backend,
};
