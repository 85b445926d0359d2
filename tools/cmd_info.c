/*
 * cmd_info.c — `herd info` (what a model file is and what it needs) and
 * `herd tokenize`.
 */
#include "cli.h"
#include "cmd_probe.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

static void print_size(const char *label, uint64_t bytes)
{
    printf("%-16s %.2f MiB\n", label, (double)bytes / (1024.0 * 1024.0));
}

/* The predicted speed of this file on this machine (predict.h): pp512,
 * tg128, and one token at the end of the context. */
static bool predict_file(const herd_model *m, const herd_model_info *in, int threads, int n_ctx,
                         herd_prediction *pr)
{
    herd_probe p;
    if (cli_probe(&p)) return false;
    herd_shape s;
    herd_shape_of_model(m, &s);
    double bpw = 8.0 * (double)in->file_size / (double)(in->n_params ? in->n_params : 1);
    if (herd_predict(&p, &s, herd_model_matrix_type(m), bpw, threads, 512, 128, n_ctx, pr))
        return cli_fail("predict"), false;
    return true;
}

static int print_json(const herd_model_info *in, const herd_mem_estimate *e, int n_ctx,
                      const herd_prediction *pr)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:s, s:I, s:i, s:{s:i, s:I, s:I, s:I, s:I}}", "name", in->name,
        "architecture", in->arch, "parameters", (json_int_t)in->n_params, "file_type",
        in->file_type, "file_size", (json_int_t)in->file_size, "context_length", in->n_ctx_train,
        "memory", "n_ctx", n_ctx, "weights", (json_int_t)e->weights, "kv_cache",
        (json_int_t)e->kv_cache, "scratch", (json_int_t)e->scratch, "total", (json_int_t)e->total);
    if (o && pr)
        json_object_set_new(o, "predict",
                            json_pack("{s:f, s:f, s:f, s:i, s:i}", "pp512", pr->pp, "tg128", pr->tg,
                                      "tg_at_ctx", pr->tg_depth, "n_ctx", n_ctx, "threads",
                                      pr->threads));
    char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!s) return cli_error(1, "info: out of memory");
    printf("%s\n", s);
    free(s);
    return 0;
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
    if (!cli_parse(argc, argv, &o)) return 2;
    herd_model *m = cli_load_model(&o);
    if (!m) return 1;
    herd_model_info in;
    herd_model_get_info(m, &in);
    int n_ctx = o.n_ctx > 0 ? o.n_ctx : (in.n_ctx_train < 4096 ? in.n_ctx_train : 4096);
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = o.n_batch;
    cp.n_seq_max = o.n_parallel;
    cp.swa = o.swa;
    cp.type_k = cp.type_v = o.cache_type;
    herd_mem_estimate e = herd_estimate_memory_ctx(m, &cp);
    herd_prediction pr;
    int threads = o.n_threads > 0 ? o.n_threads : cli_default_threads();
    if (json) {
        int rc = predict_file(m, &in, threads, n_ctx, &pr) ? print_json(&in, &e, n_ctx, &pr) : 1;
        herd_model_free(m);
        return rc;
    }
    printf("%-16s %s\n", "file", o.model ? o.model : o.positional[0]);
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
    if (o.n_parallel > 1)
        printf("memory at -c %d, --parallel %d:\n", n_ctx, o.n_parallel);
    else
        printf("memory at -c %d:\n", n_ctx);
    print_size("  weights", e.weights);
    print_size("  KV cache", e.kv_cache);
    print_size("  scratch", e.scratch);
    print_size("  total", e.total);
    if (predict_file(m, &in, threads, n_ctx, &pr))
        printf("predicted on this machine (herd probe), %d thread%s: pp512 %.1f tokens/s, "
               "tg128 %.1f tokens/s, one token at -c %d %.1f tokens/s\n",
               pr.threads, pr.threads > 1 ? "s" : "", pr.pp, pr.tg, n_ctx, pr.tg_depth);
    herd_model_free(m);
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    cli_opts o;
    if (!cli_parse(argc, argv, &o)) return 2;
    if (!o.prompt && !o.file) return cli_error(2, "tokenize: -p TEXT or -f FILE is required");
    /* -f FILE: the file's bytes, all of them (NULs too), tokenized as -p's. */
    char *text = NULL;
    long len = 0;
    if (o.file) {
        FILE *f = fopen(o.file, "rb");
        if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
            !(text = malloc((size_t)len + 1)) || fread(text, 1, (size_t)len, f) != (size_t)len) {
            if (f) fclose(f);
            free(text);
            return cli_error(1, "tokenize: cannot read %s", o.file);
        }
        fclose(f);
    }
    herd_model *m = cli_load_model(&o);
    if (!m) {
        free(text);
        return 1;
    }
    int n = 0;
    int32_t *ids = NULL;
    if (text) {
        bool bos = herd_add_bos(m) && !o.no_bos;
        if (herd_tokenize(m, text, (size_t)len, bos, true, NULL, 0, &n) == HERD_OK &&
            (ids = malloc(((size_t)n + 1) * sizeof *ids)) != NULL &&
            herd_tokenize(m, text, (size_t)len, bos, true, ids, n, &n) != HERD_OK) {
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
