/* test_lm_register.c — ppl_register_lm (public API): a host's language
 * model is accepted, checked, kept per context and destroyed with it. */
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

/* A host model over {a, b, eos} that always gives 1/2, 1/4, 1/4. */
struct ppl_lm_state {
  int ntok;
};
typedef struct Host {
  int states, destroyed;
} Host;

static int h_tokenize(void *self, const char *text, size_t len, int32_t *out, int max, char *err,
                      size_t errsz) {
  (void)self;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != 'a' && text[i] != 'b') {
      snprintf(err, errsz, "only a and b");
      return -1;
    }
    if ((int)i < max) out[i] = text[i] - 'a';
  }
  return (int)len;
}
static int h_token_text(void *self, int32_t tok, char *buf, int cap) {
  (void)self;
  if (tok < 0 || tok > 2) return -1;
  if (tok == 2) return 0;
  if (cap > 0) buf[0] = (char)('a' + tok);
  return 1;
}
static ppl_lm_state *h_start(void *self, char *err, size_t errsz) {
  (void)err;
  (void)errsz;
  ((Host *)self)->states++;
  return calloc(1, sizeof(ppl_lm_state));
}
static ppl_lm_state *h_fork(void *self, const ppl_lm_state *s, char *err, size_t errsz) {
  ppl_lm_state *d = h_start(self, err, errsz);
  *d = *s;
  return d;
}
static void h_release(void *self, ppl_lm_state *s) {
  ((Host *)self)->states--;
  free(s);
}
static int h_eval(void *self, int n, ppl_lm_state *const *st, const int32_t *const *toks, const int *ntoks,
                  float *logp, char *err, size_t errsz) {
  (void)self, (void)toks, (void)err, (void)errsz;
  for (int i = 0; i < n; i++) {
    st[i]->ntok += ntoks[i];
    logp[3 * i] = -0.6931472f;
    logp[3 * i + 1] = logp[3 * i + 2] = -1.3862944f;
  }
  return 0;
}
static void h_destroy(void *self) { ((Host *)self)->destroyed++; }

int main(void) {
  Host h = {0, 0};
  ppl_lm_backend lm = {"host-ab", &h, 3, 2, h_tokenize, h_token_text, h_start, h_fork, h_release,
                       h_eval, NULL, h_destroy};
  ppl_context *ctx = ppl_context_new(NULL);
  tap_ok(ppl_register_lm(ctx, "", &lm) == PPL_OK, "the default model registered");
  tap_ok(ppl_register_lm(ctx, "small", &lm) == PPL_OK, "a named model registered");
  tap_ok(ppl_register_lm(ctx, "small", &lm) == PPL_ERR_USAGE, "a name taken twice is refused");
  tap_streq(ppl_errmsg(ctx), "ppl_register_lm: 'small' is already registered", "its message");
  tap_ok(ppl_register_lm(ctx, "", &lm) == PPL_ERR_USAGE, "a second default is refused");
  tap_ok(ppl_register_lm(ctx, "two words", &lm) == PPL_ERR_USAGE &&
             strstr(ppl_errmsg(ctx), "invalid model name 'two words'"),
         "an invalid name is refused: %s", ppl_errmsg(ctx));
  ppl_lm_backend bad = lm;
  bad.eval = NULL;
  tap_ok(ppl_register_lm(ctx, "noeval", &bad) == PPL_ERR_USAGE &&
             strstr(ppl_errmsg(ctx), "needs tokenize, token_text, start, fork, release and eval"),
         "a model without eval is refused: %s", ppl_errmsg(ctx));
  bad = lm;
  bad.eos = 3;
  tap_ok(ppl_register_lm(ctx, "badeos", &bad) == PPL_ERR_USAGE, "eos outside the vocabulary is refused: %s",
         ppl_errmsg(ctx));
  tap_ok(ppl_register_lm(ctx, "x", NULL) == PPL_ERR_USAGE, "NULL lm is refused");
  tap_ok(ppl_register_lm(NULL, "x", &lm) == PPL_ERR_USAGE, "NULL context is refused");
  tap_ok(h.destroyed == 0 && h.states == 0, "nothing destroyed or started yet");
  /* a run whose models fail to open (a missing file, a name given twice)
     leaves the context free for the next run */
  ppl_model *m = NULL;
  tap_ok(ppl_compile_string(ctx, "model {\n  string t ~ lm_next(\"a\");\n}\n", "t.ppl", &m) ==
             PPL_OK, "an lm program compiles (%s)", ppl_errmsg(ctx));
  const char *fails[][2] = {{"lm", "ngram:/nonexistent/corpus.txt"}, {"lm", "small=ngram:/nonexistent/x"}};
  for (int k = 0; k < 3; k++) {
    ppl_run_options o;
    ppl_run_options_default(&o);
    o.engine = "is";
    o.chains = 1;
    o.draws = 4;
    if (k < 2) ppl_run_set(&o, fails[k][0], fails[k][1]);
    if (k == 1) ppl_run_set(&o, "lm", "small=ngram:/nonexistent/y"); /* given twice */
    ppl_result *r = NULL;
    ppl_status st = ppl_run(m, &o, &r);
    if (k < 2)
      tap_ok(st != PPL_OK && !strstr(ppl_errmsg(ctx), "another program"),
             "a run whose models do not open fails: %s", ppl_errmsg(ctx));
    else
      tap_ok(st == PPL_OK && ppl_result_num_draws(r) == 4,
             "and the next run of the context runs (%s)", ppl_errmsg(ctx));
    ppl_result_free(r);
    ppl_run_options_free(&o);
  }
  ppl_context_free(ctx);
  tap_ok(h.destroyed == 2, "both registered models destroyed with the context (%d)", h.destroyed);
  ppl_context *c2 = ppl_context_new(NULL);
  lm.destroy = NULL;
  tap_ok(ppl_register_lm(c2, "", &lm) == PPL_OK, "destroy is optional");
  ppl_context_free(c2);
  tap_ok(h.destroyed == 2, "and then not called");
  return tap_done();
}
