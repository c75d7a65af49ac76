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

#include <math.h>
#include <string.h>

#include "interp_ops.h"

#define JIT_CHUNK (1u << 20)
#define JIT_ERRSZ 512

struct JitRec {
  const JitSite *s;
  Tape *t;
  int32_t *in_node;  /* per operand: its (first) tape variable, 0 if none */
  JitBox **in_box;   /* per operand: the box, for containers with adjoints */
  int32_t out_node;  /* scalar result */
  JitBox *out_box;   /* container result with adjoints (or the stored-into box) */
  int32_t *out_nodes;
  int32_t lp_node;   /* latents and observations: their log density */
  size_t th_off, th_n;
  int32_t th_node0;
};

/* ---- arena ---- */

static char **grow_list(char **l, int n, int *cap) {
  if (n < *cap) return l;
  int c = *cap ? 2 * *cap : 8;
  char **m = gc_alloc(sizeof(char *) * (size_t)c);
  if (n) memcpy(m, l, sizeof(char *) * (size_t)n);
  *cap = c;
  return m;
}

static void *arena_alloc(JitCtx *cx, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n > JIT_CHUNK / 4) { /* a big block of its own, released by the next begin */
    cx->big = grow_list(cx->big, cx->nbig, &cx->capbig);
    return cx->big[cx->nbig++] = gc_alloc(n);
  }
  if (cx->nchunks == 0 || cx->used + n > JIT_CHUNK) {
    if (cx->nchunks > 0 && cx->chunk + 1 < cx->nchunks) {
      cx->chunk++;
    } else {
      cx->chunks = grow_list(cx->chunks, cx->nchunks, &cx->capchunks);
      cx->chunks[cx->nchunks] = gc_alloc(JIT_CHUNK);
      cx->chunk = cx->nchunks++;
    }
    cx->used = 0;
  }
  void *p = cx->chunks[cx->chunk] + cx->used;
  cx->used += n;
  memset(p, 0, n);
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
  return cx;
}

void jit_rt_begin(JitCtx *cx, const double *theta, double *grad) {
  for (int i = 0; i < cx->nbig; i++) cx->big[i] = NULL; /* the collector takes them */
  cx->nbig = 0;
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
    if (cx->ntapes == cx->captapes) {
      int cap = cx->captapes ? 2 * cx->captapes : 16;
      Tape **t = gc_alloc(sizeof(Tape *) * (size_t)cap);
      if (cx->ntapes) memcpy(t, cx->tapes, sizeof(Tape *) * (size_t)cx->ntapes);
      cx->tapes = t;
      cx->captapes = cap;
    }
    cx->tapes[cx->ntapes++] = tape_new();
  }
  Tape *t = cx->tapes[cx->ntape_used++];
  tape_reset(t);
  return t;
}

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

static Value arg_value(JitCtx *cx, JitRec *r, int k, const JitArg *a, Tape *t) {
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
  (void)cx;
  return v;
}

static double bound_arg(const Value *v, int k, double absent) {
  return k < 0 ? absent : val_as_real(v[k]);
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
  if (cx->k >= lat->n) return false;
  return lat->sample(lat->ud, cx->k++, &dc, t, cx->theta, out, lp, &r->lp_node, &r->th_off,
                     &r->th_n, &r->th_node0, err, JIT_ERRSZ);
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

JitRec *jit_rt_op(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res) {
  const IrInstr *ins = s->ins;
  Tape *t = next_tape(cx);
  JitRec *r = arena_alloc(cx, sizeof(JitRec));
  r->s = s;
  r->t = t;
  r->in_node = arena_alloc(cx, sizeof(int32_t) * (size_t)(s->nargs + 1));
  r->in_box = arena_alloc(cx, sizeof(JitBox *) * (size_t)(s->nargs + 1));
  Value av[32];
  Value *v = s->nargs <= 32 ? av : arena_alloc(cx, sizeof(Value) * (size_t)s->nargs);
  for (int k = 0; k < s->nargs; k++) v[k] = arg_value(cx, r, k, &args[k], t);
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
