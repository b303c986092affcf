/* The in-memory object_client: a thread-safe stand-in for an S3 bucket that the write and read pipelines
 * are unit-tested on. It reproduces the S3 behaviours the pipelines depend on: ETags (MD5, and the
 * "md5-of-md5s-N" multipart form), ranged GETs, multipart uploads that stay invisible until completed
 * and are checked at completion (EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload),
 * ListObjectsV2 pagination with delimiters, CopyObject directives, and the 2 KB user-metadata limit. */
#include "object_client.h"
#include "objc_memory.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crc32c.h"

#define S3_MAX_PART_NUMBER 10000
#define S3_MAX_SINGLE_OBJECT ((uint64_t)5 * 1024 * 1024 * 1024)
#define S3_MAX_USER_METADATA 2048
#define S3_MAX_LIST_KEYS 1000
#define S3_DELETE_BATCH 1000

/* An immutable body buffer shared by reference between parts, objects and copies: completing a
 * multipart upload or copying an object moves pointers, not bytes, and readers copy out of a body
 * without holding the store's lock. */
typedef struct {
    atomic_size_t refs;
    size_t len;
    uint8_t bytes[];
} shared_bytes;

typedef struct {
    char *key;
    shared_bytes **segments;   /* the body, in order: one for PutObject, one per part after completion */
    size_t segment_count;
    uint64_t len;
    kv_list metadata;
    char etag[80];
    time_t last_modified;
} mem_object;

typedef struct {
    int number;
    shared_bytes *body;
    char etag[80];
    char checksum_crc32c[16];
    uint8_t md5[16];
} mem_part;

typedef struct {
    char *key;
    char *upload_id;
    time_t initiated;
    kv_list metadata;
    mem_part *parts;        /* kept sorted by part number */
    size_t part_count;
} mem_upload;

typedef struct {
    object_client base;
    pthread_mutex_t lock;
    mem_object *objects;    /* sorted by key in byte order, like S3 lists them */
    size_t object_count, object_cap;
    mem_upload *uploads;
    size_t upload_count, upload_cap;
    uint64_t next_upload_serial;
    size_t min_part_size;
    objc_memory_counts counts;
} memory_client;

static const objc_ops memory_ops;

static memory_client *as_memory(object_client *c)
{
    return c && c->ops == &memory_ops ? (memory_client *)c : NULL;
}

/* Fills the error as the S3 client would for the same service answer. */
static int fail(aws_error *err, aws_err_kind kind, int http_status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(aws_error *err, aws_err_kind kind, int http_status, const char *code, const char *fmt, ...)
{
    if (err) {
        memset(err, 0, sizeof *err);
        err->kind = kind;
        err->http_status = http_status;
        snprintf(err->code, sizeof err->code, "%s", code ? code : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        snprintf(err->request_id, sizeof err->request_id, "memory");
    }
    return (int)kind;
}

static int fail_no_memory(aws_error *err)
{
    return fail(err, AWS_ERR_NO_MEMORY, 0, "", "out of memory in the memory object client");
}

static void clear_error(aws_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

/* Caller holds the lock: one failure per failing call. */
static int counted_failure(memory_client *m, int rc)
{
    if (rc != 0)
        m->counts.failed++;
    return rc;
}

static void md5_of(const uint8_t *data, size_t len, uint8_t digest[16])
{
    unsigned int out_len = 16;
    EVP_Digest(data, len, digest, &out_len, EVP_md5(), NULL);
}

static void hex_of(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ETags as S3 sends them (ETag header, <ETag> in XML), quotes included; the S3 client passes them on
 * unchanged, so the double does too: "<hex md5>" or "<hex>-<parts>". */
static void quoted_etag(const uint8_t digest[16], size_t part_count, char etag[80])
{
    char hex[33];
    hex_of(digest, 16, hex);
    if (part_count)
        snprintf(etag, 80, "\"%s-%zu\"", hex, part_count);
    else
        snprintf(etag, 80, "\"%s\"", hex);
}

static shared_bytes *bytes_new(const uint8_t *src, size_t len)
{
    shared_bytes *b = malloc(sizeof *b + len);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len)
        memcpy(b->bytes, src, len);
    return b;
}

static shared_bytes *bytes_ref(shared_bytes *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

static void bytes_unref(shared_bytes *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

/* A counted reference to an object's whole body, taken under the lock and read after it. */
typedef struct {
    shared_bytes **segments;
    size_t count;
    uint64_t len;
} body_ref;

/* Caller holds the lock. */
static int body_take(const mem_object *o, body_ref *out)
{
    out->segments = malloc((o->segment_count ? o->segment_count : 1) * sizeof *out->segments);
    if (!out->segments)
        return -1;
    for (size_t i = 0; i < o->segment_count; i++)
        out->segments[i] = bytes_ref(o->segments[i]);
    out->count = o->segment_count;
    out->len = o->len;
    return 0;
}

static void body_drop(body_ref *b)
{
    for (size_t i = 0; i < b->count; i++)
        bytes_unref(b->segments[i]);
    free(b->segments);
    memset(b, 0, sizeof *b);
}

/* Copies body bytes [offset, offset+len) into buf; the range must lie inside the body. */
static void body_read(const body_ref *b, uint64_t offset, size_t len, uint8_t *buf)
{
    uint64_t start = 0;
    for (size_t i = 0; i < b->count && len; i++) {
        const shared_bytes *seg = b->segments[i];
        uint64_t end = start + seg->len;
        if (offset < end) {
            size_t at = (size_t)(offset - start);
            size_t n = seg->len - at < len ? seg->len - at : len;
            memcpy(buf, seg->bytes + at, n);
            buf += n;
            offset += n;
            len -= n;
        }
        start = end;
    }
}

static void body_etag(const body_ref *b, char etag[80])
{
    uint8_t digest[16];
    unsigned int out_len = 16;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1;
    for (size_t i = 0; ok && i < b->count; i++)
        ok = EVP_DigestUpdate(ctx, b->segments[i]->bytes, b->segments[i]->len) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, digest, &out_len) == 1;
    EVP_MD_CTX_free(ctx);
    if (ok)
        quoted_etag(digest, 0, etag);
    else
        snprintf(etag, 80, "\"md5-unavailable\"");
}

/* S3 stores user metadata names lower-cased; enforces its 2 KB limit on names plus values. */
static int copy_metadata_lowercase(kv_list *dst, const kv_list *src, aws_error *err)
{
    kv_list_init(dst);
    if (!src)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < src->count; i++) {
        const kv_pair *p = &src->items[i];
        if (!p->name || !p->value || !*p->name) {
            kv_list_free(dst);
            return fail(err, AWS_ERR_ARGUMENT, 0, "", "metadata entry without a name or value");
        }
        total += strlen(p->name) + strlen(p->value);
        char *lower = strdup(p->name);
        if (!lower) {
            kv_list_free(dst);
            return fail_no_memory(err);
        }
        for (char *s = lower; *s; s++)
            *s = (char)tolower((unsigned char)*s);
        int rc = kv_list_set(dst, lower, p->value);
        free(lower);
        if (rc != 0) {
            kv_list_free(dst);
            return fail_no_memory(err);
        }
    }
    if (total > S3_MAX_USER_METADATA) {
        kv_list_free(dst);
        return fail(err, AWS_ERR_SERVICE, 400, "MetadataTooLarge",
                    "Your metadata headers exceed the maximum allowed metadata size (%zu > %d)", total,
                    S3_MAX_USER_METADATA);
    }
    return 0;
}

static int check_key(const char *key, aws_error *err)
{
    if (!key || !*key || strlen(key) > 1024)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "object key empty or longer than 1024 bytes");
    return 0;
}

/* ---- the sorted object table (caller holds the lock) ---- */

/* Index of the first object whose key is >= key (S3 orders keys by their UTF-8 bytes; strcmp compares
 * as unsigned char, which is exactly that). */
static size_t lower_bound(const memory_client *m, const char *key)
{
    size_t lo = 0, hi = m->object_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->objects[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static mem_object *find_object(memory_client *m, const char *key)
{
    size_t i = lower_bound(m, key);
    return i < m->object_count && strcmp(m->objects[i].key, key) == 0 ? &m->objects[i] : NULL;
}

static void object_free_fields(mem_object *o)
{
    free(o->key);
    for (size_t i = 0; i < o->segment_count; i++)
        bytes_unref(o->segments[i]);
    free(o->segments);
    kv_list_free(&o->metadata);
}

/* Stores a fully built object (takes ownership of its fields), replacing any previous version: this is
 * the single point where a new object becomes visible, so readers see the old or the new, never a mix. */
static int store_object(memory_client *m, mem_object *o, aws_error *err)
{
    size_t i = lower_bound(m, o->key);
    if (i < m->object_count && strcmp(m->objects[i].key, o->key) == 0) {
        object_free_fields(&m->objects[i]);
        m->objects[i] = *o;
        return 0;
    }
    if (m->object_count == m->object_cap) {
        size_t cap = m->object_cap ? m->object_cap * 2 : 64;
        mem_object *grown = realloc(m->objects, cap * sizeof *grown);
        if (!grown)
            return fail_no_memory(err);
        m->objects = grown;
        m->object_cap = cap;
    }
    memmove(&m->objects[i + 1], &m->objects[i], (m->object_count - i) * sizeof *m->objects);
    m->objects[i] = *o;
    m->object_count++;
    return 0;
}

static void remove_object_at(memory_client *m, size_t i)
{
    object_free_fields(&m->objects[i]);
    memmove(&m->objects[i], &m->objects[i + 1], (m->object_count - i - 1) * sizeof *m->objects);
    m->object_count--;
}

/* ---- operations ---- */

static int mem_head(object_client *c, const char *key, objc_head *out, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (!out)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "head: no output");
    memset(out, 0, sizeof *out);
    kv_list_init(&out->metadata);
    if (check_key(key, err))
        return AWS_ERR_ARGUMENT;
    pthread_mutex_lock(&m->lock);
    m->counts.head++;
    int rc = 0;
    mem_object *o = find_object(m, key);
    if (!o) {
        /* HEAD has no body, so S3 gives a bare 404 with no error code of its own. */
        rc = fail(err, AWS_ERR_NOT_FOUND, 404, "NotFound", "Not Found");
    } else if (kv_list_copy(&out->metadata, &o->metadata) != 0) {
        kv_list_free(&out->metadata);
        rc = fail_no_memory(err);
    } else {
        out->size = o->len;
        snprintf(out->etag, sizeof out->etag, "%s", o->etag);
        out->last_modified = o->last_modified;
        clear_error(err);
    }
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_get_range(object_client *c, const char *key, uint64_t offset, size_t len, uint8_t *buf,
                         size_t *got, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (!got || (len && !buf))
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "get_range: no buffer");
    *got = 0;
    if (check_key(key, err))
        return AWS_ERR_ARGUMENT;
    pthread_mutex_lock(&m->lock);
    m->counts.get++;
    int rc = 0;
    size_t n = 0;
    body_ref body = { 0 };
    mem_object *o = find_object(m, key);
    if (!o) {
        rc = fail(err, AWS_ERR_NOT_FOUND, 404, "NoSuchKey", "The specified key does not exist.");
    } else if (offset < o->len) {
        n = o->len - offset < len ? (size_t)(o->len - offset) : len;
        if (body_take(o, &body) != 0)
            rc = fail_no_memory(err);
        else
            m->counts.bytes_got += n;
    }
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        return rc;
    /* The body is immutable and referenced: copy it out without blocking other callers. */
    if (n)
        body_read(&body, offset, n, buf);
    body_drop(&body);
    *got = n;
    clear_error(err);
    return 0;
}

static int mem_put(object_client *c, const char *key, const kv_list *metadata, const uint8_t *body, size_t len,
                   aws_error *err)
{
    memory_client *m = as_memory(c);
    if (check_key(key, err))
        return AWS_ERR_ARGUMENT;
    if (len && !body)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "put: no body");
    if (len > S3_MAX_SINGLE_OBJECT)
        return fail(err, AWS_ERR_SERVICE, 400, "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size");
    /* Build the object outside the lock; only the swap into the table is serialised. */
    mem_object o = { 0 };
    int rc = copy_metadata_lowercase(&o.metadata, metadata, err);
    if (rc == 0) {
        o.key = strdup(key);
        o.segments = malloc(sizeof *o.segments);
        if (o.segments && (o.segments[0] = bytes_new(body, len)))
            o.segment_count = 1;
        if (!o.key || !o.segment_count)
            rc = fail_no_memory(err);
    }
    if (rc == 0) {
        o.len = len;
        uint8_t digest[16];
        md5_of(body, len, digest);
        quoted_etag(digest, 0, o.etag);
        o.last_modified = time(NULL);
    }
    pthread_mutex_lock(&m->lock);
    m->counts.put++;
    m->counts.bytes_put += len;
    if (rc == 0)
        rc = store_object(m, &o, err);
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        object_free_fields(&o);
    else
        clear_error(err);
    return rc;
}

/* Caller holds the lock. */
static mem_upload *find_upload(memory_client *m, const char *key, const char *upload_id, size_t *index)
{
    for (size_t i = 0; i < m->upload_count; i++) {
        mem_upload *u = &m->uploads[i];
        if (strcmp(u->upload_id, upload_id) == 0 && strcmp(u->key, key) == 0) {
            if (index)
                *index = i;
            return u;
        }
    }
    return NULL;
}

static void upload_free_fields(mem_upload *u)
{
    free(u->key);
    free(u->upload_id);
    kv_list_free(&u->metadata);
    for (size_t i = 0; i < u->part_count; i++)
        bytes_unref(u->parts[i].body);
    free(u->parts);
}

static void remove_upload_at(memory_client *m, size_t i)
{
    upload_free_fields(&m->uploads[i]);
    memmove(&m->uploads[i], &m->uploads[i + 1], (m->upload_count - i - 1) * sizeof *m->uploads);
    m->upload_count--;
}

static int no_such_upload(aws_error *err)
{
    return fail(err, AWS_ERR_NOT_FOUND, 404, "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have "
                "been aborted or completed.");
}

static int mem_mpu_create(object_client *c, const char *key, const kv_list *metadata, char **upload_id,
                          aws_error *err)
{
    memory_client *m = as_memory(c);
    if (!upload_id)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "mpu_create: no output");
    *upload_id = NULL;
    if (check_key(key, err))
        return AWS_ERR_ARGUMENT;
    mem_upload u = { 0 };
    int rc = copy_metadata_lowercase(&u.metadata, metadata, err);
    uint8_t nonce[8];
    if (rc == 0 && RAND_bytes(nonce, sizeof nonce) != 1)
        rc = fail(err, AWS_ERR_CRYPTO, 0, "", "no random bytes for an upload id");
    if (rc == 0) {
        u.key = strdup(key);
        u.initiated = time(NULL);
        if (!u.key)
            rc = fail_no_memory(err);
    }
    pthread_mutex_lock(&m->lock);
    m->counts.mpu_create++;
    if (rc == 0 && m->upload_count == m->upload_cap) {
        size_t cap = m->upload_cap ? m->upload_cap * 2 : 16;
        mem_upload *grown = realloc(m->uploads, cap * sizeof *grown);
        if (!grown) {
            rc = fail_no_memory(err);
        } else {
            m->uploads = grown;
            m->upload_cap = cap;
        }
    }
    if (rc == 0) {
        /* A serial makes ids unique within the instance; the random part stops a test from passing by
         * guessing an id from another instance. */
        char hex[17];
        hex_of(nonce, sizeof nonce, hex);
        if (asprintf(&u.upload_id, "mem-%llu-%s", (unsigned long long)++m->next_upload_serial, hex) < 0) {
            u.upload_id = NULL;
            rc = fail_no_memory(err);
        }
    }
    if (rc == 0) {
        *upload_id = strdup(u.upload_id);
        if (!*upload_id)
            rc = fail_no_memory(err);
    }
    if (rc == 0)
        m->uploads[m->upload_count++] = u;
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        upload_free_fields(&u);
    else
        clear_error(err);
    return rc;
}

static int mem_mpu_upload_part(object_client *c, const char *key, const char *upload_id, int part_number,
                               const uint8_t *body, size_t len, objc_part *part, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (check_key(key, err))
        return AWS_ERR_ARGUMENT;
    if (!upload_id || !part || (len && !body))
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "mpu_upload_part: missing argument");
    memset(part, 0, sizeof *part);
    if (part_number < 1 || part_number > S3_MAX_PART_NUMBER)
        return fail(err, AWS_ERR_SERVICE, 400, "InvalidArgument",
                    "Part number must be an integer between 1 and 10000, inclusive");
    if (len > S3_MAX_SINGLE_OBJECT)
        return fail(err, AWS_ERR_SERVICE, 400, "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size");
    mem_part p = { .number = part_number };
    p.body = bytes_new(body, len);
    if (!p.body)
        return fail_no_memory(err);
    md5_of(body, len, p.md5);
    quoted_etag(p.md5, 0, p.etag);
    crc32c_base64(crc32c(0, body, len), p.checksum_crc32c);

    pthread_mutex_lock(&m->lock);
    m->counts.mpu_part++;
    m->counts.bytes_put += len;
    int rc = 0;
    mem_upload *u = find_upload(m, key, upload_id, NULL);
    if (!u) {
        rc = no_such_upload(err);
    } else {
        size_t i = 0;
        while (i < u->part_count && u->parts[i].number < part_number)
            i++;
        if (i < u->part_count && u->parts[i].number == part_number) {
            /* Uploading a part number again replaces the earlier part, as in S3. */
            bytes_unref(u->parts[i].body);
            u->parts[i] = p;
        } else {
            mem_part *grown = realloc(u->parts, (u->part_count + 1) * sizeof *grown);
            if (!grown) {
                rc = fail_no_memory(err);
            } else {
                u->parts = grown;
                memmove(&u->parts[i + 1], &u->parts[i], (u->part_count - i) * sizeof *u->parts);
                u->parts[i] = p;
                u->part_count++;
            }
        }
    }
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0) {
        bytes_unref(p.body);
        return rc;
    }
    part->part_number = part_number;
    snprintf(part->etag, sizeof part->etag, "%s", p.etag);
    snprintf(part->checksum_crc32c, sizeof part->checksum_crc32c, "%s", p.checksum_crc32c);
    clear_error(err);
    return 0;
}

static const mem_part *find_part(const mem_upload *u, int number)
{
    for (size_t i = 0; i < u->part_count; i++)
        if (u->parts[i].number == number)
            return &u->parts[i];
    return NULL;
}

/* S3 accepts the ETag with or without its surrounding quotes in the CompleteMultipartUpload body. */
static int etag_matches(const char *given, const char *stored)
{
    size_t g = strlen(given), s = strlen(stored);
    if (g >= 2 && given[0] == '"' && given[g - 1] == '"') {
        given++;
        g -= 2;
    }
    if (s >= 2 && stored[0] == '"' && stored[s - 1] == '"') {
        stored++;
        s -= 2;
    }
    return g == s && strncmp(given, stored, g) == 0;
}

/* Caller holds the lock. Checks the completion request the way S3 does, in S3's order. */
static int validate_completion(const memory_client *m, const mem_upload *u, const objc_part *parts, size_t count,
                               aws_error *err)
{
    if (count == 0)
        return fail(err, AWS_ERR_SERVICE, 400, "MalformedXML",
                    "The XML you provided was not well-formed or did not validate against our published schema");
    for (size_t i = 1; i < count; i++)
        if (parts[i].part_number <= parts[i - 1].part_number)
            return fail(err, AWS_ERR_SERVICE, 400, "InvalidPartOrder",
                        "The list of parts was not in ascending order. Parts must be ordered by part number.");
    for (size_t i = 0; i < count; i++) {
        const mem_part *p = find_part(u, parts[i].part_number);
        if (!p || !etag_matches(parts[i].etag, p->etag) ||
            (parts[i].checksum_crc32c[0] && strcmp(parts[i].checksum_crc32c, p->checksum_crc32c) != 0))
            return fail(err, AWS_ERR_SERVICE, 400, "InvalidPart",
                        "One or more of the specified parts could not be found. The part may not have been "
                        "uploaded, or the specified entity tag may not match the part's entity tag. (part %d)",
                        parts[i].part_number);
    }
    for (size_t i = 0; i + 1 < count; i++) {
        const mem_part *p = find_part(u, parts[i].part_number);
        if (p->body->len < m->min_part_size)
            return fail(err, AWS_ERR_SERVICE, 400, "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed object size. (part %d: %zu bytes)",
                        parts[i].part_number, p->body->len);
    }
    return 0;
}

/* Caller holds the lock and has validated the request. Builds the object from the named parts only
 * (uploaded parts not listed are discarded, as S3 does). */
static int assemble(const mem_upload *u, const objc_part *parts, size_t count, mem_object *o, aws_error *err)
{
    uint8_t *md5s = malloc(16 * count);
    o->segments = malloc(count * sizeof *o->segments);
    o->key = strdup(u->key);
    if (!md5s || !o->segments || !o->key || kv_list_copy(&o->metadata, &u->metadata) != 0) {
        free(md5s);
        return fail_no_memory(err);
    }
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const mem_part *p = find_part(u, parts[i].part_number);
        o->segments[o->segment_count++] = bytes_ref(p->body);
        memcpy(md5s + 16 * i, p->md5, 16);
        total += p->body->len;
    }
    o->len = total;
    /* The multipart ETag: MD5 of the concatenated binary part MD5s, then "-<number of parts>". */
    uint8_t digest[16];
    md5_of(md5s, 16 * count, digest);
    free(md5s);
    quoted_etag(digest, count, o->etag);
    o->last_modified = time(NULL);
    return 0;
}

static int mem_mpu_complete(object_client *c, const char *key, const char *upload_id, const objc_part *parts,
                            size_t count, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (check_key(key, err))
        return AWS_ERR_ARGUMENT;
    if (!upload_id || (count && !parts))
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "mpu_complete: missing argument");
    pthread_mutex_lock(&m->lock);
    m->counts.mpu_complete++;
    size_t index = 0;
    mem_upload *u = find_upload(m, key, upload_id, &index);
    int rc = u ? validate_completion(m, u, parts, count, err) : no_such_upload(err);
    mem_object o = { 0 };
    kv_list_init(&o.metadata);
    if (rc == 0)
        rc = assemble(u, parts, count, &o, err);
    if (rc == 0)
        rc = store_object(m, &o, err);
    if (rc == 0)
        remove_upload_at(m, index);
    else
        object_free_fields(&o);
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc == 0)
        clear_error(err);
    return rc;
}

static int mem_mpu_abort(object_client *c, const char *key, const char *upload_id, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (check_key(key, err))
        return AWS_ERR_ARGUMENT;
    if (!upload_id)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "mpu_abort: no upload id");
    pthread_mutex_lock(&m->lock);
    m->counts.mpu_abort++;
    size_t index = 0;
    int rc = 0;
    if (find_upload(m, key, upload_id, &index))
        remove_upload_at(m, index);
    else
        rc = no_such_upload(err);
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc == 0)
        clear_error(err);
    return rc;
}

static int compare_uploads(const void *a, const void *b)
{
    const objc_upload *x = a, *y = b;
    int by_key = strcmp(x->key, y->key);
    if (by_key)
        return by_key;
    return x->initiated < y->initiated ? -1 : x->initiated > y->initiated;
}

static void free_upload_list(objc_upload *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(list[i].key);
        free(list[i].upload_id);
    }
    free(list);
}

static int mem_mpu_list(object_client *c, const char *prefix, objc_upload **uploads, size_t *count,
                        aws_error *err)
{
    memory_client *m = as_memory(c);
    if (!uploads || !count)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "mpu_list: no output");
    *uploads = NULL;
    *count = 0;
    const char *want = prefix ? prefix : "";
    size_t want_len = strlen(want);
    pthread_mutex_lock(&m->lock);
    m->counts.mpu_list++;
    int rc = 0;
    objc_upload *list = calloc(m->upload_count ? m->upload_count : 1, sizeof *list);
    size_t n = 0;
    if (!list)
        rc = fail_no_memory(err);
    for (size_t i = 0; rc == 0 && i < m->upload_count; i++) {
        const mem_upload *u = &m->uploads[i];
        if (strncmp(u->key, want, want_len) != 0)
            continue;
        list[n].key = strdup(u->key);
        list[n].upload_id = strdup(u->upload_id);
        list[n].initiated = u->initiated;
        n++;
        if (!list[n - 1].key || !list[n - 1].upload_id)
            rc = fail_no_memory(err);
    }
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0) {
        free_upload_list(list, n);
        return rc;
    }
    /* ListMultipartUploads orders by key, then by initiation time. */
    qsort(list, n, sizeof *list, compare_uploads);
    *uploads = list;
    *count = n;
    clear_error(err);
    return 0;
}

/* ---- ListObjectsV2 ---- */

/* The continuation token is opaque to callers; here it names the last entry returned, marked as a key
 * ('K') or a common prefix ('P'), hex-encoded so no caller is tempted to parse it. */
static char *encode_token(char kind, const char *entry)
{
    size_t n = strlen(entry);
    char *token = malloc(2 * n + 2);
    if (!token)
        return NULL;
    token[0] = kind;
    hex_of((const uint8_t *)entry, n, token + 1);
    return token;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static char *decode_token(const char *token, char *kind)
{
    size_t n = strlen(token);
    if (n < 1 || (token[0] != 'K' && token[0] != 'P') || (n - 1) % 2 != 0)
        return NULL;
    char *entry = malloc((n - 1) / 2 + 1);
    if (!entry)
        return NULL;
    for (size_t i = 0; i < (n - 1) / 2; i++) {
        int hi = hex_value(token[1 + 2 * i]), lo = hex_value(token[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            free(entry);
            return NULL;
        }
        entry[i] = (char)(hi << 4 | lo);
    }
    entry[(n - 1) / 2] = '\0';
    *kind = token[0];
    return entry;
}

typedef struct {
    objc_list_page *page;
    size_t object_cap, prefix_cap;
} page_builder;

static int page_add_object(page_builder *b, const mem_object *o)
{
    objc_list_page *p = b->page;
    if (p->object_count == b->object_cap) {
        size_t cap = b->object_cap ? b->object_cap * 2 : 32;
        objc_entry *grown = realloc(p->objects, cap * sizeof *grown);
        if (!grown)
            return -1;
        p->objects = grown;
        b->object_cap = cap;
    }
    objc_entry *e = &p->objects[p->object_count];
    memset(e, 0, sizeof *e);
    e->key = strdup(o->key);
    if (!e->key)
        return -1;
    e->size = o->len;
    snprintf(e->etag, sizeof e->etag, "%s", o->etag);
    e->last_modified = o->last_modified;
    p->object_count++;
    return 0;
}

static int page_add_prefix(page_builder *b, const char *key, size_t len)
{
    objc_list_page *p = b->page;
    if (p->prefix_count == b->prefix_cap) {
        size_t cap = b->prefix_cap ? b->prefix_cap * 2 : 16;
        char **grown = realloc(p->prefixes, cap * sizeof *grown);
        if (!grown)
            return -1;
        p->prefixes = grown;
        b->prefix_cap = cap;
    }
    char *s = strndup(key, len);
    if (!s)
        return -1;
    p->prefixes[p->prefix_count++] = s;
    return 0;
}

static void free_page(objc_list_page *p)
{
    for (size_t i = 0; i < p->object_count; i++)
        free(p->objects[i].key);
    free(p->objects);
    for (size_t i = 0; i < p->prefix_count; i++)
        free(p->prefixes[i]);
    free(p->prefixes);
    free(p->next_token);
    memset(p, 0, sizeof *p);
}

/* Caller holds the lock. */
static int build_page(memory_client *m, const char *prefix, const char *delimiter, const char *resume_after,
                      char resume_kind, int max_keys, objc_list_page *out)
{
    page_builder b = { .page = out };
    size_t prefix_len = strlen(prefix);
    size_t delim_len = delimiter ? strlen(delimiter) : 0;
    size_t i = lower_bound(m, resume_after && strcmp(resume_after, prefix) > 0 ? resume_after : prefix);
    /* The last common prefix emitted (or resumed after): keys under it are rolled up into it. */
    const char *rolled = resume_kind == 'P' ? resume_after : NULL;
    size_t rolled_len = rolled ? strlen(rolled) : 0;
    int emitted = 0;
    char last_kind = 0;
    const char *last_entry = "";

    for (; i < m->object_count; i++) {
        const mem_object *o = &m->objects[i];
        if (strncmp(o->key, prefix, prefix_len) != 0)
            break;   /* sorted: no later key has the prefix */
        if (resume_kind == 'K' && strcmp(o->key, resume_after) <= 0)
            continue;
        if (rolled && strncmp(o->key, rolled, rolled_len) == 0)
            continue;
        const char *cut = delim_len ? strstr(o->key + prefix_len, delimiter) : NULL;
        if (emitted == max_keys) {
            /* A further entry exists: the page is truncated after the last one returned. */
            out->next_token = encode_token(last_kind, last_entry);
            return out->next_token ? 0 : -1;
        }
        if (cut) {
            size_t len = (size_t)(cut - o->key) + delim_len;
            if (page_add_prefix(&b, o->key, len) != 0)
                return -1;
            rolled = out->prefixes[out->prefix_count - 1];
            rolled_len = len;
            last_kind = 'P';
            last_entry = rolled;
        } else {
            if (page_add_object(&b, o) != 0)
                return -1;
            last_kind = 'K';
            last_entry = out->objects[out->object_count - 1].key;
        }
        emitted++;
    }
    return 0;
}

static int mem_list_page(object_client *c, const char *prefix, const char *delimiter, const char *token,
                         int max_keys, objc_list_page *out, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (!out)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "list_page: no output");
    memset(out, 0, sizeof *out);
    if (max_keys <= 0 || max_keys > S3_MAX_LIST_KEYS)
        max_keys = S3_MAX_LIST_KEYS;   /* S3's default and ceiling */
    char resume_kind = 0;
    char *resume_after = NULL;
    if (token && *token) {
        resume_after = decode_token(token, &resume_kind);
        if (!resume_after) {
            pthread_mutex_lock(&m->lock);
            m->counts.list++;
            m->counts.failed++;
            pthread_mutex_unlock(&m->lock);
            return fail(err, AWS_ERR_SERVICE, 400, "InvalidArgument", "The continuation token provided is incorrect");
        }
    }
    pthread_mutex_lock(&m->lock);
    m->counts.list++;
    int rc = build_page(m, prefix ? prefix : "", delimiter && *delimiter ? delimiter : NULL, resume_after,
                        resume_kind, max_keys, out);
    if (rc != 0) {
        free_page(out);
        rc = fail_no_memory(err);
    }
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    free(resume_after);
    if (rc == 0)
        clear_error(err);
    return rc;
}

static int mem_copy(object_client *c, const char *src_key, const char *dst_key, objc_metadata_directive directive,
                    const kv_list *metadata, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (check_key(src_key, err) || check_key(dst_key, err))
        return AWS_ERR_ARGUMENT;
    mem_object o = { 0 };
    kv_list_init(&o.metadata);
    int rc = 0;
    if (directive == OBJC_METADATA_REPLACE)
        rc = copy_metadata_lowercase(&o.metadata, metadata, err);
    pthread_mutex_lock(&m->lock);
    m->counts.copy++;
    mem_object *src = rc == 0 ? find_object(m, src_key) : NULL;
    if (rc == 0 && !src)
        rc = fail(err, AWS_ERR_NOT_FOUND, 404, "NoSuchKey", "The specified key does not exist.");
    if (rc == 0 && directive == OBJC_METADATA_COPY && strcmp(src_key, dst_key) == 0)
        rc = fail(err, AWS_ERR_SERVICE, 400, "InvalidRequest",
                  "This copy request is illegal because it is trying to copy an object to itself without "
                  "changing the object's metadata, storage class, website redirect location or encryption "
                  "attributes.");
    body_ref body = { 0 };
    if (rc == 0) {
        o.key = strdup(dst_key);
        if (!o.key || body_take(src, &body) != 0 ||
            (directive == OBJC_METADATA_COPY && kv_list_copy(&o.metadata, &src->metadata)))
            rc = fail_no_memory(err);
    }
    if (rc != 0) {
        counted_failure(m, rc);
        pthread_mutex_unlock(&m->lock);
        body_drop(&body);
        object_free_fields(&o);
        return rc;
    }
    pthread_mutex_unlock(&m->lock);

    /* The copy shares the source's body buffers. A CopyObject result is a single-part object: its
     * ETag is the plain MD5 of the body even when the source was multipart. Hashing happens outside
     * the lock; the source may be replaced meanwhile, as with a real copy racing a PUT. */
    body_etag(&body, o.etag);
    o.segments = body.segments;
    o.segment_count = body.count;
    o.len = body.len;
    o.last_modified = time(NULL);
    pthread_mutex_lock(&m->lock);
    rc = store_object(m, &o, err);
    counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        object_free_fields(&o);
    else
        clear_error(err);
    return rc;
}

/* Caller holds the lock. */
static void delete_locked(memory_client *m, const char *key)
{
    size_t i = lower_bound(m, key);
    if (i < m->object_count && strcmp(m->objects[i].key, key) == 0)
        remove_object_at(m, i);
}

static int mem_delete_object(object_client *c, const char *key, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (check_key(key, err))
        return AWS_ERR_ARGUMENT;
    pthread_mutex_lock(&m->lock);
    m->counts.delete_one++;
    delete_locked(m, key);
    pthread_mutex_unlock(&m->lock);
    clear_error(err);
    return 0;
}

static int mem_delete_objects(object_client *c, const char *const *keys, size_t count, aws_error *err)
{
    memory_client *m = as_memory(c);
    if (count && !keys)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "delete_objects: no keys");
    for (size_t i = 0; i < count; i++)
        if (check_key(keys[i], err))
            return AWS_ERR_ARGUMENT;
    pthread_mutex_lock(&m->lock);
    m->counts.delete_requests += (count + S3_DELETE_BATCH - 1) / S3_DELETE_BATCH;
    for (size_t i = 0; i < count; i++)
        delete_locked(m, keys[i]);
    pthread_mutex_unlock(&m->lock);
    clear_error(err);
    return 0;
}

static void mem_destroy(object_client *c)
{
    memory_client *m = as_memory(c);
    if (!m)
        return;
    for (size_t i = 0; i < m->object_count; i++)
        object_free_fields(&m->objects[i]);
    free(m->objects);
    for (size_t i = 0; i < m->upload_count; i++)
        upload_free_fields(&m->uploads[i]);
    free(m->uploads);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const objc_ops memory_ops = {
    .head = mem_head,
    .get_range = mem_get_range,
    .put = mem_put,
    .mpu_create = mem_mpu_create,
    .mpu_upload_part = mem_mpu_upload_part,
    .mpu_complete = mem_mpu_complete,
    .mpu_abort = mem_mpu_abort,
    .mpu_list = mem_mpu_list,
    .list_page = mem_list_page,
    .copy = mem_copy,
    .delete_object = mem_delete_object,
    .delete_objects = mem_delete_objects,
    .destroy = mem_destroy,
};

object_client *objc_new_memory(void)
{
    memory_client *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->base.ops = &memory_ops;
    m->min_part_size = OBJC_MEMORY_DEFAULT_MIN_PART_SIZE;
    return &m->base;
}

/* ---- test extras (objc_memory.h) ---- */

int objc_memory_set_min_part_size(object_client *c, size_t min_part_size)
{
    memory_client *m = as_memory(c);
    if (!m)
        return -1;
    pthread_mutex_lock(&m->lock);
    m->min_part_size = min_part_size;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int objc_memory_stats(object_client *c, objc_memory_counts *out)
{
    memory_client *m = as_memory(c);
    if (!m || !out)
        return -1;
    pthread_mutex_lock(&m->lock);
    *out = m->counts;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void objc_memory_reset_stats(object_client *c)
{
    memory_client *m = as_memory(c);
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    memset(&m->counts, 0, sizeof m->counts);
    pthread_mutex_unlock(&m->lock);
}

int objc_memory_get_object(object_client *c, const char *key, uint8_t **bytes, size_t *len, kv_list *metadata)
{
    memory_client *m = as_memory(c);
    if (bytes)
        *bytes = NULL;
    if (len)
        *len = 0;
    if (metadata)
        kv_list_init(metadata);
    if (!m || !key)
        return -1;
    pthread_mutex_lock(&m->lock);
    int rc = -1;
    body_ref body = { 0 };
    mem_object *o = find_object(m, key);
    if (o) {
        rc = body_take(o, &body);
        if (rc == 0 && metadata && kv_list_copy(metadata, &o->metadata) != 0)
            rc = -1;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc == 0 && bytes) {
        *bytes = malloc(body.len ? body.len : 1);
        if (*bytes)
            body_read(&body, 0, body.len, *bytes);
        else
            rc = -1;
    }
    if (rc == 0 && len)
        *len = body.len;
    body_drop(&body);
    if (rc != 0) {
        if (bytes) {
            free(*bytes);
            *bytes = NULL;
        }
        if (metadata)
            kv_list_free(metadata);
    }
    return rc;
}

size_t objc_memory_object_count(object_client *c)
{
    memory_client *m = as_memory(c);
    if (!m)
        return 0;
    pthread_mutex_lock(&m->lock);
    size_t n = m->object_count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

size_t objc_memory_upload_count(object_client *c)
{
    memory_client *m = as_memory(c);
    if (!m)
        return 0;
    pthread_mutex_lock(&m->lock);
    size_t n = m->upload_count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

int objc_memory_set_last_modified(object_client *c, const char *key, time_t when)
{
    memory_client *m = as_memory(c);
    if (!m || !key)
        return -1;
    pthread_mutex_lock(&m->lock);
    mem_object *o = find_object(m, key);
    if (o)
        o->last_modified = when;
    pthread_mutex_unlock(&m->lock);
    return o ? 0 : -1;
}
