/* trace.c — traces of latent choices and the handler that records and replays
 * them.  One handler serves every trace-based engine: with no previous trace it
 * simulates from the prior; with one it reuses every still-valid value (same
 * family, same shape, inside the current support) and draws the rest fresh;
 * at a designated address it asks a proposal function for the new value.  That
 * is exactly what lightweight MH needs for programs whose structure changes
 * from run to run. */
#include "trace.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- values by shape ---- */

static int shape_extra(Type t) {
  switch (t.base) {
  case TY_VECTOR:
  case TY_ROWVEC: return 1;
  case TY_MATRIX: return 2;
  default: return 0;
  }
}

static Value scalar_zero(Type t) {
  switch (t.base) {
  case TY_INT: return val_int(0);
  case TY_BOOL: return val_bool(false);
  case TY_STRING: return val_str("");
  default: return val_real(0);
  }
}

static Value value_new_at(Type t, int dim, int nsizes, const int *sizes) {
  if (dim < t.ndims) {
    int n = dim < nsizes && sizes[dim] > 0 ? sizes[dim] : 0;
    Value a = val_arr(n);
    for (int i = 0; i < n; i++) a.a->e[i] = value_new_at(t, dim + 1, nsizes, sizes);
    return a;
  }
  int r = dim < nsizes && sizes[dim] > 0 ? sizes[dim] : 0;
  int c = dim + 1 < nsizes && sizes[dim + 1] > 0 ? sizes[dim + 1] : 0;
  switch (t.base) {
  case TY_VECTOR: return val_vec(r);
  case TY_ROWVEC: return val_rowvec(r);
  case TY_MATRIX: return val_mat(r, c);
  default: return scalar_zero(t);
  }
}

/* A square matrix type (cholesky_factor_corr[K], cov_matrix[K]) may come with
 * one size for both sides. */
static int full_sizes(Type t, int nsizes, const int *sizes, int *out) {
  int n = nsizes < 7 ? nsizes : 7;
  memcpy(out, sizes, sizeof(int) * (size_t)n);
  if (t.base == TY_MATRIX && n == t.ndims + 1 && n > 0) {
    out[n] = out[n - 1];
    n++;
  }
  return n;
}

Value trace_value_new(Type t, int nsizes, const int *sizes) {
  int full[8];
  int n = full_sizes(t, nsizes, sizes, full);
  return value_new_at(t, 0, n, full);
}

static bool shape_at(Value v, Type t, int dim, int nsizes, const int *sizes) {
  if (dim < t.ndims) {
    if (v.k != V_ARR || dim >= nsizes || v.a->n != sizes[dim]) return false;
    for (int i = 0; i < v.a->n; i++)
      if (!shape_at(v.a->e[i], t, dim + 1, nsizes, sizes)) return false;
    return true;
  }
  switch (t.base) {
  case TY_INT: return v.k == V_INT;
  case TY_REAL: return v.k == V_REAL;
  case TY_BOOL: return v.k == V_BOOL;
  case TY_STRING: return v.k == V_STR;
  case TY_VECTOR: return v.k == V_VEC && dim < nsizes && v.t->rows == sizes[dim];
  case TY_ROWVEC: return v.k == V_ROWVEC && dim < nsizes && v.t->cols == sizes[dim];
  case TY_MATRIX:
    return v.k == V_MAT && dim + 1 < nsizes && v.t->rows == sizes[dim] &&
           v.t->cols == sizes[dim + 1];
  default: return false;
  }
}

bool trace_value_has_shape(Value v, Type t, int nsizes, const int *sizes) {
  int full[8];
  int n = full_sizes(t, nsizes, sizes, full);
  if (n != t.ndims + shape_extra(t)) return false;
  return shape_at(v, t, 0, n, full);
}

/* Walks v in val_flatten order to element e; returns the slot's container. */
static bool elem_locate(Value *v, size_t *e, Value **scalar, double **d) {
  switch (v->k) {
  case V_ARR:
    for (int i = 0; i < v->a->n; i++) {
      Value *c = &v->a->e[i];
      size_t n = val_numel(*c);
      if (*e < n) return elem_locate(c, e, scalar, d);
      *e -= n;
    }
    return false;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT:
    if (*e >= (size_t)v->t->rows * (size_t)v->t->cols) return false;
    *d = &v->t->d[*e];
    return true;
  case V_INT:
  case V_REAL:
  case V_BOOL:
    if (*e != 0) return false;
    *scalar = v;
    return true;
  default:
    return false;
  }
}

double trace_value_get(Value v, size_t e) {
  Value *s = NULL;
  double *d = NULL;
  if (!elem_locate(&v, &e, &s, &d)) return NAN;
  return d ? *d : val_as_real(*s);
}

void trace_value_set(Value *v, size_t e, double x) {
  Value *s = NULL;
  double *d = NULL;
  if (!elem_locate(v, &e, &s, &d)) return;
  if (d) *d = x;
  else if (s->k == V_INT) s->i = (int64_t)x;
  else if (s->k == V_BOOL) s->b = x != 0;
  else s->r = x;
}

/* ---- traces ---- */

static uint64_t addr_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

const TraceChoice *trace_find(const Trace *t, const char *addr) {
  if (!t || t->hcap == 0) return NULL;
  size_t mask = (size_t)t->hcap - 1;
  for (size_t i = addr_hash(addr) & mask;; i = (i + 1) & mask) {
    int k = t->hidx[i];
    if (k == 0) return NULL;
    if (strcmp(t->c[k - 1].addr, addr) == 0) return &t->c[k - 1];
  }
}

int trace_site(const Trace *t, long s, int *local) {
  int lo = 0, hi = t->n - 1;
  while (lo < hi) { /* last choice with site_start <= s */
    int mid = (lo + hi + 1) / 2;
    if (t->site_start[mid] <= s) lo = mid;
    else hi = mid - 1;
  }
  *local = (int)(s - t->site_start[lo]);
  return lo;
}

int trace_choice_sites(const TraceChoice *c) {
  if (c->type.base == TY_STRING) return 1;
  if (c->structured) return c->unit_len > 0 ? c->numel / c->unit_len : 0;
  return c->numel;
}

double trace_stale_lp(const Trace *old, const Trace *new_, const char *target) {
  double r = 0;
  for (int i = 0; i < old->n; i++) {
    const TraceChoice *oc = &old->c[i];
    if (target && strcmp(oc->addr, target) == 0) continue;
    const TraceChoice *nc = trace_find(new_, oc->addr);
    if (!nc || nc->fresh) r += oc->lp;
  }
  return r;
}

static bool same_shape(const TraceChoice *a, const TraceChoice *b) {
  return a->fam == b->fam && ty_eq(a->type, b->type) && a->nsizes == b->nsizes &&
         memcmp(a->sizes, b->sizes, sizeof(int) * (size_t)a->nsizes) == 0;
}

/* Would replaying from the new trace in the old one's context reuse nc's
 * value?  Then the reverse move cannot regenerate the old value there.
 * Support is judged by the old choice's effective bounds, which is exact for
 * scalar families; other supports do not depend on the parameters. */
static bool reverse_would_reuse(const TraceChoice *oc, const TraceChoice *nc) {
  if (!same_shape(oc, nc)) return false;
  if (nc->type.base == TY_STRING || nc->structured) return true;
  for (int e = 0; e < nc->numel; e++) {
    double x = trace_value_get(nc->val, (size_t)e);
    if (!(x >= oc->lower && x <= oc->upper)) return false;
  }
  return true;
}

/* Would the reverse move reuse one of new_'s fresh choices instead of
   regenerating the old value there? */
static bool irreversible(const Trace *old, const Trace *new_) {
  for (int i = 0; i < new_->n; i++) {
    const TraceChoice *nc = &new_->c[i];
    if (!nc->fresh) continue;
    const TraceChoice *oc = trace_find(old, nc->addr);
    if (oc && reverse_would_reuse(oc, nc)) return true;
  }
  return false;
}

double trace_block_log_accept(const Trace *old, const Trace *new_, const TraceBlock *b,
                              int block_seen, double fresh_lp) {
  double l1 = trace_logjoint(new_);
  if (!(l1 > -INFINITY) || block_seen != b->n || irreversible(old, new_)) return -INFINITY;
  double a = l1 - trace_logjoint(old) + b->log_q_ratio + trace_stale_lp(old, new_, NULL) -
             fresh_lp;
  return isnan(a) ? -INFINITY : a;
}

double trace_mh_log_accept(const Trace *old, const Trace *new_, const char *target,
                           double log_q_ratio, double fresh_lp) {
  double l1 = trace_logjoint(new_);
  if (!(l1 > -INFINITY) || new_->nsites <= 0 || old->nsites <= 0) return -INFINITY;
  if (irreversible(old, new_)) return -INFINITY;
  double a = l1 - trace_logjoint(old) + log_q_ratio + log((double)old->nsites) -
             log((double)new_->nsites) + trace_stale_lp(old, new_, target) - fresh_lp;
  return isnan(a) ? -INFINITY : a;
}

/* ---- the handler ---- */

static bool is_structured(ConKind c) {
  return c == CON_SIMPLEX || c == CON_ORDERED || c == CON_POS_ORDERED ||
         c == CON_UNIT_VECTOR || c == CON_CHOL_CORR || c == CON_COV || c == CON_CORR ||
         c == CON_CHOL_COV;
}

/* Scalars in the innermost non-array value: one draw of a vector family, or
 * one vector under a structured constraint (ordered[K] x ~ normal(...)). */
static int unit_len_of(const DistFamily *f, bool structured, Value v) {
  Type vt = f->vtype;
  if (!structured && (vt.ndims != 0 || (vt.base != TY_VECTOR && vt.base != TY_ROWVEC &&
                                        vt.base != TY_MATRIX)))
    return 1;
  while (v.k == V_ARR && v.a->n > 0) v = v.a->e[0];
  if (v.k == V_VEC || v.k == V_ROWVEC || v.k == V_MAT) return v.t->rows * v.t->cols;
  return 1;
}

static void choice_meta(TraceChoice *c, const char *addr, const DistCall *dc) {
  c->addr = addr;
  c->fam = dc->fam;
  c->continuous = !dc->fam->discrete && dc->fam->vtype.base != TY_STRING;
  c->con = dc->con;
  c->structured = is_structured(dc->con);
  c->lower = dc->lower;
  c->upper = dc->upper;
  /* categorical families are whole-value (vector parameter), so dist.c has no
     scalar support to report; the size of the probability vector is it */
  if (dc->fam->discrete && isinf(c->lower) && isinf(c->upper) && dc->np == 1 &&
      strncmp(dc->fam->name, "categorical", 11) == 0 &&
      (dc->p[0].k == V_VEC || dc->p[0].k == V_ROWVEC)) {
    c->lower = 1;
    c->upper = dc->p[0].t->rows * dc->p[0].t->cols;
  }
  c->type = dc->type;
  c->nsizes = dc->nsizes < 8 ? dc->nsizes : 8;
  memcpy(c->sizes, dc->sizes, sizeof(int) * (size_t)c->nsizes);
}

static TraceChoice *push_choice(TraceHandler *th) {
  Trace *t = th->tr;
  if (t->n == th->cap) {
    int cap = th->cap ? 2 * th->cap : 16;
    TraceChoice *c = gc_alloc(sizeof(TraceChoice) * (size_t)cap);
    if (t->n) memcpy(c, t->c, sizeof(TraceChoice) * (size_t)t->n);
    t->c = c;
    th->cap = cap;
  }
  TraceChoice *c = &t->c[t->n++];
  memset(c, 0, sizeof *c);
  return c;
}

static HandlerResult fail(Diag *d, SrcPos pos, const char *msg) {
  diag_error(d, DIAG_RUNTIME, pos, "%s", msg);
  return HR_ERROR;
}

static HandlerResult th_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                               SrcPos pos, Diag *d) {
  TraceHandler *th = (TraceHandler *)h;
  char err[512] = "";
  const TraceChoice *old = th->prev ? trace_find(th->prev, addr) : NULL;
  TraceChoice cur = {0};
  choice_meta(&cur, addr, dc);
  bool valid = old && same_shape(old, &cur);
  Value v = val_none();
  double lp = -INFINITY;
  bool fresh = true;
  if (th->target && !th->target_seen && strcmp(addr, th->target) == 0) {
    if (!valid || !th->propose)
      return fail(d, pos, "internal error: MH proposal site does not match the previous run");
    double lq = 0;
    if (!th->propose(th->propose_ctx, dc, old->val, th->rng, &v, &lq, err, sizeof err))
      return fail(d, pos, err);
    if (!dist_call_lpdf(dc, v, &lp, err, sizeof err)) return fail(d, pos, err);
    th->target_seen = true;
    th->log_q_ratio = lq;
    fresh = false;
  } else if (valid && th->block_at && th->block_at[old - th->prev->c] >= 0) {
    /* a block address: the proposed value (its shape is the old one's) */
    v = th->block->vals[th->block_at[old - th->prev->c]];
    if (!dist_call_lpdf(dc, v, &lp, err, sizeof err)) return fail(d, pos, err);
    th->block_seen++;
    fresh = false;
  } else if (valid) {
    if (!dist_call_lpdf(dc, old->val, &lp, err, sizeof err)) return fail(d, pos, err);
    if (lp > -INFINITY) { /* NaN and -inf: outside the current support */
      v = old->val;
      fresh = false;
    }
  }
  if (fresh) {
    /* an improper prior cannot be drawn from: start it where Stan would
       (uniform(-2, 2) on the unconstrained scale); only MCMC engines accept
       such programs (engine_check_proper) */
    bool ok = dc->fam->improper ? dist_call_init_value(dc, th->rng, &v, err, sizeof err)
                                : dist_call_rng(dc, th->rng, &v, err, sizeof err);
    if (!ok) return fail(d, pos, err);
    if (!dist_call_lpdf(dc, v, &lp, err, sizeof err)) return fail(d, pos, err);
    th->fresh_lp += lp;
  }
  TraceChoice *c = push_choice(th);
  *c = cur;
  c->val = v;
  c->lp = lp;
  c->fresh = fresh;
  c->numel = (int)val_numel(v);
  c->unit_len = unit_len_of(dc->fam, c->structured, v);
  c->nsites = trace_choice_sites(c);
  th->tr->logprior += lp;
  /* the interpreter owns what it is given; the trace keeps its own copy */
  *out = val_copy(v);
  return HR_CONTINUE;
}

/* An observe/factor event of log density lp; the run suspends at the stop
   event, whose density counts stop_scale times (tempered SMC targets). */
static HandlerResult th_event(TraceHandler *th, double lp) {
  if (++th->events == th->stop_events) {
    th->stop_lp = lp;
    th->tr->loglik += th->stop_scale == 1 ? lp : th->stop_scale * lp;
    return HR_SUSPEND;
  }
  th->tr->loglik += lp;
  return HR_CONTINUE;
}

static HandlerResult th_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  TraceHandler *th = (TraceHandler *)h;
  char err[512] = "";
  double lp;
  if (!dist_call_lpdf(dc, x, &lp, err, sizeof err)) return fail(d, pos, err);
  return th_event(th, lp);
}

static HandlerResult th_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  (void)pos;
  (void)d;
  return th_event((TraceHandler *)h, lw);
}

/* Simulated data (interp_load_data_sim): drawn from the observation's
   distribution and scored like an observation, so the trace's log joint is
   that of latents and data together. */
static HandlerResult th_simulate(Handler *h, const DistCall *dc, Value *out, SrcPos pos,
                                 Diag *d) {
  TraceHandler *th = (TraceHandler *)h;
  char err[512] = "";
  double lp;
  if (!dist_call_rng(dc, th->rng, out, err, sizeof err)) return fail(d, pos, err);
  if (!dist_call_lpdf(dc, *out, &lp, err, sizeof err)) return fail(d, pos, err);
  return th_event(th, lp);
}

void trace_handler_init(TraceHandler *th, Rng *rng, const Trace *prev, const char *target,
                        TraceProposeFn propose, void *propose_ctx) {
  memset(th, 0, sizeof *th);
  th->h.sample = th_sample;
  th->h.observe = th_observe;
  th->h.factor = th_factor;
  th->h.simulate = th_simulate;
  th->rng = rng;
  th->prev = prev;
  th->target = target;
  th->propose = propose;
  th->propose_ctx = propose_ctx;
  th->stop_scale = 1;
  th->tr = gc_alloc(sizeof(Trace));
}

bool trace_handler_set_block(TraceHandler *th, const TraceBlock *b, char *err, size_t errsz) {
  const Trace *prev = th->prev;
  int n = prev ? prev->n : 0;
  th->block = b;
  th->block_seen = 0;
  th->block_at = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  for (int i = 0; i < n; i++) th->block_at[i] = -1;
  for (int k = 0; k < b->n; k++) {
    const TraceChoice *c = prev ? trace_find(prev, b->addrs[k]) : NULL;
    if (!c) {
      snprintf(err, errsz, "block proposal: '%s' is not in the current trace", b->addrs[k]);
      return false;
    }
    th->block_at[c - prev->c] = k;
  }
  return true;
}

Trace *trace_handler_finish(TraceHandler *th) {
  Trace *t = th->tr;
  int cap = 16;
  while (cap < 2 * t->n) cap *= 2;
  t->hcap = cap;
  t->hidx = gc_alloc_atomic(sizeof(int) * (size_t)cap);
  size_t mask = (size_t)cap - 1;
  t->site_start = gc_alloc_atomic(sizeof(long) * (size_t)(t->n + 1));
  t->nsites = 0;
  for (int k = 0; k < t->n; k++) {
    size_t i = addr_hash(t->c[k].addr) & mask;
    while (t->hidx[i]) i = (i + 1) & mask;
    t->hidx[i] = k + 1;
    t->site_start[k] = t->nsites;
    t->nsites += t->c[k].nsites;
  }
  t->site_start[t->n] = t->nsites;
  return t;
}

Trace *trace_run(const Interp *in, TraceHandler *th, uint64_t seed, uint64_t stream,
                 bool gen, InterpState **state_out, Diag *d) {
  InterpState *st = interp_start(in, seed, stream, gen);
  RunStatus rs;
  do rs = interp_run(st, &th->h, d);
  while (rs == RUN_SUSPENDED);
  if (rs != RUN_DONE) {
    if (!diag_failed(d)) diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "model run failed");
    return NULL;
  }
  if (state_out) *state_out = st;
  return trace_handler_finish(th);
}

Trace *trace_run_until(const Interp *in, TraceHandler *th, uint64_t seed, uint64_t stream,
                       bool gen, InterpState **state_out, bool *done, Diag *d) {
  InterpState *st = interp_start(in, seed, stream, gen);
  RunStatus rs = interp_run(st, &th->h, d);
  if (rs == RUN_ERROR) {
    if (!diag_failed(d)) diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "model run failed");
    return NULL;
  }
  *done = rs == RUN_DONE;
  if (state_out) *state_out = st;
  return trace_handler_finish(th);
}

Trace *trace_one_choice(const char *addr, const DistCall *dc, Value val) {
  TraceChoice c;
  memset(&c, 0, sizeof c);
  c.val = val;
  c.addr = addr;
  c.fam = dc->fam;
  c.type = dc->type;
  c.nsizes = dc->nsizes;
  memcpy(c.sizes, dc->sizes, sizeof c.sizes);
  c.numel = (int)val_numel(val);
  return trace_from_choices(1, &c, 0);
}

Trace *trace_from_choices(int n, const TraceChoice *c, double loglik) {
  TraceHandler th;
  trace_handler_init(&th, NULL, NULL, NULL, NULL, NULL);
  th.tr->n = n;
  th.cap = n;
  if (n < 0) n = 0;
  th.tr->c = gc_alloc(sizeof(TraceChoice) * (size_t)(n > 0 ? n : 1));
  if (n > 0) memcpy(th.tr->c, c, sizeof(TraceChoice) * (size_t)n);
  for (int i = 0; i < n; i++) th.tr->logprior += c[i].lp;
  th.tr->loglik = loglik;
  return trace_handler_finish(&th);
}
