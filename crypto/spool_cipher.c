/* AES-256-CTR over the local spool file with a key and nonce drawn fresh per spool. The counter block
 * is nonce(8) || big-endian block index, so any byte offset is addressable without state and the same
 * call encrypts and decrypts. */
#include "spool_cipher.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "aes_ctr.h"
#include "secure_mem.h"

#define SPOOL_KEY_LEN 32
#define SPOOL_NONCE_LEN 8

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
    uint8_t first_counter[16] = {0};      /* nonce || block index 0 */
    memcpy(first_counter, sc->nonce, SPOOL_NONCE_LEN);
    return aes256_ctr_at_offset(sc->key->bytes, first_counter, offset, in, len, out);
}

void spool_cipher_free(spool_cipher *sc)
{
    if (sc == NULL)
        return;
    secure_buf_free(sc->key);
    OPENSSL_cleanse(sc->nonce, sizeof(sc->nonce));
    free(sc);
}
