/* test_steer_exact.c — engine steer (resampling, and --resample never), smc,
 * is and rejection against the exact distribution over strings of short
 * language-model programs (tests/exact/lm/): a token loop under a mask
 * (`avoid`), the same loop with a condition per token instead, the same as
 * one `lm` string choice, each with a condition on the final string and a
 * factor.  Every program targets the same distribution, which the test
 * enumerates by scoring every prefix through the backend (lm.h): every
 * token but 'c' and newline (masked), at most L, eos ending.
 *
 * Estimates.  Each run of N particles gives, for every string s, the
 * unbiased estimate u(s) = (1/N) sum_i exp(log_weight_i) [s_i = s] of the
 * target's unnormalised mass gamma(s) = Z pi(s) (draw log weights are
 * log Z_run + log(N W_i)); is and rejection are runs of one.  Over R
 * independent runs the mean of u(s) is compared with gamma(s), with the
 * standard error from the runs' spread (never below an ideal sampler's), and
 * log of the mean of u(all) with log Z: |z| < 4; likewise the mean length
 * and P(the string starts with "a").  Rejection: `is` on the
 * program whose constraints are all conditions (weights 0 or 1) gives exact
 * draws; their frequencies go through a chi-square test (p > 1e-4).
 *
 *   test_steer_exact TESTS_EXACT_DIR
 * Backends: the n-gram model of lm/abc.txt (letters a, b, c: L = 3, every
 * string checked); llama.cpp on the tiny GGUF model of tests/lm/tiny_gguf.c
 * (L = 2, the same engines; its strings are too many to list, so the
 * statistics above and rejection's acceptance rate) when libllama is
 * installed, else a skip line.  The inline engines (smc, is) draw bytes that
 * split UTF-8 characters there: the families push the drawn token ids.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "ppl.h"
#include "lm/tiny_gguf.h"
#include "stdlib/lm.h"
#include "tap.h"

#define MAXS 64 /* strings listed one by one, at most (the n-gram's: a, b) */
#define MAXL 3

static const char *dir;

/* ---- the exact distribution ---- */

/* The target's unnormalised masses gamma(s) (the LM's probability of s and
 * its ending, times the program's condition and factor), summed: Z, and
 * against the statistics the programs' generated blocks output: the length
 * n, first_a (s starts with "a"); and s by s while the strings are few
 * (letters a and b only: the n-gram model's), by their `code`. */
typedef struct Exact {
  int L;               /* max tokens */
  double Z, n, first_a;
  double Zc;           /* the conditions' mass alone (no factor): rejection's acceptance */
  int ns;              /* strings listed; -1: too many (no per-string checks) */
  char s[MAXS][MAXL + 1];
  double gamma[MAXS];
} Exact;

static double prog_weight(const char *s, size_t len) {
  if (len == 2 && !memcmp(s, "ab", 2)) return 0; /* condition(s != "ab") */
  return exp(0.7 * (double)len);                 /* factor(0.7 * length(s)) */
}

static int code_of(const char *s) { /* as the programs' generated block */
  int c = 0;
  for (const char *p = s; *p; p++) c = c * 4 + (*p == 'a' ? 1 : *p == 'b' ? 2 : 3);
  return c;
}

/* log p(next token | prompt, toks) for every token, from a fresh state that
 * decodes the whole context: every prefix scored on its own (token ids as
 * drawn, not the text re-tokenised: a byte token of llama.cpp's need not be
 * valid UTF-8 on its own). */
static bool next_logp(LmBackend *b, const char *prompt, const int32_t *toks, int ntoks,
                      float *logp) {
  char err[256];
  int32_t ids[64];
  int n = b->tokenize(b->self, prompt, strlen(prompt), ids, 64, err, sizeof err);
  if (n < 0 || n + ntoks > 64) return false;
  memcpy(ids + n, toks, sizeof(int32_t) * (size_t)ntoks);
  n += ntoks;
  LmState *st = b->start(b->self, err, sizeof err);
  if (!st) return false;
  const int32_t *tp = ids;
  int rc = b->eval(b->self, 1, &st, &tp, &n, logp, err, sizeof err);
  b->release(b->self, st);
  return rc == 0;
}

/* Depth-first over the token sequences the mask allows (no 'c', no
 * newline; eos ends), at most e->L tokens; s[0..len) their text. */
static bool enumerate(LmBackend *b, const char *prompt, int32_t *toks, int depth, char *s,
                      size_t len, double lp, Exact *e) {
  float *logp = malloc(sizeof(float) * (size_t)b->n_vocab);
  if (!logp || !next_logp(b, prompt, toks, depth, logp)) return free(logp), false;
  double end = depth == e->L ? 0 : logp[b->eos]; /* max_tokens: no ending event */
  double g = exp(lp + end) * prog_weight(s, len);
  e->Z += g;
  e->Zc += g / exp(0.7 * (double)len);
  e->n += g * (double)len;
  e->first_a += len > 0 && s[0] == 'a' ? g : 0;
  if (e->ns >= 0 && e->ns < MAXS && len <= MAXL) {
    memcpy(e->s[e->ns], s, len);
    e->s[e->ns][len] = 0;
    e->gamma[e->ns++] = g;
  } else {
    e->ns = -1;
  }
  bool ok = true;
  for (int t = 0; ok && depth < e->L && t < b->n_vocab; t++) {
    char buf[16];
    int nt = t == b->eos || !(logp[t] > -INFINITY) ? 0 : b->token_text(b->self, t, buf, 16);
    if (nt <= 0 || nt > 8 || memchr(buf, 'c', (size_t)nt) || memchr(buf, '\n', (size_t)nt))
      continue;
    memcpy(s + len, buf, (size_t)nt);
    toks[depth] = t;
    ok = enumerate(b, prompt, toks, depth + 1, s, len + (size_t)nt, lp + logp[t], e);
  }
  free(logp);
  return ok;
}

static int exact_index(const Exact *e, int code) {
  for (int k = 0; k < e->ns; k++)
    if (code_of(e->s[k]) == code) return k;
  return -1;
}

/* ---- runs ---- */

/* Per run, unbiased estimates of the exact sums: Z, n, first_a, then the
 * strings' masses. */
enum { ST_Z, ST_N, ST_A, ST_S };
typedef struct Est {
  int runs, nst;
  double *u; /* [runs][nst] */
  int bad;   /* draws whose string is outside the enumeration */
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
      nc = ppl_result_column_index(r, "n"), ac = ppl_result_column_index(r, "first_a"),
      lc = ppl_result_column_index(r, "log_weight__");
  s.runs = D / N;
  s.nst = ST_S + (e->ns > 0 ? e->ns : 0);
  s.u = calloc((size_t)(s.runs * s.nst), sizeof(double));
  for (int d = 0; d < s.runs * N; d++) {
    double lw = lc >= 0 ? ppl_result_draw(r, 0, d, lc) : 0;
    if (!(lw > -INFINITY)) continue;
    double w = exp(lw) / N, *u = s.u + (d / N) * s.nst;
    u[ST_Z] += w;
    u[ST_N] += w * ppl_result_draw(r, 0, d, nc);
    u[ST_A] += w * ppl_result_draw(r, 0, d, ac);
    if (e->ns > 0) {
      int k = exact_index(e, (int)ppl_result_draw(r, 0, d, cc));
      if (k < 0) s.bad++;
      else u[ST_S + k] += w;
    }
  }
  return s;
}

/* |z| of the mean of the runs' column k against want; the SE from the
 * runs' spread, never below floor. */
static double zscore(const Est *s, int k, double want, double floor, double *mean) {
  int R = s->runs;
  double m = 0, v = 0;
  for (int r = 0; r < R; r++) m += s->u[r * s->nst + k];
  m /= R;
  for (int r = 0; r < R; r++) v += (s->u[r * s->nst + k] - m) * (s->u[r * s->nst + k] - m);
  double se = fmax(sqrt(v / (R - 1) / R), floor);
  *mean = m;
  return se > 0 ? fabs(m - want) / se : (m == want ? 0 : INFINITY);
}

static void check(const char *what, const Est *s, const Exact *e, int N) {
  int R = s->runs;
  double m, z;
  if (e->ns > 0) {
    tap_ok(s->bad == 0, "%s: every drawn string is one the target allows (%d are not)", what,
           s->bad);
    double worst = 0;
    const char *wname = "";
    for (int k = 0; k < e->ns; k++) {
      double p = e->gamma[k] / e->Z, ideal = e->Z * sqrt(p * (1 - p) / ((double)R * N));
      z = zscore(s, ST_S + k, e->gamma[k], ideal, &m);
      if (z > worst) worst = z, wname = e->s[k];
    }
    tap_ok(worst < 4, "%s: every string's mass within 4 SE of the exact one (worst z %.2f at \"%s\")",
           what, worst, wname);
  }
  z = zscore(s, ST_N, e->n, 0, &m);
  tap_ok(z < 4, "%s: E[length] %.4f vs exact %.4f (z %.2f)", what, m / e->Z, e->n / e->Z, z);
  double pa = e->first_a / e->Z; /* rare on llama's 254 bytes: an ideal sampler's SE at least */
  z = zscore(s, ST_A, e->first_a, e->Z * sqrt(pa * (1 - pa) / ((double)R * N)), &m);
  tap_ok(z < 4, "%s: P(starts with a) %.4f vs exact %.4f (z %.2f)", what, m / e->Z,
         e->first_a / e->Z, z);
  z = zscore(s, ST_Z, e->Z, 0, &m);
  tap_ok(z < 4, "%s: log evidence %.4f vs exact %.4f (z %.2f)", what, log(m), log(e->Z), z);
}

/* Exact draws from `is` on the all-conditions program: chi-square. */
static void rejection(ppl_model *m, const char *spec, const Exact *e, const char *tag, int D) {
  ppl_result *r = run(m, spec, "is", 0, D, NULL, NULL, 11);
  if (!tap_ok(r != NULL, "%s rejection: runs", tag)) return;
  int cc = ppl_result_column_index(r, "code"), lc = ppl_result_column_index(r, "log_weight__");
  double cnt[MAXS] = {0}, acc = 0;
  for (int d = 0; d < D; d++) {
    if (!(ppl_result_draw(r, 0, d, lc) > -INFINITY)) continue; /* rejected */
    int k = exact_index(e, (int)ppl_result_draw(r, 0, d, cc));
    if (k >= 0) cnt[k]++;
    acc++;
  }
  double Zc = e->Zc;
  tap_ok(fabs(acc / D - Zc) < 4 * sqrt(Zc * (1 - Zc) / D),
         "%s rejection: acceptance rate %.4f vs the exact normaliser %.4f", tag, acc / D, Zc);
  if (e->ns <= 0) {
    ppl_result_free(r);
    return;
  }
  /* the no-factor target: gamma / exp(0.7 len) */
  double g[MAXS];
  for (int k = 0; k < e->ns; k++) g[k] = e->gamma[k] / exp(0.7 * (double)strlen(e->s[k]));
  double chi = 0;
  int df = -1;
  for (int k = 0; k < e->ns; k++) {
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
  ppl_result_free(r);
}

static ppl_model *compile(ppl_context *ctx, const char *name, int L) {
  char path[512], data[32];
  snprintf(path, sizeof path, "%s/lm/%s.ppl", dir, name);
  snprintf(data, sizeof data, "{\"L\": %d}", L);
  ppl_model *m = NULL;
  if (!tap_ok(ppl_compile_file(ctx, path, &m) == PPL_OK &&
                  ppl_set_data_json(m, data, "data") == PPL_OK,
              "%s compiles (%s)", name, ppl_errmsg(ctx)))
    return NULL;
  return m;
}

/* The cases on one backend: L tokens at most, R runs of N particles for
 * steer and smc, D draws for is and 2 D for rejection. */
static void backend(LmBackend *b, const char *spec, const char *tag, int L, int N, int R, int D) {
  Exact e = {.L = L};
  char s[64];
  int32_t toks[MAXL];
  bool ok = enumerate(b, "b", toks, 0, s, 0, 0, &e);
  if (!tap_ok(ok, "%s: the target enumerated (Z %.5f, %d strings%s)", tag, e.Z, e.ns,
              e.ns < 0 ? ": too many to list" : ""))
    return;
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *mask = compile(ctx, "tokens_avoid", L), *cond = compile(ctx, "tokens_condition", L),
            *str = compile(ctx, "string_avoid", L);
  if (!mask || !cond || !str) return;
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
      {cond, "tokens_condition/smc (resampling each step)", "smc", "ess-threshold", "1", N},
      {mask, "tokens_avoid/smc", "smc", NULL, NULL, N},
      {mask, "tokens_avoid/is", "is", NULL, NULL, 1},
      {str, "string_avoid/is", "is", NULL, NULL, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char what[128];
    snprintf(what, sizeof what, "%s %s", tag, cases[c].name);
    int n = cases[c].N;
    if (n == 1 && D == 0) continue;
    ppl_result *r = run(cases[c].m, spec, cases[c].engine, n > 1 ? n : 0, n > 1 ? n * R : D,
                        cases[c].opt, cases[c].val, 20261207 + c);
    if (!tap_ok(r != NULL, "%s: runs (%s)", what, ppl_errmsg(ctx))) continue;
    Est st = estimate(r, &e, n);
    check(what, &st, &e, n);
    free(st.u);
    ppl_result_free(r);
  }
  if (D) rejection(cond, spec, &e, tag, 2 * D);
  ppl_context_free(ctx);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_steer_exact TESTS_EXACT_DIR\n");
    return 2;
  }
  dir = argv[1];
  char spec[600], err[256] = "";
  LmBackend *b = NULL;
  snprintf(spec, sizeof spec, "ngram:%s/lm/abc.txt", dir);
  if (tap_ok(lm_open(spec, &b, err, sizeof err), "ngram: opens (%s)", err))
    backend(b, spec, "ngram", 3, 50, 200, 10000);
  lm_close(b);
  /* llama.cpp on the tiny GGUF model tests/lm/tiny_gguf.c writes (its
     random weights spread mass over all 256 bytes: two tokens at most;
     one thread: the tiny model decodes in microseconds, and two threads
     spin against each other on a loaded machine) */
  char path[] = "/tmp/ppl_steer_tinyXXXXXX";
  int fd = mkstemp(path);
  b = NULL;
  if (fd < 0 || !tiny_gguf_write(path, 7, err, sizeof err)) {
    tap_ok(0, "llama: the tiny GGUF model is written (%s)", err);
  } else if (snprintf(spec, sizeof spec, "llama:%s,threads=1", path),
             !lm_open(spec, &b, err, sizeof err)) {
    tap_ok(1, "llama.cpp # SKIP %s (scripts/install-llama.sh installs it)", err);
  } else {
    backend(b, spec, "llama", 2, 20, 100, 10000);
  }
  lm_close(b);
  if (fd >= 0) close(fd), unlink(path);
  return tap_done();
}
