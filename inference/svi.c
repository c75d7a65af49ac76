/* svi.c — the engine "svi": stochastic variational inference with the
 * program's own guide block as q (Pyro's SVI with Trace_ELBO), fitting every
 * `param` of the guide and of the model (the model's are maximum-likelihood,
 * variational-EM parameters) with an optimiser of stdlib/optim.h.
 *
 * One ELBO sample is two runs on one tape.  The guide runs first under a
 * handler whose sample() draws each latent by reparameterisation, so its
 * value carries the nodes of the guide's params (loc + scale * eps for the
 * location-scale families, exp of that for lognormal, eps / rate for the
 * exponential), and adds log q of the value.  The model then runs under a
 * handler whose sample() returns the guide's value at the same address and
 * adds log p; observations and factors add to log p too.  log p - log q,
 * averaged over --grad-samples such pairs, is swept backwards once, which
 * gives the gradient for every param: each is an independent tape variable on
 * the unconstrained scale, constrained through its declared bounds
 * (stdlib/transform.h).  Params are matched by name within their block,
 * latents by address between the blocks.
 *
 * A plate with a batch size (`plate (i in 1:N, batch = B)`) is run over B
 * indices drawn without replacement each step, the same for the guide and the
 * model (plates are matched by their loop variable's name), and every density
 * inside is weighted by N / B (interp_plate_scale), so the ELBO's estimate and
 * its gradient stay unbiased.  While training, a plate whose body does the
 * same to every row runs once over the minibatch (ir/plate_vec.h: networks
 * as one product per layer, each density one call over the rows), unless
 * --plate-rows; the guide's latent of such a plate is one choice, NAME[i],
 * a K x B matrix drawn in the row loop's order, so the noise, the ELBO and
 * its gradient are the row loop's (up to the order of sums).
 *
 * Before training, one traced run of each block checks that they agree: every
 * model latent drawn by the guide, every guide latent a model latent, with the
 * same support.  init trains (so the driver's steps are the draws); each step
 * then runs the guide with plain draws from its fitted families and replays
 * the model with the generated block for the outputs.  The ELBO trace and the
 * log weights log p - log q of the draws go to the driver as advi's do
 * (EngineVT.vi_report: the summary's PSIS k-hat and log evidence). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ir/net.h"
#include "../ir/plate_vec.h"
#include "../stdlib/mathfn.h"
#include "../stdlib/optim.h"
#include "../stdlib/safetensors.h"
#include "../stdlib/transform.h"
#include "advi.h"
#include "csv.h"
#include "mpi_run.h"
#include "resample.h"
#include "svi.h"
#include "trace.h"
#include "vi.h"

#define SVI_TRIES 10 /* noise redrawn when a step's ELBO is not finite */

/* A learnable parameter: its block, name and spec, and where its
   unconstrained reals live in the optimiser's vector. */
typedef struct SviParam {
  bool guide;
  const char *name;
  ParamSpec spec;
  size_t off, n;
  int32_t node0; /* its first tape variable in the current step (0: none yet) */
  Value val;     /* its value in the current step (training), shared by the runs */
} SviParam;

/* One subsampled plate of the current step. */
typedef struct SviPlate {
  const char *name;
  int64_t lo, hi, batch, n;
  int64_t *idx;
} SviPlate;

struct Svi {
  const Interp *in;
  const EngineOpts *o;
  int chain;
  Rng rng;         /* the optimisation's noise and subsets */
  Rng draw_rng;    /* the draws' and the final ELBO's, apart so that a loaded fit
                      (--load-params) draws what the trained one did */
  Rng *r;          /* the one in use */
  const char *loaded; /* the --load-params (or amortized's --load) file, or NULL */
  bool amortized;     /* a chain of the engine amortized: the summary's words */
  /* params */
  int np, capp;
  SviParam *p;
  size_t nx;
  double *x, *grad;
  Optim *opt;
  Tape *tape;
  double *adj;     /* the sweep's adjoints, kept across steps (the tape's size repeats) */
  size_t adjcap;
  long step;       /* steps taken: the plates' subsets are drawn once per step */
  int nplates, capplates;
  SviPlate *plates;
  /* options */
  long max_iter;
  int grad_samples, elbo_samples, eval_elbo;
  double tol;
  /* the fit */
  double elbo;
  long iterations;
  bool converged;
  int ntrace, captrace;
  double (*trace)[4];
  double seconds;  /* the fit's wall time */
  /* the draws' log weights */
  int nlw, caplw;
  double *lw;
  bool whole;      /* run plates whole even when training (svi_gradient) */
  SviTick tick;    /* svi_fit's listener, or NULL */
  void *tick_ctx;
  bool interrupted; /* the host's interrupt stopped the training */
  int64_t data_n, data_batch; /* the data plate of the last training step (svi_fit_info) */
  /* --psis-resample: a pool of draws, written in `order` */
  int npool, next;
  Draw *pool;
  int *order;
  double baseline; /* the score-function estimator's: a decaying average of the ELBO */
  bool has_baseline;
  /* --relax: bernoulli and categorical choices trained through the Concrete */
  bool relax;
  double tau0, tau_min, tau_decay, tau;
  /* plates whose bodies run once over the minibatch while training
     (ir/plate_vec.h); NULL with --plate-rows */
  const PvSet *pv;
  /* the gradient in fixed blocks (svi_grad_blocks): under MPI or --grad-blocks */
  const MpiComm *comm;
  int row_blocks;     /* --grad-blocks: blocks of each sample's minibatch (0: no blocks) */
  bool in_block;      /* a block's runs are under way */
  const SviPlate *split; /* the plate whose minibatch the blocks cut (NULL: none) */
  int64_t blk_lo, blk_n; /* the current block's share of split->idx */
  double w_glob, w_loc;  /* its weights of terms outside / inside the split plate */
  uint64_t blk_seed;     /* its runs' seed */
  int blk_b;             /* its place among the sample's blocks */
  Rng blk_rng;           /* its noise: the sample's stream, then at the split plate its own */
  bool blk_plate_met;
  bool blk_ready;        /* the params' nodes of this step are on the tape, up to blk_mark */
  TapeMark blk_mark;
  Diag *blk_diag;        /* this rank's blocks' errors */
  int blk_ndiag;
  double *blk_buf;       /* every block's [status, elbo, gradient] */
  size_t blk_cap;
};

typedef enum { SR_CHECK, SR_TRAIN, SR_DRAW } SviMode;

/* The handler of one run of either block. */
typedef struct SviRun {
  Handler h;
  Svi *s;
  SviMode mode;
  bool guide;
  InterpState *st;
  Tape *t;            /* SR_TRAIN */
  AdNum acc;          /* log q (guide) or log p (model) */
  AdNum disc;         /* guide: the part of log q from discrete choices */
  /* the guide's choices (filled by the guide run, read by the model run) */
  int n, cap;
  TraceChoice *c;
  SrcPos *pos;        /* where each was drawn */
  bool has_lq;        /* lq is log q of the draw just made (a flow's, from its forward map) */
  AdNum lq;
  AdNum *ry;          /* relaxed choices (--relax): the logit y of the value sigmoid(y) */
  bool *rel;          /* ... which are */
  AdNum **rly;        /* relaxed categorical choices: log y (rk[i] of them); NULL for bernoulli */
  int *rk;
  const AdNum *gry;   /* model run: the guide's ry, rel, rly, rk */
  const bool *grel;
  AdNum *const *grly;
  const int *grk;
  const Trace *q;     /* the guide's choices, indexed (model run) */
  bool *used;         /* SR_CHECK: which of them the model drew */
} SviRun;

static HandlerResult svi_fail(Diag *d, SrcPos pos, const char *msg) {
  diag_error(d, DIAG_RUNTIME, pos, "%s", msg);
  return HR_ERROR;
}

static const char *svi_pos(SrcPos p) {
  return gc_printf("%s%s%d:%d", p.file ? p.file : "", p.file ? ":" : "", p.line, p.col);
}

/* "(0, inf)", "the real line", "[0, 1]"-style text of a DistCall's support. */
static const char *svi_support(const DistCall *dc) {
  if (dc->fam->discrete) {
    bool lo = isfinite(dc->lower), hi = isfinite(dc->upper);
    return lo && hi ? gc_printf("{%g, ..., %g}", dc->lower, dc->upper)
           : lo     ? gc_printf("the integers >= %g", dc->lower)
           : hi     ? gc_printf("the integers <= %g", dc->upper)
                    : "the integers";
  }
  switch (dc->con) {
  case CON_NONE: return dc->fam->discrete ? "the integers" : "the real line";
  case CON_LOWER: return gc_printf("(%g, inf)", dc->lower);
  case CON_UPPER: return gc_printf("(-inf, %g)", dc->upper);
  case CON_LOWER_UPPER: return gc_printf("(%g, %g)", dc->lower, dc->upper);
  case CON_SIMPLEX: return "the simplex";
  case CON_ORDERED: return "ordered vectors";
  case CON_POS_ORDERED: return "positive ordered vectors";
  case CON_UNIT_VECTOR: return "unit vectors";
  case CON_CHOL_CORR: return "Cholesky factors of correlation matrices";
  case CON_CORR: return "correlation matrices";
  case CON_CHOL_COV: return "Cholesky factors of covariance matrices";
  default: return "covariance matrices";
  }
}

static bool svi_same_support(const DistCall *a, const TraceChoice *b) {
  if (a->con != b->con) return false;
  bool lo = a->con == CON_LOWER || a->con == CON_LOWER_UPPER;
  bool hi = a->con == CON_UPPER || a->con == CON_LOWER_UPPER;
  return (!lo || a->lower == b->lower) && (!hi || a->upper == b->upper);
}

/* ---- params ---- */

static SviParam *svi_param_find(Svi *s, bool guide, const char *name) {
  for (int i = 0; i < s->np; i++)
    if (s->p[i].guide == guide && strcmp(s->p[i].name, name) == 0) return &s->p[i];
  return NULL;
}

/* First met (the check run): its reals start at its initial value. */
static SviParam *svi_param_add(Svi *s, bool guide, const char *name, const ParamSpec *spec,
                               SrcPos pos, Diag *d) {
  Value iv = interp_param_init(spec);
  size_t n = val_numel(iv);
  double *init = gc_alloc_atomic(sizeof(double) * (n ? n : 1));
  val_flatten(iv, init);
  if (s->np == s->capp) {
    int cap = s->capp ? 2 * s->capp : 8;
    SviParam *np = gc_alloc(sizeof(SviParam) * (size_t)cap);
    if (s->np) memcpy(np, s->p, sizeof(SviParam) * (size_t)s->np);
    s->p = np, s->capp = cap;
  }
  double *x = gc_alloc_atomic(sizeof(double) * (s->nx + n + 1));
  if (s->nx) memcpy(x, s->x, sizeof(double) * s->nx);
  for (size_t e = 0; e < n; e++) {
    double u = init[e];
    if (spec->con != CON_NONE &&
        (!tf_unconstrain(spec->con, spec->lower, spec->upper, 1, &init[e], &u) || !isfinite(u))) {
      diag_error(d, DIAG_RUNTIME, pos, "param '%s': its initial value %g is not strictly inside "
                 "its bounds", name, init[e]);
      return NULL;
    }
    x[s->nx + e] = u;
  }
  SviParam *p = &s->p[s->np++];
  *p = (SviParam){.guide = guide, .name = name, .spec = *spec, .off = s->nx, .n = n};
  s->x = x;
  s->nx += n;
  return p;
}

/* The param's value: constrained from x, with the nodes of this step's tape
   variables when training. */
static Value svi_param_value(Svi *s, SviParam *p, Tape *t) {
  Value v = trace_value_new(p->spec.type, p->spec.nsizes, p->spec.sizes);
  if (t && p->node0 == 0) /* its reals: independent variables, one block of ids */
    p->node0 = p->n ? tape_block(t, p->n, NULL, NULL) : tape_var(t, 0);
  int32_t *nodes = t ? gc_alloc_atomic(sizeof(int32_t) * (p->n ? p->n : 1)) : NULL;
  if (p->spec.con == CON_NONE && v.k == V_VEC) { /* networks and flows: their reals as they are */
    memcpy(v.t->d, s->x + p->off, sizeof(double) * p->n);
    if (nodes) {
      for (size_t e = 0; e < p->n; e++) nodes[e] = p->node0 + (int32_t)e;
      v.t->ad = nodes;
    }
    return v;
  }
  AdNum lo = ad_const(p->spec.lower), hi = ad_const(p->spec.upper);
  for (size_t e = 0; e < p->n; e++) {
    AdNum u = {s->x[p->off + e], t ? p->node0 + (int32_t)e : 0}, x = u;
    if (p->spec.con != CON_NONE) {
      if (t) tf_constrain_ad(t, p->spec.con, lo, hi, 1, &u, &x);
      else tf_constrain(p->spec.con, p->spec.lower, p->spec.upper, 1, &u.v, &x.v);
    }
    trace_value_set(&v, e, x.v);
    if (nodes) nodes[e] = x.n;
  }
  if (nodes) {
    size_t k = 0;
    val_set_nodes(&v, nodes, &k);
  }
  return v;
}

static HandlerResult svr_param(Handler *h, const char *addr, const ParamSpec *spec, Value *out,
                               SrcPos pos, Diag *d) {
  SviRun *r = (SviRun *)h;
  SviParam *p = svi_param_find(r->s, r->guide, addr);
  if (!p && r->mode == SR_CHECK) p = svi_param_add(r->s, r->guide, addr, spec, pos, d);
  if (!p) return r->mode == SR_CHECK ? HR_ERROR
                                     : svi_fail(d, pos, gc_printf("svi: param '%s' was not in the "
                                                                  "first run", addr));
  *out = r->t && p->val.k != V_NONE ? p->val : svi_param_value(r->s, p, r->t);
  return HR_CONTINUE;
}

/* ---- plates ---- */

/* batch distinct indices of lo..lo+size-1 (Floyd's sampling) from the
   optimisation's stream, in increasing order; *k of them. */
static int64_t *svi_plate_pick(Svi *s, int64_t lo, int64_t size, int64_t batch, int64_t *kout) {
  int64_t *pick = gc_alloc_atomic(sizeof(int64_t) * (size_t)batch);
  int64_t k = 0;
  for (int64_t j = size - batch; j < size; j++) {
    int64_t t = rng_int(s->r, 0, j);
    bool seen = false;
    for (int64_t q = 0; q < k && !seen; q++) seen = pick[q] == t;
    pick[k++] = seen ? j : t;
  }
  for (int64_t a = 1; a < k; a++) { /* insertion sort: batches are small */
    int64_t v = pick[a], b = a - 1;
    for (; b >= 0 && pick[b] > v; b--) pick[b + 1] = pick[b];
    pick[b + 1] = v;
  }
  for (int64_t a = 0; a < k; a++) pick[a] += lo;
  *kout = k;
  return pick;
}

static HandlerResult svr_plate(Handler *h, const char *name, int64_t lo, int64_t hi,
                               int64_t batch, const int64_t **idx, int64_t *n, SrcPos pos,
                               Diag *d) {
  SviRun *r = (SviRun *)h;
  Svi *s = r->s;
  if (batch < 1)
    return svi_fail(d, pos, gc_printf("plate '%s': the batch size must be at least 1, got %lld",
                                      name, (long long)batch));
  int64_t size = hi - lo + 1;
  if (r->mode == SR_DRAW || s->whole || batch >= size) return HR_CONTINUE; /* the whole loop */
  for (int i = 0; i < s->nplates; i++) {
    SviPlate *pl = &s->plates[i];
    if (strcmp(pl->name, name) != 0) continue;
    if (pl->lo != lo || pl->hi != hi || pl->batch != batch)
      return svi_fail(d, pos, gc_printf("plate '%s' runs over %lld:%lld with batch %lld here but "
                                        "over %lld:%lld with batch %lld before: plates of one name "
                                        "must agree (the guide's and the model's are matched by "
                                        "name)", name, (long long)lo, (long long)hi,
                                        (long long)batch, (long long)pl->lo, (long long)pl->hi,
                                        (long long)pl->batch));
    *idx = pl->idx, *n = pl->n;
    if (s->in_block && pl == s->split) {
      *idx = pl->idx + s->blk_lo, *n = s->blk_n;
      if (!s->blk_plate_met) /* the block's own rows draw from the block's own stream */
        rng_seed(&s->blk_rng, s->blk_seed, 1 + (uint64_t)s->blk_b);
      s->blk_plate_met = true;
    }
    return HR_CONTINUE;
  }
  if (s->in_block) /* its subset would come from a stream the blocks do not share */
    return svi_fail(d, pos, gc_printf("plate '%s' with a batch size was not met in the first "
                                      "run: with the gradient in blocks (MPI, --grad-blocks) "
                                      "every subsampled plate must be met in every run", name));
  if (s->nplates == s->capplates) {
    int cap = s->capplates ? 2 * s->capplates : 4;
    SviPlate *np = gc_alloc(sizeof(SviPlate) * (size_t)cap);
    if (s->nplates) memcpy(np, s->plates, sizeof(SviPlate) * (size_t)s->nplates);
    s->plates = np, s->capplates = cap;
  }
  int64_t k;
  int64_t *pick = svi_plate_pick(s, lo, size, batch, &k);
  s->plates[s->nplates++] = (SviPlate){name, lo, hi, batch, k, pick};
  *idx = pick, *n = k;
  return HR_CONTINUE;
}

/* ---- the guide's choices ---- */

/* acc += lp (weighed by the plates around); returns the weighed term. */
static AdNum svr_acc(SviRun *r, double lp, int32_t node) {
  double w = interp_plate_scale(r->st);
  /* a block of the minibatch: the split plate's terms weigh N/B, not N/block,
     and each block carries 1/blocks of the terms outside it */
  if (r->s->in_block && r->s->split) w = w != 1 ? w * r->s->w_loc : r->s->w_glob;
  AdNum term = {lp, node};
  if (w != 1) term = r->t ? ad_scale(r->t, term, w) : ad_const(w * lp);
  r->acc = r->t ? ad_add(r->t, r->acc, term) : ad_const(r->acc.v + term.v);
  return term;
}

/* RP_IMPLICIT: any other scalar continuous family with a CDF, its draw the
   family's own and its partials implicit (dist_implicit_dx). */
enum {
  RP_NORMAL, RP_STD_NORMAL, RP_LOGNORMAL, RP_CAUCHY, RP_STUDENT, RP_EXPONENTIAL, RP_IMPLICIT, RP_FLOW
};

/* The reparameterisation of dc's family (RP_*), or -1 with a message. */
static int svi_reparam_kind(const DistCall *dc, const char *addr, char *err, size_t errsz) {
  int kind;
  const char *f = dc->fam->name;
  if (!strcmp(f, "normal")) kind = RP_NORMAL;
  else if (!strcmp(f, "std_normal")) kind = RP_STD_NORMAL;
  else if (!strcmp(f, "lognormal")) kind = RP_LOGNORMAL;
  else if (!strcmp(f, "cauchy")) kind = RP_CAUCHY;
  else if (!strcmp(f, "student_t")) kind = RP_STUDENT;
  else if (!strcmp(f, "exponential")) kind = RP_EXPONENTIAL;
  else if (dc->fam == &dist_flow) kind = RP_FLOW;
  else if (!dc->fam->discrete && dc->fam->lcdf1 && dc->fam->lccdf1 && !dc->fam->ctx)
    kind = RP_IMPLICIT;
  else {
    snprintf(err, errsz, "svi: the guide's %s for '%s' cannot be reparameterised; draw it with "
             "a univariate continuous family with a CDF: normal, student_t, cauchy, logistic "
             "(real line), lognormal, gamma, exponential, weibull, inv_gamma (positive), beta, "
             "uniform (an interval); flow(q) for a vector", f, addr);
    return -1;
  }
  if (dc->truncated) {
    snprintf(err, errsz, "svi: the guide's %s for '%s' is truncated by its declared bounds, which "
             "cannot be reparameterised; declare it without bounds (use lognormal, gamma or "
             "exponential for a positive latent, beta for one in (0, 1))", f, addr);
    return -1;
  }
  return kind;
}

/* flow(q): every draw of v (a vector, or an array of them) is T_q(eps) for
   eps ~ N(0, I), recorded on r->t with the nodes of q's weights.  log q of
   the draw, log N(eps) - log|det dT/deps|, comes with it in r->lq: the
   family's density would run the inverse to find the eps we have. */
static bool svi_reparam_flow(SviRun *r, const DistCall *dc, Value *v, const char *addr,
                             char *err, size_t errsz) {
  Rnvp *f = gc_alloc_atomic(sizeof *f);
  int64_t sz[3] = {dc->p[1].i, dc->p[2].i, dc->p[3].i};
  if (!net_flow_layout(sz, f, err, errsz)) return false;
  Value w = dc->p[0];
  size_t n = val_numel(*v);
  if (w.k != V_VEC || (size_t)w.t->rows != f->nparams || n % (size_t)f->dim != 0) {
    snprintf(err, errsz, "svi: '%s' has %zu elements, but its guide's flow draws vectors of %d",
             addr, n, f->dim);
    return false;
  }
  Tape *t = r->t;
  int np = (int)f->nparams;
  Tensor W = w.t->ad ? tensor_gather(t, 1, &np, w.t->d, w.t->ad) : tensor_const(1, &np, w.t->d);
  AdNum *eps = gc_alloc_atomic(sizeof(AdNum) * (size_t)f->dim);
  AdNum *x = gc_alloc_atomic(sizeof(AdNum) * (size_t)f->dim);
  int32_t *nodes = gc_alloc_atomic(sizeof(int32_t) * (n ? n : 1));
  double sq = 0;
  AdNum logdet = ad_const(0);
  for (size_t e0 = 0; e0 < n; e0 += (size_t)f->dim) {
    for (int i = 0; i < f->dim; i++) {
      eps[i] = ad_const(rng_normal(r->s->r));
      sq += eps[i].v * eps[i].v;
    }
    logdet = ad_add(t, logdet, rnvp_forward(t, f, W, eps, x));
    for (int i = 0; i < f->dim; i++) {
      trace_value_set(v, e0 + (size_t)i, x[i].v);
      nodes[e0 + (size_t)i] = x[i].n;
    }
  }
  size_t k = 0;
  val_set_nodes(v, nodes, &k);
  r->lq = ad_sub(t, ad_const(-0.5 * sq - (double)n * PPL_LOG_SQRT_2PI), logdet);
  r->has_lq = true;
  return true;
}

/* A reparameterised draw of every scalar of v under dc (on tape r->t): the
   value as a differentiable function of dc's parameters and noise eps. */
static bool svi_reparam(SviRun *r, const DistCall *dc, Value *v, const char *addr, char *err,
                        size_t errsz) {
  int kind = svi_reparam_kind(dc, addr, err, errsz);
  if (kind < 0) return false;
  if (kind == RP_FLOW) return svi_reparam_flow(r, dc, v, addr, err, errsz);
  size_t n = val_numel(*v);
  double *pv[DIST_MAX_PARAMS];
  int32_t *pn[DIST_MAX_PARAMS];
  size_t pc[DIST_MAX_PARAMS];
  for (int i = 0; i < dc->np && i < DIST_MAX_PARAMS; i++) {
    pc[i] = val_numel(dc->p[i]);
    pv[i] = gc_alloc_atomic(sizeof(double) * (pc[i] ? pc[i] : 1));
    pn[i] = gc_alloc_atomic(sizeof(int32_t) * (pc[i] ? pc[i] : 1));
    val_flatten(dc->p[i], pv[i]);
    val_flatten_nodes(dc->p[i], pn[i]);
  }
  if (kind == RP_STUDENT) /* nu through params: no location-scale form */
    for (size_t e = 0; e < pc[0]; e++)
      if (pn[0][e]) kind = RP_IMPLICIT;
  if (kind == RP_IMPLICIT && !dist_call_rng(dc, r->s->r, v, err, errsz)) return false;
  Tape *t = r->t;
  int32_t *nodes = gc_alloc_atomic(sizeof(int32_t) * (n ? n : 1));
#define P(i) ((AdNum){pv[i][pc[i] == 1 ? 0 : e], pn[i][pc[i] == 1 ? 0 : e]})
  for (size_t e = 0; e < n; e++) {
    AdNum x;
    switch (kind) {
    case RP_IMPLICIT: {
      double p[DIST_MAX_PARAMS], dxdp[DIST_MAX_PARAMS];
      int32_t par[DIST_MAX_PARAMS];
      for (int i = 0; i < dc->np; i++) p[i] = P(i).v, par[i] = P(i).n;
      x = ad_const(trace_value_get(*v, e));
      /* A draw where the density vanishes (a beta draw rounded to 0 or 1)
         moves with nothing: its partials are left out, not made up. */
      if (dist_implicit_dx(dc->fam, x.v, p, dxdp)) x.n = tape_push(t, dc->np, par, dxdp);
      break;
    }
    case RP_STD_NORMAL: x = ad_const(rng_normal(r->s->r)); break;
    case RP_EXPONENTIAL: x = ad_div(t, ad_const(rng_exponential(r->s->r)), P(0)); break;
    default: {
      int loc = kind == RP_STUDENT ? 1 : 0;
      double eps;
      if (kind == RP_CAUCHY) eps = tan(M_PI * (rng_uniform(r->s->r) - 0.5));
      else if (kind == RP_STUDENT) {
        double nu = P(0).v;
        eps = rng_normal(r->s->r) / sqrt(2 * rng_gamma(r->s->r, nu / 2) / nu);
      } else eps = rng_normal(r->s->r);
      x = ad_add(t, P(loc), ad_scale(t, P(loc + 1), eps));
      if (kind == RP_LOGNORMAL) x = ad_exp(t, x);
    }
    }
    trace_value_set(v, e, x.v);
    nodes[e] = x.n;
  }
#undef P
  size_t k = 0;
  val_set_nodes(v, nodes, &k);
  return true;
}

/* ---- the binary Concrete relaxation (--relax) ---- */

/* A scalar bernoulli or bernoulli_logit choice: its log-odds, with nodes. */
static bool svi_relax_logit(Tape *t, const DistCall *dc, AdNum *la) {
  bool logit = !strcmp(dc->fam->name, "bernoulli_logit");
  if ((!logit && strcmp(dc->fam->name, "bernoulli")) || dc->type.ndims || dc->nsizes ||
      dc->np != 1 || (dc->p[0].k != V_REAL && dc->p[0].k != V_INT))
    return false;
  AdNum p = {val_as_real(dc->p[0]), dc->p[0].k == V_REAL ? dc->p[0].ad : 0};
  *la = logit ? p : ad_sub(t, ad_log(t, p), ad_log1p(t, ad_scale(t, p, -1)));
  return true;
}

/* The log density of the logit y = (la + logistic noise) / tau of a binary
   Concrete (Maddison et al. 2017): logistic with location la / tau and scale
   1 / tau.  The guide's and the model's densities are both taken on y, so
   the map to the value sigmoid(y) cancels from log p - log q. */
static AdNum svi_relax_lp(Tape *t, AdNum y, AdNum la, double tau) {
  AdNum w = ad_sub(t, la, ad_scale(t, y, tau));
  AdNum sp = ad_log_inv_logit(t, ad_scale(t, w, -1)); /* -log(1 + e^w) */
  return ad_add(t, ad_const(log(tau)), ad_add(t, w, ad_scale(t, sp, 2)));
}

/* ---- the Concrete (Gumbel-softmax) relaxation of categorical choices ---- */

/* A scalar categorical or categorical_logit choice: its K log-probabilities
   (or logits: the Concrete is unchanged by a shift of them) with nodes, in a
   new array *la; K, or 0 for another choice. */
static int svi_relax_cat_logits(Tape *t, const DistCall *dc, AdNum **la) {
  bool logit = !strcmp(dc->fam->name, "categorical_logit");
  if ((!logit && strcmp(dc->fam->name, "categorical")) || dc->type.ndims || dc->nsizes ||
      dc->np != 1 || dc->p[0].k != V_VEC)
    return 0;
  const ValTen *p = dc->p[0].t;
  int k = p->rows * p->cols;
  if (k < 2) return 0;
  *la = gc_alloc_atomic(sizeof(AdNum) * (size_t)k);
  for (int j = 0; j < k; j++) {
    AdNum pj = {p->d[j], p->ad ? p->ad[j] : 0};
    (*la)[j] = logit ? pj : ad_log(t, pj);
  }
  return k;
}

/* log sum exp of n numbers, as recorded operations */
static AdNum svi_lse(Tape *t, int n, const AdNum *a) {
  double m = -INFINITY;
  for (int j = 0; j < n; j++) m = fmax(m, a[j].v);
  AdNum *e = gc_alloc_atomic(sizeof(AdNum) * (size_t)n);
  for (int j = 0; j < n; j++) e[j] = ad_exp(t, ad_add(t, a[j], ad_const(-m)));
  return ad_add(t, ad_log(t, ad_sum(t, n, e)), ad_const(m));
}

/* The log density of a Concrete(exp(la), tau) at the point y of the simplex
   given by its logs ly (Maddison, Mnih & Teh 2017, eq. 1):
   log (K-1)! + (K-1) log tau + sum_k (la_k - (tau+1) ly_k)
   - K logsumexp_k (la_k - tau ly_k).  Guide and model both score y itself. */
static AdNum svi_concrete_lp(Tape *t, int k, const AdNum *ly, const AdNum *la, double tau) {
  AdNum *w = gc_alloc_atomic(sizeof(AdNum) * (size_t)k), *u = gc_alloc_atomic(sizeof(AdNum) * (size_t)k);
  for (int j = 0; j < k; j++) {
    w[j] = ad_sub(t, la[j], ad_scale(t, ly[j], tau));
    u[j] = ad_sub(t, la[j], ad_scale(t, ly[j], tau + 1));
  }
  AdNum s = ad_sub(t, ad_sum(t, k, u), ad_scale(t, svi_lse(t, k, w), k));
  return ad_add(t, s, ad_const(m_lgamma(k) + (k - 1) * log(tau)));
}

static HandlerResult svr_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                SrcPos pos, Diag *d) {
  SviRun *r = (SviRun *)h;
  char err[512] = "";
  double lp;
  int32_t node = 0;
  if (r->guide) {
    Value v = trace_value_new(dc->type, dc->nsizes, dc->sizes);
    bool discrete = dc->fam->discrete, relaxed = false;
    AdNum la, y = ad_const(0), *lc = NULL, *ly = NULL;
    int k = 0;
    if (r->mode == SR_TRAIN && discrete && r->s->relax && svi_relax_logit(r->t, dc, &la)) {
      double u = rng_uniform(r->s->r);
      y = ad_scale(r->t, ad_add(r->t, la, ad_const(log(u) - log1p(-u))), 1 / r->s->tau);
      AdNum z = ad_inv_logit(r->t, y);
      v = val_real(z.v);
      v.ad = z.n;
      AdNum l = svi_relax_lp(r->t, y, la, r->s->tau);
      lp = l.v, node = l.n;
      relaxed = true;
      goto record;
    }
    if (r->mode == SR_TRAIN && discrete && r->s->relax &&
        (k = svi_relax_cat_logits(r->t, dc, &lc)) > 0) {
      ly = gc_alloc_atomic(sizeof(AdNum) * (size_t)k);
      for (int j = 0; j < k; j++) { /* Gumbel noise */
        double g = -log(-log(rng_uniform(r->s->r)));
        ly[j] = ad_scale(r->t, ad_add(r->t, lc[j], ad_const(g)), 1 / r->s->tau);
      }
      AdNum lz = svi_lse(r->t, k, ly);
      v = val_vec(k);
      v.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)k);
      for (int j = 0; j < k; j++) {
        ly[j] = ad_sub(r->t, ly[j], lz);
        AdNum yj = ad_exp(r->t, ly[j]);
        v.t->d[j] = yj.v, v.t->ad[j] = yj.n;
      }
      AdNum l = svi_concrete_lp(r->t, k, ly, lc, r->s->tau);
      lp = l.v, node = l.n;
      relaxed = true;
      goto record;
    }
    if (r->mode == SR_CHECK && !discrete && svi_reparam_kind(dc, addr, err, sizeof err) < 0)
      return svi_fail(d, pos, err);
    r->has_lq = false;
    if (r->mode == SR_TRAIN && !discrete) {
      if (!svi_reparam(r, dc, &v, addr, err, sizeof err)) return svi_fail(d, pos, err);
    } else if (!dist_call_rng(dc, r->s->r, &v, err, sizeof err)) {
      return svi_fail(d, pos, err);
    }
    bool ok = r->has_lq ? (lp = r->lq.v, node = r->lq.n, true)
              : r->t    ? dist_call_lpdf_ad(dc, r->t, v, &lp, &node, err, sizeof err)
                        : dist_call_lpdf(dc, v, &lp, err, sizeof err);
    if (!ok) return svi_fail(d, pos, err);
  record:;
    AdNum term = svr_acc(r, lp, node);
    if (discrete && !relaxed && r->t) r->disc = ad_add(r->t, r->disc, term);
    if (r->n == r->cap) {
      int cap = r->cap ? 2 * r->cap : 16;
      TraceChoice *nc = gc_alloc(sizeof(TraceChoice) * (size_t)cap);
      SrcPos *np = gc_alloc(sizeof(SrcPos) * (size_t)cap);
      AdNum *ny = gc_alloc_atomic(sizeof(AdNum) * (size_t)cap);
      bool *nr = gc_alloc_atomic(sizeof(bool) * (size_t)cap);
      AdNum **nl = gc_alloc(sizeof(AdNum *) * (size_t)cap);
      int *nk = gc_alloc_atomic(sizeof(int) * (size_t)cap);
      if (r->n) memcpy(nc, r->c, sizeof(TraceChoice) * (size_t)r->n);
      if (r->n) memcpy(np, r->pos, sizeof(SrcPos) * (size_t)r->n);
      if (r->n) memcpy(ny, r->ry, sizeof(AdNum) * (size_t)r->n);
      if (r->n) memcpy(nr, r->rel, sizeof(bool) * (size_t)r->n);
      if (r->n) memcpy(nl, r->rly, sizeof(AdNum *) * (size_t)r->n);
      if (r->n) memcpy(nk, r->rk, sizeof(int) * (size_t)r->n);
      r->c = nc, r->pos = np, r->ry = ny, r->rel = nr, r->rly = nl, r->rk = nk, r->cap = cap;
    }
    r->ry[r->n] = y;
    r->rly[r->n] = ly;
    r->rk[r->n] = k;
    r->rel[r->n] = relaxed;
    r->pos[r->n] = pos;
    TraceChoice *c = &r->c[r->n++];
    memset(c, 0, sizeof *c);
    c->addr = addr, c->val = v, c->fam = dc->fam, c->lp = lp, c->con = dc->con;
    c->lower = dc->lower, c->upper = dc->upper, c->type = dc->type, c->nsizes = dc->nsizes;
    memcpy(c->sizes, dc->sizes, sizeof c->sizes);
    c->numel = (int)val_numel(v);
    c->unit_len = 1;
    c->continuous = !dc->fam->discrete;
    c->fresh = true;
    *out = v;
    return HR_CONTINUE;
  }
  const TraceChoice *g = trace_find(r->q, addr);
  if (!g)
    return svi_fail(d, (SrcPos){0}, gc_printf("the guide does not draw model latent '%s' (%s)",
                                              addr, svi_pos(pos)));
  if (r->mode == SR_CHECK) {
    r->used[g - r->q->c] = true;
    if (dc->fam->discrete != g->fam->discrete)
      return svi_fail(d, pos, gc_printf("'%s' is %s in the model (%s) but the guide draws it from "
                                        "the %s %s: draw it from a %s family", addr,
                                        dc->fam->discrete ? "discrete" : "continuous",
                                        dc->fam->name, g->fam->discrete ? "discrete" : "continuous",
                                        g->fam->name, dc->fam->discrete ? "discrete" : "continuous"));
    if (!svi_same_support(dc, g)) {
      DistCall gd = *dc;
      gd.con = g->con, gd.lower = g->lower, gd.upper = g->upper, gd.fam = g->fam;
      const char *hint = dc->con == CON_LOWER && dc->lower == 0
                             ? "use lognormal, gamma or exponential, or a family with those bounds"
                         : dc->con == CON_LOWER_UPPER && dc->lower == 0 && dc->upper == 1
                             ? "use beta, or a family with those bounds"
                             : "use a family with that support";
      return svi_fail(d, pos, gc_printf("'%s' has support %s in the model but the guide's %s "
                                        "draws it on %s: %s", addr, svi_support(dc),
                                        g->fam->name, svi_support(&gd), hint));
    }
    if (!trace_value_has_shape(g->val, dc->type, dc->nsizes, dc->sizes))
      return svi_fail(d, pos, gc_printf("the guide draws '%s' as %s, but the model's is %s",
                                        addr, val_kind_name(g->val.k), ty_name(dc->type)));
  }
  if (r->grel && r->grel[g - r->q->c] && r->grly[g - r->q->c]) { /* a relaxed category */
    int k = r->grk[g - r->q->c];
    AdNum *lc = NULL;
    if (svi_relax_cat_logits(r->t, dc, &lc) != k)
      return svi_fail(d, pos, gc_printf("svi --relax: the guide relaxes '%s' as a category of %d, "
                                        "but the model draws it from %s%s", addr, k, dc->fam->name,
                                        lc ? " with another number of categories" :
                                        ", not a scalar categorical or categorical_logit"));
    AdNum l = svi_concrete_lp(r->t, k, r->grly[g - r->q->c], lc, r->s->tau);
    svr_acc(r, l.v, l.n);
    *out = g->val;
    return HR_CONTINUE;
  }
  if (r->grel && r->grel[g - r->q->c]) { /* a relaxed choice */
    AdNum la;
    if (!svi_relax_logit(r->t, dc, &la))
      return svi_fail(d, pos, gc_printf("svi --relax: the guide relaxes '%s', but the model draws "
                                        "it from %s, not a scalar bernoulli or bernoulli_logit",
                                        addr, dc->fam->name));
    AdNum l = svi_relax_lp(r->t, r->gry[g - r->q->c], la, r->s->tau);
    svr_acc(r, l.v, l.n);
    *out = g->val;
    return HR_CONTINUE;
  }
  bool ok = r->t ? dist_call_lpdf_ad(dc, r->t, g->val, &lp, &node, err, sizeof err)
                 : dist_call_lpdf(dc, g->val, &lp, err, sizeof err);
  if (!ok) return svi_fail(d, pos, err);
  svr_acc(r, lp, node);
  *out = g->val;
  return HR_CONTINUE;
}

static HandlerResult svr_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  SviRun *r = (SviRun *)h;
  char err[512] = "";
  double lp;
  int32_t node = 0;
  bool ok = r->t ? dist_call_lpdf_ad(dc, r->t, x, &lp, &node, err, sizeof err)
                 : dist_call_lpdf(dc, x, &lp, err, sizeof err);
  if (!ok) return svi_fail(d, pos, err);
  svr_acc(r, lp, node);
  return HR_CONTINUE;
}

static HandlerResult svr_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  (void)pos, (void)d;
  SviRun *r = (SviRun *)h;
  svr_acc(r, lw, r->t ? interp_factor_node(r->st) : 0);
  return HR_CONTINUE;
}

static void svr_init(SviRun *r, Svi *s, SviMode mode, bool guide, Tape *t) {
  memset(r, 0, sizeof *r);
  r->h.sample = svr_sample;
  r->h.observe = svr_observe;
  r->h.factor = svr_factor;
  r->h.param = svr_param;
  r->h.plate = svr_plate;
  r->s = s, r->mode = mode, r->guide = guide, r->t = t;
}

/* One run of the guide, then of the model replaying it: log p and log q with
   their nodes (training), the model's finished state in *model_st.  False
   with d set on a program error. */
static bool svi_pair(Svi *s, SviMode mode, Tape *t, AdNum *logp, AdNum *logq, AdNum *logq_disc,
                     InterpState **model_st, Diag *d) {
  SviRun g, m;
  svr_init(&g, s, mode, true, t);
  uint64_t seed = s->in_block ? s->blk_seed : rng_u64(s->r);
  g.st = interp_start_guide(s->in, seed, 0);
  if (t) interp_set_tape(g.st, t);
  /* the minibatch at once: training only (the check and the draws keep the
     row loop's addresses), not with relaxed choices or gradient blocks */
  const PvSet *pv = mode == SR_TRAIN && !s->relax && !s->in_block ? s->pv : NULL;
  interp_set_plate_vec(g.st, pv);
  if (mode == SR_TRAIN && s->relax) interp_set_relaxed(g.st, true);
  if (interp_run(g.st, &g.h, d) != RUN_DONE) return false;
  svr_init(&m, s, mode, false, t);
  m.q = trace_from_choices(g.n, g.c, 0);
  if (mode == SR_CHECK) m.used = gc_alloc_atomic(sizeof(bool) * (size_t)(g.n + 1));
  if (mode == SR_CHECK) memset(m.used, 0, sizeof(bool) * (size_t)(g.n + 1));
  m.st = interp_start(s->in, seed, 1, mode == SR_DRAW);
  if (mode == SR_TRAIN && s->relax) {
    interp_set_relaxed(m.st, true);
    m.gry = g.ry, m.grel = g.rel, m.grly = g.rly, m.grk = g.rk;
  }
  if (t) interp_set_tape(m.st, t);
  interp_set_plate_vec(m.st, pv);
  if (interp_run(m.st, &m.h, d) != RUN_DONE) return false;
  if (mode == SR_CHECK)
    for (int i = 0; i < g.n; i++)
      if (!m.used[i]) {
        diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "guide latent '%s' (%s) is not a latent of the "
                   "model", g.c[i].addr, svi_pos(g.pos[i]));
        return false;
      }
  *logp = m.acc, *logq = g.acc;
  if (logq_disc) *logq_disc = g.disc;
  if (model_st) *model_st = m.st;
  return true;
}

/* ---- training ---- */

static void svi_trace_add(Svi *s, long iter, double elbo, double rmean, double rmed) {
  if (s->ntrace == s->captrace) {
    int cap = s->captrace ? 2 * s->captrace : 32;
    double(*t)[4] = gc_alloc_atomic(sizeof(double[4]) * (size_t)cap);
    if (s->ntrace) memcpy(t, s->trace, sizeof(double[4]) * (size_t)s->ntrace);
    s->trace = t, s->captrace = cap;
  }
  double *r = s->trace[s->ntrace++];
  r[0] = (double)iter, r[1] = elbo, r[2] = rmean, r[3] = rmed;
}

/* ---- the gradient in fixed blocks (data-parallel training over MPI) ----
 *
 * Under MPI (or with --grad-blocks G in one process) a step's gradient is
 * cut into blocks that depend on the options alone, never on the number of
 * ranks: Monte Carlo sample k of the K of --grad-samples times block b of
 * the G of its minibatch.  The minibatch is the split plate's subset, the
 * largest subsampled plate when it is the only one (else G is 1).  Block
 * (k, b) runs the guide and the model with sample k's seed over rows
 * [b B / G, (b + 1) B / G) of the step's subset of B rows: the split plate's
 * terms weigh N / B, as in the whole minibatch, and the terms outside it
 * 1 / G, so the blocks of a sample add up to one estimate of the ELBO and
 * its gradient (the terms outside the plate are the same in every block
 * when they are drawn before it; drawn after it, each block's are a sample
 * of their own, still unbiased).  Each rank computes a contiguous range of
 * the blocks on its own tape; one allgather gives every rank every block's
 * [status, ELBO, discrete flag, gradient], and every rank adds them in block
 * order.  So the step, hence the trained params, have the same bits for
 * every number of ranks.  The subsets and the samples' seeds come from the
 * shared stream before the blocks run; a block's noise comes from its
 * sample's stream until the split plate (so every block draws the same
 * global latents), and from a stream of the block's own from there on. */

enum { SB_OK, SB_NONFINITE, SB_ERROR, SB_FATAL }; /* a block's status, worst last */
#define SB_HEAD 3                                 /* status, ELBO, discrete flag */

/* Rank q's blocks of nb: [*first, *first + *count), contiguous. */
static void svi_block_range(int nb, int R, int q, int *first, int *count) {
  int64_t f, c;
  mpi_share(nb, R, q, &f, &c);
  *first = (int)f, *count = (int)c;
}

/* Block b of G of a sample with the given seed: out = [status, ELBO share,
   discrete, gradient of the surrogate (nx)]. */
static void svi_block(Svi *s, int b, int G, uint64_t seed, double *out, Diag *d) {
  /* the params' nodes once a step: the blocks after the first rewind to them */
  if (!s->blk_ready || !tape_rewind(s->tape, &s->blk_mark)) {
    tape_reset(s->tape);
    for (int i = 0; i < s->np; i++) s->p[i].node0 = 0, s->p[i].val = val_none();
    for (int i = 0; i < s->np; i++) s->p[i].val = svi_param_value(s, &s->p[i], s->tape);
    s->blk_mark = tape_mark(s->tape);
    s->blk_ready = true;
  }
  if (s->split) {
    int64_t B = s->split->n;
    s->blk_lo = B * b / G;
    s->blk_n = B * (b + 1) / G - s->blk_lo;
    s->w_loc = (double)s->blk_n / (double)B;
    s->w_glob = 1.0 / G;
  }
  Rng *shared = s->r;
  rng_seed(&s->blk_rng, seed, 0); /* the noise before the split plate: every block's */
  s->r = &s->blk_rng, s->blk_seed = seed, s->blk_b = b, s->blk_plate_met = false;
  s->in_block = true;
  AdNum lp, lq, ld;
  bool ran = svi_pair(s, SR_TRAIN, s->tape, &lp, &lq, &ld, NULL, d);
  s->r = shared, s->in_block = false;
  memset(out, 0, sizeof(double) * (SB_HEAD + s->nx));
  if (!ran) {
    out[0] = d->code == DIAG_INTERNAL ? SB_FATAL : SB_ERROR;
    return;
  }
  double e = lp.v - lq.v;
  AdNum total = ad_sub(s->tape, lp, lq);
  if (ld.n) { /* the score-function term: this block's share of the baseline */
    double base = s->has_baseline ? s->baseline / G : e;
    total = ad_add(s->tape, total, ad_scale(s->tape, ld, e - base));
    out[2] = 1;
  }
  out[1] = e;
  if (!isfinite(total.v) || !isfinite(e)) {
    out[0] = SB_NONFINITE;
    return;
  }
  size_t nt = tape_size(s->tape) + 1;
  if (nt > s->adjcap) {
    s->adj = gc_alloc_atomic(sizeof(double) * nt);
    s->adjcap = nt;
  }
  if (!total.n) return;
  tape_backward(s->tape, total.n, s->adj);
  for (int i = 0; i < s->np; i++)
    for (size_t e2 = 0; e2 < s->p[i].n; e2++)
      out[SB_HEAD + s->p[i].off + e2] = s->adj[s->p[i].node0 + (int32_t)e2];
}

/* The message of failed block j, from the rank that ran it (mine: its Diag
   there) to every rank. */
static void svi_block_diag(Svi *s, int j, int nb, const Diag *mine, Diag *d) {
  mpi_bcast_diag(s->comm, mpi_share_owner(nb, mpi_size(s->comm), j), mine, d);
}

/* svi_grad in blocks: the same contract. */
static bool svi_grad_blocks(Svi *s, double *elbo, double *grad, Diag *d) {
  int R = mpi_size(s->comm), q = mpi_rank(s->comm), K = s->grad_samples;
  size_t w = SB_HEAD + s->nx;
  for (int tries = 0;; tries++) {
    s->step++;
    /* the first sample's seed, the step's subsets (the plates of the first
       run), the other samples' seeds: svi_grad's order */
    uint64_t *seed = gc_alloc_atomic(sizeof(uint64_t) * (size_t)K);
    seed[0] = rng_u64(s->r);
    int nsub = 0;
    s->split = NULL;
    for (int i = 0; i < s->nplates && !s->whole; i++) {
      SviPlate *pl = &s->plates[i];
      pl->idx = svi_plate_pick(s, pl->lo, pl->hi - pl->lo + 1, pl->batch, &pl->n);
      if (!s->split || pl->hi - pl->lo > s->split->hi - s->split->lo) s->split = pl;
      nsub++;
    }
    if (nsub != 1) s->split = NULL;
    int G = s->split ? (int)(s->split->n < s->row_blocks ? s->split->n : s->row_blocks) : 1;
    int nb = K * G, first, count;
    for (int k = 1; k < K; k++) seed[k] = rng_u64(s->r);
    if ((size_t)nb * w > s->blk_cap) {
      s->blk_cap = (size_t)nb * w;
      s->blk_buf = gc_alloc_atomic(sizeof(double) * s->blk_cap);
    }
    svi_block_range(nb, R, q, &first, &count);
    if (count > s->blk_ndiag) {
      s->blk_ndiag = count;
      s->blk_diag = gc_alloc_atomic(sizeof(Diag) * (size_t)count);
    }
    Diag *bd = s->blk_diag;
    s->blk_ready = false; /* new params (or new noise after a failure) */
    for (int j = first; j < first + count; j++) {
      diag_init(&bd[j - first]);
      svi_block(s, j % G, G, seed[j / G], s->blk_buf + (size_t)j * w, &bd[j - first]);
    }
    int *cnt = gc_alloc_atomic(sizeof(int) * 2 * (size_t)R), *dis = cnt + R;
    for (int r = 0; r < R; r++) {
      int f, c;
      svi_block_range(nb, R, r, &f, &c);
      cnt[r] = c * (int)w, dis[r] = f * (int)w;
    }
    if (nb * w > (size_t)INT_MAX ||
        !mpi_allgatherv(s->comm, s->blk_buf + (size_t)first * w, s->blk_buf, cnt, dis)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "svi: MPI could not gather the blocks' gradients");
      return false;
    }
    int worst = SB_OK, at = -1;
    for (int j = 0; j < nb; j++) {
      int st = (int)s->blk_buf[(size_t)j * w];
      if (st > worst) worst = st, at = j;
    }
    if (worst == SB_FATAL || (worst == SB_ERROR && tries + 1 >= SVI_TRIES)) {
      svi_block_diag(s, at, nb, at >= first && at < first + count ? &bd[at - first] : NULL, d);
      return false;
    }
    if (worst != SB_OK) {
      if (tries + 1 >= SVI_TRIES) {
        diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "svi: the ELBO was not finite at %d draws in a "
                   "row at step %ld: the guide puts mass where the model has none",
                   SVI_TRIES, s->iterations + 1);
        return false;
      }
      continue; /* other noise, on every rank */
    }
    double sum = 0;
    bool any_disc = false;
    memset(grad, 0, sizeof(double) * s->nx);
    for (int j = 0; j < nb; j++) { /* in block order */
      const double *row = s->blk_buf + (size_t)j * w;
      sum += row[1];
      any_disc |= row[2] != 0;
      for (size_t i = 0; i < s->nx; i++) grad[i] += row[SB_HEAD + i];
    }
    for (size_t i = 0; i < s->nx; i++) grad[i] /= K;
    *elbo = sum / K;
    if (any_disc) {
      s->baseline = s->has_baseline ? 0.9 * s->baseline + 0.1 * *elbo : *elbo;
      s->has_baseline = true;
    }
    return true;
  }
}

/* The mean of grad_samples ELBO samples into *elbo and its gradient with
   respect to x into grad, with fresh plate subsets. */
static bool svi_grad(Svi *s, double *elbo, double *grad, Diag *d) {
  s->tau = fmax(s->tau_min, s->tau0 * exp(-s->tau_decay * (double)s->iterations));
  if (s->row_blocks) return svi_grad_blocks(s, elbo, grad, d);
  for (int tries = 0;; tries++) {
    tape_reset(s->tape);
    for (int i = 0; i < s->np; i++) s->p[i].node0 = 0, s->p[i].val = val_none();
    s->nplates = 0;
    s->step++;
    /* every param gets its variables first, so that their ids are known even
       when a block does not use one; the runs share the values (a program
       never writes a param), so a network's ten thousand weights are
       constrained and given nodes once a step */
    for (int i = 0; i < s->np; i++) s->p[i].val = svi_param_value(s, &s->p[i], s->tape);
    /* the surrogate whose gradient estimates the ELBO's: log p - log q,
       plus for discrete guide choices the score-function term
       (log p - log q - baseline) * log q_discrete, its factor a constant */
    AdNum total = ad_const(0);
    double sum = 0;
    bool finite = true, any_disc = false;
    for (int k = 0; k < s->grad_samples && finite; k++) {
      AdNum lp, lq, ld;
      Diag ed;
      diag_init(&ed);
      if (!svi_pair(s, SR_TRAIN, s->tape, &lp, &lq, &ld, NULL, &ed)) {
        if (ed.code == DIAG_INTERNAL || tries + 1 >= SVI_TRIES) {
          *d = ed;
          return false;
        }
        finite = false; /* a program error at this draw: try other noise */
        break;
      }
      double e = lp.v - lq.v;
      total = ad_add(s->tape, total, ad_sub(s->tape, lp, lq));
      if (ld.n) {
        double b = s->has_baseline ? s->baseline : e;
        total = ad_add(s->tape, total, ad_scale(s->tape, ld, e - b));
        any_disc = true;
      }
      sum += e;
      finite = isfinite(total.v) && isfinite(e);
    }
    if (!finite) {
      if (tries + 1 >= SVI_TRIES) {
        diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "svi: the ELBO was not finite at %d draws in a "
                   "row at step %ld: the guide puts mass where the model has none",
                   SVI_TRIES, s->iterations + 1);
        return false;
      }
      continue;
    }
    size_t nt = tape_size(s->tape) + 1;
    if (nt > s->adjcap) {
      s->adj = gc_alloc_atomic(sizeof(double) * nt);
      s->adjcap = nt;
    }
    double *adj = s->adj;
    if (total.n) tape_backward(s->tape, total.n, adj); /* which zeroes adj first */
    else memset(adj, 0, sizeof(double) * nt);
    for (int i = 0; i < s->np; i++)
      for (size_t e = 0; e < s->p[i].n; e++)
        grad[s->p[i].off + e] = adj[s->p[i].node0 + (int32_t)e] / s->grad_samples;
    *elbo = sum / s->grad_samples;
    if (any_disc) { /* Pyro's decaying average baseline */
      s->baseline = s->has_baseline ? 0.9 * s->baseline + 0.1 * *elbo : *elbo;
      s->has_baseline = true;
    }
    return true;
  }
}

/* One optimisation step (the optimiser minimises: -ELBO). */
static bool svi_step_opt(Svi *s, double *elbo, Diag *d) {
  if (!svi_grad(s, elbo, s->grad, d)) return false;
  for (size_t j = 0; j < s->nx; j++) s->grad[j] = -s->grad[j];
  optim_step(s->opt, s->x, s->grad);
  return true;
}

/* svi_elbo with the gradient in blocks: the samples are shared among the
   ranks, each drawn from a stream of its own seeded from the shared one, and
   their values gathered and added in order, so the ELBO has the same bits
   for every number of ranks. */
static bool svi_elbo_blocks(Svi *s, double *out, Diag *d) {
  int K = s->elbo_samples, R = mpi_size(s->comm), q = mpi_rank(s->comm), first, count, bad = -1;
  uint64_t *seed = gc_alloc_atomic(sizeof(uint64_t) * (size_t)K);
  for (int k = 0; k < K; k++) seed[k] = rng_u64(s->r);
  double *v = gc_alloc_atomic(sizeof(double) * 2 * (size_t)K); /* [failed, log p - log q] */
  int *cnt = gc_alloc_atomic(sizeof(int) * 2 * (size_t)R), *dis = cnt + R;
  for (int r = 0; r < R; r++) {
    svi_block_range(K, R, r, &first, &count);
    cnt[r] = 2 * count, dis[r] = 2 * first;
  }
  svi_block_range(K, R, q, &first, &count);
  Rng own, *shared = s->r;
  Diag mine;
  diag_init(&mine);
  for (int k = first; k < first + count; k++) {
    Diag e;
    diag_init(&e);
    AdNum lp, lq;
    rng_seed(&own, seed[k], 0);
    s->r = &own, s->nplates = 0;
    bool ran = svi_pair(s, SR_DRAW, NULL, &lp, &lq, NULL, NULL, &e);
    v[2 * k] = !ran, v[2 * k + 1] = ran ? lp.v - lq.v : 0;
    if (!ran && bad < 0) mine = e, bad = k;
  }
  s->r = shared;
  if (!mpi_allgatherv(s->comm, v + 2 * first, v, cnt, dis)) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "svi: MPI could not gather the ELBO's samples");
    return false;
  }
  double sum = 0;
  for (int k = 0; k < K; k++) {
    if (v[2 * k] != 0) {
      svi_block_diag(s, k, K, k == bad ? &mine : NULL, d);
      return false;
    }
    sum += v[2 * k + 1];
  }
  *out = sum / K;
  return true;
}

/* The ELBO of the fitted guide from elbo_samples fresh pairs. */
static bool svi_elbo(Svi *s, double *out, Diag *d) {
  if (s->row_blocks) return svi_elbo_blocks(s, out, d);
  double sum = 0;
  for (int k = 0; k < s->elbo_samples; k++) {
    AdNum lp, lq;
    s->nplates = 0;
    if (!svi_pair(s, SR_DRAW, NULL, &lp, &lq, NULL, NULL, d)) return false;
    sum += lp.v - lq.v;
  }
  *out = sum / s->elbo_samples;
  return true;
}

/* The data plate: the largest subsampled plate of the last step. */
static void svi_data_plate(Svi *s) {
  s->data_n = s->data_batch = 0;
  for (int i = 0; i < s->nplates; i++)
    if (s->plates[i].hi - s->plates[i].lo + 1 > s->data_n) {
      s->data_n = s->plates[i].hi - s->plates[i].lo + 1;
      s->data_batch = s->plates[i].n;
    }
}

/* Stan's convergence test on the ELBO's relative changes: the mean or the
   median of the recent ones (vi_reltest) below tol.  Here each ELBO
   value is the mean of the training estimates over eval_elbo steps. */
static void svi_train(Svi *s, Diag *d) {
  int cb = (int)fmax(0.1 * (double)s->max_iter / s->eval_elbo, 2.0);
  ViRelTest rt;
  vi_reltest_init(&rt, cb);
  double window = 0, prev = NAN;
  for (long it = 1; it <= s->max_iter; it++) {
    double e;
    bool stop = engine_interrupted(s->o);
    if (s->row_blocks && !mpi_allreduce_or(s->comm, &stop)) stop = true; /* the ranks agree */
    if (stop) { /* keep what it has: the caller saves it */
      s->interrupted = true;
      return;
    }
    if (!svi_step_opt(s, &e, d)) return;
    s->iterations = it;
    window += e;
    engine_progress(s->o, s->chain, it, s->max_iter, "iteration");
    if (s->tick) {
      svi_data_plate(s);
      s->tick(s->tick_ctx, s, it, e);
    }
    if (it % s->eval_elbo) continue;
    double cur = window / s->eval_elbo;
    window = 0;
    double rmean = NAN, rmed = NAN;
    if (!isnan(prev)) vi_reltest_push(&rt, fabs((cur - prev) / cur), &rmean, &rmed);
    svi_trace_add(s, it, cur, rmean, rmed);
    prev = cur;
    if (s->tol > 0 && (rmean < s->tol || rmed < s->tol)) {
      s->converged = true;
      return;
    }
  }
}

/* ---- the engine ---- */

/* --optimizer (vi_options, shared with advi): auto, stan, adam, sgd */
enum { SVI_OPT_AUTO, SVI_OPT_STAN, SVI_OPT_ADAM, SVI_OPT_SGD };
static const char *const svi_schedules[] = {"constant", "step", "exp", "cosine", NULL};

/* ---- --relax: where a relaxed category may be used ---- */

/* Under --relax a categorical latent holds a point of the simplex, which has
   a meaning only as an index (x[z]: the y-weighted sum) and where its family
   scores it: any other use of its register is refused before training, so a
   comparison or a loop bound never computes with a vector. */
typedef struct RelaxUse {
  const IrFunc *fn;
  bool *cat;        /* per register: a scalar int drawn from categorical(_logit) */
  const IrInstr **at; /* ... by that draw */
  const IrInstr *bad; /* the first other use */
  int reg;
} RelaxUse;

static void relax_mark(RelaxUse *u, const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_SAMPLE && in->dst >= 0 && u->fn->regtypes[in->dst].ndims == 0 &&
        u->fn->regtypes[in->dst].base == TY_INT &&
        (!strcmp(in->dist.fam->name, "categorical") ||
         !strcmp(in->dist.fam->name, "categorical_logit")))
      u->cat[in->dst] = true, u->at[in->dst] = in;
    relax_mark(u, &in->then_b), relax_mark(u, &in->else_b);
    relax_mark(u, &in->body), relax_mark(u, &in->cond_b);
  }
}

static void relax_use(RelaxUse *u, const IrInstr *in, int r) {
  if (r >= 0 && r < u->fn->nregs && u->cat[r] && !u->bad) u->bad = in, u->reg = r;
}

static void relax_scan(RelaxUse *u, const IrBlock *b) {
  for (int i = 0; i < b->n && !u->bad; i++) {
    const IrInstr *in = &b->ins[i];
    for (int a = 0; a < in->nargs; a++) relax_use(u, in, in->args[a]);
    bool soft = in->op == IR_INDEX && in->nidx == 1 && in->idx[0].kind == IX_SINGLE;
    for (int k = 0; k < in->nidx; k++) {
      if (!soft && in->idx[k].kind != IX_ALL) relax_use(u, in, in->idx[k].lo);
      if (in->idx[k].kind == IX_RANGE) relax_use(u, in, in->idx[k].hi);
    }
    for (int k = 0; k < in->dist.nparams; k++) relax_use(u, in, in->dist.params[k]);
    for (int k = 0; k < in->nsizes; k++) relax_use(u, in, in->sizes[k]);
    if (in->op == IR_WHILE) relax_use(u, in, in->cond);
    if (in->op == IR_OBSERVE) relax_use(u, in, in->var);
    relax_scan(u, &in->then_b), relax_scan(u, &in->else_b);
    relax_scan(u, &in->body), relax_scan(u, &in->cond_b);
  }
}

static bool svi_relax_check(const IrProgram *p, Diag *d) {
  for (int f = -1; f < p->nfuncs; f++) {
    RelaxUse u = {.fn = f < 0 ? &p->main : &p->funcs[f]};
    u.cat = gc_alloc_atomic(sizeof(bool) * (size_t)(u.fn->nregs + 1));
    memset(u.cat, 0, sizeof(bool) * (size_t)(u.fn->nregs + 1));
    u.at = gc_alloc(sizeof(IrInstr *) * (size_t)(u.fn->nregs + 1));
    const IrBlock *blocks[2] = {f < 0 ? &p->model_b : &u.fn->body, f < 0 ? &p->guide_b : NULL};
    for (int b = 0; b < 2; b++)
      if (blocks[b]) relax_mark(&u, blocks[b]);
    for (int b = 0; b < 2; b++)
      if (blocks[b]) relax_scan(&u, blocks[b]);
    if (u.bad) {
      const IrInstr *at = u.at[u.reg];
      diag_error(d, DIAG_USAGE, u.bad->pos, "svi --relax: the categorical latent '%s' (%s) is "
                 "used other than as an index (x[%s]); relaxed, it holds a point of the simplex, "
                 "which only indexing can use: drop --relax (the score-function estimator takes "
                 "any use)", at->name, svi_pos(at->pos), at->name);
      return false;
    }
  }
  return true;
}

Svi *svi_prepare(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  const IrProgram *prog = interp_program(in);
  Svi *s = gc_alloc(sizeof(Svi));
  s->in = in;
  s->o = o;
  s->chain = chain;
  rng_seed(&s->rng, o->seed, (uint64_t)chain);
  rng_seed(&s->draw_rng, o->seed, (uint64_t)chain | (UINT64_C(1) << 40));
  s->r = &s->rng;
  s->max_iter = (long)engine_opt_int(o, "iter");
  s->grad_samples = (int)engine_opt_int(o, "grad-samples");
  if (s->grad_samples == 0) s->grad_samples = 1;
  s->elbo_samples = (int)engine_opt_int(o, "elbo-samples");
  s->eval_elbo = (int)engine_opt_int(o, "eval-elbo");
  s->tol = engine_opt_real(o, "tol-rel-obj");
  s->relax = engine_opt_bool(o, "relax");
  s->tau0 = engine_opt_real(o, "temperature");
  s->tau_min = fmin(engine_opt_real(o, "temperature-min"), s->tau0);
  s->tau_decay = engine_opt_real(o, "temperature-decay");
  s->comm = o->comm; /* under MPI the gradient is computed in blocks, by default MPI_TRAIN_BLOCKS */
  s->row_blocks = (int)engine_opt_int(o, "grad-blocks");
  if (!s->row_blocks && o->comm) s->row_blocks = MPI_TRAIN_BLOCKS;
  if (!prog->has_guide && ir_analyze(prog)->nlatents > 0) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--engine svi needs a guide block that draws the "
               "latents (docs/language.md, \"guide\"); write one, or use --engine advi");
    return NULL;
  }
  if (s->relax && !svi_relax_check(prog, d)) return NULL;
  if (!engine_opt_bool(o, "plate-rows")) s->pv = pv_program(prog, NULL);
  /* one traced run of each block: params found, latents matched */
  AdNum lp, lq;
  if (!svi_pair(s, SR_CHECK, NULL, &lp, &lq, NULL, NULL, d)) return NULL;
  OptimConfig oc;
  int kind = engine_opt_enum(o, "optimizer");
  if (kind == SVI_OPT_STAN) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--optimizer stan is advi's step-size sequence; svi "
               "takes adam (the default) or sgd");
    return NULL;
  }
  optim_config_default(&oc, kind == SVI_OPT_SGD ? OPTIM_SGD : OPTIM_ADAM);
  oc.lr = engine_opt_real(o, "lr");
  oc.clip_norm = engine_opt_real(o, "clip-norm");
  oc.sched = (OptimSched)engine_opt_enum(o, "lr-schedule");
  oc.gamma = engine_opt_real(o, "lr-gamma");
  oc.step_every = (long)engine_opt_int(o, "lr-step");
  oc.horizon = s->max_iter;
  oc.lr_min = engine_opt_real(o, "lr-min");
  s->opt = optim_new(&oc, s->nx ? s->nx : 1);
  s->grad = gc_alloc_atomic(sizeof(double) * (s->nx + 1));
  s->tape = tape_new();
  if (!s->opt || !s->tape) {
    diag_error(d, DIAG_NOMEM, (SrcPos){0}, "svi: out of memory");
    return NULL;
  }
  return s;
}

size_t svi_dim(const Svi *s) { return s->nx; }
double *svi_values(Svi *s) { return s->x; }

bool svi_gradient(Svi *s, uint64_t seed, bool subsample, double *elbo, double *grad, Diag *d) {
  rng_seed(&s->rng, seed, 0);
  s->r = &s->rng;
  s->whole = !subsample;
  bool ok = svi_grad(s, elbo, grad, d);
  s->whole = false;
  return ok;
}

/* ---- saving and loading the params (safetensors, stdlib/safetensors.h) ---- */

/* This chain's file of a file option (FILE, or FILE_2.safetensors of several
   chains, as the CSVs are named), or NULL when not given. */
static const char *svi_file_opt(const Svi *s, const char *name) {
  const OptValue *v = opt_set_get(s->o->set, name);
  return v && v->path ? csv_chain_path(v->path, s->chain, s->o->chains) : NULL;
}

/* A param's tensor name: its block and its name ("guide.m", "model.mu"). */
static const char *svi_tensor_name(const SviParam *p) {
  return gc_printf("%s.%s", p->guide ? "guide" : "model", p->name);
}

/* The optimiser's moments as tensors "optim.m" and "optim.v" (on the
   unconstrained scale, in the params' order) and its step count in the
   metadata, so that `ppl train --load` resumes where the run stopped. */
static const char *const svi_moment_names[2] = {"optim.m", "optim.v"};

bool svi_write_params(Svi *s, const char *path, Diag *d) {
  bool moments = s->opt && optim_steps(s->opt) > 0 && optim_size(s->opt) == s->nx && s->nx > 0;
  StFile f = {.ntensors = s->np, .tensors = gc_alloc(sizeof(StTensor) * (size_t)(s->np + 3))};
  const char *err = NULL;
  for (int i = 0; i < s->np; i++)
    if (!st_tensor_of_value(svi_tensor_name(&s->p[i]), svi_param_value(s, &s->p[i], NULL),
                            &f.tensors[i], &err))
      break;
  for (int k = 0; moments && k < 2; k++)
    f.tensors[f.ntensors++] = (StTensor){.name = svi_moment_names[k], .rank = 1,
                                         .shape = {(int64_t)s->nx}, .numel = s->nx,
                                         .data = (double *)optim_moment(s->opt, k)};
  if (!err) {
    st_set_ppl_meta(&f, ir_program_hash(interp_program(s->in)), ST_KIND_SVI);
    StMeta *meta = gc_alloc(sizeof(StMeta) * (size_t)(f.nmeta + 3));
    memcpy(meta, f.meta, sizeof(StMeta) * (size_t)f.nmeta);
    meta[f.nmeta++] = (StMeta){"family", "guide"};
    meta[f.nmeta++] = (StMeta){"elbo", gc_printf("%.17g", s->elbo)};
    if (moments) meta[f.nmeta++] = (StMeta){"optim_steps", gc_printf("%ld", optim_steps(s->opt))};
    f.meta = meta;
    if (st_write(path, &f, &err)) return true;
  }
  diag_error(d, DIAG_IO, (SrcPos){0}, "--save-params: %s", err ? err : path);
  return false;
}

StFile *svi_read_params(const char *path, const IrProgram *p, const char *opt, Diag *d) {
  size_t len;
  Diag rd;
  diag_init(&rd);
  char *bytes = diag_read_file(path, &len, &rd);
  if (!bytes) {
    diag_error(d, DIAG_IO, (SrcPos){0}, "%s: %s", opt, rd.msg);
    return NULL;
  }
  const char *err = NULL;
  StFile *f = st_decode(path, (const unsigned char *)bytes, len, &err);
  if (f && !st_check_meta(f, path, ir_program_hash(p), &err)) f = NULL;
  if (!f) diag_error(d, DIAG_DATA, (SrcPos){0}, "%s: %s", opt, err);
  return f;
}

bool svi_set_params(Svi *s, const StFile *f, const char *path, const char *opt, Diag *d) {
  const char *err = NULL;
  const char *fam = st_meta_get(f, "family"), *kind = st_meta_get(f, "kind");
  if ((kind && strcmp(kind, ST_KIND_SVI) != 0) || !fam || strcmp(fam, "guide") != 0)
    err = gc_printf("%s holds %s fit, not svi's params", path,
                    fam ? gc_printf("a %s", fam) : "another engine's");
  for (int i = 0; !err && i < s->np; i++) {
    SviParam *p = &s->p[i];
    const StTensor *t = st_find(f, svi_tensor_name(p));
    Value v;
    if (!t) {
      err = gc_printf("%s has no tensor '%s'", path, svi_tensor_name(p));
      break;
    }
    if (!st_value_of_tensor(path, t, svi_param_value(s, p, NULL), &v, &err)) {
      if (!strcmp(opt, "--load")) /* new data of another size */
        err = gc_printf("%s: a param whose size follows the data is fitted to the data it was "
                        "trained on, not amortized: compute it with an encoder network of each "
                        "datapoint instead", err);
      break;
    }
    double *x = gc_alloc_atomic(sizeof(double) * (p->n ? p->n : 1));
    val_flatten(v, x);
    for (size_t e = 0; e < p->n && !err; e++) {
      double u = x[e];
      if (p->spec.con != CON_NONE &&
          (!tf_unconstrain(p->spec.con, p->spec.lower, p->spec.upper, 1, &x[e], &u) ||
           !isfinite(u)))
        err = gc_printf("%s: tensor '%s' has %g, outside the param's bounds", path,
                        svi_tensor_name(p), x[e]);
      s->x[p->off + e] = u;
    }
  }
  if (!err) return true;
  diag_error(d, DIAG_DATA, (SrcPos){0}, "%s: %s", opt, err);
  return false;
}

bool svi_resume_optim(Svi *s, const StFile *f, const char *path, Diag *d) {
  const StTensor *m = st_find(f, svi_moment_names[0]), *v = st_find(f, svi_moment_names[1]);
  const char *steps = st_meta_get(f, "optim_steps");
  if (!m && !v && !steps) return true;
  char *end = NULL;
  long t = steps ? strtol(steps, &end, 10) : -1;
  if (!m || !v || !steps || *end || t < 1 || m->numel != s->nx || v->numel != s->nx ||
      optim_size(s->opt) != s->nx) {
    diag_error(d, DIAG_DATA, (SrcPos){0}, "--load: %s: the optimiser's state (tensors '%s', "
               "'%s' of %zu reals and metadata 'optim_steps') is incomplete or of another size",
               path, svi_moment_names[0], svi_moment_names[1], s->nx);
    return false;
  }
  optim_restore(s->opt, t, m->data, v->data);
  return true;
}

/* The params of f for drawing, with no optimisation. */
static bool svi_load(Svi *s, const StFile *f, const char *path, const char *opt, Diag *d) {
  if (!svi_set_params(s, f, path, opt, d)) return false;
  s->loaded = path;
  s->converged = true;
  return true;
}

/* --psis-resample: as many draws of the guide as the run takes, resampled by
   their Pareto-smoothed importance weights, as advi's (resample_psis_order). */
static bool svi_resample(Svi *s, int n, Diag *d) {
  s->pool = gc_alloc(sizeof(Draw) * (size_t)n);
  s->lw = gc_alloc_atomic(sizeof(double) * (size_t)n);
  s->caplw = n;
  for (int i = 0; i < n; i++) {
    AdNum lp, lq;
    InterpState *st;
    if (!svi_pair(s, SR_DRAW, NULL, &lp, &lq, NULL, &st, d)) return false;
    Draw *dr = &s->pool[i];
    memset(dr, 0, sizeof *dr);
    engine_draw_outputs(dr, st);
    dr->lp = dr->stats[0] = lp.v;
    dr->stats[1] = lq.v;
    s->lw[i] = lp.v - lq.v;
  }
  s->nlw = s->npool = n;
  s->order = gc_alloc_atomic(sizeof(int) * (size_t)n);
  resample_psis_order(n, s->lw, s->r, s->order);
  return true;
}

/* After the fit or the load (and its ELBO): the file --save-params names,
   the resampled pool. */
static void *svi_finish(Svi *s, const char *save, Diag *d) {
  /* under MPI every rank has the same params: rank 0 writes them */
  if (save && mpi_rank(s->comm) == 0 && !svi_write_params(s, save, d)) return NULL;
  if (engine_opt_bool(s->o, "psis-resample") && !svi_resample(s, s->o->draws * s->o->thin, d))
    return NULL;
  return s;
}

/* The ELBO of the loaded params, from the draws' stream. */
static bool svi_loaded_elbo(Svi *s, Diag *d) {
  s->r = &s->draw_rng;
  return svi_elbo(s, &s->elbo, d);
}

bool svi_fit(Svi *s, SviTick tick, void *ctx, Diag *d) {
  struct timespec t0, t1;
  s->tick = tick, s->tick_ctx = ctx;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (s->nx == 0) {
    s->converged = true; /* no params: nothing to fit, q is the guide as written */
  } else {
    gc_throughput_begin(); /* each step's values are garbage by the next */
    svi_train(s, d);
    gc_throughput_end();
  }
  if (s->tol == 0 && !s->interrupted) s->converged = true; /* the step count, as Pyro's */
  svi_data_plate(s);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  s->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  s->tick = NULL;
  if (diag_failed(d)) return false;
  s->r = &s->draw_rng;
  return svi_elbo(s, &s->elbo, d);
}

bool svi_data_plate_of(Svi *s, int64_t *size, int64_t *batch) {
  svi_data_plate(s);
  *size = s->data_n, *batch = s->data_batch;
  return s->data_n > 0;
}

bool svi_fit_info(const Svi *s, SviFitInfo *out) {
  *out = (SviFitInfo){.steps = s->iterations, .elbo = s->elbo, .converged = s->converged,
                      .interrupted = s->interrupted, .seconds = s->seconds,
                      .plate_size = s->data_n, .batch = s->data_batch};
  return out->plate_size > 0;
}

static void *svi_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  Svi *s = svi_prepare(in, o, chain, d);
  if (!s) return NULL;
  const char *load = svi_file_opt(s, "load-params"), *save = svi_file_opt(s, "save-params");
  if (load) {
    StFile *f = svi_read_params(load, interp_program(in), "--load-params", d);
    if (!f || !svi_load(s, f, load, "--load-params", d) || !svi_loaded_elbo(s, d)) return NULL;
  } else if (!svi_fit(s, NULL, NULL, d)) {
    return NULL;
  }
  return svi_finish(s, save, d);
}

void *svi_init_loaded(const Interp *in, const EngineOpts *o, int chain, const StFile *f,
                      const char *path, Diag *d) {
  Svi *s = svi_prepare(in, o, chain, d);
  if (!s || !svi_load(s, f, path, "--load", d) || !svi_loaded_elbo(s, d)) return NULL;
  s->amortized = true;
  return svi_finish(s, NULL, d);
}

static bool svi_step(void *state, bool warmup, Draw *out, Diag *d) {
  (void)warmup;
  Svi *s = state;
  if (s->pool) {
    *out = s->pool[s->order[s->next++ % s->npool]];
    return true;
  }
  AdNum lp, lq;
  InterpState *st;
  if (!svi_pair(s, SR_DRAW, NULL, &lp, &lq, NULL, &st, d)) return false;
  engine_draw_outputs(out, st);
  out->lp = lp.v;
  out->stats[0] = lp.v;
  out->stats[1] = lq.v;
  if (s->nlw == s->caplw) {
    int cap = s->caplw ? 2 * s->caplw : 256;
    double *lw = gc_alloc_atomic(sizeof(double) * (size_t)cap);
    if (s->nlw) memcpy(lw, s->lw, sizeof(double) * (size_t)s->nlw);
    s->lw = lw, s->caplw = cap;
  }
  s->lw[s->nlw++] = lp.v - lq.v;
  return true;
}

static void svi_free(void *state) {
  Svi *s = state;
  if (!s) return;
  optim_free(s->opt);
  s->opt = NULL;
}

/* "m = 1.23, s = [0.5, 0.7]": the fitted params of the guide. */
static const char *svi_guide_params(Svi *s) {
  const char *t = "";
  for (int i = 0; i < s->np; i++) {
    if (!s->p[i].guide) continue;
    const SviParam *p = &s->p[i];
    const char *v = p->spec.net    ? gc_printf("a network of %zu weights", p->n)
                    : p->spec.flow ? gc_printf("a flow of %zu weights", p->n)
                    : p->n > 8  ? gc_printf("%zu values", p->n)
                                : val_to_string(svi_param_value(s, &s->p[i], NULL));
    t = gc_printf("%s%s%s = %s", t, *t ? ", " : "", p->name, v);
  }
  return t;
}

/* q's name in the summary and the warnings: the guide, or the guide whose
   encoders were trained once for other data (the engine amortized). */
static const char *svi_family(const Svi *s) { return s->amortized ? "amortized guide" : "guide"; }

/* The CSV's lines after the header, in advi's "key = value" form (so that
   `ppl summary` of the files rebuilds the vi block), then the ELBO trace. */
static const char *svi_adaptation(void *state) {
  Svi *s = state;
  int g = s->o->sig_figs > 0 ? s->o->sig_figs : 6;
  const char *t = gc_printf("%s\noptimizer = %s\nlr = %g\nfamily = %s\niterations = %ld\n"
                            "converged = %d\nelbo = %.*g\nfit_seconds = %.*g\npsis_resample = %d\n"
                            "guide params: %s\nELBO trace: iter, ELBO, delta_ELBO_mean, "
                            "delta_ELBO_med",
                            s->amortized ? gc_printf("Amortized guide loaded (--load %s): no "
                                                     "optimisation.", s->loaded)
                            : s->loaded ? gc_printf("Params loaded from %s (no optimisation).",
                                                    s->loaded)
                                      : "Optimisation complete.",
                            engine_opt_enum(s->o, "optimizer") == SVI_OPT_SGD ? "sgd" : "adam",
                            engine_opt_real(s->o, "lr"), svi_family(s), s->iterations, s->converged, g, s->elbo,
                            g, s->seconds, s->pool != NULL, svi_guide_params(s));
  for (int i = 0; i < s->ntrace; i++)
    t = gc_printf("%s\n%.0f, %.*g, %.*g, %.*g", t, s->trace[i][0], g, s->trace[i][1], g,
                  s->trace[i][2], g, s->trace[i][3]);
  return t;
}

static bool svi_vi_report(void *state, ViReport *r) {
  Svi *s = state;
  *r = (ViReport){
      .family = svi_family(s),
      .elbo = s->elbo,
      .eta = engine_opt_real(s->o, "lr"),
      .iterations = s->iterations,
      .converged = s->converged,
      .loaded = s->loaded,
      .resampled = s->pool != NULL,
      .seconds = s->seconds,
      .ntrace = s->ntrace,
      .trace = (const double(*)[4])s->trace,
      .n = s->nlw,
      .lw = s->lw,
  };
  return true;
}

static const char *svi_notes(void *state) {
  Svi *s = state;
  const char *gp = svi_guide_params(s);
  const char *t = *gp ? gc_printf("guide params: %s", gp) : "";
  if (s->interrupted)
    t = gc_printf("%s%straining interrupted after %ld iterations", t, *t ? "; " : "",
                  s->iterations);
  else if (!s->converged)
    t = gc_printf("%s%sthe ELBO did not converge in %ld iterations (--iter)", t, *t ? "; " : "",
                  s->iterations);
  return *t ? t : NULL;
}

static const OptSpec svi_options[] = {
    {.name = "clip-norm", .type = OPT_REAL, .def = "0", .rlo = 0, .rhi = INFINITY, .arg = "X",
     .help = "svi: clip each step's gradient to this L2 norm (0: no clipping)"},
    {.name = "lr-schedule", .type = OPT_ENUM, .def = "constant", .choices = svi_schedules,
     .arg = "KIND", .help = "svi: lr, lr * gamma^(t / lr-step), lr * gamma^t, or cosine from lr "
                            "to lr-min over --iter steps: one of"},
    {.name = "lr-gamma", .type = OPT_REAL, .def = "0.1", .rlo = 0, .rlo_open = true, .rhi = 1,
     .arg = "X", .help = "svi: the decay factor of the step and exp schedules"},
    {.name = "lr-step", .type = OPT_INT, .def = "1000", .ilo = 1, .ihi = 100000000, .arg = "N",
     .help = "svi: steps between decays of the step schedule"},
    {.name = "lr-min", .type = OPT_REAL, .def = "0", .rlo = 0, .rhi = INFINITY, .arg = "X",
     .help = "svi: the cosine schedule's final learning rate"},
    {.name = "grad-blocks", .type = OPT_INT, .def = "0", .ilo = 0, .ihi = 4096, .arg = "G",
     .help = "svi and train --amortize: compute each step's gradient in blocks: G of each "
             "Monte Carlo sample's minibatch, summed in a fixed order (the data-parallel split "
             "under MPI, where 0 means 8; in one process 0 is one undivided minibatch; the same "
             "G gives the same bits for any number of ranks)"},
    {.name = "relax", .type = OPT_BOOL, .def = "false",
     .help = "svi: train scalar bernoulli and categorical choices through the Concrete "
             "(Gumbel-softmax) relaxation instead of the score-function estimator; the model "
             "must use bernoulli ones arithmetically, categorical ones only as indices"},
    {.name = "temperature", .type = OPT_REAL, .def = "1", .rlo = 0, .rlo_open = true,
     .rhi = INFINITY, .arg = "X", .help = "svi --relax: the relaxation's first temperature"},
    {.name = "temperature-min", .type = OPT_REAL, .def = "0.5", .rlo = 0, .rlo_open = true,
     .rhi = INFINITY, .arg = "X",
     .help = "svi --relax: the temperature's floor: max(X, temperature * exp(-decay * step))"},
    {.name = "temperature-decay", .type = OPT_REAL, .def = "0.001", .rlo = 0, .rhi = INFINITY,
     .arg = "X", .help = "svi --relax: the temperature's decay rate per step"},
    {.name = "plate-rows", .type = OPT_BOOL, .def = "false",
     .help = "svi: train every plate row by row; by default a plate whose body does the same "
             "to every row runs once over the minibatch (`ppl run --verbose` says which)"},
    OPT_END,
};

const EngineVT engine_svi = {
    .name = "svi",
    .summary = "stochastic variational inference with the program's guide block (Pyro's SVI): "
               "fits the guide's and the model's params by the reparameterised ELBO",
    .nstats = 2,
    .stat_names = {"log_p__", "log_g__"},
    .weighted = false,
    .uses_warmup = false,
    .traits = ENGINE_GUIDE | ENGINE_IMPROPER | ENGINE_DISCRETE,
    .options = {vi_options, svi_options, vi_draw_options},
    .init = svi_init,
    .step = svi_step,
    .free = svi_free,
    .adaptation_info = svi_adaptation,
    .chain_notes = svi_notes,
    .vi_report = svi_vi_report,
};
