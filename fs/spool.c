/* Encrypted spool file (see spool.h). Writes are widened to whole 16-byte chunks by reading back and
 * decrypting the partial chunks at both ends, so every chunk on disk is either all zeros or complete
 * ciphertext. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include "secure_mem.h"
#include "spool_cipher.h"

#define CHUNK 16
#define IO_WINDOW (256 * 1024)

struct spool {
    int fd;
    spool_cipher *cipher;
    pthread_mutex_t lock;
    uint64_t size;           /* logical size */
    uint64_t disk_size;      /* bytes of file (rounded to chunks) we accounted in counters */
    fs_counters *counters;
};

static int open_unlinked(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[4200];
    snprintf(path, sizeof path, "%s/s3csefs-spool-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    return fd;
}

int spool_new(const char *dir, fs_counters *counters, spool **out)
{
    *out = NULL;
    spool *sp = calloc(1, sizeof *sp);
    if (!sp)
        return -ENOMEM;
    sp->fd = open_unlinked(dir);
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

static int is_zero_chunk(const uint8_t *p)
{
    static const uint8_t zero[CHUNK];
    return memcmp(p, zero, CHUNK) == 0;
}

/* Reads [offset, offset+len) of the file (both chunk aligned) and decrypts it; zero chunks stay zero. */
static int read_plain_aligned(spool *sp, uint64_t offset, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(sp->fd, buf + got, len - got, (off_t)(offset + got));
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
    size_t i = 0;
    while (i < len) {
        if (is_zero_chunk(buf + i)) {
            i += CHUNK;
            continue;
        }
        size_t run = i;
        while (run < len && !is_zero_chunk(buf + run))
            run += CHUNK;
        if (spool_cipher_apply(sp->cipher, offset + i, buf + i, run - i, buf + i) != CSE_OK)
            return -EIO;
        i = run;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len, uint64_t offset)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

static void account_disk(spool *sp, uint64_t end)
{
    if (end > sp->disk_size) {
        if (sp->counters)
            sp->counters->spool_bytes += end - sp->disk_size;
        sp->disk_size = end;
    }
}

/* Caller holds the lock. */
static int write_locked(spool *sp, uint64_t offset, const uint8_t *data, size_t len)
{
    uint8_t *buf = malloc(IO_WINDOW);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    uint64_t end = offset + len;
    uint64_t pos = offset & ~(uint64_t)(CHUNK - 1);
    while (rc == 0 && pos < end) {
        uint64_t win_end = pos + IO_WINDOW;
        uint64_t aligned_end = (end + CHUNK - 1) & ~(uint64_t)(CHUNK - 1);
        if (win_end > aligned_end)
            win_end = aligned_end;
        size_t win = (size_t)(win_end - pos);
        /* Partial chunks at the window's edges keep their other bytes. */
        if (offset > pos)
            rc = read_plain_aligned(sp, pos, buf, CHUNK);
        if (rc == 0 && end < win_end)
            rc = read_plain_aligned(sp, win_end - CHUNK, buf + win - CHUNK, CHUNK);
        if (rc != 0)
            break;
        uint64_t copy_from = offset > pos ? offset : pos;
        uint64_t copy_to = end < win_end ? end : win_end;
        memcpy(buf + (copy_from - pos), data + (copy_from - offset), (size_t)(copy_to - copy_from));
        if (spool_cipher_apply(sp->cipher, pos, buf, win, buf) != CSE_OK)
            rc = -EIO;
        if (rc == 0)
            rc = write_all(sp->fd, buf, win, pos);
        if (rc == 0)
            account_disk(sp, win_end);
        pos = win_end;
    }
    secure_wipe(buf, IO_WINDOW);
    free(buf);
    if (rc == 0 && end > sp->size)
        sp->size = end;
    return rc;
}

int spool_write(spool *sp, uint64_t offset, const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    pthread_mutex_lock(&sp->lock);
    int rc = write_locked(sp, offset, data, len);
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

ssize_t spool_read(spool *sp, uint64_t offset, uint8_t *out, size_t len)
{
    pthread_mutex_lock(&sp->lock);
    if (offset >= sp->size) {
        pthread_mutex_unlock(&sp->lock);
        return 0;
    }
    if (len > sp->size - offset)
        len = (size_t)(sp->size - offset);
    uint8_t *buf = malloc(IO_WINDOW);
    if (!buf) {
        pthread_mutex_unlock(&sp->lock);
        return -ENOMEM;
    }
    int rc = 0;
    size_t done = 0;
    while (rc == 0 && done < len) {
        uint64_t pos = (offset + done) & ~(uint64_t)(CHUNK - 1);
        size_t skip = (size_t)(offset + done - pos);
        size_t want = len - done + skip;
        size_t win = want > IO_WINDOW ? IO_WINDOW : (want + CHUNK - 1) & ~(size_t)(CHUNK - 1);
        rc = read_plain_aligned(sp, pos, buf, win);
        if (rc != 0)
            break;
        size_t n = win - skip < len - done ? win - skip : len - done;
        memcpy(out + done, buf + skip, n);
        done += n;
    }
    secure_wipe(buf, IO_WINDOW);
    free(buf);
    pthread_mutex_unlock(&sp->lock);
    return rc != 0 ? rc : (ssize_t)done;
}

int spool_truncate(spool *sp, uint64_t size)
{
    pthread_mutex_lock(&sp->lock);
    int rc = 0;
    if (size < sp->size) {
        uint64_t chunk_start = size & ~(uint64_t)(CHUNK - 1);
        if (size > chunk_start) {
            /* Bytes past the new end inside the last chunk must read as zeros if the file grows again. */
            uint8_t chunk[CHUNK];
            rc = read_plain_aligned(sp, chunk_start, chunk, CHUNK);
            if (rc == 0) {
                memset(chunk + (size - chunk_start), 0, CHUNK - (size_t)(size - chunk_start));
                if (spool_cipher_apply(sp->cipher, chunk_start, chunk, CHUNK, chunk) != CSE_OK)
                    rc = -EIO;
            }
            if (rc == 0)
                rc = write_all(sp->fd, chunk, CHUNK, chunk_start);
            chunk_start += CHUNK;
        }
        if (rc == 0 && ftruncate(sp->fd, (off_t)chunk_start) != 0)
            rc = -errno;
        if (rc == 0 && chunk_start < sp->disk_size) {
            if (sp->counters)
                sp->counters->spool_bytes -= sp->disk_size - chunk_start;
            sp->disk_size = chunk_start;
        }
    }
    if (rc == 0)
        sp->size = size;
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

uint64_t spool_size(const spool *sp)
{
    return sp->size;
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
