/* The retry policy (see http_retry.h): pure decisions on retryability and full-jitter backoff. */
#include "http_retry.h"

#include <string.h>

static const char *const retryable_codes[] = {
    /* throttling */
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "EC2ThrottledException", "PriorRequestNotComplete",
    /* transient server-side failures */
    "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
    "ServiceUnavailable", "ServiceUnavailableException", "KMSInternalException", "IDPCommunicationError",
    /* our own code for an answer that ended before the bytes it announced (a 206 cut short) */
    "IncompleteBody",
    /* RequestTimeTooSkewed is deliberately absent: every attempt is signed with the same wrong local
     * clock, so retrying only delays the error the operator must see (fix the clock: chrony/NTP). */
};

int http_retry_code_is_retryable(const char *code)
{
    if (!code || !*code)
        return 0;
    for (size_t i = 0; i < sizeof retryable_codes / sizeof retryable_codes[0]; i++)
        if (strcmp(code, retryable_codes[i]) == 0)
            return 1;
    return 0;
}

int http_retry_is_retryable(http_transport_result transport, int http_status, const char *code)
{
    switch (transport) {
    case HTTP_TRANSPORT_CONNECT:
    case HTTP_TRANSPORT_TIMEOUT:
    case HTTP_TRANSPORT_BROKEN:
        return 1;
    case HTTP_TRANSPORT_LOCAL:
        return 0;
    case HTTP_TRANSPORT_OK:
        break;
    }
    if (http_retry_code_is_retryable(code))
        return 1;
    /* 501 Not Implemented is a permanent answer (unsupported header or operation). */
    if (http_status >= 500 && http_status != 501)
        return 1;
    return http_status == 429;
}

int64_t http_retry_backoff_cap_ms(const http_retry_policy *policy, int attempts_done)
{
    int64_t max_delay = policy->max_delay_ms > 0 ? policy->max_delay_ms : 0;
    int64_t cap = policy->base_delay_ms > 0 ? policy->base_delay_ms : 0;
    for (int i = 1; i < attempts_done && cap < max_delay; i++)
        cap *= 2;
    return cap < max_delay ? cap : max_delay;
}

int64_t http_retry_jitter_ms(int64_t cap_ms, uint64_t random_value)
{
    if (cap_ms <= 0)
        return 0;
    return (int64_t)(random_value % ((uint64_t)cap_ms + 1));
}

int http_retry_next(const http_retry_policy *policy, int attempts_done, int64_t elapsed_ms, int retryable,
                    uint64_t random_value, int64_t *delay_ms)
{
    *delay_ms = 0;
    if (!retryable || attempts_done >= policy->max_attempts)
        return 0;
    int64_t delay = http_retry_jitter_ms(http_retry_backoff_cap_ms(policy, attempts_done), random_value);
    if (policy->total_timeout_ms > 0 && elapsed_ms + delay >= policy->total_timeout_ms)
        return 0;
    *delay_ms = delay;
    return 1;
}
