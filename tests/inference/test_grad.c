/* test_grad.c — ld_eval_grad (reverse-mode AD through the interpreter, the
 * builtins, the transforms and the distributions) against central finite
 * differences of ld_eval, an independent computation of the same derivative.
 *
 *   test_grad EXAMPLES_DIR EXACT_MODELS_DIR SHARED_EXACT_DIR
 *
 * Covered: every example and exact-posterior model with fixed structure and
 * continuous latents; small models for each constraint kind (bounds, simplex,
 * ordered, positive_ordered, unit_vector, cholesky_factor_corr, cov_matrix,
 * corr_matrix, cholesky_factor_cov;
 * arrays of them, latent parameters, values read afterwards),
 * for bounds computed from parameters, for the interpreter's operations
 * (broadcasting, matrix products, indexing, slicing, stores, literals,
 * conditionals, user functions) and for each differentiable builtin; the
 * error for a builtin without a derivative rule; two threads at once. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>

#include "inference/logdensity.h"
#include "ppl_config.h"
#include "api/data.h"
#include "stdlib/rng.h"
#include "test_engines_util.h"

/* 5-point central difference of ld_eval in coordinate i: error O(h^4) */
static double fd_partial(const LogDensity *ld, const double *theta, size_t i, bool *ok) {
  size_t n = ld_dim(ld);
  double *th = malloc(sizeof(double) * n), f[4];
  memcpy(th, theta, sizeof(double) * n);
  double h = 1e-3 * fmax(1, fabs(theta[i]));
  const double off[4] = {2, 1, -1, -2};
  *ok = true;
  for (int k = 0; k < 4; k++) {
    Diag d;
    diag_init(&d);
    th[i] = theta[i] + off[k] * h;
    if (!ld_eval(ld, th, &f[k], &d)) *ok = false;
  }
  free(th);
  return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
}

#ifdef TEST_JIT
/* Built as test_jit: the same models, the compiled log density and gradient
   against the interpreter's at random points, to 1e-12 (relative for
   magnitudes above 1, absolute below). */
static int jit_compiled, jit_refused;

static bool close12(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= 1e-12 * fmax(1, fmax(fabs(a), fabs(b)));
}

static bool jit_compare(const char *what, const LogDensity *ld, int npoints, double scale,
                        uint64_t seed) {
  Diag d;
  diag_init(&d);
  LogDensity *lj = ld_new(ld_interp(ld), &d);
  if (!lj || !ld_use_jit(lj, false)) {
    tap_diag("%s: not compiled: %s", what, lj ? ld_jit_refusal(lj) : d.msg);
    jit_refused++;
    return false;
  }
  jit_compiled++;
  LdWork *w = ld_work_new(lj);
  bool draws = true;
  size_t n = ld_dim(ld);
  Rng rng;
  rng_seed(&rng, seed, 7);
  double *theta = malloc(sizeof(double) * (n ? n : 1)), *g = malloc(sizeof(double) * (n ? n : 1));
  double *gj = malloc(sizeof(double) * (n ? n : 1));
  for (int p = 0; p < npoints; p++) {
    for (size_t i = 0; i < n; i++) theta[i] = scale * rng_normal(&rng);
    double lp = NAN, lpj = NAN;
    diag_init(&d);
    bool ok = ld_eval_grad(ld, theta, &lp, g, &d);
    bool okj = ld_eval_grad_jit(lj, theta, &lpj, gj);
    if (!ok) { /* the interpreter reports an error here: so must the compiled code */
      tap_ok(!okj, "%s: point %d: compiled code fails where the interpreter does (%s)", what, p,
             d.msg);
      continue;
    }
    bool same = okj && close12(lpj, lp);
    size_t wi = 0;
    for (size_t i = 0; i < n && same && isfinite(lp); i++)
      if (!close12(gj[i], g[i])) {
        same = false;
        wi = i;
      }
    tap_ok(same, "%s: point %d: JIT lp %.17g vs %.17g, gradient agrees (first difference at %zu: "
           "%.17g vs %.17g)", what, p, lpj, lp, wi, n ? gj[wi] : 0, n ? g[wi] : 0);
    /* log p alone (no gradient asked for) runs density loops without their
       partials: the same value, bit for bit */
    if (okj) {
      double lp1 = NAN;
      diag_init(&d);
      bool ok1 = ld_eval(lj, theta, &lp1, &d);
      tap_ok(ok1 && (memcmp(&lp1, &lpj, sizeof lp1) == 0 || (isnan(lp1) && isnan(lpj))),
             "%s: point %d: compiled log p without the gradient %.17g = with it %.17g", what, p,
             lp1, lpj);
    }
    /* the draw at this point: compiled model and generated blocks against the
       interpreter's run, with the same random numbers */
    if (p == 0 && !draws) continue;
    Value *oj = ld_draw_jit(w, theta, 99 + (uint64_t)p, 3);
    if (!oj) {
      if (p == 0) tap_diag("%s: draws not compiled (%s)", what, ld_backend(lj));
      draws = false;
      continue;
    }
    diag_init(&d);
    Value *oi = ld_draw_interp(lj, theta, 99 + (uint64_t)p, 3, &d);
    const IrProgram *prog = interp_program(ld_interp(lj));
    bool dsame = oi != NULL;
    int bad = -1;
    for (int o = 0; dsame && o < prog->noutputs; o++) {
      size_t m = val_numel(oi[o]);
      double *x = malloc(sizeof(double) * (m + 1)), *y = malloc(sizeof(double) * (m + 1));
      dsame = val_numel(oj[o]) == m && oj[o].k == oi[o].k;
      if (dsame) {
        val_flatten(oi[o], x);
        val_flatten(oj[o], y);
        for (size_t e = 0; e < m && dsame; e++) dsame = close12(y[e], x[e]);
      }
      if (!dsame) bad = o;
      free(x), free(y);
    }
    tap_ok(dsame, "%s: point %d: the compiled draw equals the interpreted one (%s%s)", what, p,
           oi ? "" : d.msg, bad >= 0 ? prog->outputs[bad].name : "");
  }
  ld_free(lj);
  free(theta);
  free(g);
  free(gj);
  return true;
}
#endif

/* Gradient at `npoints` random points (theta ~ scale * N(0,1)) against finite
   differences; one TAP line per point. */
static void check_grad(const char *what, const LogDensity *ld, int npoints, double scale,
                       uint64_t seed) {
#ifdef TEST_JIT
  jit_compare(what, ld, npoints + 2, scale, seed);
  return;
#endif
  size_t n = ld_dim(ld);
  Rng rng;
  rng_seed(&rng, seed, 7);
  double *theta = malloc(sizeof(double) * (n ? n : 1)), *g = malloc(sizeof(double) * (n ? n : 1));
  for (int p = 0; p < npoints; p++) {
    for (size_t i = 0; i < n; i++) theta[i] = scale * rng_normal(&rng);
    double lp = NAN, lp0 = NAN;
    Diag d;
    diag_init(&d);
    bool ok = ld_eval_grad(ld, theta, &lp, g, &d);
    if (!tap_ok(ok, "%s: ld_eval_grad at point %d (%s)", what, p, d.msg)) continue;
    diag_init(&d);
    ld_eval(ld, theta, &lp0, &d);
    double worst = 0;
    size_t wi = 0;
    double wfd = 0;
    bool fdok = true;
    for (size_t i = 0; i < n; i++) {
      bool okk;
      double fd = fd_partial(ld, theta, i, &okk);
      fdok &= okk;
      /* finite differences carry roundoff ~ eps |lp| / h on top of the
         truncation error, so large log densities get a matching allowance */
      double err = fabs(g[i] - fd) / (fmax(1, fabs(fd)) + 1e-9 * fabs(lp0));
      if (!(err <= worst)) {
        worst = err;
        wi = i;
        wfd = fd;
      }
    }
    tap_ok(fdok && fabs(lp - lp0) <= 1e-12 * fmax(1, fabs(lp0)) && worst <= 1e-6,
           "%s: point %d, lp %.6g, %zu partials within 1e-6 of finite differences "
           "(worst %.2g at %zu: %.12g vs %.12g)",
           what, p, lp, n, worst, wi, n ? g[wi] : 0, wfd);
  }
  free(theta);
  free(g);
}

static LogDensity *ld_of(const char *src, TData *td, const char *what) {
  Diag d;
  Interp *in = tcompile(src, td, &d);
  if (!tap_ok(in != NULL, "%s compiles", what)) return NULL;
  LogDensity *ld = ld_new(in, &d);
  if (!tap_ok(ld != NULL, "%s: ld_new (%s)", what, d.msg)) return NULL;
  return ld;
}

static void grad_model(const char *what, const char *src, TData *td, double scale) {
  LogDensity *ld = ld_of(src, td, what);
  if (ld) check_grad(what, ld, 3, scale, 11);
}

/* ---- model files ---- */

static void grad_file(const char *model, const char *data) {
  Diag d;
  diag_init(&d);
  char *src = read_text(model);
  if (!tap_ok(src != NULL, "read %s", model)) return;
  Ast *a = parse_string(src, strlen(src), model, &d);
  CheckedProgram *cp = a ? check_program(a, model, 0, NULL, &d) : NULL;
  IrProgram *p = cp ? ir_lower(cp, &d) : NULL;
  Interp *in = p ? interp_new(p, NULL) : NULL;
  DataSource *ds = NULL;
  FILE *df = fopen(data, "rb");
  if (df) {
    fclose(df);
    ds = in ? data_json_file(data, &d) : NULL;
  }
  if (!tap_ok(in && (ds || !df) && interp_load_data(in, ds, &d), "%s compiles with its data (%s)",
              model, d.msg))
    return;
  LogDensity *ld = ld_new(in, &d);
  if (!ld) {
    tap_diag("%s: no fixed-structure continuous log density (%s)", model, d.msg);
    return;
  }
  const char *base = strrchr(model, '/');
#ifdef TEST_JIT
  /* every fixed-structure continuous model of the examples must compile */
  tap_ok(jit_compare(base ? base + 1 : model, ld, 5, 0.7, 5), "%s compiles to native code", model);
  return;
#endif
  /* Finite differences of an adaptive ODE solve see its step-size control
     react to the parameters and agree only to about the solver's tolerance:
     ODE gradients are checked at tight tolerances in tests/lang/test_ode_lang
     and tests/stdlib/test_ode instead. */
  if (strstr(src, "ode_rk45")) {
    tap_diag("%s: ODE model, gradient checked in test_ode_lang", model);
    return;
  }
  check_grad(base ? base + 1 : model, ld, 3, 0.7, 5);
}

static bool has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && strcmp(s + n - m, suf) == 0;
}

/* every NAME.ppl in dir, with data NAME.data.json beside it (or in
   shared/NAME/data.json when shared is given) */
static void grad_dir(const char *dir, const char *shared) {
  DIR *dp = opendir(dir);
  if (!tap_ok(dp != NULL, "open %s", dir)) return;
  char *names[256];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dp)) && n < 256)
    if (has_suffix(e->d_name, ".ppl")) names[n++] = strdup(e->d_name);
  closedir(dp);
  for (int i = 0; i < n; i++) /* a stable order */
    for (int j = i + 1; j < n; j++)
      if (strcmp(names[j], names[i]) < 0) {
        char *t = names[i];
        names[i] = names[j];
        names[j] = t;
      }
  for (int i = 0; i < n; i++) {
    char model[1024], data[1024];
    snprintf(model, sizeof model, "%s/%s", dir, names[i]);
    names[i][strlen(names[i]) - 4] = 0;
    if (shared) snprintf(data, sizeof data, "%s/%s/data.json", shared, names[i]);
    else snprintf(data, sizeof data, "%s/%s.data.json", dir, names[i]);
    grad_file(model, data);
    free(names[i]);
  }
}

/* ---- transforms ---- */

static void test_transforms(void) {
  grad_model("lower/upper bounds",
             "model {\n"
             "  real<lower=1> a ~ normal(2, 3);\n"
             "  real<upper=-1> b ~ normal(-2, 1);\n"
             "  real<lower=-2, upper=5> c ~ normal(0, 4);\n"
             "  real<lower=0, upper=1> p[3] ~ beta(2, 3);\n"
             "}\n",
             NULL, 1.0);
  grad_model("simplex", "model { simplex[4] s ~ dirichlet([1.5, 2, 3, 0.7]'); }\n", NULL, 1.0);
  grad_model("ordered",
             "model { ordered[4] o ~ normal(0, 3); positive_ordered[3] q ~ gamma(2, 1); }\n",
             NULL, 0.8);
  grad_model("cholesky_factor_corr",
             "model { cholesky_factor_corr[3] L ~ lkj_corr_cholesky(2.5); }\n", NULL, 0.8);
  /* unit_vector and cov_matrix have no proper family yet: flat() and a
     factor that reads them */
  grad_model("unit_vector and cov_matrix",
             "model {\n"
             "  unit_vector[3] v ~ flat();\n"
             "  cov_matrix[3] S ~ flat();\n"
             "  target += -0.5 * sum(S .* S) + 2 * v[1] - v[3] + log_determinant(S);\n"
             "}\n",
             NULL, 0.7);
  /* arrays of structured units, parameters that are latents themselves (the
     family's partials reach them), and values read after the draw (the
     value's adjoint goes back through the transform) */
  grad_model("structured latents with latent parameters",
             "model {\n"
             "  vector<lower=0>[3] alpha ~ gamma(3, 2);\n"
             "  simplex[3] G[2] ~ dirichlet(alpha);\n"
             "  real<lower=0> eta ~ gamma(4, 2);\n"
             "  cholesky_factor_corr[4] L ~ lkj_corr_cholesky(eta);\n"
             "  vector[3] m ~ normal(0, 2);\n"
             "  ordered[3] o ~ normal(m, 2);\n"
             "  positive_ordered[2] q[2] ~ lognormal(0, 1);\n"
             "  target += 3 * G[1, 2] - G[2, 3] + L[3, 2] * L[4, 1] + o[2] * q[2, 1];\n"
             "  [0.5, -1]' ~ multi_normal_cholesky(o[1:2], L[1:2, 1:2]);\n"
             "}\n",
             NULL, 0.6);
  grad_model("corr_matrix and cholesky_factor_cov",
             "model {\n"
             "  corr_matrix[3] R ~ flat();\n"
             "  cholesky_factor_cov[3] Lc ~ flat();\n"
             "  target += -2 * sum(R .* R) + R[2, 1] - 0.5 * sum(Lc .* Lc);\n"
             "  [0.4, -0.3, 1.2]' ~ multi_normal_cholesky(rep_vector(0, 3), Lc);\n"
             "  corr_matrix[2] Q[2] ~ flat();\n"
             "  target += 3 * Q[1, 2, 1] - square(Q[2, 1, 2]);\n"
             "}\n",
             NULL, 0.6);
  grad_model("unconstrained latents of whole-value families",
             "model {\n"
             "  vector[2] m ~ normal(0, 1);\n"
             "  cholesky_factor_corr[2] L ~ lkj_corr_cholesky(3);\n"
             "  vector[2] b[3] ~ multi_normal_cholesky(m, L);\n"
             "  vector[2] c ~ multi_normal([0.5, -1]', [[2, 0.3], [0.3, 1]]);\n"
             "  target += b[2, 1] * c[2] - square(b[3, 2]);\n"
             "}\n",
             NULL, 0.7);
  /* dot products and diagonal scalings (the JIT's fast_dot and block rules):
     latent by latent, data by latent, a value stored into after the product
     (the partials are copies), vectors and row vectors on either side */
  grad_model("dot products, diag_pre_multiply, diag_post_multiply",
             "model {\n"
             "  vector[3] a ~ normal(0, 1);\n"
             "  row_vector[3] r ~ normal(0, 1);\n"
             "  vector<lower=0>[3] d ~ gamma(2, 2);\n"
             "  matrix[3, 2] M ~ normal(0, 1);\n"
             "  row_vector[2] w ~ normal(0, 1);\n"
             "  matrix[2, 3] X = [[1.5, -2, 0.5], [0.25, 1, -0.75]];\n"
             "  target += r * a + dot_product(a, d) + dot(r, d) + dot_product(r, r);\n"
             "  target += X[1] * a - 0.5 * square(X[2] * d) + dot_product(X[2], r);\n"
             "  vector[3] v = a .* d;\n"
             "  real s = r * v;\n"
             "  v[2] = 7;\n"
             "  target += s * v[2] - square(s);\n"
             "  matrix[3, 2] P = diag_pre_multiply(d, M);\n"
             "  matrix[3, 2] Q = diag_post_multiply(M, w);\n"
             "  matrix[3, 2] R = diag_pre_multiply(r, M);\n"
             "  matrix[2, 3] T = diag_post_multiply(X, a);\n"
             "  target += sum(P .* Q) + 3 * P[2, 1] - Q[3, 2] + R[1, 2] * T[2, 3];\n"
             "  row_vector[2] m2 = M[2];\n"
             "  vector[3] c1 = M[:, 1];\n"
             "  target += m2 * [0.5, -1]' + dot_product(c1, d) + M[3, :] * M[:, 2][1:2] + X[2, :] * c1;\n"
             "  m2[1] = 4;\n"
             "  target += m2[1] * M[2, 1];\n"
             "  target += num_elements(M) * a[1] + size(r) * cols(M) * d[2] + (is_inf(a[3]) ? 1 : 0);\n"
             "  matrix[3, 2] N2 = M .* M;\n"
             "  target += sum(rows_dot_product(M, N2) .* d) + columns_dot_product(N2, M) * w'\n"
             "    + sum(rows_dot_product(a, d)) - sum(columns_dot_product(r, r));\n"
             "}\n",
             NULL, 0.6);
  grad_model("larger units: simplex[12], cholesky_factor_corr[6], cov_matrix[4]",
             "model {\n"
             "  simplex[12] s ~ dirichlet(rep_vector(1.3, 12));\n"
             "  cholesky_factor_corr[6] L ~ lkj_corr_cholesky(1.5);\n"
             "  cov_matrix[4] S ~ flat();\n"
             "  target += dot_self(s) * 4 + sum(L * L) - trace(S) + 2 * log_determinant(S);\n"
             "}\n",
             NULL, 0.5);
  /* scratch past the transforms' stack buffers (K^2 > 256, 4 K^2 > 256) */
  grad_model("larger units: cov_matrix[17], corr_matrix[9]",
             "model {\n"
             "  cov_matrix[17] S ~ flat();\n"
             "  corr_matrix[9] R ~ flat();\n"
             "  target += -0.5 * sum(S .* S) - sum(R .* R) + R[7, 2] + S[16, 3];\n"
             "}\n",
             NULL, 0.3);
  grad_model("bounds from parameters",
             "model {\n"
             "  real a ~ normal(0, 1);\n"
             "  real<lower=a> b ~ normal(a + 1, 2);\n"
             "  real<lower=a - 1, upper=b + 2> c ~ normal(0, 3);\n"
             "  real<upper=exp(a)> e ~ normal(0, 2);\n"
             "}\n",
             NULL, 0.8);
}

#ifdef TEST_JIT
/* Latents of every structured type, and of whole-value families, run with
   no tape in compiled code (jit_rt.c's fast_structured): a fallback to the
   interpreter's implementation would record one. */
static void test_transforms_tape_free(void) {
  static const char *const progs[][2] = {
      /* (parameters that are latents: a constant vector expression is a
         runtime call of its own, which records on a tape) */
      {"simplex", "model { vector<lower=0>[4] a ~ gamma(2, 2); simplex[4] s ~ dirichlet(a);\n"
                  "  vector<lower=0>[3] b ~ gamma(3, 1); simplex[3] G[2] ~ dirichlet(b); }\n"},
      {"ordered", "model { vector[3] m ~ normal(0, 2); ordered[3] o ~ normal(m, 2);\n"
                  "  positive_ordered[2] q[2] ~ lognormal(0, 1); }\n"},
      {"cholesky_factor_corr", "model { real<lower=0> eta ~ gamma(4, 2);\n"
                               "  cholesky_factor_corr[4] L ~ lkj_corr_cholesky(eta); }\n"},
      {"unit_vector, cov_matrix", "model { unit_vector[3] v ~ flat(); cov_matrix[3] S ~ flat();\n"
                                  "  target += -0.5 * sum(S .* S) + v[1]; }\n"},
      {"corr_matrix, cholesky_factor_cov",
       "model { corr_matrix[3] R ~ flat(); cholesky_factor_cov[3] Lc ~ flat();\n"
       "  target += -2 * sum(R .* R) - 0.5 * sum(Lc .* Lc); }\n"},
      {"multi_normal_cholesky latents",
       "model { vector[2] m ~ normal(0, 1); cholesky_factor_corr[2] L ~ lkj_corr_cholesky(3);\n"
       "  vector[2] b[3] ~ multi_normal_cholesky(m, L); }\n"},
      /* not transforms, but the same promise: dot products of vectors and
         diagonal scalings of matrices of latents (fast_dot, block rules) */
      {"dot products, diag_pre/post_multiply",
       "model { vector[3] a ~ normal(0, 1); row_vector[3] r ~ normal(0, 1);\n"
       "  vector<lower=0>[3] d ~ gamma(2, 2); matrix[3, 2] M ~ normal(0, 1);\n"
       "  row_vector[2] w ~ normal(0, 1);\n"
       "  target += r * a + dot_product(a, d) + dot(r, d);\n"
       "  matrix[3, 2] P = diag_pre_multiply(d, M); matrix[3, 2] Q = diag_post_multiply(M, w);\n"
       "  target += P[2, 1] * Q[3, 2] + dot_product(M[2], w) + dot(M[:, 2], a) - dot_product(M[1, :], w)\n"
       "    + num_elements(M) * a[1] + size(r) * d[2];\n"
       "  vector[3] rd = rows_dot_product(M, M); row_vector[2] cd = columns_dot_product(M, M);\n"
       "  target += rd[2] * cd[1]; }\n"},
  };
  for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
    LogDensity *ld = ld_of(progs[i][1], NULL, progs[i][0]);
    if (!ld || !tap_ok(ld_use_jit(ld, false), "%s: compiled (%s)", progs[i][0], ld_jit_refusal(ld)))
      continue;
    size_t n = ld_dim(ld);
    double *theta = calloc(n + 1, sizeof(double)), *g = calloc(n + 1, sizeof(double)), lp = NAN;
    for (size_t k = 0; k < n; k++) theta[k] = 0.3 * sin(1.0 + (double)k);
    int ntapes = -1;
    bool ok = ld_eval_grad_jit_tapes(ld, theta, &lp, g, &ntapes);
    tap_ok(ok && isfinite(lp) && ntapes == 0, "%s: compiled gradient records no tape (%d)",
           progs[i][0], ntapes);
    free(theta);
    free(g);
  }
}
#endif

/* ---- interpreter operations ---- */

static void test_interp_ops(void) {
  grad_model("broadcasting and elementwise",
             "model {\n"
             "  real a ~ normal(0, 1);\n"
             "  vector[3] v ~ normal(0, 1);\n"
             "  row_vector[3] r ~ normal(0, 1);\n"
             "  vector[3] w = (a * v + 2) ./ (1.5 + v .* v) - v / 3 + (v - a);\n"
             "  row_vector[3] s = 2 - r * a + r .* r;\n"
             "  target += w[1] * w[2] - w[3] ^ 2 + s[1] - s[3] * s[2] + a ^ 3 + (2 + a) ^ a;\n"
             "  target += -(a * a) + v[2] ^ 2 + (-v)[3] * 0.5 + fmod(a, 0.7);\n"
             "}\n",
             NULL, 0.8);
  grad_model("matrix products and transpose",
             "model {\n"
             "  matrix[2, 3] A ~ normal(0, 1);\n"
             "  vector[3] x ~ normal(0, 1);\n"
             "  row_vector[2] r ~ normal(0, 1);\n"
             "  matrix[3, 2] B = A';\n"
             "  vector[2] y = A * x;\n"
             "  matrix[2, 2] C = A * B;\n"
             "  row_vector[3] z = r * A;\n"
             "  matrix[3, 3] O = x * x';\n"
             "  real q = r * y;\n"
             "  target += y[1] * y[2] + C[1, 2] - C[2, 2] ^ 2 + z[3] * z[1] + O[2, 3] + q;\n"
             "  target += (x' * B)[2] + (B * [1, 2]')[3];\n"
             "}\n",
             NULL, 0.8);
  /* products with a matrix operand record one block node (stdlib/tensor.h):
   * data on one side, latents with scattered ids (a literal with a constant
   * element, a constrained matrix), a product of products, and stores into an
   * operand after the product (the block must keep the values it read) */
  grad_model("block matrix products",
             "model {\n"
             "  real a ~ normal(0, 1);\n"
             "  matrix[4, 5] A ~ normal(0, 1);\n"
             "  matrix<lower=0>[5, 3] B ~ lognormal(0, 0.5);\n"
             "  vector[5] x ~ normal(0, 1);\n"
             "  row_vector[4] r ~ normal(0, 1);\n"
             "  matrix[4, 5] L = A + 0;\n"
             "  matrix[5, 3] E = B * 1.0;\n"
             "  matrix[4, 3] C = L * E;\n"
             "  vector[4] y = L * x;\n"
             "  vector[5] w = [a, 1, a * a, x[2], -a]';\n"
             "  vector[4] u = A * w;\n"
             "  row_vector[5] z = r * L;\n"
             "  L[2, 3] = 7;\n"
             "  E[1, 1] = a;\n"
             "  matrix[4, 3] D = (L * E) * (B' * E);\n"
             "  target += C[1, 2] * C[4, 3] - C[2, 1] ^ 2 + y[3] * u[2] + z[5] * z[1] + u[4];\n"
             "  target += D[3, 2] * 0.01 - D[1, 1] * 0.02 + ([1, -1, 2, 0.5] * C)[2];\n"
             "}\n",
             NULL, 0.6);
  grad_model("indexing, slicing, stores and literals",
             "functions {\n"
             "  real f(vector v, real s) { return v[1] * s + sum(v[2:3]); }\n"
             "}\n"
             "model {\n"
             "  real a ~ normal(0, 1);\n"
             "  real b ~ normal(0, 1);\n"
             "  vector[4] v ~ normal(0, 1);\n"
             "  matrix[2, 2] M ~ normal(0, 1);\n"
             "  vector[3] w;\n"
             "  w[1] = a * b;\n"
             "  w[2:3] = v[3:4];\n"
             "  matrix[2, 2] N = M;\n"
             "  N[1, 2] = a;\n"
             "  N[2] = [b, a * 2];\n"
             "  N[:, 1] = v[1:2];\n"
             "  real arr[3] = {a, b, a * b};\n"
             "  arr[2] = v[4];\n"
             "  vector[3] lit = [a, 1, b]';\n"
             "  matrix[2, 2] ML = [[a, b], [1, a]];\n"
             "  real t = 0;\n"
             "  for (i in 1:3) t = t + w[i] * lit[i] + arr[i];\n"
             "  if (a > 0) t = t + a * M[2, 1]; else t = t - b * M[1, 2];\n"
             "  real c = b > 0 ? a * a : b;\n"
             "  target += t + c + N[1, 1] * N[1, 2] + N[2, 1] + N[2, 2] + f(v, a) + ML[1, 2] * ML[2, 2];\n"
             "  target += to_vector(arr)[3] + M[2][1];\n"
             "}\n",
             NULL, 0.8);
  grad_model("factor, observe with parameter arguments",
             "data { int N; vector[N] y; }\n"
             "model {\n"
             "  real mu ~ normal(0, 1);\n"
             "  real<lower=0> s ~ lognormal(0, 1);\n"
             "  y ~ normal(mu, s);\n"
             "  factor(-0.5 * mu * mu * s);\n"
             "}\n",
             ({
               static TData td;
               static const double yv[4] = {0.3, -1.2, 2.5, 0.1};
               tdata_init(&td);
               tdata_add(&td, "N", val_int(4));
               tdata_add(&td, "y", tvec(4, yv));
               &td;
             }),
             0.8);
  /* builtins of containers (element-wise from the scalar rules, the
     reductions log_sum_exp and sum of vectors and of local and data real
     arrays, softmax, log_softmax) and NAME_lpdf of containers, which the JIT
     lowers natively: operands that element stores change after the call (r,
     u), an -inf element, scalars and containers mixed */
  grad_model("container builtins and density calls of containers",
             "data { int N; vector[N] y; real z[N]; int k[N]; }\n"
             "model {\n"
             "  real mu ~ normal(0, 1);\n"
             "  real<lower=0> s ~ lognormal(0, 1);\n"
             "  vector[N] m ~ normal(mu, 2);\n"
             "  vector[N] r;\n"
             "  real u[N];\n"
             "  for (n in 1:N) { r[n] = y[n] - m[n]; u[n] = m[n] * z[n]; }\n"
             "  target += normal_lpdf(r | 0, s) + normal_lpdf(y | m, s) + cauchy_lpdf(z | mu, s);\n"
             "  target += student_t_lpdf(y | 3, m, s) + lognormal_lpdf(exp(m) | mu, s)\n"
             "            + poisson_log_lpmf(k | m) + gamma_lpdf(exp(r) | 2, s);\n"
             "  target += log_sum_exp(m) + log_sum_exp(u) + log_sum_exp(z) + sum(u) + sum(log1p_exp(m));\n"
             "  target += sum(log_softmax(m) .* y) + sum(softmax(r) .* y) + sum(inv_logit(m) .* square(r));\n"
             "  r[1] = -1.0 / 0.0;\n"
             "  u[2] = 3 * mu;\n"
             "  target += log_sum_exp(r) + log_sum_exp(u) + normal_lpdf(u | mu, s) + sum(lgamma(exp(m)));\n"
             "  vector[N] sm = softmax(m);\n"
             "  sm[2] = mu;\n"
             "  target += sum(sm .* y);\n"
             "}\n",
             ({
               static TData td;
               static const double yv[5] = {0.3, -1.2, 2.5, 0.1, -0.4};
               static const int kv[5] = {0, 3, 1, 7, 2};
               tdata_init(&td);
               tdata_add(&td, "N", val_int(5));
               tdata_add(&td, "y", tvec(5, yv));
               Value z = val_arr(5);
               for (int i = 0; i < 5; i++) z.a->e[i] = val_real(yv[4 - i] * 0.7);
               tdata_add(&td, "z", z);
               tdata_add(&td, "k", tints(5, kv));
               &td;
             }),
             0.6);
  /* NAME_rng of scalars in generated quantities: the compiled draw calls the
     families' samplers on the draw's stream (test_jit: the same draws as the
     interpreter's run) */
  grad_model("draws of scalar families in generated quantities",
             "model { real mu ~ normal(0, 1); real<lower=0> s ~ lognormal(0, 1); }\n"
             "generated {\n"
             "  real a = normal_rng(mu, s);\n"
             "  int k = poisson_rng(s);\n"
             "  int b = bernoulli_rng(inv_logit(mu));\n"
             "  real u = uniform_rng(mu, mu + s);\n"
             "  real g = gamma_rng(2, s) + exponential_rng(s) + student_t_rng(3, mu, s);\n"
             "  int n = binomial_rng(10, inv_logit(mu)) + neg_binomial_2_rng(s + 1, 2);\n"
             "  real c = cauchy_rng(mu, s) + lognormal_rng(mu, s) + beta_rng(s + 1, 2);\n"
             "}\n",
             NULL, 0.8);
  /* NAME_rng with containers among the parameters (y_rep = normal_rng(theta,
     sigma)): one native draw per element, scalars broadcast, int data arrays
     and real arrays read in place, discrete families into int[], an empty
     container into an empty array */
  grad_model("draws of containers in generated quantities",
             "data { int k[4]; real sg[4]; }\n"
             "model { real mu ~ normal(0, 1); real<lower=0> s ~ lognormal(0, 1);\n"
             "        vector[4] th ~ normal(mu, s); }\n"
             "generated {\n"
             "  real y_rep[4] = normal_rng(th, sg);\n"
             "  real z[4] = normal_rng(mu, sg);\n"
             "  real w[4] = student_t_rng(3, th, s + 1);\n"
             "  real t[4] = normal_rng(to_array_1d(th), s);\n"
             "  int c[4] = poisson_rng(exp(th));\n"
             "  int b[4] = bernoulli_rng(inv_logit(th));\n"
             "  int bn[4] = binomial_rng(k, inv_logit(th));\n"
             "  real u[4] = uniform_rng(th, th + s);\n"
             "  real e0[0] = normal_rng(th[1:0], 1);\n"
             "  real after = normal_rng(mu, s);\n"
             "}\n",
             ({
               static TData td;
               static const int kv[4] = {3, 4, 0, 10};
               static const double sv[4] = {1.5, 0.5, 2, 10};
               tdata_init(&td);
               tdata_add(&td, "k", tints(4, kv));
               Value sg = val_arr(4);
               for (int i = 0; i < 4; i++) sg.a->e[i] = val_real(sv[i]);
               tdata_add(&td, "sg", sg);
               &td;
             }),
             0.8);
}

/* ---- builtins ---- */

/* Each expression is the whole target of a model over a, p (in (0,1)),
   q (> 0), v (vector[3]), r (row_vector[3]), M (matrix[3,3]). */
static const char *const builtin_exprs[] = {
    "exp(a) + log(q) + log2(q) + log10(q) + log1p(q) + expm1(a)",
    "sqrt(q) + cbrt(q) + square(a) + inv(q) + inv_sqrt(q) + inv_square(q) + fabs(a) + abs(a)",
    "sin(a) + cos(a) + tan(0.3 * a) + asin(p) + acos(p) + atan(a)",
    "sinh(a) + cosh(a) + tanh(a) + asinh(a) + acosh(1 + q) + atanh(p - 0.5)",
    "lgamma(q) + tgamma(q + 0.5) + digamma(q + 0.3) + erf(a) + erfc(a)",
    "Phi(a) + Phi_approx(a) + inv_Phi(p) + logit(p) + inv_logit(a) + inv_cloglog(a)",
    "log_inv_logit(a) + log1m_inv_logit(a) + log1m(p) + log1p_exp(a) + log1m_exp(-q)",
    "pow(q, a) + fmin(a, v[1]) + fmax(a, v[2]) + fmod(q + 3, 1.3) + hypot(a, q)",
    "atan2(a, q) + lbeta(q, p + 1) + lchoose(q + 4, p + 1) + log_diff_exp(q + 1, a - 3)",
    "lmultiply(q, p) + multiply_log(p, q) + log_sum_exp(a, q) + log_mix(p, a, v[1])",
    "fma(a, q, p) + floor(a) + ceil(a) + round(a) + trunc(a) + step(a) + sum(exp(v))",
    "sum(v) + prod(v) + mean(r) + variance(v) + sd(r) + log_sum_exp(v) + min(v) + max(r)",
    "dot_product(v, r) + dot_self(v) + squared_distance(v, r') + distance(v, r') + norm1(v) + "
    "norm2(r)",
    "sum(softmax(v) .* [1, 2, 3]') + log_softmax(v)[2] + cumulative_sum(v)[3] * cumulative_sum(r)[2]",
    "log_mix(softmax(v), [a, q, p]') + sum(sort_asc(v) .* [1, 2, 3]') + sort_desc(r)[1]",
    "sum(rep_vector(a, 3) .* v) + rep_row_vector(q, 2)[2] + rep_matrix(a, 2, 2)[1, 2] * q + "
    "rep_array(q, 2)[1] * a",
    "to_vector(r)[2] * to_row_vector(v)[3] + to_vector(M)[4] + to_array_1d(v)[1] + "
    "to_matrix(v, 3, 1)[2, 1] + to_array_2d(M)[2, 3]",
    "sum(diag_matrix(v) * v) + diagonal(M)[2] + transpose(M)[1, 3] + append_row(v, a)[4] + "
    "sum(append_row(3, v) .* [1, 2, 3, 4]') + append_col(r, 2)[1] + "
    "append_col(r, q)[4] + block(M, 2, 2, 2, 2)[1, 2] + col(M, 1)[3] + row(M, 2)[1]",
    "sub_col(M, 1, 2, 2)[2] + sub_row(M, 3, 1, 2)[1] + head(v, 2)[2] + tail(r, 2)[1] + "
    "segment(v, 2, 2)[1] + reverse(v)[1] + append_array({a}, {q})[2]",
    "sum(exp(M)) + sum(log(exp(v) + 1)) + sum(square(r)) + sum(pow(v, 2)) + sum(pow(q, v))",
    "sum(inv_logit(M) .* M) + sum(fmax(v, 0.1)) + sum(lgamma(exp(r)))",
    "sum(crossprod(M)) + tcrossprod(M)[1, 2] + sum(multiply_lower_tri_self_transpose(M)) + "
    "quad_form(M, v) + sum(quad_form(M, M))",
    "sum(quad_form_sym(add_diag(crossprod(M), 1), M)) + "
    "quad_form_sym(add_diag(crossprod(M), 1.0), v)",
    "sum(diag_pre_multiply(v, M)) + sum(diag_post_multiply(M, r)) + sum(quad_form_diag(M, v)) + "
    "sum(add_diag(M, v)) + sum(add_diag(M, a)) + trace(M)",
    "sum(columns_dot_product(M, M)) + sum(rows_dot_product(M, crossprod(M))) + "
    "sum(columns_dot_self(M)) + sum(rows_dot_self(M)) + sum(columns_dot_product(v, v))",
    "sum(cholesky_decompose(add_diag(crossprod(M), 1))) + sum(inverse(add_diag(M, 4))) + "
    "log_determinant(add_diag(M, 4)) + determinant(M)",
    "sum(mdivide_left_tri_low(add_diag(M, 4), v)) + sum(mdivide_right_tri_low(r, add_diag(M, 4))) + "
    "sum(mdivide_left(add_diag(M, 4), v)) + sum(mdivide_right(r, add_diag(M, 4))) + "
    "sum(mdivide_left_tri_low(add_diag(M, 4), M)) + sum(mdivide_right_tri_low(M, add_diag(M, 4)))",
    "sum(inverse_spd(add_diag(crossprod(M), 1))) + log_determinant_spd(add_diag(crossprod(M), 1)) + "
    "sum(mdivide_left_spd(add_diag(crossprod(M), 1), v)) + sum(solve(add_diag(M, 4), M))",
    "sum(gp_exp_quad_cov({a, q, p}, q, exp(a))) + sum(gp_exp_quad_cov({v, r'}, q + 0.5, 1.3)) + "
    "sum(gp_exp_quad_cov({a}, {q, p}, q, 2.0)) + sum(cov_exp_quad({1.0, 2.5}, q, p + 1))",
    /* single entries of K(x, x) above and below the diagonal (its nodes are shared
       between (i, j) and (j, i)), and a GP covariance inside multi_normal */
    "gp_exp_quad_cov({v, r'}, q, 1.3)[1, 2] * 3 + gp_exp_quad_cov({a, q, p}, 1.5, q)[3, 1] + "
    "gp_exp_quad_cov({a, q, p}, p, 2.0)[1, 3] * 2 + "
    "multi_normal_lpdf(v, r', add_diag(gp_exp_quad_cov({a, q, p}, q + 0.5, exp(a)), p + 0.1))",
    /* the block rules (one matrix-valued node each: builtins.h) under adjoints that
       differ entry by entry, not sum()'s ones: a Cholesky factor's entries
       weighted, and read above its diagonal (zeros); add_diag of a vector and
       of a scalar; a cross covariance with latent points; a GP with a latent f */
    "cholesky_decompose(add_diag(crossprod(M), 1))[3, 1] * 2 + "
    "cholesky_decompose(add_diag(tcrossprod(M), q))[2, 2] * a + "
    "sum(cholesky_decompose(add_diag(crossprod(M), p)) .* M) + "
    "cholesky_decompose(add_diag(crossprod(M), 1))[1, 3]",
    "sum(add_diag(M, v) .* M) + add_diag(M, a)[2, 2] * q + add_diag(M, r)[3, 1] * a + "
    "gp_exp_quad_cov({v, r'}, {r', v, v}, q, p + 1)[2, 3] * 2 + "
    "sum(gp_exp_quad_cov({a, q}, {p, a, 2.0}, 1.5, q) * [1, 2, 3]')",
    "multi_normal_cholesky_lpdf(v, rep_vector(0, 3), "
    "cholesky_decompose(add_diag(gp_exp_quad_cov({a, q, p}, q, exp(a)), 0.1 + p))) + "
    "multi_normal_lpdf(v, r', add_diag(gp_exp_quad_cov({v, r', v + 1}, q, 1.2 + p), p))",
    "normal_lpdf(v, a, q) + poisson_lpmf(3, q) + gamma_lpdf(q, 2, 1.5) + beta_lpdf(p, q, 2) + "
    "student_t_lpdf(a, q + 1, v[1], 2) + multi_normal_lpdf(v, r', add_diag(crossprod(M), 1))",
    /* trigamma on both sides of its reflection; fdim away from its kink */
    "trigamma(q + 0.2) + 0.01 * trigamma(-0.5 - 0.3 * p) + trigamma(12 + a) + fdim(a, 0.3) + "
    "fdim(q, a - 5) + fdim(-3, q) + sum(fdim(v, r'))",
    /* incomplete gamma and beta, in the bulk and (through log) deep in a tail */
    "inc_beta(q + 0.5, p + 1, p) + gamma_p(q + 0.3, 4 * p) + gamma_q(q + 1, 2 * p) + "
    "inc_beta(2, 3, p) + gamma_p(2.5, q) + gamma_q(q, 1.5)",
    "log(gamma_q(q + 1, 25 + q)) + log(gamma_p(q + 30, 2 + p)) + log(inc_beta(q + 20, 2, p)) + "
    "log(inc_beta(2, q + 20, 1 - p)) + log(gamma_p(q + 1, 30 + q))",
    /* the families' CDF builtins: scalars, broadcasting over containers, discrete x */
    "normal_lcdf(a, v[1], q) + normal_lccdf(v, a, q + 0.5) + normal_cdf(a, 0.2, q) + "
    "gamma_lcdf(q, 2, p + 1) + exponential_lccdf(q, p + 0.5) + beta_cdf(p, q + 1, 2)",
    "student_t_lcdf(a, q + 1, 0, 2) + poisson_lcdf(3, q) + poisson_lccdf({1, 2}, q) + "
    "weibull_lccdf(q, p + 1, 2) + lognormal_cdf(q, a, 1.5) + logistic_lcdf(r, a, q) + "
    "neg_binomial_2_lccdf(2, q, p + 1) + std_normal_lcdf(a) + cauchy_lccdf(v, a, q)",
};

static void test_builtins(void) {
  char src[2048], what[64];
  for (size_t k = 0; k < sizeof builtin_exprs / sizeof builtin_exprs[0]; k++) {
    snprintf(src, sizeof src,
             "model {\n"
             "  real a ~ normal(0, 1);\n"
             "  real<lower=0.05, upper=0.95> p ~ uniform(0.05, 0.95);\n"
             "  real<lower=0> q ~ gamma(3, 2);\n"
             "  vector[3] v ~ normal(0, 1);\n"
             "  row_vector[3] r ~ normal(0, 1);\n"
             "  matrix[3, 3] M ~ normal(0, 1);\n"
             "  target += %s;\n"
             "}\n",
             builtin_exprs[k]);
    snprintf(what, sizeof what, "builtins %zu", k + 1);
    grad_model(what, src, NULL, 0.6);
  }
}

static void test_no_rule(void) {
  LogDensity *ld =
      ld_of("model { real a ~ normal(0, 1); target += quantile([a, 0.1, 2]', 0.5); }\n", NULL,
            "quantile model");
  if (!ld) return;
  double th = 0.2, lp, g;
  Diag d;
  diag_init(&d);
  bool ok = ld_eval_grad(ld, &th, &lp, &g, &d);
  tap_ok(!ok && strstr(d.msg, "gradient of 'quantile' is not implemented") != NULL,
         "a builtin without a derivative rule is an error: %s", d.msg);
  diag_init(&d);
  tap_ok(ld_eval(ld, &th, &lp, &d), "... while ld_eval of the same model works");
}

/* ---- threads ---- */

typedef struct {
  const LogDensity *ld;
  double sum;
} ThreadArg;

static void grad_loop(ThreadArg *a) {
  LdWork *w = ld_work_new(a->ld);
  size_t n = ld_dim(a->ld);
  double th[16], g[16];
  for (int i = 0; i < 200; i++) {
    for (size_t k = 0; k < n; k++) th[k] = 0.01 * i - 0.02 * (double)k;
    double lp = 0;
    Diag d;
    diag_init(&d);
    ld_eval_grad_w(w, th, &lp, g, &d);
    a->sum += lp;
    for (size_t k = 0; k < n; k++) a->sum += g[k] * (double)(k + 1);
  }
}

static void *grad_thread(void *p) {
  gc_thread_enter();
  grad_loop(p);
  gc_thread_leave();
  return NULL;
}

static void test_threads(void) {
  LogDensity *ld = ld_of("model {\n"
                         "  real mu ~ normal(0, 5);\n"
                         "  real<lower=0> tau ~ cauchy(0, 5);\n"
                         "  vector[8] eta ~ normal(0, 1);\n"
                         "  vector[8] th = mu + tau * eta;\n"
                         "  [28, 8, -3, 7, -1, 1, 18, 12]' ~ normal(th, [15, 10, 16, 11, 9, 11, 10, 18]');\n"
                         "}\n",
                         NULL, "threads model");
  if (!ld) return;
  ThreadArg serial = {ld, 0}, a = {ld, 0}, b = {ld, 0};
  grad_loop(&serial);
  pthread_t t1, t2;
  pthread_create(&t1, NULL, grad_thread, &a);
  pthread_create(&t2, NULL, grad_thread, &b);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  tap_ok(a.sum == serial.sum && b.sum == serial.sum,
         "two threads computing gradients at once agree with the serial result");
}

/* Observations of a + X * b over a data matrix X, which the JIT fuses into
   one pass over X's rows in blocks (jit_native.c, jg_emit_glm): families
   normal, bernoulli_logit, poisson_log; a scalar, a data vector or none; X * b
   + a; N = 44,000 rows (X over 1 MB, the size from which it is fused), eleven
   blocks and a short last one.  Beside
   them shapes that must not be fused, still right: X a parameter, a sigma
   per row, the location read again elsewhere, b assigned twice. */
static void test_glm(void) {
  enum { N = 44000, K = 3 }; /* X 1.06 MB: fused from 1 MB */
  uint64_t s = 12345;
  Value X = val_mat(N, K), yr = val_vec(N), off = val_vec(N), sd = val_vec(N);
  Value yb = val_arr(N), yc = val_arr(N);
  for (int i = 0; i < N * K; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    X.t->d[i] = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 2;
  }
  for (int i = 0; i < N; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    double u = (double)(s >> 11) / 9007199254740992.0;
    yr.t->d[i] = 4 * u - 2;
    off.t->d[i] = 0.3 * u;
    sd.t->d[i] = 0.5 + u;
    yb.a->e[i] = val_int(u < 0.4);
    yc.a->e[i] = val_int((int)(5 * u));
  }
  TData td;
  tdata_init(&td);
  tdata_add(&td, "X", X);
  tdata_add(&td, "yr", yr);
  tdata_add(&td, "yb", yb);
  tdata_add(&td, "yc", yc);
  tdata_add(&td, "off", off);
  tdata_add(&td, "sd", sd);
#define GLM_DATA "data {\n  matrix[44000, 3] X;\n  vector[44000] yr;\n  int yb[44000];\n  int yc[44000];\n" \
                 "  vector[44000] off;\n  vector[44000] sd;\n}\n"
  grad_model("glm: bernoulli_logit(a + X * b)",
             GLM_DATA "model {\n  real a ~ normal(0, 1);\n  vector[3] b ~ normal(0, 1);\n"
                      "  yb ~ bernoulli_logit(a + X * b);\n}\n", &td, 0.8);
  grad_model("glm: normal(X * b + a, sigma)",
             GLM_DATA "model {\n  real a ~ normal(0, 1);\n  vector[3] b ~ normal(0, 1);\n"
                      "  real<lower=0> sigma ~ lognormal(0, 1);\n  yr ~ normal(X * b + a, sigma);\n}\n",
             &td, 0.8);
  grad_model("glm: poisson_log(X * b), poisson_log(off + X * b)",
             GLM_DATA "model {\n  vector[3] b ~ normal(0, 1);\n  yc ~ poisson_log(X * b);\n"
                      "  yc ~ poisson_log(off + X * b);\n}\n", &td, 0.5);
  grad_model("glm not fused: a sigma per row, the location read again",
             GLM_DATA "model {\n  real a ~ normal(0, 1);\n  vector[3] b ~ normal(0, 1);\n"
                      "  yr ~ normal(a + X * b, sd);\n  vector[44000] eta = a + X * b;\n"
                      "  yr ~ normal(eta, 2);\n  target += eta[7];\n}\n", &td, 0.8);
  grad_model("glm not fused: b assigned twice, X a parameter",
             GLM_DATA "model {\n  real a ~ normal(0, 1);\n  vector[3] b ~ normal(0, 1);\n"
                      "  matrix[4, 3] Z ~ normal(0, 1);\n  vector[3] c = b;\n  c = c * 2;\n"
                      "  yr ~ normal(a + X * c, 1.5);\n  yr[1:4] ~ normal(a + Z * b, 1.5);\n}\n", &td, 0.8);
#undef GLM_DATA
}

int main(int argc, char **argv) {
#if defined(TEST_JIT) && !PPL_HAVE_LLVM
  printf("1..0 # SKIP ppl was built without LLVM (-Djit=disabled)\n");
  return 0;
#endif
  gc_init();
  test_transforms();
#ifdef TEST_JIT
  test_transforms_tape_free();
#endif
  test_interp_ops();
  test_builtins();
  test_no_rule();
  test_glm();
  test_threads();
  if (argc >= 2) {
    grad_dir(argv[1], NULL);
    char pdb[1024];
    snprintf(pdb, sizeof pdb, "%s/posteriordb", argv[1]);
    grad_dir(pdb, NULL);
  }
  if (argc >= 4) grad_dir(argv[2], argv[3]);
#ifdef TEST_JIT
  tap_diag("%d log densities compiled, %d left to the interpreter", jit_compiled, jit_refused);
#endif
  return tap_done();
}
