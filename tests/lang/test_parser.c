/* test_parser.c — the parser against hand-written trees and exact messages.
 *
 * Good programs are compared through ast_dump (format documented in
 * parser/ast.c); expected dumps were written by hand from the grammar rules
 * (precedence, associativity), not produced by the parser.  Malformed inputs
 * are compared on the full "file:line:col: message" text and the DIAG code.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/value.h"
#include "parser/ast.h"
#include "tap.h"

typedef struct {
  const char *src, *dump;
} Good;

static const Good good[] = {
    {"", "(program)"},
    {"// only a comment\n/* and ** a block\n comment */ ", "(program)"},
    {"data { int<lower=0> N; real y[N]; array[N] real z; vector[N] v; matrix[N, K] X;\n"
     "       string q; int k = N * 2; }",
     "(program (block data (decl int<lower=0> N) (decl real y [N]) (decl real z [N]) "
     "(decl vector[N] v) (decl matrix[N,K] X) (decl string q) (decl int k = (* N 2))))"},
    {"model { real mu ~ normal(0, 10); real<lower=0> s ~ cauchy(0, 5);\n"
     "  vector<lower=0>[K] w ~ exponential(1); simplex[K] p ~ dirichlet(a); }",
     "(program (block model (decl real mu ~ (call normal 0 10)) "
     "(decl real<lower=0> s ~ (call cauchy 0 5)) (decl vector<lower=0>[K] w ~ "
     "(call exponential 1)) (decl simplex[K] p ~ (call dirichlet a))))"},
    {"model { y ~ normal(mu, s); target += -0.5 * mu^2; observe(normal(0, 1), z[1]); }",
     "(program (block model (~ y (call normal mu s)) (target+= (* (- 0.5) (^ mu 2))) "
     "(call observe (call normal 0 1) (index z 1))))"},
    {"model { for (i in 1:N) { real x ~ normal(mu, 1); } while (c) { c = f(c); } }",
     "(program (block model (for i 1 N (stmts (decl real x ~ (call normal mu 1)))) "
     "(while c (stmts (= c (call f c))))))"},
    {"generated { real y_rep[N] = normal_rng(mu, s); }",
     "(program (block generated (decl real y_rep [N] = (call normal_rng mu s))))"},
    {"generated quantities { int k = 1; }", "(program (block generated (decl int k = 1)))"},
    {"real f(real x, int n) { return x * n; }",
     "(program (fun real f (real x) (int n) (stmts (return (* x n)))))"},
    {"functions { real g(vector v) { return sum(v); } void h() { } } model { }",
     "(program (fun real g (vector v) (stmts (return (call sum v)))) (fun void h (stmts)) "
     "(block model))"},
    {"real[] g(array[,] int a, real[,] b, vector[] c, array[] vector d) { return {1.0}; }",
     "(program (fun real[] g (int[,] a) (real[,] b) (vector[] c) (vector[] d) "
     "(stmts (return (array 1.0)))))"},
    {"array[] real f() { return {1.0}; } matrix g(matrix m) { return m; }",
     "(program (fun real[] f (stmts (return (array 1.0)))) (fun matrix g (matrix m) "
     "(stmts (return m))))"},
    {"model { x = a + b * c - d / e % f; }",
     "(program (block model (= x (- (+ a (* b c)) (% (/ d e) f)))))"},
    {"model {x=a||b&&c==d<e+f*g;}",
     "(program (block model (= x (|| a (&& b (== c (< d (+ e (* f g)))))))))"},
    {"model { x = -2^2; y = a^b^c; z = 2^-1; w = -a * b; }",
     "(program (block model (= x (- (^ 2 2))) (= y (^ a (^ b c))) (= z (^ 2 (- 1))) "
     "(= w (* (- a) b))))"},
    {"model { x = a ? b : c ? d : e; y = (a ? b : c) + 1; z = a || b ? c : d; }",
     "(program (block model (= x (? a b (? c d e))) (= y (+ (? a b c) 1)) "
     "(= z (? (|| a b) c d))))"},
    {"model { x = a < b <= c > d >= e; y = a == b != c; }",
     "(program (block model (= x (>= (> (<= (< a b) c) d) e)) (= y (!= (== a b) c))))"},
    {"model { z = !a + +b - -c; }", "(program (block model (= z (- (+ (! a) (+ b)) (- c)))))"},
    {"model { x = a .* b ./ c %/% d; }",
     "(program (block model (= x (%/% (./ (.* a b) c) d))))"},
    {"model { w = v[2:3, :, 1:, :n]; }",
     "(program (block model (= w (index v (slice 2 3) (slice _ _) (slice 1 _) "
     "(slice _ n)))))"},
    {"model { y = m[i][j] + m[i, j] + x' * x; }",
     "(program (block model (= y (+ (+ (index (index m i) j) (index m i j)) (* (' x) x)))))"},
    {"model { q = [1, 2.5, .5, 2., 1e-3, 2E+5]; b = true || false; "
     "s = \"a\\tb\\n\\\"c\\\"\\\\\"; }",
     "(program (block model (= q (rowvec 1 2.5 0.5 2.0 0.001 2e+05)) (= b (|| true false)) "
     "(= s \"a\\tb\\n\\\"c\\\"\\\\\")))"},
    {"model { a = {1, 2, 3}; m = [[1, 2], [3, 4]]; n = {{1}, {2}}; }",
     "(program (block model (= a (array 1 2 3)) (= m (rowvec (rowvec 1 2) (rowvec 3 4))) "
     "(= n (array (array 1) (array 2)))))"},
    {"model { x[i][j] += 1; m[i, j] -= 2; v[2:3] *= 3; u /= 4; a .*= b; c ./= d; }",
     "(program (block model (+= (index (index x i) j) 1) (-= (index m i j) 2) "
     "(*= (index v (slice 2 3)) 3) (/= u 4) (.*= a b) (./= c d)))"},
    {"model { if (a) if (b) x = 1; else x = 2; if (c) { } else ; }",
     "(program (block model (if a (if b (= x 1) (= x 2))) (if c (stmts) (stmts))))"},
    {"void f() { while (true) { break; continue; } return; } int g() { return 1; }",
     "(program (fun void f (stmts (while true (stmts (break) (continue))) (return))) "
     "(fun int g (stmts (return 1))))"},
    {"model { for (x in xs) print(x); for (i in 1:size(v)) ; }",
     "(program (block model (for x in xs (call print x)) (for i 1 (call size v) (stmts))))"},
    {"data { real<upper=1, lower=0> p; real<lower=-1, upper=1> r;\n"
     "  real<lower=a + b * 2, upper=(c > d ? 1 : 2)> q; int<lower=1> K; }",
     "(program (block data (decl real<lower=0,upper=1> p) (decl real<lower=(- 1),upper=1> r) "
     "(decl real<lower=(+ a (* b 2)),upper=(? (> c d) 1 2)> q) (decl int<lower=1> K)))"},
    {"data { ordered[K] o; positive_ordered[K] po; unit_vector[K] u;\n"
     "  cholesky_factor_corr[K] L; cov_matrix[K] S; row_vector[K] r; bool flag; }",
     "(program (block data (decl ordered[K] o) (decl positive_ordered[K] po) "
     "(decl unit_vector[K] u) (decl cholesky_factor_corr[K] L) (decl cov_matrix[K] S) "
     "(decl row_vector[K] r) (decl bool flag)))"},
    {"data { corr_matrix[K] R; cholesky_factor_cov[K] Lc[2]; }",
     "(program (block data (decl corr_matrix[K] R) (decl cholesky_factor_cov[K] Lc [2])))"},
    {"data { real y[N, M]; array[N, M] real z; array[J] vector[K] vs; "
     "matrix<lower=0>[N, K] X[2]; }",
     "(program (block data (decl real y [N,M]) (decl real z [N,M]) (decl vector[K] vs [J]) "
     "(decl matrix<lower=0>[N,K] X [2])))"},
    {"data { int N; } model { real mu ~ normal(0, 1); if (N > 0) { real z = mu * 2; } } "
     "generated { }",
     "(program (block data (decl int N)) (block model (decl real mu ~ (call normal 0 1)) "
     "(if (> N 0) (stmts (decl real z = (* mu 2))))) (block generated))"},
    {"model { x = f() + g(h(1), {2}); y ~ std_normal(); }",
     "(program (block model (= x (+ (call f) (call g (call h 1) (array 2)))) "
     "(~ y (call std_normal))))"},
    {"model { (x - mu) / s ~ normal(0, 1); a[i] ~ normal(0, 1); }",
     "(program (block model (~ (/ (- x mu) s) (call normal 0 1)) "
     "(~ (index a i) (call normal 0 1))))"},
    {"data { int x = 9223372036854775807; real r = 1.5e300; }",
     "(program (block data (decl int x = 9223372036854775807) (decl real r = 1.5e+300)))"},
    {"data { string s = \"h\xc3\xa9llo\"; }",
     "(program (block data (decl string s = \"h\xc3\xa9llo\")))"},
    {"model { real reals = datum + model_x + int2 + iff; }",
     "(program (block model (decl real reals = (+ (+ (+ datum model_x) int2) iff))))"},
    {"model { x = v[a ? 1 : 2 : n]; for (i in c ? 1 : 2 : n) { } }",
     "(program (block model (= x (index v (slice (? a 1 2) n))) "
     "(for i (? c 1 2) n (stmts))))"},
    {"model { string t ~ lm(\"Q: \" + q + \"\\n\", 64, \"\\n\\n\"); "
     "condition(is_number(t)); }",
     "(program (block model (decl string t ~ (call lm (+ (+ \"Q: \" q) \"\\n\") 64 "
     "\"\\n\\n\")) (call condition (call is_number t))))"},
    {"model { vector v = f(x); array[] real a = {1.0}; real b[,] = {{1}}; matrix m = x; }",
     "(program (block model (decl vector v = (call f x)) (decl real a [] = (array 1.0)) "
     "(decl real b [,] = (array (array 1))) (decl matrix m = x)))"},
    {"model { { real x = 1; } ; }",
     "(program (block model (stmts (decl real x = 1)) (stmts)))"},
    /* Stan's '|' is the first comma of a density call */
    {"model { target += normal_lpdf(y | mu, 2) + poisson_lpmf(k | 3) + std_normal_lpdf(z |); }",
     "(program (block model (target+= (+ (+ (call normal_lpdf y mu 2) (call poisson_lpmf k 3)) "
     "(call std_normal_lpdf z)))))"},
    {"model { real c = normal_lcdf(a[i] | 0, 1) - normal_lccdf(b || c | 0, 1); }",
     "(program (block model (decl real c = (- (call normal_lcdf (index a i) 0 1) "
     "(call normal_lccdf (|| b c) 0 1)))))"},
};

typedef struct {
  const char *src, *msg;
} Bad;

static const Bad bad[] = {
    {"model { x = 1 * ; }", "m.ppl:1:17: unexpected ';', expecting an expression"},
    {"data {\n  int N;\n  real y[N];\n\n", "m.ppl:5:1: unexpected end of input, expecting '}'"},
    {"model {\n    @\n}", "m.ppl:2:5: invalid character '@'"},
    {"model {\n    s = \"abc;\n}", "m.ppl:2:9: unterminated string"},
    {"/* never closed\nmodel { }", "m.ppl:1:1: unterminated comment"},
    {"model { s = \"a\\qb\"; }", "m.ppl:1:15: unknown escape '\\q'"},
    {"data { int x = 9223372036854775808; }", "m.ppl:1:16: integer literal too large"},
    {"model { x = 1.5e999; }", "m.ppl:1:13: real literal too large"},
    {"model { real<lo=0> x; }", "m.ppl:1:14: expected 'lower' or 'upper', got 'lo'"},
    {"model { x; }", "m.ppl:1:9: expression statement must be a function call"},
    {"model { f(x) = 2; }", "m.ppl:1:9: left side of '=' must be a variable, optionally indexed"},
    {"model { x = 1 }", "m.ppl:1:15: unexpected '}', expecting ';'"},
    {"model { real x y; }", "m.ppl:1:16: unexpected identifier, expecting '[' or ';' or '~' or '='"},
    {"model { real x__ = 1; }",
     "m.ppl:1:14: identifier 'x__' is reserved: names ending in '__' belong to ppl"},
    {"model { vector v; }", "m.ppl:1:9: 'vector' needs a size: vector[n]"},
    {"model { matrix m ~ foo(); }", "m.ppl:1:9: 'matrix' needs two sizes: matrix[rows, cols]"},
    {"model { real x[]; }",
     "m.ppl:1:9: array sizes may be left out only when the declaration has an initialiser"},
    {"model { matrix[3] m; }", "m.ppl:1:15: 'matrix' takes two sizes, got 1"},
    {"model { real[3] x; }",
     "m.ppl:1:13: 'real' takes no size; an array is written real x[n] or array[n] real x"},
    {"model { array[2] real x[3]; }",
     "m.ppl:1:24: array dimensions given twice: use either array[...] or dimensions after the "
     "name"},
    {"model { real<lower=0, lower=1> x; }", "m.ppl:1:23: duplicate 'lower' bound"},
    {"model { real<lower=0 x; }", "m.ppl:1:22: unexpected identifier, expecting ',' or '>'"},
    {"model { for (i 1:N) x = 1; }", "m.ppl:1:16: unexpected integer, expecting 'in'"},
    {"real f(real x, ) { }", "m.ppl:1:16: unexpected ')', expecting a type"},
    {"model { y ~ 3; }", "m.ppl:1:13: unexpected integer, expecting identifier"},
    {"model { if (x) }", "m.ppl:1:16: unexpected '}', expecting a statement"},
    {"fun", "m.ppl:1:1: unexpected identifier, expecting a block (data, model, guide, generated) or a "
            "function definition"},
    {"parameters { real mu; }",
     "m.ppl:1:1: unexpected identifier, expecting a block (data, model, guide, generated) or a "
     "function definition\nm.ppl:1:1: hint: ppl declares latents where they are drawn: `real mu "
     "~ normal(0, 1);` in the model block (no parameters block)"},
    {"model { real x = exp(2 | 3); }",
     "m.ppl:1:24: '|' separates the outcome from the parameters only in the calls of _lpdf, "
     "_lpmf, _lcdf, _lccdf and _cdf functions; 'exp' takes ',' there"},
    {"model { real x = 1 | 2; }", "m.ppl:1:20: unexpected '|', expecting ';'"},
    {"model { x = (1 + 2; }", "m.ppl:1:19: unexpected ';', expecting ')'"},
    {"model { x = a && & b; }", "m.ppl:1:18: invalid character '&'"},
    {"data { int N } model { }", "m.ppl:1:14: unexpected '}', expecting '[' or ';' or '~' or '='"},
    {"model { x = \"a\"\n  \"b; }", "m.ppl:2:3: unterminated string"},
    {"model {\n  s = \"\xc3\xa9\"; x = 1 $;\n}", "m.ppl:2:18: invalid character '$'"},
    {"model { x = y'' ; z = 'a'; }", "m.ppl:1:23: unexpected '\\'', expecting an expression"},
    {"model { real<lower=0>[3] x; }", "m.ppl:1:22: 'real' takes no size; an array is written real "
                                      "x[n] or array[n] real x"},
};

static void test_good(void) {
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    Diag d;
    diag_init(&d);
    Ast *a = parse_string(good[i].src, strlen(good[i].src), "m.ppl", &d);
    if (!a) {
      tap_ok(0, "good %zu parses", i);
      tap_diag("%s", d.msg);
      continue;
    }
    int len = (int)strcspn(good[i].src, "\n");
    tap_streq(ast_dump(a), good[i].dump, "good %zu: %.*s", i, len < 40 ? len : 40, good[i].src);
  }
}

static void test_bad(void) {
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Diag d;
    diag_init(&d);
    Ast *a = parse_string(bad[i].src, strlen(bad[i].src), "m.ppl", &d);
    tap_ok(a == NULL && d.code == DIAG_SYNTAX, "bad %zu fails with DIAG_SYNTAX", i);
    tap_streq(d.msg, bad[i].msg, "bad %zu message", i);
  }
}

static char *repeat(const char *prefix, const char *unit, int n, const char *suffix) {
  size_t lp = strlen(prefix), lu = strlen(unit), ls = strlen(suffix);
  char *s = malloc(lp + lu * (size_t)n + ls + 1);
  memcpy(s, prefix, lp);
  for (int i = 0; i < n; i++) memcpy(s + lp + lu * (size_t)i, unit, lu);
  memcpy(s + lp + lu * (size_t)n, suffix, ls + 1);
  return s;
}

static const char *parse_msg(const char *src, size_t len) {
  Diag d;
  diag_init(&d);
  Ast *a = parse_string(src, len, "m.ppl", &d);
  return a ? "OK" : gc_strdup(d.msg);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Hostile nesting must fail cleanly (a crash would end the test run). */
static void test_limits(void) {
  char *s = repeat("model { x = ", "(", 100000, "1; }");
  tap_streq(parse_msg(s, strlen(s)), "m.ppl:1:1012: brackets nested too deeply (more than 1000 levels)",
            "100000 '(' is an error at the 1001st open bracket");
  free(s);
  s = repeat("model { x = ", "-", 100000, "1; }");
  tap_ok(ends_with(parse_msg(s, strlen(s)), ": program nested too deeply"), "100000 '-'");
  free(s);
  s = repeat("model { x = a", " + a", 3000, "; }");
  tap_ok(ends_with(parse_msg(s, strlen(s)), ": program nested too deeply"), "3000-term sum");
  free(s);
  s = repeat("model { x = a", " + a", 1000, "; }");
  tap_streq(parse_msg(s, strlen(s)), "OK", "1000-term sum is fine");
  free(s);
  s = repeat("model { ", "if (a) ", 20000, "x = 1; }");
  tap_ok(ends_with(parse_msg(s, strlen(s)), ": program nested too deeply"), "20000 nested ifs");
  free(s);
  s = repeat("model { ", "{", 999, "");
  char *t = repeat(s, "}", 999, " }");
  tap_streq(parse_msg(t, strlen(t)), "OK", "1000 nested braces are allowed");
  free(s);
  free(t);
  static const char nul[] = "model { x\0 = 1; }";
  tap_streq(parse_msg(nul, sizeof nul - 1), "m.ppl:1:10: invalid character '\\x00'",
            "NUL byte in the source");
  static const char nul2[] = "model { x = \"a\0b\"; }";
  tap_streq(parse_msg(nul2, sizeof nul2 - 1), "m.ppl:1:15: invalid character '\\x00' in string",
            "NUL byte in a string");
  tap_streq(parse_msg(NULL, 0), "OK", "NULL source of length 0 is an empty program");
}

static void test_positions(void) {
  const char *src = "data {\n  int N;\n  real y[N];\n}\nmodel {\n  y ~ normal(mu + 1, s);\n}\n";
  Diag d;
  diag_init(&d);
  Ast *p = parse_string(src, strlen(src), "pos.ppl", &d);
  if (!tap_ok(p != NULL, "position program parses")) return;
  Ast *data = p->list.items[0], *model = p->list.items[1];
  tap_ok(data->pos.line == 1 && data->pos.col == 1, "data block at 1:1");
  tap_streq(data->pos.file, "pos.ppl", "SrcPos.file is the given name");
  Ast *n = data->list.items[0];
  tap_ok(n->pos.line == 2 && n->pos.col == 7, "decl N at its name 2:7 (got %d:%d)", n->pos.line,
         n->pos.col);
  tap_ok(n->type->pos.line == 2 && n->type->pos.col == 3, "type of N at 2:3");
  Ast *y = data->list.items[1];
  tap_ok(y->pos.line == 3 && y->pos.col == 8, "decl y at 3:8");
  tap_ok(y->type->dims[0]->kind == AST_VAR && y->type->dims[0]->pos.col == 10, "dim N at 3:10");
  tap_ok(model->pos.line == 5 && model->pos.col == 1, "model block at 5:1");
  Ast *tl = model->list.items[0];
  tap_ok(tl->kind == AST_TILDE && tl->pos.line == 6 && tl->pos.col == 3, "tilde at 6:3");
  tap_ok(tl->b->pos.col == 7 && strcmp(tl->b->name, "normal") == 0, "call normal at 6:7");
  Ast *plus = tl->b->list.items[0];
  tap_ok(plus->kind == AST_BINARY && plus->op == AOP_ADD && plus->pos.col == 17,
         "binary '+' at its operator 6:17");
  tap_ok(plus->b->kind == AST_INT && plus->b->ival == 1, "literal 1");
}

static void test_files(void) {
  Diag d;
  diag_init(&d);
  Ast *a = parse_file("/nonexistent/dir/m.ppl", &d);
  tap_ok(a == NULL && d.code == DIAG_IO, "missing file is DIAG_IO");
  tap_streq(d.msg, "cannot read /nonexistent/dir/m.ppl: No such file or directory",
            "missing file message");

  char path[] = "/tmp/ppl_test_parser_XXXXXX";
  int fd = mkstemp(path);
  const char *src = "model {\n  real x ~ normal(0, 1)\n}\n";
  if (fd >= 0) {
    tap_ok(write(fd, src, strlen(src)) == (ssize_t)strlen(src), "temp file written");
    close(fd);
  }
  diag_init(&d);
  a = parse_file(path, &d);
  char *want = gc_printf("%s:3:1: unexpected '}', expecting ';'", path);
  tap_streq(d.msg, want, "file errors carry the path");
  unlink(path);

#ifdef PPL_SOURCE_DIR
  static const char *examples[] = {"ar1", "changepoint", "coin", "eight_schools",
                                   "gaussian_mixture", "geometric_recursion",
                                   "linear_regression", "logistic_regression", "spelling"};
  for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
    char *p = gc_printf("%s/examples/%s.ppl", PPL_SOURCE_DIR, examples[i]);
    if (access(p, R_OK) != 0) continue; /* examples may be renamed; not this test's job */
    diag_init(&d);
    a = parse_file(p, &d);
    tap_ok(a != NULL, "examples/%s.ppl parses%s%s", examples[i], a ? "" : ": ", a ? "" : d.msg);
  }
#endif
}

/* Two models parsed in parallel threads must not interfere (no global state). */
typedef struct {
  const char *src;
  const char *want;
  int ok;
} ThreadJob;

static void *thread_main(void *arg) {
  ThreadJob *job = arg;
  gc_thread_enter();
  job->ok = 1;
  for (int i = 0; i < 200; i++) {
    Diag d;
    diag_init(&d);
    Ast *a = parse_string(job->src, strlen(job->src), "t.ppl", &d);
    const char *got = a ? ast_dump(a) : d.msg;
    if (strcmp(got, job->want) != 0) job->ok = 0;
  }
  gc_thread_leave();
  return NULL;
}

static void test_threads(void) {
  ThreadJob jobs[4] = {
      {good[3].src, good[3].dump, 0},
      {bad[1].src, "t.ppl:5:1: unexpected end of input, expecting '}'", 0},
      {good[13].src, good[13].dump, 0},
      {bad[5].src, "t.ppl:1:15: unknown escape '\\q'", 0},
  };
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, thread_main, &jobs[i]);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++) tap_ok(jobs[i].ok, "thread %d parsed consistently", i);
}

static void test_names(void) {
  tap_streq(ast_op_name(AOP_IDIV), "%/%", "ast_op_name(AOP_IDIV)");
  tap_streq(ast_op_name(AOP_EDIV), "./", "ast_op_name(AOP_EDIV)");
  tap_streq(ast_op_name(AOP_TRANSPOSE), "'", "ast_op_name(AOP_TRANSPOSE)");
  tap_streq(ast_type_base_name(TB_CHOL_CORR), "cholesky_factor_corr", "ast_type_base_name");
  tap_streq(ast_type_base_name(TB_ROWVEC), "row_vector", "ast_type_base_name(TB_ROWVEC)");
  AstList l = {0, 0, NULL};
  SrcPos pos = {"x", 1, 1};
  for (int i = 0; i < 100; i++) {
    Ast *n = ast_new(AST_INT, pos);
    n->ival = i;
    ast_list_push(&l, n);
  }
  int ok = l.n == 100;
  for (int i = 0; i < l.n; i++) ok &= l.items[i]->ival == i;
  tap_ok(ok, "ast_list_push keeps 100 items in order");
}

int main(void) {
  gc_init();
  test_good();
  test_bad();
  test_limits();
  test_positions();
  test_files();
  test_threads();
  test_names();
  return tap_done();
}
