/* test_lm_lang.c — the `lm` and `lm_next` families through ppl.h, on a host
 * language model (ppl_register_lm) whose probabilities the test knows
 * exactly: observations score to the sum of their tokens' log-probabilities
 * and the ending, avoid masks never give an avoided letter and weigh each
 * draw by the mass they allow, importance sampling matches the evidence and
 * posterior enumerated here, and host string tools (ppl_register_string_function)
 * are called with their errors at the call's position. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "stdlib/lm.h"
#include "tap.h"

/* ---- a bigram model over {a, b, c} and eos ---------------------------- */

enum { A, B, C, EOS, NV };
/* P[prev][next]: prev 0..2 the last letter, 3 the start of the text */
static const double P[4][NV] = {
    {0.1, 0.3, 0.4, 0.2},
    {0.5, 0.1, 0.1, 0.3},
    {0.3, 0.3, 0.2, 0.2},
    {0.4, 0.3, 0.2, 0.1},
};

struct ppl_lm_state {
  int last; /* 3: nothing yet */
};

static int m_tokenize(void *self, const char *text, size_t len, int32_t *out, int max, char *err,
                      size_t errsz) {
  (void)self;
  for (size_t i = 0; i < len; i++) {
    if (text[i] < 'a' || text[i] > 'c') {
      snprintf(err, errsz, "the letters are a, b and c, not '%c'", text[i]);
      return -1;
    }
    if ((int)i < max) out[i] = text[i] - 'a';
  }
  return (int)len;
}
static int m_token_text(void *self, int32_t tok, char *buf, int cap) {
  (void)self;
  if (tok < 0 || tok >= NV) return -1;
  if (tok == EOS) return 0;
  if (cap > 0) buf[0] = (char)('a' + tok);
  return 1;
}
static ppl_lm_state *m_start(void *self, char *err, size_t errsz) {
  (void)self, (void)err, (void)errsz;
  ppl_lm_state *s = malloc(sizeof *s);
  s->last = 3;
  return s;
}
static ppl_lm_state *m_fork(void *self, const ppl_lm_state *s, char *err, size_t errsz) {
  ppl_lm_state *d = m_start(self, err, errsz);
  *d = *s;
  return d;
}
static void m_release(void *self, ppl_lm_state *s) {
  (void)self;
  free(s);
}
static int m_eval(void *self, int n, ppl_lm_state *const *st, const int32_t *const *toks,
                  const int *ntoks, float *logp, char *err, size_t errsz) {
  (void)self, (void)err, (void)errsz;
  for (int i = 0; i < n; i++) {
    if (ntoks[i] > 0) st[i]->last = toks[i][ntoks[i] - 1];
    for (int t = 0; t < NV; t++) logp[i * NV + t] = (float)log(P[st[i]->last][t]);
  }
  return 0;
}

/* The model's probabilities as the backend gives them (floats). */
static double lp1(int prev, int next) { return (double)(float)log(P[prev][next]); }

/* log p(text) token by token after the context's last letter (3: none). */
static double lp_text(int prev, const char *s) {
  double l = 0;
  for (; *s; s++) {
    l += lp1(prev, *s - 'a');
    prev = *s - 'a';
  }
  return l;
}
static int last_of(const char *s) { return *s ? s[strlen(s) - 1] - 'a' : 3; }

/* ---- a host string tool: a + b of two integers ------------------------- */

static int calc(void *ud, int nargs, const char *const *args, char **out, char *err, size_t errsz) {
  (*(int *)ud)++;
  long a, b;
  char extra;
  if (nargs != 1 || sscanf(args[0], "%ld+%ld%c", &a, &b, &extra) != 2) {
    snprintf(err, errsz, "cannot compute '%s'", nargs ? args[0] : "");
    return 1;
  }
  *out = malloc(32);
  snprintf(*out, 32, "%ld", a + b);
  return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static ppl_context *ctx;

static ppl_model *compile(const char *src) {
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, src, "m.ppl", &m) != PPL_OK) {
    tap_ok(0, "compiles: %s", ppl_errmsg(ctx));
    return NULL;
  }
  return m;
}

static ppl_result *run(ppl_model *m, const char *data, const char *engine, int draws,
                       unsigned seed) {
  if (data && ppl_set_data_json(m, data, "data") != PPL_OK) {
    tap_ok(0, "data: %s", ppl_errmsg(ctx));
    return NULL;
  }
  ppl_run_options o;
  ppl_run_options_default(&o);
  o.engine = engine;
  o.chains = 1;
  o.draws = draws;
  o.seed = seed;
  o.progress = PPL_PROGRESS_OFF;
  ppl_result *r = NULL;
  if (ppl_run(m, &o, &r) != PPL_OK) return NULL;
  return r;
}

static double evidence(ppl_model *m, const char *data) {
  ppl_result *r = run(m, data, "is", 20, 1);
  double z = NAN, se;
  if (r) ppl_result_log_evidence(r, &z, &se);
  else tap_ok(0, "run: %s", ppl_errmsg(ctx));
  ppl_result_free(r);
  return z;
}

/* An observation's log density, as the evidence of a program without
   latents (every particle has the same weight). */
static void test_observations(void) {
  ppl_model *m = compile("data { string x; }\n"
                         "model { x ~ lm(\"ab\", stop = \"c\", max_tokens = 5); }\n");
  /* after "ab": b, a, then the ending: c (the stop string) or eos */
  double want = lp_text(B, "ba") + log(exp(lp1(A, C)) + exp(lp1(A, EOS)));
  tap_near(evidence(m, "{\"x\": \"ba\"}"), want, 1e-12, "lm with a stop string: tokens and either ending");
  ppl_model_free(m);
  m = compile("data { string x; }\nmodel { x ~ lm(\"\", max_tokens = 3); }\n");
  tap_near(evidence(m, "{\"x\": \"ca\"}"), lp_text(3, "ca") + lp1(A, EOS), 1e-12,
           "lm without a stop string: tokens then eos");
  tap_near(evidence(m, "{\"x\": \"cab\"}"), lp_text(3, "cab"), 1e-12,
           "max_tokens tokens: no ending event");
  tap_near(evidence(m, "{\"x\": \"\"}"), lp1(3, EOS), 1e-12, "the empty string is eos at once");
  ppl_model_free(m);
  m = compile("data { string x; string c; }\nmodel { x ~ lm_next(c + \"a\"); }\n");
  tap_near(evidence(m, "{\"x\": \"b\", \"c\": \"cc\"}"), lp1(A, B), 1e-12,
           "lm_next: the token after the context");
  tap_near(evidence(m, "{\"x\": \"\", \"c\": \"\"}"), lp1(A, EOS), 1e-12, "lm_next: \"\" is eos");
  ppl_model_free(m);
}

/* avoid = "b": no draw has a b, and each draw's log weight is log Z, the
   mass of the other tokens. */
static void test_mask(void) {
  ppl_model *m = compile("model { string t ~ lm_next(\"a\", avoid = \"b\"); }\n"
                         "generated { int has_b = contains(t, \"b\"); int is_c = t == \"c\"; }\n");
  ppl_result *r = run(m, NULL, "is", 4000, 7);
  if (!r) {
    tap_ok(0, "run: %s", ppl_errmsg(ctx));
    return;
  }
  int hb = ppl_result_column_index(r, "has_b"), lw = ppl_result_column_index(r, "log_weight__"),
      ic = ppl_result_column_index(r, "is_c");
  int n = ppl_result_num_draws(r), bs = 0, bad_w = 0;
  double logz = log(1 - P[A][B]), cs = 0;
  for (int i = 0; i < n; i++) {
    bs += ppl_result_draw(r, 0, i, hb) != 0;
    bad_w += fabs(ppl_result_draw(r, 0, i, lw) - logz) > 1e-6;
    cs += ppl_result_draw(r, 0, i, ic);
  }
  tap_ok(hb >= 0 && lw >= 0 && bs == 0, "no draw of %d has the avoided letter", n);
  tap_ok(bad_w == 0, "every log weight is log Z = %g (%d differ)", logz, bad_w);
  /* the draws come from the renormalised mask: P(c) = 0.1 / 0.9 */
  double pc = P[A][C] / (1 - P[A][B]), se = sqrt(pc * (1 - pc) / n);
  tap_ok(fabs(cs / n - pc) < 4 * se, "draws from the masked model: P(c) %.4f, want %.4f +- %.4f",
         cs / n, pc, 4 * se);
  ppl_result_free(r);
  ppl_model_free(m);
}

/* A latent token under a mask, and an observation that depends on it. */
static const char TOKEN_OBS[] = "data { string y; }\n"
                                "model {\n"
                                "  string w ~ lm_next(\"a\", avoid = \"b\");\n"
                                "  y ~ lm(w, max_tokens = 3);\n"
                                "}\n"
                                "generated { int is_c = w == \"c\"; }\n";

/* TOKEN_OBS: importance sampling's evidence and posterior against
   enumeration (the mask's weight included). */
static void test_exact(void) {
  ppl_model *m = compile(TOKEN_OBS);
  const char *y = "ca";
  /* w in {a, c, eos}: the target is P(w | a) (b excluded) times p(y | w) */
  const char *ws[3] = {"a", "c", ""};
  int wt[3] = {A, C, EOS};
  double z = 0, zc = 0;
  for (int k = 0; k < 3; k++) {
    double l = lp1(A, wt[k]) + lp_text(last_of(ws[k]), y) + lp1(last_of(y), EOS);
    z += exp(l);
    if (k == 1) zc = exp(l);
  }
  ppl_result *r = run(m, "{\"y\": \"ca\"}", "is", 20000, 11);
  if (!r) {
    tap_ok(0, "run: %s", ppl_errmsg(ctx));
    return;
  }
  double est, se;
  ppl_result_log_evidence(r, &est, &se);
  tap_ok(fabs(est - log(z)) < 4 * se + 1e-9, "log evidence %.5f, exact %.5f (se %.5f)", est,
         log(z), se);
  /* the weighted mean of is_c against the exact posterior P(w = c | y) */
  int ic = ppl_result_column_index(r, "is_c"), lw = ppl_result_column_index(r, "log_weight__");
  int n = ppl_result_num_draws(r);
  double mx = -INFINITY, sw = 0, swc = 0, sw2 = 0;
  for (int i = 0; i < n; i++) mx = fmax(mx, ppl_result_draw(r, 0, i, lw));
  for (int i = 0; i < n; i++) {
    double w = exp(ppl_result_draw(r, 0, i, lw) - mx);
    sw += w, sw2 += w * w;
    swc += w * ppl_result_draw(r, 0, i, ic);
  }
  double post = zc / z, ess = sw * sw / sw2, pse = sqrt(post * (1 - post) / ess);
  tap_ok(fabs(swc / sw - post) < 4 * pse, "posterior P(w = c | y) %.4f, exact %.4f (+- %.4f)",
         swc / sw, post, 4 * pse);
  ppl_result_free(r);
  ppl_model_free(m);
}

/* A whole string under a mask: the normalised target p(s) 1[no b] / Z over
   the strings of at most two tokens, enumerated. */
static void test_exact_lm(void) {
  ppl_model *m = compile("model { string s ~ lm(\"\", max_tokens = 2, avoid = \"b\"); }\n"
                         "generated { int is_ac = s == \"ac\"; int is_a = s == \"a\"; }\n");
  const char *al = "ac";
  double z = exp(lp1(3, EOS)), pac = 0, pa = 0;
  for (int i = 0; i < 2; i++) {
    int t1 = al[i] - 'a';
    double l1 = lp1(3, t1);
    double la = l1 + lp1(t1, EOS);
    z += exp(la);
    if (t1 == A) pa = exp(la);
    for (int j = 0; j < 2; j++) {
      int t2 = al[j] - 'a';
      double l2 = l1 + lp1(t1, t2);
      z += exp(l2);
      if (t1 == A && t2 == C) pac = exp(l2);
    }
  }
  ppl_result *r = run(m, NULL, "is", 20000, 5);
  if (!r) {
    tap_ok(0, "run: %s", ppl_errmsg(ctx));
    return;
  }
  int lw = ppl_result_column_index(r, "log_weight__");
  int cols[2] = {ppl_result_column_index(r, "is_ac"), ppl_result_column_index(r, "is_a")};
  double want[2] = {pac / z, pa / z};
  int n = ppl_result_num_draws(r);
  double est, se;
  ppl_result_log_evidence(r, &est, &se);
  tap_ok(fabs(est - log(z)) < 4 * se + 1e-9, "lm under a mask: log Z %.5f, exact %.5f (se %.5f)",
         est, log(z), se);
  for (int k = 0; k < 2; k++) {
    double sw = 0, sx = 0, sw2 = 0;
    for (int i = 0; i < n; i++) {
      double w = exp(ppl_result_draw(r, 0, i, lw));
      sw += w, sw2 += w * w, sx += w * ppl_result_draw(r, 0, i, cols[k]);
    }
    double ess = sw * sw / sw2, pse = sqrt(want[k] * (1 - want[k]) / ess);
    tap_ok(fabs(sx / sw - want[k]) < 4 * pse, "P(s = \"%s\") %.4f, exact %.4f (+- %.4f)",
           k ? "a" : "ac", sx / sw, want[k], 4 * pse);
  }
  ppl_result_free(r);
  ppl_model_free(m);
}

/* MH and SMC run the same program inline (the weight enters as a factor). */
static void test_engines(void) {
  ppl_model *m = compile(TOKEN_OBS);
  const char *eng[2] = {"mh", "smc"};
  for (int e = 0; e < 2; e++) {
    ppl_result *r = run(m, "{\"y\": \"ca\"}", eng[e], 4000, 3);
    ppl_summary s;
    int ic = r ? ppl_result_column_index(r, "is_c") : -1;
    bool ok = r && ppl_result_summary(r, ic, &s) == PPL_OK;
    /* exact posterior: from test_exact's enumeration */
    double l[3];
    const int wt[3] = {A, C, EOS};
    const char *ws[3] = {"a", "c", ""};
    for (int k = 0; k < 3; k++)
      l[k] = exp(lp1(A, wt[k]) + lp_text(last_of(ws[k]), "ca") + lp1(A, EOS));
    double post = l[1] / (l[0] + l[1] + l[2]);
    tap_ok(ok && fabs(s.mean - post) < 4 * s.mcse,
           "%s: P(w = c | y) %.4f, exact %.4f (mcse %.4f)", eng[e], ok ? s.mean : NAN, post,
           ok ? s.mcse : NAN);
    if (!r) tap_ok(0, "%s: %s", eng[e], ppl_errmsg(ctx));
    ppl_result_free(r);
  }
  ppl_model_free(m);
}

static void test_tools(int *calls) {
  ppl_model *m = compile("model { string w ~ lm_next(\"a\"); }\n"
                         "generated { real v = parse_real(calc(\"2+3\")); }\n");
  ppl_result *r = run(m, NULL, "is", 10, 1);
  int c = r ? ppl_result_column_index(r, "v") : -1;
  tap_ok(r && c >= 0 && ppl_result_draw(r, 0, 9, c) == 5 && *calls >= 10,
         "a host string tool is called (calc(\"2+3\") = 5, %d calls)", *calls);
  ppl_result_free(r);
  ppl_model_free(m);
  m = compile("model { string w ~ lm_next(\"a\"); }\n"
              "generated { string v = calc(w + \"?\"); }\n");
  r = run(m, NULL, "is", 10, 1);
  tap_ok(!r && strstr(ppl_errmsg(ctx), "calc: cannot compute '"),
         "its error is the run's: %s", ppl_errmsg(ctx));
  int line = 0, col = 0;
  ppl_errpos(ctx, NULL, &line, &col);
  tap_ok(line == 2 && col == 24, "at the call's position (%d:%d)", line, col);
  ppl_model_free(m);
  ppl_model *bad = NULL;
  tap_ok(ppl_compile_string(ctx, "model { real x ~ normal(0, 1); string s = calc(x); }", "b.ppl",
                            &bad) != PPL_OK &&
             strstr(ppl_errmsg(ctx), "argument 1 of 'calc' must be string, got real (convert "
                                     "numbers with to_string)"),
         "a number is refused: %s", ppl_errmsg(ctx));
  tap_ok(ppl_register_string_function(ctx, "calc", 1, calc, calls) == PPL_ERR_USAGE,
         "a name is registered once");
}

static void test_unbound(void) {
  ppl_context *bare = ppl_context_new(NULL);
  ppl_model *m = NULL;
  ppl_compile_string(bare, "model {\n  string w ~ lm_next(\"a\");\n}\n", "m.ppl", &m);
  ppl_run_options o;
  ppl_run_options_default(&o);
  o.chains = 1;
  o.draws = 5;
  o.progress = PPL_PROGRESS_OFF;
  ppl_result *r = NULL;
  tap_ok(m && ppl_run(m, &o, &r) != PPL_OK &&
             !strcmp(ppl_errmsg(bare), "m.ppl:2:10: this program draws from a language model: "
                                       "give one with --lm ngram:FILE or --lm llama:FILE.gguf"),
         "no model: %s", ppl_errmsg(bare));
  int line = 0, col = 0;
  ppl_errpos(bare, NULL, &line, &col);
  tap_ok(line == 2 && col == 10, "at the first lm choice (%d:%d)", line, col);
  const char *eng = NULL, *why = NULL;
  bool chosen = m && ppl_model_engine(m, NULL, &eng, &why) == PPL_OK;
  tap_ok(chosen && strstr(why, "draws from a language model"), "the engine chosen says why: %s",
         chosen ? why : ppl_errmsg(bare));
  ppl_run_set(&o, "lm", "bogus:x");
  tap_ok(m && ppl_run(m, &o, &r) != PPL_OK && strstr(ppl_errmsg(bare), "--lm bogus:x: unknown"),
         "a bad spec: %s", ppl_errmsg(bare));
  ppl_run_options_free(&o);
  ppl_model_free(m);
  ppl_context_free(bare);
}

/* The built-in n-gram model through --lm: an observation's log density is
   the sum of its tokens' log-probabilities after the prompt, read here from
   the backend token by token, and the ending's (eos, or the stop string). */
static double ngram_evidence(const char *spec, const char *src, const char *x) {
  ppl_context *cx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  double z = NAN, se;
  if (ppl_compile_string(cx, src, "m.ppl", &m) == PPL_OK &&
      ppl_set_data_json(m, x, "data") == PPL_OK) {
    ppl_run_options o;
    ppl_run_options_default(&o);
    o.engine = "is";
    o.chains = 1;
    o.draws = 10;
    o.progress = PPL_PROGRESS_OFF;
    ppl_run_set(&o, "lm", spec);
    ppl_result *r = NULL;
    if (ppl_run(m, &o, &r) == PPL_OK) ppl_result_log_evidence(r, &z, &se);
    else tap_ok(0, "n-gram run: %s", ppl_errmsg(cx));
    ppl_result_free(r);
    ppl_run_options_free(&o);
  }
  ppl_model_free(m);
  ppl_context_free(cx);
  return z;
}

static void test_ngram(const char *corpus) {
  char spec[1024], err[256];
  snprintf(spec, sizeof spec, "ngram:%s", corpus);
  LmBackend *b = NULL;
  if (!tap_ok(lm_open(spec, &b, err, sizeof err), "n-gram model opened: %s", b ? spec : err)) return;
  const char *prompt = "the ", *x = "cat sat";
  LmCursor c;
  LmCursor *one[1] = {&c};
  lm_cursor_init(&c, b, err, sizeof err);
  lm_cursor_seek(&c, prompt, strlen(prompt), err, sizeof err);
  int32_t toks[16], sp;
  int n = b->tokenize(b->self, x, strlen(x), toks, 16, err, sizeof err);
  b->tokenize(b->self, " ", 1, &sp, 1, err, sizeof err);
  double lp[16] = {0}, end3 = 0; /* lp[i]: the first i tokens' log-probability */
  for (int i = 0; i < n; i++) {
    lm_cursor_eval(one, 1, err, sizeof err);
    if (i == 3) /* after "cat": eos or the stop string " " */
      end3 = log(exp((double)c.logp[b->eos]) + exp((double)c.logp[sp]));
    lp[i + 1] = lp[i] + c.logp[toks[i]];
    lm_cursor_push(&c, toks[i], err, sizeof err);
  }
  lm_cursor_eval(one, 1, err, sizeof err);
  double end7 = c.logp[b->eos];
  lm_cursor_free(&c);
  /* lm_score (double precision where the backend has it) agrees */
  lm_cursor_init(&c, b, err, sizeof err);
  lm_cursor_seek(&c, prompt, strlen(prompt), err, sizeof err);
  lm_cursor_eval(one, 1, err, sizeof err);
  double scored = 0;
  lm_score(b, c.st, toks, n, &scored, err, sizeof err);
  lm_cursor_free(&c);
  lm_close(b);
  tap_ok(n == 7 && fabs(scored - lp[7]) < 1e-5, "lm_score agrees with the tokens' sum (%.7f, %.7f)",
         scored, lp[7]);
  const char *with_stop = "data { string x; }\nmodel { x ~ lm(\"the \", stop = \" \"); }\n";
  const char *no_stop = "data { string x; }\nmodel { x ~ lm(\"the \"); }\n";
  tap_near(ngram_evidence(spec, no_stop, "{\"x\": \"cat sat\"}"), lp[7] + end7, 1e-9,
           "n-gram: log density of an observed string = its tokens' sum + eos");
  tap_near(ngram_evidence(spec, with_stop, "{\"x\": \"cat\"}"), lp[3] + end3, 1e-9,
           "n-gram with stop: + log(P(eos) + P(stop))");
  tap_ok(ngram_evidence(spec, with_stop, "{\"x\": \"cat sat\"}") == -INFINITY,
         "a string holding the stop string has density 0");
}

int main(int argc, char **argv) {
  ctx = ppl_context_new(NULL);
  ppl_lm_backend lm = {"bigram", NULL, NV, EOS, m_tokenize, m_token_text, m_start, m_fork,
                       m_release, m_eval, NULL, NULL};
  int calls = 0;
  tap_ok(ppl_register_lm(ctx, "", &lm) == PPL_OK &&
             ppl_register_string_function(ctx, "calc", 1, calc, &calls) == PPL_OK,
         "a host model and a host tool registered");
  test_observations();
  test_mask();
  test_exact();
  test_exact_lm();
  test_engines();
  test_tools(&calls);
  test_unbound();
  if (argc > 1) test_ngram(argv[1]);
  ppl_context_free(ctx);
  return tap_done();
}
