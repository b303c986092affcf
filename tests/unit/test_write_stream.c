/* Write path without a mount: write_file/write_stream against the in-memory object store and the local
 * KMS. Every stored object is decrypted here with the crypto primitives (KMS Decrypt of the envelope's
 * key under the matdesc context, CBC over the whole body, strict padding) and compared byte for byte
 * with the plaintext the test generated itself. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cbc_random.h"
#include "envelope.h"
#include "fs_context.h"
#include "kms_local.h"
#include "objc_memory.h"
#include "part_uploader.h"
#include "write_file.h"
#include "write_stream.h"

#define MIB (1024 * 1024)

#include "write_fixture.h"

static void fixture_init(fixture *f, uint64_t part_size, uint64_t max_memory)
{
    fixture_config cfg = { .part_size = part_size, .max_memory = max_memory, .reorder_window = 4 * MIB,
                           .upload_workers = 3 };
    fixture_setup(f, &cfg);
}

static void expect_object(fixture *f, const char *key, const uint8_t *want, size_t want_len, int want_encrypted)
{
    size_t got_len = 0;
    int encrypted = -1;
    uint8_t *got = decrypt_object(f, key, &got_len, NULL, &encrypted);
    assert_int_equal(encrypted, want_encrypted);
    assert_int_equal(got_len, want_len);
    if (want_len)
        assert_memory_equal(got, want, want_len);
    free(got);
}

/* Writes plain[0..len) sequentially in chunks of `chunk` through a new file and finishes it. */
static void write_sequential(fixture *f, const char *path, const uint8_t *plain, size_t len, size_t chunk)
{
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f->ctx, f->uploader, path, 0100644, &wf), 0);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        assert_int_equal(write_file_write(wf, (const char *)plain + off, n, (off_t)off), (ssize_t)n);
    }
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
}

static void test_sequential_matrix(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 16, 5 * MIB - 1, 5 * MIB, 8 * MIB + 17 };
    static const size_t chunks[] = { 512, 4096, MIB, 3 * MIB + 1 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            /* 512-byte writes of the large sizes add time, not coverage. */
            if (chunks[c] == 512 && sizes[s] > 5 * MIB)
                continue;
            fixture f;
            fixture_init(&f, 5 * MIB, 32 * MIB);
            uint8_t *plain = make_plain(sizes[s], (uint32_t)(s * 10 + c));
            write_sequential(&f, "/dir/db.bak", plain, sizes[s], chunks[c]);
            expect_object(&f, "dir/db.bak", plain, sizes[s], 1);
            objc_memory_counts counts;
            objc_memory_stats(f.memory, &counts);
            /* One PUT with the length when the ciphertext fits one part, else multipart. */
            uint64_t stored = sizes[s] + 16 - sizes[s] % 16;
            if (stored <= 5 * MIB + 16 && counts.mpu_create == 0) {
                assert_int_equal(counts.put, 1);
            } else {
                assert_int_equal(counts.mpu_create, 1);
                assert_int_equal(counts.mpu_complete, 1);
                assert_int_equal(counts.put, 0);
            }
            assert_int_equal(objc_memory_upload_count(f.memory), 0);
            free(plain);
            fixture_free(&f);
        }
    }
}

static void test_single_put_has_length_multipart_not(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    uint8_t *plain = make_plain(6 * MIB, 7);
    write_sequential(&f, "/small.BAK", plain, 1000, 1000);
    write_sequential(&f, "/large.bak", plain, 6 * MIB, MIB);
    kv_list md;
    size_t n;
    int enc;
    free(decrypt_object(&f, "small.BAK", &n, &md, &enc));
    assert_true(enc);
    assert_string_equal(kv_list_get(&md, "x-amz-unencrypted-content-length"), "1000");
    assert_non_null(kv_list_get(&md, "x-amz-key-v2"));
    assert_string_equal(kv_list_get(&md, "x-amz-cek-alg"), "AES/CBC/PKCS5Padding");
    assert_string_equal(kv_list_get(&md, "x-amz-wrap-alg"), "kms");
    char matdesc[400];
    snprintf(matdesc, sizeof matdesc, "{\"kms_cmk_id\":\"%s\"}", f.ctx.key_arn);
    assert_string_equal(kv_list_get(&md, "x-amz-matdesc"), matdesc);
    kv_list_free(&md);
    free(decrypt_object(&f, "large.bak", &n, &md, &enc));
    assert_null(kv_list_get(&md, "x-amz-unencrypted-content-length"));
    assert_int_equal(n, 6 * MIB);
    kv_list_free(&md);
    free(plain);
    fixture_free(&f);
}

static void test_plain_names_stored_as_is(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    uint8_t *plain = make_plain(11 * MIB + 3, 9);
    write_sequential(&f, "/notes.txt", plain, 11 * MIB + 3, 3 * MIB + 1);
    expect_object(&f, "notes.txt", plain, 11 * MIB + 3, 0);
    write_sequential(&f, "/empty.txt", plain, 0, 1);
    expect_object(&f, "empty.txt", plain, 0, 0);
    free(plain);
    fixture_free(&f);
}

static void test_keys_and_ivs_never_shared(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    uint8_t *plain = make_plain(100, 1);
    write_sequential(&f, "/a.bak", plain, 100, 100);
    write_sequential(&f, "/b.bak", plain, 100, 100);
    kv_list ma, mb;
    uint8_t *ba, *bb;
    size_t la, lb;
    assert_int_equal(objc_memory_get_object(f.memory, "a.bak", &ba, &la, &ma), 0);
    assert_int_equal(objc_memory_get_object(f.memory, "b.bak", &bb, &lb, &mb), 0);
    assert_string_not_equal(kv_list_get(&ma, "x-amz-key-v2"), kv_list_get(&mb, "x-amz-key-v2"));
    assert_string_not_equal(kv_list_get(&ma, "x-amz-iv"), kv_list_get(&mb, "x-amz-iv"));
    assert_int_equal(la, lb);
    assert_memory_not_equal(ba, bb, la);
    free(ba);
    free(bb);
    kv_list_free(&ma);
    kv_list_free(&mb);
    free(plain);
    fixture_free(&f);
}

/* Writes of 64 KiB arrive shuffled within groups of ten (like Samba's async I/O): no spool. */
static void test_shuffled_within_window(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    const size_t chunk = 64 * 1024, count = 200;
    uint8_t *plain = make_plain(chunk * count, 3);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/s.bak", 0100644, &wf), 0);
    size_t order[10];
    uint32_t x = 12345;
    for (size_t g = 0; g < count; g += 10) {
        for (size_t i = 0; i < 10; i++)
            order[i] = g + i;
        for (size_t i = 9; i > 0; i--) {
            x = x * 1103515245u + 12345u;
            size_t j = (x >> 8) % (i + 1);
            size_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (size_t i = 0; i < 10; i++)
            assert_int_equal(write_file_write(wf, (const char *)plain + order[i] * chunk, chunk,
                                              (off_t)(order[i] * chunk)), (ssize_t)chunk);
    }
    uint64_t size = 0;
    assert_int_equal(write_file_stat(wf, &size, NULL), 1);
    assert_int_equal(size, chunk * count);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    expect_object(&f, "s.bak", plain, chunk * count, 1);
    free(plain);
    fixture_free(&f);
}

/* Shuffled arrival where some writes are all zeros (sparse regions of a backup): the zero writes ahead
 * of the frontier are held as zero ranges, so the frontier passes them and the file keeps streaming.
 * Overlapping rewrites ahead of the frontier keep the newest bytes. */
static void test_zero_chunks_and_overlaps_in_window(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    const size_t chunk = 64 * 1024, count = 200;
    uint8_t *plain = make_plain(chunk * count, 21);
    for (size_t i = 0; i < count; i += 7)
        memset(plain + i * chunk, 0, chunk);
    uint8_t *junk = make_plain(chunk, 22);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/z.bak", 0100644, &wf), 0);
    uint32_t x = 4242;
    for (size_t g = 0; g < count; g += 10) {
        size_t order[10];
        for (size_t i = 0; i < 10; i++)
            order[i] = g + i;
        for (size_t i = 9; i > 0; i--) {
            x = x * 1103515245u + 12345u;
            size_t j = (x >> 8) % (i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        /* Junk first at the group's last two slots (ahead of the frontier), rewritten in parts, then the
         * real bytes over it before the frontier gets there; then the rest of the group shuffled. */
        size_t ahead = (g + 9) * chunk;
        assert_int_equal(write_file_write(wf, (const char *)junk, chunk, (off_t)ahead), (ssize_t)chunk);
        assert_int_equal(write_file_write(wf, (const char *)junk, 100, (off_t)(ahead + 5000)), 100);
        assert_int_equal(write_file_write(wf, (const char *)junk, chunk, (off_t)(ahead - chunk / 2)), (ssize_t)chunk);
        assert_int_equal(write_file_write(wf, (const char *)plain + ahead, chunk, (off_t)ahead), (ssize_t)chunk);
        assert_int_equal(write_file_write(wf, (const char *)plain + ahead - chunk, chunk, (off_t)(ahead - chunk)),
                         (ssize_t)chunk);
        for (size_t i = 0; i < 10; i++) {
            size_t off = order[i] * chunk;
            if (order[i] >= g + 8)
                continue;
            assert_int_equal(write_file_write(wf, (const char *)plain + off, chunk, (off_t)off), (ssize_t)chunk);
        }
    }
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    expect_object(&f, "z.bak", plain, chunk * count, 1);
    free(plain);
    free(junk);
    fixture_free(&f);
}

/* Wine with an exact estimate: the zero marker at end-1 is overwritten by the last data write. */
static void test_pre_extend_exact_size(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    f.ctx.options.reorder_window = 16 * MIB;
    const size_t real = 11 * MIB + 1;
    uint8_t *plain = make_plain(real, 23);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/e.bak", 0100644, &wf), 0);
    char zero = 0;
    assert_int_equal(write_file_write(wf, &zero, 1, (off_t)real - 1), 1);
    assert_int_equal(write_file_truncate(wf, real), 0);
    /* The last piece arrives first (out of order), over the marker; then the rest in order. */
    size_t last = real - MIB;
    assert_int_equal(write_file_write(wf, (const char *)plain + last, MIB, (off_t)last), MIB);
    for (size_t off = 0; off < last; off += MIB) {
        size_t n = last - off < MIB ? last - off : MIB;
        assert_int_equal(write_file_write(wf, (const char *)plain + off, n, (off_t)off), (ssize_t)n);
    }
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    expect_object(&f, "e.bak", plain, real, 1);
    free(plain);
    fixture_free(&f);
}

/* Random writes over the whole file: the spool takes over, the result is still exact. */
static void test_random_writes_use_spool(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    f.ctx.options.reorder_window = 64 * 1024;
    const size_t len = 3 * MIB + 5;
    uint8_t *plain = make_plain(len, 4);
    uint8_t *junk = make_plain(len, 99);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/r.bak", 0100644, &wf), 0);
    /* First junk everywhere in a scattered order, then the real bytes in another order: every byte
     * is rewritten at least once. */
    uint32_t x = 777;
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *src = pass == 0 ? junk : plain;
        for (int i = 0; i < 400; i++) {
            x = x * 1103515245u + 12345u;
            size_t off = (x >> 4) % len;
            size_t n = 1 + (x >> 20) % 20000;
            if (off + n > len)
                n = len - off;
            assert_int_equal(write_file_write(wf, (const char *)src + off, n, (off_t)off), (ssize_t)n);
        }
        for (size_t off = len; off > 0;) {
            size_t n = off > 100000 ? 100000 : off;
            off -= n;
            assert_int_equal(write_file_write(wf, (const char *)src + off, n, (off_t)off), (ssize_t)n);
        }
    }
    char back[4096];
    assert_int_equal(write_file_read(wf, back, sizeof back, 1000), (ssize_t)sizeof back);
    assert_memory_equal(back, plain + 1000, sizeof back);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_true(f.ctx.counters.spool_fallbacks >= 1);
    expect_object(&f, "r.bak", plain, len, 1);
    free(plain);
    free(junk);
    fixture_free(&f);
}

/* Wine/Windows: 1-byte zero at new_end-1, ftruncate(new_end), write in order, truncate to real size.
 * The first part is uploaded before the trim: the file streamed. */
static void test_pre_extend_then_trim(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    const size_t estimate = 40 * MIB, real = 7 * MIB + 9;
    uint8_t *plain = make_plain(real, 5);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/w.bak", 0100644, &wf), 0);
    char zero = 0;
    assert_int_equal(write_file_write(wf, &zero, 1, (off_t)estimate - 1), 1);
    assert_int_equal(write_file_truncate(wf, estimate), 0);
    for (size_t off = 0; off < real; off += MIB) {
        size_t n = real - off < MIB ? real - off : MIB;
        assert_int_equal(write_file_write(wf, (const char *)plain + off, n, (off_t)off), (ssize_t)n);
    }
    uint64_t size = 0;
    write_file_stat(wf, &size, NULL);
    assert_int_equal(size, estimate);
    assert_int_equal(write_file_fsync(wf), 0);
    objc_memory_counts counts;
    objc_memory_stats(f.memory, &counts);
    assert_int_equal(counts.mpu_part, 1);       /* streamed before close */
    assert_int_equal(write_file_truncate(wf, real), 0);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    expect_object(&f, "w.bak", plain, real, 1);
    free(plain);
    fixture_free(&f);
}

/* SQL Server's compressed backup: extend to an estimate, write whole sectors (the last one padded with
 * zeros) after parts were uploaded, then cut the end back to the real size: still streaming, exact. */
static void test_sector_padding_cut_back(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    const size_t real = 12 * MIB + 1234, padded = (real + 4095) / 4096 * 4096;
    uint8_t *plain = calloc(1, padded);
    uint8_t *data = make_plain(real, 31);
    memcpy(plain, data, real);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/c.bak", 0100644, &wf), 0);
    assert_int_equal(write_file_truncate(wf, 30 * MIB), 0);
    for (size_t off = 0; off < padded; off += MIB) {
        size_t n = padded - off < MIB ? padded - off : MIB;
        assert_int_equal(write_file_write(wf, (const char *)plain + off, n, (off_t)off), (ssize_t)n);
    }
    /* A rewrite of the padding region is still taken (nothing there was encrypted yet). */
    assert_int_equal(write_file_write(wf, (const char *)plain + real, 100, (off_t)real), 100);
    assert_int_equal(write_file_truncate(wf, real), 0);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    objc_memory_counts counts;
    objc_memory_stats(f.memory, &counts);
    assert_int_equal(counts.mpu_create, 1);
    expect_object(&f, "c.bak", data, real, 1);
    free(plain);
    free(data);
    fixture_free(&f);
}

/* SetEndOfFile below the encrypted end after parts went out, with non-zero bytes past the cut (so no
 * held-back zeros help): write_stream_truncate cuts the in-memory part exactly, without the spool. */
static void test_cut_back_written_bytes_after_parts(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    const size_t real = 11 * MIB + 1234, written = real + 302;
    uint8_t *data = make_plain(written, 37);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/cut.bak", 0100644, &wf), 0);
    for (size_t off = 0; off < written; off += MIB) {
        size_t n = written - off < MIB ? written - off : MIB;
        assert_int_equal(write_file_write(wf, (const char *)data + off, n, (off_t)off), (ssize_t)n);
    }
    assert_int_equal(write_file_truncate(wf, real), 0);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    expect_object(&f, "cut.bak", data, real, 1);
    free(data);
    fixture_free(&f);
}

/* Holes that stay holes are zeros; truncate-up is a hole too. */
static void test_holes_are_zeros(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    uint8_t *want = calloc(1, 3 * MIB);
    uint8_t *plain = make_plain(1000, 6);
    memcpy(want, plain, 1000);
    memcpy(want + 2 * MIB, plain, 1000);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/h.bak", 0100644, &wf), 0);
    assert_int_equal(write_file_write(wf, (const char *)plain, 1000, 0), 1000);
    assert_int_equal(write_file_write(wf, (const char *)plain, 1000, 2 * MIB), 1000);
    assert_int_equal(write_file_truncate(wf, 3 * MIB), 0);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    expect_object(&f, "h.bak", want, 3 * MIB, 1);
    free(want);
    free(plain);
    fixture_free(&f);
}

/* UploadPart fails: finish reports EIO, the upload is aborted, no object exists. */
static void test_part_failure_aborts(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    object_client *faulty = objc_new_faulty(f.memory, 0);
    assert_non_null(faulty);
    objc_fault_rule rule = { .ops_mask = OBJC_OP_MPU_PART, .after_calls = 1, .fail_count = -1,
                             .kind = AWS_ERR_SERVICE, .http_status = 500, .code = "InternalError" };
    assert_int_equal(objc_faulty_add_rule(faulty, &rule), 0);
    part_uploader_free(f.uploader);
    f.uploader = part_uploader_new(faulty, &f.ctx.counters, 2);
    f.ctx.objects = faulty;
    uint8_t *plain = make_plain(23 * MIB, 8);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/fail.bak", 0100644, &wf), 0);
    int failed_early = 0;
    for (size_t off = 0; off < 23 * MIB; off += MIB) {
        ssize_t rc = write_file_write(wf, (const char *)plain + off, MIB, (off_t)off);
        if (rc < 0) {
            assert_int_equal(rc, -EIO);
            failed_early = 1;
            break;
        }
    }
    (void)failed_early;
    assert_int_equal(write_file_finish(wf), -EIO);
    write_file_free(wf);
    objc_memory_counts counts;
    objc_memory_stats(f.memory, &counts);
    assert_int_equal(counts.mpu_abort, 1);
    assert_int_equal(counts.mpu_complete, 0);
    assert_int_equal(objc_memory_object_count(f.memory), 0);
    assert_int_equal(objc_memory_upload_count(f.memory), 0);
    assert_int_equal(f.ctx.counters.uploads_failed, 1);
    free(plain);
    fixture_free(&f);
}

/* A failing single PUT (small file) also reports EIO and stores nothing. */
static void test_put_failure(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    object_client *faulty = objc_new_faulty(f.memory, 0);
    objc_fault_rule rule = { .ops_mask = OBJC_OP_PUT, .after_calls = 0, .fail_count = -1,
                             .kind = AWS_ERR_NETWORK, .code = "" };
    assert_int_equal(objc_faulty_add_rule(faulty, &rule), 0);
    f.ctx.objects = faulty;
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/p.bak", 0100644, &wf), 0);
    assert_int_equal(write_file_write(wf, "abc", 3, 0), 3);
    assert_int_equal(write_file_finish(wf), -EIO);
    write_file_free(wf);
    assert_int_equal(objc_memory_object_count(f.memory), 0);
    fixture_free(&f);
}

/* Rewriting bytes after parts were uploaded cannot be honoured: EIO, upload aborted, no object. */
static void test_rewrite_after_upload_fails_cleanly(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    uint8_t *plain = make_plain(12 * MIB, 10);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/x.bak", 0100644, &wf), 0);
    assert_int_equal(write_file_write(wf, (const char *)plain, 12 * MIB, 0), 12 * MIB);
    assert_int_equal(write_file_write(wf, (const char *)plain, 100, 0), -EIO);
    assert_int_equal(write_file_finish(wf), -EIO);
    write_file_free(wf);
    assert_int_equal(objc_memory_object_count(f.memory), 0);
    assert_int_equal(objc_memory_upload_count(f.memory), 0);
    free(plain);
    fixture_free(&f);
}

/* Opening an existing object without O_TRUNC and appending: old bytes + new ones, fresh data key. */
static void test_append_to_existing(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 32 * MIB);
    const size_t first = 6 * MIB + 3, extra = 70000;
    uint8_t *plain = make_plain(first + extra, 11);
    write_sequential(&f, "/ap.bak", plain, first, MIB);
    kv_list before;
    uint8_t *body;
    size_t len;
    assert_int_equal(objc_memory_get_object(f.memory, "ap.bak", &body, &len, &before), 0);
    free(body);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_existing(&f.ctx, f.uploader, "/ap.bak", &wf), 0);
    assert_int_equal(write_file_stat(wf, NULL, NULL), 0);          /* idle: nothing pending */
    assert_int_equal(write_file_write(wf, (const char *)plain + first, extra, (off_t)first), (ssize_t)extra);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    expect_object(&f, "ap.bak", plain, first + extra, 1);
    kv_list after;
    assert_int_equal(objc_memory_get_object(f.memory, "ap.bak", &body, &len, &after), 0);
    free(body);
    assert_string_not_equal(kv_list_get(&before, "x-amz-key-v2"), kv_list_get(&after, "x-amz-key-v2"));
    assert_string_equal(kv_list_get(&after, "mode"), kv_list_get(&before, "mode"));
    kv_list_free(&before);
    kv_list_free(&after);
    free(plain);
    fixture_free(&f);
}

/* Many files at once within a small cap: all complete, the cap is never exceeded. */
static void test_many_files_one_cap(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 24 * MIB);
    enum { FILES = 6 };
    const size_t len = 11 * MIB;
    uint8_t *plain = make_plain(len, 12);
    write_file *wf[FILES];
    char path[32];
    for (int i = 0; i < FILES; i++) {
        snprintf(path, sizeof path, "/m%d.bak", i);
        assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, path, 0100644, &wf[i]), 0);
    }
    for (size_t off = 0; off < len; off += 512 * 1024)
        for (int i = 0; i < FILES; i++) {
            size_t n = len - off < 512 * 1024 ? len - off : 512 * 1024;
            assert_int_equal(write_file_write(wf[i], (const char *)plain + off, n, (off_t)off), (ssize_t)n);
        }
    for (int i = 0; i < FILES; i++) {
        assert_int_equal(write_file_finish(wf[i]), 0);
        write_file_free(wf[i]);
        snprintf(path, sizeof path, "m%d.bak", i);
        expect_object(&f, path, plain, len, 1);
    }
    assert_true(f.ctx.memory.peak <= 24 * MIB);
    free(plain);
    fixture_free(&f);
}

/* Three files filling parts at once under a cap that holds only two part buffers: the third part is
 * staged on disk (ciphertext), can still be recovered into the spool by a rewrite, and every object is
 * exact; nothing stays on disk afterwards. */
static void test_staged_parts_under_pressure(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, 5 * MIB, 11 * MIB);
    const size_t len = 9 * MIB / 2;
    uint8_t *plain = make_plain(len, 13);
    write_file *wf[3];
    char path[32];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/st%d.bak", i);
        assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, path, 0100644, &wf[i]), 0);
        for (size_t off = 0; off < len; off += MIB / 2)
            assert_int_equal(write_file_write(wf[i], (const char *)plain + off, MIB / 2, (off_t)off), MIB / 2);
    }
    assert_true(f.ctx.counters.spool_bytes > 0);          /* the third file's part went to disk */
    assert_true(memory_budget_used(&f.ctx.memory) <= 11 * MIB);
    /* Rewrite the start of the staged file: it leaves the stream via its staged ciphertext. */
    assert_int_equal(write_file_write(wf[2], (const char *)plain, 4096, 0), 4096);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(write_file_finish(wf[i]), 0);
        write_file_free(wf[i]);
        snprintf(path, sizeof path, "st%d.bak", i);
        expect_object(&f, path, plain, len, 1);
    }
    assert_int_equal(f.ctx.counters.spool_bytes, 0);
    assert_true(f.ctx.memory.peak <= 11 * MIB);
    free(plain);
    fixture_free(&f);
}

static void test_part_size_growth(void **state)
{
    (void)state;
    const uint64_t p = 8 * MIB;
    assert_int_equal(write_part_size(p, 1), p);
    assert_int_equal(write_part_size(p, 1000), p);
    assert_int_equal(write_part_size(p, 1001), 2 * p);
    assert_int_equal(write_part_size(p, 10000), 512 * p);
    uint64_t total = 0;
    for (int n = 1; n <= 10000; n++) {
        total += write_part_size(p, n);
        assert_int_equal(write_part_size(p, n) % 16, 0);
        assert_true(write_part_size(p, n) <= 5ULL * 1024 * MIB);
    }
    assert_true(total >= 5ULL * 1024 * 1024 * MIB);      /* 5 TiB fits in 10,000 parts */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_part_size_growth),
        cmocka_unit_test(test_sequential_matrix),
        cmocka_unit_test(test_single_put_has_length_multipart_not),
        cmocka_unit_test(test_plain_names_stored_as_is),
        cmocka_unit_test(test_keys_and_ivs_never_shared),
        cmocka_unit_test(test_shuffled_within_window),
        cmocka_unit_test(test_zero_chunks_and_overlaps_in_window),
        cmocka_unit_test(test_pre_extend_exact_size),
        cmocka_unit_test(test_random_writes_use_spool),
        cmocka_unit_test(test_pre_extend_then_trim),
        cmocka_unit_test(test_holes_are_zeros),
        cmocka_unit_test(test_sector_padding_cut_back),
        cmocka_unit_test(test_cut_back_written_bytes_after_parts),
        cmocka_unit_test(test_part_failure_aborts),
        cmocka_unit_test(test_put_failure),
        cmocka_unit_test(test_rewrite_after_upload_fails_cleanly),
        cmocka_unit_test(test_append_to_existing),
        cmocka_unit_test(test_many_files_one_cap),
        cmocka_unit_test(test_staged_parts_under_pressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
