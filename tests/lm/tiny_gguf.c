/* tiny_gguf.c — writes the tiny GGUF model of tiny_gguf.h.
 *
 * GGUF v3: header, metadata key/values, tensor infos, then the tensors'
 * data, each at an offset aligned to 32 bytes (general.alignment's
 * default).  The keys are the ones llama.cpp's llama loader reads for the
 * architecture and a "gpt2" (byte-level BPE) tokenizer; the vocabulary's
 * tokens are GPT-2's printable stand-ins for the 256 bytes, so any text
 * tokenizes, one token a byte.  Tensor shapes are in ggml's order
 * (ne0 = the row length).
 */
#include "tiny_gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stdlib/rng.h"

enum { N_EMBD = 32, N_HEAD = 4, N_HEAD_KV = 2, N_LAYER = 2, N_FF = 64, N_CTX_TRAIN = 512 };
enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_BOOL = 7, T_STR = 8, T_ARR = 9 };

typedef struct W {
  FILE *f;
  bool ok;
} W;

static void put(W *w, const void *p, size_t n) { w->ok = w->ok && fwrite(p, 1, n, w->f) == n; }
static void u32(W *w, uint32_t v) { put(w, &v, 4); } /* GGUF is little-endian, as x86-64 */
static void u64(W *w, uint64_t v) { put(w, &v, 8); }
static void str(W *w, const char *s, size_t n) {
  u64(w, n);
  put(w, s, n);
}
static void key(W *w, const char *k, uint32_t type) {
  str(w, k, strlen(k));
  u32(w, type);
}
static void kv_u32(W *w, const char *k, uint32_t v) {
  key(w, k, T_U32);
  u32(w, v);
}
static void kv_f32(W *w, const char *k, float v) {
  key(w, k, T_F32);
  put(w, &v, 4);
}
static void kv_bool(W *w, const char *k, bool v) {
  key(w, k, T_BOOL);
  uint8_t b = v;
  put(w, &b, 1);
}
static void kv_str(W *w, const char *k, const char *v) {
  key(w, k, T_STR);
  str(w, v, strlen(v));
}

/* GPT-2's byte -> code point map: printable bytes stand for themselves,
   the others for 256, 257, ... in byte order. */
static int byte_cp(int b) {
  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
  int n = 0;
  for (int c = 0; c < b; c++)
    if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
  return 256 + n;
}

static size_t utf8(int cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  out[0] = (char)(0xC0 | (cp >> 6));
  out[1] = (char)(0x80 | (cp & 0x3F));
  return 2; /* every code point here is below 0x800 */
}

typedef struct Tensor {
  char name[48];
  int nd;
  uint64_t ne[2];
  float scale; /* 0: ones (a norm's weight) */
} Tensor;

static int add(Tensor *t, int nt, const char *name, int layer, uint64_t ne0, uint64_t ne1, float scale) {
  if (layer >= 0) snprintf(t[nt].name, sizeof t[nt].name, "blk.%d.%s", layer, name);
  else snprintf(t[nt].name, sizeof t[nt].name, "%s", name);
  t[nt].nd = ne1 > 1 ? 2 : 1;
  t[nt].ne[0] = ne0;
  t[nt].ne[1] = ne1;
  t[nt].scale = scale;
  return nt + 1;
}

bool tiny_gguf_write(const char *path, uint64_t seed, char *err, size_t errsz) {
  Tensor t[3 + 9 * N_LAYER];
  const int q = N_EMBD / N_HEAD * N_HEAD, kv = N_EMBD / N_HEAD * N_HEAD_KV;
  int nt = 0;
  nt = add(t, nt, "token_embd.weight", -1, N_EMBD, TINY_VOCAB, 1.0f);
  nt = add(t, nt, "output_norm.weight", -1, N_EMBD, 1, 0);
  nt = add(t, nt, "output.weight", -1, N_EMBD, TINY_VOCAB, 0.6f);
  for (int l = 0; l < N_LAYER; l++) {
    nt = add(t, nt, "attn_norm.weight", l, N_EMBD, 1, 0);
    nt = add(t, nt, "attn_q.weight", l, N_EMBD, q, 0.4f);
    nt = add(t, nt, "attn_k.weight", l, N_EMBD, kv, 0.4f);
    nt = add(t, nt, "attn_v.weight", l, N_EMBD, kv, 0.4f);
    nt = add(t, nt, "attn_output.weight", l, q, N_EMBD, 0.3f);
    nt = add(t, nt, "ffn_norm.weight", l, N_EMBD, 1, 0);
    nt = add(t, nt, "ffn_gate.weight", l, N_EMBD, N_FF, 0.3f);
    nt = add(t, nt, "ffn_up.weight", l, N_EMBD, N_FF, 0.3f);
    nt = add(t, nt, "ffn_down.weight", l, N_FF, N_EMBD, 0.3f);
  }
  W w = {fopen(path, "wb"), true};
  if (!w.f) {
    snprintf(err, errsz, "cannot write %s", path);
    return false;
  }
  put(&w, "GGUF", 4);
  u32(&w, 3);
  u64(&w, (uint64_t)nt);
  u64(&w, 20); /* the key/values below */
  kv_str(&w, "general.architecture", "llama");
  kv_str(&w, "general.name", "ppl tiny test model");
  kv_u32(&w, "general.file_type", 0); /* all f32 */
  kv_u32(&w, "llama.context_length", N_CTX_TRAIN);
  kv_u32(&w, "llama.embedding_length", N_EMBD);
  kv_u32(&w, "llama.block_count", N_LAYER);
  kv_u32(&w, "llama.feed_forward_length", N_FF);
  kv_u32(&w, "llama.attention.head_count", N_HEAD);
  kv_u32(&w, "llama.attention.head_count_kv", N_HEAD_KV);
  kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  kv_f32(&w, "llama.rope.freq_base", 10000.0f);
  kv_u32(&w, "llama.vocab_size", TINY_VOCAB);
  kv_str(&w, "tokenizer.ggml.model", "gpt2");
  kv_str(&w, "tokenizer.ggml.pre", "default");
  key(&w, "tokenizer.ggml.tokens", T_ARR);
  u32(&w, T_STR);
  u64(&w, TINY_VOCAB);
  for (int b = 0; b < 256; b++) {
    char s[4];
    str(&w, s, utf8(byte_cp(b), s));
  }
  str(&w, "<s>", 3);
  str(&w, "</s>", 4);
  key(&w, "tokenizer.ggml.token_type", T_ARR);
  u32(&w, T_I32);
  u64(&w, TINY_VOCAB);
  for (int i = 0; i < TINY_VOCAB; i++) u32(&w, i < 256 ? 1 : 3); /* normal, control */
  key(&w, "tokenizer.ggml.merges", T_ARR);
  u32(&w, T_STR);
  u64(&w, 0);
  kv_u32(&w, "tokenizer.ggml.bos_token_id", TINY_BOS);
  kv_u32(&w, "tokenizer.ggml.eos_token_id", TINY_EOS);
  kv_bool(&w, "tokenizer.ggml.add_bos_token", true);
  uint64_t off = 0;
  for (int i = 0; i < nt; i++) {
    str(&w, t[i].name, strlen(t[i].name));
    u32(&w, (uint32_t)t[i].nd);
    for (int d = 0; d < t[i].nd; d++) u64(&w, t[i].ne[d]);
    u32(&w, 0); /* GGML_TYPE_F32 */
    u64(&w, off);
    off += (t[i].ne[0] * t[i].ne[1] * 4 + 31) / 32 * 32;
  }
  long pos = ftell(w.f);
  static const char zeros[32];
  put(&w, zeros, (size_t)((32 - pos % 32) % 32));
  Rng r;
  rng_seed(&r, seed, 0);
  for (int i = 0; i < nt; i++) {
    uint64_t n = t[i].ne[0] * t[i].ne[1];
    for (uint64_t j = 0; j < n; j++) {
      float v = t[i].scale == 0 ? 1.0f : (float)(rng_normal(&r) * t[i].scale);
      put(&w, &v, 4);
    }
    put(&w, zeros, (size_t)((32 - (n * 4) % 32) % 32));
  }
  if (fclose(w.f) != 0) w.ok = false;
  if (!w.ok) snprintf(err, errsz, "cannot write %s", path);
  return w.ok;
}
