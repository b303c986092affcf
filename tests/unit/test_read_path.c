/* Read path on the in-memory store and local KMS: random preads against CBC objects of every padding
 * length (with and without a stored plaintext length), sequential reads through the prefetcher, bytes
 * fetched per random 4 KiB read, GCM (tag checked on a full read, ranged reads unauthenticated), legacy
 * x-amz-key objects, instruction files, plain objects, and corrupt objects -> -EIO while the next good
 * object still reads. Expected bytes are always the plaintext the test generated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "read_path.h"
#include "test_read_util.h"

static fs_context ctx;

static int setup(void **state) { (void)state; tr_setup(&ctx); return 0; }
static int teardown(void **state) { (void)state; tr_teardown(&ctx); return 0; }

static void put_and_check_small(int with_length)
{
    for (size_t len = 0; len <= 48; len++) {
        char key[64], path[80];
        snprintf(key, sizeof key, "small%d/f%zu.bak", with_length, len);
        snprintf(path, sizeof path, "/%s", key);
        uint8_t *plain = tr_random_bytes(len, (unsigned)len);
        size_t stored = 0;
        tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = with_length };
        free(tr_put_cbc(&ctx, key, plain, len, &o, &stored));
        assert_int_equal(stored, len + 16 - len % 16);
        read_handle *h = NULL;
        assert_int_equal(read_handle_open(&ctx, path, &h), 0);
        assert_int_equal(read_handle_size(h), len);
        for (size_t off = 0; off <= len + 1; off++)
            for (size_t n = 1; n <= len - (off < len ? off : len) + 2; n++)
                tr_expect_range(h, plain, len, off, n);
        read_handle_close(h);
        free(plain);
    }
}

static void test_cbc_every_padding_length(void **state)
{
    (void)state;
    put_and_check_small(0);    /* size from the last two blocks */
    put_and_check_small(1);    /* size from x-amz-unencrypted-content-length */
}

static void test_cbc_random_and_sequential(void **state)
{
    (void)state;
    size_t len = 3 * 1024 * 1024 + 5;
    uint8_t *plain = tr_random_bytes(len, 42);
    size_t stored = 0;
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS };
    free(tr_put_cbc(&ctx, "big.bak", plain, len, &o, &stored));

    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/big.bak", &h), 0);
    assert_int_equal(read_handle_size(h), len);
    unsigned seed = 7;
    for (int i = 0; i < 300; i++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t off = seed % (len + 100);
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + seed % (200 * 1024);
        tr_expect_range(h, plain, len, off, n);
    }
    read_handle_close(h);

    /* Sequential 128 KiB reads (the kernel's request size) through the prefetcher. */
    objc_memory_reset_stats(ctx.objects);
    assert_int_equal(read_handle_open(&ctx, "/big.bak", &h), 0);
    for (uint64_t off = 0; off < len + 131072; off += 131072)
        tr_expect_range(h, plain, len, off, 131072);
    read_handle_close(h);
    objc_memory_counts counts;
    assert_int_equal(objc_memory_stats(ctx.objects, &counts), 0);
    /* Every byte fetched about once: a window overlap of one block per chunk at most. */
    assert_true(counts.bytes_got >= stored);
    assert_true(counts.bytes_got < stored + stored / 20);
    assert_true(counts.get < 200);    /* large ranged GETs, not one per 128 KiB read */
    free(plain);
}

static void test_random_4k_reads_fetch_little(void **state)
{
    (void)state;
    size_t len = 32 * 1024 * 1024 + 3;
    uint8_t *plain = tr_random_bytes(len, 9);
    size_t stored = 0;
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = 1 };
    free(tr_put_cbc(&ctx, "rand.bak", plain, len, &o, &stored));
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/rand.bak", &h), 0);
    objc_memory_reset_stats(ctx.objects);
    const int reads = 100;
    for (int i = 1; i <= reads; i++) {
        uint64_t off = (uint64_t)((i * 13) % 16) * 2 * 1024 * 1024 + (uint64_t)(i * 4099) % (1024 * 1024);
        tr_expect_range(h, plain, len, off, 4096);
    }
    objc_memory_counts counts;
    objc_memory_stats(ctx.objects, &counts);
    assert_true(counts.bytes_got / reads <= 64 * 1024);
    assert_int_equal(counts.get, reads);          /* one ranged GET each */
    read_handle_close(h);
    free(plain);
}

static void test_plain_legacy_instruction(void **state)
{
    (void)state;
    size_t len = 100000;
    uint8_t *plain = tr_random_bytes(len, 3);
    aws_error err;
    aws_error_clear(&err);
    kv_list md;
    kv_list_init(&md);
    assert_int_equal(ctx.objects->ops->put(ctx.objects, "plain.txt", &md, plain, len, &err), 0);
    size_t stored;
    tr_cbc_opts legacy = { .profile = CSE_PROFILE_LEGACY };
    free(tr_put_cbc(&ctx, "legacy.bak", plain, len, &legacy, &stored));
    tr_cbc_opts instr = { .profile = CSE_PROFILE_KMS, .as_instruction = 1 };
    free(tr_put_cbc(&ctx, "instr.bak", plain, len, &instr, &stored));
    const char *paths[] = { "/plain.txt", "/legacy.bak", "/instr.bak" };
    for (size_t p = 0; p < 3; p++) {
        read_handle *h = NULL;
        assert_int_equal(read_handle_open(&ctx, paths[p], &h), 0);
        assert_int_equal(read_handle_size(h), len);
        tr_expect_range(h, plain, len, 0, len);
        tr_expect_range(h, plain, len, 4095, 10000);
        tr_expect_range(h, plain, len, len - 17, 100);
        read_handle_close(h);
    }
    free(plain);
}

static void test_gcm(void **state)
{
    (void)state;
    size_t len = 1024 * 1024 + 3;
    uint8_t *plain = tr_random_bytes(len, 11);
    size_t stored = 0;
    uint8_t *body = tr_put_gcm(&ctx, "gcm.bak", plain, len, &stored);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/gcm.bak", &h), 0);
    assert_int_equal(read_handle_size(h), len);
    for (uint64_t off = 0; off < len; off += 65536)      /* full sequential read: tag verified */
        tr_expect_range(h, plain, len, off, 65536);
    read_handle_close(h);
    assert_int_equal(read_handle_open(&ctx, "/gcm.bak", &h), 0);
    tr_expect_range(h, plain, len, 500001, 3333);           /* ranged: CTR */
    tr_expect_range(h, plain, len, 17, 1);
    read_handle_close(h);

    /* A flipped ciphertext byte: ranged reads elsewhere still work (unauthenticated); a full sequential
     * read fails with EIO when it reaches the tag. */
    uint64_t before = atomic_load(&ctx.counters.decrypt_errors);
    body[700000] ^= 1;
    tr_tamper(&ctx, "gcm.bak", body, stored, NULL, NULL);
    assert_int_equal(read_handle_open(&ctx, "/gcm.bak", &h), 0);
    tr_expect_range(h, plain, len, 1000, 5000);
    read_handle_close(h);
    assert_int_equal(read_handle_open(&ctx, "/gcm.bak", &h), 0);
    char *buf = malloc(65536);
    ssize_t last = 0;
    for (uint64_t off = 0; off < len; off += 65536) {
        last = read_handle_read(h, buf, 65536, (off_t)off);
        if (last < 0)
            break;
    }
    assert_int_equal(last, -EIO);
    assert_true(atomic_load(&ctx.counters.decrypt_errors) > before);
    /* The kernel retries failed readahead pages with plain reads: those must fail too. */
    assert_int_equal(read_handle_read(h, buf, 100, 0), -EIO);
    read_handle_close(h);
    free(buf);
    free(body);
    free(plain);
}

/* Reads that consume a prefetched chunk ahead of the verifier (as concurrent kernel readahead does)
 * must not skip the tag check. */
static void test_gcm_out_of_order_still_verified(void **state)
{
    (void)state;
    size_t len = 3 * 1024 * 1024;
    uint8_t *plain = tr_random_bytes(len, 21);
    size_t stored = 0;
    uint8_t *body = tr_put_gcm(&ctx, "gcm2.bak", plain, len, &stored);
    body[300000] ^= 4;                               /* inside the second prefetch chunk */
    tr_tamper(&ctx, "gcm2.bak", body, stored, NULL, NULL);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/gcm2.bak", &h), 0);
    char *buf = malloc(65536);
    assert_int_equal(read_handle_read(h, buf, 65536, 0), 65536);
    assert_int_equal(read_handle_read(h, buf, 65536, 800 * 1024), 65536);   /* ahead, in the queue */
    ssize_t last = 0;
    for (uint64_t off = 65536; off < len && last >= 0; off += 65536)
        last = read_handle_read(h, buf, 65536, (off_t)off);
    assert_int_equal(last, -EIO);
    read_handle_close(h);
    free(buf);
    free(body);
    free(plain);
}

/* After every corruption, a good object must still read. */
static void good_read_still_works(void)
{
    static uint8_t *plain;
    static size_t len = 5000;
    if (!plain) {
        plain = tr_random_bytes(len, 99);
        size_t stored;
        tr_cbc_opts o = { .profile = CSE_PROFILE_KMS };
        free(tr_put_cbc(&ctx, "good.bak", plain, len, &o, &stored));
    }
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/good.bak", &h), 0);
    tr_expect_range(h, plain, len, 0, len);
    read_handle_close(h);
}

/* Opens and reads the whole object; returns the first error (-EIO expected). */
static int open_and_read_all(const char *path)
{
    read_handle *h = NULL;
    int rc = read_handle_open(&ctx, path, &h);
    if (rc != 0)
        return rc;
    char buf[4096];
    ssize_t n;
    off_t off = 0;
    while ((n = read_handle_read(h, buf, sizeof buf, off)) > 0)
        off += n;
    read_handle_close(h);
    return n < 0 ? (int)n : 0;
}

static void make_cbc(const char *key, size_t len, int with_length, uint8_t **body, size_t *stored)
{
    uint8_t *plain = tr_random_bytes(len, (unsigned)len * 3);
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = with_length };
    *body = tr_put_cbc(&ctx, key, plain, len, &o, stored);
    free(plain);
}

static void test_corrupt_objects(void **state)
{
    (void)state;
    uint8_t *body;
    size_t stored;
    uint64_t errors = atomic_load(&ctx.counters.decrypt_errors);

    /* bad envelope: IV not base64 */
    make_cbc("c1.bak", 1000, 0, &body, &stored);
    tr_tamper(&ctx, "c1.bak", NULL, 0, "x-amz-iv", "not*base64");
    assert_int_equal(open_and_read_all("/c1.bak"), -EIO);
    good_read_still_works();
    free(body);

    /* wrong context: matdesc names another key */
    make_cbc("c2.bak", 1000, 0, &body, &stored);
    tr_tamper(&ctx, "c2.bak", NULL, 0, "x-amz-matdesc", "{\"kms_cmk_id\":\"arn:aws:kms:local:000000000000:key/other\"}");
    assert_int_equal(open_and_read_all("/c2.bak"), -EIO);
    good_read_still_works();
    free(body);

    /* wrong context on an object whose data key is already cached: KMS must still be asked */
    make_cbc("c2b.bak", 1000, 0, &body, &stored);
    assert_int_equal(open_and_read_all("/c2b.bak"), 0);
    tr_tamper(&ctx, "c2b.bak", NULL, 0, "x-amz-matdesc", "{\"kms_cmk_id\":\"arn:aws:kms:local:000000000000:key/other\"}");
    assert_int_equal(open_and_read_all("/c2b.bak"), -EIO);
    good_read_still_works();
    free(body);

    /* wrong key: the data key of another object (decrypts, but to the wrong key) -> padding/length */
    make_cbc("c3.bak", 1000, 0, &body, &stored);
    uint8_t *other;
    size_t other_stored;
    make_cbc("c3b.bak", 32, 0, &other, &other_stored);
    kv_list md;
    objc_memory_get_object(ctx.objects, "c3b.bak", NULL, NULL, &md);
    tr_tamper(&ctx, "c3.bak", NULL, 0, "x-amz-key-v2", kv_list_get(&md, "x-amz-key-v2"));
    kv_list_free(&md);
    /* Decrypting the last block with a wrong key gives valid padding only by chance (~1/256); the
     * read path must never return the plaintext, so either open or read fails or the data differs. */
    {
        read_handle *wh = NULL;
        int rc = read_handle_open(&ctx, "/c3.bak", &wh);
        if (rc == 0) {
            uint8_t *expected = tr_random_bytes(1000, 3000);
            char got[1100];
            ssize_t n = read_handle_read(wh, got, sizeof got, 0);
            assert_true(n < 0 || n != 1000 || memcmp(got, expected, 1000) != 0);
            free(expected);
            read_handle_close(wh);
        } else {
            assert_int_equal(rc, -EIO);
        }
    }
    good_read_still_works();
    free(body);
    free(other);

    /* length not a multiple of 16 */
    make_cbc("c4.bak", 1000, 0, &body, &stored);
    tr_tamper(&ctx, "c4.bak", body, stored - 5, NULL, NULL);
    assert_int_equal(open_and_read_all("/c4.bak"), -EIO);
    good_read_still_works();
    free(body);

    /* bad padding, size from the tail: open fails */
    make_cbc("c5.bak", 1000, 0, &body, &stored);
    body[stored - 17] ^= 0x01;           /* flips the pad byte of the last plaintext block */
    tr_tamper(&ctx, "c5.bak", body, stored, NULL, NULL);
    assert_int_equal(open_and_read_all("/c5.bak"), -EIO);
    good_read_still_works();
    free(body);

    /* bad padding, size from metadata: open works, reading the last block fails */
    make_cbc("c6.bak", 3 << 20, 1, &body, &stored);
    body[stored - 17] ^= 0x01;
    tr_tamper(&ctx, "c6.bak", body, stored, NULL, NULL);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/c6.bak", &h), 0);
    char buf[64];
    assert_int_equal(read_handle_read(h, buf, 10, 2 << 20), 10);   /* blocks before the last are fine */
    assert_int_equal(read_handle_read(h, buf, 10, (3 << 20) - 5), -EIO);
    read_handle_close(h);
    good_read_still_works();
    free(body);

    /* 16-byte object (empty plaintext) whose IV is changed: the pad byte of block 0 changes */
    make_cbc("c7.bak", 0, 0, &body, &stored);
    tr_tamper(&ctx, "c7.bak", NULL, 0, "x-amz-iv", "AAAAAAAAAAAAAAAAAAAAAA==");
    assert_int_equal(open_and_read_all("/c7.bak"), -EIO);
    good_read_still_works();
    free(body);

    /* unsupported wrap algorithm */
    make_cbc("c8.bak", 100, 0, &body, &stored);
    tr_tamper(&ctx, "c8.bak", NULL, 0, "x-amz-wrap-alg", "AESWrap");
    assert_int_equal(open_and_read_all("/c8.bak"), -EIO);
    good_read_still_works();
    free(body);

    /* stored length disagrees with x-amz-unencrypted-content-length */
    make_cbc("c9.bak", 100, 1, &body, &stored);
    tr_tamper(&ctx, "c9.bak", NULL, 0, "x-amz-unencrypted-content-length", "5000");
    assert_int_equal(open_and_read_all("/c9.bak"), -EIO);
    good_read_still_works();
    free(body);

    /* GCM tag mismatch */
    uint8_t *plain = tr_random_bytes(3000, 5);
    body = tr_put_gcm(&ctx, "c10.bak", plain, 3000, &stored);
    body[stored - 1] ^= 0x80;
    tr_tamper(&ctx, "c10.bak", body, stored, NULL, NULL);
    assert_int_equal(open_and_read_all("/c10.bak"), -EIO);
    good_read_still_works();
    free(body);
    free(plain);

    assert_true(atomic_load(&ctx.counters.decrypt_errors) >= errors + 9);
    assert_int_equal(read_handle_open(&ctx, "/missing.bak", &h), -ENOENT);
}

static void test_shared_data_key_one_kms_call(void **state)
{
    (void)state;
    uint8_t *plain = tr_random_bytes(777, 1);
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof key, "shared/%02d.bak", i);
        size_t stored;
        tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .share_key_slot = 1 };
        free(tr_put_cbc(&ctx, key, plain, 777, &o, &stored));
    }
    kms_local_counts before, after;
    kms_local_stats(ctx.kms, &before);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 20; i++) {
            char path[32];
            snprintf(path, sizeof path, "/shared/%02d.bak", i);
            read_handle *h = NULL;
            assert_int_equal(read_handle_open(&ctx, path, &h), 0);
            tr_expect_range(h, plain, 777, 0, 777);
            read_handle_close(h);
        }
    kms_local_stats(ctx.kms, &after);
    assert_int_equal(after.decrypt - before.decrypt, 1);
    free(plain);
}

/* An RDS-export-shaped object (no stored plaintext length): stat works its size out from the tail, and
 * an open of the same version after it makes no second tail GET. A new version is sized again. */
static void test_open_after_stat_reuses_size(void **state)
{
    (void)state;
    const size_t len = 100003;
    uint8_t *plain = tr_random_bytes(len, 51);
    size_t stored;
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = 0 };
    free(tr_put_cbc(&ctx, "sized/a.bak", plain, len, &o, &stored));
    meta_stat st;
    objc_memory_reset_stats(ctx.objects);
    assert_int_equal(ns_stat(&ctx, "/sized/a.bak", &st), 0);
    assert_int_equal(st.size, len);
    objc_memory_counts counts;
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.get, 1);                       /* the tail GET */

    objc_memory_reset_stats(ctx.objects);
    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, "/sized/a.bak", &h), 0);
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.get, 0);
    tr_expect_range(h, plain, len, len - 100, 100);        /* the size is right: the padding agrees */
    read_handle_close(h);

    /* Replaced by a shorter version: the cached summary does not match its ETag, so open sizes it. */
    free(tr_put_cbc(&ctx, "sized/a.bak", plain, len - 7, &o, &stored));
    objc_memory_reset_stats(ctx.objects);
    assert_int_equal(read_handle_open(&ctx, "/sized/a.bak", &h), 0);
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.get, 1);
    tr_expect_range(h, plain, len - 7, 0, len - 7);
    read_handle_close(h);
    free(plain);
}

/* Review finding 4: an object replaced while a handle is open. Every GET carries the ETag of the HEAD
 * that gave the envelope, so the new version's ciphertext is never decrypted with the old key: the read
 * is -EIO (so is every later one), the stale cached stat of the path is dropped, and a new open reads
 * the new version. Without If-Match the read returns garbage of the right length. */
static void replace_while_open(int encrypted, int sequential_first)
{
    const size_t len = 48 * 1024 * 1024 + 5;
    const char *key = encrypted ? "replaced/enc.bak" : "replaced/plain.txt";
    char path[64];
    snprintf(path, sizeof path, "/%s", key);
    uint8_t *old_plain = tr_random_bytes(len, 41), *new_plain = tr_random_bytes(len, 42);
    size_t stored;
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = 1 };
    aws_error err;
    aws_error_clear(&err);
    kv_list none;
    kv_list_init(&none);
    if (encrypted)
        free(tr_put_cbc(&ctx, key, old_plain, len, &o, &stored));
    else
        assert_int_equal(ctx.objects->ops->put(ctx.objects, key, &none, old_plain, len, &err), 0);

    read_handle *h = NULL;
    assert_int_equal(read_handle_open(&ctx, path, &h), 0);
    tr_expect_range(h, old_plain, len, 0, 4096);
    if (sequential_first)
        tr_expect_range(h, old_plain, len, 4096, 65536);   /* prefetcher running */
    meta_stat ms = { .exists = 1, .size = len };
    meta_cache_put(ctx.meta, path, &ms);

    if (encrypted)
        free(tr_put_cbc(&ctx, key, new_plain, len, &o, &stored));
    else
        assert_int_equal(ctx.objects->ops->put(ctx.objects, key, &none, new_plain, len, &err), 0);

    char *buf = malloc(len);
    /* Far past what a running stream serves (read_path.c STREAM_REORDER): this read must go to the
     * store. */
    assert_int_equal(read_handle_read(h, buf, 8192, 44 * 1024 * 1024 + 3), -EIO);
    assert_int_equal(read_handle_read(h, buf, 4096, 0), -EIO);     /* the handle stays failed */
    assert_int_equal(read_handle_read(h, buf, 100, (off_t)len - 100), -EIO);
    meta_stat cached;
    assert_int_equal(meta_cache_get(ctx.meta, path, &cached), 0);
    read_handle_close(h);

    assert_int_equal(read_handle_open(&ctx, path, &h), 0);
    tr_expect_range(h, new_plain, len, 0, len);
    read_handle_close(h);
    free(buf);
    free(old_plain);
    free(new_plain);
}

static void test_replaced_while_open_is_eio(void **state)
{
    (void)state;
    replace_while_open(1, 0);
    replace_while_open(1, 1);
    replace_while_open(0, 1);
}

typedef struct {
    const char *path;
    read_handle *h;
    int rc;
} open_job;

static void *open_thread(void *arg)
{
    open_job *j = arg;
    j->rc = read_handle_open(&ctx, j->path, &j->h);
    return NULL;
}

/* A replacement between the HEAD of an open and its tail GET (CBC without a stored length) is not an
 * error: nothing has been returned yet, so the open starts again and reads the new version. */
static void test_replaced_during_open_reopens(void **state)
{
    (void)state;
    const size_t len = 100000;
    uint8_t *old_plain = tr_random_bytes(len, 51), *new_plain = tr_random_bytes(len, 52);
    size_t stored;
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = 0 };
    free(tr_put_cbc(&ctx, "reopen.bak", old_plain, len, &o, &stored));
    object_client *memory = ctx.objects;
    ctx.objects = objc_new_faulty(memory, 0);
    assert_non_null(ctx.objects);
    objc_fault_rule slow = { .ops_mask = OBJC_OP_GET, .fail_count = 0, .key_substring = "reopen.bak",
                             .delay_ms = 400 };
    assert_int_equal(objc_faulty_add_rule(ctx.objects, &slow), 0);
    open_job job = { "/reopen.bak", NULL, -1 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, open_thread, &job), 0);
    usleep(150 * 1000);                       /* the open is waiting in its tail GET */
    free(tr_put_cbc(&ctx, "reopen.bak", new_plain, len, &o, &stored));   /* PUT is not delayed */
    pthread_join(t, NULL);
    assert_int_equal(job.rc, 0);
    objc_faulty_clear_rules(ctx.objects);
    assert_int_equal(read_handle_size(job.h), len);
    tr_expect_range(job.h, new_plain, len, 0, len);
    read_handle_close(job.h);
    objc_free(ctx.objects);
    ctx.objects = memory;
    free(old_plain);
    free(new_plain);
}

/* Many threads read one handle at once, as smbd's aio pool does: 1 MiB reads at ascending offsets
 * taken from a shared counter (so they arrive out of order and reset the prefetch window), mixed with
 * 4 KiB reads at scattered offsets, with every GET delayed to widen the races. Every read must return
 * and match; the test's own wait is bounded, so a reader stuck on a chunk nobody fetches fails it. */
typedef struct {
    read_handle *h;
    const uint8_t *plain;
    size_t len;
    atomic_size_t next;          /* next 1 MiB offset to hand out */
    atomic_int bad;              /* reads that returned wrong bytes or an error */
} parallel_job;

static void *parallel_reader(void *arg)
{
    parallel_job *j = arg;
    const size_t piece = 1024 * 1024;
    char *buf = malloc(piece);
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (;;) {
        size_t off = atomic_fetch_add(&j->next, piece);
        if (off >= j->len)
            break;
        size_t want = j->len - off < piece ? j->len - off : piece;
        ssize_t n = read_handle_read(j->h, buf, piece, (off_t)off);
        if (n != (ssize_t)want || memcmp(buf, j->plain + off, want) != 0)
            atomic_fetch_add(&j->bad, 1);
        seed = seed * 1103515245u + 12345u;
        size_t roff = seed % (j->len - 4096);
        if (read_handle_read(j->h, buf, 4096, (off_t)roff) != 4096 || memcmp(buf, j->plain + roff, 4096) != 0)
            atomic_fetch_add(&j->bad, 1);
    }
    free(buf);
    return NULL;
}

static void test_parallel_readers_never_hang(void **state)
{
    (void)state;
    const size_t len = 24 * 1024 * 1024 + 7;
    uint8_t *plain = tr_random_bytes(len, 77);
    size_t stored;
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = 1 };
    free(tr_put_cbc(&ctx, "parallel.bak", plain, len, &o, &stored));
    object_client *memory = ctx.objects;
    ctx.objects = objc_new_faulty(memory, 0);
    assert_non_null(ctx.objects);
    objc_fault_rule slow = { .ops_mask = OBJC_OP_GET, .fail_count = 0, .key_substring = "parallel.bak",
                             .delay_ms = 15 };
    assert_int_equal(objc_faulty_add_rule(ctx.objects, &slow), 0);
    enum { THREADS = 10, ROUNDS = 4 };
    for (int round = 0; round < ROUNDS; round++) {
        parallel_job job = { .plain = plain, .len = len };
        assert_int_equal(read_handle_open(&ctx, "/parallel.bak", &job.h), 0);
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            assert_int_equal(pthread_create(&t[i], NULL, parallel_reader, &job), 0);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 30;
        for (int i = 0; i < THREADS; i++)
            if (pthread_timedjoin_np(t[i], NULL, &deadline) != 0)
                fail_msg("round %d: a reader is still waiting after 30 s (hang)", round);  /* leaks: hung */
        assert_int_equal(atomic_load(&job.bad), 0);
        read_handle_close(job.h);
    }
    objc_free(ctx.objects);
    ctx.objects = memory;
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cbc_every_padding_length),
        cmocka_unit_test(test_cbc_random_and_sequential),
        cmocka_unit_test(test_random_4k_reads_fetch_little),
        cmocka_unit_test(test_plain_legacy_instruction),
        cmocka_unit_test(test_gcm),
        cmocka_unit_test(test_gcm_out_of_order_still_verified),
        cmocka_unit_test(test_corrupt_objects),
        cmocka_unit_test(test_shared_data_key_one_kms_call),
        cmocka_unit_test(test_open_after_stat_reuses_size),
        cmocka_unit_test(test_replaced_while_open_is_eio),
        cmocka_unit_test(test_replaced_during_open_reopens),
        cmocka_unit_test(test_parallel_readers_never_hang),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
