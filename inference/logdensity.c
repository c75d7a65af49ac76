/* logdensity.c — log p(theta) on the unconstrained vector of a fixed-structure
 * program, by running the interpreter with a handler that hands out latents
 * from theta.  The bounds of each latent are taken from its DistCall at the
 * moment it is sampled, so bounds that depend on data or on earlier latents
 * are handled exactly as the program states them. */
#include "logdensity.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ir/jit.h"
#include "../stdlib/ad.h"
#include "../stdlib/transform.h"
#include "csv.h"
#include "trace.h"

#define LD_DISCOVER_TRIES 100

typedef struct LdLatent {
  const char *addr;
  Type type;
  int nsizes;
  int sizes[8];
  int numel;
  int unit_len;    /* scalars per constrained unit (structured only) */
  bool structured;
  size_t off;      /* start in theta */
  size_t free;     /* reals in theta */
  size_t xoff;     /* start in x */
} LdLatent;

struct LogDensity {
  const Interp *in;
  int n;
  LdLatent *lat;
  size_t dim, xdim;
  const char **names;
  /* a cached gradient workspace for ld_eval_grad: taken and given back with
     atomic exchanges, so concurrent callers never share one (a caller that
     finds it taken makes its own) */
  struct LdWork *spare;
  Jit *jit;            /* compiled log density, or NULL: the interpreter */
  const char *jit_why; /* why not, when compilation was refused */
  JitData *jdata;      /* ld's data for code compiled for another (ld_use_jit_of) */
  bool jit_borrowed;   /* jit is that other's: not ld's to free */
  bool nested;         /* latents no output holds (in loops, functions): a draw
                          reports them, which only the interpreter's run keeps */
  uint64_t steps;      /* interpreter instructions of one run (ld_jit_pays) */
  bool jit_quick;      /* compiled the quick way (jit_compile's quick) */
};

struct LdWork {
  const LogDensity *ld;
  Tape *tape;
  double *adj;
  size_t adjcap;
  JitCtx *jcx;
};

size_t ld_dim(const LogDensity *ld) { return ld->dim; }
size_t ld_num_constrained(const LogDensity *ld) { return ld->xdim; }
const char *const *ld_param_names(const LogDensity *ld) { return ld->names; }
int ld_nlatents(const LogDensity *ld) { return ld->n; }
const char *ld_latent_name(const LogDensity *ld, int k) {
  return k >= 0 && k < ld->n ? ld->lat[k].addr : NULL;
}

/* ---- CmdStan element order: first index fastest ---- */

/* Dimensions of v: array sizes, then vector length or matrix rows, cols. */
static int value_dims(Value v, int *dims) {
  int nd = 0;
  while (v.k == V_ARR && nd < 8) {
    dims[nd++] = v.a->n;
    if (v.a->n == 0) return nd;
    v = v.a->e[0];
  }
  if (v.k == V_VEC && nd < 8) dims[nd++] = v.t->rows;
  else if (v.k == V_ROWVEC && nd < 8) dims[nd++] = v.t->cols;
  else if (v.k == V_MAT && nd + 1 < 8) {
    dims[nd++] = v.t->rows;
    dims[nd++] = v.t->cols;
  }
  return nd;
}

/* The scalar slot at index tuple idx: either *d (tensor) or *s (scalar Value). */
static void value_slot(Value *v, const int *idx, double **d, Value **s) {
  int i = 0;
  while (v->k == V_ARR) v = &v->a->e[idx[i++]];
  *d = NULL;
  *s = NULL;
  if (v->k == V_VEC || v->k == V_ROWVEC) *d = &v->t->d[idx[i]];
  else if (v->k == V_MAT) *d = &v->t->d[(size_t)idx[i + 1] * (size_t)v->t->rows + (size_t)idx[i]];
  else *s = v;
}

/* Every scalar of *v in CmdStan order: copied to out, overwritten from in,
 * named into names (each optional). */
static size_t cmdstan_walk(Value *v, double *out, const double *in, const char *base,
                           const char **names) {
  int dims[8], idx[8];
  int nd = value_dims(*v, dims);
  size_t total = 1;
  for (int k = 0; k < nd; k++) total *= (size_t)dims[k];
  for (size_t i = 0; i < total; i++) {
    size_t r = i;
    for (int k = 0; k < nd; k++) {
      idx[k] = (int)(r % (size_t)dims[k]);
      r /= (size_t)dims[k];
    }
    double *d;
    Value *s;
    value_slot(v, idx, &d, &s);
    if (in) {
      if (d) *d = in[i];
      else s->r = in[i];
    }
    if (out) out[i] = d ? *d : val_as_real(*s);
    if (names) {
      char buf[256];
      size_t len = (size_t)snprintf(buf, sizeof buf, "%s", base);
      for (int k = 0; k < nd && len < sizeof buf; k++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, ".%d", idx[k] + 1);
      names[i] = gc_strdup(buf);
    }
  }
  return total;
}

/* The k-th latent of the layout if a run's k-th latent has its sizes, else
   NULL (the program's latents changed between runs). */
static const LdLatent *ld_latent_at(const LogDensity *ld, int k, int nsizes, const int *sizes) {
  const LdLatent *L = k >= 0 && k < ld->n ? &ld->lat[k] : NULL;
  if (!L || nsizes != L->nsizes || memcmp(sizes, L->sizes, sizeof(int) * (size_t)nsizes) != 0)
    return NULL;
  return L;
}

/* ---- the handler ---- */

typedef enum { LD_EVAL, LD_UNCONSTRAIN, LD_INIT } LdMode;

typedef struct LdHandler {
  Handler h;
  const LogDensity *ld;
  LdMode mode;
  const double *theta; /* LD_EVAL */
  double *x_out;       /* LD_EVAL: constrained values (may be NULL) */
  const double *x_in;  /* LD_UNCONSTRAIN */
  double *theta_out;   /* LD_UNCONSTRAIN, LD_INIT */
  DataSource *init;    /* LD_INIT: the values given by name (theta elsewhere) */
  const char *init_file;
  int k;               /* next latent */
  double lp;
  /* gradient runs: theta's nodes are 1..dim, lp accumulates on the tape */
  Tape *tape;
  int32_t lp_node;
  InterpState *st;
} LdHandler;

/* lp += v, with its node on gradient runs */
static void ld_add(LdHandler *lh, double v, int32_t node) {
  lh->lp += v;
  if (lh->tape) lh->lp_node = tape_binary(lh->tape, lh->lp_node, 1, node, 1);
}

static HandlerResult ld_fail(Diag *d, SrcPos pos, const char *msg) {
  diag_error(d, DIAG_RUNTIME, pos, "%s", msg);
  return HR_ERROR;
}

/* theta block -> value (+ log-Jacobian) */
static double ld_constrain_value(const LdLatent *L, const DistCall *dc, const double *u, Value *v) {
  double lj = 0;
  if (L->structured) {
    int m = tf_free_size(dc->con, L->unit_len);
    double *x = gc_alloc_atomic(sizeof(double) * (size_t)L->unit_len);
    for (int q = 0; q * L->unit_len < L->numel; q++) {
      lj += tf_constrain(dc->con, dc->lower, dc->upper, L->unit_len, u + (size_t)q * (size_t)m, x);
      for (int i = 0; i < L->unit_len; i++)
        trace_value_set(v, (size_t)q * (size_t)L->unit_len + (size_t)i, x[i]);
    }
    return lj;
  }
  for (int e = 0; e < L->numel; e++) {
    double x = u[e];
    if (dc->con != CON_NONE) lj += tf_constrain(dc->con, dc->lower, dc->upper, 1, &u[e], &x);
    trace_value_set(v, (size_t)e, x);
  }
  return lj;
}

/* ld_constrain_value on tape t: theta's block u0 carries nodes n0, n0 + 1, ...
   Returns the log-Jacobian with its node. */
static AdNum ld_constrain_ad(Tape *t, const LdLatent *L, const DistCall *dc, const double *u0,
                             int32_t n0, Value *v) {
  int32_t *nodes = gc_alloc_atomic(sizeof(int32_t) * (size_t)(L->numel ? L->numel : 1));
  AdNum lo = {dc->lower, dc->lower_ad}, hi = {dc->upper, dc->upper_ad};
  AdNum ljs = ad_const(0);
  if (L->structured) {
    int m = tf_free_size(dc->con, L->unit_len);
    AdNum *u = gc_alloc_atomic(sizeof(AdNum) * (size_t)(m > 0 ? m : 1));
    AdNum *x = gc_alloc_atomic(sizeof(AdNum) * (size_t)L->unit_len);
    for (int q = 0; q * L->unit_len < L->numel; q++) {
      for (int i = 0; i < m; i++)
        u[i] = (AdNum){u0[q * m + i], n0 + q * m + i};
      ljs = ad_add(t, ljs, tf_constrain_ad(t, dc->con, lo, hi, L->unit_len, u, x));
      for (int i = 0; i < L->unit_len; i++) {
        size_t e = (size_t)q * (size_t)L->unit_len + (size_t)i;
        trace_value_set(v, e, x[i].v);
        nodes[e] = x[i].n;
      }
    }
  } else {
    for (int e = 0; e < L->numel; e++) {
      AdNum u = {u0[e], n0 + e}, x = u;
      if (dc->con != CON_NONE) ljs = ad_add(t, ljs, tf_constrain_ad(t, dc->con, lo, hi, 1, &u, &x));
      trace_value_set(v, (size_t)e, x.v);
      nodes[e] = x.n;
    }
  }
  size_t k = 0;
  val_set_nodes(v, nodes, &k);
  return ljs;
}

/* value -> theta block; false if outside the constraint */
static bool ld_unconstrain_value(const LdLatent *L, const DistCall *dc, Value v, double *u) {
  if (L->structured) {
    int m = tf_free_size(dc->con, L->unit_len);
    double *x = gc_alloc_atomic(sizeof(double) * (size_t)L->unit_len);
    for (int q = 0; q * L->unit_len < L->numel; q++) {
      for (int i = 0; i < L->unit_len; i++)
        x[i] = trace_value_get(v, (size_t)q * (size_t)L->unit_len + (size_t)i);
      if (!tf_unconstrain(dc->con, dc->lower, dc->upper, L->unit_len, x,
                          u + (size_t)q * (size_t)m))
        return false;
    }
    return true;
  }
  for (int e = 0; e < L->numel; e++) {
    double x = trace_value_get(v, (size_t)e);
    if (dc->con == CON_NONE) u[e] = x;
    else if (!tf_unconstrain(dc->con, dc->lower, dc->upper, 1, &x, &u[e])) return false;
  }
  return true;
}

/* An initial value given by name: read with the latent's shape and checked
   against its constraint by the source (whose messages name the file and the
   variable), then mapped to theta, where it must be strictly inside. */
static bool ld_init_given(LdHandler *lh, const LdLatent *L, const DistCall *dc, const char *addr,
                          double *u, Diag *d) {
  int64_t sizes[8];
  for (int i = 0; i < dc->nsizes; i++) sizes[i] = dc->sizes[i];
  Value v;
  if (!lh->init->get(lh->init, addr, dc->type, dc->nsizes, sizes, NULL, dc->con, dc->lower,
                     dc->upper, &v, d))
    return false;
  bool ok = ld_unconstrain_value(L, dc, v, u);
  for (size_t i = 0; ok && i < L->free; i++) ok = isfinite(u[i]);
  if (ok) return true;
  diag_error(d, DIAG_DATA, (SrcPos){lh->init_file, 0, 0},
             "\"%s\": the initial value is on the boundary of the latent's support; it must "
             "lie strictly inside",
             addr);
  return false;
}

static HandlerResult ldh_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                SrcPos pos, Diag *d) {
  LdHandler *lh = (LdHandler *)h;
  const LogDensity *ld = lh->ld;
  if (lh->k >= ld->n)
    return ld_fail(d, pos, gc_printf("log density: latent '%s' was not in the first run", addr));
  const LdLatent *L = &ld->lat[lh->k++];
  if (strcmp(L->addr, addr) != 0 || dc->nsizes != L->nsizes ||
      memcmp(dc->sizes, L->sizes, sizeof(int) * (size_t)L->nsizes) != 0)
    return ld_fail(d, pos,
                   gc_printf("log density: the program's latents changed between runs "
                             "(expected '%s', got '%s')",
                             L->addr, addr));
  Value v = trace_value_new(dc->type, dc->nsizes, dc->sizes);
  char err[512] = "";
  double lp;
  if (lh->tape) {
    int32_t node;
    AdNum lj = ld_constrain_ad(lh->tape, L, dc, lh->theta + L->off, (int32_t)L->off + 1, &v);
    ld_add(lh, lj.v, lj.n);
    if (!dist_call_lpdf_ad(dc, lh->tape, v, &lp, &node, err, sizeof err))
      return ld_fail(d, pos, err);
    ld_add(lh, lp, node);
    *out = v;
    return HR_CONTINUE;
  }
  if (lh->mode == LD_INIT) {
    double *u = lh->theta_out + L->off;
    if (lh->init->has && lh->init->has(lh->init, addr)) {
      if (!ld_init_given(lh, L, dc, addr, u, d)) return HR_ERROR;
    } else {
      memcpy(u, lh->theta + L->off, sizeof(double) * L->free);
    }
    lh->lp += ld_constrain_value(L, dc, u, &v);
  } else if (lh->mode == LD_EVAL) {
    lh->lp += ld_constrain_value(L, dc, lh->theta + L->off, &v);
    if (lh->x_out) cmdstan_walk(&v, lh->x_out + L->xoff, NULL, NULL, NULL);
  } else {
    cmdstan_walk(&v, NULL, lh->x_in + L->xoff, NULL, NULL);
    if (!ld_unconstrain_value(L, dc, v, lh->theta_out + L->off))
      return ld_fail(d, pos, gc_printf("value of '%s' is outside its constraint", addr));
  }
  if (!dist_call_lpdf(dc, v, &lp, err, sizeof err)) return ld_fail(d, pos, err);
  lh->lp += lp;
  *out = v;
  return HR_CONTINUE;
}

static HandlerResult ldh_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  LdHandler *lh = (LdHandler *)h;
  char err[512] = "";
  double lp;
  if (lh->tape) {
    int32_t node;
    if (!dist_call_lpdf_ad(dc, lh->tape, x, &lp, &node, err, sizeof err))
      return ld_fail(d, pos, err);
    ld_add(lh, lp, node);
    return HR_CONTINUE;
  }
  if (!dist_call_lpdf(dc, x, &lp, err, sizeof err)) return ld_fail(d, pos, err);
  lh->lp += lp;
  return HR_CONTINUE;
}

static HandlerResult ldh_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  (void)pos;
  (void)d;
  LdHandler *lh = (LdHandler *)h;
  ld_add(lh, lw, lh->tape ? interp_factor_node(lh->st) : 0);
  return HR_CONTINUE;
}

static bool ld_run(const LogDensity *ld, LdHandler *lh, Diag *d) {
  lh->h.sample = ldh_sample;
  lh->h.observe = ldh_observe;
  lh->h.factor = ldh_factor;
  lh->ld = ld;
  InterpState *st = interp_start(ld->in, 0, 0, false);
  lh->st = st;
  if (lh->tape) interp_set_tape(st, lh->tape);
  RunStatus rs;
  do rs = interp_run(st, &lh->h, d);
  while (rs == RUN_SUSPENDED);
  if (rs != RUN_DONE) {
    if (!diag_failed(d)) diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "model run failed");
    return false;
  }
  if (lh->k != ld->n) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0},
               "log density: the program's latents changed between runs (%d instead of %d)",
               lh->k, ld->n);
    return false;
  }
  return true;
}

/* The workspace's compiled-code context, made on first use. */
static JitCtx *work_jit(LdWork *w) {
  if (!w->jcx) {
    w->jcx = jit_ctx_new(w->ld->jit);
    if (w->ld->jdata) jit_ctx_set_data(w->jcx, w->ld->jdata);
  }
  return w->jcx;
}

static LdWork *work_take(const LogDensity *ld) {
  LogDensity *m = (LogDensity *)ld; /* only the atomic cache slot is written */
  LdWork *w = __atomic_exchange_n(&m->spare, NULL, __ATOMIC_ACQ_REL);
  return w ? w : ld_work_new(ld);
}

static void work_give(const LogDensity *ld, LdWork *w) {
  LogDensity *m = (LogDensity *)ld;
  __atomic_store_n(&m->spare, w, __ATOMIC_RELEASE);
}

bool ld_eval(const LogDensity *ld, const double *theta, double *lp, Diag *d) {
  if (ld->jit) {
    LdWork *w = work_take(ld);
    bool ok = jit_eval(work_jit(w), theta, lp, NULL);
    work_give(ld, w);
    if (ok) return true;
  }
  LdHandler lh = {.mode = LD_EVAL, .theta = theta};
  if (!ld_run(ld, &lh, d)) return false;
  *lp = lh.lp;
  return true;
}

/* One point of a batch: a program error makes it -inf, with its message in
   *fail; compiled code that reported an error runs the interpreter for it. */
static bool ld_batch_point(const LogDensity *ld, const double *theta, double *lp, Diag *fail,
                           Diag *d) {
  Diag ed;
  diag_init(&ed);
  LdHandler lh = {.mode = LD_EVAL, .theta = theta};
  if (ld_run(ld, &lh, &ed)) {
    *lp = lh.lp;
    return true;
  }
  if (ed.code == DIAG_INTERNAL) {
    *d = ed;
    return false;
  }
  *fail = ed;
  *lp = -INFINITY;
  return true;
}

bool ld_eval_batch(LdWork *w, size_t n, const double *theta, double *lp, Diag *fail, Diag *d) {
  const LogDensity *ld = w->ld;
  if (ld->jit) {
    bool *ok = gc_alloc_atomic(sizeof(bool) * (n ? n : 1));
    jit_eval_batch(work_jit(w), n, theta, lp, ok);
    for (size_t s = 0; s < n; s++)
      if (!ok[s] && !ld_batch_point(ld, theta + s * ld->dim, &lp[s], fail, d)) return false;
    return true;
  }
  for (size_t s = 0; s < n; s++)
    if (!ld_batch_point(ld, theta + s * ld->dim, &lp[s], fail, d)) return false;
  return true;
}

/* ---- gradients ---- */


LdWork *ld_work_new(const LogDensity *ld) {
  LdWork *w = gc_alloc(sizeof(LdWork));
  w->ld = ld;
  w->tape = tape_new();
  return w;
}

bool ld_eval_grad_w(LdWork *w, const double *theta, double *lp, double *grad, Diag *d) {
  const LogDensity *ld = w->ld;
  if (ld->jit) { /* on a runtime error the interpreter below says what it was */
    if (jit_eval(work_jit(w), theta, lp, grad)) return true;
  }
  Tape *t = w->tape;
  tape_reset(t);
  for (size_t i = 0; i < ld->dim; i++) tape_var(t, theta[i]); /* nodes 1..dim */
  LdHandler lh = {.mode = LD_EVAL, .theta = theta, .tape = t};
  if (!ld_run(ld, &lh, d)) return false;
  *lp = lh.lp;
  size_t n = tape_size(t) + 1;
  if (n > w->adjcap) {
    w->adjcap = 2 * n;
    w->adj = gc_alloc_atomic(sizeof(double) * w->adjcap);
  }
  tape_backward(t, lh.lp_node, w->adj);
  for (size_t i = 0; i < ld->dim; i++) grad[i] = w->adj[i + 1];
  return true;
}

bool ld_eval_grad(const LogDensity *ld, const double *theta, double *lp, double *grad,
                  Diag *d) {
  LdWork *w = work_take(ld);
  bool ok = ld_eval_grad_w(w, theta, lp, grad, d);
  work_give(ld, w);
  return ok;
}

bool ld_constrain(const LogDensity *ld, const double *theta, double *x, Diag *d) {
  LdHandler lh = {.mode = LD_EVAL, .theta = theta, .x_out = x};
  return ld_run(ld, &lh, d);
}

bool ld_unconstrain(const LogDensity *ld, const double *x, double *theta, Diag *d) {
  LdHandler lh = {.mode = LD_UNCONSTRAIN, .x_in = x, .theta_out = theta};
  return ld_run(ld, &lh, d);
}

bool ld_init_point(const LogDensity *ld, DataSource *init, const char *file, const double *theta,
                   double *theta_out, Diag *d) {
  LdHandler lh = {.mode = LD_INIT, .theta = theta, .theta_out = theta_out, .init = init,
                  .init_file = file};
  return ld_run(ld, &lh, d);
}

/* ---- discovery ---- */

static const char *const ld_prefix = "log density on an unconstrained vector needs";

/* Discovery runs the prior, except that improper latents (flat), which
   cannot be drawn, take Stan's initial value (dist_call_init_value): the
   recording handler is handed that value as a previous one to reuse. */
typedef struct DiscHandler {
  TraceHandler th; /* first: a DiscHandler* is a Handler* */
  HandlerResult (*sample)(Handler *, const char *, const DistCall *, Value *, SrcPos, Diag *);
} DiscHandler;

static HandlerResult disc_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                 SrcPos pos, Diag *d) {
  DiscHandler *dh = (DiscHandler *)h;
  if (!dc->fam->improper) return dh->sample(h, addr, dc, out, pos, d);
  char err[512] = "";
  Value v;
  if (!dist_call_init_value(dc, dh->th.rng, &v, err, sizeof err)) return ld_fail(d, pos, err);
  dh->th.prev = trace_one_choice(addr, dc, v);
  HandlerResult r = dh->sample(h, addr, dc, out, pos, d);
  dh->th.prev = NULL;
  return r;
}

/* A choice in the generated block: the draws pass of enumeration
   (ir/enum.h), whose latents in loops only the interpreter's run keeps. */
static bool has_sample(const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_SAMPLE || has_sample(&in->then_b) || has_sample(&in->else_b) ||
        has_sample(&in->body))
      return true;
  }
  return false;
}

static Trace *discover(const Interp *in, int *nnested, uint64_t *steps, Diag *d) {
  Rng rng;
  rng_seed(&rng, 0x6c64, 0);
  Diag rd;
  for (int tries = 0; tries < LD_DISCOVER_TRIES; tries++) {
    DiscHandler dh;
    trace_handler_init(&dh.th, &rng, NULL, NULL, NULL, NULL);
    dh.sample = dh.th.h.sample;
    dh.th.h.sample = disc_sample;
    diag_init(&rd);
    InterpState *st = NULL;
    Trace *t = trace_run(in, &dh.th, 0, 0, false, &st, &rd);
    if (t) {
      interp_nested_latents(st, nnested);
      *steps = interp_steps(st);
      return t;
    }
  }
  *d = rd;
  return NULL;
}

LogDensity *ld_new(const Interp *in, Diag *d) {
  const IrProgram *p = interp_program(in);
  IrAnalysis *a = ir_analyze(p);
  if (!a->fixed_structure) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s a fixed-structure program: %s", ld_prefix,
               a->dynamic_reason ? a->dynamic_reason : "the set of latents can change");
    return NULL;
  }
  int nnested = 0;
  uint64_t steps = 0;
  Trace *t = discover(in, &nnested, &steps, d);
  if (!t) return NULL;
  LogDensity *ld = gc_alloc(sizeof(LogDensity));
  ld->in = in;
  ld->steps = steps;
  ld->nested = nnested > 0 || has_sample(&interp_program(in)->gen_b);
  ld->n = t->n;
  ld->lat = gc_alloc(sizeof(LdLatent) * (size_t)(t->n > 0 ? t->n : 1));
  for (int k = 0; k < t->n; k++) {
    const TraceChoice *c = &t->c[k];
    LdLatent *L = &ld->lat[k];
    if (!c->continuous) {
      diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s continuous latents: '%s' is %s", ld_prefix,
                 c->addr, c->type.base == TY_STRING ? "a string" : "discrete");
      return NULL;
    }
    L->addr = c->addr;
    L->type = c->type;
    L->nsizes = c->nsizes;
    memcpy(L->sizes, c->sizes, sizeof L->sizes);
    L->numel = c->numel;
    L->unit_len = c->unit_len;
    L->structured = c->structured;
    L->off = ld->dim;
    L->xoff = ld->xdim;
    L->free = L->structured && L->unit_len > 0
                  ? (size_t)(L->numel / L->unit_len) * (size_t)tf_free_size(c->con, L->unit_len)
                  : (size_t)L->numel;
    ld->dim += L->free;
    ld->xdim += (size_t)L->numel;
  }
  ld->names = gc_alloc(sizeof(char *) * (ld->xdim + 1));
  for (int k = 0; k < t->n; k++)
    cmdstan_walk(&t->c[k].val, NULL, NULL, csv_address_name(t->c[k].addr),
                 ld->names + ld->lat[k].xoff);
  return ld;
}

/* ---- the JIT ---- */

/* The k-th latent for compiled code: the same transform and density as the
   handler above, on the compiled code's tape. */
static bool ld_jit_sample(void *ud, int k, const DistCall *dc, Tape *t, const double *theta,
                          Value *out, double *lp, int32_t *lpnode, size_t *off, size_t *nfree,
                          int32_t *node0, char *err, size_t errsz) {
  const LogDensity *ld = ud;
  const LdLatent *L = ld_latent_at(ld, k, dc->nsizes, dc->sizes);
  if (!L) {
    snprintf(err, errsz, "log density: the program's latents changed between runs");
    return false;
  }
  *off = L->off;
  *nfree = L->free;
  *node0 = (int32_t)tape_size(t) + 1;
  for (size_t i = 0; i < L->free; i++) tape_var(t, theta[L->off + i]);
  Value v = trace_value_new(dc->type, dc->nsizes, dc->sizes);
  AdNum lj = ld_constrain_ad(t, L, dc, theta + L->off, *node0, &v);
  double l;
  int32_t node;
  if (!dist_call_lpdf_ad(dc, t, v, &l, &node, err, errsz)) return false;
  *lp = lj.v + l;
  *lpnode = tape_binary(t, lj.n, 1, node, 1);
  *out = v;
  return true;
}

static bool ld_jit_layout(void *ud, int k, int nsizes, const int *sizes, size_t *off,
                          size_t *n) {
  const LogDensity *ld = ud;
  const LdLatent *L = ld_latent_at(ld, k, nsizes, sizes);
  if (!L) return false; /* structured units: the caller derives them from the type */
  *off = L->off;
  *n = L->free;
  return true;
}

static bool use_jit(LogDensity *ld, bool keep_ir, bool quick) {
  JitLatents L = {.ud = ld, .n = ld->n, .sample = ld_jit_sample, .layout = ld_jit_layout};
  const char *why = NULL;
  ld->jit = jit_compile(ld->in, &L, ld->dim, keep_ir, quick, &why);
  ld->jit_why = ld->jit ? NULL : why;
  ld->jit_quick = ld->jit && quick;
  return ld->jit != NULL;
}

bool ld_use_jit(LogDensity *ld, bool keep_ir) { return use_jit(ld, keep_ir, false); }
bool ld_use_jit_quick(LogDensity *ld) { return use_jit(ld, false, true); }

bool ld_use_jit_of(LogDensity *ld, const LogDensity *from, Diag *d) {
  const char *why = NULL;
  if (!from->jit)
    why = "it is not compiled";
  else if (interp_program(ld->in) != interp_program(from->in))
    why = "it is another program";
  else if (ld->dim != from->dim || ld->n != from->n)
    why = "its latents have other sizes";
  JitData *jd = why ? NULL : jit_data_bind(from->jit, interp_data_regs(ld->in), &why);
  if (!jd) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "log density: cannot use the compiled code of another: %s",
               why);
    return false;
  }
  ld->jit = from->jit;
  ld->jdata = jd;
  ld->jit_borrowed = true;
  ld->jit_quick = from->jit_quick;
  ld->jit_why = NULL;
  return true;
}

const char *ld_backend_draws_interpreted(const LogDensity *ld, const char *why) {
  if (!ld->jit || ld->nested) return ld_backend(ld);
  const char *how = ld->jit_quick ? "LLVM JIT, quick (a short run: the fast pipeline)" : "LLVM JIT";
  return gc_printf("%s: log density and gradient compiled in %.0f ms of CPU%s; draws interpreted "
                   "(%s)", how, jit_compile_ms(ld->jit),
                   ld->jit_borrowed ? " for an earlier data set of the same shapes, reused for "
                                      "these data (no compile)" : "", why);
}

const char *ld_backend(const LogDensity *ld) {
  const char *how = ld->jit_quick ? "LLVM JIT, quick (a short run: the fast pipeline)" : "LLVM JIT";
  if (ld->jit && ld->jit_borrowed)
    return gc_printf("%s: log density and gradient compiled in %.0f ms of CPU for an earlier data "
                     "set of the same shapes, reused for these data (no compile)",
                     how, jit_compile_ms(ld->jit));
  if (ld->jit && ld->nested && jit_has_draw(ld->jit) && jit_draw_unrecorded(ld->jit))
    return gc_printf("%s: log density and gradient compiled in %.0f ms of CPU; draws interpreted "
                     "(they keep the latents of functions: %s)",
                     how, jit_compile_ms(ld->jit), jit_draw_unrecorded(ld->jit));
  if (ld->jit && jit_has_draw(ld->jit))
    return gc_printf("%s: log density and gradient compiled in %.0f ms of CPU, the draw "
                     "function (generated quantities) in %.0f ms",
                     how, jit_compile_ms(ld->jit), jit_draw_ms(ld->jit));
  if (ld->jit)
    return gc_printf("%s: log density and gradient compiled in %.0f ms of CPU; draws "
                     "interpreted (%s)",
                     how, jit_compile_ms(ld->jit), jit_draw_refusal(ld->jit));
  if (ld->jit_why) return gc_printf("interpreter (not compiled: %s)", ld->jit_why);
  return "interpreter";
}

const char *ld_llvm_ir(const LogDensity *ld) { return ld->jit ? jit_llvm_ir(ld->jit) : NULL; }

const char *ld_runtime_calls(const LogDensity *ld) {
  return ld->jit ? jit_runtime_calls(ld->jit, NULL) : NULL;
}

const char *ld_jit_refusal(const LogDensity *ld) { return ld->jit_why; }

const Interp *ld_interp(const LogDensity *ld) { return ld->in; }

/* ---- one draw's outputs ---- */

/* The run that reports a draw hands every latent its value constrained from
   theta, by the same maps and layout as the log density, and runs the
   generated block; observations and factors are not scored (lp__ comes from
   the sampler). */
typedef struct DrawHandler {
  Handler h;
  const LogDensity *ld;
  const double *theta;
  int k;
  Rng rng; /* for discrete choices (below) */
} DrawHandler;

static HandlerResult draw_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                 SrcPos pos, Diag *d) {
  DrawHandler *dh = (DrawHandler *)h;
  const LogDensity *ld = dh->ld;
  if (dc->fam->discrete) {
    /* a fixed-structure density has no discrete latent: this is the draws
       pass of a program whose discrete latents are summed out (ir/enum.h),
       and dc their exact conditional */
    char err[256];
    if (!dist_call_rng(dc, &dh->rng, out, err, sizeof err)) return ld_fail(d, pos, err);
    return HR_CONTINUE;
  }
  const LdLatent *L = ld_latent_at(ld, dh->k++, dc->nsizes, dc->sizes);
  if (!L)
    return ld_fail(d, pos, gc_printf("the program's latents changed between runs at '%s'", addr));
  Value v = trace_value_new(dc->type, dc->nsizes, dc->sizes);
  ld_constrain_value(L, dc, dh->theta + L->off, &v);
  *out = v;
  return HR_CONTINUE;
}

Value *ld_draw_interp(const LogDensity *ld, const double *theta, uint64_t seed, uint64_t stream,
                      Diag *d) {
  return ld_draw_full(ld, theta, seed, stream, NULL, NULL, d);
}

Value *ld_draw_full(const LogDensity *ld, const double *theta, uint64_t seed, uint64_t stream,
                    InterpLatent **nested, int *nnested, Diag *d) {
  DrawHandler dh = {.h = {draw_sample, interp_observe_ignored, interp_factor_ignored},
                    .ld = ld, .theta = theta};
  rng_seed(&dh.rng, seed, stream ^ 0x656e756dULL); /* apart from the _rng builtins' stream */
  InterpState *st = interp_start(ld->in, seed, stream, true);
  RunStatus rs;
  do rs = interp_run(st, &dh.h, d);
  while (rs == RUN_SUSPENDED);
  if (rs != RUN_DONE) {
    if (!diag_failed(d)) diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "output run failed");
    return NULL;
  }
  if (dh.k != ld->n) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0},
               "the program's latents changed between runs (%d latents instead of %d)", dh.k,
               ld->n);
    return NULL;
  }
  if (nested) *nested = interp_nested_latents(st, nnested);
  return interp_outputs(st);
}

Value *ld_draw(LdWork *w, const double *theta, uint64_t seed, uint64_t stream,
               InterpLatent **nested, int *nnested, Diag *d) {
  *nested = NULL, *nnested = 0;
  const LogDensity *ld = w->ld;
  /* the compiled draw records the latents of loops and branches (and the
     draws pass's discrete choices) under the interpreter's addresses, but
     not those of user functions */
  Value *out = !ld->nested || !ld->jit || (jit_has_draw(ld->jit) && !jit_draw_unrecorded(ld->jit))
                   ? ld_draw_jit(w, theta, seed, stream)
                   : NULL;
  if (out && ld->nested) *nested = jit_draw_nested(work_jit(w), nnested);
  return out ? out : ld_draw_full(ld, theta, seed, stream, nested, nnested, d);
}

void ld_prepare_draw(const LogDensity *ld) {
  if (ld->jit) jit_has_draw(ld->jit); /* compiles once, under the JIT's lock */
}

Value *ld_draw_jit(LdWork *w, const double *theta, uint64_t seed, uint64_t stream) {
  const LogDensity *ld = w->ld;
  if (!ld->jit || !jit_has_draw(ld->jit)) return NULL;
  return jit_draw(work_jit(w), theta, seed, stream);
}

bool ld_eval_grad_jit_tapes(const LogDensity *ld, const double *theta, double *lp, double *grad,
                            int *ntapes) {
  if (!ld->jit) return false;
  LdWork *w = work_take(ld);
  bool ok = jit_eval(work_jit(w), theta, lp, grad);
  if (ntapes) *ntapes = jit_ctx_tapes(work_jit(w));
  work_give(ld, w);
  return ok;
}

bool ld_eval_grad_jit(const LogDensity *ld, const double *theta, double *lp, double *grad) {
  return ld_eval_grad_jit_tapes(ld, theta, lp, grad, NULL);
}

/* The interpreter's cache slots: the compiled and the interpreted shared
   log density, and the donor: the compiled code of an earlier data set of
   the same program (ld_shared_pass), which a new data set of the same shapes
   takes instead of compiling. */
enum { LD_SLOT_JIT, LD_SLOT_INTERP, LD_SLOT_DONOR };

typedef struct SharedArg {
  bool jit, quick;
  const LogDensity *donor;
  Diag *d;
} SharedArg;

static void *make_shared(const Interp *in, void *arg) {
  SharedArg *a = arg;
  LogDensity *ld = ld_new(in, a->d);
  if (ld && a->jit) {
    /* data reals are arguments of the compiled code and data ints are folded
       into it (ir/jit.h): the donor's code serves when the shapes and ints
       are the same (jit_data_bind says which differ), with the same bits as
       code compiled for these data */
    Diag ignored;
    diag_init(&ignored);
    if (!a->donor || !ld_use_jit_of(ld, a->donor, &ignored)) use_jit(ld, false, a->quick);
  }
  return ld;
}

LogDensity *ld_shared(const Interp *in, bool jit, Diag *d) {
  SharedArg a = {jit, false, jit ? interp_cache(in, LD_SLOT_DONOR, NULL, NULL) : NULL, d};
  return interp_cache(in, jit ? LD_SLOT_JIT : LD_SLOT_INTERP, make_shared, &a);
}

static void *give(const Interp *in, void *arg) {
  (void)in;
  return arg;
}

void ld_shared_pass(const Interp *from, const Interp *to) {
  if (!from) return;
  LogDensity *c = interp_cache(from, LD_SLOT_JIT, NULL, NULL);
  LogDensity *old = interp_cache(from, LD_SLOT_DONOR, NULL, NULL);
  /* code compiled for from's own data is the newest shapes' */
  LogDensity *keep = c && c->jit && !c->jit_borrowed ? c : old;
  if (old != keep) ld_free(old);
  if (c != keep) ld_free(c); /* borrowed from keep: frees nothing */
  ld_free(interp_cache(from, LD_SLOT_INTERP, NULL, NULL));
  if (keep && to && interp_cache(to, LD_SLOT_DONOR, give, keep) == keep) return;
  ld_free(keep);
}

LogDensity *ld_shared_jit(const Interp *in, bool quick, Diag *d) {
  SharedArg a = {true, quick, interp_cache(in, LD_SLOT_DONOR, NULL, NULL), d};
  return interp_cache(in, LD_SLOT_JIT, make_shared, &a);
}

/* The cost model of ld_jit_pays and ld_jit_quick, in microseconds of the
   quiet machine of docs/performance.md: one interpreted evaluation, and
   compiled code's (a tenth). */
static double interp_us(const LogDensity *ld) {
  const IrProgram *p = interp_program(ld->in);
  const Value *R = interp_data_regs(ld->in);
  double elements = 0;
  for (int r = 0; R && r < p->main.nregs; r++)
    if (R[r].k >= V_ARR) elements += (double)val_numel(R[r]);
  return 3 + 0.15 * (double)ld->steps + 0.01 * elements;
}

bool ld_jit_pays(const LogDensity *ld, double evals) {
  return evals * 0.9 * interp_us(ld) > LD_COMPILE_US;
}

bool ld_draw_pays(const LogDensity *ld, double draws) {
  return draws * 0.9 * interp_us(ld) > LD_DRAW_COMPILE_US;
}

bool ld_jit_quick(const LogDensity *ld, double evals) {
  return evals * LD_QUICK_SLOWER * 0.1 * interp_us(ld) < LD_FULL_EXTRA_US;
}

void ld_shared_free(const Interp *in) {
  if (!in) return;
  for (int k = LD_SLOT_JIT; k <= LD_SLOT_DONOR; k++) ld_free(interp_cache(in, k, NULL, NULL));
}

void ld_free(LogDensity *ld) {
  if (!ld) return;
  if (!ld->jit_borrowed) jit_free(ld->jit);
  ld->jit = NULL;
}
