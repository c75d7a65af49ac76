/* dist.h — the distribution families and the generic, vectorised layer over them.
 *
 * A family (stdlib/dist_NAME.c) keeps its log density, sampler, CDFs and
 * support side by side, and fills one DistFamily record.  Univariate families
 * give scalar kernels and let dist.c broadcast them; families with vector or
 * matrix values (dirichlet, multi_normal, lkj_corr_cholesky, ...) give whole-
 * value kernels.  Every log density is normalised (all constants included):
 * evidence estimates depend on it.
 *
 * dist.c also owns parameter checking (clear messages), truncation to declared
 * bounds (normalised with the CDFs) and the effective constraint of a latent
 * (declared constraint intersected with the family's support).
 */
#ifndef PPL_DIST_H
#define PPL_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/types.h"
#include "../core/value.h"
#include "rng.h"

/* The `lm` family has five (prompt, stop, max_tokens, model, avoid); the
   scalar kernels of dist_kernel.h take at most four. */
#define DIST_MAX_PARAMS 5

/* Domain of a scalar parameter, checked by dist.c before any kernel runs. */
typedef enum {
  PD_ANY,        /* finite real */
  PD_POS,        /* finite, > 0 */
  PD_NONNEG,     /* finite, >= 0 */
  PD_PROB,       /* in [0, 1] */
  PD_INT_NONNEG, /* integer >= 0 */
  PD_INT,        /* integer */
  PD_ANY_INF,    /* any non-NaN real, +-inf allowed (e.g. uniform bounds are not: use PD_ANY) */
  PD_CUSTOM,     /* the family's own check (vectors, matrices) */
} ParamDomain;

typedef struct DistFamily {
  const char *name;      /* "normal" */
  int nparams;
  const char *pnames[DIST_MAX_PARAMS]; /* "mu", "sigma": used in messages */
  Type ptype[DIST_MAX_PARAMS];         /* type of each parameter for ONE draw:
                                          real, int, vector, matrix, ... */
  uint8_t pdom[DIST_MAX_PARAMS];       /* ParamDomain for scalar parameters */
  Type vtype;            /* type of one draw: real, int, vector, matrix, string */
  bool discrete;         /* integer-valued */
  ConKind support_con;   /* structured support of vector/matrix draws: CON_SIMPLEX
                            (dirichlet), CON_CHOL_CORR (lkj_corr_cholesky), CON_COV
                            (wishart...), else CON_NONE */

  /* Scalar families (vtype int or real, scalar parameters): */
  /* support given the parameters: [*lo, *hi] (use +-INFINITY; for discrete
     families integer bounds). May be NULL: support is all reals (or all ints). */
  void (*support)(const double *p, double *lo, double *hi);
  double (*lpdf1)(double x, const double *p); /* log density/mass at x; -inf outside support */
  double (*rng1)(Rng *r, const double *p);
  double (*lcdf1)(double x, const double *p);  /* log P(X <= x); NULL if not provided */
  double (*lccdf1)(double x, const double *p); /* log P(X > x) */

  /* Whole-value families (anything else: vector params or values): */
  /* log density of ONE draw x (type vtype) given params p (types ptype);
     return false with a message in err for invalid parameters/shape mismatch */
  bool (*lpdf)(const Value *p, Value x, double *out, char *err, size_t errsz);
  /* one draw with the size implied by the params */
  bool (*rng)(Rng *r, const Value *p, Value *out, char *err, size_t errsz);
  /* parameter check (PD_CUSTOM params); NULL = none */
  bool (*check)(const Value *p, char *err, size_t errsz);

  /* Added by stdlib-cont (additive, last so designated initialisers elsewhere
     are unaffected): quantile function of a scalar continuous family, u in
     (0, 1); NULL if none.  dist.c uses it for truncated draws and falls back to
     numerical inversion of lcdf1/lccdf1 without it. */
  double (*qf1)(double u, const double *p);

  /* Added by stdlib-disc (additive, last): one draw of a whole-value family
     whose size the parameters do not imply (lkj_corr_cholesky(eta) needs K).
     sizes are those of ONE draw ({K, K} for a matrix, {K} for a vector; array
     dimensions stripped).  NULL = use rng.  Families that set it accept sizes
     that agree with their parameters and report a mismatch in err. */
  bool (*rng_sized)(Rng *r, const Value *p, int nsizes, const int *sizes, Value *out,
                    char *err, size_t errsz);

  /* Added by ad-dist (additive, last): gradients for reverse-mode AD.
   * grad1: partials of lpdf1 at x with respect to x (*dx; discrete families
   * may leave it alone, callers ignore it) and to each parameter (dp[i]; int
   * parameters may be left 0).  Only called where lpdf1 is finite.
   * lcdf_grad1 / lccdf_grad1: partials of lcdf1 / lccdf1 with respect to x and
   * the parameters (truncation: the normaliser depends on both).  NULL = dist.c
   * differentiates the log CDF numerically (Richardson-extrapolated central
   * differences, ~1e-10 relative) for the parameters it needs. */
  void (*grad1)(double x, const double *p, double *dx, double *dp);
  void (*lcdf_grad1)(double x, const double *p, double *dx, double *dp);
  void (*lccdf_grad1)(double x, const double *p, double *dx, double *dp);
  /* Whole-value families: like lpdf (x one draw, or the arrays of draws that
   * lpdf itself accepts), and ADDS the partials to dx[k] (one per scalar of x in
   * val_flatten order; NULL for discrete values) and dp[i][k] (one per scalar
   * of p[i] in val_flatten order; dp[i] may be NULL: not wanted).  A matrix
   * parameter read through one triangle only (multi_normal's Sigma) splits the
   * partial evenly between A[i,j] and A[j,i], as Stan does, so the sum over a
   * symmetric perturbation is the derivative. */
  bool (*lpdf_grad)(const Value *p, Value x, double *out, double *dx, double *const *dp,
                    char *err, size_t errsz);
  /* An improper family (flat): log density 0 on the support, never
   * renormalised by declared bounds, cannot be sampled. */
  bool improper;

  /* Added by issue 9 (one implementation of each kernel).
   * lpdf_grad1: the log density at x and, where it is finite, its partials
   * (*dx, dp[0..nparams)), in one call; where it is not finite the partials
   * are 0.  NULL = dist_lpdf_grad1 composes lpdf1 and grad1.  The AD path of
   * both backends calls it through dist_lpdf_grad1.
   * kernel: the density and partials as a description (stdlib/dist_kernel.h)
   * that lpdf1 / lpdf_grad1 evaluate and the JIT emits inline and vectorised;
   * NULL = the JIT calls the C kernels. */
  double (*lpdf_grad1)(double x, const double *p, double *dx, double *dp);
  const struct DistKernel *kernel;
  /* A family with state (a host's family, an `lm` family's backend): ctx is
   * passed to the *_ctx kernels, which then stand for lpdf1 / lpdf_grad1 /
   * rng1 of a scalar family, or lpdf / rng of a whole-value family (those
   * stay NULL).  Call scalar kernels through dist_lpdf1, dist_lpdf_grad1 and
   * dist_rng1, which pick the right one; dist.c does so for whole values.  A
   * whole-value family with a context has no gradient (no lpdf_grad form
   * takes one yet). */
  void *ctx;
  double (*lpdf1_ctx)(void *ctx, double x, const double *p);
  double (*lpdf_grad1_ctx)(void *ctx, double x, const double *p, double *dx, double *dp);
  double (*rng1_ctx)(void *ctx, Rng *r, const double *p);
  bool (*lpdf_ctx)(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz);
  bool (*rng_ctx)(void *ctx, Rng *r, const Value *p, Value *out, char *err, size_t errsz);
  /* Added by issue 14 (named arguments): each parameter's default as text (a
   * string parameter's value itself, an int's or real's digits), or NULL where
   * the argument is required.  Calls may then leave trailing parameters out or
   * give them by name: `lm(prompt, stop = "\n")` (lang/check.c, chk_named). */
  const char *pdefault[DIST_MAX_PARAMS];
  /* Added by issue 14: a family whose draws are made under a proposal other
   * than its density (the `lm` families' masks) gives the log importance
   * weight of a draw x made by rng_ctx, log density(x) - log proposal(x); the
   * interpreter adds it to the run as a factor after each choice it draws
   * inline (not after a value an engine provides).  NULL: 0. */
  bool (*draw_weight_ctx)(void *ctx, const Value *p, Value x, double *out, char *err,
                          size_t errsz);
  /* Added by issue 17 (s11): check's tests are also made, with the same
   * messages, by the family's lpdf, lpdf_grad and rng themselves (they need
   * the same work: multi_normal's Cholesky factor), so dist_call_init leaves
   * them to the density instead of factoring twice. */
  bool checked_by_density;
  /* Added by issue 13 (s12): which parameters support reads, as
   * DIST_SUPPORT_READS(bit i = parameter i).  dist.c then evaluates the
   * support once, not once per element, when every parameter it reads is a
   * scalar (binomial_logit(16, alpha) over 6,400 pixels reads only N).
   * 0 (not stated: a host's family) = the support may read every parameter. */
  unsigned support_reads;
} DistFamily;

#define DIST_SUPPORT_STATED (1u << 8)
#define DIST_SUPPORT_READS(mask) (DIST_SUPPORT_STATED | (unsigned)(mask))
/* Does f's support read parameter i?  (true when the family does not say) */
static inline bool dist_support_reads(const DistFamily *f, int i) {
  return !(f->support_reads & DIST_SUPPORT_STATED) || ((f->support_reads >> i) & 1u);
}

/* A scalar family's kernels, whichever form the family gives them in. */
static inline bool dist_scalar_family(const DistFamily *f) {
  return f->lpdf1 != NULL || f->lpdf1_ctx != NULL;
}
static inline double dist_lpdf1(const DistFamily *f, double x, const double *p) {
  return f->lpdf1_ctx ? f->lpdf1_ctx(f->ctx, x, p) : f->lpdf1(x, p);
}
static inline double dist_rng1(const DistFamily *f, Rng *r, const double *p) {
  return f->rng1_ctx ? f->rng1_ctx(f->ctx, r, p) : f->rng1(r, p);
}
/* Has the family partials (dist_lpdf_grad1 can run)? */
static inline bool dist_has_grad1(const DistFamily *f) {
  return f->lpdf_grad1 || f->grad1 || f->lpdf_grad1_ctx;
}
/* The log density and, where finite, its partials (0 where not): the one
 * entry point of the AD paths (dist.c, the JIT's runtime and the code it
 * calls).  Needs dist_has_grad1. */
double dist_lpdf_grad1(const DistFamily *f, double x, const double *p, double *dx, double *dp);

/* The parameter domains as data, read by dist.c's checks and emitted by the
 * JIT: v is in the domain when (!finite || v is finite), v >= lo (> lo when
 * lo_open), v <= hi (< hi when hi_open) and (!integer || v == floor(v)).
 * NaN fails every comparison, so it is outside every domain but PD_CUSTOM's. */
typedef struct DistDomain {
  double lo, hi;
  bool lo_open, hi_open, finite, integer, any; /* any: no check (PD_CUSTOM) */
} DistDomain;
const DistDomain *dist_domain(int pd);
bool dist_domain_ok(int pd, double v);

/* Families known to one program or context besides the built-in ones: a host's
 * registered families (ppl_register_family).  Lookups through a registry see
 * its families first, then the built-in table; two registries never see each
 * other's. */
typedef struct DistRegistry {
  const DistFamily **fam;
  int n, cap;
} DistRegistry;
/* Add f (kept by pointer: it must outlive the registry's users).  False when
   the name is taken in reg or by a built-in family. */
bool dist_registry_add(DistRegistry *reg, const DistFamily *f);
/* reg may be NULL: the built-in table only. */
const DistFamily *dist_find(const DistRegistry *reg, const char *name);

/* Lookup of a built-in family by name ("normal"); NULL if unknown. */
const DistFamily *dist_lookup(const char *name);
/* All families, NULL-terminated, for docs and tests. */
const DistFamily *const *dist_all(void);

/* Can a call with these argument types be vectorised over this family?
 * Scalar families accept, for each parameter, its scalar type or any container
 * of it (real[], vector, row_vector; int promotes to real).  Whole-value
 * families accept exactly their types, or arrays of them.  The value x may be
 * a draw type or a container/array of draws.  On failure writes e.g.
 * "normal: argument 2 (sigma) must be real or a container of reals, got string". */
bool dist_check_types(const DistFamily *f, int nargs, const Type *args, Type x,
                      char *err, size_t errsz);

/* A distribution applied at run time: what the interpreter hands to handlers. */
typedef struct DistCall {
  const DistFamily *fam;
  int np;
  const Value *p;   /* np parameter values */
  /* effective bounds for scalar families: declared bounds intersected with the
     support (lower = -INFINITY / upper = INFINITY when open) */
  double lower, upper;
  ConKind con;      /* effective constraint (CON_NONE, CON_LOWER, ..., CON_SIMPLEX, ...) */
  bool truncated;   /* declared bounds cut the support: density renormalised */
  /* shape of the value (for SAMPLE; for OBSERVE the observed value gives it) */
  Type type;
  int nsizes;
  int sizes[8];
  /* Added by ad-dist: tape nodes of the declared bounds (0 = constant; set by
   * the caller after dist_call_init, which zeroes them).  A node only matters
   * when its bound truncates the density. */
  int32_t lower_ad, upper_ad;
} DistCall;

/* Prepare a DistCall: checks parameter domains and broadcast sizes, computes the
 * effective bounds/constraint from the declared ones (con, lo, hi; pass
 * -INFINITY/INFINITY when absent).  Messages: "normal: sigma must be positive,
 * got -1", "normal: sizes do not match: mu has 3 elements, sigma has 4",
 * "declared bounds [5, 3] are empty". */
bool dist_call_init(DistCall *dc, const DistFamily *f, int np, const Value *p,
                    ConKind con, double lo, double hi, Type type, int nsizes,
                    const int *sizes, char *err, size_t errsz);
/* Sum of log densities of x (a draw, or a container of draws broadcast against
 * the parameters), normalised over the truncation when dc->truncated. A value
 * outside the support gives -inf, not an error. Errors: shape mismatch. */
bool dist_call_lpdf(const DistCall *dc, Value x, double *out, char *err, size_t errsz);
/* The summed draw weights (DistFamily.draw_weight_ctx) of x, a draw of dc
 * made by dist_call_rng: 0 for families that draw from their density. */
bool dist_call_draw_weight(const DistCall *dc, Value x, double *out, char *err, size_t errsz);
/* Draw a value of dc's type and sizes (truncated draws by inverse CDF or
 * rejection). */
bool dist_call_rng(const DistCall *dc, Rng *r, Value *out, char *err, size_t errsz);

/* The language's NAME_rng(params...): shape from the parameters (a scalar if
 * all are scalars, else an array of reals/ints as long as the containers). */
bool dist_rng_value(const DistFamily *f, Rng *r, int np, const Value *p, Value *out,
                    char *err, size_t errsz);
/* NAME_lpdf / NAME_lpmf(x, params...), NAME_lcdf, NAME_lccdf: summed over elements. */
bool dist_lpdf_value(const DistFamily *f, Value x, int np, const Value *p, double *out,
                     char *err, size_t errsz);
bool dist_lcdf_value(const DistFamily *f, Value x, int np, const Value *p, bool upper_tail,
                     double *out, char *err, size_t errsz);

/* ---- reverse-mode AD (added by ad-dist) ------------------------------------------------ */

typedef struct Tape Tape; /* stdlib/ad.h */

/* dist_call_lpdf with derivatives: *lp as dist_call_lpdf gives it, and *node a
 * single tape node for it whose parents are every node-carrying element of x
 * and of the parameters (Value.ad, ValTen.ad) and the bound nodes of dc, with
 * their summed partials (0 when nothing carries a node, or when *lp is not
 * finite).  Scalar families over long vectors record a short chain of nodes
 * built from fixed stack buffers: nothing is allocated per element. */
bool dist_call_lpdf_ad(const DistCall *dc, Tape *t, Value x, double *lp, int32_t *node,
                       char *err, size_t errsz);
/* A whole-value family's log density (dist_call_lpdf's) and its partials,
 * ADDED into gx (one per scalar of x, val_flatten order; NULL: not wanted)
 * and gp[i] (one per scalar of parameter i; NULL: not wanted), with no
 * tape: the JIT's runtime (ir/jit_rt.c) and dist_call_lpdf_ad share it.
 * The partials are meaningful only where *lp is finite. */
bool dist_lpdf_whole_grad(const DistCall *dc, Value x, double *lp, double *gx, double *const *gp,
                          char *err, size_t errsz);
/* NAME_lpdf / NAME_lpmf(x, params...) with derivatives (see dist_lpdf_value). */
bool dist_lpdf_value_ad(const DistFamily *f, Tape *t, Value x, int np, const Value *p,
                        double *out, int32_t *node, char *err, size_t errsz);

/* For family files: d/dp[i] of a log CDF by Richardson-extrapolated central
 * differences (relative step 1e-3, error ~1e-10 relative), for the shape
 * parameters whose CDF derivatives have no closed form (gamma's alpha, beta's
 * shapes, student_t's nu, neg_binomial_2's phi).  Positive parameters stay
 * positive. */
double dist_cdf_dparam(double (*cdf)(double, const double *), double x, const double *p, int np,
                       int i);

/* Implicit reparameterisation (Figurnov, Mohamed & Mnih 2018) of a draw x of
 * a scalar continuous family with a CDF: holding u = F(x; p) fixed, x moves
 * with the parameters as dx/dp[i] = -(dF(x; p)/dp[i]) / f(x; p).  dF/dp[i]
 * comes from the family's log-CDF partials (lcdf_grad1, which are analytic or
 * Richardson differences of the log CDF, dist_cdf_dparam) on the smaller tail,
 * so that F near 1 loses no digits.  Int parameters get 0.  false (dxdp
 * untouched) if f has no CDF, is discrete or whole-valued, or x is outside
 * the support or its density there is 0 or infinite. */
bool dist_implicit_dx(const DistFamily *f, double x, const double *p, double *dxdp);

/* Stan's default initial value for a latent drawn from dc: uniform(-2, 2) on
 * the unconstrained scale of dc's effective constraint, mapped back (lower
 * bound lo + e^u, both bounds through the inverse logit, simplex by stick-
 * breaking, ...).  Works for every family, including improper ones (flat),
 * which cannot be sampled; engines that initialise from the prior use it for
 * those.  Discrete families fall back to a draw (there is no unconstrained
 * scale). */
bool dist_call_init_value(const DistCall *dc, Rng *r, Value *out, char *err, size_t errsz);

/* For compiled code (ir/jit_rt.c), which runs the scalar families' kernels
 * over flat arrays itself: log P(lo <= X <= hi) as truncation normalises it,
 * its partials with respect to the parameters (dp[0..nparams)), and the
 * constant of ordered draws (see dist_call_lpdf). */
double dist_trunc_log_mass(const DistFamily *f, const double *p, double lo, double hi);
void dist_trunc_log_mass_grad(const DistFamily *f, const double *p, double lo, double hi,
                              double lz, double *dp);
double dist_ordered_norm(const DistCall *dc, bool params_scalar, size_t n);

#endif
