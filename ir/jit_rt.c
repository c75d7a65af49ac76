/* jit_rt.c — the runtime library of compiled log densities.
 *
 * Compiled code calls jit_rt_op for every operation it does not lower itself
 * (container arithmetic, builtins, distributions, latents, general indexing):
 * the operation runs exactly as in the interpreter (ir/interp_ops.c,
 * stdlib/builtins.h, stdlib/dist.h), on operands that carry fresh nodes of a
 * small tape, and the record of that tape is what jit_rt_op_rev sweeps back
 * when the adjoint code reaches the operation.  So every operation has one
 * implementation, and the compiled and interpreted densities agree.
 *
 * Memory of one evaluation (boxes, adjoints, records) comes from an arena of
 * chunks, rewound by jit_rt_begin: steady-state evaluation allocates only what
 * the interpreter's operations allocate themselves.  Everything hangs off the
 * JitCtx, which is ordinary collected memory (the collector scans the saved
 * values' stack too, so records referenced only from there stay alive).
 */
#include "jit_rt.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../stdlib/mathfn.h"
#include "../stdlib/tensor.h"
#include "../stdlib/transform.h"
#include "interp_ops.h"

#define JIT_CHUNK (1u << 20)
#define JIT_ERRSZ 512

typedef enum { FR_NONE = 0, FR_DIST, FR_SAMPLE, FR_WHOLE, FR_BLOCK, FR_STRUCT, FR_SLICE, FR_NOGRAD } FastKind;

struct JitRec {
  const JitSite *s;
  uint8_t fast;      /* FastKind: a record of the fast paths below, not a tape */
  double **g;        /* FR_DIST/FR_SAMPLE/FR_WHOLE: per operand, partials per element ... */
  double *gs;        /* ... or summed, for scalar operands */
  double *du, *dxdu; /* FR_SAMPLE: d lp / d u and d x / d u per scalar */
  size_t n;
  bool scaled;       /* FR_DIST of NAME_lpdf: partials times its result's adjoint */
  Tape *t;
  int32_t *in_node;  /* per operand: its (first) tape variable, 0 if none */
  JitBox **in_box;   /* per operand: the box, for containers with adjoints */
  int32_t out_node;  /* scalar result */
  JitBox *out_box;   /* container result with adjoints (or the stored-into box) */
  int32_t *out_nodes;
  int32_t lp_node;   /* latents and observations: their log density */
  size_t th_off, th_n; /* FR_SLICE: the first element's offset and the stride */
  int32_t th_node0;
  const BiBlock *blk; /* FR_BLOCK: what the builtin's vector-Jacobian product needs */
  /* FR_STRUCT: units of tf_unit scalars from tf_m reals of theta each; the
     density's partials in x (du, val_flatten order), x itself (dxdu) */
  int tf_unit, tf_m;
  bool tf_whole;      /* partials of the parameters as FR_WHOLE keeps them */
};

/* ---- arena ---- */


static void *arena_alloc_raw(JitCtx *cx, size_t n);

static void *arena_alloc(JitCtx *cx, size_t n) {
  void *p = arena_alloc_raw(cx, n);
  memset(p, 0, n);
  return p;
}

static void *arena_alloc_raw(JitCtx *cx, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n > JIT_CHUNK / 4) {
    /* A big block of its own.  An evaluation makes the same requests in the
       same order as the last one (sizes come from the data), so the i-th
       block is kept and reused: a fresh collected block every evaluation
       cost its zeroing and new pages (a fifth of a logistic regression's
       gradient with N = 5000). */
    if (cx->nbig < cx->nkept && cx->bigsz[cx->nbig] >= n) return cx->big[cx->nbig++];
    if (cx->nbig == cx->nkept) {
      int cap = cx->capbig;
      cx->big = gc_grow(cx->big, cx->nkept, &cx->capbig, sizeof(char *));
      cx->bigsz = gc_grow(cx->bigsz, cx->nkept, &cap, sizeof(size_t));
      cx->nkept++;
    }
    cx->bigsz[cx->nbig] = n; /* the smaller block it replaces goes to the collector */
    return cx->big[cx->nbig++] = gc_alloc(n);
  }
  if (cx->nchunks == 0 || cx->used + n > JIT_CHUNK) {
    if (cx->nchunks > 0 && cx->chunk + 1 < cx->nchunks) {
      cx->chunk++;
    } else {
      cx->chunks = gc_grow(cx->chunks, cx->nchunks, &cx->capchunks, sizeof(char *));
      cx->chunks[cx->nchunks] = gc_alloc(JIT_CHUNK);
      cx->chunk = cx->nchunks++;
    }
    cx->used = 0;
  }
  void *p = cx->chunks[cx->chunk] + cx->used;
  cx->used += n;
  return p;
}

JitCtx *jit_ctx_new(const Jit *j) {
  JitCtx *cx = gc_alloc(sizeof(JitCtx));
  cx->jit = j;
  cx->cap = 4096;
  cx->stk = gc_alloc(sizeof(double) * (size_t)cx->cap);
  cx->bctx.out = stdout;
  cx->bctx.rng = &cx->rng;
  rng_seed(&cx->rng, 0x6a6974, 0);
  const JitData *d = jit_data0(j);
  cx->dregs = d ? d->reg : NULL;
  return cx;
}

void jit_ctx_set_data(JitCtx *cx, const JitData *d) { cx->dregs = d->reg; }

static void mvb_enter(const JitCtx *cx, const double *theta);

void jit_rt_begin(JitCtx *cx, const double *theta, double *grad) {
  /* products from a batch only for its own points: not for an evaluation
     the batch did not start (another context, or a batch left behind by an
     out-of-memory unwind) */
  mvb_enter(cx, theta);
  cx->nbig = 0; /* the big blocks are kept for this evaluation's requests */
  cx->chunk = 0;
  cx->used = cx->nchunks ? 0 : JIT_CHUNK;
  cx->theta = theta;
  cx->grad = grad;
  cx->k = 0;
  cx->ntape_used = 0;
}

double *jit_rt_grow(JitCtx *cx, int64_t need) {
  int64_t cap = cx->cap;
  while (cap < need) cap *= 2;
  double *s = gc_alloc(sizeof(double) * (size_t)cap);
  memcpy(s, cx->stk, sizeof(double) * (size_t)cx->cap);
  cx->stk = s;
  cx->cap = cap;
  return s;
}

static Tape *next_tape(JitCtx *cx) {
  if (cx->ntape_used == cx->ntapes) {
    cx->tapes = gc_grow(cx->tapes, cx->ntapes, &cx->captapes, sizeof(Tape *));
    cx->tapes[cx->ntapes++] = tape_new();
  }
  Tape *t = cx->tapes[cx->ntape_used++];
  tape_reset(t);
  return t;
}

static bool is_ten_kind(int k) { return k == V_VEC || k == V_ROWVEC || k == V_MAT; }

/* ---- nodes on values ---- */

/* Give every real of v a new tape variable, in val_flatten order. */
static void attach_vars(Tape *t, Value *v) {
  switch (v->k) {
  case V_REAL: v->ad = tape_var(t, v->r); break;
  case V_ARR:
    for (int i = 0; i < v->a->n; i++) attach_vars(t, &v->a->e[i]);
    break;
  case V_VEC: case V_ROWVEC: case V_MAT: {
    size_t n = (size_t)v->t->rows * (size_t)v->t->cols;
    v->t->ad = gc_alloc_atomic(sizeof(int32_t) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v->t->ad[i] = tape_var(t, v->t->d[i]);
    break;
  }
  default: break;
  }
}

/* Take the nodes off v (they belong to this record's tape only). */
static void detach(Value *v) {
  switch (v->k) {
  case V_REAL: v->ad = 0; break;
  case V_ARR:
    for (int i = 0; i < v->a->n; i++) detach(&v->a->e[i]);
    break;
  case V_VEC: case V_ROWVEC: case V_MAT: v->t->ad = NULL; break;
  default: break;
  }
}

/* Nodes of v's reals in val_flatten order (ints take a slot with node 0). */
static void get_nodes(Value v, int32_t *out, size_t *k) {
  switch (v.k) {
  case V_REAL: out[(*k)++] = v.ad; break;
  case V_INT: case V_BOOL: out[(*k)++] = 0; break;
  case V_ARR:
    for (int i = 0; i < v.a->n; i++) get_nodes(v.a->e[i], out, k);
    break;
  case V_VEC: case V_ROWVEC: case V_MAT: {
    size_t n = (size_t)v.t->rows * (size_t)v.t->cols;
    for (size_t i = 0; i < n; i++) out[(*k)++] = v.t->ad ? v.t->ad[i] : 0;
    break;
  }
  default: break;
  }
}

static JitBox *box_new(JitCtx *cx, Value v, bool active) {
  JitBox *b = arena_alloc(cx, sizeof(JitBox));
  b->v = v;
  b->n = (int64_t)val_numel(v);
  if (active) b->adj = arena_alloc(cx, sizeof(double) * (size_t)(b->n ? b->n : 1));
  return b;
}

/* ---- one operation ---- */

static Value arg_value(JitRec *r, int k, const JitArg *a, Tape *t) {
  Value v = val_none();
  switch (r->s->akind[k]) {
  case JA_REAL: v = val_real(a->r); break;
  case JA_REAL_ACT:
    v = val_real(a->r);
    v.ad = r->in_node[k] = tape_var(t, a->r);
    break;
  case JA_INT: v = val_int(a->i); break;
  case JA_BOOL: v = val_bool(a->i != 0); break;
  case JA_BOX: v = a->b->v; break;
  case JA_BOX_ACT:
    v = a->b->v;
    if (a->b->adj) {
      r->in_node[k] = (int32_t)tape_size(t) + 1;
      attach_vars(t, &v);
      r->in_box[k] = a->b;
    }
    break;
  default: break;
  }
  return v;
}

static double bound_arg(const Value *v, int k, double absent) {
  return k < 0 ? absent : val_as_real(v[k]);
}

/* A draw's nested latent: its name, its loops' indices (idx, as the site
   passes them) and its value (as put_sample keeps it: a real latent holds a
   real), appended to cx->choices for jit_draw_nested. */
static bool record_choice(JitCtx *cx, const JitSite *s, const Value *idx, Value v) {
  if (cx->nchoices == cx->capchoices) {
    int cap = cx->capchoices ? 2 * cx->capchoices : 64;
    JitChoice *c = gc_alloc(sizeof(JitChoice) * (size_t)cap);
    if (cx->nchoices) memcpy(c, cx->choices, sizeof(JitChoice) * (size_t)cx->nchoices);
    cx->choices = c;
    cx->capchoices = cap;
  }
  Type t = s->fn->regtypes[s->ins->dst];
  if (t.ndims == 0 && t.base == TY_REAL && v.k == V_INT) v = val_real((double)v.i);
  JitChoice *c = &cx->choices[cx->nchoices++];
  c->name = s->ins->name;
  c->nidx = s->nloops;
  for (int k = 0; k < s->nloops; k++) c->idx[k] = idx[k].i;
  c->v = v.k >= V_ARR ? val_copy(v) : v; /* a container's box is the arena's */
  if (v.k == V_REAL) c->v.ad = 0;
  return true;
}

static bool run_sample(JitCtx *cx, JitRec *r, const Value *v, Tape *t, Value *out, double *lp,
                       char *err) {
  const JitSite *s = r->s;
  const IrInstr *ins = s->ins;
  const JitLatents *lat = jit_latents(cx->jit);
  int np = ins->dist.nparams;
  int lo = ins->con.lower >= 0 ? np : -1;
  int hi = ins->con.upper >= 0 ? np + (lo >= 0) : -1;
  int sz0 = np + (lo >= 0) + (hi >= 0);
  int sizes[8];
  int n = s->nsizes < 8 ? s->nsizes : 8;
  for (int i = 0; i < n; i++) {
    if (v[sz0 + i].i < 0) return false;
    sizes[i] = (int)v[sz0 + i].i;
  }
  DistCall dc;
  if (!dist_call_init(&dc, ins->dist.fam, np, v, (ConKind)ins->con.kind,
                      bound_arg(v, lo, -INFINITY), bound_arg(v, hi, INFINITY),
                      s->fn->regtypes[ins->dst], n, sizes, err, JIT_ERRSZ))
    return false;
  if (lo >= 0 && v[lo].k == V_REAL && dc.lower == v[lo].r) dc.lower_ad = v[lo].ad;
  if (hi >= 0 && v[hi].k == V_REAL && dc.upper == v[hi].r) dc.upper_ad = v[hi].ad;
  if (s->choice) { /* the draws pass's choice: as the interpreter's draw handler */
    *lp = 0;
    if (!dist_call_rng(&dc, &cx->drng, out, err, JIT_ERRSZ)) return false;
  } else {
    if (cx->k >= lat->n) return false;
    if (!lat->sample(lat->ud, cx->k++, &dc, t, cx->theta, out, lp, &r->lp_node, &r->th_off,
                     &r->th_n, &r->th_node0, err, JIT_ERRSZ))
      return false;
  }
  return !s->nested || record_choice(cx, s, v + sz0 + s->nsizes, *out);
}

static bool run_observe(JitRec *r, const Value *v, Tape *t, double *lp, char *err) {
  const IrInstr *ins = r->s->ins;
  int sizes[8];
  int n = op_shape_sizes(v[0], sizes, 8);
  DistCall dc;
  if (!dist_call_init(&dc, ins->dist.fam, ins->dist.nparams, v + 1, CON_NONE, -INFINITY,
                      INFINITY, r->s->fn->regtypes[ins->args[0]], n, sizes, err, JIT_ERRSZ))
    return false;
  return dist_call_lpdf_ad(&dc, t, v[0], lp, &r->lp_node, err, JIT_ERRSZ);
}

/* IR indexes with their registers renumbered to operand positions. */
static const IrIndex *local_index(const JitSite *s, int first, IrIndex *ix) {
  const IrInstr *ins = s->ins;
  int k = first;
  for (int i = 0; i < ins->nidx; i++) {
    ix[i] = ins->idx[i];
    if (ix[i].lo >= 0) ix[i].lo = k++;
    if (ix[i].hi >= 0) ix[i].hi = k++;
  }
  return ix;
}

static bool run_rowvec(const IrInstr *ins, Type t, const Value *v, Value *out, char *err) {
  int n = ins->nargs;
  if (t.base == TY_MATRIX || (n > 0 && v[0].k == V_ROWVEC)) {
    int cols = n ? (int)val_numel(v[0]) : 0;
    Value r = val_mat(n, cols);
    bool ad = false;
    for (int i = 0; i < n; i++) {
      if ((v[i].k != V_ROWVEC && v[i].k != V_VEC) || (int)val_numel(v[i]) != cols) {
        snprintf(err, JIT_ERRSZ, "matrix literal rows differ in size");
        return false;
      }
      ad |= v[i].t->ad != NULL;
    }
    if (ad) r.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)(n * cols > 0 ? n * cols : 1));
    for (int i = 0; i < n; i++)
      for (int j = 0; j < cols; j++) {
        r.t->d[(size_t)j * n + i] = v[i].t->d[j];
        if (ad) r.t->ad[(size_t)j * n + i] = v[i].t->ad ? v[i].t->ad[j] : 0;
      }
    *out = r;
    return true;
  }
  Value r = val_rowvec(n);
  r.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    r.t->d[i] = val_as_real(v[i]);
    r.t->ad[i] = v[i].k == V_REAL ? v[i].ad : 0;
  }
  *out = r;
  return true;
}

static bool run_array(const IrInstr *ins, Type t, const Value *v, Value *out, char *err) {
  Type et = ty_make((TyBase)t.base, t.ndims > 0 ? t.ndims - 1 : 0);
  Value arr = val_arr(ins->nargs);
  for (int i = 0; i < ins->nargs; i++) {
    bool fresh;
    Value e = op_convert(v[i], et, &fresh);
    if (!fresh) e = val_copy(e);
    if (i > 0 && !op_same_shape(arr.a->e[0], e)) {
      snprintf(err, JIT_ERRSZ, "array literal elements differ in size");
      return false;
    }
    arr.a->e[i] = e;
  }
  *out = arr;
  return true;
}

/* ---- for natively lowered operations ---- */

/* A new vector / row vector / matrix of the evaluation (its numbers in the
   arena, left as they are, zero or NaN by fill); adjoints (zero) when active. */
JitBox *jit_rt_tensor(JitCtx *cx, int64_t kind, int64_t rows, int64_t cols, int64_t active,
                      int64_t fill) {
  size_t n = (size_t)rows * (size_t)cols, m = n ? n : 1;
  /* one block: the box, its ValTen, the numbers, the adjoints */
  size_t hb = (sizeof(JitBox) + 15) & ~(size_t)15, ht = (sizeof(ValTen) + 15) & ~(size_t)15;
  char *mem = arena_alloc_raw(cx, hb + ht + sizeof(double) * m * (active ? 2 : 1));
  JitBox *b = (JitBox *)mem;
  ValTen *t = (ValTen *)(mem + hb);
  memset(b, 0, sizeof *b);
  t->rows = (int)rows;
  t->cols = (int)cols;
  t->ad = NULL;
  t->d = (double *)(mem + hb + ht);
  if (fill == 1) /* zeros (sums accumulate into them) */
    memset(t->d, 0, sizeof(double) * n);
  else if (fill == 2) /* NaN (a declaration) */
    for (size_t i = 0; i < n; i++) t->d[i] = NAN;
  b->v.k = (uint8_t)kind;
  b->v.t = t;
  b->n = (int64_t)n;
  if (active) { /* an evaluation without a gradient never reads them: not zeroed then */
    b->adj = t->d + m;
    if (cx->grad) memset(b->adj, 0, sizeof(double) * m);
  }
  return b;
}

JitBox *jit_rt_array(JitCtx *cx, int64_t n, int64_t kind) {
  size_t m = n > 0 ? (size_t)n : 0;
  /* one block: the box, the array, its Values (zeroed: 0 and no tape node) */
  size_t hb = (sizeof(JitBox) + 15) & ~(size_t)15, ha = (sizeof(ValArr) + 15) & ~(size_t)15;
  char *mem = arena_alloc(cx, hb + ha + sizeof(Value) * (m ? m : 1));
  JitBox *b = (JitBox *)mem;
  ValArr *a = (ValArr *)(mem + hb);
  a->n = (int)m;
  a->e = (Value *)(mem + hb + ha);
  for (size_t i = 0; i < m; i++) a->e[i].k = (uint8_t)kind;
  b->v.k = V_ARR;
  b->v.a = a;
  b->n = (int64_t)m;
  return b;
}

/* A copy of one element of a nested array (g[t] of vector[K] g[N], acc[t]
   of real acc[N, K]), which compiled code reached in place (jit.c
   nested_sub), as a box of the evaluation: zero adjoints when active, which
   the reverse part adds back into the array's at the element's position. */
JitBox *jit_rt_sub(JitCtx *cx, const Value *v, int64_t active) {
  if (is_ten_kind(v->k)) { /* into the arena: nothing for the collector (beta[g[n]]) */
    JitBox *b = jit_rt_tensor(cx, v->k, v->t->rows, v->t->cols, active, 0);
    if (b->n) memcpy(b->v.t->d, v->t->d, sizeof(double) * (size_t)b->n);
    return b;
  }
  Value c = val_copy(*v);
  detach(&c);
  return box_new(cx, c, active != 0);
}

/* The layout is column-major, which is BLAS's row-major of A^T (cols x rows):
   A x is (A^T)^T x. */
/* ---- products of a batch (jit_rt_batch_begin) ---- */

#define MVB_SITES 4 /* products an evaluation may have batched */

typedef struct MvbSite {
  const double *A;
  int64_t rows, cols;
  size_t off; /* x is theta[off .. off + cols) at point 0, or SIZE_MAX */
  double *Y;  /* the products of points 1..n-1, rows reals each; NULL: none */
} MvbSite;

typedef struct MvBatch {
  const JitCtx *cx;
  bool live; /* this evaluation is the batch's point s (jit_rt_begin) */
  const double *theta;
  size_t dim, n, s; /* the points, and the one being evaluated */
  int call, nsites; /* products met by this evaluation; noted by point 0 */
  MvbSite site[MVB_SITES];
} MvBatch;

/* The batch of this thread (compiled code calls jit_rt_gemv without its
   context), or NULL. */
static _Thread_local MvBatch *mvb;

static void mvb_enter(const JitCtx *cx, const double *theta) {
  if (mvb) mvb->live = mvb->cx == cx && theta == mvb->theta + mvb->s * mvb->dim;
}

void jit_rt_batch_begin(const JitCtx *cx, const double *theta, size_t dim, size_t n) {
  MvBatch *b = calloc(1, sizeof *b);
  if (!b) return; /* no batch: every point computes its own products */
  b->cx = cx, b->theta = theta, b->dim = dim, b->n = n;
  mvb = b;
}

void jit_rt_batch_point(size_t s) {
  MvBatch *b = mvb;
  if (!b) return;
  b->s = s;
  b->call = 0;
  if (s != 1 || b->n < 2) return;
  /* After point 0: the noted products of the other points, Y = Theta A^T in
     BLAS's row-major terms (A is column-major: A^T is row-major, ld rows;
     Theta's rows are the points' slices, ld dim). */
  for (int c = 0; c < b->nsites; c++) {
    MvbSite *st = &b->site[c];
    if (st->off == SIZE_MAX) continue;
    st->Y = malloc(sizeof(double) * (size_t)st->rows * (b->n - 1));
    if (!st->Y) continue;
    tensor_gemm((int)(b->n - 1), (int)st->rows, (int)st->cols, b->theta + b->dim + st->off,
                (int)b->dim, st->A, (int)st->rows, st->Y, (int)st->rows);
  }
}

void jit_rt_batch_end(void) {
  MvBatch *b = mvb;
  if (!b) return;
  for (int c = 0; c < b->nsites; c++) free(b->site[c].Y);
  free(b);
  mvb = NULL;
}

/* y = A x from the batch's products, or false (compute it). */
static bool mvb_take(MvBatch *b, int64_t rows, int64_t cols, const double *A, const double *x,
                     double *y) {
  if (!b->live) return false;
  int c = b->call++;
  if (c >= MVB_SITES) return false;
  const double *th = b->theta + b->s * b->dim;
  size_t len = sizeof(double) * (size_t)cols;
  if (b->s == 0) { /* note it: where x is in theta, if it is */
    MvbSite *st = &b->site[c];
    *st = (MvbSite){.A = A, .rows = rows, .cols = cols, .off = SIZE_MAX};
    b->nsites = c + 1;
    for (size_t off = 0; off + (size_t)cols <= b->dim; off++)
      if (!memcmp(x, th + off, len)) {
        st->off = off;
        break;
      }
    return false;
  }
  if (c >= b->nsites) return false;
  const MvbSite *st = &b->site[c];
  if (!st->Y || st->A != A || st->rows != rows || st->cols != cols || memcmp(x, th + st->off, len))
    return false;
  memcpy(y, st->Y + (b->s - 1) * (size_t)rows, sizeof(double) * (size_t)rows);
  return true;
}

void jit_rt_gemv(int64_t trans, int64_t rows, int64_t cols, const double *A, const double *x,
                 double *y) {
  if (rows <= 0) return;
  if (cols <= 0) { /* A x with no columns: zeros (the caller's y is not filled) */
    if (!trans) memset(y, 0, sizeof(double) * (size_t)rows);
    return;
  }
  if (!trans && mvb && mvb_take(mvb, rows, cols, A, x, y)) return;
  if (trans) tensor_gemv(false, (int)cols, (int)rows, A, x, 1, y);
  else tensor_gemv(true, (int)cols, (int)rows, A, x, 0, y);
}

/* The two halves of a fused GLM statement's row block (jit_native.c,
   jg_emit_glm): nb rows of a column-major matrix with leading dimension ld,
   one BLAS gemv each (the block's rows as a K x nb row-major matrix).  The
   second runs while the block is still in cache, so X is read from memory
   once per gradient.  The same call on the same block gives the same bits,
   so a block sums the same whoever runs it (one process or a shard of rows,
   ld_shard.c). */
void jit_rt_glm_eta(int64_t nb, int64_t K, int64_t ld, const double *X, const double *b,
                    const double *av, double as, double *eta) {
  if (nb <= 0) return;
  if (K > 0) cblas_dgemv(CblasRowMajor, CblasTrans, (int)K, (int)nb, 1, X, (int)ld, b, 1, 0, eta, 1);
  else memset(eta, 0, sizeof(double) * (size_t)nb);
  if (av)
    for (int64_t i = 0; i < nb; i++) eta[i] += av[i];
  else
    for (int64_t i = 0; i < nb; i++) eta[i] += as;
}

void jit_rt_glm_adj(int64_t nb, int64_t K, int64_t ld, const double *X, const double *g, double *gb,
                    double *gav, double *gas) {
  if (nb <= 0) return;
  if (gb && K > 0) cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)K, (int)nb, 1, X, (int)ld, g, 1, 1, gb, 1);
  if (gav)
    for (int64_t i = 0; i < nb; i++) gav[i] += g[i];
  if (gas) {
    double s = 0;
    for (int64_t i = 0; i < nb; i++) s += g[i];
    *gas += s;
  }
}

/* x = lo + (hi - lo) inv_logit(u) as tf_constrain computes it, with dx/du
   (out[1]) and d log|J| / du (out[2]); returns log|J|. */
/* One scalar through a bound transform, as tf_constrain maps it: x, dx/du
   and d log|J| / du; returns log|J|. */
static double constrain1(ConKind con, double lo, double hi, double u, double *x, double *dxdu,
                         double *dlj) {
  *x = u;
  double lj = con == CON_NONE ? 0 : tf_constrain(con, lo, hi, 1, &u, x);
  switch (con) {
  case CON_LOWER: *dxdu = exp(u), *dlj = 1; break;
  case CON_UPPER: *dxdu = -exp(u), *dlj = 1; break;
  case CON_LOWER_UPPER: {
    double p = m_inv_logit(u), q = m_inv_logit(-u);
    *dxdu = (hi - lo) * p * q;
    *dlj = q - p;
    break;
  }
  default: *dxdu = 1, *dlj = 0; break;
  }
  return lj;
}

double jit_rt_lub(double u, double lo, double hi, double *out) {
  return constrain1(CON_LOWER_UPPER, lo, hi, u, &out[0], &out[1], &out[2]);
}

/* Output i of a draw (rc: the register class of ir/jit.c: 1 int, 2 bool,
   3 real, 4 container); containers are copied out of the arena. */
void jit_rt_out(JitCtx *cx, int64_t i, double r, int64_t iv, JitBox *b, int64_t rc) {
  Value v;
  switch (rc) {
  case 1: v = val_int(iv); break;
  case 2: v = val_bool(iv != 0); break;
  case 3: v = val_real(r); break;
  default: v = b ? val_copy(b->v) : val_none(); break;
  }
  cx->outputs[i] = v;
}

/* ---- fast paths: the common operations without a tape ----
 *
 * Scalar-family densities (observations, NAME_lpdf, latents with scalar
 * bounds) that the compiled code does not lower itself (ir/jit_native.c) run
 * here over flat arrays and keep their partial derivatives in the record: the
 * same numbers the interpreter computes, in the same order, without tape
 * nodes.  Anything else takes the general path below. */

typedef struct Flat {
  const double *d;
  size_t n;
  bool scalar;
} Flat;


static bool numeric_leaves(Value v) {
  if (v.k == V_ARR) {
    for (int i = 0; i < v.a->n; i++)
      if (!numeric_leaves(v.a->e[i])) return false;
    return true;
  }
  return v.k == V_INT || v.k == V_REAL || v.k == V_BOOL || is_ten_kind(v.k);
}

static bool flat_of(JitCtx *cx, const JitArg *a, uint8_t kind, Flat *f) {
  switch (kind) {
  case JA_REAL:
  case JA_REAL_ACT:
    f->d = &a->r;
    f->n = 1;
    f->scalar = true;
    return true;
  case JA_INT:
  case JA_BOOL: {
    double *d = arena_alloc(cx, sizeof(double));
    *d = (double)a->i;
    f->d = d;
    f->n = 1;
    f->scalar = true;
    return true;
  }
  case JA_BOX:
  case JA_BOX_ACT: {
    JitBox *b = a->b;
    f->n = (size_t)b->n;
    f->scalar = false;
    if (is_ten_kind(b->v.k)) {
      f->d = b->v.t->d;
      return true;
    }
    if (b->flat) {
      f->d = b->flat;
      return true;
    }
    if (b->v.k != V_ARR || !numeric_leaves(b->v)) return false;
    double *d = arena_alloc(cx, sizeof(double) * (f->n ? f->n : 1));
    val_flatten(b->v, d);
    f->d = d;
    return true;
  }
  default: return false;
  }
}

static Value arg_plain(const JitArg *a, uint8_t kind) {
  switch (kind) {
  case JA_REAL: case JA_REAL_ACT: return val_real(a->r);
  case JA_INT: return val_int(a->i);
  case JA_BOOL: return val_bool(a->i != 0);
  case JA_BOX: case JA_BOX_ACT: return a->b->v;
  default: return val_none();
  }
}

static JitRec *rec_new(JitCtx *cx, const JitSite *s, uint8_t fast) {
  /* one zeroed block: the record and its three per-operand arrays (a record
     per observation of a regression's row, so one allocation, not four) */
  size_t k = (size_t)(s->nargs + 1), hr = (sizeof(JitRec) + 15) & ~(size_t)15;
  char *mem = arena_alloc(cx, hr + k * (sizeof(double *) + sizeof(double) + sizeof(JitBox *)));
  JitRec *r = (JitRec *)mem;
  r->s = s;
  r->fast = fast;
  r->g = (double **)(mem + hr);
  r->gs = (double *)(mem + hr + k * sizeof(double *));
  r->in_box = (JitBox **)(mem + hr + k * (sizeof(double *) + sizeof(double)));
  return r;
}

/* Partials of a density with respect to operand k, for element j. */
static inline void acc_partial(JitRec *r, int k, bool scalar, size_t j, double d) {
  if (scalar) r->gs[k] += d;
  else if (r->g[k]) r->g[k][j] = d;
}

static void alloc_partials(JitCtx *cx, JitRec *r, int k, const Flat *f, JitArg *args) {
  uint8_t kind = r->s->akind[k];
  if (kind == JA_BOX_ACT && !f->scalar && args[k].b->adj) {
    r->g[k] = arena_alloc(cx, sizeof(double) * (f->n ? f->n : 1));
    r->in_box[k] = args[k].b;
  }
}

/* x ~ family(params) over flat operands: observations and NAME_lpdf.
   ops: operand positions of x and of the parameters. */
static int fast_density(JitCtx *cx, const JitSite *s, const DistFamily *f, const int *ops,
                        JitArg *args, Type xt, double *lp, JitRec **out) {
  int np = f->nparams;
  if (!dist_scalar_family(f) || !dist_has_grad1(f) || np > DIST_MAX_PARAMS) return 0;
  Flat fx, fp[DIST_MAX_PARAMS];
  Value pv[DIST_MAX_PARAMS];
  if (!flat_of(cx, &args[ops[0]], s->akind[ops[0]], &fx)) return 0;
  for (int i = 0; i < np; i++) {
    if (!flat_of(cx, &args[ops[1 + i]], s->akind[ops[1 + i]], &fp[i])) return 0;
    pv[i] = arg_plain(&args[ops[1 + i]], s->akind[ops[1 + i]]);
  }
  Value xv = arg_plain(&args[ops[0]], s->akind[ops[0]]);
  int sizes[8];
  int nsz = op_shape_sizes(xv, sizes, 8);
  DistCall dc;
  char err[JIT_ERRSZ];
  if (!dist_call_init(&dc, f, np, pv, CON_NONE, -INFINITY, INFINITY, xt, nsz, sizes, err,
                      sizeof err))
    return -1;
  size_t n = fx.scalar ? 1 : fx.n;
  bool params_scalar = true;
  for (int i = 0; i < np; i++)
    if (!fp[i].scalar) {
      if (!fx.scalar && fp[i].n != fx.n) return -1;
      if (fx.scalar && n != 1 && fp[i].n != n) return -1;
      n = fp[i].n;
      params_scalar = false;
    }
  if (fx.scalar && !params_scalar) return 0; /* one value against many parameters: rare */
  JitRec *r = rec_new(cx, s, FR_DIST);
  r->n = n;
  bool any = s->akind[ops[0]] == JA_REAL_ACT || s->akind[ops[0]] == JA_BOX_ACT;
  if (f->discrete) any = false;
  for (int i = 0; i < np; i++)
    any = any || s->akind[ops[1 + i]] == JA_REAL_ACT || s->akind[ops[1 + i]] == JA_BOX_ACT;
  if (!f->discrete) alloc_partials(cx, r, ops[0], &fx, args);
  for (int i = 0; i < np; i++) alloc_partials(cx, r, ops[1 + i], &fp[i], args);
  double p[DIST_MAX_PARAMS] = {0}, total = 0;
  for (int i = 0; i < np; i++) p[i] = fp[i].d[0];
  for (size_t j = 0; j < n; j++) {
    if (!params_scalar)
      for (int i = 0; i < np; i++) p[i] = fp[i].scalar ? fp[i].d[0] : fp[i].d[j];
    double xj = fx.scalar ? fx.d[0] : fx.d[j];
    if (f->improper && (xj < dc.lower || xj > dc.upper)) {
      *lp = -INFINITY;
      *out = r;
      return 1;
    }
    double dx = 0, dp[DIST_MAX_PARAMS] = {0};
    double lj = any ? dist_lpdf_grad1(f, xj, p, &dx, dp) : dist_lpdf1(f, xj, p);
    total += lj;
    if (!any || !isfinite(lj)) continue;
    if (!f->discrete) acc_partial(r, ops[0], fx.scalar, j, dx);
    for (int i = 0; i < np; i++) acc_partial(r, ops[1 + i], fp[i].scalar, j, dp[i]);
  }
  *lp = total + (isfinite(total) ? dist_ordered_norm(&dc, params_scalar, n) : 0.0);
  if (!isfinite(total)) /* the interpreter records no partials then */
    for (int k = 0; k < s->nargs; k++) {
      r->gs[k] = 0;
      if (r->g[k]) memset(r->g[k], 0, sizeof(double) * n);
    }
  *out = r;
  return 1;
}

/* A latent of a scalar family with scalar bounds, element by element. */
static int fast_sample(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res, JitRec **out) {
  const IrInstr *ins = s->ins;
  const DistFamily *f = ins->dist.fam;
  const JitLatents *lat = jit_latents(cx->jit);
  int np = ins->dist.nparams;
  ConKind con = (ConKind)ins->con.kind;
  if (!dist_scalar_family(f) || !dist_has_grad1(f) || !lat->layout || np > DIST_MAX_PARAMS ||
      !(con == CON_NONE || con == CON_LOWER || con == CON_UPPER || con == CON_LOWER_UPPER))
    return 0;
  Type t = s->fn->regtypes[ins->dst];
  if (!(t.base == TY_REAL || (t.ndims == 0 && (t.base == TY_VECTOR || t.base == TY_ROWVEC ||
                                               t.base == TY_MATRIX))))
    return 0;
  if (t.base == TY_REAL && t.ndims > 1) return 0;
  int lo = ins->con.lower >= 0 ? np : -1;
  int hi = ins->con.upper >= 0 ? np + (lo >= 0) : -1;
  int sz0 = np + (lo >= 0) + (hi >= 0);
  if ((lo >= 0 && s->akind[lo] != JA_REAL && s->akind[lo] != JA_INT) ||
      (hi >= 0 && s->akind[hi] != JA_REAL && s->akind[hi] != JA_INT))
    return 0; /* bounds that depend on theta: the general path */
  Flat fp[DIST_MAX_PARAMS];
  Value pv[DIST_MAX_PARAMS];
  for (int i = 0; i < np; i++) {
    if (!flat_of(cx, &args[i], s->akind[i], &fp[i])) return 0;
    pv[i] = arg_plain(&args[i], s->akind[i]);
  }
  int sizes[8], nsz = s->nsizes < 8 ? s->nsizes : 8;
  for (int i = 0; i < nsz; i++) {
    if (args[sz0 + i].i < 0) return -1;
    sizes[i] = (int)args[sz0 + i].i;
  }
  size_t off, n;
  if (cx->k >= lat->n || !lat->layout(lat->ud, cx->k, nsz, sizes, &off, &n)) return 0;
  double dlo = lo >= 0 ? (s->akind[lo] == JA_INT ? (double)args[lo].i : args[lo].r) : -INFINITY;
  double dhi = hi >= 0 ? (s->akind[hi] == JA_INT ? (double)args[hi].i : args[hi].r) : INFINITY;
  DistCall dc;
  char err[JIT_ERRSZ];
  if (!dist_call_init(&dc, f, np, pv, con, dlo, dhi, t, nsz, sizes, err, sizeof err)) return -1;
  bool params_scalar = true;
  for (int i = 0; i < np; i++)
    if (!fp[i].scalar) {
      if (fp[i].n != n) return -1;
      params_scalar = false;
    }
  cx->k++;
  JitRec *r = rec_new(cx, s, FR_SAMPLE);
  r->n = n;
  r->th_off = off;
  r->du = arena_alloc(cx, sizeof(double) * (n ? n : 1));
  r->dxdu = arena_alloc(cx, sizeof(double) * (n ? n : 1));
  for (int i = 0; i < np; i++) alloc_partials(cx, r, i, &fp[i], args);
  /* the value, with the log-Jacobian */
  JitBox *b = NULL;
  double *x;
  if (t.base == TY_REAL && t.ndims == 0) {
    x = arena_alloc(cx, sizeof(double));
  } else if (t.ndims == 1) {
    Value v = val_arr((int)n);
    for (size_t e = 0; e < n; e++) v.a->e[e] = val_real(0); /* filled below */
    b = box_new(cx, v, true);
    x = arena_alloc(cx, sizeof(double) * (n ? n : 1));
  } else {
    int rows = t.base == TY_ROWVEC ? 1 : sizes[0];
    int cols = t.base == TY_MATRIX ? sizes[1] : t.base == TY_ROWVEC ? sizes[0] : 1;
    Value v = t.base == TY_VECTOR ? val_vec(rows) : t.base == TY_ROWVEC ? val_rowvec(cols)
                                                                       : val_mat(rows, cols);
    b = box_new(cx, v, true);
    x = v.t->d;
  }
  const double *u = cx->theta + off;
  double ljs = 0;
  for (size_t e = 0; e < n; e++)
    ljs += constrain1(dc.con, dc.lower, dc.upper, u[e], &x[e], &r->dxdu[e], &r->du[e]);
  /* the density, as dist_call_lpdf_ad computes it */
  bool trunc = dc.truncated;
  double p[DIST_MAX_PARAMS] = {0}, lz = 0, total = 0, dlz[DIST_MAX_PARAMS] = {0};
  bool any_p = false;
  for (int i = 0; i < np; i++) any_p = any_p || s->akind[i] == JA_REAL_ACT || s->akind[i] == JA_BOX_ACT;
  bool bad = false;
  for (size_t j = 0; j < n && !bad; j++) {
    if (j == 0 || !params_scalar) {
      for (int i = 0; i < np; i++) p[i] = fp[i].scalar ? fp[i].d[0] : fp[i].d[j];
      if (trunc) {
        lz = dist_trunc_log_mass(f, p, dc.lower, dc.upper);
        if (any_p) dist_trunc_log_mass_grad(f, p, dc.lower, dc.upper, lz, dlz);
      }
    }
    double xj = x[j];
    if ((trunc || f->improper) && (xj < dc.lower || xj > dc.upper)) {
      bad = true;
      break;
    }
    double dx = 0, dp[DIST_MAX_PARAMS] = {0};
    double lj = dist_lpdf_grad1(f, xj, p, &dx, dp);
    total += lj - lz;
    if (!isfinite(lj)) continue;
    if (trunc)
      for (int i = 0; i < np; i++) dp[i] -= dlz[i];
    r->du[j] += dx * r->dxdu[j];
    for (int i = 0; i < np; i++) acc_partial(r, i, fp[i].scalar, j, dp[i]);
  }
  double l = bad ? -INFINITY : total + (isfinite(total) ? dist_ordered_norm(&dc, params_scalar, n) : 0.0);
  if (bad || !isfinite(total)) { /* no partials, as on the interpreter's tape */
    for (size_t e = 0; e < n; e++) r->du[e] = dc.con != CON_NONE && !bad ? r->du[e] : 0;
    for (int k = 0; k < s->nargs; k++) {
      r->gs[k] = 0;
      if (r->g[k]) memset(r->g[k], 0, sizeof(double) * n);
    }
  }
  res[1].r = ljs + l;
  if (!b) {
    res[0].r = x[0];
  } else {
    if (t.ndims == 1)
      for (size_t e = 0; e < n; e++) b->v.a->e[e] = val_real(x[e]);
    res[0].b = b;
    r->out_box = b;
  }
  *out = r;
  return 1;
}

/* Whether a latent of this instruction takes fast_structured: a structured
   constraint (stdlib/transform.h) on one vector or matrix or a 1-D array of
   them, and a family with partials outside the tape (scalar kernels or a
   whole-value lpdf_grad); or an unconstrained one of a whole-value family
   (vector[K] beta[J] ~ multi_normal_cholesky(mu, L): the identity
   transform).  jit_host.c's --verbose labels use it too. */
bool jit_rt_struct_ok(const IrInstr *ins, Type t) {
  const DistFamily *f = ins->dist.fam;
  ConKind con = (ConKind)ins->con.kind;
  bool whole_free = con == CON_NONE && !dist_scalar_family(f);
  if (!(tf_structured(con) || whole_free) || f->lpdf_ctx || f->discrete ||
      ins->dist.nparams > DIST_MAX_PARAMS || t.ndims > 1 ||
      !(t.base == TY_VECTOR || t.base == TY_MATRIX))
    return false;
  return dist_scalar_family(f) ? dist_has_grad1(f) : f->lpdf_grad != NULL;
}

/* A latent of a structured type: each unit's value by tf_constrain straight
   from theta, the family's density and its partials in x and the parameters
   (the scalar kernels element by element, or a whole-value family's
   dist_lpdf_whole_grad), and backwards tf_constrain_vjp of x's adjoint: the
   same rule the interpreter's tape records as one block, with no tape. */
static int fast_structured(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res,
                           JitRec **out) {
  const IrInstr *ins = s->ins;
  const DistFamily *f = ins->dist.fam;
  const JitLatents *lat = jit_latents(cx->jit);
  int np = ins->dist.nparams;
  ConKind con = (ConKind)ins->con.kind;
  Type t = s->fn->regtypes[ins->dst];
  if (!jit_rt_struct_ok(ins, t) || !lat->layout || ins->con.lower >= 0 || ins->con.upper >= 0)
    return 0;
  int sizes[8], nsz = s->nsizes;
  int64_t sz64[8];
  if (nsz > 8 || nsz != t.ndims + (t.base == TY_MATRIX ? 2 : 1)) return 0;
  for (int i = 0; i < nsz; i++) {
    if (args[np + i].i < 0) return 0;
    sizes[i] = (int)args[np + i].i;
    sz64[i] = args[np + i].i;
  }
  int unit = t.base == TY_MATRIX ? sizes[nsz - 2] * sizes[nsz - 1] : sizes[nsz - 1];
  size_t numel = (size_t)unit * (size_t)(t.ndims ? sizes[0] : 1);
  int m = tf_free_size(con, unit);
  size_t off, nfree;
  if (m < 0 || cx->k >= lat->n || !lat->layout(lat->ud, cx->k, nsz, sizes, &off, &nfree) ||
      nfree != (size_t)m * (numel / (size_t)(unit ? unit : 1)))
    return 0;
  Value pv[DIST_MAX_PARAMS];
  for (int i = 0; i < np; i++) pv[i] = arg_plain(&args[i], s->akind[i]);
  DistCall dc;
  char err[JIT_ERRSZ];
  if (!dist_call_init(&dc, f, np, pv, con, -INFINITY, INFINITY, t, nsz, sizes, err, sizeof err))
    return 0; /* the general path reports it */
  /* the value, unit by unit, in val_flatten order */
  JitBox *b;
  double *x;
  if (t.ndims == 0) {
    bool mat = t.base == TY_MATRIX;
    b = jit_rt_tensor(cx, mat ? V_MAT : V_VEC, sizes[0], mat ? sizes[1] : 1, 1, 0);
    x = b->v.t->d;
  } else {
    Value v;
    if (!op_decl(t, nsz, sz64, &v, err, sizeof err)) return 0;
    b = box_new(cx, v, true);
    x = arena_alloc_raw(cx, sizeof(double) * (numel ? numel : 1));
  }
  const double *u = cx->theta + off;
  size_t nu = unit ? numel / (size_t)unit : 0;
  double ljs = 0;
  for (size_t q = 0; q < nu; q++)
    ljs += tf_constrain(con, -INFINITY, INFINITY, unit, u + q * (size_t)m, x + q * (size_t)unit);
  if (t.ndims == 1)
    for (size_t q = 0; q < nu; q++)
      memcpy(b->v.a->e[q].t->d, x + q * (size_t)unit, sizeof(double) * (size_t)unit);
  JitRec *r = rec_new(cx, s, FR_STRUCT);
  r->n = numel;
  r->th_off = off;
  r->tf_unit = unit;
  r->tf_m = m;
  r->du = arena_alloc(cx, sizeof(double) * (numel ? numel : 1));
  r->dxdu = x;
  double lp = 0;
  if (!dist_scalar_family(f)) { /* dirichlet, lkj_corr_cholesky, wishart ... */
    r->tf_whole = true;
    for (int k = 0; k < np; k++) {
      if (s->akind[k] == JA_REAL_ACT) {
        r->g[k] = arena_alloc(cx, sizeof(double));
      } else if (s->akind[k] == JA_BOX_ACT && args[k].b->adj) {
        r->g[k] = arena_alloc(cx, sizeof(double) * (size_t)(args[k].b->n ? args[k].b->n : 1));
        r->in_box[k] = args[k].b;
      }
    }
    if (!dist_lpdf_whole_grad(&dc, b->v, &lp, r->du, r->g, err, sizeof err)) return 0;
    if (!isfinite(lp)) { /* the interpreter records no partials then */
      for (int k = 0; k < np; k++) r->g[k] = NULL;
      memset(r->du, 0, sizeof(double) * (numel ? numel : 1));
    }
  } else { /* a scalar family over every element (ordered[K] c ~ normal(0, 5)) */
    Flat fp[DIST_MAX_PARAMS];
    bool params_scalar = true;
    for (int i = 0; i < np; i++) {
      if (!flat_of(cx, &args[i], s->akind[i], &fp[i])) return 0;
      if (!fp[i].scalar) {
        if (fp[i].n != numel) return 0;
        params_scalar = false;
      }
      alloc_partials(cx, r, i, &fp[i], args);
    }
    double p[DIST_MAX_PARAMS] = {0}, total = 0;
    for (int i = 0; i < np; i++) p[i] = fp[i].d[0];
    for (size_t j = 0; j < numel; j++) {
      if (!params_scalar)
        for (int i = 0; i < np; i++) p[i] = fp[i].scalar ? fp[i].d[0] : fp[i].d[j];
      double dx = 0, dp[DIST_MAX_PARAMS] = {0};
      double l = dist_lpdf_grad1(f, x[j], p, &dx, dp);
      total += l;
      if (!isfinite(l)) continue;
      r->du[j] = dx;
      for (int i = 0; i < np; i++) acc_partial(r, i, fp[i].scalar, j, dp[i]);
    }
    lp = total + (isfinite(total) ? dist_ordered_norm(&dc, params_scalar, numel) : 0.0);
    if (!isfinite(total)) {
      memset(r->du, 0, sizeof(double) * (numel ? numel : 1));
      for (int k = 0; k < np; k++) {
        r->gs[k] = 0;
        if (r->g[k]) memset(r->g[k], 0, sizeof(double) * numel);
      }
    }
  }
  if (isnan(lp) || lp == INFINITY) return 0; /* the general path says why */
  cx->k++;
  r->out_box = b;
  res[0].b = b;
  res[1].r = ljs + lp;
  *out = r;
  return 1;
}

const DistFamily *jit_rt_lpdf_family(const Builtin *b) {
  size_t n = strlen(b->name);
  if (!b->data || n < 6) return NULL;
  const char *suf = b->name + n - 5;
  if (strcmp(suf, "_lpdf") != 0 && strcmp(suf, "_lpmf") != 0) return NULL;
  const DistFamily *f = dist_lookup(gc_strndup(b->name, n - 5));
  return f == b->data ? f : NULL;
}

const DistFamily *jit_rt_rng_family(const Builtin *b) {
  size_t n = strlen(b->name);
  if (!b->data || !b->uses_rng || n < 5 || strcmp(b->name + n - 4, "_rng") != 0) return NULL;
  const DistFamily *f = dist_lookup(gc_strndup(b->name, n - 4));
  return f == b->data ? f : NULL;
}

/* Whole-value families (multi_normal(_cholesky), dirichlet, lkj_corr_cholesky,
   categorical ...) as observations and NAME_lpdf: the family's lpdf_grad over
   the operands' values, its partials kept per operand (dist.c's
   dist_lpdf_whole_grad, which the interpreter's tape node is made from): one
   call, no tape nodes for the matrix's entries. */
static int fast_whole(JitCtx *cx, const JitSite *s, const DistFamily *f, JitArg *args, Type xt,
                      double *lp, JitRec **out) {
  int np = f->nparams;
  if (dist_scalar_family(f) || !f->lpdf_grad || f->lpdf_ctx || np > DIST_MAX_PARAMS ||
      s->nargs != np + 1)
    return 0;
  Value v[DIST_MAX_PARAMS + 1];
  for (int k = 0; k <= np; k++) v[k] = arg_plain(&args[k], s->akind[k]);
  int sizes[8];
  int nsz = op_shape_sizes(v[0], sizes, 8);
  DistCall dc;
  char err[JIT_ERRSZ];
  if (!dist_call_init(&dc, f, np, v + 1, CON_NONE, -INFINITY, INFINITY, xt, nsz, sizes, err,
                      sizeof err))
    return -1;
  JitRec *r = rec_new(cx, s, FR_WHOLE);
  for (int k = 0; k <= np; k++) {
    uint8_t kind = s->akind[k];
    if (k == 0 && f->discrete) continue;
    if (kind == JA_REAL_ACT) {
      r->g[k] = arena_alloc(cx, sizeof(double));
    } else if (kind == JA_BOX_ACT && args[k].b->adj) {
      r->g[k] = arena_alloc(cx, sizeof(double) * (size_t)(args[k].b->n ? args[k].b->n : 1));
      r->in_box[k] = args[k].b;
    }
  }
  if (!dist_lpdf_whole_grad(&dc, v[0], lp, r->g[0], r->g + 1, err, sizeof err)) return -1;
  if (!isfinite(*lp)) /* the interpreter records no partials then */
    for (int k = 0; k <= np; k++) r->g[k] = NULL;
  *out = r;
  return 1;
}

static void *rt_block_alloc(void *ud, size_t bytes) { return arena_alloc_raw(ud, bytes); }

/* A builtin with a block rule (gp_exp_quad_cov, add_diag, cholesky_decompose;
   stdlib/builtins.h): the evaluator's value, and for the reverse part what
   its vector-Jacobian product needs, which adds straight into the operands'
   adjoints: no tape, no node per entry. */
static int fast_block(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res, JitRec **out) {
  const Builtin *b = s->ins->builtin;
  if (s->nargs > 4 || (s->rkind != JA_BOX && s->rkind != JA_BOX_ACT) || !builtin_has_block(b))
    return 0;
  Value v[4];
  for (int k = 0; k < s->nargs; k++) v[k] = arg_plain(&args[k], s->akind[k]);
  Value o;
  JitBox *box;
  int rows, cols;
  if (builtin_block_shape(b, s->nargs, v, &rows, &cols)) {
    /* the value straight into the arena: nothing for the collector */
    box = jit_rt_tensor(cx, V_MAT, rows, cols, s->rkind == JA_BOX_ACT, 0);
    builtin_block_value(b, s->nargs, v, box->v.t->d);
    o = box->v;
  } else {
    char err[JIT_ERRSZ];
    if (!b->eval(b, &cx->bctx, s->nargs, v, &o, err, sizeof err)) return -1;
    if (!is_ten_kind(o.k)) return -1;
    box = box_new(cx, o, s->rkind == JA_BOX_ACT);
  }
  res[0].b = box;
  JitRec *r = rec_new(cx, s, FR_BLOCK);
  bool any = false;
  for (int k = 0; k < s->nargs; k++) {
    if (s->akind[k] == JA_REAL_ACT) any = true;
    else if (s->akind[k] == JA_BOX_ACT && args[k].b->adj) {
      r->in_box[k] = args[k].b;
      any = true;
    }
  }
  if (box->adj && any) {
    r->blk = builtin_block_save(b, s->nargs, v, o, rt_block_alloc, cx);
    r->out_box = box;
  }
  *out = r;
  return 1;
}

/* Whether ins is a dot product of two 1-D tensors: row_vector * vector, or
   dot_product / dot of vectors or row vectors (not arrays).  jit_host.c's
   --verbose labels use it too. */
bool jit_rt_dot_ok(const IrInstr *ins, const IrFunc *fn) {
  if (ins->nargs != 2 || ins->dst < 0) return false;
  Type a = fn->regtypes[ins->args[0]], b = fn->regtypes[ins->args[1]];
  if (a.ndims || b.ndims) return false;
  if (ins->op == IR_BINARY)
    return ins->sub == OP_MUL && a.base == TY_ROWVEC && b.base == TY_VECTOR;
  if (ins->op != IR_BUILTIN || builtin_host(ins->builtin) ||
      (strcmp(ins->builtin->name, "dot_product") && strcmp(ins->builtin->name, "dot")))
    return false;
  return (a.base == TY_VECTOR || a.base == TY_ROWVEC) && (b.base == TY_VECTOR || b.base == TY_ROWVEC);
}

/* A dot product (jit_rt_dot_ok): the interpreter's sum, in its order (so its
   bits), and for the reverse part each active operand's partials, which are
   the other operand's values, copied (the program may store into it later).
   The record is a scaled FR_WHOLE one: adjoint += out_adj * partials.  Sizes
   that differ go to the interpreter's operation, which says why. */
static int fast_dot(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res, JitRec **out) {
  if (s->nargs != 2 || (s->rkind != JA_REAL && s->rkind != JA_REAL_ACT)) return 0;
  for (int k = 0; k < 2; k++)
    if (s->akind[k] != JA_BOX && s->akind[k] != JA_BOX_ACT) return 0;
  if (!jit_rt_dot_ok(s->ins, s->fn)) return 0; /* (names last: the cheap tests first) */
  Value a = args[0].b->v, b = args[1].b->v;
  if (!is_ten_kind(a.k) || !is_ten_kind(b.k) || a.k == V_MAT || b.k == V_MAT) return 0;
  size_t n = (size_t)a.t->rows * (size_t)a.t->cols;
  if (n != (size_t)b.t->rows * (size_t)b.t->cols) return 0;
  const double *x = a.t->d, *y = b.t->d;
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += x[i] * y[i];
  res[0].r = sum;
  JitRec *r = rec_new(cx, s, FR_WHOLE);
  r->scaled = true;
  for (int k = 0; k < 2; k++) {
    JitBox *bx = args[k].b;
    if (s->akind[k] != JA_BOX_ACT || !bx->adj) continue;
    double *g = arena_alloc_raw(cx, sizeof(double) * (n ? n : 1));
    if (n) memcpy(g, k == 0 ? y : x, sizeof(double) * n);
    r->g[k] = g;
    r->in_box[k] = bx;
  }
  *out = r;
  return 1;
}

/* A row or a column of a matrix (M[i], M[i, :], M[:, j]): the numbers copied
   into a box of the arena, and backwards the row's adjoint added into the
   matrix's at the same positions.  No tape and nothing for the collector
   (the data rows of X[n] * beta, once per observation, were a tape and a
   collected row vector each).  An index out of range goes to op_index,
   which says why. */
bool jit_rt_slice_ok(const IrInstr *ins, const IrFunc *fn) {
  if (ins->op != IR_INDEX || ins->dst < 0 || ins->nidx < 1 || ins->nidx > 2) return false;
  Type t = fn->regtypes[ins->args[0]];
  if (t.ndims || t.base != TY_MATRIX) return false;
  if (ins->nidx == 1) return ins->idx[0].kind == IX_SINGLE;
  return (ins->idx[0].kind == IX_SINGLE && ins->idx[1].kind == IX_ALL) ||
         (ins->idx[0].kind == IX_ALL && ins->idx[1].kind == IX_SINGLE);
}

static int fast_index(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res, JitRec **out) {
  const IrInstr *ins = s->ins;
  if (!jit_rt_slice_ok(ins, s->fn) || (s->akind[0] != JA_BOX && s->akind[0] != JA_BOX_ACT) ||
      (s->rkind != JA_BOX && s->rkind != JA_BOX_ACT) || s->nargs != 2 || s->akind[1] != JA_INT)
    return 0;
  JitBox *src = args[0].b;
  if (src->v.k != V_MAT) return 0;
  const ValTen *t = src->v.t;
  bool row = ins->idx[0].kind == IX_SINGLE;
  int64_t i = args[1].i, lim = row ? t->rows : t->cols;
  if (i < 1 || i > lim) return 0;
  size_t n = (size_t)(row ? t->cols : t->rows);
  size_t start = row ? (size_t)(i - 1) : (size_t)(i - 1) * (size_t)t->rows;
  size_t stride = row ? (size_t)t->rows : 1;
  bool act = s->rkind == JA_BOX_ACT;
  JitBox *b = jit_rt_tensor(cx, row ? V_ROWVEC : V_VEC, row ? 1 : (int64_t)n,
                            row ? (int64_t)n : 1, act, 0);
  for (size_t e = 0; e < n; e++) b->v.t->d[e] = t->d[start + e * stride];
  res[0].b = b;
  JitRec *r = rec_new(cx, s, FR_SLICE);
  if (act && s->akind[0] == JA_BOX_ACT && src->adj) {
    r->in_box[0] = src;
    r->out_box = b;
    r->n = n;
    r->th_off = start;
    r->th_n = stride;
  }
  *out = r;
  return 1;
}

/* A builtin whose result is an int or a bool (num_elements, size, rows, ...):
   it has no derivative whatever its operands, so it needs no tape (the
   general path would record one for an active operand).  Errors go to the
   general path, which says why. */
static int fast_nograd(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res, JitRec **out) {
  const Builtin *b = s->ins->builtin;
  if ((s->rkind != JA_INT && s->rkind != JA_BOOL) || s->nargs > 8 || jit_rt_rng_family(b))
    return 0; /* (draws: an error after the draw would draw twice) */
  Value v[8], o = val_none();
  for (int k = 0; k < s->nargs; k++) v[k] = arg_plain(&args[k], s->akind[k]);
  char err[JIT_ERRSZ];
  if (!b->eval(b, &cx->bctx, s->nargs, v, &o, err, sizeof err)) return 0;
  if (s->rkind == JA_INT) res[0].i = o.k == V_INT ? o.i : (int64_t)val_as_real(o);
  else res[0].i = op_truthy(o);
  *out = rec_new(cx, s, FR_NOGRAD);
  return 1;
}

/* 1: done (*out set), 0: not a fast case, -1: error */
static int fast_op(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res, JitRec **out) {
  const IrInstr *ins = s->ins;
  switch ((IrOpcode)ins->op) {
  case IR_OBSERVE: {
    int ops[DIST_MAX_PARAMS + 1];
    for (int i = 0; i <= ins->dist.nparams && i <= DIST_MAX_PARAMS; i++) ops[i] = i;
    double lp;
    Type xt = s->fn->regtypes[ins->args[0]];
    int rc = dist_scalar_family(ins->dist.fam)
                 ? fast_density(cx, s, ins->dist.fam, ops, args, xt, &lp, out)
                 : fast_whole(cx, s, ins->dist.fam, args, xt, &lp, out);
    if (rc == 1) res[1].r = lp;
    return rc;
  }
  case IR_BINARY: return fast_dot(cx, s, args, res, out);
  case IR_INDEX: return fast_index(cx, s, args, res, out);
  case IR_BUILTIN: {
    const DistFamily *f = s->lpdf;
    if (!f) {
      int rc = fast_dot(cx, s, args, res, out);
      if (!rc) rc = fast_nograd(cx, s, args, res, out);
      return rc ? rc : fast_block(cx, s, args, res, out);
    }
    if (s->nargs != f->nparams + 1) return 0;
    int ops[DIST_MAX_PARAMS + 1];
    for (int i = 0; i <= f->nparams; i++) ops[i] = i;
    double lp;
    Type xt = s->fn->regtypes[ins->args[0]];
    int rc = dist_scalar_family(f) ? fast_density(cx, s, f, ops, args, xt, &lp, out)
                                   : fast_whole(cx, s, f, args, xt, &lp, out);
    if (rc == 1) {
      res[0].r = lp;
      (*out)->scaled = true;
    }
    return rc;
  }
  case IR_SAMPLE: { /* a draw's choices and nested latents: run_sample records them */
    if (s->choice || s->nested) return 0;
    int rc = fast_sample(cx, s, args, res, out);
    return rc ? rc : fast_structured(cx, s, args, res, out);
  }
  default: return 0;
  }
}

static void rev_params(JitRec *r, int k0, int np, double w, double *sadj) {
  const JitSite *s = r->s;
  for (int k = k0; k < k0 + np; k++) {
    if (s->akind[k] == JA_REAL_ACT) sadj[k] = w * r->gs[k];
    else if (r->in_box[k] && r->g[k]) {
      double *adj = r->in_box[k]->adj;
      const double *g = r->g[k];
      for (size_t e = 0; e < r->n; e++) adj[e] += w * g[e];
    }
  }
}

static void fast_rev(JitCtx *cx, JitRec *r, double out_adj, double *sadj) {
  const JitSite *s = r->s;
  size_t n = r->n;
  switch (r->fast) {
  case FR_DIST: rev_params(r, 0, s->nargs, r->scaled ? out_adj : 1.0, sadj); break;
  case FR_WHOLE: {
    double w = r->scaled ? out_adj : 1.0;
    for (int k = 0; k < s->nargs; k++) {
      const double *g = r->g[k];
      if (!g) continue;
      if (s->akind[k] == JA_REAL_ACT) sadj[k] = w * g[0];
      else if (r->in_box[k]) {
        double *adj = r->in_box[k]->adj;
        for (int64_t e = 0; e < r->in_box[k]->n; e++) adj[e] += w * g[e];
      }
    }
    break;
  }
  case FR_BLOCK: {
    JitBox *o = r->out_box;
    if (!o || !r->blk) break;
    double *gin[4] = {NULL}, sc[4] = {0};
    for (int k = 0; k < s->nargs && k < 4; k++) {
      if (s->akind[k] == JA_REAL_ACT) gin[k] = &sc[k];
      else if (r->in_box[k]) gin[k] = r->in_box[k]->adj;
    }
    builtin_block_vjp(r->blk, o->adj, gin);
    memset(o->adj, 0, sizeof(double) * (size_t)(o->n ? o->n : 1));
    for (int k = 0; k < s->nargs && k < 4; k++)
      if (s->akind[k] == JA_REAL_ACT) sadj[k] = sc[k];
    break;
  }
  case FR_SLICE: {
    JitBox *o = r->out_box;
    if (!o) break;
    double *adj = r->in_box[0]->adj;
    for (size_t e = 0; e < n; e++) {
      adj[r->th_off + e * r->th_n] += o->adj[e];
      o->adj[e] = 0;
    }
    break;
  }
  case FR_SAMPLE: {
    double *g = cx->grad ? cx->grad + r->th_off : NULL;
    JitBox *o = r->out_box;
    for (size_t e = 0; e < n; e++) {
      double oa = o ? o->adj[e] : out_adj;
      if (o) o->adj[e] = 0;
      if (g) g[e] += oa * r->dxdu[e] + r->du[e];
    }
    rev_params(r, 0, s->ins->dist.nparams, 1.0, sadj);
    break;
  }
  case FR_STRUCT: {
    JitBox *o = r->out_box;
    double *xb = r->du; /* the density's partials, plus the value's adjoint */
    for (size_t e = 0; e < n; e++) {
      xb[e] += o->adj[e];
      o->adj[e] = 0;
    }
    if (cx->grad) {
      const double *u = cx->theta + r->th_off;
      double *g = cx->grad + r->th_off;
      size_t unit = (size_t)r->tf_unit, m = (size_t)r->tf_m, nu = unit ? n / unit : 0;
      for (size_t q = 0; q < nu; q++)
        tf_constrain_vjp((ConKind)s->ins->con.kind, r->tf_unit, u + q * m, r->dxdu + q * unit,
                         xb + q * unit, 1.0, g + q * m);
    }
    int np = s->ins->dist.nparams;
    if (!r->tf_whole) {
      rev_params(r, 0, np, 1.0, sadj);
      break;
    }
    for (int k = 0; k < np; k++) {
      const double *gk = r->g[k];
      if (!gk) continue;
      if (s->akind[k] == JA_REAL_ACT) sadj[k] = gk[0];
      else if (r->in_box[k]) {
        double *adj = r->in_box[k]->adj;
        for (int64_t e = 0; e < r->in_box[k]->n; e++) adj[e] += gk[e];
      }
    }
    break;
  }
  default: break;
  }
}

JitRec *jit_rt_op(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res) {
  JitRec *fr = NULL;
  int rc = fast_op(cx, s, args, res, &fr);
  if (rc != 0) return rc > 0 ? fr : NULL;
  const IrInstr *ins = s->ins;
  Tape *t = next_tape(cx);
  JitRec *r = arena_alloc(cx, sizeof(JitRec));
  r->s = s;
  r->t = t;
  r->in_node = arena_alloc(cx, sizeof(int32_t) * (size_t)(s->nargs + 1));
  r->in_box = arena_alloc(cx, sizeof(JitBox *) * (size_t)(s->nargs + 1));
  Value av[32];
  Value *v = s->nargs <= 32 ? av : arena_alloc(cx, sizeof(Value) * (size_t)s->nargs);
  for (int k = 0; k < s->nargs; k++) v[k] = arg_value(r, k, &args[k], t);
  Type rt = ins->dst >= 0 ? s->fn->regtypes[ins->dst] : ty_make(TY_VOID, 0);
  char err[JIT_ERRSZ] = "";
  Value out = val_none();
  double lp = 0;
  bool ok = true, fresh = true;
  switch ((IrOpcode)ins->op) {
  case IR_CONST: out = val_copy(ins->imm); break;
  case IR_MOVE:
    out = op_convert(v[0], rt, &fresh);
    if (!fresh) out = val_copy(out);
    break;
  case IR_UNARY: ok = op_unary_ad(t, ins->sub, v[0], &out, err, sizeof err); break;
  case IR_BINARY: ok = op_binary_ad(t, ins->sub, v[0], v[1], &out, err, sizeof err); break;
  case IR_BUILTIN: {
    bool ad = false;
    for (int k = 0; k < s->nargs && !ad; k++) ad = builtin_has_nodes(v[k]);
    ok = ad ? builtin_eval_ad(ins->builtin, &cx->bctx, t, s->nargs, v, &out, err, sizeof err)
            : ins->builtin->eval(ins->builtin, &cx->bctx, s->nargs, v, &out, err, sizeof err);
    if (ok && out.k >= V_ARR) out = val_copy(out); /* results may alias an operand */
    break;
  }
  case IR_INDEX: {
    IrIndex ix[8];
    if (ins->nidx > 8) { ok = false; break; }
    ok = op_index(v[0], ins->nidx, local_index(s, 1, ix), v, &out, err, sizeof err);
    break;
  }
  case IR_STORE: {
    IrIndex ix[8];
    if (ins->nidx > 8) { ok = false; break; }
    ok = op_store(&v[0], ins->nidx, local_index(s, 2, ix), v, v[1],
                  (TyBase)s->fn->regtypes[ins->dst].base, err, sizeof err);
    out = v[0];
    break;
  }
  case IR_ARRAY: ok = run_array(ins, rt, v, &out, err); break;
  case IR_ROWVEC: ok = run_rowvec(ins, rt, v, &out, err); break;
  case IR_DECL: {
    int64_t sz[8];
    int n = s->nsizes < 8 ? s->nsizes : 8;
    for (int i = 0; i < n; i++) sz[i] = v[i].i;
    ok = op_decl(rt, n, sz, &out, err, sizeof err);
    break;
  }
  case IR_SAMPLE: ok = run_sample(cx, r, v, t, &out, &lp, err); break;
  case IR_ODE: {
    bool ad = false;
    for (int k = 0; k < s->nargs && !ad; k++) ad = builtin_has_nodes(v[k]);
    Diag od;
    diag_init(&od);
    ok = interp_ode_native(jit_interp(cx->jit), ins, v, ad ? t : NULL, s->ode, &out, &od);
    break;
  }
  case IR_OBSERVE: ok = run_observe(r, v, t, &lp, err); break;
  default: ok = false; break;
  }
  if (ok && ins->op != IR_OBSERVE && ins->op != IR_STORE && ins->dst >= 0 && out.k < V_ARR &&
      rt.ndims == 0 && rt.base == TY_REAL && out.k == V_INT)
    out = val_real((double)out.i);
  /* results */
  if (ok) {
    switch (s->rkind) {
    case JA_REAL: case JA_REAL_ACT:
      res[0].r = val_as_real(out);
      r->out_node = out.k == V_REAL ? out.ad : 0;
      break;
    case JA_INT: res[0].i = out.k == V_INT ? out.i : (int64_t)val_as_real(out); break;
    case JA_BOOL: res[0].i = op_truthy(out); break;
    case JA_BOX: case JA_BOX_ACT: {
      JitBox *b;
      if (ins->op == IR_STORE) {
        b = args[0].b;
        b->v = out;
      } else {
        b = box_new(cx, out, s->rkind == JA_BOX_ACT);
      }
      res[0].b = b;
      if (b->adj) {
        r->out_box = b;
        r->out_nodes = arena_alloc(cx, sizeof(int32_t) * (size_t)(b->n ? b->n : 1));
        size_t k = 0;
        get_nodes(b->v, r->out_nodes, &k);
      }
      break;
    }
    default: break;
    }
    if (ins->op == IR_SAMPLE || ins->op == IR_OBSERVE) res[1].r = lp;
  }
  /* nodes belong to this record only */
  for (int k = 0; k < s->nargs; k++)
    if (s->akind[k] == JA_BOX_ACT || s->akind[k] == JA_BOX) detach(&args[k].b->v);
  if (ok && res && (s->rkind == JA_BOX || s->rkind == JA_BOX_ACT)) detach(&res[0].b->v);
  return ok ? r : NULL;
}

void jit_rt_op_rev(JitCtx *cx, JitRec *r, double out_adj, double *sadj) {
  if (r->fast) {
    fast_rev(cx, r, out_adj, sadj);
    return;
  }
  const JitSite *s = r->s;
  Tape *t = r->t;
  size_t n = tape_size(t) + 1;
  if (n > cx->adjcap) {
    cx->adjcap = 2 * n;
    cx->adj = gc_alloc_atomic(sizeof(double) * cx->adjcap);
  }
  double *adj = cx->adj;
  memset(adj, 0, sizeof(double) * n);
  if (r->out_node) adj[r->out_node] += out_adj;
  if (r->out_box) {
    JitBox *b = r->out_box;
    for (int64_t e = 0; e < b->n; e++) {
      if (r->out_nodes[e]) adj[r->out_nodes[e]] += b->adj[e];
      b->adj[e] = 0;
    }
  }
  if (r->lp_node) adj[r->lp_node] += 1;
  tape_backward_seeded(t, adj);
  for (int k = 0; k < s->nargs; k++) {
    if (s->akind[k] == JA_REAL_ACT) sadj[k] = r->in_node[k] ? adj[r->in_node[k]] : 0;
    else if (r->in_box[k]) {
      JitBox *b = r->in_box[k];
      int32_t n0 = r->in_node[k];
      for (int64_t e = 0; e < b->n; e++) b->adj[e] += adj[n0 + e];
    }
  }
  if (r->th_n && cx->grad)
    for (size_t e = 0; e < r->th_n; e++) cx->grad[r->th_off + e] += adj[r->th_node0 + (int32_t)e];
}
