/* test_vi_flow_fit.c — the Real NVP family trained by the reparameterised
 * ELBO gradient with Adam (stdlib/optim.h) on two analytic 2-D targets whose
 * normalising constant is 1, so ELBO = -KL(q || p) and log Z = 0 exactly:
 *
 *   banana:  x1 ~ normal(0, 2), x2 ~ normal(0.5 (x1^2 - 4), 1)
 *            (Haario et al.'s twisted Gaussian, milder: mean 0, sd(x2) = 3)
 *   bimodal: 0.5 normal(x; (d, d), I) + 0.5 normal(x; (-d, -d), I), d = BIMODAL_D
 *
 * The same loop trains the flow with no coupling layer (exactly the
 * mean-field Gaussian, mu + exp(omega) eps) and with FLOW_LAYERS couplings;
 * the flow must beat mean-field in ELBO and in PSIS k-hat (inference/psis.h)
 * by margins larger than the seed-to-seed spread, and its draws must pass an
 * energy-distance two-sample test (permutation p-value) against exact draws.
 * This proves the family without an engine; engine advi's `--vi flow` runs
 * the same targets as programs (tests/inference/test_advi_flow.c).
 *
 * Margins, from seeds 1-12 (`test_vi_flow_fit SEED -v`): the flow's ELBO
 * gain is 0.42-0.56 on the banana (one fit of twelve stuck at -0.34: 0.21)
 * and 0.64-0.65 on the bimodal target: asserted > 0.15; the flow's ELBO is
 * above -0.06 in 10 of 12 banana fits and all bimodal ones: asserted > -0.2.
 * k-hat drops by 0.5-1.4 on the bimodal target (asserted > 0.3), but on the
 * banana it is 0.42-0.88 for the flow against 0.76-0.90 for mean-field, lower
 * in 10 of 12 seeds: the banana's tails (x2 quadratic in x1) are beyond the
 * relu networks' linear extrapolation, so the banana's k-hat is only
 * asserted in the engine's test, whose fits are tighter there.
 *
 * args: [seed] [-v]: another seed, and per-run figures on stderr, for
 * measuring the spread the margins come from.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../inference/psis.h"
#include "../../inference/vi_flow.h"
#include "../../stdlib/optim.h"
#include "../../stdlib/rng.h"
#include "energy_test.h"
#include "tap.h"

#define FLOW_LAYERS 6
#define FLOW_HIDDEN 32
#define ITERS 10000
#define GRAD_SAMPLES 8
#define EVAL_DRAWS 40000
#define TEST_DRAWS 500
#define PERMUTATIONS 300
#define BANANA_B 0.5
#define BIMODAL_D 1.75

static const double LOG_2PI = 1.8378770664093453;

typedef double (*LogP)(const double *x, double *grad);

static double banana(const double *x, double *g) {
  double m = BANANA_B * (x[0] * x[0] - 4), r = x[1] - m;
  /* d/dx1 of -x1^2/8 - r^2/2 with r = x2 - m(x1), dm/dx1 = 2 B x1 */
  g[0] = -x[0] / 4 + r * 2 * BANANA_B * x[0];
  g[1] = -r;
  return -x[0] * x[0] / 8 - log(2.0) - r * r / 2 - LOG_2PI;
}

static void banana_draw(Rng *r, double *x) {
  x[0] = 2 * rng_normal(r);
  x[1] = BANANA_B * (x[0] * x[0] - 4) + rng_normal(r);
}

static double bimodal(const double *x, double *g) {
  double a = 0, b = 0;
  for (int i = 0; i < 2; i++) {
    a += (x[i] - BIMODAL_D) * (x[i] - BIMODAL_D);
    b += (x[i] + BIMODAL_D) * (x[i] + BIMODAL_D);
  }
  a = -a / 2, b = -b / 2;
  double mx = fmax(a, b), wa = exp(a - mx), wb = exp(b - mx), pa = wa / (wa + wb);
  for (int i = 0; i < 2; i++) g[i] = -(pa * (x[i] - BIMODAL_D) + (1 - pa) * (x[i] + BIMODAL_D));
  return mx + log(wa + wb) + log(0.5) - LOG_2PI;
}

static void bimodal_draw(Rng *r, double *x) {
  double c = rng_uniform(r) < 0.5 ? BIMODAL_D : -BIMODAL_D;
  for (int i = 0; i < 2; i++) x[i] = c + rng_normal(r);
}

/* One draw of q: theta and log p(theta) - log q(theta). */
static double draw_q(ViFamily *f, LogP logp, Rng *r, double *eps, double *theta, double *g) {
  double lq = 0, ld;
  for (int i = 0; i < 2; i++) {
    eps[i] = rng_normal(r);
    lq += -0.5 * eps[i] * eps[i] - 0.5 * LOG_2PI;
  }
  f->forward(f, eps, theta, &ld);
  return logp(theta, g) - (lq - ld);
}

static void train(ViFamily *f, LogP logp, Rng *r) {
  OptimConfig c;
  optim_config_default(&c, OPTIM_ADAM);
  c.lr = 5e-3;
  c.sched = OPTIM_SCHED_COSINE;
  c.horizon = ITERS;
  c.lr_min = 1e-4;
  Optim *o = optim_new(&c, f->nparams);
  double *g = malloc(sizeof(double) * f->nparams);
  double eps[2], theta[2], gt[2];
  for (int it = 0; it < ITERS; it++) {
    memset(g, 0, sizeof(double) * f->nparams);
    for (int m = 0; m < GRAD_SAMPLES; m++) {
      draw_q(f, logp, r, eps, theta, gt);
      /* minimise -ELBO: the gradient of -(log p(T(eps)) + logdet) / M */
      gt[0] /= -GRAD_SAMPLES, gt[1] /= -GRAD_SAMPLES;
      f->backward(f, eps, gt, -1.0 / GRAD_SAMPLES, g);
    }
    optim_step(o, f->phi, g);
  }
  optim_free(o);
  free(g);
}

typedef struct {
  double elbo, elbo_se, khat;
} Fit;

static Fit evaluate(ViFamily *f, LogP logp, Rng *r) {
  double *lw = malloc(sizeof(double) * EVAL_DRAWS), eps[2], theta[2], g[2], s = 0, ss = 0;
  for (int i = 0; i < EVAL_DRAWS; i++) {
    lw[i] = draw_q(f, logp, r, eps, theta, g);
    s += lw[i];
  }
  double mean = s / EVAL_DRAWS;
  for (int i = 0; i < EVAL_DRAWS; i++) ss += (lw[i] - mean) * (lw[i] - mean);
  Fit fit = {mean, sqrt(ss / (EVAL_DRAWS - 1) / EVAL_DRAWS), psis_k(EVAL_DRAWS, lw)};
  free(lw);
  return fit;
}

static void run(const char *name, LogP logp, void (*exact)(Rng *, double *), uint64_t seed,
                double elbo_margin, double khat_margin, int verbose) {
  Rng r;
  rng_seed(&r, seed, 0);
  ViFamily *mf = vi_flow_new(2, 0, 1, &r), *fl = vi_flow_new(2, FLOW_LAYERS, FLOW_HIDDEN, &r);
  train(mf, logp, &r);
  train(fl, logp, &r);
  Fit a = evaluate(mf, logp, &r), b = evaluate(fl, logp, &r);
  double *q = malloc(sizeof(double) * 2 * TEST_DRAWS), *x = malloc(sizeof(double) * 2 * TEST_DRAWS);
  double eps[2], g[2], stat;
  for (int i = 0; i < TEST_DRAWS; i++) {
    draw_q(fl, logp, &r, eps, q + 2 * i, g);
    exact(&r, x + 2 * i);
  }
  double p = energy_pvalue(TEST_DRAWS, q, x, PERMUTATIONS, &r, &stat);
  for (int i = 0; i < TEST_DRAWS; i++) draw_q(mf, logp, &r, eps, q + 2 * i, g);
  double statmf, pmf = energy_pvalue(TEST_DRAWS, q, x, PERMUTATIONS, &r, &statmf);
  if (verbose)
    fprintf(stderr, "%s seed %llu: meanfield elbo %.4f (se %.4f) khat %.3f energy %.4f p %.3f | flow elbo %.4f (se %.4f) khat %.3f energy %.4f p %.3f\n",
            name, (unsigned long long)seed, a.elbo, a.elbo_se, a.khat, statmf, pmf, b.elbo, b.elbo_se,
            b.khat, stat, p);
  tap_ok(b.elbo > a.elbo + elbo_margin, "%s: flow ELBO %.4f beats mean-field's %.4f by more than %.2f",
         name, b.elbo, a.elbo, elbo_margin);
  if (khat_margin >= 0)
    tap_ok(b.khat < a.khat - khat_margin,
           "%s: flow k-hat %.3f below mean-field's %.3f by more than %.2f", name, b.khat, a.khat,
           khat_margin);
  tap_ok(b.elbo > -0.2 && b.elbo <= 3 * b.elbo_se, "%s: flow ELBO %.4f is within 0.2 of log Z = 0",
         name, b.elbo);
  tap_ok(p > 0.01, "%s: flow draws vs exact draws, energy distance %.4f, permutation p = %.3f", name, stat, p);
  tap_ok(pmf < 0.01, "%s: the test has power: mean-field draws rejected (energy %.4f, p = %.3f)", name,
         statmf, pmf);
  free(q);
  free(x);
}

int main(int argc, char **argv) {
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 2026;
  int verbose = argc > 2;
  run("banana", banana, banana_draw, seed, 0.15, -1, verbose);
  run("bimodal", bimodal, bimodal_draw, seed, 0.15, 0.3, verbose);
  return tap_done();
}
