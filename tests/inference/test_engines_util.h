/* test_engines_util.h — shared by the engine and log-density tests: compile a
 * model from source text with data given as a small in-memory table, run an
 * engine's chain, and the single-chain effective sample size (Geyer's initial
 * monotone sequence) for Monte Carlo standard errors. */
#ifndef TEST_ENGINES_UTIL_H
#define TEST_ENGINES_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/engine.h"
#include "inference/svi.h"
#include "lang/check.h"
#include "parser/ast.h"
#include "tests/tap.h"

typedef struct TDatum {
  const char *name;
  Value v;
} TDatum;

typedef struct TData {
  DataSource src;
  int n;
  TDatum d[8];
} TData;

/* A whole file as a NUL-terminated string (malloc), NULL when it cannot be
   opened: model files and data read by the tests. */
__attribute__((unused)) static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

__attribute__((unused)) static bool tdata_get(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
                      const char *size_desc, ConKind con, double lo, double hi, Value *out,
                      Diag *d) {
  TData *td = (TData *)src;
  for (int i = 0; i < td->n; i++)
    if (strcmp(td->d[i].name, name) == 0) {
      *out = val_copy(td->d[i].v);
      return true;
    }
  diag_error(d, DIAG_DATA, (SrcPos){0}, "test data: no \"%s\"", name);
  return false;
}

__attribute__((unused)) static void tdata_init(TData *td) {
  memset(td, 0, sizeof *td);
  td->src.get = tdata_get;
}
__attribute__((unused)) static void tdata_add(TData *td, const char *name, Value v) {
  td->d[td->n].name = name;
  td->d[td->n].v = v;
  td->n++;
}
__attribute__((unused)) static Value tvec(int n, const double *x) {
  Value v = val_vec(n);
  memcpy(v.t->d, x, sizeof(double) * (size_t)n);
  return v;
}
__attribute__((unused)) static Value tints(int n, const int *x) {
  Value v = val_arr(n);
  for (int i = 0; i < n; i++) v.a->e[i] = val_int(x[i]);
  return v;
}

/* parse -> check -> lower; NULL + d on error */
__attribute__((unused)) static IrProgram *tlower(const char *src, Diag *d) {
  diag_init(d);
  Ast *a = parse_string(src, strlen(src), "test.ppl", d);
  CheckedProgram *cp = a ? check_program(a, "test.ppl", 0, NULL, d) : NULL;
  return cp ? ir_lower(cp, d) : NULL;
}

/* tlower -> interp with data; NULL (and a TAP diagnostic) on error */
__attribute__((unused)) static Interp *tcompile(const char *src, TData *td, Diag *d) {
  IrProgram *p = tlower(src, d);
  if (!p) goto fail;
  Interp *in = interp_new(p, NULL);
  if (!interp_load_data(in, td ? &td->src : NULL, d)) goto fail;
  return in;
fail:
  tap_diag("compile failed: %s", d->msg);
  return NULL;
}

__attribute__((unused)) static int toutput(const Interp *in, const char *name) {
  const IrProgram *p = interp_program(in);
  for (int i = 0; i < p->noutputs; i++)
    if (strcmp(p->outputs[i].name, name) == 0) return i;
  return -1;
}

/* Engine options from name/value pairs (NULL-terminated), the others at their
 * defaults; a refused pair is a TAP diagnostic. */
__attribute__((unused)) static EngineOpts topts(const char *const *kv) {
  EngineOpts o;
  engine_opts_default(&o);
  Diag d;
  diag_init(&d);
  for (int i = 0; kv && kv[i]; i += 2)
    if (!engine_opts_set(&o, kv[i], kv[i + 1], &d)) tap_diag("option %s: %s", kv[i], d.msg);
  return o;
}

/* A chain of one engine: n kept draws of the scalar outputs asked for
 * (element `elem` of output `out[j]`, in val_flatten order), plus lp and
 * log weights. */
typedef struct TChain {
  int n;
  double *x[4];
  double *lp, *lw, *stat;
} TChain;

__attribute__((unused)) static bool trun(const EngineVT *e, const Interp *in, uint64_t seed, int chain, int warmup,
                 int n, int nout, const int *out, const int *elem, TChain *c, Diag *d) {
  EngineOpts o = {.chains = 1, .draws = n, .warmup = warmup, .thin = 1, .seed = seed};
  diag_init(d);
  void *st = e->init(in, &o, chain, d);
  if (!st) return false;
  c->n = n;
  for (int j = 0; j < nout; j++) c->x[j] = calloc((size_t)n, sizeof(double));
  c->lp = calloc((size_t)n, sizeof(double));
  c->lw = calloc((size_t)n, sizeof(double));
  c->stat = calloc((size_t)n, sizeof(double));
  for (int i = 0; i < warmup + n; i++) {
    Draw dr;
    memset(&dr, 0, sizeof dr);
    if (!e->step(st, e->uses_warmup && i < warmup, &dr, d)) return false;
    if (e->uses_warmup && i < warmup) continue;
    int k = e->uses_warmup ? i - warmup : i;
    if (k >= n) break;
    for (int j = 0; j < nout; j++) {
      Value v = dr.outputs[out[j]];
      double buf[64];
      size_t m = val_numel(v);
      if (m > 64) m = 64;
      val_flatten(v, buf);
      c->x[j][k] = (size_t)elem[j] < m ? buf[elem[j]] : NAN;
    }
    c->lp[k] = dr.lp;
    c->lw[k] = dr.log_weight;
    c->stat[k] = dr.stats[0];
  }
  e->free(st);
  return true;
}

/* svi_gradient's partials at the params' current values into g, and the
 * worst relative error |fd - g| / (1 + |g|) against central differences of
 * step h of the same-noise ELBO (seed); -1 when an evaluation fails (d says
 * why). */
__attribute__((unused)) static double tsvi_fd_worst(Svi *s, uint64_t seed, double h, double *g,
                                                    Diag *d) {
  size_t n = svi_dim(s);
  double *x = svi_values(s), *g2 = calloc(n ? n : 1, sizeof(double)), e0, ep, em, worst = 0;
  bool ok = svi_gradient(s, seed, true, &e0, g, d);
  for (size_t j = 0; ok && j < n; j++) {
    double x0 = x[j];
    x[j] = x0 + h;
    ok = svi_gradient(s, seed, true, &ep, g2, d);
    x[j] = x0 - h;
    ok = ok && svi_gradient(s, seed, true, &em, g2, d);
    x[j] = x0;
    worst = fmax(worst, fabs((ep - em) / (2 * h) - g[j]) / (1 + fabs(g[j])));
  }
  free(g2);
  return ok ? worst : -1;
}

__attribute__((unused)) static double tmean(int n, const double *x) {
  double s = 0;
  for (int i = 0; i < n; i++) s += x[i];
  return s / n;
}
__attribute__((unused)) static double tsd(int n, const double *x) {
  double m = tmean(n, x), s = 0;
  for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
  return sqrt(s / (n - 1));
}

/* ESS of one chain: Geyer's initial positive and monotone sequence estimator. */
__attribute__((unused)) static double tess(int n, const double *x) {
  double m = tmean(n, x), v0 = 0;
  for (int i = 0; i < n; i++) v0 += (x[i] - m) * (x[i] - m);
  v0 /= n;
  if (v0 == 0) return n;
  double sum = 0, prev = INFINITY;
  for (int t = 0; t + 1 < n; t += 2) {
    double g[2];
    for (int k = 0; k < 2; k++) {
      double s = 0;
      for (int i = 0; i + t + k < n; i++) s += (x[i] - m) * (x[i + t + k] - m);
      g[k] = s / n / v0;
    }
    double pair = g[0] + g[1];
    if (pair <= 0) break;
    if (pair > prev) pair = prev;
    prev = pair;
    sum += pair;
  }
  double tau = -1 + 2 * sum;
  if (tau < 1.0 / log10((double)n)) tau = 1.0 / log10((double)n);
  return n / tau;
}

/* Monte Carlo standard errors of the mean and of the sd of a chain. */
__attribute__((unused)) static double tmcse_mean(int n, const double *x) { return tsd(n, x) / sqrt(tess(n, x)); }
__attribute__((unused)) static double tmcse_sd(int n, const double *x) {
  double m = tmean(n, x), sd = tsd(n, x);
  double *sq = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) sq[i] = (x[i] - m) * (x[i] - m);
  double se_var = tsd(n, sq) / sqrt(tess(n, sq));
  free(sq);
  return se_var / (2 * sd);
}

#endif
