/* test_enum_density.c — the log density nuts sees for a naturally written
 * program with discrete latents (summed out by enumeration) against the same
 * model marginalised by hand, through ppl.h as a host would call it.
 *
 * Each natural program (tests/enum) has a twin that declares the same
 * continuous latents in the same order and sums the discrete ones out itself,
 * so both have one unconstrained layout (the contract of ppl_log_density on
 * enumerated programs).  At random points of that space the two log densities
 * and gradients must agree to 1e-12 (relative to max(1, |value|) for the log
 * density and to max(1, max |gradient|) for each partial), under the
 * interpreter and under the JIT (ppl_config.no_jit), and the two backends must
 * agree with each other.
 *
 * The HMMs' gradients are held to 1e-11: the forward algorithm is a recurrence
 * over T = 100 steps, and the twin's loop and the transform's sum the same
 * terms in another order, so their rounding differs by more than a single sum's.
 * At sigma = e^-2 (a corner of the points) d lp / d log sigma is 2e4 with
 * terms of 1e3 to 1e4 per step; the two differ there by 4.4e-12 of it (the log
 * densities by 8e-16).
 *
 *   test_enum_density TESTS_ENUM_DIR
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppl.h"
#include "tap.h"

#define TOL 1e-12
#define POINTS 8
#define MAXDIM 64

typedef struct {
  const char *natural, *hand, *data;
  double gtol; /* the gradient's tolerance (TOL unless said) */
} Pair;

static const Pair pairs[] = {
    {"changepoint", "changepoint_hand", "coal", 0},
    {"changepoint_late", "changepoint_hand", "coal", 0},
    {"mix", "mix_hand", "mix3", 0},
    {"mix", "mix_hand", "mix4", 0},
    {"mix", "mix_hand", "mix5", 0},
    {"hmm_loop", "hmm_hand", "hmm", 1e-11},
    {"hmm_array", "hmm_hand", "hmm", 1e-11},
    {"nested", "nested_hand", "nested", 0},
    {"population", "population_hand", "population", 0},
    /* a factorial HMM: two chains in one loop, over the product state */
    {"fhmm", "fhmm_hand", "fhmm", 1e-11},
};

static const char *dir;

/* splitmix64: the test's own generator, so the points do not depend on ppl's */
static uint64_t rng_state = 20261207;
static double uniform(double lo, double hi) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return lo + (hi - lo) * ((double)(z >> 11) / 9007199254740992.0);
}

static ppl_model *load(ppl_context *ctx, const char *prog, const char *data) {
  char path[1024], dpath[1024];
  snprintf(path, sizeof path, "%s/%s.ppl", dir, prog);
  snprintf(dpath, sizeof dpath, "%s/%s.data.json", dir, data);
  ppl_model *m = NULL;
  if (ppl_compile_file(ctx, path, &m) != PPL_OK || ppl_set_data_file(m, dpath) != PPL_OK) {
    tap_diag("%s with %s: %s", prog, data, ppl_errmsg(ctx));
    if (m) ppl_model_free(m);
    return NULL;
  }
  return m;
}

static double scale_of(const double *g, size_t n) {
  double s = 1;
  for (size_t i = 0; i < n; i++) s = fmax(s, fabs(g[i]));
  return s;
}

/* The log density and gradient of the natural program at theta, kept per
   backend so the two backends can be compared too. */
typedef struct {
  double lp, grad[MAXDIM];
} Eval;

static int check_pair(const Pair *p, int no_jit, Eval evals[POINTS], double thetas[POINTS][MAXDIM]) {
  const char *be = no_jit ? "interpreter" : "jit";
  int done = 0;
  ppl_config cfg;
  ppl_config_default(&cfg);
  cfg.no_jit = no_jit;
  ppl_context *ctx = ppl_context_new(&cfg);
  ppl_model *nat = load(ctx, p->natural, p->data);
  ppl_model *hand = nat ? load(ctx, p->hand, p->data) : NULL;
  if (!tap_ok(nat && hand, "%s/%s (%s): both compile with the data", p->natural, p->data, be)) goto out;
  size_t n_nat = 0, n_hand = 0;
  ppl_status st = ppl_num_unconstrained(nat, &n_nat);
  if (!tap_ok(st == PPL_OK, "%s/%s (%s): unconstrained size (%s)", p->natural, p->data, be,
              st == PPL_OK ? "ok" : ppl_errmsg(ctx)))
    goto out;
  ppl_num_unconstrained(hand, &n_hand);
  if (!tap_ok(n_nat == n_hand && n_nat <= MAXDIM, "%s/%s (%s): %zu unconstrained, twin %zu",
              p->natural, p->data, be, n_nat, n_hand))
    goto out;
  double worst_lp = 0, worst_g = 0;
  int bad = 0;
  for (int k = 0; k < POINTS; k++) {
    double *theta = thetas[k];
    double ga[MAXDIM], gb[MAXDIM], lpa = NAN, lpb = NAN, lp_only = NAN;
    if (ppl_log_density_gradient(nat, theta, n_nat, &lpa, ga) != PPL_OK ||
        ppl_log_density(nat, theta, n_nat, &lp_only) != PPL_OK ||
        ppl_log_density_gradient(hand, theta, n_nat, &lpb, gb) != PPL_OK) {
      tap_diag("point %d: %s", k, ppl_errmsg(ctx));
      bad++;
      continue;
    }
    double e = fabs(lpa - lpb) / fmax(1, fabs(lpb));
    if (!(e <= TOL) || !(fabs(lp_only - lpa) <= TOL * fmax(1, fabs(lpa)))) {
      tap_diag("point %d: lp %.17g, twin %.17g, without gradient %.17g", k, lpa, lpb, lp_only);
      bad++;
    }
    worst_lp = fmax(worst_lp, e);
    double s = scale_of(gb, n_nat);
    for (size_t i = 0; i < n_nat; i++) {
      double eg = fabs(ga[i] - gb[i]) / s;
      worst_g = fmax(worst_g, eg);
      if (!(eg <= (p->gtol ? p->gtol : TOL))) {
        tap_diag("point %d: d/dtheta[%zu] %.17g, twin %.17g", k, i, ga[i], gb[i]);
        bad++;
      }
    }
    evals[k].lp = lpa;
    memcpy(evals[k].grad, ga, n_nat * sizeof *ga);
  }
  done = bad == 0;
  tap_ok(bad == 0, "%s/%s (%s): log density and gradient equal the twin's at %d points "
         "(largest relative difference %.2g, gradient %.2g; tolerance %g, gradient %g)", p->natural,
         p->data, be, POINTS, worst_lp, worst_g, TOL, p->gtol ? p->gtol : TOL);
out:
  if (hand) ppl_model_free(hand);
  if (nat) ppl_model_free(nat);
  ppl_context_free(ctx);
  return done;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_enum_density TESTS_ENUM_DIR\n");
    return 2;
  }
  dir = argv[1];
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    const Pair *p = &pairs[i];
    /* the points: uniform(-2, 2) per coordinate, as a run's initial values */
    static double thetas[POINTS][MAXDIM];
    for (int k = 0; k < POINTS; k++)
      for (int j = 0; j < MAXDIM; j++) thetas[k][j] = uniform(-2, 2);
    static Eval ev[2][POINTS];
    memset(ev, 0, sizeof ev);
    int both = check_pair(p, 1, ev[0], thetas);
    both &= check_pair(p, 0, ev[1], thetas);
    double worst = 0;
    for (int k = 0; k < POINTS; k++) {
      worst = fmax(worst, fabs(ev[0][k].lp - ev[1][k].lp) / fmax(1, fabs(ev[0][k].lp)));
      double s = scale_of(ev[0][k].grad, MAXDIM);
      for (int j = 0; j < MAXDIM; j++)
        worst = fmax(worst, fabs(ev[0][k].grad[j] - ev[1][k].grad[j]) / s);
    }
    tap_ok(both && worst <= TOL, "%s/%s: interpreter and jit agree (largest relative difference %.2g)",
           p->natural, p->data, worst);
  }
  return tap_done();
}
