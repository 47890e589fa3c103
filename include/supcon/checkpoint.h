/* libsupcon checkpoints: files of named tensors in the safetensors format (an 8-byte
 * little-endian header length, a JSON header, then the tensors' bytes), which PyTorch reads
 * and writes with its reference parameter names. Files are written atomically and read as
 * untrusted input. Only F32, I32 and I64 tensors are read or written. See docs/checkpoint.md. */
#ifndef SUPCON_CHECKPOINT_H
#define SUPCON_CHECKPOINT_H

#include "core.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An ordered set of named tensors in host memory plus a string-to-string metadata map:
 *  what a safetensors file holds. Names are unique, also after removing "module."
 *  components (see supcon_checkpoint_canonical_name). One thread at a time may change it;
 *  read-only calls may run concurrently. */
typedef struct supcon_safetensors supcon_safetensors;

/** Limits when reading a file, against hostile or damaged input. */
typedef struct supcon_safetensors_config {
    size_t struct_size;        /* sizeof(supcon_safetensors_config): set by _default() */
    uint64_t max_header_bytes; /* largest JSON header accepted. Default 100 000 000 */
    uint64_t max_data_bytes;   /* largest tensor data accepted; 0 = no limit. Default 0 */
} supcon_safetensors_config;

SUPCON_API supcon_safetensors_config supcon_safetensors_config_default(void);

/** An empty set, to fill and save. Errors: ERR_INVALID_ARGUMENT (NULL), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_safetensors_create(supcon_context *ctx, supcon_safetensors **out);

/** Read and check a file (cfg NULL: defaults). The header must be at most max_header_bytes
 *  and fit in the file; it must be strict JSON: an object whose members are
 *  "__metadata__" (an object of strings, at most once) and tensors
 *  {"dtype": "F32"|"I32"|"I64", "shape": [n, ...], "data_offsets": [begin, end]}, nothing
 *  else; names and keys unique; shapes of rank <= SUPCON_MAX_DIMS whose byte size equals
 *  end - begin; the tensors' ranges contiguous, in order from 0, covering the data to the
 *  end of the file exactly. Every size is checked for overflow before use.
 *  Errors, with a message naming the file, the entry and the byte offset:
 *  ERR_INVALID_ARGUMENT (NULL, bad struct_size), ERR_IO (cannot open or read),
 *  ERR_FORMAT (any rule above broken, truncated file), ERR_UNSUPPORTED (another safetensors
 *  dtype such as F16, rank above SUPCON_MAX_DIMS), ERR_OUT_OF_MEMORY. On error *out is
 *  NULL. */
SUPCON_API supcon_status supcon_safetensors_load(supcon_context *ctx, const char *path,
                                                 const supcon_safetensors_config *cfg,
                                                 supcon_safetensors **out);
/** The same from a file's bytes in memory (copied; the caller keeps data). */
SUPCON_API supcon_status supcon_safetensors_parse(supcon_context *ctx, const void *data, size_t size,
                                                  const supcon_safetensors_config *cfg,
                                                  supcon_safetensors **out);

/** Write the set to `path` atomically: a temporary file in the same folder is written,
 *  flushed and fsync'ed, renamed over `path`, then the folder is fsync'ed. A failure or a
 *  crash at any point leaves a previous file at `path` intact (a crash may leave a stale
 *  ".<name>.tmp-*" file beside it). Entries keep their order in the header; their bytes are
 *  laid out 8-byte aligned (wider elements first), as Python's safetensors does.
 *  Errors: ERR_INVALID_ARGUMENT (NULL), ERR_IO (the message says which step and why). */
SUPCON_API supcon_status supcon_safetensors_save(const supcon_safetensors *st, const char *path);

/** Free the set and its data. NULL is a no-op. */
SUPCON_API void supcon_safetensors_free(supcon_safetensors *st);

/* ---- Entries ------------------------------------------------------------------------- */

/** Add a tensor, copying `bytes` bytes of host data (C order, native little-endian), which
 *  must equal the product of shape times the element size (data may be NULL when 0).
 *  Errors: ERR_INVALID_ARGUMENT (NULL, empty name, name not UTF-8 or "__metadata__", name
 *  already present or equal to one after removing "module." components, ndim out of
 *  0..SUPCON_MAX_DIMS, negative extent, wrong byte count), ERR_DTYPE, ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_safetensors_add(supcon_safetensors *st, const char *name,
                                                supcon_dtype dtype, int ndim, const int64_t *shape,
                                                const void *data, size_t bytes);
/** Add a copy of a tensor (downloaded from device memory when needed). Errors as above,
 *  ERR_DEVICE. */
SUPCON_API supcon_status supcon_safetensors_add_tensor(supcon_safetensors *st, const char *name,
                                                       const supcon_tensor *t);

/** Number of entries (0 for NULL). */
SUPCON_API int64_t supcon_safetensors_count(const supcon_safetensors *st);
/** Index of the entry called `name`: an exact match, else the one equal to it once "module."
 *  components are removed from both. -1 when there is none (or an argument is NULL). */
SUPCON_API int64_t supcon_safetensors_find(const supcon_safetensors *st, const char *name);

/* Accessors of entry i (0 <= i < count). Out of range or NULL: NULL, -1 or 0. */
SUPCON_API const char *supcon_safetensors_name(const supcon_safetensors *st, int64_t i);
/** dtype of entry i, or -1 cast to supcon_dtype when out of range. */
SUPCON_API supcon_dtype supcon_safetensors_dtype(const supcon_safetensors *st, int64_t i);
SUPCON_API int supcon_safetensors_ndim(const supcon_safetensors *st, int64_t i);
/** Extent of dimension d of entry i, or -1. */
SUPCON_API int64_t supcon_safetensors_dim(const supcon_safetensors *st, int64_t i, int d);
SUPCON_API int64_t supcon_safetensors_numel(const supcon_safetensors *st, int64_t i);
SUPCON_API size_t supcon_safetensors_bytes(const supcon_safetensors *st, int64_t i);
/** The entry's bytes in host memory, aligned to the element size; valid until the set is
 *  freed. Never NULL for a valid i (a unique pointer for 0 bytes). */
SUPCON_API const void *supcon_safetensors_data(const supcon_safetensors *st, int64_t i);

/** Copy entry i into tensor t (uploading to device memory when needed). dtype and shape
 *  must be equal. Errors: ERR_INVALID_ARGUMENT (NULL, i out of range), ERR_DTYPE,
 *  ERR_SHAPE (both name the entry and give both shapes), ERR_DEVICE. */
SUPCON_API supcon_status supcon_safetensors_read_tensor(const supcon_safetensors *st, int64_t i,
                                                        supcon_tensor *t);

/* ---- Metadata (the header's "__metadata__": UTF-8 strings to UTF-8 strings) ----------- */

/** Set key to value (both copied; replaces an existing value). Errors:
 *  ERR_INVALID_ARGUMENT (NULL, empty key, key or value not UTF-8), ERR_OUT_OF_MEMORY. */
SUPCON_API supcon_status supcon_safetensors_set_metadata(supcon_safetensors *st, const char *key,
                                                         const char *value);
/** Value of key, or NULL when absent. Valid until the key is set again or the set freed. */
SUPCON_API const char *supcon_safetensors_metadata(const supcon_safetensors *st, const char *key);
SUPCON_API int64_t supcon_safetensors_metadata_count(const supcon_safetensors *st);
/** Key and value of metadata pair i (in insertion / file order), NULL when out of range. */
SUPCON_API const char *supcon_safetensors_metadata_key(const supcon_safetensors *st, int64_t i);
SUPCON_API const char *supcon_safetensors_metadata_value(const supcon_safetensors *st, int64_t i);

/* ---- Models ---------------------------------------------------------------------------- */
typedef struct supcon_model supcon_model;

/** Add every entry of a model's table (model.h): parameters and BatchNorm buffers under
 *  their PyTorch state_dict names, in that order, num_batches_tracked as I64 scalars, so the
 *  file loads into the reference model with load_state_dict(strict=True). Values are
 *  downloaded from device memory when needed. Errors: those of supcon_safetensors_add (a
 *  name already in the file), ERR_DEVICE. */
SUPCON_API supcon_status supcon_checkpoint_add_model(supcon_safetensors *file, const supcon_model *m);

/** Load the model's entries whose names start with `prefix` (NULL or "": all of them), as
 *  load_state_dict(strict=True) does for that part: each such entry of the model must be in
 *  the file (names with "module." components match) with its dtype and shape, and each entry
 *  of the file in that part (its name without "module." starting with prefix; entries named
 *  "optimizer.*" aside) must be one of the model's. Missing and unexpected names are listed
 *  in the message. Nothing is written unless every check passes. Prefix "encoder." takes the
 *  encoder of a pre-training checkpoint for linear evaluation.
 *  Errors: ERR_INVALID_ARGUMENT (NULL), ERR_FORMAT (missing or unexpected names),
 *  ERR_DTYPE, ERR_SHAPE (naming the entry), ERR_OUT_OF_MEMORY, ERR_DEVICE. */
SUPCON_API supcon_status supcon_checkpoint_load_model(const supcon_safetensors *file, supcon_model *m,
                                                      const char *prefix);

/* ---- Names --------------------------------------------------------------------------- */

/** The name with every dot-separated component equal to "module" removed, as data-parallel
 *  PyTorch runs add it: "encoder.module.conv1.weight" and "module.encoder.conv1.weight"
 *  both give "encoder.conv1.weight". Writes at most out_size bytes including the NUL.
 *  Errors: ERR_INVALID_ARGUMENT (NULL, out_size too small: the message gives the size
 *  needed). Thread-safe; touches no context. */
SUPCON_API supcon_status supcon_checkpoint_canonical_name(const char *name, char *out,
                                                          size_t out_size);

#ifdef __cplusplus
}
#endif
#endif /* SUPCON_CHECKPOINT_H */
