/* builtins_dist.c — the functions derived from every distribution family:
 * NAME_rng(params), NAME_lpdf(x | params) for continuous and NAME_lpmf for
 * discrete families, and for scalar families with CDFs NAME_lcdf, NAME_lccdf
 * and NAME_cdf.
 *
 * The entries are made from dist_all() on the first lookup (pthread_once) and
 * never change afterwards, so every thread may read them without a lock.
 * They live in malloc'd memory on purpose: the table holds no GC pointers and
 * must outlive every model.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins_impl.h"
#include "dist.h"

enum { DK_RNG, DK_LPDF, DK_LCDF, DK_LCCDF, DK_CDF };

typedef struct DistBuiltin {
  Builtin b;
  const DistFamily *fam;
  int kind;
  char name[64];
} DistBuiltin;

typedef struct {
  DistBuiltin *e;
  int n;
} DistTable;

static pthread_once_t dist_once = PTHREAD_ONCE_INIT;
static DistTable dist_table; /* written once inside pthread_once, then read-only */

/* data is the DistFamily (as builtins.h promises); the entry embeds the
   Builtin as its first member, so the entry is the Builtin's address. */
#define DB(b) ((const DistBuiltin *)(b))

static bool scalar_family(const DistFamily *f) {
  if (f->vtype.ndims || (f->vtype.base != TY_REAL && f->vtype.base != TY_INT)) return false;
  for (int i = 0; i < f->nparams; i++)
    if (!ty_is_scalar_num(f->ptype[i])) return false;
  return true;
}

/* "(mu, sigma)" or "(y, mu, sigma)" for arity messages */
static const char *param_list(const DistFamily *f, bool with_x, char *buf, size_t n) {
  size_t used = (size_t)snprintf(buf, n, "(%s", with_x ? (f->discrete ? "n" : "y") : "");
  for (int i = 0; i < f->nparams && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, "%s%s", i || with_x ? ", " : "",
                             f->pnames[i] ? f->pnames[i] : "?");
  if (used < n) snprintf(buf + used, n - used, ")");
  return buf;
}

static bool dist_check(BI_CHECK_ARGS) {
  const DistBuiltin *d = DB(b);
  const DistFamily *f = d->fam;
  bool has_x = d->kind != DK_RNG;
  if (nargs != f->nparams + has_x) {
    char pl[200];
    return bi_fail(err, errsz, "%s expects %d argument%s %s, got %d", b->name, f->nparams + has_x,
                   f->nparams + has_x == 1 ? "" : "s", param_list(f, has_x, pl, sizeof pl), nargs);
  }
  const Type *p = has_x ? args + 1 : args;
  Type x = has_x ? args[0] : f->vtype;
  if (!dist_check_types(f, f->nparams, p, x, err, errsz)) return false;
  if (has_x) {
    *ret = ty_make(TY_REAL, 0);
    return true;
  }
  /* NAME_rng: one draw, or an array of draws when a parameter is a container */
  bool many = false;
  for (int i = 0; i < f->nparams; i++) {
    if (scalar_family(f))
      many |= !ty_is_scalar_num(p[i]);
    else
      many |= p[i].ndims > f->ptype[i].ndims;
  }
  *ret = many ? ty_make((TyBase)f->vtype.base, f->vtype.ndims + 1) : f->vtype;
  return true;
}

static bool dist_eval(BI_EVAL_ARGS) {
  const DistBuiltin *d = DB(b);
  const DistFamily *f = d->fam;
  if (d->kind == DK_RNG) {
    if (!ctx || !ctx->rng)
      return bi_efail(b, err, errsz, "no random number generator is available here");
    return dist_rng_value(f, ctx->rng, nargs, args, out, err, errsz);
  }
  if (nargs != f->nparams + 1)
    return bi_efail(b, err, errsz, "expected %d arguments, got %d", f->nparams + 1, nargs);
  double r;
  bool ok = d->kind == DK_LPDF ? dist_lpdf_value(f, args[0], nargs - 1, args + 1, &r, err, errsz)
                               : dist_lcdf_value(f, args[0], nargs - 1, args + 1,
                                                 d->kind == DK_LCCDF, &r, err, errsz);
  if (!ok) return false;
  *out = val_real(d->kind == DK_CDF ? exp(r) : r);
  return true;
}

bool bi_dist_eval_ad(const Builtin *b, Tape *t, int nargs, const Value *args, Value *out,
                     char *err, size_t errsz, bool *handled) {
  *handled = false;
  if (b->eval != dist_eval) return true;
  const DistBuiltin *d = DB(b);
  if (d->kind != DK_LPDF) return true; /* lcdf, lccdf, cdf, rng: no rule */
  *handled = true;
  if (nargs != d->fam->nparams + 1)
    return bi_efail(b, err, errsz, "expected %d arguments, got %d", d->fam->nparams + 1, nargs);
  double r;
  int32_t node;
  if (!dist_lpdf_value_ad(d->fam, t, args[0], nargs - 1, args + 1, &r, &node, err, errsz))
    return false;
  *out = val_real(r);
  out->ad = node;
  return true;
}

static void add(DistTable *t, const DistFamily *f, int kind, const char *suffix) {
  DistBuiltin *e = &t->e[t->n];
  if (snprintf(e->name, sizeof e->name, "%s_%s", f->name, suffix) >= (int)sizeof e->name) return;
  e->fam = f;
  e->kind = kind;
  e->b.name = e->name;
  e->b.check = dist_check;
  e->b.eval = dist_eval;
  e->b.data = f;
  e->b.uses_rng = kind == DK_RNG;
  t->n++;
}

static void dist_init(void) {
  const DistFamily *const *all = dist_all();
  int nf = 0;
  while (all && all[nf])
    nf++;
  DistTable t = {calloc((size_t)(nf ? nf : 1) * 5, sizeof(DistBuiltin)), 0};
  if (!t.e) return; /* out of memory: no distribution builtins, lookups say unknown */
  for (int i = 0; i < nf; i++) {
    const DistFamily *f = all[i];
    if (!f->name) continue;
    add(&t, f, DK_RNG, "rng");
    add(&t, f, DK_LPDF, f->discrete ? "lpmf" : "lpdf");
    if (scalar_family(f) && f->lcdf1) {
      add(&t, f, DK_LCDF, "lcdf");
      add(&t, f, DK_CDF, "cdf");
    }
    if (scalar_family(f) && f->lccdf1) add(&t, f, DK_LCCDF, "lccdf");
  }
  dist_table = t;
}

bool bi_dist_cdf_kind(const Builtin *b, bool *upper, bool *prob) {
  if (b->eval != dist_eval || !b->data) return false;
  int k = DB(b)->kind;
  *upper = k == DK_LCCDF;
  *prob = k == DK_CDF;
  return k == DK_LCDF || k == DK_LCCDF || k == DK_CDF;
}

const Builtin *bi_dist_lookup(const char *name) {
  pthread_once(&dist_once, dist_init);
  for (int i = 0; i < dist_table.n; i++)
    if (strcmp(dist_table.e[i].name, name) == 0) return &dist_table.e[i].b;
  return NULL;
}
