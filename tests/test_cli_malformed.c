/*
 * test_cli_malformed.c — every malformed GGUF file of tests/malformed.c, on
 * disk, given to `herd info` and `herd run`: each must end with a non-zero
 * exit and exactly one line on stderr that starts with "herd: " (so neither a
 * crash nor a sanitizer report, which print many lines, can pass).
 */
#include "helpers.h"
#include "malformed.h"

#include <stdlib.h>
#include <string.h>

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

static void expect_one_error(const char *cmd, const char *what)
{
    char *out = NULL, *err = NULL;
    int rc = test_run(cmd, &out, &err);
    CHECKF(rc > 0 && rc < 128, "%s: exit %d for: %s", what, rc, cmd);
    CHECKF(err && count_lines(err) == 1 && !strncmp(err, "herd: ", 6),
           "%s: stderr is not one 'herd:' line: %s", what, err ? err : "(none)");
    free(out);
    free(err);
}

int main(void)
{
    const char *herd = test_herd_bin();
    char path[512], cmd[1200];
    int n = malformed_count();
    CHECK(n >= 20);
    for (int i = 0; i < n; i++) {
        uint8_t *buf;
        size_t len;
        const char *what;
        if (!malformed_build(i, &buf, &len, &what)) continue;
        snprintf(path, sizeof path, "%s/bad-%02d.gguf", test_tmpdir(), i);
        CHECK(test_write_file(path, buf, len));
        free(buf);
        snprintf(cmd, sizeof cmd, "%s info %s", herd, path);
        expect_one_error(cmd, what);
        snprintf(cmd, sizeof cmd, "%s run -m %s -p hello -n 2", herd, path);
        expect_one_error(cmd, what);
    }
    /* Not a file at all, and a missing file. */
    snprintf(cmd, sizeof cmd, "%s info %s", herd, test_tmpdir());
    expect_one_error(cmd, "a directory");
    snprintf(cmd, sizeof cmd, "%s run -m %s/missing.gguf -p hi", herd, test_tmpdir());
    expect_one_error(cmd, "a missing file");
    /* A valid GGUF file that is not a model (a bare vocabulary). */
    if (test_shared("vocab/ggml-vocab-llama-spm.gguf", path, sizeof path)) {
        snprintf(cmd, sizeof cmd, "%s run -m %s -p hi", herd, path);
        expect_one_error(cmd, "a vocabulary without weights");
    }
    /* Bad options. */
    snprintf(cmd, sizeof cmd, "%s run -m x.gguf -n notanumber", herd);
    expect_one_error(cmd, "a bad number");
    snprintf(cmd, sizeof cmd, "%s run --bogus", herd);
    expect_one_error(cmd, "an unknown flag");
    return test_report();
}
