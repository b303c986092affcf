/* Test-only extras of the local key service (kms_client_new_local in kms.h): more keys, disabling a
 * key, call counts. The default key's alias is KMS_LOCAL_ALIAS. */
#ifndef S3CSEFS_KMS_LOCAL_H
#define S3CSEFS_KMS_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include "kms.h"

#define KMS_LOCAL_ALIAS "alias/s3csefs-local"
#define KMS_LOCAL_ARN_PREFIX "arn:aws:kms:local:000000000000:"

typedef struct {
    uint64_t generate_data_key;
    uint64_t decrypt;
    uint64_t describe_key;
    uint64_t failed;                /* calls that returned an error */
} kms_local_counts;

/* Creates another enabled key and writes its ARN. 0, or -1 (not a local client, cap too small, ENOMEM). */
int kms_local_create_key(kms_client *kms, char *arn_out, size_t cap);
/* key_id: id, ARN or alias. After disabling, every use of the key fails with DisabledException. */
int kms_local_disable_key(kms_client *kms, const char *key_id);
int kms_local_enable_key(kms_client *kms, const char *key_id);
int kms_local_stats(kms_client *kms, kms_local_counts *out);

/* Injected KMS failures (throttling, outages) for the pipelines' error paths: after `after_calls`
 * matching calls, the next `fail_count` (-1: all) calls of the operations in ops_mask fail with the
 * given kind/status/code and the message "injected fault". One rule per service; a new call replaces
 * it, ops_mask 0 removes it. */
enum { KMS_LOCAL_OP_GENERATE = 1 << 0, KMS_LOCAL_OP_DECRYPT = 1 << 1, KMS_LOCAL_OP_DESCRIBE = 1 << 2 };
int kms_local_inject_failure(kms_client *kms, unsigned ops_mask, long after_calls, long fail_count,
                             aws_err_kind kind, int http_status, const char *code);

#endif
