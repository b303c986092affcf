/* A growable NUL-terminated text buffer, the one the AWS layer builds every string with (SigV4
 * canonical requests, XML request bodies). Any failed append poisons it, so one check at the end
 * suffices. The text may hold a session token: growing and freeing wipe the old memory. */
#ifndef S3CSEFS_TEXT_BUF_H
#define S3CSEFS_TEXT_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int failed;                  /* an allocation failed: the content is incomplete */
} text_buf;

void text_buf_init(text_buf *b);         /* or = {0} */
void text_buf_free(text_buf *b);         /* wipes, frees; b is reusable */
void text_buf_append_n(text_buf *b, const char *s, size_t n);
void text_buf_append(text_buf *b, const char *s);
void text_buf_append_char(text_buf *b, char c);
/* Hands over the text (caller frees; "" for an empty buffer), or NULL when an append failed. */
char *text_buf_finish(text_buf *b);

#endif
