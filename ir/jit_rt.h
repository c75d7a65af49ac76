/* jit_rt.h — what compiled code and its runtime library (ir/jit_rt.c) share
 * (private to ir/jit*.c).
 *
 * Compiled code keeps scalars in machine registers and containers in boxes:
 * a box is a Value of the interpreter (so every interpreter operation applies
 * to it unchanged) plus, for containers of reals that depend on theta, their
 * adjoints in val_flatten order.
 *
 * Operations the JIT does not lower to native code run in the runtime on a
 * small tape of their own (stdlib/ad.h): the forward call records the
 * operation's derivative, the reverse call sweeps it back from the adjoints of
 * its results to those of its operands.  Forward calls return the record that
 * the compiled code hands back to the reverse call; records are consumed in
 * reverse order of creation, as the generated adjoint code runs.
 *
 * The field offsets of JitBox, JitArg and the first fields of JitCtx are read
 * by generated code: keep them in step with ir/jit.c.
 */
#ifndef PPL_JIT_RT_H
#define PPL_JIT_RT_H

#include <stdint.h>

#include "jit.h"

typedef struct JitBox {
  Value v;      /* the container (offset 0; Value.t / Value.a at offset 8) */
  double *adj;  /* offset 16: adjoints, or NULL for a constant container */
  int64_t n;    /* offset 24: number of scalars */
  double *flat; /* data arrays: their scalars in val_flatten order, made once */
} JitBox;

/* An operand or result of a runtime call: by the register's class, one of
   the three fields is meaningful. */
typedef struct JitArg {
  double r;  /* offset 0 */
  int64_t i; /* offset 8: ints and bools */
  JitBox *b; /* offset 16 */
} JitArg;

/* How a runtime call site treats one operand or result. */
typedef enum {
  JA_NONE = 0,
  JA_REAL,      /* scalar real, constant */
  JA_REAL_ACT,  /* scalar real depending on theta: gets a node, adjoint returned */
  JA_INT,
  JA_BOOL,
  JA_BOX,       /* container, constant */
  JA_BOX_ACT,   /* container with adjoints */
} JitArgKind;

typedef struct JitSite {
  const IrInstr *ins;
  const IrFunc *fn;   /* for register types */
  int nargs;          /* operands as the site passes them (see jit.c: args, then
                         distribution parameters, bounds, sizes, index registers) */
  uint8_t *akind;     /* JitArgKind per operand */
  uint8_t rkind;      /* JitArgKind of the result (JA_NONE: none) */
  int nsizes, nidx;   /* how many of the operands are sizes / index registers */
  const DistFamily *lpdf; /* IR_BUILTIN NAME_lpdf / NAME_lpmf: the family */
  bool choice;        /* IR_SAMPLE of a discrete family in a draw: drawn from the
                         family (the draws pass of ir/enum.h), not read from theta */
  int nloops;         /* IR_SAMPLE in a draw, in a loop or a branch (a nested
                         latent): the last nloops operands are its loops'
                         indices, and the draw records it (JitChoice) */
  bool nested;
  InterpOdeNative *ode;   /* IR_ODE: the right-hand side compiled (ir/jit_ode.c), or NULL */
  const char *ode_why;    /* IR_ODE: why it is not */
} JitSite;

typedef struct JitRec JitRec;

/* One data set as compiled code reads it (jit_data_bind): per register of
 * main, by the register's class, a real scalar or a container's box, its
 * numbers in val_flatten order and, where the code takes their logarithms
 * (normal's sigma), those.  Compiled code loads what it uses once, at entry:
 * data are arguments, not constants, so one compiled program serves every
 * data set of the same shapes.  Offsets are read by generated code. */
typedef struct JitDataReg {
  double r;           /* offset 0 */
  JitBox *b;          /* offset 8 */
  const double *nums; /* offset 16 */
  const double *logs; /* offset 24 */
} JitDataReg;

struct JitData {
  const Jit *jit;
  JitDataReg *reg;
};

struct JitCtx {
  double *stk;  /* offset 0: the stack of values saved for the adjoint code */
  int64_t cap;  /* offset 8: its capacity in doubles */
  const Jit *jit;
  const double *theta;
  double *grad;
  int k;        /* next latent */
  /* arena for boxes and records of one evaluation: chunks reused between
     evaluations (collected memory, reachable from here) */
  char **chunks;
  int nchunks, chunk, capchunks;
  size_t used;
  char **big;     /* blocks too big for a chunk, kept for the next evaluations: */
  size_t *bigsz;  /* the i-th big request of an evaluation reuses the i-th block */
  int nbig, nkept, capbig; /* when it is large enough (used, held, capacity) */
  /* one tape per runtime record, reused between evaluations */
  Tape **tapes;
  int ntapes, captapes, ntape_used;
  double *adj;
  size_t adjcap;
  BuiltinCtx bctx;
  Rng rng;
  Value *outputs; /* jit_draw's */
  const JitDataReg *dregs; /* the data set (read by compiled code at entry) */
  bool draw_ready; /* the draw function has been compiled */
  /* jit_draw's: the discrete choices' generator (seeded as the interpreter's
     draw handler seeds its own), and the nested latents in run order */
  Rng drng;
  JitChoice *choices;
  int nchoices, capchoices;
  /* jit_draw_nested's addresses of the last draw, reused while the
     choices' names and indices repeat */
  const char **addrs;
  JitChoice *prev;
  int nprev;
};

/* Called by compiled code (addresses bound in jit.c). */
void jit_rt_begin(JitCtx *cx, const double *theta, double *grad);
double *jit_rt_grow(JitCtx *cx, int64_t need);
JitRec *jit_rt_op(JitCtx *cx, const JitSite *s, JitArg *args, JitArg *res);
void jit_rt_op_rev(JitCtx *cx, JitRec *r, double out_adj, double *sadj);

JitBox *jit_rt_tensor(JitCtx *cx, int64_t kind, int64_t rows, int64_t cols, int64_t active,
                      int64_t fill);
/* A 1-D array of n numbers of kind V_REAL or V_INT (0), a box of the
   evaluation: what a NAME_rng of containers returns (jit_native.c). */
JitBox *jit_rt_array(JitCtx *cx, int64_t n, int64_t kind);
double jit_rt_lub(double u, double lo, double hi, double *out);
JitBox *jit_rt_sub(JitCtx *cx, const Value *v, int64_t active);
/* y = A x (rows x cols A in the JIT's layout: column k at A + k rows), or
   y += A^T x when trans: tensor_gemv's BLAS call, for large products. */
void jit_rt_gemv(int64_t trans, int64_t rows, int64_t cols, const double *A, const double *x,
                 double *y);
/* A fused GLM statement's row block (jg_emit_glm): eta = a + X b over nb
   rows (a the vector av, or the scalar as when av is NULL), then the
   adjoints of the same rows: gb += X^T g, gav += g, *gas += sum g (each
   when not NULL).  X is column-major with leading dimension ld. */
void jit_rt_glm_eta(int64_t nb, int64_t K, int64_t ld, const double *X, const double *b,
                    const double *av, double as, double *eta);
void jit_rt_glm_adj(int64_t nb, int64_t K, int64_t ld, const double *X, const double *g, double *gb,
                    double *gav, double *gas);
void jit_rt_out(JitCtx *cx, int64_t i, double r, int64_t iv, JitBox *b, int64_t rc);

/* A batch of points evaluated one after the other on this thread
   (jit_eval_batch): n points of dim reals at theta.  Point 0's products
   y = A x of a data matrix A (jit_rt_gemv, the BLAS path) whose x is a slice
   of its theta are noted; jit_rt_batch_point(1) then makes those products for
   points 1..n-1 as one dgemm each, and point s's jit_rt_gemv copies its
   column out after checking that its x is its theta's same slice, bit for
   bit (else it computes its own); only evaluations of cx at the batch's
   points use them (jit_rt_begin checks).  jit_rt_batch_end frees them.
   Without a batch (the default) jit_rt_gemv is as before.  The batch is
   this file's thread-local: a host that does not export libppl's symbols
   leaves the module its own copy of jit_rt_gemv, which sees no batch, and
   every point then computes its own product (the same values, no saving). */
void jit_rt_batch_begin(const JitCtx *cx, const double *theta, size_t dim, size_t n);
void jit_rt_batch_point(size_t s);
void jit_rt_batch_end(void);

/* The family of a NAME_lpdf / NAME_lpmf builtin, else NULL. */
const DistFamily *jit_rt_lpdf_family(const Builtin *b);
/* Whether a latent of ins (of register type t) runs without a tape: a
   structured constraint (simplex, ordered, ..., cov_matrix) whose transform
   and family both have their own derivatives. */
bool jit_rt_struct_ok(const IrInstr *ins, Type t);
/* Whether ins is a dot product of two 1-D tensors (row_vector * vector,
   dot_product / dot of vectors): one call, its partials kept, no tape. */
bool jit_rt_dot_ok(const IrInstr *ins, const IrFunc *fn);
/* Whether ins takes one row or column of a matrix (M[i], M[i, :], M[:, j]):
   copied into the evaluation's arena, no tape. */
bool jit_rt_slice_ok(const IrInstr *ins, const IrFunc *fn);
/* The family of a NAME_rng builtin, else NULL. */
const DistFamily *jit_rt_rng_family(const Builtin *b);

/* Sites, latents and code of a compiled program: what jit_rt.c needs of a Jit. */
const JitSite *jit_site(const Jit *j, int i);
const JitLatents *jit_latents(const Jit *j);
const Interp *jit_interp(const Jit *j);
const JitData *jit_data0(const Jit *j);

#endif
