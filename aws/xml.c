/* Expat-based element tree for S3/STS answers and an escaping text buffer for request bodies. */
#include "xml.h"

#include "secure_mem.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XML_MAX_DEPTH 64

typedef struct {
    XML_Parser parser;
    xml_node *root;
    xml_node *current;
    int depth;
    int failed;                  /* 1: out of memory, 2: structure refused */
} tree_builder;

static void stop(tree_builder *tb, int why)
{
    if (!tb->failed)
        tb->failed = why;
    XML_StopParser(tb->parser, XML_FALSE);
}

static const char *local_name(const char *name)
{
    const char *colon = strrchr(name, ':');
    return colon ? colon + 1 : name;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    tree_builder *tb = ud;
    if (tb->failed)
        return;
    if (++tb->depth > XML_MAX_DEPTH || (!tb->current && tb->root)) {
        stop(tb, 2);
        return;
    }
    xml_node *n = calloc(1, sizeof *n);
    if (!n || !(n->name = strdup(local_name(name))) || !(n->text = calloc(1, 1))) {
        if (n) {
            free(n->name);
            free(n);
        }
        stop(tb, 1);
        return;
    }
    n->parent = tb->current;
    if (!tb->current) {
        tb->root = n;
    } else {
        if (tb->current->last_child)
            tb->current->last_child->next = n;
        else
            tb->current->first_child = n;
        tb->current->last_child = n;
    }
    tb->current = n;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name;
    tree_builder *tb = ud;
    if (tb->failed || !tb->current)
        return;
    tb->depth--;
    tb->current = tb->current->parent;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    tree_builder *tb = ud;
    if (tb->failed || !tb->current || len <= 0)
        return;
    xml_node *n = tb->current;
    /* Not realloc: the old block may hold a secret (STS SecretAccessKey) and is wiped before release. */
    char *grown = malloc(n->text_len + (size_t)len + 1);
    if (!grown) {
        stop(tb, 1);
        return;
    }
    memcpy(grown, n->text, n->text_len);
    secure_wipe(n->text, n->text_len);
    free(n->text);
    n->text = NULL;
    memcpy(grown + n->text_len, s, (size_t)len);
    n->text_len += (size_t)len;
    grown[n->text_len] = '\0';
    n->text = grown;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    stop(ud, 2);   /* services never send a DTD; refusing it closes the entity-expansion door */
}

xml_node *xml_parse(const char *data, size_t len, aws_error *err)
{
    tree_builder tb = {0};
    tb.parser = XML_ParserCreate("UTF-8");
    if (!tb.parser) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "XML parser allocation failed");
        return NULL;
    }
    XML_SetUserData(tb.parser, &tb);
    XML_SetElementHandler(tb.parser, on_start, on_end);
    XML_SetCharacterDataHandler(tb.parser, on_text);
    XML_SetStartDoctypeDeclHandler(tb.parser, on_doctype);
    enum XML_Status st = XML_STATUS_OK;
    /* XML_Parse takes an int length: feed large bodies in slices. */
    const size_t slice = 1u << 30;
    size_t off = 0;
    do {
        size_t n = len - off < slice ? len - off : slice;
        st = XML_Parse(tb.parser, data + off, (int)n, off + n == len);
        off += n;
    } while (st == XML_STATUS_OK && off < len);
    if (len == 0)
        st = XML_Parse(tb.parser, "", 0, 1);
    if (st != XML_STATUS_OK || tb.failed || !tb.root || tb.current) {
        if (tb.failed == 1)
            aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory parsing XML");
        else if (tb.failed == 2)
            aws_error_set(err, AWS_ERR_PARSE, "XML document refused (DOCTYPE or nesting deeper than %d)",
                          XML_MAX_DEPTH);
        else
            aws_error_set(err, AWS_ERR_PARSE, "malformed XML at line %lu: %s",
                          (unsigned long)XML_GetCurrentLineNumber(tb.parser),
                          XML_ErrorString(XML_GetErrorCode(tb.parser)));
        XML_ParserFree(tb.parser);
        xml_free(tb.root);
        return NULL;
    }
    XML_ParserFree(tb.parser);
    return tb.root;
}

static void free_tree(xml_node *root, int wipe);

void xml_free(xml_node *root)
{
    free_tree(root, 0);
}

void xml_free_wipe(xml_node *root)
{
    free_tree(root, 1);
}

static void free_tree(xml_node *root, int wipe)
{
    /* Iterative, so a wide or deep tree cannot exhaust the stack. */
    xml_node *n = root;
    while (n) {
        if (n->first_child) {
            xml_node *child = n->first_child;
            n->first_child = NULL;
            n = child;
            continue;
        }
        xml_node *next = n->next;
        xml_node *parent = n->parent;
        int was_root = n == root;
        free(n->name);
        if (wipe && n->text)
            secure_wipe(n->text, n->text_len);
        free(n->text);
        free(n);
        if (was_root)
            break;
        n = next ? next : parent;
    }
}

const xml_node *xml_child(const xml_node *node, const char *name)
{
    if (!node)
        return NULL;
    for (const xml_node *c = node->first_child; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

const xml_node *xml_next_same(const xml_node *node)
{
    if (!node)
        return NULL;
    for (const xml_node *c = node->next; c; c = c->next)
        if (strcmp(c->name, node->name) == 0)
            return c;
    return NULL;
}

const char *xml_child_text(const xml_node *node, const char *name)
{
    const xml_node *c = xml_child(node, name);
    return c ? c->text : NULL;
}

void xml_buf_init(xml_buf *b)
{
    text_buf_init(b);
}

void xml_buf_free(xml_buf *b)
{
    text_buf_free(b);
}

static void buf_put(xml_buf *b, const char *s, size_t n)
{
    text_buf_append_n(b, s, n);
}

void xml_buf_append(xml_buf *b, const char *text)
{
    buf_put(b, text, strlen(text));
}

void xml_buf_append_escaped(xml_buf *b, const char *text)
{
    const char *run = text;
    for (const char *p = text; *p; p++) {
        const char *rep = NULL;
        char numeric[16];
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default:
            /* Control characters must be references (XML 1.0 forbids most of them raw). */
            if (c < 0x20) {
                snprintf(numeric, sizeof numeric, "&#x%X;", c);
                rep = numeric;
            }
        }
        if (rep) {
            buf_put(b, run, (size_t)(p - run));
            buf_put(b, rep, strlen(rep));
            run = p + 1;
        }
    }
    buf_put(b, run, strlen(run));
}

void xml_buf_element(xml_buf *b, const char *name, const char *text)
{
    xml_buf_append(b, "<");
    xml_buf_append(b, name);
    xml_buf_append(b, ">");
    xml_buf_append_escaped(b, text);
    xml_buf_append(b, "</");
    xml_buf_append(b, name);
    xml_buf_append(b, ">");
}
