/* pdb_bench.c — every posteriordb program of examples/posteriordb (issue 17's
 * benchmark): gradients per CPU-second, JIT against the interpreter, and NUTS's
 * smallest bulk ESS per CPU-second, JIT against --no-jit against rstan on the
 * Stan programs of bench/stan (same model, same data), in one table.
 *
 * ppl's CPU is the whole `ppl run` process (one thread; start-up, compiling,
 * chains, output, summary); Stan's is its chains' own time (get_elapsed_time;
 * the C++ compilation not counted).  Stan has no gradient timer outside the
 * sampler: its column is leapfrog steps per chain CPU-second, a lower bound
 * of its gradients per second (the sampler's own cost included).
 *
 *   pdb_bench [--quick] [--no-stan] [--no-interp] [--only PREFIX] [SOURCE_ROOT [BUILD_DIR]]
 *
 * Stan runs just before ppl on each program (interleaved: both under the same
 * load).  Full: 4 chains x (1000 + 1000), seed 1.  --quick: 2 chains x
 * (300 + 300) and shorter gradient timings; --no-interp: no run under
 * --no-jit (its gradient rate is still measured).  The first run compiles
 * rstan's models (minutes each), cached under $PPL_BENCH_CACHE; with
 * PPL_BENCH_CACHED_ONLY=1 those not compiled yet are left out.  Each ppl run stops after PDB_TIMEOUT seconds.
 * Not a test: the figures are in docs/performance.md. */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nuts_peer.h"

#define PDB_MAX 64
#define PDB_TIMEOUT "1800"

static int pdb_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* min ESS and whole-process CPU of one `ppl run`; false if it failed. */
static bool pdb_run(const char *root, const char *build, const char *name, bool no_jit,
                    int chains, int warmup, int draws, double *ess, double *cpu) {
  char exe[1024], model[1024], data[1024], sum[256], cs[16], ws[16], ds[16];
  snprintf(exe, sizeof exe, "%s/ppl", build);
  snprintf(model, sizeof model, "%s/examples/posteriordb/%s.ppl", root, name);
  snprintf(data, sizeof data, "%s/examples/posteriordb/%s.data.json", root, name);
  snprintf(sum, sizeof sum, "/tmp/pdb_bench_%d.json", (int)getpid());
  snprintf(cs, sizeof cs, "%d", chains);
  snprintf(ws, sizeof ws, "%d", warmup);
  snprintf(ds, sizeof ds, "%d", draws);
  char *argv[] = {"/usr/bin/timeout", PDB_TIMEOUT, exe, "run", model, "--data", data,
                  "--engine", "nuts", "--threads", "1", "--seed", "1", "--chains", cs,
                  "--warmup", ws, "--draws", ds, "--summary", sum, "--quiet", "--no-progress",
                  no_jit ? "--no-jit" : NULL, NULL};
  *cpu = np_child_cpu(argv);
  *ess = *cpu >= 0 ? np_min_ess(sum) : NAN;
  remove(sum);
  return *cpu >= 0;
}

int main(int argc, char **argv) {
  bool stan = true, quick = false, interp = true;
  const char *only = NULL, *pos[2] = {".", "build"};
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--no-stan")) stan = false;
    else if (!strcmp(argv[i], "--quick")) quick = true;
    else if (!strcmp(argv[i], "--no-interp")) interp = false;
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (npos < 2) pos[npos++] = argv[i];
  }
  const char *root = pos[0], *build = pos[1];
  int chains = quick ? 2 : 4, warmup = quick ? 300 : 1000, draws = quick ? 300 : 1000;
  bool interp_nuts = interp;
  double grad_secs = quick ? 0.3 : 1.0;

  char dir[1024];
  snprintf(dir, sizeof dir, "%s/examples/posteriordb", root);
  DIR *dp = opendir(dir);
  if (!dp) {
    fprintf(stderr, "pdb_bench: cannot open %s\n", dir);
    return 1;
  }
  char *names[PDB_MAX];
  int n = 0;
  for (struct dirent *e; (e = readdir(dp)) && n < PDB_MAX;) {
    size_t len = strlen(e->d_name);
    if (len > 4 && !strcmp(e->d_name + len - 4, ".ppl") && (!only || !strncmp(e->d_name, only, strlen(only))))
      names[n++] = strndup(e->d_name, len - 4);
  }
  closedir(dp);
  qsort(names, (size_t)n, sizeof *names, pdb_cmp);

  printf("pdb_bench: %d programs, %d chains x (%d + %d), one thread, seed 1; load average %.1f\n",
         n, chains, warmup, draws, np_loadavg());
  printf("\n%-40s %10s %10s %6s | %9s %9s %9s | %9s %9s %6s\n", "program", "grad/s JIT",
         "grad/s int", "x", "ESS/s JIT", "ESS/s int", "ESS/s Stan", "Stan lf/s", "JIT/Stan", "JIT/int");
  for (int i = 0; i < n; i++) {
    char model[1024], data[1024];
    snprintf(model, sizeof model, "%s/examples/posteriordb/%s.ppl", root, names[i]);
    snprintf(data, sizeof data, "%s/examples/posteriordb/%s.data.json", root, names[i]);
    /* Stan beside each program, run just before ppl's runs of it (interleaved,
       so both see the same load) */
    char *stan_out = NULL;
    if (stan) {
      char spec[3400];
      snprintf(spec, sizeof spec, " '%s=%s/bench/stan/%s.stan:%s'", names[i], root, names[i], data);
      stan_out = np_run_stan(root, 1, chains, warmup, draws, spec);
    }
    double gj = np_grad_rate(model, data, false, grad_secs);
    double gi = interp ? np_grad_rate(model, data, true, grad_secs) : NAN;
    double ej = NAN, cj = NAN, ei = NAN, ci = NAN;
    bool okj = pdb_run(root, build, names[i], false, chains, warmup, draws, &ej, &cj);
    bool oki = interp_nuts && pdb_run(root, build, names[i], true, chains, warmup, draws, &ei, &ci);
    NpStan s = np_stan(stan_out, names[i]);
    double rj = okj ? ej / cj : NAN, ri = oki ? ei / ci : NAN;
    double rs = s.ok ? s.ess / s.chain_cpu : NAN;
    printf("%-40s %10.0f %10.0f %6.1f | %9.1f %9.1f %9.1f | %9.0f %9.2f %6.2f  load %.1f\n",
           names[i], gj, gi, gj / gi, rj, ri, rs, s.ok ? s.leapfrogs / s.chain_cpu : NAN, rj / rs,
           rj / ri, np_loadavg());
    free(stan_out);
    fflush(stdout);
  }
  printf("\ngrad/s: gradient evaluations per CPU-second through ppl.h (JIT; int: --no-jit), x: "
         "their ratio;\nESS/s: smallest bulk ESS over the outputs per CPU-second (ppl: the whole "
         "process; Stan: its chains);\nStan lf/s: leapfrog steps per chain CPU-second (its "
         "gradients per second, sampler included);\nJIT/Stan: the ESS/s ratio (target >= 1 for "
         "every program); JIT/int: the JIT's ESS/s over --no-jit's (target >= 1).\nnan: not run "
         "(--no-interp skips NUTS under --no-jit; Stan's model not compiled yet under\n"
         "PPL_BENCH_CACHED_ONLY=1) or failed.  Stan runs just before ppl on each program.\n");
  for (int i = 0; i < n; i++) free(names[i]);
  return 0;
}
