/* test_smc.c — engine smc against exact answers (smc_reference.h, generated
 * by gen_smc_reference.py with mpmath): evidence and posteriors of a
 * dynamic-structure loop (random number of observations), the recursive
 * geometric example (generated block), a static parameter with sequential
 * observations under resample-move; every resampling scheme; determinism;
 * errors; engine pgibbs on a static mean with one latent per observation, and
 * pgibbs with ancestor sampling on the dynamic-structure loop.
 *
 * Each statistical check uses R independent SMC runs (chains): the evidence
 * is averaged on the natural scale with its standard error from the spread of
 * the runs; posterior probabilities are self-normalised within each run and
 * averaged, with the standard error from their spread.  Tolerance: 4 SE. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/resample.h"
#include "inference/trace.h"
#include "smc_reference.h"
#include "test_engines_util.h"

/* An engine option by name, as the API and CLI set it (validated). */
static void set_opt(EngineOpts *o, const char *name, const char *value) {
  Diag d;
  diag_init(&d);
  if (!engine_opts_set(o, name, value, &d)) tap_diag("set_opt: %s", d.msg);
}

static const char *dyn_src =
    "data { int K; int y[K]; }\n"
    "model {\n"
    "  int n = 0;\n"
    "  int stop = 0;\n"
    "  while (stop == 0 && n < K) {\n"
    "    n = n + 1;\n"
    "    int z ~ bernoulli(0.3);\n"
    "    y[n] ~ bernoulli(z == 1 ? 0.8 : 0.2);\n"
    "    int s ~ bernoulli(0.4);\n"
    "    stop = s;\n"
    "  }\n"
    "  int len = n;\n"
    "}\n";

/* examples/geometric_recursion.ppl */
static const char *geo_src =
    "int flips(real p) {\n"
    "  int head ~ bernoulli(p);\n"
    "  if (head == 1)\n"
    "    return 0;\n"
    "  return 1 + flips(p);\n"
    "}\n"
    "data { int<lower=0> observed; }\n"
    "model {\n"
    "  real<lower=0, upper=1> p ~ beta(1, 1);\n"
    "  int n = flips(p);\n"
    "  observed ~ poisson(n + 0.5);\n"
    "}\n"
    "generated { int tails = n; }\n";

static const char *seq_src =
    "data { int N; real y[N]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 1);\n"
    "  for (i in 1:N)\n"
    "    y[i] ~ normal(mu, 1);\n"
    "}\n";

/* Results of R runs of one output: values, log weights, log evidence. */
typedef struct Runs {
  int R, n;
  double **x, **lw, *logz;
  double *se_within; /* the Lee–Whiteley SE from each run's notes line */
} Runs;

static bool run_smc(const Interp *in, const EngineOpts *o0, int R, const char *out, Runs *rs,
                    Diag *d) {
  int oi = toutput(in, out);
  if (oi < 0) {
    tap_diag("no output %s", out);
    return false;
  }
  rs->R = R;
  rs->n = o0->draws;
  rs->x = calloc((size_t)R, sizeof(double *));
  rs->lw = calloc((size_t)R, sizeof(double *));
  rs->logz = calloc((size_t)R, sizeof(double));
  rs->se_within = calloc((size_t)R, sizeof(double));
  for (int r = 0; r < R; r++) {
    diag_init(d);
    void *st = engine_smc.init(in, o0, r, d);
    if (!st) return false;
    rs->x[r] = calloc((size_t)rs->n, sizeof(double));
    rs->lw[r] = calloc((size_t)rs->n, sizeof(double));
    for (int i = 0; i < rs->n; i++) {
      Draw dr;
      memset(&dr, 0, sizeof dr);
      if (!engine_smc.step(st, false, &dr, d)) return false;
      rs->x[r][i] = val_as_real(dr.outputs[oi]);
      rs->lw[r][i] = dr.log_weight;
    }
    if (!engine_smc.log_evidence(st, &rs->logz[r])) return false;
    const char *notes = engine_smc.chain_notes(st), *p = notes ? strstr(notes, "within-run SE ") : NULL;
    rs->se_within[r] = p ? atof(p + strlen("within-run SE ")) : NAN;
    engine_smc.free(st);
  }
  return true;
}

/* log of the mean of exp(logz) over the runs, and its delta-method SE */
static void evidence(const Runs *rs, double *est, double *se) {
  double mx = -INFINITY;
  for (int r = 0; r < rs->R; r++) mx = fmax(mx, rs->logz[r]);
  double *z = malloc(sizeof(double) * (size_t)rs->R);
  for (int r = 0; r < rs->R; r++) z[r] = exp(rs->logz[r] - mx);
  double m = tmean(rs->R, z);
  *est = mx + log(m);
  *se = tsd(rs->R, z) / sqrt((double)rs->R) / m;
  free(z);
}

/* weighted mean of f(x) within each run, then mean and SE across runs */
static void wmean(const Runs *rs, double (*f)(double, double), double arg, double *est,
                  double *se) {
  double *e = malloc(sizeof(double) * (size_t)rs->R);
  for (int r = 0; r < rs->R; r++) {
    double mx = -INFINITY, sw = 0, sf = 0;
    for (int i = 0; i < rs->n; i++) mx = fmax(mx, rs->lw[r][i]);
    for (int i = 0; i < rs->n; i++) {
      double w = exp(rs->lw[r][i] - mx);
      sw += w;
      sf += w * f(rs->x[r][i], arg);
    }
    e[r] = sf / sw;
  }
  *est = tmean(rs->R, e);
  *se = tsd(rs->R, e) / sqrt((double)rs->R);
  free(e);
}

static double f_eq(double x, double k) { return x == k; }
static double f_id(double x, double k) { return x; }
static double f_sq(double x, double k) { return (x - k) * (x - k); }

static Interp *dyn_interp(Diag *d) {
  static TData td;
  tdata_init(&td);
  tdata_add(&td, "K", val_int(DYN_K));
  tdata_add(&td, "y", tints(DYN_K, dyn_y));
  return tcompile(dyn_src, &td, d);
}

static void check_evidence(const char *what, const Runs *rs, double want) {
  double est, se;
  evidence(rs, &est, &se);
  tap_ok(se > 0 && fabs(est - want) <= 4 * se, "%s: log evidence %.4f ± %.4f, exact %.4f", what,
         est, se, want);
}

static void test_dynamic(void) {
  Diag d;
  Interp *in = dyn_interp(&d);
  if (!tap_ok(in != NULL, "dyn: compiles")) return;
  const char *why = NULL;
  const EngineVT *e = engine_select(ir_analyze(interp_program(in)), &why);
  tap_ok(e == &engine_smc && strstr(why, "dynamic structure") && strstr(why, "interleaved"),
         "dyn: the selector picks smc (%s)", why ? why : "");
  static const int schemes[] = {RESAMPLE_SYSTEMATIC, RESAMPLE_MULTINOMIAL, RESAMPLE_STRATIFIED,
                                RESAMPLE_RESIDUAL};
  for (int k = 0; k < 4; k++) {
    EngineOpts o;
    engine_opts_default(&o);
    o.draws = 500;
    set_opt(&o, "particles", "500");
    set_opt(&o, "resample", resample_name(schemes[k]));
    set_opt(&o, "ess-threshold", k == 1 ? "1" : "0.7"); /* multinomial: resample at every event */
    o.seed = 11 + (uint64_t)k;
    Runs rs;
    char what[64];
    snprintf(what, sizeof what, "dyn/%s", resample_name(schemes[k]));
    if (!tap_ok(run_smc(in, &o, 24, "len", &rs, &d), "%s: runs (%s)", what, d.msg)) continue;
    check_evidence(what, &rs, dyn_logz);
    for (int m = 1; m <= 3; m++) {
      double est, se;
      wmean(&rs, f_eq, m, &est, &se);
      tap_ok(fabs(est - dyn_len_prob[m - 1]) <= 4 * se + 1e-9,
             "%s: P(len = %d) = %.4f ± %.4f, exact %.4f", what, m, est, se, dyn_len_prob[m - 1]);
    }
  }
}

/* The within-run variance estimate (Lee & Whiteley) against the spread of
 * independent runs: with multinomial resampling at every event it is
 * unbiased for Var(Z^N) / Z^2, so its mean over the runs must match the
 * empirical relative variance (whose own relative SE is about sqrt(2 / R)). */
static void test_within_run_se(void) {
  Diag d;
  Interp *in = dyn_interp(&d);
  if (!in) return;
  EngineOpts o;
  engine_opts_default(&o);
  o.draws = 100;
  set_opt(&o, "particles", "100");
  set_opt(&o, "resample", "multinomial");
  set_opt(&o, "ess-threshold", "1");
  o.seed = 8;
  Runs rs;
  int R = 200;
  if (!tap_ok(run_smc(in, &o, R, "len", &rs, &d), "within-run SE: runs (%s)", d.msg)) return;
  double mz = 0, vz = 0, lw_rel = 0;
  for (int r = 0; r < R; r++) mz += exp(rs.logz[r] - dyn_logz) / R;
  for (int r = 0; r < R; r++) {
    double z = exp(rs.logz[r] - dyn_logz);
    vz += (z - mz) * (z - mz) / (R - 1);
    lw_rel += rs.se_within[r] * rs.se_within[r] / R;
  }
  double ratio = lw_rel / vz;
  tap_ok(ratio > 0.6 && ratio < 1.6,
         "Lee–Whiteley relative variance %.5f vs the runs' spread %.5f (ratio %.2f)", lw_rel, vz,
         ratio);
}

static void test_geometric(void) {
  Diag d;
  TData td;
  tdata_init(&td);
  tdata_add(&td, "observed", val_int(GEO_OBS));
  Interp *in = tcompile(geo_src, &td, &d);
  if (!tap_ok(in != NULL, "geo: compiles")) return;
  EngineOpts o;
  engine_opts_default(&o);
  set_opt(&o, "particles", "1000");
  o.draws = 2000; /* two runs per chain */
  o.seed = 5;
  Runs rs;
  if (!tap_ok(run_smc(in, &o, 12, "tails", &rs, &d), "geo: runs (%s)", d.msg)) return;
  check_evidence("geo", &rs, geo_logz);
  for (int n = 0; n < 4; n++) {
    double est, se;
    wmean(&rs, f_eq, n, &est, &se);
    tap_ok(fabs(est - geo_tails_prob[n]) <= 4 * se, "geo: P(tails = %d) = %.4f ± %.4f, exact %.4f",
           n, est, se, geo_tails_prob[n]);
  }
}

static int distinct(int n, const double *x) {
  double *s = malloc(sizeof(double) * (size_t)n);
  memcpy(s, x, sizeof(double) * (size_t)n);
  int k = 0;
  for (int i = 0; i < n; i++) {
    bool seen = false;
    for (int j = 0; j < k && !seen; j++) seen = s[j] == x[i];
    if (!seen) s[k++] = x[i];
  }
  free(s);
  return k;
}

static void test_resample_move(void) {
  Diag d;
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(SEQ_N));
  Value y = val_arr(SEQ_N);
  for (int i = 0; i < SEQ_N; i++) y.a->e[i] = val_real(seq_y[i]);
  tdata_add(&td, "y", y);
  Interp *in = tcompile(seq_src, &td, &d);
  if (!tap_ok(in != NULL, "seq: compiles")) return;
  EngineOpts o;
  engine_opts_default(&o);
  o.draws = 400;
  set_opt(&o, "particles", "400");
  set_opt(&o, "ess-threshold", "0.8");
  o.seed = 3;
  Runs plain, moved;
  set_opt(&o, "rejuvenate", "0"); /* the default moves static parameters */
  if (!tap_ok(run_smc(in, &o, 1, "mu", &plain, &d), "seq without moves: runs (%s)", d.msg))
    return;
  set_opt(&o, "rejuvenate", "3");
  if (!tap_ok(run_smc(in, &o, 16, "mu", &moved, &d), "seq with --rejuvenate 3: runs (%s)", d.msg))
    return;
  /* without moves, mu only takes the values of the few initial particles that
     survive; the moves spread them out again */
  int k0 = distinct(plain.n, plain.x[0]), k1 = distinct(moved.n, moved.x[0]);
  tap_ok(k1 > 2 * k0 && k1 > 9 * moved.n / 10, "seq: distinct mu values %d with moves, %d without", k1, k0);
  check_evidence("seq/rejuvenate", &moved, seq_logz);
  double est, se;
  wmean(&moved, f_id, 0, &est, &se);
  tap_ok(fabs(est - seq_mean) <= 4 * se, "seq: mean of mu %.4f ± %.4f, exact %.4f", est, se,
         seq_mean);
  wmean(&moved, f_sq, seq_mean, &est, &se);
  tap_ok(fabs(est - seq_sd * seq_sd) <= 4 * se, "seq: var of mu %.5f ± %.5f, exact %.5f", est, se,
         seq_sd * seq_sd);
}

static const char *pg_src =
    "data { int T; real y[T]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 1);\n"
    "  real x_prev = 0;\n"
    "  for (t in 1:T) {\n"
    "    real x ~ normal(mu, 1);\n"
    "    y[t] ~ normal(x, 1);\n"
    "    x_prev = x;\n"
    "  }\n"
    "  real x_last = x_prev;\n"
    "}\n";

/* pgibbs: MCMC draws; tolerances from each chain's ESS (Geyer) */
static void test_pgibbs(void) {
  Diag d;
  TData td;
  tdata_init(&td);
  tdata_add(&td, "T", val_int(PG_T));
  Value y = val_arr(PG_T);
  for (int i = 0; i < PG_T; i++) y.a->e[i] = val_real(pg_y[i]);
  tdata_add(&td, "y", y);
  Interp *in = tcompile(pg_src, &td, &d);
  if (!tap_ok(in != NULL, "pg: compiles")) return;
  tap_ok(engine_lookup("pgibbs") == &engine_pgibbs && engine_pgibbs.uses_warmup &&
             !engine_pgibbs.weighted,
         "pgibbs is registered, an MCMC engine with warmup");
  int outs[2] = {toutput(in, "mu"), toutput(in, "x_last")};
  for (int chain = 0; chain < 2; chain++) {
    TChain c;
    EngineOpts o;
    engine_opts_default(&o);
    o.chains = 1;
    o.draws = 1500;
    o.warmup = 200;
    set_opt(&o, "particles", "20");
    o.seed = 77;
    diag_init(&d);
    void *st = engine_pgibbs.init(in, &o, chain, &d);
    if (!tap_ok(st != NULL, "pg chain %d: starts (%s)", chain, d.msg)) continue;
    c.n = o.draws;
    for (int j = 0; j < 2; j++) c.x[j] = calloc((size_t)c.n, sizeof(double));
    bool ok = true;
    double acc = 0;
    for (int i = 0; ok && i < o.warmup + o.draws; i++) {
      Draw dr;
      memset(&dr, 0, sizeof dr);
      ok = engine_pgibbs.step(st, i < o.warmup, &dr, &d);
      if (!ok || i < o.warmup) continue;
      for (int j = 0; j < 2; j++) c.x[j][i - o.warmup] = val_as_real(dr.outputs[outs[j]]);
      acc += dr.stats[0];
    }
    if (!tap_ok(ok, "pg chain %d: runs (%s)", chain, d.msg)) continue;
    double m = tmean(c.n, c.x[0]), se = tmcse_mean(c.n, c.x[0]);
    tap_ok(fabs(m - pg_mu_mean) <= 4 * se, "pg chain %d: mean of mu %.4f, exact %.4f (4 mcse %.4f, ess %.0f)",
           chain, m, pg_mu_mean, 4 * se, tess(c.n, c.x[0]));
    double sd = tsd(c.n, c.x[0]), sse = tmcse_sd(c.n, c.x[0]);
    tap_ok(fabs(sd - pg_mu_sd) <= 4 * sse, "pg chain %d: sd of mu %.4f, exact %.4f (4 se %.4f)", chain,
           sd, pg_mu_sd, 4 * sse);
    m = tmean(c.n, c.x[1]), se = tmcse_mean(c.n, c.x[1]);
    tap_ok(fabs(m - pg_xlast_mean) <= 4 * se, "pg chain %d: mean of x_last %.4f, exact %.4f (4 mcse %.4f)",
           chain, m, pg_xlast_mean, 4 * se);
    tap_ok(tess(c.n, c.x[0]) > 50 && acc / c.n > 0.1 && acc / c.n < 0.9,
           "pg chain %d: mu mixes (ess %.0f, static acceptance %.2f)", chain, tess(c.n, c.x[0]),
           acc / c.n);
    for (int j = 0; j < 2; j++) free(c.x[j]);
  }
}

/* pgibbs --ancestor-sampling on the dynamic-structure loop: a candidate whose
 * history cannot continue the reference's remaining path (a different number
 * of iterations) must get weight 0; P(len = m) against the enumeration. */
static void test_pgas_dynamic(void) {
  Diag d;
  Interp *in = dyn_interp(&d);
  if (!in) return;
  int out = toutput(in, "len");
  double *x = calloc(3000, sizeof(double));
  int n = 0;
  long moved = 0;
  for (int chain = 0; chain < 2; chain++) {
    EngineOpts o;
    engine_opts_default(&o);
    o.chains = 1;
    set_opt(&o, "particles", "10");
    o.seed = 19;
    set_opt(&o, "ancestor-sampling", "true");
    set_opt(&o, "ess-threshold", "1"); /* resample (and draw the reference's ancestor) at every event */
    diag_init(&d);
    void *st = engine_pgibbs.init(in, &o, chain, &d);
    if (!tap_ok(st != NULL, "pgas dyn chain %d: starts (%s)", chain, d.msg)) continue;
    bool ok = true;
    for (int i = 0; ok && i < 1600; i++) {
      Draw dr;
      memset(&dr, 0, sizeof dr);
      ok = engine_pgibbs.step(st, i < 100, &dr, &d);
      if (ok && i >= 100) x[n++] = val_as_real(dr.outputs[out]);
    }
    tap_ok(ok, "pgas dyn chain %d: runs (%s)", chain, d.msg);
    const char *notes = engine_pgibbs.chain_notes(st), *p = strstr(notes, "draws, ");
    moved += p ? atol(p + strlen("draws, ")) : 0;
  }
  for (int m = 1; m <= 3; m++) {
    double *ind = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++) ind[i] = x[i] == m;
    double est = tmean(n, ind), se = sqrt(dyn_len_prob[m - 1] * (1 - dyn_len_prob[m - 1]) / tess(n, ind));
    tap_ok(fabs(est - dyn_len_prob[m - 1]) <= 4 * se, "pgas dyn: P(len = %d) = %.4f, exact %.4f (4 se %.4f)",
           m, est, dyn_len_prob[m - 1], 4 * se);
    free(ind);
  }
  tap_ok(moved > 0, "pgas dyn: ancestor sampling moved the reference (%ld%% of draws)", moved / 2);
  free(x);
}

static void test_determinism_and_errors(void) {
  Diag d;
  Interp *in = dyn_interp(&d);
  if (!in) return;
  EngineOpts o;
  engine_opts_default(&o);
  o.draws = 200;
  set_opt(&o, "particles", "200");
  set_opt(&o, "rejuvenate", "1");
  Runs a, b;
  bool ok = run_smc(in, &o, 2, "len", &a, &d) && run_smc(in, &o, 2, "len", &b, &d);
  tap_ok(ok && a.logz[0] == b.logz[0] && a.logz[1] == b.logz[1] &&
             memcmp(a.x[1], b.x[1], sizeof(double) * 200) == 0 &&
             memcmp(a.lw[1], b.lw[1], sizeof(double) * 200) == 0,
         "same seed, same draws, weights and evidence");
  tap_ok(ok && a.logz[0] != a.logz[1], "chains are independent runs");
  /* weights are log Z + log(N W_i): their log-mean-exp is the run's evidence */
  double mx = -INFINITY, s = 0;
  for (int i = 0; i < 200; i++) mx = fmax(mx, a.lw[0][i]);
  for (int i = 0; i < 200; i++) s += exp(a.lw[0][i] - mx);
  tap_near(mx + log(s / 200), a.logz[0], 1e-9, "log-mean-exp of the draw weights = log evidence");

  /* bad values are refused where they are set, against smc's tables */
  diag_init(&d);
  tap_ok(!engine_opts_set(&o, "particles", "-1", &d) && d.code == DIAG_USAGE &&
             !strcmp(d.msg, "--particles expects an integer from 0 to 100000000, got '-1'"),
         "--particles -1 is a usage error (%s)", d.msg);
  set_opt(&o, "particles", "10");
  diag_init(&d);
  tap_ok(!engine_opts_set(&o, "ess-threshold", "1.5", &d) &&
             !strcmp(d.msg, "--ess-threshold expects a number from 0 to 1, got '1.5'"),
         "--ess-threshold 1.5 is a usage error (%s)", d.msg);

  Interp *bad = tcompile("model { real x ~ normal(0, 1); target += negative_infinity(); }", NULL, &d);
  if (bad) {
    set_opt(&o, "ess-threshold", "0.5");
    diag_init(&d);
    void *st = engine_smc.init(bad, &o, 0, &d);
    Draw dr;
    memset(&dr, 0, sizeof dr);
    tap_ok(st && !engine_smc.step(st, false, &dr, &d) && strstr(d.msg, "zero weight"),
           "all particles with zero weight: an error (%s)", d.msg);
  } else {
    tap_ok(false, "zero-weight model compiles");
  }
  tap_ok(engine_lookup("smc") == &engine_smc && engine_smc.weighted &&
             !strcmp(engine_smc.stat_names[0], "log_weight__"),
         "smc is registered, weighted, with a log_weight__ column");
}

int main(void) {
  gc_init();
  test_dynamic();
  test_within_run_se();
  test_geometric();
  test_resample_move();
  test_determinism_and_errors();
  test_pgibbs();
  test_pgas_dynamic();
  return tap_done();
}
