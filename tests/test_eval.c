/*
 * test_eval.c — `herd eval` (src/eval/task.c, mc.c) on small generated task
 * files of the four layouts, with the tiny ladder model.
 *
 *  - the requests are lm-evaluation-harness's: HellaSwag's preprocessing
 *    (expected strings computed with the harness's Python code), ARC's and
 *    MMLU's prompts, Winogrande's partial scoring;
 *  - every choice's log-likelihood equals a direct computation that decodes
 *    the whole context+continuation in one batch and sums log-softmax, and
 *    the three metrics follow from those numbers;
 *  - the CLI's --scores agree with `herd logits` on the same tokens, a run is
 *    reproducible, --limit works;
 *  - malformed files are refused with one line naming FILE:LINE.
 */
#include "eval/eval.h"
#include "helpers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *HS =
    "{\"activity_label\": \"Roof shingle removal\", \"ctx_a\": \"A man is sitting on a roof.\", "
    "\"ctx_b\": \"hE Is\", \"endings\": [\"using wrap to wrap a pair of skis.\", \"ripping level "
    "tiles off.\", \"holding a rubik's cube.\", \"starting to pull up roofing.\"], \"label\": "
    "\"3\"}\n"
    "{\"activity_label\": \"Making a cake\", \"ctx\": \"[header] How to bake [title] Preheat.  "
    "[step] Mix the flour.\", \"endings\": [\"Bake it [substeps] for an hour.\", \"Eat the  "
    "flour.\", \"Put it away.\", \"Sing.\"], \"label\": 0}\n"
    "\n"
    "{\"ctx\": \"The cat sat on the\", \"endings\": [\"mat.\", \"dog.\", \"moon.\", \"car.\"], "
    "\"label\": 0}\n";

static const char *ARC =
    "{\"question\": \"Which gas do plants take in?\", \"choices\": {\"text\": [\"oxygen\", "
    "\"carbon dioxide\", \"helium\"], \"label\": [\"1\", \"2\", \"3\"]}, \"answerKey\": \"2\"}\n"
    "{\"question\": \"What makes days shorter?\", \"choices\": {\"text\": [\"Slower spin.\", "
    "\"Faster spin.\", \"More moons.\", \"Less light.\"], \"label\": [\"A\", \"B\", \"C\", "
    "\"D\"]}, \"answerKey\": \"B\"}\n";

static const char *MMLU =
    "{\"question\": \"Find the degree of Q(sqrt(2)) over Q.\", \"subject\": "
    "\"abstract_algebra\", \"choices\": [\"0\", \"2\", \"4\", \"6\"], \"answer\": 1}\n"
    "{\"question\": \"  What is 2+2? \", \"choices\": [\"3\", \"4\", \"5\", \"22\"], \"answer\": "
    "\"B\"}\n";

static const char *WINO =
    "{\"sentence\": \"Sarah was a better surgeon than Maria so _ got the harder cases.\", "
    "\"option1\": \"Sarah\", \"option2\": \"Maria\", \"answer\": \"1\"}\n"
    "{\"sentence\": \"The trophy does not fit in the case because the _ is too large.\", "
    "\"option1\": \"trophy\", \"option2\": \"case\", \"answer\": \"1\"}\n";

static void test_preprocess(void)
{
    /* Expected values: lm-evaluation-harness's hellaswag preprocess(). */
    static const char *cases[][2] = {
        {"  [header] How to bake a cake [title] Preheat the oven.  [step] Mix   the flour. \n",
         " How to bake a cake. Preheat the oven.  Mix  the flour."},
        {"a [b\nc] d", "a [b\nc] d"},
        {"x [unclosed", "x [unclosed"},
        {"Making a cake: [header] How to bake [title] Preheat.  [step] Mix the flour.",
         "Making a cake: How to bake. Preheat.  Mix the flour."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = herd_hellaswag_preprocess(cases[i][0]);
        CHECKF(p && !strcmp(p, cases[i][1]), "case %zu: [%s]", i, p ? p : "(null)");
        free(p);
    }
}

static herd_mc_task *parse(const char *text, const char *name)
{
    herd_mc_task *t = NULL;
    CHECKF(herd_mc_parse(text, strlen(text), name, -1, &t) == HERD_OK, "%s: %s", name,
           herd_errmsg());
    return t;
}

static void test_requests(void)
{
    herd_mc_task *t = parse(HS, "hs.jsonl");
    if (t) {
        CHECK(t->kind == HERD_MC_HELLASWAG && t->n == 3);
        CHECK(t->q[0].line == 1 && t->q[1].line == 2 && t->q[2].line == 4);
        CHECK(
            !strcmp(t->q[0].context[0], "Roof shingle removal: A man is sitting on a roof. He is"));
        CHECK(!strcmp(t->q[0].continuation[2], " holding a rubik's cube."));
        CHECK(t->q[0].gold == 3 && t->q[0].norm_len[2] == 23);
        CHECK(!strcmp(t->q[1].context[1], "Making a cake: How to bake. Preheat.  Mix the flour."));
        CHECK(!strcmp(t->q[1].continuation[0], " Bake it for an hour."));
        CHECK(!strcmp(t->q[1].continuation[1], " Eat the flour."));
        CHECK(!strcmp(t->q[2].context[0], "The cat sat on the"));
    }
    herd_mc_free(t);
    t = parse(ARC, "arc.jsonl");
    if (t) {
        CHECK(t->kind == HERD_MC_ARC && t->q[0].n_choices == 3 && t->q[0].gold == 1);
        CHECK(!strcmp(t->q[0].context[2], "Question: Which gas do plants take in?\nAnswer:"));
        CHECK(!strcmp(t->q[0].continuation[1], " carbon dioxide") && t->q[0].norm_len[1] == 14);
        CHECK(t->q[1].gold == 1);
    }
    herd_mc_free(t);
    t = parse(MMLU, "mmlu.jsonl");
    if (t) {
        CHECK(t->kind == HERD_MC_MMLU && t->q[0].gold == 1 && t->q[1].gold == 1);
        CHECK(!strcmp(t->q[0].context[0],
                      "The following are multiple choice questions (with answers) about abstract "
                      "algebra.\n\nFind the degree of Q(sqrt(2)) over Q.\nA. 0\nB. 2\nC. 4\nD. "
                      "6\nAnswer:"));
        CHECK(!strcmp(t->q[1].context[3], "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer:"));
        CHECK(!strcmp(t->q[1].continuation[3], " D") && t->q[1].norm_len[3] == 1);
    }
    herd_mc_free(t);
    t = parse(WINO, "wg.jsonl");
    if (t) {
        CHECK(t->kind == HERD_MC_WINOGRANDE && t->q[0].gold == 0);
        CHECK(!strcmp(t->q[0].context[1], "Sarah was a better surgeon than Maria so Maria"));
        CHECK(!strcmp(t->q[0].continuation[0], " got the harder cases."));
        CHECK(!strcmp(t->q[0].continuation[1], " got the harder cases."));
        CHECK(t->q[1].norm_len[1] ==
              (int)strlen("The trophy does not fit in the case because the case"));
    }
    herd_mc_free(t);
    herd_mc_task *one = NULL;
    CHECK(herd_mc_parse(HS, strlen(HS), "hs", 1, &one) == HERD_OK && one && one->n == 1);
    herd_mc_free(one);
}

/* ---------------------------------------------------- direct scoring */

static int32_t *tok(herd_model *m, const char *s, int *n)
{
    int cap = (int)strlen(s) + 16;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    CHECK(herd_tokenize(m, s, strlen(s), herd_add_bos(m), false, ids, cap, n) == HERD_OK);
    return ids;
}

/* The harness's request, encoded here from its definition: trailing spaces of
 * the context go to the continuation; context tokens, then the tokens of
 * context+continuation beyond the context's count. */
static int32_t *encode(herd_model *m, const char *ctx, const char *cont, int *n, int *nc)
{
    size_t keep = strlen(ctx);
    while (keep > 0 && ctx[keep - 1] == ' ') keep--;
    char *c = strndup(ctx, keep), *whole = malloc(strlen(ctx) + strlen(cont) + 1);
    strcpy(whole, ctx);
    strcat(whole, cont);
    int nw;
    int32_t *w = tok(m, whole, &nw), *ci = tok(m, c, nc);
    memcpy(w, ci, (size_t)*nc * sizeof *w);
    *n = nw;
    free(ci), free(c), free(whole);
    return w;
}

/* Sum of log p(ids[j+1] | ids[..j]) for j >= from, from one full decode. */
static double direct_ll(herd_model *m, const int32_t *ids, int n, int from)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = cp.n_batch = n;
    herd_ctx *c = NULL;
    CHECK(herd_ctx_new(m, &cp, &c) == HERD_OK);
    int32_t *pos = malloc((size_t)n * sizeof *pos);
    int8_t *want = malloc((size_t)n);
    for (int i = 0; i < n; i++) pos[i] = i, want[i] = 1;
    herd_batch b = {.n_tokens = n, .token = ids, .pos = pos, .logits = want};
    double ll = NAN;
    if (c && herd_decode(c, &b) == HERD_OK) {
        ll = 0;
        for (int j = from; j < n - 1; j++) {
            const float *l = herd_get_logits(c, j);
            double mx = l[0], s = 0;
            for (int v = 1; v < herd_n_vocab(m); v++) mx = l[v] > mx ? l[v] : mx;
            for (int v = 0; v < herd_n_vocab(m); v++) s += exp(l[v] - mx);
            ll += l[ids[j + 1]] - mx - log(s);
        }
    }
    herd_ctx_free(c);
    free(pos), free(want);
    return ll;
}

/* argmax with numpy's tie rule; *margin: gap to the runner-up. */
static int best(const double *v, int n, double *margin)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    *margin = INFINITY;
    for (int i = 0; i < n; i++)
        if (i != b && v[b] - v[i] < *margin) *margin = v[b] - v[i];
    return b;
}

static void check_scores(herd_model *m, const char *text, const char *name)
{
    herd_mc_task *t = parse(text, name);
    int need = 0;
    if (!t || herd_mc_max_tokens(m, t, &need) != HERD_OK) {
        herd_mc_free(t);
        return;
    }
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = need;
    cp.n_batch = 16; /* several batches per choice, to exercise the splitting */
    herd_ctx *c = NULL;
    CHECK(herd_ctx_new(m, &cp, &c) == HERD_OK);
    herd_mc_scores *sc = calloc((size_t)t->n, sizeof *sc);
    herd_mc_result r;
    CHECKF(c && herd_mc_evaluate(c, t, NULL, NULL, sc, &r) == HERD_OK, "%s", herd_errmsg());
    int correct[HERD_MC_N_METRICS] = {0};
    for (int k = 0; c && k < t->n; k++) {
        const herd_mc_question *q = &t->q[k];
        double ll[HERD_MC_MAX_CHOICES], norm[HERD_MC_MAX_CHOICES], per[HERD_MC_MAX_CHOICES];
        for (int i = 0; i < q->n_choices; i++) {
            int n, nc;
            int32_t *ids = encode(m, q->context[i], q->continuation[i], &n, &nc);
            ll[i] = direct_ll(m, ids, n, nc - 1);
            /* Bit-identical when both decodes take the same paths; but a
             * question longer than 64 tokens decoded in one batch takes the
             * tiled attention (as llama.cpp), and batches of 16 tokens or
             * more take the panel products, which add their block sums in
             * another order than the smaller batches' tiles. A last-bit
             * difference that lands on an F16 tie in the KV cache moves the
             * later log-probabilities: measured up to 1.1e-2 over a
             * 60-token continuation (Q8_0 model), so 3e-2 bounds it. */
            CHECKF(fabs(ll[i] - sc[k].ll[i]) < 3e-2, "%s line %d choice %d: %.6f vs direct %.6f",
                   name, q->line, i, sc[k].ll[i], ll[i]);
            CHECK(sc[k].n_tokens[i] == n - nc);
            norm[i] = ll[i] / q->norm_len[i];
            per[i] = ll[i] / (n - nc);
            free(ids);
        }
        const double *by[HERD_MC_N_METRICS] = {ll, norm, per};
        for (int mt = 0; mt < HERD_MC_N_METRICS; mt++) {
            double margin;
            int p = best(by[mt], q->n_choices, &margin);
            correct[mt] += p == q->gold;
            if (margin > 1e-3)
                CHECKF(p == sc[k].pred[mt], "%s line %d metric %d", name, q->line, mt);
        }
    }
    for (int mt = 0; c && mt < HERD_MC_N_METRICS; mt++) {
        double p = (double)correct[mt] / t->n;
        CHECKF(fabs(r.value[mt] - p) < 1e-12 || abs(r.correct[mt] - correct[mt]) <= 1, "%s %s",
               name, herd_mc_metric_name(mt));
        CHECK(fabs(r.stderr_[mt] - sqrt(r.value[mt] * (1 - r.value[mt]) / (t->n - 1))) < 1e-12);
    }
    free(sc);
    herd_ctx_free(c);
    herd_mc_free(t);
}

static void test_scores(void)
{
    char path[512];
    if (!test_shared("models/tiny/ladder-q8_0.gguf", path, sizeof path)) return;
    herd_model_params mp = herd_model_default_params();
    mp.n_threads = 2;
    herd_model *m = NULL;
    CHECK(herd_model_load(path, &mp, &m) == HERD_OK);
    if (!m) return;
    check_scores(m, HS, "hs.jsonl");
    check_scores(m, ARC, "arc.jsonl");
    check_scores(m, MMLU, "mmlu.jsonl");
    check_scores(m, WINO, "wg.jsonl");
    herd_model_free(m);
}

/* ---------------------------------------------------------------- CLI */

static void write_task(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", test_tmpdir(), name);
    CHECK(test_write_file(path, text, strlen(text)));
}

/* The log-likelihood `herd logits` gives for ids, scored from position from. */
static double logits_ll(const char *model, const int32_t *ids, int n, int from)
{
    char cmd[4096], out[600];
    snprintf(out, sizeof out, "%s/l.f32", test_tmpdir());
    int at = snprintf(cmd, sizeof cmd, "%s logits -m %s -t 2 --out %s --ids \"", test_herd_bin(),
                      model, out);
    for (int i = 0; i < n && at < (int)sizeof cmd - 16; i++)
        at += snprintf(cmd + at, sizeof cmd - at, "%s%d", i ? " " : "", ids[i]);
    snprintf(cmd + at, sizeof cmd - at, "\"");
    CHECK(test_run(cmd, NULL, NULL) == 0);
    size_t len;
    float *l = (float *)test_read_file(out, &len);
    const int V = 1024;
    double ll = NAN;
    if (l && len == (size_t)n * V * sizeof(float)) {
        ll = 0;
        for (int j = from; j < n - 1; j++)
            ll += herd_log_softmax_at(l + (size_t)j * V, V, ids[j + 1]);
    }
    free(l);
    return ll;
}

static void test_cli(void)
{
    char model[512], hs[600], cmd[2048];
    if (!test_shared("models/tiny/ladder-q8_0.gguf", model, sizeof model)) return;
    write_task("hs.jsonl", HS, hs, sizeof hs);
    snprintf(cmd, sizeof cmd, "%s eval -m %s --task %s --scores -t 2", test_herd_bin(), model, hs);
    char *out1 = NULL, *out2 = NULL, *err = NULL;
    CHECKF(test_run(cmd, &out1, &err) == 0, "%s", err);
    CHECK(out1 && strstr(out1, "|hellaswag|acc          |") &&
          strstr(out1, "|         |acc_norm     |"));
    CHECK(out1 && strstr(out1, "acc_per_token") && strstr(out1, "llama.cpp"));
    CHECK(err && strstr(err, "100% 3/3"));
    free(err);
    CHECK(test_run(cmd, &out2, NULL) == 0);
    CHECK(out1 && out2 && !strcmp(out1, out2)); /* reproducible */
    /* Line 4, choice 2 (" moon.") against `herd logits` on the same tokens. */
    herd_model_params mp = herd_model_default_params();
    herd_model *m = NULL;
    const char *row = out1 ? strstr(out1, "\n4\t2\t0\t") : NULL;
    CHECK(row != NULL);
    if (row && herd_model_load(model, &mp, &m) == HERD_OK) {
        int n, nc;
        int32_t *ids = encode(m, "The cat sat on the", " moon.", &n, &nc);
        double want = logits_ll(model, ids, n, nc - 1), got = strtod(row + 7, NULL);
        CHECKF(fabs(got - want) < 2e-3, "--scores %.6f, herd logits %.6f", got, want);
        free(ids);
    }
    herd_model_free(m);
    free(out1), free(out2);

    snprintf(cmd, sizeof cmd, "%s eval -m %s --task %s --limit 1", test_herd_bin(), model, hs);
    CHECK(test_run(cmd, &out1, NULL) == 0 && out1 && strstr(out1, "1 questions"));
    free(out1);
}

/* A malformed file: exit 1, one line "herd: eval: FILE:LINE: ..." on stderr. */
static void refused(const char *text, int line, const char *what)
{
    char model[512], path[600], cmd[2048], want[700];
    if (!test_shared("models/tiny/ladder-q8_0.gguf", model, sizeof model)) return;
    write_task("bad.jsonl", text, path, sizeof path);
    snprintf(cmd, sizeof cmd, "%s eval -m %s --task %s", test_herd_bin(), model, path);
    char *err = NULL;
    CHECK(test_run(cmd, NULL, &err) == 1);
    if (line)
        snprintf(want, sizeof want, "herd: eval: %s:%d: ", path, line);
    else
        snprintf(want, sizeof want, "herd: eval: %s: ", path);
    CHECKF(err && !strncmp(err, want, strlen(want)) && strstr(err, what) &&
               strchr(err, '\n') == err + strlen(err) - 1,
           "want [%s...%s], got [%s]", want, what, err ? err : "");
    free(err);
}

static void test_malformed(void)
{
    const char *ok = "{\"ctx\": \"a\", \"endings\": [\"b\", \"c\"], \"label\": 0}\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s{\"ctx\": \"a\", \"endings\": [\"b\"", ok, ok);
    refused(buf, 3, "invalid JSON");
    snprintf(buf, sizeof buf, "%s\n{\"ctx\": \"a\", \"endings\": [\"b\", \"c\"], \"label\": 2}\n",
             ok);
    refused(buf, 3, "'label' is 2, not in 0..1");
    refused("{\"ctx\": \"a\", \"endings\": [\"b\", 3], \"label\": 0}\n", 1, "'endings'[1]");
    refused("{\"ctx\": \"a\", \"endings\": [\"b\", \"[x]\"], \"label\": 0}\n", 1,
            "choice 1 is empty");
    snprintf(buf, sizeof buf,
             "%s{\"sentence\": \"a _ b\", \"option1\": \"x\", \"option2\": \"y\", "
             "\"answer\": \"1\"}\n",
             ok);
    refused(buf, 2, "a winogrande question in a hellaswag file");
    refused("{\"sentence\": \"no blank\", \"option1\": \"x\", \"option2\": \"y\", \"answer\": "
            "\"1\"}\n",
            1, "no blank");
    refused(
        "{\"sentence\": \"a _ b\", \"option1\": \"x\", \"option2\": \"y\", \"answer\": \"3\"}\n", 1,
        "'answer'");
    refused("{\"question\": \"q\", \"choices\": {\"text\": [\"a\", \"b\"], \"label\": [\"A\", "
            "\"B\"]}, \"answerKey\": \"C\"}\n",
            1, "answerKey 'C'");
    refused("{\"question\": \"q\", \"choices\": [\"a\", \"b\", \"c\"], \"answer\": 0}\n", 1,
            "4 entries");
    refused("[1, 2]\n", 1, "not a JSON object");
    refused("{\"prompt\": \"x\"}\n", 1, "not a HellaSwag");
    refused("\n\n", 0, "no questions");
}

int main(void)
{
    test_preprocess();
    test_requests();
    test_scores();
    test_cli();
    test_malformed();
    return test_report();
}
