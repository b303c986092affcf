/* The local key service answers like AWS KMS (per the KMS API reference for GenerateDataKey, Decrypt
 * and DescribeKey): data keys round-trip only under the identical encryption context (order of pairs
 * irrelevant), anything else is InvalidCiphertextException; a KeyId naming another key is
 * IncorrectKeyException; unknown keys are NotFoundException; disabled keys are DisabledException. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms.h"
#include "kms_local.h"

typedef struct {
    kms_client *kms;
    kv_list context;
    char default_arn[256];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !(f->kms = kms_client_new_local()))
        return -1;
    kv_list_init(&f->context);
    aws_error err;
    int enabled = 0;
    if (f->kms->ops->describe_key(f->kms, KMS_LOCAL_ALIAS, f->default_arn, sizeof f->default_arn, &enabled, &err))
        return -1;
    if (kv_list_add(&f->context, "kms_cmk_id", f->default_arn) != 0 ||
        kv_list_add(&f->context, "aws:x-amz-cek-alg", "AES/CBC/PKCS5Padding") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kv_list_free(&f->context);
    f->kms->ops->destroy(f->kms);
    free(f);
    return 0;
}

typedef struct {
    secure_buf *key;
    uint8_t blob[512];
    size_t blob_len;
} data_key;

static void generate(fixture *f, const char *key_id, const kv_list *context, data_key *out)
{
    aws_error err;
    assert_int_equal(f->kms->ops->generate_data_key(f->kms, key_id, context, &out->key, out->blob, sizeof out->blob,
                                                    &out->blob_len, &err), 0);
    assert_non_null(out->key);
    assert_int_equal(out->key->len, 32);
    assert_true(out->blob_len > 32);
}

static int decrypt(fixture *f, const data_key *dk, const kv_list *context, const char *key_id, secure_buf **out,
                   aws_error *err)
{
    return f->kms->ops->decrypt(f->kms, dk->blob, dk->blob_len, context, key_id, out, err);
}

static void expect_invalid_ciphertext(int rc, const aws_error *err, const secure_buf *out)
{
    assert_int_equal(rc, AWS_ERR_SERVICE);
    assert_int_equal(err->kind, AWS_ERR_SERVICE);
    assert_int_equal(err->http_status, 400);
    assert_string_equal(err->code, "InvalidCiphertextException");
    assert_null(out);
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    data_key dk;
    generate(f, f->default_arn, &f->context, &dk);
    /* The plaintext key does not appear in the blob (it is wrapped, not stored). */
    assert_null(memmem(dk.blob, dk.blob_len, dk.key->bytes, 32));

    secure_buf *back = NULL;
    aws_error err;
    assert_int_equal(decrypt(f, &dk, &f->context, NULL, &back, &err), 0);
    assert_memory_equal(back->bytes, dk.key->bytes, 32);
    secure_buf_free(back);

    /* KMS compares contexts as maps: the same pairs in another order decrypt. */
    kv_list reordered;
    kv_list_init(&reordered);
    assert_int_equal(kv_list_add(&reordered, "aws:x-amz-cek-alg", "AES/CBC/PKCS5Padding"), 0);
    assert_int_equal(kv_list_add(&reordered, "kms_cmk_id", f->default_arn), 0);
    assert_int_equal(decrypt(f, &dk, &reordered, f->default_arn, &back, &err), 0);
    assert_memory_equal(back->bytes, dk.key->bytes, 32);
    secure_buf_free(back);
    kv_list_free(&reordered);

    /* Also when the values are equal and only the names order the pairs. */
    kv_list same_values, swapped;
    kv_list_init(&same_values);
    kv_list_init(&swapped);
    kv_list_add(&same_values, "x", "1");
    kv_list_add(&same_values, "y", "1");
    kv_list_add(&swapped, "y", "1");
    kv_list_add(&swapped, "x", "1");
    data_key dk3;
    generate(f, KMS_LOCAL_ALIAS, &same_values, &dk3);
    assert_int_equal(decrypt(f, &dk3, &swapped, NULL, &back, &err), 0);
    assert_memory_equal(back->bytes, dk3.key->bytes, 32);
    secure_buf_free(back);
    secure_buf_free(dk3.key);
    kv_list_free(&same_values);
    kv_list_free(&swapped);

    /* A second data key is fresh: different key and different blob. */
    data_key dk2;
    generate(f, KMS_LOCAL_ALIAS, &f->context, &dk2);
    assert_memory_not_equal(dk.key->bytes, dk2.key->bytes, 32);
    assert_memory_not_equal(dk.blob, dk2.blob, dk.blob_len);
    secure_buf_free(dk.key);
    secure_buf_free(dk2.key);

    /* No context at all is a context too: empty must match empty. */
    generate(f, f->default_arn, NULL, &dk);
    kv_list empty;
    kv_list_init(&empty);
    assert_int_equal(decrypt(f, &dk, &empty, NULL, &back, &err), 0);
    assert_memory_equal(back->bytes, dk.key->bytes, 32);
    secure_buf_free(back);
    back = NULL;
    expect_invalid_ciphertext(decrypt(f, &dk, &f->context, NULL, &back, &err), &err, back);
    secure_buf_free(dk.key);
}

static void test_wrong_context(void **state)
{
    fixture *f = *state;
    data_key dk;
    generate(f, f->default_arn, &f->context, &dk);
    aws_error err;
    secure_buf *back = NULL;

    kv_list changed;   /* same names, one value differs in case only: KMS is case-sensitive */
    kv_list_init(&changed);
    kv_list_add(&changed, "kms_cmk_id", f->default_arn);
    kv_list_add(&changed, "aws:x-amz-cek-alg", "AES/CBC/PKCS5PADDING");
    expect_invalid_ciphertext(decrypt(f, &dk, &changed, NULL, &back, &err), &err, back);
    kv_list_free(&changed);

    kv_list fewer;
    kv_list_init(&fewer);
    kv_list_add(&fewer, "kms_cmk_id", f->default_arn);
    expect_invalid_ciphertext(decrypt(f, &dk, &fewer, NULL, &back, &err), &err, back);
    expect_invalid_ciphertext(decrypt(f, &dk, NULL, NULL, &back, &err), &err, back);

    kv_list more;
    kv_list_init(&more);
    kv_list_copy(&more, &f->context);
    kv_list_add(&more, "extra", "1");
    expect_invalid_ciphertext(decrypt(f, &dk, &more, NULL, &back, &err), &err, back);
    kv_list_free(&more);

    /* Pairs whose concatenation is equal must still differ: "a"="bc" is not "ab"="c". */
    data_key dk2;
    kv_list one;
    kv_list_init(&one);
    kv_list_add(&one, "a", "bc");
    generate(f, KMS_LOCAL_ALIAS, &one, &dk2);
    kv_list other;
    kv_list_init(&other);
    kv_list_add(&other, "ab", "c");
    expect_invalid_ciphertext(decrypt(f, &dk2, &other, NULL, &back, &err), &err, back);
    kv_list_free(&one);
    kv_list_free(&other);
    kv_list_free(&fewer);
    secure_buf_free(dk.key);
    secure_buf_free(dk2.key);
}

static void test_tampered_blobs(void **state)
{
    fixture *f = *state;
    data_key dk;
    generate(f, f->default_arn, &f->context, &dk);
    aws_error err;
    secure_buf *back = NULL;
    /* Every single flipped byte, header included, is detected. */
    for (size_t i = 0; i < dk.blob_len; i++) {
        data_key bad = dk;
        bad.blob[i] ^= 0x01;
        back = NULL;
        int rc = decrypt(f, &bad, &f->context, NULL, &back, &err);
        assert_int_not_equal(rc, 0);
        assert_null(back);
        assert_string_equal(err.code, "InvalidCiphertextException");
    }
    data_key truncated = dk;
    truncated.blob_len--;
    expect_invalid_ciphertext(decrypt(f, &truncated, &f->context, NULL, &back, &err), &err, back);
    data_key empty = dk;
    empty.blob_len = 0;
    expect_invalid_ciphertext(decrypt(f, &empty, &f->context, NULL, &back, &err), &err, back);
    secure_buf_free(dk.key);
}

static void test_blob_of_another_key_or_instance(void **state)
{
    fixture *f = *state;
    char second_arn[256];
    assert_int_equal(kms_local_create_key(f->kms, second_arn, sizeof second_arn), 0);
    assert_string_not_equal(second_arn, f->default_arn);
    data_key dk;
    generate(f, second_arn, &f->context, &dk);
    aws_error err;
    secure_buf *back = NULL;
    /* Without a KeyId the blob names its own key. */
    assert_int_equal(decrypt(f, &dk, &f->context, NULL, &back, &err), 0);
    assert_memory_equal(back->bytes, dk.key->bytes, 32);
    secure_buf_free(back);
    back = NULL;
    /* With the KeyId of another key KMS refuses. */
    assert_int_equal(decrypt(f, &dk, &f->context, f->default_arn, &back, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "IncorrectKeyException");
    assert_int_equal(err.http_status, 400);
    assert_null(back);
    assert_int_equal(decrypt(f, &dk, &f->context, KMS_LOCAL_ALIAS, &back, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "IncorrectKeyException");
    /* A KeyId that does not exist. */
    assert_int_equal(decrypt(f, &dk, &f->context, "alias/nope", &back, &err), AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NotFoundException");

    /* Another service instance cannot open this blob: its key does not exist there. */
    kms_client *other = kms_client_new_local();
    assert_non_null(other);
    assert_int_equal(other->ops->decrypt(other, dk.blob, dk.blob_len, &f->context, NULL, &back, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidCiphertextException");
    assert_null(back);
    other->ops->destroy(other);
    secure_buf_free(dk.key);
}

static int looks_like_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static void test_describe_key(void **state)
{
    fixture *f = *state;
    const char *prefix = "arn:aws:kms:local:000000000000:key/";
    assert_int_equal(strncmp(f->default_arn, prefix, strlen(prefix)), 0);
    const char *id = f->default_arn + strlen(prefix);
    assert_true(looks_like_uuid(id));

    char alias_arn[256];
    snprintf(alias_arn, sizeof alias_arn, "arn:aws:kms:local:000000000000:%s", KMS_LOCAL_ALIAS);
    const char *spellings[] = { id, f->default_arn, KMS_LOCAL_ALIAS, alias_arn };
    for (size_t i = 0; i < 4; i++) {
        char arn[256] = "";
        int enabled = -1;
        aws_error err;
        assert_int_equal(f->kms->ops->describe_key(f->kms, spellings[i], arn, sizeof arn, &enabled, &err), 0);
        assert_string_equal(arn, f->default_arn);
        assert_int_equal(enabled, 1);
    }
    const char *unknown[] = { "alias/other", "00000000-0000-4000-8000-000000000000", "", "key/", "arn:aws:kms:local:000000000000:key/x" };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        char arn[256];
        int enabled;
        aws_error err;
        assert_int_equal(f->kms->ops->describe_key(f->kms, unknown[i], arn, sizeof arn, &enabled, &err), AWS_ERR_NOT_FOUND);
        assert_string_equal(err.code, "NotFoundException");
    }
    char small[10];
    aws_error err;
    assert_int_not_equal(f->kms->ops->describe_key(f->kms, KMS_LOCAL_ALIAS, small, sizeof small, NULL, &err), 0);
}

static void test_generate_errors(void **state)
{
    fixture *f = *state;
    secure_buf *key = NULL;
    uint8_t blob[512];
    size_t blob_len = 0;
    aws_error err;
    assert_int_equal(f->kms->ops->generate_data_key(f->kms, "alias/missing", &f->context, &key, blob, sizeof blob,
                                                    &blob_len, &err), AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NotFoundException");
    assert_null(key);
    assert_int_equal(f->kms->ops->generate_data_key(f->kms, KMS_LOCAL_ALIAS, &f->context, &key, blob, 16, &blob_len,
                                                    &err), AWS_ERR_ARGUMENT);
    assert_null(key);
    assert_int_equal(blob_len, 0);
}

static void test_disabled_key(void **state)
{
    fixture *f = *state;
    data_key dk;
    generate(f, f->default_arn, &f->context, &dk);
    assert_int_equal(kms_local_disable_key(f->kms, f->default_arn), 0);
    aws_error err;
    secure_buf *back = NULL;
    assert_int_equal(decrypt(f, &dk, &f->context, NULL, &back, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "DisabledException");
    assert_null(back);
    secure_buf *key = NULL;
    uint8_t blob[512];
    size_t blob_len;
    assert_int_equal(f->kms->ops->generate_data_key(f->kms, KMS_LOCAL_ALIAS, &f->context, &key, blob, sizeof blob,
                                                    &blob_len, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "DisabledException");
    assert_null(key);
    int enabled = -1;
    char arn[256];
    assert_int_equal(f->kms->ops->describe_key(f->kms, KMS_LOCAL_ALIAS, arn, sizeof arn, &enabled, &err), 0);
    assert_int_equal(enabled, 0);
    /* Re-enabling brings the same key back: old blobs decrypt again. */
    assert_int_equal(kms_local_enable_key(f->kms, KMS_LOCAL_ALIAS), 0);
    assert_int_equal(decrypt(f, &dk, &f->context, NULL, &back, &err), 0);
    assert_memory_equal(back->bytes, dk.key->bytes, 32);
    secure_buf_free(back);
    secure_buf_free(dk.key);
    assert_int_equal(kms_local_disable_key(f->kms, "alias/none"), -1);
}

static void test_counts(void **state)
{
    fixture *f = *state;
    kms_local_counts before, after;
    assert_int_equal(kms_local_stats(f->kms, &before), 0);
    data_key dk;
    generate(f, f->default_arn, &f->context, &dk);
    aws_error err;
    secure_buf *back = NULL;
    assert_int_equal(decrypt(f, &dk, &f->context, NULL, &back, &err), 0);
    secure_buf_free(back);
    back = NULL;
    assert_int_not_equal(decrypt(f, &dk, NULL, NULL, &back, &err), 0);
    assert_int_equal(kms_local_stats(f->kms, &after), 0);
    assert_int_equal(after.generate_data_key - before.generate_data_key, 1);
    assert_int_equal(after.decrypt - before.decrypt, 2);
    assert_int_equal(after.failed - before.failed, 1);
    secure_buf_free(dk.key);
}

static void test_injected_failures(void **state)
{
    fixture *f = *state;
    data_key dk;
    generate(f, KMS_LOCAL_ALIAS, &f->context, &dk);
    /* Throttle GenerateDataKey twice after one good call; Decrypt is not affected. */
    assert_int_equal(kms_local_inject_failure(f->kms, KMS_LOCAL_OP_GENERATE, 1, 2, AWS_ERR_SERVICE, 400,
                                              "ThrottlingException"), 0);
    secure_buf *key = NULL, *back = NULL;
    uint8_t blob[512];
    size_t blob_len;
    aws_error err;
    int expected[] = { 0, AWS_ERR_SERVICE, AWS_ERR_SERVICE, 0 };
    for (int i = 0; i < 4; i++) {
        int rc = f->kms->ops->generate_data_key(f->kms, KMS_LOCAL_ALIAS, &f->context, &key, blob, sizeof blob,
                                                &blob_len, &err);
        assert_int_equal(rc, expected[i]);
        if (rc) {
            assert_null(key);
            assert_string_equal(err.code, "ThrottlingException");
            assert_string_equal(err.message, "injected fault");
            assert_int_equal(err.http_status, 400);
        }
        secure_buf_free(key);
        key = NULL;
        assert_int_equal(decrypt(f, &dk, &f->context, NULL, &back, &err), 0);
        secure_buf_free(back);
        back = NULL;
    }
    /* An outage of Decrypt and DescribeKey, forever, until removed. */
    assert_int_equal(kms_local_inject_failure(f->kms, KMS_LOCAL_OP_DECRYPT | KMS_LOCAL_OP_DESCRIBE, 0, -1,
                                              AWS_ERR_NETWORK, 0, ""), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(decrypt(f, &dk, &f->context, NULL, &back, &err), AWS_ERR_NETWORK);
    char arn[256];
    int enabled;
    assert_int_equal(f->kms->ops->describe_key(f->kms, KMS_LOCAL_ALIAS, arn, sizeof arn, &enabled, &err), AWS_ERR_NETWORK);
    assert_int_equal(kms_local_inject_failure(f->kms, 0, 0, 0, AWS_OK, 0, NULL), 0);
    assert_int_equal(decrypt(f, &dk, &f->context, NULL, &back, &err), 0);
    assert_memory_equal(back->bytes, dk.key->bytes, 32);
    secure_buf_free(back);
    secure_buf_free(dk.key);
}

#define KMS_THREADS 4
#define KMS_ROUNDS 300

static void *round_trips(void *arg)
{
    fixture *f = arg;
    for (int i = 0; i < KMS_ROUNDS; i++) {
        secure_buf *key = NULL, *back = NULL;
        uint8_t blob[512];
        size_t blob_len;
        aws_error err;
        if (f->kms->ops->generate_data_key(f->kms, KMS_LOCAL_ALIAS, &f->context, &key, blob, sizeof blob, &blob_len,
                                           &err) != 0)
            return (void *)1;
        int bad = f->kms->ops->decrypt(f->kms, blob, blob_len, &f->context, NULL, &back, &err) != 0 ||
                  memcmp(back->bytes, key->bytes, 32) != 0;
        secure_buf_free(key);
        secure_buf_free(back);
        if (bad)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_round_trips(void **state)
{
    fixture *f = *state;
    pthread_t t[KMS_THREADS];
    for (int i = 0; i < KMS_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, round_trips, f), 0);
    /* Keys created meanwhile must not disturb the default key's users. */
    for (int i = 0; i < 20; i++) {
        char arn[256];
        assert_int_equal(kms_local_create_key(f->kms, arn, sizeof arn), 0);
    }
    for (int i = 0; i < KMS_THREADS; i++) {
        void *failed = (void *)1;
        pthread_join(t[i], &failed);
        assert_null(failed);
    }
}

int main(void)
{
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_of_another_key_or_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describe_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_round_trips, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
