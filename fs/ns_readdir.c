/* readdir: ListObjectsV2 with delimiter "/" (all pages); directories from common prefixes and markers.
 * ListObjectsV2 carries no user metadata, so each object without a valid cached summary needs a HEAD
 * (and for encrypted objects without a stored length, a 32-byte tail GET and the data key): those run
 * on a small pool of threads, and the results fill the entries' attributes (readdirplus). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "namespace.h"
#include "object_info.h"
#include "open_files.h"

#define STAT_WORKERS 8

typedef struct {
    char *name;
    int is_dir;
    int have_stat;
    int stat_rc;
    meta_stat st;
    /* from the listing, to validate cached summaries */
    char etag[80];
    time_t last_modified;
    uint64_t size;
    int instruction_hint;
} dir_item;

typedef struct {
    fs_context *ctx;
    const char *dir_path;
    const char *prefix;
    dir_item *items;
    size_t count;
    size_t next;                 /* next item to stat */
    pthread_mutex_t lock;
} stat_job;

static char *child_path(const char *dir_path, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", strcmp(dir_path, "/") == 0 ? "" : dir_path, name) < 0)
        return NULL;
    return p;
}

static void *stat_worker(void *arg)
{
    stat_job *job = arg;
    for (;;) {
        pthread_mutex_lock(&job->lock);
        while (job->next < job->count && (job->items[job->next].is_dir || job->items[job->next].have_stat))
            job->next++;
        size_t i = job->next < job->count ? job->next++ : job->count;
        pthread_mutex_unlock(&job->lock);
        if (i >= job->count)
            return NULL;
        dir_item *it = &job->items[i];
        char *path = child_path(job->dir_path, it->name);
        char *key = NULL;
        if (path && asprintf(&key, "%s%s", job->prefix, it->name) >= 0) {
            it->stat_rc = ns_object_stat(job->ctx, path, key, it->instruction_hint, &it->st);
            if (it->stat_rc == 0) {
                it->have_stat = 1;
                /* Keyed by what the listing said, so the next listing finds it. */
                snprintf(it->st.etag, sizeof it->st.etag, "%s", it->etag);
                it->st.last_modified = it->last_modified;
                it->st.stored_size = it->size;
                if (job->ctx->meta) {
                    meta_cache_object_put(job->ctx->meta, path, &it->st);
                    meta_cache_put(job->ctx->meta, path, &it->st);
                }
            }
        } else {
            it->stat_rc = -ENOMEM;
        }
        free(key);
        free(path);
    }
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const dir_item *)a)->name, ((const dir_item *)b)->name);
}

static dir_item *find_item(dir_item *items, size_t count, const char *name)
{
    dir_item probe = { .name = (char *)name };
    return bsearch(&probe, items, count, sizeof *items, cmp_name);
}

static void free_items(dir_item *items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(items[i].name);
    free(items);
}

static int add_item(dir_item **items, size_t *count, size_t *cap, const char *name, int is_dir)
{
    if (*count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        dir_item *n = realloc(*items, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        *items = n;
        *cap = ncap;
    }
    dir_item *it = &(*items)[*count];
    memset(it, 0, sizeof *it);
    it->name = strdup(name);
    if (!it->name)
        return -ENOMEM;
    it->is_dir = is_dir;
    (*count)++;
    return 0;
}

/* Lists every page under prefix into items (sorted by name, duplicates of a dir and file kept once). */
static int list_all(fs_context *ctx, const char *prefix, dir_item **items_out, size_t *count_out)
{
    dir_item *items = NULL;
    size_t count = 0, cap = 0;
    size_t plen = strlen(prefix);
    char *token = NULL;
    int rc = 0;
    do {
        objc_list_page page;
        memset(&page, 0, sizeof page);
        aws_error err;
        aws_error_clear(&err);
        if (ctx->objects->ops->list_page(ctx->objects, prefix, "/", token, 1000, &page, &err) != 0) {
            rc = ns_aws_errno(&err, "LIST", prefix);
            break;
        }
        for (size_t i = 0; rc == 0 && i < page.prefix_count; i++) {
            const char *p = page.prefixes[i];
            if (strncmp(p, prefix, plen) != 0)
                continue;
            char *name = strndup(p + plen, strlen(p + plen) - 1);   /* without the trailing '/' */
            if (!name) {
                rc = -ENOMEM;
                break;
            }
            if (*name)
                rc = add_item(&items, &count, &cap, name, 1);
            free(name);
        }
        for (size_t i = 0; rc == 0 && i < page.object_count; i++) {
            const objc_entry *e = &page.objects[i];
            if (strncmp(e->key, prefix, plen) != 0 || e->key[plen] == '\0' || strchr(e->key + plen, '/'))
                continue;                   /* the directory's own marker */
            rc = add_item(&items, &count, &cap, e->key + plen, 0);
            if (rc == 0) {
                dir_item *it = &items[count - 1];
                snprintf(it->etag, sizeof it->etag, "%s", e->etag);
                it->last_modified = e->last_modified;
                it->size = e->size;
            }
        }
        free(token);
        token = page.next_token ? strdup(page.next_token) : NULL;
        int more = page.next_token != NULL;
        objc_list_page_free(&page);
        if (more && !token && rc == 0)
            rc = -ENOMEM;
    } while (rc == 0 && token);
    free(token);
    if (rc != 0) {
        free_items(items, count);
        return rc;
    }
    if (count)
        qsort(items, count, sizeof *items, cmp_name);
    /* A name that is both a file and a directory: show the file (like s3fs) and drop the duplicate. */
    size_t w = 0;
    for (size_t r = 0; r < count; r++) {
        if (w > 0 && strcmp(items[w - 1].name, items[r].name) == 0) {
            if (!items[r].is_dir) {
                free(items[w - 1].name);
                items[w - 1] = items[r];
            } else {
                free(items[r].name);
            }
            continue;
        }
        items[w++] = items[r];
    }
    *items_out = items;
    *count_out = w;
    return 0;
}

/* Files created through this mount and still open for writing have no object yet (it appears when the
 * upload completes): add them from the recently touched paths. */
static void add_open_files(fs_context *ctx, const char *dir_path, dir_item **items, size_t *count)
{
    if (!ctx->meta || !ctx->open_files)
        return;
    char **names = NULL;
    size_t n = meta_cache_touched_children(ctx->meta, dir_path, &names);
    size_t cap = *count, added = 0;
    for (size_t i = 0; i < n; i++) {
        char *cpath = child_path(dir_path, names[i]);
        if (cpath && open_files_contains(ctx->open_files, cpath)) {
            int listed = 0;
            for (size_t k = 0; k < *count && !listed; k++)
                listed = strcmp((*items)[k].name, names[i]) == 0;
            if (!listed &&
                add_item(items, count, &cap, names[i], 0) == 0) {
                dir_item *it = &(*items)[*count - 1];
                it->have_stat = ns_stat(ctx, cpath, &it->st) == 0;
                added++;
            }
        } else if (cpath) {
            meta_cache_forget_touched(ctx->meta, cpath);
        }
        free(cpath);
        free(names[i]);
    }
    free(names);
    if (added)
        qsort(*items, *count, sizeof **items, cmp_name);
}

/* Stats every file that has no fresh cached stat or valid summary, in parallel. */
static void stat_items(fs_context *ctx, const char *dir_path, const char *prefix, dir_item *items, size_t count)
{
    size_t missing = 0;
    for (size_t i = 0; i < count; i++) {
        dir_item *it = &items[i];
        if (it->is_dir)
            continue;
        char *path = child_path(dir_path, it->name);
        if (path && ctx->meta &&
            (meta_cache_get(ctx->meta, path, &it->st) ||
             meta_cache_object_get(ctx->meta, path, it->etag, it->last_modified, it->size, &it->st)) &&
            it->st.exists && !it->st.is_dir)
            it->have_stat = 1;
        free(path);
        if (!it->have_stat) {
            char iname[1024];
            snprintf(iname, sizeof iname, "%s" INSTRUCTION_SUFFIX, it->name);
            it->instruction_hint = find_item(items, count, iname) != NULL;
            missing++;
        }
    }
    if (missing == 0)
        return;
    stat_job job = { ctx, dir_path, prefix, items, count, 0, PTHREAD_MUTEX_INITIALIZER };
    size_t nthreads = missing < STAT_WORKERS ? missing : STAT_WORKERS;
    pthread_t threads[STAT_WORKERS];
    size_t started = 0;
    for (; started + 1 < nthreads; started++)
        if (pthread_create(&threads[started], NULL, stat_worker, &job) != 0)
            break;
    stat_worker(&job);                      /* the calling thread works too */
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

static void fill_one(fs_context *ctx, const char *dir_path, void *buf, ns_fill_fn filler, int plus,
                     const char *name, const meta_stat *ms)
{
    struct stat st;
    uint64_t open_size;
    struct timespec open_mtime;
    if (ms) {
        meta_stat shown = *ms;
        char *cpath = child_path(dir_path, name);
        if (cpath)
            ns_overlay_pending(ctx, cpath, &shown);
        free(cpath);
        ns_fill_stat(ctx, &shown, &st);
        if (!ms->is_dir && ctx->open_files) {
            char *path = child_path(dir_path, name);
            if (path && open_files_stat(ctx->open_files, path, &open_size, &open_mtime) == 1) {
                st.st_size = (off_t)open_size;
                st.st_mtim = open_mtime;
            }
            free(path);
        }
        filler(buf, name, &st, plus);
    } else {
        filler(buf, name, NULL, 0);
    }
}

int ns_readdir(fs_context *ctx, const char *path, void *buf, ns_fill_fn filler, int plus)
{
    filler(buf, ".", NULL, 0);
    filler(buf, "..", NULL, 0);

    meta_dirent *cached = NULL;
    size_t cached_count = 0;
    if (ctx->meta && meta_cache_listing_get(ctx->meta, path, &cached, &cached_count)) {
        for (size_t i = 0; i < cached_count; i++) {
            meta_stat ms;
            char *cpath = child_path(path, cached[i].name);
            int have = cpath && meta_cache_get(ctx->meta, cpath, &ms) && ms.exists;
            free(cpath);
            fill_one(ctx, path, buf, filler, plus, cached[i].name, have ? &ms : NULL);
        }
        meta_dirents_free(cached, cached_count);
        return 0;
    }

    char *prefix = ns_dir_prefix(ctx, path);
    if (!prefix)
        return -ENOMEM;
    dir_item *items = NULL;
    size_t count = 0;
    int rc = list_all(ctx, prefix, &items, &count);
    if (rc != 0) {
        free(prefix);
        return rc;
    }
    if (count == 0 && strcmp(path, "/") != 0) {
        meta_stat self;
        rc = ns_stat(ctx, path, &self);    /* an empty listing of a path that is not a directory */
        if (rc == 0 && !self.is_dir)
            rc = -ENOTDIR;
        if (rc != 0) {
            free(prefix);
            free_items(items, count);
            return rc;
        }
    }
    add_open_files(ctx, path, &items, &count);
    stat_items(ctx, path, prefix, items, count);

    meta_dirent *listing = calloc(count ? count : 1, sizeof *listing);
    for (size_t i = 0; i < count; i++) {
        dir_item *it = &items[i];
        meta_stat dir_ms;
        const meta_stat *ms = NULL;
        if (it->is_dir) {
            memset(&dir_ms, 0, sizeof dir_ms);
            dir_ms.exists = 1;
            dir_ms.is_dir = 1;
            ms = &dir_ms;
        } else if (it->have_stat) {
            ms = &it->st;
            if (ctx->meta) {
                char *cpath = child_path(path, it->name);
                if (cpath)
                    meta_cache_put(ctx->meta, cpath, ms);
                free(cpath);
            }
        }
        fill_one(ctx, path, buf, filler, plus && ms && !it->is_dir, it->name, ms);
        if (listing) {
            listing[i].name = it->name;
            listing[i].is_dir = it->is_dir;
        }
    }
    if (listing && ctx->meta)
        meta_cache_listing_put(ctx->meta, path, listing, count);
    free(listing);                          /* names belong to items */
    free_items(items, count);
    free(prefix);
    return 0;
}
