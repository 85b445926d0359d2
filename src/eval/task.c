/*
 * task.c — multiple-choice task files, turned into the requests
 * lm-evaluation-harness (v0.4) sends to a model.
 *
 * A task file is JSON lines with the field names of the public datasets; the
 * kind is told by the fields (eval.h). For each kind the harness's task
 * definition gives the context, the choices and the gold index; each choice is
 * scored as the continuation target_delimiter + choice = " " + choice:
 *
 *   HellaSwag   query = preprocess(activity_label + ": " + ctx_a + " " +
 *               ctx_b.capitalize()), choices = preprocess(ending) (its
 *               utils.py); a file with only "ctx" uses it for ctx_a + " " +
 *               ctx_b (the dataset's ctx is that join, uncapitalized), and
 *               activity_label is used when present.
 *   ARC         "Question: {question}\nAnswer:", choices = choices.text, gold =
 *               the index of answerKey in choices.label.
 *   MMLU        ["The following are multiple choice questions (with answers)
 *               about {subject}.\n\n" when the line has a subject]
 *               "{question.strip()}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nAnswer:",
 *               choices "A".."D", gold = answer.
 *   Winogrande  partial scoring: the choices are the contexts, sentence up to
 *               the blank with each option put in; the one continuation is the
 *               rest of the sentence after the blank, stripped.
 *
 * acc_norm divides by len(choice) in Python characters, i.e. code points of
 * the choice string (for Winogrande, of the filled-in context).
 */
#include "eval/eval.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *herd_mc_kind_name(herd_mc_kind k)
{
    static const char *names[] = {"hellaswag", "arc", "mmlu", "winogrande"};
    return k >= HERD_MC_HELLASWAG && k <= HERD_MC_WINOGRANDE ? names[k] : "?";
}

/* ------------------------------------------------------------ strings */

/* A growable string; on allocation failure it stays NULL and says so. */
typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void herd_sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p, b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    herd_sb_add(b, s, strlen(s));
}

/* The string, owned by the caller (NULL after an allocation failure). */
static char *herd_sb_take(sbuf *b)
{
    if (!b->s && !b->oom) herd_sb_add(b, "", 0);
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

static char *join(const char *a, const char *b)
{
    sbuf s = {0};
    sb_str(&s, a);
    sb_str(&s, b);
    return herd_sb_take(&s);
}

/* Python's str.isspace() on ASCII, which is what strip() removes here. */
static bool py_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* str.strip(): a malloc'ed copy without leading and trailing whitespace. */
static char *py_strip(const char *s)
{
    while (*s && py_space(*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && py_space(s[n - 1])) n--;
    sbuf b = {0};
    herd_sb_add(&b, s, n);
    return herd_sb_take(&b);
}

/* str.capitalize() on ASCII letters: the first upper case, the rest lower. */
static char *py_capitalize(const char *s)
{
    char *r = strdup(s);
    for (size_t i = 0; r && r[i]; i++)
        r[i] = (char)(i == 0 ? toupper((unsigned char)r[i]) : tolower((unsigned char)r[i]));
    return r;
}

/* len() of a Python str: UTF-8 code points. */
static int py_len(const char *s)
{
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* str.replace(old, new): non-overlapping, left to right. */
static char *py_replace(const char *s, const char *old, const char *new)
{
    sbuf b = {0};
    const size_t lo = strlen(old);
    const char *p;
    while ((p = strstr(s, old))) {
        herd_sb_add(&b, s, (size_t)(p - s));
        sb_str(&b, new);
        s = p + lo;
    }
    sb_str(&b, s);
    return herd_sb_take(&b);
}

/* re.sub(r"\[.*?\]", "", s): "." does not match a newline, so a "[" whose
 * "]" is on a later line (or missing) is kept. */
static char *drop_brackets(const char *s)
{
    sbuf b = {0};
    while (*s) {
        const char *close = *s == '[' ? s + strcspn(s, "]\n") : NULL;
        if (close && *close == ']') {
            s = close + 1;
            continue;
        }
        herd_sb_add(&b, s++, 1);
    }
    return herd_sb_take(&b);
}

char *herd_hellaswag_preprocess(const char *text)
{
    char *a = py_strip(text);
    char *b = a ? py_replace(a, " [title]", ". ") : NULL;
    char *c = b ? drop_brackets(b) : NULL;
    char *d = c ? py_replace(c, "  ", " ") : NULL;
    free(a), free(b), free(c);
    return d;
}

/* ------------------------------------------------------------ fields */

typedef struct {
    const char *name;
    int line;
    char msg[256];
} parse_err;

static bool fail(parse_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(parse_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return false;
}

static const char *str_field(const json_t *o, const char *key, parse_err *e)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s) fail(e, "'%s' must be a string", key);
    return s;
}

/* An index given as a JSON integer or a string of digits ("label": "2"). */
static bool index_field(const json_t *o, const char *key, int lo, int n, int *out, parse_err *e)
{
    const json_t *v = json_object_get(o, key);
    long long x = -1;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        x = strtoll(s, &end, 10);
        if (errno || end == s || *end) x = -1;
    } else {
        return fail(e, "'%s' must be an integer", key);
    }
    if (x < lo || x >= (long long)lo + n)
        return fail(e, "'%s' is %lld, not in %d..%d", key, x, lo, lo + n - 1);
    *out = (int)(x - lo);
    return true;
}

/* An array of n_min..HERD_MC_MAX_CHOICES strings. */
static const json_t *str_array(const json_t *o, const char *key, int n_min, parse_err *e)
{
    const json_t *a = json_object_get(o, key);
    size_t n = json_array_size(a);
    if (!json_is_array(a) || n < (size_t)n_min || n > HERD_MC_MAX_CHOICES) {
        fail(e, "'%s' must be an array of %d to %d strings", key, n_min, HERD_MC_MAX_CHOICES);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(a, i))) {
            fail(e, "'%s'[%zu] must be a string", key, i);
            return NULL;
        }
    return a;
}

/* Choice i: context ctx (copied), continuation " " + choice, norm = len(choice). */
static bool set_choice(herd_mc_question *q, int i, const char *ctx, const char *choice,
                       parse_err *e)
{
    if (!*choice) return fail(e, "choice %d is empty", i);
    q->context[i] = strdup(ctx);
    q->continuation[i] = join(" ", choice);
    q->norm_len[i] = py_len(choice);
    return q->context[i] && q->continuation[i] ? true : fail(e, "out of memory");
}

/* ------------------------------------------------------------- kinds */

static bool hellaswag(const json_t *o, herd_mc_question *q, parse_err *e)
{
    const json_t *endings = str_array(o, "endings", 2, e);
    if (!endings) return false;
    const char *ca = json_string_value(json_object_get(o, "ctx_a"));
    const char *cb = json_string_value(json_object_get(o, "ctx_b"));
    const char *label = json_string_value(json_object_get(o, "activity_label"));
    sbuf raw = {0};
    if (label) sb_str(&raw, label), sb_str(&raw, ": ");
    if (ca && cb) {
        char *cap = py_capitalize(cb);
        sb_str(&raw, ca), sb_str(&raw, " "), sb_str(&raw, cap ? cap : "");
        free(cap);
    } else {
        const char *ctx = str_field(o, "ctx", e);
        if (!ctx) return free(raw.s), false;
        sb_str(&raw, ctx);
    }
    char *r = herd_sb_take(&raw), *query = r ? herd_hellaswag_preprocess(r) : NULL;
    free(r);
    bool ok = query != NULL;
    q->n_choices = (int)json_array_size(endings);
    for (int i = 0; ok && i < q->n_choices; i++) {
        char *end = herd_hellaswag_preprocess(json_string_value(json_array_get(endings, i)));
        ok = end && set_choice(q, i, query, end, e);
        free(end);
    }
    free(query);
    return ok && index_field(o, "label", 0, q->n_choices, &q->gold, e);
}

static bool arc(const json_t *o, herd_mc_question *q, parse_err *e)
{
    const char *question = str_field(o, "question", e);
    const json_t *ch = json_object_get(o, "choices");
    const char *key = str_field(o, "answerKey", e);
    if (!question || !key) return false;
    if (!json_is_object(ch)) return fail(e, "'choices' must be an object with 'text' and 'label'");
    const json_t *text = str_array(ch, "text", 2, e), *label = str_array(ch, "label", 2, e);
    if (!text || !label) return false;
    if (json_array_size(text) != json_array_size(label))
        return fail(e, "choices.text and choices.label differ in length");
    q->n_choices = (int)json_array_size(text);
    q->gold = -1;
    for (int i = 0; i < q->n_choices; i++)
        if (!strcmp(json_string_value(json_array_get(label, i)), key)) q->gold = i;
    if (q->gold < 0) return fail(e, "answerKey '%s' is not one of choices.label", key);
    sbuf ctx = {0};
    sb_str(&ctx, "Question: "), sb_str(&ctx, question), sb_str(&ctx, "\nAnswer:");
    char *c = herd_sb_take(&ctx);
    if (!c) return fail(e, "out of memory");
    bool ok = true;
    for (int i = 0; ok && i < q->n_choices; i++)
        ok = set_choice(q, i, c, json_string_value(json_array_get(text, i)), e);
    free(c);
    return ok;
}

/* MMLU's answer: an index 0..3, or a letter A..D. */
static bool mmlu_answer(const json_t *o, int *gold, parse_err *e)
{
    const char *s = json_string_value(json_object_get(o, "answer"));
    if (s && s[0] >= 'A' && s[0] <= 'D' && !s[1]) {
        *gold = s[0] - 'A';
        return true;
    }
    return index_field(o, "answer", 0, 4, gold, e);
}

static bool mmlu(const json_t *o, herd_mc_question *q, parse_err *e)
{
    const char *question = str_field(o, "question", e);
    const json_t *choices = str_array(o, "choices", 1, e);
    if (!question || !choices) return false;
    if (json_array_size(choices) != 4) return fail(e, "'choices' must have 4 entries (A to D)");
    if (!mmlu_answer(o, &q->gold, e)) return false;
    const char *subject = json_string_value(json_object_get(o, "subject"));
    sbuf ctx = {0};
    if (subject && *subject) {
        char *words = py_replace(subject, "_", " ");
        sb_str(&ctx, "The following are multiple choice questions (with answers) about ");
        sb_str(&ctx, words ? words : ""), sb_str(&ctx, ".\n\n");
        free(words);
    }
    char *qs = py_strip(question);
    sb_str(&ctx, qs ? qs : "");
    free(qs);
    for (int i = 0; i < 4; i++) {
        char head[8];
        snprintf(head, sizeof head, "\n%c. ", 'A' + i);
        sb_str(&ctx, head), sb_str(&ctx, json_string_value(json_array_get(choices, i)));
    }
    sb_str(&ctx, "\nAnswer:");
    char *c = herd_sb_take(&ctx);
    if (!c) return fail(e, "out of memory");
    bool ok = true;
    q->n_choices = 4;
    for (int i = 0; ok && i < 4; i++) ok = set_choice(q, i, c, (char[]){(char)('A' + i), 0}, e);
    free(c);
    return ok;
}

static bool winogrande(const json_t *o, herd_mc_question *q, parse_err *e)
{
    const char *sentence = str_field(o, "sentence", e);
    const char *opt[2] = {str_field(o, "option1", e), str_field(o, "option2", e)};
    if (!sentence || !opt[0] || !opt[1]) return false;
    const char *blank = strchr(sentence, '_');
    if (!blank) return fail(e, "'sentence' has no blank '_'");
    const json_t *a = json_object_get(o, "answer");
    if (json_is_integer(a) || json_is_string(a)) {
        if (!index_field(o, "answer", 1, 2, &q->gold, e)) return false;
    } else {
        return fail(e, "'answer' must be \"1\" or \"2\"");
    }
    char *rest = py_strip(blank + 1);
    bool ok = rest != NULL;
    q->n_choices = 2;
    for (int i = 0; ok && i < 2; i++) {
        sbuf ctx = {0};
        herd_sb_add(&ctx, sentence, (size_t)(blank - sentence));
        sb_str(&ctx, opt[i]);
        q->context[i] = herd_sb_take(&ctx);
        q->continuation[i] = join(" ", rest);
        ok = q->context[i] && q->continuation[i];
        if (ok) q->norm_len[i] = py_len(q->context[i]);
    }
    free(rest);
    return ok || fail(e, "out of memory");
}

/* The kind a question's fields say, or -1. */
static int kind_of(const json_t *o)
{
    if (json_object_get(o, "endings")) return HERD_MC_HELLASWAG;
    if (json_object_get(o, "option1")) return HERD_MC_WINOGRANDE;
    if (json_object_get(o, "answerKey")) return HERD_MC_ARC;
    if (json_object_get(o, "choices") && json_object_get(o, "answer")) return HERD_MC_MMLU;
    return -1;
}

static void free_question(herd_mc_question *q)
{
    for (int i = 0; i < HERD_MC_MAX_CHOICES; i++) free(q->context[i]), free(q->continuation[i]);
}

void herd_mc_free(herd_mc_task *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) free_question(&t->q[i]);
    free(t->q);
    free(t);
}

/* One line into t (its kind fixed by the first question). */
static bool parse_line(const char *s, size_t len, herd_mc_task *t, parse_err *e)
{
    json_error_t je;
    json_t *o = json_loadb(s, len, 0, &je);
    if (!o) return fail(e, "invalid JSON: %s", je.text);
    bool ok = false;
    int kind = kind_of(o);
    herd_mc_question *q = &t->q[t->n];
    memset(q, 0, sizeof *q);
    q->line = e->line;
    if (!json_is_object(o))
        fail(e, "not a JSON object");
    else if (kind < 0)
        fail(e, "not a HellaSwag (endings), ARC (answerKey), MMLU (choices, answer) or "
                "Winogrande (option1) question");
    else if (t->n > 0 && kind != (int)t->kind)
        fail(e, "a %s question in a %s file", herd_mc_kind_name(kind), herd_mc_kind_name(t->kind));
    else {
        t->kind = kind;
        ok = kind == HERD_MC_HELLASWAG ? hellaswag(o, q, e)
             : kind == HERD_MC_ARC     ? arc(o, q, e)
             : kind == HERD_MC_MMLU    ? mmlu(o, q, e)
                                       : winogrande(o, q, e);
    }
    json_decref(o);
    if (ok)
        t->n++;
    else
        free_question(q);
    return ok;
}

herd_status herd_mc_parse(const char *text, size_t len, const char *name, int limit,
                          herd_mc_task **out)
{
    *out = NULL;
    herd_mc_task *t = herd_calloc(1, sizeof *t);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (t) t->q = herd_calloc(lines, sizeof *t->q);
    if (!t || !t->q) {
        herd_mc_free(t);
        return HERD_E_NOMEM;
    }
    parse_err e = {.name = name};
    for (size_t at = 0; at < len && (limit < 0 || t->n < limit);) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - at;
        e.line++;
        bool blank = true;
        for (size_t i = at; i < end && blank; i++) blank = py_space(text[i]);
        if (!blank && !parse_line(text + at, n, t, &e)) {
            herd_mc_free(t);
            return herd_seterr(HERD_E_FORMAT, "%s:%d: %s", name, e.line, e.msg);
        }
        at = end + 1;
    }
    if (t->n == 0) {
        herd_mc_free(t);
        return herd_seterr(HERD_E_FORMAT, "%s: no questions", name);
    }
    *out = t;
    return HERD_OK;
}

herd_status herd_mc_load(const char *path, int limit, herd_mc_task **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return herd_seterr(HERD_E_IO, "%s: cannot open", path);
    sbuf b = {0};
    char chunk[1 << 16];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) herd_sb_add(&b, chunk, got);
    const bool err = ferror(f);
    fclose(f);
    char *text = herd_sb_take(&b);
    if (err || !text) {
        free(text);
        return herd_seterr(err ? HERD_E_IO : HERD_E_NOMEM, "%s: cannot read", path);
    }
    herd_status st = herd_mc_parse(text, b.n, path, limit, out);
    free(text);
    return st;
}
