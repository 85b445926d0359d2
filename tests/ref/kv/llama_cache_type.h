/*
 * llama_cache_type.h — llama.cpp's KV cache type from its name (f32, f16,
 * bf16, q8_0, q4_0: the -ctk/-ctv values herd accepts too), for the small
 * programs that link the oracle's libllama: tests/ref/kv/make_refs.c and
 * bench/oracle-bench-kv.c. Each reports an unknown name in its own words.
 */
#ifndef HERD_LLAMA_CACHE_TYPE_H
#define HERD_LLAMA_CACHE_TYPE_H

#include "ggml.h"

#include <stdbool.h>
#include <string.h>

#define LLAMA_CACHE_TYPES "f32, f16, bf16, q8_0, q4_0"

static inline bool llama_cache_type(const char *s, enum ggml_type *t)
{
    static const struct {
        const char *name;
        enum ggml_type t;
    } types[] = {{"f32", GGML_TYPE_F32},
                 {"f16", GGML_TYPE_F16},
                 {"bf16", GGML_TYPE_BF16},
                 {"q8_0", GGML_TYPE_Q8_0},
                 {"q4_0", GGML_TYPE_Q4_0}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, types[i].name)) {
            *t = types[i].t;
            return true;
        }
    return false;
}

#endif
