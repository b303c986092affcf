/* The memory cap: reservations never exceed the limit, blocked reservers wake when memory is released,
 * bounded waits time out, an impossible reservation fails at once instead of deadlocking, and the peak
 * is tracked, including under contention from several threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "memory_budget.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void test_zero_limit_is_refused(void **state)
{
    (void)state;
    memory_budget b;
    assert_int_equal(memory_budget_init(&b, 0), -1);
}

static void test_reserve_release_and_peak(void **state)
{
    (void)state;
    memory_budget b;
    assert_int_equal(memory_budget_init(&b, 1000), 0);
    assert_int_equal(memory_budget_reserve(&b, 600, 0), 0);
    assert_int_equal(memory_budget_try_reserve(&b, 400), 0);
    assert_int_equal(memory_budget_used(&b), 1000);
    assert_int_equal(memory_budget_try_reserve(&b, 1), -1);          /* full */
    assert_int_equal(memory_budget_reserve(&b, 1, 0), -1);           /* timeout 0 does not wait */
    memory_budget_release(&b, 600);
    assert_int_equal(memory_budget_used(&b), 400);
    assert_int_equal(memory_budget_try_reserve(&b, 300), 0);
    memory_budget_release(&b, 700);
    assert_int_equal(memory_budget_used(&b), 0);
    assert_int_equal(b.peak, 1000);
    assert_int_equal(memory_budget_try_reserve(&b, 0), 0);           /* nothing always fits */
    memory_budget_destroy(&b);
}

static void test_larger_than_limit_fails_at_once(void **state)
{
    (void)state;
    memory_budget b;
    assert_int_equal(memory_budget_init(&b, 1000), 0);
    double start = now_ms();
    /* An infinite wait for something that can never fit must not hang. */
    assert_int_equal(memory_budget_reserve(&b, 1001, -1), -1);
    assert_int_equal(memory_budget_try_reserve(&b, 1001), -1);
    assert_true(now_ms() - start < 100);
    assert_int_equal(memory_budget_used(&b), 0);
    memory_budget_destroy(&b);
}

static void test_timeout_is_bounded(void **state)
{
    (void)state;
    memory_budget b;
    assert_int_equal(memory_budget_init(&b, 1000), 0);
    assert_int_equal(memory_budget_reserve(&b, 900, 0), 0);
    double start = now_ms();
    assert_int_equal(memory_budget_reserve(&b, 200, 250), -1);
    double waited = now_ms() - start;
    assert_true(waited >= 240);
    assert_true(waited < 2000);
    assert_int_equal(memory_budget_used(&b), 900);                    /* a failed wait takes nothing */
    memory_budget_destroy(&b);
}

typedef struct {
    memory_budget *budget;
    uint64_t bytes;
    int timeout_ms;
    atomic_int done;
    int result;
} waiter;

static void *reserve_in_thread(void *arg)
{
    waiter *w = arg;
    w->result = memory_budget_reserve(w->budget, w->bytes, w->timeout_ms);
    atomic_store(&w->done, 1);
    return NULL;
}

static void test_release_wakes_blocked_reservers(void **state)
{
    (void)state;
    memory_budget b;
    assert_int_equal(memory_budget_init(&b, 1000), 0);
    assert_int_equal(memory_budget_reserve(&b, 1000, 0), 0);
    /* Two waiters that each need part of what will be freed: both must wake (a signal would wake one). */
    waiter w[2] = { { .budget = &b, .bytes = 400, .timeout_ms = -1 }, { .budget = &b, .bytes = 500, .timeout_ms = 5000 } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reserve_in_thread, &w[i]), 0);
    usleep(150 * 1000);
    assert_int_equal(atomic_load(&w[0].done), 0);                     /* really blocked */
    assert_int_equal(atomic_load(&w[1].done), 0);
    memory_budget_release(&b, 1000);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].result, 0);
    }
    assert_int_equal(memory_budget_used(&b), 900);
    memory_budget_destroy(&b);
}

#define CONTENDERS 6
#define ROUNDS 2000
#define LIMIT 10000

typedef struct {
    memory_budget *budget;
    unsigned seed;
    atomic_int *over_limit;
    uint64_t largest;
} contender;

static void *contend(void *arg)
{
    contender *c = arg;
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t bytes = 1 + rand_r(&c->seed) % 4000;
        if (memory_budget_reserve(c->budget, bytes, -1) != 0) {
            atomic_fetch_add(c->over_limit, 1000000);
            return NULL;
        }
        if (bytes > c->largest)
            c->largest = bytes;
        if (memory_budget_used(c->budget) > LIMIT)
            atomic_fetch_add(c->over_limit, 1);
        if (i % 7 == 0)
            sched_yield();
        memory_budget_release(c->budget, bytes);
    }
    return NULL;
}

static void test_contention_never_exceeds_limit(void **state)
{
    (void)state;
    memory_budget b;
    assert_int_equal(memory_budget_init(&b, LIMIT), 0);
    atomic_int over_limit = 0;
    contender c[CONTENDERS];
    pthread_t t[CONTENDERS];
    for (int i = 0; i < CONTENDERS; i++) {
        c[i] = (contender){ .budget = &b, .seed = 1234u + (unsigned)i, .over_limit = &over_limit };
        assert_int_equal(pthread_create(&t[i], NULL, contend, &c[i]), 0);
    }
    uint64_t largest = 0;
    for (int i = 0; i < CONTENDERS; i++) {
        pthread_join(t[i], NULL);
        if (c[i].largest > largest)
            largest = c[i].largest;
    }
    assert_int_equal(atomic_load(&over_limit), 0);
    assert_int_equal(memory_budget_used(&b), 0);
    assert_true(b.peak <= LIMIT);
    assert_true(b.peak >= largest);
    memory_budget_destroy(&b);
}

/* The idle report comes once, `ticks` ticks after the budget went back to zero, and only after use. */
static void test_idle_tick_reports_once_after_use(void **state)
{
    (void)state;
    memory_budget b;
    assert_int_equal(memory_budget_init(&b, 1000), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(memory_budget_idle_tick(&b, 3), 0);       /* never used: nothing to give back */
    assert_int_equal(memory_budget_try_reserve(&b, 100), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(memory_budget_idle_tick(&b, 3), 0);       /* in use */
    memory_budget_release(&b, 60);
    assert_int_equal(memory_budget_idle_tick(&b, 3), 0);           /* still 40 in use */
    memory_budget_release(&b, 40);
    assert_int_equal(memory_budget_idle_tick(&b, 3), 0);
    assert_int_equal(memory_budget_idle_tick(&b, 3), 0);
    assert_int_equal(memory_budget_idle_tick(&b, 3), 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(memory_budget_idle_tick(&b, 3), 0);       /* reported already */
    /* Used again, briefly: the idle count restarts from the release. */
    assert_int_equal(memory_budget_try_reserve(&b, 10), 0);
    assert_int_equal(memory_budget_idle_tick(&b, 3), 0);
    memory_budget_release(&b, 10);
    assert_int_equal(memory_budget_idle_tick(&b, 3), 0);
    assert_int_equal(memory_budget_idle_tick(&b, 3), 0);
    assert_int_equal(memory_budget_idle_tick(&b, 3), 1);
    memory_budget_destroy(&b);
}

int main(void)
{
    alarm(60);   /* a deadlock fails the test instead of hanging the suite */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_limit_is_refused),
        cmocka_unit_test(test_reserve_release_and_peak),
        cmocka_unit_test(test_larger_than_limit_fails_at_once),
        cmocka_unit_test(test_timeout_is_bounded),
        cmocka_unit_test(test_release_wakes_blocked_reservers),
        cmocka_unit_test(test_contention_never_exceeds_limit),
        cmocka_unit_test(test_idle_tick_reports_once_after_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
