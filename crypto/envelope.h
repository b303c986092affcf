/* The S3 client-side-encryption envelope: the typed form of the x-amz-meta-x-amz-* fields (or of an
 * instruction file), strict validation of every field, the metadata s3csefs writes, and the KMS
 * encryption context to use per wrap algorithm. The rules are those of docs/format.md (from the shared
 * format reference); tests pin each one. */
#ifndef S3CSEFS_ENVELOPE_H
#define S3CSEFS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include "cse_status.h"
#include "kvlist.h"

typedef enum { CSE_CEK_AES_CBC = 0, CSE_CEK_AES_GCM } cse_cek_alg;

typedef enum {
    CSE_WRAP_ABSENT = 0,        /* no x-amz-wrap-alg (V1 / blog style) */
    CSE_WRAP_KMS,               /* "kms" */
    CSE_WRAP_KMS_CONTEXT,       /* "kms+context" */
} cse_wrap_alg;

typedef enum {
    CSE_PROFILE_KMS = 0,        /* default: x-amz-key-v2, wrap-alg kms, context = matdesc */
    CSE_PROFILE_LEGACY,         /* blog style: x-amz-key, no wrap-alg, no cek-alg, no context */
} cse_write_profile;

#define CSE_MAX_KEY_BLOB 1024       /* KMS CiphertextBlob for AES_256 is ~180 bytes */

typedef struct {
    int key_version;                 /* 2: from x-amz-key-v2, 1: from x-amz-key */
    uint8_t encrypted_key[CSE_MAX_KEY_BLOB];
    size_t encrypted_key_len;
    uint8_t iv[16];
    size_t iv_len;                   /* 16 for CBC, 12 for GCM */
    cse_cek_alg cek_alg;
    cse_wrap_alg wrap_alg;
    kv_list matdesc;                 /* parsed x-amz-matdesc (flat string map; may be empty) */
    int has_plain_length;
    uint64_t plain_length;           /* x-amz-unencrypted-content-length when present */
    unsigned tag_len_bits;           /* 128 for GCM, 0 for CBC */
} cse_envelope;

/* Parses S3 user metadata. Names are given without the "x-amz-meta-" prefix, matched case-
 * insensitively (S3 lower-cases them). Returns CSE_ERR_NOT_ENCRYPTED when neither key field is present,
 * otherwise CSE_OK or the code of the first invalid field. On success the envelope must be freed. */
cse_status cse_envelope_parse_metadata(const kv_list *user_metadata, cse_envelope *out);
/* Parses an instruction file (a flat JSON object with the same names, x-amz-matdesc as a JSON string). */
cse_status cse_envelope_parse_instruction(const char *json, size_t len, cse_envelope *out);
void cse_envelope_free(cse_envelope *env);

/* The KMS encryption contexts to try, in order, when decrypting the data key:
 *   kms          -> [matdesc]
 *   kms+context  -> [matdesc]  (after checking aws:x-amz-cek-alg == x-amz-cek-alg)
 *   absent       -> [matdesc, {}]  (matdesc first, then no context; only [{}] when matdesc is empty)
 * contexts must point to an array of 2 kv_list; *count is set; each must be kv_list_free()d. */
cse_status cse_envelope_kms_contexts(const cse_envelope *env, kv_list contexts[2], size_t *count);

/* The EncryptionContext to send with GenerateDataKey for a new object written with `profile`:
 *   kms:    {"kms_cmk_id": key_arn}  (identical to the matdesc that cse_envelope_emit writes)
 *   legacy: {} (nothing is appended: the blog recipe generates the data key without a context)
 * context_out must be initialised; entries are appended. */
cse_status cse_write_context(cse_write_profile profile, const char *key_arn, kv_list *context_out);

/* Emits the user metadata (names without "x-amz-meta-") for a new CBC object written with `profile`:
 *   kms:    x-amz-key-v2, x-amz-iv, x-amz-cek-alg, x-amz-wrap-alg, x-amz-matdesc
 *   legacy: x-amz-key, x-amz-iv, x-amz-matdesc
 * plus x-amz-unencrypted-content-length when plain_length >= 0 (single PUT only). matdesc JSON is
 * exactly {"kms_cmk_id":"<key_arn>"}. out must be an initialised kv_list; entries are appended. */
cse_status cse_envelope_emit(cse_write_profile profile, const uint8_t *encrypted_key, size_t encrypted_key_len,
                             const uint8_t iv[16], const char *key_arn, int64_t plain_length, kv_list *out);

/* Checks a stored object size against the envelope: CBC needs a positive multiple of 16, GCM at least
 * the 16-byte tag (CSE_ERR_CIPHERTEXT_LENGTH); when x-amz-unencrypted-content-length is present it must
 * match the stored size (CSE_ERR_BAD_PLAIN_LENGTH). */
cse_status cse_envelope_check_stored_size(const cse_envelope *env, uint64_t stored_size);

/* One-line human description for logs and xattrs, e.g. "v2 kms AES/CBC/PKCS5Padding key=arn:...". */
void cse_envelope_describe(const cse_envelope *env, char *out, size_t cap);
const char *cse_cek_alg_name(cse_cek_alg alg);      /* "AES/CBC/PKCS5Padding" / "AES/GCM/NoPadding" */

#endif
