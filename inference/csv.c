/* csv.c — CmdStan-layout CSV: column naming and flattening of output values,
 * the comment block, rows and the elapsed-time trailer.  What readers rely
 * on (and so what must not change) is listed in /work/shared/INTEROP.md and
 * docs/output.md: `key = value` comment lines with ints as plain digits
 * (ArviZ parses save_warmup with int()), one '=' per line at most (cmdstanr
 * splits on it), names like m.2.1 in column-major order, the exact
 * "Elapsed Time" wording. */
#include "csv.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ppl_config.h"

/* ---- columns ------------------------------------------------------------ */

void csv_cols_init(CsvCols *c) { memset(c, 0, sizeof *c); }

static void cv_reserve(CsvCols *c, int extra) {
  if (c->n + extra <= c->cap) return;
  int cap = c->cap ? c->cap : 16;
  while (cap < c->n + extra) cap *= 2;
  const char **names = gc_alloc(sizeof(char *) * (size_t)cap);
  double *vals = gc_alloc_atomic(sizeof(double) * (size_t)cap);
  bool *is_int = gc_alloc_atomic(sizeof(bool) * (size_t)cap);
  if (c->n) {
    memcpy(names, c->names, sizeof(char *) * (size_t)c->n);
    memcpy(vals, c->vals, sizeof(double) * (size_t)c->n);
    memcpy(is_int, c->is_int, sizeof(bool) * (size_t)c->n);
  }
  c->names = names, c->vals = vals, c->is_int = is_int, c->cap = cap;
}

static int cv_tensor_dims(Value v, int *dims) {
  switch (v.k) {
  case V_VEC: dims[0] = v.t->rows; return 1;
  case V_ROWVEC: dims[0] = v.t->cols; return 1;
  case V_MAT: dims[0] = v.t->rows, dims[1] = v.t->cols; return 2;
  default: return 0;
  }
}

/* Shapes of all elements of an array must agree (rectangular). */
static bool cv_same_shape(Value a, Value b) {
  int da[CSV_MAX_DIMS], db[CSV_MAX_DIMS];
  int na = csv_shape(a, da), nb = csv_shape(b, db);
  if (na != nb) return false;
  for (int i = 0; i < na; i++)
    if (da[i] != db[i]) return false;
  return true;
}

int csv_shape(Value v, int dims[CSV_MAX_DIMS]) {
  switch (v.k) {
  case V_STR: return -1;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: return cv_tensor_dims(v, dims);
  case V_ARR: {
    dims[0] = v.a->n;
    if (v.a->n == 0) return 1;
    int inner[CSV_MAX_DIMS];
    int ni = csv_shape(v.a->e[0], inner);
    if (ni < 0) return ni;
    if (ni + 1 > CSV_MAX_DIMS) return -2;
    for (int i = 1; i < v.a->n; i++)
      if (!cv_same_shape(v.a->e[0], v.a->e[i])) return -2;
    memcpy(dims + 1, inner, sizeof(int) * (size_t)ni);
    return ni + 1;
  }
  default: return 0; /* int, real, bool, none */
  }
}

/* The scalar at multi-index idx (0-based, over all dims) of v. */
static double cv_element(Value v, const int *idx, bool *is_int) {
  while (v.k == V_ARR) {
    v = v.a->e[*idx];
    idx++;
  }
  *is_int = false;
  switch (v.k) {
  case V_INT: *is_int = true; return (double)v.i;
  case V_BOOL: *is_int = true; return v.b ? 1 : 0;
  case V_REAL: return v.r;
  case V_VEC:
  case V_ROWVEC: return v.t->d[idx[0]];
  case V_MAT: return v.t->d[(size_t)idx[1] * (size_t)v.t->rows + (size_t)idx[0]];
  default: return NAN;
  }
}

void csv_set_element(Value *v, long k, double x) {
  int dims[CSV_MAX_DIMS], idx[CSV_MAX_DIMS];
  int nd = csv_shape(*v, dims);
  for (int j = 0; j < nd; j++) { /* first index fastest, as csv_columns */
    idx[j] = (int)(k % dims[j]);
    k /= dims[j];
  }
  const int *at = idx;
  while (v->k == V_ARR) v = &v->a->e[*at++];
  switch (v->k) {
  case V_INT: v->i = (int64_t)x; break;
  case V_BOOL: v->b = x != 0; break;
  case V_REAL: v->r = x; break;
  case V_VEC:
  case V_ROWVEC: v->t->d[at[0]] = x; break;
  case V_MAT: v->t->d[(size_t)at[1] * (size_t)v->t->rows + (size_t)at[0]] = x; break;
  default: break;
  }
}

static char *cv_name(const char *name, int nd, const int *idx) {
  char buf[1024];
  size_t len = (size_t)snprintf(buf, sizeof buf, "%s", name);
  for (int k = 0; k < nd && len < sizeof buf; k++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, ".%d", idx[k] + 1);
  return gc_strdup(buf);
}

int csv_columns(const char *name, Value v, CsvCols *out, bool want_names, char *err,
                size_t errsz) {
  int dims[CSV_MAX_DIMS];
  int nd = csv_shape(v, dims);
  if (nd == -1) return 0;
  if (nd < 0) {
    snprintf(err, errsz, "output '%s' is a ragged or too deeply nested array; CSV columns need a rectangular shape", name);
    return -1;
  }
  long count = 1;
  for (int k = 0; k < nd; k++) count *= dims[k];
  if (count == 0) return 0;
  cv_reserve(out, (int)count);
  int idx[CSV_MAX_DIMS] = {0};
  for (long e = 0; e < count; e++) {
    int at = out->n++;
    out->vals[at] = cv_element(v, idx, &out->is_int[at]);
    if (want_names) out->names[at] = cv_name(name, nd, idx);
    for (int k = 0; k < nd; k++) { /* first index fastest */
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
  }
  return (int)count;
}

char *csv_label(const char *csv_name) {
  /* each '/'-separated part of an address on its own: "stp.1/x" -> "stp[1]/x" */
  char *s = gc_alloc_atomic(2 * strlen(csv_name) + 2);
  size_t j = 0;
  bool open = false;
  for (const char *p = csv_name;; p++) {
    if (*p == '.') s[j++] = open ? ',' : '[', open = true;
    else if (*p == '/' || !*p) {
      if (open) s[j++] = ']';
      open = false;
      if (!*p) break;
      s[j++] = '/';
    } else s[j++] = *p;
  }
  s[j] = 0;
  return s;
}

/* ---- writing ------------------------------------------------------------ */

char *csv_format_value(char *buf, double v, bool is_int) { return csv_format_digits(buf, v, is_int, 6); }

/* printf's "%.*g" of a finite v for digits <= CSV_FAST_DIGITS, without
 * printf, which was a sixth of a short run's time.  v is scaled by an exact
 * power of ten in long double (one rounding: relative error 2^-64, so under
 * 1e-10 in units of the last digit kept); when the fraction left over is
 * that close to a tie the rounding cannot be decided here and false sends
 * the caller to snprintf, so the result is always printf's. */
#define CSV_FAST_DIGITS 9
static bool cv_fast_g(char *buf, double v, int digits) {
  static const long double p10[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
                                    1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
                                    1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                    1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
  char *o = buf;
  if (v == 0) {
    strcpy(buf, signbit(v) ? "-0" : "0");
    return true;
  }
  if (v < 0) *o++ = '-', v = -v;
  /* the decimal exponent from the binary one, without log10: v in
     [2^(b-1), 2^b) puts log10 v in [(b-1) log10 2, b log10 2), an interval
     shorter than 1, so the estimate is the exponent or one below it, which
     the loop below corrects (subnormals go to snprintf) */
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  int bexp = (int)((bits >> 52) & 0x7ff);
  if (bexp == 0) return false;
  int e = (int)floor((double)(bexp - 1023) * 0.30102999566398120), k;
  long double s = 0, lo = p10[digits - 1], hi = p10[digits];
  for (int tries = 0; tries < 2; tries++) { /* log10 may miss the exponent by one */
    k = digits - 1 - e;
    if (k > 27 || k < -27) return false;
    s = k >= 0 ? (long double)v * p10[k] : (long double)v / p10[-k];
    if (s >= hi) e++;
    else if (s < lo) e--;
    else break;
  }
  if (s < lo || s >= hi) return false;
  long double fl = floorl(s), fr = s - fl;
  if (fabsl(fr - 0.5L) < 1e-9L) return false;
  uint64_t m = (uint64_t)fl + (fr > 0.5L);
  if ((long double)m == hi) m /= 10, e++;
  char dig[CSV_FAST_DIGITS + 1];
  static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                              "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                              "8081828384858687888990919293949596979899";
  int at = digits - 1;
  for (; at >= 1; at -= 2) { /* two digits a division */
    unsigned r = (unsigned)(m % 100);
    m /= 100;
    dig[at - 1] = pairs[2 * r], dig[at] = pairs[2 * r + 1];
  }
  if (at == 0) dig[0] = (char)('0' + m % 10);
  int nd = digits;
  while (nd > 1 && dig[nd - 1] == '0') nd--; /* %g drops trailing zeros */
  if (e < -4 || e >= digits) {
    *o++ = dig[0];
    if (nd > 1) *o++ = '.', memcpy(o, dig + 1, (size_t)nd - 1), o += nd - 1;
    *o++ = 'e', *o++ = e < 0 ? '-' : '+';
    int ae = e < 0 ? -e : e;
    if (ae >= 100) *o++ = (char)('0' + ae / 100);
    *o++ = (char)('0' + ae / 10 % 10), *o++ = (char)('0' + ae % 10);
  } else if (e >= 0) {
    for (int i = 0; i <= e; i++) *o++ = i < nd ? dig[i] : '0';
    if (nd > e + 1) *o++ = '.', memcpy(o, dig + e + 1, (size_t)(nd - e - 1)), o += nd - e - 1;
  } else {
    *o++ = '0', *o++ = '.';
    for (int i = 0; i < -e - 1; i++) *o++ = '0';
    memcpy(o, dig, (size_t)nd), o += nd;
  }
  *o = 0;
  return true;
}

char *csv_format_digits(char *buf, double v, bool is_int, int digits) {
  if (isnan(v))
    strcpy(buf, "nan"); /* never "-nan" */
  else if (isinf(v))
    strcpy(buf, v > 0 ? "inf" : "-inf");
  else if (is_int && fabs(v) < 9.2e18 && v == floor(v))
    snprintf(buf, 32, "%lld", (long long)v);
  else if (digits < 1 || digits > CSV_FAST_DIGITS || !cv_fast_g(buf, v, digits))
    snprintf(buf, 32, "%.*g", digits, v);
  return buf;
}

/* Comment values must stay on one line and hold no '=' (cmdstanr splits the
 * line on '='): replace both. */
static void cv_comment_text(FILE *f, const char *s) {
  for (; *s; s++) fputc(*s == '\n' || *s == '\r' ? ' ' : *s == '=' ? ':' : *s, f);
}

static const char *cv_or_empty(const char *s) { return s ? s : ""; }

/* CmdStan's adapt and algorithm blocks for nuts / static HMC (the adaptation
 * constants are Stan's and fixed in ppl). */
static void cv_write_hmc(FILE *f, const CsvConfig *c) {
  fprintf(f, "#     adapt\n");
  fprintf(f, "#       engaged = %d\n", c->adapt_engaged ? 1 : 0);
  fprintf(f, "#       gamma = 0.05\n");
  fprintf(f, "#       delta = %g\n", c->adapt_delta);
  fprintf(f, "#       kappa = 0.75\n");
  fprintf(f, "#       t0 = 10\n");
  fprintf(f, "#       init_buffer = 75\n");
  fprintf(f, "#       term_buffer = 50\n");
  fprintf(f, "#       window = 25\n");
  fprintf(f, "#     algorithm = hmc\n");
  fprintf(f, "#       hmc\n");
  fprintf(f, "#         engine = ");
  cv_comment_text(f, c->hmc_engine);
  fputc('\n', f);
  if (strcmp(c->hmc_engine, "nuts") == 0)
    fprintf(f, "#           nuts\n#             max_depth = %d\n", c->max_depth);
  else
    fprintf(f, "#           static\n#             int_time = %.17g\n", c->int_time);
  fprintf(f, "#         metric = ");
  cv_comment_text(f, c->metric ? c->metric : "diag_e");
  fprintf(f, "\n#         metric_file = ");
  cv_comment_text(f, cv_or_empty(c->metric_file));
  fputc('\n', f);
  fprintf(f, "#         stepsize = %g\n", c->stepsize);
  fprintf(f, "#         stepsize_jitter = %g\n", c->stepsize_jitter);
}

bool csv_write_config(FILE *f, const CsvConfig *c) {
  fprintf(f, "# stan_version_major = 2\n# stan_version_minor = 33\n# stan_version_patch = 0\n");
  fprintf(f, "# ppl_version = %s\n", PPL_VERSION_STRING);
  fprintf(f, "# model = ");
  cv_comment_text(f, c->model_name ? c->model_name : "ppl");
  fprintf(f, "_model\n");
  if (c->model_file) {
    fprintf(f, "# model_file = ");
    cv_comment_text(f, c->model_file);
    fputc('\n', f);
  }
  fprintf(f, "# method = sample\n");
  fprintf(f, "#   sample\n");
  fprintf(f, "#     num_samples = %d\n", c->num_samples);
  fprintf(f, "#     num_warmup = %d\n", c->num_warmup);
  fprintf(f, "#     save_warmup = %d\n", c->save_warmup ? 1 : 0);
  fprintf(f, "#     thin = %d\n", c->thin);
  if (c->hmc_engine) {
    cv_write_hmc(f, c);
  } else {
    fprintf(f, "#     algorithm = ppl\n");
    fprintf(f, "#       ppl\n");
    fprintf(f, "#         engine = ");
    cv_comment_text(f, cv_or_empty(c->engine));
    fputc('\n', f);
  }
  fprintf(f, "#     num_chains = %d\n", c->num_chains);
  fprintf(f, "# id = %d\n", c->id);
  fprintf(f, "# data\n#   file = ");
  cv_comment_text(f, cv_or_empty(c->data_file));
  fprintf(f, "\n# random\n#   seed = %llu\n", (unsigned long long)c->seed);
  fprintf(f, "# output\n#   file = ");
  cv_comment_text(f, cv_or_empty(c->output_file));
  fputc('\n', f);
  if (c->engine_reason) {
    fprintf(f, "# engine: ");
    cv_comment_text(f, c->engine_reason);
    fputc('\n', f);
  }
  if (c->nskipped > 0) {
    fprintf(f, "# string outputs have no column (CmdStan CSV holds numbers): ");
    for (int i = 0; i < c->nskipped; i++) {
      if (i) fprintf(f, ", ");
      cv_comment_text(f, c->skipped[i]);
    }
    fputc('\n', f);
  }
  if (c->nested_note) {
    fprintf(f, "# latents in loops, branches and functions have no column: ");
    cv_comment_text(f, c->nested_note);
    fputc('\n', f);
  }
  return fflush(f) == 0 && !ferror(f);
}

char *csv_address_name(const char *addr) {
  char *s = gc_strdup(addr);
  char *w = s;
  for (const char *p = addr; *p; p++) {
    if (*p == '[' || *p == ',') *w++ = '.';
    else if (*p != ']' && *p != ' ') *w++ = *p;
  }
  *w = 0;
  return s;
}

bool csv_write_header(FILE *f, int n, const char *const *names) {
  for (int i = 0; i < n; i++) {
    if (i) fputc(',', f);
    fputs(names[i], f);
  }
  fputc('\n', f);
  return fflush(f) == 0 && !ferror(f);
}

/* A row is formatted into a buffer and handed to stdio in a few large
 * writes (one for a row under 4 KiB), then flushed: each draw reaches the
 * file as it is made, as the project promises, at one write call a row. */
bool csv_write_row(FILE *f, int n, const double *vals, const bool *is_int, int digits) {
  char row[4096];
  size_t len = 0;
  for (int i = 0; i < n; i++) {
    if (len > sizeof row - 34) { /* room for a separator, a value and '\n' */
      if (fwrite(row, 1, len, f) != len) return false;
      len = 0;
    }
    if (i) row[len++] = ',';
    csv_format_digits(row + len, vals[i], is_int && is_int[i], digits);
    len += strlen(row + len);
  }
  row[len++] = '\n';
  return fwrite(row, 1, len, f) == len && fflush(f) == 0 && !ferror(f);
}

bool csv_write_evidence(FILE *f, double log_evidence, double se) {
  fprintf(f, "# log_evidence = %.17g\n", log_evidence);
  if (!isnan(se)) fprintf(f, "# log_evidence_se = %.17g\n", se);
  return fflush(f) == 0 && !ferror(f);
}

bool csv_write_timing(FILE *f, double warmup_seconds, double sampling_seconds) {
  fprintf(f, "# \n");
  fprintf(f, "#  Elapsed Time: %g seconds (Warm-up)\n", warmup_seconds);
  fprintf(f, "#                %g seconds (Sampling)\n", sampling_seconds);
  fprintf(f, "#                %g seconds (Total)\n", warmup_seconds + sampling_seconds);
  fprintf(f, "# \n");
  return fflush(f) == 0 && !ferror(f);
}

char *csv_chain_path(const char *path, int chain, int nchains) {
  if (nchains <= 1) return gc_strdup(path);
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(path, '.');
  if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : path))
    return gc_printf("%s_%d", path, chain + 1);
  return gc_printf("%.*s_%d%s", (int)(dot - path), path, chain + 1, dot);
}
