/* builtins_hmm.c — hmm_log_marginal: the forward algorithm of a hidden Markov
 * model as one builtin, value and derivative (what Stan's hmm_marginal is,
 * with every argument on the log scale).
 *
 *   hmm_log_marginal(matrix log_omega, matrix log_Gamma, vector log_rho)
 *
 * log_omega is K x T (column t: log p(data at step t | state k)), log_Gamma
 * K x K (row j: log p(next state k | state j)), log_rho K (the first state's
 * log probabilities); the result is log sum over all K^T paths of their joint
 * density.  The enumeration of a chain (ir/enum.c) gathers a step's emission
 * scores into a column and calls this once per chain, so a gradient costs one
 * tape node for the whole chain instead of K x K nodes a step.
 *
 * The recursion runs in probability space with a scale per step (one exp per
 * state a step, not one per pair): exp(log_Gamma - its maximum) once, each
 * column shifted by its maximum, alpha renormalised at every step and the
 * logs of the scales summed.  The derivative is the posterior: d/d log_omega
 * [k, t] = P(z_t = k | data), d/d log_rho = P(z_1 | data), d/d log_Gamma[j,
 * k] = sum over t of P(z_{t-1} = j, z_t = k | data), from the scaled
 * backward pass; one node whose parents are the inputs' nodes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtins_impl.h"

/* The forward pass's state, kept for the backward one. */
typedef struct HmmFw {
  int K, T;
  double *G;  /* K x K column-major: exp(log_Gamma - gm) */
  double *E;  /* K x T: exp(log_omega[, t] - its column maximum) (E[, 1] includes rho) */
  double *A;  /* K x T: alpha normalised to sum 1 per column */
  double *S;  /* T: per step, the sum alpha had before normalising */
  double lp;  /* the log marginal */
} HmmFw;

static void hmm_free(HmmFw *f) {
  free(f->G);
  free(f->E);
  free(f->A);
  free(f->S);
}

static double col_max(const double *x, int n) {
  double m = -INFINITY;
  for (int i = 0; i < n; i++)
    if (x[i] > m) m = x[i];
  return m;
}

/* The forward pass; false only when memory runs out. */
static bool hmm_forward(HmmFw *f, const ValTen *lo, const ValTen *lg, const double *lr) {
  int K = f->K, T = f->T;
  size_t kk = (size_t)K * (size_t)K, kt = (size_t)K * (size_t)(T ? T : 1);
  f->G = malloc(sizeof(double) * kk);
  f->E = malloc(sizeof(double) * kt);
  f->A = malloc(sizeof(double) * kt);
  f->S = malloc(sizeof(double) * (size_t)(T ? T : 1));
  if (!f->G || !f->E || !f->A || !f->S) return false;
  f->lp = 0;
  if (T == 0) return true;
  double gm = col_max(lg->d, (int)kk);
  for (size_t e = 0; e < kk; e++) f->G[e] = isfinite(gm) ? exp(lg->d[e] - gm) : 0;
  double lp = 0;
  for (int t = 0; t < T; t++) {
    const double *l = lo->d + (size_t)t * K;
    double *E = f->E + (size_t)t * K, *A = f->A + (size_t)t * K, c;
    if (t == 0) {
      double *u = E; /* log_rho + the first column, then its exp */
      for (int k = 0; k < K; k++) u[k] = lr[k] + l[k];
      c = col_max(u, K);
      if (c == -INFINITY) return f->lp = -INFINITY, true; /* no state possible */
      for (int k = 0; k < K; k++) E[k] = exp(u[k] - c);
      memcpy(A, E, sizeof(double) * (size_t)K);
    } else {
      c = col_max(l, K);
      if (c == -INFINITY) return f->lp = -INFINITY, true;
      const double *P = A - K;
      for (int k = 0; k < K; k++) {
        E[k] = exp(l[k] - c);
        const double *g = f->G + (size_t)k * K; /* column k: from every j to k */
        double s = 0;
        for (int j = 0; j < K; j++) s += P[j] * g[j];
        A[k] = E[k] * s;
      }
      c += gm;
    }
    double s = 0;
    for (int k = 0; k < K; k++) s += A[k];
    f->S[t] = s;
    lp += c + log(s);
    if (!(s > 0) || !isfinite(c)) { /* no path has positive density (or NaN) */
      f->lp = isnan(s) || isnan(c) ? NAN : -INFINITY;
      return true;
    }
    for (int k = 0; k < K; k++) A[k] /= s;
  }
  f->lp = lp;
  return true;
}

static bool hmm_args(const Builtin *b, const Value *args, ValTen **lo, ValTen **lg, ValTen **lr,
                     char *err, size_t errsz) {
  if (!bi_ten(b, args[0], BI_K(V_MAT), lo, err, errsz) ||
      !bi_ten(b, args[1], BI_K(V_MAT), lg, err, errsz) ||
      !bi_ten(b, args[2], BI_K(V_VEC), lr, err, errsz))
    return false;
  int K = (*lo)->rows;
  if ((*lg)->rows != K || (*lg)->cols != K)
    return bi_efail(b, err, errsz, "log_Gamma is %d x %d, log_omega has %d rows (states)",
                    (*lg)->rows, (*lg)->cols, K);
  if ((*lr)->rows * (*lr)->cols != K)
    return bi_efail(b, err, errsz, "log_rho has %d elements, log_omega has %d rows (states)",
                    (*lr)->rows * (*lr)->cols, K);
  if (K == 0) return bi_efail(b, err, errsz, "no states (log_omega has 0 rows)");
  return true;
}

static bool eval_hmm(BI_EVAL_ARGS) {
  (void)ctx;
  (void)nargs;
  ValTen *lo, *lg, *lr;
  if (!hmm_args(b, args, &lo, &lg, &lr, err, errsz)) return false;
  HmmFw f = {lo->rows, lo->cols, NULL, NULL, NULL, NULL, 0};
  bool ok = hmm_forward(&f, lo, lg, lr->d);
  hmm_free(&f);
  if (!ok) return bi_efail(b, err, errsz, "out of memory");
  *out = val_real(f.lp);
  return true;
}

bool bi_ad_hmm(Tape *T, const Builtin *b, const Value *args, Value *out, char *err,
               size_t errsz) {
  ValTen *lo, *lg, *lr;
  if (!hmm_args(b, args, &lo, &lg, &lr, err, errsz)) return false;
  int K = lo->rows, n = lo->cols;
  HmmFw f = {K, n, NULL, NULL, NULL, NULL, 0};
  size_t kk = (size_t)K * (size_t)K, kt = (size_t)K * (size_t)n, np = kt + kk + (size_t)K;
  int32_t *par = malloc(sizeof(int32_t) * np);
  double *d = calloc(np, sizeof(double));
  double *beta = malloc(sizeof(double) * (size_t)K * 2);
  bool ok = par && d && beta && hmm_forward(&f, lo, lg, lr->d);
  if (!ok) {
    free(par), free(d), free(beta), hmm_free(&f);
    return bi_efail(b, err, errsz, "out of memory");
  }
  *out = val_real(f.lp);
  if (n > 0 && isfinite(f.lp)) {
    /* partials: [0, kt) log_omega, [kt, kt + kk) log_Gamma, then log_rho */
    double *dO = d, *dG = d + kt, *dR = d + kt + kk, *bt = beta, *bp = beta + K;
    for (int k = 0; k < K; k++) bt[k] = 1;
    for (int t = n - 1; t >= 0; t--) {
      const double *A = f.A + (size_t)t * K;
      for (int k = 0; k < K; k++) dO[(size_t)t * K + k] = A[k] * bt[k];
      if (t == 0) break;
      /* w[k] = E_t[k] beta_t[k] / S_t; xi[j, k] = alpha_{t-1}[j] G[j, k] w[k];
         beta_{t-1}[j] = sum_k G[j, k] w[k] */
      const double *E = f.E + (size_t)t * K, *P = A - K;
      double *w = bp; /* reused: w first, then the new beta below */
      for (int k = 0; k < K; k++) w[k] = E[k] * bt[k] / f.S[t];
      for (int k = 0; k < K; k++) {
        const double *g = f.G + (size_t)k * K;
        double *dg = dG + (size_t)k * K;
        for (int j = 0; j < K; j++) dg[j] += P[j] * g[j] * w[k];
      }
      for (int j = 0; j < K; j++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += f.G[(size_t)k * K + j] * w[k];
        bt[j] = s; /* w is read whole above before bt is overwritten */
      }
    }
    memcpy(dR, dO, sizeof(double) * (size_t)K);
    int m = 0;
    for (size_t e = 0; e < kt; e++)
      if (lo->ad && lo->ad[e]) par[m] = lo->ad[e], d[m++] = dO[e];
    for (size_t e = 0; e < kk; e++)
      if (lg->ad && lg->ad[e]) par[m] = lg->ad[e], d[m++] = dG[e];
    for (int k = 0; k < K; k++)
      if (lr->ad && lr->ad[k]) par[m] = lr->ad[k], d[m++] = dR[k];
    out->ad = tape_push(T, m, par, d);
  }
  free(par), free(d), free(beta), hmm_free(&f);
  return true;
}

const Builtin bi_hmm_table[] = {
    BI_SIG("hmm_log_marginal", "(matrix,matrix,vector)real", eval_hmm, 0),
    {NULL, NULL, NULL, NULL, false},
};
