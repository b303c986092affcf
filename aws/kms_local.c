/* The local key service: an in-process kms_client for unit tests that behaves like AWS KMS where the
 * filesystem can tell the difference. Each key has random 256-bit material; a data key is wrapped with
 * AES-256-GCM under it, the blob naming its key, and the encryption context is bound as additional
 * authenticated data, so a different context, a tampered blob or a blob of another key fails with the
 * same error KMS gives (InvalidCiphertextException, IncorrectKeyException, ...).
 *
 * Blob: "LKMS" | version 1 | key id (36 chars) | IV (12) | wrapped key (32) | GCM tag (16). */
#include "kms.h"
#include "kms_local.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define KEY_ID_LEN 36
#define DATA_KEY_LEN 32
#define WRAP_IV_LEN 12
#define WRAP_TAG_LEN 16
#define BLOB_MAGIC "LKMS"
#define BLOB_MAGIC_LEN 4
#define BLOB_VERSION 1
#define BLOB_HEADER_LEN (BLOB_MAGIC_LEN + 1 + KEY_ID_LEN)
#define BLOB_LEN (BLOB_HEADER_LEN + WRAP_IV_LEN + DATA_KEY_LEN + WRAP_TAG_LEN)

typedef struct {
    char id[KEY_ID_LEN + 1];
    secure_buf *material;
    int enabled;
} local_key;

typedef struct {
    unsigned ops_mask;        /* 0: no injected failures */
    long after_calls, fail_count, seen;
    aws_err_kind kind;
    int http_status;
    char code[64];
} injected_fault;

typedef struct {
    kms_client base;
    pthread_mutex_t lock;
    local_key *keys;          /* keys[0] is the default key, reachable as KMS_LOCAL_ALIAS */
    size_t key_count;
    kms_local_counts counts;
    injected_fault fault;
} local_kms;

static const kms_ops local_ops;

static local_kms *as_local(kms_client *kms)
{
    return kms && kms->ops == &local_ops ? (local_kms *)kms : NULL;
}

/* Errors imitate the service's answers (status, code, a request id naming the double). */
#define fail(err, kind, http_status, code, ...) \
    ((int)aws_error_set_service(err, kind, http_status, code, "kms-local", __VA_ARGS__))

static void clear_error(aws_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

static int invalid_ciphertext(aws_error *err)
{
    /* KMS says no more than this, whatever the cause, so tests cannot rely on more either. */
    return fail(err, AWS_ERR_SERVICE, 400, "InvalidCiphertextException", "%s", "");
}

/* Random UUID v4 text, the form KMS key ids have. */
static int new_key_id(char out[KEY_ID_LEN + 1])
{
    uint8_t r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    snprintf(out, KEY_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
             r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
    return 0;
}

/* Caller holds the lock. */
static int add_key(local_kms *k, const char **id_out)
{
    local_key key = { .enabled = 1 };
    if (new_key_id(key.id) != 0)
        return -1;
    key.material = secure_buf_new(DATA_KEY_LEN);
    if (!key.material)
        return -1;
    if (RAND_bytes(key.material->bytes, DATA_KEY_LEN) != 1) {
        secure_buf_free(key.material);
        return -1;
    }
    local_key *grown = realloc(k->keys, (k->key_count + 1) * sizeof *grown);
    if (!grown) {
        secure_buf_free(key.material);
        return -1;
    }
    k->keys = grown;
    k->keys[k->key_count++] = key;
    if (id_out)
        *id_out = k->keys[k->key_count - 1].id;
    return 0;
}

/* Caller holds the lock. Accepts what KMS accepts as KeyId: the key id, the key ARN, the alias name or
 * the alias ARN. NULL when nothing matches. */
static local_key *resolve_key(local_kms *k, const char *key_id)
{
    if (!key_id || !*key_id)
        return NULL;
    const char *name = key_id;
    size_t prefix_len = strlen(KMS_LOCAL_ARN_PREFIX);
    if (strncmp(key_id, KMS_LOCAL_ARN_PREFIX, prefix_len) == 0)
        name = key_id + prefix_len;
    if (strcmp(name, KMS_LOCAL_ALIAS) == 0)
        return k->key_count ? &k->keys[0] : NULL;
    if (name != key_id) {
        if (strncmp(name, "key/", 4) != 0)
            return NULL;
        name += 4;
    }
    for (size_t i = 0; i < k->key_count; i++)
        if (strcmp(k->keys[i].id, name) == 0)
            return &k->keys[i];
    return NULL;
}

/* Caller holds the lock. 0, or the injected error for this call. */
static int injected_failure(local_kms *k, unsigned op, aws_error *err)
{
    injected_fault *f = &k->fault;
    if (!(f->ops_mask & op))
        return 0;
    long seen = f->seen++;
    if (seen < f->after_calls || (f->fail_count >= 0 && seen - f->after_calls >= f->fail_count))
        return 0;
    return fail(err, f->kind != AWS_OK ? f->kind : AWS_ERR_SERVICE, f->http_status, f->code, "injected fault");
}

static int not_found(aws_error *err, const char *key_id)
{
    return fail(err, AWS_ERR_NOT_FOUND, 400, "NotFoundException", "Key '%.120s' does not exist",
                key_id ? key_id : "");
}

static int disabled(aws_error *err, const local_key *key)
{
    return fail(err, AWS_ERR_SERVICE, 400, "DisabledException", "%s%s is disabled.", KMS_LOCAL_ARN_PREFIX "key/",
                key->id);
}

static int compare_pairs(const void *a, const void *b)
{
    const kv_pair *x = *(const kv_pair *const *)a, *y = *(const kv_pair *const *)b;
    int by_name = strcmp(x->name, y->name);
    return by_name ? by_name : strcmp(x->value, y->value);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The canonical encryption context: pairs sorted by name, each as length-prefixed name and value, so
 * the order the caller lists them in does not matter (as in KMS) but every byte of them does. */
static int canonical_context(const kv_list *context, uint8_t **out, size_t *out_len)
{
    size_t n = context ? context->count : 0;
    const kv_pair **sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        sorted[i] = &context->items[i];
        if (!sorted[i]->name || !sorted[i]->value) {
            free(sorted);
            return -1;
        }
        total += 8 + strlen(sorted[i]->name) + strlen(sorted[i]->value);
    }
    qsort(sorted, n, sizeof *sorted, compare_pairs);
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf) {
        free(sorted);
        return -1;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *fields[2] = { sorted[i]->name, sorted[i]->value };
        for (int f = 0; f < 2; f++) {
            size_t len = strlen(fields[f]);
            put_u32(buf + at, (uint32_t)len);
            memcpy(buf + at + 4, fields[f], len);
            at += 4 + len;
        }
    }
    free(sorted);
    *out = buf;
    *out_len = at;
    return 0;
}

/* AES-256-GCM over `in` with AAD = blob header || canonical context. decrypting: tag is checked.
 * Returns 0, or -1 (including a tag mismatch). */
static int gcm_wrap(int encrypting, const uint8_t *material, const uint8_t *header, const uint8_t *iv,
                    const uint8_t *context_aad, size_t context_len, const uint8_t *in, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return -1;
    int ok = 0, n = 0;
    if (encrypting)
        ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, WRAP_IV_LEN, NULL) == 1 &&
             EVP_EncryptInit_ex(ctx, NULL, NULL, material, iv) == 1 &&
             EVP_EncryptUpdate(ctx, NULL, &n, header, BLOB_HEADER_LEN) == 1 &&
             (context_len == 0 || EVP_EncryptUpdate(ctx, NULL, &n, context_aad, (int)context_len) == 1) &&
             EVP_EncryptUpdate(ctx, out, &n, in, DATA_KEY_LEN) == 1 && n == DATA_KEY_LEN &&
             EVP_EncryptFinal_ex(ctx, out + n, &n) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, WRAP_TAG_LEN, tag) == 1;
    else
        ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, WRAP_IV_LEN, NULL) == 1 &&
             EVP_DecryptInit_ex(ctx, NULL, NULL, material, iv) == 1 &&
             EVP_DecryptUpdate(ctx, NULL, &n, header, BLOB_HEADER_LEN) == 1 &&
             (context_len == 0 || EVP_DecryptUpdate(ctx, NULL, &n, context_aad, (int)context_len) == 1) &&
             EVP_DecryptUpdate(ctx, out, &n, in, DATA_KEY_LEN) == 1 && n == DATA_KEY_LEN &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WRAP_TAG_LEN, tag) == 1 &&
             EVP_DecryptFinal_ex(ctx, out + n, &n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int local_generate_data_key(kms_client *kms, const char *key_id, const kv_list *context,
                                   secure_buf **plaintext_key, uint8_t *blob, size_t blob_cap, size_t *blob_len,
                                   aws_error *err)
{
    local_kms *k = as_local(kms);
    if (!plaintext_key || !blob || !blob_len)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "generate_data_key: missing output");
    *plaintext_key = NULL;
    *blob_len = 0;

    pthread_mutex_lock(&k->lock);
    k->counts.generate_data_key++;
    int rc = injected_failure(k, KMS_LOCAL_OP_GENERATE, err);
    local_key *key = resolve_key(k, key_id);
    uint8_t material[DATA_KEY_LEN];
    if (rc == 0) {
        if (!key)
            rc = not_found(err, key_id);
        else if (!key->enabled)
            rc = disabled(err, key);
        else
            memcpy(material, key->material->bytes, DATA_KEY_LEN);
    }
    uint8_t header[BLOB_HEADER_LEN];
    if (rc == 0) {
        memcpy(header, BLOB_MAGIC, BLOB_MAGIC_LEN);
        header[BLOB_MAGIC_LEN] = BLOB_VERSION;
        memcpy(header + BLOB_MAGIC_LEN + 1, key->id, KEY_ID_LEN);
    }
    if (rc != 0)
        k->counts.failed++;
    pthread_mutex_unlock(&k->lock);
    if (rc != 0)
        return rc;

    uint8_t *aad = NULL;
    size_t aad_len = 0;
    secure_buf *data_key = NULL;
    if (blob_cap < BLOB_LEN)
        rc = fail(err, AWS_ERR_ARGUMENT, 0, "", "key blob buffer too small (%zu < %d)", blob_cap, BLOB_LEN);
    else if (canonical_context(context, &aad, &aad_len) != 0)
        rc = fail(err, AWS_ERR_NO_MEMORY, 0, "", "cannot encode the encryption context");
    else if (!(data_key = secure_buf_new(DATA_KEY_LEN)))
        rc = fail(err, AWS_ERR_NO_MEMORY, 0, "", "cannot allocate locked memory for a data key");
    else if (RAND_bytes(data_key->bytes, DATA_KEY_LEN) != 1 || RAND_bytes(blob + BLOB_HEADER_LEN, WRAP_IV_LEN) != 1)
        rc = fail(err, AWS_ERR_CRYPTO, 0, "", "no random bytes");
    else if (gcm_wrap(1, material, header, blob + BLOB_HEADER_LEN, aad, aad_len, data_key->bytes,
                      blob + BLOB_HEADER_LEN + WRAP_IV_LEN, blob + BLOB_HEADER_LEN + WRAP_IV_LEN + DATA_KEY_LEN) != 0)
        rc = fail(err, AWS_ERR_CRYPTO, 0, "", "wrapping the data key failed");
    secure_wipe(material, sizeof material);
    free(aad);
    if (rc != 0) {
        secure_buf_free(data_key);
        pthread_mutex_lock(&k->lock);
        k->counts.failed++;
        pthread_mutex_unlock(&k->lock);
        return rc;
    }
    memcpy(blob, header, BLOB_HEADER_LEN);
    *blob_len = BLOB_LEN;
    *plaintext_key = data_key;
    clear_error(err);
    return 0;
}

static int local_decrypt(kms_client *kms, const uint8_t *blob, size_t blob_len, const kv_list *context,
                         const char *key_id, secure_buf **plaintext_key, aws_error *err)
{
    local_kms *k = as_local(kms);
    if (!plaintext_key || (!blob && blob_len))
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "decrypt: missing argument");
    *plaintext_key = NULL;

    pthread_mutex_lock(&k->lock);
    k->counts.decrypt++;
    int rc = injected_failure(k, KMS_LOCAL_OP_DECRYPT, err);
    local_key *key = NULL;
    uint8_t material[DATA_KEY_LEN];
    if (rc != 0) {
        /* the injected error stands */
    } else if (blob_len != BLOB_LEN || memcmp(blob, BLOB_MAGIC, BLOB_MAGIC_LEN) != 0 || blob[BLOB_MAGIC_LEN] != BLOB_VERSION) {
        rc = invalid_ciphertext(err);
    } else {
        char blob_key_id[KEY_ID_LEN + 1];
        memcpy(blob_key_id, blob + BLOB_MAGIC_LEN + 1, KEY_ID_LEN);
        blob_key_id[KEY_ID_LEN] = '\0';
        key = resolve_key(k, blob_key_id);
        /* A blob naming a key this service does not hold is as opaque to it as garbage. */
        if (!key) {
            rc = invalid_ciphertext(err);
        } else if (key_id) {
            local_key *expected = resolve_key(k, key_id);
            if (!expected)
                rc = not_found(err, key_id);
            else if (expected != key)
                rc = fail(err, AWS_ERR_SERVICE, 400, "IncorrectKeyException",
                          "The key ID in the request does not identify a CMK that can perform this operation.");
        }
        if (rc == 0 && !key->enabled)
            rc = disabled(err, key);
        if (rc == 0)
            memcpy(material, key->material->bytes, DATA_KEY_LEN);
    }
    if (rc != 0)
        k->counts.failed++;
    pthread_mutex_unlock(&k->lock);
    if (rc != 0)
        return rc;

    uint8_t *aad = NULL;
    size_t aad_len = 0;
    secure_buf *data_key = NULL;
    const uint8_t *iv = blob + BLOB_HEADER_LEN;
    const uint8_t *wrapped = iv + WRAP_IV_LEN;
    uint8_t tag[WRAP_TAG_LEN];
    memcpy(tag, wrapped + DATA_KEY_LEN, WRAP_TAG_LEN);
    if (canonical_context(context, &aad, &aad_len) != 0)
        rc = fail(err, AWS_ERR_NO_MEMORY, 0, "", "cannot encode the encryption context");
    else if (!(data_key = secure_buf_new(DATA_KEY_LEN)))
        rc = fail(err, AWS_ERR_NO_MEMORY, 0, "", "cannot allocate locked memory for a data key");
    else if (gcm_wrap(0, material, blob, iv, aad, aad_len, wrapped, data_key->bytes, tag) != 0)
        rc = invalid_ciphertext(err);   /* wrong context or a tampered blob: KMS does not say which */
    secure_wipe(material, sizeof material);
    free(aad);
    if (rc != 0) {
        secure_buf_free(data_key);
        pthread_mutex_lock(&k->lock);
        k->counts.failed++;
        pthread_mutex_unlock(&k->lock);
        return rc;
    }
    *plaintext_key = data_key;
    clear_error(err);
    return 0;
}

static int local_describe_key(kms_client *kms, const char *key_id, char *arn_out, size_t arn_cap, int *enabled,
                              aws_error *err)
{
    local_kms *k = as_local(kms);
    pthread_mutex_lock(&k->lock);
    k->counts.describe_key++;
    int rc = injected_failure(k, KMS_LOCAL_OP_DESCRIBE, err);
    local_key *key = resolve_key(k, key_id);
    if (rc != 0) {
        /* the injected error stands */
    } else if (!key) {
        rc = not_found(err, key_id);
    } else {
        int n = arn_out ? snprintf(arn_out, arn_cap, "%skey/%s", KMS_LOCAL_ARN_PREFIX, key->id) : 0;
        if (arn_out && (n < 0 || (size_t)n >= arn_cap))
            rc = fail(err, AWS_ERR_ARGUMENT, 0, "", "ARN buffer too small");
        else if (enabled)
            *enabled = key->enabled;
    }
    if (rc != 0)
        k->counts.failed++;
    pthread_mutex_unlock(&k->lock);
    if (rc == 0)
        clear_error(err);
    return rc;
}

static void local_destroy(kms_client *kms)
{
    local_kms *k = as_local(kms);
    if (!k)
        return;
    for (size_t i = 0; i < k->key_count; i++)
        secure_buf_free(k->keys[i].material);
    free(k->keys);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

static const kms_ops local_ops = {
    .generate_data_key = local_generate_data_key,
    .decrypt = local_decrypt,
    .describe_key = local_describe_key,
    .destroy = local_destroy,
};

kms_client *kms_client_new_local(void)
{
    local_kms *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    if (pthread_mutex_init(&k->lock, NULL) != 0) {
        free(k);
        return NULL;
    }
    k->base.ops = &local_ops;
    if (add_key(k, NULL) != 0) {
        local_destroy(&k->base);
        return NULL;
    }
    return &k->base;
}

/* ---- test extras (kms_local.h) ---- */

int kms_local_create_key(kms_client *kms, char *arn_out, size_t cap)
{
    local_kms *k = as_local(kms);
    if (!k || !arn_out)
        return -1;
    pthread_mutex_lock(&k->lock);
    const char *id = NULL;
    int rc = add_key(k, &id);
    if (rc == 0) {
        int n = snprintf(arn_out, cap, "%skey/%s", KMS_LOCAL_ARN_PREFIX, id);
        rc = n < 0 || (size_t)n >= cap ? -1 : 0;
    }
    pthread_mutex_unlock(&k->lock);
    return rc;
}

static int set_enabled(kms_client *kms, const char *key_id, int enabled)
{
    local_kms *k = as_local(kms);
    if (!k)
        return -1;
    pthread_mutex_lock(&k->lock);
    local_key *key = resolve_key(k, key_id);
    if (key)
        key->enabled = enabled;
    pthread_mutex_unlock(&k->lock);
    return key ? 0 : -1;
}

int kms_local_disable_key(kms_client *kms, const char *key_id)
{
    return set_enabled(kms, key_id, 0);
}

int kms_local_enable_key(kms_client *kms, const char *key_id)
{
    return set_enabled(kms, key_id, 1);
}

int kms_local_stats(kms_client *kms, kms_local_counts *out)
{
    local_kms *k = as_local(kms);
    if (!k || !out)
        return -1;
    pthread_mutex_lock(&k->lock);
    *out = k->counts;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

int kms_local_inject_failure(kms_client *kms, unsigned ops_mask, long after_calls, long fail_count,
                             aws_err_kind kind, int http_status, const char *code)
{
    local_kms *k = as_local(kms);
    if (!k)
        return -1;
    pthread_mutex_lock(&k->lock);
    k->fault = (injected_fault){ .ops_mask = ops_mask, .after_calls = after_calls, .fail_count = fail_count,
                                 .kind = kind, .http_status = http_status };
    snprintf(k->fault.code, sizeof k->fault.code, "%s", code ? code : "");
    pthread_mutex_unlock(&k->lock);
    return 0;
}
