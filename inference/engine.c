/* engine.c — the list of engines and the selector that picks one per program
 * from the IR's structural analysis and says why.
 *
 * The selector is a table of rules tried in order; the first whose predicate
 * holds wins.  Engines added later (NUTS for fixed-structure continuous
 * programs, SMC for sequential observations) slot in as rows above the
 * catch-all "mh" row. */
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "nuts.h"
#include "trace.h"

static const EngineVT *const engines[] = {&engine_prior, &engine_is, &engine_mh, &engine_smc, &engine_pgibbs, &engine_nuts, &engine_hmc, NULL};

const EngineVT *const *engine_all(void) { return engines; }

void engine_opts_default(EngineOpts *o) {
  memset(o, 0, sizeof *o);
  o->chains = 4;
  o->draws = 1000;
  o->warmup = 1000;
  o->thin = 1;
  o->seed = 1;
  o->metric = METRIC_DIAG;
  o->max_depth = 10;
  o->adapt_delta = 0.8;
  o->stepsize = 1;
  o->int_time = 6.283185307179586;
  o->init_radius = 2;
  o->particles = 1000;
  o->resample = RESAMPLE_SYSTEMATIC;
  o->ess_threshold = 0.5;
  o->rejuvenate = 0;
}

const EngineVT *engine_lookup(const char *name) {
  if (!name) return NULL;
  for (int i = 0; engines[i]; i++)
    if (strcmp(engines[i]->name, name) == 0) return engines[i];
  return NULL;
}

/* ---- selection rules ---- */

typedef struct SelectRule {
  const char *engine;
  bool (*fits)(const IrAnalysis *a);
  char *(*why)(const IrAnalysis *a); /* the text after "name — " */
} SelectRule;

static bool no_latents(const IrAnalysis *a) { return a->nlatents == 0; }
static bool any_program(const IrAnalysis *a) { return true; }

static char *why_prior(const IrAnalysis *a) {
  return gc_strdup("the program has no latent variables");
}

/* "10 continuous latents", "3 continuous and 2 discrete latents",
 * "1 continuous, 1 discrete and 1 string latents" */
static char *describe_latents(const IrAnalysis *a) {
  int n[3] = {0, 0, 0};
  static const char *const kind[3] = {"continuous", "discrete", "string"};
  for (int i = 0; i < a->nlatents; i++)
    if (a->latents[i].kind <= LK_STRING) n[a->latents[i].kind]++;
  int parts[3], np = 0;
  for (int k = 0; k < 3; k++)
    if (n[k]) parts[np++] = k;
  char buf[256];
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < np; i++) {
    const char *sep = i == 0 ? "" : i == np - 1 ? " and " : ", ";
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d %s", sep, n[parts[i]],
                            kind[parts[i]]);
    if (len >= sizeof buf) len = sizeof buf - 1;
  }
  return gc_printf("%s latent%s", buf, a->nlatents == 1 ? "" : "s");
}

static char *why_mh(const IrAnalysis *a) {
  return gc_printf("%s, %s structure: single-site Metropolis–Hastings over the trace",
                   describe_latents(a), a->fixed_structure ? "fixed" : "dynamic");
}

/* Sequential observations between discrete latents, or a structure that
 * changes between runs along the observations: particles follow the program
 * from one observation to the next.  Not when some latent is drawn once
 * outside every loop (a static parameter): without rejuvenation moves the
 * particles would keep only a few of its initial values. */
static bool smc_fits(const IrAnalysis *a) {
  if (!a->interleaved_observations || (!a->has_discrete && a->fixed_structure)) return false;
  for (int i = 0; i < a->nlatents; i++)
    if (!a->latents[i].in_loop && !a->latents[i].in_function) return false;
  return true;
}

static char *why_smc(const IrAnalysis *a) {
  return gc_printf("%s, %s structure, observations interleaved with the latents: sequential "
                   "Monte Carlo follows the program from one observation to the next and "
                   "estimates the evidence (no static parameters to degenerate)",
                   describe_latents(a),
                   a->fixed_structure ? "fixed" : "dynamic");
}

/* Every latent continuous and the set of latents fixed: the log density on the
 * unconstrained vector exists and has a gradient, so NUTS applies. */
static bool nuts_fits(const IrAnalysis *a) {
  return a->fixed_structure && a->all_continuous && a->nlatents > 0;
}

static char *why_nuts(const IrAnalysis *a) {
  return gc_printf("%s, fixed structure: gradient-based no-U-turn sampler with Stan's warmup",
                   describe_latents(a));
}

static const SelectRule rules[] = {
    {"prior", no_latents, why_prior},
    {"nuts", nuts_fits, why_nuts},
    {"smc", smc_fits, why_smc},
    {"mh", any_program, why_mh},
};

const EngineVT *engine_select(const IrAnalysis *a, const char **why) {
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
    const EngineVT *e = engine_lookup(rules[i].engine);
    if (!e || !rules[i].fits(a)) continue;
    if (why) *why = gc_printf("%s — %s", e->name, rules[i].why(a));
    return e;
  }
  if (why) *why = "mh — no rule matched";
  return &engine_mh;
}
