/* engine.c — the list of engines, the common options of every run and the
 * registry over every engine's option tables, and the selector that picks an
 * engine per program from the IR's structural analysis and says why.
 *
 * Whether an engine can run a program is decided by its traits
 * (engine_fits); the selector's rules are preferences among the engines that
 * can.  Adding an engine: its file (EngineVT with traits and option tables)
 * and one entry in `engines` below. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "advi.h"
#include "amortized.h"
#include "engine.h"
#include "nuts.h"
#include "steer.h"
#include "svi.h"
#include "trace.h"

static const EngineVT *const engines[] = {&engine_prior, &engine_is, &engine_mh, &engine_lmh, &engine_smc, &engine_pgibbs, &engine_nuts, &engine_hmc, &engine_advi, &engine_svi, &engine_amortized, &engine_steer, NULL};

const EngineVT *const *engine_all(void) { return engines; }

/* The driver's options, which every engine takes (engines without warmup or
 * a log density ignore warmup, init and no-jit). */
static const OptSpec common_options[] = {
    {.name = "chains", .type = OPT_INT, .def = "4", .ilo = 1, .ihi = 1024, .arg = "N",
     .help = "independent chains"},
    {.name = "draws", .type = OPT_INT, .def = "1000", .ilo = 1, .ihi = 100000000, .arg = "N",
     .help = "kept draws per chain"},
    {.name = "warmup", .type = OPT_INT, .def = "1000", .ilo = 0, .ihi = 100000000, .arg = "N",
     .help = "warmup iterations per chain (engines without warmup ignore it)"},
    {.name = "thin", .type = OPT_INT, .def = "1", .ilo = 1, .ihi = 1000000, .arg = "N",
     .help = "keep every N-th draw"},
    {.name = "seed", .type = OPT_INT, .def = "1", .ilo = 0, .ihi = INT64_MAX, .arg = "N",
     .help = "random seed; the same seed gives the same output bit for bit (whatever the "
             "thread count)"},
    {.name = "threads", .type = OPT_INT, .def = "0", .ilo = 0, .ihi = 1024, .arg = "N",
     .help = "worker threads (0: ppl_config.threads, by default the CPUs): chains run in "
             "min(N, chains) threads, and particle engines advance each chain's particles in "
             "max(1, N / chains); the output does not depend on N"},
    {.name = "init", .type = OPT_REAL, .def = "2", .rlo = 0, .rhi = INFINITY, .arg = "R|FILE",
     .or_file = true,
     .help = "gradient-based engines: initial values uniform(-R, R) on the unconstrained "
             "scale, 0 starts at 0 (CmdStan's init=R); a JSON file gives latents' initial "
             "values by name, the others start as with R = 2 (nuts, hmc, mh)"},
    {.name = "sig-figs", .type = OPT_INT, .def = "6", .ilo = 1, .ihi = 18, .arg = "N",
     .help = "significant digits of the reals in the CSV files (CmdStan's sig_figs); 17 keeps "
             "every draw exactly, so 'ppl summary' of the files repeats the run's table digit "
             "for digit"},
    {.name = "no-jit", .type = OPT_BOOL, .def = "false",
     .help = "gradient-based engines: interpret the log density instead of compiling it with "
             "LLVM; smc: advance the particles one by one in the interpreter instead of as "
             "compiled particle steps (the summary's 'backend:' line says which ran)"},
    {.name = "jit", .type = OPT_BOOL, .def = "false",
     .help = "nuts, hmc: compile the log density even when the run looks too short to repay "
             "compiling (by default a run whose expected gradients would cost the interpreter "
             "less than compiling costs is interpreted: the 'backend:' line says so)"},
    {.name = "save-warmup", .type = OPT_BOOL, .def = "false",
     .help = "write the warmup iterations' draws to the CSV too, before the sampling draws "
             "(CmdStan's save_warmup=1); the summary uses the sampling draws only"},
    {.name = "save-metric", .type = OPT_BOOL, .def = "false",
     .help = "nuts, hmc: after warmup write each chain's step size and inverse metric "
             "to OUT_metric.json beside its CSV (CmdStan's save_metric), for --metric FILE"},
    {.name = "choices", .type = OPT_BOOL, .def = "false",
     .help = "write every random choice of each draw, by address, to OUT_choices.jsonl beside "
             "each chain's CSV (one JSON object a row); always on for a program whose latents' "
             "addresses change between runs"},
    {.name = "lm", .type = OPT_TEXT, .def = "", .arg = "SPEC", .repeat = true,
     .help = "the language model of the program's lm and lm_next draws: ngram:FILE[,order=N] "
             "(built in, trained from a text file) or llama:FILE.gguf (libllama, loaded at run "
             "time); NAME=SPEC adds one that calls pick with model = \"NAME\"; repeatable"},
    OPT_END,
};

const OptSpec *engine_common_options(void) { return common_options; }

/* Of the gradient engines (nuts, hmc, advi), for programs whose discrete
   latents are summed out by enumeration (ir/enum.h). */
const OptSpec enum_options[] = {
    {.name = "enum-marginals", .type = OPT_BOOL, .def = "false",
     .help = "with discrete latents summed out by enumeration: columns pr_NAME.K, the "
             "probability of each latent's K-th value given the draw (their mean: the "
             "posterior marginal)"},
    OPT_END,
};

int engine_options(const EngineVT *e, const OptSpec **out, int max) {
  int n = 0;
  if (!e) {
    for (const OptSpec *s = common_options; s->name; s++, n++)
      if (n < max) out[n] = s;
    return n;
  }
  for (int t = 0; t < 4; t++)
    for (const OptSpec *s = e->options[t]; s && s->name; s++, n++)
      if (n < max) out[n] = s;
  return n;
}

static const OptSpec *find_in(const EngineVT *e, const char *name) {
  const OptSpec *buf[64];
  int n = engine_options(e, buf, 64);
  for (int k = 0; k < n && k < 64; k++)
    if (!strcmp(buf[k]->name, name)) return buf[k];
  return NULL;
}

const OptSpec *engine_option_find(const char *name) {
  if (!name) return NULL;
  const OptSpec *s = find_in(NULL, name);
  for (int i = 0; !s && engines[i]; i++) s = find_in(engines[i], name);
  return s;
}

bool engine_option_applies(const EngineVT *e, const char *name) {
  return find_in(NULL, name) || (e && find_in(e, name));
}

const char *engine_option_users(const char *name) {
  const char *t = "";
  for (int i = 0; engines[i]; i++)
    if (find_in(engines[i], name)) t = gc_printf("%s%s%s", t, *t ? ", " : "", engines[i]->name);
  return t;
}

const char *engine_option_suggest(const char *name) {
  const char *best = NULL;
  int bd = 1 << 30;
  for (int i = -1; i < 0 || engines[i]; i++) {
    const OptSpec *buf[64];
    int n = engine_options(i < 0 ? NULL : engines[i], buf, 64);
    for (int k = 0; k < n && k < 64; k++) {
      int dist = opt_distance(name, buf[k]->name);
      if (dist < bd) bd = dist, best = buf[k]->name;
    }
  }
  /* a typo, not another word: at most 2 edits, and fewer than a third of the name */
  size_t len = strlen(name);
  return best && bd <= 2 && (size_t)bd * 3 <= len ? best : NULL;
}

const char *engine_option_unknown(const char *name) {
  const char *near = engine_option_suggest(name);
  return near ? gc_printf("unknown option '--%s' (did you mean '--%s'?)", name, near)
              : gc_printf("unknown option '--%s'", name);
}

void engine_opts_default(EngineOpts *o) {
  memset(o, 0, sizeof *o);
  Diag d;
  diag_init(&d);
  for (const OptSpec *s = common_options; s->name; s++) engine_opts_set(o, s->name, s->def, &d);
}

bool engine_opts_set(EngineOpts *o, const char *name, const char *value, Diag *d) {
  const OptSpec *s = name ? engine_option_find(name) : NULL;
  if (!s) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s", engine_option_unknown(name ? name : ""));
    return false;
  }
  OptValue v;
  char err[256];
  if (!opt_parse(s, value, &v, err, sizeof err)) {
    diag_error(d, DIAG_USAGE, (SrcPos){0}, "%s", err);
    return false;
  }
  engine_opts_put(o, s, v);
  return true;
}

void engine_opts_put(EngineOpts *o, const OptSpec *s, OptValue v) {
  const char *name = s->name;
  if (find_in(NULL, name) == s) {
    if (!strcmp(name, "chains")) o->chains = (int)v.i;
    else if (!strcmp(name, "draws")) o->draws = (int)v.i;
    else if (!strcmp(name, "warmup")) o->warmup = (int)v.i;
    else if (!strcmp(name, "thin")) o->thin = (int)v.i;
    else if (!strcmp(name, "seed")) o->seed = (uint64_t)v.i;
    else if (!strcmp(name, "threads")) o->threads = (int)v.i;
    else if (!strcmp(name, "init") && v.path) o->init_file = v.path; /* read by the API */
    else if (!strcmp(name, "init")) o->init_radius = v.r, o->init_file = NULL;
    else if (!strcmp(name, "no-jit")) o->no_jit = v.i != 0;
    else if (!strcmp(name, "jit")) o->jit = v.i != 0;
    else if (!strcmp(name, "sig-figs")) o->sig_figs = (int)v.i;
    else if (!strcmp(name, "save-warmup")) o->save_warmup = v.i != 0;
    else if (!strcmp(name, "save-metric")) o->save_metric = v.i != 0;
    else if (!strcmp(name, "choices")) o->choices = v.i != 0;
    return;
  }
  if (!o->set) o->set = opt_set_new();
  opt_set_put(o->set, s, v);
}

static OptValue get(const EngineOpts *o, const char *name) {
  const OptValue *v = opt_set_get(o ? o->set : NULL, name);
  if (v) return *v;
  const OptSpec *s = engine_option_find(name);
  return s ? opt_default(s) : (OptValue){0};
}

int64_t engine_opt_int(const EngineOpts *o, const char *name) { return get(o, name).i; }
double engine_opt_real(const EngineOpts *o, const char *name) { return get(o, name).r; }
bool engine_opt_bool(const EngineOpts *o, const char *name) { return get(o, name).i != 0; }
int engine_opt_enum(const EngineOpts *o, const char *name) { return (int)get(o, name).i; }

const EngineVT *engine_lookup(const char *name) {
  if (!name) return NULL;
  for (int i = 0; engines[i]; i++)
    if (strcmp(engines[i]->name, name) == 0) return engines[i];
  return NULL;
}

/* ---- what an engine can run ---- */

void engine_draw_outputs(Draw *out, const InterpState *st) {
  out->outputs = interp_outputs(st);
  out->latents = interp_nested_latents(st, &out->nlatents);
}

bool engine_fits(const EngineVT *e, const IrAnalysis *a, const char **why_not) {
  const IrLatentInfo *other = NULL; /* the first discrete or string latent */
  for (int i = 0; i < a->nlatents && !other; i++)
    if (a->latents[i].kind != LK_CONTINUOUS) other = &a->latents[i];
  const char *why = NULL;
  if (e->traits & ENGINE_LOAD)
    why = "it draws from a trained parameter file: give --load FILE ('ppl train' writes one)";
  else if ((e->traits & ENGINE_GRADIENT) && a->nlatents == 0)
    why = "it needs a latent variable and the program has none (use --engine prior)";
  else if ((e->traits & (ENGINE_GRADIENT | ENGINE_DISCRETE)) != ENGINE_DISCRETE && other) {
    /* the place of the latent, and the engines that draw such latents */
    const char *at = other->pos.line > 0
                         ? gc_printf(" (%s%s%d:%d)", other->pos.file ? other->pos.file : "",
                                     other->pos.file ? ":" : "", other->pos.line, other->pos.col)
                         : "";
    why = gc_printf("it needs every latent continuous, and '%s'%s is %s; use --engine mh, smc or "
                    "pgibbs, which draw %s latents", other->name, at,
                    other->kind == LK_STRING ? "a string" : "discrete",
                    other->kind == LK_STRING ? "string" : "discrete");
  }
  else if ((e->traits & ENGINE_GUIDE) && !a->has_guide && a->nlatents > 0)
    why = "it needs a guide block that draws the latents (docs/language.md, \"guide\"); "
          "write one, or use --engine advi, which needs none";
  else if (!(e->traits & ENGINE_DYNAMIC) && !a->fixed_structure)
    why = gc_printf("it needs a fixed structure (%s)",
                    a->dynamic_reason ? a->dynamic_reason : "the latents change between runs");
  if (why_not) *why_not = why;
  return why == NULL;
}

/* ---- selection rules ---- */

/* The rules are preferences tried in order among the engines that fit the
 * program (engine_fits): the first whose engine fits and whose predicate
 * holds (NULL: always) wins. */
typedef struct SelectRule {
  const char *engine;
  bool (*prefers)(const IrAnalysis *a);
  char *(*why)(const IrAnalysis *a); /* the text after "name — " */
} SelectRule;

static bool no_latents(const IrAnalysis *a) { return a->nlatents == 0; }

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
static bool smc_prefers(const IrAnalysis *a) {
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

/* Whenever the gradient-based sampler fits (its traits: every latent
 * continuous, the set of latents fixed), it is preferred. */
static char *why_nuts(const IrAnalysis *a) {
  return gc_printf("%s, fixed structure: gradient-based no-U-turn sampler with Stan's warmup",
                   describe_latents(a));
}

/* Programs that draw from a language model: steering batches the particles'
 * LM calls per token (inference/steer.c); until that engine is registered,
 * importance sampling, whose particles draw their tokens one call at a time
 * (both weigh masked proposals the same way: docs/language.md). */
static bool has_lm(const IrAnalysis *a) { return a->has_lm; }

static char *why_steer(const IrAnalysis *a) {
  (void)a;
  return gc_strdup("the program draws from a language model: SMC steering, particles batched "
                   "per token");
}

static char *why_is_lm(const IrAnalysis *a) {
  (void)a;
  return gc_strdup("the program draws from a language model: importance sampling, each particle "
                   "drawing its tokens inline");
}

static const SelectRule rules[] = {
    {"steer", has_lm, why_steer},
    {"is", has_lm, why_is_lm},
    {"prior", no_latents, why_prior},
    {"nuts", NULL, why_nuts},
    {"smc", smc_prefers, why_smc},
    {"mh", NULL, why_mh},
};

const EngineVT *engine_select(const IrAnalysis *a, const char **why) {
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
    const EngineVT *e = engine_lookup(rules[i].engine);
    if (!e || !engine_fits(e, a, NULL) || (rules[i].prefers && !rules[i].prefers(a))) continue;
    if (why) *why = gc_printf("%s — %s", e->name, rules[i].why(a));
    return e;
  }
  if (why) *why = "mh — no rule matched";
  return &engine_mh;
}
