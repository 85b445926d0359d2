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
    {.name = "llama", .family = "Llama", .norm = NORM_RMS, .eps_key = RMS_EPS,
     .rope = ROPE_NORMAL, .mlp = MLP_SWIGLU, .residual = RES_SEQ},
    {.name = "falcon", .family = "Falcon", .norm = NORM_LAYER, .eps_key = LN_EPS,
     .rope = ROPE_NEOX, .mlp = MLP_GELU, .residual = RES_PARALLEL},
    {.name = "mpt", .family = "MPT", .norm = NORM_LAYER, .eps_key = LN_EPS, .rope = ROPE_NONE,
     .mlp = MLP_GELU, .residual = RES_SEQ, .alibi = true},
    {.name = "phi2", .family = "Phi-2", .norm = NORM_LAYER, .eps_key = LN_EPS,
     .rope = ROPE_NEOX, .mlp = MLP_GELU, .residual = RES_PARALLEL, .q_prescale = true},
    {.name = "gptneox", .family = "GPT-NeoX (StableLM-Alpha)", .norm = NORM_LAYER,
     .eps_key = LN_EPS, .rope = ROPE_NEOX, .mlp = MLP_GELU, .residual = RES_NEOX},
    {.name = "stablelm", .family = "StableLM", .norm = NORM_LAYER, .eps_key = LN_EPS,
     .rope = ROPE_NEOX, .mlp = MLP_SWIGLU, .residual = RES_STABLELM},
    /* Gemma 2: GeGLU, embeddings × √n_embd, norms after attention and MLP,
     * scores and logits soft-capped, a 4096 window on even layers. */
    {.name = "gemma2", .family = "Gemma 2", .norm = NORM_RMS, .eps_key = RMS_EPS,
     .rope = ROPE_NEOX, .mlp = MLP_GEGLU, .residual = RES_SEQ, .q_prescale = true,
     .embd_scale = true, .post_norms = true, .swa_pattern = 2, .swa_default = 4096,
     .rope_swa = RSWA_SAME, .attn_softcap = 50.0f, .final_softcap = 30.0f,
     .q_scale_embd_at = 46},
    /* Gemma 3 (text): Gemma 2 without the score cap, with per-head q/k norms,
     * five window layers to one global, their own RoPE base. */
    {.name = "gemma3", .family = "Gemma 3", .norm = NORM_RMS, .eps_key = RMS_EPS,
     .rope = ROPE_NEOX, .mlp = MLP_GEGLU, .residual = RES_SEQ, .q_prescale = true,
     .embd_scale = true, .post_norms = true, .qk_norm = true, .swa_pattern = 6,
     .rope_swa = RSWA_OWN, .q_scale_embd_at = 62},
    /* Phi-3 / 3.5 / 4: fused QKV (or separate), fused gate+up, LongRoPE. */
    {.name = "phi3", .family = "Phi-3", .norm = NORM_RMS, .eps_key = RMS_EPS, .rope = ROPE_NEOX,
     .mlp = MLP_SWIGLU, .residual = RES_SEQ, .q_prescale = true},
};

const herd_arch *herd_arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch_table[i].name, name) == 0) return &arch_table[i];
    return NULL;
}
