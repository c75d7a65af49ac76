/* test_engines.c — the prior, is and mh engines end to end from source text,
 * against exact answers (engines_reference.h, from gen_engines_reference.py):
 * a normal-normal model, a discrete latent, a Poisson latent, a truncated
 * (half-normal) latent, a program whose number of latents is random, and a
 * simplex; importance-sampling evidence; initialisation failures; the engine
 * table and the selector.  Tolerances are 4 Monte Carlo standard errors
 * (from the chain's ESS) for MCMC, 3 standard errors for evidences. */
#include "engines_reference.h"
#include "inference/trace.h"
#include "test_engines_util.h"

static const double LOG_SQRT_2PI = 0.91893853320467274178;

/* |got - want| <= k * se */
static void within(double got, double want, double se, double k, const char *what) {
  int ok = fabs(got - want) <= k * se;
  tap_ok(ok, "%s: %.5g vs exact %.5g (%.1f se, se %.3g)", what, got, want,
         se > 0 ? fabs(got - want) / se : 0.0, se);
}

static const char *SRC_A =
    "data { int N; vector[N] y; }\n"
    "model {\n"
    "  real mu ~ normal(1, 2);\n"
    "  y ~ normal(mu, 1.5);\n"
    "}\n"
    "generated { real yrep = normal_rng(mu, 1.5); }\n";

static Interp *model_a(Diag *d) {
  static TData td; /* the interpreter keeps a pointer only during loading */
  tdata_init(&td);
  tdata_add(&td, "N", val_int(5));
  tdata_add(&td, "y", tvec(5, A_y));
  return tcompile(SRC_A, &td, d);
}

static void test_mh_normal(void) {
  Diag d;
  Interp *in = model_a(&d);
  if (!tap_ok(in != NULL, "model A compiles")) return;
  int out[2] = {toutput(in, "mu"), toutput(in, "yrep")}, el[2] = {0, 0};
  TChain c;
  const int n = 20000;
  if (!tap_ok(trun(&engine_mh, in, 11, 0, 1000, n, 2, out, el, &c, &d), "mh runs: %s", d.msg))
    return;
  within(tmean(n, c.x[0]), A_POST_MEAN, tmcse_mean(n, c.x[0]), 4, "mh normal-normal mean");
  within(tsd(n, c.x[0]), A_POST_SD, tmcse_sd(n, c.x[0]), 4, "mh normal-normal sd");
  within(tmean(n, c.x[1]), A_POST_MEAN, tmcse_mean(n, c.x[1]), 4,
         "generated yrep uses the accepted mu (predictive mean)");
  within(tsd(n, c.x[1]), sqrt(A_POST_SD * A_POST_SD + 2.25), tmcse_sd(n, c.x[1]), 4,
         "generated yrep: predictive sd");
  double acc = tmean(n, c.stat);
  tap_ok(acc > 0.25 && acc < 0.7, "accept_stat__ after adaptation near 0.44: %.3f", acc);
  /* lp__ is the log joint: recompute it from mu */
  double mu = c.x[0][n - 1], lp = -LOG_SQRT_2PI - log(2.0) - (mu - 1) * (mu - 1) / 8;
  for (int i = 0; i < 5; i++) lp += -LOG_SQRT_2PI - log(1.5) - (A_y[i] - mu) * (A_y[i] - mu) / 4.5;
  tap_near(c.lp[n - 1], lp, 1e-10, "mh lp__ = log joint at the draw");

  TChain c2, c3;
  trun(&engine_mh, in, 11, 0, 50, 20, 2, out, el, &c2, &d);
  trun(&engine_mh, in, 11, 0, 50, 20, 2, out, el, &c3, &d);
  tap_ok(memcmp(c2.x[0], c3.x[0], sizeof(double) * 20) == 0 &&
             memcmp(c2.x[1], c3.x[1], sizeof(double) * 20) == 0,
         "same seed and chain: identical draws");
  trun(&engine_mh, in, 11, 1, 50, 20, 2, out, el, &c3, &d);
  tap_ok(memcmp(c2.x[0], c3.x[0], sizeof(double) * 20) != 0, "another chain: other draws");
}

static void test_prior_and_is(void) {
  Diag d;
  Interp *in = model_a(&d);
  if (!in) return;
  int out[2] = {toutput(in, "mu"), toutput(in, "yrep")}, el[2] = {0, 0};
  TChain c;
  const int n = 20000;
  if (!tap_ok(trun(&engine_prior, in, 5, 0, 0, n, 2, out, el, &c, &d), "prior runs: %s", d.msg))
    return;
  within(tmean(n, c.x[0]), 1, 2 / sqrt(n), 4, "prior mean of mu");
  within(tsd(n, c.x[0]), 2, 2 / sqrt(2.0 * n), 4, "prior sd of mu");
  double *diff = malloc(sizeof(double) * n);
  for (int i = 0; i < n; i++) diff[i] = c.x[1][i] - c.x[0][i];
  within(tsd(n, diff), 1.5, 1.5 / sqrt(2.0 * n), 4, "prior predictive: yrep - mu has sd 1.5");
  free(diff);
  double mu = c.x[0][7];
  tap_near(c.lp[7], -LOG_SQRT_2PI - log(2.0) - (mu - 1) * (mu - 1) / 8, 1e-10,
           "prior lp__ = log prior");
  tap_ok(engine_prior.nstats == 0 && !engine_prior.weighted, "prior: no stats, unweighted");

  TChain w;
  if (!tap_ok(trun(&engine_is, in, 6, 0, 0, n, 1, out, el, &w, &d), "is runs: %s", d.msg)) return;
  double mx = -INFINITY;
  for (int i = 0; i < n; i++) mx = fmax(mx, w.lw[i]);
  double s1 = 0, s2 = 0, sx = 0, sxx = 0;
  for (int i = 0; i < n; i++) {
    double e = exp(w.lw[i] - mx);
    s1 += e;
    s2 += e * e;
    sx += e * w.x[0][i];
    sxx += e * w.x[0][i] * w.x[0][i];
  }
  double est = mx + log(s1 / n);
  double mean_w = s1 / n, var_w = s2 / n - mean_w * mean_w;
  double se = sqrt(var_w / n) / mean_w;
  within(est, A_LOG_EVIDENCE, se, 3, "is log evidence, normal-normal");
  double pm = sx / s1, psd = sqrt(sxx / s1 - pm * pm), kish = s1 * s1 / s2;
  within(pm, A_POST_MEAN, psd / sqrt(kish), 4, "is weighted posterior mean");
  tap_near(w.stat[3], w.lw[3], 0, "log_weight__ column = log weight");
  tap_near(w.lp[3] - w.lw[3],
           -LOG_SQRT_2PI - log(2.0) - (w.x[0][3] - 1) * (w.x[0][3] - 1) / 8, 1e-10,
           "is lp__ = log prior + log weight");
  tap_ok(engine_is.weighted && strcmp(engine_is.stat_names[0], "log_weight__") == 0,
         "is: weighted, log_weight__");
}

static void test_is_evidence_other(void) {
  Diag d;
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(3));
  tdata_add(&td, "y", tvec(3, D_y));
  Interp *in = tcompile("data { int N; vector[N] y; }\n"
                        "model { real<lower=0> s ~ normal(0, 1); y ~ normal(0, s); }\n",
                        &td, &d);
  const int n = 20000;
  int out[1] = {0}, el[1] = {0};
  TChain w;
  if (in && trun(&engine_is, in, 8, 0, 0, n, 1, out, el, &w, &d)) {
    double mx = -INFINITY, s1 = 0, s2 = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, w.lw[i]);
    for (int i = 0; i < n; i++) {
      double e = exp(w.lw[i] - mx);
      s1 += e;
      s2 += e * e;
    }
    double m = s1 / n, se = sqrt((s2 / n - m * m) / n) / m;
    within(mx + log(m), D_LOG_EVIDENCE, se, 3, "is log evidence, truncated (half-normal) prior");
  } else {
    tap_ok(0, "half-normal model for is: %s", d.msg);
  }
  TData tb;
  tdata_init(&tb);
  tdata_add(&tb, "N", val_int(3));
  tdata_add(&tb, "y", tvec(3, B_y));
  in = tcompile("data { int N; vector[N] y; }\n"
                "model { int z ~ bernoulli(0.3); real m = -1; if (z == 1) m = 2;\n"
                "  y ~ normal(m, 1); }\n",
                &tb, &d);
  if (in && trun(&engine_is, in, 9, 0, 0, n, 1, out, el, &w, &d)) {
    double mx = -INFINITY, s1 = 0, s2 = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, w.lw[i]);
    for (int i = 0; i < n; i++) {
      double e = exp(w.lw[i] - mx);
      s1 += e;
      s2 += e * e;
    }
    double m = s1 / n, se = sqrt((s2 / n - m * m) / n) / m;
    within(mx + log(m), B_LOG_EVIDENCE, se, 3, "is log evidence, discrete latent");
  } else {
    tap_ok(0, "discrete model for is: %s", d.msg);
  }
}

/* One MH chain of one scalar output, checked against exact mean (and sd). */
static void mh_check(const char *src, TData *td, const char *var, int elem, int warmup, int n,
                     uint64_t seed, double mean, double sd, const char *what) {
  Diag d;
  Interp *in = tcompile(src, td, &d);
  if (!tap_ok(in != NULL, "%s: compiles", what)) return;
  int out[1] = {toutput(in, var)}, el[1] = {elem};
  TChain c;
  if (!tap_ok(out[0] >= 0 && trun(&engine_mh, in, seed, 0, warmup, n, 1, out, el, &c, &d),
              "%s: mh runs %s", what, d.msg))
    return;
  char buf[200];
  snprintf(buf, sizeof buf, "%s: posterior mean", what);
  within(tmean(n, c.x[0]), mean, tmcse_mean(n, c.x[0]), 4, buf);
  if (sd > 0) {
    snprintf(buf, sizeof buf, "%s: posterior sd", what);
    within(tsd(n, c.x[0]), sd, tmcse_sd(n, c.x[0]), 4, buf);
  }
}

static void test_mh_models(void) {
  TData tb;
  tdata_init(&tb);
  tdata_add(&tb, "N", val_int(3));
  tdata_add(&tb, "y", tvec(3, B_y));
  mh_check("data { int N; vector[N] y; }\n"
           "model { int z ~ bernoulli(0.3); real m = -1; if (z == 1) m = 2;\n"
           "  y ~ normal(m, 1); }\n",
           &tb, "z", 0, 1000, 20000, 21, B_P_Z1, 0, "discrete latent (bernoulli)");

  TData tc;
  tdata_init(&tc);
  tdata_add(&tc, "y", val_int(C_Y));
  mh_check("data { int y; }\nmodel { int n ~ poisson(3); y ~ poisson(n + 0.5); }\n", &tc, "n", 0,
           1000, 20000, 22, C_POST_MEAN, C_POST_SD, "poisson latent");

  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(3));
  tdata_add(&td, "y", tvec(3, D_y));
  mh_check("data { int N; vector[N] y; }\n"
           "model { real<lower=0> s ~ normal(0, 1); y ~ normal(0, s); }\n",
           &td, "s", 0, 1000, 20000, 23, D_POST_MEAN, D_POST_SD, "truncated latent (half-normal)");
  /* no declared bound: proposals with s <= 0 fail normal's parameter check and
     are rejected, which leaves the same posterior */
  mh_check("data { int N; vector[N] y; }\n"
           "model { real s ~ normal(0, 1); y ~ normal(0, s); }\n",
           &td, "s", 0, 1000, 20000, 24, D_POST_MEAN, D_POST_SD,
           "program errors at proposals are rejections");

  TData te;
  tdata_init(&te);
  tdata_add(&te, "y", val_real(E_Y));
  const char *src_e = "data { real y; }\n"
                      "model {\n"
                      "  int K = 1;\n"
                      "  int go = 1;\n"
                      "  while (go == 1) {\n"
                      "    int c ~ bernoulli(0.4);\n"
                      "    go = c;\n"
                      "    K = K + c;\n"
                      "  }\n"
                      "  real s = 0;\n"
                      "  for (i in 1:K) {\n"
                      "    real x ~ normal(0, 1);\n"
                      "    s = s + x;\n"
                      "  }\n"
                      "  y ~ normal(s, 1);\n"
                      "}\n";
  mh_check(src_e, &te, "K", 0, 1000, 40000, 25, E_POST_MEAN_K, E_POST_SD_K,
           "dynamic structure (geometric number of latents)");

  TData tf;
  tdata_init(&tf);
  tdata_add(&tf, "N", val_int(10));
  tdata_add(&tf, "z", tints(10, F_z));
  tdata_add(&tf, "alpha", tvec(3, F_alpha));
  const char *src_f = "data { int N; int z[N]; vector[3] alpha; }\n"
                      "model { simplex[3] th ~ dirichlet(alpha); z ~ categorical(th); }\n";
  mh_check(src_f, &tf, "th", 0, 1000, 20000, 26, F_POST_MEAN_1, F_POST_SD_1, "simplex th[1]");
  mh_check(src_f, &tf, "th", 2, 1000, 20000, 27, F_POST_MEAN_3, F_POST_SD_3, "simplex th[3]");

  TData tt;
  tdata_init(&tt);
  tdata_add(&tt, "y", val_int(T_Y));
  mh_check("data { int y; }\n"
           "model { int<lower=1, upper=5> k ~ poisson(2); y ~ poisson(k + 0.5); }\n",
           &tt, "k", 0, 1000, 20000, 30, T_POST_MEAN, T_POST_SD,
           "truncated discrete latent (small support)");

  TData tq;
  tdata_init(&tq);
  tdata_add(&tq, "theta", tvec(3, Q_theta));
  tdata_add(&tq, "y", val_real(Q_Y));
  mh_check("data { vector[3] theta; real y; }\n"
           "model { int z ~ categorical(theta); y ~ normal(z, 1); }\n",
           &tq, "z", 0, 1000, 20000, 33, Q_POST_MEAN, Q_POST_SD, "categorical latent");

  /* Cholesky factor of a 2x2 correlation matrix under LKJ(2): the correlation
     L[2,1] is Beta(2, 2) on (-1, 1): mean 0, sd sqrt(1/5) */
  mh_check("model { cholesky_factor_corr[2] L ~ lkj_corr_cholesky(2); }\n", NULL, "L", 1, 1000,
           20000, 32, 0, sqrt(0.2), "cholesky_factor_corr under LKJ: L[2,1]");

  /* the support of u depends on b: proposals for b below u redraw u, and the
     move is only reversible if the reverse would redraw the old u too.
     Exact: b ~ uniform(0, 1), u | b ~ uniform(0, b): E u = 1/4, sd u = sqrt(7)/12 */
  const char *src_s = "model { real b ~ uniform(0, 1); real u ~ uniform(0, b); }\n";
  mh_check(src_s, NULL, "b", 0, 1000, 20000, 28, 0.5, sqrt(1.0 / 12), "support change: b");
  mh_check(src_s, NULL, "u", 0, 1000, 20000, 29, 0.25, sqrt(7.0) / 12, "support change: u");
}

static void test_dynamic_k1(void) {
  /* P(K = 1 | y) through the indicator of K == 1 */
  TData te;
  tdata_init(&te);
  tdata_add(&te, "y", val_real(E_Y));
  Diag d;
  Interp *in = tcompile("data { real y; }\n"
                        "model {\n"
                        "  int K = 1;\n"
                        "  int go = 1;\n"
                        "  while (go == 1) { int c ~ bernoulli(0.4); go = c; K = K + c; }\n"
                        "  real s = 0;\n"
                        "  for (i in 1:K) { real x ~ normal(0, 1); s = s + x; }\n"
                        "  y ~ normal(s, 1);\n"
                        "  int one = 0;\n"
                        "  if (K == 1) one = 1;\n"
                        "}\n",
                        &te, &d);
  if (!in) {
    tap_ok(0, "dynamic model with indicator compiles");
    return;
  }
  int out[1] = {toutput(in, "one")}, el[1] = {0};
  TChain c;
  const int n = 40000;
  if (!tap_ok(out[0] >= 0 && trun(&engine_mh, in, 31, 0, 1000, n, 1, out, el, &c, &d),
              "dynamic: mh runs %s", d.msg))
    return;
  within(tmean(n, c.x[0]), E_P_K1, tmcse_mean(n, c.x[0]), 4, "dynamic structure: P(K = 1 | y)");
}

/* Two modes at mu = +-2 separated by ~30 nats: the random walk alone never
 * crosses; the independent prior proposals do.  P(mu > 0) = 1/2 by symmetry. */
static void test_multimodal(void) {
  TData td;
  tdata_init(&td);
  tdata_add(&td, "y", val_real(4));
  Diag d;
  Interp *in = tcompile("data { real y; }\n"
                        "model { real mu ~ normal(0, 5); y ~ normal(mu * mu, 0.5);\n"
                        "  int pos = 0; if (mu > 0) pos = 1; }\n",
                        &td, &d);
  if (!tap_ok(in != NULL, "bimodal model compiles")) return;
  int out[2] = {toutput(in, "pos"), toutput(in, "mu")}, el[2] = {0, 0};
  TChain c;
  const int n = 40000;
  if (!tap_ok(trun(&engine_mh, in, 41, 0, 1000, n, 2, out, el, &c, &d), "bimodal: mh runs %s",
              d.msg))
    return;
  int switches = 0;
  for (int i = 1; i < n; i++) switches += c.x[0][i] != c.x[0][i - 1];
  tap_ok(switches >= 20, "the chain jumps between the modes (%d times)", switches);
  within(tmean(n, c.x[0]), 0.5, tmcse_mean(n, c.x[0]), 4, "bimodal: P(mu > 0)");
}

static void test_init_failures(void) {
  Diag d;
  Interp *in = tcompile("model { real mu ~ normal(0, 1); condition(mu > 100); }\n", NULL, &d);
  if (!in) return;
  EngineOpts o = {.chains = 1, .draws = 10, .warmup = 10, .thin = 1, .seed = 1};
  diag_init(&d);
  void *st = engine_mh.init(in, &o, 0, &d);
  tap_ok(st == NULL && d.code == DIAG_RUNTIME, "mh init fails when the log density is always -inf");
  tap_streq(d.msg,
            "could not find an initial point with finite log density after 100 tries: "
            "the log-likelihood is -inf",
            "init failure message");
  in = tcompile("model { real mu ~ normal(0, 1); reject(\"always bad \", mu > 100); }\n", NULL,
                &d);
  if (!in) return;
  diag_init(&d);
  st = engine_mh.init(in, &o, 0, &d);
  tap_ok(st == NULL && strstr(d.msg, "after 100 tries: ") && strstr(d.msg, "always bad"),
         "init failure reports the last error: %s", d.msg);
}

static IrAnalysis *fake_analysis(int ncont, int ndisc, bool fixed) {
  IrAnalysis *a = gc_alloc(sizeof(IrAnalysis));
  a->nlatents = ncont + ndisc;
  a->latents = gc_alloc(sizeof(IrLatentInfo) * (size_t)(a->nlatents + 1));
  for (int i = 0; i < a->nlatents; i++) a->latents[i].kind = i < ncont ? LK_CONTINUOUS : LK_DISCRETE;
  a->fixed_structure = fixed;
  a->all_continuous = ndisc == 0;
  a->has_discrete = ndisc > 0;
  return a;
}

static void test_selector(void) {
  const EngineVT *const *all = engine_all();
  int n = 0;
  while (all[n]) n++;
  tap_ok(n >= 3, "engine_all lists the engines (%d)", n);
  tap_ok(engine_lookup("mh") == &engine_mh && engine_lookup("is") == &engine_is &&
             engine_lookup("prior") == &engine_prior && engine_lookup("nope") == NULL,
         "engine_lookup by name");
  tap_ok(engine_mh.nstats == 1 && strcmp(engine_mh.stat_names[0], "accept_stat__") == 0 &&
             engine_mh.uses_warmup && !engine_mh.weighted,
         "mh: accept_stat__, warmup, unweighted");
  const char *why = NULL;
  tap_ok(engine_select(fake_analysis(0, 0, true), &why) == &engine_prior, "no latents: prior");
  tap_streq(why, "prior — the program has no latent variables", "prior reason");
  const EngineVT *e = engine_select(fake_analysis(10, 0, true), &why);
  tap_ok(e && strcmp(e->name, "nuts") == 0, "continuous and fixed: nuts");
  tap_streq(why,
            "nuts — 10 continuous latents, fixed structure: gradient-based no-U-turn sampler "
            "with Stan's warmup",
            "nuts reason, 10 continuous");
  engine_select(fake_analysis(1, 0, true), &why);
  tap_streq(why, "nuts — 1 continuous latent, fixed structure: gradient-based no-U-turn sampler "
                 "with Stan's warmup",
            "nuts reason, singular");
  engine_select(fake_analysis(3, 2, false), &why);
  tap_streq(why,
            "mh — 3 continuous and 2 discrete latents, dynamic structure: single-site "
            "Metropolis–Hastings over the trace",
            "mh reason, mixed and dynamic");
  Diag d;
  Interp *in = model_a(&d);
  if (in) {
    engine_select(ir_analyze(interp_program(in)), &why);
    tap_streq(why,
              "nuts — 1 continuous latent, fixed structure: gradient-based no-U-turn sampler "
              "with Stan's warmup",
              "selector on the analysis of model A");
  }
  in = tcompile("generated { real r = normal_rng(0, 1); }\n", NULL, &d);
  if (in) {
    tap_ok(engine_select(ir_analyze(interp_program(in)), &why) == &engine_prior,
           "no latents in source: prior (%s)", why);
  }
}

int main(void) {
  gc_init();
  test_selector();
  test_mh_normal();
  test_prior_and_is();
  test_is_evidence_other();
  test_mh_models();
  test_dynamic_k1();
  test_multimodal();
  test_init_failures();
  return tap_done();
}
