/* Unit tests of the encrypted spool (fs/spool.c): plaintext round trips at record edges and across many
 * records, holes and truncate-extension that read zeros and use no disk, truncation inside a record,
 * the spool_bytes counter, a random write/read/truncate run against an in-memory model, and the two
 * properties of the record layout: a rewrite never reuses a keystream (the raw file before and after
 * does not XOR to the plaintexts' XOR), and a byte flipped or a record moved on disk reads as -EIO. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "spool.h"
#include "spool_cipher.h"

#define REC ((uint64_t)SPOOL_RECORD_SIZE)
#define SLOT (REC + SPOOL_RECORD_HEADER)

static const char *spool_dir(void)
{
    const char *dir = getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(rng() >> 24);
}

static spool *new_spool(fs_counters *counters)
{
    spool *sp = NULL;
    assert_int_equal(spool_new(spool_dir(), counters, &sp), 0);
    assert_non_null(sp);
    return sp;
}

static void check_read(spool *sp, uint64_t offset, const uint8_t *expect, size_t len)
{
    uint8_t *got = malloc(len ? len : 1);
    assert_int_equal(spool_read(sp, offset, got, len), (ssize_t)len);
    assert_memory_equal(got, expect, len);
    free(got);
}

static void check_zeros(spool *sp, uint64_t offset, size_t len)
{
    uint8_t *zero = calloc(1, len ? len : 1);
    check_read(sp, offset, zero, len);
    free(zero);
}

/* The raw spool file (ciphertext and headers), *len bytes. */
static uint8_t *raw_file(spool *sp, size_t *len)
{
    int fd = spool_fd_for_tests(sp);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_int_equal(pread(fd, buf, *len, 0), (ssize_t)*len);
    return buf;
}

static int contains(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t needle_len)
{
    for (size_t i = 0; i + needle_len <= hay_len; i++)
        if (memcmp(hay + i, needle, needle_len) == 0)
            return 1;
    return 0;
}

static void test_round_trip_and_size(void **state)
{
    (void)state;
    rng_state = 1;
    spool *sp = new_spool(NULL);
    uint8_t buf[100], data[100];
    assert_int_equal(spool_size(sp), 0);
    assert_int_equal(spool_read(sp, 0, buf, sizeof buf), 0);
    fill_random(data, sizeof data);
    assert_int_equal(spool_write(sp, 10, data, sizeof data), 0);
    assert_int_equal(spool_write(sp, 0, data, 0), 0);
    assert_int_equal(spool_size(sp), 110);
    check_zeros(sp, 0, 10);
    check_read(sp, 10, data, sizeof data);
    /* Reads stop at the logical size. */
    assert_int_equal(spool_read(sp, 60, buf, sizeof buf), 50);
    assert_memory_equal(buf, data + 50, 50);
    assert_int_equal(spool_read(sp, 110, buf, sizeof buf), 0);
    assert_int_equal(spool_read(sp, 5000, buf, sizeof buf), 0);
    /* No plaintext on disk. */
    size_t raw_len;
    uint8_t *raw = raw_file(sp, &raw_len);
    assert_false(contains(raw, raw_len, data, 16));
    free(raw);
    spool_free(sp);
    spool_free(NULL);
}

/* The finding this layout fixes: with a keystream tied to the offset, ciphertext(X) XOR ciphertext(Y)
 * at the same place is X XOR Y. */
static void test_rewrite_uses_fresh_keystream(void **state)
{
    (void)state;
    rng_state = 2;
    size_t len = (size_t)(3 * REC + 1000);
    uint64_t offset = REC / 2 + 7;            /* partial records at both ends, full ones between */
    uint8_t *x = malloc(len), *y = malloc(len), *xy = malloc(len);
    fill_random(x, len);
    fill_random(y, len);
    for (size_t i = 0; i < len; i++)
        xy[i] = x[i] ^ y[i];
    spool *sp = new_spool(NULL);
    assert_int_equal(spool_write(sp, offset, x, len), 0);
    size_t len1, len2;
    uint8_t *raw1 = raw_file(sp, &len1);
    assert_int_equal(spool_write(sp, offset, y, len), 0);
    check_read(sp, offset, y, len);
    uint8_t *raw2 = raw_file(sp, &len2);
    assert_int_equal(len1, len2);
    for (size_t i = 0; i < len1; i++)
        raw1[i] ^= raw2[i];
    /* Any 16 bytes of X ^ Y, taken from each record the write touched, appear nowhere in the XOR of
     * the raw files (they would, at the ciphertext's place, if the keystream were reused). */
    for (size_t q = 0; q + 16 <= len; q += (size_t)REC / 2)
        assert_false(contains(raw1, len1, xy + q, 16));
    /* The same plaintext written twice is not the same ciphertext either. */
    raw1 = (free(raw1), raw_file(sp, &len1));
    assert_int_equal(spool_write(sp, offset, y, len), 0);
    free(raw2);
    raw2 = raw_file(sp, &len2);
    assert_memory_not_equal(raw1 + SLOT, raw2 + SLOT, (size_t)SLOT);
    free(raw1);
    free(raw2);
    free(x);
    free(y);
    free(xy);
    spool_free(sp);
}

static void test_holes_use_no_disk(void **state)
{
    (void)state;
    fs_counters counters = {0};
    spool *sp = new_spool(&counters);
    int fd = spool_fd_for_tests(sp);
    struct stat st;
    uint64_t big = (uint64_t)1 << 30;
    assert_int_equal(spool_truncate(sp, big), 0);
    assert_int_equal(spool_size(sp), big);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_blocks, 0);
    assert_int_equal(counters.spool_bytes, 0);
    check_zeros(sp, 0, 10000);
    check_zeros(sp, big - 3 * REC - 5, (size_t)(3 * REC + 5));
    /* One small write in the middle allocates about one record, not the range before it. */
    uint8_t data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint64_t mid = big / 2 + 100;
    assert_int_equal(spool_write(sp, mid, data, sizeof data), 0);
    assert_int_equal(spool_size(sp), big);
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(st.st_blocks * 512 <= 4 * (off_t)SLOT);
    assert_int_equal(counters.spool_bytes, (uint64_t)st.st_size);
    check_read(sp, mid, data, sizeof data);
    check_zeros(sp, mid - 100, 100);
    check_zeros(sp, mid + sizeof data, (size_t)(2 * REC));
    check_zeros(sp, mid - 2 * REC, (size_t)(2 * REC - 100));
    /* Writes far past the end leave holes too. */
    assert_int_equal(spool_write(sp, 3 * big, data, sizeof data), 0);
    assert_int_equal(spool_size(sp), 3 * big + sizeof data);
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(st.st_blocks * 512 <= 8 * (off_t)SLOT);
    check_zeros(sp, 2 * big, 100000);
    assert_int_equal(counters.spool_bytes, (uint64_t)st.st_size);
    spool_free(sp);
    assert_int_equal(counters.spool_bytes, 0);
}

static void test_record_edges(void **state)
{
    (void)state;
    rng_state = 3;
    size_t total = (size_t)(6 * REC);
    uint8_t *model = calloc(1, total), *data = malloc(total);
    spool *sp = new_spool(NULL);
    /* Each write touches a record edge: last byte, first byte, across one edge, exactly one record,
     * one byte, and ending exactly on an edge. */
    struct { uint64_t off; size_t len; } w[] = {
        {REC - 1, 1}, {2 * REC, 1}, {2 * REC - 3, 6}, {3 * REC, (size_t)REC}, {4 * REC + 17, 1},
        {5 * REC - 40, 40}, {REC / 2, (size_t)REC}, {0, 1}, {REC - 1, 2}, {5 * REC, (size_t)REC},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        fill_random(data, w[i].len);
        assert_int_equal(spool_write(sp, w[i].off, data, w[i].len), 0);
        memcpy(model + w[i].off, data, w[i].len);
        uint64_t size = spool_size(sp);
        check_read(sp, 0, model, (size_t)size);
        /* Reads at and around every edge. */
        for (uint64_t edge = REC; edge < size; edge += REC) {
            check_read(sp, edge - 1, model + edge - 1, 2);
            check_read(sp, edge, model + edge, 1);
        }
    }
    assert_int_equal(spool_size(sp), total);
    free(model);
    free(data);
    spool_free(sp);
}

static void test_many_records(void **state)
{
    (void)state;
    rng_state = 4;
    size_t len = (size_t)(300 * REC + 123);
    uint64_t offset = 777;
    uint8_t *model = calloc(1, len + offset + REC), *data = malloc(len);
    fill_random(data, len);
    spool *sp = new_spool(NULL);
    assert_int_equal(spool_write(sp, offset, data, len), 0);
    memcpy(model + offset, data, len);
    check_read(sp, 0, model, len + offset);
    /* An unaligned overwrite in the middle and reads in odd pieces. */
    fill_random(data, (size_t)(50 * REC));
    assert_int_equal(spool_write(sp, 100 * REC + 5, data, (size_t)(50 * REC + 3)), 0);
    memcpy(model + 100 * REC + 5, data, (size_t)(50 * REC + 3));
    size_t size = (size_t)spool_size(sp);
    assert_int_equal(size, len + offset);
    for (size_t pos = 0; pos < size;) {
        size_t n = 1 + (size_t)(rng() % (3 * REC));
        if (n > size - pos)
            n = size - pos;
        check_read(sp, pos, model + pos, n);
        pos += n;
    }
    free(model);
    free(data);
    spool_free(sp);
}

static void test_truncate_inside_record_then_extend(void **state)
{
    (void)state;
    rng_state = 5;
    fs_counters counters = {0};
    size_t len = (size_t)(4 * REC);
    uint8_t *data = malloc(len);
    fill_random(data, len);
    spool *sp = new_spool(&counters);
    int fd = spool_fd_for_tests(sp);
    struct stat st;
    assert_int_equal(spool_write(sp, 0, data, len), 0);
    uint64_t cut = REC + 100;
    assert_int_equal(spool_truncate(sp, cut), 0);
    assert_int_equal(spool_size(sp), cut);
    assert_int_equal(fstat(fd, &st), 0);
    assert_true((uint64_t)st.st_size <= 2 * SLOT);
    assert_int_equal(counters.spool_bytes, (uint64_t)st.st_size);
    check_read(sp, 0, data, (size_t)cut);
    /* Growing again by truncate: the cut bytes are zeros, not the old data. */
    assert_int_equal(spool_truncate(sp, 4 * REC), 0);
    check_read(sp, 0, data, (size_t)cut);
    check_zeros(sp, cut, (size_t)(4 * REC - cut));
    /* Growing by a write past the cut record, and by a write inside it. */
    assert_int_equal(spool_truncate(sp, cut), 0);
    assert_int_equal(spool_write(sp, 3 * REC + 1, data, 10), 0);
    check_zeros(sp, cut, (size_t)(3 * REC + 1 - cut));
    check_read(sp, 3 * REC + 1, data, 10);
    assert_int_equal(spool_truncate(sp, cut - 50), 0);
    assert_int_equal(spool_write(sp, cut, data, 5), 0);
    check_read(sp, 0, data, (size_t)(cut - 50));
    check_zeros(sp, cut - 50, 50);
    check_read(sp, cut, data, 5);
    /* Truncating to a record edge and to zero. */
    assert_int_equal(spool_truncate(sp, REC), 0);
    assert_int_equal(spool_truncate(sp, 2 * REC), 0);
    check_read(sp, 0, data, (size_t)REC);
    check_zeros(sp, REC, (size_t)REC);
    assert_int_equal(spool_truncate(sp, 0), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(counters.spool_bytes, 0);
    assert_int_equal(spool_truncate(sp, 5), 0);
    check_zeros(sp, 0, 5);
    free(data);
    spool_free(sp);
}

/* Random writes, reads and truncations against a plain buffer, with a fixed seed. */
static void test_random_against_model(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ULL;
    fs_counters counters = {0};
    const size_t max = (size_t)(40 * REC);
    uint8_t *model = calloc(1, max), *buf = malloc(max), *data = malloc(max);
    uint64_t size = 0;
    spool *sp = new_spool(&counters);
    for (int op = 0; op < 4000; op++) {
        unsigned kind = (unsigned)(rng() % 10);
        if (kind < 5) {
            uint64_t off = rng() % (max - 1);
            size_t len = 1 + (size_t)(rng() % (kind == 0 ? 4 * REC : 300));
            if (off + len > max)
                len = (size_t)(max - off);
            fill_random(data, len);
            assert_int_equal(spool_write(sp, off, data, len), 0);
            memcpy(model + off, data, len);
            if (off + len > size)
                size = off + len;
        } else if (kind < 9) {
            uint64_t off = rng() % max;
            size_t len = (size_t)(rng() % (2 * REC));
            ssize_t expect = off >= size ? 0 : (ssize_t)(len < size - off ? len : size - off);
            assert_int_equal(spool_read(sp, off, buf, len), expect);
            assert_memory_equal(buf, model + off, (size_t)expect);
        } else {
            uint64_t to = rng() % max;
            assert_int_equal(spool_truncate(sp, to), 0);
            if (to < size)
                memset(model + to, 0, (size_t)(size - to));
            size = to;
        }
        assert_int_equal(spool_size(sp), size);
        if (op % 500 == 0) {
            struct stat st;
            assert_int_equal(fstat(spool_fd_for_tests(sp), &st), 0);
            assert_int_equal(counters.spool_bytes, (uint64_t)st.st_size);
            assert_int_equal(spool_read(sp, 0, buf, max), (ssize_t)size);
            assert_memory_equal(buf, model, (size_t)size);
        }
    }
    assert_int_equal(spool_read(sp, 0, buf, max), (ssize_t)size);
    assert_memory_equal(buf, model, (size_t)size);
    spool_free(sp);
    assert_int_equal(counters.spool_bytes, 0);
    free(model);
    free(buf);
    free(data);
}

static void flip_byte(spool *sp, uint64_t at)
{
    int fd = spool_fd_for_tests(sp);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
    b ^= 0x20;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
}

static void test_corruption_is_eio(void **state)
{
    (void)state;
    rng_state = 6;
    size_t len = (size_t)(3 * REC);
    uint8_t *data = malloc(len), *buf = malloc(len);
    fill_random(data, len);
    /* A flipped ciphertext byte (record 1), header byte (record 2: generation, length, tag). */
    uint64_t spots[] = {SLOT + SPOOL_RECORD_HEADER + 5, 2 * SLOT + 3, 2 * SLOT + 10, 2 * SLOT + 20};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        spool *sp = new_spool(NULL);
        assert_int_equal(spool_write(sp, 0, data, len), 0);
        flip_byte(sp, spots[i]);
        uint64_t rec = spots[i] / SLOT;
        check_read(sp, 0, data, (size_t)REC);             /* record 0 is intact */
        assert_int_equal(spool_read(sp, rec * REC + 1, buf, 1), -EIO);
        assert_int_equal(spool_read(sp, 0, buf, len), -EIO);
        /* A write that must keep the record's other bytes refuses too; a whole-record one replaces it. */
        assert_int_equal(spool_write(sp, rec * REC + 1, data, 1), -EIO);
        assert_int_equal(spool_write(sp, rec * REC, data + rec * REC, (size_t)REC), 0);
        check_read(sp, 0, data, len);
        spool_free(sp);
    }
    /* A record copied to another index does not open there. */
    spool *sp = new_spool(NULL);
    assert_int_equal(spool_write(sp, 0, data, len), 0);
    int fd = spool_fd_for_tests(sp);
    uint8_t *slot = malloc(SLOT);
    assert_int_equal(pread(fd, slot, SLOT, 0), (ssize_t)SLOT);
    assert_int_equal(pwrite(fd, slot, SLOT, (off_t)SLOT), (ssize_t)SLOT);
    assert_int_equal(spool_read(sp, REC, buf, 10), -EIO);
    /* A record cut short on disk (its ciphertext missing) does not open either. */
    assert_int_equal(ftruncate(fd, (off_t)(2 * SLOT + SPOOL_RECORD_HEADER + 10)), 0);
    assert_int_equal(spool_read(sp, 2 * REC, buf, 10), -EIO);
    free(slot);
    spool_free(sp);
    free(data);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_size),
        cmocka_unit_test(test_rewrite_uses_fresh_keystream),
        cmocka_unit_test(test_holes_use_no_disk),
        cmocka_unit_test(test_record_edges),
        cmocka_unit_test(test_many_records),
        cmocka_unit_test(test_truncate_inside_record_then_extend),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_corruption_is_eio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
