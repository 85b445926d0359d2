/*
 * gguf_out.c — write a GGUF file one tensor at a time.
 *
 * gguf_writer (src/gguf) keeps every tensor in memory until it writes the
 * file; a 7B model in F16 is 13 GB, more than this machine can spare. Here
 * the metadata still comes from a gguf_writer (it has no tensors, so
 * gguf_write_mem gives exactly the header and key/value section, with a
 * tensor count of 0 that is patched), the tensor infos are written from the
 * list with ggml's layout (offsets padded to the alignment), and the data
 * follows tensor by tensor, each padded with zeros.
 */
#include "quant/quant.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct herd_gguf_out {
    FILE *fp;
    char *path;
    uint32_t alignment;
    int64_t n, next;
    uint64_t *nbytes; /* of each tensor, to check the writes */
    bool err;
};

static void put_le(herd_gguf_out *o, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> 8 * i);
    if (!o->err && fwrite(b, 1, (size_t)n, o->fp) != (size_t)n) o->err = true;
}

static void put(herd_gguf_out *o, const void *p, size_t n)
{
    if (!o->err && n && fwrite(p, 1, n, o->fp) != n) o->err = true;
}

static void pad(herd_gguf_out *o, uint64_t pos)
{
    static const uint8_t zeros[256];
    uint64_t k = (o->alignment - pos % o->alignment) % o->alignment;
    while (k) {
        const size_t c = k < sizeof zeros ? (size_t)k : sizeof zeros;
        put(o, zeros, c);
        k -= c;
    }
}

static void close_out(herd_gguf_out *o)
{
    if (o->fp) fclose(o->fp);
    free(o->nbytes);
    free(o->path);
    free(o);
}

herd_status herd_gguf_out_begin(herd_gguf_out **out, const char *path, const gguf_writer *meta,
                                const herd_gguf_out_tensor *t, int64_t n, uint32_t alignment)
{
    *out = NULL;
    if (alignment == 0 || (alignment & (alignment - 1)))
        return herd_seterr(HERD_E_INVALID, "gguf: alignment %u is not a power of two", alignment);
    uint8_t *hdr = NULL;
    size_t hdr_len = 0;
    herd_status st = gguf_write_mem(meta, &hdr, &hdr_len);
    if (st) return st;
    herd_gguf_out *o = calloc(1, sizeof *o);
    if (o) {
        o->path = strdup(path);
        o->nbytes = calloc(n > 0 ? (size_t)n : 1, sizeof *o->nbytes);
    }
    if (!o || !o->path || !o->nbytes) {
        free(hdr);
        if (o) close_out(o);
        return herd_seterr(HERD_E_NOMEM, "gguf: out of memory");
    }
    o->alignment = alignment;
    o->n = n;
    o->fp = fopen(path, "wb");
    if (!o->fp) {
        free(hdr);
        const int e = errno;
        close_out(o);
        return herd_seterr(HERD_E_IO, "%s: cannot create: %s", path, strerror(e));
    }
    /* Header with the real tensor count (bytes 8..15), then the metadata. */
    for (int i = 0; i < 8; i++) hdr[8 + i] = (uint8_t)((uint64_t)n >> 8 * i);
    put(o, hdr, hdr_len);
    uint64_t pos = hdr_len, off = 0;
    free(hdr);
    for (int64_t i = 0; i < n; i++) {
        const size_t len = strlen(t[i].name);
        uint64_t rows = 1;
        for (uint32_t d = 1; d < t[i].n_dims; d++) rows *= (uint64_t)t[i].ne[d];
        o->nbytes[i] = herd_row_bytes(t[i].type, t[i].ne[0]) * rows;
        put_le(o, len, 8);
        put(o, t[i].name, len);
        put_le(o, t[i].n_dims, 4);
        for (uint32_t d = 0; d < t[i].n_dims; d++) put_le(o, (uint64_t)t[i].ne[d], 8);
        put_le(o, t[i].type, 4);
        put_le(o, off, 8);
        pos += 8 + len + 4 + 8 * (uint64_t)t[i].n_dims + 4 + 8;
        off += (o->nbytes[i] + alignment - 1) / alignment * alignment;
    }
    if (n) pad(o, pos);
    *out = o;
    return HERD_OK;
}

herd_status herd_gguf_out_write(herd_gguf_out *o, const void *data, size_t nbytes)
{
    if (o->next >= o->n || nbytes != o->nbytes[o->next])
        return herd_seterr(HERD_E_INVALID, "gguf: tensor %lld: %zu bytes, expected %llu",
                           (long long)o->next, nbytes,
                           o->next < o->n ? (unsigned long long)o->nbytes[o->next] : 0ull);
    put(o, data, nbytes);
    pad(o, nbytes);
    o->next++;
    return o->err ? herd_seterr(HERD_E_IO, "%s: write failed: %s", o->path, strerror(errno))
                  : HERD_OK;
}

herd_status herd_gguf_out_end(herd_gguf_out *o, herd_status st)
{
    if (!o) return st;
    if (!st && o->next != o->n)
        st = herd_seterr(HERD_E_INVALID, "gguf: %lld of %lld tensors written", (long long)o->next,
                         (long long)o->n);
    if (!st && (o->err || fflush(o->fp) != 0))
        st = herd_seterr(HERD_E_IO, "%s: write failed: %s", o->path, strerror(errno));
    if (fclose(o->fp) != 0 && !st)
        st = herd_seterr(HERD_E_IO, "%s: write failed: %s", o->path, strerror(errno));
    o->fp = NULL;
    if (st) remove(o->path); /* no half-written file left behind */
    close_out(o);
    return st;
}
