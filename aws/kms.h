/* The KMS operations s3csefs needs, behind a small interface so the filesystem can run against the real
 * KMS client (JSON over HTTP, signed) or a local in-process key service in unit tests. Plaintext data
 * keys are returned in locked memory (secure_buf). Short-lived copies exist on the way there (the HTTP
 * response body and the parsed JSON/base64 text); each is wiped before its memory is released. */
#ifndef S3CSEFS_KMS_H
#define S3CSEFS_KMS_H

#include <stddef.h>
#include <stdint.h>
#include "aws_error.h"
#include "kvlist.h"
#include "secure_mem.h"

typedef struct kms_client kms_client;

typedef struct {
    /* KeySpec AES_256 with the given encryption context (may be empty). */
    int (*generate_data_key)(kms_client *kms, const char *key_id, const kv_list *context,
                             secure_buf **plaintext_key, uint8_t *blob, size_t blob_cap, size_t *blob_len,
                             aws_error *err);
    /* key_id may be NULL; when given KMS refuses a blob of another key. */
    int (*decrypt)(kms_client *kms, const uint8_t *blob, size_t blob_len, const kv_list *context,
                   const char *key_id, secure_buf **plaintext_key, aws_error *err);
    /* Key id, key ARN or alias/... -> full key ARN; also reports whether the key is enabled. */
    int (*describe_key)(kms_client *kms, const char *key_id, char *arn_out, size_t arn_cap,
                        int *enabled, aws_error *err);
    void (*destroy)(kms_client *kms);
} kms_ops;

struct kms_client {
    const kms_ops *ops;
};

typedef struct aws_session aws_session;
/* The real client, talking to the session's KMS endpoint. */
kms_client *kms_client_new_aws(aws_session *session, aws_error *err);
/* A local key service for unit tests: keys wrapped with AES-GCM under a per-instance master key; ARNs
 * look like arn:aws:kms:local:000000000000:key/<id>. Honours encryption context like KMS does. */
kms_client *kms_client_new_local(void);

/* Convenience wrappers that call through ops. Return 0 or the aws_err_kind. */
int kms_generate_data_key(kms_client *kms, const char *key_id, const kv_list *context,
                          secure_buf **plaintext_key, uint8_t *blob, size_t blob_cap, size_t *blob_len,
                          aws_error *err);
int kms_decrypt(kms_client *kms, const uint8_t *blob, size_t blob_len, const kv_list *context,
                const char *key_id, secure_buf **plaintext_key, aws_error *err);
int kms_describe_key(kms_client *kms, const char *key_id, char *arn_out, size_t arn_cap, int *enabled,
                     aws_error *err);
void kms_client_free(kms_client *kms);

#endif
