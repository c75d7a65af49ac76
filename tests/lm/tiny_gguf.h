/* tiny_gguf.h — a tiny llama-architecture GGUF model written by test code
 * (no weights are downloaded): a byte-level GPT-2-style BPE vocabulary with
 * no merges (256 byte tokens, then <s> and </s>), 2 layers, embedding 32,
 * 4 heads (2 KV heads), f32 random weights from a fixed seed. */
#ifndef PPL_TINY_GGUF_H
#define PPL_TINY_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { TINY_VOCAB = 258, TINY_BOS = 256, TINY_EOS = 257 };

bool tiny_gguf_write(const char *path, uint64_t seed, char *err, size_t errsz);

#endif
