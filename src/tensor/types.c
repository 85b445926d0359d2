/*
 * types.c — the type-traits table: one row per ggml type.
 *
 * Sizes for every type ggml defines are here, so that any GGUF file can be
 * read and described; the kernel columns are filled for the types herd can
 * compute with. herd_tensor_init() swaps in SIMD kernels where the CPU has
 * them.
 */
#include "tensor/tensor.h"
#include "tensor/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ROW(id, nm, blck, size, quant)                                                             \
    [id] = {.name = nm, .blck_size = blck, .type_size = size, .is_quantized = quant}

static herd_type_traits traits[HERD_TYPE_COUNT] = {
    ROW(HERD_TYPE_F32, "F32", 1, 4, false),
    ROW(HERD_TYPE_F16, "F16", 1, 2, false),
    ROW(HERD_TYPE_Q4_0, "Q4_0", 32, 18, true),
    ROW(HERD_TYPE_Q4_1, "Q4_1", 32, 20, true),
    ROW(HERD_TYPE_Q5_0, "Q5_0", 32, 22, true),
    ROW(HERD_TYPE_Q5_1, "Q5_1", 32, 24, true),
    ROW(HERD_TYPE_Q8_0, "Q8_0", 32, 34, true),
    ROW(HERD_TYPE_Q8_1, "Q8_1", 32, 36, true),
    ROW(HERD_TYPE_Q2_K, "Q2_K", 256, 84, true),
    ROW(HERD_TYPE_Q3_K, "Q3_K", 256, 110, true),
    ROW(HERD_TYPE_Q4_K, "Q4_K", 256, 144, true),
    ROW(HERD_TYPE_Q5_K, "Q5_K", 256, 176, true),
    ROW(HERD_TYPE_Q6_K, "Q6_K", 256, 210, true),
    ROW(HERD_TYPE_Q8_K, "Q8_K", 256, 292, true),
    ROW(16, "IQ2_XXS", 256, 66, true),
    ROW(17, "IQ2_XS", 256, 74, true),
    ROW(18, "IQ3_XXS", 256, 98, true),
    ROW(19, "IQ1_S", 256, 50, true),
    ROW(20, "IQ4_NL", 32, 18, true),
    ROW(21, "IQ3_S", 256, 110, true),
    ROW(22, "IQ2_S", 256, 82, true),
    ROW(23, "IQ4_XS", 256, 136, true),
    ROW(HERD_TYPE_I8, "I8", 1, 1, false),
    ROW(HERD_TYPE_I16, "I16", 1, 2, false),
    ROW(HERD_TYPE_I32, "I32", 1, 4, false),
    ROW(HERD_TYPE_I64, "I64", 1, 8, false),
    ROW(HERD_TYPE_F64, "F64", 1, 8, false),
    ROW(29, "IQ1_M", 256, 56, true),
    ROW(HERD_TYPE_BF16, "BF16", 1, 2, false),
    ROW(34, "TQ1_0", 256, 54, true),
    ROW(35, "TQ2_0", 256, 66, true),
    ROW(39, "MXFP4", 32, 17, true),
};

const herd_type_traits *herd_type(uint32_t type)
{
    if (type >= HERD_TYPE_COUNT || !traits[type].name) return NULL;
    return &traits[type];
}

bool herd_type_can_compute(uint32_t type)
{
    const herd_type_traits *t = herd_type(type);
    return t && t->to_float && t->vec_dot;
}

const char *herd_type_name(uint32_t type)
{
    const herd_type_traits *t = herd_type(type);
    return t ? t->name : "?";
}

size_t herd_row_bytes(uint32_t type, int64_t n)
{
    const herd_type_traits *t = herd_type(type);
    if (!t || n < 0 || n % t->blck_size) return 0;
    return (size_t)(n / t->blck_size) * t->type_size;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static const char *simd_level = "scalar";

static void init_kernels(void)
{
    /* Scalar references for every type herd computes with; then the fastest
     * level the CPU supports overrides vec_dot/from_float where it has one. */
    herd_kernels_install_ref(traits);
    const char *no_simd = getenv("HERD_NO_SIMD");
    if (no_simd && *no_simd && strcmp(no_simd, "0") != 0) return;
    simd_level = herd_kernels_install_simd(traits);
}

void herd_tensor_init(void)
{
    pthread_once(&init_once, init_kernels);
}

const char *herd_tensor_simd_level(void)
{
    herd_tensor_init();
    return simd_level;
}
