/* plate_vec.c — which plates' bodies run once over a minibatch (plate_vec.h).
 *
 * The analysis is over the body's instructions alone: it marks the registers
 * whose values differ by row (the loop variable, what is computed from it,
 * every latent drawn in the body), then checks each instruction against what
 * the interpreter's lifted execution implements.  Anything else keeps the
 * row loop, with the first reason found, so a program never changes meaning:
 * at worst it runs as before.
 */
#include "plate_vec.h"

#include <stdio.h>
#include <string.h>

#include "../core/value.h"
#include "../stdlib/builtins.h"
#include "../stdlib/dist.h"

static const char *const pv_elementwise_names[] = {
    "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt", "cbrt", "square", "inv", "inv_sqrt",
    "inv_square", "inv_logit", "logit", "log_inv_logit", "log1m_inv_logit", "log1m", "log1m_exp",
    "log1p_exp", "tanh", "sinh", "cosh", "sin", "cos", "tan", "atan", "asinh", "erf", "erfc",
    "Phi", "Phi_approx", "inv_Phi", "lgamma", "digamma", "fabs", "abs", "softplus", NULL};

bool pv_elementwise(const char *name) {
  for (int i = 0; pv_elementwise_names[i]; i++)
    if (!strcmp(name, pv_elementwise_names[i])) return true;
  return false;
}

/* A lifted value in a K x B matrix: one real, vector or row vector a row. */
static bool pv_real_row(Type t) {
  return t.ndims == 0 && (t.base == TY_REAL || t.base == TY_VECTOR || t.base == TY_ROWVEC);
}

static bool pv_uniform_scalar(Type t) {
  return t.ndims == 0 && (t.base == TY_REAL || t.base == TY_INT);
}

typedef struct PvCx {
  const IrFunc *fn;
  const IrInstr *plate;
  uint8_t *lv;
  char *why;
  size_t whysz;
} PvCx;

static bool pv_no(PvCx *c, const IrInstr *ins, const char *what) {
  snprintf(c->why, c->whysz, "%s (%s:%d:%d)", what, ins->pos.file ? ins->pos.file : "?",
           ins->pos.line, ins->pos.col);
  return false;
}

static bool pv_l(const PvCx *c, int r) { return r >= 0 && c->lv[r] != PV_UNIFORM; }

/* Every register ins reads, through BODY with r_ and role_: role 0 an
   operand, 1 an index, 2 a size or bound, 3 the variable a STORE writes
   into.  (An observation's indices only say where simulated data goes.) */
#define PV_READS(ins, BODY)                                                                       \
  do {                                                                                            \
    for (int q_ = 0; q_ < (ins)->nargs; q_++) { int r_ = (ins)->args[q_], role_ = 0; BODY; }      \
    for (int q_ = 0; ((ins)->op == IR_INDEX || (ins)->op == IR_STORE) && q_ < (ins)->nidx; q_++) { \
      if ((ins)->idx[q_].kind == IX_ALL) continue;                                                \
      int r_ = (ins)->idx[q_].lo, role_ = 1; if (r_ >= 0) { BODY; }                               \
      r_ = (ins)->idx[q_].hi; if ((ins)->idx[q_].kind == IX_RANGE && r_ >= 0) { BODY; }           \
    }                                                                                             \
    if ((ins)->op == IR_SAMPLE || (ins)->op == IR_OBSERVE)                                        \
      for (int q_ = 0; q_ < (ins)->dist.nparams; q_++) { int r_ = (ins)->dist.params[q_], role_ = 0; BODY; } \
    if ((ins)->op == IR_SAMPLE || (ins)->op == IR_DECL) {                                         \
      for (int q_ = 0; q_ < (ins)->nsizes; q_++) { int r_ = (ins)->sizes[q_], role_ = 2; BODY; }  \
      if ((ins)->con.lower >= 0) { int r_ = (ins)->con.lower, role_ = 2; BODY; }                  \
      if ((ins)->con.upper >= 0) { int r_ = (ins)->con.upper, role_ = 2; BODY; }                  \
    }                                                                                             \
    if ((ins)->op == IR_STORE) { int r_ = (ins)->dst, role_ = 3; BODY; }                          \
  } while (0)

static bool pv_any_lifted(const PvCx *c, const IrInstr *ins) {
  bool any = false;
  PV_READS(ins, { (void)role_; if (pv_l(c, r_)) any = true; });
  return any;
}

/* Mark what differs by row, to a fixed point (a register written from a
   lifted value is lifted everywhere in the body). */
static void pv_mark(PvCx *c) {
  const IrBlock *b = &c->plate->body;
  bool changed = true;
  while (changed) {
    changed = false;
    for (int k = 0; k < b->n; k++) {
      const IrInstr *ins = &b->ins[k];
      if (ins->op == IR_STORE || ins->dst < 0 || c->lv[ins->dst]) continue;
      if (ins->op == IR_SAMPLE || pv_any_lifted(c, ins)) {
        c->lv[ins->dst] = PV_LIFTED;
        changed = true;
      }
    }
  }
}

/* The loop variable only picks row i of something outside: x[i], x[i, j], y[i] = v. */
static bool pv_check_loopvar(PvCx *c, const IrInstr *ins) {
  int var = c->plate->var;
  bool ok = true;
  PV_READS(ins, {
    if (r_ == var) {
      bool first = role_ == 1 && ins->nidx > 0 && ins->idx[0].kind == IX_SINGLE &&
                   ins->idx[0].lo == var && (ins->op == IR_INDEX || ins->op == IR_STORE);
      /* once only: x[i, i] is not a row */
      int uses = 0;
      for (int q = 0; q < ins->nidx; q++)
        uses += (ins->idx[q].kind != IX_ALL && ins->idx[q].lo == var) +
                (ins->idx[q].kind == IX_RANGE && ins->idx[q].hi == var);
      for (int q = 0; q < ins->nargs; q++) uses += ins->args[q] == var;
      if (!first || uses != 1) ok = false;
    }
  });
  if (!ok) {
    char w[160];
    snprintf(w, sizeof w, "the loop variable %s is used other than to pick row %s of a variable "
             "outside the plate", c->plate->name, c->plate->name);
    return pv_no(c, ins, w);
  }
  return true;
}

/* A product that is one matrix product over the rows: u * x[i] or x[i] * u
   (a row vector times a vector, one of them per row, the other not),
   dot_product of a per-row vector and another, sum of a per-row vector. */
static bool pv_row_product(const PvCx *c, const IrInstr *ins) {
  const Type *T = c->fn->regtypes;
  if (ins->dst < 0 || !ty_eq(T[ins->dst], ty_make(TY_REAL, 0))) return false;
  Type vec = ty_make(TY_VECTOR, 0), row = ty_make(TY_ROWVEC, 0);
  if (ins->op == IR_BUILTIN && !strcmp(ins->builtin->name, "sum") && ins->nargs == 1)
    return pv_l(c, ins->args[0]) && (ty_eq(T[ins->args[0]], vec) || ty_eq(T[ins->args[0]], row));
  bool mul = ins->op == IR_BINARY && ins->sub == OP_MUL;
  bool dot = ins->op == IR_BUILTIN && !strcmp(ins->builtin->name, "dot_product");
  if ((!mul && !dot) || ins->nargs != 2) return false;
  int a = ins->args[0], b = ins->args[1];
  if (pv_l(c, a) == pv_l(c, b)) return false;
  if (mul) return ty_eq(T[a], row) && ty_eq(T[b], vec);
  return (ty_eq(T[a], vec) || ty_eq(T[a], row)) && (ty_eq(T[b], vec) || ty_eq(T[b], row));
}

/* A matrix that is not per row times a per-row vector: W * x[i], one
   product with the K x B matrix of the rows. */
static bool pv_mat_vec(const PvCx *c, const IrInstr *ins) {
  const Type *T = c->fn->regtypes;
  if (ins->op != IR_BINARY || ins->sub != OP_MUL || ins->nargs != 2) return false;
  int a = ins->args[0], b = ins->args[1];
  return !pv_l(c, a) && pv_l(c, b) && ty_eq(T[a], ty_make(TY_MATRIX, 0)) &&
         ty_eq(T[b], ty_make(TY_VECTOR, 0)) && ty_eq(T[ins->dst], ty_make(TY_VECTOR, 0));
}

bool pv_is_mat_vec(const IrFunc *fn, const uint8_t *lifted, const IrInstr *ins) {
  PvCx c = {fn, NULL, (uint8_t *)lifted, NULL, 0};
  return pv_mat_vec(&c, ins);
}

bool pv_is_row_product(const IrFunc *fn, const uint8_t *lifted, const IrInstr *ins) {
  PvCx c = {fn, NULL, (uint8_t *)lifted, NULL, 0};
  return pv_row_product(&c, ins);
}

static bool pv_check(PvCx *c, const IrInstr *ins) {
  const IrFunc *fn = c->fn;
  const Type *T = fn->regtypes;
  int var = c->plate->var;
  if (!pv_check_loopvar(c, ins)) return false;
  bool any = pv_any_lifted(c, ins);
  switch (ins->op) {
  case IR_CONST: return true;
  case IR_DECL:
    if (any) return pv_no(c, ins, "a size that differs by row");
    return true;
  case IR_MOVE:
    if (any && !ty_eq(T[ins->dst], T[ins->args[0]]))
      return pv_no(c, ins, "a conversion of a per-row value");
    return true;
  case IR_UNARY:
    if (any && (ins->sub != OP_NEG || !pv_real_row(T[ins->dst])))
      return pv_no(c, ins, "an operator other than - on a per-row value");
    return true;
  case IR_BINARY: {
    if (!any) return true;
    int a = ins->args[0], b = ins->args[1];
    int op = ins->sub;
    if (op != OP_ADD && op != OP_SUB && op != OP_MUL && op != OP_DIV && op != OP_EMUL &&
        op != OP_EDIV)
      return pv_no(c, ins, "an operator other than + - * / .* ./ on a per-row value");
    if (!pv_real_row(T[ins->dst])) return pv_no(c, ins, "integer arithmetic on a per-row value");
    if (pv_row_product(c, ins) || pv_mat_vec(c, ins)) return true;
    for (int s = 0; s < 2; s++) {
      int r = s ? b : a, o = s ? a : b;
      if (pv_l(c, r) && !pv_real_row(T[r])) return pv_no(c, ins, "arithmetic on a per-row int");
      if (!pv_l(c, r) && !pv_uniform_scalar(T[r]) && !ty_eq(T[r], T[o]))
        return pv_no(c, ins, "arithmetic with a container of another shape");
    }
    if (pv_l(c, a) && pv_l(c, b) && !ty_eq(T[a], T[b]))
      return pv_no(c, ins, "arithmetic between per-row values of different shapes");
    if ((op == OP_MUL || op == OP_DIV) && pv_l(c, a) && pv_l(c, b) && T[a].base != TY_REAL)
      return pv_no(c, ins, "a product of two per-row vectors");
    return true;
  }
  case IR_BUILTIN: {
    if (!any) return !ins->builtin->uses_rng ? true : pv_no(c, ins, "a random function (_rng)");
    const char *n = ins->builtin->name;
    if (pv_row_product(c, ins)) return true;
    if (ins->nargs != 1) return pv_no(c, ins, "a function of several arguments of a per-row value");
    Type at = T[ins->args[0]], dt = ins->dst >= 0 ? T[ins->dst] : ty_make(TY_VOID, 0);
    if (!strcmp(n, "to_vector")) {
      bool row = pv_real_row(at) || (at.ndims == 1 && (at.base == TY_INT || at.base == TY_REAL));
      if (!row || !ty_eq(dt, ty_make(TY_VECTOR, 0)))
        return pv_no(c, ins, "to_vector of a per-row value that is not a vector or a 1-D array");
      return true;
    }
    if (!pv_elementwise(n) || !pv_real_row(at) || !ty_eq(at, dt)) {
      char w[160];
      snprintf(w, sizeof w, "%s of a per-row value (only element-wise functions of reals run "
               "over the minibatch)", n);
      return pv_no(c, ins, w);
    }
    return true;
  }
  case IR_INDEX: {
    int obj = ins->args[0];
    for (int q = 1; q < ins->nidx; q++)
      if ((ins->idx[q].kind != IX_ALL && pv_l(c, ins->idx[q].lo) && ins->idx[q].lo != var) ||
          (ins->idx[q].kind == IX_RANGE && pv_l(c, ins->idx[q].hi)))
        return pv_no(c, ins, "an index that differs by row");
    if (!any) return true;
    Type dt = T[ins->dst];
    if (ins->nidx >= 1 && ins->idx[0].kind == IX_SINGLE && ins->idx[0].lo == var) {
      if (pv_l(c, obj)) return pv_no(c, ins, "a row of a per-row value");
      bool ok = pv_real_row(dt) || (dt.ndims == 0 && dt.base == TY_INT) ||
                (dt.ndims == 1 && (dt.base == TY_INT || dt.base == TY_REAL));
      if (!ok) return pv_no(c, ins, "a row that is not a number, vector or 1-D array");
      return true;
    }
    if (ins->idx[0].kind == IX_MULTI || (ins->idx[0].kind != IX_ALL && pv_l(c, ins->idx[0].lo)) ||
        (ins->idx[0].kind == IX_RANGE && pv_l(c, ins->idx[0].hi)))
      return pv_no(c, ins, "an index that differs by row");
    if (ins->nidx != 1 || !pv_real_row(T[obj]) || T[obj].base == TY_REAL || ins->idx[0].kind == IX_ALL)
      return pv_no(c, ins, "indexing of a per-row value other than v[k] or v[a:b] of a vector");
    return true;
  }
  case IR_STORE: {
    int dst = ins->dst;
    if (pv_l(c, dst)) return pv_no(c, ins, "an assignment into an element of a per-row value");
    if (!any) return pv_no(c, ins, "an assignment that is the same for every row");
    if (!(ins->nidx >= 1 && ins->idx[0].kind == IX_SINGLE && ins->idx[0].lo == var))
      return pv_no(c, ins, "an assignment of a per-row value other than to element i of a variable");
    Type rt = T[ins->args[0]];
    if (pv_l(c, ins->args[0]) && !pv_real_row(rt) && !(rt.ndims == 0 && rt.base == TY_INT) &&
        !(rt.ndims == 1 && (rt.base == TY_INT || rt.base == TY_REAL)))
      return pv_no(c, ins, "an assignment of a per-row value that is not a number, vector or array");
    /* the variable must not be read in the body: a row would see the others' writes */
    for (int k = 0; k < c->plate->body.n; k++) {
      const IrInstr *o = &c->plate->body.ins[k];
      bool reads = false;
      PV_READS(o, { if (r_ == dst && role_ != 3) reads = true; });
      if (o->op == IR_STORE && o != ins && o->dst == dst) reads = true;
      if (reads) return pv_no(c, o, "a variable assigned by row and read in the same plate");
    }
    return true;
  }
  case IR_NET:
    if (pv_l(c, ins->args[0])) return pv_no(c, ins, "a network that differs by row");
    for (int q = 2; q < ins->nargs; q++)
      if (pv_l(c, ins->args[q])) return pv_no(c, ins, "a network size that differs by row");
    if (any && !pv_real_row(T[ins->args[1]]))
      return pv_no(c, ins, "a network applied to a per-row value that is not a vector");
    return true;
  case IR_SAMPLE:
  case IR_OBSERVE: {
    const DistFamily *fam = ins->dist.fam;
    if (!dist_scalar_family(fam) || fam->ctx || fam->draw_weight_ctx) {
      char w[160];
      snprintf(w, sizeof w, "the %s distribution (only scalar families run over the minibatch)",
               fam->name);
      return pv_no(c, ins, w);
    }
    for (int q = 0; q < ins->dist.nparams; q++) {
      int r = ins->dist.params[q];
      if (pv_l(c, r) && !pv_real_row(T[r]) && !(T[r].ndims <= 1 && T[r].base == TY_INT))
        return pv_no(c, ins, "a per-row parameter that is not a number, vector or 1-D array");
    }
    if (ins->op == IR_SAMPLE) {
      for (int q = 0; q < ins->nsizes; q++)
        if (pv_l(c, ins->sizes[q])) return pv_no(c, ins, "a latent whose size differs by row");
      if ((ins->con.lower >= 0 && pv_l(c, ins->con.lower)) ||
          (ins->con.upper >= 0 && pv_l(c, ins->con.upper)))
        return pv_no(c, ins, "bounds that differ by row");
      if (!pv_real_row(T[ins->dst]) || fam->discrete)
        return pv_no(c, ins, "a latent that is not a real, vector or row vector of reals");
      return true;
    }
    if (!any) return pv_no(c, ins, "an observation that is the same for every row");
    Type yt = T[ins->args[0]];
    if (!pv_real_row(yt) && !(yt.ndims <= 1 && (yt.base == TY_INT || yt.base == TY_REAL)))
      return pv_no(c, ins, "an observed value that is not a number, vector or 1-D array");
    return true;
  }
  case IR_IF: return pv_no(c, ins, "an if in the plate's body");
  case IR_FOR: return pv_no(c, ins, "a loop in the plate's body");
  case IR_WHILE: return pv_no(c, ins, "a while loop in the plate's body");
  case IR_CALL: return pv_no(c, ins, "a function call in the plate's body");
  case IR_FACTOR: return pv_no(c, ins, "target += or factor in the plate's body");
  case IR_CONDITION: return pv_no(c, ins, "a condition in the plate's body");
  case IR_PARAM: return pv_no(c, ins, "a param declared in the plate's body");
  case IR_ODE: return pv_no(c, ins, "an ODE solve in the plate's body");
  case IR_PRINT: return pv_no(c, ins, "print in the plate's body");
  case IR_REJECT: return pv_no(c, ins, "reject in the plate's body");
  case IR_ARRAY: case IR_ROWVEC:
    if (any) return pv_no(c, ins, "a literal built from per-row values");
    return true;
  default: return pv_no(c, ins, "a statement the minibatch pass does not implement");
  }
}

/* A per-row register is written before it is read (no value carried from
   one row to the next); a declaration alone does not count as a write. */
static bool pv_check_order(PvCx *c) {
  int nr = c->fn->nregs;
  uint8_t *set = gc_alloc_atomic((size_t)nr + 1);
  memset(set, 0, (size_t)nr + 1);
  const IrBlock *b = &c->plate->body;
  for (int k = 0; k < b->n; k++) {
    const IrInstr *ins = &b->ins[k];
    int bad = -1;
    PV_READS(ins, {
      if (role_ != 3 && r_ >= 0 && c->lv[r_] == PV_LIFTED && !set[r_]) bad = r_;
    });
    if (bad >= 0) {
      const char *nm = c->fn->regnames && c->fn->regnames[bad] ? c->fn->regnames[bad] : NULL;
      char w[160];
      snprintf(w, sizeof w, "a value carried from one row to the next%s%s%s", nm ? " ('" : "",
               nm ? nm : "", nm ? "')" : "");
      return pv_no(c, ins, w);
    }
    if (ins->dst >= 0 && ins->op != IR_STORE && ins->op != IR_DECL) set[ins->dst] = 1;
  }
  return true;
}

bool pv_analyze(const IrFunc *fn, const IrInstr *plate, PvPlan *plan, char *why, size_t whysz) {
  PvCx c = {fn, plate, gc_alloc_atomic((size_t)fn->nregs + 1), why, whysz};
  memset(c.lv, 0, (size_t)fn->nregs + 1);
  if (plate->op != IR_FOR || !plate->name || plate->nargs != 3) {
    snprintf(why, whysz, "not a plate with a batch size");
    return false;
  }
  c.lv[plate->var] = PV_LOOPVAR;
  pv_mark(&c);
  /* the body's structure first: its reason says more than an operand's */
  for (int k = 0; k < plate->body.n; k++) {
    uint8_t op = plate->body.ins[k].op;
    if (op == IR_IF || op == IR_FOR || op == IR_WHILE || op == IR_CALL || op == IR_FACTOR ||
        op == IR_CONDITION || op == IR_PARAM || op == IR_ODE || op == IR_PRINT || op == IR_REJECT)
      return pv_check(&c, &plate->body.ins[k]);
  }
  bool latent = false;
  for (int k = 0; k < plate->body.n; k++) {
    if (!pv_check(&c, &plate->body.ins[k])) return false;
    latent |= plate->body.ins[k].op == IR_SAMPLE || plate->body.ins[k].op == IR_OBSERVE;
  }
  if (!latent) return pv_no(&c, plate, "no latent or observation in the plate's body");
  if (!pv_check_order(&c)) return false;
  plan->plate = plate;
  plan->lifted = c.lv;
  return true;
}

/* ---- the program's plates ---- */

typedef struct PvFound {
  const IrInstr *ins;
  bool guide; /* in the guide block */
  bool ok;
  PvPlan plan;
  char why[256];
} PvFound;

static void pv_collect(const IrFunc *fn, const IrBlock *b, bool guide, PvFound **v, int *n,
                       int *cap) {
  for (int k = 0; k < b->n; k++) {
    const IrInstr *ins = &b->ins[k];
    if (ins->op == IR_FOR && ins->name && ins->nargs == 3) {
      if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 8;
        PvFound *nv = gc_alloc(sizeof(PvFound) * (size_t)nc);
        if (*n) memcpy(nv, *v, sizeof(PvFound) * (size_t)*n);
        *v = nv, *cap = nc;
      }
      PvFound *f = &(*v)[(*n)++];
      memset(f, 0, sizeof *f);
      f->ins = ins;
      f->guide = guide;
      f->ok = pv_analyze(fn, ins, &f->plan, f->why, sizeof f->why);
    }
    if (ins->op == IR_IF) {
      pv_collect(fn, &ins->then_b, guide, v, n, cap);
      pv_collect(fn, &ins->else_b, guide, v, n, cap);
    }
    if (ins->op == IR_FOR || ins->op == IR_WHILE) pv_collect(fn, &ins->body, guide, v, n, cap);
  }
}

static bool pv_has_latents(const IrInstr *plate) {
  for (int k = 0; k < plate->body.n; k++)
    if (plate->body.ins[k].op == IR_SAMPLE) return true;
  return false;
}

/* Every latent of a's body is one of b's, and the other way round. */
static bool pv_same_latents(const IrInstr *a, const IrInstr *b) {
  for (int s = 0; s < 2; s++) {
    const IrInstr *x = s ? b : a, *y = s ? a : b;
    for (int k = 0; k < x->body.n; k++) {
      if (x->body.ins[k].op != IR_SAMPLE) continue;
      bool found = false;
      for (int j = 0; j < y->body.n && !found; j++)
        found = y->body.ins[j].op == IR_SAMPLE && !strcmp(y->body.ins[j].name, x->body.ins[k].name);
      if (!found) return false;
    }
  }
  return true;
}

PvSet *pv_program(const IrProgram *p, const char **report) {
  PvFound *v = NULL;
  int n = 0, cap = 0;
  pv_collect(&p->main, &p->model_b, false, &v, &n, &cap);
  pv_collect(&p->main, &p->guide_b, true, &v, &n, &cap);
  /* a plate's latents are one choice, NAME[i]: the other block must draw
     them in a plate of the same name, with the same latents */
  for (int i = 0; i < n; i++) {
    if (!v[i].ok || !pv_has_latents(v[i].ins)) continue;
    bool met = false;
    for (int j = 0; j < n && !met; j++)
      met = v[j].guide != v[i].guide && !strcmp(v[i].ins->name, v[j].ins->name) &&
            pv_same_latents(v[i].ins, v[j].ins);
    if (!met) {
      v[i].ok = false;
      snprintf(v[i].why, sizeof v[i].why, "its latents are not drawn in a plate %s of the %s "
               "with the same latents", v[i].ins->name, v[i].guide ? "model" : "guide");
    }
  }
  /* plates of one name agree, or none of them runs vectorised */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j && v[i].ok && !v[j].ok && !strcmp(v[i].ins->name, v[j].ins->name)) {
        v[i].ok = false;
        snprintf(v[i].why, sizeof v[i].why, "plate %s at %s:%d:%d runs row by row", v[j].ins->name,
                 v[j].ins->pos.file ? v[j].ins->pos.file : "?", v[j].ins->pos.line,
                 v[j].ins->pos.col);
      }
  PvSet *s = gc_alloc(sizeof(PvSet));
  s->plans = gc_alloc(sizeof(PvPlan) * (size_t)(n ? n : 1));
  const char *rep = "";
  for (int i = 0; i < n; i++) {
    if (v[i].ok) s->plans[s->n++] = v[i].plan;
    if (report)
      rep = gc_printf("%ssvi: plate %s (%s:%d:%d): %s%s\n", rep, v[i].ins->name,
                      v[i].ins->pos.file ? v[i].ins->pos.file : "?", v[i].ins->pos.line,
                      v[i].ins->pos.col, v[i].ok ? "one pass over the minibatch" : "row by row: ",
                      v[i].ok ? "" : v[i].why);
  }
  if (report) *report = rep;
  return s;
}

const PvPlan *pv_find(const PvSet *s, const IrInstr *ins) {
  if (!s) return NULL;
  for (int i = 0; i < s->n; i++)
    if (s->plans[i].plate == ins) return &s->plans[i];
  return NULL;
}

/* ---- lifted values ---- */

Value pv_as_row(Value v) {
  ValTen *t = gc_alloc(sizeof(ValTen));
  t->rows = 1;
  t->cols = v.t->rows * v.t->cols;
  t->d = v.t->d;
  t->ad = v.t->ad;
  Value r = v;
  r.k = V_ROWVEC;
  r.t = t;
  return r;
}

bool pv_fill_like(Value u, Value like, Value *out) {
  if (like.k != V_MAT || (u.k != V_REAL && u.k != V_INT)) return false;
  size_t n = (size_t)like.t->rows * (size_t)like.t->cols;
  Value m = val_mat(like.t->rows, like.t->cols);
  double x = val_as_real(u);
  for (size_t i = 0; i < n; i++) m.t->d[i] = x;
  if (u.k == V_REAL && u.ad) {
    m.t->ad = gc_alloc_atomic(sizeof(int32_t) * (n + 1));
    for (size_t i = 0; i < n; i++) m.t->ad[i] = u.ad;
  }
  *out = m;
  return true;
}

bool pv_matrix_form(Type t) { return pv_real_row(t); }

/* A 1-D array of numbers (a row of int or real data) into d and nodes in
   one pass; false for anything else (nested arrays), left to val_flatten. */
static bool pv_flat_row(Value row, double *d, int32_t *nodes) {
  const Value *e = row.a->e;
  for (int i = 0; i < row.a->n; i++) {
    if (e[i].k == V_INT) d[i] = (double)e[i].i, nodes[i] = 0;
    else if (e[i].k == V_REAL) d[i] = e[i].r, nodes[i] = e[i].ad;
    else return false;
  }
  return true;
}

bool pv_stack(const Value *rows, int B, Type t, Value *out, char *err, size_t errsz) {
  if (!pv_matrix_form(t)) {
    Value a = val_arr(B);
    for (int b = 0; b < B; b++) a.a->e[b] = rows[b];
    *out = a;
    return true;
  }
  size_t K = B ? val_numel(rows[0]) : 0;
  Value m = val_mat((int)K, B);
  int32_t *nodes = gc_alloc_atomic(sizeof(int32_t) * (K + 1));
  bool any = false;
  for (int b = 0; b < B; b++) {
    if (val_numel(rows[b]) != K) {
      snprintf(err, errsz, "rows of the minibatch differ in size: %zu and %zu elements", K,
               val_numel(rows[b]));
      return false;
    }
    size_t nn;
    if (rows[b].k == V_ARR && pv_flat_row(rows[b], m.t->d + (size_t)b * K, nodes)) {
      nn = K;
    } else {
      val_flatten(rows[b], m.t->d + (size_t)b * K);
      nn = val_flatten_nodes(rows[b], nodes);
    }
    for (size_t k = 0; k < nn && !any; k++) any = nodes[k] != 0;
    if (any) {
      if (!m.t->ad) m.t->ad = gc_alloc_atomic(sizeof(int32_t) * (K * (size_t)B + 1));
      memset(m.t->ad + (size_t)b * K, 0, sizeof(int32_t) * K);
      memcpy(m.t->ad + (size_t)b * K, nodes, sizeof(int32_t) * nn);
    } else if (m.t->ad) {
      memset(m.t->ad + (size_t)b * K, 0, sizeof(int32_t) * K);
    }
  }
  *out = m;
  return true;
}

bool pv_repeat(Value u, int B, Type t, Value *out, char *err, size_t errsz) {
  Value *rows = gc_alloc(sizeof(Value) * (size_t)(B ? B : 1));
  for (int b = 0; b < B; b++) rows[b] = u;
  return pv_stack(rows, B, t, out, err, errsz);
}

Value pv_row(Value l, Type t, int b) {
  if (!pv_matrix_form(t)) return l.a->e[b];
  int K = l.t->rows;
  const double *d = l.t->d + (size_t)b * (size_t)K;
  const int32_t *n = l.t->ad ? l.t->ad + (size_t)b * (size_t)K : NULL;
  if (t.base == TY_REAL) {
    Value v = val_real(d[0]);
    if (n) v.ad = n[0];
    return v;
  }
  Value v = t.base == TY_VECTOR ? val_vec(K) : val_rowvec(K);
  memcpy(v.t->d, d, sizeof(double) * (size_t)K);
  if (n) {
    v.t->ad = gc_alloc_atomic(sizeof(int32_t) * (size_t)(K ? K : 1));
    memcpy(v.t->ad, n, sizeof(int32_t) * (size_t)K);
  }
  return v;
}

bool pv_to_vector(Value l, Type t, int B, Value *out, char *err, size_t errsz) {
  if (pv_matrix_form(t)) {
    *out = l;
    return true;
  }
  return pv_stack(l.a->e, B, ty_make(TY_VECTOR, 0), out, err, errsz);
}

bool pv_rows(Value l, int64_t lo, int64_t hi, Value *out, char *err, size_t errsz) {
  int K = l.t->rows, B = l.t->cols;
  if (lo < 1 || hi > K || hi < lo - 1) {
    snprintf(err, errsz, "index %lld:%lld out of range for a vector of %d", (long long)lo,
             (long long)hi, K);
    return false;
  }
  int k = (int)(hi - lo + 1);
  Value m = val_mat(k, B);
  if (l.t->ad) m.t->ad = gc_alloc_atomic(sizeof(int32_t) * ((size_t)k * (size_t)B + 1));
  for (int b = 0; b < B; b++) {
    memcpy(m.t->d + (size_t)b * (size_t)k, l.t->d + (size_t)b * (size_t)K + (lo - 1),
           sizeof(double) * (size_t)k);
    if (l.t->ad)
      memcpy(m.t->ad + (size_t)b * (size_t)k, l.t->ad + (size_t)b * (size_t)K + (lo - 1),
             sizeof(int32_t) * (size_t)k);
  }
  *out = m;
  return true;
}

Value pv_transpose(Value m) {
  int r = m.t->rows, c = m.t->cols;
  Value o = val_mat(c, r);
  if (m.t->ad) o.t->ad = gc_alloc_atomic(sizeof(int32_t) * ((size_t)r * (size_t)c + 1));
  for (int j = 0; j < c; j++)
    for (int i = 0; i < r; i++) {
      size_t s = (size_t)j * (size_t)r + (size_t)i, t = (size_t)i * (size_t)c + (size_t)j;
      o.t->d[t] = m.t->d[s];
      if (m.t->ad) o.t->ad[t] = m.t->ad[s];
    }
  return o;
}
