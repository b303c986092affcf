/* Unit tests of the AES-256-CBC stream encryptor and the random-access decryptor: NIST SP 800-38A
 * known answers, streaming across arbitrary cuts equal to one-shot EVP encryption, random block ranges,
 * the plaintext size from the tail for every pad length, and strict padding errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "cbc_random.h"
#include "cbc_stream.h"

static void hex_to_bytes(const char *hex, uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned byte;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &byte), 1);
        out[i] = (uint8_t)byte;
    }
}

/* NIST SP 800-38A F.2.5 / F.2.6 (CBC-AES256). */
static const char *const nist_key = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
static const char *const nist_iv = "000102030405060708090a0b0c0d0e0f";
static const char *const nist_plain = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                                      "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
static const char *const nist_cipher = "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
                                       "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";

static uint8_t test_key[32];
static uint8_t test_iv[16];

static void make_key_iv(unsigned seed)
{
    srand(seed);
    for (int i = 0; i < 32; i++)
        test_key[i] = (uint8_t)rand();
    for (int i = 0; i < 16; i++)
        test_iv[i] = (uint8_t)rand();
}

static uint8_t *random_bytes(size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)rand();
    return p;
}

/* Plain EVP with its own padding: the one-shot result streaming must reproduce. */
static uint8_t *evp_oneshot(const uint8_t *plain, size_t len, size_t *out_len)
{
    uint8_t *out = malloc(len + 16);
    assert_non_null(out);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, test_key, test_iv), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, out, &n1, plain, (int)len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, out + n1, &n2), 1);
    EVP_CIPHER_CTX_free(ctx);
    *out_len = (size_t)(n1 + n2);
    return out;
}

/* Streams plain through our encryptor in pieces of the given sizes (cycled; 0 = random 1..99999). */
static uint8_t *stream_encrypt(const uint8_t *plain, size_t len, const size_t *cuts, size_t ncuts, size_t *out_len)
{
    uint8_t *out = malloc(len + 16);
    assert_non_null(out);
    cbc_encryptor *enc = NULL;
    assert_int_equal(cbc_encryptor_new(test_key, test_iv, &enc), CSE_OK);
    size_t in_pos = 0, out_pos = 0, cut_index = 0;
    while (in_pos < len) {
        size_t piece = cuts[cut_index++ % ncuts];
        if (piece == 0)
            piece = 1 + (size_t)rand() % 99999;
        if (piece > len - in_pos)
            piece = len - in_pos;
        uint8_t *scratch = malloc(piece + 15);   /* the documented bound: len + 15 */
        size_t produced = 999;
        assert_int_equal(cbc_encryptor_update(enc, plain + in_pos, piece, scratch, &produced), CSE_OK);
        assert_int_equal(produced % 16, 0);
        assert_true(produced <= piece + 15);
        memcpy(out + out_pos, scratch, produced);
        free(scratch);
        in_pos += piece;
        out_pos += produced;
        assert_int_equal(cbc_encryptor_pending(enc), in_pos % 16);
        assert_int_equal(cbc_encryptor_plain_bytes(enc), in_pos);
        assert_int_equal(cbc_encryptor_cipher_bytes(enc), out_pos);
        assert_int_equal(out_pos, in_pos - in_pos % 16);
    }
    size_t final_len = 0;
    assert_int_equal(cbc_encryptor_final(enc, out + out_pos, &final_len), CSE_OK);
    assert_int_equal(final_len, 16);
    out_pos += final_len;
    assert_int_equal(cbc_encryptor_cipher_bytes(enc), out_pos);
    assert_int_equal(cbc_encryptor_pending(enc), 0);
    /* After final only free() is allowed. */
    size_t produced;
    uint8_t block[16];
    assert_int_equal(cbc_encryptor_update(enc, plain, 0, block, &produced), CSE_ERR_STATE);
    assert_int_equal(cbc_encryptor_final(enc, block, &produced), CSE_ERR_STATE);
    cbc_encryptor_free(enc);
    *out_len = out_pos;
    return out;
}

static void test_nist_cbc_aes256_encrypt(void **state)
{
    (void)state;
    uint8_t plain[64], expected[64], out[96];
    hex_to_bytes(nist_key, test_key, 32);
    hex_to_bytes(nist_iv, test_iv, 16);
    hex_to_bytes(nist_plain, plain, 64);
    hex_to_bytes(nist_cipher, expected, 64);
    cbc_encryptor *enc = NULL;
    size_t n = 0, total = 0;
    assert_int_equal(cbc_encryptor_new(test_key, test_iv, &enc), CSE_OK);
    assert_int_equal(cbc_encryptor_update(enc, plain, 64, out, &n), CSE_OK);
    assert_int_equal(n, 64);
    total = n;
    assert_int_equal(cbc_encryptor_final(enc, out + total, &n), CSE_OK);
    total += n;
    cbc_encryptor_free(enc);
    assert_int_equal(total, 80);
    assert_memory_equal(out, expected, 64);
    /* The pad block: a whole block of 0x10 chained to the last vector block. */
    cbc_decryptor *dec = NULL;
    uint8_t pad_block[16], sixteen[16];
    memset(sixteen, 16, 16);
    assert_int_equal(cbc_decryptor_new(test_key, &dec), CSE_OK);
    assert_int_equal(cbc_decrypt_blocks(dec, out + 48, out + 64, 16, pad_block), CSE_OK);
    assert_memory_equal(pad_block, sixteen, 16);
    cbc_decryptor_free(dec);
}

static void test_nist_cbc_aes256_decrypt(void **state)
{
    (void)state;
    uint8_t expected[64], cipher[64], out[64];
    hex_to_bytes(nist_key, test_key, 32);
    hex_to_bytes(nist_iv, test_iv, 16);
    hex_to_bytes(nist_plain, expected, 64);
    hex_to_bytes(nist_cipher, cipher, 64);
    cbc_decryptor *dec = NULL;
    assert_int_equal(cbc_decryptor_new(test_key, &dec), CSE_OK);
    assert_int_equal(cbc_decrypt_blocks(dec, test_iv, cipher, 64, out), CSE_OK);
    assert_memory_equal(out, expected, 64);
    /* Blocks 2..3 alone, chained to block 1. */
    memset(out, 0, sizeof(out));
    assert_int_equal(cbc_decrypt_blocks(dec, cipher + 16, cipher + 32, 32, out), CSE_OK);
    assert_memory_equal(out, expected + 32, 32);
    /* In place, with prev pointing into the buffer being overwritten. */
    assert_int_equal(cbc_decrypt_blocks(dec, cipher, cipher + 16, 48, cipher + 16), CSE_OK);
    assert_memory_equal(cipher + 16, expected + 16, 48);
    cbc_decryptor_free(dec);
}

static void test_streaming_equals_oneshot(void **state)
{
    (void)state;
    make_key_iv(7);
    const size_t sizes[] = {0, 1, 15, 16, 17, 4095, (1u << 20) + 3};
    const size_t cut_patterns[][3] = {{1, 1, 1}, {7, 7, 7}, {16, 16, 16}, {31, 31, 31}, {0, 0, 0}, {1, 16, 31},
                                      {4096, 5, 65536}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint8_t *plain = random_bytes(sizes[s]);
        size_t ref_len = 0;
        uint8_t *reference = evp_oneshot(plain, sizes[s], &ref_len);
        assert_int_equal(ref_len, cbc_cipher_size(sizes[s]));
        for (size_t c = 0; c < sizeof(cut_patterns) / sizeof(cut_patterns[0]); c++) {
            /* Byte-by-byte over 1 MiB is slow and adds nothing over the small sizes. */
            if (sizes[s] > 5000 && cut_patterns[c][0] == 1 && cut_patterns[c][1] == 1)
                continue;
            size_t out_len = 0;
            uint8_t *out = stream_encrypt(plain, sizes[s], cut_patterns[c], 3, &out_len);
            assert_int_equal(out_len, ref_len);
            assert_memory_equal(out, reference, ref_len);
            free(out);
        }
        free(reference);
        free(plain);
    }
}

static void test_cipher_size(void **state)
{
    (void)state;
    assert_int_equal(cbc_cipher_size(0), 16);
    assert_int_equal(cbc_cipher_size(1), 16);
    assert_int_equal(cbc_cipher_size(15), 16);
    assert_int_equal(cbc_cipher_size(16), 32);
    assert_int_equal(cbc_cipher_size(17), 32);
    assert_int_equal(cbc_cipher_size((uint64_t)5 << 40), ((uint64_t)5 << 40) + 16);
}

static void test_random_access_ranges(void **state)
{
    (void)state;
    make_key_iv(99);
    size_t plain_len = 100000;
    uint8_t *plain = random_bytes(plain_len);
    size_t cipher_len = 0;
    uint8_t *cipher = evp_oneshot(plain, plain_len, &cipher_len);
    uint8_t *padded = malloc(cipher_len);
    memcpy(padded, plain, plain_len);
    memset(padded + plain_len, (int)(cipher_len - plain_len), cipher_len - plain_len);
    size_t blocks = cipher_len / 16;
    cbc_decryptor *dec = NULL;
    assert_int_equal(cbc_decryptor_new(test_key, &dec), CSE_OK);
    uint8_t *out = malloc(cipher_len);
    for (int round = 0; round < 300; round++) {
        size_t first = (size_t)rand() % blocks;
        size_t count = 1 + (size_t)rand() % (blocks - first);
        if (round == 0) {
            first = 0;
            count = blocks;
        } else if (round == 1) {
            first = blocks - 1;
            count = 1;
        }
        const uint8_t *prev = first == 0 ? test_iv : cipher + 16 * (first - 1);
        assert_int_equal(cbc_decrypt_blocks(dec, prev, cipher + 16 * first, 16 * count, out), CSE_OK);
        assert_memory_equal(out, padded + 16 * first, 16 * count);
    }
    /* In place over the whole object. */
    assert_int_equal(cbc_decrypt_blocks(dec, test_iv, cipher, cipher_len, cipher), CSE_OK);
    assert_memory_equal(cipher, padded, cipher_len);
    assert_int_equal(cbc_decrypt_blocks(dec, test_iv, cipher, 0, out), CSE_OK);
    assert_int_equal(cbc_decrypt_blocks(dec, test_iv, cipher, 15, out), CSE_ERR_CIPHERTEXT_LENGTH);
    assert_int_equal(cbc_decrypt_blocks(dec, NULL, cipher, 16, out), CSE_ERR_ARGUMENT);
    cbc_decryptor_free(dec);
    free(out);
    free(padded);
    free(cipher);
    free(plain);
}

static void test_plain_size_every_pad_length(void **state)
{
    (void)state;
    make_key_iv(3);
    cbc_decryptor *dec = NULL;
    assert_int_equal(cbc_decryptor_new(test_key, &dec), CSE_OK);
    for (size_t plain_len = 0; plain_len <= 70; plain_len++) {
        uint8_t *plain = random_bytes(plain_len);
        size_t cipher_len = 0;
        uint8_t *cipher = evp_oneshot(plain, plain_len, &cipher_len);
        size_t tail_len = cipher_len < 32 ? cipher_len : 32;
        uint64_t size = 0;
        assert_int_equal(cbc_plain_size(dec, test_iv, cipher_len, cipher + cipher_len - tail_len, tail_len, &size),
                         CSE_OK);
        assert_int_equal(size, plain_len);
        if (cipher_len == 16) {
            /* A 16-byte object needs the envelope IV: a wrong one corrupts the padding or the size. */
            uint8_t wrong_iv[16];
            memcpy(wrong_iv, test_iv, 16);
            wrong_iv[15] ^= 0x20;
            cse_status st = cbc_plain_size(dec, wrong_iv, 16, cipher, 16, &size);
            assert_true(st == CSE_ERR_BAD_PADDING || size != plain_len);
            assert_int_equal(cbc_plain_size(dec, NULL, 16, cipher, 16, &size), CSE_ERR_ARGUMENT);
        }
        free(cipher);
        free(plain);
    }
    uint8_t tail[32] = {0};
    uint64_t size;
    assert_int_equal(cbc_plain_size(dec, test_iv, 0, tail, 0, &size), CSE_ERR_CIPHERTEXT_LENGTH);
    assert_int_equal(cbc_plain_size(dec, test_iv, 17, tail, 17, &size), CSE_ERR_CIPHERTEXT_LENGTH);
    assert_int_equal(cbc_plain_size(dec, test_iv, 48, tail, 16, &size), CSE_ERR_ARGUMENT);
    cbc_decryptor_free(dec);
}

/* Encrypts two blocks whose second block is `last` verbatim (no padding added) and asks for the size. */
static cse_status plain_size_of_raw_last_block(const uint8_t last[16], uint64_t *size)
{
    uint8_t plain[32], cipher[32];
    memset(plain, 0x41, 16);
    memcpy(plain + 16, last, 16);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, test_key, test_iv), 1);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    assert_int_equal(EVP_EncryptUpdate(ctx, cipher, &n, plain, 32), 1);
    EVP_CIPHER_CTX_free(ctx);
    cbc_decryptor *dec = NULL;
    assert_int_equal(cbc_decryptor_new(test_key, &dec), CSE_OK);
    cse_status st = cbc_plain_size(dec, test_iv, 32, cipher, 32, size);
    cbc_decryptor_free(dec);
    return st;
}

static void test_padding_errors(void **state)
{
    (void)state;
    make_key_iv(5);
    uint8_t block[16];
    unsigned pad;
    uint64_t size;

    memset(block, 0x33, 16);
    block[15] = 0;                                     /* pad 0 */
    assert_int_equal(cbc_check_padding(block, &pad), CSE_ERR_BAD_PADDING);
    assert_int_equal(plain_size_of_raw_last_block(block, &size), CSE_ERR_BAD_PADDING);

    block[15] = 17;                                    /* pad 17 */
    assert_int_equal(cbc_check_padding(block, &pad), CSE_ERR_BAD_PADDING);
    assert_int_equal(plain_size_of_raw_last_block(block, &size), CSE_ERR_BAD_PADDING);

    block[15] = 0xff;
    assert_int_equal(cbc_check_padding(block, &pad), CSE_ERR_BAD_PADDING);

    memset(block, 4, 16);                              /* inconsistent: ... 05 04 04 04 */
    block[12] = 5;
    block[11] = 9;
    assert_int_equal(cbc_check_padding(block, &pad), CSE_ERR_BAD_PADDING);
    assert_int_equal(plain_size_of_raw_last_block(block, &size), CSE_ERR_BAD_PADDING);
    block[12] = 4;                                     /* now valid: 4 bytes of 04 */
    assert_int_equal(cbc_check_padding(block, &pad), CSE_OK);
    assert_int_equal(pad, 4);
    assert_int_equal(plain_size_of_raw_last_block(block, &size), CSE_OK);
    assert_int_equal(size, 28);

    memset(block, 16, 16);
    block[0] = 15;                                     /* first byte of a full pad block differs */
    assert_int_equal(cbc_check_padding(block, &pad), CSE_ERR_BAD_PADDING);
    block[0] = 16;
    assert_int_equal(cbc_check_padding(block, &pad), CSE_OK);
    assert_int_equal(pad, 16);

    memset(block, 0x77, 16);
    block[15] = 1;
    assert_int_equal(cbc_check_padding(block, &pad), CSE_OK);
    assert_int_equal(pad, 1);
}

/* One decryptor shared by several threads, each decrypting its own ranges: the documented contract. */
typedef struct {
    const cbc_decryptor *dec;
    const uint8_t *cipher, *padded;
    size_t blocks;
    unsigned seed;
    int mismatches;
} decrypt_job;

static void *decrypt_worker(void *arg)
{
    decrypt_job *job = arg;
    uint8_t *out = malloc(job->blocks * 16);
    for (int round = 0; round < 200 && out; round++) {
        size_t first = (size_t)rand_r(&job->seed) % job->blocks;
        size_t count = 1 + (size_t)rand_r(&job->seed) % (job->blocks - first);
        const uint8_t *prev = first == 0 ? test_iv : job->cipher + 16 * (first - 1);
        if (cbc_decrypt_blocks(job->dec, prev, job->cipher + 16 * first, 16 * count, out) != CSE_OK ||
            memcmp(out, job->padded + 16 * first, 16 * count) != 0)
            job->mismatches++;
    }
    free(out);
    return NULL;
}

static void test_shared_decryptor_across_threads(void **state)
{
    (void)state;
    make_key_iv(1234);
    size_t plain_len = 64 * 1024 + 9;
    uint8_t *plain = random_bytes(plain_len);
    size_t cipher_len = 0;
    uint8_t *cipher = evp_oneshot(plain, plain_len, &cipher_len);
    uint8_t *padded = malloc(cipher_len);
    memcpy(padded, plain, plain_len);
    memset(padded + plain_len, (int)(cipher_len - plain_len), cipher_len - plain_len);
    cbc_decryptor *dec = NULL;
    assert_int_equal(cbc_decryptor_new(test_key, &dec), CSE_OK);
    pthread_t threads[4];
    decrypt_job jobs[4];
    for (unsigned i = 0; i < 4; i++) {
        jobs[i] = (decrypt_job){dec, cipher, padded, cipher_len / 16, i + 1, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, decrypt_worker, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(jobs[i].mismatches, 0);
    }
    cbc_decryptor_free(dec);
    free(padded);
    free(cipher);
    free(plain);
}

static void test_argument_errors(void **state)
{
    (void)state;
    cbc_encryptor *enc = NULL;
    cbc_decryptor *dec = NULL;
    assert_int_equal(cbc_encryptor_new(NULL, test_iv, &enc), CSE_ERR_ARGUMENT);
    assert_int_equal(cbc_encryptor_new(test_key, NULL, &enc), CSE_ERR_ARGUMENT);
    assert_int_equal(cbc_decryptor_new(NULL, &dec), CSE_ERR_ARGUMENT);
    assert_int_equal(cbc_encryptor_new(test_key, test_iv, &enc), CSE_OK);
    size_t n;
    assert_int_equal(cbc_encryptor_update(enc, NULL, 5, (uint8_t[32]){0}, &n), CSE_ERR_ARGUMENT);
    cbc_encryptor_free(enc);
    cbc_encryptor_free(NULL);
    cbc_decryptor_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist_cbc_aes256_encrypt),
        cmocka_unit_test(test_nist_cbc_aes256_decrypt),
        cmocka_unit_test(test_streaming_equals_oneshot),
        cmocka_unit_test(test_cipher_size),
        cmocka_unit_test(test_random_access_ranges),
        cmocka_unit_test(test_plain_size_every_pad_length),
        cmocka_unit_test(test_padding_errors),
        cmocka_unit_test(test_shared_decryptor_across_threads),
        cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
