/* The write state of one path open for writing, shared by all its handles. Three modes:
 *   idle    opened without O_TRUNC and not changed yet: nothing to upload; the object stays as it is.
 *   stream  in-order writes stream to S3 (write_stream). Writes a little ahead of the encrypted
 *           frontier wait in a bounded reorder window (reorder_window bytes, reserved from the memory
 *           budget) until the gap fills. All-zero writes ahead of the frontier and truncate-up only move
 *           the logical size (a hole: zeros at close, no memory). Truncating back down to no less than
 *           the frontier is exact.
 *   spool   anything else (rewrite below the frontier, writes beyond the window, truncation below the
 *           frontier, changing an existing object) goes to an encrypted local spool (fs/spool.h),
 *           uploaded with a fresh data key on close. Leaving the stream is only possible while nothing
 *           has been uploaded yet (the streamed bytes are still in memory); later it fails with EIO.
 * finish() uploads whatever is pending and returns the file to idle (the object now holds the data), so
 * a handle may keep writing after a flush. Thread-safe. */
#ifndef S3CSEFS_WRITE_FILE_H
#define S3CSEFS_WRITE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "fs_context.h"
#include "part_uploader.h"

typedef struct write_file write_file;

/* A file that is empty now (created, or opened with O_TRUNC): streams from the first write, and uploads
 * an (empty) object on finish even when nothing is written. mode: st_mode to store (0: none). */
int write_file_new_empty(fs_context *ctx, part_uploader *uploader, const char *path, mode_t mode,
                         write_file **out);
/* The owner stored with the object (default: the uid=/gid= options); for files created by a caller. */
void write_file_set_owner(write_file *wf, uid_t uid, gid_t gid);
/* An existing object opened for writing without O_TRUNC: idle until changed. */
int write_file_new_existing(fs_context *ctx, part_uploader *uploader, const char *path, write_file **out);

/* Like pwrite: size, or -EIO / -ENOSPC / -EFBIG / -ENOMEM. */
ssize_t write_file_write(write_file *wf, const char *buf, size_t size, off_t offset);
/* 0 or -errno. */
int write_file_truncate(write_file *wf, uint64_t size);
/* Waits for the parts handed over so far; 0 or -EIO (an upload has failed). */
int write_file_fsync(write_file *wf);
/* Reads back what was written: 1..size bytes, 0 at the end, -EAGAIN when the file is idle (read the
 * object instead), -EIO when the bytes are already streamed away and not kept. */
ssize_t write_file_read(write_file *wf, char *buf, size_t size, off_t offset);
/* Uploads pending changes: 0 when the object is durably stored (or nothing changed), -EIO otherwise
 * (the upload was aborted; the previous object, if any, is unchanged). The file is idle afterwards. */
int write_file_finish(write_file *wf);
/* 1 with the logical size and mtime while there are changes not yet uploaded, else 0. Never blocks on
 * I/O. */
int write_file_stat(write_file *wf, uint64_t *size, struct timespec *mtime);
/* 1 when bytes were written or the size changed since the last finish (a file only created is 0). */
int write_file_has_changes(write_file *wf);
/* Discards pending changes (aborts uploads) and frees. */
void write_file_free(write_file *wf);

#endif
