/* The safetensors object's private layout and the pieces its files share: the JSON header
 * reader (st_parse.c), the writer (st_write.c), names and UTF-8 (safetensors.c). */
#ifndef SUPCON_LIB_CHECKPOINT_INTERNAL_H
#define SUPCON_LIB_CHECKPOINT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "supcon/checkpoint.h"

typedef struct sc_st_entry {
    char *name;
    supcon_dtype dtype;
    int ndim;
    int64_t shape[SUPCON_MAX_DIMS];
    int64_t numel;
    size_t bytes;
    size_t offset;   /* into data: where the bytes are in memory */
    uint64_t end;    /* parsing only: data_offsets[1] in the file (offset holds [0]) */
    size_t hdr_pos;  /* parsing only: header byte where the entry's name starts */
} sc_st_entry;

struct supcon_safetensors {
    supcon_context *ctx;
    sc_st_entry *entries;
    int64_t count, cap;
    char **meta_key, **meta_value;
    int64_t meta_count, meta_cap;
    unsigned char *data; /* malloc'd: 16-byte aligned, entries aligned to their element */
    size_t data_size, data_cap;
};

/* "F32", "I32", "I64"; NULL for anything else. */
const char *sc_st_dtype_name(supcon_dtype d);
size_t sc_st_dtype_size(supcon_dtype d);

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF). */
int sc_utf8_valid(const unsigned char *s, size_t len);

/* The canonical form of name into out, which holds at least strlen(name) + 1 bytes. */
void sc_st_canonical(const char *name, char *out);

/* A printable, bounded rendering of an untrusted name for messages. */
const char *sc_st_printable(const char *s, char *buf, size_t len);

/* Entry / metadata storage. sc_st_push_entry takes ownership of e->name on success. */
supcon_status sc_st_push_entry(supcon_safetensors *st, const sc_st_entry *e);
supcon_status sc_st_push_metadata(supcon_safetensors *st, char *key, char *value);

/* Parse a whole file held in memory, or read one from disk (st_parse.c). label names the
 * source in messages. */
supcon_status sc_st_parse_memory(supcon_context *ctx, const char *label, const unsigned char *data,
                                 size_t size, const supcon_safetensors_config *cfg,
                                 supcon_safetensors **out);
supcon_status sc_st_load_file(supcon_context *ctx, const char *path, const supcon_safetensors_config *cfg,
                              supcon_safetensors **out);

/* The file's bytes in memory (st_write.c): what supcon_safetensors_save writes. The caller
 * frees *buf. */
supcon_status sc_st_serialize(const supcon_safetensors *st, unsigned char **buf, size_t *size);

#endif
