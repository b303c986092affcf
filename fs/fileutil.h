/* Small file helpers shared by the spool and the write stream's staged parts. */
#ifndef S3CSEFS_FILEUTIL_H
#define S3CSEFS_FILEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A new read-write file in dir that has no name (O_TMPFILE, else mkostemp + unlink, the name starting
 * with name_prefix): it disappears with its last descriptor, even after a crash. fd, or -errno. */
int open_unlinked(const char *dir, const char *name_prefix);
/* pwrite of all len bytes at offset (retries short writes and EINTR). 0 or -errno. */
int write_fully(int fd, const void *buf, size_t len, uint64_t offset);

#endif
