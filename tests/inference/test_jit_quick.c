/* test_jit_quick.c — the JIT's two ways of compiling give the same numbers.
 *
 * A short run compiles its log density the quick way (ir/jit.c: a short
 * pass pipeline and the code generator's fast path; inference/hmc.c decides
 * from the run's expected gradients), a long one the full way.  Since the
 choice is made from the command line, so a command line gives the same
 * bits wherever it runs; both ways must also give the same numbers.  For
 * every program of examples/ and examples/posteriordb/ with data and a
 * fixed-structure continuous log density, both ways compile or neither, and
 * at random points they fail together or give the same log density and
 * gradient to 1e-12 (relative above magnitude 1, absolute below): bit for
 * bit except where the generated code marks a sum reassociable (the scalar
 * adjoints of vectorised densities, matrix-vector products), which the full
 * pipeline vectorises and fuses (FMA) and the quick one does not — the
 * programs without such sums (eight schools among them) must agree bit for
 * bit, and the count of those that do is printed.  The compiled draws
 * (outputs of the model and generated blocks, random numbers included) are
 * the same bit for bit.
 *
 *   test_jit_quick EXAMPLES_DIR
 */
#include <dirent.h>
#include <stdio.h>

#include "api/data.h"
#include "inference/logdensity.h"
#include "stdlib/rng.h"
#include "test_engines_util.h"

static int tq_compared, tq_bitwise;

static bool close12(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= 1e-12 * fmax(1, fmax(fabs(a), fabs(b)));
}

/* The reals of a draw's outputs, flattened in order (n of them). */
static double *tq_flat(const Value *v, int nout, size_t *n) {
  size_t total = 0;
  for (int i = 0; i < nout; i++) total += val_numel(v[i]);
  double *f = gc_alloc_atomic(sizeof(double) * (total ? total : 1));
  size_t k = 0;
  for (int i = 0; i < nout; i++) {
    if (v[i].k >= V_ARR) {
      val_flatten(v[i], f + k);
      k += val_numel(v[i]);
    } else {
      f[k++] = val_as_real(v[i]);
    }
  }
  *n = total;
  return f;
}

static void tq_model(const char *model, const char *data) {
  Diag d;
  diag_init(&d);
  char *src = read_text(model);
  if (!src) return;
  Ast *a = parse_string(src, strlen(src), model, &d);
  CheckedProgram *cp = a ? check_program(a, model, 0, NULL, &d) : NULL;
  IrProgram *p = cp ? ir_lower(cp, &d) : NULL;
  Interp *in = p ? interp_new(p, NULL) : NULL;
  DataSource *ds = in ? data_json_file(data, &d) : NULL;
  if (!in || !ds || !interp_load_data(in, ds, &d)) {
    tap_diag("%s: skipped (%s)", model, d.msg);
    free(src);
    return;
  }
  free(src);
  LogDensity *full = ld_new(in, &d), *quick = full ? ld_new(in, &d) : NULL;
  if (!quick) {
    tap_diag("%s: no fixed-structure continuous log density", model);
    return;
  }
  bool cf = ld_use_jit(full, false), cq = ld_use_jit_quick(quick);
  if (!tap_ok(cf == cq, "%s: both ways compile, or neither (%s)", model,
              cf ? "compiled" : ld_jit_refusal(full)) ||
      !cf)
    return;
  tq_compared++;
  size_t n = ld_dim(full);
  double *theta = gc_alloc_atomic(sizeof(double) * (n + 1));
  double *gf = gc_alloc_atomic(sizeof(double) * (n + 1)), *gq = gc_alloc_atomic(sizeof(double) * (n + 1));
  Rng r;
  rng_seed(&r, 2026, 12);
  int same = 0, bits = 0, ok = 0, points = 8;
  for (int k = 0; k < points; k++) {
    for (size_t i = 0; i < n; i++) theta[i] = (k < 4 ? 0.5 : 2.0) * rng_normal(&r);
    double lf = NAN, lq = NAN;
    bool of = ld_eval_grad_jit(full, theta, &lf, gf), oq = ld_eval_grad_jit(quick, theta, &lq, gq);
    ok += of;
    bool close = of == oq && (!of || close12(lf, lq));
    for (size_t i = 0; of && close && i < n; i++) close = close12(gf[i], gq[i]);
    same += close;
    bits += of == oq && (!of || (memcmp(&lf, &lq, sizeof lf) == 0 &&
                                 memcmp(gf, gq, sizeof(double) * n) == 0));
  }
  tq_bitwise += bits == points;
  tap_ok(same == points && ok > 0,
         "%s: log density and gradient agree to 1e-12 at %d points (%d evaluated, %d bit for bit)",
         model, points, ok, bits);
  if (strstr(model, "eight_schools"))
    tap_ok(bits == points, "%s: no reassociable sum: the same bits at every point", model);
  /* the compiled draws (at the points where they run) */
  LdWork *wf = ld_work_new(full), *wq = ld_work_new(quick);
  int nout = interp_program(in)->noutputs, drawn = 0, dsame = 0;
  for (int k = 0; k < 4; k++) {
    for (size_t i = 0; i < n; i++) theta[i] = 0.5 * rng_normal(&r);
    Value *vf = ld_draw_jit(wf, theta, 7, (uint64_t)k), *vq = ld_draw_jit(wq, theta, 7, (uint64_t)k);
    if (!vf && !vq) continue;
    drawn++;
    size_t nf = 0, nq = 0;
    double *ff = vf ? tq_flat(vf, nout, &nf) : NULL, *fq = vq ? tq_flat(vq, nout, &nq) : NULL;
    dsame += ff && fq && nf == nq && memcmp(ff, fq, sizeof(double) * nf) == 0;
  }
  tap_ok(dsame == drawn, "%s: %d compiled draws the same bit for bit", model, drawn);
}

static void tq_dir(const char *dir) {
  DIR *dh = opendir(dir);
  if (!dh) return;
  char *names[256];
  int nn = 0;
  struct dirent *e;
  while ((e = readdir(dh)) && nn < 256) {
    size_t len = strlen(e->d_name);
    if (len > 4 && !strcmp(e->d_name + len - 4, ".ppl")) names[nn++] = strdup(e->d_name);
  }
  closedir(dh);
  for (int i = 1; i < nn; i++) /* sorted: the same order everywhere */
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  for (int i = 0; i < nn; i++) {
    char model[1024], data[1024];
    snprintf(model, sizeof model, "%s/%s", dir, names[i]);
    snprintf(data, sizeof data, "%s/%.*s.data.json", dir, (int)strlen(names[i]) - 4, names[i]);
    FILE *f = fopen(data, "rb");
    if (f) {
      fclose(f);
      tq_model(model, data);
    }
    free(names[i]);
  }
}

int main(int argc, char **argv) {
  gc_init();
  const char *ex = argc > 1 ? argv[1] : "examples";
  char pdb[1024];
  snprintf(pdb, sizeof pdb, "%s/posteriordb", ex);
  tq_dir(ex);
  tq_dir(pdb);
  tap_ok(tq_compared >= 10, "%d programs compared (the posteriordb ten at least), %d bit for bit",
         tq_compared, tq_bitwise);
  return tap_done();
}
