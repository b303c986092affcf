/* The real S3 object client: every object_client operation as a signed, retried S3 REST call.
 * Bodies go out from the caller's memory with a CRC32C checksum; GET bodies land in the caller's buffer.
 * Answers are checked (ETags present and of the right form, 200-with-<Error>, content ranges). */
#include "s3_client.h"
#include "s3_client_internal.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base64.h"
#include "crc32c.h"
#include "s3_mpu_proof.h"
#include "s3_url.h"
#include "s3_xml.h"

#define MAX_DELETE_BATCH 1000
#define MAX_PARTS 10000
#define MAX_COPY_PART ((uint64_t)5 << 30)


static const objc_ops s3_ops;

s3_client *as_s3(object_client *c)
{
    return c && c->ops == &s3_ops ? (s3_client *)c : NULL;
}


int s3_send(s3_client *s, const s3_call *call, http_response *resp, aws_error *err)
{
    char *endpoint = NULL, *path = NULL;
    if (s3_build_target(s->endpoint, s->bucket, call->key, s->path_style, &endpoint, &path) != 0)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot build the S3 request URL");
    http_request req = {
        .method = call->method, .endpoint = endpoint, .path = path, .query = call->query,
        .headers = call->headers, .body = call->body, .body_len = call->body_len,
        .sink = call->sink, .sink_buf = call->sink_buf, .sink_cap = call->sink_cap,
        .sign = http_sign_sigv4, .sign_ctx = &s->signer, .check = call->check, .check_ctx = call->check_ctx,
        .service_name = "S3", .counters = &s->counters, .accept_status = call->accept_status,
    };
    int rc = http_execute(s->session->http, &req, resp, err);
    free(endpoint);
    free(path);
    return rc;
}

static int add_metadata_headers(kv_list *headers, const kv_list *metadata)
{
    char name[256];
    for (size_t i = 0; metadata && i < metadata->count; i++) {
        if ((size_t)snprintf(name, sizeof name, "x-amz-meta-%s", metadata->items[i].name) >= sizeof name)
            return AWS_ERR_ARGUMENT;
        for (char *p = name; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        if (kv_list_add(headers, name, metadata->items[i].value) != 0)
            return AWS_ERR_NO_MEMORY;
    }
    return 0;
}

int s3_check_key(const char *key, aws_error *err)
{
    if (!key || !*key || strlen(key) > 1024)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "invalid S3 key (empty or over 1024 bytes)");
    return 0;
}

/* "?uploadId=<encoded>" style query values. */
static char *encode_value(const char *v)
{
    return aws_uri_encode(v, strlen(v), 1);
}

/* Appends "name=<encoded value>" to a query string (parameters must be added in sorted order, the
 * canonical order SigV4 signs). A NULL value skips the parameter. Returns -1 on ENOMEM. */
static int query_add(char **query, const char *name, const char *value)
{
    if (!value)
        return 0;
    char *enc = encode_value(value);
    if (!enc)
        return -1;
    char *grown = NULL;
    int rc = asprintf(&grown, "%s%s%s=%s", *query ? *query : "", *query ? "&" : "", name, enc);
    free(enc);
    if (rc < 0)
        return -1;
    free(*query);
    *query = grown;
    return 0;
}

/* ---- HeadObject (GetObject: s3_get.c) --------------------------------------------------------------- */

/* HeadObject; extra_headers may ask for more (x-amz-checksum-mode), and the composite/full checksum
 * S3 then returns lands in checksum (may be NULL). */
static int head_object(s3_client *s, const char *key, const kv_list *extra_headers, objc_head *out,
                       char *checksum, size_t checksum_cap, aws_error *err)
{
    memset(out, 0, sizeof *out);
    kv_list_init(&out->metadata);
    if (checksum && checksum_cap)
        checksum[0] = '\0';
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "HEAD", .key = key, .headers = extra_headers, .sink = HTTP_SINK_DISCARD};
    int rc = s3_send(s, &call, &resp, err);
    if (rc == 0) {
        const char *len = kv_list_get(&resp.headers, "content-length");
        const char *etag = kv_list_get(&resp.headers, "etag");
        if (s3_parse_u64(len, &out->size) != 0)
            rc = aws_error_set(err, AWS_ERR_PARSE, "HeadObject answer has no valid Content-Length");
        snprintf(out->etag, sizeof out->etag, "%s", etag ? etag : "");
        const char *sum = kv_list_get(&resp.headers, "x-amz-checksum-crc32c");
        if (checksum && checksum_cap)
            snprintf(checksum, checksum_cap, "%s", sum ? sum : "");
        time_t lm = s3_parse_http_date(kv_list_get(&resp.headers, "last-modified"));
        out->last_modified = lm == (time_t)-1 ? 0 : lm;
        for (size_t i = 0; rc == 0 && i < resp.headers.count; i++) {
            const kv_pair *h = &resp.headers.items[i];
            if (strncmp(h->name, "x-amz-meta-", 11) == 0 && h->name[11] &&
                kv_list_add(&out->metadata, h->name + 11, h->value) != 0)
                rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
        }
        if (rc)
            kv_list_free(&out->metadata);
    }
    http_response_free(&resp);
    return rc;
}

static int s3_head(object_client *c, const char *key, objc_head *out, aws_error *err)
{
    return head_object(as_s3(c), key, NULL, out, NULL, 0, err);
}

/* ---- PutObject and multipart uploads ------------------------------------------------------------ */

/* The checksum of a body, and the SDK header that names its algorithm (S3 needs only the first; the
 * AWS SDKs send both, and some S3-compatible stores only record the checksum with the second). */
static int add_checksum_headers(kv_list *headers, const char *crc32c_b64)
{
    return kv_list_add(headers, "x-amz-checksum-crc32c", crc32c_b64) ||
           kv_list_add(headers, "x-amz-sdk-checksum-algorithm", "CRC32C");
}

/* S3 echoes the checksum it verified; a different value means the body changed on the way. */
static int check_echoed_checksum(const http_response *resp, const char *sent, aws_error *err)
{
    const char *echoed = kv_list_get(&resp->headers, "x-amz-checksum-crc32c");
    if (echoed && strcmp(echoed, sent) != 0)
        return aws_error_set(err, AWS_ERR_INTEGRITY, "S3 stored CRC32C %s, we sent %s", echoed, sent);
    const char *etag = kv_list_get(&resp->headers, "etag");
    if (!etag || !*etag)
        return aws_error_set(err, AWS_ERR_INTEGRITY, "S3 answer carries no ETag");
    return 0;
}

static int s3_put(object_client *c, const char *key, const kv_list *metadata, const uint8_t *body, size_t len,
                  aws_error *err)
{
    s3_client *s = as_s3(c);
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    char crc[9];
    crc32c_base64(crc32c(0, body, len), crc);
    kv_list headers;
    kv_list_init(&headers);
    int rc = add_metadata_headers(&headers, metadata);
    if (!rc && add_checksum_headers(&headers, crc) != 0)
        rc = AWS_ERR_NO_MEMORY;
    if (rc) {
        kv_list_free(&headers);
        return aws_error_set(err, rc, "cannot build PutObject headers");
    }
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "PUT", .key = key, .headers = &headers, .body = body, .body_len = len,
                    .sink = HTTP_SINK_DISCARD};
    rc = s3_send(s, &call, &resp, err);
    if (rc == 0)
        rc = check_echoed_checksum(&resp, crc, err);
    http_response_free(&resp);
    kv_list_free(&headers);
    return rc;
}

static int s3_mpu_abort(object_client *c, const char *key, const char *upload_id, aws_error *err);
static int s3_mpu_list(object_client *c, const char *prefix, objc_upload **uploads, size_t *count,
                       aws_error *err);

/* Uploads that S3 may have created for this key without our seeing the answer start at most this long
 * before our call, allowing for clock skew between us and S3. */
#define CREATE_ORPHAN_WINDOW_S 300

/* CreateMultipartUpload is a POST: an attempt whose answer was lost (or could not be parsed) may still
 * have created an upload, billed until aborted. After such an ambiguous call, abort the uploads of
 * exactly this key initiated since the call began, except the one we got. This assumes one writer per
 * key, which the filesystem guarantees for its prefix; the bucket lifecycle rule
 * AbortIncompleteMultipartUpload (docs/aws-layer.md) catches whatever this misses. */
static void abort_orphan_creates(s3_client *s, const char *key, time_t call_started, const char *keep)
{
    objc_upload *uploads = NULL;
    size_t count = 0;
    aws_error ignored;
    if (s3_mpu_list(&s->base, key, &uploads, &count, &ignored) != 0)
        return;
    for (size_t i = 0; i < count; i++)
        if (strcmp(uploads[i].key, key) == 0 && uploads[i].initiated >= call_started - CREATE_ORPHAN_WINDOW_S &&
            (!keep || strcmp(uploads[i].upload_id, keep) != 0))
            s3_mpu_abort(&s->base, key, uploads[i].upload_id, &ignored);
    objc_uploads_free(uploads, count);
}

static int create_upload(s3_client *s, const char *key, const kv_list *metadata, int with_checksum,
                         char **upload_id, aws_error *err)
{
    *upload_id = NULL;
    kv_list headers;
    kv_list_init(&headers);
    int rc = add_metadata_headers(&headers, metadata);
    if (!rc && with_checksum && kv_list_add(&headers, "x-amz-checksum-algorithm", "CRC32C") != 0)
        rc = AWS_ERR_NO_MEMORY;
    if (rc) {
        kv_list_free(&headers);
        return aws_error_set(err, rc, "cannot build CreateMultipartUpload headers");
    }
    time_t started = time(NULL);
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "POST", .key = key, .query = "uploads=", .headers = &headers};
    rc = s3_send(s, &call, &resp, err);
    int answered = rc == 0;
    if (rc == 0)
        rc = s3_xml_parse_initiate((const char *)resp.body, resp.body_len, upload_id, err);
    /* Ambiguous: an earlier attempt failed after sending, or a 2xx answer we could not read. */
    if (resp.attempts > 1 || (answered && rc != 0)) {
        aws_error saved = {0};
        if (err)
            saved = *err;
        abort_orphan_creates(s, key, started, rc == 0 ? *upload_id : NULL);
        if (err)
            *err = saved;
    }
    http_response_free(&resp);
    kv_list_free(&headers);
    return rc;
}

static int s3_mpu_create(object_client *c, const char *key, const kv_list *metadata, char **upload_id,
                         aws_error *err)
{
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    return create_upload(as_s3(c), key, metadata, 1, upload_id, err);
}

static char *upload_query(int part_number, const char *upload_id)
{
    char *id = encode_value(upload_id);
    char *q = NULL;
    if (!id)
        return NULL;
    int rc = part_number > 0 ? asprintf(&q, "partNumber=%d&uploadId=%s", part_number, id)
                             : asprintf(&q, "uploadId=%s", id);
    free(id);
    return rc < 0 ? NULL : q;
}

static int s3_mpu_upload_part(object_client *c, const char *key, const char *upload_id, int part_number,
                              const uint8_t *body, size_t len, objc_part *part, aws_error *err)
{
    s3_client *s = as_s3(c);
    memset(part, 0, sizeof *part);
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    if (part_number < 1 || part_number > MAX_PARTS || !upload_id)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "part number %d out of 1..%d", part_number, MAX_PARTS);
    char crc[9];
    crc32c_base64(crc32c(0, body, len), crc);
    char *query = upload_query(part_number, upload_id);
    kv_list headers;
    kv_list_init(&headers);
    if (!query || add_checksum_headers(&headers, crc) != 0) {
        free(query);
        kv_list_free(&headers);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "PUT", .key = key, .query = query, .headers = &headers, .body = body,
                    .body_len = len, .sink = HTTP_SINK_DISCARD};
    int rc = s3_send(s, &call, &resp, err);
    if (rc == 0)
        rc = check_echoed_checksum(&resp, crc, err);
    if (rc == 0) {
        const char *etag = kv_list_get(&resp.headers, "etag");
        if (strlen(etag) >= sizeof part->etag)
            rc = aws_error_set(err, AWS_ERR_INTEGRITY, "UploadPart ETag too long");
        else {
            part->part_number = part_number;
            snprintf(part->etag, sizeof part->etag, "%s", etag);
            snprintf(part->checksum_crc32c, sizeof part->checksum_crc32c, "%s", crc);
        }
    }
    http_response_free(&resp);
    kv_list_free(&headers);
    free(query);
    return rc;
}

typedef struct {
    size_t part_count;
    char etag[80];
} complete_check;

static int check_complete(void *ctx, const uint8_t *body, size_t len, aws_error *err)
{
    complete_check *cc = ctx;
    int rc = s3_xml_parse_complete((const char *)body, len, cc->etag, sizeof cc->etag, err);
    if (rc == 0 && !s3_etag_is_multipart(cc->etag, cc->part_count))
        rc = aws_error_set(err, AWS_ERR_INTEGRITY, "completed object ETag %s is not of the form <md5>-%zu",
                           cc->etag, cc->part_count);
    return rc;
}

/* A retried completion that finds the upload gone: an earlier attempt may have completed it and its
 * answer was lost, or the upload vanished for another reason (lifecycle abort, cleanup tool, another
 * writer) and the object at the key is an older one. Accept only what proves the object was built from
 * OUR parts: its ETag equals MD5(part MD5s)-N, or its composite CRC32C equals CRC32C(part CRCs)-N.
 * Anything else keeps the NoSuchUpload failure, so a stale object is never reported as our upload. */
static int check_lost_completion(s3_client *s, const char *key, const objc_part *parts, size_t count,
                                 aws_error *err)
{
    char expected_etag[64], expected_sum[32], actual_sum[64];
    int have_etag = s3_expected_multipart_etag(parts, count, expected_etag, sizeof expected_etag) == 0;
    int have_sum = s3_expected_composite_crc32c(parts, count, expected_sum, sizeof expected_sum) == 0;
    kv_list ask;
    kv_list_init(&ask);
    if (have_sum && kv_list_add(&ask, "x-amz-checksum-mode", "ENABLED") != 0)
        have_sum = 0;
    objc_head h;
    aws_error head_err;
    int head_rc = head_object(s, key, have_sum ? &ask : NULL, &h, actual_sum, sizeof actual_sum, &head_err);
    kv_list_free(&ask);
    int ours = 0;
    if (head_rc == 0) {
        ours = (have_etag && s3_etag_equal(h.etag, expected_etag)) ||
               (have_sum && strcmp(actual_sum, expected_sum) == 0);
        objc_head_free(&h);
    }
    if (!ours) {
        if (err) {
            size_t used = strnlen(err->message, sizeof err->message);
            snprintf(err->message + used, sizeof err->message - used,
                     " (retried completion: the object at the key is not the one built from our parts)");
        }
        return err ? (int)err->kind : AWS_ERR_NOT_FOUND;
    }
    aws_error_clear(err);
    return 0;
}

static int complete_upload(s3_client *s, const char *key, const char *upload_id, const objc_part *parts,
                           size_t count, aws_error *err)
{
    if (count == 0 || count > MAX_PARTS || !upload_id)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "CompleteMultipartUpload needs 1..%d parts", MAX_PARTS);
    for (size_t i = 0; i < count; i++)
        if (parts[i].part_number < 1 || (i > 0 && parts[i].part_number <= parts[i - 1].part_number) ||
            !parts[i].etag[0])
            return aws_error_set(err, AWS_ERR_ARGUMENT, "parts must ascend and carry ETags");
    xml_buf body;
    xml_buf_init(&body);
    s3_xml_build_complete(parts, count, &body);
    char *query = upload_query(0, upload_id);
    kv_list headers;
    kv_list_init(&headers);
    int rc = 0;
    if (body.failed || !query || kv_list_add(&headers, "content-type", "application/xml") != 0)
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    if (!rc) {
        complete_check cc = {.part_count = count};
        http_response resp;
        http_response_init(&resp);
        s3_call call = {.method = "POST", .key = key, .query = query, .headers = &headers,
                        .body = (const uint8_t *)body.data, .body_len = body.len, .check = check_complete,
                        .check_ctx = &cc};
        rc = s3_send(s, &call, &resp, err);
        if (rc == AWS_ERR_NOT_FOUND && resp.attempts > 1 && err && strcmp(err->code, "NoSuchUpload") == 0)
            rc = check_lost_completion(s, key, parts, count, err);
        http_response_free(&resp);
    }
    kv_list_free(&headers);
    free(query);
    xml_buf_free(&body);
    return rc;
}

static int s3_mpu_complete(object_client *c, const char *key, const char *upload_id, const objc_part *parts,
                           size_t count, aws_error *err)
{
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    return complete_upload(as_s3(c), key, upload_id, parts, count, err);
}

static int s3_mpu_abort(object_client *c, const char *key, const char *upload_id, aws_error *err)
{
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    char *query = upload_query(0, upload_id ? upload_id : "");
    if (!query)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "DELETE", .key = key, .query = query, .sink = HTTP_SINK_DISCARD};
    int rc = s3_send(as_s3(c), &call, &resp, err);
    http_response_free(&resp);
    free(query);
    return rc;
}

/* One ListMultipartUploads page after the markers (NULL for the first), appended to uploads. */
static int list_uploads_page(s3_client *s, const char *prefix, const char *key_marker, const char *id_marker,
                             objc_upload **uploads, size_t *count, char **next_key, char **next_id,
                             aws_error *err)
{
    char *query = NULL;
    if (query_add(&query, "encoding-type", "url") || query_add(&query, "key-marker", key_marker) ||
        query_add(&query, "prefix", prefix ? prefix : "") ||
        query_add(&query, "upload-id-marker", id_marker) || query_add(&query, "uploads", "")) {
        free(query);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "GET", .query = query};
    int rc = s3_send(s, &call, &resp, err);
    if (rc == 0)
        rc = s3_xml_parse_list_uploads((const char *)resp.body, resp.body_len, uploads, count, next_key,
                                       next_id, err);
    http_response_free(&resp);
    free(query);
    return rc;
}

static int same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int s3_mpu_list(object_client *c, const char *prefix, objc_upload **uploads, size_t *count,
                       aws_error *err)
{
    s3_client *s = as_s3(c);
    *uploads = NULL;
    *count = 0;
    char *key_marker = NULL, *id_marker = NULL;
    int rc = 0;
    do {
        char *next_key = NULL, *next_id = NULL;
        rc = list_uploads_page(s, prefix, key_marker, id_marker, uploads, count, &next_key, &next_id, err);
        /* A truncated page must move the markers forward, or the loop would never end. */
        if (rc == 0 && next_key && same_text(next_key, key_marker) && same_text(next_id, id_marker))
            rc = aws_error_set(err, AWS_ERR_PARSE, "ListMultipartUploads is truncated but its markers did not advance");
        free(key_marker);
        free(id_marker);
        key_marker = next_key;
        id_marker = next_id;
    } while (rc == 0 && key_marker);
    free(key_marker);
    free(id_marker);
    if (rc) {
        objc_uploads_free(*uploads, *count);
        *uploads = NULL;
        *count = 0;
    }
    return rc;
}

/* ---- ListObjectsV2 ----------------------------------------------------------------------------- */

static int s3_list_page(object_client *c, const char *prefix, const char *delimiter, const char *token,
                        int max_keys, objc_list_page *out, aws_error *err)
{
    s3_client *s = as_s3(c);
    memset(out, 0, sizeof *out);
    char mk[16];
    snprintf(mk, sizeof mk, "%d", max_keys > 1000 ? 1000 : max_keys);
    char *query = NULL;
    if (query_add(&query, "continuation-token", token) ||
        query_add(&query, "delimiter", delimiter && *delimiter ? delimiter : NULL) ||
        query_add(&query, "encoding-type", "url") || query_add(&query, "list-type", "2") ||
        query_add(&query, "max-keys", max_keys > 0 ? mk : NULL) || query_add(&query, "prefix", prefix ? prefix : "")) {
        free(query);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "GET", .query = query};
    int rc = s3_send(s, &call, &resp, err);
    if (rc == 0)
        rc = s3_xml_parse_list_objects((const char *)resp.body, resp.body_len, out, err);
    http_response_free(&resp);
    free(query);
    return rc;
}

/* ---- copies -------------------------------------------------------------------------------------- */

typedef struct {
    const char *root;
    char etag[80];
} copy_check;

static int check_copy(void *ctx, const uint8_t *body, size_t len, aws_error *err)
{
    copy_check *cc = ctx;
    return s3_xml_parse_copy((const char *)body, len, cc->root, cc->etag, sizeof cc->etag, err);
}

/* Every copy request names the source ETag seen by our HEAD (x-amz-copy-source-if-match): a source
 * replaced meanwhile fails with 412 (AWS_ERR_CHANGED) instead of being copied under the old metadata,
 * or spliced from two versions part by part. */
static int copy_whole(s3_client *s, const char *source, const char *src_etag, const char *dst_key,
                      objc_metadata_directive directive, const kv_list *metadata, aws_error *err)
{
    kv_list headers;
    kv_list_init(&headers);
    int rc = 0;
    if (kv_list_add(&headers, "x-amz-copy-source", source) != 0 ||
        kv_list_add(&headers, "x-amz-copy-source-if-match", src_etag) != 0 ||
        kv_list_add(&headers, "x-amz-metadata-directive", directive == OBJC_METADATA_REPLACE ? "REPLACE" : "COPY") != 0)
        rc = AWS_ERR_NO_MEMORY;
    if (!rc && directive == OBJC_METADATA_REPLACE)
        rc = add_metadata_headers(&headers, metadata);
    if (rc) {
        kv_list_free(&headers);
        return aws_error_set(err, rc, "cannot build CopyObject headers");
    }
    copy_check cc = {.root = "CopyObjectResult"};
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "PUT", .key = dst_key, .headers = &headers, .check = check_copy, .check_ctx = &cc};
    rc = s3_send(s, &call, &resp, err);
    http_response_free(&resp);
    kv_list_free(&headers);
    return rc;
}

static int copy_part(s3_client *s, const char *source, const char *src_etag, const char *dst_key,
                     const char *upload_id, int number, uint64_t first, uint64_t last, objc_part *part,
                     aws_error *err)
{
    char range[64];
    snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, first, last);
    char *query = upload_query(number, upload_id);
    kv_list headers;
    kv_list_init(&headers);
    if (!query || kv_list_add(&headers, "x-amz-copy-source", source) != 0 ||
        kv_list_add(&headers, "x-amz-copy-source-range", range) != 0 ||
        kv_list_add(&headers, "x-amz-copy-source-if-match", src_etag) != 0) {
        free(query);
        kv_list_free(&headers);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    copy_check cc = {.root = "CopyPartResult"};
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "PUT", .key = dst_key, .query = query, .headers = &headers, .check = check_copy,
                    .check_ctx = &cc};
    int rc = s3_send(s, &call, &resp, err);
    if (rc == 0) {
        memset(part, 0, sizeof *part);
        part->part_number = number;
        snprintf(part->etag, sizeof part->etag, "%s", cc.etag);
    }
    http_response_free(&resp);
    kv_list_free(&headers);
    free(query);
    return rc;
}

/* CopyObject stops at 5 GiB: larger sources are copied part by part into a multipart upload, which
 * takes the metadata at creation (the source's own for COPY). */
static int copy_multipart(s3_client *s, const char *source, const char *dst_key, const objc_head *src,
                          objc_metadata_directive directive, const kv_list *metadata, aws_error *err)
{
    uint64_t part_size = s->copy_part_size;
    uint64_t min_for_limit = (src->size + MAX_PARTS - 1) / MAX_PARTS;
    if (part_size < min_for_limit)
        part_size = min_for_limit;
    if (part_size > MAX_COPY_PART)
        part_size = MAX_COPY_PART;
    size_t count = (size_t)((src->size + part_size - 1) / part_size);
    if (count == 0 || count > MAX_PARTS)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "object of %" PRIu64 " bytes cannot be copied", src->size);
    objc_part *parts = calloc(count, sizeof *parts);
    if (!parts)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    char *upload_id = NULL;
    const kv_list *md = directive == OBJC_METADATA_REPLACE ? metadata : &src->metadata;
    int rc = create_upload(s, dst_key, md, 0, &upload_id, err);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        uint64_t first = (uint64_t)i * part_size;
        uint64_t last = first + part_size - 1 < src->size - 1 ? first + part_size - 1 : src->size - 1;
        rc = copy_part(s, source, src->etag, dst_key, upload_id, (int)i + 1, first, last, &parts[i], err);
    }
    if (rc == 0)
        rc = complete_upload(s, dst_key, upload_id, parts, count, err);
    if (rc && upload_id) {
        aws_error ignored;
        s3_mpu_abort(&s->base, dst_key, upload_id, &ignored);   /* leave no billed orphan parts */
    }
    free(upload_id);
    free(parts);
    return rc;
}

static int s3_copy(object_client *c, const char *src_key, const char *dst_key, objc_metadata_directive directive,
                   const kv_list *metadata, aws_error *err)
{
    s3_client *s = as_s3(c);
    if (s3_check_key(src_key, err) || s3_check_key(dst_key, err))
        return AWS_ERR_ARGUMENT;
    objc_head src;
    int rc = s3_head(c, src_key, &src, err);
    if (rc)
        return rc;
    char *source = s3_copy_source(s->bucket, src_key);
    if (!src.etag[0])
        rc = aws_error_set(err, AWS_ERR_INTEGRITY, "HeadObject of the copy source returned no ETag");
    else if (!source)
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    else if (src.size > s->copy_threshold)
        rc = copy_multipart(s, source, dst_key, &src, directive, metadata, err);
    else
        rc = copy_whole(s, source, src.etag, dst_key, directive, metadata, err);
    free(source);
    objc_head_free(&src);
    return rc;
}

/* ---- deletes ------------------------------------------------------------------------------------- */

static int s3_delete_object(object_client *c, const char *key, aws_error *err)
{
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    http_response resp;
    http_response_init(&resp);
    s3_call call = {.method = "DELETE", .key = key, .sink = HTTP_SINK_DISCARD};
    int rc = s3_send(as_s3(c), &call, &resp, err);
    http_response_free(&resp);
    if (rc == AWS_ERR_NOT_FOUND) {
        aws_error_clear(err);
        rc = 0;
    }
    return rc;
}

/* Content-MD5 is mandatory for DeleteObjects. */
static int content_md5(const void *data, size_t len, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(data, len, md, &md_len, EVP_md5(), NULL) != 1 || md_len != 16)
        return -1;
    base64_encode(md, md_len, out);
    return 0;
}

static int check_delete(void *ctx, const uint8_t *body, size_t len, aws_error *err)
{
    (void)ctx;
    return s3_xml_parse_delete_result((const char *)body, len, err);
}

static int delete_batch(s3_client *s, const char *const *keys, size_t count, aws_error *err)
{
    xml_buf body;
    xml_buf_init(&body);
    s3_xml_build_delete(keys, count, &body);
    char md5[32];
    kv_list headers;
    kv_list_init(&headers);
    int rc = 0;
    if (body.failed || content_md5(body.data, body.len, md5) != 0 ||
        kv_list_add(&headers, "content-md5", md5) != 0 || kv_list_add(&headers, "content-type", "application/xml") != 0)
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot build the DeleteObjects request");
    if (!rc) {
        http_response resp;
        http_response_init(&resp);
        s3_call call = {.method = "POST", .query = "delete=", .headers = &headers,
                        .body = (const uint8_t *)body.data, .body_len = body.len, .check = check_delete};
        rc = s3_send(s, &call, &resp, err);
        http_response_free(&resp);
    }
    kv_list_free(&headers);
    xml_buf_free(&body);
    return rc;
}

static int s3_delete_objects(object_client *c, const char *const *keys, size_t count, aws_error *err)
{
    s3_client *s = as_s3(c);
    for (size_t i = 0; i < count; i++)
        if (s3_check_key(keys[i], err))
            return AWS_ERR_ARGUMENT;
    for (size_t done = 0; done < count; done += MAX_DELETE_BATCH) {
        size_t n = count - done < MAX_DELETE_BATCH ? count - done : MAX_DELETE_BATCH;
        int rc = delete_batch(s, keys + done, n, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- lifetime -------------------------------------------------------------------------------------- */

static void s3_destroy(object_client *c)
{
    s3_client *s = as_s3(c);
    if (!s)
        return;
    free(s->bucket);
    free(s->endpoint);
    free(s);
}

static const objc_ops s3_ops = {
    .head = s3_head,
    .get_range = s3_get_range,
    .put = s3_put,
    .mpu_create = s3_mpu_create,
    .mpu_upload_part = s3_mpu_upload_part,
    .mpu_complete = s3_mpu_complete,
    .mpu_abort = s3_mpu_abort,
    .mpu_list = s3_mpu_list,
    .list_page = s3_list_page,
    .copy = s3_copy,
    .delete_object = s3_delete_object,
    .delete_objects = s3_delete_objects,
    .destroy = s3_destroy,
    .get_range_if_match = s3_get_range_if_match,
    .get_stream = s3_get_stream,
};

object_client *objc_new_s3(aws_session *session, const char *bucket, aws_error *err)
{
    if (!session || !session->http || !bucket || !*bucket) {
        aws_error_set(err, AWS_ERR_ARGUMENT, "objc_new_s3 needs a session and a bucket name");
        return NULL;
    }
    const char *endpoint = aws_session_endpoint(session, "s3");
    if (!endpoint || !strstr(endpoint, "://")) {
        aws_error_set(err, AWS_ERR_CONFIG, "no S3 endpoint for region '%s'", session->config.region);
        return NULL;
    }
    s3_client *s = calloc(1, sizeof *s);
    if (!s || !(s->bucket = strdup(bucket)) || !(s->endpoint = strdup(endpoint))) {
        if (s)
            free(s->bucket);
        free(s);
        aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory creating the S3 client");
        return NULL;
    }
    s->base.ops = &s3_ops;
    s->session = session;
    s->path_style = aws_session_use_path_style(session, bucket);
    /* Over https TLS protects the body and the CRC32C header covers it, so the signature need not: this
     * saves a SHA-256 pass over every byte. Over plain http the signature must cover the body itself. */
    s->sign_payload = strncasecmp(endpoint, "https://", 8) != 0;
    s->signer = (http_sigv4_signer){
        .session = session, .service = "s3", .region = session->config.region,
        .payload_hash = s->sign_payload ? NULL : "UNSIGNED-PAYLOAD", .normalize_path = 0,
        .add_content_sha256_header = 1,
    };
    s->copy_threshold = S3_DEFAULT_MULTIPART_COPY_THRESHOLD;
    s->copy_part_size = S3_DEFAULT_COPY_PART_SIZE;
    return &s->base;
}

int objc_s3_set_copy_tuning(object_client *c, uint64_t threshold, uint64_t part_size)
{
    s3_client *s = as_s3(c);
    if (!s)
        return -1;
    if (threshold)
        s->copy_threshold = threshold;
    if (part_size)
        s->copy_part_size = part_size;
    return 0;
}

int objc_s3_set_counters(object_client *c, const http_counters *counters)
{
    s3_client *s = as_s3(c);
    if (!s || !counters)
        return -1;
    s->counters = *counters;
    return 0;
}

int objc_s3_signs_payload(const object_client *c)
{
    const s3_client *s = c && c->ops == &s3_ops ? (const s3_client *)c : NULL;
    return s ? s->sign_payload : -1;
}
