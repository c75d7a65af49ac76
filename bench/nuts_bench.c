/* nuts_bench.c — the NUTS sampler's own overhead (issue 17, part 2) on eight
 * schools (non-centred) and a logistic regression (N = 1000, K = 8), against
 * rstan's NUTS on the same programs (the .stan files of bench/stan) where R and rstan are
 * installed.
 *
 * For each model, `ppl run` as a child process (4 chains x (1000 warmup +
 * 1000 draws), one thread, CSV output as CmdStan writes it):
 *   - whole CPU: the child's user + system time (start-up, LLVM, compiling,
 *     chains, output, summary);
 *   - chain CPU: the chains' own CPU seconds (the CSV's Elapsed Time lines);
 *   - leapfrog steps of all chains, warmup included (counted in a second,
 *     untimed run with --save-warmup: the same seed gives the same
 *     trajectories);
 *   - the gradient's cost: evaluations per CPU-second through ppl.h;
 *   - per-step overhead = chain CPU / steps - gradient cost (and the same
 *     with the whole CPU, start-up and summary included);
 *   - min bulk ESS per CPU-second, whole process and chains only;
 *   - start-up on eight schools: the least CPU of interleaved runs of `ppl
 *     check`, and of a one-draw run under --no-jit, by default (too short to
 *     compile: interpreted) and with --jit (compiled the quick way).
 * Each model runs twice: with --jit-opt full, whose gradient is the one
 * measured through ppl.h (so chain CPU per step minus it is the sampler's
 * overhead), and as a user runs it (--jit-opt auto: the quick pipeline for
 * a run this short on eight schools), for the whole process's ESS per
 * CPU-second; the backend each used is printed.
 * Stan: its chains' CPU (get_elapsed_time), the CPU of the whole sampling()
 * call, and its CPU per leapfrog step (gradient included).  The issue's
 * targets on eight schools: overhead <= 0.3 us a step, start-up + compile
 * < 30 ms, ESS per whole-process CPU-second >= 2x Stan's.
 *
 *   nuts_bench [--no-stan] [--quick] [SOURCE_ROOT [BUILD_DIR]]  (defaults: . and build)
 *
 * --quick: 2 chains x (500 + 500).  Not a test: prints a table and ratios;
 * the figures are in docs/performance.md. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>

#include "nuts_peer.h"

typedef struct {
  const char *name;
  const char *ppl, *data, *stan; /* paths under the source root */
} NbModel;

static const NbModel models[] = {
    {"eight_schools", "examples/posteriordb/eight_schools-eight_schools_noncentered.ppl",
     "examples/posteriordb/eight_schools-eight_schools_noncentered.data.json",
     "bench/stan/eight_schools-eight_schools_noncentered.stan"},
    {"logistic", "bench/stan/logistic.ppl", "bench/stan/logistic.data.json",
     "bench/stan/logistic.stan"},
};
#define NB_NMODELS (sizeof models / sizeof *models)

typedef struct {
  double whole, chains, steps, grad_s, ess;
  char backend[200];
  bool ok;
} NbPpl;

/* The summary JSON's backend line, shortened to what says how it compiled. */
static void nb_backend(const char *summary_json, char *out, size_t cap) {
  json_error_t err;
  json_t *root = json_load_file(summary_json, 0, &err);
  const char *b = root ? json_string_value(json_object_get(root, "backend")) : NULL;
  snprintf(out, cap, "%.*s", b ? (int)strcspn(b, ":(") : 1, b ? b : "?");
  json_decref(root);
}

static NbPpl nb_ppl(const char *root, const char *build, const NbModel *m, int chains,
                    int warmup, int draws, const char *jit_opt) {
  NbPpl r = {.ok = false};
  char exe[1024], model[1024], data[1024], out[256], sum[256], cs[16], ws[16], ds[16];
  snprintf(exe, sizeof exe, "%s/ppl", build);
  snprintf(model, sizeof model, "%s/%s", root, m->ppl);
  snprintf(data, sizeof data, "%s/%s", root, m->data);
  snprintf(out, sizeof out, "/tmp/nuts_bench_%d_%s.csv", (int)getpid(), m->name);
  snprintf(sum, sizeof sum, "/tmp/nuts_bench_%d_%s.json", (int)getpid(), m->name);
  snprintf(cs, sizeof cs, "%d", chains);
  snprintf(ws, sizeof ws, "%d", warmup);
  snprintf(ds, sizeof ds, "%d", draws);
  char *timed[] = {exe, "run", model, "--data", data, "--threads", "1", "--seed", "1",
                   "--chains", cs, "--warmup", ws, "--draws", ds, "--output", out,
                   "--summary", sum, "--quiet", "--no-progress", "--jit-opt", (char *)jit_opt, NULL};
  r.whole = np_child_cpu(timed);
  double sampling_steps;
  char stem[256];
  snprintf(stem, sizeof stem, "%.*s", (int)(strlen(out) - 4), out); /* without ".csv" */
  if (r.whole < 0 || !np_csv_stats(stem, chains, &sampling_steps, &r.chains)) return r;
  r.ess = np_min_ess(sum);
  nb_backend(sum, r.backend, sizeof r.backend);
  char *count[] = {exe, "run", model, "--data", data, "--threads", "1", "--seed", "1",
                   "--chains", cs, "--warmup", ws, "--draws", ds, "--output", out,
                   "--save-warmup", "--quiet", "--no-progress", "--jit-opt", (char *)jit_opt, NULL};
  double unused;
  if (np_child_cpu(count) < 0 || !np_csv_stats(stem, chains, &r.steps, &unused)) return r;
  r.grad_s = 1 / np_grad_rate(model, data, false, 0.6);
  for (int c = 1; c <= chains; c++) {
    char p[300];
    snprintf(p, sizeof p, "/tmp/nuts_bench_%d_%s_%d.csv", (int)getpid(), m->name, c);
    remove(p);
  }
  remove(sum);
  r.ok = true;
  return r;
}

/* Start-up: the least CPU of `reps` interleaved runs of each command that
 * samples nothing (one draw, no warmup): checking only, the interpreter, and
 * the JIT (libLLVM loaded, log density and draw function compiled). */
static void nb_startup(const char *root, const char *build, const NbModel *m, int reps) {
  char exe[1024], model[1024], data[1024];
  snprintf(exe, sizeof exe, "%s/ppl", build);
  snprintf(model, sizeof model, "%s/%s", root, m->ppl);
  snprintf(data, sizeof data, "%s/%s", root, m->data);
  char *check[] = {exe, "check", model, "--data", data, NULL};
  char *interp[] = {exe, "run", model, "--data", data, "--threads", "1", "--chains", "1", "--warmup",
                    "0", "--draws", "1", "--quiet", "--no-progress", "--no-jit", NULL};
  char *dflt[] = {exe, "run", model, "--data", data, "--threads", "1", "--chains", "1", "--warmup",
                  "0", "--draws", "1", "--quiet", "--no-progress", NULL};
  char *jit[] = {exe, "run", model, "--data", data, "--threads", "1", "--chains", "1", "--warmup",
                 "0", "--draws", "1", "--quiet", "--no-progress", "--jit", NULL};
  char *full[] = {exe, "run", model, "--data", data, "--threads", "1", "--chains", "1", "--warmup",
                  "0", "--draws", "1", "--quiet", "--no-progress", "--jit", "--jit-opt", "full", NULL};
  char *const *cmd[5] = {check, interp, dflt, jit, full};
  double best[5] = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};
  for (int r = 0; r < reps; r++)
    for (int k = 0; k < 5; k++) {
      double c = np_child_cpu(cmd[k]);
      if (c >= 0 && c < best[k]) best[k] = c;
    }
  printf("%-14s start-up CPU (least of %d): ppl check %.1f ms; run, one draw: --no-jit %.1f ms, "
         "default %.1f ms (interpreted: too short to compile), --jit %.1f ms (start-up + quick "
         "compile; target < 30 ms), --jit --jit-opt full %.1f ms\n",
         m->name, reps, best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, best[3] * 1e3, best[4] * 1e3);
}

int main(int argc, char **argv) {
  bool stan = true, quick = false;
  const char *pos[2] = {".", "build"};
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--no-stan")) stan = false;
    else if (!strcmp(argv[i], "--quick")) quick = true;
    else if (npos < 2) pos[npos++] = argv[i];
  }
  const char *root = pos[0], *build = pos[1];
  int chains = quick ? 2 : 4, warmup = quick ? 500 : 1000, draws = quick ? 500 : 1000;
  printf("nuts_bench: %d chains x (%d + %d), one thread, seed 1; load average %.1f\n", chains,
         warmup, draws, np_loadavg());
  char *stan_out = NULL;
  if (stan) {
    char specs[4096] = "";
    for (size_t i = 0; i < NB_NMODELS; i++) {
      size_t len = strlen(specs);
      snprintf(specs + len, sizeof specs - len, " %s='%s/%s':'%s/%s'", models[i].name, root,
               models[i].stan, root, models[i].data);
    }
    stan_out = np_run_stan(root, 1, chains, warmup, draws, specs);
  }
  nb_startup(root, build, &models[0], quick ? 5 : 11);
  printf("\n%-14s %9s %9s %9s %9s %9s %10s %10s %9s\n", "model", "steps", "grad us", "chain us",
         "ovh us", "whole-ovh", "outside s", "ESS", "ESS/CPU-s");
  for (size_t i = 0; i < NB_NMODELS; i++) {
    NbPpl r = nb_ppl(root, build, &models[i], chains, warmup, draws, "full");
    NbPpl a = nb_ppl(root, build, &models[i], chains, warmup, draws, "auto");
    if (!r.ok || !a.ok) {
      printf("%-14s failed\n", models[i].name);
      continue;
    }
    double per = r.chains / r.steps * 1e6, grad = r.grad_s * 1e6;
    printf("%-14s %9.0f %9.3f %9.3f %9.3f %9.3f %10.3f %10.0f %9.0f  (--jit-opt full: %s)\n",
           models[i].name, r.steps, grad, per, per - grad, r.whole / r.steps * 1e6 - grad,
           r.whole - r.chains, r.ess, r.ess / r.whole, r.backend);
    printf("%-14s %9.0f %9s %9.3f %9s %9s %10.3f %10.0f %9.0f  (default: %s)\n", "", a.steps, "-",
           a.chains / a.steps * 1e6, "-", "-", a.whole - a.chains, a.ess, a.ess / a.whole,
           a.backend);
    NpStan s = np_stan(stan_out, models[i].name);
    if (s.ok) {
      printf("%-14s %9.0f %9s %9.3f %9s %9s %10s %10.0f %9.0f  (rstan, chains' CPU; whole "
             "sampling() call %.3f s: %.0f ESS/CPU-s)\n",
             "  rstan", s.leapfrogs, "-", s.chain_cpu / s.leapfrogs * 1e6, "-", "-", "-", s.ess,
             s.ess / s.chain_cpu, s.call_cpu, s.ess / s.call_cpu);
      printf("%-14s ESS per CPU-second, ppl (whole process) / Stan (chains): %.2f (default run), "
             "%.2f (--jit-opt full); ppl (chains) / Stan (chains): %.2f\n",
             "", (a.ess / a.whole) / (s.ess / s.chain_cpu), (r.ess / r.whole) / (s.ess / s.chain_cpu),
             (r.ess / r.chains) / (s.ess / s.chain_cpu));
    }
    fflush(stdout);
  }
  printf("\nsteps: leapfrog steps of all chains, warmup included; grad us: one gradient (ppl.h);\n"
         "chain us: the chains' CPU per step; ovh us: chain us - grad us (the sampler's own cost a\n"
         "step: tree, RNG, adaptation, outputs, CSV); whole-ovh: the same from the whole process's\n"
         "CPU; outside s: CPU outside the chains (start-up, LLVM, compiling, summary); ESS: the\n"
         "smallest bulk ESS over the outputs; ESS/CPU-s: over the whole process's CPU.  First row\n"
         "of a model: --jit-opt full (the gradient measured is its); second: the default run.\n");
  free(stan_out);
  return 0;
}
