/* test_transform.c — the constraining transforms of stdlib/transform.h:
 * sizes, round trips u -> x -> u and x -> u -> x at random points of every
 * kind, log-Jacobians against a numerical Jacobian (central differences of
 * u -> the free coordinates of x, then log|det| by LU), Stan's conventions at
 * u = 0, and rejection of values outside each constraint set; the structured
 * kinds' reverse rule (tf_constrain_vjp) against central differences of
 * xbar.x(u) + ljbar log|J|(u), and recorded on a tape as one block with
 * scattered and constant input nodes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "stdlib/rng.h"
#include "stdlib/transform.h"
#include "tap.h"

typedef struct Case {
  const char *name;
  ConKind con;
  double lo, hi;
  int n; /* constrained scalars (K*K for matrices) */
} Case;

static const Case cases[] = {
    {"none", CON_NONE, -INFINITY, INFINITY, 3},
    {"lower", CON_LOWER, -2, INFINITY, 4},
    {"upper", CON_UPPER, -INFINITY, 3, 2},
    {"lower_upper", CON_LOWER_UPPER, -1, 4, 3},
    {"unit interval", CON_LOWER_UPPER, 0, 1, 2},
    {"lower_upper, open top", CON_LOWER_UPPER, 1.5, INFINITY, 2},
    {"simplex K=1", CON_SIMPLEX, 0, 0, 1},
    {"simplex K=2", CON_SIMPLEX, 0, 0, 2},
    {"simplex K=4", CON_SIMPLEX, 0, 0, 4},
    {"simplex K=7", CON_SIMPLEX, 0, 0, 7},
    {"ordered n=1", CON_ORDERED, 0, 0, 1},
    {"ordered n=5", CON_ORDERED, 0, 0, 5},
    {"positive_ordered n=4", CON_POS_ORDERED, 0, 0, 4},
    {"unit_vector n=3", CON_UNIT_VECTOR, 0, 0, 3},
    {"unit_vector n=1", CON_UNIT_VECTOR, 0, 0, 1},
    {"cholesky_factor_corr K=1", CON_CHOL_CORR, 0, 0, 1},
    {"cholesky_factor_corr K=2", CON_CHOL_CORR, 0, 0, 4},
    {"cholesky_factor_corr K=3", CON_CHOL_CORR, 0, 0, 9},
    {"cholesky_factor_corr K=5", CON_CHOL_CORR, 0, 0, 25},
    {"cov_matrix K=1", CON_COV, 0, 0, 1},
    {"cov_matrix K=2", CON_COV, 0, 0, 4},
    {"cov_matrix K=4", CON_COV, 0, 0, 16},
    {"corr_matrix K=1", CON_CORR, 0, 0, 1},
    {"corr_matrix K=2", CON_CORR, 0, 0, 4},
    {"corr_matrix K=3", CON_CORR, 0, 0, 9},
    {"corr_matrix K=5", CON_CORR, 0, 0, 25},
    {"cholesky_factor_cov K=1", CON_CHOL_COV, 0, 0, 1},
    {"cholesky_factor_cov K=3", CON_CHOL_COV, 0, 0, 9},
    {"cholesky_factor_cov K=4", CON_CHOL_COV, 0, 0, 16},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])
#define MAXN 32

static int side(int n) { return (int)lround(sqrt(n)); }

/* The coordinates of x that determine it (the Jacobian's rows). */
static int free_coords(const Case *c, const double *x, double *f) {
  int m = 0, K = side(c->n);
  switch (c->con) {
  case CON_SIMPLEX:
    for (int i = 0; i < c->n - 1; i++) f[m++] = x[i];
    return m;
  case CON_CHOL_CORR:
  case CON_CORR:
    for (int j = 0; j < K; j++)
      for (int i = j + 1; i < K; i++) f[m++] = x[j * K + i];
    return m;
  case CON_COV:
  case CON_CHOL_COV:
    for (int j = 0; j < K; j++)
      for (int i = j; i < K; i++) f[m++] = x[j * K + i];
    return m;
  default:
    for (int i = 0; i < c->n; i++) f[m++] = x[i];
    return m;
  }
}

/* log|det A| of an m x m row-major matrix, Gaussian elimination with pivoting */
static double log_abs_det(int m, double *A) {
  double ld = 0;
  for (int k = 0; k < m; k++) {
    int piv = k;
    for (int i = k + 1; i < m; i++)
      if (fabs(A[i * m + k]) > fabs(A[piv * m + k])) piv = i;
    if (A[piv * m + k] == 0) return -INFINITY;
    if (piv != k)
      for (int j = 0; j < m; j++) {
        double t = A[k * m + j];
        A[k * m + j] = A[piv * m + j];
        A[piv * m + j] = t;
      }
    ld += log(fabs(A[k * m + k]));
    for (int i = k + 1; i < m; i++) {
      double l = A[i * m + k] / A[k * m + k];
      for (int j = k; j < m; j++) A[i * m + j] -= l * A[k * m + j];
    }
  }
  return ld;
}

static double numeric_log_jacobian(const Case *c, const double *u, int m) {
  double J[MAXN * MAXN], up[MAXN], x[MAXN], fp[MAXN], fm[MAXN];
  const double h = 1e-5;
  for (int j = 0; j < m; j++) {
    memcpy(up, u, sizeof(double) * (size_t)m);
    up[j] = u[j] + h;
    tf_constrain(c->con, c->lo, c->hi, c->n, up, x);
    free_coords(c, x, fp);
    up[j] = u[j] - h;
    tf_constrain(c->con, c->lo, c->hi, c->n, up, x);
    free_coords(c, x, fm);
    for (int i = 0; i < m; i++) J[i * m + j] = (fp[i] - fm[i]) / (2 * h);
  }
  return log_abs_det(m, J);
}

static double maxdiff(const double *a, const double *b, int n) {
  double d = 0;
  for (int i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]) / fmax(1, fabs(b[i])));
  return d;
}

static void test_case(const Case *c, Rng *r) {
  int m = tf_free_size(c->con, c->n);
  double u[MAXN], x[MAXN], u2[MAXN], x2[MAXN], f[MAXN];
  int worst_rt = 0, worst_xt = 0, bad_free = 0;
  double worst_lj = 0;
  for (int rep = 0; rep < 20; rep++) {
    for (int i = 0; i < m; i++) u[i] = 1.3 * rng_normal(r);
    double lj = tf_constrain(c->con, c->lo, c->hi, c->n, u, x);
    if (free_coords(c, x, f) != m && c->con != CON_UNIT_VECTOR) bad_free++;
    /* u -> x -> u; a unit vector keeps only u's direction: its preimage is x */
    if (!tf_unconstrain(c->con, c->lo, c->hi, c->n, x, u2) ||
        maxdiff(u2, c->con == CON_UNIT_VECTOR ? x : u, m) > 1e-8)
      worst_rt++;
    /* x -> u -> x */
    tf_constrain(c->con, c->lo, c->hi, c->n, u2, x2);
    if (maxdiff(x2, x, c->n) > 1e-12) worst_xt++;
    if (c->con == CON_UNIT_VECTOR) {
      double r2 = 0;
      for (int i = 0; i < m; i++) r2 += u[i] * u[i];
      worst_lj = fmax(worst_lj, fabs(lj + 0.5 * r2));
    } else if (m > 0) {
      worst_lj = fmax(worst_lj, fabs(lj - numeric_log_jacobian(c, u, m)));
    } else {
      worst_lj = fmax(worst_lj, fabs(lj));
    }
  }
  tap_ok(bad_free == 0, "%s: %d free coordinates", c->name, m);
  tap_ok(worst_rt == 0, "%s: u -> x -> u round trips (%d failures)", c->name, worst_rt);
  tap_ok(worst_xt == 0, "%s: x -> u -> x round trips (%d failures)", c->name, worst_xt);
  tap_ok(worst_lj < 1e-6, "%s: log-Jacobian %s (worst error %.3g)", c->name,
         c->con == CON_UNIT_VECTOR ? "is -|u|^2/2" : "matches the numerical Jacobian", worst_lj);
}

/* phi(u) = xbar.x(u) + ljbar lj(u), whose gradient tf_constrain_vjp gives */
static double vjp_phi(const Case *c, const double *u, const double *xbar, double ljbar) {
  double x[MAXN];
  double lj = tf_constrain(c->con, c->lo, c->hi, c->n, u, x);
  double s = ljbar * lj;
  for (int i = 0; i < c->n; i++) s += xbar[i] * x[i];
  return s;
}

static void test_vjp(const Case *c, Rng *r) {
  int m = tf_free_size(c->con, c->n);
  double u[MAXN], x[MAXN], xbar[MAXN], ub[MAXN], ut[MAXN];
  double worst = 0, worst_add = 0, worst_tape = 0;
  for (int rep = 0; rep < 10; rep++) {
    for (int i = 0; i < m; i++) u[i] = 1.1 * rng_normal(r);
    for (int i = 0; i < c->n; i++) xbar[i] = rng_normal(r);
    double ljbar = rep == 0 ? 0 : rep == 1 ? 1 : rng_normal(r);
    tf_constrain(c->con, c->lo, c->hi, c->n, u, x);
    for (int i = 0; i < m; i++) ub[i] = 0;
    tf_constrain_vjp(c->con, c->n, u, x, xbar, ljbar, ub);
    for (int i = 0; i < m; i++) {
      double v[MAXN], h = 1e-4, f[4];
      const double off[4] = {2, 1, -1, -2};
      memcpy(v, u, sizeof(double) * (size_t)m);
      for (int k = 0; k < 4; k++) {
        v[i] = u[i] + off[k] * h;
        f[k] = vjp_phi(c, v, xbar, ljbar);
      }
      double fd = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h);
      worst = fmax(worst, fabs(ub[i] - fd) / fmax(1, fabs(fd)));
    }
    /* it adds into ubar */
    for (int i = 0; i < m; i++) ut[i] = 0.25 * i;
    tf_constrain_vjp(c->con, c->n, u, x, xbar, ljbar, ut);
    for (int i = 0; i < m; i++) worst_add = fmax(worst_add, fabs(ut[i] - (0.25 * i + ub[i])));
    /* on a tape: u's nodes scattered (every other one a constant), the block
       seeded with xbar and ljbar */
    Tape *t = tape_new();
    AdNum ua[MAXN], xa[MAXN];
    int32_t pad = tape_var(t, 0.0); /* a node before u's: ids are not 1.. */
    (void)pad;
    for (int i = 0; i < m; i++) ua[i] = i % 2 ? ad_const(u[i]) : (AdNum){u[i], tape_var(t, u[i])};
    AdNum lj = tf_constrain_ad(t, c->con, ad_const(c->lo), ad_const(c->hi), c->n, ua, xa);
    double adj[4 * MAXN + 8] = {0};
    bool live = false;
    for (int i = 0; i < m; i++) live = live || ua[i].n;
    if (live && (size_t)tape_size(t) + 1 <= sizeof adj / sizeof adj[0]) {
      for (int i = 0; i < c->n; i++)
        if (xa[i].n) adj[xa[i].n] += xbar[i];
      if (lj.n) adj[lj.n] += ljbar;
      tape_backward_seeded(t, adj);
      for (int i = 0; i < m; i += 2) worst_tape = fmax(worst_tape, fabs(adj[ua[i].n] - ub[i]));
    }
    for (int i = 0; i < c->n; i++) worst_tape = fmax(worst_tape, fabs(xa[i].v - x[i]));
  }
  tap_ok(worst < 1e-7, "%s: reverse rule matches central differences (worst %.3g)", c->name, worst);
  tap_ok(worst_add == 0, "%s: the reverse rule adds into ubar", c->name);
  tap_ok(worst_tape == 0, "%s: on a tape, one block with the rule's values and adjoints", c->name);
}

static void test_sizes(void) {
  tap_ok(tf_free_size(CON_SIMPLEX, 5) == 4 && tf_free_size(CON_CHOL_CORR, 16) == 6 &&
             tf_free_size(CON_COV, 9) == 6 && tf_free_size(CON_LOWER, 7) == 7 &&
             tf_free_size(CON_UNIT_VECTOR, 3) == 3 && tf_free_size(CON_ORDERED, 2) == 2 &&
             tf_free_size(CON_CHOL_CORR, 1) == 0 && tf_free_size(CON_COV, 1) == 1,
         "free sizes: simplex K-1, corr K(K-1)/2, cov K(K+1)/2, others n");
  tap_ok(tf_free_size(CON_COV, 8) == -1 && tf_free_size(CON_CHOL_CORR, 3) == -1,
         "a matrix size that is not a square is refused");
}

/* Stan's conventions at u = 0 and a few exact values. */
static void test_known(void) {
  double u[16] = {0}, x[16];
  double lj = tf_constrain(CON_SIMPLEX, 0, 0, 4, u, x);
  tap_ok(fabs(x[0] - 0.25) < 1e-15 && fabs(x[1] - 0.25) < 1e-15 && fabs(x[3] - 0.25) < 1e-15,
         "simplex: u = 0 is the uniform simplex (the log(K-k) offsets)");
  /* by hand: z = 1/4, 1/3, 1/2; sticks 1, 3/4, 1/2 */
  double want = log(0.25 * 0.75) + log(0.75) + log(1.0 / 3 * 2.0 / 3) + log(0.5) + log(0.25);
  tap_ok(fabs(lj - want) < 1e-14, "simplex: log-Jacobian at u = 0 (%.17g vs %.17g)", lj, want);
  lj = tf_constrain(CON_LOWER_UPPER, 2, 6, 1, u, x);
  tap_ok(x[0] == 4 && fabs(lj - log(4 * 0.25)) < 1e-15, "lower_upper: u = 0 is the midpoint");
  lj = tf_constrain(CON_LOWER, 3, INFINITY, 1, (double[]){log(2)}, x);
  tap_ok(fabs(x[0] - 5) < 1e-15 && fabs(lj - log(2)) < 1e-15, "lower: x = lo + exp(u)");
  tf_constrain(CON_UPPER, -INFINITY, 3, 1, (double[]){log(2)}, x);
  tap_ok(fabs(x[0] - 1) < 1e-15, "upper: x = hi - exp(u)");
  lj = tf_constrain(CON_CHOL_CORR, 0, 0, 9, u, x);
  tap_ok(x[0] == 1 && x[4] == 1 && x[8] == 1 && x[1] == 0 && x[5] == 0 && lj == 0,
         "cholesky_factor_corr: u = 0 is the identity");
  lj = tf_constrain(CON_COV, 0, 0, 9, u, x);
  tap_ok(x[0] == 1 && x[4] == 1 && x[8] == 1 && x[1] == 0 && x[3] == 0 &&
             fabs(lj - 3 * log(2)) < 1e-15,
         "cov_matrix: u = 0 is the identity, log-Jacobian K log 2");
  /* Stan's order for cholesky_factor_corr: u fills rows of the lower triangle:
     u[0] -> x(1,0), u[1] -> x(2,0), u[2] -> x(2,1) */
  tf_constrain(CON_CHOL_CORR, 0, 0, 9, (double[]){0.3, 0, 0}, x);
  tap_ok(fabs(x[1] - tanh(0.3)) < 1e-15 && x[2] == 0, "cholesky_factor_corr: Stan's CPC order");
  tf_constrain(CON_CHOL_CORR, 0, 0, 9, (double[]){0, 0.4, 0}, x);
  tap_ok(fabs(x[2] - tanh(0.4)) < 1e-15 && x[1] == 0, "cholesky_factor_corr: second CPC is x(2,0)");
  /* cov order: u = (log L00, L10, log L11) row by row */
  tf_constrain(CON_COV, 0, 0, 4, (double[]){log(2), 0.5, log(3)}, x);
  tap_ok(fabs(x[0] - 4) < 1e-14 && fabs(x[1] - 1) < 1e-14 && fabs(x[2] - 1) < 1e-14 &&
             fabs(x[3] - 9.25) < 1e-14,
         "cov_matrix: Stan's order (log L00, L10, log L11)");
  /* corr_matrix reads its CPCs column by column as Stan does: the third of
     K = 4 is entry (3,0), where cholesky_factor_corr's third is (2,1) */
  tf_constrain(CON_CORR, 0, 0, 16, (double[]){0, 0, 0.4, 0, 0, 0}, x);
  tap_ok(fabs(x[3] - tanh(0.4)) < 1e-15 && fabs(x[12] - tanh(0.4)) < 1e-15 && x[6] == 0 &&
             x[0] == 1 && x[15] == 1,
         "corr_matrix: Stan's column order of the CPCs, symmetric, unit diagonal");
  lj = tf_constrain(CON_CORR, 0, 0, 9, (double[]){0, 0, 0}, x);
  tap_ok(lj == 0 && x[0] == 1 && x[4] == 1 && x[8] == 1 && x[1] == 0 && x[5] == 0,
         "corr_matrix: u = 0 is the identity");
  lj = tf_constrain(CON_CHOL_COV, 0, 0, 4, (double[]){log(2), 0.5, log(3)}, x);
  tap_ok(fabs(x[0] - 2) < 1e-15 && x[1] == 0.5 && x[2] == 0 && fabs(x[3] - 3) < 1e-15 &&
             fabs(lj - log(6)) < 1e-15,
         "cholesky_factor_cov: (log L00, L10, log L11), log|J| the log diagonal");
  /* far out: no NaN, bounds respected */
  lj = tf_constrain(CON_LOWER_UPPER, 0, 1, 1, (double[]){800}, x);
  tap_ok(x[0] <= 1 && x[0] >= 0 && !isnan(lj), "lower_upper: u = 800 stays in [lo, hi]");
  lj = tf_constrain(CON_CHOL_CORR, 0, 0, 4, (double[]){400}, x);
  tap_ok(isfinite(lj) && fabs(lj - 2 * (log(2) - 400)) < 1e-9, "cholesky_factor_corr: log(1 - tanh^2) for large u");
  lj = tf_constrain(CON_UNIT_VECTOR, 0, 0, 2, (double[]){0, 0}, x);
  tap_ok(lj == -INFINITY && x[0] == 1 && x[1] == 0, "unit_vector: u = 0 gives -inf, not NaN");
}

static void test_reject(void) {
  double u[16];
  tap_ok(!tf_unconstrain(CON_LOWER, 1, INFINITY, 1, (double[]){1}, u), "lower: x = lo refused");
  tap_ok(!tf_unconstrain(CON_UPPER, 0, 1, 1, (double[]){1.5}, u), "upper: x > hi refused");
  tap_ok(!tf_unconstrain(CON_LOWER_UPPER, 0, 1, 2, (double[]){0.5, 1}, u),
         "lower_upper: x = hi refused");
  tap_ok(!tf_unconstrain(CON_LOWER_UPPER, 0, 1, 1, (double[]){NAN}, u), "NaN refused");
  tap_ok(!tf_unconstrain(CON_SIMPLEX, 0, 0, 3, (double[]){0.5, 0.4, 0.2}, u),
         "simplex: sum 1.1 refused");
  tap_ok(!tf_unconstrain(CON_SIMPLEX, 0, 0, 3, (double[]){0.5, 0.5, 0}, u),
         "simplex: a zero entry refused");
  tap_ok(tf_unconstrain(CON_SIMPLEX, 0, 0, 3, (double[]){0.2, 0.3, 0.5}, u),
         "simplex: a simplex accepted");
  tap_ok(!tf_unconstrain(CON_ORDERED, 0, 0, 3, (double[]){1, 3, 3}, u), "ordered: a tie refused");
  tap_ok(!tf_unconstrain(CON_POS_ORDERED, 0, 0, 2, (double[]){-1, 3}, u),
         "positive_ordered: a negative first entry refused");
  tap_ok(!tf_unconstrain(CON_UNIT_VECTOR, 0, 0, 2, (double[]){1, 1}, u),
         "unit_vector: norm sqrt(2) refused");
  tap_ok(!tf_unconstrain(CON_CHOL_CORR, 0, 0, 4, (double[]){1, 0.5, 0, 0.5}, u),
         "cholesky_factor_corr: a non-unit row refused");
  tap_ok(!tf_unconstrain(CON_CHOL_CORR, 0, 0, 4, (double[]){1, 0, 0.3, 1}, u),
         "cholesky_factor_corr: a non-zero upper entry refused");
  tap_ok(!tf_unconstrain(CON_COV, 0, 0, 4, (double[]){1, 2, 2, 1}, u),
         "cov_matrix: an indefinite matrix refused");
  tap_ok(!tf_unconstrain(CON_COV, 0, 0, 4, (double[]){2, 0.1, 0.3, 2}, u),
         "cov_matrix: an asymmetric matrix refused");
  tap_ok(!tf_unconstrain(CON_CORR, 0, 0, 4, (double[]){2, 0.1, 0.1, 1}, u),
         "corr_matrix: a diagonal entry 2 refused");
  tap_ok(!tf_unconstrain(CON_CORR, 0, 0, 4, (double[]){1, 1.2, 1.2, 1}, u),
         "corr_matrix: an indefinite matrix refused");
  tap_ok(tf_unconstrain(CON_CORR, 0, 0, 4, (double[]){1, -0.3, -0.3, 1}, u) &&
             fabs(u[0] - atanh(-0.3)) < 1e-15,
         "corr_matrix: a correlation matrix accepted");
  tap_ok(!tf_unconstrain(CON_CHOL_COV, 0, 0, 4, (double[]){1, 0.5, 0.2, 1}, u),
         "cholesky_factor_cov: a non-zero upper entry refused");
  tap_ok(!tf_unconstrain(CON_CHOL_COV, 0, 0, 4, (double[]){1, 0.5, 0, -1}, u),
         "cholesky_factor_cov: a negative diagonal refused");
}

int main(void) {
  Rng r;
  rng_seed(&r, 2024, 0);
  test_sizes();
  for (int i = 0; i < NCASES; i++) test_case(&cases[i], &r);
  for (int i = 0; i < NCASES; i++)
    if (tf_structured(cases[i].con)) test_vjp(&cases[i], &r);
  test_known();
  test_reject();
  return tap_done();
}
