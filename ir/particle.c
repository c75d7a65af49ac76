/* particle.c — compiled particle steps (see particle.h): the classification
 * of main's registers into uniform and varying ones, the checks that make a
 * program qualify, the per-step recording of varying instructions and their
 * loops over the particles' columns; for resample-move, the choices kept per
 * particle and the moved replays of a whole population (pc_replay_moved). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../stdlib/dist_kernel.h"
#include "interp_ops.h"
#include "particle.h"

/* The column loops are written for the compiler to vectorise; GCC's -O2 cost
 * model ("very cheap") vectorises no loop whose count is unknown.  Packed
 * SSE2/AVX arithmetic is the same IEEE operation per lane, and x86-64 has no
 * FMA to contract into by default, so the bits stay the interpreter's. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#define PC_MAXOPND 12  /* registers one instruction may read */
#define PC_MAXDEPTH 32 /* nested blocks */
#define PC_CHUNK 256   /* particles per pass over the segment's loops */

enum { CK_REAL, CK_INT, CK_BOOL, CK_VAL }; /* column kinds */

struct PcProg {
  const Interp *in;
  const IrProgram *p;
  int nregs;
  int *col;       /* per register: its column, or -1 (uniform) */
  int ncols;
  uint8_t *ckind; /* per column */
  int *creg;      /* per column: its register */
};

/* An operand of a recorded instruction: a column, or the uniform value the
 * register held when it was recorded. */
typedef struct PcOpnd {
  int reg, col;
  Value u;
} PcOpnd;

enum { PK_FILL, PK_COPY, PK_ARITH, PK_INDEX1, PK_GENERIC, PK_SAMPLE, PK_OBSERVE, PK_FACTOR,
       PK_KILL };

typedef struct PcOp {
  uint8_t kind;
  bool fast;           /* PK_SAMPLE / PK_OBSERVE: a scalar family on scalars */
  const IrInstr *ins;
  int dst;             /* column written, or -1 */
  int n;
  PcOpnd o[PC_MAXOPND];
  int path;            /* PK_SAMPLE: its history entry, or -1 (an output register) */
  const char *addr;    /* PK_SAMPLE */
  double lo, hi;       /* PK_SAMPLE: declared bounds */
  int nsizes;
  int sizes[8];
  const char *msg;     /* PK_KILL */
  uint8_t replay;      /* PK_SAMPLE: 0 drawn, 1 rval in particle 0, 2 rval in every particle */
  Value rval;
  int seq;             /* PK_SAMPLE: the choice's number in run order */
} PcOp;

/* The history of one nested latent, a generation of the particles'
 * genealogy: the value of each of its n slots and the slot of the previous
 * entry that the same lineage holds (par; -1 in the first entry).  Drawn,
 * it has one slot per particle; pc_compact later drops the slots no living
 * particle descends from (path storage as in Jacob, Murray & Rubenthaler
 * 2015: the histories of a long series mostly coalesce).  Between two
 * resamplings a lineage keeps its slot number, so an entry drawn then has no
 * parent array (par NULL: slot s's parent is slot s, or none in the first
 * entry); only the draws after a resampling and compacted entries carry one.
 * A drawn entry's arrays are the run's N-slot buffers, recycled by the
 * compaction that drops them, so a long run does not keep taking fresh
 * pages from the collector. */
typedef struct PcPath {
  const char *addr;
  bool isint;
  bool drawn;  /* v (and par) are N-slot buffers of the run's free list */
  int n;
  double *v;
  int *par;
} PcPath;

/* The slot of entry e - 1 that slot s of entry e descends from. */
static inline int path_parent(const PcPath *pp, int e, int s) {
  return pp->par ? pp->par[s] : e ? s : -1;
}

typedef struct PcFrame {
  const IrBlock *b;
  int i;
  const IrInstr *loop; /* IR_FOR */
  int64_t cur, hi;
} PcFrame;

struct PcRun {
  const PcProg *pc;
  int N, workers;
  void **cols, **spare; /* per column: N values of its kind */
  Rng *rng;
  uint8_t *dead, *dead2;
  double *logprior, *loglik, *tmp; /* tmp: pc_resample's scratch column */
  double *lpath;        /* per particle: sum over its segments of (log prior + log
                           likelihood of the segment), the interpreted pgibbs
                           particle's lp in its order of additions */
  /* a continuation run (pc_run_continue): no histories, and a latent with no
     replayed value or a replayed value outside its support scores -inf */
  bool cont;
  uint64_t *root, *root2;
  /* the uniform state: main's registers (varying ones unused) */
  Value *U;
  bool *assigned;       /* varying registers written at least once */
  PcFrame fr[PC_MAXDEPTH];
  int depth;
  /* the recorded segment */
  PcOp *ops;
  int nops, opcap;
  bool seg_draws;       /* the segment draws a latent */
  bool rooted;          /* every living particle has drawn (has a root) */
  uint64_t seg_id;      /* root id of the segment's choices, minus the particle index */
  long segments;
  /* histories */
  PcPath *path;
  int npath, pathcap;
  int *cur, *cur2;      /* per particle: its slot in the newest entry */
  bool cur_id;          /* cur[j] == j for every particle */
  long stored, live;    /* slots held; slots held after the last compaction */
  void **spare_bufs;    /* N-slot history buffers (8 bytes a slot) free for reuse */
  int nspare_bufs;
  int *mark;            /* pc_compact's scratch: a slot number per slot held */
  long markcap;
  struct PcWork *work;  /* per worker */
  PcReplayFn replay;    /* conditioning (pc_set_replay), or NULL */
  void *replay_ctx;
  /* every particle's choices in run order (pc_keep_choices), for
     resample-move: choice k's values and log densities, N each */
  bool keep;
  int nseq, chcap;
  double **chx, **chl;
  PcChoice *chm;        /* [nseq]: what each choice is */
  double *chspare;      /* pc_resample's scratch for them */
  /* a moved replay (pc_replay_moved) */
  const double *const *rx;
  const uint8_t *rblk;
  const int *rtarget;
  PcProposeFn propose;
  void *propose_ctx;
  int *nfresh;
  double *lq;
  bool flat;            /* logprior a running sum over choices (a trace's) */
  double ev_scale;      /* the events' log densities count ev_scale times */
};

/* A worker's scratch: a register file for generic instructions, and the
 * columns of one chunk for the families' kernels. */
typedef struct PcWork {
  Value *R;
  double kr[DK_MAXREG][PC_CHUNK]; /* kernel registers that vary */
  double p[4][PC_CHUNK];          /* parameters read from int columns */
  double x[PC_CHUNK], lp[PC_CHUNK];
  double seg[PC_CHUNK];           /* the chunk's log prior of this segment */
  Rng saved[PC_CHUNK];
  uint8_t ok[PC_CHUNK];
  long kills;                     /* particles this worker has killed */
} PcWork;

/* ---- registers an instruction reads ---- */

static int ins_reads(const IrInstr *ins, int *r) {
  int n = 0;
#define ADD(x)                                   \
  do {                                           \
    if ((x) >= 0 && n < PC_MAXOPND + 1) r[n++] = (x); \
  } while (0)
  for (int k = 0; k < ins->nargs; k++) ADD(ins->args[k]);
  for (int k = 0; k < ins->nidx; k++) {
    ADD(ins->idx[k].lo);
    if (ins->idx[k].kind == IX_RANGE) ADD(ins->idx[k].hi);
  }
  if (ins->op == IR_SAMPLE || ins->op == IR_OBSERVE)
    for (int k = 0; k < ins->dist.nparams; k++) ADD(ins->dist.params[k]);
  if (ins->op == IR_SAMPLE || ins->op == IR_DECL) {
    for (int k = 0; k < ins->nsizes; k++) ADD(ins->sizes[k]);
    ADD(ins->con.lower);
    ADD(ins->con.upper);
  }
  if (ins->op == IR_STORE) ADD(ins->dst); /* a store updates its register */
#undef ADD
  return n;
}

/* ---- classification ---- */

static bool pc_varies(const bool *var, const IrInstr *ins) {
  int r[PC_MAXOPND + 1];
  int n = ins_reads(ins, r);
  for (int k = 0; k < n; k++)
    if (var[r[k]]) return true;
  return false;
}

/* One pass over b: a register written from a varying one varies; returns
 * whether anything changed. */
static bool pc_classify(const IrBlock *b, bool *var) {
  bool changed = false;
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    if (ins->dst >= 0 && !var[ins->dst] && (ins->op == IR_SAMPLE || pc_varies(var, ins))) {
      var[ins->dst] = true;
      changed = true;
    }
    changed |= pc_classify(&ins->then_b, var);
    changed |= pc_classify(&ins->else_b, var);
    changed |= pc_classify(&ins->body, var);
    changed |= pc_classify(&ins->cond_b, var);
  }
  return changed;
}

static const char *pc_at(const IrProgram *p, SrcPos pos, const char *what) {
  if (pos.line > 0) return gc_printf("%s:%d:%d: %s", p->file ? p->file : "model", pos.line, pos.col, what);
  return what;
}

static bool pc_scalar(Type t) {
  return t.ndims == 0 && (t.base == TY_REAL || t.base == TY_INT || t.base == TY_BOOL);
}

/* Does every instruction of b qualify?  *why otherwise. */
static bool pc_check(const IrProgram *p, const IrBlock *b, const bool *var, const char **names,
                     int *nnames, int depth, const char **why) {
  const Type *rt = p->main.regtypes;
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    int r[PC_MAXOPND + 1];
    if (ins_reads(ins, r) > PC_MAXOPND) {
      *why = pc_at(p, ins->pos, "an instruction with too many operands");
      return false;
    }
    switch (ins->op) {
    case IR_CONST: case IR_MOVE: case IR_UNARY: case IR_BINARY: case IR_INDEX: case IR_DECL:
      break;
    case IR_BUILTIN:
      if (ins->builtin->uses_rng) {
        *why = pc_at(p, ins->pos, gc_printf("%s in the model block (its stream is not a particle's)",
                                            ins->builtin->name));
        return false;
      }
      if (ins->dst < 0) {
        *why = pc_at(p, ins->pos, gc_printf("call of %s without a result", ins->builtin->name));
        return false;
      }
      if (builtin_host(ins->builtin)) {
        *why = pc_at(p, ins->pos, "a host function");
        return false;
      }
      break;
    case IR_STORE:
      if (var[ins->dst]) {
        *why = pc_at(p, ins->pos, "an element store into a latent-dependent container");
        return false;
      }
      break;
    case IR_ARRAY: case IR_ROWVEC:
      if (var[ins->dst]) {
        *why = pc_at(p, ins->pos, "a latent-dependent container literal");
        return false;
      }
      break;
    case IR_SAMPLE: {
      const DistFamily *f = ins->dist.fam;
      if (f->ctx || f->draw_weight_ctx || f->improper) {
        *why = pc_at(p, ins->pos, gc_printf("latent '%s' of family %s", ins->name, f->name));
        return false;
      }
      if (!pc_scalar(rt[ins->dst])) {
        *why = pc_at(p, ins->pos, gc_printf("latent '%s' is a container", ins->name));
        return false;
      }
      for (int k = 0; k < ins->nsizes; k++)
        if (var[ins->sizes[k]]) goto sizes;
      if ((ins->con.lower >= 0 && var[ins->con.lower]) || (ins->con.upper >= 0 && var[ins->con.upper])) {
      sizes:
        *why = pc_at(p, ins->pos, gc_printf("latent '%s' has latent-dependent bounds or sizes", ins->name));
        return false;
      }
      if (*nnames >= 4096) {
        *why = "too many latent declarations";
        return false;
      }
      for (int k = 0; k < *nnames; k++)
        if (!strcmp(names[k], ins->name)) {
          *why = pc_at(p, ins->pos, gc_printf("latent '%s' is declared twice (repeated addresses)", ins->name));
          return false;
        }
      names[(*nnames)++] = ins->name;
      break;
    }
    case IR_OBSERVE: {
      const DistFamily *f = ins->dist.fam;
      if (f->ctx) {
        *why = pc_at(p, ins->pos, gc_printf("an observation of family %s", f->name));
        return false;
      }
      break;
    }
    case IR_FACTOR: case IR_CONDITION:
      break;
    case IR_IF:
      if (var[ins->args[0]]) {
        *why = pc_at(p, ins->pos, "branch on a latent-dependent condition");
        return false;
      }
      if (depth + 1 >= PC_MAXDEPTH) goto deep;
      if (!pc_check(p, &ins->then_b, var, names, nnames, depth + 1, why) ||
          !pc_check(p, &ins->else_b, var, names, nnames, depth + 1, why))
        return false;
      break;
    case IR_FOR:
      if (var[ins->args[0]] || var[ins->args[1]]) {
        *why = pc_at(p, ins->pos, "loop bounds depend on a latent");
        return false;
      }
      if (ins->nargs == 3) {
        *why = pc_at(p, ins->pos, "a plate with a batch size");
        return false;
      }
      if (depth + 1 >= PC_MAXDEPTH) {
      deep:
        *why = pc_at(p, ins->pos, "blocks nested too deep");
        return false;
      }
      if (!pc_check(p, &ins->body, var, names, nnames, depth + 1, why)) return false;
      break;
    case IR_WHILE: *why = pc_at(p, ins->pos, "a while loop"); return false;
    case IR_BREAK: case IR_CONTINUE: *why = pc_at(p, ins->pos, "break or continue"); return false;
    case IR_CALL: *why = pc_at(p, ins->pos, "a call of a user function"); return false;
    case IR_PRINT: *why = pc_at(p, ins->pos, "print in the model block"); return false;
    case IR_REJECT: *why = pc_at(p, ins->pos, "reject in the model block"); return false;
    default: *why = pc_at(p, ins->pos, "an instruction that is not compiled for particles"); return false;
    }
    if (ins->dst >= 0 && rt[ins->dst].base == TY_STRING) {
      *why = pc_at(p, ins->pos, "a string value");
      return false;
    }
  }
  return true;
}

PcProg *pc_compile(const Interp *in, const char **why) {
  const IrProgram *p = interp_program(in);
  *why = NULL;
  if (p->gen_b.n > 0) {
    *why = "a generated block (its draws replay the interpreter's traces)";
    return NULL;
  }
  if (interp_simulated_count(in) > 0) {
    *why = "simulated data";
    return NULL;
  }
  int nregs = p->main.nregs;
  bool *var = gc_alloc_atomic(sizeof(bool) * (size_t)(nregs + 1));
  memset(var, 0, sizeof(bool) * (size_t)(nregs + 1));
  while (pc_classify(&p->model_b, var)) {
  }
  const char **names = gc_alloc(sizeof(char *) * 4096);
  int nnames = 0;
  if (!pc_check(p, &p->model_b, var, names, &nnames, 0, why)) return NULL;
  if (nnames == 0) {
    *why = "no latents";
    return NULL;
  }
  PcProg *pc = gc_alloc(sizeof(PcProg));
  pc->in = in;
  pc->p = p;
  pc->nregs = nregs;
  pc->col = gc_alloc_atomic(sizeof(int) * (size_t)(nregs + 1));
  pc->ckind = gc_alloc_atomic((size_t)nregs + 1);
  pc->creg = gc_alloc_atomic(sizeof(int) * (size_t)(nregs + 1));
  for (int r = 0; r < nregs; r++) {
    pc->col[r] = -1;
    if (!var[r]) continue;
    Type t = p->main.regtypes[r];
    int c = pc->ncols++;
    pc->col[r] = c;
    pc->creg[c] = r;
    pc->ckind[c] = !pc_scalar(t) ? CK_VAL : t.base == TY_REAL ? CK_REAL
                   : t.base == TY_INT ? CK_INT : CK_BOOL;
  }
  return pc;
}

int pc_ncolumns(const PcProg *pc) { return pc->ncols; }

/* ---- the population ---- */

static size_t ck_size(int k) { return k == CK_VAL ? sizeof(Value) : k == CK_REAL ? sizeof(double) : sizeof(int64_t); }

static void *col_new(int kind, int N) {
  size_t sz = ck_size(kind) * (size_t)N;
  void *c = kind == CK_VAL ? gc_alloc(sz) : gc_alloc_atomic(sz);
  memset(c, 0, sz);
  return c;
}

/* History buffers of N slots (a double or an int each). */
#define PC_SPARE_BUFS 64
static void *path_buf(PcRun *r) {
  if (r->nspare_bufs > 0) return r->spare_bufs[--r->nspare_bufs];
  return gc_alloc_atomic(sizeof(double) * (size_t)r->N);
}

static void path_free_buf(PcRun *r, void *b) {
  if (b && r->nspare_bufs < PC_SPARE_BUFS) r->spare_bufs[r->nspare_bufs++] = b;
}

/* An entry's buffers back to the free list (the entry is being replaced). */
static void path_release(PcRun *r, PcPath *pp) {
  if (!pp->drawn) return;
  path_free_buf(r, pp->v);
  path_free_buf(r, pp->par);
  pp->drawn = false;
}

PcRun *pc_run_new(const PcProg *pc, int N, int workers) {
  PcRun *r = gc_alloc(sizeof(PcRun));
  r->pc = pc;
  r->N = N;
  r->workers = workers < 1 ? 1 : workers;
  r->cols = gc_alloc(sizeof(void *) * (size_t)(pc->ncols + 1));
  r->spare = gc_alloc(sizeof(void *) * (size_t)(pc->ncols + 1));
  for (int c = 0; c < pc->ncols; c++) {
    r->cols[c] = col_new(pc->ckind[c], N);
    r->spare[c] = col_new(pc->ckind[c], N);
  }
  r->rng = gc_alloc_atomic(sizeof(Rng) * (size_t)N);
  r->dead = gc_alloc_atomic((size_t)N);
  r->dead2 = gc_alloc_atomic((size_t)N);
  r->cur = gc_alloc_atomic(sizeof(int) * (size_t)N);
  r->cur2 = gc_alloc_atomic(sizeof(int) * (size_t)N);
  r->spare_bufs = gc_alloc(sizeof(void *) * PC_SPARE_BUFS);
  r->root2 = gc_alloc_atomic(sizeof(uint64_t) * (size_t)N);
  r->logprior = gc_alloc_atomic(sizeof(double) * (size_t)N);
  r->loglik = gc_alloc_atomic(sizeof(double) * (size_t)N);
  r->tmp = gc_alloc_atomic(sizeof(double) * (size_t)N);
  r->lpath = gc_alloc_atomic(sizeof(double) * (size_t)N);
  r->root = gc_alloc_atomic(sizeof(uint64_t) * (size_t)N);
  r->U = gc_alloc(sizeof(Value) * (size_t)(pc->nregs + 1));
  r->assigned = gc_alloc_atomic(sizeof(bool) * (size_t)(pc->nregs + 1));
  r->work = gc_alloc(sizeof(PcWork) * (size_t)r->workers);
  for (int w = 0; w < r->workers; w++) r->work[w].R = gc_alloc(sizeof(Value) * (size_t)(pc->nregs + 1));
  r->ev_scale = 1;
  return r;
}

void pc_run_start(PcRun *r, uint64_t seed) {
  const PcProg *pc = r->pc;
  int N = r->N;
  for (int i = 0; i < N; i++) rng_seed(&r->rng[i], seed, (uint64_t)i);
  memset(r->dead, 0, (size_t)N);
  memset(r->logprior, 0, sizeof(double) * (size_t)N);
  memset(r->loglik, 0, sizeof(double) * (size_t)N);
  memset(r->lpath, 0, sizeof(double) * (size_t)N);
  memset(r->root, 0, sizeof(uint64_t) * (size_t)N);
  memcpy(r->U, interp_data_regs(pc->in), sizeof(Value) * (size_t)pc->nregs);
  memset(r->assigned, 0, sizeof(bool) * (size_t)pc->nregs);
  for (int c = 0; c < pc->ncols; c++) memset(r->cols[c], 0, ck_size(pc->ckind[c]) * (size_t)N);
  r->depth = 1;
  r->fr[0] = (PcFrame){.b = &pc->p->model_b};
  for (int e = 0; e < r->npath; e++) path_release(r, &r->path[e]);
  r->npath = 0;
  r->cur_id = false;
  r->stored = r->live = 0;
  r->segments = 0;
  r->rooted = r->seg_draws = false;
  r->nseq = 0;
  r->ev_scale = 1;
}

const PcProg *pc_run_prog(const PcRun *r) { return r->pc; }

void pc_set_replay(PcRun *r, PcReplayFn find, void *ctx) {
  r->replay = find;
  r->replay_ctx = ctx;
}
bool pc_dead(const PcRun *r, int i) { return r->dead[i]; }
double pc_logprior(const PcRun *r, int i) { return r->logprior[i]; }
double pc_loglik(const PcRun *r, int i) { return r->loglik[i]; }
double pc_lpath(const PcRun *r, int i) { return r->lpath[i]; }
uint64_t pc_root(const PcRun *r, int i) { return r->root[i]; }

long pc_kills(const PcRun *r) {
  long k = 0;
  for (int w = 0; w < r->workers; w++) k += r->work[w].kills;
  return k;
}

int pc_nalive(const PcRun *r) {
  int n = 0;
  for (int i = 0; i < r->N; i++) n += !r->dead[i];
  return n;
}

size_t pc_bytes(const PcRun *r) {
  size_t b = (size_t)r->N * (2 * sizeof(double) * 3 + sizeof(Rng) + sizeof(uint64_t) + 1);
  for (int c = 0; c < r->pc->ncols; c++) b += 2 * ck_size(r->pc->ckind[c]) * (size_t)r->N;
  b += (size_t)r->stored * (sizeof(double) + sizeof(int)) + 2 * sizeof(int) * (size_t)r->N;
  if (r->keep) b += (size_t)(2 * r->chcap + 1) * sizeof(double) * (size_t)r->N; /* kept choices */
  return b;
}

/* ---- values of one particle ---- */

static Value col_get(const PcRun *r, int c, int i) {
  switch (r->pc->ckind[c]) {
  case CK_REAL: return val_real(((const double *)r->cols[c])[i]);
  case CK_INT: return val_int(((const int64_t *)r->cols[c])[i]);
  case CK_BOOL: return val_bool(((const int64_t *)r->cols[c])[i] != 0);
  default: return ((const Value *)r->cols[c])[i];
  }
}

/* v (already of the register's type) into column c. */
static void col_put(PcRun *r, int c, int i, Value v) {
  switch (r->pc->ckind[c]) {
  case CK_REAL: ((double *)r->cols[c])[i] = val_as_real(v); break;
  case CK_INT: ((int64_t *)r->cols[c])[i] = v.k == V_BOOL ? v.b : v.i; break;
  case CK_BOOL: ((int64_t *)r->cols[c])[i] = v.k == V_BOOL ? v.b : v.k == V_INT ? v.i != 0 : v.r != 0; break;
  default: ((Value *)r->cols[c])[i] = v; break;
  }
}

static inline double opnd_real(const PcRun *r, const PcOpnd *o, int i) {
  if (o->col < 0) return val_as_real(o->u);
  switch (r->pc->ckind[o->col]) {
  case CK_REAL: return ((const double *)r->cols[o->col])[i];
  default: return (double)((const int64_t *)r->cols[o->col])[i];
  }
}

static Value opnd_val(const PcRun *r, const PcOpnd *o, int i) {
  return o->col < 0 ? o->u : col_get(r, o->col, i);
}

/* ---- recording ---- */

static PcOp *op_new(PcRun *r, const IrInstr *ins, int kind) {
  if (r->nops == r->opcap) {
    int cap = r->opcap ? 2 * r->opcap : 32;
    PcOp *o = gc_alloc(sizeof(PcOp) * (size_t)cap);
    if (r->nops) memcpy(o, r->ops, sizeof(PcOp) * (size_t)r->nops);
    r->ops = o;
    r->opcap = cap;
  }
  PcOp *op = &r->ops[r->nops++];
  memset(op, 0, sizeof *op);
  op->kind = (uint8_t)kind;
  op->ins = ins;
  op->dst = ins && ins->dst >= 0 ? r->pc->col[ins->dst] : -1;
  op->path = -1;
  if (ins) {
    int regs[PC_MAXOPND + 1];
    op->n = ins_reads(ins, regs);
    for (int k = 0; k < op->n; k++) {
      op->o[k].reg = regs[k];
      op->o[k].col = r->pc->col[regs[k]];
      op->o[k].u = op->o[k].col < 0 ? r->U[regs[k]] : val_none();
    }
  }
  if (op->dst >= 0) r->assigned[ins->dst] = true;
  return op;
}

/* The operand reading register reg. */
static const PcOpnd *op_opnd(const PcOp *op, int reg) {
  for (int k = 0; k < op->n; k++)
    if (op->o[k].reg == reg) return &op->o[k];
  return NULL;
}

static int64_t reg_i64(Value v) { return v.k == V_INT ? v.i : v.k == V_BOOL ? v.b : (int64_t)v.r; }

/* "x[3]" for a latent in the loops being walked (the interpreter's form). */
static const char *pc_address(const PcRun *r, const char *name) {
  char buf[256];
  size_t k = 0;
  int nloops = 0;
  for (int d = 0; d < r->depth; d++) {
    if (!r->fr[d].loop) continue;
    int w = snprintf(buf + k, sizeof buf - k, "%s%lld", nloops ? "," : "[", (long long)r->fr[d].cur);
    if (w < 0 || (size_t)w >= sizeof buf - k) break;
    k += (size_t)w;
    nloops++;
  }
  if (!nloops) return name;
  if (k + 2 <= sizeof buf) {
    buf[k++] = ']';
    buf[k] = 0;
  }
  return gc_printf("%s%s", name, buf);
}

static void record_sample(PcRun *r, const IrInstr *ins) {
  PcOp *op = op_new(r, ins, PK_SAMPLE);
  const DistFamily *f = ins->dist.fam;
  Type t = r->pc->p->main.regtypes[ins->dst];
  op->addr = pc_address(r, ins->name);
  op->lo = ins->con.lower >= 0 ? val_as_real(r->U[ins->con.lower]) : -INFINITY;
  op->hi = ins->con.upper >= 0 ? val_as_real(r->U[ins->con.upper]) : INFINITY;
  op->nsizes = ins->nsizes;
  for (int k = 0; k < ins->nsizes && k < 8; k++) op->sizes[k] = (int)reg_i64(r->U[ins->sizes[k]]);
  bool scalars = dist_scalar_family(f) && ins->con.kind == CON_NONE;
  for (int k = 0; k < ins->dist.nparams && scalars; k++)
    scalars = pc_scalar(r->pc->p->main.regtypes[ins->dist.params[k]]);
  op->fast = scalars && f->lpdf1 && f->rng1 && f->nparams <= 4;
  r->seg_draws = true;
  bool all = false;
  if (r->replay && r->replay(r->replay_ctx, op->addr, &op->rval, &all)) op->replay = all ? 2 : 1;
  op->seq = r->nseq++;
  if (r->rx) op->replay = 3; /* pc_replay_moved: every particle's own value */
  if (r->keep) {
    if (op->seq >= r->chcap) {
      int cap = r->chcap ? 2 * r->chcap : 64;
      double **x = gc_alloc(sizeof(double *) * (size_t)cap), **l = gc_alloc(sizeof(double *) * (size_t)cap);
      PcChoice *m = gc_alloc(sizeof(PcChoice) * (size_t)cap);
      if (r->chcap) {
        memcpy(x, r->chx, sizeof(double *) * (size_t)r->chcap);
        memcpy(l, r->chl, sizeof(double *) * (size_t)r->chcap);
        memcpy(m, r->chm, sizeof(PcChoice) * (size_t)r->chcap);
      }
      for (int k = r->chcap; k < cap; k++) { /* kept for the next runs */
        x[k] = gc_alloc_atomic(sizeof(double) * (size_t)r->N);
        l[k] = gc_alloc_atomic(sizeof(double) * (size_t)r->N);
      }
      r->chx = x;
      r->chl = l;
      r->chm = m;
      r->chcap = cap;
    }
    r->chm[op->seq] = (PcChoice){op->addr, t.base == TY_INT, r->depth > 1};
    return; /* the histories are the kept choices (moves rewrite them) */
  }
  if (r->depth > 1 && !r->cont) { /* nested: its history is kept (as the interpreter keeps it) */
    if (r->npath == r->pathcap) {
      int cap = r->pathcap ? 2 * r->pathcap : 64;
      PcPath *np = gc_alloc(sizeof(PcPath) * (size_t)cap);
      if (r->npath) memcpy(np, r->path, sizeof(PcPath) * (size_t)r->npath);
      r->path = np;
      r->pathcap = cap;
    }
    PcPath *pp = &r->path[r->npath];
    pp->addr = op->addr;
    pp->isint = t.base == TY_INT;
    pp->n = r->N;
    pp->drawn = true;
    pp->v = path_buf(r);
    pp->par = NULL;
    if (r->npath && !r->cur_id) {
      pp->par = path_buf(r);
      memcpy(pp->par, r->cur, sizeof(int) * (size_t)r->N);
    }
    if (!r->cur_id)
      for (int j = 0; j < r->N; j++) r->cur[j] = j;
    r->cur_id = true;
    r->stored += r->N;
    op->path = r->npath++;
  }
}

static void record_kill(PcRun *r, const IrInstr *ins, const char *err) {
  Diag d;
  diag_init(&d);
  diag_error(&d, DIAG_RUNTIME, ins->pos, "%s", err);
  PcOp *op = op_new(r, NULL, PK_KILL);
  op->msg = gc_strdup(d.msg);
}

/* A builtin on the registers R, its result converted to the register's type
 * (uniform and per-particle instructions alike); false + err. */
static bool call_builtin(const IrInstr *ins, const Value *R, const Type *rt, Value *out, char *err,
                         size_t errsz) {
  Value av[16], v = val_none();
  if (ins->nargs > 16) {
    snprintf(err, errsz, "%s: too many arguments", ins->builtin->name);
    return false;
  }
  for (int k = 0; k < ins->nargs; k++) av[k] = R[ins->args[k]];
  BuiltinCtx ctx = {NULL, NULL};
  err[0] = 0;
  if (!ins->builtin->eval(ins->builtin, &ctx, ins->nargs, av, &v, err, errsz)) {
    if (!err[0]) snprintf(err, errsz, "%s failed", ins->builtin->name);
    return false;
  }
  bool fresh;
  *out = op_convert(v, rt[ins->dst], &fresh);
  return true;
}

/* Evaluate a uniform instruction into r->U, as the interpreter does. */
static bool eval_uniform(PcRun *r, const IrInstr *ins, char *err, size_t errsz) {
  Value *R = r->U;
  const Type *rt = r->pc->p->main.regtypes;
  bool fresh;
  switch (ins->op) {
  case IR_CONST: R[ins->dst] = ins->imm; return true;
  case IR_MOVE: {
    Value v = R[ins->args[0]];
    Type t = rt[ins->dst];
    if (v.k == V_INT && t.ndims == 0 && t.base == TY_REAL) R[ins->dst] = val_real((double)v.i);
    else R[ins->dst] = v.k == V_STR ? v : op_convert(v, t, &fresh);
    return true;
  }
  case IR_UNARY: {
    Value v;
    if (!op_unary(ins->sub, R[ins->args[0]], &v, err, errsz)) return false;
    R[ins->dst] = op_convert(v, rt[ins->dst], &fresh);
    return true;
  }
  case IR_BINARY: {
    Value v;
    if (!op_binary(ins->sub, R[ins->args[0]], R[ins->args[1]], &v, err, errsz)) return false;
    R[ins->dst] = op_convert(v, rt[ins->dst], &fresh);
    return true;
  }
  case IR_INDEX: {
    Value v;
    if (!op_index_view(R[ins->args[0]], ins->nidx, ins->idx, R, &v, err, errsz)) return false;
    R[ins->dst] = op_convert(v, rt[ins->dst], &fresh);
    return true;
  }
  case IR_BUILTIN: return call_builtin(ins, R, rt, &R[ins->dst], err, errsz);
  case IR_DECL: {
    int64_t sz[8];
    for (int k = 0; k < ins->nsizes && k < 8; k++) sz[k] = reg_i64(R[ins->sizes[k]]);
    return op_decl(rt[ins->dst], ins->nsizes, sz, &R[ins->dst], err, errsz);
  }
  case IR_STORE: {
    Value c = val_copy(R[ins->dst]);
    if (!op_store(&c, ins->nidx, ins->idx, R, R[ins->args[0]], (TyBase)rt[ins->dst].base, err, errsz))
      return false;
    R[ins->dst] = c;
    return true;
  }
  case IR_ARRAY: case IR_ROWVEC: {
    snprintf(err, errsz, "container literal");
    return false;
  }
  default: snprintf(err, errsz, "internal error: instruction not compiled for particles"); return false;
  }
}

/* A varying instruction other than the handler's: its loop. */
static void record_varying(PcRun *r, const IrInstr *ins) {
  const PcProg *pc = r->pc;
  const Type *rt = pc->p->main.regtypes;
  int dst = pc->col[ins->dst];
  PcOp *op = op_new(r, ins, PK_GENERIC);
  if (ins->op == IR_CONST) {
    op->kind = PK_FILL;
    op->n = 0;
    op->o[0].u = ins->imm;
    op->o[0].col = -1;
    return;
  }
  if (ins->op == IR_MOVE) {
    const PcOpnd *a = op_opnd(op, ins->args[0]);
    int dk = pc->ckind[dst];
    if (a->col < 0) {
      Value v = a->u;
      Type t = rt[ins->dst];
      bool fresh;
      op->o[0].u = v.k == V_INT && t.ndims == 0 && t.base == TY_REAL ? val_real((double)v.i)
                                                                      : op_convert(v, t, &fresh);
      op->o[0].col = -1;
      op->kind = PK_FILL;
    } else if (pc->ckind[a->col] == dk || (dk == CK_REAL && pc->ckind[a->col] == CK_INT)) {
      op->kind = PK_COPY;
      op->o[0] = *a;
    }
    return;
  }
  if (ins->op == IR_BINARY && pc->ckind[dst] == CK_REAL &&
      (ins->sub == OP_ADD || ins->sub == OP_SUB || ins->sub == OP_MUL || ins->sub == OP_DIV ||
       ins->sub == OP_EMUL || ins->sub == OP_EDIV)) {
    const PcOpnd *a = op_opnd(op, ins->args[0]), *b = op_opnd(op, ins->args[1]);
    bool ra = a->col >= 0 ? pc->ckind[a->col] == CK_REAL : a->u.k == V_REAL;
    bool rb = b->col >= 0 ? pc->ckind[b->col] == CK_REAL : b->u.k == V_REAL;
    if (ra && rb) { /* real op real: the interpreter's hot path, the same IEEE operation */
      PcOpnd x = *a, y = *b;
      op->o[0] = x;
      op->o[1] = y;
      op->n = 2;
      op->kind = PK_ARITH;
    }
    return;
  }
  if (ins->op == IR_INDEX && ins->nidx == 1 && ins->idx[0].kind == IX_SINGLE) {
    const PcOpnd *x = op_opnd(op, ins->args[0]), *k = op_opnd(op, ins->idx[0].lo);
    if (x->col < 0 && k->col >= 0 && pc->ckind[k->col] == CK_INT && pc->ckind[dst] == CK_REAL &&
        (x->u.k == V_VEC || x->u.k == V_ROWVEC)) {
      PcOpnd xs = *x, ks = *k;
      op->o[0] = xs;
      op->o[1] = ks;
      op->n = 2;
      op->kind = PK_INDEX1;
    }
  }
}

/* Drop the history slots that no particle descends from: mark the living
 * lineages from the newest entry back, then copy each entry's marked slots
 * forward with their parents renumbered.  O(slots held); run when they are
 * more than 3 times what the last compaction kept (plus 16 N), so O(1) per
 * slot drawn. */
static void pc_compact(PcRun *r) {
  int E = r->npath, N = r->N;
  if (E == 0) return;
  if (r->markcap < r->stored) { /* one scratch for every entry's marks */
    r->markcap = r->stored + r->stored / 2;
    r->mark = gc_alloc_atomic(sizeof(int) * (size_t)r->markcap);
  }
  int **map = gc_alloc(sizeof(int *) * (size_t)E);
  long off = 0;
  for (int e = 0; e < E; e++) {
    map[e] = r->mark + off;
    off += r->path[e].n;
  }
  memset(r->mark, 0, sizeof(int) * (size_t)off);
  for (int j = 0; j < N; j++) map[E - 1][r->cur[j]] = 1;
  for (int e = E - 1; e > 0; e--) {
    const PcPath *pp = &r->path[e];
    if (!pp->par) memcpy(map[e - 1], map[e], sizeof(int) * (size_t)pp->n);
    else
      for (int s = 0; s < pp->n; s++)
        if (map[e][s]) map[e - 1][pp->par[s]] = 1;
  }
  long kept = 0;
  for (int e = 0; e < E; e++) {
    PcPath *pp = &r->path[e];
    int m = 0, *mp = map[e];
    for (int s = 0; s < pp->n; s++) { /* without branches: survivors are scattered */
      int keep = mp[s] != 0;
      mp[s] = keep ? m : -1;
      m += keep;
    }
    if (m == pp->n && (e == 0 || r->path[e - 1].n == pp->n) && !pp->par) {
      kept += m; /* every slot lives and so did its parents': the entry stands */
      continue;
    }
    /* slot m takes the dropped slots' writes */
    double *v = gc_alloc_atomic(sizeof(double) * (size_t)(m + 1));
    int *par = gc_alloc_atomic(sizeof(int) * (size_t)(m + 1));
    const int *pm = e ? map[e - 1] : NULL;
    for (int s = 0; s < pp->n; s++) {
      int k = mp[s] < 0 ? m : mp[s];
      v[k] = pp->v[s];
      par[k] = pm ? pm[path_parent(pp, e, s)] : -1;
    }
    path_release(r, pp);
    pp->v = v;
    pp->par = par;
    pp->n = m;
    kept += m;
  }
  for (int j = 0; j < N; j++) r->cur[j] = map[E - 1][r->cur[j]];
  r->cur_id = false;
  r->stored = r->live = kept;
}

int pc_record(PcRun *r, Diag *d) {
  const PcProg *pc = r->pc;
  char err[512];
  r->nops = 0;
  r->rooted |= r->seg_draws; /* the last segment drew in every living particle */
  r->seg_draws = false;
  if (r->stored > 3 * r->live + 16L * r->N) pc_compact(r);
  r->seg_id = (uint64_t)(r->segments++) * (uint64_t)r->N + 1;
  while (r->depth > 0) {
    PcFrame *f = &r->fr[r->depth - 1];
    if (f->i >= f->b->n) {
      if (f->loop && f->cur < f->hi) {
        f->cur++;
        r->U[f->loop->var] = val_int(f->cur);
        f->i = 0;
      } else {
        r->depth--;
      }
      continue;
    }
    const IrInstr *ins = &f->b->ins[f->i++];
    switch (ins->op) {
    case IR_IF: {
      const IrBlock *b = op_truthy(r->U[ins->args[0]]) ? &ins->then_b : &ins->else_b;
      if (b->n > 0) r->fr[r->depth++] = (PcFrame){.b = b};
      continue;
    }
    case IR_FOR: {
      int64_t lo = reg_i64(r->U[ins->args[0]]), hi = reg_i64(r->U[ins->args[1]]);
      if (lo > hi) continue;
      r->fr[r->depth++] = (PcFrame){.b = &ins->body, .loop = ins, .cur = lo, .hi = hi};
      r->U[ins->var] = val_int(lo);
      continue;
    }
    case IR_SAMPLE: record_sample(r, ins); continue;
    case IR_OBSERVE: {
      PcOp *op = op_new(r, ins, PK_OBSERVE);
      const DistFamily *fam = ins->dist.fam;
      bool fast = dist_scalar_family(fam) && fam->lpdf1 && ins->dist.nparams <= 4 &&
                  pc_scalar(pc->p->main.regtypes[ins->args[0]]);
      for (int k = 0; k < ins->dist.nparams; k++)
        fast = fast && pc_scalar(pc->p->main.regtypes[ins->dist.params[k]]);
      op->fast = fast;
      return 1;
    }
    case IR_FACTOR: case IR_CONDITION: op_new(r, ins, PK_FACTOR); return 1;
    default: break;
    }
    if (ins->dst >= 0 && pc->col[ins->dst] >= 0) {
      record_varying(r, ins);
      continue;
    }
    if (!eval_uniform(r, ins, err, sizeof err)) {
      /* every particle fails here: the interpreter kills them all with this */
      record_kill(r, ins, err);
      r->depth = 0;
      return 1;
    }
  }
  (void)d;
  return 0;
}

/* ---- running a segment ---- */

static void pc_kill(PcRun *r, int i, const IrInstr *ins, const char *err, double *inc,
                 const char **perr) {
  Diag d;
  diag_init(&d);
  diag_error(&d, DIAG_RUNTIME, ins->pos, "%s", err);
  perr[i] = gc_strdup(d.msg);
  inc[i] = -INFINITY;
  r->dead[i] = 1;
}

/* The instruction on particle i's values through the interpreter's own
 * operations; false + err on a runtime error. */
static bool exec_generic(PcRun *r, const PcOp *op, int i, Value *R, char *err, size_t errsz) {
  const IrInstr *ins = op->ins;
  const Type *rt = r->pc->p->main.regtypes;
  for (int k = 0; k < op->n; k++) R[op->o[k].reg] = opnd_val(r, &op->o[k], i);
  Value v = val_none();
  bool fresh;
  switch (ins->op) {
  case IR_MOVE: {
    Value a = R[ins->args[0]];
    Type t = rt[ins->dst];
    v = a.k == V_INT && t.ndims == 0 && t.base == TY_REAL ? val_real((double)a.i) : op_convert(a, t, &fresh);
    break;
  }
  case IR_UNARY:
    if (!op_unary(ins->sub, R[ins->args[0]], &v, err, errsz)) return false;
    v = op_convert(v, rt[ins->dst], &fresh);
    break;
  case IR_BINARY:
    if (!op_binary(ins->sub, R[ins->args[0]], R[ins->args[1]], &v, err, errsz)) return false;
    v = op_convert(v, rt[ins->dst], &fresh);
    break;
  case IR_INDEX:
    if (!op_index_view(R[ins->args[0]], ins->nidx, ins->idx, R, &v, err, errsz)) return false;
    v = op_convert(v, rt[ins->dst], &fresh);
    break;
  case IR_BUILTIN:
    if (!call_builtin(ins, R, rt, &v, err, errsz)) return false;
    break;
  case IR_DECL: {
    int64_t sz[8];
    for (int k = 0; k < ins->nsizes && k < 8; k++) sz[k] = reg_i64(R[ins->sizes[k]]);
    if (!op_decl(rt[ins->dst], ins->nsizes, sz, &v, err, errsz)) return false;
    break;
  }
  default: snprintf(err, errsz, "internal error: instruction not compiled for particles"); return false;
  }
  col_put(r, op->dst, i, v);
  return true;
}

/* The DistCall of op for particle i, as the interpreter makes it. */
static bool make_call(const PcRun *r, const PcOp *op, int i, Value *pv, DistCall *dc, char *err,
                      size_t errsz) {
  const IrInstr *ins = op->ins;
  const IrDist *ds = &ins->dist;
  for (int k = 0; k < ds->nparams; k++) pv[k] = opnd_val(r, op_opnd(op, ds->params[k]), i);
  if (ins->op == IR_SAMPLE)
    return dist_call_init(dc, ds->fam, ds->nparams, pv, (ConKind)ins->con.kind, op->lo, op->hi,
                          r->pc->p->main.regtypes[ins->dst], op->nsizes, op->sizes, err, errsz);
  Value x = opnd_val(r, op_opnd(op, ins->args[0]), i);
  int sizes[8];
  int n = op_shape_sizes(x, sizes, 8);
  return dist_call_init(dc, ds->fam, ds->nparams, pv, CON_NONE, -INFINITY, INFINITY,
                        r->pc->p->main.regtypes[ins->args[0]], n, sizes, err, errsz);
}

/* A latent of particle i the general way (dist_call_init, dist_call_rng,
 * dist_call_lpdf: the trace handler's calls); false + err. */
static bool sample_generic(PcRun *r, const PcOp *op, int i, Value *out, double *lp, char *err,
                           size_t errsz) {
  Value pv[DIST_MAX_PARAMS];
  DistCall dc;
  if (!make_call(r, op, i, pv, &dc, err, errsz)) return false;
  if (!dist_call_rng(&dc, &r->rng[i], out, err, errsz)) return false;
  return dist_call_lpdf(&dc, *out, lp, err, errsz);
}

/* A replayed latent as the trace handler replays a previous trace's value:
 * scored under particle i's parameters, and drawn afresh when it is outside
 * their support (log density -inf or NaN). */
static bool sample_replay(PcRun *r, const PcOp *op, int i, Value *out, double *lp, char *err,
                          size_t errsz) {
  Value pv[DIST_MAX_PARAMS];
  DistCall dc;
  if (!make_call(r, op, i, pv, &dc, err, errsz)) return false;
  if (!dist_call_lpdf(&dc, op->rval, lp, err, errsz)) return false;
  if (*lp > -INFINITY || r->cont) { /* a continuation does not leave the replayed path */
    if (!(*lp > -INFINITY)) *lp = -INFINITY;
    *out = op->rval;
    return true;
  }
  if (!dist_call_rng(&dc, &r->rng[i], out, err, errsz)) return false;
  return dist_call_lpdf(&dc, *out, lp, err, errsz);
}

static bool observe_generic(PcRun *r, const PcOp *op, int i, double *lp, char *err, size_t errsz) {
  Value pv[DIST_MAX_PARAMS];
  DistCall dc;
  if (!make_call(r, op, i, pv, &dc, err, errsz)) return false;
  return dist_call_lpdf(&dc, opnd_val(r, op_opnd(op, op->ins->args[0]), i), lp, err, errsz);
}

/* ---- scalar families over a chunk: the family's kernel, column by column ---- */

/* An input of a kernel: a column (indexed by particle) or a uniform value. */
typedef struct KIn {
  const double *col;
  double u;
} KIn;

/* The log density of kernel k (its first nlp instructions, stdlib/dist_kernel.h)
 * for particles [lo, hi) into W->lp[i - lo].  Each instruction is the IEEE
 * operation or libm call of the family's C kernel, so the bits are lpdf1's;
 * instructions that read only uniform registers (normal's log(sigma) for a
 * uniform sigma) run once, the others as loops over the chunk. */
static void kernel_lp(const DistKernel *k, KIn x, const KIn *p, int lo, int hi, PcWork *W) {
  double ru[DK_MAXREG];
  const double *rc[DK_MAXREG];
  int n = hi - lo;
  rc[DK_X] = x.col ? x.col + lo : NULL;
  ru[DK_X] = x.u;
  for (int j = 0; j < k->np; j++) {
    rc[DK_P(j)] = p[j].col ? p[j].col + lo : NULL;
    ru[DK_P(j)] = p[j].u;
  }
  for (int j = 0; j < k->nlp; j++) {
    const DkIns *in = &k->ins[j];
    int dst = DK_FIRST + j, na = dk_nargs(in->op);
    const double *a = na > 0 ? rc[in->a] : NULL, *b = na > 1 ? rc[in->b] : NULL,
                 *c = na > 2 ? rc[in->c] : NULL;
    if (!a && !b && !c) { /* uniform: once */
      dk_run(k->ins, NULL, j, j + 1, ru);
      rc[dst] = NULL;
      continue;
    }
    double *z = W->kr[dst], ua = na > 0 ? ru[in->a] : 0, ub = na > 1 ? ru[in->b] : 0;
    rc[dst] = z;
#define BIN(E)                                                                           \
  do {                                                                                   \
    if (a && b) for (int i = 0; i < n; i++) { double u = a[i], v = b[i]; z[i] = (E); }  \
    else if (a) for (int i = 0; i < n; i++) { double u = a[i], v = ub; z[i] = (E); }    \
    else for (int i = 0; i < n; i++) { double u = ua, v = b[i]; z[i] = (E); }            \
  } while (0)
    switch (in->op) {
    case DK_ADD: BIN(u + v); break;
    case DK_SUB: BIN(u - v); break;
    case DK_MUL: BIN(u * v); break;
    case DK_DIV: BIN(u / v); break;
    case DK_NEG: for (int i = 0; i < n; i++) z[i] = -a[i]; break;
    case DK_LOG: for (int i = 0; i < n; i++) z[i] = log(a[i]); break;
    case DK_EXP: for (int i = 0; i < n; i++) z[i] = exp(a[i]); break;
    default: /* the evaluator's own code, one particle at a time */
      for (int i = 0; i < n; i++) {
        double r1[DK_MAXREG];
        if (na > 0) r1[in->a] = a ? a[i] : ua;
        if (na > 1) r1[in->b] = b ? b[i] : ub;
        if (na > 2) r1[in->c] = c ? c[i] : ru[in->c];
        dk_run(k->ins, NULL, j, j + 1, r1);
        z[i] = r1[dst];
      }
      break;
    }
#undef BIN
  }
  int l = k->lp;
  if (rc[l]) memcpy(W->lp, rc[l], sizeof(double) * (size_t)n);
  else for (int i = 0; i < n; i++) W->lp[i] = ru[l];
}

/* The parameters of op as kernel inputs (int columns converted into W->p),
 * and in ok[i - lo] whether particle i's are in their domains and give a
 * support (dist.c's checks; a failing one takes the general path, which
 * reports it).  Uniform parameters are checked once. */
static void kernel_params(const PcRun *r, const PcOp *op, int lo, int hi, PcWork *W, KIn *p) {
  const IrInstr *ins = op->ins;
  const DistFamily *f = ins->dist.fam;
  int np = ins->dist.nparams, n = hi - lo;
  bool uok = true;
  for (int j = 0; j < np; j++) {
    const PcOpnd *o = op_opnd(op, ins->dist.params[j]);
    if (o->col < 0) {
      p[j] = (KIn){NULL, val_as_real(o->u)};
      uok = uok && dist_domain_ok(f->pdom[j], p[j].u);
    } else if (r->pc->ckind[o->col] == CK_REAL) {
      p[j] = (KIn){r->cols[o->col], 0};
    } else {
      const int64_t *c = r->cols[o->col];
      for (int i = lo; i < hi; i++) W->p[j][i - lo] = (double)c[i];
      p[j] = (KIn){W->p[j] - lo, 0};
    }
  }
  memset(W->ok, uok, (size_t)n);
  if (!uok) return;
  for (int j = 0; j < np; j++) {
    if (!p[j].col) continue;
    const DistDomain *dm = dist_domain(f->pdom[j]);
    if (dm->any) continue;
    const double *v = p[j].col;
    if (f->pdom[j] == PD_ANY) /* the common case inline: a finite real */
      for (int i = lo; i < hi; i++) W->ok[i - lo] &= isfinite(v[i]);
    else
      for (int i = lo; i < hi; i++) W->ok[i - lo] &= dist_domain_ok(f->pdom[j], v[i]);
  }
  if (f->support && np >= 2)
    for (int i = lo; i < hi; i++) {
      double q[4], slo, shi;
      for (int j = 0; j < np; j++) q[j] = p[j].col ? p[j].col[i] : p[j].u;
      f->support(q, &slo, &shi);
      if (slo > shi || (!f->discrete && slo == shi)) W->ok[i - lo] = 0;
    }
}

/* Is x strictly inside the support of the family at particle i's
 * parameters?  Only there is the kernel's value of a replayed x taken
 * without the general path (a family's lpdf1 may test its support before
 * its kernel runs). */
static bool replay_inside(const DistFamily *f, const KIn *p, int np, int i, double x) {
  if (!f->support) return true;
  double q[4], slo, shi;
  for (int j = 0; j < np; j++) q[j] = p[j].col ? p[j].col[i] : p[j].u;
  f->support(q, &slo, &shi);
  return slo < x && x < shi;
}

static void exec_sample_moved(PcRun *r, const PcOp *op, int lo, int hi, PcWork *W, double *inc,
                              const char **perr);

static void exec_sample(PcRun *r, const PcOp *op, int lo, int hi, PcWork *W, double *inc,
                        const char **perr) {
  if (op->replay == 3) {
    exec_sample_moved(r, op, lo, hi, W, inc, perr);
    return;
  }
  const IrInstr *ins = op->ins;
  const DistFamily *f = ins->dist.fam;
  int np = ins->dist.nparams;
  double *pathv = op->path >= 0 ? r->path[op->path].v : NULL;
  bool isint = r->pc->ckind[op->dst] != CK_REAL;
  char err[512];
  KIn p[4];
  /* a replayed value scored by the kernel: dist_call_lpdf of a finite scalar
     (an int for a discrete family) without bounds is the family's lpdf1 */
  double rv = op->replay ? val_as_real(op->rval) : 0;
  bool rfast = op->replay && isfinite(rv) && (!f->discrete || rv == floor(rv));
  if (op->fast) {
    kernel_params(r, op, lo, hi, W, p);
    for (int i = lo; i < hi; i++) {
      int c = i - lo;
      if (op->replay && (op->replay == 2 || i == 0)) {
        W->x[c] = rv;
        continue;
      }
      if (r->dead[i] || !W->ok[c]) continue;
      double q[4];
      for (int j = 0; j < np; j++) q[j] = p[j].col ? p[j].col[i] : p[j].u;
      W->saved[c] = r->rng[i];
      double x = f->rng1(&r->rng[i], q);
      if (f->discrete) {
        double slo = -INFINITY, shi = INFINITY;
        if (f->support) f->support(q, &slo, &shi);
        if (!(fabs(x) <= 9007199254740992.0) || x < slo || x > shi) W->ok[c] = 2; /* drawn, refused */
      }
      W->x[c] = x;
    }
    if (f->kernel) kernel_lp(f->kernel, (KIn){W->x - lo, 0}, p, lo, hi, W);
    else
      for (int i = lo; i < hi; i++) {
        double q[4];
        for (int j = 0; j < np; j++) q[j] = p[j].col ? p[j].col[i] : p[j].u;
        W->lp[i - lo] = f->lpdf1(W->x[i - lo], q);
      }
  }
  /* the columns in locals: the compiler cannot tell that the stores below
     leave r's fields alone */
  const uint8_t *dead = r->dead, *ok = W->ok;
  const double *wx = W->x, *wl = W->lp;
  double *zr = isint ? NULL : r->cols[op->dst], *seg = W->seg;
  int64_t *zi = isint ? r->cols[op->dst] : NULL;
  int rmode = op->replay;
  bool fast = op->fast;
  double *kx = r->keep ? r->chx[op->seq] : NULL, *kl = r->keep ? r->chl[op->seq] : NULL;
  for (int i = lo; i < hi; i++) {
    if (dead[i]) continue;
    int c = i - lo;
    double x, lp;
    bool replayed = rmode && (rmode == 2 || i == 0);
    if (!replayed && fast && ok[c] == 1 && !isnan(wl[c]) && wl[c] != INFINITY) {
      x = wx[c];
      lp = wl[c];
    } else if (replayed && fast && rfast && ok[c] == 1 && !isnan(wl[c]) && wl[c] > -INFINITY &&
               wl[c] != INFINITY && replay_inside(f, p, np, i, rv)) {
      x = rv;
      lp = wl[c];
    } else if (replayed) {
      Value v;
      if (!sample_replay(r, op, i, &v, &lp, err, sizeof err)) {
        pc_kill(r, i, ins, err, inc, perr);
        continue;
      }
      x = val_as_real(v);
    } else {
      if (op->fast && W->ok[c]) r->rng[i] = W->saved[c]; /* drawn, then failed: redo it the general way */
      Value v;
      if (!sample_generic(r, op, i, &v, &lp, err, sizeof err)) {
        pc_kill(r, i, ins, err, inc, perr);
        continue;
      }
      x = val_as_real(v);
    }
    if (zi) zi[i] = (int64_t)x;
    else zr[i] = x;
    if (pathv) pathv[i] = x;
    if (kx) {
      kx[i] = x;
      kl[i] = lp;
    }
    seg[c] += replayed || !r->cont ? lp : -INFINITY; /* a continuation draws nothing */
  }
}

/* A latent in a moved replay (pc_replay_moved): particle i's value of this
 * choice is rx[seq][i], handled as the trace handler handles a previous
 * trace's value: at particle i's target, the proposal's; a block value
 * (rblk) scored whatever its density; any other scored under the
 * particle's parameters and drawn afresh from its stream when outside
 * their support (counted in nfresh: a fresh draw makes the move
 * irreversible for the supports compiled moves accept). */
static void exec_sample_moved(PcRun *r, const PcOp *op, int lo, int hi, PcWork *W, double *inc,
                              const char **perr) {
  const IrInstr *ins = op->ins;
  const DistFamily *f = ins->dist.fam;
  int np = ins->dist.nparams, k = op->seq;
  const double *xv = r->rx[k];
  bool blk = r->rblk && r->rblk[k], isint = r->pc->ckind[op->dst] != CK_REAL;
  double *zr = isint ? NULL : r->cols[op->dst];
  int64_t *zi = isint ? r->cols[op->dst] : NULL;
  char err[512];
  KIn p[4];
  if (op->fast) {
    kernel_params(r, op, lo, hi, W, p);
    for (int i = lo; i < hi; i++) W->x[i - lo] = xv[i];
    if (f->kernel) kernel_lp(f->kernel, (KIn){W->x - lo, 0}, p, lo, hi, W);
    else
      for (int i = lo; i < hi; i++) {
        double q[4];
        for (int j = 0; j < np; j++) q[j] = p[j].col ? p[j].col[i] : p[j].u;
        W->lp[i - lo] = f->lpdf1(W->x[i - lo], q);
      }
  }
  for (int i = lo; i < hi; i++) {
    if (r->dead[i]) continue;
    int c = i - lo;
    double x = xv[i], lp = 0, wl = op->fast ? W->lp[c] : 0;
    bool target = r->rtarget && r->rtarget[i] == k;
    if (!target && op->fast && isfinite(x) && (!f->discrete || x == floor(x)) && W->ok[c] == 1 &&
        !isnan(wl) && wl > -INFINITY && wl != INFINITY && replay_inside(f, p, np, i, x)) {
      lp = wl;
    } else {
      Value pv[DIST_MAX_PARAMS], v, old = isint ? val_int((int64_t)x) : val_real(x);
      DistCall dc;
      bool ok = make_call(r, op, i, pv, &dc, err, sizeof err);
      if (ok && target)
        ok = r->propose(r->propose_ctx, i, &dc, old, &r->rng[i], &v, &r->lq[i], err, sizeof err) &&
             dist_call_lpdf(&dc, v, &lp, err, sizeof err);
      else if (ok) {
        v = old;
        ok = dist_call_lpdf(&dc, old, &lp, err, sizeof err);
        if (ok && !(lp > -INFINITY) && !blk) { /* outside the support: drawn afresh */
          ok = dist_call_rng(&dc, &r->rng[i], &v, err, sizeof err) &&
               dist_call_lpdf(&dc, v, &lp, err, sizeof err);
          r->nfresh[i]++;
        }
      }
      if (!ok) {
        pc_kill(r, i, ins, err, inc, perr);
        continue;
      }
      x = val_as_real(v);
    }
    if (zi) zi[i] = (int64_t)x;
    else zr[i] = x;
    if (r->keep) {
      r->chx[k][i] = x;
      r->chl[k][i] = lp;
    }
    W->seg[c] += lp;
  }
}

static void exec_observe(PcRun *r, const PcOp *op, int lo, int hi, PcWork *W, double *inc,
                         const char **perr) {
  const IrInstr *ins = op->ins;
  const DistFamily *f = ins->dist.fam;
  int np = ins->dist.nparams;
  const PcOpnd *xo = op_opnd(op, ins->args[0]);
  bool fast = op->fast;
  char err[512];
  KIn p[4];
  if (fast) {
    kernel_params(r, op, lo, hi, W, p);
    KIn x;
    if (xo->col < 0) x = (KIn){NULL, val_as_real(xo->u)};
    else if (r->pc->ckind[xo->col] == CK_REAL) x = (KIn){r->cols[xo->col], 0};
    else {
      const int64_t *c = r->cols[xo->col];
      for (int i = lo; i < hi; i++) W->x[i - lo] = (double)c[i];
      x = (KIn){W->x - lo, 0};
    }
    if (f->kernel) kernel_lp(f->kernel, x, p, lo, hi, W);
    else
      for (int i = lo; i < hi; i++) {
        double q[4];
        for (int j = 0; j < np; j++) q[j] = p[j].col ? p[j].col[i] : p[j].u;
        W->lp[i - lo] = f->lpdf1(x.col ? x.col[i] : x.u, q);
      }
  }
  const uint8_t *dead = r->dead, *ok = W->ok;
  const double *wl = W->lp;
  double *loglik = r->loglik;
  const double sc = r->ev_scale; /* a replay's tempered stop event; 1 elsewhere */
  for (int i = lo; i < hi; i++) {
    if (dead[i]) continue;
    int c = i - lo;
    double lp;
    if (fast && ok[c] && !isnan(wl[c]) && wl[c] != INFINITY) lp = wl[c];
    else if (!observe_generic(r, op, i, &lp, err, sizeof err)) {
      pc_kill(r, i, ins, err, inc, perr);
      continue;
    }
    loglik[i] += sc == 1 ? lp : sc * lp;
    inc[i] = lp;
  }
}

static void exec_factor(PcRun *r, const PcOp *op, int lo, int hi, double *inc, const char **perr) {
  const IrInstr *ins = op->ins;
  const PcOpnd *a = &op->o[0];
  for (int i = lo; i < hi; i++) {
    if (r->dead[i]) continue;
    Value v = opnd_val(r, a, i);
    double lw = ins->op == IR_CONDITION ? (op_truthy(v) ? 0.0 : -INFINITY) : val_as_real(v);
    if (isnan(lw) || lw == INFINITY) {
      pc_kill(r, i, ins, isnan(lw) ? "the log density term is NaN" : "the log density term is +inf",
           inc, perr);
      continue;
    }
    r->loglik[i] += r->ev_scale == 1 ? lw : r->ev_scale * lw;
    inc[i] = lw;
  }
}

static void exec_op(PcRun *r, const PcOp *op, int lo, int hi, PcWork *W, Value *R, double *inc,
                    const char **perr) {
  char err[512];
  switch (op->kind) {
  case PK_FILL:
    for (int i = lo; i < hi; i++) col_put(r, op->dst, i, op->o[0].u);
    break;
  case PK_COPY: {
    int s = op->o[0].col;
    if (r->pc->ckind[s] == r->pc->ckind[op->dst])
      memcpy((char *)r->cols[op->dst] + ck_size(r->pc->ckind[s]) * (size_t)lo,
             (char *)r->cols[s] + ck_size(r->pc->ckind[s]) * (size_t)lo,
             ck_size(r->pc->ckind[s]) * (size_t)(hi - lo));
    else {
      double *z = r->cols[op->dst];
      const int64_t *x = r->cols[s];
      for (int i = lo; i < hi; i++) z[i] = (double)x[i];
    }
    break;
  }
  case PK_ARITH: {
    double *z = r->cols[op->dst];
    const PcOpnd *a = &op->o[0], *b = &op->o[1];
    const double *x = a->col >= 0 ? r->cols[a->col] : NULL, *y = b->col >= 0 ? r->cols[b->col] : NULL;
    double xs = a->col < 0 ? a->u.r : 0, ys = b->col < 0 ? b->u.r : 0;
    int sub = op->ins->sub;
#define LOOP(E)                                                         \
  do {                                                                  \
    if (x && y) for (int i = lo; i < hi; i++) { double u = x[i], v = y[i]; z[i] = (E); } \
    else if (x) for (int i = lo; i < hi; i++) { double u = x[i], v = ys; z[i] = (E); }   \
    else for (int i = lo; i < hi; i++) { double u = xs, v = y[i]; z[i] = (E); }          \
  } while (0)
    switch (sub) {
    case OP_ADD: LOOP(u + v); break;
    case OP_SUB: LOOP(u - v); break;
    case OP_MUL: case OP_EMUL: LOOP(u * v); break;
    default: LOOP(u / v); break;
    }
#undef LOOP
    break;
  }
  case PK_INDEX1: {
    double *z = r->cols[op->dst];
    Value xv = op->o[0].u;
    const int64_t *k = r->cols[op->o[1].col];
    int64_t n = (int64_t)xv.t->rows * xv.t->cols;
    for (int i = lo; i < hi; i++) {
      if (k[i] >= 1 && k[i] <= n) z[i] = xv.t->d[k[i] - 1];
      else if (!r->dead[i] && !exec_generic(r, op, i, R, err, sizeof err)) { /* its message */
        pc_kill(r, i, op->ins, err, inc, perr);
        z[i] = NAN;
      }
    }
    break;
  }
  case PK_GENERIC:
    for (int i = lo; i < hi; i++)
      if (!r->dead[i] && !exec_generic(r, op, i, R, err, sizeof err)) pc_kill(r, i, op->ins, err, inc, perr);
    break;
  case PK_SAMPLE: exec_sample(r, op, lo, hi, W, inc, perr); break;
  case PK_OBSERVE: exec_observe(r, op, lo, hi, W, inc, perr); break;
  case PK_FACTOR: exec_factor(r, op, lo, hi, inc, perr); break;
  case PK_KILL:
    for (int i = lo; i < hi; i++) {
      if (r->dead[i]) continue;
      perr[i] = op->msg;
      inc[i] = -INFINITY;
      r->dead[i] = 1;
    }
    break;
  }
}

void pc_exec(PcRun *r, int worker, int lo, int hi, double *inc, const char **perr) {
  PcWork *W = &r->work[worker];
  Value *R = W->R;
  const bool flat = r->flat;
  for (int c0 = lo; c0 < hi; c0 += PC_CHUNK) {
    int c1 = c0 + PC_CHUNK < hi ? c0 + PC_CHUNK : hi;
    int alive = 0;
    for (int i = c0; i < c1; i++) {
      inc[i] = 0;
      W->seg[i - c0] = flat ? r->logprior[i] : 0; /* flat: one running sum, a trace's */
      alive += !r->dead[i];
    }
    for (int k = 0; k < r->nops; k++) exec_op(r, &r->ops[k], c0, c1, W, R, inc, perr);
    for (int i = c0; i < c1; i++) { /* dead before, or killed now: not advanced */
      alive -= !r->dead[i];
      if (flat) {
        if (!r->dead[i]) r->logprior[i] = W->seg[i - c0];
      } else if (!r->dead[i]) {
        r->logprior[i] += W->seg[i - c0];
        r->lpath[i] += W->seg[i - c0] + inc[i];
      }
    }
    W->kills += alive;
    if (r->seg_draws && !r->rooted)
      for (int i = c0; i < c1; i++)
        if (!r->dead[i] && !r->root[i]) r->root[i] = r->seg_id + (uint64_t)i;
  }
}

/* ---- resampling ---- */

void pc_resample(PcRun *r, const int *anc, uint64_t fork_seed) {
  pc_resample_range(r, anc, fork_seed, 0, r->N);
}

void pc_resample_range(PcRun *r, const int *anc, uint64_t fork_seed, int lo, int hi) {
  const PcProg *pc = r->pc;
  int N = r->N;
  for (int c = 0; c < pc->ncols; c++) {
    if (!r->assigned[pc->creg[c]]) continue; /* not written yet: zeros in every particle */
    void *src = r->cols[c], *dst = r->spare[c];
    switch (pc->ckind[c]) {
    case CK_REAL:
      for (int j = lo; j < hi; j++) ((double *)dst)[j] = ((const double *)src)[anc[j]];
      break;
    case CK_VAL:
      for (int j = lo; j < hi; j++) ((Value *)dst)[j] = ((const Value *)src)[anc[j]];
      break;
    default:
      for (int j = lo; j < hi; j++) ((int64_t *)dst)[j] = ((const int64_t *)src)[anc[j]];
      break;
    }
    r->cols[c] = dst;
    r->spare[c] = src;
  }
  /* the small per-particle arrays go through one scratch column */
  double *t = r->tmp;
  for (int j = lo; j < hi; j++) t[j] = r->logprior[anc[j]];
  r->tmp = r->logprior;
  r->logprior = t;
  t = r->tmp;
  for (int j = lo; j < hi; j++) t[j] = r->loglik[anc[j]];
  r->tmp = r->loglik;
  r->loglik = t;
  t = r->tmp;
  for (int j = 0; j < N; j++) t[j] = r->lpath[anc[j]];
  r->tmp = r->lpath;
  r->lpath = t;
  uint64_t *root = r->root2;
  uint8_t *dead = r->dead2;
  for (int j = 0; j < N; j++) { /* every rank's bookkeeping: deaths, roots */
    root[j] = r->root[anc[j]];
    dead[j] = r->dead[anc[j]];
  }
  for (int j = lo; j < hi; j++) rng_seed(&r->rng[j], fork_seed ^ 0x9E3779B97F4A7C15ull, (uint64_t)j);
  r->root2 = r->root;
  r->dead2 = r->dead;
  r->root = root;
  r->dead = dead;
  if (r->keep) /* the kept choices follow their lineages (a single process: lo = 0, hi = N) */
    for (int k = 0; k < r->nseq; k++)
      for (int h = 0; h < 2; h++) {
        double **a = h ? &r->chl[k] : &r->chx[k], *z = r->chspare;
        for (int j = lo; j < hi; j++) z[j] = (*a)[anc[j]];
        r->chspare = *a;
        *a = z;
      }
  if (r->npath > 0) { /* the histories follow their lineages */
    if (r->cur_id) memcpy(r->cur2, anc, sizeof(int) * (size_t)N);
    else
      for (int j = 0; j < N; j++) r->cur2[j] = r->cur[anc[j]];
    r->cur_id = false;
    int *c = r->cur;
    r->cur = r->cur2;
    r->cur2 = c;
  }
}

/* ---- a particle's draw ---- */

Value *pc_outputs(const PcRun *r, int i) {
  const IrProgram *p = r->pc->p;
  Value *v = gc_alloc(sizeof(Value) * (size_t)(p->noutputs > 0 ? p->noutputs : 1));
  for (int k = 0; k < p->noutputs; k++) {
    int reg = p->outputs[k].reg, c = reg >= 0 && reg < r->pc->nregs ? r->pc->col[reg] : -1;
    if (reg < 0 || reg >= r->pc->nregs) v[k] = val_none();
    else if (c < 0) v[k] = r->U[reg];
    else v[k] = r->assigned[reg] ? col_get(r, c, i) : val_none();
  }
  return v;
}

InterpLatent *pc_latents(const PcRun *r, int i, int *n) {
  if (r->keep) { /* the nested choices, in run order */
    InterpLatent *a = gc_alloc(sizeof(InterpLatent) * (size_t)(r->nseq ? r->nseq : 1));
    *n = 0;
    for (int k = 0; k < r->nseq; k++)
      if (r->chm[k].nested) {
        double x = r->chx[k][i];
        a[(*n)++] = (InterpLatent){r->chm[k].addr, r->chm[k].isint ? val_int((int64_t)x) : val_real(x)};
      }
    return a;
  }
  *n = r->npath;
  InterpLatent *a = gc_alloc(sizeof(InterpLatent) * (size_t)(r->npath ? r->npath : 1));
  int idx = r->npath ? r->cur[i] : 0;
  for (int e = r->npath - 1; e >= 0; e--) {
    const PcPath *pp = &r->path[e];
    double x = pp->v[idx];
    a[e] = (InterpLatent){pp->addr, pp->isint ? val_int((int64_t)x) : val_real(x)};
    idx = path_parent(pp, e, idx);
  }
  return a;
}

/* ---- continuations (ancestor sampling) ---- */

void pc_run_continue(PcRun *dst, const PcRun *src) {
  const PcProg *pc = src->pc;
  int N = src->N;
  dst->cont = true;
  memcpy(dst->U, src->U, sizeof(Value) * (size_t)pc->nregs);
  memcpy(dst->assigned, src->assigned, sizeof(bool) * (size_t)pc->nregs);
  memcpy(dst->fr, src->fr, sizeof src->fr);
  dst->depth = src->depth;
  for (int c = 0; c < pc->ncols; c++)
    if (src->assigned[pc->creg[c]])
      memcpy(dst->cols[c], src->cols[c], ck_size(pc->ckind[c]) * (size_t)N);
    else
      memset(dst->cols[c], 0, ck_size(pc->ckind[c]) * (size_t)N);
  memcpy(dst->rng, src->rng, sizeof(Rng) * (size_t)N);
  memcpy(dst->dead, src->dead, (size_t)N);
  memcpy(dst->logprior, src->logprior, sizeof(double) * (size_t)N);
  memcpy(dst->loglik, src->loglik, sizeof(double) * (size_t)N);
  memset(dst->lpath, 0, sizeof(double) * (size_t)N);
  memset(dst->root, 0, sizeof(uint64_t) * (size_t)N);
  dst->npath = 0;
  dst->cur_id = false;
  dst->stored = dst->live = 0;
  dst->segments = 0;
  dst->rooted = dst->seg_draws = false;
}

void pc_drop(PcRun *r, int i) { r->dead[i] = 1; }

/* interp_same_continuation's test of one register (reg_same): scalars bit
   for bit, containers shared or equal */
bool pc_same_state(const PcRun *r, int i, int j, const bool *regs) {
  const PcProg *pc = r->pc;
  if (r->dead[i] || r->dead[j]) return false;
  for (int c = 0; c < pc->ncols; c++) {
    if (!regs[pc->creg[c]]) continue;
    switch (pc->ckind[c]) {
    case CK_REAL:
      if (memcmp((const double *)r->cols[c] + i, (const double *)r->cols[c] + j, sizeof(double)))
        return false;
      break;
    case CK_VAL: {
      Value a = ((const Value *)r->cols[c])[i], b = ((const Value *)r->cols[c])[j];
      if (a.k != b.k) return false;
      if (a.k == V_REAL ? memcmp(&a.r, &b.r, sizeof(double)) != 0
          : a.k == V_INT ? a.i != b.i
          : a.k == V_BOOL ? a.b != b.b
          : a.k != V_NONE && a.s != b.s && !val_equal(a, b))
        return false;
      break;
    }
    default:
      if (((const int64_t *)r->cols[c])[i] != ((const int64_t *)r->cols[c])[j]) return false;
      break;
    }
  }
  return true;
}

/* ---- a population spread over the ranks of an MPI job ---- */

/* Columns of values other than numbers (vectors that vary across particles)
 * cannot travel.  Those of temporaries need not: the lowering gives every
 * intermediate value a fresh temporary, written and read within the
 * evaluation of one statement, and an event is a statement of its own, so
 * such a column is dead at every segment's end. */
static bool pc_travels(const PcProg *pc, int c) { return pc->ckind[c] != CK_VAL; }

bool pc_sendable(const PcProg *pc, const char **why) {
  const char *const *names = pc->p->main.regnames;
  for (int c = 0; c < pc->ncols; c++)
    if (!pc_travels(pc, c) && names && names[pc->creg[c]]) {
      *why = gc_printf("'%s' varies across particles and is not a number", names[pc->creg[c]]);
      return false;
    }
  return true;
}

int pc_width(const PcProg *pc) {
  int w = 2;
  for (int c = 0; c < pc->ncols; c++) w += pc_travels(pc, c);
  return w;
}

/* int columns travel as their bits in a double's place */
void pc_pack(const PcRun *r, int i, double *out) {
  for (int c = 0; c < r->pc->ncols; c++)
    if (pc_travels(r->pc, c)) memcpy(out++, (const char *)r->cols[c] + 8 * (size_t)i, 8);
  out[0] = r->logprior[i];
  out[1] = r->loglik[i];
}

void pc_unpack(PcRun *r, int i, const double *in) {
  for (int c = 0; c < r->pc->ncols; c++)
    if (pc_travels(r->pc, c)) memcpy((char *)r->cols[c] + 8 * (size_t)i, in++, 8);
  r->logprior[i] = in[0];
  r->loglik[i] = in[1];
}

int pc_seg_paths(const PcRun *r, double **v) {
  int n = 0;
  for (int k = 0; k < r->nops; k++)
    if (r->ops[k].kind == PK_SAMPLE && r->ops[k].path >= 0) {
      if (v) v[n] = r->path[r->ops[k].path].v;
      n++;
    }
  return n;
}

void pc_settle(PcRun *r, int i, bool killed) {
  if (killed) r->dead[i] = 1;
  if (!r->dead[i] && r->seg_draws && !r->root[i]) r->root[i] = r->seg_id + (uint64_t)i;
}

/* ---- resample-move (inference/smc_compiled.c) ---- */

void pc_keep_choices(PcRun *r, bool on) {
  r->keep = on;
  if (on && !r->chspare) r->chspare = gc_alloc_atomic(sizeof(double) * (size_t)r->N);
}

int pc_nchoices(const PcRun *r) { return r->nseq; }
const PcChoice *pc_choice(const PcRun *r, int k) { return &r->chm[k]; }
double *pc_choice_vals(PcRun *r, int k) { return r->chx[k]; }
double *pc_choice_lps(PcRun *r, int k) { return r->chl[k]; }
Rng *pc_rngs(PcRun *r) { return r->rng; }
double *pc_logpriors(PcRun *r) { return r->logprior; }
double *pc_logliks(PcRun *r) { return r->loglik; }
int pc_nfresh(const PcRun *r, int i) { return r->nfresh[i]; }
double pc_lq(const PcRun *r, int i) { return r->lq[i]; }

void pc_replay_moved(PcRun *r, const double *const *rx, const uint8_t *blk, const int *target,
                     PcProposeFn propose, void *ctx) {
  int N = r->N;
  pc_run_start(r, 0);
  r->rx = rx;
  r->rblk = blk;
  r->rtarget = target;
  r->propose = propose;
  r->propose_ctx = ctx;
  r->flat = true;
  if (!r->nfresh) {
    r->nfresh = gc_alloc_atomic(sizeof(int) * (size_t)N);
    r->lq = gc_alloc_atomic(sizeof(double) * (size_t)N);
  }
  memset(r->nfresh, 0, sizeof(int) * (size_t)N);
  memset(r->lq, 0, sizeof(double) * (size_t)N);
}

void pc_set_event_scale(PcRun *r, double scale) { r->ev_scale = scale; }

void pc_take_moved(PcRun *dst, const PcRun *src, int i) {
  const PcProg *pc = dst->pc;
  for (int c = 0; c < pc->ncols; c++) {
    if (!src->assigned[pc->creg[c]]) continue;
    size_t sz = ck_size(pc->ckind[c]);
    memcpy((char *)dst->cols[c] + sz * (size_t)i, (const char *)src->cols[c] + sz * (size_t)i, sz);
  }
  for (int k = 0; k < src->nseq && k < dst->nseq; k++) {
    dst->chx[k][i] = src->chx[k][i];
    dst->chl[k][i] = src->chl[k][i];
  }
}

void pc_moved_root(PcRun *r, int i, uint64_t gen) { r->root[i] = gen * (uint64_t)r->N + 1 + (uint64_t)i; }

uint64_t pc_new_generation(PcRun *r) { return (uint64_t)(r->segments++); }

/* Why a program's choices cannot be moved on compiled particles, or NULL.
 * A compiled move reads each choice's bounds once for every particle, so
 * they must not depend on a latent: a family whose support moves with its
 * parameters (uniform, binomial's n, ...) drawn with latent-dependent
 * parameters does not qualify.  The support functions are probed at two
 * parameter vectors (a support that moves with its parameters moves there). */
static const char *moves_why(const PcProg *pc, const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *ins = &b->ins[i];
    const char *w = NULL;
    if (ins->op == IR_IF) {
      if (!(w = moves_why(pc, &ins->then_b))) w = moves_why(pc, &ins->else_b);
    } else if (ins->op == IR_FOR) {
      w = moves_why(pc, &ins->body);
    } else if (ins->op == IR_SAMPLE && ins->dist.fam->support) {
      const DistFamily *f = ins->dist.fam;
      bool varies = false;
      for (int k = 0; k < ins->dist.nparams; k++) varies = varies || pc->col[ins->dist.params[k]] >= 0;
      double q1[DIST_MAX_PARAMS], q2[DIST_MAX_PARAMS], a1, b1, a2, b2;
      for (int k = 0; k < DIST_MAX_PARAMS; k++) {
        q1[k] = 0.25;
        q2[k] = 4.5;
      }
      if (varies) {
        f->support(q1, &a1, &b1);
        f->support(q2, &a2, &b2);
        if (a1 != a2 || b1 != b2)
          w = pc_at(pc->p, ins->pos, gc_printf("the support of latent '%s' (%s) depends on a latent",
                                               ins->name, f->name));
      }
    }
    if (w) return w;
  }
  return NULL;
}

const char *pc_moves_why(const PcProg *pc) { return moves_why(pc, &pc->p->model_b); }
