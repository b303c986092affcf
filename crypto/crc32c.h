/* CRC32C (Castagnoli), the checksum S3 verifies per request (x-amz-checksum-crc32c). Uses the SSE4.2
 * crc32 instruction when the CPU has it (several GB/s, so integrity costs nothing next to AES), with a
 * table fallback. */
#ifndef S3CSEFS_CRC32C_H
#define S3CSEFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(0, data, n) is the CRC of data; crc32c(crc32c(0,a,na), b, nb) == CRC(a||b). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* Base64 of the big-endian 4-byte CRC, as S3's x-amz-checksum-crc32c header wants it. out >= 9 bytes. */
void crc32c_base64(uint32_t crc, char out[9]);
/* CRC of A||B from CRC(A), CRC(B) and len(B). The filesystem does not use it (it sends one CRC per
 * request, never a full-object checksum); the tests use it as an independent check of the polynomial
 * algebra the hardware path's stream merge relies on. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* The two implementations behind crc32c(), exposed so tests can check that they agree. crc32c_hw may
 * only be called when crc32c_hw_available() (x86-64 with SSE4.2 and PCLMUL; elsewhere it is always 0
 * and crc32c_hw is the table path). */
int crc32c_hw_available(void);
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
