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
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

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

/* The last file read (am_read).  Amortization is used by asking for
 * posteriors for new data again and again with one trained file: decoding
 * its 200 kB (the JSON header, every tensor checked) once per run, and once
 * more to choose the engine, cost a tenth of a new data set's run.  The
 * decoded file is never written after st_decode (its readers copy what they
 * change), so it is kept, keyed by the path, the file's identity, size and
 * modification time, and the program's hash: a file written again, even
 * at the same size, has another modification time and is read again. */
typedef struct AmCache {
  char *path;
  struct stat st;
  uint64_t hash;
  StFile *f;
} AmCache;
static pthread_mutex_t am_lock = PTHREAD_MUTEX_INITIALIZER;
static AmCache *am_cache; /* a GC root, made at the first read */

static bool am_same(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* svi_read_params(path, p, "--load", d), from the cache when the same file
 * was read last for the same program. */
static StFile *am_read(const char *path, const IrProgram *p, Diag *d) {
  struct stat st;
  uint64_t hash = ir_program_hash(p);
  bool known = stat(path, &st) == 0;
  pthread_mutex_lock(&am_lock);
  StFile *f = known && am_cache && am_cache->hash == hash && !strcmp(am_cache->path, path) &&
                      am_same(&am_cache->st, &st)
                  ? am_cache->f
                  : NULL;
  pthread_mutex_unlock(&am_lock);
  if (f) return f;
  if (!(f = svi_read_params(path, p, "--load", d)) || !known) return f;
  pthread_mutex_lock(&am_lock);
  if (!am_cache) am_cache = gc_alloc_root(sizeof *am_cache);
  *am_cache = (AmCache){gc_strdup(path), st, hash, f};
  pthread_mutex_unlock(&am_lock);
  return f;
}

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
  StFile *f = am_read(path, p, d);
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
  StFile *f = am_read(path, p, d);
  const EngineVT *form = f ? am_form(f, p, path, d) : NULL;
  if (!form) return NULL;
  Amortized *a = gc_alloc(sizeof *a);
  a->vt = form;
  a->state = form == &engine_svi ? svi_init_loaded(in, o, chain, f, path, d)
                                 : npe_init_loaded(in, o, chain, f, d);
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
