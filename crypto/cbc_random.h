/* Random-access AES-256-CBC decryption. Plaintext block i = AES-dec(C[i]) xor C[i-1], with C[-1] the
 * envelope IV, so any block range decrypts on its own given the ciphertext block before it. Decryption
 * parallelises; the read path uses this for prefetch windows and for random reads. */
#ifndef S3CSEFS_CBC_RANDOM_H
#define S3CSEFS_CBC_RANDOM_H

#include <stddef.h>
#include <stdint.h>
#include "cse_status.h"
#include "cbc_stream.h"

typedef struct cbc_decryptor cbc_decryptor;   /* holds the key schedule; thread-safe for concurrent use */

cse_status cbc_decryptor_new(const uint8_t key[CSE_AES256_KEY], cbc_decryptor **out);
void cbc_decryptor_free(cbc_decryptor *dec);
/* Decrypts len bytes (a multiple of 16) of ciphertext whose preceding ciphertext block is prev (the IV
 * for block 0). out may equal cipher (in place) but must not partly overlap. No padding is removed. */
cse_status cbc_decrypt_blocks(const cbc_decryptor *dec, const uint8_t prev[CSE_AES_BLOCK],
                              const uint8_t *cipher, size_t len, uint8_t *out);
/* Strict PKCS#7 check of a decrypted final block: pad byte 1..16 and all pad bytes equal.
 * Returns CSE_OK with *pad_len, or CSE_ERR_BAD_PADDING. */
cse_status cbc_check_padding(const uint8_t last_plain_block[CSE_AES_BLOCK], unsigned *pad_len);
/* Plaintext size of a CBC object from its stored size and its last ciphertext bytes.
 * tail holds the last min(32, stored_size) bytes of the object; when stored_size == 16, iv is the
 * previous block. Errors: CSE_ERR_CIPHERTEXT_LENGTH (stored size 0 or not a multiple of 16),
 * CSE_ERR_BAD_PADDING. */
cse_status cbc_plain_size(const cbc_decryptor *dec, const uint8_t iv[CSE_AES_BLOCK], uint64_t stored_size,
                          const uint8_t *tail, size_t tail_len, uint64_t *plain_size);

#endif
