/* enum_bench.c — what summing discrete latents out by enumeration buys
 * (issue 16): effective draws per CPU-second of the naturally written HMM,
 * mixture, nested sums (nested.ppl), bounded int (population.ppl), a
 * chain of four scalars (chain4.ppl, variable elimination) and a factorial
 * HMM (fhmm.ppl, the product state) of
 * tests/enum (discrete latents in plain sight) under nuts with
 * enumeration, against the same programs under mh and smc (which draw the
 * discrete latents), against their hand-marginalised twins under nuts, and,
 * where R with rstan is installed, against the hand-marginalised Stan
 * programs (bench/enum_bench/stan_peer.R; skipped without Rscript or rstan).
 *
 * ESS is the smallest bulk ESS over the continuous latents (the twin's
 * outputs: every latent both programs share); CPU seconds are the process's
 * CPU time around ppl_run (one thread, chains one after another: warmup,
 * sampling, the JIT's compilation, the discrete draws and the summary), or,
 * for Stan, the chains' own time (compilation not counted).  The issue's
 * targets: nuts with enumeration >= 10x mh's ESS/s, and no slower than the
 * hand-marginalised program.
 *
 *   enum_bench SOURCE_ROOT [SEED [PROBLEM]]   (from the source root: build/bench/enum_bench .)
 *   enum_bench SOURCE_ROOT grad [REPS [PROBLEM]]  (EB_NO_JIT=1: interpreted, not compiled)
 *   EB_NUTS_ONLY=1: nuts only (the twins and rstan, no mh or smc); EB_NO_STAN=1: no rstan
 *
 * `grad`: the CPU cost of one log density gradient (what nuts pays per leapfrog
 * step) of each natural program against its twin, at the same points (the
 * two have the same unconstrained parameters, so the same posterior and the
 * same ESS per gradient in expectation): the least of REPS (default 5)
 * interleaved repetitions per side, the least being the fair figure on a
 * shared machine.  Its ratio is the "no slower than the hand-
 * marginalised program" without the ESS estimates' noise.
 *
 * Two chains each (one thread; the machine is shared): nuts 1000 warmup +
 * 1000 draws, mh 1000 + 4000, smc 1000 draws of 1000 particles.
 *
 * Not a test: it prints a table and the ratios; the figures are in
 * docs/performance.md. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ppl.h"

#define EB_MAXCOLS 64

typedef struct {
  const char *name;     /* problem */
  const char *natural;  /* tests/enum/NAME.ppl, discrete latents in plain sight */
  const char *hand;     /* its hand-marginalised twin */
  const char *data;     /* tests/enum/NAME.data.json */
} EbProblem;

typedef struct {
  const char *label;
  const char *engine;   /* NULL: the analysis's choice (nuts, summed out) */
  bool hand;            /* the twin instead of the natural program */
  int chains, warmup, draws;
} EbMethod;

static const EbProblem problems[] = {
    {"hmm", "hmm_loop", "hmm_hand", "hmm"},
    {"mixture", "mix", "mix_hand", "mix3"},
    /* several discrete latents in one block (variable elimination), and a
       bounded int (a population size) */
    {"nested", "nested", "nested_hand", "nested"},
    {"popul", "population", "population_hand", "population"},
    /* a chain of four scalars (variable elimination in a min-fill order:
       K x K a factor) against the forward algorithm by hand, K = 8 */
    {"chain4", "chain4", "chain4_hand", "chain4"},
    /* a factorial HMM (two chains in one loop, 2 x 3 product states)
       against the forward algorithm over the product state by hand */
    {"fhmm", "fhmm", "fhmm_hand", "fhmm"},
};

/* Stan's lengths for nuts; mh gets more draws so that its ESS is measurable
   at all (ESS/s does not depend on the length once it is). */
static const EbMethod methods[] = {
    {"nuts, enumerated", NULL, false, 2, 1000, 1000},
    {"nuts, by hand", "nuts", true, 2, 1000, 1000},
    {"mh", "mh", false, 2, 1000, 4000},
    {"smc", "smc", false, 2, 0, 1000},
};
#define EB_NMETHODS (sizeof methods / sizeof *methods)

static double eb_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
  double ess, cpu;
  char worst[64];
  char engine[200];
  bool ok;
} EbResult;

/* The continuous latents: the twin's outputs (its result's columns but the
   engine's, which end in "__"). */
static int eb_columns(const ppl_result *r, char names[EB_MAXCOLS][64]) {
  int n = 0;
  for (int c = 0; c < ppl_result_num_columns(r) && n < EB_MAXCOLS; c++) {
    const char *s = ppl_result_column_name(r, c);
    size_t len = strlen(s);
    if (len >= 2 && !strcmp(s + len - 2, "__")) continue;
    snprintf(names[n++], 64, "%s", s);
  }
  return n;
}

static EbResult eb_run(const char *root, const EbProblem *p, const EbMethod *m, uint64_t seed,
                       char names[EB_MAXCOLS][64], int *ncols) {
  EbResult out = {.ess = NAN, .cpu = NAN};
  char path[1024], data[1024];
  snprintf(path, sizeof path, "%s/tests/enum/%s.ppl", root, m->hand ? p->hand : p->natural);
  snprintf(data, sizeof data, "%s/tests/enum/%s.data.json", root, p->data);
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = 1;
  ppl_context *ctx = ppl_context_new(&cfg);
  ppl_model *model = NULL;
  ppl_result *r = NULL;
  ppl_run_options ro;
  ppl_run_options_default(&ro);
  ro.engine = m->engine;
  ro.chains = m->chains;
  ro.warmup = m->warmup;
  ro.draws = m->draws;
  ro.seed = seed;
  ro.progress = PPL_PROGRESS_OFF;
  double t0 = eb_cpu();
  if (ppl_compile_file(ctx, path, &model) != PPL_OK || ppl_set_data_file(model, data) != PPL_OK ||
      ppl_run(model, &ro, &r) != PPL_OK) {
    snprintf(out.engine, sizeof out.engine, "failed: %s", ppl_errmsg(ctx));
    goto done;
  }
  out.cpu = eb_cpu() - t0;
  snprintf(out.engine, sizeof out.engine, "%s", ppl_result_engine(r));
  if (*ncols == 0) *ncols = eb_columns(r, names);
  out.ess = INFINITY;
  for (int i = 0; i < *ncols; i++) {
    ppl_summary s;
    int c = ppl_result_column_index(r, names[i]);
    if (c < 0 || ppl_result_summary(r, c, &s) != PPL_OK) {
      snprintf(out.engine, sizeof out.engine, "failed: no column %s", names[i]);
      out.ess = NAN;
      goto done;
    }
    double e = isfinite(s.ess_bulk) ? s.ess_bulk : 0;
    if (e < out.ess) {
      out.ess = e;
      snprintf(out.worst, sizeof out.worst, "%s", names[i]);
    }
  }
  out.ok = true;
done:
  ppl_run_options_free(&ro);
  ppl_result_free(r);
  ppl_model_free(model);
  ppl_context_free(ctx);
  return out;
}

/* rstan's figures for the problem from stan_peer.R's output, if it ran. */
static bool eb_stan(const char *stan_out, const char *problem, double *ess, double *sec) {
  char key[80];
  snprintf(key, sizeof key, "stan %s ", problem);
  const char *s = stan_out ? strstr(stan_out, key) : NULL;
  return s && sscanf(s + strlen(key), "%lf %lf", ess, sec) == 2;
}

static char *eb_run_stan(const char *root, uint64_t seed) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "Rscript -e 'quit(status = !requireNamespace(\"rstan\", quietly = TRUE))' "
           ">/dev/null 2>&1 && Rscript '%s/bench/enum_bench/stan_peer.R' '%s' %llu 2>/dev/null",
           root, root, (unsigned long long)seed);
  FILE *f = popen(cmd, "r");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t k;
  while (buf && (k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += k;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  if (buf) buf[len] = 0;
  pclose(f);
  return buf;
}

/* The model compiled (JIT) with the problem's data, or NULL. */
static ppl_model *eb_model(ppl_context *ctx, const char *root, const char *prog, const char *data) {
  char path[1024], dpath[1024];
  snprintf(path, sizeof path, "%s/tests/enum/%s.ppl", root, prog);
  snprintf(dpath, sizeof dpath, "%s/tests/enum/%s.data.json", root, data);
  ppl_model *m = NULL;
  if (ppl_compile_file(ctx, path, &m) != PPL_OK || ppl_set_data_file(m, dpath) != PPL_OK) {
    fprintf(stderr, "%s: %s\n", path, ppl_errmsg(ctx));
    ppl_model_free(m);
    return NULL;
  }
  return m;
}

/* CPU seconds of n gradients at the points th[0..npts) (each n entries). */
static double eb_grads(ppl_model *m, const double *th, int npts, size_t n, int reps, double *sink) {
  double g[EB_MAXCOLS * 8], lp = 0, t0 = eb_cpu();
  for (int r = 0; r < reps; r++)
    for (int i = 0; i < npts; i++) {
      ppl_log_density_gradient(m, th + (size_t)i * n, n, &lp, g);
      *sink += lp + g[0];
    }
  return eb_cpu() - t0;
}

static int eb_grad_main(const char *root, int reps, const char *only) {
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.threads = 1;
  cfg.no_jit = getenv("EB_NO_JIT") != NULL; /* the interpreter's figures */
  ppl_context *ctx = ppl_context_new(&cfg);
  printf("%s\n", cfg.no_jit ? "interpreted (EB_NO_JIT)" : "compiled (JIT)");
  printf("%-8s %14s %14s %8s  (CPU per gradient, least of %d interleaved repetitions)\n",
         "problem", "enumerated us", "by hand us", "ratio", reps);
  for (size_t i = 0; i < sizeof problems / sizeof *problems; i++) {
    const EbProblem *p = &problems[i];
    if (only && strcmp(only, p->name)) continue;
    ppl_model *a = eb_model(ctx, root, p->natural, p->data);
    ppl_model *b = eb_model(ctx, root, p->hand, p->data);
    size_t na = 0, nb = 0;
    if (!a || !b || ppl_num_unconstrained(a, &na) != PPL_OK ||
        ppl_num_unconstrained(b, &nb) != PPL_OK || na != nb || na > EB_MAXCOLS * 8) {
      printf("%-8s failed\n", p->name);
      ppl_model_free(a), ppl_model_free(b);
      continue;
    }
    enum { NPTS = 16 };
    double th[NPTS * EB_MAXCOLS * 8], sink = 0;
    uint64_t x = 88172645463325252ull; /* xorshift: points in (-1, 1) */
    for (size_t k = 0; k < NPTS * na; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      th[k] = 2.0 * (double)(x >> 11) / 9007199254740992.0 - 1;
    }
    eb_grads(a, th, NPTS, na, 4, &sink), eb_grads(b, th, NPTS, na, 4, &sink); /* compile, warm */
    int per = 100; /* gradients per repetition: NPTS x per */
    double ta = INFINITY, tb = INFINITY;
    for (int r = 0; r < reps; r++) {
      double t = eb_grads(a, th, NPTS, na, per, &sink);
      if (t < ta) ta = t;
      t = eb_grads(b, th, NPTS, na, per, &sink);
      if (t < tb) tb = t;
    }
    double n = (double)NPTS * per;
    printf("%-8s %14.2f %14.2f %7.2fx%s\n", p->name, 1e6 * ta / n, 1e6 * tb / n, ta / tb,
           isfinite(sink) ? "" : " ");
    ppl_model_free(a), ppl_model_free(b);
  }
  printf("ratio: the enumerated program's CPU per gradient over the twin's (target <= 1)\n");
  ppl_context_free(ctx);
  return 0;
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : ".";
  if (argc > 2 && !strcmp(argv[2], "grad")) return eb_grad_main(root, argc > 3 ? atoi(argv[3]) : 5, argc > 4 ? argv[4] : NULL);
  uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  const char *only = argc > 3 ? argv[3] : NULL;
  bool nuts_only = getenv("EB_NUTS_ONLY") != NULL; /* no mh, no smc: the twin's ratio only */
  printf("%-8s %-18s %-6s %8s %9s %10s  %s\n", "problem", "method", "engine", "min ESS", "CPU s",
         "ESS/CPU-s", "(smallest ESS)");
  double rate[sizeof problems / sizeof *problems][EB_NMETHODS + 1];
  for (size_t i = 0; i < sizeof problems / sizeof *problems; i++) {
    for (size_t j = 0; j <= EB_NMETHODS; j++) rate[i][j] = NAN;
    if (only && strcmp(only, problems[i].name)) continue;
    char names[EB_MAXCOLS][64];
    int ncols = 0;
    /* the twin first: its outputs name the continuous latents */
    const size_t order[] = {1, 0, 2, 3};
    for (size_t j = 0; j < EB_NMETHODS; j++) {
      const EbMethod *m = &methods[order[j]];
      if (nuts_only && m->engine && strcmp(m->engine, "nuts")) continue;
      EbResult res = eb_run(root, &problems[i], m, seed, names, &ncols);
      rate[i][order[j]] = res.ok ? res.ess / res.cpu : NAN;
      if (res.ok)
        printf("%-8s %-18s %-6s %8.0f %9.2f %10.1f  (%s)\n", problems[i].name, m->label, res.engine,
               res.ess, res.cpu, res.ess / res.cpu, res.worst);
      else
        printf("%-8s %-18s %s\n", problems[i].name, m->label, res.engine);
      fflush(stdout);
    }
  }
  char *stan = getenv("EB_NO_STAN") ? NULL : eb_run_stan(root, seed);
  for (size_t i = 0; i < sizeof problems / sizeof *problems; i++) {
    double ess, sec;
    if (only && strcmp(only, problems[i].name)) continue;
    if (eb_stan(stan, problems[i].name, &ess, &sec)) {
      rate[i][EB_NMETHODS] = ess / sec;
      printf("%-8s %-18s %-6s %8.0f %9.2f %10.1f\n", problems[i].name, "rstan, by hand", "nuts",
             ess, sec, ess / sec);
    } else {
      printf("%-8s %-18s skipped (no Rscript with rstan, or it failed)\n", problems[i].name,
             "rstan, by hand");
    }
  }
  free(stan);
  printf("\nESS/CPU-s of nuts with enumeration over:\n");
  printf("%-8s %10s %10s %10s %10s\n", "problem", "mh", "smc", "by hand", "rstan");
  for (size_t i = 0; i < sizeof problems / sizeof *problems; i++)
    printf("%-8s %9.1fx %9.1fx %9.2fx %9.2fx\n", problems[i].name, rate[i][0] / rate[i][2],
           rate[i][0] / rate[i][3], rate[i][0] / rate[i][1], rate[i][0] / rate[i][EB_NMETHODS]);
  printf("targets: >= 10x mh, >= 1x by hand\n");
  return 0;
}
