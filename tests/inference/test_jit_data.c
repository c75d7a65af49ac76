/* test_jit_data.c — one compiled program, many data sets: data are
 * arguments of the compiled code, not constants in it (ir/jit.h).
 *
 * Each program is lowered once and given two data sets of the same sizes
 * (two interpreters of one IrProgram).  The log density is compiled for the
 * first; the second uses that code with its own data (ld_use_jit_of).  At
 * random points both give the interpreter's log density and gradient on
 * their own data to 1e-12, and differ from each other (the data did
 * change); compiled draws match interpreted draws on the second data set.
 * Data that differ in what the code folds (an int size, latents' sizes) are
 * refused with a message.  Covered: containers of reals and ints, matrices, a real scalar
 * as a prior's scale and as a truncation bound, logs of data made per data
 * set (normal's sigma), the generated block.
 */
#include <stdio.h>

#include "inference/logdensity.h"
#include "ppl_config.h"
#include "stdlib/rng.h"
#include "test_engines_util.h"

static bool close12(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= 1e-12 * fmax(1, fmax(fabs(a), fabs(b)));
}

static Interp *with_data(IrProgram *p, TData *td, Diag *d) {
  Interp *in = interp_new(p, NULL);
  return interp_load_data(in, &td->src, d) ? in : NULL;
}

/* random data of the shapes the programs below take */
static Value rvec(Rng *r, int n, double lo, double hi) {
  Value v = val_vec(n);
  for (int i = 0; i < n; i++) v.t->d[i] = lo + (hi - lo) * rng_uniform(r);
  return v;
}
static Value rarr(Rng *r, int n, double lo, double hi) {
  Value v = val_arr(n);
  for (int i = 0; i < n; i++) v.a->e[i] = val_real(lo + (hi - lo) * rng_uniform(r));
  return v;
}
static Value rbits(Rng *r, int n) {
  Value v = val_arr(n);
  for (int i = 0; i < n; i++) v.a->e[i] = val_int(rng_uniform(r) < 0.5);
  return v;
}
static Value rmat(Rng *r, int rows, int cols) {
  Value v = val_mat(rows, cols);
  for (int i = 0; i < rows * cols; i++) v.t->d[i] = rng_normal(r);
  return v;
}

typedef void (*MakeData)(TData *td, Rng *r, int variant);

static void schools(TData *td, Rng *r, int variant) {
  int J = variant == 2 ? 9 : 8;
  tdata_add(td, "J", val_int(J));
  tdata_add(td, "y", rarr(r, J, -10, 30));
  tdata_add(td, "sigma", rarr(r, J, 5, 20));
}
static const char *schools_src =
    "data { int<lower=0> J; real y[J]; real<lower=0> sigma[J]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 5);\n"
    "  real<lower=0> tau ~ cauchy(0, 5);\n"
    "  vector[J] eta ~ normal(0, 1);\n"
    "  vector[J] theta = mu + tau * eta;\n"
    "  y ~ normal(theta, sigma);\n"
    "}\n"
    "generated { real y_rep[J] = normal_rng(theta, sigma); }\n";

static void logit(TData *td, Rng *r, int variant) {
  int N = 40, K = variant == 2 ? 4 : 3;
  tdata_add(td, "N", val_int(N));
  tdata_add(td, "K", val_int(K));
  tdata_add(td, "X", rmat(r, N, K));
  tdata_add(td, "y", rbits(r, N));
}
static const char *logit_src =
    "data { int N; int K; matrix[N, K] X; int y[N]; }\n"
    "model {\n"
    "  real alpha ~ normal(0, 5);\n"
    "  vector[K] beta ~ normal(0, 2.5);\n"
    "  y ~ bernoulli_logit(X * beta + alpha);\n"
    "}\n";

static void scales(TData *td, Rng *r, int variant) {
  int M = variant == 2 ? 6 : 5;
  tdata_add(td, "s", val_real(0.5 + 3 * rng_uniform(r)));
  tdata_add(td, "lo", val_real(-1 + rng_uniform(r)));
  tdata_add(td, "M", val_int(M));
  tdata_add(td, "z", rvec(r, M, -2, 2));
}
static const char *scales_src =
    "data { real<lower=0> s; real lo; int M; vector[M] z; }\n"
    "model {\n"
    "  real<lower=lo> x ~ normal(0, s);\n"
    "  real<lower=0> w ~ gamma(2, s);\n"
    "  z ~ normal(x * s, w + s);\n"
    "}\n";

static void one_program(const char *what, const char *src, MakeData make, Rng *r) {
  Diag d;
  IrProgram *p = tlower(src, &d);
  if (!tap_ok(p != NULL, "%s: lowers (%s)", what, d.msg)) return;
  TData da, db, dc;
  tdata_init(&da);
  tdata_init(&db);
  tdata_init(&dc);
  make(&da, r, 0);
  make(&db, r, 1);
  make(&dc, r, 2);
  Interp *ia = with_data(p, &da, &d), *ib = with_data(p, &db, &d), *ic = with_data(p, &dc, &d);
  if (!tap_ok(ia && ib && ic, "%s: three data sets load (%s)", what, d.msg)) return;
  LogDensity *la = ld_new(ia, &d), *lb = ld_new(ib, &d), *lbi = ld_new(ib, &d), *lai = ld_new(ia, &d);
  if (!tap_ok(la && lb && lbi && lai, "%s: log densities (%s)", what, d.msg)) return;
  bool compiled = ld_use_jit(la, false);
  if (!tap_ok(compiled, "%s: compiles (%s)", what, ld_backend(la))) return;
  diag_init(&d);
  if (!tap_ok(ld_use_jit_of(lb, la, &d), "%s: the second data set takes the first's code (%s)", what,
              d.msg))
    return;
  size_t n = ld_dim(la);
  double *th = malloc(sizeof(double) * n), *g1 = malloc(sizeof(double) * n),
         *g2 = malloc(sizeof(double) * n);
  int bad = 0, differ = 0;
  for (int rep = 0; rep < 20; rep++) {
    for (size_t i = 0; i < n; i++) th[i] = 2 * rng_uniform(r) - 1;
    for (int set = 0; set < 2; set++) {
      LogDensity *jit = set ? lb : la, *ref = set ? lbi : lai;
      double lj, li;
      Diag e;
      diag_init(&e);
      bool ok = ld_eval_grad_jit(jit, th, &lj, g1) && ld_eval_grad(ref, th, &li, g2, &e) &&
                close12(lj, li);
      for (size_t i = 0; ok && i < n; i++) ok = close12(g1[i], g2[i]);
      if (!ok && bad++ == 0) tap_diag("%s: data set %d at rep %d: lp %.17g, interpreter %.17g", what, set, rep, lj, li);
    }
    double l1, l2;
    ld_eval_grad_jit(la, th, &l1, g1);
    ld_eval_grad_jit(lb, th, &l2, g1);
    differ += l1 != l2;
  }
  tap_ok(bad == 0, "%s: compiled once, both data sets give the interpreter's lp and gradient (1e-12)", what);
  tap_ok(differ == 20, "%s: and the two data sets give different log densities", what);
  /* draws on the second data set */
  const IrProgram *pp = interp_program(ib);
  if (pp->noutputs > 0) {
    LdWork *w = ld_work_new(lb);
    int dbad = 0;
    for (int rep = 0; rep < 5; rep++) {
      for (size_t i = 0; i < n; i++) th[i] = 2 * rng_uniform(r) - 1;
      Value *a = ld_draw_jit(w, th, 7, (uint64_t)rep);
      Value *b = ld_draw_interp(lbi, th, 7, (uint64_t)rep, &d);
      if (!a || !b) {
        dbad++;
        continue;
      }
      for (int o = 0; o < pp->noutputs; o++) {
        size_t m = val_numel(a[o]);
        double *x = malloc(sizeof(double) * (m + 1)), *y = malloc(sizeof(double) * (m + 1));
        val_flatten(a[o], x);
        val_flatten(b[o], y);
        for (size_t k = 0; k < m; k++) dbad += !close12(x[k], y[k]);
        free(x), free(y);
      }
    }
    tap_ok(dbad == 0, "%s: compiled draws on the second data set equal interpreted ones", what);
  }
  /* sizes the code folded differ: refused */
  LogDensity *lc = ld_new(ic, &d);
  if (lc) {
    diag_init(&d);
    bool took = ld_use_jit_of(lc, la, &d);
    tap_ok(!took && strstr(d.msg, "cannot use the compiled code"), "%s: other sizes are refused: %s",
           what, d.msg);
  }
  free(th), free(g1), free(g2);
}

int main(void) {
#if !PPL_HAVE_LLVM
  printf("1..0 # SKIP ppl was built without LLVM (-Djit=disabled)\n");
  return 0;
#endif
  gc_init();
  Rng r;
  rng_seed(&r, 424242, 0);
  one_program("eight schools", schools_src, schools, &r);
  one_program("logistic regression", logit_src, logit, &r);
  one_program("data scales and bounds", scales_src, scales, &r);
  return tap_done();
}
