/* Streaming upload of one object (see write_stream.h). Part buffers are filled by the writer thread and
 * handed to the worker pool; the pool's callback stores the part's ETag/checksum and frees the buffer.
 * A full part is dispatched lazily, when more data arrives, so that a file that exactly fills the first
 * part still goes out as a single PutObject. */
#include "write_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <openssl/rand.h>
#include "cbc_random.h"
#include "cbc_stream.h"
#include "envelope.h"
#include "fileutil.h"
#include "log.h"
#include "s3_limits.h"
#include "secure_mem.h"

#define PART_GROWTH_EVERY 1000
/* Wait this long for part memory; then the part is staged on disk instead (ciphertext only), so that
 * many files filling parts at once can never deadlock on the cap. */
#define PART_MEMORY_WAIT_MS 300
#define PART_MEMORY_MAX_WAIT_MS (5 * 60 * 1000)
/* The write-behind buffer of a part staged on disk (outside the cap: a fixed small cost per stream). */
#define DISK_STAGE_SIZE (256 * 1024)
/* Part buffers start this small and double up to the part size, so small files (and many files open at
 * once) hold little of the memory budget. */
#define PART_BUFFER_INITIAL (256 * 1024)

struct write_stream {
    fs_context *ctx;
    part_uploader *uploader;
    char *key;
    int encrypt;
    kv_list extra_metadata;

    secure_buf *data_key;
    uint8_t iv[CSE_AES_BLOCK];
    uint8_t key_blob[CSE_MAX_KEY_BLOB];
    size_t key_blob_len;
    cbc_encryptor *enc;
    uint8_t recent_plain[CSE_AES_BLOCK];   /* last bytes appended: what the cipher may still hold back */
    uint8_t sent_tail[CSE_AES_BLOCK];      /* last ciphertext block handed to the uploader: the chaining
                                            * value a truncation back to the current part's start needs */
    uint64_t plain_len;

    uint8_t *buf;            /* part being filled: ciphertext (or plaintext for plain objects) */
    size_t buf_len;
    size_t buf_cap;          /* this part's size */
    size_t buf_alloc;        /* allocated now (grows up to buf_cap), plus CSE_AES_BLOCK for the final block */
    uint64_t buf_reserved;   /* bytes reserved from the memory budget for buf */
    int part_number;         /* number of the part in buf */
    int disk_fd;             /* >= 0: this part is staged in an unlinked file in spool_dir ... */
    uint64_t disk_len;       /* ... holding its first disk_len bytes; buf is then the write-behind stage */

    char *upload_id;
    pthread_mutex_t lock;    /* guards what the upload callbacks touch: parts, in_flight, failure */
    pthread_cond_t changed;
    objc_part *parts;        /* indexed by part number - 1 */
    uint64_t *part_reserved; /* memory reserved for each in-flight part's buffer */
    int *part_fd;            /* staged parts: the file behind the mapped body, else -1 */
    size_t parts_cap;
    int in_flight;
    _Atomic int failed;
    char failure[320];
    int finished;
    uint64_t bytes_sent;
    struct timespec started;
};

uint64_t write_part_size(uint64_t first_part_size, int part_number)
{
    uint64_t size = first_part_size;
    for (int n = part_number - 1; n >= PART_GROWTH_EVERY && size < S3_MAX_PART_SIZE; n -= PART_GROWTH_EVERY)
        size *= 2;
    return size > S3_MAX_PART_SIZE ? S3_MAX_PART_SIZE : size;
}

uint64_t write_stream_capacity(uint64_t first_part_size)
{
    /* Sizes change only every PART_GROWTH_EVERY parts: sum whole groups. */
    uint64_t total = 0;
    for (int first = 1; first <= S3_MAX_PARTS; first += PART_GROWTH_EVERY) {
        int count = S3_MAX_PARTS - first + 1 < PART_GROWTH_EVERY ? S3_MAX_PARTS - first + 1 : PART_GROWTH_EVERY;
        total += (uint64_t)count * write_part_size(first_part_size, first);
    }
    return total < S3_MAX_OBJECT_SIZE ? total : S3_MAX_OBJECT_SIZE;
}

uint64_t write_min_part_size(void)
{
    /* Capacity grows with the first part size: binary search over multiples of 16. */
    uint64_t lo = S3_MIN_PART_SIZE / 16, hi = S3_MAX_PART_SIZE / 16;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (write_stream_capacity(mid * 16) >= S3_MAX_OBJECT_SIZE)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo * 16;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void mark_failed(write_stream *s, const char *what, const aws_error *err)
{
    char detail[256] = "";
    if (err)
        aws_error_format(err, detail, sizeof detail);
    pthread_mutex_lock(&s->lock);
    if (!s->failed) {
        s->failed = 1;
        snprintf(s->failure, sizeof s->failure, "%s%s%s", what, err ? ": " : "", detail);
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static int has_failed(write_stream *s)
{
    pthread_mutex_lock(&s->lock);
    int failed = s->failed;
    pthread_mutex_unlock(&s->lock);
    return failed;
}

static int generate_data_key(write_stream *s)
{
    fs_context *ctx = s->ctx;
    kv_list context;
    kv_list_init(&context);
    if (cse_write_context(ctx->options.cse_profile, ctx->key_arn, &context) != CSE_OK) {
        kv_list_free(&context);
        return -ENOMEM;
    }
    aws_error err;
    aws_error_clear(&err);
    ctx->counters.kms_generate_calls++;
    int rc = kms_generate_data_key(ctx->kms, ctx->key_arn, &context, &s->data_key, s->key_blob,
                                   sizeof s->key_blob, &s->key_blob_len, &err);
    kv_list_free(&context);
    if (rc != 0 || !s->data_key || s->data_key->len != CSE_AES256_KEY) {
        char detail[256];
        log_error("upload %s: KMS GenerateDataKey failed: %s", s->key, aws_error_format(&err, detail, sizeof detail));
        return -EIO;
    }
    if (RAND_bytes(s->iv, sizeof s->iv) != 1) {
        log_error("upload %s: no random bytes for the IV", s->key);
        return -EIO;
    }
    if (cbc_encryptor_new(s->data_key->bytes, s->iv, &s->enc) != CSE_OK)
        return -ENOMEM;
    return 0;
}

int write_stream_new(fs_context *ctx, part_uploader *uploader, const char *key, int encrypt,
                     const kv_list *extra_metadata, write_stream **out)
{
    *out = NULL;
    write_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->ctx = ctx;
    s->uploader = uploader;
    s->encrypt = encrypt;
    s->part_number = 1;
    s->disk_fd = -1;
    kv_list_init(&s->extra_metadata);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    s->key = strdup(key);
    if (!s->key || (extra_metadata && kv_list_copy(&s->extra_metadata, extra_metadata) != 0)) {
        write_stream_free(s);
        return -ENOMEM;
    }
    if (encrypt) {
        int rc = generate_data_key(s);
        if (rc != 0) {
            write_stream_free(s);
            return rc;
        }
    }
    ctx->counters.uploads_started++;
    log_debug("upload %s: stream started (%s)", s->key, encrypt ? "encrypted" : "plain");
    *out = s;
    return 0;
}

/* The object's user metadata: envelope (encrypted) plus the extra attributes. */
static int build_metadata(write_stream *s, int64_t plain_length, kv_list *md)
{
    kv_list_init(md);
    if (kv_list_copy(md, &s->extra_metadata) != 0)
        return -ENOMEM;
    if (s->encrypt && cse_envelope_emit(s->ctx->options.cse_profile, s->key_blob, s->key_blob_len, s->iv,
                                        s->ctx->key_arn, plain_length, md) != CSE_OK) {
        kv_list_free(md);
        return -ENOMEM;
    }
    return 0;
}

static int ensure_upload(write_stream *s)
{
    if (s->upload_id)
        return 0;
    kv_list md;
    if (build_metadata(s, -1, &md) != 0)
        return -ENOMEM;
    aws_error err;
    aws_error_clear(&err);
    s->ctx->counters.s3_requests++;
    int rc = s->ctx->objects->ops->mpu_create(s->ctx->objects, s->key, &md, &s->upload_id, &err);
    kv_list_free(&md);
    if (rc != 0) {
        s->ctx->counters.s3_errors++;
        mark_failed(s, "CreateMultipartUpload failed", &err);
        return -EIO;
    }
    log_info("upload %s: multipart upload started", s->key);
    /* S3 answers again: a good moment to clean up earlier aborts that failed, on a worker thread. */
    part_uploader_request_abort_retry(s->uploader);
    return 0;
}

static void part_done(void *arg, int part_number, uint8_t *body, int status, const objc_part *part,
                      const aws_error *err)
{
    write_stream *s = arg;
    pthread_mutex_lock(&s->lock);
    uint64_t reserved = s->part_reserved[part_number - 1];
    int fd = s->part_fd[part_number - 1];
    pthread_mutex_unlock(&s->lock);
    if (fd >= 0) {
        munmap(body, (size_t)reserved);
        close(fd);
        s->ctx->counters.spool_bytes -= reserved;
    } else {
        free(body);
        memory_budget_release(&s->ctx->memory, reserved);
    }
    if (status != 0) {
        char what[64];
        snprintf(what, sizeof what, "UploadPart %d failed", part_number);
        mark_failed(s, what, err);
    }
    pthread_mutex_lock(&s->lock);
    if (status == 0)
        s->parts[part_number - 1] = *part;
    s->in_flight--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static int grow_parts(write_stream *s, int part_number)
{
    if ((size_t)part_number <= s->parts_cap)
        return 0;
    size_t cap = s->parts_cap ? s->parts_cap * 2 : 64;
    while (cap < (size_t)part_number)
        cap *= 2;
    pthread_mutex_lock(&s->lock);
    objc_part *grown = realloc(s->parts, cap * sizeof *grown);
    if (grown)
        s->parts = grown;
    uint64_t *grown_reserved = grown ? realloc(s->part_reserved, cap * sizeof *grown_reserved) : NULL;
    if (grown_reserved)
        s->part_reserved = grown_reserved;
    int *grown_fd = grown_reserved ? realloc(s->part_fd, cap * sizeof *grown_fd) : NULL;
    if (grown_fd) {
        s->part_fd = grown_fd;
        for (size_t i = s->parts_cap; i < cap; i++)
            grown_fd[i] = -1;
        memset(s->parts + s->parts_cap, 0, (cap - s->parts_cap) * sizeof *s->parts);
        memset(s->part_reserved + s->parts_cap, 0, (cap - s->parts_cap) * sizeof *s->part_reserved);
        s->parts_cap = cap;
    }
    pthread_mutex_unlock(&s->lock);
    return grown_fd ? 0 : -ENOMEM;
}

/* Staged part: writes the stage out to the file. */
static int flush_stage(write_stream *s)
{
    int rc = write_fully(s->disk_fd, s->buf, s->buf_len, s->disk_len);
    if (rc != 0) {
        log_error("upload %s: writing a staged part to %s failed: %s", s->key, s->ctx->options.spool_dir,
                  strerror(-rc));
        return rc == -ENOSPC ? -ENOSPC : -EIO;
    }
    s->disk_len += s->buf_len;
    s->ctx->counters.spool_bytes += s->buf_len;
    s->buf_len = 0;
    return 0;
}

/* Staged part: the whole part as one read-only mapping of its file (page cache, not heap). */
static int map_staged_part(write_stream *s, uint8_t **body)
{
    int rc = flush_stage(s);
    if (rc != 0)
        return rc;
    if (s->disk_len == 0) {
        *body = NULL;
        return 0;
    }
    void *m = mmap(NULL, (size_t)s->disk_len, PROT_READ, MAP_SHARED, s->disk_fd, 0);
    if (m == MAP_FAILED) {
        log_error("upload %s: cannot map a staged part: %s", s->key, strerror(errno));
        return -EIO;
    }
    *body = m;
    return 0;
}

static void drop_part_buffer(write_stream *s)
{
    free(s->buf);
    memory_budget_release(&s->ctx->memory, s->buf_reserved);
    if (s->disk_fd >= 0) {
        close(s->disk_fd);
        s->ctx->counters.spool_bytes -= s->disk_len;
    }
    s->buf = NULL;
    s->buf_len = 0;
    s->buf_alloc = 0;
    s->buf_reserved = 0;
    s->disk_fd = -1;
    s->disk_len = 0;
}

/* Hands the filled part to the uploader. Its memory reservation (or staged file) travels with it. */
static int dispatch_part(write_stream *s)
{
    int rc = ensure_upload(s);
    if (rc != 0)
        return rc;
    rc = grow_parts(s, s->part_number);
    if (rc != 0)
        return rc;
    uint8_t *body = s->buf;
    size_t len = s->buf_len;
    if (s->disk_fd >= 0) {
        rc = map_staged_part(s, &body);
        if (rc != 0)
            return rc;
        len = (size_t)s->disk_len;
    }
    pthread_mutex_lock(&s->lock);
    s->in_flight++;
    s->part_reserved[s->part_number - 1] = s->disk_fd >= 0 ? s->disk_len : s->buf_reserved;
    s->part_fd[s->part_number - 1] = s->disk_fd;
    pthread_mutex_unlock(&s->lock);
    if (s->encrypt && len >= CSE_AES_BLOCK)
        memcpy(s->sent_tail, body + len - CSE_AES_BLOCK, CSE_AES_BLOCK);
    s->bytes_sent += len;
    rc = part_uploader_submit(s->uploader, s->key, s->upload_id, s->part_number, body, len, part_done, s,
                              &s->failed);
    if (rc != 0) {
        pthread_mutex_lock(&s->lock);
        s->in_flight--;
        s->part_fd[s->part_number - 1] = -1;
        pthread_mutex_unlock(&s->lock);
        if (body != s->buf)
            munmap(body, len);
        return rc;
    }
    if (s->disk_fd >= 0) {
        /* The file and its mapping now belong to the upload; only the stage is ours to free. */
        free(s->buf);
        memory_budget_release(&s->ctx->memory, s->buf_reserved);
        s->disk_fd = -1;
        s->disk_len = 0;
    }
    s->buf = NULL;
    s->buf_len = 0;
    s->buf_alloc = 0;
    s->buf_reserved = 0;
    s->part_number++;
    return 0;
}

/* Waits for memory as long as uploads are under way (they free it: normal back-pressure); gives up
 * when nothing is in flight, as then the cap is held by buffers still being filled, which only a
 * spill to disk can resolve. */
static int reserve_memory(write_stream *s, uint64_t bytes)
{
    if (bytes > s->ctx->memory.limit)
        return -ENOMEM;
    int waited_ms = 0;
    while (memory_budget_reserve(&s->ctx->memory, bytes, PART_MEMORY_WAIT_MS) != 0) {
        waited_ms += PART_MEMORY_WAIT_MS;
        if (part_uploader_pending(s->uploader) == 0 || waited_ms >= PART_MEMORY_MAX_WAIT_MS)
            return -ENOMEM;
    }
    return 0;
}

static int open_stage_file(write_stream *s)
{
    const char *dir = s->ctx->options.spool_dir;
    int fd = open_unlinked(dir, "s3csefs-part");
    if (fd < 0)
        log_error("upload %s: no memory within max_memory and cannot stage part %d in %s: %s", s->key,
                  s->part_number, dir, strerror(-fd));
    return fd;
}

/* Memory is short: the part continues in a file (ciphertext only), with a small stage in front. */
static int spill_to_disk(write_stream *s)
{
    int fd = open_stage_file(s);
    if (fd < 0)
        return fd == -ENOSPC ? -ENOSPC : -ENOMEM;   /* no memory and nowhere to stage: nothing broke */
    if (s->buf_len > 0) {
        int rc = write_fully(fd, s->buf, s->buf_len, 0);
        if (rc != 0) {
            close(fd);
            log_error("upload %s: staging part %d failed: %s", s->key, s->part_number, strerror(-rc));
            return rc == -ENOSPC ? -ENOSPC : -EIO;
        }
    }
    uint8_t *stage = malloc(DISK_STAGE_SIZE + CSE_AES_BLOCK);
    if (!stage) {
        close(fd);
        return -ENOMEM;
    }
    s->ctx->counters.spool_bytes += s->buf_len;
    free(s->buf);
    memory_budget_release(&s->ctx->memory, s->buf_reserved);
    s->buf = stage;
    s->buf_reserved = 0;
    s->disk_fd = fd;
    s->disk_len = s->buf_len;
    s->buf_len = 0;
    s->buf_alloc = DISK_STAGE_SIZE;
    log_debug("upload %s: part %d staged on disk (memory cap reached)", s->key, s->part_number);
    return 0;
}

static int new_part_buffer(write_stream *s)
{
    if (s->part_number > S3_MAX_PARTS) {
        log_error("upload %s: more than %d parts; file too large", s->key, S3_MAX_PARTS);
        return -EFBIG;
    }
    uint64_t cap = write_part_size(s->ctx->options.part_size, s->part_number);
    /* Once a part has filled up the stream is clearly large: later parts get their full size at once
     * (no regrowth copies). */
    uint64_t alloc = s->part_number > 1 || cap < PART_BUFFER_INITIAL ? cap : PART_BUFFER_INITIAL;
    uint64_t reserve = alloc + CSE_AES_BLOCK;
    s->buf_cap = cap;
    if (reserve_memory(s, reserve) != 0) {
        s->buf_len = 0;
        return spill_to_disk(s);
    }
    s->buf = malloc(reserve);
    if (!s->buf) {
        memory_budget_release(&s->ctx->memory, reserve);
        return -ENOMEM;
    }
    s->buf_cap = cap;
    s->buf_alloc = alloc;
    s->buf_len = 0;
    s->buf_reserved = reserve;
    return 0;
}

/* Doubles the part buffer (up to the part size) once the writer has filled what is allocated. */
static int grow_part_buffer(write_stream *s)
{
    if (s->disk_fd >= 0)
        return flush_stage(s);
    size_t alloc = s->buf_alloc * 2 < s->buf_cap ? s->buf_alloc * 2 : s->buf_cap;
    uint64_t extra = alloc - s->buf_alloc;
    if (reserve_memory(s, extra) != 0)
        return spill_to_disk(s);
    uint8_t *grown = realloc(s->buf, alloc + CSE_AES_BLOCK);
    if (!grown) {
        memory_budget_release(&s->ctx->memory, extra);
        return -ENOMEM;
    }
    s->buf = grown;
    s->buf_alloc = alloc;
    s->buf_reserved += extra;
    return 0;
}

static void remember_recent(write_stream *s, const uint8_t *data, size_t len)
{
    if (len >= CSE_AES_BLOCK) {
        memcpy(s->recent_plain, data + len - CSE_AES_BLOCK, CSE_AES_BLOCK);
    } else {
        memmove(s->recent_plain, s->recent_plain + len, CSE_AES_BLOCK - len);
        memcpy(s->recent_plain + CSE_AES_BLOCK - len, data, len);
    }
}

/* The appending loop; may stop with an error after taking part of the data. */
static int append_some(write_stream *s, const uint8_t *data, size_t len)
{
    while (len > 0) {
        if (s->buf && s->disk_len + s->buf_len == s->buf_cap) {
            int rc = dispatch_part(s);
            if (rc != 0)
                return rc;
        }
        if (!s->buf) {
            int rc = new_part_buffer(s);
            if (rc != 0)
                return rc;
        } else if (s->buf_len == s->buf_alloc) {
            int rc = grow_part_buffer(s);
            if (rc != 0)
                return rc;
        }
        size_t room = s->buf_alloc - s->buf_len;
        if (room > s->buf_cap - s->disk_len - s->buf_len)
            room = (size_t)(s->buf_cap - s->disk_len - s->buf_len);
        size_t n;
        if (s->encrypt) {
            /* room is a whole number of blocks and the cipher holds back < 16 bytes: n >= 1. */
            size_t pending = cbc_encryptor_pending(s->enc);
            n = len < room - pending ? len : room - pending;
            size_t produced = 0;
            if (cbc_encryptor_update(s->enc, data, n, s->buf + s->buf_len, &produced) != CSE_OK) {
                mark_failed(s, "encryption failed", NULL);
                return -EIO;
            }
            s->buf_len += produced;
        } else {
            n = len < room ? len : room;
            memcpy(s->buf + s->buf_len, data, n);
            s->buf_len += n;
        }
        remember_recent(s, data, n);
        s->plain_len += n;
        data += n;
        len -= n;
    }
    return 0;
}

int write_stream_append(write_stream *s, const uint8_t *data, size_t len)
{
    if (s->finished || has_failed(s))
        return -EIO;
    if (len == 0)
        return 0;
    /* Refused up front, so that a too-large write leaves the stream as it was (and finishable). */
    uint64_t after = s->plain_len + len;
    uint64_t stored = s->encrypt ? cbc_cipher_size(after) : after;
    if (after < s->plain_len || stored > write_stream_capacity(s->ctx->options.part_size)) {
        log_error("upload %s: a write to %" PRIu64 " bytes exceeds what %d parts (first part %" PRIu64
                  " bytes) or one S3 object can hold", s->key, after, S3_MAX_PARTS, s->ctx->options.part_size);
        return -EFBIG;
    }
    uint64_t before = s->plain_len;
    int rc = append_some(s, data, len);
    if (rc != 0 && s->plain_len != before && write_stream_truncate(s, before) != 0) {
        /* Part of the write went out with a part: the caller must not believe it was not written. */
        mark_failed(s, "a write failed after part of it had been uploaded", NULL);
        return -EIO;
    }
    return rc;
}

int write_stream_append_zeros(write_stream *s, uint64_t len)
{
    static const uint8_t zeros[64 * 1024];
    while (len > 0) {
        size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;
        int rc = write_stream_append(s, zeros, n);
        if (rc != 0)
            return rc;
        len -= n;
    }
    return 0;
}

/* Encrypted truncation: the stream is rewound to ciphertext block k = size / 16 and the first size % 16
 * plaintext bytes of block k go back into a fresh encryptor chained on C[k-1], which is exactly the state
 * an encryptor would be in had only `size` bytes been appended. */
static int truncate_encrypted(write_stream *s, uint64_t size, uint64_t part_start)
{
    uint64_t cut = size - size % CSE_AES_BLOCK;             /* ciphertext bytes kept */
    size_t held = (size_t)(size % CSE_AES_BLOCK);            /* plaintext bytes the cipher will hold */
    uint64_t emitted = part_start + s->buf_len;
    if (cut < part_start)
        return -ENOTSUP;
    uint8_t chain[CSE_AES_BLOCK];
    if (cut == 0)
        memcpy(chain, s->iv, sizeof chain);
    else if (cut == part_start)
        memcpy(chain, s->sent_tail, sizeof chain);
    else
        memcpy(chain, s->buf + (cut - part_start) - CSE_AES_BLOCK, sizeof chain);
    uint8_t block[CSE_AES_BLOCK];
    if (held > 0 && cut + CSE_AES_BLOCK <= emitted) {
        cbc_decryptor *dec = NULL;
        if (cbc_decryptor_new(s->data_key->bytes, &dec) != CSE_OK)
            return -ENOMEM;
        cse_status st = cbc_decrypt_blocks(dec, chain, s->buf + (cut - part_start), CSE_AES_BLOCK, block);
        cbc_decryptor_free(dec);
        if (st != CSE_OK)
            return -EIO;
    } else if (held > 0) {
        /* Block k was never emitted: its bytes are the start of what the cipher holds back now. */
        size_t pending = cbc_encryptor_pending(s->enc);
        memcpy(block, s->recent_plain + CSE_AES_BLOCK - pending, held);
    }
    cbc_encryptor *enc = NULL;
    size_t produced = 0;
    if (cbc_encryptor_new(s->data_key->bytes, chain, &enc) != CSE_OK) {
        secure_wipe(block, sizeof block);
        return -ENOMEM;
    }
    uint8_t none[2 * CSE_AES_BLOCK];   /* update's out: nothing is emitted for < 16 bytes */
    if (held > 0 && (cbc_encryptor_update(enc, block, held, none, &produced) != CSE_OK || produced != 0)) {
        cbc_encryptor_free(enc);
        secure_wipe(block, sizeof block);
        return -EIO;
    }
    cbc_encryptor_free(s->enc);
    s->enc = enc;
    /* Only the held-back tail of recent_plain is ever read (by recover). */
    memset(s->recent_plain, 0, sizeof s->recent_plain);
    memcpy(s->recent_plain + CSE_AES_BLOCK - held, block, held);
    secure_wipe(block, sizeof block);
    s->buf_len = (size_t)(cut - part_start);
    s->plain_len = size;
    return 0;
}

int write_stream_truncate(write_stream *s, uint64_t size)
{
    if (s->finished || has_failed(s))
        return -EIO;
    if (size == s->plain_len)
        return 0;
    /* Growing is the caller's job (zeros); staged parts are on disk and may be mapped: not rewound. */
    if (size > s->plain_len || s->disk_fd >= 0)
        return -ENOTSUP;
    uint64_t pending = s->encrypt ? cbc_encryptor_pending(s->enc) : 0;
    uint64_t part_start = s->plain_len - pending - s->buf_len;
    if (!s->encrypt) {
        if (size < part_start)
            return -ENOTSUP;
        s->buf_len = (size_t)(size - part_start);
        s->plain_len = size;
        return 0;
    }
    int rc = truncate_encrypted(s, size, part_start);
    if (rc == 0)
        log_debug("upload %s: stream cut back to %" PRIu64 " bytes", s->key, size);
    return rc;
}

uint64_t write_stream_length(const write_stream *s)
{
    return s->plain_len;
}

int write_stream_has_uploaded(const write_stream *s)
{
    return s->upload_id != NULL;
}

static int wait_in_flight(write_stream *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->in_flight > 0)
        pthread_cond_wait(&s->changed, &s->lock);
    int failed = s->failed;
    pthread_mutex_unlock(&s->lock);
    return failed ? -EIO : 0;
}

int write_stream_wait_parts(write_stream *s)
{
    return wait_in_flight(s);
}

static void abort_upload(write_stream *s)
{
    if (!s->upload_id)
        return;
    aws_error err;
    aws_error_clear(&err);
    s->ctx->counters.s3_requests++;
    if (s->ctx->objects->ops->mpu_abort(s->ctx->objects, s->key, s->upload_id, &err) != 0) {
        char detail[256];
        s->ctx->counters.s3_errors++;
        log_error("upload %s: AbortMultipartUpload failed, will retry at the next upload and at unmount: %s",
                  s->key, aws_error_format(&err, detail, sizeof detail));
        part_uploader_defer_abort(s->uploader, s->key, s->upload_id);
    }
    free(s->upload_id);
    s->upload_id = NULL;
}

static int fail_finish(write_stream *s)
{
    wait_in_flight(s);
    abort_upload(s);
    pthread_mutex_lock(&s->lock);
    log_error("upload %s failed after %.1f s: %s", s->key, seconds_since(&s->started),
              s->failed ? s->failure : "unknown error");
    pthread_mutex_unlock(&s->lock);
    s->ctx->counters.uploads_failed++;
    return -EIO;
}

static int put_single(write_stream *s)
{
    kv_list md;
    /* The blog-style (legacy) envelope has exactly key, IV and matdesc: no length. */
    int with_length = s->encrypt && s->ctx->options.cse_profile == CSE_PROFILE_KMS;
    if (build_metadata(s, with_length ? (int64_t)s->plain_len : -1, &md) != 0)
        return -ENOMEM;
    aws_error err;
    aws_error_clear(&err);
    s->ctx->counters.s3_requests++;
    static const uint8_t empty[1];
    const uint8_t *body = s->buf ? s->buf : empty;
    size_t len = s->buf_len;
    uint8_t *mapped = NULL;
    if (s->disk_fd >= 0) {
        if (map_staged_part(s, &mapped) != 0) {
            kv_list_free(&md);
            mark_failed(s, "staging the object failed", NULL);
            return -EIO;
        }
        body = mapped ? mapped : empty;
        len = (size_t)s->disk_len;
    }
    log_info("upload %s started: one PutObject of %zu bytes", s->key, len);
    int rc = s->ctx->objects->ops->put(s->ctx->objects, s->key, &md, body, len, &err);
    if (mapped)
        munmap(mapped, len);
    kv_list_free(&md);
    if (rc != 0) {
        s->ctx->counters.s3_errors++;
        mark_failed(s, "PutObject failed", &err);
        return -EIO;
    }
    s->ctx->counters.bytes_uploaded += len;
    s->bytes_sent += len;
    return 0;
}

static int complete_upload(write_stream *s)
{
    int parts = s->part_number - 1;
    aws_error err;
    aws_error_clear(&err);
    s->ctx->counters.s3_requests++;
    int rc = s->ctx->objects->ops->mpu_complete(s->ctx->objects, s->key, s->upload_id, s->parts,
                                                (size_t)parts, &err);
    if (rc != 0) {
        s->ctx->counters.s3_errors++;
        mark_failed(s, "CompleteMultipartUpload failed", &err);
        return -EIO;
    }
    free(s->upload_id);
    s->upload_id = NULL;
    return 0;
}

int write_stream_fail(write_stream *s, const char *why)
{
    if (s->finished)
        return -EIO;
    s->finished = 1;
    mark_failed(s, why, NULL);
    return fail_finish(s);
}

int write_stream_finish(write_stream *s)
{
    if (s->finished)
        return -EIO;
    s->finished = 1;
    if (has_failed(s))
        return fail_finish(s);
    if (s->encrypt) {
        /* The final block always fits: buffers carry 16 spare bytes. A missing buffer means nothing
         * was appended yet. */
        if (!s->buf && new_part_buffer(s) != 0)
            return fail_finish(s);
        size_t produced = 0;
        if (cbc_encryptor_final(s->enc, s->buf + s->buf_len, &produced) != CSE_OK) {
            mark_failed(s, "encryption failed", NULL);
            return fail_finish(s);
        }
        s->buf_len += produced;
    }
    int parts_total = s->part_number;
    if (!s->upload_id) {
        if (put_single(s) != 0)
            return fail_finish(s);
        parts_total = 1;
    } else {
        if (s->disk_len + s->buf_len > 0 && dispatch_part(s) != 0)
            return fail_finish(s);
        parts_total = s->part_number - 1;
        if (wait_in_flight(s) != 0 || complete_upload(s) != 0)
            return fail_finish(s);
    }
    drop_part_buffer(s);
    double secs = seconds_since(&s->started);
    log_info("upload %s completed: %" PRIu64 " bytes (%" PRIu64 " stored), %d part%s, %.2f s, %.1f MB/s",
             s->key, s->plain_len, s->bytes_sent, parts_total, parts_total == 1 ? "" : "s", secs,
             secs > 0 ? (double)s->plain_len / 1e6 / secs : 0.0);
    s->ctx->counters.uploads_completed++;
    return 0;
}

/* Bytes [off, off+len) of the current part, from its staged file and/or the buffer. */
static int read_part(write_stream *s, uint64_t off, uint8_t *out, size_t len)
{
    while (len > 0) {
        if (off < s->disk_len) {
            size_t n = s->disk_len - off < len ? (size_t)(s->disk_len - off) : len;
            ssize_t got = pread(s->disk_fd, out, n, (off_t)off);
            if (got <= 0)
                return -EIO;
            off += (uint64_t)got;
            out += got;
            len -= (size_t)got;
        } else {
            memcpy(out, s->buf + (off - s->disk_len), len);
            return 0;
        }
    }
    return 0;
}

int write_stream_recover(write_stream *s, int (*sink)(void *arg, uint64_t offset, const uint8_t *data,
                                                      size_t len),
                         void *arg)
{
    if (s->upload_id || s->finished)
        return -EIO;
    uint64_t stored = s->disk_len + s->buf_len;
    if (stored == 0 && !s->encrypt)
        return 0;
    enum { CHUNK = 1024 * 1024 };
    uint8_t *chunk = malloc(CHUNK);
    cbc_decryptor *dec = NULL;
    if (!chunk || (s->encrypt && cbc_decryptor_new(s->data_key->bytes, &dec) != CSE_OK)) {
        free(chunk);
        return -ENOMEM;
    }
    uint8_t prev[CSE_AES_BLOCK];
    memcpy(prev, s->iv, sizeof prev);
    int rc = 0;
    for (uint64_t off = 0; rc == 0 && off < stored; off += CHUNK) {
        size_t n = stored - off < CHUNK ? (size_t)(stored - off) : CHUNK;
        rc = read_part(s, off, chunk, n);
        if (rc == 0 && s->encrypt) {
            uint8_t next_prev[CSE_AES_BLOCK];
            memcpy(next_prev, chunk + n - CSE_AES_BLOCK, CSE_AES_BLOCK);
            if (cbc_decrypt_blocks(dec, prev, chunk, n, chunk) != CSE_OK)
                rc = -EIO;
            memcpy(prev, next_prev, sizeof prev);
        }
        if (rc == 0)
            rc = sink(arg, off, chunk, n);
    }
    secure_wipe(chunk, CHUNK);
    free(chunk);
    cbc_decryptor_free(dec);
    /* The cipher holds back the last 0..15 plaintext bytes: they are the tail of what was appended. */
    size_t held = (size_t)(s->plain_len - (s->encrypt ? stored : s->plain_len));
    if (rc == 0 && held > 0)
        rc = sink(arg, stored, s->recent_plain + CSE_AES_BLOCK - held, held);
    return rc;
}

void write_stream_free(write_stream *s)
{
    if (!s)
        return;
    if (!s->finished) {
        wait_in_flight(s);
        if (s->upload_id)
            s->ctx->counters.uploads_failed++;
        abort_upload(s);
    }
    drop_part_buffer(s);
    cbc_encryptor_free(s->enc);
    secure_buf_free(s->data_key);
    secure_wipe(s->recent_plain, sizeof s->recent_plain);
    kv_list_free(&s->extra_metadata);
    free(s->parts);
    free(s->part_reserved);
    free(s->part_fd);
    free(s->upload_id);
    free(s->key);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
