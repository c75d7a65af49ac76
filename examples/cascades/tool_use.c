/* tool_use.c — a language-model cascade with a tool: a host registers a
 * calculator on strings (ppl_register_string_function) that the model
 * tool_use.ppl calls on the text its language model wrote, runs SMC
 * steering (engine steer) with the n-gram model (or any --lm spec), and
 * checks that every kept draw is an operand the calculator accepts.
 * Built and run by the test suite.
 *
 *   tool_use MODEL.ppl LM_SPEC     (LM_SPEC: ngram:sums.txt,order=3 or llama:M.gguf) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"

/* calc("a+b"), calc("a*b"), calc("a-b") on integers; anything else is not
 * an expression and gives "?" (the model wrote nonsense: no error, the
 * program's condition rejects it). */
static int calc(void *ud, int nargs, const char *const *args, char **out, char *err,
                size_t errsz) {
  (void)ud, (void)nargs, (void)err, (void)errsz;
  const char *s = args[0];
  char *end;
  long x = strtol(s, &end, 10), y;
  char op = end > s ? *end : 0;
  char res[32] = "?";
  if (op == '+' || op == '-' || op == '*') {
    const char *t = end + 1;
    y = strtol(t, &end, 10);
    if (end > t && *end == 0 && labs(x) < 1000000 && labs(y) < 1000000)
      snprintf(res, sizeof res, "%ld", op == '+' ? x + y : op == '-' ? x - y : x * y);
  }
  *out = malloc(strlen(res) + 1);
  if (!*out) return 1;
  strcpy(*out, res);
  return 0;
}

static int fail(ppl_context *ctx, const char *what) {
  fprintf(stderr, "tool_use: %s failed: %s\n", what, ppl_errmsg(ctx));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: tool_use MODEL.ppl LM_SPEC\n");
    return 2;
  }
  ppl_context *ctx = ppl_context_new(NULL);
  ppl_model *m = NULL;
  if (ppl_register_string_function(ctx, "calc", 1, calc, NULL) != PPL_OK)
    return fail(ctx, "register calc");
  if (ppl_compile_file(ctx, argv[1], &m) != PPL_OK) return fail(ctx, "compile");
  if (ppl_set_data_json(m, "{\"a\": 7, \"goal\": 12}", "data") != PPL_OK) return fail(ctx, "data");
  ppl_run_options o;
  ppl_run_options_default(&o);
  o.engine = "steer";
  o.chains = 1;
  o.draws = 64;
  o.seed = 3;
  ppl_run_set(&o, "lm", argv[2]);
  ppl_run_set(&o, "particles", "64");
  ppl_result *r = NULL;
  if (ppl_run(m, &o, &r) != PPL_OK) return fail(ctx, "run");
  int col = ppl_result_column_index(r, "b"), lw = ppl_result_column_index(r, "log_weight__");
  double mass = 0, right = 0;
  for (int d = 0; d < ppl_result_num_draws(r); d++) {
    double w = exp(ppl_result_draw(r, 0, d, lw));
    mass += w;
    if (ppl_result_draw(r, 0, d, col) == 5) right += w;
  }
  double ev = NAN, se = NAN;
  ppl_result_log_evidence(r, &ev, &se);
  printf("tool_use: 7 + b = 12: P(b = 5) = %.3f over %d particles; log evidence %.3f "
         "(the log-probability that the model's operand makes the calculator say 12)\n",
         mass > 0 ? right / mass : NAN, ppl_result_num_draws(r), ev);
  int ok = mass > 0 && fabs(right / mass - 1) < 1e-9 && isfinite(ev);
  if (!ok) fprintf(stderr, "tool_use: expected every weighted draw to have b = 5\n");
  ppl_result_free(r);
  ppl_run_options_free(&o);
  ppl_context_free(ctx);
  return ok ? 0 : 1;
}
