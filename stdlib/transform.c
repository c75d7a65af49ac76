/* transform.c — Stan's constraining transforms (stdlib/transform.h).
 *
 * Each kind maps unconstrained reals u to a constrained value x and returns
 * log|det J| of that map, taken with respect to x's free coordinates (all
 * scalars for bounds and ordered vectors, the first K-1 entries of a simplex,
 * the strict lower triangle of a correlation Cholesky factor, the lower
 * triangle of a covariance matrix).  The formulas, coordinate orders and
 * Jacobians are exactly Stan's, so a model's unconstrained vector means the
 * same thing here as there.
 *
 * The inverse maps reject values outside the open constraint set (a bound hit
 * exactly, a zero simplex entry, ties in an ordered vector): those have no
 * finite unconstrained image. */
#include "transform.h"

#include <math.h>

#include "linalg.h"
#include "mathfn.h"

/* side of a K x K matrix stored as n = K*K scalars; -1 if n is not a square */
static int tf_side(int n) {
  if (n < 0) return -1;
  int K = (int)llround(sqrt((double)n));
  return K * K == n ? K : -1;
}

/* Scratch of n doubles: in buf (TF_STACK of them, on the caller's stack)
   for the small units models have, else collected memory. */
#define TF_STACK 256
static double *tf_scratch(double *buf, size_t n) {
  return n <= TF_STACK ? buf : gc_alloc_atomic(sizeof(double) * n);
}

int tf_free_size(ConKind con, int n) {
  int K;
  switch (con) {
  case CON_SIMPLEX: return n > 0 ? n - 1 : 0;
  case CON_CHOL_CORR: K = tf_side(n); return K < 0 ? -1 : K * (K - 1) / 2;
  case CON_COV: case CON_CHOL_COV: K = tf_side(n); return K < 0 ? -1 : K * (K + 1) / 2;
  case CON_CORR: K = tf_side(n); return K < 0 ? -1 : K * (K - 1) / 2;
  default: return n;
  }
}

/* ---- scalar bounds, elementwise ------------------------------------------ */

/* Infinite bounds fall back to the one-sided or identity transform. */
static ConKind tf_bound_kind(ConKind con, double lo, double hi) {
  bool has_lo = (con == CON_LOWER || con == CON_LOWER_UPPER) && lo > -INFINITY;
  bool has_hi = (con == CON_UPPER || con == CON_LOWER_UPPER) && hi < INFINITY;
  return has_lo && has_hi ? CON_LOWER_UPPER : has_lo ? CON_LOWER : has_hi ? CON_UPPER : CON_NONE;
}

static bool tf_bound_free(ConKind k, double lo, double hi, double x, double *u) {
  switch (k) {
  case CON_LOWER:
    if (!(x > lo)) return false;
    *u = log(x - lo);
    break;
  case CON_UPPER:
    if (!(x < hi)) return false;
    *u = log(hi - x);
    break;
  case CON_LOWER_UPPER:
    if (!(x > lo && x < hi)) return false;
    *u = log(x - lo) - log(hi - x); /* logit((x-lo)/(hi-lo)) without losing the top end */
    break;
  default:
    if (isnan(x)) return false;
    *u = x;
  }
  return isfinite(*u);
}

static double tf_bound_map(ConKind k, double lo, double hi, double u, double *x) {
  switch (k) {
  case CON_LOWER: *x = lo + exp(u); return u;
  case CON_UPPER: *x = hi - exp(u); return u;
  case CON_LOWER_UPPER: {
    double d = hi - lo;
    /* from the nearer bound, so x never crosses it by rounding */
    *x = u > 0 ? hi - d * m_inv_logit(-u) : lo + d * m_inv_logit(u);
    return log(d) + m_log_inv_logit(u) + m_log1m_inv_logit(u);
  }
  default: *x = u; return 0;
  }
}

/* ---- simplex: stick-breaking ---------------------------------------------- */

/* x[k] = stick * inv_logit(u[k] - log(K-1-k)) (0-based k < K-1), the last entry
   takes the remaining stick; the offset makes u = 0 the uniform simplex. */
static double tf_simplex_map(int K, const double *u, double *x) {
  if (K == 0) return 0;
  double stick = 1, lj = 0;
  for (int k = 0; k < K - 1; k++) {
    double a = u[k] - log((double)(K - 1 - k));
    x[k] = stick * m_inv_logit(a);
    lj += log(stick) + m_log_inv_logit(a) + m_log1m_inv_logit(a);
    stick *= m_inv_logit(-a);
  }
  x[K - 1] = stick;
  return lj;
}

static bool tf_simplex_free(int K, const double *x, double *u) {
  if (!la_is_simplex(x, K, "x", NULL, 0)) return false;
  if (K == 0) return true;
  double stick = x[K - 1]; /* summed from the end: the remaining stick, exactly */
  if (!(stick > 0)) return false;
  for (int k = K - 2; k >= 0; k--) {
    if (!(x[k] > 0)) return false;
    double rest = stick;
    stick += x[k];
    u[k] = log(x[k]) - log(rest) + log((double)(K - 1 - k));
  }
  return true;
}

/* ---- ordered and positive_ordered ------------------------------------------ */

static double tf_ordered_map(bool pos, int n, const double *u, double *x) {
  double lj = 0;
  for (int k = 0; k < n; k++) {
    if (k == 0 && !pos) {
      x[0] = u[0];
      continue;
    }
    x[k] = (k == 0 ? 0 : x[k - 1]) + exp(u[k]);
    lj += u[k];
  }
  return lj;
}

static bool tf_ordered_free(bool pos, int n, const double *x, double *u) {
  for (int k = 0; k < n; k++) {
    double prev = k == 0 ? 0 : x[k - 1];
    if (k == 0 && !pos) {
      if (!isfinite(x[0])) return false;
      u[0] = x[0];
      continue;
    }
    if (!(x[k] > prev) || !isfinite(x[k])) return false;
    u[k] = log(x[k] - prev);
  }
  return true;
}

/* ---- unit_vector ------------------------------------------------------------ */

/* x = u / |u|.  The map is not one-to-one (u has one more dimension than the
   sphere), so like Stan we add -|u|^2/2 instead of a Jacobian: it makes u
   standard normal a priori, keeps |u| away from 0 and gives u's direction the
   uniform distribution on the sphere.  u = 0 has no direction: -inf. */
static double tf_unit_map(int n, const double *u, double *x) {
  double r2 = 0;
  for (int k = 0; k < n; k++) r2 += u[k] * u[k];
  if (!(r2 > 0)) {
    for (int k = 0; k < n; k++) x[k] = k == 0;
    return -INFINITY;
  }
  double r = sqrt(r2);
  for (int k = 0; k < n; k++) x[k] = u[k] / r;
  return -0.5 * r2;
}

static bool tf_unit_free(int n, const double *x, double *u) {
  double r2 = 0;
  for (int k = 0; k < n; k++) r2 += x[k] * x[k];
  if (!(fabs(r2 - 1) <= 1e-8)) return false;
  for (int k = 0; k < n; k++) u[k] = x[k];
  return true;
}

/* ---- cholesky_factor_corr: canonical partial correlations ----------------- */

/* log(1 - tanh(u)^2) = 2 log sech(u), without tanh rounding to 1 */
static double tf_log1m_tanh2(double u) {
  double a = fabs(u);
  return 2 * (PPL_LOG2 - a - log1p(exp(-2 * a)));
}

/* Row by row (Stan's order: row i = 1..K-1, column j = 0..i-1), the CPC
   z = tanh(u) scales what is left of the row's unit length. */
static double tf_chol_corr_map(int K, const double *u, double *x) {
  for (int q = 0; q < K * K; q++) x[q] = 0;
  if (K == 0) return 0;
  x[0] = 1;
  double lj = 0;
  int k = 0;
  for (int i = 1; i < K; i++) {
    double ss = 0;
    for (int j = 0; j < i; j++, k++) {
      double z = tanh(u[k]);
      lj += tf_log1m_tanh2(u[k]);
      double v = z;
      if (j > 0) {
        lj += 0.5 * log1p(-ss);
        v = z * sqrt(1 - ss);
      }
      x[j * K + i] = v;
      ss += v * v;
    }
    x[i * K + i] = sqrt(fmax(0, 1 - ss));
  }
  return lj;
}

static bool tf_chol_corr_free(int K, const double *x, double *u) {
  for (int i = 0; i < K; i++) {
    double ss = 0;
    for (int j = 0; j < K; j++) {
      double v = x[j * K + i];
      if (j > i && !(fabs(v) <= 1e-8)) return false;
      if (j <= i) ss += v * v;
    }
    if (!(x[i * K + i] > 0) || !(fabs(ss - 1) <= 1e-8)) return false;
  }
  int k = 0;
  for (int i = 1; i < K; i++) {
    double ss = 0;
    for (int j = 0; j < i; j++, k++) {
      double v = x[j * K + i];
      double z = j == 0 ? v : v / sqrt(1 - ss);
      if (!(fabs(z) < 1)) return false;
      u[k] = atanh(z);
      ss += v * v;
    }
  }
  return true;
}

/* x = L L' of a lower-triangular L (column-major K x K), both triangles */
static void tf_llt(int K, const double *L, double *x) {
  for (int i = 0; i < K; i++)
    for (int j = 0; j <= i; j++) {
      double s = 0;
      for (int q = 0; q <= j; q++) s += L[q * K + i] * L[q * K + j];
      x[j * K + i] = x[i * K + j] = s;
    }
}

/* ---- cov_matrix: Cholesky factor with log diagonal -------------------------- */

/* u fills L row by row (row m: m off-diagonal entries, then log L[m,m]);
   x = L L'.  log|J| = K log 2 + sum_k (K - k + 1) log L[k,k] (0-based k): the
   Jacobian of L -> L L' on the lower triangle plus the exp on the diagonal. */
static double tf_cov_map(int K, const double *u, double *x) {
  double Lbuf[TF_STACK];
  double *L = tf_scratch(Lbuf, (size_t)(K * K > 0 ? K * K : 1));
  int k = 0;
  double lj = K * PPL_LOG2;
  for (int m = 0; m < K; m++) {
    for (int j = 0; j < K; j++) L[j * K + m] = 0;
    for (int j = 0; j < m; j++) L[j * K + m] = u[k++];
    L[m * K + m] = exp(u[k]);
    lj += (K - m + 1) * u[k++];
  }
  tf_llt(K, L, x);
  return lj;
}

static bool tf_cov_free(int K, const double *x, double *u) {
  double Lbuf[TF_STACK];
  double *L = tf_scratch(Lbuf, (size_t)(K * K > 0 ? K * K : 1));
  if (!la_is_symmetric(K, x, 1e-8) || !la_cholesky(K, x, L)) return false;
  int k = 0;
  for (int m = 0; m < K; m++) {
    for (int j = 0; j < m; j++) u[k++] = L[j * K + m];
    u[k++] = log(L[m * K + m]);
  }
  return true;
}

/* ---- corr_matrix: a correlation factor, times its transpose ---------------- */

/* Stan reads a correlation matrix's canonical partial correlations column by
   column (x21, x31, ..., xK1, x32, ...), cholesky_factor_corr's row by row:
   the position in u of entry (i, j), i > j, in each order. */
static int tf_col_pos(int K, int i, int j) { return j * (2 * K - j - 1) / 2 + (i - j - 1); }
static int tf_row_pos(int i, int j) { return i * (i - 1) / 2 + j; }

/* CPC weight in the log-Jacobian of u -> the correlation matrix: tanh's own
   term plus Stan's (K - k - 1) / 2 log(1 - z^2) for column k (1-based) */
static double tf_corr_weight(int K, int j) { return 1 + 0.5 * (K - j - 2); }

static double *tf_corr_factor(int K, const double *u, double *ur, double *L) {
  for (int i = 1; i < K; i++)
    for (int j = 0; j < i; j++) ur[tf_row_pos(i, j)] = u[tf_col_pos(K, i, j)];
  tf_chol_corr_map(K, ur, L);
  return L;
}

static double tf_corr_map(int K, const double *u, double *x) {
  size_t kk = (size_t)(K * K > 0 ? K * K : 1);
  double buf[TF_STACK];
  double *L = tf_scratch(buf, 2 * kk), *ur = L + kk;
  tf_llt(K, tf_corr_factor(K, u, ur, L), x);
  double lj = 0;
  for (int j = 0; j + 1 < K; j++)
    for (int i = j + 1; i < K; i++)
      lj += tf_corr_weight(K, j) * tf_log1m_tanh2(u[tf_col_pos(K, i, j)]);
  return lj;
}

static bool tf_corr_free(int K, const double *x, double *u) {
  size_t kk = (size_t)(K * K > 0 ? K * K : 1);
  double buf[TF_STACK];
  double *L = tf_scratch(buf, 2 * kk), *ur = L + kk;
  for (int i = 0; i < K; i++)
    if (!(fabs(x[i * K + i] - 1) <= 1e-8)) return false;
  if (!la_is_symmetric(K, x, 1e-8) || !la_cholesky(K, x, L) || !tf_chol_corr_free(K, L, ur))
    return false;
  for (int i = 1; i < K; i++)
    for (int j = 0; j < i; j++) u[tf_col_pos(K, i, j)] = ur[tf_row_pos(i, j)];
  return true;
}

/* ---- cholesky_factor_cov: lower triangular, positive diagonal --------------- */

/* u fills L row by row (row m: m off-diagonal entries, then log L[m,m]), as
   cov_matrix's factor; x = L and log|J| = sum of the log diagonal. */
static double tf_chol_cov_map(int K, const double *u, double *x) {
  int k = 0;
  double lj = 0;
  for (int m = 0; m < K; m++) {
    for (int j = 0; j < K; j++) x[j * K + m] = 0;
    for (int j = 0; j < m; j++) x[j * K + m] = u[k++];
    x[m * K + m] = exp(u[k]);
    lj += u[k++];
  }
  return lj;
}

static bool tf_chol_cov_free(int K, const double *x, double *u) {
  int k = 0;
  for (int m = 0; m < K; m++) {
    for (int j = m + 1; j < K; j++)
      if (!(fabs(x[j * K + m]) <= 1e-8)) return false;
    for (int j = 0; j < m; j++) {
      if (!isfinite(x[j * K + m])) return false;
      u[k++] = x[j * K + m];
    }
    if (!(x[m * K + m] > 0) || !isfinite(x[m * K + m])) return false;
    u[k++] = log(x[m * K + m]);
  }
  return true;
}

/* ---- dispatch ------------------------------------------------------------------ */

bool tf_unconstrain(ConKind con, double lo, double hi, int n, const double *x, double *u) {
  int K;
  switch (con) {
  case CON_SIMPLEX: return tf_simplex_free(n, x, u);
  case CON_ORDERED: return tf_ordered_free(false, n, x, u);
  case CON_POS_ORDERED: return tf_ordered_free(true, n, x, u);
  case CON_UNIT_VECTOR: return tf_unit_free(n, x, u);
  case CON_CHOL_CORR: return (K = tf_side(n)) >= 0 && tf_chol_corr_free(K, x, u);
  case CON_COV: return (K = tf_side(n)) >= 0 && tf_cov_free(K, x, u);
  case CON_CORR: return (K = tf_side(n)) >= 0 && tf_corr_free(K, x, u);
  case CON_CHOL_COV: return (K = tf_side(n)) >= 0 && tf_chol_cov_free(K, x, u);
  default: {
    ConKind k = tf_bound_kind(con, lo, hi);
    for (int i = 0; i < n; i++)
      if (!tf_bound_free(k, lo, hi, x[i], &u[i])) return false;
    return true;
  }
  }
}

double tf_constrain(ConKind con, double lo, double hi, int n, const double *u, double *x) {
  int K;
  switch (con) {
  case CON_SIMPLEX: return tf_simplex_map(n, u, x);
  case CON_ORDERED: return tf_ordered_map(false, n, u, x);
  case CON_POS_ORDERED: return tf_ordered_map(true, n, u, x);
  case CON_UNIT_VECTOR: return tf_unit_map(n, u, x);
  case CON_CHOL_CORR: return (K = tf_side(n)) >= 0 ? tf_chol_corr_map(K, u, x) : NAN;
  case CON_COV: return (K = tf_side(n)) >= 0 ? tf_cov_map(K, u, x) : NAN;
  case CON_CORR: return (K = tf_side(n)) >= 0 ? tf_corr_map(K, u, x) : NAN;
  case CON_CHOL_COV: return (K = tf_side(n)) >= 0 ? tf_chol_cov_map(K, u, x) : NAN;
  default: {
    ConKind k = tf_bound_kind(con, lo, hi);
    double lj = 0;
    for (int i = 0; i < n; i++) lj += tf_bound_map(k, lo, hi, u[i], &x[i]);
    return lj;
  }
  }
}

/* ---- derivatives of the structured maps ---------------------------------------- */

/* Each rule below is the reverse of its map above, written from the map's own
   steps (recomputed from u where the map keeps no intermediate), so the
   interpreter's tape (one block, tfa_structured) and the JIT's runtime
   (ir/jit_rt.c) run the same numbers. */

bool tf_structured(ConKind con) {
  return con == CON_SIMPLEX || con == CON_ORDERED || con == CON_POS_ORDERED ||
         con == CON_UNIT_VECTOR || con == CON_CHOL_CORR || con == CON_COV || con == CON_CORR ||
         con == CON_CHOL_COV;
}


/* x[k] = x[k-1] + exp(u[k]): x[k]'s adjoint reaches every earlier step, so
   sweep from the end with the running sum of xbar. */
static void tf_ordered_vjp(bool pos, int n, const double *u, const double *xbar, double ljbar,
                           double *ubar) {
  double c = 0;
  for (int k = n - 1; k >= 0; k--) {
    c += xbar[k];
    if (k == 0 && !pos) ubar[0] += c;
    else ubar[k] += c * exp(u[k]) + ljbar;
  }
}

/* stick-breaking backwards: sb is the adjoint of the stick left after step k */
static void tf_simplex_vjp(int K, const double *u, const double *xbar, double ljbar,
                           double *ubar) {
  if (K <= 1) return;
  double buf[TF_STACK];
  double *stick = tf_scratch(buf, (size_t)K);
  stick[0] = 1;
  for (int k = 0; k < K - 1; k++)
    stick[k + 1] = stick[k] * m_inv_logit(-(u[k] - log((double)(K - 1 - k))));
  double sb = xbar[K - 1];
  for (int k = K - 2; k >= 0; k--) {
    double a = u[k] - log((double)(K - 1 - k));
    double p = m_inv_logit(a), q = m_inv_logit(-a), s = stick[k];
    /* stick[k+1] = s q; x[k] = s p; lj += log s + log p + log q */
    double ab = sb * s * (-p * q) + xbar[k] * s * p * q + ljbar * (q - p);
    sb = sb * q + xbar[k] * p + (k > 0 ? ljbar / s : 0);
    ubar[k] += ab;
  }
}

/* x = u / |u|, lj = -|u|^2 / 2 */
static void tf_unit_vjp(int n, const double *u, const double *x, const double *xbar, double ljbar,
                        double *ubar) {
  double r2 = 0, dot = 0;
  for (int k = 0; k < n; k++) r2 += u[k] * u[k];
  if (!(r2 > 0)) return; /* a constant point and -inf: no derivative */
  double r = sqrt(r2);
  for (int k = 0; k < n; k++) dot += xbar[k] * x[k];
  for (int k = 0; k < n; k++) ubar[k] += (xbar[k] - dot * x[k]) / r - ljbar * u[k];
}

/* Row by row: the row's entries v_j = z_j sqrt(1 - ss_j) (z = tanh u, ss_j the
   squares before j), the diagonal sqrt(1 - ss); ssb carries the adjoint of
   the running sum of squares backwards along the row. */
static void tf_chol_corr_vjp(int K, const double *u, const double *x, const double *xbar,
                             double ljbar, double *ubar) {
  double buf[TF_STACK];
  double *ss = tf_scratch(buf, (size_t)(K > 0 ? K : 1));
  int k0 = 0;
  for (int i = 1; i < K; i++) {
    ss[0] = 0;
    for (int j = 0; j < i; j++) {
      double v = x[j * K + i];
      if (j + 1 < i) ss[j + 1] = ss[j] + v * v;
    }
    double last = ss[i - 1] + x[(i - 1) * K + i] * x[(i - 1) * K + i];
    double om = 1 - last, ssb = 0;
    if (om > 0) ssb = -xbar[i * K + i] * 0.5 / sqrt(om);
    for (int j = i - 1; j >= 0; j--) {
      int k = k0 + j;
      double z = tanh(u[k]), v = x[j * K + i];
      double vb = xbar[j * K + i] + 2 * v * ssb, zb = vb;
      if (j > 0) {
        double o = 1 - ss[j], so = sqrt(o);
        zb = vb * so;
        ssb -= vb * z * 0.5 / so + ljbar * 0.5 / o;
      }
      ubar[k] += zb * (1 - z * z) - ljbar * 2 * z;
    }
    k0 += i;
  }
}

/* Lb += the adjoint of L through x = L L' (tf_llt): x[i,j] and x[j,i] are
   one value, whose adjoint is the sum of both. */
static void tf_llt_vjp(int K, const double *L, const double *xbar, double *Lb) {
  for (int i = 0; i < K; i++)
    for (int j = 0; j <= i; j++) {
      double sb = i == j ? xbar[i * K + i] : xbar[j * K + i] + xbar[i * K + j];
      for (int q = 0; q <= j; q++) {
        Lb[q * K + i] += sb * L[q * K + j];
        Lb[q * K + j] += sb * L[q * K + i];
      }
    }
}

/* corr_matrix: L's adjoint through L L', then cholesky_factor_corr's rule
   with u in its row order (and no log-Jacobian: corr_matrix's own is a sum
   of weighted log(1 - tanh^2) terms, added here) */
static void tf_corr_vjp(int K, const double *u, const double *xbar, double ljbar,
                        double *ubar) {
  size_t kk = (size_t)(K * K > 0 ? K * K : 1);
  double buf[TF_STACK];
  double *L = tf_scratch(buf, 4 * kk), *ur = L + kk, *Lb = ur + kk,
         *urb = Lb + kk;
  tf_corr_factor(K, u, ur, L);
  for (size_t q = 0; q < kk; q++) Lb[q] = urb[q] = 0;
  tf_llt_vjp(K, L, xbar, Lb);
  tf_chol_corr_vjp(K, ur, L, Lb, 0, urb);
  for (int j = 0; j + 1 < K; j++)
    for (int i = j + 1; i < K; i++) {
      int c = tf_col_pos(K, i, j);
      ubar[c] += urb[tf_row_pos(i, j)] - ljbar * tf_corr_weight(K, j) * 2 * tanh(u[c]);
    }
}

/* cholesky_factor_cov: x = L entry for entry, the diagonal exp'd */
static void tf_chol_cov_vjp(int K, const double *u, const double *xbar, double ljbar,
                            double *ubar) {
  int k = 0;
  for (int m = 0; m < K; m++) {
    for (int j = 0; j < m; j++, k++) ubar[k] += xbar[j * K + m];
    ubar[k] += xbar[m * K + m] * exp(u[k]) + ljbar;
    k++;
  }
}

/* x = L L' with L from u (off-diagonal entries as they are, the diagonal
   exp'd). */
static void tf_cov_vjp(int K, const double *u, const double *xbar, double ljbar, double *ubar) {
  double buf[TF_STACK], bufb[TF_STACK];
  size_t kk = (size_t)(K * K > 0 ? K * K : 1);
  double *L = tf_scratch(buf, kk), *Lb = tf_scratch(bufb, kk);
  int k = 0;
  for (int m = 0; m < K; m++) {
    for (int j = 0; j < K; j++) L[j * K + m] = Lb[j * K + m] = 0;
    for (int j = 0; j < m; j++) L[j * K + m] = u[k++];
    L[m * K + m] = exp(u[k++]);
  }
  tf_llt_vjp(K, L, xbar, Lb);
  k = 0;
  for (int m = 0; m < K; m++) {
    for (int j = 0; j < m; j++, k++) ubar[k] += Lb[j * K + m];
    ubar[k] += Lb[m * K + m] * L[m * K + m] + ljbar * (K - m + 1);
    k++;
  }
}

void tf_constrain_vjp(ConKind con, int n, const double *u, const double *x, const double *xbar,
                      double ljbar, double *ubar) {
  int K;
  switch (con) {
  case CON_SIMPLEX: tf_simplex_vjp(n, u, xbar, ljbar, ubar); break;
  case CON_ORDERED: tf_ordered_vjp(false, n, u, xbar, ljbar, ubar); break;
  case CON_POS_ORDERED: tf_ordered_vjp(true, n, u, xbar, ljbar, ubar); break;
  case CON_UNIT_VECTOR: tf_unit_vjp(n, u, x, xbar, ljbar, ubar); break;
  case CON_CHOL_CORR:
    if ((K = tf_side(n)) >= 0) tf_chol_corr_vjp(K, u, x, xbar, ljbar, ubar);
    break;
  case CON_COV:
    if ((K = tf_side(n)) >= 0) tf_cov_vjp(K, u, xbar, ljbar, ubar);
    break;
  case CON_CORR:
    if ((K = tf_side(n)) >= 0) tf_corr_vjp(K, u, xbar, ljbar, ubar);
    break;
  case CON_CHOL_COV:
    if ((K = tf_side(n)) >= 0) tf_chol_cov_vjp(K, u, xbar, ljbar, ubar);
    break;
  case CON_NONE: /* the identity: a whole-value family's unconstrained latent */
    for (int i = 0; i < n; i++) ubar[i] += xbar[i];
    break;
  default: break;
  }
}

/* ---- the same maps on a tape ------------------------------------------------ */

/* Scalar bounds node by node (the bounds may carry nodes); the structured
   kinds as one block whose rule is tf_constrain_vjp. */

/* The bounds may carry nodes too (bounds computed from parameters). */
static AdNum tfa_bound(Tape *t, ConKind k, AdNum lo, AdNum hi, AdNum u, AdNum *x) {
  switch (k) {
  case CON_LOWER: {
    double e = exp(u.v);
    *x = (AdNum){lo.v + e, tape_binary(t, u.n, e, lo.n, 1)};
    return u;
  }
  case CON_UPPER: {
    double e = exp(u.v);
    *x = (AdNum){hi.v - e, tape_binary(t, u.n, -e, hi.n, 1)};
    return u;
  }
  case CON_LOWER_UPPER: {
    double d = hi.v - lo.v, p = m_inv_logit(u.v), q = m_inv_logit(-u.v);
    double v = u.v > 0 ? hi.v - d * q : lo.v + d * p;
    int32_t par[3] = {u.n, lo.n, hi.n};
    double dx[3] = {d * p * q, q, p};
    *x = (AdNum){v, tape_push(t, 3, par, dx)};
    /* d/du [log p + log q] = q - p; d/dlo log d = -1/d */
    double dl[3] = {q - p, -1 / d, 1 / d};
    return (AdNum){log(d) + m_log_inv_logit(u.v) + m_log1m_inv_logit(u.v),
                   tape_push(t, 3, par, dl)};
  }
  default: *x = u; return ad_const(0);
  }
}

/* A structured kind on a tape: one block node of n + 1 ids (x's n scalars,
   then log|J|) whose rule is tf_constrain_vjp, so the interpreter's tape and
   the JIT run the same derivative.  The block keeps u's values and nodes. */
typedef struct TfBlock {
  ConKind con;
  int n, m;
  const double *u, *x;
  const int32_t *un;
  double *ubar;
} TfBlock;

static void tf_block_vjp(void *ctx, const double *gout, double *adj) {
  const TfBlock *b = ctx;
  for (int i = 0; i < b->m; i++) b->ubar[i] = 0;
  tf_constrain_vjp(b->con, b->n, b->u, b->x, gout, gout[b->n], b->ubar);
  for (int i = 0; i < b->m; i++)
    if (b->un[i]) adj[b->un[i]] += b->ubar[i];
}

static AdNum tfa_structured(Tape *t, ConKind con, int n, const AdNum *u, AdNum *x) {
  int m = tf_free_size(con, n);
  if (m < 0) return ad_const(NAN);
  size_t mm = (size_t)(m > 0 ? m : 1), nn = (size_t)(n > 0 ? n : 1);
  double *uv = tape_alloc_atomic(t, sizeof(double) * (2 * mm + nn));
  double *xv = uv + mm;
  int32_t *un = tape_alloc_atomic(t, sizeof(int32_t) * mm);
  bool live = false;
  for (int i = 0; i < m; i++) {
    uv[i] = u[i].v;
    un[i] = u[i].n;
    live = live || u[i].n;
  }
  double lj = tf_constrain(con, -INFINITY, INFINITY, n, uv, xv);
  if (!live) {
    for (int i = 0; i < n; i++) x[i] = ad_const(xv[i]);
    return ad_const(lj);
  }
  TfBlock *b = tape_alloc(t, sizeof(TfBlock));
  *b = (TfBlock){con, n, m, uv, xv, un, xv + nn};
  int32_t first = tape_block(t, (size_t)n + 1, tf_block_vjp, b);
  for (int i = 0; i < n; i++) x[i] = (AdNum){xv[i], first + i};
  return (AdNum){lj, first + n};
}

AdNum tf_constrain_ad(Tape *t, ConKind con, AdNum lo, AdNum hi, int n, const AdNum *u,
                      AdNum *x) {
  if (tf_structured(con)) return tfa_structured(t, con, n, u, x);
  ConKind k = tf_bound_kind(con, lo.v, hi.v);
  AdNum lj = ad_const(0);
  for (int i = 0; i < n; i++) lj = ad_add(t, lj, tfa_bound(t, k, lo, hi, u[i], &x[i]));
  return lj;
}
