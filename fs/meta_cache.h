/* Metadata cache of the mount: stat results (positive and negative) and directory listings, each valid
 * for stat_ttl_s; plus, without TTL, each object's computed summary (plaintext size, attributes)
 * validated by ETag + Last-Modified + stored size, so a listing after the TTL does not repeat HEAD,
 * tail GET and KMS for unchanged objects. Every mutation we make invalidates what it touched. Thread-safe. */
#ifndef S3CSEFS_META_CACHE_H
#define S3CSEFS_META_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>
#include "attrs.h"

typedef struct meta_cache meta_cache;

typedef struct {
    int exists;                 /* 0: negative entry (path known absent) */
    int is_dir;
    uint64_t size;              /* plaintext size */
    uint64_t stored_size;       /* object size in S3 */
    int encrypted;
    int size_known;             /* size is the plaintext size (not the stored size of an unreadable object) */
    file_attrs attrs;           /* stored attributes (mode, uid, gid, mtime) */
    char etag[80];
    time_t last_modified;
} meta_stat;

typedef struct {
    char *name;                 /* entry name, no slashes */
    int is_dir;
} meta_dirent;

meta_cache *meta_cache_new(int ttl_s, size_t max_entries);
void meta_cache_free(meta_cache *cache);

/* 1 and *out when a fresh entry exists (exists==0 for a negative one), else 0. */
int meta_cache_get(meta_cache *cache, const char *path, meta_stat *out);
void meta_cache_put(meta_cache *cache, const char *path, const meta_stat *st);
void meta_cache_put_negative(meta_cache *cache, const char *path);

/* Object summaries (no TTL): 1 and *out when the cached summary has this ETag, Last-Modified and size. */
int meta_cache_object_get(meta_cache *cache, const char *path, const char *etag, time_t last_modified,
                          uint64_t stored_size, meta_stat *out);
void meta_cache_object_put(meta_cache *cache, const char *path, const meta_stat *st);

/* Listings: 1 and a malloc'd copy (free with meta_dirents_free) when fresh, else 0. */
int meta_cache_listing_get(meta_cache *cache, const char *dir_path, meta_dirent **entries, size_t *count);
void meta_cache_listing_put(meta_cache *cache, const char *dir_path, const meta_dirent *entries, size_t count);
void meta_dirents_free(meta_dirent *entries, size_t count);

/* Drops everything cached about path (stat, negative entry, summary, its own listing) and the listing
 * of its parent directory. Call after any change to the object (upload completed, create, truncate). */
void meta_cache_invalidate(meta_cache *cache, const char *path);
/* Paths seen open for writing (note_open, from getattr: the kernel stats every file it creates) or
 * passed to meta_cache_invalidate recently: readdir adds those still open for writing, which have no
 * object yet. Children of dir_path only, as names; malloc'd array of malloc'd strings. forget drops one. */
void meta_cache_note_open(meta_cache *cache, const char *path);
size_t meta_cache_touched_children(meta_cache *cache, const char *dir_path, char ***names);
void meta_cache_forget_touched(meta_cache *cache, const char *path);
/* Same for path and everything below it (directory rename). */
void meta_cache_invalidate_tree(meta_cache *cache, const char *path);

/* Pending attributes: chmod/chown/utimens of a file that is open for writing are kept here (they are
 * not dropped by invalidation) until the file's upload is done, then applied (namespace ns_attrs.c).
 * merge: fields with has_* set replace the pending ones. get/take: 1 and *out when present. */
void meta_cache_pending_merge(meta_cache *cache, const char *path, const file_attrs *changes);
int meta_cache_pending_get(meta_cache *cache, const char *path, file_attrs *out);
int meta_cache_pending_take(meta_cache *cache, const char *path, file_attrs *out);
/* The paths with pending attributes (malloc'd array of malloc'd strings); count returned. */
size_t meta_cache_pending_paths(meta_cache *cache, char ***paths);
/* Serialises applying the pending attributes of a path with a rename of it (which carries them to the new
 * name): claims `path` (and `other` when not NULL), waiting while another thread holds a claim on either.
 * Held across the S3 copy, but per path: a slow copy of one file never delays a chmod of another.
 * begin: 0 or -ENOMEM; every successful begin needs one end with the same arguments. */
int meta_cache_apply_begin(meta_cache *cache, const char *path, const char *other);
void meta_cache_apply_end(meta_cache *cache, const char *path, const char *other);
/* Calls tick(arg) every interval_ms on a thread of the cache until meta_cache_free. 0 or -errno. */
int meta_cache_start_ticker(meta_cache *cache, void (*tick)(void *arg), void *arg, unsigned interval_ms);

#endif
