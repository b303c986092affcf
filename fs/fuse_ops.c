/* FUSE dispatch of the I/O operations. A FUSE handle (fi->fh) is an fs_handle: files opened for writing
 * share the path's open_file (one upload per path); read-only handles use a read_handle from the read
 * path, opened lazily. close() reports the upload result: flush finishes the upload when this is the
 * only handle open for writing on the path, otherwise it waits for the parts sent so far; the last
 * release finishes whatever is left (its errors can only be logged). */
#define FUSE_USE_VERSION 31
#include "fuse_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include "fs_context.h"
#include "log.h"
#include "meta_cache.h"
#include "open_files.h"
#include "part_uploader.h"
#include "read_path.h"
#include "write_file.h"

typedef struct {
    open_file *writer;          /* the path's write state; NULL for plain readers */
    int can_write;
    read_handle *reader;        /* opened on first read that the write state cannot serve */
    uint64_t reader_uploads;    /* the write state's upload count when reader was opened */
    read_handle **retired;      /* readers replaced after an upload; other threads may still use them
                                 * until release */
    size_t retired_count;
    pthread_mutex_t lock;
} fs_handle;

static fs_context *context(void)
{
    return fuse_get_context()->private_data;
}

static fs_handle *handle_of(struct fuse_file_info *fi)
{
    return (fs_handle *)(uintptr_t)fi->fh;
}

static fs_handle *new_handle(void)
{
    fs_handle *h = calloc(1, sizeof *h);
    if (h)
        pthread_mutex_init(&h->lock, NULL);
    return h;
}

static void free_handle(fs_handle *h)
{
    for (size_t i = 0; i < h->retired_count; i++)
        read_handle_close(h->retired[i]);
    free(h->retired);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

typedef struct {
    mode_t mode;
    int empty;
} make_args;

static write_file *make_write_file(fs_context *ctx, const char *path, void *arg, int *err)
{
    make_args *a = arg;
    write_file *wf = NULL;
    part_uploader *up = open_files_uploader(ctx->open_files);
    if (!a->empty) {
        *err = write_file_new_existing(ctx, up, path, &wf);
    } else if (a->mode) {
        /* A file created by a caller belongs to it (as on a local file system), unless uid=/gid= force
         * it. Known before the stream starts, so the object is stored with it. */
        const struct fuse_context *fc = fuse_get_context();
        *err = write_file_new_created(ctx, up, path, a->mode, ctx->options.uid_set ? ctx->options.uid : fc->uid,
                                      ctx->options.gid_set ? ctx->options.gid : fc->gid, &wf);
    } else {
        *err = write_file_new_empty(ctx, up, path, 0, &wf);
    }
    return wf;
}

/* Drops a writer's hold on its path; the last one finishes the upload. */
static int drop_writer(fs_context *ctx, open_file *of)
{
    if (!open_files_release(ctx->open_files, of))
        return 0;
    /* The entry stays visible until the object is stored: a stat, chmod or rename arriving right
     * after close() must not fall between the open file and the object it becomes. */
    int rc = write_file_finish(of->file);
    if (rc != 0)
        log_error("%s: upload at last close failed", of->path);
    open_files_remove(ctx->open_files, of);
    write_file_free(of->file);
    open_file_destroy(of);
    ctx->counters.open_files--;
    return rc;
}

static int open_writer(fs_context *ctx, const char *path, int empty, mode_t mode, fs_handle *h)
{
    make_args args = { .mode = mode, .empty = empty };
    int rc = open_files_acquire(ctx->open_files, path, make_write_file, ctx, &args, &h->writer);
    if (rc != 0)
        return rc;
    ctx->counters.open_files++;
    h->can_write = 1;
    open_files_add_writer(ctx->open_files, h->writer, 1);
    /* The path was already open: O_TRUNC/create still empties the shared state. */
    if (empty && open_files_handles(ctx->open_files, h->writer) > 1) {
        rc = write_file_truncate(h->writer->file, 0);
        if (rc != 0) {
            open_files_add_writer(ctx->open_files, h->writer, -1);
            drop_writer(ctx, h->writer);
            h->writer = NULL;
        }
    }
    return rc;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    fs_context *ctx = context();
    int acc = fi->flags & O_ACCMODE;
    fs_handle *h = new_handle();
    if (!h)
        return -ENOMEM;
    int rc = 0;
    if (acc == O_RDONLY) {
        /* A file with unsent changes is read from its write state, everything else from S3. */
        if (open_files_stat(ctx->open_files, path, NULL, NULL)) {
            make_args args = { .empty = 0 };
            rc = open_files_acquire(ctx->open_files, path, make_write_file, ctx, &args, &h->writer);
            if (rc == 0)
                ctx->counters.open_files++;
        } else {
            rc = read_handle_open(ctx, path, &h->reader);
        }
    } else if (ctx->options.read_only) {
        rc = -EROFS;
    } else {
        rc = open_writer(ctx, path, (fi->flags & O_TRUNC) != 0, 0, h);
    }
    if (rc != 0) {
        free_handle(h);
        return rc;
    }
    fi->fh = (uintptr_t)h;
    return 0;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    fs_context *ctx = context();
    if (ctx->options.read_only)
        return -EROFS;
    if (!S_ISREG(mode) && (mode & S_IFMT) != 0)
        return -EOPNOTSUPP;
    fs_handle *h = new_handle();
    if (!h)
        return -ENOMEM;
    int rc = open_writer(ctx, path, 1, S_IFREG | (mode & 07777), h);
    if (rc != 0) {
        free_handle(h);
        return rc;
    }
    /* The lookup before create cached the name as absent. */
    if (ctx->meta)
        meta_cache_invalidate(ctx->meta, path);
    fi->fh = (uintptr_t)h;
    return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi)
{
    fs_context *ctx = context();
    fs_handle *h = handle_of(fi);
    uint64_t uploads = 0;
    if (h->writer) {
        ssize_t n = write_file_read_ex(h->writer->file, buf, size, offset, h->can_write);
        if (n != -EAGAIN)
            return (int)n;
        uploads = write_file_uploads(h->writer->file);
    }
    pthread_mutex_lock(&h->lock);
    int rc = 0;
    if (h->reader && h->reader_uploads != uploads) {
        /* The write state stored a new object since: the reader's key and ETag are those of the old. */
        read_handle **grown = realloc(h->retired, (h->retired_count + 1) * sizeof *grown);
        if (grown) {
            h->retired = grown;
            h->retired[h->retired_count++] = h->reader;
            h->reader = NULL;
        } else {
            rc = -ENOMEM;
        }
    }
    if (rc == 0 && !h->reader) {
        rc = read_handle_open(ctx, path, &h->reader);
        h->reader_uploads = uploads;
    }
    read_handle *reader = h->reader;
    pthread_mutex_unlock(&h->lock);
    if (rc != 0)
        return rc;
    return (int)read_handle_read(reader, buf, size, offset);
}

static int op_write(const char *path, const char *buf, size_t size, off_t offset, struct fuse_file_info *fi)
{
    (void)path;
    fs_handle *h = handle_of(fi);
    if (!h->writer || !h->can_write)
        return -EBADF;
    return (int)write_file_write(h->writer->file, buf, size, offset);
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    fs_context *ctx = context();
    fs_handle *h = handle_of(fi);
    if (!h->writer || !h->can_write)
        return 0;
    /* A shell redirection flushes the fd it dup2()s away before writing anything: uploading the
     * still-empty new file then would only cost a PUT; the last release creates it if nothing comes. */
    if (open_files_add_writer(ctx->open_files, h->writer, 0) == 1 && write_file_has_changes(h->writer->file))
        return write_file_finish(h->writer->file);
    return write_file_fsync(h->writer->file);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    fs_context *ctx = context();
    fs_handle *h = handle_of(fi);
    if (h->writer && h->can_write)
        open_files_add_writer(ctx->open_files, h->writer, -1);
    if (h->writer)
        drop_writer(ctx, h->writer);
    read_handle_close(h->reader);
    free_handle(h);
    return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    fs_context *ctx = context();
    fs_handle *h = handle_of(fi);
    if (!h->writer)
        return 0;
    /* fsync=complete: for programs whose close() result is lost (Windows programs under Wine), the
     * flush before closing is the last chance to report a failed upload. Writes after it re-read the
     * object, so this suits programs that fsync once, at the end. */
    if (ctx->options.fsync_completes && h->can_write &&
        open_files_add_writer(ctx->open_files, h->writer, 0) == 1 && write_file_has_changes(h->writer->file))
        return write_file_finish(h->writer->file);
    return write_file_fsync(h->writer->file);
}

static int truncate_path(fs_context *ctx, const char *path, uint64_t size)
{
    fs_handle h = { 0 };
    int rc = open_writer(ctx, path, 0, 0, &h);
    if (rc != 0)
        return rc;
    rc = write_file_truncate(h.writer->file, size);
    open_files_add_writer(ctx->open_files, h.writer, -1);
    int finish_rc = drop_writer(ctx, h.writer);
    return rc != 0 ? rc : finish_rc;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    fs_context *ctx = context();
    if (size < 0)
        return -EINVAL;
    if (ctx->options.read_only)
        return -EROFS;
    fs_handle *h = fi ? handle_of(fi) : NULL;
    if (h && h->writer && h->can_write)
        return write_file_truncate(h->writer->file, (uint64_t)size);
    return truncate_path(ctx, path, (uint64_t)size);
}

static int op_fallocate(const char *path, int mode, off_t offset, off_t length, struct fuse_file_info *fi)
{
    (void)path;
    fs_handle *h = handle_of(fi);
    if (!h || !h->writer || !h->can_write)
        return -EBADF;
    if (mode & ~FALLOC_FL_KEEP_SIZE)
        return -EOPNOTSUPP;
    if (mode & FALLOC_FL_KEEP_SIZE)
        return 0;
    /* Reserving space means nothing for S3; extending the size is a hole. It never shrinks a file. */
    if (offset < 0 || length <= 0)
        return -EINVAL;
    return write_file_grow(h->writer->file, (uint64_t)offset + (uint64_t)length);
}

static int op_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    memset(st, 0, sizeof *st);
    st->f_bsize = FS_STATFS_BLOCK_SIZE;
    st->f_frsize = FS_STATFS_BLOCK_SIZE;
    st->f_blocks = FS_STATFS_TOTAL_BYTES / FS_STATFS_BLOCK_SIZE;
    st->f_bfree = st->f_blocks;
    st->f_bavail = st->f_blocks;
    st->f_files = 1ULL << 32;
    st->f_ffree = st->f_files;
    st->f_favail = st->f_files;
    st->f_namemax = 1024;
    return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    fs_context *ctx = context();
    /* open(O_TRUNC) arrives as one call, not a truncate(0) followed by open: the upload starts fresh. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* Larger writes mean fewer calls per byte (the kernel caps this at its own max_pages). */
    conn->max_write = 1024 * 1024;
    cfg->nullpath_ok = 0;
    /* unlink of an open file deletes the object now (no .fuse_hidden rename, which S3 cannot do for a
     * file still being written); ns_unlink marks its write state deleted (open_files_mark_deleted) so
     * its last close uploads nothing. */
    cfg->hard_remove = 1;
    return ctx;
}

static void op_destroy(void *private_data)
{
    (void)private_data;
}

void fs_ops_install_io(struct fuse_operations *ops)
{
    ops->init = op_init;
    ops->destroy = op_destroy;
    ops->open = op_open;
    ops->create = op_create;
    ops->read = op_read;
    ops->write = op_write;
    ops->flush = op_flush;
    ops->release = op_release;
    ops->fsync = op_fsync;
    ops->truncate = op_truncate;
    ops->fallocate = op_fallocate;
    ops->statfs = op_statfs;
}
