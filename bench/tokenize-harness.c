/*
 * tokenize-harness.c — herd's tokenizer on vocabulary-only GGUF files, for the
 * scripts beside it (tokenize-oracle compares ids with llama.cpp's,
 * tokenize-speed times both). `herd tokenize` needs a model with weights;
 * this loads just the vocabulary, as `oracle tokenize` does.
 *
 *   tokenize-harness gen SEED N STEP FILE   random strings i = 0, STEP, 2*STEP, …
 *                                           < N (tokenize-random.h), in the
 *                                           oracle's --batch format
 *   tokenize-harness bytes SEED N FILE      N random byte strings (invalid
 *                                           UTF-8), none that llama.cpp aborts on
 *   tokenize-harness ids VOCAB FILE         ids of each text in FILE, as
 *                                           `oracle tokenize VOCAB --batch FILE`
 *                                           prints them (no BOS, specials as text)
 *   tokenize-harness corpus OUT SIZE F...   SIZE bytes of mixed text: 4 KiB from
 *                                           each file F in turn, round and round
 *                                           (cut between UTF-8 characters)
 *   tokenize-harness speed VOCAB FILE [R]   tokenize FILE (up to a batch
 *                                           separator, if any) R times (default
 *                                           5), no BOS, specials as text: wall and
 *                                           CPU seconds, MB/s
 *   tokenize-harness retag IN OUT PRE       copy vocabulary IN to OUT with
 *                                           tokenizer.ggml.pre = PRE, to try
 *                                           pre-tokenizers no vocabulary here has
 *
 * Build: cc -O2 -Iinclude -Isrc bench/tokenize-harness.c BUILD/libherd.a
 *        $(pkg-config --libs libpcre2-8 jansson) -fopenmp -lm
 * (tokenize-speed and tokenize-oracle do it).
 */
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenize-random.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char SEP[] = "\n__ggml_vocab_test__\n";

static void die(const char *what)
{
    fprintf(stderr, "tokenize-harness: %s: %s\n", what, herd_errmsg());
    exit(1);
}

static herd_vocab *load(const char *path)
{
    gguf_file *f;
    herd_vocab *v;
    if (gguf_open(path, &f)) die(path);
    if (herd_vocab_load(f, &v)) die(path);
    gguf_close(f);
    return v;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) die("read");
    s[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return s;
}

static int32_t *tokenize(const herd_vocab *v, const char *s, size_t len, int *n)
{
    int need = 0;
    if (herd_vocab_tokenize(v, s, len, false, false, NULL, 0, &need)) die("tokenize");
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    if (herd_vocab_tokenize(v, s, len, false, false, ids, need, n)) die("tokenize");
    return ids;
}

static int cmd_gen(uint64_t seed, long n, long step, const char *path)
{
    FILE *f = fopen(path, "wb");
    static char buf[4096];
    rand_text r = {seed};
    for (long i = 0; i < n; i++) {
        size_t len = rt_string(&r, buf, sizeof buf);
        if (i % step == 0) {
            fwrite(buf, 1, len, f);
            fputs(SEP, f);
        }
    }
    return fclose(f) != 0;
}

/* Would llama.cpp abort on s? It throws on a 4-byte form above U+10FFFF. */
static bool aborts_llama(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (s[i] < 0xF0 || s[i] > 0xF7) continue;
        if ((s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
            continue;
        if (((s[i] & 7u) << 18 | (s[i + 1] & 0x3Fu) << 12) > 0x10FFFF) return true;
    }
    return false;
}

static int cmd_bytes(uint64_t seed, long n, const char *path)
{
    FILE *f = fopen(path, "wb");
    rand_text r = {seed};
    uint8_t buf[64];
    for (long i = 0; i < n;) {
        size_t len = rt_below(&r, 9); /* the oracle has room for len + 16 ids */
        for (size_t j = 0; j < len; j++) {
            uint32_t x = rt_next(&r);
            /* bias to the bytes UTF-8 is made of, and some ASCII */
            buf[j] = (uint8_t)(x % 3 == 0   ? 0x80 + (x >> 8) % 0x80
                               : x % 3 == 1 ? (x >> 8)
                                            : 'a' + (x >> 8) % 3);
            if (buf[j] == 0) buf[j] = ' ';
        }
        if (aborts_llama(buf, len)) continue;
        fwrite(buf, 1, len, f);
        fputs(SEP, f);
        i++;
    }
    return fclose(f) != 0;
}

static int cmd_ids(const char *vocab, const char *path)
{
    herd_vocab *v = load(vocab);
    size_t len;
    char *text = read_all(path, &len);
    for (char *p = text, *q; (q = strstr(p, SEP)) != NULL; p = q + strlen(SEP)) {
        int n;
        int32_t *ids = tokenize(v, p, (size_t)(q - p), &n);
        for (int i = 0; i < n; i++) printf(" %d", ids[i]);
        printf("\n");
        free(ids);
    }
    free(text);
    herd_vocab_free(v);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* CPU seconds of this thread: steadier than the wall clock on a busy machine. */
static double cpu_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Turn every batch separator in s[0..*len) into a newline (the vocabularies'
 * .inp files have them), so that the corpus is one text to the oracle. */
static void drop_separators(char *s, size_t *len)
{
    size_t m = 0, sl = strlen(SEP);
    for (size_t i = 0; i < *len;) {
        if (*len - i >= sl && memcmp(s + i, SEP, sl) == 0) {
            s[m++] = '\n';
            i += sl;
        } else {
            s[m++] = s[i++];
        }
    }
    *len = m;
}

static int cmd_corpus(const char *out, long size, char **files, int n_files)
{
    FILE *f = fopen(out, "wb");
    char **text = calloc((size_t)n_files, sizeof *text);
    size_t *len = calloc((size_t)n_files, sizeof *len), *at = calloc((size_t)n_files, sizeof *at);
    for (int i = 0; i < n_files; i++) {
        text[i] = read_all(files[i], &len[i]);
        drop_separators(text[i], &len[i]);
    }
    for (long done = 0; done < size;) {
        for (int i = 0; i < n_files && done < size; i++) {
            if (!len[i]) continue;
            size_t k = 4096 < size - done ? 4096 : (size_t)(size - done);
            if (k > len[i] - at[i]) k = len[i] - at[i];
            /* end between characters: not before a continuation byte */
            while (k > 1 && at[i] + k < len[i] && (text[i][at[i] + k] & 0xC0) == 0x80) k--;
            fwrite(text[i] + at[i], 1, k, f);
            done += (long)k;
            at[i] = at[i] + k >= len[i] ? 0 : at[i] + k;
        }
    }
    for (int i = 0; i < n_files; i++) free(text[i]);
    free(text);
    free(len);
    free(at);
    return fclose(f) != 0;
}

static int cmd_speed(const char *vocab, const char *path, int reps)
{
    double t0 = herd_time();
    herd_vocab *v = load(vocab);
    double t_load = herd_time() - t0;
    size_t len;
    char *text = read_all(path, &len);
    char *sep = strstr(text, SEP); /* the oracle's batch file: one text */
    if (sep) len = (size_t)(sep - text);
    double t[64], c[64];
    int n = 0;
    if (reps < 1 || reps > 64) reps = 5;
    for (int r = 0; r < reps; r++) {
        t0 = herd_time();
        double c0 = cpu_time();
        free(tokenize(v, text, len, &n));
        t[r] = herd_time() - t0;
        c[r] = cpu_time() - c0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    qsort(c, (size_t)reps, sizeof c[0], cmp_double);
    printf("load %.3f s, %zu bytes -> %d tokens; wall best %.4f s median %.4f s; "
           "cpu best %.4f s median %.4f s; %.1f MB/s (cpu median)\n",
           t_load, len, n, t[0], t[reps / 2], c[0], c[reps / 2], (double)len / c[reps / 2] / 1e6);
    free(text);
    herd_vocab_free(v);
    return 0;
}

static int cmd_retag(const char *in, const char *out, const char *pre)
{
    gguf_file *f;
    if (gguf_open(in, &f)) die(in);
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (kv->key.len == 18 && !memcmp(kv->key.ptr, "tokenizer.ggml.pre", 18)) continue;
        if (gguf_copy_kv(w, kv)) die("copy");
    }
    if (gguf_set_str(w, "tokenizer.ggml.pre", pre) || gguf_write_file(w, out)) die(out);
    gguf_writer_free(w);
    gguf_close(f);
    return 0;
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "gen") && argc == 6)
        return cmd_gen(strtoull(argv[2], NULL, 0), atol(argv[3]), atol(argv[4]), argv[5]);
    if (!strcmp(c, "bytes") && argc == 5)
        return cmd_bytes(strtoull(argv[2], NULL, 0), atol(argv[3]), argv[4]);
    if (!strcmp(c, "ids") && argc == 4) return cmd_ids(argv[2], argv[3]);
    if (!strcmp(c, "corpus") && argc >= 5)
        return cmd_corpus(argv[2], atol(argv[3]), argv + 4, argc - 4);
    if (!strcmp(c, "retag") && argc == 5) return cmd_retag(argv[2], argv[3], argv[4]);
    if (!strcmp(c, "speed") && argc >= 4)
        return cmd_speed(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 5);
    fprintf(stderr, "usage: tokenize-harness gen SEED N STEP FILE | bytes SEED N FILE |\n"
                    "       ids VOCAB FILE | speed VOCAB FILE [REPS] | retag IN OUT PRE |\n"
                    "       corpus OUT SIZE FILE...\n");
    return 2;
}
