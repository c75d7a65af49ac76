/* print.c — the readable IR listing of `ppl ir model.ppl`, and ty_name.
 *
 * The format is stable (golden tests in tests/lang/test_lower.c depend on it):
 *
 *   func f(%0 x:real, %1 n:int) -> real  (registers: %2:real)
 *     %2 = %0 * %1 : real
 *     return %2
 *
 *   func main  (registers: %0 J:int, %1 y:real[], %2:int, ...)
 *   data:
 *     %0 = data J : int <lower=%2>
 *     %1 = data y : real[] sizes(%0)
 *   model:
 *     %4 = sample mu ~ normal(%2, %3) : real
 *     for %7 in %8 .. %0 {
 *       ...
 *     }
 *     observe %1 ~ normal(%9, %2)
 *   generated:
 *     ...
 *   outputs: mu (latent %4), theta (derived %7)
 *
 * One instruction per line, nested blocks indented by two spaces; `: TYPE`
 * closes every instruction that defines a register.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../stdlib/builtins.h"
#include "../stdlib/dist.h"
#include "../stdlib/nn.h"
#include "ir.h"

const char *ir_op_name(IrOp op) {
  switch (op) {
  case OP_ADD: return "+";
  case OP_SUB: return "-";
  case OP_MUL: return "*";
  case OP_DIV: return "/";
  case OP_MOD: return "%";
  case OP_POW: return "^";
  case OP_EMUL: return ".*";
  case OP_EDIV: return "./";
  case OP_IDIV: return "%/%";
  case OP_EQ: return "==";
  case OP_NE: return "!=";
  case OP_LT: return "<";
  case OP_LE: return "<=";
  case OP_GT: return ">";
  case OP_GE: return ">=";
  case OP_AND: return "&&";
  case OP_OR: return "||";
  case OP_NEG: return "-";
  case OP_NOT: return "!";
  case OP_PLUS: return "+";
  case OP_TRANSPOSE: return "'";
  default: return "?";
  }
}

/* ---- output buffer --------------------------------------------------------- */

typedef struct Out {
  char *s;
  size_t n, cap;
} Out;

static void out_add(Out *o, const char *s, size_t len) {
  if (o->n + len + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (o->n + len + 1 > cap) cap *= 2;
    char *ns = gc_alloc_atomic(cap);
    if (o->n) memcpy(ns, o->s, o->n);
    o->s = ns;
    o->cap = cap;
  }
  memcpy(o->s + o->n, s, len);
  o->n += len;
  o->s[o->n] = 0;
}

static void out_str(Out *o, const char *s) { out_add(o, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void out_fmt(Out *o, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    out_add(o, small, (size_t)n);
    return;
  }
  char *big = gc_alloc_atomic((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  out_add(o, big, (size_t)n);
}

static void out_indent(Out *o, int depth) {
  for (int i = 0; i < depth; i++) out_str(o, "  ");
}

/* ---- pieces of an instruction ---------------------------------------------- */

static void out_real(Out *o, double x) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.15g", x);
  out_str(o, buf);
  if (isfinite(x) && !strpbrk(buf, ".e")) out_str(o, ".0");
}

static void out_quoted(Out *o, const char *s) {
  out_str(o, "\"");
  for (; *s; s++) {
    switch (*s) {
    case '\n': out_str(o, "\\n"); break;
    case '\t': out_str(o, "\\t"); break;
    case '"': out_str(o, "\\\""); break;
    case '\\': out_str(o, "\\\\"); break;
    default: out_add(o, s, 1); break;
    }
  }
  out_str(o, "\"");
}

static void out_value(Out *o, Value v) {
  switch (v.k) {
  case V_INT: out_fmt(o, "%lld", (long long)v.i); break;
  case V_REAL: out_real(o, v.r); break;
  case V_BOOL: out_str(o, v.b ? "true" : "false"); break;
  case V_STR: out_quoted(o, v.s ? v.s->data : ""); break;
  default: out_str(o, val_to_string(v)); break;
  }
}

static void out_regs(Out *o, int n, const int *regs) {
  for (int i = 0; i < n; i++) out_fmt(o, "%s%%%d", i ? ", " : "", regs[i]);
}

static void out_index(Out *o, int n, const IrIndex *ix) {
  out_str(o, "[");
  for (int i = 0; i < n; i++) {
    if (i) out_str(o, ", ");
    switch (ix[i].kind) {
    case IX_SINGLE: out_fmt(o, "%%%d", ix[i].lo); break;
    case IX_ALL: out_str(o, ":"); break;
    case IX_MULTI: out_fmt(o, "multi %%%d", ix[i].lo); break;
    default:
      if (ix[i].lo >= 0) out_fmt(o, "%%%d", ix[i].lo);
      out_str(o, ":");
      if (ix[i].hi >= 0) out_fmt(o, "%%%d", ix[i].hi);
      break;
    }
  }
  out_str(o, "]");
}

static const char *con_word(int k) {
  switch (k) {
  case CON_SIMPLEX: return "simplex";
  case CON_ORDERED: return "ordered";
  case CON_POS_ORDERED: return "positive_ordered";
  case CON_UNIT_VECTOR: return "unit_vector";
  case CON_CHOL_CORR: return "cholesky_factor_corr";
  case CON_COV: return "cov_matrix";
  case CON_CORR: return "corr_matrix";
  case CON_CHOL_COV: return "cholesky_factor_cov";
  default: return NULL;
  }
}

static void out_con(Out *o, IrCon c) {
  if (c.kind == CON_NONE) return;
  const char *w = con_word(c.kind);
  if (w) {
    out_fmt(o, " <%s>", w);
    return;
  }
  out_str(o, " <");
  if (c.lower >= 0) out_fmt(o, "lower=%%%d", c.lower);
  if (c.lower >= 0 && c.upper >= 0) out_str(o, ", ");
  if (c.upper >= 0) out_fmt(o, "upper=%%%d", c.upper);
  out_str(o, ">");
}

static void out_sizes(Out *o, const IrInstr *in) {
  if (in->nsizes <= 0) return;
  out_str(o, " sizes(");
  out_regs(o, in->nsizes, in->sizes);
  out_str(o, ")");
}

static void out_dist(Out *o, const IrDist *d) {
  out_fmt(o, "%s(", d->fam ? d->fam->name : "?");
  out_regs(o, d->nparams, d->params);
  out_str(o, ")");
}

typedef struct Ctx {
  Out *o;
  const IrProgram *p;
  const IrFunc *f; /* register file in use */
} Ctx;

static void out_type_of(Ctx *c, int reg) {
  if (reg >= 0 && reg < c->f->nregs) out_fmt(c->o, " : %s", ty_name(c->f->regtypes[reg]));
}

static const char *decl_name(Ctx *c, const IrInstr *in) {
  if (in->name) return in->name;
  if (in->dst >= 0 && in->dst < c->f->nregs && c->f->regnames[in->dst])
    return c->f->regnames[in->dst];
  return "?";
}

static void out_block(Ctx *c, const IrBlock *b, int depth);

/* A network's layout: mlp(%1, [%2, %3], %4, relu, identity). */
static void out_mlp(Out *o, int n, const int *sizes, Value acts) {
  int a = acts.k == V_INT ? (int)acts.i : 0;
  out_fmt(o, "mlp(%%%d, [", n > 0 ? sizes[0] : -1);
  for (int i = 1; i < n - 1; i++) out_fmt(o, "%s%%%d", i > 1 ? ", " : "", sizes[i]);
  out_fmt(o, "], %%%d, %s, %s)", n > 1 ? sizes[n - 1] : -1, nn_act_name((NnAct)(a & 0xff)),
          nn_act_name((NnAct)(a >> 8)));
}

static void out_instr(Ctx *c, const IrInstr *in, int depth) {
  Out *o = c->o;
  out_indent(o, depth);
  if (in->dst >= 0 && in->op != IR_STORE) out_fmt(o, "%%%d = ", in->dst);
  switch (in->op) {
  case IR_CONST:
    out_str(o, "const ");
    out_value(o, in->imm);
    out_type_of(c, in->dst);
    break;
  case IR_MOVE:
    out_fmt(o, "move %%%d", in->args[0]);
    out_type_of(c, in->dst);
    break;
  case IR_UNARY:
    if (in->sub == OP_TRANSPOSE) out_fmt(o, "%%%d'", in->args[0]);
    else out_fmt(o, "%s%%%d", ir_op_name((IrOp)in->sub), in->args[0]);
    out_type_of(c, in->dst);
    break;
  case IR_BINARY:
    out_fmt(o, "%%%d %s %%%d", in->args[0], ir_op_name((IrOp)in->sub), in->args[1]);
    out_type_of(c, in->dst);
    break;
  case IR_BUILTIN:
    out_fmt(o, "%s(", in->builtin && in->builtin->name ? in->builtin->name : "?");
    out_regs(o, in->nargs, in->args);
    out_str(o, ")");
    out_type_of(c, in->dst);
    break;
  case IR_CALL:
  case IR_ODE: {
    const char *n = in->callee >= 0 && in->callee < c->p->nfuncs ? c->p->funcs[in->callee].name
                                                                   : "?";
    out_fmt(o, in->op == IR_CALL ? "call %s(" : in->sub ? "ode_rk45_tol %s(" : "ode_rk45 %s(", n);
    out_regs(o, in->nargs, in->args);
    out_str(o, ")");
    out_type_of(c, in->dst);
    break;
  }
  case IR_INDEX:
    out_fmt(o, "%%%d", in->args[0]);
    out_index(o, in->nidx, in->idx);
    out_type_of(c, in->dst);
    break;
  case IR_STORE:
    out_fmt(o, "%%%d", in->dst);
    out_index(o, in->nidx, in->idx);
    out_fmt(o, " = %%%d", in->args[0]);
    break;
  case IR_ARRAY: case IR_ROWVEC:
    out_str(o, in->op == IR_ARRAY ? "{" : "[");
    out_regs(o, in->nargs, in->args);
    out_str(o, in->op == IR_ARRAY ? "}" : "]");
    out_type_of(c, in->dst);
    break;
  case IR_DECL: case IR_DATA:
    out_fmt(o, "%s %s", in->op == IR_DECL ? "decl" : "data", decl_name(c, in));
    out_type_of(c, in->dst);
    out_con(o, in->con);
    out_sizes(o, in);
    break;
  case IR_NET:
    out_fmt(o, "net %%%d(%%%d) ", in->args[0], in->args[1]);
    out_mlp(o, in->nargs - 2, in->args + 2, in->imm);
    out_type_of(c, in->dst);
    break;
  case IR_PARAM:
    if (in->dst >= 0 && c->f->regtypes[in->dst].base == TY_NETWORK) {
      out_fmt(o, "param %s = ", decl_name(c, in));
      out_mlp(o, in->nsizes, in->sizes, in->imm);
      out_type_of(c, in->dst);
      break;
    }
    out_fmt(o, "param %s", decl_name(c, in));
    if (in->nargs) out_fmt(o, " = %%%d", in->args[0]);
    out_type_of(c, in->dst);
    out_con(o, in->con);
    out_sizes(o, in);
    break;
  case IR_SAMPLE:
    out_fmt(o, "sample %s ~ ", decl_name(c, in));
    out_dist(o, &in->dist);
    out_type_of(c, in->dst);
    out_con(o, in->con);
    out_sizes(o, in);
    break;
  case IR_OBSERVE:
    out_fmt(o, "observe %%%d ~ ", in->args[0]);
    out_dist(o, &in->dist);
    break;
  case IR_FACTOR: out_fmt(o, "factor %%%d", in->args[0]); break;
  case IR_CONDITION: out_fmt(o, "condition %%%d", in->args[0]); break;
  case IR_IF:
    out_fmt(o, "if %%%d {\n", in->args[0]);
    out_block(c, &in->then_b, depth + 1);
    if (in->else_b.n > 0) {
      out_indent(o, depth);
      out_str(o, "} else {\n");
      out_block(c, &in->else_b, depth + 1);
    }
    out_indent(o, depth);
    out_str(o, "}");
    break;
  case IR_FOR:
    out_fmt(o, "%s %%%d in %%%d .. %%%d", in->name ? "plate" : "for", in->var, in->args[0],
            in->args[1]);
    if (in->nargs == 3) out_fmt(o, " batch %%%d", in->args[2]);
    out_str(o, " {\n");
    out_block(c, &in->body, depth + 1);
    out_indent(o, depth);
    out_str(o, "}");
    break;
  case IR_WHILE:
    out_str(o, "while {\n");
    out_block(c, &in->cond_b, depth + 1);
    out_indent(o, depth);
    out_fmt(o, "} test %%%d {\n", in->cond);
    out_block(c, &in->body, depth + 1);
    out_indent(o, depth);
    out_str(o, "}");
    break;
  case IR_BREAK: out_str(o, "break"); break;
  case IR_CONTINUE: out_str(o, "continue"); break;
  case IR_RETURN:
    out_str(o, "return");
    if (in->nargs > 0) out_fmt(o, " %%%d", in->args[0]);
    break;
  case IR_REJECT: case IR_PRINT:
    out_str(o, in->op == IR_REJECT ? "reject(" : "print(");
    out_regs(o, in->nargs, in->args);
    out_str(o, ")");
    break;
  default: out_fmt(o, "<opcode %d>", in->op); break;
  }
  out_str(o, "\n");
}

static void out_block(Ctx *c, const IrBlock *b, int depth) {
  for (int i = 0; i < b->n; i++) out_instr(c, &b->ins[i], depth);
}

static void out_reg_decl(Out *o, const IrFunc *f, int r) {
  if (f->regnames[r]) out_fmt(o, "%%%d %s:%s", r, f->regnames[r], ty_name(f->regtypes[r]));
  else out_fmt(o, "%%%d:%s", r, ty_name(f->regtypes[r]));
}

static void out_func_head(Out *o, const IrFunc *f, bool is_main) {
  out_fmt(o, "func %s", f->name ? f->name : "?");
  if (!is_main) {
    out_str(o, "(");
    for (int i = 0; i < f->nparams; i++) {
      if (i) out_str(o, ", ");
      out_reg_decl(o, f, i);
    }
    out_fmt(o, ") -> %s", ty_name(f->ret));
    if (f->stochastic) out_str(o, " stochastic");
  }
  out_str(o, "  (registers:");
  int shown = 0;
  for (int r = is_main ? 0 : f->nparams; r < f->nregs; r++) {
    out_str(o, shown++ ? ", " : " ");
    out_reg_decl(o, f, r);
  }
  if (!shown) out_str(o, " none");
  out_str(o, ")\n");
}

char *ir_print(const IrProgram *p) {
  Out o = {0};
  out_str(&o, "");
  if (!p) return o.s;
  for (int i = 0; i < p->nfuncs; i++) {
    const IrFunc *f = &p->funcs[i];
    Ctx c = {&o, p, f};
    out_func_head(&o, f, false);
    out_block(&c, &f->body, 1);
    out_str(&o, "\n");
  }
  Ctx c = {&o, p, &p->main};
  out_func_head(&o, &p->main, true);
  const char *names[4] = {"data", "model", "generated", "guide"};
  const IrBlock *blocks[4] = {&p->data_b, &p->model_b, &p->gen_b, &p->guide_b};
  for (int b = 0; b < 4; b++) {
    if (blocks[b]->n == 0) continue;
    out_fmt(&o, "%s:\n", names[b]);
    out_block(&c, blocks[b], 1);
  }
  if (p->noutputs > 0) {
    out_str(&o, "outputs:");
    for (int i = 0; i < p->noutputs; i++) {
      const IrOutput *x = &p->outputs[i];
      const char *k = x->kind == OUT_LATENT ? "latent" : x->kind == OUT_DERIVED ? "derived"
                                                                                : "generated";
      out_fmt(&o, "%s %s (%s %%%d)", i ? "," : "", x->name, k, x->reg);
    }
    out_str(&o, "\n");
  }
  return o.s;
}

uint64_t ir_program_hash(const IrProgram *p) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char *c = (const unsigned char *)ir_print(p); *c; c++) h = (h ^ *c) * 0x100000001b3ull;
  return h;
}
