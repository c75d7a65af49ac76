/* test_ad.c — the reverse-mode tape (stdlib/ad.c) and the constraining
 * transforms recorded on it (tf_constrain_ad in stdlib/transform.c).
 *
 * The tape against derivatives worked out by hand; every transform kind
 * against tf_constrain (same values) and against 5-point central finite
 * differences of tf_constrain for the derivative of each constrained output
 * and of the log-Jacobian with respect to each unconstrained input (and the
 * bounds, when they carry nodes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/value.h"
#include "stdlib/ad.h"
#include "stdlib/rng.h"
#include "stdlib/transform.h"
#include "tap.h"

static void test_tape(void) {
  Tape *t = tape_new();
  double x = 0.7, y = -1.3;
  int32_t nx = tape_var(t, x), ny = tape_var(t, y);
  tap_ok(nx == 1 && ny == 2 && tape_size(t) == 2, "variables get ids 1, 2");
  /* f = x*y + exp(x) */
  int32_t nxy = tape_binary(t, nx, y, ny, x);
  int32_t ne = tape_unary(t, nx, exp(x));
  int32_t nf = tape_binary(t, nxy, 1, ne, 1);
  double adj[16];
  tape_backward(t, nf, adj);
  tap_near(adj[nx], y + exp(x), 1e-15, "df/dx = y + exp(x)");
  tap_near(adj[ny], x, 1e-15, "df/dy = x");
  tap_ok(tape_unary(t, 0, 3.0) == 0 && tape_binary(t, 0, 1, 0, 2) == 0,
         "operations on constants make no node");
  int32_t par[3] = {0, ny, 0};
  double dv[3] = {5, 2, 7};
  int32_t np = tape_push(t, 3, par, dv);
  tape_backward(t, np, adj);
  tap_ok(adj[ny] == 2 && adj[nx] == 0, "constant parents are skipped in tape_push");
  tape_backward(t, 0, adj);
  tap_ok(adj[nx] == 0 && adj[ny] == 0, "sweeping from a constant gives zeros");
  /* reuse and growth: a long chain s = sum_i c_i * x_i */
  tape_reset(t);
  tap_ok(tape_size(t) == 0, "reset empties the tape");
  enum { N = 20000 };
  static int32_t v[N];
  for (int i = 0; i < N; i++) v[i] = tape_var(t, i);
  int32_t s = 0;
  for (int i = 0; i < N; i++) s = tape_binary(t, s, 1, v[i], 0.5 * i);
  static double big[3 * N];
  tape_backward(t, s, big);
  int bad = 0;
  for (int i = 0; i < N; i++) bad += big[v[i]] != 0.5 * i;
  tap_ok(bad == 0 && tape_size(t) == 2 * N, "a 40000-node tape after reset: every partial exact");
  /* composed helpers */
  tape_reset(t);
  AdNum a = {0.4, tape_var(t, 0.4)}, b = {2.5, tape_var(t, 2.5)};
  AdNum terms[3] = {ad_div(t, ad_log(t, b), a), ad_mul(t, ad_tanh(t, a), ad_sqrt(t, b)),
                    ad_log1m_inv_logit(t, ad_sub(t, a, b))};
  AdNum f = ad_sum(t, 3, terms);
  tape_backward(t, f.n, adj);
  double th = tanh(0.4), il = 1 / (1 + exp(-(0.4 - 2.5)));
  double dfa = -log(2.5) / (0.4 * 0.4) + (1 - th * th) * sqrt(2.5) - il;
  double dfb = 1 / (2.5 * 0.4) + th * 0.5 / sqrt(2.5) + il;
  tap_near(adj[a.n], dfa, 1e-14, "composed helpers: d/da");
  tap_near(adj[b.n], dfb, 1e-14, "composed helpers: d/db");
}

/* ---- transforms ---- */

typedef struct {
  const char *name;
  ConKind con;
  double lo, hi;
  int n; /* constrained size */
} TfCase;

/* output k of the map: x[k] for k < n, the log-Jacobian for k == n */
static double tf_out(const TfCase *c, const double *u, int k, double lo, double hi) {
  double x[64];
  double lj = tf_constrain(c->con, lo, hi, c->n, u, x);
  return k == c->n ? lj : x[k];
}

static double fd5(const TfCase *c, double *u, int i, int k, double *lo, double *hi, int which) {
  double *p = which == 0 ? &u[i] : which == 1 ? lo : hi;
  double p0 = *p, h = 1e-3 * fmax(1, fabs(p0)), f[4];
  const double off[4] = {2, 1, -1, -2};
  for (int q = 0; q < 4; q++) {
    *p = p0 + off[q] * h;
    f[q] = tf_out(c, u, k, *lo, *hi);
  }
  *p = p0;
  return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
}

static void test_transform(const TfCase *c, Rng *rng) {
  int m = tf_free_size(c->con, c->n);
  Tape *t = tape_new();
  for (int rep = 0; rep < 3; rep++) {
    tape_reset(t);
    double u[64], xv[64];
    AdNum ua[64], xa[64];
    for (int i = 0; i < m; i++) {
      u[i] = 0.8 * rng_normal(rng);
      ua[i] = (AdNum){u[i], tape_var(t, u[i])};
    }
    bool bounds = c->con == CON_LOWER || c->con == CON_UPPER || c->con == CON_LOWER_UPPER;
    double lo = c->lo, hi = c->hi;
    AdNum loa = {lo, bounds ? tape_var(t, lo) : 0}, hia = {hi, bounds ? tape_var(t, hi) : 0};
    AdNum lj = tf_constrain_ad(t, c->con, loa, hia, c->n, ua, xa);
    double ljv = tf_constrain(c->con, lo, hi, c->n, u, xv);
    bool same = fabs(lj.v - ljv) <= 1e-13 * fmax(1, fabs(ljv));
    for (int k = 0; k < c->n; k++) same &= fabs(xa[k].v - xv[k]) <= 1e-14 * fmax(1, fabs(xv[k]));
    tap_ok(same, "%s: values as tf_constrain (point %d)", c->name, rep);
    double *adj = malloc(sizeof(double) * (tape_size(t) + 1));
    double worst = 0;
    for (int k = 0; k <= c->n; k++) {
      int32_t out = k == c->n ? lj.n : xa[k].n;
      tape_backward(t, out, adj);
      for (int i = 0; i < m; i++) {
        double g = out ? adj[ua[i].n] : 0, fd = fd5(c, u, i, k, &lo, &hi, 0);
        worst = fmax(worst, fabs(g - fd) / fmax(1, fabs(fd)));
      }
      if (bounds) {
        double gl = out ? adj[loa.n] : 0, gh = out ? adj[hia.n] : 0;
        double fl = isfinite(lo) ? fd5(c, u, 0, k, &lo, &hi, 1) : 0;
        double fh = isfinite(hi) ? fd5(c, u, 0, k, &lo, &hi, 2) : 0;
        worst = fmax(worst, fabs(gl - fl) / fmax(1, fabs(fl)));
        worst = fmax(worst, fabs(gh - fh) / fmax(1, fabs(fh)));
      }
    }
    free(adj);
    tap_ok(worst <= 1e-7, "%s: d(x, log|J|)/d(u%s) match finite differences (worst %.2g, point %d)",
           c->name, bounds ? ", bounds" : "", worst, rep);
  }
}

int main(void) {
  gc_init();
  test_tape();
  static const TfCase cases[] = {
      {"none", CON_NONE, -INFINITY, INFINITY, 3},
      {"lower", CON_LOWER, 1.5, INFINITY, 3},
      {"upper", CON_UPPER, -INFINITY, -0.5, 3},
      {"lower_upper", CON_LOWER_UPPER, -2, 3, 4},
      {"lower_upper, infinite upper", CON_LOWER_UPPER, -2, INFINITY, 2},
      {"simplex", CON_SIMPLEX, 0, 0, 5},
      {"ordered", CON_ORDERED, 0, 0, 4},
      {"positive_ordered", CON_POS_ORDERED, 0, 0, 4},
      {"unit_vector", CON_UNIT_VECTOR, 0, 0, 3},
      {"cholesky_factor_corr 3x3", CON_CHOL_CORR, 0, 0, 9},
      {"cholesky_factor_corr 4x4", CON_CHOL_CORR, 0, 0, 16},
      {"cov_matrix 3x3", CON_COV, 0, 0, 9},
  };
  Rng rng;
  rng_seed(&rng, 2026, 3);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_transform(&cases[i], &rng);
  return tap_done();
}
