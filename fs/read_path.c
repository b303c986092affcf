/* Read handles (fs/read_path.h). A handle keeps a queue of contiguous "chunks" ahead of a sequential
 * reader; worker threads of the handle fetch them with parallel ranged GETs and decrypt CBC in place.
 * Random reads drop the queue and fetch only the blocks they need. GCM chunks are decrypted by the
 * reader in order, so a full sequential read runs the authenticated decryptor and checks the tag. */
#include "read_path.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbc_random.h"
#include "gcm.h"
#include "log.h"
#include "namespace.h"
#include "object_info.h"

#define BLOCK 16
#define MAX_WORKERS 16
#define CHUNK_MIN ((uint64_t)256 * 1024)
/* Reads this close to where the last one ended still count as sequential: the kernel issues readahead
 * requests concurrently, so they can arrive slightly out of order. */
#define SEQUENTIAL_SLACK ((uint64_t)1024 * 1024)

typedef enum { CHUNK_PENDING, CHUNK_FETCHING, CHUNK_READY, CHUNK_FAILED } chunk_state;

typedef struct chunk {
    uint64_t start, end;         /* plaintext range; start is block-aligned for CBC */
    chunk_state state;
    int error;                   /* -errno when FAILED */
    int refs;                    /* the queue, a fetching worker and waiting readers each hold one */
    int orphaned;                /* dropped from the queue: no worker will pick it up */
    int decrypted;               /* GCM: ciphertext turned into plaintext by the reader */
    uint8_t *buf;                /* allocation */
    uint8_t *data;               /* plaintext (GCM: ciphertext until decrypted) of [start, end) */
    size_t alloc;
    uint64_t reserved;           /* bytes reserved in the memory budget */
    struct chunk *next;
} chunk;

struct read_handle {
    fs_context *ctx;
    char *key;
    char *path;                  /* mount path, for dropping cached metadata of a replaced object */
    char etag[80];               /* of the HEAD that supplied the envelope: every GET is If-Match on it */
    atomic_int replaced;         /* a GET found another version: every later read fails */
    int encrypted;
    cse_cek_alg cek_alg;
    uint8_t iv[16];
    secure_buf *data_key;
    cbc_decryptor *cbc;
    uint64_t plain_size, stored_size;

    pthread_mutex_t lock;
    pthread_cond_t changed;
    chunk *head, *tail;          /* ascending, contiguous */
    uint64_t window;
    uint64_t next_sequential;    /* where the last read ended */
    pthread_t workers[MAX_WORKERS];
    int worker_count;
    int stop;

    gcm_decryptor *gcm;          /* authenticated in-order decryptor (GCM only) */
    uint64_t gcm_pos;            /* plaintext consumed by it */
    int gcm_broken;              /* reading skipped ahead: no tag check for this handle */
    int gcm_forged;              /* the tag check failed: every later read fails too */
};

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

uint64_t read_handle_size(const read_handle *h) { return h->plain_size; }

/* ---- fetching one range (no lock needed: uses only immutable handle fields) ---- */

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

/* Allocates and fetches chunk c's bytes; decrypts CBC. 0 or -errno (logged when the object is bad). */
static int fetch_chunk(read_handle *h, chunk *c)
{
    fs_context *ctx = h->ctx;
    uint64_t fstart = c->start, fend = c->end;
    size_t lead = 0;
    if (h->encrypted && h->cek_alg == CSE_CEK_AES_CBC) {
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
    if (!c->buf) {
        c->buf = malloc(len ? len : 1);
        if (!c->buf)
            return -ENOMEM;
        c->alloc = len;
    }
    size_t got = 0;
    aws_error err;
    aws_error_clear(&err);
    atomic_fetch_add_explicit(&ctx->counters.s3_requests, 1, memory_order_relaxed);
    if (atomic_load(&h->replaced))
        return -EIO;
    int rc = len == 0 ? 0 : object_info_get_range(ctx, h->key, h->etag, fstart, len, c->buf, &got, &err);
    if (rc != 0 && err.kind == AWS_ERR_CHANGED) {
        note_replaced(h);
        return -EIO;
    }
    if (rc != 0) {
        char msg[400];
        atomic_fetch_add_explicit(&ctx->counters.s3_errors, 1, memory_order_relaxed);
        log_error("object %s: GET bytes %llu-%llu: %s", h->key, (unsigned long long)fstart,
                  (unsigned long long)fend, aws_error_format(&err, msg, sizeof msg));
        return -EIO;
    }
    atomic_fetch_add_explicit(&ctx->counters.bytes_fetched, got, memory_order_relaxed);
    if (got != len) {
        object_info_log_corrupt(ctx, h->key, "GET", "object shorter than its size (changed while open?)");
        return -EIO;
    }
    c->data = c->buf + lead;
    if (!h->encrypted || h->cek_alg != CSE_CEK_AES_CBC)
        return 0;
    const uint8_t *prev = lead ? c->buf : h->iv;
    cse_status st = cbc_decrypt_blocks(h->cbc, prev, c->buf + lead, len - lead, c->buf + lead);
    if (st == CSE_OK && fend == h->stored_size) {
        unsigned pad = 0;
        st = cbc_check_padding(c->buf + len - BLOCK, &pad);
        if (st == CSE_OK && h->stored_size - pad != h->plain_size) {
            object_info_log_corrupt(ctx, h->key, "padding", "padding does not match the plaintext size");
            return -EIO;
        }
    }
    if (st != CSE_OK) {
        object_info_log_corrupt(ctx, h->key, "decrypt", cse_strerror(st));
        return -EIO;
    }
    return 0;
}

static int chunk_in_progress(const read_handle *h, const chunk *c);

/* GCM: turns a fetched chunk's ciphertext into plaintext. In order, the authenticated decryptor runs and
 * the last chunk checks the tag; out of order, unauthenticated CTR. Called with the lock held. */
static int gcm_finish_chunk(read_handle *h, chunk *c)
{
    if (!h->encrypted || h->cek_alg != CSE_CEK_AES_GCM)
        return 0;
    /* The kernel retries a failed readahead page with a plain read; that must not succeed. */
    if (h->gcm_forged)
        return -EIO;
    if (c->decrypted)
        return 0;
    /* Concurrent kernel reads can consume a chunk before the one the verifier needs next: feed the
     * verifier the queued chunks in between first (waiting for them), so the tag is still checked. */
    while (!h->gcm_broken && h->gcm && c->start > h->gcm_pos) {
        chunk *d = h->head;
        while (d && d->start != h->gcm_pos)
            d = d->next;
        if (!d || d->decrypted || d->state == CHUNK_FAILED ||
            (d->state != CHUNK_READY && !chunk_in_progress(h, d))) {
            h->gcm_broken = 1;
            break;
        }
        if (d->state != CHUNK_READY) {
            pthread_cond_wait(&h->changed, &h->lock);
            continue;                          /* the queue may have changed meanwhile */
        }
        int rc = gcm_finish_chunk(h, d);
        if (rc != 0)
            return rc;
    }
    size_t len = (size_t)(c->end - c->start);
    cse_status st;
    if (!h->gcm_broken && h->gcm && c->start == h->gcm_pos) {
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
    } else {
        if (c->start > h->gcm_pos)
            h->gcm_broken = 1;
        st = gcm_decrypt_range(h->data_key->bytes, h->iv, c->start, c->data, len, c->data);
        if (st != CSE_OK) {
            object_info_log_corrupt(h->ctx, h->key, "GCM", cse_strerror(st));
            return -EIO;
        }
    }
    c->decrypted = 1;
    return 0;
}

/* ---- the prefetch queue (lock held) ---- */

static void chunk_free(read_handle *h, chunk *c)
{
    if (--c->refs > 0)
        return;
    if (c->buf) {
        secure_wipe(c->buf, c->alloc);        /* plaintext */
        free(c->buf);
    }
    if (c->reserved)
        memory_budget_release(&h->ctx->memory, c->reserved);
    free(c);
}

/* Whether a reader holding chunk c must keep waiting: only while a worker is fetching it or can still
 * pick it up. An orphaned chunk, or a pending one with no worker left to fetch it, is handed back to the
 * reader (which fetches the bytes itself), so no wait depends on work nobody will do. */
static int chunk_in_progress(const read_handle *h, const chunk *c)
{
    if (c->state == CHUNK_FETCHING)
        return 1;
    return c->state == CHUNK_PENDING && !c->orphaned && !h->stop && h->worker_count > 0;
}

/* Empties the queue. Readers may be waiting on the dropped chunks: they are woken to see them orphaned
 * (dropping is the only change to a pending chunk that no worker's completion would announce). */
static void drop_queue(read_handle *h)
{
    chunk *c = h->head;
    if (c)
        pthread_cond_broadcast(&h->changed);
    while (c) {
        chunk *next = c->next;
        c->orphaned = 1;
        c->next = NULL;
        chunk_free(h, c);                     /* a worker or reader still holding it frees it */
        c = next;
    }
    h->head = h->tail = NULL;
}

static void *worker_main(void *arg);

static void start_workers(read_handle *h)
{
    int want = h->ctx->options.read_concurrency;
    if (want < 1)
        want = 1;
    if (want > MAX_WORKERS)
        want = MAX_WORKERS;
    while (h->worker_count < want) {
        if (pthread_create(&h->workers[h->worker_count], NULL, worker_main, h) != 0)
            break;
        h->worker_count++;
    }
}

/* Queues chunks until the queue reaches `from + window` (or the end), as far as the budget allows. */
static void top_up(read_handle *h, uint64_t from)
{
    uint64_t queued_end = h->tail ? h->tail->end : from;
    uint64_t target = min_u64(from + h->window, h->plain_size);
    int conc = h->ctx->options.read_concurrency > 0 ? h->ctx->options.read_concurrency : 1;
    /* The window is split into read_concurrency parallel GETs; a full window is prefetch_max. */
    uint64_t chunk_size = h->window / (uint64_t)conc;
    /* read_concurrency chunks must fit in the reader's three quarters of the memory budget. */
    uint64_t limit = h->ctx->memory.limit;
    if (limit && chunk_size > (limit - limit / 4) / (uint64_t)conc - 4 * BLOCK)
        chunk_size = (limit - limit / 4) / (uint64_t)conc - 4 * BLOCK;
    if (chunk_size < CHUNK_MIN)
        chunk_size = CHUNK_MIN;
    chunk_size = chunk_size / BLOCK * BLOCK;
    int added = 0;
    while (queued_end < target) {
        uint64_t start = queued_end;
        if (!h->tail && h->encrypted && h->cek_alg == CSE_CEK_AES_CBC)
            start = start / BLOCK * BLOCK;
        uint64_t end = min_u64(start + chunk_size, h->plain_size);
        uint64_t need = end - start + 2 * BLOCK + (h->stored_size - h->plain_size);
        /* Prefetch never takes the last quarter of the budget: writers block on it, readers need not. */
        memory_budget *mb = &h->ctx->memory;
        int over = mb->limit && memory_budget_used(mb) + need > mb->limit - mb->limit / 4;
        if (over || memory_budget_try_reserve(mb, need) != 0) {
            /* Budget spent: shrink the window to what is queued instead of waiting. */
            uint64_t queued = h->tail ? h->tail->end - from : 0;
            h->window = queued > h->ctx->options.prefetch_min ? queued : h->ctx->options.prefetch_min;
            break;
        }
        chunk *c = calloc(1, sizeof *c);
        if (!c) {
            memory_budget_release(&h->ctx->memory, need);
            break;
        }
        c->start = start;
        c->end = end;
        c->reserved = need;
        c->refs = 1;
        c->state = CHUNK_PENDING;
        if (h->tail)
            h->tail->next = c;
        else
            h->head = c;
        h->tail = c;
        queued_end = end;
        added = 1;
    }
    if (added) {
        start_workers(h);
        pthread_cond_broadcast(&h->changed);
    }
}

static void *worker_main(void *arg)
{
    read_handle *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        chunk *c = NULL;
        while (!h->stop) {
            for (c = h->head; c && c->state != CHUNK_PENDING; c = c->next)
                ;
            if (c)
                break;
            pthread_cond_wait(&h->changed, &h->lock);
        }
        if (h->stop)
            break;
        c->state = CHUNK_FETCHING;
        c->refs++;
        pthread_mutex_unlock(&h->lock);
        int rc = fetch_chunk(h, c);
        pthread_mutex_lock(&h->lock);
        c->state = rc == 0 ? CHUNK_READY : CHUNK_FAILED;
        c->error = rc;
        chunk_free(h, c);
        pthread_cond_broadcast(&h->changed);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* ---- reading ---- */

/* Fetches [offset, offset+size) directly (no queue), without the lock held during I/O. */
static ssize_t direct_read(read_handle *h, char *buf, size_t size, uint64_t offset)
{
    chunk c;
    memset(&c, 0, sizeof c);
    c.start = offset;
    if (h->encrypted && h->cek_alg == CSE_CEK_AES_CBC)
        c.start = offset / BLOCK * BLOCK;
    c.end = offset + size;
    /* Small reads are not refused when the budget is spent: they are what keeps a reader going. */
    uint64_t need = c.end - c.start + 2 * BLOCK + (h->stored_size - h->plain_size);
    int reserved = memory_budget_try_reserve(&h->ctx->memory, need) == 0;
    pthread_mutex_unlock(&h->lock);
    int rc = fetch_chunk(h, &c);
    pthread_mutex_lock(&h->lock);
    if (rc == 0)
        rc = gcm_finish_chunk(h, &c);
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
    /* Chunks wholly behind the reader are consumed. */
    while (h->head && h->head->end <= off) {
        chunk *c = h->head;
        if (h->gcm && !h->gcm_broken && !c->decrypted && c->start == h->gcm_pos) {
            /* Skipped by the reader but needed by the tag check: verify it before dropping it. */
            c->refs++;
            while (chunk_in_progress(h, c))
                pthread_cond_wait(&h->changed, &h->lock);
            int rc = 0;
            if (c->state == CHUNK_READY)
                rc = gcm_finish_chunk(h, c);
            else
                h->gcm_broken = 1;
            chunk_free(h, c);
            if (rc != 0) {
                drop_queue(h);
                pthread_mutex_unlock(&h->lock);
                return rc;
            }
            continue;
        }
        h->head = c->next;
        if (!h->head)
            h->tail = NULL;
        /* Another reader (behind this one: concurrent reads arrive out of order) may be waiting on it:
         * out of the queue no worker will fetch it, so it is handed back to that reader. */
        c->orphaned = 1;
        c->next = NULL;
        if (c->state == CHUNK_PENDING)
            pthread_cond_broadcast(&h->changed);
        chunk_free(h, c);
        /* Each request costs a round trip (and moto re-reads the whole object per range): reach the
         * full window in few steps. */
        if (h->window < opt->prefetch_max)
            h->window = min_u64(h->window * 4, opt->prefetch_max);
    }
    int in_queue = h->head && h->head->start <= off && off < h->tail->end;
    int near = h->next_sequential != UINT64_MAX && off + SEQUENTIAL_SLACK >= h->next_sequential &&
               off <= h->next_sequential + SEQUENTIAL_SLACK;
    int sequential = in_queue || near;
    if (sequential && !in_queue && h->tail && h->tail->end < off)
        drop_queue(h);                        /* skipped past the queue */
    if (!sequential) {
        drop_queue(h);
        h->window = opt->prefetch_min;
    } else if (opt->prefetch_max > 0) {
        top_up(h, off);
    }

    size_t done = 0;
    ssize_t result = 0;
    while (done < size) {
        uint64_t pos = off + done;
        chunk *c = h->head;
        while (c && !(c->start <= pos && pos < c->end))
            c = c->next;
        if (!c) {
            result = direct_read(h, buf + done, size - done, pos);
            if (result < 0)
                break;
            done = size;
            break;
        }
        c->refs++;
        while (chunk_in_progress(h, c))
            pthread_cond_wait(&h->changed, &h->lock);
        if (c->state == CHUNK_PENDING) {      /* dropped by another reader, or no worker to fetch it */
            chunk_free(h, c);
            result = direct_read(h, buf + done, size - done, pos);
            if (result >= 0)
                done = size;
            break;
        }
        int rc = c->state == CHUNK_FAILED ? c->error : gcm_finish_chunk(h, c);
        if (rc == 0) {
            size_t n = (size_t)min_u64(c->end - pos, size - done);
            memcpy(buf + done, c->data + (pos - c->start), n);
            done += n;
        }
        chunk_free(h, c);
        if (rc != 0) {
            result = rc;
            drop_queue(h);
            break;
        }
    }
    if (result >= 0) {
        result = (ssize_t)size;
        h->next_sequential = off + size;
        atomic_fetch_add_explicit(&h->ctx->counters.bytes_read_plain, size, memory_order_relaxed);
    } else {
        h->next_sequential = UINT64_MAX;
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
    read_handle *h = calloc(1, sizeof *h);
    if (!h) {
        object_info_free(&info);
        return -ENOMEM;
    }
    h->ctx = ctx;
    h->key = strdup(info.key);
    h->path = strdup(path);
    snprintf(h->etag, sizeof h->etag, "%s", info.head.etag);
    h->encrypted = info.encrypted;
    h->stored_size = info.head.size;
    h->window = ctx->options.prefetch_min ? ctx->options.prefetch_min : CHUNK_MIN;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->changed, NULL);
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
    h->stop = 1;
    drop_queue(h);
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
    for (int i = 0; i < h->worker_count; i++)
        pthread_join(h->workers[i], NULL);
    cbc_decryptor_free(h->cbc);
    gcm_decryptor_free(h->gcm);
    secure_buf_free(h->data_key);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->lock);
    free(h->key);
    free(h->path);
    free(h);
}
