/* AES-256-CTR over the local spool file with a key and nonce drawn fresh per spool. The counter block
 * is nonce(8) || big-endian block index, so any byte offset is addressable without state and the same
 * call encrypts and decrypts. */
#include "spool_cipher.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "secure_mem.h"

#define SPOOL_KEY_LEN 32
#define SPOOL_NONCE_LEN 8
#define EVP_SLICE (1u << 30)

struct spool_cipher {
    secure_buf *key;
    uint8_t nonce[SPOOL_NONCE_LEN];
};

cse_status spool_cipher_new(spool_cipher **out)
{
    if (out == NULL)
        return CSE_ERR_ARGUMENT;
    *out = NULL;
    spool_cipher *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return CSE_ERR_NO_MEMORY;
    sc->key = secure_buf_new(SPOOL_KEY_LEN);
    if (sc->key == NULL) {
        free(sc);
        return CSE_ERR_NO_MEMORY;
    }
    if (RAND_bytes(sc->key->bytes, SPOOL_KEY_LEN) != 1 || RAND_bytes(sc->nonce, SPOOL_NONCE_LEN) != 1) {
        spool_cipher_free(sc);
        return CSE_ERR_OPENSSL;
    }
    *out = sc;
    return CSE_OK;
}

cse_status spool_cipher_apply(const spool_cipher *sc, uint64_t offset, const uint8_t *in, size_t len, uint8_t *out)
{
    if (sc == NULL || (len > 0 && (in == NULL || out == NULL)))
        return CSE_ERR_ARGUMENT;
    if (len == 0)
        return CSE_OK;
    uint8_t counter_block[16];
    uint64_t block = offset / 16;
    memcpy(counter_block, sc->nonce, SPOOL_NONCE_LEN);
    for (int i = 0; i < 8; i++)
        counter_block[8 + i] = (uint8_t)(block >> (56 - 8 * i));

    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return CSE_ERR_NO_MEMORY;
    cse_status status = CSE_OK;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, sc->key->bytes, counter_block) != 1) {
        status = CSE_ERR_OPENSSL;
        goto done;
    }
    size_t skip = (size_t)(offset % 16);
    if (skip > 0) {
        uint8_t zeros[16] = {0}, discard[16];
        int produced = 0;
        if (EVP_EncryptUpdate(ctx, discard, &produced, zeros, (int)skip) != 1) {
            status = CSE_ERR_OPENSSL;
            goto done;
        }
    }
    while (len > 0) {
        size_t slice = len < EVP_SLICE ? len : EVP_SLICE;
        int produced = 0;
        if (EVP_EncryptUpdate(ctx, out, &produced, in, (int)slice) != 1 || (size_t)produced != slice) {
            status = CSE_ERR_OPENSSL;
            goto done;
        }
        in += slice;
        out += slice;
        len -= slice;
    }
done:
    EVP_CIPHER_CTX_free(ctx);
    return status;
}

void spool_cipher_free(spool_cipher *sc)
{
    if (sc == NULL)
        return;
    secure_buf_free(sc->key);
    OPENSSL_cleanse(sc->nonce, sizeof(sc->nonce));
    free(sc);
}
