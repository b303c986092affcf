/* Locked, dump-excluded, wiped-on-free memory for key material. Each buffer gets its own anonymous
 * mapping: page-aligned (mlock and madvise work on whole pages) and never shared with ordinary heap
 * data that could be swapped or dumped. */
#include "secure_mem.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    secure_buf pub;         /* first, so the public pointer is the record pointer */
    void *mapping;
    size_t mapping_len;
} secure_buf_record;

static size_t round_to_pages(size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t page_size = page > 0 ? (size_t)page : 4096;
    if (len == 0)
        len = 1;
    if (len > SIZE_MAX - page_size)
        return 0;
    return (len + page_size - 1) / page_size * page_size;
}

secure_buf *secure_buf_new(size_t len)
{
    size_t mapping_len = round_to_pages(len);
    if (mapping_len == 0)
        return NULL;
    secure_buf_record *rec = calloc(1, sizeof(*rec));
    if (rec == NULL)
        return NULL;
    void *mapping = mmap(NULL, mapping_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) {
        free(rec);
        return NULL;
    }
    /* Both are best effort: under a low RLIMIT_MEMLOCK the key still works, only `locked` says 0. */
    rec->pub.locked = mlock(mapping, mapping_len) == 0;
    (void)madvise(mapping, mapping_len, MADV_DONTDUMP);
    rec->mapping = mapping;
    rec->mapping_len = mapping_len;
    rec->pub.bytes = mapping;
    rec->pub.len = len;
    return &rec->pub;
}

secure_buf *secure_buf_from(const uint8_t *bytes, size_t len)
{
    secure_buf *buf = secure_buf_new(len);
    if (buf != NULL && len > 0)
        memcpy(buf->bytes, bytes, len);
    return buf;
}

void secure_buf_free(secure_buf *buf)
{
    if (buf == NULL)
        return;
    secure_buf_record *rec = (secure_buf_record *)buf;
    OPENSSL_cleanse(rec->mapping, rec->mapping_len);
    if (rec->pub.locked)
        (void)munlock(rec->mapping, rec->mapping_len);
    (void)munmap(rec->mapping, rec->mapping_len);
    OPENSSL_cleanse(rec, sizeof(*rec));
    free(rec);
}

void secure_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0)
        OPENSSL_cleanse(p, len);
}
