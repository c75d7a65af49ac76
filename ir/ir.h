/* ir.h — the typed intermediate representation every backend consumes.
 *
 * The checked AST (lang/check.c) is lowered (ir/lower.c) into structured,
 * three-address code over typed virtual registers:
 *
 *   - A function has a register file; registers are mutable slots (variables and
 *     temporaries alike), each with a static Type.  Parameters are registers
 *     0..nparams-1.
 *   - Control flow stays structured (IF / FOR / WHILE own nested blocks), which
 *     keeps the interpreter resumable with an explicit stack (SMC needs to stop at
 *     an observation and fork a particle), keeps the analyses simple, and maps
 *     directly onto LLVM basic blocks for the JIT.
 *   - Random choices, observations and factors are explicit instructions; the
 *     interpreter hands each one to the engine's handler (ir/interp.h).
 *
 * The three program blocks (data, model, generated) are lowered into one
 * function, `main`, sharing one register file, so later blocks see earlier
 * variables by register number.
 *
 * The IR is immutable once built and shared by all chains/particles/threads.
 */
#ifndef PPL_IR_H
#define PPL_IR_H

#include "../core/diag.h"
#include "../core/value.h"
#include "../core/types.h"

struct DistFamily; /* stdlib/dist.h */
struct Builtin;    /* stdlib/builtins.h */

/* The IR's operators (IrInstr.sub of IR_UNARY / IR_BINARY).  They are the
 * IR's own, not the parser's: the lowering maps the AST's operators onto them
 * (&& and || become IR_IF; unary + disappears). */
typedef enum IrOp {
  OP_NONE = 0,
  OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_POW, /* + - * / % ^ */
  OP_EMUL, OP_EDIV, OP_IDIV,                      /* .* ./ %/% */
  OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
  OP_AND, OP_OR,                                  /* on bools, where not short-circuited */
  OP_NEG, OP_NOT, OP_PLUS, OP_TRANSPOSE,
} IrOp;

/* The operator's spelling in the language ("+", "%/%", "'"): for the IR
 * printer and messages. */
const char *ir_op_name(IrOp op);

typedef enum {
  /* dst = imm (a constant Value of dst's type) */
  IR_CONST,
  /* dst = args[0], containers deep-copied (value semantics), int->real
     promotion when dst is real and the source int, real[] <-> vector conversion
     when the types differ that way */
  IR_MOVE,
  /* dst = op args[0];  sub: OP_NEG, OP_NOT, OP_TRANSPOSE (IrOp) */
  IR_UNARY,
  /* dst = args[0] op args[1];  sub: OP_ADD ... OP_OR except OP_AND/OP_OR, which
     are lowered to IR_IF for short-circuiting.  Broadcasting of a scalar over
     a vector/matrix/row vector, elementwise .* ./, matrix products with *,
     integer arithmetic on ints, string + string concatenation, comparisons of
     numbers and strings (== != on strings). */
  IR_BINARY,
  /* dst = builtin(args...); dst = -1 when the builtin returns void (print) */
  IR_BUILTIN,
  /* dst = funcs[callee](args...); dst = -1 for void functions */
  IR_CALL,
  /* dst = args[0][idx...] */
  IR_INDEX,
  /* register dst is updated in place: dst[idx...] = args[0]  (dst is a variable
     register; the interpreter makes it unshared before writing) */
  IR_STORE,
  /* dst = {args...}: array literal; element type = dst type minus one dim */
  IR_ARRAY,
  /* dst = [args...]: row vector of scalars, or matrix from row vectors */
  IR_ROWVEC,
  /* dst = a new value of dst's type with the sizes in `sizes` (array dims first,
     then vector length / matrix rows, cols): reals are NaN, ints 0, bools false,
     strings "" -- a declaration without initializer */
  IR_DECL,
  /* dst = data variable `name`, of dst's type with the sizes in `sizes`, checked
     against constraint `con` (only in the data part of main) */
  IR_DATA,
  /* dst = latent random choice: address name `name`, distribution `dist`, shape
     from dst's type and `sizes`, declared constraint `con` */
  IR_SAMPLE,
  /* observation of args[0] under `dist` (y ~ dist(...), observe(dist(...), y)).
     Where the observed value lives, for simulated data (interp_load_data_sim):
     var = the observed variable's register and nidx/idx its single indices
     (y[n], y[i, j]) when the observed expression is a variable or such an
     element of one; var = -1 otherwise. */
  IR_OBSERVE,
  /* add args[0] (a real) to the log weight: factor(x), target += x */
  IR_FACTOR,
  /* hard constraint args[0] (bool): false means log weight -inf */
  IR_CONDITION,
  /* if (args[0]) then_b else else_b */
  IR_IF,
  /* for (var in args[0] : args[1]) body  -- ints, inclusive, var is an int register.
     Loops marked addressed (always for `for`) contribute their index to the
     addresses of the latents inside them.  A plate (`plate (i in a:b, batch = B)`)
     has `name` set (its loop variable's) and, with a batch size, nargs 3 and
     args[2] = B: a handler with plate() may then run it over a subset of the
     indices (interp.h); otherwise it is an ordinary loop. */
  IR_FOR,
  /* while: run cond_b, test register cond; if true run body and repeat */
  IR_WHILE,
  IR_BREAK,
  IR_CONTINUE,
  /* return args[0] (nargs 0 for void) */
  IR_RETURN,
  /* reject(args...): runtime error with the printed arguments as message */
  IR_REJECT,
  /* print(args...): prints the arguments separated by nothing, then newline */
  IR_PRINT,
  /* dst = ode_rk45 / ode_rk45_tol: the solution of y' = funcs[callee](t, y,
     args[6..]) at the output times.  args: y0 (vector), t0 (real), ts (real[]),
     rel_tol, abs_tol (reals), max_num_steps (int), then the extra arguments
     converted to the function's parameter types; the plain ode_rk45 gets
     Stan's default tolerances as constants (sub is 1 for ode_rk45_tol, which
     only messages use).  dst is a vector[]; on a tape its
     reals carry nodes with the forward sensitivities as partials.  The
     function is deterministic (the checker makes sure). */
  IR_ODE,
  /* dst = learnable parameter `name` (`param T x [= init];`, top level of the
     model block): the handler's param() gives its value; args[0] (nargs 1)
     is the initial value, else zero on the unconstrained scale of constraint
     `con` (0; lower + 1; upper - 1; the middle of [lower, upper]); shape from
     dst's type and `sizes` (none: the initial value's).
     A network param (dst of type network, `param network f = mlp(...)`): no
     args; `sizes` are the layers' sizes (in, hidden..., out) and imm is
     val_int(act | out_act << 8) (stdlib/nn.h's NnAct); its value is the flat
     weight vector, initially nn_mlp_init's.
     A flow param (dst of type flow, `param flow q = realnvp(D, layers,
     hidden)`): no args; `sizes` are D, layers and hidden; its value is the
     flat weight vector of stdlib/realnvp.h, initially rnvp_init's.  flow(q)
     in a SAMPLE/OBSERVE is the family dist_flow with params q and the three
     size registers */
  IR_PARAM,
  /* dst = network args[0] applied to args[1] (a vector or row_vector: a
     vector; a matrix: a matrix, its rows a batch); args[2..] and imm repeat
     the network's IR_PARAM sizes and activations */
  IR_NET,
} IrOpcode;

/* One index position in IR_INDEX / IR_STORE. Registers are ints (or an int
   array for IX_MULTI); -1 means open. */
typedef enum {
  IX_SINGLE, /* [i]       lo */
  IX_RANGE,  /* [lo:hi]   lo or -1, hi or -1 (both inclusive, 1-based) */
  IX_ALL,    /* [:] */
  IX_MULTI,  /* [idxs]    lo = register of an int array */
} IrIndexKind;

typedef struct IrIndex {
  uint8_t kind;
  int lo, hi;
} IrIndex;

typedef struct IrBlock {
  int n;
  struct IrInstr *ins;
} IrBlock;

typedef struct IrDist {
  const struct DistFamily *fam;
  int nparams;
  int *params; /* registers */
} IrDist;

typedef struct IrCon {
  uint8_t kind; /* ConKind */
  int lower, upper; /* registers, or -1 */
} IrCon;

typedef struct IrInstr {
  uint8_t op;  /* IrOpcode */
  uint8_t sub; /* IR_UNARY/IR_BINARY: IrOp */
  SrcPos pos;
  int dst;     /* destination register, -1 if none */
  int nargs;
  int *args;   /* operand registers */
  /* op-specific parts (only the ones the op uses are set) */
  Value imm;                          /* IR_CONST */
  const struct Builtin *builtin;      /* IR_BUILTIN */
  int callee;                         /* IR_CALL, IR_ODE: index into IrProgram.funcs */
  int nidx; IrIndex *idx;             /* IR_INDEX, IR_STORE, IR_OBSERVE */
  const char *name;                   /* IR_DATA, IR_SAMPLE, IR_PARAM: variable name */
  IrDist dist;                        /* IR_SAMPLE, IR_OBSERVE */
  IrCon con;                          /* IR_DATA, IR_SAMPLE, IR_PARAM (and IR_DECL, informative) */
  int nsizes; int *sizes;             /* IR_DECL, IR_DATA, IR_SAMPLE, IR_PARAM: size registers */
  IrBlock then_b, else_b;             /* IR_IF */
  int var;                            /* IR_FOR: loop variable register; IR_OBSERVE: see there */
  IrBlock body;                       /* IR_FOR, IR_WHILE */
  IrBlock cond_b; int cond;           /* IR_WHILE: block computing register `cond` */
} IrInstr;

typedef struct IrFunc {
  const char *name;
  SrcPos pos;
  int nparams;        /* parameters are registers 0..nparams-1 */
  Type ret;           /* TY_VOID for procedures */
  int nregs;
  Type *regtypes;     /* nregs */
  const char **regnames; /* nregs; source name or NULL for temporaries */
  IrBlock body;
  bool stochastic;    /* contains (or calls something that contains) SAMPLE/OBSERVE/FACTOR/CONDITION */
} IrFunc;

/* Where an output variable is reported: the user-visible quantities of a draw. */
typedef enum { OUT_LATENT, OUT_DERIVED, OUT_GENERATED } IrOutKind;

typedef struct IrOutput {
  const char *name; /* source name */
  int reg;          /* register of main */
  Type type;
  IrOutKind kind;   /* latent (declared with ~), deterministic model variable, generated */
} IrOutput;

typedef struct IrProgram {
  const char *file;
  int nfuncs;
  IrFunc *funcs;     /* user functions */
  IrFunc main;       /* body unused; the three blocks below share main's registers */
  IrBlock data_b;    /* IR_DATA reads and data-only computations */
  IrBlock model_b;
  IrBlock gen_b;
  /* The guide block (variational inference): its own block of main over the
     same registers.  It reads the data registers; its variables have
     registers of their own (the checker keeps the model's out of its scope),
     and none of them is an output.  interp_start_guide runs it alone. */
  IrBlock guide_b;
  bool has_guide;    /* the program has a guide block (possibly empty) */
  int noutputs;
  IrOutput *outputs; /* top-level model variables (latents, derived) then generated,
                        in declaration order */
} IrProgram;

/* Lower a checked AST (see lang/check.h) to IR. Never fails on a checked AST
 * except for internal errors. */
struct CheckedProgram;
IrProgram *ir_lower(const struct CheckedProgram *cp, Diag *d);

/* User-function calls inlined (ir/inline.c), for the JIT: a new program whose
 * data, model and generated blocks contain no IR_CALL (arguments moved into
 * fresh copies of the callee's registers, appended to main's register file;
 * main's registers, outputs and funcs unchanged).  Latents inside inlined
 * functions keep their execution order but not the interpreter's addresses,
 * so the result is not for the address-based engines.  NULL when a function
 * is recursive, returns early or makes the program too big: *why (a GC
 * string) says so with the position, "model.ppl:3:5: recursive function
 * 'fib' cannot be inlined". */
IrProgram *ir_inline_calls(const IrProgram *p, const char **why);

/* Readable listing for `ppl ir`. */
char *ir_print(const IrProgram *p);
/* The program's identity for files trained on it (stdlib/safetensors.h's
 * model_hash): FNV-1a 64 of ir_print's listing, which holds no source
 * positions, so comments, whitespace and layout do not change it while any
 * change to what the program computes does. */
uint64_t ir_program_hash(const IrProgram *p);

/* Does the instruction itself (not the blocks it holds) read register r?  A
 * partial STORE reads its destination (it keeps the rest).  (ir/analysis.c) */
bool ir_instr_reads_here(const IrInstr *in, int r);

/* ---- structural analysis (ir/analysis.c), printed by `ppl check` ---- */

typedef enum { LK_CONTINUOUS, LK_DISCRETE, LK_STRING } LatentKind;

typedef struct IrLatentInfo {
  const char *name;     /* address name of the SAMPLE */
  SrcPos pos;
  LatentKind kind;
  ConKind con;          /* effective constraint: declared ∩ family support */
  const char *support;  /* human readable: "real", "(0, inf)", "[0, 1]", "simplex", "{0, 1}", "int >= 0" */
  const char *family;   /* distribution name */
  bool in_loop;         /* inside a for/while: one address per iteration */
  bool in_function;     /* inside a user function: the address carries the call path */
  bool fixed_size;      /* number of scalars known once data is loaded */
} IrLatentInfo;

typedef struct IrObsInfo {
  SrcPos pos;
  const char *what;     /* "y ~ normal", "observe(bernoulli)", "factor", "condition" */
  bool in_loop;
  bool depends_on_latent_control; /* inside control flow whose condition depends on a latent */
} IrObsInfo;

typedef struct IrParamInfo {
  const char *name;     /* `param T name` (also its address) */
  SrcPos pos;
  const char *type;     /* "real", "vector", "matrix[]", ... */
  const char *support;  /* "real", "(0, inf)", "(-1, s)" */
  bool has_init;        /* declared with '=' (else zero on the unconstrained scale) */
} IrParamInfo;

typedef struct IrAnalysis {
  bool fixed_structure;   /* the set and shapes of latents cannot change between runs */
  const char *dynamic_reason; /* why not, with a position: "model.ppl:7:5: while loop whose condition depends on latent 'x'" */
  bool all_continuous;    /* every latent continuous (NUTS/HMC/ADVI/JIT candidates) */
  bool has_discrete;
  bool has_string;
  bool interleaved_observations; /* observations inside loops between latents (SMC-friendly) */
  int nlatents;
  IrLatentInfo *latents;
  int nobs;
  IrObsInfo *obs;
  int nparams;          /* learnable parameters (`param`): not latents; engines that
                           do not optimise them hold them at their initial values */
  IrParamInfo *params;
  bool has_guide;       /* the program has a guide block (engine svi) */
  /* Added by issue 14: draws from or observes a language model (the lm and
     lm_next families, stdlib/lm_family.h), first at lm_pos */
  bool has_lm;
  SrcPos lm_pos;
  /* the dependency graph (read it through ir_dep_*): per node, see there */
  int *dep_npar, *dep_nch, *dep_nmb;
  int **dep_par, **dep_ch, **dep_mb;
  bool *dep_self;
} IrAnalysis;

IrAnalysis *ir_analyze(const IrProgram *p);
/* The analysis of the guide block (IrProgram.guide_b) as a program of its
 * own: its latents (the guide's choices, matched by address to the model's)
 * and its params; NULL without a guide. */
IrAnalysis *ir_analyze_guide(const IrProgram *p);

/* The latents' dependency graph, computed statically from the IR's data and
 * control flow (conservative: an edge may be spurious, none is missing).
 * Nodes: latent i is node i (IrAnalysis.latents order), observation j (obs
 * order: ~, observe, factor, condition) is node nlatents + j.  One node per
 * declaration: a latent declared in a loop (x[t]) is one node, and a container
 * latent is one node.  Each call returns the number of nodes and sets *out to
 * a sorted list owned by the analysis.
 *   parents:  latents whose values the node's distribution (parameters, sizes,
 *             bounds), its observed value, or whether and how often it runs
 *             (the control flow around it) depend on; the node itself left out;
 *   children: nodes (latents and observations) that have this latent as a
 *             parent (none for an observation);
 *   blanket:  the Markov blanket of a latent: its parents, its latent
 *             children, and the other latent parents of all its children
 *             (none for an observation). */
int ir_dep_parents(const IrAnalysis *a, int node, const int **out);
int ir_dep_children(const IrAnalysis *a, int node, const int **out);
int ir_dep_blanket(const IrAnalysis *a, int node, const int **out);
/* Does a latent depend on earlier occurrences of itself (x[t] on x[t-1]),
 * which a one-node-per-declaration graph cannot show as an edge? */
bool ir_dep_self(const IrAnalysis *a, int node);
/* Text for `ppl check --deps`: one row per latent and observation. */
char *ir_deps_print(const IrProgram *p, const IrAnalysis *a);
/* The latent whose value is the parameter named `pname` ("sigma") of the
 * distribution of the `~` or latent declaration at `pos`, directly or as one
 * of its elements: what a rejection "normal: sigma must be positive" at pos
 * is about, when that latent has no lower bound (a bounded one can only
 * reach its bound by underflow).  NULL when the parameter is computed some
 * other way. */
const char *ir_param_latent(const IrProgram *p, SrcPos pos, const char *pname);
/* Text for `ppl check`; `unconstrained_size` is -1 when unknown (no data). */
char *ir_analysis_print(const IrProgram *p, const IrAnalysis *a, long unconstrained_size);

#endif
