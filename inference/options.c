/* options.c — parsing and validating engine option values against their
 * table entries, and the per-run store engines read them from.
 *
 * The messages keep the wording the command line has always used ("--chains
 * expects an integer from 1 to 1024, got '0'"): they name the option as it is
 * typed, so the same text serves the CLI and the API. */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/value.h"

static const char *choices_text(const OptSpec *s) {
  const char *t = "";
  for (int k = 0; s->choices && s->choices[k]; k++)
    t = gc_printf("%s%s%s", t, k ? ", " : "", s->choices[k]);
  return t;
}

const char *opt_type_text(const OptSpec *s) {
  switch (s->type) {
  case OPT_INT: return "integer";
  case OPT_REAL: return s->or_file ? "number or file" : "number";
  case OPT_BOOL: return "bool";
  case OPT_ENUM: return gc_printf("one of %s%s", choices_text(s), s->or_file ? ", or a file" : "");
  case OPT_TEXT: return "text";
  }
  return "";
}

const char *opt_range_text(const OptSpec *s) {
  if (s->type == OPT_INT) return gc_printf("%lld to %lld", (long long)s->ilo, (long long)s->ihi);
  if (s->type != OPT_REAL) return "";
  if (isinf(s->rhi)) return gc_printf("%s %g", s->rlo_open ? ">" : ">=", s->rlo);
  return gc_printf("%g to %g", s->rlo, s->rhi);
}

/* The message for a value outside the spec, in the CLI's long-standing words. */
static bool bad(const OptSpec *s, const char *got, char *err, size_t n) {
  switch (s->type) {
  case OPT_INT:
    snprintf(err, n, "--%s expects an integer from %lld to %lld, got '%s'", s->name,
             (long long)s->ilo, (long long)s->ihi, got);
    break;
  case OPT_REAL:
    if (isinf(s->rhi) && s->rlo == 0)
      snprintf(err, n, "--%s expects a %s number, got '%s'", s->name,
               s->rlo_open ? "positive" : "non-negative", got);
    else
      snprintf(err, n, "--%s expects a number from %g to %g, got '%s'", s->name, s->rlo, s->rhi,
               got);
    break;
  case OPT_BOOL: snprintf(err, n, "--%s expects true or false, got '%s'", s->name, got); break;
  case OPT_ENUM:
    snprintf(err, n, "--%s expects one of %s, got '%s'", s->name, choices_text(s), got);
    break;
  case OPT_TEXT: snprintf(err, n, "--%s: bad value '%s'", s->name, got); break;
  }
  return false;
}

bool opt_check_int(const OptSpec *s, int64_t v, char *err, size_t n) {
  if (v >= s->ilo && v <= s->ihi) return true;
  return bad(s, gc_printf("%lld", (long long)v), err, n);
}

bool opt_check_real(const OptSpec *s, double v, char *err, size_t n) {
  if (isfinite(v) && (s->rlo_open ? v > s->rlo : v >= s->rlo) && v <= s->rhi) return true;
  return bad(s, gc_printf("%g", v), err, n);
}

/* A file is a path with a '.' or a '/' ("init.json", "./init"), or JSON text:
   a mistyped kind or number ("dence", "abc") keeps its message. */
static bool opt_is_file(const char *text) {
  return text[0] == '{' || strchr(text, '.') || strchr(text, '/');
}

bool opt_parse(const OptSpec *s, const char *text, OptValue *out, char *err, size_t n) {
  *out = (OptValue){0};
  if (!text) text = "";
  char *end;
  errno = 0;
  switch (s->type) {
  case OPT_INT: {
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end) return bad(s, text, err, n);
    out->i = v;
    return opt_check_int(s, v, err, n) || bad(s, text, err, n);
  }
  case OPT_REAL: {
    double v = strtod(text, &end);
    if (s->or_file && (end == text || *end) && opt_is_file(text))
      return out->path = gc_strdup(text), true;
    if (errno || end == text || *end) return bad(s, text, err, n);
    out->r = v;
    return opt_check_real(s, v, err, n) || bad(s, text, err, n);
  }
  case OPT_BOOL: {
    static const char *const yes[] = {"true", "1", "yes", "on", NULL};
    static const char *const no[] = {"false", "0", "no", "off", NULL};
    for (int k = 0; yes[k]; k++) {
      if (!strcasecmp(text, yes[k])) return out->i = 1, true;
      if (!strcasecmp(text, no[k])) return out->i = 0, true;
    }
    return bad(s, text, err, n);
  }
  case OPT_ENUM:
    for (int k = 0; s->choices && s->choices[k]; k++)
      if (!strcmp(text, s->choices[k])) return out->i = k, true;
    if (s->or_file && opt_is_file(text)) return out->path = gc_strdup(text), true;
    return bad(s, text, err, n);
  case OPT_TEXT:
    if (*text) out->path = gc_strdup(text);
    return true;
  }
  return bad(s, text, err, n);
}

OptValue opt_default(const OptSpec *s) {
  OptValue v;
  char err[256];
  if (!opt_parse(s, s->def, &v, err, sizeof err)) v = (OptValue){0};
  return v;
}

const char *opt_value_text(const OptSpec *s, OptValue v) {
  if (v.path) return v.path;
  switch (s->type) {
  case OPT_INT: return gc_printf("%lld", (long long)v.i);
  case OPT_REAL: return gc_printf("%g", v.r);
  case OPT_BOOL: return v.i ? "true" : "false";
  case OPT_ENUM: return s->choices[v.i];
  case OPT_TEXT: return "";
  }
  return "";
}

/* Optimal string alignment distance: a transposition counts as one edit,
 * as in "adpat-delta". Names are short; longer ones are not compared. */
int opt_distance(const char *a, const char *b) {
  enum { MAX = 64 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= MAX || lb >= MAX) return MAX;
  int d[MAX + 1][MAX + 1];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int cost = a[i - 1] != b[j - 1];
      int best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

/* ---- the store ---- */

OptSet *opt_set_new(void) { return gc_alloc(sizeof(OptSet)); }

void opt_set_put(OptSet *s, const OptSpec *spec, OptValue v) {
  for (int k = 0; k < s->n && !spec->repeat; k++)
    if (!strcmp(s->spec[k]->name, spec->name)) {
      s->spec[k] = spec;
      s->val[k] = v;
      return;
    }
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 16;
    const OptSpec **sp = gc_alloc(sizeof *sp * (size_t)cap);
    OptValue *val = gc_alloc(sizeof *val * (size_t)cap); /* OptValue.path */
    if (s->n) {
      memcpy(sp, s->spec, sizeof *sp * (size_t)s->n);
      memcpy(val, s->val, sizeof *val * (size_t)s->n);
    }
    s->spec = sp;
    s->val = val;
    s->cap = cap;
  }
  s->spec[s->n] = spec;
  s->val[s->n++] = v;
}

const OptValue *opt_set_get(const OptSet *s, const char *name) {
  for (int k = 0; s && k < s->n; k++)
    if (!strcmp(s->spec[k]->name, name)) return &s->val[k];
  return NULL;
}
