/* jit_native.c — the container arithmetic and densities the JIT lowers to
 * loops of its own (ir/jit_gen.h): element-wise arithmetic with broadcasting,
 * copies, matrix * vector, and the observations and latents of scalar
 * families (normal and bernoulli_logit inline and vectorised with libmvec;
 * other families through their C kernels).  Each checks what the interpreter
 * checks and returns false for the cases it does not take, which then go to
 * the runtime (emit_site in ir/jit.c).
 */
#include "jit_gen.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if PPL_HAVE_LLVM

/* ---- native container arithmetic and densities ----
 *
 * The hot operations of typical models lowered to loops in the compiled
 * code itself: element-wise arithmetic on vectors and matrices, container
 * copies, and the latents and observations of scalar families.  Each checks
 * what the interpreter checks (sizes, parameter domains) and leaves the
 * message to it: a failed check is a runtime error of the compiled code.
 * Cases outside these patterns go through the runtime (emit_site). */

static LLVMValueRef box_ten(Gen *g, LLVMValueRef box) {
  return LLVMBuildLoad2(g->B, g->ptr, field(g, box, 8), "ten");
}
static LLVMValueRef box_data(Gen *g, LLVMValueRef box) {
  return LLVMBuildLoad2(g->B, g->ptr, field(g, box_ten(g, box), 8), "data");
}
static LLVMValueRef box_adjp(Gen *g, LLVMValueRef box) {
  return LLVMBuildLoad2(g->B, g->ptr, field(g, box, 16), "adjs");
}
static LLVMValueRef box_n(Gen *g, LLVMValueRef box) {
  return LLVMBuildLoad2(g->B, g->i64, field(g, box, 24), "n");
}
static LLVMValueRef box_rows(Gen *g, LLVMValueRef box) {
  return LLVMBuildSExt(g->B, LLVMBuildLoad2(g->B, g->i32, box_ten(g, box), ""), g->i64, "rows");
}
static LLVMValueRef box_cols(Gen *g, LLVMValueRef box) {
  return LLVMBuildSExt(g->B, LLVMBuildLoad2(g->B, g->i32, field(g, box_ten(g, box), 4), ""), g->i64,
                       "cols");
}
/* The shape of tensor register r's current value: constants where known here
   (data, or a value made outside control flow with known sizes). */
static void shape_of(Gen *g, int r, LLVMValueRef box, LLVMValueRef *rows, LLVMValueRef *cols,
                     LLVMValueRef *n) {
  if (g->depth == 0 && g->krows[r] >= 0) {
    *rows = ci(g, g->krows[r]);
    *cols = ci(g, g->kcols[r]);
    *n = ci(g, g->krows[r] * g->kcols[r]);
    return;
  }
  *rows = box_rows(g, box);
  *cols = box_cols(g, box);
  *n = box_n(g, box);
}

/* Write a tensor box into r, remembering its shape when it is known here. */
void jg_wr_ten(Gen *g, int r, LLVMValueRef box, LLVMValueRef rows, LLVMValueRef cols) {
  wr(g, r, box);
  bool known = g->depth == 0 && LLVMIsAConstantInt(rows) && LLVMIsAConstantInt(cols);
  g->krows[r] = known ? LLVMConstIntGetSExtValue(rows) : -1;
  g->kcols[r] = known ? LLVMConstIntGetSExtValue(cols) : -1;
}

static LLVMValueRef ld_f64(Gen *g, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildLoad2(g->B, g->f64, gep(g, g->f64, base, i), "");
}
static void st_f64(Gen *g, LLVMValueRef base, LLVMValueRef i, LLVMValueRef v) {
  LLVMBuildStore(g->B, v, gep(g, g->f64, base, i));
}
static void add_f64(Gen *g, LLVMValueRef base, LLVMValueRef i, LLVMValueRef v) {
  LLVMValueRef p = gep(g, g->f64, base, i);
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, p, ""), v, ""), p);
}


static void fill_f64(Gen *g, LLVMValueRef p, int64_t n, double v) {
  for (int64_t i = 0; i < n; i++) st_f64(g, p, ci(g, i), cf(g, v));
}


/* A new tensor box.  Outside control flow and with sizes known here it lives
   in the compiled function's frame (one per evaluation, and LLVM sees through
   it); else in the runtime's arena. */
LLVMValueRef jg_new_ten(Gen *g, int kind, LLVMValueRef rows, LLVMValueRef cols, bool active,
                            int fill) {
  if (g->depth == 0 && LLVMIsAConstantInt(rows) && LLVMIsAConstantInt(cols)) {
    int64_t r = LLVMConstIntGetSExtValue(rows), c = LLVMConstIntGetSExtValue(cols), n = r * c;
    if (r >= 0 && c >= 0 && n <= 64) {
      LLVMValueRef box = entry_alloca(g, LLVMArrayType2(g->i64, 6), "box");
      LLVMValueRef ten = entry_alloca(g, LLVMArrayType2(g->i64, 3), "ten");
      LLVMValueRef d = entry_alloca(g, LLVMArrayType2(g->f64, (uint64_t)(n ? n : 1)), "el");
      LLVMBuildStore(g->B, LLVMConstInt(g->i8, (unsigned long long)kind, 0), box);
      LLVMBuildStore(g->B, LLVMConstInt(g->i32, 0, 0), field(g, box, 4));
      LLVMBuildStore(g->B, ten, field(g, box, 8));
      LLVMBuildStore(g->B, ci(g, n), field(g, box, 24));
      LLVMBuildStore(g->B, LLVMConstNull(g->ptr), field(g, box, 32));
      LLVMBuildStore(g->B, LLVMConstInt(g->i8, 0, 0), field(g, box, 40));
      LLVMBuildStore(g->B, LLVMConstInt(g->i32, (unsigned long long)r, 0), ten);
      LLVMBuildStore(g->B, LLVMConstInt(g->i32, (unsigned long long)c, 0), field(g, ten, 4));
      LLVMBuildStore(g->B, d, field(g, ten, 8));
      LLVMBuildStore(g->B, LLVMConstNull(g->ptr), field(g, ten, 16));
      if (fill != FILL_NONE) fill_f64(g, d, n, fill == FILL_NAN ? NAN : 0);
      LLVMValueRef adj = LLVMConstNull(g->ptr);
      if (active) {
        adj = entry_alloca(g, LLVMArrayType2(g->f64, (uint64_t)(n ? n : 1)), "eladj");
        fill_f64(g, adj, n, 0);
      }
      LLVMBuildStore(g->B, adj, field(g, box, 16));
      return box;
    }
  }
  LLVMValueRef a[6] = {g->cx, ci(g, kind), rows, cols, ci(g, active), ci(g, fill)};
  return call(g, g->t_ten, g->f_ten, a, 6);
}

/* a sum whose order may change (dot products, reductions): lets LLVM vectorise it */
static LLVMValueRef reassoc(LLVMValueRef v) {
  LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  return v;
}

/* ---- element-wise arithmetic ---- */

typedef struct EwCtx {
  int op;
  LLVMValueRef a, b;   /* box data pointers, or NULL for scalars */
  LLVMValueRef sa, sb; /* scalar operands */
  LLVMValueRef z;      /* result data */
  /* reverse */
  LLVMValueRef zadj, aadj, badj, ga, gb; /* ga/gb: allocas summing scalar adjoints */
} EwCtx;

static LLVMValueRef ew_val(Gen *g, const EwCtx *e, LLVMValueRef i, bool second) {
  LLVMValueRef p = second ? e->b : e->a;
  return p ? ld_f64(g, p, i) : second ? e->sb : e->sa;
}

/* the value and the partials are the operator's scalar rule
   (stdlib/scalar_rule.h), as the interpreter's */
static void ew_fwd(Gen *g, LLVMValueRef i, void *ud) {
  EwCtx *e = ud;
  LLVMValueRef x = ew_val(g, e, i, false), y = ew_val(g, e, i, true), z;
  jg_emit_rule(g, op_scalar_rule(e->op), x, y, &z, NULL, NULL);
  st_f64(g, e->z, i, z);
}

/* adjoint times a partial; a partial of 1 or -1 passes the adjoint on */
static LLVMValueRef times(Gen *g, LLVMValueRef gz, LLVMValueRef p) {
  if (LLVMIsAConstantFP(p)) {
    LLVMBool lossy;
    double k = LLVMConstRealGetDouble(p, &lossy);
    if (k == 1) return gz;
    if (k == -1) return LLVMBuildFNeg(g->B, gz, "");
  }
  return LLVMBuildFMul(g->B, gz, p, "");
}

static void ew_rev(Gen *g, LLVMValueRef i, void *ud) {
  EwCtx *e = ud;
  LLVMValueRef gz = ld_f64(g, e->zadj, i);
  st_f64(g, e->zadj, i, cf(g, 0));
  bool wa = e->aadj || e->ga, wb = e->badj || e->gb;
  LLVMValueRef pa = NULL, pb = NULL, da = NULL, db = NULL;
  jg_emit_rule(g, op_scalar_rule(e->op), ew_val(g, e, i, false), ew_val(g, e, i, true), NULL,
               wa ? &pa : NULL, wb ? &pb : NULL);
  if (wa) da = times(g, gz, pa);
  if (wb) db = times(g, gz, pb);
  if (e->aadj) add_f64(g, e->aadj, i, da);
  if (e->badj) add_f64(g, e->badj, i, db);
  /* a scalar operand's adjoint is a sum over the elements: reassociable, so
     the loop vectorises */
  if (e->ga) LLVMBuildStore(g->B, reassoc(LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, e->ga, ""), da, "")), e->ga);
  if (e->gb) LLVMBuildStore(g->B, reassoc(LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, e->gb, ""), db, "")), e->gb);
}

bool jg_emit_ew(Gen *g, RevList *l, const IrInstr *ins) {
  int a = ins->args[0], b = ins->args[1], d = ins->dst, op = ins->sub;
  Type ta = g->f->regtypes[a], tb = g->f->regtypes[b], td = g->f->regtypes[d];
  bool ba = g->rc[a] == RC_BOX, bb = g->rc[b] == RC_BOX;
  if (!is_tensor(td) || (ba && !is_tensor(ta)) || (bb && !is_tensor(tb))) return false;
  if ((!ba && g->rc[a] != RC_REAL && g->rc[a] != RC_INT) || (!bb && g->rc[b] != RC_REAL && g->rc[b] != RC_INT))
    return false;
  if (ba && bb) {
    if (ta.base != tb.base || !(op == OP_ADD || op == OP_SUB || op == OP_EMUL || op == OP_EDIV))
      return false;
  } else if (!(op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_EMUL ||
               (ba && (op == OP_DIV || op == OP_EDIV)))) {
    return false;
  }
  bool mul = op != OP_ADD && op != OP_SUB;
  /* the adjoint reads the operands: they must not change in between */
  if (mul && ((ba && g->stored[a]) || (bb && g->stored[b]))) return false;
  EwCtx e = {.op = op};
  LLVMValueRef A = ba ? rd(g, a) : NULL, Bx = bb ? rd(g, b) : NULL, T = ba ? A : Bx;
  LLVMValueRef n, rows, cols;
  shape_of(g, ba ? a : b, T, &rows, &cols, &n);
  if (ba && bb) {
    LLVMValueRef n2, r2, c2;
    shape_of(g, b, Bx, &r2, &c2, &n2);
    check(g, LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntEQ, n, n2, ""),
                          LLVMBuildICmp(g->B, LLVMIntEQ, rows, r2, ""), ""));
  }
  if (ba) e.a = box_data(g, A);
  else e.sa = as_f64(g, a);
  if (bb) e.b = box_data(g, Bx);
  else e.sb = as_f64(g, b);
  LLVMValueRef Z = jg_new_ten(g, ten_kind(td), rows, cols, active(g, d), FILL_NONE);
  e.z = box_data(g, Z);
  emit_loop(g, n, ew_fwd, &e);
  jg_wr_ten(g, d, Z, rows, cols);
  if (!active(g, d)) return true;
  RevItem *it = rev_add(g, l, RV_EW, ins);
  it->sub = op;
  save(it, Z);           /* 0 */
  save(it, n);           /* 1 */
  save(it, ba ? A : e.sa); /* 2 */
  save(it, bb ? Bx : e.sb); /* 3 */
  push_saved(g, it);
  return true;
}

void jg_rev_ew(Gen *g, RevItem *it) {
  const IrInstr *ins = it->ins;
  int a = ins->args[0], b = ins->args[1];
  bool ba = g->rc[a] == RC_BOX, bb = g->rc[b] == RC_BOX;
  EwCtx e = {.op = it->sub};
  e.zadj = box_adjp(g, it->save[0]);
  if (ba) e.a = box_data(g, it->save[2]);
  else e.sa = it->save[2];
  if (bb) e.b = box_data(g, it->save[3]);
  else e.sb = it->save[3];
  if (active(g, a)) {
    if (ba) e.aadj = box_adjp(g, it->save[2]);
    else e.ga = entry_alloca(g, g->f64, "ga");
  }
  if (active(g, b)) {
    if (bb) e.badj = box_adjp(g, it->save[3]);
    else e.gb = entry_alloca(g, g->f64, "gb");
  }
  if (e.ga) LLVMBuildStore(g->B, cf(g, 0), e.ga);
  if (e.gb) LLVMBuildStore(g->B, cf(g, 0), e.gb);
  emit_loop(g, it->save[1], ew_rev, &e);
  if (e.ga) adj_add(g, a, LLVMBuildLoad2(g->B, g->f64, e.ga, ""));
  if (e.gb) adj_add(g, b, LLVMBuildLoad2(g->B, g->f64, e.gb, ""));
}

/* ---- copies ---- */

typedef struct CpCtx {
  LLVMValueRef src, dst;
} CpCtx;

static void cp_fwd(Gen *g, LLVMValueRef i, void *ud) {
  CpCtx *c = ud;
  st_f64(g, c->dst, i, ld_f64(g, c->src, i));
}

static void cp_rev(Gen *g, LLVMValueRef i, void *ud) {
  CpCtx *c = ud; /* src: the copy's adjoints, dst: the original's */
  LLVMValueRef v = ld_f64(g, c->src, i);
  st_f64(g, c->src, i, cf(g, 0));
  if (c->dst) add_f64(g, c->dst, i, v);
}

static void cp_zero(Gen *g, LLVMValueRef i, void *ud) { st_f64(g, ((CpCtx *)ud)->src, i, cf(g, 0)); }

/* dst = src for two tensors of the same type; a declared dst keeps its shape */
bool jg_emit_copy(Gen *g, RevList *l, const IrInstr *ins) {
  int a = ins->args[0], d = ins->dst;
  Type ta = g->f->regtypes[a], td = g->f->regtypes[d];
  if (!is_tensor(ta) || !ty_eq(ta, td) || g->rc[a] != RC_BOX) return false;
  LLVMValueRef S = rd(g, a);
  LLVMValueRef n, rows, cols;
  shape_of(g, a, S, &rows, &cols, &n);
  /* a variable declared with sizes keeps them: compare with its current value */
  LLVMValueRef old = LLVMBuildLoad2(g->B, g->ptr, g->slot[d], "");
  LLVMValueRef isnull = LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildPtrToInt(g->B, old, g->i64, ""), ci(g, 0), "");
  LLVMBasicBlockRef cb = new_bb(g, "shape"), ok = new_bb(g, "shaped");
  LLVMBuildCondBr(g->B, isnull, ok, cb);
  LLVMPositionBuilderAtEnd(g->B, cb);
  check(g, LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntEQ, n, box_n(g, old), ""),
                        LLVMBuildICmp(g->B, LLVMIntEQ, rows, box_rows(g, old), ""), ""));
  LLVMBuildBr(g->B, ok);
  LLVMPositionBuilderAtEnd(g->B, ok);
  LLVMValueRef Z = jg_new_ten(g, ten_kind(td), rows, cols, active(g, d), FILL_NONE);
  CpCtx c = {box_data(g, S), box_data(g, Z)};
  emit_loop(g, n, cp_fwd, &c);
  jg_wr_ten(g, d, Z, rows, cols);
  if (!active(g, d)) return true;
  RevItem *it = rev_add(g, l, RV_COPY, ins);
  save(it, Z);
  save(it, S);
  save(it, n);
  push_saved(g, it);
  return true;
}

void jg_rev_copy(Gen *g, RevItem *it) {
  int a = it->ins->args[0];
  CpCtx c = {box_adjp(g, it->save[0]), active(g, a) ? box_adjp(g, it->save[1]) : NULL};
  emit_loop(g, it->save[2], c.dst ? cp_rev : cp_zero, &c);
}


/* A data container's numbers (val_flatten order) from the bound data set,
   or with logs their logarithms (computed once per data set, jit_data_bind);
   NULL when the value has none, or its logs are not bound. */
static LLVMValueRef data_numbers(Gen *g, int r, bool logs) {
  Value v = g->data[r];
  if (!(v.k == V_ARR || v.k == V_VEC || v.k == V_ROWVEC || v.k == V_MAT)) return NULL;
  if (logs) {
    if (!g->j->need_logs[r]) return NULL;
    if (!g->dlogs[r]) g->dlogs[r] = data_slot(g, r, (int)offsetof(JitDataReg, logs), g->ptr);
    return g->dlogs[r];
  }
  if (!g->dnums[r]) g->dnums[r] = data_slot(g, r, (int)offsetof(JitDataReg, nums), g->ptr);
  return g->dnums[r];
}

/* a C function's address as a constant of the generated code */
static LLVMValueRef fn_const(Gen *g, const void *f) {
  return LLVMConstIntToPtr(LLVMConstInt(g->i64, (unsigned long long)(uintptr_t)f, 0), g->ptr);
}

/* ---- matrix * vector ---- */

typedef struct MvCtx {
  LLVMValueRef A, b, R, rows; /* forward: data pointers */
  LLVMValueRef k, bk;         /* the current column */
  LLVMValueRef g, aadj, badj; /* reverse */
  LLVMValueRef sum;           /* alloca */
} MvCtx;

static void mv_fwd_i(Gen *g, LLVMValueRef i, void *ud) {
  MvCtx *m = ud;
  LLVMValueRef a = ld_f64(g, m->A, LLVMBuildAdd(g->B, LLVMBuildMul(g->B, m->k, m->rows, ""), i, ""));
  add_f64(g, m->R, i, LLVMBuildFMul(g->B, a, m->bk, ""));
}

static void mv_fwd_k(Gen *g, LLVMValueRef k, void *ud) {
  MvCtx *m = ud;
  m->k = k;
  m->bk = ld_f64(g, m->b, k);
  emit_loop(g, m->rows, mv_fwd_i, m);
}


static void mv_rev_i(Gen *g, LLVMValueRef i, void *ud) {
  MvCtx *m = ud;
  LLVMValueRef idx = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, m->k, m->rows, ""), i, "");
  LLVMValueRef gi = ld_f64(g, m->g, i);
  if (m->badj) {
    LLVMValueRef prod = reassoc(LLVMBuildFMul(g->B, ld_f64(g, m->A, idx), gi, ""));
    LLVMBuildStore(g->B, reassoc(LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, m->sum, ""), prod, "")), m->sum);
  }
  if (m->aadj) add_f64(g, m->aadj, idx, LLVMBuildFMul(g->B, gi, m->bk, ""));
}

static void mv_rev_k(Gen *g, LLVMValueRef k, void *ud) {
  MvCtx *m = ud;
  m->k = k;
  m->bk = ld_f64(g, m->b, k);
  LLVMBuildStore(g->B, cf(g, 0), m->sum);
  emit_loop(g, m->rows, mv_rev_i, m);
  if (m->badj) add_f64(g, m->badj, k, LLVMBuildLoad2(g->B, g->f64, m->sum, ""));
}

static void mv_zero(Gen *g, LLVMValueRef i, void *ud) { st_f64(g, ((MvCtx *)ud)->g, i, cf(g, 0)); }

/* Products of a matrix that is not differentiated with more than MV_BLAS
   elements (or of a size known only at run time) go to BLAS (jit_rt_gemv):
   one pass over the matrix forward and one for the vector's adjoint, where
   the loops above make one pass over the result per column.  Small ones stay
   inline, where a call would cost more than the product. */
#define MV_BLAS 256

static bool mv_blas(Gen *g, int a, LLVMValueRef n) {
  if (active(g, a)) return false;
  return !LLVMIsAConstantInt(n) || LLVMConstIntGetSExtValue(n) > MV_BLAS;
}

static void mv_gemv(Gen *g, int64_t trans, LLVMValueRef rows, LLVMValueRef cols, LLVMValueRef A,
                    LLVMValueRef x, LLVMValueRef y) {
  LLVMTypeRef ps[6] = {g->i64, g->i64, g->i64, g->ptr, g->ptr, g->ptr};
  LLVMTypeRef ft = LLVMFunctionType(g->vd, ps, 6, 0);
  LLVMValueRef args[6] = {ci(g, trans), rows, cols, A, x, y};
  call(g, ft, fn_const(g, (const void *)jit_rt_gemv), args, 6);
}

bool jg_emit_matvec(Gen *g, RevList *l, const IrInstr *ins) {
  int a = ins->args[0], b = ins->args[1], d = ins->dst;
  Type ta = g->f->regtypes[a], tb = g->f->regtypes[b];
  if (ins->sub != OP_MUL || g->rc[a] != RC_BOX || g->rc[b] != RC_BOX || ta.ndims || tb.ndims ||
      ta.base != TY_MATRIX || tb.base != TY_VECTOR || g->stored[a] || g->stored[b])
    return false;
  LLVMValueRef A = rd(g, a), Bv = rd(g, b);
  LLVMValueRef rows, cols, n, br, bc, bn;
  shape_of(g, a, A, &rows, &cols, &n);
  shape_of(g, b, Bv, &br, &bc, &bn);
  check(g, LLVMBuildICmp(g->B, LLVMIntEQ, cols, br, ""));
  bool blas = mv_blas(g, a, n); /* BLAS writes every element (jit_rt_gemv); the loops add */
  LLVMValueRef R = jg_new_ten(g, V_VEC, rows, ci(g, 1), active(g, d), blas ? FILL_NONE : FILL_ZERO);
  MvCtx m = {.A = g->isdata[a] ? data_numbers(g, a, false) : NULL, .b = box_data(g, Bv),
             .R = box_data(g, R), .rows = rows};
  if (!m.A) m.A = box_data(g, A);
  if (blas) mv_gemv(g, 0, rows, cols, m.A, m.b, m.R);
  else emit_loop(g, cols, mv_fwd_k, &m);
  jg_wr_ten(g, d, R, rows, ci(g, 1));
  if (!active(g, d)) return true;
  RevItem *it = rev_add(g, l, RV_MATVEC, ins);
  save(it, R);
  save(it, A);
  save(it, Bv);
  save(it, rows);
  save(it, cols);
  save(it, n);
  push_saved(g, it);
  return true;
}

void jg_rev_matvec(Gen *g, RevItem *it) {
  const IrInstr *ins = it->ins;
  int a = ins->args[0], b = ins->args[1];
  MvCtx m = {.A = g->isdata[a] ? data_numbers(g, a, false) : NULL, .b = box_data(g, it->save[2]),
             .g = box_adjp(g, it->save[0]), .rows = it->save[3]};
  if (!m.A) m.A = box_data(g, it->save[1]);
  if (active(g, a)) m.aadj = box_adjp(g, it->save[1]);
  if (active(g, b)) m.badj = box_adjp(g, it->save[2]);
  m.sum = entry_alloca(g, g->f64, "dot");
  if (m.badj && mv_blas(g, a, it->save[5])) mv_gemv(g, 1, it->save[3], it->save[4], m.A, m.g, m.badj);
  else emit_loop(g, it->save[4], mv_rev_k, &m);
  emit_loop(g, it->save[3], mv_zero, &m);
}

/* ---- scalar-family densities ---- */


/* ---- vector code: densities over several elements at once ----
 * The families' descriptions (stdlib/dist_kernel.h) are emitted at a width
 * g->vw: 0 emits scalar code, W emits <W x double> code calling glibc's
 * libmvec for exp, log and log1p.  Constants and math go through these
 * helpers. */

static LLVMTypeRef vty(Gen *g) { return g->vw ? LLVMVectorType(g->f64, (unsigned)g->vw) : g->f64; }

static LLVMValueRef cv(Gen *g, double x) {
  if (!g->vw) return cf(g, x);
  LLVMValueRef e[16];
  for (int i = 0; i < g->vw; i++) e[i] = cf(g, x);
  return LLVMConstVector(e, (unsigned)g->vw);
}

static LLVMValueRef splat(Gen *g, LLVMValueRef s) {
  if (!g->vw) return s;
  LLVMValueRef v = LLVMBuildInsertElement(g->B, LLVMGetUndef(vty(g)), s, LLVMConstInt(g->i32, 0, 0), "");
  LLVMValueRef zeros[16];
  for (int i = 0; i < g->vw; i++) zeros[i] = LLVMConstInt(g->i32, 0, 0);
  return LLVMBuildShuffleVector(g->B, v, LLVMGetUndef(vty(g)), LLVMConstVector(zeros, (unsigned)g->vw), "");
}

static LLVMValueRef vload(Gen *g, LLVMValueRef base, LLVMValueRef i) {
  LLVMValueRef v = LLVMBuildLoad2(g->B, vty(g), gep(g, g->f64, base, i), "");
  LLVMSetAlignment(v, 8);
  return v;
}

static void vstore(Gen *g, LLVMValueRef base, LLVMValueRef i, LLVMValueRef v) {
  LLVMValueRef s = LLVMBuildStore(g->B, v, gep(g, g->f64, base, i));
  LLVMSetAlignment(s, 8);
}

/* an overloaded intrinsic (fabs, floor) at the current width */
static LLVMValueRef vintr(Gen *g, const char *name, LLVMValueRef x) {
  char nm[64];
  if (g->vw) snprintf(nm, sizeof nm, "llvm.%s.v%df64", name, g->vw);
  else snprintf(nm, sizeof nm, "llvm.%s.f64", name);
  LLVMTypeRef t = vty(g);
  LLVMTypeRef ft = LLVMFunctionType(t, &t, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(g->M, nm);
  if (!f) f = LLVMAddFunction(g->M, nm, ft);
  return call(g, ft, f, &x, 1);
}

/* exp, log, log1p: libm (or LLVM's intrinsic) for scalars, libmvec for vectors */
static LLVMValueRef vmath(Gen *g, const char *name, LLVMValueRef x) {
  if (!g->vw) {
    if (!strcmp(name, "log1p")) return call(g, g->t_d1, g->f_log1p, &x, 1);
    char nm[32];
    snprintf(nm, sizeof nm, "llvm.%s.f64", name);
    return intrinsic1(g, nm, x);
  }
  char nm[64];
  snprintf(nm, sizeof nm, "%s%s", g->mvec, name);
  LLVMTypeRef t = vty(g);
  LLVMTypeRef ft = LLVMFunctionType(t, &t, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(g->M, nm);
  if (!f) {
    f = LLVMAddFunction(g->M, nm, ft);
    /* libmvec's functions read and write no memory (no errno either) and
       always return: a call on a loop-invariant operand (the log of a
       scalar sigma splat over a density loop) is hoisted out of the loop,
       computed once instead of once per W elements; the same value */
    static const char *const attrs[] = {"nounwind", "willreturn", "speculatable", "memory"};
    for (int k = 0; k < 4; k++)
      LLVMAddAttributeAtIndex(
          f, LLVMAttributeFunctionIndex,
          LLVMCreateEnumAttribute(g->C, LLVMGetEnumAttributeKindForName(attrs[k], strlen(attrs[k])),
                                  0 /* memory(none) */));
  }
  return call(g, ft, f, &x, 1);
}

/* log1p over vectors as log(u) - ((u - 1) - x) / u with u = 1 + x: the
   second term is the first-order correction for u's rounding (u - 1 and its
   difference with x are exact), a few ulp like libmvec's log1p, whose vector
   variant costs more than libmvec's log and the division.  Where the
   correction is NaN (u = 0 or inf, x NaN) log(u) alone is log1p's value.
   Scalars keep libm's log1p. */
static LLVMValueRef vlog1p(Gen *g, LLVMValueRef x) {
  if (!g->vw) return vmath(g, "log1p", x);
  LLVMValueRef one = cv(g, 1.0);
  LLVMValueRef u = LLVMBuildFAdd(g->B, one, x, "");
  LLVMValueRef c = LLVMBuildFDiv(g->B, LLVMBuildFSub(g->B, LLVMBuildFSub(g->B, u, one, ""), x, ""), u, "");
  LLVMValueRef ok = LLVMBuildFCmp(g->B, LLVMRealORD, c, c, "");
  c = LLVMBuildSelect(g->B, ok, c, cv(g, 0.0), "");
  return LLVMBuildFSub(g->B, vmath(g, "log", u), c, "");
}

/* all lanes true */
static LLVMValueRef all_true(Gen *g, LLVMValueRef c) {
  if (!g->vw) return c;
  char nm[64];
  snprintf(nm, sizeof nm, "llvm.vector.reduce.and.v%di1", g->vw);
  LLVMTypeRef t = LLVMVectorType(g->i1, (unsigned)g->vw);
  LLVMTypeRef ft = LLVMFunctionType(g->i1, &t, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(g->M, nm);
  if (!f) f = LLVMAddFunction(g->M, nm, ft);
  return call(g, ft, f, &c, 1);
}

/* the sum of the lanes of v (a scalar passes through) */
static LLVMValueRef hsum(Gen *g, LLVMValueRef v, int w) {
  if (!w) return v;
  LLVMValueRef s = LLVMBuildExtractElement(g->B, v, LLVMConstInt(g->i32, 0, 0), "");
  for (int i = 1; i < w; i++)
    s = LLVMBuildFAdd(g->B, s, LLVMBuildExtractElement(g->B, v, LLVMConstInt(g->i32, (unsigned long long)i, 0), ""), "");
  return s;
}

/* f (LLVM's intrinsic or libm's function, by name) of each lane: the
   functions libmvec lacks or ppl does not take from it, so vector code gives
   the scalar code's bits */
static LLVMValueRef lanes(Gen *g, const char *f, LLVMValueRef x, LLVMValueRef y) {
  if (!g->vw) return y ? intrinsic2(g, f, x, y) : intrinsic1(g, f, x);
  LLVMValueRef v = LLVMGetUndef(vty(g));
  for (int i = 0; i < g->vw; i++) {
    LLVMValueRef at = LLVMConstInt(g->i32, (unsigned long long)i, 0);
    LLVMValueRef xi = LLVMBuildExtractElement(g->B, x, at, "");
    LLVMValueRef yi = y ? LLVMBuildExtractElement(g->B, y, at, "") : NULL;
    v = LLVMBuildInsertElement(g->B, v, yi ? intrinsic2(g, f, xi, yi) : intrinsic1(g, f, xi), at, "");
  }
  return v;
}

/* The C function at address f (dist_kernel.h's DK_FN1 / DK_FN2: libm's, or
   mathfn.c's) of each lane, called as the C kernels call it: the same bits. */
static LLVMValueRef call_lanes(Gen *g, const void *f, LLVMValueRef x, LLVMValueRef y) {
  LLVMTypeRef ps[2] = {g->f64, g->f64};
  LLVMTypeRef ft = LLVMFunctionType(g->f64, ps, y ? 2 : 1, 0);
  LLVMValueRef fp = fn_const(g, f);
  if (!g->vw) {
    LLVMValueRef a[2] = {x, y};
    return call(g, ft, fp, a, y ? 2 : 1);
  }
  LLVMValueRef v = LLVMGetUndef(vty(g));
  for (int i = 0; i < g->vw; i++) {
    LLVMValueRef at = LLVMConstInt(g->i32, (unsigned long long)i, 0);
    LLVMValueRef a[2] = {LLVMBuildExtractElement(g->B, x, at, ""),
                         y ? LLVMBuildExtractElement(g->B, y, at, "") : NULL};
    v = LLVMBuildInsertElement(g->B, v, call(g, ft, fp, a, y ? 2 : 1), at, "");
  }
  return v;
}

/* One instruction of a description (stdlib/dist_kernel.h) at the current
   width, its operands in r. */
static LLVMValueRef dk_emit(Gen *g, const DkIns *in, LLVMValueRef *r) {
  LLVMValueRef a = r[in->a], b = r[in->b];
  switch (in->op) {
  case DK_CONST: return cv(g, in->k);
  case DK_ADD: return LLVMBuildFAdd(g->B, a, b, "");
  case DK_SUB: return LLVMBuildFSub(g->B, a, b, "");
  case DK_MUL: return LLVMBuildFMul(g->B, a, b, "");
  case DK_DIV: return LLVMBuildFDiv(g->B, a, b, "");
  case DK_NEG: return LLVMBuildFNeg(g->B, a, "");
  case DK_ABS: return vintr(g, "fabs", a);
  case DK_LOG: return vmath(g, "log", a);
  case DK_EXP: return vmath(g, "exp", a);
  case DK_LOG1P: return vlog1p(g, a);
  case DK_EQ: return LLVMBuildFCmp(g->B, LLVMRealOEQ, a, b, "");
  case DK_GT: return LLVMBuildFCmp(g->B, LLVMRealOGT, a, b, "");
  case DK_GE: return LLVMBuildFCmp(g->B, LLVMRealOGE, a, b, "");
  case DK_OR: return LLVMBuildOr(g->B, a, b, "");
  case DK_SEL: return LLVMBuildSelect(g->B, a, b, r[in->c], "");
  case DK_POW: return lanes(g, "llvm.pow.f64", a, b);
  case DK_SQRT: return vintr(g, "sqrt", a);
  case DK_EXPM1: return lanes(g, "expm1", a, NULL);
  case DK_TRUNC: return vintr(g, "trunc", a);
  case DK_CALL1: return call_lanes(g, (const void *)dk_fn1[(int)in->k], a, NULL);
  case DK_CALL2: return call_lanes(g, (const void *)dk_fn2[(int)in->k], a, b);
  case DK_FMA: {
    char nm[32];
    if (g->vw) snprintf(nm, sizeof nm, "llvm.fma.v%df64", g->vw);
    else snprintf(nm, sizeof nm, "llvm.fma.f64");
    LLVMTypeRef t = vty(g), ps[3] = {t, t, t};
    LLVMTypeRef ft = LLVMFunctionType(t, ps, 3, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->M, nm);
    if (!f) f = LLVMAddFunction(g->M, nm, ft);
    LLVMValueRef av[3] = {a, b, r[in->c]};
    return call(g, ft, f, av, 3);
  }
  default: return LLVMBuildFRem(g->B, a, b, ""); /* DK_FMOD: fmod's bits */
  }
}

/* A family's description (stdlib/dist_kernel.h) as code at the current width:
   the log density, and its partials when want.  plog[i], when not NULL, is
   log(p[i]) already computed.  With lsum_arg (a kernel with an lsum), that
   log is left out (0) and *lsum_arg is its argument: the caller adds
   lsum_sign times its log. */
static LLVMValueRef emit_kernel(Gen *g, const DistKernel *k, LLVMValueRef x, LLVMValueRef *p,
                                LLVMValueRef *plog, bool want, LLVMValueRef *dx, LLVMValueRef *dp,
                                LLVMValueRef *lsum_arg) {
  LLVMValueRef r[DK_MAXREG];
  r[DK_X] = x;
  for (int i = 0; i < k->np; i++) r[DK_P(i)] = p[i];
  int n = want ? k->n : k->nlp;
  for (int j = 0; j < n; j++) {
    const DkIns *in = &k->ins[j];
    int pi = in->a - DK_P(0);
    if (in->op == DK_LOG && plog && in->a >= DK_P(0) && in->a < DK_FIRST && plog[pi])
      r[DK_FIRST + j] = plog[pi];
    else if (lsum_arg && k->lsum && DK_FIRST + j == k->lsum)
      *lsum_arg = r[in->a], r[DK_FIRST + j] = cv(g, 0);
    else
      r[DK_FIRST + j] = dk_emit(g, in, r);
  }
  if (want) {
    LLVMValueRef fin = LLVMBuildFCmp(g->B, LLVMRealOLT, vintr(g, "fabs", r[k->lp]), cv(g, INFINITY), "");
    /* dk_lpdf_grad's rule: no partials where the density is not finite */
    *dx = k->dx == DK_NONE ? cv(g, 0) : LLVMBuildSelect(g->B, fin, r[k->dx], cv(g, 0), "");
    for (int i = 0; i < k->np; i++)
      dp[i] = k->dp[i] == DK_NONE ? cv(g, 0) : LLVMBuildSelect(g->B, fin, r[k->dp[i]], cv(g, 0), "");
  }
  return r[k->lp];
}

/* A scalar rule (stdlib/scalar_rule.h) as scalar code: its value into *v
   and its partials into *da, *db, each only if asked for (NULL: not), and
   only the instructions those need.  b is NULL for a unary rule. */
void jg_emit_rule(Gen *g, const ScalarRule *s, LLVMValueRef a, LLVMValueRef b, LLVMValueRef *v,
                  LLVMValueRef *da, LLVMValueRef *db) {
  jg_emit_rule3(g, s, a, b, NULL, v, da, db, NULL, NULL);
}

void jg_emit_rule3(Gen *g, const ScalarRule *s, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c,
                   LLVMValueRef *v, LLVMValueRef *da, LLVMValueRef *db, LLVMValueRef *dc,
                   LLVMValueRef *ok) {
  bool need[DK_MAXREG] = {0};
  if (v) need[s->v] = true;
  if (da) need[s->da] = true;
  if (db && s->db != DK_NONE) need[s->db] = true;
  if (dc && s->dc != DK_NONE) need[s->dc] = true;
  if (ok && s->ok != DK_NONE) need[s->ok] = true;
  for (int j = s->n - 1; j >= 0; j--) {
    if (!need[DK_FIRST + j]) continue;
    const DkIns *in = &s->ins[j];
    const uint8_t reg[3] = {in->a, in->b, in->c};
    for (int k = 0; k < dk_nargs(in->op); k++) need[reg[k]] = true;
  }
  int vw = g->vw;
  g->vw = 0;
  LLVMValueRef r[DK_MAXREG] = {0};
  r[SR_A] = a;
  r[SR_B] = b ? b : cf(g, 0);
  r[SR_C] = c ? c : cf(g, 0);
  for (int j = 0; j < s->n; j++)
    if (need[DK_FIRST + j]) r[DK_FIRST + j] = dk_emit(g, &s->ins[j], r);
  g->vw = vw;
  if (v) *v = r[s->v];
  if (da) *da = r[s->da];
  if (db) *db = s->db == DK_NONE ? cf(g, 0) : r[s->db];
  if (dc) *dc = s->dc == DK_NONE ? cf(g, 0) : r[s->dc];
  if (ok) *ok = s->ok == DK_NONE ? LLVMConstInt(g->i1, 1, 0) : r[s->ok];
}

/* log density of one x under f with parameters p (f64 values), and its
   partials (dx, dp[]) when want: inline from the family's description, or
   by calling its C kernels (dist_lpdf_grad1: one call for both). */
static LLVMValueRef emit_lpdf1(Gen *g, const DistFamily *f, LLVMValueRef x, LLVMValueRef *p,
                               bool want, LLVMValueRef *dx, LLVMValueRef *dp, LLVMValueRef *plog,
                               LLVMValueRef *lsum_arg) {
  if (f->kernel) return emit_kernel(g, f->kernel, x, p, plog, want, dx, dp, lsum_arg);
  LLVMValueRef pa = entry_alloca(g, LLVMArrayType2(g->f64, DIST_MAX_PARAMS), "p");
  for (int i = 0; i < f->nparams; i++) st_f64(g, pa, ci(g, i), p[i]);
  if (!want) {
    LLVMValueRef a[2] = {x, pa};
    return call(g, g->t_lpdf1, fn_const(g, (const void *)f->lpdf1), a, 2);
  }
  LLVMValueRef dxa = entry_alloca(g, g->f64, "dx");
  LLVMValueRef dpa = entry_alloca(g, LLVMArrayType2(g->f64, DIST_MAX_PARAMS), "dp");
  LLVMValueRef b[5] = {fn_const(g, f), x, pa, dxa, dpa};
  LLVMValueRef lp = call(g, g->t_lpdfg, fn_const(g, (const void *)dist_lpdf_grad1), b, 5);
  *dx = LLVMBuildLoad2(g->B, g->f64, dxa, "");
  for (int i = 0; i < f->nparams; i++) dp[i] = ld_f64(g, dpa, ci(g, i));
  return lp;
}

/* jit_kernel_compile's loop: for i < n, lp[i], dx[i] and dp[k*n + i] of
   x[i] under p[k*n + i] (arg: n, x, p, lp, dx, dp), g->simd at a time and
   the rest one by one, as the density loops of programs run them. */
typedef struct KernCtx {
  const DistFamily *f;
  LLVMValueRef n, x, p, lp, dx, dp;
} KernCtx;

static void kern_body(Gen *g, LLVMValueRef i, void *ud) {
  KernCtx *c = ud;
  const DistFamily *f = c->f;
  LLVMValueRef p[DIST_MAX_PARAMS], dx, dp[DIST_MAX_PARAMS] = {0};
  for (int k = 0; k < f->nparams; k++) {
    LLVMValueRef j = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, ci(g, k), c->n, ""), i, "");
    p[k] = g->vw ? vload(g, c->p, j) : ld_f64(g, c->p, j);
  }
  LLVMValueRef x = g->vw ? vload(g, c->x, i) : ld_f64(g, c->x, i);
  LLVMValueRef lp = emit_lpdf1(g, f, x, p, true, &dx, dp, NULL, NULL);
  if (g->vw) {
    vstore(g, c->lp, i, lp);
    vstore(g, c->dx, i, dx);
  } else {
    st_f64(g, c->lp, i, lp);
    st_f64(g, c->dx, i, dx);
  }
  for (int k = 0; k < f->nparams; k++) {
    LLVMValueRef j = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, ci(g, k), c->n, ""), i, "");
    if (g->vw) vstore(g, c->dp, j, dp[k]);
    else st_f64(g, c->dp, j, dp[k]);
  }
}

void jg_kernel_body(Gen *g, const DistFamily *f, LLVMValueRef n, LLVMValueRef *arg) {
  KernCtx c = {f, n, arg[0], arg[1], arg[2], arg[3], arg[4]};
  LLVMValueRef nv = ci(g, 0);
  if (g->simd) {
    nv = LLVMBuildAnd(g->B, n, ci(g, -(int64_t)g->simd), "");
    g->vw = g->simd;
    emit_range(g, ci(g, 0), nv, g->simd, kern_body, &c);
    g->vw = 0;
  }
  emit_range(g, nv, n, 1, kern_body, &c);
}

/* the parameter domain check of stdlib/dist.c, from its table (dist_domain) */
static LLVMValueRef dom_ok(Gen *g, int dom, LLVMValueRef v) {
  const DistDomain *d = dist_domain(dom);
  LLVMValueRef ok = LLVMBuildFCmp(g->B, LLVMRealPredicateTrue, v, v, "");
  if (d->any) return ok;
  if (d->finite)
    ok = LLVMBuildAnd(g->B, ok, LLVMBuildFCmp(g->B, LLVMRealOLT, vintr(g, "fabs", v), cv(g, INFINITY), ""), "");
  ok = LLVMBuildAnd(g->B, ok, LLVMBuildFCmp(g->B, d->lo_open ? LLVMRealOGT : LLVMRealOGE, v, cv(g, d->lo), ""), "");
  ok = LLVMBuildAnd(g->B, ok, LLVMBuildFCmp(g->B, d->hi_open ? LLVMRealOLT : LLVMRealOLE, v, cv(g, d->hi), ""), "");
  if (d->integer) ok = LLVMBuildAnd(g->B, ok, LLVMBuildFCmp(g->B, LLVMRealOEQ, v, vintr(g, "floor", v), ""), "");
  return ok;
}

/* An operand of a density: a scalar register or a container of reals. */
typedef struct DOp {
  int reg;
  bool box, act;
  LLVMValueRef v;    /* scalar value, or the box */
  LLVMValueRef data; /* box data */
  LLVMValueRef logd; /* data: the logs of its numbers, made once per data set (normal's sigma) */
  LLVMValueRef adj;  /* reverse: box adjoints */
  LLVMValueRef gsum; /* reverse: alloca summing a scalar's adjoint */
  LLVMValueRef gsumv; /* the same, lane by lane, in vector code */
} DOp;

static LLVMValueRef dop_at(Gen *g, const DOp *o, LLVMValueRef i) {
  if (g->vw) return o->box ? vload(g, o->data, i) : splat(g, o->v);
  return o->box ? ld_f64(g, o->data, i) : o->v;
}

typedef struct DensCtx {
  const DistFamily *f;
  DOp x, p[DIST_MAX_PARAMS];
  LLVMValueRef lp;  /* alloca: the sum */
  LLVMValueRef lpv; /* alloca: the sum, lane by lane, in vector code */
  bool rev;         /* partials too: added to each container operand's `adj`,
                       summed into `gsum` for scalar operands */
  bool lponly;      /* the copy of a rev loop that runs when no gradient is asked
                       for (grad == NULL): the same checks, no partials */
  LLVMValueRef prodv; /* alloca: in vector code of a kernel with an lsum, the product of
                         its arguments since the last log taken, lane by lane, or NULL */
  int64_t lsum_block; /* elements per log taken (a multiple of the width) */
  LLVMValueRef lsum_end; /* the vector loop's end */
} DensCtx;

static void dens_body(Gen *g, LLVMValueRef i, void *ud);

/* lpv += lsum_sign log(prodv), prodv = 1: the product's log added to the sum
   (stdlib/dist_kernel.h's lsum) */
static void dens_lsum_flush(Gen *g, DensCtx *c) {
  LLVMTypeRef vt = vty(g);
  LLVMValueRef l = vmath(g, "log", LLVMBuildLoad2(g->B, vt, c->prodv, ""));
  if (c->f->kernel->lsum_sign < 0) l = LLVMBuildFNeg(g->B, l, "");
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, vt, c->lpv, ""), l, ""), c->lpv);
  LLVMBuildStore(g->B, cv(g, 1), c->prodv);
}

/* One block of the vector loop of a kernel with an lsum: its elements
   i .. min(i + lsum_block, nv), then the log of their product.  (A loop
   in a loop: a test for the block's end in the one loop lets LLVM call the
   log at every element, speculatively.) */
static void dens_lsum_block(Gen *g, LLVMValueRef i, void *ud) {
  DensCtx *c = ud;
  LLVMValueRef hi = LLVMBuildAdd(g->B, i, ci(g, c->lsum_block), "");
  hi = LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, hi, c->lsum_end, ""), hi, c->lsum_end, "");
  emit_range(g, i, hi, g->vw, dens_body, c);
  dens_lsum_flush(g, c);
}

/* The density loop over n elements: W at a time where the host and the
   family allow (the kernels above), then the rest one by one.  A kernel's
   lsum log (dist_kernel.h) is taken in the vector loop once per block of
   lsum_block elements, of the product of its arguments: as many elements
   as keep the product of numbers up to lsum_hi below 2^1000, at most 128,
   so that its rounding stays near 128 ulps. */
static void dens_loop(Gen *g, DensCtx *c, LLVMValueRef n) {
  int w = g->simd;
  if (!w || !c->f->kernel) {
    emit_loop(g, n, dens_body, c);
    return;
  }
  LLVMTypeRef vt = LLVMVectorType(g->f64, (unsigned)w);
  DOp *ops[DIST_MAX_PARAMS + 1];
  ops[0] = &c->x;
  for (int k = 0; k < c->f->nparams; k++) ops[k + 1] = &c->p[k];
  g->vw = w;
  c->lpv = entry_alloca(g, vt, "lpv");
  LLVMBuildStore(g->B, cv(g, 0), c->lpv);
  const DistKernel *dk = c->f->kernel;
  c->prodv = NULL;
  if (dk->lsum && dk->lsum_hi > 1) {
    int64_t blk = 128;
    while (blk > 1 && (double)blk * log2(dk->lsum_hi) > 1000) blk /= 2;
    c->lsum_block = blk * w;
    c->prodv = entry_alloca(g, vt, "prodv");
    LLVMBuildStore(g->B, cv(g, 1), c->prodv);
  }
  for (int k = 0; k <= c->f->nparams; k++)
    if (ops[k]->gsum) {
      ops[k]->gsumv = entry_alloca(g, vt, "gsv");
      LLVMBuildStore(g->B, cv(g, 0), ops[k]->gsumv);
    }
  LLVMValueRef nv = LLVMBuildAnd(g->B, n, ci(g, -(int64_t)w), "");
  if (c->prodv) {
    c->lsum_end = nv;
    emit_range(g, ci(g, 0), nv, (int)c->lsum_block, dens_lsum_block, c);
  } else {
    emit_range(g, ci(g, 0), nv, w, dens_body, c);
  }
  c->prodv = NULL;
  g->vw = 0;
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, c->lp, ""),
                                     hsum(g, LLVMBuildLoad2(g->B, vt, c->lpv, ""), w), ""), c->lp);
  for (int k = 0; k <= c->f->nparams; k++)
    if (ops[k]->gsumv)
      LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, ops[k]->gsum, ""),
                                         hsum(g, LLVMBuildLoad2(g->B, vt, ops[k]->gsumv, ""), w), ""),
                     ops[k]->gsum);
  emit_range(g, nv, n, 1, dens_body, c);
}

/* The density loop, twice when there are partials: a caller asking for log p
   alone (grad NULL: ADVI's ELBO, PSIS's weights) does not use them, and they
   cost as much as the density (bernoulli_logit: two divisions beside its exp
   and log1p), so a second loop without them runs then. */
static void dens_loops(Gen *g, DensCtx *c, LLVMValueRef n) {
  if (!c->rev) {
    dens_loop(g, c, n);
    return;
  }
  LLVMBasicBlockRef lo = new_bb(g, "lponly"), wg = new_bb(g, "partials"), join = new_bb(g, "dens");
  LLVMValueRef nograd = LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildPtrToInt(g->B, g->grad, g->i64, ""), ci(g, 0), "");
  LLVMBuildCondBr(g->B, nograd, lo, wg);
  LLVMPositionBuilderAtEnd(g->B, lo);
  c->lponly = true;
  dens_loop(g, c, n);
  LLVMBuildBr(g->B, join);
  LLVMPositionBuilderAtEnd(g->B, wg);
  c->lponly = false;
  dens_loop(g, c, n);
  LLVMBuildBr(g->B, join);
  LLVMPositionBuilderAtEnd(g->B, join);
}


static void dens_body(Gen *g, LLVMValueRef i, void *ud) {
  DensCtx *c = ud;
  const DistFamily *f = c->f;
  LLVMValueRef p[DIST_MAX_PARAMS], dx = NULL, dp[DIST_MAX_PARAMS] = {0};
  for (int k = 0; k < f->nparams; k++) {
    p[k] = dop_at(g, &c->p[k], i);
    if (!c->rev && c->p[k].box) /* scalars are checked once, before the loop */
      check(g, all_true(g, dom_ok(g, f->pdom[k], p[k])));
  }
  LLVMValueRef plog[DIST_MAX_PARAMS] = {0};
  for (int k = 0; k < f->nparams; k++)
    if (c->p[k].logd) plog[k] = g->vw ? vload(g, c->p[k].logd, i) : ld_f64(g, c->p[k].logd, i);
  bool want = c->rev && !c->lponly;
  bool lsum = g->vw && c->prodv;
  LLVMValueRef larg = NULL;
  LLVMValueRef lp = emit_lpdf1(g, f, dop_at(g, &c->x, i), p, want, &dx, dp, plog, lsum ? &larg : NULL);
  LLVMValueRef acc = g->vw ? c->lpv : c->lp;
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, vty(g), acc, ""), lp, ""), acc);
  if (lsum && larg) /* the product of the lsum's arguments (its log: dens_lsum_block) */
    LLVMBuildStore(g->B, LLVMBuildFMul(g->B, LLVMBuildLoad2(g->B, vty(g), c->prodv, ""), larg, ""),
                   c->prodv);
  if (!want) return;
  DOp *ops[DIST_MAX_PARAMS + 1];
  LLVMValueRef ds[DIST_MAX_PARAMS + 1];
  ops[0] = &c->x;
  ds[0] = dx;
  for (int k = 0; k < f->nparams; k++) ops[k + 1] = &c->p[k], ds[k + 1] = dp[k];
  for (int k = 0; k <= f->nparams; k++) {
    DOp *o = ops[k];
    if (!o->act || (k == 0 && f->discrete)) continue;
    if (o->box && g->vw) {
      vstore(g, o->adj, i, LLVMBuildFAdd(g->B, vload(g, o->adj, i), ds[k], ""));
    } else if (o->box) {
      add_f64(g, o->adj, i, ds[k]);
    } else {
      LLVMValueRef gs = g->vw ? o->gsumv : o->gsum;
      LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, vty(g), gs, ""), ds[k], ""), gs);
    }
  }
}

/* A family whose support depends on its parameters (uniform) is taken
   with scalar parameters only, its support checked once (support_ok). */
static bool dens_family_ok(const DistFamily *f) {
  return f->lpdf1 && dist_has_grad1(f) && !f->improper && f->nparams <= DIST_MAX_PARAMS;
}

/* dist.c's check that a support depending on the parameters is not empty
   (for the others, a call that returns constants) */
static void support_ok(Gen *g, const DistFamily *f, LLVMValueRef *p) {
  if (!f->support || f->nparams < 2) return;
  LLVMValueRef pa = entry_alloca(g, LLVMArrayType2(g->f64, DIST_MAX_PARAMS), "p");
  LLVMValueRef lo = entry_alloca(g, g->f64, "lo"), hi = entry_alloca(g, g->f64, "hi");
  for (int k = 0; k < f->nparams; k++) st_f64(g, pa, ci(g, k), p[k]);
  LLVMTypeRef ps[3] = {g->ptr, g->ptr, g->ptr};
  LLVMValueRef a[3] = {pa, lo, hi};
  call(g, LLVMFunctionType(LLVMVoidTypeInContext(g->C), ps, 3, 0), fn_const(g, (const void *)f->support), a, 3);
  LLVMValueRef lv = LLVMBuildLoad2(g->B, g->f64, lo, ""), hv = LLVMBuildLoad2(g->B, g->f64, hi, "");
  check(g, LLVMBuildFCmp(g->B, f->discrete ? LLVMRealULE : LLVMRealULT, lv, hv, ""));
}

static bool dop_make2(Gen *g, int r, DOp *o, bool stored_ok);
static bool dop_make(Gen *g, int r, DOp *o) { return dop_make2(g, r, o, false); }

/* stored_ok: the caller reads the box's numbers now only (not in the
   reverse part) and adds no adjoint before the reverse part */
static bool dop_make2(Gen *g, int r, DOp *o, bool stored_ok) {
  memset(o, 0, sizeof *o);
  o->reg = r;
  Type t = g->f->regtypes[r];
  if (g->rc[r] == RC_REAL || g->rc[r] == RC_INT || g->rc[r] == RC_BOOL) {
    o->v = as_f64(g, r);
  } else if (g->rc[r] == RC_BOX && (is_tensor(t) || (t.ndims == 1 && (t.base == TY_REAL || t.base == TY_INT)))) {
    if (!is_tensor(t) && !g->isdata[r]) return false; /* arrays: data only (flat in the box) */
    if (g->stored[r] && !stored_ok) return false;
    o->box = true;
    o->v = rd(g, r);
    o->data = g->isdata[r] ? data_numbers(g, r, false) : NULL;
    if (!o->data)
      o->data = is_tensor(t) ? box_data(g, o->v) : LLVMBuildLoad2(g->B, g->ptr, field(g, o->v, 32), "flat");
  } else {
    return false;
  }
  o->act = active(g, r);
  return true;
}



/* y ~ f(params) for a scalar family over scalars and containers of equal size.
   The partials are computed with the density, in one pass (vectorised for
   normal and bernoulli_logit).  The log density's own adjoint is 1, so a
   container operand's partials go straight into its adjoints (sums commute,
   and no element store can come between: dop_make refuses stored-into
   registers); a scalar's sum waits for the reverse part, since its register
   may be assigned again later.  Where the density is not finite the gradient
   is unspecified (logdensity.h), so nothing is undone then. */
static bool jg_emit_glm(Gen *g, RevList *l, const IrInstr *ins);

bool jg_emit_observe_native(Gen *g, RevList *l, const IrInstr *ins) {
  const DistFamily *f = ins->dist.fam;
  if (g->glm && ins->dist.nparams && g->glm[ins->dist.params[0]]) return jg_emit_glm(g, l, ins);
  if (!dens_family_ok(f) || ins->dist.nparams != f->nparams) return false;
  DensCtx c = {.f = f};
  if (!dop_make(g, ins->args[0], &c.x)) return false;
  bool anybox = c.x.box;
  for (int k = 0; k < f->nparams; k++) {
    if (!dop_make(g, ins->dist.params[k], &c.p[k])) return false;
    anybox |= c.p[k].box;
    if (f->kernel && c.p[k].box && g->isdata[c.p[k].reg] && dk_logs_param(f->kernel, k))
      c.p[k].logd = data_numbers(g, c.p[k].reg, true);
  }
  if (anybox && !c.x.box) return false; /* one value against many parameters: the runtime */
  /* the number of elements: known here for data and tensors of known shape */
  int xr = ins->args[0];
  LLVMValueRef n = ci(g, 1);
  if (c.x.box && g->isdata[xr]) {
    n = ci(g, (int64_t)val_numel(g->data[xr]));
  } else if (c.x.box) {
    LLVMValueRef rows, cols;
    shape_of(g, xr, c.x.v, &rows, &cols, &n);
  }
  LLVMValueRef pv[DIST_MAX_PARAMS];
  for (int k = 0; k < f->nparams; k++) {
    if (c.p[k].box && f->support && f->nparams >= 2) return false; /* a support per element: the runtime */
    pv[k] = c.p[k].v;
  }
  for (int k = 0; k < f->nparams; k++)
    if (c.p[k].box) check(g, LLVMBuildICmp(g->B, LLVMIntEQ, box_n(g, c.p[k].v), n, ""));
    else check(g, dom_ok(g, f->pdom[k], c.p[k].v));
  support_ok(g, f, pv);
  DOp *ops[DIST_MAX_PARAMS + 1];
  ops[0] = &c.x;
  for (int k = 0; k < f->nparams; k++) ops[k + 1] = &c.p[k];
  if (f->discrete) c.x.act = false;
  bool any = false;
  for (int k = 0; k <= f->nparams; k++) any |= ops[k]->act;
  c.rev = any && !g->fwd;
  for (int k = 0; c.rev && k <= f->nparams; k++) {
    DOp *o = ops[k];
    if (!o->act) continue;
    if (o->box) {
      o->adj = box_adjp(g, o->v);
    } else {
      o->gsum = entry_alloca(g, g->f64, "gs");
      LLVMBuildStore(g->B, cf(g, 0), o->gsum);
    }
  }
  c.lp = entry_alloca(g, g->f64, "obs");
  LLVMBuildStore(g->B, cf(g, 0), c.lp);
  dens_loops(g, &c, n);
  LLVMValueRef sum = LLVMBuildLoad2(g->B, g->f64, c.lp, "");
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, g->lp, ""), sum, ""), g->lp);
  bool scalars = false;
  for (int k = 0; k <= f->nparams; k++) scalars |= ops[k]->act && !ops[k]->box;
  if (!c.rev || !scalars) return true;
  RevItem *it = rev_add(g, l, RV_OBS, ins);
  it->aux = f;
  for (int k = 0; k <= f->nparams; k++)
    if (ops[k]->act && !ops[k]->box) save(it, LLVMBuildLoad2(g->B, g->f64, ops[k]->gsum, ""));
  push_saved(g, it);
  return true;
}

/* NAME_lpdf(y | params) with containers (target += normal_lpdf(y | mu,
   sigma), y and mu vectors): the density loop of `y ~ NAME(params)` (the
   family's kernel, vectorised where it has one), its sum into dst.  The
   partials of each operand element go to a buffer of their own, as the
   tape would record them, and the reverse part adds them, scaled by
   adj(dst), to the operands' adjoints: the operands may be stored into
   after the call (a local vector of residuals filled in a loop). */
static bool emit_lpdf_boxes(Gen *g, RevList *l, const IrInstr *ins, const DistFamily *f) {
  int d = ins->dst;
  if (!dens_family_ok(f)) return false;
  DensCtx c = {.f = f};
  if (!dop_make2(g, ins->args[0], &c.x, true) || !c.x.box) return false;
  DOp *ops[DIST_MAX_PARAMS + 1];
  ops[0] = &c.x;
  LLVMValueRef pv[DIST_MAX_PARAMS];
  for (int k = 0; k < f->nparams; k++) {
    if (!dop_make2(g, ins->args[k + 1], &c.p[k], true)) return false;
    if (c.p[k].box && f->support && f->nparams >= 2) return false; /* a support per element: the runtime */
    if (f->kernel && c.p[k].box && g->isdata[c.p[k].reg] && dk_logs_param(f->kernel, k))
      c.p[k].logd = data_numbers(g, c.p[k].reg, true);
    ops[k + 1] = &c.p[k];
    pv[k] = c.p[k].v;
  }
  int xr = ins->args[0];
  LLVMValueRef n;
  if (g->isdata[xr]) {
    n = ci(g, (int64_t)val_numel(g->data[xr]));
  } else {
    LLVMValueRef rows, cols;
    shape_of(g, xr, c.x.v, &rows, &cols, &n);
  }
  for (int k = 0; k < f->nparams; k++)
    if (c.p[k].box) check(g, LLVMBuildICmp(g->B, LLVMIntEQ, box_n(g, c.p[k].v), n, ""));
    else check(g, dom_ok(g, f->pdom[k], c.p[k].v));
  support_ok(g, f, pv);
  if (f->discrete) c.x.act = false;
  bool any = false;
  for (int k = 0; k <= f->nparams; k++) any |= ops[k]->act;
  c.rev = any && active(g, d) && !g->fwd;
  LLVMValueRef buf[DIST_MAX_PARAMS + 1] = {0};
  for (int k = 0; c.rev && k <= f->nparams; k++) {
    DOp *o = ops[k];
    if (!o->act) continue;
    if (o->box) {
      buf[k] = jg_new_ten(g, V_VEC, n, ci(g, 1), false, FILL_ZERO);
      o->adj = box_data(g, buf[k]);
    } else {
      o->gsum = entry_alloca(g, g->f64, "gs");
      LLVMBuildStore(g->B, cf(g, 0), o->gsum);
    }
  }
  c.lp = entry_alloca(g, g->f64, "lpdf");
  LLVMBuildStore(g->B, cf(g, 0), c.lp);
  dens_loops(g, &c, n); /* as for ~ */
  LLVMValueRef lp = LLVMBuildLoad2(g->B, g->f64, c.lp, "");
  check(g, LLVMBuildFCmp(g->B, LLVMRealOLT, lp, cf(g, INFINITY), "")); /* dist_call_lpdf's error */
  wr(g, d, lp);
  if (!active(g, d)) return true;
  RevItem *it = rev_add(g, l, RV_LPDFV, ins);
  it->dst = d;
  for (int k = 0; c.rev && k <= f->nparams; k++) {
    DOp *o = ops[k];
    if (!o->act) continue;
    it->preg[it->np] = o->reg;
    it->pconst[it->np] = o->box; /* 1: a container (its box, then the partials' buffer) */
    it->psave[it->np] = o->box ? save(it, o->v) : save(it, LLVMBuildLoad2(g->B, g->f64, o->gsum, ""));
    if (o->box) save(it, buf[k]);
    it->np++;
  }
  if (c.rev) save(it, n);
  push_saved(g, it);
  return true;
}

typedef struct LvCtx {
  LLVMValueRef adj, part, gd;
} LvCtx;

static void lv_rev(Gen *g, LLVMValueRef i, void *ud) {
  LvCtx *c = ud;
  add_f64(g, c->adj, i, LLVMBuildFMul(g->B, c->gd, ld_f64(g, c->part, i), ""));
}

void jg_rev_lpdfv(Gen *g, RevItem *it) {
  LLVMValueRef gd = take_adj(g, it->dst);
  for (int k = 0; k < it->np; k++) {
    LLVMValueRef v = it->save[it->psave[k]];
    if (it->pconst[k] == 0) {
      adj_add(g, it->preg[k], LLVMBuildFMul(g->B, gd, v, ""));
      continue;
    }
    LvCtx c = {box_adjp(g, v), box_data(g, it->save[it->psave[k] + 1]), gd};
    emit_loop(g, it->save[it->nsave - 1], lv_rev, &c);
  }
}

/* NAME_lpdf(x | params) / NAME_lpmf of scalars (target += normal_lpdf(y[n] |
   mu, sigma) in a loop): the ~ statement's density (the family's kernel
   inline, or its C kernel), with the same checks, its value into dst and
   its partials saved for the reverse part, where adj(dst) scales them like
   any scalar operation's.  A value of NaN or +inf is an error of the
   interpreter's (dist_call_lpdf), so it fails here too.  Containers keep
   the runtime's path (jit_rt.c fast_density, no tape). */
bool jg_emit_lpdf_native(Gen *g, RevList *l, const IrInstr *ins) {
  const DistFamily *f = jit_rt_lpdf_family(ins->builtin);
  int d = ins->dst;
  if (!f || !f->lpdf1 || !dist_has_grad1(f) || f->improper || f->nparams > DIST_MAX_PARAMS ||
      ins->nargs != f->nparams + 1 || d < 0 || g->rc[d] != RC_REAL)
    return false;
  for (int k = 0; k < ins->nargs; k++) {
    uint8_t rc = g->rc[ins->args[k]];
    if (rc == RC_BOX) return emit_lpdf_boxes(g, l, ins, f);
    if (rc != RC_REAL && rc != RC_INT && rc != RC_BOOL) return false;
  }
  LLVMValueRef x = as_f64(g, ins->args[0]), p[DIST_MAX_PARAMS], dx = NULL, dp[DIST_MAX_PARAMS] = {0};
  for (int k = 0; k < f->nparams; k++) {
    p[k] = as_f64(g, ins->args[k + 1]);
    check(g, dom_ok(g, f->pdom[k], p[k]));
  }
  support_ok(g, f, p);
  bool act[DIST_MAX_PARAMS + 1], any = false;
  for (int k = 0; k <= f->nparams; k++) any |= act[k] = active(g, ins->args[k]) && !(k == 0 && f->discrete);
  bool want = any && active(g, d) && !g->fwd;
  LLVMValueRef lp = emit_lpdf1(g, f, x, p, want, &dx, dp, NULL, NULL);
  check(g, LLVMBuildFCmp(g->B, LLVMRealOLT, lp, cf(g, INFINITY), ""));
  RevItem *it = active(g, d) ? rev_add(g, l, RV_SCALAR, ins) : NULL;
  if (it) it->dst = d;
  for (int k = 0; want && k <= f->nparams; k++) {
    if (!act[k]) continue;
    int sv = save(it, k == 0 ? dx : dp[k - 1]);
    it->preg[it->np] = ins->args[k];
    it->psave[it->np] = sv;
    it->pconst[it->np++] = 0;
  }
  wr(g, d, lp);
  if (it) push_saved(g, it);
  return true;
}

void jg_rev_observe(Gen *g, RevItem *it) {
  const IrInstr *ins = it->ins;
  const DistFamily *f = it->aux;
  int s = 0;
  for (int k = 0; k <= f->nparams; k++) {
    int r = k == 0 ? ins->args[0] : ins->dist.params[k - 1];
    if (!active(g, r) || (k == 0 && f->discrete) || g->rc[r] == RC_BOX) continue;
    adj_add(g, r, it->save[s++]);
  }
}

/* ---- fused GLM statements ----
 * y ~ FAMILY(a + X * b, s...) (also X * b + a, X * b; a a scalar or a
 * vector, s scalars, X a data matrix, y data) is Stan's normal_id_glm /
 * bernoulli_logit_glm / poisson_log_glm, recognised here: the product and
 * the sum are not made as vectors of N; the observation runs over blocks
 * of rows, each block computing eta = a + X b for its rows, the density
 * with its partials g (the family's vectorised kernel, dens_loop), and
 * X^T g, d/da while the block's rows are still in cache
 * (jit_rt_glm_eta/_adj).  X is read from memory once per gradient where
 * the unfused code reads it twice (forward product, reverse product).
 * The blocks depend on N and K only, their sums run in a fixed order: the
 * same bits every run, and a shard of whole blocks (ld_shard.c) sums what
 * the single process sums for its rows. */

#define GLM_MIN_BYTES (1 << 20)

static void glm_count(const IrBlock *b, int *reads, int *defs, int nr) {
#define GLM_READ(r) do { if ((r) >= 0 && (r) < nr) reads[r]++; } while (0)
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    for (int k = 0; k < in->nargs; k++) GLM_READ(in->args[k]);
    for (int k = 0; k < in->dist.nparams; k++) GLM_READ(in->dist.params[k]);
    for (int k = 0; k < in->nidx; k++) {
      GLM_READ(in->idx[k].lo);
      GLM_READ(in->idx[k].hi);
    }
    for (int k = 0; k < in->nsizes; k++) GLM_READ(in->sizes[k]);
    GLM_READ(in->con.lower);
    GLM_READ(in->con.upper);
    if (in->op == IR_WHILE) GLM_READ(in->cond);
    if (in->op == IR_OBSERVE || in->op == IR_FOR) GLM_READ(in->var);
    if (in->dst >= 0 && in->dst < nr) defs[in->dst]++;
    glm_count(&in->then_b, reads, defs, nr);
    glm_count(&in->else_b, reads, defs, nr);
    glm_count(&in->body, reads, defs, nr);
    glm_count(&in->cond_b, reads, defs, nr);
  }
#undef GLM_READ
}

/* a temporary box defined once (by def[r]) and read once, never stored into */
static bool glm_temp(Gen *g, int r, const IrInstr **def, const int *reads, const int *defs) {
  return r >= 0 && !g->isdata[r] && g->rc[r] == RC_BOX && def[r] && reads[r] == 1 && defs[r] == 1 &&
         !g->stored[r];
}

/* an operand read when the observation runs rather than where it was
   written: data, or a register assigned once and not stored into */
static bool glm_stable(Gen *g, int r, const int *defs) {
  return g->isdata[r] || (defs[r] == 1 && !g->stored[r]);
}

static bool glm_plain(Gen *g, int r, TyBase base) {
  Type t = g->f->regtypes[r];
  return g->rc[r] == RC_BOX && !t.ndims && t.base == base;
}

static bool glm_matvec(Gen *g, const IrInstr *mv) {
  if (!mv || mv->op != IR_BINARY || mv->sub != OP_MUL) return false;
  int x = mv->args[0], b = mv->args[1];
  return g->isdata[x] && glm_plain(g, x, TY_MATRIX) && glm_plain(g, b, TY_VECTOR) && !g->isdata[b];
}

static bool glm_scalar(Gen *g, int r) { return g->rc[r] == RC_REAL || g->rc[r] == RC_INT; }

void jg_glm_scan(Gen *g, const IrProgram *p) {
  /* PPL_JIT_NO_GLM set: nothing fused (benchmarks measure both side by side) */
  const char *off = getenv("PPL_JIT_NO_GLM");
  if (off && *off && strcmp(off, "0") != 0) return;
  const IrFunc *f = g->f;
  int nr = f->nregs;
  int *reads = gc_alloc_atomic(sizeof(int) * ((size_t)nr + 1)), *defs = gc_alloc_atomic(sizeof(int) * ((size_t)nr + 1));
  memset(reads, 0, sizeof(int) * ((size_t)nr + 1));
  memset(defs, 0, sizeof(int) * ((size_t)nr + 1));
  glm_count(&p->data_b, reads, defs, nr);
  glm_count(&p->model_b, reads, defs, nr);
  glm_count(&p->gen_b, reads, defs, nr);
  glm_count(&p->guide_b, reads, defs, nr);
  const IrInstr **def = gc_alloc(sizeof(IrInstr *) * ((size_t)nr + 1));
  memset(def, 0, sizeof(IrInstr *) * ((size_t)nr + 1));
  for (int i = 0; i < p->model_b.n; i++) {
    const IrInstr *in = &p->model_b.ins[i];
    if (in->dst >= 0 && in->dst < nr) def[in->dst] = in;
    if (in->op != IR_OBSERVE || in->nidx) continue;
    const DistFamily *fam = in->dist.fam;
    if (!dens_family_ok(fam) || (fam->support && fam->nparams >= 2) || in->dist.nparams != fam->nparams || fam->nparams < 1) continue;
    const DistDomain *dd = dist_domain(fam->pdom[0]); /* a location over all reals */
    if (!dd->any && !(dd->lo == -INFINITY && dd->hi == INFINITY)) continue;
    int y = in->args[0], m = in->dist.params[0];
    if (!g->isdata[y] || g->rc[y] != RC_BOX || !glm_temp(g, m, def, reads, defs)) continue;
    bool ok = true;
    for (int k = 1; k < fam->nparams; k++) ok &= glm_scalar(g, in->dist.params[k]);
    if (!ok) continue;
    const IrInstr *d = def[m], *mv = NULL;
    int a = -1;
    if (d->op == IR_BINARY && d->sub == OP_ADD && g->rc[m] == RC_BOX && glm_plain(g, m, TY_VECTOR)) {
      for (int s = 0; s < 2 && !mv; s++) {
        int r = d->args[s], o = d->args[1 - s];
        if (r == o || !glm_temp(g, r, def, reads, defs) || !glm_matvec(g, def[r])) continue;
        if (!(glm_scalar(g, o) || glm_plain(g, o, TY_VECTOR)) || !glm_stable(g, o, defs)) continue;
        mv = def[r], a = o;
      }
    } else if (glm_matvec(g, d)) {
      mv = d;
    }
    if (!mv || !glm_stable(g, mv->args[1], defs)) continue;
    /* a matrix that stays in the cache between the product and its
       transposed product gains nothing, and unfused its product joins
       ld_eval_batch's dgemm (ADVI's ELBO): fuse from GLM_MIN_BYTES */
    Value xv = g->data[mv->args[0]];
    if (xv.k != V_MAT || (double)xv.t->rows * (double)xv.t->cols * 8 < GLM_MIN_BYTES) continue;
    bool act = active(g, mv->args[1]) || (a >= 0 && active(g, a));
    for (int k = 1; k < fam->nparams; k++) act |= active(g, in->dist.params[k]);
    if (!act) continue;
    if (!g->glm) {
      g->glm = gc_alloc(sizeof(IrInstr *) * ((size_t)nr + 1));
      memset(g->glm, 0, sizeof(IrInstr *) * ((size_t)nr + 1));
      g->glm_a = gc_alloc_atomic(sizeof(int) * ((size_t)nr + 1));
    }
    g->glm[mv->dst] = mv;
    g->glm[m] = d;
    g->glm_a[m] = a;
  }
}


static void glm_zero(Gen *g, LLVMValueRef i, void *ud) { st_f64(g, (LLVMValueRef)ud, i, cf(g, 0)); }

static void fill_zero_n(Gen *g, LLVMValueRef p, LLVMValueRef n) { emit_loop(g, n, glm_zero, p); }

typedef struct GlmCtx {
  DensCtx c;
  LLVMValueRef X, ld, K, n, B, b, av, as, ydata;
  LLVMValueRef eta, gbuf;         /* allocas of GLM_MAXB reals */
  LLVMValueRef gb, gav, gas;      /* adjoints: b's, a vector's, a scalar's sum (or NULL) */
  bool grad;
} GlmCtx;

#define GLM_MAXB 4096

static LLVMValueRef gep_or_null(Gen *g, LLVMValueRef p, LLVMValueRef i) {
  return p ? gep(g, g->f64, p, i) : LLVMConstNull(g->ptr);
}

static void glm_block(Gen *g, LLVMValueRef j, void *ud) {
  GlmCtx *m = ud;
  LLVMValueRef lo = LLVMBuildMul(g->B, j, m->B, "");
  LLVMValueRef left = LLVMBuildSub(g->B, m->n, lo, "");
  LLVMValueRef nb = LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, left, m->B, ""), left, m->B, "");
  LLVMValueRef Xb = gep(g, g->f64, m->X, lo);
  LLVMTypeRef pe[8] = {g->i64, g->i64, g->i64, g->ptr, g->ptr, g->ptr, g->f64, g->ptr};
  LLVMValueRef ae[8] = {nb, m->K, m->ld, Xb, m->b, gep_or_null(g, m->av, lo), m->as, m->eta};
  call(g, LLVMFunctionType(g->vd, pe, 8, 0), fn_const(g, (const void *)jit_rt_glm_eta), ae, 8);
  m->c.x.data = gep(g, g->f64, m->ydata, lo);
  if (m->grad) fill_zero_n(g, m->gbuf, nb);
  dens_loop(g, &m->c, nb);
  if (!m->grad) return;
  LLVMTypeRef pa[8] = {g->i64, g->i64, g->i64, g->ptr, g->ptr, g->ptr, g->ptr, g->ptr};
  LLVMValueRef aa[8] = {nb, m->K, m->ld, Xb, m->gbuf, m->gb ? m->gb : LLVMConstNull(g->ptr),
                        gep_or_null(g, m->gav, lo), m->gas ? m->gas : LLVMConstNull(g->ptr)};
  call(g, LLVMFunctionType(g->vd, pa, 8, 0), fn_const(g, (const void *)jit_rt_glm_adj), aa, 8);
}

static void glm_blocks(Gen *g, GlmCtx *m, bool grad) {
  m->grad = grad;
  m->c.lponly = !grad;
  LLVMValueRef nblk = LLVMBuildSDiv(g->B, LLVMBuildAdd(g->B, m->n, LLVMBuildSub(g->B, m->B, ci(g, 1), ""), ""), m->B, "");
  emit_loop(g, nblk, glm_block, m);
}

/* The observation of a statement jg_glm_scan fused: its location is
   a + X * b, computed here block by block. */
static bool jg_emit_glm(Gen *g, RevList *l, const IrInstr *ins) {
  const DistFamily *f = ins->dist.fam;
  int mreg = ins->dist.params[0];
  const IrInstr *d = g->glm[mreg], *mv = d;
  int a = g->glm_a[mreg];
  if (a >= 0) mv = g->glm[d->args[0] == a ? d->args[1] : d->args[0]];
  int xr = mv->args[0], br = mv->args[1], yr = ins->args[0];
  GlmCtx m;
  memset(&m, 0, sizeof m);
  DensCtx *c = &m.c;
  c->f = f;
  if (!dop_make(g, yr, &c->x)) {
    refuse(g, ins, "internal error: a fused GLM statement's observations");
    return true;
  }
  m.ydata = c->x.data;
  c->x.act = false;
  for (int k = 1; k < f->nparams; k++) {
    if (!dop_make(g, ins->dist.params[k], &c->p[k])) {
      refuse(g, ins, "internal error: a fused GLM statement's parameters");
      return true;
    }
    check(g, dom_ok(g, f->pdom[k], c->p[k].v));
  }
  LLVMValueRef X = rd(g, xr), rows, cols, nx;
  shape_of(g, xr, X, &rows, &cols, &nx);
  m.X = data_numbers(g, xr, false);
  m.ld = rows;
  m.n = ci(g, (int64_t)val_numel(g->data[yr]));
  check(g, LLVMBuildICmp(g->B, LLVMIntEQ, rows, m.n, ""));
  LLVMValueRef bb = rd(g, br);
  m.K = box_n(g, bb);
  check(g, LLVMBuildICmp(g->B, LLVMIntEQ, cols, m.K, ""));
  m.b = box_data(g, bb);
  m.as = cf(g, 0);
  bool avec = a >= 0 && g->rc[a] == RC_BOX;
  if (avec) {
    LLVMValueRef ab = rd(g, a);
    m.av = g->isdata[a] ? data_numbers(g, a, false) : box_data(g, ab);
    check(g, LLVMBuildICmp(g->B, LLVMIntEQ, box_n(g, ab), m.n, ""));
  } else if (a >= 0) {
    m.as = as_f64(g, a);
  }
  /* rows per block: the block's columns about 256 KB, 64 to GLM_MAXB rows */
  LLVMValueRef Kp = LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, m.K, ci(g, 1), ""), ci(g, 1), m.K, "");
  LLVMValueRef B = LLVMBuildSDiv(g->B, ci(g, 32768), Kp, "");
  B = LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, B, ci(g, 64), ""), ci(g, 64), B, "");
  B = LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntSGT, B, ci(g, GLM_MAXB), ""), ci(g, GLM_MAXB), B, "");
  m.B = LLVMBuildAnd(g->B, B, ci(g, -8), "");
  m.eta = entry_alloca(g, LLVMArrayType2(g->f64, GLM_MAXB), "eta");
  m.gbuf = entry_alloca(g, LLVMArrayType2(g->f64, GLM_MAXB), "geta");
  c->p[0].reg = mreg;
  c->p[0].box = true;
  c->p[0].data = m.eta;
  c->p[0].adj = m.gbuf;
  c->p[0].act = true;
  c->rev = true;
  if (active(g, br)) m.gb = box_adjp(g, bb);
  if (avec && active(g, a)) m.gav = box_adjp(g, rd(g, a));
  if (!avec && a >= 0 && active(g, a)) {
    m.gas = entry_alloca(g, g->f64, "gas");
    LLVMBuildStore(g->B, cf(g, 0), m.gas);
  }
  for (int k = 1; k < f->nparams; k++)
    if (c->p[k].act) {
      c->p[k].gsum = entry_alloca(g, g->f64, "gs");
      LLVMBuildStore(g->B, cf(g, 0), c->p[k].gsum);
    }
  c->lp = entry_alloca(g, g->f64, "obs");
  LLVMBuildStore(g->B, cf(g, 0), c->lp);
  LLVMBasicBlockRef lo = new_bb(g, "glm_lp"), wg = new_bb(g, "glm_grad"), join = new_bb(g, "glm");
  LLVMValueRef nograd = LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildPtrToInt(g->B, g->grad, g->i64, ""), ci(g, 0), "");
  LLVMBuildCondBr(g->B, nograd, lo, wg);
  LLVMPositionBuilderAtEnd(g->B, lo);
  glm_blocks(g, &m, false);
  LLVMBuildBr(g->B, join);
  LLVMPositionBuilderAtEnd(g->B, wg);
  glm_blocks(g, &m, true);
  LLVMBuildBr(g->B, join);
  LLVMPositionBuilderAtEnd(g->B, join);
  LLVMValueRef sum = LLVMBuildLoad2(g->B, g->f64, c->lp, "");
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, g->lp, ""), sum, ""), g->lp);
  /* scalars' adjoints wait for the reverse part: their registers may be assigned again later */
  int *regs = gc_alloc_atomic(sizeof(int) * (DIST_MAX_PARAMS + 1));
  RevItem *it = NULL;
  for (int k = 0; k <= f->nparams; k++) {
    int r = k == 0 ? (m.gas ? a : -1) : (c->p[k].act ? ins->dist.params[k] : -1);
    if (r < 0) continue;
    if (!it) it = rev_add(g, l, RV_GLM, ins), it->aux = regs;
    LLVMValueRef gs = k == 0 ? m.gas : c->p[k].gsum;
    regs[it->nsave] = r;
    save(it, LLVMBuildLoad2(g->B, g->f64, gs, ""));
  }
  if (it) push_saved(g, it);
  return true;
}

void jg_rev_glm(Gen *g, RevItem *it) {
  const int *regs = it->aux;
  for (int s = 0; s < it->nsave; s++) adj_add(g, regs[s], it->save[s]);
}

/* ---- latents of scalar families ---- */

typedef struct SampCtx {
  const DistFamily *f;
  ConKind con;
  double lower, upper, lz;
  bool trunc;
  int64_t off;
  DOp p[DIST_MAX_PARAMS];
  LLVMValueRef x;      /* tensor data, or NULL for a scalar (then xs) */
  LLVMValueRef xs;     /* alloca for a scalar value */
  LLVMValueRef ljs, lp, bad; /* allocas */
  bool rev;
  LLVMValueRef xadj;   /* reverse: the value's adjoints (tensor), or */
  LLVMValueRef xsadj;  /* the scalar's adjoint */
  LLVMValueRef fin;    /* reverse: the density part was finite */
} SampCtx;

/* x = transform(u) with dx/du and d log|J| / du, as stdlib/transform.c */
static LLVMValueRef emit_constrain(Gen *g, const SampCtx *c, LLVMValueRef u, LLVMValueRef *lj,
                                   LLVMValueRef *dxdu, LLVMValueRef *dlj) {
  switch (c->con) {
  case CON_LOWER:
  case CON_UPPER: {
    LLVMValueRef e = intrinsic1(g, "llvm.exp.f64", u);
    *lj = u;
    *dlj = cf(g, 1);
    *dxdu = c->con == CON_LOWER ? e : LLVMBuildFNeg(g->B, e, "");
    return c->con == CON_LOWER ? LLVMBuildFAdd(g->B, cf(g, c->lower), e, "")
                               : LLVMBuildFSub(g->B, cf(g, c->upper), e, "");
  }
  case CON_LOWER_UPPER: {
    LLVMValueRef o = entry_alloca(g, LLVMArrayType2(g->f64, 3), "lub");
    LLVMValueRef a[4] = {u, cf(g, c->lower), cf(g, c->upper), o};
    *lj = call(g, g->t_lub, g->f_lub, a, 4);
    *dxdu = ld_f64(g, o, ci(g, 1));
    *dlj = ld_f64(g, o, ci(g, 2));
    return ld_f64(g, o, ci(g, 0));
  }
  default:
    *lj = cf(g, 0);
    *dlj = cf(g, 0);
    *dxdu = cf(g, 1);
    return u;
  }
}

static void samp_body(Gen *g, LLVMValueRef i, void *ud) {
  SampCtx *c = ud;
  const DistFamily *f = c->f;
  LLVMValueRef th = gep(g, g->f64, c->rev ? g->grad : g->theta, LLVMBuildAdd(g->B, ci(g, c->off), i, ""));
  LLVMValueRef u = c->rev ? ld_f64(g, g->theta, LLVMBuildAdd(g->B, ci(g, c->off), i, "")) : LLVMBuildLoad2(g->B, g->f64, th, "");
  LLVMValueRef lj, dxdu, dlj;
  LLVMValueRef x = emit_constrain(g, c, u, &lj, &dxdu, &dlj);
  LLVMValueRef p[DIST_MAX_PARAMS], dx = NULL, dp[DIST_MAX_PARAMS] = {0};
  for (int k = 0; k < f->nparams; k++) {
    p[k] = dop_at(g, &c->p[k], i);
    if (!c->rev && c->p[k].box) check(g, dom_ok(g, f->pdom[k], p[k]));
  }
  LLVMValueRef l = emit_lpdf1(g, f, x, p, c->rev, &dx, dp, NULL, NULL);
  if (!c->rev) {
    if (c->x) st_f64(g, c->x, i, x);
    else LLVMBuildStore(g->B, x, c->xs);
    LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, c->ljs, ""), lj, ""), c->ljs);
    if (c->trunc) {
      l = LLVMBuildFSub(g->B, l, cf(g, c->lz), "");
      LLVMValueRef out = LLVMBuildOr(g->B, LLVMBuildFCmp(g->B, LLVMRealOLT, x, cf(g, c->lower), ""),
                                     LLVMBuildFCmp(g->B, LLVMRealOGT, x, cf(g, c->upper), ""), "");
      LLVMBuildStore(g->B, LLVMBuildOr(g->B, LLVMBuildLoad2(g->B, g->i1, c->bad, ""), out, ""), c->bad);
    }
    LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, c->lp, ""), l, ""), c->lp);
    return;
  }
  /* d lp / du = (adj(x) + d lpdf/dx) dx/du + d log|J|/du */
  LLVMValueRef ax;
  if (c->x) {
    ax = ld_f64(g, c->xadj, i);
    st_f64(g, c->xadj, i, cf(g, 0));
  } else {
    ax = c->xsadj;
  }
  LLVMValueRef dens = LLVMBuildSelect(g->B, c->fin, dx, cf(g, 0), "");
  LLVMValueRef du = LLVMBuildFAdd(g->B, LLVMBuildFMul(g->B, LLVMBuildFAdd(g->B, ax, dens, ""), dxdu, ""), dlj, "");
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, th, ""), du, ""), th);
  for (int k = 0; k < f->nparams; k++) {
    DOp *o = &c->p[k];
    if (!o->act) continue;
    LLVMValueRef d = LLVMBuildSelect(g->B, c->fin, dp[k], cf(g, 0), "");
    if (o->box) add_f64(g, o->adj, i, d);
    else LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, o->gsum, ""), d, ""), o->gsum);
  }
}

static bool konst_f64(Gen *g, int r, double *v) {
  if (r < 0 || !g->konst[r]) return false;
  *v = val_as_real(g->kval[r]);
  return true;
}

bool jg_emit_sample_native(Gen *g, RevList *l, const IrInstr *ins) {
  const DistFamily *f = ins->dist.fam;
  const JitLatents *lat = &g->j->lat;
  int d = ins->dst, np = ins->dist.nparams;
  Type t = g->f->regtypes[d];
  ConKind con = (ConKind)ins->con.kind;
  if (g->k_static < 0 || g->depth > 0 || !lat->layout || !dens_family_ok(f) || f->discrete ||
      np != f->nparams || !(con == CON_NONE || con == CON_LOWER || con == CON_UPPER || con == CON_LOWER_UPPER) ||
      !((t.ndims == 0 && t.base == TY_REAL) || is_tensor(t)))
    return false;
  double lo = -INFINITY, hi = INFINITY;
  if ((ins->con.lower >= 0 && !konst_f64(g, ins->con.lower, &lo)) ||
      (ins->con.upper >= 0 && !konst_f64(g, ins->con.upper, &hi)))
    return false;
  int sizes[8], ns = ins->nsizes;
  if (ns > 2) return false;
  for (int k = 0; k < ns; k++) {
    double v;
    if (!konst_f64(g, ins->sizes[k], &v) || v < 0) return false;
    sizes[k] = (int)v;
  }
  size_t off, n;
  if (!lat->layout(lat->ud, g->k_static, ns, sizes, &off, &n)) return false;
  SampCtx c = {.f = f};
  bool pk = true;
  double pv[DIST_MAX_PARAMS];
  for (int k = 0; k < np; k++) pk = pk && konst_f64(g, ins->dist.params[k], &pv[k]);
  if (pk) { /* effective bounds, truncation and its normaliser, once */
    Value pvals[DIST_MAX_PARAMS];
    for (int k = 0; k < np; k++) pvals[k] = val_real(pv[k]);
    DistCall dc;
    char err[256];
    if (!dist_call_init(&dc, f, np, pvals, con, lo, hi, t, ns, sizes, err, sizeof err)) return false;
    c.con = dc.con;
    c.lower = dc.lower;
    c.upper = dc.upper;
    c.trunc = dc.truncated;
    c.lz = c.trunc ? dist_trunc_log_mass(f, pv, dc.lower, dc.upper) : 0;
  } else {
    if (f->support || isfinite(lo) || isfinite(hi)) return false; /* bounds that depend on params */
    c.con = CON_NONE;
    c.lower = -INFINITY;
    c.upper = INFINITY;
  }
  for (int k = 0; k < np; k++) {
    if (!dop_make(g, ins->dist.params[k], &c.p[k])) return false;
    if (c.p[k].box) check(g, LLVMBuildICmp(g->B, LLVMIntEQ, box_n(g, c.p[k].v), ci(g, (int64_t)n), ""));
    else if (!pk) check(g, dom_ok(g, f->pdom[k], c.p[k].v));
  }
  c.off = (int64_t)off;
  LLVMValueRef Z = NULL;
  if (is_tensor(t)) {
    int64_t rows = t.base == TY_ROWVEC ? 1 : sizes[0];
    int64_t cols = t.base == TY_MATRIX ? sizes[1] : t.base == TY_ROWVEC ? sizes[0] : 1;
    Z = jg_new_ten(g, ten_kind(t), ci(g, rows), ci(g, cols), true, FILL_NONE);
    c.x = box_data(g, Z);
  } else {
    c.xs = entry_alloca(g, g->f64, "x");
  }
  c.ljs = entry_alloca(g, g->f64, "ljs");
  c.lp = entry_alloca(g, g->f64, "lps");
  c.bad = entry_alloca(g, g->i1, "bad");
  LLVMBuildStore(g->B, cf(g, 0), c.ljs);
  LLVMBuildStore(g->B, cf(g, 0), c.lp);
  LLVMBuildStore(g->B, LLVMConstInt(g->i1, 0, 0), c.bad);
  emit_loop(g, ci(g, (int64_t)n), samp_body, &c);
  LLVMValueRef total = LLVMBuildLoad2(g->B, g->f64, c.lp, "");
  total = LLVMBuildSelect(g->B, LLVMBuildLoad2(g->B, g->i1, c.bad, ""), cf(g, -INFINITY), total, "");
  LLVMValueRef site = LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, c.ljs, ""), total, "");
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, g->lp, ""), site, ""), g->lp);
  if (Z) jg_wr_ten(g, d, Z, ci(g, t.base == TY_ROWVEC ? 1 : sizes[0]),
                ci(g, t.base == TY_MATRIX ? sizes[1] : t.base == TY_ROWVEC ? sizes[0] : 1));
  else wr(g, d, LLVMBuildLoad2(g->B, g->f64, c.xs, ""));
  /* the runtime counts latents too */
  LLVMBuildStore(g->B, LLVMConstInt(g->i32, (unsigned long long)(g->k_static + 1), 0),
                 field(g, g->cx, (int)offsetof(JitCtx, k)));
  g->k_static++;
  RevItem *it = rev_add(g, l, RV_SAMPLE, ins);
  SampCtx *keep = gc_alloc(sizeof(SampCtx));
  *keep = c;
  it->aux = keep;
  it->sub = (int)n;
  save(it, Z ? Z : cf(g, 0));
  save(it, total);
  for (int k = 0; k < np; k++) save(it, c.p[k].v);
  return true;
}

void jg_rev_sample(Gen *g, RevItem *it) {
  const IrInstr *ins = it->ins;
  SampCtx c = *(const SampCtx *)it->aux;
  c.rev = true;
  int np = ins->dist.nparams;
  c.fin = LLVMBuildFCmp(g->B, LLVMRealOLT, intrinsic1(g, "llvm.fabs.f64", it->save[1]), cf(g, INFINITY), "");
  if (c.x) {
    c.x = NULL; /* recomputed from theta */
    c.xadj = box_adjp(g, it->save[0]);
    c.x = c.xadj; /* non-NULL: a tensor */
  } else {
    c.xsadj = take_adj(g, ins->dst);
  }
  for (int k = 0; k < np; k++) {
    DOp *o = &c.p[k];
    o->v = it->save[2 + k];
    if (o->box) {
      Type t = g->f->regtypes[o->reg];
      o->data = is_tensor(t) ? box_data(g, o->v) : LLVMBuildLoad2(g->B, g->ptr, field(g, o->v, 32), "");
      if (o->act) o->adj = box_adjp(g, o->v);
    } else if (o->act) {
      o->gsum = entry_alloca(g, g->f64, "gs");
      LLVMBuildStore(g->B, cf(g, 0), o->gsum);
    }
  }
  emit_loop(g, ci(g, it->sub), samp_body, &c);
  for (int k = 0; k < np; k++)
    if (c.p[k].gsum) adj_add(g, c.p[k].reg, LLVMBuildLoad2(g->B, g->f64, c.p[k].gsum, ""));
}


/* ---- builtins of containers, from the scalar rules ----
 *
 * log(v), exp(v), inv_logit(v) ... of a vector, row vector or matrix (a
 * loop running the builtin's scalar rule, stdlib/scalar_rule.h, element by
 * element), the reductions log_sum_exp and sum of a tensor or a 1-D array
 * of reals, and softmax / log_softmax of a vector: each computed as the
 * interpreter computes it (builtins_math.c, builtins_linalg.c), in the same
 * order, so the values have its bits; the adjoints are those of its tape
 * rules (builtins_ad.c), softmax's in O(n) instead of the tape's n x n.
 * No tape, no runtime record. */

/* A sequence of reals read element by element: element i at p + i * stride
   bytes + off (a tensor's doubles: 8, 0; a 1-D array's Values: 16, 8). */
typedef struct Seq {
  LLVMValueRef p;
  int stride, off;
} Seq;

static LLVMValueRef seq_at(Gen *g, Seq s, LLVMValueRef i) {
  if (s.stride == 8) return ld_f64(g, s.p, i);
  LLVMValueRef o = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, i, ci(g, s.stride), ""), ci(g, s.off), "");
  return LLVMBuildLoad2(g->B, g->f64, gep(g, g->i8, s.p, o), "");
}

/* Operand register r as a sequence, with its number of elements: a tensor,
   a 1-D array of reals, or a data array (its numbers); false for others. */
static bool seq_of(Gen *g, int r, Seq *s, LLVMValueRef *n) {
  Type t = g->f->regtypes[r];
  if (g->rc[r] != RC_BOX) return false;
  bool arr = t.ndims == 1 && (t.base == TY_REAL || (g->isdata[r] && t.base == TY_INT));
  if (!is_tensor(t) && !arr) return false;
  LLVMValueRef box = rd(g, r);
  s->stride = 8, s->off = 0;
  if (g->isdata[r]) {
    s->p = data_numbers(g, r, false);
    *n = ci(g, (int64_t)val_numel(g->data[r]));
    if (s->p) return true;
  }
  if (is_tensor(t)) {
    LLVMValueRef rows, cols;
    shape_of(g, r, box, &rows, &cols, n);
    s->p = box_data(g, box);
    return true;
  }
  if (t.base != TY_REAL) return false;
  *n = box_n(g, box);
  s->p = LLVMBuildLoad2(g->B, g->ptr, field(g, LLVMBuildLoad2(g->B, g->ptr, field(g, box, 8), ""), 8), "");
  s->stride = 16, s->off = 8;
  return true;
}

static void snap_body(Gen *g, LLVMValueRef i, void *ud) {
  Seq *s = ud; /* s[0] from, s[1] to */
  st_f64(g, s[1].p, i, seq_at(g, s[0], i));
}

/* What the reverse part reads of operand a: the operand itself, or, when
   element stores may change it before the reverse part runs, a copy taken
   now (n doubles).  Its box is saved too, for the adjoints. */
static Seq seq_keep(Gen *g, int a, Seq s, LLVMValueRef n) {
  if (!g->stored[a] || g->isdata[a]) return s;
  LLVMValueRef cp = jg_new_ten(g, V_VEC, n, ci(g, 1), false, FILL_NONE);
  Seq t[2] = {s, {box_data(g, cp), 8, 0}};
  emit_loop(g, n, snap_body, t);
  return t[1];
}

enum { CB_MAP, CB_LSE, CB_SUM, CB_SOFTMAX, CB_LOG_SOFTMAX };

typedef struct CbCtx {
  const ScalarRule *sr;
  Seq x;
  LLVMValueRef z, n;         /* the result's data (map, softmax), the count */
  LLVMValueRef mx, nan, acc; /* allocas */
  LLVMValueRef ls, s;        /* softmax: log of the sum, the sum */
  LLVMValueRef xadj, zadj, gz, zv; /* reverse */
  int kind;
} CbCtx;

static void cb_map_fwd(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  LLVMValueRef v, ok = NULL;
  jg_emit_rule3(g, c->sr, seq_at(g, c->x, i), NULL, NULL, &v, NULL, NULL, NULL,
                c->sr->ok != DK_NONE ? &ok : NULL);
  if (ok) check(g, ok);
  st_f64(g, c->z, i, v);
}

static void cb_map_rev(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  LLVMValueRef gz = ld_f64(g, c->zadj, i), pa;
  st_f64(g, c->zadj, i, cf(g, 0));
  jg_emit_rule(g, c->sr, seq_at(g, c->x, i), NULL, NULL, &pa, NULL);
  add_f64(g, c->xadj, i, times(g, gz, pa));
}

/* the largest element, NaN noted apart (log_sum_exp) */
static void cb_max(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  LLVMValueRef x = seq_at(g, c->x, i), mx = LLVMBuildLoad2(g->B, g->f64, c->mx, "");
  LLVMValueRef isn = LLVMBuildFCmp(g->B, LLVMRealUNO, x, x, "");
  LLVMBuildStore(g->B, LLVMBuildOr(g->B, LLVMBuildLoad2(g->B, g->i1, c->nan, ""), isn, ""), c->nan);
  LLVMValueRef gt = LLVMBuildFCmp(g->B, LLVMRealOGT, x, mx, "");
  LLVMBuildStore(g->B, LLVMBuildSelect(g->B, gt, x, mx, ""), c->mx);
}

/* softmax's: if (x > mx || isnan(x)) mx = isnan(mx) ? mx : x */
static void cb_max_sm(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  LLVMValueRef x = seq_at(g, c->x, i), mx = LLVMBuildLoad2(g->B, g->f64, c->mx, "");
  LLVMValueRef take = LLVMBuildOr(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, x, mx, ""),
                                  LLVMBuildFCmp(g->B, LLVMRealUNO, x, x, ""), "");
  LLVMValueRef nv = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealUNO, mx, mx, ""), mx, x, "");
  LLVMBuildStore(g->B, LLVMBuildSelect(g->B, take, nv, mx, ""), c->mx);
}

/* acc += exp(x - mx), or acc += x (sum) */
static void cb_sum(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  LLVMValueRef x = seq_at(g, c->x, i);
  if (c->kind != CB_SUM)
    x = intrinsic1(g, "llvm.exp.f64", LLVMBuildFSub(g->B, x, LLVMBuildLoad2(g->B, g->f64, c->mx, ""), ""));
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, c->acc, ""), x, ""), c->acc);
}

/* xadj[i] += gz * (x == -inf ? 0 : exp(x - z)) (log_sum_exp), or += gz (sum) */
static void cb_red_rev(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  if (c->kind == CB_SUM) {
    add_f64(g, c->xadj, i, c->gz);
    return;
  }
  LLVMValueRef x = seq_at(g, c->x, i);
  LLVMValueRef e = intrinsic1(g, "llvm.exp.f64", LLVMBuildFSub(g->B, x, c->zv, ""));
  e = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOEQ, x, cf(g, -INFINITY), ""), cf(g, 0), e, "");
  add_f64(g, c->xadj, i, LLVMBuildFMul(g->B, c->gz, e, ""));
}

static void cb_sm_fwd(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  LLVMValueRef d = LLVMBuildFSub(g->B, seq_at(g, c->x, i), LLVMBuildLoad2(g->B, g->f64, c->mx, ""), "");
  LLVMValueRef v = c->kind == CB_SOFTMAX ? LLVMBuildFDiv(g->B, intrinsic1(g, "llvm.exp.f64", d), c->s, "")
                                         : LLVMBuildFSub(g->B, d, c->ls, "");
  st_f64(g, c->z, i, v);
}

/* the softmax's probabilities p_j: z_j (softmax), exp(z_j) (log_softmax) */
static LLVMValueRef cb_prob(Gen *g, CbCtx *c, LLVMValueRef i) {
  LLVMValueRef z = ld_f64(g, c->z, i);
  return c->kind == CB_SOFTMAX ? z : intrinsic1(g, "llvm.exp.f64", z);
}

/* acc = sum_j gz_j (log_softmax), sum_j gz_j z_j (softmax) */
static void cb_sm_dot(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  LLVMValueRef gz = ld_f64(g, c->zadj, i);
  if (c->kind == CB_SOFTMAX) gz = LLVMBuildFMul(g->B, gz, ld_f64(g, c->z, i), "");
  LLVMBuildStore(g->B, reassoc(LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, c->acc, ""), gz, "")), c->acc);
}

/* xadj_j += gz_j - p_j S (log_softmax), z_j (gz_j - S) (softmax) */
static void cb_sm_rev(Gen *g, LLVMValueRef i, void *ud) {
  CbCtx *c = ud;
  LLVMValueRef gz = ld_f64(g, c->zadj, i), S = LLVMBuildLoad2(g->B, g->f64, c->acc, "");
  st_f64(g, c->zadj, i, cf(g, 0));
  LLVMValueRef d = c->kind == CB_SOFTMAX
                       ? LLVMBuildFMul(g->B, ld_f64(g, c->z, i), LLVMBuildFSub(g->B, gz, S, ""), "")
                       : LLVMBuildFSub(g->B, gz, LLVMBuildFMul(g->B, cb_prob(g, c, i), S, ""), "");
  if (c->xadj) add_f64(g, c->xadj, i, d);
}

bool jg_emit_cbuiltin(Gen *g, RevList *l, const IrInstr *ins) {
  const Builtin *bi = ins->builtin;
  int d = ins->dst;
  if (ins->nargs != 1 || d < 0 || builtin_lookup(bi->name) != bi) return false;
  int a = ins->args[0];
  Type ta = g->f->regtypes[a], td = g->f->regtypes[d];
  const ScalarRule *sr = sr_builtin(bi->name);
  int kind;
  if (sr && sr->nargs == 1 && is_tensor(ta) && ty_eq(ta, td)) kind = CB_MAP;
  else if (!strcmp(bi->name, "log_sum_exp") && g->rc[d] == RC_REAL) kind = CB_LSE;
  else if (!strcmp(bi->name, "sum") && g->rc[d] == RC_REAL && (is_tensor(ta) || ta.base == TY_REAL))
    kind = CB_SUM;
  else if (!strcmp(bi->name, "softmax") && is_tensor(ta) && ta.base == TY_VECTOR) kind = CB_SOFTMAX;
  else if (!strcmp(bi->name, "log_softmax") && is_tensor(ta) && ta.base == TY_VECTOR) kind = CB_LOG_SOFTMAX;
  else return false;
  /* softmax's adjoint reads its result: element stores must not change it */
  if ((kind == CB_SOFTMAX || kind == CB_LOG_SOFTMAX) && g->stored[d]) return false;
  CbCtx c = {.sr = sr, .kind = kind};
  if (!seq_of(g, a, &c.x, &c.n)) return false;
  bool act = active(g, d) && active(g, a) && !g->fwd;
  LLVMValueRef Z = NULL, rows = NULL, cols = NULL;
  if (kind == CB_MAP || kind == CB_SOFTMAX || kind == CB_LOG_SOFTMAX) {
    LLVMValueRef n;
    shape_of(g, a, rd(g, a), &rows, &cols, &n);
    Z = jg_new_ten(g, ten_kind(td), rows, cols, active(g, d), FILL_NONE);
    c.z = box_data(g, Z);
  }
  LLVMValueRef zv = NULL;
  if (kind == CB_MAP) {
    emit_loop(g, c.n, cb_map_fwd, &c);
  } else {
    c.acc = entry_alloca(g, g->f64, "acc");
    LLVMBuildStore(g->B, cf(g, 0), c.acc);
    if (kind != CB_SUM) { /* an empty container is the interpreter's error */
      check(g, LLVMBuildICmp(g->B, LLVMIntSGT, c.n, ci(g, 0), ""));
      c.mx = entry_alloca(g, g->f64, "mx");
      c.nan = entry_alloca(g, g->i1, "nan");
      LLVMBuildStore(g->B, cf(g, -INFINITY), c.mx);
      LLVMBuildStore(g->B, LLVMConstInt(g->i1, 0, 0), c.nan);
      emit_loop(g, c.n, kind == CB_LSE ? cb_max : cb_max_sm, &c);
    }
    if (kind == CB_LSE) { /* NaN if any is; the max if it is infinite; else the sum */
      LLVMValueRef mx = LLVMBuildLoad2(g->B, g->f64, c.mx, "");
      LLVMValueRef isinf = LLVMBuildFCmp(g->B, LLVMRealOEQ, vintr(g, "fabs", mx), cf(g, INFINITY), "");
      LLVMValueRef nan = LLVMBuildLoad2(g->B, g->i1, c.nan, "");
      LLVMValueRef special = LLVMBuildSelect(g->B, nan, cf(g, NAN), mx, "");
      LLVMBasicBlockRef sb = new_bb(g, "lse"), jb = new_bb(g, "lsed");
      LLVMBasicBlockRef from = LLVMGetInsertBlock(g->B);
      LLVMBuildCondBr(g->B, LLVMBuildOr(g->B, nan, isinf, ""), jb, sb);
      LLVMPositionBuilderAtEnd(g->B, sb);
      emit_loop(g, c.n, cb_sum, &c);
      LLVMValueRef r = LLVMBuildFAdd(g->B, mx, intrinsic1(g, "llvm.log.f64", LLVMBuildLoad2(g->B, g->f64, c.acc, "")), "");
      LLVMBasicBlockRef send = LLVMGetInsertBlock(g->B);
      LLVMBuildBr(g->B, jb);
      LLVMPositionBuilderAtEnd(g->B, jb);
      zv = LLVMBuildPhi(g->B, g->f64, "lse");
      LLVMValueRef vals[2] = {special, r};
      LLVMBasicBlockRef bbs[2] = {from, send};
      LLVMAddIncoming(zv, vals, bbs, 2);
    } else if (kind == CB_SUM) {
      emit_loop(g, c.n, cb_sum, &c);
      zv = LLVMBuildLoad2(g->B, g->f64, c.acc, "");
    } else {
      emit_loop(g, c.n, cb_sum, &c);
      c.s = LLVMBuildLoad2(g->B, g->f64, c.acc, "");
      c.ls = intrinsic1(g, "llvm.log.f64", c.s);
      emit_loop(g, c.n, cb_sm_fwd, &c);
    }
  }
  if (Z) jg_wr_ten(g, d, Z, rows, cols);
  else wr(g, d, zv);
  if (!active(g, d)) return true;
  RevItem *it = rev_add(g, l, RV_CBUILTIN, ins);
  it->sub = kind;
  it->aux = sr;
  it->dst = d;
  if (!act) return true; /* the result's adjoint is dropped (a constant result) */
  Seq keep = kind == CB_SOFTMAX || kind == CB_LOG_SOFTMAX || kind == CB_SUM ? c.x : seq_keep(g, a, c.x, c.n);
  it->opreg = gc_alloc_atomic(sizeof(int) * 2);
  it->opreg[0] = keep.stride, it->opreg[1] = keep.off;
  save(it, rd(g, a)); /* 0: the operand's box (its adjoints) */
  save(it, keep.p);   /* 1: its numbers as the reverse part reads them */
  save(it, c.n);      /* 2 */
  save(it, Z ? Z : zv); /* 3: the result */
  push_saved(g, it);
  return true;
}

void jg_rev_cbuiltin(Gen *g, RevItem *it) {
  CbCtx c = {.sr = it->aux, .kind = it->sub};
  if (it->nsave == 0) { /* nothing flows back: the result's adjoint dies */
    if (g->rc[it->dst] == RC_REAL) take_adj(g, it->dst);
    return;
  }
  c.x = (Seq){it->save[1], it->opreg[0], it->opreg[1]};
  c.n = it->save[2];
  c.xadj = box_adjp(g, it->save[0]);
  switch (c.kind) {
  case CB_MAP:
    c.zadj = box_adjp(g, it->save[3]);
    emit_loop(g, c.n, cb_map_rev, &c);
    break;
  case CB_LSE:
  case CB_SUM:
    c.gz = take_adj(g, it->dst);
    c.zv = it->save[3];
    emit_loop(g, c.n, cb_red_rev, &c);
    break;
  default:
    c.zadj = box_adjp(g, it->save[3]);
    c.z = box_data(g, it->save[3]);
    c.acc = entry_alloca(g, g->f64, "dot");
    LLVMBuildStore(g->B, cf(g, 0), c.acc);
    emit_loop(g, c.n, cb_sm_dot, &c);
    emit_loop(g, c.n, cb_sm_rev, &c);
    break;
  }
}


/* ---- draws of scalar families ----
 *
 * NAME_rng(params) of scalars in the draw function: the checks of
 * dist_rng_value (parameter domains, a support that is not empty; for a
 * discrete family, a draw that is an exact int inside the support), then the
 * family's own sampler (rng1) on the draw's random-number stream (JitCtx.rng,
 * the one the runtime's call would use): the same numbers, in the same
 * order, as the interpreter's run.  A failed check fails the compiled draw,
 * and the interpreter, re-run, reports it. */
/* One draw of f at the parameters p (doubles): the checks, then rng1; pa is
   the caller's array of DIST_MAX_PARAMS doubles the sampler reads.  Returns
   the draw as a double (a discrete family's is an exact int). */
static LLVMValueRef rng_one(Gen *g, const DistFamily *f, LLVMValueRef *p, LLVMValueRef pa) {
  for (int k = 0; k < f->nparams; k++) check(g, dom_ok(g, f->pdom[k], p[k]));
  support_ok(g, f, p);
  for (int k = 0; k < f->nparams; k++) st_f64(g, pa, ci(g, k), p[k]);
  LLVMTypeRef ps[2] = {g->ptr, g->ptr};
  LLVMValueRef a[2] = {field(g, g->cx, (int)offsetof(JitCtx, rng)), pa};
  LLVMValueRef x = call(g, LLVMFunctionType(g->f64, ps, 2, 0), fn_const(g, (const void *)f->rng1), a, 2);
  if (f->discrete) { /* dist_draw1's check */
    LLVMValueRef ok = LLVMBuildFCmp(g->B, LLVMRealOLE, vintr(g, "fabs", x), cf(g, 9007199254740992.0), "");
    if (f->support) {
      LLVMValueRef lo = entry_alloca(g, g->f64, "lo"), hi = entry_alloca(g, g->f64, "hi");
      LLVMTypeRef s3[3] = {g->ptr, g->ptr, g->ptr};
      LLVMValueRef b[3] = {pa, lo, hi};
      call(g, LLVMFunctionType(LLVMVoidTypeInContext(g->C), s3, 3, 0), fn_const(g, (const void *)f->support), b, 3);
      ok = LLVMBuildAnd(g->B, ok, LLVMBuildFCmp(g->B, LLVMRealOGE, x, LLVMBuildLoad2(g->B, g->f64, lo, ""), ""), "");
      ok = LLVMBuildAnd(g->B, ok, LLVMBuildFCmp(g->B, LLVMRealOLE, x, LLVMBuildLoad2(g->B, g->f64, hi, ""), ""), "");
    }
    check(g, ok);
  }
  return x;
}

/* ---- draws of scalar families with containers among the parameters ----
 *
 * normal_rng(theta, sigma) of vectors: one draw per element, in element
 * order, each with the scalar draw's checks (dist_call_rng's loop over
 * dist_draw1), into a new 1-D array (real[] or int[], what the checker
 * types it): the interpreter's numbers from the same stream.  Operands are
 * scalars or 1-D containers of numbers (seq_of); the containers' sizes must
 * agree (else the compiled draw fails and the interpreter, re-run, says
 * which).  Other operands go through the runtime. */
typedef struct RngCtx {
  const DistFamily *f;
  bool vec[DIST_MAX_PARAMS];
  Seq s[DIST_MAX_PARAMS];
  LLVMValueRef sp[DIST_MAX_PARAMS]; /* the scalar operands */
  LLVMValueRef pa, out;             /* the sampler's parameters; the result's Values */
} RngCtx;

static void rng_body(Gen *g, LLVMValueRef i, void *ud) {
  RngCtx *c = ud;
  LLVMValueRef p[DIST_MAX_PARAMS];
  for (int k = 0; k < c->f->nparams; k++) p[k] = c->vec[k] ? seq_at(g, c->s[k], i) : c->sp[k];
  LLVMValueRef x = rng_one(g, c->f, p, c->pa);
  /* Value e[i]: 16 bytes, the number at offset 8 (its kind was set) */
  LLVMValueRef o = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, i, ci(g, (int64_t)sizeof(Value)), ""),
                                ci(g, (int64_t)offsetof(Value, r)), "");
  LLVMValueRef at = gep(g, g->i8, c->out, o);
  LLVMBuildStore(g->B, c->f->discrete ? LLVMBuildFPToSI(g->B, x, g->i64, "") : x, at);
}

/* A 1-D container of numbers seq_of can read (not a matrix, nor an array of
   containers). */
static bool rng_seq_type(Type t) {
  if (t.ndims == 0) return t.base == TY_VECTOR || t.base == TY_ROWVEC;
  return t.ndims == 1 && (t.base == TY_REAL || t.base == TY_INT);
}

static bool rng_vector(Gen *g, const IrInstr *ins, const DistFamily *f) {
  int d = ins->dst;
  Type td = g->f->regtypes[d];
  if (g->rc[d] != RC_BOX || active(g, d) || td.ndims != 1 ||
      td.base != (f->discrete ? TY_INT : TY_REAL))
    return false;
  for (int k = 0; k < ins->nargs; k++) {
    uint8_t rc = g->rc[ins->args[k]];
    if (rc == RC_BOX ? !rng_seq_type(g->f->regtypes[ins->args[k]])
                     : rc != RC_REAL && rc != RC_INT && rc != RC_BOOL)
      return false;
  }
  /* seq_of emits loads: every operand is read (or refused) before any code
     that must not be left half-built; a refusal here emits nothing else */
  RngCtx c = {.f = f};
  LLVMValueRef n = NULL, nk[DIST_MAX_PARAMS];
  for (int k = 0; k < f->nparams; k++) {
    int r = ins->args[k];
    c.vec[k] = g->rc[r] == RC_BOX;
    if (c.vec[k] && !seq_of(g, r, &c.s[k], &nk[k])) return false;
  }
  for (int k = 0; k < f->nparams; k++) {
    if (!c.vec[k]) {
      c.sp[k] = as_f64(g, ins->args[k]);
      continue;
    }
    if (!n) n = nk[k];
    else check(g, LLVMBuildICmp(g->B, LLVMIntEQ, nk[k], n, ""));
  }
  if (!n) return false; /* no container: the scalar path's */
  LLVMTypeRef ps[3] = {g->ptr, g->i64, g->i64};
  LLVMValueRef a[3] = {g->cx, n, ci(g, f->discrete ? V_INT : V_REAL)};
  LLVMValueRef box = call(g, LLVMFunctionType(g->ptr, ps, 3, 0), fn_const(g, (const void *)jit_rt_array), a, 3);
  LLVMValueRef arr = LLVMBuildLoad2(g->B, g->ptr, field(g, box, (int)offsetof(JitBox, v.a)), "");
  c.out = LLVMBuildLoad2(g->B, g->ptr, field(g, arr, (int)offsetof(ValArr, e)), "");
  c.pa = entry_alloca(g, LLVMArrayType2(g->f64, DIST_MAX_PARAMS), "p");
  emit_loop(g, n, rng_body, &c);
  wr(g, d, box);
  g->krows[d] = g->kcols[d] = -1;
  return true;
}

bool jg_emit_rng_native(Gen *g, RevList *l, const IrInstr *ins) {
  const DistFamily *f = jit_rt_rng_family(ins->builtin);
  int d = ins->dst;
  if (!f || !g->draw || !f->rng1 || f->rng1_ctx || f->improper || !dist_scalar_family(f) ||
      f->nparams > DIST_MAX_PARAMS || ins->nargs != f->nparams || d < 0)
    return false;
  if (g->rc[d] == RC_BOX) return rng_vector(g, ins, f);
  if (g->rc[d] != (f->discrete ? RC_INT : RC_REAL)) return false;
  for (int k = 0; k < ins->nargs; k++) {
    uint8_t rc = g->rc[ins->args[k]];
    if (rc != RC_REAL && rc != RC_INT && rc != RC_BOOL) return false;
  }
  LLVMValueRef p[DIST_MAX_PARAMS];
  for (int k = 0; k < f->nparams; k++) p[k] = as_f64(g, ins->args[k]);
  LLVMValueRef pa = entry_alloca(g, LLVMArrayType2(g->f64, DIST_MAX_PARAMS), "p");
  LLVMValueRef x = rng_one(g, f, p, pa);
  wr(g, d, f->discrete ? LLVMBuildFPToSI(g->B, x, g->i64, "") : x);
  if (active(g, d)) rev_add(g, l, RV_SCALAR, ins)->dst = d; /* no operand: its adjoint dies */
  return true;
}

#endif
