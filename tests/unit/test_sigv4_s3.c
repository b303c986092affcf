/* SigV4 details beyond the generic suite: URI encoding, S3's literal paths (no normalization, no double
 * encoding), the payload hash line, and the signing-key cache (correct across many date/region/service/
 * secret combinations, more than it holds, and from several threads at once). botocore comparisons for
 * many random S3 requests live in tests/standalone/test_sigv4_botocore.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvlist.h"
#include "sigv4.h"

static void test_uri_encode(void **state)
{
    (void)state;
    /* RFC 3986 unreserved stay; everything else is %XX with upper-case hex, byte by byte (UTF-8). */
    const char *raw = "a b+c%/\xc3\xbc~-_.*'()!$&=;:@,?#[]";
    char *keep_slash = aws_uri_encode(raw, strlen(raw), 0);
    assert_string_equal(keep_slash, "a%20b%2Bc%25/%C3%BC~-_.%2A%27%28%29%21%24%26%3D%3B%3A%40%2C%3F%23%5B%5D");
    char *encode_slash = aws_uri_encode(raw, 7, 1);
    assert_string_equal(encode_slash, "a%20b%2Bc%25%2F");
    free(keep_slash);
    free(encode_slash);
    char *empty = aws_uri_encode("", 0, 1);
    assert_string_equal(empty, "");
    free(empty);
    /* an embedded NUL is data, not the end */
    char *nul = aws_uri_encode("a\0b", 3, 1);
    assert_string_equal(nul, "a%00b");
    free(nul);
}

static void test_sha256_hex(void **state)
{
    (void)state;
    char hex[65];
    sigv4_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sigv4_sha256_hex("abc", 3, hex);   /* FIPS 180-2 example */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static char *canonical_for(const char *path, const char *query, int normalize, const char *payload_hash)
{
    kv_list headers;
    kv_list_init(&headers);
    assert_int_equal(kv_list_add(&headers, "Host", "bucket.s3.amazonaws.com"), 0);
    sigv4_request req = {
        .method = "GET", .path = path, .query = query, .headers = &headers, .payload_hash = payload_hash,
        .region = "us-east-1", .service = "s3", .normalize_path = normalize, .now = 1440938160,
    };
    char *canonical = sigv4_canonical_request(&req);
    kv_list_free(&headers);
    assert_non_null(canonical);
    return canonical;
}

/* Second line of a canonical request. */
static void expect_canonical_path(const char *path, int normalize, const char *expected)
{
    char *canonical = canonical_for(path, NULL, normalize, "UNSIGNED-PAYLOAD");
    char *line = strchr(canonical, '\n') + 1;
    *strchr(line, '\n') = '\0';
    if (strcmp(line, expected) != 0)
        fail_msg("path %s (normalize=%d): got %s, expected %s", path, normalize, line, expected);
    free(canonical);
}

static void test_s3_paths_are_literal(void **state)
{
    (void)state;
    /* S3: signed exactly as sent (already encoded by the caller), dots and double slashes kept */
    expect_canonical_path("/my%20key%2Bplus%25pct", 0, "/my%20key%2Bplus%25pct");
    expect_canonical_path("/a//b/./c/../d", 0, "/a//b/./c/../d");
    expect_canonical_path("/%E6%97%A5%E6%9C%AC", 0, "/%E6%97%A5%E6%9C%AC");
    expect_canonical_path("", 0, "/");
    /* bytes that cannot be on the wire unencoded are encoded once; a lone '%' too */
    expect_canonical_path("/raw space", 0, "/raw%20space");
    expect_canonical_path("/100%", 0, "/100%25");
    expect_canonical_path("/bad%zz", 0, "/bad%25zz");
    /* other services: normalized, then encoded again (so "%20" becomes "%2520") */
    expect_canonical_path("/a//b/./c/../d", 1, "/a/b/d");
    expect_canonical_path("/my%20key", 1, "/my%2520key");
    expect_canonical_path("/..", 1, "/");
    expect_canonical_path("/a/b/", 1, "/a/b/");
}

static void test_payload_hash_line_and_query(void **state)
{
    (void)state;
    char *canonical = canonical_for("/k", "uploadId=a%2Bb&partNumber=2&acl", 0, "UNSIGNED-PAYLOAD");
    const char *last = strrchr(canonical, '\n') + 1;
    assert_string_equal(last, "UNSIGNED-PAYLOAD");
    /* query: sorted by name, bare names get "=", '+' stays %2B */
    assert_non_null(strstr(canonical, "\nacl=&partNumber=2&uploadId=a%2Bb\n"));
    free(canonical);

    /* a payload hash given is signed as is; none means the empty body */
    canonical = canonical_for("/k", NULL, 0, NULL);
    assert_string_equal(strrchr(canonical, '\n') + 1,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    free(canonical);
}

/* ---- signing-key cache ---- */

#define COMBOS 24

static char *sign_combo(int i, sigv4_key_cache *cache)
{
    static const char *regions[] = { "us-east-1", "eu-west-3", "ap-south-1" };
    static const char *services[] = { "s3", "kms" };
    char secret[64], date[17];
    snprintf(secret, sizeof(secret), "secret-number-%d", i % 5);
    time_t now = 1440938160 + (time_t)(i % 2) * 86400;
    sigv4_format_amz_date(now, date);
    kv_list headers;
    kv_list_init(&headers);
    assert_int_equal(kv_list_add(&headers, "host", "example.amazonaws.com"), 0);
    assert_int_equal(kv_list_add(&headers, "x-amz-date", date), 0);
    sigv4_request req = {
        .method = "GET", .path = "/", .headers = &headers, .payload_hash = "UNSIGNED-PAYLOAD",
        .region = regions[i % 3], .service = services[(i / 3) % 2], .normalize_path = 0, .now = now,
    };
    sigv4_credentials creds = { .access_key_id = "AKIDCACHE", .secret_access_key = secret };
    char *auth = sigv4_authorization(&req, &creds, cache);
    kv_list_free(&headers);
    assert_non_null(auth);
    return auth;
}

static char *expected_auth[COMBOS];

static void *sign_many(void *arg)
{
    sigv4_key_cache *cache = arg;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < COMBOS; i++) {
            int combo = (i * 7 + round) % COMBOS;
            char *auth = sign_combo(combo, cache);
            if (strcmp(auth, expected_auth[combo]) != 0) {
                free(auth);
                return (void *)1;
            }
            free(auth);
        }
    }
    return NULL;
}

static void test_key_cache(void **state)
{
    (void)state;
    for (int i = 0; i < COMBOS; i++)
        expected_auth[i] = sign_combo(i, NULL);
    /* different secrets/dates/regions/services give different signatures */
    for (int i = 0; i < COMBOS; i++)
        for (int j = i + 1; j < COMBOS; j++)
            if ((i % 5 != j % 5) || (i % 2 != j % 2) || (i % 3 != j % 3) || ((i / 3) % 2 != (j / 3) % 2))
                assert_string_not_equal(expected_auth[i], expected_auth[j]);

    sigv4_key_cache *cache = sigv4_key_cache_new();
    assert_non_null(cache);
    pthread_t threads[4];
    for (int t = 0; t < 4; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, sign_many, cache), 0);
    for (int t = 0; t < 4; t++) {
        void *result;
        pthread_join(threads[t], &result);
        assert_null(result);
    }
    sigv4_key_cache_free(cache);
    for (int i = 0; i < COMBOS; i++)
        free(expected_auth[i]);
}

static void test_refuses_missing_credentials(void **state)
{
    (void)state;
    kv_list headers;
    kv_list_init(&headers);
    sigv4_request req = { .method = "GET", .path = "/", .headers = &headers, .region = "us-east-1",
                          .service = "s3", .now = 1440938160 };
    sigv4_credentials none = { .access_key_id = "", .secret_access_key = "x" };
    assert_null(sigv4_authorization(&req, &none, NULL));
    assert_null(sigv4_authorization(&req, NULL, NULL));
    assert_null(sigv4_presign_url("https://h", &req, &none, 60));
    req.region = NULL;
    sigv4_credentials some = { .access_key_id = "A", .secret_access_key = "x" };
    assert_null(sigv4_authorization(&req, &some, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_s3_paths_are_literal),
        cmocka_unit_test(test_payload_hash_line_and_query),
        cmocka_unit_test(test_key_cache),
        cmocka_unit_test(test_refuses_missing_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
