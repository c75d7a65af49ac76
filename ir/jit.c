/* jit.c — lowering the model block to LLVM IR, with its adjoint, and running
 * it through ORC LLJIT.
 *
 * One function per program:  i32 ppl_ld(JitCtx *cx, double *theta, double *grad,
 * double *lp).  Its forward part is the model block: registers become stack
 * slots that LLVM promotes to machine registers, structured control flow
 * becomes basic blocks, scalar arithmetic and element access become
 * instructions.  Its reverse part is generated from the same IR walked
 * backwards (source-transformation AD, "store all"): each scalar register
 * that depends on theta has an adjoint slot, each instruction's adjoint rule
 * reads the partial derivatives its forward part computed, and loops and
 * branches replay backwards from their trip counts and conditions.  Values
 * computed inside control flow reach the reverse part through a stack
 * (JitCtx.stk); values computed at top level are used directly, since they
 * dominate everything after them.
 *
 * The container arithmetic and scalar-family densities it recognises are
 * lowered to loops by ir/jit_native.c (shared state in ir/jit_gen.h).
 * Everything else (other builtins and distributions, structured latents,
 * slicing) is a call into ir/jit_rt.c, whose forward call returns a record
 * that the reverse part hands back.
 */
#include "jit_module.h"

#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- runtime call sites ---- */

static JitSite *site_new(Gen *g, const IrInstr *ins, int nops, int *site_index) {
  Jit *j = g->j;
  j->sites = gc_grow(j->sites, g->nsites, &g->capsites, sizeof(JitSite));
  *site_index = g->nsites;
  JitSite *s = &j->sites[g->nsites++];
  memset(s, 0, sizeof *s);
  s->ins = ins;
  s->fn = g->f;
  s->nargs = nops;
  s->akind = gc_alloc_atomic((size_t)(nops + 1));
  if (nops > g->maxops) g->maxops = nops;
  return s;
}

static uint8_t arg_kind(Gen *g, int r) {
  switch (g->rc[r]) {
  case RC_INT: return JA_INT;
  case RC_BOOL: return JA_BOOL;
  case RC_REAL: return active(g, r) ? JA_REAL_ACT : JA_REAL;
  case RC_BOX: return active(g, r) ? JA_BOX_ACT : JA_BOX;
  default: return JA_NONE;
  }
}

/* A runtime call over the operand registers ops[0..n), result into dst. */
static void emit_site(Gen *g, RevList *l, const IrInstr *ins, const int *ops, int n, int dst,
                      bool adds_lp) {
  for (int k = 0; k < n; k++)
    if (g->rc[ops[k]] == RC_BAD || g->rc[ops[k]] == RC_NONE) {
      refuse(g, ins, gc_printf("a %s value is not compiled",
                               ty_name(g->f->regtypes[ops[k]])));
      return;
    }
  if (dst >= 0 && g->rc[dst] == RC_BAD) {
    refuse(g, ins, gc_printf("a %s value is not compiled", ty_name(g->f->regtypes[dst])));
    return;
  }
  int si;
  JitSite *s = site_new(g, ins, n, &si);
  for (int k = 0; k < n; k++) s->akind[k] = arg_kind(g, ops[k]);
  if (ins->op == IR_BUILTIN) s->lpdf = jit_rt_lpdf_family(ins->builtin);
  s->rkind = dst >= 0 ? arg_kind(g, dst) : JA_NONE;
  RevItem *it = rev_add(g, l, RV_SITE, ins);
  it->site = si;
  it->dst = dst;
  it->nops = n;
  it->opreg = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  if (n) memcpy(it->opreg, ops, sizeof(int) * (size_t)n);
  LLVMTypeRef argt = LLVMArrayType2(g->i8, 24);
  for (int k = 0; k < n; k++) {
    LLVMValueRef idx[2] = {ci(g, 0), ci(g, k)};
    LLVMValueRef a = LLVMBuildGEP2(g->B, LLVMArrayType2(argt, 64), g->argbuf, idx, 2, "");
    switch (g->rc[ops[k]]) {
    case RC_REAL: LLVMBuildStore(g->B, rd(g, ops[k]), a); break;
    case RC_INT: LLVMBuildStore(g->B, rd(g, ops[k]), field(g, a, 8)); break;
    case RC_BOOL: LLVMBuildStore(g->B, LLVMBuildZExt(g->B, rd(g, ops[k]), g->i64, ""), field(g, a, 8)); break;
    default: LLVMBuildStore(g->B, rd(g, ops[k]), field(g, a, 16)); break;
    }
  }
  /* the site's address is a constant of the code; the table is rooted by the Jit */
  LLVMValueRef sitep = LLVMConstInt(g->i64, (unsigned long long)si, 0);
  LLVMValueRef a[4] = {g->cx, sitep, g->argbuf, g->resbuf};
  LLVMValueRef rec = call(g, g->t_op, g->f_op, a, 4);
  check(g, LLVMBuildICmp(g->B, LLVMIntNE, LLVMBuildPtrToInt(g->B, rec, g->i64, ""), ci(g, 0), ""));
  if (dst >= 0) {
    g->krows[dst] = g->kcols[dst] = -1;
    switch (g->rc[dst]) {
    case RC_REAL: wr(g, dst, LLVMBuildLoad2(g->B, g->f64, g->resbuf, "")); break;
    case RC_INT: wr(g, dst, LLVMBuildLoad2(g->B, g->i64, field(g, g->resbuf, 8), "")); break;
    case RC_BOOL:
      wr(g, dst, LLVMBuildTrunc(g->B, LLVMBuildLoad2(g->B, g->i64, field(g, g->resbuf, 8), ""), g->i1, ""));
      break;
    default: wr(g, dst, LLVMBuildLoad2(g->B, g->ptr, field(g, g->resbuf, 16), "")); break;
    }
  }
  if (adds_lp) {
    LLVMValueRef lpv = LLVMBuildLoad2(g->B, g->f64, field(g, g->resbuf, 24), "");
    LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, g->lp, ""), lpv, ""), g->lp);
  }
  save(it, rec);
  push_saved(g, it);
}

/* "model.ppl:3:19: WHAT": a nested latent a draw does not record. */
static const char *unrecorded(const Gen *g, const IrInstr *ins, const char *what) {
  return gc_printf("%s:%d:%d: %s", g->p->file ? g->p->file : "model", ins->pos.line, ins->pos.col,
                   what);
}

/* ---- forward lowering of one instruction ---- */

static void emit_block(Gen *g, const IrBlock *b, RevList *l);

static RevItem *scalar_item(Gen *g, RevList *l, const IrInstr *ins) {
  RevItem *it = rev_add(g, l, RV_SCALAR, ins);
  it->dst = ins->dst;
  return it;
}

static void part(RevItem *it, int reg, int psave, double pconst) {
  it->preg[it->np] = reg;
  it->psave[it->np] = psave;
  it->pconst[it->np] = pconst;
  it->np++;
}

/* A real operation whose value and partials are a scalar rule
   (stdlib/scalar_rule.h), on operand registers r[0..nargs) with values
   x[]: the value into ins->dst; for the adjoint, a partial that is a
   constant is kept as one, the others are saved.  A rule's ok, where it has
   one, is checked: the interpreter, re-run, reports the error. */
static void emit_rule_n(Gen *g, RevList *l, const IrInstr *ins, const ScalarRule *sr,
                        const int *r, const LLVMValueRef *x) {
  int d = ins->dst, n = sr->nargs;
  bool act[3] = {false, false, false}, any = false;
  for (int k = 0; k < n; k++) any |= act[k] = active(g, r[k]);
  bool want = active(g, d) && any;
  /* an active dst overwritten by a constant gets an item too: its adjoint dies */
  RevItem *it = active(g, d) ? scalar_item(g, l, ins) : NULL;
  LLVMValueRef z, ok = NULL, p[3] = {NULL, NULL, NULL};
  double c[3] = {0, 0, 0};
  bool kc[3];
  for (int k = 0; k < n; k++) kc[k] = sr_partial_const(sr, k, &c[k]);
  jg_emit_rule3(g, sr, x[0], n >= 2 ? x[1] : NULL, n == 3 ? x[2] : NULL, &z,
                want && act[0] && !kc[0] ? &p[0] : NULL, want && act[1] && !kc[1] ? &p[1] : NULL,
                want && act[2] && !kc[2] ? &p[2] : NULL, sr->ok != DK_NONE ? &ok : NULL);
  if (ok) check(g, ok);
  for (int k = 0; k < n; k++)
    if (want && act[k]) part(it, r[k], kc[k] ? -1 : save(it, p[k]), c[k]);
  wr_conv(g, d, z, RC_REAL);
  if (it) push_saved(g, it);
}

static void emit_rule_scalar(Gen *g, RevList *l, const IrInstr *ins, const ScalarRule *sr, int a,
                             int b, LLVMValueRef x, LLVMValueRef y) {
  int r[3] = {a, b, -1};
  LLVMValueRef v[3] = {x, y, NULL};
  emit_rule_n(g, l, ins, sr, r, v);
}

/* An operator of two integers (i64) as the interpreter's int_binary computes
   it: a comparison as an i1; + - * with their overflow checks, / and % with
   the division checks. NULL when op has no integer form here. */
LLVMValueRef jg_int_binary(Gen *g, int op, LLVMValueRef x, LLVMValueRef y) {
  if (op == OP_EQ || op == OP_NE || op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE) {
    LLVMIntPredicate p = op == OP_EQ ? LLVMIntEQ : op == OP_NE ? LLVMIntNE : op == OP_LT ? LLVMIntSLT
                       : op == OP_LE ? LLVMIntSLE : op == OP_GT ? LLVMIntSGT : LLVMIntSGE;
    return LLVMBuildICmp(g->B, p, x, y, "");
  }
  const char *ov = op == OP_ADD ? "llvm.sadd.with.overflow.i64"
                 : op == OP_SUB ? "llvm.ssub.with.overflow.i64"
                 : op == OP_MUL || op == OP_EMUL ? "llvm.smul.with.overflow.i64" : NULL;
  if (ov) {
    LLVMTypeRef st[2] = {g->i64, g->i1};
    LLVMTypeRef rt = LLVMStructTypeInContext(g->C, st, 2, 0);
    LLVMTypeRef ps[2] = {g->i64, g->i64};
    LLVMTypeRef ft = LLVMFunctionType(rt, ps, 2, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->M, ov);
    if (!f) f = LLVMAddFunction(g->M, ov, ft);
    LLVMValueRef av[2] = {x, y};
    LLVMValueRef r = call(g, ft, f, av, 2);
    check(g, LLVMBuildNot(g->B, LLVMBuildExtractValue(g->B, r, 1, ""), ""));
    return LLVMBuildExtractValue(g->B, r, 0, "");
  }
  if (op != OP_DIV && op != OP_EDIV && op != OP_IDIV && op != OP_MOD) return NULL;
  check(g, LLVMBuildICmp(g->B, LLVMIntNE, y, ci(g, 0), ""));
  LLVMValueRef m1 = LLVMBuildICmp(g->B, LLVMIntEQ, y, ci(g, -1), "");
  if (op == OP_MOD) { /* x % -1 is 0 (and x % y never overflows then) */
    LLVMValueRef ysafe = LLVMBuildSelect(g->B, m1, ci(g, 1), y, "");
    return LLVMBuildSelect(g->B, m1, ci(g, 0), LLVMBuildSRem(g->B, x, ysafe, ""), "");
  }
  LLVMValueRef bad = LLVMBuildAnd(g->B, m1, LLVMBuildICmp(g->B, LLVMIntEQ, x, ci(g, INT64_MIN), ""), "");
  check(g, LLVMBuildNot(g->B, bad, ""));
  return LLVMBuildSDiv(g->B, x, y, "");
}

static void emit_binary_scalar(Gen *g, RevList *l, const IrInstr *ins) {
  int a = ins->args[0], b = ins->args[1], d = ins->dst;
  uint8_t ca = g->rc[a], cb = g->rc[b];
  int op = ins->sub;
  bool ints = ca != RC_REAL && cb != RC_REAL;
  bool cmp = op == OP_EQ || op == OP_NE || op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE;
  if (ints && op != OP_POW) {
    LLVMValueRef z = jg_int_binary(g, op, as_i64(g, a), as_i64(g, b));
    if (!z) {
      refuse(g, ins, gc_printf("operator '%s' on integers is not compiled", ir_op_name((IrOp)op)));
      return;
    }
    wr_conv(g, d, z, cmp ? RC_BOOL : RC_INT);
    return;
  }
  LLVMValueRef x = as_f64(g, a), y = as_f64(g, b);
  if (cmp) {
    LLVMRealPredicate p = op == OP_EQ ? LLVMRealOEQ : op == OP_NE ? LLVMRealUNE : op == OP_LT ? LLVMRealOLT
                        : op == OP_LE ? LLVMRealOLE : op == OP_GT ? LLVMRealOGT : LLVMRealOGE;
    wr_conv(g, d, LLVMBuildFCmp(g->B, p, x, y, ""), RC_BOOL);
    return;
  }
  const ScalarRule *sr = op_scalar_rule(op);
  if (!sr) {
    refuse(g, ins, gc_printf("operator '%s' on reals is not compiled", ir_op_name((IrOp)op)));
    return;
  }
  emit_rule_scalar(g, l, ins, sr, a, b, x, y);
}

/* A builtin of scalars whose value and partials are a scalar rule (exp,
   log, sqrt, pow ...) is lowered inline, from the description the
   interpreter's evaluator and tape rule are expanded from; on containers,
   and for a host's function of the same name, it stays a runtime call. */
static bool emit_builtin_rule(Gen *g, RevList *l, const IrInstr *ins) {
  const Builtin *bi = ins->builtin;
  const ScalarRule *sr = sr_builtin(bi->name);
  if (!sr || ins->nargs != sr->nargs || g->rc[ins->dst] != RC_REAL || builtin_lookup(bi->name) != bi)
    return false;
  for (int k = 0; k < ins->nargs; k++)
    if (g->rc[ins->args[k]] != RC_REAL && g->rc[ins->args[k]] != RC_INT) return false;
  LLVMValueRef x[3];
  for (int k = 0; k < ins->nargs; k++) x[k] = as_f64(g, ins->args[k]);
  emit_rule_n(g, l, ins, sr, ins->args, x);
  return true;
}

static void emit_unary_scalar(Gen *g, RevList *l, const IrInstr *ins) {
  int a = ins->args[0], d = ins->dst;
  uint8_t ca = g->rc[a];
  switch (ins->sub) {
  case OP_NOT: wr_conv(g, d, LLVMBuildNot(g->B, truthy(g, a), ""), RC_BOOL); return;
  case OP_PLUS:
  case OP_NEG: {
    bool neg = ins->sub == OP_NEG;
    if (ca == RC_REAL && neg) {
      emit_rule_scalar(g, l, ins, op_scalar_rule(OP_NEG), a, -1, rd(g, a), NULL);
    } else if (ca == RC_REAL) {
      LLVMValueRef x = rd(g, a);
      if (active(g, d)) {
        RevItem *it = scalar_item(g, l, ins);
        if (active(g, a)) part(it, a, -1, 1);
      }
      wr_conv(g, d, x, RC_REAL);
    } else {
      LLVMValueRef x = as_i64(g, a);
      if (active(g, d)) scalar_item(g, l, ins);
      wr_conv(g, d, neg ? LLVMBuildSub(g->B, ci(g, 0), x, "") : x, RC_INT);
    }
    return;
  }
  default: refuse(g, ins, "this unary operator is not compiled");
  }
}

/* Address of element i (0-based, i64) of box register r's reals, and of its
   adjoint; vectors/row vectors/matrices (doubles) and arrays of scalars
   (Values: the payload at offset 8). */
static LLVMValueRef elem_ptr(Gen *g, LLVMValueRef box, Type t, LLVMValueRef i) {
  LLVMValueRef inner = LLVMBuildLoad2(g->B, g->ptr, field(g, box, 8), "");
  if (t.ndims == 0) {
    LLVMValueRef d = LLVMBuildLoad2(g->B, g->ptr, field(g, inner, 8), "");
    return gep(g, g->f64, d, i);
  }
  LLVMValueRef e = LLVMBuildLoad2(g->B, g->ptr, field(g, inner, 8), "");
  LLVMValueRef off = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, i, ci(g, 16), ""), ci(g, 8), "");
  return gep(g, g->i8, e, off);
}

/* 0-based flat position of box[idx...] for single indexes, range-checked;
   NULL if this indexing is not one the JIT lowers itself. */
static LLVMValueRef flat_index(Gen *g, const IrInstr *ins, int boxreg, LLVMValueRef box) {
  Type t = g->f->regtypes[boxreg];
  for (int k = 0; k < ins->nidx; k++)
    if (ins->idx[k].kind != IX_SINGLE || g->rc[ins->idx[k].lo] != RC_INT) return NULL;
  bool vec = t.ndims == 0 && (t.base == TY_VECTOR || t.base == TY_ROWVEC);
  bool arr1 = t.ndims == 1 && (t.base == TY_REAL || t.base == TY_INT);
  bool mat = t.ndims == 0 && t.base == TY_MATRIX;
  if (!((vec || arr1) && ins->nidx == 1) && !(mat && ins->nidx == 2)) return NULL;
  LLVMValueRef n = LLVMBuildLoad2(g->B, g->i64, field(g, box, 24), "n");
  if (!mat) {
    LLVMValueRef i = rd(g, ins->idx[0].lo);
    check(g, LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, i, ci(g, 1), ""),
                          LLVMBuildICmp(g->B, LLVMIntSLE, i, n, ""), ""));
    return LLVMBuildSub(g->B, i, ci(g, 1), "");
  }
  LLVMValueRef ten = LLVMBuildLoad2(g->B, g->ptr, field(g, box, 8), "");
  LLVMValueRef rows = LLVMBuildSExt(g->B, LLVMBuildLoad2(g->B, g->i32, ten, ""), g->i64, "");
  LLVMValueRef cols = LLVMBuildSExt(g->B, LLVMBuildLoad2(g->B, g->i32, field(g, ten, 4), ""), g->i64, "");
  LLVMValueRef i = rd(g, ins->idx[0].lo), j = rd(g, ins->idx[1].lo);
  LLVMValueRef ok = LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, i, ci(g, 1), ""),
                                 LLVMBuildICmp(g->B, LLVMIntSLE, i, rows, ""), "");
  ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntSGE, j, ci(g, 1), ""), "");
  ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntSLE, j, cols, ""), "");
  check(g, ok);
  return LLVMBuildAdd(g->B, LLVMBuildMul(g->B, LLVMBuildSub(g->B, j, ci(g, 1), ""), rows, ""),
                      LLVMBuildSub(g->B, i, ci(g, 1), ""), "");
}

/* box[i1, ..., ik] down to one scalar of an array of arrays of reals or
   ints (real g[N, 2]), or of an array of vectors or matrices (vector[2]
   g[N]), all single indexes: the scalar's address, and its flat position
   (val_flatten order: rows of the arrays, then the tensor column-major) in
   *flat for the adjoint.  Walking the levels reads one element per level, so
   an element store or read is O(1), not a runtime call over the whole value.
   Each index is range-checked; the position assumes every element of a
   level has the size of the one walked through (declared arrays do:
   assignments keep shapes), which the product of the sizes equal to the
   box's count checks.  NULL if this is not such an indexing. */
/* The walk down the array levels of box[i1, ..., im] (m <= the array's
   dimensions, single indexes): the element's Value, its position among the
   elements of its level (rows first) in *pos, and the product of the sizes
   walked through in *count. */
static LLVMValueRef nested_walk(Gen *g, const IrInstr *ins, int m, LLVMValueRef box,
                                LLVMValueRef *pos, LLVMValueRef *count) {
  LLVMValueRef arr = LLVMBuildLoad2(g->B, g->ptr, field(g, box, 8), ""); /* ValArr * */
  LLVMValueRef elem = NULL;
  *pos = ci(g, 0);
  *count = ci(g, 1);
  for (int l = 0; l < m; l++) {
    LLVMValueRef n = LLVMBuildSExt(g->B, LLVMBuildLoad2(g->B, g->i32, arr, ""), g->i64, "");
    LLVMValueRef i = rd(g, ins->idx[l].lo);
    check(g, LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, i, ci(g, 1), ""),
                          LLVMBuildICmp(g->B, LLVMIntSLE, i, n, ""), ""));
    LLVMValueRef i0 = LLVMBuildSub(g->B, i, ci(g, 1), "");
    *pos = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, *pos, n, ""), i0, "");
    *count = LLVMBuildMul(g->B, *count, n, "");
    LLVMValueRef e = LLVMBuildLoad2(g->B, g->ptr, field(g, arr, 8), "");
    elem = gep(g, g->i8, e, LLVMBuildMul(g->B, i0, ci(g, 16), "")); /* the Value */
    if (l + 1 < m) arr = LLVMBuildLoad2(g->B, g->ptr, field(g, elem, 8), "");
  }
  return elem;
}

static bool single_int_indexes(Gen *g, const IrInstr *ins) {
  for (int k = 0; k < ins->nidx; k++)
    if (ins->idx[k].kind != IX_SINGLE || g->rc[ins->idx[k].lo] != RC_INT) return false;
  return true;
}

static LLVMValueRef nested_elem(Gen *g, const IrInstr *ins, int boxreg, LLVMValueRef box,
                                LLVMValueRef *flat) {
  Type t = g->f->regtypes[boxreg];
  int leaf = t.base == TY_REAL || t.base == TY_INT ? 0 : t.base == TY_MATRIX ? 2
           : t.base == TY_VECTOR || t.base == TY_ROWVEC ? 1 : -1;
  if (leaf < 0 || t.ndims < 1 || (t.ndims == 1 && leaf == 0) || ins->nidx != t.ndims + leaf ||
      !single_int_indexes(g, ins))
    return NULL;
  LLVMValueRef pos, count;
  LLVMValueRef elem = nested_walk(g, ins, t.ndims, box, &pos, &count);
  LLVMValueRef p;
  if (leaf == 0) {
    p = field(g, elem, 8);
  } else {
    LLVMValueRef ten = LLVMBuildLoad2(g->B, g->ptr, field(g, elem, 8), "");
    LLVMValueRef rows = LLVMBuildSExt(g->B, LLVMBuildLoad2(g->B, g->i32, ten, ""), g->i64, "");
    LLVMValueRef cols = LLVMBuildSExt(g->B, LLVMBuildLoad2(g->B, g->i32, field(g, ten, 4), ""), g->i64, "");
    LLVMValueRef numel = LLVMBuildMul(g->B, rows, cols, ""), off;
    LLVMValueRef i = rd(g, ins->idx[t.ndims].lo);
    if (leaf == 1) {
      check(g, LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, i, ci(g, 1), ""),
                            LLVMBuildICmp(g->B, LLVMIntSLE, i, numel, ""), ""));
      off = LLVMBuildSub(g->B, i, ci(g, 1), "");
    } else {
      LLVMValueRef j = rd(g, ins->idx[t.ndims + 1].lo);
      LLVMValueRef ok = LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, i, ci(g, 1), ""),
                                     LLVMBuildICmp(g->B, LLVMIntSLE, i, rows, ""), "");
      ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntSGE, j, ci(g, 1), ""), "");
      ok = LLVMBuildAnd(g->B, ok, LLVMBuildICmp(g->B, LLVMIntSLE, j, cols, ""), "");
      check(g, ok);
      off = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, LLVMBuildSub(g->B, j, ci(g, 1), ""), rows, ""),
                         LLVMBuildSub(g->B, i, ci(g, 1), ""), "");
    }
    pos = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, pos, numel, ""), off, "");
    count = LLVMBuildMul(g->B, count, numel, "");
    p = gep(g, g->f64, LLVMBuildLoad2(g->B, g->ptr, field(g, ten, 8), ""), off);
  }
  check(g, LLVMBuildICmp(g->B, LLVMIntEQ, count, LLVMBuildLoad2(g->B, g->i64, field(g, box, 24), ""), ""));
  *flat = pos;
  return p;
}

/* dst = box[i1, ..., im], a whole element of a nested array (a row of real
   acc[N, K], a vector of vector[K] g[N]), single indexes: reached in place,
   copied into a box of the evaluation (jit_rt_sub), its adjoints added back
   at its position in the reverse part: O(the element), not O(the array). */
static bool nested_sub(Gen *g, RevList *l, const IrInstr *ins) {
  int src = ins->args[0], d = ins->dst;
  Type t = g->f->regtypes[src];
  if (g->rc[d] != RC_BOX || g->rc[src] != RC_BOX || t.ndims < 1 || ins->nidx > t.ndims ||
      !single_int_indexes(g, ins))
    return false;
  LLVMValueRef box = rd(g, src), pos, count;
  LLVMValueRef elem = nested_walk(g, ins, ins->nidx, box, &pos, &count);
  LLVMTypeRef ps[3] = {g->ptr, g->ptr, g->i64};
  LLVMValueRef a[3] = {g->cx, elem, ci(g, active(g, d))};
  LLVMValueRef sub = call(g, LLVMFunctionType(g->ptr, ps, 3, 0),
                          LLVMConstIntToPtr(LLVMConstInt(g->i64, (unsigned long long)(uintptr_t)jit_rt_sub, 0), g->ptr),
                          a, 3);
  LLVMValueRef n = LLVMBuildLoad2(g->B, g->i64, field(g, sub, 24), "");
  /* every element of the level has this one's size: the offset is pos * n */
  check(g, LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildMul(g->B, count, n, ""),
                         LLVMBuildLoad2(g->B, g->i64, field(g, box, 24), ""), ""));
  g->krows[d] = g->kcols[d] = -1;
  wr(g, d, sub);
  if (active(g, d) && active(g, src)) {
    RevItem *it = rev_add(g, l, RV_SUB, ins);
    save(it, box);
    save(it, LLVMBuildMul(g->B, pos, n, ""));
    save(it, sub);
    push_saved(g, it);
  }
  return true;
}

typedef struct SubCtx {
  LLVMValueRef to, off, from;
} SubCtx;

static void sub_rev_body(Gen *g, LLVMValueRef e, void *ud) {
  SubCtx *c = ud;
  LLVMValueRef pf = gep(g, g->f64, c->from, e);
  LLVMValueRef pt = gep(g, g->f64, c->to, LLVMBuildAdd(g->B, c->off, e, ""));
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, pt, ""),
                                     LLVMBuildLoad2(g->B, g->f64, pf, ""), ""), pt);
  LLVMBuildStore(g->B, cf(g, 0), pf);
}

static void emit_index(Gen *g, RevList *l, const IrInstr *ins) {
  int src = ins->args[0], d = ins->dst;
  Type t = g->f->regtypes[src];
  if (nested_sub(g, l, ins)) return;
  if (g->rc[d] == RC_REAL || g->rc[d] == RC_INT) {
    LLVMValueRef box = rd(g, src), p = NULL;
    LLVMValueRef i = flat_index(g, ins, src, box);
    if (i) p = elem_ptr(g, box, t, i);
    else p = nested_elem(g, ins, src, box, &i);
    if (p) {
      bool ints = t.base == TY_INT;
      LLVMValueRef v = LLVMBuildLoad2(g->B, ints ? g->i64 : g->f64, p, "");
      if (active(g, d)) {
        RevItem *it = rev_add(g, l, active(g, src) ? RV_INDEX : RV_SCALAR, ins);
        it->dst = d;
        if (active(g, src)) {
          save(it, box);
          save(it, i);
        }
        push_saved(g, it);
      }
      wr_conv(g, d, v, ints ? RC_INT : RC_REAL);
      return;
    }
  }
  int ops[24], n = 0;
  ops[n++] = src;
  for (int k = 0; k < ins->nidx && n < 22; k++) {
    if (ins->idx[k].lo >= 0) ops[n++] = ins->idx[k].lo;
    if (ins->idx[k].hi >= 0) ops[n++] = ins->idx[k].hi;
  }
  emit_site(g, l, ins, ops, n, d, false);
}

static void emit_store(Gen *g, RevList *l, const IrInstr *ins) {
  int d = ins->dst, src = ins->args[0];
  Type t = g->f->regtypes[d];
  if (g->rc[src] == RC_REAL || g->rc[src] == RC_INT || g->rc[src] == RC_BOOL) {
    LLVMValueRef box = rd(g, d), p = NULL;
    LLVMValueRef i = flat_index(g, ins, d, box);
    if (i) p = elem_ptr(g, box, t, i);
    else p = nested_elem(g, ins, d, box, &i);
    if (p) {
      if (t.base == TY_INT) LLVMBuildStore(g->B, as_i64(g, src), p);
      else LLVMBuildStore(g->B, as_f64(g, src), p);
      bool scalars = t.base == TY_REAL || t.base == TY_INT;
      if (t.ndims > 0 && scalars) /* an array element is a Value: say what it holds */
        LLVMBuildStore(g->B, LLVMConstInt(g->i8, t.base == TY_INT ? V_INT : V_REAL, 0),
                       gep(g, g->i8, p, ci(g, -8)));
      if (active(g, d)) {
        RevItem *it = rev_add(g, l, RV_STORE, ins);
        it->dst = src;
        save(it, box);
        save(it, i);
        push_saved(g, it);
      }
      return;
    }
  }
  int ops[24], n = 0;
  ops[n++] = d;
  ops[n++] = src;
  for (int k = 0; k < ins->nidx && n < 22; k++) {
    if (ins->idx[k].lo >= 0) ops[n++] = ins->idx[k].lo;
    if (ins->idx[k].hi >= 0) ops[n++] = ins->idx[k].hi;
  }
  emit_site(g, l, ins, ops, n, d, false);
}

typedef struct ForCtx {
  const IrInstr *ins;
  RevItem *it;
  LLVMValueRef lo;
} ForCtx;

static void for_body(Gen *g, LLVMValueRef k, void *ud) {
  ForCtx *fc = ud;
  wr(g, fc->ins->var, LLVMBuildAdd(g->B, fc->lo, k, ""));
  emit_block(g, &fc->ins->body, &fc->it->a);
}

/* ---- what a draw needs ----
 * A draw scores nothing, so the values only observations read (the mean
 * X * beta of `y ~ normal(X * beta, sigma)`: a matrix-vector product per
 * draw) need not be computed.  A register is live when an output reads it,
 * or an instruction that is kept reads it; instructions that only define
 * their dst (draw_pure) are kept when their dst is live, the others always
 * (samples, control flow, factors, prints, random numbers, calls).  The
 * skipped instructions ran at this point when its log density was computed,
 * so their checks had passed. */

static bool draw_pure(const IrInstr *ins) {
  switch ((IrOpcode)ins->op) {
  case IR_CONST: case IR_MOVE: case IR_UNARY: case IR_BINARY: case IR_INDEX: case IR_STORE:
  case IR_ARRAY: case IR_ROWVEC: case IR_DECL: case IR_NET:
    return ins->dst >= 0;
  case IR_BUILTIN: return ins->dst >= 0 && !ins->builtin->uses_rng;
  default: return false;
  }
}

static bool live_mark(bool *live, int r) {
  if (r < 0 || live[r]) return false;
  return live[r] = true;
}

/* Marks the registers ins reads; true when one was new. */
static bool live_reads(bool *live, const IrInstr *ins) {
  bool ch = false;
  for (int k = 0; k < ins->nargs; k++) ch |= live_mark(live, ins->args[k]);
  for (int k = 0; k < ins->nidx; k++) ch |= live_mark(live, ins->idx[k].lo) | live_mark(live, ins->idx[k].hi);
  for (int k = 0; k < ins->nsizes; k++) ch |= live_mark(live, ins->sizes[k]);
  for (int k = 0; k < ins->dist.nparams; k++) ch |= live_mark(live, ins->dist.params[k]);
  if (ins->op == IR_SAMPLE || ins->op == IR_DATA || ins->op == IR_PARAM || ins->op == IR_DECL)
    ch |= live_mark(live, ins->con.lower) | live_mark(live, ins->con.upper);
  if (ins->op == IR_WHILE) ch |= live_mark(live, ins->cond);
  if (ins->op == IR_STORE) ch |= live_mark(live, ins->dst); /* an update in place */
  return ch;
}

static bool live_block(const IrBlock *b, bool *live) {
  bool ch = false;
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    if (ins->op == IR_OBSERVE) continue; /* a draw scores nothing */
    if (!draw_pure(ins) || live[ins->dst]) ch |= live_reads(live, ins);
    ch |= live_block(&ins->then_b, live) | live_block(&ins->else_b, live);
    ch |= live_block(&ins->body, live) | live_block(&ins->cond_b, live);
  }
  return ch;
}

static bool *draw_liveness(const IrProgram *p) {
  bool *live = gc_alloc_atomic(sizeof(bool) * ((size_t)p->main.nregs + 1));
  memset(live, 0, sizeof(bool) * ((size_t)p->main.nregs + 1));
  for (int i = 0; i < p->noutputs; i++) live_mark(live, p->outputs[i].reg);
  while (live_block(&p->model_b, live) | live_block(&p->gen_b, live)) {
  }
  return live;
}

static void emit_ins(Gen *g, RevList *l, const IrInstr *ins) {
  int d = ins->dst;
  if (g->why) return;
  if (g->draw_live && draw_pure(ins) && !g->draw_live[d]) return; /* a draw does not need it */
  switch ((IrOpcode)ins->op) {
  case IR_CONST:
    if (g->rc[d] == RC_BOX) {
      emit_site(g, l, ins, NULL, 0, d, false);
      return;
    }
    if (g->rc[d] == RC_BAD) break;
    if (active(g, d)) scalar_item(g, l, ins);
    switch (g->rc[d]) {
    case RC_REAL: wr(g, d, cf(g, val_as_real(ins->imm))); break;
    case RC_INT: wr(g, d, ci(g, ins->imm.k == V_INT ? ins->imm.i : (int64_t)val_as_real(ins->imm))); break;
    case RC_BOOL: wr(g, d, LLVMConstInt(g->i1, op_truthy(ins->imm), 0)); break;
    }
    return;
  case IR_MOVE: {
    int a = ins->args[0];
    if (g->rc[d] == RC_BOX || g->rc[a] == RC_BOX) {
      if (!jg_emit_copy(g, l, ins)) emit_site(g, l, ins, &a, 1, d, false);
      return;
    }
    if (g->rc[d] == RC_BAD || g->rc[a] == RC_BAD) break;
    if (active(g, d)) {
      RevItem *it = scalar_item(g, l, ins);
      if (active(g, a)) part(it, a, -1, 1);
    }
    wr_conv(g, d, rd(g, a), g->rc[a]);
    return;
  }
  case IR_UNARY:
    if (g->rc[d] == RC_BOX || g->rc[ins->args[0]] == RC_BOX) {
      emit_site(g, l, ins, ins->args, 1, d, false);
      return;
    }
    if (g->rc[ins->args[0]] == RC_BAD) break;
    emit_unary_scalar(g, l, ins);
    return;
  case IR_BINARY: {
    uint8_t ca = g->rc[ins->args[0]], cb = g->rc[ins->args[1]];
    if (g->glm && d >= 0 && g->glm[d] == ins) return; /* computed by its GLM statement */
    if (ca == RC_BOX || cb == RC_BOX || g->rc[d] == RC_BOX) {
      if (!jg_emit_matvec(g, l, ins) && !jg_emit_ew(g, l, ins)) emit_site(g, l, ins, ins->args, 2, d, false);
      return;
    }
    if (ca == RC_BAD || cb == RC_BAD) break;
    emit_binary_scalar(g, l, ins);
    return;
  }
  case IR_BUILTIN:
    if (ins->builtin->uses_rng && !g->draw) {
      refuse(g, ins, gc_printf("'%s' draws random numbers", ins->builtin->name));
      return;
    }
    if (d < 0) break;
    if (ins->builtin->uses_rng && jg_emit_rng_native(g, l, ins)) return;
    if (emit_builtin_rule(g, l, ins) || jg_emit_lpdf_native(g, l, ins) || jg_emit_cbuiltin(g, l, ins))
      return;
    emit_site(g, l, ins, ins->args, ins->nargs, d, false);
    return;
  case IR_INDEX: emit_index(g, l, ins); return;
  case IR_STORE: emit_store(g, l, ins); return;
  case IR_ARRAY:
  case IR_ROWVEC: emit_site(g, l, ins, ins->args, ins->nargs, d, false); return;
  case IR_DECL:
    if (g->rc[d] == RC_BOX && is_tensor(g->f->regtypes[d])) { /* NaN-filled, no adjoint to pass on */
      Type t = g->f->regtypes[d];
      LLVMValueRef rows = t.base == TY_ROWVEC ? ci(g, 1) : as_i64(g, ins->sizes[0]);
      LLVMValueRef cols = t.base == TY_MATRIX ? as_i64(g, ins->sizes[1])
                        : t.base == TY_ROWVEC ? as_i64(g, ins->sizes[0]) : ci(g, 1);
      check(g, LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, rows, ci(g, 0), ""),
                            LLVMBuildICmp(g->B, LLVMIntSGE, cols, ci(g, 0), ""), ""));
      jg_wr_ten(g, d, jg_new_ten(g, ten_kind(t), rows, cols, active(g, d), FILL_NAN), rows, cols);
      return;
    }
    if (g->rc[d] == RC_BOX) {
      int before = g->nsites;
      emit_site(g, l, ins, ins->sizes, ins->nsizes, d, false);
      if (g->nsites > before) g->j->sites[before].nsizes = ins->nsizes;
      return;
    }
    if (g->rc[d] == RC_BAD) break;
    if (active(g, d)) scalar_item(g, l, ins);
    switch (g->rc[d]) {
    case RC_REAL: wr(g, d, cf(g, NAN)); break;
    case RC_INT: wr(g, d, ci(g, 0)); break;
    case RC_BOOL: wr(g, d, LLVMConstInt(g->i1, 0, 0)); break;
    }
    return;
  case IR_SAMPLE: {
    /* a draw's discrete choice is the draws pass of a program whose discrete
       latents are summed out (ir/enum.h): drawn from its family, not a
       latent of theta */
    bool choice = g->draw && ins->dist.fam->discrete;
    /* a draw records a latent in a loop or a branch with its loops' indices
       (the interpreter's nested latents: no output register holds it) */
    bool nested = g->draw && g->depth > 0;
    if (g->draw && g->j->prog != interp_program(g->j->in) && ins->name && strchr(ins->name, '/')) {
      /* the interpreter addresses it through the call ("f[3]/x"), the inlined
         copy cannot (ir/inline.c): the draw's outputs stay right, its nested
         latents are the interpreter's to give */
      g->j->draw_unrecorded = unrecorded(g, ins, "a latent of a user function");
      nested = false;
    }
    if (nested && g->nloops > JIT_CHOICE_MAXIDX) {
      g->j->draw_unrecorded =
          unrecorded(g, ins, gc_printf("a latent in more than %d loops", JIT_CHOICE_MAXIDX));
      nested = false;
    }
    if (!choice && !nested && jg_emit_sample_native(g, l, ins)) return;
    if (!choice) {
      if (g->depth > 0) g->k_static = -1;
      else if (g->k_static >= 0) g->k_static++;
    }
    int ops[24 + JIT_CHOICE_MAXIDX], n = 0;
    for (int k = 0; k < ins->dist.nparams; k++) ops[n++] = ins->dist.params[k];
    if (ins->con.lower >= 0) ops[n++] = ins->con.lower;
    if (ins->con.upper >= 0) ops[n++] = ins->con.upper;
    int ns = 0;
    for (int k = 0; k < ins->nsizes && n < 24; k++, ns++) ops[n++] = ins->sizes[k];
    int nl = nested ? g->nloops : 0;
    for (int k = 0; k < nl; k++) ops[n++] = g->loopvar[k];
    int before = g->nsites;
    emit_site(g, l, ins, ops, n, d, true);
    if (g->nsites > before) {
      JitSite *s = &g->j->sites[before];
      s->nsizes = ns;
      s->choice = choice;
      s->nested = nested;
      s->nloops = nl;
    }
    return;
  }
  case IR_OBSERVE: {
    /* a draw scores nothing: its point had a finite log density, so the
       observations' checks passed there already */
    if (g->draw) return;
    if (jg_emit_observe_native(g, l, ins)) return;
    int ops[24], n = 0;
    ops[n++] = ins->args[0];
    for (int k = 0; k < ins->dist.nparams; k++) ops[n++] = ins->dist.params[k];
    emit_site(g, l, ins, ops, n, -1, true);
    return;
  }
  case IR_FACTOR: {
    int a = ins->args[0];
    if (g->rc[a] != RC_REAL && g->rc[a] != RC_INT && g->rc[a] != RC_BOOL) break;
    LLVMValueRef x = as_f64(g, a);
    LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, g->lp, ""), x, ""), g->lp);
    if (active(g, a)) {
      RevItem *it = rev_add(g, l, RV_FACTOR, ins);
      it->dst = a;
    }
    return;
  }
  case IR_CONDITION: {
    LLVMValueRef c = truthy(g, ins->args[0]);
    LLVMValueRef add = LLVMBuildSelect(g->B, c, cf(g, 0), cf(g, -INFINITY), "");
    LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, g->lp, ""), add, ""), g->lp);
    return;
  }
  case IR_IF: {
    RevItem *it = rev_add(g, l, RV_IF, ins);
    LLVMValueRef c = truthy(g, ins->args[0]);
    save(it, c); /* pushed after the branches: the reverse part pops it before them */
    LLVMBasicBlockRef tb = new_bb(g, "then"), eb = new_bb(g, "else"), jb = new_bb(g, "endif");
    LLVMBuildCondBr(g->B, c, tb, eb);
    g->depth++;
    LLVMPositionBuilderAtEnd(g->B, tb);
    emit_block(g, &ins->then_b, &it->a);
    LLVMBuildBr(g->B, jb);
    LLVMPositionBuilderAtEnd(g->B, eb);
    emit_block(g, &ins->else_b, &it->b);
    LLVMBuildBr(g->B, jb);
    g->depth--;
    LLVMPositionBuilderAtEnd(g->B, jb);
    push_saved(g, it);
    return;
  }
  case IR_FOR: {
    RevItem *it = rev_add(g, l, RV_FOR, ins);
    LLVMValueRef lo = as_i64(g, ins->args[0]), hi = as_i64(g, ins->args[1]);
    LLVMValueRef n = LLVMBuildSub(g->B, LLVMBuildAdd(g->B, hi, ci(g, 1), ""), lo, "");
    n = LLVMBuildSelect(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, hi, lo, ""), ci(g, 0), n, "trips");
    save(it, n); /* pushed after the loop: the reverse part pops it before the body */
    ForCtx fc = {ins, it, lo};
    g->depth++;
    if (g->nloops < JIT_CHOICE_MAXIDX) g->loopvar[g->nloops] = ins->var;
    g->nloops++;
    emit_loop(g, n, for_body, &fc);
    g->nloops--;
    g->depth--;
    push_saved(g, it);
    return;
  }
  case IR_WHILE: {
    RevItem *it = rev_add(g, l, RV_WHILE, ins);
    LLVMValueRef k = entry_alloca(g, g->i64, "w");
    LLVMBuildStore(g->B, ci(g, 0), k);
    LLVMBasicBlockRef hb = new_bb(g, "while"), bb = new_bb(g, "wbody"), xb = new_bb(g, "endwhile");
    LLVMBuildBr(g->B, hb);
    LLVMPositionBuilderAtEnd(g->B, hb);
    g->depth++;
    emit_block(g, &ins->cond_b, &it->a);
    LLVMValueRef c = truthy(g, ins->cond);
    LLVMBuildCondBr(g->B, c, bb, xb);
    LLVMPositionBuilderAtEnd(g->B, bb);
    emit_block(g, &ins->body, &it->b);
    g->depth--;
    LLVMBuildStore(g->B, LLVMBuildAdd(g->B, LLVMBuildLoad2(g->B, g->i64, k, ""), ci(g, 1), ""), k);
    LLVMBuildBr(g->B, hb);
    LLVMPositionBuilderAtEnd(g->B, xb);
    save(it, LLVMBuildLoad2(g->B, g->i64, k, ""));
    push_saved(g, it);
    return;
  }
  case IR_REJECT: /* the interpreter, re-run on failure, reports the message */
    LLVMBuildBr(g->B, g->errbb);
    LLVMPositionBuilderAtEnd(g->B, new_bb(g, "dead"));
    return;
  case IR_ODE: /* the solver runs in the runtime, the right-hand side native */
    emit_site(g, l, ins, ins->args, ins->nargs, d, false);
    jg_ode_site(g, ins);
    return;
  case IR_CALL: refuse(g, ins, "user function calls are not compiled"); return;
  case IR_PARAM: refuse(g, ins, "param is not compiled yet"); return;
  case IR_NET: refuse(g, ins, "networks are not compiled yet"); return;
  case IR_BREAK:
  case IR_CONTINUE: refuse(g, ins, "break and continue are not compiled"); return;
  case IR_PRINT: refuse(g, ins, "print is not compiled (it would print at every gradient)"); return;
  default: break;
  }
  refuse(g, ins, gc_printf("this instruction is not compiled (%s)",
                           d >= 0 ? ty_name(g->f->regtypes[d]) : "no result"));
}

static void konst_block(const IrBlock *b, const int *w, Gen *g) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    int d = ins->dst;
    if (ins->op == IR_CONST && d >= 0 && w[d] == 1 && ins->imm.k != V_STR && ins->imm.k < V_ARR) {
      g->konst[d] = true;
      g->kval[d] = ins->imm;
    }
    konst_block(&ins->then_b, w, g);
    konst_block(&ins->else_b, w, g);
    konst_block(&ins->body, w, g);
    konst_block(&ins->cond_b, w, g);
  }
}

static void emit_block(Gen *g, const IrBlock *b, RevList *l) {
  for (int i = 0; i < b->n && !g->why; i++) emit_ins(g, l, &b->ins[i]);
}

/* ---- reverse part ---- */

static void rev_list(Gen *g, RevList *l);

/* A loop running `body` n times (n an i64 value) in the reverse part. */
/* The reverse of a loop: its body's reverse as many times as it ran (and,
   for while, the reverse of the test after each). */
typedef struct RepCtx {
  RevList *body, *after_each;
} RepCtx;

static void rep_body(Gen *g, LLVMValueRef k, void *ud) {
  (void)k;
  RepCtx *r = ud;
  rev_list(g, r->body);
  if (r->after_each) rev_list(g, r->after_each);
}

static void rev_repeat(Gen *g, LLVMValueRef n, RevList *body, RevList *after_each) {
  RepCtx r = {body, after_each};
  emit_loop(g, n, rep_body, &r);
}

static void rev_item(Gen *g, RevItem *it) {
  pop_saved(g, it);
  switch (it->kind) {
  case RV_SCALAR: {
    LLVMValueRef gd = take_adj(g, it->dst);
    for (int k = 0; k < it->np; k++) {
      LLVMValueRef p = it->psave[k] >= 0 ? it->save[it->psave[k]] : cf(g, it->pconst[k]);
      adj_add(g, it->preg[k], it->psave[k] < 0 && it->pconst[k] == 1 ? gd
                              : it->psave[k] < 0 && it->pconst[k] == -1 ? LLVMBuildFNeg(g->B, gd, "")
                              : LLVMBuildFMul(g->B, gd, p, ""));
    }
    break;
  }
  case RV_INDEX: {
    LLVMValueRef gd = take_adj(g, it->dst);
    LLVMValueRef adj = LLVMBuildLoad2(g->B, g->ptr, field(g, it->save[0], 16), "");
    LLVMValueRef p = gep(g, g->f64, adj, it->save[1]);
    LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, p, ""), gd, ""), p);
    break;
  }
  case RV_STORE: {
    LLVMValueRef adj = LLVMBuildLoad2(g->B, g->ptr, field(g, it->save[0], 16), "");
    LLVMValueRef p = gep(g, g->f64, adj, it->save[1]);
    LLVMValueRef v = LLVMBuildLoad2(g->B, g->f64, p, "");
    LLVMBuildStore(g->B, cf(g, 0), p);
    if (active(g, it->dst)) adj_add(g, it->dst, v);
    break;
  }
  case RV_FACTOR: adj_add(g, it->dst, cf(g, 1)); break;
  case RV_SUB: {
    LLVMValueRef sub = it->save[2];
    SubCtx c = {LLVMBuildLoad2(g->B, g->ptr, field(g, it->save[0], 16), ""), it->save[1],
                LLVMBuildLoad2(g->B, g->ptr, field(g, sub, 16), "")};
    emit_loop(g, LLVMBuildLoad2(g->B, g->i64, field(g, sub, 24), ""), sub_rev_body, &c);
    break;
  }
  case RV_SITE: {
    const JitSite *s = &g->j->sites[it->site];
    LLVMValueRef out = cf(g, 0);
    if (s->rkind == JA_REAL_ACT) out = take_adj(g, it->dst);
    LLVMValueRef a[4] = {g->cx, it->save[0], out, g->sadjbuf};
    call(g, g->t_oprev, g->f_oprev, a, 4);
    for (int k = 0; k < it->nops; k++)
      if (s->akind[k] == JA_REAL_ACT) {
        LLVMValueRef p = gep(g, g->f64, g->sadjbuf, ci(g, k));
        adj_add(g, it->opreg[k], LLVMBuildLoad2(g->B, g->f64, p, ""));
      }
    break;
  }
  case RV_IF: {
    LLVMBasicBlockRef tb = new_bb(g, "rthen"), eb = new_bb(g, "relse"), jb = new_bb(g, "rendif");
    LLVMBuildCondBr(g->B, it->save[0], tb, eb);
    LLVMPositionBuilderAtEnd(g->B, tb);
    rev_list(g, &it->a);
    LLVMBuildBr(g->B, jb);
    LLVMPositionBuilderAtEnd(g->B, eb);
    rev_list(g, &it->b);
    LLVMBuildBr(g->B, jb);
    LLVMPositionBuilderAtEnd(g->B, jb);
    break;
  }
  case RV_FOR: rev_repeat(g, it->save[0], &it->a, NULL); break;
  case RV_WHILE:
    rev_list(g, &it->a); /* the last, failing test */
    rev_repeat(g, it->save[0], &it->b, &it->a);
    break;
  case RV_EW: jg_rev_ew(g, it); break;
  case RV_COPY: jg_rev_copy(g, it); break;
  case RV_SAMPLE: jg_rev_sample(g, it); break;
  case RV_OBS: jg_rev_observe(g, it); break;
  case RV_GLM: jg_rev_glm(g, it); break;
  case RV_MATVEC: jg_rev_matvec(g, it); break;
  case RV_CBUILTIN: jg_rev_cbuiltin(g, it); break;
  case RV_LPDFV: jg_rev_lpdfv(g, it); break;
  default: break;
  }
}

static void rev_list(Gen *g, RevList *l) {
  for (int i = l->n - 1; i >= 0; i--) rev_item(g, l->v[i]);
}

/* ---- analysis ---- */

static void mark_written(const IrBlock *b, bool *w) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    if (ins->dst >= 0) w[ins->dst] = true;
    if (ins->op == IR_FOR) w[ins->var] = true;
    mark_written(&ins->then_b, w);
    mark_written(&ins->else_b, w);
    mark_written(&ins->body, w);
    mark_written(&ins->cond_b, w);
  }
}

static void count_writes(const IrBlock *b, int *w, bool *stored) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    if (ins->dst >= 0) w[ins->dst]++;
    if (ins->op == IR_FOR) w[ins->var] += 2;
    if (ins->op == IR_STORE) stored[ins->dst] = true;
    count_writes(&ins->then_b, w, stored);
    count_writes(&ins->else_b, w, stored);
    count_writes(&ins->body, w, stored);
    count_writes(&ins->cond_b, w, stored);
  }
}

/* registers assigned once, by a constant: their value is known here */
static void konst_block(const IrBlock *b, const int *w, struct Gen *g);

static bool act_block(const IrBlock *b, const IrFunc *f, bool *act) {
  bool changed = false;
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    changed |= act_block(&ins->then_b, f, act) | act_block(&ins->else_b, f, act) |
               act_block(&ins->body, f, act) | act_block(&ins->cond_b, f, act);
    int d = ins->dst;
    if (d < 0 || act[d] || !real_based(f->regtypes[d])) continue;
    bool a = ins->op == IR_SAMPLE;
    for (int k = 0; k < ins->nargs && !a; k++) a = act[ins->args[k]];
    if (ins->op == IR_SAMPLE) a = true;
    if (a) {
      act[d] = true;
      changed = true;
    }
  }
  return changed;
}

/* ---- LLVM set-up ---- */

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
static bool mvec_loaded; /* written once, under llvm_once */

static void llvm_init(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  /* glibc's vector math (exp, log, log1p over 2, 4 or 8 doubles), which the
     process does not load by itself; its symbols then resolve like libm's */
  mvec_loaded = dlopen("libmvec.so.1", RTLD_NOW | RTLD_GLOBAL) != NULL;
}

/* The widest vector math this machine runs: libmvec's name prefix. */
static int host_simd(const char **prefix) {
#if defined(__x86_64__)
  if (!mvec_loaded) return 0;
  char *feat = LLVMGetHostCPUFeatures();
  int w = strstr(feat, "+avx512f") ? 8 : strstr(feat, "+avx2") ? 4 : 2;
  LLVMDisposeMessage(feat);
  *prefix = w == 8 ? "_ZGVeN8v_" : w == 4 ? "_ZGVdN4v_" : "_ZGVbN2v_";
  return w;
#else
  (void)prefix;
  return 0;
#endif
}

/* The compiling thread's CPU time (LLVM compiles on the calling thread): the
   backend: line's figures mean the same on a busy machine. */
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void declare_runtime(Gen *g) {
  LLVMTypeRef p4[4] = {g->ptr, g->i64, g->ptr, g->ptr};
  g->t_op = LLVMFunctionType(g->ptr, p4, 4, 0);
  g->f_op = LLVMAddFunction(g->M, "ppl_jit_op", g->t_op);
  LLVMTypeRef r4[4] = {g->ptr, g->ptr, g->f64, g->ptr};
  g->t_oprev = LLVMFunctionType(g->vd, r4, 4, 0);
  g->f_oprev = LLVMAddFunction(g->M, "ppl_jit_op_rev", g->t_oprev);
  LLVMTypeRef g2[2] = {g->ptr, g->i64};
  g->t_grow = LLVMFunctionType(g->ptr, g2, 2, 0);
  g->f_grow = LLVMAddFunction(g->M, "ppl_jit_grow", g->t_grow);
  LLVMTypeRef b3[3] = {g->ptr, g->ptr, g->ptr};
  g->t_begin = LLVMFunctionType(g->vd, b3, 3, 0);
  g->f_begin = LLVMAddFunction(g->M, "ppl_jit_begin", g->t_begin);
  LLVMTypeRef t6[6] = {g->ptr, g->i64, g->i64, g->i64, g->i64, g->i64};
  g->t_ten = LLVMFunctionType(g->ptr, t6, 6, 0);
  g->f_ten = LLVMAddFunction(g->M, "ppl_jit_tensor", g->t_ten);
  LLVMTypeRef l4[4] = {g->f64, g->f64, g->f64, g->ptr};
  g->t_lub = LLVMFunctionType(g->f64, l4, 4, 0);
  g->f_lub = LLVMAddFunction(g->M, "ppl_jit_lub", g->t_lub);
  g->t_d1 = LLVMFunctionType(g->f64, &g->f64, 1, 0);
  g->f_log1p = LLVMAddFunction(g->M, "log1p", g->t_d1);
  LLVMTypeRef lp2[2] = {g->f64, g->ptr};
  g->t_lpdf1 = LLVMFunctionType(g->f64, lp2, 2, 0);
  LLVMTypeRef lg5[5] = {g->ptr, g->f64, g->ptr, g->ptr, g->ptr};
  g->t_lpdfg = LLVMFunctionType(g->f64, lg5, 5, 0);
}

/* The runtime entry points as compiled code calls them: sites by index. */
static JitRec *rt_op(JitCtx *cx, int64_t site, JitArg *args, JitArg *res) {
  return jit_rt_op(cx, jit_site(cx->jit, (int)site), args, res);
}

static char *take_error(LLVMErrorRef e) {
  char *m = LLVMGetErrorMessage(e);
  char *s = gc_strdup(m);
  LLVMDisposeErrorMessage(m);
  return s;
}

/* Register classes, data, activity, element stores and constants of main. */
static void analyze(Gen *g, const IrProgram *p) {
  const IrFunc *f = &p->main;
  int nr = f->nregs;
  g->f = f;
  g->rc = gc_alloc_atomic((size_t)nr + 1);
  g->act = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  g->isdata = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  g->written = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  g->datav = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  g->dnums = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  g->dlogs = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  memcpy(g->isdata, g->j->isdata, sizeof(bool) * ((size_t)nr + 1));
  mark_written(&p->model_b, g->written);
  mark_written(&p->gen_b, g->written);
  for (int r = 0; r < nr; r++) g->rc[r] = reg_class(f->regtypes[r]);
  while (act_block(&p->model_b, f, g->act)) {
  }
  g->stored = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  g->konst = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  g->kval = gc_alloc(sizeof(Value) * ((size_t)nr + 1));
  int *writes = gc_alloc_atomic(sizeof(int) * ((size_t)nr + 1));
  count_writes(&p->model_b, writes, g->stored);
  count_writes(&p->gen_b, writes, g->stored);
  /* data ints and bools are folded (jit_data_bind holds other data sets to
     them); data reals are arguments, unknown here */
  for (int r = 0; r < nr; r++)
    if (g->isdata[r] && (g->rc[r] == RC_INT || g->rc[r] == RC_BOOL)) {
      g->konst[r] = true;
      g->kval[r] = g->data[r];
    }
  konst_block(&p->model_b, writes, g);
  konst_block(&p->gen_b, writes, g);
}

/* i32 NAME(JitCtx *cx, double *theta, double *grad, double *lp): the entry
   block with every register's slot, and the error exit. */
static void open_function(Gen *g, const char *name) {
  const IrFunc *f = g->f;
  int nr = f->nregs;
  g->slot = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  g->adj = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  g->krows = gc_alloc_atomic(sizeof(int64_t) * ((size_t)nr + 1));
  g->kcols = gc_alloc_atomic(sizeof(int64_t) * ((size_t)nr + 1));
  for (int r = 0; r < nr; r++) {
    Value v = g->data[r];
    bool ten = g->isdata[r] && (v.k == V_VEC || v.k == V_ROWVEC || v.k == V_MAT);
    g->krows[r] = ten ? v.t->rows : -1;
    g->kcols[r] = ten ? v.t->cols : -1;
  }
  g->k_static = 0;
  g->depth = 0;
  LLVMTypeRef ps[4] = {g->ptr, g->ptr, g->ptr, g->ptr};
  g->fn = LLVMAddFunction(g->M, name, LLVMFunctionType(g->i32, ps, 4, 0));
  g->cx = LLVMGetParam(g->fn, 0);
  g->theta = LLVMGetParam(g->fn, 1);
  g->grad = LLVMGetParam(g->fn, 2);
  g->lpout = LLVMGetParam(g->fn, 3);
  g->entry = LLVMAppendBasicBlockInContext(g->C, g->fn, "entry");
  LLVMPositionBuilderAtEnd(g->B, g->entry);
  /* a marker instruction: allocas are inserted before it */
  g->entry_end = LLVMBuildAlloca(g->B, g->i8, "mark");
  g->lp = entry_alloca(g, g->f64, "lp");
  g->sp = entry_alloca(g, g->i64, "sp");
  g->argbuf = entry_alloca(g, LLVMArrayType2(LLVMArrayType2(g->i8, 24), 64), "args");
  g->resbuf = entry_alloca(g, LLVMArrayType2(g->i8, 48), "res");
  g->sadjbuf = entry_alloca(g, LLVMArrayType2(g->f64, 64), "sadj");
  LLVMBuildStore(g->B, cf(g, 0), g->lp);
  LLVMBuildStore(g->B, ci(g, 0), g->sp);
  for (int r = 0; r < nr; r++) {
    if (g->isdata[r] || !g->written[r] || g->rc[r] == RC_BAD || g->rc[r] == RC_NONE) continue;
    LLVMTypeRef t = class_type(g, g->rc[r]);
    g->slot[r] = entry_alloca(g, t, f->regnames && f->regnames[r] ? f->regnames[r] : "");
    LLVMBuildStore(g->B, LLVMConstNull(t), g->slot[r]);
    if (g->rc[r] == RC_REAL && g->act[r]) {
      g->adj[r] = entry_alloca(g, g->f64, "adj");
      LLVMBuildStore(g->B, cf(g, 0), g->adj[r]);
    }
  }
  LLVMValueRef ba[3] = {g->cx, g->theta, g->grad};
  call(g, g->t_begin, g->f_begin, ba, 3);
  LLVMBasicBlockRef body = new_bb(g, "model");
  g->errbb = new_bb(g, "error");
  LLVMBuildBr(g->B, body);
  LLVMPositionBuilderAtEnd(g->B, body);
}

static void close_function(Gen *g) {
  LLVMBuildRet(g->B, LLVMConstInt(g->i32, 0, 0));
  LLVMPositionBuilderAtEnd(g->B, g->errbb);
  LLVMBuildRet(g->B, LLVMConstInt(g->i32, 1, 0));
  LLVMInstructionEraseFromParent(g->entry_end);
}

/* ppl_ld: the model block, then (when grad is not NULL) its adjoint. */
static bool lower_ld(Gen *g, const IrProgram *p) {
  open_function(g, "ppl_ld");
  RevList top = {0};
  emit_block(g, &p->model_b, &top);
  if (g->why) return false;
  if (g->maxops > 64) {
    refuse(g, NULL, "an operation with more than 64 operands is not compiled");
    return false;
  }
  LLVMBuildStore(g->B, LLVMBuildLoad2(g->B, g->f64, g->lp, ""), g->lpout);
  LLVMBasicBlockRef rev = new_bb(g, "reverse"), done = new_bb(g, "done");
  LLVMValueRef nograd = LLVMBuildICmp(g->B, LLVMIntEQ, LLVMBuildPtrToInt(g->B, g->grad, g->i64, ""),
                                      ci(g, 0), "");
  LLVMBuildCondBr(g->B, nograd, done, rev);
  LLVMPositionBuilderAtEnd(g->B, rev);
  rev_list(g, &top);
  LLVMBuildBr(g->B, done);
  LLVMPositionBuilderAtEnd(g->B, done);
  close_function(g);
  return true;
}

/* ppl_draw: one draw's outputs at theta, the model block forward (nothing
   differentiated) and the generated block, random numbers from cx->rng. */
static bool lower_draw(Gen *g, const IrProgram *p) {
  memset(g->act, 0, sizeof(bool) * (size_t)(g->f->nregs + 1));
  g->fwd = true;
  g->draw = true;
  g->draw_live = draw_liveness(p);
  open_function(g, "ppl_draw");
  RevList top = {0};
  emit_block(g, &p->model_b, &top);
  emit_block(g, &p->gen_b, &top);
  if (g->why) return false;
  if (g->maxops > 64) {
    refuse(g, NULL, "an operation with more than 64 operands is not compiled");
    return false;
  }
  LLVMTypeRef ps[6] = {g->ptr, g->i64, g->f64, g->i64, g->ptr, g->i64};
  LLVMTypeRef ft = LLVMFunctionType(g->vd, ps, 6, 0);
  LLVMValueRef fo = LLVMAddFunction(g->M, "ppl_jit_out", ft);
  for (int i = 0; i < p->noutputs; i++) {
    int r = p->outputs[i].reg;
    uint8_t rc = g->rc[r];
    if (rc == RC_BAD || rc == RC_NONE || (!g->slot[r] && !g->isdata[r])) {
      refuse(g, NULL, gc_printf("output '%s' (%s) is not compiled", p->outputs[i].name,
                                ty_name(p->outputs[i].type)));
      return false;
    }
    LLVMValueRef v = rd(g, r);
    LLVMValueRef a[6] = {g->cx, ci(g, i), rc == RC_REAL ? v : cf(g, 0),
                         rc == RC_INT ? v : rc == RC_BOOL ? LLVMBuildZExt(g->B, v, g->i64, "") : ci(g, 0),
                         rc == RC_BOX ? v : LLVMConstNull(g->ptr), ci(g, rc)};
    call(g, ft, fo, a, 6);
  }
  close_function(g);
  return true;
}

/* The two ways a function is optimised.  What runs per gradient gets
 * LLVM's default<O2> pipeline and the default code generator (through ORC).
 * The quick way is a short pipeline that still makes the code the JIT's IR
 * needs made — scalars out of stack slots (mem2reg, sroa), small loops over
 * fixed sizes unrolled so their arrays become registers too, the checks and
 * constants folded (instcombine, early-cse, simplifycfg), the runtime's
 * declarations the code does not call dropped (globaldce) — followed by the
 * code generator's fast path (LLVMCodeGenLevelNone: fast instruction
 * selection and register allocation).  On eight schools it compiles the log
 * density in about half the instructions (119 M -> 64 M, callgrind) for a
 * gradient about a quarter slower (900 -> 1,110 instructions); the draw
 * function always takes it (it runs once per kept draw: 24 M -> 19 M, its
 * runs as fast).  Both make the same IEEE operations, except in the sums the
 * generated code marks reassociable (jit_native.c's reassoc: scalar
 * adjoints of vectorised densities, matrix-vector products), which the full
 * pipeline vectorises and fuses into FMAs: the two agree to 1e-12, and bit
 * for bit on programs without such sums (tests/inference/test_jit_quick).
 * Which one the log density gets is the caller's choice (jit_compile's
 * quick; hmc.c decides from the command line's expected gradients, so a
 * command line gives the same bits everywhere). */
#define JG_PASSES_FULL "default<O2>"
#define JG_PASSES_QUICK                                                                        \
  "function(mem2reg,simplifycfg,instcombine<no-verify-fixpoint>,loop-simplify,lcssa,"          \
  "loop(loop-rotate,indvars),loop-unroll<O2>,sroa,early-cse,instcombine<no-verify-fixpoint>,"  \
  "simplifycfg),globaldce"

/* A target machine for this host at codegen level `level` (NULL with *why). */
static LLVMTargetMachineRef host_tm(LLVMOrcLLJITRef lljit, LLVMCodeGenOptLevel level,
                                    LLVMRelocMode reloc, LLVMCodeModel model, const char **why) {
  const char *triple = LLVMOrcLLJITGetTripleString(lljit);
  LLVMTargetRef T;
  char *err = NULL;
  LLVMTargetMachineRef tm = NULL;
  if (LLVMGetTargetFromTriple(triple, &T, &err) == 0) {
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    tm = LLVMCreateTargetMachine(T, triple, cpu, feat, level, reloc, model);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
  }
  if (!tm) *why = gc_printf("LLVM: %s", err ? err : "no target machine for this host");
  if (err) LLVMDisposeMessage(err);
  return tm;
}

/* Target M at this machine and run LLVM's pipeline `passes` over it, with
   tm's cost model. */
static void optimise(LLVMOrcLLJITRef lljit, LLVMTargetMachineRef tm, LLVMModuleRef M,
                     const char *passes) {
  LLVMSetTarget(M, LLVMOrcLLJITGetTripleString(lljit));
  LLVMSetDataLayout(M, LLVMOrcLLJITGetDataLayoutStr(lljit));
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMErrorRef pe = LLVMRunPasses(M, passes, tm, po);
  if (pe) LLVMConsumeError(pe);
  LLVMDisposePassBuilderOptions(po);
}

/* A new module in tsc's context with the types and runtime declarations every
 * generated function uses. */
static void jg_module_begin(Gen *g, LLVMOrcThreadSafeContextRef tsc, const char *name) {
  g->C = LLVMOrcThreadSafeContextGetContext(tsc);
  g->M = LLVMModuleCreateWithNameInContext(name, g->C);
  g->B = LLVMCreateBuilderInContext(g->C);
  g->i1 = LLVMInt1TypeInContext(g->C);
  g->i8 = LLVMInt8TypeInContext(g->C);
  g->i32 = LLVMInt32TypeInContext(g->C);
  g->i64 = LLVMInt64TypeInContext(g->C);
  g->f64 = LLVMDoubleTypeInContext(g->C);
  g->ptr = LLVMPointerTypeInContext(g->C, 0);
  g->vd = LLVMVoidTypeInContext(g->C);
  declare_runtime(g);
}

/* M as machine code from tm (the quick way: fast instruction selection and
   register allocation).  NULL with *why. */
static LLVMMemoryBufferRef emit_object(LLVMTargetMachineRef tm, LLVMModuleRef M,
                                       const char **why) {
  char *err = NULL;
  LLVMMemoryBufferRef buf = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, M, LLVMObjectFile, &err, &buf)) buf = NULL;
  if (!buf) *why = gc_printf("LLVM: %s", err ? err : "no machine code");
  if (err) LLVMDisposeMessage(err);
  return buf;
}

/* One module in its own context: ppl_ld, or ppl_draw (draw), lowered from p,
   verified and optimised for this machine; NULL with *why if not compiled.
   With obj, the module is optimised the quick way and becomes machine code
   at once (emit_object): *obj, and NULL is returned; without, it gets the
   full pipeline and ORC's code generator compiles it. */
static LLVMOrcThreadSafeModuleRef build_module(Jit *j, bool draw, bool keep_ir,
                                               LLVMMemoryBufferRef *obj, const char **why) {
  const IrProgram *p = j->prog;
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  Gen G;
  memset(&G, 0, sizeof G);
  Gen *g = &G;
  g->j = j;
  g->p = p;
  g->data = j->data;
  g->nsites = j->nsites;
  g->capsites = j->capsites;
  jg_module_begin(g, tsc, draw ? "ppl_draw" : "ppl_ld");
  g->simd = host_simd(&g->mvec);
  analyze(g, p);
  if (!draw) jg_glm_scan(g, p);
  bool ok = draw ? lower_draw(g, p) : lower_ld(g, p);
  LLVMDisposeBuilder(g->B);
  j->nsites = g->nsites;
  j->capsites = g->capsites;
  char *msg = NULL;
  if (ok && LLVMVerifyModule(g->M, LLVMReturnStatusAction, &msg)) {
    g->why = gc_printf("internal error: invalid LLVM IR: %s", msg);
    ok = false;
  }
  if (msg) LLVMDisposeMessage(msg);
  if (!ok) {
    *why = g->why ? g->why : "the program could not be compiled";
    LLVMDisposeModule(g->M);
    LLVMOrcDisposeThreadSafeContext(tsc);
    return NULL;
  }
  /* the quick way: one target machine serves the pipeline's cost model and
     the code generator; the full pipeline's is ORC's own */
  LLVMTargetMachineRef tm = obj ? host_tm(j->lljit, LLVMCodeGenLevelNone, LLVMRelocPIC,
                                          LLVMCodeModelSmall, why)
                                : host_tm(j->lljit, LLVMCodeGenLevelDefault, LLVMRelocDefault,
                                          LLVMCodeModelJITDefault, why);
  if (!tm) {
    LLVMDisposeModule(g->M);
    LLVMOrcDisposeThreadSafeContext(tsc);
    return NULL;
  }
  optimise(j->lljit, tm, g->M, obj ? JG_PASSES_QUICK : JG_PASSES_FULL);
  if (keep_ir) {
    char *text = LLVMPrintModuleToString(g->M);
    j->ir_text = j->ir_text ? gc_printf("%s\n%s", j->ir_text, text) : gc_strdup(text);
    LLVMDisposeMessage(text);
  }
  if (obj) *obj = emit_object(tm, g->M, why);
  LLVMDisposeTargetMachine(tm);
  if (obj) {
    LLVMDisposeModule(g->M);
    LLVMOrcDisposeThreadSafeContext(tsc);
    return NULL;
  }
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(g->M, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc);
  return tsm;
}

/* Add machine code to the JIT (which links it) and look its function up. */
static JitFn load_object(Jit *j, LLVMMemoryBufferRef obj, const char *name, const char **why) {
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);
  LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->lljit, jd, obj);
  LLVMOrcExecutorAddress addr = 0;
  if (!e) e = LLVMOrcLLJITLookup(j->lljit, &addr, name);
  if (e) {
    *why = gc_printf("LLVM: %s", take_error(e));
    return NULL;
  }
  return (JitFn)(uintptr_t)addr;
}

/* Add a module to the JIT and look its function up (which compiles it). */
static JitFn load_module(Jit *j, LLVMOrcThreadSafeModuleRef tsm, const char *name,
                         const char **why) {
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);
  LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->lljit, jd, tsm);
  LLVMOrcExecutorAddress addr = 0;
  if (!e) e = LLVMOrcLLJITLookup(j->lljit, &addr, name);
  if (e) {
    *why = gc_printf("LLVM: %s", take_error(e));
    return NULL;
  }
  return (JitFn)(uintptr_t)addr;
}

/* The JIT with the runtime's entry points (bound by address) and the
   process's libraries (libm, libmvec) for everything else. */
static LLVMErrorRef make_lljit(Jit *j) {
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->lljit, LLVMOrcCreateLLJITBuilder());
  if (e) return e;
  struct { const char *name; void *addr; } syms[] = {
      {"ppl_jit_op", (void *)rt_op},
      {"ppl_jit_op_rev", (void *)jit_rt_op_rev},
      {"ppl_jit_grow", (void *)jit_rt_grow},
      {"ppl_jit_begin", (void *)jit_rt_begin},
      {"ppl_jit_tensor", (void *)jit_rt_tensor},
      {"ppl_jit_lub", (void *)jit_rt_lub},
      {"ppl_jit_out", (void *)jit_rt_out},
  };
  int ns = (int)(sizeof syms / sizeof syms[0]);
  LLVMOrcCSymbolMapPair pairs[12];
  for (int i = 0; i < ns; i++) {
    pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->lljit, syms[i].name);
    pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
    pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[i].Sym.Flags.TargetFlags = 0;
  }
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);
  e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, (size_t)ns));
  LLVMOrcDefinitionGeneratorRef gen = NULL;
  if (!e)
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->lljit),
                                                            NULL, NULL);
  if (!e) LLVMOrcJITDylibAddGenerator(jd, gen);
  return e;
}

static bool block_calls(const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    if (ins->op == IR_CALL || block_calls(&ins->then_b) || block_calls(&ins->else_b) ||
        block_calls(&ins->body) || block_calls(&ins->cond_b))
      return true;
  }
  return false;
}

/* What j compiles: in's program, or, when the model or generated block calls
   user functions, a copy with the calls inlined (ir/inline.c).  The inlined
   functions' registers come after main's, so data registers keep their
   numbers; the copy keeps the original data block (it ran in the
   interpreter), so the appended registers are never data.  Calls that cannot
   be inlined refuse the program, or only its draws when they are all in the
   generated block. */
static bool jit_program(Jit *j, const char **why) {
  const IrProgram *p = interp_program(j->in);
  j->prog = p;
  j->data = interp_data_regs(j->in);
  if (!block_calls(&p->model_b) && !block_calls(&p->gen_b)) return true;
  IrProgram src = *p;
  src.data_b = (IrBlock){0};
  const char *gwhy = NULL;
  IrProgram *q = ir_inline_calls(&src, &gwhy);
  if (!q) {
    src.gen_b = (IrBlock){0};
    if (!(q = ir_inline_calls(&src, why))) return false;
    q->gen_b = p->gen_b;
    j->gen_why = gwhy;
  }
  q->data_b = p->data_b;
  Value *data = gc_alloc(sizeof(Value) * ((size_t)q->main.nregs + 1));
  for (int r = 0; r < q->main.nregs; r++)
    data[r] = r < p->main.nregs && j->data ? j->data[r] : val_none();
  j->prog = q;
  j->data = data;
  return true;
}

/* Which registers of main are data (set by the data block, never after),
   and which data containers the densities take the logs of (dk_logs_param):
   what binding a data set prepares. */
static void need_logs_block(const IrBlock *b, Jit *j) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    const DistFamily *f = ins->op == IR_OBSERVE ? ins->dist.fam : NULL;
    for (int k = 0; f && f->kernel && k < ins->dist.nparams && k < f->nparams; k++) {
      int r = ins->dist.params[k];
      if (r >= 0 && j->isdata[r] && dk_logs_param(f->kernel, k)) j->need_logs[r] = true;
    }
    need_logs_block(&ins->then_b, j);
    need_logs_block(&ins->else_b, j);
    need_logs_block(&ins->body, j);
    need_logs_block(&ins->cond_b, j);
  }
}

static void jit_data_regs(Jit *j) {
  const IrProgram *p = j->prog;
  int nr = p->main.nregs;
  bool *written = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  j->isdata = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  j->need_logs = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  memset(written, 0, sizeof(bool) * ((size_t)nr + 1));
  memset(j->isdata, 0, sizeof(bool) * ((size_t)nr + 1));
  memset(j->need_logs, 0, sizeof(bool) * ((size_t)nr + 1));
  mark_written(&p->data_b, j->isdata);
  mark_written(&p->model_b, written);
  mark_written(&p->gen_b, written);
  for (int r = 0; r < nr; r++)
    if (written[r]) j->isdata[r] = false;
  need_logs_block(&p->model_b, j);
}

/* Do two data values have the same shape (kind, sizes, nesting)? */
static bool same_shape(Value a, Value b) {
  if (a.k != b.k) return false;
  switch (a.k) {
  case V_VEC: case V_ROWVEC: case V_MAT: return a.t->rows == b.t->rows && a.t->cols == b.t->cols;
  case V_ARR:
    if (a.a->n != b.a->n) return false;
    for (int i = 0; i < a.a->n; i++)
      if (!same_shape(a.a->e[i], b.a->e[i])) return false;
    return true;
  default: return true;
  }
}

static JitData *data_bind(const Jit *j, const Value *data, const char **why) {
  const IrFunc *f = &j->prog->main;
  int nr = f->nregs, norig = interp_program(j->in)->main.nregs;
  JitData *d = gc_alloc(sizeof(JitData));
  d->jit = j;
  d->reg = gc_alloc(sizeof(JitDataReg) * ((size_t)nr + 1));
  for (int r = 0; r < nr; r++) {
    if (!j->isdata[r]) continue;
    Value v = r < norig && data ? data[r] : val_none(), w = j->data[r];
    const char *name = f->regnames && f->regnames[r] ? f->regnames[r] : "a data value";
    switch (reg_class(f->regtypes[r])) {
    case RC_INT:
    case RC_BOOL:
      if (v.k != w.k || val_as_real(v) != val_as_real(w)) {
        *why = gc_printf("data differ from those compiled: %s is %s, was %s", name,
                         val_to_string(v), val_to_string(w));
        return NULL;
      }
      break;
    case RC_REAL: d->reg[r].r = val_as_real(v); break;
    case RC_BOX: {
      if (!same_shape(v, w)) {
        *why = gc_printf("data differ from those compiled: the shape of %s is not the one compiled",
                         name);
        return NULL;
      }
      JitBox *b = gc_alloc(sizeof(JitBox));
      b->v = v;
      b->n = (int64_t)val_numel(v);
      const double *nums = NULL;
      if (v.k == V_ARR) { /* flat once, for the runtime's loops */
        b->flat = gc_alloc_atomic(sizeof(double) * (size_t)(b->n ? b->n : 1));
        val_flatten(v, b->flat);
        nums = b->flat;
      } else if (v.k == V_VEC || v.k == V_ROWVEC || v.k == V_MAT) {
        nums = v.t->d;
      }
      d->reg[r].b = b;
      d->reg[r].nums = nums;
      if (nums && j->need_logs[r]) {
        double *l = gc_alloc_atomic(sizeof(double) * (size_t)(b->n ? b->n : 1));
        for (int64_t i = 0; i < b->n; i++) l[i] = log(nums[i]);
        d->reg[r].logs = l;
      }
      break;
    }
    default: break;
    }
  }
  return d;
}

/* The draw function (the model and generated blocks forward), on its first
   use: jit_has_draw calls it under the Jit's lock. */
static JitFn compile_draw(Jit *j) {
  double t0 = now_ms();
  const char *why = NULL;
  JitFn f = NULL;
  if (j->gen_why) {
    why = j->gen_why;
  } else {
    LLVMMemoryBufferRef obj = NULL;
    build_module(j, true, j->keep_ir, &obj, &why);
    f = obj ? load_object(j, obj, "ppl_draw", &why) : NULL;
    if (f) jg_ode_link(j);
  }
  if (!f) j->draw_why = why ? why : "the generated block could not be compiled";
  j->draw_ms = now_ms() - t0;
  return f;
}

static void release(Jit *j);

static Jit *compile(const Interp *in, const JitLatents *lat, size_t dim, bool keep_ir,
                    bool quick, const char **why) {
  double t0 = now_ms();
  pthread_once(&llvm_once, llvm_init);
  Jit *j = gc_alloc_root(sizeof(Jit));
  j->lat = *lat;
  j->in = in;
  j->dim = dim;
  j->keep_ir = keep_ir;
  pthread_mutex_init(&j->mu, NULL);
  if (!jit_program(j, why)) {
    release(j);
    return NULL;
  }
  jit_data_regs(j);
  j->data0 = data_bind(j, interp_data_regs(in), why);
  if (!j->data0) {
    release(j);
    return NULL;
  }
  LLVMErrorRef e = make_lljit(j);
  if (e) {
    *why = gc_printf("LLVM: %s", take_error(e));
    release(j);
    return NULL;
  }
  if (quick) {
    LLVMMemoryBufferRef obj = NULL;
    build_module(j, false, keep_ir, &obj, why);
    j->fn = obj ? load_object(j, obj, "ppl_ld", why) : NULL;
  } else {
    LLVMOrcThreadSafeModuleRef tsm = build_module(j, false, keep_ir, NULL, why);
    j->fn = tsm ? load_module(j, tsm, "ppl_ld", why) : NULL;
  }
  if (!j->fn) {
    release(j);
    return NULL;
  }
  jg_ode_link(j);
  j->ms = now_ms() - t0;
  j->nsites_ld = j->nsites;
  if (keep_ir) { /* all of the IR now */
    j->draw_tried = true;
    j->draw = compile_draw(j);
  }
  return j;
}


static void release(Jit *j) {
  if (!j) return;
  if (j->lljit) LLVMOrcDisposeLLJIT(j->lljit);
  pthread_mutex_destroy(&j->mu);
  gc_free_root(j);
}

/* ---- a family's kernel on its own (tests) ---- */

struct JitKernel {
  LLVMOrcLLJITRef lljit;
  JitKernelFn fn;
};

/* One function `ppl_kernel` of nargs pointer-or-i64 arguments (the first an
   i64 count, the rest pointers), its body emitted by body(g, ud, args). */
typedef void (*TestBody)(Gen *g, const void *ud, LLVMValueRef n, LLVMValueRef *arg);
static JitKernel *compile_test_fn(int width, int nptr, TestBody body, const void *ud,
                                  const char **why) {
  Jit tmp;
  memset(&tmp, 0, sizeof tmp);
  LLVMErrorRef e = make_lljit(&tmp);
  if (e) {
    *why = gc_printf("LLVM: %s", take_error(e));
    return NULL;
  }
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  Gen G;
  memset(&G, 0, sizeof G);
  Gen *g = &G;
  jg_module_begin(g, tsc, "ppl_kernel");
  g->simd = width;
  g->mvec = width == 8 ? "_ZGVeN8v_" : width == 4 ? "_ZGVdN4v_" : "_ZGVbN2v_";
  LLVMTypeRef ps[10] = {g->i64, g->ptr, g->ptr, g->ptr, g->ptr, g->ptr, g->ptr, g->ptr, g->ptr, g->ptr};
  g->fn = LLVMAddFunction(g->M, "ppl_kernel", LLVMFunctionType(g->vd, ps, (unsigned)nptr + 1, 0));
  g->entry = LLVMAppendBasicBlockInContext(g->C, g->fn, "entry");
  LLVMPositionBuilderAtEnd(g->B, g->entry);
  g->entry_end = LLVMBuildAlloca(g->B, g->i8, "mark");
  LLVMValueRef arg[9];
  for (int i = 0; i < nptr; i++) arg[i] = LLVMGetParam(g->fn, (unsigned)i + 1);
  body(g, ud, LLVMGetParam(g->fn, 0), arg);
  LLVMBuildRetVoid(g->B);
  LLVMInstructionEraseFromParent(g->entry_end);
  LLVMDisposeBuilder(g->B);
  char *msg = NULL;
  if (LLVMVerifyModule(g->M, LLVMReturnStatusAction, &msg)) {
    *why = gc_printf("internal error: invalid LLVM IR: %s", msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(g->M);
    LLVMOrcDisposeThreadSafeContext(tsc);
    LLVMOrcDisposeLLJIT(tmp.lljit);
    return NULL;
  }
  if (msg) LLVMDisposeMessage(msg);
  LLVMTargetMachineRef tm = host_tm(tmp.lljit, LLVMCodeGenLevelDefault, LLVMRelocDefault,
                                    LLVMCodeModelJITDefault, why);
  if (tm) {
    optimise(tmp.lljit, tm, g->M, JG_PASSES_FULL);
    LLVMDisposeTargetMachine(tm);
  }
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(g->M, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc);
  JitFn fn = load_module(&tmp, tsm, "ppl_kernel", why);
  if (!fn) {
    LLVMOrcDisposeLLJIT(tmp.lljit);
    return NULL;
  }
  JitKernel *k = gc_alloc(sizeof(JitKernel));
  k->lljit = tmp.lljit;
  k->fn = (JitKernelFn)(uintptr_t)fn;
  return k;
}

static void kernel_body(Gen *g, const void *ud, LLVMValueRef n, LLVMValueRef *arg) {
  jg_kernel_body(g, ud, n, arg);
}

static JitKernel *kernel_compile(const DistFamily *f, int width, const char **why) {
  pthread_once(&llvm_once, llvm_init);
  if (!f->kernel) {
    *why = gc_printf("%s has no kernel description", f->name);
    return NULL;
  }
  const char *pre = NULL;
  int host = host_simd(&pre);
  if (width && (width > host || (width != 2 && width != 4 && width != 8))) {
    *why = gc_printf("this machine has no %d-wide vector math", width);
    return NULL;
  }
  return compile_test_fn(width, 5, kernel_body, f, why);
}

/* ---- a scalar rule on its own (tests) ---- */

typedef struct RuleCtx {
  const ScalarRule *r;
  LLVMValueRef *arg;
} RuleCtx;

static void rule_point(Gen *g, LLVMValueRef i, void *ud) {
  const RuleCtx *c = ud;
  LLVMValueRef *arg = c->arg, out[5], x[3];
  for (int k = 0; k < 3; k++) x[k] = LLVMBuildLoad2(g->B, g->f64, gep(g, g->f64, arg[k], i), "");
  jg_emit_rule3(g, c->r, x[0], c->r->nargs >= 2 ? x[1] : NULL, c->r->nargs == 3 ? x[2] : NULL,
                &out[0], &out[1], &out[2], &out[3], &out[4]);
  out[4] = LLVMBuildUIToFP(g->B, out[4], g->f64, "");
  for (int k = 0; k < 5; k++) LLVMBuildStore(g->B, out[k], gep(g, g->f64, arg[3 + k], i));
}

static void rule_body(Gen *g, const void *ud, LLVMValueRef n, LLVMValueRef *arg) {
  RuleCtx c = {ud, arg};
  emit_loop(g, n, rule_point, &c);
}

static JitKernel *rule_compile(const ScalarRule *r, const char **why) {
  pthread_once(&llvm_once, llvm_init);
  return compile_test_fn(0, 8, rule_body, r, why);
}

static void *kernel_fn(const JitKernel *k) { return (void *)(uintptr_t)k->fn; }

static void kernel_free(JitKernel *k) {
  if (k && k->lljit) LLVMOrcDisposeLLJIT(k->lljit);
}

/* ---- the module's one exported symbol (ir/jit_module.h) ---- */

__attribute__((visibility("default"))) const JitModule ppl_jit_module = {
    PPL_JIT_MODULE_VERSION, JIT_MODULE_SIZES, compile, compile_draw, release, data_bind,
    kernel_compile, rule_compile, kernel_fn, kernel_free,
};
