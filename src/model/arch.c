/*
 * arch.c — the architecture table: what each general.architecture uses.
 *
 * The forward pass reads a row of this table instead of branching on the
 * architecture's name, so a new family is a new row (../shared/DESIGN.md,
 * decision 1). What varies within one architecture (biases, a second norm,
 * per-head q/k norms, experts, a sliding window) is read from the file: the
 * loader binds the tensors that are present and the block uses what it finds.
 *
 * Llama 2, Vicuna, Yi, Mistral, Zephyr and Mixtral files all say "llama".
 */
#include "model/model.h"

#include <string.h>

#define RMS_EPS "%s.attention.layer_norm_rms_epsilon"
#define LN_EPS "%s.attention.layer_norm_epsilon"

static const herd_arch arch_table[] = {
    /* name       family      norm        eps      rope         mlp         residual */
    {"llama", "Llama", NORM_RMS, RMS_EPS, ROPE_NORMAL, MLP_SWIGLU, RES_SEQ, false, false},
    {"falcon", "Falcon", NORM_LAYER, LN_EPS, ROPE_NEOX, MLP_GELU, RES_PARALLEL, false, false},
    {"mpt", "MPT", NORM_LAYER, LN_EPS, ROPE_NONE, MLP_GELU, RES_SEQ, true, false},
    {"phi2", "Phi-2", NORM_LAYER, LN_EPS, ROPE_NEOX, MLP_GELU, RES_PARALLEL, false, true},
    {"gptneox", "GPT-NeoX (StableLM-Alpha)", NORM_LAYER, LN_EPS, ROPE_NEOX, MLP_GELU, RES_NEOX,
     false, false},
    {"stablelm", "StableLM", NORM_LAYER, LN_EPS, ROPE_NEOX, MLP_SWIGLU, RES_STABLELM, false, false},
};

const herd_arch *herd_arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch_table[i].name, name) == 0) return &arch_table[i];
    return NULL;
}
