/* enum.h — automatic marginalisation of finite discrete latents by
 * enumeration (issue 16), as an IR-to-IR transformation.
 *
 * A discrete latent whose support is finite and fixed once the data is
 * loaded, and whose dependents all lie in the rest of its own block (the
 * rest of its loop iteration, or of the model block), is summed out: the
 * "segment" from its choice to the end of that block is run once per value
 * of the support with its observations and factors added into acc[k], and
 * the block adds log_sum_exp(acc) to the target.  A container latent drawn
 * at once (`int z[N] ~ bernoulli(p)`) whose elements a later loop reads only
 * as z[n] in iteration n is summed element by element in that loop.
 *
 * The result is an ordinary program without the discrete choices, so the
 * log density, its gradient (interpreter and AD tape) and the JIT need
 * nothing new.  Its generated block starts with the draws pass: the model
 * block again, without the continuous choices (their registers hold the
 * draw's values) and without scoring, in which each enumerated latent is
 * drawn from its exact conditional softmax(acc) and its segment run once
 * with that value, so derived variables and the generated block see it.  A
 * latent in a loop is drawn as a choice of that conditional's family under
 * its own name (the draw handler draws discrete choices), so its address
 * and CSV columns are the ones mh writes.
 *
 * A chain (an HMM: the latent's value carried to the next iteration in a
 * local copy, or stored in an array element read back as z[t - 1]) is
 * summed by the forward algorithm, K x K a step, and drawn by forward
 * filtering, backward sampling.
 *
 * A top-level choice's segment keeps only what depends on it: constants,
 * arithmetic and continuous latents declared after it that do not depend on
 * it are moved before it.  Loop-invariant log probabilities are made before
 * their loop; log-sum-exps are scalar loops the JIT compiles natively.
 *
 * Variable elimination: a scalar's segment is the set of the rest of its
 * block that depends on it (and what that needs before it); the rest runs
 * once after its sum, so independent latents are summed one after the
 * other.  Scalars in one another's segments (b | a, c | b, ...) form a
 * group summed by variable elimination: each statement of the segment
 * depends on a subset of the group (its scope), the statements of one scope
 * and each latent's own log probability make factors, tables over their
 * scopes, and the latents are summed out one at a time in a min-fill order,
 * so a chain a -> b -> c costs K x K per factor, not K^3.  The draws pass
 * draws them backwards from the same tables (the last summed first, each
 * given those drawn).  Where a group does not fit (a member under an if or
 * in a loop of the segment, a support whose size changes with another
 * member) the inner scalar is summed inside the outer one's sum (the joint
 * factor, the product of the sizes).  A bounded int (`int<lower=a, upper=b> k ~
 * poisson(l)`) is summed over its range less the truncation's log mass.
 * Scalars under an if (a condition from the data) and in a loop in a loop
 * are summed over the rest of their branch or iteration.
 *
 * Two chains in one loop, each carried in its own local copy (a factorial
 * HMM), are one chain over their product state: K1 K2 states, (K1 K2)^2
 * terms a step (the transitions as vectors and the emissions once per
 * product state when the step is separable), drawn backwards over it.
 *
 * Not yet enumerated (the reason says so): a chain or an array inside
 * another's segment, in nested loops or under an if; latents in a while loop
 * or in a user function; continuous latents that depend on a discrete one;
 * programs with continuous latents in loops; unbounded counts. */
#ifndef PPL_ENUM_H
#define PPL_ENUM_H

#include "ir.h"

/* Above this many terms in one factor (the support's size) the program is
   not enumerated and keeps the engine it would get without enumeration. */
#define ENUM_FACTOR_LIMIT 4096

typedef struct EnumLatent {
  const char *name; /* address name of the choice */
  SrcPos pos;
  bool ok;          /* enumerated */
  const char *why;  /* why not, with a position */
  const char *cost; /* the factor's size as the source says it: "2", "K" */
  long size;        /* with data (enum_sizes): the factor's size, -1 unknown */
  const IrInstr *instr; /* its SAMPLE in the original program */
  bool chain;       /* a chain (forward algorithm): size is K x K */
  bool fused;       /* a chain whose density is one hmm_log_marginal call */
  const char *partner; /* a factorial chain (two chains in one loop, summed
                          over the product state): the other chain's name */
  int partner1;     /* its index in the plan + 1, or 0 */
  const char *within; /* summed out inside this latent's segment, or NULL */
  int parent;       /* its index in the plan, or -1 */
  long joint;       /* with data: the joint factor's size, size times the
                       sizes of the latents of sc (-1 unknown) */
  int nsc;          /* the other latents of the factor it is summed out in */
  const int *sc;    /* (their indices in the plan, in program order): its
                       enclosing sums', or under variable elimination the
                       neighbours it has when it is eliminated */
} EnumLatent;

typedef struct EnumPlan {
  int n;
  EnumLatent *lat;   /* every discrete latent of the model block, in order */
  bool all;          /* at least one, and every one enumerated */
  IrProgram *prog;   /* the marginalised program when all, else NULL */
  IrProgram *prog_marg; /* the same with the pr_ outputs (--enum-marginals): per
                        enumerated scalar, P(z = k-th value | continuous draw,
                        data); for a chain the smoothing marginal */
  long largest;      /* the largest factor's size (-1 unknown) */
  int nelim;         /* the enumerated latents in the order they are summed */
  const int *elim;   /* out (indices in lat), when any is summed in a factor
                        with others; else 0 */
  const IrProgram *src; /* the original program, or it with its calls inlined
                           when a discrete latent is in a function */
  int ndata;         /* the original program's registers (enum_sizes' data) */
} EnumPlan;

/* The plan for p (analysed as a): NULL when p has no discrete latent.  With
   a discrete latent in a user function the plan is made on p with its calls
   inlined (ir_inline_calls): those latents' draws are then addressed as the
   inlined program names them, "f/z[3]" (mh: "f[3]/z"). */
EnumPlan *enum_plan(const IrProgram *p, const IrAnalysis *a);
/* The factors' sizes from the registers after the data block (the
   original program's, interp_data_regs): fills size and largest. */
void enum_sizes(EnumPlan *pl, const Value *data_regs);
/* The enumerated latents' names, "z, s". */
const char *enum_names(const EnumPlan *pl);
/* The largest factor in words: "3", "3 x 3" for a chain's step. */
const char *enum_largest_text(const EnumPlan *pl);
/* The `ppl check` section: "enumerated:\n  z  enumerated, factor 2\n". */
char *enum_print(const EnumPlan *pl);

#endif
