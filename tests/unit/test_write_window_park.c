/* Writes further ahead of the frontier than reorder_window (a request smbd's thread pool or the client
 * held back while later ones went on), or ahead of it when max_memory has no room, are parked in an
 * encrypted overflow spool and the file keeps streaming, also after parts were uploaded; parked bytes
 * can be overwritten, zeroed and truncated like held ones, and move to the spool if the file leaves the
 * streaming path. Objects are decrypted with the crypto primitives (write_fixture.h) and compared with
 * the plaintext the test expects. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "write_file.h"

#define MIB (1024 * 1024)

#include "write_fixture.h"

static void fixture_init(fixture *f, uint64_t max_memory, uint64_t window)
{
    fixture_config cfg = { .part_size = 5 * MIB, .max_memory = max_memory, .reorder_window = window,
                           .upload_workers = 2 };
    fixture_setup(f, &cfg);
}

static void write_range(write_file *wf, const uint8_t *plain, uint64_t from, uint64_t to, size_t chunk)
{
    for (uint64_t off = from; off < to; off += chunk) {
        size_t n = to - off < chunk ? (size_t)(to - off) : chunk;
        assert_int_equal(write_file_write(wf, (const char *)plain + off, n, (off_t)off), (ssize_t)n);
    }
}

static void expect_object(fixture *f, const char *key, const uint8_t *want, size_t want_len)
{
    size_t got_len = 0;
    int encrypted = 0;
    uint8_t *got = decrypt_object(f, key, &got_len, NULL, &encrypted);
    assert_true(encrypted);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
}

/* First part already in S3, then 8 MiB arrive 8 MiB past the frontier (4 MiB window): parked, patched
 * (bytes inside a parked piece, zeros splitting one), then the gap fills and the file streams on. */
static void test_far_writes_park_after_parts_uploaded(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 48 * MIB, 4 * MIB);
    const size_t total = 30 * MIB;
    uint8_t *plain = make_plain(total, 51);
    uint8_t *patch = make_plain(1000, 52);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/far.bak", 0100644, &wf), 0);
    write_range(wf, plain, 0, 12 * MIB, MIB);
    assert_int_equal(write_file_fsync(wf), 0);
    assert_true(f.ctx.counters.parts_uploaded >= 2);

    write_range(wf, plain, 20 * MIB, 28 * MIB, MIB);
    assert_int_equal(f.ctx.counters.window_parked_bytes, 8 * MIB);
    assert_true(f.ctx.counters.spool_bytes >= 8 * MIB);
    memcpy(plain + 21 * MIB + 500, patch, 1000);
    assert_int_equal(write_file_write(wf, (const char *)patch, 1000, 21 * MIB + 500), 1000);
    memset(plain + 22 * MIB + 100, 0, 4096);
    static const uint8_t zeros[4096];
    assert_int_equal(write_file_write(wf, (const char *)zeros, sizeof zeros, 22 * MIB + 100), 4096);

    write_range(wf, plain, 12 * MIB, 20 * MIB, MIB);
    write_range(wf, plain, 28 * MIB, total, MIB);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    assert_int_equal(f.ctx.counters.spool_bytes, 0);
    expect_object(&f, "far.bak", plain, total);
    free(patch);
    free(plain);
    fixture_free(&f);
}

/* A rewrite below the frontier before any part left memory: the file moves to the spool and takes the
 * streamed bytes and the parked ones with it. */
static void test_parked_bytes_follow_into_the_spool(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 48 * MIB, 4 * MIB);
    const size_t total = 11 * MIB;
    uint8_t *plain = make_plain(total, 53);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/mv.bak", 0100644, &wf), 0);
    write_range(wf, plain, 0, MIB, MIB);
    write_range(wf, plain, 10 * MIB, 11 * MIB, MIB);
    assert_int_equal(f.ctx.counters.window_parked_bytes, MIB);
    plain[10] ^= 0x5a;
    assert_int_equal(write_file_write(wf, (const char *)plain + 10, 1, 10), 1);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 1);
    write_range(wf, plain, MIB, 10 * MIB, MIB);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_bytes, 0);
    expect_object(&f, "mv.bak", plain, total);
    free(plain);
    fixture_free(&f);
}

/* Truncating through a parked piece keeps only what lies below the new size. */
static void test_truncate_cuts_parked_bytes(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 48 * MIB, 4 * MIB);
    uint8_t *plain = make_plain(12 * MIB, 54);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/cut.bak", 0100644, &wf), 0);
    write_range(wf, plain, 0, MIB, MIB);
    write_range(wf, plain, 10 * MIB, 12 * MIB, MIB);
    assert_int_equal(write_file_truncate(wf, 10 * MIB + 12345), 0);
    write_range(wf, plain, MIB, 10 * MIB, MIB);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    expect_object(&f, "cut.bak", plain, 10 * MIB + 12345);
    free(plain);
    fixture_free(&f);
}

/* A wide window but little memory: out-of-order writes are held in memory while the cap has room, and
 * parked (never waited for, never a spool fallback) once it has not. */
static void test_no_memory_parks_instead_of_waiting(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 16 * MIB, 64 * MIB);
    const size_t total = 24 * MIB;
    uint8_t *plain = make_plain(total, 55);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/tight.bak", 0100644, &wf), 0);
    write_range(wf, plain, 0, MIB, MIB);
    write_range(wf, plain, 2 * MIB, total, MIB);
    assert_true(f.ctx.counters.window_parked_bytes > 0);
    assert_true(f.ctx.counters.window_parked_bytes < total - 2 * MIB);
    assert_true(memory_budget_used(&f.ctx.memory) <= 16 * MIB);
    write_range(wf, plain, MIB, 2 * MIB, MIB);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    expect_object(&f, "tight.bak", plain, total);
    free(plain);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_far_writes_park_after_parts_uploaded),
        cmocka_unit_test(test_parked_bytes_follow_into_the_spool),
        cmocka_unit_test(test_truncate_cuts_parked_bytes),
        cmocka_unit_test(test_no_memory_parks_instead_of_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
