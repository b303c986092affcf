/* Throughput of the encrypted local spool (fs/spool.c), for comparing spool layouts on this machine.
 *
 *   spool_bench [--dir DIR] [--mib N] [--io KIB] [--random N]
 *
 * Sequential: writes N MiB (default 1024) in --io KiB writes (default 128, FUSE's usual write size),
 * then reads it back in the same size, and prints MB/s and CPU seconds per GiB of each phase. Random:
 * --random N 4 KiB rewrites at random 4 KiB-aligned offsets inside the file (default 20000), then as
 * many 4 KiB reads. Prints figures only; it is not a pass/fail test (the spool unit tests check
 * correctness). The page cache is not dropped, as in the daemon's own use of a fresh spool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "spool.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void report(const char *what, uint64_t bytes, double wall, double cpu)
{
    double gib = (double)bytes / (1024.0 * 1024 * 1024);
    printf("%-16s %8.0f MB/s  %6.2f CPU s/GiB\n", what, (double)bytes / 1e6 / wall, cpu / gib);
}

int main(int argc, char **argv)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    uint64_t mib = 1024;
    size_t io = 128 * 1024;
    unsigned long random_ops = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--mib") == 0)
            mib = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--io") == 0)
            io = (size_t)strtoull(argv[i + 1], NULL, 10) * 1024;
        else if (strcmp(argv[i], "--random") == 0)
            random_ops = strtoul(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: spool_bench [--dir DIR] [--mib N] [--io KIB] [--random N]\n");
            return 2;
        }
    }
    if (io == 0 || mib == 0) {
        fprintf(stderr, "spool_bench: --io and --mib must be positive\n");
        return 2;
    }
    uint64_t total = mib * 1024 * 1024;
    uint8_t *buf = malloc(io);
    if (!buf)
        return 1;
    for (size_t i = 0; i < io; i++)
        buf[i] = (uint8_t)(i * 131 + 7);

    spool *sp = NULL;
    int rc = spool_new(dir, NULL, &sp);
    if (rc != 0) {
        fprintf(stderr, "spool_new(%s): %s\n", dir, strerror(-rc));
        return 1;
    }
    printf("spool in %s, %llu MiB, %zu KiB writes\n", dir, (unsigned long long)mib, io / 1024);

    double t0 = now_s(), c0 = cpu_s();
    for (uint64_t off = 0; off < total; off += io) {
        size_t n = total - off < io ? (size_t)(total - off) : io;
        if ((rc = spool_write(sp, off, buf, n)) != 0) {
            fprintf(stderr, "spool_write: %s\n", strerror(-rc));
            return 1;
        }
    }
    double t1 = now_s(), c1 = cpu_s();
    report("seq write", total, t1 - t0, c1 - c0);

    for (uint64_t off = 0; off < total; off += io) {
        ssize_t got = spool_read(sp, off, buf, io);
        if (got < 0) {
            fprintf(stderr, "spool_read: %s\n", strerror((int)-got));
            return 1;
        }
    }
    double t2 = now_s(), c2 = cpu_s();
    report("seq read", total, t2 - t1, c2 - c1);
    report("seq write+read", 2 * total, t2 - t0, c2 - c0);

    if (random_ops > 0) {
        uint64_t pages = total / 4096;
        uint64_t x = 88172645463325252ULL;     /* xorshift64: fixed sequence, so runs compare */
        uint8_t page[4096];
        memset(page, 0x5a, sizeof page);
        t0 = now_s();
        c0 = cpu_s();
        for (unsigned long i = 0; i < random_ops; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if ((rc = spool_write(sp, (x % pages) * 4096, page, sizeof page)) != 0) {
                fprintf(stderr, "spool_write: %s\n", strerror(-rc));
                return 1;
            }
        }
        t1 = now_s();
        c1 = cpu_s();
        for (unsigned long i = 0; i < random_ops; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (spool_read(sp, (x % pages) * 4096, page, sizeof page) < 0) {
                fprintf(stderr, "spool_read failed\n");
                return 1;
            }
        }
        t2 = now_s();
        c2 = cpu_s();
        printf("%-16s %8.0f ops/s\n", "random 4K write", (double)random_ops / (t1 - t0));
        printf("%-16s %8.0f ops/s\n", "random 4K read", (double)random_ops / (t2 - t1));
    }
    spool_free(sp);
    free(buf);
    return 0;
}
