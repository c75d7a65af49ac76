/* start.c — where a run starts from: initial values by name (--init FILE)
 * and an inverse metric with its step size (--metric FILE), both JSON in
 * CmdStan's formats.  They are read here, above the engines, because the
 * JSON reader (data.c) lives on this floor; the engines receive a DataSource
 * of initial values and a plain array of the metric (EngineOpts).
 *
 * A value starting with '{' is the JSON text itself, so hosts can pass
 * either a path or the text through ppl_run_set. */
#include "start.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data.h"

/* The JSON of an option's value: the text itself or the file it names.  A
   value that was meant as a number or a kind, mistyped, is read as a file:
   the message says both. */
static DataSource *start_json(const char *value, const char *option, const char *meant, Diag *d) {
  if (value[0] == '{') return data_json_string(value, strlen(value), option, d);
  DataSource *src = data_json_file(value, d);
  if (!src && d->code == DIAG_IO) {
    char msg[sizeof d->msg];
    snprintf(msg, sizeof msg, "%s", d->msg);
    diag_init(d);
    diag_error(d, DIAG_IO, (SrcPos){0}, "%s '%s' is not %s, and as a file: %s", option, value,
               meant, msg);
  }
  return src;
}

/* "x[3]" and "walk/step[2]/x" are addresses of the latent named x. */
static bool start_is_latent(const IrAnalysis *an, const char *key) {
  const char *base = strrchr(key, '/');
  base = base ? base + 1 : key;
  size_t len = strcspn(base, "[");
  for (int i = 0; i < an->nlatents; i++)
    if (strlen(an->latents[i].name) == len && !strncmp(an->latents[i].name, base, len))
      return true;
  return false;
}

static bool start_init(const EngineVT *eng, const IrAnalysis *an, EngineOpts *eo, Diag *d) {
  if (!(eng->traits & ENGINE_INITS)) {
    const char *users = "";
    for (const EngineVT *const *e = engine_all(); *e; e++)
      if ((*e)->traits & ENGINE_INITS)
        users = gc_printf("%s%s%s", users, *users ? ", " : "", (*e)->name);
    diag_error(d, DIAG_USAGE, (SrcPos){0},
               "engine '%s' cannot start from initial values: --init FILE applies to %s", eng->name,
               users);
    return false;
  }
  const char *file = eo->init_file[0] == '{' ? "--init" : eo->init_file;
  DataSource *src = start_json(eo->init_file, "--init", "a radius", d);
  if (!src) return false;
  const char *const *keys;
  int n = data_json_keys(src, &keys);
  for (int k = 0; k < n; k++) {
    if (start_is_latent(an, keys[k])) continue;
    const char *names = "";
    for (int i = 0; i < an->nlatents; i++)
      names = gc_printf("%s%s%s", names, i ? ", " : "", an->latents[i].name);
    diag_error(d, DIAG_DATA, (SrcPos){file, 0, 0},
               "\"%s\" is not a latent of this program (its latents: %s)", keys[k], names);
    return false;
  }
  eo->init_values = src;
  eo->init_file = file;
  return true;
}

/* CmdStan's metric file: {"inv_metric": [..]} (diag_e) or [[..], ..]
   (dense_e); "stepsize" and "metric_type" are optional. */
static bool start_metric(const OptValue *mv, bool stepsize_given, EngineOpts *eo, Diag *d) {
  const char *file = mv->path[0] == '{' ? "--metric" : mv->path;
  DataSource *src = start_json(mv->path, "--metric", "diag, dense or unit", d);
  if (!src) return false;
  int64_t dims[2] = {0, 0};
  int rank = data_json_shape(src, "inv_metric", dims);
  if (rank != 1 && rank != 2) {
    diag_error(d, DIAG_DATA, (SrcPos){file, 0, 0},
               rank < 0 ? "no \"inv_metric\": a metric file is {\"inv_metric\": [...]}, a vector "
                          "(diag) or an array of rows (dense), as CmdStan's save_metric writes"
                        : "\"inv_metric\" must be a vector (diag) or an array of rows (dense)");
    return false;
  }
  bool dense = rank == 2;
  int64_t sizes[2] = {dims[0], dims[0]};
  Value v;
  if (!src->get(src, "inv_metric", ty_make(dense ? TY_MATRIX : TY_VECTOR, 0), rank, sizes, NULL,
                CON_NONE, NAN, NAN, &v, d))
    return false;
  size_t n = (size_t)dims[0];
  double *inv = gc_alloc_atomic(sizeof(double) * (dense ? n * n : n) + 1);
  if (dense) /* the value is column-major */
    for (size_t r = 0; r < n; r++)
      for (size_t c = 0; c < n; c++) inv[r * n + c] = v.t->d[c * n + r];
  else
    memcpy(inv, v.t->d, sizeof(double) * n);
  eo->metric_inv = inv;
  eo->metric_dim = n;
  eo->metric_file = file;
  const OptSpec *metric = engine_option_find("metric");
  engine_opts_put(eo, metric, (OptValue){.i = dense ? METRIC_DENSE : METRIC_DIAG});
  if (stepsize_given || !src->has(src, "stepsize")) return true;
  Value eps;
  if (!src->get(src, "stepsize", ty_make(TY_REAL, 0), 0, NULL, NULL, CON_LOWER, 0, NAN, &eps, d))
    return false;
  if (!(eps.r > 0) || !isfinite(eps.r)) {
    diag_error(d, DIAG_DATA, (SrcPos){file, 0, 0},
               "\"stepsize\": %g is not a positive finite step size", eps.r);
    return false;
  }
  engine_opts_put(eo, engine_option_find("stepsize"), (OptValue){.r = eps.r});
  return true;
}

bool start_read(const EngineVT *eng, const IrAnalysis *an, bool stepsize_given, EngineOpts *eo,
                Diag *d) {
  if (eo->init_file && !eo->init_values && !start_init(eng, an, eo, d)) return false;
  const OptValue *mv = opt_set_get(eo->set, "metric");
  if (mv && mv->path && !eo->metric_inv && !start_metric(mv, stepsize_given, eo, d)) return false;
  return true;
}
