/* The real KMS client (kms_client_new_aws): GenerateDataKey, Decrypt and DescribeKey as signed JSON
 * POSTs (X-Amz-Target TrentService.*), retried by the HTTP layer on throttling and internal errors.
 * Answers carrying a plaintext key land in locked memory and are wiped after parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "kms.h"
#include "kms_json.h"

/* KMS answers are small (a data key answer is ~400 bytes); anything larger is not a KMS answer. */
#define KMS_RESPONSE_MAX 16384

typedef struct {
    kms_client base;
    aws_session *session;
    char *endpoint;
    http_sigv4_signer signer;
} aws_kms;

/* A hint that turns the service code into the likely cause, for the one log line. */
static void explain(aws_error *err)
{
    if (!err || err->kind == AWS_OK)
        return;
    const char *hint = NULL;
    if (strcmp(err->code, "InvalidCiphertextException") == 0)
        hint = "the key blob does not open with this encryption context or key";
    else if (strcmp(err->code, "AccessDeniedException") == 0)
        hint = "the credentials may not use this KMS key";
    else if (strcmp(err->code, "DisabledException") == 0)
        hint = "the KMS key is disabled";
    else if (strcmp(err->code, "KMSInvalidStateException") == 0)
        hint = "the KMS key is pending deletion or otherwise unusable";
    else if (strcmp(err->code, "NotFoundException") == 0)
        hint = "no such KMS key or alias in this region";
    else if (strcmp(err->code, "IncorrectKeyException") == 0)
        hint = "the key blob belongs to another KMS key";
    if (!hint)
        return;
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "%s", err->message);
    snprintf(err->message, sizeof err->message, "%.100s (%.150s)", hint, msg);
}

/* One KMS call; the answer lands in a locked buffer the caller frees. */
static int kms_call(aws_kms *k, const char *target, const char *body, secure_buf **answer, size_t *answer_len,
                    aws_error *err)
{
    *answer = secure_buf_new(KMS_RESPONSE_MAX + 1);
    if (!*answer)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot allocate locked memory for a KMS answer");
    char target_header[64];
    snprintf(target_header, sizeof target_header, "TrentService.%s", target);
    kv_list headers;
    kv_list_init(&headers);
    int rc = 0;
    if (kv_list_add(&headers, "content-type", "application/x-amz-json-1.1") != 0 ||
        kv_list_add(&headers, "x-amz-target", target_header) != 0)
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    if (!rc) {
        http_request req = {
            .method = "POST", .endpoint = k->endpoint, .path = "/", .headers = &headers,
            .body = (const uint8_t *)body, .body_len = strlen(body),
            .sink = HTTP_SINK_BUFFER, .sink_buf = (*answer)->bytes, .sink_cap = KMS_RESPONSE_MAX,
            .sign = http_sign_sigv4, .sign_ctx = &k->signer, .service_name = "KMS",
        };
        http_response resp;
        http_response_init(&resp);
        rc = http_execute(k->session->http, &req, &resp, err);
        *answer_len = resp.body_len;
        http_response_free(&resp);
        explain(err);
    }
    kv_list_free(&headers);
    if (rc) {
        secure_buf_free(*answer);
        *answer = NULL;
    }
    return rc;
}

static int aws_generate_data_key(kms_client *kms, const char *key_id, const kv_list *context,
                                 secure_buf **plaintext_key, uint8_t *blob, size_t blob_cap, size_t *blob_len,
                                 aws_error *err)
{
    aws_kms *k = (aws_kms *)kms;
    char *body = kms_json_generate_data_key_request(key_id, context);
    if (!body)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    secure_buf *answer = NULL;
    size_t len = 0;
    int rc = kms_call(k, "GenerateDataKey", body, &answer, &len, err);
    free(body);
    if (rc == 0)
        rc = kms_json_parse_data_key((char *)answer->bytes, len, plaintext_key, blob, blob_cap, blob_len, err);
    secure_buf_free(answer);
    return rc;
}

static int aws_decrypt(kms_client *kms, const uint8_t *blob, size_t blob_len, const kv_list *context,
                       const char *key_id, secure_buf **plaintext_key, aws_error *err)
{
    aws_kms *k = (aws_kms *)kms;
    char *body = kms_json_decrypt_request(blob, blob_len, context, key_id);
    if (!body)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    secure_buf *answer = NULL;
    size_t len = 0;
    int rc = kms_call(k, "Decrypt", body, &answer, &len, err);
    free(body);
    if (rc == 0)
        rc = kms_json_parse_decrypt((char *)answer->bytes, len, plaintext_key, err);
    secure_buf_free(answer);
    return rc;
}

static int aws_describe_key(kms_client *kms, const char *key_id, char *arn_out, size_t arn_cap, int *enabled,
                            aws_error *err)
{
    aws_kms *k = (aws_kms *)kms;
    char *body = kms_json_describe_key_request(key_id);
    if (!body)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    secure_buf *answer = NULL;
    size_t len = 0;
    int rc = kms_call(k, "DescribeKey", body, &answer, &len, err);
    free(body);
    if (rc == 0)
        rc = kms_json_parse_describe_key((const char *)answer->bytes, len, arn_out, arn_cap, enabled, err);
    secure_buf_free(answer);
    return rc;
}

static void aws_destroy(kms_client *kms)
{
    aws_kms *k = (aws_kms *)kms;
    free(k->endpoint);
    free(k);
}

static const kms_ops aws_kms_ops = {
    .generate_data_key = aws_generate_data_key,
    .decrypt = aws_decrypt,
    .describe_key = aws_describe_key,
    .destroy = aws_destroy,
};

kms_client *kms_client_new_aws(aws_session *session, aws_error *err)
{
    if (!session || !session->http) {
        aws_error_set(err, AWS_ERR_ARGUMENT, "kms_client_new_aws needs a session");
        return NULL;
    }
    const char *endpoint = aws_session_endpoint(session, "kms");
    if (!endpoint || !strstr(endpoint, "://")) {
        aws_error_set(err, AWS_ERR_CONFIG, "no KMS endpoint for region '%s'", session->config.region);
        return NULL;
    }
    aws_kms *k = calloc(1, sizeof *k);
    if (!k || !(k->endpoint = strdup(endpoint))) {
        free(k);
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory creating the KMS client");
        return NULL;
    }
    size_t n = strlen(k->endpoint);
    while (n > 0 && k->endpoint[n - 1] == '/')
        k->endpoint[--n] = '\0';
    k->base.ops = &aws_kms_ops;
    k->session = session;
    k->signer = (http_sigv4_signer){
        .session = session, .service = "kms", .region = session->config.region,
        .payload_hash = NULL, .normalize_path = 1, .add_content_sha256_header = 0,
    };
    return &k->base;
}
