/* lm_llama.c — llama.cpp's libllama as a backend (`--lm llama:FILE.gguf`).
 * Interim: the generic layer and the n-gram backend land first; this file
 * says so until the dlopen backend follows. */
#include <stdio.h>

#include "lm_impl.h"

bool lm_llama_open(const LmSpec *s, LmBackend *b, char *err, size_t errsz) {
  (void)b;
  snprintf(err, errsz, "--lm %s: the llama.cpp backend is not built yet", s->spec);
  return false;
}
