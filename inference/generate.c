/* generate.c — standalone generated quantities (generate.h).  The replay
 * handler is the whole trick: sample() answers every latent with the draw's
 * value (checked against its distribution's support), observations and
 * factors are ignored, so one ordinary run of the program recomputes its
 * deterministic statements and its generated block for that draw. */
#define _GNU_SOURCE /* strerror_r returning char * */
#include "generate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "csvread.h"
#include "ppl_config.h"

typedef struct GenHandler {
  Handler h;
  const CsvFile *f;
  int row;
  Rng rng; /* only for a value of the right shape to fill in */
} GenHandler;

/* A latent's columns: its name, or its address for one declared in a loop,
   a branch or a function (h[2] is h.2), as the run wrote them. */
static HandlerResult gen_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                SrcPos pos, Diag *d) {
  GenHandler *g = (GenHandler *)h;
  const CsvFile *f = g->f;
  char err[256];
  Value v;
  CsvCols cols;
  csv_cols_init(&cols);
  if (!dist_call_init_value(dc, &g->rng, &v, err, sizeof err) ||
      csv_columns(csv_address_name(addr), v, &cols, true, err, sizeof err) < 0) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  for (int k = 0; k < cols.n; k++) {
    int col = csvr_column(f, cols.names[k]);
    if (col < 0) {
      diag_error(d, DIAG_DATA, (SrcPos){0}, "%s: no column '%s' for latent '%s' of the model",
                 f->path, cols.names[k], addr);
      return HR_ERROR;
    }
    csv_set_element(&v, k, f->data[(size_t)col * (size_t)f->nrows + (size_t)g->row]);
  }
  double lp;
  if (!dist_call_lpdf(dc, v, &lp, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  if (!(lp > -INFINITY)) {
    diag_error(d, DIAG_DATA, (SrcPos){0}, "%s:%d: the draw's value of latent '%s' is outside "
               "its distribution's support (log density %g)", f->path, f->line[g->row], addr, lp);
    return HR_ERROR;
  }
  *out = v;
  return HR_CONTINUE;
}

/* Column `col` is (an element of) output `name`. */
static bool gen_of(const char *col, const char *name) {
  size_t n = strlen(name);
  return !strncmp(col, name, n) && (!col[n] || col[n] == '.');
}

/* Column `name` belongs to a generated quantity of p (it is recomputed, not
 * copied from the draws). */
static bool gen_is_generated(const IrProgram *p, const char *name) {
  for (int j = 0; j < p->noutputs; j++)
    if (p->outputs[j].kind == OUT_GENERATED && gen_of(name, p->outputs[j].name)) return true;
  return false;
}

/* The outputs written after the draws' columns: every generated quantity,
 * and the model's derived variables the draws do not have (a model given
 * for generate may compute more than the one that made the draws). */
static bool *gen_emitted(const IrProgram *p, const CsvFile *f) {
  bool *emit = gc_alloc_atomic(sizeof(bool) * (size_t)(p->noutputs + 1));
  for (int j = 0; j < p->noutputs; j++) {
    emit[j] = p->outputs[j].kind == OUT_GENERATED;
    if (p->outputs[j].kind == OUT_DERIVED) {
      emit[j] = true;
      for (int k = 0; k < f->ncols && emit[j]; k++) emit[j] = !gen_of(f->names[k], p->outputs[j].name);
    }
  }
  return emit;
}

/* The shortest of %.6g ... %.17g that reads back as v: the draws' values
 * are copied without loss, and mu * 2 of a draw is written as computed. */
static const char *gen_format(char *buf, double v) {
  if (!isfinite(v)) return csv_format_value(buf, v, false);
  for (int p = 6; p <= 17; p++) {
    snprintf(buf, 32, "%.*g", p, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

static void gen_comments(FILE *o, const char *model_name, const char *fitted, uint64_t seed) {
  fprintf(o, "# stan_version_major = 2\n# stan_version_minor = 33\n# stan_version_patch = 0\n");
  fprintf(o, "# ppl_version = %s\n", PPL_VERSION_STRING);
  fprintf(o, "# model = %s_model\n", model_name ? model_name : "ppl");
  fprintf(o, "# method = generate_quantities\n#   generate_quantities\n");
  fprintf(o, "#     fitted_params = %s\n", fitted);
  fprintf(o, "# random\n#   seed = %llu\n", (unsigned long long)seed);
}

/* One draw through the program: the columns of the outputs in emit
 * appended to cols. */
static bool gen_draw(const Interp *in, const CsvFile *f, int c, int i, uint64_t seed,
                     const bool *emit, CsvCols *cols, bool names, Diag *d) {
  GenHandler g = {.h = {.sample = gen_sample, .observe = interp_observe_ignored,
                        .factor = interp_factor_ignored},
                  .f = f, .row = i};
  uint64_t stream = ((uint64_t)c << 32) + (uint64_t)i;
  rng_seed(&g.rng, seed, stream);
  InterpState *st = interp_start(in, seed, stream, true);
  RunStatus rs = interp_run(st, &g.h, d);
  if (rs != RUN_DONE) {
    if (rs == RUN_SUSPENDED) diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "the run suspended");
    /* say which draw the program failed on (the handler's messages do) */
    if (d->code != DIAG_RUNTIME) return false;
    const char *msg = gc_printf("%s (the draw at %s:%d)", d->msg, f->path, f->line[i]);
    snprintf(d->msg, sizeof d->msg, "%s", msg);
    return false;
  }
  const IrProgram *p = interp_program(in);
  Value *outs = interp_outputs(st);
  char err[256];
  for (int j = 0; j < p->noutputs; j++)
    if (emit[j] &&
        csv_columns(p->outputs[j].name, outs[j], cols, names, err, sizeof err) < 0) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "%s", err);
      return false;
    }
  return true;
}

/* One file of draws to one output stream. */
static bool gen_file(const Interp *in, const CsvFile *f, int c, FILE *o, const char *out_path,
                     uint64_t seed, const char *model_name, Diag *d) {
  const IrProgram *p = interp_program(in);
  bool *keep = gc_alloc_atomic(sizeof(bool) * (size_t)(f->ncols + 1));
  for (int k = 0; k < f->ncols; k++) keep[k] = !gen_is_generated(p, f->names[k]);
  const bool *emit = gen_emitted(p, f);
  gen_comments(o, model_name, f->path, seed);
  int ngen = -1;
  char buf[32];
  for (int i = 0; i < f->nrows; i++) {
    CsvCols cols;
    csv_cols_init(&cols);
    if (!gen_draw(in, f, c, i, seed, emit, &cols, i == 0, d)) return false;
    if (i == 0) { /* the header, once the generated quantities' shapes are known */
      bool first = true;
      for (int k = 0; k < f->ncols; k++)
        if (keep[k]) fprintf(o, "%s%s", first ? "" : ",", f->names[k]), first = false;
      for (int k = 0; k < cols.n; k++) fprintf(o, "%s%s", first ? "" : ",", cols.names[k]), first = false;
      fputc('\n', o);
      ngen = cols.n;
    } else if (cols.n != ngen) {
      diag_error(d, DIAG_RUNTIME, (SrcPos){0}, "the generated quantities changed shape at the "
                 "draw at %s:%d (%d columns, the first draw had %d)", f->path, f->line[i], cols.n, ngen);
      return false;
    }
    bool first = true;
    for (int k = 0; k < f->ncols; k++)
      if (keep[k])
        fprintf(o, "%s%s", first ? "" : ",", gen_format(buf, f->data[(size_t)k * (size_t)f->nrows + (size_t)i])),
            first = false;
    for (int k = 0; k < cols.n; k++) fprintf(o, "%s%s", first ? "" : ",", gen_format(buf, cols.vals[k])), first = false;
    fputc('\n', o);
  }
  if (fflush(o) != 0 || ferror(o)) {
    char eb[128];
    diag_error(d, DIAG_IO, (SrcPos){0}, "error writing '%s': %s", out_path, strerror_r(errno, eb, sizeof eb));
    return false;
  }
  return true;
}

bool gen_quantities(const Interp *in, int nfiles, const char *const *files, const char *output,
                    uint64_t seed, const char *model_name, Diag *d) {
  const IrProgram *p = interp_program(in);
  bool any = false;
  for (int j = 0; j < p->noutputs; j++) any |= p->outputs[j].kind == OUT_GENERATED;
  if (!any) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s has no generated block: there are no quantities to generate",
               p->file ? p->file : "the model");
    return false;
  }
  bool to_stdout = !output || !strcmp(output, "-");
  if (to_stdout && nfiles > 1) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "%d draws files: give --output FILE.csv (one output per file, "
               "FILE_1.csv ...)", nfiles);
    return false;
  }
  for (int c = 0; c < nfiles; c++) {
    CsvFile f;
    if (!csvr_read(files[c], &f, d)) return false;
    const char *path = to_stdout ? "-" : csv_chain_path(output, c, nfiles);
    FILE *o = to_stdout ? stdout : fopen(path, "w");
    if (!o) {
      char eb[128];
      diag_error(d, DIAG_IO, (SrcPos){0}, "cannot write '%s': %s", path, strerror_r(errno, eb, sizeof eb));
      return false;
    }
    bool ok = gen_file(in, &f, c, o, path, seed, model_name, d);
    if (!to_stdout && fclose(o) != 0 && ok) {
      diag_error(d, DIAG_IO, (SrcPos){0}, "error writing '%s'", path);
      ok = false;
    }
    if (!ok) return false;
  }
  return true;
}
