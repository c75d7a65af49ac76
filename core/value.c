/* value.c — constructors, copying, flattening and printing of runtime values. */
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

Value val_strn(const char *s, size_t n) {
  PplStr *p = gc_alloc_atomic(sizeof(PplStr) + n + 1);
  p->len = n;
  memcpy(p->data, s, n);
  p->data[n] = 0;
  Value v = {.k = V_STR};
  v.s = p;
  return v;
}

Value val_str(const char *s) { return val_strn(s, strlen(s)); }

Value val_arr(int n) {
  ValArr *a = gc_alloc(sizeof(ValArr));
  a->n = n;
  a->e = gc_alloc(sizeof(Value) * (size_t)(n > 0 ? n : 1));
  Value v = {.k = V_ARR};
  v.a = a;
  return v;
}

static Value ten(ValKind k, int rows, int cols) {
  ValTen *t = gc_alloc(sizeof(ValTen));
  t->rows = rows;
  t->cols = cols;
  size_t n = (size_t)rows * (size_t)cols;
  t->d = gc_alloc_atomic(sizeof(double) * (n ? n : 1));
  Value v = {.k = (uint8_t)k};
  v.t = t;
  return v;
}

Value val_vec(int n) { return ten(V_VEC, n, 1); }
Value val_rowvec(int n) { return ten(V_ROWVEC, 1, n); }
Value val_mat(int rows, int cols) { return ten(V_MAT, rows, cols); }

Value val_copy(Value v) {
  switch (v.k) {
  case V_ARR: {
    Value c = val_arr(v.a->n);
    for (int i = 0; i < v.a->n; i++) c.a->e[i] = val_copy(v.a->e[i]);
    return c;
  }
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    Value c = ten((ValKind)v.k, v.t->rows, v.t->cols);
    size_t n = (size_t)v.t->rows * (size_t)v.t->cols;
    memcpy(c.t->d, v.t->d, sizeof(double) * n);
    if (v.t->ad) { /* tape nodes travel with the elements (AD runs) */
      c.t->ad = gc_alloc_atomic(sizeof(int32_t) * (n ? n : 1));
      memcpy(c.t->ad, v.t->ad, sizeof(int32_t) * n);
    }
    return c;
  }
  default:
    return v;
  }
}

size_t val_numel(Value v) {
  switch (v.k) {
  case V_ARR: {
    /* scalar elements (data columns, a plate's rows) counted here, not by a
       call each */
    size_t n = 0;
    for (int i = 0; i < v.a->n; i++) {
      ValKind k = v.a->e[i].k;
      n += k == V_INT || k == V_REAL || k == V_BOOL ? 1 : val_numel(v.a->e[i]);
    }
    return n;
  }
  case V_VEC:
  case V_ROWVEC:
  case V_MAT:
    return (size_t)v.t->rows * (size_t)v.t->cols;
  case V_NONE:
    return 0;
  default:
    return 1;
  }
}

double val_as_real(Value v) {
  switch (v.k) {
  case V_INT: return (double)v.i;
  case V_REAL: return v.r;
  case V_BOOL: return v.b ? 1.0 : 0.0;
  default: return NAN;
  }
}

size_t val_flatten(Value v, double *out) {
  switch (v.k) {
  case V_ARR: {
    size_t n = 0;
    for (int i = 0; i < v.a->n; i++) {
      Value e = v.a->e[i];
      if (e.k == V_REAL) out[n++] = e.r; /* scalar elements inline, as below */
      else if (e.k == V_INT) out[n++] = (double)e.i;
      else n += val_flatten(e, out + n);
    }
    return n;
  }
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    size_t n = (size_t)v.t->rows * (size_t)v.t->cols;
    memcpy(out, v.t->d, sizeof(double) * n);
    return n;
  }
  case V_INT:
  case V_REAL:
  case V_BOOL:
    out[0] = val_as_real(v);
    return 1;
  default:
    return 0;
  }
}

size_t val_flatten_nodes(Value v, int32_t *out) {
  switch (v.k) {
  case V_REAL: out[0] = v.ad; return 1;
  case V_INT: case V_BOOL: out[0] = 0; return 1;
  case V_VEC: case V_ROWVEC: case V_MAT: {
    size_t n = (size_t)v.t->rows * (size_t)v.t->cols;
    if (v.t->ad) memcpy(out, v.t->ad, n * sizeof(int32_t));
    else memset(out, 0, n * sizeof(int32_t));
    return n;
  }
  case V_ARR: {
    size_t k = 0;
    for (int i = 0; i < v.a->n; i++) k += val_flatten_nodes(v.a->e[i], out + k);
    return k;
  }
  default: return 0;
  }
}

void val_set_nodes(Value *v, const int32_t *nodes, size_t *k) {
  switch (v->k) {
  case V_ARR:
    for (int i = 0; i < v->a->n; i++) val_set_nodes(&v->a->e[i], nodes, k);
    break;
  case V_VEC:
  case V_ROWVEC:
  case V_MAT: {
    size_t m = (size_t)v->t->rows * (size_t)v->t->cols;
    v->t->ad = gc_alloc_atomic(sizeof(int32_t) * (m ? m : 1));
    memcpy(v->t->ad, nodes + *k, sizeof(int32_t) * m);
    *k += m;
    break;
  }
  case V_REAL: v->ad = nodes[(*k)++]; break;
  case V_INT:
  case V_BOOL: (*k)++; break;
  default: break;
  }
}

bool val_equal(Value a, Value b) {
  if (a.k != b.k) return false;
  switch (a.k) {
  case V_NONE: return true;
  case V_INT: return a.i == b.i;
  case V_REAL: return a.r == b.r;
  case V_BOOL: return a.b == b.b;
  case V_STR: return a.s->len == b.s->len && memcmp(a.s->data, b.s->data, a.s->len) == 0;
  case V_ARR:
    if (a.a->n != b.a->n) return false;
    for (int i = 0; i < a.a->n; i++)
      if (!val_equal(a.a->e[i], b.a->e[i])) return false;
    return true;
  default: {
    if (a.t->rows != b.t->rows || a.t->cols != b.t->cols) return false;
    size_t n = (size_t)a.t->rows * (size_t)a.t->cols;
    for (size_t i = 0; i < n; i++)
      if (!(a.t->d[i] == b.t->d[i])) return false;
    return true;
  }
  }
}

/* A growable GC string buffer for printing. */
typedef struct {
  char *p;
  size_t n, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = gc_alloc_atomic(cap);
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void buf_real(Buf *b, double r) {
  char tmp[40];
  if (isnan(r)) snprintf(tmp, sizeof tmp, "nan");
  else if (isinf(r)) snprintf(tmp, sizeof tmp, r > 0 ? "inf" : "-inf");
  else snprintf(tmp, sizeof tmp, "%.6g", r);
  buf_put(b, tmp, strlen(tmp));
}

static void buf_value(Buf *b, Value v) {
  char tmp[40];
  switch (v.k) {
  case V_NONE: buf_put(b, "none", 4); break;
  case V_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)v.i); buf_put(b, tmp, strlen(tmp)); break;
  case V_REAL: buf_real(b, v.r); break;
  case V_BOOL: buf_put(b, v.b ? "true" : "false", v.b ? 4 : 5); break;
  case V_STR: buf_put(b, v.s->data, v.s->len); break;
  case V_ARR:
    buf_put(b, "[", 1);
    for (int i = 0; i < v.a->n; i++) {
      if (i) buf_put(b, ", ", 2);
      if (v.a->e[i].k == V_STR) buf_put(b, "\"", 1);
      buf_value(b, v.a->e[i]);
      if (v.a->e[i].k == V_STR) buf_put(b, "\"", 1);
    }
    buf_put(b, "]", 1);
    break;
  case V_VEC:
  case V_ROWVEC: {
    int n = v.t->rows * v.t->cols;
    buf_put(b, "[", 1);
    for (int i = 0; i < n; i++) {
      if (i) buf_put(b, ", ", 2);
      buf_real(b, v.t->d[i]);
    }
    buf_put(b, "]", 1);
    break;
  }
  case V_MAT:
    buf_put(b, "[", 1);
    for (int i = 0; i < v.t->rows; i++) {
      if (i) buf_put(b, ", ", 2);
      buf_put(b, "[", 1);
      for (int j = 0; j < v.t->cols; j++) {
        if (j) buf_put(b, ", ", 2);
        buf_real(b, v.t->d[(size_t)j * (size_t)v.t->rows + (size_t)i]);
      }
      buf_put(b, "]", 1);
    }
    buf_put(b, "]", 1);
    break;
  }
}

char *val_to_string(Value v) {
  Buf b = {0};
  buf_put(&b, "", 0);
  buf_value(&b, v);
  return b.p;
}

const char *val_kind_name(ValKind k) {
  static const char *names[] = {"none", "int", "real", "bool", "string",
                                "array", "vector", "row_vector", "matrix"};
  return k <= V_MAT ? names[k] : "?";
}
