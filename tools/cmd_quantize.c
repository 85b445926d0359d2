/* cmd_quantize.c — `herd quantize IN OUT TYPE`: llama-quantize's job. */
#include "cli.h"
#include "quant/quant.h"
#include "tensor/tensor.h"

#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr,
            "usage: herd quantize [-t THREADS] [--pure] [-q] IN.gguf OUT.gguf TYPE\ntypes:");
    for (const herd_ftype_info *f = herd_ftype_all(); f->name; f++) fprintf(stderr, " %s", f->name);
    fprintf(stderr, "\n");
    return 2;
}

/* One line per tensor, as llama-quantize prints. */
static void show_progress(const herd_quantize_progress *q, void *user)
{
    (void)user;
    fprintf(stderr, "[%4d/%4d] %-36s %-6s -> %-6s %9.2f MiB -> %9.2f MiB\n", q->i + 1, q->n,
            q->name, herd_type_name(q->type_in), herd_type_name(q->type_out),
            q->bytes_in / 1048576.0, q->bytes_out / 1048576.0);
}

int cmd_quantize(int argc, char **argv)
{
    herd_quantize_params p = {.n_threads = 2, .progress = show_progress};
    const char *pos[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) return cli_error(2, "quantize: %s needs a value", a);
            if (!cli_threads(a, argv[++i], &p.n_threads)) return 2;
        } else if (!strcmp(a, "--pure")) {
            p.pure = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            p.progress = NULL;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (a[0] == '-' && a[1]) {
            return cli_error(2, "quantize: unknown option %s", a);
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            return usage();
        }
    }
    if (n_pos != 3) return usage();
    p.in_path = pos[0];
    p.out_path = pos[1];
    p.type = pos[2];
    if (!herd_ftype_find(p.type)) {
        cli_error(2, "quantize: unknown type '%s'", p.type);
        return usage();
    }
    herd_quantize_stats s;
    const double t0 = herd_time();
    if (herd_quantize(&p, &s)) return cli_error(1, "%s", herd_errmsg());
    fprintf(stderr,
            "herd: wrote %s (%s): %d tensors, %d quantized, %d fallbacks; "
            "%.2f MiB -> %.2f MiB (%.2f bits per weight) in %.1f s\n",
            p.out_path, herd_ftype_find(p.type)->name, s.n_tensors, s.n_quantized, s.n_fallback,
            s.bytes_in / 1048576.0, s.bytes_out / 1048576.0,
            s.n_elements ? s.bytes_out * 8.0 / (double)s.n_elements : 0.0, herd_time() - t0);
    return 0;
}
