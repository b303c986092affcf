/* The files open for writing, by mount path. Every writer of one path shares one open_file (and so one
 * upload): the entry lives from the first open for writing until the last release, and knows the
 * file's current logical size so that getattr/readdir show a file being written with its growing size.
 * The write state itself (stream, reorder window, spool) is fs/write_file.h; this table only finds it. */
#ifndef S3CSEFS_OPEN_FILES_H
#define S3CSEFS_OPEN_FILES_H

#include <stdint.h>
#include <time.h>
#include "fs_context.h"

typedef struct write_file write_file;       /* fs/write_file.h */

typedef struct open_file {
    char *path;                  /* mount path, e.g. "/dir/db.bak" */
    write_file *file;            /* the write state, owned by this entry */
    int handles;                 /* open FUSE handles on this entry */
    int writers;                 /* of which opened for writing */
} open_file;

open_file_table *open_files_new(void);
/* Frees the table; entries still present are finished as by a last release. */
void open_files_free(open_file_table *t);

/* 1 and the current logical size and modification time when `path` is open for writing, else 0.
 * Either out pointer may be NULL. Called by getattr/readdir; never blocks on I/O. */
int open_files_stat(open_file_table *t, const char *path, uint64_t *size, struct timespec *mtime);

/* 1 when path is open for writing (any handle), else 0. */
int open_files_contains(open_file_table *t, const char *path);

/* Finds the entry for path, or inserts the one made by make(ctx, path, arg) (which returns NULL with
 * *err set to a -errno on failure). Adds one handle. 0 and *out, or the -errno. */
int open_files_acquire(open_file_table *t, const char *path,
                       write_file *(*make)(fs_context *ctx, const char *path, void *arg, int *err),
                       fs_context *ctx, void *arg, open_file **out);
/* Drops one handle. Returns 1 when it was the last one: the entry is then out of the table and the
 * caller finishes and frees it (open_file_destroy); 0 otherwise. */
int open_files_release(open_file_table *t, open_file *f);
void open_file_destroy(open_file *f);       /* frees the entry (not its write_file) */
/* Number of handles on f right now. */
int open_files_handles(open_file_table *t, open_file *f);
/* Adds delta (+1/-1) to f's count of handles open for writing; returns the new count. */
int open_files_add_writer(open_file_table *t, open_file *f, int delta);

/* The daemon's UploadPart worker pool lives with the write side's table (set once at startup). */
struct part_uploader;
void open_files_set_uploader(open_file_table *t, struct part_uploader *uploader);
struct part_uploader *open_files_uploader(open_file_table *t);

#endif
