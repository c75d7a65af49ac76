/* fuzz_run.c — fuzz target for whole runs through the public API: the input
 * is a model, optionally followed by a line "//@data" and its data as JSON;
 * it is compiled, given its data, and run for 5 warmup + 5 draws of one chain
 * under every engine that can run it.  Every call must succeed or fail with a
 * message; a crash, an abort or a sanitizer report is a bug.
 *
 * Budget: the interpreter has no step limit, so inputs that could run long
 * are skipped before compiling: more than 4 KB, a `while`, an integer of more
 * than three digits or a number with an exponent (loop bounds, sizes), more
 * than two `for`s, or a function (recursion).  What is left runs in
 * milliseconds; ppl_interrupt from a watchdog is not needed.  Draws are
 * kept in memory only (no CSV), the LLVM JIT is off (compiling is slow and is
 * fuzzed by the density tests), and print() goes to /dev/null. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs that could take long to run (see the header). */
static bool too_costly(const char *s) {
  if (strstr(s, "while") || strstr(s, "function") || strstr(s, "return")) return true;
  int fors = 0;
  for (const char *p = s; (p = strstr(p, "for")); p++) {
    const char *q = p + 3;
    while (*q == ' ' || *q == '\t') q++;
    fors += *q == '(';
  }
  if (fors > 2) return true;
  for (const char *p = s; *p;) {
    if (*p < '0' || *p > '9') {
      p++;
      continue;
    }
    const char *q = p;
    while (*q >= '0' && *q <= '9') q++;
    size_t whole = (size_t)(q - p); /* the digits before a fraction */
    if (*q == '.')
      for (q++; *q >= '0' && *q <= '9';) q++;
    if (whole > 3 || *q == 'e' || *q == 'E') return true;
    p = q;
  }
  return false;
}

static void run_all(ppl_context *ctx, ppl_model *m) {
  for (int e = 0; ppl_engine_name(e, NULL); e++) {
    const char *name = ppl_engine_name(e, NULL);
    if (ppl_model_engine(m, name, NULL, NULL) != PPL_OK) continue; /* does not fit */
    ppl_run_options ro;
    ppl_run_options_default(&ro);
    ro.engine = name;
    ro.chains = 1;
    ro.warmup = 5;
    ro.draws = 5;
    ro.particles = 10;
    ro.max_depth = 4;
    ro.no_jit = 1;
    ppl_result *r = NULL;
    if (ppl_run(m, &ro, &r) == PPL_OK) {
      /* read everything back: the summary text and every column's summary */
      (void)ppl_result_summary_text(r);
      for (int c = 0; c < ppl_result_num_columns(r); c++) {
        ppl_summary s;
        (void)ppl_result_summary(r, c, &s);
      }
      ppl_result_free(r);
    } else if (!*ppl_errmsg(ctx)) {
      fprintf(stderr, "fuzz_run: engine %s failed without a message\n", name);
      abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  if (strlen(text) != size || too_costly(text)) { /* embedded NUL, or too costly */
    free(text);
    return 0;
  }
  char *json = strstr(text, "//@data");
  if (json) {
    *json = 0;
    json += strlen("//@data");
  }
  static FILE *devnull;
  if (!devnull) devnull = fopen("/dev/null", "w");
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = 1;
  cfg.no_jit = 1;
  cfg.print_out = devnull;
  ppl_context *ctx = ppl_context_new(&cfg);
  ppl_model *m = NULL;
  if (ctx && ppl_compile_string(ctx, text, "fuzz.ppl", &m) == PPL_OK) {
    ppl_status s = json ? ppl_set_data_json(m, json, "fuzz.json") : ppl_data_commit(m);
    if (s == PPL_OK) run_all(ctx, m);
    else if (!*ppl_errmsg(ctx)) {
      fprintf(stderr, "fuzz_run: status %d without a message\n", (int)s);
      abort();
    }
    ppl_model_free(m);
  } else if (ctx && !*ppl_errmsg(ctx)) {
    abort();
  }
  ppl_context_free(ctx);
  free(text);
  return 0;
}
