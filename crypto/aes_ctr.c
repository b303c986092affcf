/* AES-256-CTR from any byte offset (see aes_ctr.h): the counter block is advanced by offset / 16 and the
 * first offset % 16 keystream bytes are discarded, because CTR keeps its position within a block. */
#include "aes_ctr.h"

#include <openssl/evp.h>
#include <string.h>

#include "evp_util.h"
#include "secure_mem.h"

/* counter += blocks, big-endian, carrying through all 16 bytes. */
static void counter_add(uint8_t counter[16], uint64_t blocks)
{
    unsigned carry = 0;
    for (int i = 15; i >= 0; i--) {
        unsigned sum = counter[i] + (unsigned)(blocks & 0xff) + carry;
        counter[i] = (uint8_t)sum;
        carry = sum >> 8;
        blocks >>= 8;
    }
}

cse_status aes256_ctr_at_offset(const uint8_t key[32], const uint8_t first_counter[16], uint64_t offset,
                                const uint8_t *in, size_t len, uint8_t *out)
{
    if (key == NULL || first_counter == NULL || (len > 0 && (in == NULL || out == NULL)))
        return CSE_ERR_ARGUMENT;
    if (len == 0)
        return CSE_OK;
    uint8_t counter[16];
    memcpy(counter, first_counter, sizeof(counter));
    counter_add(counter, offset / 16);

    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return CSE_ERR_NO_MEMORY;
    cse_status status = CSE_ERR_OPENSSL;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, key, counter) == 1) {
        uint8_t zeros[16] = {0}, discard[16];
        size_t skip = (size_t)(offset % 16);
        status = evp_update_exact(ctx, zeros, skip, discard);
        if (status == CSE_OK)
            status = evp_update_exact(ctx, in, len, out);
        secure_wipe(discard, sizeof(discard));     /* raw keystream */
    }
    EVP_CIPHER_CTX_free(ctx);
    return status;
}
