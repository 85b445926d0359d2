/*
 * cli.h — what the subcommands of the herd program share: option parsing in
 * llama.cpp's spelling, and error reporting (one line on stderr, then a
 * non-zero exit).
 */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#include "herd.h"
#include <stdio.h>

typedef struct cli_opts {
    const char *model, *prompt, *ids, *out, *file;
    int n_predict, n_ctx, n_batch, n_threads;
    int swa;      /* --swa N: -1 = the file's window, 0 = off */
    int n_chunks; /* --chunks K: -1 = all */
    herd_sampler_params sp;
    int no_bos, pieces, no_display_prompt, verbose;
    int mmap; /* --mmap: map the model file instead of reading it (see herd_model_params) */
    herd_kv_type cache_type_k, cache_type_v; /* -ctk, -ctv (--cache-type: both) */
    const char *positional[4];
    int n_positional;
    /* herd eval, herd perplexity --kl-divergence*, herd info --parallel */
    const char *task;    /* --task FILE */
    int limit;           /* --limit N: -1 = all */
    const char *kl_base; /* --kl-divergence-base FILE */
    int kl_divergence;   /* --kl-divergence: compare with kl_base */
    int n_parallel;      /* --parallel N / -np N: sequences (default 1) */
    int scores;          /* --scores: print every choice's log-likelihood */
    /* herd chat, herd run --chat */
    const char *system;        /* --system TEXT */
    const char *chat_template; /* --chat-template NAME|FILE */
    int chat;                  /* --chat: -p is a user message */
    /* herd run: constrained output */
    const char *grammar;      /* --grammar GBNF */
    const char *grammar_file; /* --grammar-file FILE */
    const char *json_schema;  /* --json-schema / -j SCHEMA (JSON text) */
} cli_opts;

/* The groups of options a command uses; an option of another group is an
 * error, never silently ignored. */
enum {
    CLI_MODEL = 1 << 0,    /* -m, -t, --mmap, --no-mmap */
    CLI_PROMPT = 1 << 1,   /* -p, --ids, --no-bos */
    CLI_FILE = 1 << 2,     /* -f */
    CLI_GEN = 1 << 3,      /* -n, sampling, --no-display-prompt */
    CLI_CTX = 1 << 4,      /* -c, -b, -ctk/-ctv, --swa */
    CLI_PPL = 1 << 5,      /* --chunks, --kl-divergence-base, --kl-divergence */
    CLI_EVAL = 1 << 6,     /* --task, --limit, --scores */
    CLI_CHAT = 1 << 7,     /* --chat, --system, --chat-template */
    CLI_PARALLEL = 1 << 8, /* --parallel */
    CLI_PIECES = 1 << 9,   /* --pieces */
    CLI_OUT = 1 << 10,     /* --out */
    CLI_VERBOSE = 1 << 11, /* -v */
};

/* Parse argv[1..] (argv[0] is the subcommand), accepting the options of the
 * groups in `allowed`. Prints the error and returns false on an unknown or
 * inapplicable flag, a missing or invalid value, or a stray argument. */
bool cli_parse(int argc, char **argv, unsigned allowed, cli_opts *o);

/* Print "herd: <what>: <herd_errmsg()>" and return 1. */
int cli_fail(const char *what);
/* Print "herd: <message>" and return 1 (or 2 for usage errors). */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse an integer in lo..hi, or report the flag's error and return false. */
bool cli_int(const char *flag, const char *s, long lo, long hi, int *out);
/* A thread count: 1 .. cli_max_threads() (4 per core; more only slows down). */
bool cli_threads(const char *flag, const char *s, int *out);
int cli_max_threads(void);

/* Load a model (and report errors); NULL on failure. -c beyond the model's
 * training context is warned about once on stderr, as llama.cpp does. */
herd_model *cli_load_model(const cli_opts *o);
/* What a command needs of the file: everything, only the vocabulary
 * (tokenize), or the vocabulary when the file holds nothing else (info). */
typedef enum { CLI_LOAD_FULL, CLI_LOAD_VOCAB, CLI_LOAD_ANY } cli_load;
herd_model *cli_load_model_as(const cli_opts *o, cli_load how);
/* A whole file, NUL-terminated (the NUL not counted in *len); NULL after
 * reporting the error. */
char *cli_read_file(const char *path, size_t *len);
/* Tokenize the prompt (or parse --ids) into a malloc'ed array. */
int32_t *cli_prompt_ids(const herd_model *m, const cli_opts *o, int *n);

/* `herd CMD --help`: CMD's usage and options (tools/help.c); NULL for a
 * command that answers --help itself. */
const char *cli_usage(const char *cmd);
/* Is -h or --help among argv[1..]? */
bool cli_asks_help(int argc, char **argv);

int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_chat(int argc, char **argv);

#endif
