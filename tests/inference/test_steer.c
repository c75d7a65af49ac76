/* test_steer.c — engine steer through ppl.h, on the n-gram model of
 * tests/exact/lm/abc.txt wrapped in a counting backend (ppl_register_lm):
 * the shared prompt is decoded once and every later step decodes one token a
 * particle; masks hold (no avoided byte in any token); the same seed gives
 * the same draws; --select best and vote give one draw per run, and vote's
 * draw carries the most common answer; --budget drops the unfinished;
 * a condition that no particle meets is a clear error; an unknown model
 * name is a clear error.  The inline engines (is, smc) on the same backend
 * tokenise the prompt once and decode each drawn token once: the lm
 * families' cursors keep the drawn ids.  The distribution itself is
 * test_steer_exact's.
 *
 *   test_steer TESTS_EXACT_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "lm_count.h"
#include "stdlib/lm.h"
#include "tap.h"

static LmCount cnt;

static ppl_context *context(void) {
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_lm_backend lb = lm_count_backend(&cnt, "counting");
  if (ppl_register_lm(ctx, "", &lb) != PPL_OK) tap_diag("register: %s", ppl_errmsg(ctx));
  return ctx;
}

static ppl_result *run(ppl_context *ctx, const char *src, int N, int draws, const char *opt,
                       const char *val, uint64_t seed) {
  ppl_model *m = NULL;
  if (ppl_compile_string(ctx, src, "t.ppl", &m) != PPL_OK) {
    tap_diag("compile: %s", ppl_errmsg(ctx));
    return NULL;
  }
  ppl_run_options o;
  ppl_run_options_default(&o);
  o.engine = "steer";
  o.chains = 1;
  o.draws = draws;
  o.seed = seed;
  char buf[32];
  snprintf(buf, sizeof buf, "%d", N);
  ppl_run_set(&o, "particles", buf);
  if (opt) ppl_run_set(&o, opt, val);
  ppl_result *r = NULL;
  if (ppl_run(m, &o, &r) != PPL_OK) r = NULL;
  ppl_run_options_free(&o);
  return r;
}

/* A 20-byte prompt, then four tokens: the `lm` string and the token loop. */
static const char *str_src =
    "model {\n  string s ~ lm(\"abcabbacbbaabcbacbab\", max_tokens = 4, avoid = \"c\\n\");\n}\n"
    "generated {\n  int n = length(s);\n  int has_c = contains(s, \"c\");\n}\n";

static const char *loop_src =
    "model {\n  string s = \"\";\n  for (i in 1:4) {\n"
    "    string t ~ lm_next(\"abcabbacbbaabcbacbab\" + s);\n"
    "    condition(!contains(t, \"c\"));\n    s = s + t;\n  }\n}\n"
    "generated {\n  int n = length(s);\n  int has_c = contains(s, \"c\");\n}\n";

static double col_sum(const ppl_result *r, const char *name) {
  int c = ppl_result_column_index(r, name);
  double s = 0;
  for (int d = 0; d < ppl_result_num_draws(r); d++) {
    double v = ppl_result_draw(r, 0, d, c);
    if (!isnan(v)) s += v;
  }
  return s;
}

static void sharing(void) {
  ppl_context *ctx = context();
  const int N = 40, P = 20;
  cnt = (LmCount){.b = cnt.b};
  ppl_result *r = run(ctx, str_src, N, N, "resample", "never", 1);
  if (tap_ok(r != NULL, "lm string: runs (%s)", ppl_errmsg(ctx))) {
    /* the prompt once, then at most one token per particle per step (4 steps;
       eos is drawn, never decoded) */
    tap_ok(cnt.decoded <= P + 4L * N && cnt.decoded >= P,
           "the shared prompt is decoded once: %ld tokens decoded for %d particles (prompt %d)",
           cnt.decoded, N, P);
    /* equal contexts (particles that drew the same tokens) are decoded once
       too, so a batch has the distinct ones */
    tap_ok(cnt.evals <= 4 && cnt.maxbatch <= N && cnt.starts <= cnt.maxbatch,
           "one batched eval per token step: %ld evals, largest batch %ld, %ld states started",
           cnt.evals, cnt.maxbatch, cnt.starts);
    tap_ok(col_sum(r, "has_c") == 0, "avoid: no generated string has a masked byte");
    tap_ok(col_sum(r, "n") > 0, "the strings are not all empty (%g bytes)", col_sum(r, "n"));
    ppl_result_free(r);
  }
  cnt = (LmCount){.b = cnt.b};
  r = run(ctx, loop_src, N, N, NULL, NULL, 2);
  if (tap_ok(r != NULL, "token loop with a condition: runs (%s)", ppl_errmsg(ctx))) {
    tap_ok(cnt.decoded <= P + 4L * N, "token loop: prompt once, one token a step (%ld decoded)",
           cnt.decoded);
    int lw = ppl_result_column_index(r, "log_weight__"), c = ppl_result_column_index(r, "has_c");
    double bad = 0;
    for (int d = 0; d < N; d++)
      if (ppl_result_draw(r, 0, d, lw) > -INFINITY) bad += ppl_result_draw(r, 0, d, c);
    tap_ok(bad == 0, "token loop: no weighted draw has a 'c' (the condition per token)");
    double ev = NAN, se = NAN;
    bool has = ppl_result_log_evidence(r, &ev, &se) == PPL_OK;
    tap_ok(has && ev < -0.05 && ev > -20 && se > 0 && se < 1,
           "token loop: a log evidence (%.3f ± %.3f), below 0 (the condition has mass < 1)", ev,
           se);
    ppl_result_free(r);
  }
  ppl_context_free(ctx);
}

static void determinism(void) {
  ppl_context *ctx = context();
  ppl_result *a = run(ctx, loop_src, 30, 60, NULL, NULL, 9),
             *b = run(ctx, loop_src, 30, 60, NULL, NULL, 9);
  bool same = a && b;
  for (int d = 0; same && d < 60; d++)
    for (int c = 0; c < ppl_result_num_columns(a); c++) {
      double x = ppl_result_draw(a, 0, d, c), y = ppl_result_draw(b, 0, d, c);
      if (!(x == y || (isnan(x) && isnan(y)))) same = false;
    }
  tap_ok(same, "the same seed gives the same draws (two runs of 30 particles)");
  ppl_result_free(a);
  ppl_result_free(b);
  ppl_context_free(ctx);
}

static void selection(void) {
  ppl_context *ctx = context();
  ppl_result *r = run(ctx, str_src, 20, 7, "select", "best", 3);
  if (tap_ok(r != NULL, "--select best runs (%s)", ppl_errmsg(ctx))) {
    int lw = ppl_result_column_index(r, "log_weight__");
    tap_ok(ppl_result_num_draws(r) == 7 && ppl_result_draw(r, 0, 3, lw) == 0,
           "--select best: 7 draws (one a run), log weight 0");
    ppl_result_free(r);
  }
  /* vote: the answer is a coin the model cannot see; a string of one token
     from a prompt whose next byte is 'a' or 'b' */
  const char *vote_src =
      "model {\n  string ans ~ lm(\"aaaaaaaaaa\", max_tokens = 1, avoid = \"c\\n\");\n}\n"
      "generated {\n  int is_a = ans == \"a\";\n}\n";
  ppl_result *all = run(ctx, vote_src, 50, 50, "resample", "never", 4);
  ppl_result *v = run(ctx, vote_src, 50, 5, "select", "vote", 4);
  if (tap_ok(all && v, "--select vote runs (%s)", ppl_errmsg(ctx))) {
    double pa = col_sum(all, "is_a") / 50;
    /* with 50 equally weighted particles, the majority is that of the run */
    tap_ok(ppl_result_num_draws(v) == 5 && col_sum(v, "is_a") == (pa > 0.5 ? 5 : 0),
           "--select vote: 5 runs, each voting the majority answer (P(a) ~ %.2f)", pa);
  }
  ppl_result_free(all);
  ppl_result_free(v);
  r = run(ctx, str_src, 20, 20, "budget", "30", 5);
  if (tap_ok(r != NULL, "--budget 30 runs (%s)", ppl_errmsg(ctx))) {
    int lw = ppl_result_column_index(r, "log_weight__"), zero = 0;
    for (int d = 0; d < 20; d++) zero += !(ppl_result_draw(r, 0, d, lw) > -INFINITY);
    tap_ok(zero > 0, "--budget 30 with 20 particles of up to 4 tokens: %d dropped", zero);
    ppl_result_free(r);
  }
  ppl_context_free(ctx);
}

static void errors(void) {
  ppl_context *ctx = context();
  ppl_result *r = run(ctx,
                      "model {\n  string t ~ lm_next(\"ab\");\n  condition(t == \"zzz\");\n}\n",
                      10, 10, NULL, NULL, 1);
  tap_ok(r == NULL && strstr(ppl_errmsg(ctx), "every particle has weight zero"),
         "no particle meets the condition: %s", ppl_errmsg(ctx));
  ppl_result_free(r);
  r = run(ctx, "model {\n  string t ~ lm_next(\"ab\", model = \"judge\");\n}\n", 10, 10, NULL,
          NULL, 1);
  tap_ok(r == NULL && strstr(ppl_errmsg(ctx), "judge"), "an unknown model: %s", ppl_errmsg(ctx));
  ppl_result_free(r);
  ppl_context_free(ctx);
}

/* is and smc draw inline through the families' pool of cursors: the prompt
   is tokenised once (the drawn tokens are pushed by id, never tokenised as
   text) and each token a draw adds is decoded once.  A pool that lost the
   draw's context, or re-read it as text, tokenises the prompt per draw. */
static void inline_engines(void) {
  const char *eng[] = {"is", "smc"};
  for (int e = 0; e < 2; e++) {
    ppl_context *ctx = context();
    ppl_model *m = NULL;
    cnt = (LmCount){.b = cnt.b};
    ppl_run_options o;
    ppl_run_options_default(&o);
    o.engine = eng[e];
    o.chains = 1;
    o.draws = 40;
    o.seed = 5;
    if (e == 1) ppl_run_set(&o, "particles", "10");
    ppl_result *r = NULL;
    bool ok = ppl_compile_string(ctx, loop_src, "t.ppl", &m) == PPL_OK &&
              ppl_run(m, &o, &r) == PPL_OK;
    if (tap_ok(ok, "%s, inline: runs (%s)", eng[e], ppl_errmsg(ctx))) {
      double n = col_sum(r, "n");
      tap_ok(cnt.tokenized == 20, "%s, inline: the 20-byte prompt tokenised once (%ld bytes)",
             eng[e], cnt.tokenized);
      /* at most once: a context another draw reached is still in the pool */
      tap_ok(cnt.decoded <= 20 + 4 * 40 && cnt.starts == 1 && n > 0,
             "%s, inline: each drawn token decoded at most once (%ld decoded: prompt 20 + at most "
             "4 a draw; %ld states started; %.0f letters kept)", eng[e], cnt.decoded, cnt.starts, n);
    }
    ppl_result_free(r);
    ppl_run_options_free(&o);
    ppl_context_free(ctx);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  char spec[600], err[256] = "";
  snprintf(spec, sizeof spec, "ngram:%s/lm/abc.txt", argv[1]);
  if (!tap_ok(lm_open(spec, &cnt.b, err, sizeof err), "opens %s (%s)", spec, err))
    return tap_done();
  sharing();
  determinism();
  selection();
  errors();
  inline_engines();
  lm_close(cnt.b);
  return tap_done();
}
