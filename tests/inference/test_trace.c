/* test_trace.c — traces and the recording/replaying handler, driven directly
 * (no interpreter): simulate, reuse of still-valid values, fresh draws when the
 * family, shape or support changed, the proposal at the target address,
 * observations and factors, site bookkeeping and the lightweight-MH acceptance
 * arithmetic. Expected log densities are written out from the formulas. */
#include <math.h>
#include <string.h>

#include "inference/trace.h"
#include "tests/tap.h"

static const double LOG_SQRT_2PI = 0.91893853320467274178;

static double normal_lpdf(double x, double mu, double sd) {
  return -LOG_SQRT_2PI - log(sd) - (x - mu) * (x - mu) / (2 * sd * sd);
}

static DistCall mkcall(const char *fam, int np, const double *p, Type t, int nsizes,
                       const int *sizes, ConKind con, double lo, double hi) {
  DistCall dc;
  char err[256] = "";
  Value *pv = gc_alloc(sizeof(Value) * 4);
  for (int i = 0; i < np; i++) pv[i] = val_real(p[i]);
  const DistFamily *f = dist_lookup(fam);
  if (!f || !dist_call_init(&dc, f, np, pv, con, lo, hi, t, nsizes, sizes, err, sizeof err)) {
    tap_diag("dist_call_init(%s) failed: %s", fam, err);
    memset(&dc, 0, sizeof dc);
  }
  return dc;
}

static DistCall scalar_call(const char *fam, double a, double b) {
  double p[2] = {a, b};
  return mkcall(fam, 2, p, ty_make(TY_REAL, 0), 0, NULL, CON_NONE, -INFINITY, INFINITY);
}

static const SrcPos P0 = {"t.ppl", 1, 1};

static bool fixed_propose(void *ctx, const DistCall *dc, Value old, Rng *r, Value *out,
                          double *lq, char *err, size_t errsz) {
  *out = val_real(*(double *)ctx);
  *lq = 0.125;
  return true;
}

static void test_values(void) {
  int s23[2] = {2, 3};
  Value a = trace_value_new(ty_make(TY_REAL, 2), 2, s23);
  tap_ok(a.k == V_ARR && a.a->n == 2 && a.a->e[1].k == V_ARR && a.a->e[1].a->n == 3 &&
             a.a->e[1].a->e[2].k == V_REAL,
         "value_new real[2,3] has nested arrays of reals");
  tap_ok(trace_value_has_shape(a, ty_make(TY_REAL, 2), 2, s23), "shape real[2,3] matches");
  int s32[2] = {3, 2};
  tap_ok(!trace_value_has_shape(a, ty_make(TY_REAL, 2), 2, s32), "shape real[3,2] does not");
  tap_ok(!trace_value_has_shape(a, ty_make(TY_INT, 2), 2, s23), "int[2,3] does not");
  trace_value_set(&a, 4, 7.5); /* row-major: a[2][2] */
  tap_ok(a.a->e[1].a->e[1].r == 7.5 && trace_value_get(a, 4) == 7.5, "set/get row-major arrays");

  Value m = trace_value_new(ty_make(TY_MATRIX, 0), 2, s23);
  tap_ok(m.k == V_MAT && m.t->rows == 2 && m.t->cols == 3, "value_new matrix[2,3]");
  trace_value_set(&m, 3, 1.25); /* column-major: m[2,2] */
  tap_ok(m.t->d[1 * 2 + 1] == 1.25, "set matrix element in column-major order");
  int s4 = 4;
  Value v = trace_value_new(ty_make(TY_VECTOR, 0), 1, &s4);
  tap_ok(trace_value_has_shape(v, ty_make(TY_VECTOR, 0), 1, &s4), "vector[4] shape");
  tap_ok(!trace_value_has_shape(v, ty_make(TY_ROWVEC, 0), 1, &s4), "vector is not row_vector");
  Value i = trace_value_new(ty_make(TY_INT, 1), 1, &s4);
  trace_value_set(&i, 2, 5);
  tap_ok(i.a->e[2].k == V_INT && i.a->e[2].i == 5, "set writes ints into int arrays");
  tap_ok(isnan(trace_value_get(i, 4)), "get out of range is NaN");
  Value r = val_real(1);
  trace_value_set(&r, 0, 2.5);
  tap_ok(r.k == V_REAL && r.r == 2.5, "set replaces a scalar value");
}

static void test_simulate_and_replay(void) {
  Rng rng;
  rng_seed(&rng, 42, 0);
  Diag d;
  diag_init(&d);
  TraceHandler th;
  trace_handler_init(&th, &rng, NULL, NULL, NULL, NULL);
  DistCall n01 = scalar_call("normal", 0, 1);
  Value out;
  tap_ok(th.h.sample(&th.h, "mu", &n01, &out, P0, &d) == HR_CONTINUE, "sample continues");
  double mu = out.r;
  int s3 = 3;
  double p01[2] = {0, 1};
  DistCall nv = mkcall("normal", 2, p01, ty_make(TY_VECTOR, 0), 1, &s3, CON_NONE, -INFINITY,
                       INFINITY);
  th.h.sample(&th.h, "eta", &nv, &out, P0, &d);
  Value eta = out;
  DistCall unif = scalar_call("uniform", 0, 1);
  th.h.sample(&th.h, "u", &unif, &out, P0, &d);
  double u = out.r;
  DistCall obs = scalar_call("normal", 0.5, 2);
  tap_ok(th.h.observe(&th.h, &obs, val_real(1.0), P0, &d) == HR_CONTINUE, "observe continues");
  th.h.factor(&th.h, -0.25, P0, &d);
  Trace *t = trace_handler_finish(&th);

  double lp_eta = 0;
  for (int k = 0; k < 3; k++) lp_eta += normal_lpdf(eta.t->d[k], 0, 1);
  tap_ok(t->n == 3, "three choices recorded");
  tap_streq(t->c[0].addr, "mu", "execution order: mu first");
  tap_near(t->c[0].lp, normal_lpdf(mu, 0, 1), 1e-12, "lp of mu");
  tap_near(t->c[1].lp, lp_eta, 1e-12, "lp of eta (sum over elements)");
  tap_near(t->c[2].lp, 0, 1e-12, "lp of u under uniform(0,1)");
  tap_near(t->logprior, normal_lpdf(mu, 0, 1) + lp_eta, 1e-12, "log prior");
  tap_near(t->loglik, normal_lpdf(1.0, 0.5, 2) - 0.25, 1e-12, "log-likelihood: observe + factor");
  tap_near(th.fresh_lp, t->logprior, 1e-12, "every choice of a simulation is fresh");
  tap_ok(t->c[0].fresh && t->c[1].fresh && t->c[0].continuous, "choices flagged fresh, continuous");
  tap_ok(trace_find(t, "eta") == &t->c[1] && trace_find(t, "nope") == NULL, "address lookup");
  tap_ok(t->c[1].nsites == 3 && t->c[1].unit_len == 1 && t->nsites == 5,
         "sites: one per scalar element (1 + 3 + 1)");
  tap_ok(t->c[1].val.t != eta.t, "the trace keeps its own copy of container values");

  /* replay: mu under new parameters is reused and rescored; eta changes shape;
     u falls outside the new support; a new address appears */
  TraceHandler r;
  trace_handler_init(&r, &rng, t, NULL, NULL, NULL);
  DistCall n12 = scalar_call("normal", 1, 2);
  r.h.sample(&r.h, "mu", &n12, &out, P0, &d);
  tap_ok(out.r == mu, "replay reuses a valid value");
  int s4 = 4;
  DistCall nv4 = mkcall("normal", 2, p01, ty_make(TY_VECTOR, 0), 1, &s4, CON_NONE, -INFINITY,
                        INFINITY);
  r.h.sample(&r.h, "eta", &nv4, &out, P0, &d);
  tap_ok(out.k == V_VEC && out.t->rows == 4, "shape change: fresh value of the new shape");
  DistCall unif2 = scalar_call("uniform", 0, u / 2);
  r.h.sample(&r.h, "u", &unif2, &out, P0, &d);
  tap_ok(out.r > 0 && out.r < u / 2, "value outside the new support is redrawn inside it");
  DistCall cau = scalar_call("cauchy", 0, 1);
  r.h.sample(&r.h, "w", &cau, &out, P0, &d);
  Trace *t2 = trace_handler_finish(&r);
  tap_ok(!t2->c[0].fresh && t2->c[1].fresh && t2->c[2].fresh && t2->c[3].fresh,
         "fresh flags: reused mu, fresh eta, u, w");
  tap_near(t2->c[0].lp, normal_lpdf(mu, 1, 2), 1e-12, "reused value rescored under new params");
  tap_near(r.fresh_lp, t2->c[1].lp + t2->c[2].lp + t2->c[3].lp, 1e-12,
           "fresh_lp sums the fresh choices");
  tap_near(trace_stale_lp(t, t2, NULL), t->c[1].lp + t->c[2].lp, 1e-12,
           "stale: old choices not reused (eta, u)");
  tap_near(trace_stale_lp(t, t2, "u"), t->c[1].lp, 1e-12, "stale excludes the target");

  /* family change at the same address */
  TraceHandler r2;
  trace_handler_init(&r2, &rng, t, NULL, NULL, NULL);
  r2.h.sample(&r2.h, "mu", &cau, &out, P0, &d);
  Trace *t3 = trace_handler_finish(&r2);
  tap_ok(t3->c[0].fresh, "family change: fresh draw");
  tap_near(trace_stale_lp(t, t3, NULL), t->logprior, 1e-12, "all old choices stale");

  /* proposal at the target */
  double prop = 0.5;
  TraceHandler pr;
  trace_handler_init(&pr, &rng, t, "mu", fixed_propose, &prop);
  pr.h.sample(&pr.h, "mu", &n01, &out, P0, &d);
  tap_ok(out.r == 0.5 && pr.target_seen && pr.log_q_ratio == 0.125,
         "target: proposed value and its log q ratio");
  pr.h.sample(&pr.h, "eta", &nv, &out, P0, &d);
  pr.h.sample(&pr.h, "u", &unif, &out, P0, &d);
  pr.h.observe(&pr.h, &obs, val_real(1.0), P0, &d);
  pr.h.factor(&pr.h, -0.25, P0, &d);
  Trace *t4 = trace_handler_finish(&pr);
  tap_ok(!t4->c[0].fresh && pr.fresh_lp == 0, "target is not fresh; nothing else fresh");
  tap_near(t4->c[0].lp, normal_lpdf(0.5, 0, 1), 1e-12, "target scored under its DistCall");
  double want = normal_lpdf(0.5, 0, 1) - normal_lpdf(mu, 0, 1) + 0.125;
  tap_near(trace_mh_log_accept(t, t4, "mu", pr.log_q_ratio, pr.fresh_lp), want, 1e-12,
           "MH log acceptance, fixed structure: joint ratio + q ratio");
  /* structure change: eta changes shape, w appears, u is kept */
  TraceHandler r5;
  trace_handler_init(&r5, &rng, t, NULL, NULL, NULL);
  r5.h.sample(&r5.h, "mu", &n12, &out, P0, &d);
  r5.h.sample(&r5.h, "eta", &nv4, &out, P0, &d);
  r5.h.sample(&r5.h, "u", &unif, &out, P0, &d);
  r5.h.sample(&r5.h, "w", &cau, &out, P0, &d);
  Trace *t5 = trace_handler_finish(&r5);
  double a2 = trace_mh_log_accept(t, t5, "mu", 0.3, r5.fresh_lp);
  double want2 = trace_logjoint(t5) - trace_logjoint(t) + 0.3 + log(5.0) - log(7.0) +
                 t->c[1].lp - (t5->c[1].lp + t5->c[3].lp);
  tap_near(a2, want2, 1e-12, "MH log acceptance with fresh/stale and |sites| terms");
  /* in t2, u was redrawn inside (0, u/2), which the reverse move would keep */
  tap_ok(trace_mh_log_accept(t, t2, "mu", 0, r.fresh_lp) == -INFINITY,
         "rejected when the reverse move could not regenerate the old value");
  t4->loglik = -INFINITY;
  tap_ok(trace_mh_log_accept(t, t4, "mu", 0, 0) == -INFINITY, "-inf joint: rejected");
  t4->loglik = NAN;
  tap_ok(trace_mh_log_accept(t, t4, "mu", 0, 0) == -INFINITY, "NaN joint: rejected");
}

static void test_sites_and_kinds(void) {
  Rng rng;
  rng_seed(&rng, 7, 0);
  Diag d;
  diag_init(&d);
  TraceHandler th;
  trace_handler_init(&th, &rng, NULL, NULL, NULL, NULL);
  Value out;
  int s3 = 3, s0 = 0, s2 = 2;
  double p01[2] = {0, 1};
  DistCall a = mkcall("normal", 2, p01, ty_make(TY_VECTOR, 0), 1, &s3, CON_NONE, -INFINITY,
                      INFINITY);
  DistCall b = mkcall("normal", 2, p01, ty_make(TY_VECTOR, 0), 1, &s0, CON_NONE, -INFINITY,
                      INFINITY);
  DistCall c = mkcall("normal", 2, p01, ty_make(TY_REAL, 1), 1, &s2, CON_NONE, -INFINITY,
                      INFINITY);
  th.h.sample(&th.h, "a", &a, &out, P0, &d);
  th.h.sample(&th.h, "b", &b, &out, P0, &d);
  th.h.sample(&th.h, "c", &c, &out, P0, &d);
  /* half-normal: declared lower bound truncates normal */
  DistCall hn = mkcall("normal", 2, p01, ty_make(TY_REAL, 0), 0, NULL, CON_LOWER, 0, INFINITY);
  th.h.sample(&th.h, "s", &hn, &out, P0, &d);
  double s = out.r;
  double pb = 0.3;
  DistCall bern = mkcall("bernoulli", 1, &pb, ty_make(TY_INT, 0), 0, NULL, CON_NONE, -INFINITY,
                         INFINITY);
  th.h.sample(&th.h, "z", &bern, &out, P0, &d);
  tap_ok(out.k == V_INT && (out.i == 0 || out.i == 1), "bernoulli draws an int 0/1");
  Trace *t = trace_handler_finish(&th);
  tap_ok(t->nsites == 3 + 0 + 2 + 1 + 1, "site total skips the empty vector");
  int local, k;
  k = trace_site(t, 2, &local);
  tap_ok(k == 0 && local == 2, "site 2 -> a[3]");
  k = trace_site(t, 3, &local);
  tap_ok(k == 2 && local == 0, "site 3 -> c[1] (empty b has no site)");
  k = trace_site(t, 6, &local);
  tap_ok(k == 4 && local == 0, "site 6 -> z");
  const TraceChoice *cs = trace_find(t, "s");
  tap_ok(cs->con == CON_LOWER && cs->lower == 0 && s > 0, "half-normal: effective lower bound 0");
  tap_near(cs->lp, normal_lpdf(s, 0, 1) + log(2.0), 1e-12, "half-normal lp includes log 2");
  const TraceChoice *cz = trace_find(t, "z");
  tap_ok(!cz->continuous && cz->lower == 0 && cz->upper == 1, "bernoulli: discrete on {0, 1}");

  /* structured: simplex from dirichlet, one site per simplex */
  TraceHandler th2;
  trace_handler_init(&th2, &rng, NULL, NULL, NULL, NULL);
  Value alpha = val_vec(3);
  alpha.t->d[0] = 1;
  alpha.t->d[1] = 2;
  alpha.t->d[2] = 3;
  int s23[2] = {2, 3};
  DistCall dir;
  char err[256] = "";
  bool ok = dist_call_init(&dir, dist_lookup("dirichlet"), 1, &alpha, CON_NONE, -INFINITY,
                           INFINITY, ty_make(TY_VECTOR, 1), 2, s23, err, sizeof err);
  tap_ok(ok, "dirichlet call %s", err);
  if (ok) {
    th2.h.sample(&th2.h, "th", &dir, &out, P0, &d);
    Trace *t2 = trace_handler_finish(&th2);
    const TraceChoice *ct = &t2->c[0];
    tap_ok(ct->structured && ct->con == CON_SIMPLEX && ct->unit_len == 3 && ct->nsites == 2,
           "array of 2 simplexes: structured, unit 3, 2 sites");
    double sum = 0;
    for (int i = 0; i < 3; i++) sum += trace_value_get(ct->val, (size_t)(3 + i));
    tap_near(sum, 1, 1e-12, "second simplex sums to 1");
  }
}

static void test_errors(void) {
  Rng rng;
  rng_seed(&rng, 1, 0);
  Diag d;
  diag_init(&d);
  TraceHandler th;
  trace_handler_init(&th, &rng, NULL, NULL, NULL, NULL);
  Value mu = val_vec(3);
  Value p[2] = {mu, val_real(1)};
  DistCall dc;
  char err[256] = "";
  dist_call_init(&dc, dist_lookup("normal"), 2, p, CON_NONE, -INFINITY, INFINITY,
                 ty_make(TY_VECTOR, 0), 1, (int[]){3}, err, sizeof err);
  HandlerResult hr = th.h.observe(&th.h, &dc, val_vec(4), (SrcPos){"m.ppl", 9, 3}, &d);
  tap_ok(hr == HR_ERROR && d.code == DIAG_RUNTIME, "size mismatch in observe: HR_ERROR");
  tap_ok(strncmp(d.msg, "m.ppl:9:3: ", 11) == 0 && strstr(d.msg, "normal") != NULL,
         "message carries the position and the family: %s", d.msg);
  Diag d2;
  diag_init(&d2);
  TraceHandler pr;
  trace_handler_init(&pr, &rng, NULL, "mu", fixed_propose, NULL);
  DistCall n01 = scalar_call("normal", 0, 1);
  Value out;
  tap_ok(pr.h.sample(&pr.h, "mu", &n01, &out, P0, &d2) == HR_ERROR &&
             strstr(d2.msg, "internal") != NULL,
         "target without a previous value is an internal error");
}

/* Tempered stop events (smc): the stop event's density counts stop_scale
 * times and is reported untempered; the events before it count whole. */
static void test_stop_scale(void) {
  Rng rng;
  rng_seed(&rng, 7, 0);
  Diag d;
  diag_init(&d);
  TraceHandler th;
  trace_handler_init(&th, &rng, NULL, NULL, NULL, NULL);
  tap_ok(th.stop_scale == 1, "stop_scale starts at 1 (untempered)");
  th.stop_events = 2;
  th.stop_scale = 0.25;
  DistCall obs = scalar_call("normal", 0.5, 2);
  tap_ok(th.h.observe(&th.h, &obs, val_real(1.0), P0, &d) == HR_CONTINUE,
         "event 1 of 2 continues");
  tap_ok(th.h.factor(&th.h, -3.0, P0, &d) == HR_SUSPEND, "the stop event suspends");
  Trace *t = trace_handler_finish(&th);
  tap_near(t->loglik, normal_lpdf(1.0, 0.5, 2) + 0.25 * -3.0, 1e-12,
           "loglik: earlier events whole, the stop event times stop_scale");
  tap_near(th.stop_lp, -3.0, 1e-12, "stop_lp: the stop event untempered");
}

int main(void) {
  gc_init();
  test_stop_scale();
  test_values();
  test_simulate_and_replay();
  test_sites_and_kinds();
  test_errors();
  return tap_done();
}
