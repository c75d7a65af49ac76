/* flow.c — flow(q): the density of a Real NVP flow param
 * (`param flow q = realnvp(D, layers, hidden);`, stdlib/realnvp.h) over
 * vectors of D reals: x = T_q(eps) with eps ~ N(0, I), so
 *
 *   log p(x) = log N(T^-1(x); 0, I) - log|det dT/deps|.
 *
 * The language writes flow(q); the lowering passes the flow's weights and
 * then its layout (D, layers, hidden) as four parameters, so the family sees
 * everything the param's declaration said.  Densities run the inverse on a
 * tape of their own; the gradient with respect to x and the weights is one
 * backward sweep over it.  Engines that draw by reparameterisation (svi's
 * guides) record rnvp_forward on their own tape instead. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../dist.h"
#include "../mathfn.h"
#include "../realnvp.h"

/* The layout from p[1..3] and the weights from p[0]; false with a message. */
static bool flow_params(const Value *p, Rnvp *f, const double **w, char *err, size_t errsz) {
  for (int i = 1; i <= 3; i++)
    if (p[i].k != V_INT) {
      snprintf(err, errsz, "flow: its layout must be ints");
      return false;
    }
  if (!rnvp_make(f, p[1].i < 0 || p[1].i > RNVP_MAXDIM ? -1 : (int)p[1].i,
                 p[2].i < 0 || p[2].i > RNVP_MAXLAYERS ? -1 : (int)p[2].i,
                 p[3].i < 1 || p[3].i > 1 << 20 ? 0 : (int)p[3].i, err, errsz)) {
    char msg[256];
    snprintf(msg, sizeof msg, "flow: %s", err);
    snprintf(err, errsz, "%s", msg);
    return false;
  }
  if (p[0].k != V_VEC || (size_t)p[0].t->rows * (size_t)p[0].t->cols != f->nparams) {
    snprintf(err, errsz, "flow: q must be the flow's %zu weights, got %s of %zu", f->nparams,
             val_kind_name((ValKind)p[0].k), val_numel(p[0]));
    return false;
  }
  *w = p[0].t->d;
  return true;
}

static bool flow_check(const Value *p, char *err, size_t errsz) {
  Rnvp f;
  const double *w;
  return flow_params(p, &f, &w, err, errsz);
}

static bool flow_point(const Rnvp *f, Value x, char *err, size_t errsz) {
  if (x.k != V_VEC) {
    snprintf(err, errsz, "flow: the value must be a vector of %d reals, got %s", f->dim,
             val_kind_name((ValKind)x.k));
    return false;
  }
  if (x.t->rows != f->dim) {
    snprintf(err, errsz, "flow: q is a flow over vectors of %d reals, the value has %d", f->dim,
             x.t->rows);
    return false;
  }
  return true;
}

/* log p(x) recorded on t, with x's and w's nodes given (0: constants). */
static AdNum flow_logp(Tape *t, const Rnvp *f, Tensor w, const AdNum *x) {
  AdNum *eps = tape_alloc_atomic(t, sizeof(AdNum) * (size_t)f->dim);
  AdNum logdet = rnvp_inverse(t, f, w, x, eps);
  AdNum sq = ad_const(0);
  for (int i = 0; i < f->dim; i++) sq = ad_add(t, sq, ad_mul(t, eps[i], eps[i]));
  return ad_sub(t, ad_scale(t, sq, -0.5), ad_add(t, logdet, ad_const(f->dim * PPL_LOG_SQRT_2PI)));
}

static bool flow_lpdf_grad(const Value *p, Value x, double *out, double *dx, double *const *dp,
                           char *err, size_t errsz) {
  Rnvp *f = gc_alloc_atomic(sizeof *f);
  const double *w;
  if (!flow_params(p, f, &w, err, errsz) || !flow_point(f, x, err, errsz)) return false;
  bool dw = dp && dp[0];
  Tape *t = tape_new();
  int np = (int)f->nparams;
  Tensor W = dw ? tensor_var(t, 1, &np, w) : tensor_const(1, &np, w);
  AdNum *xs = tape_alloc_atomic(t, sizeof(AdNum) * (size_t)f->dim);
  for (int i = 0; i < f->dim; i++) xs[i] = dx ? (AdNum){x.t->d[i], tape_var(t, x.t->d[i])}
                                              : ad_const(x.t->d[i]);
  AdNum lp = flow_logp(t, f, W, xs);
  *out = lp.v;
  if (!(dx || dw) || !isfinite(lp.v) || !lp.n) return true;
  double *adj = gc_alloc_atomic(sizeof(double) * (tape_size(t) + 1));
  tape_backward(t, lp.n, adj);
  if (dx)
    for (int i = 0; i < f->dim; i++) dx[i] += adj[xs[i].n];
  if (dw)
    for (int i = 0; i < np; i++) dp[0][i] += adj[W.node + i];
  return true;
}

static bool flow_lpdf(const Value *p, Value x, double *out, char *err, size_t errsz) {
  return flow_lpdf_grad(p, x, out, NULL, NULL, err, errsz);
}

static bool flow_rng(Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  Rnvp *f = gc_alloc_atomic(sizeof *f);
  const double *w;
  if (!flow_params(p, f, &w, err, errsz)) return false;
  Tape *t = tape_new();
  int np = (int)f->nparams;
  AdNum *eps = tape_alloc_atomic(t, sizeof(AdNum) * (size_t)f->dim);
  AdNum *x = tape_alloc_atomic(t, sizeof(AdNum) * (size_t)f->dim);
  for (int i = 0; i < f->dim; i++) eps[i] = ad_const(rng_normal(r));
  rnvp_forward(t, f, tensor_const(1, &np, w), eps, x);
  Value v = val_vec(f->dim);
  for (int i = 0; i < f->dim; i++) v.t->d[i] = x[i].v;
  *out = v;
  return true;
}

/* A declared size that is not the flow's dimension is named as such. */
static bool flow_rng_sized(Rng *r, const Value *p, int nsizes, const int *sizes, Value *out,
                           char *err, size_t errsz) {
  Rnvp f;
  const double *w;
  if (!flow_params(p, &f, &w, err, errsz)) return false;
  if (nsizes != 1 || sizes[0] != f.dim) {
    snprintf(err, errsz, "flow: q is a flow over vectors of %d reals, the variable has %d", f.dim,
             nsizes == 1 ? sizes[0] : -1);
    return false;
  }
  return flow_rng(r, p, out, err, errsz);
}

const DistFamily dist_flow = {
    .name = "flow",
    .nparams = 4,
    .pnames = {"q", "D", "layers", "hidden"},
    .ptype = {{TY_VECTOR, 0}, {TY_INT, 0}, {TY_INT, 0}, {TY_INT, 0}},
    .pdom = {PD_CUSTOM, PD_CUSTOM, PD_CUSTOM, PD_CUSTOM},
    .vtype = {TY_VECTOR, 0},
    .lpdf = flow_lpdf,
    .rng = flow_rng,
    .rng_sized = flow_rng_sized,
    .check = flow_check,
    .lpdf_grad = flow_lpdf_grad,
};
