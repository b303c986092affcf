/* GetObject for the S3 client (see s3_client.h): ranged reads into the caller's buffer, with the
 * Content-Range checked strictly inside the HTTP attempt, and the streaming GET that hands the body to a
 * sink as it arrives and resumes a cut transfer from the next undelivered byte, pinned by If-Match. */
#include "s3_client_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3_url.h"
#include "s3_xml.h"

/* What a ranged GET must have received, checked inside the HTTP attempt so that a short or misplaced
 * answer is retried like a cut connection. */
typedef struct {
    uint64_t offset;
    size_t len;
    const http_response *resp;
} range_check;

/* "bytes a-b/total" (total may be "*"). Returns 0, or -1 when malformed. */
static int parse_content_range(const char *cr, uint64_t *first, uint64_t *last, uint64_t *total, int *total_known)
{
    if (!cr || strncmp(cr, "bytes ", 6) != 0)
        return -1;
    char a[24], b[24], t[24];
    const char *dash = strchr(cr + 6, '-');
    const char *slash = dash ? strchr(dash, '/') : NULL;
    if (!dash || !slash || (size_t)(dash - cr - 6) >= sizeof a || (size_t)(slash - dash - 1) >= sizeof b ||
        strlen(slash + 1) >= sizeof t)
        return -1;
    snprintf(a, sizeof a, "%.*s", (int)(dash - cr - 6), cr + 6);
    snprintf(b, sizeof b, "%.*s", (int)(slash - dash - 1), dash + 1);
    snprintf(t, sizeof t, "%s", slash + 1);
    *total_known = strcmp(t, "*") != 0;
    if (s3_parse_u64(a, first) != 0 || s3_parse_u64(b, last) != 0 || *last < *first ||
        (*total_known && (s3_parse_u64(t, total) != 0 || *last >= *total)))
        return -1;
    return 0;
}

static int check_range(void *ctx, const uint8_t *body, size_t len, aws_error *err)
{
    (void)body;
    const range_check *rc = ctx;
    if (rc->resp->status != 206) {
        /* A 200 is the whole object (S3 sends one for an empty object): right only from offset 0. */
        if (rc->offset != 0)
            return aws_error_set(err, AWS_ERR_INTEGRITY, "GetObject ignored the Range header");
        return 0;
    }
    const char *cr = kv_list_get(&rc->resp->headers, "content-range");
    uint64_t first, last, total = 0;
    int total_known = 0;
    if (parse_content_range(cr, &first, &last, &total, &total_known) != 0 || first != rc->offset)
        return aws_error_set(err, AWS_ERR_INTEGRITY, "GetObject answered another range (%s)", cr ? cr : "none");
    /* The answer must reach the end of the asked range, or the end of the object: anything shorter
     * would read as "end of object" to the caller. A short answer is transient: retried. */
    uint64_t want_end = rc->offset + (uint64_t)rc->len;
    if (total_known && total < want_end)
        want_end = total;
    if (last + 1 != want_end || len != last - first + 1) {
        aws_error_set(err, AWS_ERR_INTEGRITY, "GetObject answered %zu bytes of %s for %zu bytes at %" PRIu64,
                      len, cr, rc->len, rc->offset);
        snprintf(err->code, sizeof err->code, "%s", "IncompleteBody");
        return AWS_ERR_INTEGRITY;
    }
    return 0;
}

static int get_range_impl(object_client *c, const char *key, const char *etag, uint64_t offset, size_t len,
                          uint8_t *buf, size_t *got, aws_error *err)
{
    s3_client *s = as_s3(c);
    *got = 0;
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    if (etag && !*etag)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "get_range_if_match needs an ETag");
    if (len == 0)
        return 0;
    char range[64];
    snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, offset, offset + (uint64_t)len - 1);
    kv_list headers;
    kv_list_init(&headers);
    if (kv_list_add(&headers, "range", range) != 0 || (etag && kv_list_add(&headers, "if-match", etag) != 0)) {
        kv_list_free(&headers);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    http_response resp;
    http_response_init(&resp);
    range_check rcheck = {.offset = offset, .len = len, .resp = &resp};
    /* 416: the range starts at or past the end, which the interface defines as 0 bytes, success. */
    s3_call call = {.method = "GET", .key = key, .headers = &headers, .sink = HTTP_SINK_BUFFER,
                    .sink_buf = buf, .sink_cap = len, .accept_status = 416, .check = check_range,
                    .check_ctx = &rcheck};
    int rc = s3_send(s, &call, &resp, err);
    if (rc == 0 && resp.status != 416)
        *got = resp.body_len;
    http_response_free(&resp);
    kv_list_free(&headers);
    return rc;
}

int s3_get_range(object_client *c, const char *key, uint64_t offset, size_t len, uint8_t *buf,
                        size_t *got, aws_error *err)
{
    return get_range_impl(c, key, NULL, offset, len, buf, got, err);
}

int s3_get_range_if_match(object_client *c, const char *key, const char *etag, uint64_t offset,
                                 size_t len, uint8_t *buf, size_t *got, aws_error *err)
{
    if (!etag)
        return aws_error_set(err, AWS_ERR_ARGUMENT, "get_range_if_match needs an ETag");
    return get_range_impl(c, key, etag, offset, len, buf, got, err);
}

/* ---- streaming GetObject ------------------------------------------------------------------------ */

/* One streaming GET across its requests: the first asks for [offset, end); after a broken transfer the
 * next asks for [pos, end) only, so no byte reaches the sink twice. */
typedef struct {
    objc_stream_fn sink;
    void *sink_ctx;
    uint64_t offset, end;        /* the range asked for (end saturates at UINT64_MAX) */
    uint64_t pos;                /* next byte the sink has not had */
    uint64_t want_end;           /* end of the bytes to deliver, known once an answer named the total */
    uint64_t total;              /* object size from the first Content-Range (0 until known) */
    int total_known;
    uint64_t request_start;      /* pos when the current request was sent */
    int checked;                 /* the current request's status and Content-Range were checked */
    int stopped;                 /* the sink asked to stop */
    int bad_answer;              /* a wrong range or too many bytes: err_answer holds why */
    aws_error err_answer;
    char etag[80];               /* If-Match for every request: the caller's, else the first answer's */
    const http_response *resp;
} stream_state;

/* The answer to a request for [pos, end) must be exactly that range (clipped at the object's end, of the
 * same object size as before): checked before the first byte reaches the sink. Only 2xx bodies reach
 * the sink, and its status is not known before the transfer ends: an answer without Content-Range is
 * the whole object (S3's 200). */
static int check_stream_answer(stream_state *st, aws_error *err)
{
    const http_response *resp = st->resp;
    uint64_t first = 0, last = 0, total = 0;
    int total_known = 0;
    const char *cr = kv_list_get(&resp->headers, "content-range");
    int whole = !cr;
    if (whole) {
        /* The whole object: right only for a request from byte 0 that asked for all of it. */
        const char *cl = kv_list_get(&resp->headers, "content-length");
        if (st->pos != 0 || s3_parse_u64(cl, &total) != 0 || total > st->end)
            return aws_error_set(err, AWS_ERR_INTEGRITY, "GetObject ignored the Range header");
        total_known = 1;
        last = total ? total - 1 : 0;
    } else if (parse_content_range(cr, &first, &last, &total, &total_known) != 0 || first != st->pos) {
        return aws_error_set(err, AWS_ERR_INTEGRITY, "GetObject answered another range (%s)", cr ? cr : "none");
    }
    uint64_t want_end = st->end;
    if (total_known && total < want_end)
        want_end = total;
    if ((!whole && last + 1 != want_end) || (st->total_known && total_known && total != st->total))
        return aws_error_set(err, AWS_ERR_INTEGRITY, "GetObject answered %s for bytes %" PRIu64 "-%" PRIu64,
                             cr ? cr : "the whole object", st->pos, st->end - 1);
    if (total_known && !st->total_known) {
        st->total = total;
        st->total_known = 1;
    }
    st->want_end = want_end;
    if (!st->etag[0]) {
        const char *etag = kv_list_get(&resp->headers, "etag");
        snprintf(st->etag, sizeof st->etag, "%s", etag ? etag : "");
    }
    return 0;
}

static int stream_write(void *ctx, const uint8_t *data, size_t len)
{
    stream_state *st = ctx;
    if (!st->checked) {
        if (check_stream_answer(st, &st->err_answer) != 0) {
            st->bad_answer = 1;
            return -1;
        }
        st->checked = 1;
    }
    if (len > st->want_end - st->pos) {
        aws_error_set(&st->err_answer, AWS_ERR_INTEGRITY, "GetObject sent more bytes than its Content-Range");
        st->bad_answer = 1;
        return -1;
    }
    st->pos += len;
    if (st->sink(st->sink_ctx, data, len) != 0) {
        st->stopped = 1;
        return -1;
    }
    return 0;
}

/* After a request that completed: it must have reached the end of its range. A short body is retried
 * (by the HTTP layer while nothing was delivered, by resuming otherwise). */
static int stream_check_done(void *ctx, const uint8_t *body, size_t len, aws_error *err)
{
    (void)body, (void)len;
    stream_state *st = ctx;
    if (!st->checked) {
        if (check_stream_answer(st, err) != 0)
            return AWS_ERR_INTEGRITY;
        st->checked = 1;
    }
    if (st->pos == st->want_end)
        return 0;
    aws_error_set(err, AWS_ERR_INTEGRITY, "GetObject stream ended at byte %" PRIu64 " of %" PRIu64, st->pos,
                  st->want_end);
    snprintf(err->code, sizeof err->code, "%s", "IncompleteBody");
    return AWS_ERR_INTEGRITY;
}

/* One GET for [pos, end) with If-Match. Bytes go to the sink as they arrive; an attempt that delivered
 * some and then failed is not retried here (the HTTP layer would start it over from its first byte). */
static int stream_request(s3_client *s, const char *key, stream_state *st, aws_error *err)
{
    char range[64];
    if (st->end == UINT64_MAX)
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-", st->pos);
    else
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, st->pos, st->end - 1);
    kv_list headers;
    kv_list_init(&headers);
    if (kv_list_add(&headers, "range", range) != 0 ||
        (st->etag[0] && kv_list_add(&headers, "if-match", st->etag) != 0)) {
        kv_list_free(&headers);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    }
    char *endpoint = NULL, *path = NULL;
    if (s3_build_target(s->endpoint, s->bucket, key, s->path_style, &endpoint, &path) != 0) {
        kv_list_free(&headers);
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot build the S3 request URL");
    }
    http_response resp;
    http_response_init(&resp);
    st->resp = &resp;
    st->checked = 0;
    st->request_start = st->pos;
    http_request req = {
        .method = "GET", .endpoint = endpoint, .path = path, .headers = &headers,
        .sink = HTTP_SINK_CALLBACK, .sink_write = stream_write, .sink_ctx = st,
        .sign = http_sign_sigv4, .sign_ctx = &s->signer, .check = stream_check_done, .check_ctx = st,
        .service_name = "S3", .counters = &s->counters, .accept_status = 416,
    };
    int rc = http_execute(s->session->http, &req, &resp, err);
    /* 416: the range starts at or past the end. Fine for the first request (nothing to deliver), but
     * after bytes were delivered the object cannot have shrunk under If-Match: a wrong answer. */
    if (rc == 0 && resp.status == 416 && st->pos != st->offset)
        rc = aws_error_set(err, AWS_ERR_INTEGRITY, "GetObject answered 416 when resuming at %" PRIu64, st->pos);
    st->resp = NULL;
    http_response_free(&resp);
    free(endpoint);
    free(path);
    kv_list_free(&headers);
    return rc;
}

/* Failures after which the rest of the range is asked for again: the transfer broke, the object did
 * not change (that would be 412 under If-Match). */
static int stream_resumable(const aws_error *err)
{
    return err->kind == AWS_ERR_NETWORK || err->kind == AWS_ERR_TIMEOUT ||
           (err->kind == AWS_ERR_INTEGRITY && strcmp(err->code, "IncompleteBody") == 0);
}

int s3_get_stream(object_client *c, const char *key, const char *etag, uint64_t offset, uint64_t len,
                         objc_stream_fn sink, void *sink_ctx, aws_error *err)
{
    s3_client *s = as_s3(c);
    if (s3_check_key(key, err))
        return AWS_ERR_ARGUMENT;
    if (!sink || (etag && !*etag))
        return aws_error_set(err, AWS_ERR_ARGUMENT, "get_stream needs a sink (and a non-empty ETag if any)");
    if (len == 0)
        return 0;
    stream_state st = {.sink = sink, .sink_ctx = sink_ctx, .offset = offset, .pos = offset,
                       .end = len > UINT64_MAX - offset ? UINT64_MAX : offset + len};
    st.want_end = st.end;
    snprintf(st.etag, sizeof st.etag, "%s", etag ? etag : "");
    for (;;) {
        int rc = stream_request(s, key, &st, err);
        if (rc == 0)
            return 0;
        if (st.stopped) {
            aws_error_clear(err);
            return OBJC_STREAM_STOPPED;
        }
        if (st.bad_answer) {
            *err = st.err_answer;
            return err->kind;
        }
        /* Every byte arrived and then the connection broke: nothing is missing. */
        if (st.checked && st.pos == st.want_end) {
            aws_error_clear(err);
            return 0;
        }
        /* Resume only after progress (so this ends), and only pinned to one object version. */
        if (st.pos == st.request_start || !stream_resumable(err) || !st.etag[0])
            return rc;
    }
}
