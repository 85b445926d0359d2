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
    int swa; /* --swa N: -1 = the file's window, 0 = off */
    int n_chunks; /* --chunks K: -1 = all */
    herd_sampler_params sp;
    int no_bos, pieces, special, no_display_prompt, verbose;
    int mmap; /* --mmap: map the model file instead of reading it (see herd_model_params) */
    herd_kv_type cache_type;
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

/* Parse argv[1..] (argv[0] is the subcommand). Prints the error and returns
 * false on an unknown flag or a missing/invalid value. */
bool cli_parse(int argc, char **argv, cli_opts *o);

/* Print "herd: <what>: <herd_errmsg()>" and return 1. */
int cli_fail(const char *what);
/* Print "herd: <message>" and return 1 (or 2 for usage errors). */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Load a model (and report errors); NULL on failure. */
herd_model *cli_load_model(const cli_opts *o);
/* Tokenize the prompt (or parse --ids) into a malloc'ed array. */
int32_t *cli_prompt_ids(const herd_model *m, const cli_opts *o, int *n);

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
