/* Object -> spool: HEAD and envelope through object_info (metadata or <key>.instruction), the data key
 * through object_info_data_key (key cache, KMS), then ranged GETs pinned to the HEAD's ETag (If-Match:
 * a replacement uploaded meanwhile is never mixed in) decrypted block by block; the final block's
 * padding is checked strictly and removed. */
#include "write_load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cbc_random.h"
#include "envelope.h"
#include "log.h"
#include "object_info.h"
#include "secure_mem.h"

#define LOAD_CHUNK (1024 * 1024)

static int get_exact(fs_context *ctx, const char *key, const char *etag, uint64_t offset, size_t len,
                     uint8_t *buf)
{
    aws_error err;
    aws_error_clear(&err);
    size_t got = 0;
    ctx->counters.s3_requests++;
    if (object_info_get_range(ctx, key, etag, offset, len, buf, &got, &err) != 0 || got != len) {
        char detail[256];
        ctx->counters.s3_errors++;
        log_error("reading %s back for a change failed: %s", key,
                  err.kind == AWS_ERR_CHANGED ? "the object was replaced while being read"
                  : got != len && err.kind == AWS_OK ? "object shorter than expected"
                                                     : aws_error_format(&err, detail, sizeof detail));
        return -EIO;
    }
    ctx->counters.bytes_fetched += got;
    return 0;
}

static int load_plain(fs_context *ctx, const object_info *info, spool *sp)
{
    uint8_t *buf = malloc(LOAD_CHUNK);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    uint64_t size = info->head.size;
    for (uint64_t off = 0; rc == 0 && off < size; off += LOAD_CHUNK) {
        size_t n = size - off < LOAD_CHUNK ? (size_t)(size - off) : LOAD_CHUNK;
        rc = get_exact(ctx, info->key, info->head.etag, off, n, buf);
        if (rc == 0)
            rc = spool_write(sp, off, buf, n);
    }
    secure_wipe(buf, LOAD_CHUNK);
    free(buf);
    return rc;
}

static int load_cbc(fs_context *ctx, const object_info *info, spool *sp)
{
    const char *key = info->key;
    const cse_envelope *env = &info->env;
    uint64_t stored = info->head.size;
    if (stored == 0 || stored % 16 != 0) {
        log_error("reading %s back for a change: ciphertext length %llu is not whole blocks", key,
                  (unsigned long long)stored);
        return -EIO;
    }
    secure_buf *data_key = NULL;
    int rc = object_info_data_key(ctx, info, &data_key);
    if (rc != 0)
        return -EIO;
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
        rc = get_exact(ctx, key, info->head.etag, off, n, buf);
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
    object_info info;
    ctx->counters.s3_requests++;
    int rc = object_info_head(ctx, key, -1, &info);
    if (rc != 0) {
        if (rc != -ENOENT)
            log_error("reading %s back for a change: %s", key, rc == -ENOMEM ? "out of memory"
                                                                            : "HEAD or envelope failed");
        return rc == -ENOENT || rc == -ENOMEM ? rc : -EIO;
    }
    for (size_t i = 0; keep_metadata && i < info.head.metadata.count; i++) {
        const kv_pair *kv = &info.head.metadata.items[i];
        if (strncasecmp(kv->name, "x-amz-", 6) != 0 && kv_list_set(keep_metadata, kv->name, kv->value) != 0) {
            object_info_free(&info);
            return -ENOMEM;
        }
    }
    if (!info.encrypted) {
        rc = load_plain(ctx, &info, sp);
    } else if (info.env.cek_alg != CSE_CEK_AES_CBC) {
        log_error("%s: changing a GCM object in place is not supported (copy it to a new file instead)", key);
        rc = -EIO;
    } else {
        rc = load_cbc(ctx, &info, sp);
    }
    object_info_free(&info);
    return rc;
}
