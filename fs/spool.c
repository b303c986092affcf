/* Encrypted spool file (see spool.h for the layout). All I/O happens here; crypto/spool_cipher.c seals
 * and opens single records. Plaintext only ever sits in the caller's buffers and in one record-sized
 * scratch buffer that is wiped before every return; the I/O buffers hold ciphertext only. */
#include "spool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include "fileutil.h"
#include "secure_mem.h"
#include "spool_cipher.h"

#define REC ((uint64_t)SPOOL_RECORD_SIZE)
#define HDR ((uint64_t)SPOOL_RECORD_HEADER)
#define SLOT (REC + HDR)
/* Records per pread/pwrite: about 256 KiB of I/O per system call, at least one record. */
#define IO_TARGET (256 * 1024)
#define BATCH (REC >= IO_TARGET ? 1 : IO_TARGET / REC)

struct spool {
    int fd;
    spool_cipher *cipher;
    pthread_mutex_t lock;
    uint64_t size;           /* logical size */
    uint64_t disk_size;      /* file length we produced and accounted in counters */
    fs_counters *counters;
};

/* Per-call buffers: io holds up to BATCH slots of ciphertext; plain one record of plaintext scratch,
 * allocated only when a record has to be decrypted to be merged or cut. */
typedef struct {
    uint8_t *io;
    uint8_t *plain;
    int plain_used;
} buffers;

static int buffers_init(buffers *b, uint64_t records)
{
    b->plain = NULL;
    b->plain_used = 0;
    b->io = malloc((size_t)((records < BATCH ? records : BATCH) * SLOT));
    return b->io ? 0 : -ENOMEM;
}

static uint8_t *buffers_plain(buffers *b)
{
    if (!b->plain)
        b->plain = malloc(REC);
    if (b->plain)
        b->plain_used = 1;
    return b->plain;
}

static void buffers_free(buffers *b)
{
    if (b->plain) {
        if (b->plain_used)
            secure_wipe(b->plain, REC);
        free(b->plain);
    }
    free(b->io);
}

int spool_new(const char *dir, fs_counters *counters, spool **out)
{
    *out = NULL;
    spool *sp = calloc(1, sizeof *sp);
    if (!sp)
        return -ENOMEM;
    sp->fd = open_unlinked(dir, "s3csefs-spool");
    if (sp->fd < 0) {
        int rc = sp->fd;
        free(sp);
        return rc;
    }
    if (spool_cipher_new(&sp->cipher) != CSE_OK) {
        close(sp->fd);
        free(sp);
        return -ENOMEM;
    }
    pthread_mutex_init(&sp->lock, NULL);
    sp->counters = counters;
    *out = sp;
    return 0;
}

/* pread of len bytes at offset; what lies past the end of the file reads as zeros (never written). */
static int read_zero_filled(int fd, uint8_t *buf, size_t len, uint64_t offset)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(offset + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    memset(buf + got, 0, len - got);
    return 0;
}

/* The plaintext length of the record whose slot starts at slot: 0 for a hole. -EIO for a header
 * this spool cannot have written. */
static int slot_length(const uint8_t *slot, size_t *len)
{
    if (spool_record_length(slot, len) != CSE_OK || *len > REC)
        return -EIO;
    return 0;
}

/* Decrypts record `index` (its slot read into slot, declared length len > 0) into out (len bytes). */
static int open_slot(spool *sp, uint64_t index, const uint8_t *slot, size_t len, uint8_t *out)
{
    return spool_cipher_open(sp->cipher, index, slot, slot + HDR, len, out) == CSE_OK ? 0 : -EIO;
}

static void account_disk(spool *sp, uint64_t end)
{
    if (end > sp->disk_size) {
        if (sp->counters)
            sp->counters->spool_bytes += end - sp->disk_size;
        sp->disk_size = end;
    }
}

/* Seals the new contents of record k into slot: the write covers [a, b) of the record with src. A
 * record only partly covered keeps its other bytes, so the old one is read (into slot itself) and
 * decrypted first, unless the write covers everything it held. *len_out = the new record length. */
static int seal_record(spool *sp, buffers *bufs, uint64_t k, size_t a, size_t b, const uint8_t *src,
                       uint8_t *slot, size_t *len_out)
{
    size_t old_len = 0;
    if (a > 0 || b < REC) {
        int rc = read_zero_filled(sp->fd, slot, (size_t)SLOT, k * SLOT);
        if (rc == 0)
            rc = slot_length(slot, &old_len);
        if (rc != 0)
            return rc;
    }
    size_t new_len = old_len > b ? old_len : b;
    const uint8_t *in = src;            /* the write alone is the record: [0, b) == src */
    if (a > 0 || old_len > b) {
        uint8_t *plain = buffers_plain(bufs);
        if (!plain)
            return -ENOMEM;
        if (old_len > 0) {
            int rc = open_slot(sp, k, slot, old_len, plain);
            if (rc != 0)
                return rc;
        }
        memset(plain + old_len, 0, new_len - old_len);
        memcpy(plain + a, src, b - a);
        in = plain;
    }
    if (spool_cipher_seal(sp->cipher, k, in, new_len, slot, slot + HDR) != CSE_OK)
        return -EIO;
    *len_out = new_len;
    return 0;
}

/* Caller holds the lock. */
static int write_locked(spool *sp, uint64_t offset, const uint8_t *data, size_t len)
{
    uint64_t end = offset + len;
    uint64_t first = offset / REC, last = (end - 1) / REC;
    buffers bufs;
    int rc = buffers_init(&bufs, last - first + 1);
    for (uint64_t i = first; rc == 0 && i <= last; i += BATCH) {
        uint64_t j = last - i < BATCH ? last : i + BATCH - 1;
        size_t last_len = 0;
        for (uint64_t k = i; rc == 0 && k <= j; k++) {
            uint64_t rs = k * REC;
            size_t a = (size_t)((offset > rs ? offset : rs) - rs);
            size_t b = (size_t)((end < rs + REC ? end : rs + REC) - rs);
            uint8_t *slot = bufs.io + (k - i) * SLOT;
            rc = seal_record(sp, &bufs, k, a, b, data + (rs + a - offset), slot, &last_len);
            /* Only the write's last record can be short; never send uninitialised heap to the disk. */
            if (rc == 0 && k < j && last_len < REC)
                memset(slot + HDR + last_len, 0, (size_t)(REC - last_len));
        }
        if (rc != 0)
            break;
        /* The last record's unused tail is not written, so a short record costs only its bytes. */
        uint64_t wlen = (j - i) * SLOT + HDR + last_len;
        rc = write_fully(sp->fd, bufs.io, (size_t)wlen, i * SLOT);
        if (rc == 0) {
            account_disk(sp, i * SLOT + wlen);
            /* Per batch, so that after a failed write no record holds data past the logical size. */
            uint64_t done = end < (j + 1) * REC ? end : (j + 1) * REC;
            if (done > sp->size)
                sp->size = done;
        }
    }
    buffers_free(&bufs);
    return rc;
}

int spool_write(spool *sp, uint64_t offset, const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    pthread_mutex_lock(&sp->lock);
    int rc = write_locked(sp, offset, data, len);
    spool_cipher_release(sp->cipher);      /* the expanded key lives only for the call */
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

/* Caller holds the lock; [offset, offset + len) lies within the logical size and len > 0. */
static int read_locked(spool *sp, uint64_t offset, uint8_t *out, size_t len)
{
    uint64_t end = offset + len;
    uint64_t first = offset / REC, last = (end - 1) / REC;
    buffers bufs;
    int rc = buffers_init(&bufs, last - first + 1);
    for (uint64_t i = first; rc == 0 && i <= last; i += BATCH) {
        uint64_t j = last - i < BATCH ? last : i + BATCH - 1;
        rc = read_zero_filled(sp->fd, bufs.io, (size_t)((j - i + 1) * SLOT), i * SLOT);
        for (uint64_t k = i; rc == 0 && k <= j; k++) {
            uint64_t rs = k * REC;
            size_t a = (size_t)((offset > rs ? offset : rs) - rs);
            size_t b = (size_t)((end < rs + REC ? end : rs + REC) - rs);
            uint8_t *dst = out + (rs + a - offset);
            const uint8_t *slot = bufs.io + (k - i) * SLOT;
            size_t rec_len;
            rc = slot_length(slot, &rec_len);
            if (rc != 0)
                break;
            if (rec_len == 0) {
                memset(dst, 0, b - a);
            } else if (a == 0 && b >= rec_len) {
                /* The whole record is wanted: decrypt straight into the caller's buffer. */
                rc = open_slot(sp, k, slot, rec_len, dst);
                memset(dst + rec_len, 0, b - rec_len);
            } else {
                /* GCM verifies whole records: decrypt all of it, copy the part asked for. */
                uint8_t *plain = buffers_plain(&bufs);
                if (!plain) {
                    rc = -ENOMEM;
                    break;
                }
                rc = open_slot(sp, k, slot, rec_len, plain);
                size_t stop = b < rec_len ? b : rec_len;
                if (a < stop)
                    memcpy(dst, plain + a, stop - a);
                else
                    stop = a;
                memset(dst + (stop - a), 0, b - stop);
            }
        }
    }
    buffers_free(&bufs);
    return rc;
}

ssize_t spool_read(spool *sp, uint64_t offset, uint8_t *out, size_t len)
{
    pthread_mutex_lock(&sp->lock);
    if (offset >= sp->size || len == 0) {
        pthread_mutex_unlock(&sp->lock);
        return 0;
    }
    if (len > sp->size - offset)
        len = (size_t)(sp->size - offset);
    int rc = read_locked(sp, offset, out, len);
    spool_cipher_release(sp->cipher);
    pthread_mutex_unlock(&sp->lock);
    return rc != 0 ? rc : (ssize_t)len;
}

/* Caller holds the lock; size < sp->size. The record holding the new end is re-sealed without the
 * bytes past it (so they read as zeros if the file grows again) and the file is cut after it. */
static int shrink_locked(spool *sp, uint64_t size)
{
    uint64_t k = size / REC;
    size_t within = (size_t)(size % REC);
    uint64_t file_end = k * SLOT;
    int rc = 0;
    if (within > 0) {
        buffers bufs;
        rc = buffers_init(&bufs, 1);
        size_t rec_len = 0;
        if (rc == 0)
            rc = read_zero_filled(sp->fd, bufs.io, (size_t)SLOT, k * SLOT);
        if (rc == 0)
            rc = slot_length(bufs.io, &rec_len);
        if (rc == 0 && rec_len > within) {
            uint8_t *plain = buffers_plain(&bufs);
            rc = plain ? open_slot(sp, k, bufs.io, rec_len, plain) : -ENOMEM;
            if (rc == 0 && spool_cipher_seal(sp->cipher, k, plain, within, bufs.io, bufs.io + HDR) != CSE_OK)
                rc = -EIO;
            if (rc == 0)
                rc = write_fully(sp->fd, bufs.io, (size_t)(HDR + within), k * SLOT);
            rec_len = within;
        }
        if (rc == 0 && rec_len > 0)
            file_end += HDR + rec_len;
        buffers_free(&bufs);
    }
    if (rc == 0 && file_end < sp->disk_size) {
        if (ftruncate(sp->fd, (off_t)file_end) != 0)
            return -errno;
        if (sp->counters)
            sp->counters->spool_bytes -= sp->disk_size - file_end;
        sp->disk_size = file_end;
    }
    return rc;
}

int spool_truncate(spool *sp, uint64_t size)
{
    pthread_mutex_lock(&sp->lock);
    int rc = size < sp->size ? shrink_locked(sp, size) : 0;
    spool_cipher_release(sp->cipher);
    if (rc == 0)
        sp->size = size;
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

uint64_t spool_size(const spool *sp)
{
    return sp->size;
}

int spool_fd_for_tests(const spool *sp)
{
    return sp->fd;
}

void spool_free(spool *sp)
{
    if (!sp)
        return;
    if (sp->counters)
        sp->counters->spool_bytes -= sp->disk_size;
    close(sp->fd);
    spool_cipher_free(sp->cipher);
    pthread_mutex_destroy(&sp->lock);
    free(sp);
}
