/*
 * gguf.h — reading and writing GGUF files (versions 2 and 3).
 *
 * A GGUF file is: magic "GGUF", version, tensor count, metadata count, the
 * metadata key/value pairs, the tensor infos (name, dims, type, offset), then
 * padding to general.alignment and the tensor data. See
 * https://github.com/ggml-org/ggml/blob/master/docs/gguf.md.
 *
 * The reader maps the file read-only and parses it once, checking every count,
 * length, offset and dimension before use (overflow-safe), so that any file —
 * truncated, hostile or random — either opens with every pointer in bounds or
 * fails with one clear message. Strings and tensor data point into the mapping
 * and live as long as the gguf_file.
 *
 * The writer builds a file in memory (metadata, tensor infos, data) and writes
 * it out; tests use it to make valid and malformed files, tools use it for
 * synth and quantize.
 */
#ifndef HERD_GGUF_H
#define HERD_GGUF_H

#include "util/util.h"

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

#define GGUF_MAX_DIMS          4
#define GGUF_DEFAULT_ALIGNMENT 32
/* ggml's GGML_MAX_NAME: a tensor name is at most 63 bytes. */
#define GGUF_MAX_NAME 64
/* Deepest nesting of arrays of arrays the reader accepts. */
#define GGUF_MAX_ARRAY_DEPTH 8

/* A string inside the file: not NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    gguf_type type;
    /* Scalars, widened. Exactly one is meaningful, by type. */
    union {
        uint64_t u64; /* UINT8/16/32/64, BOOL */
        int64_t i64;  /* INT8/16/32/64 */
        double f64;   /* FLOAT32/64 */
        gguf_str str; /* STRING */
    } v;
    /* Arrays (type == GGUF_TYPE_ARRAY): element type, count, raw element data
     * (unaligned; read with the gguf_arr_* accessors). String arrays also get a
     * table of their elements, built at open time. */
    gguf_type arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;
    gguf_str *arr_strs;
    /* Bytes of raw element data at arr_data, as stored (what herd_gguf_copy_kv
     * copies). Arrays of arrays are parsed and bounds-checked but their
     * elements are only available raw: arr_type is GGUF_TYPE_ARRAY and the
     * element accessors return 0 / "". */
    uint64_t arr_bytes;
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    char name_z[96]; /* NUL-terminated copy (names are at most 64 bytes in ggml) */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint32_t type;             /* a herd_type id (ggml's numbering) */
    uint64_t offset;           /* relative to the start of the data section */
    uint64_t nbytes;
    uint64_t n_elements;
    const void *data; /* in the mapping, aligned to general.alignment */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Open and validate a file (mmap). */
herd_status herd_gguf_open(const char *path, gguf_file **out);
/* How herd_gguf_open_ex brings a file's bytes into memory. GGUF_MAP maps the
 * page cache (instant, shared between processes, 4 KB pages). GGUF_READ
 * reads the file into private memory advised for transparent huge pages:
 * decoding streams every weight each token, and with 2 MB pages it does so
 * without a TLB miss every 4 KB (about 10% faster on a 7B model). The
 * resident size is the same; only loading takes longer (a copy). Where the
 * kernel gives no huge pages, GGUF_READ maps instead. */
enum { GGUF_MAP = 0, GGUF_READ = 1 };
herd_status herd_gguf_open_ex(const char *path, int how, gguf_file **out);
/* Parse a buffer the caller owns (must outlive the gguf_file); for fuzzing and
 * tests. */
herd_status herd_gguf_open_mem(const void *data, size_t size, gguf_file **out);
void herd_gguf_close(gguf_file *f);

uint32_t herd_gguf_version(const gguf_file *f);
uint64_t herd_gguf_file_size(const gguf_file *f);
uint32_t herd_gguf_alignment(const gguf_file *f);
uint64_t herd_gguf_data_offset(const gguf_file *f);

int64_t herd_gguf_n_kv(const gguf_file *f);
const gguf_kv *herd_gguf_kv_at(const gguf_file *f, int64_t i);
const gguf_kv *herd_gguf_find_kv(const gguf_file *f, const char *key); /* NULL if absent */
const char *herd_gguf_type_name(gguf_type t);

/* Typed getters: false if the key is absent or has an incompatible type.
 * Integer getters accept any integer type whose value fits. */
bool herd_gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool herd_gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool herd_gguf_get_f32(const gguf_file *f, const char *key, float *out); /* FLOAT32/64 */
bool herd_gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool herd_gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* Copy a string value into buf (NUL-terminated, truncated to cap-1). */
bool herd_gguf_get_strz(const gguf_file *f, const char *key, char *buf, size_t cap);

/* Array element accessors (i < kv->arr_n checked by the caller). */
int64_t herd_gguf_arr_i64(const gguf_kv *kv, uint64_t i);  /* any integer/bool element type */
double herd_gguf_arr_f64(const gguf_kv *kv, uint64_t i);   /* FLOAT32/64 (integers converted) */
gguf_str herd_gguf_arr_str(const gguf_kv *kv, uint64_t i); /* STRING */

int64_t herd_gguf_n_tensors(const gguf_file *f);
const gguf_tensor *herd_gguf_tensor_at(const gguf_file *f, int64_t i);
const gguf_tensor *herd_gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */

/* ---------------------------------------------------------------- writer */

typedef struct gguf_writer gguf_writer;

gguf_writer *herd_gguf_writer_new(void); /* NULL on out of memory (message set) */
void herd_gguf_writer_free(gguf_writer *w);
/* Default 3. Written as given (other values make files the reader rejects,
 * which tests use). */
void herd_gguf_writer_set_version(gguf_writer *w, uint32_t version);

/* Metadata, written in the order added. Setting a key again replaces its
 * value in place. Setting general.alignment with herd_gguf_set_u32 also changes the
 * data alignment the writer uses (it must be a nonzero power of two). */
herd_status herd_gguf_set_u32(gguf_writer *w, const char *key, uint32_t v);
herd_status herd_gguf_set_i32(gguf_writer *w, const char *key, int32_t v);
herd_status herd_gguf_set_u64(gguf_writer *w, const char *key, uint64_t v);
herd_status herd_gguf_set_f32(gguf_writer *w, const char *key, float v);
herd_status herd_gguf_set_bool(gguf_writer *w, const char *key, bool v);
herd_status herd_gguf_set_str(gguf_writer *w, const char *key, const char *v);
/* Any scalar type (not STRING/ARRAY): v points to a value of the matching C
 * type (uint8_t for UINT8 … double for FLOAT64, bool for BOOL). */
herd_status herd_gguf_set_scalar(gguf_writer *w, const char *key, gguf_type type, const void *v);
/* Array of n elements of a fixed-size type, data packed little-endian. */
herd_status herd_gguf_set_arr(gguf_writer *w, const char *key, gguf_type elem, const void *data,
                              uint64_t n);
herd_status herd_gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                  uint64_t n);
/* Copy a key/value (any type, arrays included) from an open file. */
herd_status herd_gguf_copy_kv(gguf_writer *w, const gguf_kv *kv);

/* A tensor: ne[0] is the row length. data (nbytes, which must equal the size
 * the type and dims give) is copied. */
herd_status herd_gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                 const int64_t *ne, const void *data, uint64_t nbytes);

/* A tensor described only: its data is given later to herd_gguf_out_write,
 * so that a model written one tensor at a time is never in memory whole. */
herd_status herd_gguf_add_tensor_info(gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne);

/* Serialize to a malloc'ed buffer (caller frees) or to a file (as
 * herd_gguf_out does). Every tensor must carry its data. */
herd_status herd_gguf_write_mem(const gguf_writer *w, uint8_t **buf, size_t *len);
herd_status herd_gguf_write_file(const gguf_writer *w, const char *path);

/* Writing a file, the tensors' data given one at a time. begin writes the
 * header, metadata and tensor list of w (which must stay unchanged until end)
 * to a temporary file beside `path` (herd_out, src/util/util.h); it refuses an
 * output that is the file `input` (also through a symlink or a hard link;
 * input may be NULL). write gives the next tensor's data, in the order the
 * tensors were added, exactly its size. end(o, st) with st == HERD_OK checks
 * that every tensor was written and renames the file into place; with an
 * error (or after a failed write) it removes the temporary file, leaving any
 * existing output as it was, and returns st. end accepts o == NULL. */
typedef struct herd_gguf_out herd_gguf_out;
herd_status herd_gguf_out_begin(herd_gguf_out **out, const gguf_writer *w, const char *path,
                                const char *input);
herd_status herd_gguf_out_write(herd_gguf_out *o, const void *data, size_t nbytes);
herd_status herd_gguf_out_end(herd_gguf_out *o, herd_status st);

#endif
