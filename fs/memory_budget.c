/* The one memory cap: a counter of reserved bytes under a mutex, with a condition variable that
 * release() signals so blocked writers wake up. Timed waits use CLOCK_MONOTONIC so a wall-clock jump
 * (NTP, suspend) neither shortens nor stretches a writer's bounded wait. */
#include "memory_budget.h"

#include <errno.h>
#include <time.h>

int memory_budget_init(memory_budget *b, uint64_t limit)
{
    /* A zero cap could never satisfy any reservation; refuse it rather than hang writers later. */
    if (!b || limit == 0)
        return -1;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&b->freed, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        pthread_cond_destroy(&b->freed);
        return -1;
    }
    b->limit = limit;
    b->used = 0;
    b->peak = 0;
    b->used_since_idle = 0;
    b->idle_ticks = 0;
    return 0;
}

void memory_budget_destroy(memory_budget *b)
{
    if (!b)
        return;
    pthread_cond_destroy(&b->freed);
    pthread_mutex_destroy(&b->lock);
}

/* Caller holds the lock. */
static int fits(const memory_budget *b, uint64_t bytes)
{
    return bytes <= b->limit - b->used;
}

/* Caller holds the lock and has checked fits(). */
static void take(memory_budget *b, uint64_t bytes)
{
    b->used += bytes;
    if (b->used > b->peak)
        b->peak = b->used;
    b->used_since_idle = 1;
}

static void deadline_after_ms(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}

int memory_budget_reserve(memory_budget *b, uint64_t bytes, int timeout_ms)
{
    if (!b)
        return -1;
    /* More than the whole cap can never fit: waiting would deadlock the caller. */
    if (bytes > b->limit)
        return -1;
    struct timespec deadline;
    if (timeout_ms >= 0)
        deadline_after_ms(&deadline, timeout_ms);

    pthread_mutex_lock(&b->lock);
    int result = 0;
    while (!fits(b, bytes)) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&b->freed, &b->lock)
                                : pthread_cond_timedwait(&b->freed, &b->lock, &deadline);
        if (rc == ETIMEDOUT && !fits(b, bytes)) {
            result = -1;
            break;
        }
        if (rc != 0 && rc != ETIMEDOUT) {
            result = -1;
            break;
        }
    }
    if (result == 0)
        take(b, bytes);
    pthread_mutex_unlock(&b->lock);
    return result;
}

int memory_budget_try_reserve(memory_budget *b, uint64_t bytes)
{
    if (!b)
        return -1;
    pthread_mutex_lock(&b->lock);
    int ok = fits(b, bytes);
    if (ok)
        take(b, bytes);
    pthread_mutex_unlock(&b->lock);
    return ok ? 0 : -1;
}

void memory_budget_release(memory_budget *b, uint64_t bytes)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    /* Releasing more than reserved is a caller bug; clamp so the budget cannot wrap around. */
    b->used = bytes > b->used ? 0 : b->used - bytes;
    pthread_mutex_unlock(&b->lock);
    /* Waiters want different sizes, so wake them all and let each re-check. */
    pthread_cond_broadcast(&b->freed);
}

int memory_budget_idle_tick(memory_budget *b, unsigned ticks)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    int report = 0;
    if (b->used > 0 || !b->used_since_idle) {
        b->idle_ticks = 0;
    } else if (++b->idle_ticks >= ticks) {
        b->idle_ticks = 0;
        b->used_since_idle = 0;
        report = 1;
    }
    pthread_mutex_unlock(&b->lock);
    return report;
}

uint64_t memory_budget_used(memory_budget *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    uint64_t used = b->used;
    pthread_mutex_unlock(&b->lock);
    return used;
}
