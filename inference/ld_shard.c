/* ld_shard.c — the log density split by data rows between MPI ranks
 * (ld_shard.h).  A block is an ordinary LogDensity: an interpreter of the
 * same program loaded with the data cut to the block's rows (a DataSource
 * that slices the whole data's values), compiled once per block size and
 * shared by the blocks of that size (ld_use_jit_of). */
#include "ld_shard.h"

#include <math.h>
#include <string.h>
#include <time.h>

#include "../ir/shard.h"

struct LdShard {
  const IrShard *plan;
  const MpiComm *comm;
  size_t dim;
  long rows;
  int nb, bsize;           /* blocks, and rows per block (the last may have fewer) */
  int first, count;        /* this rank's blocks */
  int per_rank;            /* the largest count of any rank: the gather's slots */
  LogDensity *rest;        /* the program without the sharded statements */
  LdWork *rest_w;
  LogDensity **ld;         /* this rank's blocks */
  LdWork **w;
  double *g0, *part, *all; /* rest's gradient; this rank's parts; everyone's */
  Diag *bd;                /* this rank's blocks' errors */
  double cpu_blocks, wall_exchange; /* seconds so far (ld_shard_times) */
  long evals;
};

static double lds_clock(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- the data of one block ------------------------------------------------- */

typedef struct Slice {
  DataSource src;
  const IrProgram *p;
  const IrShard *plan;
  const Value *regs; /* the whole data (interp_data_regs) */
  long lo, n;        /* rows lo .. lo + n - 1, 0-based */
} Slice;

/* rows lo .. lo + n - 1 of a value whose first index runs over the rows */
static Value lds_rows(Value v, long lo, long n) {
  switch (v.k) {
  case V_ARR: {
    Value a = val_arr((int)n);
    memcpy(a.a->e, v.a->e + lo, sizeof(Value) * (size_t)n);
    return a;
  }
  case V_VEC: case V_ROWVEC: {
    Value a = v.k == V_VEC ? val_vec((int)n) : val_rowvec((int)n);
    memcpy(a.t->d, v.t->d + lo, sizeof(double) * (size_t)n);
    return a;
  }
  case V_MAT: { /* column-major: each column's run of rows */
    Value a = val_mat((int)n, v.t->cols);
    for (int j = 0; j < v.t->cols; j++)
      memcpy(a.t->d + (size_t)j * (size_t)n, v.t->d + (size_t)j * (size_t)v.t->rows + lo,
             sizeof(double) * (size_t)n);
    return a;
  }
  default:
    return v;
  }
}

static bool lds_get(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
                    const char *size_desc, ConKind con, double lo, double hi, Value *out, Diag *d) {
  Slice *s = (Slice *)src;
  for (int i = 0; i < s->p->data_b.n; i++) {
    const IrInstr *in = &s->p->data_b.ins[i];
    if (in->op != IR_DATA || strcmp(in->name, name)) continue;
    if (in->dst == s->plan->size_reg) {
      *out = val_int(s->n);
      return true;
    }
    for (int k = 0; k < s->plan->ndata; k++)
      if (s->plan->data_reg[k] == in->dst) {
        *out = lds_rows(s->regs[in->dst], s->lo, s->n);
        return true;
      }
    *out = s->regs[in->dst];
    return true;
  }
  diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "sharded data: no data variable '%s'", name);
  return false;
}

static LogDensity *lds_block(const Interp *in, const IrProgram *p, const IrShard *plan, long lo,
                             long n, Diag *d) {
  Slice s = {.src = {.get = lds_get}, .p = p, .plan = plan, .regs = interp_data_regs(in),
             .lo = lo, .n = n};
  Interp *bi = interp_new(p, NULL);
  if (!interp_load_data(bi, &s.src, d)) return NULL;
  return ld_new(bi, d);
}

/* ---- the sharded density ------------------------------------------------- */

LdShard *ld_shard_new(const Interp *in, const MpiComm *comm, int nblocks, bool jit,
                      const char **why, Diag *d) {
  const IrProgram *p = interp_program(in);
  IrAnalysis *an = ir_analyze(p);
  const IrShard *plan = an->fixed_structure && an->all_continuous ? ir_shard_plan(p) : NULL;
  *why = !plan ? "the program has no fixed set of continuous latents" : plan->why;
  if (*why) return NULL;
  const Value *regs = interp_data_regs(in);
  long rows = regs[plan->size_reg].i;
  if (rows < 1) {
    *why = gc_printf("'%s' is %ld: no rows to split", plan->size_name, rows);
    return NULL;
  }
  LdShard *s = gc_alloc(sizeof *s);
  s->plan = plan, s->comm = comm, s->rows = rows;
  int nb = nblocks > 0 ? nblocks : LD_SHARD_BLOCKS;
  if (nb > rows) nb = (int)rows;
  s->bsize = (int)((rows + nb - 1) / nb);
  s->nb = (int)((rows + s->bsize - 1) / s->bsize);
  int R = mpi_size(comm), r = mpi_rank(comm);
  s->first = (int)((long)r * s->nb / R);
  s->count = (int)((long)(r + 1) * s->nb / R) - s->first;
  s->per_rank = (s->nb + R - 1) / R;

  Interp *ri = interp_new(ir_shard_rest(p, plan), NULL);
  Slice one = {.src = {.get = lds_get}, .p = p, .plan = plan, .regs = regs, .lo = 0, .n = 1};
  if (!interp_load_data(ri, &one.src, d) || !(s->rest = ld_new(ri, d))) return NULL;
  if (jit) ld_use_jit(s->rest, false);
  s->rest_w = ld_work_new(s->rest);
  s->dim = ld_dim(s->rest);
  s->ld = gc_alloc(sizeof(LogDensity *) * (size_t)(s->count + 1));
  s->w = gc_alloc(sizeof(LdWork *) * (size_t)(s->count + 1));
  s->bd = gc_alloc_atomic(sizeof(Diag) * (size_t)(s->count + 1));
  LogDensity *full = NULL; /* the first compiled block of the full size */
  for (int k = 0; k < s->count; k++) {
    long lo = (long)(s->first + k) * s->bsize;
    long n = rows - lo < s->bsize ? rows - lo : s->bsize;
    LogDensity *b = lds_block(in, p, plan, lo, n, d);
    if (!b) return NULL;
    if (ld_dim(b) != s->dim) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "sharded density: block %d has %zu parameters, not %zu",
                 s->first + k, ld_dim(b), s->dim);
      return NULL;
    }
    if (jit) {
      Diag ignore;
      diag_init(&ignore);
      /* one compilation per block size; a block the JIT refuses interprets */
      if (n == s->bsize && full) {
        if (!ld_use_jit_of(b, full, &ignore)) ld_use_jit(b, false);
      } else if (ld_use_jit(b, false) && n == s->bsize) {
        full = b;
      }
    }
    s->ld[k] = b;
    s->w[k] = ld_work_new(b);
  }
  size_t stride = s->dim + 2;
  s->g0 = gc_alloc_atomic(sizeof(double) * (s->dim + 1));
  s->part = gc_alloc_atomic(sizeof(double) * stride * (size_t)s->per_rank);
  s->all = gc_alloc_atomic(sizeof(double) * stride * (size_t)s->per_rank * (size_t)R);
  return s;
}

/* A block's part: [status, lp_b - rest, grad_b - grad_rest]; status 0 ok,
   1 a program error at theta, 2 an error of ppl itself. */
bool ld_shard_eval_grad(LdShard *s, const double *theta, double *lp, double *grad, Diag *d) {
  double lp0;
  if (!ld_eval_grad_w(s->rest_w, theta, &lp0, s->g0, d)) return false; /* the same on every rank */
  if (isnan(lp0) || lp0 == -INFINITY || lp0 == INFINITY) {
    *lp = lp0;
    memset(grad, 0, sizeof(double) * s->dim);
    return true;
  }
  size_t stride = s->dim + 2;
  memset(s->part, 0, sizeof(double) * stride * (size_t)s->per_rank);
  double c0 = lds_clock(CLOCK_THREAD_CPUTIME_ID);
  for (int k = 0; k < s->count; k++) {
    double *o = s->part + stride * (size_t)k;
    double lpb;
    diag_init(&s->bd[k]);
    if (!ld_eval_grad_w(s->w[k], theta, &lpb, o + 2, &s->bd[k])) {
      o[0] = s->bd[k].code == DIAG_INTERNAL ? 2 : 1;
      continue;
    }
    o[1] = lpb - lp0;
    for (size_t i = 0; i < s->dim; i++) o[2 + i] -= s->g0[i];
  }
  double w0 = lds_clock(CLOCK_MONOTONIC);
  s->cpu_blocks += lds_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
  bool sent = mpi_allgather(s->comm, s->part, stride * (size_t)s->per_rank, s->all);
  s->wall_exchange += lds_clock(CLOCK_MONOTONIC) - w0;
  s->evals++;
  if (!sent) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "sharded density: MPI_Allgather failed");
    return false;
  }
  int R = mpi_size(s->comm);
  double acc = lp0;
  memcpy(grad, s->g0, sizeof(double) * s->dim);
  for (int r = 0, b = 0; r < R; r++) {
    int first = (int)((long)r * s->nb / R), count = (int)((long)(r + 1) * s->nb / R) - first;
    for (int k = 0; k < count; k++, b++) {
      const double *o = s->all + stride * ((size_t)r * (size_t)s->per_rank + (size_t)k);
      if (o[0] != 0) {
        if (r == mpi_rank(s->comm)) *d = s->bd[k];
        else
          diag_error(d, o[0] == 2 ? DIAG_INTERNAL : DIAG_RUNTIME, (SrcPos){0},
                     "the log density of rows %ld to %ld (rank %d) failed at this point",
                     (long)b * s->bsize + 1, (long)(b + 1) * s->bsize < s->rows ? (long)(b + 1) * s->bsize : s->rows, r);
        return false;
      }
      acc += o[1];
      for (size_t i = 0; i < s->dim; i++) grad[i] += o[2 + i];
    }
  }
  *lp = acc;
  return true;
}

int ld_shard_blocks(const LdShard *s, int *first, int *count) {
  if (first) *first = s->first;
  if (count) *count = s->count;
  return s->nb;
}

void ld_shard_times(const LdShard *s, long *evals, double *cpu_blocks, double *wall_exchange) {
  *evals = s->evals;
  *cpu_blocks = s->cpu_blocks;
  *wall_exchange = s->wall_exchange;
}

const char *ld_shard_describe(const LdShard *s) {
  const char *names = "";
  for (int k = 0; k < s->plan->ndata; k++)
    names = gc_printf("%s%s%s", names, k ? ", " : "", s->plan->data[k]);
  return gc_printf("the rows of %s (%s): %ld rows in %d blocks of %d", s->plan->size_name, names,
                   s->rows, s->nb, s->bsize);
}

void ld_shard_free(LdShard *s) {
  if (!s) return;
  ld_free(s->rest);
  for (int k = 0; k < s->count; k++) ld_free(s->ld[k]);
}
