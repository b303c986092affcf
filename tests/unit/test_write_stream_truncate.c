/* write_stream_truncate: cutting the stream back while the bytes past the cut are still in the current
 * part buffer (the SQL Server under Wine pattern: whole sectors written past the end, then
 * SetEndOfFile). Every cut offset class is tried after parts were uploaded; more data is appended after
 * the cut so that the rewound CBC state is exercised too. Each stored object is decrypted with the
 * crypto primitives (KMS Decrypt of the envelope key, CBC over the whole body, strict padding) and
 * compared with the plaintext this test generated. */
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
#include "write_stream.h"

/* Tiny parts keep the buffers small; the store accepts them once its minimum is lowered. */
#define PART 64

#include "write_fixture.h"

static void fixture_init(fixture *f, uint64_t part_size, uint64_t max_memory)
{
    fixture_config cfg = { .part_size = part_size, .max_memory = max_memory, .min_part_size = 1,
                           .upload_workers = 2 };
    fixture_setup(f, &cfg);
}

/* The stored object's plaintext: decrypted with the primitives when it carries an envelope. */
static uint8_t *stored_plain(fixture *f, const char *key, size_t *plain_len)
{
    int encrypted = 0;
    return decrypt_object(f, key, plain_len, NULL, &encrypted);
}

static void append_chunks(write_stream *s, const uint8_t *data, size_t len, size_t chunk)
{
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        assert_int_equal(write_stream_append(s, data + off, n), 0);
    }
}

/* Writes `written` bytes, cuts back to `cut` (expecting `want_rc`), appends `more` bytes, finishes and
 * checks the object: plain[0..cut) + tail when the cut was taken, else plain[0..written) + tail. */
static void check_cut(int encrypt, size_t part, size_t written, size_t cut, int want_rc, size_t more,
                      size_t chunk)
{
    fixture f;
    fixture_init(&f, part, 1024 * 1024);
    uint8_t *plain = make_plain(written, (uint32_t)(written * 31 + cut));
    uint8_t *tail = make_plain(more, (uint32_t)(cut + 7));
    write_stream *s = NULL;
    assert_int_equal(write_stream_new(&f.ctx, f.uploader, "t.bak", encrypt, NULL, &s), 0);
    append_chunks(s, plain, written, chunk);
    assert_int_equal(write_stream_truncate(s, cut), want_rc);
    size_t kept = want_rc == 0 ? cut : written;
    assert_int_equal(write_stream_length(s), kept);
    append_chunks(s, tail, more, chunk);
    assert_int_equal(write_stream_length(s), kept + more);
    assert_int_equal(write_stream_finish(s), 0);
    write_stream_free(s);

    size_t got_len = 0;
    uint8_t *got = stored_plain(&f, "t.bak", &got_len);
    assert_int_equal(got_len, kept + more);
    assert_memory_equal(got, plain, kept);
    if (more)
        assert_memory_equal(got + kept, tail, more);
    assert_int_equal(objc_memory_upload_count(f.memory), 0);
    free(got);
    free(plain);
    free(tail);
    fixture_free(&f);
}

/* 168 bytes with 64-byte parts: parts 1 and 2 are uploaded, the current part holds ciphertext [128,160)
 * and the cipher holds back plaintext [160,168). */
static void test_cut_classes_after_uploads(void **state)
{
    (void)state;
    static const size_t chunks[] = { 1, 7, 16, 100 };
    for (int encrypt = 0; encrypt <= 1; encrypt++) {
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            size_t ch = chunks[c];
            check_cut(encrypt, PART, 168, 168, 0, 0, ch);      /* no-op */
            check_cut(encrypt, PART, 168, 165, 0, 0, ch);      /* inside the held-back block */
            check_cut(encrypt, PART, 168, 160, 0, 21, ch);     /* at the held-back block's edge */
            check_cut(encrypt, PART, 168, 150, 0, 0, ch);      /* inside the last emitted block */
            check_cut(encrypt, PART, 168, 150, 0, 45, ch);     /* ... then more data through the cipher */
            check_cut(encrypt, PART, 168, 135, 0, 3, ch);      /* across several blocks, into the first */
            check_cut(encrypt, PART, 168, 144, 0, 100, ch);    /* exactly at a block edge */
            check_cut(encrypt, PART, 168, 128, 0, 0, ch);      /* exactly at the part start */
            check_cut(encrypt, PART, 168, 128, 0, 70, ch);     /* ... chained on the uploaded part */
            check_cut(encrypt, PART, 168, 127, -ENOTSUP, 9, ch);   /* in an uploaded part */
            check_cut(encrypt, PART, 168, 0, -ENOTSUP, 0, ch);
        }
    }
}

static void test_cut_before_any_upload(void **state)
{
    (void)state;
    for (int encrypt = 0; encrypt <= 1; encrypt++) {
        check_cut(encrypt, PART, 50, 0, 0, 0, 13);
        check_cut(encrypt, PART, 50, 0, 0, 33, 13);
        check_cut(encrypt, PART, 50, 5, 0, 0, 13);       /* chained on the IV */
        check_cut(encrypt, PART, 50, 17, 0, 40, 13);
        check_cut(encrypt, PART, 10, 3, 0, 0, 13);       /* nothing emitted at all */
        check_cut(encrypt, PART, 50, 51, -ENOTSUP, 0, 13);   /* growing is not a cut */
    }
}

/* A full part waits (lazily) for the next byte before it goes out: cutting into it is still exact. */
static void test_cut_into_full_part(void **state)
{
    (void)state;
    check_cut(1, PART, 192, 130, 0, 0, 16);
    check_cut(1, PART, 192, 128, 0, 64, 16);
    check_cut(1, PART, 192, 191, 0, 1, 64);
}

/* SQL Server under Wine: 512-byte sectors written past the real end, then SetEndOfFile 302 bytes back,
 * after the first parts went out. */
static void test_sector_padding_after_parts(void **state)
{
    (void)state;
    check_cut(1, 2048, 5 * 512 + 2048, 5 * 512 + 2048 - 302, 0, 0, 512);
    check_cut(1, 2048, 9 * 512, 9 * 512 - 302, 0, 0, 512);
    check_cut(1, 2048, 8 * 512, 8 * 512 - 302, 0, 0, 512);          /* part 2 full, not yet sent */
    check_cut(1, 2048, 5 * 512, 5 * 512 - 600, -ENOTSUP, 0, 512);   /* back into the sent part 1 */
}

typedef struct {
    uint8_t *out;
    size_t cap;
    size_t end;
} recovered;

static int collect(void *arg, uint64_t offset, const uint8_t *data, size_t len)
{
    recovered *r = arg;
    assert_true(offset + len <= r->cap);
    memcpy(r->out + offset, data, len);
    if (offset + len > r->end)
        r->end = offset + len;
    return 0;
}

/* A file leaving the streaming path after a cut (nothing uploaded yet) hands over exactly the bytes
 * before the cut, including those the rewound cipher holds back. */
static void test_recover_after_cut(void **state)
{
    (void)state;
    static const size_t cuts[] = { 0, 3, 16, 37, 48, 61 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        fixture f;
        fixture_init(&f, PART, 1024 * 1024);
        uint8_t *plain = make_plain(62, (uint32_t)i);
        write_stream *s = NULL;
        assert_int_equal(write_stream_new(&f.ctx, f.uploader, "r.bak", 1, NULL, &s), 0);
        append_chunks(s, plain, 62, 9);
        assert_int_equal(write_stream_truncate(s, cuts[i]), 0);
        uint8_t out[64];
        recovered r = { out, sizeof out, 0 };
        assert_int_equal(write_stream_recover(s, collect, &r), 0);
        assert_int_equal(r.end, cuts[i]);
        assert_memory_equal(out, plain, cuts[i]);
        write_stream_free(s);
        free(plain);
        fixture_free(&f);
    }
}

/* A part staged on disk (memory cap smaller than a part) is not rewound. */
static void test_staged_part_not_cut(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, PART, PART);
    uint8_t *plain = make_plain(100, 3);
    write_stream *s = NULL;
    assert_int_equal(write_stream_new(&f.ctx, f.uploader, "s.bak", 1, NULL, &s), 0);
    append_chunks(s, plain, 100, 10);
    assert_int_equal(write_stream_truncate(s, 90), -ENOTSUP);
    assert_int_equal(write_stream_finish(s), 0);
    write_stream_free(s);
    size_t n = 0;
    uint8_t *got = stored_plain(&f, "s.bak", &n);
    assert_int_equal(n, 100);
    assert_memory_equal(got, plain, 100);
    free(got);
    free(plain);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_classes_after_uploads),
        cmocka_unit_test(test_cut_before_any_upload),
        cmocka_unit_test(test_cut_into_full_part),
        cmocka_unit_test(test_sector_padding_after_parts),
        cmocka_unit_test(test_staged_part_not_cut),
        cmocka_unit_test(test_recover_after_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
