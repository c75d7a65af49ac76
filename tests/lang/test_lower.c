/* test_lower.c — lowering to IR (ir/lower.c) and the IR listing (ir/print.c).
 *
 * Golden listings: the expected texts below were reviewed instruction by
 * instruction against the IR semantics of ir/ir.h (short-circuit && and ||
 * through IR_IF, int -> real promotion by IR_MOVE, compound assignment through
 * IR_INDEX + IR_BINARY + IR_STORE, for-each through an index loop).  Then
 * structural facts of the lowered programs, and end-to-end runs through the
 * interpreter whose results were worked out by hand.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../ir/interp.h"
#include "../../lang/check.h"
#include "tap.h"

static const char *const src_es =
  "data {\n"
  "  int J;\n"
  "  real y[J];\n"
  "  real<lower=0> sigma[J];\n"
  "}\n"
  "model {\n"
  "  real mu ~ normal(0, 5);\n"
  "  real<lower=0> tau ~ cauchy(0, 5);\n"
  "  vector[J] eta ~ normal(0, 1);\n"
  "  vector[J] theta = mu + tau * eta;\n"
  "  y ~ normal(theta, sigma);\n"
  "}\n"
  "generated {\n"
  "  real y_rep[J] = normal_rng(theta, sigma);\n"
  "}\n";

static const char *const ir_es =
  "func main  (registers: %0 J:int, %1 y:real[], %2:real, %3 sigma:real[], %4:real, %5:real, %6 mu:real, %7:real, %8:real, %9:real, %10 tau:real, %11:real, %12:real, %13 eta:vector, %14:vector, %15:vector, %16 theta:vector, %17:real[], %18 y_rep:real[])\n"
  "data:\n"
  "  %0 = data J : int\n"
  "  %1 = data y : real[] sizes(%0)\n"
  "  %2 = const 0.0 : real\n"
  "  %3 = data sigma : real[] <lower=%2> sizes(%0)\n"
  "model:\n"
  "  %4 = const 0.0 : real\n"
  "  %5 = const 5.0 : real\n"
  "  %6 = sample mu ~ normal(%4, %5) : real\n"
  "  %7 = const 0.0 : real\n"
  "  %8 = const 0.0 : real\n"
  "  %9 = const 5.0 : real\n"
  "  %10 = sample tau ~ cauchy(%8, %9) : real <lower=%7>\n"
  "  %11 = const 0.0 : real\n"
  "  %12 = const 1.0 : real\n"
  "  %13 = sample eta ~ normal(%11, %12) : vector sizes(%0)\n"
  "  %14 = %10 * %13 : vector\n"
  "  %15 = %6 + %14 : vector\n"
  "  %16 = decl theta : vector sizes(%0)\n"
  "  %16 = move %15 : vector\n"
  "  observe %1 ~ normal(%16, %3)\n"
  "generated:\n"
  "  %17 = normal_rng(%16, %3) : real[]\n"
  "  %18 = decl y_rep : real[] sizes(%0)\n"
  "  %18 = move %17 : real[]\n"
  "outputs: mu (latent %6), tau (latent %10), eta (latent %13), theta (derived %16), y_rep (generated %18)\n";

static const char *const src_c =
  "int count(int n) {\n"
  "  int c = 0;\n"
  "  while (c < n && c != 7) c += 1;\n"
  "  return c;\n"
  "}\n"
  "data {\n"
  "  int N;\n"
  "  real xs[N];\n"
  "  int k = count(N) * 2;\n"
  "}\n"
  "model {\n"
  "  real t = 0;\n"
  "  for (x in xs) t += x;\n"
  "  vector[N] a;\n"
  "  for (i in 1:N) {\n"
  "    a[i] = i;\n"
  "    a[i] *= 2;\n"
  "    if (i == 3) break;\n"
  "  }\n"
  "  string z = \"s=\" + (t > 1 ? \"big\" : \"small\");\n"
  "  print(\"t = \", t);\n"
  "  observe(normal(0, 1), a[1]);\n"
  "  factor(-t);\n"
  "  condition(k > 0);\n"
  "}\n";

static const char *const ir_c =
  "func count(%0 n:int) -> int  (registers: %1:int, %2 c:int, %3:bool, %4:bool, %5:int, %6:bool, %7:int)\n"
  "  %2 = const 0 : int\n"
  "  while {\n"
  "    %3 = %2 < %0 : bool\n"
  "    if %3 {\n"
  "      %5 = const 7 : int\n"
  "      %3 = %2 != %5 : bool\n"
  "    }\n"
  "  } test %3 {\n"
  "    %7 = const 1 : int\n"
  "    %2 = %2 + %7 : int\n"
  "  }\n"
  "  return %2\n"
  "\n"
  "func main  (registers: %0 N:int, %1 xs:real[], %2:int, %3:int, %4:int, %5 k:int, %6:real, %7 t:real, %8:int, %9:int, %10:int, %11 x:real, %12 a:vector, %13:int, %14 i:int, %15:real, %16:real, %17:int, %18:real, %19:int, %20:bool, %21:string, %22:int, %23:bool, %24:string, %25:string, %26:string, %27:string, %28 z:string, %29:string, %30:int, %31:real, %32:real, %33:real, %34:real, %35:int, %36:bool)\n"
  "data:\n"
  "  %0 = data N : int\n"
  "  %1 = data xs : real[] sizes(%0)\n"
  "  %2 = call count(%0) : int\n"
  "  %3 = const 2 : int\n"
  "  %5 = %2 * %3 : int\n"
  "model:\n"
  "  %7 = const 0.0 : real\n"
  "  %8 = size(%1) : int\n"
  "  %9 = const 1 : int\n"
  "  for %10 in %9 .. %8 {\n"
  "    %11 = %1[%10] : real\n"
  "    %7 = %7 + %11 : real\n"
  "  }\n"
  "  %12 = decl a : vector sizes(%0)\n"
  "  %13 = const 1 : int\n"
  "  for %14 in %13 .. %0 {\n"
  "    %15 = move %14 : real\n"
  "    %12[%14] = %15\n"
  "    %16 = %12[%14] : real\n"
  "    %17 = const 2 : int\n"
  "    %18 = %16 * %17 : real\n"
  "    %12[%14] = %18\n"
  "    %19 = const 3 : int\n"
  "    %20 = %14 == %19 : bool\n"
  "    if %20 {\n"
  "      break\n"
  "    }\n"
  "  }\n"
  "  %21 = const \"s=\" : string\n"
  "  %22 = const 1 : int\n"
  "  %23 = %7 > %22 : bool\n"
  "  if %23 {\n"
  "    %24 = const \"big\" : string\n"
  "  } else {\n"
  "    %24 = const \"small\" : string\n"
  "  }\n"
  "  %28 = %21 + %24 : string\n"
  "  %29 = const \"t = \" : string\n"
  "  print(%29, %7)\n"
  "  %30 = const 1 : int\n"
  "  %31 = %12[%30] : real\n"
  "  %32 = const 0.0 : real\n"
  "  %33 = const 1.0 : real\n"
  "  observe %31 ~ normal(%32, %33)\n"
  "  %34 = -%7 : real\n"
  "  factor %34\n"
  "  %35 = const 0 : int\n"
  "  %36 = %5 > %35 : bool\n"
  "  condition %36\n"
  "outputs: t (derived %7), a (derived %12), z (derived %28)\n";

static const char *const src_d =
  "data {\n"
  "  int K;\n"
  "  vector<lower=0>[K] alpha;\n"
  "}\n"
  "model {\n"
  "  simplex[K] p ~ dirichlet(alpha);\n"
  "  matrix[2, 2] m = [[1, 2], [3, 4.5]];\n"
  "  real arr[3] = {1, 2, 3};\n"
  "  row_vector[2] r = m[:, 1]';\n"
  "  for (i in 1:K) {\n"
  "    int<lower=0, upper=1> z ~ bernoulli(p[i]);\n"
  "  }\n"
  "  vector[2] w = p[2:3] + p[:2] - p[2:];\n"
  "}\n";

static const char *const ir_d =
  "func main  (registers: %0 K:int, %1:real, %2 alpha:vector, %3 p:vector, %4:int, %5:int, %6:real, %7:real, %8:row_vector, %9:real, %10:real, %11:row_vector, %12:matrix, %13 m:matrix, %14:int, %15:int, %16:int, %17:int, %18:int[], %19:real[], %20 arr:real[], %21:int, %22:int, %23:vector, %24:row_vector, %25 r:row_vector, %26:int, %27 i:int, %28:int, %29:int, %30:real, %31 z:int, %32:int, %33:int, %34:int, %35:vector, %36:int, %37:vector, %38:vector, %39:int, %40:vector, %41:vector, %42 w:vector)\n"
  "data:\n"
  "  %0 = data K : int\n"
  "  %1 = const 0.0 : real\n"
  "  %2 = data alpha : vector <lower=%1> sizes(%0)\n"
  "model:\n"
  "  %3 = sample p ~ dirichlet(%2) : vector <simplex> sizes(%0)\n"
  "  %4 = const 2 : int\n"
  "  %5 = const 2 : int\n"
  "  %6 = const 1.0 : real\n"
  "  %7 = const 2.0 : real\n"
  "  %8 = [%6, %7] : row_vector\n"
  "  %9 = const 3.0 : real\n"
  "  %10 = const 4.5 : real\n"
  "  %11 = [%9, %10] : row_vector\n"
  "  %12 = [%8, %11] : matrix\n"
  "  %13 = decl m : matrix sizes(%4, %5)\n"
  "  %13 = move %12 : matrix\n"
  "  %14 = const 3 : int\n"
  "  %15 = const 1 : int\n"
  "  %16 = const 2 : int\n"
  "  %17 = const 3 : int\n"
  "  %18 = {%15, %16, %17} : int[]\n"
  "  %19 = move %18 : real[]\n"
  "  %20 = decl arr : real[] sizes(%14)\n"
  "  %20 = move %19 : real[]\n"
  "  %21 = const 2 : int\n"
  "  %22 = const 1 : int\n"
  "  %23 = %13[:, %22] : vector\n"
  "  %24 = %23' : row_vector\n"
  "  %25 = decl r : row_vector sizes(%21)\n"
  "  %25 = move %24 : row_vector\n"
  "  %26 = const 1 : int\n"
  "  for %27 in %26 .. %0 {\n"
  "    %28 = const 0 : int\n"
  "    %29 = const 1 : int\n"
  "    %30 = %3[%27] : real\n"
  "    %31 = sample z ~ bernoulli(%30) : int <lower=%28, upper=%29>\n"
  "  }\n"
  "  %32 = const 2 : int\n"
  "  %33 = const 2 : int\n"
  "  %34 = const 3 : int\n"
  "  %35 = %3[%33:%34] : vector\n"
  "  %36 = const 2 : int\n"
  "  %37 = %3[:%36] : vector\n"
  "  %38 = %35 + %37 : vector\n"
  "  %39 = const 2 : int\n"
  "  %40 = %3[%39:] : vector\n"
  "  %41 = %38 - %40 : vector\n"
  "  %42 = decl w : vector sizes(%32)\n"
  "  %42 = move %41 : vector\n"
  "outputs: p (latent %3), m (derived %13), arr (derived %20), r (derived %25), w (derived %42)\n";

static const char *const src_w =
  "real walk(real x) {\n"
  "  real s ~ normal(x, 1);\n"
  "  if (s > 2 || s < -2) return s;\n"
  "  return walk(s);\n"
  "}\n"
  "model {\n"
  "  real w = walk(0);\n"
  "}\n";

static const char *const ir_w =
  "func walk(%0 x:real) -> real stochastic  (registers: %1:real, %2 s:real, %3:bool, %4:int, %5:bool, %6:int, %7:bool, %8:real)\n"
  "  %1 = const 1.0 : real\n"
  "  %2 = sample s ~ normal(%0, %1) : real\n"
  "  %4 = const 2 : int\n"
  "  %3 = %2 > %4 : bool\n"
  "  if %3 {\n"
  "  } else {\n"
  "    %6 = const -2 : int\n"
  "    %3 = %2 < %6 : bool\n"
  "  }\n"
  "  if %3 {\n"
  "    return %2\n"
  "  }\n"
  "  %8 = call walk(%2) : real\n"
  "  return %8\n"
  "\n"
  "func main  (registers: %0:real, %1:real, %2 w:real)\n"
  "model:\n"
  "  %0 = const 0.0 : real\n"
  "  %2 = call walk(%0) : real\n"
  "outputs: w (derived %2)\n";


static IrProgram *lower_src(const char *src, const char *file, int nhost, const HostFunc *host,
                            Diag *d) {
  diag_init(d);
  Ast *prog = parse_string(src, strlen(src), file, d);
  CheckedProgram *cp = prog ? check_program(prog, file, nhost, host, d) : NULL;
  return cp ? ir_lower(cp, d) : NULL;
}

/* Compares line by line so a failure shows the first differing line. */
static void golden(const char *src, const char *file, const char *want, const char *name) {
  Diag d;
  IrProgram *p = lower_src(src, file, 0, NULL, &d);
  if (!p) {
    tap_ok(0, "%s: lowers (%s)", name, d.msg);
    return;
  }
  const char *got = ir_print(p);
  if (strcmp(got, want) == 0) {
    tap_ok(1, "%s: golden listing", name);
    return;
  }
  const char *g = got, *w = want;
  int line = 1;
  while (*g && *w) {
    const char *ge = strchr(g, '\n'), *we = strchr(w, '\n');
    size_t gl = ge ? (size_t)(ge - g) : strlen(g), wl = we ? (size_t)(we - w) : strlen(w);
    if (gl != wl || strncmp(g, w, gl) != 0) break;
    g += gl + (ge ? 1 : 0);
    w += wl + (we ? 1 : 0);
    line++;
  }
  tap_ok(0, "%s: golden listing differs at line %d", name, line);
  tap_diag("got:  %.*s", (int)(strchr(g, '\n') ? strchr(g, '\n') - g : (long)strlen(g)), g);
  tap_diag("want: %.*s", (int)(strchr(w, '\n') ? strchr(w, '\n') - w : (long)strlen(w)), w);
}

/* Counts instructions of an opcode in a block, nested blocks included. */
static int count_op(const IrBlock *b, int op) {
  int n = 0;
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    n += in->op == op;
    n += count_op(&in->then_b, op) + count_op(&in->else_b, op) + count_op(&in->body, op) +
         count_op(&in->cond_b, op);
  }
  return n;
}

static bool positions_set(const IrBlock *b) {
  for (int i = 0; i < b->n; i++) {
    const IrInstr *in = &b->ins[i];
    if (in->pos.line <= 0) return false;
    if (!positions_set(&in->then_b) || !positions_set(&in->else_b) ||
        !positions_set(&in->body) || !positions_set(&in->cond_b))
      return false;
  }
  return true;
}

static void test_structure(void) {
  Diag d;
  IrProgram *p = lower_src(src_es, "es.ppl", 0, NULL, &d);
  if (!tap_ok(p != NULL, "eight schools lowers")) return;
  tap_ok(p->noutputs == 5, "5 outputs");
  const char *names[] = {"mu", "tau", "eta", "theta", "y_rep"};
  IrOutKind kinds[] = {OUT_LATENT, OUT_LATENT, OUT_LATENT, OUT_DERIVED, OUT_GENERATED};
  for (int i = 0; i < 5 && i < p->noutputs; i++)
    tap_ok(strcmp(p->outputs[i].name, names[i]) == 0 && p->outputs[i].kind == kinds[i] &&
               ty_eq(p->outputs[i].type, p->main.regtypes[p->outputs[i].reg]) &&
               strcmp(p->main.regnames[p->outputs[i].reg], names[i]) == 0,
           "output %d is %s with its register", i, names[i]);
  tap_ok(count_op(&p->data_b, IR_DATA) == 3 && count_op(&p->model_b, IR_SAMPLE) == 3 &&
             count_op(&p->model_b, IR_OBSERVE) == 1,
         "3 data reads, 3 samples, 1 observation");
  tap_ok(positions_set(&p->data_b) && positions_set(&p->model_b) && positions_set(&p->gen_b),
         "every instruction has a source position");
  tap_ok(p->main.stochastic && strcmp(p->file, "es.ppl") == 0, "main is stochastic; file kept");
  const IrInstr *tau = &p->model_b.ins[6];
  tap_ok(tau->op == IR_SAMPLE && strcmp(tau->name, "tau") == 0 && tau->con.kind == CON_LOWER &&
             tau->con.lower >= 0 && tau->con.upper == -1 && tau->dist.nparams == 2,
         "tau: SAMPLE with a lower bound register");

  p = lower_src(src_w, "w.ppl", 0, NULL, &d);
  if (!tap_ok(p != NULL, "walk lowers")) return;
  tap_ok(p->nfuncs == 1 && p->funcs[0].stochastic && p->funcs[0].nparams == 1 &&
             ty_eq(p->funcs[0].ret, ty_make(TY_REAL, 0)),
         "walk: one stochastic function of one parameter returning real");
  tap_ok(count_op(&p->funcs[0].body, IR_CALL) == 1 && count_op(&p->funcs[0].body, IR_RETURN) == 2,
         "walk calls itself once and returns on two paths");
  tap_ok(p->noutputs == 1 && p->outputs[0].kind == OUT_DERIVED,
         "latents inside functions are not outputs");

  /* latents inside loops are not outputs; non-stochastic functions are marked so */
  p = lower_src("real sq(real x) { return x * x; }\nmodel { real a = sq(2); for (i in 1:3) { real z ~ normal(0, 1); } }",
                "l.ppl", 0, NULL, &d);
  if (!tap_ok(p != NULL, "loop program lowers")) return;
  tap_ok(p->noutputs == 1 && strcmp(p->outputs[0].name, "a") == 0, "only the top-level 'a' is an output");
  tap_ok(!p->funcs[0].stochastic, "sq is not stochastic");
}

/* ---- end to end through the interpreter ---- */

typedef struct TestHandler {
  Handler h;
  double sample_value; /* every real latent takes this value */
  double loglik;
  int nsample, nobserve, nfactor;
} TestHandler;

static HandlerResult th_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                               SrcPos pos, Diag *d) {
  TestHandler *t = (TestHandler *)h;
  t->nsample++;
  *out = val_real(t->sample_value);
  return HR_CONTINUE;
}

static HandlerResult th_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  TestHandler *t = (TestHandler *)h;
  char err[256];
  double lp = 0;
  if (!dist_call_lpdf(dc, x, &lp, err, sizeof err)) {
    diag_error(d, DIAG_RUNTIME, pos, "%s", err);
    return HR_ERROR;
  }
  t->nobserve++;
  t->loglik += lp;
  return HR_CONTINUE;
}

static HandlerResult th_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  TestHandler *t = (TestHandler *)h;
  t->nfactor++;
  t->loglik += lw;
  return HR_CONTINUE;
}

static InterpState *run_src(const char *src, int nhost, const HostFunc *host, TestHandler *th,
                            Diag *d) {
  IrProgram *p = lower_src(src, "e.ppl", nhost, host, d);
  if (!p) return NULL;
  Interp *in = interp_new(p, NULL);
  if (!interp_load_data(in, NULL, d)) return NULL;
  InterpState *st = interp_start(in, 1, 1, true);
  th->h.sample = th_sample;
  th->h.observe = th_observe;
  th->h.factor = th_factor;
  if (interp_run(st, &th->h, d) != RUN_DONE) return NULL;
  return st;
}

static Value out_named(const InterpState *st, const IrProgram *p, const char *name) {
  for (int i = 0; i < p->noutputs; i++)
    if (strcmp(p->outputs[i].name, name) == 0) return interp_output(st, i);
  return val_none();
}

static double host_twice(void *ud, const double *args, int nargs, int *err) {
  *err = 0;
  return 2 * args[0] + (ud ? 0 : 0);
}

static void test_run(void) {
  /* Worked by hand:
       while: i = 1 -> n = 1; i = 2 skipped (even); i = 3 -> n = 2; i = 4; i = 5 -> n = 3, stop
       for-each over {1.5, 2.5, 3}: s = 7
       v = [1, 2, 3]', v[2] *= 10 -> [1, 20, 3]; [1, 1, 1] * v = 24
       t = n > 2 ? 1 : 0.5 = 1 (int branch promoted to real); b = false || true
       q = 7 / 2 = 3 (integer division); str = "ab"; m[2, 1] of [[1, 2], [3, 4]] = 3
       short-circuit: (1 > 2) && (1 / 0 > 0) must not divide by zero */
  const char *src =
      "model {\n"
      "  int n = 0; int i = 0;\n"
      "  while (i < 10 && n != 3) { i += 1; if (i % 2 == 0) continue; n += 1; }\n"
      "  real s = 0; for (x in {1.5, 2.5, 3}) s += x;\n"
      "  vector[3] v = [1, 2, 3]'; v[2] *= 10; real dot = [1, 1, 1] * v;\n"
      "  real t = n > 2 ? 1 : 0.5; bool b = (1 > 2) || (2 > 1); int q = 7 / 2;\n"
      "  string str = \"a\" + \"b\"; matrix[2, 2] m = [[1, 2], [3, 4]]; real m21 = m[2][1];\n"
      "  bool sc = (1 > 2) && (1 / 0 > 0);\n"
      "}\n";
  Diag d;
  TestHandler th = {0};
  IrProgram *p = lower_src(src, "e.ppl", 0, NULL, &d);
  InterpState *st = p ? run_src(src, 0, NULL, &th, &d) : NULL;
  if (!tap_ok(st != NULL, "deterministic program runs (%s)", d.msg)) return;
  Value v;
  v = out_named(st, p, "n");
  tap_ok(v.k == V_INT && v.i == 3, "while with && and continue: n = 3");
  v = out_named(st, p, "i");
  tap_ok(v.k == V_INT && v.i == 5, "while stops at i = 5 (got %s)", val_to_string(v));
  v = out_named(st, p, "s");
  tap_ok(v.k == V_REAL && v.r == 7.0, "for-each over an array literal sums to 7");
  v = out_named(st, p, "v");
  tap_ok(v.k == V_VEC && v.t->rows == 3 && v.t->d[0] == 1 && v.t->d[1] == 20 && v.t->d[2] == 3,
         "indexed compound assignment v[2] *= 10");
  v = out_named(st, p, "dot");
  tap_ok(v.k == V_REAL && v.r == 24.0, "row_vector * vector = 24");
  v = out_named(st, p, "t");
  tap_ok(v.k == V_REAL && v.r == 1.0, "ternary promotes the int branch");
  v = out_named(st, p, "b");
  tap_ok(v.k == V_BOOL && v.b, "|| is true");
  v = out_named(st, p, "q");
  tap_ok(v.k == V_INT && v.i == 3, "7 / 2 = 3 on ints");
  v = out_named(st, p, "str");
  tap_ok(v.k == V_STR && strcmp(v.s->data, "ab") == 0, "string concatenation");
  v = out_named(st, p, "m21");
  tap_ok(v.k == V_REAL && v.r == 3.0, "m[2][1] = 3");
  v = out_named(st, p, "sc");
  tap_ok(v.k == V_BOOL && !v.b, "&& short-circuits (no division by zero)");

  /* latents, observations, factors; the handler fixes mu = 0.25:
       y = 2 mu + 1 = 1.5
       log N(1 | 0.25, 1) = -0.5 log(2 pi) - 0.28125 = -1.2001885332046727
       factor(-mu) = -0.25; condition(mu > 0) holds; target += 1 */
  src = "model { real mu ~ normal(0, 1); real y = 2 * mu + 1; observe(normal(mu, 1), 1);\n"
        "  factor(-mu); condition(mu > 0); target += 1; }\n";
  TestHandler th2 = {.sample_value = 0.25};
  p = lower_src(src, "e.ppl", 0, NULL, &d);
  st = p ? run_src(src, 0, NULL, &th2, &d) : NULL;
  if (!tap_ok(st != NULL, "stochastic program runs (%s)", d.msg)) return;
  tap_ok(th2.nsample == 1 && th2.nobserve == 1, "one sample, one observation");
  v = out_named(st, p, "y");
  tap_ok(v.k == V_REAL && v.r == 1.5, "derived y = 2 mu + 1 = 1.5");
  /* condition(true) contributes 0 whether or not it reaches the handler */
  tap_near(th2.loglik, -1.2001885332046727 - 0.25 + 1, 1e-12,
           "log weight: observation + factor + target");

  /* host functions are called through a Builtin made at lowering */
  HostFunc h = {.name = "twice", .arity = 1, .fn = host_twice};
  src = "model { real y = twice(3) + 1; }";
  TestHandler th3 = {0};
  p = lower_src(src, "e.ppl", 1, &h, &d);
  st = p ? run_src(src, 1, &h, &th3, &d) : NULL;
  if (!tap_ok(st != NULL, "host program runs (%s)", d.msg)) return;
  v = out_named(st, p, "y");
  tap_ok(v.k == V_REAL && v.r == 7.0, "twice(3) + 1 = 7");
}


/* ir_program_hash: blind to comments, whitespace and the file's name; not to
 * what the program computes. */
static void test_hash(void) {
  Diag d;
  const char *other =
      "// eight schools, reformatted\n"
      "data { int J; real y[J];\n"
      "       real<lower=0> sigma[J]; }\n"
      "model {\n"
      "  real mu ~ normal(0, 5);   /* the mean */\n"
      "  real<lower=0> tau ~ cauchy(0, 5);\n"
      "  vector[J] eta ~ normal(0, 1);\n"
      "  vector[J] theta = mu + tau * eta;\n"
      "  y ~ normal(theta, sigma);\n"
      "}\n"
      "generated { real y_rep[J] = normal_rng(theta, sigma); }\n";
  IrProgram *a = lower_src(src_es, "es.ppl", 0, NULL, &d), *b = lower_src(other, "b.ppl", 0, NULL, &d);
  tap_ok(a && b && ir_program_hash(a) == ir_program_hash(b), "hash: comments, layout and file name do not count");
  char *changed = gc_strdup(src_es);
  char *five = strstr(changed, "cauchy(0, 5)");
  five[10] = '4';
  IrProgram *c = lower_src(changed, "es.ppl", 0, NULL, &d);
  tap_ok(a && c && ir_program_hash(a) != ir_program_hash(c), "hash: a changed constant changes it");
  /* FNV-1a 64 of the listing, computed here byte by byte */
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *q = ir_es; *q; q++) h = (h ^ (unsigned char)*q) * 0x100000001b3ull;
  tap_ok(a && ir_program_hash(a) == h, "hash: FNV-1a 64 of the IR listing");
}

int main(void) {
  gc_init();
  golden(src_es, "es.ppl", ir_es, "eight schools");
  golden(src_c, "c.ppl", ir_c, "function, while, &&, for-each, compound stores, ternary");
  golden(src_d, "d.ppl", ir_d, "literals, slices, constrained and looped latents");
  golden(src_w, "w.ppl", ir_w, "recursive stochastic function, ||");
  test_structure();
  test_run();
  test_hash();
  return tap_done();
}
