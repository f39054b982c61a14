/*
 * page.h - the page served at / to a browser (web/index.html), embedded in
 * the binary at build time by web/embed.py, with the Content-Security-Policy
 * that lets its own inline script and style run and nothing else load.
 *
 * Data only; defined in the generated page.c.
 */
#ifndef GW_PAGE_H
#define GW_PAGE_H

#include <stddef.h>

extern const unsigned char web_page[];
extern const size_t web_page_len;
/* "default-src 'none'; script-src 'sha256-…'; …": the hashes of the page's inline code. */
extern const char web_page_csp[];

#endif
