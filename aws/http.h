/* HTTP for every AWS call (S3, KMS, STS, IMDS, ECS): a thread-safe pool of libcurl handles with
 * keep-alive, and one call, http_execute(), that runs a request with retries (http_retry.h policy).
 * Before EVERY attempt the request's sign callback is invoked, so each retry carries a fresh date and
 * fresh credentials. Request bodies stream from the caller's memory (or a read callback) without a copy;
 * successful response bodies land directly in the caller's buffer (or a growable buffer, or a write
 * callback); error bodies are parsed (S3 XML <Error>, KMS/STS JSON __type/message) into aws_error. */
#ifndef S3CSEFS_HTTP_H
#define S3CSEFS_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "aws_error.h"
#include "aws_session.h"
#include "http_retry.h"
#include "kvlist.h"
#include "sigv4.h"

typedef struct http_client http_client;
typedef struct http_request http_request;

/* Transport settings of a client (the session fills them from aws_config). */
typedef struct {
    http_retry_policy retry;      /* default policy; a request may override it */
    int connect_timeout_ms;
    int low_speed_timeout_s;      /* abort an attempt whose transfer stalls (< 1 byte/s) this long */
    int max_idle_handles;         /* curl handles kept for reuse (each keeps its connections); 0 = 64 */
} http_client_config;

/* Copies the retry/timeout numbers of an aws_config. */
void http_client_config_from_aws(const aws_config *cfg, http_client_config *out);
http_client *http_client_new(const http_client_config *cfg, aws_error *err);
void http_client_free(http_client *client);
/* The client's default retry policy (for callers that derive a shorter one, e.g. IMDS). */
const http_retry_policy *http_client_retry_policy(const http_client *client);

/* Optional counters (any pointer may be NULL), updated with relaxed atomics. */
typedef struct {
    _Atomic uint64_t *requests;        /* attempts made */
    _Atomic uint64_t *retries;         /* attempts after the first */
    _Atomic uint64_t *errors;          /* calls that finally failed */
    _Atomic uint64_t *bytes_sent;      /* request body bytes */
    _Atomic uint64_t *bytes_received;  /* successful response body bytes */
} http_counters;

/* Called before every attempt. Appends the headers that authenticate this attempt (host, x-amz-date,
 * x-amz-content-sha256, x-amz-security-token, authorization...) to `out`, which starts empty each time.
 * The request's own headers are sent as well. Return 0, or an aws_err_kind with err set (gives up). */
typedef int (*http_sign_fn)(void *sign_ctx, const http_request *req, kv_list *out, aws_error *err);

/* Streaming request body: fill up to cap bytes, return the count (0 = end) or -1 to abort. */
typedef ssize_t (*http_read_fn)(void *ctx, uint8_t *buf, size_t cap);
/* Rewind a streamed body to its start before a retry; 0 or -1 (then the call is not retried). */
typedef int (*http_rewind_fn)(void *ctx);
/* Streaming response body sink: consume len bytes; return 0, or -1 to abort the call. */
typedef int (*http_write_fn)(void *ctx, const uint8_t *data, size_t len);
/* Inspects a 2xx answer (e.g. S3's 200 with an <Error> body): 0 if it is a success, else an aws_err_kind
 * with err filled (err->code decides whether it is retried). */
typedef int (*http_check_fn)(void *ctx, const uint8_t *body, size_t len, aws_error *err);

typedef enum {
    HTTP_SINK_GROW = 0,          /* response->body malloc'd and grown (default) */
    HTTP_SINK_BUFFER,            /* into sink_buf, at most sink_cap bytes (more is AWS_ERR_INTEGRITY) */
    HTTP_SINK_CALLBACK,          /* to sink_write; a retry after delivered bytes needs sink_reset */
    HTTP_SINK_DISCARD,
} http_sink_kind;

struct http_request {
    const char *method;                /* "GET", "PUT", "POST", "HEAD", "DELETE" */
    const char *endpoint;              /* "scheme://host[:port]" with no trailing slash */
    const char *path;                  /* as sent on the wire, already URI-encoded, starting with '/' */
    const char *query;                 /* raw query string without '?', or NULL */
    const kv_list *headers;            /* extra headers (lower-case names), may be NULL */

    /* Body: from memory (body/body_len), or streamed (body_read/body_rewind with body_len known). */
    const uint8_t *body;
    size_t body_len;
    http_read_fn body_read;
    http_rewind_fn body_rewind;
    void *body_ctx;

    /* Successful (2xx) response body. Error bodies never reach the sink. */
    http_sink_kind sink;
    uint8_t *sink_buf;
    size_t sink_cap;
    http_write_fn sink_write;
    void *sink_ctx;

    http_sign_fn sign;                 /* NULL: unsigned (IMDS, ECS) */
    void *sign_ctx;
    http_check_fn check;               /* optional 2xx body check */
    void *check_ctx;

    int accept_status;                 /* a non-2xx status that is a success without body (S3 GET: 416) */
    const http_retry_policy *retry;    /* NULL: the client's policy */
    int timeout_ms;                    /* per-attempt limit, 0 = only the low-speed abort */
    const char *service_name;          /* "S3", "KMS", "STS", ... for messages only */
    const http_counters *counters;     /* optional */
    /* Never through a proxy (http_proxy/https_proxy/all_proxy are ignored): for link-local credential
     * endpoints (IMDS, ECS), whose tokens and answers must not leave the host. */
    int no_proxy;
    /* HTTP_SINK_CALLBACK: called before a retry when the failed attempt delivered bytes, so the sink
     * can restart from byte 0; 0, or -1 (then the call is not retried). NULL: no retry after bytes. */
    http_rewind_fn sink_reset;
};

typedef struct {
    int status;                  /* of the last attempt (0 when no HTTP answer) */
    kv_list headers;             /* lower-case names */
    uint8_t *body;               /* HTTP_SINK_GROW only; NUL-terminated (not counted in body_len) */
    size_t body_len;             /* bytes delivered to the sink, whatever its kind */
    int attempts;
} http_response;

void http_response_init(http_response *resp);
void http_response_free(http_response *resp);   /* frees body and headers; resp is reusable */

/* Runs the request with retries. Returns 0 on a 2xx answer that passed `check`; otherwise an
 * aws_err_kind with err filled: AWS_ERR_NOT_FOUND (404, NoSuchKey, NoSuchUpload, NotFoundException),
 * AWS_ERR_SERVICE (other error statuses, with http_status/code/message/request_id), AWS_ERR_NETWORK
 * (could not connect / connection broken after the retries), AWS_ERR_TIMEOUT, or what sign/check/the
 * sink returned. resp must be initialised; on failure it still holds the last status and headers. */
int http_execute(http_client *client, const http_request *req, http_response *resp, aws_error *err);

/* Parses an error body into err->code/message/request_id: S3/STS XML (<Error><Code>...; also
 * <ErrorResponse><Error>...), or JSON with "__type" (the part after '#') and "message"/"Message".
 * Returns 1 if a code was found. */
int http_parse_error_body(const uint8_t *body, size_t len, aws_error *err);

/* Ready-made SigV4 signer for http_request.sign. With `credentials` NULL, credentials come from the
 * session's provider at every attempt. payload_hash NULL means: hex SHA-256 of the memory body
 * ("UNSIGNED-PAYLOAD" is the S3 choice over https). S3 must set normalize_path 0. */
typedef struct {
    aws_session *session;               /* credentials provider and signing-key cache */
    const sigv4_credentials *credentials;  /* fixed credentials instead of the provider, or NULL */
    const char *service;                /* "s3", "kms", "sts" */
    const char *region;
    const char *payload_hash;
    int normalize_path;
    int add_content_sha256_header;      /* S3 wants x-amz-content-sha256; KMS/STS do not need it */
} http_sigv4_signer;
int http_sign_sigv4(void *signer, const http_request *req, kv_list *out, aws_error *err);

/* "host[:port]" of an endpoint "scheme://host[:port]" as the Host header carries it (default ports
 * dropped). Returns 0, or -1 if it does not fit in cap or is malformed. */
int http_endpoint_host(const char *endpoint, char *out, size_t cap);

#endif
