/* test_csv.c — CmdStan column naming and ordering (column-major over all
 * dimensions), value formatting, labels, per-chain file names and the
 * comment block readers parse. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/csv.h"
#include "core/value.h"
#include "tests/tap.h"

static char *joined(const CsvCols *c) {
  static char buf[4096];
  buf[0] = 0;
  for (int i = 0; i < c->n; i++) {
    if (i) strcat(buf, ",");
    strcat(buf, c->names[i]);
  }
  return buf;
}

static char *joined_vals(const CsvCols *c) {
  static char buf[4096];
  char v[32];
  buf[0] = 0;
  for (int i = 0; i < c->n; i++) {
    if (i) strcat(buf, ",");
    strcat(buf, csv_format_value(v, c->vals[i], c->is_int[i]));
  }
  return buf;
}

static void test_matrix(void) {
  /* m[i][j] = 10 i + j (1-based), stored column-major */
  Value m = val_mat(2, 3);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) m.t->d[j * 2 + i] = 10 * (i + 1) + (j + 1);
  CsvCols c;
  csv_cols_init(&c);
  char err[128];
  int n = csv_columns("m", m, &c, true, err, sizeof err);
  tap_ok(n == 6, "matrix 2x3 has 6 columns");
  tap_streq(joined(&c), "m.1.1,m.2.1,m.1.2,m.2.2,m.1.3,m.2.3", "matrix names column-major");
  tap_streq(joined_vals(&c), "11,21,12,22,13,23", "matrix values in the same order");
}

static void test_2d_array(void) {
  /* int a[2][3], a[i][j] = 10 i + j */
  Value a = val_arr(2);
  for (int i = 0; i < 2; i++) {
    a.a->e[i] = val_arr(3);
    for (int j = 0; j < 3; j++) a.a->e[i].a->e[j] = val_int(10 * (i + 1) + (j + 1));
  }
  CsvCols c;
  csv_cols_init(&c);
  char err[128];
  csv_columns("a", a, &c, true, err, sizeof err);
  tap_streq(joined(&c), "a.1.1,a.2.1,a.1.2,a.2.2,a.1.3,a.2.3", "2-d array names column-major");
  tap_streq(joined_vals(&c), "11,21,12,22,13,23", "2-d array values in the same order");
  tap_ok(c.is_int[0] && c.is_int[5], "int array elements are integers");
}

static void test_array_of_vectors(void) {
  /* vector[3] z[2]: z[i][k] = 10 i + k */
  Value z = val_arr(2);
  for (int i = 0; i < 2; i++) {
    z.a->e[i] = val_vec(3);
    for (int k = 0; k < 3; k++) z.a->e[i].t->d[k] = 10 * (i + 1) + (k + 1);
  }
  CsvCols c;
  csv_cols_init(&c);
  char err[128];
  csv_columns("z", z, &c, true, err, sizeof err);
  tap_streq(joined(&c), "z.1.1,z.2.1,z.1.2,z.2.2,z.1.3,z.2.3", "array of vectors: first index fastest");
  tap_streq(joined_vals(&c), "11,21,12,22,13,23", "array of vectors values");
  int dims[CSV_MAX_DIMS];
  tap_ok(csv_shape(z, dims) == 2 && dims[0] == 2 && dims[1] == 3, "shape of vector[3] z[2] is 2x3");
}

static void test_scalars_and_strings(void) {
  CsvCols c;
  csv_cols_init(&c);
  char err[128];
  csv_columns("lp__", val_real(-7.25), &c, true, err, sizeof err);
  csv_columns("k", val_int(123456789), &c, true, err, sizeof err);
  csv_columns("b", val_bool(true), &c, true, err, sizeof err);
  int ns = csv_columns("s", val_str("text"), &c, true, err, sizeof err);
  Value sa = val_arr(2);
  sa.a->e[0] = val_str("x"), sa.a->e[1] = val_str("y");
  int nsa = csv_columns("sa", sa, &c, true, err, sizeof err);
  Value rv = val_rowvec(2);
  rv.t->d[0] = 1e-7, rv.t->d[1] = 123456789.0;
  csv_columns("r", rv, &c, true, err, sizeof err);
  tap_ok(ns == 0 && nsa == 0, "strings and string arrays have no columns");
  tap_streq(joined(&c), "lp__,k,b,r.1,r.2", "scalar and row-vector names");
  tap_streq(joined_vals(&c), "-7.25,123456789,1,1e-07,1.23457e+08", "ints exact, reals %%.6g");

  Value rag = val_arr(2);
  rag.a->e[0] = val_vec(2), rag.a->e[1] = val_vec(3);
  int bad = csv_columns("rag", rag, &c, true, err, sizeof err);
  tap_ok(bad == -1 && strstr(err, "'rag'") != NULL, "ragged array is an error naming it: %s", err);
}

static void test_format(void) {
  char b[32];
  tap_streq(csv_format_value(b, NAN, false), "nan", "NaN is nan");
  tap_streq(csv_format_value(b, -NAN, false), "nan", "negative NaN is nan, not -nan");
  tap_streq(csv_format_value(b, INFINITY, false), "inf", "inf");
  tap_streq(csv_format_value(b, -INFINITY, true), "-inf", "-inf (int column)");
  tap_streq(csv_format_value(b, 0.1 + 0.2, false), "0.3", "six significant digits");
  tap_streq(csv_format_value(b, -3, true), "-3", "negative integer");

  /* The formatter that avoids printf must print what printf's %.*g does:
     edge cases (ties, carries into a new digit, the switches to and from
     exponent form, tiny and huge magnitudes, -0), then random values over 40
     decades with every digit count, from a fixed-seed generator. */
  static const double edge[] = {0.5, 1.5, 2.5, 0.125, 1e-5, 1e-4, 9.9999995e-5, 123456.5,
                                999999.5, 9.9999995, 0.00012345650, 1e15, 1e16, 1e21,
                                1e22, 1e23, 1e-300, 5e-324, 1.7976931348623157e308, -0.0,
                                100000, 1234567, 0.1 + 0.2, 1.0 / 3, 2.0 / 3, 4.35, 1e-7,
                                -7.25, 123456789, 0.000999999, 99999.95};
  int bad = 0, n = 0;
  char want[64];
  for (int d = 1; d <= 17; d++)
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
      for (int sg = 0; sg < 2; sg++) {
        double v = sg ? -edge[i] : edge[i];
        snprintf(want, sizeof want, "%.*g", d, v);
        if (strcmp(csv_format_digits(b, v, false, d), want) && bad++ < 5)
          tap_diag("%.17g at %d digits: %s, printf %s", v, d, b, want);
        n++;
      }
    }
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double u = (double)(x >> 11) / 9007199254740992.0;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double v = (x & 1 ? -1 : 1) * u * pow(10, (double)(x >> 40) / (double)(1ull << 24) * 40 - 20);
    if (i % 4 == 0) v = round(v * 1e3) / 1e3; /* short decimals, many of them ties */
    int d = 1 + (int)((x >> 20) % 9);
    snprintf(want, sizeof want, "%.*g", d, v);
    if (strcmp(csv_format_digits(b, v, false, d), want) && bad++ < 5)
      tap_diag("%.17g at %d digits: %s, printf %s", v, d, b, want);
    n++;
  }
  tap_ok(bad == 0, "the %d-digit formatter prints what printf does (%d values, %d differ)", 9, n, bad);
}

static void test_labels_paths(void) {
  tap_streq(csv_label("theta.1"), "theta[1]", "label theta[1]");
  tap_streq(csv_label("m.1.2"), "m[1,2]", "label m[1,2]");
  tap_streq(csv_label("lp__"), "lp__", "label lp__");
  tap_streq(csv_chain_path("out.csv", 0, 1), "out.csv", "one chain keeps the name");
  tap_streq(csv_chain_path("out.csv", 0, 4), "out_1.csv", "chain 1 of 4");
  tap_streq(csv_chain_path("dir.d/out.csv", 3, 4), "dir.d/out_4.csv", "chain 4, dotted dir");
  tap_streq(csv_chain_path("dir.d/out", 1, 2), "dir.d/out_2", "no extension");
  tap_streq(csv_chain_path(".hidden", 1, 2), ".hidden_2", "dot file");
}

/* The comment block, as text, has the lines cmdstanr and ArviZ look for. */
static void test_config(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  const char *skipped[] = {"answer"};
  CsvConfig cfg = {.model_name = "coin", .engine = "mh",
                   .engine_reason = "mh — 1 latent (J = 8)\nsecond line",
                   .num_samples = 2000, .num_warmup = 500, .thin = 2, .num_chains = 4, .id = 3,
                   .seed = 18446744073709551615ULL, .data_file = "coin.json",
                   .output_file = "out_3.csv", .nskipped = 1, .skipped = skipped};
  tap_ok(csv_write_config(f, &cfg), "config written");
  csv_write_timing(f, 0.25, 1.5);
  fclose(f);
  const char *want[] = {
      "# stan_version_major = 2\n", "# stan_version_minor = 33\n", "# stan_version_patch = 0\n",
      "# ppl_version = 0.3.0\n", "# model = coin_model\n", "# method = sample\n",
      "#     num_samples = 2000\n", "#     num_warmup = 500\n", "#     save_warmup = 0\n",
      "#     thin = 2\n", "#     algorithm = ppl\n", "#         engine = mh\n",
      "#     num_chains = 4\n", "# id = 3\n", "#   file = coin.json\n",
      "#   seed = 18446744073709551615\n", "#   file = out_3.csv\n",
      "# engine: mh — 1 latent (J : 8) second line\n",
      "# string outputs have no column (CmdStan CSV holds numbers): answer\n",
      "#  Elapsed Time: 0.25 seconds (Warm-up)\n", "#                1.5 seconds (Sampling)\n",
      "#                1.75 seconds (Total)\n"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    tap_ok(strstr(buf, want[i]) != NULL, "config has line: %.*s", (int)strlen(want[i]) - 1, want[i]);
  /* every line is a comment, and none has two '=' (cmdstanr splits on it) */
  int bad = 0;
  for (char *line = buf; *line;) {
    char *end = strchr(line, '\n');
    if (line[0] != '#') bad++;
    int eq = 0;
    for (char *p = line; p < end; p++) eq += *p == '=';
    if (eq > 1) bad++;
    line = end + 1;
  }
  tap_ok(bad == 0, "all comment lines, at most one '=' each");
  free(buf);
}

/* csv_set_element is csv_columns' inverse: writing back the columns of one
 * value into a zeroed value of the same shape gives the same columns. */
static void test_set_element(void) {
  Value z = val_arr(2), zero = val_arr(2);
  for (int i = 0; i < 2; i++) {
    z.a->e[i] = val_mat(2, 3), zero.a->e[i] = val_mat(2, 3);
    for (int k = 0; k < 6; k++) z.a->e[i].t->d[k] = 100 * i + k + 0.5;
  }
  CsvCols a, b;
  csv_cols_init(&a);
  csv_cols_init(&b);
  char err[128];
  csv_columns("z", z, &a, true, err, sizeof err);
  for (int k = 0; k < a.n; k++) csv_set_element(&zero, k, a.vals[k]);
  csv_columns("z", zero, &b, true, err, sizeof err);
  char first[4096];
  snprintf(first, sizeof first, "%s", joined_vals(&a));
  tap_streq(joined_vals(&b), first, "csv_set_element writes array-of-matrix elements where csv_columns reads them");
  tap_ok(zero.a->e[1].t->d[1 * 2 + 0] == 100 + 2 + 0.5, "z[2][1,2] is column z.2.1.2");
  Value r = val_real(0), i = val_int(0);
  csv_set_element(&r, 0, 2.5);
  csv_set_element(&i, 0, 7);
  tap_ok(r.r == 2.5 && i.i == 7, "scalars: real and int set");
}

/* csv_write_row builds each row in a buffer and writes it in pieces of under
 * 4 KiB: a row of 600 values (random bit patterns: subnormals, huge and tiny
 * magnitudes, +-0, +-inf, NaN) read back field by field must give every
 * value at 17 digits (round trip, bit for bit), and what csv_format_digits
 * gives at 6; integer columns as integers; one line per row. */
static void test_write_row(void) {
  enum { N = 600 };
  double v[N];
  bool is_int[N];
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < N; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t bits = x;
    if (i % 7 == 1) bits &= 0x800fffffffffffffull; /* subnormal (or +-0) */
    memcpy(&v[i], &bits, sizeof bits);
    is_int[i] = false;
  }
  v[0] = INFINITY, v[2] = -INFINITY, v[3] = NAN, v[4] = -0.0, v[5] = 0, v[6] = 5e-324;
  v[8] = -42, is_int[8] = true;
  v[9] = 1234567890123.0, is_int[9] = true;
  for (int digits = 6; digits <= 17; digits += 11) {
    FILE *f = tmpfile();
    bool ok = csv_write_row(f, N, v, is_int, digits) && csv_write_row(f, 3, v, NULL, digits);
    long size = ftell(f);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, f);
    text[got] = 0;
    fclose(f);
    int lines = 0, fields = 0, bad = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    char *fsave = NULL;
    for (char *t = line ? strtok_r(line, ",", &fsave) : NULL; t; t = strtok_r(NULL, ",", &fsave)) {
      int i = fields++;
      if (i >= N) break;
      char want[32];
      csv_format_digits(want, v[i], is_int[i], digits);
      double back = strtod(t, NULL);
      bool same = digits == 17 && !is_int[i]
                      ? (isnan(v[i]) ? isnan(back) && !strcmp(t, "nan")
                                     : memcmp(&back, &v[i], sizeof back) == 0)
                      : !strcmp(t, want);
      if (!same && bad++ < 5) tap_diag("value %d (%.17g) written as %s", i, v[i], t);
    }
    tap_ok(ok && lines == 2 && fields == N && bad == 0,
           "a %d-value row at %d digits: %d fields on one line of %ld bytes, %s (%d differ)", N,
           digits, fields, size, digits == 17 ? "every double read back bit for bit" : "as csv_format_digits", bad);
    free(text);
  }
}

int main(void) {
  gc_init();
  test_write_row();
  test_set_element();
  test_matrix();
  test_2d_array();
  test_array_of_vectors();
  test_scalars_and_strings();
  test_format();
  test_labels_paths();
  test_config();
  return tap_done();
}
