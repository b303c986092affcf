/* AES-256-GCM records for the local spool (see spool_cipher.h). The key proper stays in the locked
 * secure_buf; the EVP context that holds its expansion in ordinary heap memory lives only from the first
 * record of a spool call to spool_cipher_release at its end (EVP_CIPHER_CTX_free wipes it). */
#include "spool_cipher.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "evp_util.h"
#include "secure_mem.h"

#define SPOOL_KEY_LEN 32
#define SPOOL_IV_LEN 12
#define SPOOL_TAG_LEN 16
#define HDR_GEN 0
#define HDR_LEN 8
#define HDR_RESERVED 12
#define HDR_TAG 16

struct spool_cipher {
    secure_buf *key;
    uint64_t generation;        /* last generation sealed; 0 = none yet */
    EVP_CIPHER_CTX *ctx;        /* keyed GCM context between first use and spool_cipher_release */
};

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

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
    if (RAND_bytes(sc->key->bytes, SPOOL_KEY_LEN) != 1) {
        spool_cipher_free(sc);
        return CSE_ERR_OPENSSL;
    }
    *out = sc;
    return CSE_OK;
}

/* IV = 4 zero bytes || generation; AAD = index || length, so the tag binds the record to its place. */
static void iv_and_aad(const uint8_t header[SPOOL_RECORD_HEADER], uint64_t index, uint8_t iv[SPOOL_IV_LEN],
                       uint8_t aad[12])
{
    memset(iv, 0, 4);
    memcpy(iv + 4, header + HDR_GEN, 8);
    put_be(aad, index, 8);
    memcpy(aad + 8, header + HDR_LEN, 4);
}

/* The keyed context for a run of records, created on first use and kept until spool_cipher_release:
 * keying (AES key expansion, GHASH table) costs as much as sealing a few KiB, so it is done once per
 * spool call rather than once per record, while the expanded key still lives only for that call. */
static EVP_CIPHER_CTX *keyed_ctx(spool_cipher *sc)
{
    if (sc->ctx != NULL)
        return sc->ctx;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, 1) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SPOOL_IV_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, sc->key->bytes, NULL, 1) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    sc->ctx = ctx;
    return ctx;
}

/* One GCM pass over a record: encrypt (computing the tag into header) or decrypt (checking it). A
 * failure drops the keyed context, whose state OpenSSL then leaves undefined. */
static cse_status gcm_record(spool_cipher *sc, int encrypt, uint64_t index, uint8_t header[SPOOL_RECORD_HEADER],
                             const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t iv[SPOOL_IV_LEN], aad[12];
    iv_and_aad(header, index, iv, aad);
    EVP_CIPHER_CTX *ctx = keyed_ctx(sc);
    if (ctx == NULL)
        return CSE_ERR_OPENSSL;
    cse_status status = CSE_ERR_OPENSSL;
    int n = 0;
    /* Only the IV and the direction change: the key schedule is kept. */
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, encrypt) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, aad, (int)sizeof(aad)) != 1)
        goto done;
    if ((status = evp_update_exact(ctx, in, len, out)) != CSE_OK)
        goto done;
    status = CSE_ERR_OPENSSL;
    if (encrypt) {
        if (EVP_CipherFinal_ex(ctx, NULL, &n) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SPOOL_TAG_LEN, header + HDR_TAG) == 1)
            status = CSE_OK;
    } else {
        uint8_t tag[SPOOL_TAG_LEN];
        memcpy(tag, header + HDR_TAG, sizeof(tag));    /* SET_TAG takes a non-const pointer */
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SPOOL_TAG_LEN, tag) == 1)
            status = EVP_CipherFinal_ex(ctx, NULL, &n) == 1 ? CSE_OK : CSE_ERR_GCM_TAG;
    }
done:
    if (status != CSE_OK && status != CSE_ERR_GCM_TAG)
        spool_cipher_release(sc);
    return status;
}

void spool_cipher_release(spool_cipher *sc)
{
    if (sc != NULL && sc->ctx != NULL) {
        EVP_CIPHER_CTX_free(sc->ctx);      /* wipes the expanded key */
        sc->ctx = NULL;
    }
}

cse_status spool_cipher_seal(spool_cipher *sc, uint64_t index, const uint8_t *in, size_t len,
                             uint8_t header[SPOOL_RECORD_HEADER], uint8_t *out)
{
    if (sc == NULL || header == NULL || in == NULL || out == NULL || len == 0 || len > SPOOL_RECORD_MAX_LEN)
        return CSE_ERR_ARGUMENT;
    if (sc->generation == UINT64_MAX)
        return CSE_ERR_STATE;
    /* Taken before encrypting and never handed out again, even if this seal fails: a failed seal may
     * have written ciphertext under it. */
    uint64_t generation = ++sc->generation;
    memset(header, 0, SPOOL_RECORD_HEADER);
    put_be(header + HDR_GEN, generation, 8);
    put_be(header + HDR_LEN, len, 4);
    cse_status status = gcm_record(sc, 1, index, header, in, len, out);
    if (status != CSE_OK)
        memset(header, 0, SPOOL_RECORD_HEADER);
    return status;
}

cse_status spool_record_length(const uint8_t header[SPOOL_RECORD_HEADER], size_t *len)
{
    if (header == NULL || len == NULL)
        return CSE_ERR_ARGUMENT;
    *len = 0;
    static const uint8_t zero[SPOOL_RECORD_HEADER];
    if (memcmp(header, zero, SPOOL_RECORD_HEADER) == 0)
        return CSE_OK;
    uint64_t generation = get_be(header + HDR_GEN, 8);
    uint64_t length = get_be(header + HDR_LEN, 4);
    if (generation == 0 || length == 0 || length > SPOOL_RECORD_MAX_LEN || get_be(header + HDR_RESERVED, 4) != 0)
        return CSE_ERR_CIPHERTEXT_LENGTH;
    *len = (size_t)length;
    return CSE_OK;
}

cse_status spool_cipher_open(spool_cipher *sc, uint64_t index, const uint8_t header[SPOOL_RECORD_HEADER],
                             const uint8_t *in, size_t len, uint8_t *out)
{
    if (sc == NULL || header == NULL || in == NULL || out == NULL)
        return CSE_ERR_ARGUMENT;
    size_t declared;
    cse_status status = spool_record_length(header, &declared);
    if (status != CSE_OK)
        return status;
    if (declared == 0 || declared != len)
        return CSE_ERR_ARGUMENT;
    uint8_t hdr[SPOOL_RECORD_HEADER];
    memcpy(hdr, header, sizeof(hdr));
    return gcm_record(sc, 0, index, hdr, in, len, out);
}

void spool_cipher_free(spool_cipher *sc)
{
    if (sc == NULL)
        return;
    spool_cipher_release(sc);
    secure_buf_free(sc->key);
    free(sc);
}
