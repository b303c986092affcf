/* Unit tests of the CSE envelope: one test per validation rule of docs/format.md (each cse_status the
 * parser can return is produced here), the KMS contexts per wrap algorithm, the exact metadata emitted
 * for each write profile, instruction files, and a mutation run that must never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "envelope.h"

#define ARN "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
#define IV16_B64 "AAECAwQFBgcICQoLDA0ODw=="          /* bytes 00..0f */
#define IV12_B64 "AAECAwQFBgcICQoL"                  /* bytes 00..0b */
#define BLOB_B64 "YmxvYi1ieXRlcw=="                  /* "blob-bytes" */
#define MATDESC "{\"kms_cmk_id\":\"" ARN "\"}"

/* The metadata a KMS-profile object carries, as S3 returns it (names lower case, without prefix),
 * plus an unrelated entry that the parser must ignore. */
static void valid_kms_metadata(kv_list *md)
{
    kv_list_init(md);
    assert_int_equal(kv_list_add(md, "x-amz-key-v2", BLOB_B64), 0);
    assert_int_equal(kv_list_add(md, "x-amz-iv", IV16_B64), 0);
    assert_int_equal(kv_list_add(md, "x-amz-cek-alg", "AES/CBC/PKCS5Padding"), 0);
    assert_int_equal(kv_list_add(md, "x-amz-wrap-alg", "kms"), 0);
    assert_int_equal(kv_list_add(md, "x-amz-matdesc", MATDESC), 0);
    assert_int_equal(kv_list_add(md, "s3csefs-mode", "0644"), 0);
}

/* Parses the valid metadata with one field replaced (value NULL = removed). */
static cse_status parse_with(const char *name, const char *value, cse_envelope *env)
{
    kv_list md;
    valid_kms_metadata(&md);
    if (value == NULL)
        kv_list_remove(&md, name);
    else
        assert_int_equal(kv_list_set(&md, name, value), 0);
    cse_status st = cse_envelope_parse_metadata(&md, env);
    kv_list_free(&md);
    return st;
}

static cse_status status_with(const char *name, const char *value)
{
    cse_envelope env;
    cse_status st = parse_with(name, value, &env);
    if (st == CSE_OK)
        cse_envelope_free(&env);
    return st;
}

static void test_valid_kms_envelope(void **state)
{
    (void)state;
    cse_envelope env;
    assert_int_equal(parse_with("x-amz-unencrypted-content-length", "12345", &env), CSE_OK);
    assert_int_equal(env.key_version, 2);
    assert_int_equal(env.encrypted_key_len, 10);
    assert_memory_equal(env.encrypted_key, "blob-bytes", 10);
    assert_int_equal(env.iv_len, 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(env.iv[i], i);
    assert_int_equal(env.cek_alg, CSE_CEK_AES_CBC);
    assert_int_equal(env.wrap_alg, CSE_WRAP_KMS);
    assert_int_equal(env.matdesc.count, 1);
    assert_string_equal(kv_list_get(&env.matdesc, "kms_cmk_id"), ARN);
    assert_int_equal(env.has_plain_length, 1);
    assert_int_equal(env.plain_length, 12345);
    assert_int_equal(env.tag_len_bits, 0);
    char text[256];
    cse_envelope_describe(&env, text, sizeof(text));
    assert_string_equal(text, "v2 kms AES/CBC/PKCS5Padding key=" ARN);

    kv_list ctx[2];
    size_t count = 0;
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_OK);
    assert_int_equal(count, 1);
    assert_true(kv_list_equal(&ctx[0], &env.matdesc));
    kv_list_free(&ctx[0]);
    kv_list_free(&ctx[1]);
    cse_envelope_free(&env);
}

static void test_names_match_case_insensitively(void **state)
{
    (void)state;
    kv_list md;
    kv_list_init(&md);
    assert_int_equal(kv_list_add(&md, "X-Amz-Key-V2", BLOB_B64), 0);
    assert_int_equal(kv_list_add(&md, "X-AMZ-IV", IV16_B64), 0);
    assert_int_equal(kv_list_add(&md, "x-amz-MATDESC", MATDESC), 0);
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_OK);
    assert_int_equal(env.key_version, 2);
    cse_envelope_free(&env);
    kv_list_free(&md);
}

static void test_v2_key_preferred_over_v1(void **state)
{
    (void)state;
    kv_list md;
    valid_kms_metadata(&md);
    assert_int_equal(kv_list_add(&md, "x-amz-key", "b3RoZXI="), 0);     /* "other" */
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_OK);
    assert_int_equal(env.key_version, 2);
    assert_memory_equal(env.encrypted_key, "blob-bytes", 10);
    cse_envelope_free(&env);
    /* A broken x-amz-key-v2 is an error, not a reason to fall back to x-amz-key. */
    kv_list_set(&md, "x-amz-key-v2", "!!!!");
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_BAD_BASE64);
    kv_list_free(&md);
}

static void test_v1_legacy_envelope_and_contexts(void **state)
{
    (void)state;
    kv_list md;
    kv_list_init(&md);
    assert_int_equal(kv_list_add(&md, "x-amz-key", BLOB_B64), 0);
    assert_int_equal(kv_list_add(&md, "x-amz-iv", IV16_B64), 0);
    assert_int_equal(kv_list_add(&md, "x-amz-matdesc", "{\"kms_cmk_id\": \"" ARN "\"}"), 0);
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_OK);
    assert_int_equal(env.key_version, 1);
    assert_int_equal(env.cek_alg, CSE_CEK_AES_CBC);
    assert_int_equal(env.wrap_alg, CSE_WRAP_ABSENT);
    assert_int_equal(env.has_plain_length, 0);
    kv_list ctx[2];
    size_t count = 0;
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_OK);
    assert_int_equal(count, 2);                            /* matdesc first, then no context */
    assert_string_equal(kv_list_get(&ctx[0], "kms_cmk_id"), ARN);
    assert_int_equal(ctx[0].count, 1);
    assert_int_equal(ctx[1].count, 0);
    kv_list_free(&ctx[0]);
    kv_list_free(&ctx[1]);
    cse_envelope_free(&env);

    /* Without a matdesc only the empty context is tried. */
    kv_list_remove(&md, "x-amz-matdesc");
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_OK);
    assert_int_equal(env.matdesc.count, 0);
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_OK);
    assert_int_equal(count, 1);
    assert_int_equal(ctx[0].count, 0);
    kv_list_free(&ctx[0]);
    kv_list_free(&ctx[1]);
    cse_envelope_free(&env);
    kv_list_free(&md);
}

static void test_not_encrypted(void **state)
{
    (void)state;
    kv_list md;
    valid_kms_metadata(&md);
    kv_list_remove(&md, "x-amz-key-v2");
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_NOT_ENCRYPTED);
    kv_list_free(&md);
    kv_list_init(&md);
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_NOT_ENCRYPTED);
    assert_int_equal(cse_envelope_parse_metadata(NULL, &env), CSE_ERR_ARGUMENT);
}

static void test_bad_base64(void **state)
{
    (void)state;
    assert_int_equal(status_with("x-amz-key-v2", "YmxvYi1ieXRlcw="), CSE_ERR_BAD_BASE64);    /* length */
    assert_int_equal(status_with("x-amz-key-v2", "YmxvYi1ieXRlcw==\n"), CSE_ERR_BAD_BASE64); /* newline */
    assert_int_equal(status_with("x-amz-key-v2", "Ym*vYi1ieXRlcw=="), CSE_ERR_BAD_BASE64);
    assert_int_equal(status_with("x-amz-key-v2", "YmxvYi1ieXRlcx=="), CSE_ERR_BAD_BASE64);   /* stray bits */
    assert_int_equal(status_with("x-amz-iv", "AAECAwQFBgcICQoLDA0OD-=="), CSE_ERR_BAD_BASE64);
    assert_int_equal(status_with("x-amz-iv", " AAECAwQFBgcICQoLDA0ODw=="), CSE_ERR_BAD_BASE64);
}

static void test_empty_or_huge_key_blob(void **state)
{
    (void)state;
    assert_int_equal(status_with("x-amz-key-v2", ""), CSE_ERR_EMPTY_KEY_BLOB);
    size_t huge = 4 * ((CSE_MAX_KEY_BLOB + 1 + 2) / 3);        /* base64 of CSE_MAX_KEY_BLOB + 1 bytes */
    char *text = malloc(huge + 1);
    memset(text, 'A', huge);
    text[huge] = '\0';
    /* Too large is its own cause, not "empty" (the log line must say which). */
    assert_int_equal(status_with("x-amz-key-v2", text), CSE_ERR_KEY_BLOB_TOO_LARGE);    /* 1026 bytes */
    text[huge - 1] = '=';
    assert_int_equal(status_with("x-amz-key-v2", text), CSE_ERR_KEY_BLOB_TOO_LARGE);    /* 1025 bytes */
    text[huge - 2] = '=';
    cse_envelope env;                                                              /* 1024: the limit */
    assert_int_equal(parse_with("x-amz-key-v2", text, &env), CSE_OK);
    assert_int_equal(env.encrypted_key_len, CSE_MAX_KEY_BLOB);
    cse_envelope_free(&env);
    free(text);
}

/* Key text longer than any base64 of CSE_MAX_KEY_BLOB bytes but within the 2 KiB field limit. */
static void test_key_text_too_long(void **state)
{
    (void)state;
    char text[1401];
    memset(text, 'A', 1400);
    text[1400] = '\0';
    assert_int_equal(status_with("x-amz-key-v2", text), CSE_ERR_KEY_BLOB_TOO_LARGE);
    assert_string_not_equal(cse_strerror(CSE_ERR_KEY_BLOB_TOO_LARGE), cse_strerror(CSE_ERR_EMPTY_KEY_BLOB));
}

static void test_missing_iv(void **state)
{
    (void)state;
    assert_int_equal(status_with("x-amz-iv", NULL), CSE_ERR_MISSING_IV);
}

static void test_iv_length(void **state)
{
    (void)state;
    assert_int_equal(status_with("x-amz-iv", IV12_B64), CSE_ERR_IV_LENGTH);        /* 12 bytes for CBC */
    assert_int_equal(status_with("x-amz-iv", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), CSE_ERR_IV_LENGTH);
    assert_int_equal(status_with("x-amz-iv", ""), CSE_ERR_IV_LENGTH);
    /* GCM needs 12. */
    kv_list md;
    valid_kms_metadata(&md);
    kv_list_set(&md, "x-amz-cek-alg", "AES/GCM/NoPadding");
    kv_list_set(&md, "x-amz-tag-len", "128");
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_IV_LENGTH);
    kv_list_set(&md, "x-amz-iv", IV12_B64);
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_OK);
    assert_int_equal(env.cek_alg, CSE_CEK_AES_GCM);
    assert_int_equal(env.iv_len, 12);
    assert_int_equal(env.tag_len_bits, 128);
    assert_string_equal(cse_cek_alg_name(env.cek_alg), "AES/GCM/NoPadding");
    cse_envelope_free(&env);
    kv_list_free(&md);
}

static void test_unknown_cek_alg(void **state)
{
    (void)state;
    assert_int_equal(status_with("x-amz-cek-alg", "AES/CTR/NoPadding"), CSE_ERR_UNKNOWN_CEK_ALG);
    assert_int_equal(status_with("x-amz-cek-alg", "aes/cbc/pkcs5padding"), CSE_ERR_UNKNOWN_CEK_ALG);
    assert_int_equal(status_with("x-amz-cek-alg", ""), CSE_ERR_UNKNOWN_CEK_ALG);
    assert_int_equal(status_with("x-amz-cek-alg", "AES/CBC/PKCS5Padding "), CSE_ERR_UNKNOWN_CEK_ALG);
    /* Absent means CBC; the PKCS7 spelling (accepted by the Ruby SDK) is the same cipher. */
    assert_int_equal(status_with("x-amz-cek-alg", NULL), CSE_OK);
    assert_int_equal(status_with("x-amz-cek-alg", "AES/CBC/PKCS7Padding"), CSE_OK);
}

static void test_wrap_algorithms(void **state)
{
    (void)state;
    const char *unsupported[] = {"AESWrap", "AES/GCM", "RSA-OAEP-SHA1", "RSA/ECB/OAEPWithSHA-256AndMGF1Padding"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(status_with("x-amz-wrap-alg", unsupported[i]), CSE_ERR_UNSUPPORTED_WRAP_ALG);
    const char *unknown[] = {"KMS", "kms+ctx", "", "kms ", "RSA", "aeswrap"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(status_with("x-amz-wrap-alg", unknown[i]), CSE_ERR_UNKNOWN_WRAP_ALG);
    cse_envelope env;
    assert_int_equal(parse_with("x-amz-wrap-alg", NULL, &env), CSE_OK);
    assert_int_equal(env.wrap_alg, CSE_WRAP_ABSENT);
    cse_envelope_free(&env);
}

static void test_tag_length(void **state)
{
    (void)state;
    assert_int_equal(status_with("x-amz-tag-len", "128"), CSE_ERR_TAG_LENGTH);      /* present for CBC */
    assert_int_equal(status_with("x-amz-tag-len", ""), CSE_ERR_TAG_LENGTH);
    kv_list md;
    valid_kms_metadata(&md);
    kv_list_set(&md, "x-amz-cek-alg", "AES/GCM/NoPadding");
    kv_list_set(&md, "x-amz-iv", IV12_B64);
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_TAG_LENGTH);    /* missing for GCM */
    const char *wrong[] = {"96", "16", "0128", "128 ", "", "256"};
    for (size_t i = 0; i < 6; i++) {
        kv_list_set(&md, "x-amz-tag-len", wrong[i]);
        assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_TAG_LENGTH);
    }
    kv_list_free(&md);
}

static void test_matdesc_json(void **state)
{
    (void)state;
    const char *invalid[] = {"", "{", "{\"kms_cmk_id\":\"a\"", "{\"a\":\"b\"} x", "{'a':'b'}", "kms_cmk_id=a",
                             "{\"a\":\"b\",}"};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_int_equal(status_with("x-amz-matdesc", invalid[i]), CSE_ERR_MATDESC_JSON);
    /* Surrounding JSON whitespace is still JSON. */
    assert_int_equal(status_with("x-amz-matdesc", " {\"a\" : \"b\"}\n"), CSE_OK);
    assert_int_equal(status_with("x-amz-matdesc", "{}"), CSE_OK);
}

static void test_matdesc_not_flat(void **state)
{
    (void)state;
    const char *shapes[] = {"[]", "\"kms_cmk_id\"", "42", "null", "{\"a\":1}", "{\"a\":{\"b\":\"c\"}}",
                            "{\"a\":null}", "{\"a\":[\"b\"]}", "{\"a\":true}", "{\"a\":\"b\",\"a\":\"c\"}"};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        assert_int_equal(status_with("x-amz-matdesc", shapes[i]), CSE_ERR_MATDESC_NOT_FLAT);
}

static void test_kms_context_cek_binding(void **state)
{
    (void)state;
    kv_list md;
    valid_kms_metadata(&md);
    kv_list_set(&md, "x-amz-wrap-alg", "kms+context");
    kv_list_set(&md, "x-amz-cek-alg", "AES/GCM/NoPadding");
    kv_list_set(&md, "x-amz-iv", IV12_B64);
    kv_list_set(&md, "x-amz-tag-len", "128");
    cse_envelope env;
    /* matdesc without aws:x-amz-cek-alg */
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_MATDESC_CEK_MISMATCH);
    kv_list_set(&md, "x-amz-matdesc", "{\"aws:x-amz-cek-alg\":\"AES/CBC/PKCS5Padding\",\"team\":\"db\"}");
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_MATDESC_CEK_MISMATCH);
    kv_list_set(&md, "x-amz-matdesc", "{\"aws:x-amz-cek-alg\":\"AES/GCM/NoPadding\",\"team\":\"db\"}");
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_OK);
    assert_int_equal(env.wrap_alg, CSE_WRAP_KMS_CONTEXT);
    kv_list ctx[2];
    size_t count = 0;
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_OK);
    assert_int_equal(count, 1);
    assert_int_equal(ctx[0].count, 2);          /* the whole matdesc, verbatim */
    assert_string_equal(kv_list_get(&ctx[0], "aws:x-amz-cek-alg"), "AES/GCM/NoPadding");
    assert_string_equal(kv_list_get(&ctx[0], "team"), "db");
    kv_list_free(&ctx[0]);
    kv_list_free(&ctx[1]);
    cse_envelope_free(&env);
    kv_list_free(&md);
}

/* kms_contexts re-checks the binding itself: an envelope built or altered after parsing must not reach
 * KMS with a context naming another content cipher. */
static void test_kms_context_binding_rechecked(void **state)
{
    (void)state;
    cse_envelope env;
    memset(&env, 0, sizeof(env));
    kv_list_init(&env.matdesc);
    env.key_version = 2;
    env.wrap_alg = CSE_WRAP_KMS_CONTEXT;
    env.cek_alg = CSE_CEK_AES_GCM;
    assert_int_equal(kv_list_add(&env.matdesc, "aws:x-amz-cek-alg", "AES/CBC/PKCS5Padding"), 0);
    kv_list ctx[2];
    size_t count = 7;
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_ERR_MATDESC_CEK_MISMATCH);
    assert_int_equal(count, 0);
    env.cek_alg = CSE_CEK_AES_CBC;                      /* now it matches */
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_OK);
    assert_int_equal(count, 1);
    kv_list_free(&ctx[0]);
    kv_list_free(&ctx[1]);
    /* The PKCS7 spelling names the same cipher and the parser accepts it, so the re-check must too. */
    assert_int_equal(kv_list_set(&env.matdesc, "aws:x-amz-cek-alg", "AES/CBC/PKCS7Padding"), 0);
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_OK);
    kv_list_free(&ctx[0]);
    kv_list_free(&ctx[1]);
    assert_int_equal(kv_list_set(&env.matdesc, "aws:x-amz-cek-alg", "AES/GCM/NoPadding"), 0);
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_ERR_MATDESC_CEK_MISMATCH);
    cse_envelope_free(&env);

    /* And the PKCS7 spelling end to end: parse, then contexts. */
    kv_list md;
    valid_kms_metadata(&md);
    kv_list_set(&md, "x-amz-wrap-alg", "kms+context");
    kv_list_set(&md, "x-amz-cek-alg", "AES/CBC/PKCS7Padding");
    kv_list_set(&md, "x-amz-matdesc", "{\"aws:x-amz-cek-alg\":\"AES/CBC/PKCS7Padding\"}");
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_OK);
    assert_int_equal(cse_envelope_kms_contexts(&env, ctx, &count), CSE_OK);
    assert_string_equal(kv_list_get(&ctx[0], "aws:x-amz-cek-alg"), "AES/CBC/PKCS7Padding");
    kv_list_free(&ctx[0]);
    kv_list_free(&ctx[1]);
    cse_envelope_free(&env);
    kv_list_free(&md);
}

static void test_plain_length(void **state)
{
    (void)state;
    const char *bad[] = {"", "-1", "+1", " 1", "1 ", "1e3", "0x10", "12a", "99999999999999999999999",
                         "18446744073709551616", "5497558138881"};    /* last: 5 TiB + 1 */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(status_with("x-amz-unencrypted-content-length", bad[i]), CSE_ERR_BAD_PLAIN_LENGTH);
    cse_envelope env;
    assert_int_equal(parse_with("x-amz-unencrypted-content-length", "0", &env), CSE_OK);
    assert_int_equal(env.has_plain_length, 1);
    assert_int_equal(env.plain_length, 0);
    cse_envelope_free(&env);
    assert_int_equal(parse_with("x-amz-unencrypted-content-length", "5497558138880", &env), CSE_OK);
    assert_int_equal(env.plain_length, (uint64_t)5 << 40);
    cse_envelope_free(&env);
}

static void test_metadata_too_large(void **state)
{
    (void)state;
    /* One field over 2 KiB. */
    char *big = malloc(2200);
    int n = snprintf(big, 2200, "{\"kms_cmk_id\":\"");
    memset(big + n, 'x', 2100);
    strcpy(big + n + 2100 - 3, "\"}");
    assert_int_equal(status_with("x-amz-matdesc", big), CSE_ERR_METADATA_TOO_LARGE);
    /* Each field fits, the envelope together does not. */
    memset(big + n, 'x', 1500);
    strcpy(big + n + 1500, "\"}");
    char *blob = malloc(800);
    memset(blob, 'A', 700);
    blob[700] = '\0';
    kv_list md;
    valid_kms_metadata(&md);
    kv_list_set(&md, "x-amz-matdesc", big);
    kv_list_set(&md, "x-amz-key-v2", blob);
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_ERR_METADATA_TOO_LARGE);
    /* Just under the limit passes. */
    big[n + 1000] = '\0';
    strcat(big, "\"}");
    kv_list_set(&md, "x-amz-matdesc", big);
    assert_int_equal(cse_envelope_parse_metadata(&md, &env), CSE_OK);
    cse_envelope_free(&env);
    kv_list_free(&md);
    free(blob);
    free(big);
}

static void test_instruction_file(void **state)
{
    (void)state;
    const char *good = "{\"x-amz-key-v2\":\"" BLOB_B64 "\",\"x-amz-iv\":\"" IV16_B64 "\","
                       "\"x-amz-cek-alg\":\"AES/CBC/PKCS5Padding\",\"x-amz-wrap-alg\":\"kms\","
                       "\"x-amz-matdesc\":\"{\\\"kms_cmk_id\\\":\\\"" ARN "\\\"}\"}";
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_instruction(good, strlen(good), &env), CSE_OK);
    assert_int_equal(env.key_version, 2);
    assert_int_equal(env.wrap_alg, CSE_WRAP_KMS);
    assert_string_equal(kv_list_get(&env.matdesc, "kms_cmk_id"), ARN);
    cse_envelope_free(&env);

    const char *not_flat[] = {"not json", "[1,2]", "{\"x-amz-key-v2\":1}",
                              "{\"x-amz-matdesc\":{\"kms_cmk_id\":\"a\"},\"x-amz-key-v2\":\"" BLOB_B64 "\"}", ""};
    for (size_t i = 0; i < sizeof(not_flat) / sizeof(not_flat[0]); i++)
        assert_int_equal(cse_envelope_parse_instruction(not_flat[i], strlen(not_flat[i]), &env),
                         CSE_ERR_INSTRUCTION_JSON);
    const char *no_key = "{\"x-amz-iv\":\"" IV16_B64 "\"}";
    assert_int_equal(cse_envelope_parse_instruction(no_key, strlen(no_key), &env), CSE_ERR_NOT_ENCRYPTED);
    /* Field rules apply inside instruction files too. */
    const char *bad_iv = "{\"x-amz-key-v2\":\"" BLOB_B64 "\",\"x-amz-iv\":\"" IV12_B64 "\"}";
    assert_int_equal(cse_envelope_parse_instruction(bad_iv, strlen(bad_iv), &env), CSE_ERR_IV_LENGTH);
    /* The length given is honoured: a truncated buffer is not valid JSON. */
    assert_int_equal(cse_envelope_parse_instruction(good, strlen(good) - 1, &env), CSE_ERR_INSTRUCTION_JSON);
    char *huge = calloc(70000, 1);
    memset(huge, ' ', 69999);
    assert_int_equal(cse_envelope_parse_instruction(huge, 69999, &env), CSE_ERR_METADATA_TOO_LARGE);
    free(huge);
}

/* Names are looked up case-insensitively, so two spellings of one field are a duplicate: otherwise the
 * parser would silently pick one of two different keys. */
static void test_instruction_duplicate_names_any_case(void **state)
{
    (void)state;
    const char *dup = "{\"x-amz-key-v2\":\"AAAA\",\"X-AMZ-KEY-V2\":\"BBBB\",\"x-amz-iv\":\"" IV16_B64 "\","
                      "\"x-amz-matdesc\":\"{}\"}";
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_instruction(dup, strlen(dup), &env), CSE_ERR_INSTRUCTION_JSON);
    const char *dup_iv = "{\"x-amz-key-v2\":\"AAAA\",\"x-amz-iv\":\"" IV16_B64 "\",\"X-Amz-Iv\":\"" IV16_B64 "\"}";
    assert_int_equal(cse_envelope_parse_instruction(dup_iv, strlen(dup_iv), &env), CSE_ERR_INSTRUCTION_JSON);
    /* Encryption-context keys are case-sensitive in KMS: "a" and "A" in a matdesc are two keys. */
    assert_int_equal(parse_with("x-amz-matdesc", "{\"a\":\"1\",\"A\":\"2\"}", &env), CSE_OK);
    assert_int_equal(env.matdesc.count, 2);
    cse_envelope_free(&env);
}

/* A \u0000 escape would be cut off by cJSON's C strings: "a\u0000b" would become "a" and the context sent
 * to KMS would differ from the one written. Refused, wherever it appears. An escaped backslash followed
 * by "u0000" is ordinary text and stays accepted. */
static void test_escaped_nul_refused(void **state)
{
    (void)state;
    assert_int_equal(status_with("x-amz-matdesc", "{\"kms_cmk_id\":\"a\\u0000b\"}"), CSE_ERR_MATDESC_NOT_FLAT);
    assert_int_equal(status_with("x-amz-matdesc", "{\"k\\u0000x\":\"a\"}"), CSE_ERR_MATDESC_NOT_FLAT);
    cse_envelope env;
    assert_int_equal(parse_with("x-amz-matdesc", "{\"kms_cmk_id\":\"a\\\\u0000b\"}", &env), CSE_OK);
    assert_string_equal(kv_list_get(&env.matdesc, "kms_cmk_id"), "a\\u0000b");
    cse_envelope_free(&env);
    assert_int_equal(parse_with("x-amz-matdesc", "{\"kms_cmk_id\":\"a\\u0041b\"}", &env), CSE_OK);
    assert_string_equal(kv_list_get(&env.matdesc, "kms_cmk_id"), "aAb");
    cse_envelope_free(&env);

    const char *in_value = "{\"x-amz-key-v2\":\"" BLOB_B64 "\\u0000\",\"x-amz-iv\":\"" IV16_B64 "\"}";
    assert_int_equal(cse_envelope_parse_instruction(in_value, strlen(in_value), &env), CSE_ERR_INSTRUCTION_JSON);
    const char *in_name = "{\"x-amz-key-v2\\u0000junk\":\"" BLOB_B64 "\",\"x-amz-iv\":\"" IV16_B64 "\"}";
    assert_int_equal(cse_envelope_parse_instruction(in_name, strlen(in_name), &env), CSE_ERR_INSTRUCTION_JSON);
    /* A raw NUL byte inside a string, within the given length. */
    char raw[64];
    int n = snprintf(raw, sizeof(raw), "{\"x-amz-key-v2\":\"%s\"}", BLOB_B64);
    raw[18] = '\0';
    assert_int_equal(cse_envelope_parse_instruction(raw, (size_t)n, &env), CSE_ERR_INSTRUCTION_JSON);
}

static void test_emit_kms_profile_pinned(void **state)
{
    (void)state;
    uint8_t iv[16];
    for (int i = 0; i < 16; i++)
        iv[i] = (uint8_t)i;
    kv_list out;
    kv_list_init(&out);
    assert_int_equal(cse_envelope_emit(CSE_PROFILE_KMS, (const uint8_t *)"blob-bytes", 10, iv, ARN, 12345, &out),
                     CSE_OK);
    const char *expected[][2] = {
        {"x-amz-key-v2", BLOB_B64},
        {"x-amz-iv", IV16_B64},
        {"x-amz-cek-alg", "AES/CBC/PKCS5Padding"},
        {"x-amz-wrap-alg", "kms"},
        {"x-amz-matdesc", "{\"kms_cmk_id\":\"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"}"},
        {"x-amz-unencrypted-content-length", "12345"},
    };
    assert_int_equal(out.count, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(out.items[i].name, expected[i][0]);
        assert_string_equal(out.items[i].value, expected[i][1]);
    }
    /* What we write, we read back. */
    cse_envelope env;
    assert_int_equal(cse_envelope_parse_metadata(&out, &env), CSE_OK);
    assert_int_equal(env.plain_length, 12345);
    cse_envelope_free(&env);
    kv_list_free(&out);

    /* Multipart: no length. Entries are appended after existing ones. */
    assert_int_equal(kv_list_add(&out, "s3csefs-mtime", "1"), 0);
    assert_int_equal(cse_envelope_emit(CSE_PROFILE_KMS, (const uint8_t *)"blob-bytes", 10, iv, ARN, -1, &out),
                     CSE_OK);
    assert_int_equal(out.count, 6);
    assert_string_equal(out.items[0].name, "s3csefs-mtime");
    assert_null(kv_list_get(&out, "x-amz-unencrypted-content-length"));
    kv_list_free(&out);
}

static void test_emit_legacy_profile_pinned(void **state)
{
    (void)state;
    uint8_t iv[16];
    for (int i = 0; i < 16; i++)
        iv[i] = (uint8_t)i;
    kv_list out;
    kv_list_init(&out);
    assert_int_equal(cse_envelope_emit(CSE_PROFILE_LEGACY, (const uint8_t *)"blob-bytes", 10, iv, ARN, 0, &out),
                     CSE_OK);
    const char *expected[][2] = {
        {"x-amz-key", BLOB_B64},
        {"x-amz-iv", IV16_B64},
        {"x-amz-matdesc", "{\"kms_cmk_id\":\"" ARN "\"}"},
        {"x-amz-unencrypted-content-length", "0"},
    };
    assert_int_equal(out.count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(out.items[i].name, expected[i][0]);
        assert_string_equal(out.items[i].value, expected[i][1]);
    }
    kv_list_free(&out);
}

static void test_emit_rejects_bad_arguments(void **state)
{
    (void)state;
    uint8_t iv[16] = {0}, blob[CSE_MAX_KEY_BLOB + 1] = {1};
    kv_list out;
    kv_list_init(&out);
    assert_int_equal(kv_list_add(&out, "keep", "me"), 0);
    assert_int_equal(cse_envelope_emit(CSE_PROFILE_KMS, blob, 10, iv, "arn\"x", -1, &out), CSE_ERR_ARGUMENT);
    assert_int_equal(cse_envelope_emit(CSE_PROFILE_KMS, blob, 10, iv, "", -1, &out), CSE_ERR_ARGUMENT);
    assert_int_equal(cse_envelope_emit(CSE_PROFILE_KMS, blob, 0, iv, ARN, -1, &out), CSE_ERR_ARGUMENT);
    assert_int_equal(cse_envelope_emit(CSE_PROFILE_KMS, blob, CSE_MAX_KEY_BLOB + 1, iv, ARN, -1, &out),
                     CSE_ERR_ARGUMENT);
    assert_int_equal(cse_envelope_emit((cse_write_profile)7, blob, 10, iv, ARN, -1, &out), CSE_ERR_ARGUMENT);
    /* Too large together: the caller's list is left untouched. */
    char long_arn[1600];
    memset(long_arn, 'a', sizeof(long_arn) - 1);
    long_arn[sizeof(long_arn) - 1] = '\0';
    assert_int_equal(cse_envelope_emit(CSE_PROFILE_KMS, blob, CSE_MAX_KEY_BLOB, iv, long_arn, -1, &out),
                     CSE_ERR_METADATA_TOO_LARGE);
    assert_int_equal(out.count, 1);
    assert_string_equal(out.items[0].name, "keep");
    kv_list_free(&out);
}

static void test_write_context(void **state)
{
    (void)state;
    kv_list ctx;
    kv_list_init(&ctx);
    assert_int_equal(cse_write_context(CSE_PROFILE_KMS, ARN, &ctx), CSE_OK);
    assert_int_equal(ctx.count, 1);
    assert_string_equal(ctx.items[0].name, "kms_cmk_id");
    assert_string_equal(ctx.items[0].value, ARN);
    kv_list_free(&ctx);
    assert_int_equal(cse_write_context(CSE_PROFILE_LEGACY, ARN, &ctx), CSE_OK);
    assert_int_equal(ctx.count, 0);
    assert_int_equal(cse_write_context(CSE_PROFILE_KMS, "", &ctx), CSE_ERR_ARGUMENT);
}

static void test_stored_size_checks(void **state)
{
    (void)state;
    cse_envelope env;
    assert_int_equal(parse_with("x-amz-unencrypted-content-length", "17", &env), CSE_OK);
    assert_int_equal(cse_envelope_check_stored_size(&env, 32), CSE_OK);
    assert_int_equal(cse_envelope_check_stored_size(&env, 48), CSE_ERR_BAD_PLAIN_LENGTH);
    assert_int_equal(cse_envelope_check_stored_size(&env, 33), CSE_ERR_CIPHERTEXT_LENGTH);
    assert_int_equal(cse_envelope_check_stored_size(&env, 0), CSE_ERR_CIPHERTEXT_LENGTH);
    env.has_plain_length = 0;
    assert_int_equal(cse_envelope_check_stored_size(&env, 48), CSE_OK);
    env.cek_alg = CSE_CEK_AES_GCM;
    assert_int_equal(cse_envelope_check_stored_size(&env, 15), CSE_ERR_CIPHERTEXT_LENGTH);
    assert_int_equal(cse_envelope_check_stored_size(&env, 16), CSE_OK);
    env.has_plain_length = 1;
    assert_int_equal(cse_envelope_check_stored_size(&env, 33), CSE_OK);
    assert_int_equal(cse_envelope_check_stored_size(&env, 32), CSE_ERR_BAD_PLAIN_LENGTH);
    cse_envelope_free(&env);
}

/* Random bytes (incl. high bytes, quotes, braces) in every field: any status, never a crash or leak. */
static void test_mutations_never_crash(void **state)
{
    (void)state;
    const char *fields[] = {"x-amz-key-v2", "x-amz-key", "x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg",
                            "x-amz-matdesc", "x-amz-tag-len", "x-amz-unencrypted-content-length"};
    const char alphabet[] = "AZaz09+/={}[]\":,\\ \x01\xc3\xa9nul";
    srand(2024);
    int seen[CSE_STATUS_COUNT] = {0};
    for (int round = 0; round < 3000; round++) {
        kv_list md;
        valid_kms_metadata(&md);
        int edits = 1 + rand() % 3;
        for (int e = 0; e < edits; e++) {
            char value[64];
            size_t len = (size_t)rand() % 40;
            for (size_t i = 0; i < len; i++)
                value[i] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
            value[len] = '\0';
            const char *name = fields[(size_t)rand() % 8];
            if (rand() % 5 == 0)
                kv_list_remove(&md, name);
            else
                kv_list_set(&md, name, value);
        }
        cse_envelope env;
        cse_status st = cse_envelope_parse_metadata(&md, &env);
        assert_true(st >= CSE_OK && st < CSE_STATUS_COUNT);
        seen[st]++;
        if (st == CSE_OK)
            cse_envelope_free(&env);
        kv_list_free(&md);

        char json[80];
        size_t len = (size_t)rand() % 60;
        for (size_t i = 0; i < len; i++)
            json[i] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
        st = cse_envelope_parse_instruction(json, len, &env);
        if (st == CSE_OK)
            cse_envelope_free(&env);
    }
    assert_true(seen[CSE_OK] > 0);
    assert_true(seen[CSE_ERR_BAD_BASE64] > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_kms_envelope),
        cmocka_unit_test(test_names_match_case_insensitively),
        cmocka_unit_test(test_v2_key_preferred_over_v1),
        cmocka_unit_test(test_v1_legacy_envelope_and_contexts),
        cmocka_unit_test(test_not_encrypted),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_empty_or_huge_key_blob),
        cmocka_unit_test(test_key_text_too_long),
        cmocka_unit_test(test_missing_iv),
        cmocka_unit_test(test_iv_length),
        cmocka_unit_test(test_unknown_cek_alg),
        cmocka_unit_test(test_wrap_algorithms),
        cmocka_unit_test(test_tag_length),
        cmocka_unit_test(test_matdesc_json),
        cmocka_unit_test(test_matdesc_not_flat),
        cmocka_unit_test(test_kms_context_cek_binding),
        cmocka_unit_test(test_kms_context_binding_rechecked),
        cmocka_unit_test(test_plain_length),
        cmocka_unit_test(test_metadata_too_large),
        cmocka_unit_test(test_instruction_file),
        cmocka_unit_test(test_instruction_duplicate_names_any_case),
        cmocka_unit_test(test_escaped_nul_refused),
        cmocka_unit_test(test_emit_kms_profile_pinned),
        cmocka_unit_test(test_emit_legacy_profile_pinned),
        cmocka_unit_test(test_emit_rejects_bad_arguments),
        cmocka_unit_test(test_write_context),
        cmocka_unit_test(test_stored_size_checks),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
