/* jit_ode.c — an ode_rk45 right-hand side compiled to native code, with its
 * Jacobians in forward mode, so the solver's inner loop (stdlib/ode.c) makes
 * no interpreter or tape calls.
 *
 * The user's function f(t, y, extras...) becomes one function of the module
 * being compiled (InterpOdeFn, ir/interp.h): every real carries, beside its
 * value, its tangents along P directions (d/dy_1 .. d/dy_n, then one per
 * extra-argument element that depends on theta), so one pass gives f, J_y
 * and J_p; the sensitivity equations need exactly these, and the solver
 * stays the one implementation the interpreter uses.  Values and partials
 * come from the scalar rules (stdlib/scalar_rule.h) through jg_emit_rule3,
 * as for the rest of the JIT: f is the interpreter's f bit for bit, so the
 * solver takes the same steps; the Jacobians differ from the interpreter's
 * reverse sweeps only by the order of their sums.
 *
 * P is known only at run time, so the tangents live in a workspace the
 * caller provides and their lane loops are small C functions the code calls
 * (lanes2 ...): a slot of P doubles per real register, and
 * for each local container (declared, built, or computed element-wise)
 * C values and C*P tangents, C = max(n, the largest constant size).  The
 * arguments y and the extras are read in place; their tangents are unit
 * vectors, made where an element is read.
 *
 * What is compiled: real, int and bool scalars and their arithmetic,
 * comparisons and the builtins with scalar rules; 1-D containers of reals
 * (vector, row_vector, real[], int[] arguments) indexed by one index, built
 * ([a, b]', {a, b}), declared with a size, stored into, copied, transposed,
 * and element-wise + - .* ./ and scalar broadcasting; size, num_elements,
 * rows, cols; if, for, while; reject.  Anything else leaves the function
 * interpreted (the reason is shown by `ppl run --verbose`).  Where the
 * interpreter would report an error (an index, a size, a domain), the code
 * returns 0 and the solve is re-run interpreted, which reports it.
 */
#include "jit_gen.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "interp.h"

#if PPL_HAVE_LLVM

/* how the code holds a register */
enum { OK_NONE, OK_REAL, OK_INT, OK_BOOL, OK_LOCAL, OK_Y, OK_X };

typedef struct Og {
  Gen *g;
  const IrFunc *f;
  uint8_t *kind;
  int *xi;           /* arguments after y: their index among the extras, else -1 */
  LLVMValueRef *val; /* scalars: an alloca; containers: the values' pointer */
  LLVMValueRef *tan; /* OK_REAL: its P tangents; OK_LOCAL: element e's at + e*P */
  LLVMValueRef *len; /* OK_LOCAL: an alloca (i64); OK_Y, OK_X: the length */
  LLVMValueRef *xc;  /* OK_X: the columns of its elements (may be NULL) */
  LLVMValueRef t, y, xv, xcol, xlen, n, P, C, dy, jy, jp, work;
  LLVMValueRef s[3]; /* scratch tangents */
  int nscalar, ncont;
  int64_t kmax;
  const char *why;
} Og;

static void why(Og *o, const IrInstr *ins, const char *what) {
  if (!o->why) o->why = gc_printf("%d:%d: %s", ins->pos.line, ins->pos.col, what);
}

static bool is_cont(uint8_t k) { return k == OK_LOCAL || k == OK_Y || k == OK_X; }
static bool is_scal(uint8_t k) { return k == OK_REAL || k == OK_INT || k == OK_BOOL; }

static uint8_t kind_of(Type t) {
  if (t.ndims == 0) {
    switch (t.base) {
    case TY_REAL: return OK_REAL;
    case TY_INT: return OK_INT;
    case TY_BOOL: return OK_BOOL;
    case TY_VECTOR: case TY_ROWVEC: return OK_LOCAL;
    default: return OK_NONE;
    }
  }
  if (t.ndims == 1 && (t.base == TY_REAL || t.base == TY_INT)) return OK_LOCAL;
  return OK_NONE;
}

/* ---- loops and lanes ---- */

typedef struct OLoop {
  LLVMValueRef k;
  LLVMBasicBlockRef hb, xb;
} OLoop;

static LLVMValueRef loop_begin(Gen *g, LLVMValueRef lo, LLVMValueRef hi, OLoop *L) {
  L->k = entry_alloca(g, g->i64, "k");
  LLVMBuildStore(g->B, lo, L->k);
  L->hb = new_bb(g, "l");
  LLVMBasicBlockRef bb = new_bb(g, "lb");
  L->xb = new_bb(g, "lx");
  LLVMBuildBr(g->B, L->hb);
  LLVMPositionBuilderAtEnd(g->B, L->hb);
  LLVMValueRef i = LLVMBuildLoad2(g->B, g->i64, L->k, "");
  LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, i, hi, ""), bb, L->xb);
  LLVMPositionBuilderAtEnd(g->B, bb);
  return i;
}

static void loop_end(Gen *g, OLoop *L) {
  LLVMBuildStore(g->B, LLVMBuildAdd(g->B, LLVMBuildLoad2(g->B, g->i64, L->k, ""), ci(g, 1), ""), L->k);
  LLVMBuildBr(g->B, L->hb);
  LLVMPositionBuilderAtEnd(g->B, L->xb);
}

static LLVMValueRef ldd(Gen *g, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildLoad2(g->B, g->f64, gep(g, g->f64, base, i), "");
}
static void std_(Gen *g, LLVMValueRef base, LLVMValueRef i, LLVMValueRef v) {
  LLVMBuildStore(g->B, v, gep(g, g->f64, base, i));
}

/* The tangents' lane loops are these C functions, called from the code:
   inline loops over a length known only at run time made the module's
   optimisation several times slower than all the rest of a program, for
   nothing measurable at run time (P is a handful). */
static void lanes0(double *d, int64_t P) {
  for (int64_t k = 0; k < P; k++) d[k] = 0;
}
static void lanes1(double *d, int64_t P, double a, const double *x) {
  for (int64_t k = 0; k < P; k++) d[k] = a * x[k];
}
static void lanes2(double *d, int64_t P, double a, const double *x, double b, const double *y) {
  for (int64_t k = 0; k < P; k++) d[k] = a * x[k] + b * y[k];
}
static void lanes3(double *d, int64_t P, double a, const double *x, double b, const double *y,
                   double c, const double *z) {
  for (int64_t k = 0; k < P; k++) d[k] = a * x[k] + b * y[k] + c * z[k];
}
static void lanes_copy_c(double *d, int64_t P, const double *x) {
  for (int64_t k = 0; k < P; k++) d[k] = x[k];
}
/* the unit vector along lane (none when lane < 0) */
static void lanes_unit(double *d, int64_t P, int64_t lane) {
  for (int64_t k = 0; k < P; k++) d[k] = k == lane;
}
/* an extra argument's element e: the unit vector along its parameter
   column's lane n + col, or zero */
static void lanes_extra(double *d, int64_t P, int64_t n, const int32_t *col, int64_t e) {
  lanes_unit(d, P, col && col[e] >= 0 ? n + col[e] : -1);
}
/* component i's tangents into column i of jy (lanes < n) and jp (the rest) */
static void lanes_jac(const double *t, int64_t P, int64_t n, int64_t i, double *jy, double *jp) {
  for (int64_t k = 0; k < P; k++) {
    if (k < n) jy[k * n + i] = t[k];
    else jp[(k - n) * n + i] = t[k];
  }
}

static LLVMValueRef fn_ptr(Gen *g, const void *f) {
  return LLVMConstIntToPtr(LLVMConstInt(g->i64, (unsigned long long)(uintptr_t)f, 0), g->ptr);
}

/* a call of one of the functions above; types: 'p' pointer, 'i' i64, 'd' double */
static void lane_call(Og *o, const void *f, const char *sig, LLVMValueRef *a) {
  Gen *g = o->g;
  LLVMTypeRef ps[8];
  int n = (int)strlen(sig);
  for (int i = 0; i < n; i++) ps[i] = sig[i] == 'p' ? g->ptr : sig[i] == 'i' ? g->i64 : g->f64;
  LLVMTypeRef ft = LLVMFunctionType(g->vd, ps, (unsigned)n, 0);
  call(g, ft, fn_ptr(g, f), a, n);
}

/* dst = sum_j p[j] * src[j] over the lanes (src[j] NULL: no term) */
static void lanes_combine(Og *o, LLVMValueRef dst, int m, const LLVMValueRef *p,
                          const LLVMValueRef *src) {
  LLVMValueRef a[8] = {dst, o->P};
  int k = 2;
  for (int j = 0; j < m; j++)
    if (src[j]) {
      a[k++] = p[j];
      a[k++] = src[j];
    }
  static const char *sig[4] = {"pi", "pidp", "pidpdp", "pidpdpdp"};
  static const void *fs[4] = {(const void *)lanes0, (const void *)lanes1, (const void *)lanes2,
                              (const void *)lanes3};
  lane_call(o, fs[(k - 2) / 2], sig[(k - 2) / 2], a);
}

static void lanes_zero(Og *o, LLVMValueRef dst) { lanes_combine(o, dst, 0, NULL, NULL); }

static void lanes_copy(Og *o, LLVMValueRef dst, LLVMValueRef src) {
  LLVMValueRef a[3] = {dst, o->P, src};
  lane_call(o, (const void *)lanes_copy_c, "pip", a);
}

/* ---- values ---- */

static LLVMValueRef sval(Og *o, int r) {
  Gen *g = o->g;
  LLVMTypeRef t = o->kind[r] == OK_REAL ? g->f64 : o->kind[r] == OK_INT ? g->i64 : g->i1;
  return LLVMBuildLoad2(g->B, t, o->val[r], "");
}

static LLVMValueRef as_real(Og *o, int r) {
  Gen *g = o->g;
  LLVMValueRef v = sval(o, r);
  switch (o->kind[r]) {
  case OK_INT: return LLVMBuildSIToFP(g->B, v, g->f64, "");
  case OK_BOOL: return LLVMBuildUIToFP(g->B, v, g->f64, "");
  default: return v;
  }
}

static LLVMValueRef as_int(Og *o, int r) {
  Gen *g = o->g;
  LLVMValueRef v = sval(o, r);
  switch (o->kind[r]) {
  case OK_REAL: return LLVMBuildFPToSI(g->B, v, g->i64, "");
  case OK_BOOL: return LLVMBuildZExt(g->B, v, g->i64, "");
  default: return v;
  }
}

static LLVMValueRef as_bool(Og *o, int r) {
  Gen *g = o->g;
  LLVMValueRef v = sval(o, r);
  switch (o->kind[r]) {
  case OK_REAL: return LLVMBuildFCmp(g->B, LLVMRealUNE, v, cf(g, 0), "");
  case OK_INT: return LLVMBuildICmp(g->B, LLVMIntNE, v, ci(g, 0), "");
  default: return v;
  }
}

/* a scalar of class from into register r (a scalar), converted */
static void put_scalar(Og *o, int r, LLVMValueRef v, uint8_t from) {
  Gen *g = o->g;
  uint8_t to = o->kind[r];
  if (from != to) {
    if (to == OK_REAL) v = from == OK_INT ? LLVMBuildSIToFP(g->B, v, g->f64, "") : LLVMBuildUIToFP(g->B, v, g->f64, "");
    else if (to == OK_INT) v = from == OK_BOOL ? LLVMBuildZExt(g->B, v, g->i64, "") : LLVMBuildFPToSI(g->B, v, g->i64, "");
    else v = from == OK_INT ? LLVMBuildICmp(g->B, LLVMIntNE, v, ci(g, 0), "") : LLVMBuildFCmp(g->B, LLVMRealUNE, v, cf(g, 0), "");
  }
  LLVMBuildStore(g->B, v, o->val[r]);
}

/* a scalar register's tangents, NULL for an int or bool */
static LLVMValueRef stan(Og *o, int r) { return o->kind[r] == OK_REAL ? o->tan[r] : NULL; }

static LLVMValueRef clen(Og *o, int r) {
  Gen *g = o->g;
  return o->kind[r] == OK_LOCAL ? LLVMBuildLoad2(g->B, g->i64, o->len[r], "") : o->len[r];
}

/* element e of container r, and its tangents into dst */
static LLVMValueRef elem(Og *o, int r, LLVMValueRef e) { return ldd(o->g, o->val[r], e); }

static void elem_tan(Og *o, LLVMValueRef dst, int r, LLVMValueRef e) {
  Gen *g = o->g;
  if (o->kind[r] == OK_LOCAL) {
    lanes_copy(o, dst, gep(g, g->f64, o->tan[r], LLVMBuildMul(g->B, e, o->P, "")));
  } else if (o->kind[r] == OK_Y) {
    LLVMValueRef a[3] = {dst, o->P, e};
    lane_call(o, (const void *)lanes_unit, "pii", a);
  } else {
    LLVMValueRef a[5] = {dst, o->P, o->n, o->xc[r], e};
    lane_call(o, (const void *)lanes_extra, "piipi", a);
  }
}

/* index register ir as a 0-based index into container r, checked */
static LLVMValueRef index0(Og *o, int r, int ir) {
  Gen *g = o->g;
  LLVMValueRef i = LLVMBuildSub(g->B, as_int(o, ir), ci(g, 1), "");
  LLVMValueRef n = clen(o, r);
  check(g, LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, i, ci(g, 0), ""),
                        LLVMBuildICmp(g->B, LLVMIntSLT, i, n, ""), ""));
  return i;
}

/* a local container's length, checked against its capacity */
static void set_len(Og *o, int r, LLVMValueRef n) {
  Gen *g = o->g;
  check(g, LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, n, ci(g, 0), ""),
                        LLVMBuildICmp(g->B, LLVMIntSLE, n, o->C, ""), ""));
  LLVMBuildStore(g->B, n, o->len[r]);
}

/* ---- one rule, on scalars or element by element ---- */

/* An operand of an element-wise rule: a scalar register, or container
   element e (its tangents in a scratch slot). */
static void operand(Og *o, int r, LLVMValueRef e, int slot, LLVMValueRef *x, LLVMValueRef *xt) {
  if (is_cont(o->kind[r])) {
    *x = elem(o, r, e);
    *xt = o->s[slot];
    elem_tan(o, *xt, r, e);
  } else {
    *x = as_real(o, r);
    *xt = stan(o, r);
  }
}

/* z = rule(x), its tangents into zt; its ok checked */
static LLVMValueRef rule(Og *o, const ScalarRule *sr, const LLVMValueRef *x, const LLVMValueRef *xt,
                         LLVMValueRef zt) {
  Gen *g = o->g;
  int n = sr->nargs;
  LLVMValueRef z, ok = NULL, p[3] = {NULL, NULL, NULL};
  jg_emit_rule3(g, sr, x[0], n >= 2 ? x[1] : NULL, n == 3 ? x[2] : NULL, &z, xt[0] ? &p[0] : NULL,
                n >= 2 && xt[1] ? &p[1] : NULL, n == 3 && xt[2] ? &p[2] : NULL,
                sr->ok != DK_NONE ? &ok : NULL);
  if (ok) check(g, ok);
  lanes_combine(o, zt, n, p, xt);
  return z;
}

/* dst = rule(args) element-wise over the containers among args (same
   lengths), scalars broadcast; dst a local container */
static void rule_ew(Og *o, const ScalarRule *sr, int dst, const int *args) {
  Gen *g = o->g;
  int n = sr->nargs, c = -1;
  for (int k = 0; k < n; k++)
    if (is_cont(o->kind[args[k]])) {
      if (c >= 0) check(g, LLVMBuildICmp(g->B, LLVMIntEQ, clen(o, args[k]), clen(o, c), ""));
      else c = args[k];
    }
  LLVMValueRef m = clen(o, c);
  set_len(o, dst, m);
  OLoop L;
  LLVMValueRef e = loop_begin(g, ci(g, 0), m, &L);
  LLVMValueRef x[3] = {NULL, NULL, NULL}, xt[3] = {NULL, NULL, NULL};
  for (int k = 0; k < n; k++) operand(o, args[k], e, k, &x[k], &xt[k]);
  LLVMValueRef zt = gep(g, g->f64, o->tan[dst], LLVMBuildMul(g->B, e, o->P, ""));
  LLVMValueRef z = rule(o, sr, x, xt, zt);
  std_(g, o->val[dst], e, z);
  loop_end(g, &L);
}

/* dst (a real register) = rule(args) of scalars */
static void rule_scalar(Og *o, const ScalarRule *sr, int dst, const int *args) {
  LLVMValueRef x[3] = {NULL, NULL, NULL}, xt[3] = {NULL, NULL, NULL};
  for (int k = 0; k < sr->nargs; k++) operand(o, args[k], NULL, k, &x[k], &xt[k]);
  /* the tangents go to a scratch slot first where dst is an operand */
  bool alias = false;
  for (int k = 0; k < sr->nargs; k++) alias |= args[k] == dst;
  LLVMValueRef z = rule(o, sr, x, xt, alias ? o->s[2] : o->tan[dst]);
  if (alias) lanes_copy(o, o->tan[dst], o->s[2]);
  put_scalar(o, dst, z, OK_REAL);
}

/* dst (a local container) = a copy of container src */
static void copy_cont(Og *o, int dst, int src) {
  Gen *g = o->g;
  if (dst == src) return;
  LLVMValueRef m = clen(o, src);
  set_len(o, dst, m);
  OLoop L;
  LLVMValueRef e = loop_begin(g, ci(g, 0), m, &L);
  std_(g, o->val[dst], e, elem(o, src, e));
  elem_tan(o, gep(g, g->f64, o->tan[dst], LLVMBuildMul(g->B, e, o->P, "")), src, e);
  loop_end(g, &L);
}

/* ---- instructions ---- */

static void emit_block(Og *o, const IrBlock *b);

static bool dst_ok(Og *o, const IrInstr *ins) {
  int d = ins->dst;
  if (d < 0) return true;
  if (o->kind[d] == OK_Y || o->kind[d] == OK_X) {
    why(o, ins, "an argument is assigned");
    return false;
  }
  return true;
}

static void emit_binary(Og *o, const IrInstr *ins) {
  Gen *g = o->g;
  int a = ins->args[0], b = ins->args[1], d = ins->dst, op = ins->sub;
  uint8_t ka = o->kind[a], kb = o->kind[b];
  bool cmp = op == OP_EQ || op == OP_NE || op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE;
  if (is_scal(ka) && is_scal(kb)) {
    bool ints = ka != OK_REAL && kb != OK_REAL;
    if (ints && op != OP_POW) {
      LLVMValueRef z = jg_int_binary(g, op, as_int(o, a), as_int(o, b));
      if (!z) {
        why(o, ins, gc_printf("operator '%s' on integers", ir_op_name((IrOp)op)));
        return;
      }
      put_scalar(o, d, z, cmp ? OK_BOOL : OK_INT);
      return;
    }
    if (cmp) {
      LLVMRealPredicate p = op == OP_EQ ? LLVMRealOEQ : op == OP_NE ? LLVMRealUNE : op == OP_LT ? LLVMRealOLT
                          : op == OP_LE ? LLVMRealOLE : op == OP_GT ? LLVMRealOGT : LLVMRealOGE;
      put_scalar(o, d, LLVMBuildFCmp(g->B, p, as_real(o, a), as_real(o, b), ""), OK_BOOL);
      return;
    }
    const ScalarRule *sr = op_scalar_rule(op);
    if (!sr || o->kind[d] != OK_REAL) {
      why(o, ins, gc_printf("operator '%s'", ir_op_name((IrOp)op)));
      return;
    }
    rule_scalar(o, sr, d, ins->args);
    return;
  }
  /* containers: element-wise, scalars broadcast; a product of two containers
     is a matrix product */
  bool ew = op == OP_ADD || op == OP_SUB || op == OP_EMUL || op == OP_EDIV ||
            ((op == OP_MUL || op == OP_DIV) && (is_scal(ka) || is_scal(kb)));
  if (!ew || o->kind[d] != OK_LOCAL || ka == OK_BOOL || kb == OK_BOOL) {
    why(o, ins, gc_printf("operator '%s' of containers", ir_op_name((IrOp)op)));
    return;
  }
  rule_ew(o, op_scalar_rule(op), d, ins->args);
}

static void emit_builtin(Og *o, const IrInstr *ins) {
  Gen *g = o->g;
  const char *nm = ins->builtin->name;
  int d = ins->dst;
  if (ins->nargs == 1 && is_cont(o->kind[ins->args[0]]) && d >= 0 && o->kind[d] == OK_INT) {
    int a = ins->args[0];
    Type t = o->f->regtypes[a];
    bool isvec = t.ndims == 0 && t.base == TY_VECTOR, isrow = t.ndims == 0 && t.base == TY_ROWVEC;
    LLVMValueRef v = NULL;
    if (!strcmp(nm, "size") || !strcmp(nm, "num_elements")) v = clen(o, a);
    else if (!strcmp(nm, "rows") && (isvec || isrow)) v = isvec ? clen(o, a) : ci(g, 1);
    else if (!strcmp(nm, "cols") && (isvec || isrow)) v = isrow ? clen(o, a) : ci(g, 1);
    if (v) {
      put_scalar(o, d, v, OK_INT);
      return;
    }
  }
  const ScalarRule *sr = sr_builtin(nm);
  bool scal = sr && sr->nargs == ins->nargs && d >= 0 && o->kind[d] == OK_REAL;
  for (int k = 0; scal && k < ins->nargs; k++) scal = is_scal(o->kind[ins->args[k]]);
  if (!scal) {
    why(o, ins, gc_printf("%s(...)", nm));
    return;
  }
  rule_scalar(o, sr, d, ins->args);
}

static void emit_ins(Og *o, const IrInstr *ins) {
  Gen *g = o->g;
  int d = ins->dst;
  if (!dst_ok(o, ins)) return;
  switch ((IrOpcode)ins->op) {
  case IR_CONST: {
    Value v = ins->imm;
    if (is_scal(o->kind[d])) {
      if (v.k == V_REAL) put_scalar(o, d, cf(g, v.r), OK_REAL);
      else if (v.k == V_INT) put_scalar(o, d, ci(g, v.i), OK_INT);
      else if (v.k == V_BOOL) put_scalar(o, d, LLVMConstInt(g->i1, v.b, 0), OK_BOOL);
      else break;
      if (o->kind[d] == OK_REAL) lanes_zero(o, o->tan[d]);
      return;
    }
    if (o->kind[d] != OK_LOCAL || v.k < V_ARR) break;
    size_t m = val_numel(v);
    double *x = gc_alloc_atomic(sizeof(double) * (m ? m : 1));
    val_flatten(v, x);
    set_len(o, d, ci(g, (int64_t)m));
    for (size_t e = 0; e < m; e++) std_(g, o->val[d], ci(g, (int64_t)e), cf(g, x[e]));
    OLoop L;
    LLVMValueRef e = loop_begin(g, ci(g, 0), LLVMBuildMul(g->B, ci(g, (int64_t)m), o->P, ""), &L);
    std_(g, o->tan[d], e, cf(g, 0));
    loop_end(g, &L);
    return;
  }
  case IR_MOVE: {
    int a = ins->args[0];
    if (is_scal(o->kind[d]) && is_scal(o->kind[a])) {
      LLVMValueRef v = sval(o, a);
      if (o->kind[d] == OK_REAL && d != a) {
        if (o->kind[a] == OK_REAL) lanes_copy(o, o->tan[d], o->tan[a]);
        else lanes_zero(o, o->tan[d]);
      }
      put_scalar(o, d, v, o->kind[a]);
      return;
    }
    if (o->kind[d] == OK_LOCAL && is_cont(o->kind[a])) {
      copy_cont(o, d, a);
      return;
    }
    break;
  }
  case IR_UNARY: {
    int a = ins->args[0];
    if (ins->sub == OP_TRANSPOSE && o->kind[d] == OK_LOCAL && is_cont(o->kind[a])) {
      copy_cont(o, d, a);
      return;
    }
    if (ins->sub == OP_NOT && is_scal(o->kind[a]) && is_scal(o->kind[d])) {
      put_scalar(o, d, LLVMBuildNot(g->B, as_bool(o, a), ""), OK_BOOL);
      return;
    }
    if (ins->sub == OP_NEG && o->kind[d] == OK_REAL && is_scal(o->kind[a])) {
      rule_scalar(o, op_scalar_rule(OP_NEG), d, ins->args);
      return;
    }
    if (ins->sub == OP_NEG && o->kind[d] == OK_LOCAL && is_cont(o->kind[a])) {
      rule_ew(o, op_scalar_rule(OP_NEG), d, ins->args);
      return;
    }
    why(o, ins, gc_printf("operator '%s'", ir_op_name((IrOp)ins->sub)));
    return;
  }
  case IR_BINARY: emit_binary(o, ins); return;
  case IR_BUILTIN: emit_builtin(o, ins); return;
  case IR_INDEX: {
    int a = ins->args[0];
    if (ins->nidx != 1 || ins->idx[0].kind != IX_SINGLE || !is_cont(o->kind[a]) || !is_scal(o->kind[d]))
      break;
    LLVMValueRef e = index0(o, a, ins->idx[0].lo);
    LLVMValueRef v = elem(o, a, e);
    if (o->kind[d] == OK_REAL) elem_tan(o, o->tan[d], a, e);
    put_scalar(o, d, v, OK_REAL);
    return;
  }
  case IR_STORE: {
    int a = ins->args[0];
    if (ins->nidx != 1 || ins->idx[0].kind != IX_SINGLE || o->kind[d] != OK_LOCAL || !is_scal(o->kind[a]))
      break;
    LLVMValueRef e = index0(o, d, ins->idx[0].lo);
    std_(g, o->val[d], e, as_real(o, a));
    LLVMValueRef dt = gep(g, g->f64, o->tan[d], LLVMBuildMul(g->B, e, o->P, ""));
    if (o->kind[a] == OK_REAL) lanes_copy(o, dt, o->tan[a]);
    else lanes_zero(o, dt);
    return;
  }
  case IR_ARRAY:
  case IR_ROWVEC: {
    if (o->kind[d] != OK_LOCAL) break;
    for (int k = 0; k < ins->nargs; k++)
      if (!is_scal(o->kind[ins->args[k]])) {
        why(o, ins, "a container of containers");
        return;
      }
    set_len(o, d, ci(g, ins->nargs));
    for (int k = 0; k < ins->nargs; k++) {
      int a = ins->args[k];
      std_(g, o->val[d], ci(g, k), as_real(o, a));
      LLVMValueRef dt = gep(g, g->f64, o->tan[d], LLVMBuildMul(g->B, ci(g, k), o->P, ""));
      if (o->kind[a] == OK_REAL) lanes_copy(o, dt, o->tan[a]);
      else lanes_zero(o, dt);
    }
    return;
  }
  case IR_DECL: {
    if (is_scal(o->kind[d]) && ins->nsizes == 0) {
      if (o->kind[d] == OK_REAL) {
        put_scalar(o, d, cf(g, NAN), OK_REAL);
        lanes_zero(o, o->tan[d]);
      } else {
        put_scalar(o, d, ci(g, 0), OK_INT);
      }
      return;
    }
    if (o->kind[d] != OK_LOCAL || ins->nsizes != 1) break;
    LLVMValueRef m = as_int(o, ins->sizes[0]);
    set_len(o, d, m);
    bool ints = o->f->regtypes[d].base == TY_INT;
    OLoop L;
    LLVMValueRef e = loop_begin(g, ci(g, 0), m, &L);
    std_(g, o->val[d], e, cf(g, ints ? 0 : NAN));
    lanes_zero(o, gep(g, g->f64, o->tan[d], LLVMBuildMul(g->B, e, o->P, "")));
    loop_end(g, &L);
    return;
  }
  case IR_IF: {
    LLVMBasicBlockRef tb = new_bb(g, "then"), eb = new_bb(g, "else"), jb = new_bb(g, "fi");
    LLVMBuildCondBr(g->B, as_bool(o, ins->args[0]), tb, eb);
    LLVMPositionBuilderAtEnd(g->B, tb);
    emit_block(o, &ins->then_b);
    LLVMBuildBr(g->B, jb);
    LLVMPositionBuilderAtEnd(g->B, eb);
    emit_block(o, &ins->else_b);
    LLVMBuildBr(g->B, jb);
    LLVMPositionBuilderAtEnd(g->B, jb);
    return;
  }
  case IR_FOR: {
    if (ins->nargs != 2 || o->kind[ins->var] != OK_INT) break;
    LLVMValueRef lo = as_int(o, ins->args[0]), hi = as_int(o, ins->args[1]);
    OLoop L;
    LLVMValueRef i = loop_begin(g, lo, LLVMBuildAdd(g->B, hi, ci(g, 1), ""), &L);
    put_scalar(o, ins->var, i, OK_INT);
    emit_block(o, &ins->body);
    loop_end(g, &L);
    return;
  }
  case IR_WHILE: {
    LLVMBasicBlockRef hb = new_bb(g, "while"), bb = new_bb(g, "wbody"), xb = new_bb(g, "wend");
    LLVMBuildBr(g->B, hb);
    LLVMPositionBuilderAtEnd(g->B, hb);
    emit_block(o, &ins->cond_b);
    LLVMBuildCondBr(g->B, as_bool(o, ins->cond), bb, xb);
    LLVMPositionBuilderAtEnd(g->B, bb);
    emit_block(o, &ins->body);
    LLVMBuildBr(g->B, hb);
    LLVMPositionBuilderAtEnd(g->B, xb);
    return;
  }
  case IR_REJECT:
    LLVMBuildBr(g->B, g->errbb);
    LLVMPositionBuilderAtEnd(g->B, new_bb(g, "dead"));
    return;
  case IR_RETURN: {
    if (ins->nargs != 1 || !is_cont(o->kind[ins->args[0]])) break;
    int a = ins->args[0];
    LLVMValueRef n = o->n;
    check(g, LLVMBuildICmp(g->B, LLVMIntEQ, clen(o, a), n, ""));
    OLoop L;
    LLVMValueRef i = loop_begin(g, ci(g, 0), n, &L);
    std_(g, o->dy, i, elem(o, a, i));
    elem_tan(o, o->s[0], a, i);
    LLVMValueRef av[6] = {o->s[0], o->P, n, i, o->jy, o->jp};
    lane_call(o, (const void *)lanes_jac, "piiipp", av);
    loop_end(g, &L);
    LLVMBuildRet(g->B, LLVMConstInt(g->i32, 1, 0));
    LLVMPositionBuilderAtEnd(g->B, new_bb(g, "dead"));
    return;
  }
  default: break;
  }
  why(o, ins, gc_printf("this instruction (%s)", d >= 0 ? ty_name(o->f->regtypes[d]) : "no result"));
}

static void emit_block(Og *o, const IrBlock *b) {
  for (int i = 0; i < b->n && !o->why; i++) emit_ins(o, &b->ins[i]);
}

/* ---- set-up ---- */

/* The largest size a local container takes that is a constant of the code:
   a declaration's size register assigned once from a constant, a literal. */
static void count_writes(const IrBlock *b, int *w) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    if (ins->dst >= 0) w[ins->dst]++;
    if (ins->op == IR_FOR) w[ins->var] += 2;
    count_writes(&ins->then_b, w);
    count_writes(&ins->else_b, w);
    count_writes(&ins->body, w);
    count_writes(&ins->cond_b, w);
  }
}

static void const_sizes(const IrBlock *b, const int *w, const IrFunc *f, int64_t *kmax,
                        const int64_t *kint) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    int64_t m = 0;
    if (ins->op == IR_DECL && ins->nsizes == 1 && w[ins->sizes[0]] == 1) m = kint[ins->sizes[0]];
    if (ins->op == IR_ARRAY || ins->op == IR_ROWVEC) m = ins->nargs;
    if (ins->op == IR_CONST && ins->imm.k >= V_ARR) m = (int64_t)val_numel(ins->imm);
    if (m > *kmax) *kmax = m;
    const_sizes(&ins->then_b, w, f, kmax, kint);
    const_sizes(&ins->else_b, w, f, kmax, kint);
    const_sizes(&ins->body, w, f, kmax, kint);
    const_sizes(&ins->cond_b, w, f, kmax, kint);
  }
}

static void int_consts(const IrBlock *b, int64_t *kint) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    if (ins->op == IR_CONST && ins->dst >= 0 && ins->imm.k == V_INT && ins->imm.i > 0 &&
        ins->imm.i <= 4096)
      kint[ins->dst] = ins->imm.i;
    int_consts(&ins->then_b, kint);
    int_consts(&ins->else_b, kint);
    int_consts(&ins->body, kint);
    int_consts(&ins->cond_b, kint);
  }
}

static bool ode_emit(Gen *outer, const IrInstr *ins, int site, InterpOdeNative **out,
                 const char **whynot) {
  const IrFunc *f = &outer->p->funcs[ins->callee];
  const char *file = outer->p->file ? outer->p->file : "model";
  Gen G = *outer, *g = &G;
  Og O;
  memset(&O, 0, sizeof O);
  Og *o = &O;
  o->g = g;
  o->f = f;
  int nr = f->nregs;
  o->kind = gc_alloc_atomic((size_t)nr + 1);
  o->xi = gc_alloc_atomic(sizeof(int) * ((size_t)nr + 1));
  o->val = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  o->tan = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  o->len = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  o->xc = gc_alloc(sizeof(LLVMValueRef) * ((size_t)nr + 1));
  for (int r = 0; r < nr; r++) {
    o->xi[r] = r >= 2 && r < f->nparams ? r - 2 : -1;
    o->kind[r] = kind_of(f->regtypes[r]);
    if (o->kind[r] == OK_NONE) {
      *whynot = gc_printf("%s:%d:%d: a %s value is not compiled (in '%s')", file, f->pos.line,
                          f->pos.col, ty_name(f->regtypes[r]), f->name);
      return false;
    }
    if (r == 0 && o->kind[r] != OK_REAL) o->kind[r] = OK_NONE;
    if (r == 1) o->kind[r] = f->regtypes[r].base == TY_VECTOR && f->regtypes[r].ndims == 0 ? OK_Y : OK_NONE;
    if (o->xi[r] >= 0 && o->kind[r] == OK_LOCAL) o->kind[r] = OK_X;
    if (o->kind[r] == OK_NONE || f->nparams < 2) {
      *whynot = gc_printf("%s:%d:%d: the signature of '%s' is not compiled", file, f->pos.line,
                          f->pos.col, f->name);
      return false;
    }
  }
  int *w = gc_alloc_atomic(sizeof(int) * ((size_t)nr + 1));
  memset(w, 0, sizeof(int) * ((size_t)nr + 1));
  int64_t *kint = gc_alloc_atomic(sizeof(int64_t) * ((size_t)nr + 1));
  memset(kint, 0, sizeof(int64_t) * ((size_t)nr + 1));
  count_writes(&f->body, w);
  int_consts(&f->body, kint);
  const_sizes(&f->body, w, f, &o->kmax, kint);

  /* the function: InterpOdeFn */
  g->B = LLVMCreateBuilderInContext(g->C);
  g->vw = 0;
  LLVMTypeRef ps[12] = {g->f64, g->ptr, g->ptr, g->ptr, g->ptr, g->i64,
                        g->i64, g->i64, g->ptr, g->ptr, g->ptr, g->ptr};
  char name[32];
  snprintf(name, sizeof name, "ppl_ode_%d", site);
  g->fn = LLVMAddFunction(g->M, name, LLVMFunctionType(g->i32, ps, 12, 0));
  LLVMValueRef *pv[12] = {&o->t, &o->y, &o->xv, &o->xcol, &o->xlen, &o->n,
                          &o->P, &o->C, &o->dy, &o->jy, &o->jp, &o->work};
  for (int i = 0; i < 12; i++) *pv[i] = LLVMGetParam(g->fn, (unsigned)i);
  g->entry = LLVMAppendBasicBlockInContext(g->C, g->fn, "entry");
  LLVMPositionBuilderAtEnd(g->B, g->entry);
  g->entry_end = LLVMBuildAlloca(g->B, g->i8, "mark");
  g->errbb = new_bb(g, "fail");
  LLVMPositionBuilderAtEnd(g->B, g->errbb);
  LLVMBuildRet(g->B, LLVMConstInt(g->i32, 0, 0));
  LLVMPositionBuilderAtEnd(g->B, g->entry);

  /* the workspace: scratch tangents and real registers' tangents, then the
     local containers */
  for (int k = 0; k < 3; k++) o->s[k] = gep(g, g->f64, o->work, LLVMBuildMul(g->B, ci(g, o->nscalar++), o->P, ""));
  for (int r = 0; r < nr; r++)
    if (o->kind[r] == OK_REAL) o->tan[r] = gep(g, g->f64, o->work, LLVMBuildMul(g->B, ci(g, o->nscalar++), o->P, ""));
  LLVMValueRef cbase = gep(g, g->f64, o->work, LLVMBuildMul(g->B, ci(g, o->nscalar), o->P, ""));
  LLVMValueRef csz = LLVMBuildMul(g->B, o->C, LLVMBuildAdd(g->B, o->P, ci(g, 1), ""), "");
  for (int r = 0; r < nr; r++) {
    switch (o->kind[r]) {
    case OK_REAL: case OK_INT: case OK_BOOL: {
      LLVMTypeRef t = o->kind[r] == OK_REAL ? g->f64 : o->kind[r] == OK_INT ? g->i64 : g->i1;
      o->val[r] = entry_alloca(g, t, "r");
      break;
    }
    case OK_LOCAL:
      o->val[r] = gep(g, g->f64, cbase, LLVMBuildMul(g->B, ci(g, o->ncont++), csz, ""));
      o->tan[r] = gep(g, g->f64, o->val[r], o->C);
      o->len[r] = entry_alloca(g, g->i64, "len");
      LLVMBuildStore(g->B, ci(g, 0), o->len[r]);
      break;
    case OK_Y:
      o->val[r] = o->y;
      o->len[r] = o->n;
      break;
    case OK_X: {
      LLVMValueRef x = ci(g, o->xi[r]);
      o->val[r] = LLVMBuildLoad2(g->B, g->ptr, gep(g, g->ptr, o->xv, x), "");
      o->len[r] = LLVMBuildLoad2(g->B, g->i64, gep(g, g->i64, o->xlen, x), "");
      o->xc[r] = LLVMBuildLoad2(g->B, g->ptr, gep(g, g->ptr, o->xcol, x), "");
      break;
    }
    default: break;
    }
  }
  /* the scalar arguments: t, and the extras' scalars (their tangents unit
     vectors where they are parameters) */
  put_scalar(o, 0, o->t, OK_REAL);
  lanes_zero(o, o->tan[0]);
  for (int r = 2; r < f->nparams; r++) {
    if (!is_scal(o->kind[r])) continue;
    LLVMValueRef x = ci(g, o->xi[r]);
    LLVMValueRef v = ldd(g, LLVMBuildLoad2(g->B, g->ptr, gep(g, g->ptr, o->xv, x), ""), ci(g, 0));
    put_scalar(o, r, v, OK_REAL);
    if (o->kind[r] != OK_REAL) continue;
    o->kind[r] = OK_X; /* read its tangent as an element's */
    o->xc[r] = LLVMBuildLoad2(g->B, g->ptr, gep(g, g->ptr, o->xcol, x), "");
    elem_tan(o, o->tan[r], r, ci(g, 0));
    o->kind[r] = OK_REAL;
  }
  emit_block(o, &f->body);
  LLVMBuildBr(g->B, g->errbb); /* no return: the interpreter says so */
  LLVMDisposeBuilder(g->B);
  if (o->why) {
    /* the half-made function goes: the module keeps only what is linked */
    LLVMDeleteFunction(g->fn);
    *whynot = gc_printf("%s:%s is not compiled (in '%s')", file, o->why, f->name);
    return false;
  }
  InterpOdeNative *nat = gc_alloc(sizeof(InterpOdeNative));
  nat->nscalar = o->nscalar;
  nat->ncont = o->ncont;
  nat->kmax = o->kmax;
  *out = nat;
  return true;
}

void jg_ode_site(Gen *g, const IrInstr *ins) {
  if (g->why || g->nsites == 0 || g->j->sites[g->nsites - 1].ins != ins) return;
  int si = g->nsites - 1;
  InterpOdeNative *nat = NULL;
  const char *whynot = NULL;
  bool ok = ode_emit(g, ins, si, &nat, &whynot);
  JitSite *s = &g->j->sites[si];
  s->ode = ok ? nat : NULL;
  s->ode_why = ok ? NULL : whynot;
}

void jg_ode_link(Jit *j) {
  for (int i = 0; i < j->nsites; i++) {
    JitSite *s = &j->sites[i];
    if (!s->ode || s->ode->fn) continue;
    char name[32];
    snprintf(name, sizeof name, "ppl_ode_%d", i);
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->lljit, &addr, name);
    if (e) {
      char *m = LLVMGetErrorMessage(e);
      s->ode_why = gc_printf("LLVM: %s", m);
      LLVMDisposeErrorMessage(m);
      s->ode = NULL;
      continue;
    }
    s->ode->fn = (InterpOdeFn)(uintptr_t)addr;
  }
}

#endif
