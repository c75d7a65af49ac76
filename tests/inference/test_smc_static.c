/* test_smc_static.c — engine smc, with its default settings, on programs with
 * static parameters (latents drawn outside every loop), where a plain particle
 * filter keeps only the values of the few initial particles that survive:
 *
 *   linreg_known_sigma  one vectorised observation of 200 points: tempered
 *                       steps; posterior of beta and log evidence exact
 *                       (the evidence computed here from the Gaussian model);
 *   radon               centred hierarchical regression, 36 observations one
 *                       by one: against NUTS;
 *   ar1                 AR(1) with static phi, sigma, 80 observations:
 *                       against NUTS;
 *   ssm                 latent AR(1) seen through noise (a state per step and
 *                       static phi, sigma), T = 50: against NUTS;
 *
 * and that the summary says what SMC did (tempering, moves) and flags a
 * degenerate population (ar1 with --rejuvenate 0).  ar1 and ssm run their
 * particles and moves compiled (asserted from the backend line) and again
 * with --no-jit (interpreted): both pass, with the same estimates to the
 * bit.
 *
 * Tolerances.  SMC estimates are self-normalised per chain (one run each);
 * their standard error comes from the spread over chains, floored by that of
 * an ideal sample of all the draws (sd / sqrt(n) for a mean, sd / sqrt(2n)
 * for an sd).  The reference is exact or NUTS (4 chains x 2000 draws; SE of
 * a mean = its MCSE, of an sd = sd / sqrt(2 ESS_bulk), the normal-theory
 * value).  A mean or sd passes within 4 combined SEs.
 *
 *   test_smc_static EXACT_PROBLEMS_DIR TESTS_EXACT_DIR SMC_STATIC_DIR
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ppl.h"
#include "tap.h"

static ppl_context *ctx;
static int no_jit; /* smc runs: interpret the particles */

static ppl_model *load(const char *ppl, const char *data) {
  ppl_model *m = NULL;
  if (!tap_ok(ppl_compile_file(ctx, ppl, &m) == PPL_OK && ppl_set_data_file(m, data) == PPL_OK,
              "%s compiles with %s (%s)", ppl, data, ppl_errmsg(ctx)))
    return NULL;
  return m;
}

static ppl_result *run(ppl_model *m, const char *engine, int chains, int n, int rejuvenate) {
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = engine;
  ro.chains = chains;
  ro.draws = n;
  ro.seed = 20261207;
  if (!strcmp(engine, "smc")) {
    ro.particles = n; /* one SMC run per chain */
    ro.no_jit = no_jit;
    if (rejuvenate >= 0) ro.rejuvenate = rejuvenate;
  }
  ppl_result *r = NULL;
  if (!tap_ok(ppl_run(m, &ro, &r) == PPL_OK, "%s runs (%s)", engine, ppl_errmsg(ctx))) return NULL;
  return r;
}

/* A posterior mean and sd with their standard errors. */
typedef struct Est {
  double mean, sd, se_mean, se_sd;
} Est;

/* Weighted mean and sd of a column per chain; averaged over chains, SEs from
 * their spread, floored by an ideal sample's. */
static Est smc_est(const ppl_result *r, const char *column) {
  int col = ppl_result_column_index(r, column), lw = ppl_result_column_index(r, "log_weight__");
  int C = ppl_result_num_chains(r), D = ppl_result_num_draws(r);
  double m1 = 0, m2 = 0, s1 = 0, s2 = 0;
  for (int c = 0; c < C; c++) {
    double mx = -INFINITY, sw = 0, sx = 0, sxx = 0;
    for (int i = 0; i < D; i++) mx = fmax(mx, ppl_result_draw(r, c, i, lw));
    for (int i = 0; i < D; i++) {
      double w = exp(ppl_result_draw(r, c, i, lw) - mx), x = ppl_result_draw(r, c, i, col);
      sw += w;
      sx += w * x;
      sxx += w * x * x;
    }
    double m = sx / sw, sd = sqrt(fmax(sxx / sw - m * m, 0));
    m1 += m;
    m2 += m * m;
    s1 += sd;
    s2 += sd * sd;
  }
  Est e;
  e.mean = m1 / C;
  e.sd = s1 / C;
  double n = (double)C * D;
  e.se_mean = fmax(sqrt(fmax(m2 / C - e.mean * e.mean, 0) / (C - 1)), e.sd / sqrt(n));
  e.se_sd = fmax(sqrt(fmax(s2 / C - e.sd * e.sd, 0) / (C - 1)), e.sd / sqrt(2 * n));
  return e;
}

static Est nuts_est(const ppl_result *r, const char *column) {
  ppl_summary s;
  Est e = {NAN, NAN, NAN, NAN};
  if (ppl_result_summary(r, ppl_result_column_index(r, column), &s) != PPL_OK) return e;
  e.mean = s.mean;
  e.sd = s.sd;
  e.se_mean = s.mcse;
  e.se_sd = s.sd / sqrt(2 * s.ess_bulk);
  return e;
}

static void compare(const char *what, const char *column, Est got, Est want) {
  double tm = 4 * hypot(got.se_mean, want.se_mean), ts = 4 * hypot(got.se_sd, want.se_sd);
  tap_ok(fabs(got.mean - want.mean) <= tm, "%s: mean of %s %.4f, reference %.4f (tol %.4f)", what,
         column, got.mean, want.mean, tm);
  tap_ok(fabs(got.sd - want.sd) <= ts, "%s: sd of %s %.4f, reference %.4f (tol %.4f)", what,
         column, got.sd, want.sd, ts);
}

/* The log evidence of y ~ normal(X beta, sigma), beta ~ normal(0, s0) iid:
 * log p(y | m) + log p(m) - log N(m | m, S) at the posterior mean m, with
 * S^-1 = X'X / sigma^2 + I / s0^2 (K <= 16). */
static double linreg_evidence(json_t *d, double s0) {
  int N = (int)json_integer_value(json_object_get(d, "N"));
  int K = (int)json_integer_value(json_object_get(d, "K"));
  double sigma = json_number_value(json_object_get(d, "sigma"));
  json_t *X = json_object_get(d, "X"), *y = json_object_get(d, "y");
  double A[16][16] = {{0}}, L[16][16] = {{0}}, b[16] = {0}, z[16], m[16];
#define XX(n, k) json_number_value(json_array_get(json_array_get(X, (size_t)(n)), (size_t)(k)))
#define YY(n) json_number_value(json_array_get(y, (size_t)(n)))
  for (int n = 0; n < N; n++)
    for (int i = 0; i < K; i++) {
      b[i] += XX(n, i) * YY(n) / (sigma * sigma);
      for (int j = 0; j < K; j++) A[i][j] += XX(n, i) * XX(n, j) / (sigma * sigma);
    }
  for (int i = 0; i < K; i++) A[i][i] += 1 / (s0 * s0);
  for (int i = 0; i < K; i++)
    for (int j = 0; j <= i; j++) {
      double v = A[i][j];
      for (int k = 0; k < j; k++) v -= L[i][k] * L[j][k];
      L[i][j] = i == j ? sqrt(v) : v / L[j][j];
    }
  for (int i = 0; i < K; i++) {
    z[i] = b[i];
    for (int k = 0; k < i; k++) z[i] -= L[i][k] * z[k];
    z[i] /= L[i][i];
  }
  for (int i = K - 1; i >= 0; i--) {
    m[i] = z[i];
    for (int k = i + 1; k < K; k++) m[i] -= L[k][i] * m[k];
    m[i] /= L[i][i];
  }
  double lp = 0;
  for (int n = 0; n < N; n++) {
    double r = YY(n);
    for (int k = 0; k < K; k++) r -= XX(n, k) * m[k];
    lp += -0.5 * log(2 * M_PI * sigma * sigma) - r * r / (2 * sigma * sigma);
  }
  for (int k = 0; k < K; k++) lp += -0.5 * log(2 * M_PI * s0 * s0) - m[k] * m[k] / (2 * s0 * s0);
  double logdet = 0;
  for (int i = 0; i < K; i++) logdet += 2 * log(L[i][i]);
#undef XX
#undef YY
  return lp - (-0.5 * K * log(2 * M_PI) + 0.5 * logdet);
}

static void test_linreg(const char *pdir, const char *mdir) {
  char ppl[512], data[512], ex[512];
  snprintf(ppl, sizeof ppl, "%s/linreg_known_sigma.ppl", mdir);
  snprintf(data, sizeof data, "%s/linreg_known_sigma/data.json", pdir);
  snprintf(ex, sizeof ex, "%s/linreg_known_sigma/exact.json", pdir);
  json_error_t jerr;
  json_t *d = json_load_file(data, 0, &jerr), *x = json_load_file(ex, 0, &jerr);
  ppl_model *m = load(ppl, data);
  ppl_result *r = m && d && x ? run(m, "smc", 4, 500, -1) : NULL;
  if (r) {
    json_t *bm = json_object_get(json_object_get(x, "beta"), "mean");
    json_t *bs = json_object_get(json_object_get(x, "beta"), "sd");
    for (int k = 1; k <= 5; k++) {
      char col[32];
      snprintf(col, sizeof col, "beta[%d]", k);
      Est want = {json_number_value(json_array_get(bm, (size_t)(k - 1))),
                  json_number_value(json_array_get(bs, (size_t)(k - 1))), 0, 0};
      compare("linreg (exact)", col, smc_est(r, col), want);
    }
    double est = NAN, se = NAN, want = linreg_evidence(d, 10.0);
    bool have = ppl_result_log_evidence(r, &est, &se) == PPL_OK;
    tap_ok(have && se > 0 && fabs(est - want) <= 4 * se,
           "linreg: log evidence %.4f ± %.4f, exact %.4f", est, se, want);
    const char *text = ppl_result_summary_text(r);
    tap_ok(text && strstr(text, "tempering steps") && strstr(text, "block moves of the static"),
           "linreg: the summary says SMC tempered the observation and moved beta");
  }
  ppl_result_free(r);
  ppl_model_free(m);
  json_decref(d);
  json_decref(x);
}

/* SMC with the defaults against NUTS on one of SMC_STATIC_DIR's programs. */
static void test_vs_nuts(const char *dir, const char *name, int particles, const char **cols,
                         int ncols, bool compiled) {
  char ppl[512], data[512];
  snprintf(ppl, sizeof ppl, "%s/%s.ppl", dir, name);
  snprintf(data, sizeof data, "%s/%s.json", dir, name);
  ppl_model *m = load(ppl, data);
  if (!m) return;
  ppl_result *s = run(m, "smc", 4, particles, -1), *n = run(m, "nuts", 4, 2000, -1), *si = NULL;
  if (compiled) {
    tap_ok(s && strstr(ppl_result_backend(s), "smc: compiled particle steps"),
           "%s: smc's particles and moves run compiled (%s)", name, s ? ppl_result_backend(s) : "");
    no_jit = 1;
    si = run(m, "smc", 4, particles, -1);
    no_jit = 0;
  }
  for (int pass = 0; pass < (compiled ? 2 : 1); pass++) {
    const ppl_result *r = pass ? si : s;
    if (!r || !n) continue;
    char what[64];
    snprintf(what, sizeof what, "%s (smc%s vs nuts)", name, pass ? " --no-jit" : "");
    for (int k = 0; k < ncols; k++) compare(what, cols[k], smc_est(r, cols[k]), nuts_est(n, cols[k]));
  }
  if (s && si)
    for (int k = 0; k < ncols; k++) {
      Est a = smc_est(s, cols[k]), b = smc_est(si, cols[k]);
      tap_ok(!memcmp(&a, &b, sizeof a), "%s: %s compiled = --no-jit, bit for bit (mean %.17g / %.17g)",
             name, cols[k], a.mean, b.mean);
    }
  ppl_result_free(si);
  ppl_result_free(s);
  ppl_result_free(n);
  ppl_model_free(m);
}

static void test_degenerate(const char *dir) {
  char ppl[512], data[512];
  snprintf(ppl, sizeof ppl, "%s/ar1.ppl", dir);
  snprintf(data, sizeof data, "%s/ar1.json", dir);
  ppl_model *m = load(ppl, data);
  ppl_result *r = m ? run(m, "smc", 1, 500, 0) : NULL;
  const char *text = r ? ppl_result_summary_text(r) : NULL;
  tap_ok(text && strstr(text, "DEGENERATE") && !strstr(text, "resample-move"),
         "ar1 with --rejuvenate 0: no moves, and the summary flags the degenerate population");
  ppl_result_free(r);
  ppl_model_free(m);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: test_smc_static EXACT_PROBLEMS_DIR TESTS_EXACT_DIR SMC_STATIC_DIR\n");
    return 2;
  }
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = 1;
  ctx = ppl_context_new(&cfg);
  test_linreg(argv[1], argv[2]);
  static const char *radon[] = {"mu", "tau", "b", "sigma", "a[1]", "a[6]"};
  test_vs_nuts(argv[3], "radon", 400, radon, 6, false); /* intercepts as a vector: interpreted */
  static const char *ar[] = {"phi", "sigma"};
  test_vs_nuts(argv[3], "ar1", 400, ar, 2, true);
  test_vs_nuts(argv[3], "ssm", 200, ar, 2, true);
  test_degenerate(argv[3]);
  ppl_context_free(ctx);
  return tap_done();
}
