/* EVP cipher updates over buffers of any size. OpenSSL's EVP_CipherUpdate takes int lengths, so every
 * caller that may see more than INT_MAX bytes must feed it in slices; this is the one place that does. */
#ifndef S3CSEFS_EVP_UTIL_H
#define S3CSEFS_EVP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "cse_status.h"

/* Bytes per EVP call: below INT_MAX and a multiple of the AES block, so block modes never see a slice
 * boundary inside a block they would otherwise have emitted. */
#define EVP_UTIL_SLICE ((size_t)1 << 30)

/* Runs len bytes from in through ctx (already initialised for encryption or decryption) into out and
 * adds the bytes written to *out_len (which the caller initialises). A block mode with padding may write
 * up to one block more or less than len, as EVP_CipherUpdate does (out must have room for len + 15
 * bytes then). CSE_ERR_OPENSSL if any slice fails:
 * the context is then in an undefined state and must not be used for further data. */
cse_status evp_update_sliced(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len);
/* Same for modes that write exactly as many bytes as they read (CTR, GCM, CBC without padding on whole
 * blocks): any other count is CSE_ERR_OPENSSL. */
cse_status evp_update_exact(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len, uint8_t *out);

#endif
