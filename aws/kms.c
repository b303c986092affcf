/* The kms_client wrappers of kms.h: argument checks, then a call through the implementation's ops. */
#include "kms.h"

#include <stddef.h>

int kms_generate_data_key(kms_client *kms, const char *key_id, const kv_list *context,
                          secure_buf **plaintext_key, uint8_t *blob, size_t blob_cap, size_t *blob_len,
                          aws_error *err)
{
    if (plaintext_key)
        *plaintext_key = NULL;
    if (!kms || !key_id || !*key_id || !plaintext_key || !blob || !blob_len)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "kms_generate_data_key: missing argument");
    return kms->ops->generate_data_key(kms, key_id, context, plaintext_key, blob, blob_cap, blob_len, err);
}

int kms_decrypt(kms_client *kms, const uint8_t *blob, size_t blob_len, const kv_list *context,
                const char *key_id, secure_buf **plaintext_key, aws_error *err)
{
    if (plaintext_key)
        *plaintext_key = NULL;
    if (!kms || !blob || !blob_len || !plaintext_key)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "kms_decrypt: missing argument");
    return kms->ops->decrypt(kms, blob, blob_len, context, key_id, plaintext_key, err);
}

int kms_describe_key(kms_client *kms, const char *key_id, char *arn_out, size_t arn_cap, int *enabled,
                     aws_error *err)
{
    if (!kms || !key_id || !*key_id || !arn_out || !arn_cap)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "kms_describe_key: missing argument");
    return kms->ops->describe_key(kms, key_id, arn_out, arn_cap, enabled, err);
}

void kms_client_free(kms_client *kms)
{
    if (kms)
        kms->ops->destroy(kms);
}
