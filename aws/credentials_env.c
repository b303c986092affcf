/* Credentials sources that need no network: the environment variables, and the JSON document and
 * timestamps shared by the ECS and IMDS sources. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "aws_text.h"
#include "credentials_sources.h"

int credentials_from_env(aws_credentials *out, aws_error *err)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    if (!id || !*id || !secret || !*secret) {
        if ((id && *id) != (secret && *secret))
            return aws_error_set(err, AWS_ERR_CREDENTIALS,
                                 "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set");
        return CREDENTIALS_NOT_CONFIGURED;
    }
    memset(out, 0, sizeof(*out));
    if (aws_copy_checked(out->access_key_id, sizeof(out->access_key_id), id) ||
        aws_copy_checked(out->secret_access_key, sizeof(out->secret_access_key), secret) ||
        (token && aws_copy_checked(out->session_token, sizeof(out->session_token), token))) {
        OPENSSL_cleanse(out, sizeof(*out));
        return aws_error_set(err, AWS_ERR_CREDENTIALS, "AWS credentials in the environment are too long");
    }
    snprintf(out->source, sizeof(out->source), "env");
    return AWS_OK;
}

time_t credentials_parse_time(const char *iso8601)
{
    return aws_parse_iso8601(iso8601);
}

static int json_field(const cJSON *doc, const char *name, char *dst, size_t cap)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);
    if (!cJSON_IsString(item) || !item->valuestring[0])
        return -1;
    return aws_copy_checked(dst, cap, item->valuestring);
}

int credentials_parse_json(const char *json, size_t len, aws_credentials *out, aws_error *err)
{
    cJSON *doc = cJSON_ParseWithLength(json, len);
    if (!doc)
        return aws_error_set(err, AWS_ERR_PARSE, "credentials answer is not JSON");
    memset(out, 0, sizeof(*out));
    int rc = AWS_OK;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "Code");
    if (cJSON_IsString(code) && strcmp(code->valuestring, "Success") != 0) {
        rc = aws_error_set(err, AWS_ERR_CREDENTIALS, "credentials endpoint answered Code=%.64s",
                           code->valuestring);
    } else if (json_field(doc, "AccessKeyId", out->access_key_id, sizeof(out->access_key_id)) ||
               json_field(doc, "SecretAccessKey", out->secret_access_key, sizeof(out->secret_access_key))) {
        rc = aws_error_set(err, AWS_ERR_PARSE, "credentials answer lacks AccessKeyId/SecretAccessKey");
    } else {
        const cJSON *token = cJSON_GetObjectItemCaseSensitive(doc, "Token");
        if (cJSON_IsString(token) && aws_copy_checked(out->session_token, sizeof(out->session_token),
                                                  token->valuestring) != 0)
            rc = aws_error_set(err, AWS_ERR_PARSE, "session token in credentials answer is too long");
        const cJSON *expiration = cJSON_GetObjectItemCaseSensitive(doc, "Expiration");
        if (rc == AWS_OK && cJSON_IsString(expiration)) {
            out->expiration = credentials_parse_time(expiration->valuestring);
            if (out->expiration <= 0)
                rc = aws_error_set(err, AWS_ERR_PARSE, "bad Expiration in credentials answer");
        }
    }
    /* The parsed document holds the secret: wipe its strings before freeing. */
    for (cJSON *item = doc->child; item; item = item->next)
        if (cJSON_IsString(item) && item->valuestring)
            OPENSSL_cleanse(item->valuestring, strlen(item->valuestring));
    cJSON_Delete(doc);
    if (rc != AWS_OK)
        OPENSSL_cleanse(out, sizeof(*out));
    return rc;
}
