/* Record cipher for the local spool file: AES-256-GCM under a throwaway key that exists only in locked
 * memory for the lifetime of the spool, so plaintext never reaches local disk and the spool is
 * unreadable once the process forgets the key.
 *
 * The spool is cut into records (fs/spool.c picks the size and does the I/O; this file does no I/O).
 * Every seal of a record draws the next value of a 64-bit generation counter kept here, and the GCM IV
 * is made of that generation alone: the key is fresh per spool, so no IV, hence no CTR keystream, is
 * ever used twice, even when the same record is rewritten again and again. The record header carries
 * the generation, the plaintext length and the tag; the record index and length are authenticated
 * (AAD), so a record moved to another index, cut short or bit-flipped fails to open. An all-zero
 * header is a hole (never written); seal never produces one because the generation starts at 1.
 *
 * Header layout (SPOOL_RECORD_HEADER bytes): generation (8, big-endian, >= 1) || plaintext length
 * (4, big-endian, >= 1) || 4 zero bytes || GCM tag (16). */
#ifndef S3CSEFS_SPOOL_CIPHER_H
#define S3CSEFS_SPOOL_CIPHER_H

#include <stddef.h>
#include <stdint.h>
#include "cse_status.h"

#define SPOOL_RECORD_HEADER 32
#define SPOOL_RECORD_MAX_LEN ((size_t)1 << 30)   /* far above any record size the spool uses */

typedef struct spool_cipher spool_cipher;

cse_status spool_cipher_new(spool_cipher **out);     /* fresh random key, generation 0 */
/* Encrypts len (1..SPOOL_RECORD_MAX_LEN) plaintext bytes of record `index` into out (may equal in)
 * under the next generation and fills header. CSE_ERR_STATE once 2^64 - 1 generations are used up
 * (never in practice). Seal and open are not thread-safe (the generation advances, and a keyed context
 * is cached between them): the spool serialises calls and calls spool_cipher_release when done. */
cse_status spool_cipher_seal(spool_cipher *sc, uint64_t index, const uint8_t *in, size_t len,
                             uint8_t header[SPOOL_RECORD_HEADER], uint8_t *out);
/* The plaintext length a header declares into *len: 0 for a hole (all-zero header). A header that
 * seal cannot have produced (zero generation or length, reserved bytes set, length too large) is
 * CSE_ERR_CIPHERTEXT_LENGTH. Needs no key: the spool learns how many bytes to read. */
cse_status spool_record_length(const uint8_t header[SPOOL_RECORD_HEADER], size_t *len);
/* Decrypts and verifies the record `index` whose header is given; in holds exactly the length the
 * header declares, out gets as many bytes (may equal in). CSE_ERR_GCM_TAG when anything (ciphertext,
 * header, index) differs from what seal produced; out must then be treated as garbage. */
cse_status spool_cipher_open(spool_cipher *sc, uint64_t index, const uint8_t header[SPOOL_RECORD_HEADER],
                             const uint8_t *in, size_t len, uint8_t *out);
/* Frees the keyed context seal/open keep between records, wiping the expanded key: call at the end of
 * every batch of records so it does not outlive the operation. Sealing again re-keys. */
void spool_cipher_release(spool_cipher *sc);
void spool_cipher_free(spool_cipher *sc);

#endif
