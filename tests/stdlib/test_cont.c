/* test_cont.c — the 12 continuous families' log densities and log CDFs
 * against mpmath (cont_reference.h, made by gen_cont_reference.py): every
 * entry to 1e-10 relative, both through the kernels and through the generic
 * layer (dist_lpdf_value / dist_lcdf_value). */
#include <math.h>
#include <string.h>

#include "stdlib/dist.h"
#include "tap.h"
#include "cont_reference.h"

static int close_to(double got, double want) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  if (want == 0.0) return fabs(got) <= 1e-12;
  return fabs(got - want) <= 1e-10 * fabs(want);
}

static void check(const char *what, const ContRef *r, double got, double want) {
  if (!tap_ok(close_to(got, want), "%s %s(%g, %g, %g) at x = %g", r->fam, what, r->p[0], r->p[1],
              r->p[2], r->x))
    tap_diag("got %.17g want %.17g", got, want);
}

int main(void) {
  gc_init();
  size_t n = sizeof cont_ref / sizeof cont_ref[0];
  int per_family[12] = {0};
  static const char *names[12] = {"normal", "std_normal", "student_t", "cauchy", "logistic", "lognormal",
                                  "exponential", "gamma", "inv_gamma", "weibull", "beta", "uniform"};
  for (size_t i = 0; i < n; i++) {
    const ContRef *r = &cont_ref[i];
    const DistFamily *f = dist_lookup(r->fam);
    if (!tap_ok(f != NULL && f->lpdf1 && f->lcdf1 && f->lccdf1, "%s is a scalar family with CDFs", r->fam))
      continue;
    for (int k = 0; k < 12; k++)
      if (!strcmp(names[k], r->fam)) per_family[k]++;
    check("lpdf", r, f->lpdf1(r->x, r->p), r->lpdf);
    check("lcdf", r, f->lcdf1(r->x, r->p), r->lcdf);
    check("lccdf", r, f->lccdf1(r->x, r->p), r->lccdf);

    /* the same numbers through the generic layer, parameters as Values */
    Value pv[3];
    for (int k = 0; k < r->np; k++) pv[k] = val_real(r->p[k]);
    char err[200] = "";
    double lp = NAN, lc = NAN, lcc = NAN;
    bool ok = dist_lpdf_value(f, val_real(r->x), r->np, pv, &lp, err, sizeof err) &&
              dist_lcdf_value(f, val_real(r->x), r->np, pv, false, &lc, err, sizeof err) &&
              dist_lcdf_value(f, val_real(r->x), r->np, pv, true, &lcc, err, sizeof err);
    if (!tap_ok(ok && close_to(lp, r->lpdf) && close_to(lc, r->lcdf) && close_to(lcc, r->lccdf),
                "%s layer at x = %g", r->fam, r->x))
      tap_diag("%s: lpdf %.17g lcdf %.17g lccdf %.17g", err, lp, lc, lcc);
  }
  for (int k = 0; k < 12; k++)
    tap_ok(per_family[k] >= 12, "%s has %d reference points", names[k], per_family[k]);
  return tap_done();
}
