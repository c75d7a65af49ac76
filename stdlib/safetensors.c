/* safetensors.c — reading and writing the safetensors format (see
 * safetensors.h), with the JSON header through jansson as api/data.c does.
 *
 * A file may come from anywhere, so reading trusts nothing: the header
 * length against the file size, every entry's fields and types, shapes
 * against byte counts (without overflow), offsets inside the data and not
 * overlapping, names unique.  Numbers are assembled byte by byte from
 * little-endian order, so the host's byte order does not matter and every
 * bit (NaN payloads, -0.0, denormals) survives a round trip.
 */
#include "safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/value.h"

/* A header larger than this is not a parameter file (the Rust reference
 * implementation refuses past 100 MB too) and would only exhaust memory. */
#define ST_MAX_HEADER (100u << 20)

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* ---- writing ---- */

static bool shape_numel(const StTensor *t, size_t *numel) {
  if (t->rank < 0 || t->rank > ST_MAXRANK) return false;
  size_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->shape[i] < 0) return false;
    if (t->shape[i] && n > SIZE_MAX / 8 / (size_t)t->shape[i]) return false;
    n *= (size_t)t->shape[i];
  }
  *numel = n;
  return true;
}

unsigned char *st_encode(const StFile *f, size_t *len, const char **err) {
  json_t *h = json_object();
  size_t off = 0;
  if (f->nmeta > 0) {
    json_t *m = json_object();
    for (int i = 0; i < f->nmeta; i++) json_object_set_new(m, f->meta[i].key, json_string(f->meta[i].value));
    json_object_set_new(h, "__metadata__", m);
  }
  for (int i = 0; i < f->ntensors; i++) {
    const StTensor *t = &f->tensors[i];
    size_t n;
    const char *bad = !t->name || !*t->name                        ? "a tensor has no name"
                      : strcmp(t->name, "__metadata__") == 0       ? "a tensor cannot be named __metadata__"
                      : json_object_get(h, t->name)                ? gc_printf("tensor '%s' appears twice", t->name)
                      : !shape_numel(t, &n) || n != t->numel       ? gc_printf("tensor '%s' has a bad shape", t->name)
                                                                   : NULL;
    if (bad) {
      json_decref(h);
      *err = gc_printf("safetensors: %s", bad);
      return NULL;
    }
    json_t *shape = json_array();
    for (int k = 0; k < t->rank; k++) json_array_append_new(shape, json_integer((json_int_t)t->shape[k]));
    json_t *e = json_object();
    json_object_set_new(e, "dtype", json_string("F64"));
    json_object_set_new(e, "shape", shape);
    json_object_set_new(e, "data_offsets",
                        json_pack("[II]", (json_int_t)off, (json_int_t)(off + 8 * t->numel)));
    json_object_set_new(h, t->name, e);
    off += 8 * t->numel;
  }
  char *js = json_dumps(h, JSON_COMPACT);
  json_decref(h);
  if (!js) {
    *err = "safetensors: cannot encode the header (a name that is not UTF-8?)";
    return NULL;
  }
  /* spaces pad the header so the data starts 8-byte aligned, as the Python
   * and Rust writers do (readers that map the file then see aligned F64s) */
  size_t hl = strlen(js), pad = (8 - hl % 8) % 8;
  *len = 8 + hl + pad + off;
  unsigned char *buf = gc_alloc_atomic(*len);
  put_u64(buf, hl + pad);
  memcpy(buf + 8, js, hl);
  memset(buf + 8 + hl, ' ', pad);
  free(js);
  unsigned char *p = buf + 8 + hl + pad;
  for (int i = 0; i < f->ntensors; i++)
    for (size_t k = 0; k < f->tensors[i].numel; k++, p += 8) {
      uint64_t bits;
      memcpy(&bits, &f->tensors[i].data[k], 8);
      put_u64(p, bits);
    }
  return buf;
}

bool st_write(const char *path, const StFile *f, const char **err) {
  size_t len;
  unsigned char *buf = st_encode(f, &len, err);
  if (!buf) return false;
  FILE *fp = fopen(path, "wb");
  if (!fp) {
    *err = gc_printf("cannot write %s: %s", path, strerror(errno));
    return false;
  }
  bool ok = fwrite(buf, 1, len, fp) == len;
  int e = errno;
  ok = (fclose(fp) == 0) && ok;
  if (!ok) *err = gc_printf("cannot write %s: %s", path, strerror(e ? e : EIO));
  return ok;
}

/* ---- program values ---- */

/* v's shape (array dims first), or false for strings and ragged arrays. */
static bool value_shape(Value v, int *rank, int64_t *shape) {
  switch (v.k) {
  case V_REAL: case V_INT: case V_BOOL: *rank = 0; return true;
  case V_VEC: case V_ROWVEC:
    *rank = 1;
    shape[0] = v.t->rows * v.t->cols;
    return true;
  case V_MAT:
    *rank = 2;
    shape[0] = v.t->rows, shape[1] = v.t->cols;
    return true;
  case V_ARR: {
    int r0 = 0;
    int64_t s0[ST_MAXRANK];
    if (v.a->n == 0) { /* an empty array: only its own dimension is known */
      *rank = 1;
      shape[0] = 0;
      return true;
    }
    for (int i = 0; i < v.a->n; i++) {
      int r;
      int64_t s[ST_MAXRANK];
      if (!value_shape(v.a->e[i], &r, s) || r + 1 > ST_MAXRANK) return false;
      if (i == 0) {
        r0 = r;
        memcpy(s0, s, sizeof(int64_t) * (size_t)r);
      } else if (r != r0 || memcmp(s, s0, sizeof(int64_t) * (size_t)r) != 0) {
        return false;
      }
    }
    *rank = r0 + 1;
    shape[0] = v.a->n;
    memcpy(shape + 1, s0, sizeof(int64_t) * (size_t)r0);
    return true;
  }
  default: return false;
  }
}

/* Copy v's numbers to (dir 0) or from (dir 1) d[*k...], matrices row-major. */
static void value_walk(Value *v, double *d, size_t *k, int dir) {
  switch (v->k) {
  case V_REAL:
    if (dir) v->r = d[*k];
    else d[*k] = v->r;
    ++*k;
    break;
  case V_INT:
    if (dir) v->i = (int64_t)d[*k];
    else d[*k] = (double)v->i;
    ++*k;
    break;
  case V_BOOL:
    if (dir) v->b = d[*k] != 0;
    else d[*k] = v->b;
    ++*k;
    break;
  case V_VEC: case V_ROWVEC: case V_MAT: {
    int rows = v->t->rows, cols = v->t->cols;
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < cols; j++, ++*k) {
        double *x = &v->t->d[(size_t)j * (size_t)rows + (size_t)i];
        if (dir) *x = d[*k];
        else d[*k] = *x;
      }
    break;
  }
  case V_ARR:
    for (int i = 0; i < v->a->n; i++) value_walk(&v->a->e[i], d, k, dir);
    break;
  default: break;
  }
}

static const char *shape_text(int rank, const int64_t *shape) {
  const char *s = "[";
  for (int i = 0; i < rank; i++) s = gc_printf("%s%s%" PRId64, s, i ? ", " : "", shape[i]);
  return gc_printf("%s]", s);
}

bool st_tensor_of_value(const char *name, Value v, StTensor *out, const char **err) {
  memset(out, 0, sizeof *out);
  if (!value_shape(v, &out->rank, out->shape)) {
    *err = gc_printf("safetensors: '%s' is not a real, a vector, a matrix or a rectangular array of them", name);
    return false;
  }
  out->name = name;
  out->numel = val_numel(v);
  out->data = gc_alloc_atomic(sizeof(double) * (out->numel ? out->numel : 1));
  size_t k = 0;
  value_walk(&v, out->data, &k, 0);
  return true;
}

bool st_value_of_tensor(const char *file, const StTensor *t, Value like, Value *out, const char **err) {
  int rank;
  int64_t shape[ST_MAXRANK];
  if (!value_shape(like, &rank, shape) || rank != t->rank ||
      memcmp(shape, t->shape, sizeof(int64_t) * (size_t)rank) != 0) {
    *err = gc_printf("%s: tensor '%s' has shape %s, the program's value has shape %s", file, t->name,
                     shape_text(t->rank, t->shape), value_shape(like, &rank, shape) ? shape_text(rank, shape) : "?");
    return false;
  }
  *out = val_copy(like);
  size_t k = 0;
  value_walk(out, t->data, &k, 1);
  return true;
}

/* ---- reading ---- */

typedef struct {
  size_t b, e;
  int i;
} Span;

static int span_cmp(const void *x, const void *y) {
  const Span *a = x, *b = y;
  return a->b < b->b ? -1 : a->b > b->b ? 1 : a->e < b->e ? -1 : a->e > b->e;
}

/* A non-negative JSON integer, or false. */
static bool get_count(json_t *v, int64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
  *out = (int64_t)json_integer_value(v);
  return true;
}

/* One tensor's entry: dtype, shape, offsets; its element size in *esize. */
static const char *parse_entry(const char *name, json_t *e, StTensor *t, Span *s, int *esize, size_t datalen) {
  if (!json_is_object(e)) return gc_printf("tensor '%s': its entry is not an object", name);
  json_t *dt = json_object_get(e, "dtype"), *sh = json_object_get(e, "shape"),
         *of = json_object_get(e, "data_offsets");
  if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(of))
    return gc_printf("tensor '%s': needs \"dtype\" (a string), \"shape\" and \"data_offsets\" (arrays)", name);
  const char *d = json_string_value(dt);
  if (strcmp(d, "F64") == 0) *esize = 8;
  else if (strcmp(d, "F32") == 0) *esize = 4;
  else return gc_printf("tensor '%s': dtype %s is not supported (F64 or F32)", name, d);
  if (json_array_size(sh) > ST_MAXRANK)
    return gc_printf("tensor '%s': rank %zu is more than %d", name, json_array_size(sh), ST_MAXRANK);
  t->name = gc_strdup(name);
  t->rank = (int)json_array_size(sh);
  size_t n = 1;
  bool big = false;
  for (int k = 0; k < t->rank; k++) {
    if (!get_count(json_array_get(sh, (size_t)k), &t->shape[k]))
      return gc_printf("tensor '%s': shape entries must be non-negative integers", name);
    if (t->shape[k] && n > SIZE_MAX / 8 / (uint64_t)t->shape[k]) big = true;
    else n *= (size_t)t->shape[k];
  }
  int64_t b, e2;
  if (json_array_size(of) != 2 || !get_count(json_array_get(of, 0), &b) || !get_count(json_array_get(of, 1), &e2))
    return gc_printf("tensor '%s': data_offsets must be two non-negative integers", name);
  if (b > e2 || (uint64_t)e2 > datalen)
    return gc_printf("tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] are outside the %zu bytes of data",
                     name, b, e2, datalen);
  if (big || n * (size_t)*esize != (size_t)(e2 - b)) {
    char dims[160];
    size_t k = (size_t)snprintf(dims, sizeof dims, "[");
    for (int i = 0; i < t->rank && k < sizeof dims; i++)
      k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (k < sizeof dims) snprintf(dims + k, sizeof dims - k, "]");
    return gc_printf("tensor '%s': shape %s of %s needs %s bytes, data_offsets hold %" PRId64, name, dims, d,
                     big ? "too many" : gc_printf("%zu", n * (size_t)*esize), e2 - b);
  }
  t->numel = n;
  *s = (Span){(size_t)b, (size_t)e2, 0};
  return NULL;
}

static StFile *fail(const char **err, const char *file, const char *msg) {
  *err = gc_printf("%s: %s", file, msg);
  return NULL;
}

StFile *st_decode(const char *file, const unsigned char *buf, size_t len, const char **err) {
  if (len < 8) return fail(err, file, gc_printf("too short for a safetensors file (%zu bytes)", len));
  uint64_t hl = get_u64(buf);
  if (hl > len - 8)
    return fail(err, file, gc_printf("header length %" PRIu64 " runs past the end of the file (%zu bytes)", hl, len));
  if (hl > ST_MAX_HEADER) return fail(err, file, gc_printf("header length %" PRIu64 " is too large", hl));
  if (hl == 0 || buf[8] != '{') return fail(err, file, "the header is not a JSON object");
  json_error_t je;
  json_t *h = json_loadb((const char *)buf + 8, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
  if (!h) {
    if (strstr(je.text, "duplicate object key"))
      return fail(err, file, gc_printf("a name appears twice in the header (%s)", je.text));
    return fail(err, file, gc_printf("the header is not valid JSON: %s (byte %d)", je.text, je.position));
  }
  const unsigned char *data = buf + 8 + hl;
  size_t datalen = len - 8 - (size_t)hl;
  StFile *f = gc_alloc(sizeof *f);
  size_t nkeys = json_object_size(h);
  f->tensors = gc_alloc(sizeof(StTensor) * (nkeys ? nkeys : 1));
  Span *spans = gc_alloc_atomic(sizeof(Span) * (nkeys ? nkeys : 1));
  int *esize = gc_alloc_atomic(sizeof(int) * (nkeys ? nkeys : 1));
  const char *key, *bad = NULL;
  json_t *v;
  json_object_foreach(h, key, v) {
    if (strcmp(key, "__metadata__") == 0) {
      if (!json_is_object(v)) {
        bad = "__metadata__ is not an object";
        break;
      }
      f->meta = gc_alloc(sizeof(StMeta) * (json_object_size(v) + 1));
      const char *mk;
      json_t *mv;
      json_object_foreach(v, mk, mv) {
        if (!json_is_string(mv)) {
          bad = gc_printf("__metadata__ value of '%s' is not a string", mk);
          break;
        }
        f->meta[f->nmeta++] = (StMeta){gc_strdup(mk), gc_strdup(json_string_value(mv))};
      }
      if (bad) break;
      continue;
    }
    int i = f->ntensors;
    if ((bad = parse_entry(key, v, &f->tensors[i], &spans[i], &esize[i], datalen))) break;
    spans[i].i = i;
    f->ntensors++;
  }
  json_decref(h);
  if (bad) return fail(err, file, bad);

  /* sorted by offset, each tensor must begin at or after the end of those
   * before it (empty tensors occupy nothing) */
  qsort(spans, (size_t)f->ntensors, sizeof *spans, span_cmp);
  int last = -1;
  for (int k = 0; k < f->ntensors; k++) {
    if (spans[k].b == spans[k].e) continue;
    if (last >= 0 && spans[k].b < spans[last].e)
      return fail(err, file,
                  gc_printf("tensors '%s' and '%s' overlap in the data", f->tensors[spans[last].i].name,
                            f->tensors[spans[k].i].name));
    if (last < 0 || spans[k].e > spans[last].e) last = k;
  }
  StTensor *ordered = gc_alloc(sizeof(StTensor) * (f->ntensors ? (size_t)f->ntensors : 1));
  for (int k = 0; k < f->ntensors; k++) {
    StTensor t = f->tensors[spans[k].i];
    int es = esize[spans[k].i];
    const unsigned char *p = data + spans[k].b;
    t.data = gc_alloc_atomic(sizeof(double) * (t.numel ? t.numel : 1));
    for (size_t j = 0; j < t.numel; j++) {
      if (es == 8) {
        uint64_t bits = get_u64(p + 8 * j);
        memcpy(&t.data[j], &bits, 8);
      } else {
        uint32_t bits = 0;
        for (int b = 0; b < 4; b++) bits |= (uint32_t)p[4 * j + (size_t)b] << (8 * b);
        float x;
        memcpy(&x, &bits, 4);
        t.data[j] = x;
      }
    }
    ordered[k] = t;
  }
  f->tensors = ordered;
  return f;
}

StFile *st_read(const char *path, const char **err) {
  size_t len;
  int e;
  char *buf = gc_read_file(path, &len, &e);
  if (!buf) {
    *err = gc_printf("cannot read %s: %s", path, strerror(e));
    return NULL;
  }
  return st_decode(path, (const unsigned char *)buf, len, err);
}

const StTensor *st_find(const StFile *f, const char *name) {
  for (int i = 0; i < f->ntensors; i++)
    if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
  return NULL;
}

const char *st_meta_get(const StFile *f, const char *key) {
  for (int i = 0; i < f->nmeta; i++)
    if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
  return NULL;
}

void st_set_ppl_meta(StFile *f, uint64_t model_hash, const char *kind) {
  f->meta = gc_alloc(sizeof(StMeta) * 4);
  f->meta[0] = (StMeta){"format", ST_FORMAT};
  f->meta[1] = (StMeta){"version", ST_VERSION};
  f->meta[2] = (StMeta){"model_hash", gc_printf("%016" PRIx64, model_hash)};
  f->nmeta = 3;
  if (kind) f->meta[f->nmeta++] = (StMeta){"kind", kind};
}

bool st_check_meta(const StFile *f, const char *file, uint64_t expected, const char **err) {
  const char *fmt = st_meta_get(f, "format"), *ver = st_meta_get(f, "version"),
             *hash = st_meta_get(f, "model_hash");
  if (!fmt || strcmp(fmt, ST_FORMAT) != 0) {
    *err = fmt ? gc_printf("%s: not a ppl parameter file (format \"%s\", expected \"" ST_FORMAT "\")", file, fmt)
               : gc_printf("%s: not a ppl parameter file (no \"format\": \"" ST_FORMAT "\" in its metadata)", file);
    return false;
  }
  if (!ver || strcmp(ver, ST_VERSION) != 0) {
    *err = gc_printf("%s: parameter file version %s, this ppl reads version " ST_VERSION, file,
                     ver ? ver : "(none)");
    return false;
  }
  char want[17];
  snprintf(want, sizeof want, "%016" PRIx64, expected);
  if (!hash || strcmp(hash, want) != 0) {
    *err = gc_printf("%s: trained for another program (model hash %s, this program %s)", file,
                     hash ? hash : "(none)", want);
    return false;
  }
  return true;
}
