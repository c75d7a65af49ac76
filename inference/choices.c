/* choices.c — the choices file (one JSON object of every random choice per
 * kept draw) and its account in the summary; see choices.h.  jansson builds
 * each line, so addresses and strings are escaped as JSON wants. */
#include "choices.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "../stdlib/lm.h"

char *choices_path(const char *csv_path) {
  const char *slash = strrchr(csv_path, '/');
  const char *dot = strrchr(csv_path, '.');
  int stem = dot && (!slash || dot > slash + 1) && dot != csv_path ? (int)(dot - csv_path)
                                                                   : (int)strlen(csv_path);
  return gc_printf("%.*s_choices.jsonl", stem, csv_path);
}

/* ---- one line ------------------------------------------------------------ */

static json_t *ch_real(double x) {
  if (isnan(x)) return json_string("NaN");
  if (isinf(x)) return json_string(x > 0 ? "Inf" : "-Inf");
  return json_real(x);
}

/* A string as JSON, which holds Unicode only: a string that is not
   well-formed UTF-8 (a token of a byte-level model that splits a
   character) has each malformed byte replaced by U+FFFD, as decoders do
   (jansson refuses such a string, and its address was dropped). */
static json_t *ch_string(const char *s, size_t n) {
  size_t bad;
  if (lm_utf8_valid(s, n, &bad)) return json_stringn(s, n);
  char *o = gc_alloc_atomic(3 * n + 1);
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    bool whole = lm_utf8_valid(s + i, n - i, &bad);
    size_t run = whole ? n - i : bad;
    memcpy(o + k, s + i, run);
    k += run;
    if (whole) break;
    memcpy(o + k, "\xef\xbf\xbd", 3);
    k += 3;
    i += run + 1;
  }
  return json_stringn(o, k);
}

static json_t *ch_value(Value v) {
  switch (v.k) {
  case V_INT: return json_integer((json_int_t)v.i);
  case V_REAL: return ch_real(v.r);
  case V_BOOL: return json_boolean(v.b);
  case V_STR: return ch_string(v.s->data, v.s->len);
  case V_ARR: {
    json_t *a = json_array();
    for (int i = 0; i < v.a->n; i++) json_array_append_new(a, ch_value(v.a->e[i]));
    return a;
  }
  case V_VEC:
  case V_ROWVEC: {
    json_t *a = json_array();
    for (int i = 0; i < v.t->rows * v.t->cols; i++) json_array_append_new(a, ch_real(v.t->d[i]));
    return a;
  }
  case V_MAT: { /* CmdStan's JSON: a matrix is an array of its rows */
    json_t *a = json_array();
    for (int i = 0; i < v.t->rows; i++) {
      json_t *row = json_array();
      for (int j = 0; j < v.t->cols; j++)
        json_array_append_new(row, ch_real(v.t->d[(size_t)j * (size_t)v.t->rows + (size_t)i]));
      json_array_append_new(a, row);
    }
    return a;
  }
  default: return json_null();
  }
}

bool choices_write(FILE *f, int noutputs, const IrOutput *outputs, const Value *vals, int nlat,
                   const InterpLatent *lat, int digits) {
  json_t *o = json_object();
  for (int j = 0; j < noutputs && vals; j++)
    if (outputs[j].kind == OUT_LATENT && vals[j].k != V_NONE)
      json_object_set_new(o, outputs[j].name, ch_value(vals[j]));
  for (int i = 0; i < nlat; i++) json_object_set_new(o, lat[i].addr, ch_value(lat[i].v));
  int prec = digits < 1 ? 6 : digits > 17 ? 17 : digits;
  int rc = json_dumpf(o, f, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(prec));
  json_decref(o);
  return rc == 0 && fputc('\n', f) != EOF && fflush(f) == 0;
}

/* ---- the log ------------------------------------------------------------- */

/* One base name's nested latents, per kept draw. */
typedef struct ChoiceBase {
  const char *name;
  int *naddr;   /* addresses of this base in draw k */
  long *nel;    /* their numeric elements */
  double *sum;  /* and the elements' sum */
} ChoiceBase;

struct ChoiceLog {
  int ndraws;
  int nbase, cap;
  ChoiceBase *base;
  const char **set; /* the distinct addresses seen: open addressing */
  size_t setcap, nset;
};

ChoiceLog *choices_log_new(int ndraws) {
  ChoiceLog *cl = gc_alloc(sizeof *cl);
  cl->ndraws = ndraws;
  cl->setcap = 64;
  cl->set = gc_alloc(sizeof(char *) * cl->setcap);
  return cl;
}

char *choices_base(const char *addr) {
  size_t n = strlen(addr), j = 0;
  char *b = gc_alloc_atomic(n + 1);
  for (size_t i = 0; i < n; i++) {
    if (addr[i] == '[') {
      while (i < n && addr[i] != ']') i++;
    } else if (addr[i] == '#') {
      while (i + 1 < n && addr[i + 1] >= '0' && addr[i + 1] <= '9') i++;
    } else {
      b[j++] = addr[i];
    }
  }
  b[j] = 0;
  return b;
}

static size_t ch_hash(const char *s) {
  size_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void ch_set_add(ChoiceLog *cl, const char *s);

static void ch_set_grow(ChoiceLog *cl) {
  const char **old = cl->set;
  size_t oldcap = cl->setcap;
  cl->setcap *= 2;
  cl->set = gc_alloc(sizeof(char *) * cl->setcap);
  cl->nset = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i]) ch_set_add(cl, old[i]);
}

static void ch_set_add(ChoiceLog *cl, const char *s) {
  if (2 * (cl->nset + 1) > cl->setcap) ch_set_grow(cl);
  size_t i = ch_hash(s) & (cl->setcap - 1);
  while (cl->set[i]) {
    if (!strcmp(cl->set[i], s)) return;
    i = (i + 1) & (cl->setcap - 1);
  }
  cl->set[i] = s;
  cl->nset++;
}

static ChoiceBase *ch_base(ChoiceLog *cl, const char *name) {
  for (int i = 0; i < cl->nbase; i++)
    if (!strcmp(cl->base[i].name, name)) return &cl->base[i];
  cl->base = gc_grow(cl->base, cl->nbase, &cl->cap, sizeof(ChoiceBase));
  ChoiceBase *b = &cl->base[cl->nbase++];
  size_t n = (size_t)(cl->ndraws > 0 ? cl->ndraws : 1);
  b->name = name;
  b->naddr = gc_alloc_atomic(sizeof(int) * n);
  b->nel = gc_alloc_atomic(sizeof(long) * n);
  b->sum = gc_alloc_atomic(sizeof(double) * n);
  return b;
}

/* Sum and count of v's numeric elements (strings have none). */
static void ch_elements(Value v, double *sum, long *nel) {
  switch (v.k) {
  case V_INT: *sum += (double)v.i, (*nel)++; break;
  case V_REAL: *sum += v.r, (*nel)++; break;
  case V_BOOL: *sum += v.b, (*nel)++; break;
  case V_ARR:
    for (int i = 0; i < v.a->n; i++) ch_elements(v.a->e[i], sum, nel);
    break;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT:
    for (int i = 0; i < v.t->rows * v.t->cols; i++) *sum += v.t->d[i], (*nel)++;
    break;
  default: break;
  }
}

void choices_log_draw(ChoiceLog *cl, int k, int noutputs, const IrOutput *outputs, int nlat,
                      const InterpLatent *lat) {
  if (k < 0 || k >= cl->ndraws) return;
  for (int j = 0; j < noutputs; j++)
    if (outputs[j].kind == OUT_LATENT) ch_set_add(cl, outputs[j].name);
  for (int i = 0; i < nlat; i++) {
    ch_set_add(cl, lat[i].addr);
    ChoiceBase *b = ch_base(cl, choices_base(lat[i].addr));
    b->naddr[k]++;
    ch_elements(lat[i].v, &b->sum[k], &b->nel[k]);
  }
}

/* ---- the summary's lines ------------------------------------------------- */

enum { CH_MAX_ROWS = 20 };

char *choices_summary(int m, int n, ChoiceLog *const *logs, const double *const *lw,
                      const char *where, bool with_table) {
  /* distinct addresses over every chain: the first chain's set takes the others' */
  ChoiceLog *all = choices_log_new(0);
  for (int c = 0; c < m; c++)
    for (size_t i = 0; i < logs[c]->setcap; i++)
      if (logs[c]->set[i]) ch_set_add(all, logs[c]->set[i]);
  char *s = where ? gc_printf("\nchoices: %zu address%s in %s (every random choice of each draw)\n",
                              all->nset, all->nset == 1 ? "" : "es", where)
                  : gc_printf("\nchoices: %zu address%s (every random choice of each draw; a run "
                              "with an output FILE.csv writes them to FILE_choices.jsonl)\n",
                              all->nset, all->nset == 1 ? "" : "es");
  if (!with_table) return s;
  /* the base names in the order chain 1 met them, then the others' new ones */
  const char **names = NULL;
  int nnames = 0, cap = 0;
  for (int c = 0; c < m; c++)
    for (int b = 0; b < logs[c]->nbase; b++) {
      int i = 0;
      while (i < nnames && strcmp(names[i], logs[c]->base[b].name)) i++;
      if (i < nnames) continue;
      names = gc_grow(names, nnames, &cap, sizeof(char *));
      names[nnames++] = logs[c]->base[b].name;
    }
  if (nnames == 0) return s;
  double lwmax = -INFINITY;
  for (int c = 0; c < m && lw; c++)
    for (int k = 0; k < n; k++)
      if (lw[c][k] > lwmax) lwmax = lw[c][k];
  s = gc_printf("%s%-24s %9s %9s %10s\n", s, "name", "in draws", "per draw", "mean");
  for (int i = 0; i < nnames && i < CH_MAX_ROWS; i++) {
    double wall = 0, whave = 0, waddr = 0, wel = 0, wsum = 0;
    for (int c = 0; c < m; c++) {
      ChoiceBase *b = NULL;
      for (int q = 0; q < logs[c]->nbase && !b; q++)
        if (!strcmp(logs[c]->base[q].name, names[i])) b = &logs[c]->base[q];
      for (int k = 0; k < n; k++) {
        double w = lw ? (isfinite(lwmax) ? exp(lw[c][k] - lwmax) : 0) : 1;
        wall += w;
        if (!b || b->naddr[k] == 0) continue;
        whave += w, waddr += w * b->naddr[k], wel += w * (double)b->nel[k], wsum += w * b->sum[k];
      }
    }
    char mean[32] = "-";
    if (wel > 0) snprintf(mean, sizeof mean, "%.3g", wsum / wel);
    s = gc_printf("%s%-24s %8.1f%% %9.3g %10s\n", s, names[i], wall > 0 ? 100 * whave / wall : 0.0,
                  whave > 0 ? waddr / whave : 0.0, mean);
  }
  if (nnames > CH_MAX_ROWS)
    s = gc_printf("%s(%d more name%s in the choices files)\n", s, nnames - CH_MAX_ROWS,
                  nnames - CH_MAX_ROWS == 1 ? "" : "s");
  return s;
}
