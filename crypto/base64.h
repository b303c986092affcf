/* Standard base64 (RFC 4648, with padding), as S3 metadata and KMS JSON use it. Strict decoder: any
 * character outside the alphabet, bad padding or a wrong length is an error. */
#ifndef S3CSEFS_BASE64_H
#define S3CSEFS_BASE64_H

#include <stddef.h>
#include <stdint.h>

size_t base64_encoded_len(size_t raw_len);                 /* without the terminating NUL */
/* Writes NUL-terminated text into out (capacity >= base64_encoded_len + 1). Returns the length. */
size_t base64_encode(const uint8_t *in, size_t len, char *out);
/* Decodes into out (capacity >= len*3/4). Returns 0 and *out_len, or -1 on malformed input. */
int base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len);

#endif
