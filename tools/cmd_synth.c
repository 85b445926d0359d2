/* cmd_synth.c — `herd synth`: write a random-weight model of a real shape. */
#include "cli.h"
#include "quant/quant.h"

#include <stdlib.h>
#include <string.h>

int cmd_synth(int argc, char **argv)
{
    /* No --vocab: the shape's own (../shared/vocab/ggml-vocab-<name>.gguf). */
    herd_synth_params p = {.seed = 42, .type = "f32"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
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
        else if (!strcmp(a, "--seed"))
            p.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "-t"))
            p.n_threads = atoi(v);
        else
            return cli_error(2, "synth: unknown option %s", a);
        i++;
    }
    if (!p.shape || !p.out_path) {
        fprintf(stderr, "usage: herd synth --shape SHAPE [--arch ARCH] [--type TYPE] -o FILE "
                        "[--vocab GGUF] [--seed N] [-t THREADS]\n"
                        "(type f32 unless given; shape tiny needs --arch)\nshapes:");
        for (const char *const *s = herd_synth_shapes(); *s; s++) fprintf(stderr, " %s", *s);
        fprintf(stderr, "\ntypes:");
        for (const herd_ftype_info *f = herd_ftype_all(); f->name; f++)
            fprintf(stderr, " %s", f->name);
        fprintf(stderr, "\n");
        return 2;
    }
    double t0 = herd_time();
    if (herd_synth(&p)) return cli_fail("synth");
    fprintf(stderr, "herd: wrote %s (%s, %s) in %.1f s\n", p.out_path, p.shape, p.type,
            herd_time() - t0);
    return 0;
}
