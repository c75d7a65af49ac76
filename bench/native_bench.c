/* native_bench.c — what compiling builtins and density calls natively buys
 * (issue 17, part 1): gradients per CPU-second, LLVM JIT against the
 * interpreter, side by side in one run, on programs that call builtins and
 * density functions in per-observation loops:
 *   - low_dim_gauss_mix (posteriordb): log_mix of two normal_lpdf per point;
 *   - hmm_example (posteriordb): log_sum_exp of two and normal_lpdf per step;
 *   - hmm_nested (examples/): a 3-state HMM whose forward variables are a
 *     nested local array of vectors and a 2-D array filled element by element;
 *   - arma11 (posteriordb): normal_lpdf of a local vector of residuals;
 *   - target += normal_lpdf(y[n] | mu, sigma) against y[n] ~ normal(mu, sigma)
 *     in a loop of 1,000 (the issue: 5x apart): the two should cost the same;
 *   - the same with a vector y: target += normal_lpdf(y | mu, sigma) against
 *     y ~ normal(mu, sigma), and lognormal and gamma (kernel lists);
 *   - builtins of containers: log_sum_exp, log1p_exp, softmax, log_softmax
 *     of a vector of 100 latents.
 * Each rate is the best of 3 alternating rounds of CPU time (getrusage via
 * CLOCK_PROCESS_CPUTIME_ID), robust to a loaded machine.
 *
 *   native_bench SOURCE_ROOT [seconds-per-measurement]
 *
 * Built as a program, not a test: meson compile -C BUILD bench/native_bench.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ppl.h"

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

static ppl_model *load(ppl_context *cx, const char *src, const char *data, const char *name) {
  ppl_model *m = NULL;
  if (ppl_compile_string(cx, src, name, &m) != PPL_OK ||
      ppl_set_data_json(m, data, "data.json") != PPL_OK) {
    fprintf(stderr, "%s: %s\n", name, ppl_errmsg(cx));
    if (m) ppl_model_free(m);
    return NULL;
  }
  return m;
}

/* gradients per CPU-second of m at a fixed point, over about `secs` */
static double rate(ppl_model *m, size_t dim, double secs) {
  double *th = calloc(dim, sizeof(double)), *g = calloc(dim, sizeof(double)), lp;
  for (size_t i = 0; i < dim; i++) th[i] = 0.1 * (double)(i % 5) - 0.2;
  long n = 0;
  double t0 = cpu_now(), t;
  do {
    for (int k = 0; k < 10; k++, n++) ppl_log_density_gradient(m, th, dim, &lp, g);
    t = cpu_now() - t0;
  } while (t < secs);
  free(th);
  free(g);
  return (double)n / t;
}

static void bench(const char *name, const char *src, const char *data, double secs) {
  ppl_config cj, ci;
  ppl_config_default(&cj);
  ppl_config_default(&ci);
  ci.no_jit = 1;
  ppl_context *xj = ppl_context_new(&cj), *xi = ppl_context_new(&ci);
  ppl_model *mj = load(xj, src, data, name), *mi = load(xi, src, data, name);
  if (!mj || !mi) goto done;
  size_t dim = 0;
  if (ppl_num_unconstrained(mj, &dim) != PPL_OK) goto done;
  double rj = 0, ri = 0;
  for (int r = 0; r < 3; r++) {
    double a = rate(mj, dim, secs), b = rate(mi, dim, secs);
    if (a > rj) rj = a;
    if (b > ri) ri = b;
  }
  const char *calls = ppl_model_runtime_calls(mj);
  const char *last = calls ? strstr(calls, "backend: ") : NULL;
  int sites = last ? atoi(last + 9) : -1;
  printf("%-34s %12.0f %12.0f %8.1fx %6d\n", name, rj, ri, rj / ri, sites);
done:
  if (mj) ppl_model_free(mj);
  if (mi) ppl_model_free(mi);
  ppl_context_free(xj);
  ppl_context_free(xi);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: native_bench SOURCE_ROOT [seconds]\n");
    return 2;
  }
  double secs = argc > 2 ? atof(argv[2]) : 0.3;
  static const char *files[][2] = {
      {"low_dim_gauss_mix", "examples/posteriordb/low_dim_gauss_mix-low_dim_gauss_mix"},
      {"hmm_example", "examples/posteriordb/hmm_example-hmm_example"},
      {"hmm_nested (N = 100)", "examples/hmm_nested"},
      {"arma11", "examples/posteriordb/arma-arma11"},
  };
  printf("%-34s %12s %12s %9s %6s\n", "program", "JIT grad/s", "interp grad/s", "ratio",
         "rt calls");
  char path[4096];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s.ppl", argv[1], files[i][1]);
    char *src = slurp(path);
    snprintf(path, sizeof path, "%s/%s.data.json", argv[1], files[i][1]);
    char *data = slurp(path);
    if (src && data) bench(files[i][0], src, data, secs);
    else fprintf(stderr, "cannot read %s\n", path);
    free(src);
    free(data);
  }
  /* the density call against the statement, 1,000 observations */
  char *data = malloc(40000);
  int n = sprintf(data, "{\"N\": 1000, \"y\": [");
  for (int i = 0; i < 1000; i++) n += sprintf(data + n, "%s%.4f", i ? ", " : "", sin(i * 0.37) * 2);
  sprintf(data + n, "]}");
  bench("target += normal_lpdf(y[n] | ...)",
        "data { int N; real y[N]; }\nmodel {\n  real mu ~ normal(0, 1);\n"
        "  real<lower=0> sigma ~ normal(0, 1);\n"
        "  for (n in 1:N) target += normal_lpdf(y[n] | mu, sigma);\n}\n",
        data, secs);
  bench("y[n] ~ normal(...)",
        "data { int N; real y[N]; }\nmodel {\n  real mu ~ normal(0, 1);\n"
        "  real<lower=0> sigma ~ normal(0, 1);\n"
        "  for (n in 1:N) y[n] ~ normal(mu, sigma);\n}\n",
        data, secs);
  /* containers: the density call against the statement, N = 1,000 */
  n = sprintf(data, "{\"N\": 1000, \"y\": [");
  for (int i = 0; i < 1000; i++) n += sprintf(data + n, "%s%.4f", i ? ", " : "", 2.5 + sin(i * 0.37) * 2);
  sprintf(data + n, "]}");
  bench("target += normal_lpdf(y | ...) (vec)",
        "data { int N; vector[N] y; }\nmodel {\n  real mu ~ normal(0, 1);\n"
        "  real<lower=0> sigma ~ normal(0, 1);\n"
        "  target += normal_lpdf(y | mu, sigma);\n}\n",
        data, secs);
  bench("y ~ normal(...) (vec)",
        "data { int N; vector[N] y; }\nmodel {\n  real mu ~ normal(0, 1);\n"
        "  real<lower=0> sigma ~ normal(0, 1);\n"
        "  y ~ normal(mu, sigma);\n}\n",
        data, secs);
  bench("y ~ lognormal(...), gamma(...) (vec)",
        "data { int N; vector[N] y; }\nmodel {\n  real mu ~ normal(0, 1);\n"
        "  real<lower=0> sigma ~ normal(0, 1);\n"
        "  y ~ lognormal(mu, sigma);\n  y ~ gamma(sigma + 1, exp(mu));\n}\n",
        data, secs);
  bench("log_sum_exp, softmax ... of vector[100]",
        "model {\n  vector[100] m ~ normal(0, 1);\n"
        "  target += log_sum_exp(m) + sum(log1p_exp(m)) + log_softmax(m)[3]\n"
        "            + sum(softmax(m) .* m);\n}\n",
        "{}", secs);
  free(data);
  return 0;
}
