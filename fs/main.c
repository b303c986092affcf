/* s3csefs: mounts an S3 bucket/prefix with FUSE; files matching the encryption policy are stored in
 * the S3 client-side-encryption format RDS for SQL Server restores from.
 *
 *   s3csefs BUCKET[:/PREFIX] MOUNTPOINT [-f] [-d] [-s] [-o options]
 *
 * Without -f the process forks first and the parent waits until the child has checked credentials,
 * bucket and key and the mount is up; the parent's exit status is the mount's result, so fstab, systemd
 * and scripts see a failed mount as a non-zero exit with the reason on stderr. Forking before any thread
 * exists keeps the HTTP pool and upload workers out of fork's way. */
/* 3.12 for fuse_loop_cfg (bounded worker threads); struct fuse_operations is laid out the same as in
 * the 3.1 API that the operation files use. */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "daemon_setup.h"
#include "fs_context.h"
#include "fs_options.h"
#include "fuse_ops.h"
#include "log.h"
#include "namespace.h"

/* Forks; the parent returns only its exit status (after the child reported success or died). */
static int fork_and_wait(int *notify_fd)
{
    int pipefd[2];
    if (pipe(pipefd) != 0) {
        perror("s3csefs: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("s3csefs: fork");
        exit(1);
    }
    if (pid == 0) {
        close(pipefd[0]);
        setsid();
        *notify_fd = pipefd[1];
        return -1;
    }
    close(pipefd[1]);
    char ok = 1;
    ssize_t n;
    do {
        n = read(pipefd[0], &ok, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && ok == 0)
        return 0;
    int status = 0;
    if (waitpid(pid, &status, 0) < 0)
        return 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        return WEXITSTATUS(status);
    return 1;
}

/* In the child, once mounted: detach from the terminal and release the waiting parent. */
static void detach(int notify_fd)
{
    if (chdir("/") != 0)
        log_warn("chdir /: %s", strerror(errno));
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
        if (null_fd > 2)
            close(null_fd);
    }
    log_to_syslog();
    char ok = 0;
    if (write(notify_fd, &ok, 1) != 1)
        log_warn("could not notify the parent process");
    close(notify_fd);
}

static int build_fuse_args(const fs_options *o, struct fuse_args *args)
{
    char opts[4096];
    int len = snprintf(opts, sizeof opts, "fsname=s3csefs:%s%s%s,subtype=s3csefs%s%s", o->bucket, o->prefix[0] ? "/" : "",
             o->prefix, o->fuse_options[0] ? "," : "", o->fuse_options);
    if (len < 0 || (size_t)len >= sizeof opts)
        return -1;
    /* fsname must not contain commas; bucket names and prefixes rarely do, and fuse would split them. */
    if (fuse_opt_add_arg(args, "s3csefs") != 0 || fuse_opt_add_arg(args, "-o") != 0 ||
        fuse_opt_add_arg(args, opts) != 0)
        return -1;
    if (o->debug && fuse_opt_add_arg(args, "-d") != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static fs_context ctx;
    /* Part buffers come and go in MiB sizes from a few threads. Keeping them on the heap (no mmap per
     * buffer: page faults and zeroing would double the CPU cost per GiB) in one arena keeps
     * RSS close to the memory cap. */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    mallopt(M_ARENA_MAX, 1);
    fs_options_defaults(&ctx.options);
    char err[1024] = "";
    int parsed = fs_options_parse(argc, argv, &ctx.options, err, sizeof err);
    if (parsed == 1)
        return 0;
    if (parsed != 0) {
        fprintf(stderr, "s3csefs: %s\n", err);
        return 2;
    }
    log_set_level(ctx.options.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);

    int notify_fd = -1;
    if (!ctx.options.foreground) {
        int status = fork_and_wait(&notify_fd);
        if (status >= 0)
            return status;
    }

    if (daemon_setup(&ctx, err, sizeof err) != 0) {
        fprintf(stderr, "s3csefs: cannot mount %s: %s\n", ctx.options.mountpoint, err);
        return 1;
    }
    if (daemon_start_workers(&ctx, err, sizeof err) != 0) {
        fprintf(stderr, "s3csefs: %s\n", err);
        daemon_teardown(&ctx);
        return 1;
    }

    struct fuse_operations ops;
    memset(&ops, 0, sizeof ops);
    fs_ops_install_namespace(&ops);
    fs_ops_install_io(&ops);

    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    struct fuse *fuse = NULL;
    int rc = 1;
    if (build_fuse_args(&ctx.options, &args) != 0) {
        fprintf(stderr, "s3csefs: out of memory\n");
        goto out;
    }
    fuse = fuse_new(&args, &ops, sizeof ops, &ctx);
    if (!fuse) {
        fprintf(stderr, "s3csefs: cannot set up FUSE (bad FUSE option?)\n");
        goto out;
    }
    if (fuse_mount(fuse, ctx.options.mountpoint) != 0) {
        fprintf(stderr, "s3csefs: cannot mount on %s (does it exist, is it empty or already mounted, "
                        "is /dev/fuse usable?)\n", ctx.options.mountpoint);
        fuse_destroy(fuse);
        fuse = NULL;
        goto out;
    }
    if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
        fprintf(stderr, "s3csefs: cannot install signal handlers\n");
        goto unmount;
    }
    log_info("mounted s3://%s/%s on %s (encrypt=%s%s%s)", ctx.options.bucket, ctx.options.prefix,
             ctx.options.mountpoint, ctx.options.encrypt, ctx.key_arn[0] ? ", key " : "", ctx.key_arn);
    if (notify_fd >= 0)
        detach(notify_fd);
    if (ctx.options.single_thread) {
        rc = fuse_loop(fuse);
    } else {
        /* Each FUSE worker owns a max_write-sized request buffer outside the memory cap: bound them. */
        struct fuse_loop_config *loop = fuse_loop_cfg_create();
        if (!loop) {
            rc = 1;
            goto stop;
        }
        fuse_loop_cfg_set_max_threads(loop, 16);
        fuse_loop_cfg_set_idle_threads(loop, 4);
        rc = fuse_loop_mt(fuse, loop);
        fuse_loop_cfg_destroy(loop);
    }
    rc = rc == 0 ? 0 : 1;
stop:
    fuse_remove_signal_handlers(fuse_get_session(fuse));
unmount:
    fuse_unmount(fuse);
    fuse_destroy(fuse);
out:
    fuse_opt_free_args(&args);
    daemon_teardown(&ctx);
    log_info("unmounted %s", ctx.options.mountpoint);
    return rc;
}
