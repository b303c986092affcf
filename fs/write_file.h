/* The write state of one path open for writing, shared by all its handles. Three modes:
 *   idle    opened without O_TRUNC and not changed yet: nothing to upload; the object stays as it is.
 *   stream  in-order writes stream to S3 (write_stream). Writes a little ahead of the encrypted
 *           frontier wait in a bounded reorder window (up to reorder_window bytes, each piece taken from
 *           the memory budget as it arrives, not reserved in advance) until the gap fills. All-zero writes ahead of the frontier and truncate-up only move
 *           the logical size (a hole: zeros at close, no memory). Truncating back down to no less than
 *           the frontier is exact.
 *   spool   anything else (rewrite below the frontier, writes beyond the window, truncation below the
 *           frontier, changing an existing object) goes to an encrypted local spool (fs/spool.h),
 *           uploaded with a fresh data key on close. Leaving the stream is only possible while nothing
 *           has been uploaded yet (the streamed bytes are still in memory); later it fails with EIO.
 * finish() uploads whatever is pending and returns the file to idle (the object now holds the data), so
 * a handle may keep writing after a flush. A failed finish is final: every later write, truncate,
 * fsync and finish of this state fails with EIO (data the caller was told about is lost; storing the
 * rest would hide that). A write or truncate that fails after the stream or spool took part of it
 * makes the next finish fail too. Thread-safe. */
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
/* The same with the owner to store (write_file_new_empty uses the uid=/gid= options). */
int write_file_new_created(fs_context *ctx, part_uploader *uploader, const char *path, mode_t mode,
                           uid_t uid, gid_t gid, write_file **out);
/* The owner reported while open and stored when the stream is (re)started, e.g. after a truncate to 0;
 * the stream already started keeps the owner it was created with: prefer write_file_new_created. */
void write_file_set_owner(write_file *wf, uid_t uid, gid_t gid);
/* An existing object opened for writing without O_TRUNC: idle until changed. */
int write_file_new_existing(fs_context *ctx, part_uploader *uploader, const char *path, write_file **out);

/* Like pwrite: size, or -EIO / -ENOSPC / -EFBIG / -ENOMEM. */
ssize_t write_file_write(write_file *wf, const char *buf, size_t size, off_t offset);
/* 0 or -errno. */
int write_file_truncate(write_file *wf, uint64_t size);
/* Extends the file to size when it is smaller now (fallocate); never shrinks it. The current size is
 * checked under the file's lock (for an unchanged file: the object's size, one HEAD). 0 or -errno. */
int write_file_grow(write_file *wf, uint64_t size);
/* The path was unlinked while open: finish discards pending changes instead of uploading them. */
void write_file_mark_deleted(write_file *wf);
/* 1 with the st_mode and owner a created file will be stored with; 0 (outputs still set) when the file
 * was not created by this state (its attributes are the object's). */
int write_file_attrs(write_file *wf, mode_t *mode, uid_t *uid, gid_t *gid);
/* Waits for the parts handed over so far; 0 or -EIO (an upload has failed). */
int write_file_fsync(write_file *wf);
/* Reads back what was written: 1..size bytes, 0 at the end, -EAGAIN when the file is idle (read the
 * object instead), -EIO when the bytes are already streamed away and not kept. */
ssize_t write_file_read(write_file *wf, char *buf, size_t size, off_t offset);
/* The same; may_leave_stream 0 (read-only handles): a streaming file gives -EAGAIN (read the stored
 * object) rather than moving its stream into the spool, so a reader never disturbs the upload. */
ssize_t write_file_read_ex(write_file *wf, char *buf, size_t size, off_t offset, int may_leave_stream);
/* Number of objects this state has stored so far (a reader opened before a change must reopen). */
uint64_t write_file_uploads(write_file *wf);
/* Uploads pending changes: 0 when the object is durably stored (or nothing changed, or the file was
 * deleted), -EIO otherwise (the upload was aborted; the previous object, if any, is unchanged; the
 * state stays failed). The file is idle afterwards. */
int write_file_finish(write_file *wf);
/* 1 with the logical size and mtime while there are changes not yet uploaded, else 0. Never blocks on
 * I/O. */
int write_file_stat(write_file *wf, uint64_t *size, struct timespec *mtime);
/* 1 when bytes were written or the size changed since the last finish (a file only created or opened
 * with O_TRUNC is 0: see write_file_new_empty in write_file.c), or the state has failed (so that close
 * reports it). */
int write_file_has_changes(write_file *wf);
/* Discards pending changes (aborts uploads) and frees. */
void write_file_free(write_file *wf);

#endif
