/*
 * make_refs.c — llama.cpp's logits with a given KV cache type, for
 * tests/test_kv_quant.c. The oracle CLI has no cache-type option, so this
 * small program links the oracle's own libllama (see make_refs.sh, which
 * builds it the way ../shared/oracle/setup builds the oracle) and sets
 * type_k / type_v with flash attention on (llama.cpp needs it for a
 * quantized V cache, and it is its CPU default).
 *
 *   make_refs MODEL TYPE_K TYPE_V N_BATCH OUT "ID ID ..."
 *
 * Decodes the ids from position 0 in batches of N_BATCH (n_ctx 256) and
 * writes float32 [n_ids][n_vocab], every position. Cache types are
 * llama.cpp's names: f32, f16, bf16, q8_0, q4_0.
 */
#include "llama.h"
#include "llama_cache_type.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *msg, const char *arg)
{
    fprintf(stderr, "make_refs: %s%s\n", msg, arg ? arg : "");
    exit(1);
}

static enum ggml_type cache_type(const char *s)
{
    enum ggml_type t = GGML_TYPE_F16;
    if (!llama_cache_type(s, &t)) die("unknown cache type ", s);
    return t;
}

static void quiet(enum ggml_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv)
{
    if (argc != 7) die("usage: make_refs MODEL TYPE_K TYPE_V N_BATCH OUT \"IDS\"", NULL);
    llama_log_set(quiet, NULL);
    const char *libdir = getenv("ORACLE_LIBDIR");
    if (libdir)
        ggml_backend_load_all_from_path(libdir);
    else
        ggml_backend_load_all();
    llama_backend_init();

    int ids[4096], n = 0;
    for (char *s = argv[6], *end;; s = end) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        if (n == 4096) die("too many ids", NULL);
        ids[n++] = (int)v;
    }
    const int nb = atoi(argv[4]) < 1 ? 1 : atoi(argv[4]);

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *m = llama_model_load_from_file(argv[1], mp);
    if (!m) die("cannot load ", argv[1]);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = cp.n_ubatch = (uint32_t)nb;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.no_perf = true;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    cp.type_k = cache_type(argv[2]);
    cp.type_v = cache_type(argv[3]);
    struct llama_context *c = llama_init_from_model(m, cp);
    if (!c) die("cannot create a context with these cache types", NULL);

    const int nv = llama_vocab_n_tokens(llama_model_get_vocab(m));
    FILE *f = fopen(argv[5], "wb");
    if (!f) die("cannot write ", argv[5]);
    struct llama_batch b = llama_batch_init(nb, 0, 1);
    for (int s = 0; s < n; s += nb) {
        const int k = n - s < nb ? n - s : nb;
        b.n_tokens = k;
        for (int j = 0; j < k; j++) {
            b.token[j] = ids[s + j];
            b.pos[j] = s + j;
            b.n_seq_id[j] = 1;
            b.seq_id[j][0] = 0;
            b.logits[j] = 1;
        }
        if (llama_decode(c, b) != 0) die("llama_decode failed", NULL);
        for (int j = 0; j < k; j++) fwrite(llama_get_logits_ith(c, j), sizeof(float), nv, f);
    }
    llama_batch_free(b);
    if (fclose(f)) die("cannot write ", argv[5]);
    llama_free(c);
    llama_model_free(m);
    return 0;
}
