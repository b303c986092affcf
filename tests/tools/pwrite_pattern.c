/* Writes a file with one of the write patterns real clients use, and the same final content to a local
 * file, so a test can compare the object with what should be in it.
 *
 *   pwrite_pattern MODE TARGET EXPECTED SIZE [SEED]
 *
 * MODE:
 *   shuffle   1 MiB writes arriving shuffled within groups of 10 (Samba async I/O, Windows' ~10 writes
 *             in flight)
 *   random    scattered writes of 1..64 KiB all over the file, each byte finally rewritten in a second
 *             scattered pass (forces the spool path)
 *   wine      pre-extend (1-byte zero at estimate-1, then ftruncate(estimate), estimate = 2*SIZE+1 MiB),
 *             write in order in 1 MiB pieces, ftruncate(SIZE)
 *   extend    ftruncate(SIZE) first (Windows SetEndOfFile), then in-order 64 KiB writes
 *   append    appends SIZE bytes to an existing TARGET with O_APPEND (EXPECTED must hold the old content
 *             already; the new bytes are appended to it too)
 * Exits 0 when every call and close() succeeded; prints the failing call otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static uint32_t rng_state;
static uint32_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void die(const char *what)
{
    fprintf(stderr, "pwrite_pattern: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void pwrite_all(int fd, const uint8_t *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("pwrite");
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
}

static void write_expected(const char *path, const uint8_t *data, size_t len, int append)
{
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0)
        die("open expected");
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0)
            die("write expected");
        done += (size_t)n;
    }
    if (close(fd) != 0)
        die("close expected");
}

static void shuffle(size_t *v, size_t n)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = next_random() % (i + 1);
        size_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: pwrite_pattern shuffle|random|wine|extend|append TARGET EXPECTED SIZE [SEED]\n");
        return 2;
    }
    const char *mode = argv[1], *target = argv[2], *expected = argv[3];
    size_t size = strtoull(argv[4], NULL, 10);
    rng_state = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) | 1 : 2463534242u;
    uint8_t *data = malloc(size ? size : 1);
    if (!data)
        die("malloc");
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)next_random();

    int append = strcmp(mode, "append") == 0;
    int fd = open(target, append ? (O_WRONLY | O_APPEND) : (O_WRONLY | O_CREAT | O_TRUNC), 0644);
    if (fd < 0)
        die("open target");

    if (strcmp(mode, "shuffle") == 0) {
        size_t pieces = (size + MIB - 1) / MIB;
        size_t *order = malloc(sizeof *order * (pieces ? pieces : 1));
        for (size_t g = 0; g < pieces; g += 10) {
            size_t n = pieces - g < 10 ? pieces - g : 10;
            for (size_t i = 0; i < n; i++)
                order[i] = g + i;
            shuffle(order, n);
            for (size_t i = 0; i < n; i++) {
                size_t off = order[i] * MIB;
                size_t len = size - off < MIB ? size - off : MIB;
                pwrite_all(fd, data + off, len, (off_t)off);
            }
        }
        free(order);
    } else if (strcmp(mode, "random") == 0) {
        uint8_t *junk = malloc(65536);
        for (size_t i = 0; i < 65536; i++)
            junk[i] = (uint8_t)next_random();
        for (int pass = 0; pass < 2 && size > 0; pass++) {
            /* Cover the file in 64 KiB slots visited in random order, with random extra writes. */
            size_t slots = (size + 65535) / 65536;
            size_t *order = malloc(sizeof *order * slots);
            for (size_t i = 0; i < slots; i++)
                order[i] = i;
            shuffle(order, slots);
            for (size_t i = 0; i < slots; i++) {
                size_t off = order[i] * 65536;
                size_t len = size - off < 65536 ? size - off : 65536;
                pwrite_all(fd, pass == 0 ? junk : data + off, len, (off_t)off);
                if (pass == 0) {
                    size_t o2 = next_random() % size, l2 = 1 + next_random() % 65536;
                    if (o2 + l2 > size)
                        l2 = size - o2;
                    pwrite_all(fd, junk, l2, (off_t)o2);
                }
            }
            free(order);
        }
        free(junk);
    } else if (strcmp(mode, "wine") == 0) {
        size_t estimate = 2 * size + MIB;
        uint8_t zero = 0;
        pwrite_all(fd, &zero, 1, (off_t)estimate - 1);
        if (ftruncate(fd, (off_t)estimate) != 0)
            die("ftruncate up");
        for (size_t off = 0; off < size; off += MIB)
            pwrite_all(fd, data + off, size - off < MIB ? size - off : MIB, (off_t)off);
        if (ftruncate(fd, (off_t)size) != 0)
            die("ftruncate down");
    } else if (strcmp(mode, "extend") == 0) {
        if (ftruncate(fd, (off_t)size) != 0)
            die("ftruncate");
        for (size_t off = 0; off < size; off += 65536)
            pwrite_all(fd, data + off, size - off < 65536 ? size - off : 65536, (off_t)off);
    } else if (append) {
        for (size_t off = 0; off < size; off += 100000) {
            size_t len = size - off < 100000 ? size - off : 100000;
            if (write(fd, data + off, len) != (ssize_t)len)
                die("write (append)");
        }
    } else {
        fprintf(stderr, "pwrite_pattern: unknown mode %s\n", mode);
        return 2;
    }
    if (close(fd) != 0)
        die("close target");
    write_expected(expected, data, size, append);
    free(data);
    return 0;
}
