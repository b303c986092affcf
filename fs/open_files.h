/* The files open for writing, by mount path. Every writer of one path shares one open_file (and so one
 * upload): the entry lives from the first open for writing until the last release, and knows the
 * file's current logical size so that getattr/readdir show a file being written with its growing size.
 * The write state itself (stream, reorder window, spool) is fs/write_file.h; this table only finds it. */
#ifndef S3CSEFS_OPEN_FILES_H
#define S3CSEFS_OPEN_FILES_H

#include <stdint.h>
#include <time.h>
#include "attrs.h"
#include "fs_context.h"

typedef struct write_file write_file;       /* fs/write_file.h */

typedef struct open_file {
    char *path;                  /* mount path, e.g. "/dir/db.bak" */
    write_file *file;            /* the write state, owned by this entry */
    int handles;                 /* open FUSE handles on this entry */
    int writers;                 /* of which opened for writing */
} open_file;

open_file_table *open_files_new(void);
/* Frees the table (at unmount). Entries whose writers all closed (kept by a reader) are finished as by
 * a last release; entries still open for writing are aborted: an incomplete file never becomes the
 * object. */
void open_files_free(open_file_table *t);

/* 1 and the current logical size and modification time when `path` has changes not yet uploaded
 * (created, written or resized; also while its last release is uploading them), else 0.
 * Either out pointer may be NULL. Called by getattr/readdir; never blocks on I/O. */
int open_files_stat(open_file_table *t, const char *path, uint64_t *size, struct timespec *mtime);

/* 1 while path has an entry: open (a write state, any handle) or its last release still uploading. */
int open_files_contains(open_file_table *t, const char *path);

/* Finds the entry for path, or inserts the one made by make(ctx, path, arg) (which returns NULL with
 * *err set to a -errno on failure). Adds one handle. 0 and *out, or the -errno. */
int open_files_acquire(open_file_table *t, const char *path,
                       write_file *(*make)(fs_context *ctx, const char *path, void *arg, int *err),
                       fs_context *ctx, void *arg, open_file **out);
/* Drops one handle. Returns 1 when it was the last one: the entry then stays in the table, marked
 * finishing (getattr still sees it, rename waits, a new opener of the path waits for it), while the
 * caller finishes the upload; the caller then calls open_files_remove and frees it (open_file_destroy).
 * 0 otherwise. */
int open_files_release(open_file_table *t, open_file *f);
/* Takes a finished entry out of the table (after open_files_release returned 1). */
void open_files_remove(open_file_table *t, open_file *f);
/* unlink of path: its open write state, if any, is discarded at its last release instead of uploaded,
 * and leaves the table (a new file of that name starts afresh). 1 when there was one, else 0. */
int open_files_mark_deleted(open_file_table *t, const char *path);
/* 1 with has_mode/has_uid/has_gid and the values set in *out when path is open with a write state that
 * created the file (its mode and owner are not in S3 yet), else 0 (*out untouched). */
int open_files_attrs(open_file_table *t, const char *path, file_attrs *out);
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
