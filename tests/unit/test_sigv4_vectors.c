/* Runs every case of the AWS SigV4 test suite ($S3CSEFS_VECTORS/sigv4, from aws-c-auth): parses each
 * request.txt and context.json, then checks the canonical request, string to sign, signature and
 * Authorization header (header mode) and the canonical request, string to sign and signature of the
 * presigned URL (query mode) against the suite's expected files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "kvlist.h"
#include "sigv4.h"

static char *read_file(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    data[size] = '\0';
    fclose(f);
    return data;
}

static void strip_trailing_newlines(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

typedef struct {
    char method[16];
    char *path;
    char *query;          /* NULL when absent */
    kv_list headers;
    char *body;
    size_t body_len;
} parsed_request;

/* "METHOD PATH[?QUERY] HTTP/1.1", "Name:value" lines (a line starting with whitespace continues the
 * previous value), a blank line, then the body. */
static void parse_request(char *text, parsed_request *req)
{
    memset(req, 0, sizeof(*req));
    kv_list_init(&req->headers);
    char *line_end = strchr(text, '\n');
    assert_non_null(line_end);
    *line_end = '\0';
    char *space = strchr(text, ' ');
    char *proto = strstr(text, " HTTP/");
    assert_non_null(space);
    assert_non_null(proto);
    *space = '\0';
    *proto = '\0';
    snprintf(req->method, sizeof(req->method), "%s", text);
    req->path = strdup(space + 1);
    char *q = strchr(req->path, '?');
    if (q) {
        *q = '\0';
        req->query = strdup(q + 1);
    }

    char *p = line_end + 1;
    char *last_value = NULL;
    while (*p && *p != '\n') {
        char *end = strchr(p, '\n');
        if (end)
            *end = '\0';
        if ((*p == ' ' || *p == '\t') && last_value) {
            /* folded line: keep it with a newline, the signer must collapse it */
            size_t old_len = strlen(last_value);
            char *joined = malloc(old_len + strlen(p) + 2);
            sprintf(joined, "%s\n%s", last_value, p);
            kv_pair *item = &req->headers.items[req->headers.count - 1];
            free(item->value);
            item->value = joined;
            last_value = joined;
        } else {
            char *colon = strchr(p, ':');
            assert_non_null(colon);
            *colon = '\0';
            assert_int_equal(kv_list_add(&req->headers, p, colon + 1), 0);
            last_value = req->headers.items[req->headers.count - 1].value;
        }
        if (!end) {
            p += strlen(p);
            break;
        }
        p = end + 1;
    }
    if (*p == '\n')
        p++;
    req->body = strdup(p);
    req->body_len = strlen(p);
}

static void free_request(parsed_request *req)
{
    free(req->path);
    free(req->query);
    free(req->body);
    kv_list_free(&req->headers);
}

static time_t parse_timestamp(const char *iso)
{
    struct tm tm = { 0 };
    assert_non_null(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return timegm(&tm);
}

static const char *json_string(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static int json_true(const cJSON *obj, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

static void expect_file_equals(const char *dir, const char *name, const char *actual)
{
    char *expected = read_file(dir, name);
    assert_non_null(expected);
    assert_non_null(actual);
    strip_trailing_newlines(expected);
    if (strcmp(expected, actual) != 0)
        print_error("%s/%s differs\nexpected:\n%s\nactual:\n%s\n", dir, name, expected, actual);
    assert_string_equal(expected, actual);
    free(expected);
}

/* The Authorization line of header-signed-request.txt. */
static char *expected_authorization(const char *dir)
{
    char *signed_request = read_file(dir, "header-signed-request.txt");
    assert_non_null(signed_request);
    char *line = strstr(signed_request, "\nAuthorization:");
    assert_non_null(line);
    line += strlen("\nAuthorization:");
    char *end = strchr(line, '\n');
    if (end)
        *end = '\0';
    char *result = strdup(line);
    free(signed_request);
    return result;
}

static void run_case(const char *dir)
{
    char *context_text = read_file(dir, "context.json");
    char *request_text = read_file(dir, "request.txt");
    assert_non_null(context_text);
    assert_non_null(request_text);
    cJSON *context = cJSON_Parse(context_text);
    assert_non_null(context);
    const cJSON *json_creds = cJSON_GetObjectItemCaseSensitive(context, "credentials");
    const char *token = json_string(json_creds, "token");
    int omit_token = json_true(context, "omit_session_token");
    time_t now = parse_timestamp(json_string(context, "timestamp"));
    const cJSON *expiration = cJSON_GetObjectItemCaseSensitive(context, "expiration_in_seconds");

    parsed_request parsed;
    parse_request(request_text, &parsed);
    char body_hash[65], amz_date[17];
    sigv4_sha256_hex(parsed.body, parsed.body_len, body_hash);
    sigv4_format_amz_date(now, amz_date);

    sigv4_credentials creds = {
        .access_key_id = json_string(json_creds, "access_key_id"),
        .secret_access_key = json_string(json_creds, "secret_access_key"),
        .session_token = token,
    };

    /* Header mode: the signer signs every header given, so add what a client would send. */
    kv_list headers;
    kv_list_init(&headers);
    assert_int_equal(kv_list_copy(&headers, &parsed.headers), 0);
    assert_int_equal(kv_list_add(&headers, "X-Amz-Date", amz_date), 0);
    if (token && !omit_token)
        assert_int_equal(kv_list_add(&headers, "X-Amz-Security-Token", token), 0);
    if (json_true(context, "sign_body"))
        assert_int_equal(kv_list_add(&headers, "x-amz-content-sha256", body_hash), 0);

    sigv4_request req = {
        .method = parsed.method,
        .path = parsed.path,
        .query = parsed.query,
        .headers = &headers,
        .payload_hash = body_hash,
        .region = json_string(context, "region"),
        .service = json_string(context, "service"),
        .normalize_path = json_true(context, "normalize"),
        .now = now,
    };
    char *canonical = sigv4_canonical_request(&req);
    expect_file_equals(dir, "header-canonical-request.txt", canonical);
    char *to_sign = sigv4_string_to_sign(&req, canonical);
    expect_file_equals(dir, "header-string-to-sign.txt", to_sign);
    sigv4_key_cache *cache = sigv4_key_cache_new();
    assert_non_null(cache);
    char *authorization = sigv4_authorization(&req, &creds, cache);
    char *expected_auth = expected_authorization(dir);
    assert_string_equal(expected_auth, authorization);
    const char *sig = strstr(authorization, "Signature=");
    assert_non_null(sig);
    expect_file_equals(dir, "header-signature.txt", sig + strlen("Signature="));
    /* A second signing served from the cache must be identical. */
    char *again = sigv4_authorization(&req, &creds, cache);
    assert_string_equal(authorization, again);
    free(again);
    free(canonical);
    free(to_sign);
    free(authorization);
    free(expected_auth);
    sigv4_key_cache_free(cache);
    kv_list_free(&headers);

    /* Query mode: presign with the request's own headers; the token is signed unless the case says the
     * client adds it after signing. */
    sigv4_credentials query_creds = creds;
    if (omit_token)
        query_creds.session_token = NULL;
    req.headers = &parsed.headers;
    char *url = sigv4_presign_url("https://example.amazonaws.com", &req, &query_creds,
                                  (unsigned)(cJSON_IsNumber(expiration) ? expiration->valueint : 3600));
    assert_non_null(url);
    char *signature = strstr(url, "&X-Amz-Signature=");
    assert_non_null(signature);
    expect_file_equals(dir, "query-signature.txt", signature + strlen("&X-Amz-Signature="));
    /* Recompute the intermediate products from the URL's own query (without the signature). */
    *signature = '\0';
    char *query = strchr(url, '?');
    assert_non_null(query);
    sigv4_request query_req = req;
    query_req.query = query + 1;
    canonical = sigv4_canonical_request(&query_req);
    expect_file_equals(dir, "query-canonical-request.txt", canonical);
    to_sign = sigv4_string_to_sign(&query_req, canonical);
    expect_file_equals(dir, "query-string-to-sign.txt", to_sign);
    free(canonical);
    free(to_sign);
    free(url);

    free_request(&parsed);
    cJSON_Delete(context);
    free(context_text);
    free(request_text);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define MAX_CASES 256
static char *case_dirs[MAX_CASES];

static void test_vector(void **state)
{
    run_case((const char *)*state);
}

/* One cmocka test per vector directory, so a failure names its case. */
int main(void)
{
    const char *vectors = getenv("S3CSEFS_VECTORS");
    if (!vectors)
        vectors = "tests/vectors";   /* run from the source tree */
    char root[1024];
    snprintf(root, sizeof(root), "%s/sigv4", vectors);
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "cannot open %s (set S3CSEFS_VECTORS)\n", root);
        return 1;
    }
    char *names[MAX_CASES];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < MAX_CASES) {
        char dir[1400];
        snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
        char *probe = read_file(dir, "context.json");
        if (probe) {
            free(probe);
            names[count++] = strdup(e->d_name);
        }
    }
    closedir(d);
    /* The suite has 38 cases; fewer means the directory is not what we think it is. */
    if (count < 38) {
        fprintf(stderr, "only %zu sigv4 cases under %s\n", count, root);
        return 1;
    }
    qsort(names, count, sizeof(*names), compare_names);
    struct CMUnitTest tests[MAX_CASES];
    for (size_t i = 0; i < count; i++) {
        case_dirs[i] = malloc(strlen(root) + strlen(names[i]) + 2);
        sprintf(case_dirs[i], "%s/%s", root, names[i]);
        tests[i] = (struct CMUnitTest){ .name = names[i], .test_func = test_vector,
                                        .initial_state = case_dirs[i] };
    }
    int failed = _cmocka_run_group_tests("sigv4_vectors", tests, count, NULL, NULL);
    for (size_t i = 0; i < count; i++) {
        free(case_dirs[i]);
        free(names[i]);
    }
    return failed;
}
