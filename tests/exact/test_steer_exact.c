/* test_steer_exact.c — engine steer (resampling, and --resample never), is
 * and rejection against the exact distribution over strings of short
 * language-model programs (tests/exact/lm/): a token loop under a mask
 * (`avoid`), the same loop with a condition per token instead, the same as
 * one `lm` string choice, each with a condition on the final string and a
 * factor.  Every program targets the same distribution, which the test
 * enumerates by scoring every prefix through the backend (lm.h): tokens from
 * a two-letter alphabet plus a masked third, at most three, eos ending.
 *
 * Estimates.  Each run of N particles gives, for every string s, the
 * unbiased estimate u(s) = (1/N) sum_i exp(log_weight_i) [s_i = s] of the
 * target's unnormalised mass gamma(s) = Z pi(s) (draw log weights are
 * log Z_run + log(N W_i)); is and rejection are runs of one.  Over R
 * independent runs the mean of u(s) is compared with gamma(s), with the
 * standard error from the runs' spread (never below an ideal sampler's), and
 * log of the mean of u(all) with log Z: |z| < 4.  Rejection: `is` on the
 * program whose constraints are all conditions (weights 0 or 1) gives exact
 * draws; their frequencies go through a chi-square test (p > 1e-4).
 *
 *   test_steer_exact TESTS_EXACT_DIR
 * Backends: the n-gram model of lm/abc.txt; llama.cpp when s7-lmback's tiny
 * GGUF and libllama are present (PPL_TEST_GGUF), else a skip line.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "stdlib/lm.h"
#include "tap.h"

#define MAXLEN 3
#define MAXS 64 /* strings of at most MAXLEN letters of a, b */

static const char *dir;

/* ---- the exact distribution ---- */

typedef struct Exact {
  int n;
  char s[MAXS][MAXLEN + 1];
  double gamma[MAXS]; /* target mass: LM prob of the string and its ending, times constraints */
  double Z;
} Exact;

/* The program's weight of a finished string (tests/exact/lm/, the .ppl files): the
 * condition and the factor. */
static double prog_weight(const char *s) {
  if (!strcmp(s, "ab")) return 0;        /* condition(s != "ab") */
  return exp(0.7 * (double)strlen(s));   /* factor(0.7 * length(s)) */
}

static int code_of(const char *s) { /* as the programs' generated block */
  int c = 0;
  for (const char *p = s; *p; p++) c = c * 4 + (*p == 'a' ? 1 : *p == 'b' ? 2 : 3);
  return c;
}

/* log p(next token | prompt + s) for every token, by a fresh state scored
 * through eval: every prefix on its own. */
static bool next_logp(LmBackend *b, const char *prompt, const char *s, float *logp) {
  char err[256], text[64];
  snprintf(text, sizeof text, "%s%s", prompt, s);
  int32_t toks[64];
  int n = b->tokenize(b->self, text, strlen(text), toks, 64, err, sizeof err);
  if (n < 0 || n > 64) return false;
  LmState *st = b->start(b->self, err, sizeof err);
  if (!st) return false;
  const int32_t *tp = toks;
  int rc = b->eval(b->self, 1, &st, &tp, &n, logp, err, sizeof err);
  b->release(b->self, st);
  return rc == 0;
}

static int token_of(LmBackend *b, const char *text) {
  char buf[16];
  for (int t = 0; t < b->n_vocab; t++) {
    int n = b->token_text(b->self, t, buf, (int)sizeof buf);
    if (n == (int)strlen(text) && !memcmp(buf, text, (size_t)n)) return t;
  }
  return -1;
}

/* Depth-first over strings of a, b (c is masked: the target excludes it). */
static bool enumerate(LmBackend *b, const char *prompt, const char *s, double lp, Exact *e) {
  float *logp = malloc(sizeof(float) * (size_t)b->n_vocab);
  if (!logp || !next_logp(b, prompt, s, logp)) return free(logp), false;
  size_t len = strlen(s);
  double end = len == MAXLEN ? 0 : logp[b->eos]; /* max_tokens: no ending event */
  snprintf(e->s[e->n], sizeof e->s[0], "%s", s);
  e->gamma[e->n] = exp(lp + end) * prog_weight(s);
  e->Z += e->gamma[e->n++];
  bool ok = true;
  if (len < MAXLEN)
    for (const char *c = "ab"; *c && ok; c++) {
      char t[2] = {*c, 0}, next[MAXLEN + 1];
      int tok = token_of(b, t);
      snprintf(next, sizeof next, "%s%c", s, *c);
      ok = tok >= 0 && enumerate(b, prompt, next, lp + logp[tok], e);
    }
  free(logp);
  return ok;
}

static int exact_index(const Exact *e, int code) {
  for (int k = 0; k < e->n; k++)
    if (code_of(e->s[k]) == code) return k;
  return -1;
}

/* ---- runs ---- */

typedef struct Est {
  int runs;
  double *u;  /* [runs][n]: per-run unbiased masses */
  double *uz; /* [runs] */
  int bad;    /* draws whose string is outside the enumeration */
} Est;

static ppl_result *run(ppl_model *m, const char *spec, const char *engine, int particles,
                       int draws, const char *opt, const char *val, uint64_t seed) {
  ppl_run_options o;
  ppl_run_options_default(&o);
  o.engine = engine;
  o.chains = 1;
  o.draws = draws;
  o.seed = seed;
  ppl_run_set(&o, "lm", spec);
  char buf[32];
  snprintf(buf, sizeof buf, "%d", particles);
  if (particles) ppl_run_set(&o, "particles", buf);
  if (opt) ppl_run_set(&o, opt, val);
  ppl_result *r = NULL;
  if (ppl_run(m, &o, &r) != PPL_OK) r = NULL;
  ppl_run_options_free(&o);
  return r;
}

static Est estimate(const ppl_result *r, const Exact *e, int N) {
  Est s = {0};
  int D = ppl_result_num_draws(r), cc = ppl_result_column_index(r, "code"),
      lc = ppl_result_column_index(r, "log_weight__");
  s.runs = D / N;
  s.u = calloc((size_t)(s.runs * e->n), sizeof(double));
  s.uz = calloc((size_t)s.runs, sizeof(double));
  for (int d = 0; d < s.runs * N; d++) {
    double lw = lc >= 0 ? ppl_result_draw(r, 0, d, lc) : 0;
    if (!(lw > -INFINITY)) continue;
    int k = exact_index(e, (int)ppl_result_draw(r, 0, d, cc));
    if (k < 0) {
      s.bad++;
      continue;
    }
    s.u[(d / N) * e->n + k] += exp(lw) / N;
    s.uz[d / N] += exp(lw) / N;
  }
  return s;
}

static void check(const char *what, const Est *s, const Exact *e, int N) {
  int R = s->runs;
  tap_ok(s->bad == 0, "%s: every drawn string is one the target allows (%d are not)", what,
         s->bad);
  double worst = 0;
  const char *wname = "";
  for (int k = 0; k < e->n; k++) {
    double m = 0, v = 0;
    for (int r = 0; r < R; r++) m += s->u[r * e->n + k];
    m /= R;
    for (int r = 0; r < R; r++) v += (s->u[r * e->n + k] - m) * (s->u[r * e->n + k] - m);
    double se = sqrt(v / (R - 1) / R);
    double p = e->gamma[k] / e->Z;
    double ideal = e->Z * sqrt(p * (1 - p) / ((double)R * N));
    if (se < ideal) se = ideal;
    double z = se > 0 ? fabs(m - e->gamma[k]) / se : (m == e->gamma[k] ? 0 : INFINITY);
    if (z > worst) worst = z, wname = e->s[k];
  }
  tap_ok(worst < 4, "%s: every string's mass within 4 SE of the exact one (worst z %.2f at \"%s\")",
         what, worst, wname);
  double m = 0, v = 0;
  for (int r = 0; r < R; r++) m += s->uz[r];
  m /= R;
  for (int r = 0; r < R; r++) v += (s->uz[r] - m) * (s->uz[r] - m);
  double se = sqrt(v / (R - 1) / R) / m;
  double z = fabs(log(m) - log(e->Z)) / se;
  tap_ok(z < 4, "%s: log evidence %.4f vs exact %.4f (SE %.4f, z %.2f)", what, log(m), log(e->Z),
         se, z);
}

static ppl_model *compile(ppl_context *ctx, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/lm/%s.ppl", dir, name);
  ppl_model *m = NULL;
  if (!tap_ok(ppl_compile_file(ctx, path, &m) == PPL_OK, "%s compiles (%s)", name,
              ppl_errmsg(ctx)))
    return NULL;
  return m;
}

/* Exact draws from `is` on the all-conditions program: chi-square. */
static void rejection(ppl_model *m, const char *spec, const Exact *e, const char *tag) {
  ppl_result *r = run(m, spec, "is", 0, 20000, NULL, NULL, 11);
  if (!tap_ok(r != NULL, "%s rejection: runs", tag)) return;
  int D = ppl_result_num_draws(r), cc = ppl_result_column_index(r, "code"),
      lc = ppl_result_column_index(r, "log_weight__");
  double cnt[MAXS] = {0}, acc = 0;
  for (int d = 0; d < D; d++) {
    if (!(ppl_result_draw(r, 0, d, lc) > -INFINITY)) continue; /* rejected */
    int k = exact_index(e, (int)ppl_result_draw(r, 0, d, cc));
    if (k >= 0) cnt[k]++, acc++;
  }
  /* the no-factor target: gamma / exp(0.7 len) */
  double g[MAXS], Zc = 0;
  for (int k = 0; k < e->n; k++) Zc += g[k] = e->gamma[k] / exp(0.7 * (double)strlen(e->s[k]));
  double chi = 0;
  int df = -1;
  for (int k = 0; k < e->n; k++) {
    if (g[k] == 0) continue;
    double ex = acc * g[k] / Zc;
    chi += (cnt[k] - ex) * (cnt[k] - ex) / ex;
    df++;
  }
  /* Wilson-Hilferty: P(chi2_df > chi) */
  double zz = (pow(chi / df, 1.0 / 3) - (1 - 2.0 / (9 * df))) / sqrt(2.0 / (9 * df));
  double pval = 0.5 * erfc(zz / sqrt(2));
  tap_ok(pval > 1e-4, "%s rejection: %.0f accepted of %d, chi-square %.1f on %d df, p %.3g", tag,
         acc, D, chi, df, pval);
  tap_ok(fabs(acc / D - Zc) < 4 * sqrt(Zc * (1 - Zc) / D),
         "%s rejection: acceptance rate %.4f vs the exact normaliser %.4f", tag, acc / D, Zc);
  ppl_result_free(r);
}

static void backend(const char *spec, const char *tag) {
  LmBackend *b = NULL;
  char err[256];
  if (!tap_ok(lm_open(spec, &b, err, sizeof err), "%s: opens (%s)", tag, err)) return;
  Exact e = {0};
  if (!tap_ok(enumerate(b, "b", "", 0, &e), "%s: the target enumerated (%d strings, Z %.5f)", tag,
              e.n, e.Z))
    return;
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *mask = compile(ctx, "tokens_avoid"), *cond = compile(ctx, "tokens_condition"),
            *str = compile(ctx, "string_avoid");
  if (!mask || !cond || !str) return;
  const int N = 50, R = 200;
  /* ess-threshold 1: resample after every step whose weights differ */
  struct {
    ppl_model *m;
    const char *name, *engine, *opt, *val;
    int N;
  } cases[] = {
      {mask, "tokens_avoid/steer (resampling each step)", "steer", "ess-threshold", "1", N},
      {mask, "tokens_avoid/steer --resample never", "steer", "resample", "never", N},
      {cond, "tokens_condition/steer", "steer", NULL, NULL, N},
      {cond, "tokens_condition/steer (resampling each step)", "steer", "ess-threshold", "1", N},
      {str, "string_avoid/steer (resampling each step)", "steer", "ess-threshold", "1", N},
      {str, "string_avoid/steer --resample never", "steer", "resample", "never", N},
      {mask, "tokens_avoid/is", "is", NULL, NULL, 1},
      {str, "string_avoid/is", "is", NULL, NULL, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char what[128];
    snprintf(what, sizeof what, "%s %s", tag, cases[c].name);
    int n = cases[c].N;
    ppl_result *r = run(cases[c].m, spec, cases[c].engine, n > 1 ? n : 0,
                        n > 1 ? n * R : 10000, cases[c].opt, cases[c].val, 20261207 + c);
    if (!tap_ok(r != NULL, "%s: runs (%s)", what, ppl_errmsg(ctx))) continue;
    Est s = estimate(r, &e, n);
    check(what, &s, &e, n);
    free(s.u);
    free(s.uz);
    ppl_result_free(r);
  }
  rejection(cond, spec, &e, tag);
  ppl_context_free(ctx);
  lm_close(b);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_steer_exact TESTS_EXACT_DIR\n");
    return 2;
  }
  dir = argv[1];
  char spec[600];
  snprintf(spec, sizeof spec, "ngram:%s/lm/abc.txt", dir);
  backend(spec, "ngram");
  const char *gguf = getenv("PPL_TEST_GGUF");
  if (gguf && *gguf) {
    snprintf(spec, sizeof spec, "llama:%s", gguf);
    backend(spec, "llama");
  } else {
    tap_ok(1, "llama.cpp # SKIP no tiny GGUF model and libllama (set PPL_TEST_GGUF=PATH.gguf)");
  }
  return tap_done();
}
