/*
 * herd.h — the public C API of libherd.
 *
 * herd runs open large language models stored as GGUF files on a CPU. The
 * library has three kinds of objects, each behind an opaque handle:
 *
 *   herd_model    the weights (mmapped read-only), hyper-parameters and
 *                 vocabulary of one GGUF file; shared by any number of contexts.
 *   herd_ctx      a KV cache and scratch space sized from the model and n_ctx,
 *                 plus the logits of the last decoded batch.
 *   herd_sampler  turns a row of logits into a token (greedy, temperature,
 *                 top-k, top-p, min-p, repetition penalty, seeded RNG).
 *
 * The one forward entry point is herd_decode(ctx, batch). A batch is a list of
 * tokens, each with its position, its sequence id and a flag saying whether its
 * logits are wanted. A prompt is one batch; generation is a batch of one token
 * per active sequence. There is no separate single-sequence path.
 *
 * Errors: every function returns a herd_status (or NULL) and records a message
 * for the calling thread, read with herd_errmsg(). The library never prints and
 * never exits.
 */
#ifndef HERD_H
#define HERD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* herd's version, as `herd --version` prints it. */
#define HERD_VERSION "0.1.0"

typedef enum herd_status {
    HERD_OK = 0,
    HERD_E_INVALID = 1,     /* bad argument from the caller */
    HERD_E_IO = 2,          /* open/read/mmap/write failed */
    HERD_E_FORMAT = 3,      /* the file is not valid GGUF or misses required data */
    HERD_E_UNSUPPORTED = 4, /* valid, but an architecture/type herd does not run */
    HERD_E_NOMEM = 5,       /* allocation failed or a size overflowed */
    HERD_E_RANGE = 6,       /* token id, position or sequence outside the context */
    HERD_E_FULL = 7,        /* the KV cache has no room for the batch */
} herd_status;

/* The message of the last error on this thread ("" if none). */
const char *herd_errmsg(void);
/* A short name for a status code. */
const char *herd_status_name(herd_status st);

/* A monotonic clock in seconds, for timing figures. */
double herd_time(void);

/* ---------------------------------------------------------------- model */

typedef struct herd_model herd_model;

typedef struct herd_model_params {
    int n_threads;   /* used by the contexts; 0 = number of cores */
    bool mmap;       /* map the file instead of reading it into huge pages
                        (starts at once, shares the page cache; decodes
                        slower: see GGUF_READ in src/gguf/gguf.h) */
    bool vocab_only; /* load the vocabulary and the file's facts only (as
                        llama.cpp's vocab_only): for tokenizing, and for files
                        that hold no tensors (vocabulary-only files); such a model
                        cannot make a context */
} herd_model_params;

herd_model_params herd_model_default_params(void);
herd_status herd_model_load(const char *path, const herd_model_params *params, herd_model **out);
void herd_model_free(herd_model *model);

/* What `herd info` shows. Strings point into the model and live as long as it. */
typedef struct herd_model_info {
    const char *arch;      /* general.architecture */
    const char *family;    /* e.g. "Llama", "Falcon", "Mixtral-style MoE" */
    char features[384];    /* e.g. "GQA 4/2, SWA 4096, RoPE normal" */
    const char *name;      /* general.name, or "" */
    const char *file_type; /* e.g. "Q4_0" (the most common matrix type) */
    const char *tokenizer; /* tokenizer.ggml.model */
    uint64_t file_size;    /* bytes */
    uint64_t tensor_bytes; /* bytes of all tensor data (llama-bench's model_size) */
    int n_threads;         /* default thread count of contexts */
    uint64_t n_params;     /* elements of all tensors */
    uint32_t gguf_version;
    int n_ctx_train, n_layer, n_head, n_head_kv, n_embd, n_ff, n_vocab, n_rot;
    int n_expert, n_expert_used, swa_window;
    float rope_freq_base, norm_eps;
    bool has_chat_template;
    bool tied_output;
    bool vocab_only; /* loaded with vocab_only: no weights, no shape facts */
} herd_model_info;

void herd_model_get_info(const herd_model *model, herd_model_info *info);
int herd_n_vocab(const herd_model *model);
int herd_n_ctx_train(const herd_model *model);

/* ------------------------------------------------------------ tokenizer */

int32_t herd_token_bos(const herd_model *model); /* -1 if none */
int32_t herd_token_eos(const herd_model *model);
bool herd_add_bos(const herd_model *model); /* does the vocabulary prepend BOS? */
bool herd_token_is_eog(const herd_model *model, int32_t id);

/* Tokenize len bytes of text. At most cap ids are written to ids; *n_ids gets
 * the number the text needs, so a caller can size a buffer and retry.
 * parse_special: split on special/control tokens written in the text. */
herd_status herd_tokenize(const herd_model *model, const char *text, size_t len, bool add_bos,
                          bool parse_special, int32_t *ids, int cap, int *n_ids);

/* The text of one token as llama.cpp's token_to_piece prints it (byte-fallback
 * tokens give their raw byte; control tokens give "" unless special). Writes up
 * to cap bytes, returns the length needed (negative: invalid id). */
int herd_token_to_piece(const herd_model *model, int32_t id, bool special, char *buf, int cap);

/* Detokenize a whole sequence. remove_leading_space drops the space that the
 * SentencePiece prefix adds in front of the first token, as llama.cpp does. */
herd_status herd_detokenize(const herd_model *model, const int32_t *ids, int n, bool special,
                            bool remove_leading_space, char *buf, size_t cap, size_t *len);

/* --------------------------------------------------------------- context */

typedef struct herd_ctx herd_ctx;

/* Element types of the KV cache, as llama.cpp's -ctk/-ctv: K and V each have
 * their own. The quantized ones (Q8_0, Q4_0: blocks of 32) need a head size
 * that is a multiple of 32; herd_ctx_new says so otherwise. */
typedef enum herd_kv_type {
    HERD_KV_F16 = 0,
    HERD_KV_F32 = 1,
    HERD_KV_Q8_0 = 2,
    HERD_KV_Q4_0 = 3,
    HERD_KV_BF16 = 4
} herd_kv_type;

/* "f16", "q8_0", … (llama.cpp's spelling); NULL for a value not in the enum. */
const char *herd_kv_type_name(herd_kv_type t);
/* The type named (llama.cpp's names, any case); an unknown name is
 * HERD_E_INVALID with a message naming it and the accepted ones. */
herd_status herd_kv_type_parse(const char *name, herd_kv_type *out);

typedef struct herd_ctx_params {
    int n_ctx;     /* KV cells; 0 = the model's training context */
    int n_batch;   /* most tokens one herd_decode call may carry */
    int n_seq_max; /* distinct sequence ids (1 for a CLI, N for a server) */
    int n_threads; /* 0 = the model's default */
    herd_kv_type type_k, type_v;
    int swa; /* sliding-window attention: -1 = as the file says, 0 = off, N = window */
} herd_ctx_params;

herd_ctx_params herd_ctx_default_params(void);
herd_status herd_ctx_new(herd_model *model, const herd_ctx_params *params, herd_ctx **out);
void herd_ctx_free(herd_ctx *ctx);
int herd_ctx_n_ctx(const herd_ctx *ctx);

/* Memory a context of n_ctx cells needs (KV cache + scratch), in bytes,
 * computed by the same code that allocates it. */
typedef struct herd_mem_estimate {
    uint64_t weights, kv_cache, scratch, total;
} herd_mem_estimate;
herd_mem_estimate herd_estimate_memory(const herd_model *model, int n_ctx, int n_batch);
/* The same for a full set of context parameters (n_seq_max, cache type, window). */
herd_mem_estimate herd_estimate_memory_ctx(const herd_model *model, const herd_ctx_params *params);

typedef struct herd_batch {
    int n_tokens;
    const int32_t *token;  /* [n_tokens] */
    const int32_t *pos;    /* [n_tokens] position of each token in its sequence */
    const int32_t *seq_id; /* [n_tokens] or NULL: all sequence 0 */
    const int8_t *logits;  /* [n_tokens] or NULL: only the last token's logits */
} herd_batch;

/* Run the model over the batch: append K/V for each token to its sequence's
 * cache cells and compute logits where asked. Each token attends to the cached
 * tokens of its own sequence at positions <= its own. */
herd_status herd_decode(herd_ctx *ctx, const herd_batch *batch);

/* Logits of the i-th token of the last batch (i indexes the batch), or NULL if
 * that token's logits were not requested. n_vocab floats. */
const float *herd_get_logits(const herd_ctx *ctx, int i);

/* Forget the cache cells of seq_id at positions [p0, p1) (p1 < 0: to the end).
 * seq_id < 0: every sequence. */
herd_status herd_kv_remove(herd_ctx *ctx, int seq_id, int p0, int p1);

/* --------------------------------------------------------------- sampler */

typedef struct herd_sampler herd_sampler;

typedef struct herd_sampler_params {
    float temp;           /* <= 0: greedy (argmax, first index on ties) */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* how many recent tokens the penalty looks at */
    uint64_t seed;
} herd_sampler_params;

herd_sampler_params herd_sampler_default_params(void);
herd_status herd_sampler_new(const herd_sampler_params *params, int n_vocab, herd_sampler **out);
void herd_sampler_free(herd_sampler *s);
/* Pick the next token from logits (not modified). */
int32_t herd_sampler_sample(herd_sampler *s, const float *logits);
/* Record a token (prompt or generated) for the repetition penalty. */
void herd_sampler_accept(herd_sampler *s, int32_t token);
void herd_sampler_reset(herd_sampler *s);

/* ------------------------------------------------------------ perplexity */

/* llama.cpp's perplexity: the tokens are cut into non-overlapping chunks of
 * n_chunk tokens (the first of each replaced by BOS when the vocabulary adds
 * one); each chunk is decoded from an empty cache and the second half of its
 * positions is scored. ctx needs n_ctx >= n_chunk. */
typedef struct herd_ppl_result {
    int n_chunks;
    long count;      /* tokens scored */
    double nll;      /* sum of -log p */
    double nll2;     /* sum of (log p)^2 */
    double ppl, err; /* exp(mean nll) and its standard error, as llama.cpp prints */
} herd_ppl_result;

/* Called after each chunk with the running estimate. */
typedef void (*herd_ppl_progress)(int chunk, double ppl, void *user);

herd_status herd_perplexity(herd_ctx *ctx, const int32_t *tokens, int n_tokens, int n_chunk,
                            int max_chunks, herd_ppl_progress progress, void *user,
                            herd_ppl_result *out);
/* log p(token) under the softmax of logits, in double as llama.cpp does. */
double herd_log_softmax_at(const float *logits, int n_vocab, int32_t token);

/* ----------------------------------------------------------------- synth */

/* Write a random-weight model of a real shape, for benchmarks without
 * downloads. shape: "tinyllama-1.1b", "llama2-7b" (herd_synth_shapes lists
 * them); type: "f32", "f16", "bf16", "q8_0", "q4_0" (output matrix Q6_K, as
 * llama.cpp's quantizer does); vocab: a GGUF file whose tokenizer.* keys are
 * copied (its vocabulary size must match the shape's). Seeded: the same
 * arguments give the same file. */
typedef struct herd_synth_params {
    const char *arch, *shape, *type, *vocab_path, *out_path;
    uint64_t seed;
    int n_threads;
    /* Called before each tensor is made (done of total); may be NULL. */
    void (*progress)(int done, int total, const char *tensor, void *user);
    void *user;
    /* Quick: each tensor's rows are copies of a pool of 1024 rows made as
     * usual, so a file of tens of GB is written at disk speed. Same shapes,
     * types and sizes: for speed and memory measurements, not for text. */
    bool quick;
} herd_synth_params;

herd_status herd_synth(const herd_synth_params *p);
/* Names of the shapes herd_synth knows, NULL-terminated. */
const char *const *herd_synth_shapes(void);

#ifdef __cplusplus
}
#endif
#endif /* HERD_H */
