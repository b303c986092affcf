/* Human-readable text for every cse_status, so a log line names the exact failure cause. */
#include "cse_status.h"

#include <stddef.h>

static const char *const status_text[CSE_STATUS_COUNT] = {
    [CSE_OK] = "success",
    [CSE_ERR_ARGUMENT] = "invalid argument",
    [CSE_ERR_NO_MEMORY] = "out of memory",
    [CSE_ERR_OPENSSL] = "OpenSSL operation failed",
    [CSE_ERR_NOT_ENCRYPTED] = "object carries no encryption envelope",
    [CSE_ERR_BAD_BASE64] = "envelope field is not valid base64",
    [CSE_ERR_EMPTY_KEY_BLOB] = "encrypted data key is empty",
    [CSE_ERR_MISSING_IV] = "envelope has no x-amz-iv",
    [CSE_ERR_IV_LENGTH] = "x-amz-iv has the wrong length for the content cipher",
    [CSE_ERR_UNKNOWN_CEK_ALG] = "unknown x-amz-cek-alg",
    [CSE_ERR_UNKNOWN_WRAP_ALG] = "unknown x-amz-wrap-alg",
    [CSE_ERR_UNSUPPORTED_WRAP_ALG] = "x-amz-wrap-alg is not KMS-based (unsupported)",
    [CSE_ERR_TAG_LENGTH] = "x-amz-tag-len invalid for the content cipher",
    [CSE_ERR_MATDESC_JSON] = "x-amz-matdesc is not valid JSON",
    [CSE_ERR_MATDESC_NOT_FLAT] = "x-amz-matdesc is not a flat object of strings",
    [CSE_ERR_MATDESC_CEK_MISMATCH] = "matdesc aws:x-amz-cek-alg differs from x-amz-cek-alg",
    [CSE_ERR_BAD_PLAIN_LENGTH] = "x-amz-unencrypted-content-length invalid",
    [CSE_ERR_METADATA_TOO_LARGE] = "envelope metadata exceeds the S3 2 KiB limit",
    [CSE_ERR_INSTRUCTION_JSON] = "instruction file is not a flat JSON object of strings",
    [CSE_ERR_CIPHERTEXT_LENGTH] = "ciphertext length impossible for the content cipher",
    [CSE_ERR_BAD_PADDING] = "invalid PKCS#7 padding in the final block",
    [CSE_ERR_GCM_TAG] = "GCM authentication tag mismatch",
    [CSE_ERR_STATE] = "cipher stream used in the wrong state",
    [CSE_ERR_KEY_BLOB_TOO_LARGE] = "encrypted data key is larger than any KMS ciphertext",
};

static const char *const status_names[CSE_STATUS_COUNT] = {
    [CSE_OK] = "CSE_OK",
    [CSE_ERR_ARGUMENT] = "CSE_ERR_ARGUMENT",
    [CSE_ERR_NO_MEMORY] = "CSE_ERR_NO_MEMORY",
    [CSE_ERR_OPENSSL] = "CSE_ERR_OPENSSL",
    [CSE_ERR_NOT_ENCRYPTED] = "CSE_ERR_NOT_ENCRYPTED",
    [CSE_ERR_BAD_BASE64] = "CSE_ERR_BAD_BASE64",
    [CSE_ERR_EMPTY_KEY_BLOB] = "CSE_ERR_EMPTY_KEY_BLOB",
    [CSE_ERR_MISSING_IV] = "CSE_ERR_MISSING_IV",
    [CSE_ERR_IV_LENGTH] = "CSE_ERR_IV_LENGTH",
    [CSE_ERR_UNKNOWN_CEK_ALG] = "CSE_ERR_UNKNOWN_CEK_ALG",
    [CSE_ERR_UNKNOWN_WRAP_ALG] = "CSE_ERR_UNKNOWN_WRAP_ALG",
    [CSE_ERR_UNSUPPORTED_WRAP_ALG] = "CSE_ERR_UNSUPPORTED_WRAP_ALG",
    [CSE_ERR_TAG_LENGTH] = "CSE_ERR_TAG_LENGTH",
    [CSE_ERR_MATDESC_JSON] = "CSE_ERR_MATDESC_JSON",
    [CSE_ERR_MATDESC_NOT_FLAT] = "CSE_ERR_MATDESC_NOT_FLAT",
    [CSE_ERR_MATDESC_CEK_MISMATCH] = "CSE_ERR_MATDESC_CEK_MISMATCH",
    [CSE_ERR_BAD_PLAIN_LENGTH] = "CSE_ERR_BAD_PLAIN_LENGTH",
    [CSE_ERR_METADATA_TOO_LARGE] = "CSE_ERR_METADATA_TOO_LARGE",
    [CSE_ERR_INSTRUCTION_JSON] = "CSE_ERR_INSTRUCTION_JSON",
    [CSE_ERR_CIPHERTEXT_LENGTH] = "CSE_ERR_CIPHERTEXT_LENGTH",
    [CSE_ERR_BAD_PADDING] = "CSE_ERR_BAD_PADDING",
    [CSE_ERR_GCM_TAG] = "CSE_ERR_GCM_TAG",
    [CSE_ERR_STATE] = "CSE_ERR_STATE",
    [CSE_ERR_KEY_BLOB_TOO_LARGE] = "CSE_ERR_KEY_BLOB_TOO_LARGE",
};

const char *cse_strerror(cse_status status)
{
    if ((unsigned)status >= CSE_STATUS_COUNT || status_text[status] == NULL)
        return "unknown crypto status";
    return status_text[status];
}

const char *cse_status_name(cse_status status)
{
    if ((unsigned)status >= CSE_STATUS_COUNT || status_names[status] == NULL)
        return "CSE_UNKNOWN";
    return status_names[status];
}
