/*
 * gguf_write.c — the GGUF writer.
 *
 * Metadata values are serialized when they are set (type tag and value bytes,
 * kept per key so that setting a key again can replace it in place); tensors
 * keep a copy of their data, or only their description when the data comes
 * later through herd_gguf_out (a 7B model in F16 is 13 GB: quantize and synth
 * write one tensor at a time). Tensor offsets are assigned only when the file
 * is written, because general.alignment may still change until then.
 *
 * One serializer produces the file's layout (header, metadata, tensor list,
 * padding). It writes through a sink that either counts bytes, fills a
 * buffer, or writes to a FILE, so herd_gguf_write_mem can size its buffer exactly.
 * Files are written through herd_out (src/util/util.h): to a temporary file
 * beside the output, renamed into place only when complete, so a failed or
 * refused write never truncates a file, least of all the one being read.
 */
#include "gguf/gguf.h"
#include "tensor/tensor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wkv {
    char *key;
    size_t key_len;
    uint8_t *val; /* value type (u32) followed by the value, as in the file */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char name[GGUF_MAX_NAME];
    uint32_t n_dims, type;
    int64_t ne[GGUF_MAX_DIMS];
    uint8_t *data; /* NULL: described only, written through herd_gguf_out */
    uint64_t nbytes;
} wtensor;

struct gguf_writer {
    uint32_t version, alignment;
    wkv *kv;
    int64_t n_kv, cap_kv;
    wtensor *t;
    int64_t n_t, cap_t;
};

/* A growable byte buffer; an allocation failure is remembered, not fatal, so
 * that building code need not check every append. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->oom || n == 0) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_le(bytes *b, uint64_t v, int n)
{
    uint8_t le[8];
    for (int i = 0; i < n; i++) le[i] = (uint8_t)(v >> 8 * i);
    put(b, le, (size_t)n);
}

static void put_str(bytes *b, const char *s, uint64_t len)
{
    put_le(b, len, 8);
    put(b, s, (size_t)len);
}

/* ------------------------------------------------------------- writer */

gguf_writer *herd_gguf_writer_new(void)
{
    gguf_writer *w = herd_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->version = 3;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void herd_gguf_writer_free(gguf_writer *w)
{
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (int64_t i = 0; i < w->n_t; i++) free(w->t[i].data);
    free(w->kv);
    free(w->t);
    free(w);
}

void herd_gguf_writer_set_version(gguf_writer *w, uint32_t version)
{
    w->version = version;
}

/* Grow an array of elements of size sz so that it holds one more. */
static bool grow(void **arr, int64_t *cap, int64_t n, size_t sz)
{
    if (n < *cap) return true;
    int64_t nc = *cap ? *cap * 2 : 16;
    void *p = herd_calloc((size_t)nc, sz);
    if (!p) return false;
    if (n) memcpy(p, *arr, (size_t)n * sz);
    free(*arr);
    *arr = p;
    *cap = nc;
    return true;
}

static bool is_alignment_key(const char *key, size_t len)
{
    return len == 17 && memcmp(key, "general.alignment", 17) == 0;
}

/* general.alignment changes the writer's alignment, so it must be one the
 * reader accepts. val is the serialized type tag + value. */
static herd_status check_alignment(gguf_writer *w, const uint8_t *val, size_t len)
{
    uint32_t t = 0, a = 0;
    if (len == 8) {
        t = (uint32_t)val[0] | (uint32_t)val[1] << 8 | (uint32_t)val[2] << 16 |
            (uint32_t)val[3] << 24;
        a = (uint32_t)val[4] | (uint32_t)val[5] << 8 | (uint32_t)val[6] << 16 |
            (uint32_t)val[7] << 24;
    }
    if (t != GGUF_TYPE_UINT32 || a == 0 || (a & (a - 1)))
        return herd_seterr(HERD_E_INVALID,
                           "gguf writer: general.alignment must be a UINT32 nonzero power of two");
    w->alignment = a;
    return HERD_OK;
}

/* Store a serialized value under a key (taking val's buffer), replacing the
 * value of an existing key in place. */
static herd_status set_kv(gguf_writer *w, const char *key, size_t key_len, bytes *val)
{
    herd_status st = HERD_OK;
    if (val->oom)
        st = herd_seterr(HERD_E_NOMEM, "gguf writer: out of memory");
    else if (is_alignment_key(key, key_len))
        st = check_alignment(w, val->p, val->len);
    if (st) {
        free(val->p);
        return st;
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        wkv *e = &w->kv[i];
        if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0) {
            free(e->val);
            e->val = val->p;
            e->val_len = val->len;
            return HERD_OK;
        }
    }
    char *k = malloc(key_len + 1);
    if (!k || !grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        free(k);
        free(val->p);
        return herd_seterr(HERD_E_NOMEM, "gguf writer: out of memory");
    }
    if (key_len) memcpy(k, key, key_len);
    k[key_len] = 0;
    w->kv[w->n_kv++] = (wkv){k, key_len, val->p, val->len};
    return HERD_OK;
}

static herd_status check_args(const gguf_writer *w, const char *key)
{
    if (!w || !key) return herd_seterr(HERD_E_INVALID, "gguf writer: NULL argument");
    return HERD_OK;
}

static herd_status set_scalar_n(gguf_writer *w, const char *key, size_t key_len, gguf_type type,
                                const void *v)
{
    uint64_t x = 0;
    bytes b = {0};
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
        x = *(const uint8_t *)v;
        break;
    case GGUF_TYPE_BOOL:
        x = *(const bool *)v ? 1 : 0;
        break;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        x = *(const uint16_t *)v;
        break;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32: {
        uint32_t u;
        memcpy(&u, v, 4);
        x = u;
        break;
    }
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        memcpy(&x, v, 8);
        break;
    default:
        return herd_seterr(HERD_E_INVALID, "gguf writer: %s is not a scalar type",
                           herd_gguf_type_name(type));
    }
    static const int size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    put_le(&b, type, 4);
    put_le(&b, x, size[type]);
    return set_kv(w, key, key_len, &b);
}

herd_status herd_gguf_set_scalar(gguf_writer *w, const char *key, gguf_type type, const void *v)
{
    herd_status st = check_args(w, key);
    if (!st && !v) st = herd_seterr(HERD_E_INVALID, "gguf writer: NULL value");
    return st ? st : set_scalar_n(w, key, strlen(key), type, v);
}

herd_status herd_gguf_set_u32(gguf_writer *w, const char *key, uint32_t v)
{
    return herd_gguf_set_scalar(w, key, GGUF_TYPE_UINT32, &v);
}
herd_status herd_gguf_set_i32(gguf_writer *w, const char *key, int32_t v)
{
    return herd_gguf_set_scalar(w, key, GGUF_TYPE_INT32, &v);
}
herd_status herd_gguf_set_u64(gguf_writer *w, const char *key, uint64_t v)
{
    return herd_gguf_set_scalar(w, key, GGUF_TYPE_UINT64, &v);
}
herd_status herd_gguf_set_f32(gguf_writer *w, const char *key, float v)
{
    return herd_gguf_set_scalar(w, key, GGUF_TYPE_FLOAT32, &v);
}
herd_status herd_gguf_set_bool(gguf_writer *w, const char *key, bool v)
{
    return herd_gguf_set_scalar(w, key, GGUF_TYPE_BOOL, &v);
}

herd_status herd_gguf_set_str(gguf_writer *w, const char *key, const char *v)
{
    herd_status st = check_args(w, key);
    if (!st && !v) st = herd_seterr(HERD_E_INVALID, "gguf writer: NULL string for '%s'", key);
    if (st) return st;
    bytes b = {0};
    put_le(&b, GGUF_TYPE_STRING, 4);
    put_str(&b, v, strlen(v));
    return set_kv(w, key, strlen(key), &b);
}

static size_t elem_size(gguf_type t)
{
    static const uint8_t size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return (unsigned)t < GGUF_TYPE_COUNT ? size[t] : 0;
}

herd_status herd_gguf_set_arr(gguf_writer *w, const char *key, gguf_type elem, const void *data,
                              uint64_t n)
{
    herd_status st = check_args(w, key);
    if (st) return st;
    uint64_t nbytes;
    if (!elem_size(elem))
        return herd_seterr(HERD_E_INVALID, "gguf writer: '%s': %s is not a fixed-size element type",
                           key, herd_gguf_type_name(elem));
    if (!herd_mul_ok(n, elem_size(elem), &nbytes) || nbytes > SIZE_MAX || (!data && n))
        return herd_seterr(HERD_E_INVALID, "gguf writer: '%s': bad array data", key);
    bytes b = {0};
    put_le(&b, GGUF_TYPE_ARRAY, 4);
    put_le(&b, elem, 4);
    put_le(&b, n, 8);
    put(&b, data, (size_t)nbytes);
    return set_kv(w, key, strlen(key), &b);
}

herd_status herd_gguf_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                  uint64_t n)
{
    herd_status st = check_args(w, key);
    if (st) return st;
    if (!strs && n) return herd_seterr(HERD_E_INVALID, "gguf writer: '%s': NULL strings", key);
    bytes b = {0};
    put_le(&b, GGUF_TYPE_ARRAY, 4);
    put_le(&b, GGUF_TYPE_STRING, 4);
    put_le(&b, n, 8);
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            free(b.p);
            return herd_seterr(HERD_E_INVALID, "gguf writer: '%s': string %llu is NULL", key,
                               (unsigned long long)i);
        }
        put_str(&b, strs[i], strlen(strs[i]));
    }
    return set_kv(w, key, strlen(key), &b);
}

/* A scalar from a parsed kv, narrowed back to its stored C type. */
static herd_status copy_scalar(gguf_writer *w, const gguf_kv *kv)
{
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        float f32;
        double f64;
        bool b;
    } c;
    bool sgn = kv->type == GGUF_TYPE_INT8 || kv->type == GGUF_TYPE_INT16 ||
               kv->type == GGUF_TYPE_INT32 || kv->type == GGUF_TYPE_INT64;
    uint64_t u = sgn ? (uint64_t)kv->v.i64 : kv->v.u64;
    switch (elem_size(kv->type)) {
    case 1:
        c.u8 = (uint8_t)u;
        break;
    case 2:
        c.u16 = (uint16_t)u;
        break;
    case 4:
        c.u32 = (uint32_t)u;
        break;
    default:
        c.u64 = u;
        break;
    }
    if (kv->type == GGUF_TYPE_BOOL) c.b = u != 0;
    if (kv->type == GGUF_TYPE_FLOAT32) c.f32 = (float)kv->v.f64;
    if (kv->type == GGUF_TYPE_FLOAT64) c.f64 = kv->v.f64;
    return set_scalar_n(w, kv->key.ptr, (size_t)kv->key.len, kv->type, &c);
}

herd_status herd_gguf_copy_kv(gguf_writer *w, const gguf_kv *kv)
{
    if (!w || !kv) return herd_seterr(HERD_E_INVALID, "gguf writer: NULL argument");
    bytes b = {0};
    switch (kv->type) {
    case GGUF_TYPE_STRING:
        put_le(&b, GGUF_TYPE_STRING, 4);
        put_str(&b, kv->v.str.ptr, kv->v.str.len);
        break;
    case GGUF_TYPE_ARRAY:
        /* The element bytes are copied as stored: this covers strings and
         * arrays of arrays as well as fixed-size elements. */
        put_le(&b, GGUF_TYPE_ARRAY, 4);
        put_le(&b, kv->arr_type, 4);
        put_le(&b, kv->arr_n, 8);
        put(&b, kv->arr_data, (size_t)kv->arr_bytes);
        break;
    default:
        return copy_scalar(w, kv);
    }
    return set_kv(w, kv->key.ptr, (size_t)kv->key.len, &b);
}

/* ------------------------------------------------------------- tensors */

/* A tensor's name, type and dims are valid and new; *nbytes is its size. */
static herd_status check_tensor(const gguf_writer *w, const char *name, uint32_t type,
                                uint32_t n_dims, const int64_t *ne, uint64_t *nbytes)
{
    const herd_type_traits *tt = herd_type(type);
    if (strlen(name) >= GGUF_MAX_NAME)
        return herd_seterr(HERD_E_INVALID, "gguf writer: tensor name '%.64s...' is too long", name);
    for (int64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return herd_seterr(HERD_E_INVALID, "gguf writer: duplicate tensor '%s'", name);
    if (!tt)
        return herd_seterr(HERD_E_INVALID, "gguf writer: tensor '%s': unknown type %u", name, type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne)
        return herd_seterr(HERD_E_INVALID, "gguf writer: tensor '%s': bad n_dims %u", name, n_dims);
    uint64_t rows = 1, expect = 0;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] <= 0 || (d > 0 && !herd_mul_ok(rows, (uint64_t)ne[d], &rows)))
            return herd_seterr(HERD_E_INVALID, "gguf writer: tensor '%s': bad dimension %u", name,
                               d);
    /* herd_row_bytes(type, ne[0]) * rows, computed with overflow checks. */
    uint64_t row = 0;
    if (ne[0] % tt->blck_size)
        return herd_seterr(HERD_E_INVALID,
                           "gguf writer: tensor '%s': ne[0] = %lld is not a multiple of the %s "
                           "block size %lld",
                           name, (long long)ne[0], tt->name, (long long)tt->blck_size);
    if (!herd_mul_ok((uint64_t)(ne[0] / tt->blck_size), tt->type_size, &row) ||
        !herd_mul_ok(row, rows, &expect) || expect > SIZE_MAX)
        return herd_seterr(HERD_E_INVALID, "gguf writer: tensor '%s' is too large", name);
    *nbytes = expect;
    return HERD_OK;
}

/* Append a checked tensor; data (nbytes) is copied, or NULL for a tensor
 * described only. */
static herd_status add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                              const int64_t *ne, const void *data, uint64_t nbytes)
{
    uint8_t *copy = data ? malloc((size_t)nbytes) : NULL;
    if ((data && !copy) || !grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t)) {
        free(copy);
        return herd_seterr(HERD_E_NOMEM, "gguf writer: out of memory for tensor '%s'", name);
    }
    if (copy) memcpy(copy, data, (size_t)nbytes);
    wtensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->n_dims = n_dims;
    t->type = type;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = copy;
    t->nbytes = nbytes;
    return HERD_OK;
}

herd_status herd_gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                 const int64_t *ne, const void *data, uint64_t nbytes)
{
    if (!w || !name || !data) return herd_seterr(HERD_E_INVALID, "gguf writer: NULL argument");
    uint64_t expect = 0;
    herd_status st = check_tensor(w, name, type, n_dims, ne, &expect);
    if (!st && expect != nbytes)
        st = herd_seterr(HERD_E_INVALID,
                         "gguf writer: tensor '%s': %llu bytes given, type %s and dims need %llu",
                         name, (unsigned long long)nbytes, herd_type_name(type),
                         (unsigned long long)expect);
    return st ? st : add_tensor(w, name, type, n_dims, ne, data, nbytes);
}

herd_status herd_gguf_add_tensor_info(gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne)
{
    if (!w || !name) return herd_seterr(HERD_E_INVALID, "gguf writer: NULL argument");
    uint64_t nbytes = 0;
    herd_status st = check_tensor(w, name, type, n_dims, ne, &nbytes);
    return st ? st : add_tensor(w, name, type, n_dims, ne, NULL, nbytes);
}

/* ---------------------------------------------------------- serialize */

/* Where serialized bytes go: counted only, into buf, or to fp. */
typedef struct sink {
    uint8_t *buf;
    FILE *fp;
    uint64_t pos;
    bool err;
} sink;

static void emit(sink *s, const void *p, size_t n)
{
    if (n == 0) return;
    if (s->buf)
        memcpy(s->buf + s->pos, p, n);
    else if (s->fp && !s->err && fwrite(p, 1, n, s->fp) != n)
        s->err = true;
    s->pos += n;
}

static void emit_le(sink *s, uint64_t v, int n)
{
    uint8_t le[8];
    for (int i = 0; i < n; i++) le[i] = (uint8_t)(v >> 8 * i);
    emit(s, le, (size_t)n);
}

static void emit_pad(sink *s, uint64_t align)
{
    static const uint8_t zeros[256];
    uint64_t n = (align - s->pos % align) % align;
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        emit(s, zeros, k);
        n -= k;
    }
}

static uint64_t pad_to(uint64_t n, uint64_t align)
{
    return (n + align - 1) / align * align;
}

/* Everything before the tensor data: header, metadata, tensor list, padding. */
static void serialize_head(const gguf_writer *w, sink *s)
{
    emit(s, "GGUF", 4);
    emit_le(s, w->version, 4);
    emit_le(s, (uint64_t)w->n_t, 8);
    emit_le(s, (uint64_t)w->n_kv, 8);
    for (int64_t i = 0; i < w->n_kv; i++) {
        emit_le(s, w->kv[i].key_len, 8);
        emit(s, w->kv[i].key, w->kv[i].key_len);
        emit(s, w->kv[i].val, w->kv[i].val_len);
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        emit_le(s, strlen(t->name), 8);
        emit(s, t->name, strlen(t->name));
        emit_le(s, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) emit_le(s, (uint64_t)t->ne[d], 8);
        emit_le(s, t->type, 4);
        emit_le(s, off, 8);
        off += pad_to(t->nbytes, w->alignment);
    }
    /* A file without tensors ends here: padding to a large alignment would
     * only add zeros. */
    if (w->n_t) emit_pad(s, w->alignment);
}

/* One tensor's data, then (like ggml, after every tensor, the last included)
 * the padding to the alignment. The head ended aligned, so the sink's
 * position gives the padding. */
static void serialize_data(const gguf_writer *w, sink *s, const void *data, uint64_t nbytes)
{
    emit(s, data, (size_t)nbytes);
    emit_pad(s, w->alignment);
}

static void serialize(const gguf_writer *w, sink *s)
{
    serialize_head(w, s);
    for (int64_t i = 0; i < w->n_t; i++) serialize_data(w, s, w->t[i].data, w->t[i].nbytes);
}

static herd_status check_data(const gguf_writer *w)
{
    for (int64_t i = 0; i < w->n_t; i++)
        if (!w->t[i].data)
            return herd_seterr(HERD_E_INVALID,
                               "gguf writer: tensor '%s' has no data (write it with herd_gguf_out)",
                               w->t[i].name);
    return HERD_OK;
}

herd_status herd_gguf_write_mem(const gguf_writer *w, uint8_t **buf, size_t *len)
{
    if (!w || !buf || !len) return herd_seterr(HERD_E_INVALID, "gguf writer: NULL argument");
    *buf = NULL;
    *len = 0;
    herd_status st = check_data(w);
    if (st) return st;
    sink count = {0};
    serialize(w, &count);
    if (count.pos > SIZE_MAX) return herd_seterr(HERD_E_NOMEM, "gguf writer: file too large");
    sink s = {.buf = malloc((size_t)count.pos)};
    if (!s.buf)
        return herd_seterr(HERD_E_NOMEM, "gguf writer: out of memory for %llu bytes",
                           (unsigned long long)count.pos);
    serialize(w, &s);
    *buf = s.buf;
    *len = (size_t)s.pos;
    return HERD_OK;
}

/* ------------------------------------------------------ file output */

struct herd_gguf_out {
    herd_out out;
    const gguf_writer *w;
    sink s;
    int64_t next; /* the tensor whose data comes next */
};

herd_status herd_gguf_out_begin(herd_gguf_out **out, const gguf_writer *w, const char *path,
                                const char *input)
{
    *out = NULL;
    if (!w || !path) return herd_seterr(HERD_E_INVALID, "gguf writer: NULL argument");
    herd_gguf_out *o = herd_calloc(1, sizeof *o);
    if (!o) return HERD_E_NOMEM;
    herd_status st = herd_out_open(&o->out, path, input);
    if (st) {
        free(o);
        return st;
    }
    o->w = w;
    o->s.fp = o->out.fp;
    serialize_head(w, &o->s);
    *out = o;
    return HERD_OK;
}

herd_status herd_gguf_out_write(herd_gguf_out *o, const void *data, size_t nbytes)
{
    const gguf_writer *w = o->w;
    if (o->next >= w->n_t || nbytes != w->t[o->next].nbytes || (!data && nbytes))
        return herd_seterr(HERD_E_INVALID, "gguf writer: tensor %lld: %zu bytes, expected %llu",
                           (long long)o->next, nbytes,
                           o->next < w->n_t ? (unsigned long long)w->t[o->next].nbytes : 0ull);
    serialize_data(w, &o->s, data, nbytes);
    o->next++;
    return o->s.err ? herd_seterr(HERD_E_IO, "%s: write failed: %s", o->out.path, strerror(errno))
                    : HERD_OK;
}

herd_status herd_gguf_out_end(herd_gguf_out *o, herd_status st)
{
    if (!o) return st;
    if (!st && o->next != o->w->n_t)
        st = herd_seterr(HERD_E_INVALID, "gguf writer: %lld of %lld tensors written",
                         (long long)o->next, (long long)o->w->n_t);
    if (!st && o->s.err)
        st = herd_seterr(HERD_E_IO, "%s: write failed: %s", o->out.path, strerror(errno));
    if (st)
        herd_out_abort(&o->out); /* the temporary file goes; the output is untouched */
    else
        st = herd_out_commit(&o->out);
    free(o);
    return st;
}

herd_status herd_gguf_write_file(const gguf_writer *w, const char *path)
{
    herd_status st = w ? check_data(w) : HERD_OK;
    herd_gguf_out *o = NULL;
    if (!st) st = herd_gguf_out_begin(&o, w, path, NULL);
    for (int64_t i = 0; !st && i < w->n_t; i++)
        st = herd_gguf_out_write(o, w->t[i].data, (size_t)w->t[i].nbytes);
    return herd_gguf_out_end(o, st);
}
