/* AES-256-CTR keystream at an arbitrary byte offset: the implementation behind GCM ranged reads
 * (gcm.c). Stateless, so any range can be processed on its own. */
#ifndef S3CSEFS_AES_CTR_H
#define S3CSEFS_AES_CTR_H

#include <stddef.h>
#include <stdint.h>
#include "cse_status.h"

/* XORs into len bytes the keystream that starts `offset` bytes after the block whose counter is
 * first_counter (a 128-bit big-endian counter, incremented per 16-byte block with carry across all 128
 * bits, as OpenSSL's CTR mode does). Encryption and decryption are the same; out may equal in. */
cse_status aes256_ctr_at_offset(const uint8_t key[32], const uint8_t first_counter[16], uint64_t offset,
                                const uint8_t *in, size_t len, uint8_t *out);

#endif
