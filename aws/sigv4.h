/* AWS Signature Version 4: canonical request, string to sign, cached signing key, Authorization header
 * and presigned URLs. Pure computation on strings (OpenSSL HMAC/SHA-256); no I/O. */
#ifndef S3CSEFS_SIGV4_H
#define S3CSEFS_SIGV4_H

#include <stddef.h>
#include <time.h>
#include "kvlist.h"

typedef struct {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;            /* NULL or "" when not temporary */
} sigv4_credentials;

typedef struct {
    const char *method;                   /* "GET", "PUT", ... */
    const char *path;                     /* the path exactly as sent on the wire (already URI-encoded) */
    const char *query;                    /* raw query string as sent, without '?', or NULL */
    const kv_list *headers;               /* every header to sign, including host and x-amz-date */
    const char *payload_hash;             /* lower-case hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *region;
    const char *service;                  /* "s3", "kms", "sts" */
    int normalize_path;                   /* 0 for S3 (keys are literal), 1 for other services */
    time_t now;                           /* signing time; must match the x-amz-date header */
} sigv4_request;

/* Cache of derived signing keys per (date, region, service, secret). Thread-safe. */
typedef struct sigv4_key_cache sigv4_key_cache;
sigv4_key_cache *sigv4_key_cache_new(void);
void sigv4_key_cache_free(sigv4_key_cache *cache);

/* "20150830T123600Z" into out[17]. */
void sigv4_format_amz_date(time_t t, char out[17]);
/* Intermediate products, exposed for the test vectors. Return malloc'd strings (NULL on ENOMEM). */
char *sigv4_canonical_request(const sigv4_request *req);
char *sigv4_string_to_sign(const sigv4_request *req, const char *canonical_request);
/* The full Authorization header value. cache may be NULL. Returns malloc'd string or NULL. */
char *sigv4_authorization(const sigv4_request *req, const sigv4_credentials *creds, sigv4_key_cache *cache);
/* A presigned URL (query-string auth) for method+path on host, valid `expires` seconds. */
char *sigv4_presign_url(const char *scheme_host, const sigv4_request *req, const sigv4_credentials *creds,
                        unsigned expires);
/* Lower-case hex SHA-256 of data into out[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);
/* AWS URI encoding (RFC 3986 unreserved kept); encode_slash=0 keeps '/' (object keys in paths). */
char *aws_uri_encode(const char *s, size_t len, int encode_slash);

#endif
