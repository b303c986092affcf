/* Session configuration: region precedence (option, AWS_REGION, AWS_DEFAULT_REGION, profile, us-east-1),
 * endpoint precedence (option, AWS_ENDPOINT_URL_<SVC>, AWS_ENDPOINT_URL, AWS default), refusal of plain
 * http to non-loopback hosts, and the path-style decision. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws_session.h"

static const char *const aws_variables[] = {
    "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_STS",
};

static char config_path[64];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(aws_variables) / sizeof(aws_variables[0]); i++)
        unsetenv(aws_variables[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    snprintf(config_path, sizeof(config_path), "/tmp/test_session_XXXXXX");
    int fd = mkstemp(config_path);
    assert_true(fd >= 0);
    const char *text = "[default]\nregion = sa-east-1\n[profile other]\nregion = eu-north-1\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("AWS_CONFIG_FILE", config_path, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(config_path);
    return 0;
}

/* Returns the session (caller frees) or NULL with *kind set. */
static aws_session *try_session(const aws_config *cfg, aws_err_kind *kind, char *message, size_t cap)
{
    aws_error err;
    aws_session *s = aws_session_new(cfg, &err);
    *kind = s ? AWS_OK : err.kind;
    if (message)
        snprintf(message, cap, "%s", s ? "" : err.message);
    return s;
}

static void expect_region(const aws_config *cfg, const char *expected)
{
    aws_err_kind kind;
    aws_session *s = try_session(cfg, &kind, NULL, 0);
    assert_non_null(s);
    assert_string_equal(s->config.region, expected);
    aws_session_free(s);
}

static void test_region_precedence(void **state)
{
    (void)state;
    aws_config cfg;
    aws_config_defaults(&cfg);
    expect_region(&cfg, "sa-east-1");                   /* profile default */
    snprintf(cfg.profile, sizeof(cfg.profile), "other");
    expect_region(&cfg, "eu-north-1");                  /* named profile */
    setenv("AWS_DEFAULT_REGION", "ca-central-1", 1);
    expect_region(&cfg, "ca-central-1");
    setenv("AWS_REGION", "ap-northeast-1", 1);
    expect_region(&cfg, "ap-northeast-1");
    snprintf(cfg.region, sizeof(cfg.region), "us-west-1");
    expect_region(&cfg, "us-west-1");                   /* the option beats everything */
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_CONFIG_FILE");
    aws_config_defaults(&cfg);
    expect_region(&cfg, "us-east-1");                   /* nothing anywhere */

    aws_err_kind kind;
    snprintf(cfg.region, sizeof(cfg.region), "us-east-1/../evil");
    assert_null(try_session(&cfg, &kind, NULL, 0));
    assert_int_equal(kind, AWS_ERR_CONFIG);
}

static void test_endpoint_precedence(void **state)
{
    (void)state;
    aws_config cfg;
    aws_config_defaults(&cfg);
    snprintf(cfg.region, sizeof(cfg.region), "eu-west-3");
    aws_err_kind kind;
    aws_session *s = try_session(&cfg, &kind, NULL, 0);
    assert_non_null(s);
    assert_string_equal(aws_session_endpoint(s, "s3"), "https://s3.eu-west-3.amazonaws.com");
    assert_string_equal(aws_session_endpoint(s, "kms"), "https://kms.eu-west-3.amazonaws.com");
    assert_string_equal(aws_session_endpoint(s, "sts"), "https://sts.eu-west-3.amazonaws.com");
    assert_null(aws_session_endpoint(s, "ec2"));
    aws_session_free(s);

    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/", 1);
    setenv("AWS_ENDPOINT_URL_KMS", "http://localhost:6000", 1);
    snprintf(cfg.sts_endpoint, sizeof(cfg.sts_endpoint), "https://sts.example.test");
    s = try_session(&cfg, &kind, NULL, 0);
    assert_non_null(s);
    assert_string_equal(aws_session_endpoint(s, "s3"), "http://127.0.0.1:5000");      /* trailing / dropped */
    assert_string_equal(aws_session_endpoint(s, "kms"), "http://localhost:6000");     /* per-service variable */
    assert_string_equal(aws_session_endpoint(s, "sts"), "https://sts.example.test");  /* option */
    aws_session_free(s);

    setenv("AWS_ENDPOINT_URL_S3", "http://[::1]:9000", 1);
    s = try_session(&cfg, &kind, NULL, 0);
    assert_non_null(s);
    assert_string_equal(aws_session_endpoint(s, "s3"), "http://[::1]:9000");
    aws_session_free(s);

    aws_config_defaults(&cfg);
    snprintf(cfg.region, sizeof(cfg.region), "cn-north-1");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_KMS");
    unsetenv("AWS_ENDPOINT_URL_S3");
    s = try_session(&cfg, &kind, NULL, 0);
    assert_non_null(s);
    assert_string_equal(aws_session_endpoint(s, "s3"), "https://s3.cn-north-1.amazonaws.com.cn");
    aws_session_free(s);
}

static void test_plain_http_refused_off_loopback(void **state)
{
    (void)state;
    static const struct {
        const char *endpoint;
        int allowed;
    } cases[] = {
        { "http://127.0.0.1:5000", 1 },        { "http://127.12.34.56", 1 },
        { "http://localhost:1234", 1 },        { "http://LOCALHOST", 1 },
        { "http://[::1]:80", 1 },              { "https://s3.example.com", 1 },
        { "http://s3.example.com", 0 },        { "http://10.0.0.1:9000", 0 },
        { "http://127.evil.example", 0 },      { "http://localhost.evil.example", 0 },
        { "http://[::2]:80", 0 },              { "ftp://127.0.0.1", 0 },
        { "127.0.0.1:5000", 0 },               { "http://127.0.0.1:5000/some/path", 0 },
        { "http://user@127.0.0.1", 0 },        { "http://", 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        aws_config cfg;
        aws_config_defaults(&cfg);
        snprintf(cfg.s3_endpoint, sizeof(cfg.s3_endpoint), "%s", cases[i].endpoint);
        aws_err_kind kind;
        char message[256];
        aws_session *s = try_session(&cfg, &kind, message, sizeof(message));
        if (cases[i].allowed != (s != NULL))
            fail_msg("%s: expected %s, got %s", cases[i].endpoint, cases[i].allowed ? "accepted" : "refused",
                     s ? "accepted" : message);
        if (!s)
            assert_int_equal(kind, AWS_ERR_CONFIG);
        aws_session_free(s);
    }

    /* allow_http=1 lets plain http reach any S3 host; the message says how to get there */
    aws_config cfg;
    aws_config_defaults(&cfg);
    snprintf(cfg.s3_endpoint, sizeof(cfg.s3_endpoint), "http://s3.internal.example:8080");
    aws_err_kind kind;
    char message[256];
    assert_null(try_session(&cfg, &kind, message, sizeof(message)));
    assert_non_null(strstr(message, "allow_http"));
    cfg.allow_http = 1;
    aws_session *s = try_session(&cfg, &kind, NULL, 0);
    assert_non_null(s);
    aws_session_free(s);

    /* ... but never KMS (plaintext data keys) or STS (credentials) off loopback (review finding 8) */
    const char *services[] = {"kms", "sts"};
    for (size_t i = 0; i < 2; i++) {
        aws_config_defaults(&cfg);
        cfg.allow_http = 1;
        char *endpoint = i == 0 ? cfg.kms_endpoint : cfg.sts_endpoint;
        snprintf(endpoint, sizeof(cfg.kms_endpoint), "http://%s.internal.example:8080", services[i]);
        assert_null(try_session(&cfg, &kind, message, sizeof(message)));
        assert_int_equal(kind, AWS_ERR_CONFIG);
        assert_null(strstr(message, "allow_http"));
        snprintf(endpoint, sizeof(cfg.kms_endpoint), "http://127.0.0.1:5000");
        s = try_session(&cfg, &kind, NULL, 0);
        assert_non_null(s);
        aws_session_free(s);
    }
}

/* aws_error pointers may be NULL everywhere (review finding 13): an unreadable config file or an
 * over-long endpoint variable must fail cleanly, not dereference NULL. */
static void test_null_error_pointer(void **state)
{
    (void)state;
    aws_config cfg;
    aws_config_defaults(&cfg);
    snprintf(cfg.config_file, sizeof(cfg.config_file), "/");   /* a directory: a read error */
    assert_null(aws_session_new(&cfg, NULL));
    aws_config_defaults(&cfg);
    char long_url[2048];
    memset(long_url, 'a', sizeof long_url - 1);
    memcpy(long_url, "https://", 8);
    long_url[sizeof long_url - 1] = '\0';
    setenv("AWS_ENDPOINT_URL_KMS", long_url, 1);
    assert_null(aws_session_new(&cfg, NULL));
    unsetenv("AWS_ENDPOINT_URL_KMS");
}

static void test_path_style(void **state)
{
    (void)state;
    aws_config cfg;
    aws_config_defaults(&cfg);
    snprintf(cfg.region, sizeof(cfg.region), "eu-west-3");
    aws_err_kind kind;
    aws_session *s = try_session(&cfg, &kind, NULL, 0);
    assert_non_null(s);
    assert_int_equal(aws_session_use_path_style(s, "my-bucket"), 0);
    assert_int_equal(aws_session_use_path_style(s, "my.dotted.bucket"), 1);
    assert_int_equal(aws_session_use_path_style(s, "Upper_Case"), 1);
    s->config.path_style = 1;
    assert_int_equal(aws_session_use_path_style(s, "my-bucket"), 1);
    s->config.path_style = 0;
    assert_int_equal(aws_session_use_path_style(s, "my.dotted.bucket"), 0);
    aws_session_free(s);

    snprintf(cfg.s3_endpoint, sizeof(cfg.s3_endpoint), "http://127.0.0.1:5000");
    s = try_session(&cfg, &kind, NULL, 0);
    assert_non_null(s);
    assert_int_equal(aws_session_use_path_style(s, "my-bucket"), 1);   /* custom endpoint */
    aws_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_region_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoint_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_http_refused_off_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_style, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_error_pointer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
