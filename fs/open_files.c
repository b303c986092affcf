/* Table of paths open for writing: a small chained hash under one mutex. Lookups are short (no I/O
 * under the lock); the write state's size is read through write_file_stat, which uses atomics. */
#include "open_files.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "write_file.h"

#define TABLE_BUCKETS 256

typedef struct entry {
    struct entry *next;
    open_file file;
} entry;

struct open_file_table {
    pthread_mutex_t lock;
    struct part_uploader *uploader;
    entry *buckets[TABLE_BUCKETS];
};

static unsigned hash_path(const char *path)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % TABLE_BUCKETS;
}

open_file_table *open_files_new(void)
{
    open_file_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void open_files_free(open_file_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < TABLE_BUCKETS; i++) {
        while (t->buckets[i]) {
            entry *e = t->buckets[i];
            t->buckets[i] = e->next;
            if (write_file_finish(e->file.file) != 0)
                log_error("%s: upload at unmount failed", e->file.path);
            write_file_free(e->file.file);
            free(e->file.path);
            free(e);
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Caller holds the lock. */
static entry *find(open_file_table *t, const char *path)
{
    for (entry *e = t->buckets[hash_path(path)]; e; e = e->next)
        if (strcmp(e->file.path, path) == 0)
            return e;
    return NULL;
}

int open_files_stat(open_file_table *t, const char *path, uint64_t *size, struct timespec *mtime)
{
    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    entry *e = find(t, path);
    int found = e && e->file.file && write_file_stat(e->file.file, size, mtime);
    pthread_mutex_unlock(&t->lock);
    return found;
}

int open_files_contains(open_file_table *t, const char *path)
{
    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    int found = find(t, path) != NULL;
    pthread_mutex_unlock(&t->lock);
    return found;
}

int open_files_acquire(open_file_table *t, const char *path,
                       write_file *(*make)(fs_context *ctx, const char *path, void *arg, int *err),
                       fs_context *ctx, void *arg, open_file **out)
{
    *out = NULL;
    pthread_mutex_lock(&t->lock);
    entry *e = find(t, path);
    if (e) {
        e->file.handles++;
        *out = &e->file;
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    /* make() may talk to KMS: not under the lock, so getattr of other paths never waits for it. */
    pthread_mutex_unlock(&t->lock);
    int err = 0;
    write_file *wf = make(ctx, path, arg, &err);
    if (!wf)
        return err ? err : -EIO;
    e = calloc(1, sizeof *e);
    char *copy = strdup(path);
    if (!e || !copy) {
        free(e);
        free(copy);
        write_file_free(wf);
        return -ENOMEM;
    }
    pthread_mutex_lock(&t->lock);
    entry *raced = find(t, path);
    if (raced) {
        /* Another opener of the same path got in first: share its state. */
        raced->file.handles++;
        *out = &raced->file;
        pthread_mutex_unlock(&t->lock);
        free(e);
        free(copy);
        write_file_free(wf);
        return 0;
    }
    e->file.path = copy;
    e->file.file = wf;
    e->file.handles = 1;
    unsigned b = hash_path(path);
    e->next = t->buckets[b];
    t->buckets[b] = e;
    *out = &e->file;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

int open_files_release(open_file_table *t, open_file *f)
{
    pthread_mutex_lock(&t->lock);
    if (--f->handles > 0) {
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    entry **at = &t->buckets[hash_path(f->path)];
    while (*at && &(*at)->file != f)
        at = &(*at)->next;
    if (*at)
        *at = (*at)->next;
    pthread_mutex_unlock(&t->lock);
    return 1;
}

void open_file_destroy(open_file *f)
{
    if (!f)
        return;
    entry *e = (entry *)((char *)f - offsetof(entry, file));
    free(f->path);
    free(e);
}

int open_files_handles(open_file_table *t, open_file *f)
{
    pthread_mutex_lock(&t->lock);
    int n = f->handles;
    pthread_mutex_unlock(&t->lock);
    return n;
}

int open_files_add_writer(open_file_table *t, open_file *f, int delta)
{
    pthread_mutex_lock(&t->lock);
    f->writers += delta;
    int n = f->writers;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void open_files_set_uploader(open_file_table *t, struct part_uploader *uploader)
{
    t->uploader = uploader;
}

struct part_uploader *open_files_uploader(open_file_table *t)
{
    return t->uploader;
}
