/* The one memory cap (-o max_memory): every write part buffer, reorder-window buffer and read prefetch
 * buffer is reserved here before it is allocated. Writers block (bounded wait) when the budget is
 * spent, which is what back-pressures a fast writer onto a slow upload; readers that cannot get memory
 * shrink their prefetch instead of waiting. */
#ifndef S3CSEFS_MEMORY_BUDGET_H
#define S3CSEFS_MEMORY_BUDGET_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    uint64_t limit;
    uint64_t used;
    uint64_t peak;
    int used_since_idle;         /* something was reserved since the last idle report */
    unsigned idle_ticks;
} memory_budget;

int memory_budget_init(memory_budget *b, uint64_t limit);
void memory_budget_destroy(memory_budget *b);
/* Blocks until `bytes` fit (or timeout_ms passes: returns -1; timeout_ms < 0 waits forever). */
int memory_budget_reserve(memory_budget *b, uint64_t bytes, int timeout_ms);
/* Never blocks: 0 if reserved, -1 if it does not fit now. */
int memory_budget_try_reserve(memory_budget *b, uint64_t bytes);
void memory_budget_release(memory_budget *b, uint64_t bytes);
uint64_t memory_budget_used(memory_budget *b);
/* Called on a regular tick: returns 1 once the budget has been back at zero for `ticks` consecutive
 * calls after having been used, then not again until it is used again. The daemon gives the heap back
 * to the system then: freed buffers otherwise keep the process at its high-water mark while idle. */
int memory_budget_idle_tick(memory_budget *b, unsigned ticks);

#endif
