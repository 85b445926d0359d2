/* util.c — per-thread error messages, checked allocation, clock. */
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char errbuf[512];

herd_status herd_seterr(herd_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return st;
}

void herd_clearerr(void)
{
    errbuf[0] = 0;
}

const char *herd_errmsg(void)
{
    return errbuf;
}

const char *herd_status_name(herd_status st)
{
    static const char *const names[] = {"ok",           "invalid argument", "I/O error",
                                        "bad format",   "unsupported",      "out of memory",
                                        "out of range", "context full"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown error";
}

void *herd_calloc(size_t n, size_t size)
{
    uint64_t total;
    if (!herd_mul_ok(n, size, &total) || total > SIZE_MAX) {
        herd_seterr(HERD_E_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        herd_seterr(HERD_E_NOMEM, "out of memory allocating %llu bytes", (unsigned long long)total);
    return p;
}

void *herd_alloc_aligned(size_t size)
{
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size) {
        herd_seterr(HERD_E_NOMEM, "allocation of %zu bytes overflows", size);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p)
        herd_seterr(HERD_E_NOMEM, "out of memory allocating %zu bytes", size);
    else
        memset(p, 0, rounded ? rounded : 64);
    return p;
}

double herd_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool herd_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b || stat(a, &sa) != 0 || stat(b, &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

herd_status herd_out_open(herd_out *o, const char *path, const char *input)
{
    memset(o, 0, sizeof *o);
    if (!path || !*path) return herd_seterr(HERD_E_INVALID, "no output file given");
    if (input && herd_same_file(path, input))
        return herd_seterr(HERD_E_INVALID, "%s: output is the input file; choose another name",
                           path);
    /* Not a regular file (/dev/null, /dev/stdout, a FIFO): written in place,
     * since renaming a temporary file over it would replace the device or
     * pipe with a plain file. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        o->path = strdup(path);
        o->fp = o->path ? fopen(path, "wb") : NULL;
        if (o->fp) return HERD_OK;
        herd_status err = o->path
                              ? herd_seterr(HERD_E_IO, "%s: cannot open: %s", path, strerror(errno))
                              : herd_seterr(HERD_E_NOMEM, "out of memory");
        herd_out_abort(o);
        return err;
    }
    /* A symlink as output: write through it to its target's folder, so that
     * the rename replaces the target and keeps the link. */
    char *real = realpath(path, NULL);
    const char *target = real ? real : path;
    size_t n = strlen(target);
    o->path = malloc(n + 1);
    o->tmp = malloc(n + 16);
    if (!o->path || !o->tmp) {
        free(real);
        herd_out_abort(o);
        return herd_seterr(HERD_E_NOMEM, "out of memory");
    }
    memcpy(o->path, target, n + 1);
    free(real);
    snprintf(o->tmp, n + 16, "%s.tmp-XXXXXX", o->path);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        herd_status st = herd_seterr(HERD_E_IO, "%s: cannot create: %s", path, strerror(errno));
        free(o->tmp), o->tmp = NULL;
        herd_out_abort(o);
        return st;
    }
    /* mkstemp makes 0600; outputs are ordinary files (0666 less the umask). */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        close(fd);
        herd_out_abort(o);
        return herd_seterr(HERD_E_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    return HERD_OK;
}

herd_status herd_out_commit(herd_out *o)
{
    int bad = ferror(o->fp);
    /* fsync only what is renamed into place (a device may not support it). */
    if (fflush(o->fp) != 0 || (o->tmp && fsync(fileno(o->fp)) != 0)) bad = 1;
    if (fclose(o->fp) != 0) bad = 1;
    o->fp = NULL;
    if (bad) {
        herd_status st = herd_seterr(HERD_E_IO, "%s: write failed: %s", o->path, strerror(errno));
        herd_out_abort(o);
        return st;
    }
    if (o->tmp && rename(o->tmp, o->path) != 0) {
        herd_status st =
            herd_seterr(HERD_E_IO, "%s: cannot rename into place: %s", o->path, strerror(errno));
        herd_out_abort(o);
        return st;
    }
    free(o->tmp), o->tmp = NULL;
    free(o->path), o->path = NULL;
    return HERD_OK;
}

void herd_out_abort(herd_out *o)
{
    if (o->fp) fclose(o->fp);
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}
