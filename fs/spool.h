/* A local spool file for a file that left the streaming path (random writes, rewrites, truncation
 * below what was streamed, patching an existing object) and for the write path's parked overflow
 * pieces. Contents are encrypted with a throwaway key that lives only in memory (crypto/spool_cipher.h),
 * so plaintext never reaches the disk; the file is unlinked at creation and vanishes with the process.
 *
 * Layout: plaintext is cut into records of SPOOL_RECORD_SIZE bytes; record i lives at file offset
 * i * (SPOOL_RECORD_HEADER + SPOOL_RECORD_SIZE) as a header followed by the ciphertext of the record's
 * first `length` plaintext bytes (bytes past it read as zeros). Every write re-seals the records it
 * touches (read-modify-write of partial ones) under a generation never used before in this spool, so a
 * rewrite of the same offset never reuses a keystream, and a bit flipped on disk reads as -EIO (GCM).
 * A record whose header is all zeros (a hole, or never written) reads as zeros, so sparse extension
 * costs no disk. Thread-safe (one lock per spool). */
#ifndef S3CSEFS_SPOOL_H
#define S3CSEFS_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "counters.h"

/* Plaintext bytes per record, by measurement (docs/architecture.md): 16 KiB keeps sequential 1 GiB
 * write+read within 10% of the old offset-keyed layout (4 KiB records cost 18%: per-record GCM IV
 * setup and tag) while small and random writes stay as fast as before (64 KiB records make a 4 KiB
 * write re-encrypt 64 KiB: 3x slower). The #ifndef lets a benchmark build try other sizes; the spool
 * is never read by another build. */
#ifndef SPOOL_RECORD_SIZE
#define SPOOL_RECORD_SIZE (16 * 1024)
#endif

typedef struct spool spool;

/* Creates an empty spool in dir. counters (may be NULL) get spool_bytes. 0, or -errno. */
int spool_new(const char *dir, fs_counters *counters, spool **out);
/* Writes plaintext at offset; extends the logical size. 0 or -errno (-EIO if a record it must
 * complete fails authentication). */
int spool_write(spool *sp, uint64_t offset, const uint8_t *data, size_t len);
/* Reads plaintext; past the logical size reads nothing (returns bytes read) and holes are zeros.
 * -EIO if a record fails authentication. */
ssize_t spool_read(spool *sp, uint64_t offset, uint8_t *out, size_t len);
/* Sets the logical size (shrinks, or extends with zeros). 0 or -errno. */
int spool_truncate(spool *sp, uint64_t size);
uint64_t spool_size(const spool *sp);
void spool_free(spool *sp);

/* For unit tests only: the spool's file descriptor, so a test can inspect and corrupt the raw file. */
int spool_fd_for_tests(const spool *sp);

#endif
