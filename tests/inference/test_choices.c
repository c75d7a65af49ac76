/* test_choices.c — one line of the choices file (values as JSON: integers,
 * booleans, non-finite reals, vectors, a matrix as rows, strings escaped),
 * the file's name beside a CSV, base names of addresses, and the summary's
 * counts and means (weighted too). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/choices.h"
#include "core/value.h"
#include "tests/tap.h"

/* What choices_write writes, as a string. */
static char *line_of(int nout, const IrOutput *outs, const Value *vals, int nlat,
                     const InterpLatent *lat, int digits) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  bool ok = choices_write(f, nout, outs, vals, nlat, lat, digits);
  fclose(f);
  char *s = gc_strdup(ok ? buf : "(write failed)");
  free(buf);
  return s;
}

static void test_line(void) {
  IrOutput outs[3] = {{.name = "K", .kind = OUT_LATENT},
                      {.name = "g", .kind = OUT_DERIVED},
                      {.name = "flag", .kind = OUT_LATENT}};
  Value vals[3] = {val_int(2), val_real(1.5), val_bool(true)};
  Value m = val_mat(2, 2); /* column-major 1 3 / 2 4 */
  for (int i = 0; i < 4; i++) m.t->d[i] = i + 1;
  Value v = val_vec(3);
  v.t->d[0] = NAN, v.t->d[1] = INFINITY, v.t->d[2] = 0.123456789;
  InterpLatent lat[4] = {{"x[1]", val_real(-0.5)}, {"x[2]", v}, {"f[2]/m", m}, {"s\"q", val_str("a\"b")}};
  tap_streq(line_of(3, outs, vals, 4, lat, 6),
            "{\"K\":2,\"flag\":true,\"x[1]\":-0.5,\"x[2]\":[\"NaN\",\"Inf\",0.123457],"
            "\"f[2]/m\":[[1.0,3.0],[2.0,4.0]],\"s\\\"q\":\"a\\\"b\"}\n",
            "a draw's latents (not the derived g) by address; matrix as rows; NaN, Inf; escapes");
  tap_streq(line_of(0, NULL, NULL, 1, lat + 1, 17),
            "{\"x[2]\":[\"NaN\",\"Inf\",0.123456789]}\n", "--sig-figs 17 keeps the digits");
  Value arr = val_arr(2);
  arr.a->e[0] = val_int(4), arr.a->e[1] = val_none();
  InterpLatent one = {"a", arr};
  tap_streq(line_of(0, NULL, NULL, 1, &one, 6), "{\"a\":[4,null]}\n", "an array; an unset element is null");
  /* a byte-level model's token that splits a character: its address is
     written, each malformed byte as U+FFFD (jansson refuses the raw bytes:
     the address was dropped) */
  InterpLatent toks[3] = {{"tok[1]", val_strn("\xc3", 1)},
                          {"tok[2]", val_strn("a\xa9\xe2\x82\xac\xf0" "b", 7)},
                          {"tok[3]", val_str("\xc3\xa9")}};
  tap_streq(line_of(0, NULL, NULL, 3, toks, 6),
            "{\"tok[1]\":\"\xef\xbf\xbd\",\"tok[2]\":\"a\xef\xbf\xbd\xe2\x82\xac\xef\xbf\xbd"
            "b\",\"tok[3]\":\"\xc3\xa9\"}\n",
            "strings that are not UTF-8: every address, malformed bytes as U+FFFD");
}

static void test_names(void) {
  tap_streq(choices_path("out_1.csv"), "out_1_choices.jsonl", "beside out_1.csv");
  tap_streq(choices_path("dir.d/out"), "dir.d/out_choices.jsonl", "a path without extension");
  tap_streq(choices_base("h[2]"), "h", "base of h[2]");
  tap_streq(choices_base("h[1,2]#3"), "h", "base of h[1,2]#3");
  tap_streq(choices_base("walk/step[2]/x"), "walk/step/x", "base of a call path");
  tap_streq(choices_base("x#12"), "x", "base of a repeat");
}

static void test_summary(void) {
  /* chain 1: draw 0 has x[1], x[2] (1, 3); draw 1 has none; chain 2: draw 0 has x[1] = 5 */
  IrOutput outs[1] = {{.name = "K", .kind = OUT_LATENT}};
  ChoiceLog *logs[2] = {choices_log_new(2), choices_log_new(2)};
  InterpLatent a[2] = {{"x[1]", val_real(1)}, {"x[2]", val_real(3)}};
  InterpLatent b[1] = {{"x[1]", val_real(5)}};
  choices_log_draw(logs[0], 0, 1, outs, 2, a);
  choices_log_draw(logs[0], 1, 1, outs, 0, NULL);
  choices_log_draw(logs[1], 0, 1, outs, 1, b);
  choices_log_draw(logs[1], 1, 1, outs, 0, NULL);
  char *s = choices_summary(2, 2, logs, NULL, "f.jsonl", true);
  tap_ok(strstr(s, "choices: 3 addresses in f.jsonl") != NULL, "3 addresses: K, x[1], x[2]");
  char want[128];
  snprintf(want, sizeof want, "%-24s %8.1f%% %9.3g %10s\n", "x", 50.0, 1.5, "3");
  tap_ok(strstr(s, want) != NULL, "x in half the draws, 1.5 addresses when there, mean 3: %s", s);
  /* weights: chain 2's draw 0 has 3 times the weight of every other draw */
  double w0[2] = {0, 0}, w1[2] = {log(3.0), 0};
  const double *lw[2] = {w0, w1};
  s = choices_summary(2, 2, logs, lw, "f.jsonl", true);
  snprintf(want, sizeof want, "%-24s %8.1f%% %9.3g %10s\n", "x", 100 * 4.0 / 6, 1.25, "3.8");
  tap_ok(strstr(s, want) != NULL, "weighted: share 4/6, 1.25 addresses, mean (4 + 3*5)/5: %s", s);
  s = choices_summary(2, 2, logs, NULL, "f.jsonl", false);
  tap_ok(!strstr(s, "in draws"), "no table when not asked");
}

int main(void) {
  gc_init();
  test_line();
  test_names();
  test_summary();
  return tap_done();
}
