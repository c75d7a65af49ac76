/* test_deps.c — the latents' dependency graph of the structural analysis
 * (ir_dep_parents / children / blanket / self, ir_deps_print): a hierarchical
 * model (eight schools), a chain (a state-space model, latents declared per
 * step), control-flow dependence, calls, and the printed form.
 */
#include <string.h>

#include "../../ir/ir.h"
#include "../../lang/check.h"
#include "tap.h"

static IrProgram *lower_src(const char *src) {
  Diag d;
  diag_init(&d);
  Ast *prog = parse_string(src, strlen(src), "m.ppl", &d);
  CheckedProgram *cp = prog ? check_program(prog, "m.ppl", 0, NULL, &d) : NULL;
  IrProgram *p = cp ? ir_lower(cp, &d) : NULL;
  if (!p) tap_diag("does not lower: %s", d.msg);
  return p;
}

/* Node of latent `name`, or of the k-th observation when name is NULL. */
static int node(const IrAnalysis *a, const char *name, int k) {
  if (!name) return a->nlatents + k;
  for (int i = 0; i < a->nlatents; i++)
    if (strcmp(a->latents[i].name, name) == 0) return i;
  return -1;
}

static const char *label(const IrAnalysis *a, int n) {
  return n < a->nlatents ? a->latents[n].name : gc_printf("obs%d", n - a->nlatents);
}

/* "mu tau" for a node list */
static const char *names(const IrAnalysis *a, int n, const int *l) {
  const char *s = "";
  for (int i = 0; i < n; i++) s = gc_printf("%s%s%s", s, i ? " " : "", label(a, l[i]));
  return s;
}
static const char *parents(const IrAnalysis *a, int nd) {
  const int *l;
  int n = ir_dep_parents(a, nd, &l);
  return names(a, n, l);
}
static const char *children(const IrAnalysis *a, int nd) {
  const int *l;
  int n = ir_dep_children(a, nd, &l);
  return names(a, n, l);
}
static const char *blanket(const IrAnalysis *a, int nd) {
  const int *l;
  int n = ir_dep_blanket(a, nd, &l);
  return names(a, n, l);
}

static void test_eight_schools(void) {
  const char *src =
      "data { int J; real y[J]; real<lower=0> sigma[J]; }\n"
      "model {\n"
      "  real mu ~ normal(0, 5);\n"
      "  real<lower=0> tau ~ cauchy(0, 5);\n"
      "  vector[J] eta ~ normal(0, 1);\n"
      "  vector[J] theta = mu + tau * eta;\n"
      "  y ~ normal(theta, sigma);\n"
      "}\n";
  IrProgram *p = lower_src(src);
  if (!p) return;
  IrAnalysis *a = ir_analyze(p);
  int mu = node(a, "mu", 0), tau = node(a, "tau", 0), eta = node(a, "eta", 0), y = node(a, NULL, 0);
  tap_ok(a->nlatents == 3 && a->nobs == 1, "eight schools: 3 latent nodes, 1 observation");
  tap_streq(parents(a, mu), "", "mu has no parents");
  tap_streq(parents(a, eta), "", "eta (non-centred) has no parents");
  tap_streq(parents(a, y), "mu tau eta", "y's parents: mu, tau, eta through theta");
  tap_streq(children(a, mu), "obs0", "mu's child: the observation");
  tap_streq(blanket(a, mu), "tau eta", "mu's blanket: the co-parents of y");
  tap_streq(blanket(a, eta), "mu tau", "eta's blanket: mu, tau");
  tap_ok(!ir_dep_self(a, mu) && !ir_dep_self(a, eta), "no self-dependence");

  const char *centred =
      "data { int J; real y[J]; real<lower=0> sigma[J]; }\n"
      "model {\n"
      "  real mu ~ normal(0, 5);\n"
      "  real<lower=0> tau ~ cauchy(0, 5);\n"
      "  vector[J] theta ~ normal(mu, tau);\n"
      "  y ~ normal(theta, sigma);\n"
      "}\n";
  p = lower_src(centred);
  if (!p) return;
  a = ir_analyze(p);
  int th = node(a, "theta", 0);
  mu = node(a, "mu", 0);
  tau = node(a, "tau", 0);
  tap_streq(parents(a, th), "mu tau", "centred: theta <- mu, tau");
  tap_streq(parents(a, node(a, NULL, 0)), "theta", "centred: y <- theta only");
  tap_streq(children(a, mu), "theta", "mu -> theta");
  tap_streq(children(a, th), "obs0", "theta -> y");
  tap_streq(blanket(a, mu), "tau theta", "mu's blanket: theta and its co-parent tau");
  tap_streq(blanket(a, th), "mu tau", "theta's blanket: its parents (y has no other parent)");
  tap_streq(blanket(a, tau), "mu theta", "tau's blanket: mu, theta");
}

static void test_chain(void) {
  const char *src =
      "data { int T; real y[T]; }\n"
      "model {\n"
      "  real<lower=0> q ~ gamma(2, 2);\n"
      "  real prev = 0;\n"
      "  for (t in 1:T) {\n"
      "    real x ~ normal(prev, q);\n"
      "    y[t] ~ normal(x, 1);\n"
      "    prev = x;\n"
      "  }\n"
      "  real r ~ normal(prev, 1);\n"
      "}\n";
  IrProgram *p = lower_src(src);
  if (!p) return;
  IrAnalysis *a = ir_analyze(p);
  int q = node(a, "q", 0), x = node(a, "x", 0), r = node(a, "r", 0);
  tap_ok(ir_dep_self(a, x), "x[t] depends on x[t-1]: self-dependence");
  tap_ok(!ir_dep_self(a, q) && !ir_dep_self(a, r), "q and r do not");
  tap_streq(parents(a, x), "q", "x's parents (besides itself): q");
  tap_streq(parents(a, r), "x", "r depends on the last x");
  tap_streq(parents(a, node(a, NULL, 0)), "x", "y[t] <- x");
  tap_streq(children(a, x), "r obs0", "x -> r, y");
  tap_streq(blanket(a, x), "q r", "x's blanket: q, r");
  tap_streq(blanket(a, q), "x", "q's blanket: x");
}

static void test_control(void) {
  const char *src =
      "real half(real v) {\n"
      "  real h ~ normal(v / 2, 1);\n"
      "  return h;\n"
      "}\n"
      "data { real y; }\n"
      "model {\n"
      "  real<lower=0, upper=1> p ~ beta(1, 1);\n"
      "  int<lower=0, upper=1> z ~ bernoulli(p);\n"
      "  real s ~ normal(0, 1);\n"
      "  if (z == 1) {\n"
      "    real w ~ normal(0, 1);\n"
      "    y ~ normal(w, 1);\n"
      "  }\n"
      "  int<lower=0> n ~ poisson(3);\n"
      "  real acc = 0;\n"
      "  for (i in 1:n) acc += 1;\n"
      "  real u ~ normal(acc, 1);\n"
      "  real k = 0;\n"
      "  while (k < 10) {\n"
      "    if (k > s) break;\n"
      "    k += 1;\n"
      "  }\n"
      "  real v ~ normal(k, 1);\n"
      "  real g = half(u);\n"
      "  factor(-g * g);\n"
      "}\n";
  IrProgram *p = lower_src(src);
  if (!p) return;
  IrAnalysis *a = ir_analyze(p);
  int w = node(a, "w", 0), z = node(a, "z", 0), h = node(a, "h", 0), u = node(a, "u", 0);
  tap_streq(parents(a, z), "p", "z <- p");
  tap_streq(parents(a, w), "z", "w exists only when z == 1: z is its parent");
  tap_streq(parents(a, node(a, NULL, 0)), "z w", "y ~ normal(w, 1) under the if: z, w");
  tap_streq(parents(a, u), "n", "u's mean counts a loop bounded by n");
  tap_streq(parents(a, node(a, "v", 0)), "s", "v's mean: a while left early depending on s");
  tap_streq(parents(a, h), "u", "h (in half()) <- u through the argument");
  tap_streq(parents(a, node(a, NULL, 1)), "h", "factor(-g * g) <- h through the return");
  tap_streq(children(a, z), "w obs0", "z -> w, y");
  tap_streq(blanket(a, z), "p w", "z's blanket: p, w (co-parent of y)");
  const int *l;
  tap_ok(ir_dep_parents(a, -1, &l) == 0 && l == NULL && ir_dep_parents(a, 99, &l) == 0,
         "out-of-range nodes: empty");

  char *text = ir_deps_print(p, a);
  tap_streq(text,
            "dependencies (static; one node per declaration):\n"
            "  node               parents  children              Markov blanket\n"
            "  p                  -        z                     z\n"
            "  z                  p        w, y ~ normal (12:5)  p, w\n"
            "  s                  -        v                     v\n"
            "  w                  z        y ~ normal (12:5)     z\n"
            "  n                  -        u                     u\n"
            "  u                  n        h                     n, h\n"
            "  v                  s        -                     s\n"
            "  h                  u        factor (25:3)         u\n"
            "  y ~ normal (12:5)  z, w\n"
            "  factor (25:3)      h\n",
            "the printed form (ppl check --deps)");
  text = ir_deps_print(p, ir_analyze(lower_src("data { int T; real y[T]; }\nmodel {\n"
                                                "  real prev = 0;\n  for (t in 1:T) {\n"
                                                "    real x ~ normal(prev, 1);\n"
                                                "    prev = x;\n  }\n}\n")));
  tap_streq(text,
            "dependencies (static; one node per declaration):\n"
            "  node      parents  children  Markov blanket\n"
            "  x (self)  -        -         -\n"
            "(self): depends on its own earlier occurrences (x[t] on x[t-1])\n",
            "self-dependence is noted");
}

int main(void) {
  gc_init();
  test_eight_schools();
  test_chain();
  test_control();
  return tap_done();
}
