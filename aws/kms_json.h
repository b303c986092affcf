/* KMS JSON request bodies and response parsing (no I/O), so unit tests can pin the exact JSON the
 * real client sends and receives. Plaintext data keys are decoded from the answer straight into locked
 * memory, and the JSON text that carried them is wiped. */
#ifndef S3CSEFS_KMS_JSON_H
#define S3CSEFS_KMS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "aws_error.h"
#include "kvlist.h"
#include "secure_mem.h"

/* Request bodies (malloc'd, NULL on ENOMEM). An empty or NULL context is left out. */
char *kms_json_generate_data_key_request(const char *key_id, const kv_list *context);
/* key_id NULL is left out. */
char *kms_json_decrypt_request(const uint8_t *blob, size_t blob_len, const kv_list *context, const char *key_id);
char *kms_json_describe_key_request(const char *key_id);

/* GenerateDataKey answer: Plaintext (must decode to 32 bytes) into *plaintext_key, CiphertextBlob into
 * blob. key_arn_out (may be NULL) receives KeyId. The JSON text is wiped in place (it is writable for
 * that reason). Returns 0 or AWS_ERR_PARSE / AWS_ERR_NO_MEMORY / AWS_ERR_ARGUMENT (blob_cap too small). */
int kms_json_parse_data_key(char *json, size_t len, secure_buf **plaintext_key, uint8_t *blob, size_t blob_cap,
                            size_t *blob_len, aws_error *err);
/* Decrypt answer: Plaintext (32 bytes) into *plaintext_key; wipes the JSON text. */
int kms_json_parse_decrypt(char *json, size_t len, secure_buf **plaintext_key, aws_error *err);
/* DescribeKey answer: KeyMetadata.Arn into arn_out; *enabled = Enabled && KeyState == "Enabled". */
int kms_json_parse_describe_key(const char *json, size_t len, char *arn_out, size_t arn_cap, int *enabled,
                                aws_error *err);

#endif
