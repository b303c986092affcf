/* Object -> spool: HEAD, envelope, data key from KMS (contexts in the envelope's order), then ranged
 * GETs decrypted block by block; the final block's padding is checked strictly and removed. */
#include "write_load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cbc_random.h"
#include "envelope.h"
#include "log.h"
#include "secure_mem.h"

#define LOAD_CHUNK (1024 * 1024)

static int get_exact(fs_context *ctx, const char *key, uint64_t offset, size_t len, uint8_t *buf)
{
    aws_error err;
    aws_error_clear(&err);
    size_t got = 0;
    ctx->counters.s3_requests++;
    if (ctx->objects->ops->get_range(ctx->objects, key, offset, len, buf, &got, &err) != 0 || got != len) {
        char detail[256];
        ctx->counters.s3_errors++;
        log_error("reading %s back for a change failed: %s", key,
                  got != len && err.kind == AWS_OK ? "object shorter than expected"
                                                   : aws_error_format(&err, detail, sizeof detail));
        return -EIO;
    }
    ctx->counters.bytes_fetched += got;
    return 0;
}

static int load_plain(fs_context *ctx, const char *key, uint64_t size, spool *sp)
{
    uint8_t *buf = malloc(LOAD_CHUNK);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    for (uint64_t off = 0; rc == 0 && off < size; off += LOAD_CHUNK) {
        size_t n = size - off < LOAD_CHUNK ? (size_t)(size - off) : LOAD_CHUNK;
        rc = get_exact(ctx, key, off, n, buf);
        if (rc == 0)
            rc = spool_write(sp, off, buf, n);
    }
    free(buf);
    return rc;
}

static int unwrap_data_key(fs_context *ctx, const char *key, const cse_envelope *env, secure_buf **data_key)
{
    kv_list contexts[2];
    size_t count = 0;
    if (cse_envelope_kms_contexts(env, contexts, &count) != CSE_OK)
        return -EIO;
    int rc = -EIO;
    aws_error err;
    aws_error_clear(&err);
    for (size_t i = 0; i < count && rc != 0; i++) {
        ctx->counters.kms_decrypt_calls++;
        if (kms_decrypt(ctx->kms, env->encrypted_key, env->encrypted_key_len, &contexts[i], NULL, data_key,
                        &err) == 0 && *data_key && (*data_key)->len == 32)
            rc = 0;
    }
    for (size_t i = 0; i < count; i++)
        kv_list_free(&contexts[i]);
    if (rc != 0) {
        char detail[256];
        log_error("reading %s back for a change: KMS Decrypt failed: %s", key,
                  aws_error_format(&err, detail, sizeof detail));
    }
    return rc;
}

static int load_cbc(fs_context *ctx, const char *key, uint64_t stored, const cse_envelope *env, spool *sp)
{
    if (stored == 0 || stored % 16 != 0) {
        log_error("reading %s back for a change: ciphertext length %llu is not whole blocks", key,
                  (unsigned long long)stored);
        return -EIO;
    }
    secure_buf *data_key = NULL;
    int rc = unwrap_data_key(ctx, key, env, &data_key);
    if (rc != 0)
        return rc;
    cbc_decryptor *dec = NULL;
    uint8_t *buf = malloc(LOAD_CHUNK);
    if (!buf || cbc_decryptor_new(data_key->bytes, &dec) != CSE_OK) {
        free(buf);
        secure_buf_free(data_key);
        return -ENOMEM;
    }
    uint8_t prev[16];
    memcpy(prev, env->iv, 16);
    for (uint64_t off = 0; rc == 0 && off < stored; off += LOAD_CHUNK) {
        size_t n = stored - off < LOAD_CHUNK ? (size_t)(stored - off) : LOAD_CHUNK;
        rc = get_exact(ctx, key, off, n, buf);
        if (rc != 0)
            break;
        uint8_t next_prev[16];
        memcpy(next_prev, buf + n - 16, 16);
        if (cbc_decrypt_blocks(dec, prev, buf, n, buf) != CSE_OK) {
            rc = -EIO;
            break;
        }
        memcpy(prev, next_prev, 16);
        size_t keep = n;
        if (off + n == stored) {
            unsigned pad = 0;
            if (cbc_check_padding(buf + n - 16, &pad) != CSE_OK) {
                log_error("reading %s back for a change: bad padding (corrupt object or wrong key)", key);
                ctx->counters.decrypt_errors++;
                rc = -EIO;
                break;
            }
            keep = n - pad;
        }
        rc = spool_write(sp, off, buf, keep);
    }
    secure_wipe(buf, LOAD_CHUNK);
    free(buf);
    cbc_decryptor_free(dec);
    secure_buf_free(data_key);
    if (rc == 0 && spool_size(sp) != 0 && env->has_plain_length && env->plain_length != spool_size(sp))
        log_warn("%s: x-amz-unencrypted-content-length disagrees with the padding; using the padding", key);
    return rc;
}

int write_load_object(fs_context *ctx, const char *key, spool *sp, kv_list *keep_metadata)
{
    objc_head head;
    memset(&head, 0, sizeof head);
    kv_list_init(&head.metadata);
    aws_error err;
    aws_error_clear(&err);
    ctx->counters.s3_requests++;
    if (ctx->objects->ops->head(ctx->objects, key, &head, &err) != 0) {
        if (err.kind == AWS_ERR_NOT_FOUND)
            return -ENOENT;
        char detail[256];
        ctx->counters.s3_errors++;
        log_error("reading %s back for a change: HEAD failed: %s", key, aws_error_format(&err, detail, sizeof detail));
        return -EIO;
    }
    for (size_t i = 0; keep_metadata && i < head.metadata.count; i++) {
        const kv_pair *kv = &head.metadata.items[i];
        if (strncasecmp(kv->name, "x-amz-", 6) != 0 && kv_list_set(keep_metadata, kv->name, kv->value) != 0) {
            objc_head_free(&head);
            return -ENOMEM;
        }
    }
    cse_envelope env;
    memset(&env, 0, sizeof env);
    cse_status st = cse_envelope_parse_metadata(&head.metadata, &env);
    int rc;
    if (st == CSE_ERR_NOT_ENCRYPTED) {
        rc = load_plain(ctx, key, head.size, sp);
    } else if (st != CSE_OK) {
        log_error("reading %s back for a change: bad envelope: %s", key, cse_strerror(st));
        rc = -EIO;
    } else if (env.cek_alg != CSE_CEK_AES_CBC) {
        log_error("%s: changing a GCM object in place is not supported (copy it to a new file instead)", key);
        rc = -EIO;
    } else {
        rc = load_cbc(ctx, key, head.size, &env, sp);
    }
    if (st == CSE_OK)
        cse_envelope_free(&env);
    objc_head_free(&head);
    return rc;
}
