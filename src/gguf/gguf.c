/*
 * gguf.c — the GGUF reader: open, validate, look up.
 *
 * The whole file is parsed once, front to back, by a cursor that never reads
 * a byte without first checking that it is there. Every count read from the
 * file is compared with the bytes that remain before anything is allocated for
 * it, so a hostile header cannot make us allocate more than a small multiple
 * of the file size. After parsing, the tensors are placed (offsets aligned,
 * data inside the file, no two overlapping) and the keys and tensor names are
 * sorted into indexes, which both finds duplicates in O(n log n) and serves
 * the lookups. Once herd_gguf_open returns HERD_OK, every pointer in the gguf_file
 * is in bounds and nothing needs checking again.
 */
#define _GNU_SOURCE
#include "gguf/gguf.h"
#include "tensor/tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The least bytes one metadata entry can take: key length (8), value type
 * (4), a one-byte value. And one tensor info: name length (8), n_dims (4), one
 * dimension (8), type (4), offset (8). Counts larger than the remaining bytes
 * divided by these are rejected before any allocation. */
#define MIN_KV_BYTES     13
#define MIN_TENSOR_BYTES 32
#define MIN_STR_BYTES    8
#define MIN_ARRAY_BYTES  12

/* A name and the index of its entry; sorted by name for lookup. */
typedef struct name_ix {
    gguf_str name;
    int64_t i;
} name_ix;

struct gguf_file {
    const uint8_t *base;
    uint64_t size;
    void *map; /* non-NULL when herd_gguf_open mapped or read the file */
    size_t map_len;
    uint32_t version, alignment;
    uint64_t data_offset;
    int64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    name_ix *kv_ix, *tensor_ix; /* sorted by name */
};

/* The parse cursor, and what it is reading, for error messages. */
typedef struct reader {
    const uint8_t *base;
    uint64_t size, pos;
    const char *path; /* NULL for a memory buffer */
    char where[128];  /* e.g. "key 'general.name'"; "" at top level */
} reader;

typedef unsigned long long ull; /* for printf */

/* Bytes of each scalar type; 0 for STRING and ARRAY, which vary. */
static const uint8_t scalar_size[GGUF_TYPE_COUNT] = {
    [GGUF_TYPE_UINT8] = 1,  [GGUF_TYPE_INT8] = 1,  [GGUF_TYPE_UINT16] = 2,  [GGUF_TYPE_INT16] = 2,
    [GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4, [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,
    [GGUF_TYPE_UINT64] = 8, [GGUF_TYPE_INT64] = 8, [GGUF_TYPE_FLOAT64] = 8,
};

/* ------------------------------------------------------------ messages */

/* Render a name from the file for a message: at most 64 bytes, anything not
 * printable ASCII shown as '?', so that a hostile file cannot put terminal
 * escape sequences into the error a user sees. */
static const char *show(gguf_str s, char *buf, size_t cap)
{
    size_t n = s.len < 64 ? (size_t)s.len : 64;
    if (n > cap - 4) n = cap - 4;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    strcpy(buf + n, s.len > n ? "..." : "");
    return buf;
}

/* Record a HERD_E_FORMAT message: "PATH: gguf: WHERE: MSG". */
static herd_status bad(const reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static herd_status bad(const reader *r, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return herd_seterr(HERD_E_FORMAT, "%s%sgguf: %s%s%s", r->path ? r->path : "",
                       r->path ? ": " : "", r->where, r->where[0] ? ": " : "", msg);
}

static void set_where(reader *r, const char *kind, gguf_str name)
{
    char buf[80];
    snprintf(r->where, sizeof r->where, "%s '%s'", kind, show(name, buf, sizeof buf));
}

/* --------------------------------------------------------- primitives */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}
static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Fail unless n more bytes are there. */
static herd_status need(const reader *r, uint64_t n, const char *what)
{
    if (n <= r->size - r->pos) return HERD_OK;
    return bad(r, "file truncated: %s at offset %llu needs %llu bytes, file size is %llu", what,
               (ull)r->pos, (ull)n, (ull)r->size);
}

static herd_status rd_u32(reader *r, const char *what, uint32_t *v)
{
    herd_status st = need(r, 4, what);
    if (st) return st;
    *v = le32(r->base + r->pos);
    r->pos += 4;
    return HERD_OK;
}

static herd_status rd_u64(reader *r, const char *what, uint64_t *v)
{
    herd_status st = need(r, 8, what);
    if (st) return st;
    *v = le64(r->base + r->pos);
    r->pos += 8;
    return HERD_OK;
}

/* A string: u64 length, then that many bytes (no terminator). */
static herd_status rd_str(reader *r, const char *what, gguf_str *s)
{
    uint64_t len;
    herd_status st = rd_u64(r, what, &len);
    if (st) return st;
    if (len > r->size - r->pos)
        return bad(r, "%s of %llu bytes at offset %llu extends past end of file (size %llu)", what,
                   (ull)len, (ull)r->pos, (ull)r->size);
    s->ptr = (const char *)r->base + r->pos;
    s->len = len;
    r->pos += len;
    return HERD_OK;
}

/* --------------------------------------------------------------- values */

static bool type_is_signed(gguf_type t)
{
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_INT64;
}
static bool type_is_float(gguf_type t)
{
    return t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64;
}

/* Decode one scalar of type t at p (which has scalar_size[t] bytes) into the
 * member of kv->v its type selects. */
static void decode_scalar(gguf_type t, const uint8_t *p, gguf_kv *kv)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_BOOL:
        kv->v.u64 = p[0];
        break;
    case GGUF_TYPE_INT8:
        kv->v.i64 = (int8_t)p[0];
        break;
    case GGUF_TYPE_UINT16:
        kv->v.u64 = le16(p);
        break;
    case GGUF_TYPE_INT16:
        kv->v.i64 = (int16_t)le16(p);
        break;
    case GGUF_TYPE_UINT32:
        kv->v.u64 = le32(p);
        break;
    case GGUF_TYPE_INT32:
        kv->v.i64 = (int32_t)le32(p);
        break;
    case GGUF_TYPE_UINT64:
        kv->v.u64 = le64(p);
        break;
    case GGUF_TYPE_INT64:
        kv->v.i64 = (int64_t)le64(p);
        break;
    case GGUF_TYPE_FLOAT32: {
        uint32_t bits = le32(p);
        float f;
        memcpy(&f, &bits, 4);
        kv->v.f64 = f;
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        uint64_t bits = le64(p);
        memcpy(&kv->v.f64, &bits, 8);
        break;
    }
    default:
        kv->v.u64 = 0;
        break;
    }
}

/* An array: element type, count, elements. With kv NULL (the elements of an
 * array of arrays) the bytes are checked and skipped but nothing is kept.
 * Nesting is bounded so that a file cannot exhaust the stack. */
static herd_status parse_array(reader *r, gguf_kv *kv, int depth)
{
    uint32_t et;
    uint64_t n;
    herd_status st;
    if (depth > GGUF_MAX_ARRAY_DEPTH)
        return bad(r, "arrays nested deeper than %d levels", GGUF_MAX_ARRAY_DEPTH);
    if ((st = rd_u32(r, "array element type", &et))) return st;
    if (et >= GGUF_TYPE_COUNT)
        return bad(r, "unknown array element type %u at offset %llu", et, (ull)(r->pos - 4));
    if ((st = rd_u64(r, "array length", &n))) return st;
    uint64_t start = r->pos, left = r->size - r->pos, bytes;
    if (kv) {
        kv->arr_type = (gguf_type)et;
        kv->arr_n = n;
        kv->arr_data = r->base + start;
    }
    if (scalar_size[et]) {
        if (!herd_mul_ok(n, scalar_size[et], &bytes) || bytes > left)
            return bad(
                r, "array of %llu %s elements at offset %llu extends past end of file (size %llu)",
                (ull)n, herd_gguf_type_name((gguf_type)et), (ull)start, (ull)r->size);
        r->pos += bytes;
    } else if (et == GGUF_TYPE_STRING) {
        if (n > left / MIN_STR_BYTES)
            return bad(r, "array of %llu strings at offset %llu cannot fit in the %llu bytes left",
                       (ull)n, (ull)start, (ull)left);
        if (kv && !(kv->arr_strs = herd_calloc(n, sizeof(gguf_str)))) return HERD_E_NOMEM;
        for (uint64_t i = 0; i < n; i++) {
            gguf_str s;
            if ((st = rd_str(r, "string element", &s))) return st;
            if (kv) kv->arr_strs[i] = s;
        }
    } else {
        if (n > left / MIN_ARRAY_BYTES)
            return bad(r, "array of %llu arrays at offset %llu cannot fit in the %llu bytes left",
                       (ull)n, (ull)start, (ull)left);
        for (uint64_t i = 0; i < n; i++)
            if ((st = parse_array(r, NULL, depth + 1))) return st;
    }
    if (kv) kv->arr_bytes = r->pos - start;
    return HERD_OK;
}

static herd_status parse_kv(reader *r, int64_t i, gguf_kv *kv)
{
    uint32_t t;
    herd_status st;
    snprintf(r->where, sizeof r->where, "metadata entry %lld", (long long)i);
    if ((st = rd_str(r, "key", &kv->key))) return st;
    set_where(r, "key", kv->key);
    if ((st = rd_u32(r, "value type", &t))) return st;
    if (t >= GGUF_TYPE_COUNT)
        return bad(r, "unknown value type %u at offset %llu", t, (ull)(r->pos - 4));
    kv->type = (gguf_type)t;
    if (t == GGUF_TYPE_STRING) return rd_str(r, "string value", &kv->v.str);
    if (t == GGUF_TYPE_ARRAY) return parse_array(r, kv, 1);
    if ((st = need(r, scalar_size[t], "value"))) return st;
    decode_scalar(kv->type, r->base + r->pos, kv);
    r->pos += scalar_size[t];
    return HERD_OK;
}

/* --------------------------------------------------------------- header */

static herd_status check_version(const reader *r, uint32_t v)
{
    if (v == 2 || v == 3) return HERD_OK;
    if (v == 1) return bad(r, "version 1 is not supported (obsolete; herd reads versions 2 and 3)");
    /* A big-endian file has its version byte-swapped; say so rather than
     * reporting version 50331648. */
    uint32_t sw = __builtin_bswap32(v);
    if (sw == 2 || sw == 3) return bad(r, "big-endian GGUF files are not supported");
    return bad(r, "version %u is not supported (herd reads versions 2 and 3)", v);
}

static herd_status parse_header(reader *r, gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv)
{
    herd_status st = need(r, 4, "magic");
    if (st) return st;
    const uint8_t *m = r->base;
    if (memcmp(m, "GGUF", 4) != 0)
        return bad(r, "bad magic %02x %02x %02x %02x (expected \"GGUF\"): not a GGUF file", m[0],
                   m[1], m[2], m[3]);
    r->pos = 4;
    if ((st = rd_u32(r, "version", &f->version))) return st;
    if ((st = check_version(r, f->version))) return st;
    if ((st = rd_u64(r, "tensor count", n_tensors))) return st;
    if ((st = rd_u64(r, "metadata count", n_kv))) return st;
    uint64_t left = r->size - r->pos;
    if (*n_kv > left / MIN_KV_BYTES)
        return bad(r, "metadata count %llu cannot fit in the %llu bytes left", (ull)*n_kv,
                   (ull)left);
    if (*n_tensors > left / MIN_TENSOR_BYTES)
        return bad(r, "tensor count %llu cannot fit in the %llu bytes left", (ull)*n_tensors,
                   (ull)left);
    return HERD_OK;
}

/* ---------------------------------------------------------------- index */

static int ix_cmp(const void *a, const void *b)
{
    const gguf_str *x = &((const name_ix *)a)->name, *y = &((const name_ix *)b)->name;
    uint64_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Sort ix by name; two equal neighbours are duplicates. */
static herd_status sort_index(reader *r, name_ix *ix, int64_t n, const char *kind)
{
    if (n > 1) qsort(ix, (size_t)n, sizeof *ix, ix_cmp);
    for (int64_t i = 1; i < n; i++) {
        if (ix_cmp(&ix[i - 1], &ix[i]) != 0) continue;
        char buf[80];
        int64_t a = ix[i - 1].i < ix[i].i ? ix[i - 1].i : ix[i].i;
        int64_t b = ix[i - 1].i < ix[i].i ? ix[i].i : ix[i - 1].i;
        r->where[0] = 0;
        return bad(r, "duplicate %s '%s' (entries %lld and %lld)", kind,
                   show(ix[i].name, buf, sizeof buf), (long long)a, (long long)b);
    }
    return HERD_OK;
}

static const name_ix *ix_find(const name_ix *ix, int64_t n, const char *name)
{
    if (!ix || !name) return NULL;
    name_ix key = {{name, strlen(name)}, 0};
    return bsearch(&key, ix, (size_t)n, sizeof *ix, ix_cmp);
}

/* ------------------------------------------------------------- metadata */

static herd_status parse_kvs(reader *r, gguf_file *f, uint64_t n)
{
    herd_status st;
    if (!(f->kv = herd_calloc(n, sizeof *f->kv))) return HERD_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        f->n_kv++; /* before parsing, so that close frees a half-built string array */
        if ((st = parse_kv(r, (int64_t)i, &f->kv[i]))) return st;
    }
    r->where[0] = 0;
    if (!(f->kv_ix = herd_calloc(n, sizeof *f->kv_ix))) return HERD_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) f->kv_ix[i] = (name_ix){f->kv[i].key, (int64_t)i};
    return sort_index(r, f->kv_ix, f->n_kv, "key");
}

/* general.alignment, if present, must be a UINT32 nonzero power of two. */
static herd_status read_alignment(reader *r, gguf_file *f)
{
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = herd_gguf_find_kv(f, "general.alignment");
    if (!kv) return HERD_OK;
    snprintf(r->where, sizeof r->where, "key 'general.alignment'");
    if (kv->type != GGUF_TYPE_UINT32)
        return bad(r, "has type %s, expected UINT32", herd_gguf_type_name(kv->type));
    uint64_t a = kv->v.u64;
    if (a == 0 || (a & (a - 1)) != 0) return bad(r, "%llu is not a nonzero power of two", (ull)a);
    f->alignment = (uint32_t)a;
    r->where[0] = 0;
    return HERD_OK;
}

/* -------------------------------------------------------------- tensors */

/* Element count and byte size from dims and type, overflow-checked. */
static herd_status tensor_size(reader *r, gguf_tensor *t)
{
    const herd_type_traits *tt = herd_type(t->type);
    if (t->ne[0] % tt->blck_size)
        return bad(r, "row length ne[0] = %lld is not a multiple of the %s block size %lld",
                   (long long)t->ne[0], tt->name, (long long)tt->blck_size);
    uint64_t n = 1, row_bytes, nbytes;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (!herd_mul_ok(n, (uint64_t)t->ne[d], &n) || n > INT64_MAX)
            return bad(r, "dimensions %lld x %lld x %lld x %lld: element count overflows",
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3]);
    uint64_t rows = n / (uint64_t)t->ne[0];
    if (!herd_mul_ok((uint64_t)(t->ne[0] / tt->blck_size), tt->type_size, &row_bytes) ||
        !herd_mul_ok(row_bytes, rows, &nbytes))
        return bad(r, "data size of %llu %s elements overflows", (ull)n, tt->name);
    t->n_elements = n;
    t->nbytes = nbytes;
    return HERD_OK;
}

static herd_status parse_name(reader *r, int64_t i, gguf_tensor *t)
{
    herd_status st;
    snprintf(r->where, sizeof r->where, "tensor %lld", (long long)i);
    if ((st = rd_str(r, "tensor name", &t->name))) return st;
    set_where(r, "tensor", t->name);
    if (t->name.len >= GGUF_MAX_NAME)
        return bad(r, "name of %llu bytes is too long (at most %d)", (ull)t->name.len,
                   GGUF_MAX_NAME - 1);
    if (memchr(t->name.ptr, 0, (size_t)t->name.len)) return bad(r, "name contains a NUL byte");
    memcpy(t->name_z, t->name.ptr, (size_t)t->name.len);
    t->name_z[t->name.len] = 0;
    return HERD_OK;
}

static herd_status parse_tensor_info(reader *r, int64_t i, gguf_tensor *t)
{
    herd_status st;
    if ((st = parse_name(r, i, t))) return st;
    if ((st = rd_u32(r, "n_dims", &t->n_dims))) return st;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return bad(r, "n_dims %u is out of range 1..%d", t->n_dims, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims && (st = rd_u64(r, "dimension", &ne))) return st;
        if (ne == 0 || ne > INT64_MAX)
            return bad(r, "dimension %u is %llu (must be 1 .. 2^63-1)", d, (ull)ne);
        t->ne[d] = (int64_t)ne;
    }
    if ((st = rd_u32(r, "type", &t->type))) return st;
    if (!herd_type(t->type)) return bad(r, "unknown tensor type id %u", t->type);
    if ((st = rd_u64(r, "data offset", &t->offset))) return st;
    return tensor_size(r, t);
}

/* The data section starts at the first aligned offset after the infos; each
 * tensor must be aligned within it and end inside the file. */
static herd_status place_tensors(reader *r, gguf_file *f)
{
    uint64_t a = f->alignment, end;
    if (!herd_add_ok(r->pos, a - 1, &f->data_offset)) return bad(r, "data offset overflows");
    f->data_offset -= f->data_offset % a;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        set_where(r, "tensor", t->name);
        if (t->offset % a)
            return bad(r, "data offset %llu is not a multiple of the alignment %llu",
                       (ull)t->offset, (ull)a);
        uint64_t begin;
        if (!herd_add_ok(f->data_offset, t->offset, &begin) || begin > r->size)
            return bad(
                r, "data offset %llu is past end of file (data section at %llu, file size %llu)",
                (ull)t->offset, (ull)f->data_offset, (ull)r->size);
        if (!herd_add_ok(begin, t->nbytes, &end) || end > r->size)
            return bad(r, "data [offset %llu, %llu bytes] extends past end of file (size %llu)",
                       (ull)begin, (ull)t->nbytes, (ull)r->size);
        t->data = r->base + f->data_offset + t->offset;
    }
    r->where[0] = 0;
    return HERD_OK;
}

typedef struct extent {
    uint64_t begin, end;
    int64_t i;
} extent;

static int extent_cmp(const void *a, const void *b)
{
    const extent *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Sorted by offset, each tensor must end before the next begins. */
static herd_status check_overlap(reader *r, gguf_file *f)
{
    int64_t n = f->n_tensors;
    if (n < 2) return HERD_OK;
    extent *e = herd_calloc((size_t)n, sizeof *e);
    if (!e) return HERD_E_NOMEM;
    for (int64_t i = 0; i < n; i++)
        e[i] = (extent){f->tensors[i].offset, f->tensors[i].offset + f->tensors[i].nbytes, i};
    qsort(e, (size_t)n, sizeof *e, extent_cmp);
    herd_status st = HERD_OK;
    for (int64_t i = 1; i < n && !st; i++) {
        if (e[i].begin >= e[i - 1].end) continue;
        const gguf_tensor *x = &f->tensors[e[i - 1].i], *y = &f->tensors[e[i].i];
        st = bad(
            r, "tensors '%s' [offset %llu, %llu bytes] and '%s' [offset %llu, %llu bytes] overlap",
            x->name_z, (ull)x->offset, (ull)x->nbytes, y->name_z, (ull)y->offset, (ull)y->nbytes);
    }
    free(e);
    return st;
}

static herd_status parse_tensors(reader *r, gguf_file *f, uint64_t n)
{
    herd_status st;
    /* Checked against the header's bound already, but the metadata has used
     * some of those bytes since. */
    uint64_t left = r->size - r->pos;
    if (n > left / MIN_TENSOR_BYTES)
        return bad(r, "tensor count %llu cannot fit in the %llu bytes left after the metadata",
                   (ull)n, (ull)left);
    if (!(f->tensors = herd_calloc(n, sizeof *f->tensors))) return HERD_E_NOMEM;
    f->n_tensors = (int64_t)n;
    for (int64_t i = 0; i < f->n_tensors; i++)
        if ((st = parse_tensor_info(r, i, &f->tensors[i]))) return st;
    r->where[0] = 0;
    if (!(f->tensor_ix = herd_calloc(n, sizeof *f->tensor_ix))) return HERD_E_NOMEM;
    for (int64_t i = 0; i < f->n_tensors; i++) f->tensor_ix[i] = (name_ix){f->tensors[i].name, i};
    if ((st = sort_index(r, f->tensor_ix, f->n_tensors, "tensor name"))) return st;
    if ((st = place_tensors(r, f))) return st;
    return check_overlap(r, f);
}

/* ------------------------------------------------------------------ open */

static herd_status parse(gguf_file *f, const char *path)
{
    reader r = {.base = f->base, .size = f->size, .path = path};
    uint64_t n_tensors, n_kv;
    herd_status st;
    if ((st = parse_header(&r, f, &n_tensors, &n_kv))) return st;
    if ((st = parse_kvs(&r, f, n_kv))) return st;
    if ((st = read_alignment(&r, f))) return st;
    return parse_tensors(&r, f, n_tensors);
}

herd_status herd_gguf_open_mem(const void *data, size_t size, gguf_file **out)
{
    if (!out) return herd_seterr(HERD_E_INVALID, "gguf_open_mem: out is NULL");
    *out = NULL;
    if (!data && size) return herd_seterr(HERD_E_INVALID, "gguf_open_mem: data is NULL");
    gguf_file *f = herd_calloc(1, sizeof *f);
    if (!f) return HERD_E_NOMEM;
    f->base = data;
    f->size = size;
    herd_status st = parse(f, NULL);
    if (st) {
        herd_gguf_close(f);
        return st;
    }
    *out = f;
    return HERD_OK;
}

/* Whether the kernel hands out transparent huge pages on request. */
static bool thp_available(void)
{
    FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!fp) return false;
    char line[128] = "";
    const bool ok = fgets(line, sizeof line, fp) && !strstr(line, "[never]");
    fclose(fp);
    return ok;
}

/* One reader's share of read_private: bytes [off, end) of the file. */
typedef struct {
    int fd, err;
    char *dst;
    size_t off, end;
} read_part;

static void *read_part_run(void *arg)
{
    read_part *r = arg;
    while (r->off < r->end) {
        const size_t left = r->end - r->off,
                     want = left < ((size_t)1 << 28) ? left : (size_t)1 << 28;
        const ssize_t n = pread(r->fd, r->dst + r->off, want, (off_t)r->off);
        if (n <= 0) {
            r->err = n == 0 ? EIO : errno;
            break;
        }
        r->off += (size_t)n;
    }
    return NULL;
}

/* The file's bytes in private memory advised for huge pages (see
 * GGUF_READ), or MAP_FAILED with errno set. Most of the time goes to the
 * kernel clearing the fresh pages before the copy; readers on several cores
 * share that work. */
static void *read_private(int fd, size_t len)
{
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return p;
    madvise(p, len, MADV_HUGEPAGE);
    enum { MAX_READERS = 8 };
    long n_cpu = sysconf(_SC_NPROCESSORS_ONLN);
    const int n = n_cpu < 1 ? 1 : n_cpu > MAX_READERS ? MAX_READERS : (int)n_cpu;
    read_part parts[MAX_READERS];
    pthread_t th[MAX_READERS];
    bool started[MAX_READERS] = {false};
    const size_t huge = (size_t)2 << 20;
    for (int i = 0; i < n; i++) {
        /* boundaries on huge pages, so that no page is faulted by two readers */
        const size_t a = len / huge * i / n * huge,
                     b = i == n - 1 ? len : len / huge * (i + 1) / n * huge;
        parts[i] = (read_part){.fd = fd, .dst = p, .off = a, .end = b};
        if (i > 0) started[i] = pthread_create(&th[i], NULL, read_part_run, &parts[i]) == 0;
    }
    read_part_run(&parts[0]);
    int err = parts[0].err;
    for (int i = 1; i < n; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            read_part_run(&parts[i]);
        if (!err) err = parts[i].err;
    }
    if (err) {
        munmap(p, len);
        errno = err;
        return MAP_FAILED;
    }
    mprotect(p, len, PROT_READ); /* as read-only as the mapping would be */
    return p;
}

/* Bring the whole file into memory, mapped or read (see GGUF_MAP). A
 * zero-length file is not mapped (mmap refuses it); the parser then reports
 * it as truncated. O_NONBLOCK keeps a FIFO given by mistake from hanging the
 * open; it is then refused as not a regular file. */
static herd_status map_file(const char *path, int how, gguf_file *f)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return herd_seterr(HERD_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    herd_status st = HERD_OK;
    if (fstat(fd, &sb) != 0)
        st = herd_seterr(HERD_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = herd_seterr(HERD_E_IO, "%s: not a regular file", path);
    else if (sb.st_size > 0) {
        const size_t len = (size_t)sb.st_size;
        void *p = how == GGUF_READ && thp_available()
                      ? read_private(fd, len)
                      : mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            st = herd_seterr(HERD_E_IO, "%s: cannot load: %s", path, strerror(errno));
        else {
            f->map = p;
            f->map_len = len;
            f->base = p;
            f->size = (uint64_t)sb.st_size;
        }
    }
    close(fd);
    return st;
}

herd_status herd_gguf_open(const char *path, gguf_file **out)
{
    return herd_gguf_open_ex(path, GGUF_MAP, out);
}

herd_status herd_gguf_open_ex(const char *path, int how, gguf_file **out)
{
    if (!out || !path) return herd_seterr(HERD_E_INVALID, "gguf_open: NULL argument");
    *out = NULL;
    gguf_file *f = herd_calloc(1, sizeof *f);
    if (!f) return HERD_E_NOMEM;
    herd_status st = map_file(path, how, f);
    if (!st) st = parse(f, path);
    if (st) {
        herd_gguf_close(f);
        return st;
    }
    *out = f;
    return HERD_OK;
}

void herd_gguf_close(gguf_file *f)
{
    if (!f) return;
    for (int64_t i = 0; i < f->n_kv; i++) free(f->kv[i].arr_strs);
    free(f->kv);
    free(f->kv_ix);
    free(f->tensors);
    free(f->tensor_ix);
    if (f->map) munmap(f->map, f->map_len);
    free(f);
}

/* --------------------------------------------------------------- access */

uint32_t herd_gguf_version(const gguf_file *f)
{
    return f->version;
}
uint64_t herd_gguf_file_size(const gguf_file *f)
{
    return f->size;
}
uint32_t herd_gguf_alignment(const gguf_file *f)
{
    return f->alignment;
}
uint64_t herd_gguf_data_offset(const gguf_file *f)
{
    return f->data_offset;
}
int64_t herd_gguf_n_kv(const gguf_file *f)
{
    return f->n_kv;
}
int64_t herd_gguf_n_tensors(const gguf_file *f)
{
    return f->n_tensors;
}

const gguf_kv *herd_gguf_kv_at(const gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_kv ? &f->kv[i] : NULL;
}

const gguf_kv *herd_gguf_find_kv(const gguf_file *f, const char *key)
{
    const name_ix *e = ix_find(f->kv_ix, f->n_kv, key);
    return e ? &f->kv[e->i] : NULL;
}

const gguf_tensor *herd_gguf_tensor_at(const gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *herd_gguf_find_tensor(const gguf_file *f, const char *name)
{
    const name_ix *e = ix_find(f->tensor_ix, f->n_tensors, name);
    return e ? &f->tensors[e->i] : NULL;
}

const char *herd_gguf_type_name(gguf_type t)
{
    static const char *const names[GGUF_TYPE_COUNT] = {
        "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",   "FLOAT32",
        "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64",
    };
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "?";
}

static bool is_int(gguf_type t)
{
    return t != GGUF_TYPE_BOOL && scalar_size[t] && !type_is_float(t);
}

bool herd_gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out)
{
    const gguf_kv *kv = herd_gguf_find_kv(f, key);
    if (!kv || (unsigned)kv->type >= GGUF_TYPE_COUNT || !is_int(kv->type)) return false;
    if (type_is_signed(kv->type) ? kv->v.i64 < 0 || kv->v.i64 > UINT32_MAX : kv->v.u64 > UINT32_MAX)
        return false;
    *out = type_is_signed(kv->type) ? (uint32_t)kv->v.i64 : (uint32_t)kv->v.u64;
    return true;
}

bool herd_gguf_get_i64(const gguf_file *f, const char *key, int64_t *out)
{
    const gguf_kv *kv = herd_gguf_find_kv(f, key);
    if (!kv || (unsigned)kv->type >= GGUF_TYPE_COUNT || !is_int(kv->type)) return false;
    if (!type_is_signed(kv->type) && kv->v.u64 > INT64_MAX) return false;
    *out = type_is_signed(kv->type) ? kv->v.i64 : (int64_t)kv->v.u64;
    return true;
}

bool herd_gguf_get_f32(const gguf_file *f, const char *key, float *out)
{
    const gguf_kv *kv = herd_gguf_find_kv(f, key);
    if (!kv || !type_is_float(kv->type)) return false;
    *out = (float)kv->v.f64;
    return true;
}

bool herd_gguf_get_bool(const gguf_file *f, const char *key, bool *out)
{
    const gguf_kv *kv = herd_gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return false;
    *out = kv->v.u64 != 0;
    return true;
}

bool herd_gguf_get_str(const gguf_file *f, const char *key, gguf_str *out)
{
    const gguf_kv *kv = herd_gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_STRING) return false;
    *out = kv->v.str;
    return true;
}

bool herd_gguf_get_strz(const gguf_file *f, const char *key, char *buf, size_t cap)
{
    gguf_str s;
    if (cap == 0 || !herd_gguf_get_str(f, key, &s)) return false;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    if (n) memcpy(buf, s.ptr, n);
    buf[n] = 0;
    return true;
}

/* Element i of a scalar array decoded into a scratch kv; false if kv is not
 * an array of scalars or i is out of range. */
static bool arr_elem(const gguf_kv *kv, uint64_t i, gguf_kv *tmp)
{
    if (!kv || kv->type != GGUF_TYPE_ARRAY || i >= kv->arr_n) return false;
    if ((unsigned)kv->arr_type >= GGUF_TYPE_COUNT || !scalar_size[kv->arr_type]) return false;
    decode_scalar(kv->arr_type, kv->arr_data + i * scalar_size[kv->arr_type], tmp);
    return true;
}

int64_t herd_gguf_arr_i64(const gguf_kv *kv, uint64_t i)
{
    gguf_kv e;
    if (!arr_elem(kv, i, &e) || type_is_float(kv->arr_type)) return 0;
    return type_is_signed(kv->arr_type) ? e.v.i64 : (int64_t)e.v.u64;
}

double herd_gguf_arr_f64(const gguf_kv *kv, uint64_t i)
{
    gguf_kv e;
    if (!arr_elem(kv, i, &e)) return 0;
    if (type_is_float(kv->arr_type)) return e.v.f64;
    return type_is_signed(kv->arr_type) ? (double)e.v.i64 : (double)e.v.u64;
}

gguf_str herd_gguf_arr_str(const gguf_kv *kv, uint64_t i)
{
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING || i >= kv->arr_n)
        return (gguf_str){"", 0};
    return kv->arr_strs[i];
}
