/*
 * herd.c — the herd program: one binary, one subcommand per job. The
 * subcommands parse arguments, call libherd and print; the library holds the
 * logic (DESIGN.md, decision 2).
 */
#include "cli.h"
#include "tensor/tensor.h"

#include <stdlib.h>
#include <string.h>

/* Subcommands that live in files of their own (tools/cmd_*.c). They are weak
 * so that the program links while a module is still being written. */
int cmd_template(int argc, char **argv) __attribute__((weak));
int cmd_serve(int argc, char **argv) __attribute__((weak));
int cmd_catalog(int argc, char **argv) __attribute__((weak));
int cmd_probe(int argc, char **argv) __attribute__((weak));

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static void usage(const command *cmds, size_t n, FILE *out)
{
    fprintf(out,
            "usage: herd COMMAND [options]   (herd COMMAND --help: its options)\n\ncommands:\n");
    for (size_t i = 0; i < n; i++)
        if (cmds[i].fn) fprintf(out, "  %-10s %s\n", cmds[i].name, cmds[i].help);
    fprintf(out, "  %-10s %s\n", "version", "herd's version, the SIMD kernels in use, the CPU");
    fprintf(out, "\nOptions follow llama.cpp: -m MODEL -p PROMPT -n N -c CTX -t THREADS "
                 "--temp T --top-k K --top-p P --min-p P --repeat-penalty R --seed S\n");
}

/* The CPU's name as /proc/cpuinfo gives it ("model name"). */
static void cpu_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon) continue;
        colon += 1 + (colon[1] == ' ');
        snprintf(buf, cap, "%.*s", (int)strcspn(colon, "\n"), colon);
        break;
    }
    fclose(f);
}

/* `herd --version`: the version, the kernels the dispatch chose for this CPU
 * (HERD_SIMD=avx2|avx512 caps them) and the CPU. */
static int version(void)
{
    static const char *const names[][2] = {
        {"scalar", "scalar"}, {"avx2", "AVX2"}, {"avx512", "AVX-512"}, {"amx", "AMX"}};
    const char *level = herd_tensor_simd_level(), *shown = level;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(level, names[i][0])) shown = names[i][1];
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    /* The environment variables that chose a lower level than the CPU has. */
    const char *no_simd = getenv("HERD_NO_SIMD"), *cap = getenv("HERD_SIMD");
    char why[128] = "";
    if (no_simd && *no_simd && strcmp(no_simd, "0"))
        snprintf(why, sizeof why, " (HERD_NO_SIMD=%s)", no_simd);
    else if (cap && *cap && !herd_tensor_simd_note())
        snprintf(why, sizeof why, " (HERD_SIMD=%s)", cap);
    printf("herd %s\nkernels: %s%s\ncpu: %s\n", HERD_VERSION, shown, why, cpu);
    return 0;
}

int main(int argc, char **argv)
{
    const command cmds[] = {
        {"run", cmd_run, "generate a continuation of a prompt"},
        {"info", cmd_info, "describe a model file and the memory it needs"},
        {"tokenize", cmd_tokenize, "print the token ids of a text"},
        {"logits", cmd_logits, "write the logits of every prompt position to a file"},
        {"perplexity", cmd_perplexity, "perplexity of a text, as llama-perplexity computes it"},
        {"bench", cmd_bench, "measure prompt and generation speed (llama-bench's tests)"},
        {"synth", cmd_synth, "write a random-weight model of a real shape"},
        {"quantize", cmd_quantize,
         "convert an F32/F16/BF16 model to q4_0, q4_k_m, … as llama-quantize"},
        {"chat", cmd_chat, "talk with a model: multi-turn chat in its prompt format"},
        {"template", cmd_template, "render a chat template for a list of messages"},
        {"serve", cmd_serve, "an OpenAI-compatible HTTP server with continuous batching"},
        {"catalog", cmd_catalog, "the landscape of open models, with sources"},
        {"eval", cmd_eval, "multiple-choice accuracy (HellaSwag, ARC, MMLU, Winogrande)"},
        {"compare", cmd_compare, "compare models side by side, with an HTML report"},
        {"probe", cmd_probe, "measure this machine for the speed predictions"},
        {"recommend", cmd_recommend, "which catalog models fit your machine, licence and task"},
    };
    const size_t n = sizeof cmds / sizeof cmds[0];
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(cmds, n, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* HERD_SIMD naming a level this CPU lacks, or no level at all: one line,
     * and the kernels are the best this CPU has. */
    if (getenv("HERD_SIMD")) {
        const char *note = herd_tensor_simd_note();
        if (note) fprintf(stderr, "herd: %s\n", note);
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) return version();
    for (size_t i = 0; i < n; i++) {
        if (!cmds[i].fn || strcmp(argv[1], cmds[i].name)) continue;
        /* One --help for every command (tools/help.c). */
        const char *text = cli_usage(cmds[i].name);
        if (text && cli_asks_help(argc - 1, argv + 1)) return fputs(text, stdout) < 0;
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "herd: unknown command '%s' (herd --help lists them)\n", argv[1]);
    return 2;
}
