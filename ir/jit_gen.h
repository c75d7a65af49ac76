/* jit_gen.h — what the two halves of the JIT's code generator share (private
 * to ir/jit.c and ir/jit_native.c): the compiled program (struct Jit), the
 * generator's state (Gen), the reverse part's record of each forward
 * instruction (RevItem), and the small emitters both use.
 *
 * ir/jit.c lowers scalars, control flow, runtime calls and the reverse part,
 * and drives LLVM; ir/jit_native.c lowers the container arithmetic and the
 * scalar-family densities it recognises to loops of its own.
 */
#ifndef PPL_JIT_GEN_H
#define PPL_JIT_GEN_H

#include "jit.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "../stdlib/dist_kernel.h"
#include "interp_ops.h"
#include "jit_rt.h"
#include "ppl_config.h"

#if PPL_HAVE_LLVM
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#endif

typedef int (*JitFn)(JitCtx *cx, const double *theta, double *grad, double *lp);

struct Jit {
  JitFn fn;
  /* the draw is compiled on first use (not before the first gradient) */
  pthread_mutex_t mu;
  bool draw_tried;
  JitFn draw;           /* NULL when the generated block is not compiled */
  const char *draw_why; /* why not */
  const char *draw_unrecorded; /* a nested latent the draw does not record
                                  (jit_draw_nested), why; NULL: none */
  double draw_ms;
  bool keep_ir;
  int capsites;
  JitSite *sites;
  int nsites;
  int nsites_ld;  /* of which the log density's (the draw's come after) */
  void **keep;    /* memory the code refers to (data boxes, tables) */
  int nkeep, capkeep;
  JitLatents lat;
  const Interp *in;
  /* what is compiled: in's program, or a copy with its calls inlined
     (jit_program), and main's registers after the data block, sized for it */
  const IrProgram *prog;
  const Value *data;   /* the data compiled with: their folded values and shapes */
  bool *isdata;        /* registers of main set by the data block only */
  bool *need_logs;     /* data containers whose logs the code reads */
  JitData *data0;      /* the data compiled with, bound (jit_ctx_new's) */
  const char *gen_why; /* the generated block's calls could not be inlined */
  size_t dim;
  const char *ir_text;
  double ms;
#if PPL_HAVE_LLVM
  LLVMOrcLLJITRef lljit;
#endif
};

/* Memory the code refers to: the Jit (a root) keeps it alive. */
static inline void jit_keep(Jit *j, void *p) {
  j->keep = gc_grow(j->keep, j->nkeep, &j->capkeep, sizeof(void *));
  j->keep[j->nkeep++] = p;
}

#if PPL_HAVE_LLVM
/* ---- register classes and activity ---- */

enum { RC_NONE = 0, RC_INT, RC_BOOL, RC_REAL, RC_BOX, RC_BAD };

static inline uint8_t reg_class(Type t) {
  if (t.ndims > 0) return t.base == TY_STRING ? RC_BAD : RC_BOX;
  switch (t.base) {
  case TY_INT: return RC_INT;
  case TY_BOOL: return RC_BOOL;
  case TY_REAL: return RC_REAL;
  case TY_VECTOR: case TY_ROWVEC: case TY_MATRIX: return RC_BOX;
  default: return RC_BAD;
  }
}

static inline bool real_based(Type t) {
  return t.base == TY_REAL || t.base == TY_VECTOR || t.base == TY_ROWVEC || t.base == TY_MATRIX;
}

/* ---- what the reverse part needs of each forward instruction ---- */

#define MAX_SAVE 8
#define MAX_PART 6 /* a density call: x and up to five parameters */

typedef struct RevItem RevItem;
typedef struct RevList {
  RevItem **v;
  int n, cap;
} RevList;

typedef enum {
  RV_NONE,     /* nothing to undo */
  RV_SCALAR,   /* dst real: adjoint flows to operands through partials */
  RV_SITE,     /* a runtime call */
  RV_INDEX,    /* dst = box[i]: box.adj[i] += adj(dst) */
  RV_STORE,    /* box[i] = src */
  RV_FACTOR,   /* lp += x */
  RV_IF,
  RV_FOR,
  RV_WHILE,
  RV_EW,       /* element-wise container arithmetic */
  RV_COPY,     /* container copy */
  RV_SAMPLE,   /* a latent of a scalar family, lowered natively */
  RV_OBS,      /* an observation of a scalar family, lowered natively */
  RV_MATVEC,   /* matrix * vector */
  RV_SUB,      /* dst = a copy of an element of a nested array: its adjoints back */
  RV_CBUILTIN, /* a builtin of a container, lowered natively */
  RV_LPDFV,    /* NAME_lpdf of containers: partials saved, scaled by adj(dst) */
  RV_GLM,      /* a fused GLM statement: its scalars' adjoints (jg_emit_glm) */
} RevKind;

struct RevItem {
  uint8_t kind;
  bool pushed; /* the saved values are on the stack (inside control flow) */
  const IrInstr *ins;
  int nsave;
  LLVMValueRef save[MAX_SAVE];
  LLVMTypeRef stype[MAX_SAVE];
  /* RV_SCALAR: adj(dst) * part[k] flows to register preg[k]; psave[k] >= 0 is
     the saved value holding the partial, else pconst[k] */
  int dst, np;
  int preg[MAX_PART], psave[MAX_PART];
  double pconst[MAX_PART];
  /* RV_SITE */
  int site;
  int nops;
  int *opreg; /* operand registers (-1: not a register) */
  /* native container operations and densities */
  const void *aux;
  int sub;
  /* control flow */
  RevList a, b; /* then/else, body/-, cond/body for while: a = cond, b = body */
};

typedef struct Gen {
  LLVMContextRef C;
  LLVMModuleRef M;
  LLVMBuilderRef B;
  LLVMTypeRef i1, i8, i32, i64, f64, ptr, vd;
  LLVMValueRef fn, cx, theta, grad, lpout;
  LLVMValueRef lp, sp;
  LLVMBasicBlockRef errbb, entry;
  LLVMValueRef entry_end; /* allocas go before this */
  LLVMValueRef *slot, *adj;
  uint8_t *rc;
  bool *act, *isdata;
  bool *stored;  /* the target of an element store somewhere in the model */
  bool *konst;   /* a value known when compiling (data, or one constant assignment) */
  int k_static;  /* index of the next latent while it is known when compiling, else -1 */
  bool *written; /* assigned in the model or generated block */
  bool fwd;      /* no adjoint: nothing is saved for a reverse part */
  bool draw;     /* compiling a draw: random number builtins allowed */
  bool *draw_live; /* a draw: registers it needs (jit.c, draw_liveness); NULL: all */
  int64_t *krows, *kcols; /* shape of a tensor register's value where known here, else -1 */
  int simd;      /* vector width of the host for densities (2, 4, 8), 0 without libmvec */
  const char *mvec; /* libmvec's name prefix for that width: "_ZGVeN8v_" */
  int vw;        /* the width being emitted now (0: scalars) */
  const Value *data;    /* the data compiled with (values of folded registers, shapes) */
  LLVMValueRef *datav; /* data registers' values, loaded at entry (lazily) */
  LLVMValueRef dregs;  /* cx->dregs, loaded at entry */
  LLVMValueRef *dnums, *dlogs; /* a data container's numbers and their logs */
  const IrProgram *p;
  const IrFunc *f;
  int depth;
  /* a draw: the enclosing for loops' variables, outermost first (a choice
     in a loop is recorded with their values, its address's "[i,j]") */
  int loopvar[JIT_CHOICE_MAXIDX];
  int nloops;
  const char *why;
  Jit *j;
  int nsites, capsites;
  int maxops;
  LLVMValueRef argbuf, resbuf, sadjbuf;
  /* runtime functions */
  LLVMTypeRef t_op, t_oprev, t_grow, t_begin, t_ten, t_lpdf1, t_lpdfg, t_d1, t_lub;
  LLVMValueRef f_op, f_oprev, f_grow, f_begin, f_ten, f_log1p, f_lub;
  Value *kval;   /* konst registers' values */
  /* fused GLM statements (jg_glm_scan): glm[r] is the instruction defining
     temporary r that the statement's observation computes instead (X * b,
     a + X * b), NULL elsewhere; glm_a[m] the register of the statement's a
     (-1: none) for its location m.  NULL when nothing is fused. */
  const IrInstr **glm;
  int *glm_a;
} Gen;

static inline void refuse(Gen *g, const IrInstr *ins, const char *what) {
  if (g->why) return;
  g->why = ins ? (const char *)gc_printf("%s:%d:%d: %s", g->p->file ? g->p->file : "model", ins->pos.line,
                           ins->pos.col, what)
               : what;
}

static inline RevItem *rev_add(Gen *g, RevList *l, uint8_t kind, const IrInstr *ins) {
  RevItem *it = gc_alloc(sizeof(RevItem));
  it->kind = kind;
  it->ins = ins;
  it->pushed = g->depth > 0;
  l->v = gc_grow(l->v, l->n, &l->cap, sizeof(RevItem *));
  l->v[l->n++] = it;
  return it;
}

static inline int save(RevItem *it, LLVMValueRef v) {
  it->save[it->nsave] = v;
  it->stype[it->nsave] = LLVMTypeOf(v);
  return it->nsave++;
}

/* ---- small emitters ---- */

static inline LLVMValueRef cf(Gen *g, double x) { return LLVMConstReal(g->f64, x); }
static inline LLVMValueRef ci(Gen *g, int64_t x) { return LLVMConstInt(g->i64, (unsigned long long)x, 1); }

static inline LLVMValueRef entry_alloca(Gen *g, LLVMTypeRef t, const char *name) {
  LLVMBuilderRef b = LLVMCreateBuilderInContext(g->C);
  LLVMPositionBuilderBefore(b, g->entry_end);
  LLVMValueRef a = LLVMBuildAlloca(b, t, name);
  LLVMDisposeBuilder(b);
  return a;
}

static inline LLVMValueRef call(Gen *g, LLVMTypeRef t, LLVMValueRef f, LLVMValueRef *a, int n) {
  return LLVMBuildCall2(g->B, t, f, a, (unsigned)n, "");
}

static inline LLVMValueRef intrinsic1(Gen *g, const char *name, LLVMValueRef x) {
  LLVMTypeRef ft = LLVMFunctionType(g->f64, &g->f64, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(g->M, name);
  if (!f) f = LLVMAddFunction(g->M, name, ft);
  return call(g, ft, f, &x, 1);
}

static inline LLVMValueRef intrinsic2(Gen *g, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMTypeRef ps[2] = {g->f64, g->f64};
  LLVMTypeRef ft = LLVMFunctionType(g->f64, ps, 2, 0);
  LLVMValueRef f = LLVMGetNamedFunction(g->M, name);
  if (!f) f = LLVMAddFunction(g->M, name, ft);
  LLVMValueRef a[2] = {x, y};
  return call(g, ft, f, a, 2);
}

static inline LLVMValueRef gep(Gen *g, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildGEP2(g->B, t, base, &idx, 1, "");
}

static inline LLVMValueRef field(Gen *g, LLVMValueRef base, int off) {
  LLVMValueRef o = ci(g, off);
  return LLVMBuildGEP2(g->B, g->i8, base, &o, 1, "");
}

static inline LLVMBasicBlockRef new_bb(Gen *g, const char *name) {
  return LLVMAppendBasicBlockInContext(g->C, g->fn, name);
}

/* branch to the error exit unless ok */
static inline void check(Gen *g, LLVMValueRef ok) {
  LLVMBasicBlockRef cont = new_bb(g, "ok");
  LLVMBuildCondBr(g->B, ok, cont, g->errbb);
  LLVMPositionBuilderAtEnd(g->B, cont);
}

/* ---- registers ---- */

static inline LLVMTypeRef class_type(Gen *g, uint8_t rc) {
  switch (rc) {
  case RC_INT: return g->i64;
  case RC_BOOL: return g->i1;
  case RC_REAL: return g->f64;
  default: return g->ptr;
  }
}

/* A field of data register r's slot in the bound data set (JitDataReg),
   loaded once in the entry block: data are arguments of the code. */
static inline LLVMValueRef data_slot(Gen *g, int r, int off, LLVMTypeRef t) {
  LLVMBuilderRef b = LLVMCreateBuilderInContext(g->C);
  LLVMPositionBuilderBefore(b, g->entry_end);
  if (!g->dregs) {
    LLVMValueRef o = ci(g, (int64_t)offsetof(JitCtx, dregs));
    g->dregs = LLVMBuildLoad2(b, g->ptr, LLVMBuildGEP2(b, g->i8, g->cx, &o, 1, ""), "dregs");
  }
  LLVMValueRef o = ci(g, (int64_t)r * (int64_t)sizeof(JitDataReg) + off);
  LLVMValueRef v = LLVMBuildLoad2(b, t, LLVMBuildGEP2(b, g->i8, g->dregs, &o, 1, ""), "");
  LLVMDisposeBuilder(b);
  return v;
}

/* A data register's value: ints and bools (sizes, bounds) folded in as
   constants; reals and containers read from the bound data set. */
static inline LLVMValueRef data_value(Gen *g, int r) {
  if (g->datav[r]) return g->datav[r];
  Value v = g->data[r];
  LLVMValueRef c;
  switch (g->rc[r]) {
  case RC_INT: c = ci(g, v.k == V_INT ? v.i : (int64_t)val_as_real(v)); break;
  case RC_BOOL: c = LLVMConstInt(g->i1, v.k == V_BOOL ? v.b : v.i != 0, 0); break;
  case RC_REAL: c = data_slot(g, r, (int)offsetof(JitDataReg, r), g->f64); break;
  default: c = data_slot(g, r, (int)offsetof(JitDataReg, b), g->ptr); break;
  }
  return g->datav[r] = c;
}

static inline LLVMValueRef rd(Gen *g, int r) {
  if (g->isdata[r]) return data_value(g, r);
  return LLVMBuildLoad2(g->B, class_type(g, g->rc[r]), g->slot[r], "");
}

static inline void wr(Gen *g, int r, LLVMValueRef v) { LLVMBuildStore(g->B, v, g->slot[r]); }

/* A scalar of class `from` as class `to` (int, bool, real), with C's conversions. */
static inline LLVMValueRef conv(Gen *g, LLVMValueRef v, uint8_t from, uint8_t to) {
  if (from == to) return v;
  switch (to) {
  case RC_REAL:
    return from == RC_INT ? LLVMBuildSIToFP(g->B, v, g->f64, "") : LLVMBuildUIToFP(g->B, v, g->f64, "");
  case RC_INT:
    return from == RC_BOOL ? LLVMBuildZExt(g->B, v, g->i64, "") : LLVMBuildFPToSI(g->B, v, g->i64, "");
  case RC_BOOL:
    return from == RC_INT ? LLVMBuildICmp(g->B, LLVMIntNE, v, ci(g, 0), "")
                          : LLVMBuildFCmp(g->B, LLVMRealUNE, v, cf(g, 0), "");
  default: return v;
  }
}

static inline LLVMValueRef as_f64(Gen *g, int r) { return conv(g, rd(g, r), g->rc[r], RC_REAL); }
static inline LLVMValueRef as_i64(Gen *g, int r) { return conv(g, rd(g, r), g->rc[r], RC_INT); }

/* The truth of a condition register (bool, or a number that is not 0). */
static inline LLVMValueRef truthy(Gen *g, int r) {
  uint8_t rc = g->rc[r];
  if (rc != RC_BOOL && rc != RC_INT && rc != RC_REAL) return LLVMConstInt(g->i1, 0, 0);
  return conv(g, rd(g, r), rc, RC_BOOL);
}

/* Store a scalar value of class `from` into register r, converting. */
static inline void wr_conv(Gen *g, int r, LLVMValueRef v, uint8_t from) { wr(g, r, conv(g, v, from, g->rc[r])); }

static inline bool active(Gen *g, int r) { return r >= 0 && !g->isdata[r] && g->act[r]; }

/* ---- the stack of saved values ---- */

static inline LLVMValueRef to_word(Gen *g, LLVMValueRef v) {
  LLVMTypeRef t = LLVMTypeOf(v);
  if (t == g->f64) return v;
  if (t == g->ptr) v = LLVMBuildPtrToInt(g->B, v, g->i64, "");
  else if (t == g->i1) v = LLVMBuildZExt(g->B, v, g->i64, "");
  return LLVMBuildBitCast(g->B, v, g->f64, "");
}

static inline LLVMValueRef from_word(Gen *g, LLVMValueRef w, LLVMTypeRef t) {
  if (t == g->f64) return w;
  LLVMValueRef v = LLVMBuildBitCast(g->B, w, g->i64, "");
  if (t == g->ptr) return LLVMBuildIntToPtr(g->B, v, g->ptr, "");
  if (t == g->i1) return LLVMBuildTrunc(g->B, v, g->i1, "");
  return v;
}

static inline void push_saved(Gen *g, RevItem *it) {
  if (!it->pushed || it->nsave == 0 || g->fwd) return;
  LLVMValueRef sp = LLVMBuildLoad2(g->B, g->i64, g->sp, "sp");
  LLVMValueRef end = LLVMBuildAdd(g->B, sp, ci(g, it->nsave), "");
  LLVMValueRef cap = LLVMBuildLoad2(g->B, g->i64, field(g, g->cx, 8), "cap");
  LLVMBasicBlockRef grow = new_bb(g, "grow"), cont = new_bb(g, "pushed");
  LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSGT, end, cap, ""), grow, cont);
  LLVMPositionBuilderAtEnd(g->B, grow);
  LLVMValueRef a[2] = {g->cx, end};
  call(g, g->t_grow, g->f_grow, a, 2);
  LLVMBuildBr(g->B, cont);
  LLVMPositionBuilderAtEnd(g->B, cont);
  LLVMValueRef base = LLVMBuildLoad2(g->B, g->ptr, g->cx, "stk");
  for (int i = 0; i < it->nsave; i++) {
    LLVMValueRef p = gep(g, g->f64, base, LLVMBuildAdd(g->B, sp, ci(g, i), ""));
    LLVMBuildStore(g->B, to_word(g, it->save[i]), p);
  }
  LLVMBuildStore(g->B, end, g->sp);
}

static inline void pop_saved(Gen *g, RevItem *it) {
  if (!it->pushed || it->nsave == 0) return;
  LLVMValueRef sp = LLVMBuildLoad2(g->B, g->i64, g->sp, "sp");
  LLVMValueRef s0 = LLVMBuildSub(g->B, sp, ci(g, it->nsave), "");
  LLVMValueRef base = LLVMBuildLoad2(g->B, g->ptr, g->cx, "stk");
  for (int i = 0; i < it->nsave; i++) {
    LLVMValueRef p = gep(g, g->f64, base, LLVMBuildAdd(g->B, s0, ci(g, i), ""));
    it->save[i] = from_word(g, LLVMBuildLoad2(g->B, g->f64, p, ""), it->stype[i]);
  }
  LLVMBuildStore(g->B, s0, g->sp);
}

static inline LLVMValueRef adj_of(Gen *g, int r) { return g->adj[r]; }

static inline void adj_add(Gen *g, int r, LLVMValueRef v) {
  LLVMValueRef a = adj_of(g, r);
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, a, ""), v, ""), a);
}

/* adj(dst), which then dies (dst is overwritten by this instruction) */
static inline LLVMValueRef take_adj(Gen *g, int r) {
  LLVMValueRef a = adj_of(g, r);
  LLVMValueRef v = LLVMBuildLoad2(g->B, g->f64, a, "");
  LLVMBuildStore(g->B, cf(g, 0), a);
  return v;
}

static inline bool is_tensor(Type t) {
  return t.ndims == 0 && (t.base == TY_VECTOR || t.base == TY_ROWVEC || t.base == TY_MATRIX);
}
static inline int ten_kind(Type t) { return t.base == TY_VECTOR ? V_VEC : t.base == TY_ROWVEC ? V_ROWVEC : V_MAT; }

/* How a new tensor's numbers start: written over anyway, zero (a sum
   accumulates into them), NaN (a declaration). */
enum { FILL_NONE = 0, FILL_ZERO, FILL_NAN };

bool jg_emit_copy(Gen *g, RevList *l, const IrInstr *ins);
bool jg_emit_ew(Gen *g, RevList *l, const IrInstr *ins);
void jg_emit_rule(Gen *g, const ScalarRule *s, LLVMValueRef a, LLVMValueRef b, LLVMValueRef *v,
                  LLVMValueRef *da, LLVMValueRef *db);
void jg_emit_rule3(Gen *g, const ScalarRule *s, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c,
                   LLVMValueRef *v, LLVMValueRef *da, LLVMValueRef *db, LLVMValueRef *dc,
                   LLVMValueRef *ok);
bool jg_emit_matvec(Gen *g, RevList *l, const IrInstr *ins);
bool jg_emit_observe_native(Gen *g, RevList *l, const IrInstr *ins);
void jg_glm_scan(Gen *g, const IrProgram *p);
void jg_rev_glm(Gen *g, RevItem *it);
bool jg_emit_lpdf_native(Gen *g, RevList *l, const IrInstr *ins);
bool jg_emit_sample_native(Gen *g, RevList *l, const IrInstr *ins);
bool jg_emit_cbuiltin(Gen *g, RevList *l, const IrInstr *ins);
bool jg_emit_rng_native(Gen *g, RevList *l, const IrInstr *ins);
void jg_rev_cbuiltin(Gen *g, RevItem *it);
void jg_rev_lpdfv(Gen *g, RevItem *it);
void jg_kernel_body(Gen *g, const DistFamily *f, LLVMValueRef n, LLVMValueRef *arg);
void jg_rev_ew(Gen *g, RevItem *it);
void jg_rev_copy(Gen *g, RevItem *it);
void jg_rev_matvec(Gen *g, RevItem *it);
void jg_rev_observe(Gen *g, RevItem *it);
void jg_rev_sample(Gen *g, RevItem *it);
LLVMValueRef jg_new_ten(Gen *g, int kind, LLVMValueRef rows, LLVMValueRef cols, bool active,
                            int fill);
void jg_wr_ten(Gen *g, int r, LLVMValueRef box, LLVMValueRef rows, LLVMValueRef cols);
/* An operator of two i64 integers as the interpreter computes it (checks
   included; a comparison gives an i1); NULL when op has no integer form. */
LLVMValueRef jg_int_binary(Gen *g, int op, LLVMValueRef x, LLVMValueRef y);

/* ir/jit_ode.c: the IR_ODE site just made gets its right-hand side compiled
   into g's module (ppl_ode_SITE), or the reason it is not; jg_ode_link binds
   the sites' functions once their module is loaded. */
void jg_ode_site(Gen *g, const IrInstr *ins);
void jg_ode_link(Jit *j);
/* for (i = lo; i < hi; i += step) body(i): every loop the generator emits */
typedef void (*LoopBody)(Gen *g, LLVMValueRef i, void *ud);

/* Loops longer than this (or of a length known only at run time) are not
 * unrolled: the data's sizes are constants in the generated code, and O2
 * unrolling every loop over the rows of a data set made the code of a
 * 5000-row regression ten times longer and its compilation five times
 * slower, for no faster gradient.  Short loops (a vector of a few
 * coefficients) are still unrolled, where it pays. */
#define JIT_UNROLL_MAX 16

/* The latch of a loop that must not be unrolled carries the loop metadata
 * !{self, !{"llvm.loop.unroll.disable"}}: a self-referential node, made from
 * a temporary one. */
static inline void no_unroll(Gen *g, LLVMValueRef latch) {
  LLVMMetadataRef key = LLVMMDStringInContext2(g->C, "llvm.loop.unroll.disable", 24);
  LLVMMetadataRef opt = LLVMMDNodeInContext2(g->C, &key, 1);
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(g->C, NULL, 0);
  LLVMMetadataRef ops[2] = {tmp, opt};
  LLVMMetadataRef id = LLVMMDNodeInContext2(g->C, ops, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, id);
  LLVMSetMetadata(latch, LLVMGetMDKindIDInContext(g->C, "llvm.loop", 9),
                  LLVMMetadataAsValue(g->C, id));
}

static inline void emit_range(Gen *g, LLVMValueRef lo, LLVMValueRef hi, int step, LoopBody body,
                              void *ud) {
  LLVMValueRef k = entry_alloca(g, g->i64, "i");
  LLVMBuildStore(g->B, lo, k);
  LLVMBasicBlockRef hb = new_bb(g, "loop"), bb = new_bb(g, "body"), xb = new_bb(g, "end");
  LLVMBuildBr(g->B, hb);
  LLVMPositionBuilderAtEnd(g->B, hb);
  LLVMValueRef i = LLVMBuildLoad2(g->B, g->i64, k, "");
  LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, i, hi, ""), bb, xb);
  LLVMPositionBuilderAtEnd(g->B, bb);
  body(g, i, ud);
  LLVMBuildStore(g->B, LLVMBuildAdd(g->B, LLVMBuildLoad2(g->B, g->i64, k, ""), ci(g, step), ""), k);
  LLVMValueRef latch = LLVMBuildBr(g->B, hb);
  bool shortl = LLVMIsAConstantInt(lo) && LLVMIsAConstantInt(hi) &&
                LLVMConstIntGetSExtValue(hi) - LLVMConstIntGetSExtValue(lo) <= JIT_UNROLL_MAX * step;
  if (!shortl) no_unroll(g, latch);
  LLVMPositionBuilderAtEnd(g->B, xb);
}

static inline void emit_loop(Gen *g, LLVMValueRef n, LoopBody body, void *ud) {
  emit_range(g, ci(g, 0), n, 1, body, ud);
}

#endif

#endif
