/* inline.c — user-function calls inlined, IR to IR, for the LLVM JIT.
 *
 * The JIT compiles main's blocks as one straight function over main's
 * register file; a call would need frames of its own.  Inlining removes the
 * calls instead: each IR_CALL becomes
 *   1. an IR_MOVE of each argument into a fresh copy of the callee's
 *      parameter registers (IR_MOVE converts exactly as a call does: int to
 *      real, real[] <-> vector, containers by value),
 *   2. a copy of the callee's body, its registers renumbered into a fresh
 *      range appended to main's register file (calls in it inlined in turn),
 *   3. for the callee's final `return e`, an IR_MOVE of e into the call's
 *      destination.
 * Main's own registers keep their numbers, so outputs and data registers
 * stay valid.  Functions that are recursive, return early (a return anywhere
 * but as the body's last statement) or would make the program too big are
 * refused with the reason and its source position.
 *
 * The inlined program is for the JIT, which takes latents in execution order.
 * It is not for the interpreter's address-based engines: a latent inside an
 * inlined function is addressed "f/x" plus main's loop indices ("f/x[3]"),
 * not "f[3]/x" as the interpreter addresses it through the call (and two
 * calls at one place give "f/x" and "f/x#2" in both).  Its log density and
 * draws are the original program's.
 */
#include <string.h>

#include "ir.h"

/* Instructions inlining may add to a program before it gives up: repeated
   nested calls grow the code exponentially. */
#define INLINE_BUDGET 10000

typedef struct InlBuf {
  int n, cap;
  IrInstr *ins;
} InlBuf;

typedef struct Inliner {
  const IrProgram *p;
  int nregs, capregs; /* main's register file, growing */
  Type *regtypes;
  const char **regnames;
  long added;         /* instructions added by inlining */
  bool *open;         /* per function: being inlined now (a call of it is recursion) */
  const char *why;    /* the first refusal */
} Inliner;

/* Where the registers of the code being copied live: register r of it is
   base + r of the result (main: base 0); latents get `prefix` ("f/g/"). */
typedef struct InlFrame {
  int base;
  const char *prefix;
  const IrFunc *fn; /* NULL for main */
} InlFrame;

static void inl_refuse(Inliner *I, SrcPos pos, const char *what) {
  if (I->why) return;
  I->why = gc_printf("%s:%d:%d: %s", I->p->file ? I->p->file : "model", pos.line, pos.col, what);
}

static int inl_reg(Inliner *I, Type t, const char *name) {
  if (I->nregs == I->capregs) {
    int cap = I->capregs ? 2 * I->capregs : 64;
    Type *ty = gc_alloc_atomic(sizeof(Type) * (size_t)cap);
    const char **nm = gc_alloc(sizeof(char *) * (size_t)cap);
    if (I->nregs) {
      memcpy(ty, I->regtypes, sizeof(Type) * (size_t)I->nregs);
      memcpy(nm, I->regnames, sizeof(char *) * (size_t)I->nregs);
    }
    I->regtypes = ty;
    I->regnames = nm;
    I->capregs = cap;
  }
  I->regtypes[I->nregs] = t;
  I->regnames[I->nregs] = name;
  return I->nregs++;
}

static void buf_push(Inliner *I, InlBuf *b, const IrInstr *in, const InlFrame *fr) {
  if (fr->fn && ++I->added > INLINE_BUDGET && !I->why)
    inl_refuse(I, in->pos, gc_printf("inlining '%s' makes the program longer than %d instructions",
                                     fr->fn->name, INLINE_BUDGET));
  if (b->n == b->cap) {
    int cap = b->cap ? 2 * b->cap : 16;
    IrInstr *ins = gc_alloc(sizeof(IrInstr) * (size_t)cap);
    if (b->n) memcpy(ins, b->ins, sizeof(IrInstr) * (size_t)b->n);
    b->ins = ins;
    b->cap = cap;
  }
  b->ins[b->n++] = *in;
}

static IrBlock buf_block(const InlBuf *b) { return (IrBlock){b->n, b->ins}; }

static int rmap(const InlFrame *fr, int r) { return r < 0 ? r : fr->base + r; }

static int *rmap_all(const InlFrame *fr, int n, const int *rs) {
  if (n <= 0 || !rs) return NULL;
  int *out = gc_alloc_atomic(sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++) out[i] = rmap(fr, rs[i]);
  return out;
}

static void inl_block(Inliner *I, const InlFrame *fr, const IrBlock *b, InlBuf *out);

static IrBlock inl_nested(Inliner *I, const InlFrame *fr, const IrBlock *b) {
  InlBuf nb = {0};
  if (b->n > 0) inl_block(I, fr, b, &nb);
  return buf_block(&nb);
}

static bool known_op(uint8_t op) {
  switch ((IrOpcode)op) {
  case IR_CONST: case IR_MOVE: case IR_UNARY: case IR_BINARY: case IR_BUILTIN: case IR_CALL:
  case IR_INDEX: case IR_STORE: case IR_ARRAY: case IR_ROWVEC: case IR_DECL: case IR_DATA:
  case IR_SAMPLE: case IR_OBSERVE: case IR_FACTOR: case IR_CONDITION: case IR_IF: case IR_FOR:
  case IR_WHILE: case IR_BREAK: case IR_CONTINUE: case IR_RETURN: case IR_REJECT: case IR_PRINT:
  case IR_ODE: case IR_PARAM: case IR_NET:
    return true;
  }
  return false;
}

/* A return anywhere in b (nested blocks included). */
static const IrInstr *find_return(const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_RETURN) return in;
    const IrInstr *r = find_return(&in->then_b);
    if (!r) r = find_return(&in->else_b);
    if (!r) r = find_return(&in->body);
    if (!r) r = find_return(&in->cond_b);
    if (r) return r;
  }
  return NULL;
}

/* Can f be inlined as straight code?  Its only return must be the last
   statement of its body; a non-void function must end with one. */
static bool inl_shape_ok(Inliner *I, const IrFunc *f) {
  int n = f->body.n;
  bool last = n > 0 && f->body.ins[n - 1].op == IR_RETURN;
  IrBlock head = {last ? n - 1 : n, f->body.ins};
  const IrInstr *early = find_return(&head);
  if (early) {
    inl_refuse(I, early->pos,
               gc_printf("early return in function '%s' cannot be inlined (only a return as the "
                         "last statement of the body can)", f->name));
    return false;
  }
  if (!last && f->ret.base != TY_VOID) {
    inl_refuse(I, f->pos, gc_printf("function '%s' does not end with a return", f->name));
    return false;
  }
  return true;
}

static void inl_move(Inliner *I, InlBuf *out, const InlFrame *fr, SrcPos pos, int dst, int src) {
  IrInstr mv;
  memset(&mv, 0, sizeof mv);
  mv.op = IR_MOVE;
  mv.pos = pos;
  mv.dst = dst;
  mv.nargs = 1;
  mv.args = gc_alloc_atomic(sizeof(int));
  mv.args[0] = src;
  mv.callee = mv.var = mv.cond = -1;
  mv.con.lower = mv.con.upper = -1;
  buf_push(I, out, &mv, fr);
}

/* The call `call` (registers of fr) replaced by the callee's body. */
static void inl_call(Inliner *I, const InlFrame *fr, const IrInstr *call, InlBuf *out) {
  const IrProgram *p = I->p;
  if (call->callee < 0 || call->callee >= p->nfuncs) {
    inl_refuse(I, call->pos, "internal error: call of an unknown function");
    return;
  }
  const IrFunc *f = &p->funcs[call->callee];
  if (I->open[call->callee]) {
    inl_refuse(I, call->pos, gc_printf("recursive function '%s' cannot be inlined", f->name));
    return;
  }
  if (!inl_shape_ok(I, f)) return;
  InlFrame nf = {I->nregs, gc_printf("%s%s/", fr->prefix, f->name), f};
  for (int r = 0; r < f->nregs; r++)
    inl_reg(I, f->regtypes[r], f->regnames ? f->regnames[r] : NULL);
  /* the arguments, converted to the parameter types as a call converts them */
  for (int i = 0; i < call->nargs && i < f->nparams; i++)
    inl_move(I, out, &nf, call->pos, nf.base + i, rmap(fr, call->args[i]));
  I->open[call->callee] = true;
  int n = f->body.n;
  const IrInstr *ret = n > 0 && f->body.ins[n - 1].op == IR_RETURN ? &f->body.ins[n - 1] : NULL;
  IrBlock head = {ret ? n - 1 : n, f->body.ins};
  inl_block(I, &nf, &head, out);
  if (ret && ret->nargs == 1 && call->dst >= 0)
    inl_move(I, out, &nf, ret->pos, rmap(fr, call->dst), rmap(&nf, ret->args[0]));
  I->open[call->callee] = false;
}

/* One instruction copied with its registers renumbered (every field naming a
   register), its nested blocks copied the same way. */
static void inl_instr(Inliner *I, const InlFrame *fr, const IrInstr *in, InlBuf *out) {
  if (in->op == IR_CALL) {
    inl_call(I, fr, in, out);
    return;
  }
  if (!known_op(in->op)) {
    if (!fr->fn) { /* main's own: nothing to renumber, the JIT judges it */
      buf_push(I, out, in, fr);
      return;
    }
    inl_refuse(I, in->pos, gc_printf("instruction kind %d in function '%s' cannot be inlined",
                                     in->op, fr->fn->name));
    return;
  }
  if (in->op == IR_RETURN) { /* inl_shape_ok let only the final one through */
    inl_refuse(I, in->pos, "internal error: return outside a function");
    return;
  }
  IrInstr c = *in;
  c.dst = rmap(fr, in->dst);
  c.args = rmap_all(fr, in->nargs, in->args);
  if (in->nidx > 0 && in->idx) {
    c.idx = gc_alloc_atomic(sizeof(IrIndex) * (size_t)in->nidx);
    for (int i = 0; i < in->nidx; i++) {
      c.idx[i] = in->idx[i];
      if (in->idx[i].kind != IX_ALL) {
        c.idx[i].lo = rmap(fr, in->idx[i].lo);
        c.idx[i].hi = rmap(fr, in->idx[i].hi);
      }
    }
  }
  c.dist.params = rmap_all(fr, in->dist.nparams, in->dist.params);
  c.con.lower = rmap(fr, in->con.lower);
  c.con.upper = rmap(fr, in->con.upper);
  c.sizes = rmap_all(fr, in->nsizes, in->sizes);
  c.var = rmap(fr, in->var);
  c.cond = rmap(fr, in->cond);
  if (fr->fn && in->op == IR_SAMPLE && in->name) c.name = gc_printf("%s%s", fr->prefix, in->name);
  c.then_b = inl_nested(I, fr, &in->then_b);
  c.else_b = inl_nested(I, fr, &in->else_b);
  c.body = inl_nested(I, fr, &in->body);
  c.cond_b = inl_nested(I, fr, &in->cond_b);
  buf_push(I, out, &c, fr);
}

static void inl_block(Inliner *I, const InlFrame *fr, const IrBlock *b, InlBuf *out) {
  for (int i = 0; i < b->n && !I->why; i++) inl_instr(I, fr, &b->ins[i], out);
}

IrProgram *ir_inline_calls(const IrProgram *p, const char **why) {
  Inliner I;
  memset(&I, 0, sizeof I);
  I.p = p;
  I.open = gc_alloc_atomic(sizeof(bool) * (size_t)(p->nfuncs + 1));
  for (int r = 0; r < p->main.nregs; r++)
    inl_reg(&I, p->main.regtypes[r], p->main.regnames ? p->main.regnames[r] : NULL);
  IrProgram *q = gc_alloc(sizeof *q);
  *q = *p;
  InlFrame top = {0, "", NULL};
  q->data_b = inl_nested(&I, &top, &p->data_b);
  q->model_b = inl_nested(&I, &top, &p->model_b);
  q->gen_b = inl_nested(&I, &top, &p->gen_b);
  if (I.why) {
    if (why) *why = I.why;
    return NULL;
  }
  q->main.nregs = I.nregs;
  q->main.regtypes = I.regtypes;
  q->main.regnames = I.regnames;
  return q;
}
