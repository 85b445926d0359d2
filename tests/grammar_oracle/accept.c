/*
 * accept.c — llama.cpp's own grammar engine as a judge (built against the
 * oracle's libllama by tests/cli_grammar_oracle.sh).
 *
 *   accept VOCAB.gguf GRAMMAR.gbnf [TEXT_FILE]
 *
 * Exit 0 when llama.cpp parses the grammar and, given TEXT_FILE, accepts its
 * text as a complete output: the text is tokenized with VOCAB (byte-level
 * BPE, so the tokens spell the text exactly), each token is offered to the
 * grammar sampler alone and must keep a finite logit, and at the end the
 * end-of-generation token must be allowed. Exit 1 otherwise (with why).
 */
#include "llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*n + 1);
    if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = 0;
    if (b) b[*n] = 0;
    fclose(f);
    return b;
}

static void quiet(enum ggml_log_level l, const char *t, void *u)
{
    (void)l, (void)t, (void)u;
}

/* Does the grammar let token t come next? */
static int allows(struct llama_sampler *g, llama_token t)
{
    llama_token_data d = {t, 0.0f, 0.0f};
    llama_token_data_array a = {&d, 1, -1, false};
    llama_sampler_apply(g, &a);
    return isfinite(d.logit);
}

int main(int argc, char **argv)
{
    if (argc < 3) return fprintf(stderr, "usage: accept VOCAB GRAMMAR [TEXT]\n"), 2;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *m = llama_model_load_from_file(argv[1], mp);
    if (!m) return fprintf(stderr, "cannot load %s\n", argv[1]), 2;
    const struct llama_vocab *v = llama_model_get_vocab(m);
    long gn, tn = 0;
    char *gram = slurp(argv[2], &gn), *text = argc > 3 ? slurp(argv[3], &tn) : NULL;
    if (!gram || (argc > 3 && !text)) return fprintf(stderr, "cannot read input\n"), 2;
    struct llama_sampler *g = llama_sampler_init_grammar(v, gram, "root");
    if (!g) return printf("llama.cpp refuses the grammar %s\n", argv[2]), 1;
    if (!text) return 0;
    int cap = (int)tn + 16;
    llama_token *ids = malloc((size_t)cap * sizeof *ids);
    int n = llama_tokenize(v, text, (int)tn, ids, cap, false, false);
    if (n < 0) return fprintf(stderr, "tokenize failed\n"), 2;
    for (int i = 0; i < n; i++) {
        if (!allows(g, ids[i])) {
            char piece[64] = "";
            llama_token_to_piece(v, ids[i], piece, sizeof piece - 1, 0, false);
            printf("llama.cpp refuses token %d (\"%s\") at %d of %d\n", ids[i], piece, i, n);
            return 1;
        }
        llama_sampler_accept(g, ids[i]);
    }
    if (!allows(g, llama_vocab_eos(v))) return printf("llama.cpp: the output is not complete\n"), 1;
    llama_sampler_free(g);
    llama_model_free(m);
    free(ids), free(gram), free(text);
    return 0;
}
