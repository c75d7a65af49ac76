/* logdensity.h — the log density of a fixed-structure program on the flat
 * unconstrained parameter vector theta, for the embedding API
 * (ppl_log_density) and gradient-based engines.
 *
 * Layout of theta: the latents in execution order; inside a latent, its
 * scalars in val_flatten order (row-major arrays, column-major matrices), each
 * mapped by its scalar bound transform, except constrained vectors and
 * matrices (simplex, ordered, cholesky_factor_corr, cov_matrix, ...), which
 * take tf_free_size(con, K) consecutive reals each.
 *
 * Layout of the constrained vector x (ld_constrain / ld_unconstrain): the
 * latents in execution order, each flattened in CmdStan's order (first index
 * fastest), named by ld_param_names ("mu", "eta.1", "L.2.1", "x.3" for a
 * latent at address x[3]).
 *
 * A LogDensity is immutable after ld_new: evaluation allocates its own
 * execution state, so any number of threads may call ld_eval at once (and
 * ld_eval_grad: it keeps one spare gradient workspace, taken and returned
 * atomically).
 */
#ifndef PPL_LOGDENSITY_H
#define PPL_LOGDENSITY_H

#include <stddef.h>

#include "../ir/interp.h"

typedef struct LogDensity LogDensity;

/* One prior run discovers the latents (names, shapes, constraints). Errors:
 * "log density on an unconstrained vector needs a fixed-structure program:
 * <reason>", "... needs continuous latents: 'z' is discrete". */
LogDensity *ld_new(const Interp *in, Diag *d);
/* Length of theta. */
size_t ld_dim(const LogDensity *ld);
/* Length of the constrained vector x and its CmdStan names. */
size_t ld_num_constrained(const LogDensity *ld);
const char *const *ld_param_names(const LogDensity *ld);
/* Log joint density at theta, log-Jacobians of the constraining maps included
 * (what HMC samples from).  -inf is a valid answer; false + d for program
 * errors (e.g. a failed parameter check at this theta). */
bool ld_eval(const LogDensity *ld, const double *theta, double *lp, Diag *d);
/* ld_eval plus the gradient of lp with respect to theta (ld_dim reals in
 * grad), by reverse-mode AD (stdlib/ad.h).  Thread-safe like ld_eval.  When lp is -inf or NaN the gradient is
 * unspecified (engines treat such a point as divergent). */
bool ld_eval_grad(const LogDensity *ld, const double *theta, double *lp, double *grad,
                  Diag *d);
/* The same with a reusable workspace (its tape and buffers), for engines that
 * evaluate gradients many times: one LdWork per thread, no allocation in the
 * steady state beyond the interpreter's own. */
typedef struct LdWork LdWork;
LdWork *ld_work_new(const LogDensity *ld);
bool ld_eval_grad_w(LdWork *w, const double *theta, double *lp, double *grad, Diag *d);
/* Log densities at n points (theta: n rows of ld_dim reals, one after the
 * other) into lp[n], each what ld_eval gives there, with w's workspace.  A
 * point where the program reports an error (a failed parameter check) gets
 * lp = -inf and its message in *fail (the last such point's); false only for
 * ppl's own errors (DIAG_INTERNAL), in d.  Compiled code evaluates the batch
 * together where it can (jit_eval_batch: a product of a data matrix with a
 * slice of theta is one matrix-matrix product for the whole batch, the same
 * values to rounding); otherwise it is ld_eval point by point. */
bool ld_eval_batch(LdWork *w, size_t n, const double *theta, double *lp, Diag *fail, Diag *d);
/* theta -> x (ld_num_constrained reals). */
bool ld_constrain(const LogDensity *ld, const double *theta, double *x, Diag *d);
/* x -> theta; error if x is outside a constraint. */
bool ld_unconstrain(const LogDensity *ld, const double *x, double *theta, Diag *d);

/* The initial point of a chain (--init FILE): the latents that init has a
 * value for (by address) take it, read with the latent's shape and checked
 * against its constraint as data are ("init.json: \"sigma\": -1 is below the
 * lower bound 0"; DIAG_DATA), the others their block of theta; the point in
 * theta_out (ld_dim reals). */
bool ld_init_point(const LogDensity *ld, DataSource *init, const char *file, const double *theta,
                   double *theta_out, Diag *d);

/* Compile the log density and its gradient to native code (ir/jit.h); later
 * evaluations run it, falling back to the interpreter for the message when
 * compiled code reports a runtime error.  False when the program is outside
 * what the JIT takes (ld_backend says why); ld keeps interpreting. */
bool ld_use_jit(LogDensity *ld, bool keep_ir);
/* ld_use_jit the quick way (jit_compile's quick): compiled in about half the
 * time, the same numbers to 1e-12 (tests/inference/test_jit_quick). */
bool ld_use_jit_quick(LogDensity *ld);
/* Use the code compiled for `from` (ld_use_jit) with ld's own data: one
 * compilation serves every data set of the same program with the same sizes
 * and shapes (amortised inference runs one program on many data sets).  ld
 * and from must run the same IrProgram (two interpreters of it, each with
 * its data).  False with d when from is not compiled or the data differ in
 * what the code folds (int scalars, shapes); ld keeps interpreting then.
 * from's code must outlive ld's use of it (ld_free(ld) leaves it alone). */
bool ld_use_jit_of(LogDensity *ld, const LogDensity *from, Diag *d);
/* "LLVM JIT (compiled in 23 ms)", "interpreter (not compiled: model.ppl:4:3: ...)"
 * or "interpreter". */
const char *ld_backend(const LogDensity *ld);
/* The reason compilation was refused, or NULL. */
const char *ld_jit_refusal(const LogDensity *ld);
/* The optimised LLVM IR (ld_use_jit with keep_ir), or NULL. */
const char *ld_llvm_ir(const LogDensity *ld);
/* The compiled log density's runtime calls, with positions (jit_runtime_calls);
   NULL when not compiled. */
const char *ld_runtime_calls(const LogDensity *ld);
/* The compiled code alone, without falling back to the interpreter (tests,
 * benchmarks): false if there is none or it reported a runtime error. grad may
 * be NULL. */
bool ld_eval_grad_jit(const LogDensity *ld, const double *theta, double *lp, double *grad);
/* ld_eval_grad_jit that also gives the number of tapes the compiled code's
 * runtime calls recorded (0: every call tape-free), for tests. */
bool ld_eval_grad_jit_tapes(const LogDensity *ld, const double *theta, double *lp, double *grad,
                            int *ntapes);
const Interp *ld_interp(const LogDensity *ld);
/* One draw's outputs (IrProgram.outputs order) at theta by compiled code: the
 * model and generated blocks, random numbers seeded as interp_start(in, seed,
 * stream) seeds them, so the interpreter gives the same draw.  NULL when the
 * draw is not compiled or compiled code reported an error (run the
 * interpreter then). */
/* Compile the draw function now (where the JIT takes the program) rather
 * than at the first draw, so that no chain's timing includes it. */
void ld_prepare_draw(const LogDensity *ld);
Value *ld_draw_jit(LdWork *w, const double *theta, uint64_t seed, uint64_t stream);
/* The same by the interpreter: one run of the program (model and generated
 * blocks) whose latents take their values from theta; nothing is scored. */
Value *ld_draw_interp(const LogDensity *ld, const double *theta, uint64_t seed, uint64_t stream,
                      Diag *d);
/* ld_draw_interp that also gives the run's nested latents (those no output
 * holds: interp_nested_latents) when nested is not NULL. */
Value *ld_draw_full(const LogDensity *ld, const double *theta, uint64_t seed, uint64_t stream,
                    InterpLatent **nested, int *nnested, Diag *d);
/* Compiled where possible, else (or for the message of a runtime error) the
 * interpreter: what engines call for each draw.  A program with nested
 * latents draws by the interpreter (the compiled draw keeps only the output
 * registers), its log density and gradient stay compiled. */
Value *ld_draw(LdWork *w, const double *theta, uint64_t seed, uint64_t stream,
               InterpLatent **nested, int *nnested, Diag *d);
/* One LogDensity per program and data, shared by the chains of every run
 * (built on first use, compiled when jit and the JIT takes the program):
 * engines take it here instead of ld_new, so compilation happens once.
 * Released by ld_shared_free (ppl_model_free), never by the engines. */
LogDensity *ld_shared(const Interp *in, bool jit, Diag *d);
/* Will compiling pay for itself over `evals` evaluations of ld (an
 * interpreted one)?  An estimate from the program and its data, never from
 * a clock, so the choice (and the output) is the same on every machine: one
 * interpreted evaluation costs about 3 us + 0.15 us per instruction the
 * interpreter executes in a run + 0.01 us per element of the data that its
 * vectorised kernels read, compiled code a tenth of that, and compiling
 * about 40 ms (docs/performance.md, "When compiling pays").  Amortized
 * inference asks with its draws; nuts and hmc with their expected gradients
 * (hmc.c: HMC_EXPECTED_STEPS a transition). */
bool ld_jit_pays(const LogDensity *ld, double evals);
/* The cost model's constants (docs/performance.md, "When compiling pays"):
 * compiling about 40 ms; the full pipeline about 20 ms more than the quick
 * one (eight schools: 119 M against 64 M instructions), whose gradients take
 * about a quarter longer (900 against 1,110 instructions). */
#define LD_COMPILE_US 40e3
#define LD_FULL_EXTRA_US 20e3
#define LD_QUICK_SLOWER 0.25
/* Will compiling the draw function (the model and generated blocks forward,
 * about LD_DRAW_COMPILE_US) pay for itself over `draws` kept draws, each an
 * interpreted run otherwise?  Counts only, as ld_jit_pays; nuts and hmc ask
 * with the run's kept draws, and draw by the interpreter when it would not. */
#define LD_DRAW_COMPILE_US 5e3
bool ld_draw_pays(const LogDensity *ld, double draws);
/* ld_backend for a compiled run whose draws the engine interprets (why). */
const char *ld_backend_draws_interpreted(const LogDensity *ld, const char *why);
/* Is a run of `evals` evaluations too short to repay the full pipeline's
 * extra compile (jit_compile's quick)?  Counts only, as ld_jit_pays. */
bool ld_jit_quick(const LogDensity *ld, double evals);
/* ld_shared(in, true, d), compiled the quick way when quick; a program
 * already compiled keeps the way it was compiled. */
LogDensity *ld_shared_jit(const Interp *in, bool quick, Diag *d);
void ld_shared_free(const Interp *in);
/* New data for the same program: from's shared log densities are released,
 * except the compiled code (its own, or the one it reused), which passes to
 * to as the donor: ld_shared(to, true) takes it without compiling when to's
 * data have the same shapes and ints (ld_use_jit_of), else compiles.  One
 * donor a program, the last shapes compiled: amortized inference over many
 * data sets of one shape compiles once.  to NULL: everything is released. */
void ld_shared_pass(const Interp *from, const Interp *to);
/* Release compiled code (the LogDensity itself is collected memory). */
void ld_free(LogDensity *ld);
/* Latent metadata, for engines and the API. */
int ld_nlatents(const LogDensity *ld);
const char *ld_latent_name(const LogDensity *ld, int k); /* its address */

#endif
