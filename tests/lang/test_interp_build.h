/* test_interp_build.h — a tiny builder for hand-written IR programs, so the
 * interpreter can be tested without the parser, checker and lowering.
 *
 * Every emitted instruction gets a fresh line number in file "t.ppl", so a
 * test can predict the exact position of a runtime error (LAST_LINE right
 * after emitting the instruction).
 */
#ifndef TEST_INTERP_BUILD_H
#define TEST_INTERP_BUILD_H

#include <stdarg.h>
#include <string.h>

#include "ir/interp.h"
#include "parser/ast.h"

#define MAXREGS 512
#define MAXINS 128

static int b_line = 1;
#define LAST_LINE (b_line - 1)

static const Type T_INT = {TY_INT, 0}, T_REAL = {TY_REAL, 0}, T_BOOL = {TY_BOOL, 0},
                  T_STR = {TY_STRING, 0}, T_VEC = {TY_VECTOR, 0}, T_RVEC = {TY_ROWVEC, 0},
                  T_MAT = {TY_MATRIX, 0}, T_VOID = {TY_VOID, 0};
static inline Type arr_of(Type t, int nd) { t.ndims = (uint8_t)nd; return t; }

static IrBlock blk(void) {
  IrBlock b = {0, gc_alloc(sizeof(IrInstr) * MAXINS)};
  return b;
}

static void fn_init(IrFunc *f, const char *name, Type ret) {
  memset(f, 0, sizeof *f);
  f->name = name;
  f->ret = ret;
  f->pos = (SrcPos){"t.ppl", 900, 1};
  f->regtypes = gc_alloc(sizeof(Type) * MAXREGS);
  f->regnames = gc_alloc(sizeof(char *) * MAXREGS);
  f->body = blk();
}

static int reg(IrFunc *f, Type t, const char *name) {
  f->regtypes[f->nregs] = t;
  f->regnames[f->nregs] = name;
  return f->nregs++;
}
static int param(IrFunc *f, Type t, const char *name) {
  f->nparams++;
  return reg(f, t, name);
}

static IrInstr *I(IrBlock *b, int op, int dst) {
  IrInstr *in = &b->ins[b->n++];
  memset(in, 0, sizeof *in);
  in->op = (uint8_t)op;
  in->dst = dst;
  in->pos = (SrcPos){"t.ppl", b_line++, 1};
  in->con.lower = in->con.upper = -1;
  return in;
}

static int *ints(int n, ...) {
  int *a = gc_alloc(sizeof(int) * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) a[i] = va_arg(ap, int);
  va_end(ap);
  return a;
}

static IrInstr *with_args(IrInstr *in, int n, int *a) {
  in->nargs = n;
  in->args = a;
  return in;
}

/* An instruction with n operand registers; the operands are evaluated (and
   emitted, if they are built inline) before the instruction itself. */
static IrInstr *OP(IrBlock *b, int op, int dst, int n, ...) {
  int *a = gc_alloc(sizeof(int) * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) a[i] = va_arg(ap, int);
  va_end(ap);
  return with_args(I(b, op, dst), n, a);
}

/* constants into fresh temporaries */
static int K(IrFunc *f, IrBlock *b, Value v, Type t) {
  int r = reg(f, t, NULL);
  I(b, IR_CONST, r)->imm = v;
  return r;
}
static int KI(IrFunc *f, IrBlock *b, int64_t i) { return K(f, b, val_int(i), T_INT); }
static int KR(IrFunc *f, IrBlock *b, double x) { return K(f, b, val_real(x), T_REAL); }
static int KS(IrFunc *f, IrBlock *b, const char *s) { return K(f, b, val_str(s), T_STR); }
static int KB(IrFunc *f, IrBlock *b, bool x) { return K(f, b, val_bool(x), T_BOOL); }

static int BIN(IrFunc *f, IrBlock *b, int op, Type t, int x, int y) {
  int r = reg(f, t, NULL);
  IrInstr *in = with_args(I(b, IR_BINARY, r), 2, ints(2, x, y));
  in->sub = (uint8_t)op;
  return r;
}
static void BIN_TO(IrBlock *b, int op, int dst, int x, int y) {
  IrInstr *in = with_args(I(b, IR_BINARY, dst), 2, ints(2, x, y));
  in->sub = (uint8_t)op;
}
static int UN(IrFunc *f, IrBlock *b, int op, Type t, int x) {
  int r = reg(f, t, NULL);
  IrInstr *in = with_args(I(b, IR_UNARY, r), 1, ints(1, x));
  in->sub = (uint8_t)op;
  return r;
}
static void MOVE(IrBlock *b, int dst, int src) { with_args(I(b, IR_MOVE, dst), 1, ints(1, src)); }

/* array literal / row-vector literal from registers */
static int ARR(IrFunc *f, IrBlock *b, Type t, int n, int *elems) {
  int r = reg(f, t, NULL);
  with_args(I(b, IR_ARRAY, r), n, elems);
  return r;
}
static int RVEC(IrFunc *f, IrBlock *b, Type t, int n, int *elems) {
  int r = reg(f, t, NULL);
  with_args(I(b, IR_ROWVEC, r), n, elems);
  return r;
}
/* int array literal {v0, v1, ...} */
static int IARR(IrFunc *f, IrBlock *b, int n, const int64_t *v) {
  int *e = gc_alloc(sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++) e[i] = KI(f, b, v[i]);
  return ARR(f, b, arr_of(T_INT, 1), n, e);
}
/* vector / row vector of reals */
static int RV(IrFunc *f, IrBlock *b, int n, const double *v) {
  int *e = gc_alloc(sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++) e[i] = KR(f, b, v[i]);
  return RVEC(f, b, T_RVEC, n, e);
}
static int VEC(IrFunc *f, IrBlock *b, int n, const double *v) {
  return UN(f, b, OP_TRANSPOSE, T_VEC, RV(f, b, n, v));
}

static IrIndex IXS(int r) { IrIndex x = {IX_SINGLE, r, -1}; return x; }
static IrIndex IXR(int lo, int hi) { IrIndex x = {IX_RANGE, lo, hi}; return x; }
static IrIndex IXA(void) { IrIndex x = {IX_ALL, -1, -1}; return x; }
static IrIndex IXM(int r) { IrIndex x = {IX_MULTI, r, -1}; return x; }

static IrIndex *ixv(int n, ...) {
  IrIndex *a = gc_alloc(sizeof(IrIndex) * (size_t)n);
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) a[i] = va_arg(ap, IrIndex);
  va_end(ap);
  return a;
}
static int INDEX(IrFunc *f, IrBlock *b, Type t, int src, int n, IrIndex *ix) {
  int r = reg(f, t, NULL);
  IrInstr *in = with_args(I(b, IR_INDEX, r), 1, ints(1, src));
  in->nidx = n;
  in->idx = ix;
  return r;
}
static void STORE(IrBlock *b, int dst, int src, int n, IrIndex *ix) {
  IrInstr *in = with_args(I(b, IR_STORE, dst), 1, ints(1, src));
  in->nidx = n;
  in->idx = ix;
}
static IrInstr *DECL(IrBlock *b, int dst, int nsizes, int *sizes) {
  IrInstr *in = I(b, IR_DECL, dst);
  in->nsizes = nsizes;
  in->sizes = sizes;
  return in;
}
static IrInstr *FOR(IrBlock *b, int var, int lo, int hi, IrBlock body) {
  IrInstr *in = with_args(I(b, IR_FOR, -1), 2, ints(2, lo, hi));
  in->var = var;
  in->body = body;
  return in;
}
static IrInstr *WHILE(IrBlock *b, IrBlock cond_b, int cond, IrBlock body) {
  IrInstr *in = I(b, IR_WHILE, -1);
  in->cond_b = cond_b;
  in->cond = cond;
  in->body = body;
  return in;
}
static IrInstr *IF(IrBlock *b, int cond, IrBlock then_b, IrBlock else_b) {
  IrInstr *in = with_args(I(b, IR_IF, -1), 1, ints(1, cond));
  in->then_b = then_b;
  in->else_b = else_b;
  return in;
}

static IrProgram *prog_new(void) {
  IrProgram *p = gc_alloc(sizeof(IrProgram));
  p->file = "t.ppl";
  fn_init(&p->main, "main", T_VOID);
  p->data_b = blk();
  p->model_b = blk();
  p->gen_b = blk();
  p->outputs = gc_alloc(sizeof(IrOutput) * 64);
  p->funcs = gc_alloc(sizeof(IrFunc) * 16);
  return p;
}
static IrFunc *prog_func(IrProgram *p, const char *name, Type ret) {
  IrFunc *f = &p->funcs[p->nfuncs++];
  fn_init(f, name, ret);
  return f;
}
/* make register r of main an output; returns its output index */
static int OUT(IrProgram *p, int r) {
  IrOutput *o = &p->outputs[p->noutputs];
  o->name = p->main.regnames[r] ? p->main.regnames[r] : "tmp";
  o->reg = r;
  o->type = p->main.regtypes[r];
  o->kind = OUT_DERIVED;
  return p->noutputs++;
}

#endif
