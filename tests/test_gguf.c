/*
 * test_gguf.c — the GGUF reader and writer.
 *
 *   round trip   every value type, arrays of every element type, string
 *                arrays, tensors F32/F16/Q8_0/Q4_0 in 1-4 dims; read back from
 *                memory and from disk; copied kv by kv into a second writer,
 *                which must reproduce the file byte for byte
 *   writer       argument checks (sizes, names, types, alignment)
 *   real files   every .gguf file in ../shared/models/tiny and ../shared/vocab
 *   malformed    every case of malformed.c, from memory and from disk; every
 *                truncation of two valid files; seeded random mutations
 *
 * Set HERD_TEST_VERBOSE=1 to see the message each malformed file gives.
 */
#define _GNU_SOURCE
#include "helpers.h"
#include "malformed.h"

#include "gguf/gguf.h"
#include "tensor/tensor.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool verbose;

static bool streq(gguf_str s, const char *z)
{
    return s.len == strlen(z) && (s.len == 0 || memcmp(s.ptr, z, s.len) == 0);
}

/* Touch every byte the file hands out, so that ASan sees any pointer that
 * escaped the buffer. Returns a checksum to keep the reads alive. */
static unsigned walk(const gguf_file *f)
{
    unsigned h = 0;
    for (int64_t i = 0; i < herd_gguf_n_kv(f); i++) {
        const gguf_kv *kv = herd_gguf_kv_at(f, i);
        for (uint64_t j = 0; j < kv->key.len; j++) h += (uint8_t)kv->key.ptr[j];
        if (kv->type == GGUF_TYPE_STRING)
            for (uint64_t j = 0; j < kv->v.str.len; j++) h += (uint8_t)kv->v.str.ptr[j];
        if (kv->type != GGUF_TYPE_ARRAY) continue;
        for (uint64_t j = 0; j < kv->arr_bytes; j++) h += kv->arr_data[j];
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            gguf_str s = herd_gguf_arr_str(kv, j);
            for (uint64_t k = 0; k < s.len; k++) h += (uint8_t)s.ptr[k];
            h += (unsigned)herd_gguf_arr_i64(kv, j) + (unsigned)(herd_gguf_arr_f64(kv, j) != 0);
        }
    }
    for (int64_t i = 0; i < herd_gguf_n_tensors(f); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, i);
        const uint8_t *d = t->data;
        h += d[0] + d[t->nbytes - 1] + (unsigned)strlen(t->name_z);
    }
    return h;
}

/* ------------------------------------------------------------ round trip */

typedef struct tspec {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
} tspec;

static const tspec tspecs[] = {
    {"tok.f32", HERD_TYPE_F32, 2, {16, 3, 1, 1}}, {"w.f16", HERD_TYPE_F16, 2, {32, 2, 1, 1}},
    {"w.q8_0", HERD_TYPE_Q8_0, 2, {64, 2, 1, 1}}, {"w.q4_0", HERD_TYPE_Q4_0, 3, {32, 3, 2, 1}},
    {"odd.f32", HERD_TYPE_F32, 1, {5, 1, 1, 1}},  {"w.4d", HERD_TYPE_F32, 4, {2, 3, 4, 5}},
};
#define N_TSPECS (int)(sizeof tspecs / sizeof tspecs[0])

static uint64_t tspec_bytes(const tspec *s)
{
    return herd_row_bytes(s->type, s->ne[0]) * (uint64_t)(s->ne[1] * s->ne[2] * s->ne[3]);
}

static uint8_t *tspec_data(int i)
{
    uint64_t n = tspec_bytes(&tspecs[i]);
    uint8_t *p = malloc(n);
    for (uint64_t j = 0; j < n; j++) p[j] = (uint8_t)(i * 131 + j * 7 + (j >> 8));
    return p;
}

/* Scalars of every type, set with herd_gguf_set_scalar. */
static const uint8_t v_u8 = 200;
static const int8_t v_i8 = -100;
static const uint16_t v_u16 = 60000;
static const int16_t v_i16 = -30000;
static const uint32_t v_u32 = 4000000000u;
static const int32_t v_i32 = -2000000000;
static const float v_f32 = 1.5f;
static const bool v_bool = true;
static const uint64_t v_u64 = (1ULL << 40) + 3;
static const int64_t v_i64 = -(1LL << 40);
static const double v_f64 = 3.25;

/* Arrays of every fixed-size element type. */
static const uint8_t a_u8[] = {0, 1, 255};
static const int8_t a_i8[] = {-128, 0, 127};
static const uint16_t a_u16[] = {0, 65535, 7};
static const int16_t a_i16[] = {-32768, 32767, -1};
static const uint32_t a_u32[] = {0, UINT32_MAX, 42};
static const int32_t a_i32[] = {INT32_MIN, INT32_MAX, -7};
static const float a_f32[] = {-1.5f, 0, 1e30f};
static const uint8_t a_bool[] = {1, 0, 1};
static const uint64_t a_u64[] = {0, UINT64_MAX, 1ULL << 50};
static const int64_t a_i64[] = {INT64_MIN, INT64_MAX, -3};
static const double a_f64[] = {-2.5, 1e300, 0};

typedef struct aspec {
    const char *key;
    gguf_type type;
    const void *data;
    int64_t i[3]; /* expected through herd_gguf_arr_i64 */
    double f[3];  /* expected through herd_gguf_arr_f64 */
} aspec;

static const aspec aspecs[] = {
    {"a.u8", GGUF_TYPE_UINT8, a_u8, {0, 1, 255}, {0, 1, 255}},
    {"a.i8", GGUF_TYPE_INT8, a_i8, {-128, 0, 127}, {-128, 0, 127}},
    {"a.u16", GGUF_TYPE_UINT16, a_u16, {0, 65535, 7}, {0, 65535, 7}},
    {"a.i16", GGUF_TYPE_INT16, a_i16, {-32768, 32767, -1}, {-32768, 32767, -1}},
    {"a.u32", GGUF_TYPE_UINT32, a_u32, {0, UINT32_MAX, 42}, {0, UINT32_MAX, 42}},
    {"a.i32", GGUF_TYPE_INT32, a_i32, {INT32_MIN, INT32_MAX, -7}, {INT32_MIN, INT32_MAX, -7}},
    {"a.f32", GGUF_TYPE_FLOAT32, a_f32, {0, 0, 0}, {-1.5, 0, (double)1e30f}},
    {"a.bool", GGUF_TYPE_BOOL, a_bool, {1, 0, 1}, {1, 0, 1}},
    {"a.u64", GGUF_TYPE_UINT64, a_u64, {0, -1, 1LL << 50}, {0, (double)UINT64_MAX, 0x1p50}},
    {"a.i64", GGUF_TYPE_INT64, a_i64, {INT64_MIN, INT64_MAX, -3}, {-0x1p63, 0x1p63, -3}},
    {"a.f64", GGUF_TYPE_FLOAT64, a_f64, {0, 0, 0}, {-2.5, 1e300, 0}},
};
#define N_ASPECS (int)(sizeof aspecs / sizeof aspecs[0])

static const char *const strs[] = {"a", "", "hello world", "\xc3\xbcn\xc3\xaf"};

/* Keys in the order the writer gets them (s.replace is set twice). */
static const char *const key_order[] = {
    "general.architecture",
    "s.replace",
    "general.alignment",
    "s.u8",
    "s.i8",
    "s.u16",
    "s.i16",
    "s.u32",
    "s.i32",
    "s.f32",
    "s.bool",
    "s.u64",
    "s.i64",
    "s.f64",
    "s.u32b",
    "s.i32b",
    "s.u64max",
    "s.f32b",
    "s.false",
    "s.str",
    "s.empty",
    "a.u8",
    "a.i8",
    "a.u16",
    "a.i16",
    "a.u32",
    "a.i32",
    "a.f32",
    "a.bool",
    "a.u64",
    "a.i64",
    "a.f64",
    "a.strs",
    "a.nostrs",
    "a.none",
};
#define N_KEYS (int)(sizeof key_order / sizeof key_order[0])

static gguf_writer *make_writer(uint8_t **tdata)
{
    gguf_writer *w = herd_gguf_writer_new();
    herd_status st = herd_gguf_set_str(w, "general.architecture", "test");
    st |= herd_gguf_set_u32(w, "s.replace", 1);
    st |= herd_gguf_set_u32(w, "general.alignment", 64);
    st |= herd_gguf_set_scalar(w, "s.u8", GGUF_TYPE_UINT8, &v_u8);
    st |= herd_gguf_set_scalar(w, "s.i8", GGUF_TYPE_INT8, &v_i8);
    st |= herd_gguf_set_scalar(w, "s.u16", GGUF_TYPE_UINT16, &v_u16);
    st |= herd_gguf_set_scalar(w, "s.i16", GGUF_TYPE_INT16, &v_i16);
    st |= herd_gguf_set_scalar(w, "s.u32", GGUF_TYPE_UINT32, &v_u32);
    st |= herd_gguf_set_scalar(w, "s.i32", GGUF_TYPE_INT32, &v_i32);
    st |= herd_gguf_set_scalar(w, "s.f32", GGUF_TYPE_FLOAT32, &v_f32);
    st |= herd_gguf_set_scalar(w, "s.bool", GGUF_TYPE_BOOL, &v_bool);
    st |= herd_gguf_set_scalar(w, "s.u64", GGUF_TYPE_UINT64, &v_u64);
    st |= herd_gguf_set_scalar(w, "s.i64", GGUF_TYPE_INT64, &v_i64);
    st |= herd_gguf_set_scalar(w, "s.f64", GGUF_TYPE_FLOAT64, &v_f64);
    st |= herd_gguf_set_u32(w, "s.u32b", 123456);
    st |= herd_gguf_set_i32(w, "s.i32b", -5);
    st |= herd_gguf_set_u64(w, "s.u64max", UINT64_MAX);
    st |= herd_gguf_set_f32(w, "s.f32b", -0.25f);
    st |= herd_gguf_set_bool(w, "s.false", false);
    st |= herd_gguf_set_str(w, "s.str", "hello world");
    st |= herd_gguf_set_str(w, "s.empty", "");
    for (int i = 0; i < N_ASPECS; i++)
        st |= herd_gguf_set_arr(w, aspecs[i].key, aspecs[i].type, aspecs[i].data, 3);
    st |= herd_gguf_set_arr_str(w, "a.strs", strs, 4);
    st |= herd_gguf_set_arr_str(w, "a.nostrs", NULL, 0);
    st |= herd_gguf_set_arr(w, "a.none", GGUF_TYPE_UINT32, NULL, 0);
    st |= herd_gguf_set_str(w, "s.replace", "second"); /* replaces, keeps its place */
    for (int i = 0; i < N_TSPECS; i++) {
        const tspec *s = &tspecs[i];
        if (tdata) /* else described only, for herd_gguf_out */
            st |= herd_gguf_add_tensor(w, s->name, s->type, s->n_dims, s->ne, tdata[i],
                                       tspec_bytes(s));
        else
            st |= herd_gguf_add_tensor_info(w, s->name, s->type, s->n_dims, s->ne);
    }
    CHECKF(st == HERD_OK, "building the writer: %s", herd_errmsg());
    return w;
}

static void check_scalars(const gguf_file *f)
{
    uint32_t u32 = 0;
    int64_t i64 = 0;
    float f32 = 0;
    bool b = false;
    char buf[8];
    gguf_str s;
    CHECK(herd_gguf_get_u32(f, "s.u8", &u32) && u32 == 200);
    CHECK(herd_gguf_get_i64(f, "s.i8", &i64) && i64 == -100);
    CHECK(!herd_gguf_get_u32(f, "s.i8", &u32)); /* negative */
    CHECK(herd_gguf_get_u32(f, "s.u16", &u32) && u32 == 60000);
    CHECK(herd_gguf_get_i64(f, "s.i16", &i64) && i64 == -30000);
    CHECK(herd_gguf_get_u32(f, "s.u32", &u32) && u32 == 4000000000u);
    CHECK(herd_gguf_get_i64(f, "s.i32", &i64) && i64 == -2000000000);
    CHECK(herd_gguf_get_f32(f, "s.f32", &f32) && f32 == 1.5f);
    CHECK(!herd_gguf_get_u32(f, "s.f32", &u32));
    CHECK(herd_gguf_get_bool(f, "s.bool", &b) && b);
    CHECK(!herd_gguf_get_u32(f, "s.bool", &u32));
    CHECK(herd_gguf_get_i64(f, "s.u64", &i64) && i64 == (int64_t)v_u64);
    CHECK(!herd_gguf_get_u32(f, "s.u64", &u32)); /* does not fit */
    CHECK(herd_gguf_get_i64(f, "s.i64", &i64) && i64 == v_i64);
    CHECK(herd_gguf_get_f32(f, "s.f64", &f32) && f32 == 3.25f);
    CHECK(herd_gguf_get_u32(f, "s.u32b", &u32) && u32 == 123456);
    CHECK(herd_gguf_get_i64(f, "s.i32b", &i64) && i64 == -5);
    CHECK(!herd_gguf_get_i64(f, "s.u64max", &i64));
    CHECK(herd_gguf_find_kv(f, "s.u64max")->v.u64 == UINT64_MAX);
    CHECK(herd_gguf_get_f32(f, "s.f32b", &f32) && f32 == -0.25f);
    CHECK(herd_gguf_get_bool(f, "s.false", &b) && !b);
    CHECK(herd_gguf_get_str(f, "s.str", &s) && streq(s, "hello world"));
    CHECK(!herd_gguf_get_str(f, "s.u32", &s) && !herd_gguf_get_f32(f, "s.str", &f32));
    CHECK(herd_gguf_get_strz(f, "s.str", buf, 6) && strcmp(buf, "hello") == 0);
    CHECK(herd_gguf_get_strz(f, "s.empty", buf, sizeof buf) && buf[0] == 0);
    CHECK(herd_gguf_get_strz(f, "s.replace", buf, sizeof buf) && strcmp(buf, "second") == 0);
    CHECK(!herd_gguf_get_u32(f, "absent", &u32) && !herd_gguf_find_kv(f, "absent"));
    CHECK(!herd_gguf_find_kv(f, "") && !herd_gguf_find_kv(f, "s.u3") &&
          !herd_gguf_find_kv(f, "s.u32bb"));
}

static void check_arrays(const gguf_file *f)
{
    for (int i = 0; i < N_ASPECS; i++) {
        const aspec *a = &aspecs[i];
        const gguf_kv *kv = herd_gguf_find_kv(f, a->key);
        CHECKF(kv && kv->type == GGUF_TYPE_ARRAY && kv->arr_type == a->type && kv->arr_n == 3, "%s",
               a->key);
        if (!kv) continue;
        for (int j = 0; j < 3; j++) {
            bool is_f = a->type == GGUF_TYPE_FLOAT32 || a->type == GGUF_TYPE_FLOAT64;
            CHECKF(is_f || herd_gguf_arr_i64(kv, (uint64_t)j) == a->i[j], "%s[%d]", a->key, j);
            CHECKF(herd_gguf_arr_f64(kv, (uint64_t)j) == a->f[j], "%s[%d] as f64", a->key, j);
        }
        CHECK(herd_gguf_arr_i64(kv, 3) == 0 && herd_gguf_arr_f64(kv, 99) == 0); /* out of range */
        CHECK(herd_gguf_arr_str(kv, 0).len == 0);                               /* not strings */
    }
    const gguf_kv *kv = herd_gguf_find_kv(f, "a.strs");
    CHECK(kv && kv->arr_type == GGUF_TYPE_STRING && kv->arr_n == 4);
    for (int j = 0; kv && j < 4; j++) CHECK(streq(herd_gguf_arr_str(kv, (uint64_t)j), strs[j]));
    CHECK(kv && herd_gguf_arr_str(kv, 4).len == 0 && herd_gguf_arr_i64(kv, 0) == 0);
    kv = herd_gguf_find_kv(f, "a.nostrs");
    CHECK(kv && kv->arr_type == GGUF_TYPE_STRING && kv->arr_n == 0);
    kv = herd_gguf_find_kv(f, "a.none");
    CHECK(kv && kv->arr_type == GGUF_TYPE_UINT32 && kv->arr_n == 0 && kv->arr_bytes == 0);
}

/* base: the buffer the file was opened from (NULL when mapped). */
static void check_tensors(const gguf_file *f, const uint8_t *base, uint8_t **tdata)
{
    CHECK(herd_gguf_n_tensors(f) == N_TSPECS);
    CHECK(herd_gguf_data_offset(f) % 64 == 0);
    uint64_t prev_end = 0;
    for (int i = 0; i < N_TSPECS; i++) {
        const tspec *s = &tspecs[i];
        const gguf_tensor *t = herd_gguf_find_tensor(f, s->name);
        CHECKF(t && t == herd_gguf_tensor_at(f, i), "%s", s->name);
        if (!t) continue;
        CHECK(strcmp(t->name_z, s->name) == 0 && streq(t->name, s->name));
        CHECK(t->type == s->type && t->n_dims == s->n_dims);
        for (int d = 0; d < GGUF_MAX_DIMS; d++) CHECK(t->ne[d] == s->ne[d]);
        CHECK(t->n_elements == (uint64_t)(s->ne[0] * s->ne[1] * s->ne[2] * s->ne[3]));
        CHECK(t->nbytes == tspec_bytes(s));
        CHECK(t->offset % 64 == 0 && t->offset >= prev_end);
        prev_end = t->offset + t->nbytes;
        if (base)
            CHECK((const uint8_t *)t->data == base + herd_gguf_data_offset(f) + t->offset);
        else
            CHECK((uintptr_t)t->data % 64 == 0); /* the mapping is page-aligned */
        CHECKF(memcmp(t->data, tdata[i], t->nbytes) == 0, "%s data", s->name);
    }
    CHECK(!herd_gguf_find_tensor(f, "absent") && !herd_gguf_find_tensor(f, "w.f1"));
    CHECK(!herd_gguf_tensor_at(f, -1) && !herd_gguf_tensor_at(f, N_TSPECS));
}

static void check_roundtrip(const gguf_file *f, const uint8_t *base, uint8_t **tdata)
{
    CHECK(herd_gguf_version(f) == 3);
    CHECK(herd_gguf_alignment(f) == 64);
    CHECKF(herd_gguf_n_kv(f) == N_KEYS, "%lld keys", (long long)herd_gguf_n_kv(f));
    for (int i = 0; i < N_KEYS && i < herd_gguf_n_kv(f); i++)
        CHECKF(streq(herd_gguf_kv_at(f, i)->key, key_order[i]), "key %d is not %s", i,
               key_order[i]);
    CHECK(!herd_gguf_kv_at(f, -1) && !herd_gguf_kv_at(f, herd_gguf_n_kv(f)));
    check_scalars(f);
    check_arrays(f);
    check_tensors(f, base, tdata);
    walk(f);
}

/* Copy every kv and tensor of f into a new writer: the same bytes must come
 * out. */
static void check_copy(const gguf_file *f, const uint8_t *buf, size_t len)
{
    gguf_writer *w = herd_gguf_writer_new();
    herd_status st = HERD_OK;
    for (int64_t i = 0; i < herd_gguf_n_kv(f); i++)
        st |= herd_gguf_copy_kv(w, herd_gguf_kv_at(f, i));
    for (int64_t i = 0; i < herd_gguf_n_tensors(f); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, i);
        st |= herd_gguf_add_tensor(w, t->name_z, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    uint8_t *out = NULL;
    size_t n = 0;
    st |= herd_gguf_write_mem(w, &out, &n);
    CHECKF(st == HERD_OK, "%s", herd_errmsg());
    CHECKF(n == len && memcmp(out, buf, len) == 0, "copy differs (%zu vs %zu bytes)", n, len);
    free(out);
    herd_gguf_writer_free(w);
}

/* Every prefix shorter than the end of the last tensor's data must fail with a
 * message; longer ones (only padding cut) must open. Each prefix gets its own
 * exactly-sized buffer so that ASan catches any read past it. */
static void check_prefixes(const uint8_t *buf, size_t len, const char *what)
{
    gguf_file *f = NULL;
    uint64_t data_end = 0;
    if (herd_gguf_open_mem(buf, len, &f) != HERD_OK) {
        CHECKF(0, "%s does not open: %s", what, herd_errmsg());
        return;
    }
    for (int64_t i = 0; i < herd_gguf_n_tensors(f); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, i);
        uint64_t end = herd_gguf_data_offset(f) + t->offset + t->nbytes;
        if (end > data_end) data_end = end;
    }
    herd_gguf_close(f);
    int bad = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        herd_clearerr();
        herd_status st = herd_gguf_open_mem(p, n, &f);
        bool want_ok = n >= data_end;
        if (want_ok ? st != HERD_OK : st != HERD_E_FORMAT || !herd_errmsg()[0] || f) {
            if (bad++ < 5)
                CHECKF(0, "%s: prefix %zu/%zu gives %s", what, n, len, herd_status_name(st));
        }
        herd_gguf_close(f);
        free(p);
    }
    CHECKF(bad == 0, "%s: %d prefixes misbehave", what, bad);
}

static void test_roundtrip(void)
{
    uint8_t *tdata[N_TSPECS];
    for (int i = 0; i < N_TSPECS; i++) tdata[i] = tspec_data(i);
    gguf_writer *w = make_writer(tdata);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(herd_gguf_write_mem(w, &buf, &len) == HERD_OK);

    gguf_file *f = NULL;
    herd_status st = herd_gguf_open_mem(buf, len, &f);
    CHECKF(st == HERD_OK, "open_mem: %s", herd_errmsg());
    if (f) {
        check_roundtrip(f, buf, tdata);
        check_copy(f, buf, len);
        herd_gguf_close(f);
    }

    char path[512];
    snprintf(path, sizeof path, "%s/roundtrip.gguf", test_tmpdir());
    CHECK(herd_gguf_write_file(w, path) == HERD_OK);
    size_t flen = 0;
    char *fbuf = test_read_file(path, &flen);
    CHECK(fbuf && flen == len && memcmp(fbuf, buf, len) == 0);
    free(fbuf);
    st = herd_gguf_open(path, &f);
    CHECKF(st == HERD_OK, "open: %s", herd_errmsg());
    if (f) {
        CHECK(herd_gguf_file_size(f) == len);
        check_roundtrip(f, NULL, tdata);
        herd_gguf_close(f);
    }
    check_prefixes(buf, len, "round-trip file");
    free(buf);

    /* Version 2 files are read too. */
    herd_gguf_writer_set_version(w, 2);
    CHECK(herd_gguf_write_mem(w, &buf, &len) == HERD_OK);
    CHECK(herd_gguf_open_mem(buf, len, &f) == HERD_OK && herd_gguf_version(f) == 2);
    herd_gguf_close(f);
    free(buf);
    herd_gguf_writer_free(w);
    for (int i = 0; i < N_TSPECS; i++) free(tdata[i]);
}

/* ------------------------------------------------------------ writer */

/* Files in the test's folder whose name starts with prefix. */
static int count_files(const char *prefix)
{
    DIR *d = opendir(test_tmpdir());
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d) closedir(d);
    return n;
}

static bool file_is(const char *path, const uint8_t *buf, size_t len)
{
    size_t flen = 0;
    char *f = test_read_file(path, &flen);
    bool same = f && flen == len && memcmp(f, buf, len) == 0;
    free(f);
    return same;
}

/* Stream the tensors of tspecs (the first n of them, the last one with
 * `cut` bytes fewer) through herd_gguf_out and end with status st. */
static herd_status stream(const gguf_writer *w, const char *path, const char *input,
                          uint8_t **tdata, int n, size_t cut)
{
    herd_gguf_out *o = NULL;
    herd_status st = herd_gguf_out_begin(&o, w, path, input);
    if (st) return st;
    for (int i = 0; i < n && !st; i++)
        st = herd_gguf_out_write(o, tdata[i], tspec_bytes(&tspecs[i]) - (i == n - 1 ? cut : 0));
    return herd_gguf_out_end(o, st);
}

/* herd_gguf_out: the same bytes as herd_gguf_write_mem, tensor by tensor; an
 * incomplete or refused write leaves the existing output as it was and no
 * temporary file; the output may not be the input, under any name. */
static void test_stream(void)
{
    uint8_t *tdata[N_TSPECS];
    for (int i = 0; i < N_TSPECS; i++) tdata[i] = tspec_data(i);
    gguf_writer *full = make_writer(tdata), *desc = make_writer(NULL);
    uint8_t *buf = NULL, *none = NULL;
    size_t len = 0, nlen = 0;
    CHECK(herd_gguf_write_mem(full, &buf, &len) == HERD_OK);
    CHECK(herd_gguf_write_mem(desc, &none, &nlen) == HERD_E_INVALID && !none); /* no data */

    char path[512], slink[512], hard[512];
    snprintf(path, sizeof path, "%s/stream.gguf", test_tmpdir());
    snprintf(slink, sizeof slink, "%s/stream-symlink.gguf", test_tmpdir());
    snprintf(hard, sizeof hard, "%s/stream-hardlink.gguf", test_tmpdir());
    CHECK(herd_gguf_write_file(desc, path) == HERD_E_INVALID && access(path, F_OK) != 0);
    CHECKF(stream(desc, path, NULL, tdata, N_TSPECS, 0) == HERD_OK, "%s", herd_errmsg());
    CHECK(file_is(path, buf, len));

    /* Failures: too few tensors, a short tensor, a tensor too many, an error
     * status from the caller. The old file stays, nothing else is left. */
    CHECK(stream(desc, path, NULL, tdata, N_TSPECS - 1, 0) == HERD_E_INVALID);
    CHECK(stream(desc, path, NULL, tdata, 2, 1) == HERD_E_INVALID);
    herd_gguf_out *o = NULL;
    CHECK(herd_gguf_out_begin(&o, desc, path, NULL) == HERD_OK);
    for (int i = 0; i < N_TSPECS; i++) herd_gguf_out_write(o, tdata[i], tspec_bytes(&tspecs[i]));
    CHECK(herd_gguf_out_write(o, tdata[0], tspec_bytes(&tspecs[0])) == HERD_E_INVALID);
    CHECK(herd_gguf_out_end(o, HERD_E_IO) == HERD_E_IO);
    CHECK(herd_gguf_out_end(NULL, HERD_E_NOMEM) == HERD_E_NOMEM);
    CHECK(file_is(path, buf, len));
    CHECK(count_files("stream.gguf.tmp") == 0);

    /* The output is the input: refused, by any name, before anything is
     * written. */
    CHECK(symlink(path, slink) == 0 && link(path, hard) == 0);
    CHECK(stream(desc, path, path, tdata, N_TSPECS, 0) == HERD_E_INVALID);
    CHECK(strstr(herd_errmsg(), "input") != NULL);
    CHECK(stream(desc, slink, path, tdata, N_TSPECS, 0) == HERD_E_INVALID);
    CHECK(stream(desc, path, hard, tdata, N_TSPECS, 0) == HERD_E_INVALID);
    CHECK(file_is(path, buf, len));
    CHECK(count_files("stream") == 3);

    /* Through a symlink to another file: the target is replaced, the link
     * stays a link. */
    CHECK(unlink(hard) == 0 && unlink(path) == 0 && test_write_file(path, "old", 3));
    CHECK(stream(desc, slink, NULL, tdata, N_TSPECS, 0) == HERD_OK);
    struct stat sb;
    CHECK(lstat(slink, &sb) == 0 && S_ISLNK(sb.st_mode) && file_is(path, buf, len));

    /* An output that is not a regular file (a FIFO here, /dev/null for a
     * user) is written in place: a rename would replace it with a plain file
     * (as it once replaced /dev/null). */
    char fifo[512], copy[512], cmd[1200];
    snprintf(fifo, sizeof fifo, "%s/stream.fifo", test_tmpdir());
    snprintf(copy, sizeof copy, "%s/stream.copy", test_tmpdir());
    snprintf(cmd, sizeof cmd, "timeout 20 cat %s > %s", fifo, copy);
    CHECK(mkfifo(fifo, 0600) == 0);
    FILE *reader = popen(cmd, "r");
    CHECK(reader != NULL);
    if (reader) {
        CHECKF(stream(desc, fifo, NULL, tdata, N_TSPECS, 0) == HERD_OK, "%s", herd_errmsg());
        pclose(reader);
        CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode) && file_is(copy, buf, len));
    }
    free(buf);
    herd_gguf_writer_free(full);
    herd_gguf_writer_free(desc);
    for (int i = 0; i < N_TSPECS; i++) free(tdata[i]);
}

static void test_writer_checks(void)
{
    gguf_writer *w = herd_gguf_writer_new();
    float d[64] = {0};
    int64_t ne[4] = {8, 2, 1, 1}, ne_q[1] = {16}, ne0[2] = {8, 0};
    char name[80];
    CHECK(herd_gguf_add_tensor(w, "a", HERD_TYPE_F32, 2, ne, d, 60) ==
          HERD_E_INVALID); /* 64 needed */
    CHECK(herd_gguf_add_tensor(w, "a", HERD_TYPE_F32, 2, ne, d, 64) == HERD_OK);
    CHECK(herd_gguf_add_tensor(w, "a", HERD_TYPE_F32, 2, ne, d, 64) ==
          HERD_E_INVALID);                                                  /* duplicate */
    CHECK(herd_gguf_add_tensor(w, "b", 4, 2, ne, d, 64) == HERD_E_INVALID); /* no type 4 */
    CHECK(herd_gguf_add_tensor(w, "b", HERD_TYPE_F32, 0, ne, d, 64) == HERD_E_INVALID);
    CHECK(herd_gguf_add_tensor(w, "b", HERD_TYPE_F32, 5, ne, d, 64) == HERD_E_INVALID);
    CHECK(herd_gguf_add_tensor(w, "b", HERD_TYPE_F32, 2, ne0, d, 0) == HERD_E_INVALID);
    CHECK(herd_gguf_add_tensor(w, "b", HERD_TYPE_Q8_0, 1, ne_q, d, 17) == HERD_E_INVALID);
    CHECK(herd_gguf_add_tensor(w, "b", HERD_TYPE_F32, 2, ne, NULL, 64) == HERD_E_INVALID);
    memset(name, 'n', 64);
    name[64] = 0;
    CHECK(herd_gguf_add_tensor(w, name, HERD_TYPE_F32, 2, ne, d, 64) == HERD_E_INVALID);
    name[63] = 0; /* 63 bytes: the longest ggml allows */
    CHECK(herd_gguf_add_tensor(w, name, HERD_TYPE_F32, 2, ne, d, 64) == HERD_OK);
    CHECK(herd_gguf_set_u32(w, "general.alignment", 0) == HERD_E_INVALID);
    CHECK(herd_gguf_set_u32(w, "general.alignment", 48) == HERD_E_INVALID);
    CHECK(herd_gguf_set_i32(w, "general.alignment", 32) == HERD_E_INVALID);
    CHECK(herd_gguf_set_str(w, "general.alignment", "32") == HERD_E_INVALID);
    CHECK(herd_gguf_set_u32(w, "general.alignment", 256) == HERD_OK);
    CHECK(herd_gguf_set_arr(w, "x", GGUF_TYPE_STRING, d, 1) == HERD_E_INVALID);
    CHECK(herd_gguf_set_arr(w, "x", GGUF_TYPE_ARRAY, d, 1) == HERD_E_INVALID);
    CHECK(herd_gguf_set_scalar(w, "x", GGUF_TYPE_STRING, d) == HERD_E_INVALID);
    CHECK(herd_gguf_set_str(w, "x", NULL) == HERD_E_INVALID);
    CHECK(herd_gguf_set_u32(w, NULL, 1) == HERD_E_INVALID);
    CHECK(herd_gguf_write_file(w, "/nonexistent-dir/x.gguf") == HERD_E_IO && herd_errmsg()[0]);

    uint8_t *buf = NULL;
    size_t len = 0;
    gguf_file *f = NULL;
    CHECK(herd_gguf_write_mem(w, &buf, &len) == HERD_OK);
    CHECKF(herd_gguf_open_mem(buf, len, &f) == HERD_OK, "%s", herd_errmsg());
    CHECK(f && herd_gguf_alignment(f) == 256 && herd_gguf_data_offset(f) % 256 == 0);
    CHECK(f && herd_gguf_find_tensor(f, name) && herd_gguf_tensor_at(f, 1)->offset == 256);
    herd_gguf_close(f);
    free(buf);
    herd_gguf_writer_free(w);
}

/* Arrays of arrays: read (raw), copied, and rejected beyond the depth limit. */
static void test_nested(void)
{
    uint8_t *buf, *out = NULL;
    size_t len, n = 0;
    gguf_file *f = NULL, *g = NULL;
    CHECK(malformed_nested(3, &buf, &len));
    CHECKF(herd_gguf_open_mem(buf, len, &f) == HERD_OK, "%s", herd_errmsg());
    const gguf_kv *kv = f ? herd_gguf_find_kv(f, "test.nest") : NULL;
    CHECK(kv && kv->arr_type == GGUF_TYPE_ARRAY && kv->arr_n == 1 && kv->arr_bytes == 12 + 12 + 3);
    CHECK(kv && herd_gguf_arr_i64(kv, 0) == 0 && herd_gguf_arr_str(kv, 0).len == 0);
    gguf_writer *w = herd_gguf_writer_new();
    CHECK(kv && herd_gguf_copy_kv(w, kv) == HERD_OK && herd_gguf_write_mem(w, &out, &n) == HERD_OK);
    CHECK(out && n == len && memcmp(out, buf, len) == 0); /* the same bytes */
    CHECK(out && herd_gguf_open_mem(out, n, &g) == HERD_OK);
    herd_gguf_close(g);
    free(out);
    herd_gguf_writer_free(w);
    herd_gguf_close(f);
    free(buf);
    for (int levels = 1; levels <= GGUF_MAX_ARRAY_DEPTH + 1; levels++) {
        CHECK(malformed_nested(levels, &buf, &len));
        herd_status st = herd_gguf_open_mem(buf, len, &f);
        CHECKF(levels <= GGUF_MAX_ARRAY_DEPTH ? st == HERD_OK : st == HERD_E_FORMAT, "%d levels",
               levels);
        herd_gguf_close(f);
        free(buf);
    }
}

/* ------------------------------------------------------------ real files */

static void check_invariants(const char *path, const gguf_file *f)
{
    uint32_t a = herd_gguf_alignment(f);
    CHECKF(herd_gguf_version(f) == 2 || herd_gguf_version(f) == 3, "%s", path);
    CHECKF(a && !(a & (a - 1)), "%s alignment %u", path, a);
    for (int64_t i = 0; i < herd_gguf_n_kv(f); i++) {
        const gguf_kv *kv = herd_gguf_kv_at(f, i);
        char key[256];
        if (kv->key.len >= sizeof key) continue;
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = 0;
        CHECKF(herd_gguf_find_kv(f, key) == kv, "%s: key %s", path, key);
    }
    for (int64_t i = 0; i < herd_gguf_n_tensors(f); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, i);
        uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
        CHECKF(herd_gguf_find_tensor(f, t->name_z) == t, "%s: %s", path, t->name_z);
        CHECK(t->n_elements == (uint64_t)t->ne[0] * rows);
        CHECK(t->nbytes == herd_row_bytes(t->type, t->ne[0]) * rows);
        CHECK(herd_gguf_data_offset(f) + t->offset + t->nbytes <= herd_gguf_file_size(f));
        CHECK(a > 4096 || (uintptr_t)t->data % a == 0);
    }
    walk(f);
}

static bool has_type(const gguf_file *f, uint32_t type)
{
    for (int64_t i = 0; i < herd_gguf_n_tensors(f); i++)
        if (herd_gguf_tensor_at(f, i)->type == type) return true;
    return false;
}

static void check_known(const char *name, const gguf_file *f)
{
    char arch[32] = "";
    const gguf_kv *tok = herd_gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECKF(tok && tok->arr_type == GGUF_TYPE_STRING && tok->arr_n > 0, "%s: tokens", name);
    if (strncmp(name, "ggml-vocab-", 11) == 0) return;
    CHECKF(herd_gguf_get_strz(f, "general.architecture", arch, sizeof arch), "%s: arch", name);
    CHECKF(herd_gguf_find_tensor(f, "token_embd.weight"), "%s: token_embd", name);
    if (strcmp(name, "llama-f32.gguf") == 0) {
        const gguf_tensor *t = herd_gguf_find_tensor(f, "token_embd.weight");
        CHECK(strcmp(arch, "llama") == 0);
        CHECK(t && t->type == HERD_TYPE_F32 && t->n_dims == 2 && t->ne[0] == 64 &&
              t->ne[1] == 32000);
        CHECK(tok && tok->arr_n == 32000);
        CHECK(herd_gguf_find_tensor(f, "output.weight") &&
              herd_gguf_find_tensor(f, "blk.1.ffn_down.weight"));
    }
    if (strcmp(name, "llama-q4_0.gguf") == 0) CHECK(has_type(f, HERD_TYPE_Q4_0));
    if (strcmp(name, "ladder-q4_k_m.gguf") == 0)
        CHECK(has_type(f, HERD_TYPE_Q4_K) && has_type(f, HERD_TYPE_Q6_K));
    if (strcmp(name, "ladder-bf16.gguf") == 0) CHECK(has_type(f, HERD_TYPE_BF16));
}

static int test_dir(const char *rel)
{
    char dir[512], path[1024];
    if (!test_shared(rel, dir, sizeof dir)) return 0;
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        gguf_file *f = NULL;
        herd_status st = herd_gguf_open(path, &f);
        CHECKF(st == HERD_OK, "%s", herd_errmsg());
        if (!f) continue;
        check_invariants(path, f);
        check_known(e->d_name, f);
        herd_gguf_close(f);
        n++;
    }
    if (d) closedir(d);
    return n;
}

static void test_shared_files(void)
{
    int n = test_dir("models/tiny") + test_dir("vocab");
    fprintf(stderr, "opened %d shared GGUF files\n", n);
}

/* ------------------------------------------------------------ malformed */

static void test_malformed(void)
{
    CHECK(malformed_count() >= 25);
    for (int i = 0; i < malformed_count(); i++) {
        uint8_t *buf;
        size_t len;
        const char *what;
        gguf_file *f = NULL;
        CHECK(malformed_build(i, &buf, &len, &what));
        herd_clearerr();
        herd_status st = herd_gguf_open_mem(buf, len, &f);
        CHECKF(st == HERD_E_FORMAT && herd_errmsg()[0] && !f, "%s: %s", what, herd_status_name(st));
        if (verbose) fprintf(stderr, "  %-38s %s\n", what, herd_errmsg());
        herd_gguf_close(f);

        /* From disk the message names the file. */
        char path[512];
        snprintf(path, sizeof path, "%s/malformed-%02d.gguf", test_tmpdir(), i);
        CHECK(test_write_file(path, buf, len));
        herd_clearerr();
        st = herd_gguf_open(path, &f);
        CHECKF(st == HERD_E_FORMAT && strncmp(herd_errmsg(), path, strlen(path)) == 0, "%s: %s",
               what, herd_errmsg());
        herd_gguf_close(f);
        free(buf);
    }
    CHECK(!malformed_build(malformed_count(), &(uint8_t *){0}, &(size_t){0}, NULL));
}

static void test_open_errors(void)
{
    gguf_file *f = NULL;
    char path[512];
    CHECK(herd_gguf_open("/nonexistent/x.gguf", &f) == HERD_E_IO && !f && herd_errmsg()[0]);
    CHECK(herd_gguf_open(test_tmpdir(), &f) == HERD_E_IO && !f); /* a directory */
    snprintf(path, sizeof path, "%s/empty.gguf", test_tmpdir());
    CHECK(test_write_file(path, "", 0));
    CHECK(herd_gguf_open(path, &f) == HERD_E_FORMAT && !f);
    CHECK(herd_gguf_open_mem(NULL, 0, &f) == HERD_E_FORMAT && !f);
    CHECK(herd_gguf_open_mem(NULL, 10, &f) == HERD_E_INVALID && !f);
}

/* Seeded random damage to a valid file: any outcome but a crash (or, under
 * ASan, a bad read) is fine, but a failure must come with a message. */
static void test_mutations(void)
{
    uint8_t *base;
    size_t len;
    if (!malformed_base(&base, &len)) return;
    check_prefixes(base, len, "base file");
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    int opened = 0;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *p = malloc(len);
        memcpy(p, base, len);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17; /* xorshift64 */
            size_t at = (size_t)(s % len);
            if (iter >= 2000 && at + 8 <= len) /* a wild 64-bit field */
                for (int b = 0; b < 8; b++) p[at + b] = (uint8_t)(s >> (8 * b) ^ (s >> 40));
            else
                p[at] ^= (uint8_t)(1u << (s >> 32) % 8);
        }
        gguf_file *f = NULL;
        herd_clearerr();
        herd_status st = herd_gguf_open_mem(p, len, &f);
        if (st == HERD_OK) {
            opened++;
            walk(f);
        } else
            CHECKF(herd_errmsg()[0] && !f, "mutation %d: %s without a message", iter,
                   herd_status_name(st));
        herd_gguf_close(f);
        free(p);
    }
    fprintf(stderr, "mutations: %d of 3000 still opened\n", opened);
    free(base);
}

int main(void)
{
    verbose = getenv("HERD_TEST_VERBOSE") != NULL;
    test_roundtrip();
    test_writer_checks();
    test_stream();
    test_nested();
    test_shared_files();
    test_malformed();
    test_open_errors();
    test_mutations();
    return test_report();
}
