/* HEAD -> envelope -> data key -> exact plaintext size (fs/object_info.h). */
#include "object_info.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbc_random.h"
#include "gcm.h"
#include "key_cache.h"
#include "log.h"

#define INSTRUCTION_MAX (64 * 1024)

void object_info_log_corrupt(fs_context *ctx, const char *key, const char *what, const char *cause)
{
    atomic_fetch_add_explicit(&ctx->counters.decrypt_errors, 1, memory_order_relaxed);
    log_error("object %s: %s: %s", key, what, cause);
}

int object_info_get_range(fs_context *ctx, const char *key, const char *etag, uint64_t offset, size_t len,
                          uint8_t *buf, size_t *got, aws_error *err)
{
    const objc_ops *ops = ctx->objects->ops;
    if (etag && *etag && ops->get_range_if_match)
        return ops->get_range_if_match(ctx->objects, key, etag, offset, len, buf, got, err);
    return ops->get_range(ctx->objects, key, offset, len, buf, got, err);
}

static int errno_of_aws(const aws_error *err)
{
    switch (err->kind) {
    case AWS_OK: return 0;
    case AWS_ERR_NOT_FOUND: return -ENOENT;
    case AWS_ERR_NO_MEMORY: return -ENOMEM;
    case AWS_ERR_SERVICE:
        return err->http_status == 403 ? -EACCES : -EIO;
    default: return -EIO;
    }
}

/* Reads `<key>.instruction`; 0 with the envelope, -ENOENT when there is none, -EIO when it is bad
 * (logged unless quiet). */
static int fetch_instruction(fs_context *ctx, const char *key, cse_envelope *env, int quiet)
{
    size_t klen = strlen(key);
    char *ikey = malloc(klen + sizeof INSTRUCTION_SUFFIX);
    uint8_t *buf = malloc(INSTRUCTION_MAX);
    if (!ikey || !buf) {
        free(ikey);
        free(buf);
        return -ENOMEM;
    }
    memcpy(ikey, key, klen);
    memcpy(ikey + klen, INSTRUCTION_SUFFIX, sizeof INSTRUCTION_SUFFIX);
    aws_error err;
    aws_error_clear(&err);
    size_t got = 0;
    atomic_fetch_add_explicit(&ctx->counters.s3_requests, 1, memory_order_relaxed);
    int rc = ctx->objects->ops->get_range(ctx->objects, ikey, 0, INSTRUCTION_MAX, buf, &got, &err);
    if (rc != 0) {
        rc = errno_of_aws(&err);
        if (rc != -ENOENT && !quiet) {
            char msg[400];
            log_error("object %s: reading instruction file: %s", key, aws_error_format(&err, msg, sizeof msg));
        }
    } else {
        atomic_fetch_add_explicit(&ctx->counters.bytes_fetched, got, memory_order_relaxed);
        cse_status st = cse_envelope_parse_instruction((const char *)buf, got, env);
        if (st != CSE_OK) {
            if (!quiet)
                object_info_log_corrupt(ctx, key, "instruction file", cse_strerror(st));
            rc = -EIO;
        }
    }
    free(ikey);
    free(buf);
    return rc;
}

static int load_instruction(fs_context *ctx, const char *key, cse_envelope *env)
{
    return fetch_instruction(ctx, key, env, 0);
}

void object_info_drop_instruction(fs_context *ctx, const char *key)
{
    cse_envelope env;
    memset(&env, 0, sizeof env);
    if (fetch_instruction(ctx, key, &env, 1) != 0)
        return;                           /* none, or a file of that name that is not an envelope */
    cse_envelope_free(&env);
    char *ikey = NULL;
    if (asprintf(&ikey, "%s" INSTRUCTION_SUFFIX, key) < 0)
        return;
    aws_error err;
    aws_error_clear(&err);
    atomic_fetch_add_explicit(&ctx->counters.s3_requests, 1, memory_order_relaxed);
    if (ctx->objects->ops->delete_object(ctx->objects, ikey, &err) != 0) {
        char msg[400];
        log_warn("object %s: could not delete its stale %s: %s", key, ikey, aws_error_format(&err, msg, sizeof msg));
    }
    free(ikey);
}

int object_info_head(fs_context *ctx, const char *key, int instruction_hint, object_info *out)
{
    objc_head head;
    memset(&head, 0, sizeof head);
    kv_list_init(&head.metadata);
    aws_error err;
    aws_error_clear(&err);
    atomic_fetch_add_explicit(&ctx->counters.s3_requests, 1, memory_order_relaxed);
    if (ctx->objects->ops->head(ctx->objects, key, &head, &err) != 0) {
        int rc = errno_of_aws(&err);
        if (rc != -ENOENT) {
            char msg[400];
            log_error("object %s: HEAD: %s", key, aws_error_format(&err, msg, sizeof msg));
        }
        objc_head_free(&head);
        memset(out, 0, sizeof *out);
        return rc;
    }
    return object_info_from_head(ctx, key, &head, instruction_hint, out);
}

int object_info_from_head(fs_context *ctx, const char *key, objc_head *head, int instruction_hint,
                          object_info *out)
{
    memset(out, 0, sizeof *out);
    out->head = *head;
    memset(head, 0, sizeof *head);
    kv_list_init(&head->metadata);
    out->key = strdup(key);
    if (!out->key) {
        object_info_free(out);
        return -ENOMEM;
    }
    attrs_from_metadata(&out->head.metadata, &out->attrs);

    cse_status st = cse_envelope_parse_metadata(&out->head.metadata, &out->env);
    if (st == CSE_OK) {
        out->encrypted = 1;
    } else if (st == CSE_ERR_NOT_ENCRYPTED) {
        size_t klen = strlen(key);
        int is_instruction = klen >= strlen(INSTRUCTION_SUFFIX) &&
                             strcmp(key + klen - strlen(INSTRUCTION_SUFFIX), INSTRUCTION_SUFFIX) == 0;
        if (instruction_hint != 0 && !is_instruction && klen > 0 && key[klen - 1] != '/') {
            int rc = load_instruction(ctx, key, &out->env);
            if (rc == 0) {
                out->encrypted = 1;
                out->envelope_from_instruction = 1;
            } else if (rc != -ENOENT) {
                object_info_free(out);
                return rc;
            }
        }
    } else {
        object_info_log_corrupt(ctx, key, "envelope", cse_strerror(st));
        object_info_free(out);
        return -EIO;
    }
    if (!out->encrypted) {
        out->plain_size = out->head.size;
        out->has_plain_size = 1;
    }
    return 0;
}

typedef struct {
    fs_context *ctx;
    const object_info *info;
} key_load_arg;

/* KMS Decrypt with each encryption context the envelope allows, in order. */
static int load_key_from_kms(void *arg, const uint8_t *lookup, size_t lookup_len, uint8_t key[32])
{
    key_load_arg *a = arg;
    (void)lookup;            /* the cache's lookup key; the blob itself is in the envelope */
    (void)lookup_len;
    const uint8_t *blob = a->info->env.encrypted_key;
    size_t blob_len = a->info->env.encrypted_key_len;
    kv_list contexts[2];
    size_t count = 0;
    cse_status st = cse_envelope_kms_contexts(&a->info->env, contexts, &count);
    if (st != CSE_OK) {
        object_info_log_corrupt(a->ctx, a->info->key, "envelope", cse_strerror(st));
        return -EIO;
    }
    int rc = -EIO;
    aws_error err;
    aws_error_clear(&err);
    for (size_t i = 0; i < count && rc != 0; i++) {
        secure_buf *plain = NULL;
        aws_error_clear(&err);
        atomic_fetch_add_explicit(&a->ctx->counters.kms_decrypt_calls, 1, memory_order_relaxed);
        if (kms_decrypt(a->ctx->kms, blob, blob_len, &contexts[i], NULL, &plain, &err) == 0) {
            if (plain && plain->len == 32) {
                memcpy(key, plain->bytes, 32);
                rc = 0;
            } else {
                aws_error_set(&err, AWS_ERR_CRYPTO, "data key is not 32 bytes");
            }
        }
        secure_buf_free(plain);
        /* Only a context mismatch is worth retrying with the next context. */
        if (rc != 0 && err.kind != AWS_ERR_SERVICE)
            break;
    }
    for (size_t i = 0; i < count; i++)
        kv_list_free(&contexts[i]);
    if (rc != 0) {
        char msg[400];
        object_info_log_corrupt(a->ctx, a->info->key, "KMS Decrypt of the data key",
                                aws_error_format(&err, msg, sizeof msg));
    }
    return rc;
}

/* The key cache's lookup key: the key blob plus the encryption context, so that an object whose matdesc
 * was altered still goes to KMS (which refuses the wrong context) instead of hitting the cache. */
static uint8_t *cache_lookup_key(const object_info *info, size_t *len)
{
    const cse_envelope *env = &info->env;
    size_t cap = env->encrypted_key_len + 16;
    for (size_t i = 0; i < env->matdesc.count; i++)
        cap += strlen(env->matdesc.items[i].name) + strlen(env->matdesc.items[i].value) + 2;
    uint8_t *k = malloc(cap);
    if (!k)
        return NULL;
    size_t n = 0;
    memcpy(k, env->encrypted_key, env->encrypted_key_len);
    n += env->encrypted_key_len;
    k[n++] = 0;
    k[n++] = (uint8_t)env->wrap_alg;
    k[n++] = (uint8_t)env->cek_alg;
    /* Same map in another order is the same context: entries are few, so a selection sort by name. */
    size_t count = env->matdesc.count;
    const kv_pair *last = NULL;
    for (size_t round = 0; round < count; round++) {
        const kv_pair *next = NULL;
        for (size_t i = 0; i < count; i++) {
            const kv_pair *p = &env->matdesc.items[i];
            if ((!last || strcmp(p->name, last->name) > 0) && (!next || strcmp(p->name, next->name) < 0))
                next = p;
        }
        if (!next)
            break;
        size_t nl = strlen(next->name) + 1, vl = strlen(next->value) + 1;
        memcpy(k + n, next->name, nl);
        n += nl;
        memcpy(k + n, next->value, vl);
        n += vl;
        last = next;
    }
    *len = n;
    return k;
}

int object_info_data_key(fs_context *ctx, const object_info *info, secure_buf **key_out)
{
    *key_out = NULL;
    if (!info->encrypted)
        return -EINVAL;
    secure_buf *key = secure_buf_new(32);
    if (!key)
        return -ENOMEM;
    key_load_arg arg = { ctx, info };
    int rc;
    size_t lookup_len = 0;
    uint8_t *lookup = ctx->keys ? cache_lookup_key(info, &lookup_len) : NULL;
    if (lookup) {
        rc = key_cache_get_or_load(ctx->keys, lookup, lookup_len, load_key_from_kms, &arg, key->bytes);
        if (rc == 1)
            atomic_fetch_add_explicit(&ctx->counters.key_cache_hits, 1, memory_order_relaxed);
        free(lookup);
    } else {
        rc = load_key_from_kms(&arg, info->env.encrypted_key, info->env.encrypted_key_len, key->bytes);
    }
    if (rc < 0) {
        secure_buf_free(key);
        return rc;
    }
    *key_out = key;
    return 0;
}

static int cbc_size_from_tail(fs_context *ctx, object_info *info, const uint8_t *key)
{
    uint64_t stored = info->head.size;
    if (stored == 0 || stored % 16 != 0) {
        object_info_log_corrupt(ctx, info->key, "size", cse_strerror(CSE_ERR_CIPHERTEXT_LENGTH));
        return -EIO;
    }
    size_t tail_len = stored < 32 ? (size_t)stored : 32;
    uint8_t tail[32];
    size_t got = 0;
    aws_error err;
    aws_error_clear(&err);
    atomic_fetch_add_explicit(&ctx->counters.s3_requests, 1, memory_order_relaxed);
    if (object_info_get_range(ctx, info->key, info->head.etag, stored - tail_len, tail_len, tail, &got, &err) != 0) {
        char msg[400];
        if (err.kind == AWS_ERR_CHANGED) {
            /* The tail of another version would give a wrong size for this envelope. */
            log_error("object %s: replaced while being opened", info->key);
            info->replaced = 1;
            return -EIO;
        }
        log_error("object %s: reading the last blocks: %s", info->key, aws_error_format(&err, msg, sizeof msg));
        return errno_of_aws(&err) == -ENOENT ? -ENOENT : -EIO;
    }
    atomic_fetch_add_explicit(&ctx->counters.bytes_fetched, got, memory_order_relaxed);
    if (got != tail_len) {
        object_info_log_corrupt(ctx, info->key, "size", "object shorter than its HEAD size");
        return -EIO;
    }
    cbc_decryptor *dec = NULL;
    cse_status st = cbc_decryptor_new(key, &dec);
    uint64_t plain = 0;
    if (st == CSE_OK)
        st = cbc_plain_size(dec, info->env.iv, stored, tail, tail_len, &plain);
    cbc_decryptor_free(dec);
    if (st != CSE_OK) {
        object_info_log_corrupt(ctx, info->key, "last block", cse_strerror(st));
        return -EIO;
    }
    info->plain_size = plain;
    info->has_plain_size = 1;
    return 0;
}

int object_info_plain_size(fs_context *ctx, object_info *info, const uint8_t *key)
{
    if (info->has_plain_size)
        return 0;
    uint64_t stored = info->head.size;
    cse_status st = cse_envelope_check_stored_size(&info->env, stored);
    if (st != CSE_OK) {
        object_info_log_corrupt(ctx, info->key, "size", cse_strerror(st));
        return -EIO;
    }
    if (info->env.cek_alg == CSE_CEK_AES_GCM) {
        info->plain_size = stored - CSE_GCM_TAG;
        info->has_plain_size = 1;
        return 0;
    }
    if (info->env.has_plain_length) {
        info->plain_size = info->env.plain_length;
        info->has_plain_size = 1;
        return 0;
    }
    if (key)
        return cbc_size_from_tail(ctx, info, key);
    secure_buf *loaded = NULL;
    int rc = object_info_data_key(ctx, info, &loaded);
    if (rc == 0)
        rc = cbc_size_from_tail(ctx, info, loaded->bytes);
    secure_buf_free(loaded);
    return rc;
}

void object_info_free(object_info *info)
{
    if (!info)
        return;
    if (info->encrypted)
        cse_envelope_free(&info->env);
    objc_head_free(&info->head);
    free(info->key);
    memset(info, 0, sizeof *info);
}
