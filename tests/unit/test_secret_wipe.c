/* Secrets must not be left in freed heap memory (review findings 5 and 6). This test replaces free()
 * and realloc() for the whole process (glibc calls the replacement for its own frees too, e.g. the
 * stdio buffer) and looks into every block released while a parse runs for a distinctive secret.
 * Finding it means a copy of the secret was released without being wiped. Also the session token
 * while a request is signed (finding 7: signed-header lists, canonical request). */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "credentials_sources.h"
#include "http.h"
#include "ini.h"
#include "sts.h"

extern void __libc_free(void *ptr);
extern void *__libc_realloc(void *ptr, size_t size);

static const char *watched;        /* the secret being looked for, NULL: not watching */
static int watch_prefix_only;      /* only blocks that START with the secret count */
static int leaked_blocks;

static __attribute__((unused)) void inspect(void *ptr)
{
    if (!ptr || !watched)
        return;
    size_t n = malloc_usable_size(ptr), w = strlen(watched);
    if (watch_prefix_only ? (n >= w && memcmp(ptr, watched, w) == 0) : memmem(ptr, n, watched, w) != NULL)
        leaked_blocks++;
}

/* AddressSanitizer owns malloc/free itself: there the replacement cannot work and the tests skip. */
#if defined(__SANITIZE_ADDRESS__)
#define FREE_REPLACED 0
#else
#define FREE_REPLACED 1
void free(void *ptr)
{
    inspect(ptr);
    __libc_free(ptr);
}

void *realloc(void *ptr, size_t size)
{
    inspect(ptr);   /* a moved block stays behind unwiped */
    return __libc_realloc(ptr, size);
}
#endif

/* Starts (or with NULL stops) watching; resets the count. */
static void watch(const char *secret, int prefix_only)
{

    watched = secret;
    watch_prefix_only = prefix_only;
    leaked_blocks = 0;
}

static void test_sts_credentials_wiped(void **state)
{
    (void)state;
    if (!FREE_REPLACED)
        skip();
    static const char secret[] = "Sts0SecretKeyWipeCheck0123456789abcdefXY";
    static const char token[] = "Sts0SessionTokenWipeCheck0123456789abcdefghijklmnopqrstuvwxyzXY";
    char doc[2048];
    snprintf(doc, sizeof doc,
             "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAWIPE</AccessKeyId>"
             "<SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>"
             "<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>",
             secret, token);
    aws_credentials creds;
    aws_error err;
    /* Only blocks that start with the secret: the parsed element texts. (expat's own copy of the
     * input document is outside our code.) */
    watch(secret, 1);
    assert_int_equal(sts_parse_credentials(doc, strlen(doc), &creds, &err), 0);
    assert_int_equal(leaked_blocks, 0);
    watch(token, 1);
    assert_int_equal(sts_parse_credentials(doc, strlen(doc), &creds, &err), 0);
    assert_int_equal(leaked_blocks, 0);
    watch(NULL, 0);
    assert_string_equal(creds.secret_access_key, secret);
}

static void test_credentials_file_wiped(void **state)
{
    (void)state;
    if (!FREE_REPLACED)
        skip();
    static const char secret[] = "IniSecretKeyWipeCheck0123456789abcdefXYZ";
    char path[] = "/tmp/test_secret_wipe_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* Padding makes the file bigger than one read chunk; the second key's value continues on an
     * indented line, which joins two strings. */
    char text[12000];
    int len = snprintf(text, sizeof text, "[default]\naws_access_key_id = AKIAWIPE\naws_secret_access_key = %s\n"
                                          "[other]\naws_secret_access_key =\n  %s\n", secret, secret);
    memset(text + len, '#', sizeof text - (size_t)len - 1);
    for (size_t i = (size_t)len; i < sizeof text - 1; i += 100)
        text[i] = '\n';
    text[sizeof text - 1] = '\n';
    assert_int_equal(write(fd, text, sizeof text), (ssize_t)sizeof text);
    close(fd);
    aws_error err;
    watch(secret, 0);
    ini_file *ini = ini_load(path, &err);
    assert_non_null(ini);
    const char *got = ini_get(ini, "default", "aws_secret_access_key");
    assert_non_null(got);
    assert_string_equal(got, secret);
    ini_free(ini);
    assert_int_equal(leaked_blocks, 0);
    watch(NULL, 0);
    unlink(path);
}

static void test_signing_wipes_session_token(void **state)
{
    (void)state;
    if (!FREE_REPLACED)
        skip();
    static const char token[] = "SessionTokenSignWipeCheck0123456789abcdefghijklmnopqrstuvwxyzXY";
    sigv4_credentials creds = {.access_key_id = "ASIAWIPE", .secret_access_key = "wJalrXUtnFEMI/K7MDENG",
                               .session_token = token};
    http_sigv4_signer signer = {.credentials = &creds, .service = "s3", .region = "us-east-1",
                                .payload_hash = "UNSIGNED-PAYLOAD", .add_content_sha256_header = 1};
    kv_list extra;
    kv_list_init(&extra);
    assert_int_equal(kv_list_add(&extra, "x-amz-meta-mode", "0644"), 0);
    http_request req = {.method = "GET", .endpoint = "https://bucket.s3.us-east-1.amazonaws.com",
                        .path = "/key", .headers = &extra};
    kv_list out;
    kv_list_init(&out);
    aws_error err;
    watch(token, 0);
    assert_int_equal(http_sign_sigv4(&signer, &req, &out, &err), 0);
    int leaked = leaked_blocks;
    watch(NULL, 0);
    const char *sent = kv_list_get(&out, "x-amz-security-token");
    assert_non_null(sent);
    assert_string_equal(sent, token);
    assert_int_equal(leaked, 0);
    for (size_t i = 0; i < out.count; i++)   /* the caller's copy: http_execute wipes it the same way */
        memset(out.items[i].value, 0, strlen(out.items[i].value));
    kv_list_free(&out);
    kv_list_free(&extra);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sts_credentials_wiped),
        cmocka_unit_test(test_credentials_file_wiped),
        cmocka_unit_test(test_signing_wipes_session_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
