/* test_data.c — the CmdStan-JSON data loader: values built for each declared
 * type, and the exact message for each kind of bad input.
 *
 * Expected values are the JSON literals themselves (plus the column-major
 * rule for matrices); expected messages follow the formats fixed in
 * api/data.h and INTEROP.md.  Where a column number depends on jansson, the
 * test compares against jansson's own report for an equally long text.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/data.h"
#include "core/value.h"
#include "tap.h"

/* One get() call: type base/ndims, sizes, size description, constraint. */
typedef struct Req {
  TyBase base;
  int ndims;
  int nsizes;
  int64_t sizes[6];
  const char *desc;
  ConKind con;
  double lo, hi;
} Req;

#define NB NAN /* no bound */

static bool get(DataSource *src, const char *name, Req q, Value *out, Diag *d) {
  return src->get(src, name, ty_make(q.base, q.ndims), q.nsizes, q.sizes, q.desc, q.con, q.lo,
                  q.hi, out, d);
}

/* Parse json and read `name`; on failure returns V_NONE and the message. */
static Value load(const char *json, const char *name, Req q, const char **msg) {
  Diag d;
  diag_init(&d);
  *msg = "";
  DataSource *src = data_json_string(json, strlen(json), "data.json", &d);
  Value v = val_none();
  if (!src || !get(src, name, q, &v, &d)) {
    *msg = gc_strdup(d.msg);
    return val_none();
  }
  return v;
}

static const Req INT = {TY_INT, 0, 0, {0}, NULL, CON_NONE, NB, NB};
static const Req REAL = {TY_REAL, 0, 0, {0}, NULL, CON_NONE, NB, NB};

static void test_scalars(void) {
  const char *msg;
  Value v = load("{\"N\": 3}", "N", INT, &msg);
  tap_ok(v.k == V_INT && v.i == 3, "int scalar");
  v = load("{\"N\": -9007199254740993}", "N", INT, &msg);
  tap_ok(v.k == V_INT && v.i == -9007199254740993LL, "int beyond 2^53 kept exactly");
  v = load("{\"x\": 2}", "x", REAL, &msg);
  tap_ok(v.k == V_REAL && v.r == 2.0, "real accepts an int");
  v = load("{\"x\": -2.5e-3}", "x", REAL, &msg);
  tap_ok(v.k == V_REAL && v.r == -2.5e-3, "real scalar");

  static const struct {
    const char *text;
    double want;
  } specials[] = {{"\"Inf\"", INFINITY},        {"\"Infinity\"", INFINITY},
                  {"\"-Inf\"", -INFINITY},      {"\"-Infinity\"", -INFINITY},
                  {"\"+inf\"", INFINITY},       {"\"-inf\"", -INFINITY},
                  {"\"inf\"", INFINITY},        {"\"NaN\"", NAN},
                  {"\"nan\"", NAN},             {"Infinity", INFINITY},
                  {"-Infinity", -INFINITY},     {"NaN", NAN}};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
    char *json = gc_printf("{\"x\": %s}", specials[i].text);
    v = load(json, "x", REAL, &msg);
    bool ok = v.k == V_REAL &&
              (isnan(specials[i].want) ? isnan(v.r) : v.r == specials[i].want);
    tap_ok(ok, "special real %s", specials[i].text);
  }

  Req b = {TY_BOOL, 0, 0, {0}, NULL, CON_NONE, NB, NB};
  v = load("{\"b\": true}", "b", b, &msg);
  tap_ok(v.k == V_BOOL && v.b, "bool true");
  v = load("{\"b\": 0}", "b", b, &msg);
  tap_ok(v.k == V_BOOL && !v.b, "bool from 0");

  Req s = {TY_STRING, 0, 0, {0}, NULL, CON_NONE, NB, NB};
  v = load("{\"s\": \"NaN and Infinity \\\"quoted\\\" h\\u00e9\"}", "s", s, &msg);
  tap_ok(v.k == V_STR && strcmp(v.s->data, "NaN and Infinity \"quoted\" h\xc3\xa9") == 0,
         "string with escapes; NaN inside a string untouched");
}

static void test_containers(void) {
  const char *msg;
  Req q = {TY_REAL, 1, 1, {3}, "J = 3", CON_NONE, NB, NB};
  Value v = load("{\"y\": [1, 2.5, -3]}", "y", q, &msg);
  tap_ok(v.k == V_ARR && v.a->n == 3 && v.a->e[0].k == V_REAL && v.a->e[0].r == 1 &&
             v.a->e[1].r == 2.5 && v.a->e[2].r == -3,
         "real array");

  q = (Req){TY_INT, 1, 1, {4}, NULL, CON_NONE, NB, NB};
  v = load("{\"k\": [0, 1, 5, -2]}", "k", q, &msg);
  tap_ok(v.k == V_ARR && v.a->n == 4 && v.a->e[2].k == V_INT && v.a->e[2].i == 5 &&
             v.a->e[3].i == -2,
         "int array");

  q = (Req){TY_VECTOR, 0, 1, {3}, "N = 3", CON_NONE, NB, NB};
  v = load("{\"v\": [1, 2, 3.5]}", "v", q, &msg);
  tap_ok(v.k == V_VEC && v.t->rows == 3 && v.t->cols == 1 && v.t->d[2] == 3.5, "vector");

  q = (Req){TY_ROWVEC, 0, 1, {2}, NULL, CON_NONE, NB, NB};
  v = load("{\"r\": [\"-Inf\", 4]}", "r", q, &msg);
  tap_ok(v.k == V_ROWVEC && v.t->rows == 1 && v.t->cols == 2 && isinf(v.t->d[0]) &&
             v.t->d[1] == 4,
         "row vector with an infinity");

  q = (Req){TY_MATRIX, 0, 2, {2, 3}, "N = 2, K = 3", CON_NONE, NB, NB};
  v = load("{\"X\": [[1, 2, 3], [4, 5, 6]]}", "X", q, &msg);
  static const double colmajor[] = {1, 4, 2, 5, 3, 6};
  bool ok = v.k == V_MAT && v.t->rows == 2 && v.t->cols == 3;
  for (int i = 0; ok && i < 6; i++) ok = v.t->d[i] == colmajor[i];
  tap_ok(ok, "matrix given by rows is stored column-major");

  q = (Req){TY_INT, 2, 2, {2, 3}, NULL, CON_NONE, NB, NB};
  v = load("{\"z\": [[1, 2, 3], [4, 5, 6]]}", "z", q, &msg);
  ok = v.k == V_ARR && v.a->n == 2 && v.a->e[1].k == V_ARR && v.a->e[1].a->n == 3;
  ok = ok && v.a->e[0].a->e[2].i == 3 && v.a->e[1].a->e[0].i == 4;
  tap_ok(ok, "2-d int array nests row-major");

  q = (Req){TY_VECTOR, 1, 2, {3, 2}, "J = 3, K = 2", CON_NONE, NB, NB};
  v = load("{\"vs\": [[1, 2], [3, 4], [5, 6]]}", "vs", q, &msg);
  ok = v.k == V_ARR && v.a->n == 3 && v.a->e[2].k == V_VEC && v.a->e[2].t->rows == 2 &&
       v.a->e[2].t->d[0] == 5 && v.a->e[2].t->d[1] == 6;
  tap_ok(ok, "array of vectors");

  q = (Req){TY_MATRIX, 1, 3, {2, 2, 2}, NULL, CON_NONE, NB, NB};
  v = load("{\"Ms\": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}", "Ms", q, &msg);
  ok = v.k == V_ARR && v.a->n == 2 && v.a->e[1].k == V_MAT && v.a->e[1].t->d[1] == 7 &&
       v.a->e[1].t->d[2] == 6;
  tap_ok(ok, "array of matrices");

  q = (Req){TY_BOOL, 1, 1, {4}, NULL, CON_NONE, NB, NB};
  v = load("{\"f\": [true, false, 1, 0]}", "f", q, &msg);
  ok = v.k == V_ARR && v.a->n == 4 && v.a->e[0].k == V_BOOL && v.a->e[0].b && !v.a->e[1].b &&
       v.a->e[2].b && !v.a->e[3].b;
  tap_ok(ok, "bool array from true/false/1/0");

  q = (Req){TY_STRING, 1, 1, {2}, NULL, CON_NONE, NB, NB};
  v = load("{\"w\": [\"there\", \"thre\"]}", "w", q, &msg);
  tap_ok(v.k == V_ARR && v.a->n == 2 && v.a->e[1].k == V_STR &&
             strcmp(v.a->e[1].s->data, "thre") == 0,
         "string array");

  q = (Req){TY_REAL, 1, 1, {0}, "J = 0", CON_NONE, NB, NB};
  v = load("{\"y\": []}", "y", q, &msg);
  tap_ok(v.k == V_ARR && v.a->n == 0, "zero-length array");
  q = (Req){TY_MATRIX, 0, 2, {0, 3}, NULL, CON_NONE, NB, NB};
  v = load("{\"X\": []}", "X", q, &msg);
  tap_ok(v.k == V_MAT && v.t->rows == 0 && v.t->cols == 3, "matrix with zero rows keeps its cols");

  q = (Req){TY_REAL, 1, 3, {2, 0, 0}, NULL, CON_NONE, NB, NB};
  v = load("{\"a\": 1, \"y\": [NaN, Infinity], \"zz\": {\"nested\": [1, 2]}}", "y",
           (Req){TY_REAL, 1, 1, {2}, NULL, CON_NONE, NB, NB}, &msg);
  tap_ok(v.k == V_ARR && isnan(v.a->e[0].r) && isinf(v.a->e[1].r),
         "bare NaN/Infinity in arrays; other fields (even objects) ignored");
}

static void test_constraints_ok(void) {
  const char *msg;
  Value v = load("{\"p\": [0.2, 0.3, 0.5]}", "p",
                 (Req){TY_VECTOR, 0, 1, {3}, NULL, CON_SIMPLEX, NB, NB}, &msg);
  tap_ok(v.k == V_VEC, "simplex accepted %s", msg);
  v = load("{\"s\": [0, 2.5]}", "s", (Req){TY_REAL, 1, 1, {2}, NULL, CON_LOWER, 0, NB}, &msg);
  tap_ok(v.k == V_ARR, "lower bound 0 admits 0 %s", msg);
  v = load("{\"k\": 1}", "k", (Req){TY_INT, 0, 0, {0}, NULL, CON_LOWER_UPPER, 0, 1}, &msg);
  tap_ok(v.k == V_INT, "int within [0, 1] %s", msg);
  v = load("{\"o\": [-1, 0, 2]}", "o", (Req){TY_VECTOR, 0, 1, {3}, NULL, CON_ORDERED, NB, NB},
           &msg);
  tap_ok(v.k == V_VEC, "ordered accepted %s", msg);
  v = load("{\"o\": [0, 1e-3, 2]}", "o",
           (Req){TY_VECTOR, 0, 1, {3}, NULL, CON_POS_ORDERED, NB, NB}, &msg);
  tap_ok(v.k == V_VEC, "positive_ordered accepted %s", msg);
  v = load("{\"u\": [0.6, 0.8]}", "u", (Req){TY_VECTOR, 0, 1, {2}, NULL, CON_UNIT_VECTOR, NB, NB},
           &msg);
  tap_ok(v.k == V_VEC, "unit vector accepted %s", msg);
  v = load("{\"L\": [[1, 0], [0.6, 0.8]]}", "L",
           (Req){TY_MATRIX, 0, 2, {2, 2}, NULL, CON_CHOL_CORR, NB, NB}, &msg);
  tap_ok(v.k == V_MAT, "Cholesky factor of a correlation matrix accepted %s", msg);
  v = load("{\"S\": [[2, 0.5], [0.5, 1]]}", "S",
           (Req){TY_MATRIX, 0, 2, {2, 2}, NULL, CON_COV, NB, NB}, &msg);
  tap_ok(v.k == V_MAT, "covariance matrix accepted %s", msg);
}

typedef struct {
  const char *json, *name;
  Req q;
  const char *msg;
} BadCase;

static const BadCase bad[] = {
    {"{\"y\": [1]}", "J", {TY_INT, 0, 0, {0}, NULL, CON_NONE, NB, NB},
     "data.json: missing data \"J\""},
    {"{\"y\": [28, 8, -3, 7, -1, 1, 18]}", "y", {TY_REAL, 1, 1, {8}, "J = 8", CON_NONE, NB, NB},
     "data.json: \"y\": expected 8 reals (J = 8), got 7"},
    {"{\"N\": 3.5}", "N", {TY_INT, 0, 0, {0}, NULL, CON_NONE, NB, NB},
     "data.json: \"N\": expected an int, got 3.5"},
    {"{\"N\": 3.0}", "N", {TY_INT, 0, 0, {0}, NULL, CON_NONE, NB, NB},
     "data.json: \"N\": expected an int, got 3.0"},
    {"{\"X\": [[1, 2, 3, 4], [5, 6, 7, 8]]}", "X",
     {TY_MATRIX, 0, 2, {3, 4}, "N = 3, K = 4", CON_NONE, NB, NB},
     "data.json: \"X\": expected 3 rows (N = 3), got 2"},
    {"{\"X\": [[1, 2, 3, 4], [5, 6, 7], [1, 2, 3, 4]]}", "X",
     {TY_MATRIX, 0, 2, {3, 4}, "N = 3, K = 4", CON_NONE, NB, NB},
     "data.json: \"X\": row 2: expected 4 columns (K = 4), got 3"},
    {"{\"y\": 2.5}", "y", {TY_REAL, 1, 1, {8}, "J = 8", CON_NONE, NB, NB},
     "data.json: \"y\": expected an array of 8 reals (J = 8), got a number"},
    {"{\"y\": 2.5}", "y", {TY_REAL, 1, 1, {1}, "J = 1", CON_NONE, NB, NB},
     "data.json: \"y\": expected an array of 1 real (J = 1), got a number (a length-1 array is "
     "written [x])"},
    {"{\"v\": 2}", "v", {TY_VECTOR, 0, 1, {1}, NULL, CON_NONE, NB, NB},
     "data.json: \"v\": expected an array of 1 real, got a number (a length-1 array is written "
     "[x])"},
    {"{\"sigma\": [1, 1, -1]}", "sigma", {TY_REAL, 1, 1, {3}, "J = 3", CON_LOWER, 0, NB},
     "data.json: \"sigma[3]\": -1 is below the lower bound 0"},
    {"{\"p\": 1.5}", "p", {TY_REAL, 0, 0, {0}, NULL, CON_LOWER_UPPER, 0, 1},
     "data.json: \"p\": 1.5 is above the upper bound 1"},
    {"{\"J\": -1}", "J", {TY_INT, 0, 0, {0}, NULL, CON_LOWER, 0, NB},
     "data.json: \"J\": -1 is below the lower bound 0"},
    {"{\"c\": [0, -3]}", "c", {TY_INT, 1, 1, {2}, NULL, CON_UPPER, NB, -3.5},
     "data.json: \"c[1]\": 0 is above the upper bound -3.5"},
    {"{\"theta\": [0.2, 0.3, 0.4]}", "theta", {TY_VECTOR, 0, 1, {3}, NULL, CON_SIMPLEX, NB, NB},
     "data.json: \"theta\": is not a simplex: elements sum to 0.9"},
    {"{\"theta\": [0.2, -0.1, 0.9]}", "theta", {TY_VECTOR, 0, 1, {3}, NULL, CON_SIMPLEX, NB, NB},
     "data.json: \"theta\": is not a simplex: element 2 is -0.1"},
    {"{\"z\": [[1, 2, 3], [4, 5]]}", "z", {TY_INT, 2, 2, {2, 3}, "N = 2, M = 3", CON_NONE, NB, NB},
     "data.json: \"z[2]\": expected 3 ints (M = 3), got 2"},
    {"{\"z\": [[1, 2, 3], [4, 5, 6.5]]}", "z", {TY_INT, 2, 2, {2, 3}, NULL, CON_NONE, NB, NB},
     "data.json: \"z[2, 3]\": expected an int, got 6.5"},
    {"{\"y\": [\"a\", 2]}", "y", {TY_REAL, 1, 1, {2}, NULL, CON_NONE, NB, NB},
     "data.json: \"y[1]\": expected a real, got a string"},
    {"{\"b\": 2}", "b", {TY_BOOL, 0, 0, {0}, NULL, CON_NONE, NB, NB},
     "data.json: \"b\": expected a bool (true, false, 0 or 1), got 2"},
    {"{\"s\": 3}", "s", {TY_STRING, 0, 0, {0}, NULL, CON_NONE, NB, NB},
     "data.json: \"s\": expected a string, got 3"},
    {"{\"N\": true}", "N", {TY_INT, 0, 0, {0}, NULL, CON_NONE, NB, NB},
     "data.json: \"N\": expected an int, got true"},
    {"{\"o\": [1, 2, 1.5]}", "o", {TY_VECTOR, 0, 1, {3}, NULL, CON_ORDERED, NB, NB},
     "data.json: \"o\": is not ordered: element 3 (1.5) is not greater than element 2 (2)"},
    {"{\"o\": [-1, 2]}", "o", {TY_VECTOR, 0, 1, {2}, NULL, CON_POS_ORDERED, NB, NB},
     "data.json: \"o\": is not positive_ordered: element 1 is -1"},
    {"{\"u\": [1, 1]}", "u", {TY_VECTOR, 0, 1, {2}, NULL, CON_UNIT_VECTOR, NB, NB},
     "data.json: \"u\": is not a unit vector: squared norm is 2"},
    {"{\"L\": [[1, 0.5], [0.6, 0.8]]}", "L", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_CHOL_CORR, NB, NB},
     "data.json: \"L\": is not a Cholesky factor of a correlation matrix: element [1, 2] above "
     "the diagonal is 0.5"},
    {"{\"L\": [[1, 0], [0, 0.5]]}", "L", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_CHOL_CORR, NB, NB},
     "data.json: \"L\": is not a Cholesky factor of a correlation matrix: row 2 has squared norm "
     "0.25, not 1"},
    {"{\"S\": [[2, 0.5], [0.3, 1]]}", "S", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_COV, NB, NB},
     "data.json: \"S\": is not a covariance matrix: not symmetric ([2, 1] is 0.3, [1, 2] is 0.5)"},
    {"{\"S\": [[1, 2], [2, 1]]}", "S", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_COV, NB, NB},
     "data.json: \"S\": is not a covariance matrix: not positive definite"},
    {"{\"R\": [[1, 0.2], [0.2, 1.5]]}", "R", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_CORR, NB, NB},
     "data.json: \"R\": is not a correlation matrix: diagonal element [2, 2] is 1.5, not 1"},
    {"{\"R\": [[1, 1.2], [1.2, 1]]}", "R", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_CORR, NB, NB},
     "data.json: \"R\": is not a correlation matrix: not positive definite"},
    {"{\"L\": [[1, 0.1], [0.5, 2]]}", "L", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_CHOL_COV, NB, NB},
     "data.json: \"L\": is not a Cholesky factor of a covariance matrix: element [1, 2] above "
     "the diagonal is 0.1"},
    {"{\"L\": [[1, 0], [0.5, -2]]}", "L", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_CHOL_COV, NB, NB},
     "data.json: \"L\": is not a Cholesky factor of a covariance matrix: diagonal element [2, 2] "
     "is -2, not positive"},
    {"{\"S\": [[1, 0], [0, 1]]}", "S", {TY_MATRIX, 1, 3, {2, 2, 2}, NULL, CON_COV, NB, NB},
     "data.json: \"S[1]\": row 1: expected an array of 2 reals, got a number"},
    {"{\"v\": [0.5, -0.5]}", "v", {TY_VECTOR, 0, 1, {2}, NULL, CON_LOWER, 0, NB},
     "data.json: \"v[2]\": -0.5 is below the lower bound 0"},
    {"{\"X\": [[1, 2], [-3, 4]]}", "X", {TY_MATRIX, 1, 3, {1, 2, 2}, NULL, CON_LOWER, 0, NB},
     "data.json: \"X\": expected 1 matrix, got 2"},
    {"{\"X\": [[[1, 2], [-3, 4]]]}", "X", {TY_MATRIX, 1, 3, {1, 2, 2}, NULL, CON_LOWER, 0, NB},
     "data.json: \"X[1, 2, 1]\": -3 is below the lower bound 0"},
    {"{\"vs\": [[1, 2], [3, 4, 5], [6, 7]]}", "vs",
     {TY_VECTOR, 1, 2, {3, 2}, "J = 3, K = 2", CON_NONE, NB, NB},
     "data.json: \"vs[2]\": expected 2 reals (K = 2), got 3"},
    {"{\"vs\": [[1, 2], [3, 4]]}", "vs", {TY_VECTOR, 1, 2, {3, 2}, "J = 3, K = 2", CON_NONE, NB, NB},
     "data.json: \"vs\": expected 3 vectors (J = 3), got 2"},
    {"{\"x\": \"NaN\"}", "x", {TY_REAL, 0, 0, {0}, NULL, CON_LOWER, 0, NB},
     "data.json: \"x\": nan does not satisfy the lower bound 0"},
    {"{\"X\": [[1, 2], 3]}", "X", {TY_MATRIX, 0, 2, {2, 2}, NULL, CON_NONE, NB, NB},
     "data.json: \"X\": row 2: expected an array of 2 reals, got a number"},
    {"{\"y\": [1, 2]}", "y", {TY_REAL, 1, 1, {3}, "J = 3", CON_NONE, NB, NB},
     "data.json: \"y\": expected 3 reals (J = 3), got 2"},
    {"{\"y\": {\"a\": 1}}", "y", {TY_REAL, 0, 0, {0}, NULL, CON_NONE, NB, NB},
     "data.json: \"y\": expected a real, got an object"},
};

static void test_bad(void) {
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    Diag d;
    diag_init(&d);
    DataSource *src = data_json_string(bad[i].json, strlen(bad[i].json), "data.json", &d);
    Value v;
    bool ok = src && get(src, bad[i].name, bad[i].q, &v, &d);
    tap_ok(!ok && d.code == DIAG_DATA, "bad %zu fails with DIAG_DATA", i);
    tap_streq(d.msg, bad[i].msg, "bad %zu message", i);
  }
}

/* jansson's report on an equally long text without the bare specials. */
static const char *jansson_msg(const char *json) {
  Diag d;
  diag_init(&d);
  DataSource *src = data_json_string(json, strlen(json), "data.json", &d);
  return src ? "(parsed)" : gc_strdup(d.msg);
}

static void test_syntax(void) {
  tap_streq(jansson_msg("{\"J\": 3, \"y\": [1, 2, 3], }"),
            "data.json:1:26: invalid JSON: string or '}' expected near '}'", "trailing comma");
  tap_streq(jansson_msg("{\"a\": NaN, \"b\": [1,, 2]}"), jansson_msg("{\"a\": 0.0, \"b\": [1,, 2]}"),
            "error column unaffected by quoting a bare NaN");
  tap_streq(jansson_msg("{\"a\": NaN, \"b\": [1,, 2]}"),
            "data.json:1:20: invalid JSON: unexpected token near ','", "column of the bad token");
  tap_streq(jansson_msg("{\"a\": [-Infinity,\n Infinity], \"b\": x}"),
            "data.json:2:18: invalid JSON: invalid token near 'x'", "second line, after specials");
  tap_streq(jansson_msg("[1, 2, 3]"), "data.json: top level must be an object", "array at top");
  tap_streq(jansson_msg("3"), "data.json: top level must be an object", "number at top");
  tap_streq(jansson_msg("{\"a\": 1, \"a\": 2}"),
            "data.json:1:12: invalid JSON: duplicate object key near '\"a\"'", "duplicate key");
  tap_streq(jansson_msg(""), "data.json:1:1: invalid JSON: unexpected token near end of file",
            "empty input");
  tap_streq(jansson_msg("{\"N\": NaNa}"), "data.json:1:10: invalid JSON: invalid token near 'NaNa'",
            "NaN prefix of a word is not quoted");

  Diag d;
  diag_init(&d);
  DataSource *src = data_json_file("/nonexistent/data.json", &d);
  tap_ok(!src && d.code == DIAG_IO, "missing file is DIAG_IO");
  tap_streq(d.msg, "cannot read /nonexistent/data.json: No such file or directory",
            "missing file message");

  DataSource *e = data_empty();
  Value v;
  diag_init(&d);
  tap_ok(!get(e, "N", INT, &v, &d) && d.code == DIAG_DATA, "data_empty fails");
  tap_streq(d.msg, "missing data \"N\"", "data_empty message");
}

static void test_file(void) {
  char path[] = "/tmp/ppl_test_data_XXXXXX";
  int fd = mkstemp(path);
  const char *json = "{\n  \"J\": 2,\n  \"y\": [28, -3.5]\n}\n";
  tap_ok(fd >= 0 && write(fd, json, strlen(json)) == (ssize_t)strlen(json), "temp file written");
  if (fd >= 0) close(fd);
  Diag d;
  diag_init(&d);
  DataSource *src = data_json_file(path, &d);
  Value j, y;
  bool ok = src && get(src, "J", INT, &j, &d) &&
            get(src, "y", (Req){TY_REAL, 1, 1, {2}, "J = 2", CON_NONE, NB, NB}, &y, &d);
  tap_ok(ok && j.i == 2 && y.a->e[1].r == -3.5, "file read: J and y %s", d.msg);
  diag_init(&d);
  ok = src && get(src, "y", (Req){TY_REAL, 1, 1, {3}, "J = 3", CON_NONE, NB, NB}, &y, &d);
  tap_streq(d.msg, gc_printf("%s: \"y\": expected 3 reals (J = 3), got 2", path),
            "messages name the file path");
  unlink(path);

  /* a larger array: every element lands in place */
  size_t n = 100000;
  char *big = malloc(n * 12 + 32);
  size_t o = (size_t)sprintf(big, "{\"y\": [");
  for (size_t i = 0; i < n; i++) o += (size_t)sprintf(big + o, "%s%zu.5", i ? "," : "", i);
  sprintf(big + o, "]}");
  diag_init(&d);
  src = data_json_string(big, strlen(big), "big.json", &d);
  Req q = {TY_VECTOR, 0, 1, {(int)n}, NULL, CON_NONE, NB, NB};
  ok = src && get(src, "y", q, &y, &d);
  bool all = ok && y.k == V_VEC && y.t->rows == (int)n;
  for (size_t i = 0; all && i < n; i++) all = y.t->d[i] == (double)i + 0.5;
  tap_ok(all, "100000-element vector");
  free(big);
}

int main(void) {
  gc_init();
  test_scalars();
  test_containers();
  test_constraints_ok();
  test_bad();
  test_syntax();
  test_file();
  return tap_done();
}
