/* The in-memory object_client's multipart uploads (see objc_memory_store.h): creation, parts,
 * completion checked as S3 checks it (EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload),
 * abort and listing. Completing moves part bodies into the object by reference, not by copy. */
#include "objc_memory_store.h"

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

void mem_upload_free_fields(mem_upload *u)
{
    free(u->key);
    free(u->upload_id);
    kv_list_free(&u->metadata);
    for (size_t i = 0; i < u->part_count; i++)
        mem_bytes_unref(u->parts[i].body);
    free(u->parts);
}

static void remove_upload_at(memory_client *m, size_t i)
{
    mem_upload_free_fields(&m->uploads[i]);
    memmove(&m->uploads[i], &m->uploads[i + 1], (m->upload_count - i - 1) * sizeof *m->uploads);
    m->upload_count--;
}

static int no_such_upload(aws_error *err)
{
    return fail(err, AWS_ERR_NOT_FOUND, 404, "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have "
                "been aborted or completed.");
}

int mem_mpu_create(object_client *c, const char *key, const kv_list *metadata, char **upload_id,
                          aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (!upload_id)
        return fail(err, AWS_ERR_ARGUMENT, 0, "", "mpu_create: no output");
    *upload_id = NULL;
    if (mem_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    mem_upload u = { 0 };
    int rc = mem_copy_metadata_lowercase(&u.metadata, metadata, err);
    uint8_t nonce[8];
    if (rc == 0 && RAND_bytes(nonce, sizeof nonce) != 1)
        rc = fail(err, AWS_ERR_CRYPTO, 0, "", "no random bytes for an upload id");
    if (rc == 0) {
        u.key = strdup(key);
        u.initiated = time(NULL);
        if (!u.key)
            rc = mem_fail_no_memory(err);
    }
    pthread_mutex_lock(&m->lock);
    m->counts.mpu_create++;
    if (rc == 0 && m->upload_count == m->upload_cap) {
        size_t cap = m->upload_cap ? m->upload_cap * 2 : 16;
        mem_upload *grown = realloc(m->uploads, cap * sizeof *grown);
        if (!grown) {
            rc = mem_fail_no_memory(err);
        } else {
            m->uploads = grown;
            m->upload_cap = cap;
        }
    }
    if (rc == 0) {
        /* A serial makes ids unique within the instance; the random part stops a test from passing by
         * guessing an id from another instance. */
        char hex[17];
        mem_hex_of(nonce, sizeof nonce, hex);
        if (asprintf(&u.upload_id, "mem-%llu-%s", (unsigned long long)++m->next_upload_serial, hex) < 0) {
            u.upload_id = NULL;
            rc = mem_fail_no_memory(err);
        }
    }
    if (rc == 0) {
        *upload_id = strdup(u.upload_id);
        if (!*upload_id)
            rc = mem_fail_no_memory(err);
    }
    if (rc == 0)
        m->uploads[m->upload_count++] = u;
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        mem_upload_free_fields(&u);
    else
        mem_clear_error(err);
    return rc;
}

int mem_mpu_upload_part(object_client *c, const char *key, const char *upload_id, int part_number,
                               const uint8_t *body, size_t len, objc_part *part, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (mem_check_key(key, err))
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
    p.body = mem_bytes_new(body, len);
    if (!p.body)
        return mem_fail_no_memory(err);
    mem_md5_of(body, len, p.md5);
    mem_quoted_etag(p.md5, 0, p.etag);
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
            mem_bytes_unref(u->parts[i].body);
            u->parts[i] = p;
        } else {
            mem_part *grown = realloc(u->parts, (u->part_count + 1) * sizeof *grown);
            if (!grown) {
                rc = mem_fail_no_memory(err);
            } else {
                u->parts = grown;
                memmove(&u->parts[i + 1], &u->parts[i], (u->part_count - i) * sizeof *u->parts);
                u->parts[i] = p;
                u->part_count++;
            }
        }
    }
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0) {
        mem_bytes_unref(p.body);
        return rc;
    }
    part->part_number = part_number;
    snprintf(part->etag, sizeof part->etag, "%s", p.etag);
    snprintf(part->checksum_crc32c, sizeof part->checksum_crc32c, "%s", p.checksum_crc32c);
    mem_clear_error(err);
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
int mem_etag_matches(const char *given, const char *stored)
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
        if (!p || !mem_etag_matches(parts[i].etag, p->etag) ||
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
        return mem_fail_no_memory(err);
    }
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const mem_part *p = find_part(u, parts[i].part_number);
        o->segments[o->segment_count++] = mem_bytes_ref(p->body);
        memcpy(md5s + 16 * i, p->md5, 16);
        total += p->body->len;
    }
    o->len = total;
    /* The multipart ETag: MD5 of the concatenated binary part MD5s, then "-<number of parts>". */
    uint8_t digest[16];
    mem_md5_of(md5s, 16 * count, digest);
    free(md5s);
    mem_quoted_etag(digest, count, o->etag);
    o->last_modified = time(NULL);
    return 0;
}

int mem_mpu_complete(object_client *c, const char *key, const char *upload_id, const objc_part *parts,
                            size_t count, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (mem_check_key(key, err))
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
        rc = mem_store_object(m, &o, err);
    if (rc == 0)
        remove_upload_at(m, index);
    else
        mem_object_free_fields(&o);
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc == 0)
        mem_clear_error(err);
    return rc;
}

int mem_mpu_abort(object_client *c, const char *key, const char *upload_id, aws_error *err)
{
    memory_client *m = mem_client_of(c);
    if (mem_check_key(key, err))
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
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc == 0)
        mem_clear_error(err);
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

int mem_mpu_list(object_client *c, const char *prefix, objc_upload **uploads, size_t *count,
                        aws_error *err)
{
    memory_client *m = mem_client_of(c);
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
        rc = mem_fail_no_memory(err);
    for (size_t i = 0; rc == 0 && i < m->upload_count; i++) {
        const mem_upload *u = &m->uploads[i];
        if (strncmp(u->key, want, want_len) != 0)
            continue;
        list[n].key = strdup(u->key);
        list[n].upload_id = strdup(u->upload_id);
        list[n].initiated = u->initiated;
        n++;
        if (!list[n - 1].key || !list[n - 1].upload_id)
            rc = mem_fail_no_memory(err);
    }
    mem_counted_failure(m, rc);
    pthread_mutex_unlock(&m->lock);
    if (rc != 0) {
        free_upload_list(list, n);
        return rc;
    }
    /* ListMultipartUploads orders by key, then by initiation time. */
    qsort(list, n, sizeof *list, compare_uploads);
    *uploads = list;
    *count = n;
    mem_clear_error(err);
    return 0;
}
