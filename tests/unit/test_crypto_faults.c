/* What the stream objects do when OpenSSL fails mid-stream. A failure cannot be provoked through the
 * public API, so this program interposes EVP's update/final calls (the static crypto library binds to
 * the executable's definitions first) and makes a chosen call fail. After any failure an encryptor or
 * decryptor must refuse further use (CSE_ERR_STATE) instead of continuing a stream that no longer
 * matches its input, and its counters must not count the failed call. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "cbc_stream.h"
#include "gcm.h"

/* Remaining successful outermost EVP calls before one fails; negative = never fail. */
static int calls_until_failure = -1;
/* OpenSSL's EVP_CipherUpdate calls EVP_EncryptUpdate itself: only the outermost call counts. */
static __thread int interposer_depth;

static int should_fail(void)
{
    if (interposer_depth > 0 || calls_until_failure < 0)
        return 0;
    if (calls_until_failure == 0) {
        calls_until_failure = -1;
        return 1;
    }
    calls_until_failure--;
    return 0;
}

typedef int (*update_fn)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int);
typedef int (*final_fn)(EVP_CIPHER_CTX *, unsigned char *, int *);

static int forward_update(const char *name, EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
                          const unsigned char *in, int inl)
{
    if (should_fail())
        return 0;
    update_fn real = (update_fn)dlsym(RTLD_NEXT, name);
    if (real == NULL)
        return 0;
    interposer_depth++;
    int result = real(ctx, out, outl, in, inl);
    interposer_depth--;
    return result;
}

static int forward_final(const char *name, EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl)
{
    if (should_fail())
        return 0;
    final_fn real = (final_fn)dlsym(RTLD_NEXT, name);
    if (real == NULL)
        return 0;
    interposer_depth++;
    int result = real(ctx, out, outl);
    interposer_depth--;
    return result;
}

int EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *in, int inl)
{
    return forward_update("EVP_CipherUpdate", ctx, out, outl, in, inl);
}

int EVP_EncryptUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *in, int inl)
{
    return forward_update("EVP_EncryptUpdate", ctx, out, outl, in, inl);
}

int EVP_DecryptUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *in, int inl)
{
    return forward_update("EVP_DecryptUpdate", ctx, out, outl, in, inl);
}

int EVP_EncryptFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl)
{
    return forward_final("EVP_EncryptFinal_ex", ctx, out, outl);
}

static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t iv[16] = {16, 15, 14, 13, 12, 11, 10, 9};

static int reset_injection(void **state)
{
    (void)state;
    calls_until_failure = -1;
    return 0;
}

/* The interposer itself must be transparent when not armed, or the tests below prove nothing. */
static void test_interposer_transparent_and_effective(void **state)
{
    (void)state;
    cbc_encryptor *enc = NULL;
    assert_int_equal(cbc_encryptor_new(key, iv, &enc), CSE_OK);
    uint8_t plain[64] = {0}, out[80];
    size_t n = 0;
    assert_int_equal(cbc_encryptor_update(enc, plain, sizeof(plain), out, &n), CSE_OK);
    assert_int_equal(n, 64);
    /* Compare with OpenSSL's one-shot CBC (through the interposer, unarmed). */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t expected[80];
    int produced = 0;
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(ctx, expected, &produced, plain, sizeof(plain)), 1);
    EVP_CIPHER_CTX_free(ctx);
    assert_int_equal(produced, 64);
    assert_memory_equal(out, expected, 64);
    calls_until_failure = 0;
    assert_int_equal(cbc_encryptor_update(enc, plain, 16, out, &n), CSE_ERR_OPENSSL);
    cbc_encryptor_free(enc);
}

static void test_cbc_encryptor_poisoned_after_update_failure(void **state)
{
    (void)state;
    cbc_encryptor *enc = NULL;
    assert_int_equal(cbc_encryptor_new(key, iv, &enc), CSE_OK);
    uint8_t plain[100], out[128];
    memset(plain, 'p', sizeof(plain));
    size_t n = 0;
    assert_int_equal(cbc_encryptor_update(enc, plain, 100, out, &n), CSE_OK);
    calls_until_failure = 0;
    n = 12345;
    assert_int_equal(cbc_encryptor_update(enc, plain, 100, out, &n), CSE_ERR_OPENSSL);
    /* The counters describe what was really emitted before the failure. */
    assert_int_equal(cbc_encryptor_plain_bytes(enc), 100);
    assert_int_equal(cbc_encryptor_cipher_bytes(enc), 96);
    /* Nothing may continue the broken stream. */
    assert_int_equal(cbc_encryptor_update(enc, plain, 100, out, &n), CSE_ERR_STATE);
    uint8_t last[16];
    assert_int_equal(cbc_encryptor_final(enc, last, &n), CSE_ERR_STATE);
    assert_int_equal(cbc_encryptor_pending(enc), 0);
    cbc_encryptor_free(enc);
}

static void test_cbc_encryptor_poisoned_after_final_failure(void **state)
{
    (void)state;
    cbc_encryptor *enc = NULL;
    assert_int_equal(cbc_encryptor_new(key, iv, &enc), CSE_OK);
    uint8_t plain[20] = {0}, out[48], last[16];
    size_t n = 0;
    assert_int_equal(cbc_encryptor_update(enc, plain, sizeof(plain), out, &n), CSE_OK);
    calls_until_failure = 0;
    assert_int_equal(cbc_encryptor_final(enc, last, &n), CSE_ERR_OPENSSL);
    assert_int_equal(cbc_encryptor_final(enc, last, &n), CSE_ERR_STATE);
    assert_int_equal(cbc_encryptor_update(enc, plain, sizeof(plain), out, &n), CSE_ERR_STATE);
    cbc_encryptor_free(enc);
}

static void test_gcm_decryptor_poisoned_after_update_failure(void **state)
{
    (void)state;
    gcm_decryptor *dec = NULL;
    assert_int_equal(gcm_decryptor_new(key, iv, &dec), CSE_OK);
    uint8_t cipher[64] = {0}, out[64], tag[16] = {0};
    assert_int_equal(gcm_decryptor_update(dec, cipher, 32, out), CSE_OK);
    calls_until_failure = 0;
    assert_int_equal(gcm_decryptor_update(dec, cipher + 32, 32, out), CSE_ERR_OPENSSL);
    assert_int_equal(gcm_decryptor_update(dec, cipher + 32, 32, out), CSE_ERR_STATE);
    assert_int_equal(gcm_decryptor_final(dec, tag), CSE_ERR_STATE);
    gcm_decryptor_free(dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_interposer_transparent_and_effective, reset_injection),
        cmocka_unit_test_teardown(test_cbc_encryptor_poisoned_after_update_failure, reset_injection),
        cmocka_unit_test_teardown(test_cbc_encryptor_poisoned_after_final_failure, reset_injection),
        cmocka_unit_test_teardown(test_gcm_decryptor_poisoned_after_update_failure, reset_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
