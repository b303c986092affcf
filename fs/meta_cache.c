/* The stat / negative / listing cache and the per-object summary cache (fs/meta_cache.h). One hash
 * table of entries keyed by mount path; each entry may hold a fresh stat, a summary and a listing.
 * Entries are kept in LRU order and the oldest are dropped beyond max_entries. */
#include "meta_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lru_list.h"

typedef struct meta_entry {
    char *path;
    struct meta_entry *hash_next;
    lru_node lru;
    int has_stat;
    double stat_time;
    meta_stat stat;
    int has_summary;
    meta_stat summary;
    int has_listing;
    double listing_time;
    meta_dirent *listing;
    size_t listing_count;
} meta_entry;

typedef struct pending_attrs {
    char *path;
    file_attrs changes;
    struct pending_attrs *next;
} pending_attrs;

/* A path whose pending attributes are being stored or carried by a rename right now. */
typedef struct applying_path {
    char *path;
    struct applying_path *next;
} applying_path;

#define TOUCHED_MAX 1024

struct meta_cache {
    pthread_mutex_t lock;
    char *touched[TOUCHED_MAX];     /* ring of recently invalidated paths */
    size_t touched_next;
    pending_attrs *pending;
    pthread_mutex_t apply_lock;     /* guards `applying` only; never held across I/O */
    pthread_cond_t apply_done;
    applying_path *applying;
    pthread_t ticker;
    int ticker_running, ticker_stop;
    pthread_cond_t ticker_wake;
    void (*tick)(void *arg);
    void *tick_arg;
    unsigned tick_ms;
    int ttl_s;
    size_t max_entries;
    meta_entry **buckets;
    size_t bucket_count;       /* power of two */
    size_t count;
    lru_list lru;                      /* head = most recently used */
};

static double now_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t hash_path(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void meta_dirents_free(meta_dirent *entries, size_t count)
{
    if (!entries)
        return;
    for (size_t i = 0; i < count; i++)
        free(entries[i].name);
    free(entries);
}

static meta_dirent *dirents_copy(const meta_dirent *src, size_t count)
{
    meta_dirent *dst = calloc(count ? count : 1, sizeof *dst);
    if (!dst)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        dst[i].is_dir = src[i].is_dir;
        dst[i].name = strdup(src[i].name);
        if (!dst[i].name) {
            meta_dirents_free(dst, i);
            return NULL;
        }
    }
    return dst;
}

meta_cache *meta_cache_new(int ttl_s, size_t max_entries)
{
    meta_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ttl_s = ttl_s < 0 ? 0 : ttl_s;
    c->max_entries = max_entries ? max_entries : 100000;
    c->bucket_count = 1024;
    c->buckets = calloc(c->bucket_count, sizeof *c->buckets);
    if (!c->buckets || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->apply_lock, NULL);
    pthread_cond_init(&c->apply_done, NULL);
    pthread_cond_init(&c->ticker_wake, NULL);
    return c;
}

static void entry_free(meta_entry *e)
{
    meta_dirents_free(e->listing, e->listing_count);
    free(e->path);
    free(e);
}

static meta_entry *find(meta_cache *c, const char *path)
{
    meta_entry *e = c->buckets[hash_path(path) & (c->bucket_count - 1)];
    while (e && strcmp(e->path, path) != 0)
        e = e->hash_next;
    return e;
}

static void remove_entry(meta_cache *c, meta_entry *e)
{
    meta_entry **link = &c->buckets[hash_path(e->path) & (c->bucket_count - 1)];
    while (*link && *link != e)
        link = &(*link)->hash_next;
    if (*link)
        *link = e->hash_next;
    lru_remove(&c->lru, &e->lru);
    c->count--;
    entry_free(e);
}

static void grow(meta_cache *c)
{
    size_t new_count = c->bucket_count * 2;
    meta_entry **nb = calloc(new_count, sizeof *nb);
    if (!nb)
        return;                     /* longer chains, still correct */
    for (size_t i = 0; i < c->bucket_count; i++) {
        meta_entry *e = c->buckets[i];
        while (e) {
            meta_entry *next = e->hash_next;
            size_t b = hash_path(e->path) & (new_count - 1);
            e->hash_next = nb[b];
            nb[b] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = nb;
    c->bucket_count = new_count;
}

/* Finds or creates the entry of path and marks it most recently used. NULL on ENOMEM. */
static meta_entry *touch(meta_cache *c, const char *path)
{
    meta_entry *e = find(c, path);
    if (e) {
        lru_touch(&c->lru, &e->lru);
        return e;
    }
    e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path))) {
        free(e);
        return NULL;
    }
    if (c->count + 1 > c->bucket_count)
        grow(c);
    size_t b = hash_path(path) & (c->bucket_count - 1);
    e->hash_next = c->buckets[b];
    c->buckets[b] = e;
    lru_push_front(&c->lru, &e->lru);
    c->count++;
    while (c->count > c->max_entries && c->lru.tail != &e->lru)
        remove_entry(c, LRU_ENTRY(c->lru.tail, meta_entry, lru));
    return e;
}

static int fresh(const meta_cache *c, double stamp)
{
    return c->ttl_s > 0 && now_monotonic() - stamp < c->ttl_s;
}

int meta_cache_get(meta_cache *c, const char *path, meta_stat *out)
{
    int hit = 0;
    pthread_mutex_lock(&c->lock);
    meta_entry *e = find(c, path);
    if (e && e->has_stat && fresh(c, e->stat_time)) {
        *out = e->stat;
        hit = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void meta_cache_put(meta_cache *c, const char *path, const meta_stat *st)
{
    if (c->ttl_s <= 0)
        return;
    pthread_mutex_lock(&c->lock);
    meta_entry *e = touch(c, path);
    if (e) {
        e->stat = *st;
        e->has_stat = 1;
        e->stat_time = now_monotonic();
    }
    pthread_mutex_unlock(&c->lock);
}

void meta_cache_put_negative(meta_cache *c, const char *path)
{
    meta_stat absent;
    memset(&absent, 0, sizeof absent);
    meta_cache_put(c, path, &absent);
}

int meta_cache_object_get(meta_cache *c, const char *path, const char *etag, time_t last_modified,
                          uint64_t stored_size, meta_stat *out)
{
    int hit = 0;
    pthread_mutex_lock(&c->lock);
    meta_entry *e = find(c, path);
    if (e && e->has_summary && e->summary.last_modified == last_modified &&
        e->summary.stored_size == stored_size && strcmp(e->summary.etag, etag) == 0) {
        *out = e->summary;
        hit = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void meta_cache_object_put(meta_cache *c, const char *path, const meta_stat *st)
{
    pthread_mutex_lock(&c->lock);
    meta_entry *e = touch(c, path);
    if (e) {
        e->summary = *st;
        e->has_summary = 1;
    }
    pthread_mutex_unlock(&c->lock);
}

int meta_cache_listing_get(meta_cache *c, const char *dir_path, meta_dirent **entries, size_t *count)
{
    int hit = 0;
    pthread_mutex_lock(&c->lock);
    meta_entry *e = find(c, dir_path);
    if (e && e->has_listing && fresh(c, e->listing_time)) {
        *entries = dirents_copy(e->listing, e->listing_count);
        if (*entries) {
            *count = e->listing_count;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void meta_cache_listing_put(meta_cache *c, const char *dir_path, const meta_dirent *entries, size_t count)
{
    if (c->ttl_s <= 0)
        return;
    meta_dirent *copy = dirents_copy(entries, count);
    if (!copy)
        return;
    pthread_mutex_lock(&c->lock);
    meta_entry *e = touch(c, dir_path);
    if (e) {
        meta_dirents_free(e->listing, e->listing_count);
        e->listing = copy;
        e->listing_count = count;
        e->has_listing = 1;
        e->listing_time = now_monotonic();
        copy = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    meta_dirents_free(copy, count);
}

/* The parent of "/a/b" is "/a"; of "/a" it is "/". */
static void drop_parent_listing(meta_cache *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return;
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *parent = strndup(path, len);
    if (!parent)
        return;
    meta_entry *p = find(c, parent);
    if (p && p->has_listing) {
        meta_dirents_free(p->listing, p->listing_count);
        p->listing = NULL;
        p->listing_count = 0;
        p->has_listing = 0;
    }
    free(parent);
}

static void remember_touched(meta_cache *c, const char *path)
{
    for (size_t i = 0; i < TOUCHED_MAX; i++)
        if (c->touched[i] && strcmp(c->touched[i], path) == 0)
            return;
    free(c->touched[c->touched_next]);
    c->touched[c->touched_next] = strdup(path);
    c->touched_next = (c->touched_next + 1) % TOUCHED_MAX;
}

void meta_cache_note_open(meta_cache *c, const char *path)
{
    pthread_mutex_lock(&c->lock);
    remember_touched(c, path);
    pthread_mutex_unlock(&c->lock);
}

size_t meta_cache_touched_children(meta_cache *c, const char *dir_path, char ***names)
{
    size_t dlen = strcmp(dir_path, "/") == 0 ? 0 : strlen(dir_path);
    pthread_mutex_lock(&c->lock);
    char **out = calloc(TOUCHED_MAX, sizeof *out);
    size_t n = 0;
    for (size_t i = 0; out && i < TOUCHED_MAX; i++) {
        const char *p = c->touched[i];
        if (!p || strncmp(p, dir_path, dlen) != 0 || p[dlen] != '/' || p[dlen + 1] == '\0' ||
            strchr(p + dlen + 1, '/'))
            continue;
        if ((out[n] = strdup(p + dlen + 1)))
            n++;
    }
    pthread_mutex_unlock(&c->lock);
    *names = out;
    return n;
}

void meta_cache_forget_touched(meta_cache *c, const char *path)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < TOUCHED_MAX; i++)
        if (c->touched[i] && strcmp(c->touched[i], path) == 0) {
            free(c->touched[i]);
            c->touched[i] = NULL;
        }
    pthread_mutex_unlock(&c->lock);
}

void meta_cache_invalidate(meta_cache *c, const char *path)
{
    pthread_mutex_lock(&c->lock);
    remember_touched(c, path);
    meta_entry *e = find(c, path);
    if (e)
        remove_entry(c, e);
    drop_parent_listing(c, path);
    pthread_mutex_unlock(&c->lock);
}

void meta_cache_invalidate_tree(meta_cache *c, const char *path)
{
    size_t len = strlen(path);
    int is_root = strcmp(path, "/") == 0;
    pthread_mutex_lock(&c->lock);
    for (size_t b = 0; b < c->bucket_count; b++) {
        meta_entry *e = c->buckets[b];
        while (e) {
            meta_entry *next = e->hash_next;
            if (is_root || strcmp(e->path, path) == 0 ||
                (strncmp(e->path, path, len) == 0 && e->path[len] == '/'))
                remove_entry(c, e);
            e = next;
        }
    }
    drop_parent_listing(c, path);
    pthread_mutex_unlock(&c->lock);
}

void meta_cache_free(meta_cache *c)
{
    if (!c)
        return;
    if (c->ticker_running) {
        pthread_mutex_lock(&c->lock);
        c->ticker_stop = 1;
        pthread_cond_broadcast(&c->ticker_wake);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->ticker, NULL);
    }
    for (size_t i = 0; i < TOUCHED_MAX; i++)
        free(c->touched[i]);
    while (c->pending) {
        pending_attrs *p = c->pending;
        c->pending = p->next;
        free(p->path);
        free(p);
    }
    while (c->applying) {
        applying_path *a = c->applying;
        c->applying = a->next;
        free(a->path);
        free(a);
    }
    pthread_cond_destroy(&c->apply_done);
    pthread_mutex_destroy(&c->apply_lock);
    pthread_cond_destroy(&c->ticker_wake);
    for (size_t b = 0; b < c->bucket_count; b++) {
        meta_entry *e = c->buckets[b];
        while (e) {
            meta_entry *next = e->hash_next;
            entry_free(e);
            e = next;
        }
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---- pending attributes ---- */

static void merge_attrs(file_attrs *into, const file_attrs *from)
{
    if (from->has_mode) {
        into->mode = from->mode;
        into->has_mode = 1;
    }
    if (from->has_uid) {
        into->uid = from->uid;
        into->has_uid = 1;
    }
    if (from->has_gid) {
        into->gid = from->gid;
        into->has_gid = 1;
    }
    if (from->has_mtime) {
        into->mtime = from->mtime;
        into->has_mtime = 1;
    }
}

static pending_attrs **find_pending(meta_cache *c, const char *path)
{
    pending_attrs **link = &c->pending;
    while (*link && strcmp((*link)->path, path) != 0)
        link = &(*link)->next;
    return link;
}

void meta_cache_pending_merge(meta_cache *c, const char *path, const file_attrs *changes)
{
    pthread_mutex_lock(&c->lock);
    pending_attrs **link = find_pending(c, path);
    if (!*link) {
        pending_attrs *p = calloc(1, sizeof *p);
        if (p && (p->path = strdup(path))) {
            p->next = c->pending;
            c->pending = p;
            link = &c->pending;
        } else {
            free(p);
        }
    }
    if (*link)
        merge_attrs(&(*link)->changes, changes);
    pthread_mutex_unlock(&c->lock);
}

int meta_cache_pending_get(meta_cache *c, const char *path, file_attrs *out)
{
    pthread_mutex_lock(&c->lock);
    pending_attrs **link = find_pending(c, path);
    int found = *link != NULL;
    if (found)
        *out = (*link)->changes;
    pthread_mutex_unlock(&c->lock);
    return found;
}

int meta_cache_pending_take(meta_cache *c, const char *path, file_attrs *out)
{
    pthread_mutex_lock(&c->lock);
    pending_attrs **link = find_pending(c, path);
    pending_attrs *p = *link;
    if (p) {
        *out = p->changes;
        *link = p->next;
        free(p->path);
        free(p);
    }
    pthread_mutex_unlock(&c->lock);
    return p != NULL;
}

size_t meta_cache_pending_paths(meta_cache *c, char ***paths)
{
    pthread_mutex_lock(&c->lock);
    size_t n = 0;
    for (pending_attrs *p = c->pending; p; p = p->next)
        n++;
    char **out = calloc(n ? n : 1, sizeof *out);
    size_t got = 0;
    for (pending_attrs *p = c->pending; out && p; p = p->next)
        if ((out[got] = strdup(p->path)))
            got++;
    pthread_mutex_unlock(&c->lock);
    *paths = out;
    return out ? got : 0;
}

static int is_applying(meta_cache *c, const char *path)
{
    for (applying_path *a = c->applying; path && a; a = a->next)
        if (strcmp(a->path, path) == 0)
            return 1;
    return 0;
}

static int push_applying(meta_cache *c, const char *path)
{
    applying_path *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(path))) {
        free(a);
        return -ENOMEM;
    }
    a->next = c->applying;
    c->applying = a;
    return 0;
}

static void pop_applying(meta_cache *c, const char *path)
{
    for (applying_path **link = &c->applying; *link; link = &(*link)->next) {
        if (strcmp((*link)->path, path) == 0) {
            applying_path *a = *link;
            *link = a->next;
            free(a->path);
            free(a);
            return;
        }
    }
}

int meta_cache_apply_begin(meta_cache *c, const char *path, const char *other)
{
    if (other && strcmp(other, path) == 0)
        other = NULL;
    pthread_mutex_lock(&c->apply_lock);
    /* Both claims at once, so two renames crossing each other's names cannot deadlock. */
    while (is_applying(c, path) || is_applying(c, other))
        pthread_cond_wait(&c->apply_done, &c->apply_lock);
    int rc = push_applying(c, path);
    if (rc == 0 && other && (rc = push_applying(c, other)) != 0)
        pop_applying(c, path);
    pthread_mutex_unlock(&c->apply_lock);
    return rc;
}

void meta_cache_apply_end(meta_cache *c, const char *path, const char *other)
{
    if (other && strcmp(other, path) == 0)
        other = NULL;
    pthread_mutex_lock(&c->apply_lock);
    pop_applying(c, path);
    if (other)
        pop_applying(c, other);
    pthread_cond_broadcast(&c->apply_done);
    pthread_mutex_unlock(&c->apply_lock);
}

static void *ticker_main(void *arg)
{
    meta_cache *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->ticker_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += c->tick_ms / 1000;
        until.tv_nsec += (long)(c->tick_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->ticker_wake, &c->lock, &until);
        if (c->ticker_stop)
            break;
        pthread_mutex_unlock(&c->lock);
        c->tick(c->tick_arg);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int meta_cache_start_ticker(meta_cache *c, void (*tick)(void *arg), void *arg, unsigned interval_ms)
{
    if (c->ticker_running)
        return -EBUSY;
    c->tick = tick;
    c->tick_arg = arg;
    c->tick_ms = interval_ms ? interval_ms : 100;
    int rc = pthread_create(&c->ticker, NULL, ticker_main, c);
    if (rc != 0)
        return -rc;
    c->ticker_running = 1;
    return 0;
}
