/* mh.c — single-site Metropolis–Hastings over traces ("lightweight MH",
 * Wingate, Stuhlmüller, Goodman 2011): correct for every program, including
 * ones whose set of latents changes from run to run.
 *
 * One step is a sweep of as many proposals as the trace has sites.  A
 * site is one scalar element of a latent (one whole unit for simplex, ordered,
 * Cholesky and covariance constraints; one whole choice for strings).  Each
 * proposal re-runs the program with the trace handler: every other choice is
 * reused when still valid, new ones are drawn from their prior, and the
 * acceptance ratio carries the fresh/stale and |sites| corrections.
 *
 * The sweep length must not depend on the state a sweep starts from: reading
 * the chain only at the ends of state-dependent sweeps would favour states
 * with few sites (they move less before being recorded).  So it is the site
 * count of the current trace during warmup, then frozen at the mean site
 * count seen in warmup (for fixed-structure programs: the site count).
 *
 * Kernels: continuous sites take a Gaussian random walk on the unconstrained
 * scale (step size per site, adapted towards acceptance 0.44 during warmup,
 * frozen after) or, with probability 0.1, an independent draw from the prior
 * DistCall so that the chain can jump between modes; discrete sites propose
 * from the prior or, for small finite supports, a uniformly chosen other value.
 *
 * The model block of every run uses one fixed interpreter seed per chain, so
 * `_rng` calls inside the model block are part of the fixed program rather
 * than extra randomness MH cannot account for; the generated block runs once
 * per draw with a fresh seed from the chain's stream.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../stdlib/transform.h"
#include "engine.h"
#include "trace.h"

#define MH_PRIOR_PROB 0.1   /* independent prior proposals for continuous sites */
#define MH_TARGET_ACCEPT 0.44
#define MH_SMALL_SUPPORT 256 /* discrete supports up to this size get uniform moves */
#define MH_INIT_TRIES 100
#define MH_BLOCK_ACCEPT 0.234 /* optimal for high-dimensional random walks */

typedef enum { K_RW_ELEM, K_RW_UNIT, K_PRIOR_UNIT, K_PRIOR_WHOLE, K_UNIFORM } Kernel;

/* Adapted random-walk scale of one site: log sigma and its update count. */
typedef struct SiteStep {
  const char *addr;
  int local;
  double log_sigma;
  long n;
  double round_sum; /* mh_mover_adapt_round: this round's acceptance probabilities */
  long round_n;
} SiteStep;

typedef struct MhState {
  const Interp *in;
  const IrProgram *prog;
  int chain;
  Rng rng;
  uint64_t model_seed;
  bool has_gen;
  long sweep;       /* proposals per step after warmup */
  double sites_sum; /* site counts seen in warmup, for `sweep` */
  long sites_n;
  Trace *cur;
  InterpState *cur_st;
  int scap, sn; /* open-addressing table of SiteStep */
  SiteStep *steps;
  /* rejuvenation moves for particle engines (mh_mover_*): runs stop at this
     event (0 = run to the end) and include the generated block when gen */
  long stop_events;
  bool gen;
  bool cur_done;
  double stop_scale;  /* tempering of the stop event (smc); 1 = none */
  double cur_stop_lp; /* the accepted trace's untempered stop event density */
  const char *only; /* propose only at this choice (particle Gibbs), or NULL */
  /* choices the sweeps leave to another kernel (lmh's learned moves): sites
     are drawn among the others' (NULL: none) */
  bool (*skip)(void *ctx, const char *addr);
  void *skip_ctx;
  bool block;       /* the `block` option: a joint move after each sweep */
  MhBlockRw rw;     /* its scale (adapted in warmup towards MH_BLOCK_ACCEPT) */
  long block_n;
} MhState;

typedef MhSiteKernel Proposal; /* trace.h: k is a Kernel */

/* ---- step sizes ---- */

static uint64_t site_hash(const char *s, int local) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (h ^ (uint64_t)(unsigned)local) * 0x9E3779B97F4A7C15ull;
}

static SiteStep *step_find(MhState *s, const char *addr, int local, bool create) {
  if (create && 2 * (s->sn + 1) > s->scap) {
    int cap = s->scap ? 2 * s->scap : 64;
    SiteStep *t = gc_alloc(sizeof(SiteStep) * (size_t)cap);
    for (int i = 0; i < s->scap; i++) {
      if (!s->steps[i].addr) continue;
      size_t j = site_hash(s->steps[i].addr, s->steps[i].local) & (size_t)(cap - 1);
      while (t[j].addr) j = (j + 1) & (size_t)(cap - 1);
      t[j] = s->steps[i];
    }
    s->steps = t;
    s->scap = cap;
  }
  if (s->scap == 0) return NULL;
  size_t mask = (size_t)s->scap - 1;
  for (size_t j = site_hash(addr, local) & mask;; j = (j + 1) & mask) {
    SiteStep *e = &s->steps[j];
    if (!e->addr) {
      if (!create) return NULL;
      e->addr = addr;
      e->local = local;
      e->log_sigma = 0; /* unit scale: priors are O(1) on the unconstrained scale */
      s->sn++;
      return e;
    }
    if (e->local == local && strcmp(e->addr, addr) == 0) return e;
  }
}

/* Robbins–Monro on log sigma with gain n^-0.6: fast early, settling later. */
static void step_adapt(SiteStep *e, double accept_prob) {
  e->n++;
  e->log_sigma += pow((double)e->n, -0.6) * (accept_prob - MH_TARGET_ACCEPT);
  if (e->log_sigma > 10) e->log_sigma = 10;
  if (e->log_sigma < -20) e->log_sigma = -20;
}

/* ---- proposals (called by the trace handler at the target address) ---- */

static bool unit_random_walk(const DistCall *dc, const Proposal *p, Value *nv, Rng *r,
                             double *lq, char *err, size_t errsz) {
  int L = p->unit_len, m = tf_free_size(dc->con, L);
  if (L <= 0 || m < 0) {
    snprintf(err, errsz, "mh: cannot propose for a constrained value of %d elements", L);
    return false;
  }
  double *x = gc_alloc_atomic(sizeof(double) * (size_t)L);
  double *u = gc_alloc_atomic(sizeof(double) * (size_t)(m > L ? m : L));
  size_t base = (size_t)p->local * (size_t)L;
  for (int i = 0; i < L; i++) x[i] = trace_value_get(*nv, base + (size_t)i);
  if (!tf_unconstrain(dc->con, dc->lower, dc->upper, L, x, u)) {
    snprintf(err, errsz, "mh: current value is outside its constraint");
    return false;
  }
  double lj_old = tf_constrain(dc->con, dc->lower, dc->upper, L, u, x);
  for (int i = 0; i < m; i++) u[i] += p->sigma * rng_normal(r);
  double lj_new = tf_constrain(dc->con, dc->lower, dc->upper, L, u, x);
  for (int i = 0; i < L; i++) trace_value_set(nv, base + (size_t)i, x[i]);
  /* projecting a Gaussian step onto the sphere is symmetric: no Jacobian */
  *lq = dc->con == CON_UNIT_VECTOR ? 0 : lj_new - lj_old;
  return true;
}

static bool elem_random_walk(const DistCall *dc, const Proposal *p, Value *nv, Rng *r,
                             double *lq, char *err, size_t errsz) {
  double x = trace_value_get(*nv, (size_t)p->local);
  if (dc->con == CON_NONE) {
    trace_value_set(nv, (size_t)p->local, x + p->sigma * rng_normal(r));
    *lq = 0;
    return true;
  }
  double u, xn;
  if (!tf_unconstrain(dc->con, dc->lower, dc->upper, 1, &x, &u)) {
    snprintf(err, errsz, "mh: current value %g is outside its bounds", x);
    return false;
  }
  double lj_old = tf_constrain(dc->con, dc->lower, dc->upper, 1, &u, &xn);
  u += p->sigma * rng_normal(r);
  double lj_new = tf_constrain(dc->con, dc->lower, dc->upper, 1, &u, &xn);
  trace_value_set(nv, (size_t)p->local, xn);
  *lq = lj_new - lj_old;
  return true;
}

/* Replace the draw unit holding the site by a fresh one from the DistCall;
 * units are independent given the parameters, so the proposal ratio is the
 * ratio of the whole choice's densities. */
static bool prior_unit(const DistCall *dc, const Proposal *p, Value old, Value *nv, Rng *r,
                       double *lq, char *err, size_t errsz) {
  Value fresh;
  if (!dist_call_rng(dc, r, &fresh, err, errsz)) return false;
  int L = p->unit_len > 0 ? p->unit_len : 1;
  size_t unit = p->structured ? (size_t)p->local : (size_t)p->local / (size_t)L;
  for (size_t i = unit * (size_t)L; i < (unit + 1) * (size_t)L; i++)
    trace_value_set(nv, i, trace_value_get(fresh, i));
  double lo, ln;
  if (!dist_call_lpdf(dc, old, &lo, err, errsz) || !dist_call_lpdf(dc, *nv, &ln, err, errsz))
    return false;
  *lq = lo - ln;
  return true;
}

static bool mh_propose_fn(void *ctx, const DistCall *dc, Value old, Rng *r, Value *out,
                          double *lq, char *err, size_t errsz) {
  const Proposal *p = ctx;
  if (p->k == K_PRIOR_WHOLE) {
    double lo, ln;
    if (!dist_call_rng(dc, r, out, err, errsz) || !dist_call_lpdf(dc, old, &lo, err, errsz) ||
        !dist_call_lpdf(dc, *out, &ln, err, errsz))
      return false;
    *lq = lo - ln;
    return true;
  }
  *out = val_copy(old);
  Value *nv = out;
  switch (p->k) {
  case K_RW_ELEM: return elem_random_walk(dc, p, nv, r, lq, err, errsz);
  case K_RW_UNIT: return unit_random_walk(dc, p, nv, r, lq, err, errsz);
  case K_PRIOR_UNIT: return prior_unit(dc, p, old, nv, r, lq, err, errsz);
  case K_UNIFORM: {
    /* uniform over the other values of a small support: symmetric */
    double x = trace_value_get(*nv, (size_t)p->local);
    int64_t lo = (int64_t)p->lower, hi = (int64_t)p->upper;
    if (!(x >= p->lower && x <= p->upper)) return prior_unit(dc, p, old, nv, r, lq, err, errsz);
    int64_t y = rng_int(r, lo, hi - 1);
    if (y >= (int64_t)x) y++;
    trace_value_set(nv, (size_t)p->local, (double)y);
    *lq = 0;
    return true;
  }
  default: return false;
  }
}

/* Pick the kernel for a site of choice c. */
static void choose_kernel(MhState *s, Rng *r, const TraceChoice *c, int local, Proposal *p) {
  memset(p, 0, sizeof *p);
  p->local = local;
  p->unit_len = c->unit_len;
  p->structured = c->structured;
  p->lower = c->lower;
  p->upper = c->upper;
  if (c->type.base == TY_STRING) {
    p->k = K_PRIOR_WHOLE;
  } else if (c->continuous) {
    /* an improper prior (flat) cannot propose: random walk only */
    bool prior_ok = !c->fam->improper;
    if (rng_uniform(r) < MH_PRIOR_PROB && prior_ok) p->k = K_PRIOR_UNIT;
    else p->k = c->structured ? K_RW_UNIT : K_RW_ELEM;
  } else {
    double k = c->upper - c->lower + 1;
    bool small = isfinite(k) && k >= 2 && k <= MH_SMALL_SUPPORT;
    p->k = small && rng_uniform(r) < 0.5 ? K_UNIFORM : K_PRIOR_UNIT;
  }
  if (p->k == K_RW_ELEM || p->k == K_RW_UNIT) {
    SiteStep *e = step_find(s, c->addr, local, false);
    p->sigma = exp(e ? e->log_sigma : 0);
  }
}

void mh_mover_site_kernel(MhMover *m, Rng *r, const TraceChoice *c, int local, MhSiteKernel *k) {
  choose_kernel((MhState *)m, r, c, local, k);
}

bool mh_site_propose(const MhSiteKernel *k, const DistCall *dc, Value old, Rng *r, Value *out,
                     double *lq, char *err, size_t errsz) {
  return mh_propose_fn((void *)k, dc, old, r, out, lq, err, errsz);
}

bool mh_site_adapts(const MhSiteKernel *k) { return k->k == K_RW_ELEM || k->k == K_RW_UNIT; }

/* The sites a sweep draws from: all but the skipped choices'. */
static long eligible_sites(const MhState *s, const Trace *t) {
  if (!s->skip) return t->nsites;
  long n = 0;
  for (int i = 0; i < t->n; i++)
    if (!s->skip(s->skip_ctx, t->c[i].addr)) n += t->c[i].nsites;
  return n;
}

/* Site number `site` among the eligible ones of t. */
static int eligible_site(const MhState *s, const Trace *t, long site, int *local) {
  if (!s->skip) return trace_site(t, site, local);
  for (int i = 0; i < t->n; i++) {
    if (s->skip(s->skip_ctx, t->c[i].addr)) continue;
    if (site < t->c[i].nsites) {
      *local = (int)site;
      return i;
    }
    site -= t->c[i].nsites;
  }
  *local = 0;
  return 0;
}

/* One proposal from the current trace, drawn from stream r. When warmup, a
 * random-walk site's scale adapts to the move's acceptance probability, at
 * once, or (rec != NULL) later: the move is recorded in *rec for
 * mh_mover_adapt_round, so that moves made in one round all use the same scales.
 * False only for internal errors. */
static bool mh_one(MhState *s, Rng *r, bool warmup, MhMoveRec *rec, bool *accepted,
                   Diag *fatal) {
  Trace *cur = s->cur;
  if (rec) rec->addr = NULL;
  int local;
  const TraceChoice *c;
  if (s->only) {
    c = trace_find(cur, s->only);
    if (!c || c->nsites <= 0) {
      *accepted = false;
      return true;
    }
    local = (int)rng_int(r, 0, c->nsites - 1);
  } else {
    long site = (long)rng_int(r, 0, eligible_sites(s, cur) - 1);
    c = &cur->c[eligible_site(s, cur, site, &local)];
  }
  Proposal p;
  choose_kernel(s, r, c, local, &p);
  TraceHandler th;
  trace_handler_init(&th, r, cur, c->addr, mh_propose_fn, &p);
  Diag d;
  diag_init(&d);
  InterpState *st = NULL;
  bool done = true;
  Trace *nt;
  if (s->stop_events > 0 || s->gen) {
    th.stop_events = s->stop_events;
    if (s->stop_scale > 0) th.stop_scale = s->stop_scale;
    nt = trace_run_until(s->in, &th, s->model_seed, (uint64_t)s->chain, s->gen, &st, &done, &d);
  } else {
    nt = trace_run(s->in, &th, s->model_seed, (uint64_t)s->chain, false, &st, &d);
  }
  double a = -INFINITY;
  if (!nt) {
    /* a proposed value the program rejects (failed parameter check,
       reject(), ...) is a rejected move; a bug in ppl is not */
    if (d.code == DIAG_INTERNAL) {
      *fatal = d;
      return false;
    }
  } else if (th.target_seen) {
    a = trace_mh_log_accept(cur, nt, c->addr, th.log_q_ratio, th.fresh_lp);
    const TraceChoice *nc = s->only ? trace_find(nt, s->only) : NULL;
    if (nc && a > -INFINITY) /* the site was chosen within this choice, not the trace */
      a += log((double)nt->nsites) - log((double)cur->nsites) + log((double)c->nsites) -
           log((double)nc->nsites);
    if (!s->only && s->skip && a > -INFINITY) { /* the site was one of the eligible ones */
      long en = eligible_sites(s, nt);
      a = en > 0 ? a + log((double)nt->nsites) - log((double)cur->nsites) +
                       log((double)eligible_sites(s, cur)) - log((double)en)
                 : -INFINITY;
    }
  }
  *accepted = log(rng_uniform(r)) < a;
  if (*accepted) {
    s->cur = nt;
    s->cur_st = st;
    s->cur_done = done;
    s->cur_stop_lp = th.stop_lp;
  }
  if (warmup && (p.k == K_RW_ELEM || p.k == K_RW_UNIT)) {
    double ap = a >= 0 ? 1 : exp(a);
    if (rec) {
      rec->addr = c->addr;
      rec->local = local;
      rec->accept_prob = ap;
    } else {
      step_adapt(step_find(s, c->addr, local, true), ap);
    }
  }
  return true;
}

/* ---- block proposals ---- */

bool mh_block_move(const Interp *in, const TraceBlockProposal *bp, Rng *rng, uint64_t model_seed,
                   uint64_t stream, Trace **cur, InterpState **st, bool *accepted,
                   double *accept_prob, Diag *fatal) {
  *accepted = false;
  *accept_prob = 0;
  TraceBlock b = {0};
  char err[512] = "";
  if (!bp->propose(bp->ctx, *cur, rng, &b, err, sizeof err)) {
    diag_error(fatal, DIAG_RUNTIME, (SrcPos){0}, "%s", err);
    return false;
  }
  if (b.n == 0) return true;
  TraceHandler th;
  trace_handler_init(&th, rng, *cur, NULL, NULL, NULL);
  if (!trace_handler_set_block(&th, &b, err, sizeof err)) {
    diag_error(fatal, DIAG_INTERNAL, (SrcPos){0}, "%s", err);
    return false;
  }
  Diag d;
  diag_init(&d);
  InterpState *nst = NULL;
  Trace *nt = trace_run(in, &th, model_seed, stream, false, &nst, &d);
  double a = -INFINITY;
  if (!nt) {
    if (d.code == DIAG_INTERNAL) { /* a run the program rejects is a rejected move */
      *fatal = d;
      return false;
    }
  } else if (!bp->check || bp->check(bp->ctx, *cur, nt, &b)) {
    a = trace_block_log_accept(*cur, nt, &b, th.block_seen, th.fresh_lp);
  }
  *accept_prob = a >= 0 ? 1 : exp(a);
  *accepted = log(rng_uniform(rng)) < a;
  if (*accepted) {
    *cur = nt;
    *st = nst;
  }
  return true;
}

/* The choices the random walk moves: continuous, scalar bounds only. */
static bool rw_member(const TraceChoice *c) {
  return c->continuous && !c->structured && c->type.base != TY_STRING;
}

static bool rw_propose(void *ctx, const Trace *cur, Rng *r, TraceBlock *b, char *err,
                       size_t errsz) {
  const MhBlockRw *rw = ctx;
  int n = 0;
  long elems = 0;
  for (int i = 0; i < cur->n; i++)
    if (rw_member(&cur->c[i])) {
      n++;
      elems += cur->c[i].numel;
    }
  b->n = n;
  b->addrs = gc_alloc(sizeof(char *) * (size_t)(n + 1));
  b->vals = gc_alloc(sizeof(Value) * (size_t)(n + 1));
  b->log_q_ratio = 0;
  if (elems == 0) {
    b->n = 0;
    return true;
  }
  double sigma = exp(rw->log_sigma) * 2.38 / sqrt((double)elems);
  int k = 0;
  for (int i = 0; i < cur->n; i++) {
    const TraceChoice *c = &cur->c[i];
    if (!rw_member(c)) continue;
    Value v = val_copy(c->val);
    for (int e = 0; e < c->numel; e++) {
      double x = trace_value_get(v, (size_t)e), u, xn;
      if (!tf_unconstrain(c->con, c->lower, c->upper, 1, &x, &u)) {
        snprintf(err, errsz, "mh: current value %g of '%s' is outside its bounds", x, c->addr);
        return false;
      }
      double lj_old = tf_constrain(c->con, c->lower, c->upper, 1, &u, &xn);
      u += sigma * rng_normal(r);
      double lj_new = tf_constrain(c->con, c->lower, c->upper, 1, &u, &xn);
      trace_value_set(&v, (size_t)e, xn);
      b->log_q_ratio += lj_new - lj_old;
    }
    b->addrs[k] = c->addr;
    b->vals[k] = v;
    k++;
  }
  return true;
}

/* Same moved choices, in the same order, with the same bounds: then the
   reverse move is this proposal with the same transforms. */
static bool rw_check(void *ctx, const Trace *old, const Trace *new_, const TraceBlock *b) {
  (void)ctx;
  int k = 0;
  for (int i = 0; i < new_->n; i++) {
    const TraceChoice *nc = &new_->c[i];
    if (!rw_member(nc)) continue;
    if (k >= b->n || strcmp(nc->addr, b->addrs[k]) != 0) return false;
    const TraceChoice *oc = trace_find(old, nc->addr);
    if (!oc || oc->con != nc->con || oc->lower != nc->lower || oc->upper != nc->upper ||
        oc->numel != nc->numel)
      return false;
    k++;
  }
  return k == b->n;
}

TraceBlockProposal mh_block_rw(MhBlockRw *rw) {
  TraceBlockProposal p = {rw_propose, rw_check, rw};
  return p;
}

/* ---- initial values by name (--init FILE) ---- */

/* The prior run that starts a chain, except that the latents the file names
   take its values: each is handed to the trace handler as a previous value
   to reuse, read with the latent's shape and checked against its constraint
   by the source, whose messages name the file and the variable. */
typedef struct InitHandler {
  TraceHandler th; /* first: an InitHandler* is a Handler* */
  HandlerResult (*sample)(Handler *, const char *, const DistCall *, Value *, SrcPos, Diag *);
  DataSource *init;
} InitHandler;

static HandlerResult init_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                 SrcPos pos, Diag *d) {
  InitHandler *ih = (InitHandler *)h;
  if (!ih->init->has(ih->init, addr)) return ih->sample(h, addr, dc, out, pos, d);
  int64_t sizes[8];
  for (int i = 0; i < dc->nsizes; i++) sizes[i] = dc->sizes[i];
  Value v;
  if (!ih->init->get(ih->init, addr, dc->type, dc->nsizes, sizes, NULL, dc->con, dc->lower,
                     dc->upper, &v, d))
    return HR_ERROR;
  ih->th.prev = trace_one_choice(addr, dc, v);
  HandlerResult r = ih->sample(h, addr, dc, out, pos, d);
  ih->th.prev = NULL;
  return r;
}

/* ---- the engine ---- */

static void *mh_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  MhState *s = gc_alloc(sizeof(MhState));
  s->in = in;
  s->prog = interp_program(in);
  s->chain = chain;
  rng_seed(&s->rng, o->seed, (uint64_t)chain);
  s->model_seed = o->seed ^ 0x6d68u; /* distinct from the engine's own stream */
  s->has_gen = s->prog->gen_b.n > 0;
  s->block = engine_opt_bool(o, "block");
  char reason[sizeof d->msg] = "";
  for (int tries = 0; tries < MH_INIT_TRIES; tries++) {
    InitHandler ih;
    TraceHandler *th = &ih.th;
    trace_handler_init(th, &s->rng, NULL, NULL, NULL, NULL);
    if (o->init_values) {
      ih.sample = th->h.sample;
      ih.init = o->init_values;
      th->h.sample = init_sample;
    }
    Diag rd;
    diag_init(&rd);
    InterpState *st = NULL;
    Trace *t = trace_run(in, th, s->model_seed, (uint64_t)chain, false, &st, &rd);
    if (!t && rd.code == DIAG_DATA) { /* a value in the file: no retry helps */
      *d = rd;
      return NULL;
    }
    if (!t) {
      snprintf(reason, sizeof reason, "%s", rd.msg);
      continue;
    }
    if (!(t->logprior > -INFINITY)) {
      snprintf(reason, sizeof reason, "the log prior density is %g", t->logprior);
      continue;
    }
    if (!(t->loglik > -INFINITY)) {
      snprintf(reason, sizeof reason, "the log-likelihood is %g", t->loglik);
      continue;
    }
    s->cur = t;
    s->cur_st = st;
    s->sweep = t->nsites;
    return s;
  }
  diag_error(d, DIAG_RUNTIME, (SrcPos){0},
             "could not find an initial point with finite log density after %d tries: %s",
             MH_INIT_TRIES, reason);
  return NULL;
}

static bool mh_step(void *state, bool warmup, Draw *out, Diag *d) {
  MhState *s = state;
  long n = s->sweep, acc = 0;
  if (warmup) {
    n = eligible_sites(s, s->cur);
    s->sites_sum += (double)n;
    s->sites_n++;
    s->sweep = lround(s->sites_sum / (double)s->sites_n);
    if (s->sweep < 1 && n > 0) s->sweep = 1;
  }
  for (long i = 0; i < n && eligible_sites(s, s->cur) > 0; i++) {
    bool ok;
    if (!mh_one(s, &s->rng, warmup, NULL, &ok, d)) return false;
    acc += ok;
  }
  if (s->block) {
    TraceBlockProposal bp = mh_block_rw(&s->rw);
    bool ok;
    double pa;
    if (!mh_block_move(s->in, &bp, &s->rng, s->model_seed, (uint64_t)s->chain, &s->cur,
                       &s->cur_st, &ok, &pa, d))
      return false;
    if (warmup) { /* Robbins-Monro, as the single-site scales */
      s->block_n++;
      s->rw.log_sigma += pow((double)s->block_n, -0.6) * (pa - MH_BLOCK_ACCEPT);
      if (s->rw.log_sigma > 10) s->rw.log_sigma = 10;
      if (s->rw.log_sigma < -20) s->rw.log_sigma = -20;
    }
  }
  InterpState *st = s->cur_st;
  if (s->has_gen) {
    /* replay the accepted trace exactly, this time with the generated block */
    TraceHandler th;
    trace_handler_init(&th, &s->rng, s->cur, NULL, NULL, NULL);
    if (!trace_run(s->in, &th, rng_u64(&s->rng), (uint64_t)s->chain, true, &st, d))
      return false;
  }
  engine_draw_outputs(out, st);
  out->lp = trace_logjoint(s->cur);
  out->log_weight = 0;
  out->stats[0] = n > 0 ? (double)acc / (double)n : 1.0;
  return true;
}

/* ---- moves for particle engines ---- */

MhMover *mh_mover_new(const Interp *in, uint64_t model_seed, uint64_t stream, uint64_t seed,
                      bool gen) {
  MhState *s = gc_alloc(sizeof(MhState));
  s->in = in;
  s->prog = interp_program(in);
  s->chain = (int)stream;
  rng_seed(&s->rng, seed, stream);
  s->model_seed = model_seed;
  s->gen = gen;
  s->stop_scale = 1;
  return (MhMover *)s;
}

bool mh_mover_move(MhMover *m, Rng *rng, Trace **cur, InterpState **st, long stop_events,
                   bool *done, bool *accepted, MhMoveRec *rec, Diag *fatal) {
  MhState *s = (MhState *)m;
  *accepted = false;
  if (rec) rec->addr = NULL;
  if ((*cur)->nsites <= 0) return true;
  s->cur = *cur;
  s->cur_st = *st;
  s->cur_done = *done;
  s->stop_events = stop_events;
  s->only = NULL;
  /* step sizes adapt from earlier moves only: each move is a valid MH move */
  if (!mh_one(s, rng ? rng : &s->rng, true, rec, accepted, fatal)) return false;
  *cur = s->cur;
  *st = s->cur_st;
  *done = s->cur_done;
  return true;
}

/* One update per site from the round's mean acceptance probability, with
 * gain 1 as smc's block factor (the mean of many moves is not the single
 * noisy move Robbins-Monro's decreasing gain is for; applying a round's
 * hundreds of records one by one, all made at the same scale, would overshoot
 * by their number). */
void mh_mover_adapt_round(MhMover *m, const MhMoveRec *rec, int n) {
  MhState *s = (MhState *)m;
  for (int i = 0; i < n; i++) {
    if (!rec[i].addr) continue;
    SiteStep *e = step_find(s, rec[i].addr, rec[i].local, true);
    e->round_sum += rec[i].accept_prob;
    e->round_n++;
  }
  for (int i = 0; i < n; i++) { /* in record order: the same bytes every time */
    if (!rec[i].addr) continue;
    SiteStep *e = step_find(s, rec[i].addr, rec[i].local, false);
    if (e->round_n == 0) continue;
    e->log_sigma += e->round_sum / (double)e->round_n - MH_TARGET_ACCEPT;
    if (e->log_sigma > 10) e->log_sigma = 10;
    if (e->log_sigma < -20) e->log_sigma = -20;
    e->n += e->round_n;
    e->round_sum = 0;
    e->round_n = 0;
  }
}

MhMover *mh_mover_worker(const MhMover *m) {
  MhState *w = gc_alloc(sizeof(MhState));
  *w = *(const MhState *)m;
  return (MhMover *)w;
}

void mh_mover_sync(MhMover *worker, const MhMover *m) {
  MhState *w = (MhState *)worker;
  const MhState *s = (const MhState *)m;
  w->steps = s->steps;
  w->scap = s->scap;
  w->sn = s->sn;
  w->stop_scale = s->stop_scale;
}

void mh_mover_set_stop_scale(MhMover *m, double scale) { ((MhState *)m)->stop_scale = scale; }

double mh_mover_stop_lp(const MhMover *m) { return ((const MhState *)m)->cur_stop_lp; }

bool mh_mover_move_at(MhMover *m, const char *addr, bool adapt, Trace **cur, InterpState **st,
                      bool *accepted, Diag *fatal) {
  MhState *s = (MhState *)m;
  *accepted = false;
  s->cur = *cur;
  s->cur_st = *st;
  s->cur_done = true;
  s->stop_events = 0;
  s->only = addr;
  bool ok = mh_one(s, &s->rng, adapt, NULL, accepted, fatal);
  s->only = NULL;
  if (!ok) return false;
  *cur = s->cur;
  *st = s->cur_st;
  return true;
}

/* Engine lmh composes engine mh's sweeps with its block moves on one chain
   state: it reads and replaces the state's current trace between them. */
MhMover *mh_mover_of_state(void *mh_state) { return mh_state; }

void mh_mover_current(const MhMover *m, Trace **cur, InterpState **st, uint64_t *model_seed) {
  const MhState *s = (const MhState *)m;
  *cur = s->cur;
  *st = s->cur_st;
  if (model_seed) *model_seed = s->model_seed;
}

void mh_mover_set_skip(MhMover *m, bool (*skip)(void *ctx, const char *addr), void *ctx) {
  MhState *s = (MhState *)m;
  s->skip = skip;
  s->skip_ctx = ctx;
}

void mh_mover_set_current(MhMover *m, Trace *cur, InterpState *st) {
  MhState *s = (MhState *)m;
  s->cur = cur;
  s->cur_st = st;
}

static void mh_free(void *state) { (void)state; /* GC memory */ }

static const OptSpec mh_options[] = {
    {.name = "block", .type = OPT_BOOL, .def = "false",
     .help = "after each sweep, one joint random-walk move over all continuous choices, its "
             "scale adapted in warmup"},
    OPT_END,
};

const EngineVT engine_mh = {
    .name = "mh",
    .summary = "single-site Metropolis-Hastings over the trace; works for every program",
    .nstats = 1,
    .stat_names = {"accept_stat__"},
    .random_walk = true,
    .weighted = false,
    .uses_warmup = true,
    .traits = ENGINE_DISCRETE | ENGINE_DYNAMIC | ENGINE_IMPROPER | ENGINE_INITS,
    .options = {mh_options},
    .init = mh_init,
    .step = mh_step,
    .free = mh_free,
};
