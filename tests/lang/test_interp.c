/* test_interp.c — the IR interpreter on hand-built IR programs: arithmetic,
 * broadcasting and matrix products, indexing and stores, loops, functions and
 * recursion limits, addresses, handlers (sample/observe/factor/condition),
 * suspension, copy-on-write forks, data loading and print output, and matrix
 * products under AD (one block node each, op_binary's value, exact gradient).
 *
 * Expected values are small enough to check by hand (noted next to each).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp_ops.h"
#include "stdlib/ad.h"
#include "tests/tap.h"
#include "test_interp_build.h"

/* ---- a distribution family of the test's own (a normal), through the real
   generic layer (stdlib/dist.c) ---- */

static double fake_lpdf1(double x, const double *p) {
  double z = (x - p[0]) / p[1];
  return -0.5 * z * z - log(p[1]) - 0.91893853320467274178;
}
static double fake_rng1(Rng *r, const double *p) { (void)r; return p[0]; }
static double fake_lcdf1(double x, const double *p) { return log(0.5 * erfc(-(x - p[0]) / p[1] / sqrt(2))); }
static double fake_lccdf1(double x, const double *p) { return log(0.5 * erfc((x - p[0]) / p[1] / sqrt(2))); }

static const DistFamily FAKE = {
    .name = "fake",
    .nparams = 2,
    .pnames = {"mu", "sigma"},
    .ptype = {{TY_REAL, 0}, {TY_REAL, 0}},
    .pdom = {PD_ANY, PD_POS},
    .vtype = {TY_REAL, 0},
    .lpdf1 = fake_lpdf1,
    .rng1 = fake_rng1,
    .lcdf1 = fake_lcdf1,
    .lccdf1 = fake_lccdf1,
};

/* ---- a recording handler ---- */

typedef struct Rec {
  Handler h;
  int nsample, nobs, nfactor;
  const char *addr[64];
  DistCall dc[64];
  DistCall odc[16];
  Value ox[16];
  double lw[16];
  bool suspend_obs, bad_shape;
} Rec;

static HandlerResult rec_sample(Handler *h, const char *addr, const DistCall *dc, Value *out,
                                SrcPos pos, Diag *d) {
  Rec *r = (Rec *)h;
  int k = r->nsample++;
  if (k < 64) {
    r->addr[k] = addr;
    r->dc[k] = *dc;
  }
  if (r->bad_shape || (dc->type.ndims == 0 && dc->type.base == TY_REAL)) {
    *out = val_real(100 + k);
  } else if (dc->type.ndims == 0 && dc->type.base == TY_INT) {
    *out = val_int(k);
  } else if (dc->type.ndims == 0 && dc->type.base == TY_VECTOR) {
    *out = val_vec(dc->sizes[0]);
    for (int i = 0; i < dc->sizes[0]; i++) out->t->d[i] = k;
  } else {
    diag_error(d, DIAG_RUNTIME, pos, "test handler: unsupported type");
    return HR_ERROR;
  }
  return HR_CONTINUE;
}
static HandlerResult rec_observe(Handler *h, const DistCall *dc, Value x, SrcPos pos, Diag *d) {
  Rec *r = (Rec *)h;
  int k = r->nobs++;
  if (k < 16) {
    r->odc[k] = *dc;
    r->ox[k] = x;
  }
  return r->suspend_obs ? HR_SUSPEND : HR_CONTINUE;
}
static HandlerResult rec_factor(Handler *h, double lw, SrcPos pos, Diag *d) {
  Rec *r = (Rec *)h;
  int k = r->nfactor++;
  if (k < 16) r->lw[k] = lw;
  return r->suspend_obs ? HR_SUSPEND : HR_CONTINUE;
}
static void rec_init(Rec *r) {
  memset(r, 0, sizeof *r);
  r->h.sample = rec_sample;
  r->h.observe = rec_observe;
  r->h.factor = rec_factor;
}

/* ---- running ---- */

typedef struct Run {
  Interp *in;
  InterpState *st;
  RunStatus rs;
  Diag d;
  Rec rec;
  char *out;
  size_t outlen;
  FILE *mem;
} Run;

static Run *run_prog(IrProgram *p, bool gen) {
  Run *r = calloc(1, sizeof(Run));
  diag_init(&r->d);
  rec_init(&r->rec);
  r->mem = open_memstream(&r->out, &r->outlen);
  r->in = interp_new(p, r->mem);
  if (!interp_load_data(r->in, NULL, &r->d)) {
    r->rs = RUN_ERROR;
    return r;
  }
  r->st = interp_start(r->in, 1, 0, gen);
  r->rs = interp_run(r->st, &r->rec.h, &r->d);
  fflush(r->mem);
  return r;
}

static Value outv(Run *r, int i) { return interp_output(r->st, i); }
static double outr(Run *r, int i) { return val_as_real(outv(r, i)); }
static const char *outs(Run *r, int i) { return val_to_string(outv(r, i)); }

/* "t.ppl:LINE:1: msg" */
static const char *at(int line, const char *msg) { return gc_printf("t.ppl:%d:1: %s", line, msg); }

/* A program whose model block is one failing instruction sequence; checks the
   message and position. */
#define EXPECT_ERROR(p_, line_, msg_, name_)                                      \
  do {                                                                            \
    Run *r_ = run_prog(p_, false);                                                \
    tap_ok(r_->rs == RUN_ERROR && r_->d.code == DIAG_RUNTIME, "%s: runtime error", name_); \
    tap_streq(r_->d.msg, at(line_, msg_), "%s: message", name_);                  \
  } while (0)

/* ---- arithmetic ---- */

static void test_int_arith(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int a = KI(m, b, 7), c = KI(m, b, 2), na = KI(m, b, -7);
  int o_add = OUT(p, BIN(m, b, OP_ADD, T_INT, a, c));
  int o_sub = OUT(p, BIN(m, b, OP_SUB, T_INT, a, c));
  int o_mul = OUT(p, BIN(m, b, OP_MUL, T_INT, a, c));
  int o_div = OUT(p, BIN(m, b, OP_DIV, T_INT, a, c));
  int o_mod = OUT(p, BIN(m, b, OP_MOD, T_INT, a, c));
  int o_ndiv = OUT(p, BIN(m, b, OP_DIV, T_INT, na, c));
  int o_nmod = OUT(p, BIN(m, b, OP_MOD, T_INT, na, c));
  int o_idiv = OUT(p, BIN(m, b, OP_IDIV, T_INT, a, c));
  int o_pow = OUT(p, BIN(m, b, OP_POW, T_REAL, c, KI(m, b, 10)));
  int o_lt = OUT(p, BIN(m, b, OP_LT, T_BOOL, a, c));
  int o_eq = OUT(p, BIN(m, b, OP_EQ, T_BOOL, a, KI(m, b, 7)));
  int x = reg(m, T_REAL, "x");
  MOVE(b, x, a); /* int -> real promotion */
  int o_x = OUT(p, x);
  int o_mix = OUT(p, BIN(m, b, OP_DIV, T_REAL, a, KR(m, b, 2.0)));
  int o_neg = OUT(p, UN(m, b, OP_NEG, T_INT, a));
  int o_not = OUT(p, UN(m, b, OP_NOT, T_BOOL, KB(m, b, false)));

  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "int arithmetic runs (%s)", r->d.msg);
  tap_ok(outv(r, o_add).k == V_INT && outv(r, o_add).i == 9, "7 + 2 = 9 (int)");
  tap_ok(outv(r, o_sub).i == 5 && outv(r, o_mul).i == 14, "7 - 2 = 5, 7 * 2 = 14");
  tap_ok(outv(r, o_div).k == V_INT && outv(r, o_div).i == 3, "7 / 2 = 3 (integer division)");
  tap_ok(outv(r, o_mod).i == 1 && outv(r, o_idiv).i == 3, "7 %% 2 = 1, 7 %%/%% 2 = 3");
  tap_ok(outv(r, o_ndiv).i == -3 && outv(r, o_nmod).i == -1, "-7 / 2 = -3, -7 %% 2 = -1 (truncation)");
  tap_ok(outv(r, o_pow).k == V_REAL && outv(r, o_pow).r == 1024, "2 ^ 10 = 1024.0");
  tap_ok(outv(r, o_lt).k == V_BOOL && !outv(r, o_lt).b && outv(r, o_eq).b, "7 < 2 false, 7 == 7 true");
  tap_ok(outv(r, o_x).k == V_REAL && outv(r, o_x).r == 7.0, "move int into real register promotes");
  tap_near(outr(r, o_mix), 3.5, 0, "7 / 2.0 = 3.5");
  tap_ok(outv(r, o_neg).i == -7 && outv(r, o_not).b, "-7 and !false");
}

static void test_int_errors(void) {
  IrProgram *p = prog_new();
  BIN(&p->main, &p->model_b, OP_ADD, T_INT, KI(&p->main, &p->model_b, INT64_MAX), KI(&p->main, &p->model_b, 1));
  EXPECT_ERROR(p, LAST_LINE, "integer overflow in '+'", "int overflow");

  p = prog_new();
  BIN(&p->main, &p->model_b, OP_MUL, T_INT, KI(&p->main, &p->model_b, INT64_MAX / 2), KI(&p->main, &p->model_b, 3));
  EXPECT_ERROR(p, LAST_LINE, "integer overflow in '*'", "int overflow *");

  p = prog_new();
  BIN(&p->main, &p->model_b, OP_DIV, T_INT, KI(&p->main, &p->model_b, 1), KI(&p->main, &p->model_b, 0));
  EXPECT_ERROR(p, LAST_LINE, "integer division by zero", "int division by zero");

  p = prog_new();
  BIN(&p->main, &p->model_b, OP_MOD, T_INT, KI(&p->main, &p->model_b, 1), KI(&p->main, &p->model_b, 0));
  EXPECT_ERROR(p, LAST_LINE, "integer division by zero in '%'", "int modulo by zero");
}

static void test_reals_strings(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int o_inf = OUT(p, BIN(m, b, OP_DIV, T_REAL, KR(m, b, 1), KR(m, b, 0)));
  int o_nan = OUT(p, BIN(m, b, OP_DIV, T_REAL, KR(m, b, 0), KR(m, b, 0)));
  int o_cat = OUT(p, BIN(m, b, OP_ADD, T_STR, KS(m, b, "ab"), KS(m, b, "cd")));
  int o_seq = OUT(p, BIN(m, b, OP_EQ, T_BOOL, KS(m, b, "ab"), KS(m, b, "ab")));
  int o_sne = OUT(p, BIN(m, b, OP_NE, T_BOOL, KS(m, b, "ab"), KS(m, b, "ab")));
  int o_beq = OUT(p, BIN(m, b, OP_EQ, T_BOOL, KB(m, b, true), KB(m, b, true)));
  int o_ge = OUT(p, BIN(m, b, OP_GE, T_BOOL, KR(m, b, 2.5), KI(m, b, 2)));
  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "NaN and inf from arithmetic are not errors");
  tap_ok(isinf(outr(r, o_inf)) && isnan(outr(r, o_nan)), "1/0.0 = inf, 0/0.0 = nan");
  tap_streq(outs(r, o_cat), "abcd", "string + string concatenates");
  tap_ok(outv(r, o_seq).b && !outv(r, o_sne).b && outv(r, o_beq).b, "== != on strings, == on bools");
  tap_ok(outv(r, o_ge).b, "2.5 >= 2 (mixed int/real comparison)");
}

static void test_vectors(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int v = VEC(m, b, 3, (double[]){1, 2, 3});
  int w = VEC(m, b, 4, (double[]){1, 2, 3, 4});
  int o_vs = OUT(p, BIN(m, b, OP_ADD, T_VEC, v, KI(m, b, 1)));
  int o_sv = OUT(p, BIN(m, b, OP_SUB, T_VEC, KR(m, b, 10), v));
  int o_em = OUT(p, BIN(m, b, OP_EMUL, T_VEC, v, v));
  int o_ed = OUT(p, BIN(m, b, OP_EDIV, T_VEC, v, KR(m, b, 2)));
  int o_sm = OUT(p, BIN(m, b, OP_MUL, T_VEC, KR(m, b, 2), v));
  int o_neg = OUT(p, UN(m, b, OP_NEG, T_VEC, v));
  int r0 = RV(m, b, 2, (double[]){1, 2}), r1 = RV(m, b, 2, (double[]){3, 4});
  int M = RVEC(m, b, T_MAT, 2, ints(2, r0, r1)); /* [[1, 2], [3, 4]] */
  int o_m = OUT(p, M);
  int u = VEC(m, b, 2, (double[]){5, 6}), ur = RV(m, b, 2, (double[]){5, 6});
  int o_mv = OUT(p, BIN(m, b, OP_MUL, T_VEC, M, u));      /* [17, 39] */
  int o_rv = OUT(p, BIN(m, b, OP_MUL, T_REAL, ur, u));    /* 61 */
  int o_vr = OUT(p, BIN(m, b, OP_MUL, T_MAT, VEC(m, b, 2, (double[]){1, 2}), RV(m, b, 2, (double[]){3, 4})));
  int o_mm = OUT(p, BIN(m, b, OP_MUL, T_MAT, M, M));      /* [[7, 10], [15, 22]] */
  int o_rm = OUT(p, BIN(m, b, OP_MUL, T_RVEC, ur, M));    /* [23, 34] */
  int o_mt = OUT(p, UN(m, b, OP_TRANSPOSE, T_MAT, M));    /* [[1, 3], [2, 4]] */
  int o_madd = OUT(p, BIN(m, b, OP_ADD, T_MAT, M, M));
  int o_msub = OUT(p, BIN(m, b, OP_SUB, T_MAT, KR(m, b, 1), M));
  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "vector program runs (%s)", r->d.msg);
  tap_streq(outs(r, o_vs), "[2, 3, 4]", "vector + int broadcasts");
  tap_streq(outs(r, o_sv), "[9, 8, 7]", "real - vector broadcasts");
  tap_streq(outs(r, o_em), "[1, 4, 9]", "vector .* vector");
  tap_streq(outs(r, o_ed), "[0.5, 1, 1.5]", "vector ./ real");
  tap_streq(outs(r, o_sm), "[2, 4, 6]", "real * vector");
  tap_streq(outs(r, o_neg), "[-1, -2, -3]", "-vector");
  tap_ok(outv(r, o_vs).k == V_VEC && outv(r, o_neg).k == V_VEC, "results keep the vector kind");
  tap_streq(outs(r, o_m), "[[1, 2], [3, 4]]", "matrix literal from row vectors");
  tap_streq(outs(r, o_mv), "[17, 39]", "matrix * vector");
  tap_ok(outv(r, o_rv).k == V_REAL && outv(r, o_rv).r == 61, "row_vector * vector = 61 (real)");
  tap_streq(outs(r, o_vr), "[[3, 4], [6, 8]]", "vector * row_vector (outer product)");
  tap_streq(outs(r, o_mm), "[[7, 10], [15, 22]]", "matrix * matrix");
  tap_streq(outs(r, o_rm), "[23, 34]", "row_vector * matrix");
  tap_ok(outv(r, o_rm).k == V_ROWVEC, "row_vector * matrix is a row_vector");
  tap_streq(outs(r, o_mt), "[[1, 3], [2, 4]]", "matrix transpose");
  tap_streq(outs(r, o_madd), "[[2, 4], [6, 8]]", "matrix + matrix");
  tap_streq(outs(r, o_msub), "[[0, -1], [-2, -3]]", "real - matrix");

  p = prog_new();
  m = &p->main;
  b = &p->model_b;
  v = VEC(m, b, 3, (double[]){1, 2, 3});
  w = VEC(m, b, 4, (double[]){1, 2, 3, 4});
  BIN(m, b, OP_ADD, T_VEC, v, w);
  EXPECT_ERROR(p, LAST_LINE, "size mismatch in '+': vector of 3 and vector of 4", "vector size mismatch");

  p = prog_new();
  m = &p->main;
  b = &p->model_b;
  r0 = RV(m, b, 2, (double[]){1, 2});
  M = RVEC(m, b, T_MAT, 2, ints(2, r0, r0));
  BIN(m, b, OP_MUL, T_VEC, M, VEC(m, b, 3, (double[]){1, 2, 3}));
  EXPECT_ERROR(p, LAST_LINE, "size mismatch in '*': matrix of 2x2 and vector of 3", "product size mismatch");
}

/* ---- indexing and stores ---- */

static void test_indexing(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int a = IARR(m, b, 10, (int64_t[]){10, 20, 30, 40, 50, 60, 70, 80, 90, 100});
  int i3 = KI(m, b, 3), i2 = KI(m, b, 2), i4 = KI(m, b, 4), i5 = KI(m, b, 5), i8 = KI(m, b, 8);
  Type IA = arr_of(T_INT, 1);
  int o_e = OUT(p, INDEX(m, b, T_INT, a, 1, ixv(1, IXS(i3))));
  int o_rng = OUT(p, INDEX(m, b, IA, a, 1, ixv(1, IXR(i2, i4))));
  int o_emp = OUT(p, INDEX(m, b, IA, a, 1, ixv(1, IXR(i5, i4))));
  int o_all = OUT(p, INDEX(m, b, IA, a, 1, ixv(1, IXA())));
  int o_tail = OUT(p, INDEX(m, b, IA, a, 1, ixv(1, IXR(i8, -1))));
  int o_head = OUT(p, INDEX(m, b, IA, a, 1, ixv(1, IXR(-1, i2))));
  int sel = IARR(m, b, 3, (int64_t[]){10, 1, 10});
  int o_multi = OUT(p, INDEX(m, b, IA, a, 1, ixv(1, IXM(sel))));
  int v = VEC(m, b, 3, (double[]){1.5, 2.5, 3.5});
  int o_v = OUT(p, INDEX(m, b, T_REAL, v, 1, ixv(1, IXS(i2))));
  int o_vs = OUT(p, INDEX(m, b, T_VEC, v, 1, ixv(1, IXR(i2, -1))));
  int r0 = RV(m, b, 3, (double[]){1, 2, 3}), r1 = RV(m, b, 3, (double[]){4, 5, 6});
  int M = RVEC(m, b, T_MAT, 2, ints(2, r0, r1));
  int one = KI(m, b, 1);
  int o_row = OUT(p, INDEX(m, b, T_RVEC, M, 1, ixv(1, IXS(i2))));
  int o_el = OUT(p, INDEX(m, b, T_REAL, M, 2, ixv(2, IXS(i2), IXS(one))));
  int o_col = OUT(p, INDEX(m, b, T_VEC, M, 2, ixv(2, IXA(), IXS(i3))));
  int o_blk = OUT(p, INDEX(m, b, T_MAT, M, 2, ixv(2, IXA(), IXR(i2, i3))));
  int o_rs = OUT(p, INDEX(m, b, T_RVEC, M, 2, ixv(2, IXS(one), IXR(one, i2))));

  /* stores */
  int s = reg(m, IA, "s");
  MOVE(b, s, a);
  STORE(b, s, KI(m, b, 7), 1, ixv(1, IXS(i2)));
  STORE(b, s, IARR(m, b, 2, (int64_t[]){0, -1}), 1, ixv(1, IXR(i3, i4)));
  int o_s = OUT(p, s);
  int o_a = OUT(p, a); /* the moved-from value is unchanged by stores into s */
  int vv = reg(m, T_VEC, "vv");
  MOVE(b, vv, v);
  STORE(b, vv, KI(m, b, 9), 1, ixv(1, IXS(one)));
  int o_vv = OUT(p, vv);
  int MM = reg(m, T_MAT, "MM");
  MOVE(b, MM, M);
  STORE(b, MM, RV(m, b, 3, (double[]){7, 8, 9}), 1, ixv(1, IXS(one)));
  STORE(b, MM, KR(m, b, -1), 2, ixv(2, IXS(i2), IXS(i3)));
  STORE(b, MM, VEC(m, b, 2, (double[]){0, 0}), 2, ixv(2, IXA(), IXS(one)));
  int o_mm = OUT(p, MM);
  /* real x[2, 3]; x[2, 3] = 5 (int stored into a real array) */
  int x = reg(m, arr_of(T_REAL, 2), "x");
  DECL(b, x, 2, ints(2, i2, i3));
  STORE(b, x, i5, 2, ixv(2, IXS(i2), IXS(i3)));
  int o_x23 = OUT(p, INDEX(m, b, T_REAL, x, 2, ixv(2, IXS(i2), IXS(i3))));
  int o_x11 = OUT(p, INDEX(m, b, T_REAL, x, 2, ixv(2, IXS(one), IXS(one))));
  int o_x = OUT(p, x);
  /* vector[2] vs[2]: whole-element store and nested element store */
  int vs = reg(m, arr_of(T_VEC, 1), "vs");
  DECL(b, vs, 2, ints(2, i2, i2));
  int u = VEC(m, b, 2, (double[]){1, 2});
  STORE(b, vs, u, 1, ixv(1, IXS(one)));
  STORE(b, vs, KR(m, b, 8), 2, ixv(2, IXS(one), IXS(i2)));
  int o_u = OUT(p, u);
  /* e = vs[1]; vs[1, 1] = 42 -> e keeps its value */
  int e = reg(m, T_VEC, "e");
  MOVE(b, e, INDEX(m, b, T_VEC, vs, 1, ixv(1, IXS(one))));
  STORE(b, vs, KR(m, b, 42), 2, ixv(2, IXS(one), IXS(one)));
  int o_e2 = OUT(p, e), o_vs3 = OUT(p, vs);
  /* w2 = src; src[1] = 0 -> w2 keeps its value */
  int src = reg(m, T_VEC, "src"), w2 = reg(m, T_VEC, "w2");
  MOVE(b, src, VEC(m, b, 2, (double[]){3, 4}));
  STORE(b, src, KR(m, b, 4), 1, ixv(1, IXS(i2))); /* src is now owned: written in place below */
  MOVE(b, w2, src);
  STORE(b, src, KR(m, b, 0), 1, ixv(1, IXS(one)));
  int o_w2 = OUT(p, w2), o_src = OUT(p, src);

  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "indexing program runs (%s)", r->d.msg);
  tap_ok(outv(r, o_e).k == V_INT && outv(r, o_e).i == 30, "a[3] = 30");
  tap_streq(outs(r, o_rng), "[20, 30, 40]", "a[2:4]");
  tap_streq(outs(r, o_emp), "[]", "a[5:4] is empty");
  tap_ok(outv(r, o_all).k == V_ARR && outv(r, o_all).a->n == 10, "a[:] has 10 elements");
  tap_streq(outs(r, o_tail), "[80, 90, 100]", "a[8:]");
  tap_streq(outs(r, o_head), "[10, 20]", "a[:2]");
  tap_streq(outs(r, o_multi), "[100, 10, 100]", "a[{10, 1, 10}]");
  tap_ok(outv(r, o_v).k == V_REAL && outv(r, o_v).r == 2.5, "v[2] = 2.5");
  tap_streq(outs(r, o_vs), "[2.5, 3.5]", "v[2:]");
  tap_ok(outv(r, o_row).k == V_ROWVEC, "M[2] is a row_vector");
  tap_streq(outs(r, o_row), "[4, 5, 6]", "M[2]");
  tap_ok(outr(r, o_el) == 4, "M[2, 1] = 4");
  tap_ok(outv(r, o_col).k == V_VEC, "M[:, 3] is a vector");
  tap_streq(outs(r, o_col), "[3, 6]", "M[:, 3]");
  tap_streq(outs(r, o_blk), "[[2, 3], [5, 6]]", "M[:, 2:3]");
  tap_streq(outs(r, o_rs), "[1, 2]", "M[1, 1:2]");
  tap_streq(outs(r, o_s), "[10, 7, 0, -1, 50, 60, 70, 80, 90, 100]", "s[2] = 7; s[3:4] = {0, -1}");
  tap_streq(outs(r, o_a), "[10, 20, 30, 40, 50, 60, 70, 80, 90, 100]", "stores into a copy leave the source alone");
  tap_streq(outs(r, o_vv), "[9, 2.5, 3.5]", "vector element store (int promoted)");
  tap_streq(outs(r, o_mm), "[[0, 8, 9], [0, 5, -1]]", "matrix row, element and column stores");
  tap_ok(outv(r, o_x23).k == V_REAL && outv(r, o_x23).r == 5, "x[2, 3] = 5 stored as a real");
  tap_ok(isnan(outr(r, o_x11)), "declared reals are NaN");
  tap_ok(outv(r, o_x).a->n == 2 && outv(r, o_x).a->e[0].a->n == 3, "real x[2, 3] has shape 2x3");
  tap_streq(outs(r, o_u), "[1, 2]", "the stored vector was copied, not aliased");
  tap_streq(outs(r, o_e2), "[1, 8]", "an indexed element is a copy: later stores into the array do not show");
  tap_streq(outs(r, o_vs3), "[[42, 8], [nan, nan]]", "array of vectors: element, nested and later stores");
  tap_streq(outs(r, o_w2), "[3, 4]", "assignment copies: writing the source later does not change the target");
  tap_streq(outs(r, o_src), "[0, 4]", "the source changed");
}

static void test_index_errors(void) {
  int64_t ten[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  IrProgram *p = prog_new();
  int a = IARR(&p->main, &p->model_b, 10, ten);
  INDEX(&p->main, &p->model_b, T_INT, a, 1, ixv(1, IXS(KI(&p->main, &p->model_b, 11))));
  EXPECT_ERROR(p, LAST_LINE, "index 11 out of range for array of size 10", "index too large");

  p = prog_new();
  a = IARR(&p->main, &p->model_b, 10, ten);
  INDEX(&p->main, &p->model_b, T_INT, a, 1, ixv(1, IXS(KI(&p->main, &p->model_b, 0))));
  EXPECT_ERROR(p, LAST_LINE, "index 0 out of range for array of size 10", "index zero");

  p = prog_new();
  int v = VEC(&p->main, &p->model_b, 3, (double[]){1, 2, 3});
  INDEX(&p->main, &p->model_b, T_VEC, v, 1,
        ixv(1, IXR(KI(&p->main, &p->model_b, 2), KI(&p->main, &p->model_b, 4))));
  EXPECT_ERROR(p, LAST_LINE, "index 4 out of range for vector of size 3", "vector slice out of range");

  p = prog_new();
  a = IARR(&p->main, &p->model_b, 10, ten);
  int s = reg(&p->main, arr_of(T_INT, 1), "s");
  MOVE(&p->model_b, s, a);
  STORE(&p->model_b, s, IARR(&p->main, &p->model_b, 3, ten), 1,
        ixv(1, IXR(KI(&p->main, &p->model_b, 1), KI(&p->main, &p->model_b, 2))));
  EXPECT_ERROR(p, LAST_LINE, "size mismatch in assignment: array of 3 assigned to a slice of 2 elements",
               "slice store size mismatch");

  p = prog_new();
  int x = reg(&p->main, T_VEC, "x");
  DECL(&p->model_b, x, 1, ints(1, KI(&p->main, &p->model_b, -1)));
  EXPECT_ERROR(p, LAST_LINE, "size must be non-negative, got -1", "negative size");

  p = prog_new();
  int theta = reg(&p->main, T_VEC, "theta");
  DECL(&p->model_b, theta, 1, ints(1, KI(&p->main, &p->model_b, 4)));
  MOVE(&p->model_b, theta, VEC(&p->main, &p->model_b, 3, (double[]){1, 2, 3}));
  EXPECT_ERROR(p, LAST_LINE, "size mismatch: assigning vector of 3 to 'theta' declared with size 4",
               "move size mismatch");
}

/* ---- control flow ---- */

static void test_loops(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int one = KI(m, b, 1), zero = KI(m, b, 0);
  /* s1 = sum_{i=1}^{10} i = 55 */
  int s1 = reg(m, T_INT, "s1"), i = reg(m, T_INT, "i");
  MOVE(b, s1, zero);
  IrBlock body = blk();
  BIN_TO(&body, OP_ADD, s1, s1, i);
  FOR(b, i, one, KI(m, b, 10), body);
  /* nested: count = 12, s2 = sum i*j for i 1..3, j 1..4 = 6 * 10 = 60 */
  int s2 = reg(m, T_INT, "s2"), cnt = reg(m, T_INT, "cnt"), j = reg(m, T_INT, "j");
  MOVE(b, s2, zero);
  MOVE(b, cnt, zero);
  IrBlock inner = blk();
  BIN_TO(&inner, OP_ADD, s2, s2, BIN(m, &inner, OP_MUL, T_INT, i, j));
  BIN_TO(&inner, OP_ADD, cnt, cnt, one);
  IrBlock outer = blk();
  FOR(&outer, j, one, KI(m, &outer, 4), inner);
  FOR(b, i, one, KI(m, b, 3), outer);
  /* break: for i in 1:100 { if (i > 5) break; s3 += i } -> 15 */
  int s3 = reg(m, T_INT, "s3");
  MOVE(b, s3, zero);
  IrBlock bb = blk(), thenb = blk();
  I(&thenb, IR_BREAK, -1);
  IF(&bb, BIN(m, &bb, OP_GT, T_BOOL, i, KI(m, &bb, 5)), thenb, blk());
  BIN_TO(&bb, OP_ADD, s3, s3, i);
  FOR(b, i, one, KI(m, b, 100), bb);
  /* continue: for i in 1:10 { if (i % 2 == 0) continue; s4 += i } -> 25 */
  int s4 = reg(m, T_INT, "s4");
  MOVE(b, s4, zero);
  IrBlock cb = blk(), thenc = blk();
  I(&thenc, IR_CONTINUE, -1);
  IF(&cb, BIN(m, &cb, OP_EQ, T_BOOL, BIN(m, &cb, OP_MOD, T_INT, i, KI(m, &cb, 2)), zero), thenc, blk());
  BIN_TO(&cb, OP_ADD, s4, s4, i);
  FOR(b, i, one, KI(m, b, 10), cb);
  /* while (n < 7) n = n + 1 -> 7; cond computed in cond_b */
  int n = reg(m, T_INT, "n"), cond = reg(m, T_BOOL, NULL);
  MOVE(b, n, zero);
  IrBlock condb = blk(), wb = blk();
  BIN_TO(&condb, OP_LT, cond, n, KI(m, &condb, 7));
  BIN_TO(&wb, OP_ADD, n, n, one);
  WHILE(b, condb, cond, wb);
  /* while (true) { k += 1; if (k == 4) break; } with continue before: k -> 4 */
  int k = reg(m, T_INT, "k"), t = KB(m, b, true);
  MOVE(b, k, zero);
  IrBlock wb2 = blk(), thb = blk();
  BIN_TO(&wb2, OP_ADD, k, k, one);
  I(&thb, IR_BREAK, -1);
  IF(&wb2, BIN(m, &wb2, OP_EQ, T_BOOL, k, KI(m, &wb2, 4)), thb, blk());
  I(&wb2, IR_CONTINUE, -1);
  BIN_TO(&wb2, OP_ADD, k, k, KI(m, &wb2, 100)); /* never reached */
  WHILE(b, blk(), t, wb2);
  /* empty range: for i in 5:4 -> no iterations */
  int s5 = reg(m, T_INT, "s5");
  MOVE(b, s5, zero);
  IrBlock eb = blk();
  BIN_TO(&eb, OP_ADD, s5, s5, one);
  FOR(b, i, KI(m, b, 5), KI(m, b, 4), eb);
  /* bounds evaluated once: nb = 3; for i in 1:nb { nb = nb + 1; it += 1 } -> it = 3, nb = 6 */
  int nb = reg(m, T_INT, "nb"), it = reg(m, T_INT, "it");
  MOVE(b, nb, KI(m, b, 3));
  MOVE(b, it, zero);
  IrBlock ob = blk();
  BIN_TO(&ob, OP_ADD, nb, nb, one);
  BIN_TO(&ob, OP_ADD, it, it, one);
  FOR(b, i, one, nb, ob);
  int os1 = OUT(p, s1), os2 = OUT(p, s2), ocnt = OUT(p, cnt), os3 = OUT(p, s3), os4 = OUT(p, s4),
      on = OUT(p, n), ok = OUT(p, k), os5 = OUT(p, s5), onb = OUT(p, nb), oit = OUT(p, it);
  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "loop program runs (%s)", r->d.msg);
  tap_ok(outv(r, os1).i == 55, "for: sum 1..10 = 55");
  tap_ok(outv(r, os2).i == 60 && outv(r, ocnt).i == 12, "nested for: 12 iterations, sum i*j = 60");
  tap_ok(outv(r, os3).i == 15, "break leaves the innermost loop: 15");
  tap_ok(outv(r, os4).i == 25, "continue skips even i: 25");
  tap_ok(outv(r, on).i == 7, "while with a condition block: 7");
  tap_ok(outv(r, ok).i == 4, "while(true) with continue and break: 4");
  tap_ok(outv(r, os5).i == 0, "for over an empty range runs zero times");
  tap_ok(outv(r, oit).i == 3 && outv(r, onb).i == 6, "for bounds are evaluated once");
}

/* ---- functions ---- */

static void test_functions(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  /* int fib(int n) { if (n < 2) return n; return fib(n - 1) + fib(n - 2); } */
  IrFunc *fib = prog_func(p, "fib", T_INT);
  int fn = param(fib, T_INT, "n");
  IrBlock th = blk();
  with_args(I(&th, IR_RETURN, -1), 1, ints(1, fn));
  IF(&fib->body, BIN(fib, &fib->body, OP_LT, T_BOOL, fn, KI(fib, &fib->body, 2)), th, blk());
  int one = KI(fib, &fib->body, 1), two = KI(fib, &fib->body, 2);
  int f1 = reg(fib, T_INT, NULL), f2 = reg(fib, T_INT, NULL);
  OP(&fib->body, IR_CALL, f1, 1, BIN(fib, &fib->body, OP_SUB, T_INT, fn, one))->callee = 0;
  OP(&fib->body, IR_CALL, f2, 1, BIN(fib, &fib->body, OP_SUB, T_INT, fn, two))->callee = 0;
  OP(&fib->body, IR_RETURN, -1, 1, BIN(fib, &fib->body, OP_ADD, T_INT, f1, f2));
  /* int depth(int n) { if (n == 0) return 0; return 1 + depth(n - 1); } */
  IrFunc *dep = prog_func(p, "depth", T_INT);
  int dn = param(dep, T_INT, "n");
  int dz = KI(dep, &dep->body, 0), d1 = KI(dep, &dep->body, 1);
  IrBlock dth = blk();
  with_args(I(&dth, IR_RETURN, -1), 1, ints(1, dz));
  IF(&dep->body, BIN(dep, &dep->body, OP_EQ, T_BOOL, dn, dz), dth, blk());
  int dr = reg(dep, T_INT, NULL);
  OP(&dep->body, IR_CALL, dr, 1, BIN(dep, &dep->body, OP_SUB, T_INT, dn, d1))->callee = 1;
  OP(&dep->body, IR_RETURN, -1, 1, BIN(dep, &dep->body, OP_ADD, T_INT, d1, dr));
  /* void clobber(real[] a) { a[1] = 99; }  -- the caller's array must not change */
  IrFunc *clob = prog_func(p, "clobber", T_VOID);
  int ca = param(clob, arr_of(T_REAL, 1), "a");
  STORE(&clob->body, ca, KR(clob, &clob->body, 99), 1, ixv(1, IXS(KI(clob, &clob->body, 1))));
  /* real half(int n) { return n; }  -- int result converted to the real return type */
  IrFunc *half = prog_func(p, "half", T_REAL);
  int hn = param(half, T_INT, "n");
  with_args(I(&half->body, IR_RETURN, -1), 1, ints(1, hn));

  /* real[] id(real[] a) { return a; } */
  IrFunc *idf = prog_func(p, "id", arr_of(T_REAL, 1));
  int ia = param(idf, arr_of(T_REAL, 1), "a");
  OP(&idf->body, IR_RETURN, -1, 1, ia);

  int r_fib = reg(m, T_INT, "f");
  OP(b, IR_CALL, r_fib, 1, KI(m, b, 20))->callee = 0;
  int r_dep = reg(m, T_INT, "d");
  OP(b, IR_CALL, r_dep, 1, KI(m, b, 5000))->callee = 1;
  int xs = reg(m, arr_of(T_REAL, 1), "xs");
  MOVE(b, xs, ARR(m, b, arr_of(T_REAL, 1), 2, ints(2, KR(m, b, 1), KR(m, b, 2))));
  with_args(I(b, IR_CALL, -1), 1, ints(1, xs))->callee = 2;
  int r_half = reg(m, T_REAL, "h");
  OP(b, IR_CALL, r_half, 1, KI(m, b, 3))->callee = 3;
  int ys = reg(m, arr_of(T_REAL, 1), "ys");
  STORE(b, xs, KR(m, b, 1), 1, ixv(1, IXS(KI(m, b, 1)))); /* xs owned from here */
  OP(b, IR_CALL, ys, 1, xs)->callee = 4;
  STORE(b, xs, KR(m, b, 50), 1, ixv(1, IXS(KI(m, b, 2))));
  int oys = OUT(p, ys);
  int ofib = OUT(p, r_fib), odep = OUT(p, r_dep), oxs = OUT(p, xs), ohalf = OUT(p, r_half);
  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "function program runs (%s)", r->d.msg);
  tap_ok(outv(r, ofib).i == 6765, "fib(20) = 6765 through recursion");
  tap_ok(outv(r, odep).i == 5000, "recursion 5000 deep works");
  tap_streq(outs(r, oxs), "[1, 50]", "arguments are passed by value");
  tap_streq(outs(r, oys), "[1, 2]", "a returned parameter does not alias the caller's variable");
  tap_ok(outv(r, ohalf).k == V_REAL && outv(r, ohalf).r == 3, "int returned from a real function is promoted");

  /* depth(20000): stack overflow as a runtime error at the call */
  p = prog_new();
  m = &p->main;
  b = &p->model_b;
  p->funcs[0] = *dep;
  for (int k = 0; k < p->funcs[0].body.n; k++) /* the recursive call: depth is funcs[0] here */
    if (p->funcs[0].body.ins[k].op == IR_CALL) p->funcs[0].body.ins[k].callee = 0;
  p->nfuncs = 1;
  int rr = reg(m, T_INT, "d");
  OP(b, IR_CALL, rr, 1, KI(m, b, 20000))->callee = 0;
  r = run_prog(p, false);
  tap_ok(r->rs == RUN_ERROR && r->d.code == DIAG_RUNTIME, "deep recursion is a runtime error, not a crash");
  tap_ok(strstr(r->d.msg, "stack overflow: recursion deeper than 10000 calls") != NULL,
         "stack overflow message (%s)", r->d.msg);

  /* int g() { } -- falls off the end */
  p = prog_new();
  IrFunc *g = prog_func(p, "g", T_INT);
  with_args(I(&p->model_b, IR_CALL, reg(&p->main, T_INT, NULL)), 0, NULL)->callee = 0;
  (void)g;
  r = run_prog(p, false);
  tap_streq(r->d.msg, "t.ppl:900:1: function 'g' ended without returning a value",
            "non-void function falling off the end");
}

/* ---- handlers, addresses ---- */

static IrInstr *SAMPLE(IrFunc *f, IrBlock *b, int dst, const char *name, int mu, int sigma) {
  IrInstr *in = I(b, IR_SAMPLE, dst);
  in->name = name;
  in->dist.fam = &FAKE;
  in->dist.nparams = 2;
  in->dist.params = ints(2, mu, sigma);
  (void)f;
  return in;
}
static IrInstr *OBSERVE(IrBlock *b, int x, int mu, int sigma) {
  IrInstr *in = with_args(I(b, IR_OBSERVE, -1), 1, ints(1, x));
  in->dist.fam = &FAKE;
  in->dist.nparams = 2;
  in->dist.params = ints(2, mu, sigma);
  return in;
}

static void test_addresses(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  /* void step() { real x ~ fake(0, 1); } */
  IrFunc *step = prog_func(p, "step", T_VOID);
  SAMPLE(step, &step->body, reg(step, T_REAL, "x"), "x", KR(step, &step->body, 0), KR(step, &step->body, 1));
  /* void walk() { for (k in 1:2) step(); } */
  IrFunc *walk = prog_func(p, "walk", T_VOID);
  IrBlock wb = blk();
  with_args(I(&wb, IR_CALL, -1), 0, NULL)->callee = 0;
  FOR(&walk->body, reg(walk, T_INT, "k"), KI(walk, &walk->body, 1), KI(walk, &walk->body, 2), wb);
  /* void f() { real u ~ fake(0, 1); } */
  IrFunc *f = prog_func(p, "f", T_VOID);
  SAMPLE(f, &f->body, reg(f, T_REAL, "u"), "u", KR(f, &f->body, 0), KR(f, &f->body, 1));

  int mu = KR(m, b, 0), sd = KR(m, b, 1), one = KI(m, b, 1);
  SAMPLE(m, b, reg(m, T_REAL, "theta"), "theta", mu, sd);
  int i = reg(m, T_INT, "i"), j = reg(m, T_INT, "j");
  IrBlock lb = blk();
  SAMPLE(m, &lb, reg(m, T_REAL, "x"), "x", mu, sd);
  FOR(b, i, one, KI(m, b, 3), lb);
  IrBlock in2 = blk(), out2 = blk();
  SAMPLE(m, &in2, reg(m, T_REAL, "y"), "y", mu, sd);
  FOR(&out2, j, KI(m, &out2, 4), KI(m, &out2, 5), in2);
  FOR(b, i, one, KI(m, b, 2), out2);
  with_args(I(b, IR_CALL, -1), 0, NULL)->callee = 1; /* walk() */
  /* n = 0; while (n < 2) { real z ~ ...; n += 1 } */
  int n = reg(m, T_INT, "n"), c = reg(m, T_BOOL, NULL);
  MOVE(b, n, KI(m, b, 0));
  IrBlock cb = blk(), wbody = blk();
  BIN_TO(&cb, OP_LT, c, n, KI(m, &cb, 2));
  SAMPLE(m, &wbody, reg(m, T_REAL, "z"), "z", mu, sd);
  BIN_TO(&wbody, OP_ADD, n, n, one);
  WHILE(b, cb, c, wbody);
  with_args(I(b, IR_CALL, -1), 0, NULL)->callee = 2; /* f() */
  with_args(I(b, IR_CALL, -1), 0, NULL)->callee = 2; /* f() again */
  /* a loop around a call: for (i in 1:2) f() -> f[1]/u, f[2]/u */
  IrBlock fb = blk();
  with_args(I(&fb, IR_CALL, -1), 0, NULL)->callee = 2;
  FOR(b, i, KI(m, b, 1), KI(m, b, 2), fb);

  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "address program runs (%s)", r->d.msg);
  const char *want[] = {"theta", "x[1]", "x[2]", "x[3]", "y[1,4]", "y[1,5]", "y[2,4]", "y[2,5]",
                        "walk/step[1]/x", "walk/step[2]/x", "z", "z#2", "f/u", "f/u#2",
                        "f[1]/u", "f[2]/u"};
  int nw = (int)(sizeof want / sizeof want[0]);
  tap_ok(r->rec.nsample == nw, "%d latents reached the handler (got %d)", nw, r->rec.nsample);
  char got[1024] = "", exp[1024] = "";
  for (int k = 0; k < nw; k++) {
    strcat(exp, want[k]);
    strcat(exp, " ");
    if (k < r->rec.nsample) {
      strcat(got, r->rec.addr[k]);
      strcat(got, " ");
    }
  }
  tap_streq(got, exp, "addresses: loops, nested loops, call paths, duplicates");

  /* addresses are stable: a second run gives the same ones (fresh used-set) */
  InterpState *st2 = interp_start(r->in, 2, 0, false);
  Rec rec2;
  rec_init(&rec2);
  Diag d2;
  diag_init(&d2);
  interp_run(st2, &rec2.h, &d2);
  tap_ok(rec2.nsample == nw && strcmp(rec2.addr[11], "z#2") == 0 && strcmp(rec2.addr[0], "theta") == 0,
         "a second run starts with a fresh address set");

  /* the loop indices are written by hand (interp.c's loop_suffix_to):
     negative ones, several digits, both in one address */
  IrProgram *q = prog_new();
  IrFunc *qm = &q->main;
  IrBlock *qb = &q->model_b;
  int qmu = KR(qm, qb, 0), qsd = KR(qm, qb, 1);
  int a = reg(qm, T_INT, "a"), e = reg(qm, T_INT, "e");
  IrBlock inner = blk(), outer = blk();
  SAMPLE(qm, &inner, reg(qm, T_REAL, "w"), "w", qmu, qsd);
  FOR(&outer, e, KI(qm, &outer, 99), KI(qm, &outer, 100), inner);
  FOR(qb, a, KI(qm, qb, -10), KI(qm, qb, -9), outer);
  Run *rq = run_prog(q, false);
  char gq[256] = "";
  for (int k = 0; k < rq->rec.nsample; k++) {
    strcat(gq, rq->rec.addr[k]);
    strcat(gq, " ");
  }
  tap_streq(gq, "w[-10,99] w[-10,100] w[-9,99] w[-9,100] ",
            "addresses of negative and many-digit loop indices");
}

static void test_handlers(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int mu = KR(m, b, 1.5), sd = KI(m, b, 2), lo = KI(m, b, 0), hi = KR(m, b, 5);
  int s = reg(m, T_REAL, "s");
  IrInstr *si = SAMPLE(m, b, s, "s", mu, sd);
  si->con.kind = CON_LOWER_UPPER;
  si->con.lower = lo;
  si->con.upper = hi;
  int v = reg(m, T_VEC, "v");
  int three = KI(m, b, 3);
  IrInstr *vsi = SAMPLE(m, b, v, "v", mu, sd);
  vsi->nsizes = 1;
  vsi->sizes = ints(1, three);
  int y = ARR(m, b, arr_of(T_REAL, 1), 4, ints(4, KR(m, b, 1), KR(m, b, 2), KR(m, b, 3), KR(m, b, 4)));
  OBSERVE(b, y, s, sd);
  OP(b, IR_FACTOR, -1, 1, KR(m, b, -2.5));
  OP(b, IR_CONDITION, -1, 1, KB(m, b, false));
  OP(b, IR_CONDITION, -1, 1, KB(m, b, true));
  int os = OUT(p, s), ov = OUT(p, v), oy = OUT(p, y);
  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "handler program runs (%s)", r->d.msg);
  tap_ok(r->rec.nsample == 2 && r->rec.nobs == 1 && r->rec.nfactor == 3, "2 samples, 1 observe, 3 factors");
  const DistCall *dc = &r->rec.dc[0];
  tap_ok(dc->fam == &FAKE && dc->np == 2, "sample: family and parameter count");
  tap_ok(dc->p[0].k == V_REAL && dc->p[0].r == 1.5 && val_as_real(dc->p[1]) == 2, "sample: parameter values");
  tap_ok(dc->lower == 0 && dc->upper == 5, "sample: declared bounds [0, 5]");
  tap_ok(ty_eq(dc->type, T_REAL) && dc->nsizes == 0, "sample: scalar real type");
  tap_ok(outv(r, os).k == V_REAL && outv(r, os).r == 100, "the handler's value is stored");
  const DistCall *dv = &r->rec.dc[1];
  tap_ok(ty_eq(dv->type, T_VEC) && dv->nsizes == 1 && dv->sizes[0] == 3, "sample: vector[3] type and sizes");
  tap_streq(outs(r, ov), "[1, 1, 1]", "vector latent stored");
  const DistCall *od = &r->rec.odc[0];
  tap_ok(ty_eq(od->type, arr_of(T_REAL, 1)) && od->nsizes == 1 && od->sizes[0] == 4,
         "observe: shape from the observed value (real[4])");
  tap_ok(od->p[0].r == 100, "observe: parameters evaluated after the sample");
  tap_ok(r->rec.ox[0].k == V_ARR && r->rec.ox[0].a == outv(r, oy).a, "observe: the observed value itself");
  tap_ok(r->rec.lw[0] == -2.5 && isinf(r->rec.lw[1]) && r->rec.lw[1] < 0 && r->rec.lw[2] == 0,
         "factor(-2.5), condition(false) = -inf, condition(true) = 0");
  tap_ok(interp_events(r->st) == 4, "4 events (observe, factor, 2 conditions)");

  /* a parameter error is a runtime error at the sample */
  p = prog_new();
  SAMPLE(&p->main, &p->model_b, reg(&p->main, T_REAL, "a"), "a", KR(&p->main, &p->model_b, 0),
         KR(&p->main, &p->model_b, -1));
  r = run_prog(p, false);
  tap_ok(r->rs == RUN_ERROR && r->d.code == DIAG_RUNTIME && strstr(r->d.msg, "sigma") &&
             strncmp(r->d.msg, at(LAST_LINE, ""), strlen(at(LAST_LINE, ""))) == 0,
         "bad parameter: runtime error at the sample (%s)", r->d.msg);

  /* a handler returning the wrong shape is an internal error */
  p = prog_new();
  int two = KI(&p->main, &p->model_b, 2);
  IrInstr *vi = SAMPLE(&p->main, &p->model_b, reg(&p->main, T_VEC, "w"), "w", KR(&p->main, &p->model_b, 0),
                       KR(&p->main, &p->model_b, 1));
  vi->nsizes = 1;
  vi->sizes = ints(1, two);
  Run *r2 = calloc(1, sizeof(Run));
  diag_init(&r2->d);
  rec_init(&r2->rec);
  r2->rec.bad_shape = true;
  r2->in = interp_new(p, NULL);
  r2->st = interp_start(r2->in, 1, 0, false);
  r2->rs = interp_run(r2->st, &r2->rec.h, &r2->d);
  tap_ok(r2->rs == RUN_ERROR && r2->d.code == DIAG_INTERNAL && strstr(r2->d.msg, "handler returned real"),
         "wrong shape from the handler is an internal error (%s)", r2->d.msg);
}

/* ---- suspension and forks ---- */

static void test_suspend(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int mu = KR(m, b, 0), sd = KR(m, b, 1);
  SAMPLE(m, b, reg(m, T_REAL, "x"), "x", mu, sd);
  OBSERVE(b, KR(m, b, 0.5), mu, sd);
  int a = reg(m, T_INT, "a");
  MOVE(b, a, KI(m, b, 1));
  OBSERVE(b, KR(m, b, 0.7), mu, sd);
  int c = reg(m, T_INT, "c");
  MOVE(b, c, KI(m, b, 2));
  int oa = OUT(p, a), oc = OUT(p, c);
  Interp *in = interp_new(p, NULL);
  Diag d;
  diag_init(&d);
  interp_load_data(in, NULL, &d);
  InterpState *st = interp_start(in, 1, 0, false);
  Rec rec;
  rec_init(&rec);
  rec.suspend_obs = true;
  RunStatus s1 = interp_run(st, &rec.h, &d);
  tap_ok(s1 == RUN_SUSPENDED && interp_events(st) == 1 && interp_output(st, oa).k == V_NONE,
         "suspended right after the first observation");
  RunStatus s2 = interp_run(st, &rec.h, &d);
  tap_ok(s2 == RUN_SUSPENDED && interp_events(st) == 2 && interp_output(st, oa).i == 1 &&
             interp_output(st, oc).k == V_NONE,
         "resumed at the next instruction, suspended at the second");
  RunStatus s3 = interp_run(st, &rec.h, &d);
  tap_ok(s3 == RUN_DONE && interp_output(st, oc).i == 2 && rec.nsample == 1 && rec.nobs == 2,
         "ran to the end; nothing re-executed");
  tap_ok(interp_run(st, &rec.h, &d) == RUN_DONE, "running a finished state again is RUN_DONE");
}

static void test_fork(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int mu = KR(m, b, 0), sd = KR(m, b, 1);
  int big = reg(m, T_VEC, "big");
  DECL(b, big, 1, ints(1, KI(m, b, 1000)));
  STORE(b, big, KR(m, b, 1), 1, ixv(1, IXS(KI(m, b, 1))));
  OBSERVE(b, KR(m, b, 0.5), mu, sd); /* suspend here */
  STORE(b, big, KR(m, b, 5), 1, ixv(1, IXS(KI(m, b, 2))));
  SAMPLE(m, b, reg(m, T_REAL, "z"), "z", mu, sd);
  int ob = OUT(p, big);
  Interp *in = interp_new(p, NULL);
  Diag d;
  diag_init(&d);
  interp_load_data(in, NULL, &d);
  InterpState *par = interp_start(in, 1, 0, false);
  Rec rec;
  rec_init(&rec);
  rec.suspend_obs = true;
  interp_run(par, &rec.h, &d);
  ValTen *before = interp_output(par, ob).t;
  InterpState *ch = interp_fork(par, 7, 1);
  InterpState *ch2 = interp_fork(par, 8, 2);
  tap_ok(interp_output(ch, ob).t == before, "fork shares the 1000-vector (no copy)");
  tap_ok(interp_events(ch) == 1, "fork keeps the event count");
  Rec rc;
  rec_init(&rc);
  RunStatus sc = interp_run(ch, &rc.h, &d);
  Value cv = interp_output(ch, ob), pv = interp_output(par, ob);
  tap_ok(sc == RUN_DONE && cv.t->d[1] == 5 && cv.t->d[0] == 1, "the fork ran on and wrote big[2] = 5");
  tap_ok(pv.t == before && isnan(pv.t->d[1]), "the parent's vector is untouched");
  tap_ok(cv.t != before, "the fork copied on its first write");
  tap_ok(rc.nsample == 1 && strcmp(rc.addr[0], "z") == 0, "the fork's latent has the plain address");
  Rec rp;
  rec_init(&rp);
  RunStatus sp = interp_run(par, &rp.h, &d);
  pv = interp_output(par, ob);
  tap_ok(sp == RUN_DONE && pv.t->d[1] == 5 && rp.nsample == 1 && strcmp(rp.addr[0], "z") == 0,
         "the parent resumes independently with the same address");
  tap_ok(interp_output(ch, ob).t->d[1] == 5 && cv.t != pv.t, "parent and fork end with separate vectors");
  tap_ok(isnan(interp_output(ch2, ob).t->d[1]), "a fork does not see the parent's later writes");
  Rec r2;
  rec_init(&r2);
  tap_ok(interp_run(ch2, &r2.h, &d) == RUN_DONE && interp_output(ch2, ob).t->d[1] == 5 &&
             interp_output(ch2, ob).t != interp_output(par, ob).t,
         "the second fork runs on its own copy");
}

/* ---- data ---- */

typedef struct FakeSrc {
  DataSource ds;
  int calls;
  const char *names[8];
  const char *desc[8];
  int nsizes[8], size0[8];
} FakeSrc;

static bool fake_get(DataSource *src, const char *name, Type t, int nsizes, const int64_t *sizes,
                     const char *size_desc, ConKind con, double lo, double hi, Value *out, Diag *d) {
  FakeSrc *fs = (FakeSrc *)src;
  int k = fs->calls++;
  fs->names[k] = name;
  fs->desc[k] = size_desc;
  fs->nsizes[k] = nsizes;
  fs->size0[k] = nsizes ? (int)sizes[0] : -1;
  if (strcmp(name, "J") == 0) {
    *out = val_int(3);
    return true;
  }
  if (strcmp(name, "y") == 0) {
    *out = val_arr(sizes[0]);
    for (int i = 0; i < sizes[0]; i++) out->a->e[i] = val_real(i + 1);
    return true;
  }
  diag_error(d, DIAG_DATA, (SrcPos){0}, "data.json: no field \"%s\"", name);
  return false;
}

static void test_data(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  int J = reg(m, T_INT, "J"), y = reg(m, arr_of(T_REAL, 1), "y");
  I(&p->data_b, IR_DATA, J)->name = "J";
  IrInstr *yi = I(&p->data_b, IR_DATA, y);
  yi->name = "y";
  yi->nsizes = 1;
  yi->sizes = ints(1, J);
  /* transformed data: J2 = J * 2 */
  int J2 = reg(m, T_INT, "J2");
  BIN_TO(&p->data_b, OP_MUL, J2, J, KI(m, &p->data_b, 2));
  IrBlock *b = &p->model_b;
  int s = reg(m, T_REAL, "s");
  BIN_TO(b, OP_ADD, s, INDEX(m, b, T_REAL, y, 1, ixv(1, IXS(KI(m, b, 2)))), J2);
  /* a store into the data register (the checker forbids it in source; the
     interpreter must still keep the shared data intact) */
  STORE(b, y, KR(m, b, 100), 1, ixv(1, IXS(KI(m, b, 1))));
  int os = OUT(p, s), oy = OUT(p, y);
  Interp *in = interp_new(p, NULL);
  FakeSrc fs = {{fake_get, NULL}, 0, {0}, {0}, {0}, {0}};
  Diag d;
  diag_init(&d);
  bool ok = interp_load_data(in, &fs.ds, &d);
  tap_ok(ok && fs.calls == 2, "data block asks the source twice (%s)", d.msg);
  tap_ok(strcmp(fs.names[0], "J") == 0 && fs.nsizes[0] == 0 && fs.desc[0] == NULL, "J: no sizes");
  tap_ok(strcmp(fs.names[1], "y") == 0 && fs.nsizes[1] == 1 && fs.size0[1] == 3, "y: sizes (3)");
  tap_streq(fs.desc[1], "J = 3", "y: size description names J");
  InterpState *st = interp_start(in, 1, 0, false);
  Rec rec;
  rec_init(&rec);
  tap_ok(interp_run(st, &rec.h, &d) == RUN_DONE && interp_output(st, os).r == 8, "model sees data: y[2] + 2J = 8");
  tap_streq(val_to_string(interp_output(st, oy)), "[100, 2, 3]", "the run's own y changed");
  InterpState *st2 = interp_start(in, 1, 0, false);
  tap_streq(val_to_string(interp_output(st2, oy)), "[1, 2, 3]", "the loaded data is untouched for the next run");

  Interp *in2 = interp_new(p, NULL);
  Diag d2;
  diag_init(&d2);
  tap_ok(!interp_load_data(in2, NULL, &d2) && d2.code == DIAG_DATA, "no data source: data error");
  tap_streq(d2.msg, gc_printf("t.ppl:%d:1: missing data \"J\"", p->data_b.ins[0].pos.line),
            "missing data message");
}

/* ---- print, reject, builtins, generated block ---- */

static bool twice_eval(const Builtin *bi, BuiltinCtx *ctx, int nargs, const Value *args, Value *out,
                       char *err, size_t errsz) {
  if (!ctx->rng || !ctx->out) {
    snprintf(err, errsz, "no context");
    return false;
  }
  *out = val_real(2 * val_as_real(args[0]));
  return true;
}
static bool boom_eval(const Builtin *bi, BuiltinCtx *ctx, int nargs, const Value *args, Value *out,
                      char *err, size_t errsz) {
  snprintf(err, errsz, "boom: domain error");
  return false;
}
static const Builtin TWICE = {.name = "twice", .eval = twice_eval};
static const Builtin BOOM = {.name = "boom", .eval = boom_eval};

static void test_io(void) {
  IrProgram *p = prog_new();
  IrFunc *m = &p->main;
  IrBlock *b = &p->model_b;
  int v = VEC(m, b, 2, (double[]){1, 2.5});
  OP(b, IR_PRINT, -1, 4, KS(m, b, "x = "), KI(m, b, 3), KS(m, b, " v = "), v);
  OP(b, IR_PRINT, -1, 1, KB(m, b, true));
  int t = reg(m, T_REAL, "t");
  IrInstr *bi = OP(b, IR_BUILTIN, t, 1, KI(m, b, 21));
  bi->builtin = &TWICE;
  int g = reg(m, T_INT, "g");
  MOVE(&p->gen_b, g, KI(m, &p->gen_b, 1));
  int ot = OUT(p, t), og = OUT(p, g);
  Run *r = run_prog(p, false);
  tap_ok(r->rs == RUN_DONE, "print program runs (%s)", r->d.msg);
  tap_streq(r->out, "x = 3 v = [1, 2.5]\ntrue\n", "print output, one line per print");
  tap_ok(outv(r, ot).k == V_REAL && outv(r, ot).r == 42, "builtin evaluated with its context");
  tap_ok(outv(r, og).k == V_NONE, "generated block skipped when gen = false");
  r = run_prog(p, true);
  tap_ok(r->rs == RUN_DONE && outv(r, og).k == V_INT && outv(r, og).i == 1, "generated block runs when gen = true");

  p = prog_new();
  OP(&p->model_b, IR_REJECT, -1, 2, KS(&p->main, &p->model_b, "bad value "), KI(&p->main, &p->model_b, 2));
  EXPECT_ERROR(p, LAST_LINE, "reject: bad value 2", "reject");

  p = prog_new();
  bi = with_args(I(&p->model_b, IR_BUILTIN, reg(&p->main, T_REAL, NULL)), 0, NULL);
  bi->builtin = &BOOM;
  EXPECT_ERROR(p, LAST_LINE, "boom: domain error", "builtin error gets the position");
}

/* ---- matrix products under AD: one block node each ---- */

/* A column-major r x c value with its elements as fresh tape variables
 * (every other id, so the block sees scattered ids) or constant. */
static Value ad_ten(Tape *t, ValKind k, int r, int c, double base, bool nodes) {
  Value v = k == V_VEC ? val_vec(r) : k == V_ROWVEC ? val_rowvec(c) : val_mat(r, c);
  size_t n = (size_t)r * (size_t)c;
  if (nodes) v.t->ad = gc_alloc_atomic(sizeof(int32_t) * n);
  for (size_t i = 0; i < n; i++) {
    v.t->d[i] = base + 0.37 * (double)i - 0.05 * (double)(i * i % 7);
    if (nodes) {
      v.t->ad[i] = tape_var(t, v.t->d[i]);
      tape_var(t, 0); /* a gap */
    }
  }
  return v;
}

static void test_products_ad(void) {
  static const struct { ValKind ka, kb; int n, K, m; bool na, nb; const char *what; } cases[] = {
      {V_MAT, V_VEC, 5, 4, 1, true, true, "matrix * vector"},
      {V_MAT, V_VEC, 5, 4, 1, false, true, "data matrix * vector"},
      {V_MAT, V_MAT, 3, 4, 6, true, true, "matrix * matrix"},
      {V_MAT, V_MAT, 3, 4, 6, true, false, "matrix * data matrix"},
      {V_ROWVEC, V_MAT, 1, 4, 3, true, true, "row_vector * matrix"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    Tape *t = tape_new();
    Value a = ad_ten(t, cases[c].ka, cases[c].n, cases[c].K, -0.8, cases[c].na);
    Value b = ad_ten(t, cases[c].kb, cases[c].K, cases[c].m, 0.3, cases[c].nb);
    size_t before = tape_size(t);
    Value y, y0;
    char err[128];
    bool ok = op_binary_ad(t, OP_MUL, a, b, &y, err, sizeof err) &&
              op_binary(OP_MUL, a, b, &y0, err, sizeof err);
    int n = cases[c].n, K = cases[c].K, m = cases[c].m;
    size_t ny = (size_t)n * m;
    ok = ok && val_numel(y) == ny && y.t->ad;
    bool same = ok && memcmp(y.t->d, y0.t->d, sizeof(double) * ny) == 0;
    /* one id per output (and per gathered operand element), consecutive */
    bool run = ok;
    for (size_t i = 1; run && i < ny; i++) run = y.t->ad[i] == y.t->ad[0] + (int32_t)i;
    size_t grown = tape_size(t) - before;
    size_t bound = ny + (cases[c].na ? (size_t)n * K : 0) + (cases[c].nb ? (size_t)K * m : 0);
    tap_ok(same && run && grown <= bound,
           "%s: the value is op_binary's bit for bit, the output is one block of %zu ids (%zu ids recorded)",
           cases[c].what, ny, grown);
    /* gradient of sum(w .* y) against the matrix calculus, element by element */
    double *adj = calloc(tape_size(t) + 2, sizeof(double)), worst = 0;
    for (size_t i = 0; ok && i < ny; i++) adj[y.t->ad[i]] = 1 + 0.1 * (double)i; /* w */
    if (ok) tape_backward_seeded(t, adj);
    for (int i = 0; ok && i < n; i++)
      for (int k = 0; k < K; k++) {
        double ga = 0; /* d/dA[i,k] = sum_j w[i,j] B[k,j] */
        for (int j = 0; j < m; j++) ga += (1 + 0.1 * (double)(j * n + i)) * b.t->d[(size_t)j * K + k];
        if (cases[c].na) worst = fmax(worst, fabs(adj[a.t->ad[(size_t)k * n + i]] - ga) / fmax(1, fabs(ga)));
      }
    for (int k = 0; ok && k < K; k++)
      for (int j = 0; j < m; j++) {
        double gb = 0;
        for (int i = 0; i < n; i++) gb += (1 + 0.1 * (double)(j * n + i)) * a.t->d[(size_t)k * n + i];
        if (cases[c].nb) worst = fmax(worst, fabs(adj[b.t->ad[(size_t)j * K + k]] - gb) / fmax(1, fabs(gb)));
      }
    tap_ok(ok && worst < 1e-14, "%s: gradient equals the matrix calculus (max rel err %.2g)",
           cases[c].what, worst);
    free(adj);
  }
}

int main(void) {
  gc_init();
  test_int_arith();
  test_int_errors();
  test_reals_strings();
  test_vectors();
  test_indexing();
  test_index_errors();
  test_loops();
  test_functions();
  test_addresses();
  test_handlers();
  test_suspend();
  test_fork();
  test_data();
  test_io();
  test_products_ad();
  return tap_done();
}
