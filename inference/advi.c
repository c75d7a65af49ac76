/* advi.c — the engine "advi": Stan's automatic differentiation variational
 * inference (Kucukelbir et al. 2017) on the log density of a fixed-structure
 * continuous program (logdensity.h), with a family of vi.h as q.
 *
 * init runs the whole optimisation, as CmdStan's `variational` does: the
 * reparameterised stochastic gradient of the ELBO from --grad-samples draws
 * of eps per iteration, Stan's adaptive step-size sequence
 *     phi += eta k^(-1/2) g / (1 + sqrt(s_k)),  s_k = 0.1 g^2 + 0.9 s_{k-1}
 * with eta chosen by Stan's search (100, 10, 1, 0.1, 0.01 tried for
 * --adapt-iter iterations each from the same start) — or Adam (stdlib/optim.h)
 * for the flow's networks (--optimizer) — the ELBO estimated every
 * --eval-elbo iterations from --elbo-samples draws, and convergence when the
 * mean or the median of the recent relative ELBO changes (Stan's circular
 * buffer) falls below --tol-rel-obj.  Each step then writes one draw theta =
 * T(eps) from the fitted q, constrained and with its generated quantities as
 * NUTS's draws are, and keeps its log importance weight log p - log q for the
 * run's PSIS diagnostics (EngineVT.vi_report).  With --psis-resample the
 * draws are instead importance-resampled from as many draws of q.
 *
 * The draws take their randomness from a stream of their own, apart from the
 * optimisation's, so q saved with --save-params and read back with
 * --load-params (which skips the optimisation) gives the same draws bit for
 * bit under the same seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../stdlib/safetensors.h"
#include "advi.h"
#include "csv.h"
#include "ld_shard.h"
#include "logdensity.h"
#include "psis.h"
#include "vi.h"
#include "../stdlib/optim.h"

#define ADVI_GRAD_TRIES 10   /* eps redrawn when log p or its gradient is not finite */
#define ADVI_INIT_TRIES 100  /* random initial points, as HMC's initialisation */
#define ADVI_TAU 1.0         /* Stan's stepsize_sequence: eta k^-1/2 / (tau + sqrt(s)) */
#define ADVI_ALPHA 0.1       /* and s_k = alpha g^2 + (1 - alpha) s_{k-1} */
#define ADVI_BATCH 128       /* the ELBO's draws evaluated as one batch (ld_eval_batch) */

enum { ADVI_MEANFIELD, ADVI_FULLRANK, ADVI_FLOW };
enum { ADVI_OPT_AUTO, ADVI_OPT_STAN, ADVI_OPT_ADAM, ADVI_OPT_SGD };
static const char *const advi_optimizers[] = {"auto", "stan", "adam", "sgd", NULL}; /* shared with svi */
static const char *const advi_families[] = {"meanfield", "fullrank", "flow", NULL};
static const char *const advi_none[] = {"none", NULL}; /* --save-params, --load-params */

typedef struct Advi {
  const Interp *in;
  const LogDensity *ld;
  LdWork *work;
  LdShard *shard; /* under MPI, log p split by data rows over the ranks (ld_shard.h), or NULL */
  double *sgrad;  /* its gradient when only log p is asked for */
  const EngineOpts *o;
  size_t dim;
  int chain;
  Rng rng;       /* eps of the optimisation */
  Rng draw_rng;  /* eps of the draws, and their resampling */
  Rng out_rng;   /* seeds of the per-draw output runs */
  const char *loaded; /* the --load-params file q came from, or NULL */
  ViFamily *q;
  double *phi0;  /* q at the initial point: every eta tried and the fit start here */
  /* scratch */
  double *eps, *theta, *grad, *gphi, *hist;
  double *bth, *blp, *blogdet; /* the ELBO's batch: ADVI_BATCH points, log p, log-dets */
  /* options */
  int grad_samples, elbo_samples, eval_elbo, adapt_iter;
  long max_iter;
  double tol;
  /* the fit */
  double eta, elbo;
  Optim *adam;   /* --optimizer adam (the flow's default): during the fit only */
  double *avg_a, *avg_b; /* the averaged iterate's sums (advi_average_add), or NULL */
  long navg_a, navg_b, avg_next;
  long iterations;
  bool converged;
  double seconds; /* the fit's wall time */
  int ntrace, captrace;
  double (*trace)[4];
  Diag last_fail; /* the last program error met at a draw of q */
  ViDraws draws; /* the steps' draws of q, their log weights, the resampled pool */
} Advi;

/* log p at theta (the gradient too when grad is not NULL); a program error
 * there (a failed parameter check) makes the point impossible, as for NUTS;
 * only ppl's own errors stop the run. */
static bool advi_logp(Advi *a, const double *theta, double *lp, double *grad, Diag *d) {
  Diag ed;
  diag_init(&ed);
  bool ok = a->shard ? ld_shard_eval_grad(a->shard, theta, lp, grad ? grad : a->sgrad, &ed)
            : grad   ? ld_eval_grad_w(a->work, theta, lp, grad, &ed)
                     : ld_eval(a->ld, theta, lp, &ed);
  if (ok) {
    if (isnan(*lp) || *lp == INFINITY) *lp = -INFINITY;
    return true;
  }
  if (ed.code == DIAG_INTERNAL) {
    *d = ed;
    return false;
  }
  a->last_fail = ed;
  *lp = -INFINITY;
  return true;
}

/* log N(eps; 0, I) */
static double advi_lognormal(size_t n, const double *eps) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += eps[i] * eps[i];
  return -0.5 * s - 0.5 * (double)n * log(2 * M_PI);
}

static void advi_draw_eps(Advi *a, Rng *r) {
  for (size_t i = 0; i < a->dim; i++) a->eps[i] = rng_normal(r);
}

/* The ELBO's stochastic gradient with respect to phi into a->gphi: the mean
 * over grad_samples draws of eps of the backward pass of grad log p at
 * T(eps), plus the log-det's (the entropy's) gradient.  A draw where log p or
 * its gradient is not finite is drawn again, up to ADVI_GRAD_TRIES times;
 * then *finite is false. */
static bool advi_grad(Advi *a, bool *finite, Diag *d) {
  ViFamily *q = a->q;
  memset(a->gphi, 0, sizeof(double) * q->nparams);
  double w = 1.0 / a->grad_samples;
  *finite = true;
  for (int s = 0; s < a->grad_samples; s++) {
    bool ok = false;
    for (int t = 0; t < ADVI_GRAD_TRIES && !ok; t++) {
      double logdet, lp;
      advi_draw_eps(a, &a->rng);
      q->forward(q, a->eps, a->theta, &logdet);
      if (!advi_logp(a, a->theta, &lp, a->grad, d)) return false;
      ok = isfinite(lp);
      for (size_t i = 0; i < a->dim && ok; i++) ok = isfinite(a->grad[i]);
    }
    if (!ok) {
      *finite = false;
      return true;
    }
    for (size_t i = 0; i < a->dim; i++) a->grad[i] *= w;
    q->backward(q, a->eps, a->grad, w, a->gphi);
  }
  for (size_t i = 0; i < q->nparams && *finite; i++) *finite = isfinite(a->gphi[i]);
  return true;
}

/* The ELBO E[log p(T(eps)) + logdet(eps)] + H[N(0, I)] from elbo_samples
 * draws where log p is finite: as Stan's calc_ELBO, a draw where it is not
 * is dropped and another drawn in its place, and once elbo_samples draws
 * have been dropped the ELBO is -inf (Stan throws; its eta search scores
 * that eta -inf, its optimisation stops, as the callers here do). */
static bool advi_elbo(Advi *a, double *elbo, Diag *d) {
  ViFamily *q = a->q;
  size_t dim = a->dim;
  double sum = 0;
  int kept = 0, dropped = 0;
  /* The draws still wanted are made and evaluated as one batch
     (ld_eval_batch), at most ADVI_BATCH at a time; the eps come from the
     stream in the order one at a time would take them, so a batch that
     reaches the dropped limit part-way puts the stream back and draws
     again only the eps used: the same stream either way. */
  while (kept < a->elbo_samples) {
    int n = a->elbo_samples - kept < ADVI_BATCH ? a->elbo_samples - kept : ADVI_BATCH;
    Rng start = a->rng;
    for (int s = 0; s < n; s++) {
      advi_draw_eps(a, &a->rng);
      q->forward(q, a->eps, a->bth + (size_t)s * dim, &a->blogdet[s]);
    }
    if (!ld_eval_batch(a->work, (size_t)n, a->bth, a->blp, &a->last_fail, d)) return false;
    for (int s = 0; s < n; s++) {
      double lp = a->blp[s], logdet = a->blogdet[s];
      if (!isfinite(lp) || !isfinite(logdet)) {
        if (++dropped >= a->elbo_samples) {
          a->rng = start;
          for (int t = 0; t <= s; t++) advi_draw_eps(a, &a->rng);
          *elbo = -INFINITY;
          return true;
        }
        continue;
      }
      sum += lp + logdet;
      kept++;
    }
  }
  *elbo = sum / kept + 0.5 * (double)a->dim * (1 + log(2 * M_PI));
  return true;
}

/* One step of Stan's sequence at iteration k (1-based) of a phase, or of
 * Adam when the fit has one (it minimises: the ascent direction negated). */
static void advi_update(Advi *a, long k, double eta) {
  size_t n = a->q->nparams;
  if (a->adam) {
    for (size_t i = 0; i < n; i++) a->gphi[i] = -a->gphi[i];
    optim_step(a->adam, a->q->phi, a->gphi);
    return;
  }
  double rate = eta / sqrt((double)k);
  for (size_t i = 0; i < n; i++) {
    double g = a->gphi[i];
    a->hist[i] = k == 1 ? g * g : ADVI_ALPHA * g * g + (1 - ADVI_ALPHA) * a->hist[i];
    a->q->phi[i] += rate * g / (ADVI_TAU + sqrt(a->hist[i]));
  }
}

/* False once the host interrupts (EngineOpts.interrupt): the fit stops
 * there, and the driver ends the chain without draws. */
static bool advi_go_on(Advi *a, Diag *d) {
  bool stop = engine_interrupted(a->o);
  if (a->shard && !mpi_allreduce_or(a->o->comm, &stop)) stop = true; /* the ranks in step agree */
  if (!stop) return true;
  diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "advi: interrupted during the fit");
  return false;
}

static void advi_reset(Advi *a) {
  memcpy(a->q->phi, a->phi0, sizeof(double) * a->q->nparams);
}

/* Stan's adapt_eta: each eta of the sequence runs adapt_iter iterations from
 * the start; the search stops at the first eta whose ELBO is worse than the
 * previous one's once that one beat the start's.  An eta whose gradient or
 * ELBO is not finite scores -inf.  False with *eta unset if none beats the
 * start. */
static bool advi_adapt(Advi *a, double *eta, bool *found, Diag *d) {
  static const double seq[] = {100, 10, 1, 0.1, 0.01};
  const int nseq = (int)(sizeof seq / sizeof seq[0]);
  double elbo_init, best = -INFINITY, best_eta = seq[0];
  advi_reset(a);
  if (!advi_elbo(a, &elbo_init, d)) return false;
  *found = false;
  for (int e = 0; e < nseq; e++) {
    advi_reset(a);
    bool finite = true;
    for (long k = 1; k <= a->adapt_iter && finite; k++) {
      if (!advi_grad(a, &finite, d) || !advi_go_on(a, d)) return false;
      if (finite) advi_update(a, k, seq[e]);
      engine_progress(a->o, a->chain, (long)e * a->adapt_iter + k, (long)nseq * a->adapt_iter,
                      "adaptation iteration");
    }
    double elbo = -INFINITY;
    if (finite && !advi_elbo(a, &elbo, d)) return false;
    if (elbo < best && best > elbo_init) {
      *found = true;
      break;
    }
    if (e < nseq - 1) {
      best = elbo, best_eta = seq[e];
    } else if (elbo > elbo_init) {
      best = elbo, best_eta = seq[e];
      *found = true;
    }
  }
  *eta = best_eta;
  advi_reset(a);
  return true;
}

static void advi_trace(Advi *a, long iter, double elbo, double rmean, double rmed) {
  if (a->ntrace == a->captrace) {
    int cap = a->captrace ? 2 * a->captrace : 32;
    double(*t)[4] = gc_alloc_atomic(sizeof(double[4]) * (size_t)cap);
    if (a->ntrace) memcpy(t, a->trace, sizeof(double[4]) * (size_t)a->ntrace);
    a->trace = t, a->captrace = cap;
  }
  double *r = a->trace[a->ntrace++];
  r[0] = (double)iter, r[1] = elbo, r[2] = rmean, r[3] = rmed;
}

/* The averaged iterate (the default; --last-iterate turns it off): the
 * sums of phi over the iterations since the last checkpoint but one (a) and
 * since the last (b), checkpoints at 1 and then each ceil(2^(1/4) times) the
 * previous; at each checkpoint a takes b's and b starts again.  So a averages
 * the last 16% (1 - 2^(-1/4)) to 29% (1 - 2^(-1/2)) of the iterations
 * (suffix averaging, Polyak and Juditsky; Rakhlin et al.: the mean of the
 * iterates of a decreasing step size is less noisy than the last one), in
 * two vectors of phi whatever the number of iterations.  The window is a
 * compromise between the noise of the last iterate, which the means of a
 * logistic regression show (bench/vi_bench: 0.82 posterior sds of rms error
 * with Stan's last iterate, 0.13 averaged), and a full-rank L still
 * shrinking from the identity when the test stops, which a longer window
 * widens: the last 29-50% made that regression's full-rank sds worse than
 * the last iterate's (1.10 against 0.90, log-ratio rms), the last 16-29%
 * better (0.78); docs/engines.md has the table. */
#define ADVI_AVG_STEP 1.189207115002721 /* 2^(1/4): the checkpoints' ratio */
static void advi_average_add(Advi *a, long k) {
  size_t n = a->q->nparams;
  if (k >= a->avg_next) {
    a->avg_next = (long)ceil((double)k * ADVI_AVG_STEP);
    memcpy(a->avg_a, a->avg_b, sizeof(double) * n);
    a->navg_a = a->navg_b;
    memset(a->avg_b, 0, sizeof(double) * n);
    a->navg_b = 0;
  }
  for (size_t i = 0; i < n; i++) a->avg_a[i] += a->q->phi[i], a->avg_b[i] += a->q->phi[i];
  a->navg_a++, a->navg_b++;
}

/* Stan's stochastic_gradient_ascent: the relative ELBO changes of the last
 * cb evaluations (cb = max(0.1 iter / eval_elbo, 2)) in a circular buffer. */
static bool advi_fit(Advi *a, Diag *d) {
  enum { CB_MAX = 64 };
  int cb = (int)fmax(0.1 * (double)a->max_iter / a->eval_elbo, 2.0);
  if (cb > CB_MAX) cb = CB_MAX;
  ViRelTest rt;
  vi_reltest_init(&rt, cb);
  double elbo = 0, prev = 0; /* Stan's start: the first change is 1 */
  advi_reset(a);
  for (long k = 1; k <= a->max_iter; k++) {
    bool finite;
    if (!advi_grad(a, &finite, d) || !advi_go_on(a, d)) return false;
    if (!finite) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                 "advi: at iteration %ld the log density or its gradient was not finite at %d "
                 "successive draws from the approximation%s%s; try a smaller --eta, or "
                 "--engine nuts",
                 k, ADVI_GRAD_TRIES, diag_failed(&a->last_fail) ? " (the last: " : "",
                 diag_failed(&a->last_fail) ? gc_printf("%s)", a->last_fail.msg) : "");
      return false;
    }
    advi_update(a, k, a->eta);
    if (a->avg_a) advi_average_add(a, k);
    a->iterations = k;
    engine_progress(a->o, a->chain, k, a->max_iter, "iteration");
    if (k % a->eval_elbo != 0) continue;
    if (!advi_elbo(a, &elbo, d)) return false;
    if (!isfinite(elbo)) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                 "advi: at iteration %ld the ELBO is not finite: the approximation puts mass "
                 "where the log density is -inf%s%s; try a smaller --eta, or --engine nuts",
                 k, diag_failed(&a->last_fail) ? " (" : "",
                 diag_failed(&a->last_fail) ? gc_printf("%s)", a->last_fail.msg) : "");
      return false;
    }
    double rel = fabs((prev - elbo) / elbo); /* Stan's rel_difference(elbo, elbo_prev) */
    prev = elbo;
    double mean, med;
    vi_reltest_push(&rt, rel, &mean, &med);
    advi_trace(a, k, elbo, mean, med);
    if (mean < a->tol || med < a->tol) {
      a->converged = true;
      break;
    }
  }
  a->elbo = elbo;
  if (a->avg_a && a->navg_a > 0) { /* q is the averaged iterate: its own ELBO */
    for (size_t i = 0; i < a->q->nparams; i++) a->q->phi[i] = a->avg_a[i] / (double)a->navg_a;
    return advi_elbo(a, &a->elbo, d);
  }
  if (a->ntrace == 0 || a->trace[a->ntrace - 1][0] != (double)a->iterations) {
    /* the last iteration was not an evaluation: the fit's ELBO is the last q's */
    if (!advi_elbo(a, &a->elbo, d)) return false;
  }
  return true;
}

/* A random initial point (uniform(-R, R) on the unconstrained scale, or the
 * latents of --init FILE) where log p is finite, as the HMC engines start. */
static bool advi_start(Advi *a, const EngineOpts *o, double *mu, Diag *d) {
  double R = o->init_radius, lp;
  int tries = R > 0 ? ADVI_INIT_TRIES : 1;
  double *u = gc_alloc_atomic(sizeof(double) * a->dim);
  for (int t = 0; t < tries; t++) {
    for (size_t i = 0; i < a->dim; i++) mu[i] = R > 0 ? R * (2 * rng_uniform(&a->rng) - 1) : 0;
    if (o->init_values) {
      memcpy(u, mu, sizeof(double) * a->dim);
      if (!ld_init_point(a->ld, o->init_values, o->init_file, u, mu, d)) return false;
    }
    if (!advi_logp(a, mu, &lp, a->grad, d)) return false;
    if (isfinite(lp)) return true;
  }
  diag_error(d, DIAG_RUNTIME, (SrcPos){0},
             "advi: could not find an initial point with a finite log density after %d tries "
             "(uniform(-%g, %g) on the unconstrained scale)%s%s",
             tries, R, R, diag_failed(&a->last_fail) ? ": " : "",
             diag_failed(&a->last_fail) ? a->last_fail.msg : "");
  return false;
}

/* One draw of q: theta, log p (with the Jacobian) and log q at it. */
static bool advi_sample(void *ctx, double *theta, double *lp, double *lq, Diag *d) {
  Advi *a = ctx;
  double logdet;
  advi_draw_eps(a, &a->draw_rng);
  a->q->forward(a->q, a->eps, theta, &logdet);
  *lq = advi_lognormal(a->dim, a->eps) - logdet;
  return advi_logp(a, theta, lp, NULL, d);
}

/* ---- saving and loading q (safetensors, stdlib/safetensors.h) ---- */

/* This chain's file of a file option (FILE, or FILE_2.safetensors of
 * several chains, as the CSVs are named), or NULL when not given. */
static const char *advi_file_opt(const Advi *a, const char *name) {
  const OptValue *v = opt_set_get(a->o->set, name);
  return v && v->path ? csv_chain_path(v->path, a->chain, a->o->chains) : NULL;
}

static uint64_t advi_hash(const Advi *a) { return ir_program_hash(interp_program(a->in)); }

/* q's tensors (vi.h's names and shapes) with ppl's metadata and the family. */
static bool advi_save(const Advi *a, const char *path, Diag *d) {
  const ViFamily *q = a->q;
  StFile f = {.ntensors = q->ntensors, .tensors = gc_alloc(sizeof(StTensor) * (size_t)q->ntensors)};
  size_t off = 0;
  for (int t = 0; t < q->ntensors; t++) {
    StTensor *s = &f.tensors[t];
    s->name = q->names[t];
    s->rank = q->ranks[t];
    s->numel = 1;
    for (int k = 0; k < s->rank; k++) s->shape[k] = q->shapes[t][k], s->numel *= (size_t)q->shapes[t][k];
    s->data = q->phi + off;
    off += s->numel;
  }
  st_set_ppl_meta(&f, advi_hash(a), ST_KIND_ADVI);
  StMeta *meta = gc_alloc(sizeof(StMeta) * (size_t)(f.nmeta + 3));
  memcpy(meta, f.meta, sizeof(StMeta) * (size_t)f.nmeta);
  meta[f.nmeta++] = (StMeta){"family", q->name};
  meta[f.nmeta++] = (StMeta){"dim", gc_printf("%zu", q->dim)};
  meta[f.nmeta++] = (StMeta){"elbo", gc_printf("%.17g", a->elbo)};
  f.meta = meta;
  const char *err = NULL;
  if (st_write(path, &f, &err)) return true;
  diag_error(d, DIAG_IO, (SrcPos){0}, "--save-params: %s", err ? err : path);
  return false;
}

/* q from a file --save-params wrote for this program, family and size. */
static bool advi_load(Advi *a, const char *path, Diag *d) {
  const char *err = NULL;
  StFile *f = st_read(path, &err);
  if (!f || !st_check_meta(f, path, advi_hash(a), &err)) {
    diag_error(d, f ? DIAG_USAGE : DIAG_IO, (SrcPos){0}, "--load-params: %s", err ? err : path);
    return false;
  }
  ViFamily *q = a->q;
  const char *fam = st_meta_get(f, "family");
  if (!fam || strcmp(fam, q->name) != 0) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "--load-params: %s holds a %s approximation, and this run's --vi is %s", path,
               fam ? fam : "(unnamed)", q->name);
    return false;
  }
  if (f->ntensors != q->ntensors) { /* a flow of another --flow-layers */
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "--load-params: %s holds %d tensors, and this run's %s family has %d (was it "
               "saved with other --flow-layers?)",
               path, f->ntensors, q->name, q->ntensors);
    return false;
  }
  size_t off = 0;
  for (int t = 0; t < q->ntensors; t++) {
    const StTensor *s = st_find(f, q->names[t]);
    size_t numel = 1;
    for (int k = 0; k < q->ranks[t]; k++) numel *= (size_t)q->shapes[t][k];
    if (!s || s->numel != numel) {
      diag_error(d, DIAG_USAGE, (SrcPos){0},
                 "--load-params: %s: tensor '%s' %s (this run's %s family has %zu values)", path,
                 q->names[t], s ? gc_printf("has %zu values", s->numel) : "is missing", q->name,
                 numel);
      return false;
    }
    memcpy(q->phi + off, s->data, sizeof(double) * numel);
    off += numel;
  }
  a->loaded = path;
  return true;
}

static ViFamily *advi_family(Advi *a, int kind) {
  if (kind == ADVI_FLOW) /* its networks' initial weights come from the fit's stream */
    return vi_flow_new(a->dim, (int)engine_opt_int(a->o, "flow-layers"),
                       (int)engine_opt_int(a->o, "flow-hidden"), &a->rng);
  return kind == ADVI_FULLRANK ? vi_fullrank_new(a->dim) : vi_meanfield_new(a->dim);
}

static bool advi_uses_adam(const Advi *a) {
  int opt = engine_opt_enum(a->o, "optimizer");
  return opt == ADVI_OPT_ADAM || (opt == ADVI_OPT_AUTO && !strcmp(a->q->name, "flow"));
}

/* After the fit (or the load): the resampled pool, if asked for. */
static void *advi_finish(Advi *a, Diag *d) {
  if (engine_opt_bool(a->o, "psis-resample") &&
      !vi_draws_resample(&a->draws, a->o->draws * a->o->thin, &a->draw_rng, d))
    return NULL;
  return a;
}

static double advi_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *advi_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  Advi *a = gc_alloc(sizeof *a);
  a->in = in;
  a->o = o;
  a->chain = chain;
  rng_seed(&a->rng, o->seed, (uint64_t)chain);
  rng_seed(&a->draw_rng, o->seed ^ 0x64726177u, (uint64_t)chain);
  rng_seed(&a->out_rng, o->seed ^ 0x61647669u, (uint64_t)chain);
  if (engine_opt_enum(o, "optimizer") == ADVI_OPT_SGD) { /* the shared table's svi choice */
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--optimizer sgd is svi's; advi takes auto, stan or "
               "adam");
    return NULL;
  }
  a->grad_samples = (int)engine_opt_int(o, "grad-samples");
  if (a->grad_samples == 0) a->grad_samples = engine_opt_enum(o, "vi") == ADVI_FLOW ? 8 : 1;
  a->elbo_samples = (int)engine_opt_int(o, "elbo-samples");
  a->eval_elbo = (int)engine_opt_int(o, "eval-elbo");
  a->adapt_iter = (int)engine_opt_int(o, "adapt-iter");
  a->max_iter = engine_opt_int(o, "iter");
  a->tol = engine_opt_real(o, "tol-rel-obj");
  if (a->tol == 0) a->tol = 0.01;
  LogDensity *ld = ld_shared(in, !o->no_jit, d);
  if (!ld) return NULL;
  a->ld = ld;
  a->work = ld_work_new(ld);
  a->dim = ld_dim(ld);
  if (a->dim == 0) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "advi needs at least one continuous latent; this program has none (use --engine "
               "prior)");
    return NULL;
  }
  if (o->comm) { /* every rank runs this chain in step: each evaluates its blocks of rows */
    const char *why;
    a->shard = ld_shard_new(in, o->comm, 0, !o->no_jit, &why, d);
    if (!a->shard && diag_failed(d)) return NULL;
    a->sgrad = gc_alloc_atomic(sizeof(double) * a->dim);
  }
  if (!(a->q = advi_family(a, engine_opt_enum(o, "vi")))) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "advi: could not make the variational family");
    return NULL;
  }
  size_t np = a->q->nparams;
  a->eps = gc_alloc_atomic(sizeof(double) * a->dim);
  a->theta = gc_alloc_atomic(sizeof(double) * a->dim);
  vi_draws_init(&a->draws, a->dim, advi_sample, a);
  a->grad = gc_alloc_atomic(sizeof(double) * a->dim);
  a->bth = gc_alloc_atomic(sizeof(double) * a->dim * ADVI_BATCH);
  a->blp = gc_alloc_atomic(sizeof(double) * ADVI_BATCH);
  a->blogdet = gc_alloc_atomic(sizeof(double) * ADVI_BATCH);
  a->gphi = gc_alloc_atomic(sizeof(double) * np);
  a->hist = gc_alloc_atomic(sizeof(double) * np);
  diag_init(&a->last_fail);
  a->eta = engine_opt_real(o, "eta");
  const char *load = advi_file_opt(a, "load-params");
  if (load) { /* q as saved: no optimisation; its ELBO is estimated again */
    if (!advi_load(a, load, d) || !advi_elbo(a, &a->elbo, d)) return NULL;
    a->converged = true;
    return advi_finish(a, d);
  }
  /* Every family's phi starts with the mean (vi.h; the flow's base layer,
     vi_flow.c): q is centred on the chain's initial point, as in Stan. */
  double *mu = gc_alloc_atomic(sizeof(double) * a->dim);
  if (!advi_start(a, o, mu, d)) return NULL;
  memcpy(a->q->phi, mu, sizeof(double) * a->dim);
  double t0 = advi_now();
  a->phi0 = gc_alloc_atomic(sizeof(double) * np);
  memcpy(a->phi0, a->q->phi, sizeof(double) * np);
  /* Stan's sequence with its eta search suits the Gaussians' few parameters;
     a flow's networks train better with Adam (tests/inference/test_advi_flow.c:
     the banana's ELBO -0.02 against -0.36 with the same seed and budget). */
  bool adam = advi_uses_adam(a);
  if (!adam && engine_opt_int(o, "adapt-engaged")) {
    bool found;
    if (!advi_adapt(a, &a->eta, &found, d)) return NULL;
    if (!found) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0},
                 "advi: every step size tried (eta = 100, 10, 1, 0.1, 0.01 for %d iterations "
                 "each) made the ELBO worse than at the start: the model may be ill-conditioned "
                 "or misspecified; try --adapt-engaged 0 with a small --eta, or --engine nuts",
                 a->adapt_iter);
      return NULL;
    }
  }
  if (adam) {
    OptimConfig c;
    optim_config_default(&c, OPTIM_ADAM);
    c.lr = engine_opt_real(o, "lr");
    c.sched = OPTIM_SCHED_COSINE;
    c.horizon = a->max_iter;
    c.lr_min = c.lr / 50;
    if (!(a->adam = optim_new(&c, np))) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "advi: out of memory for Adam's moments");
      return NULL;
    }
  }
  /* The averaged iterate, unless --last-iterate (Stan's answer) or Adam's
     fit (the flow's networks: their last iterate, as Adam's users expect) */
  if (engine_opt_bool(o, "average") && !engine_opt_bool(o, "last-iterate") && !adam) {
    a->avg_a = gc_alloc_atomic(sizeof(double) * np);
    a->avg_b = gc_alloc_atomic(sizeof(double) * np);
    memset(a->avg_b, 0, sizeof(double) * np);
    a->avg_next = 1;
  }
  bool fitted = advi_fit(a, d);
  optim_free(a->adam);
  a->adam = NULL;
  if (!fitted) return NULL;
  a->seconds = advi_now() - t0;
  const char *save = advi_file_opt(a, "save-params");
  if (save && mpi_rank(a->o->comm) == 0 && !advi_save(a, save, d)) return NULL; /* rank 0 writes */
  return advi_finish(a, d);
}

static bool advi_step(void *state, bool warmup, Draw *out, Diag *d) {
  (void)warmup;
  Advi *a = state;
  return vi_draws_step(&a->draws, a->work, &a->out_rng, a->chain, out, d);
}

static void advi_free(void *state) { /* GC memory; the log density is shared, the split one ours */
  ld_shard_free(((Advi *)state)->shard);
}

static const char *advi_backend(void *state) { return ld_backend(((Advi *)state)->ld); }

/* The CSV's lines after the header: CmdStan's two about eta, the fit as
 * "key = value" lines, then the ELBO trace as CmdStan prints it to the
 * console, so the file keeps it and `ppl summary` of the files repeats the
 * run's "vi" (csvread.c reads them back).  Reals with --sig-figs digits. */
static const char *advi_adaptation(void *state) {
  Advi *a = state;
  int g = a->o->sig_figs > 0 ? a->o->sig_figs : 6;
  const char *t = gc_printf("%s\neta = %g\nfamily = %s\niterations = %ld\nconverged = %d\n"
                            "elbo = %.*g\nfit_seconds = %.*g\npsis_resample = %d\n"
                            "average = %d\n"
                            "ELBO trace: iter, ELBO, delta_ELBO_mean, delta_ELBO_med",
                            a->loaded ? "Approximation loaded (--load-params)."
                            : engine_opt_int(a->o, "adapt-engaged") && !advi_uses_adam(a)
                                ? "Stepsize adaptation complete."
                                : "Stepsize adaptation off.",
                            a->eta, a->q->name, a->iterations, a->converged, g, a->elbo, g,
                            a->seconds, a->draws.pool != NULL, a->avg_a != NULL);
  for (int i = 0; i < a->ntrace; i++)
    t = gc_printf("%s\n%.0f, %.*g, %.*g, %.*g", t, a->trace[i][0], g, a->trace[i][1], g,
                  a->trace[i][2], g, a->trace[i][3]);
  return t;
}

static bool advi_vi_report(void *state, ViReport *r) {
  Advi *a = state;
  *r = (ViReport){
      .family = a->q->name,
      .elbo = a->elbo,
      .eta = a->eta,
      .iterations = a->iterations,
      .converged = a->converged,
      .loaded = a->loaded,
      .resampled = a->draws.pool != NULL,
      .seconds = a->seconds,
      .ntrace = a->ntrace,
      .trace = (const double(*)[4])a->trace,
      .n = a->draws.nlw,
      .lw = a->draws.lw,
  };
  return true;
}

static const char *advi_notes(void *state) {
  Advi *a = state;
  if (a->loaded) return gc_printf("the approximation was read from %s (--load-params)", a->loaded);
  if (a->converged) return NULL;
  return gc_printf("the ELBO did not converge in %ld iterations (--iter); its last relative "
                   "change was %.3g (--tol-rel-obj %g)",
                   a->iterations, a->ntrace ? a->trace[a->ntrace - 1][2] : NAN, a->tol);
}

/* ---- options ---- */

const OptSpec vi_options[] = {
    {.name = "iter", .type = OPT_INT, .def = "10000", .ilo = 1, .ihi = 100000000, .arg = "N",
     .help = "most optimisation iterations (CmdStan's iter)"},
    {.name = "grad-samples", .type = OPT_INT, .def = "0", .ilo = 0, .ihi = 1000000, .arg = "N",
     .help = "draws of the approximation per stochastic gradient of the ELBO; 0: the engine "
             "chooses (1, as Stan, for the Gaussians and for svi; 8 for --vi flow, whose "
             "networks need less noisy gradients)"},
    {.name = "elbo-samples", .type = OPT_INT, .def = "100", .ilo = 1, .ihi = 100000000,
     .arg = "N", .help = "draws of the approximation per ELBO estimate"},
    {.name = "eval-elbo", .type = OPT_INT, .def = "100", .ilo = 1, .ihi = 100000000, .arg = "N",
     .help = "estimate the ELBO and test convergence every N iterations"},
    {.name = "tol-rel-obj", .type = OPT_REAL, .def = "0", .rlo = 0, .rhi = INFINITY, .arg = "X",
     .help = "converged when the mean or median relative ELBO change is below X; 0: the "
             "engine's default (advi 0.01, as Stan; svi runs all --iter steps, as Pyro's "
             "SVI its num_steps)"},
    {.name = "save-params", .type = OPT_ENUM, .def = "none", .choices = advi_none,
     .or_file = true, .arg = "FILE",
     .help = "write each chain's fit to FILE (safetensors: advi's approximation, svi's params; "
             "FILE_1, FILE_2, ... for several chains, as the CSVs), for --load-params and other "
             "tools; FILE has a '.' or '/'"},
    {.name = "load-params", .type = OPT_ENUM, .def = "none", .choices = advi_none,
     .or_file = true, .arg = "FILE",
     .help = "skip the optimisation and draw from the fit --save-params wrote for this program "
             "(and family) and chain: the same seed gives the same draws"},
    {.name = "optimizer", .type = OPT_ENUM, .def = "auto", .choices = advi_optimizers,
     .arg = "NAME",
     .help = "advi: stan (Stan's step-size sequence and eta search) or adam (Adam from --lr, "
             "cosine-decayed to lr/50 over --iter; no eta search), auto: adam for --vi flow, "
             "stan otherwise; svi: adam (auto) or sgd (momentum 0.9)"},
    {.name = "lr", .type = OPT_REAL, .def = "0.005", .rlo = 0, .rlo_open = true, .rhi = 1,
     .arg = "X", .help = "the initial learning rate of adam and sgd"},
    OPT_END,
};

static const OptSpec advi_options[] = {
    {.name = "eta", .type = OPT_REAL, .def = "1", .rlo = 0, .rlo_open = true, .rhi = INFINITY,
     .arg = "X", .help = "step-size scale, used as is with --adapt-engaged 0"},
    {.name = "adapt-engaged", .type = OPT_INT, .def = "1", .ilo = 0, .ihi = 1, .arg = "0|1",
     .help = "1: choose eta among 100, 10, 1, 0.1, 0.01 by short runs first, as Stan does; "
             "0: use --eta as given (CmdStan's adapt engaged)"},
    {.name = "adapt-iter", .type = OPT_INT, .def = "50", .ilo = 1, .ihi = 1000000, .arg = "N",
     .help = "iterations of each eta tried by the adaptation"},
    {.name = "average", .type = OPT_BOOL, .def = "true",
     .help = "draw from the mean of the optimisation's iterates over its last 16-29% (suffix "
             "averaging; the default for Stan's step-size sequence, not for adam): less noise in "
             "q than the last iterate for no extra gradient; the convergence test is unchanged"},
    {.name = "last-iterate", .type = OPT_BOOL, .def = "false",
     .help = "draw from the optimisation's last iterate, as Stan does (no --average)"},
    {.name = "vi", .type = OPT_ENUM, .def = "meanfield", .choices = advi_families,
     .arg = "FAMILY", .help = "the variational family: one of"},
    {.name = "flow-layers", .type = OPT_INT, .def = "6", .ilo = 0, .ihi = 64, .arg = "N",
     .help = "--vi flow: affine coupling layers of the Real NVP flow (0: the base affine "
             "map alone, i.e. mean-field)"},
    {.name = "flow-hidden", .type = OPT_INT, .def = "32", .ilo = 1, .ihi = 4096, .arg = "N",
     .help = "--vi flow: units in each of the two hidden relu layers of each coupling's network"},
    OPT_END,
};

const OptSpec vi_draw_options[] = {
    {.name = "psis-resample", .type = OPT_BOOL, .def = "false",
     .help = "write draws importance-resampled (Pareto-smoothed weights) from as many draws "
             "of the approximation, instead of the approximation's own draws"},
    OPT_END,
};

const EngineVT engine_advi = {
    .name = "advi",
    .summary = "automatic differentiation variational inference (Stan's ADVI: mean-field or "
               "full-rank Gaussian; or a Real NVP flow) with PSIS diagnostics; "
               "fixed-structure continuous programs",
    .nstats = 2,
    .stat_names = {"log_p__", "log_g__"},
    .weighted = false,
    .uses_warmup = false,
    .traits = ENGINE_GRADIENT | ENGINE_IMPROPER | ENGINE_INITS,
    .options = {vi_options, advi_options, vi_draw_options, enum_options},
    .init = advi_init,
    .step = advi_step,
    .free = advi_free,
    .adaptation_info = advi_adaptation,
    .chain_notes = advi_notes,
    .backend = advi_backend,
    .vi_report = advi_vi_report,
};
