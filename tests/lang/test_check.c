/* test_check.c — the semantic checker (lang/check.c): malformed programs with
 * their exact messages (these feed the project's bad-input suite), well-typed
 * programs that must pass, and the annotations the lowering relies on.
 */
#include <stdlib.h>
#include <string.h>

#include "../../lang/check.h"
#include "../../core/value.h"
#include "../../stdlib/builtins.h"
#include "../../stdlib/dist.h"
#include "tap.h"

/* "" when the program checks, else the first message (parse errors too). */
static const char *check_msg(const char *src, CheckedProgram **out) {
  Diag d;
  diag_init(&d);
  Ast *prog = parse_string(src, strlen(src), "m.ppl", &d);
  if (!prog) return gc_printf("parse: %s", d.msg);
  CheckedProgram *cp = check_program(prog, "m.ppl", 0, NULL, &d);
  if (out) *out = cp;
  if (!cp) {
    if (d.code != DIAG_TYPE) return gc_printf("code %d: %s", d.code, d.msg);
    return gc_strdup(d.msg);
  }
  return "";
}

typedef struct Bad {
  const char *src;
  const char *msg;
} Bad;

static const Bad bad[] = {
  /* names */
  {"model { real mu ~ normal(0, 1); real y = thta; }",
   "m.ppl:1:42: unknown variable 'thta'"},
  {"model { real theta ~ normal(0, 1); real y = thetta; }",
   "m.ppl:1:45: unknown variable 'thetta'; did you mean 'theta'?"},
  {"model { real mu ~ nromal(0, 1); }",
   "m.ppl:1:19: unknown distribution 'nromal'; did you mean 'normal'?"},
  {"model { real x = nromal_rng(0, 1); }",
   "m.ppl:1:18: unknown function 'nromal_rng'; did you mean 'normal_rng'?"},
  {"model { real x = exq(1.0); }",
   "m.ppl:1:18: unknown function 'exq'; did you mean 'exp'?"},
  {"model { real x = frobnicate(1.0); }",
   "m.ppl:1:18: unknown function 'frobnicate'"},
  {"model { real x = 1; real x = 2; }",
   "m.ppl:1:26: 'x' is already declared at line 1"},
  {"data { int N; } model { real N = 1; }",
   "m.ppl:1:30: 'N' is already declared at line 1"},
  {"real f(real x) { return x; }\nmodel { real f = 1; }",
   "m.ppl:2:14: 'f' is the name of a function; choose another name"},
  {"model { real y = 1; for (y in 1:3) { } }",
   "m.ppl:1:21: 'y' is already declared at line 1"},
  /* blocks */
  {"model { } data { }", "m.ppl:1:1: 'model' block must come after 'data'"},
  {"model { } model { }", "m.ppl:1:11: duplicate 'model' block"},
  {"generated { } model { }", "m.ppl:1:1: 'generated' block must come after 'model'"},
  {"model { }\nreal f() { return 1; }",
   "m.ppl:2:6: function definitions must come before the data, model and generated blocks"},
  /* functions */
  {"real f(real x) { return x; }\nreal f(int y) { return y; }",
   "m.ppl:2:6: duplicate function 'f' (first defined at line 1)"},
  {"real normal(real x) { return x; }", "m.ppl:1:6: function 'normal' conflicts with a distribution"},
  {"real exp(real x) { return x; }", "m.ppl:1:6: function 'exp' conflicts with a builtin function"},
  {"real f(real x, int x) { return x; }", "m.ppl:1:20: duplicate parameter 'x'"},
  {"real f(real x) { if (x > 0) return x; }",
   "m.ppl:1:6: function 'f' may end without returning a value"},
  {"real f(real x) { return; }", "m.ppl:1:18: function 'f' must return a value of type real"},
  {"void f(real x) { return x; }", "m.ppl:1:18: void function 'f' cannot return a value"},
  {"real f(real x) { return [1, 2]; }", "m.ppl:1:25: function 'f' returns real, got row_vector"},
  {"real f(real x) { return x; }\nmodel { real y = f(1, 2); }",
   "m.ppl:2:18: f expects 1 argument, got 2"},
  {"real f(vector v) { return 1; }\nmodel { real y = f(2.0); }",
   "m.ppl:2:20: argument 1 of 'f' must be vector, got real"},
  {"void f(real x) { print(x); }\nmodel { real y = f(1); }",
   "m.ppl:2:18: function 'f' does not return a value"},
  {"real f() { real z ~ normal(0, 1); return z; }\ngenerated { real y = f(); }",
   "m.ppl:2:22: function 'f' declares latents or observes; it cannot be called in the generated block"},
  {"model { return; }", "m.ppl:1:9: return is only allowed inside functions"},
  {"model { break; }", "m.ppl:1:9: break is only allowed inside a loop"},
  {"model { if (1) continue; }", "m.ppl:1:16: continue is only allowed inside a loop"},
  /* calls */
  {"model { real mu ~ normal(0, 1, 2); }", "m.ppl:1:19: normal expects 2 arguments, got 3"},
  {"model { real x = normal(0, 1); }",
   "m.ppl:1:18: distribution 'normal' can only be used after '~' or in observe(); use normal_rng() to draw from it or normal_lpdf() for its log density"},
  {"model { real x = print(1); }", "m.ppl:1:18: print() has no value; use it as a statement"},
  {"model { factor([1, 2]); }", "m.ppl:1:16: factor() needs a real, got row_vector; use sum()"},
  {"model { condition(1.5); }", "m.ppl:1:19: condition() needs a bool, got real"},
  {"model { observe(1.0, 2.0); }",
   "m.ppl:1:17: the first argument of observe() must be a distribution such as normal(0, 1)"},
  {"model { target += [1, 2]'; }", "m.ppl:1:25: target += needs a real, got vector; use sum()"},
  /* ~ rules */
  {"model { real mu ~ normal(0, 1); mu ~ normal(0, 1); }",
   "m.ppl:1:33: '~' needs data or a new declaration on its left: 'mu' is a latent; write 'real mu ~ ...' to declare it, or use observe()"},
  {"data { real x ~ normal(0, 1); }",
   "m.ppl:1:13: latent variables can only be declared in the model block or in functions"},
  {"model { real mu ~ normal(0, 1); }\ngenerated { real z ~ normal(mu, 1); }",
   "m.ppl:2:18: latent variables can only be declared in the model block or in functions"},
  {"data { real y; }\ngenerated { y ~ normal(0, 1); }",
   "m.ppl:2:13: '~' is not allowed in the generated block"},
  {"data { real y; factor(y); }", "m.ppl:1:16: factor() is not allowed in the data block"},
  {"model { }\ngenerated { target += 1; }",
   "m.ppl:2:13: target += is not allowed in the generated block"},
  {"data { string s; }\nmodel { s ~ normal(0, 1); }",
   "m.ppl:2:13: normal: y must be real or a container of reals, got string"},
  {"model { int k ~ normal(0, 1); }",
   "m.ppl:1:13: 'k' is declared int, but normal is a continuous distribution; declare it real"},
  {"model { vector[2] v = [1, 2]'; real y = 1; y ~ normal(0, 1); v ~ normal(0, 1); real p ~ bernoulli(0.5); }",
   "m.ppl:1:85: 'p' is declared real, but bernoulli is a discrete distribution; declare it int"},
  {"model { vector[2] v ~ normal(0, 1); v ~ normal(0, 1); }",
   "m.ppl:1:37: '~' needs data or a new declaration on its left: 'v' is a latent; write 'vector v ~ ...' to declare it, or use observe()"},
  /* assignment */
  {"data { int N; }\nmodel { N = 3; }", "m.ppl:2:9: cannot assign to data variable 'N'\n"
   "m.ppl:2:9: hint: 'N' is read from the data file (a data declaration without a value); to "
   "compute it, declare it with a value in the data block and fill it: `int N = 0;`"},
  {"model { real mu ~ normal(0, 1); mu = 2; }", "m.ppl:1:33: cannot assign to latent 'mu'"},
  {"model { for (i in 1:3) { i = 2; } }", "m.ppl:1:26: cannot assign to loop variable 'i'"},
  {"model { real m = 1; }\ngenerated { m = 2; }",
   "m.ppl:2:13: cannot assign to model variable 'm' in the generated block"},
  {"data { int N = 2; }\nmodel { N = 3; }", "m.ppl:2:9: cannot assign to data variable 'N'"},
  {"model { real x[3]; vector[3] v = x; }",
   "m.ppl:1:34: cannot assign real[] to vector; use to_vector()"},
  {"model { vector[3] v; real x[3] = v; }",
   "m.ppl:1:34: cannot assign vector to real[]; use to_array_1d()"},
  {"model { int k = 2.5; }", "m.ppl:1:17: cannot assign real to int; reals do not convert to ints implicitly"},
  {"model { real x = 1; x[1] = 2; }", "m.ppl:1:21: cannot index a value of type real"},
  /* expressions */
  {"model { real x[3]; real y[3] = x + x; }",
   "m.ppl:1:34: arithmetic on arrays is not supported; use a vector"},
  {"model { string s = \"a\" + 1; }",
   "m.ppl:1:24: cannot add string and int; use to_string() to convert the number"},
  {"model { vector[3] v; real z = v * v; }",
   "m.ppl:1:33: cannot multiply vector by vector; use '.*' for elementwise products or dot_product()"},
  {"model { vector[3] v; row_vector[3] r; vector[3] z = v + r; }",
   "m.ppl:1:55: '+' cannot be applied to vector and row_vector"},
  {"model { real x = 2.5 % 2; }", "m.ppl:1:22: '%' needs int operands, got real and int"},
  {"model { vector[2] v; real x = v ^ 2; }", "m.ppl:1:33: '^' needs scalar operands, got vector and int"},
  {"model { real x = 1; if (x) { } }", "m.ppl:1:25: condition must be bool or int, got real"},
  {"model { bool b = 1.5 && true; }",
   "m.ppl:1:22: operands of '&&' must be bool or int, got real and bool"},
  {"model { string s = \"a\"; bool b = s < \"b\"; }",
   "m.ppl:1:36: cannot compare string and string with '<'"},
  {"model { real x = 1 > 2 ? 1.0 : \"s\"; }",
   "m.ppl:1:24: branches of '?:' have different types: real and string"},
  {"model { vector[3] v; real x = v[1, 2]; }",
   "m.ppl:1:31: too many indexes for vector: 2 given, at most 1 allowed"},
  {"model { vector[3] v; real x = v[1.5]; }",
   "m.ppl:1:33: index must be an int or an int array, got real"},
  {"model { real x[2] = {1, \"a\"}; }",
   "m.ppl:1:25: array literal elements must have one type: int and string"},
  {"model { row_vector[2] r = [1, [1, 2]]; }", "m.ppl:1:31: matrix literal mixes reals and row vectors"},
  {"model { real x = 3'; }", "m.ppl:1:19: cannot transpose int"},
  {"model { vector[2.5] v; }", "m.ppl:1:16: sizes must be ints, got real"},
  {"model { real<lower=[1, 2]> x; }",
   "m.ppl:1:20: bounds must be int or real scalars (container bounds are not supported yet), got row_vector"},
  {"model { string<lower=0> s; }", "m.ppl:1:9: bounds are not allowed on string"},
  {"model { int<lower=0.5> k; }", "m.ppl:1:19: bounds of an int variable must be ints, got real"},
  {"model { matrix[2, 2] m; for (x in m) { } }",
   "m.ppl:1:35: cannot iterate over matrix; use to_vector() or loop over the indexes"},
  {"model { real x = sum; }", "m.ppl:1:18: 'sum' is a function; call it with (...)"},
  {"model { real x = exp(\"a\"); }", NULL}, /* message from the builtin: only the position is ours */
};

/* Well-typed programs: each must pass. */
static const char *const good[] = {
  "data { int<lower=0> J; real y[J]; real<lower=0> sigma[J]; }\n"
  "model {\n  real mu ~ normal(0, 5);\n  real<lower=0> tau ~ cauchy(0, 5);\n"
  "  vector[J] eta ~ normal(0, 1);\n  vector[J] theta = mu + tau * eta;\n"
  "  y ~ normal(theta, sigma);\n}\n"
  "generated { real y_rep[J] = normal_rng(theta, sigma); }",
  /* recursion and mutual recursion without forward declarations */
  "int fib(int n) { if (n < 2) return n; return fib(n - 1) + fib(n - 2); }\n"
  "bool ev(int n) { if (n == 0) return true; return od(n - 1); }\n"
  "bool od(int n) { if (n == 0) return false; return ev(n - 1); }\n"
  "generated { int f = fib(10); bool e = ev(4); }",
  /* a stochastic function */
  "real walk(real x) { real s ~ normal(0, 1); if (s > 2) return x; return walk(x + s); }\n"
  "model { real w = walk(0); }",
  "functions { real sq(real x) { return x * x; } }\nmodel { real y = sq(2); }",
  /* matrix algebra and broadcasting */
  "data { int N; matrix[N, N] A; vector[N] b; row_vector[N] r; }\n"
  "model { vector[N] v = A * b; real s = r * b; matrix[N, N] o = b * r; matrix[N, N] m = A * A;\n"
  "  row_vector[N] q = r * A; vector[N] w = 2 * b + b / 3 - 1; vector[N] e = b .* b ./ b;\n"
  "  row_vector[N] t = b'; matrix[N, N] at = A'; real x = 2 ^ 3; int k = 7 / 2; int j = 7 % 3;\n"
  "  real mix = 1 + 2.5; }",
  /* indexing */
  "data { int N; matrix[N, N] A; vector[N] v; real xs[N, 2]; int idx[2]; vector[N] vs[3]; }\n"
  "model { real a = A[1, 2]; row_vector[N] r = A[1]; vector[N] c = A[:, 1];\n"
  "  matrix[2, N] top = A[1:2]; real e = v[1]; vector[2] sub = v[idx]; real x = xs[1, 2];\n"
  "  real row[2] = xs[1]; real s = vs[2, 3]; vector[N] vv = vs[2]; vector[2] tail = v[2:];\n"
  "  real col[N] = xs[:, 1]; }",
  /* strings and bools */
  "data { string q; }\ngenerated { string s = \"Q: \" + q + \"\\n\"; bool b = s == q && !(1 > 2);\n"
  "  bool c = true != false; int l = length(s); }",
  /* loops, while, break, continue, foreach */
  "data { int N; vector[N] v; real xs[N]; }\n"
  "model { real t = 0; for (i in 1:N) { if (i == 2) continue; t += v[i]; }\n"
  "  for (x in v) t += x; for (x in xs) t -= x; int k = 0;\n"
  "  while (k < 10) { k += 1; if (k > 5) break; } }",
  /* observe, factor, condition, target */
  "data { int y; real z; }\nmodel { real<lower=0, upper=1> p ~ beta(1, 1); y ~ bernoulli(p);\n"
  "  observe(normal(0, 1), z); factor(-p); condition(p > 0.1); target += log(p); }",
  /* transformed data with statements; assignment promotions */
  "data { int N; vector[N] x; real m = 0; for (i in 1:N) m += x[i]; real arr[3] = {1, 2, 3}; }\n"
  "model { real mu ~ normal(m, 1); real r = 1; r = 2; real ys[2]; ys[1] = 3; ys = {1, 2}; }",
  /* constrained types */
  "data { int K; vector<lower=0>[K] a; }\n"
  "model { simplex[K] p ~ dirichlet(a); ordered[K] o ~ normal(0, 1); int<lower=0> n ~ poisson(3); }",
  /* int conditions, ternary promotion, row vector and matrix literals */
  "model { real x = 1 ? 2 : 3.5; if (1) { } while (0) { } row_vector[2] r = [1, 2.5];\n"
  "  matrix[2, 2] m = [[1, 2], [3, 4]]; int a[2, 2] = {{1, 2}, {3, 4}}; real b[2] = {1, 2.5}; }",
  /* print and reject anywhere; locals in nested scopes reuse names */
  "data { int N; print(\"N = \", N); }\n"
  "model { for (i in 1:2) { real z = i; } for (i in 1:2) { real z = 2 * i; } if (N < 0) reject(\"bad N \", N); }",
  /* function returning on every path via if/else, reject and while(true) */
  "real f(real x) { if (x > 0) return 1; else return 2; }\n"
  "real g(real x) { reject(\"no\"); }\n"
  "real h(real x) { while (true) { return x; } }\n"
  "void p(real x) { print(x); }\n"
  "model { real a = f(1) + g(1) + h(1); p(a); }",
  /* parameters are assignable (copies); arrays of vectors in signatures */
  "real f(real x, array[] vector vs) { x = x + 1; return x + vs[1][1]; }\n"
  "data { vector[2] vs[2]; }\nmodel { real y = f(1, vs); }",
  /* latents in loops, compound assignment on indexed variables */
  "data { int N; }\nmodel { vector[N] acc = rep_vector(0, N); for (i in 1:N) { real z ~ normal(0, 1); acc[i] += z; } }",
};

static void test_bad(void) {
  int n = (int)(sizeof bad / sizeof bad[0]);
  for (int i = 0; i < n; i++) {
    const char *got = check_msg(bad[i].src, NULL);
    if (bad[i].msg) tap_streq(got, bad[i].msg, "bad program %d", i + 1);
    else tap_ok(strncmp(got, "m.ppl:1:18: ", 12) == 0 && strlen(got) > 12,
                "bad program %d: builtin message with position (%s)", i + 1, got);
  }
}

static void test_good(void) {
  int n = (int)(sizeof good / sizeof good[0]);
  for (int i = 0; i < n; i++) {
    tap_streq(check_msg(good[i], NULL), "", "good program %d", i + 1);
  }
}

/* Finds the first node of a kind (preorder) whose name matches. */
static Ast *find(Ast *a, AstKind k, const char *name) {
  if (!a) return NULL;
  if (a->kind == k && (!name || (a->name && strcmp(a->name, name) == 0))) return a;
  Ast *kids[3] = {a->a, a->b, a->c};
  for (int i = 0; i < 3; i++) {
    Ast *r = find(kids[i], k, name);
    if (r) return r;
  }
  for (int i = 0; i < a->list.n; i++) {
    Ast *r = find(a->list.items[i], k, name);
    if (r) return r;
  }
  return NULL;
}

static void test_annotations(void) {
  CheckedProgram *cp = NULL;
  const char *src =
      "real sq(real x) { return x * x; }\n"
      "data { int N; vector[N] v; }\n"
      "model { real mu ~ normal(0, 1); real s = sq(mu) + exp(v[1]); v ~ normal(mu, 1); }\n"
      "generated { real k = N / 2; }";
  tap_streq(check_msg(src, &cp), "", "annotated program checks");
  if (!cp) return;
  tap_ok(cp->nfuncs == 1 && cp->data && cp->model && cp->generated, "blocks and functions found");
  Ast *mu = find(cp->model, AST_DECL, "mu");
  Ast *s = find(cp->model, AST_DECL, "s");
  Ast *k = find(cp->generated, AST_DECL, "k");
  Ast *n = find(cp->data, AST_DECL, "N");
  tap_ok(mu && mu->block == 1 && ty_eq(mu->ty, ty_make(TY_REAL, 0)), "latent decl: block 1, real");
  tap_ok(mu && mu->b && mu->b->dist == dist_lookup("normal"), "distribution recorded on the call");
  tap_ok(n && n->block == 0 && k && k->block == 2, "data and generated blocks recorded");
  Ast *call = find(s, AST_CALL, "sq");
  tap_ok(call && call->ref == cp->funcs[0], "user call refers to its FUNCDEF");
  Ast *ex = find(s, AST_CALL, "exp");
  tap_ok(ex && ex->builtin == builtin_lookup("exp") && ty_eq(ex->ty, ty_make(TY_REAL, 0)),
         "builtin call recorded with its type");
  Ast *vi = find(s, AST_INDEX, NULL);
  tap_ok(vi && ty_eq(vi->ty, ty_make(TY_REAL, 0)) && vi->a->ref == find(cp->data, AST_DECL, "v"),
         "v[1] is real and v refers to the data declaration");
  Ast *div = find(k, AST_BINARY, NULL);
  tap_ok(div && ty_eq(div->ty, ty_make(TY_INT, 0)), "N / 2 is an int division");
  Ast *tl = find(cp->model, AST_TILDE, NULL);
  tap_ok(tl && tl->b->dist && tl->a->ref && ty_eq(tl->a->ty, ty_make(TY_VECTOR, 0)),
         "observation annotated");
  Ast *x = find(cp->funcs[0], AST_VAR, "x");
  tap_ok(x && x->ref == cp->funcs[0]->list.items[0] &&
             ty_eq(cp->funcs[0]->list.items[0]->ty, ty_make(TY_REAL, 0)),
         "parameter reference and type");
  /* for-each loop variable type */
  cp = NULL;
  tap_streq(check_msg("data { vector[3] v; int a[2, 2]; }\nmodel { for (x in v) { real y = x; }"
                      " for (r in a) { int z = r[1]; } }", &cp), "", "foreach checks");
  if (cp) {
    Ast *f1 = find(cp->model, AST_FOR, "x"), *f2 = find(cp->model, AST_FOR, "r");
    tap_ok(f1 && ty_eq(f1->ty, ty_make(TY_REAL, 0)), "for over a vector: real element");
    tap_ok(f2 && ty_eq(f2->ty, ty_make(TY_INT, 1)), "for over int[,]: int[] element");
  }
}

static double host_twice(void *ud, const double *args, int nargs, int *err) {
  (void)ud;
  (void)nargs;
  *err = 0;
  return 2 * args[0];
}

static void test_host(void) {
  HostFunc h = {.name = "twice", .arity = 1, .fn = host_twice};
  const char *src = "model { real y = twice(3); }";
  Diag d;
  diag_init(&d);
  Ast *prog = parse_string(src, strlen(src), "m.ppl", &d);
  CheckedProgram *cp = prog ? check_program(prog, "m.ppl", 1, &h, &d) : NULL;
  tap_ok(cp != NULL, "host function call checks (%s)", d.msg);
  const char *bad2 = "model { real y = twice(3, 4); }";
  diag_init(&d);
  prog = parse_string(bad2, strlen(bad2), "m.ppl", &d);
  cp = prog ? check_program(prog, "m.ppl", 1, &h, &d) : NULL;
  tap_streq(cp ? "" : d.msg, "m.ppl:1:18: twice expects 1 argument, got 2", "host arity");
  const char *bad3 = "model { vector[2] v; real y = twice(v); }";
  diag_init(&d);
  prog = parse_string(bad3, strlen(bad3), "m.ppl", &d);
  cp = prog ? check_program(prog, "m.ppl", 1, &h, &d) : NULL;
  tap_streq(cp ? "" : d.msg, "m.ppl:1:37: argument 1 of 'twice' must be real, got vector",
            "host argument type");
}

int main(void) {
  gc_init();
  test_bad();
  test_good();
  test_annotations();
  test_host();
  return tap_done();
}
