/* Unit tests of AES-256-GCM (GCM specification test cases 13-15, tag failure, streaming in odd pieces,
 * ranged CTR reads at unaligned offsets). The spool's record cipher is tested in test_spool_cipher.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gcm.h"

static void hex_to_bytes(const char *hex, uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned byte;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &byte), 1);
        out[i] = (uint8_t)byte;
    }
}

/* "The Galois/Counter Mode of Operation" (McGrew, Viega), test case 15: 256-bit key, 96-bit IV. */
static const char *const tc15_key = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
static const char *const tc15_iv = "cafebabefacedbaddecaf888";
static const char *const tc15_plain = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                                      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
static const char *const tc15_cipher = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                                       "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
static const char *const tc15_tag = "b094dac5d93471bdec1a502270e3cc6c";

static void test_gcm_spec_vectors_encrypt(void **state)
{
    (void)state;
    uint8_t key[32], iv[12], plain[64], expected[64], out[64], tag[16], expected_tag[16];
    hex_to_bytes(tc15_key, key, 32);
    hex_to_bytes(tc15_iv, iv, 12);
    hex_to_bytes(tc15_plain, plain, 64);
    hex_to_bytes(tc15_cipher, expected, 64);
    hex_to_bytes(tc15_tag, expected_tag, 16);
    assert_int_equal(gcm_encrypt_oneshot(key, iv, plain, 64, out, tag), CSE_OK);
    assert_memory_equal(out, expected, 64);
    assert_memory_equal(tag, expected_tag, 16);

    /* Test cases 13 and 14: zero key and IV, empty and one zero block. */
    uint8_t zero_key[32] = {0}, zero_iv[12] = {0}, zero_block[16] = {0};
    hex_to_bytes("530f8afbc74536b9a963b4f1c4cb738b", expected_tag, 16);
    assert_int_equal(gcm_encrypt_oneshot(zero_key, zero_iv, NULL, 0, NULL, tag), CSE_OK);
    assert_memory_equal(tag, expected_tag, 16);
    hex_to_bytes("cea7403d4d606b6e074ec5d3baf39d18", expected, 16);
    hex_to_bytes("d0d1c8a799996bf0265b98b5d48ab919", expected_tag, 16);
    assert_int_equal(gcm_encrypt_oneshot(zero_key, zero_iv, zero_block, 16, out, tag), CSE_OK);
    assert_memory_equal(out, expected, 16);
    assert_memory_equal(tag, expected_tag, 16);
}

static void test_gcm_spec_vector_decrypt_in_pieces(void **state)
{
    (void)state;
    uint8_t key[32], iv[12], expected[64], cipher[64], out[64], tag[16];
    hex_to_bytes(tc15_key, key, 32);
    hex_to_bytes(tc15_iv, iv, 12);
    hex_to_bytes(tc15_plain, expected, 64);
    hex_to_bytes(tc15_cipher, cipher, 64);
    hex_to_bytes(tc15_tag, tag, 16);
    const size_t pieces[] = {1, 7, 16, 31, 9};     /* sums to 64 */
    gcm_decryptor *dec = NULL;
    assert_int_equal(gcm_decryptor_new(key, iv, &dec), CSE_OK);
    size_t pos = 0;
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(gcm_decryptor_update(dec, cipher + pos, pieces[i], out + pos), CSE_OK);
        pos += pieces[i];
    }
    assert_int_equal(pos, 64);
    assert_int_equal(gcm_decryptor_final(dec, tag), CSE_OK);
    assert_memory_equal(out, expected, 64);
    assert_int_equal(gcm_decryptor_final(dec, tag), CSE_ERR_STATE);
    assert_int_equal(gcm_decryptor_update(dec, cipher, 1, out), CSE_ERR_STATE);
    gcm_decryptor_free(dec);
}

static void test_gcm_tag_failures(void **state)
{
    (void)state;
    uint8_t key[32], iv[12], cipher[64], out[64], tag[16];
    hex_to_bytes(tc15_key, key, 32);
    hex_to_bytes(tc15_iv, iv, 12);
    hex_to_bytes(tc15_cipher, cipher, 64);
    hex_to_bytes(tc15_tag, tag, 16);
    gcm_decryptor *dec = NULL;

    tag[15] ^= 1;                                         /* flipped tag bit */
    assert_int_equal(gcm_decryptor_new(key, iv, &dec), CSE_OK);
    assert_int_equal(gcm_decryptor_update(dec, cipher, 64, out), CSE_OK);
    assert_int_equal(gcm_decryptor_final(dec, tag), CSE_ERR_GCM_TAG);
    gcm_decryptor_free(dec);
    tag[15] ^= 1;

    cipher[40] ^= 0x80;                                   /* flipped ciphertext bit */
    assert_int_equal(gcm_decryptor_new(key, iv, &dec), CSE_OK);
    assert_int_equal(gcm_decryptor_update(dec, cipher, 64, out), CSE_OK);
    assert_int_equal(gcm_decryptor_final(dec, tag), CSE_ERR_GCM_TAG);
    gcm_decryptor_free(dec);
    cipher[40] ^= 0x80;

    assert_int_equal(gcm_decryptor_new(key, iv, &dec), CSE_OK);  /* truncated ciphertext */
    assert_int_equal(gcm_decryptor_update(dec, cipher, 48, out), CSE_OK);
    assert_int_equal(gcm_decryptor_final(dec, tag), CSE_ERR_GCM_TAG);
    gcm_decryptor_free(dec);

    key[0] ^= 1;                                          /* wrong key */
    assert_int_equal(gcm_decryptor_new(key, iv, &dec), CSE_OK);
    assert_int_equal(gcm_decryptor_update(dec, cipher, 64, out), CSE_OK);
    assert_int_equal(gcm_decryptor_final(dec, tag), CSE_ERR_GCM_TAG);
    gcm_decryptor_free(dec);
}

static void test_gcm_ranged_reads(void **state)
{
    (void)state;
    uint8_t key[32], iv[12], tag[16];
    srand(42);
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)rand();
    for (int i = 0; i < 12; i++)
        iv[i] = (uint8_t)rand();
    size_t len = 70001;
    uint8_t *plain = malloc(len), *cipher = malloc(len), *out = malloc(len);
    for (size_t i = 0; i < len; i++)
        plain[i] = (uint8_t)rand();
    assert_int_equal(gcm_encrypt_oneshot(key, iv, plain, len, cipher, tag), CSE_OK);
    /* Whole object through the authenticated path first. */
    gcm_decryptor *dec = NULL;
    assert_int_equal(gcm_decryptor_new(key, iv, &dec), CSE_OK);
    assert_int_equal(gcm_decryptor_update(dec, cipher, len, out), CSE_OK);
    assert_int_equal(gcm_decryptor_final(dec, tag), CSE_OK);
    gcm_decryptor_free(dec);
    assert_memory_equal(out, plain, len);

    const size_t fixed[][2] = {{0, 1}, {1, 15}, {15, 2}, {16, 16}, {17, 100}, {31, 1}, {0, 70001}, {70000, 1},
                               {65535, 4466}};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        memset(out, 0, len);
        assert_int_equal(gcm_decrypt_range(key, iv, fixed[i][0], cipher + fixed[i][0], fixed[i][1], out), CSE_OK);
        assert_memory_equal(out, plain + fixed[i][0], fixed[i][1]);
    }
    for (int round = 0; round < 200; round++) {
        size_t offset = (size_t)rand() % len;
        size_t count = (size_t)rand() % (len - offset + 1);
        memcpy(out, cipher + offset, count);                   /* in place */
        assert_int_equal(gcm_decrypt_range(key, iv, offset, out, count, out), CSE_OK);
        assert_memory_equal(out, plain + offset, count);
    }
    /* Past the 32-bit counter no GCM object can exist. */
    assert_int_equal(gcm_decrypt_range(key, iv, (uint64_t)1 << 40, cipher, 16, out), CSE_ERR_ARGUMENT);
    free(plain);
    free(cipher);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcm_spec_vectors_encrypt),
        cmocka_unit_test(test_gcm_spec_vector_decrypt_in_pieces),
        cmocka_unit_test(test_gcm_tag_failures),
        cmocka_unit_test(test_gcm_ranged_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
