/* test_jit_lsum.c — a density summed by compiled vector code takes the log
 * of a product of its kernel's lsum arguments once per block of elements
 * (stdlib/dist_kernel.h's lsum; ir/jit_native.c, dens_loop) instead of one
 * log per element.  bernoulli_logit is the family that has one.
 *
 *  - The contract, for every family with an lsum, on points across the
 *    range of doubles: lp is the description evaluated with that log set to
 *    0 plus lsum_sign times the log of its argument (to 2 ulp of lp, or
 *    both -inf), the argument lies in [1, lsum_hi], and the partials do not
 *    read the log (the same bits either way).
 *  - The sums: y ~ bernoulli_logit(x * b + a) compiled against the
 *    interpreter (a log per element, libm's), value and gradient to 1e-12
 *    relative, for sizes below one block, at one block, across several
 *    blocks with a tail, with |x b| large enough that exp(-|t|) underflows
 *    (u = 1), and with a y outside {0, 1} (both -inf); the batched log
 *    density (ld_eval_batch, the ELBO's) gives what one point at a time
 *    gives, bit for bit; a gradient after evaluations without one gives
 *    the bits it gave before them (those do not zero adjoints).
 */
#include <stdio.h>

#include "inference/logdensity.h"
#include "ppl_config.h"
#include "stdlib/dist.h"
#include "stdlib/dist_kernel.h"
#include "stdlib/rng.h"
#include "test_engines_util.h"

static bool close12(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= 1e-12 * fmax(1, fmax(fabs(a), fabs(b)));
}

static bool same_bits(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return memcmp(&a, &b, sizeof a) == 0;
}

/* the description at (x, p) with the lsum log as written (lp, partials)
   and set to 0 (lp0, partials0), and the log's argument */
static void run_split(const DistKernel *k, double x, const double *p, double *lp, double *lp0,
                      double *arg, double *d, double *d0) {
  double r[DK_MAXREG], r0[DK_MAXREG];
  r[DK_X] = x;
  for (int i = 0; i < k->np; i++) r[DK_P(i)] = p[i];
  dk_run(k->ins, NULL, 0, k->n, r);
  memcpy(r0, r, sizeof r0);
  int j = k->lsum - DK_FIRST;
  dk_run(k->ins, NULL, 0, j, r0);
  r0[k->lsum] = 0;
  dk_run(k->ins, NULL, j + 1, k->n, r0);
  *lp = r[k->lp], *lp0 = r0[k->lp], *arg = r[k->ins[j].a];
  for (int i = 0; i < k->np; i++) {
    d[i] = k->dp[i] == DK_NONE ? 0 : r[k->dp[i]];
    d0[i] = k->dp[i] == DK_NONE ? 0 : r0[k->dp[i]];
  }
}

static double ulp_of(double a) { return fabs(nextafter(a, INFINITY) - a); }

static void check_contract(const DistFamily *f, Rng *rg) {
  const DistKernel *k = f->kernel;
  tap_ok(k->ins[k->lsum - DK_FIRST].op == DK_LOG && (k->lsum_sign == 1 || k->lsum_sign == -1) &&
             k->lsum_hi > 1,
         "%s: its lsum is a log, with a sign and a bound", f->name);
  static const double special[] = {0, -0.0, 1, -1, 0.5, 2, 36, -36, 37.5, -37.5, 708, -708, 745,
                                   -745, 1e300, -1e300, INFINITY, -INFINITY};
  const int nsp = (int)(sizeof special / sizeof special[0]);
  int bad = 0, n = 0, finite = 0;
  for (int i = 0; i < 4000 + nsp; i++) {
    double p[4];
    for (int q = 0; q < k->np; q++)
      p[q] = i < nsp ? special[(i + q) % nsp]
                     : (rng_uniform(rg) < 0.5 ? -1 : 1) * pow(10, -300 + 600 * rng_uniform(rg));
    double x = f->discrete ? (double)(i % 3) : rng_normal(rg); /* 2: outside the support */
    double lp, lp0, arg, d[4], d0[4];
    run_split(k, x, p, &lp, &lp0, &arg, d, d0);
    if (isnan(lp)) continue;
    n++;
    double back = lp0 + k->lsum_sign * log(arg);
    bool ok = arg >= 1 && arg <= k->lsum_hi &&
              (isinf(lp) ? back == lp : fabs(back - lp) <= 2 * ulp_of(lp) + 1e-300);
    for (int q = 0; q < k->np; q++) ok = ok && same_bits(d[q], d0[q]);
    finite += isfinite(lp);
    if (!ok && bad++ == 0)
      tap_diag("%s: x %.17g p0 %.17g: lp %.17g, without the log %.17g, arg %.17g", f->name, x, p[0],
               lp, lp0, arg);
  }
  tap_ok(bad == 0 && finite > 1000,
         "%s: lp = the rest + %+d log(arg), arg in [1, %g], partials without the log, at %d points "
         "(%d finite)",
         f->name, k->lsum_sign, k->lsum_hi, n, finite);
}

static const char *logit_src = "data { int N; vector[N] x; int y[N]; }\n"
                               "model {\n"
                               "  real a ~ normal(0, 1);\n"
                               "  real b ~ normal(0, 1);\n"
                               "  y ~ bernoulli_logit(x * b + a);\n"
                               "}\n";

/* N elements; scale: |x| up to it; bad: one y is 2 */
static void one_size(int N, double scale, bool bad_y, Rng *r) {
  const char *what = gc_printf("bernoulli_logit N=%d |x|<=%g%s", N, scale, bad_y ? ", a y of 2" : "");
  Diag d;
  IrProgram *p = tlower(logit_src, &d);
  if (!tap_ok(p != NULL, "%s: lowers (%s)", what, d.msg)) return;
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(N));
  Value x = val_vec(N), y = val_arr(N);
  for (int i = 0; i < N; i++) {
    x.t->d[i] = scale * (2 * rng_uniform(r) - 1);
    y.a->e[i] = val_int(bad_y && i == N / 2 ? 2 : rng_uniform(r) < 0.5);
  }
  tdata_add(&td, "x", x);
  tdata_add(&td, "y", y);
  Interp *in = interp_new(p, NULL);
  if (!tap_ok(interp_load_data(in, &td.src, &d), "%s: data load (%s)", what, d.msg)) return;
  LogDensity *lj = ld_new(in, &d), *li = ld_new(in, &d);
  bool compiled = lj && li && ld_use_jit(lj, false);
  if (!tap_ok(compiled, "%s: compiles (%s)", what, lj ? ld_backend(lj) : d.msg)) return;
  enum { S = 20 };
  double th[2 * S], lpb[S], g1[2], g2[2];
  int bad = 0, batchbad = 0;
  for (int s = 0; s < S; s++) {
    th[2 * s] = 2 * rng_uniform(r) - 1, th[2 * s + 1] = 2 * rng_uniform(r) - 1;
    double a, b;
    Diag e;
    diag_init(&e);
    bool ok = ld_eval_grad_jit(lj, th + 2 * s, &a, g1) && ld_eval_grad(li, th + 2 * s, &b, g2, &e) &&
              close12(a, b) && (!bad_y || a == -INFINITY);
    if (!bad_y) ok = ok && close12(g1[0], g2[0]) && close12(g1[1], g2[1]);
    if (!ok && bad++ == 0)
      tap_diag("%s: at (%g, %g): compiled %.17g, interpreter %.17g", what, th[2 * s], th[2 * s + 1], a, b);
  }
  Diag fail;
  diag_init(&fail);
  diag_init(&d);
  bool bok = ld_eval_batch(ld_work_new(lj), S, th, lpb, &fail, &d);
  for (int s = 0; bok && s < S; s++) {
    double a;
    Diag e;
    diag_init(&e);
    batchbad += !ld_eval(lj, th + 2 * s, &a, &e) || !same_bits(a, lpb[s]);
  }
  /* a gradient after evaluations without one (whose boxes' adjoints are
     not zeroed: jit_rt_tensor) is the one before them, bit for bit */
  double a0, a1, h0[2], h1[2];
  bool again = ld_eval_grad_jit(lj, th, &a0, h0);
  for (int s = 0; s < S; s++) {
    double a;
    Diag e;
    diag_init(&e);
    again = again && ld_eval(lj, th + 2 * s, &a, &e);
  }
  again = again && ld_eval_grad_jit(lj, th, &a1, h1) && same_bits(a0, a1) &&
          (bad_y || (same_bits(h0[0], h1[0]) && same_bits(h0[1], h1[1])));
  tap_ok(again, "%s: a gradient after log densities alone is the same, bit for bit", what);
  tap_ok(bad == 0, "%s: compiled = the interpreter (1e-12), value%s", what,
         bad_y ? " (-inf)" : " and gradient");
  tap_ok(bok && batchbad == 0, "%s: the batch (ld_eval_batch) = one point at a time, bit for bit",
         what);
}

int main(void) {
#if !PPL_HAVE_LLVM
  printf("1..0 # SKIP ppl was built without LLVM (-Djit=disabled)\n");
  return 0;
#endif
  gc_init();
  Rng r;
  rng_seed(&r, 20261208, 0);
  int nk = 0;
  for (const DistFamily *const *f = dist_all(); *f; f++)
    if ((*f)->kernel && (*f)->kernel->lsum) check_contract(*f, &r), nk++;
  tap_ok(nk >= 1, "%d famil%s with an lsum (bernoulli_logit among them)", nk, nk == 1 ? "y" : "ies");
  static const int sizes[] = {7, 1024, 1031, 5003};
  for (int i = 0; i < 4; i++) one_size(sizes[i], 4, false, &r);
  one_size(3000, 1000, false, &r); /* exp(-|t|) underflows: u = 1 */
  one_size(2053, 4, true, &r);
  return tap_done();
}
