/*
 * grammar_cost.c — what a grammar adds to each generated token, on a real
 * 32,000-token vocabulary (Llama's SentencePiece, TinyLlama's).
 *
 * The model's forward pass does not depend on the grammar, so the cost is the
 * sampler's: this program runs the sampler over logits rows for many steps,
 * accepting each token into the grammar, and measures thread CPU time per
 * token (immune to other processes' load, unlike wall time):
 *
 *   free       the sampler alone, no grammar
 *   follows    with a JSON schema grammar; the logits favour a token the
 *              grammar allows (a model that follows the format): check only
 *   fights     with the grammar; the logits favour a refused token at every
 *              step (a random model): a mask at every token, from the
 *              matcher's cache when the state was seen before
 *   no cache   the same, every mask walked over the trie (a state never seen)
 *   new state  one mask walked over the whole trie (no cache), inside a
 *              JSON string where most tokens are allowed: the worst step
 *
 * usage: grammar_cost VOCAB.gguf [STEPS]
 */
#include "gguf/gguf.h"
#include "grammar/grammar.h"
#include "grammar/schema.h"
#include "sample/sample.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *SCHEMA =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":"
    "\"integer\",\"minimum\":0,\"maximum\":150},\"email\":{\"type\":\"string\"},\"tags\":{\"type\":"
    "\"array\",\"items\":{\"type\":\"string\"}},\"address\":{\"type\":\"object\",\"properties\":{"
    "\"city\":{\"type\":\"string\"},\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}},"
    "\"required\":[\"city\",\"zip\"]}},\"required\":[\"name\",\"age\",\"email\",\"tags\","
    "\"address\"]}";

/* herd_gvocab_from_model's work, from a vocabulary-only file. */
static herd_status gvocab_of(const herd_vocab *vb, herd_gvocab **out)
{
    int n = herd_vocab_n_tokens(vb);
    char **pieces = calloc((size_t)n, sizeof *pieces);
    int *lens = calloc((size_t)n, sizeof *lens);
    bool *eog = calloc((size_t)n, sizeof *eog);
    for (int i = 0; i < n; i++) {
        char buf[256];
        int len = herd_vocab_token_to_piece(vb, i, false, buf, sizeof buf);
        lens[i] = len > 0 && len <= (int)sizeof buf ? len : 0;
        pieces[i] = malloc((size_t)lens[i] + 1);
        memcpy(pieces[i], buf, (size_t)lens[i]);
        eog[i] = herd_vocab_is_eog(vb, i);
    }
    herd_status st = herd_gvocab_from_pieces(n, (const char *const *)pieces, lens, eog, out);
    for (int i = 0; i < n; i++) free(pieces[i]);
    free(pieces), free(lens), free(eog);
    return st;
}

/* mode 0: free, 1: follows, 2: fights, 3: fights without the mask cache. Returns CPU seconds per
 * token. */
static double run(const herd_vocab *m, const herd_gvocab *v, const herd_grammar *g, int mode,
                  int steps, int *n_masks)
{
    int n = herd_vocab_n_tokens(m);
    herd_sampler_params p = herd_sampler_default_params();
    p.seed = 1;
    herd_sampler *s;
    herd_gmatch *gm = NULL;
    if (herd_sampler_new(&p, n, &s)) return -1;
    if (mode && (herd_gmatch_new(g, v, &gm) || herd_sampler_set_grammar(s, gm))) return -1;
    if (mode == 3) herd_gmatch_use_cache(gm, false), mode = 2;
    float *logits = malloc((size_t)n * sizeof *logits);
    uint64_t x = 88172645463325252ULL;
    double t = 0;
    int done = 0;
    *n_masks = 0;
    while (done < steps) {
        for (int i = 0; i < n; i++) { /* a fresh row: logits of a sort of model */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            logits[i] = (float)((x >> 11) * 0x1.0p-53) * 4.0f;
        }
        if (mode) { /* steer the best logit to an allowed or a refused token (found by
                     * single checks: a mask here would warm the matcher's cache) */
            int k = (int)(x % (uint64_t)n);
            for (int i = 0; i < n; i++, k = (k + 1) % n)
                if (herd_gmatch_allows(gm, k) == (mode == 1)) break;
            logits[k] = 10.0f;
        }
        double t0 = cpu_now();
        int32_t tok = herd_sampler_sample(s, logits);
        if (tok >= 0 && mode == 2) (*n_masks)++;
        if (tok >= 0) herd_sampler_accept(s, tok);
        t += cpu_now() - t0;
        done++;
        if (mode && (tok < 0 || herd_gmatch_must_end(gm) || herd_vocab_is_eog(m, tok)))
            herd_gmatch_reset(gm); /* the next JSON document */
    }
    free(logits);
    herd_sampler_free(s);
    herd_gmatch_free(gm);
    return t / steps;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: grammar_cost VOCAB.gguf [STEPS]\n");
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 400;
    gguf_file *f;
    herd_vocab *m;
    if (gguf_open(argv[1], &f) || herd_vocab_load(f, &m)) {
        fprintf(stderr, "grammar_cost: %s\n", herd_errmsg());
        return 1;
    }
    char *gbnf;
    herd_grammar *g;
    herd_gvocab *v;
    double t0 = cpu_now();
    if (gvocab_of(m, &v)) return fprintf(stderr, "%s\n", herd_errmsg()), 1;
    double t_vocab = cpu_now() - t0;
    if (herd_schema_text_to_gbnf(SCHEMA, strlen(SCHEMA), &gbnf) ||
        herd_grammar_parse(gbnf, strlen(gbnf), &g))
        return fprintf(stderr, "%s\n", herd_errmsg()), 1;
    int masks;
    double free_t = run(m, v, g, 0, steps, &masks);
    double follow_t = run(m, v, g, 1, steps, &masks);
    double fight_t = run(m, v, g, 2, steps, &masks);
    double nocache_t = run(m, v, g, 3, steps, &masks);
    /* A state never seen: the mask walks the trie (a fresh matcher each time). */
    bool *allowed = malloc((size_t)herd_vocab_n_tokens(m));
    double cold = 0;
    for (int i = 0; i < 20; i++) {
        herd_gmatch *gm;
        if (herd_gmatch_new(g, v, &gm)) return 1;
        herd_gmatch_accept_text(gm, "{\"name\": \"Jo", 13); /* inside a string: most tokens pass */
        double c0 = cpu_now();
        herd_gmatch_mask(gm, allowed, HERD_GMATCH_NO_BUDGET);
        cold += cpu_now() - c0;
        herd_gmatch_free(gm);
    }
    free(allowed);
    printf("vocabulary: %d tokens, tables built once in %.1f ms\n", herd_vocab_n_tokens(m),
           t_vocab * 1e3);
    printf("per token (thread CPU time, %d steps):\n", steps);
    printf("  sampler alone          %8.3f ms\n", free_t * 1e3);
    printf("  grammar, draw allowed  %8.3f ms  (+%.3f ms)\n", follow_t * 1e3,
           (follow_t - free_t) * 1e3);
    printf("  grammar, draw refused  %8.3f ms  (+%.3f ms, a full mask every token)\n",
           fight_t * 1e3, (fight_t - free_t) * 1e3);
    printf("  grammar, draw refused, no mask cache %8.3f ms  (+%.3f ms)\n", nocache_t * 1e3,
           (nocache_t - free_t) * 1e3);
    printf("  one mask of a new state (inside a string, no cache): %.3f ms\n", cold / 20 * 1e3);
    free(gbnf);
    herd_grammar_free(g);
    herd_gvocab_free(v);
    herd_vocab_free(m);
    gguf_close(f);
    return 0;
}
