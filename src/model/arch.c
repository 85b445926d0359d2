/*
 * arch.c — the architecture table: what each general.architecture uses.
 *
 * The forward pass reads a row of this table instead of branching on the
 * architecture's name, so a new family is a new row (../shared/DESIGN.md,
 * decision 1). What varies within one architecture (biases, a second norm,
 * per-head q/k norms, experts, a sliding window, a head size of its own, a
 * tied output) is read from the file: the loader binds the tensors that are
 * present and the block uses what it finds. The row says what the
 * architecture is and what llama.cpp's converter writes for it, so `herd
 * synth` builds its files from the row alone.
 *
 * The columns, and who reads them:
 *   name         general.architecture as the file says it.
 *   family       what `herd info` calls it; family_moe, if set, for a file
 *                with experts (a llama file with experts is Mixtral-style).
 *   norm         RMSNorm or LayerNorm, for every norm of the model (forward.c).
 *   eps_key      the key of the norm's epsilon, "%s" the architecture (loader).
 *   qkv          what the converter writes: separate attn_q/k/v or one fused
 *                attn_qkv (synth). The loader accepts either, as the block
 *                does.
 *   biases       BIAS_* flags: the biases the converter writes (synth, and
 *                `herd info`); the loader binds any that are present.
 *   qk_norm      per-head q/k norms (model.h): one row per head and
 *                optional (a file may have them), or one shared row and
 *                required (the loader checks, synth writes them).
 *   rope         RoPE mode: none, normal (consecutive pairs) or neox (halves).
 *   alibi        ALiBi position biases instead of RoPE (attention.c).
 *   q_prescale   Q is scaled by 1/sqrt(head_dim) before attention, whose
 *                scores are then not scaled again (phi2).
 *   residual     how attention and MLP meet the residual (model.h); it also
 *                decides whether the file has an ffn_norm (herd_arch_ffn_norm).
 *   mlp          SwiGLU (gate, up, down) or GELU (up, down); with experts in
 *                the file the MLP is a mixture of SwiGLU experts (moe.c).
 *   tied_output  the converter writes no output.weight: token_embd is the lm
 *                head (synth). The loader ties any file without output.weight,
 *                as llama.cpp does.
 *
 * Gemma 2/3 and Phi-3 add (0 where a row does not say; forward.c and the
 * loader read them as llama.cpp's src/models/gemma2.cpp, gemma3.cpp and
 * phi3.cpp do):
 *   mlp          MLP_GEGLU: gelu(gate) · up with ggml's GELU table (Gemma).
 *                A SwiGLU file may fuse gate and up into one ffn_up of
 *                2 n_ff rows, gate first (Phi-3); the loader tells by shape.
 *   embd_scale   token embeddings × √n_embd before the first layer.
 *   post_norms   post_attention_norm / post_ffw_norm (required) normalise the
 *                attention and MLP outputs before they join the residual.
 *   swa_pattern  0: a file's sliding window covers every layer (Mistral,
 *                Phi-3); n: layer il attends to everything when
 *                il % n == n - 1 (Gemma 2: 2, Gemma 3: 6). The file's
 *                attention.sliding_window_pattern wins.
 *   swa_default  the window when the file names none (Gemma 2: 4096).
 *   rope_swa     the RoPE of window layers (model.h, herd_rope_swa).
 *   attn_softcap the default of attn_logit_softcapping; 0: scores are never
 *                capped (the key is not read).
 *   final_softcap the default of final_logit_softcapping (the key is read
 *                for every row; 0: no cap).
 *   q_scale_embd_at  q_prescale rows scale Q by 1/√head_dim, except a file
 *                with this many layers (Gemma's 27B), which gets
 *                1/√(n_embd/n_head), as llama.cpp decides by model size.
 *
 * Llama 2, Vicuna, Yi, Mistral, Zephyr and Mixtral files all say "llama".
 */
#include "model/model.h"

#include <stdio.h>
#include <string.h>

#define RMS_EPS "%s.attention.layer_norm_rms_epsilon"
#define LN_EPS  "%s.attention.layer_norm_epsilon"

static const herd_arch arch_table[] = {
    {.name = "llama",
     .family = "Llama",
     .family_moe = "Mixtral-style mixture of experts",
     .norm = NORM_RMS,
     .eps_key = RMS_EPS,
     .qkv = QKV_SEPARATE,
     .rope = ROPE_NORMAL,
     .residual = RES_SEQ,
     .mlp = MLP_SWIGLU},
    {.name = "falcon",
     .family = "Falcon",
     .norm = NORM_LAYER,
     .eps_key = LN_EPS,
     .qkv = QKV_FUSED,
     .biases = BIAS_NORM,
     .rope = ROPE_NEOX,
     .residual = RES_PARALLEL,
     .mlp = MLP_GELU},
    {.name = "mpt",
     .family = "MPT",
     .norm = NORM_LAYER,
     .eps_key = LN_EPS,
     .qkv = QKV_FUSED,
     .rope = ROPE_NONE,
     .alibi = true,
     .residual = RES_SEQ,
     .mlp = MLP_GELU,
     .tied_output = true},
    {.name = "phi2",
     .family = "Phi-2",
     .norm = NORM_LAYER,
     .eps_key = LN_EPS,
     .qkv = QKV_SEPARATE,
     .biases = BIAS_NORM | BIAS_QKV | BIAS_OUT_ATTN | BIAS_FFN | BIAS_LOGITS,
     .rope = ROPE_NEOX,
     .q_prescale = true,
     .residual = RES_PARALLEL,
     .mlp = MLP_GELU},
    {.name = "gptneox",
     .family = "GPT-NeoX (StableLM-Alpha)",
     .norm = NORM_LAYER,
     .eps_key = LN_EPS,
     .qkv = QKV_FUSED,
     .biases = BIAS_NORM | BIAS_QKV | BIAS_OUT_ATTN | BIAS_FFN,
     .rope = ROPE_NEOX,
     .residual = RES_NEOX,
     .mlp = MLP_GELU},
    {.name = "stablelm",
     .family = "StableLM",
     .norm = NORM_LAYER,
     .eps_key = LN_EPS,
     .qkv = QKV_SEPARATE,
     .biases = BIAS_NORM,
     .qk_norm = QK_NORM_PER_HEAD,
     .rope = ROPE_NEOX,
     .residual = RES_STABLELM,
     .mlp = MLP_SWIGLU},
    /* Gemma 2: GeGLU, embeddings × √n_embd, norms after attention and MLP,
     * scores and logits soft-capped, a 4096 window on even layers. */
    {.name = "gemma2",
     .family = "Gemma 2",
     .norm = NORM_RMS,
     .eps_key = RMS_EPS,
     .qkv = QKV_SEPARATE,
     .rope = ROPE_NEOX,
     .q_prescale = true,
     .residual = RES_SEQ,
     .mlp = MLP_GEGLU,
     .tied_output = true,
     .embd_scale = true,
     .post_norms = true,
     .swa_pattern = 2,
     .swa_default = 4096,
     .rope_swa = RSWA_SAME,
     .attn_softcap = 50.0f,
     .final_softcap = 30.0f,
     .q_scale_embd_at = 46},
    /* Gemma 3 (text): Gemma 2 without the score cap, with shared per-head
     * RMS q/k norms, five window layers to one global, their own RoPE. */
    {.name = "gemma3",
     .family = "Gemma 3",
     .norm = NORM_RMS,
     .eps_key = RMS_EPS,
     .qkv = QKV_SEPARATE,
     .qk_norm = QK_NORM_SHARED,
     .rope = ROPE_NEOX,
     .q_prescale = true,
     .residual = RES_SEQ,
     .mlp = MLP_GEGLU,
     .tied_output = true,
     .embd_scale = true,
     .post_norms = true,
     .swa_pattern = 6,
     .rope_swa = RSWA_OWN,
     .q_scale_embd_at = 62},
    /* Phi-3 / 3.5 / 4: fused QKV (the loader takes separate too), gate and
     * up fused in ffn_up, LongRoPE factors. */
    {.name = "phi3",
     .family = "Phi-3",
     .norm = NORM_RMS,
     .eps_key = RMS_EPS,
     .qkv = QKV_FUSED,
     .rope = ROPE_NEOX,
     .q_prescale = true,
     .residual = RES_SEQ,
     .mlp = MLP_SWIGLU},
};
#define N_ARCH (sizeof arch_table / sizeof arch_table[0])

const herd_arch *herd_arch_find(const char *name)
{
    for (size_t i = 0; i < N_ARCH; i++)
        if (strcmp(arch_table[i].name, name) == 0) return &arch_table[i];
    return NULL;
}

void herd_arch_list(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_ARCH && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", arch_table[i].name);
}

herd_ffn_norm_rule herd_arch_ffn_norm(const herd_arch *a)
{
    switch (a->residual) {
    case RES_PARALLEL:
        return FFN_NORM_NEVER;
    case RES_STABLELM:
        return FFN_NORM_OPTIONAL;
    case RES_SEQ:
    case RES_NEOX:
        break;
    }
    return FFN_NORM_ALWAYS;
}

/* The residual rule, resolved for one layer: gptneox is parallel only when
 * the file says use_parallel_residual, stablelm only when the layer has no
 * ffn_norm. */
herd_residual_kind herd_residual(const herd_model *m, const herd_layer *L)
{
    herd_residual_kind res = m->arch->residual;
    if (res == RES_NEOX && !m->hp.parallel_residual) return RES_SEQ;
    if (res == RES_STABLELM && L->ffn_norm.data) return RES_SEQ;
    return res;
}
