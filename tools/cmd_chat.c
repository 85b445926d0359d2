/*
 * cmd_chat.c — `herd chat`: talk with a model, one message per line.
 *
 *   herd chat -m MODEL [--system TEXT] [--chat-template NAME|FILE] [-c CTX]
 *             [-n MAX_ANSWER_TOKENS] [--temp T --top-k K ... --seed S] [-v]
 *
 * The conversation itself (history, rendering with the chat format, reuse of
 * the KV cache, dropping old turns when the context fills) is the library's
 * herd_conv (src/chat/chat.h); this file is only the terminal around it.
 *
 * On a terminal, lines are read with libedit (editing keys, history) after a
 * "> " prompt and the answer streams in as it is generated. From a pipe, each
 * line of stdin is one message and stdout gets the answers only, one per
 * message, each ending with a newline: no prompt, no escape codes. Notices
 * ("[...]") and errors go to stderr in both cases.
 *
 * Lines that start with '/' are commands: /reset, /system TEXT, /save FILE,
 * /quit (and /help).
 *
 * Ctrl-C: the SIGINT handler only sets a flag (and, installed without
 * SA_RESTART, interrupts a blocking read). During an answer the library polls
 * the flag between tokens and ends the answer there; the program goes back to
 * the prompt. At the prompt, Ctrl-C ends the program, as Ctrl-D does.
 */
#include "cli.h"

#include "chat/chat.h"

#include <errno.h>
#include <histedit.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_interrupt;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupt = 1;
}

/* --------------------------------------------------------- line input */

typedef struct input {
    bool tty;
    EditLine *el;
    History *hist;
    char *line; /* getline's buffer (pipe) */
    size_t cap;
} input;

static char *prompt(EditLine *el)
{
    (void)el;
    return "> ";
}

static bool input_open(input *in)
{
    memset(in, 0, sizeof *in);
    in->tty = isatty(STDIN_FILENO);
    if (!in->tty) return true;
    HistEvent ev;
    in->el = el_init("herd", stdin, stdout, stderr);
    in->hist = history_init();
    if (!in->el || !in->hist) return false;
    history(in->hist, &ev, H_SETSIZE, 500);
    el_set(in->el, EL_PROMPT, prompt);
    el_set(in->el, EL_EDITOR, "emacs");
    el_set(in->el, EL_HIST, history, in->hist);
    return true;
}

static void input_close(input *in)
{
    if (in->el) el_end(in->el);
    if (in->hist) history_end(in->hist);
    free(in->line);
}

/* The next line without its line ending, or NULL at the end of the input or
 * on Ctrl-C. The string lives until the next call. */
static const char *input_read(input *in)
{
    const char *s;
    size_t n;
    if (in->tty) {
        int count;
        s = el_gets(in->el, &count);
        if (!s || count <= 0 || g_interrupt) return NULL;
        n = (size_t)count;
        if (s[strspn(s, " \t\r\n")]) {
            HistEvent ev;
            history(in->hist, &ev, H_ENTER, s);
        }
        free(in->line);
        if (!(in->line = strndup(s, n))) return NULL;
    } else {
        ssize_t got = getline(&in->line, &in->cap, stdin);
        if (got < 0 || g_interrupt) return NULL;
        n = (size_t)got;
    }
    while (n && (in->line[n - 1] == '\n' || in->line[n - 1] == '\r')) in->line[--n] = 0;
    return in->line;
}

/* --------------------------------------------------------- output */

typedef struct session {
    herd_conv *conv;
    bool tty, verbose;
    bool mid_line; /* the answer on stdout has no newline yet */
} session;

static void notice(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notice(session *s, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    if (s->tty && s->mid_line) fputc('\n', stderr), s->mid_line = false;
    fputc('[', stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("]\n", stderr);
}

static void on_text(void *user, const char *text, size_t len)
{
    session *s = user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    s->mid_line = text[len - 1] != '\n';
}

static void on_dropped(void *user, int n)
{
    notice(user, "context full: dropped the oldest %d message%s", n, n == 1 ? "" : "s");
}

static bool on_poll(void *user)
{
    (void)user;
    return g_interrupt != 0;
}

/* --------------------------------------------------------- the loop */

/* One user message: stream the answer, then say why it stopped if that is
 * not the ordinary end. false on an error that ends the program. */
static bool answer(session *s, const char *text)
{
    herd_conv_io io = {.text = on_text, .dropped = on_dropped, .interrupted = on_poll, .user = s};
    herd_conv_stop why;
    g_interrupt = 0;
    s->mid_line = false;
    herd_status st = herd_conv_reply(s->conv, text, &io, &why);
    g_interrupt = 0;
    fputc('\n', stdout);
    fflush(stdout);
    s->mid_line = false;
    if (st == HERD_E_FULL) {
        cli_error(1, "%s", herd_errmsg());
        return true;
    }
    if (st) return cli_fail("chat"), false;
    if (why == HERD_CONV_INTERRUPTED) notice(s, "stopped");
    if (why == HERD_CONV_CONTEXT) notice(s, "context full: answer cut short");
    if (s->verbose) {
        herd_conv_stats t;
        herd_conv_get_stats(s->conv, &t);
        notice(s, "prompt %d tokens: %d from the cache, %d decoded; %d generated; %d cached",
               t.n_prompt, t.n_reused, t.n_decoded, t.n_generated, t.n_cached);
    }
    return true;
}

/* A line starting with '/'. false: quit. */
static bool command(session *s, const char *line)
{
    size_t n = strcspn(line, " \t");
    const char *arg = line + n + strspn(line + n, " \t");
    if ((n == 5 && !strncmp(line, "/quit", 5)) || (n == 5 && !strncmp(line, "/exit", 5)))
        return false;
    if (n == 6 && !strncmp(line, "/reset", 6)) {
        herd_conv_reset(s->conv);
        notice(s, "conversation reset");
    } else if (n == 7 && !strncmp(line, "/system", 7)) {
        if (herd_conv_set_system(s->conv, arg))
            cli_fail("/system");
        else
            notice(s, *arg ? "system prompt set" : "system prompt removed");
    } else if (n == 5 && !strncmp(line, "/save", 5) && *arg) {
        if (herd_conv_save(s->conv, arg))
            cli_fail("/save");
        else {
            size_t k = json_array_size(herd_conv_messages(s->conv));
            notice(s, "saved %zu message%s to %s", k, k == 1 ? "" : "s", arg);
        }
    } else
        notice(s, "commands: /reset, /system TEXT, /save FILE, /quit");
    return true;
}

static herd_ctx *chat_ctx(herd_model *m, const cli_opts *o)
{
    herd_ctx_params cp = herd_ctx_default_params();
    cp.n_ctx = o->n_ctx;
    cp.n_batch = o->n_batch;
    cp.n_threads = o->n_threads;
    cp.type_k = o->cache_type_k, cp.type_v = o->cache_type_v;
    cp.swa = o->swa;
    herd_ctx *c;
    if (herd_ctx_new(m, &cp, &c)) {
        cli_fail("context");
        return NULL;
    }
    return c;
}

static int chat_loop(session *s)
{
    input in;
    if (!input_open(&in)) {
        input_close(&in);
        return cli_error(1, "cannot set up line editing");
    }
    if (in.tty)
        fprintf(stderr,
                "herd chat: format %s. Commands: /reset, /system TEXT, /save FILE, /quit.\n"
                "Ctrl-C stops an answer; Ctrl-C or Ctrl-D at the prompt exits.\n",
                strcmp(herd_conv_format(s->conv), "jinja") ? herd_conv_format(s->conv)
                                                           : "Jinja template");
    int rc = 0;
    const char *line;
    while ((line = input_read(&in))) {
        if (!line[strspn(line, " \t")]) continue;
        if (line[0] == '/' ? !command(s, line) : !answer(s, line)) {
            rc = line[0] == '/' ? 0 : 1;
            break;
        }
    }
    if (in.tty && !line) fputc('\n', stdout);
    input_close(&in);
    return rc;
}

int cmd_chat(int argc, char **argv)
{
    cli_opts o;
    if (!cli_parse(argc, argv, CLI_MODEL | CLI_GEN | CLI_CTX | CLI_CHAT | CLI_VERBOSE, &o))
        return 2;
    herd_model *m = cli_load_model(&o);
    if (!m) return 1;
    herd_ctx *ctx = chat_ctx(m, &o);
    herd_conv_params p = herd_conv_default_params();
    p.chat_template = o.chat_template;
    p.system = o.system;
    p.n_predict = o.n_predict;
    p.sampling = o.sp;
    session s = {.tty = isatty(STDIN_FILENO), .verbose = o.verbose};
    int rc = 1;
    if (ctx && herd_conv_new(m, ctx, &p, &s.conv))
        cli_fail("chat");
    else if (ctx) {
        struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: reads return */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        rc = chat_loop(&s);
    }
    herd_conv_free(s.conv);
    herd_ctx_free(ctx);
    herd_model_free(m);
    return rc;
}
