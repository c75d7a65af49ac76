/* test_safetensors.c — stdlib/safetensors.c: bit-for-bit round trips (NaN
 * payloads, -0.0, denormals, infinities), the exact bytes of a small file,
 * a file laid out by the Python writer's rules (bytes written by hand, F32
 * and F64), every malformed case refused with its message, and the
 * metadata check that refuses a file of another program. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/value.h"
#include "stdlib/safetensors.h"
#include "tap.h"

/* The condition first, then the message: it prints the err the condition set. */
#define OK_ERR(cond, ...)     \
  do {                        \
    int ok_ = (cond);         \
    tap_ok(ok_, __VA_ARGS__); \
  } while (0)

static double from_bits(uint64_t b) {
  double d;
  memcpy(&d, &b, 8);
  return d;
}

static uint64_t bits(double d) {
  uint64_t b;
  memcpy(&b, &d, 8);
  return b;
}

static void test_round_trip(void) {
  double a[8] = {from_bits(0x7ff8000000000123ull), /* quiet NaN with a payload */
                 from_bits(0xfff4000000000abcull), /* signalling NaN, sign set */
                 -0.0,
                 from_bits(1),                      /* smallest denormal */
                 -from_bits(0x000fffffffffffffull), /* largest denormal, negative */
                 INFINITY,
                 -INFINITY,
                 1.0 / 3};
  double s = 2.5, w[6] = {1, 2, 3, 4, 5, 6};
  StTensor ts[3] = {
      {.name = "special", .rank = 1, .shape = {8}, .numel = 8, .data = a},
      {.name = "scalar", .rank = 0, .numel = 1, .data = &s},
      {.name = "enc.w", .rank = 2, .shape = {2, 3}, .numel = 6, .data = w},
  };
  StFile f = {.ntensors = 3, .tensors = ts};
  st_set_ppl_meta(&f, 0x1a2b3c4d5e6f7081ull, NULL);
  char path[] = "/tmp/ppl_st_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  const char *err = NULL;
  OK_ERR(st_write(path, &f, &err), "write %s", err ? err : "");
  StFile *g = st_read(path, &err);
  OK_ERR(g != NULL, "read back %s", g ? "" : err);
  if (!g) return;
  OK_ERR(g->ntensors == 3 && strcmp(g->tensors[0].name, "special") == 0 &&
             strcmp(g->tensors[1].name, "scalar") == 0 && strcmp(g->tensors[2].name, "enc.w") == 0,
         "three tensors in their order");
  int same = 1;
  for (int i = 0; i < 8; i++) same &= bits(g->tensors[0].data[i]) == bits(a[i]);
  OK_ERR(same, "NaN payloads, -0.0, denormals, infinities: bit for bit");
  const StTensor *t = st_find(g, "scalar");
  OK_ERR(t && t->rank == 0 && t->numel == 1 && t->data[0] == 2.5, "a rank-0 tensor");
  t = st_find(g, "enc.w");
  OK_ERR(t && t->rank == 2 && t->shape[0] == 2 && t->shape[1] == 3 && memcmp(t->data, w, sizeof w) == 0,
         "a [2, 3] tensor, row-major");
  OK_ERR(!st_find(g, "nothing"), "st_find of a missing name is NULL");
  tap_streq(st_meta_get(g, "format"), "ppl-params", "metadata format");
  tap_streq(st_meta_get(g, "version"), "1", "metadata version");
  tap_streq(st_meta_get(g, "model_hash"), "1a2b3c4d5e6f7081", "metadata model_hash: 16 hex digits");
  OK_ERR(st_check_meta(g, path, 0x1a2b3c4d5e6f7081ull, &err), "st_check_meta accepts the same program");
  OK_ERR(!st_check_meta(g, "params.safetensors", 0x3c4d000000000001ull, &err) &&
             strcmp(err, "params.safetensors: trained for another program (model hash 1a2b3c4d5e6f7081, "
                         "this program 3c4d000000000001)") == 0,
         "another program's file is refused: %s", err);
  unlink(path);

  /* re-encoding what was read gives the same bytes */
  size_t n1, n2;
  unsigned char *b1 = st_encode(&f, &n1, &err), *b2 = st_encode(g, &n2, &err);
  OK_ERR(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "encode(read(encode(f))) == encode(f)");
}

/* The exact bytes ppl writes for one small tensor, so the format cannot drift. */
static void test_exact_bytes(void) {
  double v[2] = {1.0, -2.0};
  StTensor t = {.name = "w", .rank = 1, .shape = {2}, .numel = 2, .data = v};
  StFile f = {.ntensors = 1, .tensors = &t};
  st_set_ppl_meta(&f, 0xabcull, NULL);
  size_t n;
  const char *err = NULL;
  unsigned char *b = st_encode(&f, &n, &err);
  const char *hdr = "{\"__metadata__\":{\"format\":\"ppl-params\",\"version\":\"1\",\"model_hash\":"
                    "\"0000000000000abc\"},\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
  size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
  int ok = b && n == 8 + padded + 16;
  for (int i = 0; ok && i < 8; i++) ok = b[i] == (unsigned char)(padded >> (8 * i));
  ok = ok && memcmp(b + 8, hdr, hl) == 0;
  for (size_t i = hl; ok && i < padded; i++) ok = b[8 + i] == ' ';
  /* 1.0 = 0x3ff0000000000000, -2.0 = 0xc000000000000000, little-endian */
  static const unsigned char data[16] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0};
  ok = ok && memcmp(b + 8 + padded, data, 16) == 0;
  OK_ERR(ok, "the bytes: u64 LE header length, compact JSON padded with spaces to 8, LE F64 data");
}

/* Bytes laid out as Python's safetensors.numpy.save_file lays them: header
 * length, JSON header with __metadata__ and entries, spaces to align 8, then
 * the data (here an F32 tensor then an F64 one). */
static unsigned char *python_file(const char *hdr, const unsigned char *data, size_t dlen, size_t *len) {
  size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
  *len = 8 + padded + dlen;
  unsigned char *b = calloc(1, *len);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(padded >> (8 * i));
  memcpy(b + 8, hdr, hl);
  memset(b + 8 + hl, ' ', padded - hl);
  if (dlen) memcpy(b + 8 + padded, data, dlen);
  return b;
}

static void test_python_layout(void) {
  const char *hdr = "{\"__metadata__\":{\"format\":\"np\"},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[8,16]}}";
  /* 1.5f = 0x3fc00000, -0.25f = 0xbe800000; 3.0 = 0x4008000000000000 */
  static const unsigned char data[16] = {0, 0, 0xc0, 0x3f, 0, 0, 0x80, 0xbe, 0, 0, 0, 0, 0, 0, 0x08, 0x40};
  size_t len;
  unsigned char *b = python_file(hdr, data, 16, &len);
  const char *err = NULL;
  StFile *f = st_decode("np.safetensors", b, len, &err);
  OK_ERR(f != NULL, "a file in Python's layout decodes %s", f ? "" : err);
  if (f) {
    const StTensor *a = st_find(f, "a"), *bb = st_find(f, "b");
    OK_ERR(a && a->numel == 2 && a->data[0] == 1.5 && a->data[1] == -0.25, "F32 widened to double");
    OK_ERR(bb && bb->rank == 2 && bb->data[0] == 3.0, "F64 [1, 1]");
    tap_streq(st_meta_get(f, "format"), "np", "its metadata");
    OK_ERR(!st_check_meta(f, "np.safetensors", 1, &err) &&
               strcmp(err, "np.safetensors: not a ppl parameter file (format \"np\", expected \"ppl-params\")") == 0,
           "not a ppl file: %s", err);
  }
  free(b);
  /* tensors listed out of data order are put in data order */
  hdr = "{\"z\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[8,16]},"
        "\"y\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}";
  static const unsigned char d2[16] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40};
  b = python_file(hdr, d2, 16, &len);
  f = st_decode("o.safetensors", b, len, &err);
  OK_ERR(f && f->ntensors == 2 && strcmp(f->tensors[0].name, "y") == 0 && f->tensors[0].data[0] == 1 &&
             f->tensors[1].data[0] == 2 && f->nmeta == 0,
         "entries in another order than the data: read in data order, no metadata");
  free(b);
}

/* A header with the given JSON and `dlen` bytes of zero data must be refused
 * with exactly `want`. */
static void refuse(const char *hdr, size_t dlen, const char *want, const char *what) {
  unsigned char zeros[64] = {0};
  size_t len;
  unsigned char *b = python_file(hdr, zeros, dlen, &len);
  const char *err = NULL;
  StFile *f = st_decode("p.safetensors", b, len, &err);
  OK_ERR(!f && err && strcmp(err, want) == 0, "%s: %s", what, err ? err : "(accepted)");
  if (f || !err || strcmp(err, want) != 0) tap_diag("want: %s", want);
  free(b);
}

static void test_malformed(void) {
  const char *err = NULL;
  unsigned char tiny[5] = {1, 0, 0, 0, 0};
  OK_ERR(!st_decode("p.safetensors", tiny, 5, &err) &&
             strcmp(err, "p.safetensors: too short for a safetensors file (5 bytes)") == 0,
         "shorter than the length field: %s", err);
  unsigned char longhdr[12] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
  OK_ERR(!st_decode("p.safetensors", longhdr, 12, &err) &&
             strcmp(err, "p.safetensors: header length 200 runs past the end of the file (12 bytes)") == 0,
         "header length past the end: %s", err);
  unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
  OK_ERR(!st_decode("p.safetensors", huge, 16, &err) && strstr(err, "runs past the end"),
         "a header length near 2^64 does not wrap: %s", err);
  refuse("[1, 2]", 0, "p.safetensors: the header is not a JSON object", "header not an object");
  size_t len;
  unsigned char *trunc = python_file("{\"a\": ", NULL, 0, &len);
  OK_ERR(!st_decode("p.safetensors", trunc, len, &err) &&
             strncmp(err, "p.safetensors: the header is not valid JSON: ", 45) == 0,
         "truncated JSON (jansson's words follow): %s", err);
  free(trunc);
  refuse("{\"a\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 8,
         "p.safetensors: tensor 'a': dtype I8 is not supported (F64 or F32)", "unknown dtype");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,40]}}", 48,
         "p.safetensors: tensor 'a': shape [2, 3] of F64 needs 48 bytes, data_offsets hold 40",
         "shape vs byte count");
  refuse("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,32]}}", 32,
         "p.safetensors: tensor 'a': shape [4] of F32 needs 16 bytes, data_offsets hold 32", "F32 byte count");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[8,24]}}", 16,
         "p.safetensors: tensor 'a': data_offsets [8, 24] are outside the 16 bytes of data", "offset past the data");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[8,0]}}", 16,
         "p.safetensors: tensor 'a': data_offsets [8, 0] are outside the 16 bytes of data", "begin after end");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}",
         16, "p.safetensors: tensors 'a' and 'b' overlap in the data", "overlapping tensors");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}",
         16, "p.safetensors: a name appears twice in the header (duplicate object key near '\"a\"')",
         "duplicate names");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8,
         "p.safetensors: tensor 'a': shape entries must be non-negative integers", "negative dimension");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[1.0],\"data_offsets\":[0,8]}}", 8,
         "p.safetensors: tensor 'a': shape entries must be non-negative integers", "a real dimension");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
         "p.safetensors: tensor 'a': shape [4294967296, 4294967296] of F64 needs too many bytes, data_offsets "
         "hold 8",
         "a shape whose size overflows");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[1]}}", 8,
         "p.safetensors: tensor 'a': needs \"dtype\" (a string), \"shape\" and \"data_offsets\" (arrays)",
         "missing data_offsets");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0]}}", 8,
         "p.safetensors: tensor 'a': data_offsets must be two non-negative integers", "one offset");
  refuse("{\"a\":3}", 0, "p.safetensors: tensor 'a': its entry is not an object", "entry not an object");
  refuse("{\"__metadata__\":{\"format\":1}}", 0, "p.safetensors: __metadata__ value of 'format' is not a string",
         "metadata value not a string");
  refuse("{\"a\":{\"dtype\":\"F64\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,8]}}", 8,
         "p.safetensors: tensor 'a': rank 9 is more than 8", "rank above 8");
  OK_ERR(!st_read("/nonexistent/p.safetensors", &err) &&
             strcmp(err, "cannot read /nonexistent/p.safetensors: No such file or directory") == 0,
         "a missing file: %s", err);

  /* writing refuses what could not be read back */
  double v = 1;
  StTensor two[2] = {{.name = "x", .rank = 0, .numel = 1, .data = &v}, {.name = "x", .rank = 0, .numel = 1, .data = &v}};
  StFile f = {.ntensors = 2, .tensors = two};
  size_t n;
  OK_ERR(!st_encode(&f, &n, &err) && strcmp(err, "safetensors: tensor 'x' appears twice") == 0, "write: %s", err);
  two[1].name = "__metadata__";
  OK_ERR(!st_encode(&f, &n, &err) && strcmp(err, "safetensors: a tensor cannot be named __metadata__") == 0,
         "write: %s", err);
  two[1].name = "y";
  two[1].numel = 3;
  OK_ERR(!st_encode(&f, &n, &err) && strcmp(err, "safetensors: tensor 'y' has a bad shape") == 0, "write: %s", err);
  two[1].numel = 1;
  OK_ERR(!st_write("/nonexistent/dir/p.safetensors", &f, &err) &&
             strcmp(err, "cannot write /nonexistent/dir/p.safetensors: No such file or directory") == 0,
         "write to a missing directory: %s", err);
}

static void test_meta_checks(void) {
  StFile f = {0};
  const char *err = NULL;
  OK_ERR(!st_check_meta(&f, "p.safetensors", 1, &err) &&
             strcmp(err, "p.safetensors: not a ppl parameter file (no \"format\": \"ppl-params\" in its metadata)") ==
                 0,
         "no metadata: %s", err);
  StMeta m[3] = {{"format", "ppl-params"}, {"version", "2"}, {"model_hash", "0000000000000001"}};
  f.meta = m;
  f.nmeta = 3;
  OK_ERR(!st_check_meta(&f, "p.safetensors", 1, &err) &&
             strcmp(err, "p.safetensors: parameter file version 2, this ppl reads version 1") == 0,
         "another version: %s", err);
  m[1].value = "1";
  OK_ERR(st_check_meta(&f, "p.safetensors", 1, &err), "format, version and hash match");
  f.nmeta = 2;
  OK_ERR(!st_check_meta(&f, "p.safetensors", 1, &err) &&
             strcmp(err, "p.safetensors: trained for another program (model hash (none), this program "
                         "0000000000000001)") == 0,
         "no hash: %s", err);
}

/* Program values <-> tensors: matrices row-major, arrays' dims first. */
static void test_values(void) {
  Value m = val_mat(2, 3); /* [[1, 2, 3], [4, 5, 6]], stored column-major */
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) m.t->d[j * 2 + i] = 1 + 3 * i + j;
  StTensor t;
  const char *err = NULL;
  OK_ERR(st_tensor_of_value("m", m, &t, &err) && t.rank == 2 && t.shape[0] == 2 && t.shape[1] == 3 &&
             t.numel == 6,
         "a 2 x 3 matrix is a [2, 3] tensor");
  int rowmajor = 1;
  for (int k = 0; k < 6; k++) rowmajor &= t.data[k] == k + 1;
  OK_ERR(rowmajor, "its data row-major, as numpy reads it");
  Value back;
  OK_ERR(st_value_of_tensor("p.safetensors", &t, val_mat(2, 3), &back, &err) && val_equal(back, m),
         "and back into a matrix of the program");
  Value wrong = val_mat(3, 2);
  OK_ERR(!st_value_of_tensor("p.safetensors", &t, wrong, &back, &err) &&
             strcmp(err, "p.safetensors: tensor 'm' has shape [2, 3], the program's value has shape [3, 2]") == 0,
         "a transposed shape is refused: %s", err);

  Value arr = val_arr(2); /* vector[3] a[2] */
  for (int i = 0; i < 2; i++) {
    arr.a->e[i] = val_vec(3);
    for (int j = 0; j < 3; j++) arr.a->e[i].t->d[j] = 10 * i + j;
  }
  OK_ERR(st_tensor_of_value("a", arr, &t, &err) && t.rank == 2 && t.shape[0] == 2 && t.shape[1] == 3 &&
             t.data[4] == 11,
         "an array of 2 vectors of 3 is [2, 3]");
  OK_ERR(st_value_of_tensor("p.safetensors", &t, arr, &back, &err) && val_equal(back, arr) &&
             back.a->e[0].t != arr.a->e[0].t,
         "back into a fresh array");
  arr.a->e[1] = val_vec(2);
  OK_ERR(!st_tensor_of_value("a", arr, &t, &err) &&
             strcmp(err, "safetensors: 'a' is not a real, a vector, a matrix or a rectangular array of them") == 0,
         "a ragged array is refused: %s", err);
  OK_ERR(st_tensor_of_value("s", val_real(-0.0), &t, &err) && t.rank == 0 && t.numel == 1 && signbit(t.data[0]),
         "a real is rank 0");
  OK_ERR(!st_tensor_of_value("s", val_str("x"), &t, &err), "a string is refused");

  /* through a file: what is saved is what is loaded, bit for bit */
  double nan = from_bits(0x7ff800000000beefull);
  Value v = val_vec(2);
  v.t->d[0] = nan;
  v.t->d[1] = 1e-310;
  StTensor two[2];
  OK_ERR(st_tensor_of_value("m", m, &two[0], &err) && st_tensor_of_value("v", v, &two[1], &err), "two values");
  StFile f = {.ntensors = 2, .tensors = two};
  st_set_ppl_meta(&f, 42, NULL);
  size_t n;
  unsigned char *b = st_encode(&f, &n, &err);
  StFile *g = b ? st_decode("p.safetensors", b, n, &err) : NULL;
  Value vm, vv;
  OK_ERR(g && st_check_meta(g, "p.safetensors", 42, &err) &&
             st_value_of_tensor("p.safetensors", st_find(g, "m"), val_mat(2, 3), &vm, &err) &&
             st_value_of_tensor("p.safetensors", st_find(g, "v"), val_vec(2), &vv, &err) && val_equal(vm, m) &&
             bits(vv.t->d[0]) == bits(nan) && bits(vv.t->d[1]) == bits(1e-310),
         "save -> load: the same values bit for bit");
}

int main(void) {
  gc_init();
  test_values();
  test_round_trip();
  test_exact_bytes();
  test_python_layout();
  test_malformed();
  test_meta_checks();
  return tap_done();
}
