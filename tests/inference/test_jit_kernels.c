/* test_jit_kernels.c — the JIT's inline densities against the families'
 * kernel descriptions (stdlib/dist_kernel.h), which are also what the
 * interpreter runs.
 *
 * For every family with a description, over 4000 points drawn across the
 * whole range of doubles (|x| from 1e-300 to 1e300, parameters likewise) plus
 * the awkward values (0, +-1, +-inf, NaN, the boundaries of the support and
 * of exp's range):
 *  - the scalar code the JIT emits, the family's C kernels (lpdf1 and
 *    lpdf_grad1, expanded from the same list of instructions) and the
 *    evaluator of the description agree bit for bit: log density and every
 *    partial;
 *  - the 2-, 4- and 8-wide code (where this CPU has that vector math) equals
 *    bit for bit the C evaluator with libmvec's log and exp in place of
 *    libm's, lane by lane, and log1p(x) as the emitter's vector code computes
 *    it (libmvec's log(1 + x) less the correction for the sum's rounding,
 *    jit_native.c's vlog1p): the emitter adds nothing else of its own;
 *  - libmvec's log and exp, and that log1p, are within 4 ulp of libm's on
 *    every argument the kernels met (glibc's stated bound for libmvec), so
 *    the vector densities differ from the scalar kernels by at most that
 *    error of those calls, carried through the description's arithmetic.
 * NaN equals NaN; everything else is compared by its bits.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "ir/jit.h"
#include "ppl_config.h"
#include "stdlib/dist_kernel.h"
#include "stdlib/rng.h"

#define NPTS 4000

static bool same_bits(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return memcmp(&a, &b, sizeof a) == 0;
}

/* distance in units in the last place between two finite doubles */
static double ulps(double a, double b) {
  if (a == b || (isnan(a) && isnan(b))) return 0;
  if (!isfinite(a) || !isfinite(b)) return INFINITY;
  double u = fmax(nextafter(fabs(a), INFINITY) - fabs(a), nextafter(fabs(b), INFINITY) - fabs(b));
  return fabs(a - b) / u;
}

/* ---- libmvec's functions, one lane at a time ---- */

typedef double v2d __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
typedef v2d (*Fn2)(v2d);
typedef v4d (*Fn4)(v4d);
typedef v8d (*Fn8)(v8d);

static void *mv_fn[3][3]; /* [width 2, 4, 8][log, exp, log1p] */

static double mv2(int f, double x) {
  v2d v = {x, x};
  return ((Fn2)mv_fn[0][f])(v)[0];
}
__attribute__((target("avx2"))) static double mv4(int f, double x) {
  v4d v = {x, x, x, x};
  return ((Fn4)mv_fn[1][f])(v)[0];
}
__attribute__((target("avx512f"))) static double mv8(int f, double x) {
  v8d v = {x, x, x, x, x, x, x, x};
  return ((Fn8)mv_fn[2][f])(v)[0];
}
static double mv(int w, int f, double x) { return w == 2 ? mv2(f, x) : w == 4 ? mv4(f, x) : mv8(f, x); }

/* the width the DkMath below stands for, and the arguments they met */
static int cur_w;
static double worst_ulp[3];
static void met(int f, double x) {
  double got = mv(cur_w, f, x), want = f == 0 ? log(x) : f == 1 ? exp(x) : log1p(x);
  double e = ulps(got, want);
  if (e > worst_ulp[f]) worst_ulp[f] = e;
}
static double mv_log(double x) { met(0, x); return mv(cur_w, 0, x); }
static double mv_exp(double x) { met(1, x); return mv(cur_w, 1, x); }
/* jit_native.c's vlog1p: libmvec's log(u), u = 1 + x, less ((u - 1) - x) / u
   unless that is NaN (u = 0 or inf, x NaN) */
static double mv_log1p(double x) {
  double u = 1 + x, c = ((u - 1) - x) / u;
  double got = mv(cur_w, 0, u) - (isnan(c) ? 0 : c), e = ulps(got, log1p(x));
  if (e > worst_ulp[2]) worst_ulp[2] = e;
  return got;
}
static const DkMath mvmath = {mv_log, mv_exp, mv_log1p};

static bool mv_load(int w) {
  static const char *pre[3] = {"_ZGVbN2v_", "_ZGVdN4v_", "_ZGVeN8v_"};
  static const char *nm[3] = {"log", "exp", "log1p"};
  int i = w == 2 ? 0 : w == 4 ? 1 : 2;
  void *h = dlopen("libmvec.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!h) return false;
  for (int f = 0; f < 3; f++) {
    char s[32];
    snprintf(s, sizeof s, "%s%s", pre[i], nm[f]);
    if (!(mv_fn[i][f] = dlsym(h, s))) return false;
  }
  return true;
}

/* ---- points ---- */

static double wide(Rng *r) { /* +-10^U(-300, 300) */
  double m = pow(10.0, -300 + 600 * rng_uniform(r));
  return rng_uniform(r) < 0.5 ? -m : m;
}

static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-308, -1e-308, 1e308, -1e308,
                                 709.5, -709.5, 745.2, -745.2, 36.7, -36.7, INFINITY, -INFINITY, NAN};
#define NSPECIAL ((int)(sizeof special / sizeof special[0]))

/* a value for operand k (0: x, else parameter k-1) within the family's
   domain: specials first, then wide and moderate random values */
static double point(const DistFamily *f, int k, int i, Rng *r) {
  double v = i < NSPECIAL * NSPECIAL ? special[k == 0 ? i % NSPECIAL : (i / NSPECIAL) % NSPECIAL]
             : rng_uniform(r) < 0.5 ? wide(r)
                                    : 20 * (rng_uniform(r) - 0.5);
  if (k == 0 && f->discrete) /* mostly in the support, sometimes not */
    return i % 7 == 6 ? v : (double)(i % 2);
  if (k > 0) { /* compiled code checks the domains before its kernels run */
    if (!dist_domain_ok(f->pdom[k - 1], v)) v = fabs(v);
    if (!dist_domain_ok(f->pdom[k - 1], v)) v = 1.0 + rng_uniform(r);
  }
  return v;
}

static void check_family(const DistFamily *f, Rng *r) {
  int np = f->nparams, n = NPTS;
  tap_ok(dk_valid(f->kernel), "%s: its kernel description is well formed", f->name);
  double *x = malloc(sizeof(double) * (size_t)n), *p = malloc(sizeof(double) * (size_t)(n * np));
  double *lp = malloc(sizeof(double) * (size_t)n), *dx = malloc(sizeof(double) * (size_t)n);
  double *dp = malloc(sizeof(double) * (size_t)(n * np));
  for (int i = 0; i < n; i++) {
    x[i] = point(f, 0, i, r);
    for (int k = 0; k < np; k++) p[k * n + i] = point(f, k + 1, i, r);
  }
  static const int widths[] = {0, 2, 4, 8};
  for (int wi = 0; wi < 4; wi++) {
    int w = widths[wi];
    const char *why = NULL;
    JitKernel *jk = jit_kernel_compile(f, w, &why);
    if (!jk) {
      /* scalar and SSE2 code exist on every x86-64; wider needs the CPU */
      tap_ok(w >= 4 && strstr(why, "vector math"), "%s: %d-wide code compiles, or the CPU has none (%s)",
             f->name, w, why);
      continue;
    }
    if (w && !mv_load(w)) {
      tap_ok(0, "%s: libmvec's %d-wide functions found", f->name, w);
      jit_kernel_free(jk);
      continue;
    }
    memset(lp, 0, sizeof(double) * (size_t)n);
    jit_kernel_fn(jk)(n, x, p, lp, dx, dp);
    cur_w = w;
    worst_ulp[0] = worst_ulp[1] = worst_ulp[2] = 0;
    int bad = -1, finite = 0;
    for (int i = 0; i < n && bad < 0; i++) {
      double q[4], wdx, wdp[4];
      for (int k = 0; k < np; k++) q[k] = p[k * n + i];
      double wlp = w ? dk_lpdf_grad_math(f->kernel, &mvmath, x[i], q, &wdx, wdp)
                     : dk_lpdf_grad(f->kernel, x[i], q, &wdx, wdp);
      bool ok = same_bits(lp[i], wlp) && same_bits(dx[i], wdx);
      for (int k = 0; k < np; k++) ok = ok && same_bits(dp[k * n + i], wdp[k]);
      if (!w) { /* the C the same list expands to: the interpreter's kernels */
        double cdx, cdp[4];
        double clp = f->lpdf_grad1(x[i], q, &cdx, cdp);
        ok = ok && same_bits(lp[i], f->lpdf1(x[i], q)) && same_bits(clp, wlp) && same_bits(cdx, wdx);
        for (int k = 0; k < np; k++) ok = ok && same_bits(cdp[k], wdp[k]);
      }
      finite += isfinite(wlp);
      if (!ok) {
        bad = i;
        tap_diag("x %.17g p0 %.17g: lp %.17g want %.17g, dx %.17g want %.17g, dp0 %.17g want %.17g",
                 x[i], q[0], lp[i], wlp, dx[i], wdx, dp[i], wdp[0]);
      }
    }
    if (w)
      tap_ok(bad < 0, "%s: %d-wide code = the description with libmvec's functions, bit for bit, at %d points (%d finite)",
             f->name, w, n, finite);
    else
      tap_ok(bad < 0, "%s: scalar code = the C kernels = the description, bit for bit, at %d points (%d finite)", f->name,
             n, finite);
    if (w) {
      double e = fmax(worst_ulp[0], fmax(worst_ulp[1], worst_ulp[2]));
      tap_ok(e <= 4, "%s: %d-wide: libmvec within 4 ulp of libm on the kernels' arguments (log %.2g, exp %.2g, log1p %.2g ulp)",
             f->name, w, worst_ulp[0], worst_ulp[1], worst_ulp[2]);
    }
    jit_kernel_free(jk);
  }
  free(x), free(p), free(lp), free(dx), free(dp);
}

int main(void) {
#if !PPL_HAVE_LLVM
  printf("1..0 # SKIP ppl was built without LLVM (-Djit=disabled)\n");
  return 0;
#endif
  gc_init();
  Rng r;
  rng_seed(&r, 20260907, 0);
  int nk = 0;
  for (const DistFamily *const *f = dist_all(); *f; f++)
    if ((*f)->kernel) {
      check_family(*f, &r);
      nk++;
    }
  tap_ok(nk >= 2, "the families with descriptions were found (%d)", nk);
  const char *why = NULL;
  bool refused = !jit_kernel_compile(dist_lookup("student_t"), 0, &why);
  tap_ok(refused && why && strstr(why, "no kernel"), "a family without a description is refused: %s",
         why ? why : "");
  return tap_done();
}
