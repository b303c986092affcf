/* KMS JSON without a server: the exact request bodies (shapes from the KMS API reference), parsing of
 * GenerateDataKey / Decrypt / DescribeKey answers into locked memory, wiping of the answer text, and
 * refusal of malformed answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kms_json.h"

/* base64 of the bytes 0x00..0x1f and of "blob" */
#define KEY_0_TO_31_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define BLOB_B64 "YmxvYg=="

static void test_requests(void **state)
{
    (void)state;
    kv_list ctx;
    kv_list_init(&ctx);
    assert_int_equal(kv_list_add(&ctx, "kms_cmk_id", "arn:aws:kms:us-east-1:123456789012:key/k\"1"), 0);
    char *s = kms_json_generate_data_key_request("arn:aws:kms:us-east-1:123456789012:key/k\"1", &ctx);
    assert_string_equal(s, "{\"KeyId\":\"arn:aws:kms:us-east-1:123456789012:key/k\\\"1\",\"KeySpec\":\"AES_256\","
                           "\"EncryptionContext\":{\"kms_cmk_id\":\"arn:aws:kms:us-east-1:123456789012:key/k\\\"1\"}}");
    free(s);

    kv_list empty;
    kv_list_init(&empty);
    s = kms_json_generate_data_key_request("alias/backups", &empty);
    assert_string_equal(s, "{\"KeyId\":\"alias/backups\",\"KeySpec\":\"AES_256\"}");
    free(s);

    s = kms_json_decrypt_request((const uint8_t *)"blob", 4, &ctx, NULL);
    assert_string_equal(s, "{\"CiphertextBlob\":\"" BLOB_B64 "\",\"EncryptionContext\":"
                           "{\"kms_cmk_id\":\"arn:aws:kms:us-east-1:123456789012:key/k\\\"1\"}}");
    free(s);
    s = kms_json_decrypt_request((const uint8_t *)"blob", 4, NULL, "key-id");
    assert_string_equal(s, "{\"CiphertextBlob\":\"" BLOB_B64 "\",\"KeyId\":\"key-id\"}");
    free(s);
    s = kms_json_describe_key_request("alias/x");
    assert_string_equal(s, "{\"KeyId\":\"alias/x\"}");
    free(s);
    kv_list_free(&ctx);
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void test_data_key_answer(void **state)
{
    (void)state;
    char json[] = "{\"CiphertextBlob\":\"" BLOB_B64 "\",\"KeyId\":\"arn:aws:kms:us-east-1:1:key/k\","
                  "\"Plaintext\":\"" KEY_0_TO_31_B64 "\"}";
    size_t len = strlen(json);
    secure_buf *key = NULL;
    uint8_t blob[16];
    size_t blob_len = 0;
    assert_int_equal(kms_json_parse_data_key(json, len, &key, blob, sizeof blob, &blob_len, NULL), 0);
    assert_non_null(key);
    assert_int_equal(key->len, 32);
    for (int i = 0; i < 32; i++)
        assert_int_equal(key->bytes[i], i);
    assert_int_equal(blob_len, 4);
    assert_memory_equal(blob, "blob", 4);
    assert_true(all_zero(json, len));       /* the text that held the key is gone */
    secure_buf_free(key);
}

static void test_data_key_answer_refused(void **state)
{
    (void)state;
    secure_buf *key = NULL;
    uint8_t blob[16];
    size_t blob_len;
    aws_error err;
    char short_key[] = "{\"CiphertextBlob\":\"" BLOB_B64 "\",\"Plaintext\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\"}";
    assert_int_equal(kms_json_parse_data_key(short_key, strlen(short_key), &key, blob, sizeof blob, &blob_len, &err),
                     AWS_ERR_PARSE);
    assert_null(key);
    char no_blob[] = "{\"Plaintext\":\"" KEY_0_TO_31_B64 "\"}";
    assert_int_equal(kms_json_parse_data_key(no_blob, strlen(no_blob), &key, blob, sizeof blob, &blob_len, &err),
                     AWS_ERR_PARSE);
    char big_blob[] = "{\"CiphertextBlob\":\"" BLOB_B64 "\",\"Plaintext\":\"" KEY_0_TO_31_B64 "\"}";
    assert_int_equal(kms_json_parse_data_key(big_blob, strlen(big_blob), &key, blob, 3, &blob_len, &err),
                     AWS_ERR_ARGUMENT);
    assert_null(key);
    char not_json[] = "Plaintext=" KEY_0_TO_31_B64;
    assert_int_equal(kms_json_parse_data_key(not_json, strlen(not_json), &key, blob, sizeof blob, &blob_len, &err),
                     AWS_ERR_PARSE);
    assert_true(all_zero(not_json, strlen(KEY_0_TO_31_B64)));   /* wiped even when refused */
    char bad_b64[] = "{\"Plaintext\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}";
    assert_int_equal(kms_json_parse_decrypt(bad_b64, strlen(bad_b64), &key, &err), AWS_ERR_PARSE);
}

static void test_decrypt_answer(void **state)
{
    (void)state;
    char json[] = "{\"EncryptionAlgorithm\":\"SYMMETRIC_DEFAULT\",\"KeyId\":\"arn:aws:kms:r:1:key/k\","
                  "\"Plaintext\":\"" KEY_0_TO_31_B64 "\"}";
    size_t len = strlen(json);
    secure_buf *key = NULL;
    assert_int_equal(kms_json_parse_decrypt(json, len, &key, NULL), 0);
    assert_int_equal(key->len, 32);
    assert_int_equal(key->bytes[31], 31);
    assert_true(all_zero(json, len));
    secure_buf_free(key);
}

static void test_describe_answer(void **state)
{
    (void)state;
    const char *enabled = "{\"KeyMetadata\":{\"AWSAccountId\":\"111122223333\",\"Arn\":"
                          "\"arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\","
                          "\"CreationDate\":1.499288695918E9,\"Enabled\":true,\"KeyId\":\"1234abcd\","
                          "\"KeyManager\":\"CUSTOMER\",\"KeyState\":\"Enabled\",\"KeyUsage\":\"ENCRYPT_DECRYPT\"}}";
    char arn[256];
    int on = -1;
    assert_int_equal(kms_json_parse_describe_key(enabled, strlen(enabled), arn, sizeof arn, &on, NULL), 0);
    assert_string_equal(arn, "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab");
    assert_int_equal(on, 1);
    const char *pending = "{\"KeyMetadata\":{\"Arn\":\"arn:aws:kms:r:1:key/x\",\"Enabled\":false,"
                          "\"KeyState\":\"PendingDeletion\"}}";
    assert_int_equal(kms_json_parse_describe_key(pending, strlen(pending), arn, sizeof arn, &on, NULL), 0);
    assert_int_equal(on, 0);
    aws_error err;
    assert_int_equal(kms_json_parse_describe_key(enabled, strlen(enabled), arn, 20, &on, &err), AWS_ERR_ARGUMENT);
    const char *no_arn = "{\"KeyMetadata\":{\"KeyId\":\"x\"}}";
    assert_int_equal(kms_json_parse_describe_key(no_arn, strlen(no_arn), arn, sizeof arn, &on, &err), AWS_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_data_key_answer),
        cmocka_unit_test(test_data_key_answer_refused),
        cmocka_unit_test(test_decrypt_answer),
        cmocka_unit_test(test_describe_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
