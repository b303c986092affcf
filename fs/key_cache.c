/* Decrypted data keys by encrypted key blob (fs/key_cache.h). The 32-byte keys sit in one mlock'd slab
 * (secure_buf), one slot per entry; the blobs (not secret: they are public metadata) are ordinary heap
 * memory. A miss marks the entry "loading" so that concurrent readers of objects sharing a data key wait
 * for the one KMS call instead of making their own. */
#include "key_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lru_list.h"

typedef struct key_entry {
    uint8_t *blob;
    size_t blob_len;
    struct key_entry *hash_next;
    lru_node lru;          /* in the cache's LRU list once loaded */
    int loading;           /* a loader is running; key not valid yet */
    size_t slot;           /* index into the slab when !loading */
    time_t expires;
} key_entry;

struct key_cache {
    pthread_mutex_t lock;
    pthread_cond_t loaded;
    int ttl_s;
    size_t max_entries;
    secure_buf *slab;      /* max_entries * 32 bytes */
    size_t *free_slots;
    size_t free_count;
    key_entry **buckets;
    size_t bucket_count;
    size_t count;
    lru_list lru;          /* head = most recently used */
    time_t (*now)(void);
};

static time_t default_clock(void) { return time(NULL); }

static size_t hash_blob(const uint8_t *b, size_t len)
{
    size_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

key_cache *key_cache_new(int ttl_s, size_t max_entries)
{
    if (max_entries == 0)
        max_entries = 1;
    key_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ttl_s = ttl_s;
    c->max_entries = max_entries;
    c->now = default_clock;
    c->bucket_count = 256;
    while (c->bucket_count < max_entries)
        c->bucket_count *= 2;
    c->buckets = calloc(c->bucket_count, sizeof *c->buckets);
    c->free_slots = calloc(max_entries, sizeof *c->free_slots);
    c->slab = secure_buf_new(max_entries * 32);
    if (!c->buckets || !c->free_slots || !c->slab || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->buckets);
        free(c->free_slots);
        secure_buf_free(c->slab);
        free(c);
        return NULL;
    }
    pthread_cond_init(&c->loaded, NULL);
    for (size_t i = 0; i < max_entries; i++)
        c->free_slots[i] = max_entries - 1 - i;
    c->free_count = max_entries;
    return c;
}

void key_cache_set_clock(key_cache *c, time_t (*now)(void))
{
    c->now = now ? now : default_clock;
}

static key_entry *find(key_cache *c, const uint8_t *blob, size_t len)
{
    key_entry *e = c->buckets[hash_blob(blob, len) & (c->bucket_count - 1)];
    while (e && !(e->blob_len == len && memcmp(e->blob, blob, len) == 0))
        e = e->hash_next;
    return e;
}

static void remove_entry(key_cache *c, key_entry *e)
{
    key_entry **link = &c->buckets[hash_blob(e->blob, e->blob_len) & (c->bucket_count - 1)];
    while (*link && *link != e)
        link = &(*link)->hash_next;
    if (*link)
        *link = e->hash_next;
    if (!e->loading) {
        lru_remove(&c->lru, &e->lru);
        secure_wipe(c->slab->bytes + e->slot * 32, 32);
        c->free_slots[c->free_count++] = e->slot;
        c->count--;
    }
    free(e->blob);
    free(e);
}

/* Takes a free slot, evicting the least recently used loaded entry when the slab is full. */
static int take_slot(key_cache *c, size_t *slot)
{
    if (c->free_count == 0 && c->lru.tail)
        remove_entry(c, LRU_ENTRY(c->lru.tail, key_entry, lru));
    if (c->free_count == 0)
        return -1;
    *slot = c->free_slots[--c->free_count];
    return 0;
}

static key_entry *new_entry(key_cache *c, const uint8_t *blob, size_t len)
{
    key_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->blob = malloc(len ? len : 1))) {
        free(e);
        return NULL;
    }
    memcpy(e->blob, blob, len);
    e->blob_len = len;
    size_t b = hash_blob(blob, len) & (c->bucket_count - 1);
    e->hash_next = c->buckets[b];
    c->buckets[b] = e;
    return e;
}

/* Moves a (loading or fresh) entry to the loaded state with `key`. Caller holds the lock. */
static int store_key(key_cache *c, key_entry *e, const uint8_t key[32])
{
    if (e->loading) {
        size_t slot;
        if (take_slot(c, &slot) != 0)
            return -1;
        e->slot = slot;
        e->loading = 0;
        lru_push_front(&c->lru, &e->lru);
        c->count++;
    } else {
        lru_touch(&c->lru, &e->lru);
    }
    memcpy(c->slab->bytes + e->slot * 32, key, 32);
    e->expires = c->now() + c->ttl_s;
    return 0;
}

/* A loaded, unexpired entry gives its key; an expired one is dropped. Caller holds the lock. */
static int try_hit(key_cache *c, key_entry *e, uint8_t key_out[32])
{
    if (e->loading)
        return 0;
    if (c->now() >= e->expires) {
        remove_entry(c, e);
        return 0;
    }
    memcpy(key_out, c->slab->bytes + e->slot * 32, 32);
    lru_touch(&c->lru, &e->lru);
    return 1;
}

int key_cache_get(key_cache *c, const uint8_t *blob, size_t len, uint8_t key_out[32])
{
    pthread_mutex_lock(&c->lock);
    key_entry *e = find(c, blob, len);
    int hit = e ? try_hit(c, e, key_out) : 0;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

int key_cache_put(key_cache *c, const uint8_t *blob, size_t len, const uint8_t key[32])
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    key_entry *e = find(c, blob, len);
    if (e && e->loading) {
        pthread_mutex_unlock(&c->lock);
        return 0;                       /* the running loader will store it */
    }
    if (!e) {
        e = new_entry(c, blob, len);
        if (e)
            e->loading = 1;
    }
    if (!e)
        rc = -ENOMEM;
    else if (store_key(c, e, key) != 0) {
        remove_entry(c, e);
        rc = -ENOMEM;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int key_cache_get_or_load(key_cache *c, const uint8_t *blob, size_t len, key_cache_loader loader, void *arg,
                          uint8_t key_out[32])
{
    pthread_mutex_lock(&c->lock);
    key_entry *e;
    for (;;) {
        e = find(c, blob, len);
        if (!e)
            break;
        if (try_hit(c, e, key_out)) {
            pthread_mutex_unlock(&c->lock);
            return 1;
        }
        if (!find(c, blob, len))      /* expired and dropped */
            break;
        pthread_cond_wait(&c->loaded, &c->lock);
    }
    e = new_entry(c, blob, len);
    if (!e) {
        pthread_mutex_unlock(&c->lock);
        return -ENOMEM;
    }
    e->loading = 1;
    pthread_mutex_unlock(&c->lock);

    int rc = loader(arg, blob, len, key_out);

    pthread_mutex_lock(&c->lock);
    if (rc != 0 || store_key(c, e, key_out) != 0)
        remove_entry(c, e);             /* the next caller retries the load */
    pthread_cond_broadcast(&c->loaded);
    pthread_mutex_unlock(&c->lock);
    return rc < 0 ? rc : 0;
}

size_t key_cache_count(key_cache *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

int key_cache_locked(key_cache *c)
{
    return c->slab->locked;
}

void key_cache_free(key_cache *c)
{
    if (!c)
        return;
    for (size_t b = 0; b < c->bucket_count; b++) {
        key_entry *e = c->buckets[b];
        while (e) {
            key_entry *next = e->hash_next;
            free(e->blob);
            free(e);
            e = next;
        }
    }
    secure_buf_free(c->slab);          /* wipes every key */
    free(c->buckets);
    free(c->free_slots);
    pthread_cond_destroy(&c->loaded);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
