/* EC2 instance metadata credentials, IMDSv2 only: PUT /latest/api/token for a session token, then
 * GET /latest/meta-data/iam/security-credentials/ (the role name) and .../<role> (the JSON document),
 * both carrying the token. Endpoint from AWS_EC2_METADATA_SERVICE_ENDPOINT (tests point it at a local
 * server), disabled by AWS_EC2_METADATA_DISABLED=true. A few quick retries cover an instance that is
 * still booting. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "credentials_sources.h"
#include "http.h"
#include "kvlist.h"

#define IMDS_DEFAULT_ENDPOINT "http://169.254.169.254"
#define IMDS_TOKEN_TTL_S "21600"
#define IMDS_CREDENTIALS_PATH "/latest/meta-data/iam/security-credentials/"

static const http_retry_policy imds_retry = {
    .max_attempts = 4, .base_delay_ms = 250, .max_delay_ms = 1000, .total_timeout_ms = 6000,
};

static int imds_call(aws_session *session, const char *endpoint, const char *method, const char *path,
                     const kv_list *headers, http_response *resp, aws_error *err)
{
    http_request req = {
        .no_proxy = 1,
        .method = method,
        .endpoint = endpoint,
        .path = path,
        .headers = headers,
        .sink = HTTP_SINK_GROW,
        .retry = &imds_retry,
        .timeout_ms = 1000,
        .service_name = "IMDS",
    };
    http_response_init(resp);
    return http_execute(session->http, &req, resp, err);
}

static void trim_line(char *s)
{
    s[strcspn(s, "\r\n")] = '\0';
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
}

int credentials_from_imds(aws_session *session, aws_credentials *out, aws_error *err)
{
    const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
    if (disabled && strcasecmp(disabled, "true") == 0)
        return CREDENTIALS_NOT_CONFIGURED;
    const char *configured = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    char endpoint[512];
    snprintf(endpoint, sizeof(endpoint), "%s", configured && *configured ? configured : IMDS_DEFAULT_ENDPOINT);
    size_t len = strlen(endpoint);
    while (len > 0 && endpoint[len - 1] == '/')
        endpoint[--len] = '\0';

    kv_list headers;
    kv_list_init(&headers);
    http_response resp;
    char *token = NULL, role[256] = "", path[512];
    int rc;

    if (kv_list_add(&headers, "x-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL_S) != 0) {
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    rc = imds_call(session, endpoint, "PUT", "/latest/api/token", &headers, &resp, err);
    if (rc == AWS_OK && resp.body_len > 0) {
        token = strndup((const char *)resp.body, resp.body_len);
        if (token)
            trim_line(token);
    }
    http_response_free(&resp);
    if (rc != AWS_OK) {
        /* Nothing answers at the metadata address: not on EC2 (or IMDS switched off). */
        if ((rc == AWS_ERR_NETWORK || rc == AWS_ERR_TIMEOUT) && !(configured && *configured))
            rc = CREDENTIALS_NOT_CONFIGURED;
        goto done;
    }
    if (!token || !*token) {
        rc = aws_error_set(err, token ? AWS_ERR_PARSE : AWS_ERR_NO_MEMORY, "IMDS returned no session token");
        goto done;
    }

    kv_list_free(&headers);
    kv_list_init(&headers);
    if (kv_list_add(&headers, "x-aws-ec2-metadata-token", token) != 0) {
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    rc = imds_call(session, endpoint, "GET", IMDS_CREDENTIALS_PATH, &headers, &resp, err);
    if (rc == AWS_OK)
        snprintf(role, sizeof(role), "%.*s", (int)resp.body_len, resp.body ? (const char *)resp.body : "");
    http_response_free(&resp);
    if (rc == AWS_ERR_NOT_FOUND) {
        rc = aws_error_set(err, AWS_ERR_CREDENTIALS, "this EC2 instance has no IAM role (instance profile)");
        goto done;
    }
    if (rc != AWS_OK)
        goto done;
    trim_line(role);
    if (!role[0] || strchr(role, '/') || strstr(role, "..")) {
        rc = aws_error_set(err, AWS_ERR_PARSE, "IMDS returned no usable role name");
        goto done;
    }
    snprintf(path, sizeof(path), "%s%s", IMDS_CREDENTIALS_PATH, role);
    rc = imds_call(session, endpoint, "GET", path, &headers, &resp, err);
    if (rc == AWS_OK) {
        rc = credentials_parse_json((const char *)resp.body, resp.body_len, out, err);
        if (rc == AWS_OK)
            snprintf(out->source, sizeof(out->source), "imds");
    }
    if (resp.body)
        OPENSSL_cleanse(resp.body, resp.body_len);
    http_response_free(&resp);

done:
    for (size_t i = 0; i < headers.count; i++)
        OPENSSL_cleanse(headers.items[i].value, strlen(headers.items[i].value));
    kv_list_free(&headers);
    if (token) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    if (rc != AWS_OK && rc != CREDENTIALS_NOT_CONFIGURED && err && !strstr(err->message, "IMDS")) {
        char why[sizeof(err->message)];
        snprintf(why, sizeof(why), "%s", err->message);
        snprintf(err->message, sizeof(err->message), "EC2 instance metadata: %.200s", why);
    }
    return rc;
}
