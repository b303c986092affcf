/* Private to the S3 client's files (s3_client.c: the client, its calls and the write side; s3_get.c:
 * ranged and streaming GetObject): the client's state and its one way of sending a request. */
#ifndef S3CSEFS_S3_CLIENT_INTERNAL_H
#define S3CSEFS_S3_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "aws_session.h"
#include "http.h"
#include "object_client.h"

typedef struct {
    object_client base;
    aws_session *session;
    char *bucket;
    char *endpoint;
    int path_style;
    int sign_payload;
    http_sigv4_signer signer;
    http_counters counters;
    uint64_t copy_threshold;
    uint64_t copy_part_size;
} s3_client;

/* One S3 call: where it goes and what it carries. */
typedef struct {
    const char *method;
    const char *key;                 /* NULL: a bucket-level request */
    const char *query;
    const kv_list *headers;
    const uint8_t *body;
    size_t body_len;
    http_sink_kind sink;
    uint8_t *sink_buf;
    size_t sink_cap;
    http_check_fn check;
    void *check_ctx;
    int accept_status;
} s3_call;

/* The client behind an object_client, or NULL when it is not an S3 client. */
s3_client *as_s3(object_client *c);
/* One signed, retried call (http_execute) to the client's endpoint and bucket. */
int s3_send(s3_client *s, const s3_call *call, http_response *resp, aws_error *err);
/* Refuses an empty key or one over S3's 1024 bytes. */
int s3_check_key(const char *key, aws_error *err);

/* s3_get.c */
int s3_get_range(object_client *c, const char *key, uint64_t offset, size_t len, uint8_t *buf, size_t *got,
                 aws_error *err);
int s3_get_range_if_match(object_client *c, const char *key, const char *etag, uint64_t offset, size_t len,
                          uint8_t *buf, size_t *got, aws_error *err);
int s3_get_stream(object_client *c, const char *key, const char *etag, uint64_t offset, uint64_t len,
                  objc_stream_fn sink, void *sink_ctx, aws_error *err);

#endif
