/* amortized.c — the engine "amortized": draws for new data from a parameter
 * file trained once (`ppl train`, named by the run's --load), with no further
 * optimisation.  The file's "kind" metadata says which of the two forms it
 * holds:
 *
 *  - ST_KIND_SVI, the guide form (AEVB): the program's guide block maps each
 *    observation to its latent's posterior with encoder networks whose
 *    weights are params.  Each draw runs the guide with the loaded params over
 *    the new data (whole plates: no subsampling), then replays the model for
 *    the outputs and the generated block: a chain of svi.c with its params
 *    loaded (svi_init_loaded) and svi's hooks.
 *  - ST_KIND_NPE, whole-program amortization: a conditional flow over every
 *    latent given a summary of the data (npe.c's npe_draws).
 *
 * Either way each draw carries log p - log q, from which the summary gives
 * PSIS k-hat (does q fit these data?) and the log evidence, and
 * --psis-resample corrects mild mismatches.  The selector picks this engine
 * only when --load names such a file for the program (amortized_select). */
#include <string.h>

#include "../stdlib/safetensors.h"
#include "advi.h"
#include "amortized.h"
#include "npe.h"
#include "svi.h"

/* One chain: the form's engine and its state. */
typedef struct Amortized {
  const EngineVT *vt;
  void *state;
} Amortized;

static const char *am_path(const EngineOpts *o) {
  const OptValue *v = opt_set_get(o->set, "load");
  return v && v->path ? v->path : NULL;
}

/* The form of f (read from path) for program p: engine_svi's or npe_draws,
   or NULL + d for a file amortized does not draw from. */
static const EngineVT *am_form(const StFile *f, const IrProgram *p, const char *path, Diag *d) {
  const char *kind = st_meta_get(f, "kind");
  if (kind && !strcmp(kind, ST_KIND_NPE)) return &npe_draws;
  if (kind && !strcmp(kind, ST_KIND_SVI)) {
    if (p->has_guide) return &engine_svi;
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--load: %s holds svi's params of a program without "
               "a guide block: there is no trained guide to draw from (run it with --engine svi "
               "--load-params %s)", path, path);
    return NULL;
  }
  if (kind && !strcmp(kind, ST_KIND_ADVI))
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "--load: %s holds advi's approximation, which is "
               "fitted to one data set: draw from it with --engine advi --load-params %s, or "
               "train an amortized one with 'ppl train'", path, path);
  else
    diag_error(d, DIAG_DATA, (SrcPos){0}, "--load: %s has %s: the engine amortized reads the "
               "files 'ppl train' writes (kind \"" ST_KIND_SVI "\" or \"" ST_KIND_NPE "\")",
               path, kind ? gc_printf("the unknown kind \"%s\"", kind) : "no \"kind\" in its "
               "metadata (written before ppl train existed?)");
  return NULL;
}

const EngineVT *amortized_select(const IrProgram *p, const char *path, const char **why,
                                 Diag *d) {
  StFile *f = svi_read_params(path, p, "--load", d);
  const EngineVT *form = f ? am_form(f, p, path, d) : NULL;
  if (!form) return NULL;
  if (why)
    *why = form == &npe_draws
               ? gc_printf("amortized — --load %s holds a conditional flow trained for this "
                           "program (ppl train --amortize): one pass per draw, no optimisation",
                           path)
               : gc_printf("amortized — --load %s holds a guide trained for this program (ppl "
                           "train): its encoders draw the latents for these data, no "
                           "optimisation", path);
  return &engine_amortized;
}

static void *am_init(const Interp *in, const EngineOpts *o, int chain, Diag *d) {
  const char *path = am_path(o);
  if (!path) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s", AMORTIZED_NEEDS_LOAD);
    return NULL;
  }
  const IrProgram *p = interp_program(in);
  StFile *f = svi_read_params(path, p, "--load", d);
  const EngineVT *form = f ? am_form(f, p, path, d) : NULL;
  if (!form) return NULL;
  Amortized *a = gc_alloc(sizeof *a);
  a->vt = form;
  a->state = form == &engine_svi ? svi_init_loaded(in, o, chain, f, path, d)
                                 : form->init(in, o, chain, d);
  return a->state ? a : NULL;
}

static bool am_step(void *state, bool warmup, Draw *out, Diag *d) {
  Amortized *a = state;
  return a->vt->step(a->state, warmup, out, d);
}

static void am_free(void *state) {
  Amortized *a = state;
  if (a && a->vt->free) a->vt->free(a->state);
}

static const char *am_adaptation(void *state) {
  Amortized *a = state;
  return a->vt->adaptation_info ? a->vt->adaptation_info(a->state) : NULL;
}

static const char *am_notes(void *state) {
  Amortized *a = state;
  return a->vt->chain_notes ? a->vt->chain_notes(a->state) : NULL;
}

static const char *am_backend(void *state) {
  Amortized *a = state;
  return a->vt->backend ? a->vt->backend(a->state) : NULL;
}

static bool am_vi_report(void *state, ViReport *out) {
  Amortized *a = state;
  return a->vt->vi_report && a->vt->vi_report(a->state, out);
}

static const char *const am_none[] = {"none", NULL};

static const OptSpec amortized_options[] = {
    {.name = "load", .type = OPT_ENUM, .def = "none", .choices = am_none, .or_file = true,
     .arg = "FILE",
     .help = "amortized: the parameter file 'ppl train' wrote for this program (a trained "
             "guide, or with --amortize a conditional flow); with it and no --engine the run "
             "picks amortized"},
    OPT_END,
};

const EngineVT engine_amortized = {
    .name = "amortized",
    .summary = "draws for new data in one pass from a network trained once with 'ppl train' "
               "(--load FILE): the program's guide with trained encoders, or a conditional "
               "flow (--amortize); PSIS diagnostics",
    .nstats = 2,
    .stat_names = {"log_p__", "log_g__"},
    .weighted = false,
    .uses_warmup = false,
    .traits = ENGINE_LOAD | ENGINE_DISCRETE | ENGINE_IMPROPER,
    .options = {amortized_options, npe_options, vi_draw_options},
    .init = am_init,
    .step = am_step,
    .free = am_free,
    .adaptation_info = am_adaptation,
    .chain_notes = am_notes,
    .backend = am_backend,
    .vi_report = am_vi_report,
};
