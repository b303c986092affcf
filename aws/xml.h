/* Small XML helpers for S3 and STS answers: expat parses a response body into a tiny element tree
 * (names with any namespace prefix removed, text content kept), and a growable text buffer builds
 * request bodies with proper escaping. XML is never scanned with string functions. */
#ifndef S3CSEFS_XML_H
#define S3CSEFS_XML_H

#include <stddef.h>
#include "aws_error.h"
#include "text_buf.h"

typedef struct xml_node xml_node;
struct xml_node {
    char *name;                  /* local name, e.g. "Contents" */
    char *text;                  /* character data directly inside this element (never NULL) */
    size_t text_len;
    xml_node *parent;
    xml_node *first_child;
    xml_node *last_child;
    xml_node *next;              /* next sibling */
};

/* Parses a whole document. Returns the root element, or NULL with err set (AWS_ERR_PARSE / NO_MEMORY).
 * Documents deeper than 64 levels or with a DOCTYPE are refused. */
xml_node *xml_parse(const char *data, size_t len, aws_error *err);
void xml_free(xml_node *root);
/* xml_free that first wipes every text (for documents carrying secrets, e.g. STS credentials). */
void xml_free_wipe(xml_node *root);

/* First child element named `name`, or NULL. */
const xml_node *xml_child(const xml_node *node, const char *name);
/* Next sibling element with the same name as `node`, or NULL (iterate repeated elements). */
const xml_node *xml_next_same(const xml_node *node);
/* Text of the first child named `name`; NULL when there is no such child. */
const char *xml_child_text(const xml_node *node, const char *name);

/* Request bodies are built in the layer's text buffer (text_buf.h). */
typedef text_buf xml_buf;

void xml_buf_init(xml_buf *b);
void xml_buf_free(xml_buf *b);
void xml_buf_append(xml_buf *b, const char *text);
/* Appends text with &, <, >, ", ' and control characters escaped (character references). */
void xml_buf_append_escaped(xml_buf *b, const char *text);
/* Appends "<name>escaped text</name>". */
void xml_buf_element(xml_buf *b, const char *name, const char *text);

#endif
