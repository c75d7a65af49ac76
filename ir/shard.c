/* shard.c — finds the statements of a model that sum over independent data
 * rows (shard.h), for the log density split between MPI ranks.
 *
 * The analysis is deliberately narrow: a register is "row data" (a data
 * variable whose first size is N) or "row valued" (computed from row data
 * row by row, outside loops), and every instruction of the model block that
 * reads N, row data or a row-valued register must be one of the few forms
 * whose meaning does not change when the data are cut to a block of rows.
 * Anything else (a sum over the rows, a latent per row, a row read at n + 1)
 * leaves the program unsharded, with the place that stopped it. */
#include "shard.h"

#include <string.h>

#include "../stdlib/builtins.h"
#include "../stdlib/dist.h"

typedef struct Sh {
  const IrProgram *p;
  int N;          /* the size register */
  bool *rowdata;  /* per register: data whose first size is N */
  bool *rowval;   /* per register: computed from the rows row by row */
  const char *why;
} Sh;

static const char *sh_at(const Sh *S, SrcPos pos) {
  if (pos.line <= 0) return "";
  return gc_printf("%s:%d:%d: ", pos.file ? pos.file : S->p->file, pos.line, pos.col);
}

static bool sh_fail(Sh *S, SrcPos pos, const char *what) {
  if (!S->why) S->why = gc_printf("%s%s", sh_at(S, pos), what);
  return false;
}

static const char *sh_name(const Sh *S, int r) {
  const char *n = r >= 0 && r < S->p->main.nregs ? S->p->main.regnames[r] : NULL;
  return n ? n : "a row expression";
}

static bool sh_block_reads(const IrBlock *b, int r);

/* Does the instruction (or one nested in it) read register r? */
static bool sh_reads(const IrInstr *in, int r) {
  return ir_instr_reads_here(in, r) || sh_block_reads(&in->cond_b, r) || sh_block_reads(&in->then_b, r) ||
         sh_block_reads(&in->else_b, r) || sh_block_reads(&in->body, r);
}

static bool sh_block_reads(const IrBlock *b, int r) {
  for (int i = 0; i < b->n; i++)
    if (sh_reads(&b->ins[i], r)) return true;
  return false;
}

static void sh_writes(const IrBlock *b, bool *w) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->dst >= 0) w[in->dst] = true;
    if (in->op == IR_FOR) w[in->var] = true;
    sh_writes(&in->then_b, w);
    sh_writes(&in->else_b, w);
    sh_writes(&in->body, w);
    sh_writes(&in->cond_b, w);
  }
}

static bool sh_row(const Sh *S, int r) { return r >= 0 && (S->rowdata[r] || S->rowval[r]); }

/* Does the instruction read N or anything row-indexed? */
static bool sh_touches(const Sh *S, const IrInstr *in) {
  if (sh_reads(in, S->N)) return true;
  for (int r = 0; r < S->p->main.nregs; r++)
    if (sh_row(S, r) && sh_reads(in, r)) return true;
  return false;
}

static bool sh_scalar(const Sh *S, int r) {
  Type t = S->p->main.regtypes[r];
  return ty_is_scalar_num(t);
}

/* ---- a loop over the rows ---------------------------------------------- */

/* Reads of n, N and the rows inside the loop body: only x[n, ...] and
   y[n] ~ ..., with no latent drawn and no call that could draw one. */
static bool sh_body(Sh *S, const IrBlock *b, int n) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_SAMPLE || in->op == IR_PARAM)
      return sh_fail(S, in->pos, "a latent is drawn in the loop over the rows");
    if (in->op == IR_CALL && S->p->funcs[in->callee].stochastic)
      return sh_fail(S, in->pos, "the loop over the rows calls a function with random choices");
    if (ir_instr_reads_here(in, S->N))
      return sh_fail(S, in->pos, gc_printf("'%s' is read inside the loop over its rows",
                                           S->p->main.regnames[S->N]));
    bool at_row = in->nidx >= 1 && in->idx[0].kind == IX_SINGLE && in->idx[0].lo == n;
    bool row_index = (in->op == IR_INDEX && at_row && sh_row(S, in->args[0])) ||
                     (in->op == IR_OBSERVE && at_row && sh_row(S, in->var));
    for (int r = 0; r < S->p->main.nregs; r++) {
      if (!(r == n || sh_row(S, r)) || !ir_instr_reads_here(in, r)) continue;
      if (row_index) {
        /* x[n] and y[n] ~: n only as the first index, the rows only indexed */
        bool ok = true;
        for (int k = 0; k < in->nargs && ok; k++) ok = in->args[k] != n && (k == 0 || !sh_row(S, in->args[k]));
        for (int k = 1; k < in->nidx && ok; k++) ok = in->idx[k].lo != n && in->idx[k].hi != n &&
                                                      !sh_row(S, in->idx[k].lo) && !sh_row(S, in->idx[k].hi);
        for (int k = 0; k < in->dist.nparams && ok; k++) ok = in->dist.params[k] != n && !sh_row(S, in->dist.params[k]);
        if (ok) continue;
      }
      return sh_fail(S, in->pos, r == n ? gc_printf("the row index '%s' is used other than to pick row %s",
                                                    S->p->main.regnames[n] ? S->p->main.regnames[n] : "n",
                                                    S->p->main.regnames[n] ? S->p->main.regnames[n] : "n")
                                        : gc_printf("'%s' is read other than at the loop's row", sh_name(S, r)));
    }
    if (in->op == IR_IF && (!sh_body(S, &in->then_b, n) || !sh_body(S, &in->else_b, n))) return false;
    if (in->op == IR_FOR && (!sh_body(S, &in->body, n))) return false;
    if (in->op == IR_WHILE && (!sh_body(S, &in->cond_b, n) || !sh_body(S, &in->body, n))) return false;
  }
  return true;
}

/* Does the body contain an observation or a factor (else nothing to split)? */
static bool sh_scores(const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->op == IR_OBSERVE || in->op == IR_FACTOR || in->op == IR_CONDITION || in->op == IR_CALL)
      return true;
    if (sh_scores(&in->then_b) || sh_scores(&in->else_b) || sh_scores(&in->body)) return true;
  }
  return false;
}

static const IrInstr *sh_def(const IrBlock *b, int upto, int r) {
  const IrInstr *d = NULL;
  for (int i = 0; i < upto; i++)
    if (b->ins[i].dst == r) d = &b->ins[i];
  return d;
}

static bool sh_is_one(const Sh *S, int i, int r) {
  const IrInstr *d = sh_def(&S->p->model_b, i, r);
  if (!d) d = sh_def(&S->p->data_b, S->p->data_b.n, r);
  return d && d->op == IR_CONST && d->imm.k == V_INT && d->imm.i == 1;
}

/* `for (n in 1:N)` at model_b[i]: its body is row by row, and what it writes
   is its own (nothing outside the loop reads or writes it: no sum carried
   from row to row). */
static bool sh_loop(Sh *S, int i) {
  const IrInstr *in = &S->p->model_b.ins[i];
  if (!sh_is_one(S, i, in->args[0]))
    return sh_fail(S, in->pos, gc_printf("a loop to '%s' that does not start at 1",
                                         S->p->main.regnames[S->N]));
  if (!sh_body(S, &in->body, in->var)) return false;
  int nr = S->p->main.nregs;
  bool *w = gc_alloc_atomic((size_t)nr + 1);
  sh_writes(&in->body, w);
  w[in->var] = true;
  const IrProgram *p = S->p;
  for (int r = 0; r < nr; r++) {
    if (!w[r]) continue;
    bool outside = sh_block_reads(&p->data_b, r) || sh_block_reads(&p->gen_b, r);
    for (int k = 0; k < p->model_b.n && !outside; k++) {
      if (k == i) continue;
      const IrInstr *o = &p->model_b.ins[k];
      bool *wo = gc_alloc_atomic((size_t)nr + 1);
      IrBlock one = {1, (IrInstr *)o};
      sh_writes(&one, wo);
      outside = sh_reads(o, r) || wo[r];
    }
    if (outside)
      return sh_fail(S, in->pos, gc_printf("the loop over the rows carries '%s' from row to row",
                                           sh_name(S, r)));
  }
  return true;
}

/* ---- vectorised statements ---------------------------------------------- */

/* elementwise functions of one argument: a row's result is its row's */
static bool sh_elementwise(const char *name) {
  static const char *const fs[] = {"exp", "log", "log1p", "expm1", "inv_logit", "logit",
                                   "log_inv_logit", "log1m_inv_logit", "sqrt", "square", "inv",
                                   "fabs", "abs", "tanh", "Phi", "Phi_approx", "inv_cloglog",
                                   "log1m", "lgamma", "sin", "cos", "exp2", "log2", "cbrt", NULL};
  for (int k = 0; fs[k]; k++)
    if (!strcmp(fs[k], name)) return true;
  return false;
}

/* An instruction outside loops that reads the rows: one of the row-by-row
   forms (its dst becomes row valued), or the sharded observation. */
static bool sh_vector(Sh *S, int i, bool *sharded) {
  const IrInstr *in = &S->p->model_b.ins[i];
  *sharded = false;
  switch (in->op) {
  case IR_DECL:
    if (in->nsizes >= 1 && in->sizes[0] == S->N) {
      for (int k = 1; k < in->nsizes; k++)
        if (in->sizes[k] == S->N) return sh_fail(S, in->pos, "a declaration with N x N rows");
      S->rowval[in->dst] = true;
      return true;
    }
    break;
  case IR_MOVE:
    if (sh_row(S, in->args[0])) {
      S->rowval[in->dst] = true;
      return true;
    }
    break;
  case IR_UNARY:
    if (in->sub == OP_NEG && sh_row(S, in->args[0])) {
      S->rowval[in->dst] = true;
      return true;
    }
    break;
  case IR_BINARY: {
    int a = in->args[0], b = in->args[1];
    bool ra = sh_row(S, a), rb = sh_row(S, b);
    bool ok = false;
    switch (in->sub) {
    case OP_ADD: case OP_SUB: case OP_EMUL: case OP_EDIV:
      ok = (ra && rb) || (ra && sh_scalar(S, b)) || (rb && sh_scalar(S, a));
      break;
    case OP_DIV:
      ok = ra && sh_scalar(S, b);
      break;
    case OP_MUL: /* rows times anything keeps the rows: x * beta */
      ok = (ra && !rb && b != S->N) || (rb && sh_scalar(S, a));
      break;
    default:
      break;
    }
    if (ok) {
      S->rowval[in->dst] = true;
      return true;
    }
    break;
  }
  case IR_BUILTIN:
    if (in->nargs == 1 && in->builtin && sh_row(S, in->args[0]) && in->dst >= 0 &&
        sh_elementwise(in->builtin->name)) {
      S->rowval[in->dst] = true;
      return true;
    }
    break;
  case IR_OBSERVE: {
    const DistFamily *f = in->dist.fam;
    if (!f || !f->lpdf1)
      return sh_fail(S, in->pos, gc_printf("%s is not a scalar family: its rows are not split",
                                           f ? f->name : "the family"));
    if (!sh_row(S, in->args[0]))
      return sh_fail(S, in->pos, "an observation whose parameters have rows but its value has none");
    for (int k = 0; k < in->dist.nparams; k++) {
      int r = in->dist.params[k];
      if (!sh_row(S, r) && !sh_scalar(S, r))
        return sh_fail(S, in->pos, gc_printf("parameter %d of %s is neither per row nor a scalar",
                                             k + 1, f->name));
    }
    *sharded = true;
    return true;
  }
  default:
    break;
  }
  return sh_fail(S, in->pos, gc_printf("'%s' is used other than row by row",
                                       sh_reads(in, S->N) ? S->p->main.regnames[S->N]
                                                          : sh_name(S, in->args ? in->args[0] : -1)));
}

/* ---- the plan ------------------------------------------------------------- */

static bool sh_try(Sh *S, IrShard *out) {
  const IrProgram *p = S->p;
  int nr = p->main.nregs;
  S->rowdata = gc_alloc_atomic((size_t)nr + 1);
  S->rowval = gc_alloc_atomic((size_t)nr + 1);
  const char *name = p->main.regnames[S->N];
  for (int i = 0; i < p->data_b.n; i++) {
    const IrInstr *in = &p->data_b.ins[i];
    if (in->op == IR_DATA && in->nsizes >= 1 && in->sizes[0] == S->N) S->rowdata[in->dst] = true;
  }
  /* the data block declares the rows and computes nothing from them */
  for (int i = 0; i < p->data_b.n; i++) {
    const IrInstr *in = &p->data_b.ins[i];
    if (in->op == IR_DATA && (S->rowdata[in->dst] || in->dst == S->N)) {
      for (int k = 1; k < in->nsizes; k++)
        if (in->sizes[k] == S->N) return sh_fail(S, in->pos, gc_printf("'%s' is not only a first size", name));
      continue;
    }
    if (sh_touches(S, in))
      return sh_fail(S, in->pos, gc_printf("the data block computes with the rows of '%s'", name));
  }
  out->nstmts = 0;
  out->stmts = gc_alloc_atomic(sizeof(int) * (size_t)(p->model_b.n + 1));
  out->pos = gc_alloc(sizeof(SrcPos) * (size_t)(p->model_b.n + 1));
  out->what = gc_alloc(sizeof(char *) * (size_t)(p->model_b.n + 1));
  for (int i = 0; i < p->model_b.n; i++) {
    const IrInstr *in = &p->model_b.ins[i];
    if (in->op == IR_SAMPLE && sh_reads(in, S->N))
      return sh_fail(S, in->pos, gc_printf("a latent has '%s' elements", name));
    if (!sh_touches(S, in)) {
      if (in->dst >= 0 && S->rowval[in->dst])
        return sh_fail(S, in->pos, gc_printf("'%s' is given a value that is not per row", sh_name(S, in->dst)));
      continue;
    }
    bool sharded = false;
    if (in->op == IR_FOR && in->nargs == 2 && in->args[1] == S->N && in->args[0] != S->N) {
      if (!sh_loop(S, i)) return false;
      sharded = sh_scores(&in->body);
      if (sharded) {
        const char *v = p->main.regnames[in->var];
        out->what[out->nstmts] = gc_printf("for (%s in 1:%s)", v ? v : "n", name);
      }
    } else if (!sh_vector(S, i, &sharded)) {
      return false;
    } else if (sharded) {
      out->what[out->nstmts] = gc_printf("~ %s", in->dist.fam->name);
    }
    if (sharded) {
      out->pos[out->nstmts] = in->pos;
      out->stmts[out->nstmts++] = i;
    }
  }
  if (out->nstmts == 0) return sh_fail(S, (SrcPos){0}, gc_printf("no statement sums over the rows of '%s'", name));
  out->size_reg = S->N;
  out->size_name = name;
  out->data = gc_alloc(sizeof(char *) * (size_t)(nr + 1));
  out->data_reg = gc_alloc_atomic(sizeof(int) * (size_t)(nr + 1));
  for (int i = 0; i < p->data_b.n; i++) {
    const IrInstr *in = &p->data_b.ins[i];
    if (in->op == IR_DATA && S->rowdata[in->dst]) {
      out->data_reg[out->ndata] = in->dst;
      out->data[out->ndata++] = in->name;
    }
  }
  return true;
}

IrShard *ir_shard_plan(const IrProgram *p) {
  IrShard *out = gc_alloc(sizeof *out);
  const char *first = NULL;
  int nr = p->main.nregs;
  bool *tried = gc_alloc_atomic((size_t)nr + 1);
  for (int i = 0; i < p->data_b.n; i++) {
    const IrInstr *in = &p->data_b.ins[i];
    if (in->op != IR_DATA || in->nsizes < 1) continue;
    int N = in->sizes[0];
    const IrInstr *d = sh_def(&p->data_b, i, N);
    if (tried[N] || !d || d->op != IR_DATA || !ty_eq(p->main.regtypes[N], ty_make(TY_INT, 0))) continue;
    tried[N] = true;
    Sh S = {.p = p, .N = N};
    IrShard cand = {0};
    if (sh_try(&S, &cand)) {
      *out = cand;
      return out;
    }
    if (!first) first = S.why;
  }
  out->why = first ? first : "no data variable has a data size as its first size";
  out->size_reg = -1;
  return out;
}

IrProgram *ir_shard_rest(const IrProgram *p, const IrShard *s) {
  IrProgram *q = gc_alloc(sizeof *q);
  *q = *p;
  IrInstr *ins = gc_alloc(sizeof(IrInstr) * (size_t)(p->model_b.n + 1));
  int n = 0;
  for (int i = 0, k = 0; i < p->model_b.n; i++) {
    if (k < s->nstmts && s->stmts[k] == i) {
      k++;
      continue;
    }
    ins[n++] = p->model_b.ins[i];
  }
  q->model_b = (IrBlock){n, ins};
  return q;
}

char *ir_shard_print(const IrShard *s) {
  if (s->why) return gc_printf("sharded (MPI): none: %s\n", s->why);
  char *t = gc_printf("sharded (MPI): the rows of %s (", s->size_name);
  for (int k = 0; k < s->ndata; k++) t = gc_printf("%s%s%s", t, k ? ", " : "", s->data[k]);
  t = gc_printf("%s) are split between the ranks in", t);
  for (int k = 0; k < s->nstmts; k++)
    t = gc_printf("%s%s %d:%d %s", t, k ? "," : "", s->pos[k].line, s->pos[k].col, s->what[k]);
  return gc_printf("%s\n", t);
}
