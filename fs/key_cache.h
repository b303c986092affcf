/* Cache of decrypted data keys, keyed by the encrypted key blob (the KMS CiphertextBlob), so objects
 * that share a data key, and repeated opens/stats, cost no KMS call. Keys live in one mlock'd, wiped
 * slab (secure_buf); entries expire after ttl_s and the least recently used is evicted beyond
 * max_entries. Concurrent misses on one blob wait for a single load (one KMS call per key). */
#ifndef S3CSEFS_KEY_CACHE_H
#define S3CSEFS_KEY_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "secure_mem.h"

typedef struct key_cache key_cache;

/* Produces the 32-byte key for a blob into `key` (locked memory owned by the cache's caller).
 * Returns 0 or a negative errno. */
typedef int (*key_cache_loader)(void *arg, const uint8_t *blob, size_t blob_len, uint8_t key[32]);

key_cache *key_cache_new(int ttl_s, size_t max_entries);
void key_cache_free(key_cache *cache);                 /* wipes every key */

/* 1 and the key copied into key_out when cached and fresh, else 0. */
int key_cache_get(key_cache *cache, const uint8_t *blob, size_t blob_len, uint8_t key_out[32]);
/* Inserts (or refreshes) a key. 0 or -ENOMEM. */
int key_cache_put(key_cache *cache, const uint8_t *blob, size_t blob_len, const uint8_t key[32]);
/* Cached key, or one call of loader (other threads asking for the same blob wait for it). Returns 1 on a
 * cache hit, 0 when loaded, or the loader's negative errno. */
int key_cache_get_or_load(key_cache *cache, const uint8_t *blob, size_t blob_len,
                          key_cache_loader loader, void *arg, uint8_t key_out[32]);
size_t key_cache_count(key_cache *cache);
/* 1 when the key slab is mlock'd. */
int key_cache_locked(key_cache *cache);
/* For tests: the clock the cache uses (default time(NULL)). */
void key_cache_set_clock(key_cache *cache, time_t (*now)(void));

#endif
