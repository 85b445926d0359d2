/*
 * help.c — what `herd COMMAND --help` prints: each command's usage line and
 * options, in one table, so that every command answers --help the same way
 * (herd.c looks for -h/--help before it calls the command). Options spelled
 * as llama.cpp spells them mean what they mean there.
 */
#include "cli.h"

#include <string.h>

#define MODEL_OPTS                                                                                 \
    "  -m, --model FILE       the GGUF model (a lone argument is the model too)\n"                 \
    "  -t, --threads N        threads (default: the number of cores; at most 4 per core)\n"        \
    "  --mmap                 map the file instead of reading it (starts at once)\n"
#define CTX_OPTS                                                                                   \
    "  -c, --ctx-size N       context length (default: min(training context, 4096));\n"            \
    "                         beyond the training context herd warns\n"                            \
    "  -b, --batch-size N     tokens per decode batch (default 512)\n"                             \
    "  -ctk, -ctv TYPE        K (V) cache type: f16 (default), f32, bf16, q8_0, q4_0;\n"           \
    "                         --cache-type TYPE sets both (q8_0, q4_0: head size % 32 = 0)\n"      \
    "  --swa N                sliding window: 0 = off (default: the file's)\n"
#define SAMPLING_OPTS                                                                              \
    "  --temp T               temperature, >= 0 (0: always the most likely token)\n"               \
    "  --top-k K              keep the K most likely tokens (0: all)\n"                            \
    "  --top-p P              keep the most likely tokens up to probability P, 0..1\n"             \
    "  --min-p P              drop tokens below P times the top probability, 0..1\n"               \
    "  --repeat-penalty R     penalty (> 0; 1 = none) for the last --repeat-last-n N tokens\n"     \
    "  -s, --seed S           random seed (-1: a random one)\n"

typedef struct {
    const char *name, *text;
} usage_entry;

static const usage_entry usages[] = {
    {"run", "usage: herd run -m MODEL [-p TEXT | -f FILE | --ids \"1 2 3\"] [options]\n"
            "Generate a continuation of a prompt; the text goes to stdout, timings to stderr.\n\n"
            "  -p, --prompt TEXT      the prompt (default: empty, generation starts at BOS)\n"
            "  -f, --file FILE        the prompt is the file's text, less one final newline\n"
            "  --ids \"1 2 3\"          the prompt as token ids\n"
            "  -n, --n-predict N      tokens to generate (-1: until the context is full)\n"
            "  --chat                 -p is a user message in the model's chat format\n"
            "  --system TEXT          with --chat: a system message first\n"
            "  --chat-template NAME|FILE  with --chat: a built-in format or a Jinja file\n"
            "  --no-bos               do not add BOS\n"
            "  --no-display-prompt    do not print the prompt\n" MODEL_OPTS CTX_OPTS SAMPLING_OPTS},
    {"info", "usage: herd info MODEL [-c CTX] [--parallel N] [-ctk TYPE]\n"
             "What a GGUF file holds and the memory it needs at a context; on a vocabulary-only\n"
             "file (no tensors), what its vocabulary is.\n\n"
             "  -c, --ctx-size N       the context to size memory for (default: min(training, "
             "4096))\n"
             "  -np, --parallel N      sequences sharing the cache\n" MODEL_OPTS},
    {"tokenize", "usage: herd tokenize -m MODEL (-p TEXT | -f FILE) [--pieces] [--no-bos]\n"
                 "Print the token ids of a text (one line) or, with --pieces, one token a line.\n"
                 "Needs the vocabulary only: vocabulary-only GGUF files work.\n\n"
                 "  -p, --prompt TEXT      the text (special tokens written in it are parsed)\n"
                 "  -f, --file FILE        the file's bytes, all of them\n"
                 "  --pieces               id and text of every token\n"
                 "  --no-bos               do not add BOS\n"},
    {"logits", "usage: herd logits -m MODEL (-p TEXT | -f FILE | --ids \"1 2 3\") -o FILE\n"
               "Write the logits of every prompt position (float32, n_tokens x n_vocab).\n\n"
               "  -o, --out FILE         the output (replaced only when complete; never the "
               "model)\n" MODEL_OPTS CTX_OPTS},
    {"perplexity",
     "usage: herd perplexity -m MODEL -f TEXT [-c N] [--chunks K] [--kl-divergence-base FILE]\n"
     "       herd perplexity -m OTHER --kl-divergence-base FILE --kl-divergence\n"
     "Perplexity of a text as llama-perplexity computes it, in chunks of -c tokens.\n\n"
     "  -f, --file TEXT        the text\n"
     "  -c, --ctx-size N       chunk length (default: min(training context, 512))\n"
     "  --chunks K             score the first K chunks only\n"
     "  --kl-divergence-base FILE  with -f: also save every scored distribution to FILE\n"
     "  --kl-divergence        compare this model with FILE's run over FILE's tokens\n"
     "                         (no -f: the tokens are in FILE)\n" MODEL_OPTS
     "  -b, --batch-size N     tokens per decode batch (default 512)\n"},
    {"bench",
     "usage: herd bench -m MODEL [-p N] [-n N] [-d N [--fill-once]] [-c N] [-r N] [-t N] "
     "[--json]\n"
     "llama-bench's tests: pp N (one batch of N tokens) and tg N (N single decodes),\n"
     "one warm-up run, then -r repetitions; mean ± standard deviation and median.\n"
     "Progress goes to stderr when it is a terminal.\n\n"
     "  -p N                   prompt tokens (default 512; 0: skip)\n"
     "  -n N                   generated tokens (default 128; 0: skip)\n"
     "  -d N                   depth: N random tokens in the cache before each run\n"
     "                         (untimed; tests named pp512@dN, tg128@dN)\n"
     "  --fill-once            fill the depth once; before each run only forget the\n"
     "                         cells past it (the timed part is the same)\n"
     "  -c N                   the context that bounds -d (default: the training context)\n"
     "  -r N                   repetitions (default 5)\n"
     "  --json                 llama-bench's JSON fields\n" MODEL_OPTS},
    {"synth",
     "usage: herd synth [--arch ARCH] --shape SHAPE [--type TYPE] -o FILE [--vocab GGUF] [--seed "
     "N] [--quick]\n"
     "Write a random-weight model of a real shape (herd synth with no option lists the\n"
     "shapes and types). Progress goes to stderr when it is a terminal.\n\n"
     "  --shape SHAPE          e.g. tinyllama-1.1b, llama3.1-8b, qwen2.5-7b, gemma3-4b, or tiny\n"
     "  --arch ARCH            the architecture, for a shape several have (tiny, tiny-…)\n"
     "  --type TYPE            f32 (default), f16, q8_0, q4_0, q4_k_m, …\n"
     "  -o, --out FILE         the output file\n"
     "  --vocab GGUF           take the vocabulary from this file\n"
     "  --seed N               random seed (default 42)\n"
     "  -t N                   threads\n"
     "  --quick                each tensor's rows drawn from 1024 made as usual: a file of the\n"
     "                         same shapes, types and size in seconds, for speed and memory\n"
     "                         measurements (not for text)\n"},
    {"quantize",
     "usage: herd quantize [-t THREADS] [--pure] [-q] IN.gguf OUT.gguf TYPE\n"
     "Convert an F32/F16/BF16 model to TYPE as llama-quantize does. OUT may not be IN.\n\n"
     "  --pure                 every matrix in TYPE (no per-tensor mixture)\n"
     "  -q, --quiet            no progress\n"
     "  -t, --threads N        threads\n"},
    {"chat",
     "usage: herd chat -m MODEL [--system TEXT] [--chat-template NAME|FILE] [options]\n"
     "Talk with a model, one message a line. Commands: /reset, /system TEXT, /save FILE,\n"
     "/quit, /help.\n\n"
     "  --system TEXT          a system message\n"
     "  --chat-template NAME|FILE  a built-in format or a Jinja file instead of the "
     "model's\n"
     "  -n N                   at most N tokens an answer\n"
     "  -v, --verbose          timings after each answer\n" MODEL_OPTS CTX_OPTS SAMPLING_OPTS},
    {"template",
     "usage: herd template (-m MODEL | --chat-template NAME|FILE) --messages FILE.json\n"
     "                     [--add-generation-prompt] [--bos-token TEXT] [--eos-token TEXT]\n"
     "Print the prompt a chat template makes of a list of messages, byte for byte.\n"
     "A vocabulary-only GGUF file will do for -m.\n"},
    {"serve",
     "usage: herd serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [-c CTX]\n"
     "                  [-b N] [-t N] [--api-key KEY] [--timeout S] [--cors ORIGIN]\n"
     "                  [--queue N] [--chat-template NAME|FILE] [--alias NAME] [--quiet]\n"
     "An OpenAI-compatible HTTP server; -c is shared by the --parallel slots.\n"},
    {"catalog", "usage: herd catalog [MODEL] [--json] [--commercial] [--max-ram GB] [--lang CODE]\n"
                "                    [--task text|chat|instruct] [--min-ctx N] [--verify SEED]\n"
                "The landscape of open models; every fact with its source.\n"},
    {"eval", "usage: herd eval -m MODEL --task FILE.jsonl [--limit N] [-c CTX] [--scores]\n"
             "Multiple-choice accuracy (HellaSwag, ARC, MMLU, Winogrande JSON lines; README\n"
             "shows one line of each) as lm-evaluation-harness scores it.\n\n"
             "  --task FILE            the questions\n"
             "  --limit N              the first N questions\n"
             "  --scores               every choice's log-likelihood too\n" MODEL_OPTS},
    {"compare",
     "usage: herd compare M1 M2 … [--text F] [--task F] [--html OUT] [--json] [-c CTX]\n"
     "                    [--chunks K] [--limit N] [-p PP] [-n TG] [-r N] [-t N]\n"
     "Every model measured the same way (the bench runs interleaved across the models),\n"
     "beside herd's predicted speed and memory; one table; --html writes a standalone report.\n\n"
     "  --text F, -f F         perplexity on this text (bits per byte too: comparable across\n"
     "                         vocabularies, where perplexity is not)\n"
     "  -c N                   perplexity chunk (default: min(training context, 512) per "
     "model)\n"
     "  --chunks K             the first K chunks only\n"
     "  --task F               multiple-choice accuracy on this task file\n"
     "  --limit N              its first N questions\n"
     "  -p PP, -n TG, -r N     speed as herd bench measures it (default -p 64 -n 16 -r 3)\n"
     "  --html OUT             the report (replaced only when complete)\n"
     "  --json                 the figures as JSON instead of the table\n"
     "  -t, --threads N        threads\n"},
    /* recommend answers --help itself (tools/cmd_recommend.c). */
};

const char *cli_usage(const char *cmd)
{
    for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++)
        if (!strcmp(usages[i].name, cmd)) return usages[i].text;
    return NULL;
}

bool cli_asks_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return true;
    return false;
}
