/* Shared setup for the read-side unit tests: an fs_context on the in-memory object store and the local
 * key service, and writers of CSE objects built directly from the crypto primitives and KMS (not from
 * the read path under test), so every read is checked against the plaintext the test chose. */
#ifndef TEST_READ_UTIL_H
#define TEST_READ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "cbc_stream.h"
#include "envelope.h"
#include "fs_options.h"
#include "gcm.h"
#include "key_cache.h"
#include "kms_local.h"
#include "meta_cache.h"
#include "namespace.h"
#include "objc_memory.h"
#include "read_path.h"

static inline void tr_setup(fs_context *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    fs_options_defaults(&ctx->options);
    memory_budget_init(&ctx->memory, ctx->options.max_memory);
    ctx->objects = objc_new_memory();
    ctx->kms = kms_client_new_local();
    int enabled = 0;
    aws_error err;
    aws_error_clear(&err);
    if (!ctx->objects || !ctx->kms ||
        kms_describe_key(ctx->kms, KMS_LOCAL_ALIAS, ctx->key_arn, sizeof ctx->key_arn, &enabled, &err) != 0 ||
        fs_caches_init(ctx) != 0) {
        fprintf(stderr, "test setup failed\n");
        abort();
    }
}

static inline void tr_teardown(fs_context *ctx)
{
    fs_caches_destroy(ctx);
    objc_free(ctx->objects);
    kms_client_free(ctx->kms);
    memory_budget_destroy(&ctx->memory);
}

static inline uint8_t *tr_random_bytes(size_t len, unsigned seed)
{
    uint8_t *p = malloc(len ? len : 1);
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = (uint8_t)x;
    }
    return p;
}

/* CBC encryption of the whole plaintext with the streaming encryptor; *out_len = stored size. */
static inline uint8_t *tr_cbc_encrypt(const uint8_t *key, const uint8_t iv[16], const uint8_t *plain, size_t len,
                                      size_t *out_len)
{
    uint8_t *out = malloc(len + 32);
    cbc_encryptor *enc = NULL;
    size_t n = 0, m = 0;
    if (cbc_encryptor_new(key, iv, &enc) != CSE_OK || cbc_encryptor_update(enc, plain, len, out, &n) != CSE_OK ||
        cbc_encryptor_final(enc, out + n, &m) != CSE_OK)
        abort();
    cbc_encryptor_free(enc);
    *out_len = n + m;
    return out;
}

typedef struct {
    cse_write_profile profile;     /* kms (x-amz-key-v2, context) or legacy (x-amz-key, no context) */
    int with_length;               /* x-amz-unencrypted-content-length */
    int as_instruction;            /* envelope in <key>.instruction instead of metadata */
    int share_key_slot;            /* >0: reuse the data key of this slot (1..8) */
} tr_cbc_opts;

static struct {
    int used;
    secure_buf *key;
    uint8_t blob[CSE_MAX_KEY_BLOB];
    size_t blob_len;
} tr_key_slots[9];

/* Writes a CBC object as the S3 Encryption Client would. Returns the stored ciphertext (malloc'd). */
static inline uint8_t *tr_put_cbc(fs_context *ctx, const char *key, const uint8_t *plain, size_t len,
                                  const tr_cbc_opts *o, size_t *stored_len)
{
    kv_list context;
    kv_list_init(&context);
    if (cse_write_context(o->profile, ctx->key_arn, &context) != CSE_OK)
        abort();
    secure_buf *dk = NULL;
    uint8_t blob[CSE_MAX_KEY_BLOB];
    size_t blob_len = 0;
    aws_error err;
    aws_error_clear(&err);
    int slot = o->share_key_slot;
    if (slot > 0 && tr_key_slots[slot].used) {
        dk = secure_buf_from(tr_key_slots[slot].key->bytes, 32);
        memcpy(blob, tr_key_slots[slot].blob, tr_key_slots[slot].blob_len);
        blob_len = tr_key_slots[slot].blob_len;
    } else {
        if (kms_generate_data_key(ctx->kms, ctx->key_arn, &context, &dk, blob, sizeof blob, &blob_len, &err) != 0)
            abort();
        if (slot > 0) {
            tr_key_slots[slot].used = 1;
            tr_key_slots[slot].key = secure_buf_from(dk->bytes, 32);
            memcpy(tr_key_slots[slot].blob, blob, blob_len);
            tr_key_slots[slot].blob_len = blob_len;
        }
    }
    kv_list_free(&context);
    uint8_t iv[16];
    uint8_t *r = tr_random_bytes(16, (unsigned)len ^ 0x5a5a ^ (unsigned)strlen(key));
    memcpy(iv, r, 16);
    free(r);
    uint8_t *cipher = tr_cbc_encrypt(dk->bytes, iv, plain, len, stored_len);
    secure_buf_free(dk);
    kv_list md;
    kv_list_init(&md);
    if (cse_envelope_emit(o->profile, blob, blob_len, iv, ctx->key_arn, o->with_length ? (int64_t)len : -1, &md) !=
        CSE_OK)
        abort();
    kv_list empty;
    kv_list_init(&empty);
    if (o->as_instruction) {
        /* A flat JSON object with the same names; the matdesc is a JSON string inside it. */
        size_t cap = 8192, used = 0;
        char *json = malloc(cap);
        used += (size_t)snprintf(json + used, cap - used, "{");
        for (size_t i = 0; i < md.count; i++) {
            used += (size_t)snprintf(json + used, cap - used, "%s\"%s\":\"", i ? "," : "", md.items[i].name);
            for (const char *c = md.items[i].value; *c; c++)
                used += (size_t)snprintf(json + used, cap - used, *c == '"' ? "\\\"" : "%c", *c);
            used += (size_t)snprintf(json + used, cap - used, "\"");
        }
        used += (size_t)snprintf(json + used, cap - used, "}");
        char ikey[1024];
        snprintf(ikey, sizeof ikey, "%s.instruction", key);
        kv_list imd;
        kv_list_init(&imd);
        kv_list_add(&imd, "x-amz-crypto-instr-file", "");
        if (ctx->objects->ops->put(ctx->objects, ikey, &imd, (uint8_t *)json, used, &err) != 0)
            abort();
        kv_list_free(&imd);
        free(json);
        if (ctx->objects->ops->put(ctx->objects, key, &empty, cipher, *stored_len, &err) != 0)
            abort();
    } else if (ctx->objects->ops->put(ctx->objects, key, &md, cipher, *stored_len, &err) != 0) {
        abort();
    }
    kv_list_free(&md);
    return cipher;
}

/* Writes a GCM object in the V2 kms+context format (as the Ruby SDK's put-v2). Returns stored bytes. */
static inline uint8_t *tr_put_gcm(fs_context *ctx, const char *key, const uint8_t *plain, size_t len,
                                  size_t *stored_len)
{
    kv_list context;
    kv_list_init(&context);
    kv_list_add(&context, "kms_cmk_id", ctx->key_arn);
    kv_list_add(&context, "aws:x-amz-cek-alg", "AES/GCM/NoPadding");
    secure_buf *dk = NULL;
    uint8_t blob[CSE_MAX_KEY_BLOB];
    size_t blob_len = 0;
    aws_error err;
    aws_error_clear(&err);
    if (kms_generate_data_key(ctx->kms, ctx->key_arn, &context, &dk, blob, sizeof blob, &blob_len, &err) != 0)
        abort();
    kv_list_free(&context);
    uint8_t iv[12];
    uint8_t *r = tr_random_bytes(12, (unsigned)len + 77);
    memcpy(iv, r, 12);
    free(r);
    uint8_t *stored = malloc(len + 16);
    if (gcm_encrypt_oneshot(dk->bytes, iv, plain, len, stored, stored + len) != CSE_OK)
        abort();
    secure_buf_free(dk);
    *stored_len = len + 16;
    char key_b64[2048], iv_b64[32], matdesc[600];
    base64_encode(blob, blob_len, key_b64);
    base64_encode(iv, 12, iv_b64);
    snprintf(matdesc, sizeof matdesc, "{\"kms_cmk_id\":\"%s\",\"aws:x-amz-cek-alg\":\"AES/GCM/NoPadding\"}",
             ctx->key_arn);
    kv_list md;
    kv_list_init(&md);
    kv_list_add(&md, "x-amz-key-v2", key_b64);
    kv_list_add(&md, "x-amz-iv", iv_b64);
    kv_list_add(&md, "x-amz-cek-alg", "AES/GCM/NoPadding");
    kv_list_add(&md, "x-amz-wrap-alg", "kms+context");
    kv_list_add(&md, "x-amz-tag-len", "128");
    kv_list_add(&md, "x-amz-matdesc", matdesc);
    if (ctx->objects->ops->put(ctx->objects, key, &md, stored, *stored_len, &err) != 0)
        abort();
    kv_list_free(&md);
    return stored;
}

/* Replaces an object's body and/or one metadata field (NULL value: remove it), keeping the rest. */
static inline void tr_tamper(fs_context *ctx, const char *key, const uint8_t *body, size_t len,
                             const char *field, const char *value)
{
    uint8_t *old = NULL;
    size_t old_len = 0;
    kv_list md;
    if (objc_memory_get_object(ctx->objects, key, &old, &old_len, &md) != 0)
        abort();
    if (field) {
        if (value)
            kv_list_set(&md, field, value);
        else
            kv_list_remove(&md, field);
    }
    aws_error err;
    aws_error_clear(&err);
    if (ctx->objects->ops->put(ctx->objects, key, &md, body ? body : old, body ? len : old_len, &err) != 0)
        abort();
    kv_list_free(&md);
    free(old);
}

/* Reads [off, off+len) through the handle and checks it against the plaintext (short at the end). */
static inline void tr_expect_range(read_handle *h, const uint8_t *plain, size_t plain_len, uint64_t off, size_t len)
{
    char *buf = malloc(len + 1);
    ssize_t n = read_handle_read(h, buf, len, (off_t)off);
    size_t want = off >= plain_len ? 0 : (plain_len - off < len ? plain_len - off : len);
    assert_int_equal(n, (ssize_t)want);
    if (want)
        assert_memory_equal(buf, plain + off, want);
    free(buf);
}

#endif
