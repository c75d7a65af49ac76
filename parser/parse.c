/* parse.c — the parser's entry points: run the reentrant scanner and the pure
 * parser over a buffer or a file, and refuse trees too deep for the recursive
 * passes that follow (checker, lowering, ast_dump).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* GNU strerror_r, newlocale */
#endif
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <locale.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "ast.h"
#include "grammar.h"
#include "lexer.h"
#include "../core/value.h"

void parse_fatal(ParseCtx *ctx, const char *msg) {
  diag_error(ctx->d, DIAG_INTERNAL, (SrcPos){ctx->file, 0, 0}, "internal scanner error: %s",
             msg);
  longjmp(ctx->fatal, 1);
}

/* Children of a node, for the depth check below. */
static int ast_children(const Ast *a, const Ast **out, int max) {
  int n = 0;
#define PUSH(x)                         \
  do {                                  \
    if ((x) && n < max) out[n++] = (x); \
  } while (0)
  PUSH(a->a);
  PUSH(a->b);
  PUSH(a->c);
  if (a->type) {
    PUSH(a->type->size1);
    PUSH(a->type->size2);
    PUSH(a->type->lower);
    PUSH(a->type->upper);
  }
#undef PUSH
  return n;
}

typedef struct DepthItem {
  const Ast *node;
  int depth;
} DepthItem;

/* Walks the tree with an explicit stack (the tree may be deep: that is what is
   being checked) and reports the first node deeper than PARSE_MAX_DEPTH. */
static bool parse_check_depth(const Ast *root, const char *file, Diag *d) {
  int cap = 256, n = 0;
  DepthItem *stack = gc_alloc_atomic(sizeof(DepthItem) * (size_t)cap);
  stack[n++] = (DepthItem){root, 1};
  while (n > 0) {
    DepthItem it = stack[--n];
    const Ast *a = it.node;
    if (it.depth > PARSE_MAX_DEPTH) {
      SrcPos pos = a->pos;
      if (!pos.file) pos.file = file;
      diag_error(d, DIAG_SYNTAX, pos, "program nested too deeply");
      return false;
    }
    const Ast *kids[7];
    int nk = ast_children(a, kids, 7);
    int nl = a->list.n;
    int nd = a->type ? a->type->ndims : 0;
    int need = n + nk + nl + nd;
    if (need > cap) {
      while (cap < need) cap *= 2;
      DepthItem *s2 = gc_alloc_atomic(sizeof(DepthItem) * (size_t)cap);
      memcpy(s2, stack, sizeof(DepthItem) * (size_t)n);
      stack = s2;
    }
    for (int i = 0; i < nk; i++) stack[n++] = (DepthItem){kids[i], it.depth + 1};
    for (int i = 0; i < nl; i++)
      if (a->list.items[i]) stack[n++] = (DepthItem){a->list.items[i], it.depth + 1};
    for (int i = 0; i < nd; i++)
      if (a->type->dims[i]) stack[n++] = (DepthItem){a->type->dims[i], it.depth + 1};
  }
  return true;
}

/* setjmp lives in its own small function so that no local of parse_string
   is live across it (-Wclobbered). Returns yyparse's result, or -1 after a
   fatal scanner error. */
static int parse_run(ParseCtx *ctx, yyscan_t scanner, const char *src, int len) {
  if (setjmp(ctx->fatal)) return -1;
  YY_BUFFER_STATE buf = pplyy_scan_bytes(src, len, scanner);
  int rc = pplyyparse(scanner, ctx);
  pplyy_delete_buffer(buf, scanner);
  return rc;
}

Ast *parse_string(const char *src, size_t len, const char *file, Diag *d) {
  gc_init();
  if (!file) file = "<string>";
  ParseCtx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.file = gc_strdup(file);
  ctx.d = d;
  ctx.line = 1;
  ctx.col = 1;
  if (len > INT_MAX) {
    diag_error(d, DIAG_SYNTAX, (SrcPos){ctx.file, 0, 0}, "source too large (%zu bytes)", len);
    return NULL;
  }
  ctx.cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  if (ctx.cloc == (locale_t)0) {
    diag_error(d, DIAG_INTERNAL, (SrcPos){ctx.file, 0, 0}, "cannot create the C locale");
    return NULL;
  }
  yyscan_t scanner;
  if (pplyylex_init_extra(&ctx, &scanner) != 0) {
    freelocale(ctx.cloc);
    diag_error(d, DIAG_INTERNAL, (SrcPos){ctx.file, 0, 0}, "cannot create the scanner");
    return NULL;
  }
  int rc = parse_run(&ctx, scanner, src ? src : "", (int)len);
  /* After a fatal scanner error the scanner is unusable and is leaked; that
     only happens when memory is exhausted anyway. */
  if (rc >= 0) pplyylex_destroy(scanner);
  freelocale(ctx.cloc);
  if (rc != 0 || !ctx.result) {
    /* every failing path records its own message; this is a safety net */
    diag_error(d, DIAG_SYNTAX, (SrcPos){ctx.file, 0, 0}, "syntax error");
    return NULL;
  }
  if (!parse_check_depth(ctx.result, ctx.file, d)) return NULL;
  return ctx.result;
}

Ast *parse_file(const char *path, Diag *d) {
  size_t n;
  char *text = diag_read_file(path, &n, d);
  return text ? parse_string(text, n, path, d) : NULL;
}
