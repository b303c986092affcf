/* Streaming AES-256-CBC + PKCS#7 encryptor. OpenSSL's EVP layer already keeps the 0..15 byte partial
 * block between calls and pads in final(), so every update encrypts straight from the caller's buffer
 * into the output (AES-NI, no staging copy). */
#include "cbc_stream.h"

#include <stdlib.h>
#include <openssl/evp.h>

#include "evp_util.h"

struct cbc_encryptor {
    EVP_CIPHER_CTX *ctx;
    uint64_t plain_bytes;
    uint64_t cipher_bytes;
    int finished;
};

cse_status cbc_encryptor_new(const uint8_t key[CSE_AES256_KEY], const uint8_t iv[CSE_AES_BLOCK],
                             cbc_encryptor **out)
{
    if (key == NULL || iv == NULL || out == NULL)
        return CSE_ERR_ARGUMENT;
    *out = NULL;
    cbc_encryptor *enc = calloc(1, sizeof(*enc));
    if (enc == NULL)
        return CSE_ERR_NO_MEMORY;
    enc->ctx = EVP_CIPHER_CTX_new();
    if (enc->ctx == NULL) {
        free(enc);
        return CSE_ERR_NO_MEMORY;
    }
    if (EVP_EncryptInit_ex(enc->ctx, EVP_aes_256_cbc(), NULL, key, iv) != 1 ||
        EVP_CIPHER_CTX_set_padding(enc->ctx, 1) != 1) {
        cbc_encryptor_free(enc);
        return CSE_ERR_OPENSSL;
    }
    *out = enc;
    return CSE_OK;
}

cse_status cbc_encryptor_update(cbc_encryptor *enc, const uint8_t *in, size_t len, uint8_t *out,
                                size_t *out_len)
{
    if (enc == NULL || out_len == NULL || (len > 0 && (in == NULL || out == NULL)))
        return CSE_ERR_ARGUMENT;
    if (enc->finished)
        return CSE_ERR_STATE;
    size_t written = 0;
    cse_status status = evp_update_sliced(enc->ctx, in, len, out, &written);
    if (status != CSE_OK) {
        /* Part of the input may have been consumed: the stream can no longer match any plaintext, so
         * refuse everything after this instead of emitting a silently corrupt object. */
        enc->finished = 1;
        return status;
    }
    enc->plain_bytes += len;
    enc->cipher_bytes += written;
    *out_len = written;
    return CSE_OK;
}

cse_status cbc_encryptor_final(cbc_encryptor *enc, uint8_t out[CSE_AES_BLOCK], size_t *out_len)
{
    if (enc == NULL || out == NULL || out_len == NULL)
        return CSE_ERR_ARGUMENT;
    if (enc->finished)
        return CSE_ERR_STATE;
    int produced = 0;
    enc->finished = 1;                 /* success or not, final is the last call */
    if (EVP_EncryptFinal_ex(enc->ctx, out, &produced) != 1 || produced != CSE_AES_BLOCK)
        return CSE_ERR_OPENSSL;
    enc->cipher_bytes += CSE_AES_BLOCK;
    *out_len = CSE_AES_BLOCK;
    return CSE_OK;
}

size_t cbc_encryptor_pending(const cbc_encryptor *enc)
{
    if (enc == NULL || enc->finished)
        return 0;
    return (size_t)(enc->plain_bytes - enc->cipher_bytes);
}

uint64_t cbc_encryptor_plain_bytes(const cbc_encryptor *enc)
{
    return enc ? enc->plain_bytes : 0;
}

uint64_t cbc_encryptor_cipher_bytes(const cbc_encryptor *enc)
{
    return enc ? enc->cipher_bytes : 0;
}

uint64_t cbc_cipher_size(uint64_t plain_len)
{
    return plain_len + CSE_AES_BLOCK - plain_len % CSE_AES_BLOCK;
}

void cbc_encryptor_free(cbc_encryptor *enc)
{
    if (enc == NULL)
        return;
    EVP_CIPHER_CTX_free(enc->ctx);     /* cleanses the key schedule */
    free(enc);
}
