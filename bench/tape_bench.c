/* tape_bench.c — the gradient of a two-layer MLP's loss on the AD tape,
 * recorded with block nodes (stdlib/nn.h's nn_mlp_forward on stdlib/tensor.h:
 * one node per tensor operation, OpenBLAS in the products) against the same
 * network recorded with scalar tape_push nodes the way the interpreter recorded matrix products before
 * block nodes (one node per output with its row's partials).
 *
 * The network: 64 inputs -> 128 hidden (tanh) -> 10 outputs, softmax
 * cross-entropy averaged over a batch of 128 x 64 (data from a fixed seed).
 * Both recordings give their parameters the same ids, so the gradients are
 * compared element by element before anything is timed.  Prints gradients per
 * second for each, their ratio, and what each recording holds.
 *
 *   tape_bench [seconds-per-measurement]
 *
 * Rates are the best of TB_ROUNDS alternating rounds of thread CPU time, so
 * other work on a shared machine slows neither side more than the other.
 * OpenBLAS runs on one thread (tensor_blas_init) unless OPENBLAS_NUM_THREADS
 * is set.
 *
 * Built as a program, not a test: meson compile -C BUILD bench/tape_bench.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stdlib/ad.h"
#include "stdlib/nn.h"
#include "stdlib/tensor.h"
#include "core/value.h"

enum { TB_B = 128, TB_IN = 64, TB_H = 128, TB_OUT = 10, TB_ROUNDS = 5 };
#define TB_NPAR (TB_IN * TB_H + TB_H + TB_H * TB_OUT + TB_OUT)

typedef struct {
  double X[TB_B * TB_IN];
  int y[TB_B];
  double p[TB_NPAR];
  NnMlp m;
} Net;

static uint64_t tb_state = 0x7a9eb3c4d5e6f708ull;
static double tb_unif(void) {
  tb_state = tb_state * 6364136223846793005ull + 1442695040888963407ull;
  return ((tb_state >> 11) + 0.5) * 0x1.0p-53;
}
static double tb_normal(void) { return sqrt(-2 * log(tb_unif())) * cos(2 * M_PI * tb_unif()); }

static void net_init(Net *N) {
  char err[128];
  nn_mlp_make(&N->m, TB_IN, 1, (int[]){TB_H}, TB_OUT, TENSOR_TANH, TENSOR_IDENTITY, err, sizeof err);
  for (int i = 0; i < TB_B * TB_IN; i++) N->X[i] = tb_normal();
  for (int b = 0; b < TB_B; b++) N->y[b] = (int)(tb_unif() * TB_OUT);
  double s1 = 1 / sqrt(TB_IN), s2 = 1 / sqrt(TB_H);
  for (int i = 0; i < TB_NPAR; i++) N->p[i] = (i < TB_IN * TB_H + TB_H ? s1 : s2) * tb_normal();
}

/* parameter offsets: W1 [IN, H], b1 [H], W2 [H, OUT], b2 [OUT] */
#define OFF_B1 (TB_IN * TB_H)
#define OFF_W2 (OFF_B1 + TB_H)
#define OFF_B2 (OFF_W2 + TB_H * TB_OUT)

/* ---- block nodes ---- */

static AdNum loss_block(Tape *t, const Net *N) {
  Tensor X = tensor_const(2, (int[]){TB_B, TB_IN}, N->X);
  Tensor p = tensor_var(t, 1, (int[]){TB_NPAR}, N->p); /* nn.h's layout: W1, b1, W2, b2 */
  Tensor z = nn_mlp_forward(t, &N->m, p, X);
  return ad_scale(t, tensor_mean(t, tensor_pick(t, tensor_log_softmax(t, z), N->y)), -1);
}

/* ---- scalar nodes ---- */

typedef struct {
  int32_t par[2 * TB_H + 1];
  double dv[2 * TB_H + 1];
  double h[TB_B * TB_H];
  int32_t hn[TB_B * TB_H];
  double z[TB_OUT];
  int32_t zn[TB_OUT];
  int32_t ln[TB_B];
  double lv[TB_B];
} Scratch;

static AdNum loss_scalar(Tape *t, const Net *N, Scratch *S) {
  const double *p = N->p;
  for (int i = 0; i < TB_NPAR; i++) tape_var(t, p[i]); /* ids 1..NPAR, as the blocks' */
  for (int b = 0; b < TB_B; b++)
    for (int j = 0; j < TB_H; j++) { /* X constant: one partial per weight, and the bias */
      double s = p[OFF_B1 + j];
      for (int k = 0; k < TB_IN; k++) {
        double x = N->X[b * TB_IN + k];
        s += x * p[k * TB_H + j];
        S->par[k] = 1 + k * TB_H + j;
        S->dv[k] = x;
      }
      S->par[TB_IN] = 1 + OFF_B1 + j;
      S->dv[TB_IN] = 1;
      int32_t pre = tape_push(t, TB_IN + 1, S->par, S->dv);
      double th = tanh(s);
      S->h[b * TB_H + j] = th;
      S->hn[b * TB_H + j] = tape_unary(t, pre, 1 - th * th);
    }
  for (int b = 0; b < TB_B; b++) {
    double mx = -INFINITY;
    for (int c = 0; c < TB_OUT; c++) { /* both factors carry nodes: 2K partials */
      double s = p[OFF_B2 + c];
      int np = 0;
      for (int j = 0; j < TB_H; j++) {
        double hv = S->h[b * TB_H + j], w = p[OFF_W2 + j * TB_OUT + c];
        s += hv * w;
        S->par[np] = S->hn[b * TB_H + j];
        S->dv[np++] = w;
        S->par[np] = 1 + OFF_W2 + j * TB_OUT + c;
        S->dv[np++] = hv;
      }
      S->par[np] = 1 + OFF_B2 + c;
      S->dv[np++] = 1;
      S->z[c] = s;
      S->zn[c] = tape_push(t, np, S->par, S->dv);
      mx = s > mx ? s : mx;
    }
    double se = 0;
    for (int c = 0; c < TB_OUT; c++) se += exp(S->z[c] - mx);
    double lse = mx + log(se);
    for (int c = 0; c < TB_OUT; c++) S->dv[c] = exp(S->z[c] - lse);
    int32_t ln = tape_push(t, TB_OUT, S->zn, S->dv); /* log_sum_exp */
    int y = N->y[b];
    S->lv[b] = lse - S->z[y];
    S->ln[b] = tape_binary(t, ln, 1, S->zn[y], -1);
  }
  double m = 0;
  for (int b = 0; b < TB_B; b++) {
    m += S->lv[b];
    S->dv[b] = 1.0 / TB_B;
  }
  return (AdNum){m / TB_B, tape_push(t, TB_B, S->ln, S->dv)};
}

/* ---- timing ---- */

static double tb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
  Tape *t;
  double *adj;
  size_t adjcap;
} Grad;

/* One gradient into g; returns the loss. */
static double gradient(Grad *G, const Net *N, Scratch *S, bool block, double *g) {
  tape_reset(G->t);
  AdNum l = block ? loss_block(G->t, N) : loss_scalar(G->t, N, S);
  size_t n = tape_size(G->t) + 1;
  if (n > G->adjcap) {
    free(G->adj);
    G->adjcap = n;
    G->adj = malloc(sizeof(double) * n);
  }
  tape_backward(G->t, l.n, G->adj);
  if (g) memcpy(g, G->adj + 1, sizeof(double) * TB_NPAR);
  return l.v;
}

static double rate(Grad *G, const Net *N, Scratch *S, bool block, double secs) {
  long n = 0;
  double t0 = tb_now(), t;
  do {
    gradient(G, N, S, block, NULL);
    n++;
  } while ((t = tb_now() - t0) < secs);
  return n / t;
}

int main(int argc, char **argv) {
  gc_init();
  double secs = argc > 1 ? atof(argv[1]) : 2;
  static Net N;
  static Scratch S;
  net_init(&N);
  Grad gb = {tape_new(), NULL, 0}, gs = {tape_new(), NULL, 0};
  double *g1 = malloc(sizeof(double) * TB_NPAR), *g2 = malloc(sizeof(double) * TB_NPAR);
  double l1 = gradient(&gb, &N, &S, true, g1), l2 = gradient(&gs, &N, &S, false, g2);
  if (tape_error(gb.t)) {
    fprintf(stderr, "tape_bench: %s\n", tape_error(gb.t));
    return 1;
  }
  double worst = 0;
  for (int i = 0; i < TB_NPAR; i++) worst = fmax(worst, fabs(g1[i] - g2[i]) / fmax(1e-8, fabs(g2[i])));
  printf("MLP %d -> %d (tanh) -> %d, softmax cross-entropy, batch %d x %d, %d parameters\n",
         TB_IN, TB_H, TB_OUT, TB_B, TB_IN, TB_NPAR);
  printf("  loss %.12f (scalar tape %.12f), max relative gradient difference %.2g\n", l1, l2, worst);
  size_t ids_b = tape_size(gb.t), ids_s = tape_size(gs.t);
  printf("  block tape:  %zu ids, %.1f MB held\n", ids_b, tape_bytes(gb.t) / 1e6);
  printf("  scalar tape: %zu nodes, %.1f MB held\n", ids_s, tape_bytes(gs.t) / 1e6);
  double rb = 0, rs = 0;
  for (int r = 0; r < TB_ROUNDS; r++) {
    rb = fmax(rb, rate(&gb, &N, &S, true, secs / TB_ROUNDS));
    rs = fmax(rs, rate(&gs, &N, &S, false, secs / TB_ROUNDS));
  }
  printf("  gradients/s (thread CPU time, best of %d): block %.4g, scalar %.4g, ratio %.1fx\n",
         TB_ROUNDS, rb, rs, rb / rs);
  free(g1);
  free(g2);
  free(gb.adj);
  free(gs.adj);
  return worst < 1e-9 ? 0 : 1;
}
