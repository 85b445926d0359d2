/*
 * test_quantize.c — herd quantize against llama-quantize.
 *
 *   - the shipped ladder-<type>.gguf and llama-q4_0/q8_0.gguf were written by
 *     llama_model_quantize (`oracle quantize`) from ladder-f32 / llama-f32:
 *     herd's output must be the same file, byte for byte (types, tensor
 *     order, metadata, quantized blocks);
 *   - the per-tensor mix on real shapes (22 and 32 layers: the counters and
 *     llama.cpp's tensor order matter there);
 *   - with the oracle, a few architectures and mixes more (skipped when it
 *     does not run);
 *   - the command line: bad types, requantizing refused, nothing left behind;
 *     the output being the input (by its name, a symlink or a hard link) is
 *     refused with one error line and the input is untouched (it used to be
 *     truncated to 20,480 bytes, with a bus error);
 *   - progress goes to the caller's callback, once per tensor, in order.
 */
#include "helpers.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "tensor/tensor.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = test_read_file(a, &la), *y = test_read_file(b, &lb);
    const bool same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

static void check_shipped(const char *src, const char *type, const char *shipped)
{
    char in[512], want[512], out[512];
    if (!test_shared(src, in, sizeof in) || !test_shared(shipped, want, sizeof want)) return;
    snprintf(out, sizeof out, "%s/q-%s.gguf", test_tmpdir(), type);
    herd_quantize_params p = {.in_path = in, .out_path = out, .type = type, .n_threads = 2};
    herd_quantize_stats s;
    herd_status st = herd_quantize(&p, &s);
    CHECKF(st == HERD_OK, "%s %s: %s", src, type, herd_errmsg());
    CHECKF(st || same_file(out, want), "%s -> %s differs from llama.cpp's %s", src, type, shipped);
    unlink(out);
}

/* The mix on a model's tensor list: count how many of `suffix` get type t. */
typedef struct {
    const char *arch;
    int n_layer, n_head, n_head_kv, n_embd;
    bool tied;
} shape;

static int count_type(const shape *sh, const char *ftype, const char *suffix, uint32_t type)
{
    static const char *const per_layer[] = {
        "attn_norm.weight", "attn_q.weight",      "attn_k.weight",
        "attn_v.weight",    "attn_output.weight", "ffn_norm.weight",
        "ffn_gate.weight",  "ffn_up.weight",      "ffn_down.weight"};
    const int np = (int)(sizeof per_layer / sizeof per_layer[0]);
    const int n = 3 + sh->n_layer * np;
    char(*names)[64] = calloc((size_t)n, sizeof *names);
    const char **ptr = calloc((size_t)n, sizeof *ptr);
    int k = 0;
    snprintf(names[k++], 64, "%s", sh->tied ? "output_norm.weight" : "output.weight");
    snprintf(names[k++], 64, "output_norm.weight");
    snprintf(names[k++], 64, "token_embd.weight");
    for (int l = 0; l < sh->n_layer; l++)
        for (int j = 0; j < np; j++) snprintf(names[k++], 64, "blk.%d.%s", l, per_layer[j]);
    for (int i = 0; i < n; i++) ptr[i] = names[i];
    /* llama.cpp's order: blk.10 after blk.9, not after blk.1. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && herd_quant_name_cmp(ptr[j - 1], ptr[j]) > 0; j--) {
            const char *t = ptr[j];
            ptr[j] = ptr[j - 1];
            ptr[j - 1] = t;
        }
    herd_quant_plan p;
    herd_quant_plan_init(&p, herd_ftype_find(ftype), sh->arch, sh->n_layer, sh->n_head,
                         sh->n_head_kv, 0, ptr, n);
    int count = 0;
    for (int i = 0; i < n; i++) {
        const bool norm = strstr(ptr[i], "norm") != NULL;
        const uint32_t t =
            herd_quant_tensor_type(&p, ptr[i], norm ? 1 : 2, sh->n_embd, HERD_TYPE_F16);
        /* "=name": that tensor only; otherwise any name containing it. */
        const bool match =
            suffix[0] == '=' ? !strcmp(ptr[i], suffix + 1) : !!strstr(ptr[i], suffix);
        if (match && t == type) count++;
    }
    free(names);
    free(ptr);
    return count;
}

static void check_mixes(void)
{
    const shape tl = {"llama", 22, 32, 4, 2048, false}, l7 = {"llama", 32, 32, 32, 4096, false};
    /* use_more_bits: the first and last eighth and every third in between
     * (22 layers: 0, 1, 4, 7, 10, 13, 16, 19, 20, 21 → 10; 32: 16). */
    CHECK(count_type(&tl, "q4_k_m", "attn_v", HERD_TYPE_Q6_K) == 10);
    CHECK(count_type(&tl, "q4_k_m", "ffn_down", HERD_TYPE_Q6_K) == 10);
    CHECK(count_type(&tl, "q4_k_m", "attn_q", HERD_TYPE_Q4_K) == 22);
    CHECK(count_type(&tl, "q4_k_m", "=output.weight", HERD_TYPE_Q6_K) == 1);
    CHECK(count_type(&tl, "q4_k_m", "token_embd", HERD_TYPE_Q4_K) == 1);
    CHECK(count_type(&l7, "q4_k_m", "attn_v", HERD_TYPE_Q6_K) == 16);
    CHECK(count_type(&l7, "q5_k_m", "ffn_down", HERD_TYPE_Q6_K) == 16);
    /* Q2_K: attn_v Q4_K with 8 query heads per KV head, else Q3_K. */
    CHECK(count_type(&tl, "q2_k", "attn_v", HERD_TYPE_Q4_K) == 22);
    CHECK(count_type(&l7, "q2_k", "attn_v", HERD_TYPE_Q3_K) == 32);
    CHECK(count_type(&l7, "q2_k", "ffn_down", HERD_TYPE_Q3_K) == 32);
    CHECK(count_type(&l7, "q3_k_m", "attn_v", HERD_TYPE_Q5_K) == 2);
    CHECK(count_type(&l7, "q3_k_m", "ffn_down", HERD_TYPE_Q5_K) == 2);
    CHECK(count_type(&l7, "q4_0", "=output.weight", HERD_TYPE_Q6_K) == 1);
    CHECK(count_type(&l7, "q4_0", "token_embd", HERD_TYPE_Q4_0) == 1);
    CHECK(count_type(&l7, "q8_0", "=output.weight", HERD_TYPE_Q8_0) == 1);
    CHECK(count_type(&l7, "f16", "attn_q", HERD_TYPE_F16) == 32);
    CHECK(count_type(&l7, "q4_k_m", "attn_norm", HERD_TYPE_F16) == 32); /* 1-D: as they are */
    /* A tied model's token_embd is its output: Q6_K. */
    const shape tied = {"llama", 4, 4, 4, 256, true};
    CHECK(count_type(&tied, "q4_k_m", "token_embd", HERD_TYPE_Q6_K) == 1);
    /* Falcon-7B's rows of 4544 are no multiple of 256: K types fall back. */
    const shape f7 = {"falcon", 32, 71, 1, 4544, false};
    CHECK(count_type(&f7, "q4_k_m", "attn_q", HERD_TYPE_Q5_0) == 32);
    CHECK(count_type(&f7, "q4_k_m", "=output.weight", HERD_TYPE_Q8_0) == 1);
    CHECK(herd_ftype_find("Q4_K") == herd_ftype_find("q4_k_m"));
    CHECK(herd_ftype_find("iq2_xxs") == NULL);
}

/* Other architectures against llama-quantize itself, when the oracle runs. */
static void check_oracle(void)
{
    char oracle[512];
    /* The oracle installs llama.cpp on its first call (`make test-deps` makes
     * that call); one that does not run is a skip. */
    if (!test_shared("oracle/oracle", oracle, sizeof oracle)) return;
    static const char *const cases[][2] = {
        {"falcon7b-f32", "q3_k_m"}, {"mpt-f32", "q4_k_m"},       {"phi2-f32", "q5_k_m"},
        {"gptneox-f32", "q2_k"},    {"llama-moe-f32", "q4_k_s"}, {"stablelm-f32", "q5_1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[512], mine[512], theirs[512], cmd[2048];
        snprintf(in, sizeof in, "../shared/models/tiny/%s.gguf", cases[i][0]);
        snprintf(mine, sizeof mine, "%s/h.gguf", test_tmpdir());
        snprintf(theirs, sizeof theirs, "%s/l.gguf", test_tmpdir());
        snprintf(cmd, sizeof cmd, "%s quantize %s %s %s", oracle, in, theirs, cases[i][1]);
        if (test_run(cmd, NULL, NULL) != 0) {
            test_skip("llama-quantize comparison: the oracle does not run");
            return;
        }
        herd_quantize_params p = {.in_path = in, .out_path = mine, .type = cases[i][1]};
        CHECKF(herd_quantize(&p, NULL) == HERD_OK, "%s", herd_errmsg());
        CHECKF(same_file(mine, theirs), "%s %s differs from llama-quantize's", cases[i][0],
               cases[i][1]);
        unlink(mine);
        unlink(theirs);
    }
}

/* `herd quantize IN OUT TYPE` where OUT is IN under some name. */
static void check_same_file(void)
{
    char src[512], in[512], alias[512], cmd[2048];
    if (!test_shared("models/tiny/mpt-f32.gguf", src, sizeof src)) return;
    size_t len = 0, now_len = 0;
    char *orig = test_read_file(src, &len), *err = NULL;
    snprintf(in, sizeof in, "%s/in.gguf", test_tmpdir());
    CHECK(orig && test_write_file(in, orig, len));
    static const char *const how[] = {"same name", "symlink", "hard link"};
    for (int k = 0; k < 3; k++) {
        snprintf(alias, sizeof alias, "%s/alias-%d.gguf", test_tmpdir(), k);
        if (k == 0) snprintf(alias, sizeof alias, "%s", in);
        if (k == 1) CHECK(symlink(in, alias) == 0);
        if (k == 2) CHECK(link(in, alias) == 0);
        snprintf(cmd, sizeof cmd, "%s quantize -q %s %s q8_0", test_herd_bin(), in, alias);
        const int rc = test_run(cmd, NULL, &err);
        CHECKF(rc == 1, "%s: exit %d", how[k], rc);
        CHECKF(err && strstr(err, "input") && strchr(err, '\n') == err + strlen(err) - 1,
               "%s: want one error line, got [%s]", how[k], err ? err : "");
        free(err);
        char *now = test_read_file(in, &now_len);
        CHECKF(now && now_len == len && memcmp(now, orig, len) == 0, "%s: the input changed",
               how[k]);
        free(now);
    }
    free(orig);
}

static int n_progress;

static void count_progress(const herd_quantize_progress *q, void *user)
{
    CHECK(q->i == n_progress && q->n == *(int *)user && q->name && q->bytes_out > 0);
    n_progress++;
}

/* The library prints nothing: progress comes through the callback. */
static void check_progress(void)
{
    char in[512], out[512], *err = NULL;
    if (!test_shared("models/tiny/mpt-f32.gguf", in, sizeof in)) return;
    snprintf(out, sizeof out, "%s/progress.gguf", test_tmpdir());
    herd_quantize_stats s = {0};
    int n = 0;
    gguf_file *f = NULL;
    if (herd_gguf_open(in, &f) == HERD_OK) n = (int)herd_gguf_n_tensors(f);
    herd_gguf_close(f);
    herd_quantize_params p = {.in_path = in,
                              .out_path = out,
                              .type = "q4_0",
                              .progress = count_progress,
                              .progress_user = &n};
    /* stderr to a file while the library runs: it must stay empty. */
    char errpath[600];
    snprintf(errpath, sizeof errpath, "%s/lib.err", test_tmpdir());
    fflush(stderr);
    const int saved = dup(2);
    FILE *ef = fopen(errpath, "w");
    if (ef) dup2(fileno(ef), 2);
    const herd_status st = herd_quantize(&p, &s);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (ef) fclose(ef);
    CHECKF(st == HERD_OK, "%s", herd_errmsg());
    CHECK(n > 0 && n_progress == n && s.n_tensors == n);
    size_t elen = 1;
    err = test_read_file(errpath, &elen);
    CHECKF(err && elen == 0, "the library wrote to stderr: %s", err ? err : "");
    free(err);
    unlink(out);
}

static void check_cli(void)
{
    char cmd[1024], *err = NULL, out[512];
    if (!test_shared("models/tiny/llama-q4_0.gguf", out, sizeof out) ||
        !test_shared("models/tiny/mpt-f32.gguf", out, sizeof out))
        return;
    snprintf(out, sizeof out, "%s/cli.gguf", test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s quantize ../shared/models/tiny/llama-f32.gguf %s q9_9",
             test_herd_bin(), out);
    CHECK(test_run(cmd, NULL, &err) == 2);
    CHECK(err && strstr(err, "unknown type"));
    free(err);
    snprintf(cmd, sizeof cmd, "%s quantize -q ../shared/models/tiny/llama-q4_0.gguf %s q8_0",
             test_herd_bin(), out);
    CHECK(test_run(cmd, NULL, &err) == 1);
    CHECK(err && strstr(err, "requantizing"));
    CHECK(access(out, F_OK) != 0); /* nothing half-written left behind */
    free(err);
    snprintf(cmd, sizeof cmd, "%s quantize -q ../shared/models/tiny/mpt-f32.gguf %s q4_0",
             test_herd_bin(), out);
    CHECK(test_run(cmd, NULL, NULL) == 0);
    herd_model *m = NULL;
    CHECKF(herd_model_load(out, NULL, &m) == HERD_OK, "%s", herd_errmsg());
    herd_model_free(m);
    unlink(out);
}

int main(void)
{
    static const char *const ladder[] = {"f16",  "bf16", "q8_0",   "q4_0",   "q4_1",   "q5_0",
                                         "q5_1", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"};
    for (size_t i = 0; i < sizeof ladder / sizeof ladder[0]; i++) {
        char shipped[128];
        snprintf(shipped, sizeof shipped, "models/tiny/ladder-%s.gguf", ladder[i]);
        check_shipped("models/tiny/ladder-f32.gguf", ladder[i], shipped);
    }
    check_shipped("models/tiny/llama-f32.gguf", "q4_0", "models/tiny/llama-q4_0.gguf");
    check_shipped("models/tiny/llama-f32.gguf", "q8_0", "models/tiny/llama-q8_0.gguf");
    check_mixes();
    check_oracle();
    check_cli();
    check_same_file();
    check_progress();
    return test_report();
}
