/* Everything the AWS clients share: resolved configuration (region, endpoints, profile, files,
 * retry policy), the credentials provider, the HTTP connection pool and the signing-key cache.
 * One session per daemon, passed down explicitly; no globals. */
#ifndef S3CSEFS_AWS_SESSION_H
#define S3CSEFS_AWS_SESSION_H

#include "aws_error.h"

typedef struct aws_session aws_session;
typedef struct credentials_provider credentials_provider;
typedef struct http_client http_client;
typedef struct sigv4_key_cache sigv4_key_cache;

typedef struct {
    /* Explicit settings (mount options); empty strings mean "resolve from the environment". */
    char region[64];
    char s3_endpoint[512];        /* e.g. "http://127.0.0.1:5000"; else AWS_ENDPOINT_URL_S3/_URL or AWS */
    char kms_endpoint[512];
    char sts_endpoint[512];
    char profile[128];
    char credentials_file[512];
    char config_file[512];
    int path_style;               /* -1 auto (custom endpoints and dotted buckets), 0 virtual, 1 path */
    int allow_http;               /* plain http to a non-loopback host only with this set */
    /* Retry policy: exponential backoff with full jitter. */
    int max_attempts;             /* default 10 */
    int base_delay_ms;            /* default 100 */
    int max_delay_ms;             /* default 20000 */
    int total_timeout_ms;         /* bound on all attempts of one call; default 300000 */
    int connect_timeout_ms;       /* default 10000 */
    int low_speed_timeout_s;      /* abort a transfer stalled this long; default 60 */
} aws_config;

/* Fills defaults (empty strings, -1 path_style, retry numbers above). */
void aws_config_defaults(aws_config *cfg);

struct aws_session {
    aws_config config;            /* after aws_session_new: region and endpoints resolved */
    credentials_provider *credentials;
    http_client *http;
    sigv4_key_cache *key_cache;
};

/* Resolves region (option, AWS_REGION, AWS_DEFAULT_REGION, profile) and endpoints, creates the pool
 * and the credentials chain. Credentials are fetched lazily on first use. */
aws_session *aws_session_new(const aws_config *cfg, aws_error *err);
void aws_session_free(aws_session *session);
/* The endpoint base URL (scheme://host[:port]) for "s3", "kms" or "sts". */
const char *aws_session_endpoint(const aws_session *session, const char *service);
/* 1 if requests for `bucket` use path-style URLs (endpoint/bucket/key) rather than virtual-hosted ones
 * (bucket.endpoint/key): config.path_style when 0 or 1; in auto mode (-1) path style for a custom S3
 * endpoint and for bucket names that are not valid DNS labels or contain dots (TLS wildcards do not
 * cover them). */
int aws_session_use_path_style(const aws_session *session, const char *bucket);

#endif
