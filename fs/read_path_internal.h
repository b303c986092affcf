/* Private to the read path's two files (read_path.c: read handles, direct and late reads, open and
 * close; read_stream.c: the streaming GET behind a sequential reader, its plaintext queue and fetch
 * thread). The handle and stream state, and the calls one file makes into the other. */
#ifndef S3CSEFS_READ_PATH_INTERNAL_H
#define S3CSEFS_READ_PATH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "aws_error.h"
#include "cbc_random.h"
#include "gcm.h"
#include "read_path.h"

#define BLOCK 16
/* Reads this close to where the last one ended still count as sequential: the kernel issues readahead
 * requests concurrently, so they can arrive slightly out of order. */
#define SEQUENTIAL_SLACK ((uint64_t)1024 * 1024)
/* Once a stream runs, reads this far around where its readers are still belong to it (they wait for
 * the stream rather than fetch on their own): a raised read_ahead_kb has the kernel send a whole
 * readahead window as 1 MiB requests at once (read_ahead_kb=16384 spreads them over 30 MiB), and
 * smbd's thread pool reads ahead the same way; they reach the daemon in any order. Bytes behind the
 * furthest read are kept for the late ones: from STREAM_KEEP_BEHIND_START, and twice as far back as
 * late reads have come so far, up to STREAM_KEEP_BEHIND_MAX. They count against the budget and give way
 * to the stream's own reader waiting for memory, not to other handles' streams, so they must not stay
 * pinned by a handle nobody reads: once the object has been read to its end, the stream keeps only
 * SEQUENTIAL_SLACK, and its spare segments go when its fetch thread ends. The start covers
 * read_ahead_kb up to 4096 (requests up to ~5 MiB late) without a single late GET, which costs a round
 * trip on S3 (and, on moto, a stall of the whole server while it loads the object). All three shrink
 * with a small max_memory (stream_reorder() etc.): a reader waiting far ahead makes the stream queue
 * everything up to it, and two streams' kept bytes must not fill the budget. */
#define STREAM_REORDER ((uint64_t)32 * 1024 * 1024)
#define STREAM_KEEP_BEHIND_START ((uint64_t)8 * 1024 * 1024)
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
    int waiting;                 /* readers waiting for bytes */
    uint64_t wake_at;            /* the nearest end a waiting reader needs: publishing past it wakes them */
    pthread_cond_t published;    /* readers wait here: one wakeup per request, not per network chunk */
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

static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline int is_cbc(const read_handle *h) { return h->encrypted && h->cek_alg == CSE_CEK_AES_CBC; }
static inline int is_gcm(const read_handle *h) { return h->encrypted && h->cek_alg == CSE_CEK_AES_GCM; }

/* The distances above, within a fraction of the memory budget. */
static inline uint64_t budget_share(const read_handle *h, uint64_t want, unsigned divisor)
{
    uint64_t limit = h->ctx->memory.limit;
    return limit && limit / divisor < want ? limit / divisor : want;
}
static inline uint64_t stream_reorder(const read_handle *h) { return budget_share(h, STREAM_REORDER, 2); }
static inline uint64_t stream_keep_start(const read_handle *h) { return budget_share(h, STREAM_KEEP_BEHIND_START, 8); }
static inline uint64_t stream_keep_max(const read_handle *h) { return budget_share(h, STREAM_KEEP_BEHIND_MAX, 4); }

/* read_path.c. read_direct: lock held on entry and exit, released during the GET. */
ssize_t read_direct(read_handle *h, char *buf, size_t size, uint64_t offset);
int read_get_failed(read_handle *h, const aws_error *err, uint64_t from, uint64_t to);

/* read_stream.c. All with h->lock held. */
stream *read_stream_start(read_handle *h, uint64_t off);
void read_stream_retire(read_handle *h);
void read_stream_reap(read_handle *h);
ssize_t read_stream_read(read_handle *h, stream *s, char *buf, size_t size, uint64_t off);
int read_stream_serves(const stream *s, uint64_t off, int near);
uint64_t read_stream_low(const stream *s);
void read_stream_note_late(stream *s, uint64_t off);
void read_stream_spares_free(read_handle *h);
void read_stream_free_segments(stream *s);
/* Joins the (finished or stopping) fetch thread and frees the stream. Without the lock. */
void read_stream_free(stream *s);

#endif
