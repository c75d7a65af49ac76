/* builtins_str.c — string functions a model can call.  Strings are
 * first-class in ppl because language-model latents are strings: a model
 * tests, slices and parses what a language model wrote (is_number,
 * parse_real, trim, ...).  Strings are bytes: lengths and positions count
 * bytes (1-based, as every index in the language), case mapping is ASCII.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins_impl.h"

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* First occurrence of needle in hay (memmem is a GNU extension). */
static const char *find(const char *hay, size_t n, const char *needle, size_t m) {
  if (m == 0) return hay;
  for (size_t i = 0; i + m <= n; i++)
    if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) return hay + i;
  return NULL;
}

static const PplStr *str_arg(Value v) {
  static const PplStr empty = {0};
  return v.k == V_STR && v.s ? v.s : &empty;
}

/* The bytes of s without leading and trailing white space. */
static void trimmed(const PplStr *s, const char **p, size_t *n) {
  const char *a = s->data, *e = s->data + s->len;
  while (a < e && is_space(*a))
    a++;
  while (e > a && is_space(e[-1]))
    e--;
  *p = a;
  *n = (size_t)(e - a);
}

/* Decimal number: [+-] digits [. digits] [e [+-] digits], at least one digit
 * in the mantissa (".5" and "5." count). */
static bool decimal_syntax(const char *p, size_t n) {
  size_t i = 0, digits = 0;
  if (i < n && (p[i] == '+' || p[i] == '-')) i++;
  while (i < n && is_digit(p[i]))
    i++, digits++;
  if (i < n && p[i] == '.')
    for (i++; i < n && is_digit(p[i]); i++)
      digits++;
  if (!digits) return false;
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-')) i++;
    size_t ed = 0;
    while (i < n && is_digit(p[i]))
      i++, ed++;
    if (!ed) return false;
  }
  return i == n;
}

static bool word_ci(const char *p, size_t n, const char *w) {
  if (strlen(w) != n) return false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
    if (c != w[i]) return false;
  }
  return true;
}

/* A short quoted excerpt of s for messages. */
static const char *quote(const PplStr *s, char *buf, size_t n) {
  if (s->len + 3 <= n)
    snprintf(buf, n, "\"%s\"", s->data);
  else
    snprintf(buf, n, "\"%.*s...\"", (int)(n > 8 ? n - 8 : 0), s->data);
  return buf;
}

/* ---- predicates and slicing --------------------------------------------------- */

enum { P_CONTAINS, P_STARTS, P_ENDS };

static bool eval_str_pred(BI_EVAL_ARGS) {
  const PplStr *s = str_arg(args[0]), *t = str_arg(args[1]);
  bool r = false;
  switch (BI_SPEC(b)->op) {
  case P_CONTAINS:
    r = t->len == 0 || (t->len <= s->len && find(s->data, s->len, t->data, t->len) != NULL);
    break;
  case P_STARTS: r = t->len <= s->len && memcmp(s->data, t->data, t->len) == 0; break;
  default: r = t->len <= s->len && memcmp(s->data + s->len - t->len, t->data, t->len) == 0; break;
  }
  *out = val_bool(r);
  return true;
}

static bool eval_substr(BI_EVAL_ARGS) {
  const PplStr *s = str_arg(args[0]);
  int64_t start = bi_int(args[1]), len = bi_int(args[2]);
  if (start < 1 || (uint64_t)start > s->len + 1)
    return bi_efail(b, err, errsz, "start %lld out of range for a string of length %zu",
                    (long long)start, s->len);
  if (len < 0)
    return bi_efail(b, err, errsz, "length must be non-negative, got %lld", (long long)len);
  size_t avail = s->len - (size_t)(start - 1); /* a length past the end stops at the end */
  *out = val_strn(s->data + start - 1, (uint64_t)len < avail ? (size_t)len : avail);
  return true;
}

enum { C_UPPER, C_LOWER, C_TRIM };

static bool eval_str_map(BI_EVAL_ARGS) {
  const PplStr *s = str_arg(args[0]);
  int op = BI_SPEC(b)->op;
  if (op == C_TRIM) {
    const char *p;
    size_t n;
    trimmed(s, &p, &n);
    *out = val_strn(p, n);
    return true;
  }
  Value r = val_strn(s->data, s->len);
  for (size_t i = 0; i < s->len; i++) {
    char c = r.s->data[i];
    if (op == C_UPPER && c >= 'a' && c <= 'z') r.s->data[i] = (char)(c - 'a' + 'A');
    if (op == C_LOWER && c >= 'A' && c <= 'Z') r.s->data[i] = (char)(c - 'A' + 'a');
  }
  *out = r;
  return true;
}

static bool eval_replace(BI_EVAL_ARGS) {
  const PplStr *s = str_arg(args[0]), *from = str_arg(args[1]), *to = str_arg(args[2]);
  if (from->len == 0) return bi_efail(b, err, errsz, "the string to replace is empty");
  size_t count = 0;
  for (const char *p = s->data;
       (p = find(p, s->len - (size_t)(p - s->data), from->data, from->len)); p += from->len)
    count++;
  size_t n = s->len + count * to->len - count * from->len;
  char *buf = gc_alloc_atomic(n + 1), *w = buf;
  const char *p = s->data, *end = s->data + s->len;
  for (const char *q; (q = find(p, (size_t)(end - p), from->data, from->len)); p = q + from->len) {
    memcpy(w, p, (size_t)(q - p));
    w += q - p;
    memcpy(w, to->data, to->len);
    w += to->len;
  }
  memcpy(w, p, (size_t)(end - p));
  *out = val_strn(buf, n);
  return true;
}

static bool eval_split(BI_EVAL_ARGS) {
  const PplStr *s = str_arg(args[0]), *sep = str_arg(args[1]);
  if (sep->len == 0) return bi_efail(b, err, errsz, "the separator is empty");
  int count = 1;
  const char *end = s->data + s->len;
  for (const char *q = s->data; (q = find(q, (size_t)(end - q), sep->data, sep->len));
       q += sep->len)
    count++;
  Value r = val_arr(count);
  const char *p = s->data;
  for (int i = 0; i < count; i++) {
    const char *q = i < count - 1 ? find(p, (size_t)(end - p), sep->data, sep->len) : end;
    r.a->e[i] = val_strn(p, (size_t)(q - p));
    p = q + sep->len;
  }
  *out = r;
  return true;
}

static bool eval_join(BI_EVAL_ARGS) {
  Value a = args[0];
  const PplStr *sep = str_arg(args[1]);
  if (a.k != V_ARR) return bi_efail(b, err, errsz, "expected an array of strings");
  size_t n = 0;
  for (int i = 0; i < a.a->n; i++)
    n += str_arg(a.a->e[i])->len + (i ? sep->len : 0);
  char *buf = gc_alloc_atomic(n + 1), *w = buf;
  for (int i = 0; i < a.a->n; i++) {
    if (i) memcpy(w, sep->data, sep->len), w += sep->len;
    const PplStr *e = str_arg(a.a->e[i]);
    memcpy(w, e->data, e->len);
    w += e->len;
  }
  *out = val_strn(buf, n);
  return true;
}

/* ---- numbers <-> strings --------------------------------------------------------- */

enum { N_PARSE_REAL, N_PARSE_INT, N_IS_NUMBER };

static bool eval_parse(BI_EVAL_ARGS) {
  const PplStr *s = str_arg(args[0]);
  const char *p;
  size_t n;
  char q[80];
  trimmed(s, &p, &n);
  char *z = gc_strndup(p, n); /* strtod/strtoll need the trimmed text NUL-terminated */
  switch (BI_SPEC(b)->op) {
  case N_IS_NUMBER: *out = val_bool(decimal_syntax(p, n)); return true;
  case N_PARSE_REAL: {
    bool special = false;
    const char *w = p;
    size_t wn = n;
    if (wn && (*w == '+' || *w == '-')) w++, wn--;
    if (word_ci(w, wn, "inf") || word_ci(w, wn, "infinity") || word_ci(w, wn, "nan"))
      special = true;
    if (!special && !decimal_syntax(p, n))
      return bi_efail(b, err, errsz, "%s is not a number", quote(s, q, sizeof q));
    *out = val_real(strtod(z, NULL));
    return true;
  }
  default: {
    size_t i = n && (p[0] == '+' || p[0] == '-');
    bool ok = i < n;
    for (; ok && i < n; i++)
      ok = is_digit(p[i]);
    if (!ok) return bi_efail(b, err, errsz, "%s is not an integer", quote(s, q, sizeof q));
    errno = 0;
    long long v = strtoll(z, NULL, 10);
    if (errno == ERANGE)
      return bi_efail(b, err, errsz, "%s is out of the range of int", quote(s, q, sizeof q));
    *out = val_int(v);
    return true;
  }
  }
}

static bool check_to_string(BI_CHECK_ARGS) {
  if (nargs != 1 || args[0].base == TY_VOID || args[0].base == TY_DIST) {
    char got[200];
    return bi_fail(err, errsz, "to_string expects one value, got %s",
                   bi_types_str(nargs, args, got, sizeof got));
  }
  *ret = ty_make(TY_STRING, 0);
  return true;
}

/* Appends the text of v to a growing GC buffer. */
typedef struct {
  char *p;
  size_t n, cap;
} SBuf;

static void sb_put(SBuf *sb, const char *s, size_t n) {
  if (sb->n + n + 1 > sb->cap) {
    size_t cap = sb->cap ? 2 * sb->cap : 64;
    while (cap < sb->n + n + 1)
      cap *= 2;
    char *p = gc_alloc_atomic(cap);
    if (sb->n) memcpy(p, sb->p, sb->n);
    sb->p = p;
    sb->cap = cap;
  }
  memcpy(sb->p + sb->n, s, n);
  sb->n += n;
  sb->p[sb->n] = 0;
}

static void sb_value(SBuf *sb, Value v, bool quoted) {
  char tmp[48];
  switch (v.k) {
  case V_INT:
    snprintf(tmp, sizeof tmp, "%lld", (long long)v.i);
    sb_put(sb, tmp, strlen(tmp));
    break;
  case V_REAL:
    bi_fmt_real(v.r, tmp, sizeof tmp);
    sb_put(sb, tmp, strlen(tmp));
    break;
  case V_BOOL: sb_put(sb, v.b ? "true" : "false", v.b ? 4 : 5); break;
  case V_STR:
    if (quoted) sb_put(sb, "\"", 1);
    sb_put(sb, v.s->data, v.s->len);
    if (quoted) sb_put(sb, "\"", 1);
    break;
  case V_ARR:
    sb_put(sb, "[", 1);
    for (int i = 0; i < v.a->n; i++) {
      if (i) sb_put(sb, ", ", 2);
      sb_value(sb, v.a->e[i], true);
    }
    sb_put(sb, "]", 1);
    break;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: { /* a matrix by rows: [[1, 2], [3, 4]] */
    bool mat = v.k == V_MAT;
    if (mat) sb_put(sb, "[", 1);
    for (int i = 0; i < (mat ? v.t->rows : 1); i++) {
      if (i) sb_put(sb, ", ", 2);
      sb_put(sb, "[", 1);
      int n = mat ? v.t->cols : v.t->rows * v.t->cols;
      for (int j = 0; j < n; j++) {
        if (j) sb_put(sb, ", ", 2);
        bi_fmt_real(mat ? v.t->d[(size_t)j * v.t->rows + i] : v.t->d[j], tmp, sizeof tmp);
        sb_put(sb, tmp, strlen(tmp));
      }
      sb_put(sb, "]", 1);
    }
    if (mat) sb_put(sb, "]", 1);
    break;
  }
  default: sb_put(sb, "none", 4); break;
  }
}

static bool eval_to_string(BI_EVAL_ARGS) {
  SBuf sb = {0};
  sb_put(&sb, "", 0);
  sb_value(&sb, args[0], false);
  *out = val_strn(sb.p, sb.n);
  return true;
}

/* format(fmt, x): fmt holds exactly one conversion (%d %i %f %F %e %E %g %G,
 * or %s for a string), with flags, width and precision; %% is a percent sign.
 * Validated here so that snprintf only ever sees a well-formed format. */
static bool eval_format(BI_EVAL_ARGS) {
  const PplStr *f = str_arg(args[0]);
  Value x = args[1];
  const char *bad = "expected one numeric conversion (%d, %i, %f, %e or %g) in the format";
  size_t conv_end = 0;
  char conv = 0;
  for (size_t i = 0; i < f->len; i++) {
    if (f->data[i] != '%') continue;
    if (i + 1 < f->len && f->data[i + 1] == '%') {
      i++;
      continue;
    }
    if (conv) return bi_efail(b, err, errsz, "%s, got more than one", bad);
    size_t j = i + 1;
    while (j < f->len && strchr("-+ #0", f->data[j]) && f->data[j])
      j++;
    size_t w0 = j;
    while (j < f->len && is_digit(f->data[j]))
      j++;
    if (j - w0 > 3) return bi_efail(b, err, errsz, "width too large in the format");
    if (j < f->len && f->data[j] == '.') {
      size_t p0 = ++j;
      while (j < f->len && is_digit(f->data[j]))
        j++;
      if (j - p0 > 2) return bi_efail(b, err, errsz, "precision too large in the format");
    }
    if (j >= f->len || !f->data[j] || !strchr("diFfeEgGs", f->data[j]))
      return bi_efail(b, err, errsz, "%s, got \"%.40s\"", bad, f->data + i);
    conv = f->data[j];
    conv_end = j;
    i = j;
  }
  if (!conv) return bi_efail(b, err, errsz, "%s", bad);
  if ((conv == 's') != (x.k == V_STR))
    return bi_efail(b, err, errsz, "%%%c cannot format a %s", conv, val_kind_name((ValKind)x.k));
  /* the C format: fmt with "ll" before d/i */
  char *cf = gc_alloc_atomic(f->len + 3);
  if (!cf) return bi_efail(b, err, errsz, "out of memory");
  memcpy(cf, f->data, conv_end);
  size_t k = conv_end;
  if (conv == 'd' || conv == 'i') cf[k++] = 'l', cf[k++] = 'l';
  memcpy(cf + k, f->data + conv_end, f->len - conv_end);
  int n;
  if (conv == 's') {
    n = snprintf(NULL, 0, cf, x.s->data);
  } else if (conv == 'd' || conv == 'i') {
    double r = val_as_real(x);
    if (x.k == V_REAL && !(r == trunc(r) && fabs(r) < 9.2e18)) {
      char rb[40];
      return bi_efail(b, err, errsz, "%%%c needs an integer, got %s", conv,
                      bi_fmt_real(r, rb, sizeof rb));
    }
    n = snprintf(NULL, 0, cf, (long long)(x.k == V_REAL ? (int64_t)r : bi_int(x)));
  } else {
    n = snprintf(NULL, 0, cf, val_as_real(x));
  }
  if (n < 0) return bi_efail(b, err, errsz, "cannot format");
  char *o = gc_alloc_atomic((size_t)n + 1);
  if (conv == 's')
    snprintf(o, (size_t)n + 1, cf, x.s->data);
  else if (conv == 'd' || conv == 'i')
    snprintf(o, (size_t)n + 1, cf,
             (long long)(x.k == V_REAL ? (int64_t)val_as_real(x) : bi_int(x)));
  else
    snprintf(o, (size_t)n + 1, cf, val_as_real(x));
  *out = val_strn(o, (size_t)n);
  return true;
}

const Builtin bi_str_table[] = {
    BI_SIG("contains", "(string,string)bool", eval_str_pred, P_CONTAINS),
    BI_SIG("starts_with", "(string,string)bool", eval_str_pred, P_STARTS),
    BI_SIG("ends_with", "(string,string)bool", eval_str_pred, P_ENDS),
    BI_SIG("substr", "(string,int,int)string", eval_substr, 0),
    BI_SIG("str_upper", "(string)string", eval_str_map, C_UPPER),
    BI_SIG("str_lower", "(string)string", eval_str_map, C_LOWER),
    BI_SIG("trim", "(string)string", eval_str_map, C_TRIM),
    BI_SIG("replace", "(string,string,string)string", eval_replace, 0),
    BI_SIG("split", "(string,string)string[]", eval_split, 0),
    BI_SIG("join", "(string[],string)string", eval_join, 0),
    BI_SIG("parse_real", "(string)real", eval_parse, N_PARSE_REAL),
    BI_SIG("parse_int", "(string)int", eval_parse, N_PARSE_INT),
    BI_SIG("is_number", "(string)bool", eval_parse, N_IS_NUMBER),
    {"to_string", check_to_string, eval_to_string, &(const BiSpec){0}, false},
    BI_SIG("format", "(string,int)string;(string,real)string;(string,string)string", eval_format,
           0),
    {NULL, NULL, NULL, NULL, false},
};
