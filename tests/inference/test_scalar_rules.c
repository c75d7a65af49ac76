/* test_scalar_rules.c — each scalar operator and natively lowered builtin
 * gives the same value and partials through the tape and through the JIT,
 * because both come from its one rule (stdlib/scalar_rule.h).
 *
 * For every rule, at 4000 points (every pair of the awkward values 0, -0,
 * +-1, +-0.5, +-2, +-3, +-1e-308, +-1e308, the edges of exp's range, +-inf,
 * NaN, then random values over the whole range of doubles and small
 * integers, which pow and fmod treat specially):
 *  - the description is well formed;
 *  - the JIT's code for the rule (jit_rule_compile: jg_emit_rule, which
 *    emits it into programs), the inline C (sr_NAME, sr_NAME_d) and the
 *    description's evaluator (sr_eval) agree bit for bit: value and partials;
 *  - the interpreter's tape path agrees: op_binary_ad / op_unary_ad for the
 *    operators (and op_binary / op_unary without a tape), builtin_eval_ad for
 *    the builtins (every name sr_builtin maps to the rule), the partials read
 *    back by a backward sweep.  The sweep adds each partial into an adjoint
 *    of +0, so a partial of -0 arrives as +0: zeros are compared as numbers,
 *    everything else by its bits (NaN equals NaN).
 * Rules with a domain (log_mix's theta, log1m's argument) give ok: the
 * interpreter reports an error exactly where it is false.
 * And a program using every operator and builtin compiles with them inline
 * (no runtime call) and gives the interpreter's log density and gradient bit
 * for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "api/ppl.h"
#include "ir/interp_ops.h"
#include "ir/jit.h"
#include "ppl_config.h"
#include "stdlib/builtins.h"
#include "stdlib/rng.h"
#include "stdlib/scalar_rule.h"

#define NPTS 4000

static bool same_bits(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return memcmp(&a, &b, sizeof a) == 0;
}
/* after a sweep: -0 has become +0 */
static bool same_swept(double a, double b) { return (a == 0 && b == 0) || same_bits(a, b); }

/* the inline C of every rule, by its index */
typedef double (*ValFn)(double, double, double);
typedef void (*DFn)(double, double, double, double, double *, double *, double *);
typedef bool (*OkFn)(double, double, double);
#define SR_FNS(name, nargs, v, da, db, dc, ok)                                                    \
  [SR_##name] = {sr_##name##3, sr_##name##_d3, sr_##name##_ok},
static const struct {
  ValFn val;
  DFn d;
  OkFn ok;
} c_fns[SR_NRULES] = {SR_RULES(SR_FNS)};
#undef SR_FNS

/* the interpreter's operators and the builtins each rule stands for */
static const struct {
  SrRule rule;
  int op; /* IrOp, -1 for none */
  const char *builtins[3];
} uses[] = {
    {SR_add, OP_ADD, {0}},           {SR_sub, OP_SUB, {0}},
    {SR_mul, OP_MUL, {0}},           {SR_div, OP_DIV, {0}},
    {SR_pow, OP_POW, {"pow"}},       {SR_mod, OP_MOD, {"fmod"}},
    {SR_neg, OP_NEG, {0}},           {SR_exp, -1, {"exp"}},
    {SR_log, -1, {"log"}},           {SR_log1p, -1, {"log1p"}},
    {SR_expm1, -1, {"expm1"}},       {SR_sqrt, -1, {"sqrt"}},
    {SR_square, -1, {"square"}},     {SR_inv, -1, {"inv"}},
    {SR_inv_sqrt, -1, {"inv_sqrt"}}, {SR_inv_square, -1, {"inv_square"}},
    {SR_fabs, -1, {"fabs", "abs"}},
    {SR_log1p_exp, -1, {"log1p_exp"}}, {SR_inv_logit, -1, {"inv_logit"}},
    {SR_log_inv_logit, -1, {"log_inv_logit"}}, {SR_log1m_inv_logit, -1, {"log1m_inv_logit"}},
    {SR_logit, -1, {"logit"}},       {SR_log1m, -1, {"log1m"}},
    {SR_inv_cloglog, -1, {"inv_cloglog"}}, {SR_log_sum_exp, -1, {"log_sum_exp"}},
    {SR_log_mix, -1, {"log_mix"}},   {SR_fma, -1, {"fma"}},
    {SR_fmin, -1, {"fmin"}},         {SR_fmax, -1, {"fmax"}},
    {SR_lgamma, -1, {"lgamma"}},     {SR_digamma, -1, {"digamma"}},
    {SR_lbeta, -1, {"lbeta"}},       {SR_lchoose, -1, {"lchoose", "binomial_coefficient_log"}},
    {SR_sin, -1, {"sin"}},           {SR_cos, -1, {"cos"}},
    {SR_tan, -1, {"tan"}},           {SR_asin, -1, {"asin"}},
    {SR_acos, -1, {"acos"}},         {SR_atan, -1, {"atan"}},
    {SR_sinh, -1, {"sinh"}},         {SR_cosh, -1, {"cosh"}},
    {SR_tanh, -1, {"tanh"}},         {SR_asinh, -1, {"asinh"}},
    {SR_acosh, -1, {"acosh"}},       {SR_atanh, -1, {"atanh"}},
    {SR_erf, -1, {"erf"}},           {SR_erfc, -1, {"erfc"}},
    {SR_Phi, -1, {"Phi"}},           {SR_Phi_approx, -1, {"Phi_approx"}},
};

static const double special[] = {0.0,    -0.0,  1.0,     -1.0,    0.5,   -0.5,  2.0,
                                 -2.0,   3.0,   -3.0,    1e-308,  -1e-308, 1e308, -1e308,
                                 709.78, -745.2, INFINITY, -INFINITY, NAN};
#define NSPECIAL ((int)(sizeof special / sizeof special[0]))

/* operand k of point i: every pair of specials for a and b (c runs through
   them too, out of step), then random values; theta-like operands of rules
   with a domain (log_mix's, log1m's) are inside it half the time */
static double point(int k, int i, Rng *r) {
  if (i < NSPECIAL * NSPECIAL)
    return special[k == 0 ? i % NSPECIAL : k == 1 ? i / NSPECIAL : (i * 7 + 3) % NSPECIAL];
  if (k == 0 && rng_uniform(r) < 0.5) return rng_uniform(r);
  double u = rng_uniform(r);
  if (u < 0.2) return floor(10 * (rng_uniform(r) - 0.5)); /* pow's integer exponents */
  if (u < 0.6) return 20 * (rng_uniform(r) - 0.5);
  double m = pow(10.0, -300 + 600 * rng_uniform(r));
  return rng_uniform(r) < 0.5 ? -m : m;
}

/* value and partials by the interpreter on the tape: the operator (op >= 0)
   or the builtin; false if it reported an error */
static bool by_tape(Tape *T, int op, const Builtin *bi, int nargs, const double *x, double *v,
                    double *d, double *v_plain) {
  tape_reset(T);
  double a = x[0], b = x[1];
  Value va = val_real(a), vb = val_real(b), vc = val_real(x[2]), out, plain;
  va.ad = tape_var(T, a);
  vb.ad = tape_var(T, b);
  vc.ad = tape_var(T, x[2]);
  char err[200];
  bool ok;
  if (op >= 0) {
    ok = nargs == 2 ? op_binary_ad(T, op, va, vb, &out, err, sizeof err)
                    : op_unary_ad(T, op, va, &out, err, sizeof err);
    ok = ok && (nargs == 2 ? op_binary(op, val_real(a), val_real(b), &plain, err, sizeof err)
                           : op_unary(op, val_real(a), &plain, err, sizeof err));
  } else {
    BuiltinCtx cx = {0};
    Value args[3] = {va, vb, vc};
    ok = builtin_eval_ad(bi, &cx, T, nargs, args, &out, err, sizeof err);
    Value pargs[3] = {val_real(a), val_real(b), val_real(x[2])};
    ok = ok && bi->eval(bi, &cx, nargs, pargs, &plain, err, sizeof err);
  }
  if (!ok || out.k != V_REAL || plain.k != V_REAL) return false;
  *v = out.r;
  *v_plain = plain.r;
  double *adj = calloc(tape_size(T) + 1, sizeof(double));
  tape_backward(T, out.ad, adj);
  d[0] = adj[va.ad];
  d[1] = nargs >= 2 ? adj[vb.ad] : 0;
  d[2] = nargs == 3 ? adj[vc.ad] : 0;
  free(adj);
  return true;
}

static void check_rule(SrRule k, Rng *r, Tape *T) {
  const ScalarRule *s = &sr_rules[k];
  tap_ok(sr_valid(s), "%s: its description is well formed", s->name);
  int n = NPTS;
  /* x[0..3): operands; v, d[0..3) partials, ok: the JIT's */
  double *buf = malloc(sizeof(double) * 8 * (size_t)n), *x[3], *v, *d[3], *okv;
  for (int j = 0; j < 3; j++) x[j] = buf + j * n;
  v = buf + 3 * n;
  for (int j = 0; j < 3; j++) d[j] = buf + (4 + j) * n;
  okv = buf + 7 * n;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < 3; j++) x[j][i] = j < s->nargs ? point(j, i, r) : 0;
  const char *why = "";
  JitKernel *jk = jit_rule_compile(s, &why);
  if (!tap_ok(jk != NULL, "%s: the rule compiles on its own (%s)", s->name, jk ? "" : why)) {
    free(buf);
    return;
  }
  jit_rule_fn(jk)(n, x[0], x[1], x[2], v, d[0], d[1], d[2], okv);
  int bad = -1, finite = 0, inside = 0;
  for (int i = 0; i < n && bad < 0; i++) {
    double a = x[0][i], b = x[1][i], c = x[2][i], rd[3], cd[3];
    bool rok;
    double rv = sr_eval3(s, a, b, c, &rd[0], &rd[1], &rd[2], &rok);
    double cv = c_fns[k].val(a, b, c);
    c_fns[k].d(a, b, c, cv, &cd[0], &cd[1], &cd[2]);
    bool cok = c_fns[k].ok(a, b, c);
    finite += isfinite(rv) && isfinite(rd[0]) && isfinite(rd[1]) && isfinite(rd[2]);
    inside += rok;
    bool same = same_bits(v[i], rv) && same_bits(cv, rv) && (okv[i] != 0) == rok && cok == rok;
    for (int j = 0; j < 3; j++) same = same && same_bits(d[j][i], rd[j]) && same_bits(cd[j], rd[j]);
    if (!same) {
      bad = i;
      tap_diag("a %.17g b %.17g c %.17g: jit %.17g %.17g %.17g %.17g ok %g, C %.17g %.17g %.17g "
               "%.17g ok %d, description %.17g %.17g %.17g %.17g ok %d",
               a, b, c, v[i], d[0][i], d[1][i], d[2][i], okv[i], cv, cd[0], cd[1], cd[2], cok, rv,
               rd[0], rd[1], rd[2], rok);
    }
  }
  tap_ok(bad < 0,
         "%s: JIT code = inline C = description, bit for bit, at %d points (%d finite, %d in its "
         "domain)",
         s->name, n, finite, inside);

  for (size_t u = 0; u < sizeof uses / sizeof uses[0]; u++) {
    if (uses[u].rule != k) continue;
    for (int w = -1; w < 3; w++) {
      int op = w < 0 ? uses[u].op : -1;
      const char *name = w >= 0 ? uses[u].builtins[w] : NULL;
      if (w < 0 ? op < 0 : !name) continue;
      const Builtin *bi = name ? builtin_lookup(name) : NULL;
      if (name) {
        tap_ok(bi && sr_builtin(name) == s, "builtin '%s' is lowered by rule %s", name, s->name);
        if (!bi) continue;
      }
      bad = -1;
      int errs = 0, wrong_err = 0;
      for (int i = 0; i < n && bad < 0; i++) {
        double tv, td[3], pv, xi[3] = {x[0][i], x[1][i], x[2][i]};
        if (!by_tape(T, op, bi, s->nargs, xi, &tv, td, &pv)) {
          /* the interpreter reports an error exactly where the rule's ok is false */
          errs++;
          wrong_err += okv[i] != 0;
          continue;
        }
        wrong_err += okv[i] == 0;
        bool same = same_bits(tv, v[i]) && same_bits(pv, v[i]);
        for (int j = 0; j < 3; j++) same = same && same_swept(td[j], d[j][i]);
        if (!same) {
          bad = i;
          tap_diag("a %.17g b %.17g c %.17g: tape %.17g (plain %.17g) %.17g %.17g %.17g, jit "
                   "%.17g %.17g %.17g %.17g",
                   xi[0], xi[1], xi[2], tv, pv, td[0], td[1], td[2], v[i], d[0][i], d[1][i],
                   d[2][i]);
        }
      }
      tap_ok(bad < 0 && wrong_err == 0,
             "%s %s: the tape's value and partials = the JIT's at %d points (%d errors, all where "
             "ok is false)",
             s->name, name ? name : "operator", n, errs);
    }
  }
  jit_kernel_free(jk);
  free(buf);
}

/* ---- a program with every operator and builtin, compiled vs interpreted ---- */

static const char *prog =
    "model {\n"
    "  real a ~ normal(0.5, 1);\n"
    "  real b ~ normal(-0.3, 1);\n"
    "  real c = exp(a) + 2;\n"
    "  target += a + b - a * b + a / c - b ^ 2 + c ^ a + fmod(a, 0.7) - (-b);\n"
    "  target += log(c) + log1p(c) + expm1(a) * 0.1 + sqrt(c) + square(b) * 0.01;\n"
    "  target += inv(c) + inv_sqrt(c) + inv_square(c) + fabs(b) + abs(a) + pow(c, b);\n"
    "  real t = inv_logit(a);\n"
    "  target += log1p_exp(a) + log_inv_logit(b) + log1m_inv_logit(a) + logit(t) + log1m(t);\n"
    "  target += inv_cloglog(b) + log_sum_exp(a, b) + log_mix(t, a, b) + fma(a, b, c);\n"
    "  target += fmin(a, b) + fmax(a, b) + lgamma(c) + digamma(c) + lbeta(c, t) + lchoose(c + 3, t);\n"
    "  target += binomial_coefficient_log(c + 1, t) + sin(a) + cos(b) + tan(t) + asin(t) + acos(t);\n"
    "  target += atan(a) + sinh(b) + cosh(a) + tanh(b) + asinh(a) + acosh(c) + atanh(t * 0.5);\n"
    "  target += erf(a) + erfc(b) + Phi(a) + Phi_approx(b);\n"
    "}\n";

/* the density calls of several families (their kernels inline or their C
   kernels) and the element stores and reads of nested local arrays, all
   native too */
static const char *prog_native =
    "data { int N; real y[N]; int k[N]; int b[N]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 1);\n"
    "  real<lower=0> s ~ normal(1, 1);\n"
    "  real<lower=0, upper=1> t ~ beta(2, 2);\n"
    "  real g[N, 2];\n"
    "  vector[2] h[N];\n"
    "  for (n in 1:N) {\n"
    "    g[n, 1] = normal_lpdf(y[n] | mu, s);\n"
    "    g[n, 2] = student_t_lpdf(y[n] | 4, mu, s) + cauchy_lpdf(y[n] | mu, s);\n"
    "    h[n][1] = poisson_log_lpmf(k[n] | mu) + binomial_logit_lpmf(k[n] | 10, mu)\n"
    "              + poisson_lpmf(k[n] | s);\n"
    "    h[n][2] = gamma_lpdf(s | 2, 1 + t) + lognormal_lpdf(s | mu, 1)\n"
    "              + neg_binomial_2_lpmf(k[n] | s, 2) + bernoulli_logit_lpmf(b[n] | mu);\n"
    "  }\n"
    "  for (n in 1:N) target += log_mix(t, g[n, 1], g[n][2]) + log_sum_exp(h[n][1], h[n, 2]);\n"
    "}\n";
static const char *data_native =
    "{\"N\": 4, \"y\": [0.3, -1.1, 2.5, 0.0], \"k\": [0, 3, 7, 1], \"b\": [0, 1, 1, 0]}";

/* builtins of containers and density calls of containers, all native:
   element-wise rules over vectors, log_sum_exp and sum, softmax and
   log_softmax, NAME_lpdf / NAME_lpmf of a stored-into local vector, data
   vectors and arrays */
static const char *prog_cont =
    "data { int N; vector[N] y; real z[N]; int k[N]; }\n"
    "model {\n"
    "  real mu ~ normal(0, 1);\n"
    "  real<lower=0> s ~ lognormal(0, 1);\n"
    "  vector[N] m ~ normal(mu, 2);\n"
    "  vector[N] r;\n"
    "  for (n in 1:N) r[n] = y[n] - m[n];\n"
    "  target += normal_lpdf(r | 0, s) + normal_lpdf(y | m, s) + cauchy_lpdf(z | mu, s)\n"
    "            + poisson_log_lpmf(k | m) + student_t_lpdf(y | 3, m, s);\n"
    "  target += log_sum_exp(m) + log_sum_exp(z) + sum(log1p_exp(m)) + sum(exp(r));\n"
    "  target += sum(log_softmax(m) .* y) + sum(softmax(r) .* y) + sum(inv_logit(m) .* square(r))\n"
    "            + sum(lgamma(exp(m)));\n"
    "}\n";
static const char *data_cont = "{\"N\": 4, \"y\": [0.3, -1.1, 2.5, 0.0], \"z\": [1.5, -0.2, 0.7, 3.0], "
                               "\"k\": [0, 3, 7, 1]}";

static ppl_model *load_src(ppl_context *cx, const char *src, const char *data) {
  ppl_model *m = NULL;
  if (ppl_compile_string(cx, src, "rules.ppl", &m) != PPL_OK) return NULL;
  if (ppl_set_data_json(m, data, "data.json") != PPL_OK) {
    ppl_model_free(m);
    return NULL;
  }
  return m;
}

/* same bits, or (tol > 0) within tol relative: where a sum (target, an
   adjoint) gathers several terms, the compiled code may add them in another
   order than the interpreter and its tape */
static bool close_to(double a, double b, double tol) {
  if (tol == 0 || !isfinite(a) || !isfinite(b)) return same_bits(a, b);
  return fabs(a - b) <= tol * fmax(1, fabs(b));
}

/* ncalls: the runtime call sites expected to be left (`ppl run --verbose`'s count) */
static void check_program(Rng *r, const char *src, const char *data, int dim, double tol,
                          int ncalls) {
  ppl_config jc, ic;
  ppl_config_default(&jc);
  ppl_config_default(&ic);
  ic.no_jit = 1;
  ppl_context *cj = ppl_context_new(&jc), *ci = ppl_context_new(&ic);
  ppl_model *mj = load_src(cj, src, data), *mi = load_src(ci, src, data);
  if (!tap_ok(mj && mi, "the program compiles: %s", ppl_errmsg(mj ? ci : cj))) goto done;
  const char *ir = ppl_model_llvm_ir(mj);
  const char *calls = ppl_model_runtime_calls(mj);
  tap_ok(ir && !strstr(ir, "@ppl_jit_op(") == (ncalls == 0),
         "every operator and builtin is compiled inline (no runtime call but the declarations of "
         "local arrays)%s", ir ? "" : ppl_errmsg(cj));
  char want[64];
  snprintf(want, sizeof want, "backend: %d runtime call site%s in", ncalls, ncalls == 1 ? "" : "s");
  tap_ok(calls && strstr(calls, want) && (ncalls == 0 || strstr(calls, "a container declaration")),
         "the runtime calls left are %d declarations of local arrays:\n%s", ncalls, calls);
  int bad = -1, n = 500;
  for (int i = 0; i < n && bad < 0; i++) {
    double th[8], l1 = 0, l2 = 0, g1[8] = {0}, g2[8] = {0};
    for (int j = 0; j < dim; j++) th[j] = 4 * (rng_uniform(r) - 0.5);
    ppl_status o1 = ppl_log_density_gradient(mj, th, (size_t)dim, &l1, g1);
    ppl_status o2 = ppl_log_density_gradient(mi, th, (size_t)dim, &l2, g2);
    bool same = o1 == o2 && close_to(l1, l2, tol);
    for (int j = 0; j < dim; j++) same = same && close_to(g1[j], g2[j], tol);
    if (!same) {
      bad = i;
      tap_diag("theta %.17g %.17g %.17g: jit %.17g %.17g %.17g %.17g, interpreter %.17g %.17g "
               "%.17g %.17g",
               th[0], th[1], th[2], l1, g1[0], g1[1], g1[2], l2, g2[0], g2[1], g2[2]);
    }
  }
  tap_ok(bad < 0, "compiled log density and gradient = the interpreter's %s, at %d points",
         tol > 0 ? "to 1e-12" : "bit for bit", n);
done:
  if (mj) ppl_model_free(mj);
  if (mi) ppl_model_free(mi);
  ppl_context_free(cj);
  ppl_context_free(ci);
}

int main(void) {
#if !PPL_HAVE_LLVM
  printf("1..0 # SKIP ppl was built without LLVM (-Djit=disabled)\n");
  return 0;
#endif
  gc_init();
  Rng r;
  rng_seed(&r, 20261207, 0);
  Tape *T = tape_new();
  for (int k = 0; k < SR_NRULES; k++) check_rule((SrRule)k, &r, T);
  int names = 0, found = 0;
  for (size_t u = 0; u < sizeof uses / sizeof uses[0]; u++)
    for (int w = 0; w < 3 && uses[u].builtins[w]; w++, names++)
      found += sr_builtin(uses[u].builtins[w]) == &sr_rules[uses[u].rule];
  tap_ok(found == names && names == 46 && !sr_builtin("tgamma") && !sr_builtin("log1m_exp") &&
             !sr_builtin("trigamma"),
         "sr_builtin knows the %d lowered builtins (%d) and no other", names, found);
  check_program(&r, prog, "{}", 2, 0, 0);
  check_program(&r, prog_native, data_native, 3, 1e-12, 2);
  check_program(&r, prog_cont, data_cont, 6, 1e-12, 0);
  return tap_done();
}
