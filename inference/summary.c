/* summary.c — the stansummary-like table and the JSON summary of a run.
 * Both are built as strings so the CLI, the embedding API
 * (ppl_result_summary_text) and the tests share one rendering; JSON goes
 * through jansson so escaping and number syntax are right by construction. */
#define _GNU_SOURCE /* strerror_r returning char * (thread-safe messages) */
#include "summary.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/value.h"
#include "psis.h"

/* ---- a growing GC string ------------------------------------------------ */

typedef struct SBuf {
  char *s;
  size_t len, cap;
} SBuf;

static void sb_vadd(SBuf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + (size_t)n + 1) cap *= 2;
    char *s = gc_alloc_atomic(cap);
    if (b->len) memcpy(s, b->s, b->len);
    b->s = s, b->cap = cap;
  }
  vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  b->len += (size_t)n;
}

__attribute__((format(printf, 2, 3))) static void sb_add(SBuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sb_vadd(b, fmt, ap);
  va_end(ap);
}

/* ---- the table ---------------------------------------------------------- */

/* The weights collapsed: an SE computed from them would look small and mean
 * nothing (one weight dominates, so the sample variance says little). */
static bool sm_collapsed(const SummaryRun *run) {
  return run->weighted && run->weights_ess > 0 && run->weights_ess < WARN_KISH_COLLAPSED;
}

enum { SM_GENERAL, SM_MCSE, SM_ESS, SM_RHAT };

/* One cell: "-" for NaN (not applicable / not computable). */
static const char *sm_cell(char *buf, double v, int kind) {
  if (isnan(v)) return "-";
  if (isinf(v)) return v > 0 ? "inf" : "-inf";
  switch (kind) {
  case SM_MCSE: snprintf(buf, 32, "%.2g", v); break;
  case SM_ESS: snprintf(buf, 32, "%.0f", v); break;
  case SM_RHAT: snprintf(buf, 32, "%.3f", v); break;
  default: snprintf(buf, 32, "%.3g", v); break;
  }
  return buf;
}

/* Decimals that show a standard error with two significant digits at most
 * (and at least two decimals): -108.61 ± 0.02, -3.003 ± 0.0041. */
static int sm_decimals(double se) {
  if (!(se > 0) || !isfinite(se)) return 2;
  int d = (int)ceil(-log10(se)) + 1;
  if (d < 2) d = 2;
  if (d > 8) d = 8;
  return d;
}

/* Sampler tuning columns (the step size, static HMC's integration time) are
 * constant within a chain after warmup and differ between chains by design:
 * their MCSE, ESS and R-hat say nothing, so they are left out ("-"). */
/* log_weight__ is no quantity to summarise either: its R-hat compares the
 * chains' evidence estimates (they differ by design), and its ESS is the
 * weights' own (the Kish ESS the log evidence line speaks of). */
bool summary_is_tuning(const char *label) {
  return strcmp(label, "stepsize__") == 0 || strcmp(label, "int_time__") == 0 ||
         strcmp(label, "log_weight__") == 0;
}

static const SummaryStats *sm_tuning_stats(const char *label, const SummaryStats *s,
                                           SummaryStats *tmp) {
  if (!summary_is_tuning(label)) return s;
  *tmp = *s;
  tmp->mcse = tmp->ess_bulk = tmp->ess_tail = tmp->rhat = NAN;
  return tmp;
}

/* A variational run's lines: the fit, then how far its draws can be
 * trusted (PSIS k-hat of the weights p / q of its draws). */
static void sm_vi_text(SBuf *b, const SummaryVi *vi) {
  if (vi->loaded)
    sb_add(b, "variational family: %s; ELBO %.6g%s; read from %s, not optimised in this run\n",
           vi->family, vi->elbo, vi->nchains > 1 ? " (mean of the chains')" : "", vi->loaded);
  else
    sb_add(b, "variational family: %s; ELBO %.6g%s; %s after %ld iterations%s\n", vi->family,
           vi->elbo, vi->nchains > 1 ? " (mean of the chains')" : "",
           vi->converged ? "converged" : "NOT converged", vi->iterations,
           vi->nchains > 1 ? " (the most of any chain)" : "");
  if (isnan(vi->khat))
    sb_add(b, "PSIS k-hat of the draws against the posterior: not available (too few draws)\n");
  else
    sb_add(b, "PSIS k-hat of the draws against the posterior: %.2f (%s)\n", vi->khat,
           vi->khat <= PSIS_K_NOTE ? "below 0.5: the approximation is close; its draws can be used"
           : vi->khat <= PSIS_K_WARN
               ? "0.5 to 0.7: use the means only; sds and quantiles may be off"
               : "above 0.7: do not trust these draws, see the warning");
  if (!isnan(vi->log_evidence)) {
    if (isfinite(vi->log_evidence_se)) {
      int d = sm_decimals(vi->log_evidence_se);
      sb_add(b, "log evidence (importance-weighted draws of q): %.*f ± %.*f\n", d,
             vi->log_evidence, d, vi->log_evidence_se);
    } else {
      sb_add(b, "log evidence (importance-weighted draws of q): %.2f\n", vi->log_evidence);
    }
  }
  sb_add(b, "%s", vi->resampled
                      ? "Draws are importance-resampled (Pareto-smoothed weights) from draws of "
                        "the\napproximation: they aim at the posterior itself.\n"
                      : "Draws are the approximation's own (unweighted): Mean, StdDev and "
                        "quantiles are\nthose of q, not of the posterior.\n");
}

char *summary_table(const SummaryRun *run, int ncols, const char *const *labels,
                    const SummaryStats *stats) {
  SBuf b = {0};
  sb_add(&b, "Inference for ppl model: %s\n", run->model_name ? run->model_name : "(unnamed)");
  const char *eng = run->engine ? run->engine : "?";
  const char *why = run->engine_reason;
  if (why && strncmp(why, eng, strlen(eng)) == 0)
    sb_add(&b, "engine: %s\n", why);
  else if (why)
    sb_add(&b, "engine: %s — %s\n", eng, why);
  else
    sb_add(&b, "engine: %s\n", eng);
  if (run->backend) sb_add(&b, "backend: %s\n", run->backend);
  sb_add(&b, "%d chain%s, %d draw%s each", run->chains, run->chains == 1 ? "" : "s", run->draws,
         run->draws == 1 ? "" : "s");
  if (run->warmup > 0) sb_add(&b, " after %d warmup iterations", run->warmup);
  if (run->thin > 1) sb_add(&b, " (thin %d)", run->thin);
  sb_add(&b, ": %ld draws in total\n", (long)run->chains * run->draws);
  if (run->planned_draws > 0) {
    sb_add(&b, "interrupted after %d of %d draws", run->draws, run->planned_draws);
    if (run->planned_chains > run->chains)
      sb_add(&b, " (%d of %d chains had kept draws)", run->chains, run->planned_chains);
    sb_add(&b, "\n");
  }
  sb_add(&b, "\n");

  int w = 4;
  for (int i = 0; i < ncols; i++)
    if ((int)strlen(labels[i]) > w) w = (int)strlen(labels[i]);
  sb_add(&b, "%-*s %9s %9s %9s %9s %9s %9s %9s %9s %6s\n", w, "", "Mean", "MCSE", "StdDev", "5%",
         "50%", "95%", "ESS_bulk", "ESS_tail", "R_hat");
  for (int i = 0; i < ncols; i++) {
    SummaryStats tuned;
    const SummaryStats *s = sm_tuning_stats(labels[i], &stats[i], &tuned);
    char c[10][32];
    sb_add(&b, "%-*s %9s %9s %9s %9s %9s %9s %9s %9s %6s\n", w, labels[i],
           sm_cell(c[0], s->mean, SM_GENERAL), sm_cell(c[1], s->mcse, SM_MCSE),
           sm_cell(c[2], s->sd, SM_GENERAL), sm_cell(c[3], s->q5, SM_GENERAL),
           sm_cell(c[4], s->q50, SM_GENERAL), sm_cell(c[5], s->q95, SM_GENERAL),
           sm_cell(c[6], s->ess_bulk, SM_ESS), sm_cell(c[7], s->ess_tail, SM_ESS),
           sm_cell(c[8], s->rhat, SM_RHAT));
  }
  sb_add(&b, "\n");
  if (!isnan(run->log_evidence)) {
    if (sm_collapsed(run)) {
      sb_add(&b, "log evidence: %.2f (unreliable: the weights collapsed onto a Kish ESS of %.1f "
                 "draws; no standard error)\n",
             run->log_evidence, run->weights_ess);
    } else if (isnan(run->log_evidence_se)) {
      sb_add(&b, "log evidence: %.2f (standard error not available)\n", run->log_evidence);
    } else {
      int d = sm_decimals(run->log_evidence_se);
      sb_add(&b, "log evidence: %.*f ± %.*f\n", d, run->log_evidence, d, run->log_evidence_se);
    }
  }
  if (run->weighted && !isnan(run->pareto_k))
    sb_add(&b, "Pareto k of the importance weights: %.2f (%s)\n", run->pareto_k,
           run->pareto_k <= PSIS_K_NOTE  ? "below 0.5: reliable"
           : run->pareto_k <= PSIS_K_WARN ? "0.5 to 0.7: the estimates converge slowly; more draws help"
                                          : "above 0.7: unreliable, see the warning");
  if (run->vi) sm_vi_text(&b, run->vi);
  if (run->weighted)
    sb_add(&b, "Draws are importance weighted: Mean, StdDev and quantiles are self-normalised\n"
               "estimates; ESS is the smaller of Kish's ESS over distinct values and the ESS\n"
               "of the importance-resampled chains.\n");
  else
    sb_add(&b, "R_hat is the rank-normalised split R-hat (max with folded); ESS_bulk and\n"
               "ESS_tail are rank-normalised effective sample sizes (Vehtari et al. 2021).\n");
  if (run->nwarnings) {
    sb_add(&b, "\n");
    sb_add(&b, "%s", summary_warnings_text(run->nwarnings, run->warnings));
  }
  return b.s;
}

char *summary_warnings_text(int n, const RunWarning *w) {
  SBuf b = {0};
  sb_add(&b, "%s", "");
  for (int i = 0; i < n; i++)
    sb_add(&b, "Warning (%s): %s\n  advice: %s\n", w[i].kind, w[i].message, w[i].advice);
  return b.s;
}

/* ---- JSON --------------------------------------------------------------- */

static json_t *sm_num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* "vi": the fit, its diagnostics, and each chain's with its ELBO trace. */
static json_t *sm_vi_json(const SummaryVi *vi) {
  json_t *o = json_object();
  json_object_set_new(o, "family", json_string(vi->family));
  json_object_set_new(o, "elbo", sm_num(vi->elbo));
  json_object_set_new(o, "khat", sm_num(vi->khat));
  json_object_set_new(o, "log_evidence", sm_num(vi->log_evidence));
  json_object_set_new(o, "log_evidence_se", sm_num(vi->log_evidence_se));
  json_object_set_new(o, "iterations", json_integer(vi->iterations));
  json_object_set_new(o, "converged", json_boolean(vi->converged));
  json_object_set_new(o, "resampled", json_boolean(vi->resampled));
  if (vi->loaded) json_object_set_new(o, "loaded", json_string(vi->loaded));
  json_t *chains = json_array();
  for (int c = 0; c < vi->nchains; c++) {
    const ViReport *r = &vi->chains[c];
    json_t *ch = json_object(), *tr = json_array();
    json_object_set_new(ch, "elbo", sm_num(r->elbo));
    json_object_set_new(ch, "eta", sm_num(r->eta));
    json_object_set_new(ch, "iterations", json_integer(r->iterations));
    json_object_set_new(ch, "seconds", sm_num(r->seconds));
    json_object_set_new(ch, "converged", json_boolean(r->converged));
    for (int k = 0; k < r->ntrace; k++) {
      json_t *row = json_object();
      json_object_set_new(row, "iter", json_integer((json_int_t)r->trace[k][0]));
      json_object_set_new(row, "elbo", sm_num(r->trace[k][1]));
      json_object_set_new(row, "rel_mean", sm_num(r->trace[k][2]));
      json_object_set_new(row, "rel_median", sm_num(r->trace[k][3]));
      json_array_append_new(tr, row);
    }
    json_object_set_new(ch, "trace", tr);
    json_array_append_new(chains, ch);
  }
  json_object_set_new(o, "chains", chains);
  return o;
}

static json_t *sm_doc(const SummaryRun *run, int ncols, const char *const *labels,
                      const SummaryStats *stats) {
  json_t *root = json_object();
  if (!root) return NULL;
  json_object_set_new(root, "engine", json_string(run->engine ? run->engine : ""));
  json_object_set_new(root, "engine_reason",
                      run->engine_reason ? json_string(run->engine_reason) : json_null());
  json_object_set_new(root, "backend", run->backend ? json_string(run->backend) : json_null());
  json_object_set_new(root, "model", run->model_name ? json_string(run->model_name) : json_null());
  json_object_set_new(root, "chains", json_integer(run->chains));
  json_object_set_new(root, "draws", json_integer(run->draws));
  json_object_set_new(root, "warmup", json_integer(run->warmup));
  json_object_set_new(root, "thin", json_integer(run->thin));
  json_object_set_new(root, "weighted", json_boolean(run->weighted));
  json_t *vars = json_object();
  for (int i = 0; i < ncols; i++) {
    SummaryStats tuned;
    const SummaryStats *s = sm_tuning_stats(labels[i], &stats[i], &tuned);
    json_t *v = json_object();
    json_object_set_new(v, "mean", sm_num(s->mean));
    json_object_set_new(v, "sd", sm_num(s->sd));
    json_object_set_new(v, "mcse", sm_num(s->mcse));
    json_object_set_new(v, "q5", sm_num(s->q5));
    json_object_set_new(v, "q50", sm_num(s->q50));
    json_object_set_new(v, "q95", sm_num(s->q95));
    json_object_set_new(v, "ess_bulk", sm_num(s->ess_bulk));
    json_object_set_new(v, "ess_tail", sm_num(s->ess_tail));
    json_object_set_new(v, "rhat", sm_num(s->rhat));
    json_object_set_new(vars, labels[i], v);
  }
  json_object_set_new(root, "variables", vars);
  if (isnan(run->log_evidence)) {
    json_object_set_new(root, "log_evidence", json_null());
  } else {
    json_t *le = json_object();
    json_object_set_new(le, "estimate", sm_num(run->log_evidence));
    json_object_set_new(le, "se", sm_num(sm_collapsed(run) ? NAN : run->log_evidence_se));
    json_object_set_new(le, "weights_ess", sm_num(run->weighted ? run->weights_ess : NAN));
    json_object_set_new(le, "pareto_k", sm_num(run->weighted ? run->pareto_k : NAN));
    json_object_set_new(root, "log_evidence", le);
  }
  if (run->vi) json_object_set_new(root, "vi", sm_vi_json(run->vi));
  json_t *notes = json_array();
  for (int c = 0; c < run->nnotes; c++)
    if (run->notes[c] && *run->notes[c]) {
      json_t *o = json_object();
      json_object_set_new(o, "chain", json_integer(run->note_chains ? run->note_chains[c] : c + 1));
      json_object_set_new(o, "note", json_string(run->notes[c]));
      json_array_append_new(notes, o);
    }
  if (json_array_size(notes)) json_object_set_new(root, "notes", notes);
  else json_decref(notes);
  json_object_set_new(root, "interrupted", json_boolean(run->planned_draws > 0));
  json_t *warns = json_array();
  for (int i = 0; i < run->nwarnings; i++) {
    const RunWarning *w = &run->warnings[i];
    json_t *o = json_object(), *vs = json_array();
    for (int k = 0; k < w->nvars; k++) json_array_append_new(vs, json_string(w->vars[k]));
    json_object_set_new(o, "kind", json_string(w->kind));
    json_object_set_new(o, "variables", vs);
    json_object_set_new(o, "message", json_string(w->message));
    json_object_set_new(o, "advice", json_string(w->advice));
    json_array_append_new(warns, o);
  }
  json_object_set_new(root, "warnings", warns);
  return root;
}

char *summary_json(const SummaryRun *run, int ncols, const char *const *labels,
                   const SummaryStats *stats) {
  json_t *doc = sm_doc(run, ncols, labels, stats);
  if (!doc) return NULL;
  char *text = json_dumps(doc, JSON_INDENT(2));
  json_decref(doc);
  if (!text) return NULL;
  /* jansson allocates with malloc; hand back a GC string like everything else */
  char *s = gc_strdup(text);
  free(text);
  return s;
}

bool summary_write_json(const char *path, const SummaryRun *run, int ncols,
                        const char *const *labels, const SummaryStats *stats, Diag *d) {
  char *text = summary_json(run, ncols, labels, stats);
  if (!text) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "%s: could not build the summary JSON", path);
    return false;
  }
  FILE *f = fopen(path, "w");
  if (!f) {
    char buf[128];
    diag_error(d, DIAG_IO, (SrcPos){0}, "cannot write summary '%s': %s", path,
               strerror_r(errno, buf, sizeof buf));
    return false;
  }
  bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
  ok = (fclose(f) == 0) && ok;
  if (!ok) diag_error(d, DIAG_IO, (SrcPos){0}, "error writing summary '%s'", path);
  return ok;
}
