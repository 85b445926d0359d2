/*
 * fuzz_gguf.c — libFuzzer target for the GGUF reader (and, on what it
 * accepts, the writer).
 *
 * Built and run by `make fuzz` (CMake with HERD_FUZZ=ON and clang) from the
 * seeds in tests/fuzz/corpus/gguf: small files of every metadata type, a
 * tensor of each shape class, and malformed ones (the kinds test_gguf builds).
 * -malloc_limit_mb makes any allocation out of proportion to the input a
 * failure.
 *
 * Properties checked, beyond "no crash, no bad read, no leak":
 *   - a rejected input leaves a message and no file;
 *   - every pointer of an accepted file is inside the input (read back);
 *   - an accepted file copied key by key and tensor by tensor through the
 *     writer gives a file that is accepted again, with the same counts.
 */
#include "gguf/gguf.h"
#include "tensor/tensor.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t *lo, *hi;

static void in_input(const void *p, uint64_t n)
{
    const uint8_t *q = p;
    if (n && (q < lo || q > hi || n > (uint64_t)(hi - q))) abort();
}

static void check_file(const gguf_file *f)
{
    for (int64_t i = 0; i < herd_gguf_n_kv(f); i++) {
        const gguf_kv *kv = herd_gguf_kv_at(f, i);
        in_input(kv->key.ptr, kv->key.len);
        if (kv->type == GGUF_TYPE_STRING) in_input(kv->v.str.ptr, kv->v.str.len);
        if (kv->type != GGUF_TYPE_ARRAY) continue;
        in_input(kv->arr_data, kv->arr_bytes);
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            gguf_str s = herd_gguf_arr_str(kv, j);
            in_input(s.ptr, s.len);
            (void)herd_gguf_arr_i64(kv, j);
            (void)herd_gguf_arr_f64(kv, j);
        }
    }
    for (int64_t i = 0; i < herd_gguf_n_tensors(f); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, i);
        in_input(t->data, t->nbytes);
        if (herd_gguf_find_tensor(f, t->name_z) != t) abort();
    }
}

/* Copy through the writer and read the copy back. */
static void check_copy(const gguf_file *f)
{
    gguf_writer *w = herd_gguf_writer_new();
    if (!w) return;
    for (int64_t i = 0; i < herd_gguf_n_kv(f); i++)
        if (herd_gguf_copy_kv(w, herd_gguf_kv_at(f, i))) abort();
    for (int64_t i = 0; i < herd_gguf_n_tensors(f); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, i);
        if (herd_gguf_add_tensor(w, t->name_z, t->type, t->n_dims, t->ne, t->data, t->nbytes))
            abort();
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    gguf_file *g = NULL;
    if (herd_gguf_write_mem(w, &buf, &len)) abort();
    if (herd_gguf_open_mem(buf, len, &g)) abort();
    if (herd_gguf_n_kv(g) != herd_gguf_n_kv(f) || herd_gguf_n_tensors(g) != herd_gguf_n_tensors(f))
        abort();
    herd_gguf_close(g);
    free(buf);
    herd_gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    herd_clearerr();
    herd_status st = herd_gguf_open_mem(data, size, &f);
    if (st != HERD_OK) {
        if (f || !herd_errmsg()[0]) abort();
        return 0;
    }
    lo = data;
    hi = data + size;
    check_file(f);
    check_copy(f);
    herd_gguf_close(f);
    return 0;
}
