/* make_tiny_gguf.c — writes the tests' tiny llama-architecture GGUF model
 * (tiny_gguf.h) to a file, for script tests and benchmarks that run
 * `ppl run --lm llama:FILE.gguf`:
 *
 *   make_tiny_gguf OUT.gguf [SEED]      (seed default 42)
 */
#include <stdio.h>
#include <stdlib.h>

#include "tiny_gguf.h"

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: make_tiny_gguf OUT.gguf [SEED]\n");
    return 2;
  }
  char err[512];
  if (!tiny_gguf_write(argv[1], argc > 2 ? strtoull(argv[2], NULL, 10) : 42, err, sizeof err)) {
    fprintf(stderr, "make_tiny_gguf: %s\n", err);
    return 1;
  }
  return 0;
}
