/* Test helper: signs requests described as JSON lines on stdin with our SigV4 code and prints one JSON
 * line per request with the canonical request, string to sign, Authorization header and (if asked) a
 * presigned URL, so tests/standalone/test_sigv4_botocore.py can compare them with botocore.
 *
 * Input fields: method, host, path (as sent), query (raw, may be ""), headers [[name, value], ...],
 * body (text), unsigned_payload (bool), content_sha256_header (bool), region, service, normalize (bool),
 * time (unix seconds), access_key, secret_key, token (optional), presign_expires (0 = no presigned URL).
 * Like the HTTP layer, host, x-amz-date, x-amz-content-sha256 (when asked) and x-amz-security-token
 * (when there is a token) are added to the signed headers. Test keys only: never give it real secrets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kvlist.h"
#include "sigv4.h"

static const char *str_field(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static double num_field(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(item) ? item->valuedouble : 0;
}

static int bool_field(const cJSON *obj, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

/* Returns 0 and prints a result line, or -1 on a malformed case. */
static int sign_one(const cJSON *in)
{
    const char *host = str_field(in, "host");
    const char *body = str_field(in, "body");
    const char *token = str_field(in, "token");
    if (!host || !str_field(in, "method") || !str_field(in, "path") || !str_field(in, "access_key") ||
        !str_field(in, "secret_key"))
        return -1;
    time_t now = (time_t)num_field(in, "time");
    unsigned presign_expires = (unsigned)num_field(in, "presign_expires");

    char payload_hash[65], amz_date[17];
    if (bool_field(in, "unsigned_payload"))
        snprintf(payload_hash, sizeof(payload_hash), "UNSIGNED-PAYLOAD");
    else
        sigv4_sha256_hex(body ? body : "", body ? strlen(body) : 0, payload_hash);
    sigv4_format_amz_date(now, amz_date);

    kv_list headers;
    kv_list_init(&headers);
    const cJSON *pair;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItemCaseSensitive(in, "headers"))
    {
        const cJSON *name = cJSON_GetArrayItem(pair, 0), *value = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsString(name) || !cJSON_IsString(value) ||
            kv_list_add(&headers, name->valuestring, value->valuestring) != 0) {
            kv_list_free(&headers);
            return -1;
        }
    }
    kv_list presign_headers;
    kv_list_init(&presign_headers);
    if (kv_list_copy(&presign_headers, &headers) || kv_list_add(&presign_headers, "host", host) ||
        kv_list_add(&headers, "host", host) || kv_list_add(&headers, "x-amz-date", amz_date) ||
        (bool_field(in, "content_sha256_header") && kv_list_add(&headers, "x-amz-content-sha256", payload_hash)) ||
        (token && *token && kv_list_add(&headers, "x-amz-security-token", token))) {
        kv_list_free(&headers);
        kv_list_free(&presign_headers);
        return -1;
    }

    const char *query = str_field(in, "query");
    sigv4_request req = {
        .method = str_field(in, "method"),
        .path = str_field(in, "path"),
        .query = query && *query ? query : NULL,
        .headers = &headers,
        .payload_hash = payload_hash,
        .region = str_field(in, "region"),
        .service = str_field(in, "service"),
        .normalize_path = bool_field(in, "normalize"),
        .now = now,
    };
    sigv4_credentials creds = {
        .access_key_id = str_field(in, "access_key"),
        .secret_access_key = str_field(in, "secret_key"),
        .session_token = token,
    };
    char *canonical = sigv4_canonical_request(&req);
    char *to_sign = canonical ? sigv4_string_to_sign(&req, canonical) : NULL;
    char *authorization = sigv4_authorization(&req, &creds, NULL);
    char *url = NULL;
    if (presign_expires) {
        char scheme_host[600];
        snprintf(scheme_host, sizeof(scheme_host), "https://%s", host);
        sigv4_request presign = req;
        presign.headers = &presign_headers;
        presign.payload_hash = "UNSIGNED-PAYLOAD";
        url = sigv4_presign_url(scheme_host, &presign, &creds, presign_expires);
    }

    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "canonical_request", canonical ? canonical : "");
    cJSON_AddStringToObject(out, "string_to_sign", to_sign ? to_sign : "");
    cJSON_AddStringToObject(out, "authorization", authorization ? authorization : "");
    cJSON_AddStringToObject(out, "url", url ? url : "");
    char *text = cJSON_PrintUnformatted(out);
    int rc = text && canonical && to_sign && authorization && (!presign_expires || url) ? 0 : -1;
    if (text)
        printf("%s\n", text);
    free(text);
    cJSON_Delete(out);
    free(canonical);
    free(to_sign);
    free(authorization);
    free(url);
    kv_list_free(&headers);
    kv_list_free(&presign_headers);
    return rc;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int failures = 0;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        cJSON *in = cJSON_ParseWithLength(line, (size_t)len);
        if (!in || sign_one(in) != 0) {
            fprintf(stderr, "sigv4_sign: cannot sign case: %s", line);
            printf("{}\n");
            failures++;
        }
        cJSON_Delete(in);
        fflush(stdout);
    }
    free(line);
    return failures ? 1 : 0;
}
