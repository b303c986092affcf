/* Unit tests of the shared AES-256-CTR-at-offset helper and the sliced EVP update helpers. The reference
 * is built here from single-block AES-ECB (counter block encrypted, XORed into the data), with the
 * counter incremented by the test's own 128-bit big-endian arithmetic, so a wrong carry, a wrong block
 * index or a wrong skip within a block shows up as a mismatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aes_ctr.h"
#include "evp_util.h"

static void increment_counter(uint8_t counter[16])
{
    for (int i = 15; i >= 0; i--)
        if (++counter[i] != 0)
            break;
}

/* Keystream bytes [0, len) from first_counter, one ECB block per counter value. */
static void reference_keystream(const uint8_t key[32], const uint8_t first_counter[16], uint8_t *out, size_t len)
{
    EVP_CIPHER_CTX *ecb = EVP_CIPHER_CTX_new();
    assert_non_null(ecb);
    assert_int_equal(EVP_EncryptInit_ex(ecb, EVP_aes_256_ecb(), NULL, key, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_set_padding(ecb, 0), 1);
    uint8_t counter[16], block[16];
    memcpy(counter, first_counter, 16);
    for (size_t done = 0; done < len; done += 16) {
        int produced = 0;
        assert_int_equal(EVP_EncryptUpdate(ecb, block, &produced, counter, 16), 1);
        assert_int_equal(produced, 16);
        memcpy(out + done, block, len - done < 16 ? len - done : 16);
        increment_counter(counter);
    }
    EVP_CIPHER_CTX_free(ecb);
}

static void check_ranges(const uint8_t first_counter[16])
{
    uint8_t key[32];
    assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
    enum { TOTAL = 4096 + 37 };
    uint8_t *keystream = malloc(TOTAL), *data = malloc(TOTAL), *out = malloc(TOTAL);
    assert_non_null(keystream);
    assert_non_null(data);
    assert_non_null(out);
    reference_keystream(key, first_counter, keystream, TOTAL);
    assert_int_equal(RAND_bytes(data, TOTAL), 1);
    const size_t ranges[][2] = {{0, TOTAL}, {0, 1}, {1, 15}, {15, 2}, {16, 16}, {17, 4000}, {4095, 38}, {TOTAL - 1, 1}};
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        size_t offset = ranges[r][0], len = ranges[r][1];
        assert_int_equal(aes256_ctr_at_offset(key, first_counter, offset, data + offset, len, out), CSE_OK);
        for (size_t i = 0; i < len; i++)
            assert_int_equal(out[i], data[offset + i] ^ keystream[offset + i]);
        /* In place, and applying twice gives the input back. */
        memcpy(out, data + offset, len);
        assert_int_equal(aes256_ctr_at_offset(key, first_counter, offset, out, len, out), CSE_OK);
        assert_int_equal(aes256_ctr_at_offset(key, first_counter, offset, out, len, out), CSE_OK);
        assert_memory_equal(out, data + offset, len);
    }
    free(keystream);
    free(data);
    free(out);
}

static void test_ctr_matches_ecb_reference(void **state)
{
    (void)state;
    const uint8_t zero[16] = {0};
    check_ranges(zero);
    uint8_t random_counter[16];
    assert_int_equal(RAND_bytes(random_counter, 16), 1);
    check_ranges(random_counter);
}

/* Counters that carry out of the low byte, out of the low 32 bits (where GCM's own increment would
 * wrap: callers must keep ranges below that) and out of the low 64 bits into the nonce half. */
static void test_ctr_carries_across_all_128_bits(void **state)
{
    (void)state;
    const uint8_t low_byte[16] = {[15] = 0xf0};
    uint8_t low_32[16] = {0}, low_64[16] = {0};
    memset(low_32 + 12, 0xff, 4);
    low_32[11] = 0x7f;
    memset(low_64 + 8, 0xff, 8);
    low_64[15] = 0xfe;
    check_ranges(low_byte);
    check_ranges(low_32);
    check_ranges(low_64);
}

static void test_ctr_large_offset(void **state)
{
    (void)state;
    uint8_t key[32], first[16] = {0}, expected_counter[16] = {0}, keystream[48], data[40] = {0}, out[40];
    assert_int_equal(RAND_bytes(key, 32), 1);
    /* 5 TiB + 7 bytes in (the largest S3 object): the counter is block offset / 16, skip 7 bytes of it. */
    uint64_t offset = ((uint64_t)5 << 40) + 7;
    uint64_t block = offset / 16;
    for (int i = 0; i < 8; i++)
        expected_counter[15 - i] = (uint8_t)(block >> (8 * i));
    reference_keystream(key, expected_counter, keystream, sizeof(keystream));
    assert_int_equal(aes256_ctr_at_offset(key, first, offset, data, sizeof(data), out), CSE_OK);
    assert_memory_equal(out, keystream + 7, sizeof(out));
}

static void test_ctr_arguments(void **state)
{
    (void)state;
    uint8_t key[32] = {0}, counter[16] = {0}, buf[4] = {0};
    assert_int_equal(aes256_ctr_at_offset(NULL, counter, 0, buf, 4, buf), CSE_ERR_ARGUMENT);
    assert_int_equal(aes256_ctr_at_offset(key, NULL, 0, buf, 4, buf), CSE_ERR_ARGUMENT);
    assert_int_equal(aes256_ctr_at_offset(key, counter, 0, NULL, 4, buf), CSE_ERR_ARGUMENT);
    assert_int_equal(aes256_ctr_at_offset(key, counter, 0, NULL, 0, NULL), CSE_OK);
}

/* evp_update_sliced accumulates into *out_len and reports held-back bytes like EVP does; evp_update_exact
 * refuses a mode that holds bytes back. */
static void test_evp_update_helpers(void **state)
{
    (void)state;
    uint8_t key[32] = {7}, iv[16] = {9}, in[40] = {1}, out[64], expected[64];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv), 1);
    size_t written = 5;
    assert_int_equal(evp_update_sliced(ctx, in, 40, out, &written), CSE_OK);
    assert_int_equal(written, 5 + 32);               /* 8 bytes held back for padding */
    int produced = 0;
    EVP_CIPHER_CTX *ref = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(ref, EVP_aes_256_cbc(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(ref, expected, &produced, in, 40), 1);
    assert_int_equal(produced, 32);
    assert_memory_equal(out, expected, 32);
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv), 1);
    assert_int_equal(evp_update_exact(ctx, in, 40, out), CSE_ERR_OPENSSL);
    assert_int_equal(evp_update_sliced(NULL, in, 40, out, &written), CSE_ERR_ARGUMENT);
    assert_int_equal(evp_update_sliced(ctx, in, 40, out, NULL), CSE_ERR_ARGUMENT);
    EVP_CIPHER_CTX_free(ref);
    EVP_CIPHER_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctr_matches_ecb_reference),
        cmocka_unit_test(test_ctr_carries_across_all_128_bits),
        cmocka_unit_test(test_ctr_large_offset),
        cmocka_unit_test(test_ctr_arguments),
        cmocka_unit_test(test_evp_update_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
