/* Read handles (fs/read_path.h). A sequential reader is served by one streaming GET per handle
 * (object_client get_stream) from its position to the end of the object: a fetch thread decrypts the
 * body as it arrives (CBC with the previous ciphertext block carried along; GCM through the handle's
 * authenticated decryptor when the stream starts where it stands) into a bounded queue of plaintext
 * segments that readers copy from. The queue is back-pressure: when it holds a window of unread
 * plaintext, or the memory budget is spent, the fetch thread blocks inside the sink and S3 stops
 * sending. Reads away from the stream cancel it (the sink returns stop) and fetch only the blocks they
 * need with one ranged GET; sequential reading resumed there starts a new stream. */
#include "read_path.h"

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
#include "namespace.h"
#include "object_info.h"

#define BLOCK 16
/* Reads this close to where the last one ended still count as sequential: the kernel issues readahead
 * requests concurrently, so they can arrive slightly out of order. */
#define SEQUENTIAL_SLACK ((uint64_t)1024 * 1024)
/* Once a stream runs, reads this far around where its readers are still belong to it (they wait for
 * the stream rather than fetch on their own): a raised read_ahead_kb has the kernel send a whole
 * readahead window as 1 MiB requests at once, and smbd's thread pool reads ahead the same way; they
 * reach the daemon in any order. Bytes behind the furthest read are kept for the late ones: twice as
 * far back as late reads have come so far, from SEQUENTIAL_SLACK up to STREAM_KEEP_BEHIND_MAX; they
 * count against the budget. */
#define STREAM_REORDER ((uint64_t)16 * 1024 * 1024)
#define STREAM_KEEP_BEHIND_MAX ((uint64_t)16 * 1024 * 1024)
/* A read that comes later than even that is fetched directly, together with what follows it up to where
 * the stream's bytes begin (at most this much), kept for the rest of the late reader's request: the
 * kernel hands over one slow thread's 1 MiB pread as 128 KiB reads, each a GET of its own otherwise. */
#define LATE_FETCH_MAX ((uint64_t)2 * 1024 * 1024)
/* Plaintext is queued in segments of prefetch_min, within these bounds: big enough that the fetch
 * thread takes the lock rarely, small enough that consumed memory goes back to the budget promptly. */
#define SEGMENT_MIN ((uint64_t)64 * 1024)
#define SEGMENT_MAX ((uint64_t)1024 * 1024)
/* Consumed segments kept (still reserved, not wiped) for the fetch thread to refill: a streaming reader
 * then costs no allocation, page faults or wiping per segment, only at the end. */
#define SPARE_MAX 4
/* How often a fetch thread waiting for memory looks at the budget again (release() does not wake it). */
#define BUDGET_RETRY_MS 50
/* A stream whose queue stayed full this long without a read is stopped: its reader has gone quiet (a
 * pager, an idle share), and an idle connection would only be cut by the server later. */
#define STREAM_IDLE_MS 30000

typedef struct segment {
    uint64_t start;              /* plaintext offset of data[0] */
    size_t cap, filled;
    uint8_t *data;
    struct segment *next;
} segment;

typedef struct stream stream;

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
    pthread_cond_t changed;      /* CLOCK_MONOTONIC: data published, consumed, wanted, or a stream ended */
    stream *current;             /* the stream sequential reads are served from, or NULL */
    stream *retired;             /* cancelled or replaced streams whose threads may still run */
    segment *spare;              /* consumed segments for reuse (reserved in the budget) */
    int spare_count;
    uint64_t window;             /* unread plaintext a stream may queue ahead of its readers */
    uint8_t *late;               /* plaintext [late_start, late_end) fetched for a late reader, or NULL */
    uint64_t late_start, late_end;
    uint64_t next_sequential;    /* where the last read ended */

    gcm_decryptor *gcm;          /* authenticated in-order decryptor (GCM only) */
    uint64_t gcm_pos;            /* plaintext consumed by it */
    stream *gcm_owner;           /* the stream feeding it (outside the lock), or NULL */
    int gcm_broken;              /* reading skipped ahead: no tag check for this handle */
    int gcm_forged;              /* the tag check failed: every later read fails too */
};

struct stream {
    read_handle *h;
    pthread_t thread;
    stream *next_retired;
    /* Under h->lock. Readers copy [low, produced); the fetch thread writes the tail beyond produced. */
    int cancel;                  /* the sink stops at its next call */
    int finished;                /* the fetch thread is done (joinable at once) */
    int error;                   /* -errno once the stream failed */
    int users;                   /* readers working with it (it is freed only at 0) */
    int waiting;                 /* readers waiting for bytes (publishing wakes them) */
    uint64_t start;              /* plaintext offset of the first byte */
    uint64_t produced;           /* plaintext published so far (end offset) */
    uint64_t consumed;           /* end of the furthest read served */
    uint64_t wanted;             /* end of the furthest byte a waiting reader needs */
    uint64_t keep_behind;        /* bytes kept behind `consumed` for late readers */
    segment *head, *tail;
    int owns_gcm;                /* feeds h->gcm: the tag is checked at the end */
    int gcm_verified;
    /* Fetch thread only. */
    uint64_t fetch_start;        /* stored offset the GET starts at (one block early for CBC) */
    uint64_t cipher_pos;         /* stored offset of the next byte from S3 */
    uint64_t written;            /* plaintext end written into segments */
    size_t lead_left;            /* CBC: bytes of the block before `start` still to come */
    uint8_t prev[BLOCK];         /* CBC: the ciphertext block before the next one */
    uint8_t part[BLOCK];         /* CBC: an incomplete block; GCM: the tag */
    size_t part_len;
    int fail;                    /* -errno from decrypting or allocating (the sink then stops) */
    int tag_failed;              /* GCM: the whole object arrived and its tag did not verify */
};

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

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
static int get_failed(read_handle *h, const aws_error *err, uint64_t from, uint64_t to)
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

static int is_cbc(const read_handle *h) { return h->encrypted && h->cek_alg == CSE_CEK_AES_CBC; }
static int is_gcm(const read_handle *h) { return h->encrypted && h->cek_alg == CSE_CEK_AES_GCM; }

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
        return get_failed(h, &err, fstart, fend);
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
static ssize_t direct_read(read_handle *h, char *buf, size_t size, uint64_t offset)
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
        return direct_read(h, buf, size, off);
    ssize_t n = direct_read(h, (char *)data, len, off);
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

/* A segment leaves a queue: kept for reuse while few are spare (its plaintext is overwritten by the
 * next use, or wiped when the spares are dropped), else wiped and freed. */
static void segment_free(read_handle *h, segment *g)
{
    if (h->spare_count < SPARE_MAX && g->cap == segment_size(h)) {
        g->next = h->spare;
        h->spare = g;
        h->spare_count++;
        return;
    }
    segment_destroy(h, g);
}

static void spares_free(read_handle *h)
{
    while (h->spare) {
        segment *g = h->spare;
        h->spare = g->next;
        segment_destroy(h, g);
    }
    h->spare_count = 0;
}

static void stream_free_segments(stream *s)
{
    while (s->head) {
        segment *g = s->head;
        s->head = g->next;
        segment_free(s->h, g);
    }
    s->tail = NULL;
}

/* First plaintext offset still queued. */
static uint64_t stream_low(const stream *s)
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
        if (s->waiting)
            pthread_cond_broadcast(&h->changed);
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
            size_t k = BLOCK - s->part_len < n ? BLOCK - s->part_len : n;
            memcpy(s->part + s->part_len, data, k);
            s->part_len += k;
            s->cipher_pos += k;
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
            g->filled += k;
            s->written += k;
            s->cipher_pos += k;
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
            size_t k = BLOCK - s->part_len < n ? BLOCK - s->part_len : n;
            memcpy(s->part + s->part_len, data, k);
            s->part_len += k;
            s->cipher_pos += k;
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
        g->filled += k;
        s->written += k;
        s->cipher_pos += k;
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
        return get_failed(h, err, s->fetch_start, h->stored_size);
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
    if (s->cancel)
        stream_free_segments(s);              /* no reader copies from a cancelled stream */
    if (!h->current)
        spares_free(h);                       /* nothing streams now: give the memory back */
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* ---- stream lifetime (lock held) ---- */

/* Starts a stream whose first byte is at or before `off`. NULL when no thread could be started. */
static stream *stream_start(read_handle *h, uint64_t off)
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
    s->keep_behind = SEQUENTIAL_SLACK;
    s->start = s->produced = s->consumed = s->written = start;
    s->fetch_start = s->cipher_pos = start;
    s->owns_gcm = own_gcm;
    if (is_cbc(h)) {
        memcpy(s->prev, h->iv, BLOCK);
        if (start > 0) {                      /* the block before `start` chains into it */
            s->fetch_start = s->cipher_pos = start - BLOCK;
            s->lead_left = BLOCK;
        }
    }
    if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
        free(s);
        return NULL;
    }
    if (own_gcm)
        h->gcm_owner = s;
    h->current = s;
    return s;
}

/* Takes the current stream out of service: cancelled, its memory freed once its thread is done. */
static void stream_retire(read_handle *h)
{
    stream *s = h->current;
    if (!s)
        return;
    h->current = NULL;
    s->cancel = 1;
    if (s->finished)
        stream_free_segments(s);
    s->next_retired = h->retired;
    h->retired = s;
    pthread_cond_broadcast(&h->changed);
}

/* Joins and frees retired streams whose threads are done and that no reader still holds. */
static void stream_reap(read_handle *h)
{
    stream **p = &h->retired;
    while (*p) {
        stream *s = *p;
        if (!s->finished || s->users) {
            p = &s->next_retired;
            continue;
        }
        *p = s->next_retired;
        pthread_join(s->thread, NULL);        /* it has finished: returns at once */
        stream_free_segments(s);
        free(s);
    }
    if (!h->current)
        spares_free(h);
}

/* ---- reading ---- */

/* Serves [off, off+size) from stream s, waiting for bytes still on their way. Bytes the stream no
 * longer holds (a late reader behind it, or it was cancelled) are fetched directly. */
static ssize_t stream_read(read_handle *h, stream *s, char *buf, size_t size, uint64_t off)
{
    size_t done = 0;
    ssize_t result = 0;
    s->users++;
    while (done < size) {
        uint64_t pos = off + done;
        if (s->cancel || pos < stream_low(s)) {
            result = direct_read(h, buf + done, size - done, pos);
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
        s->waiting++;
        pthread_cond_wait(&h->changed, &h->lock);
        s->waiting--;
    }
    if (result >= 0) {
        s->consumed = max_u64(s->consumed, off + size);
        stream_trim(s);
    }
    s->users--;
    return result < 0 ? result : (ssize_t)size;
}

/* A read arrived behind the furthest one: keep that much more behind from now on (twice the distance,
 * so the next one that late still finds its bytes). */
static void note_late_read(stream *s, uint64_t off)
{
    uint64_t late = s->consumed - off;
    uint64_t keep = late > STREAM_KEEP_BEHIND_MAX / 2 ? STREAM_KEEP_BEHIND_MAX : 2 * late;
    s->keep_behind = max_u64(s->keep_behind, keep);
}

/* Whether the read at [off, ...) belongs to the current stream: inside what it holds, or near where
 * the last read ended and not behind the stream. A failed stream still answers the reads it was to
 * serve, with its error: starting another one would hide the failure (and a short body would fail the
 * same way again). */
static int stream_serves(const stream *s, uint64_t off, int near)
{
    if (s->cancel)
        return 0;
    uint64_t low = stream_low(s);
    return off >= low && (off < s->produced || near);
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
    stream_reap(h);
    int near = h->next_sequential != UINT64_MAX && off + SEQUENTIAL_SLACK >= h->next_sequential &&
               off <= h->next_sequential + SEQUENTIAL_SLACK;
    stream *s = h->current;
    if (s && !s->cancel) {
        /* Around a running stream, out-of-order arrival is wider than around a single reader. */
        uint64_t at = max_u64(s->consumed, h->next_sequential == UINT64_MAX ? 0 : h->next_sequential);
        near = near || (off + STREAM_REORDER >= stream_low(s) && off <= at + STREAM_REORDER);
    }
    int behind = s && !s->error && !s->cancel && off < stream_low(s) && near;
    if (s && near && off < s->consumed)
        note_late_read(s, off);
    if (s && !behind && !stream_serves(s, off, near)) {
        stream_retire(h);                     /* random access away from the stream, or it failed */
        s = NULL;
        if (!near)
            h->window = opt->prefetch_min ? opt->prefetch_min : SEGMENT_MIN;
    }
    if (!s && near && opt->prefetch_max > 0 && h->ctx->objects->ops->get_stream)
        s = stream_start(h, off);
    ssize_t result;
    if (s && !behind)
        result = stream_read(h, s, buf, size, off);
    else if (behind)
        result = late_read(h, stream_low(s), buf, size, off);
    else
        result = direct_read(h, buf, size, off);
    if (result >= 0) {
        result = (ssize_t)size;
        h->next_sequential = off + size;
        atomic_fetch_add_explicit(&h->ctx->counters.bytes_read_plain, size, memory_order_relaxed);
    } else {
        h->next_sequential = UINT64_MAX;
        if (h->current && h->current->error)
            stream_retire(h);
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
    stream_retire(h);
    stream *all = h->retired;
    h->retired = NULL;
    pthread_mutex_unlock(&h->lock);
    /* No reader is left (FUSE releases a handle after its reads): wait for the fetch threads, which stop
     * at their sink's next call, then free what they leave. */
    while (all) {
        stream *s = all;
        all = s->next_retired;
        pthread_join(s->thread, NULL);
        stream_free_segments(s);
        free(s);
    }
    spares_free(h);
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
