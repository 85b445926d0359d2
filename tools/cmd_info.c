/*
 * cmd_info.c — `herd info` (what a model file is and what it needs) and
 * `herd tokenize`.
 */
#include "cli.h"
#include "cmd_probe.h"
#include "model/model.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void print_size(const char *label, uint64_t bytes)
{
    printf("%-16s %.2f MiB\n", label, (double)bytes / (1024.0 * 1024.0));
}

/* The memory herd info reports, at -c (default min(training context, 4096)). */
static herd_mem_estimate estimate(const herd_model *m, const herd_model_info *in, const cli_opts *o,
                                  int *n_ctx)
{
    *n_ctx = o->n_ctx > 0 ? o->n_ctx : (in->n_ctx_train < 4096 ? in->n_ctx_train : 4096);
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = *n_ctx;
    cp.n_batch = o->n_batch;
    cp.n_seq_max = o->n_parallel;
    cp.swa = o->swa;
    cp.type_k = o->cache_type_k, cp.type_v = o->cache_type_v;
    return herd_estimate_memory_ctx(m, &cp);
}

/* The predicted speed of this file on this machine (src/catalog/predict.h):
 * pp512, tg128, and one token at the end of the context. */
static bool predict_file(const herd_model *m, const cli_opts *o, int n_ctx, herd_prediction *pr)
{
    herd_probe p;
    if (cli_probe(&p)) return false;
    herd_shape s;
    herd_shape_of_model(m, &s);
    herd_weight_mix mix;
    int threads = o->n_threads > 0 ? o->n_threads : cli_default_threads();
    if (herd_weight_mix_of_model(m, &mix) ||
        herd_predict_mix(&p, &s, &mix, threads, 512, 128, n_ctx, pr))
        return cli_fail("predict"), false;
    return true;
}

/* herd info --json: the figures of the text output tools need, with
 * "predict": {"pp512", "tg128", "threads", ...}. */
static int info_json(const herd_model *m, const herd_model_info *in, const cli_opts *o)
{
    int n_ctx;
    herd_mem_estimate e = estimate(m, in, o, &n_ctx);
    herd_prediction pr;
    if (!predict_file(m, o, n_ctx, &pr)) return 1;
    json_t *j = json_pack(
        "{s:s, s:s, s:I, s:s, s:I, s:i, s:{s:i, s:I, s:I, s:I, s:I}, s:{s:f, s:f, s:f, s:i, s:i}}",
        "name", in->name, "architecture", in->arch, "parameters", (json_int_t)in->n_params,
        "file_type", in->file_type, "file_size", (json_int_t)in->file_size, "context_length",
        in->n_ctx_train, "memory", "n_ctx", n_ctx, "weights", (json_int_t)e.weights, "kv_cache",
        (json_int_t)e.kv_cache, "scratch", (json_int_t)e.scratch, "total", (json_int_t)e.total,
        "predict", "pp512", pr.pp, "tg128", pr.tg, "tg_at_ctx", pr.tg_depth, "n_ctx", n_ctx,
        "threads", pr.threads);
    char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!s) return cli_error(1, "info: out of memory");
    printf("%s\n", s);
    free(s);
    return 0;
}

/* A file with no tensors (a vocabulary-only GGUF): what the vocabulary is. */
static void vocab_info(const herd_model_info *in)
{
    printf("%-16s %s\n", "contents", "vocabulary only (no weights)");
    printf("%-16s %s\n", "name", in->name[0] ? in->name : "(none)");
    printf("%-16s %s\n", "architecture", in->arch[0] ? in->arch : "(none)");
    printf("%-16s %u\n", "gguf version", in->gguf_version);
    print_size("file size", in->file_size);
    if (in->n_ctx_train > 0) printf("%-16s %d\n", "context length", in->n_ctx_train);
    printf("%-16s %d\n", "vocab size", in->n_vocab);
    printf("%-16s %s\n", "tokenizer", in->tokenizer);
    printf("%-16s %s\n", "chat template", in->has_chat_template ? "yes" : "no");
}

int cmd_info(int argc, char **argv)
{
    /* --json is info's own; the other options are cli_parse's. */
    bool json = false;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--json")) {
            json = true;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof *argv);
            argc--, i--;
        }
    cli_opts o;
    if (!cli_parse(argc, argv, CLI_MODEL | CLI_CTX | CLI_PARALLEL, &o)) return 2;
    herd_model *m = cli_load_model_as(&o, CLI_LOAD_ANY);
    if (!m) return 1;
    herd_model_info in;
    herd_model_get_info(m, &in);
    /* A cache type the heads cannot use: refused as a context would refuse
     * it (herd_kv_check_type), not sized as if it could be made. */
    if (!in.vocab_only && (herd_kv_check_type(o.cache_type_k, m->hp.head_dim) ||
                           herd_kv_check_type(o.cache_type_v, m->hp.head_dim))) {
        herd_model_free(m);
        return cli_fail("info");
    }
    if (json && !in.vocab_only) {
        int rc = info_json(m, &in, &o);
        herd_model_free(m);
        return rc;
    }
    printf("%-16s %s\n", "file", o.model);
    if (in.vocab_only) {
        vocab_info(&in);
        herd_model_free(m);
        return 0;
    }
    printf("%-16s %s\n", "name", in.name[0] ? in.name : "(none)");
    printf("%-16s %s\n", "architecture", in.arch);
    printf("%-16s %s\n", "family", in.family);
    printf("%-16s %s\n", "uses", in.features);
    printf("%-16s %u\n", "gguf version", in.gguf_version);
    printf("%-16s %llu (%.2f M)\n", "parameters", (unsigned long long)in.n_params,
           in.n_params / 1e6);
    printf("%-16s %s\n", "file type", in.file_type);
    print_size("file size", in.file_size);
    printf("%-16s %d\n", "context length", in.n_ctx_train);
    printf("%-16s %d\n", "layers", in.n_layer);
    printf("%-16s %d\n", "heads", in.n_head);
    printf("%-16s %d (%s)\n", "kv heads", in.n_head_kv,
           in.n_head_kv == in.n_head ? "MHA"
           : in.n_head_kv == 1       ? "MQA"
                                     : "GQA");
    printf("%-16s %d\n", "embedding", in.n_embd);
    printf("%-16s %d\n", "feed forward", in.n_ff);
    printf("%-16s %d\n", "rope dims", in.n_rot);
    printf("%-16s %g\n", "rope freq base", in.rope_freq_base);
    printf("%-16s %d\n", "vocab size", in.n_vocab);
    printf("%-16s %s\n", "tokenizer", in.tokenizer);
    printf("%-16s %s\n", "output", in.tied_output ? "tied to token_embd" : "separate");
    printf("%-16s %s\n", "chat template", in.has_chat_template ? "yes" : "no");
    int n_ctx;
    herd_mem_estimate e = estimate(m, &in, &o, &n_ctx);
    printf("memory at -c %d", n_ctx);
    if (o.n_parallel > 1) printf(", --parallel %d", o.n_parallel);
    if (o.cache_type_k != HERD_KV_F16 || o.cache_type_v != HERD_KV_F16)
        printf(", -ctk %s -ctv %s", herd_kv_type_name(o.cache_type_k),
               herd_kv_type_name(o.cache_type_v));
    printf(":\n");
    print_size("  weights", e.weights);
    print_size("  KV cache", e.kv_cache);
    print_size("  scratch", e.scratch);
    print_size("  total", e.total);
    herd_prediction pr;
    if (predict_file(m, &o, n_ctx, &pr))
        printf("predicted here (herd probe), %d thread%s: pp512 %.1f tokens/s, tg128 %.1f "
               "tokens/s, one token at -c %d %.1f tokens/s\n",
               pr.threads, pr.threads > 1 ? "s" : "", pr.pp, pr.tg, n_ctx, pr.tg_depth);
    herd_model_free(m);
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    cli_opts o;
    if (!cli_parse(argc, argv, CLI_MODEL | CLI_PROMPT | CLI_FILE | CLI_PIECES, &o)) return 2;
    if (!o.prompt && !o.file) return cli_error(2, "tokenize: -p TEXT or -f FILE is required");
    if (o.prompt && o.file) return cli_error(2, "tokenize: -p TEXT and -f FILE: give one");
    /* -f FILE: the file's bytes, all of them (NULs too), tokenized as -p's. */
    char *text = NULL;
    size_t len = 0;
    if (o.file && !(text = cli_read_file(o.file, &len))) return 1;
    /* Tokenizing needs the vocabulary only: a vocabulary file will do. */
    herd_model *m = cli_load_model_as(&o, CLI_LOAD_VOCAB);
    if (!m) {
        free(text);
        return 1;
    }
    int n = 0;
    int32_t *ids = NULL;
    if (text) {
        bool bos = herd_add_bos(m) && !o.no_bos;
        if (herd_tokenize(m, text, len, bos, true, NULL, 0, &n) == HERD_OK &&
            (ids = malloc(((size_t)n + 1) * sizeof *ids)) != NULL &&
            herd_tokenize(m, text, len, bos, true, ids, n, &n) != HERD_OK) {
            free(ids);
            ids = NULL;
        }
        if (!ids) cli_fail("tokenize");
        free(text);
    } else {
        ids = cli_prompt_ids(m, &o, &n);
    }
    if (!ids) {
        herd_model_free(m);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        if (o.pieces) {
            char buf[256];
            int k = herd_token_to_piece(m, ids[i], true, buf, sizeof buf);
            printf("%d\t%.*s\n", ids[i], k > 0 && k <= (int)sizeof buf ? k : 0, buf);
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    if (!o.pieces) printf("\n");
    free(ids);
    herd_model_free(m);
    return 0;
}
