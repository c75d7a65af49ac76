/* motif.c — blocks, their Markov blankets found by probing, signatures, and
 * the proposal networks of learned MH (motif.h): their features, training on
 * simulated motifs, and their files.
 *
 * Why probing rather than the static dependency graph: the graph has one node
 * per declaration (z and y, not z[3] and y[3]), and which mu a y[n] reads is
 * decided by z[n]'s value at run time.  Replaying the program with the element
 * set to each of its values shows exactly which distributions it enters and
 * how, whatever indexing or control flow the program uses; and the same
 * replays are the candidate traces of the move, so the proposal costs K runs.
 */
#include "motif.h"
#include "motif_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../stdlib/optim.h"
#include "../stdlib/safetensors.h"
#include "../stdlib/tensor.h"

#define MOTIF_HIDDEN 32
#define MOTIF_PROB_EPS 1e-12 /* theta clamped away from 0 and 1 in the features */

/* ---- blocks ---- */

static bool finite_support(const TraceChoice *c, int *K) {
  if (c->continuous || c->type.base == TY_STRING || c->structured || c->unit_len != 1)
    return false;
  if (!isfinite(c->lower) || !isfinite(c->upper)) return false;
  double k = c->upper - c->lower + 1;
  if (!(k >= 2 && k <= MOTIF_MAXK)) return false;
  *K = (int)k;
  return true;
}

int motif_sites(const Trace *t, MotifSite **out) {
  int n = 0, K;
  for (int i = 0; i < t->n; i++)
    if (finite_support(&t->c[i], &K)) n += t->c[i].numel;
  MotifSite *s = gc_alloc(sizeof(MotifSite) * (size_t)(n + 1));
  int k = 0;
  for (int i = 0; i < t->n; i++)
    if (finite_support(&t->c[i], &K))
      for (int e = 0; e < t->c[i].numel; e++) s[k++] = (MotifSite){t->c[i].addr, e};
  *out = s;
  return n;
}

/* ---- probing: a trace handler that also records every event ---- */


typedef struct ProbeHandler {
  TraceHandler th; /* first: a ProbeHandler* is a Handler* */
  HandlerResult (*sample)(Handler *, const char *, const DistCall *, Value *, SrcPos, Diag *);
  HandlerResult (*observe)(Handler *, const DistCall *, Value, SrcPos, Diag *);
  HandlerResult (*factor)(Handler *, double, SrcPos, Diag *);
  MotifEv *ev;
  int n, cap;
} ProbeHandler;

static double *flat(Value v, int *n) {
  size_t m = val_numel(v);
  double *d = gc_alloc_atomic(sizeof(double) * (m + 1));
  *n = (int)val_flatten(v, d);
  return d;
}

static MotifEv *push_ev(ProbeHandler *ph, char kind, const DistCall *dc) {
  if (ph->n == ph->cap) {
    int cap = ph->cap ? 2 * ph->cap : 32;
    MotifEv *e = gc_alloc(sizeof(MotifEv) * (size_t)cap);
    if (ph->n) memcpy(e, ph->ev, sizeof(MotifEv) * (size_t)ph->n);
    ph->ev = e;
    ph->cap = cap;
  }
  MotifEv *e = &ph->ev[ph->n++];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  if (dc) {
    e->fam = dc->fam;
    e->np = dc->np < DIST_MAX_PARAMS ? dc->np : DIST_MAX_PARAMS;
    for (int q = 0; q < e->np; q++) e->p[q] = flat(dc->p[q], &e->pn[q]);
  }
  return e;
}

static HandlerResult ph_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                               SrcPos pos, Diag *d) {
  ProbeHandler *ph = (ProbeHandler *)h;
  double before = ph->th.tr->logprior;
  HandlerResult r = ph->sample(h, addr, dc, out, pos, d);
  if (r == HR_ERROR) return r;
  MotifEv *e = push_ev(ph, 's', dc);
  e->addr = addr;
  e->x = flat(*out, &e->xn);
  e->lp = ph->th.tr->logprior - before;
  return r;
}

static HandlerResult ph_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  ProbeHandler *ph = (ProbeHandler *)h;
  MotifEv *e = push_ev(ph, 'o', dc);
  e->x = flat(x, &e->xn);
  int i = ph->n - 1;
  double before = ph->th.tr->loglik;
  HandlerResult r = ph->observe(h, dc, x, pos, d);
  ph->ev[i].lp = ph->th.tr->loglik - before;
  return r;
}

static HandlerResult ph_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  ProbeHandler *ph = (ProbeHandler *)h;
  MotifEv *e = push_ev(ph, 'f', NULL);
  e->x = gc_alloc_atomic(sizeof(double));
  e->x[0] = lw;
  e->xn = 1;
  return ph->factor(h, lw, pos, d);
}

Trace *motif_run_events(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                        const TraceBlock *b, Rng *rng, MotifEv **ev, int *nev, InterpState **st,
                        TraceHandler *done, Diag *rd) {
  ProbeHandler ph;
  memset(&ph, 0, sizeof ph);
  trace_handler_init(&ph.th, rng, cur, NULL, NULL, NULL);
  char err[256];
  diag_init(rd);
  if (b && !trace_handler_set_block(&ph.th, b, err, sizeof err)) {
    diag_error(rd, DIAG_INTERNAL, (SrcPos){0}, "%s", err);
    return NULL;
  }
  ph.sample = ph.th.h.sample, ph.observe = ph.th.h.observe, ph.factor = ph.th.h.factor;
  ph.th.h.sample = ph_sample, ph.th.h.observe = ph_observe, ph.th.h.factor = ph_factor;
  Trace *t = trace_run(in, &ph.th, model_seed, stream, false, st, rd);
  *ev = ph.ev;
  *nev = ph.n;
  if (done) *done = ph.th;
  return t;
}

/* ---- features ---- */

typedef enum { CK_NONE, CK_NORMAL, CK_BERNOULLI, CK_CATEGORICAL } ChildKind;

static void feat_normal(double y, double mu, double sigma, double *f) {
  double r = (y - mu) / sigma;
  f[0] = r;
  f[1] = 0.5 * r * r;
  f[2] = log(sigma);
}

static void feat_bernoulli(double y, double theta, double *f) {
  double p = fmin(fmax(theta, MOTIF_PROB_EPS), 1 - MOTIF_PROB_EPS);
  f[0] = y;
  f[1] = log(p);
  f[2] = log1p(-p);
}

/* A categorical child of C values at y (1-based) with probabilities theta. */
static void feat_categorical(double y, const double *theta, int C, double *f) {
  int i = (int)y - 1;
  if (i < 0 || i >= C) return;
  double p = fmin(fmax(theta[i], MOTIF_PROB_EPS), 1 - MOTIF_PROB_EPS);
  f[0] = log(p);
  f[1] = log1p(-p);
  f[2] = log((double)C);
}

/* The kind of a child "normal(mu)" ... from its family and the parameters the
   block moves; CK_NONE for kinds this version has no features for. */
static ChildKind child_kind(const char *kind) {
  if (!strcmp(kind, "normal(mu)") || !strcmp(kind, "normal(sigma)") ||
      !strcmp(kind, "normal(mu,sigma)"))
    return CK_NORMAL;
  if (!strcmp(kind, "bernoulli(theta)")) return CK_BERNOULLI;
  if (!strcmp(kind, "categorical(theta)")) return CK_CATEGORICAL;
  return CK_NONE;
}

/* A discrete signature's kinds of children, in its order ("a+b"). */
typedef struct SigKinds {
  int n;
  ChildKind ck[MOTIF_MAXKINDS];
  const char *name[MOTIF_MAXKINDS];
} SigKinds;

static bool sig_kinds(const char *kinds, SigKinds *sk) {
  memset(sk, 0, sizeof *sk);
  for (const char *p = kinds; *p;) {
    const char *e = strchr(p, '+');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (sk->n == MOTIF_MAXKINDS) return false;
    char *name = gc_alloc_atomic(len + 1);
    memcpy(name, p, len);
    name[len] = 0;
    sk->name[sk->n] = name;
    if ((sk->ck[sk->n++] = child_kind(name)) == CK_NONE) return false;
    p += len + (e != NULL);
  }
  return sk->n > 0;
}

#define SIG_PREFIX "finite->"

/* The children's kinds of a discrete signature (single or block). */
static const char *sig_body(const char *sig) {
  if (!strncmp(sig, MOTIF_BLOCK_PREFIX, strlen(MOTIF_BLOCK_PREFIX)))
    return sig + strlen(MOTIF_BLOCK_PREFIX);
  return sig + strlen(SIG_PREFIX);
}

static bool sig_block(const char *sig) {
  return !strncmp(sig, MOTIF_BLOCK_PREFIX, strlen(MOTIF_BLOCK_PREFIX));
}

bool motif_sig_supported(const char *sig, const char **why) {
  if (motif_cont_sig(sig)) return true;
  if (!strncmp(sig, "normal->", 8)) {
    *why = gc_printf("motif '%s': continuous blocks have proposals for children normal(mu) "
                     "located at the block (normal->normal(mu)) in this version", sig);
    return false;
  }
  if (strncmp(sig, SIG_PREFIX, strlen(SIG_PREFIX)) != 0 && !sig_block(sig)) {
    *why = gc_printf("'%s' is not a motif signature (they start with \"" SIG_PREFIX "\")", sig);
    return false;
  }
  const char *kind = sig_body(sig);
  SigKinds sk;
  if (!sig_kinds(kind, &sk)) {
    const char *bad = sk.n && sk.ck[sk.n - 1] == CK_NONE ? sk.name[sk.n - 1] : kind;
    *why = sk.n == MOTIF_MAXKINDS && sk.ck[sk.n - 1] != CK_NONE
               ? gc_printf("motif '%s' has more than %d kinds of children", sig, MOTIF_MAXKINDS)
               : gc_printf("motif '%s': no proposal for children '%s' in this version (normal(mu), "
                           "normal(sigma), normal(mu,sigma), bernoulli(theta), categorical(theta) "
                           "and mixtures of them)", sig, bad);
    return false;
  }
  return true;
}

double motif_pv(const MotifEv *e, int q, int j) {
  if (q >= e->np || e->pn[q] == 0) return NAN;
  return e->pn[q] == 1 ? e->p[q][0] : e->p[q][j < e->pn[q] ? j : 0];
}

bool motif_same_event(const MotifEv *a, const MotifEv *b) {
  if (a->kind != b->kind || a->fam != b->fam || a->np != b->np || a->xn != b->xn) return false;
  if (a->kind == 's' && strcmp(a->addr, b->addr) != 0) return false;
  for (int q = 0; q < a->np; q++)
    if (a->pn[q] != b->pn[q]) return false;
  return true;
}

/* Does parameter q of event i, as element j sees it, differ between values? */
static bool param_varies(MotifEv **ev, int K, int k0, int i, int q, int j) {
  const MotifEv *e0 = &ev[k0][i];
  int pn = e0->pn[q];
  for (int k = k0 + 1; k < K; k++) {
    if (!ev[k]) continue;
    const MotifEv *e = &ev[k][i];
    if (pn == 1 || pn == e0->xn) {
      if (motif_pv(e, q, j) != motif_pv(e0, q, j)) return true;
    } else { /* a vector parameter of a scalar draw (categorical's theta) */
      for (int m = 0; m < pn; m++)
        if (e->p[q][m] != e0->p[q][m]) return true;
    }
  }
  return false;
}

/* The features of p's children under each value, from the runs' events
   (ev[k] NULL: value k impossible, features 0). */
static void unit_features(MotifProbe *p, const MotifEv *const *ev) {
  for (int u = 0; u < p->nunits; u++)
    for (int k = 0; k < p->K; k++) {
      ChildKind ck = (ChildKind)p->unit_ck[u];
      double *f = p->feat + ((size_t)u * (size_t)p->K + (size_t)k) * MOTIF_NFEAT;
      memset(f, 0, sizeof(double) * MOTIF_NFEAT);
      if (!ev[k] || ck == CK_NONE) continue;
      const MotifEv *e = &ev[k][p->unit_ev[u]];
      int j = p->unit_el[u];
      if (ck == CK_NORMAL) feat_normal(e->x[j], motif_pv(e, 0, j), motif_pv(e, 1, j), f);
      else if (ck == CK_BERNOULLI) feat_bernoulli(e->x[j], motif_pv(e, 0, j), f);
      else if (e->np > 0) /* theta: one vector of probabilities for the draw */
        feat_categorical(e->x[j], e->p[0], e->pn[0], f);
      for (int m = 0; m < MOTIF_NFEAT; m++)
        if (!isfinite(f[m])) f[m] = 0;
    }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The value cell i of p has at block value k. */
static double cell_value(const MotifProbe *p, int i, int k) {
  return p->ncell == 1 ? p->lo + k : p->lo + ((k >> i) & 1);
}

TraceBlock motif_probe_at(const MotifProbe *p, const Trace *cur, int k) {
  TraceBlock b = {.n = p->ncell, .addrs = gc_alloc(sizeof(char *) * (size_t)p->ncell),
                  .vals = gc_alloc(sizeof(Value) * (size_t)p->ncell), .log_q_ratio = 0};
  for (int i = 0; i < p->ncell; i++) {
    const TraceChoice *c = trace_find(cur, p->cell_addr[i]);
    b.addrs[i] = p->cell_addr[i];
    b.vals[i] = val_copy(c->val);
    trace_value_set(&b.vals[i], (size_t)p->cell_elem[i], cell_value(p, i, k));
  }
  return b;
}

int motif_probe_value(const MotifProbe *p, const Trace *cur) {
  int k = 0;
  for (int i = 0; i < p->ncell; i++) {
    const TraceChoice *c = trace_find(cur, p->cell_addr[i]);
    if (!c || p->cell_elem[i] >= c->numel) return -1;
    int v = (int)(trace_value_get(c->val, (size_t)p->cell_elem[i]) - p->lo);
    if (p->ncell == 1) k = v;
    else if (v == 1) k |= 1 << i;
    else if (v != 0) return -1;
  }
  return k >= 0 && k < p->K ? k : -1;
}

bool motif_probe(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                 const char *addr, int elem, Rng *rng, MotifProbe *out, Diag *d) {
  MotifSite one = {addr, elem};
  return motif_probe_block(in, model_seed, stream, cur, 1, &one, rng, out, d);
}

bool motif_probe_block(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                       int ncell, const MotifSite *cells, Rng *rng, MotifProbe *out, Diag *d) {
  memset(out, 0, sizeof *out);
  int K = 1;
  out->ncell = ncell;
  out->cell_addr = gc_alloc(sizeof(char *) * (size_t)ncell);
  out->cell_elem = gc_alloc_atomic(sizeof(int) * (size_t)ncell);
  out->cell_ev = gc_alloc_atomic(sizeof(int) * (size_t)ncell);
  out->own_choice = 1;
  for (int i = 0; i < ncell; i++) {
    const TraceChoice *c = trace_find(cur, cells[i].addr);
    int Ki;
    if (!c || cells[i].elem >= c->numel || !finite_support(c, &Ki) ||
        (ncell > 1 && (Ki != 2 || c->numel != 1 || c->lower != trace_find(cur, cells[0].addr)->lower))) {
      out->why = ncell == 1 ? "not an element of a discrete choice with a small finite support"
                            : "not a block of binary choices";
      return true;
    }
    out->cell_addr[i] = c->addr;
    out->cell_elem[i] = cells[i].elem;
    out->own_choice &= c->numel == 1;
    K *= Ki;
  }
  const char *addr = out->cell_addr[0];
  out->addr = addr;
  out->elem = cells[0].elem;
  out->K = K;
  out->lo = trace_find(cur, addr)->lower;
  out->cur = motif_probe_value(out, cur);
  out->tr = gc_alloc(sizeof(Trace *) * (size_t)K);
  out->st = gc_alloc(sizeof(InterpState *) * (size_t)K);
  out->fresh_lp = gc_alloc_atomic(sizeof(double) * (size_t)K);
  out->block_seen = gc_alloc_atomic(sizeof(int) * (size_t)K);
  out->lprior = gc_alloc_atomic(sizeof(double) * (size_t)K);
  MotifEv **ev = gc_alloc(sizeof(MotifEv *) * (size_t)K);
  int *nev = gc_alloc_atomic(sizeof(int) * (size_t)K);
  int k0 = -1;
  for (int k = 0; k < K; k++) {
    TraceBlock b = motif_probe_at(out, cur, k);
    ProbeHandler ph;
    memset(&ph, 0, sizeof ph);
    trace_handler_init(&ph.th, rng, cur, NULL, NULL, NULL);
    char err[256];
    if (!trace_handler_set_block(&ph.th, &b, err, sizeof err)) {
      diag_error(d, DIAG_INTERNAL, (SrcPos){0}, "%s", err);
      return false;
    }
    ph.sample = ph.th.h.sample, ph.observe = ph.th.h.observe, ph.factor = ph.th.h.factor;
    ph.th.h.sample = ph_sample, ph.th.h.observe = ph_observe, ph.th.h.factor = ph_factor;
    Diag rd;
    diag_init(&rd);
    Trace *t = trace_run(in, &ph.th, model_seed, stream, false, &out->st[k], &rd);
    out->lprior[k] = -INFINITY;
    if (!t) {
      if (rd.code == DIAG_INTERNAL) {
        *d = rd;
        return false;
      }
      continue; /* a value the program rejects: impossible */
    }
    double lp = 0;
    for (int i = 0; i < ncell; i++) {
      const TraceChoice *nc = trace_find(t, out->cell_addr[i]);
      lp += nc ? nc->lp : -INFINITY;
    }
    if (!(lp > -INFINITY) || !isfinite(t->loglik)) continue;
    for (int i = 0; i < t->n; i++)
      if (t->c[i].fresh) {
        out->why = gc_printf("the program draws new choices ('%s') when %s takes another value",
                             t->c[i].addr, addr);
        return true;
      }
    out->tr[k] = t;
    out->fresh_lp[k] = ph.th.fresh_lp;
    out->block_seen[k] = ph.th.block_seen;
    out->lprior[k] = lp;
    ev[k] = ph.ev;
    nev[k] = ph.n;
    if (k0 < 0) k0 = k;
  }
  if (k0 < 0 || out->cur < 0 || !out->tr[out->cur]) {
    out->why = "no other value of it is possible";
    return true;
  }
  double m = -INFINITY, s = 0;
  for (int k = 0; k < K; k++) m = fmax(m, out->lprior[k]);
  for (int k = 0; k < K; k++) s += exp(out->lprior[k] - m);
  for (int k = 0; k < K; k++) out->lprior[k] -= m + log(s);
  /* the same events in every replay: a fixed structure around the block */
  for (int k = k0 + 1; k < K; k++) {
    if (!ev[k]) continue;
    bool same = nev[k] == nev[k0];
    for (int i = 0; same && i < nev[k0]; i++) same = motif_same_event(&ev[k][i], &ev[k0][i]);
    if (!same) {
      out->why = gc_printf("the program's events change with the value of %s", addr);
      return true;
    }
  }
  /* children: elements of events whose parameters move with the block */
  int ucap = 16, nu = 0;
  const MotifEv **uev = gc_alloc(sizeof(MotifEv *) * (size_t)ucap);
  int *uel = gc_alloc_atomic(sizeof(int) * (size_t)ucap), *ui = gc_alloc_atomic(sizeof(int) * (size_t)ucap);
  const char **ukind = gc_alloc(sizeof(char *) * (size_t)ucap);
  for (int i = 0; i < nev[k0]; i++) {
    const MotifEv *e0 = &ev[k0][i];
    if (e0->kind == 'f') {
      for (int k = k0 + 1; k < K; k++)
        if (ev[k] && ev[k][i].x[0] != e0->x[0]) {
          out->why = gc_printf("a factor statement depends on %s", addr);
          return true;
        }
      continue;
    }
    int own = -1;
    for (int c = 0; e0->kind == 's' && c < ncell; c++)
      if (!strcmp(e0->addr, out->cell_addr[c])) own = c;
    if (own >= 0) {
      out->cell_ev[own] = i;
      if (own == 0) out->own_ev = i;
      continue;
    }
    for (int j = 0; j < e0->xn; j++) {
      unsigned varies = 0;
      for (int q = 0; q < e0->np; q++)
        if (param_varies(ev, K, k0, i, q, j)) varies |= 1u << q;
      if (!varies) continue;
      char kind[128];
      size_t len = (size_t)snprintf(kind, sizeof kind, "%s(", e0->fam->name);
      for (int q = 0, any = 0; q < e0->np; q++)
        if (varies & (1u << q)) {
          len += (size_t)snprintf(kind + len, len < sizeof kind ? sizeof kind - len : 0, "%s%s",
                                  any++ ? "," : "", e0->fam->pnames[q] ? e0->fam->pnames[q] : "?");
        }
      if (len < sizeof kind - 1) strcat(kind, ")");
      if (nu == ucap) {
        ucap *= 2;
        const MotifEv **a = gc_alloc(sizeof(MotifEv *) * (size_t)ucap);
        int *b = gc_alloc_atomic(sizeof(int) * (size_t)ucap), *c2 = gc_alloc_atomic(sizeof(int) * (size_t)ucap);
        const char **kk = gc_alloc(sizeof(char *) * (size_t)ucap);
        memcpy(a, uev, sizeof(MotifEv *) * (size_t)nu), memcpy(b, uel, sizeof(int) * (size_t)nu);
        memcpy(c2, ui, sizeof(int) * (size_t)nu), memcpy(kk, ukind, sizeof(char *) * (size_t)nu);
        uev = a, uel = b, ui = c2, ukind = kk;
      }
      uev[nu] = e0, uel[nu] = j, ui[nu] = i, ukind[nu] = gc_strdup(kind);
      nu++;
    }
  }
  if (nu == 0) {
    out->why = gc_printf("no observation or latent depends on %s", addr);
    return true;
  }
  /* the signature: the children's kinds, sorted, each once */
  const char **kinds = gc_alloc(sizeof(char *) * (size_t)nu);
  memcpy(kinds, ukind, sizeof(char *) * (size_t)nu);
  qsort(kinds, (size_t)nu, sizeof(char *), cmp_str);
  const char *sig = ncell > 1 ? MOTIF_BLOCK_PREFIX : SIG_PREFIX;
  for (int u = 0; u < nu; u++)
    if (u == 0 || strcmp(kinds[u], kinds[u - 1]))
      sig = gc_printf("%s%s%s", sig, u ? "+" : "", kinds[u]);
  out->sig = sig;
  out->nunits = nu;
  out->nev = nev[k0];
  out->unit_ev = gc_alloc_atomic(sizeof(int) * (size_t)nu);
  out->unit_el = gc_alloc_atomic(sizeof(int) * (size_t)nu);
  memcpy(out->unit_ev, ui, sizeof(int) * (size_t)nu);
  memcpy(out->unit_el, uel, sizeof(int) * (size_t)nu);
  /* each child's kind: its place among the signature's kinds */
  SigKinds sk;
  bool known = sig_kinds(sig_body(sig), &sk);
  out->unit_ck = gc_alloc_atomic(sizeof(int) * (size_t)nu);
  out->unit_kind = gc_alloc_atomic(sizeof(int) * (size_t)nu);
  for (int u = 0; u < nu; u++) {
    int c2 = 0;
    while (known && c2 < sk.n - 1 && strcmp(sk.name[c2], ukind[u])) c2++;
    out->unit_kind[u] = c2;
    out->unit_ck[u] = known ? (int)sk.ck[c2] : CK_NONE;
  }
  out->feat = gc_alloc_atomic(sizeof(double) * (size_t)nu * (size_t)K * MOTIF_NFEAT);
  unit_features(out, (const MotifEv *const *)ev);
  return true;
}

/* How many of the block's cells have event e as a child. */
static int parents_in(const MotifProbe *p, const int *cells, int m, int e) {
  int cnt = 0;
  for (int b = 0; b < m; b++)
    for (int v = 0; v < p[cells[b]].nunits; v++) cnt += p[cells[b]].unit_ev[v] == e;
  return cnt;
}

int motif_blocks(int n, const MotifProbe *p, int *blk, int maxcells) {
  /* the cells, and which is drawn by which event */
  bool *ok = gc_alloc_atomic(sizeof(bool) * (size_t)(n + 1));
  int maxev = 0;
  for (int i = 0; i < n; i++) {
    ok[i] = p[i].sig && p[i].ncell == 1 && p[i].K == 2 && p[i].own_choice;
    if (ok[i] && p[i].own_ev + 1 > maxev) maxev = p[i].own_ev + 1;
  }
  int *cell_of_ev = gc_alloc_atomic(sizeof(int) * (size_t)(maxev + 1));
  for (int e = 0; e <= maxev; e++) cell_of_ev[e] = -1;
  for (int i = 0; i < n; i++)
    if (ok[i]) cell_of_ev[p[i].own_ev] = i;
  for (int i = 0; i < n; i++) blk[i] = -1;
  int nb = 0, cells[MOTIF_MAXCELLS];
  for (int s = 0; s < n; s++) {
    if (!ok[s] || blk[s] >= 0) continue;
    int m = 0;
    cells[m++] = s;
    blk[s] = nb;
    /* the variable with its free latent children, then the free cell that
       is a child of most cells of the block (the first on ties) */
    for (int phase = 0; phase < 2; phase++)
      while (m < maxcells && m < MOTIF_MAXCELLS) {
        int best = -1, bestn = 0;
        for (int a = 0; a < (phase ? m : 1); a++)
          for (int u = 0; u < p[cells[a]].nunits; u++) {
            int e = p[cells[a]].unit_ev[u];
            int c = e < maxev ? cell_of_ev[e] : -1;
            if (c < 0 || blk[c] >= 0 || p[c].lo != p[s].lo) continue;
            int cnt = parents_in(p, cells, m, e);
            if (cnt > bestn || (cnt == bestn && c < best)) best = c, bestn = cnt;
          }
        if (best < 0) break;
        blk[best] = nb;
        cells[m++] = best;
      }
    if (m == 1) blk[s] = -1;
    else nb++;
  }
  return nb;
}

typedef struct KeyBlock {
  long key;
  int block;
} KeyBlock;

static int cmp_keyblock(const void *a, const void *b) {
  const KeyBlock *x = a, *y = b;
  return x->key != y->key ? (x->key < y->key ? -1 : 1) : x->block - y->block;
}

int motif_groups(int n, const MotifProbe *p, int *group) {
  /* each (event, element) with the blocks that are it or whose child it is */
  int total = 0;
  for (int b = 0; b < n; b++) total += p[b].nunits + p[b].ncell;
  KeyBlock *kb = gc_alloc_atomic(sizeof(KeyBlock) * (size_t)(total + 1));
  int m = 0;
  for (int b = 0; b < n; b++) {
    for (int i = 0; i < p[b].ncell; i++)
      kb[m++] = (KeyBlock){(long)p[b].cell_ev[i] * 1000003L + p[b].cell_elem[i], b};
    for (int u = 0; u < p[b].nunits; u++)
      kb[m++] = (KeyBlock){(long)p[b].unit_ev[u] * 1000003L + p[b].unit_el[u], b};
  }
  qsort(kb, (size_t)m, sizeof(KeyBlock), cmp_keyblock);
  /* conflicts: blocks that meet at a key */
  int *deg = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1)), **adj = gc_alloc(sizeof(int *) * (size_t)(n + 1)),
      *cap = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  for (int i = 0, j; i < m; i = j) {
    for (j = i; j < m && kb[j].key == kb[i].key; j++) {}
    for (int a = i; a < j; a++)
      for (int c = i; c < j; c++) {
        int x = kb[a].block, y = kb[c].block;
        if (x == y) continue;
        if (deg[x] == cap[x]) {
          cap[x] = cap[x] ? 2 * cap[x] : 8;
          int *t = gc_alloc_atomic(sizeof(int) * (size_t)cap[x]);
          if (deg[x]) memcpy(t, adj[x], sizeof(int) * (size_t)deg[x]);
          adj[x] = t;
        }
        adj[x][deg[x]++] = y;
      }
  }
  /* colouring by saturation (DSatur): the block whose neighbours have the
     most colours first, then the one with most neighbours; few colours are
     few batches (a grid's squares meet their neighbours across six sides,
     which three colours serve, against five or six in block order) */
  int ng = 0;
  bool *used = gc_alloc_atomic(sizeof(bool) * (size_t)(n + 1));
  int *sat = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1)), *stamp = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  for (int b = 0; b < n; b++) group[b] = -1, stamp[b] = -1;
  for (int step = 0; step < n; step++) {
    int b = -1;
    for (int v = 0; v < n; v++)
      if (group[v] < 0 && (b < 0 || sat[v] > sat[b] || (sat[v] == sat[b] && deg[v] > deg[b]))) b = v;
    memset(used, 0, sizeof(bool) * (size_t)(n + 1));
    for (int e = 0; e < deg[b]; e++)
      if (group[adj[b][e]] >= 0) used[group[adj[b][e]]] = true;
    int g = 0;
    while (used[g]) g++;
    group[b] = g;
    if (g + 1 > ng) ng = g + 1;
    for (int e = 0; e < deg[b]; e++) { /* g is new to an uncoloured neighbour: one more colour */
      int u = adj[b][e];
      if (group[u] >= 0 || stamp[u] == step) continue;
      stamp[u] = step;
      bool had = false;
      for (int f = 0; f < deg[u] && !had; f++) had = adj[u][f] != b && group[adj[u][f]] == g;
      sat[u] += !had;
    }
  }
  return ng;
}

bool motif_probe_batch(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                       int n, MotifProbe *p, Rng *rng, bool *ok, Diag *d) {
  *ok = false;
  int K = p[0].K;
  /* the blocks' choices, each once, with every block's cells at value k */
  int ncells = 0;
  for (int b = 0; b < n; b++) ncells += p[b].ncell;
  const char **addrs = gc_alloc(sizeof(char *) * (size_t)ncells);
  int *slot = gc_alloc_atomic(sizeof(int) * (size_t)ncells), na = 0;
  for (int b = 0, j = 0; b < n; b++)
    for (int i = 0; i < p[b].ncell; i++, j++) {
      int a = 0;
      while (a < na && strcmp(addrs[a], p[b].cell_addr[i])) a++;
      if (a == na) addrs[na++] = p[b].cell_addr[i];
      slot[j] = a;
    }
  Value *vals = gc_alloc(sizeof(Value) * (size_t)na);
  const MotifEv **ev = gc_alloc(sizeof(MotifEv *) * (size_t)K);
  Trace **tr = gc_alloc(sizeof(Trace *) * (size_t)K);
  for (int k = 0; k < K; k++) {
    for (int a = 0; a < na; a++) vals[a] = val_copy(trace_find(cur, addrs[a])->val);
    for (int b = 0, j = 0; b < n; b++)
      for (int i = 0; i < p[b].ncell; i++, j++)
        trace_value_set(&vals[slot[j]], (size_t)p[b].cell_elem[i], cell_value(&p[b], i, k));
    TraceBlock blk = {.n = na, .addrs = addrs, .vals = vals, .log_q_ratio = 0};
    ProbeHandler ph;
    memset(&ph, 0, sizeof ph);
    trace_handler_init(&ph.th, rng, cur, NULL, NULL, NULL);
    char err[256];
    if (!trace_handler_set_block(&ph.th, &blk, err, sizeof err)) return true;
    ph.sample = ph.th.h.sample, ph.observe = ph.th.h.observe, ph.factor = ph.th.h.factor;
    ph.th.h.sample = ph_sample, ph.th.h.observe = ph_observe, ph.th.h.factor = ph_factor;
    Diag rd;
    diag_init(&rd);
    Trace *t = trace_run(in, &ph.th, model_seed, stream, false, NULL, &rd);
    if (!t) {
      if (rd.code == DIAG_INTERNAL) {
        *d = rd;
        return false;
      }
      return true;
    }
    if (ph.n != p[0].nev) return true;
    for (int i = 0; i < t->n; i++)
      if (t->c[i].fresh) return true;
    ev[k] = ph.ev;
    tr[k] = t;
  }
  for (int b = 0; b < n; b++) {
    unit_features(&p[b], ev);
    if (!p[b].lloc) p[b].lloc = gc_alloc_atomic(sizeof(double) * (size_t)K);
    for (int k = 0; k < K; k++) {
      p[b].lloc[k] = 0;
      for (int u = 0; u < p[b].nunits; u++)
        if (u == 0 || p[b].unit_ev[u] != p[b].unit_ev[u - 1]) p[b].lloc[k] += ev[k][p[b].unit_ev[u]].lp;
    }
    if (!p[b].own_choice) continue;
    double m = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) {
      p[b].lprior[k] = 0;
      for (int i = 0; i < p[b].ncell; i++) {
        const TraceChoice *c = trace_find(tr[k], p[b].cell_addr[i]);
        p[b].lprior[k] += c ? c->lp : -INFINITY;
      }
      m = fmax(m, p[b].lprior[k]);
    }
    if (!(m > -INFINITY)) return true;
    for (int k = 0; k < K; k++) s += exp(p[b].lprior[k] - m);
    for (int k = 0; k < K; k++) p[b].lprior[k] -= m + log(s);
  }
  *ok = true;
  return true;
}

static const char *elem_name(const TraceChoice *c, int elem) {
  return c->numel == 1 && c->type.ndims == 0 ? c->addr : gc_printf("%s[%d]", c->addr, elem + 1);
}

bool motif_detect(const Interp *in, uint64_t seed, MotifReport *out, Diag *d) {
  memset(out, 0, sizeof *out);
  Rng r;
  rng_seed(&r, seed, 0x6d6f);
  uint64_t model_seed = seed ^ 0x6d68u;
  Trace *t = NULL;
  Diag rd;
  for (int tries = 0; tries < 100 && !t; tries++) {
    TraceHandler th;
    trace_handler_init(&th, &r, NULL, NULL, NULL, NULL);
    diag_init(&rd);
    t = trace_run(in, &th, model_seed, 0, false, NULL, &rd);
    if (!t && rd.code == DIAG_INTERNAL) {
      *d = rd;
      return false;
    }
    if (t && !(isfinite(t->loglik) && isfinite(t->logprior))) t = NULL;
  }
  if (!t) {
    diag_error(d, DIAG_RUNTIME, (SrcPos){0},
               "motifs: no run from the prior with a finite log density in 100 tries: %s",
               rd.msg[0] ? rd.msg : "the log density is not finite");
    return false;
  }
  MotifSite *sites;
  out->nsites = motif_sites(t, &sites);
  MotifSite *cs;
  out->found = gc_alloc(sizeof(MotifFound) * (size_t)(2 * out->nsites + motif_csites(t, &cs) + 1));
  MotifProbe *pr = gc_alloc(sizeof(MotifProbe) * (size_t)(out->nsites + 1));
  for (int i = 0; i < out->nsites; i++)
    if (!motif_probe(in, model_seed, 0, t, sites[i].addr, sites[i].elem, &r, &pr[i], d)) return false;
  /* blocks of several cells: their motif is listed beside the cells' own
     (engine lmh moves one or the other, --cells) */
  int *blk = gc_alloc_atomic(sizeof(int) * (size_t)(out->nsites + 1));
  int nb = motif_blocks(out->nsites, pr, blk, MOTIF_MAXCELLS);
  MotifProbe *bpr = gc_alloc(sizeof(MotifProbe) * (size_t)(nb + 1));
  const char **bname = gc_alloc(sizeof(char *) * (size_t)(nb + 1));
  for (int b = 0; b < nb; b++) {
    MotifSite cells[MOTIF_MAXCELLS];
    int m = 0;
    for (int i = 0; i < out->nsites; i++)
      if (blk[i] == b) {
        if (!m) bname[b] = elem_name(trace_find(t, sites[i].addr), sites[i].elem);
        cells[m++] = sites[i];
      }
    if (!motif_probe_block(in, model_seed, 0, t, m, cells, &r, &bpr[b], d)) return false;
  }
  for (int i = 0; i < out->nsites; i++) {
    MotifProbe p = pr[i];
    const char *name = elem_name(trace_find(t, sites[i].addr), sites[i].elem);
    if (!p.sig) {
      if (!out->other) out->other = gc_printf("%s: %s", name, p.why);
      out->nother++;
      continue;
    }
    int k = 0;
    while (k < out->n && strcmp(out->found[k].sig, p.sig)) k++;
    if (k == out->n) out->found[out->n++] = (MotifFound){p.sig, 0, name};
    out->found[k].blocks++;
  }
  for (int b = 0; b < nb; b++) {
    if (!bpr[b].sig) continue;
    int k = 0;
    while (k < out->n && strcmp(out->found[k].sig, bpr[b].sig)) k++;
    if (k == out->n) out->found[out->n++] = (MotifFound){bpr[b].sig, 0, bname[b]};
    out->found[k].blocks++;
  }
  /* continuous blocks: only those that are motifs (an element nothing
     depends on in this run is the motif with no children) */
  int nc = motif_csites(t, &sites);
  MotifCProbe *cp = gc_alloc(sizeof(MotifCProbe) * (size_t)(nc + 1));
  for (int i = 0; i < nc; i++)
    if (!motif_cprobe(in, model_seed, 0, t, sites[i].addr, sites[i].elem, &r, &cp[i], d)) return false;
  bool any_cont = false; /* empty blocks join the motif when the trace has it */
  for (int i = 0; i < nc; i++) any_cont |= cp[i].sig && motif_cont_sig(cp[i].sig);
  for (int i = 0; i < nc; i++) {
    const char *sig = cp[i].sig ? cp[i].sig : cp[i].empty && any_cont ? motif_cont_empty_sig() : NULL;
    if (!sig) continue;
    const char *name = elem_name(trace_find(t, sites[i].addr), sites[i].elem);
    int k = 0;
    while (k < out->n && strcmp(out->found[k].sig, sig)) k++;
    if (k == out->n) out->found[out->n++] = (MotifFound){sig, 0, name};
    out->found[k].blocks++;
    out->nsites++;
  }
  return true;
}

/* ---- the network ---- */

bool motif_net_new(MotifNet *n, const char *sig, Rng *r, const char **err) {
  memset(n, 0, sizeof *n);
  if (!motif_sig_supported(sig, err)) return false;
  if (motif_cont_sig(sig)) return motif_cont_net_new(n, sig, r, err);
  char e[256];
  int hidden[2] = {MOTIF_HIDDEN, MOTIF_HIDDEN};
  if (!nn_mlp_make(&n->mlp, MOTIF_NFEAT, 2, hidden, 1, TENSOR_TANH, TENSOR_IDENTITY, e, sizeof e)) {
    *err = gc_strdup(e);
    return false;
  }
  SigKinds sk;
  sig_kinds(sig_body(sig), &sk);
  n->sig = gc_strdup(sig);
  n->nkinds = sk.n;
  size_t per = n->mlp.nparams + MOTIF_NFEAT;
  n->nparams = (size_t)n->nkinds * per;
  n->w = gc_alloc_atomic(sizeof(double) * n->nparams);
  for (int c = 0; c < n->nkinds; c++) {
    double *w = n->w + (size_t)c * per;
    nn_mlp_init(&n->mlp, r, 1, w);
    for (int i = 0; i < MOTIF_NFEAT; i++) w[n->mlp.nparams + (size_t)i] = 0.1 * rng_normal(r);
  }
  n->loss = NAN;
  return true;
}

/* Scores of B examples of up to Kmax values each:
   S[b, k] = lp[b, k] + sum over rows r with A[b K + k, r] = 1 of E_c(F[r]),
   then log softmax over k, with c = rk[r] the row's kind of child (each
   kind its own E; every row goes through each, masked: kinds are few).
   F is [rows, NFEAT]; A is [B Kmax, rows]. */
static Tensor net_logq(const MotifNet *n, Tape *t, Tensor w, int rows, const double *F,
                       const int *rk, int B, int Kmax, const double *A, const double *lp) {
  Tensor X = tensor_const(2, (int[]){rows, MOTIF_NFEAT}, F);
  size_t per = n->mlp.nparams + MOTIF_NFEAT;
  Tensor e = {.rank = -1};
  for (int c = 0; c < n->nkinds; c++) {
    Tensor wc = tensor_slice(w, (size_t)c * per, per);
    Tensor h = nn_mlp_forward(t, &n->mlp, tensor_slice(wc, 0, n->mlp.nparams), X);
    h = tensor_reshape(t, h, 1, (int[]){rows});
    Tensor ec = tensor_add(t, h, tensor_matmul(t, X, tensor_slice(wc, n->mlp.nparams, MOTIF_NFEAT)));
    if (n->nkinds > 1) {
      double *mask = gc_alloc_atomic(sizeof(double) * (size_t)rows);
      for (int i = 0; i < rows; i++) mask[i] = rk[i] == c;
      ec = tensor_mul(t, ec, tensor_const(1, (int[]){rows}, mask));
    }
    e = c ? tensor_add(t, e, ec) : ec;
  }
  Tensor Am = tensor_const(2, (int[]){B * Kmax, rows}, A);
  Tensor s = tensor_add(t, tensor_matmul(t, Am, e), tensor_const(1, (int[]){B * Kmax}, lp));
  s = tensor_reshape(t, s, 2, (int[]){B, Kmax});
  return tensor_log_softmax(t, s);
}

#define LP_ABSENT (-1e30) /* padding values and impossible ones: never proposed */

bool motif_net_logq(const MotifNet *n, Tape *t, const MotifProbe *p, double *logq) {
  int K = p->K, rows = p->nunits * K;
  double *A = gc_alloc_atomic(sizeof(double) * (size_t)K * (size_t)rows);
  double *lp = gc_alloc_atomic(sizeof(double) * (size_t)K);
  for (int u = 0; u < p->nunits; u++)
    for (int k = 0; k < K; k++) A[(size_t)k * (size_t)rows + (size_t)u * (size_t)K + (size_t)k] = 1;
  for (int k = 0; k < K; k++) lp[k] = p->lprior[k] > -INFINITY ? p->lprior[k] : LP_ABSENT;
  int *rk = gc_alloc_atomic(sizeof(int) * (size_t)rows);
  for (int u = 0; u < p->nunits; u++)
    for (int k = 0; k < K; k++) rk[u * K + k] = p->unit_kind[u];
  tape_reset(t);
  Tensor w = tensor_const(1, (int[]){(int)n->nparams}, n->w);
  Tensor q = net_logq(n, t, w, rows, p->feat, rk, 1, K, A, lp);
  if (!tensor_ok(q)) return false;
  for (int k = 0; k < K; k++) logq[k] = p->lprior[k] > -INFINITY ? q.d[k] : -INFINITY;
  return true;
}

/* ---- training on simulated motifs ---- */

void motif_train_opts_default(MotifTrainOpts *o) {
  memset(o, 0, sizeof *o);
  o->steps = 1500;
  o->batch = 64;
  o->lr = 3e-3;
  o->seed = 1;
}

/* Prior weights of a block: uniform, or Dirichlet with a random concentration. */
static void sim_prior(Rng *r, int K, double *logw) {
  if (rng_uniform(r) < 0.3) {
    for (int k = 0; k < K; k++) logw[k] = -log((double)K);
    return;
  }
  double a = exp(rng_uniform(r) * 2 - 1), s = 0, g[MOTIF_MAXK];
  for (int k = 0; k < K; k++) s += g[k] = fmax(rng_gamma(r, a), 1e-300);
  for (int k = 0; k < K; k++) logw[k] = fmax(log(g[k] / s), -30);
}

static int sim_cat(Rng *r, int K, const double *logw) {
  double u = rng_uniform(r), c = 0;
  for (int k = 0; k < K; k++) {
    c += exp(logw[k]);
    if (u < c) return k;
  }
  return K - 1;
}

/* The children a simulated motif has of one kind: 1 .. cmax. */
static int sim_cmax(ChildKind ck) { return ck == CK_BERNOULLI ? 6 : 3; }

/* One simulated motif: K values, c children of the signature's kinds (their
   rows' kinds into rk), its features appended to F (rows c K), and the true
   value. */
static int sim_motif(Rng *r, const SigKinds *sk, int *K, int *c, double *logw, double *F, int *rk) {
  bool normal = false;
  for (int i = 0; i < sk->n; i++) normal |= sk->ck[i] == CK_NORMAL;
  *K = normal ? (int)rng_int(r, 2, 8) : rng_uniform(r) < 0.75 ? 2 : (int)rng_int(r, 3, 4);
  sim_prior(r, *K, logw);
  int z = sim_cat(r, *K, logw);
  *c = 0;
  for (int i = 0; i < sk->n; i++) {
    ChildKind ck = sk->ck[i];
    double mu[MOTIF_MAXK], sg[MOTIF_MAXK];
    if (ck == CK_NORMAL) {
      bool mu_varies = strstr(sk->name[i], "mu") != NULL, sigma_varies = strstr(sk->name[i], "sigma") != NULL;
      double sc = exp(rng_uniform(r) * 6 - 3), spread = exp(rng_uniform(r) * 3.5 - 1);
      for (int k = 0; k < *K; k++) {
        mu[k] = mu_varies ? sc * spread * rng_normal(r) : 0;
        sg[k] = sigma_varies ? sc * exp(0.8 * rng_normal(r)) : sc;
      }
    }
    int nc = (int)rng_int(r, 1, sim_cmax(ck));
    double a = exp(rng_uniform(r) * 2.5 - 1.5);
    for (int j = 0; j < nc; j++, (*c)++) {
      double th[MOTIF_MAXK] = {0}, cat[MOTIF_MAXK][MOTIF_MAXK];
      int C = 0;
      double y;
      if (ck == CK_BERNOULLI) {
        for (int k = 0; k < *K; k++) th[k] = rng_beta(r, a, a);
        y = rng_uniform(r) < th[z];
      } else if (ck == CK_CATEGORICAL) { /* a next state: often the block's own K values */
        C = rng_uniform(r) < 0.5 ? *K : (int)rng_int(r, 2, 6);
        for (int k = 0; k < *K; k++) {
          double s = 0;
          for (int m = 0; m < C; m++) s += cat[k][m] = fmax(rng_gamma(r, a), 1e-300);
          for (int m = 0; m < C; m++) cat[k][m] /= s;
        }
        double u = rng_uniform(r), acc = 0;
        y = C;
        for (int m = 0; m < C; m++)
          if (u < (acc += cat[z][m])) {
            y = m + 1;
            break;
          }
      } else {
        y = mu[z] + sg[z] * rng_normal(r);
      }
      for (int k = 0; k < *K; k++) {
        size_t row = (size_t)*c * (size_t)*K + (size_t)k;
        double *f = F + row * MOTIF_NFEAT;
        memset(f, 0, sizeof(double) * MOTIF_NFEAT);
        rk[row] = i;
        if (ck == CK_NORMAL) feat_normal(y, mu[k], sg[k], f);
        else if (ck == CK_BERNOULLI) feat_bernoulli(y, th[k], f);
        else feat_categorical(y, cat[k], C, f);
      }
    }
  }
  return z;
}

/* One simulated block motif: m = 2..MOTIF_MAXCELLS binary cells, whose
   joint prior over the K = 2^m configurations is a chain of random
   conditional tables (cell i given the cells before it, as a grid's square
   given its parents outside), and children of the signature's kinds each
   reading a random subset of the cells through a random table of its own
   (as a grid's next cells and observations do); features appended to F as
   sim_motif's, the true configuration returned. */
static int sim_block_motif(Rng *r, const SigKinds *sk, int *K, int *c, double *logw, double *F,
                           int *rk) {
  int m = (int)rng_int(r, 2, MOTIF_MAXCELLS);
  *K = 1 << m;
  double a = exp(rng_uniform(r) * 2.5 - 1.5);
  for (int k = 0; k < *K; k++) logw[k] = 0;
  for (int i = 0; i < m; i++)
    for (int pre = 0; pre < (1 << i); pre++) { /* theta of cell i given the cells before it */
      double th = fmin(fmax(rng_beta(r, a, a), 1e-9), 1 - 1e-9);
      for (int k = 0; k < *K; k++)
        if ((k & ((1 << i) - 1)) == pre) logw[k] += (k >> i) & 1 ? log(th) : log1p(-th);
    }
  for (int k = 0; k < *K; k++) logw[k] = fmax(logw[k], -30);
  double mx = -INFINITY, sum = 0;
  for (int k = 0; k < *K; k++) mx = fmax(mx, logw[k]);
  for (int k = 0; k < *K; k++) sum += exp(logw[k] - mx);
  for (int k = 0; k < *K; k++) logw[k] -= mx + log(sum);
  int z = sim_cat(r, *K, logw);
  *c = 0;
  for (int i = 0; i < sk->n; i++) {
    ChildKind ck = sk->ck[i];
    int nc = (int)rng_int(r, 1, sim_cmax(ck));
    for (int j = 0; j < nc; j++, (*c)++) {
      int mask = 0; /* the cells this child reads: mostly one or two */
      while (!mask)
        for (int b = 0; b < m; b++) mask |= (rng_uniform(r) < 1.5 / m) << b;
      int sub[MOTIF_MAXK], ns = 0; /* each configuration's row of the child's table */
      for (int k = 0; k < *K; k++) {
        int t = 0, bit = 0;
        for (int b = 0; b < m; b++)
          if (mask >> b & 1) t |= ((k >> b) & 1) << bit++;
        sub[k] = t;
        ns = ns > t + 1 ? ns : t + 1;
      }
      double th[MOTIF_MAXK], mu[MOTIF_MAXK], sg[MOTIF_MAXK], cat[MOTIF_MAXK][MOTIF_MAXK];
      int C = (int)rng_int(r, 2, 6);
      double sc = exp(rng_uniform(r) * 6 - 3), spread = exp(rng_uniform(r) * 3.5 - 1);
      for (int t = 0; t < ns; t++) {
        th[t] = rng_beta(r, a, a);
        mu[t] = strstr(sk->name[i], "mu") ? sc * spread * rng_normal(r) : 0;
        sg[t] = strstr(sk->name[i], "sigma") ? sc * exp(0.8 * rng_normal(r)) : sc;
        double s2 = 0;
        for (int q = 0; q < C; q++) s2 += cat[t][q] = fmax(rng_gamma(r, a), 1e-300);
        for (int q = 0; q < C; q++) cat[t][q] /= s2;
      }
      int tz = sub[z];
      double y;
      if (ck == CK_BERNOULLI) y = rng_uniform(r) < th[tz];
      else if (ck == CK_NORMAL) y = mu[tz] + sg[tz] * rng_normal(r);
      else {
        double u = rng_uniform(r), acc = 0;
        y = C;
        for (int q = 0; q < C; q++)
          if (u < (acc += cat[tz][q])) {
            y = q + 1;
            break;
          }
      }
      for (int k = 0; k < *K; k++) {
        size_t row = (size_t)*c * (size_t)*K + (size_t)k;
        double *f = F + row * MOTIF_NFEAT;
        memset(f, 0, sizeof(double) * MOTIF_NFEAT);
        rk[row] = i;
        if (ck == CK_NORMAL) feat_normal(y, mu[sub[k]], sg[sub[k]], f);
        else if (ck == CK_BERNOULLI) feat_bernoulli(y, th[sub[k]], f);
        else feat_categorical(y, cat[sub[k]], C, f);
      }
    }
  }
  return z;
}

bool motif_train(MotifNet *n, const MotifTrainOpts *o, const char **err) {
  if (n->mdn) return motif_cont_train(n, o, err);
  SigKinds sk;
  if (!sig_kinds(sig_body(n->sig), &sk)) {
    *err = gc_printf("learn-proposals: no proposal for motif '%s'", n->sig);
    return false;
  }
  bool block = sig_block(n->sig);
  int B = o->batch > 0 ? o->batch : 64, Kmax = block ? 1 << MOTIF_MAXCELLS : 4, cmax = 0;
  for (int i = 0; i < sk.n; i++) {
    cmax += sim_cmax(sk.ck[i]);
    if (sk.ck[i] == CK_NORMAL && !block) Kmax = 8;
  }
  size_t maxrows = (size_t)B * (size_t)Kmax * (size_t)cmax;
  double *F = malloc(sizeof(double) * maxrows * MOTIF_NFEAT);
  int *rk = malloc(sizeof(int) * maxrows);
  double *A = malloc(sizeof(double) * maxrows * (size_t)B * (size_t)Kmax);
  double *lp = malloc(sizeof(double) * (size_t)B * (size_t)Kmax);
  int *z = malloc(sizeof(int) * (size_t)B);
  Rng r;
  rng_seed(&r, o->seed, 0x6c6d68);
  MotifFit fit;
  bool ok = motif_fit_init(&fit, n, o, err);
  if (ok && !(F && rk && A && lp && z)) ok = false, *err = "learn-proposals: out of memory";
  Tape *t = fit.t;
  int np = (int)n->nparams;
  for (long step = 0; ok && step < o->steps; step++) {
    int rows = 0;
    double logw[MOTIF_MAXK];
    int Ks[1024], cs[1024], rs[1024];
    for (int b = 0; b < B && b < 1024; b++) {
      rs[b] = rows;
      z[b] = (block ? sim_block_motif : sim_motif)(&r, &sk, &Ks[b], &cs[b], logw,
                                                   F + (size_t)rows * MOTIF_NFEAT, rk + rows);
      for (int k = 0; k < Kmax; k++) lp[b * Kmax + k] = k < Ks[b] ? logw[k] : LP_ABSENT;
      rows += cs[b] * Ks[b];
    }
    memset(A, 0, sizeof(double) * (size_t)B * (size_t)Kmax * (size_t)rows);
    for (int b = 0; b < B; b++)
      for (int j = 0; j < cs[b]; j++)
        for (int k = 0; k < Ks[b]; k++)
          A[(size_t)(b * Kmax + k) * (size_t)rows + (size_t)(rs[b] + j * Ks[b] + k)] = 1;
    tape_reset(t);
    Tensor w = tensor_var(t, 1, &np, n->w);
    Tensor q = net_logq(n, t, w, rows, F, rk, B, Kmax, A, lp);
    AdNum ll = tensor_mean(t, tensor_pick(t, q, z));
    ok = motif_fit_step(&fit, n, o, step, w.node, ll, err);
  }
  free(F), free(rk), free(A), free(lp), free(z);
  motif_fit_free(&fit);
  return ok;
}

bool motif_fit_init(MotifFit *f, const MotifNet *n, const MotifTrainOpts *o, const char **err) {
  OptimConfig oc;
  optim_config_default(&oc, OPTIM_ADAM);
  oc.lr = o->lr > 0 ? o->lr : 3e-3;
  oc.clip_norm = 10;
  oc.sched = OPTIM_SCHED_COSINE;
  oc.horizon = o->steps;
  oc.lr_min = oc.lr / 20;
  *f = (MotifFit){.opt = optim_new(&oc, n->nparams), .t = tape_new(),
                  .grad = malloc(sizeof(double) * n->nparams), .avg = NAN};
  if (f->opt && f->t && f->grad) return true;
  *err = "learn-proposals: out of memory";
  return false;
}

bool motif_fit_step(MotifFit *f, MotifNet *n, const MotifTrainOpts *o, long step, int32_t w_node,
                    AdNum ll, const char **err) {
  if (tape_error(f->t)) {
    *err = gc_printf("learn-proposals: %s", tape_error(f->t));
    return false;
  }
  size_t need = tape_size(f->t) + 1;
  if (need > f->adjcap) {
    free(f->adj);
    f->adjcap = 2 * need;
    f->adj = malloc(sizeof(double) * f->adjcap);
    if (!f->adj) {
      *err = "learn-proposals: out of memory";
      return false;
    }
  }
  memset(f->adj, 0, sizeof(double) * need);
  tape_backward(f->t, ll.n, f->adj);
  bool finite = isfinite(ll.v);
  for (size_t i = 0; i < n->nparams; i++) /* minimise -log q */
    finite = finite && isfinite(f->grad[i] = -f->adj[w_node + (int32_t)i]);
  if (finite) optim_step(f->opt, n->w, f->grad);
  f->avg = isnan(f->avg) ? -ll.v : 0.98 * f->avg - 0.02 * ll.v;
  n->steps = step + 1;
  n->loss = f->avg;
  if (o->progress && ((step + 1) % 100 == 0 || step + 1 == o->steps))
    o->progress(o->progress_ctx, n->sig, step + 1, o->steps, f->avg);
  return true;
}

void motif_fit_free(MotifFit *f) {
  free(f->grad), free(f->adj);
  if (f->opt) optim_free(f->opt);
}

/* ---- files ---- */

/* The network's layout as the file's "hidden" says it. */
static const char *net_layout(const MotifNet *n) {
  if (n->mdn) return motif_cont_layout();
  return n->nkinds > 1 ? gc_printf("%d,%d x%d", MOTIF_HIDDEN, MOTIF_HIDDEN, n->nkinds)
                       : gc_printf("%d,%d", MOTIF_HIDDEN, MOTIF_HIDDEN);
}

const char *motif_file_name(const char *sig) {
  char *s = gc_strdup(sig);
  for (char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_'))
      *p = '_';
  return gc_printf("%s.safetensors", s);
}

bool motif_net_save(const MotifNet *n, const char *path, const char **err) {
  StFile f = {0};
  StTensor tw = {.name = "weights", .rank = 1, .numel = n->nparams, .data = n->w};
  tw.shape[0] = (int64_t)n->nparams;
  f.ntensors = 1;
  f.tensors = &tw;
  st_set_ppl_meta(&f, 0, MOTIF_KIND);
  StMeta *m = gc_alloc(sizeof(StMeta) * (size_t)(f.nmeta + 5));
  memcpy(m, f.meta, sizeof(StMeta) * (size_t)f.nmeta);
  m[f.nmeta++] = (StMeta){"signature", n->sig};
  m[f.nmeta++] = (StMeta){"motif_version", MOTIF_VERSION};
  m[f.nmeta++] = (StMeta){"hidden", net_layout(n)};
  m[f.nmeta++] = (StMeta){"steps", gc_printf("%ld", n->steps)};
  m[f.nmeta++] = (StMeta){"loss", gc_printf("%.6g", n->loss)};
  f.meta = m;
  return st_write(path, &f, err);
}

bool motif_net_load(const char *path, const char *sig, MotifNet *n, const char **err) {
  StFile *f = st_read(path, err);
  if (!f) return false;
  const char *fmt = st_meta_get(f, "format"), *kind = st_meta_get(f, "kind"),
             *fsig = st_meta_get(f, "signature"), *ver = st_meta_get(f, "motif_version"),
             *hid = st_meta_get(f, "hidden");
  if (!fmt || strcmp(fmt, ST_FORMAT) || !kind || strcmp(kind, MOTIF_KIND) || !fsig) {
    *err = gc_printf("%s: not a learned proposal (a ppl parameter file of kind \"" MOTIF_KIND
                     "\"; this one is %s%s%s)", path, kind ? "of kind \"" : "", kind ? kind : "not",
                     kind ? "\"" : " one");
    return false;
  }
  if (!ver || strcmp(ver, MOTIF_VERSION)) {
    *err = gc_printf("%s: proposal version %s, this ppl reads version " MOTIF_VERSION, path,
                     ver ? ver : "(none)");
    return false;
  }
  if (sig && strcmp(fsig, sig)) {
    *err = gc_printf("%s: a proposal for motif '%s', not '%s'", path, fsig, sig);
    return false;
  }
  Rng r;
  rng_seed(&r, 0, 0);
  if (!motif_net_new(n, fsig, &r, err)) {
    *err = gc_printf("%s: %s", path, *err);
    return false;
  }
  const StTensor *w = st_find(f, "weights");
  if (!hid || strcmp(hid, net_layout(n)) || !w || w->numel != n->nparams) {
    *err = gc_printf("%s: the network's layout (hidden %s, %zu weights) is not this version's "
                     "(hidden %s, %zu weights)", path, hid ? hid : "?", w ? w->numel : 0,
                     net_layout(n), n->nparams);
    return false;
  }
  memcpy(n->w, w->data, sizeof(double) * n->nparams);
  const char *steps = st_meta_get(f, "steps"), *loss = st_meta_get(f, "loss");
  n->steps = steps ? atol(steps) : 0;
  n->loss = loss ? atof(loss) : NAN;
  return true;
}

const char *motif_default_dir(void) {
  const char *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");
  if (x && *x) return gc_printf("%s/ppl/proposals", x);
  if (h && *h) return gc_printf("%s/.local/share/ppl/proposals", h);
  return NULL;
}

struct MotifLib {
  const char *dir;
  int n, cap;
  const char **sigs;
  const MotifNet **nets; /* NULL: the library has none */
};

MotifLib *motif_lib_open(const char *dir) {
  MotifLib *l = gc_alloc(sizeof(MotifLib));
  l->dir = dir ? gc_strdup(dir) : NULL;
  return l;
}

const MotifNet *motif_lib_get(MotifLib *l, const char *sig, const char **err) {
  *err = NULL;
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->sigs[i], sig)) return l->nets[i];
  MotifNet *net = NULL;
  const char *why;
  if (l->dir && motif_sig_supported(sig, &why)) {
    const char *path = gc_printf("%s/%s", l->dir, motif_file_name(sig));
    if (access(path, F_OK) == 0) {
      net = gc_alloc(sizeof(MotifNet));
      if (!motif_net_load(path, sig, net, err)) return NULL;
    }
  }
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 8;
    const char **s = gc_alloc(sizeof(char *) * (size_t)l->cap);
    const MotifNet **m = gc_alloc(sizeof(MotifNet *) * (size_t)l->cap);
    if (l->n) memcpy(s, l->sigs, sizeof(char *) * (size_t)l->n), memcpy(m, l->nets, sizeof(MotifNet *) * (size_t)l->n);
    l->sigs = s, l->nets = m;
  }
  l->sigs[l->n] = gc_strdup(sig);
  l->nets[l->n++] = net;
  return net;
}
