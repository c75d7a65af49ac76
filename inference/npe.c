/* npe.c — neural posterior estimation (see npe.h): `ppl train --amortize`
 * (npe_train) and the amortized engine's draws from an npe file (npe_draws).
 *
 * The data x a network reads is laid out from the IR (npe_layout):
 *   - the observed data variables are those an observation reads (`y ~`,
 *     `y[i] ~`, observe(d, y)), the ones simulated in training;
 *   - a variable observed only as `y[i] ~ ...` inside `plate (i in ...)` is
 *     a group of exchangeable elements y[1..N]: the program says that its
 *     elements are conditionally independent given what the plate does not
 *     index.  The data variables the same plate indexes by i (covariates,
 *     `x[i]` in `y[i] ~ normal(a + b * x[i], s)`) join the element, so the
 *     deep set sees the pairs (y[i], x[i]);
 *   - a variable observed whole, outside loops, by a distribution whose
 *     parameters are all scalars (`y ~ normal(mu, sigma)`) is a group of its
 *     own: its elements are iid given those scalars;
 *   - everything else observed (matrices, `y[i] ~` in a plain for, a vector
 *     observed with vector parameters) is the flat rest, read by an MLP.
 * Groups are at most DS_MAXGROUPS; past that a variable joins the rest.
 *
 * theta is the unconstrained vector of the program's log density (its
 * latents in execution order), reached from a simulated trace through
 * ld_init_point, which reads latents by address.  theta and x are
 * standardised with the simulations' means and sds (x by column: a group's
 * columns are shared by all its elements, so the summary stays
 * order-invariant), and the file keeps both.
 */
#include "npe.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../stdlib/deepset.h"
#include "../stdlib/linalg.h"
#include "../stdlib/optim.h"
#include "../stdlib/realnvp.h"
#include "../stdlib/safetensors.h"
#include "csv.h"
#include "logdensity.h"
#include "mpi_run.h"
#include "psis.h"
#include "vi.h"
#include "simulate.h"

#define NPE_HOLDOUT 0.1 /* share of the simulations kept for the held-out loss */
#define NPE_CLIP 10.0   /* gradient-norm clipping of Adam's steps */
#define NPE_DRAW_BATCH 256 /* draws of q made in one pass of the flow */
#define NPE_QUAD_WIDTH 8  /* widest set element whose pairwise products the summary sees */
#define NPE_POOLED_MAX 64 /* most pooled features passed to the flow beside the summary */

/* ---- the layout of x ---- */

typedef struct NpeVar {
  const char *name;
  int reg;      /* main's register */
  int obs;      /* index among the observed (simulated) variables, -1: a covariate */
  int group;    /* -1: the rest */
  int width;    /* reals per element (groups), or all its reals (rest) */
} NpeVar;

typedef struct NpeLayout {
  int nobs;
  const char **obs;   /* observed data variables, in order of first observation */
  int nvars, capvars;
  NpeVar *vars;       /* the observed, then the groups' covariates */
  int ngroups;
  int gkey[DS_MAXGROUPS];           /* the plate's loop register, or -2 - var for a vector */
  int n[DS_MAXGROUPS], width[DS_MAXGROUPS];
  int rest;           /* reals of the rest */
  int ncols;          /* standardisation columns: the groups' widths, then the rest */
  size_t in;          /* reals of a row */
} NpeLayout;

typedef struct NpeWalk {
  const IrProgram *p;
  const char **data_name; /* by register: the data variable it holds, or NULL */
  int *key;               /* by register: the observations' group key (-3: none seen) */
  int ncov, capcov;
  int (*cov)[2];          /* (data register, plate register) */
  int nord, capord;
  int *order;             /* observed registers in order of first observation */
  bool *in_data;          /* by register: set in the data block (fixed data) */
  int *ndef;              /* by register: instructions of the model block that set it */
  const IrInstr **def;    /* by register: the last of them */
} NpeWalk;

enum { KEY_NONE = -3, KEY_REST = -1, KEY_VECTOR = -2 };

static bool npe_elementwise_type(Type t) {
  return (t.ndims == 1 && (t.base == TY_INT || t.base == TY_REAL || t.base == TY_VECTOR ||
                           t.base == TY_ROWVEC)) ||
         (t.ndims == 0 && (t.base == TY_VECTOR || t.base == TY_ROWVEC));
}

static bool npe_flat(Type t) {
  return (t.ndims == 1 && (t.base == TY_INT || t.base == TY_REAL)) ||
         (t.ndims == 0 && (t.base == TY_VECTOR || t.base == TY_ROWVEC));
}

static void npe_add_cov(NpeWalk *w, int reg, int key) {
  w->cov = gc_grow(w->cov, w->ncov, &w->capcov, sizeof(int[2]));
  w->cov[w->ncov][0] = reg, w->cov[w->ncov][1] = key;
  w->ncov++;
}

/* Whether the vector in register r is, element by element, a function of
 * values every element shares (scalars, a vector of latents) and of element
 * n of fixed data: a data vector, X * v with X a data matrix (row n of X),
 * and +, -, .*, ./, negation of such terms.  The data it reads become
 * covariates of the group `key`. */
static bool npe_rowwise(NpeWalk *w, int r, int key, int depth) {
  const Type *rt = w->p->main.regtypes;
  if (ty_is_scalar_num(rt[r])) return true;
  if (depth > 32) return false;
  if (w->in_data[r]) {
    if (!npe_flat(rt[r])) return false;
    npe_add_cov(w, r, key);
    return true;
  }
  const IrInstr *d = w->ndef[r] == 1 ? w->def[r] : NULL;
  if (!d) return false;
  if (d->op == IR_MOVE || (d->op == IR_UNARY && d->sub == OP_NEG))
    return npe_rowwise(w, d->args[0], key, depth + 1);
  if (d->op != IR_BINARY) return false;
  int a = d->args[0], b = d->args[1];
  if (d->sub == OP_ADD || d->sub == OP_SUB || d->sub == OP_EMUL || d->sub == OP_EDIV ||
      (d->sub == OP_MUL && (ty_is_scalar_num(rt[a]) || ty_is_scalar_num(rt[b]))))
    return npe_rowwise(w, a, key, depth + 1) && npe_rowwise(w, b, key, depth + 1);
  if (d->sub == OP_MUL && w->in_data[a] && rt[a].ndims == 0 && rt[a].base == TY_MATRIX &&
      rt[b].ndims == 0 && rt[b].base == TY_VECTOR && !w->in_data[b]) {
    npe_add_cov(w, a, key); /* X * beta: element n is dot(X[n], beta) */
    return true;
  }
  return false;
}

/* y ~ d(...) with y a 1-D container of scalars whose parameters are scalars
 * or row-wise vectors (npe_rowwise): its elements, with their rows of the
 * data the parameters read, are exchangeable given the shared latents. */
static bool npe_iid(NpeWalk *w, const IrInstr *ins) {
  bool ok = npe_flat(w->p->main.regtypes[ins->var]);
  for (int k = 0; ok && k < ins->dist.nparams; k++)
    ok = npe_rowwise(w, ins->dist.params[k], -2 - ins->var, 0);
  return ok;
}

static void npe_walk(NpeWalk *w, IrBlock b, int plate, int depth) {
  for (int k = 0; k < b.n; k++) {
    const IrInstr *ins = &b.ins[k];
    switch (ins->op) {
    case IR_OBSERVE: {
      if (ins->var < 0 || !w->data_name[ins->var]) break;
      int key = KEY_REST;
      if (plate >= 0 && ins->nidx == 1 && ins->idx[0].kind == IX_SINGLE && ins->idx[0].lo == plate)
        key = plate;
      else if (depth == 0 && ins->nidx == 0 && npe_iid(w, ins))
        key = KEY_VECTOR;
      int *cur = &w->key[ins->var];
      if (*cur == KEY_NONE) {
        *cur = key;
        w->order = gc_grow(w->order, w->nord, &w->capord, sizeof(int));
        w->order[w->nord++] = ins->var;
      } else if (*cur != key) {
        *cur = KEY_REST; /* observed two ways: not a group */
      }
      break;
    }
    case IR_INDEX:
      if (plate >= 0 && ins->nargs >= 1 && w->data_name[ins->args[0]] && ins->nidx == 1 &&
          ins->idx[0].kind == IX_SINGLE && ins->idx[0].lo == plate) {
        npe_add_cov(w, ins->args[0], plate);
      }
      break;
    case IR_IF:
      npe_walk(w, ins->then_b, plate, depth);
      npe_walk(w, ins->else_b, plate, depth);
      break;
    case IR_FOR: npe_walk(w, ins->body, ins->name ? ins->var : -1, depth + 1); break;
    case IR_WHILE:
      npe_walk(w, ins->cond_b, -1, depth + 1);
      npe_walk(w, ins->body, -1, depth + 1);
      break;
    default: break;
    }
  }
}

static NpeVar *npe_add_var(NpeLayout *L, const char *name, int reg, int obs, int group) {
  L->vars = gc_grow(L->vars, L->nvars, &L->capvars, sizeof(NpeVar));
  NpeVar *v = &L->vars[L->nvars++];
  *v = (NpeVar){.name = name, .reg = reg, .obs = obs, .group = group};
  return v;
}

/* Top-level length of a 1-D container or array (its elements). */
static int npe_len(Value v) {
  if (v.k == V_ARR) return v.a->n;
  if (v.k == V_VEC || v.k == V_ROWVEC) return v.t->rows * v.t->cols;
  if (v.k == V_MAT) return v.t->rows;
  return -1;
}

/* Which instructions of the model block set each register (any depth). */
static void npe_defs(NpeWalk *w, IrBlock b) {
  for (int k = 0; k < b.n; k++) {
    const IrInstr *ins = &b.ins[k];
    if (ins->dst >= 0) w->ndef[ins->dst]++, w->def[ins->dst] = ins;
    if (ins->op == IR_FOR && ins->var >= 0) w->ndef[ins->var]++;
    npe_defs(w, ins->then_b);
    npe_defs(w, ins->else_b);
    npe_defs(w, ins->body);
    npe_defs(w, ins->cond_b);
  }
}

/* The observations of data variables in p's model block. */
static NpeWalk *npe_scan(const IrProgram *p) {
  NpeWalk *w = gc_alloc(sizeof *w);
  w->p = p;
  int nregs = p->main.nregs;
  w->data_name = gc_alloc(sizeof(char *) * (size_t)(nregs + 1));
  w->key = gc_alloc_atomic(sizeof(int) * (size_t)(nregs + 1));
  for (int r = 0; r < nregs; r++) w->key[r] = KEY_NONE;
  w->in_data = gc_alloc_atomic(sizeof(bool) * (size_t)(nregs + 1));
  w->ndef = gc_alloc_atomic(sizeof(int) * (size_t)(nregs + 1));
  w->def = gc_alloc(sizeof(IrInstr *) * (size_t)(nregs + 1));
  for (int k = 0; k < p->data_b.n; k++) {
    const IrInstr *ins = &p->data_b.ins[k];
    if (ins->op == IR_DATA) w->data_name[ins->dst] = ins->name;
    if (ins->dst >= 0) w->in_data[ins->dst] = true;
  }
  npe_defs(w, p->model_b);
  npe_walk(w, p->model_b, -1, 0);
  return w;
}

/* The variables and groups from the IR (values: main's registers after the
 * data block, for the covariates' and the sizes' lengths; the observed
 * variables' values there may be NaN, only their shapes count). */
static NpeLayout *npe_layout(const IrProgram *p, const Value *regs) {
  NpeWalk *wp = npe_scan(p), w = *wp;
  /* an observed variable read as another set's covariate would be pooled
     apart from it (their pairing lost): both become part of the rest */
  for (int c = 0; c < w.ncov; c++) {
    int reg = w.cov[c][0], key = w.cov[c][1];
    if (w.key[reg] == KEY_NONE) continue;
    int own = w.key[reg] == KEY_VECTOR ? -2 - reg : w.key[reg];
    if (own == key) continue;
    for (int i = 0; i < w.nord; i++) {
      int o = w.order[i];
      if ((w.key[o] == KEY_VECTOR ? -2 - o : w.key[o]) == key) w.key[o] = KEY_REST;
    }
    w.key[reg] = KEY_REST; /* and the covariate itself, or its order would be lost */
  }
  NpeLayout *L = gc_alloc(sizeof *L);
  L->obs = gc_alloc(sizeof(char *) * (size_t)(w.nord + 1));
  for (int i = 0; i < w.nord; i++) {
    int reg = w.order[i], key = w.key[reg], g = -1;
    Type t = p->main.regtypes[reg];
    int n = npe_len(regs[reg]);
    if (key != KEY_REST && npe_elementwise_type(t) && n >= 1) {
      int gk = key == KEY_VECTOR ? -2 - reg : key;
      for (int j = 0; j < L->ngroups && g < 0; j++)
        if (L->gkey[j] == gk && L->n[j] == n) g = j;
      if (g < 0 && L->ngroups < DS_MAXGROUPS) {
        g = L->ngroups++;
        L->gkey[g] = gk, L->n[g] = n;
      }
    }
    L->obs[L->nobs] = w.data_name[reg];
    npe_add_var(L, w.data_name[reg], reg, L->nobs++, g);
  }
  /* covariates: data a plate indexes by its variable, not observed, of the group's length */
  for (int c = 0; c < w.ncov; c++) {
    int reg = w.cov[c][0];
    bool seen = w.key[reg] != KEY_NONE;
    for (int j = 0; j < L->nvars && !seen; j++) seen = L->vars[j].reg == reg;
    Type ct = p->main.regtypes[reg];
    if (seen || !(npe_elementwise_type(ct) || (ct.ndims == 0 && ct.base == TY_MATRIX))) continue;
    for (int g = 0; g < L->ngroups; g++)
      if (L->gkey[g] == w.cov[c][1] && npe_len(regs[reg]) == L->n[g])
        npe_add_var(L, w.data_name[reg], reg, -1, g);
  }
  /* widths (from the values' sizes: reals over elements) */
  for (int j = 0; j < L->nvars; j++) {
    NpeVar *v = &L->vars[j];
    size_t numel = val_numel(regs[v->reg]);
    if (v->group >= 0) {
      v->width = (int)(numel / (size_t)L->n[v->group]);
      L->width[v->group] += v->width;
      L->in += numel;
    } else {
      v->width = (int)numel;
      L->rest += v->width;
    }
  }
  L->in += (size_t)L->rest;
  for (int g = 0; g < L->ngroups; g++) L->ncols += L->width[g];
  L->ncols += L->rest;
  return L;
}

/* One row of x (L->in reals) from the variables' values (values[j] for
 * L->vars[j]); cols[k] = the standardisation column of position k. */
static void npe_row(const NpeLayout *L, const Value *values, double *row, int *cols) {
  double **flat = gc_alloc(sizeof(double *) * (size_t)(L->nvars + 1));
  for (int j = 0; j < L->nvars; j++) {
    flat[j] = gc_alloc_atomic(sizeof(double) * (val_numel(values[j]) + 1));
    val_flatten(values[j], flat[j]);
  }
  size_t pos = 0;
  int col0 = 0;
  for (int g = 0; g < L->ngroups; g++) {
    for (int i = 0; i < L->n[g]; i++) {
      int col = col0;
      for (int j = 0; j < L->nvars; j++) {
        const NpeVar *v = &L->vars[j];
        if (v->group != g) continue;
        bool rows = values[j].k == V_MAT; /* row i of a column-major matrix */
        for (int e = 0; e < v->width; e++, pos++, col++) {
          row[pos] = rows ? flat[j][(size_t)i + (size_t)L->n[g] * (size_t)e]
                          : flat[j][(size_t)i * (size_t)v->width + (size_t)e];
          if (cols) cols[pos] = col;
        }
      }
    }
    col0 += L->width[g];
  }
  for (int j = 0; j < L->nvars; j++) {
    const NpeVar *v = &L->vars[j];
    if (v->group >= 0) continue;
    memcpy(row + pos, flat[j], sizeof(double) * (size_t)v->width);
    for (int e = 0; e < v->width; e++, pos++)
      if (cols) cols[pos] = col0 + e;
    col0 += v->width;
  }
}

/* ---- options ---- */

const OptSpec npe_options[] = {
    {.name = "simulations", .type = OPT_INT, .def = "10000", .ilo = 10, .ihi = 100000000,
     .arg = "N",
     .help = "amortized training (ppl train --amortize): pairs (latents, data) simulated from "
             "the program's prior predictive"},
    {.name = "epochs", .type = OPT_INT, .def = "50", .ilo = 1, .ihi = 1000000, .arg = "N",
     .help = "ppl train: passes over the data plate (svi; instead of --iter), or over the "
             "simulations (--amortize; the held-out loss picks the epoch whose networks are "
             "kept)"},
    {.name = "batch", .type = OPT_INT, .def = "64", .ilo = 1, .ihi = 1000000, .arg = "N",
     .help = "amortized training: simulations per Adam step"},
    {.name = "embed-dim", .type = OPT_INT, .def = "8", .ilo = 1, .ihi = 4096, .arg = "N",
     .help = "amortized training: length of the data's summary that the flow is conditioned on"},
    {.name = "embed-hidden", .type = OPT_INT, .def = "64", .ilo = 1, .ihi = 4096, .arg = "N",
     .help = "amortized training: units of the summary network's hidden layers (the deep "
             "set's per-element network and the network on its mean)"},
    OPT_END,
};

/* An option's value: the run's, else the default of its entry here or in
 * whichever table has it (flow-layers, flow-hidden, lr, psis-resample are
 * advi's and the variational engines' entries, with the same meaning). */
static OptValue npe_opt(const EngineOpts *o, const char *name) {
  const OptValue *v = opt_set_get(o->set, name);
  if (v) return *v;
  for (const OptSpec *s = npe_options; s->name; s++)
    if (!strcmp(s->name, name)) return opt_default(s);
  const OptSpec *s = engine_option_find(name);
  return s ? opt_default(s) : (OptValue){0};
}

/* ---- the networks ---- */

/* The flow is conditioned on the summary network's output and, with
 * `pooled`, on the data's pooled features themselves (ds_pooled: each
 * group's means of its elements and their products, the other reals): a
 * linear path from the sufficient statistics of linear-Gaussian models to
 * the flow's base, which npe_warm_start fits by least squares. */
typedef struct NpeNets {
  DeepSet ds;
  Rnvp flow;
  int npooled;    /* pooled features in the flow's context (0: none) */
  size_t nparams; /* the summary's weights, then the flow's */
} NpeNets;

static bool npe_nets(NpeNets *m, const NpeLayout *L, int dim, int ctx, int ehidden, bool quadratic,
                     bool pooled, int layers, int fhidden, char *err, size_t errsz) {
  if (!ds_make(&m->ds, L->ngroups, L->n, L->width, L->rest, ehidden, ctx, quadratic, err, errsz))
    return false;
  m->npooled = pooled ? ds_pooled_size(&m->ds) : 0;
  if (!rnvp_make_cond(&m->flow, dim, ctx + m->npooled, layers, fhidden, err, errsz)) return false;
  m->nparams = m->ds.nparams + m->flow.nparams;
  return true;
}

/* The flow's context of B standardised rows [B, ctx + npooled]: the summary
 * (differentiable in w's summary part), then the pooled features. */
static Tensor npe_context(Tape *t, const NpeNets *m, Tensor w, int B, const double *x) {
  Tensor c = ds_forward(t, &m->ds, tensor_slice(w, 0, m->ds.nparams), B, x);
  if (!m->npooled || !tensor_ok(c)) return c;
  int k = m->ds.out, n = k + m->npooled;
  double *vals = tape_alloc_atomic(t, sizeof(double) * (size_t)B * (size_t)n);
  int32_t *ids = tape_alloc_atomic(t, sizeof(int32_t) * (size_t)B * (size_t)n);
  for (int b = 0; b < B; b++) {
    double *v = vals + (size_t)b * n;
    int32_t *id = ids + (size_t)b * n;
    for (int j = 0; j < k; j++) {
      v[j] = c.d[(size_t)b * k + j];
      id[j] = c.node ? c.node + (int32_t)((size_t)b * k + j) : 0;
    }
    ds_pooled(&m->ds, x + (size_t)b * m->ds.in, v + k);
    for (int j = k; j < n; j++) id[j] = 0;
  }
  return tensor_gather(t, 2, (int[]){B, n}, vals, ids);
}

/* npe_context of one standardised row x off the tape (the same bits), for
 * drawing: the flow's context, m->flow.ctx reals in out. */
static bool npe_embed(const NpeNets *m, const double *w, const double *x, double *out) {
  /* scratch of every element's features and hidden units (megabytes for
     large data): malloc's, not the collector's, which would zero it */
  double *work = malloc(sizeof(double) * (ds_work(&m->ds, 1) + 1));
  if (!work) return false;
  ds_eval(&m->ds, w, 1, x, out, work);
  free(work);
  if (m->npooled) ds_pooled(&m->ds, x, out + m->ds.out);
  return true;
}

/* The sum over B rows of -log q(theta | x) in standardised units (theta
 * B x dim, x B x in, both standardised) divided by nmean, recorded on t with
 * weights w: the mean over the rows when nmean is B, one block's share of a
 * minibatch of nmean rows otherwise (npe_grad). */
static AdNum npe_loss(Tape *t, const NpeNets *m, Tensor w, int B, int nmean, const double *x,
                      const double *theta) {
  size_t d = (size_t)m->flow.dim, n = (size_t)B * d;
  Tensor c = npe_context(t, m, w, B, x);
  AdNum *th = tape_alloc_atomic(t, sizeof(AdNum) * n), *eps = tape_alloc_atomic(t, sizeof(AdNum) * n);
  AdNum *ld = tape_alloc_atomic(t, sizeof(AdNum) * (size_t)B);
  AdNum *terms = tape_alloc_atomic(t, sizeof(AdNum) * (n + (size_t)B));
  for (size_t e = 0; e < n; e++) th[e] = ad_const(theta[e]);
  if (!tensor_ok(c)) return ad_const(NAN);
  rnvp_inverse_batch(t, &m->flow, tensor_slice(w, m->ds.nparams, m->flow.nparams), B, c, th, eps, ld);
  for (size_t e = 0; e < n; e++) terms[e] = ad_scale(t, ad_mul(t, eps[e], eps[e]), 0.5);
  for (int b = 0; b < B; b++) terms[n + (size_t)b] = ld[b];
  AdNum sum = ad_sum(t, (int)(n + (size_t)B), terms);
  double k = 0.5 * (double)d * log(2 * M_PI);
  return ad_add(t, ad_scale(t, sum, 1.0 / nmean), ad_const(B == nmean ? k : k * B / nmean));
}

/* ---- simulation ---- */

/* The data a normal Interp of the program reads: the user's source, with the
 * observed variables taken from one simulation (training data files need
 * not have them). */
typedef struct SimSource {
  DataSource src;
  DataSource *user;
  const SimDraw *sd;
} SimSource;

static bool simsrc_get(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
                       const char *size_desc, ConKind con, double lo, double hi, Value *out,
                       Diag *d) {
  SimSource *s = (SimSource *)src;
  for (int i = 0; i < s->sd->ndata; i++)
    if (!strcmp(s->sd->names[i], name)) {
      *out = val_copy(s->sd->data[i]);
      return true;
    }
  if (!s->user) {
    diag_error(d, DIAG_DATA, (SrcPos){0}, "missing data '%s'", name);
    return false;
  }
  return s->user->get(s->user, name, t, nsizes, sizes, size_desc, con, lo, hi, out, d);
}

static bool simsrc_has(DataSource *src, const char *name) {
  SimSource *s = (SimSource *)src;
  for (int i = 0; i < s->sd->ndata; i++)
    if (!strcmp(s->sd->names[i], name)) return true;
  return s->user && (!s->user->has || s->user->has(s->user, name));
}

/* A simulated trace's latents by address, for ld_init_point. */
typedef struct TraceSource {
  DataSource src;
  const Trace *t;
} TraceSource;

static bool tracesrc_get(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
                         const char *size_desc, ConKind con, double lo, double hi, Value *out,
                         Diag *d) {
  (void)size_desc, (void)con, (void)lo, (void)hi;
  const TraceChoice *c = trace_find(((TraceSource *)src)->t, name);
  int sz[8];
  for (int i = 0; i < nsizes && i < 8; i++) sz[i] = (int)sizes[i];
  if (!c || nsizes > 8 || !trace_value_has_shape(c->val, t, nsizes, sz)) {
    diag_error(d, DIAG_DATA, (SrcPos){0}, "simulation: latent '%s' has another shape", name);
    return false;
  }
  *out = c->val;
  return true;
}

static bool tracesrc_has(DataSource *src, const char *name) {
  return trace_find(((TraceSource *)src)->t, name) != NULL;
}

static double npe_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* What a program must be to be amortized; false + d says why not. */
static bool npe_fits(const IrProgram *p, Diag *d) {
  IrAnalysis *a = ir_analyze(p);
  const char *why = NULL;
  if (a->nlatents == 0) why = "it has no latent variables";
  else if (!a->fixed_structure)
    why = gc_printf("it needs a fixed structure (%s)",
                    a->dynamic_reason ? a->dynamic_reason : "the latents change between runs");
  else
    for (int i = 0; i < a->nlatents && !why; i++)
      if (a->latents[i].kind != LK_CONTINUOUS)
        why = gc_printf("it needs every latent continuous, and '%s' is %s", a->latents[i].name,
                        a->latents[i].kind == LK_STRING ? "a string" : "discrete");
  if (!why) return true;
  diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s: cannot amortize the program: %s", p->file, why);
  return false;
}

/* The variables' values in one simulation (observed ones simulated,
 * covariates from the data registers). */
static Value *npe_values(const NpeLayout *L, const SimDraw *sd, const Value *regs) {
  Value *v = gc_alloc(sizeof(Value) * (size_t)(L->nvars + 1));
  for (int j = 0; j < L->nvars; j++)
    v[j] = sd && L->vars[j].obs >= 0 ? sd->data[L->vars[j].obs] : regs[L->vars[j].reg];
  return v;
}

static void npe_stats(int n, int stride, const double *x, int ncols, const int *cols,
                      size_t width, double *mean, double *sd) {
  double *cnt = calloc((size_t)ncols, sizeof(double)), *m2 = calloc((size_t)ncols, sizeof(double));
  memset(mean, 0, sizeof(double) * (size_t)ncols);
  for (int r = 0; r < n; r++) /* Welford by column */
    for (size_t k = 0; k < width; k++) {
      int c = cols ? cols[k] : (int)k;
      double v = x[(size_t)r * (size_t)stride + k], dl = v - mean[c];
      cnt[c] += 1;
      mean[c] += dl / cnt[c];
      m2[c] += dl * (v - mean[c]);
    }
  for (int c = 0; c < ncols; c++) {
    sd[c] = cnt[c] > 1 ? sqrt(m2[c] / (cnt[c] - 1)) : 1;
    if (!(sd[c] > 1e-12)) sd[c] = 1; /* a constant column: centred only */
  }
  free(cnt);
  free(m2);
}

static void npe_standardise(int n, size_t width, double *x, const int *cols, const double *mean,
                            const double *sd) {
  for (int r = 0; r < n; r++)
    for (size_t k = 0; k < width; k++) {
      int c = cols ? cols[k] : (int)k;
      double *v = &x[(size_t)r * width + k];
      *v = (*v - mean[c]) / sd[c];
    }
}

/* ---- the file ---- */

static const char *npe_ints(int n, const int *v) {
  const char *s = "";
  for (int i = 0; i < n; i++) s = gc_printf("%s%s%d", s, i ? "," : "", v[i]);
  return s;
}

static StTensor npe_tensor(const char *name, size_t n, double *data) {
  StTensor t = {.name = name, .rank = 1, .numel = n, .data = data};
  t.shape[0] = (int64_t)n;
  return t;
}

typedef struct NpeModel {
  NpeLayout *L;
  NpeNets m;
  int dim, ctx, ehidden, layers, fhidden;
  bool quadratic;               /* the summary's elements with their products (deepset.h) */
  bool pooled;                  /* the flow also reads the pooled features (NpeNets) */
  double *w;                    /* m.nparams */
  double *tmean, *tsd;          /* dim */
  double *xmean, *xsd;          /* L->ncols */
  int *cols;                    /* L->in: the column of each position */
  long simulations;
  int epochs;
  double loss;
  int trained_n[DS_MAXGROUPS];  /* the groups' sizes in training */
} NpeModel;

static bool npe_save(const NpeModel *M, const IrProgram *p, const char *path, Diag *d) {
  StFile f = {.ntensors = 6, .tensors = gc_alloc(sizeof(StTensor) * 6)};
  f.tensors[0] = npe_tensor("summary", M->m.ds.nparams, M->w);
  f.tensors[1] = npe_tensor("flow", M->m.flow.nparams, M->w + M->m.ds.nparams);
  f.tensors[2] = npe_tensor("theta_mean", (size_t)M->dim, M->tmean);
  f.tensors[3] = npe_tensor("theta_sd", (size_t)M->dim, M->tsd);
  f.tensors[4] = npe_tensor("x_mean", (size_t)M->L->ncols, M->xmean);
  f.tensors[5] = npe_tensor("x_sd", (size_t)M->L->ncols, M->xsd);
  st_set_ppl_meta(&f, ir_program_hash(p), ST_KIND_NPE);
  const char *obs = "";
  for (int i = 0; i < M->L->nobs; i++) obs = gc_printf("%s%s%s", obs, i ? "," : "", M->L->obs[i]);
  StMeta extra[] = {
      {"dim", gc_printf("%d", M->dim)},
      {"embed_dim", gc_printf("%d", M->ctx)},
      {"embed_hidden", gc_printf("%d", M->ehidden)},
      {"embed_features", M->quadratic ? "quadratic" : "linear"},
      {"embed_pooled", M->pooled ? "yes" : "no"},
      {"flow_layers", gc_printf("%d", M->layers)},
      {"flow_hidden", gc_printf("%d", M->fhidden)},
      {"observed", obs},
      {"group_sizes", npe_ints(M->L->ngroups, M->L->n)},
      {"group_widths", npe_ints(M->L->ngroups, M->L->width)},
      {"rest", gc_printf("%d", M->L->rest)},
      {"simulations", gc_printf("%ld", M->simulations)},
      {"epochs", gc_printf("%d", M->epochs)},
      {"loss", gc_printf("%.17g", M->loss)},
  };
  int nx = (int)(sizeof extra / sizeof extra[0]);
  StMeta *meta = gc_alloc(sizeof(StMeta) * (size_t)(f.nmeta + nx));
  memcpy(meta, f.meta, sizeof(StMeta) * (size_t)f.nmeta);
  memcpy(meta + f.nmeta, extra, sizeof extra);
  f.meta = meta;
  f.nmeta += nx;
  const char *err = NULL;
  if (st_write(path, &f, &err)) return true;
  diag_error(d, DIAG_IO, (SrcPos){0}, "%s", err ? err : path);
  return false;
}

static bool npe_meta_int(const StFile *f, const char *file, const char *key, int *out, Diag *d) {
  const char *s = st_meta_get(f, key);
  char *end;
  long v = s ? strtol(s, &end, 10) : 0;
  if (!s || *end || v < 0 || v > 1 << 30) {
    diag_error(d, DIAG_DATA, (SrcPos){0}, "%s: the npe metadata '%s' is %s", file, key,
               s ? "not a size" : "missing");
    return false;
  }
  *out = (int)v;
  return true;
}

static const double *npe_find(const StFile *f, const char *file, const char *name, size_t n,
                              Diag *d) {
  const StTensor *t = st_find(f, name);
  if (t && t->numel == n) return t->data;
  diag_error(d, DIAG_DATA, (SrcPos){0}, "%s: tensor '%s' %s (expected %zu values)", file, name,
             t ? gc_printf("has %zu values", t->numel) : "is missing", n);
  return NULL;
}

/* The model of an npe file for the program of `in` and its data: f read
 * from path (given, decoded and checked, by the engine amortized), or NULL to
 * read it here. */
static NpeModel *npe_load(const Interp *in, const StFile *f, const char *path, Diag *d) {
  const IrProgram *p = interp_program(in);
  const char *err = NULL;
  if (!f) {
    StFile *r = st_read(path, &err);
    if (!r) {
      diag_error(d, access(path, R_OK) == 0 ? DIAG_DATA : DIAG_IO, (SrcPos){0}, "%s",
                 err ? err : path);
      return NULL;
    }
    if (!st_check_meta(r, path, ir_program_hash(p), &err)) {
      diag_error(d, DIAG_DATA, (SrcPos){0}, "%s", err);
      return NULL;
    }
    f = r;
  }
  const char *kind = st_meta_get(f, "kind");
  if (!kind || strcmp(kind, ST_KIND_NPE) != 0) {
    diag_error(d, DIAG_DATA, (SrcPos){0},
               "%s: holds %s parameters, not an amortized posterior (ppl train --amortize)", path,
               kind ? kind : "unlabelled");
    return NULL;
  }
  NpeModel *M = gc_alloc(sizeof *M);
  M->L = npe_layout(p, interp_data_regs(in));
  int rest, ng = 0;
  if (!npe_meta_int(f, path, "dim", &M->dim, d) || !npe_meta_int(f, path, "embed_dim", &M->ctx, d) ||
      !npe_meta_int(f, path, "embed_hidden", &M->ehidden, d) ||
      !npe_meta_int(f, path, "flow_layers", &M->layers, d) ||
      !npe_meta_int(f, path, "flow_hidden", &M->fhidden, d) || !npe_meta_int(f, path, "rest", &rest, d))
    return NULL;
  const char *gs = st_meta_get(f, "group_sizes"), *gw = st_meta_get(f, "group_widths");
  int widths[DS_MAXGROUPS];
  for (const char *s = gs ? gs : ""; *s && ng < DS_MAXGROUPS; ng++) {
    char *e;
    M->trained_n[ng] = (int)strtol(s, &e, 10);
    s = *e == ',' ? e + 1 : e;
  }
  int nw = 0;
  for (const char *s = gw ? gw : ""; *s && nw < DS_MAXGROUPS; nw++) {
    char *e;
    widths[nw] = (int)strtol(s, &e, 10);
    s = *e == ',' ? e + 1 : e;
  }
  bool same = nw == ng && ng == M->L->ngroups && rest == M->L->rest;
  for (int g = 0; same && g < ng; g++) same = widths[g] == M->L->width[g];
  if (!same) {
    diag_error(d, DIAG_DATA, (SrcPos){0},
               "%s: trained for data laid out as groups of widths [%s] and %d other reals; these "
               "data have groups of widths [%s] and %d other reals (the sizes the training data "
               "fixed must stay the same)",
               path, gw ? gw : "", rest, npe_ints(M->L->ngroups, M->L->width), M->L->rest);
    return NULL;
  }
  char e2[256];
  /* files from before the products were added say nothing: linear */
  const char *ef = st_meta_get(f, "embed_features");
  M->quadratic = ef && !strcmp(ef, "quadratic");
  if (ef && !M->quadratic && strcmp(ef, "linear")) {
    diag_error(d, DIAG_DATA, (SrcPos){0}, "%s: unknown embed_features \"%s\" (this ppl knows "
               "\"linear\" and \"quadratic\")", path, ef);
    return NULL;
  }
  const char *pooled = st_meta_get(f, "embed_pooled");
  M->pooled = pooled && !strcmp(pooled, "yes");
  if (!npe_nets(&M->m, M->L, M->dim, M->ctx, M->ehidden, M->quadratic, M->pooled, M->layers,
                M->fhidden, e2, sizeof e2)) {
    diag_error(d, DIAG_DATA, (SrcPos){0}, "%s: %s", path, e2);
    return NULL;
  }
  const double *sw, *fw, *tm, *ts, *xm, *xs;
  if (!(sw = npe_find(f, path, "summary", M->m.ds.nparams, d)) ||
      !(fw = npe_find(f, path, "flow", M->m.flow.nparams, d)) ||
      !(tm = npe_find(f, path, "theta_mean", (size_t)M->dim, d)) ||
      !(ts = npe_find(f, path, "theta_sd", (size_t)M->dim, d)) ||
      !(xm = npe_find(f, path, "x_mean", (size_t)M->L->ncols, d)) ||
      !(xs = npe_find(f, path, "x_sd", (size_t)M->L->ncols, d)))
    return NULL;
  M->w = gc_alloc_atomic(sizeof(double) * M->m.nparams);
  memcpy(M->w, sw, sizeof(double) * M->m.ds.nparams);
  memcpy(M->w + M->m.ds.nparams, fw, sizeof(double) * M->m.flow.nparams);
  M->tmean = (double *)tm, M->tsd = (double *)ts, M->xmean = (double *)xm, M->xsd = (double *)xs;
  const char *sims = st_meta_get(f, "simulations"), *ep = st_meta_get(f, "epochs");
  M->simulations = sims ? atol(sims) : 0;
  M->epochs = ep ? atoi(ep) : 0;
  return M;
}

/* ---- training ---- */

/* Training under MPI (o->comm): every rank holds the whole training set and
 * the same weights, and each piece of work is cut into pieces that depend
 * on the options and the simulations alone, never on the number of ranks:
 * simulation s is made by whichever rank's share of 0..S-1 holds it, from
 * its own stream (npe_sim_rng); the held-out loss and the warm start's
 * contexts go by chunks of rows; a step's gradient by --grad-blocks G blocks
 * of its minibatch (npe_grad).  Each rank computes its contiguous share, an
 * allgather gives every rank every piece, and every rank combines them in
 * order: the trained weights have the same bits for every R, and those of
 * one process with the same G.  Without a communicator R is 1. */
typedef struct NpeSplit {
  const MpiComm *comm;
  int R, q;
  bool failed; /* an MPI call failed: the training stops with an error */
} NpeSplit;

/* counts and displacements (w doubles per item) of n items shared among the
   ranks; false when they do not fit MPI's ints */
static bool npe_counts(const NpeSplit *sp, int64_t n, int64_t w, int **cnt, int **dis) {
  *cnt = gc_alloc_atomic(sizeof(int) * 2 * (size_t)sp->R), *dis = *cnt + sp->R;
  if (n * w > INT_MAX) return false;
  for (int r = 0; r < sp->R; r++) {
    int64_t f, c;
    mpi_share(n, sp->R, r, &f, &c);
    (*cnt)[r] = (int)(c * w), (*dis)[r] = (int)(f * w);
  }
  return true;
}

/* The mean loss over the held-out simulations (idx[ntrain..ntrain+nval);
 * the training ones when none are held out), in chunks of B through the
 * buffers bx, bt; the chunks shared among the ranks and added in order. */
static double npe_heldout(const NpeModel *M, const double *X, const double *T, const long *idx,
                          long ntrain, long nval, int B, double *bx, double *bt, Tape *t,
                          NpeSplit *sp) {
  const NpeLayout *L = M->L;
  int dim = M->dim, npi = (int)M->m.nparams;
  long v0 = nval > 0 ? ntrain : 0, vn = nval > 0 ? nval : ntrain;
  int64_t nc = (vn + B - 1) / B, first, count;
  double *v = gc_alloc_atomic(sizeof(double) * (size_t)(nc + 1));
  mpi_share(nc, sp->R, sp->q, &first, &count);
  for (int64_t c = first; c < first + count; c++) {
    long b0 = (long)c * B;
    int nb = (int)(vn - b0 < B ? vn - b0 : B);
    for (int r = 0; r < nb; r++) {
      memcpy(bx + (size_t)r * L->in, X + (size_t)idx[v0 + b0 + r] * L->in, sizeof(double) * L->in);
      memcpy(bt + (size_t)r * dim, T + (size_t)idx[v0 + b0 + r] * (size_t)dim,
             sizeof(double) * (size_t)dim);
    }
    tape_reset(t);
    v[c] = npe_loss(t, &M->m, tensor_const(1, &npi, M->w), nb, nb, bx, bt).v * nb;
  }
  int *cnt, *dis;
  if (!npe_counts(sp, nc, 1, &cnt, &dis) || !mpi_allgatherv(sp->comm, v + first, v, cnt, dis)) {
    sp->failed = true;
    return NAN;
  }
  double sum = 0;
  for (int64_t c = 0; c < nc; c++) sum += v[c];
  return sum / (double)vn;
}

/* Start the flow's base affine at the linear-Gaussian fit: the least-squares
 * regression of the standardised latents on the pooled features (with an
 * intercept) over the training simulations, and the residuals' log sds as
 * its log scales — regression adjustment (Beaumont, Zhang & Balding 2002) —
 * which training then improves on.  The summary network's outputs are left
 * out (at their random start they carry nothing a fit should trust, and
 * each would add to its variance).  The couplings start as the identity, so
 * q starts as that Gaussian.  A singular or failed fit leaves the base at
 * the prior (mu 0, log scale 0). */
static void npe_warm_start(NpeModel *M, const double *X, const double *T, const long *idx,
                           long ntrain, Tape *t, NpeSplit *sp) {
  const NpeNets *m = &M->m;
  int dim = M->dim, K = m->npooled + 1, npi = (int)m->ds.nparams, skip = m->ds.out;
  size_t kk = (size_t)K;
  double *Z = malloc(sizeof(double) * kk * (size_t)ntrain);
  double *G = calloc(kk * kk, sizeof(double)), *Lc = malloc(sizeof(double) * kk * kk);
  double *H = calloc(kk * (size_t)dim, sizeof(double)), *beta = malloc(sizeof(double) * kk * (size_t)dim);
  double *row = malloc(sizeof(double) * M->L->in * NPE_DRAW_BATCH);
  bool ok = Z && G && Lc && H && beta && row;
  /* the contexts in chunks of NPE_DRAW_BATCH rows, shared among the ranks */
  int64_t nc = (ntrain + NPE_DRAW_BATCH - 1) / NPE_DRAW_BATCH, first, count;
  mpi_share(nc, sp->R, sp->q, &first, &count);
  for (long b0 = (long)first * NPE_DRAW_BATCH; ok && b0 < (long)(first + count) * NPE_DRAW_BATCH &&
                                               b0 < ntrain; b0 += NPE_DRAW_BATCH) {
    int nb = (int)(ntrain - b0 < NPE_DRAW_BATCH ? ntrain - b0 : NPE_DRAW_BATCH);
    for (int r = 0; r < nb; r++)
      memcpy(row + (size_t)r * M->L->in, X + (size_t)idx[b0 + r] * M->L->in, sizeof(double) * M->L->in);
    tape_reset(t);
    Tensor c = npe_context(t, m, tensor_const(1, &npi, M->w), nb, row);
    if (!(ok = tensor_ok(c))) break;
    for (int r = 0; r < nb; r++) {
      double *z = Z + (size_t)(b0 + r) * kk;
      memcpy(z, c.d + (size_t)r * m->flow.ctx + skip, sizeof(double) * (kk - 1));
      z[K - 1] = 1;
    }
  }
  if (sp->R > 1) { /* every rank's rows of Z, and whether every rank could */
    bool bad = !ok;
    if (!mpi_allreduce_or(sp->comm, &bad)) bad = true, sp->failed = true;
    ok = !bad;
    int *cnt = gc_alloc_atomic(sizeof(int) * 2 * (size_t)sp->R), *dis = cnt + sp->R;
    for (int r = 0; ok && r < sp->R; r++) {
      int64_t f, c;
      mpi_share(nc, sp->R, r, &f, &c);
      int64_t lo = f * NPE_DRAW_BATCH, hi = (f + c) * NPE_DRAW_BATCH;
      if (lo > ntrain) lo = ntrain;
      if (hi > ntrain) hi = ntrain;
      if (!(ok = hi * (int64_t)kk <= INT_MAX)) sp->failed = true; /* too large to gather */
      cnt[r] = (int)((hi - lo) * (int64_t)kk), dis[r] = (int)(lo * (int64_t)kk);
    }
    if (ok && !mpi_allgatherv(sp->comm, Z + dis[sp->q], Z, cnt, dis)) ok = false, sp->failed = true;
  }
  for (long i = 0; ok && i < ntrain; i++) { /* G = Z'Z (column-major, lower), H = Z'T */
    const double *z = Z + (size_t)i * kk, *th = T + (size_t)idx[i] * (size_t)dim;
    for (int a = 0; a < K; a++) {
      for (int b = a; b < K; b++) G[(size_t)a * kk + b] += z[a] * z[b];
      for (int j = 0; j < dim; j++) H[(size_t)j * kk + a] += z[a] * th[j];
    }
  }
  if (ok) { /* a small ridge keeps collinear contexts solvable */
    double tr = 0;
    for (int a = 0; a < K; a++) tr += G[(size_t)a * kk + a];
    for (int a = 0; a < K; a++) G[(size_t)a * kk + a] += 1e-8 * tr / K + 1e-12;
    ok = la_cholesky(K, G, Lc);
  }
  for (int j = 0; ok && j < dim; j++) {
    la_solve_lower(K, Lc, H + (size_t)j * kk, beta + (size_t)j * kk);
    la_solve_lower_t(K, Lc, beta + (size_t)j * kk, beta + (size_t)j * kk);
  }
  if (ok) {
    double *w = M->w + m->ds.nparams, *W = w + m->flow.base_off;
    size_t od = 2 * (size_t)dim; /* the base layer: W [ctx, 2 dim] row-major, then b [2 dim] */
    for (int j = 0; j < dim; j++) {
      double ss = 0;
      for (long i = 0; i < ntrain; i++) {
        const double *z = Z + (size_t)i * kk, *bj = beta + (size_t)j * kk;
        double r = T[(size_t)idx[i] * (size_t)dim + j];
        for (int a = 0; a < K; a++) r -= z[a] * bj[a];
        ss += r * r;
      }
      double sd = sqrt(ss / (double)ntrain);
      if (!(sd > 0) || !isfinite(sd)) continue;
      w[j] = 0, w[dim + j] = log(sd);
      for (int a = 0; a < K - 1; a++) W[(size_t)(skip + a) * od + j] = beta[(size_t)j * kk + a];
      W[(size_t)m->flow.ctx * od + j] = beta[(size_t)j * kk + K - 1]; /* the bias */
    }
  }
  free(Z), free(G), free(Lc), free(H), free(beta), free(row);
}


/* Simulation s's stream: its own, keyed by its index, so any rank makes it. */
static void npe_sim_rng(Rng *r, const EngineOpts *o, long s) {
  rng_seed(r, o->seed ^ 0x73696d75ull, (uint64_t)s);
}

/* The training set's simulations. */
typedef struct NpeSims {
  const Interp *sim;      /* the program with the observed data simulated */
  const NpeLayout *L;
  const Value *sregs;     /* sim's data registers (the covariates) */
  LogDensity *ld;         /* maps a trace's latents to theta */
  int dim;
  long S;
  const SimDraw *first;   /* simulation first_at, already made */
  long first_at;
  long kept, dropped;     /* over all ranks */
  int fail_rank;          /* the rank holding the first failure with a message, -1: none */
  Diag firstfail;         /* on that rank: the message */
} NpeSims;

/* Simulations 0..S-1, each rank its share, into X (L->in reals a row) and T
 * (dim): the kept ones (finite latents and data) in index order on every
 * rank.  False + d: interrupted (every rank agrees), a program's internal
 * error (the lowest such rank's message), or MPI failed. */
static bool npe_simulate(NpeSims *sm, const EngineOpts *o, NpeSplit *sp, double *X, double *T,
                         Diag *d) {
  const NpeLayout *L = sm->L;
  int dim = sm->dim;
  long S = sm->S;
  int64_t f, c;
  mpi_share(S, sp->R, sp->q, &f, &c);
  /* a rank's rows, then every rank's: in place in one process */
  double *x0 = sp->R > 1 ? malloc(sizeof(double) * L->in * (size_t)(c + 1)) : X;
  double *t0 = sp->R > 1 ? malloc(sizeof(double) * (size_t)dim * (size_t)(c + 1)) : T;
  double *zero = gc_alloc_atomic(sizeof(double) * (size_t)dim);
  /* this rank's [kept, dropped, simulated, first failure's index or -1,
     internal error's index or -1] */
  double mine[5] = {0, 0, 0, -1, -1};
  Diag fatal;
  diag_init(&fatal);
  diag_init(&sm->firstfail);
  long kept = 0;
  for (long s = (long)f; x0 && t0 && s < (long)(f + c); s++) {
    if (engine_interrupted(o)) break; /* nothing trained yet: nothing to save */
    SimDraw sd;
    Diag ed;
    diag_init(&ed);
    Rng rs;
    npe_sim_rng(&rs, o, s);
    bool ok = s == sm->first_at ? (sd = *sm->first, true)
                                : sim_prior_predictive(sm->sim, &rs, 0, &sd, &ed);
    double *x = x0 + (size_t)kept * L->in, *th = t0 + (size_t)kept * (size_t)dim;
    if (ok) {
      npe_row(L, npe_values(L, &sd, sm->sregs), x, NULL);
      TraceSource ts = {.src = {.get = tracesrc_get, .has = tracesrc_has}, .t = sd.trace};
      ok = ld_init_point(sm->ld, &ts.src, "simulation", zero, th, &ed);
    }
    for (size_t k = 0; ok && k < L->in; k++) ok = isfinite(x[k]);
    for (int k = 0; ok && k < dim; k++) ok = isfinite(th[k]);
    mine[2]++;
    if (ok) kept++;
    else {
      if (diag_failed(&ed) && ed.code == DIAG_INTERNAL) {
        fatal = ed, mine[4] = (double)s;
        break;
      }
      if (mine[3] < 0 && diag_failed(&ed)) sm->firstfail = ed, mine[3] = (double)s;
      mine[1]++;
    }
    /* rank 0's share, shown as the whole's */
    if ((s - f + 1) % (c / 10 > 0 ? c / 10 : 1) == 0)
      engine_progress(o, 0, (long)((double)(s - f + 1) * (double)S / (double)c), S, "simulation");
  }
  mine[0] = (double)kept;
  double *all = gc_alloc_atomic(sizeof(double) * 5 * (size_t)sp->R);
  if (!x0 || !t0) mine[4] = -2; /* no memory on this rank */
  if (!mpi_allgather(sp->comm, mine, 5, all)) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "npe: MPI could not share the simulations");
    goto fail;
  }
  long done = 0;
  sm->kept = sm->dropped = 0, sm->fail_rank = -1;
  for (int r = 0; r < sp->R; r++) {
    const double *a = all + 5 * (size_t)r;
    if (a[4] == -2) {
      diag_error(d, DIAG_NOMEM, (SrcPos){0}, "npe: no memory for %ld simulations", S);
      goto fail;
    }
    if (a[4] >= 0) { /* the lowest rank's internal error: the first by index */
      mpi_bcast_diag(sp->comm, r, &fatal, d);
      goto fail;
    }
    if (sm->fail_rank < 0 && a[3] >= 0) sm->fail_rank = r;
    sm->kept += (long)a[0], sm->dropped += (long)a[1], done += (long)a[2];
  }
  if (done < S) {
    diag_error(d, DIAG_INTERRUPTED, (SrcPos){0},
               "interrupted while simulating (%ld of %ld): nothing trained, nothing saved", done,
               S);
    goto fail;
  }
  if (sp->R > 1) { /* every rank's kept rows, in rank order: index order */
    int *cx = gc_alloc_atomic(sizeof(int) * 4 * (size_t)sp->R), *dx = cx + sp->R,
        *ct = dx + sp->R, *dt = ct + sp->R;
    int64_t at = 0;
    bool fits = (int64_t)sm->kept * (int64_t)(L->in > (size_t)dim ? L->in : (size_t)dim) <= INT_MAX;
    for (int r = 0; fits && r < sp->R; r++) {
      int64_t k = (int64_t)all[5 * (size_t)r];
      cx[r] = (int)(k * (int64_t)L->in), dx[r] = (int)(at * (int64_t)L->in);
      ct[r] = (int)(k * dim), dt[r] = (int)(at * dim);
      at += k;
    }
    if (!fits || !mpi_allgatherv(sp->comm, x0, X, cx, dx) ||
        !mpi_allgatherv(sp->comm, t0, T, ct, dt)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "npe: MPI could not gather the %ld simulations%s",
                 sm->kept, fits ? "" : " (more reals than MPI counts)");
      goto fail;
    }
    free(x0), free(t0);
  }
  return true;
fail:
  if (sp->R > 1) free(x0), free(t0);
  return false;
}

/* A step's gradient in blocks (npe_grad). */
typedef struct NpeGrad {
  const NpeModel *M;
  const double *X, *T;   /* the standardised training set */
  double *bx, *bt;       /* a block's rows */
  Tape *t;
  NpeSplit *sp;
  int G;                 /* --grad-blocks (0: one block) */
  double *adj;           /* the backward sweep's adjoints (malloc) */
  size_t adjcap;
  double *buf;           /* every block's [status, loss, gradient] */
  size_t bufcap;
} NpeGrad;

enum { NB_OK, NB_NONFINITE, NB_FATAL }; /* a block's status, worst last */

/* The gradient of the minibatch rows[0..nb) into grad, in G blocks of the
 * rows (block j: [j nb / G, (j + 1) nb / G), its loss divided by nb, so the
 * blocks add up to the minibatch's mean): each rank computes its share of
 * the blocks, each on the tape rewound to the weights' nodes, an allgather
 * gives every rank every block, and every rank adds them in block order.
 * One block is the whole minibatch's loss, recorded as without blocks.
 * 1: grad holds a finite gradient; 0: a block's loss or the gradient is not
 * finite (skip the step); -1 + d: an error, the same on every rank. */
static int npe_grad(NpeGrad *g, const long *rows, int nb, double *grad, Diag *d) {
  const NpeModel *M = g->M;
  const NpeLayout *L = M->L;
  int dim = M->dim, npi = (int)M->m.nparams, G = g->G < 1 ? 1 : g->G < nb ? g->G : nb;
  size_t np = M->m.nparams, w = 2 + np;
  if ((size_t)G * w > g->bufcap) {
    g->bufcap = (size_t)G * w;
    g->buf = gc_alloc_atomic(sizeof(double) * g->bufcap);
  }
  int64_t first, count;
  mpi_share(G, g->sp->R, g->sp->q, &first, &count);
  Diag mine;
  diag_init(&mine);
  Tensor wt = {0};
  TapeMark mark = {0};
  bool ready = false;
  for (int64_t j = first; j < first + count; j++) {
    double *out = g->buf + (size_t)j * w;
    int lo = (int)((int64_t)nb * j / G), n = (int)((int64_t)nb * (j + 1) / G) - lo;
    memset(out, 0, sizeof(double) * w);
    /* the weights' nodes once a step: the blocks after the first rewind to them */
    if (!ready || !tape_rewind(g->t, &mark)) {
      tape_reset(g->t);
      wt = tensor_var(g->t, 1, &npi, M->w);
      mark = tape_mark(g->t);
      ready = true;
    }
    for (int r = 0; r < n; r++) {
      memcpy(g->bx + (size_t)r * L->in, g->X + (size_t)rows[lo + r] * L->in,
             sizeof(double) * L->in);
      memcpy(g->bt + (size_t)r * dim, g->T + (size_t)rows[lo + r] * (size_t)dim,
             sizeof(double) * (size_t)dim);
    }
    AdNum loss = npe_loss(g->t, &M->m, wt, n, nb, g->bx, g->bt);
    out[1] = loss.v;
    if (tape_error(g->t)) {
      out[0] = NB_FATAL;
      if (!diag_failed(&mine))
        diag_error(&mine, DIAG_INTERNAL, (SrcPos){0}, "npe: %s", tape_error(g->t));
      continue;
    }
    if (!isfinite(loss.v)) {
      out[0] = NB_NONFINITE;
      continue;
    }
    size_t need = tape_size(g->t) + 1;
    if (need > g->adjcap) {
      free(g->adj);
      g->adjcap = 2 * need;
      if (!(g->adj = malloc(sizeof(double) * g->adjcap))) {
        g->adjcap = 0;
        out[0] = NB_FATAL;
        if (!diag_failed(&mine))
          diag_error(&mine, DIAG_NOMEM, (SrcPos){0}, "npe: no memory for the gradient");
        continue;
      }
    }
    tape_backward(g->t, loss.n, g->adj); /* zeroes the adjoints first */
    for (size_t i = 0; i < np; i++) out[2 + i] = g->adj[wt.node + (int32_t)i];
  }
  int *cnt, *dis;
  if (!npe_counts(g->sp, G, (int64_t)w, &cnt, &dis) ||
      !mpi_allgatherv(g->sp->comm, g->buf + (size_t)first * w, g->buf, cnt, dis)) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "npe: MPI could not gather the blocks' gradients");
    return -1;
  }
  int worst = NB_OK, at = -1;
  for (int j = 0; j < G; j++) {
    int st = (int)g->buf[(size_t)j * w];
    if (st > worst) worst = st, at = j;
  }
  if (worst == NB_FATAL) {
    mpi_bcast_diag(g->sp->comm, mpi_share_owner(G, g->sp->R, at), &mine, d);
    return -1;
  }
  if (worst != NB_OK) return 0;
  memcpy(grad, g->buf + 2, sizeof(double) * np); /* in block order */
  for (int j = 1; j < G; j++) {
    const double *row = g->buf + (size_t)j * w + 2;
    for (size_t i = 0; i < np; i++) grad[i] += row[i];
  }
  bool finite = true;
  for (size_t i = 0; i < np && finite; i++) finite = isfinite(grad[i]);
  return finite;
}

bool npe_train(const IrProgram *p, DataSource *data, const EngineOpts *o, const char *save,
               NpeTrainInfo *info, Diag *d) {
  double t0 = npe_now();
  NpeTrainInfo local;
  if (!info) info = &local;
  memset(info, 0, sizeof *info);
  if (!npe_fits(p, d)) return false;
  NpeWalk *w = npe_scan(p);
  int nobs = w->nord;
  const char **names = gc_alloc(sizeof(char *) * (size_t)(nobs + 1));
  for (int i = 0; i < nobs; i++) names[i] = w->data_name[w->order[i]];
  if (nobs == 0) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "%s: cannot amortize the program: no observation reads a data variable (nothing "
               "to condition on)",
               p->file);
    return false;
  }
  Interp *sim = interp_new(p, NULL);
  if (!interp_load_data_sim(sim, data, nobs, names, d)) return false;
  NpeLayout *L = npe_layout(p, interp_data_regs(sim));
  const Value *sregs = interp_data_regs(sim);
  Rng trng;
  rng_seed(&trng, o->seed ^ 0x6e7065u, 0);
  long S = npe_opt(o, "simulations").i;
  NpeSplit sp = {.comm = o->comm, .R = mpi_size(o->comm), .q = mpi_rank(o->comm)};
  /* the first simulation's data make the Interp whose log density maps
     latents to theta (any data: only the latents' shapes matter); every
     rank makes the same one */
  SimDraw first;
  Diag fd;
  diag_init(&fd);
  bool got = false;
  long first_at = 0;
  for (; first_at < 100 && !got; first_at++) {
    diag_init(&fd);
    Rng rs;
    npe_sim_rng(&rs, o, first_at);
    got = sim_prior_predictive(sim, &rs, 0, &first, &fd);
  }
  first_at--;
  if (!got) {
    *d = fd;
    return false;
  }
  SimSource ss = {.src = {.get = simsrc_get, .has = simsrc_has}, .user = data, .sd = &first};
  Interp *real = interp_new(p, NULL);
  if (!interp_load_data(real, &ss.src, d)) return false;
  LogDensity *ld = ld_new(real, d);
  if (!ld) return false;
  int dim = (int)ld_dim(ld);
  if (dim < 1) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s: cannot amortize the program: it has no "
               "continuous latents", p->file);
    return false;
  }
  /* simulate */
  double *X = malloc(sizeof(double) * L->in * (size_t)S);
  double *T = malloc(sizeof(double) * (size_t)dim * (size_t)S);
  int *cols = gc_alloc_atomic(sizeof(int) * (L->in + 1));
  if (!X || !T) {
    free(X), free(T);
    diag_error(d, DIAG_NOMEM, (SrcPos){0}, "npe: no memory for %ld simulations", S);
    return false;
  }
  npe_row(L, npe_values(L, &first, sregs), X, cols); /* the columns: the layout's alone */
  NpeSims sims = {.sim = sim, .L = L, .sregs = sregs, .ld = ld, .dim = dim, .S = S,
                  .first = &first, .first_at = first_at};
  if (!npe_simulate(&sims, o, &sp, X, T, d)) {
    free(X), free(T);
    return false;
  }
  long kept = sims.kept;
  long nval = kept < 10 ? 0 : (long)ceil(NPE_HOLDOUT * (double)kept);
  long ntrain = kept - nval;
  if (ntrain < 2) {
    Diag firstfail;
    diag_init(&firstfail);
    if (sims.fail_rank >= 0) mpi_bcast_diag(sp.comm, sims.fail_rank, &sims.firstfail, &firstfail);
    diag_error(d, DIAG_RUNTIME, (SrcPos){0},
               "npe: only %ld of %ld simulations gave finite latents and data%s%s", kept,
               kept + sims.dropped, diag_failed(&firstfail) ? "; the first failure: " : "",
               diag_failed(&firstfail) ? firstfail.msg : "");
    free(X), free(T);
    return false;
  }
  NpeModel M = {.L = L, .dim = dim, .cols = cols};
  M.ctx = (int)npe_opt(o, "embed-dim").i;
  M.ehidden = (int)npe_opt(o, "embed-hidden").i;
  M.layers = (int)npe_opt(o, "flow-layers").i;
  M.fhidden = (int)npe_opt(o, "flow-hidden").i;
  M.simulations = kept;
  char err[256];
  /* the elements' products where they are few (rows of a regression, not
     images) */
  M.quadratic = L->ngroups > 0;
  for (int g = 0; g < L->ngroups; g++) M.quadratic = M.quadratic && L->width[g] <= NPE_QUAD_WIDTH;
  int npooled = L->rest;
  for (int g = 0; g < L->ngroups; g++)
    npooled += L->width[g] + (M.quadratic ? L->width[g] * (L->width[g] + 1) / 2 : 0);
  M.pooled = npooled <= NPE_POOLED_MAX;
  if (!npe_nets(&M.m, L, dim, M.ctx, M.ehidden, M.quadratic, M.pooled, M.layers, M.fhidden, err,
                sizeof err)) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "npe: %s", err);
    free(X), free(T);
    return false;
  }
  /* standardise */
  M.tmean = gc_alloc_atomic(sizeof(double) * (size_t)dim);
  M.tsd = gc_alloc_atomic(sizeof(double) * (size_t)dim);
  M.xmean = gc_alloc_atomic(sizeof(double) * (size_t)L->ncols);
  M.xsd = gc_alloc_atomic(sizeof(double) * (size_t)L->ncols);
  npe_stats((int)kept, dim, T, dim, NULL, (size_t)dim, M.tmean, M.tsd);
  npe_stats((int)kept, (int)L->in, X, L->ncols, cols, L->in, M.xmean, M.xsd);
  npe_standardise((int)kept, (size_t)dim, T, NULL, M.tmean, M.tsd);
  npe_standardise((int)kept, L->in, X, cols, M.xmean, M.xsd);
  /* the held-out simulations are the last nval of a shuffled order */
  long *idx = malloc(sizeof(long) * (size_t)(kept + 1));
  for (long i = 0; i < kept; i++) idx[i] = i;
  for (long i = kept - 1; i > 0; i--) {
    long j = (long)rng_int(&trng, 0, (int64_t)i), tmp = idx[i];
    idx[i] = idx[j], idx[j] = tmp;
  }
  size_t np = M.m.nparams;
  M.w = gc_alloc_atomic(sizeof(double) * np);
  ds_init(&M.m.ds, &trng, M.w);
  rnvp_init(&M.m.flow, &trng, M.w + M.m.ds.nparams);
  Tape *t = tape_new();
  if (M.m.npooled) npe_warm_start(&M, X, T, idx, ntrain, t, &sp);
  double *best = gc_alloc_atomic(sizeof(double) * np), *grad = gc_alloc_atomic(sizeof(double) * np);
  memcpy(best, M.w, sizeof(double) * np);
  int B = (int)npe_opt(o, "batch").i, epochs = (int)npe_opt(o, "epochs").i;
  if (B > ntrain) B = (int)ntrain;
  long nbatch = ntrain > 0 ? (ntrain + B - 1) / B : 0;
  OptimConfig oc;
  optim_config_default(&oc, OPTIM_ADAM);
  oc.lr = npe_opt(o, "lr").r;
  oc.clip_norm = NPE_CLIP;
  oc.sched = OPTIM_SCHED_COSINE;
  oc.horizon = (long)epochs * nbatch;
  oc.lr_min = oc.lr / 20;
  Optim *opt = optim_new(&oc, np);
  double *bx = malloc(sizeof(double) * L->in * (size_t)(B > 0 ? B : 1));
  double *bt = malloc(sizeof(double) * (size_t)dim * (size_t)(B > 0 ? B : 1));
  NpeGrad g = {.M = &M, .X = X, .T = T, .bx = bx, .bt = bt, .t = t, .sp = &sp};
  g.G = (int)npe_opt(o, "grad-blocks").i;
  if (!g.G && o->comm) g.G = MPI_TRAIN_BLOCKS;
  /* the start (the warm start's Gaussian) competes with the epochs */
  double best_loss = npe_heldout(&M, X, T, idx, ntrain, nval, B, bx, bt, t, &sp);
  if (!isfinite(best_loss)) best_loss = INFINITY;
  int done = 0;
  for (int ep = 0; ep < epochs && !info->interrupted; ep++) {
    for (long i = ntrain - 1; i > 0; i--) { /* reshuffle the training part */
      long j = (long)rng_int(&trng, 0, (int64_t)i), tmp = idx[i];
      idx[i] = idx[j], idx[j] = tmp;
    }
    for (long b0 = 0; b0 < ntrain; b0 += B) {
      bool stop = engine_interrupted(o);
      if (sp.R > 1 && !mpi_allreduce_or(sp.comm, &stop)) sp.failed = true;
      if (stop || sp.failed) { /* the ranks agree: every one keeps what it has */
        info->interrupted = true;
        break;
      }
      int nb = (int)(ntrain - b0 < B ? ntrain - b0 : B);
      int ready = npe_grad(&g, idx + b0, nb, grad, d);
      if (ready < 0) goto fail;
      if (ready) optim_step(opt, M.w, grad); /* else a step that would poison the weights */
    }
    double vloss = npe_heldout(&M, X, T, idx, ntrain, nval, B, bx, bt, t, &sp);
    if (!info->interrupted) done = ep + 1;
    if (vloss < best_loss) {
      best_loss = vloss;
      memcpy(best, M.w, sizeof(double) * np);
    }
    engine_progress(o, 0, ep + 1, epochs, "epoch");
  }
  if (sp.failed) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "npe: MPI could not share the training's results");
    goto fail;
  }
  /* back to theta's own units: log q(theta) = log q(z) - sum log sd */
  for (int k = 0; k < dim; k++) best_loss += log(M.tsd[k]);
  memcpy(M.w, best, sizeof(double) * np);
  M.epochs = done;
  M.loss = best_loss;
  /* every rank trained the same weights: rank 0 writes them, and the others
     learn whether it could */
  if (save) {
    bool wrote = sp.q != 0 || npe_save(&M, p, save, d), bad = !wrote;
    if (!mpi_allreduce_or(sp.comm, &bad)) bad = true;
    if (bad && wrote) diag_error(d, DIAG_IO, (SrcPos){0}, "train: rank 0 could not write %s", save);
    if (bad) goto fail;
  }
  info->simulations = kept;
  info->epochs = done;
  info->loss = best_loss;
  info->seconds = npe_now() - t0;
  free(X), free(T), free(idx), free(bx), free(bt), free(g.adj);
  optim_free(opt);
  return true;
fail:
  free(X), free(T), free(idx), free(bx), free(bt), free(g.adj);
  optim_free(opt);
  return false;
}

/* ---- drawing: the amortized engine's half for npe files ---- */

typedef struct NpeState {
  const EngineOpts *o;
  int chain;
  const char *file;
  NpeModel *M;
  LogDensity *ld;
  LdWork *work;
  double *ctx;           /* the flow's context for the observed data, M->m.flow.ctx reals */
  double *bth, *blq;     /* draws of q made a batch at a time (npe_refill) */
  double *blp;           /* their log densities, [0, bweighed) evaluated (npe_weigh) */
  int bweighed;
  long want, made;       /* draws the chain asks for, draws handed out */
  double *bctx;          /* the context's NPE_DRAW_BATCH rows, the flow's input */
  double *beps, *bx, *bld, *bwork; /* the flow's base draws, outputs, log dets, workspace */
  int bnext;             /* the next of them; NPE_DRAW_BATCH: none left */
  Rng draw_rng, out_rng;
  Diag last_fail;
  const char *notes;
  ViDraws draws;         /* the steps' draws, their log weights, the resampled pool */
  const char *backend;   /* why the log density is interpreted, when ld_jit_pays said so */
} NpeState;

/* The next NPE_DRAW_BATCH draws of q in one pass of the flow, off the tape
 * (rnvp_forward_values: one BLAS product per network layer for the batch,
 * the buffers made once in npe_init): thetas in s->bth, log q in s->blq. */
static void npe_refill(NpeState *s) {
  NpeModel *M = s->M;
  int dim = M->dim, B = NPE_DRAW_BATCH;
  double lsd = 0;
  for (int i = 0; i < dim; i++) lsd += log(M->tsd[i]);
  for (int b = 0; b < B; b++) {
    double q = -0.5 * dim * log(2 * M_PI) - lsd;
    for (int i = 0; i < dim; i++) {
      double eps = rng_normal(&s->draw_rng);
      s->beps[(size_t)b * dim + i] = eps;
      q -= 0.5 * eps * eps;
    }
    s->blq[b] = q;
  }
  rnvp_forward_values(&M->m.flow, M->w + M->m.ds.nparams, B, s->bctx, s->beps, s->bx, s->bld,
                      s->bwork);
  for (int b = 0; b < B; b++) {
    s->blq[b] -= s->bld[b];
    for (int i = 0; i < dim; i++)
      s->bth[(size_t)b * dim + i] = M->tmean[i] + M->tsd[i] * s->bx[(size_t)b * dim + i];
  }
  s->bnext = 0;
  s->bweighed = 0;
}

/* log p at the batch's draws [bnext, bnext + m) as one batch (ld_eval_batch:
 * compiled code makes the data matrix's products for all of them at once),
 * m the draws the chain still asks for (o->draws * o->thin in all, the
 * fresh draws or the pool of --psis-resample), at least one: the flow's
 * last batch has more draws than the chain uses, and their log densities
 * are the cost that matters. */
static bool npe_weigh(NpeState *s, Diag *d) {
  long left = s->want - s->made;
  int m = NPE_DRAW_BATCH - s->bnext;
  if (left >= 1 && left < m) m = (int)left;
  if (!ld_eval_batch(s->work, (size_t)m, s->bth + (size_t)s->bnext * s->M->dim,
                     s->blp + s->bnext, &s->last_fail, d))
    return false;
  s->bweighed = s->bnext + m;
  return true;
}

/* theta ~ q(. | x) with log q(theta | x) in *lq, log p(theta, x) in *lp. */
static bool npe_sample(void *state, double *theta, double *lp, double *lq, Diag *d) {
  NpeState *s = state;
  int dim = s->M->dim;
  if (s->bnext == NPE_DRAW_BATCH) npe_refill(s);
  if (s->bnext == s->bweighed && !npe_weigh(s, d)) return false;
  memcpy(theta, s->bth + (size_t)s->bnext * dim, sizeof(double) * (size_t)dim);
  *lq = s->blq[s->bnext];
  *lp = s->blp[s->bnext++];
  s->made++;
  if (isnan(*lp) || *lp == INFINITY) *lp = -INFINITY;
  return true;
}

void *npe_init_loaded(const Interp *in, const EngineOpts *o, int chain, const StFile *f,
                      Diag *d) {
  const OptValue *lv = opt_set_get(o->set, "load");
  if (!lv || !lv->path) {
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "the amortized engine needs the file `ppl train` wrote: --load FILE");
    return NULL;
  }
  NpeState *s = gc_alloc(sizeof *s);
  s->o = o, s->chain = chain, s->file = lv->path;
  if (!(s->M = npe_load(in, f, lv->path, d))) return NULL;
  NpeModel *M = s->M;
  /* the log density weighs each draw once: compile only where that pays */
  s->ld = ld_shared(in, false, d);
  if (!s->ld) return NULL;
  double evals = (double)o->draws * o->thin * o->chains;
  if (!o->no_jit && ld_jit_pays(s->ld, evals)) {
    s->ld = ld_shared(in, true, d);
    if (!s->ld) return NULL;
  } else if (!o->no_jit) {
    s->backend = gc_printf("interpreter (%.0f evaluations of the log density: compiling it "
                           "would cost more than it saves)", evals);
  }
  if ((int)ld_dim(s->ld) != M->dim) {
    diag_error(d, DIAG_DATA, (SrcPos){0},
               "%s: trained for %d unconstrained latents; with these data the program has %zu",
               lv->path, M->dim, ld_dim(s->ld));
    return NULL;
  }
  s->work = ld_work_new(s->ld);
  rng_seed(&s->draw_rng, o->seed ^ 0x64726177u, (uint64_t)chain);
  rng_seed(&s->out_rng, o->seed ^ 0x6e706564u, (uint64_t)chain);
  diag_init(&s->last_fail);
  /* the observed data, embedded once */
  NpeLayout *L = M->L;
  double *row = gc_alloc_atomic(sizeof(double) * (L->in + 1));
  int *cols = gc_alloc_atomic(sizeof(int) * (L->in + 1));
  npe_row(L, npe_values(L, NULL, interp_data_regs(in)), row, cols);
  for (size_t k = 0; k < L->in; k++) {
    if (!isfinite(row[k])) {
      diag_error(d, DIAG_DATA, (SrcPos){0}, "the amortized posterior needs finite data");
      return NULL;
    }
    row[k] = (row[k] - M->xmean[cols[k]]) / M->xsd[cols[k]];
  }
  s->ctx = gc_alloc_atomic(sizeof(double) * (size_t)M->m.flow.ctx);
  if (!npe_embed(&M->m, M->w, row, s->ctx)) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "npe: out of memory embedding the data");
    return NULL;
  }
  vi_draws_init(&s->draws, (size_t)M->dim, npe_sample, s);
  s->bth = gc_alloc_atomic(sizeof(double) * (size_t)M->dim * NPE_DRAW_BATCH);
  s->blq = gc_alloc_atomic(sizeof(double) * NPE_DRAW_BATCH);
  s->blp = gc_alloc_atomic(sizeof(double) * NPE_DRAW_BATCH);
  s->want = (long)o->draws * o->thin;
  int fctx = M->m.flow.ctx;
  s->bctx = gc_alloc_atomic(sizeof(double) * (size_t)(fctx ? fctx : 1) * NPE_DRAW_BATCH);
  for (int b = 0; b < NPE_DRAW_BATCH; b++)
    memcpy(s->bctx + (size_t)b * fctx, s->ctx, sizeof(double) * (size_t)fctx);
  s->beps = gc_alloc_atomic(sizeof(double) * (size_t)M->dim * NPE_DRAW_BATCH);
  s->bx = gc_alloc_atomic(sizeof(double) * (size_t)M->dim * NPE_DRAW_BATCH);
  s->bld = gc_alloc_atomic(sizeof(double) * NPE_DRAW_BATCH);
  s->bwork = gc_alloc_atomic(sizeof(double) * rnvp_work(&M->m.flow, NPE_DRAW_BATCH));
  s->bnext = NPE_DRAW_BATCH;
  s->notes = gc_printf("amortized posterior from %s (neural posterior estimation: %ld "
                       "simulations, %d epochs); no optimisation for these data",
                       lv->path, M->simulations, M->epochs);
  for (int g = 0; g < L->ngroups; g++)
    if (M->trained_n[g] != L->n[g])
      s->notes = gc_printf("%s; trained with %d exchangeable elements where these data have %d: "
                           "check the k-hat",
                           s->notes, M->trained_n[g], L->n[g]);
  if (npe_opt(o, "psis-resample").i &&
      !vi_draws_resample(&s->draws, o->draws * o->thin, &s->draw_rng, d))
    return NULL;
  return s;
}

static void *npe_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  return npe_init_loaded(in, o, chain, NULL, d);
}

static bool npe_step(void *state, bool warmup, Draw *out, Diag *d) {
  (void)warmup;
  NpeState *s = state;
  return vi_draws_step(&s->draws, s->work, &s->out_rng, s->chain, out, d);
}

static void npe_free(void *state) { (void)state; /* GC memory; the log density is shared */ }

static const char *npe_backend(void *state) {
  NpeState *s = state;
  return s->backend ? s->backend : ld_backend(s->ld);
}

/* The same for every chain: said once, by the first. */
static const char *npe_notes(void *state) {
  NpeState *s = state;
  return s->chain == 0 ? s->notes : NULL;
}

static bool npe_vi_report(void *state, ViReport *r) {
  NpeState *s = state;
  double sum = 0;
  int n = 0;
  for (int i = 0; i < s->draws.nlw; i++)
    if (isfinite(s->draws.lw[i])) sum += s->draws.lw[i], n++;
  *r = (ViReport){
      .family = "npe",
      .elbo = n ? sum / n : -INFINITY, /* E_q[log p - log q] over the draws */
      .iterations = s->M->epochs,
      .converged = true,
      .loaded = s->file,
      .resampled = s->draws.pool != NULL,
      .n = s->draws.nlw,
      .lw = s->draws.lw,
  };
  return true;
}

static const char *npe_csv_info(void *state) {
  NpeState *s = state;
  return gc_printf("Amortized posterior loaded (--load %s).\nfamily = npe\nsimulations = %ld\n"
                   "epochs = %d\npsis_resample = %d",
                   s->file, s->M->simulations, s->M->epochs, s->draws.pool != NULL);
}

const EngineVT npe_draws = {
    .name = "amortized",
    .summary = "draws from an amortized posterior trained by `ppl train --amortize` (neural "
               "posterior estimation), with PSIS diagnostics",
    .nstats = 2,
    .stat_names = {"log_p__", "log_g__"},
    .weighted = false,
    .uses_warmup = false,
    .traits = ENGINE_GRADIENT | ENGINE_IMPROPER,
    .options = {npe_options},
    .init = npe_init,
    .step = npe_step,
    .free = npe_free,
    .adaptation_info = npe_csv_info,
    .chain_notes = npe_notes,
    .backend = npe_backend,
    .vi_report = npe_vi_report,
};
