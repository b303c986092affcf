/* AES-256-CTR with a throwaway in-memory key, for the local spool file: random writes and reads at any
 * byte offset, so plaintext never reaches local disk. The key exists only in locked memory for the
 * lifetime of the open file; the spool is unreadable once the process forgets it. */
#ifndef S3CSEFS_SPOOL_CIPHER_H
#define S3CSEFS_SPOOL_CIPHER_H

#include <stddef.h>
#include <stdint.h>
#include "cse_status.h"

typedef struct spool_cipher spool_cipher;

cse_status spool_cipher_new(spool_cipher **out);     /* fresh random key and nonce */
/* XORs the keystream at byte offset `offset` into len bytes (encrypt == decrypt). out may equal in. */
cse_status spool_cipher_apply(const spool_cipher *sc, uint64_t offset, const uint8_t *in, size_t len, uint8_t *out);
void spool_cipher_free(spool_cipher *sc);

#endif
