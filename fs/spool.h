/* A local spool file for a file that left the streaming path (random writes, rewrites, truncation
 * below what was streamed, patching an existing object). Contents are AES-CTR encrypted with a
 * throwaway key that lives only in memory (crypto/spool_cipher.h), so plaintext never reaches the disk;
 * the file is unlinked at creation and vanishes with the process.
 *
 * Layout: plaintext offset == file offset, written in whole 16-byte chunks; a chunk of 16 zero bytes on
 * disk (a hole, or never written) reads as plaintext zeros (a real ciphertext chunk is all zeros with
 * probability 2^-128). So sparse extension costs nothing. Thread-safe for one writer and readers. */
#ifndef S3CSEFS_SPOOL_H
#define S3CSEFS_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "counters.h"

typedef struct spool spool;

/* Creates an empty spool in dir. counters (may be NULL) get spool_bytes. 0, or -errno. */
int spool_new(const char *dir, fs_counters *counters, spool **out);
/* Writes plaintext at offset; extends the logical size. 0 or -errno. */
int spool_write(spool *sp, uint64_t offset, const uint8_t *data, size_t len);
/* Reads plaintext; past the logical size reads nothing (returns bytes read) and holes are zeros. */
ssize_t spool_read(spool *sp, uint64_t offset, uint8_t *out, size_t len);
/* Sets the logical size (shrinks, or extends with zeros). 0 or -errno. */
int spool_truncate(spool *sp, uint64_t size);
uint64_t spool_size(const spool *sp);
void spool_free(spool *sp);

#endif
