/* test_analysis.c — the structural analysis (ir/analysis.c): fixed versus
 * dynamic structure with the exact reason, latent kinds and supports,
 * observations, interleaving, and the printed form of `ppl check`.
 */
#include <math.h>
#include <string.h>

#include "../../ir/ir.h"
#include "../../lang/check.h"
#include "../../stdlib/dist.h"
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

static IrAnalysis *analyze_src(const char *src) {
  IrProgram *p = lower_src(src);
  return p ? ir_analyze(p) : NULL;
}

static const IrLatentInfo *latent(const IrAnalysis *a, const char *name) {
  for (int i = 0; a && i < a->nlatents; i++)
    if (strcmp(a->latents[i].name, name) == 0) return &a->latents[i];
  return NULL;
}

typedef struct Dyn {
  const char *src;
  const char *reason; /* NULL: fixed structure */
} Dyn;

static const Dyn structure_cases[] = {
  /* fixed: loops bounded by data, latents in loops, recursion without latents */
  {"int fib(int n) { if (n < 2) return n; return fib(n - 1) + fib(n - 2); }\n"
   "data { int N; real y[N]; }\nmodel {\n  real mu ~ normal(fib(5), 1);\n"
   "  for (i in 1:N) { real z ~ normal(mu, 1); y[i] ~ normal(z, 1); }\n}\n", NULL},
  /* fixed: control flow on latents that contains no latent */
  {"data { real y; }\nmodel {\n  real x ~ normal(0, 1);\n  if (x > 0) target += -x;\n"
   "  real t = 0; while (t < x) t += 1;\n  y ~ normal(x, 1);\n}\n", NULL},
  /* fixed: a while loop bounded by data holding a latent */
  {"data { int N; }\nmodel {\n  int i = 0;\n  while (i < N) { real z ~ normal(0, 1); i += 1; }\n}\n", NULL},
  /* fixed: *_rng in the generated block does not matter */
  {"model { real mu ~ normal(0, 1); }\ngenerated { int n = poisson_rng(3); real s = 0;"
   " for (i in 1:n) s += normal_rng(mu, 1); }\n", NULL},
  {"model {\n  real x ~ normal(0, 1);\n  while (x > 0) { real y ~ normal(0, 1); }\n}\n",
   "m.ppl:3:3: latent 'y' is inside a while loop whose condition depends on latent 'x'"},
  {"model {\n  real x ~ normal(0, 1);\n  if (x > 0) { real y ~ normal(0, 1); }\n}\n",
   "m.ppl:3:3: latent 'y' is inside an if whose condition depends on latent 'x'"},
  {"model {\n  int<lower=0> n ~ poisson(3);\n  for (i in 1:n) { real z ~ normal(0, 1); }\n}\n",
   "m.ppl:3:3: latent 'z' is inside a for loop whose bounds depend on latent 'n'"},
  {"model {\n  int<lower=1> k ~ poisson(3);\n  vector[k] v ~ normal(0, 1);\n}\n",
   "m.ppl:3:13: latent 'v' has a size that depends on latent 'k'"},
  {"model {\n  int n = poisson_rng(3);\n  for (i in 1:n) { real z ~ normal(0, 1); }\n}\n",
   "m.ppl:3:3: latent 'z' is inside a for loop whose bounds depend on poisson_rng()"},
  /* implicit flow: n is assigned under a latent-dependent if */
  {"model {\n  real x ~ normal(0, 1);\n  int n = 2;\n  if (x > 0) n = 3;\n"
   "  for (i in 1:n) { real z ~ normal(0, 1); }\n}\n",
   "m.ppl:5:3: latent 'z' is inside a for loop whose bounds depend on latent 'x'"},
  /* data flow through a stored element */
  {"model {\n  real x ~ normal(0, 1);\n  int a[2] = {1, 2};\n  if (x > 0) a[1] = 5;\n"
   "  int m = a[1];\n  vector[m] v ~ normal(0, 1);\n}\n",
   "m.ppl:6:13: latent 'v' has a size that depends on latent 'x'"},
  {"model {\n  for (i in 1:10) {\n    real z ~ normal(0, 1);\n    if (z > 1) break;\n  }\n}\n",
   "m.ppl:2:3: latent 'z' is inside a for loop left early (break/continue) depending on latent 'z'"},
  /* through a parameter: the function's loop bound comes from a latent argument */
  {"real f(int n) {\n  for (i in 1:n) { real z ~ normal(0, 1); }\n  return 0;\n}\n"
   "model {\n  int<lower=0> k ~ poisson(2);\n  real r = f(k);\n}\n",
   "m.ppl:2:3: latent 'z' is inside a for loop whose bounds depend on latent 'k'"},
  {"real f() { real z ~ normal(0, 1); return z; }\nmodel {\n  real x ~ normal(0, 1);\n"
   "  if (x > 0) { real r = f(); }\n}\n",
   "m.ppl:4:3: call of 'f' (which declares latents) is inside an if whose condition depends on latent 'x'"},
  /* through a return value: g's result depends on its latent */
  {"int g() { int<lower=0> c ~ poisson(1); return c + 1; }\nmodel {\n  int n = g();\n"
   "  vector[n] v ~ normal(0, 1);\n}\n",
   "m.ppl:4:13: latent 'v' has a size that depends on latent 'c'"},
  {"real walk(real x) {\n  real s ~ normal(x, 1);\n  if (s > 2 || s < -2) return s;\n"
   "  return walk(s);\n}\nmodel { real w = walk(0); }\n",
   "m.ppl:1:6: recursive stochastic function 'walk'"},
};

static void test_structure(void) {
  int n = (int)(sizeof structure_cases / sizeof structure_cases[0]);
  for (int i = 0; i < n; i++) {
    IrAnalysis *a = analyze_src(structure_cases[i].src);
    if (!a) {
      tap_ok(0, "structure case %d analyses", i + 1);
      continue;
    }
    if (!structure_cases[i].reason)
      tap_ok(a->fixed_structure && !a->dynamic_reason, "structure case %d: fixed (%s)", i + 1,
             a->dynamic_reason ? a->dynamic_reason : "");
    else
      tap_streq(a->fixed_structure ? "fixed" : a->dynamic_reason, structure_cases[i].reason,
                "structure case %d: dynamic reason", i + 1);
  }
  IrAnalysis *a = analyze_src(
      "real even(int n) { if (n == 0) return 0; return odd(n - 1); }\n"
      "real odd(int n) { real e ~ normal(0, 1); if (n == 0) return e; return even(n - 1); }\n"
      "model { real r = even(4); }\n");
  tap_streq(a && !a->fixed_structure ? a->dynamic_reason : "fixed",
            "m.ppl:1:6: recursive stochastic function 'even'",
            "mutual recursion reaching a latent is dynamic");
}

static void test_latents(void) {
  IrAnalysis *a = analyze_src(
      "data { real L; int K; vector[K] th; int N; }\nmodel {\n"
      "  real<lower=0> s ~ normal(0, 1);\n  real<lower=-1> g ~ gamma(2, 1);\n"
      "  real<lower=L> h ~ normal(0, 1);\n  real<lower=0, upper=1> u ~ beta(2, 2);\n"
      "  int b ~ bernoulli(0.5);\n  real w ~ uniform(L, 5);\n  int<upper=3> d ~ poisson(1);\n"
      "  real<upper=2> e ~ exponential(1);\n  simplex[K] p ~ dirichlet(th);\n"
      "  vector[N] v ~ normal(0, 1);\n  real m ~ normal(0, 1);\n"
      "  for (i in 1:N) { int<lower=0> c ~ poisson(3); }\n}\n");
  if (!tap_ok(a != NULL, "latents program analyses")) return;
  tap_ok(a->nlatents == 12, "12 latents (got %d)", a->nlatents);
  struct {
    const char *name, *support;
    LatentKind kind;
    ConKind con;
  } want[] = {
      {"s", "(0, inf)", LK_CONTINUOUS, CON_LOWER},      /* truncated normal */
      {"g", "(0, inf)", LK_CONTINUOUS, CON_LOWER},      /* declared bound below the support */
      {"h", "(L, inf)", LK_CONTINUOUS, CON_LOWER},      /* bound from data: shown by name */
      {"u", "(0, 1)", LK_CONTINUOUS, CON_LOWER_UPPER},
      {"b", "{0, 1}", LK_DISCRETE, CON_LOWER_UPPER},
      {"w", "(L, 5)", LK_CONTINUOUS, CON_LOWER_UPPER},  /* support from the parameters */
      {"d", "{0, ..., 3}", LK_DISCRETE, CON_LOWER_UPPER},
      {"e", "(0, 2)", LK_CONTINUOUS, CON_LOWER_UPPER},
      {"p", "simplex", LK_CONTINUOUS, CON_SIMPLEX},
      {"v", "real", LK_CONTINUOUS, CON_NONE},
      {"m", "real", LK_CONTINUOUS, CON_NONE},
      {"c", "int >= 0", LK_DISCRETE, CON_LOWER},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const IrLatentInfo *li = latent(a, want[i].name);
    tap_ok(li && strcmp(li->support, want[i].support) == 0 && li->kind == want[i].kind &&
               li->con == want[i].con,
           "latent %s: %s, kind %d, con %d (got %s, %d, %d)", want[i].name, want[i].support,
           want[i].kind, want[i].con, li ? li->support : "-", li ? (int)li->kind : -1,
           li ? (int)li->con : -1);
  }
  const IrLatentInfo *c = latent(a, "c"), *m = latent(a, "m"), *v = latent(a, "v");
  tap_ok(c && c->in_loop && m && !m->in_loop && !m->in_function, "in_loop only for c");
  tap_ok(v && v->fixed_size && strcmp(v->family, "normal") == 0, "v has a data-sized shape");
  tap_ok(a->has_discrete && !a->all_continuous && !a->has_string && a->fixed_structure,
         "summary flags: discrete, fixed");
  const IrLatentInfo *s = latent(a, "s");
  tap_ok(s && s->pos.line == 3 && s->pos.col == 17, "positions of latents are the names");

  a = analyze_src("real f(real x) { real z ~ normal(x, 1); return z; }\nmodel { real y = f(1); }\n");
  const IrLatentInfo *z = latent(a, "z");
  tap_ok(z && z->in_function && a->all_continuous && !a->has_discrete, "latent in a function");

  /* a parameter as a distribution argument (no defining instruction) */
  a = analyze_src("int coin(real p) { int c ~ bernoulli(p); return c; }\n"
                  "real w(real lo) { real x ~ uniform(lo, 2); return x; }\n"
                  "model { int k = coin(0.5); real y = w(1); }\n");
  const IrLatentInfo *cl = latent(a, "c"), *xl = latent(a, "x");
  tap_ok(cl && strcmp(cl->support, "{0, 1}") == 0 && cl->kind == LK_DISCRETE,
         "bernoulli of a parameter: {0, 1}");
  tap_ok(xl && strcmp(xl->support, "(lo, 2)") == 0, "uniform bounded by a parameter: (lo, 2) (%s)",
         xl ? xl->support : "-");
}

/* Strings: no string family ships yet, so give the SAMPLE a stand-in family. */
static void test_strings(void) {
  static const DistFamily fake_lm = {.name = "lm", .nparams = 2,
                                     .vtype = {TY_STRING, 0}};
  IrProgram *p = lower_src("model { real x ~ normal(0, 1); }\n");
  if (!p) return;
  IrInstr *in = &p->model_b.ins[p->model_b.n - 1];
  tap_ok(in->op == IR_SAMPLE, "last model instruction is the sample");
  in->dist.fam = &fake_lm;
  p->main.regtypes[in->dst] = ty_make(TY_STRING, 0);
  IrAnalysis *a = ir_analyze(p);
  tap_ok(a->nlatents == 1 && a->latents[0].kind == LK_STRING &&
             strcmp(a->latents[0].support, "string") == 0 && a->has_string && !a->all_continuous,
         "string latent: LK_STRING, support \"string\"");
}

static void test_observations(void) {
  IrAnalysis *a = analyze_src("data { real y; int N; real ys[N]; }\nmodel {\n"
                              "  real x ~ normal(0, 1);\n  y ~ normal(x, 1);\n"
                              "  real x2 ~ normal(x, 1);\n  if (x > 0) target += -x;\n"
                              "  observe(normal(x2, 1), ys);\n  condition(x < 10);\n}\n");
  if (!tap_ok(a != NULL && a->nobs == 4, "4 observations")) return;
  tap_ok(a->interleaved_observations, "an observation between two latents interleaves");
  tap_ok(strcmp(a->obs[0].what, "y ~ normal") == 0 && !a->obs[0].in_loop &&
             !a->obs[0].depends_on_latent_control && a->obs[0].pos.line == 4,
         "y ~ normal at line 4 (%s)", a->obs[0].what);
  tap_ok(strcmp(a->obs[1].what, "factor") == 0 && a->obs[1].depends_on_latent_control,
         "target += under a latent-dependent if");
  tap_ok(strcmp(a->obs[2].what, "ys ~ normal  vectorised") == 0, "observe() of an array (%s)",
         a->obs[2].what);
  tap_ok(strcmp(a->obs[3].what, "condition") == 0, "condition listed");

  a = analyze_src("data { real y; }\nmodel { real x ~ normal(0, 1); real z ~ normal(x, 1);"
                  " y ~ normal(z, 1); }\n");
  tap_ok(a && !a->interleaved_observations, "observations after all latents do not interleave");
  a = analyze_src("data { int N; real y[N]; }\nmodel { for (i in 1:N) { real z ~ normal(0, 1);"
                  " y[i] ~ normal(z, 1); } }\n");
  tap_ok(a && a->interleaved_observations && a->nobs == 1 && a->obs[0].in_loop &&
             strcmp(a->obs[0].what, "y[...] ~ normal") == 0,
         "observation in a loop with a latent interleaves");
  a = analyze_src("real stage(real m, real y) { real z ~ normal(m, 1); y ~ normal(z, 1); return z; }\n"
                  "data { real y1; real y2; }\nmodel { real a = stage(0, y1); real b = stage(a, y2); }\n");
  tap_ok(a && a->interleaved_observations, "interleaving seen through calls");
}

static void test_print(void) {
  IrProgram *p = lower_src(
      "data {\n  int J;\n  real y[J];\n  real<lower=0> sigma[J];\n}\nmodel {\n"
      "  real mu ~ normal(0, 5);\n  real<lower=0> tau ~ cauchy(0, 5);\n"
      "  vector[J] eta ~ normal(0, 1);\n  vector[J] theta = mu + tau * eta;\n"
      "  y ~ normal(theta, sigma);\n}\n");
  if (!p) return;
  tap_streq(ir_analysis_print(p, ir_analyze(p), 10),
            "structure: fixed\n"
            "latents (3):\n"
            "  mu   m.ppl:7:8   continuous  real      normal\n"
            "  tau  m.ppl:8:17  continuous  (0, inf)  cauchy (truncated to lower=0)\n"
            "  eta  m.ppl:9:13  continuous  real      normal                         vector[J]: J scalars\n"
            "unconstrained parameters: 10\n"
            "observations (1):\n"
            "  m.ppl:11:3  y ~ normal  vectorised\n",
            "printed analysis of eight schools");
  p = lower_src("real f(int n) {\n  for (i in 1:n) { real z ~ normal(0, 1); }\n  return 0;\n}\n"
                "model {\n  int<lower=0> k ~ poisson(2);\n  real r = f(k);\n}\n");
  if (!p) return;
  tap_streq(ir_analysis_print(p, ir_analyze(p), -1),
            "structure: dynamic\n"
            "  reason: m.ppl:2:3: latent 'z' is inside a for loop whose bounds depend on latent 'k'\n"
            "latents (2):\n"
            "  k  m.ppl:6:16  discrete    int >= 0  poisson\n"
            "  z  m.ppl:2:25  continuous  real      normal   in f(), in loop (i in 1:n): n scalars per call\n"
            "unconstrained parameters: none (dynamic structure)\n"
            "observations: none\n",
            "printed analysis of a dynamic program");
  p = lower_src("data { int N; }\nmodel {\n  for (i in 1:N) { int<lower=0, upper=1> z ~ bernoulli(0.3); }\n}\n");
  tap_streq(p ? ir_analysis_print(p, ir_analyze(p), -1) : "",
            "structure: fixed\n"
            "latents (1):\n"
            "  z  m.ppl:3:42  discrete  {0, 1}  bernoulli  in loop (i in 1:N): N scalars\n"
            "unconstrained parameters: none (not all latents are continuous)\n"
            "observations: none\n",
            "printed analysis with a discrete latent");
  p = lower_src("model { }\n");
  tap_streq(p ? ir_analysis_print(p, ir_analyze(p), -1) : "",
            "structure: fixed\nlatents: none\nunconstrained parameters: 0\n"
            "observations: none\n",
            "printed analysis of an empty model");
  /* without data (-1): sizes and counts as the declarations say them */
  p = lower_src("data { int N; int K; int T; }\nmodel {\n"
                "  real mu ~ normal(0, 1);\n"
                "  simplex[K] th ~ dirichlet(rep_vector(1, K));\n"
                "  matrix[N, K - 1] B ~ normal(0, 1);\n"
                "  for (t in 2:T) { real h ~ normal(mu, 1); }\n"
                "  for (i in 1:N) for (j in 1:3) { vector[2] w ~ normal(0, 1); }\n"
                "  while (mu > 5) { real u ~ normal(0, 1); }\n}\n");
  tap_streq(p ? ir_analysis_print(p, ir_analyze(p), -1) : "",
            "structure: dynamic\n"
            "  reason: m.ppl:8:3: latent 'u' is inside a while loop whose condition depends on latent 'mu'\n"
            "latents (6):\n"
            "  mu  m.ppl:3:8   continuous  real     normal\n"
            "  th  m.ppl:4:14  continuous  simplex  dirichlet  vector[K]: K scalars\n"
            "  B   m.ppl:5:20  continuous  real     normal     matrix[N, K - 1]: N * (K - 1) scalars\n"
            "  h   m.ppl:6:25  continuous  real     normal     in loop (t in 2:T): T - 1 scalars\n"
            "  w   m.ppl:7:45  continuous  real     normal     vector[2]  in loop (i in 1:N, j in 1:3): 6 * N scalars\n"
            "  u   m.ppl:8:25  continuous  real     normal     in loop (while): ? scalars\n"
            "unconstrained parameters: none (dynamic structure)\n"
            "observations: none\n",
            "printed analysis without data: symbolic sizes");
  p = lower_src("data { int N; int K; int T; }\nmodel {\n"
                "  real mu ~ normal(0, 1);\n"
                "  simplex[K] th ~ dirichlet(rep_vector(1, K));\n"
                "  array[2] vector[N] v ~ normal(0, 1);\n"
                "  for (t in 2:T) { real h ~ normal(mu, 1); }\n}\n");
  const char *txt = p ? ir_analysis_print(p, ir_analyze(p), -1) : "";
  tap_ok(strstr(txt, "unconstrained parameters: 1 + K - 1 + 2 * N + T - 1 (sizes from the data)\n") != NULL,
         "unconstrained parameters as the sum of the declared sizes: %s", txt);
}

int main(void) {
  gc_init();
  test_structure();
  test_latents();
  test_strings();
  test_observations();
  test_print();
  return tap_done();
}
