/* Streaming AES-256-CBC encryption with PKCS#7 padding. One encryptor is one object: its chaining state
 * carries across update() calls of any size, so a multipart upload is one continuous CBC stream and the
 * object is byte-identical to a one-shot encryption of the whole plaintext. */
#ifndef S3CSEFS_CBC_STREAM_H
#define S3CSEFS_CBC_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "cse_status.h"

#define CSE_AES_BLOCK 16
#define CSE_AES256_KEY 32

typedef struct cbc_encryptor cbc_encryptor;

cse_status cbc_encryptor_new(const uint8_t key[CSE_AES256_KEY], const uint8_t iv[CSE_AES_BLOCK],
                             cbc_encryptor **out);
/* Encrypts len plaintext bytes. Every complete block is written to out at once (out needs room for
 * len + 15 bytes); the trailing partial block (0..15 bytes) is held back for the next call. *out_len is
 * a multiple of 16. out must not overlap in. */
cse_status cbc_encryptor_update(cbc_encryptor *enc, const uint8_t *in, size_t len,
                                uint8_t *out, size_t *out_len);
/* Pads (1..16 bytes) and writes the final block: the held-back bytes plus padding, always exactly 16
 * bytes. After final the encryptor only accepts free(). */
cse_status cbc_encryptor_final(cbc_encryptor *enc, uint8_t out[CSE_AES_BLOCK], size_t *out_len);
/* Plaintext bytes held back (0..15): bytes accepted but not yet in any output. */
size_t cbc_encryptor_pending(const cbc_encryptor *enc);
uint64_t cbc_encryptor_plain_bytes(const cbc_encryptor *enc);    /* total accepted */
uint64_t cbc_encryptor_cipher_bytes(const cbc_encryptor *enc);   /* total emitted (final: all of them) */
/* Stored size of a CBC object holding plain_len bytes: plain_len + 16 - plain_len % 16. */
uint64_t cbc_cipher_size(uint64_t plain_len);
void cbc_encryptor_free(cbc_encryptor *enc);     /* wipes the key schedule; NULL is fine */

#endif
