/* Parse, validate and emit the S3 client-side-encryption envelope (docs/format.md). Parsing is strict
 * and reports the first invalid field with its own status; the order is fixed (sizes, key, cek-alg,
 * wrap-alg, IV, tag length, matdesc, kms+context binding, plaintext length) so that a given input
 * always yields the same code. */
#include "envelope.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "cbc_stream.h"
#include "gcm.h"
#include "secure_mem.h"

#define CEK_CBC "AES/CBC/PKCS5Padding"
#define CEK_CBC_PKCS7 "AES/CBC/PKCS7Padding"   /* same cipher; the Ruby SDK accepts this spelling too */
#define CEK_GCM "AES/GCM/NoPadding"
#define MATDESC_CEK_NAME "aws:x-amz-cek-alg"
#define S3_METADATA_LIMIT 2048                /* S3: names + values of user metadata, in bytes */
#define INSTRUCTION_FILE_LIMIT (64 * 1024)
#define S3_MAX_OBJECT_SIZE ((uint64_t)5 << 40)

static const char *const unsupported_wrap_algs[] = {
    "AESWrap", "AES/GCM", "RSA-OAEP-SHA1", "RSA/ECB/OAEPWithSHA-256AndMGF1Padding",
};

/* The envelope fields as found, before validation. */
typedef struct {
    const char *key_v2, *key_v1, *iv, *cek_alg, *wrap_alg, *matdesc, *tag_len, *plain_length;
} raw_fields;

static cse_status check_envelope_size(const raw_fields *raw, int metadata_limit)
{
    const char *names[] = {"x-amz-key-v2", "x-amz-key", "x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg",
                           "x-amz-matdesc", "x-amz-tag-len", "x-amz-unencrypted-content-length"};
    const char *values[] = {raw->key_v2, raw->key_v1, raw->iv, raw->cek_alg, raw->wrap_alg,
                            raw->matdesc, raw->tag_len, raw->plain_length};
    size_t total = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (values[i] == NULL)
            continue;
        size_t len = strlen(values[i]);
        if (len > S3_METADATA_LIMIT)
            return CSE_ERR_METADATA_TOO_LARGE;
        total += strlen(names[i]) + len;
    }
    if (metadata_limit && total > S3_METADATA_LIMIT)
        return CSE_ERR_METADATA_TOO_LARGE;
    return CSE_OK;
}

static cse_status decode_key_blob(const char *text, cse_envelope *env)
{
    size_t text_len = strlen(text);
    if (text_len == 0)
        return CSE_ERR_EMPTY_KEY_BLOB;
    if (text_len > base64_encoded_len(CSE_MAX_KEY_BLOB))
        return CSE_ERR_KEY_BLOB_TOO_LARGE;
    /* The longest accepted text decodes to up to 2 bytes more than CSE_MAX_KEY_BLOB. */
    uint8_t decoded[(CSE_MAX_KEY_BLOB + 2) / 3 * 3];
    size_t decoded_len = 0;
    if (base64_decode(text, text_len, decoded, &decoded_len) != 0)
        return CSE_ERR_BAD_BASE64;
    if (decoded_len == 0)
        return CSE_ERR_EMPTY_KEY_BLOB;
    if (decoded_len > CSE_MAX_KEY_BLOB)
        return CSE_ERR_KEY_BLOB_TOO_LARGE;
    memcpy(env->encrypted_key, decoded, decoded_len);
    env->encrypted_key_len = decoded_len;
    return CSE_OK;
}

static cse_status decode_iv(const char *text, cse_envelope *env)
{
    size_t expected = env->cek_alg == CSE_CEK_AES_GCM ? CSE_GCM_IV : CSE_AES_BLOCK;
    size_t text_len = strlen(text);
    uint8_t decoded[24];                     /* a 24-character base64 string decodes to at most 18 bytes */
    size_t decoded_len = 0;
    if (text_len > 24) {
        /* Still tell bad characters apart from a merely long IV. */
        for (size_t i = 0; i < text_len; i++)
            if (!(text[i] == '+' || text[i] == '/' || text[i] == '=' || (text[i] >= '0' && text[i] <= '9') ||
                  (text[i] >= 'A' && text[i] <= 'Z') || (text[i] >= 'a' && text[i] <= 'z')))
                return CSE_ERR_BAD_BASE64;
        return CSE_ERR_IV_LENGTH;
    }
    if (base64_decode(text, text_len, decoded, &decoded_len) != 0)
        return CSE_ERR_BAD_BASE64;
    if (decoded_len != expected)
        return CSE_ERR_IV_LENGTH;
    memcpy(env->iv, decoded, decoded_len);
    env->iv_len = decoded_len;
    return CSE_OK;
}

static cse_status parse_cek_alg(const char *name, cse_envelope *env)
{
    if (name == NULL || strcmp(name, CEK_CBC) == 0 || strcmp(name, CEK_CBC_PKCS7) == 0)
        env->cek_alg = CSE_CEK_AES_CBC;
    else if (strcmp(name, CEK_GCM) == 0)
        env->cek_alg = CSE_CEK_AES_GCM;
    else
        return CSE_ERR_UNKNOWN_CEK_ALG;
    return CSE_OK;
}

static cse_status parse_wrap_alg(const char *name, cse_envelope *env)
{
    if (name == NULL) {
        env->wrap_alg = CSE_WRAP_ABSENT;
        return CSE_OK;
    }
    if (strcmp(name, "kms") == 0) {
        env->wrap_alg = CSE_WRAP_KMS;
        return CSE_OK;
    }
    if (strcmp(name, "kms+context") == 0) {
        env->wrap_alg = CSE_WRAP_KMS_CONTEXT;
        return CSE_OK;
    }
    for (size_t i = 0; i < sizeof(unsupported_wrap_algs) / sizeof(unsupported_wrap_algs[0]); i++)
        if (strcmp(name, unsupported_wrap_algs[i]) == 0)
            return CSE_ERR_UNSUPPORTED_WRAP_ALG;
    return CSE_ERR_UNKNOWN_WRAP_ALG;
}

static cse_status parse_tag_len(const char *text, cse_envelope *env)
{
    if (env->cek_alg == CSE_CEK_AES_GCM) {
        if (text == NULL || strcmp(text, "128") != 0)
            return CSE_ERR_TAG_LENGTH;
        env->tag_len_bits = 128;
    } else {
        if (text != NULL)
            return CSE_ERR_TAG_LENGTH;
        env->tag_len_bits = 0;
    }
    return CSE_OK;
}

static int only_json_whitespace(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return 0;
    return 1;
}

/* cJSON decodes \u0000 and then stores a C string, so everything after it would silently vanish; a raw
 * NUL byte would truncate the same way. Backslashes only occur inside strings of a valid JSON text, so
 * a flat scan of the escapes is exact once the text has parsed. */
static int contains_nul_character(const char *text, size_t len)
{
    if (memchr(text, '\0', len) != NULL)
        return 1;
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] != '\\')
            continue;
        if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
            return 1;
        i++;                          /* skip the escaped character, so "\\u0000" is not an escape */
    }
    return 0;
}

typedef enum { NAMES_EXACT, NAMES_CASE_INSENSITIVE } name_matching;

/* Parses a JSON text that must be an object whose values are all strings, with unique names, into
 * `out`. Names must also differ case-insensitively when the caller will look them up that way, or two
 * spellings of one field would both be accepted and only one of them used. Returns 0, -1 when the text
 * is not JSON, -2 when it is JSON of the wrong shape (including names or values holding a NUL). */
static int parse_flat_json_object(const char *text, size_t len, name_matching names, kv_list *out)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL)
        return -1;
    int result = 0;
    if (end == NULL || !only_json_whitespace(end, text + len)) {
        result = -1;
        goto done;
    }
    if (!cJSON_IsObject(root) || contains_nul_character(text, len)) {
        result = -2;
        goto done;
    }
    const char *(*find)(const kv_list *, const char *) =
        names == NAMES_CASE_INSENSITIVE ? kv_list_get_ci : kv_list_get;
    for (const cJSON *item = root->child; item != NULL; item = item->next) {
        if (!cJSON_IsString(item) || item->string == NULL || item->valuestring == NULL ||
            find(out, item->string) != NULL) {
            result = -2;
            goto done;
        }
        if (kv_list_add(out, item->string, item->valuestring) != 0) {
            result = -3;
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    if (result != 0)
        kv_list_free(out);
    return result;
}

static cse_status parse_matdesc(const char *text, cse_envelope *env)
{
    if (text == NULL)
        return CSE_OK;               /* V1 writers may omit it: an empty description */
    /* KMS encryption-context keys are case-sensitive: "a" and "A" are two keys. */
    switch (parse_flat_json_object(text, strlen(text), NAMES_EXACT, &env->matdesc)) {
    case 0:
        return CSE_OK;
    case -1:
        return CSE_ERR_MATDESC_JSON;
    case -2:
        return CSE_ERR_MATDESC_NOT_FLAT;
    default:
        return CSE_ERR_NO_MEMORY;
    }
}

static cse_status parse_plain_length(const char *text, cse_envelope *env)
{
    if (text == NULL) {
        env->has_plain_length = 0;
        return CSE_OK;
    }
    size_t len = strlen(text);
    if (len == 0 || len > 20)
        return CSE_ERR_BAD_PLAIN_LENGTH;
    uint64_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return CSE_ERR_BAD_PLAIN_LENGTH;
        unsigned digit = (unsigned)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return CSE_ERR_BAD_PLAIN_LENGTH;
        value = value * 10 + digit;
    }
    if (value > S3_MAX_OBJECT_SIZE)      /* no S3 object can hold more */
        return CSE_ERR_BAD_PLAIN_LENGTH;
    env->has_plain_length = 1;
    env->plain_length = value;
    return CSE_OK;
}

static cse_status parse_fields(const raw_fields *raw, cse_envelope *env)
{
    cse_status status;
    env->key_version = raw->key_v2 ? 2 : 1;
    if ((status = decode_key_blob(raw->key_v2 ? raw->key_v2 : raw->key_v1, env)) != CSE_OK)
        return status;
    if ((status = parse_cek_alg(raw->cek_alg, env)) != CSE_OK)
        return status;
    if ((status = parse_wrap_alg(raw->wrap_alg, env)) != CSE_OK)
        return status;
    if (raw->iv == NULL)
        return CSE_ERR_MISSING_IV;
    if ((status = decode_iv(raw->iv, env)) != CSE_OK)
        return status;
    if ((status = parse_tag_len(raw->tag_len, env)) != CSE_OK)
        return status;
    if ((status = parse_matdesc(raw->matdesc, env)) != CSE_OK)
        return status;
    if (env->wrap_alg == CSE_WRAP_KMS_CONTEXT) {
        /* Compare with the name as written: the context must carry exactly that string. */
        const char *bound = kv_list_get(&env->matdesc, MATDESC_CEK_NAME);
        const char *actual = raw->cek_alg ? raw->cek_alg : CEK_CBC;
        if (bound == NULL || strcmp(bound, actual) != 0)
            return CSE_ERR_MATDESC_CEK_MISMATCH;
    }
    return parse_plain_length(raw->plain_length, env);
}

static void envelope_init(cse_envelope *env)
{
    memset(env, 0, sizeof(*env));
    kv_list_init(&env->matdesc);
}

static cse_status parse_from_list(const kv_list *fields, int case_insensitive, int metadata_limit,
                                  cse_envelope *out)
{
    const char *(*get)(const kv_list *, const char *) = case_insensitive ? kv_list_get_ci : kv_list_get;
    raw_fields raw = {
        .key_v2 = get(fields, "x-amz-key-v2"),
        .key_v1 = get(fields, "x-amz-key"),
        .iv = get(fields, "x-amz-iv"),
        .cek_alg = get(fields, "x-amz-cek-alg"),
        .wrap_alg = get(fields, "x-amz-wrap-alg"),
        .matdesc = get(fields, "x-amz-matdesc"),
        .tag_len = get(fields, "x-amz-tag-len"),
        .plain_length = get(fields, "x-amz-unencrypted-content-length"),
    };
    envelope_init(out);
    if (raw.key_v2 == NULL && raw.key_v1 == NULL)
        return CSE_ERR_NOT_ENCRYPTED;
    cse_status status = check_envelope_size(&raw, metadata_limit);
    if (status == CSE_OK)
        status = parse_fields(&raw, out);
    if (status != CSE_OK)
        cse_envelope_free(out);
    return status;
}

cse_status cse_envelope_parse_metadata(const kv_list *user_metadata, cse_envelope *out)
{
    if (user_metadata == NULL || out == NULL)
        return CSE_ERR_ARGUMENT;
    return parse_from_list(user_metadata, 1, 1, out);
}

cse_status cse_envelope_parse_instruction(const char *json, size_t len, cse_envelope *out)
{
    if (json == NULL || out == NULL)
        return CSE_ERR_ARGUMENT;
    envelope_init(out);
    if (len > INSTRUCTION_FILE_LIMIT)
        return CSE_ERR_METADATA_TOO_LARGE;
    kv_list fields;
    kv_list_init(&fields);
    int parsed = parse_flat_json_object(json, len, NAMES_CASE_INSENSITIVE, &fields);
    if (parsed == -3)
        return CSE_ERR_NO_MEMORY;
    if (parsed != 0)
        return CSE_ERR_INSTRUCTION_JSON;
    /* Instruction files are JSON written by SDKs with exact names, but match like metadata anyway. */
    cse_status status = parse_from_list(&fields, 1, 0, out);
    kv_list_free(&fields);
    return status;
}

void cse_envelope_free(cse_envelope *env)
{
    if (env == NULL)
        return;
    kv_list_free(&env->matdesc);
    secure_wipe(env->iv, sizeof(env->iv));
    memset(env, 0, sizeof(*env));
    kv_list_init(&env->matdesc);
}

/* kms+context: the context must name the content cipher the envelope uses (either CBC spelling). */
static int matdesc_binds_cek_alg(const cse_envelope *env)
{
    const char *bound = kv_list_get(&env->matdesc, MATDESC_CEK_NAME);
    if (bound == NULL)
        return 0;
    if (strcmp(bound, cse_cek_alg_name(env->cek_alg)) == 0)
        return 1;
    return env->cek_alg == CSE_CEK_AES_CBC && strcmp(bound, CEK_CBC_PKCS7) == 0;
}

cse_status cse_envelope_kms_contexts(const cse_envelope *env, kv_list contexts[2], size_t *count)
{
    if (env == NULL || contexts == NULL || count == NULL)
        return CSE_ERR_ARGUMENT;
    kv_list_init(&contexts[0]);
    kv_list_init(&contexts[1]);
    *count = 0;
    switch (env->wrap_alg) {
    case CSE_WRAP_KMS_CONTEXT:
        /* Parsing already checked the binding; re-check so a hand-built envelope cannot skip it. */
        if (!matdesc_binds_cek_alg(env))
            return CSE_ERR_MATDESC_CEK_MISMATCH;
        /* fall through */
    case CSE_WRAP_KMS:
        if (kv_list_copy(&contexts[0], &env->matdesc) != 0)
            return CSE_ERR_NO_MEMORY;
        *count = 1;
        return CSE_OK;
    case CSE_WRAP_ABSENT:
        if (env->matdesc.count == 0) {
            *count = 1;                  /* just the empty context */
            return CSE_OK;
        }
        if (kv_list_copy(&contexts[0], &env->matdesc) != 0)
            return CSE_ERR_NO_MEMORY;
        *count = 2;                      /* contexts[1] stays empty: no context */
        return CSE_OK;
    }
    return CSE_ERR_ARGUMENT;
}

cse_status cse_write_context(cse_write_profile profile, const char *key_arn, kv_list *context_out)
{
    if (key_arn == NULL || key_arn[0] == '\0' || context_out == NULL)
        return CSE_ERR_ARGUMENT;
    if (profile == CSE_PROFILE_LEGACY)
        return CSE_OK;                   /* the blog recipe generates the data key without a context */
    if (profile != CSE_PROFILE_KMS)
        return CSE_ERR_ARGUMENT;
    return kv_list_add(context_out, "kms_cmk_id", key_arn) == 0 ? CSE_OK : CSE_ERR_NO_MEMORY;
}

/* ARNs never contain characters JSON would escape; refusing them keeps the matdesc byte-exact. */
static int json_safe_without_escaping(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static cse_status add_field(kv_list *out, const char *name, const char *value, size_t *total)
{
    *total += strlen(name) + strlen(value);
    return kv_list_add(out, name, value) == 0 ? CSE_OK : CSE_ERR_NO_MEMORY;
}

cse_status cse_envelope_emit(cse_write_profile profile, const uint8_t *encrypted_key, size_t encrypted_key_len,
                             const uint8_t iv[16], const char *key_arn, int64_t plain_length, kv_list *out)
{
    if (encrypted_key == NULL || encrypted_key_len == 0 || encrypted_key_len > CSE_MAX_KEY_BLOB || iv == NULL ||
        key_arn == NULL || key_arn[0] == '\0' || !json_safe_without_escaping(key_arn) || out == NULL ||
        (profile != CSE_PROFILE_KMS && profile != CSE_PROFILE_LEGACY))
        return CSE_ERR_ARGUMENT;
    if (strlen(key_arn) > S3_METADATA_LIMIT)
        return CSE_ERR_METADATA_TOO_LARGE;

    char key_b64[((CSE_MAX_KEY_BLOB + 2) / 3) * 4 + 1];
    char iv_b64[25];
    base64_encode(encrypted_key, encrypted_key_len, key_b64);
    base64_encode(iv, CSE_AES_BLOCK, iv_b64);
    size_t matdesc_len = strlen(key_arn) + sizeof("{\"kms_cmk_id\":\"\"}");
    char *matdesc = malloc(matdesc_len);
    if (matdesc == NULL)
        return CSE_ERR_NO_MEMORY;
    snprintf(matdesc, matdesc_len, "{\"kms_cmk_id\":\"%s\"}", key_arn);

    size_t first_new = out->count;
    size_t total = 0;
    cse_status status;
    if (profile == CSE_PROFILE_KMS) {
        if ((status = add_field(out, "x-amz-key-v2", key_b64, &total)) == CSE_OK &&
            (status = add_field(out, "x-amz-iv", iv_b64, &total)) == CSE_OK &&
            (status = add_field(out, "x-amz-cek-alg", CEK_CBC, &total)) == CSE_OK &&
            (status = add_field(out, "x-amz-wrap-alg", "kms", &total)) == CSE_OK)
            status = add_field(out, "x-amz-matdesc", matdesc, &total);
    } else {
        if ((status = add_field(out, "x-amz-key", key_b64, &total)) == CSE_OK &&
            (status = add_field(out, "x-amz-iv", iv_b64, &total)) == CSE_OK)
            status = add_field(out, "x-amz-matdesc", matdesc, &total);
    }
    if (status == CSE_OK && plain_length >= 0) {
        char length_text[24];
        snprintf(length_text, sizeof(length_text), "%" PRId64, plain_length);
        status = add_field(out, "x-amz-unencrypted-content-length", length_text, &total);
    }
    if (status == CSE_OK && total > S3_METADATA_LIMIT)
        status = CSE_ERR_METADATA_TOO_LARGE;
    free(matdesc);
    if (status != CSE_OK) {
        /* Leave the caller's list as it was. */
        while (out->count > first_new) {
            out->count--;
            free(out->items[out->count].name);
            free(out->items[out->count].value);
        }
    }
    return status;
}

cse_status cse_envelope_check_stored_size(const cse_envelope *env, uint64_t stored_size)
{
    if (env == NULL)
        return CSE_ERR_ARGUMENT;
    if (env->cek_alg == CSE_CEK_AES_GCM) {
        if (stored_size < CSE_GCM_TAG)
            return CSE_ERR_CIPHERTEXT_LENGTH;
        if (env->has_plain_length && env->plain_length != stored_size - CSE_GCM_TAG)
            return CSE_ERR_BAD_PLAIN_LENGTH;
        return CSE_OK;
    }
    if (stored_size == 0 || stored_size % CSE_AES_BLOCK != 0)
        return CSE_ERR_CIPHERTEXT_LENGTH;
    if (env->has_plain_length && cbc_cipher_size(env->plain_length) != stored_size)
        return CSE_ERR_BAD_PLAIN_LENGTH;
    return CSE_OK;
}

const char *cse_cek_alg_name(cse_cek_alg alg)
{
    return alg == CSE_CEK_AES_GCM ? CEK_GCM : CEK_CBC;
}

static const char *wrap_alg_name(cse_wrap_alg alg)
{
    switch (alg) {
    case CSE_WRAP_KMS:
        return "kms";
    case CSE_WRAP_KMS_CONTEXT:
        return "kms+context";
    case CSE_WRAP_ABSENT:
        break;
    }
    return "none";
}

void cse_envelope_describe(const cse_envelope *env, char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return;
    if (env == NULL) {
        snprintf(out, cap, "(no envelope)");
        return;
    }
    const char *key_id = kv_list_get(&env->matdesc, "kms_cmk_id");
    snprintf(out, cap, "v%d %s %s key=%s", env->key_version, wrap_alg_name(env->wrap_alg),
             cse_cek_alg_name(env->cek_alg), key_id ? key_id : "-");
}
