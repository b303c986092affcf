/* key_cache: hit/miss by blob, TTL expiry (test clock), LRU eviction at max_entries, keys in locked
 * memory, one load for concurrent misses on one blob, failed loads not cached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "key_cache.h"

static time_t fake_now = 1000;
static time_t fake_clock(void) { return fake_now; }

static void key_of(int i, uint8_t key[32]) { memset(key, i & 0xff, 32); key[0] = (uint8_t)(i >> 8); }
static void blob_of(int i, uint8_t blob[40]) { memset(blob, 0xA0, 40); blob[39] = (uint8_t)i; blob[38] = (uint8_t)(i >> 8); }

static void test_hit_miss_ttl(void **state)
{
    (void)state;
    key_cache *c = key_cache_new(600, 16);
    assert_non_null(c);
    key_cache_set_clock(c, fake_clock);
    uint8_t blob[40], key[32], got[32];
    blob_of(1, blob);
    key_of(1, key);
    assert_int_equal(key_cache_get(c, blob, sizeof blob, got), 0);
    assert_int_equal(key_cache_put(c, blob, sizeof blob, key), 0);
    assert_int_equal(key_cache_get(c, blob, sizeof blob, got), 1);
    assert_memory_equal(got, key, 32);
    /* A blob that differs in its last byte, or in length, is another key. */
    uint8_t other[40];
    blob_of(2, other);
    assert_int_equal(key_cache_get(c, other, sizeof other, got), 0);
    assert_int_equal(key_cache_get(c, blob, sizeof blob - 1, got), 0);
    fake_now += 599;
    assert_int_equal(key_cache_get(c, blob, sizeof blob, got), 1);
    fake_now += 1;
    assert_int_equal(key_cache_get(c, blob, sizeof blob, got), 0);   /* expired */
    assert_int_equal(key_cache_count(c), 0);
    key_cache_free(c);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    key_cache *c = key_cache_new(600, 4);
    key_cache_set_clock(c, fake_clock);
    uint8_t blob[40], key[32], got[32];
    for (int i = 0; i < 4; i++) {
        blob_of(i, blob);
        key_of(i, key);
        assert_int_equal(key_cache_put(c, blob, sizeof blob, key), 0);
    }
    blob_of(0, blob);
    assert_int_equal(key_cache_get(c, blob, sizeof blob, got), 1);   /* 0 is now most recent */
    blob_of(4, blob);
    key_of(4, key);
    assert_int_equal(key_cache_put(c, blob, sizeof blob, key), 0);   /* evicts 1, the least recent */
    assert_int_equal(key_cache_count(c), 4);
    int present[5];
    for (int i = 0; i < 5; i++) {
        blob_of(i, blob);
        present[i] = key_cache_get(c, blob, sizeof blob, got);
        if (present[i]) {
            key_of(i, key);
            assert_memory_equal(got, key, 32);
        }
    }
    assert_int_equal(present[0], 1);
    assert_int_equal(present[1], 0);
    assert_int_equal(present[2] + present[3] + present[4], 3);
    key_cache_free(c);
}

static void test_locked_memory(void **state)
{
    (void)state;
    key_cache *c = key_cache_new(600, 4096);
    assert_non_null(c);
    /* As root (tests and the daemon) mlock succeeds; under a low RLIMIT_MEMLOCK it may not. */
    if (geteuid() == 0)
        assert_int_equal(key_cache_locked(c), 1);
    key_cache_free(c);
}

typedef struct {
    key_cache *cache;
    int loads;
    pthread_mutex_t lock;
    int fail;
} load_state;

static int slow_loader(void *arg, const uint8_t *blob, size_t len, uint8_t key[32])
{
    load_state *s = arg;
    (void)blob;
    (void)len;
    pthread_mutex_lock(&s->lock);
    s->loads++;
    pthread_mutex_unlock(&s->lock);
    usleep(50 * 1000);
    if (s->fail)
        return -EIO;
    key_of(7, key);
    return 0;
}

static void *reader(void *arg)
{
    load_state *s = arg;
    uint8_t blob[40], got[32], want[32];
    blob_of(7, blob);
    key_of(7, want);
    int rc = key_cache_get_or_load(s->cache, blob, sizeof blob, slow_loader, s, got);
    if (rc < 0 || memcmp(got, want, 32) != 0)
        return (void *)1;
    return NULL;
}

static void test_single_load_for_concurrent_misses(void **state)
{
    (void)state;
    load_state s = { key_cache_new(600, 16), 0, PTHREAD_MUTEX_INITIALIZER, 0 };
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, reader, &s);
    for (int i = 0; i < 8; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(s.loads, 1);
    key_cache_free(s.cache);
}

static void test_failed_load_not_cached(void **state)
{
    (void)state;
    load_state s = { key_cache_new(600, 16), 0, PTHREAD_MUTEX_INITIALIZER, 1 };
    uint8_t blob[40], got[32];
    blob_of(7, blob);
    assert_int_equal(key_cache_get_or_load(s.cache, blob, sizeof blob, slow_loader, &s, got), -EIO);
    s.fail = 0;
    assert_int_equal(key_cache_get_or_load(s.cache, blob, sizeof blob, slow_loader, &s, got), 0);
    assert_int_equal(key_cache_get_or_load(s.cache, blob, sizeof blob, slow_loader, &s, got), 1);
    assert_int_equal(s.loads, 2);
    key_cache_free(s.cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_ttl),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_locked_memory),
        cmocka_unit_test(test_single_load_for_concurrent_misses),
        cmocka_unit_test(test_failed_load_not_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
