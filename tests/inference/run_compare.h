/* run_compare.h — what the engine-agreement tests (test_smc_threads,
 * test_smc_compiled) share: one run through the public API with every draw
 * of every column copied out, and the bitwise comparison of two runs (draws,
 * log evidence and its standard error: memcmp, NaN payloads included). */
#ifndef PPL_TEST_RUN_COMPARE_H
#define PPL_TEST_RUN_COMPARE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"

typedef struct RunOut {
  bool ok;
  int chains, draws, cols;
  double *x; /* chains * draws * cols */
  double logz, se;
  bool have_logz;
  char backend[512], notes[4096], err[512];
} RunOut;

/* A run: source text (named name) or a file, data as JSON text or a file;
 * zero fields take the API's defaults (engine smc, resampling systematic). */
typedef struct RunCfg {
  const char *engine, *name, *src, *path, *data, *data_path, *resample;
  int threads, chains, particles, draws, warmup, no_jit, rejuvenate, ancestor_sampling;
  double ess_threshold; /* 0: the default */
  unsigned long long seed;
} RunCfg;

static inline RunOut run_cfg(RunCfg c) {
  RunOut o;
  memset(&o, 0, sizeof o);
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = c.threads;
  ppl_context *ctx = ppl_context_new(&cfg);
  ppl_model *m = NULL;
  ppl_result *r = NULL;
  ppl_status st = c.src ? ppl_compile_string(ctx, c.src, c.name ? c.name : "model.ppl", &m)
                        : ppl_compile_file(ctx, c.path, &m);
  if (st == PPL_OK) st = c.data ? ppl_set_data_json(m, c.data, "data.json") : ppl_set_data_file(m, c.data_path);
  if (st == PPL_OK) {
    ppl_run_options ro;
    ppl_run_options_default(&ro);
    ro.engine = c.engine ? c.engine : "smc";
    if (c.warmup) ro.warmup = c.warmup;
    ro.ancestor_sampling = c.ancestor_sampling;
    if (c.ess_threshold > 0) ro.ess_threshold = c.ess_threshold;
    ro.chains = c.chains;
    ro.particles = c.particles;
    ro.draws = c.draws;
    ro.no_jit = c.no_jit;
    ro.rejuvenate = c.rejuvenate;
    ro.resample = c.resample ? c.resample : "systematic";
    ro.seed = c.seed;
    st = ppl_run(m, &ro, &r);
  }
  if (st != PPL_OK) {
    snprintf(o.err, sizeof o.err, "%s", ppl_errmsg(ctx));
  } else {
    o.ok = true;
    o.chains = ppl_result_num_chains(r);
    o.draws = ppl_result_num_draws(r);
    o.cols = ppl_result_num_columns(r);
    o.x = malloc(sizeof(double) * (size_t)o.chains * (size_t)o.draws * (size_t)o.cols);
    size_t k = 0;
    for (int ch = 0; ch < o.chains; ch++)
      for (int i = 0; i < o.draws; i++)
        for (int j = 0; j < o.cols; j++) o.x[k++] = ppl_result_draw(r, ch, i, j);
    o.have_logz = ppl_result_log_evidence(r, &o.logz, &o.se) == PPL_OK;
    const char *b = ppl_result_backend(r);
    snprintf(o.backend, sizeof o.backend, "%s", b ? b : "");
    /* the chain notes follow the table, which a long series makes long */
    const char *s = ppl_result_summary_text(r), *n = s ? strstr(s, "\nchain ") : NULL;
    snprintf(o.notes, sizeof o.notes, "%s", n ? n + 1 : s ? s : "");
  }
  ppl_result_free(r);
  ppl_model_free(m);
  ppl_context_free(ctx);
  return o;
}

static inline bool run_same(const RunOut *a, const RunOut *b) {
  if (!a->ok || !b->ok || a->chains != b->chains || a->draws != b->draws || a->cols != b->cols)
    return false;
  size_t n = (size_t)a->chains * (size_t)a->draws * (size_t)a->cols;
  return memcmp(a->x, b->x, sizeof(double) * n) == 0 && a->have_logz == b->have_logz &&
         memcmp(&a->logz, &b->logz, sizeof(double)) == 0 && memcmp(&a->se, &b->se, sizeof(double)) == 0;
}

/* Do the draws of the first chain differ (a comparison cannot pass vacuously)? */
static inline bool run_varied(const RunOut *o) {
  for (int i = 1; o->ok && i < o->draws; i++)
    if (memcmp(&o->x[i * o->cols], &o->x[0], sizeof(double) * (size_t)o->cols) != 0) return true;
  return false;
}

#endif
