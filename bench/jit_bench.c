/* jit_bench.c — compile latency of the LLVM JIT: for every model of
 * examples/ and examples/posteriordb/ with a fixed-structure continuous log
 * density, the time from the source text to the first compiled gradient
 * (parse, check, lower, load data, discover latents, compile, evaluate), its
 * LLVM part alone, and the interpreter's first gradient for comparison.
 *
 *   jit_bench EXAMPLES_DIR
 *
 * A program, not a test: meson compile -C BUILD bench/jit_bench. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inference/logdensity.h"
#include "bench_util.h"
#include "api/data.h"

/* CPU time of this thread: on a busy machine wall time measures the other
   processes too (the wall time is printed beside it) */
static double jb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double jb_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static bool jb_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Source text to a LogDensity with its data; NULL (and a reason) if the model
   has no fixed-structure continuous log density. */
static LogDensity *jb_load(const char *model, const char *data, const char **why) {
  Diag d;
  diag_init(&d);
  size_t len;
  int en;
  char *src = gc_read_file(model, &len, &en);
  Interp *in = bench_program(src, len, model, &d);
  FILE *f = fopen(data, "rb");
  DataSource *ds = NULL;
  if (f) {
    fclose(f);
    ds = in ? data_json_file(data, &d) : NULL;
  }
  LogDensity *ld = in && interp_load_data(in, ds, &d) ? ld_new(in, &d) : NULL;
  if (!ld) *why = gc_strdup(d.msg);
  return ld;
}

static void jb_model(const char *dir, const char *name) {
  char model[1024], data[1024];
  snprintf(model, sizeof model, "%s/%s.ppl", dir, name);
  snprintf(data, sizeof data, "%s/%s.data.json", dir, name);
  const char *why = "";
  /* the interpreter's first gradient */
  double t0 = jb_now();
  LogDensity *li = jb_load(model, data, &why);
  if (!li) {
    printf("%-42s  (no continuous log density: %.60s)\n", name, why);
    return;
  }
  size_t n = ld_dim(li);
  double *th = calloc(n + 1, sizeof(double)), *g = calloc(n + 1, sizeof(double)), lp;
  Diag d;
  diag_init(&d);
  ld_eval_grad(li, th, &lp, g, &d);
  double t_interp = jb_now() - t0;
  /* the JIT's */
  t0 = jb_now();
  double w0 = jb_wall();
  LogDensity *lj = jb_load(model, data, &why);
  double tu = jb_now();
  bool ok = lj && ld_use_jit(lj, false);
  double t1 = jb_now();
  ok = ok && ld_eval_grad_jit(lj, th, &lp, g);
  double t_jit = jb_now() - t0, w_jit = jb_wall() - w0;
  if (!ok)
    printf("%-42s  (not compiled: %s)\n", name, lj ? ld_backend(lj) : why);
  else
    printf("%-42s %8.1f ms %8.1f ms %8.1f ms %8.1f ms\n", name, 1e3 * t_jit, 1e3 * (t1 - tu),
           1e3 * w_jit, 1e3 * t_interp);
  if (lj) ld_free(lj);
  free(th), free(g);
}

static void jb_dir(const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp) return;
  char *names[256];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dp)) && n < 256)
    if (jb_suffix(e->d_name, ".ppl")) {
      names[n] = strdup(e->d_name);
      names[n][strlen(names[n]) - 4] = 0;
      n++;
    }
  closedir(dp);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (strcmp(names[j], names[i]) < 0) {
        char *t = names[i];
        names[i] = names[j];
        names[j] = t;
      }
  for (int i = 0; i < n; i++) {
    jb_model(dir, names[i]);
    free(names[i]);
  }
}

int main(int argc, char **argv) {
  gc_init();
  const char *dir = argc > 1 ? argv[1] : "examples";
  printf("source to first gradient, CPU time: with the JIT (of which compiling; and its wall\n"
         "time), and interpreted\n");
  printf("%-42s %11s %11s %11s %11s\n", "model", "JIT", "compiling", "JIT wall", "interpreter");
  jb_dir(dir);
  char pdb[1024];
  snprintf(pdb, sizeof pdb, "%s/posteriordb", dir);
  jb_dir(pdb);
  return 0;
}
