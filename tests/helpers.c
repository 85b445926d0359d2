/* helpers.c — see helpers.h. */
#define _GNU_SOURCE
#include "helpers.h"

#include <math.h>

#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int test_checks, test_failures, test_skips;

int test_report(void)
{
    fprintf(stderr, "%d checks, %d failed, %d parts skipped\n", test_checks, test_failures,
            test_skips);
    return test_failures ? 1 : test_skips ? 77 : 0;
}

void test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "skip: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    test_skips++;
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0) {
        fclose(f);
        return NULL;
    }
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    if (len) *len = got;
    return buf;
}

bool test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static char tmp_dir[256];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void)
{
    const char *keep = getenv("HERD_TEST_KEEP");
    if (keep && *keep && strcmp(keep, "0") != 0)
        fprintf(stderr, "kept %s\n", tmp_dir);
    else
        nftw(tmp_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *test_tmpdir(void)
{
    if (!tmp_dir[0]) {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/herd-test-XXXXXX");
        if (!mkdtemp(tmp_dir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmp_dir;
}

int test_run(const char *cmd, char **out, char **err)
{
    char outp[300], errp[300];
    snprintf(outp, sizeof outp, "%s/run.out", test_tmpdir());
    snprintf(errp, sizeof errp, "%s/run.err", test_tmpdir());
    size_t n = strlen(cmd) + 2 * sizeof outp + 32;
    char *full = malloc(n);
    if (!full) return -1;
    snprintf(full, n, "( %s ) >%s 2>%s", cmd, outp, errp);
    int st = system(full);
    free(full);
    if (out) *out = test_read_file(outp, NULL);
    if (err) *err = test_read_file(errp, NULL);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

const char *test_herd_bin(void)
{
    const char *b = getenv("HERD_BIN");
    return b && *b ? b : "build/herd";
}

bool test_shared(const char *rel, char *path, size_t cap)
{
    snprintf(path, cap, "../shared/%s", rel);
    if (access(path, R_OK) == 0) return true;
    const char *req = getenv("HERD_REQUIRE_SHARED");
    if (req && *req && strcmp(req, "0") != 0) {
        test_checks++, test_failures++;
        fprintf(stderr, "FAIL: %s not found, and HERD_REQUIRE_SHARED is set\n", path);
    } else {
        test_skip("%s not found", path);
    }
    return false;
}

int test_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

float test_top2_gap(const float *x, int n)
{
    const int best = test_argmax(x, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != best && x[i] > second) second = x[i];
    return x[best] - second;
}

double test_kl_div(const float *p_logits, const float *q_logits, int n)
{
    double mp = -INFINITY, mq = -INFINITY, sp = 0, sq = 0, kl = 0;
    for (int i = 0; i < n; i++) mp = fmax(mp, p_logits[i]), mq = fmax(mq, q_logits[i]);
    for (int i = 0; i < n; i++) sp += exp(p_logits[i] - mp), sq += exp(q_logits[i] - mq);
    for (int i = 0; i < n; i++) {
        double lp = p_logits[i] - mp - log(sp), lq = q_logits[i] - mq - log(sq);
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}
