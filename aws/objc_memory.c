/* The in-memory object_client: a thread-safe stand-in for an S3 bucket that the write and read pipelines
 * are unit-tested on. It reproduces the S3 behaviours the pipelines depend on: ETags (MD5, and the
 * "md5-of-md5s-N" multipart form), ranged GETs, multipart uploads that stay invisible until completed
 * and are checked at completion (EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload),
 * ListObjectsV2 pagination with delimiters, CopyObject directives, and the 2 KB user-metadata limit.
 * Multipart uploads are in objc_memory_multipart.c, ListObjectsV2 paging in objc_memory_list.c. */
#include "objc_memory_store.h"

static const objc_ops memory_ops;

memory_client *mem_client_of(object_client *c)
{
    return c && c->ops == &memory_ops ? (memory_client *)c : NULL;
}

int mem_fail_no_memory(aws_error *err)
{
    return fail(err, AWS_ERR_NO_MEMORY, 0, "", "out of memory in the memory object client");
}

void mem_clear_error(aws_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

/* Caller holds the lock: one failure per failing call. */
int mem_counted_failure(memory_client *m, int rc)
{
    if (rc != 0)
        m->counts.failed++;
    return rc;
}

void mem_md5_of(const uint8_t *data, size_t len, uint8_t digest[16])
{
    unsigned int out_len = 16;
    EVP_Digest(data, len, digest, &out_len, EVP_md5(), NULL);
}

void mem_hex_of(const uint8_t *bytes, size_t n, char *out)
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
void mem_quoted_etag(const uint8_t digest[16], size_t part_count, char etag[80])
{
    char hex[33];
    mem_hex_of(digest, 16, hex);
    if (part_count)
        snprintf(etag, 80, "\"%s-%zu\"", hex, part_count);
    else
        snprintf(etag, 80, "\"%s\"", hex);
}

shared_bytes *mem_bytes_new(const uint8_t *src, size_t len)
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

shared_bytes *mem_bytes_ref(shared_bytes *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void mem_bytes_unref(shared_bytes *b)
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
        out->segments[i] = mem_bytes_ref(o->segments[i]);
    out->count = o->segment_count;
    out->len = o->len;
    return 0;
}

static void body_drop(body_ref *b)
{
    for (size_t i = 0; i < b->count; i++)
        mem_bytes_unref(b->segments[i]);
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
        mem_quoted_etag(digest, 0, etag);
    else
        snprintf(etag, 80, "\"md5-unavailable\"");
}

/* S3 stores user metadata names lower-cased; enforces its 2 KB limit on names plus values. */
int mem_copy_metadata_lowercase(kv_list *dst, const kv_list *src, aws_error *err)
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
            return mem_fail_no_memory(err);
        }
        for (char *s = lower; *s; s++)
            *s = (char)tolower((unsigned char)*s);
        int rc = kv_list_set(dst, lower, p->value);
        free(lower);
        if (rc != 0) {
            kv_list_free(dst);
            return mem_fail_no_memory(err);
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

int mem_check_key(const char *key, aws_error *err)
{
    if (!key || !*key || strlen(key) > 1024)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "object key empty or longer than 1024 bytes");
    return 0;
}

/* ---- the sorted object table (caller holds the lock) ---- */

/* Index of the first object whose key is >= key (S3 orders keys by their UTF-8 bytes; strcmp compares
 * as unsigned char, which is exactly that). */
size_t mem_lower_bound(const memory_client *m, const char *key)
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
    size_t i = mem_lower_bound(m, key);
    return i < m->object_count && strcmp(m->objects[i].key, key) == 0 ? &m->objects[i] : NULL;
}

void mem_object_free_fields(mem_object *o)
{
    free(o->key);
    for (size_t i = 0; i < o->segment_count; i++)
        mem_bytes_unref(o->segments[i]);
    free(o->segments);
    kv_list_free(&o->metadata);
}

/* Stores a fully built object (takes ownership of its fields), replacing any previous version: this is
 * the single point where a new object becomes visible, so readers see the old or the new, never a mix. */
int mem_store_object(memory_client *m, mem_object *o, aws_error *err)
{
    size_t i = mem_lower_bound(m, o->key);
    if (i < m->object_count && strcmp(m->objects[i].key, o->key) == 0) {
        mem_object_free_fields(&m->objects[i]);
        m->objects[i] = *o;
        return 0;
    }
    if (m->object_count == m->object_cap) {
        size_t cap = m->object_cap ? m->object_cap * 2 : 64;
        mem_object *grown = realloc(m->objects, cap * sizeof *grown);
        if (!grown)
            return mem_fail_no_memory(err);
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
    mem_object_free_fields(&m->objects[i]);
    memmove(&m->objects[i], &m->objects[i + 1], (m->object_count - i - 1) * sizeof *m->objects);
    m->object_count--;
}

/* ---- operations ---- */

static int mem_head(object_client *c, const char *key, objc_head *out, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (!out)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "head: no output");
    memset(out, 0, sizeof *out);
    kv_list_init(&out->metadata);
    if (mem_check_key(key, err))
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
        rc = mem_fail_no_memory(err);
    } else {
        out->size = o->len;
        snprintf(out->etag, sizeof out->etag, "%s", o->etag);
        out->last_modified = o->last_modified;
        mem_clear_error(err);
    }
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* The object a GET reads (lock held): NoSuchKey when absent, PreconditionFailed when etag (If-Match)
 * names another version. */
static int find_for_get(memory_client *m, const char *key, const char *etag, mem_object **out, aws_error *err)
{
    *out = find_object(m, key);
    if (!*out)
        return fail(err, AWS_ERR_NOT_FOUND, 404, "NoSuchKey", "The specified key does not exist.");
    if (etag && !mem_etag_matches(etag, (*out)->etag))
        return fail(err, AWS_ERR_CHANGED, 412, "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold");
    return 0;
}

/* GetObject with a Range, and with If-Match when etag is not NULL (S3 checks the precondition before
 * the range: a replaced object is 412 even when the range is past its end). */
static int get_range_impl(object_client *c, const char *key, const char *etag, uint64_t offset, size_t len,
                          uint8_t *buf, size_t *got, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (!got || (len && !buf))
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "get_range: no buffer");
    *got = 0;
    if (mem_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    pthread_mutex_lock(&m->lock);
    m->counts.get++;
    int rc;
    size_t n = 0;
    body_ref body = { 0 };
    mem_object *o = NULL;
    rc = find_for_get(m, key, etag, &o, err);
    if (rc == 0 && offset < o->len) {
        n = o->len - offset < len ? (size_t)(o->len - offset) : len;
        if (body_take(o, &body) != 0)
            rc = mem_fail_no_memory(err);
        else
            m->counts.bytes_got += n;
    }
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        return rc;
    /* The body is immutable and referenced: copy it out without blocking other callers. */
    if (n)
        body_read(&body, offset, n, buf);
    body_drop(&body);
    *got = n;
    mem_clear_error(err);
    return 0;
}

static int mem_get_range(object_client *c, const char *key, uint64_t offset, size_t len, uint8_t *buf,
                         size_t *got, aws_error *err)
{
    return get_range_impl(c, key, NULL, offset, len, buf, got, err);
}

static int mem_get_range_if_match(object_client *c, const char *key, const char *etag, uint64_t offset,
                                  size_t len, uint8_t *buf, size_t *got, aws_error *err)
{
    if (!etag || !*etag) {
        if (got)
            *got = 0;
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "get_range_if_match: no ETag");
    }
    return get_range_impl(c, key, etag, offset, len, buf, got, err);
}

/* Pieces the body is handed to a stream sink in, about what one network read brings: small enough
 * that a sink's stop takes effect promptly, large enough not to cost a call per few bytes. */
#define STREAM_PIECE ((size_t)64 * 1024)

/* Hands [offset, offset+len) of a referenced body to the sink piece by piece, straight from the shared
 * buffers. Returns the bytes delivered; *stopped when the sink asked to stop. */
static uint64_t body_stream(const body_ref *b, uint64_t offset, uint64_t len, objc_stream_fn sink, void *ctx,
                            int *stopped)
{
    uint64_t start = 0, done = 0;
    *stopped = 0;
    for (size_t i = 0; i < b->count && done < len && !*stopped; i++) {
        const shared_bytes *seg = b->segments[i];
        uint64_t end = start + seg->len;
        while (offset + done < end && done < len) {
            size_t at = (size_t)(offset + done - start);
            size_t n = seg->len - at < STREAM_PIECE ? seg->len - at : STREAM_PIECE;
            if (n > len - done)
                n = (size_t)(len - done);
            done += n;
            if (sink(ctx, seg->bytes + at, n) != 0) {
                *stopped = 1;
                break;
            }
        }
        start = end;
    }
    return done;
}

/* get_stream: the preconditions and the range as get_range_if_match, the body handed out in pieces
 * outside the lock (the sink may block for as long as it likes without holding up other callers). */
static int mem_get_stream(object_client *c, const char *key, const char *etag, uint64_t offset, uint64_t len,
                          objc_stream_fn sink, void *sink_ctx, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (!sink || (etag && !*etag))
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "get_stream: no sink, or an empty ETag");
    if (mem_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    pthread_mutex_lock(&m->lock);
    m->counts.get++;
    int rc;
    uint64_t n = 0;
    body_ref body = { 0 };
    mem_object *o = NULL;
    rc = find_for_get(m, key, etag, &o, err);
    if (rc == 0 && offset < o->len && len) {
        n = o->len - offset < len ? o->len - offset : len;
        if (body_take(o, &body) != 0)
            rc = mem_fail_no_memory(err);
    }
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        return rc;
    int stopped = 0;
    uint64_t done = n ? body_stream(&body, offset, n, sink, sink_ctx, &stopped) : 0;
    body_drop(&body);
    pthread_mutex_lock(&m->lock);
    m->counts.bytes_got += done;
    pthread_mutex_unlock(&m->lock);
    mem_clear_error(err);
    return stopped ? OBJC_STREAM_STOPPED : 0;
}

static int mem_put(object_client *c, const char *key, const kv_list *metadata, const uint8_t *body, size_t len,
                   aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (mem_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    if (len && !body)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "put: no body");
    if (len > S3_MAX_SINGLE_OBJECT)
        return fail(err, AWS_ERR_SERVICE, 400, "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size");
    /* Build the object outside the lock; only the swap into the table is serialised. */
    mem_object o = { 0 };
    int rc = mem_copy_metadata_lowercase(&o.metadata, metadata, err);
    if (rc == 0) {
        o.key = strdup(key);
        o.segments = malloc(sizeof *o.segments);
        if (o.segments && (o.segments[0] = mem_bytes_new(body, len)))
            o.segment_count = 1;
        if (!o.key || !o.segment_count)
            rc = mem_fail_no_memory(err);
    }
    if (rc == 0) {
        o.len = len;
        uint8_t digest[16];
        mem_md5_of(body, len, digest);
        mem_quoted_etag(digest, 0, o.etag);
        o.last_modified = time(NULL);
    }
    pthread_mutex_lock(&m->lock);
    m->counts.put++;
    m->counts.bytes_put += len;
    if (rc == 0)
        rc = mem_store_object(m, &o, err);
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        mem_object_free_fields(&o);
    else
        mem_clear_error(err);
    return rc;
}

static int mem_copy(object_client *c, const char *src_key, const char *dst_key, objc_metadata_directive directive,
                    const kv_list *metadata, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (mem_check_key(src_key, err) || mem_check_key(dst_key, err))
        return AWS_ERR_ARGUMENT;
    mem_object o = { 0 };
    kv_list_init(&o.metadata);
    int rc = 0;
    if (directive == OBJC_METADATA_REPLACE)
        rc = mem_copy_metadata_lowercase(&o.metadata, metadata, err);
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
            rc = mem_fail_no_memory(err);
    }
    if (rc != 0) {
        mem_counted_failure(m, rc);
        pthread_mutex_unlock(&m->lock);
        body_drop(&body);
        mem_object_free_fields(&o);
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
    rc = mem_store_object(m, &o, err);
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        mem_object_free_fields(&o);
    else
        mem_clear_error(err);
    return rc;
}

/* Caller holds the lock. */
static void delete_locked(memory_client *m, const char *key)
{
    size_t i = mem_lower_bound(m, key);
    if (i < m->object_count && strcmp(m->objects[i].key, key) == 0)
        remove_object_at(m, i);
}

static int mem_delete_object(object_client *c, const char *key, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (mem_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    pthread_mutex_lock(&m->lock);
    m->counts.delete_one++;
    delete_locked(m, key);
    pthread_mutex_unlock(&m->lock);
    mem_clear_error(err);
    return 0;
}

static int mem_delete_objects(object_client *c, const char *const *keys, size_t count, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (count && !keys)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "delete_objects: no keys");
    for (size_t i = 0; i < count; i++)
        if (mem_check_key(keys[i], err))
            return AWS_ERR_ARGUMENT;
    pthread_mutex_lock(&m->lock);
    m->counts.delete_requests += (count + S3_DELETE_BATCH - 1) / S3_DELETE_BATCH;
    for (size_t i = 0; i < count; i++)
        delete_locked(m, keys[i]);
    pthread_mutex_unlock(&m->lock);
    mem_clear_error(err);
    return 0;
}

static void mem_destroy(object_client *c)
{
    memory_client *m = mem_client_of(c);
    if (!m)
        return;
    for (size_t i = 0; i < m->object_count; i++)
        mem_object_free_fields(&m->objects[i]);
    free(m->objects);
    for (size_t i = 0; i < m->upload_count; i++)
        mem_upload_free_fields(&m->uploads[i]);
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
    .get_range_if_match = mem_get_range_if_match,
    .get_stream = mem_get_stream,
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
    memory_client *m = mem_client_of(c);
    if (!m)
        return -1;
    pthread_mutex_lock(&m->lock);
    m->min_part_size = min_part_size;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int objc_memory_stats(object_client *c, objc_memory_counts *out)
{
    memory_client *m = mem_client_of(c);
    if (!m || !out)
        return -1;
    pthread_mutex_lock(&m->lock);
    *out = m->counts;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void objc_memory_reset_stats(object_client *c)
{
    memory_client *m = mem_client_of(c);
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    memset(&m->counts, 0, sizeof m->counts);
    pthread_mutex_unlock(&m->lock);
}

int objc_memory_get_object(object_client *c, const char *key, uint8_t **bytes, size_t *len, kv_list *metadata)
{
    memory_client *m = mem_client_of(c);
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
    memory_client *m = mem_client_of(c);
    if (!m)
        return 0;
    pthread_mutex_lock(&m->lock);
    size_t n = m->object_count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

size_t objc_memory_upload_count(object_client *c)
{
    memory_client *m = mem_client_of(c);
    if (!m)
        return 0;
    pthread_mutex_lock(&m->lock);
    size_t n = m->upload_count;
    pthread_mutex_unlock(&m->lock);
    return n;
}

int objc_memory_set_last_modified(object_client *c, const char *key, time_t when)
{
    memory_client *m = mem_client_of(c);
    if (!m || !key)
        return -1;
    pthread_mutex_lock(&m->lock);
    mem_object *o = find_object(m, key);
    if (o)
        o->last_modified = when;
    pthread_mutex_unlock(&m->lock);
    return o ? 0 : -1;
}
