/* motif_cont.c — continuous blocks of learned MH (motif.h): a real latent
 * x ~ normal(m0, s0) whose children are normals located at x, found by
 * probing; the mixture density network that proposes x given its blanket;
 * its training on simulated motifs.
 *
 * Why a standardised residual form: everything is measured in the prior's
 * units, t = (y - m0) / s0, r = sigma / s0, so one network serves priors and
 * data of any location and scale, and the network's components are placed
 * relative to the precision-weighted mean of the children and the prior
 * (m, P below), so that its job is the shape of the conditional (tails,
 * skew, several modes when the motif has them), not its place and width.
 * For this signature the conditional is the conjugate normal, which a
 * trained network reproduces (acceptance near 1); a random one proposes off
 * it and is only slower: the MH correction keeps every move exact.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "motif_int.h"

#include "../stdlib/optim.h"
#include "../stdlib/tensor.h"

#define CONT_SIG "normal->normal(mu)"
#define CONT_PHI_IN 2
#define CONT_PHI_OUT 16
#define CONT_HAND 3
#define CONT_HIDDEN 32
#define CONT_MAXCHILD 300 /* children of a simulated motif: 0 .. 299 */
#define CONT_LOGSD_MIN (-6.0)
#define CONT_LOGSD_MAX 4.0

bool motif_cont_sig(const char *sig) { return !strcmp(sig, CONT_SIG); }

const char *motif_cont_empty_sig(void) { return CONT_SIG; }

const char *motif_cont_layout(void) {
  return "mdn " "2,32,16/19,32,32,9";
}

static bool cont_site(const TraceChoice *c) {
  return c->continuous && !c->structured && c->unit_len == 1 && c->type.base != TY_STRING &&
         !isfinite(c->lower) && !isfinite(c->upper);
}

int motif_csites(const Trace *t, MotifSite **out) {
  int n = 0;
  for (int i = 0; i < t->n; i++)
    if (cont_site(&t->c[i])) n += t->c[i].numel;
  MotifSite *s = gc_alloc(sizeof(MotifSite) * (size_t)(n + 1));
  int k = 0;
  for (int i = 0; i < t->n; i++)
    if (cont_site(&t->c[i]))
      for (int e = 0; e < t->c[i].numel; e++) s[k++] = (MotifSite){t->c[i].addr, e};
  *out = s;
  return n;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Parameter q of e1 against e0 as element j sees it. */
static bool moved(const MotifEv *e0, const MotifEv *e1, int q, int j) {
  int pn = e0->pn[q];
  if (pn == 1 || pn == e0->xn) return motif_pv(e1, q, j) != motif_pv(e0, q, j);
  for (int m = 0; m < pn; m++) /* a vector parameter of a scalar draw */
    if (e1->p[q][m] != e0->p[q][m]) return true;
  return false;
}

bool motif_cprobe(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                  const char *addr, int elem, Rng *rng, MotifCProbe *out, Diag *d) {
  memset(out, 0, sizeof *out);
  const TraceChoice *c = trace_find(cur, addr);
  if (!c || elem >= c->numel || !cont_site(c)) {
    out->why = "not an element of an unbounded real choice";
    return true;
  }
  out->addr = c->addr;
  out->elem = elem;
  out->x = trace_value_get(c->val, (size_t)elem);
  MotifEv *e0, *e1;
  int n0, n1;
  Diag rd;
  Trace *t0 = motif_run_events(in, model_seed, stream, cur, NULL, rng, &e0, &n0, NULL, NULL, &rd);
  if (!t0) {
    if (rd.code == DIAG_INTERNAL) return *d = rd, false;
    out->why = "the program rejects its current value";
    return true;
  }
  int own = -1;
  for (int i = 0; i < n0 && own < 0; i++)
    if (e0[i].kind == 's' && !strcmp(e0[i].addr, addr)) own = i;
  if (own < 0) {
    out->why = "its draw was not seen";
    return true;
  }
  const MotifEv *oe = &e0[own];
  if (strcmp(oe->fam->name, "normal") != 0) {
    out->why = gc_printf("drawn from %s (continuous blocks: normal)", oe->fam->name);
    return true;
  }
  out->m0 = motif_pv(oe, 0, elem);
  out->s0 = motif_pv(oe, 1, elem);
  if (!isfinite(out->m0) || !(out->s0 > 0) || !isfinite(out->s0)) {
    out->why = "its prior's parameters are not finite";
    return true;
  }
  /* a step no program tests for, a fraction of the prior's scale */
  double delta = 0.3741 * out->s0;
  Value v = val_copy(c->val);
  trace_value_set(&v, (size_t)elem, out->x + delta);
  TraceBlock b = {.n = 1, .addrs = &out->addr, .vals = &v, .log_q_ratio = 0};
  Trace *t1 = motif_run_events(in, model_seed, stream, cur, &b, rng, &e1, &n1, NULL, NULL, &rd);
  if (!t1) {
    if (rd.code == DIAG_INTERNAL) return *d = rd, false;
    out->why = "the program rejects some of its values";
    return true;
  }
  for (int i = 0; i < t1->n; i++)
    if (t1->c[i].fresh) {
      out->why = gc_printf("the program draws new choices ('%s') when %s takes another value",
                           t1->c[i].addr, addr);
      return true;
    }
  bool same = n1 == n0;
  for (int i = 0; same && i < n0; i++) same = motif_same_event(&e0[i], &e1[i]);
  if (!same) {
    out->why = gc_printf("the program's events change with the value of %s", addr);
    return true;
  }
  int cap = 16, nu = 0;
  const char **kinds = gc_alloc(sizeof(char *) * (size_t)cap);
  double *y = gc_alloc_atomic(sizeof(double) * (size_t)cap), *sg = gc_alloc_atomic(sizeof(double) * (size_t)cap);
  for (int i = 0; i < n0; i++) {
    if (i == own) continue;
    const MotifEv *a = &e0[i], *z = &e1[i];
    if (a->kind == 'f') {
      if (z->x[0] != a->x[0]) {
        out->why = gc_printf("a factor statement depends on %s", addr);
        return true;
      }
      continue;
    }
    for (int j = 0; j < a->xn; j++) {
      unsigned varies = 0;
      for (int q = 0; q < a->np; q++)
        if (moved(a, z, q, j)) varies |= 1u << q;
      if (!varies) continue;
      char kind[128];
      size_t len = (size_t)snprintf(kind, sizeof kind, "%s(", a->fam->name);
      for (int q = 0, any = 0; q < a->np; q++)
        if (varies & (1u << q))
          len += (size_t)snprintf(kind + len, len < sizeof kind ? sizeof kind - len : 0, "%s%s",
                                  any++ ? "," : "", a->fam->pnames[q] ? a->fam->pnames[q] : "?");
      if (len < sizeof kind - 1) strcat(kind, ")");
      bool loc = !strcmp(kind, "normal(mu)");
      if (loc) { /* located at x itself, not at a function of it */
        double p0 = motif_pv(a, 0, j), p1 = motif_pv(z, 0, j);
        if (!(fabs((p1 - p0) - delta) <= 1e-9 * (1 + fabs(p0) + fabs(delta)))) {
          snprintf(kind, sizeof kind, "normal(f(mu))");
          loc = false;
        }
      }
      if (nu == cap) {
        cap *= 2;
        const char **k2 = gc_alloc(sizeof(char *) * (size_t)cap);
        double *y2 = gc_alloc_atomic(sizeof(double) * (size_t)cap), *s2 = gc_alloc_atomic(sizeof(double) * (size_t)cap);
        memcpy(k2, kinds, sizeof(char *) * (size_t)nu), memcpy(y2, y, sizeof(double) * (size_t)nu);
        memcpy(s2, sg, sizeof(double) * (size_t)nu);
        kinds = k2, y = y2, sg = s2;
      }
      kinds[nu] = gc_strdup(kind);
      y[nu] = a->x[j];
      sg[nu] = loc ? motif_pv(a, 1, j) : NAN;
      nu++;
    }
  }
  if (nu == 0) {
    out->empty = true;
    out->why = gc_printf("no observation or latent depends on %s", addr);
    return true;
  }
  qsort(kinds, (size_t)nu, sizeof(char *), cmp_str);
  const char *sig = "normal->";
  for (int u = 0; u < nu; u++)
    if (u == 0 || strcmp(kinds[u], kinds[u - 1]))
      sig = gc_printf("%s%s%s", sig, u ? "+" : "", kinds[u]);
  out->sig = sig;
  out->n = nu;
  out->y = y;
  out->sg = sg;
  return true;
}

/* The blankets of n continuous blocks at once (motif_cprobe_group in
   motif.h): one replay unchanged, one with block i moved by its own step
   delta_i; a child's location moved by exactly one delta_i is block i's. */
bool motif_cprobe_group(const Interp *in, uint64_t model_seed, uint64_t stream, const Trace *cur,
                        int n, const MotifSite *site, Rng *rng, MotifCProbe *out, bool *ok, Diag *d) {
  *ok = false;
  MotifEv *e0, *e1;
  int n0, n1;
  Diag rd;
  Trace *t0 = motif_run_events(in, model_seed, stream, cur, NULL, rng, &e0, &n0, NULL, NULL, &rd);
  if (!t0) return rd.code == DIAG_INTERNAL ? (*d = rd, false) : true;
  double *delta = gc_alloc_atomic(sizeof(double) * (size_t)(n + 1));
  TraceBlock b = {.n = 0, .addrs = gc_alloc(sizeof(char *) * (size_t)(n + 1)),
                  .vals = gc_alloc(sizeof(Value) * (size_t)(n + 1)), .log_q_ratio = 0};
  for (int i = 0; i < n; i++) {
    const TraceChoice *c = trace_find(cur, site[i].addr);
    if (!c || site[i].elem >= c->numel || !cont_site(c)) return true;
    MotifCProbe *o = &out[i];
    memset(o, 0, sizeof *o);
    o->addr = c->addr;
    o->elem = site[i].elem;
    o->x = trace_value_get(c->val, (size_t)site[i].elem);
    const MotifEv *oe = NULL;
    for (int e = 0; e < n0 && !oe; e++)
      if (e0[e].kind == 's' && !strcmp(e0[e].addr, c->addr)) oe = &e0[e];
    if (!oe || strcmp(oe->fam->name, "normal") != 0) return true;
    o->m0 = motif_pv(oe, 0, site[i].elem);
    o->s0 = motif_pv(oe, 1, site[i].elem);
    if (!isfinite(o->m0) || !(o->s0 > 0) || !isfinite(o->s0)) return true;
    /* steps no program tests for, apart for every block (a sum of two is
       none of them) */
    delta[i] = 0.3741 * o->s0 * (1 + 0.0917 * (double)i / n);
    int j = 0;
    while (j < b.n && strcmp(b.addrs[j], c->addr)) j++;
    if (j == b.n) b.addrs[b.n] = c->addr, b.vals[b.n++] = val_copy(c->val);
    trace_value_set(&b.vals[j], (size_t)site[i].elem, o->x + delta[i]);
  }
  Trace *t1 = motif_run_events(in, model_seed, stream, cur, &b, rng, &e1, &n1, NULL, NULL, &rd);
  if (!t1) return rd.code == DIAG_INTERNAL ? (*d = rd, false) : true;
  for (int i = 0; i < t1->n; i++)
    if (t1->c[i].fresh) return true;
  if (n1 != n0) return true;
  for (int i = 0; i < n0; i++)
    if (!motif_same_event(&e0[i], &e1[i])) return true;
  int *cap = gc_alloc_atomic(sizeof(int) * (size_t)(n + 1));
  for (int i = 0; i < n0; i++) {
    const MotifEv *a = &e0[i], *z = &e1[i];
    if (a->kind == 'f') {
      if (z->x[0] != a->x[0]) return true;
      continue;
    }
    bool own = false;
    for (int j = 0; j < b.n && !own; j++) own = a->kind == 's' && !strcmp(a->addr, b.addrs[j]);
    if (own) continue;
    for (int j = 0; j < a->xn; j++) {
      bool any = false;
      for (int q = 0; q < a->np; q++) any |= moved(a, z, q, j);
      if (!any) continue;
      /* only the location of a normal, by exactly one block's step */
      if (strcmp(a->fam->name, "normal") != 0 || moved(a, z, 1, j)) return true;
      double p0 = motif_pv(a, 0, j), dp = motif_pv(z, 0, j) - p0;
      int who = -1;
      for (int k = 0; k < n; k++)
        if (fabs(dp - delta[k]) <= 1e-9 * (1 + fabs(p0) + fabs(delta[k]))) who = who < 0 ? k : -2;
      if (who < 0) return true;
      MotifCProbe *o = &out[who];
      if (o->n == cap[who]) {
        int c2 = cap[who] ? 2 * cap[who] : 8;
        double *y = gc_alloc_atomic(sizeof(double) * (size_t)c2), *sg = gc_alloc_atomic(sizeof(double) * (size_t)c2);
        if (o->n) memcpy(y, o->y, sizeof(double) * (size_t)o->n), memcpy(sg, o->sg, sizeof(double) * (size_t)o->n);
        o->y = y, o->sg = sg, cap[who] = c2;
      }
      o->y[o->n] = a->x[j];
      o->sg[o->n++] = motif_pv(a, 1, j);
    }
  }
  for (int i = 0; i < n; i++) {
    out[i].sig = CONT_SIG;
    out[i].empty = out[i].n == 0;
    if (out[i].empty) out[i].why = gc_printf("no observation or latent depends on %s", out[i].addr);
  }
  *ok = true;
  return true;
}

bool motif_cprobe_same(const MotifCProbe *a, const MotifCProbe *b) {
  if ((a->sig == NULL) != (b->sig == NULL) || (a->sig && strcmp(a->sig, b->sig))) return false;
  if (a->empty != b->empty || a->n != b->n || a->m0 != b->m0 || a->s0 != b->s0) return false;
  for (int i = 0; i < a->n; i++)
    if (a->y[i] != b->y[i] || !(a->sg[i] == b->sg[i] || (isnan(a->sg[i]) && isnan(b->sg[i]))))
      return false;
  return true;
}

/* ---- the network ---- */

bool motif_cont_net_new(MotifNet *n, const char *sig, Rng *r, const char **err) {
  memset(n, 0, sizeof *n);
  char e[256];
  int hphi[1] = {CONT_HIDDEN}, hrho[2] = {CONT_HIDDEN, CONT_HIDDEN};
  if (!nn_mlp_make(&n->mlp, CONT_PHI_IN, 1, hphi, CONT_PHI_OUT, TENSOR_TANH, TENSOR_TANH, e, sizeof e) ||
      !nn_mlp_make(&n->rho, CONT_PHI_OUT + CONT_HAND, 2, hrho, 3 * MOTIF_MDN_K, TENSOR_TANH,
                   TENSOR_IDENTITY, e, sizeof e)) {
    *err = gc_strdup(e);
    return false;
  }
  n->mdn = true;
  n->sig = gc_strdup(sig);
  n->nparams = n->mlp.nparams + n->rho.nparams;
  n->w = gc_alloc_atomic(sizeof(double) * n->nparams);
  nn_mlp_init(&n->mlp, r, 1, n->w);
  nn_mlp_init(&n->rho, r, 1, n->w + n->mlp.nparams);
  n->loss = NAN;
  return true;
}

/* One example's inputs in the prior's units: per child [residual, weight]
   into F (n rows), the summary into H, and the precision P and the
   precision-weighted mean m of the prior with the children. */
static void cont_inputs(int n, const double *t, const double *r, double *F, double *H, double *P,
                        double *m) {
  double p = 1, s = 0;
  for (int j = 0; j < n; j++) {
    double w = 1 / (r[j] * r[j]);
    p += w;
    s += w * t[j];
  }
  *P = p;
  *m = s / p;
  for (int j = 0; j < n; j++) {
    F[2 * j] = asinh((t[j] - *m) / r[j]);
    F[2 * j + 1] = asinh(0.5 * log(r[j] * r[j] * p));
  }
  H[0] = log1p((double)n) / 3;
  H[1] = 0.25 * log(p);
  H[2] = asinh(*m) / 3;
}

/* The network's outputs [B, 3 MDN_K] for B examples: rows of F ([R, 2]) are
   children, A ([B, R]) averages each example's rows, H ([B, 3]) the
   summaries.  rho reads [mean phi, H] (the concatenation as two products with
   constant selection matrices). */
static Tensor cont_forward(const MotifNet *n, Tape *t, Tensor w, int R, const double *F, int B,
                           const double *A, const double *H, double *E1, double *E2) {
  int in = CONT_PHI_OUT + CONT_HAND;
  memset(E1, 0, sizeof(double) * CONT_PHI_OUT * (size_t)in);
  memset(E2, 0, sizeof(double) * CONT_HAND * (size_t)in);
  for (int i = 0; i < CONT_PHI_OUT; i++) E1[i * in + i] = 1;
  for (int i = 0; i < CONT_HAND; i++) E2[i * in + CONT_PHI_OUT + i] = 1;
  Tensor X = tensor_const(2, (int[]){R, CONT_PHI_IN}, F);
  Tensor h = nn_mlp_forward(t, &n->mlp, tensor_slice(w, 0, n->mlp.nparams), X);
  Tensor pooled = tensor_matmul(t, tensor_const(2, (int[]){B, R}, A), h);
  Tensor x = tensor_add(t, tensor_matmul(t, pooled, tensor_const(2, (int[]){CONT_PHI_OUT, in}, E1)),
                        tensor_matmul(t, tensor_const(2, (int[]){B, CONT_HAND}, H),
                                      tensor_const(2, (int[]){CONT_HAND, in}, E2)));
  return nn_mlp_forward(t, &n->rho, tensor_slice(w, n->mlp.nparams, n->rho.nparams), x);
}

bool motif_net_mix(const MotifNet *n, Tape *t, const MotifCProbe *p, MotifMix *q) {
  int R = p->n + 1; /* a last row of zeros no example reads: R >= 1 */
  double *F = gc_alloc_atomic(sizeof(double) * (size_t)R * CONT_PHI_IN);
  double *A = gc_alloc_atomic(sizeof(double) * (size_t)R);
  double *tt = gc_alloc_atomic(sizeof(double) * (size_t)R), *rr = gc_alloc_atomic(sizeof(double) * (size_t)R);
  double H[CONT_HAND], P, m, E1[CONT_PHI_OUT * (CONT_PHI_OUT + CONT_HAND)],
      E2[CONT_HAND * (CONT_PHI_OUT + CONT_HAND)];
  for (int j = 0; j < p->n; j++) tt[j] = (p->y[j] - p->m0) / p->s0, rr[j] = p->sg[j] / p->s0;
  cont_inputs(p->n, tt, rr, F, H, &P, &m);
  F[2 * p->n] = F[2 * p->n + 1] = 0;
  for (int j = 0; j < p->n; j++) A[j] = 1.0 / p->n;
  A[p->n] = 0;
  tape_reset(t);
  Tensor w = tensor_const(1, (int[]){(int)n->nparams}, n->w);
  Tensor o = cont_forward(n, t, w, R, F, 1, A, H, E1, E2);
  if (!tensor_ok(o)) return false;
  double mx = -INFINITY, s = 0, sp = sqrt(P);
  for (int c = 0; c < MOTIF_MDN_K; c++) mx = fmax(mx, o.d[c]);
  for (int c = 0; c < MOTIF_MDN_K; c++) s += exp(o.d[c] - mx);
  for (int c = 0; c < MOTIF_MDN_K; c++) {
    double ls = fmin(fmax(o.d[2 * MOTIF_MDN_K + c], CONT_LOGSD_MIN), CONT_LOGSD_MAX);
    q->logw[c] = o.d[c] - mx - log(s);
    q->mean[c] = p->m0 + p->s0 * (m + o.d[MOTIF_MDN_K + c] / sp);
    q->sd[c] = p->s0 * exp(ls) / sp;
  }
  return true;
}

double motif_mix_logq(const MotifMix *q, double x) {
  double l[MOTIF_MDN_K], mx = -INFINITY, s = 0;
  for (int c = 0; c < MOTIF_MDN_K; c++) {
    double z = (x - q->mean[c]) / q->sd[c];
    l[c] = q->logw[c] - 0.5 * z * z - log(q->sd[c]) - 0.5 * log(2 * M_PI);
    mx = fmax(mx, l[c]);
  }
  if (!(mx > -INFINITY)) return -INFINITY;
  for (int c = 0; c < MOTIF_MDN_K; c++) s += exp(l[c] - mx);
  return mx + log(s);
}

double motif_mix_draw(const MotifMix *q, Rng *r) {
  double u = rng_uniform(r), a = 0;
  int c = MOTIF_MDN_K - 1;
  for (int k = 0; k < MOTIF_MDN_K; k++)
    if (u < (a += exp(q->logw[k]))) {
      c = k;
      break;
    }
  return q->mean[c] + q->sd[c] * rng_normal(r);
}

/* ---- training on simulated motifs ---- */

/* One simulated motif in the prior's units (m0 = 0, s0 = 1): x ~ normal(0, 1)
   and n children y_j ~ normal(x, r_j), one scale for all or one each; its
   rows into F, summary into H; returns the target (x - m) sqrt(P). */
static double cont_sim(Rng *r, int *n, double *t, double *rr, double *F, double *H) {
  *n = rng_uniform(r) < 0.3 ? (int)rng_int(r, 0, 5)
                            : (int)fmin(floor(exp(rng_uniform(r) * log((double)CONT_MAXCHILD))),
                                        CONT_MAXCHILD - 1);
  double x = rng_normal(r), scale = exp(rng_uniform(r) * 6.5 - 4);
  bool each = rng_uniform(r) < 0.5;
  for (int j = 0; j < *n; j++) {
    rr[j] = each ? scale * exp(0.7 * rng_normal(r)) : scale;
    t[j] = x + rr[j] * rng_normal(r);
  }
  double P, m;
  cont_inputs(*n, t, rr, F, H, &P, &m);
  return (x - m) * sqrt(P);
}

bool motif_cont_train(MotifNet *n, const MotifTrainOpts *o, const char **err) {
  int B = o->batch > 0 ? o->batch : 64, M = MOTIF_MDN_K, in = CONT_PHI_OUT + CONT_HAND;
  size_t maxrows = (size_t)B * CONT_MAXCHILD + 1;
  double *F = malloc(sizeof(double) * maxrows * CONT_PHI_IN), *A = malloc(sizeof(double) * maxrows * (size_t)B);
  double *H = malloc(sizeof(double) * (size_t)B * CONT_HAND), *Z = malloc(sizeof(double) * (size_t)B * (size_t)M);
  double *tt = malloc(sizeof(double) * CONT_MAXCHILD), *rr = malloc(sizeof(double) * CONT_MAXCHILD);
  double *E1 = malloc(sizeof(double) * CONT_PHI_OUT * (size_t)in), *E2 = malloc(sizeof(double) * CONT_HAND * (size_t)in);
  int *zero = calloc((size_t)B, sizeof(int)), *nb = malloc(sizeof(int) * (size_t)B);
  /* the outputs' three parts as products with selection matrices: logits,
     offsets a, minus log sd */
  double Spi[9 * MOTIF_MDN_K], Sa[9 * MOTIF_MDN_K], Sb[9 * MOTIF_MDN_K], half[MOTIF_MDN_K];
  memset(Spi, 0, sizeof Spi), memset(Sa, 0, sizeof Sa), memset(Sb, 0, sizeof Sb);
  for (int c = 0; c < M; c++) {
    Spi[c * M + c] = 1, Sa[(M + c) * M + c] = 1, Sb[(2 * M + c) * M + c] = -1;
    half[c] = -0.5;
  }
  Rng r;
  rng_seed(&r, o->seed, 0x6c6d6863);
  MotifFit fit;
  bool ok = motif_fit_init(&fit, n, o, err);
  if (ok && !(F && A && H && Z && tt && rr && E1 && E2 && zero && nb))
    ok = false, *err = "learn-proposals: out of memory";
  Tape *t = fit.t;
  int np = (int)n->nparams;
  for (long step = 0; ok && step < o->steps; step++) {
    int R = 0;
    for (int b = 0; b < B; b++) {
      double z = cont_sim(&r, &nb[b], tt, rr, F + (size_t)R * CONT_PHI_IN, H + (size_t)b * CONT_HAND);
      for (int c = 0; c < M; c++) Z[b * M + c] = z;
      R += nb[b];
    }
    F[(size_t)R * CONT_PHI_IN] = F[(size_t)R * CONT_PHI_IN + 1] = 0;
    R++; /* the zero row: R >= 1 */
    memset(A, 0, sizeof(double) * (size_t)B * (size_t)R);
    for (int b = 0, row = 0; b < B; row += nb[b], b++)
      for (int j = 0; j < nb[b]; j++) A[(size_t)b * (size_t)R + (size_t)(row + j)] = 1.0 / nb[b];
    tape_reset(t);
    Tensor w = tensor_var(t, 1, &np, n->w);
    Tensor out = cont_forward(n, t, w, R, F, B, A, H, E1, E2);
    int sh[2] = {3 * M, M};
    Tensor logit = tensor_matmul(t, out, tensor_const(2, sh, Spi));
    Tensor a = tensor_matmul(t, out, tensor_const(2, sh, Sa));
    Tensor nlsd = tensor_matmul(t, out, tensor_const(2, sh, Sb));
    Tensor dz = tensor_mul(t, tensor_sub(t, tensor_const(2, (int[]){B, M}, Z), a),
                           tensor_act(t, TENSOR_EXP, nlsd));
    Tensor logn = tensor_add(t, tensor_mul(t, tensor_act(t, TENSOR_SQUARE, dz), tensor_const(1, &M, half)), nlsd);
    Tensor y = tensor_add(t, tensor_log_softmax(t, logit), logn);
    /* log sum_c exp(y_c) = y_0 - log_softmax(y)_0 */
    Tensor lse = tensor_sub(t, tensor_pick(t, y, zero), tensor_pick(t, tensor_log_softmax(t, y), zero));
    AdNum ll = tensor_mean(t, lse);
    /* the loss is in the standardised scale, less the constant 0.5 log 2 pi */
    ok = motif_fit_step(&fit, n, o, step, w.node, ll, err);
  }
  free(F), free(A), free(H), free(Z), free(tt), free(rr), free(E1), free(E2);
  free(zero), free(nb);
  motif_fit_free(&fit);
  return ok;
}
