/*
 * cmd_run.c — `herd run` (generate; with --chat, -p is one chat message in
 * the model's prompt format) and `herd logits` (dump every position's logits
 * for parity checks).
 */
#include "cli.h"

#include "chat/chat.h"
#include "util/util.h"
#include "grammar/grammar.h"
#include "grammar/schema.h"
#include "sample/sample.h"

#include <stdlib.h>
#include <string.h>

static herd_ctx *make_ctx(herd_model *m, const cli_opts *o, int n_seq)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = o->n_ctx;
    cp.n_batch = o->n_batch;
    cp.n_threads = o->n_threads;
    cp.n_seq_max = n_seq;
    cp.type_k = o->cache_type_k, cp.type_v = o->cache_type_v;
    cp.swa = o->swa;
    herd_ctx *c;
    if (herd_ctx_new(m, &cp, &c)) {
        cli_fail("context");
        return NULL;
    }
    return c;
}

/* Decode ids[0..n) at positions start.. in batches of n_batch; want_all asks
 * for every position's logits (written through sink), else only the last's. */
static int decode_all(herd_ctx *c, const cli_opts *o, const int32_t *ids, int n, int start,
                      bool want_all, FILE *sink, int n_vocab)
{
    int nb = o->n_batch > 0 ? o->n_batch : 512;
    int32_t *pos = malloc((size_t)nb * sizeof *pos);
    int8_t *want = malloc((size_t)nb);
    if (!pos || !want) {
        free(pos), free(want);
        return cli_error(1, "out of memory");
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i += nb) {
        int k = n - i < nb ? n - i : nb;
        for (int j = 0; j < k; j++) {
            pos[j] = start + i + j;
            want[j] = want_all || i + j == n - 1;
        }
        herd_batch b = {.n_tokens = k, .token = ids + i, .pos = pos, .logits = want};
        if (herd_decode(c, &b)) {
            rc = cli_fail("decode");
            break;
        }
        for (int j = 0; sink && j < k; j++)
            if (fwrite(herd_get_logits(c, j), sizeof(float), (size_t)n_vocab, sink) !=
                (size_t)n_vocab)
                rc = cli_error(1, "write failed");
    }
    free(pos);
    free(want);
    return rc;
}

static void print_piece(const herd_model *m, int32_t id)
{
    char buf[256];
    int n = herd_token_to_piece(m, id, false, buf, sizeof buf);
    if (n > 0 && n <= (int)sizeof buf) fwrite(buf, 1, (size_t)n, stdout);
    fflush(stdout);
}

/* --grammar, --grammar-file, --json-schema: the constraint, or none. */
typedef struct {
    herd_grammar *g;
    herd_gvocab *v;
    herd_gmatch *m;
} constraint;

static void constraint_free(constraint *k)
{
    herd_gmatch_free(k->m);
    herd_gvocab_free(k->v);
    herd_grammar_free(k->g);
}

static int constraint_make(const herd_model *model, const cli_opts *o, constraint *k)
{
    memset(k, 0, sizeof *k);
    int given = !!o->grammar + !!o->grammar_file + !!o->json_schema;
    if (given == 0) return 0;
    if (given > 1) return cli_error(2, "give one of --grammar, --grammar-file and --json-schema");
    char *text = NULL;
    size_t len = 0;
    herd_status st = HERD_OK;
    if (o->grammar_file) {
        FILE *f = fopen(o->grammar_file, "rb");
        if (!f) return cli_error(1, "cannot read %s", o->grammar_file);
        text = malloc(HERD_GRAMMAR_MAX_BYTES + 1);
        len = text ? fread(text, 1, HERD_GRAMMAR_MAX_BYTES + 1, f) : 0;
        fclose(f);
        if (!text) return cli_error(1, "out of memory");
    } else if (o->json_schema) {
        st = herd_schema_text_to_gbnf(o->json_schema, strlen(o->json_schema), &text);
        len = text ? strlen(text) : 0;
    } else {
        text = strdup(o->grammar);
        len = text ? strlen(text) : 0;
    }
    if (!st) st = herd_grammar_parse(text ? text : "", len, &k->g);
    free(text);
    if (!st) st = herd_gvocab_from_model(model, &k->v);
    if (!st) st = herd_gmatch_new(k->g, k->v, &k->m);
    if (st) {
        constraint_free(k);
        return cli_fail(o->json_schema ? "--json-schema" : "--grammar");
    }
    return 0;
}

static int generate(herd_model *m, herd_ctx *c, const cli_opts *o, int32_t *ids, int n_prompt)
{
    herd_sampler *s;
    constraint k;
    int rc_k = constraint_make(m, o, &k);
    if (rc_k) return rc_k;
    if (herd_sampler_new(&o->sp, herd_n_vocab(m), &s)) {
        constraint_free(&k);
        return cli_fail("sampler");
    }
    for (int i = 0; i < n_prompt; i++) herd_sampler_accept(s, ids[i]);
    if (k.m && herd_sampler_set_grammar(s, k.m)) {
        herd_sampler_free(s);
        constraint_free(&k);
        return cli_fail("grammar");
    }
    int n_ctx = herd_ctx_n_ctx(c);
    int n_predict = o->n_predict < 0 ? n_ctx - n_prompt : o->n_predict;
    double t0 = herd_time();
    int rc = decode_all(c, o, ids, n_prompt, 0, false, NULL, 0);
    double t1 = herd_time();
    int n_gen = 0, pos = n_prompt;
    /* the prompt's last token is the last of its last batch */
    const float *logits = rc ? NULL : herd_get_logits(c, (n_prompt - 1) % o->n_batch);
    while (!rc && n_gen < n_predict) {
        if (pos >= n_ctx) {
            fprintf(stderr, "\nherd: context full (%d tokens), stopping\n", n_ctx);
            break;
        }
        if (k.m) herd_sampler_set_budget(s, n_predict - n_gen); /* close JSON in time */
        int32_t tok = herd_sampler_sample(s, logits);
        if (tok < 0) { /* the grammar admits nothing: end the output */
            fprintf(stderr, "\nherd: %s\n", herd_errmsg());
            break;
        }
        if (herd_token_is_eog(m, tok)) break;
        herd_sampler_accept(s, tok);
        print_piece(m, tok);
        n_gen++;
        herd_batch b = {.n_tokens = 1, .token = &tok, .pos = &pos};
        if (herd_decode(c, &b)) rc = cli_fail("decode");
        logits = herd_get_logits(c, 0);
        pos++;
    }
    double t2 = herd_time();
    /* The text ends with a newline, on stdout before the timing on stderr. */
    printf("\n");
    fflush(stdout);
    fprintf(stderr,
            "herd: prompt %d tokens in %.3f s (%.2f tokens/s), generated %d tokens in %.3f s (%.2f "
            "tokens/s)\n",
            n_prompt, t1 - t0, n_prompt / (t1 - t0 + 1e-12), n_gen, t2 - t1,
            n_gen / (t2 - t1 + 1e-12));
    herd_sampler_free(s);
    constraint_free(&k);
    return rc;
}

static void print_text(void *user, const char *text, size_t len)
{
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* --chat: -p is one user message (after --system, if given) in the model's
 * chat format (or --chat-template's); only the answer is printed. The
 * conversation machinery is herd chat's (src/chat/conversation.c), so the
 * answer ends at the format's end-of-turn markers too. */
static int run_chat(herd_model *m, herd_ctx *c, const cli_opts *o)
{
    herd_conv_params p = herd_conv_default_params();
    p.chat_template = o->chat_template;
    p.system = o->system;
    p.n_predict = o->n_predict;
    p.sampling = o->sp;
    herd_conv *conv;
    if (herd_conv_new(m, c, &p, &conv)) return cli_fail("chat");
    herd_model_info in;
    herd_model_get_info(m, &in);
    if (!o->chat_template && !in.has_chat_template)
        fprintf(stderr,
                "herd: %s has no chat template; using the built-in '%s' format (chosen "
                "from its architecture and name; --chat-template NAME|FILE picks another)\n",
                o->model, herd_conv_format(conv));
    herd_conv_io io = {.text = print_text};
    double t0 = herd_time();
    int rc = herd_conv_reply(conv, o->prompt ? o->prompt : "", &io, NULL) ? cli_fail("chat") : 0;
    double t1 = herd_time();
    herd_conv_stats s;
    herd_conv_get_stats(conv, &s);
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "herd: chat prompt %d tokens, generated %d tokens in %.3f s (%.2f tokens/s)\n",
            s.n_prompt, s.n_generated, t1 - t0, s.n_generated / (t1 - t0 + 1e-12));
    herd_conv_free(conv);
    return rc;
}

/* -f FILE: the prompt is the file's text, less one final newline, as
 * llama.cpp's -f reads it. */
static char *prompt_from_file(cli_opts *o)
{
    if (o->prompt || o->ids) {
        cli_error(2, "run: -f FILE and %s are two prompts; give one", o->prompt ? "-p" : "--ids");
        return NULL;
    }
    size_t len = 0;
    char *text = cli_read_file(o->file, &len);
    if (!text) return NULL;
    if (len && text[len - 1] == '\n') text[--len] = 0;
    if (strlen(text) != len) {
        cli_error(1, "run: %s holds a NUL byte; a prompt is text", o->file);
        free(text);
        return NULL;
    }
    o->prompt = text;
    return text;
}

int cmd_run(int argc, char **argv)
{
    cli_opts o;
    if (!cli_parse(argc, argv, CLI_MODEL | CLI_PROMPT | CLI_FILE | CLI_GEN | CLI_CTX | CLI_CHAT,
                   &o))
        return 2;
    if (o.chat && (o.grammar || o.grammar_file || o.json_schema)) /* refused, never ignored */
        return cli_error(2, "--grammar, --grammar-file and --json-schema do not apply to --chat");
    char *file_prompt = NULL;
    if (o.file && !(file_prompt = prompt_from_file(&o))) return o.prompt || o.ids ? 2 : 1;
    double t0 = herd_time();
    herd_model *m = cli_load_model(&o);
    if (!m) {
        free(file_prompt);
        return 1;
    }
    fprintf(stderr, "herd: loaded %s in %.3f s\n", o.model, herd_time() - t0);
    int n = 0, rc = 1;
    int32_t *ids = o.chat ? NULL : cli_prompt_ids(m, &o, &n);
    herd_ctx *c = ids || o.chat ? make_ctx(m, &o, 1) : NULL;
    if (c && o.chat)
        rc = run_chat(m, c, &o);
    else if (c && n == 0)
        rc = cli_error(1, "the prompt is empty");
    else if (c && n > herd_ctx_n_ctx(c))
        rc = cli_error(1, "prompt has %d tokens, more than the context (%d)", n, herd_ctx_n_ctx(c));
    else if (c) {
        if (!o.no_display_prompt && o.prompt) fputs(o.prompt, stdout);
        rc = generate(m, c, &o, ids, n);
    }
    herd_ctx_free(c);
    free(ids);
    free(file_prompt);
    herd_model_free(m);
    return rc;
}

int cmd_logits(int argc, char **argv)
{
    cli_opts o;
    if (!cli_parse(argc, argv, CLI_MODEL | CLI_PROMPT | CLI_FILE | CLI_CTX | CLI_OUT, &o)) return 2;
    if (!o.out) return cli_error(2, "logits: --out FILE is required");
    char *file_prompt = NULL;
    if (o.file && !(file_prompt = prompt_from_file(&o))) return 2;
    if (!o.prompt && !o.ids)
        return cli_error(2, "logits: -p TEXT, -f FILE or --ids \"1 2 3\" is required");
    herd_model *m = cli_load_model(&o);
    int n = 0, rc = 1;
    int32_t *ids = m ? cli_prompt_ids(m, &o, &n) : NULL;
    herd_ctx *c = ids ? make_ctx(m, &o, 1) : NULL;
    herd_out out;
    if (c && (n == 0 || n > herd_ctx_n_ctx(c)))
        rc = cli_error(1, "need 1..%d tokens, got %d", herd_ctx_n_ctx(c), n);
    else if (c && herd_out_open(&out, o.out, o.model))
        rc = cli_fail("logits");
    else if (c) {
        /* Written to a temporary file renamed into place: a failed run leaves
         * no half file, and --out can never truncate the model being read. */
        rc = decode_all(c, &o, ids, n, 0, true, out.fp, herd_n_vocab(m));
        if (rc)
            herd_out_abort(&out);
        else if (herd_out_commit(&out))
            rc = cli_fail("logits");
        else
            fprintf(stderr, "herd: wrote %d x %d logits to %s\n", n, herd_n_vocab(m), o.out);
    }
    herd_ctx_free(c);
    free(ids);
    free(file_prompt);
    herd_model_free(m);
    return rc;
}
