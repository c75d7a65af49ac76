/* jit.h — native log densities and gradients through LLVM (ORC LLJIT).
 *
 * jit_compile lowers the model block of a fixed-structure program to one LLVM
 * function that computes the log density on the unconstrained vector and,
 * by adjoint code generated from the same IR, its gradient.  Control flow,
 * scalar arithmetic, indexing and element stores become straight native code;
 * container operations, builtins and distributions call the runtime library
 * of ir/jit_rt.c, which reuses the interpreter's own operations (one
 * implementation of every function, so the two backends agree to rounding).
 *
 * The data block has already run in the interpreter.  Its int and bool
 * scalars (sizes, loop bounds) and the shapes of its containers are folded
 * into the code; real scalars and containers' contents are arguments (a
 * JitData), so the code serves any data set with the same sizes and shapes
 * (jit_data_bind), e.g. one program amortised over many data sets.
 *
 * User function calls are inlined first (ir/inline.c).  What the JIT cannot
 * take (recursive functions, early returns, strings, break/continue, print in
 * the model block) makes jit_compile fail with the reason and the source
 * position; callers fall back to the interpreter.  A runtime error in
 * compiled code (a failed parameter check, an index out of range) is reported
 * as such and the caller re-runs the interpreter for its message.
 */
#ifndef PPL_JIT_H
#define PPL_JIT_H

#include <stdbool.h>
#include <stddef.h>

#include "../stdlib/ad.h"
#include "../stdlib/dist.h"
#include "../stdlib/scalar_rule.h"
#include "interp.h"

/* How latents are handed out: the log density's owner (inference/logdensity.c)
 * knows the layout of theta.  Called for the k-th latent executed (k = 0, 1,
 * ...): record the latent's constrained value on tape t from its block of
 * theta (its entries become new tape variables, *node0 the first, *nfree of
 * them, theta[*off ...]), and its log prior density plus log-Jacobian as one
 * node *lpnode with value *lp. */
typedef struct JitLatents {
  void *ud;
  int n; /* number of latents */
  /* Where the k-th latent's unconstrained reals sit in theta (*n of them
     from *off) when it has these sizes: false otherwise (the sample callback
     then handles it).  A structured latent (simplex, ordered, ...) takes
     tf_free_size reals per unit, the unit being its type's last vector or
     matrix. */
  bool (*layout)(void *ud, int k, int nsizes, const int *sizes, size_t *off, size_t *n);
  bool (*sample)(void *ud, int k, const DistCall *dc, Tape *t, const double *theta, Value *out,
                 double *lp, int32_t *lpnode, size_t *off, size_t *nfree, int32_t *node0,
                 char *err, size_t errsz);
} JitLatents;

typedef struct Jit Jit;       /* compiled code; immutable, shared by threads */
typedef struct JitCtx JitCtx; /* one evaluation workspace; one per thread */

/* Compile the model block of in's program (data loaded).  NULL when the program
 * is outside what the JIT takes: *why (a GC string) says why, with the source
 * position: "model.ppl:7:3: break and continue are not compiled".
 * keep_ir: keep the optimised LLVM IR text for jit_llvm_ir.  quick: optimise
 * the log density with a short pipeline and the code generator's fast path
 * (about half the compile, a gradient about a quarter slower; the same
 * numbers to 1e-12, bit for bit but for sums marked reassociable: for runs
 * too short to repay the full pipeline). */
Jit *jit_compile(const Interp *in, const JitLatents *lat, size_t dim, bool keep_ir, bool quick,
                 const char **why);
/* The optimised LLVM IR (NULL unless compiled with keep_ir). */
const char *jit_llvm_ir(const Jit *j);
/* CPU milliseconds of the thread that ran jit_compile (lowering,
 * optimisation, machine code). */
double jit_compile_ms(const Jit *j);
/* The log density's calls into the runtime (ir/jit_rt.c: the interpreter's
 * implementation on a small tape), one line each with its position
 * ("model.ppl:12:7: log_mix(...): runtime call ..."), then their count;
 * *count (if not NULL) gets the count.  What `ppl run --verbose` prints. */
const char *jit_runtime_calls(const Jit *j, int *count);
/* Release the machine code and LLVM state (compiled code must no longer run). */
void jit_free(Jit *j);

/* A workspace (collected memory: no free), on the data j was compiled with. */
JitCtx *jit_ctx_new(const Jit *j);

/* Another data set for j: data are the registers of main after the data
 * block (interp_data_regs) of an interpreter of the same program.  NULL with
 * *why when they differ from the compiled ones in what the code folds: "data
 * differ from those compiled: N is 10, was 8", "... the size of y is 10, was
 * 8". */
typedef struct JitData JitData;
JitData *jit_data_bind(const Jit *j, const Value *data, const char **why);
/* Evaluate cx on d (bound for cx's Jit) from now on. */
void jit_ctx_set_data(JitCtx *cx, const JitData *d);
/* One draw's outputs (IrProgram.outputs order, a new GC array) at theta: the
 * model block and the generated block, *_rng builtins from a generator seeded
 * with (seed, stream) as interp_start seeds the interpreter's, so both give
 * the same numbers.  NULL when the draw is not compiled (jit_draw_refusal
 * says why) or hit a runtime error (re-run the interpreter for the message). */
bool jit_has_draw(const Jit *j); /* compiles the draw on first call */
const char *jit_draw_refusal(const Jit *j);
/* CPU milliseconds spent compiling the draw (on its first use). */
double jit_draw_ms(const Jit *j);
Value *jit_draw(JitCtx *cx, const double *theta, uint64_t seed, uint64_t stream);
/* The last jit_draw's nested latents (those in a loop or a branch, which no
 * output holds: interp_nested_latents's), in run order, under the addresses
 * the interpreter gives them ("z[3]", "z[2,5]", a repeat "z#2"); a new GC
 * array of *n.  The discrete choices of the draws pass of a program whose
 * discrete latents are summed out (ir/enum.h) are drawn as the interpreter's
 * draw handler draws them, from a generator seeded with (seed, stream ^
 * "enum"), so both give the same values. */
InterpLatent *jit_draw_nested(JitCtx *cx, int *n);
/* Why the compiled draw does not record every nested latent ("model.ppl:3:19:
 * a latent of a user function": the inlined copy cannot address it as the
 * interpreter does), or NULL when it does.  After jit_has_draw. */
const char *jit_draw_unrecorded(const Jit *j);
/* The most loops around a nested latent that a compiled draw records. */
#define JIT_CHOICE_MAXIDX 8
typedef struct JitChoice {
  const char *name; /* the SAMPLE's name */
  int nidx;
  int64_t idx[JIT_CHOICE_MAXIDX];
  Value v;
} JitChoice;
/* Log density at theta (dim reals) and, when grad is not NULL, its gradient.
 * False when the compiled code hit a runtime error (the caller re-runs the
 * interpreter for the message); *lp may be -inf. */
bool jit_eval(JitCtx *cx, const double *theta, double *lp, double *grad);
/* Tapes the runtime recorded in cx's last evaluation (runtime calls that ran
 * the interpreter's implementation): tests check that tape-free paths are
 * taken. */
int jit_ctx_tapes(const JitCtx *cx);
/* jit_eval's log density (no gradient) at n points, theta's rows of dim
 * reals, into lp[n] and ok[n].  A product of a data matrix with a slice of
 * theta (a GLM's X * beta, when compiled as a BLAS product) is made for the
 * whole batch as one matrix-matrix product, which reads the matrix once
 * instead of once a point (jit_rt_batch_begin); the values are jit_eval's to
 * rounding (dgemm sums in another order than dgemv). */
void jit_eval_batch(JitCtx *cx, size_t n, const double *theta, double *lp, bool *ok);

/* A family's kernel description (stdlib/dist_kernel.h) compiled on its own,
 * as the JIT inlines it into programs, for tests: fn(n, x, p, lp, dx, dp)
 * writes, for each of the n points, lp[i] and the partials dx[i] and
 * dp[k*n + i] of x[i] under the parameters p[k*n + i].  width 0 emits scalar
 * code; 2, 4 or 8 the vector code with libmvec (the rest of n, past a
 * multiple of width, runs scalar).  NULL with *why when the family has no
 * description or this machine has no vector math of that width. */
typedef void (*JitKernelFn)(int64_t n, const double *x, const double *p, double *lp, double *dx,
                            double *dp);
typedef struct JitKernel JitKernel;
JitKernel *jit_kernel_compile(const DistFamily *f, int width, const char **why);
JitKernelFn jit_kernel_fn(const JitKernel *k);
/* A scalar rule (stdlib/scalar_rule.h) compiled on its own, by the code that
 * emits it into programs (jg_emit_rule3), for tests: jit_rule_fn(k)(n, a,
 * b, c, v, da, db, dc, ok) writes the value, the three partials (0 for an
 * operand the rule lacks) and ok (1 or 0) at each of the n points
 * (a[i], b[i], c[i]). */
typedef void (*JitRuleFn)(int64_t n, const double *a, const double *b, const double *c, double *v,
                          double *da, double *db, double *dc, double *ok);
JitKernel *jit_rule_compile(const ScalarRule *r, const char **why);
JitRuleFn jit_rule_fn(const JitKernel *k);
void jit_kernel_free(JitKernel *k);

#endif
