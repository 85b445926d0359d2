/*
 * arch.c — the architecture table: what each general.architecture uses.
 *
 * The forward pass reads a row of this table instead of branching on the
 * architecture's name, so a new family is a new row (../shared/DESIGN.md,
 * decision 1). Llama 2, Vicuna, Yi, Mistral and Zephyr files all say "llama".
 */
#include "model/model.h"

#include <string.h>

static const herd_arch arch_table[] = {
    {
        .name = "llama",
        .norm = NORM_RMS,
        .eps_key = "%s.attention.layer_norm_rms_epsilon",
        .rope = ROPE_NORMAL,
        .mlp = MLP_SWIGLU,
    },
};

const herd_arch *herd_arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch_table[i].name, name) == 0) return &arch_table[i];
    return NULL;
}
