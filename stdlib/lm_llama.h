/* lm_llama.h — llama.cpp's C API as ppl reaches it: the library found and
 * loaded at run time (dlopen), and the few functions the backend
 * (lm_llama.c) and bench/lm_bench.c call, typed as the pinned release
 * declares them.
 *
 * Pinned: llama.cpp v0.5.0 (commit 0ad4a86), as built into the npm package
 * @node-llama-cpp/linux-x64@3.22.1 (bins/linux-x64/libllama.v0.5.0.so, its
 * libggml*.so beside it); scripts/install-llama.sh installs it.  The
 * parameter structs are never declared here: they are taken from
 * llama_model_default_params() / llama_context_default_params() into a
 * buffer larger than either, and only the fields whose offsets
 * lm_llama_context_params verifies against the pinned defaults are set.
 */
#ifndef PPL_LM_LLAMA_H
#define PPL_LM_LLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct llama_batch, unchanged for many releases */
typedef struct LlamaBatch {
  int32_t n_tokens;
  int32_t *token;
  float *embd;
  int32_t *pos;
  int32_t *n_seq_id;
  int32_t **seq_id;
  int8_t *logits;
} LlamaBatch;

/* llama_model_params / llama_context_params by value: x86-64 passes and
   returns structs this large through memory, so a larger buffer carries
   the library's struct in its first bytes. */
typedef struct LlamaParams {
  _Alignas(16) unsigned char b[512];
} LlamaParams;

typedef struct LlamaApi {
  char path[1024]; /* the library loaded */
  char dir[1024];  /* its folder, where ggml's CPU backends are */
  void (*backend_init)(void);
  void (*log_set)(void (*cb)(int level, const char *text, void *ud), void *ud);
  LlamaParams (*model_default_params)(void);
  LlamaParams (*context_default_params)(void);
  void *(*model_load_from_file)(const char *path, LlamaParams p);
  void (*model_free)(void *model);
  void *(*init_from_model)(void *model, LlamaParams p);
  void (*free)(void *ctx);
  const void *(*model_get_vocab)(const void *model);
  int32_t (*vocab_n_tokens)(const void *vocab);
  int32_t (*vocab_bos)(const void *vocab);
  int32_t (*vocab_eos)(const void *vocab);
  bool (*vocab_get_add_bos)(const void *vocab);
  bool (*vocab_is_control)(const void *vocab, int32_t tok);
  int32_t (*tokenize)(const void *vocab, const char *text, int32_t len, int32_t *toks, int32_t max,
                      bool add_special, bool parse_special);
  int32_t (*token_to_piece)(const void *vocab, int32_t tok, char *buf, int32_t len, int32_t lstrip,
                            bool special);
  void *(*get_memory)(const void *ctx);
  bool (*memory_seq_rm)(void *mem, int32_t seq, int32_t p0, int32_t p1);
  void (*memory_seq_cp)(void *mem, int32_t src, int32_t dst, int32_t p0, int32_t p1);
  LlamaBatch (*batch_init)(int32_t n_tokens, int32_t embd, int32_t n_seq_max);
  void (*batch_free)(LlamaBatch b);
  int32_t (*decode)(void *ctx, LlamaBatch b);
  float *(*get_logits_ith)(void *ctx, int32_t i);
  uint32_t (*n_ctx)(const void *ctx);
  uint32_t (*n_ctx_seq)(const void *ctx);
  uint32_t (*n_batch)(const void *ctx);
  uint32_t (*n_seq_max)(const void *ctx);
  size_t (*max_parallel_sequences)(void);
  void (*set_n_threads)(void *ctx, int32_t n, int32_t n_batch);
  size_t (*backend_dev_count)(void);                   /* ggml */
  void (*backend_load_all_from_path)(const char *dir); /* ggml */
} LlamaApi;

/* Find and load libllama (PPL_LLAMA_LIB, a file or a folder; then the
 * repository's .llama/ folder that scripts/install-llama.sh fills; then the
 * system's library path), resolve every function above, and load ggml's CPU
 * backends from the library's folder.  The library stays loaded for the
 * life of the process (ggml's backend registry is process-wide). */
bool lm_llama_load(LlamaApi *api, char *err, size_t errsz);

/* The default context parameters with n_ctx cells, n_seq sequences and
 * one KV buffer shared by all sequences (a fork then shares its parent's
 * cells); false when the defaults are not the pinned release's layout. */
bool lm_llama_context_params(const LlamaApi *api, LlamaParams *p, uint32_t n_ctx, uint32_t n_seq,
                             char *err, size_t errsz);

/* The default thread count: the processors the machine's load leaves idle
 * (ncpu less the 1-minute load average, rounded), at least 1, at most 8.
 * ggml's workers wait for each other at every operation by spinning, so a
 * thread more than the free cores costs far more than it brings (the tiny
 * model's lipogram under --engine is: 0.55 s with 1 thread, 115 s with 2 on
 * a 2-core machine at load 12). */
int lm_llama_default_threads(long ncpu, double load);

#endif
