/* Table of paths open for writing: a small chained hash under one mutex. Lookups are short (no I/O
 * under the lock); the write state's size is read through write_file_stat, which uses atomics. */
#include "open_files.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "write_file.h"

#define TABLE_BUCKETS 256
/* An opener of a path whose last handle is finishing its upload polls at this interval. */
#define FINISHING_POLL_US 2000

typedef struct entry {
    struct entry *next;
    open_file file;
    int finishing;               /* last handle released; its upload is completing */
    int detached;                /* unlinked: out of the table, freed by its last release */
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
            if (e->file.writers > 0) {
                /* Still being written: its data is incomplete, so it must not become the object. */
                log_error("%s: still open for writing at unmount; its upload is aborted and the object "
                          "is unchanged", e->file.path);
            } else if (write_file_finish(e->file.file) != 0) {
                log_error("%s: upload at unmount failed", e->file.path);
            }
            write_file_free(e->file.file);
            free(e->file.path);
            free(e);
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static entry *entry_of(open_file *f)
{
    return (entry *)((char *)f - offsetof(entry, file));
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
    while (e && e->finishing) {
        /* The previous state's upload must land first: a new opener starts from that object. */
        pthread_mutex_unlock(&t->lock);
        usleep(FINISHING_POLL_US);
        pthread_mutex_lock(&t->lock);
        e = find(t, path);
    }
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
    while (raced && raced->finishing) {
        pthread_mutex_unlock(&t->lock);
        usleep(FINISHING_POLL_US);
        pthread_mutex_lock(&t->lock);
        raced = find(t, path);
    }
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
    entry_of(f)->finishing = 1;
    pthread_mutex_unlock(&t->lock);
    return 1;
}

/* Caller holds the lock. */
static void unlink_entry(open_file_table *t, entry *e)
{
    entry **at = &t->buckets[hash_path(e->file.path)];
    while (*at && *at != e)
        at = &(*at)->next;
    if (*at)
        *at = e->next;
}

void open_files_remove(open_file_table *t, open_file *f)
{
    pthread_mutex_lock(&t->lock);
    entry *e = entry_of(f);
    if (!e->detached)
        unlink_entry(t, e);
    pthread_mutex_unlock(&t->lock);
}

int open_files_mark_deleted(open_file_table *t, const char *path)
{
    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    entry *e = find(t, path);
    if (e) {
        write_file_mark_deleted(e->file.file);
        /* A new file created under the same name gets a state of its own. */
        unlink_entry(t, e);
        e->detached = 1;
    }
    pthread_mutex_unlock(&t->lock);
    return e != NULL;
}

int open_files_attrs(open_file_table *t, const char *path, file_attrs *out)
{
    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    entry *e = find(t, path);
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    int has = e && e->file.file && write_file_attrs(e->file.file, &mode, &uid, &gid);
    pthread_mutex_unlock(&t->lock);
    if (has) {
        out->has_mode = out->has_uid = out->has_gid = 1;
        out->mode = mode;
        out->uid = uid;
        out->gid = gid;
    }
    return has;
}

void open_file_destroy(open_file *f)
{
    if (!f)
        return;
    entry *e = entry_of(f);
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
