/* AES-256-GCM for AES/GCM/NoPadding objects: authenticated sequential decryption, unauthenticated
 * ranged decryption (GCM's keystream is AES-CTR with a 32-bit block counter starting at 2 for the first
 * plaintext block when the IV is 12 bytes), and a one-shot encryptor for tests and tools. */
#include "gcm.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "aes_ctr.h"
#include "evp_util.h"

/* With a 96-bit IV the 32-bit counter runs from 2 to 2^32 - 1: at most 2^32 - 2 blocks of plaintext. */
#define GCM_MAX_PLAIN_BYTES ((((uint64_t)1 << 32) - 2) * 16)

struct gcm_decryptor {
    EVP_CIPHER_CTX *ctx;
    uint64_t processed;
    int finished;
};

cse_status gcm_decryptor_new(const uint8_t key[32], const uint8_t iv[CSE_GCM_IV], gcm_decryptor **out)
{
    if (key == NULL || iv == NULL || out == NULL)
        return CSE_ERR_ARGUMENT;
    *out = NULL;
    gcm_decryptor *dec = calloc(1, sizeof(*dec));
    if (dec == NULL)
        return CSE_ERR_NO_MEMORY;
    dec->ctx = EVP_CIPHER_CTX_new();
    if (dec->ctx == NULL) {
        free(dec);
        return CSE_ERR_NO_MEMORY;
    }
    if (EVP_DecryptInit_ex(dec->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(dec->ctx, EVP_CTRL_GCM_SET_IVLEN, CSE_GCM_IV, NULL) != 1 ||
        EVP_DecryptInit_ex(dec->ctx, NULL, NULL, key, iv) != 1) {
        gcm_decryptor_free(dec);
        return CSE_ERR_OPENSSL;
    }
    *out = dec;
    return CSE_OK;
}

cse_status gcm_decryptor_update(gcm_decryptor *dec, const uint8_t *in, size_t len, uint8_t *out)
{
    if (dec == NULL || (len > 0 && (in == NULL || out == NULL)))
        return CSE_ERR_ARGUMENT;
    if (dec->finished)
        return CSE_ERR_STATE;
    if (len > GCM_MAX_PLAIN_BYTES - dec->processed)
        return CSE_ERR_CIPHERTEXT_LENGTH;
    cse_status status = evp_update_exact(dec->ctx, in, len, out);
    if (status != CSE_OK) {
        dec->finished = 1;           /* OpenSSL's state is unknown now: refuse further data */
        return status;
    }
    dec->processed += len;
    return CSE_OK;
}

cse_status gcm_decryptor_final(gcm_decryptor *dec, const uint8_t tag[CSE_GCM_TAG])
{
    if (dec == NULL || tag == NULL)
        return CSE_ERR_ARGUMENT;
    if (dec->finished)
        return CSE_ERR_STATE;
    dec->finished = 1;
    uint8_t tag_copy[CSE_GCM_TAG];
    memcpy(tag_copy, tag, sizeof(tag_copy));      /* the ctrl takes a non-const pointer */
    if (EVP_CIPHER_CTX_ctrl(dec->ctx, EVP_CTRL_GCM_SET_TAG, CSE_GCM_TAG, tag_copy) != 1)
        return CSE_ERR_OPENSSL;
    uint8_t unused[16];
    int produced = 0;
    if (EVP_DecryptFinal_ex(dec->ctx, unused, &produced) != 1)
        return CSE_ERR_GCM_TAG;
    return CSE_OK;
}

void gcm_decryptor_free(gcm_decryptor *dec)
{
    if (dec == NULL)
        return;
    EVP_CIPHER_CTX_free(dec->ctx);
    free(dec);
}

cse_status gcm_decrypt_range(const uint8_t key[32], const uint8_t iv[CSE_GCM_IV], uint64_t offset,
                             const uint8_t *in, size_t len, uint8_t *out)
{
    if (key == NULL || iv == NULL || (len > 0 && (in == NULL || out == NULL)))
        return CSE_ERR_ARGUMENT;
    /* Beyond this the 32-bit GCM counter would wrap where 128-bit CTR carries: no valid object has it. */
    if (offset > GCM_MAX_PLAIN_BYTES || len > GCM_MAX_PLAIN_BYTES - offset)
        return CSE_ERR_ARGUMENT;
    if (len == 0)
        return CSE_OK;
    /* J0 = IV || 00000001; the first plaintext block uses J0 + 1. The bound above keeps the low 32 bits
     * from wrapping, so 128-bit CTR arithmetic gives the same counters as GCM's 32-bit increment. */
    uint8_t first_counter[16];
    memcpy(first_counter, iv, CSE_GCM_IV);
    first_counter[12] = 0;
    first_counter[13] = 0;
    first_counter[14] = 0;
    first_counter[15] = 2;
    return aes256_ctr_at_offset(key, first_counter, offset, in, len, out);
}

cse_status gcm_encrypt_oneshot(const uint8_t key[32], const uint8_t iv[CSE_GCM_IV], const uint8_t *in, size_t len,
                               uint8_t *out, uint8_t tag[CSE_GCM_TAG])
{
    if (key == NULL || iv == NULL || tag == NULL || (len > 0 && (in == NULL || out == NULL)))
        return CSE_ERR_ARGUMENT;
    if (len > GCM_MAX_PLAIN_BYTES)
        return CSE_ERR_ARGUMENT;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return CSE_ERR_NO_MEMORY;
    cse_status status = CSE_OK;
    int produced = 0;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CSE_GCM_IV, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv) != 1) {
        status = CSE_ERR_OPENSSL;
        goto done;
    }
    if ((status = evp_update_exact(ctx, in, len, out)) != CSE_OK)
        goto done;
    uint8_t unused[16];
    if (EVP_EncryptFinal_ex(ctx, unused, &produced) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CSE_GCM_TAG, tag) != 1)
        status = CSE_ERR_OPENSSL;
done:
    EVP_CIPHER_CTX_free(ctx);
    return status;
}
