/* safetensors.h — trained parameters on disk in the safetensors format, so
 * other tools (numpy's or torch's safetensors.load_file) read what ppl trains
 * and ppl refuses what was trained for another program.
 *
 * A file is an 8-byte little-endian header length n, n bytes of JSON
 *   {"name": {"dtype": "F64", "shape": [2, 3], "data_offsets": [b, e]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * (padded with spaces to a multiple of 8 bytes), then the tensors' raw
 * little-endian bytes, offsets counted from the end of the header.  ppl
 * writes F64 and reads F64 and F32; its files carry the metadata
 * "format": "ppl-params", "version": "1" and "model_hash": 16 hex digits (the
 * program's ir_program_hash).  docs/output.md describes the format.
 *
 * Everything returned is GC memory; errors are GC strings naming the file,
 * "params.safetensors: tensor 'w': dtype I8 is not supported (F64 or F32)".
 */
#ifndef PPL_SAFETENSORS_H
#define PPL_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/value.h"

#define ST_MAXRANK 8
#define ST_FORMAT "ppl-params"
#define ST_VERSION "1"
/* The "kind" metadata: which engine trained the file.  advi's q; svi's
 * params (a guide, and the model's params); npe's conditional flow and
 * summary network (`ppl train --amortize`).  The amortized engine reads
 * "svi" and "npe" files. */
#define ST_KIND_ADVI "advi"
#define ST_KIND_SVI "svi"
#define ST_KIND_NPE "npe"

typedef struct StTensor {
  const char *name;
  int rank;
  int64_t shape[ST_MAXRANK];
  size_t numel;     /* product of the shape (1 for rank 0) */
  double *data;     /* numel values, row-major; F32 is widened on read */
} StTensor;

typedef struct StMeta {
  const char *key, *value;
} StMeta;

typedef struct StFile {
  int ntensors;
  StTensor *tensors; /* on read: in the order of their data */
  int nmeta;
  StMeta *meta;
} StFile;

/* The bytes of f (tensors written as F64, in f's order, contiguous). NULL with
 * *err for duplicate or empty names, a name "__metadata__", a bad shape. */
unsigned char *st_encode(const StFile *f, size_t *len, const char **err);
bool st_write(const char *path, const StFile *f, const char **err);

/* Parse and validate len bytes; `file` names the source in messages. */
StFile *st_decode(const char *file, const unsigned char *buf, size_t len, const char **err);
StFile *st_read(const char *path, const char **err);

const StTensor *st_find(const StFile *f, const char *name);
const char *st_meta_get(const StFile *f, const char *key);
/* A program's value as a tensor named `name`: a real, int or bool (rank 0),
 * vector or row_vector ([n]), matrix ([rows, cols], written row-major as
 * numpy and torch read it: ppl's column-major storage is transposed), or a
 * rectangular array of them (its dimensions first: vector[3] x[2] is
 * [2, 3]).  false with *err for strings and ragged arrays. */
bool st_tensor_of_value(const char *name, Value v, StTensor *out, const char **err);
/* The inverse into the shape of `like` (a value of the program's type and
 * sizes, e.g. a param's initial value): a new Value of like's kinds filled
 * from t.  false when the shapes differ: "params.safetensors: tensor 's'
 * has shape [3], the program's value has shape [4]" (`file` names the file). */
bool st_value_of_tensor(const char *file, const StTensor *t, Value like, Value *out, const char **err);

/* Replace f's metadata with ppl's: format, version, model_hash, and kind
 * (what wrote it and what reads it back: ST_KIND_*; NULL = no kind). */
void st_set_ppl_meta(StFile *f, uint64_t model_hash, const char *kind);
/* Whether f (read from `file`) is a ppl parameter file of this version trained
 * for the program with hash `expected`:
 * "params.safetensors: trained for another program (model hash 1a2b...,
 * this program 3c4d...)". */
bool st_check_meta(const StFile *f, const char *file, uint64_t expected, const char **err);

#endif
