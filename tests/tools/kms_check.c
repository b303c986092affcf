/* Drives the real KMS client (kms_client_new_aws) against a live endpoint, one call per invocation, so
 * integration scripts can cross-check it with boto3. Session from the environment. TEST TOOL ONLY: it
 * prints data keys in hex so the script can compare them with what boto3 gets from KMS; the product never
 * does. On failure: "ERROR <kind> <http status> <code>: <message>" on stderr, exit 3.
 *
 *   kms_check describe KEY_ID                      -> "arn <arn>" and "enabled <0|1>"
 *   kms_check generate KEY_ID [name=value...]      -> "blob <base64>" and "key <hex>"
 *   kms_check decrypt BLOB_B64 KEY_ID|- [name=value...]   -> "key <hex>" */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_session.h"
#include "base64.h"
#include "kms.h"

static int fail(const aws_error *err)
{
    fprintf(stderr, "ERROR %s %d %s: %s\n", aws_err_kind_name(err->kind), err->http_status,
            err->code[0] ? err->code : "-", err->message);
    return 3;
}

static int parse_context(int argc, char **argv, kv_list *ctx)
{
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return -1;
        *eq = '\0';
        if (kv_list_add(ctx, argv[i], eq + 1) != 0)
            return -1;
    }
    return 0;
}

static void print_key(const secure_buf *key)
{
    printf("key ");
    for (size_t i = 0; i < key->len; i++)
        printf("%02x", key->bytes[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see the header of tests/tools/kms_check.c\n");
        return 2;
    }
    aws_error err;
    aws_config cfg;
    aws_config_defaults(&cfg);
    if (getenv("S3CSEFS_MAX_ATTEMPTS"))
        cfg.max_attempts = atoi(getenv("S3CSEFS_MAX_ATTEMPTS"));
    aws_session *session = aws_session_new(&cfg, &err);
    if (!session)
        return fail(&err);
    kms_client *kms = kms_client_new_aws(session, &err);
    if (!kms) {
        aws_session_free(session);
        return fail(&err);
    }
    int rc = 2;
    kv_list ctx;
    kv_list_init(&ctx);
    secure_buf *key = NULL;
    if (strcmp(argv[1], "describe") == 0 && argc == 3) {
        char arn[512];
        int enabled = -1;
        rc = kms_describe_key(kms, argv[2], arn, sizeof arn, &enabled, &err) ? fail(&err)
                                                                              : (printf("arn %s\nenabled %d\n", arn, enabled), 0);
    } else if (strcmp(argv[1], "generate") == 0 && parse_context(argc - 3, argv + 3, &ctx) == 0) {
        uint8_t blob[1024];
        size_t blob_len = 0;
        if (kms_generate_data_key(kms, argv[2], &ctx, &key, blob, sizeof blob, &blob_len, &err) == 0) {
            char b64[1400];
            base64_encode(blob, blob_len, b64);
            printf("blob %s\n", b64);
            print_key(key);
            rc = 0;
        } else {
            rc = fail(&err);
        }
    } else if (strcmp(argv[1], "decrypt") == 0 && argc >= 4 && parse_context(argc - 4, argv + 4, &ctx) == 0) {
        uint8_t blob[1024];
        size_t blob_len = 0;
        if (strlen(argv[2]) > 1300 || base64_decode(argv[2], strlen(argv[2]), blob, &blob_len) != 0) {
            fprintf(stderr, "bad base64 blob\n");
        } else {
            const char *key_id = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
            rc = kms_decrypt(kms, blob, blob_len, &ctx, key_id, &key, &err) ? fail(&err) : (print_key(key), 0);
        }
    } else {
        fprintf(stderr, "unknown command or wrong arguments: %s\n", argv[1]);
    }
    secure_buf_free(key);
    kv_list_free(&ctx);
    kms_client_free(kms);
    aws_session_free(session);
    return rc;
}
