/* CRC32C (Castagnoli), the checksum S3 verifies per request (x-amz-checksum-crc32c). Uses the SSE4.2
 * crc32 instruction when the CPU has it (several GB/s, so integrity costs nothing next to AES), with a
 * table fallback. Also the S3 "checksum of checksums" combination for multipart objects. */
#ifndef S3CSEFS_CRC32C_H
#define S3CSEFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(0, data, n) is the CRC of data; crc32c(crc32c(0,a,na), b, nb) == CRC(a||b). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* Base64 of the big-endian 4-byte CRC, as S3's x-amz-checksum-crc32c header wants it. out >= 9 bytes. */
void crc32c_base64(uint32_t crc, char out[9]);

#endif
