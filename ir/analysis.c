/* analysis.c — the structural analysis of a lowered program (printed by
 * `ppl check`, read by the engine selector).
 *
 * Taint analysis: a register is "random" when its value can differ between
 * runs given the same data: it depends on a latent (an IR_SAMPLE) or on an
 * *_rng builtin, through data flow (moves, stores, calls and returns) and
 * through control flow (anything written under a random branch or loop).  The
 * analysis is flow-insensitive over each function's register file and
 * context-insensitive over calls (a parameter is random if any call passes a
 * random argument), iterated to a fixed point; it is conservative, never
 * optimistic.  Only the model block and the functions it reaches matter: the
 * data block runs once, and the generated block cannot change the latents.
 *
 * For every random register we keep the first cause ("latent 'x'",
 * "poisson_rng()"), so a dynamic program is explained in words:
 *   model.ppl:7:5: latent 'y' is inside a while loop whose condition depends on latent 'x'
 *
 * Fixed structure: no latent (directly or through a call) under random control,
 * no latent with random sizes, no recursion through a function that samples.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stdlib/builtins.h"
#include "../stdlib/dist.h"
#include "../stdlib/lm_family.h"
#include "ir.h"

typedef struct FnInfo {
  const IrFunc *f;
  const char **src;        /* per register: first cause of randomness, NULL if none */
  const char *ret_src;     /* return value random */
  const char *early_src;   /* a return under random control */
  int *ndefs;              /* writes of each register, for constant folding */
  const IrInstr **def;     /* the defining instruction when ndefs == 1 */
  bool has_sample, has_obs;/* directly or through calls */
  bool reachable;          /* called (transitively) from the model block */
  bool recursive;          /* on a call cycle */
  bool checked;            /* structure of the body examined */
  bool visiting;           /* guard for walks that follow calls */
} FnInfo;

/* Per latent, what the printed form shows beyond IrLatentInfo. */
typedef struct LatExtra {
  Type type;
  const char *trunc; /* "truncated to lower=0" or NULL */
  const char *func;  /* enclosing function or NULL */
  /* Sizes as the source says them, for a listing without data: */
  const char *shape; /* "vector[J]", "real[N, 2]"; NULL for a scalar */
  const char *loops; /* "t in 2:T, j in 1:2"; NULL outside loops */
  const char *count; /* scalars over all iterations (per call in a
                        function): "J", "T - 1", "3"; NULL when unknown */
  const char *free;  /* unconstrained reals likewise ("K - 1" for a simplex) */
} LatExtra;

/* Random control around the code being walked. */
typedef struct Ctl {
  const char *src;  /* NULL = not random */
  const char *what; /* "an if whose condition", "a for loop whose bounds", ... */
  SrcPos pos;
} Ctl;

typedef struct Ana {
  const IrProgram *p;
  FnInfo *fi; /* nfuncs entries, then main */
  int imain;
  bool changed;
  IrAnalysis *a;
  int caplat, capobs;
  LatExtra *extra;
  const IrInstr **lat_ins, **obs_ins; /* the instruction of each latent / observation */
  bool ev_seen_s, ev_o_after_s; /* interleaving walk */
  const char *loops, *mult;     /* collect(): enclosing for loops, their iteration
                                   count ("1" outside loops, NULL unknown) */
} Ana;

/* ---- register facts ------------------------------------------------------ */

static const char *src_of(const Ana *A, int fn, int r) {
  const FnInfo *f = &A->fi[fn];
  return r >= 0 && r < f->f->nregs ? f->src[r] : NULL;
}

static void taint(Ana *A, int fn, int r, const char *s) {
  FnInfo *f = &A->fi[fn];
  if (s && r >= 0 && r < f->f->nregs && !f->src[r]) {
    f->src[r] = s;
    A->changed = true;
  }
}

static const char *first(const char *a, const char *b) { return a ? a : b; }

/* Cause of randomness among everything an instruction reads (not its blocks). */
static const char *operand_src(const Ana *A, int fn, const IrInstr *in) {
  const char *s = NULL;
  for (int i = 0; i < in->nargs && !s; i++) s = src_of(A, fn, in->args[i]);
  for (int i = 0; i < in->nidx && !s; i++)
    s = first(src_of(A, fn, in->idx[i].lo), src_of(A, fn, in->idx[i].hi));
  for (int i = 0; i < in->dist.nparams && !s; i++) s = src_of(A, fn, in->dist.params[i]);
  for (int i = 0; i < in->nsizes && !s; i++) s = src_of(A, fn, in->sizes[i]);
  if (!s) s = first(src_of(A, fn, in->con.lower), src_of(A, fn, in->con.upper));
  return s;
}

static void count_defs(FnInfo *f, const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    int d = in->op == IR_FOR ? in->var : in->dst;
    if (d >= 0 && d < f->f->nregs) {
      f->ndefs[d]++;
      f->def[d] = in;
    }
    count_defs(f, &in->then_b);
    count_defs(f, &in->else_b);
    count_defs(f, &in->body);
    count_defs(f, &in->cond_b);
  }
}

/* Value of a register written once from constants (folding - and + - * /). */
static bool const_of(const Ana *A, int fn, int r, double *v, int depth) {
  const FnInfo *f = &A->fi[fn];
  if (r < 0 || r >= f->f->nregs || f->ndefs[r] != 1 || depth > 16) return false;
  const IrInstr *in = f->def[r]; /* NULL for parameters */
  if (!in) return false;
  double a, b;
  switch (in->op) {
  case IR_CONST:
    if (in->imm.k == V_INT) *v = (double)in->imm.i;
    else if (in->imm.k == V_REAL) *v = in->imm.r;
    else return false;
    return true;
  case IR_MOVE: return const_of(A, fn, in->args[0], v, depth + 1);
  case IR_UNARY:
    if (in->sub != OP_NEG || !const_of(A, fn, in->args[0], &a, depth + 1)) return false;
    *v = -a;
    return true;
  case IR_BINARY:
    if (!const_of(A, fn, in->args[0], &a, depth + 1) ||
        !const_of(A, fn, in->args[1], &b, depth + 1))
      return false;
    switch (in->sub) {
    case OP_ADD: *v = a + b; return true;
    case OP_SUB: *v = a - b; return true;
    case OP_MUL: *v = a * b; return true;
    case OP_DIV:
      if (f->f->regtypes[r].base != TY_REAL || b == 0) return false;
      *v = a / b;
      return true;
    default: return false;
    }
  default: return false;
  }
}

static char *num_text(double x) {
  if (isinf(x)) return x > 0 ? "inf" : "-inf";
  return gc_printf("%.6g", x);
}

/* ---- sizes as the source says them (a listing without data) ---- */

static bool sym_is_num(const char *s, double *v) {
  char *end;
  *v = s ? strtod(s, &end) : 0;
  return s && *s && !*end;
}

static const char *sym_paren(const char *s) {
  return strpbrk(s, " ") ? gc_printf("(%s)", s) : s;
}

/* a * b with the numbers among the factors folded in front ("2 * N * 3" is
   "6 * N"); NULL (unknown) absorbs */
static const char *sym_mul(const char *a, const char *b) {
  if (!a || !b) return NULL;
  double c = 1, v;
  const char *f[64];
  int n = 0;
  const char *ab[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    const char *t = ab[i];
    bool product = !strpbrk(t, "(/%") && !strstr(t, " + ") && !strstr(t, " - ");
    while (*t) { /* its factors: a product splits at " * ", anything else is one */
      const char *e = product ? strstr(t, " * ") : NULL;
      const char *x = e ? gc_strndup(t, (size_t)(e - t)) : t;
      if (sym_is_num(x, &v)) c *= v;
      else if (n < 64) f[n++] = x;
      t = e ? e + 3 : "";
    }
  }
  if (c == 0 || n == 0) return num_text(c);
  if (n == 1 && c == 1) return f[0];
  const char *s = c == 1 ? "" : num_text(c);
  for (int i = 0; i < n; i++) s = gc_printf("%s%s%s", s, *s ? " * " : "", sym_paren(f[i]));
  return s;
}

/* The source text of an int register: "J", "N - 1", "size(y)", "3"; NULL
   when it is not a simple expression of constants and named variables. */
static const char *sym_of(const Ana *A, int fn, int r, int depth) {
  double v;
  if (const_of(A, fn, r, &v, 0)) return num_text(v);
  const FnInfo *f = &A->fi[fn];
  if (r < 0 || r >= f->f->nregs || depth > 8) return NULL;
  if (f->f->regnames[r]) return f->f->regnames[r];
  const IrInstr *in = f->ndefs[r] == 1 ? f->def[r] : NULL;
  if (!in) return NULL;
  const char *a = in->nargs > 0 ? sym_of(A, fn, in->args[0], depth + 1) : NULL;
  const char *b = in->nargs > 1 ? sym_of(A, fn, in->args[1], depth + 1) : NULL;
  switch (in->op) {
  case IR_MOVE: return a;
  case IR_UNARY: return in->sub == OP_NEG && a ? gc_printf("-%s", sym_paren(a)) : NULL;
  case IR_BINARY: {
    static const char *const ops[] = {[OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*",
                                      [OP_DIV] = "/", [OP_IDIV] = "%/%"};
    const char *op = in->sub < sizeof ops / sizeof ops[0] ? ops[in->sub] : NULL;
    if (!op || !a || !b) return NULL;
    bool tight = in->sub != OP_ADD; /* a - (b + c), a * (b + c) */
    return gc_printf("%s %s %s", in->sub == OP_ADD || in->sub == OP_SUB ? a : sym_paren(a), op,
                     tight ? sym_paren(b) : b);
  }
  case IR_BUILTIN: {
    if (!in->builtin || in->nargs > 3) return NULL;
    const char *t = gc_printf("%s(", in->builtin->name);
    for (int k = 0; k < in->nargs; k++) {
      const char *x = sym_of(A, fn, in->args[k], depth + 1);
      if (!x) return NULL;
      t = gc_printf("%s%s%s", t, k ? ", " : "", x);
    }
    return gc_printf("%s)", t);
  }
  default: return NULL;
  }
}

/* Iterations of `for (v in lo:hi)`: "hi", "hi - 1", "hi - lo + 1", a number. */
static const char *sym_iterations(const Ana *A, int fn, const IrInstr *in) {
  double lo, hi;
  bool nl = const_of(A, fn, in->args[0], &lo, 0), nh = const_of(A, fn, in->args[1], &hi, 0);
  if (nl && nh) return num_text(hi >= lo ? hi - lo + 1 : 0);
  const char *h = sym_of(A, fn, in->args[1], 0);
  if (!h) return NULL;
  if (nl && lo == 1) return h;
  if (nl) return gc_printf("%s %s %s", h, lo > 1 ? "-" : "+", num_text(fabs(lo - 1)));
  const char *l = sym_of(A, fn, in->args[0], 0);
  return l ? gc_printf("%s - %s + 1", h, sym_paren(l)) : NULL;
}

/* A latent's declared shape with its sizes, and its scalars and unconstrained
   reals per run of its declaration. */
static void sym_latent(const Ana *A, int fn, const IrInstr *in, LatExtra *x) {
  const char *numel = "1", *sizes = "";
  for (int k = 0; k < in->nsizes; k++) {
    const char *z = sym_of(A, fn, in->sizes[k], 0);
    numel = sym_mul(numel, z);
    sizes = gc_printf("%s%s%s", sizes, k ? ", " : "", z ? z : "?");
  }
  Type t = x->type;
  t.ndims = 0;
  x->shape = in->nsizes ? gc_printf("%s[%s]", ty_name(t), sizes) : NULL;
  x->count = sym_mul(numel, A->mult);
  const char *free = numel;
  if (in->con.kind == CON_SIMPLEX && in->nsizes > 0) { /* K - 1 each */
    const char *arrays = "1";
    for (int k = 0; k + 1 < in->nsizes; k++) arrays = sym_mul(arrays, sym_of(A, fn, in->sizes[k], 0));
    const char *K = sym_of(A, fn, in->sizes[in->nsizes - 1], 0);
    double kv;
    const char *k1 = !K ? NULL : sym_is_num(K, &kv) ? num_text(kv - 1) : gc_printf("%s - 1", K);
    free = sym_mul(arrays, k1);
  } else if (in->con.kind > CON_LOWER_UPPER) {
    free = NULL; /* ordered, correlation and covariance factors: no simple count */
    if (in->con.kind == CON_ORDERED || in->con.kind == CON_POS_ORDERED || in->con.kind == CON_UNIT_VECTOR)
      free = numel;
  }
  x->free = sym_mul(free, A->mult);
}

/* The sum of the latents' counts: "2 + J", "10"; NULL when one is unknown. */
static const char *sym_sum(const char *const *terms, int n) {
  double c = 0, v;
  const char *s = "";
  for (int i = 0; i < n; i++) {
    if (!terms[i]) return NULL;
    if (sym_is_num(terms[i], &v)) c += v;
    else s = gc_printf("%s%s%s", s, *s ? " + " : "", terms[i]);
  }
  if (!*s) return num_text(c);
  return c != 0 ? gc_printf("%s + %s", num_text(c), s) : s;
}

/* How to show a bound register: its value, its variable name, or "?". */
static const char *reg_text(const Ana *A, int fn, int r) {
  double v;
  if (const_of(A, fn, r, &v, 0)) return num_text(v);
  const IrFunc *f = A->fi[fn].f;
  if (r >= 0 && r < f->nregs && f->regnames[r]) return f->regnames[r];
  return "?";
}

/* ---- calls: reachability, recursion, who samples ---------------------------- */

typedef void (*InstrFn)(Ana *A, int fn, const IrInstr *in, void *ud);

static void each_instr(Ana *A, int fn, const IrBlock *b, InstrFn cb, void *ud) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    cb(A, fn, in, ud);
    each_instr(A, fn, &in->then_b, cb, ud);
    each_instr(A, fn, &in->else_b, cb, ud);
    each_instr(A, fn, &in->cond_b, cb, ud);
    each_instr(A, fn, &in->body, cb, ud);
  }
}

static const IrBlock *fn_body(const Ana *A, int fn) {
  return fn == A->imain ? &A->p->model_b : &A->p->funcs[fn].body;
}

static void mark_calls(Ana *A, int fn, const IrInstr *in, void *ud) {
  bool *edges = ud;
  int n = A->p->nfuncs + 1;
  /* IR_ODE runs its (deterministic) function too: an edge like a call */
  if ((in->op == IR_CALL || in->op == IR_ODE) && in->callee >= 0 && in->callee < A->p->nfuncs)
    edges[fn * n + in->callee] = true;
  if (in->op == IR_SAMPLE) A->fi[fn].has_sample = true;
  if (in->op == IR_OBSERVE || in->op == IR_FACTOR || in->op == IR_CONDITION)
    A->fi[fn].has_obs = true;
}

static void call_graph(Ana *A) {
  int n = A->p->nfuncs + 1;
  bool *reach = gc_alloc_atomic(sizeof(bool) * (size_t)(n * n));
  for (int f = 0; f < n; f++) each_instr(A, f, fn_body(A, f), mark_calls, reach);
  /* transitive closure; programs have few functions */
  for (int k = 0; k < n; k++)
    for (int i = 0; i < n; i++)
      if (reach[i * n + k])
        for (int j = 0; j < n; j++)
          if (reach[k * n + j]) reach[i * n + j] = true;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++)
      if (reach[i * n + j]) {
        A->fi[i].has_sample |= A->fi[j].has_sample;
        A->fi[i].has_obs |= A->fi[j].has_obs;
      }
    A->fi[i].recursive = reach[i * n + i];
  }
  A->fi[A->imain].reachable = true;
  for (int j = 0; j < A->p->nfuncs; j++) A->fi[j].reachable = reach[A->imain * n + j];
}

/* ---- taint ------------------------------------------------------------------ */

static void taint_block(Ana *A, int fn, const IrBlock *b, const char *ctl);

/* A break/continue of this loop under random control makes the number of
   iterations random. */
static const char *escape_src(const Ana *A, int fn, const IrBlock *b, const char *ctl) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if ((in->op == IR_BREAK || in->op == IR_CONTINUE) && ctl) return ctl;
    if (in->op == IR_IF) {
      const char *c = first(ctl, src_of(A, fn, in->args[0]));
      const char *s = first(escape_src(A, fn, &in->then_b, c), escape_src(A, fn, &in->else_b, c));
      if (s) return s;
    }
  }
  return NULL;
}

static void taint_instr(Ana *A, int fn, const IrInstr *in, const char *ctl) {
  FnInfo *f = &A->fi[fn];
  const char *s = first(ctl, operand_src(A, fn, in));
  switch (in->op) {
  case IR_SAMPLE:
    taint(A, fn, in->dst, gc_printf("latent '%s'", in->name ? in->name : "?"));
    return;
  case IR_BUILTIN:
    if (in->builtin && in->builtin->uses_rng)
      s = first(s, gc_printf("%s()", in->builtin->name ? in->builtin->name : "?"));
    break;
  case IR_CALL: {
    if (in->callee < 0 || in->callee >= A->p->nfuncs) break;
    FnInfo *g = &A->fi[in->callee];
    for (int i = 0; i < in->nargs && i < g->f->nparams; i++)
      taint(A, in->callee, i, first(ctl, src_of(A, fn, in->args[i])));
    s = first(s, g->ret_src);
    if (g->has_sample) s = first(s, gc_printf("the latents of '%s'", g->f->name));
    break;
  }
  case IR_RETURN:
    if (s && !f->ret_src) {
      f->ret_src = s;
      A->changed = true;
    }
    if (ctl && !f->early_src) {
      f->early_src = ctl;
      A->changed = true;
    }
    return;
  case IR_IF: {
    const char *c = first(ctl, src_of(A, fn, in->args[0]));
    taint_block(A, fn, &in->then_b, c);
    taint_block(A, fn, &in->else_b, c);
    return;
  }
  case IR_FOR: {
    const char *c = first(s, escape_src(A, fn, &in->body, NULL));
    taint(A, fn, in->var, c);
    taint_block(A, fn, &in->body, c);
    return;
  }
  case IR_WHILE: {
    taint_block(A, fn, &in->cond_b, ctl);
    const char *c = first(ctl, first(src_of(A, fn, in->cond), escape_src(A, fn, &in->body, NULL)));
    taint_block(A, fn, &in->cond_b, c);
    taint_block(A, fn, &in->body, c);
    return;
  }
  default: break;
  }
  taint(A, fn, in->dst, s);
}

static void taint_block(Ana *A, int fn, const IrBlock *b, const char *ctl) {
  for (int i = 0; i < b->n; i++) taint_instr(A, fn, &b->ins[i], ctl);
}

static void taint_all(Ana *A) {
  do {
    A->changed = false;
    for (int f = 0; f <= A->p->nfuncs; f++)
      if (A->fi[f].reachable) taint_block(A, f, fn_body(A, f), NULL);
  } while (A->changed);
}

/* ---- structure ---------------------------------------------------------------- */

static void dynamic(Ana *A, SrcPos pos, const char *msg) {
  if (!A->a->fixed_structure) return;
  A->a->fixed_structure = false;
  const char *file = pos.file ? pos.file : A->p->file;
  A->a->dynamic_reason = pos.line > 0 ? gc_printf("%s:%d:%d: %s", file ? file : "<model>",
                                                  pos.line, pos.col, msg)
                                      : msg;
}

static void struct_block(Ana *A, int fn, const IrBlock *b, Ctl ctl);

static void struct_func(Ana *A, int callee) {
  FnInfo *g = &A->fi[callee];
  if (g->checked || !g->has_sample) return;
  g->checked = true;
  if (g->recursive) {
    dynamic(A, g->f->pos, gc_printf("recursive stochastic function '%s'", g->f->name));
    return;
  }
  Ctl c = {NULL, NULL, g->f->pos};
  if (g->early_src) {
    c.src = g->early_src;
    c.what = gc_printf("function '%s', which may return early depending on", g->f->name);
  }
  struct_block(A, callee, &g->f->body, c);
}

static Ctl inner_ctl(Ctl outer, const char *src, const char *what, SrcPos pos) {
  if (outer.src || !src) return outer;
  Ctl c = {src, what, pos};
  return c;
}

static void struct_block(Ana *A, int fn, const IrBlock *b, Ctl ctl) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    switch (in->op) {
    case IR_SAMPLE:
      if (ctl.src)
        dynamic(A, ctl.pos, gc_printf("latent '%s' is inside %s %s", in->name, ctl.what, ctl.src));
      for (int k = 0; k < in->nsizes; k++) {
        const char *s = src_of(A, fn, in->sizes[k]);
        if (s) dynamic(A, in->pos, gc_printf("latent '%s' has a size that depends on %s",
                                             in->name, s));
      }
      break;
    case IR_CALL:
      if (in->callee < 0 || in->callee >= A->p->nfuncs) break;
      if (A->fi[in->callee].has_sample && ctl.src)
        dynamic(A, ctl.pos, gc_printf("call of '%s' (which declares latents) is inside %s %s",
                                      A->fi[in->callee].f->name, ctl.what, ctl.src));
      struct_func(A, in->callee);
      break;
    case IR_IF: {
      Ctl c = inner_ctl(ctl, src_of(A, fn, in->args[0]), "an if whose condition depends on",
                        in->pos);
      struct_block(A, fn, &in->then_b, c);
      struct_block(A, fn, &in->else_b, c);
      break;
    }
    case IR_FOR: {
      const char *s = first(src_of(A, fn, in->args[0]), src_of(A, fn, in->args[1]));
      Ctl c = inner_ctl(ctl, s, "a for loop whose bounds depend on", in->pos);
      c = inner_ctl(c, escape_src(A, fn, &in->body, NULL),
                    "a for loop left early (break/continue) depending on", in->pos);
      struct_block(A, fn, &in->body, c);
      break;
    }
    case IR_WHILE: {
      Ctl c = inner_ctl(ctl, src_of(A, fn, in->cond), "a while loop whose condition depends on",
                        in->pos);
      c = inner_ctl(c, escape_src(A, fn, &in->body, NULL),
                    "a while loop left early (break/continue) depending on", in->pos);
      struct_block(A, fn, &in->cond_b, c);
      struct_block(A, fn, &in->body, c);
      break;
    }
    default: break;
    }
  }
}

/* ---- latents ------------------------------------------------------------------ */

/* A bound: absent (infinite), a number, or text (a variable's name). */
typedef struct Bound {
  int state; /* 0 none, 1 number, 2 text */
  double v;
  const char *text;
} Bound;

static Bound bound_reg(const Ana *A, int fn, int r) {
  Bound b = {0, 0, NULL};
  if (r < 0) return b;
  double v;
  if (const_of(A, fn, r, &v, 0)) {
    b.state = isinf(v) ? 0 : 1;
    b.v = v;
  } else {
    b.state = 2;
    b.text = reg_text(A, fn, r);
  }
  return b;
}

static Bound bound_num(double v) {
  Bound b = {isinf(v) ? 0 : 1, v, NULL};
  return b;
}

/* The family's support for this call: from constant parameters when all are
   constants; otherwise probed with two parameter sets to see whether a bound
   is fixed or equal to one of the parameters (uniform(a, b) -> a, b). */
static void family_support(const Ana *A, int fn, const DistFamily *f, const IrDist *d,
                           Bound *lo, Bound *hi) {
  *lo = bound_num(-INFINITY);
  *hi = bound_num(INFINITY);
  if (!f->support) return;
  double p[DIST_MAX_PARAMS] = {0};
  bool all = true;
  for (int i = 0; i < d->nparams && i < DIST_MAX_PARAMS; i++)
    if (!const_of(A, fn, d->params[i], &p[i], 0)) all = false;
  double l, h;
  if (all) {
    f->support(p, &l, &h);
    *lo = bound_num(l);
    *hi = bound_num(h);
    return;
  }
  double p1[DIST_MAX_PARAMS], p2[DIST_MAX_PARAMS], l1, h1, l2, h2;
  for (int i = 0; i < DIST_MAX_PARAMS; i++) {
    p1[i] = 3 + i;
    p2[i] = 11 + 2 * i;
  }
  f->support(p1, &l1, &h1);
  f->support(p2, &l2, &h2);
  double got1[2] = {l1, h1}, got2[2] = {l2, h2};
  Bound *out[2] = {lo, hi};
  for (int k = 0; k < 2; k++) {
    if (got1[k] == got2[k]) {
      *out[k] = bound_num(got1[k]);
      continue;
    }
    out[k]->state = 2;
    out[k]->text = "?";
    for (int i = 0; i < d->nparams && i < DIST_MAX_PARAMS; i++)
      if (got1[k] == p1[i] && got2[k] == p2[i]) {
        *out[k] = bound_reg(A, fn, d->params[i]);
        break;
      }
  }
}

static const char *bound_text(Bound b, bool upper) {
  if (b.state == 0) return upper ? "inf" : "-inf";
  if (b.state == 1) return num_text(b.v);
  return b.text;
}

/* Effective bound: declared intersected with the family's. */
static Bound bound_meet(Bound decl, Bound fam, bool upper, bool *cuts) {
  *cuts = false;
  if (decl.state == 0) return fam;
  if (decl.state == 1 && fam.state == 1) {
    bool tighter = upper ? decl.v < fam.v : decl.v > fam.v;
    *cuts = tighter;
    return tighter ? decl : fam;
  }
  if (decl.state == 1 && fam.state == 2) return decl;
  *cuts = fam.state == 0 || decl.state == 1;
  if (decl.state == 2 && fam.state == 1) *cuts = false; /* cannot tell */
  return decl;
}

static const char *structured_text(int con) {
  switch (con) {
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

static void latent_support(Ana *A, int fn, const IrInstr *in, IrLatentInfo *li, LatExtra *x) {
  const DistFamily *f = in->dist.fam;
  li->con = CON_NONE;
  if (!f) {
    li->support = "?";
    return;
  }
  if (f->vtype.base == TY_STRING) {
    li->support = "string";
    return;
  }
  const char *st = structured_text(in->con.kind);
  if (st) {
    li->con = (ConKind)in->con.kind;
    li->support = st;
    return;
  }
  st = structured_text(f->support_con);
  if (st) {
    li->con = f->support_con;
    li->support = st;
    return;
  }
  Bound flo, fhi;
  family_support(A, fn, f, &in->dist, &flo, &fhi);
  bool cut_lo, cut_hi;
  Bound lo = bound_meet(bound_reg(A, fn, in->con.lower), flo, false, &cut_lo);
  Bound hi = bound_meet(bound_reg(A, fn, in->con.upper), fhi, true, &cut_hi);
  if (lo.state && hi.state) li->con = CON_LOWER_UPPER;
  else if (lo.state) li->con = CON_LOWER;
  else if (hi.state) li->con = CON_UPPER;
  if (cut_lo || cut_hi) {
    const char *l = cut_lo ? gc_printf("lower=%s", bound_text(lo, false)) : "";
    const char *h = cut_hi ? gc_printf("upper=%s", bound_text(hi, true)) : "";
    x->trunc = gc_printf("truncated to %s%s%s", l, cut_lo && cut_hi ? ", " : "", h);
  }
  const char *L = bound_text(lo, false), *H = bound_text(hi, true);
  if (!f->discrete) {
    li->support = !lo.state && !hi.state ? "real" : gc_printf("(%s, %s)", L, H);
    return;
  }
  if (!lo.state && !hi.state) li->support = "int";
  else if (!hi.state) li->support = gc_printf("int >= %s", L);
  else if (!lo.state) li->support = gc_printf("int <= %s", H);
  else if (lo.state == 1 && hi.state == 1 && hi.v - lo.v == 1)
    li->support = gc_printf("{%s, %s}", L, H);
  else li->support = gc_printf("{%s, ..., %s}", L, H);
}

/* Language-model draws and observations, the first one's place. */
static void note_lm(IrAnalysis *a, const IrInstr *in) {
  if (!lm_family_is(in->dist.fam) || a->has_lm) return;
  a->has_lm = true;
  a->lm_pos = in->pos;
}

static void add_latent(Ana *A, int fn, const IrInstr *in, bool in_loop) {
  IrAnalysis *a = A->a;
  if (a->nlatents == A->caplat) {
    A->caplat = A->caplat ? 2 * A->caplat : 16;
    IrLatentInfo *nl = gc_alloc(sizeof(IrLatentInfo) * (size_t)A->caplat);
    LatExtra *ne = gc_alloc(sizeof(LatExtra) * (size_t)A->caplat);
    const IrInstr **ni = gc_alloc(sizeof(IrInstr *) * (size_t)A->caplat);
    if (a->nlatents) {
      memcpy(nl, a->latents, sizeof(IrLatentInfo) * (size_t)a->nlatents);
      memcpy(ne, A->extra, sizeof(LatExtra) * (size_t)a->nlatents);
      memcpy(ni, A->lat_ins, sizeof(IrInstr *) * (size_t)a->nlatents);
    }
    a->latents = nl;
    A->extra = ne;
    A->lat_ins = ni;
  }
  A->lat_ins[a->nlatents] = in;
  IrLatentInfo *li = &a->latents[a->nlatents];
  LatExtra *x = &A->extra[a->nlatents];
  a->nlatents++;
  const DistFamily *f = in->dist.fam;
  li->name = in->name ? in->name : "?";
  li->pos = in->pos;
  li->family = f ? f->name : "?";
  li->kind = f && f->vtype.base == TY_STRING ? LK_STRING
             : f && f->discrete            ? LK_DISCRETE
                                           : LK_CONTINUOUS;
  li->in_loop = in_loop;
  li->in_function = fn != A->imain;
  li->fixed_size = true;
  for (int k = 0; k < in->nsizes; k++)
    if (src_of(A, fn, in->sizes[k])) li->fixed_size = false;
  const IrFunc *fd = A->fi[fn].f;
  x->type = in->dst >= 0 && in->dst < fd->nregs ? fd->regtypes[in->dst] : ty_make(TY_REAL, 0);
  x->func = fn != A->imain ? fd->name : NULL;
  latent_support(A, fn, in, li, x);
  x->loops = A->loops;
  sym_latent(A, fn, in, x);
  if (li->kind == LK_DISCRETE) a->has_discrete = true;
  if (li->kind == LK_STRING) a->has_string = true;
  note_lm(a, in);
}

/* What an observed register is, for the listing: "y", "y[...]", or "..." */
static const char *obs_lhs(const Ana *A, int fn, int r) {
  const FnInfo *f = &A->fi[fn];
  if (r < 0 || r >= f->f->nregs) return "...";
  if (f->f->regnames[r]) return f->f->regnames[r];
  if (f->ndefs[r] == 1 && f->def[r] && f->def[r]->op == IR_INDEX) {
    int b = f->def[r]->args[0];
    if (b >= 0 && b < f->f->nregs && f->f->regnames[b])
      return gc_printf("%s[...]", f->f->regnames[b]);
  }
  return "...";
}

static void add_obs(Ana *A, int fn, const IrInstr *in, bool in_loop, bool random_ctl) {
  IrAnalysis *a = A->a;
  if (in->op == IR_OBSERVE) note_lm(a, in);
  if (a->nobs == A->capobs) {
    A->capobs = A->capobs ? 2 * A->capobs : 16;
    IrObsInfo *no = gc_alloc(sizeof(IrObsInfo) * (size_t)A->capobs);
    const IrInstr **ni = gc_alloc(sizeof(IrInstr *) * (size_t)A->capobs);
    if (a->nobs) {
      memcpy(no, a->obs, sizeof(IrObsInfo) * (size_t)a->nobs);
      memcpy(ni, A->obs_ins, sizeof(IrInstr *) * (size_t)a->nobs);
    }
    a->obs = no;
    A->obs_ins = ni;
  }
  A->obs_ins[a->nobs] = in;
  IrObsInfo *o = &a->obs[a->nobs++];
  o->pos = in->pos;
  o->in_loop = in_loop;
  o->depends_on_latent_control = random_ctl;
  if (in->op == IR_FACTOR) o->what = "factor";
  else if (in->op == IR_CONDITION) o->what = "condition";
  else {
    const char *fam = in->dist.fam ? in->dist.fam->name : "?";
    bool vec = false;
    int r = in->nargs > 0 ? in->args[0] : -1;
    const IrFunc *fd = A->fi[fn].f;
    if (r >= 0 && r < fd->nregs) {
      Type t = fd->regtypes[r];
      vec = t.ndims > 0 || t.base == TY_VECTOR || t.base == TY_ROWVEC || t.base == TY_MATRIX;
    }
    o->what = gc_printf("%s ~ %s%s", obs_lhs(A, fn, r), fam, vec ? "  vectorised" : "");
  }
}

static void add_param(Ana *A, int fn, const IrInstr *in) {
  IrAnalysis *a = A->a;
  IrParamInfo *np = gc_alloc(sizeof(IrParamInfo) * (size_t)(a->nparams + 1));
  if (a->nparams) memcpy(np, a->params, sizeof(IrParamInfo) * (size_t)a->nparams);
  a->params = np;
  IrParamInfo *pi = &a->params[a->nparams++];
  const IrFunc *fd = A->fi[fn].f;
  pi->name = in->name ? in->name : "?";
  pi->pos = in->pos;
  pi->type = in->dst >= 0 && in->dst < fd->nregs ? ty_name(fd->regtypes[in->dst]) : "?";
  Bound lo = bound_reg(A, fn, in->con.lower), hi = bound_reg(A, fn, in->con.upper);
  pi->support = !lo.state && !hi.state
                    ? "real"
                    : gc_printf("(%s, %s)", bound_text(lo, false), bound_text(hi, true));
  pi->has_init = in->nargs > 0 || (in->dst >= 0 && in->dst < fd->nregs && (fd->regtypes[in->dst].base == TY_NETWORK || fd->regtypes[in->dst].base == TY_FLOW));
}

/* Collects latents and observations in walk order. */
static void collect(Ana *A, int fn, const IrBlock *b, bool in_loop, bool rnd) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    switch (in->op) {
    case IR_SAMPLE: add_latent(A, fn, in, in_loop); break;
    case IR_OBSERVE: case IR_FACTOR: case IR_CONDITION: add_obs(A, fn, in, in_loop, rnd); break;
    case IR_PARAM: add_param(A, fn, in); break;
    case IR_IF: {
      bool r = rnd || src_of(A, fn, in->args[0]);
      collect(A, fn, &in->then_b, in_loop, r);
      collect(A, fn, &in->else_b, in_loop, r);
      break;
    }
    case IR_FOR: {
      bool r = rnd || src_of(A, fn, in->args[0]) || src_of(A, fn, in->args[1]);
      const char *loops = A->loops, *mult = A->mult;
      const IrFunc *f = A->fi[fn].f;
      const char *lo = sym_of(A, fn, in->args[0], 0), *hi = sym_of(A, fn, in->args[1], 0);
      A->loops = gc_printf("%s%s%s in %s:%s", loops ? loops : "", loops ? ", " : "",
                           f->regnames[in->var] ? f->regnames[in->var] : "?", lo ? lo : "?",
                           hi ? hi : "?");
      A->mult = sym_mul(mult, sym_iterations(A, fn, in));
      collect(A, fn, &in->body, true, r);
      A->loops = loops, A->mult = mult;
      break;
    }
    case IR_WHILE: {
      bool r = rnd || src_of(A, fn, in->cond);
      const char *loops = A->loops, *mult = A->mult;
      A->loops = gc_printf("%s%swhile", loops ? loops : "", loops ? ", " : "");
      A->mult = NULL; /* as many as its iterations */
      collect(A, fn, &in->cond_b, true, r);
      collect(A, fn, &in->body, true, r);
      A->loops = loops, A->mult = mult;
      break;
    }
    default: break;
    }
  }
}

/* ---- interleaving ---------------------------------------------------------------- */

typedef struct Ev {
  bool s, o;
} Ev;

static Ev ev_block(Ana *A, int fn, const IrBlock *b) {
  Ev ev = {false, false};
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    Ev sub = {false, false};
    switch (in->op) {
    case IR_SAMPLE:
      if (A->ev_o_after_s) A->a->interleaved_observations = true;
      A->ev_seen_s = true;
      ev.s = true;
      break;
    case IR_OBSERVE: case IR_FACTOR: case IR_CONDITION:
      if (A->ev_seen_s) A->ev_o_after_s = true;
      ev.o = true;
      break;
    case IR_CALL:
      if (in->callee >= 0 && in->callee < A->p->nfuncs && !A->fi[in->callee].visiting) {
        A->fi[in->callee].visiting = true;
        sub = ev_block(A, in->callee, &A->p->funcs[in->callee].body);
        A->fi[in->callee].visiting = false;
      }
      break;
    case IR_IF: {
      Ev t = ev_block(A, fn, &in->then_b), e = ev_block(A, fn, &in->else_b);
      sub.s = t.s || e.s;
      sub.o = t.o || e.o;
      break;
    }
    case IR_FOR: case IR_WHILE: {
      Ev c = ev_block(A, fn, &in->cond_b), body = ev_block(A, fn, &in->body);
      sub.s = c.s || body.s;
      sub.o = c.o || body.o;
      if (sub.s && sub.o) A->a->interleaved_observations = true;
      break;
    }
    default: break;
    }
    ev.s |= sub.s;
    ev.o |= sub.o;
  }
  return ev;
}

/* ---- the latents' dependency graph ------------------------------------------------

   Which latents each register's value can depend on, as a bit set over the
   latents, by the same flow-insensitive, context-insensitive propagation as
   the taint above: data flow through moves, stores, calls and returns, and
   control flow (writes under a branch or loop whose condition or bounds
   depend on latents, early exits).  A latent's parents are the latents its
   distribution's parameters, sizes and bounds, or the control around it
   (including around the calls that reach it), depend on; an observation's
   are those of its distribution, its observed value and its control.  One
   node per SAMPLE instruction: a latent declared in a loop is one node for
   all its iterations, and depending on earlier iterations of itself shows as
   a self-dependence rather than an edge. */

typedef struct Dep {
  Ana *A;
  int W;              /* words per set */
  uint64_t **reg;     /* per function: nregs sets */
  uint64_t **ctl_in;  /* per function: control of its call sites */
  uint64_t **ret;     /* per function: what its result depends on */
  bool changed;
} Dep;

static uint64_t *dset(const Dep *D, int fn, int r) {
  return r >= 0 && r < D->A->fi[fn].f->nregs ? D->reg[fn] + (size_t)r * (size_t)D->W : NULL;
}

/* into |= from; notes a change */
static void dor(Dep *D, uint64_t *into, const uint64_t *from) {
  if (!into || !from) return;
  for (int w = 0; w < D->W; w++)
    if (from[w] & ~into[w]) {
      into[w] |= from[w];
      D->changed = true;
    }
}

/* Everything an instruction reads (not its blocks), or-ed into acc. */
static void dep_operands(Dep *D, int fn, const IrInstr *in, uint64_t *acc) {
  for (int i = 0; i < in->nargs; i++) dor(D, acc, dset(D, fn, in->args[i]));
  for (int i = 0; i < in->nidx; i++) {
    if (in->idx[i].kind == IX_ALL) continue;
    dor(D, acc, dset(D, fn, in->idx[i].lo));
    dor(D, acc, dset(D, fn, in->idx[i].hi));
  }
  for (int i = 0; i < in->dist.nparams; i++) dor(D, acc, dset(D, fn, in->dist.params[i]));
  for (int i = 0; i < in->nsizes; i++) dor(D, acc, dset(D, fn, in->sizes[i]));
  dor(D, acc, dset(D, fn, in->con.lower));
  dor(D, acc, dset(D, fn, in->con.upper));
}

static uint64_t *dnew(const Dep *D) { return gc_alloc_atomic(sizeof(uint64_t) * (size_t)(D->W + 1)); }

static int latent_of(const Ana *A, const IrInstr *in) {
  for (int i = 0; i < A->a->nlatents; i++)
    if (A->lat_ins[i] == in) return i;
  return -1;
}

/* Conditions of the ifs in b (not in nested loops) around a break/continue. */
static void dep_escape(Dep *D, int fn, const IrBlock *b, const uint64_t *ctl, uint64_t *acc) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if ((in->op == IR_BREAK || in->op == IR_CONTINUE) && ctl) dor(D, acc, ctl);
    if (in->op == IR_IF) {
      uint64_t *c = dnew(D);
      bool saved = D->changed;
      dor(D, c, ctl);
      dor(D, c, dset(D, fn, in->args[0]));
      D->changed = saved;
      dep_escape(D, fn, &in->then_b, c, acc);
      dep_escape(D, fn, &in->else_b, c, acc);
    }
  }
}

static void dep_block(Dep *D, int fn, const IrBlock *b, const uint64_t *ctl);

/* ctl or-ed with what else is read: a new set (does not count as a change). */
static uint64_t *dctl(Dep *D, const uint64_t *ctl, int fn, const int *regs, int n) {
  uint64_t *c = dnew(D);
  bool saved = D->changed;
  dor(D, c, ctl);
  for (int i = 0; i < n; i++) dor(D, c, dset(D, fn, regs[i]));
  D->changed = saved;
  return c;
}

static void dep_loop(Dep *D, int fn, const IrInstr *in, uint64_t *c) {
  bool saved = D->changed;
  dep_escape(D, fn, &in->body, NULL, c);
  D->changed = saved;
  if (in->op == IR_FOR) dor(D, dset(D, fn, in->var), c);
  dep_block(D, fn, &in->cond_b, c);
  dep_block(D, fn, &in->body, c);
}

static void dep_instr(Dep *D, int fn, const IrInstr *in, const uint64_t *ctl) {
  Ana *A = D->A;
  switch (in->op) {
  case IR_SAMPLE: {
    int k = latent_of(A, in);
    uint64_t *d = dset(D, fn, in->dst);
    if (d && k >= 0 && !(d[k / 64] >> (k % 64) & 1)) {
      d[k / 64] |= 1ull << (k % 64);
      D->changed = true;
    }
    return;
  }
  case IR_IF: {
    uint64_t *c = dctl(D, ctl, fn, in->args, 1);
    dep_block(D, fn, &in->then_b, c);
    dep_block(D, fn, &in->else_b, c);
    return;
  }
  case IR_FOR: dep_loop(D, fn, in, dctl(D, ctl, fn, in->args, 2)); return;
  case IR_WHILE: {
    dep_block(D, fn, &in->cond_b, ctl);
    dep_loop(D, fn, in, dctl(D, ctl, fn, &in->cond, 1));
    return;
  }
  case IR_RETURN:
    dor(D, D->ret[fn], ctl);
    for (int i = 0; i < in->nargs; i++) dor(D, D->ret[fn], dset(D, fn, in->args[i]));
    return;
  case IR_CALL:
    if (in->callee >= 0 && in->callee < A->p->nfuncs) {
      int g = in->callee;
      dor(D, D->ctl_in[g], ctl);
      dor(D, D->ctl_in[g], D->ctl_in[fn]);
      for (int i = 0; i < in->nargs && i < A->fi[g].f->nparams; i++)
        dor(D, dset(D, g, i), dset(D, fn, in->args[i]));
      /* the arguments reach the result through the parameters and ret */
      dor(D, dset(D, fn, in->dst), D->ret[g]);
      dor(D, dset(D, fn, in->dst), ctl);
      return;
    }
    break;
  default: break;
  }
  uint64_t *d = dset(D, fn, in->dst);
  if (!d) return;
  dor(D, d, ctl);
  dep_operands(D, fn, in, d);
}

static void dep_block(Dep *D, int fn, const IrBlock *b, const uint64_t *ctl) {
  for (int i = 0; i < b->n; i++) dep_instr(D, fn, &b->ins[i], ctl);
}

/* The control sets around each latent / observation, found by walking again
   after the fixed point: node -> its set. */
typedef struct DepNodes {
  uint64_t **par; /* nlatents + nobs sets */
} DepNodes;

static int obs_of(const Ana *A, const IrInstr *in) {
  for (int j = 0; j < A->a->nobs; j++)
    if (A->obs_ins[j] == in) return j;
  return -1;
}

static void dep_collect(Dep *D, DepNodes *N, int fn, const IrBlock *b, const uint64_t *ctl) {
  Ana *A = D->A;
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    int node = -1;
    if (in->op == IR_SAMPLE) node = latent_of(A, in);
    else if (in->op == IR_OBSERVE || in->op == IR_FACTOR || in->op == IR_CONDITION) {
      int j = obs_of(A, in);
      node = j >= 0 ? A->a->nlatents + j : -1;
    }
    if (node >= 0) {
      uint64_t *p = N->par[node];
      dor(D, p, ctl);
      dor(D, p, D->ctl_in[fn]);
      for (int k = 0; k < in->dist.nparams; k++) dor(D, p, dset(D, fn, in->dist.params[k]));
      for (int k = 0; k < in->nsizes; k++) dor(D, p, dset(D, fn, in->sizes[k]));
      dor(D, p, dset(D, fn, in->con.lower));
      dor(D, p, dset(D, fn, in->con.upper));
      if (in->op != IR_SAMPLE)
        for (int k = 0; k < in->nargs; k++) dor(D, p, dset(D, fn, in->args[k]));
    }
    switch (in->op) {
    case IR_IF: {
      uint64_t *c = dctl(D, ctl, fn, in->args, 1);
      dep_collect(D, N, fn, &in->then_b, c);
      dep_collect(D, N, fn, &in->else_b, c);
      break;
    }
    case IR_FOR: case IR_WHILE: {
      uint64_t *c = in->op == IR_FOR ? dctl(D, ctl, fn, in->args, 2) : dctl(D, ctl, fn, &in->cond, 1);
      dep_escape(D, fn, &in->body, NULL, c);
      if (in->op == IR_WHILE) dep_collect(D, N, fn, &in->cond_b, ctl);
      dep_collect(D, N, fn, &in->cond_b, c);
      dep_collect(D, N, fn, &in->body, c);
      break;
    }
    default: break;
    }
  }
}

/* Sorted list of the members of set (except `skip`) into a fresh int array. */
static int set_list(const uint64_t *set, int n, int skip, int **out) {
  int m = 0;
  int *l = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  for (int i = 0; i < n; i++)
    if (i != skip && (set[i / 64] >> (i % 64) & 1)) l[m++] = i;
  *out = l;
  return m;
}

static void dependencies(Ana *A) {
  IrAnalysis *a = A->a;
  int nl = a->nlatents, nn = nl + a->nobs, nf = A->p->nfuncs + 1;
  Dep D = {A, (nl + 63) / 64 + 1, NULL, NULL, NULL, false};
  D.reg = gc_alloc(sizeof(uint64_t *) * (size_t)nf);
  D.ctl_in = gc_alloc(sizeof(uint64_t *) * (size_t)nf);
  D.ret = gc_alloc(sizeof(uint64_t *) * (size_t)nf);
  for (int f = 0; f < nf; f++) {
    D.reg[f] = gc_alloc_atomic(sizeof(uint64_t) * (size_t)D.W * (size_t)(A->fi[f].f->nregs + 1));
    D.ctl_in[f] = dnew(&D);
    D.ret[f] = dnew(&D);
  }
  do {
    D.changed = false;
    for (int f = 0; f < nf; f++)
      if (A->fi[f].reachable) dep_block(&D, f, fn_body(A, f), NULL);
  } while (D.changed);
  DepNodes N = {gc_alloc(sizeof(uint64_t *) * (size_t)(nn + 1))};
  for (int i = 0; i < nn; i++) N.par[i] = dnew(&D);
  for (int f = 0; f < nf; f++)
    if (A->fi[f].reachable) dep_collect(&D, &N, f, fn_body(A, f), NULL);

  /* parents, children, blankets as index lists */
  a->dep_self = gc_alloc_atomic(sizeof(bool) * (size_t)(nn + 1));
  a->dep_npar = gc_alloc_atomic(sizeof(int) * (size_t)(nn + 1));
  a->dep_nch = gc_alloc_atomic(sizeof(int) * (size_t)(nn + 1));
  a->dep_nmb = gc_alloc_atomic(sizeof(int) * (size_t)(nn + 1));
  a->dep_par = gc_alloc(sizeof(int *) * (size_t)(nn + 1));
  a->dep_ch = gc_alloc(sizeof(int *) * (size_t)(nn + 1));
  a->dep_mb = gc_alloc(sizeof(int *) * (size_t)(nn + 1));
  for (int i = 0; i < nn; i++) {
    a->dep_self[i] = i < nl && (N.par[i][i / 64] >> (i % 64) & 1);
    a->dep_npar[i] = set_list(N.par[i], nl, i, &a->dep_par[i]);
  }
  for (int i = 0; i < nl; i++) {
    int *ch = gc_alloc_atomic(sizeof(int) * (size_t)(nn + 1)), m = 0;
    uint64_t *mb = dnew(&D);
    dor(&D, mb, N.par[i]);
    for (int j = 0; j < nn; j++) {
      if (j == i || !(N.par[j][i / 64] >> (i % 64) & 1)) continue;
      ch[m++] = j;
      if (j < nl) mb[j / 64] |= 1ull << (j % 64);
      dor(&D, mb, N.par[j]); /* the child's other parents */
    }
    a->dep_ch[i] = ch;
    a->dep_nch[i] = m;
    a->dep_nmb[i] = set_list(mb, nl, i, &a->dep_mb[i]);
  }
  for (int i = nl; i < nn; i++) {
    a->dep_ch[i] = a->dep_mb[i] = NULL;
    a->dep_nch[i] = a->dep_nmb[i] = 0;
  }
}

static int dep_get(const IrAnalysis *a, int node, int *const *lists, const int *counts,
                   const int **out) {
  if (!a || node < 0 || node >= a->nlatents + a->nobs || !counts) {
    if (out) *out = NULL;
    return 0;
  }
  if (out) *out = lists[node];
  return counts[node];
}

bool ir_instr_reads_here(const IrInstr *in, int r) {
  for (int k = 0; k < in->nargs; k++)
    if (in->args[k] == r) return true;
  for (int k = 0; k < in->dist.nparams; k++)
    if (in->dist.params[k] == r) return true;
  for (int k = 0; k < in->nsizes; k++)
    if (in->sizes[k] == r) return true;
  for (int k = 0; k < in->nidx; k++)
    if (in->idx[k].lo == r || in->idx[k].hi == r) return true;
  if (in->con.lower == r || in->con.upper == r) return true;
  if (in->op == IR_STORE && in->dst == r) return true;
  if (in->op == IR_OBSERVE && in->var == r) return true;
  return in->op == IR_WHILE && in->cond == r;
}

int ir_dep_parents(const IrAnalysis *a, int node, const int **out) {
  return dep_get(a, node, a ? a->dep_par : NULL, a ? a->dep_npar : NULL, out);
}
int ir_dep_children(const IrAnalysis *a, int node, const int **out) {
  return dep_get(a, node, a ? a->dep_ch : NULL, a ? a->dep_nch : NULL, out);
}
int ir_dep_blanket(const IrAnalysis *a, int node, const int **out) {
  return dep_get(a, node, a ? a->dep_mb : NULL, a ? a->dep_nmb : NULL, out);
}
bool ir_dep_self(const IrAnalysis *a, int node) {
  return a && a->dep_self && node >= 0 && node < a->nlatents + a->nobs && a->dep_self[node];
}

/* ---- entry points ------------------------------------------------------------------ */

static IrAnalysis *analyze(const IrProgram *p, LatExtra **extra) {
  Ana A;
  memset(&A, 0, sizeof A);
  A.p = p;
  A.imain = p->nfuncs;
  A.fi = gc_alloc(sizeof(FnInfo) * (size_t)(p->nfuncs + 1));
  A.a = gc_alloc(sizeof(IrAnalysis));
  A.a->fixed_structure = true;
  A.mult = "1";
  for (int f = 0; f <= p->nfuncs; f++) {
    FnInfo *fi = &A.fi[f];
    fi->f = f == A.imain ? &p->main : &p->funcs[f];
    int n = fi->f->nregs;
    fi->src = gc_alloc(sizeof(char *) * (size_t)(n + 1));
    fi->ndefs = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
    fi->def = gc_alloc(sizeof(IrInstr *) * (size_t)(n + 1));
    for (int r = 0; r < fi->f->nparams && r < n; r++) fi->ndefs[r]++;
    if (f == A.imain) {
      count_defs(fi, &p->data_b);
      count_defs(fi, &p->model_b);
      count_defs(fi, &p->gen_b);
    } else {
      count_defs(fi, &fi->f->body);
    }
  }
  call_graph(&A);
  taint_all(&A);
  Ctl none = {NULL, NULL, {0}};
  struct_block(&A, A.imain, &p->model_b, none);
  collect(&A, A.imain, &p->model_b, false, false);
  for (int f = 0; f < p->nfuncs; f++)
    if (A.fi[f].reachable) collect(&A, f, &p->funcs[f].body, false, false);
  ev_block(&A, A.imain, &p->model_b);
  dependencies(&A);
  A.a->all_continuous = !A.a->has_discrete && !A.a->has_string;
  A.a->has_guide = p->has_guide;
  if (extra) *extra = A.extra;
  return A.a;
}

IrAnalysis *ir_analyze(const IrProgram *p) { return analyze(p, NULL); }

/* The guide analysed as if it were the model block of a program of its own
   (same data block, no generated block). */
static const IrProgram *guide_as_program(const IrProgram *p) {
  IrProgram *g = gc_alloc(sizeof *g);
  *g = *p;
  g->model_b = p->guide_b;
  g->gen_b = (IrBlock){0};
  g->guide_b = (IrBlock){0};
  g->has_guide = false;
  return g;
}

IrAnalysis *ir_analyze_guide(const IrProgram *p) {
  return p->guide_b.n > 0 ? analyze(guide_as_program(p), NULL) : NULL;
}

/* ---- printing ------------------------------------------------------------------------ */

typedef struct Out {
  char *s;
  size_t n, cap;
} Out;

static void out_str(Out *o, const char *s) {
  size_t len = strlen(s);
  if (o->n + len + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (o->n + len + 1 > cap) cap *= 2;
    char *ns = gc_alloc_atomic(cap);
    if (o->n) memcpy(ns, o->s, o->n);
    o->s = ns;
    o->cap = cap;
  }
  memcpy(o->s + o->n, s, len + 1);
  o->n += len;
}

/* Rows of cells printed as aligned columns (two spaces apart, no trailing
   blanks). */
static void out_table(Out *o, int nrows, int ncols, const char **cells) {
  int w[8] = {0};
  for (int r = 0; r < nrows; r++)
    for (int c = 0; c < ncols; c++) {
      int l = (int)strlen(cells[r * ncols + c]);
      if (l > w[c]) w[c] = l;
    }
  for (int r = 0; r < nrows; r++) {
    int last = ncols - 1;
    while (last > 0 && !cells[r * ncols + last][0]) last--;
    out_str(o, "  ");
    for (int c = 0; c <= last; c++) {
      const char *s = cells[r * ncols + c];
      out_str(o, s);
      if (c < last)
        for (int k = (int)strlen(s); k < w[c] + 2; k++) out_str(o, " ");
    }
    out_str(o, "\n");
  }
}

static const char *pos_text(const IrProgram *p, SrcPos pos) {
  const char *f = pos.file ? pos.file : p->file ? p->file : "<model>";
  return gc_printf("%s:%d:%d", f, pos.line, pos.col);
}

/* The latents' and the params' tables of `ppl check`, each line of the
   headings after prefix ("guide " for the guide's). */
static void out_latents_params(Out *o, const IrProgram *p, const IrAnalysis *a,
                               const LatExtra *extra, const char *prefix,
                               const char *params_head) {
  if (a->nlatents == 0) out_str(o, gc_printf("%slatents: none\n", prefix));
  else {
    out_str(o, gc_printf("%slatents (%d):\n", prefix, a->nlatents));
    enum { NC = 6 };
    const char **cells = gc_alloc(sizeof(char *) * (size_t)(a->nlatents * NC));
    for (int i = 0; i < a->nlatents; i++) {
      const IrLatentInfo *li = &a->latents[i];
      const LatExtra *x = extra ? &extra[i] : NULL;
      const char **row = cells + i * NC;
      row[0] = li->name;
      row[1] = pos_text(p, li->pos);
      row[2] = li->kind == LK_STRING ? "string" : li->kind == LK_DISCRETE ? "discrete"
                                                                          : "continuous";
      row[3] = li->support ? li->support : "?";
      row[4] = x && x->trunc ? gc_printf("%s (%s)", li->family, x->trunc) : li->family;
      const char *shape = "";
      if (x && x->shape) shape = x->shape;
      else if (x && (x->type.ndims > 0 || x->type.base == TY_VECTOR || x->type.base == TY_ROWVEC ||
                     x->type.base == TY_MATRIX))
        shape = ty_name(x->type);
      const char *where = li->in_function && x && x->func ? gc_printf("in %s()", x->func) : "";
      const char *loop = !li->in_loop ? ""
                         : x && x->loops ? gc_printf("in loop (%s)", x->loops)
                                         : "in loop";
      /* how many scalars, when not one: "J scalars", "T - 1 scalars per call" */
      const char *count = "";
      double one;
      if (x && (shape[0] || li->in_loop) && !(sym_is_num(x->count, &one) && one == 1))
        count = gc_printf(": %s scalars%s", x->count ? x->count : "?",
                          li->in_function ? " per call" : "");
      row[5] = gc_printf("%s%s%s%s%s%s", shape, shape[0] && (where[0] || loop[0]) ? "  " : "",
                         where, where[0] && loop[0] ? ", " : "", loop, count);
    }
    out_table(o, a->nlatents, NC, cells);
  }
  if (a->nparams > 0) {
    out_str(o, gc_printf(params_head, a->nparams));
    enum { NC = 5 };
    const char **cells = gc_alloc(sizeof(char *) * (size_t)(a->nparams * NC));
    for (int i = 0; i < a->nparams; i++) {
      const IrParamInfo *pi = &a->params[i];
      const char **row = cells + i * NC;
      row[0] = pi->name;
      row[1] = pos_text(p, pi->pos);
      row[2] = pi->type;
      row[3] = pi->support;
      row[4] = pi->has_init ? "initial value given" : "initial value zero (unconstrained)";
    }
    out_table(o, a->nparams, NC, cells);
  }
}

/* "lm choices: thought (line 12), tok (line 20)": the latents drawn from a
   language model, which engine steer answers in batches. */
static void out_lm_choices(Out *o, const IrAnalysis *a) {
  if (!a->has_lm) return;
  const char *s = "";
  for (int i = 0; i < a->nlatents; i++) {
    const IrLatentInfo *l = &a->latents[i];
    if (strcmp(l->family, "lm") && strcmp(l->family, "lm_next")) continue;
    s = gc_printf("%s%s%s (line %d)", s, *s ? ", " : "", l->name, l->pos.line);
  }
  out_str(o, gc_printf("lm choices: %s\n", *s ? s : "none (observations of strings only)"));
}

char *ir_analysis_print(const IrProgram *p, const IrAnalysis *a, long unconstrained_size) {
  Out o = {0};
  out_str(&o, "");
  if (!p || !a) return o.s;
  LatExtra *extra = NULL;
  IrAnalysis *again = analyze(p, &extra);
  if (again->nlatents != a->nlatents) extra = NULL;
  if (a->fixed_structure) out_str(&o, "structure: fixed\n");
  else {
    out_str(&o, "structure: dynamic\n  reason: ");
    out_str(&o, a->dynamic_reason ? a->dynamic_reason : "unknown");
    out_str(&o, "\n");
  }
  out_latents_params(&o, p, a, extra, "", "params (%d, learnable; engine svi fits them, "
                     "the others hold them at their initial values):\n");
  if (!a->fixed_structure)
    out_str(&o, "unconstrained parameters: none (dynamic structure)\n");
  else if (unconstrained_size >= 0)
    out_str(&o, gc_printf("unconstrained parameters: %ld\n", unconstrained_size));
  else if (!a->all_continuous)
    out_str(&o, "unconstrained parameters: none (not all latents are continuous)\n");
  else {
    /* without data: the sum of the declarations' sizes, as the source says them */
    const char **terms = gc_alloc(sizeof(char *) * (size_t)(a->nlatents + 1));
    int nt = 0;
    const char *calls = ""; /* functions with latents: as many as their calls make */
    for (int i = 0; i < a->nlatents; i++) {
      if (!a->latents[i].in_function) terms[nt++] = extra ? extra[i].free : NULL;
      else if (extra && extra[i].func && !strstr(calls, gc_printf("%s()", extra[i].func)))
        calls = gc_printf("%s%s%s()", calls, *calls ? ", " : "", extra[i].func);
    }
    const char *sum = sym_sum(terms, nt);
    double v;
    const char *note = *calls ? gc_printf(" + those of each call of %s", calls) : "";
    if (!sum) out_str(&o, "unconstrained parameters: unknown until data is loaded\n");
    else if (sym_is_num(sum, &v) && !*calls)
      out_str(&o, gc_printf("unconstrained parameters: %s\n", sum));
    else
      out_str(&o, gc_printf("unconstrained parameters: %s%s (sizes from the data)\n", sum, note));
  }
  if (a->nobs == 0) out_str(&o, "observations: none\n");
  else {
    out_str(&o, gc_printf("observations (%d):\n", a->nobs));
    const char **cells = gc_alloc(sizeof(char *) * (size_t)(a->nobs * 3));
    for (int i = 0; i < a->nobs; i++) {
      const IrObsInfo *ob = &a->obs[i];
      cells[i * 3] = pos_text(p, ob->pos);
      cells[i * 3 + 1] = ob->what ? ob->what : "?";
      cells[i * 3 + 2] = gc_printf("%s%s%s", ob->in_loop ? "in loop" : "",
                                   ob->in_loop && ob->depends_on_latent_control ? ", " : "",
                                   ob->depends_on_latent_control ? "under latent-dependent control"
                                                                 : "");
    }
    out_table(&o, a->nobs, 3, cells);
  }
  if (a->interleaved_observations)
    out_str(&o, "observations interleaved with latents: yes\n");
  out_lm_choices(&o, a);
  if (p->guide_b.n > 0) {
    const IrProgram *g = guide_as_program(p);
    LatExtra *gx = NULL;
    IrAnalysis *ga = analyze(g, &gx);
    out_latents_params(&o, g, ga, gx, "guide ", "guide params (%d, fitted by engine svi):\n");
  }
  return o.s;
}

/* A node's name in the listing: the latent's name ("x (self)" when it depends
   on its earlier occurrences), or the observation and its position. */
static const char *dep_label(const IrAnalysis *a, int node) {
  if (node < a->nlatents) return a->latents[node].name;
  const IrObsInfo *o = &a->obs[node - a->nlatents];
  const char *w = o->what ? o->what : "?";
  const char *cut = strstr(w, "  vectorised");
  if (cut) w = gc_printf("%.*s", (int)(cut - w), w);
  return gc_printf("%s (%d:%d)", w, o->pos.line, o->pos.col);
}

static const char *dep_names(const IrAnalysis *a, int n, const int *l) {
  if (n == 0) return "-";
  const char *s = "";
  for (int i = 0; i < n; i++) s = gc_printf("%s%s%s", s, i ? ", " : "", dep_label(a, l[i]));
  return s;
}

char *ir_deps_print(const IrProgram *p, const IrAnalysis *a) {
  Out o = {0};
  out_str(&o, "");
  if (!p || !a) return o.s;
  int nn = a->nlatents + a->nobs;
  if (nn == 0) {
    out_str(&o, "dependencies: none (no latents or observations)\n");
    return o.s;
  }
  out_str(&o, "dependencies (static; one node per declaration):\n");
  enum { NC = 4 };
  const char **cells = gc_alloc(sizeof(char *) * (size_t)((nn + 1) * NC));
  cells[0] = "node";
  cells[1] = "parents";
  cells[2] = "children";
  cells[3] = "Markov blanket";
  bool any_self = false;
  for (int i = 0; i < nn; i++) {
    const int *l;
    const char **row = cells + (i + 1) * NC;
    any_self = any_self || ir_dep_self(a, i);
    row[0] = ir_dep_self(a, i) ? gc_printf("%s (self)", dep_label(a, i)) : dep_label(a, i);
    int n = ir_dep_parents(a, i, &l);
    row[1] = dep_names(a, n, l);
    n = ir_dep_children(a, i, &l);
    row[2] = i < a->nlatents ? dep_names(a, n, l) : "";
    n = ir_dep_blanket(a, i, &l);
    row[3] = i < a->nlatents ? dep_names(a, n, l) : "";
  }
  out_table(&o, nn + 1, NC, cells);
  if (any_self)
    out_str(&o, "(self): depends on its own earlier occurrences (x[t] on x[t-1])\n");
  return o.s;
}

/* ---- the latent behind a parameter ---- */

/* The instruction at pos with a distribution (a `~` or a latent's
   declaration), searched through nested blocks. */
static const IrInstr *dist_at(const IrBlock *b, SrcPos pos) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if ((in->op == IR_OBSERVE || in->op == IR_SAMPLE) && in->dist.fam &&
        in->pos.line == pos.line && in->pos.col == pos.col)
      return in;
    const IrBlock *sub[4] = {&in->then_b, &in->else_b, &in->body, &in->cond_b};
    for (int k = 0; k < 4; k++) {
      const IrInstr *r = sub[k]->n ? dist_at(sub[k], pos) : NULL;
      if (r) return r;
    }
  }
  return NULL;
}

/* The instruction writing register r (the first met), through nested blocks. */
static const IrInstr *writer_of(const IrBlock *b, int r) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->dst == r && in->op != IR_STORE) return in;
    const IrBlock *sub[4] = {&in->then_b, &in->else_b, &in->body, &in->cond_b};
    for (int k = 0; k < 4; k++) {
      const IrInstr *w = sub[k]->n ? writer_of(sub[k], r) : NULL;
      if (w) return w;
    }
  }
  return NULL;
}

const char *ir_param_latent(const IrProgram *p, SrcPos pos, const char *pname) {
  const IrInstr *in = pos.line > 0 ? dist_at(&p->model_b, pos) : NULL;
  if (!in) return NULL;
  const DistFamily *f = in->dist.fam;
  int r = -1;
  for (int k = 0; k < f->nparams && k < in->dist.nparams; k++)
    if (f->pnames[k] && !strcmp(f->pnames[k], pname)) r = in->dist.params[k];
  /* the latent itself, one element of it, or a copy: a few steps back */
  for (int hops = 0; r >= 0 && hops < 4; hops++) {
    const IrInstr *w = writer_of(&p->model_b, r);
    if (!w) return NULL;
    /* a latent with a lower bound cannot go negative: its rejections are
       values that underflowed to the bound, not a constraint left out */
    if (w->op == IR_SAMPLE)
      return w->con.kind == CON_NONE || w->con.kind == CON_UPPER ? w->name : NULL;
    if (w->op != IR_INDEX && w->op != IR_MOVE) return NULL;
    r = w->args[0];
  }
  return NULL;
}
