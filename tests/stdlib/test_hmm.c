/* test_hmm.c — hmm_log_marginal (stdlib/builtins_hmm.c), the fused forward
 * algorithm the enumeration of a chain calls: its value against the sum over
 * all K^T paths, its tape gradient against the brute-force posterior
 * marginals (exact) and against central finite differences of the brute
 * force, a structural zero (-inf) in the transitions, inputs far from 0
 * (scaling), no steps, no path with positive density, and the messages of
 * mismatched sizes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../stdlib/ad.h"
#include "../../stdlib/builtins.h"
#include "../../stdlib/builtins_impl.h"
#include "../tap.h"

#define KMAX 4
#define TMAX 5

typedef struct In {
  int K, T;
  double lo[KMAX * TMAX]; /* K x T column-major */
  double lg[KMAX * KMAX]; /* K x K column-major: lg[k * K + j] = log p(k | j) */
  double lr[KMAX];
} In;

/* log sum over paths, and (when g) the exact gradient: the posterior
   marginals summed per input */
static double brute(const In *x, double *g) {
  int K = x->K, T = x->T, z[TMAX];
  long n = 1;
  for (int t = 0; t < T; t++) n *= K;
  double *lp = malloc(sizeof(double) * (size_t)n), m = -INFINITY;
  for (long p = 0; p < n; p++) {
    long q = p;
    for (int t = 0; t < T; t++) z[t] = (int)(q % K), q /= K;
    double s = x->lr[z[0]];
    for (int t = 0; t < T; t++) {
      s += x->lo[t * K + z[t]];
      if (t) s += x->lg[z[t] * K + z[t - 1]];
    }
    lp[p] = s;
    if (s > m) m = s;
  }
  double tot = 0;
  for (long p = 0; p < n; p++) tot += exp(lp[p] - m);
  double L = m + log(tot);
  if (g) {
    int kt = K * T, kk = K * K;
    memset(g, 0, sizeof(double) * (size_t)(kt + kk + K));
    for (long p = 0; p < n; p++) {
      double w = exp(lp[p] - L);
      long q = p;
      for (int t = 0; t < T; t++) z[t] = (int)(q % K), q /= K;
      g[kt + kk + z[0]] += w;
      for (int t = 0; t < T; t++) {
        g[t * K + z[t]] += w;
        if (t) g[kt + z[t] * K + z[t - 1]] += w;
      }
    }
  }
  free(lp);
  return L;
}

static Value mat(int r, int c, const double *d) {
  Value v = bi_ten_new(V_MAT, r, c);
  memcpy(v.t->d, d, sizeof(double) * (size_t)(r * c));
  return v;
}

/* the builtin on a tape: value (plain and AD) and the gradient per input */
static bool by_tape(const Builtin *b, const In *x, double *v, double *vad, double *g) {
  int K = x->K, T = x->T, kt = K * T, kk = K * K;
  Tape *tp = tape_new();
  Value a[3] = {mat(K, T, x->lo), mat(K, K, x->lg), bi_ten_new(V_VEC, K, 1)};
  memcpy(a[2].t->d, x->lr, sizeof(double) * (size_t)K);
  BuiltinCtx cx = {0};
  char err[256];
  Value out;
  if (!b->eval(b, &cx, 3, a, &out, err, sizeof err)) return false;
  *v = out.r;
  int32_t ids[3][KMAX * TMAX + 1];
  int sz[3] = {kt, kk, K};
  for (int i = 0; i < 3; i++) {
    a[i].t->ad = ids[i];
    for (int e = 0; e < sz[i]; e++) ids[i][e] = tape_var(tp, a[i].t->d[e]);
  }
  if (!builtin_eval_ad(b, &cx, tp, 3, a, &out, err, sizeof err)) return false;
  *vad = out.r;
  double *adj = calloc(tape_size(tp) + 1, sizeof(double));
  if (out.ad) tape_backward(tp, out.ad, adj);
  for (int i = 0, o = 0; i < 3; o += sz[i], i++)
    for (int e = 0; e < sz[i]; e++) g[o + e] = adj[ids[i][e]];
  free(adj);
  return true;
}

static double unif(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return ((*s >> 8) & 0xffffff) / 16777216.0;
}

/* K states, T steps, random logs with spread `spread` around `shift`; zero:
   a structural zero in the transitions */
static In make(int K, int T, unsigned seed, double shift, double spread, bool zero) {
  In x = {K, T, {0}, {0}, {0}};
  for (int e = 0; e < K * T; e++) x.lo[e] = shift + spread * (unif(&seed) - 0.5);
  for (int e = 0; e < K * K; e++) x.lg[e] = log(0.05 + unif(&seed));
  for (int k = 0; k < K; k++) x.lr[k] = log(0.1 + unif(&seed));
  if (zero) x.lg[1 * K + 0] = -INFINITY; /* never from state 0 to state 1 */
  return x;
}

static void check(const Builtin *b, const In *x, const char *name) {
  int n = x->K * x->T + x->K * x->K + x->K;
  double g[TMAX * KMAX + KMAX * KMAX + KMAX], ge[TMAX * KMAX + KMAX * KMAX + KMAX], v, vad;
  double want = brute(x, ge);
  if (!tap_ok(by_tape(b, x, &v, &vad, g), "%s: evaluates", name)) return;
  tap_near(v, want, 1e-12, "%s: value = the sum over %d^%d paths", name, x->K, x->T);
  tap_ok(v == vad, "%s: the same value on the tape", name);
  double worst = 0, worst_fd = 0;
  for (int i = 0; i < n; i++) {
    double e = fabs(g[i] - ge[i]);
    if (e > worst) worst = e;
    /* finite differences of the brute force, where the input is finite */
    In y = *x;
    double *p = i < x->K * x->T ? &y.lo[i]
                : i < x->K * x->T + x->K * x->K ? &y.lg[i - x->K * x->T]
                                                : &y.lr[i - x->K * x->T - x->K * x->K];
    if (!isfinite(*p)) {
      if (g[i] != 0) worst_fd = INFINITY;
      continue;
    }
    double h = 1e-5, p0 = *p;
    *p = p0 + h;
    double up = brute(&y, NULL);
    *p = p0 - h;
    double dn = brute(&y, NULL);
    double fd = (up - dn) / (2 * h);
    if (fabs(fd - g[i]) > worst_fd) worst_fd = fabs(fd - g[i]);
  }
  tap_ok(worst < 1e-12, "%s: gradient = the posterior marginals (worst %.2g)", name, worst);
  tap_ok(worst_fd < 1e-7, "%s: gradient = finite differences (worst %.2g)", name, worst_fd);
}

int main(void) {
  gc_init();
  const Builtin *b = builtin_lookup("hmm_log_marginal");
  if (!tap_ok(b != NULL, "hmm_log_marginal is a builtin")) return tap_done();
  In x = make(3, 4, 7, 0, 4, false);
  check(b, &x, "K 3, T 4");
  x = make(2, 5, 11, 0, 6, false);
  check(b, &x, "K 2, T 5");
  x = make(4, 3, 3, 0, 3, true);
  check(b, &x, "K 4, T 3, a structural zero");
  x = make(3, 4, 5, -800, 40, false); /* exp of the inputs underflows: the scales */
  check(b, &x, "K 3, T 4, logs near -800");
  x = make(3, 1, 9, 2, 2, false);
  check(b, &x, "K 3, T 1");
  double v, vad, g[KMAX * KMAX + KMAX];
  x = make(3, 0, 1, 0, 1, false);
  tap_ok(by_tape(b, &x, &v, &vad, g) && v == 0 && vad == 0, "no steps: log 1 = 0");
  x = make(2, 3, 1, 0, 1, false);
  x.lo[2] = x.lo[3] = -INFINITY; /* step 2 has no state with positive density */
  tap_ok(by_tape(b, &x, &v, &vad, g) && v == -INFINITY && vad == -INFINITY,
         "no path with positive density: -inf");
  /* mismatched sizes: a message naming the builtin and the sizes */
  char err[256] = "";
  BuiltinCtx cx = {0};
  double d[16] = {0};
  Value out, a[3] = {mat(3, 2, d), mat(2, 2, d), bi_ten_new(V_VEC, 3, 1)};
  tap_ok(!b->eval(b, &cx, 3, a, &out, err, sizeof err), "log_Gamma 2 x 2 for 3 states: an error");
  tap_streq(err, "hmm_log_marginal: log_Gamma is 2 x 2, log_omega has 3 rows (states)",
            "its message");
  a[1] = mat(3, 3, d);
  a[2] = bi_ten_new(V_VEC, 2, 1);
  tap_ok(!b->eval(b, &cx, 3, a, &out, err, sizeof err), "log_rho of 2 for 3 states: an error");
  tap_streq(err, "hmm_log_marginal: log_rho has 2 elements, log_omega has 3 rows (states)",
            "its message");
  return tap_done();
}
