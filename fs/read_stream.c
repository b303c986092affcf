/* The streaming GET behind a sequential reader of a read handle (see read_path.c for the handle): one
 * object_client get_stream from the reader's position to the end of the object; a fetch thread decrypts
 * the body as it arrives into a bounded queue of plaintext segments that readers copy from, and blocks
 * in the sink (S3 stops sending) while the queue holds a window of unread plaintext or the memory
 * budget is spent. Reads around the stream, in any order, are served from it; bytes behind the furthest
 * read are kept for late readers. */
#include "read_path_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "object_info.h"

/* ---- the stream's plaintext queue (lock held) ---- */

static uint64_t segment_size(const read_handle *h)
{
    uint64_t size = h->ctx->options.prefetch_min;
    size = size < SEGMENT_MIN ? SEGMENT_MIN : size > SEGMENT_MAX ? SEGMENT_MAX : size;
    return size / BLOCK * BLOCK;
}

static void segment_destroy(read_handle *h, segment *g)
{
    secure_wipe(g->data, g->cap);             /* plaintext */
    free(g->data);
    memory_budget_release(&h->ctx->memory, g->cap);
    free(g);
}

/* A segment leaves a queue: kept for reuse while few are spare and a fetch thread runs to refill it
 * (its plaintext is overwritten by the next use, or wiped when the spares are dropped), else wiped and
 * freed. */
static void segment_free(read_handle *h, segment *g)
{
    if (h->spare_count < SPARE_MAX && g->cap == segment_size(h) && h->current && !h->current->finished) {
        g->next = h->spare;
        h->spare = g;
        h->spare_count++;
        return;
    }
    segment_destroy(h, g);
}

void read_stream_spares_free(read_handle *h)
{
    while (h->spare) {
        segment *g = h->spare;
        h->spare = g->next;
        segment_destroy(h, g);
    }
    h->spare_count = 0;
}

void read_stream_free_segments(stream *s)
{
    while (s->head) {
        segment *g = s->head;
        s->head = g->next;
        segment_free(s->h, g);
    }
    s->tail = NULL;
}

/* First plaintext offset still queued. */
uint64_t read_stream_low(const stream *s)
{
    return s->head ? s->head->start : s->produced;
}

/* Drops segments every reader is past (with the slack late concurrent reads need); each one consumed
 * whole shows a reader keeping up, so the window grows toward prefetch_max. */
static void stream_trim(stream *s)
{
    read_handle *h = s->h;
    int freed = 0;
    while (s->head && s->head->start + s->head->cap <= s->produced &&
           s->head->start + s->head->cap + s->keep_behind <= s->consumed) {
        segment *g = s->head;
        s->head = g->next;
        if (!s->head)
            s->tail = NULL;
        segment_free(h, g);
        freed = 1;
        h->window = min_u64(h->window * 2, h->ctx->options.prefetch_max);
    }
    if (freed)
        pthread_cond_broadcast(&h->changed);
}

/* Gives up segments that every reader is past although they were kept for late reads (the memory is
 * wanted by a reader waiting ahead). 1 if one went (to the spares, or freed). */
static int stream_drop_kept(stream *s)
{
    segment *g = s->head;
    if (!g || g->start + g->cap > s->produced || g->start + g->cap > s->consumed)
        return 0;
    s->head = g->next;
    if (!s->head)
        s->tail = NULL;
    segment_free(s->h, g);
    return 1;
}

/* Copies [pos, pos+n) (all published) out of the segments. Bounded by `produced`, never by a
 * segment's fill level, which belongs to the fetch thread. */
static void stream_copy(const stream *s, char *out, uint64_t pos, size_t n)
{
    for (const segment *g = s->head; g && n; g = g->next) {
        if (pos >= g->start + g->cap)
            continue;
        size_t at = (size_t)(pos - g->start);
        size_t k = g->cap - at < n ? g->cap - at : n;
        memcpy(out, g->data + at, k);
        out += k;
        pos += k;
        n -= k;
    }
}

/* ---- the fetch thread: body bytes -> plaintext segments ---- */

/* What readers may see of what was written: for an authenticated GCM stream, not the last byte before
 * the tag is checked, so the read that reaches the end of the object fails on a forged tag. */
static void stream_publish(stream *s)
{
    read_handle *h = s->h;
    uint64_t visible = s->written;
    if (s->owns_gcm && !s->gcm_verified && h->plain_size)
        visible = min_u64(visible, h->plain_size - 1);
    if (visible > s->produced) {
        s->produced = visible;
        /* Woken readers that still wait set wake_at again. */
        if (s->waiting && s->produced >= s->wake_at) {
            s->wake_at = UINT64_MAX;
            pthread_cond_broadcast(&s->published);
        }
    }
    if (s->owns_gcm)
        h->gcm_pos = min_u64(s->cipher_pos, h->plain_size);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_ms(read_handle *h, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&h->changed, &h->lock, &ts);
}

/* Reserves a segment: within the reader's three quarters of the budget (writers block on the budget,
 * readers need not), or anywhere in it when a reader is waiting for exactly this data. */
static int reserve_segment(read_handle *h, uint64_t bytes, int starving)
{
    memory_budget *mb = &h->ctx->memory;
    if (!starving && mb->limit && memory_budget_used(mb) + bytes > mb->limit - mb->limit / 4)
        return -1;
    return memory_budget_try_reserve(mb, bytes);
}

static void stream_append(stream *s, segment *g)
{
    g->start = s->written;                    /* the tail is full (or the queue empty): the next byte */
    g->filled = 0;
    g->next = NULL;
    if (s->tail)
        s->tail->next = g;
    else
        s->head = g;
    s->tail = g;
}

/* Appends a spare segment (already reserved) at the end of the queue. */
static void stream_add_spare(stream *s)
{
    read_handle *h = s->h;
    segment *g = h->spare;
    h->spare = g->next;
    h->spare_count--;
    stream_append(s, g);
}

/* Appends a newly reserved segment at the end of the queue; drops the lock while allocating. */
static int stream_add_segment(stream *s, uint64_t cap)
{
    read_handle *h = s->h;
    pthread_mutex_unlock(&h->lock);
    segment *g = calloc(1, sizeof *g);
    uint8_t *data = g ? malloc(cap) : NULL;
    pthread_mutex_lock(&h->lock);
    if (!data) {
        free(g);
        memory_budget_release(&h->ctx->memory, cap);
        return -ENOMEM;
    }
    g->cap = (size_t)cap;
    g->data = data;
    stream_append(s, g);
    return 0;
}


/* Makes room for at least one byte in the tail segment: publishes what is written, then waits while
 * the queue holds a window of unread plaintext or the budget is spent. 0, 1 when the stream must stop
 * (cancelled, idle), or -errno. */
static int stream_need_space(stream *s)
{
    read_handle *h = s->h;
    if (s->tail && s->tail->filled < s->tail->cap)
        return 0;
    uint64_t cap = segment_size(h);
    int64_t idle_since = now_ms();
    uint64_t consumed_then = 0;
    int rc = 0;
    pthread_mutex_lock(&h->lock);
    stream_publish(s);
    for (;;) {
        if (s->cancel) {
            rc = 1;
            break;
        }
        uint64_t end = s->tail ? s->tail->start + s->tail->cap : s->written;
        int starving = s->wanted > end;
        int room = end < max_u64(s->consumed, s->wanted) + h->window;
        if ((starving || room) && h->spare) {
            stream_add_spare(s);
            break;
        }
        if ((starving || room) && reserve_segment(h, cap, starving) == 0) {
            rc = stream_add_segment(s, cap);
            break;
        }
        if (starving && stream_drop_kept(s))
            continue;                         /* bytes kept for late reads give way to a waiting reader */
        if (s->consumed != consumed_then) {
            consumed_then = s->consumed;
            idle_since = now_ms();
        } else if (now_ms() - idle_since > STREAM_IDLE_MS) {
            s->cancel = 1;                    /* readers that come later start a new stream */
            rc = 1;
            break;
        }
        wait_ms(h, BUDGET_RETRY_MS);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* Plaintext into the tail segment (which has room). Returns the bytes taken. */
static size_t stream_put(stream *s, const uint8_t *p, size_t n)
{
    segment *g = s->tail;
    size_t k = g->cap - g->filled < n ? g->cap - g->filled : n;
    memcpy(g->data + g->filled, p, k);
    g->filled += k;
    s->written += k;
    return k;
}

/* Emits plaintext that may span segments. 0, 1 (stop) or -errno. */
static int stream_emit(stream *s, const uint8_t *p, size_t n)
{
    while (n) {
        int rc = stream_need_space(s);
        if (rc)
            return rc;
        size_t k = stream_put(s, p, n);
        p += k;
        n -= k;
    }
    return 0;
}

/* CBC, one block through the small buffer (the first bytes after a partial block, and the last block,
 * whose padding is checked before its plaintext is published). */
static int cbc_block(stream *s)
{
    read_handle *h = s->h;
    uint8_t plain[BLOCK];
    cse_status st = cbc_decrypt_blocks(h->cbc, s->prev, s->part, BLOCK, plain);
    memcpy(s->prev, s->part, BLOCK);
    s->part_len = 0;
    size_t keep = BLOCK;
    if (st == CSE_OK && s->cipher_pos == h->stored_size) {
        unsigned pad = 0;
        st = cbc_check_padding(plain, &pad);
        if (st == CSE_OK && h->stored_size - pad != h->plain_size) {
            object_info_log_corrupt(h->ctx, h->key, "padding", "padding does not match the plaintext size");
            return -EIO;
        }
        keep = BLOCK - pad;
    }
    if (st != CSE_OK) {
        object_info_log_corrupt(h->ctx, h->key, "decrypt", cse_strerror(st));
        return -EIO;
    }
    int rc = stream_emit(s, plain, keep);
    secure_wipe(plain, sizeof plain);
    return rc;
}

/* Ciphertext into the small block buffer `part` (a block split across network chunks, the CBC final
 * block, the GCM tag). Returns the bytes taken. */
static size_t take_into_part(stream *s, const uint8_t *data, size_t n)
{
    size_t k = BLOCK - s->part_len < n ? BLOCK - s->part_len : n;
    memcpy(s->part + s->part_len, data, k);
    s->part_len += k;
    s->cipher_pos += k;
    return k;
}

/* k bytes were decrypted into the tail segment g. */
static void took_into_segment(stream *s, segment *g, size_t k)
{
    g->filled += k;
    s->written += k;
    s->cipher_pos += k;
}

/* CBC: whole blocks are decrypted straight from the network buffer into the segment; the block before
 * the next one is carried in prev. */
static int cbc_feed(stream *s, const uint8_t *data, size_t n)
{
    read_handle *h = s->h;
    uint64_t final_block = h->stored_size - BLOCK;
    while (n) {
        if (s->lead_left) {                   /* the block before `start`: chaining only */
            size_t k = n < s->lead_left ? n : s->lead_left;
            memcpy(s->prev + BLOCK - s->lead_left, data, k);
            s->lead_left -= k;
            s->cipher_pos += k;
            data += k;
            n -= k;
        } else if (s->part_len || n < BLOCK || s->cipher_pos >= final_block) {
            size_t k = take_into_part(s, data, n);
            data += k;
            n -= k;
            int rc = s->part_len == BLOCK ? cbc_block(s) : 0;
            if (rc)
                return rc;
        } else {
            int rc = stream_need_space(s);
            if (rc)
                return rc;
            segment *g = s->tail;
            size_t k = (size_t)min_u64(min_u64(n / BLOCK * BLOCK, g->cap - g->filled), final_block - s->cipher_pos);
            if (cbc_decrypt_blocks(h->cbc, s->prev, data, k, g->data + g->filled) != CSE_OK) {
                object_info_log_corrupt(h->ctx, h->key, "decrypt", "CBC decryption failed");
                return -EIO;
            }
            memcpy(s->prev, data + k - BLOCK, BLOCK);
            took_into_segment(s, g, k);
            data += k;
            n -= k;
        }
    }
    return 0;
}

/* GCM: the data through the authenticated decryptor (or CTR from where the stream started), the
 * last 16 bytes kept as the tag. */
static int gcm_feed(stream *s, const uint8_t *data, size_t n)
{
    read_handle *h = s->h;
    while (n) {
        if (s->cipher_pos >= h->plain_size) {
            size_t k = take_into_part(s, data, n);
            data += k;
            n -= k;
            continue;
        }
        int rc = stream_need_space(s);
        if (rc)
            return rc;
        segment *g = s->tail;
        size_t k = (size_t)min_u64(min_u64(n, g->cap - g->filled), h->plain_size - s->cipher_pos);
        cse_status st = s->owns_gcm ? gcm_decryptor_update(h->gcm, data, k, g->data + g->filled)
                                    : gcm_decrypt_range(h->data_key->bytes, h->iv, s->cipher_pos, data, k,
                                                        g->data + g->filled);
        if (st != CSE_OK) {
            object_info_log_corrupt(h->ctx, h->key, "GCM", cse_strerror(st));
            return -EIO;
        }
        took_into_segment(s, g, k);
        data += k;
        n -= k;
    }
    return 0;
}

static int plain_feed(stream *s, const uint8_t *data, size_t n)
{
    while (n) {
        int rc = stream_need_space(s);
        if (rc)
            return rc;
        size_t k = stream_put(s, data, n);
        s->cipher_pos += k;
        data += k;
        n -= k;
    }
    return 0;
}

/* The get_stream sink: ciphertext in, plaintext published; non-zero stops the GET. */
static int stream_sink(void *ctx, const uint8_t *data, size_t n)
{
    stream *s = ctx;
    read_handle *h = s->h;
    atomic_fetch_add_explicit(&h->ctx->counters.bytes_fetched, n, memory_order_relaxed);
    if (s->cipher_pos + n > h->stored_size) {
        object_info_log_corrupt(h->ctx, h->key, "GET", "object longer than its size");
        s->fail = -EIO;
        return 1;
    }
    int rc;
    if (is_cbc(h))
        rc = cbc_feed(s, data, n);
    else if (is_gcm(h))
        rc = gcm_feed(s, data, n);
    else
        rc = plain_feed(s, data, n);
    if (rc < 0)
        s->fail = rc;
    if (rc)
        return 1;
    pthread_mutex_lock(&h->lock);
    stream_publish(s);
    rc = s->cancel;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* After the GET: the whole object must have arrived, and a GCM tag must verify. 0 or -EIO. */
static int stream_finish(stream *s, int rc, const aws_error *err)
{
    read_handle *h = s->h;
    if (s->fail)
        return s->fail;
    if (rc == OBJC_STREAM_STOPPED)
        return 0;                             /* cancelled: not an error */
    if (rc != 0)
        return read_get_failed(h, err, s->fetch_start, h->stored_size);
    if (s->cipher_pos != h->stored_size || (is_cbc(h) && s->part_len)) {
        object_info_log_corrupt(h->ctx, h->key, "GET", "object shorter than its size (changed while open?)");
        return -EIO;
    }
    if (s->owns_gcm) {
        cse_status st = gcm_decryptor_final(h->gcm, s->part);
        if (st != CSE_OK) {
            s->tag_failed = 1;
            object_info_log_corrupt(h->ctx, h->key, "GCM", cse_strerror(st));
            return -EIO;
        }
        s->gcm_verified = 1;
    }
    return 0;
}

static void *stream_main(void *arg)
{
    stream *s = arg;
    read_handle *h = s->h;
    fs_context *ctx = h->ctx;
    aws_error err;
    aws_error_clear(&err);
    atomic_fetch_add_explicit(&ctx->counters.s3_requests, 1, memory_order_relaxed);
    int rc = ctx->objects->ops->get_stream(ctx->objects, h->key, h->etag[0] ? h->etag : NULL, s->fetch_start,
                                           h->stored_size - s->fetch_start, stream_sink, s, &err);
    rc = stream_finish(s, rc, &err);
    pthread_mutex_lock(&h->lock);
    if (rc == 0)
        stream_publish(s);
    if (s->owns_gcm) {
        /* Cancelled, the decryptor stands at gcm_pos and can go on from there; failed, it cannot. */
        h->gcm_pos = min_u64(s->cipher_pos, h->plain_size);
        h->gcm_owner = NULL;
        h->gcm_broken |= rc != 0;
        h->gcm_forged |= s->tag_failed;
    }
    if (rc != 0)
        s->error = rc;
    s->finished = 1;
    if (rc == 0 && s->consumed >= h->plain_size) {  /* already read to the end: let go (as in read) */
        s->keep_behind = min_u64(s->keep_behind, SEQUENTIAL_SLACK);
        stream_trim(s);
    }
    if (s->cancel)
        read_stream_free_segments(s);              /* no reader copies from a cancelled stream */
    read_stream_spares_free(h);                    /* only a fetch thread refills spares: give them back */
    pthread_cond_broadcast(&h->changed);
    pthread_cond_broadcast(&s->published);
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* ---- stream lifetime (lock held) ---- */

/* Starts a stream whose first byte is at or before `off`. NULL when no thread could be started. */
stream *read_stream_start(read_handle *h, uint64_t off)
{
    uint64_t start = off;
    /* Reads still in flight just behind this one (concurrent readahead) are served by the stream too. */
    if (h->next_sequential != UINT64_MAX && h->next_sequential < off)
        start = h->next_sequential;
    int own_gcm = is_gcm(h) && h->gcm && !h->gcm_broken && !h->gcm_forged && !h->gcm_owner &&
                  h->gcm_pos <= off && off - h->gcm_pos <= SEQUENTIAL_SLACK;
    if (own_gcm)
        start = h->gcm_pos;                   /* the tag can still be checked */
    if (is_cbc(h))
        start = start / BLOCK * BLOCK;
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->h = h;
    s->keep_behind = stream_keep_start(h);
    s->start = s->produced = s->consumed = s->written = start;
    s->fetch_start = s->cipher_pos = start;
    s->owns_gcm = own_gcm;
    s->wake_at = UINT64_MAX;
    if (is_cbc(h)) {
        memcpy(s->prev, h->iv, BLOCK);
        if (start > 0) {                      /* the block before `start` chains into it */
            s->fetch_start = s->cipher_pos = start - BLOCK;
            s->lead_left = BLOCK;
        }
    }
    if (pthread_cond_init(&s->published, NULL) != 0) {
        free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
        pthread_cond_destroy(&s->published);
        free(s);
        return NULL;
    }
    if (own_gcm)
        h->gcm_owner = s;
    h->current = s;
    return s;
}

/* Takes the current stream out of service: cancelled, its memory freed once its thread is done. */
void read_stream_retire(read_handle *h)
{
    stream *s = h->current;
    if (!s)
        return;
    h->current = NULL;
    s->cancel = 1;
    if (s->finished)
        read_stream_free_segments(s);
    s->next_retired = h->retired;
    h->retired = s;
    pthread_cond_broadcast(&h->changed);
    pthread_cond_broadcast(&s->published);
}

void read_stream_free(stream *s)
{
    pthread_join(s->thread, NULL);
    read_stream_free_segments(s);
    pthread_cond_destroy(&s->published);
    free(s);
}

/* Joins and frees retired streams whose threads are done and that no reader still holds. */
void read_stream_reap(read_handle *h)
{
    stream **p = &h->retired;
    while (*p) {
        stream *s = *p;
        if (!s->finished || s->users) {
            p = &s->next_retired;
            continue;
        }
        *p = s->next_retired;
        read_stream_free(s);                  /* it has finished: the join returns at once */
    }
    if (!h->current)
        read_stream_spares_free(h);
}

/* ---- reading ---- */

/* Serves [off, off+size) from stream s, waiting for bytes still on their way. Bytes the stream no
 * longer holds (a late reader behind it, or it was cancelled) are fetched directly. */
ssize_t read_stream_read(read_handle *h, stream *s, char *buf, size_t size, uint64_t off)
{
    size_t done = 0;
    ssize_t result = 0;
    s->users++;
    while (done < size) {
        uint64_t pos = off + done;
        if (s->cancel || pos < read_stream_low(s)) {
            result = read_direct(h, buf + done, size - done, pos);
            break;
        }
        if (pos < s->produced) {              /* published before any failure: good bytes */
            size_t n = (size_t)min_u64(s->produced - pos, size - done);
            stream_copy(s, buf + done, pos, n);
            done += n;
            continue;
        }
        if (s->error || s->finished) {
            result = s->error ? s->error : -EIO;
            break;
        }
        s->wanted = max_u64(s->wanted, off + size);
        pthread_cond_broadcast(&h->changed);  /* a fetch thread waiting for room may take more now */
        /* Woken once the whole request is there (it is answered only then anyway), or the stream ends. */
        s->wake_at = min_u64(s->wake_at, off + size);
        s->waiting++;
        pthread_cond_wait(&s->published, &h->lock);
        s->waiting--;
    }
    if (result >= 0) {
        s->consumed = max_u64(s->consumed, off + size);
        if (s->finished && s->consumed >= h->plain_size)
            s->keep_behind = min_u64(s->keep_behind, SEQUENTIAL_SLACK);   /* read to the end: let go */
        stream_trim(s);
    }
    s->users--;
    return result < 0 ? result : (ssize_t)size;
}

/* A read arrived behind the furthest one: keep that much more behind from now on (twice the distance,
 * so the next one that late still finds its bytes). */
void read_stream_note_late(stream *s, uint64_t off)
{
    uint64_t late = s->consumed - off;
    uint64_t most = stream_keep_max(s->h);
    uint64_t keep = late > most / 2 ? most : 2 * late;
    s->keep_behind = max_u64(s->keep_behind, keep);
}

/* Whether the read at [off, ...) belongs to the current stream: inside what it holds, or near where
 * the last read ended and not behind the stream. A failed stream still answers the reads it was to
 * serve, with its error: starting another one would hide the failure (and a short body would fail the
 * same way again). */
int read_stream_serves(const stream *s, uint64_t off, int near)
{
    if (s->cancel)
        return 0;
    uint64_t low = read_stream_low(s);
    return off >= low && (off < s->produced || near);
}
