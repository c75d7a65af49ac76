/* test_npe.c — neural posterior estimation (inference/npe.c) and the pieces
 * it adds to stdlib: the conditional Real NVP's gradient (weights and
 * context) against central finite differences and its batched form against
 * the unbatched one; the deep set's invariance to the order of its
 * elements; the data layout read from the IR (plate with a covariate,
 * vectorised iid observation, the rest); training on a conjugate
 * normal-mean program and the amortized draws for a data set it never saw
 * against the exact posterior; determinism (two trainings with one seed
 * write the same bytes, and their draws are the same bit for bit); files
 * refused (another program, another kind, truncated); the engine amortized
 * reading a file again when it was written again; the drawing passes
 * off the tape (the flow, the deep set) against the tape's, bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inference/amortized.h"
#include "inference/npe.h"
#include "inference/psis.h"
#include "inference/warnings.h"
#include "stdlib/deepset.h"
#include "stdlib/realnvp.h"
#include "stdlib/safetensors.h"
#include "test_engines_util.h"

/* ---- the conditional flow ---- */

/* sum over rows of (x . a + logdet) of the forward map, or of the inverse,
 * for B points with context c: a scalar to differentiate. */
static double flow_obj(const Rnvp *f, const double *w, int B, const double *c, const double *in,
                       bool inverse) {
  Tape *t = tape_new();
  int np = (int)f->nparams, cs[2] = {B, f->ctx};
  AdNum *a = calloc((size_t)B * f->dim, sizeof(AdNum)), *b = calloc((size_t)B * f->dim, sizeof(AdNum));
  AdNum ld[8];
  for (int e = 0; e < B * f->dim; e++) a[e] = ad_const(in[e]);
  Tensor W = tensor_const(1, &np, w), C = tensor_const(2, cs, c);
  if (inverse) rnvp_inverse_batch(t, f, W, B, C, a, b, ld);
  else rnvp_forward_batch(t, f, W, B, C, a, b, ld);
  double s = 0;
  for (int e = 0; e < B * f->dim; e++) s += b[e].v * (0.3 + 0.1 * e);
  for (int r = 0; r < B; r++) s += ld[r].v;
  free(a), free(b);
  return s;
}

static void test_cond_flow_grad(void) {
  Rnvp f;
  char err[128];
  int B = 3, dim = 3, ctx = 2;
  if (!rnvp_make_cond(&f, dim, ctx, 2, 5, err, sizeof err)) {
    tap_ok(0, "make: %s", err);
    return;
  }
  Rng r;
  rng_seed(&r, 7, 0);
  double *w = calloc(f.nparams, sizeof(double));
  /* random weights everywhere (rnvp_init starts at the identity, whose
     gradient with respect to the first layers is zero) */
  for (size_t i = 0; i < f.nparams; i++) w[i] = 0.3 * rng_normal(&r);
  double c[6], in[9];
  for (int i = 0; i < 6; i++) c[i] = rng_normal(&r);
  for (int i = 0; i < 9; i++) in[i] = rng_normal(&r);
  for (int inv = 0; inv < 2; inv++) {
    Tape *t = tape_new();
    int np = (int)f.nparams, cs[2] = {B, ctx};
    Tensor W = tensor_var(t, 1, &np, w), C = tensor_var(t, 2, cs, c);
    AdNum a[9], b[9], ld[3];
    for (int e = 0; e < 9; e++) a[e] = ad_const(in[e]);
    if (inv) rnvp_inverse_batch(t, &f, W, B, C, a, b, ld);
    else rnvp_forward_batch(t, &f, W, B, C, a, b, ld);
    AdNum terms[12];
    for (int e = 0; e < 9; e++) terms[e] = ad_scale(t, b[e], 0.3 + 0.1 * e);
    for (int k = 0; k < 3; k++) terms[9 + k] = ld[k];
    AdNum s = ad_sum(t, 12, terms);
    double *adj = calloc(tape_size(t) + 1, sizeof(double));
    tape_backward(t, s.n, adj);
    double worst = 0, h = 1e-6;
    for (size_t i = 0; i < f.nparams + 6; i++) {
      double *p = i < f.nparams ? &w[i] : &c[i - f.nparams];
      double g = i < f.nparams ? adj[W.node + (int32_t)i] : adj[C.node + (int32_t)(i - f.nparams)];
      double old = *p;
      *p = old + h;
      double up = flow_obj(&f, w, B, c, in, inv);
      *p = old - h;
      double dn = flow_obj(&f, w, B, c, in, inv);
      *p = old;
      double fd = (up - dn) / (2 * h), e = fabs(fd - g) / (1 + fabs(fd));
      if (e > worst) worst = e;
    }
    tap_ok(worst < 1e-6, "conditional flow %s: gradient w.r.t. %zu weights and 6 context reals "
           "matches central differences (worst relative error %.2g)",
           inv ? "inverse" : "forward", f.nparams, worst);
    free(adj);
  }
  /* the batched map is the unbatched one row by row, and inverse o forward = id */
  Tape *t = tape_new();
  int np = (int)f.nparams;
  Tensor W = tensor_const(1, &np, w);
  AdNum a[9], x[9], back[9], ld[3], ldi[3];
  for (int e = 0; e < 9; e++) a[e] = ad_const(in[e]);
  rnvp_forward_batch(t, &f, W, B, tensor_const(2, (int[]){B, ctx}, c), a, x, ld);
  double worst = 0;
  for (int row = 0; row < B; row++) {
    AdNum x1[3], ld1;
    rnvp_forward_batch(t, &f, W, 1, tensor_const(1, &ctx, c + row * ctx), a + row * dim, x1, &ld1);
    for (int j = 0; j < dim; j++) worst = fmax(worst, fabs(x1[j].v - x[row * dim + j].v));
    worst = fmax(worst, fabs(ld1.v - ld[row].v));
  }
  rnvp_inverse_batch(t, &f, W, B, tensor_const(2, (int[]){B, ctx}, c), x, back, ldi);
  double rt = 0;
  for (int e = 0; e < 9; e++) rt = fmax(rt, fabs(back[e].v - in[e]));
  for (int k = 0; k < 3; k++) rt = fmax(rt, fabs(ldi[k].v - ld[k].v));
  tap_ok(worst < 1e-12 && rt < 1e-10,
         "batched rows equal single rows (%.2g); the inverse undoes the forward with the same "
         "log-det (%.2g)", worst, rt);
  free(w);
}

/* ---- off the tape: the drawing passes give the tape's bits ---- */

/* rnvp_forward_values against rnvp_forward_batch with constant weights, bit
 * for bit: conditional and unconditional flows, odd and even dimensions, a
 * 1-D flow (the base alone), one row (the tape's rank-1 products) and
 * batches, random weights everywhere. */
static void test_flow_values(void) {
  static const struct { int dim, ctx, layers, hidden, B; } cases[] = {
      {5, 4, 3, 7, 1}, {5, 4, 3, 7, 3}, {5, 35, 6, 32, 256}, {4, 0, 2, 5, 9},
      {1, 3, 2, 4, 6}, {2, 1, 1, 1, 2}, {7, 2, 4, 3, 1}};
  Rng r;
  rng_seed(&r, 19, 0);
  int bad = 0, ncases = (int)(sizeof cases / sizeof cases[0]);
  double worst = 0;
  for (int k = 0; k < ncases; k++) {
    Rnvp f;
    char err[128];
    int dim = cases[k].dim, ctx = cases[k].ctx, B = cases[k].B;
    if (!rnvp_make_cond(&f, dim, ctx, cases[k].layers, cases[k].hidden, err, sizeof err)) {
      tap_ok(0, "make: %s", err);
      return;
    }
    size_t n = (size_t)B * dim;
    double *w = malloc(sizeof(double) * f.nparams), *c = malloc(sizeof(double) * (B * ctx + 1));
    double *eps = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n);
    double *ld = malloc(sizeof(double) * B), *work = malloc(sizeof(double) * rnvp_work(&f, B));
    AdNum *ae = malloc(sizeof(AdNum) * n), *ax = malloc(sizeof(AdNum) * n);
    AdNum *ald = malloc(sizeof(AdNum) * B);
    for (size_t i = 0; i < f.nparams; i++) w[i] = 0.4 * rng_normal(&r);
    for (int i = 0; i < B * ctx; i++) c[i] = rng_normal(&r);
    for (size_t i = 0; i < n; i++) ae[i] = ad_const(eps[i] = rng_normal(&r));
    Tape *t = tape_new();
    int np = (int)f.nparams;
    Tensor C = B == 1 ? tensor_const(1, &ctx, c) : tensor_const(2, (int[]){B, ctx}, c);
    rnvp_forward_batch(t, &f, tensor_const(1, &np, w), B, C, ae, ax, ald);
    rnvp_forward_values(&f, w, B, c, eps, x, ld, work);
    for (size_t i = 0; i < n; i++) {
      bad += memcmp(&x[i], &ax[i].v, sizeof(double)) != 0;
      worst = fmax(worst, fabs(x[i] - ax[i].v));
    }
    for (int b = 0; b < B; b++) {
      bad += memcmp(&ld[b], &ald[b].v, sizeof(double)) != 0;
      worst = fmax(worst, fabs(ld[b] - ald[b].v));
    }
    free(w), free(c), free(eps), free(x), free(ld), free(work), free(ae), free(ax), free(ald);
  }
  tap_ok(bad == 0, "the flow off the tape gives the tape's points and log-dets bit for bit over "
         "%d flows (%d values differ, by at most %.2g)", ncases, bad, worst);
}

/* ds_eval against ds_forward with constant weights, bit for bit: groups of
 * several widths with a rest, linear and quadratic features, one row and
 * several, and no groups at all. */
static void test_deepset_values(void) {
  Rng r;
  rng_seed(&r, 23, 0);
  int bad = 0, ncases = 0;
  for (int quad = 0; quad < 2; quad++)
    for (int ng = 0; ng <= 2; ng++)
      for (int B = 1; B <= 4; B += 3) {
        DeepSet s;
        char err[128];
        int n[2] = {6, 1}, wd[2] = {3, 2}, rest = ng == 0 ? 3 : ng == 1 ? 0 : 2;
        if (!ds_make(&s, ng, n, wd, rest, 9, 5, quad, err, sizeof err)) {
          tap_ok(0, "ds_make: %s", err);
          return;
        }
        double *w = malloc(sizeof(double) * s.nparams), *rows = malloc(sizeof(double) * B * s.in);
        double *out = malloc(sizeof(double) * B * s.out), *work = malloc(sizeof(double) * ds_work(&s, B));
        for (size_t i = 0; i < s.nparams; i++) w[i] = 0.5 * rng_normal(&r);
        for (size_t i = 0; i < B * s.in; i++) rows[i] = rng_normal(&r);
        Tape *t = tape_new();
        Tensor o = ds_forward(t, &s, tensor_const(1, (int[]){(int)s.nparams}, w), B, rows);
        ds_eval(&s, w, B, rows, out, work);
        bad += !tensor_ok(o) || memcmp(o.d, out, sizeof(double) * B * s.out) != 0;
        ncases++;
        free(w), free(rows), free(out), free(work);
      }
  tap_ok(bad == 0, "the deep set off the tape gives the tape's summaries bit for bit (%d of %d "
         "cases differ)", bad, ncases);
}

/* ---- the deep set ---- */

static void test_deepset(void) {
  DeepSet s;
  char err[128];
  int n[2] = {5, 3}, wd[2] = {2, 1};
  if (!ds_make(&s, 2, n, wd, 2, 7, 4, false, err, sizeof err)) {
    tap_ok(0, "ds_make: %s", err);
    return;
  }
  Rng r;
  rng_seed(&r, 3, 0);
  double *w = calloc(s.nparams, sizeof(double));
  ds_init(&s, &r, w);
  double rows[2 * 15], perm[2 * 15];
  for (int i = 0; i < 30; i++) rows[i] = rng_normal(&r);
  /* row 1 is row 0 with group 0's elements reversed and group 1's rotated */
  memcpy(rows + 15, rows, sizeof(double) * 15);
  memcpy(perm, rows, sizeof perm);
  for (int i = 0; i < 5; i++) memcpy(perm + 15 + 2 * i, rows + 2 * (4 - i), sizeof(double) * 2);
  for (int i = 0; i < 3; i++) perm[15 + 10 + i] = rows[10 + (i + 1) % 3];
  Tape *t = tape_new();
  int np = (int)s.nparams;
  Tensor o = ds_forward(t, &s, tensor_const(1, &np, w), 2, perm);
  double d = 0, moved = 0;
  for (int k = 0; k < 4; k++) d = fmax(d, fabs(o.d[k] - o.d[4 + k]));
  /* changing one element's value does change the summary */
  perm[15] += 1;
  Tensor o2 = ds_forward(t, &s, tensor_const(1, &np, w), 2, perm);
  for (int k = 0; k < 4; k++) moved = fmax(moved, fabs(o2.d[4 + k] - o.d[4 + k]));
  tap_ok(tensor_ok(o) && o.shape[0] == 2 && o.shape[1] == 4 && d < 1e-12 && moved > 1e-6,
         "deep set: permuting the elements of each group leaves the summary as is (%.2g); "
         "changing one element moves it (%.2g)", d, moved);
  free(w);
  /* quadratic: group 0's pooled features are the means of (a, b, a a, a b, b b) */
  DeepSet q;
  if (!ds_make(&q, 2, n, wd, 2, 7, 4, true, err, sizeof err)) {
    tap_ok(0, "ds_make (quadratic): %s", err);
    return;
  }
  double pooled[5 + 2 + 2], want[5] = {0};
  ds_pooled(&q, rows, pooled);
  for (int i = 0; i < 5; i++) {
    double a = rows[2 * i], b = rows[2 * i + 1];
    want[0] += a / 5, want[1] += b / 5, want[2] += a * a / 5, want[3] += a * b / 5, want[4] += b * b / 5;
  }
  double pe = 0;
  for (int k = 0; k < 5; k++) pe = fmax(pe, fabs(pooled[k] - want[k]));
  pe = fmax(pe, fabs(pooled[6] - (rows[10] * rows[10] + rows[11] * rows[11] + rows[12] * rows[12]) / 3));
  pe = fmax(pe, fabs(pooled[7] - rows[13]) + fabs(pooled[8] - rows[14]));
  tap_ok(ds_pooled_size(&q) == 9 && q.feat[0] == 5 && q.feat[1] == 2 && pe < 1e-14,
         "deep set with products: the pooled features are the elements' means, their products' "
         "means and the rest (%.2g)", pe);
}

/* ---- training and drawing ---- */

static const char *conj_src =
    "data { int<lower=1> N; vector[N] y; }\n"
    "model {\n"
    "  real mu ~ normal(0, 2);\n"
    "  plate (i in 1:N) { y[i] ~ normal(mu, 1); }\n"
    "}\n";

static const char *tmp_path(const char *name) {
  const char *dir = getenv("TMPDIR");
  return gc_printf("%s/ppl_test_npe_%d_%s", dir ? dir : "/tmp", (int)getpid(), name);
}

static const IrProgram *compile(const char *src, TData *td, Interp **in) {
  Diag d;
  *in = tcompile(src, td, &d);
  return *in ? interp_program(*in) : NULL;
}

static void put(EngineOpts *o, const char *name, const char *val) {
  const OptSpec *s = NULL;
  for (const OptSpec *e = npe_options; e->name; e++)
    if (!strcmp(e->name, name)) s = e;
  if (!s) s = engine_option_find(name);
  static const OptSpec load = {.name = "load", .type = OPT_ENUM, .or_file = true};
  if (!strcmp(name, "load")) s = &load;
  OptValue v = {0};
  char err[128];
  if (s == &load) v.path = val;
  else if (!s || !opt_parse(s, val, &v, err, sizeof err)) {
    tap_diag("option %s: %s", name, s ? err : "unknown");
    return;
  }
  if (!o->set) o->set = opt_set_new();
  opt_set_put(o->set, s, v);
}

/* A small budget that fits this one-latent program (2.5 s on this machine). */
static EngineOpts train_opts(void) {
  EngineOpts o;
  engine_opts_default(&o);
  static const char *const kv[] = {"simulations", "3000", "epochs", "40", "batch", "32",
                                   "embed-dim", "4", "embed-hidden", "32", "flow-layers", "2",
                                   "flow-hidden", "16", NULL};
  for (int i = 0; kv[i]; i += 2) put(&o, kv[i], kv[i + 1]);
  return o;
}

/* n draws of output 0 (elem 0) from the amortized posterior of file for in. */
static bool draws_of(const Interp *in, const char *file, int n, double *x, double *lw, Diag *d) {
  EngineOpts o;
  engine_opts_default(&o);
  o.chains = 1, o.draws = n;
  put(&o, "load", file);
  diag_init(d);
  void *st = npe_draws.init(in, &o, 0, d);
  if (!st) return false;
  for (int i = 0; i < n; i++) {
    Draw dr;
    memset(&dr, 0, sizeof dr);
    if (!npe_draws.step(st, false, &dr, d)) return false;
    x[i] = val_as_real(dr.outputs[0]);
    if (lw) lw[i] = dr.log_weight;
  }
  npe_draws.free(st);
  return true;
}

/* The same through the engine amortized (which reads the file for npe, and
 * keeps it while it is unchanged: amortized.c's am_read). */
static bool draws_amortized(const Interp *in, const char *file, int n, double *x, Diag *d) {
  EngineOpts o;
  engine_opts_default(&o);
  o.chains = 1, o.draws = n;
  put(&o, "load", file);
  diag_init(d);
  void *st = engine_amortized.init(in, &o, 0, d);
  if (!st) return false;
  for (int i = 0; i < n; i++) {
    Draw dr;
    memset(&dr, 0, sizeof dr);
    if (!engine_amortized.step(st, false, &dr, d)) return false;
    x[i] = val_as_real(dr.outputs[0]);
  }
  engine_amortized.free(st);
  return true;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1);
  if (fread(b, 1, *n, f) != *n) *n = 0;
  fclose(f);
  return b;
}

static void test_conjugate(void) {
  /* training: only the size N is given; y is simulated */
  TData sizes;
  tdata_init(&sizes);
  tdata_add(&sizes, "N", val_int(10));
  TData sizes_y = sizes; /* a compile-able data set for the program (y unused in training) */
  double y0[10] = {0};
  tdata_add(&sizes_y, "y", tvec(10, y0));
  Interp *tin;
  const IrProgram *p = compile(conj_src, &sizes_y, &tin);
  if (!p) {
    tap_ok(0, "compile");
    return;
  }
  const char *f1 = tmp_path("a.safetensors"), *f2 = tmp_path("b.safetensors");
  EngineOpts o = train_opts();
  NpeTrainInfo info;
  Diag d;
  diag_init(&d);
  bool ok = npe_train(p, &sizes.src, &o, f1, &info, &d);
  tap_ok(ok && info.simulations == 3000 && info.epochs == 40 && !info.interrupted &&
             isfinite(info.loss),
         "npe_train: %ld simulations, %d epochs, held-out -log q %.3f in %.1f s%s%s",
         info.simulations, info.epochs, info.loss, info.seconds, ok ? "" : ": ",
         ok ? "" : d.msg);
  if (!ok) return;
  /* the exact posterior of mu given 10 observations: N(sum y / (N + 1/4), 1 / (N + 1/4)) */
  double y[10] = {1.9, 2.7, 0.4, 1.2, 3.1, 2.2, 1.6, 0.8, 2.5, 1.4}, sum = 0;
  for (int i = 0; i < 10; i++) sum += y[i];
  double prec = 10 + 0.25, em = sum / prec, es = sqrt(1 / prec);
  TData obs;
  tdata_init(&obs);
  tdata_add(&obs, "N", val_int(10));
  tdata_add(&obs, "y", tvec(10, y));
  Interp *in;
  compile(conj_src, &obs, &in);
  enum { ND = 2000 };
  double *x = malloc(sizeof(double) * ND), *lw = malloc(sizeof(double) * ND);
  ok = draws_of(in, f1, ND, x, lw, &d);
  if (!ok) {
    tap_ok(0, "draws: %s", d.msg);
    return;
  }
  /* draws from q are independent: the Monte Carlo error of the mean is
     sd / sqrt(ND), of the sd sd / sqrt(2 ND).  The allowance for the
     network's approximation (the amortization gap at one data set) is 0.25
     exact sds on the mean and 0.1 on the sd: with this budget the errors
     seen on four data sets (ybar -2.2 to 3.7) were 0.00 to 0.16 sds and 0.00
     to 0.04 sds; a network that ignored the data would be off by several. */
  double m = tmean(ND, x), s = tsd(ND, x);
  double tolm = 4 * es / sqrt(ND) + 0.25 * es, tols = 4 * es / sqrt(2.0 * ND) + 0.1 * es;
  tap_ok(fabs(m - em) < tolm && fabs(s - es) < tols,
         "unseen data: mean %.4f (exact %.4f, tolerance %.4f), sd %.4f (exact %.4f, tolerance "
         "%.4f)", m, em, tolm, s, es, tols);
  /* the log weights log p - log q correct q: the self-normalised estimate
     of the mean has no approximation allowance, only its Monte Carlo error
     sd / sqrt(ESS) */
  double wmax = -INFINITY, sw = 0, sw2 = 0, swx = 0;
  for (int i = 0; i < ND; i++) wmax = fmax(wmax, lw[i]);
  for (int i = 0; i < ND; i++) {
    double wi = exp(lw[i] - wmax);
    sw += wi, sw2 += wi * wi, swx += wi * x[i];
  }
  double ess = sw * sw / sw2, ism = swx / sw, tolis = 4 * es / sqrt(ess);
  tap_ok(fabs(ism - em) < tolis,
         "importance-weighted mean %.4f (exact %.4f, tolerance %.4f from ESS %.0f of %d)", ism,
         em, tolis, ess, ND);
  double k = psis_k(ND, lw);
  tap_ok(k < 0.5, "the draws as a proposal: PSIS k-hat %.2f < 0.5", k);
  /* determinism: a second training with the same seed writes the same bytes */
  diag_init(&d);
  ok = npe_train(p, &sizes.src, &o, f2, &info, &d);
  size_t n1 = 0, n2 = 0;
  unsigned char *b1 = slurp(f1, &n1), *b2 = slurp(f2, &n2);
  tap_ok(ok && b1 && b2 && n1 == n2 && n1 > 0 && memcmp(b1, b2, n1) == 0,
         "the same seed trains the same file, byte for byte (%zu bytes)", n1);
  double *x2 = malloc(sizeof(double) * ND);
  ok = draws_of(in, f2, ND, x2, NULL, &d);
  tap_ok(ok && memcmp(x, x2, sizeof(double) * ND) == 0,
         "draws from the file read back are the same, bit for bit");
  /* the engine amortized keeps the file it read while it is unchanged: its
     draws are npe's; the file written again at the same path (theta's mean
     moved by 1, the same size) is read again: the draws move by 1 */
  double *xa = malloc(sizeof(double) * ND), *xb = malloc(sizeof(double) * ND);
  bool oka = draws_amortized(in, f2, ND, xa, &d), okb = oka && draws_amortized(in, f2, ND, xb, &d);
  tap_ok(okb && memcmp(x, xa, sizeof(double) * ND) == 0 && memcmp(x, xb, sizeof(double) * ND) == 0,
         "the engine amortized draws npe's draws, bit for bit, twice from the one file%s%s",
         okb ? "" : ": ", okb ? "" : d.msg);
  const char *rerr = NULL;
  StFile *moved = st_read(f2, &rerr);
  StTensor *tm = NULL;
  for (int i = 0; moved && i < moved->ntensors; i++)
    if (!strcmp(moved->tensors[i].name, "theta_mean")) tm = &moved->tensors[i];
  bool rewrote = tm && tm->numel == 1 && (tm->data[0] += 1, st_write(f2, moved, &rerr));
  size_t n3 = 0;
  unsigned char *b3 = slurp(f2, &n3);
  oka = rewrote && draws_amortized(in, f2, ND, xa, &d);
  double off = 0;
  for (int i = 0; oka && i < ND; i++) off = fmax(off, fabs(xa[i] - (x[i] + 1)));
  tap_ok(oka && n3 == n1 && off < 1e-12,
         "the file written again (%zu bytes, as before) is read again: the draws moved by 1 "
         "(to %.2g)%s%s", n3, off, oka ? "" : ": ", oka ? "" : rerr ? rerr : d.msg);
  free(xa), free(xb), free(b3);
  /* refusals */
  TData other;
  tdata_init(&other);
  tdata_add(&other, "N", val_int(10));
  tdata_add(&other, "y", tvec(10, y));
  Interp *oin;
  compile("data { int<lower=1> N; vector[N] y; }\n"
          "model { real mu ~ normal(0, 3); plate (i in 1:N) { y[i] ~ normal(mu, 1); } }\n",
          &other, &oin);
  ok = draws_of(oin, f1, 1, x2, NULL, &d);
  tap_ok(!ok && d.code == DIAG_DATA && strstr(d.msg, "trained for another program"),
         "a file trained for another program is refused (DIAG_DATA): %s", d.msg);
  FILE *tf = fopen(f2, "wb");
  fwrite(b1, 1, n1 / 2, tf);
  fclose(tf);
  ok = draws_of(in, f2, 1, x2, NULL, &d);
  tap_ok(!ok && d.code == DIAG_DATA && strstr(d.msg, f2), "a truncated file is refused: %s",
         d.msg);
  ok = draws_of(in, tmp_path("missing.safetensors"), 1, x2, NULL, &d);
  tap_ok(!ok && d.code == DIAG_IO, "a missing file is an I/O error: %s", d.msg);
  /* a file of another kind for this program */
  StFile sf = {0};
  StTensor tt = {.name = "w", .rank = 1, .numel = 1, .data = (double[]){1}};
  tt.shape[0] = 1;
  sf.ntensors = 1, sf.tensors = &tt;
  st_set_ppl_meta(&sf, ir_program_hash(p), ST_KIND_SVI);
  const char *serr = NULL;
  st_write(f2, &sf, &serr);
  ok = draws_of(in, f2, 1, x2, NULL, &d);
  tap_ok(!ok && d.code == DIAG_DATA && strstr(d.msg, "not an amortized posterior"),
         "an svi file is refused: %s", d.msg);
  remove(f1), remove(f2);
  free(x), free(x2), free(lw), free(b1), free(b2);
}

/* Ctrl-C during training: the host's flag, raised here after two epochs. */
static void stop_after_two(void *ctx, int chain, long done, long total, const char *unit) {
  (void)chain, (void)total;
  if (!strcmp(unit, "epoch") && done >= 2) atomic_store((atomic_int *)ctx, 1);
}

static void test_interrupt(void) {
  TData sizes;
  tdata_init(&sizes);
  tdata_add(&sizes, "N", val_int(10));
  double y[10] = {0.5, 0.1, -0.3, 1.2, 0.9, 0.4, 0.0, 0.7, -0.2, 0.3};
  TData obs = sizes;
  tdata_add(&obs, "y", tvec(10, y));
  Interp *in;
  const IrProgram *p = compile(conj_src, &obs, &in);
  if (!p) return;
  EngineOpts o = train_opts();
  atomic_int flag = 0;
  o.interrupt = &flag;
  o.progress = stop_after_two, o.progress_ctx = &flag;
  const char *f = tmp_path("int.safetensors");
  NpeTrainInfo info;
  Diag d;
  diag_init(&d);
  bool ok = npe_train(p, &sizes.src, &o, f, &info, &d);
  double x[10];
  bool drawn = ok && draws_of(in, f, 10, x, NULL, &d);
  tap_ok(ok && info.interrupted && info.epochs == 2 && drawn,
         "interrupted after 2 of 40 epochs: stopped, saved what it had (%d epochs), and the file "
         "draws", info.epochs);
  /* interrupted before any training: nothing saved */
  remove(f);
  flag = 1;
  o.progress = NULL;
  diag_init(&d);
  ok = npe_train(p, &sizes.src, &o, f, &info, &d);
  tap_ok(!ok && d.code == DIAG_INTERRUPTED && access(f, F_OK) != 0,
         "interrupted while simulating: %s", d.msg);
  /* the summary's advice when k-hat says the network does not fit */
  WarnInput wi = {.m = 1, .n = 1, .adapt_delta = NAN, .pareto_k = NAN, .vi_family = "npe", .vi_khat = 0.93};
  int nw = 0;
  RunWarning *w = warn_collect(&wi, &nw);
  bool found = false;
  for (int i = 0; i < nw; i++)
    found = found || (!strcmp(w[i].kind, "vi_khat") && strstr(w[i].advice, "--engine nuts") &&
                      strstr(w[i].advice, "amortized network does not fit"));
  tap_ok(found, "k-hat 0.93: the summary says the network does not fit and suggests nuts");
}

/* The layout the IR gives, read from a (barely) trained file's metadata. */
static void test_layout(void) {
  const char *src =
      "data { int<lower=1> N; vector[N] x; vector[N] y; real z[3]; matrix[2, 1] m; real w[2]; }\n"
      "model {\n"
      "  real a ~ normal(0, 1);\n"
      "  real b ~ normal(0, 1);\n"
      "  real<lower=0> s ~ exponential(1);\n"
      "  plate (i in 1:N) { y[i] ~ normal(a + b * x[i], s); }\n"
      "  z ~ normal(a, 1);\n"
      "  for (j in 1:2) m[j, 1] ~ normal(a, 1);\n"
      "  for (j in 1:2) w[j] ~ normal(b, 1);\n"
      "}\n";
  double xs[6] = {-1, -0.5, 0, 0.5, 1, 1.5};
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(6));
  tdata_add(&td, "x", tvec(6, xs));
  Diag d;
  IrProgram *p = tlower(src, &d);
  if (!p) {
    tap_ok(0, "compile: %s", d.msg);
    return;
  }
  EngineOpts o;
  engine_opts_default(&o);
  put(&o, "simulations", "40");
  put(&o, "epochs", "1");
  const char *f = tmp_path("layout.safetensors");
  NpeTrainInfo info;
  bool ok = npe_train(p, &td.src, &o, f, &info, &d);
  const char *err = NULL;
  StFile *sf = ok ? st_read(f, &err) : NULL;
  const char *obs = sf ? st_meta_get(sf, "observed") : "", *gs = sf ? st_meta_get(sf, "group_sizes") : "";
  const char *gw = sf ? st_meta_get(sf, "group_widths") : "", *rest = sf ? st_meta_get(sf, "rest") : "";
  tap_ok(ok && sf && !strcmp(obs, "y,z,m,w") && !strcmp(gs, "6,3") && !strcmp(gw, "2,1") &&
             !strcmp(rest, "4") && !strcmp(st_meta_get(sf, "kind"), "npe"),
         "layout: observed %s; groups of sizes %s and widths %s ((y[i], x[i]) of the plate, "
         "z's iid elements); rest %s (a matrix, and w observed in a plain for)%s%s",
         obs, gs, gw, rest, ok ? "" : ": ", ok ? "" : d.msg);
  remove(f);
  /* a design matrix: y ~ normal(X * beta + a, s) has the elements (y[n],
     X[n]); an observed variable read by another's parameters keeps the
     pairing by going to the rest */
  const char *dm =
      "data { int N; matrix[N, 2] X; vector[N] y; vector[N] u; vector[N] v; }\n"
      "model {\n"
      "  vector[2] beta ~ normal(0, 1);\n"
      "  real a ~ normal(0, 1);\n"
      "  y ~ normal(X * beta + a, 1);\n"
      "  u ~ normal(a, 1);\n"
      "  v ~ normal(u * 2, 1);\n"
      "}\n";
  p = tlower(dm, &d);
  TData dd;
  tdata_init(&dd);
  tdata_add(&dd, "N", val_int(4));
  Value X = val_mat(4, 2);
  for (int i = 0; i < 8; i++) X.t->d[i] = 0.5 * i - 1;
  tdata_add(&dd, "X", X);
  diag_init(&d);
  ok = p && npe_train(p, &dd.src, &o, f, &info, &d);
  sf = ok ? st_read(f, &err) : NULL;
  obs = sf ? st_meta_get(sf, "observed") : "", gs = sf ? st_meta_get(sf, "group_sizes") : "";
  gw = sf ? st_meta_get(sf, "group_widths") : "", rest = sf ? st_meta_get(sf, "rest") : "";
  tap_ok(ok && sf && !strcmp(obs, "y,u,v") && !strcmp(gs, "4") && !strcmp(gw, "3") &&
             !strcmp(rest, "8"),
         "layout: y ~ normal(X * beta + a, 1) is a set of (y[n], X[n]) (sizes %s, widths %s); "
         "u, read by v's mean, and v are the rest (%s)%s%s",
         gs, gw, rest, ok ? "" : ": ", ok ? "" : d.msg);
  remove(f);
  /* programs that cannot be amortized say why */
  const char *disc = "data { int N; int y[N]; }\n"
                     "model { int k ~ poisson(3); plate (i in 1:N) { y[i] ~ poisson(k + 1); } }\n";
  p = tlower(disc, &d);
  TData n3;
  tdata_init(&n3);
  tdata_add(&n3, "N", val_int(3));
  diag_init(&d);
  ok = p && npe_train(p, &n3.src, &o, f, &info, &d);
  tap_ok(!ok && strstr(d.msg, "cannot amortize") && strstr(d.msg, "'k' is discrete"),
         "a discrete latent: %s", d.msg);
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  gc_init();
  test_cond_flow_grad();
  test_deepset();
  test_flow_values();
  test_deepset_values();
  test_layout();
  test_conjugate();
  test_interrupt();
  return tap_done();
}
