/* The status text: one "name value" line per counter with the field's own name, then memory figures;
 * every field of fs_counters appears (so a counter added to the struct but not to the table fails
 * here), and truncation keeps the output NUL-terminated and reports what was written. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"

/* Expected names, written from the header independently of counters.c's table. */
static const char *const expected_names[] = {
    "bytes_written_plain", "bytes_uploaded", "bytes_read_plain", "bytes_fetched", "uploads_started",
    "uploads_completed", "uploads_failed", "parts_uploaded", "parts_in_flight", "spool_fallbacks",
    "spool_bytes", "kms_generate_calls", "kms_decrypt_calls", "key_cache_hits", "s3_requests", "s3_retries",
    "s3_errors", "decrypt_errors", "window_parked_bytes", "heap_trims",
    "open_files",
};
#define EXPECTED_COUNT (sizeof expected_names / sizeof expected_names[0])

static void fill(fs_counters *c)
{
    memset(c, 0, sizeof *c);
    atomic_store(&c->bytes_written_plain, 1);
    atomic_store(&c->bytes_uploaded, 2);
    atomic_store(&c->bytes_read_plain, 3);
    atomic_store(&c->bytes_fetched, 4);
    atomic_store(&c->uploads_started, 5);
    atomic_store(&c->uploads_completed, 6);
    atomic_store(&c->uploads_failed, 7);
    atomic_store(&c->parts_uploaded, 8);
    atomic_store(&c->parts_in_flight, 9);
    atomic_store(&c->spool_fallbacks, 10);
    atomic_store(&c->spool_bytes, 11);
    atomic_store(&c->kms_generate_calls, 12);
    atomic_store(&c->kms_decrypt_calls, 13);
    atomic_store(&c->key_cache_hits, 14);
    atomic_store(&c->s3_requests, 15);
    atomic_store(&c->s3_retries, 16);
    atomic_store(&c->s3_errors, 17);
    atomic_store(&c->decrypt_errors, 18);
    atomic_store(&c->window_parked_bytes, 19);
    atomic_store(&c->heap_trims, 20);
    atomic_store(&c->open_files, UINT64_MAX);
}

static int line_count(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_every_counter_has_its_line(void **state)
{
    (void)state;
    /* If this fails, a field was added to fs_counters without a name (or the other way round). */
    assert_int_equal(sizeof(fs_counters) / sizeof(uint64_t), EXPECTED_COUNT);
    fs_counters c;
    fill(&c);
    char out[4096];
    size_t len = fs_counters_format(&c, 100, 200, 150, out, sizeof out);
    assert_int_equal(len, strlen(out));
    assert_int_equal(line_count(out), EXPECTED_COUNT + 3);
    for (size_t i = 0; i < EXPECTED_COUNT; i++) {
        char line[128];
        if (i + 1 < EXPECTED_COUNT)
            snprintf(line, sizeof line, "%s %zu\n", expected_names[i], i + 1);
        else
            snprintf(line, sizeof line, "%s 18446744073709551615\n", expected_names[i]);
        assert_non_null(strstr(out, line));
        /* a whole line, not the tail of a longer name */
        const char *at = strstr(out, line);
        assert_true(at == out || at[-1] == '\n');
    }
    assert_non_null(strstr(out, "\nmemory_used 100\n"));
    assert_non_null(strstr(out, "\nmemory_limit 200\n"));
    assert_non_null(strstr(out, "\nmemory_peak 150\n"));
}

static void test_truncation(void **state)
{
    (void)state;
    fs_counters c;
    fill(&c);
    char full[4096];
    size_t full_len = fs_counters_format(&c, 1, 2, 3, full, sizeof full);
    for (size_t cap = 1; cap < full_len + 5; cap += 7) {
        char out[4096];
        memset(out, 'x', sizeof out);
        size_t len = fs_counters_format(&c, 1, 2, 3, out, cap);
        assert_true(len < cap);
        assert_int_equal(strlen(out), len);
        assert_memory_equal(out, full, len);              /* a prefix of the full text */
        assert_int_equal(out[cap], 'x');                  /* nothing written past cap */
    }
    char none[1] = { 'x' };
    assert_int_equal(fs_counters_format(&c, 1, 2, 3, none, 0), 0);
    assert_int_equal(none[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_counter_has_its_line),
        cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
