/* The write side of the FUSE operation table: open, create, read, write, flush, release, fsync,
 * truncate, statfs, fallocate, init and destroy. main.c installs the namespace side
 * (fs_ops_install_namespace) and then these on the same table. */
#ifndef S3CSEFS_FUSE_OPS_H
#define S3CSEFS_FUSE_OPS_H

struct fuse_operations;

/* Sets the write-side operations in ops; leaves every other field untouched. */
void fs_ops_install_io(struct fuse_operations *ops);

/* statfs figures: a very large free space so backup programs never refuse to start, and 1 MiB blocks
 * so that tools pick large I/O sizes. */
#define FS_STATFS_BLOCK_SIZE (1024u * 1024u)
#define FS_STATFS_TOTAL_BYTES (1ULL << 50)       /* 1 PiB */

#endif
