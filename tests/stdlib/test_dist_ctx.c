/* test_dist_ctx.c — families with a context (DistFamily.ctx) and the
 * registries that hold them (stdlib/dist.h), below the public API.
 *
 * Two instances of one scalar family and of one whole-value family differ
 * only in their context (a scale): each computes with its own, through the
 * generic layer (dist_lpdf_value, dist_lpdf_grad1, dist_lpdf_value_ad on a
 * tape, dist_rng_value), checked against the built-in normal at that scale.
 * Two registries holding different families under one name never see each
 * other's; both see the built-in table; names already taken are refused.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stdlib/ad.h"
#include "stdlib/dist.h"
#include "tap.h"

typedef struct Scale {
  double sd;
} Scale;

/* scalar: normal(x | mu, ctx->sd) */
static double s_lpdf(void *ctx, double x, const double *p) {
  const Scale *s = ctx;
  double q[2] = {p[0], s->sd};
  return dist_lookup("normal")->lpdf1(x, q);
}
static double s_lpdf_grad(void *ctx, double x, const double *p, double *dx, double *dp) {
  const Scale *s = ctx;
  double q[2] = {p[0], s->sd}, dq[2];
  double lp = dist_lpdf_grad1(dist_lookup("normal"), x, q, dx, dq);
  dp[0] = dq[0];
  return lp;
}
static double s_rng(void *ctx, Rng *r, const double *p) {
  return p[0] + ((const Scale *)ctx)->sd * rng_normal(r);
}

/* whole-value: a vector x with independent normal(x[i] | mu[i], ctx->sd) */
static bool w_lpdf(void *ctx, const Value *p, Value x, double *out, char *err, size_t errsz) {
  const Scale *s = ctx;
  if (x.k != V_VEC || p[0].k != V_VEC || x.t->rows != p[0].t->rows) {
    snprintf(err, errsz, "wnormal: sizes do not match");
    return false;
  }
  double q[2] = {0, s->sd}, t = 0;
  for (int i = 0; i < x.t->rows; i++) {
    q[0] = p[0].t->d[i];
    t += dist_lookup("normal")->lpdf1(x.t->d[i], q);
  }
  *out = t;
  return true;
}
static bool w_rng(void *ctx, Rng *r, const Value *p, Value *out, char *err, size_t errsz) {
  (void)err, (void)errsz;
  const Scale *s = ctx;
  int n = p[0].t->rows;
  *out = val_vec(n);
  for (int i = 0; i < n; i++) out->t->d[i] = p[0].t->d[i] + s->sd * rng_normal(r);
  return true;
}

static DistFamily scalar_family(Scale *s) {
  DistFamily f = {.name = "snormal", .nparams = 1, .pnames = {"mu"}, .ptype = {{TY_REAL, 0}},
                  .pdom = {PD_ANY}, .vtype = {TY_REAL, 0}, .ctx = s, .lpdf1_ctx = s_lpdf,
                  .lpdf_grad1_ctx = s_lpdf_grad, .rng1_ctx = s_rng};
  return f;
}

static DistFamily whole_family(Scale *s) {
  DistFamily f = {.name = "wnormal", .nparams = 1, .pnames = {"mu"}, .ptype = {{TY_VECTOR, 0}},
                  .pdom = {PD_CUSTOM}, .vtype = {TY_VECTOR, 0}, .ctx = s, .lpdf_ctx = w_lpdf,
                  .rng_ctx = w_rng};
  return f;
}

int main(void) {
  gc_init();
  char err[256] = "";
  Scale one = {1.0}, two = {2.0};
  DistFamily sa = scalar_family(&one), sb = scalar_family(&two);
  DistFamily wa = whole_family(&one), wb = whole_family(&two);
  DistRegistry ra = {0}, rb = {0};
  tap_ok(dist_registry_add(&ra, &sa) && dist_registry_add(&ra, &wa), "registry a takes its families");
  tap_ok(dist_registry_add(&rb, &sb) && dist_registry_add(&rb, &wb), "registry b takes others of the same names");
  tap_ok(dist_find(&ra, "snormal") == &sa && dist_find(&rb, "snormal") == &sb &&
             dist_find(&ra, "wnormal") == &wa && dist_find(&rb, "wnormal") == &wb,
         "each registry finds its own");
  tap_ok(!dist_find(NULL, "snormal") && !dist_lookup("wnormal"), "the built-in table does not know them");
  tap_ok(dist_find(&ra, "normal") == dist_lookup("normal") && dist_find(&rb, "gamma") == dist_lookup("gamma"),
         "both see the built-in families");
  DistFamily dup = scalar_family(&one), clash = scalar_family(&one);
  clash.name = "normal";
  tap_ok(!dist_registry_add(&ra, &dup) && !dist_registry_add(&ra, &clash),
         "a name taken in the registry or by a built-in family is refused");

  /* scalar family: values, partials, tape, draws */
  const DistFamily *nf = dist_lookup("normal");
  double xs[3] = {0.3, -1.2, 2.5};
  Value x = val_vec(3);
  memcpy(x.t->d, xs, sizeof xs);
  Value mu = val_real(0.4);
  double la, lb, wa1, wb1;
  Value np1[2] = {mu, val_real(1.0)}, np2[2] = {mu, val_real(2.0)};
  bool ok = dist_lpdf_value(&sa, x, 1, &mu, &la, err, sizeof err) &&
            dist_lpdf_value(&sb, x, 1, &mu, &lb, err, sizeof err) &&
            dist_lpdf_value(nf, x, 2, np1, &wa1, err, sizeof err) &&
            dist_lpdf_value(nf, x, 2, np2, &wb1, err, sizeof err);
  tap_ok(ok && la == wa1 && lb == wb1 && la != lb,
         "scalar: each instance scores with its own context (%.6f, %.6f) (%s)", la, lb, err);
  double dx, dp[4], rdx, rdp[4], q[2] = {0.4, 2.0};
  double g1 = dist_lpdf_grad1(&sb, 0.3, q, &dx, dp), g2 = dist_lpdf_grad1(nf, 0.3, q, &rdx, rdp);
  tap_ok(g1 == g2 && dx == rdx && dp[0] == rdp[0], "scalar: dist_lpdf_grad1 passes the context");
  Tape *t = tape_new();
  int32_t nmu = tape_var(t, 0.4);
  Value mua = val_real(0.4);
  mua.ad = nmu;
  double lp;
  int32_t node;
  ok = dist_lpdf_value_ad(&sb, t, x, 1, &mua, &lp, &node, err, sizeof err);
  double *adj = calloc((size_t)tape_size(t) + 2, sizeof(double));
  if (ok && node) tape_backward(t, node, adj);
  double want = 0;
  for (int i = 0; i < 3; i++) want += (xs[i] - 0.4) / 4.0;
  tap_ok(ok && lp == lb && fabs(adj[nmu] - want) < 1e-15,
         "scalar: on a tape, d lp / d mu = %.6f (%.6f) (%s)", adj[nmu], want, err);
  free(adj);
  Rng r;
  rng_seed(&r, 11, 0);
  double s1 = 0, s2 = 0;
  int n = 4000;
  for (int i = 0; i < n; i++) {
    Value d1, d2;
    Value z = val_real(0.0);
    dist_rng_value(&sa, &r, 1, &z, &d1, err, sizeof err);
    dist_rng_value(&sb, &r, 1, &z, &d2, err, sizeof err);
    s1 += d1.r * d1.r;
    s2 += d2.r * d2.r;
  }
  tap_ok(fabs(sqrt(s1 / n) - 1) < 0.05 && fabs(sqrt(s2 / n) - 2) < 0.1,
         "scalar: draws at each context's scale (%.3f, %.3f)", sqrt(s1 / n), sqrt(s2 / n));

  /* whole-value family */
  Value m = val_vec(3);
  for (int i = 0; i < 3; i++) m.t->d[i] = 0.1 * i;
  double wla, wlb, ra1 = 0, rb1 = 0;
  for (int i = 0; i < 3; i++) {
    double qa[2] = {0.1 * i, 1.0}, qb[2] = {0.1 * i, 2.0};
    ra1 += nf->lpdf1(xs[i], qa);
    rb1 += nf->lpdf1(xs[i], qb);
  }
  ok = dist_lpdf_value(&wa, x, 1, &m, &wla, err, sizeof err) &&
       dist_lpdf_value(&wb, x, 1, &m, &wlb, err, sizeof err);
  tap_ok(ok && wla == ra1 && wlb == rb1, "whole-value: each instance scores with its own context (%s)", err);
  Value xa2 = val_arr(2);
  xa2.a->e[0] = x;
  xa2.a->e[1] = x;
  ok = dist_lpdf_value(&wb, xa2, 1, &m, &wlb, err, sizeof err);
  tap_ok(ok && wlb == 2 * rb1, "whole-value: an array of draws is summed (%s)", err);
  s1 = s2 = 0;
  for (int i = 0; i < n; i++) {
    Value d1, d2;
    dist_rng_value(&wa, &r, 1, &m, &d1, err, sizeof err);
    dist_rng_value(&wb, &r, 1, &m, &d2, err, sizeof err);
    s1 += pow(d1.t->d[2] - 0.2, 2);
    s2 += pow(d2.t->d[2] - 0.2, 2);
  }
  tap_ok(fabs(sqrt(s1 / n) - 1) < 0.05 && fabs(sqrt(s2 / n) - 2) < 0.1,
         "whole-value: draws at each context's scale (%.3f, %.3f)", sqrt(s1 / n), sqrt(s2 / n));
  Tape *t2 = tape_new();
  ok = dist_lpdf_value_ad(&wa, t2, x, 1, &m, &lp, &node, err, sizeof err);
  tap_ok(ok && lp == wla, "whole-value: with no node to differentiate, the value (%s)", err);
  Value mn = val_vec(3);
  mn.t->ad = calloc(3, sizeof(int32_t));
  mn.t->ad[0] = tape_var(t2, 0.0);
  ok = dist_lpdf_value_ad(&wa, t2, x, 1, &mn, &lp, &node, err, sizeof err);
  tap_ok(!ok && strstr(err, "no gradient is available"), "whole-value: no gradient with a context: %s", err);
  return tap_done();
}
