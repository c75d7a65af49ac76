/* mutate.c — a small deterministic fuzzing driver, so that a short fuzz run is
 * part of every test run without libFuzzer: it loads seed files, applies random
 * mutations (bit flips, byte insertions and deletions, splices of seeds, and
 * insertions of tokens from a dictionary) and feeds each input to
 * LLVMFuzzerTestOneInput.  A crash fails the test; under the sanitizer build
 * any memory error does too.  TAP output: one line per seed file.
 *
 *   fuzz_X ITERATIONS_PER_SEED SEED_FILE...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

static const char *const dict[] = {
    "data", "model", "generated", "{", "}", "(", ")", "[", "]", ";", "~", "=", "+=", ":", ",",
    "real", "int", "vector", "matrix", "simplex", "<lower=0>", "<upper=1>", "for (i in 1:N)",
    "while (true)", "if (", "else", "return", "break", "normal(0, 1)", "x", "N", "1e308",
    "-1", "0", "99999999999999999999", "\"", "\\", "/*", "//", "\n", "[1, 2]", "{1, 2}",
    "\"Inf\"", "NaN", "null", "true", "[[1],[2,3]]", "'", "^", "?", "observe(", "factor(",
    "f(", "int f(int n) { return f(n); }", "[]", "{}", "-", "..", "#"};

static size_t mutate(uint8_t *buf, size_t len, size_t cap, const uint8_t *other, size_t olen) {
  int rounds = 1 + (int)(next() % 4);
  for (int r = 0; r < rounds; r++) {
    switch (next() % 6) {
    case 0: /* flip a bit */
      if (len) buf[next() % len] ^= (uint8_t)(1u << (next() % 8));
      break;
    case 1: /* delete a run */
      if (len) {
        size_t at = next() % len, n = 1 + next() % 8;
        if (at + n > len) n = len - at;
        memmove(buf + at, buf + at + n, len - at - n);
        len -= n;
      }
      break;
    case 2: /* insert a random byte */
      if (len < cap) {
        size_t at = len ? next() % (len + 1) : 0;
        memmove(buf + at + 1, buf + at, len - at);
        buf[at] = (uint8_t)next();
        len++;
      }
      break;
    case 3: /* insert a dictionary token */
    {
      const char *t = dict[next() % (sizeof dict / sizeof dict[0])];
      size_t n = strlen(t);
      if (len + n <= cap) {
        size_t at = len ? next() % (len + 1) : 0;
        memmove(buf + at + n, buf + at, len - at);
        memcpy(buf + at, t, n);
        len += n;
      }
      break;
    }
    case 4: /* splice a piece of another seed */
      if (olen) {
        size_t from = next() % olen, n = 1 + next() % 64;
        if (from + n > olen) n = olen - from;
        size_t at = len ? next() % (len + 1) : 0;
        if (len + n <= cap) {
          memmove(buf + at + n, buf + at, len - at);
          memcpy(buf + at, other + from, n);
          len += n;
        }
      }
      break;
    case 5: /* duplicate a run (deep nesting, repetition) */
      if (len) {
        size_t at = next() % len, n = 1 + next() % 32;
        if (at + n > len) n = len - at;
        if (len + n <= cap) {
          memmove(buf + at + n, buf + at, len - at);
          len += n;
        }
      }
      break;
    }
  }
  return len;
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)(n > 0 ? n : 1));
  *len = fread(p, 1, (size_t)(n > 0 ? n : 0), f);
  fclose(f);
  return p;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s ITERATIONS SEED_FILE...\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  long iters = atol(argv[1]);
  int nseeds = argc - 2;
  size_t cap = 1 << 16;
  uint8_t *buf = malloc(cap);
  for (int s = 0; s < nseeds; s++) {
    size_t len;
    uint8_t *seed = slurp(argv[2 + s], &len);
    if (!seed) {
      printf("not ok %d - cannot read %s\n", s + 1, argv[2 + s]);
      continue;
    }
    size_t olen = 0;
    uint8_t *other = slurp(argv[2 + (s + 1) % nseeds], &olen);
    LLVMFuzzerTestOneInput(seed, len);
    for (long i = 0; i < iters; i++) {
      size_t n = len < cap ? len : cap;
      memcpy(buf, seed, n);
      n = mutate(buf, n, cap, other, olen);
      LLVMFuzzerTestOneInput(buf, n);
    }
    printf("ok %d - %ld mutations of %s\n", s + 1, iters, argv[2 + s]);
    free(seed);
    free(other);
  }
  free(buf);
  printf("1..%d\n", nseeds);
  return 0;
}
