/* ECS/EKS container credentials: GET http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, or
 * $AWS_CONTAINER_CREDENTIALS_FULL_URI (plain http only to loopback or the ECS/EKS link-local agents),
 * with the Authorization header from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read every time, it is
 * rotated) or AWS_CONTAINER_AUTHORIZATION_TOKEN. The answer is the JSON credentials document. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "aws_text.h"
#include "credentials_sources.h"
#include "http.h"
#include "kvlist.h"

#define ECS_AGENT_ENDPOINT "http://169.254.170.2"
#define MAX_AUTH_TOKEN 16384

/* Container agents answer fast and locally; a few quick attempts cover a slow start. */
static const http_retry_policy ecs_retry = {
    .max_attempts = 4, .base_delay_ms = 200, .max_delay_ms = 1000, .total_timeout_ms = 8000,
};

/* Plain http only to loopback or to the ECS/EKS container agents' link-local addresses. */
static int http_host_allowed(const char *host, size_t len)
{
    static const char *agents[] = { "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]" };
    for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
        if (strlen(agents[i]) == len && strncasecmp(host, agents[i], len) == 0)
            return 1;
    return aws_host_is_loopback(host, len);
}

/* Splits "scheme://authority/path?query" into endpoint (scheme://authority), path and query. */
static int split_full_uri(const char *uri, char *endpoint, size_t endpoint_cap, char *path, size_t path_cap,
                          char *query, size_t query_cap, aws_error *err)
{
    int is_http = strncasecmp(uri, "http://", 7) == 0;
    if (!is_http && strncasecmp(uri, "https://", 8) != 0)
        return aws_error_set(err, AWS_ERR_CONFIG, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be an http(s) URL");
    const char *authority = uri + (is_http ? 7 : 8);
    size_t authority_len = strcspn(authority, "/?");
    const char *rest = authority + authority_len;
    size_t host_len = authority[0] == '[' ? strcspn(authority, "]") + 1 : strcspn(authority, ":/?");
    if (host_len > authority_len)
        host_len = authority_len;
    if (is_http && !http_host_allowed(authority, host_len))
        return aws_error_set(err, AWS_ERR_CONFIG,
                             "AWS_CONTAINER_CREDENTIALS_FULL_URI uses http to a host that is neither loopback nor "
                             "the ECS/EKS agent");
    const char *q = strchr(rest, '?');
    size_t path_len = q ? (size_t)(q - rest) : strlen(rest);
    int n1 = snprintf(endpoint, endpoint_cap, "%.*s", (int)(rest - uri), uri);
    int n2 = snprintf(path, path_cap, "%.*s", (int)path_len, path_len ? rest : "/");
    int n3 = snprintf(query, query_cap, "%s", q ? q + 1 : "");
    if (n1 < 0 || (size_t)n1 >= endpoint_cap || n2 < 0 || (size_t)n2 >= path_cap || n3 < 0 ||
        (size_t)n3 >= query_cap)
        return aws_error_set(err, AWS_ERR_CONFIG, "AWS_CONTAINER_CREDENTIALS_FULL_URI is too long");
    return 0;
}

/* The token, from the file (preferred) or the variable; "" when neither is set. */
static int authorization_token(char *out, size_t cap, aws_error *err)
{
    out[0] = '\0';
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (file && *file) {
        FILE *f = fopen(file, "rb");
        if (!f)
            return aws_error_set(err, AWS_ERR_CREDENTIALS, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s",
                                 file, strerror(errno));
        size_t len = fread(out, 1, cap - 1, f);
        int failed = ferror(f) || !feof(f);
        fclose(f);
        if (failed)
            return aws_error_set(err, AWS_ERR_CREDENTIALS, "container authorization token file %s is unreadable or "
                                 "too large", file);
        while (len > 0 && isspace((unsigned char)out[len - 1]))
            len--;
        out[len] = '\0';
    } else {
        const char *token = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        if (token && snprintf(out, cap, "%s", token) >= (int)cap)
            return aws_error_set(err, AWS_ERR_CREDENTIALS, "AWS_CONTAINER_AUTHORIZATION_TOKEN is too long");
    }
    if (strpbrk(out, "\r\n"))
        return aws_error_set(err, AWS_ERR_CREDENTIALS, "container authorization token contains a line break");
    return 0;
}

int credentials_from_ecs(aws_session *session, aws_credentials *out, aws_error *err)
{
    const char *relative = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    char endpoint[512], path[2048], query[2048];
    if (relative && *relative) {
        snprintf(endpoint, sizeof(endpoint), "%s", ECS_AGENT_ENDPOINT);
        const char *q = strchr(relative, '?');
        size_t path_len = q ? (size_t)(q - relative) : strlen(relative);
        if (relative[0] != '/' || path_len >= sizeof(path) || (q && strlen(q + 1) >= sizeof(query)))
            return aws_error_set(err, AWS_ERR_CONFIG, "bad AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        snprintf(path, sizeof(path), "%.*s", (int)path_len, relative);
        snprintf(query, sizeof(query), "%s", q ? q + 1 : "");
    } else if (full && *full) {
        int rc = split_full_uri(full, endpoint, sizeof(endpoint), path, sizeof(path), query, sizeof(query), err);
        if (rc)
            return rc;
    } else {
        return CREDENTIALS_NOT_CONFIGURED;
    }

    char *token = malloc(MAX_AUTH_TOKEN);
    if (!token)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    kv_list headers;
    kv_list_init(&headers);
    int rc = authorization_token(token, MAX_AUTH_TOKEN, err);
    if (rc == 0 && token[0] && kv_list_add(&headers, "authorization", token) != 0)
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    if (rc == 0) {
        http_request req = {
            .no_proxy = 1,
            .method = "GET",
            .endpoint = endpoint,
            .path = path,
            .query = query[0] ? query : NULL,
            .headers = &headers,
            .sink = HTTP_SINK_GROW,
            .retry = &ecs_retry,
            .timeout_ms = 2000,
            .service_name = "ECS credentials",
        };
        http_response resp;
        http_response_init(&resp);
        rc = http_execute(session->http, &req, &resp, err);
        if (rc == AWS_OK) {
            rc = credentials_parse_json((const char *)resp.body, resp.body_len, out, err);
            if (rc == AWS_OK)
                snprintf(out->source, sizeof(out->source), "ecs");
        } else if (err) {
            /* keep the kind; make it clear which source failed */
            char why[sizeof(err->message)];
            snprintf(why, sizeof(why), "%s", err->message);
            snprintf(err->message, sizeof(err->message), "container credentials endpoint: %.200s", why);
        }
        if (resp.body)
            OPENSSL_cleanse(resp.body, resp.body_len);
        http_response_free(&resp);
    }
    for (size_t i = 0; i < headers.count; i++)
        OPENSSL_cleanse(headers.items[i].value, strlen(headers.items[i].value));
    kv_list_free(&headers);
    OPENSSL_cleanse(token, MAX_AUTH_TOKEN);
    free(token);
    return rc;
}
