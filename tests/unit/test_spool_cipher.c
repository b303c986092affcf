/* Unit tests of the spool's record cipher (crypto/spool_cipher.c): round trips, a fresh IV for every
 * seal of the same record (no keystream reuse), the header format, and that the tag covers the
 * ciphertext, the header and the record index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "spool_cipher.h"

#define LEN 5000

static void fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

static void test_round_trip(void **state)
{
    (void)state;
    spool_cipher *sc = NULL;
    assert_int_equal(spool_cipher_new(&sc), CSE_OK);
    uint8_t plain[LEN], cipher[LEN], back[LEN], header[SPOOL_RECORD_HEADER];
    fill(plain, LEN, 1);
    uint64_t index = ((uint64_t)1 << 40) + 3;
    for (size_t len = 1; len <= LEN; len += 1237) {
        assert_int_equal(spool_cipher_seal(sc, index, plain, len, header, cipher), CSE_OK);
        assert_memory_not_equal(cipher, plain, len < 16 ? len : 16);
        size_t declared = 0;
        assert_int_equal(spool_record_length(header, &declared), CSE_OK);
        assert_int_equal(declared, len);
        assert_int_equal(spool_cipher_open(sc, index, header, cipher, len, back), CSE_OK);
        assert_memory_equal(back, plain, len);
        /* In place both ways. */
        memcpy(back, plain, len);
        assert_int_equal(spool_cipher_seal(sc, index, back, len, header, back), CSE_OK);
        spool_cipher_release(sc);          /* re-keys transparently */
        assert_int_equal(spool_cipher_open(sc, index, header, back, len, back), CSE_OK);
        assert_memory_equal(back, plain, len);
    }
    spool_cipher_free(sc);
    spool_cipher_free(NULL);
    spool_cipher_release(NULL);
}

static void test_every_seal_new_keystream(void **state)
{
    (void)state;
    spool_cipher *sc = NULL, *other = NULL;
    assert_int_equal(spool_cipher_new(&sc), CSE_OK);
    assert_int_equal(spool_cipher_new(&other), CSE_OK);
    uint8_t x[LEN], y[LEN], cx[LEN], cy[LEN], hx[SPOOL_RECORD_HEADER], hy[SPOOL_RECORD_HEADER];
    fill(x, LEN, 2);
    fill(y, LEN, 3);
    assert_int_equal(spool_cipher_seal(sc, 9, x, LEN, hx, cx), CSE_OK);
    assert_int_equal(spool_cipher_seal(sc, 9, y, LEN, hy, cy), CSE_OK);
    assert_memory_not_equal(hx, hy, 8);                 /* generations differ */
    /* With a reused keystream cx ^ cy == x ^ y; compare the first blocks. */
    uint8_t dc[32], dp[32];
    for (int i = 0; i < 32; i++) {
        dc[i] = cx[i] ^ cy[i];
        dp[i] = x[i] ^ y[i];
    }
    assert_memory_not_equal(dc, dp, 32);
    /* Same plaintext sealed twice: different ciphertext. */
    assert_int_equal(spool_cipher_seal(sc, 9, x, LEN, hy, cy), CSE_OK);
    assert_memory_not_equal(cx, cy, 32);
    /* Another spool's key opens nothing of this one, even with the same generation. */
    uint8_t h2[SPOOL_RECORD_HEADER], c2[LEN], back[LEN];
    assert_int_equal(spool_cipher_seal(other, 9, x, LEN, h2, c2), CSE_OK);
    assert_memory_equal(h2, hx, 12);                    /* both generation 1, same length */
    assert_memory_not_equal(c2, cx, 32);
    assert_int_equal(spool_cipher_open(sc, 9, h2, c2, LEN, back), CSE_ERR_GCM_TAG);
    spool_cipher_free(sc);
    spool_cipher_free(other);
}

static void test_tampering_detected(void **state)
{
    (void)state;
    spool_cipher *sc = NULL;
    assert_int_equal(spool_cipher_new(&sc), CSE_OK);
    uint8_t plain[LEN], cipher[LEN], back[LEN], header[SPOOL_RECORD_HEADER], h[SPOOL_RECORD_HEADER];
    fill(plain, LEN, 4);
    assert_int_equal(spool_cipher_seal(sc, 5, plain, LEN, header, cipher), CSE_OK);
    /* Wrong index. */
    assert_int_equal(spool_cipher_open(sc, 6, header, cipher, LEN, back), CSE_ERR_GCM_TAG);
    /* Flipped ciphertext. */
    cipher[LEN / 2] ^= 1;
    assert_int_equal(spool_cipher_open(sc, 5, header, cipher, LEN, back), CSE_ERR_GCM_TAG);
    cipher[LEN / 2] ^= 1;
    /* Flipped generation or tag. */
    for (size_t at = 0; at < SPOOL_RECORD_HEADER; at += 7) {
        if (at >= 8 && at < 16)
            continue;                                   /* length and reserved: below */
        memcpy(h, header, sizeof h);
        h[at] ^= 0x80;
        assert_int_equal(spool_cipher_open(sc, 5, h, cipher, LEN, back), CSE_ERR_GCM_TAG);
    }
    /* A shorter length is authenticated too (a record cut short). */
    memcpy(h, header, sizeof h);
    h[11] = (uint8_t)(h[11] - 1);
    assert_int_equal(spool_cipher_open(sc, 5, h, cipher, LEN - 1, back), CSE_ERR_GCM_TAG);
    assert_int_equal(spool_cipher_open(sc, 5, header, cipher, LEN, back), CSE_OK);
    assert_memory_equal(back, plain, LEN);
    spool_cipher_free(sc);
}

static void test_header_format(void **state)
{
    (void)state;
    uint8_t h[SPOOL_RECORD_HEADER] = {0};
    size_t len = 99;
    assert_int_equal(spool_record_length(h, &len), CSE_OK);
    assert_int_equal(len, 0);                           /* a hole */
    h[7] = 1;                                           /* generation 1, length 0 */
    assert_int_equal(spool_record_length(h, &len), CSE_ERR_CIPHERTEXT_LENGTH);
    h[11] = 10;
    assert_int_equal(spool_record_length(h, &len), CSE_OK);
    assert_int_equal(len, 10);
    h[13] = 1;                                          /* reserved byte set */
    assert_int_equal(spool_record_length(h, &len), CSE_ERR_CIPHERTEXT_LENGTH);
    h[13] = 0;
    h[7] = 0;                                           /* generation 0 never sealed */
    assert_int_equal(spool_record_length(h, &len), CSE_ERR_CIPHERTEXT_LENGTH);
    h[7] = 1;
    h[8] = 0x7f;                                        /* length over the maximum */
    assert_int_equal(spool_record_length(h, &len), CSE_ERR_CIPHERTEXT_LENGTH);
    assert_int_equal(spool_record_length(NULL, &len), CSE_ERR_ARGUMENT);

    spool_cipher *sc = NULL;
    assert_int_equal(spool_cipher_new(&sc), CSE_OK);
    uint8_t p[16] = {0}, c[16], header[SPOOL_RECORD_HEADER];
    assert_int_equal(spool_cipher_seal(sc, 0, p, 0, header, c), CSE_ERR_ARGUMENT);
    assert_int_equal(spool_cipher_seal(NULL, 0, p, 1, header, c), CSE_ERR_ARGUMENT);
    assert_int_equal(spool_cipher_seal(sc, 0, p, 16, header, c), CSE_OK);
    assert_int_equal(header[7], 1);                     /* first generation is 1, so never a hole */
    assert_int_equal(header[11], 16);
    /* open wants exactly the declared length. */
    assert_int_equal(spool_cipher_open(sc, 0, header, c, 15, p), CSE_ERR_ARGUMENT);
    uint8_t zero[SPOOL_RECORD_HEADER] = {0};
    assert_int_equal(spool_cipher_open(sc, 0, zero, c, 16, p), CSE_ERR_ARGUMENT);
    assert_int_equal(spool_cipher_new(NULL), CSE_ERR_ARGUMENT);
    spool_cipher_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_seal_new_keystream),
        cmocka_unit_test(test_tampering_detected),
        cmocka_unit_test(test_header_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
