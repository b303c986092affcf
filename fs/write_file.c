/* Write state machine of one open path (see write_file.h): idle / stream (+ reorder window and holes)
 * / spool. One mutex serialises the writers of the path, as CBC itself is sequential; the visible size
 * is published through atomics so getattr never waits behind a writer blocked on memory or S3. */
#include "write_file.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "attrs.h"
#include "log.h"
#include "meta_cache.h"
#include "object_info.h"
#include "policy.h"
#include "spool.h"
#include "write_load.h"
#include "write_stream.h"

/* Spooled bytes go back to the stream through a buffer of this size from the cap when it has room, else
 * through a small one outside it, rather than wait on memory only this stream's progress may free. */
#define SPOOL_COPY_CHUNK (1024 * 1024)
#define SPOOL_COPY_CHUNK_SMALL (64 * 1024)
/* Zeros at the end of the in-order data held back from the cipher (a truncate may cut them off). */
#define ZERO_TAIL_MAX (1024 * 1024)

typedef enum { WF_IDLE, WF_STREAM, WF_SPOOL } wf_mode;

/* A write that arrived ahead of the frontier, waiting for the gap before it to fill. Its bytes are in
 * memory (within reorder_window, while max_memory allows), or parked in the file's encrypted overflow
 * spool at the same offsets; a zero piece (all-zero write: a pre-extension marker, a sparse region)
 * holds no bytes at all. Only memory pieces count in window_bytes and the memory budget. */
typedef enum { PIECE_MEMORY, PIECE_ZERO, PIECE_PARKED } piece_kind;

typedef struct piece {
    struct piece *next;
    uint64_t offset;
    uint64_t len;
    size_t reserved;
    piece_kind kind;
    uint8_t data[];
} piece;

struct write_file {
    fs_context *ctx;
    part_uploader *uploader;
    char *path;
    char *key;
    int encrypt;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    kv_list kept_metadata;          /* attributes of the object this file replaces */

    pthread_mutex_t lock;
    wf_mode state;
    int dirty;                      /* something to upload at finish */
    int changed;                    /* written or resized since the last finish */
    int broken;                     /* an unrecoverable error: finish reports EIO */
    int failed;                     /* a finish failed: every later call on this state fails with EIO
                                     * until the last handle is released (lost bytes must not be
                                     * replaced by zeros or by the old object behind the caller) */
    int deleted;                    /* unlinked while open: finish discards instead of uploading */
    int replaces_bare_object;       /* the object this replaces had no envelope in its metadata: an
                                     * SDK's <key>.instruction may hold one, stale once we upload */
    uint64_t size;                  /* logical size */

    write_stream *stream;
    uint64_t zero_tail;             /* zeros written at the frontier and not yet given to the stream:
                                     * sector padding a later truncate may cut off again */
    piece *pieces;                  /* sorted by offset, non-overlapping, all beyond the frontier */
    uint64_t window_bytes;
    spool *overflow;                /* parked pieces' bytes (encrypted, on disk); NULL until needed */

    spool *spool;

    _Atomic uint64_t uploads;       /* successful finishes that stored an object */
    _Atomic uint64_t visible_size;
    _Atomic int visible_dirty;
    _Atomic int64_t mtime_sec;
    _Atomic long mtime_nsec;
};

static void publish(write_file *wf)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    wf->mtime_sec = now.tv_sec;
    wf->mtime_nsec = now.tv_nsec;
    wf->visible_size = wf->size;
    wf->visible_dirty = wf->dirty;
}

static write_file *alloc_file(fs_context *ctx, part_uploader *uploader, const char *path)
{
    write_file *wf = calloc(1, sizeof *wf);
    if (!wf)
        return NULL;
    wf->ctx = ctx;
    wf->uploader = uploader;
    wf->path = strdup(path);
    wf->key = fs_options_object_key(&ctx->options, path);
    if (!wf->path || !wf->key) {
        free(wf->path);
        free(wf->key);
        free(wf);
        return NULL;
    }
    wf->encrypt = policy_should_encrypt(ctx->options.encrypt, path);
    wf->uid = ctx->options.uid;
    wf->gid = ctx->options.gid;
    pthread_mutex_init(&wf->lock, NULL);
    kv_list_init(&wf->kept_metadata);
    wf->state = WF_IDLE;
    return wf;
}

/* The attributes stored with the object at upload (so that no self-copy is needed afterwards). */
static int upload_metadata(write_file *wf, kv_list *md)
{
    kv_list_init(md);
    if (kv_list_copy(md, &wf->kept_metadata) != 0)
        return -ENOMEM;
    file_attrs attrs = { .has_mode = wf->mode != 0, .has_uid = wf->mode != 0, .has_gid = wf->mode != 0,
                         .has_mtime = 1, .mode = wf->mode, .uid = wf->uid, .gid = wf->gid };
    attrs.mtime.tv_sec = wf->mtime_sec;
    attrs.mtime.tv_nsec = wf->mtime_nsec;
    if (attrs_to_metadata(&attrs, md) != 0) {
        kv_list_free(md);
        return -ENOMEM;
    }
    return 0;
}

static int start_stream(write_file *wf)
{
    kv_list md;
    int rc = upload_metadata(wf, &md);
    if (rc != 0)
        return rc;
    rc = write_stream_new(wf->ctx, wf->uploader, wf->key, wf->encrypt, &md, &wf->stream);
    kv_list_free(&md);
    if (rc != 0)
        return rc;
    wf->state = WF_STREAM;
    return 0;
}

/* O_TRUNC of an existing file keeps its stored attributes (mode, owner), as truncating a local file
 * does. Best effort: without them the file just gets the mount's defaults. */
static void keep_existing_attributes(write_file *wf)
{
    objc_head head;
    memset(&head, 0, sizeof head);
    kv_list_init(&head.metadata);
    aws_error err;
    aws_error_clear(&err);
    wf->ctx->counters.s3_requests++;
    if (wf->ctx->objects->ops->head(wf->ctx->objects, wf->key, &head, &err) == 0) {
        wf->replaces_bare_object = !kv_list_get_ci(&head.metadata, "x-amz-key-v2") &&
                                   !kv_list_get_ci(&head.metadata, "x-amz-key");
        for (size_t i = 0; i < head.metadata.count; i++) {
            const kv_pair *kv = &head.metadata.items[i];
            if (strncasecmp(kv->name, "x-amz-", 6) != 0 && strcmp(kv->name, ATTR_MTIME) != 0 &&
                strcmp(kv->name, ATTR_MTIME_NS) != 0)
                kv_list_set(&wf->kept_metadata, kv->name, kv->value);
        }
    }
    objc_head_free(&head);
}

int write_file_new_empty(fs_context *ctx, part_uploader *uploader, const char *path, mode_t mode,
                         write_file **out)
{
    return write_file_new_created(ctx, uploader, path, mode, ctx->options.uid, ctx->options.gid, out);
}

int write_file_new_created(fs_context *ctx, part_uploader *uploader, const char *path, mode_t mode,
                           uid_t uid, gid_t gid, write_file **out)
{
    *out = NULL;
    write_file *wf = alloc_file(ctx, uploader, path);
    if (!wf)
        return -ENOMEM;
    wf->mode = mode;
    /* Before the stream starts: the owner goes into the object's metadata with it. */
    wf->uid = uid;
    wf->gid = gid;
    wf->dirty = 1;
    /* Not `changed`: dd and shell redirections dup2() the new fd and close the original before writing;
     * an empty PUT at that flush would replace the previous version before any byte arrived (and leave
     * an empty object behind if the writes then fail). The last release stores a file left empty. */
    publish(wf);
    if (!mode)
        keep_existing_attributes(wf);
    int rc = start_stream(wf);
    if (rc != 0) {
        write_file_free(wf);
        return rc;
    }
    *out = wf;
    return 0;
}

void write_file_set_owner(write_file *wf, uid_t uid, gid_t gid)
{
    pthread_mutex_lock(&wf->lock);
    wf->uid = uid;
    wf->gid = gid;
    pthread_mutex_unlock(&wf->lock);
}

int write_file_new_existing(fs_context *ctx, part_uploader *uploader, const char *path, write_file **out)
{
    *out = NULL;
    write_file *wf = alloc_file(ctx, uploader, path);
    if (!wf)
        return -ENOMEM;
    wf->replaces_bare_object = 1;   /* not looked at: the rare in-place patch pays one GET */
    publish(wf);
    *out = wf;
    return 0;
}

/* Pieces hold plaintext: wiped before their memory goes back to the allocator. */
static void free_piece(write_file *wf, piece *p)
{
    /* The whole allocation: a trimmed piece still holds the bytes cut off its end. */
    if (p->kind == PIECE_MEMORY && p->reserved > sizeof *p)
        secure_wipe(p->data, p->reserved - sizeof *p);
    memory_budget_release(&wf->ctx->memory, p->reserved);
    free(p);
}

static void free_pieces(write_file *wf)
{
    while (wf->pieces) {
        piece *p = wf->pieces;
        wf->pieces = p->next;
        free_piece(wf, p);
    }
    wf->window_bytes = 0;
    spool_free(wf->overflow);
    wf->overflow = NULL;
}

typedef int (*spool_copy_sink)(void *arg, uint64_t offset, const uint8_t *data, size_t len);

/* Copies [from, to) of a spool to sink, in order (plaintext through a buffer wiped after). */
static int copy_from_spool(write_file *wf, spool *src, uint64_t from, uint64_t to, spool_copy_sink sink, void *arg)
{
    size_t chunk = SPOOL_COPY_CHUNK;
    int reserved = memory_budget_try_reserve(&wf->ctx->memory, chunk) == 0;
    if (!reserved)
        chunk = SPOOL_COPY_CHUNK_SMALL;
    uint8_t *buf = malloc(chunk);
    if (!buf) {
        if (reserved)
            memory_budget_release(&wf->ctx->memory, chunk);
        return -ENOMEM;
    }
    int rc = 0;
    while (rc == 0 && from < to) {
        size_t n = to - from < chunk ? (size_t)(to - from) : chunk;
        ssize_t got = spool_read(src, from, buf, n);
        if (got != (ssize_t)n)
            rc = got < 0 ? (int)got : -EIO;
        else
            rc = sink(arg, from, buf, n);
        from += n;
    }
    secure_wipe(buf, chunk);
    free(buf);
    if (reserved)
        memory_budget_release(&wf->ctx->memory, chunk);
    return rc;
}

static int spool_sink(void *arg, uint64_t offset, const uint8_t *data, size_t len)
{
    return spool_write(arg, offset, data, len);
}

/* stream -> spool. Possible only while everything streamed is still in memory. */
static int leave_stream(write_file *wf, const char *why)
{
    if (write_stream_has_uploaded(wf->stream)) {
        log_error("%s: %s after parts were uploaded; the streaming upload cannot take it (raise "
                  "reorder_window, or write the file in order). The upload is aborted.", wf->path, why);
        wf->broken = 1;
        return -EIO;
    }
    spool *sp = NULL;
    int rc = spool_new(wf->ctx->options.spool_dir, &wf->ctx->counters, &sp);
    if (rc != 0) {
        log_error("%s: cannot create a spool file in %s: %s", wf->path, wf->ctx->options.spool_dir, strerror(-rc));
        return rc == -ENOSPC ? -ENOSPC : -EIO;
    }
    rc = write_stream_recover(wf->stream, spool_sink, sp);
    /* Zero pieces need nothing: the spool reads unwritten ranges as zeros. */
    for (piece *p = wf->pieces; rc == 0 && p; p = p->next) {
        if (p->kind == PIECE_MEMORY)
            rc = spool_write(sp, p->offset, p->data, (size_t)p->len);
        else if (p->kind == PIECE_PARKED)
            rc = copy_from_spool(wf, wf->overflow, p->offset, p->offset + p->len, spool_sink, sp);
    }
    if (rc == 0)
        rc = spool_truncate(sp, wf->size);
    if (rc != 0) {
        spool_free(sp);
        return rc == -ENOSPC ? -ENOSPC : -EIO;
    }
    free_pieces(wf);
    write_stream_free(wf->stream);     /* nothing was uploaded: nothing to abort */
    wf->stream = NULL;
    wf->zero_tail = 0;                 /* unwritten spool ranges read as zeros */
    wf->spool = sp;
    wf->state = WF_SPOOL;
    wf->ctx->counters.spool_fallbacks++;
    log_info("%s: %s; continuing in the local encrypted spool", wf->path, why);
    return 0;
}

/* idle -> spool holding the current object. */
static int load_into_spool(write_file *wf)
{
    spool *sp = NULL;
    int rc = spool_new(wf->ctx->options.spool_dir, &wf->ctx->counters, &sp);
    if (rc != 0) {
        log_error("%s: cannot create a spool file in %s: %s", wf->path, wf->ctx->options.spool_dir, strerror(-rc));
        return -EIO;
    }
    kv_list_free(&wf->kept_metadata);
    rc = write_load_object(wf->ctx, wf->key, sp, &wf->kept_metadata);
    if (rc != 0 && rc != -ENOENT) {
        spool_free(sp);
        return rc;
    }
    wf->spool = sp;
    wf->state = WF_SPOOL;
    wf->size = spool_size(sp);
    return 0;
}

static int all_zero(const uint8_t *p, size_t len)
{
    static const uint8_t zeros[256];
    while (len >= sizeof zeros) {
        if (memcmp(p, zeros, sizeof zeros) != 0)
            return 0;
        p += sizeof zeros;
        len -= sizeof zeros;
    }
    return memcmp(p, zeros, len) == 0;
}

/* The logical frontier: bytes written in order so far, including the held-back zero tail. */
static uint64_t frontier_of(const write_file *wf)
{
    return write_stream_length(wf->stream) + wf->zero_tail;
}

static int flush_zero_tail(write_file *wf)
{
    if (!wf->zero_tail)
        return 0;
    int rc = write_stream_append_zeros(wf->stream, wf->zero_tail);
    wf->zero_tail = 0;
    return rc;
}

/* Adds zeros at the frontier to the held-back tail. Only the last stretch can be padding: longer zero
 * runs (sparse data) keep streaming. */
static int hold_zeros(write_file *wf, uint64_t n)
{
    wf->zero_tail += n;
    if (wf->zero_tail <= ZERO_TAIL_MAX)
        return 0;
    int rc = write_stream_append_zeros(wf->stream, wf->zero_tail - ZERO_TAIL_MAX);
    wf->zero_tail = ZERO_TAIL_MAX;
    return rc;
}

/* Appends at the frontier, holding back trailing zeros (padding to whole sectors that SetEndOfFile may
 * cut off again); they reach the stream when non-zero data follows, or at finish. */
static int append_in_order(write_file *wf, const uint8_t *data, size_t len)
{
    size_t nonzero = len;
    while (nonzero >= sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, data + nonzero - sizeof word, sizeof word);
        if (word)
            break;
        nonzero -= sizeof word;
    }
    while (nonzero > 0 && data[nonzero - 1] == 0)
        nonzero--;
    int rc = 0;
    if (nonzero > 0) {
        rc = flush_zero_tail(wf);
        if (rc == 0)
            rc = write_stream_append(wf->stream, data, nonzero);
    }
    return rc != 0 ? rc : hold_zeros(wf, len - nonzero);
}

/* Parked bytes reaching the frontier: in order by construction (drain_window feeds from the frontier). */
static int parked_sink(void *arg, uint64_t offset, const uint8_t *data, size_t len)
{
    (void)offset;
    return append_in_order(arg, data, len);
}

/* Feeds the pieces the frontier has reached. */
static int drain_window(write_file *wf)
{
    while (wf->pieces) {
        piece *p = wf->pieces;
        uint64_t frontier = frontier_of(wf);
        if (p->offset > frontier)
            return 0;
        int rc = 0;
        if (p->offset + p->len > frontier) {
            if (p->kind == PIECE_ZERO)
                rc = hold_zeros(wf, p->offset + p->len - frontier);
            else if (p->kind == PIECE_PARKED)
                rc = copy_from_spool(wf, wf->overflow, frontier, p->offset + p->len, parked_sink, wf);
            else
                rc = append_in_order(wf, p->data + (frontier - p->offset), (size_t)(p->offset + p->len - frontier));
        }
        wf->pieces = p->next;
        if (p->kind == PIECE_MEMORY)
            wf->window_bytes -= p->len;
        free_piece(wf, p);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void insert_piece(write_file *wf, piece *p)
{
    piece **at = &wf->pieces;
    while (*at && (*at)->offset < p->offset)
        at = &(*at)->next;
    p->next = *at;
    *at = p;
    if (p->kind == PIECE_MEMORY)
        wf->window_bytes += p->len;
}

/* A piece without bytes in memory: zeros, or bytes parked in the overflow spool. */
static piece *new_bare_piece(piece_kind kind, uint64_t offset, uint64_t len)
{
    piece *p = calloc(1, sizeof *p);
    if (p) {
        p->offset = offset;
        p->len = len;
        p->kind = kind;
    }
    return p;
}

static void drop_piece(write_file *wf, piece **at)
{
    piece *p = *at;
    *at = p->next;
    if (p->kind == PIECE_MEMORY)
        wf->window_bytes -= p->len;
    free_piece(wf, p);
}

/* Clears [off, end) of held pieces, since a newer write covers it. A write that lands strictly inside
 * one data piece is copied into it instead (returns 1: absorbed). data NULL means zeros. */
static int punch_window(write_file *wf, uint64_t off, uint64_t end, const uint8_t *data)
{
    piece **at = &wf->pieces;
    while (*at) {
        piece *p = *at;
        uint64_t pend = p->offset + p->len;
        if (pend <= off || p->offset >= end) {
            at = &p->next;
            continue;
        }
        if (p->offset < off && pend > end) {
            if (p->kind == PIECE_MEMORY) {
                if (data)
                    memcpy(p->data + (off - p->offset), data, (size_t)(end - off));
                else
                    memset(p->data + (off - p->offset), 0, (size_t)(end - off));
                return 1;
            }
            if (p->kind == PIECE_ZERO && !data)
                return 1;
            if (p->kind == PIECE_PARKED && data) {
                int rc = spool_write(wf->overflow, off, data, (size_t)(end - off));
                return rc != 0 ? rc : 1;
            }
            /* Split around [off, end): the caller inserts the new piece between the two halves. */
            piece *right = new_bare_piece(p->kind, end, pend - end);
            if (!right)
                return -ENOMEM;
            p->len = off - p->offset;
            right->next = p->next;
            p->next = right;
            return 0;
        }
        if (p->offset >= off && pend <= end) {
            drop_piece(wf, at);
            continue;
        }
        if (p->offset < off) {
            if (p->kind == PIECE_MEMORY)
                wf->window_bytes -= pend - off;
            p->len = off - p->offset;
        } else {
            /* A parked piece keeps its bytes at their offsets in the overflow spool: nothing moves. */
            uint64_t cut = end - p->offset;
            if (p->kind == PIECE_MEMORY) {
                memmove(p->data, p->data + cut, (size_t)(p->len - cut));
                wf->window_bytes -= cut;
            }
            p->offset = end;
            p->len -= cut;
        }
        at = &p->next;
    }
    return 0;
}

/* Holds a write ahead of the frontier in memory; -ENOMEM (nothing changed) when the budget has no room
 * now. It does not wait: the write that would free memory may be queued behind this one (the kernel
 * hands a file's writes over one at a time), and parking is always possible instead. */
static int hold_in_memory(write_file *wf, const uint8_t *data, size_t len, uint64_t offset)
{
    size_t reserve = sizeof(piece) + len;
    if (memory_budget_try_reserve(&wf->ctx->memory, reserve) != 0)
        return -ENOMEM;
    piece *p = malloc(reserve);
    if (!p) {
        memory_budget_release(&wf->ctx->memory, reserve);
        return -ENOMEM;
    }
    p->offset = offset;
    p->len = len;
    p->reserved = reserve;
    p->kind = PIECE_MEMORY;
    memcpy(p->data, data, len);
    insert_piece(wf, p);
    return 0;
}

/* Parks a write ahead of the frontier in the encrypted overflow spool: however far ahead it lands (a
 * request that smbd's thread pool or the client held back while later ones went on), the file keeps
 * streaming and the parked bytes go to the cipher when the frontier reaches them. */
static int park(write_file *wf, const uint8_t *data, size_t len, uint64_t offset)
{
    if (!wf->overflow) {
        int rc = spool_new(wf->ctx->options.spool_dir, &wf->ctx->counters, &wf->overflow);
        if (rc != 0) {
            log_error("%s: cannot create an overflow spool file in %s: %s", wf->path,
                      wf->ctx->options.spool_dir, strerror(-rc));
            return rc == -ENOSPC ? -ENOSPC : -EIO;
        }
        log_info("%s: write of %zu bytes at %" PRIu64 " is %" PRIu64 " bytes ahead of the frontier; parking "
                 "writes ahead of it in an encrypted overflow spool (reorder_window %" PRIu64 ")", wf->path, len,
                 offset, offset - frontier_of(wf), wf->ctx->options.reorder_window);
    }
    piece *p = new_bare_piece(PIECE_PARKED, offset, len);
    if (!p)
        return -ENOMEM;
    int rc = spool_write(wf->overflow, offset, data, len);
    if (rc != 0) {
        free(p);
        return rc == -ENOSPC ? -ENOSPC : -EIO;
    }
    insert_piece(wf, p);
    wf->ctx->counters.window_parked_bytes += len;
    return 0;
}

static int stream_write(write_file *wf, const uint8_t *data, size_t len, uint64_t offset)
{
    uint64_t frontier = frontier_of(wf);
    if (offset == frontier) {
        int rc = append_in_order(wf, data, len);
        return rc != 0 ? rc : drain_window(wf);
    }
    uint64_t encrypted = write_stream_length(wf->stream);
    if (offset >= encrypted && offset < frontier) {
        /* Over the held-back zeros: nothing was encrypted there yet, so this is still in order. */
        wf->zero_tail = offset - encrypted;
        int rc = append_in_order(wf, data, len);
        if (rc == 0 && offset + len < frontier)
            rc = hold_zeros(wf, frontier - (offset + len));
        return rc != 0 ? rc : drain_window(wf);
    }
    if (offset > frontier) {
        /* Zeros ahead of the frontier (a pre-extension marker, a sparse region) cost nothing to hold. */
        int zero = all_zero(data, len);
        int absorbed = punch_window(wf, offset, offset + len, zero ? NULL : data);
        if (absorbed != 0)
            return absorbed < 0 ? absorbed : 0;
        if (zero) {
            piece *p = new_bare_piece(PIECE_ZERO, offset, len);
            if (!p)
                return -ENOMEM;
            insert_piece(wf, p);
            return 0;
        }
        if (offset + len - frontier <= wf->ctx->options.reorder_window &&
            hold_in_memory(wf, data, len, offset) == 0)
            return 0;
        return park(wf, data, len, offset);
    }
    log_debug("%s: write at %llu below the frontier %llu", wf->path, (unsigned long long)offset, (unsigned long long)frontier);
    int rc = leave_stream(wf, "rewrite of bytes already encrypted");
    return rc != 0 ? rc : spool_write(wf->spool, offset, data, len);
}

ssize_t write_file_write(write_file *wf, const char *buf, size_t size, off_t offset)
{
    if (offset < 0)
        return -EINVAL;
    const uint8_t *data = (const uint8_t *)buf;
    pthread_mutex_lock(&wf->lock);
    int rc = 0;
    if (wf->broken || wf->failed) {
        rc = -EIO;
    } else if (wf->state == WF_IDLE) {
        rc = load_into_spool(wf);
        if (rc == 0 && wf->size == 0) {
            /* Nothing to keep (empty or absent object): stream instead. */
            spool_free(wf->spool);
            wf->spool = NULL;
            rc = start_stream(wf);
        }
    }
    if (rc == 0 && size > 0) {
        wf_mode was = wf->state;
        uint64_t streamed = wf->stream ? write_stream_length(wf->stream) : 0, tail = wf->zero_tail;
        const piece *first = wf->pieces;
        uint64_t held = wf->window_bytes;
        if (wf->state == WF_STREAM)
            rc = stream_write(wf, data, size, (uint64_t)offset);
        else
            rc = spool_write(wf->spool, (uint64_t)offset, data, size);
        /* A write refused whole (EFBIG up front, no memory for a window piece) leaves the file as it
         * was. One that failed after the stream or spool took part of it cannot be undone: the caller
         * is told nothing was written, so nothing of this file may be stored. */
        int untouched = was == WF_STREAM && wf->state == WF_STREAM &&
                        write_stream_length(wf->stream) == streamed && wf->zero_tail == tail &&
                        wf->pieces == first && wf->window_bytes == held;
        if (rc != 0 && !untouched)
            wf->broken = 1;
    }
    if (rc == 0) {
        if ((uint64_t)offset + size > wf->size)
            wf->size = (uint64_t)offset + size;
        wf->dirty = 1;
        wf->changed = 1;
        wf->ctx->counters.bytes_written_plain += size;
        publish(wf);
    } else if (rc == -EIO) {
        wf->broken = 1;
    }
    pthread_mutex_unlock(&wf->lock);
    return rc != 0 ? rc : (ssize_t)size;
}

/* Drops window pieces at or beyond size, cuts one that straddles it. */
static void trim_window(write_file *wf, uint64_t size)
{
    piece **at = &wf->pieces;
    while (*at) {
        piece *p = *at;
        if (p->offset >= size) {
            drop_piece(wf, at);
            continue;
        }
        if (p->offset + p->len > size) {
            if (p->kind == PIECE_MEMORY)
                wf->window_bytes -= p->offset + p->len - size;
            p->len = size - p->offset;
        }
        at = &p->next;
    }
}

/* Caller holds wf->lock. */
static int truncate_locked(write_file *wf, uint64_t size)
{
    int rc = 0;
    if (wf->broken || wf->failed) {
        rc = -EIO;
    } else if (wf->state == WF_IDLE) {
        if (size == 0) {
            /* Emptying an object keeps its stored attributes, as truncating a local file does. */
            if (!wf->mode) {
                kv_list_free(&wf->kept_metadata);
                kv_list_init(&wf->kept_metadata);
                keep_existing_attributes(wf);
            }
            rc = start_stream(wf);
        } else {
            rc = load_into_spool(wf);
            if (rc == 0 && wf->size == size) {
                /* Same size: nothing changes; drop the spool again. */
                spool_free(wf->spool);
                wf->spool = NULL;
                wf->state = WF_IDLE;
                return 0;
            }
            if (rc == 0)
                rc = spool_truncate(wf->spool, size);
        }
    } else if (wf->state == WF_STREAM) {
        uint64_t encrypted = write_stream_length(wf->stream);
        if (size >= encrypted) {
            /* Cutting into the held-back zeros (sector padding) costs nothing. */
            if (size < encrypted + wf->zero_tail)
                wf->zero_tail = size - encrypted;
            trim_window(wf, size);
        } else if (size == 0 && !write_stream_has_uploaded(wf->stream)) {
            /* Truncating an unsent stream to nothing: start over (fresh key and IV). */
            free_pieces(wf);
            write_stream_free(wf->stream);
            wf->stream = NULL;
            wf->zero_tail = 0;
            rc = start_stream(wf);
        } else if ((rc = write_stream_truncate(wf->stream, size)) != -ENOTSUP) {
            /* Everything from size on was still in memory: cut back in place, keep streaming. */
            if (rc == 0) {
                wf->zero_tail = 0;
                trim_window(wf, size);
            }
        } else {
            rc = leave_stream(wf, "truncation below the bytes already encrypted");
            if (rc == 0)
                rc = spool_truncate(wf->spool, size);
        }
    } else {
        rc = spool_truncate(wf->spool, size);
    }
    if (rc == 0) {
        wf->size = size;
        wf->dirty = 1;
        wf->changed = 1;
        publish(wf);
    } else if (rc == -EIO) {
        wf->broken = 1;
    }
    return rc;
}

int write_file_truncate(write_file *wf, uint64_t size)
{
    pthread_mutex_lock(&wf->lock);
    int rc = truncate_locked(wf, size);
    pthread_mutex_unlock(&wf->lock);
    return rc;
}

/* The size a reader sees now. Caller holds wf->lock. An unchanged file is its object (HEAD). */
static int current_size(write_file *wf, uint64_t *size)
{
    if (wf->state != WF_IDLE || wf->dirty) {
        *size = wf->size;
        return 0;
    }
    object_info info;
    int rc = object_info_head(wf->ctx, wf->key, -1, &info);
    if (rc == -ENOENT) {
        *size = 0;
        return 0;
    }
    if (rc != 0)
        return rc;
    rc = object_info_plain_size(wf->ctx, &info, NULL);
    if (rc == 0)
        *size = info.plain_size;
    object_info_free(&info);
    return rc;
}

int write_file_grow(write_file *wf, uint64_t size)
{
    pthread_mutex_lock(&wf->lock);
    uint64_t now = 0;
    int rc = wf->broken || wf->failed ? -EIO : current_size(wf, &now);
    if (rc == 0 && size > now)
        rc = truncate_locked(wf, size);
    pthread_mutex_unlock(&wf->lock);
    return rc;
}

void write_file_mark_deleted(write_file *wf)
{
    pthread_mutex_lock(&wf->lock);
    wf->deleted = 1;
    pthread_mutex_unlock(&wf->lock);
}

int write_file_attrs(write_file *wf, mode_t *mode, uid_t *uid, gid_t *gid)
{
    pthread_mutex_lock(&wf->lock);
    int has = wf->mode != 0;
    *mode = wf->mode;
    *uid = wf->uid;
    *gid = wf->gid;
    pthread_mutex_unlock(&wf->lock);
    return has;
}

int write_file_fsync(write_file *wf)
{
    pthread_mutex_lock(&wf->lock);
    int rc = wf->broken || wf->failed ? -EIO : 0;
    if (rc == 0 && wf->state == WF_STREAM)
        rc = write_stream_wait_parts(wf->stream);
    pthread_mutex_unlock(&wf->lock);
    return rc;
}

ssize_t write_file_read(write_file *wf, char *buf, size_t size, off_t offset)
{
    return write_file_read_ex(wf, buf, size, offset, 1);
}

ssize_t write_file_read_ex(write_file *wf, char *buf, size_t size, off_t offset, int may_leave_stream)
{
    pthread_mutex_lock(&wf->lock);
    ssize_t rc;
    if (wf->state == WF_IDLE || (wf->state == WF_STREAM && !may_leave_stream)) {
        rc = -EAGAIN;
    } else if (wf->state == WF_STREAM && write_stream_has_uploaded(wf->stream)) {
        /* The bytes are in S3 as parts of an unfinished upload: not readable, but the upload goes on. */
        rc = -EIO;
    } else if (wf->state == WF_STREAM) {
        /* Reading back a streamed file: only possible while nothing left memory; move to the spool. */
        rc = leave_stream(wf, "read-back of a file being written");
        if (rc == 0)
            rc = spool_read(wf->spool, (uint64_t)offset, (uint8_t *)buf, size);
    } else {
        rc = spool_read(wf->spool, (uint64_t)offset, (uint8_t *)buf, size);
    }
    pthread_mutex_unlock(&wf->lock);
    return rc;
}

/* Feeds the holes and the window in offset order, then zeros up to the logical size. */
static int complete_stream_data(write_file *wf)
{
    int rc = 0;
    while (rc == 0 && wf->pieces) {
        uint64_t frontier = frontier_of(wf);
        if (wf->pieces->offset > frontier)
            wf->zero_tail += wf->pieces->offset - frontier;
        rc = drain_window(wf);
    }
    uint64_t frontier = frontier_of(wf);
    if (rc == 0 && wf->size > frontier)
        wf->zero_tail += wf->size - frontier;
    if (rc == 0)
        rc = flush_zero_tail(wf);
    return rc;
}

static int stream_sink(void *arg, uint64_t offset, const uint8_t *data, size_t len)
{
    (void)offset;
    return write_stream_append(arg, data, len);
}

static int upload_spool(write_file *wf)
{
    int rc = start_stream(wf);
    return rc != 0 ? rc : copy_from_spool(wf, wf->spool, 0, spool_size(wf->spool), stream_sink, wf->stream);
}

static void invalidate_cache(write_file *wf)
{
    if (wf->ctx->meta)
        meta_cache_invalidate(wf->ctx->meta, wf->path);
}

/* After an upload that replaced an object without a metadata envelope: its <key>.instruction, if an SDK
 * wrote one, would now describe bytes it does not belong to (a plain file read through it is garbage).
 * Best effort: the upload has succeeded either way. */
static void drop_stale_instruction(write_file *wf)
{
    object_info_drop_instruction(wf->ctx, wf->key);
    if (wf->ctx->meta) {
        char *ipath = NULL;
        if (asprintf(&ipath, "%s" INSTRUCTION_SUFFIX, wf->path) >= 0)
            meta_cache_invalidate(wf->ctx->meta, ipath);
        free(ipath);
    }
}

int write_file_finish(write_file *wf)
{
    pthread_mutex_lock(&wf->lock);
    int rc = 0;
    if (wf->failed) {
        rc = -EIO;                     /* reported already; the object is unchanged */
    } else if (wf->deleted) {
        if (wf->dirty)
            log_info("%s: deleted while open; its pending data is discarded", wf->path);
    } else if (wf->broken) {
        if (wf->stream)
            write_stream_fail(wf->stream, "a write could not be taken by the streaming upload");
        else
            log_error("%s: upload failed; the object is unchanged", wf->path);
        rc = -EIO;
    } else if (wf->dirty) {
        if (wf->state == WF_STREAM) {
            rc = complete_stream_data(wf);
        } else if (wf->state == WF_SPOOL) {
            rc = upload_spool(wf);
        } else {
            rc = start_stream(wf);     /* idle but dirty: an empty object */
        }
        if (rc == 0)
            rc = write_stream_finish(wf->stream);
        if (rc != 0) {
            log_error("%s: upload failed; the object is unchanged", wf->path);
            rc = -EIO;
        } else {
            wf->uploads++;
            if (wf->replaces_bare_object) {
                drop_stale_instruction(wf);
                wf->replaces_bare_object = 0;
            }
        }
        invalidate_cache(wf);
    }
    /* Whatever happened, the file is idle again: the object is either the new one or unchanged. */
    free_pieces(wf);
    write_stream_free(wf->stream);
    wf->stream = NULL;
    spool_free(wf->spool);
    wf->spool = NULL;
    wf->zero_tail = 0;
    wf->state = WF_IDLE;
    wf->dirty = 0;
    wf->changed = 0;
    wf->broken = 0;
    if (rc != 0)
        wf->failed = 1;
    publish(wf);
    pthread_mutex_unlock(&wf->lock);
    return rc;
}

uint64_t write_file_uploads(write_file *wf)
{
    return wf->uploads;
}

int write_file_has_changes(write_file *wf)
{
    pthread_mutex_lock(&wf->lock);
    int changed = wf->changed || wf->broken || wf->failed;
    pthread_mutex_unlock(&wf->lock);
    return changed;
}

int write_file_stat(write_file *wf, uint64_t *size, struct timespec *mtime)
{
    if (!wf->visible_dirty)
        return 0;
    if (size)
        *size = wf->visible_size;
    if (mtime) {
        mtime->tv_sec = wf->mtime_sec;
        mtime->tv_nsec = wf->mtime_nsec;
    }
    return 1;
}

void write_file_free(write_file *wf)
{
    if (!wf)
        return;
    free_pieces(wf);
    write_stream_free(wf->stream);
    spool_free(wf->spool);
    kv_list_free(&wf->kept_metadata);
    pthread_mutex_destroy(&wf->lock);
    free(wf->path);
    free(wf->key);
    free(wf);
}
