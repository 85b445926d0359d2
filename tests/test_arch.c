/*
 * test_arch.c — what parity with llama.cpp cannot show for the architecture
 * rows: the sliding window and the mixture of experts.
 *
 *   Sliding window: in a one-layer model with window W, the logits at
 *   position p depend on tokens p-W+1..p only, so they must equal those of a
 *   fresh context fed just those W tokens at their original positions. And a
 *   10,000-token generation with W = 64 keeps the cache (and the process's
 *   resident memory) flat.
 *
 *   Experts: after one token, every expert the router did not choose is
 *   overwritten with NaN in a copy of the model; the copy must give the same,
 *   finite logits — so no unchosen expert was read.
 */
#include "helpers.h"
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define TINY "../shared/models/tiny/"

/* Copy a GGUF file, overriding block_count (if > 0) and dropping the tensors
 * of later layers; poison() may rewrite a tensor's data. */
typedef void (*poison_fn)(const gguf_tensor *t, uint8_t *data, void *arg);

static bool rewrite(const char *in, const char *out, const char *arch, int n_layer,
                    poison_fn poison, void *arg)
{
    gguf_file *f;
    if (herd_gguf_open(in, &f)) return false;
    gguf_writer *w = herd_gguf_writer_new();
    char key[96];
    snprintf(key, sizeof key, "%s.block_count", arch);
    for (int64_t i = 0; i < herd_gguf_n_kv(f); i++) {
        const gguf_kv *kv = herd_gguf_kv_at(f, i);
        if (n_layer > 0 && kv->key.len == strlen(key) && !memcmp(kv->key.ptr, key, kv->key.len))
            herd_gguf_set_u32(w, key, (uint32_t)n_layer);
        else
            CHECK(herd_gguf_copy_kv(w, kv) == HERD_OK);
    }
    for (int64_t i = 0; i < herd_gguf_n_tensors(f); i++) {
        const gguf_tensor *t = herd_gguf_tensor_at(f, i);
        int layer = -1;
        if (sscanf(t->name_z, "blk.%d.", &layer) == 1 && n_layer > 0 && layer >= n_layer) continue;
        uint8_t *data = malloc(t->nbytes);
        memcpy(data, t->data, t->nbytes);
        if (poison) poison(t, data, arg);
        CHECK(herd_gguf_add_tensor(w, t->name_z, t->type, t->n_dims, t->ne, data, t->nbytes) ==
              HERD_OK);
        free(data);
    }
    bool ok = herd_gguf_write_file(w, out) == HERD_OK;
    herd_gguf_writer_free(w);
    herd_gguf_close(f);
    return ok;
}

static herd_ctx *ctx_with(herd_model *m, int n_ctx, int n_batch, int swa)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.swa = swa;
    cp.n_threads = 1; /* tiny models: threads would only wait for each other */
    herd_ctx *c = NULL;
    CHECKF(herd_ctx_new(m, &cp, &c) == HERD_OK, "%s", herd_errmsg());
    return c;
}

static void test_window_exact(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/swa1.gguf", test_tmpdir());
    if (!rewrite(TINY "llama-swa-f32.gguf", path, "llama", 1, NULL, NULL)) {
        CHECK(!"could not write the one-layer model");
        return;
    }
    herd_model *m;
    if (herd_model_load(path, NULL, &m)) {
        CHECKF(0, "%s", herd_errmsg());
        return;
    }
    const int W = 8, N = 40, V = herd_n_vocab(m);
    CHECK(m->hp.swa_window == W);
    int32_t ids[64], pos[64];
    int8_t want[64];
    for (int i = 0; i < N; i++) ids[i] = (int32_t)((i * 37 + 11) % V), pos[i] = i, want[i] = 1;
    herd_ctx *full = ctx_with(m, 64, 64, -1);
    herd_batch b = {.n_tokens = N, .token = ids, .pos = pos, .logits = want};
    CHECK(herd_decode(full, &b) == HERD_OK);
    int exact = 0;
    for (int p = W; p < N; p += 5) {
        herd_ctx *c = ctx_with(m, 64, 64, -1);
        herd_batch w = {.n_tokens = W, .token = ids + p - W + 1, .pos = pos + p - W + 1};
        CHECK(herd_decode(c, &w) == HERD_OK);
        const float *a = herd_get_logits(full, p), *z = herd_get_logits(c, W - 1);
        double d = 0;
        for (int i = 0; i < V; i++) d = fmax(d, fabs((double)a[i] - z[i]));
        CHECKF(d < 1e-6, "window: position %d differs by %g from its last %d tokens alone", p, d,
               W);
        exact += d == 0.0;
        herd_ctx_free(c);
    }
    fprintf(stderr, "window: %d of %d positions bit-identical\n", exact, (N - W + 4) / 5);
    /* And the window matters: without it position N-1 differs. */
    herd_ctx *nowin = ctx_with(m, 64, 64, 0);
    CHECK(herd_decode(nowin, &b) == HERD_OK);
    double d = 0;
    for (int i = 0; i < V; i++)
        d = fmax(d,
                 fabs((double)herd_get_logits(nowin, N - 1)[i] - herd_get_logits(full, N - 1)[i]));
    CHECK(d > 1e-4);
    herd_ctx_free(nowin);
    herd_ctx_free(full);
    herd_model_free(m);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * 4;
}

static void test_window_memory(void)
{
    herd_model *m;
    if (herd_model_load(TINY "llama-swa-f32.gguf", NULL, &m)) return;
    herd_ctx *c = ctx_with(m, 10240, 512, 64);
    CHECK(c && c->kv_swa.n_cells == 64 - 1 + 512);
    int32_t tok = 1;
    long rss_1k = 0;
    for (int p = 0; c && p < 10000; p++) {
        herd_batch b = {.n_tokens = 1, .token = &tok, .pos = &p};
        if (herd_decode(c, &b) != HERD_OK) {
            CHECKF(0, "token %d: %s", p, herd_errmsg());
            break;
        }
        const float *l = herd_get_logits(c, 0);
        int best = 0;
        for (int i = 1; i < herd_n_vocab(m); i++) best = l[i] > l[best] ? i : best;
        tok = best;
        CHECK(c->kv_swa.n_used <= 64);
        if (p == 1000) rss_1k = rss_kb();
    }
    long rss_10k = rss_kb();
    fprintf(stderr,
            "window 64: %d cells, resident %ld kB after 1,000 tokens, %ld kB after 10,000\n",
            c ? c->kv_swa.n_cells : 0, rss_1k, rss_10k);
#ifndef __SANITIZE_ADDRESS__
    /* (Under ASan freed blocks sit in its quarantine, so RSS grows anyway.) */
    CHECK(rss_10k - rss_1k < 1024);
#endif
    herd_ctx_free(c);
    herd_model_free(m);
}

/* Poison every expert not in the chosen set of its layer. */
typedef struct {
    bool chosen[HERD_MAX_LAYERS][256];
    int n_expert;
} moe_choice;

static void poison_unchosen(const gguf_tensor *t, uint8_t *data, void *arg)
{
    const moe_choice *ch = arg;
    int il;
    if (sscanf(t->name_z, "blk.%d.", &il) != 1 || !strstr(t->name_z, "_exps.weight")) return;
    size_t per = t->nbytes / (size_t)ch->n_expert;
    const float nan = NAN;
    for (int e = 0; e < ch->n_expert; e++)
        if (!ch->chosen[il][e])
            for (size_t i = 0; i + 4 <= per; i += 4) memcpy(data + (size_t)e * per + i, &nan, 4);
}

static void test_experts_untouched(void)
{
    herd_model *m;
    if (herd_model_load(TINY "llama-moe-f32.gguf", NULL, &m)) return;
    const int V = herd_n_vocab(m), K = m->hp.n_expert_used;
    moe_choice *ch = calloc(1, sizeof *ch);
    ch->n_expert = m->hp.n_expert;
    herd_ctx *c = ctx_with(m, 16, 1, -1);
    int32_t tok = 5, pos = 0;
    herd_batch b = {.n_tokens = 1, .token = &tok, .pos = &pos};
    float *ref = malloc((size_t)V * sizeof *ref);
    /* One token reads exactly K experts per layer. */
    CHECK(herd_decode(c, &b) == HERD_OK);
    memcpy(ref, herd_get_logits(c, 0), (size_t)V * sizeof *ref);
    CHECK(c->expert_rows_read ==
          (uint64_t)m->hp.n_layer * K * (2u * (uint64_t)m->hp.n_ff + (uint64_t)m->hp.n_embd));
    herd_ctx_free(c);
    /* The router's choice per layer: rerun with a model cut to l+1 layers and
     * read the selection of its last layer. */
    for (int il = 0; il < m->hp.n_layer; il++) {
        char path[512];
        snprintf(path, sizeof path, "%s/moe-cut%d.gguf", test_tmpdir(), il);
        CHECK(rewrite(TINY "llama-moe-f32.gguf", path, "llama", il + 1, NULL, NULL));
        herd_model *mc;
        if (herd_model_load(path, NULL, &mc)) continue;
        herd_ctx *cc = ctx_with(mc, 16, 1, -1);
        CHECK(herd_decode(cc, &b) == HERD_OK);
        for (int j = 0; j < K; j++) ch->chosen[il][cc->moe_sel[j]] = true;
        herd_ctx_free(cc);
        herd_model_free(mc);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/moe-poisoned.gguf", test_tmpdir());
    CHECK(rewrite(TINY "llama-moe-f32.gguf", path, "llama", 0, poison_unchosen, ch));
    herd_model *mp;
    if (herd_model_load(path, NULL, &mp) == HERD_OK) {
        herd_ctx *cp = ctx_with(mp, 16, 1, -1);
        CHECK(herd_decode(cp, &b) == HERD_OK);
        const float *l = herd_get_logits(cp, 0);
        bool same = true;
        for (int i = 0; i < V; i++) same &= l[i] == ref[i];
        CHECKF(same, "logits changed when unchosen experts were poisoned");
        herd_ctx_free(cp);
        herd_model_free(mp);
    }
    free(ref);
    free(ch);
    herd_model_free(m);
}

static void test_info_features(void)
{
    struct {
        const char *file, *expect;
    } cases[] = {
        {"llama-moe-f32.gguf", "MoE 4 experts (2 used)"},
        {"llama-swa-f32.gguf", "SWA 8"},
        {"falcon7b-f32.gguf", "MQA"},
        {"mpt-f32.gguf", "ALiBi"},
        {"phi2-f32.gguf", "partial 8/16"},
        {"gptneox-f32.gguf", "parallel attention+MLP"},
        {"stablelm-qknorm-f32.gguf", "q/k norm"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, TINY "%s", cases[i].file);
        herd_model *m;
        if (herd_model_load(path, NULL, &m)) {
            CHECKF(0, "%s: %s", cases[i].file, herd_errmsg());
            continue;
        }
        herd_model_info in;
        herd_model_get_info(m, &in);
        CHECKF(strstr(in.features, cases[i].expect), "%s: features '%s' lack '%s'", cases[i].file,
               in.features, cases[i].expect);
        herd_model_free(m);
    }
}

int main(void)
{
    char path[512];
    if (!test_shared("models/tiny/llama-swa-f32.gguf", path, sizeof path)) return test_report();
    test_window_exact();
    test_window_memory();
    test_experts_untouched();
    test_info_features();
    return test_report();
}
