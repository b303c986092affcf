/* The AWS shared config/credentials file parser: sections and profiles, comments, whitespace, CRLF,
 * continuation lines, overrides, and the "[profile x]" vs "[x]" rule of the config file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ini.h"

static ini_file *parse(const char *text)
{
    aws_error err;
    ini_file *ini = ini_parse(text, strlen(text), &err);
    assert_non_null(ini);
    return ini;
}

static void test_sections_keys_and_whitespace(void **state)
{
    (void)state;
    ini_file *ini = parse("[default]\n"
                          "aws_access_key_id=AKIDDEFAULT\n"
                          "  aws_secret_access_key =   secret with inner space   \n"
                          "\n"
                          "[  other ]\r\n"
                          "region\t=\teu-west-3\r\n");
    assert_true(ini_has_section(ini, "default"));
    assert_true(ini_has_section(ini, "other"));
    assert_false(ini_has_section(ini, "missing"));
    assert_string_equal(ini_get(ini, "default", "aws_access_key_id"), "AKIDDEFAULT");
    assert_string_equal(ini_get(ini, "default", "aws_secret_access_key"), "secret with inner space");
    assert_string_equal(ini_get(ini, "other", "region"), "eu-west-3");
    /* keys are case-insensitive, sections are not */
    assert_string_equal(ini_get(ini, "default", "AWS_Access_Key_ID"), "AKIDDEFAULT");
    assert_null(ini_get(ini, "Default", "aws_access_key_id"));
    assert_null(ini_get(ini, "other", "aws_access_key_id"));
    ini_free(ini);
}

static void test_comments(void **state)
{
    (void)state;
    ini_file *ini = parse("# a comment\n"
                          "; another comment\n"
                          "[p] # comment after a header\n"
                          "key1 = value1 # inline comment\n"
                          "key2 = value2 ; inline comment\n"
                          "key3 = pass#word;no-space-so-not-a-comment\n"
                          "   # indented comment\n"
                          "key4 = v4\n");
    assert_string_equal(ini_get(ini, "p", "key1"), "value1");
    assert_string_equal(ini_get(ini, "p", "key2"), "value2");
    assert_string_equal(ini_get(ini, "p", "key3"), "pass#word;no-space-so-not-a-comment");
    assert_string_equal(ini_get(ini, "p", "key4"), "v4");
    ini_free(ini);
}

static void test_profile_sections_in_config(void **state)
{
    (void)state;
    ini_file *ini = parse("[default]\nregion = us-west-2\n"
                          "[profile   dev]\nregion = eu-central-1\n"
                          "[prod]\nregion = ap-south-1\n");
    /* config file: "[profile NAME]", "[default]"; a bare "[prod]" is not a profile */
    assert_string_equal(ini_config_profile_section(ini, "dev"), "profile dev");
    assert_string_equal(ini_get(ini, ini_config_profile_section(ini, "dev"), "region"), "eu-central-1");
    assert_string_equal(ini_get(ini, ini_config_profile_section(ini, "default"), "region"), "us-west-2");
    assert_null(ini_config_profile_section(ini, "prod"));
    assert_null(ini_get(ini, ini_config_profile_section(ini, "prod"), "region"));
    ini_free(ini);

    ini = parse("[profile default]\nregion = from-profile-default\n");
    assert_string_equal(ini_get(ini, ini_config_profile_section(ini, "default"), "region"), "from-profile-default");
    ini_free(ini);
}

static void test_overrides_and_repeated_sections(void **state)
{
    (void)state;
    ini_file *ini = parse("[a]\nk = 1\n[b]\nk = 2\n[a]\nk = 3\nother = x\n");
    assert_string_equal(ini_get(ini, "a", "k"), "3");
    assert_string_equal(ini_get(ini, "a", "other"), "x");
    assert_string_equal(ini_get(ini, "b", "k"), "2");
    ini_free(ini);
}

static void test_continuation_and_malformed_lines(void **state)
{
    (void)state;
    ini_file *ini = parse("orphan = before any section\n"
                          "[p]\n"
                          "s3 =\n"
                          "  max_concurrent_requests = 20\n"
                          "  addressing_style = path\n"
                          "no equals sign here\n"
                          "= no key\n"
                          "after = ok\n"
                          "[broken\n"
                          "hidden = yes\n"
                          "[q]\nlast=1");
    assert_string_equal(ini_get(ini, "p", "s3"), "max_concurrent_requests = 20\naddressing_style = path");
    assert_string_equal(ini_get(ini, "p", "after"), "ok");
    assert_null(ini_get(ini, "p", "hidden"));
    assert_null(ini_get(ini, "broken", "hidden"));
    assert_string_equal(ini_get(ini, "q", "last"), "1");    /* no final newline */
    assert_false(ini_has_section(ini, ""));
    ini_free(ini);
}

static void test_empty_value_and_null_safety(void **state)
{
    (void)state;
    ini_file *ini = parse("[p]\nempty =\n");
    assert_string_equal(ini_get(ini, "p", "empty"), "");
    assert_null(ini_get(NULL, "p", "empty"));
    assert_false(ini_has_section(NULL, "p"));
    assert_null(ini_config_profile_section(NULL, "p"));
    ini_free(ini);
    ini_free(NULL);
}

static void test_load_files(void **state)
{
    (void)state;
    aws_error err;
    char path[] = "/tmp/test_ini_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[x]\nkey = from file\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    ini_file *ini = ini_load(path, &err);
    assert_non_null(ini);
    assert_string_equal(ini_get(ini, "x", "key"), "from file");
    ini_free(ini);
    unlink(path);

    /* a missing file is no error, just no settings */
    assert_null(ini_load(path, &err));
    assert_int_equal(err.kind, AWS_OK);
    /* a directory cannot be read */
    assert_null(ini_load("/", &err));
    assert_int_equal(err.kind, AWS_ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections_keys_and_whitespace),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_profile_sections_in_config),
        cmocka_unit_test(test_overrides_and_repeated_sections),
        cmocka_unit_test(test_continuation_and_malformed_lines),
        cmocka_unit_test(test_empty_value_and_null_safety),
        cmocka_unit_test(test_load_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
