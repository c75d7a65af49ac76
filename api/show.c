/* show.c — the values of one draw as `ppl exec` prints them: one line per
 * variable, `name = value`, containers as nested lists ("v = [0.1, 2, 3]"),
 * or one JSON object.  It reads a result through ppl.h alone, as any host
 * would: the CSV columns of draw 0 of chain 0, regrouped into variables.
 *
 * Columns "v.1", "v.2", ... (CmdStan's names, first index fastest) form one
 * variable when their indices fill a box from 1 (wherever they are: a latent
 * z in a loop writes z.1.1, z.1.2 with iteration 1, z.2.1 later); any other
 * indexed column
 * (a latent in a loop at h[2], h[3], ...: its address) is shown on its own
 * under its summary name, "h[2] = 0.5".  Sampler columns (name__) are left
 * out except lp__, the run's log density. */
#include "show.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_MAX_DIMS 16

typedef struct ShowVar {
  const char *base; /* "v" (points into the first column's name) */
  size_t baselen;
  int *cols, n;     /* its columns */
  int nd;           /* indices per column; -1: not a box, shown column by column */
  int dims[SHOW_MAX_DIMS];
} ShowVar;

/* The indices of a column name "v.2.3" after its base; -1 when a part is no
   positive integer (or an address with '/': shown as it is). */
static int show_indices(const char *name, size_t *baselen, int *idx) {
  if (strchr(name, '/')) return *baselen = strlen(name), -1;
  const char *dot = strchr(name, '.');
  *baselen = dot ? (size_t)(dot - name) : strlen(name);
  int nd = 0;
  while (dot) {
    char *end;
    long v = strtol(dot + 1, &end, 10);
    if (end == dot + 1 || v < 1 || v > 1000000000 || (*end && *end != '.') || nd == SHOW_MAX_DIMS)
      return -1;
    idx[nd++] = (int)v;
    dot = *end ? end : NULL;
  }
  return nd;
}

static bool show_skipped(const char *name) {
  size_t n = strlen(name);
  return n > 2 && !strcmp(name + n - 2, "__") && strcmp(name, "lp__");
}

/* A number: integers exactly, others with six significant digits (text) or
   all of them (JSON); NaN and infinities as the CSV writes them, or null. */
static void show_number(FILE *f, double v, bool json) {
  if (isnan(v) || isinf(v)) fputs(json ? "null" : isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", f);
  else if (v == floor(v) && fabs(v) < 1e15) fprintf(f, "%.0f", v);
  else fprintf(f, json ? "%.17g" : "%.6g", v);
}

/* Row-major nested lists of a box of values placed by their indices. */
static void show_box(FILE *f, const double *vals, const int *dims, int nd, int k, long *pos,
                     bool json) {
  if (k == nd) {
    show_number(f, vals[(*pos)++], json);
    return;
  }
  fputc('[', f);
  for (int i = 0; i < dims[k]; i++) {
    if (i) fputs(", ", f);
    show_box(f, vals, dims, nd, k + 1, pos, json);
  }
  fputc(']', f);
}

static void show_name(FILE *f, const char *s, size_t n, bool json) {
  if (!json) {
    fprintf(f, "%.*s", (int)n, s);
    return;
  }
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"' || s[i] == '\\') fputc('\\', f);
    fputc(s[i], f);
  }
  fputc('"', f);
}

/* The summary's name of an indexed column: "h.2" -> "h[2]". */

static void show_var(FILE *f, const ppl_result *r, const ShowVar *v, bool json, bool *first) {
  if (v->nd < 0 || (v->nd == 0 && v->n > 1)) { /* column by column */
    for (int i = 0; i < v->n; i++) {
      int c = v->cols[i];
      fputs(json ? (*first ? "{" : ", ") : "", f);
      *first = false;
      const char *label = ppl_result_column_label(r, c);
      show_name(f, label, strlen(label), json);
      fputs(json ? ": " : " = ", f);
      show_number(f, ppl_result_draw(r, 0, 0, c), json);
      if (!json) fputc('\n', f);
    }
    return;
  }
  fputs(json ? (*first ? "{" : ", ") : "", f);
  *first = false;
  show_name(f, v->base, v->baselen, json);
  fputs(json ? ": " : " = ", f);
  if (v->nd == 0) show_number(f, ppl_result_draw(r, 0, 0, v->cols[0]), json);
  else {
    /* place each column by its indices, row-major */
    double *vals = calloc((size_t)v->n, sizeof(double));
    if (!vals) return;
    for (int i = 0; i < v->n; i++) {
      int idx[SHOW_MAX_DIMS];
      size_t bl;
      show_indices(ppl_result_column_name(r, v->cols[i]), &bl, idx);
      long at = 0;
      for (int k = 0; k < v->nd; k++) at = at * v->dims[k] + (idx[k] - 1);
      vals[at] = ppl_result_draw(r, 0, 0, v->cols[i]);
    }
    long pos = 0;
    show_box(f, vals, v->dims, v->nd, 0, &pos, json);
    free(vals);
  }
  if (!json) fputc('\n', f);
}

/* Whether the columns of v fill the box of their largest indices, each once
   (the count matches and no index is repeated: counted by position). */
static bool show_is_box(const ppl_result *r, const ShowVar *v) {
  long cells = 1;
  for (int k = 0; k < v->nd; k++) cells *= v->dims[k];
  if (cells != v->n) return false;
  char *seen = calloc((size_t)cells, 1);
  if (!seen) return false;
  bool ok = true;
  for (int i = 0; ok && i < v->n; i++) {
    int idx[SHOW_MAX_DIMS];
    size_t bl;
    show_indices(ppl_result_column_name(r, v->cols[i]), &bl, idx);
    long at = 0;
    for (int k = 0; k < v->nd; k++) at = at * v->dims[k] + (idx[k] - 1);
    ok = !seen[at];
    seen[at] = 1;
  }
  free(seen);
  return ok;
}

void show_values(FILE *f, const ppl_result *r, bool json) {
  int ncols = ppl_result_num_columns(r);
  bool first = true;
  char *used = calloc((size_t)(ncols > 0 ? ncols : 1), 1);
  int *cols = malloc(sizeof(int) * (size_t)(ncols > 0 ? ncols : 1));
  if (!used || !cols) goto out;
  for (int c = 0; c < ncols; c++) {
    const char *name = ppl_result_column_name(r, c);
    if (used[c] || show_skipped(name)) continue;
    ShowVar v = {.base = name, .cols = cols, .n = 0};
    int idx[SHOW_MAX_DIMS];
    v.nd = show_indices(name, &v.baselen, idx);
    /* this column, and with indices every later one of the same base */
    for (int c2 = c; c2 < ncols && (c2 == c || v.nd > 0); c2++) {
      const char *cn = ppl_result_column_name(r, c2);
      size_t bl;
      int nd = show_indices(cn, &bl, idx);
      if (used[c2] || bl != v.baselen || strncmp(cn, v.base, bl) || nd != v.nd) continue;
      for (int k = 0; k < nd; k++)
        if (v.n == 0 || idx[k] > v.dims[k]) v.dims[k] = idx[k];
      used[c2] = 1;
      cols[v.n++] = c2;
    }
    if (v.nd > 0 && !show_is_box(r, &v)) v.nd = -1;
    show_var(f, r, &v, json, &first);
  }
  if (json) fputs(first ? "{}\n" : "}\n", f);
out:
  free(used);
  free(cols);
}
