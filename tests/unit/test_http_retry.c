/* The retry policy (aws/http_retry.h) with a fake clock and fake random numbers: which failures are
 * retried, the full-jitter backoff bounds, and the attempt and total-time limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_retry.h"

static const http_retry_policy policy = {
    .max_attempts = 10, .base_delay_ms = 100, .max_delay_ms = 20000, .total_timeout_ms = 300000,
};

static void test_retryable_codes(void **state)
{
    (void)state;
    const char *yes[] = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "IncompleteBody",
                         "InternalError", "ServiceUnavailable", "RequestLimitExceeded", "KMSInternalException",
                         "TooManyRequestsException"};
    /* RequestTimeTooSkewed: the local clock does not change between attempts (review finding 11). */
    const char *no[] = {"RequestTimeTooSkewed", "AccessDenied", "AccessDeniedException", "NoSuchKey", "NoSuchBucket", "NotFoundException",
                        "InvalidCiphertextException", "SignatureDoesNotMatch", "DisabledException",
                        "KMSInvalidStateException", "EntityTooSmall", "InvalidPart", "slowdown", "", NULL};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(http_retry_code_is_retryable(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(http_retry_code_is_retryable(no[i]));
}

static void test_retryable_outcomes(void **state)
{
    (void)state;
    assert_true(http_retry_is_retryable(HTTP_TRANSPORT_CONNECT, 0, NULL));
    assert_false(http_retry_is_retryable(HTTP_TRANSPORT_OK, 403, "RequestTimeTooSkewed"));
    assert_true(http_retry_is_retryable(HTTP_TRANSPORT_TIMEOUT, 0, NULL));
    assert_true(http_retry_is_retryable(HTTP_TRANSPORT_BROKEN, 0, ""));
    assert_false(http_retry_is_retryable(HTTP_TRANSPORT_LOCAL, 0, NULL));
    assert_false(http_retry_is_retryable(HTTP_TRANSPORT_LOCAL, 503, "SlowDown"));   /* our own abort wins */
    int retry_status[] = {500, 502, 503, 504, 429, 599};
    int final_status[] = {200, 204, 301, 400, 401, 403, 404, 409, 411, 412, 416, 501};
    for (size_t i = 0; i < sizeof retry_status / sizeof *retry_status; i++)
        assert_true(http_retry_is_retryable(HTTP_TRANSPORT_OK, retry_status[i], NULL));
    for (size_t i = 0; i < sizeof final_status / sizeof *final_status; i++)
        assert_false(http_retry_is_retryable(HTTP_TRANSPORT_OK, final_status[i], NULL));
    /* Throttling in a 400 (KMS) and an error inside a 200 (S3 CompleteMultipartUpload). */
    assert_true(http_retry_is_retryable(HTTP_TRANSPORT_OK, 400, "ThrottlingException"));
    assert_true(http_retry_is_retryable(HTTP_TRANSPORT_OK, 200, "InternalError"));
    assert_false(http_retry_is_retryable(HTTP_TRANSPORT_OK, 400, "InvalidCiphertextException"));
    assert_false(http_retry_is_retryable(HTTP_TRANSPORT_OK, 403, "SignatureDoesNotMatch"));
}

static void test_backoff_cap_doubles_then_saturates(void **state)
{
    (void)state;
    int64_t expected = 100;
    for (int attempt = 1; attempt <= 8; attempt++, expected *= 2)
        assert_int_equal(http_retry_backoff_cap_ms(&policy, attempt), expected);   /* 100 .. 12800 */
    assert_int_equal(http_retry_backoff_cap_ms(&policy, 9), 20000);               /* 25600 capped */
    assert_int_equal(http_retry_backoff_cap_ms(&policy, 1000000), 20000);         /* no overflow */
    http_retry_policy zero = policy;
    zero.base_delay_ms = 0;
    assert_int_equal(http_retry_backoff_cap_ms(&zero, 5), 0);
}

static void test_full_jitter_bounds(void **state)
{
    (void)state;
    assert_int_equal(http_retry_jitter_ms(400, 0), 0);
    assert_int_equal(http_retry_jitter_ms(400, 400), 400);        /* the cap itself is reachable */
    assert_int_equal(http_retry_jitter_ms(400, 401), 0);
    assert_int_equal(http_retry_jitter_ms(0, 12345), 0);
    /* A spread of fake random values: every delay inside [0, cap], and the range is used evenly. */
    uint64_t x = 88172645463325252ull;
    int below_half = 0;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;   /* xorshift64 as the fake random source */
        int64_t d = http_retry_jitter_ms(1000, x);
        assert_in_range(d, 0, 1000);
        below_half += d < 500;
    }
    assert_in_range(below_half, 4500, 5500);
    assert_in_range(http_retry_jitter_ms(20000, UINT64_MAX), 0, 20000);
}

static void test_next_stops_when_not_retryable_or_exhausted(void **state)
{
    (void)state;
    int64_t delay = -1;
    assert_false(http_retry_next(&policy, 1, 0, 0, 7, &delay));
    assert_int_equal(delay, 0);
    assert_true(http_retry_next(&policy, 9, 0, 1, 7, &delay));     /* 10th attempt still allowed */
    assert_false(http_retry_next(&policy, 10, 0, 1, 7, &delay));   /* 11th is not */
    http_retry_policy once = policy;
    once.max_attempts = 1;
    assert_false(http_retry_next(&once, 1, 0, 1, 7, &delay));
}

static void test_next_respects_total_time(void **state)
{
    (void)state;
    int64_t delay;
    /* Fake random = the cap: delay after attempt 3 is exactly 400 ms. */
    assert_true(http_retry_next(&policy, 3, 299599, 1, 400, &delay));
    assert_int_equal(delay, 400);
    assert_false(http_retry_next(&policy, 3, 299600, 1, 400, &delay));   /* would end at the limit */
    assert_false(http_retry_next(&policy, 1, 300000, 1, 0, &delay));
}

/* Drives the policy like http_execute does, with a fake clock where every attempt costs 1 s. */
static void test_simulated_call_is_bounded(void **state)
{
    (void)state;
    http_retry_policy p = {.max_attempts = 50, .base_delay_ms = 1000, .max_delay_ms = 30000, .total_timeout_ms = 60000};
    int64_t clock_ms = 0, delay;
    int attempts = 0;
    uint64_t worst_random = UINT64_MAX - (UINT64_MAX % 30001) - 1;   /* a value that yields the cap for 30000 */
    for (;;) {
        attempts++;
        clock_ms += 1000;
        if (!http_retry_next(&p, attempts, clock_ms, 1, worst_random, &delay))
            break;
        assert_in_range(delay, 0, 30000);
        clock_ms += delay;
    }
    assert_true(clock_ms <= 60000);
    assert_true(attempts < 50);
    assert_true(attempts >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable_codes),
        cmocka_unit_test(test_retryable_outcomes),
        cmocka_unit_test(test_backoff_cap_doubles_then_saturates),
        cmocka_unit_test(test_full_jitter_bounds),
        cmocka_unit_test(test_next_stops_when_not_retryable_or_exhausted),
        cmocka_unit_test(test_next_respects_total_time),
        cmocka_unit_test(test_simulated_call_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
