/* cmd_synth.c — `herd synth`: write a random-weight model of a real shape. */
#include "cli.h"
#include "quant/quant.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* On a terminal: "[ 12/ 201] blk.1.attn_q.weight", redrawn in place. */
static void progress(int done, int total, const char *tensor, void *user)
{
    (void)user;
    fprintf(stderr, "\r\033[K[%4d/%4d] %s", done + 1, total, tensor);
    fflush(stderr);
}

int cmd_synth(int argc, char **argv)
{
    /* No --vocab: the shape's own (../shared/vocab/ggml-vocab-<name>.gguf). */
    herd_synth_params p = {.seed = 42, .type = "f32"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            p.quick = true;
            continue;
        }
        if (!v) return cli_error(2, "synth: %s needs a value", a);
        if (!strcmp(a, "--arch"))
            p.arch = v;
        else if (!strcmp(a, "--shape"))
            p.shape = v;
        else if (!strcmp(a, "--type"))
            p.type = v;
        else if (!strcmp(a, "--vocab"))
            p.vocab_path = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out"))
            p.out_path = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            p.seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || *v == '-')
                return cli_error(2, "synth: --seed: '%s' is not a number >= 0", v);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_threads(a, v, &p.n_threads)) return 2;
        } else
            return cli_error(2, "synth: unknown option %s", a);
        i++;
    }
    if (!p.shape || !p.out_path) {
        fprintf(stderr, "usage: herd synth --shape SHAPE [--arch ARCH] [--type TYPE] -o FILE "
                        "[--vocab GGUF] [--seed N] [-t THREADS] [--quick]\n"
                        "(type f32 unless given; shape tiny needs --arch)\nshapes:");
        for (const char *const *s = herd_synth_shapes(); *s; s++) fprintf(stderr, " %s", *s);
        fprintf(stderr, "\ntypes:");
        for (const herd_ftype_info *f = herd_ftype_all(); f->name; f++)
            fprintf(stderr, " %s", f->name);
        fprintf(stderr, "\n");
        return 2;
    }
    double t0 = herd_time();
    if (isatty(STDERR_FILENO)) p.progress = progress;
    if (herd_synth(&p)) {
        if (p.progress) fprintf(stderr, "\r\033[K");
        return cli_fail("synth");
    }
    if (p.progress) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "herd: wrote %s (%s, %s) in %.1f s\n", p.out_path, p.shape, p.type,
            herd_time() - t0);
    return 0;
}
