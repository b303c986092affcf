/* Read handles (fs/read_path.h): open (envelope, data key, exact size), close, and the decision of each
 * read. A sequential reader is served by the handle's streaming GET (read_stream.c); a read away from
 * it cancels the stream and fetches only the blocks it needs with one ranged GET (read_direct); a read
 * behind what the stream still holds is fetched with the bytes after it, kept for the reads that
 * follow (late_read). */
#include "read_path_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cbc_random.h"
#include "gcm.h"
#include "log.h"
#include "meta_cache.h"
#include "namespace.h"
#include "object_info.h"


uint64_t read_handle_size(const read_handle *h) { return h->plain_size; }

/* The object was replaced while open: its bytes no longer match this handle's envelope and key. One log
 * line per handle, and the cached size of the old version is dropped so a new open sees the new one. */
static void note_replaced(read_handle *h)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&h->replaced, &expected, 1))
        return;
    log_error("object %s: object replaced while open", h->key);
    if (h->ctx->meta && h->path)
        meta_cache_invalidate(h->ctx->meta, h->path);
}

/* The failure of a GET as the reader sees it: a replaced object is noted, anything else logged. */
int read_get_failed(read_handle *h, const aws_error *err, uint64_t from, uint64_t to)
{
    if (err->kind == AWS_ERR_CHANGED) {
        note_replaced(h);
        return -EIO;
    }
    char msg[400];
    atomic_fetch_add_explicit(&h->ctx->counters.s3_errors, 1, memory_order_relaxed);
    log_error("object %s: GET bytes %llu-%llu: %s", h->key, (unsigned long long)from, (unsigned long long)to,
              aws_error_format(err, msg, sizeof msg));
    return -EIO;
}


/* ---- direct reads: one ranged GET for the blocks a read needs ---- */

typedef struct {
    uint64_t start, end;         /* plaintext range; start is block-aligned for CBC */
    uint8_t *buf;                /* allocation */
    uint8_t *data;               /* plaintext (GCM: ciphertext until decrypted) of [start, end) */
    size_t alloc;
} range_buf;

/* CBC: decrypts a fetched range in place and checks the padding when it holds the last block. */
static int cbc_decrypt_range(read_handle *h, range_buf *c, size_t lead, size_t len, uint64_t fend)
{
    const uint8_t *prev = lead ? c->buf : h->iv;
    cse_status st = cbc_decrypt_blocks(h->cbc, prev, c->buf + lead, len - lead, c->buf + lead);
    if (st == CSE_OK && fend == h->stored_size) {
        unsigned pad = 0;
        st = cbc_check_padding(c->buf + len - BLOCK, &pad);
        if (st == CSE_OK && h->stored_size - pad != h->plain_size) {
            object_info_log_corrupt(h->ctx, h->key, "padding", "padding does not match the plaintext size");
            return -EIO;
        }
    }
    if (st != CSE_OK) {
        object_info_log_corrupt(h->ctx, h->key, "decrypt", cse_strerror(st));
        return -EIO;
    }
    return 0;
}

/* Allocates and fetches c's bytes; decrypts CBC. 0 or -errno (logged when the object is bad). No lock
 * needed: uses only immutable handle fields. */
static int fetch_range(read_handle *h, range_buf *c)
{
    fs_context *ctx = h->ctx;
    uint64_t fstart = c->start, fend = c->end;
    size_t lead = 0;
    if (is_cbc(h)) {
        if (c->start > 0) {
            fstart = c->start - BLOCK;
            lead = BLOCK;
        }
        fend = (c->end + BLOCK - 1) / BLOCK * BLOCK;
        if (c->end == h->plain_size)
            fend = h->stored_size;          /* the padded last block is checked */
    } else if (h->encrypted && c->end == h->plain_size) {
        fend = h->stored_size;              /* GCM: the tag follows the data */
    }
    size_t len = (size_t)(fend - fstart);
    c->buf = malloc(len ? len : 1);
    if (!c->buf)
        return -ENOMEM;
    c->alloc = len;
    size_t got = 0;
    aws_error err;
    aws_error_clear(&err);
    atomic_fetch_add_explicit(&ctx->counters.s3_requests, 1, memory_order_relaxed);
    if (atomic_load(&h->replaced))
        return -EIO;
    if (len && object_info_get_range(ctx, h->key, h->etag, fstart, len, c->buf, &got, &err) != 0)
        return read_get_failed(h, &err, fstart, fend);
    atomic_fetch_add_explicit(&ctx->counters.bytes_fetched, got, memory_order_relaxed);
    if (got != len) {
        object_info_log_corrupt(ctx, h->key, "GET", "object shorter than its size (changed while open?)");
        return -EIO;
    }
    c->data = c->buf + lead;
    return is_cbc(h) ? cbc_decrypt_range(h, c, lead, len, fend) : 0;
}

/* GCM: turns a directly fetched range into plaintext. Where the authenticated decryptor stands (and no
 * stream is feeding it) it runs, and the range that ends the object checks the tag; elsewhere CTR,
 * unauthenticated. Called with the lock held. */
static int gcm_finish_range(read_handle *h, range_buf *c)
{
    if (!is_gcm(h))
        return 0;
    /* The kernel retries a failed readahead page with a plain read; that must not succeed. */
    if (h->gcm_forged)
        return -EIO;
    size_t len = (size_t)(c->end - c->start);
    cse_status st;
    if (!h->gcm_broken && h->gcm && !h->gcm_owner && c->start == h->gcm_pos) {
        st = gcm_decryptor_update(h->gcm, c->data, len, c->data);
        if (st == CSE_OK) {
            h->gcm_pos = c->end;
            if (c->end == h->plain_size)
                st = gcm_decryptor_final(h->gcm, c->data + len);
        }
        if (st != CSE_OK) {
            h->gcm_broken = 1;
            h->gcm_forged = 1;
            object_info_log_corrupt(h->ctx, h->key, "GCM", cse_strerror(st));
            return -EIO;
        }
        return 0;
    }
    st = gcm_decrypt_range(h->data_key->bytes, h->iv, c->start, c->data, len, c->data);
    if (st != CSE_OK) {
        object_info_log_corrupt(h->ctx, h->key, "GCM", cse_strerror(st));
        return -EIO;
    }
    return 0;
}

/* Fetches [offset, offset+size) directly, without the lock held during I/O. Lock held on entry/exit. */
ssize_t read_direct(read_handle *h, char *buf, size_t size, uint64_t offset)
{
    range_buf c;
    memset(&c, 0, sizeof c);
    c.start = is_cbc(h) ? offset / BLOCK * BLOCK : offset;
    c.end = offset + size;
    /* Small reads are not refused when the budget is spent: they are what keeps a reader going. */
    uint64_t need = c.end - c.start + 2 * BLOCK + (h->stored_size - h->plain_size);
    int reserved = memory_budget_try_reserve(&h->ctx->memory, need) == 0;
    pthread_mutex_unlock(&h->lock);
    int rc = fetch_range(h, &c);
    pthread_mutex_lock(&h->lock);
    if (rc == 0)
        rc = gcm_finish_range(h, &c);
    if (rc == 0)
        memcpy(buf, c.data + (offset - c.start), size);
    if (c.buf) {
        secure_wipe(c.buf, c.alloc);
        free(c.buf);
    }
    if (reserved)
        memory_budget_release(&h->ctx->memory, need);
    return rc == 0 ? (ssize_t)size : rc;
}

static void late_drop(read_handle *h)
{
    if (!h->late)
        return;
    secure_wipe(h->late, h->late_end - h->late_start);
    free(h->late);
    memory_budget_release(&h->ctx->memory, h->late_end - h->late_start);
    h->late = NULL;
}

/* A read behind what the stream still holds (lock held): served from the late buffer, or fetched with
 * the bytes after it up to `low` (the stream's first byte) and kept for the reads that follow. */
static ssize_t late_read(read_handle *h, uint64_t low, char *buf, size_t size, uint64_t off)
{
    if (h->late && off >= h->late_start && off + size <= h->late_end) {
        memcpy(buf, h->late + (off - h->late_start), size);
        return (ssize_t)size;
    }
    uint64_t end = min_u64(max_u64(off + size, min_u64(low, off + LATE_FETCH_MAX)), h->plain_size);
    size_t len = (size_t)(end - off);
    uint8_t *data = NULL;
    if (len > size && memory_budget_try_reserve(&h->ctx->memory, len) == 0) {
        data = malloc(len);
        if (!data)
            memory_budget_release(&h->ctx->memory, len);
    }
    if (!data)
        return read_direct(h, buf, size, off);
    ssize_t n = read_direct(h, (char *)data, len, off);
    if (n < 0) {
        secure_wipe(data, len);
        free(data);
        memory_budget_release(&h->ctx->memory, len);
        return n;
    }
    memcpy(buf, data, size);
    late_drop(h);                             /* another late reader's, replaced */
    h->late = data;
    h->late_start = off;
    h->late_end = end;
    return (ssize_t)size;
}

ssize_t read_handle_read(read_handle *h, char *buf, size_t size, off_t offset)
{
    if (offset < 0)
        return -EINVAL;
    uint64_t off = (uint64_t)offset;
    if (off >= h->plain_size || size == 0)
        return 0;
    size = (size_t)min_u64(size, h->plain_size - off);
    fs_options *opt = &h->ctx->options;

    /* Never bytes of two versions in one handle: once replaced, even prefetched old bytes are refused. */
    if (atomic_load(&h->replaced))
        return -EIO;
    pthread_mutex_lock(&h->lock);
    if (h->gcm_forged) {
        pthread_mutex_unlock(&h->lock);
        return -EIO;
    }
    read_stream_reap(h);
    int near = h->next_sequential != UINT64_MAX && off + SEQUENTIAL_SLACK >= h->next_sequential &&
               off <= h->next_sequential + SEQUENTIAL_SLACK;
    stream *s = h->current;
    if (s && !s->cancel) {
        /* Around a running stream, out-of-order arrival is wider than around a single reader. */
        uint64_t at = max_u64(s->consumed, h->next_sequential == UINT64_MAX ? 0 : h->next_sequential);
        uint64_t reorder = stream_reorder(h);
        near = near || (off + reorder >= read_stream_low(s) && off <= at + reorder);
    }
    int behind = s && !s->error && !s->cancel && off < read_stream_low(s) && near;
    if (s && near && off < s->consumed)
        read_stream_note_late(s, off);
    if (s && !behind && !read_stream_serves(s, off, near)) {
        read_stream_retire(h);                     /* random access away from the stream, or it failed */
        s = NULL;
        if (!near)
            h->window = opt->prefetch_min ? opt->prefetch_min : SEGMENT_MIN;
    }
    if (!s && near && opt->prefetch_max > 0 && h->ctx->objects->ops->get_stream)
        s = read_stream_start(h, off);
    ssize_t result;
    if (s && !behind)
        result = read_stream_read(h, s, buf, size, off);
    else if (behind)
        result = late_read(h, read_stream_low(s), buf, size, off);
    else
        result = read_direct(h, buf, size, off);
    if (result >= 0) {
        result = (ssize_t)size;
        h->next_sequential = off + size;
        atomic_fetch_add_explicit(&h->ctx->counters.bytes_read_plain, size, memory_order_relaxed);
    } else {
        h->next_sequential = UINT64_MAX;
        if (h->current && h->current->error)
            read_stream_retire(h);
    }
    pthread_mutex_unlock(&h->lock);
    return result;
}

/* ---- open / close ---- */

static int prepare_decryption(read_handle *h, const object_info *info)
{
    h->cek_alg = info->env.cek_alg;
    size_t want_iv = h->cek_alg == CSE_CEK_AES_GCM ? CSE_GCM_IV : BLOCK;
    if (info->env.iv_len != want_iv) {
        object_info_log_corrupt(h->ctx, h->key, "envelope", cse_strerror(CSE_ERR_IV_LENGTH));
        return -EIO;
    }
    memcpy(h->iv, info->env.iv, want_iv);
    int rc = object_info_data_key(h->ctx, info, &h->data_key);
    if (rc != 0)
        return rc;
    cse_status st;
    if (h->cek_alg == CSE_CEK_AES_CBC)
        st = cbc_decryptor_new(h->data_key->bytes, &h->cbc);
    else
        st = gcm_decryptor_new(h->data_key->bytes, h->iv, &h->gcm);
    if (st != CSE_OK) {
        log_error("object %s: cipher setup: %s", h->key, cse_strerror(st));
        return st == CSE_ERR_NO_MEMORY ? -ENOMEM : -EIO;
    }
    return 0;
}

/* The handle's lock and condition variable; the condition's timed waits use CLOCK_MONOTONIC. */
static int init_sync(read_handle *h)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -ENOMEM;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&h->changed, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    return 0;
}

/* One attempt of read_handle_open; *replaced set when the object changed between HEAD and the tail GET. */
static int open_once(fs_context *ctx, const char *path, read_handle **out, int *replaced)
{
    *out = NULL;
    *replaced = 0;
    char *key = ns_path_to_key(ctx, path);
    if (!key)
        return -ENOMEM;
    object_info info;
    int rc = object_info_head(ctx, key, -1, &info);
    free(key);
    if (rc != 0)
        return rc;
    /* The version stat already sized (same ETag, date and length): no second tail GET for it. */
    meta_stat known;
    if (info.encrypted && !info.has_plain_size && ctx->meta &&
        meta_cache_object_get(ctx->meta, path, info.head.etag, info.head.last_modified, info.head.size, &known) &&
        known.encrypted && known.size_known) {
        info.plain_size = known.size;
        info.has_plain_size = 1;
    }
    read_handle *h = calloc(1, sizeof *h);
    if (!h || init_sync(h) != 0) {
        free(h);
        object_info_free(&info);
        return -ENOMEM;
    }
    h->ctx = ctx;
    h->key = strdup(info.key);
    h->path = strdup(path);
    snprintf(h->etag, sizeof h->etag, "%s", info.head.etag);
    h->encrypted = info.encrypted;
    h->stored_size = info.head.size;
    h->window = ctx->options.prefetch_min ? ctx->options.prefetch_min : SEGMENT_MIN;
    if (!h->key || !h->path)
        rc = -ENOMEM;
    else if (h->encrypted) {
        rc = prepare_decryption(h, &info);
        if (rc == 0)
            rc = object_info_plain_size(ctx, &info, h->data_key->bytes);
    }
    if (rc == 0)
        h->plain_size = info.plain_size;
    *replaced = info.replaced;
    object_info_free(&info);
    if (rc != 0) {
        read_handle_close(h);
        return rc;
    }
    *out = h;
    return 0;
}

int read_handle_open(fs_context *ctx, const char *path, read_handle **out)
{
    /* Nothing has been returned yet: a replacement seen during open is simply opened again, from HEAD. */
    int replaced = 0, rc = -EIO;
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = open_once(ctx, path, out, &replaced);
        if (!replaced)
            break;
        if (ctx->meta)
            meta_cache_invalidate(ctx->meta, path);
    }
    return rc;
}

void read_handle_close(read_handle *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    read_stream_retire(h);
    stream *all = h->retired;
    h->retired = NULL;
    pthread_mutex_unlock(&h->lock);
    /* No reader is left (FUSE releases a handle after its reads): wait for the fetch threads, which stop
     * at their sink's next call, then free what they leave. */
    while (all) {
        stream *s = all;
        all = s->next_retired;
        read_stream_free(s);
    }
    read_stream_spares_free(h);
    late_drop(h);
    cbc_decryptor_free(h->cbc);
    gcm_decryptor_free(h->gcm);
    secure_buf_free(h->data_key);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->lock);
    free(h->key);
    free(h->path);
    free(h);
}
