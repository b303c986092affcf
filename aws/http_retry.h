/* The retry policy of every AWS request, as pure functions (no clock, no randomness of its own) so that
 * unit tests can drive it with a fake clock and fake random numbers: which failures are worth another
 * attempt, and how long to wait before it (exponential backoff with full jitter, bounded by a maximum
 * delay, a maximum number of attempts and a total time for the whole call). */
#ifndef S3CSEFS_HTTP_RETRY_H
#define S3CSEFS_HTTP_RETRY_H

#include <stdint.h>

typedef struct {
    int max_attempts;         /* attempts in total, >= 1 (1 = never retry) */
    int base_delay_ms;        /* backoff base: the cap of the first delay */
    int max_delay_ms;         /* no single delay is longer than this */
    int total_timeout_ms;     /* no retry starts (or sleeps) past this much time since the first attempt */
} http_retry_policy;

/* How an attempt ended, as far as the transport can tell. */
typedef enum {
    HTTP_TRANSPORT_OK = 0,    /* an HTTP answer arrived (any status) */
    HTTP_TRANSPORT_CONNECT,   /* DNS, refused, unreachable, TLS handshake */
    HTTP_TRANSPORT_TIMEOUT,   /* connect or transfer timeout, stalled transfer */
    HTTP_TRANSPORT_BROKEN,    /* reset, closed mid-transfer, send/receive error */
    HTTP_TRANSPORT_LOCAL,     /* our own failure (callback abort, out of memory): never retried */
} http_transport_result;

/* 1 if the service error code means "try again later" (throttling, internal errors, request timeouts,
 * a body cut short): SlowDown, Throttling, ThrottlingException, RequestTimeout, InternalError,
 * ServiceUnavailable, RequestLimitExceeded, KMSInternalException, TooManyRequestsException,
 * IncompleteBody, ... Not RequestTimeTooSkewed: the local clock is wrong and stays wrong.
 * NULL or "" is not retryable by itself. */
int http_retry_code_is_retryable(const char *code);

/* 1 if an attempt that ended this way should be retried: transport failures except LOCAL, HTTP 5xx,
 * 429, and any status whose service code is retryable (e.g. 400 ThrottlingException, 200 with an
 * <Error><Code>InternalError body). */
int http_retry_is_retryable(http_transport_result transport, int http_status, const char *code);

/* The backoff cap before attempt number `attempts_done + 1`: min(max_delay, base * 2^(attempts_done-1)),
 * attempts_done >= 1. Saturates instead of overflowing. */
int64_t http_retry_backoff_cap_ms(const http_retry_policy *policy, int attempts_done);

/* Full jitter: a delay uniformly drawn from [0, cap] using `random_value` (any 64-bit random number). */
int64_t http_retry_jitter_ms(int64_t cap_ms, uint64_t random_value);

/* The whole decision after a failed attempt. Returns 1 and *delay_ms when another attempt should be
 * made, 0 when the call must give up now (not retryable, attempts exhausted, or the delay would end
 * past total_timeout_ms counted from the first attempt). */
int http_retry_next(const http_retry_policy *policy, int attempts_done, int64_t elapsed_ms, int retryable,
                    uint64_t random_value, int64_t *delay_ms);

#endif
