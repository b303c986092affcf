/* write_stream failure behaviour (review findings 6 and 19): an append that fails takes none of its
 * bytes (EFBIG at S3's part/size limit, no memory and nowhere to stage), so the stream still finishes
 * with exactly the accepted bytes; deferred multipart aborts are retried on a worker, never on the
 * writer's thread. Objects are decrypted with the crypto primitives and compared with the plaintext the
 * test generated; the EFBIG bound is computed here independently of write_part_size. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cbc_random.h"
#include "envelope.h"
#include "fs_context.h"
#include "kms_local.h"
#include "objc_memory.h"
#include "part_uploader.h"
#include "write_stream.h"

#include "write_fixture.h"

static void fixture_init(fixture *f, uint64_t part_size, uint64_t max_memory, const char *spool_dir,
                         object_client *uploader_client)
{
    fixture_config cfg = { .part_size = part_size, .max_memory = max_memory, .spool_dir = spool_dir,
                           .min_part_size = 1, .uploader_client = uploader_client, .upload_workers = 2 };
    fixture_setup(f, &cfg);
}

/* Decrypts the stored object and compares it with want[0..want_len). */
static void expect_object(fixture *f, const char *key, const uint8_t *want, size_t want_len)
{
    size_t len = 0;
    int encrypted = 0;
    uint8_t *plain = decrypt_object(f, key, &len, NULL, &encrypted);
    assert_true(encrypted);
    assert_int_equal(len, want_len);
    assert_memory_equal(plain, want, want_len);
    free(plain);
}

/* 16-byte first parts doubling every 1,000 parts: 10,000 parts hold 16 * 1000 * (1 + 2 + ... + 512). */
static void test_efbig_takes_nothing(void **state)
{
    (void)state;
    const size_t capacity = 16u * 1000u * 1023u;
    fixture f;
    fixture_init(&f, 16, 64 * 1024 * 1024, "/tmp", NULL);
    uint8_t *plain = make_plain(capacity, 5);
    write_stream *s = NULL;
    assert_int_equal(write_stream_new(&f.ctx, f.uploader, "big.bak", 1, NULL, &s), 0);
    size_t first = capacity - 100;
    for (size_t off = 0; off < first; off += 1 << 20) {
        size_t n = first - off < (1 << 20) ? first - off : (1 << 20);
        assert_int_equal(write_stream_append(s, plain + off, n), 0);
    }
    /* 200 more bytes would need part 10,001: refused whole. */
    assert_int_equal(write_stream_append(s, plain + first, 200), -EFBIG);
    assert_int_equal(write_stream_length(s), first);
    /* The largest plaintext whose padded ciphertext fills the 10,000 parts exactly still fits ... */
    assert_int_equal(write_stream_append(s, plain + first, 99), 0);
    /* ... and not one byte more. */
    assert_int_equal(write_stream_append(s, plain + first + 99, 1), -EFBIG);
    assert_int_equal(write_stream_length(s), capacity - 1);
    assert_int_equal(write_stream_finish(s), 0);
    write_stream_free(s);
    expect_object(&f, "big.bak", plain, capacity - 1);
    free(plain);
    fixture_free(&f);
}

/* No memory within the cap and no place to stage the part: the append fails with nothing taken, and
 * the stream still completes with the bytes accepted before. */
static void test_no_memory_takes_nothing(void **state)
{
    (void)state;
    const size_t kib = 1024;
    fixture f;
    fixture_init(&f, 1024 * kib, 300 * kib, "/nonexistent/s3csefs-test", NULL);
    uint8_t *plain = make_plain(400 * kib, 9);
    write_stream *s = NULL;
    assert_int_equal(write_stream_new(&f.ctx, f.uploader, "mem.bak", 1, NULL, &s), 0);
    assert_int_equal(write_stream_append(s, plain, 200 * kib + 5), 0);
    /* Growing the part buffer past 256 KiB needs more than the 300 KiB cap. */
    int rc = write_stream_append(s, plain + 200 * kib + 5, 100 * kib);
    assert_true(rc == -ENOMEM || rc == -ENOSPC);
    assert_int_equal(write_stream_length(s), 200 * kib + 5);
    /* Small writes that fit the buffer still work after the failure. */
    assert_int_equal(write_stream_append(s, plain + 200 * kib + 5, 1000), 0);
    assert_int_equal(write_stream_finish(s), 0);
    write_stream_free(s);
    expect_object(&f, "mem.bak", plain, 200 * kib + 5 + 1000);
    free(plain);
    fixture_free(&f);
}

/* An object client for the uploader: parts go to the memory store; AbortMultipartUpload records the
 * calling thread and blocks until the test releases it (a slow or unreachable S3). */
typedef struct {
    object_client base;
    objc_ops ops;
    object_client *inner;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int aborts_started;
    int released;
    pthread_t abort_thread;
} blocking_abort_client;

static int forward_upload_part(object_client *c, const char *key, const char *upload_id, int part_number,
                               const uint8_t *body, size_t len, objc_part *part, aws_error *err)
{
    blocking_abort_client *b = (blocking_abort_client *)c;
    return b->inner->ops->mpu_upload_part(b->inner, key, upload_id, part_number, body, len, part, err);
}

static int blocking_abort(object_client *c, const char *key, const char *upload_id, aws_error *err)
{
    (void)key;
    (void)upload_id;
    (void)err;
    blocking_abort_client *b = (blocking_abort_client *)c;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&b->lock);
    b->abort_thread = pthread_self();
    b->aborts_started++;
    pthread_cond_broadcast(&b->changed);
    while (!b->released && pthread_cond_timedwait(&b->changed, &b->lock, &deadline) == 0)
        ;
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static void test_deferred_abort_off_writer_thread(void **state)
{
    (void)state;
    blocking_abort_client b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.changed, NULL);
    fixture f;
    fixture_init(&f, 64, 1024 * 1024, "/tmp", NULL);
    part_uploader_free(f.uploader);
    b.inner = f.memory;
    b.ops.mpu_upload_part = forward_upload_part;
    b.ops.mpu_abort = blocking_abort;
    b.base.ops = &b.ops;
    f.uploader = part_uploader_new(&b.base, &f.ctx.counters, 2);
    assert_non_null(f.uploader);

    part_uploader_defer_abort(f.uploader, "old.bak", "upload-that-failed-to-abort");
    uint8_t *plain = make_plain(1000, 3);
    write_stream *s = NULL;
    assert_int_equal(write_stream_new(&f.ctx, f.uploader, "new.bak", 1, NULL, &s), 0);
    /* More than one part: the multipart upload is created, which triggers the retry. */
    assert_int_equal(write_stream_append(s, plain, 1000), 0);
    assert_int_equal(write_stream_wait_parts(s), 0);

    /* The writer got here while the abort is still blocked: it ran elsewhere. */
    pthread_mutex_lock(&b.lock);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    while (b.aborts_started == 0 && pthread_cond_timedwait(&b.changed, &b.lock, &deadline) == 0)
        ;
    assert_int_equal(b.aborts_started, 1);
    assert_false(pthread_equal(b.abort_thread, pthread_self()));
    assert_int_equal(b.released, 0);
    b.released = 1;
    pthread_cond_broadcast(&b.changed);
    pthread_mutex_unlock(&b.lock);

    assert_int_equal(write_stream_finish(s), 0);
    write_stream_free(s);
    expect_object(&f, "new.bak", plain, 1000);
    /* The abort succeeded: nothing is left to retry. */
    assert_int_equal(part_uploader_retry_aborts(f.uploader), 0);
    free(plain);
    fixture_free(&f);
    pthread_cond_destroy(&b.changed);
    pthread_mutex_destroy(&b.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_efbig_takes_nothing),
        cmocka_unit_test(test_no_memory_takes_nothing),
        cmocka_unit_test(test_deferred_abort_off_writer_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
