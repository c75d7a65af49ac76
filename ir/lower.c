/* lower.c — from the checked AST (lang/check.c) to the IR of ir/ir.h.
 *
 * Expressions become three-address instructions over typed registers; named
 * variables get registers of their own (with regnames), every intermediate
 * value a fresh temporary.  Control flow stays structured.  The data, model and
 * generated blocks all go into `main`'s register file, so the lowering keeps
 * one map from declarations (AST_DECL, AST_PARAM, AST_FOR) to registers per
 * function.
 *
 * The IR is built into growable buffers and then frozen; instructions are
 * assembled in a local IrInstr and copied in, so no pointer into a buffer is
 * held across the lowering of a nested block.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lang/check.h"
#include "../stdlib/builtins.h"
#include "../stdlib/dist.h"
#include "../stdlib/ode.h"
#include "../stdlib/realnvp.h"
#include "ir.h"

enum { BLK_DATA = 0, BLK_MODEL = 1, BLK_GEN = 2, BLK_FUNC = 3, BLK_GUIDE = 4 };

typedef struct Buf {
  int n, cap;
  IrInstr *ins;
} Buf;

/* Pointer -> int map (open addressing); keys are AST nodes. */
typedef struct PtrMap {
  int cap, n;
  const void **keys;
  int *vals;
} PtrMap;

typedef struct Lower {
  Diag *d;
  const CheckedProgram *cp;
  IrProgram *p;
  int nregs, capregs; /* register file of the function being built */
  Type *regtypes;
  const char **regnames;
  PtrMap vars;        /* declaration -> register */
  PtrMap nets;        /* network param declaration -> index into netdefs */
  int nnets, capnets;
  IrInstr *netdefs;   /* their IR_PARAMs, whose sizes each call repeats */
  Buf *cur;           /* instructions go here */
  int depth;          /* statement nesting; 0 = top level of a program block */
  int blk;            /* BLK_* */
  const Ast *func;    /* function being lowered, or NULL for main */
  int nout, capout;
  IrOutput *outs;
  const Builtin **hostb; /* Builtin records for host functions, made on first use */
} Lower;

/* ---- small containers ------------------------------------------------------ */

/* The AST's operator as the IR's (the two enums are separate on purpose: the
 * IR does not depend on the parser's representation). */
static uint8_t ir_op(AstOp op) {
  switch (op) {
  case AOP_ADD: return OP_ADD;
  case AOP_SUB: return OP_SUB;
  case AOP_MUL: return OP_MUL;
  case AOP_DIV: return OP_DIV;
  case AOP_MOD: return OP_MOD;
  case AOP_POW: return OP_POW;
  case AOP_EMUL: return OP_EMUL;
  case AOP_EDIV: return OP_EDIV;
  case AOP_IDIV: return OP_IDIV;
  case AOP_EQ: return OP_EQ;
  case AOP_NE: return OP_NE;
  case AOP_LT: return OP_LT;
  case AOP_LE: return OP_LE;
  case AOP_GT: return OP_GT;
  case AOP_GE: return OP_GE;
  case AOP_AND: return OP_AND;
  case AOP_OR: return OP_OR;
  case AOP_NEG: return OP_NEG;
  case AOP_NOT: return OP_NOT;
  case AOP_PLUS: return OP_PLUS;
  case AOP_TRANSPOSE: return OP_TRANSPOSE;
  default: return OP_NONE;
  }
}

static size_t ptr_hash(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x;
}

static void map_put(PtrMap *m, const void *k, int v);

static void map_grow(PtrMap *m) {
  PtrMap old = *m;
  m->cap = old.cap ? old.cap * 2 : 64;
  m->n = 0;
  m->keys = gc_alloc(sizeof(void *) * (size_t)m->cap);
  m->vals = gc_alloc_atomic(sizeof(int) * (size_t)m->cap);
  for (int i = 0; i < old.cap; i++)
    if (old.keys[i]) map_put(m, old.keys[i], old.vals[i]);
}

static void map_put(PtrMap *m, const void *k, int v) {
  if (2 * (m->n + 1) > m->cap) map_grow(m);
  size_t i = ptr_hash(k) & (size_t)(m->cap - 1);
  while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (size_t)(m->cap - 1);
  if (!m->keys[i]) m->n++;
  m->keys[i] = k;
  m->vals[i] = v;
}

static int map_get(const PtrMap *m, const void *k) {
  if (!m->cap) return -1;
  size_t i = ptr_hash(k) & (size_t)(m->cap - 1);
  while (m->keys[i]) {
    if (m->keys[i] == k) return m->vals[i];
    i = (i + 1) & (size_t)(m->cap - 1);
  }
  return -1;
}

static void buf_push(Buf *b, const IrInstr *in) {
  if (b->n == b->cap) {
    int cap = b->cap ? 2 * b->cap : 16;
    IrInstr *ni = gc_alloc(sizeof(IrInstr) * (size_t)cap);
    if (b->n) memcpy(ni, b->ins, sizeof(IrInstr) * (size_t)b->n);
    b->ins = ni;
    b->cap = cap;
  }
  b->ins[b->n++] = *in;
}

static IrBlock buf_freeze(const Buf *b) {
  IrBlock blk = {b->n, b->ins};
  return blk;
}

static int *int_array(int n) { return gc_alloc_atomic(sizeof(int) * (size_t)(n > 0 ? n : 1)); }

/* ---- registers and instructions -------------------------------------------- */

static int reg_new(Lower *L, Type t, const char *name) {
  if (L->nregs == L->capregs) {
    int cap = L->capregs ? 2 * L->capregs : 32;
    Type *nt = gc_alloc_atomic(sizeof(Type) * (size_t)cap);
    const char **nn = gc_alloc(sizeof(char *) * (size_t)cap);
    if (L->nregs) {
      memcpy(nt, L->regtypes, sizeof(Type) * (size_t)L->nregs);
      memcpy(nn, L->regnames, sizeof(char *) * (size_t)L->nregs);
    }
    L->regtypes = nt;
    L->regnames = nn;
    L->capregs = cap;
  }
  L->regtypes[L->nregs] = t;
  L->regnames[L->nregs] = name;
  return L->nregs++;
}

static IrInstr ins_new(IrOpcode op, SrcPos pos) {
  IrInstr in;
  memset(&in, 0, sizeof in);
  in.op = (uint8_t)op;
  in.pos = pos;
  in.dst = -1;
  in.callee = -1;
  in.var = -1;
  in.cond = -1;
  in.con.lower = in.con.upper = -1;
  return in;
}

static void emit(Lower *L, const IrInstr *in) { buf_push(L->cur, in); }

static Type rtype(const Lower *L, int r) { return L->regtypes[r]; }

static bool is_temp(const Lower *L, int r) { return L->regnames[r] == NULL; }

static int emit_const(Lower *L, SrcPos pos, Type t, Value v) {
  IrInstr in = ins_new(IR_CONST, pos);
  in.dst = reg_new(L, t, NULL);
  in.imm = v;
  emit(L, &in);
  return in.dst;
}

static int emit_move(Lower *L, SrcPos pos, int dst, int src) {
  IrInstr in = ins_new(IR_MOVE, pos);
  in.dst = dst;
  in.nargs = 1;
  in.args = int_array(1);
  in.args[0] = src;
  emit(L, &in);
  return dst;
}

/* Converts r to type want when the checker promoted (int -> real, int[] -> real[]). */
static int promote(Lower *L, SrcPos pos, int r, Type want) {
  if (r < 0 || ty_eq(rtype(L, r), want) || want.base != TY_REAL) return r;
  return emit_move(L, pos, reg_new(L, want, NULL), r);
}

/* Conditions in the IR are bools; ints are true when nonzero. */
static int to_bool(Lower *L, SrcPos pos, int r) {
  if (r < 0 || rtype(L, r).base == TY_BOOL) return r;
  int zero = emit_const(L, pos, ty_make(TY_INT, 0), val_int(0));
  IrInstr in = ins_new(IR_BINARY, pos);
  in.sub = OP_NE;
  in.dst = reg_new(L, ty_make(TY_BOOL, 0), NULL);
  in.nargs = 2;
  in.args = int_array(2);
  in.args[0] = r;
  in.args[1] = zero;
  emit(L, &in);
  return in.dst;
}

static void internal(Lower *L, SrcPos pos, const char *what) {
  diag_error(L->d, DIAG_INTERNAL, pos, "internal error in lowering: %s", what);
}

/* ---- expressions ----------------------------------------------------------- */

static int lower_expr(Lower *L, const Ast *e);
static void assign_to(Lower *L, SrcPos pos, int dst, int src);
static void lower_stmt(Lower *L, const Ast *s);

/* e converted to type want; int literals become real constants directly. */
static int lower_as(Lower *L, const Ast *e, Type want) {
  bool neg = e->kind == AST_UNARY && e->op == AOP_NEG && e->a->kind == AST_INT;
  const Ast *lit = neg ? e->a : e;
  if (lit->kind == AST_INT && want.ndims == 0 && want.base == TY_REAL)
    return emit_const(L, e->pos, want, val_real(neg ? -(double)lit->ival : (double)lit->ival));
  return promote(L, e->pos, lower_expr(L, e), want);
}

/* Lowers the statements of s into a fresh block. */
static IrBlock lower_block(Lower *L, const Ast *s) {
  Buf b = {0};
  Buf *saved = L->cur;
  L->cur = &b;
  L->depth++;
  if (s) lower_stmt(L, s);
  L->depth--;
  L->cur = saved;
  return buf_freeze(&b);
}

static int lower_indices(Lower *L, const AstList *list, IrIndex *out) {
  for (int i = 0; i < list->n; i++) {
    const Ast *ix = list->items[i];
    IrIndex x = {IX_SINGLE, -1, -1};
    if (ix->kind == AST_SLICE) {
      if (!ix->a && !ix->b) x.kind = IX_ALL;
      else {
        x.kind = IX_RANGE;
        if (ix->a) x.lo = lower_expr(L, ix->a);
        if (ix->b) x.hi = lower_expr(L, ix->b);
      }
    } else {
      x.lo = lower_expr(L, ix);
      x.kind = ix->ty.ndims > 0 ? IX_MULTI : IX_SINGLE;
    }
    out[i] = x;
  }
  return list->n;
}

static bool single_indices(const AstList *list) {
  for (int i = 0; i < list->n; i++)
    if (list->items[i]->kind == AST_SLICE || list->items[i]->ty.ndims > 0) return false;
  return true;
}

/* x[i][j] is x[i, j] where x[i]'s indexes are all single: one IR_INDEX, so
   that reading one element of a nested array (vector[2] g[N]: g[t][k]) does
   not copy g[t] first (the JIT then reads it in place, ir/jit.c). */
static int lower_index(Lower *L, const Ast *e) {
  const Ast *chain[16];
  int nc = 0, total = 0;
  for (const Ast *x = e;; x = x->a) {
    chain[nc++] = x;
    total += x->list.n;
    if (nc == 16 || x->a->kind != AST_INDEX || !single_indices(&x->a->list)) break;
  }
  int base = lower_expr(L, chain[nc - 1]->a);
  IrInstr in = ins_new(IR_INDEX, e->pos);
  in.idx = gc_alloc_atomic(sizeof(IrIndex) * (size_t)(total + 1));
  for (int k = nc - 1; k >= 0; k--) in.nidx += lower_indices(L, &chain[k]->list, in.idx + in.nidx);
  in.nargs = 1;
  in.args = int_array(1);
  in.args[0] = base;
  in.dst = reg_new(L, e->ty, NULL);
  emit(L, &in);
  return in.dst;
}

/* a && b and a || b: t = a; if (t) t = b  /  if (!t) t = b. */
static int lower_logic(Lower *L, const Ast *e) {
  int t = reg_new(L, ty_make(TY_BOOL, 0), NULL);
  assign_to(L, e->pos, t, to_bool(L, e->a->pos, lower_expr(L, e->a)));
  Buf b = {0};
  Buf *saved = L->cur;
  L->cur = &b;
  assign_to(L, e->pos, t, to_bool(L, e->b->pos, lower_expr(L, e->b)));
  L->cur = saved;
  IrInstr in = ins_new(IR_IF, e->pos);
  in.nargs = 1;
  in.args = int_array(1);
  in.args[0] = t;
  if (e->op == AOP_AND) in.then_b = buf_freeze(&b);
  else in.else_b = buf_freeze(&b);
  emit(L, &in);
  return t;
}

static int lower_ternary(Lower *L, const Ast *e) {
  int c = to_bool(L, e->a->pos, lower_expr(L, e->a));
  int t = reg_new(L, e->ty, NULL);
  Buf bt = {0}, be = {0};
  Buf *saved = L->cur;
  L->cur = &bt;
  assign_to(L, e->b->pos, t, lower_as(L, e->b, e->ty));
  L->cur = &be;
  assign_to(L, e->c->pos, t, lower_as(L, e->c, e->ty));
  L->cur = saved;
  IrInstr in = ins_new(IR_IF, e->pos);
  in.nargs = 1;
  in.args = int_array(1);
  in.args[0] = c;
  in.then_b = buf_freeze(&bt);
  in.else_b = buf_freeze(&be);
  emit(L, &in);
  return t;
}

static int lower_list_op(Lower *L, const Ast *e, IrOpcode op) {
  IrInstr in = ins_new(op, e->pos);
  in.nargs = e->list.n;
  in.args = int_array(e->list.n);
  Type el = e->ty;
  if (op == IR_ARRAY) el.ndims--;
  for (int i = 0; i < e->list.n; i++) {
    const Ast *x = e->list.items[i];
    Type want = x->ty; /* row vectors of a matrix literal stay as they are */
    if (op == IR_ARRAY && el.base == TY_REAL) want = el;
    if (op == IR_ROWVEC && x->ty.ndims == 0 && x->ty.base == TY_INT) want = ty_make(TY_REAL, 0);
    in.args[i] = lower_as(L, x, want);
  }
  in.dst = reg_new(L, e->ty, NULL);
  emit(L, &in);
  return in.dst;
}

/* Host functions are called through a Builtin made here, whose BuiltinHost
   calls the HostFunc on the arguments' reals (the AD rule calls it too,
   stdlib/builtins_ad.c); eval unpacks the arguments for it. */
static bool host_flat(const BuiltinHost *hb, int nargs, const int *lens, const double *x,
                      double *val, double *grad, char *err, size_t errsz) {
  const HostFunc *h = hb->reg;
  int e = 0;
  int n = 0;
  for (int i = 0; i < nargs; i++) n += lens[i];
  *val = h->fn_ex ? h->fn_ex(h->ud, nargs, lens, x, h->has_grad ? grad : NULL, &e)
                  : h->fn(h->ud, x, n, &e);
  if (e) {
    snprintf(err, errsz, "host function '%s' failed (error %d)", h->name, e);
    return false;
  }
  return true;
}

static bool host_eval(const Builtin *b, BuiltinCtx *ctx, int nargs, const Value *args,
                      Value *out, char *err, size_t errsz) {
  int lens[16];
  if (nargs > 16) return snprintf(err, errsz, "host function '%s': too many arguments", b->name), false;
  size_t n = 0;
  for (int i = 0; i < nargs; i++) n += (size_t)(lens[i] = (int)val_numel(args[i]));
  double small[16];
  double *xs = n <= 16 ? small : gc_alloc_atomic(sizeof(double) * n);
  for (int i = 0, at = 0; i < nargs; at += lens[i++]) val_flatten(args[i], xs + at);
  double r;
  if (!host_flat(builtin_host(b), nargs, lens, xs, &r, NULL, err, errsz)) return false;
  *out = val_real(r);
  (void)ctx;
  return true;
}

/* A host's function on strings (ppl_register_string_function) is a Builtin
   with a check (the checker typed the call already), so it is not taken for
   a numeric host function; eval calls it and copies its malloc'd result. */
static bool host_str_check(const Builtin *b, int nargs, const Type *args, Type *ret, char *err,
                           size_t errsz) {
  (void)b, (void)nargs, (void)args, (void)err, (void)errsz;
  *ret = ty_make(TY_STRING, 0);
  return true;
}

static bool host_str_eval(const Builtin *b, BuiltinCtx *ctx, int nargs, const Value *args,
                          Value *out, char *err, size_t errsz) {
  (void)ctx;
  const HostFunc *h = b->data;
  const char *small[16];
  const char **sa = nargs <= 16 ? small : gc_alloc(sizeof(char *) * (size_t)nargs);
  for (int i = 0; i < nargs; i++) sa[i] = args[i].k == V_STR ? args[i].s->data : "";
  char *res = NULL;
  char msg[256] = "";
  if (h->str_fn(h->ud, nargs, sa, &res, msg, sizeof msg) != 0) {
    free(res);
    snprintf(err, errsz, "%s: %s", h->name, msg[0] ? msg : "failed");
    return false;
  }
  *out = val_str(res ? res : "");
  free(res);
  return true;
}

static const Builtin *host_builtin(Lower *L, const char *name) {
  for (int i = 0; i < L->cp->nhost; i++) {
    if (strcmp(L->cp->host[i].name, name) != 0) continue;
    if (!L->hostb[i]) {
      Builtin *b = gc_alloc(sizeof *b);
      b->name = L->cp->host[i].name;
      if (L->cp->host[i].str_fn) {
        b->check = host_str_check;
        b->eval = host_str_eval;
        b->data = &L->cp->host[i];
        L->hostb[i] = b;
        return b;
      }
      BuiltinHost *hb = gc_alloc(sizeof *hb);
      *hb = (BuiltinHost){host_flat, L->cp->host[i].has_grad, &L->cp->host[i]};
      b->eval = host_eval;
      b->data = hb;
      L->hostb[i] = b;
    }
    return L->hostb[i];
  }
  return NULL;
}

static int func_index(const Lower *L, const Ast *f) {
  for (int i = 0; i < L->cp->nfuncs; i++)
    if (L->cp->funcs[i] == f) return i;
  return -1;
}

/* Scalar int arguments of real parameters become reals here, so the
   interpreter and the JIT see the family's own parameter types. */
static IrDist lower_dist(Lower *L, const Ast *call) {
  if (call->dist == &dist_flow) { /* flow(q): q's weights, then its layout */
    const Ast *q = call->list.items[0]->ref;
    const IrInstr *def = &L->netdefs[map_get(&L->nets, q)];
    IrDist d = {call->dist, 4, int_array(4)};
    d.params[0] = map_get(&L->vars, q);
    memcpy(d.params + 1, def->sizes, sizeof(int) * 3);
    return d;
  }
  IrDist d = {call->dist, call->list.n, int_array(call->list.n)};
  for (int i = 0; i < call->list.n; i++) {
    const Ast *a = call->list.items[i];
    bool real_param = call->dist && i < DIST_MAX_PARAMS && call->dist->ptype[i].ndims == 0 &&
                      call->dist->ptype[i].base == TY_REAL;
    d.params[i] = real_param && a->ty.ndims == 0 && a->ty.base == TY_INT
                      ? lower_as(L, a, ty_make(TY_REAL, 0))
                      : lower_expr(L, a);
  }
  return d;
}

static bool name_is(const Ast *e, const char *n) { return strcmp(e->name, n) == 0; }

/* ode_rk45(f, y0, t0, ts, extra...) and ode_rk45_tol(f, y0, t0, ts, rtol,
   atol, max_steps, extra...) as one IR_ODE with the tolerances always
   present (Stan's defaults for the plain form). */
static int lower_ode(Lower *L, const Ast *e) {
  const Ast *f = e->list.items[0]->ref;
  bool tol = name_is(e, "ode_rk45_tol");
  int fixed = tol ? 7 : 4, nextra = e->list.n - fixed;
  IrInstr in = ins_new(IR_ODE, e->pos);
  in.sub = tol;
  in.callee = func_index(L, f);
  if (in.callee < 0) {
    internal(L, e->pos, "ode_rk45 without a function");
    return -1;
  }
  in.nargs = 6 + nextra;
  in.args = int_array(in.nargs);
  const Type treal = ty_make(TY_REAL, 0);
  in.args[0] = lower_expr(L, e->list.items[1]);
  in.args[1] = lower_as(L, e->list.items[2], treal);
  in.args[2] = lower_as(L, e->list.items[3], ty_make(TY_REAL, 1));
  if (tol) {
    in.args[3] = lower_as(L, e->list.items[4], treal);
    in.args[4] = lower_as(L, e->list.items[5], treal);
    in.args[5] = lower_expr(L, e->list.items[6]);
  } else {
    in.args[3] = emit_const(L, e->pos, treal, val_real(ODE_RK45_RTOL));
    in.args[4] = emit_const(L, e->pos, treal, val_real(ODE_RK45_ATOL));
    in.args[5] = emit_const(L, e->pos, ty_make(TY_INT, 0), val_int(ODE_RK45_MAX_STEPS));
  }
  for (int i = 0; i < nextra; i++)
    in.args[6 + i] = lower_as(L, e->list.items[fixed + i], f->list.items[2 + i]->ty);
  in.dst = reg_new(L, ty_make(TY_VECTOR, 1), NULL);
  emit(L, &in);
  return in.dst;
}

/* Where an observation's value lives, for simulating it (interp_load_data_sim):
   a named variable, or an element of one with single indices, which is the
   IR_INDEX just emitted for the observed expression.  Anything else (an
   expression, a slice) keeps var = -1. */
static void observed_place(Lower *L, IrInstr *in) {
  int r = in->args[0];
  if (!is_temp(L, r)) {
    in->var = r;
    return;
  }
  const Buf *b = L->cur;
  const IrInstr *last = b->n > 0 ? &b->ins[b->n - 1] : NULL;
  if (!last || last->op != IR_INDEX || last->dst != r || is_temp(L, last->args[0])) return;
  for (int k = 0; k < last->nidx; k++)
    if (last->idx[k].kind != IX_SINGLE) return;
  in->var = last->args[0];
  in->nidx = last->nidx;
  in->idx = last->idx;
}

/* Calls: user functions, builtins, host functions and the special statements.
   Returns the result register, or -1 for void. */
static int lower_call(Lower *L, const Ast *e) {
  int n = e->list.n;
  if (!e->ref && !e->builtin && (name_is(e, "ode_rk45") || name_is(e, "ode_rk45_tol")))
    return lower_ode(L, e);
  if (e->ref && e->ref->kind == AST_DECL) { /* f(x) of a network param f */
    const IrInstr *def = &L->netdefs[map_get(&L->nets, e->ref)];
    IrInstr in = ins_new(IR_NET, e->pos);
    in.nargs = def->nsizes + 2;
    in.args = int_array(in.nargs);
    in.args[0] = map_get(&L->vars, e->ref);
    in.args[1] = lower_expr(L, e->list.items[0]);
    memcpy(in.args + 2, def->sizes, sizeof(int) * (size_t)def->nsizes);
    in.imm = def->imm;
    in.dst = reg_new(L, e->ty, NULL);
    emit(L, &in);
    return in.dst;
  }
  if (e->ref) { /* user function */
    const Ast *f = e->ref;
    IrInstr in = ins_new(IR_CALL, e->pos);
    in.callee = func_index(L, f);
    in.nargs = n;
    in.args = int_array(n);
    for (int i = 0; i < n; i++) in.args[i] = lower_as(L, e->list.items[i], f->list.items[i]->ty);
    if (f->ty.base != TY_VOID) in.dst = reg_new(L, f->ty, NULL);
    emit(L, &in);
    return in.dst;
  }
  if (name_is(e, "observe")) {
    IrInstr in = ins_new(IR_OBSERVE, e->pos);
    in.nargs = 1;
    in.args = int_array(1);
    in.args[0] = lower_expr(L, e->list.items[1]);
    observed_place(L, &in);
    in.dist = lower_dist(L, e->list.items[0]);
    emit(L, &in);
    return -1;
  }
  if (name_is(e, "factor") || name_is(e, "condition")) {
    bool fac = name_is(e, "factor");
    IrInstr in = ins_new(fac ? IR_FACTOR : IR_CONDITION, e->pos);
    const Ast *a = e->list.items[0];
    int r = fac ? lower_as(L, a, ty_make(TY_REAL, 0)) : to_bool(L, a->pos, lower_expr(L, a));
    in.nargs = 1;
    in.args = int_array(1);
    in.args[0] = r;
    emit(L, &in);
    return -1;
  }
  const Builtin *b = e->builtin;
  bool is_print = name_is(e, "print"), is_reject = name_is(e, "reject");
  if (!b && !is_print && !is_reject) b = host_builtin(L, e->name);
  if (!b && !is_print && !is_reject) {
    internal(L, e->pos, "call of an unknown function");
    return -1;
  }
  IrInstr in = ins_new(is_print ? IR_PRINT : is_reject ? IR_REJECT : IR_BUILTIN, e->pos);
  in.builtin = b;
  in.nargs = n;
  in.args = int_array(n);
  for (int i = 0; i < n; i++) in.args[i] = lower_expr(L, e->list.items[i]);
  if (b && e->ty.base != TY_VOID) in.dst = reg_new(L, e->ty, NULL);
  emit(L, &in);
  return in.dst;
}

static int lower_expr(Lower *L, const Ast *e) {
  if (diag_failed(L->d)) return -1;
  switch (e->kind) {
  case AST_INT: return emit_const(L, e->pos, e->ty, val_int(e->ival));
  case AST_REAL: return emit_const(L, e->pos, e->ty, val_real(e->rval));
  case AST_BOOL: return emit_const(L, e->pos, e->ty, val_bool(e->ival != 0));
  case AST_STRING: return emit_const(L, e->pos, e->ty, val_str(e->sval ? e->sval : ""));
  case AST_VAR: {
    int r = map_get(&L->vars, e->ref);
    if (r < 0) internal(L, e->pos, "variable without a register");
    return r;
  }
  case AST_CALL: return lower_call(L, e);
  case AST_INDEX: return lower_index(L, e);
  case AST_UNARY: {
    /* negative literals are constants (INT64_MIN cannot be negated) */
    if (e->op == AOP_NEG && e->a->kind == AST_REAL)
      return emit_const(L, e->pos, e->ty, val_real(-e->a->rval));
    if (e->op == AOP_NEG && e->a->kind == AST_INT && e->a->ival != INT64_MIN)
      return emit_const(L, e->pos, e->ty, val_int(-e->a->ival));
    int a = lower_expr(L, e->a);
    if (e->op == AOP_PLUS) return a;
    if (e->op == AOP_NOT) a = to_bool(L, e->a->pos, a);
    IrInstr in = ins_new(IR_UNARY, e->pos);
    in.sub = ir_op(e->op);
    in.nargs = 1;
    in.args = int_array(1);
    in.args[0] = a;
    in.dst = reg_new(L, e->ty, NULL);
    emit(L, &in);
    return in.dst;
  }
  case AST_BINARY: {
    if (e->op == AOP_AND || e->op == AOP_OR) return lower_logic(L, e);
    int a = lower_expr(L, e->a), b = lower_expr(L, e->b);
    IrInstr in = ins_new(IR_BINARY, e->pos);
    in.sub = ir_op(e->op);
    in.nargs = 2;
    in.args = int_array(2);
    in.args[0] = a;
    in.args[1] = b;
    in.dst = reg_new(L, e->ty, NULL);
    emit(L, &in);
    return in.dst;
  }
  case AST_TERNARY: return lower_ternary(L, e);
  case AST_ARRAY: return lower_list_op(L, e, IR_ARRAY);
  case AST_ROWVEC: return lower_list_op(L, e, IR_ROWVEC);
  case AST_CONVERT: { /* bool -> int or real: IR_MOVE converts */
    int r = lower_expr(L, e->a);
    return r < 0 ? r : emit_move(L, e->pos, reg_new(L, e->ty, NULL), r);
  }
  default:
    internal(L, e->pos, "unexpected expression");
    return -1;
  }
}

/* ---- statements ------------------------------------------------------------ */

/* Writes the value of `src` into variable register `dst`.  When src is the
   temporary just produced by the last instruction, that instruction writes
   dst directly instead (saves a copy of the value). */
static void assign_to(Lower *L, SrcPos pos, int dst, int src) {
  Buf *b = L->cur;
  if (src >= 0 && is_temp(L, src) && b->n > 0 && b->ins[b->n - 1].dst == src &&
      ty_eq(rtype(L, src), rtype(L, dst)) && b->ins[b->n - 1].op != IR_STORE) {
    b->ins[b->n - 1].dst = dst;
    return;
  }
  emit_move(L, pos, dst, src);
}

static void add_output(Lower *L, const char *name, int reg, Type t, IrOutKind kind) {
  if (L->nout == L->capout) {
    int cap = L->capout ? 2 * L->capout : 16;
    IrOutput *no = gc_alloc(sizeof(IrOutput) * (size_t)cap);
    if (L->nout) memcpy(no, L->outs, sizeof(IrOutput) * (size_t)L->nout);
    L->outs = no;
    L->capout = cap;
  }
  IrOutput o = {name, reg, t, kind};
  L->outs[L->nout++] = o;
}

static ConKind con_of(const AstType *at) {
  switch (at->base) {
  case TB_SIMPLEX: return CON_SIMPLEX;
  case TB_ORDERED: return CON_ORDERED;
  case TB_POS_ORDERED: return CON_POS_ORDERED;
  case TB_UNIT_VECTOR: return CON_UNIT_VECTOR;
  case TB_CHOL_CORR: return CON_CHOL_CORR;
  case TB_COV: return CON_COV;
  case TB_CORR: return CON_CORR;
  case TB_CHOL_COV: return CON_CHOL_COV;
  default: break;
  }
  if (at->lower && at->upper) return CON_LOWER_UPPER;
  if (at->lower) return CON_LOWER;
  if (at->upper) return CON_UPPER;
  return CON_NONE;
}

/* Size registers of a declaration: array dimensions, then vector length or
   matrix rows and columns (square types repeat their one size).  Returns the
   count, or -1 when a size is missing (allowed with an initialiser). */
static int lower_sizes(Lower *L, const AstType *at, int *out) {
  int n = 0;
  for (int i = 0; i < at->ndims; i++) {
    if (!at->dims || !at->dims[i]) return -1;
    out[n++] = lower_expr(L, at->dims[i]);
  }
  switch (at->base) {
  case TB_INT: case TB_REAL: case TB_BOOL: case TB_STRING: case TB_VOID: break;
  case TB_MATRIX:
    if (!at->size1 || !at->size2) return -1;
    out[n++] = lower_expr(L, at->size1);
    out[n++] = lower_expr(L, at->size2);
    break;
  case TB_CHOL_CORR: case TB_COV: case TB_CORR: case TB_CHOL_COV:
    if (!at->size1) return -1;
    out[n] = lower_expr(L, at->size1);
    out[n + 1] = out[n];
    n += 2;
    break;
  default:
    if (!at->size1) return -1;
    out[n++] = lower_expr(L, at->size1);
    break;
  }
  return n;
}

/* A param whose value is a flat weight vector (a network's or a flow's):
   IR_PARAM with the layout's sizes (imm: a network's activations; none for a
   flow), recorded in netdefs so that calls (f(x)) and flow(q) find the
   layout.  Not an output: the weights are saved apart (safetensors). */
/* The IR_PARAM of the declaration s (its register made and bound to it), for
   the caller to complete and emit. */
static IrInstr param_ins(Lower *L, const Ast *s, IrCon con, int nsizes, int *sizes) {
  int r = reg_new(L, s->ty, s->name);
  map_put(&L->vars, s, r);
  IrInstr in = ins_new(IR_PARAM, s->pos);
  in.dst = r;
  in.name = s->name;
  in.con = con;
  in.nsizes = nsizes;
  in.sizes = sizes;
  return in;
}

static void lower_weights_param(Lower *L, const Ast *s, IrCon con, int n, int *sz, Value imm) {
  IrInstr in = param_ins(L, s, con, n, sz);
  in.imm = imm;
  emit(L, &in);
  map_put(&L->nets, s, L->nnets);
  L->netdefs = gc_grow(L->netdefs, L->nnets, &L->capnets, sizeof(IrInstr));
  L->netdefs[L->nnets++] = in;
}

static void lower_decl(Lower *L, const Ast *s) {
  const AstType *at = s->type;
  int *sizes = int_array(at->ndims + 2);
  int ns = lower_sizes(L, at, sizes);
  IrCon con = {(uint8_t)con_of(at), -1, -1};
  /* bounds of non-int variables are reals */
  Type bt = ty_make(at->base == TB_INT ? TY_INT : TY_REAL, 0);
  if (at->lower) con.lower = lower_as(L, at->lower, bt);
  if (at->upper) con.upper = lower_as(L, at->upper, bt);
  bool top = L->depth == 0 && L->blk != BLK_FUNC;
  if (s->is_param && s->ty.base == TY_NETWORK) { /* param network f = mlp(...); */
    const Ast *e = s->a, *hid = e->list.items[1];
    int n = hid->list.n + 2;
    int *sz = int_array(n);
    sz[0] = lower_expr(L, e->list.items[0]);
    for (int i = 0; i < hid->list.n; i++) sz[i + 1] = lower_expr(L, hid->list.items[i]);
    sz[n - 1] = lower_expr(L, e->list.items[2]);
    lower_weights_param(L, s, con, n, sz, val_int(e->ival));
    return;
  }
  if (s->is_param && s->ty.base == TY_FLOW) { /* param flow q = realnvp(D, layers, hidden); */
    int *sz = int_array(3);
    for (int i = 0; i < 3; i++) sz[i] = lower_expr(L, s->a->list.items[i]);
    lower_weights_param(L, s, con, 3, sz, val_none());
    return;
  }
  if (s->is_param) { /* param T x [= init]; (the checker keeps it at the model's top level) */
    int init = s->a ? lower_as(L, s->a, s->ty) : -1;
    IrInstr in = param_ins(L, s, con, ns > 0 ? ns : 0, sizes);
    if (init >= 0) {
      in.nargs = 1;
      in.args = int_array(1);
      in.args[0] = init;
    }
    emit(L, &in);
    if (L->blk == BLK_MODEL) add_output(L, s->name, in.dst, s->ty, OUT_DERIVED);
    return;
  }
  if (s->b) { /* T x ~ dist(...) */
    IrDist d = lower_dist(L, s->b);
    int r = reg_new(L, s->ty, s->name);
    map_put(&L->vars, s, r);
    IrInstr in = ins_new(IR_SAMPLE, s->pos);
    in.dst = r;
    in.name = s->name;
    in.dist = d;
    in.con = con;
    in.nsizes = ns > 0 ? ns : 0;
    in.sizes = sizes;
    emit(L, &in);
    if (top && L->blk != BLK_GUIDE) add_output(L, s->name, r, s->ty, OUT_LATENT);
    return;
  }
  int init = s->a ? lower_as(L, s->a, s->ty) : -1;
  int r = reg_new(L, s->ty, s->name);
  map_put(&L->vars, s, r);
  if (top && L->blk == BLK_DATA && !s->a) {
    IrInstr in = ins_new(IR_DATA, s->pos);
    in.dst = r;
    in.name = s->name;
    in.con = con;
    in.nsizes = ns > 0 ? ns : 0;
    in.sizes = sizes;
    emit(L, &in);
    return;
  }
  if (!s->a || ns > 0) { /* the declared sizes: checked when the value moves in */
    IrInstr in = ins_new(IR_DECL, s->pos);
    in.dst = r;
    in.name = s->name;
    in.con = con;
    in.nsizes = ns > 0 ? ns : 0;
    in.sizes = sizes;
    emit(L, &in);
    if (s->a) emit_move(L, s->pos, r, init);
  } else {
    assign_to(L, s->pos, r, init);
  }
  if (top && L->blk == BLK_MODEL) add_output(L, s->name, r, s->ty, OUT_DERIVED);
  if (top && L->blk == BLK_GEN) add_output(L, s->name, r, s->ty, OUT_GENERATED);
}

/* Index lists of an lvalue chain x[i][j] flattened into x[i, j]. */
static const Ast *lvalue_parts(const Ast *lv, const Ast **chain, int *nchain) {
  int n = 0;
  const Ast *e = lv;
  while (e->kind == AST_INDEX) {
    chain[n++] = e;
    e = e->a;
  }
  *nchain = n;
  return e;
}

static void lower_assign(Lower *L, const Ast *s) {
  const Ast *lv = s->a;
  bool compound = s->op != AOP_ASSIGN && s->op != AOP_NONE;
  if (lv->kind == AST_VAR) {
    int x = map_get(&L->vars, lv->ref);
    if (!compound) {
      assign_to(L, s->pos, x, lower_as(L, s->b, lv->ty));
      return;
    }
    int v = lower_expr(L, s->b);
    IrInstr in = ins_new(IR_BINARY, s->pos);
    in.sub = ir_op(s->op);
    in.nargs = 2;
    in.args = int_array(2);
    in.args[0] = x;
    in.args[1] = v;
    in.dst = x;
    emit(L, &in);
    return;
  }
  int depth = 0;
  for (const Ast *e = lv; e->kind == AST_INDEX; e = e->a) depth++;
  const Ast **chain = gc_alloc(sizeof(Ast *) * (size_t)depth);
  int nchain = 0;
  const Ast *root = lvalue_parts(lv, chain, &nchain);
  int x = map_get(&L->vars, root->ref);
  int nidx = 0;
  for (int i = 0; i < nchain; i++) nidx += chain[i]->list.n;
  IrIndex *idx = gc_alloc_atomic(sizeof(IrIndex) * (size_t)(nidx + 1));
  int k = 0;
  for (int i = nchain - 1; i >= 0; i--) k += lower_indices(L, &chain[i]->list, idx + k);
  int v;
  if (compound) {
    IrInstr get = ins_new(IR_INDEX, s->pos);
    get.nargs = 1;
    get.args = int_array(1);
    get.args[0] = x;
    get.nidx = nidx;
    get.idx = idx;
    get.dst = reg_new(L, lv->ty, NULL);
    emit(L, &get);
    int rhs = lower_expr(L, s->b);
    IrInstr op = ins_new(IR_BINARY, s->pos);
    op.sub = ir_op(s->op);
    op.nargs = 2;
    op.args = int_array(2);
    op.args[0] = get.dst;
    op.args[1] = rhs;
    op.dst = reg_new(L, lv->ty, NULL);
    emit(L, &op);
    v = op.dst;
  } else {
    v = lower_as(L, s->b, lv->ty);
  }
  IrInstr st = ins_new(IR_STORE, s->pos);
  st.dst = x;
  st.nargs = 1;
  st.args = int_array(1);
  st.args[0] = v;
  st.nidx = nidx;
  st.idx = idx;
  emit(L, &st);
}

static void lower_for(Lower *L, const Ast *s) {
  if (s->b) {
    int lo = lower_expr(L, s->a), hi = lower_expr(L, s->b);
    int var = reg_new(L, ty_make(TY_INT, 0), s->name);
    map_put(&L->vars, s, var);
    IrInstr in = ins_new(IR_FOR, s->pos);
    in.nargs = 2;
    in.args = int_array(2);
    in.args[0] = lo;
    in.args[1] = hi;
    in.var = var;
    if (s->sval && strcmp(s->sval, "plate") == 0) { /* see IR_FOR */
      in.name = s->name;
      if (s->list.n) {
        in.nargs = 3;
        in.args = int_array(3);
        in.args[0] = lo;
        in.args[1] = hi;
        in.args[2] = lower_expr(L, s->list.items[0]);
      }
    }
    in.body = lower_block(L, s->c);
    emit(L, &in);
    return;
  }
  /* for (x in container): an index loop 1..size that reads x first */
  int arr = lower_expr(L, s->a);
  Type at = s->a->ty;
  const char *sizefn = at.ndims > 0 ? "size" : "num_elements";
  const Builtin *b = builtin_lookup(sizefn);
  if (!b) {
    internal(L, s->pos, "builtin size/num_elements is missing");
    return;
  }
  IrInstr sz = ins_new(IR_BUILTIN, s->pos);
  sz.builtin = b;
  sz.nargs = 1;
  sz.args = int_array(1);
  sz.args[0] = arr;
  sz.dst = reg_new(L, ty_make(TY_INT, 0), NULL);
  emit(L, &sz);
  int one = emit_const(L, s->pos, ty_make(TY_INT, 0), val_int(1));
  int i = reg_new(L, ty_make(TY_INT, 0), NULL);
  int x = reg_new(L, s->ty, s->name);
  map_put(&L->vars, s, x);
  Buf body = {0};
  Buf *saved = L->cur;
  L->cur = &body;
  IrInstr get = ins_new(IR_INDEX, s->pos);
  get.nargs = 1;
  get.args = int_array(1);
  get.args[0] = arr;
  get.nidx = 1;
  get.idx = gc_alloc_atomic(sizeof(IrIndex));
  get.idx[0].kind = IX_SINGLE;
  get.idx[0].lo = i;
  get.idx[0].hi = -1;
  get.dst = x;
  emit(L, &get);
  L->depth++;
  lower_stmt(L, s->c);
  L->depth--;
  L->cur = saved;
  IrInstr in = ins_new(IR_FOR, s->pos);
  in.nargs = 2;
  in.args = int_array(2);
  in.args[0] = one;
  in.args[1] = sz.dst;
  in.var = i;
  in.body = buf_freeze(&body);
  emit(L, &in);
}

static void lower_stmt(Lower *L, const Ast *s) {
  if (diag_failed(L->d) || !s) return;
  switch (s->kind) {
  case AST_STMTS:
    L->depth++;
    for (int i = 0; i < s->list.n; i++) lower_stmt(L, s->list.items[i]);
    L->depth--;
    break;
  case AST_DECL: lower_decl(L, s); break;
  case AST_ASSIGN: lower_assign(L, s); break;
  case AST_TILDE: {
    IrInstr in = ins_new(IR_OBSERVE, s->pos);
    in.nargs = 1;
    in.args = int_array(1);
    in.args[0] = lower_expr(L, s->a);
    observed_place(L, &in);
    in.dist = lower_dist(L, s->b);
    emit(L, &in);
    break;
  }
  case AST_TARGET: {
    IrInstr in = ins_new(IR_FACTOR, s->pos);
    in.nargs = 1;
    in.args = int_array(1);
    in.args[0] = lower_as(L, s->a, ty_make(TY_REAL, 0));
    emit(L, &in);
    break;
  }
  case AST_EXPRSTMT: lower_call(L, s->a); break;
  case AST_IF: {
    int c = to_bool(L, s->a->pos, lower_expr(L, s->a));
    IrInstr in = ins_new(IR_IF, s->pos);
    in.nargs = 1;
    in.args = int_array(1);
    in.args[0] = c;
    in.then_b = lower_block(L, s->b);
    if (s->c) in.else_b = lower_block(L, s->c);
    emit(L, &in);
    break;
  }
  case AST_FOR: lower_for(L, s); break;
  case AST_WHILE: {
    IrInstr in = ins_new(IR_WHILE, s->pos);
    Buf cb = {0};
    Buf *saved = L->cur;
    L->cur = &cb;
    in.cond = to_bool(L, s->a->pos, lower_expr(L, s->a));
    L->cur = saved;
    in.cond_b = buf_freeze(&cb);
    in.body = lower_block(L, s->b);
    emit(L, &in);
    break;
  }
  case AST_BREAK: case AST_CONTINUE: {
    IrInstr in = ins_new(s->kind == AST_BREAK ? IR_BREAK : IR_CONTINUE, s->pos);
    emit(L, &in);
    break;
  }
  case AST_RETURN: {
    IrInstr in = ins_new(IR_RETURN, s->pos);
    if (s->a) {
      in.nargs = 1;
      in.args = int_array(1);
      in.args[0] = lower_as(L, s->a, L->func ? L->func->ty : s->a->ty);
    }
    emit(L, &in);
    break;
  }
  default: internal(L, s->pos, "unexpected statement"); break;
  }
}

/* ---- functions and program ------------------------------------------------- */

static void regs_reset(Lower *L) {
  L->nregs = L->capregs = 0;
  L->regtypes = NULL;
  L->regnames = NULL;
  memset(&L->vars, 0, sizeof L->vars);
}

static void regs_store(Lower *L, IrFunc *f) {
  f->nregs = L->nregs;
  f->regtypes = L->regtypes;
  f->regnames = L->regnames;
}

static void lower_func(Lower *L, const Ast *fd, IrFunc *f) {
  regs_reset(L);
  L->func = fd;
  L->blk = BLK_FUNC;
  L->depth = 0;
  f->name = fd->name;
  f->pos = fd->pos;
  f->nparams = fd->list.n;
  f->ret = fd->ty;
  for (int i = 0; i < fd->list.n; i++) {
    const Ast *prm = fd->list.items[i];
    map_put(&L->vars, prm, reg_new(L, prm->ty, prm->name));
  }
  Buf b = {0};
  L->cur = &b;
  lower_stmt(L, fd->a);
  f->body = buf_freeze(&b);
  regs_store(L, f);
  L->func = NULL;
}

static IrBlock lower_program_block(Lower *L, const Ast *blk, int kind) {
  Buf b = {0};
  if (!blk) return buf_freeze(&b);
  L->cur = &b;
  L->blk = kind;
  L->depth = 0;
  for (int i = 0; i < blk->list.n; i++) lower_stmt(L, blk->list.items[i]);
  return buf_freeze(&b);
}

/* Does the block sample, observe or factor, or call a function that does? */
static bool block_stochastic(const IrBlock *b, const IrFunc *funcs) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    switch (in->op) {
    case IR_SAMPLE: case IR_OBSERVE: case IR_FACTOR: case IR_CONDITION: return true;
    case IR_CALL:
      if (funcs[in->callee].stochastic) return true;
      break;
    case IR_IF:
      if (block_stochastic(&in->then_b, funcs) || block_stochastic(&in->else_b, funcs))
        return true;
      break;
    case IR_FOR: case IR_WHILE:
      if (block_stochastic(&in->body, funcs) || block_stochastic(&in->cond_b, funcs))
        return true;
      break;
    default: break;
    }
  }
  return false;
}

IrProgram *ir_lower(const CheckedProgram *cp, Diag *d) {
  if (!cp) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "ir_lower: no program");
    return NULL;
  }
  Lower L;
  memset(&L, 0, sizeof L);
  L.d = d;
  L.cp = cp;
  IrProgram *p = gc_alloc(sizeof *p);
  L.p = p;
  p->file = cp->file;
  L.hostb = gc_alloc(sizeof(Builtin *) * (size_t)(cp->nhost + 1));
  p->nfuncs = cp->nfuncs;
  p->funcs = gc_alloc(sizeof(IrFunc) * (size_t)(cp->nfuncs + 1));
  for (int i = 0; i < cp->nfuncs && !diag_failed(d); i++) lower_func(&L, cp->funcs[i], &p->funcs[i]);
  regs_reset(&L);
  p->main.name = "main";
  p->main.ret = ty_make(TY_VOID, 0);
  p->data_b = lower_program_block(&L, cp->data, BLK_DATA);
  p->model_b = lower_program_block(&L, cp->model, BLK_MODEL);
  p->gen_b = lower_program_block(&L, cp->generated, BLK_GEN);
  p->guide_b = lower_program_block(&L, cp->guide, BLK_GUIDE);
  p->has_guide = cp->guide != NULL;
  regs_store(&L, &p->main);
  p->noutputs = L.nout;
  p->outputs = L.outs;
  if (diag_failed(d)) return NULL;
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = 0; i < p->nfuncs; i++)
      if (!p->funcs[i].stochastic && block_stochastic(&p->funcs[i].body, p->funcs))
        p->funcs[i].stochastic = changed = true;
  }
  p->main.stochastic = block_stochastic(&p->model_b, p->funcs);
  return p;
}
