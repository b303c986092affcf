/* The one interface between the filesystem and object storage. The filesystem never talks to S3 any
 * other way, so implementations can be swapped underneath it:
 *   - objc_new_s3:      the real S3 client (aws/s3_*.c), signed, retried, checksummed
 *   - objc_new_memory:  an in-process object store for unit tests of the pipelines
 *   - objc_new_faulty:  wraps any client and injects failures (errors, delays, short reads) by rule,
 *                       for fault-injection tests and fuzzing
 *   - objc_new_null:    keeps nothing (benchmarks of the write path without storage)
 * Keys are full object keys (the filesystem adds its prefix). User metadata names are given and
 * returned without the "x-amz-meta-" prefix, lower case. All calls are thread-safe. */
#ifndef S3CSEFS_OBJECT_CLIENT_H
#define S3CSEFS_OBJECT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "aws_error.h"
#include "kvlist.h"

typedef struct object_client object_client;

typedef struct {
    uint64_t size;               /* stored (ciphertext) size */
    char etag[80];
    time_t last_modified;
    kv_list metadata;            /* user metadata, names without x-amz-meta- */
} objc_head;

typedef struct {
    int part_number;             /* 1..10000 */
    char etag[80];
    char checksum_crc32c[16];    /* base64, as returned by UploadPart / computed by us */
} objc_part;

typedef struct {
    char *key;
    uint64_t size;
    char etag[80];
    time_t last_modified;
} objc_entry;

typedef struct {
    objc_entry *objects;
    size_t object_count;
    char **prefixes;             /* CommonPrefixes, each ending in the delimiter */
    size_t prefix_count;
    char *next_token;            /* NULL when this was the last page */
} objc_list_page;

typedef struct {
    char *key;
    char *upload_id;
    time_t initiated;
} objc_upload;

typedef enum { OBJC_METADATA_COPY = 0, OBJC_METADATA_REPLACE } objc_metadata_directive;

/* Body consumer of get_stream: takes n bytes (the next ones, in order); 0 to go on, non-zero to stop. */
typedef int (*objc_stream_fn)(void *ctx, const uint8_t *data, size_t n);
/* get_stream's result when the sink stopped it: negative, so it never reads as success by mistake and
 * never collides with an aws_err_kind. */
#define OBJC_STREAM_STOPPED (-1)

typedef struct {
    /* HeadObject. AWS_ERR_NOT_FOUND when absent. */
    int (*head)(object_client *c, const char *key, objc_head *out, aws_error *err);
    /* GetObject bytes [offset, offset+len) into buf. *got < len only at the end of the object.
     * A range starting at or past the end yields *got = 0 and success. */
    int (*get_range)(object_client *c, const char *key, uint64_t offset, size_t len, uint8_t *buf,
                     size_t *got, aws_error *err);
    /* PutObject of a body in memory, with user metadata; checksummed (CRC32C). */
    int (*put)(object_client *c, const char *key, const kv_list *metadata, const uint8_t *body, size_t len,
               aws_error *err);
    /* CreateMultipartUpload with user metadata; *upload_id is malloc'd. */
    int (*mpu_create)(object_client *c, const char *key, const kv_list *metadata, char **upload_id,
                      aws_error *err);
    /* UploadPart of a body in memory; fills part->etag and part->checksum_crc32c (sent and verified). */
    int (*mpu_upload_part)(object_client *c, const char *key, const char *upload_id, int part_number,
                           const uint8_t *body, size_t len, objc_part *part, aws_error *err);
    /* CompleteMultipartUpload; parts in ascending part number. Verifies the result (ETag form). */
    int (*mpu_complete)(object_client *c, const char *key, const char *upload_id, const objc_part *parts,
                        size_t count, aws_error *err);
    int (*mpu_abort)(object_client *c, const char *key, const char *upload_id, aws_error *err);
    /* ListMultipartUploads under prefix (all pages); *uploads malloc'd, free with objc_uploads_free. */
    int (*mpu_list)(object_client *c, const char *prefix, objc_upload **uploads, size_t *count,
                    aws_error *err);
    /* ListObjectsV2, one page. delimiter may be NULL; token NULL for the first page. */
    int (*list_page)(object_client *c, const char *prefix, const char *delimiter, const char *token,
                     int max_keys, objc_list_page *out, aws_error *err);
    /* Server-side copy (CopyObject, or UploadPartCopy parts for sources over 5 GiB). With COPY the
     * metadata is kept byte-for-byte; with REPLACE `metadata` is the complete new set. */
    int (*copy)(object_client *c, const char *src_key, const char *dst_key, objc_metadata_directive directive,
                const kv_list *metadata, aws_error *err);
    int (*delete_object)(object_client *c, const char *key, aws_error *err);   /* absent is success */
    /* DeleteObjects, up to 1000 keys per request internally. */
    int (*delete_objects)(object_client *c, const char *const *keys, size_t count, aws_error *err);
    void (*destroy)(object_client *c);
    /* get_range, but only while the object still has this ETag (as head returned it, quotes kept):
     * sent as If-Match, so bytes of a replacement object are never mixed with an old envelope.
     * AWS_ERR_CHANGED when the object was replaced; a missing object is AWS_ERR_NOT_FOUND. */
    int (*get_range_if_match)(object_client *c, const char *key, const char *etag, uint64_t offset, size_t len,
                              uint8_t *buf, size_t *got, aws_error *err);
    /* Streaming ranged GetObject of [offset, offset+len) (clipped at the object's end), If-Match `etag`
     * when not NULL: the body goes to sink(sink_ctx, data, n) in order, as it arrives, each byte once.
     * The sink may block (that is the back-pressure on the sender) and returns non-zero to stop: the call
     * then returns OBJC_STREAM_STOPPED with err cleared, which is not a failure. Returns 0 once every
     * byte up to the end of the range (or of the object) was delivered; a range at or past the end
     * delivers nothing and succeeds. Errors as get_range_if_match; the S3 client resumes a broken
     * transfer from the next undelivered byte (If-Match on the ETag given, else on the one its first
     * answer carried) instead of starting over, and fails rather than deliver a byte twice. */
    int (*get_stream)(object_client *c, const char *key, const char *etag, uint64_t offset, uint64_t len,
                      objc_stream_fn sink, void *sink_ctx, aws_error *err);
} objc_ops;

struct object_client {
    const objc_ops *ops;
};

typedef struct aws_session aws_session;
object_client *objc_new_s3(aws_session *session, const char *bucket, aws_error *err);
object_client *objc_new_memory(void);

/* Fault rules for objc_new_faulty: each call of an operation named in `ops_mask` (OBJC_OP_* bits)
 * fails with `kind`/`http_status`/`code` after `after_calls` successful calls, for `fail_count` calls
 * (-1: forever), optionally only for keys containing `key_substring`. Rules can be changed at runtime. */
enum {
    OBJC_OP_HEAD = 1 << 0, OBJC_OP_GET = 1 << 1, OBJC_OP_PUT = 1 << 2, OBJC_OP_MPU_CREATE = 1 << 3,
    OBJC_OP_MPU_PART = 1 << 4, OBJC_OP_MPU_COMPLETE = 1 << 5, OBJC_OP_MPU_ABORT = 1 << 6,
    OBJC_OP_MPU_LIST = 1 << 7, OBJC_OP_LIST = 1 << 8, OBJC_OP_COPY = 1 << 9, OBJC_OP_DELETE = 1 << 10,
    OBJC_OP_ALL = 0x7ff
};
typedef struct {
    unsigned ops_mask;
    long after_calls;
    long fail_count;
    aws_err_kind kind;
    int http_status;
    const char *code;
    const char *key_substring;
    int delay_ms;                /* added before the call, failing or not */
} objc_fault_rule;
object_client *objc_new_faulty(object_client *inner, int take_ownership);
int objc_faulty_add_rule(object_client *faulty, const objc_fault_rule *rule);
void objc_faulty_clear_rules(object_client *faulty);

/* Convenience: call through ops. */
static inline void objc_free(object_client *c) { if (c) c->ops->destroy(c); }
void objc_head_free(objc_head *h);
void objc_list_page_free(objc_list_page *page);
void objc_uploads_free(objc_upload *uploads, size_t count);

#endif
