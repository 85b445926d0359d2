/*
 * quantize.c — herd quantize: an F32/F16/BF16 GGUF file to any mix herd can
 * compute with, as llama-quantize makes it.
 *
 * What makes the output llama.cpp's: the per-tensor types (quant_plan.c),
 * the quantizers (the tensor module's from_float_ref, byte for byte
 * ggml's quantize_row_*_ref, i.e. what llama_model_quantize runs without an
 * importance matrix), the metadata (every key copied, then
 * general.quantization_version = 2 and general.file_type set as llama.cpp
 * does, split keys dropped) and the tensor order (llama.cpp's, see
 * herd_quant_name_cmp). The file is written one tensor at a time
 * (herd_gguf_out); a tensor is converted to F32 rows and quantized row by row
 * on all threads, which gives the same bytes whatever the thread count.
 */
#include "quant/quant.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"
#include "util/pool.h"

#include <stdatomic.h>
#include <stdio.h> /* snprintf */
#include <stdlib.h>
#include <string.h>

#define QUANT_VERSION 2 /* GGML_QNT_VERSION */

static const gguf_file *g_sort_file; /* qsort has no context argument */

static int cmp_index(const void *a, const void *b)
{
    const gguf_tensor *ta = herd_gguf_tensor_at(g_sort_file, *(const int64_t *)a);
    const gguf_tensor *tb = herd_gguf_tensor_at(g_sort_file, *(const int64_t *)b);
    return herd_quant_name_cmp(ta->name_z, tb->name_z);
}

static int get_int(const gguf_file *f, const char *arch, const char *key, int dflt)
{
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    uint32_t v;
    return herd_gguf_get_u32(f, k, &v) ? (int)v : dflt;
}

typedef struct {
    const herd_type_traits *src, *dst;
    const uint8_t *in;
    uint8_t *out;
    int64_t ne0, rows;
    size_t in_rb, out_rb;
    atomic_int next; /* the next chunk of rows */
    atomic_bool oom;
} convert_job;

#define CHUNK 16 /* rows taken at a time */

static void convert_rows(void *arg, int ith, int nth)
{
    (void)ith, (void)nth;
    convert_job *j = arg;
    float *row = malloc((size_t)j->ne0 * sizeof *row);
    if (!row) {
        atomic_store(&j->oom, true);
        return;
    }
    for (int64_t c; (c = atomic_fetch_add(&j->next, 1)) * CHUNK < j->rows;) {
        for (int64_t r = c * CHUNK; r < (c + 1) * CHUNK && r < j->rows; r++) {
            j->src->to_float(j->in + (size_t)r * j->in_rb, row, j->ne0);
            j->dst->from_float_ref(row, j->out + (size_t)r * j->out_rb, j->ne0);
        }
    }
    free(row);
}

/* Convert one tensor: rows of ne0 elements to type `to`. Each row is done by
 * one thread, so the bytes do not depend on the thread count. */
static herd_status convert(const gguf_tensor *t, uint32_t to, uint8_t *out, int n_threads)
{
    const herd_type_traits *src = herd_type(t->type), *dst = herd_type(to);
    if (!src || !src->to_float || !dst || !dst->from_float_ref)
        return herd_seterr(HERD_E_UNSUPPORTED, "quantize: %s: cannot convert %s to %s", t->name_z,
                           herd_type_name(t->type), herd_type_name(to));
    if (src->is_quantized)
        return herd_seterr(HERD_E_UNSUPPORTED,
                           "quantize: %s is %s already; requantizing is not supported "
                           "(start from an F32, F16 or BF16 file)",
                           t->name_z, herd_type_name(t->type));
    convert_job j = {.src = src,
                     .dst = dst,
                     .in = t->data,
                     .out = out,
                     .ne0 = t->ne[0],
                     .rows = (int64_t)(t->n_elements / (uint64_t)t->ne[0]),
                     .in_rb = herd_row_bytes(t->type, t->ne[0]),
                     .out_rb = herd_row_bytes(to, t->ne[0])};
    atomic_init(&j.next, 0);
    atomic_init(&j.oom, false);
    herd_parallel(n_threads, convert_rows, &j);
    return atomic_load(&j.oom) ? herd_seterr(HERD_E_NOMEM, "quantize: out of memory") : HERD_OK;
}

static bool key_is(const gguf_kv *kv, const char *key)
{
    return kv->key.len == strlen(key) && !memcmp(kv->key.ptr, key, kv->key.len);
}

/* Every key of the input, split keys dropped, then the two llama.cpp sets.
 * ggml's gguf_set_val_* removes a key and appends it, so these two always
 * end the list. */
static herd_status write_meta(gguf_writer *w, const gguf_file *f, uint32_t ftype)
{
    herd_status st = HERD_OK;
    for (int64_t i = 0; i < herd_gguf_n_kv(f) && !st; i++) {
        const gguf_kv *kv = herd_gguf_kv_at(f, i);
        if ((kv->key.len >= 6 && !memcmp(kv->key.ptr, "split.", 6)) ||
            key_is(kv, "general.quantization_version") || key_is(kv, "general.file_type"))
            continue;
        st = herd_gguf_copy_kv(w, kv);
    }
    if (!st) st = herd_gguf_set_u32(w, "general.quantization_version", QUANT_VERSION);
    if (!st) st = herd_gguf_set_u32(w, "general.file_type", ftype);
    return st;
}

herd_status herd_quantize(const herd_quantize_params *p, herd_quantize_stats *stats)
{
    herd_tensor_init();
    if (!p || !p->in_path || !p->out_path || !p->type)
        return herd_seterr(HERD_E_INVALID, "quantize: input, output and type are required");
    const herd_ftype_info *ft = herd_ftype_find(p->type);
    if (!ft) return herd_seterr(HERD_E_INVALID, "quantize: unknown type '%s'", p->type);
    const int nt = p->n_threads > 0 ? p->n_threads : 2;
    gguf_file *f = NULL;
    herd_status st = herd_gguf_open(p->in_path, &f);
    if (st) return st;

    char arch[64] = "";
    herd_gguf_get_strz(f, "general.architecture", arch, sizeof arch);
    const int64_t n = herd_gguf_n_tensors(f);
    int64_t *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    const char **names = malloc((size_t)(n > 0 ? n : 1) * sizeof *names);
    uint32_t *to = calloc((size_t)(n > 0 ? n : 1), sizeof *to); /* each tensor's new type */
    gguf_writer *w = herd_gguf_writer_new();
    if (!order || !names || !to || !w) {
        st = herd_seterr(HERD_E_NOMEM, "quantize: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) order[i] = i;
    g_sort_file = f;
    qsort(order, (size_t)n, sizeof *order, cmp_index);
    for (int64_t i = 0; i < n; i++) names[i] = herd_gguf_tensor_at(f, order[i])->name_z;

    herd_quant_plan plan;
    const int n_head = get_int(f, arch, "attention.head_count", 1);
    herd_quant_plan_init(&plan, ft, arch, get_int(f, arch, "block_count", 0), n_head,
                         get_int(f, arch, "attention.head_count_kv", n_head),
                         get_int(f, arch, "expert_count", 0), names, (int)n);
    plan.pure = p->pure;
    herd_quantize_stats s = {0};
    size_t max_bytes = 1;
    st = write_meta(w, f, ft->ftype); /* general.alignment included */
    for (int64_t i = 0; i < n && !st; i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, order[i]);
        to[i] = herd_quant_tensor_type(&plan, t->name_z, (int)t->n_dims, t->ne[0], t->type);
        const size_t bytes = herd_row_bytes(to[i], t->ne[0]) * (t->n_elements / (uint64_t)t->ne[0]);
        if (bytes > max_bytes) max_bytes = bytes;
        s.bytes_in += t->nbytes;
        s.bytes_out += bytes;
        s.n_elements += t->n_elements;
        s.n_quantized += to[i] != t->type;
        st = herd_gguf_add_tensor_info(w, t->name_z, to[i], t->n_dims, t->ne);
    }
    s.n_tensors = (int)n;
    s.n_fallback = plan.n_fallback;

    herd_gguf_out *out = NULL;
    uint8_t *buf = NULL;
    if (!st) st = herd_gguf_out_begin(&out, w, p->out_path, p->in_path);
    if (!st && !(buf = malloc(max_bytes)))
        st = herd_seterr(HERD_E_NOMEM, "quantize: out of memory");
    for (int64_t i = 0; i < n && !st; i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, order[i]);
        const size_t bytes = herd_row_bytes(to[i], t->ne[0]) * (t->n_elements / (uint64_t)t->ne[0]);
        if (p->progress) {
            const herd_quantize_progress pr = {(int)i, (int)n,    t->name_z, t->type,
                                               to[i],  t->nbytes, bytes};
            p->progress(&pr, p->progress_user);
        }
        if (to[i] == t->type) {
            st = herd_gguf_out_write(out, t->data, (size_t)t->nbytes);
        } else if (!(st = convert(t, to[i], buf, nt))) {
            st = herd_gguf_out_write(out, buf, bytes);
        }
    }
    st = herd_gguf_out_end(out, st);
    free(buf);
    if (!st && stats) *stats = s;
done:
    herd_gguf_writer_free(w);
    free(to);
    free(names);
    free(order);
    herd_gguf_close(f);
    return st;
}
