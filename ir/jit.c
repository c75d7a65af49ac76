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
 * Everything else (container arithmetic, builtins, distributions, latents)
 * is a call into ir/jit_rt.c, whose forward call returns a record that the
 * reverse part hands back.
 */
#include "jit.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../parser/ast.h"
#include "interp_ops.h"
#include "jit_rt.h"
#include "ppl_config.h"

#if PPL_HAVE_LLVM
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
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
  double draw_ms;
  bool keep_ir;
  int capsites;
  JitSite *sites;
  int nsites;
  JitBox **boxes; /* the data containers the code refers to */
  int nboxes;
  void **keep;    /* other memory it refers to */
  int nkeep;
  JitLatents lat;
  const Interp *in;
  /* what is compiled: in's program, or a copy with its calls inlined
     (jit_program), and main's registers after the data block, sized for it */
  const IrProgram *prog;
  const Value *data;
  const char *gen_why; /* the generated block's calls could not be inlined */
  size_t dim;
  const char *ir_text;
  double ms;
#if PPL_HAVE_LLVM
  LLVMOrcLLJITRef lljit;
#endif
};

const JitSite *jit_site(const Jit *j, int i) { return &j->sites[i]; }

/* Memory the code refers to: the Jit (a root) keeps it alive. */
static void jit_keep(Jit *j, void *p) {
  void **k = gc_alloc(sizeof(void *) * (size_t)(j->nkeep + 1));
  if (j->nkeep) memcpy(k, j->keep, sizeof(void *) * (size_t)j->nkeep);
  k[j->nkeep++] = p;
  j->keep = k;
}
const JitLatents *jit_latents(const Jit *j) { return &j->lat; }
const Interp *jit_interp(const Jit *j) { return j->in; }
const char *jit_llvm_ir(const Jit *j) { return j->ir_text; }
double jit_compile_ms(const Jit *j) { return j->ms; }

#if PPL_HAVE_LLVM
static JitFn compile_draw(Jit *j);
static double now_ms(void);
#endif

bool jit_has_draw(const Jit *j) {
#if PPL_HAVE_LLVM
  Jit *m = (Jit *)j; /* compiles on first use, under the lock */
  pthread_mutex_lock(&m->mu);
  if (!m->draw_tried) {
    m->draw_tried = true;
    double t0 = now_ms();
    m->draw = compile_draw(m);
    m->draw_ms = now_ms() - t0;
  }
  pthread_mutex_unlock(&m->mu);
#endif
  return j->draw != NULL;
}
const char *jit_draw_refusal(const Jit *j) { return j->draw_why; }
double jit_draw_ms(const Jit *j) { return j->draw_ms; }

Value *jit_draw(JitCtx *cx, const double *theta, uint64_t seed, uint64_t stream) {
  const Jit *j = cx->jit;
  if (!cx->draw_ready) {
    if (!jit_has_draw(j)) return NULL;
    cx->draw_ready = true;
  }
  const IrProgram *p = interp_program(j->in);
  rng_seed(&cx->rng, seed, stream);
  cx->outputs = gc_alloc(sizeof(Value) * (size_t)(p->noutputs ? p->noutputs : 1));
  double lp;
  if (j->draw(cx, theta, NULL, &lp) != 0) return NULL;
  return cx->outputs;
}

bool jit_eval(JitCtx *cx, const double *theta, double *lp, double *grad) {
  const Jit *j = cx->jit;
  if (grad) memset(grad, 0, sizeof(double) * j->dim);
  return j->fn(cx, theta, grad, lp) == 0;
}

#if !PPL_HAVE_LLVM

Jit *jit_compile(const Interp *in, const JitLatents *lat, size_t dim, bool keep_ir,
                 const char **why) {
  (void)in, (void)lat, (void)dim, (void)keep_ir;
  *why = "ppl was built without LLVM";
  return NULL;
}
void jit_free(Jit *j) { (void)j; }

#else

/* ---- register classes and activity ---- */

enum { RC_NONE = 0, RC_INT, RC_BOOL, RC_REAL, RC_BOX, RC_BAD };

static uint8_t reg_class(Type t) {
  if (t.ndims > 0) return t.base == TY_STRING ? RC_BAD : RC_BOX;
  switch (t.base) {
  case TY_INT: return RC_INT;
  case TY_BOOL: return RC_BOOL;
  case TY_REAL: return RC_REAL;
  case TY_VECTOR: case TY_ROWVEC: case TY_MATRIX: return RC_BOX;
  default: return RC_BAD;
  }
}

static bool real_based(Type t) {
  return t.base == TY_REAL || t.base == TY_VECTOR || t.base == TY_ROWVEC || t.base == TY_MATRIX;
}

/* ---- what the reverse part needs of each forward instruction ---- */

#define MAX_SAVE 8
#define MAX_PART 4

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
  int64_t *krows, *kcols; /* shape of a tensor register's value where known here, else -1 */
  int simd;      /* vector width of the host for densities (2, 4, 8), 0 without libmvec */
  const char *mvec; /* libmvec's name prefix for that width: "_ZGVeN8v_" */
  int vw;        /* the width being emitted now (0: scalars) */
  const Value *data;
  LLVMValueRef *datav; /* folded data registers (lazily) */
  const IrProgram *p;
  const IrFunc *f;
  int depth;
  const char *why;
  Jit *j;
  int nsites, capsites;
  int maxops;
  LLVMValueRef argbuf, resbuf, sadjbuf;
  /* runtime functions */
  LLVMTypeRef t_op, t_oprev, t_grow, t_begin, t_ten, t_lpdf1, t_grad1, t_d1, t_lub;
  LLVMValueRef f_op, f_oprev, f_grow, f_begin, f_ten, f_log1p, f_lub;
  Value *kval;   /* konst registers' values */
} Gen;

static void refuse(Gen *g, const IrInstr *ins, const char *what) {
  if (g->why) return;
  g->why = ins ? (const char *)gc_printf("%s:%d:%d: %s", g->p->file ? g->p->file : "model", ins->pos.line,
                           ins->pos.col, what)
               : what;
}

static RevItem *rev_add(Gen *g, RevList *l, uint8_t kind, const IrInstr *ins) {
  RevItem *it = gc_alloc(sizeof(RevItem));
  it->kind = kind;
  it->ins = ins;
  it->pushed = g->depth > 0;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 8;
    RevItem **v = gc_alloc(sizeof(RevItem *) * (size_t)cap);
    if (l->n) memcpy(v, l->v, sizeof(RevItem *) * (size_t)l->n);
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = it;
  return it;
}

static int save(RevItem *it, LLVMValueRef v) {
  it->save[it->nsave] = v;
  it->stype[it->nsave] = LLVMTypeOf(v);
  return it->nsave++;
}

/* ---- small emitters ---- */

static LLVMValueRef cf(Gen *g, double x) { return LLVMConstReal(g->f64, x); }
static LLVMValueRef ci(Gen *g, int64_t x) { return LLVMConstInt(g->i64, (unsigned long long)x, 1); }

static LLVMValueRef entry_alloca(Gen *g, LLVMTypeRef t, const char *name) {
  LLVMBuilderRef b = LLVMCreateBuilderInContext(g->C);
  LLVMPositionBuilderBefore(b, g->entry_end);
  LLVMValueRef a = LLVMBuildAlloca(b, t, name);
  LLVMDisposeBuilder(b);
  return a;
}

static LLVMValueRef call(Gen *g, LLVMTypeRef t, LLVMValueRef f, LLVMValueRef *a, int n) {
  return LLVMBuildCall2(g->B, t, f, a, (unsigned)n, "");
}

static LLVMValueRef intrinsic1(Gen *g, const char *name, LLVMValueRef x) {
  LLVMTypeRef ft = LLVMFunctionType(g->f64, &g->f64, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(g->M, name);
  if (!f) f = LLVMAddFunction(g->M, name, ft);
  return call(g, ft, f, &x, 1);
}

static LLVMValueRef intrinsic2(Gen *g, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMTypeRef ps[2] = {g->f64, g->f64};
  LLVMTypeRef ft = LLVMFunctionType(g->f64, ps, 2, 0);
  LLVMValueRef f = LLVMGetNamedFunction(g->M, name);
  if (!f) f = LLVMAddFunction(g->M, name, ft);
  LLVMValueRef a[2] = {x, y};
  return call(g, ft, f, a, 2);
}

static LLVMValueRef gep(Gen *g, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildGEP2(g->B, t, base, &idx, 1, "");
}

static LLVMValueRef field(Gen *g, LLVMValueRef base, int off) {
  LLVMValueRef o = ci(g, off);
  return LLVMBuildGEP2(g->B, g->i8, base, &o, 1, "");
}

static LLVMBasicBlockRef new_bb(Gen *g, const char *name) {
  return LLVMAppendBasicBlockInContext(g->C, g->fn, name);
}

/* branch to the error exit unless ok */
static void check(Gen *g, LLVMValueRef ok) {
  LLVMBasicBlockRef cont = new_bb(g, "ok");
  LLVMBuildCondBr(g->B, ok, cont, g->errbb);
  LLVMPositionBuilderAtEnd(g->B, cont);
}

/* ---- registers ---- */

static LLVMTypeRef class_type(Gen *g, uint8_t rc) {
  switch (rc) {
  case RC_INT: return g->i64;
  case RC_BOOL: return g->i1;
  case RC_REAL: return g->f64;
  default: return g->ptr;
  }
}

/* A data register's value as a constant: scalars folded, containers as a
   pointer to a box made once (data never changes). */
static LLVMValueRef data_value(Gen *g, int r) {
  if (g->datav[r]) return g->datav[r];
  Value v = g->data[r];
  LLVMValueRef c;
  switch (g->rc[r]) {
  case RC_INT: c = ci(g, v.k == V_INT ? v.i : (int64_t)val_as_real(v)); break;
  case RC_BOOL: c = LLVMConstInt(g->i1, v.k == V_BOOL ? v.b : v.i != 0, 0); break;
  case RC_REAL: c = cf(g, val_as_real(v)); break;
  default: {
    JitBox *b = gc_alloc(sizeof(JitBox));
    b->v = v;
    b->n = (int64_t)val_numel(v);
    b->data = true;
    if (v.k == V_ARR) { /* flat once, for the runtime's loops */
      b->flat = gc_alloc_atomic(sizeof(double) * (size_t)(b->n ? b->n : 1));
      val_flatten(v, b->flat);
    }
    c = LLVMConstIntToPtr(LLVMConstInt(g->i64, (unsigned long long)(uintptr_t)b, 0), g->ptr);
    /* the code refers to b: the Jit (a root) keeps it alive */
    Jit *j = g->j;
    JitBox **nb = gc_alloc(sizeof(JitBox *) * (size_t)(j->nboxes + 1));
    if (j->nboxes) memcpy(nb, j->boxes, sizeof(JitBox *) * (size_t)j->nboxes);
    nb[j->nboxes++] = b;
    j->boxes = nb;
    break;
  }
  }
  return g->datav[r] = c;
}

static LLVMValueRef rd(Gen *g, int r) {
  if (g->isdata[r]) return data_value(g, r);
  return LLVMBuildLoad2(g->B, class_type(g, g->rc[r]), g->slot[r], "");
}

static void wr(Gen *g, int r, LLVMValueRef v) { LLVMBuildStore(g->B, v, g->slot[r]); }

/* A scalar of class `from` as class `to` (int, bool, real), with C's conversions. */
static LLVMValueRef conv(Gen *g, LLVMValueRef v, uint8_t from, uint8_t to) {
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

static LLVMValueRef as_f64(Gen *g, int r) { return conv(g, rd(g, r), g->rc[r], RC_REAL); }
static LLVMValueRef as_i64(Gen *g, int r) { return conv(g, rd(g, r), g->rc[r], RC_INT); }

/* The truth of a condition register (bool, or a number that is not 0). */
static LLVMValueRef truthy(Gen *g, int r) {
  uint8_t rc = g->rc[r];
  if (rc != RC_BOOL && rc != RC_INT && rc != RC_REAL) return LLVMConstInt(g->i1, 0, 0);
  return conv(g, rd(g, r), rc, RC_BOOL);
}

/* Store a scalar value of class `from` into register r, converting. */
static void wr_conv(Gen *g, int r, LLVMValueRef v, uint8_t from) { wr(g, r, conv(g, v, from, g->rc[r])); }

static bool active(Gen *g, int r) { return r >= 0 && !g->isdata[r] && g->act[r]; }

/* ---- the stack of saved values ---- */

static LLVMValueRef to_word(Gen *g, LLVMValueRef v) {
  LLVMTypeRef t = LLVMTypeOf(v);
  if (t == g->f64) return v;
  if (t == g->ptr) v = LLVMBuildPtrToInt(g->B, v, g->i64, "");
  else if (t == g->i1) v = LLVMBuildZExt(g->B, v, g->i64, "");
  return LLVMBuildBitCast(g->B, v, g->f64, "");
}

static LLVMValueRef from_word(Gen *g, LLVMValueRef w, LLVMTypeRef t) {
  if (t == g->f64) return w;
  LLVMValueRef v = LLVMBuildBitCast(g->B, w, g->i64, "");
  if (t == g->ptr) return LLVMBuildIntToPtr(g->B, v, g->ptr, "");
  if (t == g->i1) return LLVMBuildTrunc(g->B, v, g->i1, "");
  return v;
}

static void push_saved(Gen *g, RevItem *it) {
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

static void pop_saved(Gen *g, RevItem *it) {
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

/* ---- runtime call sites ---- */

static JitSite *site_new(Gen *g, const IrInstr *ins, int nops, int *site_index) {
  Jit *j = g->j;
  if (g->nsites == g->capsites) {
    int cap = g->capsites ? 2 * g->capsites : 16;
    JitSite *s = gc_alloc(sizeof(JitSite) * (size_t)cap);
    if (g->nsites) memcpy(s, j->sites, sizeof(JitSite) * (size_t)g->nsites);
    j->sites = s;
    g->capsites = cap;
  }
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
                               op_type_name(g->f->regtypes[ops[k]])));
      return;
    }
  if (dst >= 0 && g->rc[dst] == RC_BAD) {
    refuse(g, ins, gc_printf("a %s value is not compiled", op_type_name(g->f->regtypes[dst])));
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

static void emit_binary_scalar(Gen *g, RevList *l, const IrInstr *ins) {
  int a = ins->args[0], b = ins->args[1], d = ins->dst;
  uint8_t ca = g->rc[a], cb = g->rc[b];
  int op = ins->sub;
  bool ints = ca != RC_REAL && cb != RC_REAL;
  bool cmp = op == OP_EQ || op == OP_NE || op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE;
  if (ints && op != OP_POW) {
    LLVMValueRef x = as_i64(g, a), y = as_i64(g, b), z = NULL;
    if (cmp) {
      LLVMIntPredicate p = op == OP_EQ ? LLVMIntEQ : op == OP_NE ? LLVMIntNE : op == OP_LT ? LLVMIntSLT
                         : op == OP_LE ? LLVMIntSLE : op == OP_GT ? LLVMIntSGT : LLVMIntSGE;
      wr_conv(g, d, LLVMBuildICmp(g->B, p, x, y, ""), RC_BOOL);
      return;
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
      z = LLVMBuildExtractValue(g->B, r, 0, "");
    } else if (op == OP_DIV || op == OP_EDIV || op == OP_IDIV || op == OP_MOD) {
      check(g, LLVMBuildICmp(g->B, LLVMIntNE, y, ci(g, 0), ""));
      LLVMValueRef m1 = LLVMBuildICmp(g->B, LLVMIntEQ, y, ci(g, -1), "");
      if (op == OP_MOD) { /* x % -1 is 0 (and x % y never overflows then) */
        LLVMValueRef ysafe = LLVMBuildSelect(g->B, m1, ci(g, 1), y, "");
        z = LLVMBuildSelect(g->B, m1, ci(g, 0), LLVMBuildSRem(g->B, x, ysafe, ""), "");
      } else {
        LLVMValueRef bad = LLVMBuildAnd(g->B, m1, LLVMBuildICmp(g->B, LLVMIntEQ, x, ci(g, INT64_MIN), ""), "");
        check(g, LLVMBuildNot(g->B, bad, ""));
        z = LLVMBuildSDiv(g->B, x, y, "");
      }
    } else {
      refuse(g, ins, gc_printf("operator '%s' on integers is not compiled", ast_op_name((AstOp)op)));
      return;
    }
    wr_conv(g, d, z, RC_INT);
    return;
  }
  LLVMValueRef x = as_f64(g, a), y = as_f64(g, b), z;
  if (cmp) {
    LLVMRealPredicate p = op == OP_EQ ? LLVMRealOEQ : op == OP_NE ? LLVMRealUNE : op == OP_LT ? LLVMRealOLT
                        : op == OP_LE ? LLVMRealOLE : op == OP_GT ? LLVMRealOGT : LLVMRealOGE;
    wr_conv(g, d, LLVMBuildFCmp(g->B, p, x, y, ""), RC_BOOL);
    return;
  }
  bool want = active(g, d) && (active(g, a) || active(g, b));
  RevItem *it = want ? scalar_item(g, l, ins) : NULL;
  if (!want && active(g, d)) { /* dst overwritten by a constant: its adjoint dies */
    it = scalar_item(g, l, ins);
  }
  switch (op) {
  case OP_ADD: z = LLVMBuildFAdd(g->B, x, y, ""); break;
  case OP_SUB: z = LLVMBuildFSub(g->B, x, y, ""); break;
  case OP_MUL: case OP_EMUL: z = LLVMBuildFMul(g->B, x, y, ""); break;
  case OP_DIV: case OP_EDIV: z = LLVMBuildFDiv(g->B, x, y, ""); break;
  case OP_POW: z = intrinsic2(g, "llvm.pow.f64", x, y); break;
  case OP_MOD: z = LLVMBuildFRem(g->B, x, y, ""); break;
  default:
    refuse(g, ins, gc_printf("operator '%s' on reals is not compiled", ast_op_name((AstOp)op)));
    return;
  }
  if (want) {
    bool aa = active(g, a), ab = active(g, b);
    switch (op) {
    case OP_ADD:
      if (aa) part(it, a, -1, 1);
      if (ab) part(it, b, -1, 1);
      break;
    case OP_SUB:
      if (aa) part(it, a, -1, 1);
      if (ab) part(it, b, -1, -1);
      break;
    case OP_MUL: case OP_EMUL:
      if (aa) part(it, a, save(it, y), 0);
      if (ab) part(it, b, save(it, x), 0);
      break;
    case OP_DIV: case OP_EDIV:
      if (aa) part(it, a, save(it, LLVMBuildFDiv(g->B, cf(g, 1), y, "")), 0);
      if (ab) part(it, b, save(it, LLVMBuildFDiv(g->B, LLVMBuildFNeg(g->B, z, ""), y, "")), 0);
      break;
    case OP_POW:
      if (aa) {
        LLVMValueRef pw = intrinsic2(g, "llvm.pow.f64", x, LLVMBuildFSub(g->B, y, cf(g, 1), ""));
        LLVMValueRef dx = LLVMBuildFMul(g->B, y, pw, "");
        dx = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOEQ, y, cf(g, 0), ""), cf(g, 0), dx, "");
        part(it, a, save(it, dx), 0);
      }
      if (ab) {
        LLVMValueRef dy = LLVMBuildFMul(g->B, z, intrinsic1(g, "llvm.log.f64", x), "");
        dy = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOEQ, x, cf(g, 0), ""), cf(g, 0), dy, "");
        part(it, b, save(it, dy), 0);
      }
      break;
    case OP_MOD:
      if (aa) part(it, a, -1, 1);
      if (ab) {
        LLVMValueRef q = intrinsic1(g, "llvm.trunc.f64", LLVMBuildFDiv(g->B, x, y, ""));
        part(it, b, save(it, LLVMBuildFNeg(g->B, q, "")), 0);
      }
      break;
    }
  }
  wr_conv(g, d, z, RC_REAL);
  if (it) push_saved(g, it);
}

static void emit_unary_scalar(Gen *g, RevList *l, const IrInstr *ins) {
  int a = ins->args[0], d = ins->dst;
  uint8_t ca = g->rc[a];
  switch (ins->sub) {
  case OP_NOT: wr_conv(g, d, LLVMBuildNot(g->B, truthy(g, a), ""), RC_BOOL); return;
  case OP_PLUS:
  case OP_NEG: {
    bool neg = ins->sub == OP_NEG;
    if (ca == RC_REAL) {
      LLVMValueRef x = rd(g, a);
      if (active(g, d)) {
        RevItem *it = scalar_item(g, l, ins);
        if (active(g, a)) part(it, a, -1, neg ? -1 : 1);
      }
      wr_conv(g, d, neg ? LLVMBuildFNeg(g->B, x, "") : x, RC_REAL);
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

static void emit_index(Gen *g, RevList *l, const IrInstr *ins) {
  int src = ins->args[0], d = ins->dst;
  Type t = g->f->regtypes[src];
  if (g->rc[d] == RC_REAL || g->rc[d] == RC_INT) {
    LLVMValueRef box = rd(g, src);
    LLVMValueRef i = flat_index(g, ins, src, box);
    if (i) {
      bool ints = t.base == TY_INT;
      LLVMValueRef p = elem_ptr(g, box, t, i);
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
    LLVMValueRef box = rd(g, d);
    LLVMValueRef i = flat_index(g, ins, d, box);
    if (i) {
      LLVMValueRef p = elem_ptr(g, box, t, i);
      if (t.base == TY_INT) LLVMBuildStore(g->B, as_i64(g, src), p);
      else LLVMBuildStore(g->B, as_f64(g, src), p);
      if (t.ndims > 0) /* an array element is a Value: say what it holds */
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

static LLVMValueRef adj_of(Gen *g, int r) { return g->adj[r]; }

static void adj_add(Gen *g, int r, LLVMValueRef v) {
  LLVMValueRef a = adj_of(g, r);
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, a, ""), v, ""), a);
}

/* adj(dst), which then dies (dst is overwritten by this instruction) */
static LLVMValueRef take_adj(Gen *g, int r) {
  LLVMValueRef a = adj_of(g, r);
  LLVMValueRef v = LLVMBuildLoad2(g->B, g->f64, a, "");
  LLVMBuildStore(g->B, cf(g, 0), a);
  return v;
}

/* ---- native container arithmetic and densities ----
 *
 * The hot operations of typical models lowered to loops in the compiled
 * code itself: element-wise arithmetic on vectors and matrices, container
 * copies, and the latents and observations of scalar families.  Each checks
 * what the interpreter checks (sizes, parameter domains) and leaves the
 * message to it: a failed check is a runtime error of the compiled code.
 * Cases outside these patterns go through the runtime (emit_site). */

typedef void (*LoopBody)(Gen *g, LLVMValueRef i, void *ud);

/* for (i = 0; i < n; i++) body(i) */
static void emit_loop(Gen *g, LLVMValueRef n, LoopBody body, void *ud) {
  LLVMValueRef k = entry_alloca(g, g->i64, "i");
  LLVMBuildStore(g->B, ci(g, 0), k);
  LLVMBasicBlockRef hb = new_bb(g, "loop"), bb = new_bb(g, "lbody"), xb = new_bb(g, "lend");
  LLVMBuildBr(g->B, hb);
  LLVMPositionBuilderAtEnd(g->B, hb);
  LLVMValueRef i = LLVMBuildLoad2(g->B, g->i64, k, "");
  LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, i, n, ""), bb, xb);
  LLVMPositionBuilderAtEnd(g->B, bb);
  body(g, i, ud);
  LLVMBuildStore(g->B, LLVMBuildAdd(g->B, i, ci(g, 1), ""), k);
  LLVMBuildBr(g->B, hb);
  LLVMPositionBuilderAtEnd(g->B, xb);
}

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
static void wr_ten(Gen *g, int r, LLVMValueRef box, LLVMValueRef rows, LLVMValueRef cols) {
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

static bool is_tensor(Type t) {
  return t.ndims == 0 && (t.base == TY_VECTOR || t.base == TY_ROWVEC || t.base == TY_MATRIX);
}
static int ten_kind(Type t) { return t.base == TY_VECTOR ? V_VEC : t.base == TY_ROWVEC ? V_ROWVEC : V_MAT; }

static void fill_f64(Gen *g, LLVMValueRef p, int64_t n, double v) {
  for (int64_t i = 0; i < n; i++) st_f64(g, p, ci(g, i), cf(g, v));
}

/* How a new tensor's numbers start: written over anyway, zero (a sum
   accumulates into them), NaN (a declaration). */
enum { FILL_NONE = 0, FILL_ZERO, FILL_NAN };

/* A new tensor box.  Outside control flow and with sizes known here it lives
   in the compiled function's frame (one per evaluation, and LLVM sees through
   it); else in the runtime's arena. */
static LLVMValueRef new_ten(Gen *g, int kind, LLVMValueRef rows, LLVMValueRef cols, bool active,
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

static void ew_fwd(Gen *g, LLVMValueRef i, void *ud) {
  EwCtx *e = ud;
  LLVMValueRef x = ew_val(g, e, i, false), y = ew_val(g, e, i, true), z;
  switch (e->op) {
  case OP_ADD: z = LLVMBuildFAdd(g->B, x, y, ""); break;
  case OP_SUB: z = LLVMBuildFSub(g->B, x, y, ""); break;
  case OP_MUL: case OP_EMUL: z = LLVMBuildFMul(g->B, x, y, ""); break;
  default: z = LLVMBuildFDiv(g->B, x, y, ""); break;
  }
  st_f64(g, e->z, i, z);
}

static void ew_rev(Gen *g, LLVMValueRef i, void *ud) {
  EwCtx *e = ud;
  LLVMValueRef gz = ld_f64(g, e->zadj, i);
  st_f64(g, e->zadj, i, cf(g, 0));
  LLVMValueRef da = NULL, db = NULL;
  switch (e->op) {
  case OP_ADD: da = gz, db = gz; break;
  case OP_SUB: da = gz, db = LLVMBuildFNeg(g->B, gz, ""); break;
  case OP_MUL: case OP_EMUL:
    if (e->aadj || e->ga) da = LLVMBuildFMul(g->B, gz, ew_val(g, e, i, true), "");
    if (e->badj || e->gb) db = LLVMBuildFMul(g->B, gz, ew_val(g, e, i, false), "");
    break;
  default: {
    LLVMValueRef x = ew_val(g, e, i, false), y = ew_val(g, e, i, true);
    if (e->aadj || e->ga) da = LLVMBuildFMul(g->B, gz, LLVMBuildFDiv(g->B, cf(g, 1), y, ""), "");
    if (e->badj || e->gb)
      db = LLVMBuildFMul(g->B, gz, LLVMBuildFDiv(g->B, LLVMBuildFNeg(g->B, LLVMBuildFDiv(g->B, x, y, ""), ""), y, ""), "");
    break;
  }
  }
  if (e->aadj) add_f64(g, e->aadj, i, da);
  if (e->badj) add_f64(g, e->badj, i, db);
  /* a scalar operand's adjoint is a sum over the elements: reassociable, so
     the loop vectorises */
  if (e->ga) LLVMBuildStore(g->B, reassoc(LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, e->ga, ""), da, "")), e->ga);
  if (e->gb) LLVMBuildStore(g->B, reassoc(LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, g->f64, e->gb, ""), db, "")), e->gb);
}

static bool emit_ew(Gen *g, RevList *l, const IrInstr *ins) {
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
  LLVMValueRef Z = new_ten(g, ten_kind(td), rows, cols, active(g, d), FILL_NONE);
  e.z = box_data(g, Z);
  emit_loop(g, n, ew_fwd, &e);
  wr_ten(g, d, Z, rows, cols);
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

static void rev_ew(Gen *g, RevItem *it) {
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
static bool emit_copy(Gen *g, RevList *l, const IrInstr *ins) {
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
  LLVMValueRef Z = new_ten(g, ten_kind(td), rows, cols, active(g, d), FILL_NONE);
  CpCtx c = {box_data(g, S), box_data(g, Z)};
  emit_loop(g, n, cp_fwd, &c);
  wr_ten(g, d, Z, rows, cols);
  if (!active(g, d)) return true;
  RevItem *it = rev_add(g, l, RV_COPY, ins);
  save(it, Z);
  save(it, S);
  save(it, n);
  push_saved(g, it);
  return true;
}

static void rev_copy(Gen *g, RevItem *it) {
  int a = it->ins->args[0];
  CpCtx c = {box_adjp(g, it->save[0]), active(g, a) ? box_adjp(g, it->save[1]) : NULL};
  emit_loop(g, it->save[2], c.dst ? cp_rev : cp_zero, &c);
}


/* A data container's numbers (val_flatten order) as a constant of the code,
   and optionally their logarithms, computed once here. */
static LLVMValueRef data_numbers(Gen *g, int r, bool logs) {
  JitBox *b = NULL;
  data_value(g, r);
  for (int i = 0; i < g->j->nboxes; i++)
    if (g->j->boxes[i]->v.t == g->data[r].t) b = g->j->boxes[i];
  if (!b) return NULL;
  const double *d = b->flat ? b->flat : (b->v.k == V_VEC || b->v.k == V_ROWVEC || b->v.k == V_MAT) ? b->v.t->d : NULL;
  if (!d) return NULL;
  if (logs) {
    double *l = gc_alloc_atomic(sizeof(double) * (size_t)(b->n ? b->n : 1));
    for (int64_t i = 0; i < b->n; i++) l[i] = log(d[i]);
    jit_keep(g->j, l);
    d = l;
  }
  return LLVMConstIntToPtr(LLVMConstInt(g->i64, (unsigned long long)(uintptr_t)d, 0), g->ptr);
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

static bool emit_matvec(Gen *g, RevList *l, const IrInstr *ins) {
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
  LLVMValueRef R = new_ten(g, V_VEC, rows, ci(g, 1), active(g, d), FILL_ZERO);
  MvCtx m = {.A = g->isdata[a] ? data_numbers(g, a, false) : NULL, .b = box_data(g, Bv),
             .R = box_data(g, R), .rows = rows};
  if (!m.A) m.A = box_data(g, A);
  emit_loop(g, cols, mv_fwd_k, &m);
  wr_ten(g, d, R, rows, ci(g, 1));
  if (!active(g, d)) return true;
  RevItem *it = rev_add(g, l, RV_MATVEC, ins);
  save(it, R);
  save(it, A);
  save(it, Bv);
  save(it, rows);
  save(it, cols);
  push_saved(g, it);
  return true;
}

static void rev_matvec(Gen *g, RevItem *it) {
  const IrInstr *ins = it->ins;
  int a = ins->args[0], b = ins->args[1];
  MvCtx m = {.A = g->isdata[a] ? data_numbers(g, a, false) : NULL, .b = box_data(g, it->save[2]),
             .g = box_adjp(g, it->save[0]), .rows = it->save[3]};
  if (!m.A) m.A = box_data(g, it->save[1]);
  if (active(g, a)) m.aadj = box_adjp(g, it->save[1]);
  if (active(g, b)) m.badj = box_adjp(g, it->save[2]);
  m.sum = entry_alloca(g, g->f64, "dot");
  emit_loop(g, it->save[4], mv_rev_k, &m);
  emit_loop(g, it->save[3], mv_zero, &m);
}

/* ---- scalar-family densities ---- */

extern const DistFamily dist_normal, dist_bernoulli_logit;

static LLVMValueRef fn_const(Gen *g, const void *f) {
  return LLVMConstIntToPtr(LLVMConstInt(g->i64, (unsigned long long)(uintptr_t)f, 0), g->ptr);
}

/* ---- vector code: densities over several elements at once ----
 * The normal and bernoulli_logit kernels are written once over a width g->vw:
 * 0 emits scalar code, W emits <W x double> code calling glibc's libmvec for
 * exp, log and log1p.  Constants and math go through these helpers. */

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
  if (!f) f = LLVMAddFunction(g->M, nm, ft);
  return call(g, ft, f, &x, 1);
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

/* log density of one x under f with parameters p (f64 values), and its
   partials (dx, dp[]) when want: normal and bernoulli_logit inline, the
   others by calling the family's kernels */
static LLVMValueRef emit_lpdf1(Gen *g, const DistFamily *f, LLVMValueRef x, LLVMValueRef *p,
                               bool want, LLVMValueRef *dx, LLVMValueRef *dp, LLVMValueRef logsig) {
  if (f == &dist_normal) { /* as stdlib/dists/normal.c computes them */
    LLVMValueRef z = LLVMBuildFDiv(g->B, LLVMBuildFSub(g->B, x, p[0], ""), p[1], "");
    LLVMValueRef lp = LLVMBuildFMul(g->B, LLVMBuildFMul(g->B, cv(g, -0.5), z, ""), z, "");
    lp = LLVMBuildFSub(g->B, lp, logsig ? logsig : vmath(g, "log", p[1]), "");
    lp = LLVMBuildFSub(g->B, lp, cv(g, 0.91893853320467274178), "");
    if (want) {
      *dx = LLVMBuildFDiv(g->B, LLVMBuildFNeg(g->B, z, ""), p[1], "");
      dp[0] = LLVMBuildFDiv(g->B, z, p[1], "");
      dp[1] = LLVMBuildFDiv(g->B, LLVMBuildFSub(g->B, LLVMBuildFMul(g->B, z, z, ""), cv(g, 1), ""), p[1], "");
    }
    return lp;
  }
  if (f == &dist_bernoulli_logit) { /* jit_rt.c's bl_fused: one exp, one log1p */
    LLVMValueRef y1 = LLVMBuildFCmp(g->B, LLVMRealOEQ, x, cv(g, 1), "");
    LLVMValueRef y0 = LLVMBuildFCmp(g->B, LLVMRealOEQ, x, cv(g, 0), "");
    LLVMValueRef t = LLVMBuildSelect(g->B, y1, LLVMBuildFNeg(g->B, p[0], ""), p[0], "");
    LLVMValueRef pos = LLVMBuildFCmp(g->B, LLVMRealOGT, t, cv(g, 0), "");
    LLVMValueRef e = vmath(g, "exp", LLVMBuildSelect(g->B, pos, LLVMBuildFNeg(g->B, t, ""), t, ""));
    LLVMValueRef l1 = vmath(g, "log1p", e);
    LLVMValueRef lp = LLVMBuildFNeg(g->B, LLVMBuildSelect(g->B, pos, LLVMBuildFAdd(g->B, t, l1, ""), l1, ""), "");
    LLVMValueRef ok = LLVMBuildOr(g->B, y1, y0, "");
    lp = LLVMBuildSelect(g->B, ok, lp, cv(g, -INFINITY), "");
    if (want) {
      LLVMValueRef nonneg = LLVMBuildFCmp(g->B, LLVMRealOGE, t, cv(g, 0), "");
      LLVMValueRef den = LLVMBuildFAdd(g->B, cv(g, 1), LLVMBuildSelect(g->B, pos, e, cv(g, 1), ""), "");
      LLVMValueRef pr = LLVMBuildSelect(g->B, nonneg, LLVMBuildFDiv(g->B, cv(g, 1), den, ""),
                                        LLVMBuildFDiv(g->B, e, LLVMBuildFAdd(g->B, cv(g, 1), e, ""), ""), "");
      LLVMValueRef d = LLVMBuildSelect(g->B, y1, pr, LLVMBuildFNeg(g->B, pr, ""), "");
      dp[0] = LLVMBuildSelect(g->B, ok, d, cv(g, 0), "");
      *dx = cv(g, 0);
    }
    return lp;
  }
  LLVMValueRef pa = entry_alloca(g, LLVMArrayType2(g->f64, DIST_MAX_PARAMS), "p");
  for (int i = 0; i < f->nparams; i++) st_f64(g, pa, ci(g, i), p[i]);
  LLVMValueRef a[2] = {x, pa};
  LLVMValueRef lp = call(g, g->t_lpdf1, fn_const(g, (const void *)f->lpdf1), a, 2);
  if (want) {
    LLVMValueRef dxa = entry_alloca(g, g->f64, "dx");
    LLVMValueRef dpa = entry_alloca(g, LLVMArrayType2(g->f64, DIST_MAX_PARAMS), "dp");
    LLVMBuildStore(g->B, cf(g, 0), dxa);
    for (int i = 0; i < DIST_MAX_PARAMS; i++) st_f64(g, dpa, ci(g, i), cf(g, 0));
    LLVMValueRef b[4] = {x, pa, dxa, dpa};
    call(g, g->t_grad1, fn_const(g, (const void *)f->grad1), b, 4);
    *dx = LLVMBuildLoad2(g->B, g->f64, dxa, "");
    for (int i = 0; i < f->nparams; i++) dp[i] = ld_f64(g, dpa, ci(g, i));
    /* the interpreter records no partials where the density is not finite */
    LLVMValueRef fin = LLVMBuildFCmp(g->B, LLVMRealOLT, intrinsic1(g, "llvm.fabs.f64", lp), cf(g, INFINITY), "");
    *dx = LLVMBuildSelect(g->B, fin, *dx, cf(g, 0), "");
    for (int i = 0; i < f->nparams; i++) dp[i] = LLVMBuildSelect(g->B, fin, dp[i], cf(g, 0), "");
  }
  return lp;
}

/* the parameter domain check of stdlib/dist.c (dist_dom_ok) */
static LLVMValueRef dom_ok(Gen *g, int dom, LLVMValueRef v) {
  LLVMValueRef fin = LLVMBuildFCmp(g->B, LLVMRealOLT, vintr(g, "fabs", v), cv(g, INFINITY), "");
  switch (dom) {
  case PD_ANY: return fin;
  case PD_POS: return LLVMBuildAnd(g->B, fin, LLVMBuildFCmp(g->B, LLVMRealOGT, v, cv(g, 0), ""), "");
  case PD_NONNEG: return LLVMBuildAnd(g->B, fin, LLVMBuildFCmp(g->B, LLVMRealOGE, v, cv(g, 0), ""), "");
  case PD_PROB:
    return LLVMBuildAnd(g->B, LLVMBuildFCmp(g->B, LLVMRealOGE, v, cv(g, 0), ""),
                        LLVMBuildFCmp(g->B, LLVMRealOLE, v, cv(g, 1), ""), "");
  case PD_INT_NONNEG:
  case PD_INT: {
    LLVMValueRef r = LLVMBuildAnd(g->B, fin, LLVMBuildFCmp(g->B, LLVMRealOEQ, v, vintr(g, "floor", v), ""), "");
    return dom == PD_INT ? r : LLVMBuildAnd(g->B, r, LLVMBuildFCmp(g->B, LLVMRealOGE, v, cv(g, 0), ""), "");
  }
  case PD_ANY_INF: return LLVMBuildFCmp(g->B, LLVMRealORD, v, v, "");
  default: return LLVMBuildFCmp(g->B, LLVMRealPredicateTrue, v, v, "");
  }
}

/* An operand of a density: a scalar register or a container of reals. */
typedef struct DOp {
  int reg;
  bool box, act;
  LLVMValueRef v;    /* scalar value, or the box */
  LLVMValueRef data; /* box data */
  LLVMValueRef logd; /* data: the logs of its numbers, made once (normal's sigma) */
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
  bool rev;         /* partials: stored into each box operand's `adj` (a scratch
                       array), summed into `gsum` for scalar operands */
} DensCtx;

static void emit_range(Gen *g, LLVMValueRef lo, LLVMValueRef hi, int step, LoopBody body, void *ud) {
  LLVMValueRef k = entry_alloca(g, g->i64, "i");
  LLVMBuildStore(g->B, lo, k);
  LLVMBasicBlockRef hb = new_bb(g, "vloop"), bb = new_bb(g, "vbody"), xb = new_bb(g, "vend");
  LLVMBuildBr(g->B, hb);
  LLVMPositionBuilderAtEnd(g->B, hb);
  LLVMValueRef i = LLVMBuildLoad2(g->B, g->i64, k, "");
  LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, i, hi, ""), bb, xb);
  LLVMPositionBuilderAtEnd(g->B, bb);
  body(g, i, ud);
  LLVMBuildStore(g->B, LLVMBuildAdd(g->B, i, ci(g, step), ""), k);
  LLVMBuildBr(g->B, hb);
  LLVMPositionBuilderAtEnd(g->B, xb);
}

static void dens_body(Gen *g, LLVMValueRef i, void *ud);

/* The density loop over n elements: W at a time where the host and the
   family allow (the kernels above), then the rest one by one. */
static void dens_loop(Gen *g, DensCtx *c, LLVMValueRef n) {
  int w = g->simd;
  if (!w || !(c->f == &dist_normal || c->f == &dist_bernoulli_logit)) {
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
  for (int k = 0; k <= c->f->nparams; k++)
    if (ops[k]->gsum) {
      ops[k]->gsumv = entry_alloca(g, vt, "gsv");
      LLVMBuildStore(g->B, cv(g, 0), ops[k]->gsumv);
    }
  LLVMValueRef nv = LLVMBuildAnd(g->B, n, ci(g, -(int64_t)w), "");
  emit_range(g, ci(g, 0), nv, w, dens_body, c);
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

static void dens_body(Gen *g, LLVMValueRef i, void *ud) {
  DensCtx *c = ud;
  const DistFamily *f = c->f;
  LLVMValueRef p[DIST_MAX_PARAMS], dx = NULL, dp[DIST_MAX_PARAMS] = {0};
  for (int k = 0; k < f->nparams; k++) {
    p[k] = dop_at(g, &c->p[k], i);
    if (!c->rev && c->p[k].box) /* scalars are checked once, before the loop */
      check(g, all_true(g, dom_ok(g, f->pdom[k], p[k])));
  }
  LLVMValueRef ls = NULL;
  if (f == &dist_normal && c->p[1].box && g->isdata[c->p[1].reg]) {
    LLVMValueRef logs = data_numbers(g, c->p[1].reg, true);
    ls = g->vw ? vload(g, logs, i) : ld_f64(g, logs, i);
  }
  LLVMValueRef lp = emit_lpdf1(g, f, dop_at(g, &c->x, i), p, c->rev, &dx, dp, ls);
  LLVMValueRef acc = g->vw ? c->lpv : c->lp;
  LLVMBuildStore(g->B, LLVMBuildFAdd(g->B, LLVMBuildLoad2(g->B, vty(g), acc, ""), lp, ""), acc);
  if (!c->rev) return;
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

static bool dens_family_ok(const DistFamily *f) {
  return f->lpdf1 && f->grad1 && !f->improper && !(f->support && f->nparams >= 2) &&
         f->nparams <= DIST_MAX_PARAMS;
}

static bool dop_make(Gen *g, int r, DOp *o) {
  memset(o, 0, sizeof *o);
  o->reg = r;
  Type t = g->f->regtypes[r];
  if (g->rc[r] == RC_REAL || g->rc[r] == RC_INT || g->rc[r] == RC_BOOL) {
    o->v = as_f64(g, r);
  } else if (g->rc[r] == RC_BOX && (is_tensor(t) || (t.ndims == 1 && (t.base == TY_REAL || t.base == TY_INT)))) {
    if (!is_tensor(t) && !g->isdata[r]) return false; /* arrays: data only (flat in the box) */
    if (g->stored[r]) return false;
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
static bool emit_observe_native(Gen *g, RevList *l, const IrInstr *ins) {
  const DistFamily *f = ins->dist.fam;
  if (!dens_family_ok(f) || ins->dist.nparams != f->nparams) return false;
  DensCtx c = {.f = f};
  if (!dop_make(g, ins->args[0], &c.x)) return false;
  bool anybox = c.x.box;
  for (int k = 0; k < f->nparams; k++) {
    if (!dop_make(g, ins->dist.params[k], &c.p[k])) return false;
    anybox |= c.p[k].box;
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
  for (int k = 0; k < f->nparams; k++)
    if (c.p[k].box) check(g, LLVMBuildICmp(g->B, LLVMIntEQ, box_n(g, c.p[k].v), n, ""));
    else check(g, dom_ok(g, f->pdom[k], c.p[k].v));
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
  dens_loop(g, &c, n);
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

static void rev_observe(Gen *g, RevItem *it) {
  const IrInstr *ins = it->ins;
  const DistFamily *f = it->aux;
  int s = 0;
  for (int k = 0; k <= f->nparams; k++) {
    int r = k == 0 ? ins->args[0] : ins->dist.params[k - 1];
    if (!active(g, r) || (k == 0 && f->discrete) || g->rc[r] == RC_BOX) continue;
    adj_add(g, r, it->save[s++]);
  }
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
  LLVMValueRef l = emit_lpdf1(g, f, x, p, c->rev, &dx, dp, NULL);
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

static bool emit_sample_native(Gen *g, RevList *l, const IrInstr *ins) {
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
    Z = new_ten(g, ten_kind(t), ci(g, rows), ci(g, cols), true, FILL_NONE);
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
  if (Z) wr_ten(g, d, Z, ci(g, t.base == TY_ROWVEC ? 1 : sizes[0]),
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

static void rev_sample(Gen *g, RevItem *it) {
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

static void emit_ins(Gen *g, RevList *l, const IrInstr *ins) {
  int d = ins->dst;
  if (g->why) return;
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
      if (!emit_copy(g, l, ins)) emit_site(g, l, ins, &a, 1, d, false);
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
    if (ca == RC_BOX || cb == RC_BOX || g->rc[d] == RC_BOX) {
      if (!emit_matvec(g, l, ins) && !emit_ew(g, l, ins)) emit_site(g, l, ins, ins->args, 2, d, false);
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
      wr_ten(g, d, new_ten(g, ten_kind(t), rows, cols, active(g, d), FILL_NAN), rows, cols);
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
    if (emit_sample_native(g, l, ins)) return;
    if (g->depth > 0) g->k_static = -1;
    else if (g->k_static >= 0) g->k_static++;
    int ops[24], n = 0;
    for (int k = 0; k < ins->dist.nparams; k++) ops[n++] = ins->dist.params[k];
    if (ins->con.lower >= 0) ops[n++] = ins->con.lower;
    if (ins->con.upper >= 0) ops[n++] = ins->con.upper;
    int ns = 0;
    for (int k = 0; k < ins->nsizes && n < 24; k++, ns++) ops[n++] = ins->sizes[k];
    int before = g->nsites;
    emit_site(g, l, ins, ops, n, d, true);
    if (g->nsites > before) g->j->sites[before].nsizes = ns;
    return;
  }
  case IR_OBSERVE: {
    /* a draw scores nothing: its point had a finite log density, so the
       observations' checks passed there already */
    if (g->draw) return;
    if (emit_observe_native(g, l, ins)) return;
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
    LLVMValueRef k = entry_alloca(g, g->i64, "k");
    LLVMBuildStore(g->B, ci(g, 0), k);
    LLVMBasicBlockRef hb = new_bb(g, "for"), bb = new_bb(g, "body"), xb = new_bb(g, "endfor");
    LLVMBuildBr(g->B, hb);
    LLVMPositionBuilderAtEnd(g->B, hb);
    LLVMValueRef kv = LLVMBuildLoad2(g->B, g->i64, k, "");
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, kv, n, ""), bb, xb);
    LLVMPositionBuilderAtEnd(g->B, bb);
    wr(g, ins->var, LLVMBuildAdd(g->B, lo, kv, ""));
    g->depth++;
    emit_block(g, &ins->body, &it->a);
    g->depth--;
    LLVMBuildStore(g->B, LLVMBuildAdd(g->B, LLVMBuildLoad2(g->B, g->i64, k, ""), ci(g, 1), ""), k);
    LLVMBuildBr(g->B, hb);
    LLVMPositionBuilderAtEnd(g->B, xb);
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
  case IR_ODE: /* the solver and its sensitivities run in the runtime */
    emit_site(g, l, ins, ins->args, ins->nargs, d, false);
    return;
  case IR_CALL: refuse(g, ins, "user function calls are not compiled"); return;
  case IR_BREAK:
  case IR_CONTINUE: refuse(g, ins, "break and continue are not compiled"); return;
  case IR_PRINT: refuse(g, ins, "print is not compiled (it would print at every gradient)"); return;
  default: break;
  }
  refuse(g, ins, gc_printf("this instruction is not compiled (%s)",
                           d >= 0 ? op_type_name(g->f->regtypes[d]) : "no result"));
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
static void rev_repeat(Gen *g, LLVMValueRef n, RevList *body, RevList *after_each) {
  LLVMValueRef k = entry_alloca(g, g->i64, "rk");
  LLVMBuildStore(g->B, n, k);
  LLVMBasicBlockRef hb = new_bb(g, "rloop"), bb = new_bb(g, "rbody"), xb = new_bb(g, "rend");
  LLVMBuildBr(g->B, hb);
  LLVMPositionBuilderAtEnd(g->B, hb);
  LLVMValueRef kv = LLVMBuildLoad2(g->B, g->i64, k, "");
  LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSGT, kv, ci(g, 0), ""), bb, xb);
  LLVMPositionBuilderAtEnd(g->B, bb);
  rev_list(g, body);
  if (after_each) rev_list(g, after_each);
  LLVMBuildStore(g->B, LLVMBuildSub(g->B, LLVMBuildLoad2(g->B, g->i64, k, ""), ci(g, 1), ""), k);
  LLVMBuildBr(g->B, hb);
  LLVMPositionBuilderAtEnd(g->B, xb);
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
  case RV_EW: rev_ew(g, it); break;
  case RV_COPY: rev_copy(g, it); break;
  case RV_SAMPLE: rev_sample(g, it); break;
  case RV_OBS: rev_observe(g, it); break;
  case RV_MATVEC: rev_matvec(g, it); break;
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

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
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
  LLVMTypeRef gr4[4] = {g->f64, g->ptr, g->ptr, g->ptr};
  g->t_grad1 = LLVMFunctionType(g->vd, gr4, 4, 0);
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
  mark_written(&p->data_b, g->isdata);
  mark_written(&p->model_b, g->written);
  mark_written(&p->gen_b, g->written);
  for (int r = 0; r < nr; r++) {
    g->rc[r] = reg_class(f->regtypes[r]);
    if (g->written[r]) g->isdata[r] = false;
  }
  while (act_block(&p->model_b, f, g->act)) {
  }
  g->stored = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  g->konst = gc_alloc_atomic(sizeof(bool) * ((size_t)nr + 1));
  g->kval = gc_alloc(sizeof(Value) * ((size_t)nr + 1));
  int *writes = gc_alloc_atomic(sizeof(int) * ((size_t)nr + 1));
  count_writes(&p->model_b, writes, g->stored);
  count_writes(&p->gen_b, writes, g->stored);
  for (int r = 0; r < nr; r++)
    if (g->isdata[r] && (g->rc[r] == RC_INT || g->rc[r] == RC_REAL || g->rc[r] == RC_BOOL)) {
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
                                op_type_name(p->outputs[i].type)));
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

/* One module in its own context: ppl_ld, or ppl_draw (draw), lowered from p,
   verified and optimised for this machine; NULL with *why if not compiled. */
static LLVMOrcThreadSafeModuleRef build_module(Jit *j, bool draw, bool keep_ir, const char **why) {
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
  g->C = LLVMOrcThreadSafeContextGetContext(tsc);
  g->M = LLVMModuleCreateWithNameInContext(draw ? "ppl_draw" : "ppl_ld", g->C);
  g->B = LLVMCreateBuilderInContext(g->C);
  g->i1 = LLVMInt1TypeInContext(g->C);
  g->i8 = LLVMInt8TypeInContext(g->C);
  g->i32 = LLVMInt32TypeInContext(g->C);
  g->i64 = LLVMInt64TypeInContext(g->C);
  g->f64 = LLVMDoubleTypeInContext(g->C);
  g->ptr = LLVMPointerTypeInContext(g->C, 0);
  g->vd = LLVMVoidTypeInContext(g->C);
  declare_runtime(g);
  g->simd = host_simd(&g->mvec);
  analyze(g, p);
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
  const char *triple = LLVMOrcLLJITGetTripleString(j->lljit);
  LLVMSetTarget(g->M, triple);
  LLVMSetDataLayout(g->M, LLVMOrcLLJITGetDataLayoutStr(j->lljit));
  LLVMTargetRef T;
  char *terr = NULL;
  if (LLVMGetTargetFromTriple(triple, &T, &terr) == 0) {
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(T, triple, cpu, feat, LLVMCodeGenLevelDefault,
                                                      LLVMRelocDefault, LLVMCodeModelJITDefault);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef pe = LLVMRunPasses(g->M, "default<O2>", tm, po);
    if (pe) LLVMConsumeError(pe);
    LLVMDisposePassBuilderOptions(po);
    LLVMDisposeTargetMachine(tm);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
  } else if (terr) {
    LLVMDisposeMessage(terr);
  }
  if (keep_ir) {
    char *text = LLVMPrintModuleToString(g->M);
    j->ir_text = j->ir_text ? gc_printf("%s\n%s", j->ir_text, text) : gc_strdup(text);
    LLVMDisposeMessage(text);
  }
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(g->M, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc);
  return tsm;
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

Jit *jit_compile(const Interp *in, const JitLatents *lat, size_t dim, bool keep_ir,
                 const char **why) {
  double t0 = now_ms();
  pthread_once(&llvm_once, llvm_init);
  Jit *j = gc_alloc_root(sizeof(Jit));
  j->lat = *lat;
  j->in = in;
  j->dim = dim;
  j->keep_ir = keep_ir;
  pthread_mutex_init(&j->mu, NULL);
  if (!jit_program(j, why)) {
    jit_free(j);
    return NULL;
  }
  LLVMErrorRef e = make_lljit(j);
  if (e) {
    *why = gc_printf("LLVM: %s", take_error(e));
    jit_free(j);
    return NULL;
  }
  LLVMOrcThreadSafeModuleRef tsm = build_module(j, false, keep_ir, why);
  j->fn = tsm ? load_module(j, tsm, "ppl_ld", why) : NULL;
  if (!j->fn) {
    jit_free(j);
    return NULL;
  }
  j->ms = now_ms() - t0;
  if (keep_ir) jit_has_draw(j); /* all of the IR now */
  return j;
}

static JitFn compile_draw(Jit *j) {
  const char *why = NULL;
  if (j->gen_why) {
    j->draw_why = j->gen_why;
    return NULL;
  }
  LLVMOrcThreadSafeModuleRef tsm = build_module(j, true, j->keep_ir, &why);
  JitFn f = tsm ? load_module(j, tsm, "ppl_draw", &why) : NULL;
  if (!f) j->draw_why = why ? why : "the generated block could not be compiled";
  return f;
}

void jit_free(Jit *j) {
  if (!j) return;
  if (j->lljit) LLVMOrcDisposeLLJIT(j->lljit);
  pthread_mutex_destroy(&j->mu);
  gc_free_root(j);
}

#endif
