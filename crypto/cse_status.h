/* Status codes of the crypto layer. Every malformed input has its own code so that the log line the
 * filesystem writes names the exact cause (bad base64, wrong IV length, bad padding, ...). */
#ifndef S3CSEFS_CSE_STATUS_H
#define S3CSEFS_CSE_STATUS_H

typedef enum {
    CSE_OK = 0,
    CSE_ERR_ARGUMENT,            /* caller passed an impossible argument (NULL, wrong length) */
    CSE_ERR_NO_MEMORY,
    CSE_ERR_OPENSSL,             /* OpenSSL refused an operation that should not fail */
    CSE_ERR_NOT_ENCRYPTED,       /* no x-amz-key-v2 / x-amz-key: a plain object */
    CSE_ERR_BAD_BASE64,          /* x-amz-key(-v2) or x-amz-iv is not valid base64 */
    CSE_ERR_EMPTY_KEY_BLOB,      /* encrypted data key decodes to zero bytes */
    CSE_ERR_MISSING_IV,
    CSE_ERR_IV_LENGTH,           /* IV is not 16 bytes (CBC) or 12 bytes (GCM) */
    CSE_ERR_UNKNOWN_CEK_ALG,     /* x-amz-cek-alg not AES/CBC/PKCS5Padding or AES/GCM/NoPadding */
    CSE_ERR_UNKNOWN_WRAP_ALG,    /* x-amz-wrap-alg not one of the names in the format reference */
    CSE_ERR_UNSUPPORTED_WRAP_ALG,/* a known but non-KMS wrap algorithm (AESWrap, RSA-OAEP...) */
    CSE_ERR_TAG_LENGTH,          /* x-amz-tag-len missing/not 128 for GCM, or present for CBC */
    CSE_ERR_MATDESC_JSON,        /* x-amz-matdesc is not valid JSON */
    CSE_ERR_MATDESC_NOT_FLAT,    /* x-amz-matdesc is not an object of string values */
    CSE_ERR_MATDESC_CEK_MISMATCH,/* kms+context: matdesc aws:x-amz-cek-alg differs from x-amz-cek-alg */
    CSE_ERR_BAD_PLAIN_LENGTH,    /* x-amz-unencrypted-content-length not a decimal number, or impossible */
    CSE_ERR_METADATA_TOO_LARGE,  /* a field (or the whole envelope) exceeds S3's 2 KiB metadata limit */
    CSE_ERR_INSTRUCTION_JSON,    /* instruction file is not a flat JSON object of strings */
    CSE_ERR_CIPHERTEXT_LENGTH,   /* CBC ciphertext length not a positive multiple of 16 / GCM shorter than tag */
    CSE_ERR_BAD_PADDING,         /* final CBC block has invalid PKCS#7 padding */
    CSE_ERR_GCM_TAG,             /* GCM authentication tag does not match */
    CSE_ERR_STATE,               /* a stream object used after final / in the wrong order / after a failure */
    CSE_ERR_KEY_BLOB_TOO_LARGE,  /* encrypted data key longer than CSE_MAX_KEY_BLOB bytes */
    CSE_STATUS_COUNT
} cse_status;

/* Short English description of a status, never NULL; safe to put in a log line. */
const char *cse_strerror(cse_status status);
/* The enumerator's name ("CSE_ERR_BAD_PADDING"), for tools and tests that match on the exact cause. */
const char *cse_status_name(cse_status status);

#endif
