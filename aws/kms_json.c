/* KMS JSON bodies (see kms_json.h), with cJSON. */
#include "kms_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "cJSON.h"

#define DATA_KEY_BYTES 32

static int add_context(cJSON *root, const kv_list *context)
{
    if (!context || context->count == 0)
        return 0;
    cJSON *ctx = cJSON_AddObjectToObject(root, "EncryptionContext");
    if (!ctx)
        return -1;
    for (size_t i = 0; i < context->count; i++)
        if (!cJSON_AddStringToObject(ctx, context->items[i].name, context->items[i].value))
            return -1;
    return 0;
}

static char *print_and_free(cJSON *root, int ok)
{
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

char *kms_json_generate_data_key_request(const char *key_id, const kv_list *context)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    int ok = cJSON_AddStringToObject(root, "KeyId", key_id) && cJSON_AddStringToObject(root, "KeySpec", "AES_256") &&
             add_context(root, context) == 0;
    return print_and_free(root, ok);
}

char *kms_json_decrypt_request(const uint8_t *blob, size_t blob_len, const kv_list *context, const char *key_id)
{
    char *b64 = malloc(base64_encoded_len(blob_len) + 1);
    cJSON *root = cJSON_CreateObject();
    int ok = b64 && root;
    if (ok) {
        base64_encode(blob, blob_len, b64);
        ok = cJSON_AddStringToObject(root, "CiphertextBlob", b64) && add_context(root, context) == 0 &&
             (!key_id || cJSON_AddStringToObject(root, "KeyId", key_id));
    }
    free(b64);
    if (!root)
        return NULL;
    return print_and_free(root, ok);
}

char *kms_json_describe_key_request(const char *key_id)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    return print_and_free(root, cJSON_AddStringToObject(root, "KeyId", key_id) != NULL);
}

/* Decodes the base64 "Plaintext" member into locked memory and wipes every copy of its text. */
static int take_plaintext(cJSON *root, secure_buf **out, aws_error *err)
{
    cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "Plaintext");
    if (!cJSON_IsString(pt))
        return aws_error_set(err, AWS_ERR_PARSE, "KMS answer has no Plaintext");
    size_t text_len = strlen(pt->valuestring);
    int rc = 0;
    secure_buf *scratch = secure_buf_new(text_len / 4 * 3 + 3);
    size_t got = 0;
    if (!scratch)
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot allocate locked memory for a data key");
    else if (base64_decode(pt->valuestring, text_len, scratch->bytes, &got) != 0 || got != DATA_KEY_BYTES)
        rc = aws_error_set(err, AWS_ERR_PARSE, "KMS Plaintext is not a base64 256-bit key");
    else if (!(*out = secure_buf_from(scratch->bytes, DATA_KEY_BYTES)))
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot allocate locked memory for a data key");
    secure_buf_free(scratch);
    secure_wipe(pt->valuestring, text_len);
    return rc;
}

static cJSON *parse_object(const char *json, size_t len, aws_error *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        aws_error_set(err, AWS_ERR_PARSE, "KMS answer is not a JSON object");
        return NULL;
    }
    return root;
}

int kms_json_parse_data_key(char *json, size_t len, secure_buf **plaintext_key, uint8_t *blob, size_t blob_cap,
                            size_t *blob_len, aws_error *err)
{
    *plaintext_key = NULL;
    *blob_len = 0;
    cJSON *root = parse_object(json, len, err);
    secure_wipe(json, len);
    if (!root)
        return AWS_ERR_PARSE;
    int rc = 0;
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(root, "CiphertextBlob");
    if (!cJSON_IsString(cb) || !*cb->valuestring) {
        rc = aws_error_set(err, AWS_ERR_PARSE, "GenerateDataKey answer has no CiphertextBlob");
    } else {
        size_t text_len = strlen(cb->valuestring);
        uint8_t *raw = malloc(text_len / 4 * 3 + 3);
        size_t n = 0;
        if (!raw)
            rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        else if (base64_decode(cb->valuestring, text_len, raw, &n) != 0 || n == 0)
            rc = aws_error_set(err, AWS_ERR_PARSE, "GenerateDataKey CiphertextBlob is not base64");
        else if (n > blob_cap)
            rc = aws_error_set(err, AWS_ERR_ARGUMENT, "CiphertextBlob of %zu bytes exceeds %zu", n, blob_cap);
        else {
            memcpy(blob, raw, n);
            *blob_len = n;
        }
        free(raw);
    }
    if (rc == 0)
        rc = take_plaintext(root, plaintext_key, err);
    else {
        cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "Plaintext");
        if (cJSON_IsString(pt))
            secure_wipe(pt->valuestring, strlen(pt->valuestring));
    }
    if (rc)
        *blob_len = 0;
    cJSON_Delete(root);
    return rc;
}

int kms_json_parse_decrypt(char *json, size_t len, secure_buf **plaintext_key, aws_error *err)
{
    *plaintext_key = NULL;
    cJSON *root = parse_object(json, len, err);
    secure_wipe(json, len);
    if (!root)
        return AWS_ERR_PARSE;
    int rc = take_plaintext(root, plaintext_key, err);
    cJSON_Delete(root);
    return rc;
}

int kms_json_parse_describe_key(const char *json, size_t len, char *arn_out, size_t arn_cap, int *enabled,
                                aws_error *err)
{
    cJSON *root = parse_object(json, len, err);
    if (!root)
        return AWS_ERR_PARSE;
    int rc = 0;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "KeyMetadata");
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(md, "Arn");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(md, "KeyState");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(md, "Enabled");
    if (!cJSON_IsString(arn) || strncmp(arn->valuestring, "arn:", 4) != 0)
        rc = aws_error_set(err, AWS_ERR_PARSE, "DescribeKey answer has no key ARN");
    else if (strlen(arn->valuestring) >= arn_cap)
        rc = aws_error_set(err, AWS_ERR_ARGUMENT, "key ARN longer than %zu bytes", arn_cap);
    else {
        snprintf(arn_out, arn_cap, "%s", arn->valuestring);
        if (enabled)
            *enabled = cJSON_IsTrue(en) && (!cJSON_IsString(state) || strcmp(state->valuestring, "Enabled") == 0);
    }
    cJSON_Delete(root);
    return rc;
}
