/* The error every AWS-layer call reports: what kind of failure, the HTTP status, and the service's own
 * error code and message (S3 XML <Code>/<Message>, KMS JSON __type/message), so the filesystem can put
 * the whole cause into one log line and map it to an errno. */
#ifndef S3CSEFS_AWS_ERROR_H
#define S3CSEFS_AWS_ERROR_H

typedef enum {
    AWS_OK = 0,
    AWS_ERR_ARGUMENT,        /* caller error (bad key name, NULL, ...) */
    AWS_ERR_NO_MEMORY,
    AWS_ERR_NETWORK,         /* could not connect / connection reset, after retries */
    AWS_ERR_TIMEOUT,         /* request or total retry time exceeded */
    AWS_ERR_SERVICE,         /* the service answered with an error status: see http_status/code */
    AWS_ERR_NOT_FOUND,       /* 404 / NoSuchKey / NotFoundException (a service error, kept apart) */
    AWS_ERR_CREDENTIALS,     /* no credentials from any source, or refresh failed */
    AWS_ERR_PARSE,           /* a response we could not parse */
    AWS_ERR_INTEGRITY,       /* checksum / ETag / size mismatch detected by us */
    AWS_ERR_CONFIG,          /* bad region/endpoint/option */
    AWS_ERR_CRYPTO,          /* key material handling failed */
    AWS_ERR_CHANGED,         /* 412 PreconditionFailed: the object no longer has the ETag we named */
} aws_err_kind;

typedef struct {
    aws_err_kind kind;
    int http_status;         /* 0 when no HTTP answer */
    char code[64];           /* service error code, e.g. "NoSuchBucket", "AccessDeniedException" */
    char message[256];       /* service message or local description */
    char request_id[64];
} aws_error;

void aws_error_clear(aws_error *err);
/* Sets kind and a printf-style message; code/http_status cleared. NULL err is fine. Returns kind. */
aws_err_kind aws_error_set(aws_error *err, aws_err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets the whole error as a service answer would (status, code, request id, message): for test
 * doubles that imitate a service. NULL err is fine. Returns kind. */
aws_err_kind aws_error_set_service(aws_error *err, aws_err_kind kind, int http_status, const char *code,
                                  const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* "S3 403 AccessDenied: Access Denied" style text for logs. */
const char *aws_error_format(const aws_error *err, char *buf, unsigned cap);
const char *aws_err_kind_name(aws_err_kind kind);

#endif
