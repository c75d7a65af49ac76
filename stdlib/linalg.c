/* linalg.c — Cholesky factorisation, triangular solves, value views and the
 * saddle-point log masses shared by the discrete and multivariate families. */
#include "linalg.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>

#include "mathfn.h"

/* ---- dense linear algebra ---------------------------------------------- */

bool la_is_symmetric(int n, const double *A, double tol) {
  for (int j = 0; j < n; j++)
    for (int i = j + 1; i < n; i++) {
      double a = A[j * n + i], b = A[i * n + j];
      if (!(fabs(a - b) <= tol)) return false; /* also rejects NaN */
    }
  return true;
}

/* Cholesky–Banachiewicz, row by row: each entry needs only earlier rows. */
bool la_cholesky(int n, const double *A, double *L) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < j; i++) L[j * n + i] = 0;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j <= i; j++) {
      double s = A[j * n + i];
      for (int k = 0; k < j; k++) s -= L[k * n + i] * L[k * n + j];
      if (i == j) {
        if (!(s > 0) || !isfinite(s)) return false;
        L[i * n + i] = sqrt(s);
      } else {
        L[j * n + i] = s / L[j * n + j];
      }
    }
  }
  return true;
}

void la_solve_lower(int n, const double *L, const double *b, double *x) {
  for (int i = 0; i < n; i++) {
    double s = b[i];
    for (int k = 0; k < i; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
}

double la_log_diag_sum(int n, const double *L) {
  double s = 0;
  for (int i = 0; i < n; i++) s += log(L[i * n + i]);
  return s;
}

/* ---- values ------------------------------------------------------------- */

const double *la_vec(Value v, int *n) {
  if (v.k == V_VEC || v.k == V_ROWVEC) {
    *n = v.t->rows * v.t->cols;
    return v.t->d;
  }
  if (v.k != V_ARR) return NULL;
  int m = v.a->n;
  double *d = gc_alloc_atomic(sizeof(double) * (size_t)(m > 0 ? m : 1));
  for (int i = 0; i < m; i++) {
    Value e = v.a->e[i];
    if (e.k != V_INT && e.k != V_REAL && e.k != V_BOOL) return NULL;
    d[i] = val_as_real(e);
  }
  *n = m;
  return d;
}

bool la_is_simplex(const double *x, int n, const char *name, char *msg, size_t msgsz) {
  double s = 0;
  for (int i = 0; i < n; i++) {
    if (!(x[i] >= 0)) {
      if (msg) snprintf(msg, msgsz, "%s[%d] = %g is %s", name, i + 1, x[i],
                        isnan(x[i]) ? "not a number" : "negative");
      return false;
    }
    s += x[i];
  }
  if (!(fabs(s - 1) <= 1e-8)) {
    if (msg) snprintf(msg, msgsz, "sums to %.10g", s);
    return false;
  }
  return true;
}

/* ---- multivariate normal ------------------------------------------------- */

const double *la_mvn_mu(const char *fam, Value p, int *K, char *err, size_t errsz) {
  const double *mu = la_vec(p, K);
  if (!mu) {
    snprintf(err, errsz, "%s: mu must be a vector, got %s", fam, val_kind_name((ValKind)p.k));
    return NULL;
  }
  for (int i = 0; i < *K; i++)
    if (!isfinite(mu[i])) {
      snprintf(err, errsz, "%s: mu[%d] must be finite, got %g", fam, i + 1, mu[i]);
      return NULL;
    }
  return mu;
}

/* One draw y of a multivariate normal of size K, as a vector; NULL and a
   message if it is not a vector of K. */
static const double *mvn_y(const char *fam, Value y, int K, char *err, size_t errsz) {
  int n;
  const double *yv = la_vec(y, &n);
  if (!yv) {
    snprintf(err, errsz, "%s: y must be a vector, got %s", fam, val_kind_name((ValKind)y.k));
    return NULL;
  }
  if (n != K) {
    snprintf(err, errsz, "%s: sizes do not match: mu has %d elements, y has %d", fam, K, n);
    return NULL;
  }
  return yv;
}

bool la_mvn_sum(const char *fam, const double *mu, int K, const double *L, Value y, double *acc,
                char *err, size_t errsz) {
  if (y.k == V_ARR && y.a->n > 0 && y.a->e[0].k != V_INT && y.a->e[0].k != V_REAL) {
    for (int i = 0; i < y.a->n; i++)
      if (!la_mvn_sum(fam, mu, K, L, y.a->e[i], acc, err, errsz)) return false;
    return true;
  }
  const double *yv = mvn_y(fam, y, K, err, errsz);
  if (!yv) return false;
  double zbuf[64];
  double *z = K <= 64 ? zbuf : gc_alloc_atomic(sizeof(double) * (size_t)K);
  for (int i = 0; i < K; i++) {
    if (isnan(yv[i])) {
      snprintf(err, errsz, "%s: y[%d] is not a number", fam, i + 1);
      return false;
    }
    z[i] = yv[i] - mu[i];
  }
  la_solve_lower(K, L, z, z);
  double q = 0;
  for (int i = 0; i < K; i++) q += z[i] * z[i];
  *acc += -K * PPL_LOG_SQRT_2PI - la_log_diag_sum(K, L) - 0.5 * q;
  return true;
}

void la_solve_lower_t(int n, const double *L, const double *b, double *x) {
  for (int i = n - 1; i >= 0; i--) {
    double s = b[i];
    for (int k = i + 1; k < n; k++) s -= L[i * n + k] * x[k];
    x[i] = s / L[i * n + i];
  }
}

typedef struct LaMvnGrad {
  double *dy, *dmu, *dSigma, *dL;
  size_t pos; /* next scalar of y in flatten order */
  int ndraws;
} LaMvnGrad;

static bool la_mvn_grad_rec(const char *fam, const double *mu, int K, const double *L, Value y,
                            double *acc, LaMvnGrad *g, char *err, size_t errsz) {
  if (y.k == V_ARR && y.a->n > 0 && y.a->e[0].k != V_INT && y.a->e[0].k != V_REAL) {
    for (int i = 0; i < y.a->n; i++)
      if (!la_mvn_grad_rec(fam, mu, K, L, y.a->e[i], acc, g, err, errsz)) return false;
    return true;
  }
  const double *yv = mvn_y(fam, y, K, err, errsz);
  if (!yv) return false;
  /* la_mvn_sum's value, operation for operation, and z = L^-1 (y - mu) kept */
  double buf[128];
  double *z = K <= 64 ? buf : gc_alloc_atomic(sizeof(double) * 2 * (size_t)K);
  double *w = z + K;
  for (int i = 0; i < K; i++) {
    if (isnan(yv[i])) {
      snprintf(err, errsz, "%s: y[%d] is not a number", fam, i + 1);
      return false;
    }
    z[i] = yv[i] - mu[i];
  }
  la_solve_lower(K, L, z, z);
  double q = 0;
  for (int i = 0; i < K; i++) q += z[i] * z[i];
  *acc += -K * PPL_LOG_SQRT_2PI - la_log_diag_sum(K, L) - 0.5 * q;
  la_solve_lower_t(K, L, z, w);
  for (int i = 0; i < K; i++) {
    if (g->dy) g->dy[g->pos + (size_t)i] -= w[i];
    if (g->dmu) g->dmu[i] += w[i];
  }
  if (g->dSigma)
    for (int j = 0; j < K; j++)
      for (int i = 0; i < K; i++) g->dSigma[j * K + i] += 0.5 * w[i] * w[j];
  if (g->dL)
    for (int j = 0; j < K; j++) {
      g->dL[j * K + j] -= 1 / L[j * K + j];
      for (int i = j; i < K; i++) g->dL[j * K + i] += w[i] * z[j];
    }
  g->pos += (size_t)K;
  g->ndraws++;
  return true;
}

void la_chol_inverse(int K, const double *restrict L, double *restrict S, double *restrict W) {
  /* W = L^-1, column by column (forward substitution on e_j, reading L by
     columns); column j is zero above row j */
  for (int j = 0; j < K; j++) {
    double *restrict x = W + (size_t)j * K;
    for (int i = 0; i < K; i++) x[i] = 0;
    x[j] = 1;
    for (int k = j; k < K; k++) {
      const double *restrict lk = L + (size_t)k * K;
      double xk = x[k] /= lk[k];
      for (int i = k + 1; i < K; i++) x[i] -= lk[i] * xk;
    }
  }
  /* S[i, j] = sum_{k >= max(i, j)} W[k, i] W[k, j] */
  for (int j = 0; j < K; j++) {
    const double *restrict wj = W + (size_t)j * K;
    for (int i = j; i < K; i++) {
      const double *restrict wi = W + (size_t)i * K;
      double s = 0;
      for (int k = i; k < K; k++) s += wi[k] * wj[k];
      S[(size_t)j * K + i] = S[(size_t)i * K + j] = s;
    }
  }
}

bool la_mvn_sum_grad(const char *fam, const double *mu, int K, const double *L, Value y,
                     double *acc, double *dy, double *dmu, double *dSigma, double *dL,
                     int *ndraws, char *err, size_t errsz) {
  LaMvnGrad g = {dy, dmu, dSigma, dL, 0, 0};
  if (!la_mvn_grad_rec(fam, mu, K, L, y, acc, &g, err, errsz)) return false;
  if (ndraws) *ndraws = g.ndraws;
  return true;
}

Value la_mvn_draw(Rng *r, const double *mu, int K, const double *L) {
  Value v = val_vec(K);
  double zbuf[64];
  double *z = K <= 64 ? zbuf : gc_alloc_atomic(sizeof(double) * (size_t)K);
  for (int i = 0; i < K; i++) z[i] = rng_normal(r);
  for (int i = 0; i < K; i++) {
    double s = mu[i];
    for (int k = 0; k <= i; k++) s += L[k * K + i] * z[k];
    v.t->d[i] = s;
  }
  return v;
}

/* ---- saddle-point log masses --------------------------------------------- */

double la_stirlerr(double n) {
  if (n <= 15) /* the cancellation here costs at most ~1e-14 absolute */
    return m_lgamma(n + 1) - (n + 0.5) * log(n) + n - PPL_LOG_SQRT_2PI;
  double z = 1 / (n * n);
  return (1.0 / 12 - z * (1.0 / 360 - z * (1.0 / 1260 - z * (1.0 / 1680 - z * (1.0 / 1188))))) / n;
}

double la_bd0(double x, double m) {
  if (fabs(x - m) < 0.1 * (x + m)) {
    /* x log(x/m) + m - x = (x-m) v + 2x sum_{j>=1} v^(2j+1)/(2j+1),
       v = (x-m)/(x+m): every term is small, nothing cancels */
    double v = (x - m) / (x + m), s = (x - m) * v, ej = 2 * x * v, v2 = v * v;
    for (int j = 1; j < 1000; j++) {
      ej *= v2;
      double s1 = s + ej / (2 * j + 1);
      if (s1 == s) return s1;
      s = s1;
    }
    return s;
  }
  return x * log(x / m) + m - x;
}

double la_binom_raw(double k, double m, double p, double q) {
  double n = k + m;
  double lc = la_stirlerr(n) - la_stirlerr(k) - la_stirlerr(m) - la_bd0(k, n * p) -
              la_bd0(m, n * q);
  return lc - 0.5 * (log(2 * M_PI) + log(k) + log(m) - log(n));
}

double la_pois_raw(double x, double lambda) {
  if (x < 0 || x != floor(x)) return -INFINITY;
  if (lambda == 0) return x == 0 ? 0 : -INFINITY;
  if (x == 0) return -lambda;
  if (lambda < 1) /* no large terms to cancel; avoids x/lambda overflowing */
    return x * log(lambda) - lambda - m_lgamma(x + 1);
  return -la_stirlerr(x) - la_bd0(x, lambda) - 0.5 * log(2 * M_PI * x);
}

/* log sum of masses from k0 in direction dir, relative to pmf(k0) = e^l0 */
static bool la_tail_sum(double l0, double k0, int dir, double (*ratio)(double, const double *),
                        const double *p, double kmin, double kmax, int maxterms, double *out) {
  double t = 1, s = 1, k = k0;
  for (int i = 0;; i++) {
    if (i == maxterms) return false;
    double k1 = k + dir;
    if (k1 < kmin || k1 > kmax) break;
    double t1 = t * (dir > 0 ? ratio(k, p) : 1 / ratio(k1, p));
    s += t1;
    if (!isfinite(s)) return false;
    if (t1 < t && t1 < 1e-17 * s) break;
    t = t1;
    k = k1;
  }
  *out = l0 + log(s);
  return true;
}

bool la_disc_ltail(double n, double ln, double ln1, bool upper,
                   double (*ratio)(double k, const double *p), const double *p, double kmin,
                   double kmax, int maxterms, double *out) {
  /* does the mass fall going down from n, going up from n+1? */
  bool down = n <= kmin || ratio(n - 1, p) >= 1;
  bool up = n + 1 >= kmax || ratio(n + 1, p) <= 1;
  bool first_up = upper ? up : !down; /* the asked-for tail itself when it can be summed */
  for (int pass = 0; pass < 2; pass++) {
    bool use_up = (pass == 0) == first_up;
    double l;
    if (!(use_up ? up : down)) continue;
    if (!la_tail_sum(use_up ? ln1 : ln, use_up ? n + 1 : n, use_up ? 1 : -1, ratio, p, kmin,
                     kmax, maxterms, &l))
      continue;
    *out = use_up == upper ? l : m_log1m_exp(l);
    return true;
  }
  return false;
}

/* The two ends use log1p to keep tiny p or q accurate. */
/* log C(N, n) for every N <= LA_SMALL_N, made once: a count's mass is
   evaluated per pixel or per row every gradient (a VAE's 6,400 binomial
   terms a step), and the product loop's divisions cost more than the rest of
   the mass.  The table is constant once made, so it is no state of a run. */
static double binom_lc[LA_SMALL_N + 1][LA_SMALL_N + 1];
static pthread_once_t binom_lc_once = PTHREAD_ONCE_INIT;

static void binom_lc_make(void) {
  for (int N = 0; N <= LA_SMALL_N; N++)
    for (int n = 0; n <= N; n++) {
      double k = n < N - n ? n : N - n, c = 1;
      for (double i = 0; i < k; i++) c = c * (N - i) / (i + 1);
      binom_lc[N][n] = log(c);
    }
}

double la_binom_small(double n, double N, double lp, double lq) {
  if (!(N >= 0 && N <= LA_SMALL_N && n >= 0 && n <= N && N == (int)N && n == (int)n))
    return NAN; /* the callers check the support first: a contract breach */
  pthread_once(&binom_lc_once, binom_lc_make);
  /* a count of 0 adds nothing, even where its log probability is -inf */
  return binom_lc[(int)N][(int)n] + (n > 0 ? n * lp : 0) + (n < N ? (N - n) * lq : 0);
}

double la_binom_lpmf(double n, double N, double p, double q) {
  if (n < 0 || n > N || n != floor(n)) return -INFINITY;
  if (p == 0) return n == 0 ? 0 : -INFINITY;
  if (q == 0) return n == N ? 0 : -INFINITY;
  if (N <= LA_SMALL_N) return la_binom_small(n, N, p < 0.5 ? log(p) : log1p(-q), q < 0.5 ? log(q) : log1p(-p));
  if (n == 0) return N * (p < 0.5 ? log1p(-p) : log(q));
  if (n == N) return N * (q < 0.5 ? log1p(-q) : log(p));
  return la_binom_raw(n, N - n, p, q);
}

static double la_binom_ratio(double k, const double *bp) {
  return (bp[0] - k) / (k + 1) * bp[1];
}

/* Direct sums first (at most 10^5 terms: about 40 standard deviations of a
   binomial with N p q = 10^6); beyond, P(X > n) = I_p(n+1, N-n). */
double la_binom_ltail(double n, double N, double p, double q, bool upper) {
  n = floor(n);
  if (n < 0) return upper ? 0 : -INFINITY;
  if (n >= N || p == 0) return upper ? -INFINITY : 0;
  if (q == 0) return upper ? 0 : -INFINITY;
  double bp[2] = {N, p / q}, out;
  if (la_disc_ltail(n, la_binom_lpmf(n, N, p, q), la_binom_lpmf(n + 1, N, p, q), upper,
                    la_binom_ratio, bp, 0, N, 100000, &out))
    return out;
  double li, lic;
  m_inc_beta_log(n + 1, N - n, p, q, &li, &lic);
  return upper ? li : lic;
}
