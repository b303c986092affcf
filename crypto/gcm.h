/* AES-256-GCM decryption for objects in the AES/GCM/NoPadding format (12-byte IV, 16-byte tag appended
 * to the ciphertext). A whole-object read verifies the tag; a ranged read is plain AES-CTR from counter
 * J0+1+offset/16 (J0 = IV || 00000001) and is NOT authenticated (documented in docs/format.md). */
#ifndef S3CSEFS_GCM_H
#define S3CSEFS_GCM_H

#include <stddef.h>
#include <stdint.h>
#include "cse_status.h"

#define CSE_GCM_IV 12
#define CSE_GCM_TAG 16

typedef struct gcm_decryptor gcm_decryptor;

/* Sequential, authenticated: feed the ciphertext (without the tag) in order, then final() with the tag. */
cse_status gcm_decryptor_new(const uint8_t key[32], const uint8_t iv[CSE_GCM_IV], gcm_decryptor **out);
cse_status gcm_decryptor_update(gcm_decryptor *dec, const uint8_t *in, size_t len, uint8_t *out);
cse_status gcm_decryptor_final(gcm_decryptor *dec, const uint8_t tag[CSE_GCM_TAG]);   /* CSE_ERR_GCM_TAG */
void gcm_decryptor_free(gcm_decryptor *dec);

/* Unauthenticated ranged decryption: in holds ciphertext starting at plaintext offset `offset` (any
 * offset, not only block-aligned); writes len bytes to out (may equal in). */
cse_status gcm_decrypt_range(const uint8_t key[32], const uint8_t iv[CSE_GCM_IV], uint64_t offset,
                             const uint8_t *in, size_t len, uint8_t *out);
/* The GCM encryptor exists for tests and tools that need GCM objects (the product never writes GCM). */
cse_status gcm_encrypt_oneshot(const uint8_t key[32], const uint8_t iv[CSE_GCM_IV], const uint8_t *in,
                               size_t len, uint8_t *out, uint8_t tag[CSE_GCM_TAG]);

#endif
