/* The read path's streaming GET: a sequential reader is served by one get_stream per handle (CBC
 * decrypted as the bytes arrive, GCM through the authenticated decryptor with the tag checked at the
 * end), a random read in the middle cancels the stream and fetches only its blocks, sequential reading
 * after it starts a new stream, a stream that breaks mid-body fails the read waiting on it with -EIO
 * while the next read works, the queue stays within the window and the memory budget, and every byte
 * reserved goes back to the budget at close. Expected bytes are the plaintext the test generated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "objc_faulty.h"
#include "read_path.h"
#include "test_read_util.h"

static fs_context ctx;

static int setup(void **state) { (void)state; tr_setup(&ctx); return 0; }
static int teardown(void **state) { (void)state; tr_teardown(&ctx); return 0; }

/* Reads [from, to) in `piece` steps and checks every byte. */
static void read_sequentially(read_handle *h, const uint8_t *plain, size_t len, uint64_t from, uint64_t to,
                              size_t piece)
{
    for (uint64_t off = from; off < to; off += piece)
        tr_expect_range(h, plain, len, off, (size_t)(to - off < piece ? to - off : piece));
}

static uint8_t *put_cbc(const char *key, size_t len, int with_length, unsigned seed)
{
    uint8_t *plain = tr_random_bytes(len, seed);
    size_t stored;
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = with_length };
    free(tr_put_cbc(&ctx, key, plain, len, &o, &stored));
    return plain;
}

/* Whole objects of awkward sizes, read in kernel-sized pieces: one GET each, every byte fetched once. */
static void test_sequential_cbc_one_stream(void **state)
{
    (void)state;
    const size_t sizes[] = { 1, 15, 16, 17, 1024 * 1024, 5 * 1024 * 1024 + 1, 9 * 1024 * 1024 + 16 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int with_length = 0; with_length <= 1; with_length++) {
            char key[64], path[80];
            snprintf(key, sizeof key, "seq/%zu-%d.bak", sizes[i], with_length);
            snprintf(path, sizeof path, "/%s", key);
            uint8_t *plain = put_cbc(key, sizes[i], with_length, (unsigned)(i + 1));
            read_handle *h = NULL;
            assert_int_equal(read_handle_open(&ctx, path, &h), 0);
            objc_memory_reset_stats(ctx.objects);
            read_sequentially(h, plain, sizes[i], 0, sizes[i], 131072);
            read_handle_close(h);
            objc_memory_counts counts;
            objc_memory_stats(ctx.objects, &counts);
            assert_int_equal(counts.get, 1);
            assert_int_equal(counts.bytes_got, sizes[i] + 16 - sizes[i] % 16);
            assert_int_equal(memory_budget_used(&ctx.memory), 0);
            free(plain);
        }
    }
}

static void test_sequential_gcm_verified(void **state)
{
    (void)state;
    size_t len = 6 * 1024 * 1024 + 5, stored;
    uint8_t *plain = tr_random_bytes(len, 31);
    uint8_t *body = tr_put_gcm(&ctx, "seq/gcm.bak", plain, len, &stored);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/seq/gcm.bak", &h), 0);
    read_sequentially(h, plain, len, 0, len, 131072);
    read_handle_close(h);

    /* A flipped byte deep inside: the full read fails (at the latest the read of the last byte: the
     * tag is checked before that byte is published; earlier once the fetch thread found the forgery),
     * and so does every read after it. */
    body[4 * 1024 * 1024] ^= 2;
    tr_tamper(&ctx, "seq/gcm.bak", body, stored, NULL, NULL);
    uint64_t errors = atomic_load(&ctx.counters.decrypt_errors);
    assert_int_equal(read_handle_open(&ctx, "/seq/gcm.bak", &h), 0);
    char *buf = malloc(131072);
    ssize_t last = 0;
    uint64_t off = 0;
    for (; off < len && last >= 0; off += 131072)
        last = read_handle_read(h, buf, 131072, (off_t)off);
    assert_int_equal(last, -EIO);
    assert_true(atomic_load(&ctx.counters.decrypt_errors) > errors);
    assert_int_equal(read_handle_read(h, buf, 100, 0), -EIO);
    read_handle_close(h);
    free(buf);
    free(body);
    free(plain);
}

/* Sequential, then a random read far away (cancels the stream: only its blocks are fetched), then
 * sequential again where it stopped (a new stream), then back into the middle. */
static void test_random_read_inside_a_stream(void **state)
{
    (void)state;
    size_t len = 48 * 1024 * 1024 + 9;
    uint8_t *plain = put_cbc("mix/a.bak", len, 1, 5);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/mix/a.bak", &h), 0);
    read_sequentially(h, plain, len, 0, 3 * 1024 * 1024, 131072);
    objc_memory_counts before, after;
    objc_memory_stats(ctx.objects, &before);
    tr_expect_range(h, plain, len, 44 * 1024 * 1024 + 5, 4096);   /* beyond STREAM_REORDER */
    objc_memory_stats(ctx.objects, &after);
    assert_int_equal(after.get - before.get, 1);        /* one ranged GET for the random read */
    read_sequentially(h, plain, len, 3 * 1024 * 1024, 8 * 1024 * 1024, 131072);
    tr_expect_range(h, plain, len, 12345, 4096);
    read_sequentially(h, plain, len, 8 * 1024 * 1024, len, 131072);
    objc_memory_stats(ctx.objects, &after);
    assert_true(after.get - before.get <= 6);           /* streams and direct reads, not a GET per read */
    read_handle_close(h);
    assert_int_equal(memory_budget_used(&ctx.memory), 0);
    free(plain);
}

/* Random 4 KiB reads never start a stream: one small ranged GET each. */
static void test_random_reads_stay_direct(void **state)
{
    (void)state;
    size_t len = 16 * 1024 * 1024;
    uint8_t *plain = put_cbc("mix/r.bak", len, 1, 6);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/mix/r.bak", &h), 0);
    objc_memory_reset_stats(ctx.objects);
    for (int i = 0; i < 50; i++)
        tr_expect_range(h, plain, len, (uint64_t)((i * 7 + 3) % 16) * 1024 * 1024 + 4096 * (uint64_t)i, 4096);
    objc_memory_counts counts;
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.get, 50);
    assert_true(counts.bytes_got / 50 <= 64 * 1024);
    read_handle_close(h);
    free(plain);
}

/* A stream cut mid-body (the client's own resumption gave up): the read waiting on it is -EIO, the next
 * read works, and sequential reading from there gets a new stream. */
static void test_mid_stream_failure_then_reads_work(void **state)
{
    (void)state;
    size_t len = 8 * 1024 * 1024 + 3;
    uint8_t *plain = put_cbc("fail/a.bak", len, 1, 7);
    object_client *memory = ctx.objects;
    ctx.objects = objc_new_faulty(memory, 0);
    assert_non_null(ctx.objects);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/fail/a.bak", &h), 0);
    assert_int_equal(objc_faulty_set_truncation(ctx.objects, "fail/a.bak", 3 * 1024 * 1024 + 100, 1), 0);
    uint64_t errors = atomic_load(&ctx.counters.s3_errors);
    char *buf = malloc(131072);
    ssize_t last = 0;
    uint64_t off = 0;
    for (; off < len && last >= 0; off += 131072) {
        last = read_handle_read(h, buf, 131072, (off_t)off);
        if (last > 0)
            assert_memory_equal(buf, plain + off, (size_t)last);
    }
    assert_int_equal(last, -EIO);
    off -= 131072;                                      /* the read that failed */
    assert_true(off + 131072 > 3 * 1024 * 1024);        /* not before the cut */
    assert_true(atomic_load(&ctx.counters.s3_errors) > errors);
    objc_faulty_set_truncation(ctx.objects, NULL, SIZE_MAX, 0);
    tr_expect_range(h, plain, len, off, 131072);            /* the same read again works */
    read_sequentially(h, plain, len, off + 131072, len, 131072);
    read_handle_close(h);
    assert_int_equal(memory_budget_used(&ctx.memory), 0);

    /* A silent short body (forbidden by the contract) is caught too. */
    assert_int_equal(objc_faulty_set_truncation(ctx.objects, "fail/a.bak", 1024 * 1024, 0), 0);
    assert_int_equal(read_handle_open(&ctx, "/fail/a.bak", &h), 0);
    last = 0;
    for (off = 0; off < len && last >= 0; off += 131072)
        last = read_handle_read(h, buf, 131072, (off_t)off);
    assert_int_equal(last, -EIO);
    read_handle_close(h);
    objc_faulty_clear_rules(ctx.objects);
    objc_free(ctx.objects);
    ctx.objects = memory;
    free(buf);
    free(plain);
}

/* The object is replaced while a stream runs: the stream keeps its version (If-Match held when it
 * started), a direct read (further ahead than a stream serves) meets the new ETag: -EIO from then on,
 * and a new open reads the new object. */
static void test_replaced_while_streaming(void **state)
{
    (void)state;
    size_t len = 48 * 1024 * 1024;
    uint8_t *plain = put_cbc("repl/a.bak", len, 1, 8);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/repl/a.bak", &h), 0);
    read_sequentially(h, plain, len, 0, 1024 * 1024, 131072);
    free(plain);
    plain = put_cbc("repl/a.bak", len, 1, 9);
    char buf[4096];
    assert_int_equal(read_handle_read(h, buf, sizeof buf, 44 * 1024 * 1024), -EIO);
    assert_int_equal(read_handle_read(h, buf, sizeof buf, 1024 * 1024), -EIO);
    read_handle_close(h);
    assert_int_equal(read_handle_open(&ctx, "/repl/a.bak", &h), 0);
    read_sequentially(h, plain, len, 0, len, 131072);
    read_handle_close(h);
    free(plain);
}

/* A slow reader: the queue never holds much more than the window (prefetch_max) ahead of it. */
static void test_queue_bounded_by_window(void **state)
{
    (void)state;
    ctx.options.prefetch_min = 256 * 1024;
    ctx.options.prefetch_max = 2 * 1024 * 1024;
    size_t len = 20 * 1024 * 1024;
    uint8_t *plain = put_cbc("win/a.bak", len, 1, 10);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/win/a.bak", &h), 0);
    uint64_t peak = 0;
    for (uint64_t off = 0; off < len; off += 131072) {
        tr_expect_range(h, plain, len, off, 131072);
        if (off % (1024 * 1024) == 0)
            usleep(2000);                               /* let the fetch thread run ahead if it would */
        uint64_t used = memory_budget_used(&ctx.memory);
        peak = used > peak ? used : peak;
    }
    /* window + the bytes kept for late concurrent reads (STREAM_KEEP_BEHIND_START) + the segment being
     * filled */
    assert_true(peak <= 2 * 1024 * 1024 + 8 * 1024 * 1024 + 2 * 256 * 1024);
    read_handle_close(h);
    assert_int_equal(memory_budget_used(&ctx.memory), 0);
    fs_options_defaults(&ctx.options);
    free(plain);
}

/* A budget almost spent by someone else (a writer): the stream still delivers, one segment at a time
 * when a reader waits; everything reserved is released. */
static void test_stream_with_budget_spent(void **state)
{
    (void)state;
    size_t len = 6 * 1024 * 1024 + 1;
    uint8_t *plain = put_cbc("budget/a.bak", len, 0, 11);
    uint64_t hog = ctx.memory.limit - 1536 * 1024;
    assert_int_equal(memory_budget_try_reserve(&ctx.memory, hog), 0);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/budget/a.bak", &h), 0);
    read_sequentially(h, plain, len, 0, len, 131072);
    read_handle_close(h);
    assert_int_equal(memory_budget_used(&ctx.memory), hog);
    memory_budget_release(&ctx.memory, hog);
    free(plain);
}

/* Closing a handle whose stream is blocked on a full queue (nobody reads) ends it promptly. */
static void test_close_cancels_blocked_stream(void **state)
{
    (void)state;
    size_t len = 32 * 1024 * 1024;
    uint8_t *plain = put_cbc("close/a.bak", len, 1, 12);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/close/a.bak", &h), 0);
    objc_memory_reset_stats(ctx.objects);
    tr_expect_range(h, plain, len, 0, 4096);
    usleep(20000);
    read_handle_close(h);
    objc_memory_counts counts;
    objc_memory_stats(ctx.objects, &counts);
    assert_true(counts.bytes_got < 8 * 1024 * 1024);     /* stopped near the window, not the whole object */
    assert_int_equal(memory_budget_used(&ctx.memory), 0);
    free(plain);
}

/* Files read to the end and left open (a pager, smbd) pin at most SEQUENTIAL_SLACK and a segment each:
 * the bytes kept for late reads and the spare segments go, so more such handles than the budget could
 * hold at 8 MiB each still leave room for a new reader (which would otherwise wait 30 s per read). */
static void test_read_to_end_releases_memory(void **state)
{
    (void)state;
    enum { HANDLES = 10 };
    size_t len = 12 * 1024 * 1024 + 5;
    uint8_t *plain = put_cbc("pin/a.bak", len, 1, 14);
    read_handle *h[HANDLES];
    for (int i = 0; i < HANDLES; i++) {
        assert_int_equal(read_handle_open(&ctx, "/pin/a.bak", &h[i]), 0);
        read_sequentially(h[i], plain, len, 0, len, 131072);
        uint64_t used = 0;
        for (int t = 0; t < 200; t++) {                 /* the fetch thread ends just after the last read */
            used = memory_budget_used(&ctx.memory);
            if (used <= (uint64_t)(i + 1) * 3 * 1024 * 1024)
                break;
            usleep(5000);
        }
        assert_true(used <= (uint64_t)(i + 1) * 3 * 1024 * 1024);
    }
    read_handle *fresh = NULL;
    assert_int_equal(read_handle_open(&ctx, "/pin/a.bak", &fresh), 0);
    read_sequentially(fresh, plain, len, 0, 2 * 1024 * 1024, 131072);
    read_handle_close(fresh);
    for (int i = 0; i < HANDLES; i++)
        read_handle_close(h[i]);
    assert_int_equal(memory_budget_used(&ctx.memory), 0);
    free(plain);
}

/* Plain (unencrypted) objects stream too. */
static void test_plain_object_streams(void **state)
{
    (void)state;
    size_t len = 3 * 1024 * 1024 + 77;
    uint8_t *plain = tr_random_bytes(len, 13);
    aws_error err;
    assert_int_equal(ctx.objects->ops->put(ctx.objects, "plain/a.txt", NULL, plain, len, &err), 0);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/plain/a.txt", &h), 0);
    objc_memory_reset_stats(ctx.objects);
    read_sequentially(h, plain, len, 0, len, 100000);
    objc_memory_counts counts;
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.get, 1);
    read_handle_close(h);
    free(plain);
}

/* Readahead requests arriving out of order (a raised read_ahead_kb, smbd's thread pool): 1 MiB reads
 * in the order c+1, c+3, c, c+2 stay on the one stream once it has seen how late reads come (the first
 * late ones may cost a GET each). Then one reader far behind the others (a slow thread) reads 1 MiB as
 * eight 128 KiB reads: one GET fetches them all, and the stream goes on. */
static void test_out_of_order_and_late_reads(void **state)
{
    (void)state;
    const size_t mib = 1024 * 1024, len = 24 * mib;
    uint8_t *plain = put_cbc("ooo/a.bak", len, 1, 13);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/ooo/a.bak", &h), 0);
    objc_memory_reset_stats(ctx.objects);
    static const int order[4] = { 1, 3, 0, 2 };
    tr_expect_range(h, plain, len, 0, mib);                /* the file is opened and read from the start */
    objc_memory_counts counts;
    size_t learned = 0;
    for (size_t c = 1; c < 17; c += 4) {
        for (int i = 0; i < 4; i++)
            tr_expect_range(h, plain, len, (c + (size_t)order[i]) * mib, mib);
        objc_memory_stats(ctx.objects, &counts);
        if (c == 1) {
            learned = counts.get;
            assert_true(learned <= 3);
        }
    }
    assert_int_equal(counts.get, learned);              /* later groups: no GET of their own */
    for (size_t k = 0; k < 8; k++)                      /* 12 MiB behind the furthest read */
        tr_expect_range(h, plain, len, 5 * mib + k * 131072, 131072);
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.get, learned + 1);
    read_sequentially(h, plain, len, 17 * mib, len, 131072);
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.get, learned + 1);          /* the stream went on */
    read_handle_close(h);
    assert_int_equal(memory_budget_used(&ctx.memory), 0);
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_cbc_one_stream),
        cmocka_unit_test(test_sequential_gcm_verified),
        cmocka_unit_test(test_random_read_inside_a_stream),
        cmocka_unit_test(test_random_reads_stay_direct),
        cmocka_unit_test(test_mid_stream_failure_then_reads_work),
        cmocka_unit_test(test_replaced_while_streaming),
        cmocka_unit_test(test_queue_bounded_by_window),
        cmocka_unit_test(test_stream_with_budget_spent),
        cmocka_unit_test(test_close_cancels_blocked_stream),
        cmocka_unit_test(test_plain_object_streams),
        cmocka_unit_test(test_read_to_end_releases_memory),
        cmocka_unit_test(test_out_of_order_and_late_reads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
