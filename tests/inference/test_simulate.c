/* test_simulate.c — the prior-predictive simulator (inference/simulate.c):
 * draws of (latents, data) from the program itself, checked against the exact
 * moments of a conjugate model, and the log joint of each draw against the
 * closed form.
 *
 * Model: mu ~ normal(1, 2); y[n] ~ normal(mu, 0.5), n = 1..3.  Exactly:
 * E y[n] = 1, Var y[n] = 4 + 0.25 = 4.25, Cov(y[1], y[2]) = 4, Cov(mu, y[n]) = 4.
 */
#include "inference/simulate.h"
#include "test_engines_util.h"

static const char *SRC =
    "data { int N; real y[N]; real<lower=0> sigma; }\n"
    "model {\n"
    "  real mu ~ normal(1, 2);\n"
    "  for (n in 1:N)\n"
    "    y[n] ~ normal(mu, sigma);\n"
    "}\n"
    "generated { real ybar = mean(y); }\n";

static double lnorm(double x, double m, double s) {
  double z = (x - m) / s;
  return -0.5 * z * z - log(s) - 0.91893853320467274178;
}

int main(void) {
  gc_init();
  TData td;
  tdata_init(&td);
  tdata_add(&td, "N", val_int(3));
  tdata_add(&td, "sigma", val_real(0.5));
  Diag d;
  diag_init(&d);
  Ast *a = parse_string(SRC, strlen(SRC), "test.ppl", &d);
  CheckedProgram *cp = a ? check_program(a, "test.ppl", 0, NULL, &d) : NULL;
  IrProgram *p = cp ? ir_lower(cp, &d) : NULL;
  Interp *in = p ? interp_new(p, NULL) : NULL;
  const char *names[] = {"y"};
  bool ok = in && interp_load_data_sim(in, &td.src, 1, names, &d);
  tap_ok(ok, "loads with y simulated, absent from the data (%s)", d.msg);
  if (!ok) return tap_done();

  enum { M = 20000 };
  Rng rng;
  rng_seed(&rng, 2024, 0);
  double s1 = 0, s11 = 0, s12 = 0, s2 = 0, smu = 0, smy = 0, maxerr = 0, maxbar = 0;
  int good = 0;
  for (int m = 0; m < M; m++) {
    SimDraw sd;
    if (!sim_prior_predictive(in, &rng, 0, &sd, &d)) break;
    const TraceChoice *c = trace_find(sd.trace, "mu");
    if (!c || sd.ndata != 1 || strcmp(sd.names[0], "y") != 0 || sd.data[0].k != V_ARR ||
        sd.data[0].a->n != 3)
      break;
    double mu = val_as_real(c->val);
    double y1 = val_as_real(sd.data[0].a->e[0]), y2 = val_as_real(sd.data[0].a->e[1]);
    double y3 = val_as_real(sd.data[0].a->e[2]);
    double lj = lnorm(mu, 1, 2) + lnorm(y1, mu, 0.5) + lnorm(y2, mu, 0.5) + lnorm(y3, mu, 0.5);
    maxerr = fmax(maxerr, fabs(sd.logjoint - lj));
    double ybar = val_as_real(sd.outputs[toutput(in, "ybar")]);
    maxbar = fmax(maxbar, fabs(ybar - (y1 + y2 + y3) / 3));
    s1 += y1;
    s2 += y2;
    s11 += y1 * y1;
    s12 += y1 * y2;
    smu += mu;
    smy += mu * y1;
    good++;
  }
  tap_ok(good == M, "%d draws (%s)", good, d.msg);
  tap_ok(maxerr < 1e-9, "each draw's log joint is log p(mu) + sum log p(y[n] | mu) (max err %g)",
         maxerr);
  tap_ok(maxbar < 1e-12, "the generated block sees the simulated y (max err %g)", maxbar);
  double m1 = s1 / M, m2 = s2 / M, v1 = s11 / M - m1 * m1, c12 = s12 / M - m1 * m2;
  double cmy = smy / M - (smu / M) * m1;
  /* 4 standard errors: mean sqrt(4.25/M); variance 4.25 sqrt(2/M);
     covariances sqrt((4.25^2 + 4^2)/M) */
  tap_near(m1, 1.0, 4 * sqrt(4.25 / M), "E y[1] = 1");
  tap_near(v1, 4.25, 4 * 4.25 * sqrt(2.0 / M), "Var y[1] = 4 + 0.25");
  tap_near(c12, 4.0, 4 * sqrt((4.25 * 4.25 + 16) / M), "Cov(y[1], y[2]) = 4");
  tap_near(cmy, 4.0, 4 * sqrt((4 * 4.25 + 16) / M), "Cov(mu, y[1]) = 4");
  return tap_done();
}
