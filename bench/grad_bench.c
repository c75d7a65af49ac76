/* grad_bench.c — how fast the interpreter and the LLVM JIT compute the
 * gradient of a log density, against a hand-written C gradient of the same
 * log density, on
 * eight schools (non-centred, 10 parameters) and on a logistic regression
 * with N = 5000 rows and K = 10 predictors (data generated here from a fixed
 * seed).  Prints gradient evaluations per second for both and their ratio,
 * and first checks that both give the same lp and gradient at a random
 * point (a benchmark of two different functions would be meaningless).
 * Then GB_BATCH log densities one at a time against one batch
 * (ld_eval_batch, ADVI's ELBO), checked to agree to 1e-12.
 * With the nuts engine registered it also prints NUTS effective samples per
 * second (minimum bulk ESS over the parameters, 4 chains x 1000 + 1000).
 *
 *   grad_bench [seconds-per-measurement [es|logit]]
 *
 * A second argument measures that model's gradients alone (no NUTS).
 *
 * Rates are the best of GB_ROUNDS alternating rounds (robust to a busy
 * machine); NUTS runs its chains in parallel threads (ppl's default).
 *
 * Built as a program, not a test: meson compile -C BUILD bench/grad_bench.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inference/logdensity.h"
#include "bench_util.h"
#include "api/data.h"
#include "api/ppl.h"

#define GB_N 5000
#define GB_ROUNDS 5
#define GB_BATCH 100 /* ADVI's ELBO draws (Stan's elbo_samples) */
#define GB_K 10
#define GB_LOG_SQRT_2PI 0.91893853320467274178

/* ---- deterministic data ---- */

static uint64_t gb_state = 0x5eed2026;

static double gb_unif(void) {
  gb_state = gb_state * 6364136223846793005ull + 1442695040888963407ull;
  return ((gb_state >> 11) + 0.5) * 0x1.0p-53;
}

static double gb_normal(void) {
  return sqrt(-2 * log(gb_unif())) * cos(2 * M_PI * gb_unif());
}

typedef struct {
  double X[GB_N][GB_K];
  int y[GB_N];
} LogitData;

static void logit_data(LogitData *D) {
  double beta[GB_K];
  for (int k = 0; k < GB_K; k++) beta[k] = 0.5 * gb_normal();
  for (int n = 0; n < GB_N; n++) {
    double eta = 0.3;
    for (int k = 0; k < GB_K; k++) {
      D->X[n][k] = gb_normal();
      eta += D->X[n][k] * beta[k];
    }
    D->y[n] = gb_unif() < 1 / (1 + exp(-eta)) ? 1 : 0;
  }
}

static char *logit_json(const LogitData *D) {
  size_t cap = (size_t)GB_N * GB_K * 26 + 65536, k = 0;
  char *s = malloc(cap);
  k += (size_t)snprintf(s + k, cap - k, "{\"N\": %d, \"K\": %d, \"X\": [", GB_N, GB_K);
  for (int n = 0; n < GB_N; n++) {
    k += (size_t)snprintf(s + k, cap - k, "%s[", n ? "," : "");
    for (int j = 0; j < GB_K; j++)
      k += (size_t)snprintf(s + k, cap - k, "%s%.17g", j ? "," : "", D->X[n][j]);
    k += (size_t)snprintf(s + k, cap - k, "]");
  }
  k += (size_t)snprintf(s + k, cap - k, "], \"y\": [");
  for (int n = 0; n < GB_N; n++) k += (size_t)snprintf(s + k, cap - k, "%s%d", n ? "," : "", D->y[n]);
  snprintf(s + k, cap - k, "]}");
  return s;
}

static const char *logit_src =
    "data { int N; int K; matrix[N, K] X; int y[N]; }\n"
    "model {\n"
    "  real alpha ~ normal(0, 5);\n"
    "  vector[K] beta ~ normal(0, 2.5);\n"
    "  y ~ bernoulli_logit(alpha + X * beta);\n"
    "}\n";

static const char *es_src =
    "data { int<lower=0> J; real y[J]; real<lower=0> sigma[J]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 5);\n"
    "  real<lower=0> tau ~ cauchy(0, 5);\n"
    "  vector[J] theta_std ~ normal(0, 1);\n"
    "  vector[J] theta = mu + tau * theta_std;\n"
    "  y ~ normal(theta, sigma);\n"
    "}\n";
static const char *es_json =
    "{\"J\": 8, \"y\": [28, 8, -3, 7, -1, 1, 18, 12],"
    " \"sigma\": [15, 10, 16, 11, 9, 11, 10, 18]}";
static const double es_y[8] = {28, 8, -3, 7, -1, 1, 18, 12};
static const double es_sigma[8] = {15, 10, 16, 11, 9, 11, 10, 18};

/* ---- hand-written log densities and gradients (same normalisation) ---- */

typedef void (*HandGrad)(const void *ud, const double *th, double *lp, double *g);

static double normal_lpdf1(double x, double m, double s) {
  double z = (x - m) / s;
  return -0.5 * z * z - log(s) - GB_LOG_SQRT_2PI;
}

/* theta = (mu, log tau, theta_std[1..8]); tau is half-Cauchy(0, 5), whose
 * truncation constant log 2 is part of the normalised density. */
static void es_hand(const void *ud, const double *th, double *lp, double *g) {
  double mu = th[0], tau = exp(th[1]);
  double l = normal_lpdf1(mu, 0, 5);
  g[0] = -mu / 25;
  double u = tau / 5;
  l += log(2.0) - log(M_PI * 5 * (1 + u * u)) + th[1];
  g[1] = -2 * u * u / (1 + u * u) + 1; /* d/dlog(tau) of the Cauchy + Jacobian */
  for (int j = 0; j < 8; j++) {
    double e = th[2 + j];
    l += normal_lpdf1(e, 0, 1);
    double theta = mu + tau * e, r = (es_y[j] - theta) / (es_sigma[j] * es_sigma[j]);
    l += normal_lpdf1(es_y[j], theta, es_sigma[j]);
    g[0] += r;
    g[1] += r * tau * e;
    g[2 + j] = -e + r * tau;
  }
  *lp = l;
}

static void logit_hand(const void *ud, const double *th, double *lp, double *g) {
  const LogitData *D = ud;
  double alpha = th[0];
  const double *beta = th + 1;
  double l = normal_lpdf1(alpha, 0, 5);
  g[0] = -alpha / 25;
  for (int k = 0; k < GB_K; k++) {
    l += normal_lpdf1(beta[k], 0, 2.5);
    g[1 + k] = -beta[k] / 6.25;
  }
  for (int n = 0; n < GB_N; n++) {
    double eta = alpha;
    for (int k = 0; k < GB_K; k++) eta += D->X[n][k] * beta[k];
    /* log p(y | eta) = y eta - log(1 + e^eta); derivative y - inv_logit(eta);
     * one exp serves both */
    double e = exp(-fabs(eta));
    l += D->y[n] * eta - (fmax(eta, 0) + log1p(e));
    double r = D->y[n] - (eta >= 0 ? 1 / (1 + e) : e / (1 + e));
    g[0] += r;
    for (int k = 0; k < GB_K; k++) g[1 + k] += r * D->X[n][k];
  }
  *lp = l;
}

/* ---- the interpreted side ---- */

static LogDensity *gb_compile(const char *src, const char *json) {
  Diag d;
  diag_init(&d);
  Interp *in = bench_program(src, strlen(src), "bench.ppl", &d);
  DataSource *ds = in ? data_json_string(json, strlen(json), "bench.json", &d) : NULL;
  LogDensity *ld = ds && interp_load_data(in, ds, &d) ? ld_new(in, &d) : NULL;
  if (!ld) fprintf(stderr, "grad_bench: %s\n", d.msg);
  return ld;
}

static double gb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU time of this thread: the rates below are measured in it, so that
   other jobs on a shared machine do not count. */
static double gb_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Evaluations per second of f over `secs` seconds of CPU, at points near theta. */
#define GB_MEASURE(rate, secs, call)                                   \
  do {                                                                 \
    long n_ = 0;                                                       \
    double t0_ = gb_cpu(), t_;                                         \
    do {                                                               \
      for (int i_ = 0; i_ < 8; i_++, n_++) {                           \
        th[0] = base0 + 1e-3 * (double)(n_ % 7);                       \
        call;                                                          \
      }                                                                \
    } while ((t_ = gb_cpu() - t0_) < (secs));                          \
    (rate) = n_ / t_;                                                  \
  } while (0)

static void gb_model(const char *name, const char *src, const char *json, HandGrad hand,
                     const void *ud, double secs) {
  LogDensity *ld = gb_compile(src, json);
  if (!ld) return;
  /* compile latency: from source text to the first compiled gradient */
  double c0 = gb_now();
  LogDensity *lj = gb_compile(src, json);
  bool jit = lj && ld_use_jit(lj, false);
  double *thj = calloc(ld_dim(ld), sizeof(double)), *gj = calloc(ld_dim(ld), sizeof(double));
  double lpj = NAN;
  if (jit) ld_eval_grad_jit(lj, thj, &lpj, gj);
  double compile_ms = 1e3 * (gb_now() - c0);
  if (!jit) printf("  JIT: not compiled: %s\n", lj ? ld_backend(lj) : "?");
  size_t n = ld_dim(ld);
  double *th = calloc(n, sizeof *th), *g1 = calloc(n, sizeof *g1), *g2 = calloc(n, sizeof *g2);
  for (size_t i = 0; i < n; i++) th[i] = 0.3 * gb_normal();
  double lp1, lp2, maxd = 0;
  Diag d;
  diag_init(&d);
  if (!ld_eval_grad(ld, th, &lp1, g1, &d)) {
    fprintf(stderr, "grad_bench: %s: %s\n", name, d.msg);
    return;
  }
  hand(ud, th, &lp2, g2);
  for (size_t i = 0; i < n; i++) {
    double r = fabs(g1[i] - g2[i]) / fmax(1, fabs(g2[i]));
    if (r > maxd) maxd = r;
  }
  printf("%s (%zu parameters): lp %.10g (hand %.10g), max relative gradient difference %.2g%s\n",
         name, n, lp1, lp2, maxd, maxd > 1e-5 || fabs(lp1 - lp2) > 1e-8 * fmax(1, fabs(lp2))
                                      ? "  ** MISMATCH **" : "");
  if (jit) {
    double maxj = 0;
    bool ok = ld_eval_grad_jit(lj, th, &lpj, gj);
    for (size_t i = 0; i < n; i++) maxj = fmax(maxj, fabs(gj[i] - g1[i]) / fmax(1, fabs(g1[i])));
    printf("  JIT: source to first gradient %.1f ms; lp %.10g, max relative gradient difference "
           "from the interpreter %.2g%s\n",
           compile_ms, lpj, maxj, !ok || maxj > 1e-12 || fabs(lpj - lp1) > 1e-12 * fmax(1, fabs(lp1))
                                      ? "  ** MISMATCH **" : "");
    /* amortised use: another data set of the program on the same code (data
       are arguments of compiled code): load, discover latents, bind */
    double b0 = gb_now();
    Interp *in2 = interp_new(interp_program(ld_interp(lj)), NULL);
    DataSource *ds2 = data_json_string(json, strlen(json), "bench.json", &d);
    LogDensity *l2 = ds2 && interp_load_data(in2, ds2, &d) ? ld_new(in2, &d) : NULL;
    bool bound = l2 && ld_use_jit_of(l2, lj, &d) && ld_eval_grad_jit(l2, thj, &lpj, gj);
    printf("  JIT: another data set on the same code: data to first gradient %.2f ms%s\n",
           1e3 * (gb_now() - b0), bound ? "" : "  ** FAILED **");
  }
  /* ADVI's ELBO: GB_BATCH log densities at nearby points, one at a time
   * (ld_eval) and as one batch (ld_eval_batch), which must agree */
  double *bth = calloc(GB_BATCH * n, sizeof(double)), blp[GB_BATCH], blp1[GB_BATCH];
  LdWork *bw = jit ? ld_work_new(lj) : NULL;
  Diag bfail;
  diag_init(&bfail);
  for (int s = 0; s < GB_BATCH; s++)
    for (size_t i = 0; i < n; i++) bth[(size_t)s * n + i] = th[i] + 0.05 * gb_normal();
  if (jit) {
    double maxb = 0;
    bool ok = ld_eval_batch(bw, GB_BATCH, bth, blp, &bfail, &d);
    for (int s = 0; s < GB_BATCH && ok; s++) {
      ok = ld_eval(lj, bth + (size_t)s * n, &blp1[s], &d);
      maxb = fmax(maxb, fabs(blp[s] - blp1[s]) / fmax(1, fabs(blp1[s])));
    }
    printf("  JIT: %d log densities as one batch against one at a time: max relative difference "
           "%.2g%s\n",
           GB_BATCH, maxb, !ok || maxb > 1e-12 ? "  ** MISMATCH **" : "");
  }
  /* Alternating short rounds, best rate of each: other processes on the
   * machine slow both sides alike instead of whichever ran during a burst. */
  double base0 = th[0], r_interp = 0, r_hand = 0, r_jit = 0, r_lp = 0, r_b1 = 0, r_bb = 0, r;
  for (int round = 0; round < GB_ROUNDS; round++) {
    GB_MEASURE(r, secs / GB_ROUNDS, ld_eval_grad(ld, th, &lp1, g1, &d));
    if (r > r_interp) r_interp = r;
    GB_MEASURE(r, secs / GB_ROUNDS, hand(ud, th, &lp2, g2));
    if (r > r_hand) r_hand = r;
    if (jit) {
      GB_MEASURE(r, secs / GB_ROUNDS, ld_eval_grad_jit(lj, th, &lpj, gj));
      if (r > r_jit) r_jit = r;
      GB_MEASURE(r, secs / GB_ROUNDS, ld_eval(lj, th, &lpj, &d));
      if (r > r_lp) r_lp = r;
      GB_MEASURE(r, secs / GB_ROUNDS,
                 for (int s = 0; s < GB_BATCH; s++) ld_eval(lj, bth + (size_t)s * n, &blp1[s], &d));
      if (r * GB_BATCH > r_b1) r_b1 = r * GB_BATCH;
      GB_MEASURE(r, secs / GB_ROUNDS, ld_eval_batch(bw, GB_BATCH, bth, blp, &bfail, &d));
      if (r * GB_BATCH > r_bb) r_bb = r * GB_BATCH;
    }
  }
  printf("  gradient evaluations/s: interpreted %.4g, JIT %.4g, hand-written C %.4g\n", r_interp,
         r_jit, r_hand);
  if (jit) printf("  JIT log density alone (no gradient): %.4g evaluations/s\n", r_lp);
  if (jit)
    printf("  JIT log densities of %d points: one at a time %.4g/s, as one batch %.4g/s (%.2fx)\n",
           GB_BATCH, r_b1, r_bb, r_bb / r_b1);
  printf("  ratios: JIT / interpreter %.1fx, hand-written C / JIT %.2fx, hand-written C / "
         "interpreter %.1fx\n",
         r_jit / r_interp, r_hand / r_jit, r_hand / r_interp);
  if (lj) ld_free(lj);
  free(th), free(g1), free(g2), free(thj), free(gj), free(bth);
}

/* NUTS effective samples per second, when the engine exists. */
static void gb_nuts(const char *name, const char *src, const char *json, bool no_jit) {
  ppl_config cfg;
  ppl_config_default(&cfg);
  ppl_context *ctx = ppl_context_new(&cfg);
  ppl_model *m = NULL;
  const char *en, *why;
  if (ppl_compile_string(ctx, src, name, &m) != PPL_OK ||
      ppl_set_data_json(m, json, "bench.json") != PPL_OK) {
    fprintf(stderr, "grad_bench: %s\n", ppl_errmsg(ctx));
  } else if (ppl_model_engine(m, "nuts", &en, &why) != PPL_OK) {
    printf("  NUTS: not available (%s)\n", ppl_errmsg(ctx));
  } else {
    ppl_run_options ro;
    ppl_run_options_default(&ro);
    ro.engine = "nuts";
    ro.seed = 42;
    ro.no_jit = no_jit;
    ppl_result *r = NULL;
    double t0 = gb_now();
    if (ppl_run(m, &ro, &r) != PPL_OK) {
      printf("  NUTS: %s\n", ppl_errmsg(ctx));
    } else {
      double secs = gb_now() - t0, min_ess = INFINITY;
      for (int c = 0; c < ppl_result_num_columns(r); c++) {
        const char *cn = ppl_result_column_name(r, c);
        ppl_summary s;
        if (cn[strlen(cn) - 1] == '_' || ppl_result_summary(r, c, &s) != PPL_OK) continue;
        if (strncmp(cn, "theta.", 6) == 0) continue; /* derived, not a parameter */
        if (s.ess_bulk < min_ess) min_ess = s.ess_bulk;
      }
      printf("  NUTS 4 x (1000 + 1000), %s: %.2f s wall, min bulk ESS %.0f, %.4g ESS/s\n",
             no_jit ? "interpreted" : "JIT", secs, min_ess, min_ess / secs);
      ppl_result_free(r);
    }
  }
  if (m) ppl_model_free(m);
  ppl_context_free(ctx);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1.0;
  static LogitData D;
  logit_data(&D);
  char *lj = logit_json(&D);
  const char *only = argc > 2 ? argv[2] : NULL;
  if (only) {
    if (!strcmp(only, "es")) gb_model("eight schools", es_src, es_json, es_hand, NULL, secs);
    else gb_model("logistic regression N=5000 K=10", logit_src, lj, logit_hand, &D, secs);
    free(lj);
    return 0;
  }
  gb_model("eight schools", es_src, es_json, es_hand, NULL, secs);
  gb_nuts("eight schools", es_src, es_json, true);
  gb_nuts("eight schools", es_src, es_json, false);
  gb_model("logistic regression N=5000 K=10", logit_src, lj, logit_hand, &D, secs);
  gb_nuts("logistic regression", logit_src, lj, true);
  gb_nuts("logistic regression", logit_src, lj, false);
  free(lj);
  return 0;
}
