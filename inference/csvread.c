/* csvread.c — CmdStan-layout CSV files read back (csvread.h).  One pass over
 * the text: comment lines fill the CsvFile's settings, the first other line
 * is the header, every later one a row.  Rows are kept row-major while
 * reading (their count is known only at the end) and turned column-major,
 * the layout of the driver's chains, once the warmup rows are cut. */
#include "csvread.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* A growing array of doubles (GC memory). */
typedef struct CrVec {
  double *v;
  size_t n, cap;
} CrVec;

static void cr_push(CrVec *a, double x) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 1024;
    double *v = gc_alloc_atomic(sizeof(double) * cap);
    if (a->n) memcpy(v, a->v, sizeof(double) * a->n);
    a->v = v, a->cap = cap;
  }
  a->v[a->n++] = x;
}

static char *cr_trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
  return s;
}

static bool cr_ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && !strcmp(s + n - k, suffix);
}

/* What the reader remembers between comment lines. */
typedef struct CrState {
  const char *algorithm; /* the last "algorithm = X" */
  long warmup_end;       /* rows before "# Adaptation terminated"; -1: none seen */
  int iter;              /* rstan's "iter": num_warmup + num_samples */
  bool elbo_trace;       /* in advi's ELBO trace: "iter, ELBO, mean, median" lines */
} CrState;

/* One line of advi's ELBO trace ("100, -32.7, 1, 1"), appended. */
static void cr_trace_line(ViReport *vi, const char *text) {
  double r[4];
  if (sscanf(text, "%lf , %lf , %lf , %lf", &r[0], &r[1], &r[2], &r[3]) != 4) return;
  double(*t)[4] = gc_alloc_atomic(sizeof(double[4]) * (size_t)(vi->ntrace + 1));
  if (vi->ntrace) memcpy(t, vi->trace, sizeof(double[4]) * (size_t)vi->ntrace);
  memcpy(t[vi->ntrace], r, sizeof r);
  vi->trace = (const double(*)[4])t;
  vi->ntrace++;
}

/* One comment line (after the '#'): "key = value" settings and ppl's
 * "engine: reason"; everything else (timing, the adapted step size and
 * metric) is not needed. */
static void cr_comment(CsvFile *f, CrState *st, char *text, long rows) {
  if (strstr(text, "Adaptation terminated")) {
    st->warmup_end = rows;
    return;
  }
  text = cr_trim(text);
  if (!strncmp(text, "ELBO trace:", 11)) {
    st->elbo_trace = true;
    return;
  }
  if (st->elbo_trace && !strchr(text, '=') && isdigit((unsigned char)text[0])) {
    cr_trace_line(&f->vi, text);
    return;
  }
  st->elbo_trace = false;
  if (!strncmp(text, "engine: ", 8)) {
    f->engine_reason = gc_strdup(cr_trim(text + 8));
    return;
  }
  char *eq = strchr(text, '='); /* CmdStan's "key = value", rstan's "key=value" */
  if (!eq) return;
  *eq = 0;
  const char *key = cr_trim(text), *val = cr_trim(eq + 1);
  if (!strcmp(key, "ppl_version")) {
    f->from_ppl = true;
  } else if (!strcmp(key, "model")) {
    f->model_name = cr_ends_with(val, "_model") ? gc_strndup(val, strlen(val) - 6) : gc_strdup(val);
  } else if (!strcmp(key, "num_samples")) {
    f->num_samples = atoi(val);
  } else if (!strcmp(key, "iter")) { /* rstan: warmup and sampling iterations */
    st->iter = atoi(val);
  } else if (!strcmp(key, "sampler_t")) { /* rstan: "NUTS(diag_e)" */
    if (!strncmp(val, "NUTS", 4)) f->engine = "nuts";
  } else if (!strcmp(key, "num_warmup") || !strcmp(key, "warmup")) {
    f->num_warmup = atoi(val);
  } else if (!strcmp(key, "thin")) {
    f->thin = atoi(val);
  } else if (!strcmp(key, "save_warmup")) {
    f->save_warmup = !strcmp(val, "1") || !strcmp(val, "true");
  } else if (!strcmp(key, "algorithm")) {
    st->algorithm = gc_strdup(val);
  } else if (!strcmp(key, "engine")) {
    /* CmdStan's hmc engines are ppl's nuts and (static) hmc */
    bool hmc = st->algorithm && !strcmp(st->algorithm, "hmc");
    f->engine = gc_strdup(hmc && !strcmp(val, "static") ? "hmc" : val);
  } else if (!strcmp(key, "delta") || !strcmp(key, "adapt_delta")) {
    f->adapt_delta = strtod(val, NULL);
  } else if (!strcmp(key, "max_depth") || !strcmp(key, "max_treedepth")) {
    f->max_depth = atoi(val);
  } else if (!strcmp(key, "log_evidence")) {
    f->log_evidence = strtod(val, NULL);
  } else if (!strcmp(key, "log_evidence_se")) {
    f->log_evidence_se = strtod(val, NULL);
  } else if (!strcmp(key, "family")) { /* advi's fit */
    f->vi.family = gc_strdup(val);
  } else if (!strcmp(key, "eta")) {
    f->vi.eta = strtod(val, NULL);
  } else if (!strcmp(key, "elbo")) {
    f->vi.elbo = strtod(val, NULL);
  } else if (!strcmp(key, "iterations")) {
    f->vi.iterations = atol(val);
  } else if (!strcmp(key, "converged")) {
    f->vi.converged = !strcmp(val, "1");
  } else if (!strcmp(key, "fit_seconds")) {
    f->vi.seconds = strtod(val, NULL);
  } else if (!strcmp(key, "psis_resample")) {
    f->vi.resampled = !strcmp(val, "1");
  }
}

static bool cr_header(CsvFile *f, char *line, int ln, Diag *d) {
  int n = 1;
  for (const char *p = line; *p; p++) n += *p == ',';
  f->names = gc_alloc(sizeof(char *) * (size_t)n);
  char *p = line;
  for (int k = 0; k < n; k++) {
    char *comma = strchr(p, ',');
    if (comma) *comma = 0;
    char *name = cr_trim(p);
    if (!*name) {
      diag_error(d, DIAG_DATA, (SrcPos){f->path, ln, (int)(p - line) + 1},
                 "column %d of the header has no name", k + 1);
      return false;
    }
    f->names[k] = gc_strdup(name);
    p = comma ? comma + 1 : p + strlen(p);
  }
  f->ncols = n;
  return true;
}

static bool cr_row(CsvFile *f, char *line, int ln, CrVec *vals, Diag *d) {
  char *p = line;
  for (int k = 0; k < f->ncols; k++) {
    char *comma = strchr(p, ',');
    if (!comma && k + 1 < f->ncols) {
      diag_error(d, DIAG_DATA, (SrcPos){f->path, ln, 1},
                 "the row has %d value%s, the header has %d columns", k + 1, k ? "s" : "", f->ncols);
      return false;
    }
    if (comma && k + 1 == f->ncols) {
      int extra = 1;
      for (const char *q = comma + 1; *q; q++) extra += *q == ',';
      diag_error(d, DIAG_DATA, (SrcPos){f->path, ln, 1},
                 "the row has %d values, the header has %d columns", f->ncols + extra, f->ncols);
      return false;
    }
    if (comma) *comma = 0;
    int col = (int)(p - line) + 1;
    char *text = cr_trim(p), *end;
    double x = strtod(text, &end);
    if (!*text || *end) {
      diag_error(d, DIAG_DATA, (SrcPos){f->path, ln, col}, "'%s' is not a number (column '%s')",
                 text, f->names[k]);
      return false;
    }
    cr_push(vals, x);
    p = comma ? comma + 1 : p + strlen(p);
  }
  return true;
}

bool csvr_read(const char *path, CsvFile *out, Diag *d) {
  memset(out, 0, sizeof *out);
  out->path = gc_strdup(path);
  out->adapt_delta = out->log_evidence = out->log_evidence_se = NAN;
  size_t len;
  char *text = diag_read_file(path, &len, d);
  if (!text) return false;
  if (len == 0) {
    diag_error(d, DIAG_IO, (SrcPos){out->path, 0, 0}, "the file is empty (no header, no draws)");
    return false;
  }
  CrState st = {NULL, -1, 0, false};
  CrVec vals = {0}, lines = {0};
  long rows = 0;
  int ln = 0;
  bool header = false;
  for (char *p = text; *p;) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = 0;
    ln++;
    size_t n = strlen(p);
    if (n && p[n - 1] == '\r') p[n - 1] = 0;
    if (p[0] == '#') {
      cr_comment(out, &st, p + 1, rows);
    } else if (*cr_trim(p)) {
      if (!header) {
        if (!cr_header(out, p, ln, d)) return false;
        header = true;
      } else {
        if (!cr_row(out, p, ln, &vals, d)) return false;
        cr_push(&lines, ln);
        rows++;
      }
    }
    p = nl ? nl + 1 : p + n;
  }
  if (!header) {
    diag_error(d, DIAG_DATA, (SrcPos){out->path, 0, 0}, "no header row (the file has only comments)");
    return false;
  }
  if (out->thin < 1) out->thin = 1;
  if (st.iter > 0 && out->num_samples == 0) out->num_samples = st.iter - out->num_warmup;
  /* warmup rows: before CmdStan's "Adaptation terminated"; when that line
     has no rows before it (engines without adaptation, or adaptation
     comments written before the rows) the first ceil(num_warmup / thin) */
  long skip = 0;
  if (out->save_warmup)
    skip = st.warmup_end > 0 ? st.warmup_end : (out->num_warmup + out->thin - 1) / out->thin;
  if (skip > rows) skip = rows;
  int nr = (int)(rows - skip), nc = out->ncols;
  out->nrows = nr;
  out->data = gc_alloc_atomic(sizeof(double) * ((size_t)nr * (size_t)nc + 1));
  out->line = gc_alloc_atomic(sizeof(int) * ((size_t)nr + 1));
  for (int i = 0; i < nr; i++) {
    const double *row = vals.v + (size_t)(i + skip) * (size_t)nc;
    for (int c = 0; c < nc; c++) out->data[(size_t)c * (size_t)nr + (size_t)i] = row[c];
    out->line[i] = (int)lines.v[i + skip];
  }
  return true;
}

int csvr_column(const CsvFile *f, const char *name) {
  for (int k = 0; k < f->ncols; k++)
    if (!strcmp(f->names[k], name)) return k;
  return -1;
}

/* The first column where b differs from a, or -1 when they agree. */
static int cr_first_difference(const CsvFile *a, const CsvFile *b) {
  int n = a->ncols < b->ncols ? a->ncols : b->ncols;
  for (int k = 0; k < n; k++)
    if (strcmp(a->names[k], b->names[k])) return k;
  return a->ncols == b->ncols ? -1 : n;
}

/* advi's files: each chain's fit from its comments, and its draws' log
 * weights log_p__ - log_g__ (none for resampled draws: their weights are
 * not those of draws of q). */
static void cr_vi(int nfiles, const CsvFile *files, DriverDraws *out) {
  int pcol = csvr_column(&files[0], "log_p__"), gcol = csvr_column(&files[0], "log_g__");
  for (int c = 0; c < nfiles; c++)
    if (!files[c].vi.family) return;
  if (pcol < 0 || gcol < 0) return;
  ViReport *vi = gc_alloc(sizeof(ViReport) * (size_t)nfiles);
  size_t n = (size_t)out->n;
  for (int c = 0; c < nfiles; c++) {
    vi[c] = files[c].vi;
    if (vi[c].resampled) continue;
    double *lw = gc_alloc_atomic(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
      lw[i] = out->data[c][(size_t)pcol * n + i] - out->data[c][(size_t)gcol * n + i];
    vi[c].lw = lw, vi[c].n = (int)n;
  }
  out->vi = vi;
}

bool csvr_draws(int nfiles, const CsvFile *files, DriverDraws *out, Diag *d) {
  memset(out, 0, sizeof *out);
  if (nfiles < 1) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "no CSV files to read");
    return false;
  }
  const CsvFile *a = &files[0];
  int n = a->nrows, fewest = 0;
  for (int c = 0; c < nfiles; c++) {
    const CsvFile *b = &files[c];
    int k = cr_first_difference(a, b);
    if (k >= 0) {
      diag_error(d, DIAG_DATA, (SrcPos){b->path, 0, 0},
                 "its columns differ from %s's (column %d: '%s' vs '%s'): the files must be "
                 "chains of one model", a->path, k + 1, k < b->ncols ? b->names[k] : "(none)",
                 k < a->ncols ? a->names[k] : "(none)");
      return false;
    }
    if (b->nrows == 0) {
      diag_error(d, DIAG_DATA, (SrcPos){b->path, 0, 0}, "the file has no draws");
      return false;
    }
    if (b->nrows < n) n = b->nrows, fewest = c;
  }
  /* Chains of one run have the same number of draws unless the run was
     interrupted: then it kept the fewest, and so does its summary.  The file
     with the fewest rows tells: fewer than it planned is an interrupted run. */
  const CsvFile *lo = &files[fewest];
  int planned = lo->num_samples > 0 ? (lo->num_samples + lo->thin - 1) / lo->thin : 0;
  for (int c = 0; c < nfiles; c++)
    if (files[c].nrows != n && n >= planned) {
      diag_error(d, DIAG_DATA, (SrcPos){0}, "%s has %d draws but %s has %d: the files must be "
                 "chains of one run", files[c].path, files[c].nrows, files[fewest].path, n);
      return false;
    }
  out->engine = a->engine ? a->engine : "?";
  out->engine_reason = a->engine_reason;
  out->model_name = a->model_name;
  out->m = nfiles, out->n = n, out->ncols = a->ncols;
  out->warmup = a->num_warmup, out->thin = a->thin;
  out->names = a->names;
  out->planned_draws = n < planned ? planned : 0;
  const EngineVT *vt = engine_lookup(a->engine);
  out->random_walk = vt && vt->random_walk;
  out->adapt_delta = a->adapt_delta;
  out->max_depth = a->max_depth;
  out->data = gc_alloc(sizeof(double *) * (size_t)nfiles);
  int wcol = csvr_column(a, "log_weight__");
  if (wcol >= 0) out->lw = gc_alloc(sizeof(double *) * (size_t)nfiles);
  double *lz = gc_alloc_atomic(sizeof(double) * (size_t)nfiles);
  double *lse = gc_alloc_atomic(sizeof(double) * (size_t)nfiles);
  bool have_lz = true, have_se = true;
  for (int c = 0; c < nfiles; c++) {
    const CsvFile *f = &files[c];
    double *x = f->data;
    if (f->nrows != n) { /* keep the first n draws of every column */
      x = gc_alloc_atomic(sizeof(double) * ((size_t)n * (size_t)f->ncols + 1));
      for (int k = 0; k < f->ncols; k++)
        memcpy(x + (size_t)k * (size_t)n, f->data + (size_t)k * (size_t)f->nrows, sizeof(double) * (size_t)n);
    }
    out->data[c] = x;
    if (out->lw) out->lw[c] = x + (size_t)wcol * (size_t)n;
    lz[c] = f->log_evidence, lse[c] = f->log_evidence_se;
    have_lz &= !isnan(f->log_evidence);
    have_se &= !isnan(f->log_evidence_se);
  }
  if (have_lz) out->chain_logz = lz;
  if (have_lz && have_se) out->chain_logz_se = lse;
  cr_vi(nfiles, files, out);
  return true;
}
