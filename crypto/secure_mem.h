/* Memory for key material: locked into RAM (mlock, when RLIMIT_MEMLOCK allows), excluded from core
 * dumps (MADV_DONTDUMP), and wiped with OPENSSL_cleanse when freed. This is where a data key is kept for
 * as long as it is needed. Short-lived copies still exist elsewhere and are not locked: the KMS response
 * being parsed, OpenSSL's key schedule inside an EVP context (wiped by EVP_CIPHER_CTX_free), and stack
 * or heap buffers their owners wipe with secure_wipe. */
#ifndef S3CSEFS_SECURE_MEM_H
#define S3CSEFS_SECURE_MEM_H

#include <stddef.h>
#include <stdint.h>

typedef struct secure_buf {
    uint8_t *bytes;
    size_t len;
    int locked;          /* 1 if mlock succeeded (it can fail under a low RLIMIT_MEMLOCK) */
} secure_buf;

/* Allocates len zeroed bytes of locked memory. NULL on failure. */
secure_buf *secure_buf_new(size_t len);
/* Allocates and copies; the source is NOT wiped (the caller owns it). */
secure_buf *secure_buf_from(const uint8_t *bytes, size_t len);
/* Wipes, unlocks and frees. NULL is fine. */
void secure_buf_free(secure_buf *buf);
/* Wipe any caller buffer that held key material or plaintext. */
void secure_wipe(void *p, size_t len);

#endif
