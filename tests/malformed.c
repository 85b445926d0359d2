/*
 * malformed.c — see malformed.h.
 *
 * Most cases patch the base file in place: the patchers find a field by the
 * unique key or tensor name in front of it (a name is followed by its value
 * type, or by n_dims, dims, type and offset), so they do not depend on the
 * exact layout the writer chose. The rest (nesting, long names) are built
 * byte by byte.
 */
#define _GNU_SOURCE
#include "malformed.h"

#include "gguf/gguf.h"
#include "tensor/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable byte buffer holding the file being built. */
typedef struct raw {
    uint8_t *p;
    size_t len, cap;
} raw;

static void r_put(raw *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n) cap *= 2;
        uint8_t *q = realloc(r->p, cap);
        if (!q) abort(); /* a test helper: out of memory is fatal */
        r->p = q;
        r->cap = cap;
    }
    if (n) memcpy(r->p + r->len, p, n);
    r->len += n;
}

static void le_store(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> 8 * i);
}

static void r_u32(raw *r, uint32_t v)
{
    uint8_t b[4];
    le_store(b, v, 4);
    r_put(r, b, 4);
}

static void r_u64(raw *r, uint64_t v)
{
    uint8_t b[8];
    le_store(b, v, 8);
    r_put(r, b, 8);
}

static void r_str(raw *r, const char *s, size_t n)
{
    r_u64(r, n);
    r_put(r, s, n);
}

static void r_header(raw *r, uint64_t n_tensors, uint64_t n_kv)
{
    r->len = 0;
    r_put(r, "GGUF", 4);
    r_u32(r, 3);
    r_u64(r, n_tensors);
    r_u64(r, n_kv);
}

/* ---------------------------------------------------------------- base */

static bool build_base(raw *r)
{
    static const uint32_t arr[] = {1, 2, 3};
    static const char *const strs[] = {"ab", "cde"};
    static const float f[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t q8[34] = {0x00, 0x3c}; /* one Q8_0 block: scale 1.0, zeros */
    const int64_t ne_first[] = {8, 2}, ne_q8[] = {32}, ne_small[] = {8};
    uint8_t u8a = 1, u8b = 2;
    gguf_writer *w = herd_gguf_writer_new();
    if (!w) return false;
    bool ok = !herd_gguf_set_str(w, "general.architecture", "llama") &&
              !herd_gguf_set_u32(w, "general.alignment", 32) &&
              !herd_gguf_set_u32(w, "test.u32", 7) && !herd_gguf_set_str(w, "test.str", "hello") &&
              !herd_gguf_set_scalar(w, "test.dup_a", GGUF_TYPE_UINT8, &u8a) &&
              !herd_gguf_set_scalar(w, "test.dup_b", GGUF_TYPE_UINT8, &u8b) &&
              !herd_gguf_set_arr(w, "test.arr", GGUF_TYPE_UINT32, arr, 3) &&
              !herd_gguf_set_arr_str(w, "test.sarr", strs, 2) &&
              !herd_gguf_add_tensor(w, "t.first", HERD_TYPE_F32, 2, ne_first, f, sizeof f) &&
              !herd_gguf_add_tensor(w, "t.q8", HERD_TYPE_Q8_0, 1, ne_q8, q8, sizeof q8) &&
              !herd_gguf_add_tensor(w, "t.dupa", HERD_TYPE_F32, 1, ne_small, f, 32) &&
              !herd_gguf_add_tensor(w, "t.dupb", HERD_TYPE_F32, 1, ne_small, f + 8, 32);
    uint8_t *buf = NULL;
    size_t len = 0;
    ok = ok && !herd_gguf_write_mem(w, &buf, &len);
    herd_gguf_writer_free(w);
    if (!ok) return false;
    r->len = 0;
    r_put(r, buf, len);
    free(buf);
    return true;
}

/* Offset of the one occurrence of s in the file (the builder's own names are
 * unique; anything else is a bug in this file). */
static size_t at(const raw *r, const char *s)
{
    size_t n = strlen(s);
    const uint8_t *p = memmem(r->p, r->len, s, n);
    if (!p || memmem(p + 1, r->len - (size_t)(p + 1 - r->p), s, n)) {
        fprintf(stderr, "malformed.c: '%s' not found exactly once\n", s);
        abort();
    }
    return (size_t)(p - r->p);
}

/* Fields after a key: its value type, then the value. */
static size_t key_type(const raw *r, const char *key)
{
    return at(r, key) + strlen(key);
}
static size_t key_val(const raw *r, const char *key)
{
    return key_type(r, key) + 4;
}

/* Fields after a tensor name: n_dims, ne[n_dims], type, offset. */
static size_t t_ndims(const raw *r, const char *name)
{
    return at(r, name) + strlen(name);
}
static size_t t_ne(const raw *r, const char *name, int d)
{
    return t_ndims(r, name) + 4 + 8 * d;
}
static uint32_t get32(const raw *r, size_t off)
{
    return (uint32_t)r->p[off] | (uint32_t)r->p[off + 1] << 8 | (uint32_t)r->p[off + 2] << 16 |
           (uint32_t)r->p[off + 3] << 24;
}
static size_t t_type(const raw *r, const char *name)
{
    return t_ne(r, name, (int)get32(r, t_ndims(r, name)));
}
static size_t t_off(const raw *r, const char *name)
{
    return t_type(r, name) + 4;
}

static void set32(raw *r, size_t off, uint32_t v)
{
    le_store(r->p + off, v, 4);
}
static void set64(raw *r, size_t off, uint64_t v)
{
    le_store(r->p + off, v, 8);
}
static uint64_t get64(const raw *r, size_t off)
{
    return get32(r, off) | (uint64_t)get32(r, off + 4) << 32;
}

/* --------------------------------------------------------------- cases */

static void c_empty(raw *r)
{
    r->len = 0;
}
static void c_trunc_magic(raw *r)
{
    r->len = 3;
}
static void c_magic(raw *r)
{
    r->p[0] = 'X';
}
static void c_ggml_magic(raw *r)
{
    memcpy(r->p, "GGML", 4);
}
static void c_v1(raw *r)
{
    set32(r, 4, 1);
}
static void c_v4(raw *r)
{
    set32(r, 4, 4);
}
static void c_v0(raw *r)
{
    set32(r, 4, 0);
}
static void c_big_endian(raw *r)
{
    set32(r, 4, 0x03000000);
}
static void c_trunc_header(raw *r)
{
    r->len = 20;
}
static void c_huge_nkv(raw *r)
{
    set64(r, 16, 1ULL << 60);
}
static void c_max_nkv(raw *r)
{
    set64(r, 16, UINT64_MAX);
}
static void c_huge_ntensors(raw *r)
{
    set64(r, 8, 1ULL << 62);
}
static void c_key_len(raw *r)
{
    set64(r, at(r, "test.u32") - 8, 1ULL << 40);
}
static void c_str_len(raw *r)
{
    set64(r, key_val(r, "test.str"), r->len * 2);
}
static void c_str_len_max(raw *r)
{
    set64(r, key_val(r, "test.str"), UINT64_MAX);
}
static void c_arr_huge(raw *r)
{
    set64(r, key_val(r, "test.arr") + 4, 1ULL << 62);
}
static void c_arr_past(raw *r)
{
    set64(r, key_val(r, "test.arr") + 4, 1ULL << 30);
}
static void c_sarr_huge(raw *r)
{
    set64(r, key_val(r, "test.sarr") + 4, 1ULL << 61);
}
static void c_sarr_elem(raw *r)
{
    set64(r, key_val(r, "test.sarr") + 12, 1ULL << 40);
}
static void c_vtype(raw *r)
{
    set32(r, key_type(r, "test.u32"), GGUF_TYPE_COUNT);
}
static void c_vtype_max(raw *r)
{
    set32(r, key_type(r, "test.u32"), UINT32_MAX);
}
static void c_elem_type(raw *r)
{
    set32(r, key_val(r, "test.arr"), 99);
}
static void c_ttype_gap(raw *r)
{
    set32(r, t_type(r, "t.first"), 4); /* Q4_2, removed */
}
static void c_ttype_big(raw *r)
{
    set32(r, t_type(r, "t.first"), 1000);
}
static void c_ndims0(raw *r)
{
    set32(r, t_ndims(r, "t.first"), 0);
}
static void c_ndims5(raw *r)
{
    set32(r, t_ndims(r, "t.first"), 5);
}
static void c_dim0(raw *r)
{
    set64(r, t_ne(r, "t.first", 1), 0);
}
static void c_dim_neg(raw *r)
{
    set64(r, t_ne(r, "t.first", 0), 1ULL << 63);
}
static void c_dim_overflow(raw *r)
{
    set64(r, t_ne(r, "t.first", 0), 1ULL << 32);
    set64(r, t_ne(r, "t.first", 1), 1ULL << 32);
}
static void c_count_over_i64(raw *r)
{
    set64(r, t_ne(r, "t.first", 0), 1ULL << 40);
    set64(r, t_ne(r, "t.first", 1), 1ULL << 23);
}
static void c_bytes_overflow(raw *r)
{
    set64(r, t_ne(r, "t.first", 0), 1ULL << 31);
    set64(r, t_ne(r, "t.first", 1), 1ULL << 31);
}
static void c_block(raw *r)
{
    set64(r, t_ne(r, "t.q8", 0), 16);
}
static void c_data_past(raw *r)
{
    set64(r, t_ne(r, "t.first", 1), 1000);
}
static void c_off_past(raw *r)
{
    set64(r, t_off(r, "t.dupb"), 1ULL << 40);
}
static void c_off_overflow(raw *r)
{
    set64(r, t_off(r, "t.dupb"), UINT64_MAX - 31);
}
static void c_misaligned(raw *r)
{
    set64(r, t_off(r, "t.q8"), get64(r, t_off(r, "t.q8")) + 4);
}
static void c_overlap(raw *r)
{
    set64(r, t_off(r, "t.q8"), get64(r, t_off(r, "t.first")));
}
static void c_overlap_part(raw *r)
{
    /* t.q8 is 34 bytes: a tensor 32 bytes after its start overlaps by 2. */
    set64(r, t_off(r, "t.dupa"), get64(r, t_off(r, "t.q8")) + 32);
}
static void c_dup_tensor(raw *r)
{
    memcpy(r->p + at(r, "t.dupb"), "t.dupa", 6);
}
static void c_dup_key(raw *r)
{
    memcpy(r->p + at(r, "test.dup_b"), "test.dup_a", 10);
}
static void c_align0(raw *r)
{
    set32(r, key_val(r, "general.alignment"), 0);
}
static void c_align48(raw *r)
{
    set32(r, key_val(r, "general.alignment"), 48);
}
static void c_align_type(raw *r)
{
    set32(r, key_type(r, "general.alignment"), GGUF_TYPE_INT32);
}
static void c_name_nul(raw *r)
{
    r->p[at(r, "t.first") + 1] = 0;
}
static void c_trunc_data(raw *r)
{
    r->len -= 1;
}
static void c_trunc_infos(raw *r)
{
    r->len = t_ndims(r, "t.q8") + 2;
}
static void c_trunc_kv(raw *r)
{
    r->len = key_val(r, "test.sarr") + 14;
}

static void c_long_name(raw *r)
{
    char name[GGUF_MAX_NAME];
    memset(name, 'a', sizeof name);
    r_header(r, 1, 0);
    r_str(r, name, sizeof name); /* 64 bytes: one too many */
    r_u32(r, 1);
    r_u64(r, 8);
    r_u32(r, HERD_TYPE_F32);
    r_u64(r, 0);
    while (r->len % 32) r_put(r, "", 1);
    for (int i = 0; i < 32; i++) r_put(r, "", 1);
}

/* An array holding `levels` nested arrays; the innermost holds 3 UINT8. */
static void nested(raw *r, int levels)
{
    r_header(r, 0, 1);
    r_str(r, "test.nest", 9);
    r_u32(r, GGUF_TYPE_ARRAY);
    for (int i = 1; i < levels; i++) {
        r_u32(r, GGUF_TYPE_ARRAY);
        r_u64(r, 1);
    }
    r_u32(r, GGUF_TYPE_UINT8);
    r_u64(r, 3);
    r_put(r, "\1\2\3", 3);
}

static void c_nest_deep(raw *r)
{
    nested(r, 1000);
}
static void c_nest_count(raw *r)
{
    nested(r, 3);
    set64(r, 4 + 4 + 16 + 8 + 9 + 4 + 4, 1ULL << 40); /* the outer array's count */
}
static void c_nest_inner(raw *r)
{
    nested(r, 3);
    set64(r, r->len - 3 - 8, 1ULL << 40); /* the innermost array's count */
}

typedef struct mcase {
    const char *what;
    void (*fn)(raw *r);
} mcase;

static const mcase cases[] = {
    {"empty file", c_empty},
    {"truncated magic", c_trunc_magic},
    {"bad magic", c_magic},
    {"GGML magic", c_ggml_magic},
    {"version 1", c_v1},
    {"version 4", c_v4},
    {"version 0", c_v0},
    {"big-endian version", c_big_endian},
    {"truncated header", c_trunc_header},
    {"huge n_kv", c_huge_nkv},
    {"n_kv 2^64-1", c_max_nkv},
    {"huge n_tensors", c_huge_ntensors},
    {"key length past end", c_key_len},
    {"string length past end", c_str_len},
    {"string length 2^64-1", c_str_len_max},
    {"huge array count (size overflows)", c_arr_huge},
    {"array count past end", c_arr_past},
    {"huge string array count", c_sarr_huge},
    {"string array element past end", c_sarr_elem},
    {"unknown value type", c_vtype},
    {"value type 0xffffffff", c_vtype_max},
    {"unknown array element type", c_elem_type},
    {"unknown tensor type id (gap)", c_ttype_gap},
    {"unknown tensor type id 1000", c_ttype_big},
    {"n_dims 0", c_ndims0},
    {"n_dims 5", c_ndims5},
    {"zero dimension", c_dim0},
    {"dimension above INT64_MAX", c_dim_neg},
    {"dimension product overflows", c_dim_overflow},
    {"element count above INT64_MAX", c_count_over_i64},
    {"data size overflows", c_bytes_overflow},
    {"row not a multiple of the block size", c_block},
    {"tensor data past end", c_data_past},
    {"tensor offset past end", c_off_past},
    {"tensor offset + size overflows", c_off_overflow},
    {"misaligned tensor offset", c_misaligned},
    {"tensors at the same offset", c_overlap},
    {"tensors partly overlapping", c_overlap_part},
    {"duplicate tensor names", c_dup_tensor},
    {"duplicate keys", c_dup_key},
    {"alignment 0", c_align0},
    {"alignment not a power of two", c_align48},
    {"alignment of type INT32", c_align_type},
    {"tensor name with a NUL byte", c_name_nul},
    {"tensor name of 64 bytes", c_long_name},
    {"truncated tensor data", c_trunc_data},
    {"truncated tensor infos", c_trunc_infos},
    {"truncated metadata", c_trunc_kv},
    {"arrays nested 1000 deep", c_nest_deep},
    {"nested array count past end", c_nest_count},
    {"innermost nested array past end", c_nest_inner},
};

int malformed_count(void)
{
    return (int)(sizeof cases / sizeof cases[0]);
}

/* Hand back exactly len bytes, so that a sanitizer sees any over-read. */
static bool finish(raw *r, uint8_t **buf, size_t *len)
{
    *buf = malloc(r->len ? r->len : 1);
    if (*buf && r->len) memcpy(*buf, r->p, r->len);
    *len = r->len;
    free(r->p);
    return *buf != NULL;
}

bool malformed_build(int i, uint8_t **buf, size_t *len, const char **what)
{
    raw r = {0};
    *buf = NULL;
    *len = 0;
    if (i < 0 || i >= malformed_count()) return false;
    if (what) *what = cases[i].what;
    if (!build_base(&r)) {
        free(r.p);
        return false;
    }
    cases[i].fn(&r);
    return finish(&r, buf, len);
}

bool malformed_base(uint8_t **buf, size_t *len)
{
    raw r = {0};
    if (!build_base(&r)) {
        free(r.p);
        return false;
    }
    return finish(&r, buf, len);
}

bool malformed_nested(int levels, uint8_t **buf, size_t *len)
{
    raw r = {0};
    nested(&r, levels);
    return finish(&r, buf, len);
}
